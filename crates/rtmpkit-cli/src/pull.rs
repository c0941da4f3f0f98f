//! `rtmpkit pull URL`: play a stream and write it as FLV or fragmented MP4
//! (`pull_out.rs`).

use crate::pull_out::Sink;
use crate::units::{human_bytes, kbits};
use anyhow::{Result, bail};
use rtmpkit::{EndReason, MediaKind, PullSession};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Arguments of `rtmpkit pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// What to play: rtmp[s]://host[:port]/app/stream[?query].
    url: String,
    /// Write the stream to FILE, or `-` for stdout (default: discard, stats
    /// only): FLV as received, or fragmented MP4 when FILE ends in .mp4
    /// (every track; valid at every fragment of at most 1 s).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<String>,
    /// With -o: a new file at the first keyframe after SECS, named
    /// NAME-0001.EXT, NAME-0002.EXT, ...
    #[arg(long, value_name = "SECS", requires = "output")]
    segment: Option<f64>,
    /// Stop after this many seconds of wall time, close cleanly and exit 0.
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Sessions in parallel (load testing; not with -o): to the same URL, or
    /// to N streams with `{i}` (0 to N-1) in the URL, e.g. rtmp://h/live/cam{i}.
    #[arg(short = 'n', long = "sessions", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    sessions: u32,
    #[command(flatten)]
    session: crate::session_args::SessionArgs,
}

#[derive(Default)]
struct PullTally {
    video: AtomicU64,
    audio: AtomicU64,
    metadata: AtomicU64,
    payload: AtomicU64,
    started: AtomicU64,
    reconnects: AtomicU64,
    /// The last reconnect gap of any session, in ms (`u64::MAX`: none).
    gap_ms: AtomicU64,
}

pub async fn run(args: PullArgs, quiet: bool) -> Result<()> {
    if args.sessions > 1 && args.output.is_some() {
        bail!("-o works with one session; drop -o or -n");
    }
    args.session.check()?;
    if let Some(d) = args.duration {
        if !(d.is_finite() && d > 0.0) {
            bail!("--duration must be a number of seconds > 0");
        }
    }
    rtmpkit::RtmpUrl::parse(&crate::units::session_url(&args.url, 0))?;
    let out = match args.output.as_deref() {
        None => None,
        Some(target) => Some(Sink::open(target, args.segment).await?),
    };
    let args = Arc::new(args);
    let counters = Arc::new(PullTally::default());
    counters.gap_ms.store(u64::MAX, Ordering::Relaxed);
    let wall0 = Instant::now();
    let progress = (!quiet
        && std::io::stderr().is_terminal()
        && args.output.as_deref() != Some("-"))
    .then(|| {
        let c = counters.clone();
        let n = args.sessions;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let secs = wall0.elapsed().as_secs_f64();
                eprint!(
                    "\rpull: {} video, {} audio frames, {}, {}/{} sessions playing   ",
                    c.video.load(Ordering::Relaxed),
                    c.audio.load(Ordering::Relaxed),
                    kbits(c.payload.load(Ordering::Relaxed), secs),
                    c.started.load(Ordering::Relaxed),
                    n
                );
            }
        })
    });

    let mut tasks = tokio::task::JoinSet::new();
    let mut out = out;
    for i in 0..args.sessions {
        let (a, c, o) = (args.clone(), counters.clone(), out.take());
        let url = crate::units::session_url(&args.url, i);
        tasks.spawn(async move { pull_one(&a, &url, &c, o).await });
    }
    let mut first_err = None;
    let mut failures = 0u32;
    let mut reasons = Vec::new();
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(reason)) => reasons.push(reason),
            Ok(Err(e)) => {
                failures += 1;
                first_err.get_or_insert(e);
            }
            Err(e) => {
                failures += 1;
                first_err.get_or_insert(anyhow::anyhow!("session task failed: {e}"));
            }
        }
    }
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    let secs = wall0.elapsed().as_secs_f64();
    if !quiet {
        eprintln!(
            "pull: received {} video, {} audio, {} metadata messages ({}) from {} in {:.1}s ({}){}{}",
            counters.video.load(Ordering::Relaxed),
            counters.audio.load(Ordering::Relaxed),
            counters.metadata.load(Ordering::Relaxed),
            human_bytes(counters.payload.load(Ordering::Relaxed)),
            rtmpkit::proto::redact_url(&args.url),
            secs,
            kbits(counters.payload.load(Ordering::Relaxed), secs),
            crate::reconnect::summary(
                counters.reconnects.load(Ordering::Relaxed),
                Some(counters.gap_ms.load(Ordering::Relaxed)).filter(|g| *g != u64::MAX),
            ),
            match (reasons.first(), args.sessions) {
                (Some(r), 1) => format!(": {r}"),
                (_, n) if n > 1 => format!(", {n} sessions, {failures} failed"),
                _ => String::new(),
            }
        );
    }
    match first_err {
        Some(e) if args.sessions == 1 || failures == args.sessions => Err(e),
        Some(e) => {
            eprintln!(
                "warning: {failures} of {} sessions failed; first: {e}",
                args.sessions
            );
            Ok(())
        }
        None => Ok(()),
    }
}

async fn pull_one(
    args: &PullArgs,
    url: &str,
    c: &PullTally,
    mut out: Option<Sink>,
) -> Result<EndReason> {
    // An FLV file holds any E-RTMP codec and every track: announce them.
    let opts = args.session.options()?.with_every_codec();
    let session = PullSession::new(url, opts)?;
    let deadline = args
        .duration
        .map(|d| Instant::now() + Duration::from_secs_f64(d));
    let sleep_deadline = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep_deadline);
    let interrupted = crate::signals::interrupted();
    tokio::pin!(interrupted);
    tokio::select! {
        r = session.start() => r?,
        _ = &mut sleep_deadline => {
            let _ = session.dispose();
            bail!("{} did not start playing within --duration", session.url());
        }
        _ = &mut interrupted => {
            let _ = session.dispose();
            bail!("interrupted before playing started");
        }
    }
    c.started.fetch_add(1, Ordering::Relaxed);
    // What was received reaches the file at least once a second, so a crash
    // or a power cut loses about a second at most.
    let mut flush_tick = tokio::time::interval(Duration::from_secs(1));
    flush_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopped_by_us = loop {
        let msg = tokio::select! {
            m = session.next_message() => m,
            _ = &mut sleep_deadline => break true,
            _ = &mut interrupted => break true,
            _ = flush_tick.tick(), if out.is_some() => {
                if let Some(w) = out.as_mut() {
                    w.flush().await?;
                }
                continue;
            }
        };
        let Some(msg) = msg else {
            break false;
        };
        let counter = match msg.kind {
            MediaKind::Video => &c.video,
            MediaKind::Audio => &c.audio,
            MediaKind::Metadata => &c.metadata,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        c.payload
            .fetch_add(msg.payload.len() as u64, Ordering::Relaxed);
        if let Some(w) = out.as_mut() {
            w.push(msg).await?;
        }
    };
    if let Some(w) = out.as_mut() {
        w.finish().await?;
    }
    let st = session.stat();
    c.reconnects.fetch_add(st.reconnects, Ordering::Relaxed);
    if let Some(ms) = st.last_reconnect_gap_ms {
        c.gap_ms.store(ms, Ordering::Relaxed);
    }
    if stopped_by_us {
        session.close().await?;
        return Ok(EndReason::Closed);
    }
    let reason = session.wait().await;
    match &reason {
        EndReason::StreamEnded(_) | EndReason::PeerClosed | EndReason::Closed => Ok(reason),
        other => bail!("playing {} {other}", session.url()),
    }
}
