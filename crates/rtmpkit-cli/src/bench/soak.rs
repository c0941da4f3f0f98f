//! `rtmpkit bench soak`: a long run with everything moving at once. One
//! stream published all along and watched by steady players that count the
//! frames they lose; players that join and leave all the time; publishers
//! that come and go. Every interval it prints the server's RSS and open
//! file descriptors (from /proc, with `--server-pid`).

use super::proc_sample;
use anyhow::{Context, Result, bail};
use rtmpkit::proto::Timestamp;
use rtmpkit::proto::flv::{FlvReader, FlvTag, TAG_SCRIPT, TAG_VIDEO};
use rtmpkit::{ClientOptions, Media, MediaKind, PullSession, PushSession, RtmpUrl};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Arguments of `rtmpkit bench soak`.
#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// rtmp://host[:port]/app: the streams are made under it (soak, pub0, pub1, ...).
    url: String,
    /// FLV to publish, looped at real time.
    #[arg(long, value_name = "FLV")]
    input: String,
    /// Minutes to run.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Players that stay all along and count lost frames.
    #[arg(long, default_value_t = 20)]
    steady: usize,
    /// Players that join and leave all the time (each plays 1-10 s).
    #[arg(long, default_value_t = 200)]
    churn: usize,
    /// Publishers that come and go (each publishes 5-30 s, then pauses).
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// Seconds between reports.
    #[arg(long, default_value_t = 60.0)]
    every: f64,
    /// The server's pid, for its RSS and file descriptors.
    #[arg(long)]
    server_pid: Option<u32>,
}

#[derive(Default)]
struct Tally {
    steady_frames: AtomicU64,
    steady_lost: AtomicU64,
    joins: AtomicU64,
    leaves: AtomicU64,
    publishes: AtomicU64,
    failures: AtomicU64,
}

/// A small deterministic generator (xorshift) for durations.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

fn load(input: &str) -> Result<(Vec<FlvTag>, u32)> {
    let data = std::fs::read(input).with_context(|| format!("cannot read {input}"))?;
    let mut r = FlvReader::new();
    r.push(&data);
    let mut tags = Vec::new();
    while let Some(t) = r.next_tag()? {
        tags.push(t);
    }
    let video: Vec<u32> = tags
        .iter()
        .filter(|t| t.tag_type == TAG_VIDEO)
        .map(|t| t.timestamp.0)
        .collect();
    let mut steps: Vec<u32> = video
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .filter(|d| *d > 0)
        .collect();
    steps.sort_unstable();
    let Some(&interval) = steps.get(steps.len() / 2) else {
        bail!("{input} has too few video tags to loop");
    };
    Ok((tags, interval))
}

/// Publishes the tags looped at real time until `end`, video timestamps
/// running on without a jump between loops.
async fn publish(url: &str, tags: &[FlvTag], interval: u32, end: Instant) -> Result<()> {
    let push = PushSession::connect(url, ClientOptions::default()).await?;
    let last = tags.last().map_or(0, |t| t.timestamp.0);
    let t0 = Instant::now();
    let mut offset = 0u32;
    'outer: loop {
        for t in tags {
            let ts = t.timestamp.0.wrapping_add(offset);
            let at = t0 + Duration::from_millis(u64::from(ts));
            if at >= end {
                break 'outer;
            }
            tokio::time::sleep_until(at).await;
            match (t.tag_type, MediaKind::from_type_id(t.tag_type)) {
                (TAG_SCRIPT, _) if offset == 0 => push.write_script_tag(t.data.clone()).await?,
                (_, Some(kind)) if kind != MediaKind::Metadata => {
                    push.write_media(Media::new(kind, Timestamp(ts), t.data.clone()))
                        .await?
                }
                _ => {}
            }
        }
        offset = offset.wrapping_add(last + interval);
    }
    push.close().await?;
    Ok(())
}

/// Plays until `end`, counting video frames and the frames missing between
/// consecutive video timestamps.
async fn steady(url: String, interval: u32, end: Instant, tally: Arc<Tally>) -> Result<()> {
    let pull = PullSession::connect(&url, ClientOptions::default()).await?;
    let mut last: Option<u32> = None;
    while let Ok(Some(m)) = tokio::time::timeout_at(end, pull.next_message()).await {
        if m.kind != MediaKind::Video || m.sequence_header {
            continue;
        }
        let ts = m.timestamp.0;
        if let Some(prev) = last.filter(|p| ts > *p) {
            let missing = ((ts - prev) / interval).saturating_sub(1);
            tally
                .steady_lost
                .fetch_add(u64::from(missing), Ordering::Relaxed);
        }
        last = Some(last.map_or(ts, |p| p.max(ts)));
        tally.steady_frames.fetch_add(1, Ordering::Relaxed);
    }
    if Instant::now() < end {
        bail!("a steady player's stream ended early");
    }
    pull.close().await?;
    Ok(())
}

async fn churn_player(base: String, streams: usize, seed: u64, end: Instant, tally: Arc<Tally>) {
    let mut rng = Rng(seed | 1);
    while Instant::now() < end {
        let name = match rng.below(streams as u64 + 1) {
            0 => "soak".to_string(),
            i => format!("pub{}", i - 1),
        };
        let stay = Duration::from_millis(1000 + rng.below(9000));
        match PullSession::connect(&format!("{base}/{name}"), ClientOptions::default()).await {
            Ok(pull) => {
                tally.joins.fetch_add(1, Ordering::Relaxed);
                let until = (Instant::now() + stay).min(end);
                while let Ok(Some(_)) = tokio::time::timeout_at(until, pull.next_message()).await {}
                let _ = pull.dispose();
                tally.leaves.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                tally.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.below(1000))).await;
    }
}

async fn churn_publisher(
    url: String,
    tags: Arc<Vec<FlvTag>>,
    interval: u32,
    seed: u64,
    end: Instant,
    tally: Arc<Tally>,
) {
    let mut rng = Rng(seed | 1);
    while Instant::now() < end {
        let until = (Instant::now() + Duration::from_secs(5 + rng.below(25))).min(end);
        tally.publishes.fetch_add(1, Ordering::Relaxed);
        if publish(&url, &tags, interval, until).await.is_err() {
            tally.failures.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(1000 + rng.below(2000))).await;
    }
}

pub async fn soak(a: SoakArgs) -> Result<()> {
    RtmpUrl::parse(&format!("{}/soak", a.url))?;
    if !(a.minutes > 0.0 && a.every > 0.0) {
        bail!("--minutes and --every must be > 0");
    }
    let (tags, interval) = load(&a.input)?;
    let tags = Arc::new(tags);
    let base = a.url.trim_end_matches('/').to_string();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(a.minutes * 60.0);
    let tally = Arc::new(Tally::default());
    let mut tasks = tokio::task::JoinSet::new();
    let main_url = format!("{base}/soak");
    {
        let (u, t) = (main_url.clone(), tags.clone());
        // It outlasts the steady players, so their streams never end early.
        let until = end + Duration::from_secs(3);
        tasks.spawn(async move {
            publish(&u, &t, interval, until)
                .await
                .context("the main publisher failed")
        });
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for _ in 0..a.steady {
        let (u, t) = (main_url.clone(), tally.clone());
        tasks.spawn(async move { steady(u, interval, end, t).await });
    }
    for i in 0..a.publishers {
        let (u, tg, t) = (format!("{base}/pub{i}"), tags.clone(), tally.clone());
        tasks.spawn(async move {
            churn_publisher(u, tg, interval, 0x9e37 + i as u64, end, t).await;
            Ok(())
        });
    }
    for i in 0..a.churn {
        let (b, t) = (base.clone(), tally.clone());
        let streams = a.publishers;
        tasks.spawn(async move {
            churn_player(b, streams, 0x51ed + i as u64, end, t).await;
            Ok(())
        });
    }
    let sample = |pid: Option<u32>| {
        pid.map(|p| {
            (
                proc_sample(p).map_or(0, |s| s.rss),
                open_fds(p).unwrap_or(0),
            )
        })
    };
    let first = sample(a.server_pid);
    let report = |tally: &Tally, first: bool| {
        let (rss, fds) = sample(a.server_pid).unwrap_or((0, 0));
        let secs = start.elapsed().as_secs();
        println!(
            "{} t={:02}:{:02} server_rss_kib={rss} server_fds={fds} steady_frames={} steady_lost={} joins={} leaves={} publishes={} failures={}",
            if first { "soak start" } else { "soak" },
            secs / 60,
            secs % 60,
            tally.steady_frames.load(Ordering::Relaxed),
            tally.steady_lost.load(Ordering::Relaxed),
            tally.joins.load(Ordering::Relaxed),
            tally.leaves.load(Ordering::Relaxed),
            tally.publishes.load(Ordering::Relaxed),
            tally.failures.load(Ordering::Relaxed),
        );
    };
    report(&tally, true);
    let mut tick = tokio::time::interval_at(
        start + Duration::from_secs_f64(a.every),
        Duration::from_secs_f64(a.every),
    );
    let mut errors = Vec::new();
    loop {
        tokio::select! {
            _ = tick.tick() => report(&tally, false),
            r = tasks.join_next() => match r {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => errors.push(format!("{e:#}")),
                Some(Err(e)) => errors.push(format!("task failed: {e}")),
            },
        }
    }
    report(&tally, false);
    let last = sample(a.server_pid);
    let (rss0, fds0) = first.unwrap_or((0, 0));
    let (rss1, fds1) = last.unwrap_or((0, 0));
    for e in &errors {
        eprintln!("soak: {e}");
    }
    println!(
        "RESULT soak minutes={:.1} server_rss_kib_start={rss0} server_rss_kib_end={rss1} server_fds_start={fds0} server_fds_end={fds1} steady_players={} steady_frames={} steady_lost={} joins={} publishes={} failures={} errors={}",
        a.minutes,
        a.steady,
        tally.steady_frames.load(Ordering::Relaxed),
        tally.steady_lost.load(Ordering::Relaxed),
        tally.joins.load(Ordering::Relaxed),
        tally.publishes.load(Ordering::Relaxed),
        tally.failures.load(Ordering::Relaxed),
        errors.len()
    );
    if !errors.is_empty() {
        bail!("{} soak tasks failed", errors.len());
    }
    Ok(())
}
