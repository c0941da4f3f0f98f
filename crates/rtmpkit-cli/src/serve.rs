//! `rtmpkit serve`: the live server.

use crate::record_args::{RecordArgs, RecordFile, record_options};
use anyhow::{Context, Result, bail};
use rtmpkit::server::{ClusterOptions, Server, ServerOptions};
use rtmpkit::tls::ServerCertificate;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tracing::{error, warn};

/// Arguments of `rtmpkit serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Plain RTMP address to listen on, or `none` for TLS only [default: 0.0.0.0:1935].
    #[arg(long, value_name = "ADDR|none")]
    listen: Option<String>,
    /// RTMPS address to listen on (needs --tls-cert and --tls-key), e.g. 0.0.0.0:443.
    #[arg(long, value_name = "ADDR")]
    tls_listen: Option<SocketAddr>,
    /// PEM certificate chain of the RTMPS listener (leaf first). SIGHUP reloads it.
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of the RTMPS listener. SIGHUP reloads it.
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// HTTP address for the watch pages (GET /), HTTP-FLV, LL-HLS, /stats and
    /// /metrics [default: none]. The status pages are public unless --http-token.
    #[arg(long, value_name = "ADDR")]
    http_listen: Option<SocketAddr>,
    /// Require `Authorization: Bearer TOKEN` on the status page.
    #[arg(long, value_name = "TOKEN")]
    http_token: Option<String>,
    /// TOML file with any of the settings below (flags win).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the settings (the --config file and the flags) and exit, as
    /// `nginx -t` does: 0 when valid, 1 with the error (line and column for
    /// the file) when not.
    #[arg(long)]
    check_config: bool,
    /// Ask this HTTP URL before a publish starts (nginx-rtmp's on_publish: 2xx allows).
    #[arg(long, value_name = "URL")]
    on_publish: Option<String>,
    /// Ask this HTTP URL before a play starts (nginx-rtmp's on_play).
    #[arg(long, value_name = "URL")]
    on_play: Option<String>,
    /// Tell this HTTP URL when a publisher leaves.
    #[arg(long, value_name = "URL")]
    on_publish_done: Option<String>,
    /// Tell this HTTP URL when a player leaves.
    #[arg(long, value_name = "URL")]
    on_play_done: Option<String>,
    /// Ask this URL at every connect (nginx-rtmp's on_connect): non-2xx refuses.
    #[arg(long, value_name = "URL")]
    on_connect: Option<String>,
    /// Tell this URL every --notify-update-interval while a session publishes
    /// or plays (nginx-rtmp's on_update): non-2xx ends the session.
    #[arg(long, value_name = "URL")]
    on_update: Option<String>,
    /// How often on_update is told [default: 30].
    #[arg(long, value_name = "SECS")]
    notify_update_interval: Option<f64>,
    /// Seconds a hook may take; no answer refuses [default: 3].
    #[arg(long, value_name = "SECS")]
    hook_timeout: Option<f64>,
    /// Publishing needs ?expires=E&token=T signed with this secret (see `rtmpkit sign`;
    /// flags show in `ps`: publish_secret in --config keeps it private).
    #[arg(long, value_name = "SECRET")]
    publish_secret: Option<String>,
    /// Playing needs ?expires=E&token=T signed with this secret.
    #[arg(long, value_name = "SECRET")]
    play_secret: Option<String>,
    /// Seconds without media after which a new publisher of the stream
    /// replaces the old one (an encoder that reconnected); 0: never [default: 3].
    #[arg(long, value_name = "SECS")]
    takeover_after: Option<f64>,
    /// Fan-out latency bound in ms: a stream's messages wait up to this long
    /// and reach each player in one write (fewer writes, less CPU); 0: hand
    /// each message over at once (lowest latency) [default: 100].
    #[arg(long, value_name = "MS")]
    max_write_delay_ms: Option<u64>,
    /// Edge mode: pull streams nobody publishes here from this origin (rtmp[s]://origin[:port]).
    #[arg(long, value_name = "URL")]
    relay_pull: Option<String>,
    /// Push every published stream to URL/app/stream as well (repeatable).
    #[arg(long, value_name = "URL")]
    relay_push: Vec<String>,
    /// Cluster mode: share the stream directory with other nodes in this
    /// Redis (redis://HOST:PORT); needs --advertise.
    #[arg(long, value_name = "URL")]
    cluster: Option<String>,
    /// How the other cluster nodes reach this one (rtmp://HOST:PORT).
    #[arg(long, value_name = "URL")]
    advertise: Option<String>,
    /// Outgoing chunk size [default: 4096].
    #[arg(long)]
    chunk_size: Option<u32>,
    /// Most connections at once [default: 10000].
    #[arg(long)]
    max_connections: Option<usize>,
    /// Do not keep the last GOP for late joiners (they wait for the next keyframe).
    #[arg(long)]
    no_gop_cache: bool,
    /// LL-HLS part length in ms: shorter parts, lower latency, more requests
    /// (100-2000) [default: 500].
    #[arg(long, value_name = "MS")]
    hls_part_ms: Option<u32>,
    /// LL-HLS segments kept per stream, in memory (2-30) [default: 6].
    #[arg(long, value_name = "N")]
    hls_segments: Option<usize>,
    #[command(flatten)]
    record: RecordArgs,
}

/// The config file: every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    tls_listen: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    http_listen: Option<SocketAddr>,
    http_token: Option<String>,
    on_publish: Option<String>,
    on_play: Option<String>,
    on_publish_done: Option<String>,
    on_play_done: Option<String>,
    on_connect: Option<String>,
    on_update: Option<String>,
    notify_update_interval_secs: Option<f64>,
    hook_timeout_secs: Option<f64>,
    publish_secret: Option<String>,
    play_secret: Option<String>,
    chunk_size: Option<u32>,
    max_connections: Option<usize>,
    setup_timeout_secs: Option<f64>,
    idle_timeout_secs: Option<f64>,
    takeover_after_secs: Option<f64>,
    max_write_delay_ms: Option<u64>,
    stuck_timeout_secs: Option<f64>,
    gop_cache: Option<bool>,
    gop_cache_max_bytes: Option<usize>,
    player_queue_soft_bytes: Option<usize>,
    player_queue_hard_bytes: Option<usize>,
    relay_pull: Option<String>,
    relay_push: Option<Vec<String>>,
    cluster: Option<String>,
    advertise: Option<String>,
    cluster_claim_ttl_secs: Option<f64>,
    hls_part_ms: Option<u32>,
    hls_segments: Option<usize>,
    hls_segment_ms: Option<u32>,
    record: Option<PathBuf>,
    record_format: Option<String>,
    record_segment_secs: Option<f64>,
    record_path: Option<String>,
    record_delete_after_hours: Option<f64>,
    record_max_bytes: Option<String>,
    record_fsync: Option<bool>,
    on_record_done: Option<String>,
}

/// The HTTP side's settings.
struct HttpSettings {
    listen: Option<SocketAddr>,
    token: Option<String>,
    hls: rtmpkit::hls::Limits,
}

fn secs(v: f64, name: &str) -> Result<Duration> {
    if !(v.is_finite() && v > 0.0) {
        bail!("{name} must be a number of seconds > 0");
    }
    Ok(Duration::from_secs_f64(v))
}

fn options(args: &ServeArgs) -> Result<(ServerOptions, HttpSettings)> {
    let file = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config {}", path.display()))?;
            toml::from_str::<FileConfig>(&text)
                .with_context(|| format!("invalid config {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let mut o = ServerOptions::default();
    if let Some(v) = args.listen.clone().or(file.listen) {
        o.listen = match v.as_str() {
            "none" => None,
            addr => Some(
                addr.parse()
                    .with_context(|| format!("--listen {addr:?}: expected ADDR:PORT or none"))?,
            ),
        };
    }
    o.tls_listen = args.tls_listen.or(file.tls_listen);
    let cert = args.tls_cert.clone().or(file.tls_cert);
    let key = args.tls_key.clone().or(file.tls_key);
    match (o.tls_listen, cert, key) {
        (Some(_), Some(cert), Some(key)) => {
            o.tls_certificate = Some(ServerCertificate::load(&cert, &key)?);
        }
        (Some(_), _, _) => bail!("--tls-listen needs --tls-cert FILE and --tls-key FILE"),
        (None, Some(_), _) | (None, _, Some(_)) => {
            bail!("--tls-cert / --tls-key are used only with --tls-listen ADDR")
        }
        (None, None, None) => {}
    }
    if o.listen.is_none() && o.tls_listen.is_none() {
        bail!("--listen none needs --tls-listen ADDR: nothing to listen on");
    }
    let auth = &mut o.auth;
    auth.on_publish = args.on_publish.clone().or(file.on_publish);
    auth.on_play = args.on_play.clone().or(file.on_play);
    auth.on_publish_done = args.on_publish_done.clone().or(file.on_publish_done);
    auth.on_play_done = args.on_play_done.clone().or(file.on_play_done);
    auth.on_connect = args.on_connect.clone().or(file.on_connect);
    auth.on_update = args.on_update.clone().or(file.on_update);
    if let Some(v) = args
        .notify_update_interval
        .or(file.notify_update_interval_secs)
    {
        auth.update_interval = secs(v, "notify update interval")?;
    }
    if let Some(v) = args.hook_timeout.or(file.hook_timeout_secs) {
        auth.hook_timeout = secs(v, "hook timeout")?;
    }
    auth.publish_secret = args.publish_secret.clone().or(file.publish_secret);
    auth.play_secret = args.play_secret.clone().or(file.play_secret);
    for secret in [&auth.publish_secret, &auth.play_secret]
        .into_iter()
        .flatten()
    {
        if secret.is_empty() {
            bail!("a publish / play secret must not be empty");
        }
    }
    if let Some(v) = args.chunk_size.or(file.chunk_size) {
        if !(128..=0xFF_FFFF).contains(&v) {
            bail!("chunk size must be 128..=16777215");
        }
        o.chunk_size = v;
    }
    if let Some(v) = args.max_connections.or(file.max_connections) {
        o.max_connections = v.max(1);
    }
    if let Some(v) = file.setup_timeout_secs {
        o.setup_timeout = secs(v, "setup_timeout_secs")?;
    }
    if let Some(v) = file.idle_timeout_secs {
        o.idle_timeout = secs(v, "idle_timeout_secs")?;
    }
    if let Some(v) = args.takeover_after.or(file.takeover_after_secs) {
        o.takeover_after = match v {
            0.0 => None,
            v => Some(secs(v, "takeover after")?),
        };
    }
    if let Some(ms) = args.max_write_delay_ms.or(file.max_write_delay_ms) {
        if ms > 1000 {
            bail!("max write delay must be 0..=1000 ms");
        }
        o.max_write_delay = Duration::from_millis(ms);
    }
    if let Some(v) = file.stuck_timeout_secs {
        o.stuck_timeout = secs(v, "stuck_timeout_secs")?;
    }
    if let Some(v) = file.gop_cache {
        o.gop_cache = v;
    }
    if args.no_gop_cache {
        o.gop_cache = false;
    }
    if let Some(v) = file.gop_cache_max_bytes {
        o.gop_cache_max_bytes = v;
    }
    if let Some(v) = file.player_queue_soft_bytes {
        o.player_queue_soft_bytes = v;
    }
    if let Some(v) = file.player_queue_hard_bytes {
        o.player_queue_hard_bytes = v;
    }
    o.relay_pull = args.relay_pull.clone().or(file.relay_pull);
    o.relay_push = if args.relay_push.is_empty() {
        file.relay_push.unwrap_or_default()
    } else {
        args.relay_push.clone()
    };
    for url in o.relay_pull.iter().chain(o.relay_push.iter()) {
        let lower = url.to_ascii_lowercase();
        let scheme = lower.starts_with("rtmp://") || lower.starts_with("rtmps://");
        if !scheme || lower.trim_end_matches('/').matches('/').count() > 2 {
            bail!("relay url {url:?} must be rtmp[s]://host[:port] (the app/stream is added)");
        }
    }
    match (
        args.cluster.clone().or(file.cluster),
        args.advertise.clone().or(file.advertise),
    ) {
        (Some(redis), Some(advertise)) => {
            let lower = redis.to_ascii_lowercase();
            if !(lower.starts_with("redis://") || lower.starts_with("rediss://")) {
                bail!("--cluster {redis:?}: expected redis://HOST:PORT");
            }
            let url = advertise.to_ascii_lowercase();
            if !(url.starts_with("rtmp://") || url.starts_with("rtmps://"))
                || url.trim_end_matches('/').matches('/').count() > 2
            {
                bail!(
                    "--advertise {advertise:?}: expected rtmp[s]://HOST:PORT, as the other nodes reach this one"
                );
            }
            if o.relay_pull.is_some() {
                bail!(
                    "--cluster and --relay-pull do not go together: in a cluster, every node pulls from the stream's owner"
                );
            }
            let mut c = ClusterOptions::new(redis, advertise.trim_end_matches('/'));
            if let Some(v) = file.cluster_claim_ttl_secs {
                c.claim_ttl = secs(v, "cluster_claim_ttl_secs")?;
            }
            o.cluster = Some(c);
        }
        (Some(_), None) => bail!(
            "--cluster needs --advertise rtmp://HOST:PORT: how the other nodes reach this one"
        ),
        (None, Some(_)) => bail!("--advertise is used only with --cluster redis://HOST:PORT"),
        (None, None) => {}
    }
    o.record = record_options(
        &args.record,
        RecordFile {
            record: file.record,
            record_format: file.record_format,
            record_segment_secs: file.record_segment_secs,
            record_path: file.record_path,
            record_delete_after_hours: file.record_delete_after_hours,
            record_max_bytes: file.record_max_bytes,
            record_fsync: file.record_fsync,
            on_record_done: file.on_record_done,
        },
    )?;
    let d = rtmpkit::hls::Limits::default();
    let hls = rtmpkit::hls::Limits {
        part_ms: args.hls_part_ms.or(file.hls_part_ms).unwrap_or(d.part_ms),
        segments: args
            .hls_segments
            .or(file.hls_segments)
            .unwrap_or(d.segments),
        segment_ms: file.hls_segment_ms.unwrap_or(d.segment_ms),
    };
    if !(100..=2000).contains(&hls.part_ms) {
        bail!("hls_part_ms must be 100-2000 (ms)");
    }
    if !(2..=30).contains(&hls.segments) {
        bail!("hls_segments must be 2-30");
    }
    if hls.segment_ms < hls.part_ms * 2 || hls.segment_ms > 10_000 {
        bail!("hls_segment_ms must be at least two parts and at most 10000 (ms)");
    }
    let http = HttpSettings {
        listen: args.http_listen.or(file.http_listen),
        token: args.http_token.clone().or(file.http_token),
        hls,
    };
    if http.token.is_some() && http.listen.is_none() {
        bail!("--http-token is used only with --http-listen ADDR");
    }
    Ok((o, http))
}

/// Raises the soft open-files limit to the hard one (often 1024 against
/// 500,000 or more), and warns when it is still below what
/// `max_connections` needs. Out of descriptors, accepting pauses and
/// retries; current clients are not touched.
fn raise_open_files_limit(max_connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) if n < max_connections as u64 + 64 => tracing::warn!(
            "open files limit is {n}: fewer than max_connections ({max_connections}) can connect; raise it with ulimit -n"
        ),
        Ok(n) => tracing::debug!("open files limit {n}"),
        Err(e) => tracing::warn!("cannot read the open files limit: {e}"),
    }
}

pub async fn run(args: ServeArgs) -> Result<()> {
    let (opts, http) = options(&args)?;
    if args.check_config {
        opts.validate()?;
        match &args.config {
            Some(p) => println!(
                "rtmpkit serve: the configuration in {} is valid",
                p.display()
            ),
            None => println!("rtmpkit serve: the settings are valid"),
        }
        return Ok(());
    }
    raise_open_files_limit(opts.max_connections);
    let certificate = opts.tls_certificate.clone();
    let stuck_timeout = opts.stuck_timeout;
    let record_dir = opts.record.as_ref().map(|r| r.dir.clone());
    let server = Server::bind(opts).await?;
    if let Some(addr) = server.local_addr() {
        println!("listening rtmp {addr}");
    }
    if let Some(addr) = server.tls_local_addr() {
        println!("listening rtmps {addr}");
    }
    if let Some(addr) = http.listen {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let auth = if http.token.is_some() {
            "bearer token"
        } else {
            "public"
        };
        println!("listening http {} ({auth})", l.local_addr()?);
        tokio::spawn(rtmpkit::http::serve(
            l,
            rtmpkit::http::Handles {
                stats: server.stats(),
                drainer: server.drainer(),
                players: server.players(),
                token: http.token,
                stuck_timeout,
                hls: http.hls,
                recordings: record_dir,
                sessions: server.sessions(),
            },
        ));
    }
    if let Some(cert) = certificate {
        reload_on_hangup(cert);
    }
    server.run(crate::signals::interrupted()).await?;
    eprintln!("stopped");
    Ok(())
}

/// SIGHUP reads the certificate and key again; sessions stay up.
fn reload_on_hangup(cert: ServerCertificate) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            warn!("cannot watch SIGHUP: the certificate will not be reloaded");
            return;
        };
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match cert.reload() {
                    Ok(()) => println!("reloaded certificate (SIGHUP)"),
                    Err(e) => error!("SIGHUP: certificate not reloaded, the old one stays: {e}"),
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = cert;
}
