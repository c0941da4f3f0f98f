//! `rtmpkit serve`: the live server.

mod config;

use crate::record_args::RecordArgs;
use anyhow::{Context, Result};
use config::{HttpSettings, options};
use rtmpkit::server::{ReloadReport, Reloader, Server};
use std::net::SocketAddr;
use std::path::PathBuf;
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
    let stuck_timeout = opts.stuck_timeout;
    let record_dir = opts.record.as_ref().map(|r| r.dir.clone());
    let server = Server::bind(opts).await?;
    if let Some(addr) = server.local_addr() {
        println!("listening rtmp {addr}");
    }
    if let Some(addr) = server.tls_local_addr() {
        println!("listening rtmps {addr}");
    }
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
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
                token: http.token.clone(),
                stuck_timeout,
                hls: http.hls,
                recordings: record_dir,
                sessions: server.sessions(),
                reload: Some(reload_tx),
            },
        ));
    }
    tokio::spawn(reload_on_request(args, http, server.reloader(), reload_rx));
    server.run(crate::signals::interrupted()).await?;
    eprintln!("stopped");
    Ok(())
}

/// Reads the settings again at every SIGHUP and `POST /api/v1/reload`,
/// and applies them; a bad file changes nothing, and the log says where
/// it is wrong.
async fn reload_on_request(
    args: ServeArgs,
    http: HttpSettings,
    reloader: Reloader,
    mut requests: tokio::sync::mpsc::Receiver<
        tokio::sync::oneshot::Sender<Result<ReloadReport, String>>,
    >,
) {
    let mut hup = hangups();
    loop {
        let answer = tokio::select! {
            Some(()) = async { hup.as_mut()?.recv().await } => None,
            Some(tx) = requests.recv() => Some(tx),
            else => return,
        };
        let from = if answer.is_some() { "API" } else { "SIGHUP" };
        let result = reload(&args, &http, &reloader).await;
        match &result {
            Ok(r) => {
                let cert = if r.certificate_reloaded {
                    ", certificate read again"
                } else {
                    ""
                };
                println!(
                    "reloaded ({from}): {} listener change(s){cert}, {} session(s) closed",
                    r.listeners.len(),
                    r.closed_sessions
                );
                if !r.restart_needed.is_empty() {
                    warn!(
                        "changed settings that apply only after a restart (the old values stay): {}",
                        r.restart_needed.join(", ")
                    );
                }
            }
            Err(e) => error!("reload ({from}) refused, the running config stays: {e}"),
        }
        if let Some(tx) = answer {
            let _ = tx.send(result);
        }
    }
}

/// One reload: the file and flags read again and applied.
async fn reload(
    args: &ServeArgs,
    http: &HttpSettings,
    reloader: &Reloader,
) -> Result<ReloadReport, String> {
    let (opts, new_http) = options(args).map_err(|e| format!("{e:#}"))?;
    let mut report = reloader.reload(opts).await.map_err(|e| e.to_string())?;
    if new_http != *http {
        report.restart_needed.push("http_listen, http_token, hls_*");
    }
    Ok(report)
}

/// SIGHUP, where there is one.
fn hangups() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            warn!("cannot watch SIGHUP ({e}): reload through POST /api/v1/reload only");
            None
        }
    }
}
