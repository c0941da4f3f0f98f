//! The RTMP client over tokio: [`PushSession`] and [`PullSession`] on one
//! core (../shared/spec/client-session.md).
//!
//! One task reads the socket and feeds the sans-IO [`ClientSession`]; writes
//! happen in the caller's task (write queue 0) or in a writer task fed by a
//! bounded queue (write queue N). Bytes leave in the order the core produced
//! them because they are taken from the core only while the write half is
//! locked.

use crate::error::{Error, Stage};
use bytes::{Bytes, BytesMut};
use rtmpkit_proto::Timestamp;
use rtmpkit_proto::amf0::Amf0Object;
use rtmpkit_proto::handshake::HandshakeKind;
use rtmpkit_proto::message::{DataMessage, Message, type_id};
use rtmpkit_proto::session::{ClientConfig, ClientEvent, ClientMode, ClientSession, ClientState};
use rtmpkit_proto::url::RtmpUrl;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{Instrument, debug, info, warn};

pub use rtmpkit_proto::session::StreamEnd;

/// Options of a client session, with the defaults of the client spec.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// "Do" timeout: from the start of the TCP connect (DNS included) until
    /// `NetStream.Publish.Start` / `NetStream.Play.Start`. Zero: none. Default 10 s.
    pub timeout: Duration,
    /// Longest wait for incoming data once started. Zero: none.
    pub read_timeout: Duration,
    /// Longest a single socket write may block. Zero: none.
    pub write_timeout: Duration,
    /// Bytes asked of the socket per read. Zero: 64 KiB.
    pub read_buffer_size: usize,
    /// Bytes gathered before a write; `flush` sends the rest, and the read
    /// task flushes at most 20 ms after data was left. Zero: every write goes
    /// out at once.
    pub write_buffer_size: usize,
    /// Zero: writes happen in the calling task. N: writes go to a queue of N
    /// messages drained by a writer task; a full queue makes the writer wait.
    pub write_queue_size: usize,
    /// Use the digest ("complex") handshake.
    pub complex_handshake: bool,
    /// Our outgoing chunk size.
    pub chunk_size: u32,
    /// Messages buffered between the read task and [`PullSession::next_message`].
    pub pull_queue_size: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(10),
            read_timeout: Duration::ZERO,
            write_timeout: Duration::ZERO,
            read_buffer_size: 0,
            write_buffer_size: 0,
            write_queue_size: 0,
            complex_handshake: false,
            chunk_size: 4096,
            pull_queue_size: 1024,
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// We closed it cleanly ([`PushSession::close`] / [`PullSession::close`]).
    Closed,
    /// [`PushSession::dispose`] / [`PullSession::dispose`] was called.
    Disposed,
    /// The server closed the connection.
    PeerClosed,
    /// The played stream ended (StreamEOF, UnpublishNotify, Play.Stop).
    StreamEnded(StreamEnd),
    /// No data arrived within the read timeout.
    ReadTimeout,
    /// It failed; the message says why.
    Failed(String),
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndReason::Closed => f.write_str("closed"),
            EndReason::Disposed => f.write_str("disposed"),
            EndReason::PeerClosed => f.write_str("server closed the connection"),
            EndReason::StreamEnded(StreamEnd::Eof) => f.write_str("stream ended (StreamEOF)"),
            EndReason::StreamEnded(StreamEnd::UnpublishNotify) => {
                f.write_str("stream ended (publisher left)")
            }
            EndReason::StreamEnded(StreamEnd::Stopped) => f.write_str("stream ended (Play.Stop)"),
            EndReason::ReadTimeout => f.write_str("read timeout"),
            EndReason::Failed(e) => write!(f, "failed: {e}"),
        }
    }
}

/// What kind of message a pull session delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// `onMetaData` (the payload is its AMF0 encoding, an FLV script tag body).
    Metadata,
    /// An FLV audio tag body.
    Audio,
    /// An FLV video tag body.
    Video,
}

impl MediaKind {
    /// The RTMP message type / FLV tag type: 18, 8 or 9.
    pub fn type_id(self) -> u8 {
        match self {
            MediaKind::Metadata => type_id::DATA_AMF0,
            MediaKind::Audio => type_id::AUDIO,
            MediaKind::Video => type_id::VIDEO,
        }
    }
}

/// One message of a played stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaMessage {
    /// Metadata, audio or video.
    pub kind: MediaKind,
    /// Timestamp.
    pub timestamp: Timestamp,
    /// The body, shared without copies.
    pub payload: Bytes,
}

/// Counters and bitrates of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStat {
    /// Unique key, e.g. `RTMPPUSH1`.
    pub key: String,
    /// Always "RTMP".
    pub protocol: &'static str,
    /// When the session was created.
    pub start_time: SystemTime,
    /// The server's address once connected.
    pub remote_addr: Option<SocketAddr>,
    /// Bytes read from the socket.
    pub read_bytes: u64,
    /// Bytes written to the socket.
    pub wrote_bytes: u64,
    /// kbit/s read over the last [`PushSession::update_stat`] interval.
    pub read_bitrate_kbits: u64,
    /// kbit/s written over the last interval.
    pub write_bitrate_kbits: u64,
    /// The bitrate that matters: write for push, read for pull.
    pub bitrate_kbits: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    New,
    Starting,
    Running,
    Ended,
}

#[derive(Debug, Default)]
struct StatState {
    last_read: u64,
    last_written: u64,
    read_kbits: u64,
    write_kbits: u64,
    alive_read: Option<u64>,
    alive_written: Option<u64>,
}

enum Outgoing {
    Media {
        type_id: u8,
        timestamp: Timestamp,
        payload: Bytes,
    },
    Metadata(Amf0Object),
    Flush(oneshot::Sender<Result<(), Error>>),
    Close(oneshot::Sender<Result<(), Error>>),
}

/// Resolves once dispose was called (the guard of `wait_for` is not `Send`,
/// so it must not live across an await of the caller).
async fn disposed(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|d| *d).await;
}

/// Resolves once an end reason is recorded.
async fn ended(rx: &mut watch::Receiver<Option<EndReason>>) {
    let _ = rx.wait_for(Option::is_some).await;
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The client core that both faces share.
#[derive(Debug)]
struct Shared {
    key: String,
    mode: ClientMode,
    url: RtmpUrl,
    url_text: String,
    opts: ClientOptions,
    span: tracing::Span,
    phase: Mutex<Phase>,
    dispose_tx: watch::Sender<bool>,
    end_tx: watch::Sender<Option<EndReason>>,
    session: Mutex<Option<ClientSession>>,
    writer: tokio::sync::Mutex<Option<OwnedWriteHalf>>,
    queue_tx: Mutex<Option<mpsc::Sender<Outgoing>>>,
    media_rx: tokio::sync::Mutex<Option<mpsc::Receiver<MediaMessage>>>,
    start_time: SystemTime,
    remote: Mutex<Option<SocketAddr>>,
    read_bytes: AtomicU64,
    wrote_bytes: AtomicU64,
    stat: Mutex<StatState>,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outgoing::Media { .. } => "Media",
            Outgoing::Metadata(_) => "Metadata",
            Outgoing::Flush(_) => "Flush",
            Outgoing::Close(_) => "Close",
        })
    }
}

/// Locks a std mutex, recovering the data if a panicking thread poisoned it
/// (the state stays consistent: every critical section is a plain update).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn stage_of(state: ClientState, mode: ClientMode) -> Stage {
    match state {
        ClientState::ExpectHandshake => Stage::Handshake,
        ClientState::ExpectConnectResult => Stage::ConnectCommand,
        ClientState::ExpectCreateStreamResult => Stage::CreateStream,
        ClientState::ExpectStart => match mode {
            ClientMode::Publish => Stage::Publish,
            ClientMode::Play => Stage::Play,
        },
        ClientState::Started | ClientState::Closed => Stage::Streaming,
    }
}

impl Shared {
    fn new(mode: ClientMode, url: &str, opts: ClientOptions) -> Result<Arc<Self>, Error> {
        let url = RtmpUrl::parse(url)?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let key = match mode {
            ClientMode::Publish => format!("RTMPPUSH{id}"),
            ClientMode::Play => format!("RTMPPULL{id}"),
        };
        let url_text = url.to_string();
        let span = tracing::info_span!("rtmp", key = %key);
        span.in_scope(|| info!(url = %url_text, "new session"));
        Ok(Arc::new(Shared {
            key,
            mode,
            url,
            url_text,
            opts,
            span,
            phase: Mutex::new(Phase::New),
            dispose_tx: watch::channel(false).0,
            end_tx: watch::channel(None).0,
            session: Mutex::new(None),
            writer: tokio::sync::Mutex::new(None),
            queue_tx: Mutex::new(None),
            media_rx: tokio::sync::Mutex::new(None),
            start_time: SystemTime::now(),
            remote: Mutex::new(None),
            read_bytes: AtomicU64::new(0),
            wrote_bytes: AtomicU64::new(0),
            stat: Mutex::new(StatState::default()),
        }))
    }

    fn stage(&self) -> Stage {
        match lock(&self.session).as_ref() {
            Some(s) => stage_of(s.state(), self.mode),
            None => Stage::Connect,
        }
    }

    fn map_proto(&self, e: rtmpkit_proto::Error, stage: Stage) -> Error {
        match e {
            rtmpkit_proto::Error::Rejected { code, description } => Error::Rejected {
                stage,
                url: self.url_text.clone(),
                code,
                description,
            },
            other => Error::Protocol {
                stage,
                url: self.url_text.clone(),
                source: other,
            },
        }
    }

    fn io(&self, stage: Stage, source: std::io::Error) -> Error {
        Error::Io {
            stage,
            url: self.url_text.clone(),
            source,
        }
    }

    async fn start(self: &Arc<Self>) -> Result<(), Error> {
        {
            let mut p = lock(&self.phase);
            if *p != Phase::New {
                return Err(Error::Misuse("start may be called once"));
            }
            *p = Phase::Starting;
        }
        let mut dispose_rx = self.dispose_tx.subscribe();
        let started = tokio::select! {
            r = self.start_inner().instrument(self.span.clone()) => r,
            _ = disposed(&mut dispose_rx) => Err(Error::Disposed),
        };
        match started {
            Ok((rd, early)) => {
                *lock(&self.phase) = Phase::Running;
                let media_tx = if self.mode == ClientMode::Play {
                    let (tx, rx) = mpsc::channel(self.opts.pull_queue_size.max(1));
                    *self.media_rx.lock().await = Some(rx);
                    Some(tx)
                } else {
                    None
                };
                if self.opts.write_queue_size > 0 {
                    let (tx, rx) = mpsc::channel(self.opts.write_queue_size);
                    *lock(&self.queue_tx) = Some(tx);
                    let me = self.clone();
                    tokio::spawn(
                        async move { me.write_loop(rx).await }.instrument(self.span.clone()),
                    );
                }
                let me = self.clone();
                tokio::spawn(
                    async move { me.read_loop(rd, early, media_tx).await }
                        .instrument(self.span.clone()),
                );
                self.span.in_scope(|| info!("started"));
                Ok(())
            }
            Err(e) => {
                self.span.in_scope(|| warn!(error = %e, "start failed"));
                let reason = if e.is_disposed() {
                    EndReason::Disposed
                } else {
                    EndReason::Failed(e.to_string())
                };
                self.finish(reason).await;
                Err(e)
            }
        }
    }

    /// Connect, handshake, connect / createStream / publish or play, up to
    /// the start status. Every await is bounded by the do-timeout deadline.
    async fn start_inner(self: &Arc<Self>) -> Result<(OwnedReadHalf, Vec<ClientEvent>), Error> {
        if self.url.tls {
            return Err(Error::Unsupported(
                "rtmps:// (RTMP over TLS) is not supported yet",
            ));
        }
        let deadline = (!self.opts.timeout.is_zero()).then(|| Instant::now() + self.opts.timeout);
        let within = |stage: Stage| {
            let after = self.opts.timeout;
            let url = self.url_text.clone();
            move |_| Error::Timeout { stage, url, after }
        };
        let connect = TcpStream::connect(self.url.authority());
        let stream = match deadline {
            Some(d) => tokio::time::timeout_at(d, connect)
                .await
                .map_err(within(Stage::Connect))?,
            None => connect.await,
        }
        .map_err(|e| self.io(Stage::Connect, e))?;
        // Media is latency-sensitive and our writes are already batched.
        stream
            .set_nodelay(true)
            .map_err(|e| self.io(Stage::Connect, e))?;
        *lock(&self.remote) = stream.peer_addr().ok();
        debug!(remote = ?stream.peer_addr().ok(), "tcp connected");
        let (mut rd, wr) = stream.into_split();
        *self.writer.lock().await = Some(wr);

        let mut cfg = match self.mode {
            ClientMode::Publish => ClientConfig::publish(&self.url),
            ClientMode::Play => ClientConfig::play(&self.url),
        };
        cfg.chunk_size = self.opts.chunk_size;
        if self.opts.complex_handshake {
            cfg.handshake = HandshakeKind::Digest;
        }
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ NEXT_ID.load(Ordering::Relaxed).rotate_left(32);
        *lock(&self.session) = Some(ClientSession::new(cfg, std::time::Instant::now(), seed));
        self.flush_out(true, Stage::Handshake).await?;

        let mut buf = BytesMut::with_capacity(self.read_size());
        let mut early = Vec::new();
        loop {
            let stage = self.stage();
            buf.clear();
            let read = rd.read_buf(&mut buf);
            let n = match deadline {
                Some(d) => tokio::time::timeout_at(d, read)
                    .await
                    .map_err(within(stage))?,
                None => read.await,
            }
            .map_err(|e| self.io(stage, e))?;
            if n == 0 {
                return Err(Error::Closed {
                    stage,
                    url: self.url_text.clone(),
                });
            }
            self.read_bytes.fetch_add(n as u64, Ordering::Relaxed);
            let mut started = false;
            {
                let mut guard = lock(&self.session);
                let Some(s) = guard.as_mut() else {
                    return Err(Error::Disposed);
                };
                if let Err(e) = s.handle_input(&buf, std::time::Instant::now()) {
                    drop(guard);
                    return Err(self.map_proto(e, stage));
                }
                while let Some(ev) = s.poll_event() {
                    match ev {
                        ClientEvent::PublishStarted | ClientEvent::PlayStarted => started = true,
                        ev if started => early.push(ev),
                        ClientEvent::Notice(n) => debug!("{n}"),
                        ev => debug!(?ev, "start"),
                    }
                }
                if started && self.opts.complex_handshake {
                    debug!(verified = s.server_digest_verified(), "server digest");
                }
            }
            self.flush_out(true, stage).await?;
            if started {
                return Ok((rd, early));
            }
        }
    }

    fn read_size(&self) -> usize {
        if self.opts.read_buffer_size == 0 {
            64 * 1024
        } else {
            self.opts.read_buffer_size
        }
    }

    /// Writes what the core has queued. Without `force`, only once at least
    /// `write_buffer_size` bytes are waiting.
    async fn flush_out(&self, force: bool, stage: Stage) -> Result<(), Error> {
        let mut w = self.writer.lock().await;
        let Some(w) = w.as_mut() else {
            return Err(Error::Closed {
                stage,
                url: self.url_text.clone(),
            });
        };
        loop {
            let bytes = {
                let mut g = lock(&self.session);
                let Some(s) = g.as_mut() else {
                    return Ok(());
                };
                if !force && s.pending_output() < self.opts.write_buffer_size {
                    return Ok(());
                }
                s.poll_transmit()
            };
            let Some(b) = bytes else {
                return Ok(());
            };
            let write = w.write_all(&b);
            if self.opts.write_timeout.is_zero() {
                write.await
            } else {
                tokio::time::timeout(self.opts.write_timeout, write)
                    .await
                    .map_err(|_| Error::Timeout {
                        stage,
                        url: self.url_text.clone(),
                        after: self.opts.write_timeout,
                    })?
            }
            .map_err(|e| self.io(stage, e))?;
            self.wrote_bytes
                .fetch_add(b.len() as u64, Ordering::Relaxed);
        }
    }

    async fn read_loop(
        self: Arc<Self>,
        mut rd: OwnedReadHalf,
        early: Vec<ClientEvent>,
        media_tx: Option<mpsc::Sender<MediaMessage>>,
    ) {
        let mut dispose_rx = self.dispose_tx.subscribe();
        let mut end_rx = self.end_tx.subscribe();
        let mut buf = BytesMut::with_capacity(self.read_size());
        let read_timeout = self.opts.read_timeout;
        let buffered_writes = self.opts.write_buffer_size > 0;
        let mut pending_events = early;
        let reason = 'outer: loop {
            for ev in pending_events.drain(..) {
                if let Some(r) = self.deliver(ev, media_tx.as_ref()).await {
                    break 'outer r;
                }
            }
            buf.clear();
            let flush_tick = tokio::time::sleep(Duration::from_millis(20));
            let read_deadline = async {
                if read_timeout.is_zero() {
                    std::future::pending::<()>().await
                } else {
                    tokio::time::sleep(read_timeout).await
                }
            };
            let n = tokio::select! {
                _ = disposed(&mut dispose_rx) => break EndReason::Disposed,
                _ = ended(&mut end_rx) => return,
                _ = read_deadline => break EndReason::ReadTimeout,
                _ = flush_tick, if buffered_writes => {
                    if let Err(e) = self.flush_out(true, Stage::Streaming).await {
                        break EndReason::Failed(e.to_string());
                    }
                    continue;
                }
                r = rd.read_buf(&mut buf) => r,
            };
            let n = match n {
                Ok(0) => break EndReason::PeerClosed,
                Ok(n) => n,
                Err(e) => break EndReason::Failed(self.io(Stage::Streaming, e).to_string()),
            };
            self.read_bytes.fetch_add(n as u64, Ordering::Relaxed);
            {
                let mut g = lock(&self.session);
                let Some(s) = g.as_mut() else {
                    break EndReason::Disposed;
                };
                if let Err(e) = s.handle_input(&buf, std::time::Instant::now()) {
                    drop(g);
                    break EndReason::Failed(self.map_proto(e, Stage::Streaming).to_string());
                }
                while let Some(ev) = s.poll_event() {
                    pending_events.push(ev);
                }
            }
            // Acknowledgements and ping responses go out at once.
            if let Err(e) = self.flush_out(!buffered_writes, Stage::Streaming).await {
                break EndReason::Failed(e.to_string());
            }
        };
        self.finish(reason).await;
    }

    /// Hands one event to the user; returns an end reason when it ends the session.
    async fn deliver(
        &self,
        ev: ClientEvent,
        media_tx: Option<&mpsc::Sender<MediaMessage>>,
    ) -> Option<EndReason> {
        let msg = match ev {
            ClientEvent::Metadata { timestamp, data } => {
                let payload = Message::data(data.values).payload();
                MediaMessage {
                    kind: MediaKind::Metadata,
                    timestamp,
                    payload,
                }
            }
            ClientEvent::Audio { timestamp, payload } => MediaMessage {
                kind: MediaKind::Audio,
                timestamp,
                payload,
            },
            ClientEvent::Video { timestamp, payload } => MediaMessage {
                kind: MediaKind::Video,
                timestamp,
                payload,
            },
            ClientEvent::StreamEnded(why) => {
                info!(?why, "stream ended");
                return Some(EndReason::StreamEnded(why));
            }
            ClientEvent::Status(s) => {
                info!(code = %s.code, description = %s.description, "status");
                return None;
            }
            ClientEvent::Notice(n) => {
                debug!("{n}");
                return None;
            }
            other => {
                debug!(?other, "event");
                return None;
            }
        };
        if let Some(tx) = media_tx {
            // A bounded queue: a slow consumer slows the reading of the socket.
            let _ = tx.send(msg).await;
        }
        None
    }

    /// Ends the session once: records the reason, closes the socket.
    async fn finish(&self, reason: EndReason) {
        let first = self.end_tx.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(reason.clone());
                true
            } else {
                false
            }
        });
        *lock(&self.phase) = Phase::Ended;
        lock(&self.queue_tx).take();
        if let Some(mut w) = self.writer.lock().await.take() {
            // Best effort: do not wait on a peer that stopped reading.
            let _ = tokio::time::timeout(Duration::from_millis(100), w.shutdown()).await;
        }
        if first {
            self.span.in_scope(|| info!(%reason, "session ended"));
        }
    }

    fn dispose(&self) -> Result<(), Error> {
        match *lock(&self.phase) {
            Phase::New => Err(Error::Misuse("dispose: the session was never started")),
            Phase::Ended => Ok(()),
            Phase::Starting | Phase::Running => {
                self.dispose_tx.send_replace(true);
                Ok(())
            }
        }
    }

    async fn wait(&self) -> EndReason {
        let mut rx = self.end_tx.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(r) => r.clone().unwrap_or(EndReason::Disposed),
            // The sender lives in `self`, so this cannot happen while we hold it.
            Err(_) => EndReason::Disposed,
        }
    }

    fn ensure_running(&self) -> Result<(), Error> {
        match *lock(&self.phase) {
            Phase::Running => Ok(()),
            Phase::New | Phase::Starting => Err(Error::Misuse("the session has not started")),
            Phase::Ended => Err(Error::Closed {
                stage: Stage::Streaming,
                url: self.url_text.clone(),
            }),
        }
    }

    async fn submit(self: &Arc<Self>, item: Outgoing) -> Result<(), Error> {
        self.ensure_running()?;
        let tx = lock(&self.queue_tx).clone();
        match tx {
            Some(tx) => tx.send(item).await.map_err(|_| Error::Closed {
                stage: Stage::Streaming,
                url: self.url_text.clone(),
            }),
            None => self.apply(item).await,
        }
    }

    async fn apply(&self, item: Outgoing) -> Result<(), Error> {
        let (force, reply, close) = match item {
            Outgoing::Media {
                type_id,
                timestamp,
                payload,
            } => {
                self.with_session(|s| s.send_media(type_id, timestamp, &payload))?;
                (self.opts.write_buffer_size == 0, None, false)
            }
            Outgoing::Metadata(m) => {
                self.with_session(|s| s.send_metadata(m))?;
                (self.opts.write_buffer_size == 0, None, false)
            }
            Outgoing::Flush(r) => (true, Some(r), false),
            Outgoing::Close(r) => {
                self.with_session(|s| {
                    s.close();
                    Ok(())
                })?;
                (true, Some(r), true)
            }
        };
        let res = self.flush_out(force, Stage::Streaming).await;
        if close {
            self.finish(EndReason::Closed).await;
        }
        match reply {
            Some(r) => {
                let _ = r.send(res);
                Ok(())
            }
            None => res,
        }
    }

    fn with_session(
        &self,
        f: impl FnOnce(&mut ClientSession) -> Result<(), rtmpkit_proto::Error>,
    ) -> Result<(), Error> {
        let mut g = lock(&self.session);
        let s = g
            .as_mut()
            .ok_or(Error::Misuse("the session has not started"))?;
        f(s).map_err(|e| self.map_proto(e, Stage::Streaming))
    }

    async fn write_loop(self: Arc<Self>, mut rx: mpsc::Receiver<Outgoing>) {
        while let Some(item) = rx.recv().await {
            if let Err(e) = self.apply(item).await {
                self.finish(EndReason::Failed(e.to_string())).await;
                return;
            }
        }
    }

    async fn flush(self: &Arc<Self>) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.submit(Outgoing::Flush(tx)).await?;
        rx.await.unwrap_or(Err(Error::Disposed))
    }

    async fn close(self: &Arc<Self>) -> Result<(), Error> {
        if *lock(&self.phase) == Phase::Ended {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        self.submit(Outgoing::Close(tx)).await?;
        rx.await.unwrap_or(Err(Error::Disposed))
    }

    fn stat(&self) -> SessionStat {
        let st = lock(&self.stat);
        SessionStat {
            key: self.key.clone(),
            protocol: "RTMP",
            start_time: self.start_time,
            remote_addr: *lock(&self.remote),
            read_bytes: self.read_bytes.load(Ordering::Relaxed),
            wrote_bytes: self.wrote_bytes.load(Ordering::Relaxed),
            read_bitrate_kbits: st.read_kbits,
            write_bitrate_kbits: st.write_kbits,
            bitrate_kbits: match self.mode {
                ClientMode::Publish => st.write_kbits,
                ClientMode::Play => st.read_kbits,
            },
        }
    }

    /// Bitrate in kbit/s = byte delta * 8 / 1024 / seconds; an interval of
    /// zero changes nothing.
    fn update_stat(&self, interval: Duration) {
        let secs = interval.as_secs_f64();
        if secs <= 0.0 {
            return;
        }
        let r = self.read_bytes.load(Ordering::Relaxed);
        let w = self.wrote_bytes.load(Ordering::Relaxed);
        let mut st = lock(&self.stat);
        st.read_kbits = ((r - st.last_read) as f64 * 8.0 / 1024.0 / secs) as u64;
        st.write_kbits = ((w - st.last_written) as f64 * 8.0 / 1024.0 / secs) as u64;
        st.last_read = r;
        st.last_written = w;
    }

    fn is_alive(&self) -> (bool, bool) {
        let r = self.read_bytes.load(Ordering::Relaxed);
        let w = self.wrote_bytes.load(Ordering::Relaxed);
        let mut st = lock(&self.stat);
        let read_alive = st.alive_read.is_none_or(|prev| prev != r);
        let write_alive = st.alive_written.is_none_or(|prev| prev != w);
        st.alive_read = Some(r);
        st.alive_written = Some(w);
        (read_alive, write_alive)
    }
}

macro_rules! common_api {
    () => {
        /// Stops the session at once (no clean close): from any task, any
        /// number of times; the first call closes the socket, also while
        /// starting. Calling it on a session that was never started is an error.
        pub fn dispose(&self) -> Result<(), Error> {
            self.shared.dispose()
        }

        /// Waits until the session ends, and says why.
        pub async fn wait(&self) -> EndReason {
            self.shared.wait().await
        }

        /// The URL, without credentials.
        pub fn url(&self) -> &str {
            &self.shared.url_text
        }

        /// The application (every path item but the last).
        pub fn app_name(&self) -> &str {
            &self.shared.url.app
        }

        /// The stream name (the last path item, without the query).
        pub fn stream_name(&self) -> &str {
            &self.shared.url.stream
        }

        /// The raw query, if the URL had one.
        pub fn raw_query(&self) -> Option<&str> {
            self.shared.url.query.as_deref()
        }

        /// The unique key that prefixes this session's log lines.
        pub fn unique_key(&self) -> &str {
            &self.shared.key
        }

        /// Counters and the bitrates of the last [`Self::update_stat`].
        pub fn stat(&self) -> SessionStat {
            self.shared.stat()
        }

        /// Recomputes bitrates over `interval` (the time since the last call).
        pub fn update_stat(&self, interval: Duration) {
            self.shared.update_stat(interval)
        }

        /// Whether bytes were (read, written) since the previous call; the
        /// first call answers `(true, true)`.
        pub fn is_alive(&self) -> (bool, bool) {
            self.shared.is_alive()
        }

        /// Whether the session has started and not ended.
        pub fn is_running(&self) -> bool {
            *lock(&self.shared.phase) == Phase::Running
        }
    };
}

/// Publishes a live stream to a server.
///
/// ```no_run
/// # async fn f() -> Result<(), rtmpkit::Error> {
/// use rtmpkit::client::{ClientOptions, PushSession};
/// let push = PushSession::new("rtmp://127.0.0.1/live/test", ClientOptions::default())?;
/// push.start().await?;
/// push.write_media(9, 0.into(), bytes::Bytes::from_static(&[0x17, 0, 0, 0, 0])).await?;
/// push.close().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PushSession {
    shared: Arc<Shared>,
}

impl PushSession {
    /// A session for `url`; nothing happens until [`PushSession::start`].
    /// A URL without an app or stream name is an error here.
    pub fn new(url: &str, options: ClientOptions) -> Result<Self, Error> {
        Ok(PushSession {
            shared: Shared::new(ClientMode::Publish, url, options)?,
        })
    }

    /// Connects and publishes; returns once the server answered
    /// `NetStream.Publish.Start`, or with the error that stopped it.
    pub async fn start(&self) -> Result<(), Error> {
        self.shared.start().await
    }

    /// `new` + `start`.
    pub async fn connect(url: &str, options: ClientOptions) -> Result<Self, Error> {
        let s = Self::new(url, options)?;
        s.start().await?;
        Ok(s)
    }

    /// Sends an audio (8), video (9) or data (18) message; the session chunks it.
    pub async fn write_media(
        &self,
        type_id: u8,
        timestamp: Timestamp,
        payload: Bytes,
    ) -> Result<(), Error> {
        self.shared
            .submit(Outgoing::Media {
                type_id,
                timestamp,
                payload,
            })
            .await
    }

    /// Sends an FLV audio tag body.
    pub async fn write_audio(&self, timestamp: Timestamp, payload: Bytes) -> Result<(), Error> {
        self.write_media(type_id::AUDIO, timestamp, payload).await
    }

    /// Sends an FLV video tag body.
    pub async fn write_video(&self, timestamp: Timestamp, payload: Bytes) -> Result<(), Error> {
        self.write_media(type_id::VIDEO, timestamp, payload).await
    }

    /// Sends metadata as `@setDataFrame onMetaData`.
    pub async fn write_metadata(&self, metadata: Amf0Object) -> Result<(), Error> {
        self.shared.submit(Outgoing::Metadata(metadata)).await
    }

    /// Sends an FLV script tag body (`onMetaData ...`) as `@setDataFrame`.
    pub async fn write_script_tag(&self, body: &[u8]) -> Result<(), Error> {
        let data = DataMessage::decode(body)
            .map_err(|e| self.shared.map_proto(e.into(), Stage::Streaming))?;
        match data.metadata() {
            Some(m) => self.write_metadata(m.clone()).await,
            None => {
                self.write_media(
                    type_id::DATA_AMF0,
                    Timestamp::ZERO,
                    Bytes::copy_from_slice(body),
                )
                .await
            }
        }
    }

    /// Sends everything buffered.
    pub async fn flush(&self) -> Result<(), Error> {
        self.shared.flush().await
    }

    /// Closes cleanly: FCUnpublish + deleteStream, everything flushed, socket closed.
    pub async fn close(&self) -> Result<(), Error> {
        self.shared.close().await
    }

    common_api!();
}

/// Plays a live stream from a server.
#[derive(Debug, Clone)]
pub struct PullSession {
    shared: Arc<Shared>,
}

impl PullSession {
    /// A session for `url`; nothing happens until [`PullSession::start`].
    pub fn new(url: &str, options: ClientOptions) -> Result<Self, Error> {
        Ok(PullSession {
            shared: Shared::new(ClientMode::Play, url, options)?,
        })
    }

    /// Connects and plays; returns once the server answered
    /// `NetStream.Play.Start`, or with the error that stopped it.
    pub async fn start(&self) -> Result<(), Error> {
        self.shared.start().await
    }

    /// `new` + `start`.
    pub async fn connect(url: &str, options: ClientOptions) -> Result<Self, Error> {
        let s = Self::new(url, options)?;
        s.start().await?;
        Ok(s)
    }

    /// The next metadata / audio / video message in order; `None` once the
    /// session ended (see [`PullSession::wait`] for why).
    pub async fn next_message(&self) -> Option<MediaMessage> {
        let mut g = self.shared.media_rx.lock().await;
        g.as_mut()?.recv().await
    }

    /// Closes cleanly: deleteStream, then the socket.
    pub async fn close(&self) -> Result<(), Error> {
        self.shared.close().await
    }

    common_api!();
}
