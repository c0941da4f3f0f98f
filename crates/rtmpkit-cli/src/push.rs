//! `rtmpkit push INPUT URL`: publish an FLV file (or stdin).

use crate::flvsrc::TagSource;
use crate::units::{human_bytes, kbits};
use anyhow::{Result, bail};
use rtmpkit::proto::Timestamp;
use rtmpkit::proto::flv::{TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO};
use rtmpkit::{Media, MediaKind, PushSession};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Arguments of `rtmpkit push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// FLV file to publish, or `-` for FLV on stdin.
    input: String,
    /// Where to publish: rtmp[s]://host[:port]/app/stream[?query].
    url: String,
    /// Start again at the end of the file, with timestamps that keep increasing.
    #[arg(long = "loop")]
    looped: bool,
    /// Send as fast as the connection takes it (default: paced at real time, like ffmpeg -re).
    #[arg(long)]
    no_pace: bool,
    /// Sessions in parallel (load testing): to the same URL, or to N streams
    /// with `{i}` (0 to N-1) in the URL, e.g. rtmp://h/live/cam{i}.
    #[arg(short = 'n', long = "sessions", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    sessions: u32,
    /// Drop video when this much media is not delivered yet, in OBS's
    /// order: new non-key frames up to the next keyframe past N ms, the
    /// queued ones too past N+200 ms; audio and keyframes never (OBS's
    /// default is 700). Without it nothing is dropped and sending waits.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=600_000))]
    drop_after_ms: Option<u64>,
    /// Also print a stats line every SECS seconds (media time, send rate,
    /// queued ms, frames dropped), terminal or not: for logs and scripts.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    stats_every: Option<u64>,
    #[command(flatten)]
    session: crate::session_args::SessionArgs,
}

#[derive(Default)]
struct PushTally {
    tags: AtomicU64,
    payload: AtomicU64,
    media_ms: AtomicU64,
    started: AtomicU64,
    reconnects: AtomicU64,
    /// The last reconnect gap of any session, in ms (`u64::MAX`: none).
    gap_ms: AtomicU64,
    /// Media not delivered yet, in ms, as the latest write saw it.
    queued_ms: AtomicU64,
    /// The most seen.
    max_queued_ms: AtomicU64,
    /// kbit/s the server acknowledged, as the latest write saw it.
    send_kbits: AtomicU64,
    dropped: AtomicU64,
    purged: AtomicU64,
}

impl PushTally {
    /// What a session's stat adds since `last` (its dropped and purged
    /// counts then).
    fn note(&self, st: &rtmpkit::SessionStat, last: &mut (u64, u64)) {
        self.queued_ms.store(st.queued_ms, Ordering::Relaxed);
        self.max_queued_ms
            .fetch_max(st.queued_ms, Ordering::Relaxed);
        self.send_kbits
            .store(st.send_bitrate_kbits, Ordering::Relaxed);
        let (d, p) = (st.dropped_inter_frames, st.purged_inter_frames);
        self.dropped.fetch_add(d - last.0, Ordering::Relaxed);
        self.purged.fetch_add(p - last.1, Ordering::Relaxed);
        *last = (d, p);
    }

    /// ", queued N ms, dropped D + P frames" when a drop policy is on.
    fn drops(&self, on: bool) -> String {
        if !on {
            return String::new();
        }
        format!(
            ", queued {} ms, dropped {} + {} frames",
            self.queued_ms.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
            self.purged.load(Ordering::Relaxed)
        )
    }
}

pub async fn run(args: PushArgs, quiet: bool) -> Result<()> {
    if args.input == "-" && (args.sessions > 1 || args.looped) {
        bail!("stdin input works with one session and without --loop");
    }
    args.session.check()?;
    // Fail on a bad URL or input before connecting anything.
    rtmpkit::RtmpUrl::parse(&crate::units::session_url(&args.url, 0))?;
    if args.input != "-" {
        TagSource::open(&args.input).await?;
    }
    let args = Arc::new(args);
    let counters = Arc::new(PushTally::default());
    counters.gap_ms.store(u64::MAX, Ordering::Relaxed);
    let (stop_tx, stop_rx) = watch::channel(false);
    let wall0 = Instant::now();

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.sessions {
        let (a, c, s) = (args.clone(), counters.clone(), stop_rx.clone());
        let url = crate::units::session_url(&args.url, i);
        tasks.spawn(async move { push_one(&a, &url, &c, s).await });
    }
    let dropping = args.drop_after_ms.is_some();
    let progress = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let c = counters.clone();
        let n = args.sessions;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let secs = wall0.elapsed().as_secs_f64();
                eprint!(
                    "\rpush: {:.1}s of media sent, {}, {}/{} sessions publishing{}   ",
                    c.media_ms.load(Ordering::Relaxed) as f64 / 1000.0,
                    kbits(c.payload.load(Ordering::Relaxed), secs),
                    c.started.load(Ordering::Relaxed),
                    n,
                    c.drops(dropping)
                );
            }
        })
    });
    let stats = args.stats_every.map(|every| {
        let c = counters.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(every));
            tick.tick().await;
            loop {
                tick.tick().await;
                eprintln!(
                    "push-stats t={:.1} media_s={:.1} send_kbps={} queued_ms={} dropped_inter={} purged_inter={}",
                    wall0.elapsed().as_secs_f64(),
                    c.media_ms.load(Ordering::Relaxed) as f64 / 1000.0,
                    c.send_kbits.load(Ordering::Relaxed),
                    c.queued_ms.load(Ordering::Relaxed),
                    c.dropped.load(Ordering::Relaxed),
                    c.purged.load(Ordering::Relaxed)
                );
            }
        })
    });

    let mut first_err = None;
    let mut failures = 0u32;
    let interrupted = crate::signals::interrupted();
    tokio::pin!(interrupted);
    let mut stopping = false;
    loop {
        tokio::select! {
            r = tasks.join_next() => match r {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => {
                    failures += 1;
                    first_err.get_or_insert(e);
                }
                Some(Err(e)) => {
                    failures += 1;
                    first_err.get_or_insert(anyhow::anyhow!("session task failed: {e}"));
                }
            },
            _ = &mut interrupted, if !stopping => {
                tracing::info!("interrupted: closing");
                stopping = true;
                let _ = stop_tx.send(true);
            }
        }
    }
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    if let Some(s) = stats {
        s.abort();
    }
    let secs = wall0.elapsed().as_secs_f64();
    if !quiet {
        eprintln!(
            "push: sent {} tags ({}, {:.1}s of media) to {} in {:.1}s ({}){}{}{}",
            counters.tags.load(Ordering::Relaxed),
            human_bytes(counters.payload.load(Ordering::Relaxed)),
            counters.media_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            rtmpkit::proto::redact_url(&args.url),
            secs,
            kbits(counters.payload.load(Ordering::Relaxed), secs),
            crate::reconnect::summary(
                counters.reconnects.load(Ordering::Relaxed),
                Some(counters.gap_ms.load(Ordering::Relaxed)).filter(|g| *g != u64::MAX),
            ),
            if dropping {
                format!(
                    ", at most {} ms queued, dropped {} non-key frames as they came and {} queued",
                    counters.max_queued_ms.load(Ordering::Relaxed),
                    counters.dropped.load(Ordering::Relaxed),
                    counters.purged.load(Ordering::Relaxed)
                )
            } else {
                String::new()
            },
            if args.sessions > 1 {
                format!(", {} sessions, {} failed", args.sessions, failures)
            } else {
                String::new()
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

async fn push_one(
    args: &PushArgs,
    url: &str,
    c: &PushTally,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let mut options = args.session.options()?;
    options.drop_policy = args
        .drop_after_ms
        .map(|ms| rtmpkit::DropPolicy::after(Duration::from_millis(ms)));
    let session = PushSession::new(url, options)?;
    let mut last_drops = (0, 0);
    tokio::select! {
        r = session.start() => r?,
        _ = stop.wait_for(|s| *s) => {
            let _ = session.dispose();
            return Ok(());
        }
    }
    c.started.fetch_add(1, Ordering::Relaxed);
    let mut src = TagSource::open(&args.input).await?;
    let wall0 = Instant::now();
    let mut media0: Option<u32> = None;
    let mut offset: u32 = 0;
    // The lowest and highest timestamps of a pass: the next pass starts
    // after the highest, so that no track steps back (the last tag of a
    // file is not always the latest of every track).
    let (mut first_raw, mut last_raw): (Option<u32>, u32) = (None, 0);
    let mut last_video: Option<u32> = None;
    let mut video_gap: u32 = 40;
    let mut sent_meta = false;
    let mut max_media = 0u32;
    loop {
        let tag = match src.next().await? {
            Some(t) => t,
            None if args.looped && first_raw.is_some() => {
                // Timestamps keep increasing: the next pass starts one frame
                // after the latest tag of this one.
                offset = offset
                    .wrapping_add(last_raw.wrapping_sub(first_raw.unwrap_or(0)))
                    .wrapping_add(video_gap);
                src = TagSource::open(&args.input).await?;
                first_raw = None;
                last_raw = 0;
                continue;
            }
            None => break,
        };
        let raw = tag.timestamp.0;
        first_raw = Some(first_raw.map_or(raw, |f| f.min(raw)));
        last_raw = last_raw.max(raw);
        let ts = raw.wrapping_add(offset);
        if !args.no_pace {
            let m0 = *media0.get_or_insert(ts);
            let ahead = (ts.wrapping_sub(m0) as i32).max(0) as u64;
            let target = wall0 + Duration::from_millis(ahead);
            tokio::select! {
                _ = tokio::time::sleep_until(target) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        } else if *stop.borrow() {
            break;
        }
        let len = tag.data.len() as u64;
        match tag.tag_type {
            TAG_SCRIPT if !sent_meta => {
                session.write_script_tag(tag.data).await?;
                sent_meta = true;
            }
            TAG_SCRIPT => continue,
            TAG_VIDEO if args.looped && is_sequence_end(&tag.data) => {
                // An end of sequence would make players reset at every pass.
                continue;
            }
            TAG_AUDIO | TAG_VIDEO => {
                if tag.tag_type == TAG_VIDEO {
                    if let Some(prev) = last_video {
                        let d = raw.wrapping_sub(prev);
                        if d > 0 && d < 1000 {
                            video_gap = d;
                        }
                    }
                    last_video = Some(raw);
                }
                let kind = if tag.tag_type == TAG_VIDEO {
                    MediaKind::Video
                } else {
                    MediaKind::Audio
                };
                session
                    .write_media(Media::new(kind, Timestamp(ts), tag.data))
                    .await?;
            }
            other => {
                tracing::debug!("skipping flv tag type {other}");
                continue;
            }
        }
        c.tags.fetch_add(1, Ordering::Relaxed);
        c.payload.fetch_add(len, Ordering::Relaxed);
        if args.drop_after_ms.is_some() {
            c.note(&session.stat(), &mut last_drops);
        }
        let m = ts.wrapping_sub(media0.unwrap_or(first_raw.unwrap_or(0)));
        if m > max_media && (m as i32) > 0 {
            c.media_ms
                .fetch_add(u64::from(m - max_media), Ordering::Relaxed);
            max_media = m;
        }
    }
    session.close().await?;
    let st = session.stat();
    if args.drop_after_ms.is_some() {
        c.note(&st, &mut last_drops);
    }
    c.reconnects.fetch_add(st.reconnects, Ordering::Relaxed);
    if let Some(ms) = st.last_reconnect_gap_ms {
        c.gap_ms.store(ms, Ordering::Relaxed);
    }
    Ok(())
}

fn is_sequence_end(data: &[u8]) -> bool {
    use rtmpkit::proto::media::{VideoPacketKind, VideoTagHeader};
    VideoTagHeader::parse(data).is_ok_and(|h| h.kind == VideoPacketKind::SequenceEnd)
}
