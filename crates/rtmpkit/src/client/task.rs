//! The task that owns a client's socket and session: TCP connect (and TLS
//! for `rtmps://`), then the
//! [driver](crate::driver) with [`ClientHandler`] until the session ends;
//! with a reconnect policy, again after a break.

use super::feed::Feed;
use super::handler::ClientHandler;
use super::request::Request;
use super::{ClientCore, EndReason};
use crate::driver::{Connection, DriverOptions, SharedTcp, Transport};
use crate::error::{Error, Stage};
use rtmpkit_proto::RtmpUrl;
use rtmpkit_proto::handshake::HandshakeKind;
use rtmpkit_proto::session::{ClientConfig, ClientMode, ClientSession, ClientSide};
#[cfg(feature = "tls")]
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
#[cfg(feature = "tls")]
use tokio_rustls::{TlsConnector, client::TlsStream};
use tracing::{Instrument, debug, warn};

/// Bytes a push with a drop policy lets the kernel hold unsent.
const UNSENT_IN_KERNEL: i32 = 16 * 1024;

/// The session task: connect, drive, and with a reconnect policy connect
/// again after a break; record why it ended. `started` always gets an
/// answer. A fed push takes its media from `feed`, and its first start is
/// retried under the reconnect policy too (a relay whose target is not up
/// yet keeps what its feed gathers meanwhile).
pub(crate) async fn run(
    core: Arc<ClientCore>,
    requests: mpsc::Receiver<Request>,
    started: oneshot::Sender<Result<(), Error>>,
    feed: Option<Box<dyn Feed>>,
) {
    let span = core.span.clone();
    async move {
        let retry_start = feed.is_some();
        let mut h = ClientHandler::new(core.clone(), requests, started, feed);
        let mut attempt = 0u32;
        let mut target = Target {
            url: core.url.clone(),
            text: core.url_text.clone(),
        };
        let reason = loop {
            h.starting = true;
            h.start_deadline =
                (!core.opts.timeout.is_zero()).then(|| Instant::now() + core.opts.timeout);
            let dialed = tokio::select! {
                r = dial(&core, &target, h.start_deadline) => r,
                _ = crate::sync::raised(&mut h.dispose) => Err(Error::Disposed),
            };
            let reason = match dialed {
                Ok(Dialed::Plain(tcp)) => drive(connection(&core, &target, tcp), &mut h).await,
                #[cfg(feature = "tls")]
                Ok(Dialed::Tls(tls)) => drive(connection(&core, &target, *tls), &mut h).await,
                Err(e) => start_failed(e),
            };
            if let Some(q) = &core.queue {
                // What this connection had not delivered is gone with it.
                q.connected(None);
            }
            if let Some(tc_url) = h.move_to.take() {
                // The server asked us to move (E-RTMP ReconnectRequest): at
                // once, to the named server or the same one.
                match Target::moved(&target, tc_url.as_deref()) {
                    Ok(next) => {
                        warn!("the server asked us to reconnect: now {}", next.text);
                        target = next;
                        h.on_break();
                        continue;
                    }
                    Err(e) => warn!("ignored a reconnect request: {e}"),
                }
            }
            let Some(policy) = core.opts.reconnect.as_ref() else {
                break reason;
            };
            let broke = matches!(&reason, EndReason::PeerClosed | EndReason::ReadTimeout)
                || matches!(&reason, EndReason::Failed(e) if !e.is_disposed());
            if !((h.ever_started || retry_start) && broke) {
                break reason;
            }
            if !h.starting {
                // This connection had started: the count starts again.
                attempt = 0;
            }
            attempt += 1;
            if !policy.allows(attempt) {
                warn!(
                    "{reason}; giving up after {} attempts to reconnect",
                    attempt - 1
                );
                break reason;
            }
            if h.ever_started {
                h.on_break();
            }
            let delay = policy.delay(attempt, jitter_sample());
            warn!("{reason}; reconnecting in {delay:.1?} (attempt {attempt})");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = crate::sync::raised(&mut h.dispose) => break EndReason::Disposed,
            }
        };
        if let Some(tx) = h.started.take() {
            // Never started: the last failure answers the start.
            let _ = tx.send(Err(match &reason {
                EndReason::Failed(e) => e.clone(),
                _ => Error::Disposed,
            }));
        }
        core.finish(reason);
    }
    .instrument(span)
    .await
}

/// Where the session connects: the URL it was made with, or the one a
/// reconnect request named.
struct Target {
    url: RtmpUrl,
    /// As named in errors (no password).
    text: String,
}

impl Target {
    /// The target after a reconnect request: `tc_url` absolute
    /// (`rtmp://host/app`), scheme-relative (`//host/app`) or path-relative
    /// (`/app`), with the same stream; `None` keeps the target.
    fn moved(current: &Target, tc_url: Option<&str>) -> Result<Target, Error> {
        let Some(tc) = tc_url.filter(|t| !t.is_empty()) else {
            return Ok(Target {
                url: current.url.clone(),
                text: current.text.clone(),
            });
        };
        let u = &current.url;
        let scheme = if u.tls { "rtmps:" } else { "rtmp:" };
        let base = if tc.contains("://") {
            tc.to_owned()
        } else if tc.starts_with("//") {
            format!("{scheme}{tc}")
        } else {
            format!("{scheme}//{}{tc}", u.authority())
        };
        let full = format!("{}/{}", base.trim_end_matches('/'), u.stream_with_query());
        let url = RtmpUrl::parse(&full)?;
        Ok(Target {
            text: rtmpkit_proto::redact_url(&full),
            url,
        })
    }
}

/// A number in 0..1 for the reconnect jitter.
fn jitter_sample() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

/// A dial that failed: unless it is retried, the task's end answers the
/// start with it.
fn start_failed(e: Error) -> EndReason {
    warn!(error = %e, "start failed");
    match e {
        Error::Disposed => EndReason::Disposed,
        e => EndReason::Failed(e),
    }
}

/// Runs a connected session to its end.
async fn drive<T: Transport>(
    mut conn: Connection<T, ClientSide>,
    h: &mut ClientHandler,
) -> EndReason {
    let r = conn.run(h).await;
    let starting = h.started.is_some();
    match r {
        Ok(reason) => reason,
        Err(e) if starting => start_failed(e),
        Err(e) if e.is_closed() => EndReason::PeerClosed,
        Err(e) => EndReason::Failed(e),
    }
}

/// A connected socket, plain or TLS.
enum Dialed {
    Plain(SharedTcp),
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream<SharedTcp>>),
}

/// DNS, TCP connect and (for rtmps) the TLS handshake, within the start
/// deadline.
async fn dial(
    core: &ClientCore,
    target: &Target,
    deadline: Option<Instant>,
) -> Result<Dialed, Error> {
    let peer = target.text.as_str();
    let url = &target.url;
    let within = |stage: Stage| {
        move |_| Error::Timeout {
            stage,
            peer: peer.to_owned(),
            after: core.opts.timeout,
        }
    };
    let dial = TcpStream::connect(url.authority());
    let stream = match deadline {
        Some(d) => tokio::time::timeout_at(d, dial)
            .await
            .map_err(within(Stage::Connect))?,
        None => dial.await,
    }
    .map_err(|e| Error::io(Stage::Connect, peer, e))?;
    // Media is latency-sensitive and our writes are already batched.
    stream
        .set_nodelay(true)
        .map_err(|e| Error::io(Stage::Connect, peer, e))?;
    if let Ok(addr) = stream.peer_addr() {
        let _ = core.remote.set(addr);
    }
    debug!(remote = ?stream.peer_addr().ok(), "tcp connected");
    let stream = SharedTcp::new(stream);
    if let Some(q) = &core.queue {
        // A drop policy: what waits should wait in the session's queue,
        // where it can be dropped, not unsent in the kernel.
        if let Err(e) = stream.set_notsent_lowat(UNSENT_IN_KERNEL) {
            debug!("TCP_NOTSENT_LOWAT not set: {e}");
        }
        q.connected(Some(stream.clone()));
    }
    if !url.tls {
        return Ok(Dialed::Plain(stream));
    }
    tls_handshake(core, target, stream, deadline).await
}

/// The TLS handshake of an `rtmps://` session, within the start deadline.
#[cfg(feature = "tls")]
async fn tls_handshake(
    core: &ClientCore,
    target: &Target,
    stream: SharedTcp,
    deadline: Option<Instant>,
) -> Result<Dialed, Error> {
    let (peer, url) = (target.text.as_str(), &target.url);
    let config = core
        .opts
        .tls
        .clone()
        .unwrap_or_else(crate::tls::default_client_config);
    let name = ServerName::try_from(url.host.clone()).map_err(|_| Error::Tls {
        peer: peer.to_owned(),
        reason: format!("{:?} is not a valid TLS server name", url.host),
    })?;
    let handshake = TlsConnector::from(config).connect(name, stream);
    let tls = match deadline {
        Some(d) => tokio::time::timeout_at(d, handshake)
            .await
            .map_err(|_| Error::Timeout {
                stage: Stage::Tls,
                peer: peer.to_owned(),
                after: core.opts.timeout,
            })?,
        None => handshake.await,
    }
    .map_err(|e| Error::Tls {
        peer: peer.to_owned(),
        reason: crate::tls::describe_failure(&e),
    })?;
    debug!("tls connected");
    Ok(Dialed::Tls(Box::new(tls)))
}

/// Without the `tls` feature an `rtmps://` session cannot start.
#[cfg(not(feature = "tls"))]
async fn tls_handshake(
    _core: &ClientCore,
    target: &Target,
    _stream: SharedTcp,
    _deadline: Option<Instant>,
) -> Result<Dialed, Error> {
    Err(Error::Tls {
        peer: target.text.clone(),
        reason: "rtmps:// needs rtmpkit built with the `tls` feature".into(),
    })
}

/// The session and the driver over a connected transport.
fn connection<T: Transport>(
    core: &ClientCore,
    target: &Target,
    transport: T,
) -> Connection<T, ClientSide> {
    let mut cfg = match core.mode {
        ClientMode::Publish => ClientConfig::publish(&target.url),
        ClientMode::Play => ClientConfig::play(&target.url),
    };
    cfg.chunk_size = core.opts.chunk_size;
    if core.opts.complex_handshake {
        cfg.handshake = HandshakeKind::Digest;
    }
    cfg.ping_interval = (!core.opts.ping_interval.is_zero()).then_some(core.opts.ping_interval);
    cfg.fourcc_list = core.opts.fourcc_list.clone();
    if !cfg.fourcc_list.is_empty() {
        cfg.caps_ex |= rtmpkit_proto::session::CAPS_EX_MULTITRACK;
    }
    if core.opts.reconnect.is_some() {
        // We act on NetConnection.Connect.ReconnectRequest.
        cfg.caps_ex |= rtmpkit_proto::session::CAPS_EX_RECONNECT;
    }
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ core.key.len() as u64;
    let session = ClientSession::new(cfg, std::time::Instant::now(), seed);
    let read = match core.opts.read_buffer_size {
        0 => 64 * 1024,
        n => n,
    };
    let opts = DriverOptions {
        read_size: read,
        max_read: read,
        write_timeout: (!core.opts.write_timeout.is_zero()).then_some(core.opts.write_timeout),
        write_buffer: core.opts.write_buffer_size,
        ..DriverOptions::default()
    };
    Connection::new(transport, session, &target.text, opts).with_counters(core.io.clone())
}
