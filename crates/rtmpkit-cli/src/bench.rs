//! `rtmpkit bench connect`, `play`, `ingest` and `soak`: load tools that print
//! figures (and, with `--server-pid`, the server's CPU and memory from /proc).

use anyhow::{Context, Result, bail};
use rtmpkit::proto::Timestamp;
use rtmpkit::proto::flv::{TAG_SCRIPT, TAG_VIDEO};
use rtmpkit::proto::media::VideoTagHeader;
use rtmpkit::{ClientOptions, Media, MediaKind, PullSession, PushSession, RtmpUrl};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

mod hls;
mod http_player;
mod ingest;
mod player;
mod procstat;
mod soak;
use player::player;
use procstat::{TICKS_PER_SEC, proc_sample, report_tool_cpu};

/// `rtmpkit bench ...`
#[derive(Debug, clap::Subcommand)]
pub enum BenchCmd {
    /// Connection storm: connect, play until Play.Start, close; repeat.
    Connect(ConnectArgs),
    /// N players of one stream (optionally published by the bench itself).
    Play(PlayArgs),
    /// Many streams at once: N publishers, each on its own stream, and a
    /// player per stream (an ingest server's shape).
    Ingest(ingest::IngestArgs),
    /// A long run: steady players counting lost frames, players and
    /// publishers coming and going, the server's RSS and fds each minute.
    Soak(soak::SoakArgs),
    /// N LL-HLS viewers of one stream (spread over a ladder's variants),
    /// each reading part after part with blocking playlist reloads.
    Hls(hls::HlsArgs),
}

/// Arguments of `rtmpkit bench connect`.
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// rtmp://host[:port]/app/stream to play.
    url: String,
    /// Sessions in flight at once.
    #[arg(short = 'n', long, default_value_t = 50)]
    concurrency: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Start at most this many sessions per second (default: as fast as
    /// the server answers). Compares servers' CPU per session at one rate.
    #[arg(long, value_name = "PER_SEC")]
    rate: Option<f64>,
    /// Also wait for the first video frame (needs a live publisher) and report that time.
    #[arg(long)]
    first_frame: bool,
    /// Report this process's CPU time and memory (the server's pid).
    #[arg(long)]
    server_pid: Option<u32>,
    #[command(flatten)]
    tls: crate::client_tls::TlsArgs,
}

/// Arguments of `rtmpkit bench play`.
#[derive(Debug, clap::Args)]
pub struct PlayArgs {
    /// rtmp://host[:port]/app/stream to play.
    url: String,
    /// Players.
    #[arg(short = 'n', long, default_value_t = 100)]
    players: usize,
    /// Seconds to measure, after every player is playing.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Publish this FLV (looped, real time) to the URL and measure latency
    /// from our publisher to our players.
    #[arg(long, value_name = "FLV")]
    input: Option<String>,
    /// Report this process's CPU time and memory (the server's pid).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Players connecting at once while ramping up.
    #[arg(long, default_value_t = 50)]
    ramp_concurrency: usize,
    /// Seconds the ramp may take: players not started by then are counted
    /// as failed (a server too busy to answer handshakes), and the
    /// measurement goes on with those playing.
    #[arg(long, default_value_t = 120.0)]
    ramp_timeout: f64,
    /// Players use HTTP-FLV from this address (the server's --http-listen):
    /// http://ADDR/APP/STREAM.flv of the URL; --input still publishes over RTMP.
    #[arg(long, value_name = "ADDR")]
    http_flv: Option<String>,
    #[command(flatten)]
    tls: crate::client_tls::TlsArgs,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn percentiles(mut v: Vec<f64>) -> String {
    v.sort_by(|a, b| a.total_cmp(b));
    format!(
        "min {:.1} / median {:.1} / p95 {:.1} / p99 {:.1} / max {:.1} ms",
        pct(&v, 0.0),
        pct(&v, 0.5),
        pct(&v, 0.95),
        pct(&v, 0.99),
        pct(&v, 1.0)
    )
}

pub async fn run(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Connect(a) => connect(a).await,
        BenchCmd::Play(a) => play(a).await,
        BenchCmd::Ingest(a) => ingest::ingest(a).await,
        BenchCmd::Soak(a) => soak::soak(a).await,
        BenchCmd::Hls(a) => hls::hls(a).await,
    }
}

async fn connect(a: ConnectArgs) -> Result<()> {
    RtmpUrl::parse(&a.url)?;
    if a.duration.is_nan() || a.duration <= 0.0 || a.concurrency == 0 {
        bail!("--duration and -n must be > 0");
    }
    if a.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        bail!("--rate must be a number of sessions per second > 0");
    }
    // One shared pace for every task: a session starts on a tick.
    let pace = a.rate.map(|r| {
        let mut every = tokio::time::interval(Duration::from_secs_f64(1.0 / r));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Arc::new(tokio::sync::Mutex::new(every))
    });
    let end = Instant::now() + Duration::from_secs_f64(a.duration);
    let lat = Arc::new(Mutex::new(Vec::<f64>::new()));
    let first = Arc::new(Mutex::new(Vec::<f64>::new()));
    let failures = Arc::new(Mutex::new(HashMap::<String, u64>::new()));
    let before = a.server_pid.and_then(proc_sample);
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let tls = a.tls.client_config()?;
    for _ in 0..a.concurrency {
        let (url, lat, first, failures, tls) = (
            a.url.clone(),
            lat.clone(),
            first.clone(),
            failures.clone(),
            tls.clone(),
        );
        let want_first = a.first_frame;
        let pace = pace.clone();
        tasks.spawn(async move {
            while Instant::now() < end {
                if let Some(pace) = &pace {
                    pace.lock().await.tick().await;
                }
                let t = Instant::now();
                let opts = ClientOptions {
                    timeout: Duration::from_secs(10),
                    tls: tls.clone(),
                    ..ClientOptions::default()
                };
                match PullSession::connect(&url, opts).await {
                    Ok(p) => {
                        lat.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(t.elapsed().as_secs_f64() * 1000.0);
                        if want_first {
                            let got = tokio::time::timeout(Duration::from_secs(5), async {
                                while let Some(m) = p.next_message().await {
                                    if m.kind == MediaKind::Video && !m.sequence_header {
                                        return true;
                                    }
                                }
                                false
                            })
                            .await;
                            match got {
                                Ok(true) => first
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push(t.elapsed().as_secs_f64() * 1000.0),
                                _ => {
                                    *failures
                                        .lock()
                                        .unwrap_or_else(|e| e.into_inner())
                                        .entry("no video frame within 5 s".into())
                                        .or_default() += 1
                                }
                            }
                        }
                        let _ = p.dispose();
                    }
                    Err(e) => {
                        // Group by cause, without the URL and port.
                        let key = e.to_string().replace(&url, "URL");
                        *failures
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .entry(key)
                            .or_default() += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let secs = t0.elapsed().as_secs_f64();
    let after = a.server_pid.and_then(proc_sample);
    let lat = std::mem::take(&mut *lat.lock().unwrap_or_else(|e| e.into_inner()));
    let first = std::mem::take(&mut *first.lock().unwrap_or_else(|e| e.into_inner()));
    let n = lat.len();
    println!(
        "bench connect: {} sessions in {:.1}s = {:.0} sessions/s ({} in flight)",
        n,
        secs,
        n as f64 / secs,
        a.concurrency
    );
    println!(
        "start latency (connect to Play.Start): {}",
        percentiles(lat.clone())
    );
    if a.first_frame {
        println!("time to first video frame: {}", percentiles(first.clone()));
    }
    let failures = failures.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let failed: u64 = failures.values().sum();
    for (why, count) in &failures {
        println!("failed {count}x: {why}");
    }
    let mut result = format!(
        "RESULT connect sessions={n} failed={failed} per_sec={:.1}",
        n as f64 / secs
    );
    let mut sorted = lat;
    sorted.sort_by(|a, b| a.total_cmp(b));
    result += &format!(
        " start_p50_ms={:.2} start_p95_ms={:.2}",
        pct(&sorted, 0.5),
        pct(&sorted, 0.95)
    );
    if a.first_frame {
        let mut f = first;
        f.sort_by(|a, b| a.total_cmp(b));
        result += &format!(
            " first_frame_p50_ms={:.2} first_frame_p95_ms={:.2}",
            pct(&f, 0.5),
            pct(&f, 0.95)
        );
    }
    if let (Some(s0), Some(s1)) = (before, after) {
        let rss = s1.rss;
        let cpu_ms = (s1.ticks() - s0.ticks()) as f64 / TICKS_PER_SEC * 1000.0;
        let per = if n > 0 { cpu_ms / n as f64 } else { f64::NAN };
        println!("server: {cpu_ms:.0} ms of CPU = {per:.3} ms per session, RSS {rss} KiB");
        result += &format!(" server_cpu_ms_per_session={per:.4} server_rss_kib={rss}");
    }
    println!("{result}");
    Ok(())
}

#[derive(Default)]
struct PlayerStats {
    bytes: AtomicU64,
    messages: AtomicU64,
    video: AtomicU64,
}

/// What the bench's publisher, players and report share.
struct BenchState {
    measuring: AtomicBool,
    sent: Mutex<HashMap<u32, Instant>>,
    latencies: Mutex<Vec<f32>>,
    first_frame: Mutex<Vec<f64>>,
}

/// Collects up to `expected` players' start reports (60 s at most):
/// returns how many are playing, counting the failures by cause.
async fn wait_ready(
    ready: &mut tokio::sync::mpsc::Receiver<Result<(), String>>,
    expected: usize,
    failures: &mut HashMap<String, u64>,
) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ok = 0;
    let failed = failures.values().sum::<u64>() as usize;
    while ok + failures.values().sum::<u64>() as usize - failed < expected {
        match tokio::time::timeout_at(deadline, ready.recv()).await {
            Ok(Some(Ok(()))) => ok += 1,
            Ok(Some(Err(e))) => *failures.entry(e).or_default() += 1,
            _ => break,
        }
    }
    ok
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

/// Publishes `input` looped at real time, recording when each video
/// timestamp left, so players can measure end-to-end latency.
async fn publisher(
    url: String,
    input: String,
    shared: Arc<BenchState>,
    sent_video: Arc<AtomicU64>,
    tls: Option<Arc<rtmpkit::tls::ClientConfig>>,
) -> Result<()> {
    let data = std::fs::read(&input).with_context(|| format!("cannot read {input}"))?;
    let mut tags = Vec::new();
    let mut r = rtmpkit::proto::flv::FlvReader::new();
    r.push(&data);
    while let Some(t) = r.next_tag()? {
        tags.push(t);
    }
    let Some(last) = tags.last().map(|t| t.timestamp.0) else {
        bail!("{input} has no tags");
    };
    let opts = ClientOptions {
        tls,
        ..ClientOptions::default()
    };
    let push = PushSession::connect(&url, opts).await?;
    let t0 = Instant::now();
    let mut offset = 0u32;
    loop {
        for t in &tags {
            let ts = t.timestamp.0.wrapping_add(offset);
            tokio::time::sleep_until(t0 + Duration::from_millis(u64::from(ts))).await;
            match t.tag_type {
                TAG_SCRIPT if offset == 0 => push.write_script_tag(t.data.clone()).await?,
                TAG_SCRIPT => {}
                _ => {
                    if t.tag_type == TAG_VIDEO {
                        if VideoTagHeader::parse(&t.data).is_ok_and(|h| {
                            h.kind == rtmpkit::proto::media::VideoPacketKind::SequenceEnd
                        }) {
                            continue;
                        }
                        let now = Instant::now();
                        let mut sent = shared.sent.lock().unwrap_or_else(|e| e.into_inner());
                        sent.insert(ts, now);
                        if sent.len() > 10_000 {
                            sent.retain(|_, v| now.duration_since(*v) < Duration::from_secs(30));
                        }
                        drop(sent);
                        if shared.measuring.load(Ordering::Relaxed) {
                            sent_video.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let kind = MediaKind::from_type_id(t.tag_type).unwrap_or(MediaKind::Audio);
                    push.write_media(Media::new(kind, Timestamp(ts), t.data.clone()))
                        .await?;
                }
            }
        }
        offset = offset.wrapping_add(last + 40);
    }
}

async fn play(a: PlayArgs) -> Result<()> {
    let parsed = RtmpUrl::parse(&a.url)?;
    let http_url = a.http_flv.as_ref().map(|addr| {
        let query = parsed
            .query
            .as_ref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        format!("http://{addr}/{}/{}.flv{query}", parsed.app, parsed.stream)
    });
    if a.duration.is_nan() || a.duration <= 0.0 || a.players == 0 {
        bail!("--duration and -n must be > 0");
    }
    if a.ramp_timeout.is_nan() || a.ramp_timeout <= 0.0 {
        bail!("--ramp-timeout must be > 0");
    }
    let shared = Arc::new(BenchState {
        measuring: AtomicBool::new(false),
        sent: Mutex::new(HashMap::new()),
        latencies: Mutex::new(Vec::new()),
        first_frame: Mutex::new(Vec::new()),
    });
    let sent_video = Arc::new(AtomicU64::new(0));
    let tls = a.tls.client_config()?;
    let player_tls = match &tls {
        Some(c) => c.clone(),
        None => rtmpkit::tls::client_config(&[])?,
    };
    let mut background = tokio::task::JoinSet::new();
    if let Some(input) = &a.input {
        let (u, i, s, v) = (
            a.url.clone(),
            input.clone(),
            shared.clone(),
            sent_video.clone(),
        );
        let tls = tls.clone();
        background.spawn(async move {
            if let Err(e) = publisher(u, i, s, v, tls).await {
                eprintln!("bench publisher: {e:#}");
            }
        });
        // Let the stream start (and the GOP cache fill) before players join.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(a.players.max(1));
    let stats: Vec<Arc<PlayerStats>> = (0..a.players)
        .map(|_| Arc::new(PlayerStats::default()))
        .collect();
    let ramp = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(a.ramp_concurrency.max(1)));
    let mut ok = 0usize;
    let mut failures: HashMap<String, u64> = HashMap::new();
    let ramp_deadline = ramp + Duration::from_secs_f64(a.ramp_timeout.clamp(1.0, 3600.0));
    for (i, st) in stats.iter().enumerate() {
        let Ok(permit) =
            tokio::time::timeout_at(ramp_deadline, limit.clone().acquire_owned()).await
        else {
            let reason = format!("not started: the ramp took over {} s", a.ramp_timeout);
            *failures.entry(reason).or_default() += (a.players - i) as u64;
            break;
        };
        let permit = permit?;
        let (u, st, sh, tx) = (a.url.clone(), st.clone(), shared.clone(), ready_tx.clone());
        match &http_url {
            Some(url) => background.spawn(http_player::player(url.clone(), st, sh, tx, permit)),
            None => background.spawn(player(u, player_tls.clone(), st, sh, tx, permit)),
        };
        while let Ok(r) = ready_rx.try_recv() {
            match r {
                Ok(()) => ok += 1,
                Err(e) => *failures.entry(e).or_default() += 1,
            }
        }
    }
    let reported = ok + failures.values().sum::<u64>() as usize;
    ok += wait_ready(
        &mut ready_rx,
        a.players.saturating_sub(reported),
        &mut failures,
    )
    .await;
    eprintln!(
        "{ok} of {} players playing after {:.1}s",
        a.players,
        ramp.elapsed().as_secs_f64()
    );
    if a.input.is_some() {
        // Servers without a GOP cache send video from the next keyframe:
        // measure once every player has its first frame (or after 5 s).
        let t = Instant::now();
        while shared
            .first_frame
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
            < ok
            && t.elapsed() < Duration::from_secs(5)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let server_before = a.server_pid.and_then(proc_sample);
    let self_before = proc_sample(std::process::id());
    shared.measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    let mut peak_rss = 0;
    while t0.elapsed().as_secs_f64() < a.duration {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(s) = a.server_pid.and_then(proc_sample) {
            peak_rss = peak_rss.max(s.rss);
        }
    }
    shared.measuring.store(false, Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    let server_after = a.server_pid.and_then(proc_sample);
    let self_after = proc_sample(std::process::id());
    // Late failures (players dropped during the run).
    while let Ok(r) = ready_rx.try_recv() {
        if let Err(e) = r {
            *failures.entry(e).or_default() += 1;
        }
    }
    background.abort_all();

    let bytes: u64 = stats.iter().map(|s| s.bytes.load(Ordering::Relaxed)).sum();
    let msgs: u64 = stats
        .iter()
        .map(|s| s.messages.load(Ordering::Relaxed))
        .sum();
    let sent = sent_video.load(Ordering::Relaxed);
    // Behind: missed more than 1 s worth of the frames published during the
    // window (25 fps streams: 25 frames), or latency above 1 s at the end.
    let behind = if a.input.is_some() {
        stats
            .iter()
            .filter(|s| s.video.load(Ordering::Relaxed) + 25 < sent)
            .count()
    } else {
        0
    };
    let mbps = bytes as f64 * 8.0 / secs / 1e6;
    println!(
        "bench play: {ok} players for {secs:.1}s: {mbps:.1} Mbit/s delivered, {:.1} messages/s per player",
        msgs as f64 / secs / ok.max(1) as f64
    );
    let mut result = format!(
        "RESULT play players={} playing={ok} mbps={mbps:.2}",
        a.players
    );
    if a.input.is_some() {
        let lats: Vec<f64> = shared
            .latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|&x| f64::from(x))
            .collect();
        let mut sorted = lats.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        println!(
            "published {sent} video frames; players behind real time (missed > 1 s of frames): {behind}"
        );
        println!(
            "end-to-end latency publisher -> player: {}",
            percentiles(lats)
        );
        let mut ff: Vec<f64> = shared
            .first_frame
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        ff.sort_by(|a, b| a.total_cmp(b));
        println!(
            "time from connect to first video frame: {}",
            percentiles(ff.clone())
        );
        result += &format!(
            " behind={behind} lat_p50_ms={:.2} lat_p99_ms={:.2} first_frame_p95_ms={:.2}",
            pct(&sorted, 0.5),
            pct(&sorted, 0.99),
            pct(&ff, 0.95)
        );
    }
    for (why, count) in &failures {
        println!("failed {count}x: {why}");
    }
    if let (Some(s0), Some(s1)) = (server_before, server_after) {
        let rss = s1.rss;
        let pct_of = |ticks: u64| ticks as f64 / TICKS_PER_SEC / secs * 100.0;
        let cpu = pct_of(s1.ticks() - s0.ticks());
        let (user, sys) = (pct_of(s1.user - s0.user), pct_of(s1.sys - s0.sys));
        // Server CPU per message a player received, and its user part.
        let per_msg = |ticks: u64| ticks as f64 / TICKS_PER_SEC * 1e6 / msgs.max(1) as f64;
        let (us_msg, user_us_msg) = (per_msg(s1.ticks() - s0.ticks()), per_msg(s1.user - s0.user));
        let per_gbit = if mbps > 0.0 {
            cpu / (mbps / 1000.0)
        } else {
            f64::NAN
        };
        let per_player = if ok > 0 {
            rss as f64 / ok as f64
        } else {
            f64::NAN
        };
        println!(
            "server: CPU {cpu:.1}% of a core = {per_gbit:.1}% per delivered Gbit/s; RSS {rss} KiB (peak {peak_rss}), {per_player:.1} KiB per player"
        );
        println!(
            "server: user {user:.1}% + kernel {sys:.1}%; {us_msg:.2} µs of CPU per delivered message ({user_us_msg:.2} µs in user space)"
        );
        result += &format!(
            " server_cpu_pct={cpu:.1} server_user_pct={user:.1} server_sys_pct={sys:.1} server_us_per_msg={us_msg:.3} server_user_us_per_msg={user_us_msg:.3} server_cpu_pct_per_gbit={per_gbit:.2} server_rss_kib={rss}"
        );
    }
    report_tool_cpu(self_before, self_after, secs, &mut result);
    println!("{result}");
    Ok(())
}
