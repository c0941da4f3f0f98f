//! One server connection: the socket, its [`ServerSession`], and its role
//! (publisher or player) in the hub.

use super::hub::{Frame, Item, PlayerQueue, PublishError, Stream};
use super::{ServerOptions, Shared};
use bytes::{Bytes, BytesMut};
use rtmpkit_proto::message::{Message, status, type_id};
use rtmpkit_proto::session::{ServerConfig, ServerEvent, ServerSession};
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

enum Role {
    None,
    Publisher {
        key: String,
        stream: Arc<Stream>,
    },
    Player {
        key: String,
        stream_id: u32,
        queue: Arc<PlayerQueue>,
    },
}

/// Why a connection ended, for the log.
enum End {
    PeerClosed,
    Error(String),
    Timeout(&'static str),
    Shutdown,
    Rejected,
}

pub(crate) struct Conn {
    id: u64,
    shared: Arc<Shared>,
    session: ServerSession,
    app: String,
    role: Role,
    out_batch: Vec<Item>,
    segments: Vec<Bytes>,
}

/// The stream key: `app/name` without the query.
fn stream_key(app: &str, name: &str) -> String {
    let name = name.split('?').next().unwrap_or(name);
    format!("{app}/{name}")
}

impl Conn {
    pub(crate) async fn run(
        id: u64,
        shared: Arc<Shared>,
        mut socket: TcpStream,
        peer: SocketAddr,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let _ = socket.set_nodelay(true);
        let opts: &ServerOptions = &shared.opts;
        let cfg = ServerConfig {
            chunk_size: opts.chunk_size,
            ..ServerConfig::default()
        };
        let seed = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(peer.port());
        let mut conn = Conn {
            id,
            session: ServerSession::new(cfg, std::time::Instant::now(), seed),
            shared: shared.clone(),
            app: String::new(),
            role: Role::None,
            out_batch: Vec::new(),
            segments: Vec::new(),
        };
        let end = conn.serve(&mut socket, &mut shutdown).await;
        conn.leave();
        match end {
            End::PeerClosed => debug!("connection closed by peer"),
            End::Error(e) => info!("connection closed: {e}"),
            End::Timeout(what) => info!("connection closed: {what} timed out"),
            End::Shutdown => debug!("connection closed: server shutting down"),
            End::Rejected => debug!("connection closed after a rejection"),
        }
    }

    async fn serve(&mut self, socket: &mut TcpStream, shutdown: &mut watch::Receiver<bool>) -> End {
        let opts = self.shared.opts.clone();
        // Players send little: start small, grow for publishers.
        let mut buf = BytesMut::with_capacity(2 * 1024);
        // Handshake, connect and publish / play must finish in time.
        let setup_deadline = Instant::now() + opts.setup_timeout;
        let mut last_input = Instant::now();
        loop {
            let queue = match &self.role {
                Role::Player { queue, .. } => Some(queue.clone()),
                _ => None,
            };
            let setup_done = !matches!(self.role, Role::None);
            let idle_deadline = last_input + opts.idle_timeout;
            buf.clear();
            tokio::select! {
                r = socket.read_buf(&mut buf) => {
                    match r {
                        Ok(0) => return End::PeerClosed,
                        Ok(n) if n == buf.capacity() && n < 64 * 1024 => buf.reserve(64 * 1024),
                        Ok(_) => {}
                        Err(e) => return End::Error(e.to_string()),
                    }
                    last_input = Instant::now();
                    if let Err(e) = self.session.handle_input(&buf, std::time::Instant::now()) {
                        // Answer nothing more: the bytes were broken.
                        return End::Error(e.to_string());
                    }
                    if let Some(end) = self.handle_events() {
                        let _ = self.flush(socket).await;
                        return end;
                    }
                }
                _ = async { queue.as_ref().expect("guarded").notify.notified().await }, if queue.is_some() => {
                    self.fill_from_queue();
                }
                _ = tokio::time::sleep_until(setup_deadline), if !setup_done => {
                    return End::Timeout("handshake / connect / publish or play");
                }
                _ = tokio::time::sleep_until(idle_deadline), if matches!(self.role, Role::Publisher { .. }) => {
                    return End::Timeout("publisher idle");
                }
                _ = super::signalled(shutdown) => {
                    if let Role::Player { stream_id, .. } = self.role {
                        let _ = self.session.send_stream_end(stream_id);
                    }
                    let _ = tokio::time::timeout(Duration::from_secs(1), self.flush(socket)).await;
                    return End::Shutdown;
                }
            }
            if let Err(e) = self.flush(socket).await {
                return e;
            }
        }
    }

    /// Writes what the session queued with vectored writes: chunk headers
    /// and slices of the shared payloads, no copy. A player that takes
    /// nothing within the stuck timeout is disconnected.
    async fn flush(&mut self, socket: &mut TcpStream) -> Result<(), End> {
        self.session.take_output(&mut self.segments);
        if self.segments.is_empty() {
            return Ok(());
        }
        let r = tokio::time::timeout(
            self.shared.opts.stuck_timeout,
            write_segments(socket, &self.segments),
        )
        .await;
        self.segments.clear();
        self.segments.shrink_to(64);
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(End::Error(e.to_string())),
            Err(_) => Err(End::Timeout("write (player not reading)")),
        }
    }

    /// Moves queued items into the session's output (one batch of up to
    /// 256 KiB, so a fast stream cannot starve the read side).
    fn fill_from_queue(&mut self) {
        let Role::Player {
            stream_id, queue, ..
        } = &self.role
        else {
            return;
        };
        let (sid, queue) = (*stream_id, queue.clone());
        let mut items = std::mem::take(&mut self.out_batch);
        queue.take(256 * 1024, &mut items);
        for item in items.drain(..) {
            let r = match item {
                Item::Frame(f) => {
                    self.session
                        .send_media_shared(sid, f.type_id, f.timestamp, &f.payload)
                }
                Item::StreamBegin => self.session.send_stream_begin(sid),
                Item::StreamEnd => self.session.send_stream_end(sid),
            };
            if let Err(e) = r {
                debug!("cannot send to player: {e}");
            }
        }
        // Keep little room between batches: thousands of players each
        // holding a GOP-sized batch vector would add up.
        items.shrink_to(32);
        self.out_batch = items;
    }

    /// Acts on session events; returns an end when the connection must close.
    fn handle_events(&mut self) -> Option<End> {
        while let Some(ev) = self.session.poll_event() {
            match ev {
                ServerEvent::ConnectRequested { app, tc_url, .. } => {
                    debug!(%app, ?tc_url, "connect");
                    if app.is_empty() {
                        let _ = self
                            .session
                            .reject_connect("an app is required: rtmp://host/app/stream");
                        return Some(End::Rejected);
                    }
                    self.app = app;
                    if let Err(e) = self.session.accept_connect() {
                        return Some(End::Error(e.to_string()));
                    }
                }
                ServerEvent::PublishRequested {
                    stream_id,
                    name,
                    kind,
                } => {
                    if !matches!(self.role, Role::None) {
                        let _ = self.session.reject_publish(
                            stream_id,
                            status::FAILED,
                            "this connection already publishes or plays",
                        );
                        continue;
                    }
                    let key = stream_key(&self.app, &name);
                    match self.shared.hub.publish(&key, self.id) {
                        Ok(stream) => {
                            info!(stream = %key, %kind, "publish");
                            let _ = self.session.accept_publish(stream_id);
                            self.shared.on_publish(&key);
                            self.role = Role::Publisher { key, stream };
                        }
                        Err(PublishError::AlreadyPublishing) => {
                            warn!(stream = %key, "publish refused: already publishing");
                            let _ = self.session.reject_publish(
                                stream_id,
                                status::PUBLISH_BAD_NAME,
                                "Already publishing",
                            );
                            return Some(End::Rejected);
                        }
                    }
                }
                ServerEvent::PlayRequested {
                    stream_id, name, ..
                } => {
                    if !matches!(self.role, Role::None) {
                        let _ = self.session.reject_play(
                            stream_id,
                            status::FAILED,
                            "this connection already publishes or plays",
                        );
                        continue;
                    }
                    let key = stream_key(&self.app, &name);
                    info!(stream = %key, "play");
                    let (_stream, queue) = self.shared.hub.play(&key, self.id);
                    let _ = self.session.accept_play(stream_id);
                    self.shared.on_play(&key);
                    self.role = Role::Player {
                        key,
                        stream_id,
                        queue,
                    };
                    // Send what a late joiner needs right away.
                    self.fill_from_queue();
                }
                ServerEvent::Metadata {
                    timestamp, data, ..
                } => {
                    if let Role::Publisher { stream, .. } = &self.role {
                        let payload = Message::data(data.values).payload();
                        stream.publish_frame(Frame::new(type_id::DATA_AMF0, timestamp, payload));
                    }
                }
                ServerEvent::Audio {
                    timestamp, payload, ..
                } => {
                    if let Role::Publisher { stream, .. } = &self.role {
                        stream.publish_frame(Frame::new(type_id::AUDIO, timestamp, payload));
                    }
                }
                ServerEvent::Video {
                    timestamp, payload, ..
                } => {
                    if let Role::Publisher { stream, .. } = &self.role {
                        stream.publish_frame(Frame::new(type_id::VIDEO, timestamp, payload));
                    }
                }
                ServerEvent::PublishEnded { .. } | ServerEvent::PlayEnded { .. } => {
                    self.leave();
                }
                ServerEvent::PingAnswered { .. } => {}
                ServerEvent::Notice(n) => debug!("{n}"),
                other => debug!(?other, "event"),
            }
        }
        None
    }

    /// Leaves the hub (idempotent).
    fn leave(&mut self) {
        match std::mem::replace(&mut self.role, Role::None) {
            Role::Publisher { key, .. } => {
                info!(stream = %key, "unpublish");
                self.shared.hub.unpublish(&key, self.id);
            }
            Role::Player { key, queue, .. } => {
                let dropped = queue.dropped();
                if dropped > 0 {
                    info!(stream = %key, dropped, "player left; messages dropped while it was behind");
                }
                self.shared.hub.stop_playing(&key, self.id);
                self.shared.on_stop_playing(&key);
            }
            Role::None => {}
        }
    }
}

/// Writes every segment in order with `writev`, up to 64 slices a call.
async fn write_segments(socket: &mut TcpStream, segs: &[Bytes]) -> std::io::Result<()> {
    let (mut idx, mut off) = (0usize, 0usize);
    while idx < segs.len() {
        let mut iov = Vec::with_capacity(64.min(segs.len() - idx));
        iov.push(IoSlice::new(&segs[idx][off..]));
        iov.extend(segs[idx + 1..].iter().take(63).map(|b| IoSlice::new(b)));
        let mut n = socket.write_vectored(&iov).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 && idx < segs.len() {
            let left = segs[idx].len() - off;
            if n >= left {
                n -= left;
                idx += 1;
                off = 0;
            } else {
                off += n;
                n = 0;
            }
        }
        // Skip empty segments.
        while idx < segs.len() && segs[idx].len() == off {
            idx += 1;
            off = 0;
        }
    }
    Ok(())
}
