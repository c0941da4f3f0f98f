//! The listening sockets and the accept loop: plain RTMP and RTMPS, each
//! replaceable while the server runs (a reload adds, moves or removes a
//! listener, or swaps the TLS configuration), with the connection limit
//! and a backoff when accepting fails.

use super::connection;
use super::context::ServerContext;
use super::sessions::SessionKind;
use crate::driver::SharedTcp;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tracing::{Instrument, error, warn};

/// Connections the kernel completes and queues for accept (capped by
/// `net.core.somaxconn`): a burst of encoders after a restart, or a storm
/// of players, waits in the queue instead of retrying SYNs for seconds.
const LISTEN_BACKLOG: u32 = 4096;

pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let listen = || {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    listen().map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Accepts from a listener; never resolves without one.
async fn accept(l: Option<&TcpListener>) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// A change to the listeners of a running server.
#[derive(Debug)]
pub(crate) enum ListenerChange {
    /// The plain RTMP listener is now this one (`None`: no plain RTMP).
    Plain(Option<TcpListener>),
    /// The RTMPS listener is now this one (`None`: no RTMPS).
    Tls(Option<TcpListener>),
    /// Handshakes from now on use this TLS configuration.
    TlsConfig(Arc<crate::tls::ServerConfig>),
}

/// The listening sockets the accept loop starts with.
#[derive(Debug)]
pub(crate) struct Listeners {
    pub plain: Option<TcpListener>,
    pub tls: Option<TcpListener>,
    pub tls_config: Option<Arc<crate::tls::ServerConfig>>,
}

/// Accepts and spawns connections until `quit`, applying `changes` as
/// they come; returns the connections, still running.
pub(crate) async fn accept_loop(
    mut listeners: Listeners,
    mut changes: mpsc::UnboundedReceiver<ListenerChange>,
    ctx: Arc<ServerContext>,
    mut quit: tokio::sync::oneshot::Receiver<()>,
) -> tokio::task::JoinSet<()> {
    let stop_rx = ctx.shutdown.clone();
    let limit = Arc::new(Semaphore::new(ctx.opts.max_connections));
    let mut tasks = tokio::task::JoinSet::new();
    let mut backoff = Duration::from_millis(5);
    let mut acceptor = listeners
        .tls_config
        .take()
        .map(tokio_rustls::TlsAcceptor::from);
    loop {
        let (accepted, secure) = tokio::select! {
            _ = &mut quit => break,
            r = accept(listeners.plain.as_ref()) => (r, false),
            r = accept(listeners.tls.as_ref()) => (r, true),
            Some(change) = changes.recv() => {
                match change {
                    ListenerChange::Plain(l) => listeners.plain = l,
                    ListenerChange::Tls(l) => listeners.tls = l,
                    ListenerChange::TlsConfig(c) => acceptor = Some(c.into()),
                }
                continue;
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let (socket, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait, then try again.
                error!("accept failed: {e}; retrying in {backoff:?}");
                ctx.counters.fail("accept", "os_error");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(5);
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            ctx.counters.fail("accept", "connection_limit");
            warn!(%peer, "connection refused: {} connections already", ctx.opts.max_connections);
            drop(socket);
            continue;
        };
        // Media is latency-sensitive and the driver batches its writes.
        let _ = socket.set_nodelay(true);
        let id = ctx.next_id();
        let span = tracing::info_span!("conn", id, %peer);
        let (sh, rx) = (ctx.clone(), stop_rx.clone());
        // One socket shared by the task, the fan-out and the sessions API.
        let tcp = SharedTcp::new(socket);
        match acceptor.clone().filter(|_| secure) {
            None => tasks.spawn(
                async move {
                    connection::serve(id, SessionKind::Rtmp, sh, tcp.clone(), peer, rx, Some(tcp))
                        .await;
                    drop(permit);
                }
                .instrument(span),
            ),
            Some(acceptor) => tasks.spawn(
                async move {
                    // The setup timeout covers the TLS handshake.
                    let setup = sh.opts.setup_timeout;
                    match tokio::time::timeout(setup, acceptor.accept(tcp.clone())).await {
                        Ok(Ok(tls)) => {
                            let tcp = Some(tcp);
                            connection::serve(id, SessionKind::Rtmps, sh, tls, peer, rx, tcp).await
                        }
                        Ok(Err(e)) => {
                            sh.counters.fail("tls", "handshake_failed");
                            warn!("TLS handshake failed: {}", crate::tls::describe_failure(&e))
                        }
                        Err(_) => {
                            sh.counters.fail("tls", "timeout");
                            warn!("TLS handshake not done after {setup:?}")
                        }
                    }
                    drop(permit);
                }
                .instrument(span),
            ),
        };
    }
    tasks
}
