//! `rtmpkit serve`: the live server.

use anyhow::{Context, Result, bail};
use rtmpkit::server::{Server, ServerOptions, StatsHandle};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Arguments of `rtmpkit serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// RTMP address to listen on [default: 0.0.0.0:1935].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// HTTP address for a JSON status page (GET /stats) [default: none].
    #[arg(long, value_name = "ADDR")]
    http_listen: Option<SocketAddr>,
    /// TOML file with any of the settings below (flags win).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Edge mode: pull streams nobody publishes here from this origin (rtmp://origin[:port]).
    #[arg(long, value_name = "URL")]
    relay_pull: Option<String>,
    /// Push every published stream to URL/app/stream as well (repeatable).
    #[arg(long, value_name = "URL")]
    relay_push: Vec<String>,
    /// Outgoing chunk size [default: 4096].
    #[arg(long)]
    chunk_size: Option<u32>,
    /// Most connections at once [default: 10000].
    #[arg(long)]
    max_connections: Option<usize>,
    /// Do not keep the last GOP for late joiners (they wait for the next keyframe).
    #[arg(long)]
    no_gop_cache: bool,
}

/// The config file: every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    http_listen: Option<SocketAddr>,
    chunk_size: Option<u32>,
    max_connections: Option<usize>,
    setup_timeout_secs: Option<f64>,
    idle_timeout_secs: Option<f64>,
    stuck_timeout_secs: Option<f64>,
    gop_cache: Option<bool>,
    gop_cache_max_bytes: Option<usize>,
    player_queue_soft_bytes: Option<usize>,
    player_queue_hard_bytes: Option<usize>,
    relay_pull: Option<String>,
    relay_push: Option<Vec<String>>,
}

fn secs(v: f64, name: &str) -> Result<Duration> {
    if !(v.is_finite() && v > 0.0) {
        bail!("{name} must be a number of seconds > 0");
    }
    Ok(Duration::from_secs_f64(v))
}

fn options(args: &ServeArgs) -> Result<(ServerOptions, Option<SocketAddr>)> {
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
    if let Some(v) = args.listen.or(file.listen) {
        o.listen = v;
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
        if !lower.starts_with("rtmp://") || lower.trim_end_matches('/').matches('/').count() > 2 {
            bail!("relay url {url:?} must be rtmp://host[:port] (the app/stream is added)");
        }
    }
    Ok((o, args.http_listen.or(file.http_listen)))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub async fn run(args: ServeArgs) -> Result<()> {
    let (opts, http) = options(&args)?;
    let listen = opts.listen;
    let server = Server::bind(opts)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    println!("listening rtmp {}", server.local_addr());
    if let Some(addr) = http {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        println!("listening http {}", l.local_addr()?);
        tokio::spawn(http_stats(l, server.stats()));
    }
    server.run(shutdown_signal()).await?;
    eprintln!("stopped");
    Ok(())
}

/// A tiny HTTP/1.0 responder: `GET /stats` gives the streams as JSON.
async fn http_stats(l: tokio::net::TcpListener, stats: StatsHandle) {
    loop {
        let Ok((mut s, _)) = l.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut req = vec![0u8; 2048];
            let n = match tokio::time::timeout(Duration::from_secs(5), s.read(&mut req)).await {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let line = String::from_utf8_lossy(&req[..n]);
            let (status, body) = if line.starts_with("GET /stats ") {
                let streams: Vec<String> = stats
                    .streams()
                    .iter()
                    .map(|s| {
                        format!(
                            "{{\"name\":{},\"publishing\":{},\"players\":{}}}",
                            json_string(&s.name),
                            s.publishing,
                            s.players
                        )
                    })
                    .collect();
                (
                    "200 OK",
                    format!("{{\"streams\":[{}]}}\n", streams.join(",")),
                )
            } else {
                (
                    "404 Not Found",
                    "{\"error\":\"try GET /stats\"}\n".to_owned(),
                )
            };
            let resp = format!(
                "HTTP/1.0 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
        });
    }
}

pub(crate) fn json_string(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}
