//! Reloading a running server's settings without dropping anyone who may
//! stay: [`Reloader::reload`] checks the new [`ServerOptions`] whole,
//! binds new listeners, and only then applies them:
//! - listeners are added, moved or removed; the TLS certificate is the
//!   new one for new handshakes;
//! - new requests get the new per-application policy (secrets, hooks,
//!   access rules, limits, GOP cache, recording, HLS, takeover);
//! - live sessions the new policy denies (an application no longer
//!   served, an access rule) are closed, with the reason logged;
//! - settings that only a restart applies are named in the report, and
//!   the running server keeps the old ones.
//!
//! A refused reload changes nothing.

use super::ServerOptions;
use super::context::{ServerContext, not_served};
use super::listen::{ListenerChange, bind};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::info;

/// Reloads a running server's settings (see
/// [`Server::reloader`](super::Server::reloader)).
#[derive(Debug, Clone)]
pub struct Reloader {
    pub(super) ctx: Arc<ServerContext>,
    pub(super) changes: mpsc::UnboundedSender<ListenerChange>,
    /// The settings in force; one reload at a time.
    pub(super) current: Arc<tokio::sync::Mutex<ServerOptions>>,
}

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadReport {
    /// Listener changes, e.g. `rtmp 0.0.0.0:1935 -> 0.0.0.0:1936`.
    pub listeners: Vec<String>,
    /// Whether the TLS certificate and key were read again (an RTMPS
    /// listener): new handshakes present them.
    pub certificate_reloaded: bool,
    /// Live sessions closed because the new policy denies them.
    pub closed_sessions: usize,
    /// Settings that changed but apply only after a restart (the old
    /// values stay in force).
    pub restart_needed: Vec<&'static str>,
}

impl Reloader {
    /// Applies `opts` to the running server, or changes nothing and says
    /// why (a bad hook URL, an address that cannot be bound, no listener).
    pub async fn reload(&self, opts: ServerOptions) -> io::Result<ReloadReport> {
        let invalid = |msg: &str| io::Error::new(io::ErrorKind::InvalidInput, msg.to_owned());
        let policy = opts.policy()?;
        if opts.listen.is_none() && opts.tls_listen.is_none() {
            return Err(invalid(
                "nothing to listen on: give a plain or a TLS address",
            ));
        }
        if opts.tls_listen.is_some() && opts.tls_certificate.is_none() {
            return Err(invalid("an RTMPS listener needs a certificate and key"));
        }
        let mut current = self.current.lock().await;
        let mut report = ReloadReport::default();
        let mut changes = Vec::new();
        let plain = rebind("rtmp", current.listen, opts.listen).await?;
        let tls = rebind("rtmps", current.tls_listen, opts.tls_listen).await?;
        if let Some((listener, said)) = plain {
            changes.push(ListenerChange::Plain(listener));
            report.listeners.push(said);
        }
        if let Some((listener, said)) = tls {
            changes.push(ListenerChange::Tls(listener));
            report.listeners.push(said);
        }
        if let Some(cert) = &opts.tls_certificate {
            changes.push(ListenerChange::TlsConfig(cert.server_config()));
            report.certificate_reloaded = true;
        }
        // Every listener is bound: from here on nothing fails.
        for change in changes {
            let _ = self.changes.send(change);
        }
        let policy = Arc::new(policy);
        *crate::sync::lock(&self.ctx.policy) = policy.clone();
        report.closed_sessions = self.ctx.sessions.close_where(|app, action, peer| {
            let Some(app_policy) = policy.app(app) else {
                return Some(format!("the reloaded config: {}", not_served(app)));
            };
            let action = action?;
            let ip = peer.map(|p| p.ip());
            let why = app_policy.policy.check_access(action, ip).err()?;
            Some(format!("the reloaded config: {} {why}", action.name()))
        });
        let mut kept = opts;
        report.restart_needed = keep_restart_only(&current, &mut kept);
        *current = kept;
        info!(
            listeners = ?report.listeners,
            closed = report.closed_sessions,
            restart_needed = ?report.restart_needed,
            "reloaded"
        );
        Ok(report)
    }
}

/// A listener that moves from `old` to `new`: bound (or `None`: closed),
/// and the change in words; `None` when it stays.
async fn rebind(
    what: &str,
    old: Option<SocketAddr>,
    new: Option<SocketAddr>,
) -> io::Result<Option<(Option<TcpListener>, String)>> {
    if old == new {
        return Ok(None);
    }
    let listener = match new {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let show = |a: Option<SocketAddr>| a.map_or("none".into(), |a| a.to_string());
    Ok(Some((
        listener,
        format!("{what} {} -> {}", show(old), show(new)),
    )))
}

/// Puts back into `new` the settings only a restart applies, so the
/// next reload names them again if they still differ; the names of those
/// that differed.
fn keep_restart_only(old: &ServerOptions, new: &mut ServerOptions) -> Vec<&'static str> {
    let mut differed = Vec::new();
    macro_rules! keep {
        ($($field:ident),*) => {$(
            if old.$field != new.$field {
                differed.push(stringify!($field));
                new.$field = old.$field.clone();
            }
        )*};
    }
    keep!(
        chunk_size,
        max_connections,
        setup_timeout,
        idle_timeout,
        stuck_timeout,
        max_write_delay,
        gop_cache_max_bytes,
        player_queue_soft_bytes,
        player_queue_hard_bytes,
        relay_pull,
        relay_push,
        record,
        cluster
    );
    differed
}
