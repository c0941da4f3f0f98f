//! The settings of `rtmpkit serve`: the TOML file (`--config`) and the
//! flags (which win), read into the library's [`ServerOptions`], with
//! `[apps."NAME"]` tables for per-application policy. Read at start and
//! again at every reload.

use super::ServeArgs;
use crate::record_args::{RecordFile, record_options};
use anyhow::{Context, Result, bail};
use rtmpkit::server::{AccessRule, AppPolicy, ClusterOptions, ServerOptions};
use rtmpkit::tls::ServerCertificate;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Per-application policy: `[apps."NAME"]`, `[apps."*"]`.
    #[serde(default)]
    apps: BTreeMap<String, AppTable>,
}

/// One `[apps."NAME"]` table: what differs from the top-level settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppTable {
    publish_secret: Option<String>,
    play_secret: Option<String>,
    on_publish: Option<String>,
    on_play: Option<String>,
    on_publish_done: Option<String>,
    on_play_done: Option<String>,
    on_connect: Option<String>,
    on_update: Option<String>,
    /// nginx-rtmp's access lines: `allow publish 10.0.0.0/8`, ...
    #[serde(default)]
    rules: Vec<Rule>,
    gop_cache: Option<bool>,
    record: Option<bool>,
    hls: Option<bool>,
    max_players: Option<usize>,
    max_publishers: Option<usize>,
    takeover_after_secs: Option<f64>,
}

/// An access line, checked as the file is read (an error names its line
/// and column).
#[derive(Debug)]
struct Rule(AccessRule);

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let line = String::deserialize(d)?;
        line.parse().map(Rule).map_err(serde::de::Error::custom)
    }
}

impl AppTable {
    /// `defaults` (the top-level settings) with this table's changes.
    fn policy(self, name: &str, defaults: &AppPolicy) -> Result<AppPolicy> {
        let mut p = defaults.clone();
        let a = &mut p.auth;
        let pairs = [
            (&mut a.publish_secret, self.publish_secret),
            (&mut a.play_secret, self.play_secret),
            (&mut a.on_publish, self.on_publish),
            (&mut a.on_play, self.on_play),
            (&mut a.on_publish_done, self.on_publish_done),
            (&mut a.on_play_done, self.on_play_done),
            (&mut a.on_connect, self.on_connect),
            (&mut a.on_update, self.on_update),
        ];
        for (field, value) in pairs {
            if let Some(v) = value {
                if v.is_empty() {
                    bail!("apps.{name:?}: a secret or hook must not be empty");
                }
                *field = Some(v);
            }
        }
        p.rules = self.rules.into_iter().map(|r| r.0).collect();
        p.gop_cache = self.gop_cache.unwrap_or(p.gop_cache);
        p.record = self.record.unwrap_or(p.record);
        p.hls = self.hls.unwrap_or(p.hls);
        p.max_players = self.max_players.or(p.max_players);
        p.max_publishers = self.max_publishers.or(p.max_publishers);
        if let Some(v) = self.takeover_after_secs {
            p.takeover_after = match v {
                0.0 => None,
                v => Some(secs(v, "takeover_after_secs")?),
            };
        }
        Ok(p)
    }
}

/// The HTTP side's settings.
#[derive(Debug, PartialEq)]
pub(super) struct HttpSettings {
    pub listen: Option<SocketAddr>,
    pub token: Option<String>,
    pub hls: rtmpkit::hls::Limits,
}

fn secs(v: f64, name: &str) -> Result<Duration> {
    if !(v.is_finite() && v > 0.0) {
        bail!("{name} must be a number of seconds > 0");
    }
    Ok(Duration::from_secs_f64(v))
}

/// Reads the file (if any) and the flags into settings.
pub(super) fn options(args: &ServeArgs) -> Result<(ServerOptions, HttpSettings)> {
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
    let defaults = o.app_defaults();
    for (name, table) in file.apps {
        if name.is_empty() || name.contains('/') {
            bail!("apps.{name:?}: an application name is one path segment, or \"*\" for the rest");
        }
        let policy = table.policy(&name, &defaults)?;
        o.apps.insert(name, policy);
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
