//! The RTMP client over tokio: [`PushSession`] and [`PullSession`], two thin
//! faces of one core (client-session spec, "One core, two faces").
//!
//! One task owns the socket and the [`ClientSession`](rtmpkit_proto::ClientSession)
//! and runs them on the [driver](crate::driver). The handles talk to it
//! through channels (requests in, media out) and read its state and
//! counters from atomics: nothing is locked around the session or the
//! socket.

mod congestion;
mod faces;
mod feed;
mod frames;
mod handler;
mod headers;
mod options;
mod request;
mod streams;
mod task;

pub use congestion::{Congestion, CongestionLevel};
pub use faces::{PullSession, PushSession};
pub use options::{ALL_FOURCCS, ClientOptions, DropPolicy, ReconnectPolicy};
pub use streams::{FrameStream, MediaSink, MediaStream};

use crate::driver::IoCounters;
use crate::error::{Error, Stage};
use congestion::{Put, Queued, SendQueue};
#[cfg(feature = "server")]
pub(crate) use feed::Fed;
pub(crate) use feed::Feed;
use request::Request;
use rtmpkit_proto::RtmpUrl;
use rtmpkit_proto::media::Media;
use rtmpkit_proto::session::ClientMode;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::info;

pub use rtmpkit_proto::session::StreamEnd;

/// Why a session ended.
#[derive(Debug, Clone)]
pub enum EndReason {
    /// We closed it cleanly ([`ClientHandle::close`]).
    Closed,
    /// [`ClientHandle::dispose`] was called.
    Disposed,
    /// The server closed the connection.
    PeerClosed,
    /// The played stream ended (StreamEOF, UnpublishNotify, Play.Stop).
    StreamEnded(StreamEnd),
    /// No data arrived within the read timeout.
    ReadTimeout,
    /// It failed, for this reason.
    Failed(Error),
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
    /// kbit/s read over the last [`ClientHandle::update_stat`] interval.
    pub read_bitrate_kbits: u64,
    /// kbit/s written over the last interval.
    pub write_bitrate_kbits: u64,
    /// The bitrate that matters: write for push, read for pull.
    pub bitrate_kbits: u64,
    /// Times the session started again after a break
    /// ([`ClientOptions::reconnect`]).
    pub reconnects: u64,
    /// The last break, in ms: for a push, from the last media written
    /// before it to the first written after; for a pull, from the last
    /// media received to the first received again.
    pub last_reconnect_gap_ms: Option<u64>,
    /// A push with a [`DropPolicy`]: media time not delivered yet, in ms
    /// (queued in the session, or written and not acknowledged by the
    /// server). 0 without a policy, where the writer waits instead.
    pub queued_ms: u64,
    /// A push with a [`DropPolicy`]: kbit/s the server acknowledged over
    /// the last two seconds, what the link carries now. Without one, the
    /// same as `write_bitrate_kbits`.
    pub send_bitrate_kbits: u64,
    /// Non-key video frames the [`DropPolicy`] did not send as they came:
    /// the first above [`DropPolicy::drop_inter_after`] and the frames
    /// after it up to the next keyframe. Keyframes and audio are never
    /// dropped.
    pub dropped_inter_frames: u64,
    /// Non-key video frames already queued that the [`DropPolicy`] dropped
    /// above [`DropPolicy::purge_after`].
    pub purged_inter_frames: u64,
}

/// Where a session is in its life, kept in an atomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    New = 0,
    Starting = 1,
    Running = 2,
    Ended = 3,
}

/// "Not measured yet" in the liveness atomics.
const UNSEEN: u64 = u64::MAX;

/// Bitrate and liveness bookkeeping, all atomics.
#[derive(Debug)]
struct Rates {
    last_read: AtomicU64,
    last_written: AtomicU64,
    read_kbits: AtomicU64,
    write_kbits: AtomicU64,
    alive_read: AtomicU64,
    alive_written: AtomicU64,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What the handles and the session task share: identity, channels and
/// atomics.
#[derive(Debug)]
struct ClientCore {
    key: String,
    mode: ClientMode,
    url: RtmpUrl,
    url_text: String,
    opts: ClientOptions,
    span: tracing::Span,
    phase: AtomicU8,
    dispose_tx: watch::Sender<bool>,
    end_tx: watch::Sender<Option<EndReason>>,
    /// Set once, by `start`.
    requests: OnceLock<mpsc::Sender<Request>>,
    media_tx: async_channel::Sender<Media>,
    media_rx: async_channel::Receiver<Media>,
    start_time: SystemTime,
    remote: OnceLock<SocketAddr>,
    io: Arc<IoCounters>,
    rates: Rates,
    reconnects: AtomicU64,
    /// `UNSEEN` until a reconnect.
    last_gap_ms: AtomicU64,
    /// A push with a drop policy: its send queue.
    queue: Option<Arc<SendQueue>>,
}

impl ClientCore {
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
        let io: Arc<IoCounters> = Arc::default();
        let queue = match (&opts.drop_policy, mode) {
            (Some(policy), ClientMode::Publish) => {
                Some(Arc::new(SendQueue::new(policy.clone(), io.clone())))
            }
            _ => None,
        };
        let (media_tx, media_rx) = async_channel::bounded(match mode {
            ClientMode::Play => opts.pull_queue_size.max(1),
            ClientMode::Publish => 1,
        });
        Ok(Arc::new(ClientCore {
            key,
            mode,
            url,
            url_text,
            opts,
            span,
            phase: AtomicU8::new(Phase::New as u8),
            dispose_tx: watch::channel(false).0,
            end_tx: watch::channel(None).0,
            requests: OnceLock::new(),
            media_tx,
            media_rx,
            start_time: SystemTime::now(),
            remote: OnceLock::new(),
            io,
            queue,
            reconnects: AtomicU64::new(0),
            last_gap_ms: AtomicU64::new(UNSEEN),
            rates: Rates {
                last_read: AtomicU64::new(0),
                last_written: AtomicU64::new(0),
                read_kbits: AtomicU64::new(0),
                write_kbits: AtomicU64::new(0),
                alive_read: AtomicU64::new(UNSEEN),
                alive_written: AtomicU64::new(UNSEEN),
            },
        }))
    }

    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::New,
            1 => Phase::Starting,
            2 => Phase::Running,
            _ => Phase::Ended,
        }
    }

    fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Release);
    }

    fn closed(&self) -> Error {
        Error::Closed {
            stage: Stage::Streaming,
            peer: self.url_text.clone(),
        }
    }

    /// Starts the session task and waits for publish / play to start.
    async fn start(self: &Arc<Self>, feed: Option<Box<dyn Feed>>) -> Result<(), Error> {
        if self
            .phase
            .compare_exchange(
                Phase::New as u8,
                Phase::Starting as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            return Err(Error::Misuse("start may be called once"));
        }
        let (tx, rx) = mpsc::channel(self.opts.write_queue_size.max(1));
        let _ = self.requests.set(tx);
        let (started_tx, started_rx) = oneshot::channel();
        let me = self.clone();
        tokio::spawn(task::run(me, rx, started_tx, feed));
        // The task always answers before it ends.
        started_rx.await.unwrap_or(Err(Error::Disposed))
    }

    /// Ends the session once: records the reason and lets the pull queue
    /// drain to its end.
    fn finish(&self, reason: EndReason) {
        let first = self.end_tx.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(reason.clone());
                true
            } else {
                false
            }
        });
        self.set_phase(Phase::Ended);
        self.media_tx.close();
        if first {
            self.span.in_scope(|| info!(%reason, "session ended"));
        }
    }

    fn dispose(&self) -> Result<(), Error> {
        match self.phase() {
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

    /// Hands a command to the session task; with `write_queue_size` 0 waits
    /// until it was carried out.
    async fn submit(
        &self,
        make: impl FnOnce(Option<request::Reply>) -> Request,
    ) -> Result<(), Error> {
        match self.phase() {
            Phase::Running => {}
            Phase::New | Phase::Starting => {
                return Err(Error::Misuse("the session has not started"));
            }
            Phase::Ended => return Err(self.closed()),
        }
        if self.opts.write_queue_size == 0 {
            return self.call(|reply| make(Some(reply))).await;
        }
        let Some(tx) = self.requests.get() else {
            return Err(Error::Misuse("the session has not started"));
        };
        tx.send(make(None)).await.map_err(|_| self.closed())
    }

    /// A push with a drop policy: into its send queue, where the policy
    /// may drop it; waits only while the queue is full.
    async fn enqueue(&self, queue: &SendQueue, mut item: Queued) -> Result<(), Error> {
        let mut end = self.end_tx.subscribe();
        loop {
            match self.phase() {
                Phase::Running => {}
                Phase::New | Phase::Starting => {
                    return Err(Error::Misuse("the session has not started"));
                }
                Phase::Ended => return Err(self.closed()),
            }
            let room = queue.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match queue.put(item) {
                Put::Queued | Put::Dropped => return Ok(()),
                Put::Full(back) => item = back,
            }
            tokio::select! {
                _ = room => {}
                _ = end.wait_for(Option::is_some) => {}
            }
        }
    }

    /// Sends a command and waits for its answer, whatever the queue size.
    async fn call(&self, make: impl FnOnce(request::Reply) -> Request) -> Result<(), Error> {
        let Some(tx) = self.requests.get() else {
            return Err(Error::Misuse("the session has not started"));
        };
        let (reply, done) = oneshot::channel();
        tx.send(make(reply)).await.map_err(|_| self.closed())?;
        done.await.unwrap_or_else(|_| Err(self.closed()))
    }

    async fn close(&self) -> Result<(), Error> {
        match self.phase() {
            Phase::Ended => Ok(()),
            Phase::New | Phase::Starting => Err(Error::Misuse("the session has not started")),
            Phase::Running => match self.call(Request::Close).await {
                // Ended meanwhile: nothing left to close.
                Err(Error::Closed { .. }) if self.phase() == Phase::Ended => Ok(()),
                r => r,
            },
        }
    }

    fn stat(&self) -> SessionStat {
        let (rk, wk) = (
            self.rates.read_kbits.load(Ordering::Relaxed),
            self.rates.write_kbits.load(Ordering::Relaxed),
        );
        let (dropped, purged) = self.queue.as_ref().map_or((0, 0), |q| q.drops());
        SessionStat {
            queued_ms: self.queue.as_ref().map_or(0, |q| q.queued_ms()),
            send_bitrate_kbits: self.queue.as_ref().map_or(wk, |q| q.delivered_kbits()),
            dropped_inter_frames: dropped,
            purged_inter_frames: purged,
            key: self.key.clone(),
            protocol: "RTMP",
            start_time: self.start_time,
            remote_addr: self.remote.get().copied(),
            read_bytes: self.io.read.load(Ordering::Relaxed),
            wrote_bytes: self.io.written.load(Ordering::Relaxed),
            read_bitrate_kbits: rk,
            write_bitrate_kbits: wk,
            bitrate_kbits: match self.mode {
                ClientMode::Publish => wk,
                ClientMode::Play => rk,
            },
            reconnects: self.reconnects.load(Ordering::Relaxed),
            last_reconnect_gap_ms: match self.last_gap_ms.load(Ordering::Relaxed) {
                UNSEEN => None,
                ms => Some(ms),
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
        let kbits = |now: u64, last: &AtomicU64| {
            let prev = last.swap(now, Ordering::Relaxed);
            (now.saturating_sub(prev) as f64 * 8.0 / 1024.0 / secs) as u64
        };
        let r = kbits(self.io.read.load(Ordering::Relaxed), &self.rates.last_read);
        let w = kbits(
            self.io.written.load(Ordering::Relaxed),
            &self.rates.last_written,
        );
        self.rates.read_kbits.store(r, Ordering::Relaxed);
        self.rates.write_kbits.store(w, Ordering::Relaxed);
    }

    fn is_alive(&self) -> (bool, bool) {
        let moved = |now: u64, seen: &AtomicU64| {
            let prev = seen.swap(now, Ordering::Relaxed);
            prev == UNSEEN || prev != now
        };
        (
            moved(self.io.read.load(Ordering::Relaxed), &self.rates.alive_read),
            moved(
                self.io.written.load(Ordering::Relaxed),
                &self.rates.alive_written,
            ),
        )
    }
}

/// What both faces offer: start, close, dispose, wait, identity and
/// introspection. [`PushSession`] and [`PullSession`] dereference to it.
#[derive(Debug, Clone)]
pub struct ClientHandle {
    core: Arc<ClientCore>,
}

impl ClientHandle {
    fn new(mode: ClientMode, url: &str, options: ClientOptions) -> Result<Self, Error> {
        Ok(ClientHandle {
            core: ClientCore::new(mode, url, options)?,
        })
    }

    /// Connects, then publishes or plays; returns once the server answered
    /// `NetStream.Publish.Start` / `NetStream.Play.Start`, or with the error
    /// that stopped it (client-session spec, "Start").
    pub async fn start(&self) -> Result<(), Error> {
        self.core.start(None).await
    }

    /// Closes cleanly: FCUnpublish + deleteStream for a publisher,
    /// deleteStream for a player, everything flushed, socket closed.
    pub async fn close(&self) -> Result<(), Error> {
        self.core.close().await
    }

    /// Stops the session at once (no clean close): from any task, any
    /// number of times; the first call closes the socket, also while
    /// starting. Calling it on a session that was never started is an error.
    pub fn dispose(&self) -> Result<(), Error> {
        self.core.dispose()
    }

    /// Waits until the session ends, and says why.
    pub async fn wait(&self) -> EndReason {
        self.core.wait().await
    }

    /// The URL, without credentials.
    pub fn url(&self) -> &str {
        &self.core.url_text
    }

    /// The application (every path item but the last).
    pub fn app_name(&self) -> &str {
        &self.core.url.app
    }

    /// The stream name (the last path item, without the query).
    pub fn stream_name(&self) -> &str {
        &self.core.url.stream
    }

    /// The raw query, if the URL had one.
    pub fn raw_query(&self) -> Option<&str> {
        self.core.url.query.as_deref()
    }

    /// The unique key that prefixes this session's log lines.
    pub fn unique_key(&self) -> &str {
        &self.core.key
    }

    /// The session's byte counters, shared (the server's registry shows a
    /// relay's bytes through them).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn io_counters(&self) -> Arc<IoCounters> {
        self.core.io.clone()
    }

    /// Counters and the bitrates of the last [`ClientHandle::update_stat`].
    pub fn stat(&self) -> SessionStat {
        self.core.stat()
    }

    /// Recomputes bitrates over `interval` (the time since the last call).
    pub fn update_stat(&self, interval: Duration) {
        self.core.update_stat(interval)
    }

    /// Whether bytes were (read, written) since the previous call; the
    /// first call answers `(true, true)`.
    pub fn is_alive(&self) -> (bool, bool) {
        self.core.is_alive()
    }

    /// Whether the session has started and not ended.
    pub fn is_running(&self) -> bool {
        self.core.phase() == Phase::Running
    }
}
