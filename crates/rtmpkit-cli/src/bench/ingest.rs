//! `rtmpkit bench ingest`: the shape of an ingest server. N publishers,
//! each on its own stream, and one player per stream; the server's CPU and
//! memory per stream, and the messages per second through it.

use super::{BenchState, PlayerStats, TICKS_PER_SEC, player, proc_sample, publisher, wait_ready};
use anyhow::{Result, bail};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Arguments of `rtmpkit bench ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// rtmp://host[:port]/app/stream{i}: `{i}` becomes 0 to N-1 (added at
    /// the end of the URL when missing).
    url: String,
    /// Streams: one publisher and one player each.
    #[arg(short = 'n', long, default_value_t = 100)]
    streams: u32,
    /// FLV each publisher sends, looped at real time.
    #[arg(long, value_name = "FLV")]
    input: String,
    /// Seconds to measure, once every stream plays.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Report this process's CPU time and memory (the server's pid).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Sessions connecting at once while ramping up.
    #[arg(long, default_value_t = 50)]
    ramp_concurrency: usize,
}

/// One stream: its publisher's and player's shared state.
struct Stream {
    state: Arc<BenchState>,
    sent_video: Arc<AtomicU64>,
    player: Arc<PlayerStats>,
}

pub(super) async fn ingest(a: IngestArgs) -> Result<()> {
    if a.duration.is_nan() || a.duration <= 0.0 || a.streams == 0 {
        bail!("--duration and -n must be > 0");
    }
    let pattern = if a.url.contains("{i}") {
        a.url.clone()
    } else {
        format!("{}{{i}}", a.url)
    };
    rtmpkit::RtmpUrl::parse(&crate::units::session_url(&pattern, 0))?;
    let gop_kib = largest_gop(&a.input)? as f64 / 1024.0;
    let streams: Vec<Stream> = (0..a.streams)
        .map(|_| Stream {
            state: Arc::new(BenchState {
                measuring: AtomicBool::new(false),
                sent: Mutex::new(HashMap::new()),
                latencies: Mutex::new(Vec::new()),
                first_frame: Mutex::new(Vec::new()),
            }),
            sent_video: Arc::new(AtomicU64::new(0)),
            player: Arc::new(PlayerStats::default()),
        })
        .collect();
    let mut background = tokio::task::JoinSet::new();
    let publish_failed = Arc::new(AtomicU64::new(0));
    let ramp = Instant::now();
    for (i, s) in streams.iter().enumerate() {
        let url = crate::units::session_url(&pattern, i as u32);
        let (input, state, sent) = (a.input.clone(), s.state.clone(), s.sent_video.clone());
        let failed = publish_failed.clone();
        background.spawn(async move {
            if let Err(e) = publisher(url.clone(), input, state, sent, None).await {
                failed.fetch_add(1, Ordering::Relaxed);
                eprintln!("bench publisher {url}: {e:#}");
            }
        });
        // Spread the publishers' frames over the frame interval.
        if i % a.ramp_concurrency.max(1) == a.ramp_concurrency.max(1) - 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Let every stream start (and its GOP cache fill) before players join.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(a.streams as usize);
    let tls = rtmpkit::tls::client_config(&[])?;
    let limit = Arc::new(tokio::sync::Semaphore::new(a.ramp_concurrency.max(1)));
    for (i, s) in streams.iter().enumerate() {
        let permit = limit.clone().acquire_owned().await?;
        let url = crate::units::session_url(&pattern, i as u32);
        background.spawn(player(
            url,
            tls.clone(),
            s.player.clone(),
            s.state.clone(),
            ready_tx.clone(),
            permit,
        ));
    }
    let mut failures = HashMap::<String, u64>::new();
    let ok = wait_ready(&mut ready_rx, a.streams as usize, &mut failures).await;
    eprintln!(
        "{} publishers and {ok} players of {} streams after {:.1}s",
        a.streams as u64 - publish_failed.load(Ordering::Relaxed),
        a.streams,
        ramp.elapsed().as_secs_f64()
    );
    // Every player has its first frame (or 5 s passed).
    let t = Instant::now();
    while streams
        .iter()
        .filter(|s| s.player.video.load(Ordering::Relaxed) > 0)
        .count()
        < ok
        && t.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let video_before: Vec<u64> = streams
        .iter()
        .map(|s| s.player.video.load(Ordering::Relaxed))
        .collect();
    let msgs_before: u64 = streams
        .iter()
        .map(|s| s.player.messages.load(Ordering::Relaxed))
        .sum();
    let server_before = a.server_pid.and_then(proc_sample);
    let self_before = proc_sample(std::process::id());
    for s in &streams {
        s.state.measuring.store(true, Ordering::Relaxed);
    }
    let t0 = Instant::now();
    let mut peak_rss = 0;
    while t0.elapsed().as_secs_f64() < a.duration {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(s) = a.server_pid.and_then(proc_sample) {
            peak_rss = peak_rss.max(s.rss);
        }
    }
    for s in &streams {
        s.state.measuring.store(false, Ordering::Relaxed);
    }
    let secs = t0.elapsed().as_secs_f64();
    let server_after = a.server_pid.and_then(proc_sample);
    let self_after = proc_sample(std::process::id());
    while let Ok(r) = ready_rx.try_recv() {
        if let Err(e) = r {
            *failures.entry(e).or_default() += 1;
        }
    }
    let publishers = a.streams as u64 - publish_failed.load(Ordering::Relaxed);
    background.abort_all();

    // A player is behind when it got more than 1 s (25 frames) fewer video
    // frames in the window than its publisher sent.
    let behind = streams
        .iter()
        .zip(&video_before)
        .filter(|(s, before)| {
            let got = s.player.video.load(Ordering::Relaxed) - *before;
            got + 25 < s.sent_video.load(Ordering::Relaxed)
        })
        .count();
    let msgs_out = streams
        .iter()
        .map(|s| s.player.messages.load(Ordering::Relaxed))
        .sum::<u64>()
        - msgs_before;
    let n = a.streams as f64;
    println!(
        "bench ingest: {} streams, {publishers} publishing, {ok} playing, for {secs:.1}s: {:.0} messages/s to players; players behind real time: {behind}",
        a.streams,
        msgs_out as f64 / secs
    );
    for (why, count) in &failures {
        println!("failed {count}x: {why}");
    }
    println!("the input's largest GOP (what a GOP cache holds per stream): {gop_kib:.1} KiB");
    let mut lats: Vec<f64> = streams
        .iter()
        .flat_map(|s| {
            let l = s.state.latencies.lock().unwrap_or_else(|e| e.into_inner());
            l.iter().map(|&x| f64::from(x)).collect::<Vec<_>>()
        })
        .collect();
    println!(
        "end-to-end latency publisher -> player: {}",
        super::percentiles(lats.clone())
    );
    lats.sort_by(|a, b| a.total_cmp(b));
    let mut result = format!(
        "RESULT ingest streams={} publishing={publishers} playing={ok} behind={behind} msgs_per_s={:.0} lat_p50_ms={:.2} lat_p99_ms={:.2} gop_kib={gop_kib:.1}",
        a.streams,
        msgs_out as f64 / secs,
        super::pct(&lats, 0.5),
        super::pct(&lats, 0.99),
    );
    if let (Some(s0), Some(s1)) = (server_before, server_after) {
        let (ticks, rss) = (s1.ticks() - s0.ticks(), s1.rss);
        let cpu = ticks as f64 / TICKS_PER_SEC / secs * 100.0;
        let per_msg_us = if msgs_out > 0 {
            ticks as f64 / TICKS_PER_SEC * 1e6 / msgs_out as f64
        } else {
            f64::NAN
        };
        println!(
            "server: CPU {cpu:.1}% of a core ({:.3}% per stream, {per_msg_us:.1} us per message delivered); RSS {rss} KiB (peak {peak_rss}), {:.1} KiB per stream",
            cpu / n,
            rss as f64 / n
        );
        result += &format!(
            " server_cpu_pct={cpu:.1} server_cpu_pct_per_stream={:.4} us_per_msg={per_msg_us:.2} server_rss_kib={rss} rss_kib_per_stream={:.1}",
            cpu / n,
            rss as f64 / n
        );
    }
    super::report_tool_cpu(self_before, self_after, secs, &mut result);
    println!("{result}");
    Ok(())
}

/// The most bytes of media from one video keyframe to the next in an FLV
/// file (audio included).
fn largest_gop(path: &str) -> Result<usize> {
    let data = std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))?;
    let mut r = rtmpkit::proto::flv::FlvReader::new();
    r.push(&data);
    let (mut largest, mut current) = (0usize, 0usize);
    while let Some(t) = r.next_tag()? {
        let key = t.tag_type == rtmpkit::proto::flv::TAG_VIDEO
            && rtmpkit::proto::media::VideoTagHeader::parse(&t.data)
                .is_ok_and(|h| h.is_keyframe() && !h.is_sequence_header());
        if key {
            largest = largest.max(current);
            current = 0;
        }
        current += t.data.len();
    }
    Ok(largest.max(current))
}
