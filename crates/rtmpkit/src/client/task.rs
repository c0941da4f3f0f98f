//! The task that owns a client's socket and session: TCP connect (and TLS
//! for `rtmps://`), then the
//! [driver](crate::driver) with [`ClientHandler`] until the session ends.

use super::{ClientCore, EndReason, Phase};
use crate::driver::{Connection, DriverOptions, Flow, Handler, Transport};
use crate::error::{Error, Stage};
use rtmpkit_proto::amf0::Amf0Object;
use rtmpkit_proto::handshake::HandshakeKind;
use rtmpkit_proto::media::Media;
use rtmpkit_proto::session::{Client, ClientConfig, ClientEvent, ClientMode, ClientSession};
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tracing::{Instrument, debug, info, warn};

/// Where the answer to a command goes.
pub(crate) type Reply = oneshot::Sender<Result<(), Error>>;

/// What a handle asks of the session task.
pub(crate) enum Command {
    Media(Media, Option<Reply>),
    Metadata(Amf0Object, Option<Reply>),
    Flush(Reply),
    Close(Reply),
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Media(..) => "Media",
            Command::Metadata(..) => "Metadata",
            Command::Flush(_) => "Flush",
            Command::Close(_) => "Close",
        })
    }
}

/// Resolves once dispose was called.
async fn disposed(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|d| *d).await;
}

/// The session task: connect, drive, record why it ended. `started` always
/// gets an answer.
pub(crate) async fn run(
    core: Arc<ClientCore>,
    commands: mpsc::Receiver<Command>,
    started: oneshot::Sender<Result<(), Error>>,
) {
    let span = core.span.clone();
    async move {
        let mut dispose = core.dispose_tx.subscribe();
        let deadline = (!core.opts.timeout.is_zero()).then(|| Instant::now() + core.opts.timeout);
        let dialed = tokio::select! {
            r = dial(&core, deadline) => r,
            _ = disposed(&mut dispose) => Err(Error::Disposed),
        };
        let handler = ClientHandler {
            core: core.clone(),
            commands,
            started: Some(started),
            dispose,
            deadline,
        };
        let reason = match dialed {
            Ok(Dialed::Plain(tcp)) => drive(connection(&core, tcp), handler).await,
            Ok(Dialed::Tls(tls)) => drive(connection(&core, *tls), handler).await,
            Err(e) => {
                warn!(error = %e, "start failed");
                if let Some(tx) = handler.started {
                    let _ = tx.send(Err(e.clone()));
                }
                match e {
                    Error::Disposed => EndReason::Disposed,
                    e => EndReason::Failed(e),
                }
            }
        };
        core.finish(reason);
    }
    .instrument(span)
    .await
}

/// Runs a connected session to its end.
async fn drive<T: Transport>(mut conn: Connection<T, Client>, mut h: ClientHandler) -> EndReason {
    let r = conn.run(&mut h).await;
    match (r, h.started.take()) {
        (Ok(reason), None) => reason,
        (Ok(reason), Some(tx)) => {
            // Stopped before publish / play started: disposed.
            let _ = tx.send(Err(Error::Disposed));
            reason
        }
        (Err(e), Some(tx)) => {
            warn!(error = %e, "start failed");
            let _ = tx.send(Err(e.clone()));
            EndReason::Failed(e)
        }
        (Err(e), None) if e.is_closed() => EndReason::PeerClosed,
        (Err(e), None) => EndReason::Failed(e),
    }
}

/// A connected socket, plain or TLS.
enum Dialed {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// DNS, TCP connect and (for rtmps) the TLS handshake, within the start
/// deadline.
async fn dial(core: &ClientCore, deadline: Option<Instant>) -> Result<Dialed, Error> {
    let peer = core.url_text.as_str();
    let within = |stage: Stage| {
        move |_| Error::Timeout {
            stage,
            peer: peer.to_owned(),
            after: core.opts.timeout,
        }
    };
    let dial = TcpStream::connect(core.url.authority());
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
    if !core.url.tls {
        return Ok(Dialed::Plain(stream));
    }
    let config = core
        .opts
        .tls
        .clone()
        .unwrap_or_else(crate::tls::default_client_config);
    let name = ServerName::try_from(core.url.host.clone()).map_err(|_| Error::Tls {
        peer: peer.to_owned(),
        reason: format!("{:?} is not a valid TLS server name", core.url.host),
    })?;
    let handshake = TlsConnector::from(config).connect(name, stream);
    let tls = match deadline {
        Some(d) => tokio::time::timeout_at(d, handshake)
            .await
            .map_err(within(Stage::Tls))?,
        None => handshake.await,
    }
    .map_err(|e| Error::Tls {
        peer: peer.to_owned(),
        reason: crate::tls::describe_failure(&e),
    })?;
    debug!("tls connected");
    Ok(Dialed::Tls(Box::new(tls)))
}

/// The session and the driver over a connected transport.
fn connection<T: Transport>(core: &ClientCore, transport: T) -> Connection<T, Client> {
    let mut cfg = match core.mode {
        ClientMode::Publish => ClientConfig::publish(&core.url),
        ClientMode::Play => ClientConfig::play(&core.url),
    };
    cfg.chunk_size = core.opts.chunk_size;
    if core.opts.complex_handshake {
        cfg.handshake = HandshakeKind::Digest;
    }
    cfg.ping_interval = (!core.opts.ping_interval.is_zero()).then_some(core.opts.ping_interval);
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
    Connection::new(transport, session, &core.url_text, opts).with_counters(core.io.clone())
}

/// Why the application side wakes the driver.
pub(crate) enum Signal {
    Command(Option<Command>),
    Disposed,
}

/// A client session's application side: commands from the handles, media
/// to the pull queue, the start and read deadlines.
struct ClientHandler {
    core: Arc<ClientCore>,
    commands: mpsc::Receiver<Command>,
    /// Answered once publish / play started (or the start failed).
    started: Option<oneshot::Sender<Result<(), Error>>>,
    dispose: watch::Receiver<bool>,
    deadline: Option<Instant>,
}

impl ClientHandler {
    /// Carries out one write-type command and answers it after the bytes
    /// were written (or buffered, with a write buffer).
    async fn write<T: Transport>(
        conn: &mut Connection<T, Client>,
        queue: impl FnOnce(&mut ClientSession) -> Result<(), rtmpkit_proto::Error>,
        reply: Option<Reply>,
    ) -> Result<Flow<EndReason>, Error> {
        let r = match queue(conn.session_mut()) {
            Ok(()) => conn.write_due().await,
            Err(e) => Err(Error::from_core(Stage::Streaming, conn.peer(), e)),
        };
        match (r, reply) {
            // A queued write that failed: nobody waits for the answer, so
            // the session ends with it.
            (Err(e), None) if !matches!(e, Error::Protocol { .. }) => Err(e),
            (r, Some(reply)) => {
                let _ = reply.send(r);
                Ok(Flow::Continue)
            }
            (Err(e), None) => {
                warn!("dropped a message: {e}");
                Ok(Flow::Continue)
            }
            (Ok(()), None) => Ok(Flow::Continue),
        }
    }
}

impl<T: Transport> Handler<T, Client> for ClientHandler {
    type Signal = Signal;
    type Stop = EndReason;

    fn signal(&mut self) -> impl Future<Output = Signal> + Send {
        let (commands, dispose) = (&mut self.commands, &mut self.dispose);
        async move {
            tokio::select! {
                c = commands.recv() => Signal::Command(c),
                _ = disposed(dispose) => Signal::Disposed,
            }
        }
    }

    async fn on_signal(
        &mut self,
        conn: &mut Connection<T, Client>,
        signal: Signal,
    ) -> Result<Flow<EndReason>, Error> {
        let cmd = match signal {
            Signal::Disposed => return Ok(Flow::Stop(EndReason::Disposed)),
            // The core holds a sender for the session's whole life.
            Signal::Command(None) => return Ok(Flow::Continue),
            Signal::Command(Some(c)) => c,
        };
        match cmd {
            Command::Media(m, reply) => Self::write(conn, |s| s.send_media(&m), reply).await,
            Command::Metadata(m, reply) => Self::write(conn, |s| s.send_metadata(m), reply).await,
            Command::Flush(reply) => {
                let _ = reply.send(conn.flush().await);
                Ok(Flow::Continue)
            }
            Command::Close(reply) => {
                conn.session_mut().close();
                let r = conn.flush().await;
                let _ = reply.send(r);
                Ok(Flow::Stop(EndReason::Closed))
            }
        }
    }

    async fn on_events(
        &mut self,
        conn: &mut Connection<T, Client>,
    ) -> Result<Flow<EndReason>, Error> {
        while let Some(ev) = conn.session_mut().poll_event() {
            match ev {
                ClientEvent::PublishStarted | ClientEvent::PlayStarted => {
                    self.core.set_phase(Phase::Running);
                    if self.core.opts.complex_handshake {
                        debug!(
                            verified = conn.session().server_digest_verified(),
                            "server digest"
                        );
                    }
                    info!("started");
                    if let Some(tx) = self.started.take() {
                        let _ = tx.send(Ok(()));
                    }
                }
                ClientEvent::Media(m) => {
                    // A bounded queue: a slow consumer slows the reading of
                    // the socket, but dispose still gets through. Waiting
                    // (and watching for dispose) only when the queue is full.
                    let Err(async_channel::TrySendError::Full(m)) = self.core.media_tx.try_send(m)
                    else {
                        continue;
                    };
                    tokio::select! {
                        _ = self.core.media_tx.send(m) => {}
                        _ = disposed(&mut self.dispose) => return Ok(Flow::Stop(EndReason::Disposed)),
                    }
                }
                ClientEvent::StreamEnded(why) => {
                    info!(?why, "stream ended");
                    return Ok(Flow::Stop(EndReason::StreamEnded(why)));
                }
                ClientEvent::Status(s) => {
                    info!(code = %s.code, description = %s.description, "status");
                }
                ClientEvent::Notice(n) => debug!("{n}"),
                other => debug!(?other, "event"),
            }
        }
        Ok(Flow::Continue)
    }

    fn deadline(&self, conn: &Connection<T, Client>) -> Option<Instant> {
        if self.started.is_some() {
            return self.deadline;
        }
        let rt = self.core.opts.read_timeout;
        (!rt.is_zero()).then(|| conn.last_input() + rt)
    }

    fn on_deadline(&mut self, conn: &mut Connection<T, Client>) -> Result<Flow<EndReason>, Error> {
        if self.started.is_some() {
            return Err(Error::Timeout {
                stage: crate::driver::Staged::stage(conn.session()),
                peer: conn.peer().to_owned(),
                after: self.core.opts.timeout,
            });
        }
        Ok(Flow::Stop(EndReason::ReadTimeout))
    }
}
