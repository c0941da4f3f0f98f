//! Every session of a server, for operators: who is connected (kind, role,
//! stream, address, bytes, queue, what the client said in `connect`), and
//! a kick that ends one, optionally blocking its stream's next publishes
//! for a while. [`SessionsHandle`] is the public face
//! ([`Server::sessions`](super::Server::sessions)); the HTTP API serves it
//! under `/api/v1/sessions`.

use super::hub::PlayerQueue;
use super::policy::Action;
use crate::driver::{IoCounters, SharedTcp};
use crate::sync::lock;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Notify;

/// How a client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    Rtmp,
    Rtmps,
    HttpFlv,
    Hls,
    /// A relay push of this server.
    Relay,
    /// An edge's or cluster node's pull.
    Pull,
}

impl SessionKind {
    /// `rtmp`, `rtmps`, `http-flv`, `hls`, `relay`, `pull`.
    pub fn name(self) -> &'static str {
        match self {
            SessionKind::Rtmp => "rtmp",
            SessionKind::Rtmps => "rtmps",
            SessionKind::HttpFlv => "http-flv",
            SessionKind::Hls => "hls",
            SessionKind::Relay => "relay",
            SessionKind::Pull => "pull",
        }
    }
}

/// One session at one moment.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionInfo {
    pub id: u64,
    pub kind: SessionKind,
    /// `publisher` or `player`, once it publishes or plays.
    pub role: Option<&'static str>,
    /// `app/stream` it publishes or plays.
    pub stream: Option<String>,
    pub peer: Option<SocketAddr>,
    pub started: SystemTime,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// A player's bytes waiting in its queue.
    pub queued_bytes: u64,
    /// Messages a player lost for being behind.
    pub dropped: u64,
    /// What the client said in `connect`.
    pub flash_ver: String,
    pub tc_url: String,
    /// Bits per second read and written, over the time since the previous
    /// reading of this session (at least 1 s; at first, since it started).
    pub bitrate_in: u64,
    pub bitrate_out: u64,
    /// The kernel's smoothed round-trip time to the client (RTMP and
    /// RTMPS sessions).
    pub round_trip: Option<Duration>,
}

/// A live session's entry.
#[derive(Debug)]
pub(crate) struct Session {
    id: u64,
    kind: SessionKind,
    peer: Option<SocketAddr>,
    started: SystemTime,
    /// This session's bytes (the driver counts into them).
    pub io: Arc<IoCounters>,
    state: Mutex<State>,
    /// Its socket, for the round-trip time.
    tcp: std::sync::OnceLock<SharedTcp>,
    /// The last bitrate reading.
    rate: Mutex<RateReading>,
    /// Told when the session must look at what the server asks of it: to
    /// end ([`Session::closed_because`] says why: an operator kicked it,
    /// or a reloaded policy denies it), to move (a drain), or the
    /// shutdown. One wake-up source for all three keeps a session's wait
    /// cheap: it registers with one `Notify`, not three.
    pub attention: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// The application it connected to.
    app: String,
    role: Option<&'static str>,
    stream: Option<String>,
    flash_ver: String,
    tc_url: String,
    queue: Option<Arc<PlayerQueue>>,
    /// Why it must end, once it must.
    close_reason: Option<String>,
}

/// Bytes at one moment, and the bitrates up to it.
#[derive(Debug)]
struct RateReading {
    at: Instant,
    read: u64,
    written: u64,
    bitrate_in: u64,
    bitrate_out: u64,
}

impl Session {
    /// Its socket, for the round-trip time.
    pub fn set_tcp(&self, tcp: Option<SharedTcp>) {
        if let Some(t) = tcp {
            let _ = self.tcp.set(t);
        }
    }

    /// Bits per second in and out since the previous reading (at least
    /// 1 s before).
    fn bitrates(&self) -> (u64, u64) {
        let (read, written) = (
            self.io.read.load(Ordering::Relaxed),
            self.io.written.load(Ordering::Relaxed),
        );
        let mut r = lock(&self.rate);
        let secs = r.at.elapsed().as_secs_f64();
        if secs >= 1.0 {
            let bits = |now: u64, then: u64| (now.saturating_sub(then) as f64 * 8.0 / secs) as u64;
            *r = RateReading {
                at: Instant::now(),
                read,
                written,
                bitrate_in: bits(read, r.read),
                bitrate_out: bits(written, r.written),
            };
        }
        (r.bitrate_in, r.bitrate_out)
    }

    /// What the client said in `connect`.
    pub fn connected(&self, app: &str, flash_ver: &str, tc_url: &str) {
        let mut st = lock(&self.state);
        st.app = app.to_owned();
        st.flash_ver = flash_ver.to_owned();
        st.tc_url = tc_url.to_owned();
    }

    /// It publishes `stream`.
    pub fn publishing(&self, stream: &str) {
        let mut st = lock(&self.state);
        st.role = Some("publisher");
        st.stream = Some(stream.to_owned());
        st.queue = None;
    }

    /// It plays `stream`, with this queue.
    pub fn playing(&self, stream: &str, queue: Arc<PlayerQueue>) {
        let mut st = lock(&self.state);
        st.role = Some("player");
        st.stream = Some(stream.to_owned());
        st.queue = Some(queue);
    }

    /// A relay of `stream` to or from `url`: it plays the local stream (a
    /// push) or publishes it (a pull).
    pub fn relaying(&self, stream: &str, url: &str, queue: Option<Arc<PlayerQueue>>) {
        let mut st = lock(&self.state);
        st.role = Some(if queue.is_some() {
            "player"
        } else {
            "publisher"
        });
        st.stream = Some(stream.to_owned());
        st.tc_url = crate::proto::redact_url(url);
        st.queue = queue;
    }

    /// It stopped publishing or playing (it may start again).
    pub fn idle(&self) {
        let mut st = lock(&self.state);
        st.role = None;
        st.stream = None;
        st.queue = None;
    }

    /// Ends the session, for `reason`.
    pub fn close(&self, reason: String) {
        lock(&self.state).close_reason = Some(reason);
        self.attention.notify_one();
    }

    /// Resolves once it is told to end.
    pub async fn closed(&self) {
        while !self.is_closed() {
            // A permit stored by a `close` between the check and this
            // wait completes it at once.
            self.attention.notified().await;
        }
    }

    /// Whether it was told to end.
    pub fn is_closed(&self) -> bool {
        lock(&self.state).close_reason.is_some()
    }

    /// Why the session was told to end.
    pub fn closed_because(&self) -> String {
        lock(&self.state)
            .close_reason
            .clone()
            .unwrap_or_else(|| "closed by the server".into())
    }

    fn info(&self) -> SessionInfo {
        let (bitrate_in, bitrate_out) = self.bitrates();
        let st = lock(&self.state);
        SessionInfo {
            id: self.id,
            kind: self.kind,
            role: st.role,
            stream: st.stream.clone(),
            peer: self.peer,
            started: self.started,
            bytes_in: self.io.read.load(Ordering::Relaxed),
            bytes_out: self.io.written.load(Ordering::Relaxed),
            queued_bytes: st.queue.as_ref().map_or(0, |q| q.queued_bytes() as u64),
            dropped: st.queue.as_ref().map_or(0, |q| q.dropped()),
            flash_ver: st.flash_ver.clone(),
            tc_url: st.tc_url.clone(),
            bitrate_in,
            bitrate_out,
            round_trip: self.tcp.get().and_then(SharedTcp::round_trip),
        }
    }
}

/// Every live session, the bytes of those that ended, and the streams
/// whose publishes an operator blocked for a while.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    live: Mutex<HashMap<u64, Arc<Session>>>,
    ended_in: AtomicU64,
    ended_out: AtomicU64,
    blocked: Mutex<HashMap<String, Instant>>,
    /// Sessions kicked by an operator.
    pub kicks: AtomicU64,
    /// The server is shutting down: a session registered now is told at
    /// once.
    shutting_down: std::sync::atomic::AtomicBool,
}

/// A session's place in [`Sessions`] for its life; dropping it removes it
/// and keeps its bytes in the totals.
#[derive(Debug)]
pub(crate) struct Registered {
    sessions: Arc<Sessions>,
    pub session: Arc<Session>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let s = &self.session;
        lock(&self.sessions.live).remove(&s.id);
        self.sessions
            .ended_in
            .fetch_add(s.io.read.load(Ordering::Relaxed), Ordering::Relaxed);
        self.sessions
            .ended_out
            .fetch_add(s.io.written.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

impl Sessions {
    /// Registers session `id`.
    pub fn open(
        self: &Arc<Self>,
        id: u64,
        kind: SessionKind,
        peer: Option<SocketAddr>,
    ) -> Registered {
        self.open_counted(id, kind, peer, Arc::default())
    }

    /// Registers session `id`, whose bytes `io` counts (a relay's client
    /// session).
    pub fn open_counted(
        self: &Arc<Self>,
        id: u64,
        kind: SessionKind,
        peer: Option<SocketAddr>,
        io: Arc<IoCounters>,
    ) -> Registered {
        let session = Arc::new(Session {
            id,
            kind,
            peer,
            started: SystemTime::now(),
            io,
            state: Mutex::default(),
            tcp: Default::default(),
            rate: Mutex::new(RateReading {
                at: Instant::now(),
                read: 0,
                written: 0,
                bitrate_in: 0,
                bitrate_out: 0,
            }),
            attention: Notify::new(),
        });
        lock(&self.live).insert(id, session.clone());
        if self.shutting_down.load(Ordering::Acquire) {
            session.attention.notify_one();
        }
        Registered {
            sessions: self.clone(),
            session,
        }
    }

    /// Bytes read and written by every session, live or ended.
    pub fn totals(&self) -> (u64, u64) {
        let live = lock(&self.live);
        let (mut r, mut w) = (
            self.ended_in.load(Ordering::Relaxed),
            self.ended_out.load(Ordering::Relaxed),
        );
        for s in live.values() {
            r += s.io.read.load(Ordering::Relaxed);
            w += s.io.written.load(Ordering::Relaxed);
        }
        (r, w)
    }

    pub fn list(&self) -> Vec<SessionInfo> {
        let live: Vec<Arc<Session>> = lock(&self.live).values().cloned().collect();
        let mut v: Vec<SessionInfo> = live.iter().map(|s| s.info()).collect();
        v.sort_by_key(|s| s.id);
        v
    }

    pub fn get(&self, id: u64) -> Option<SessionInfo> {
        let s = lock(&self.live).get(&id).cloned();
        s.map(|s| s.info())
    }

    /// Ends session `id`; with `block`, its stream's next publishes are
    /// refused for that long. Whether the session was there.
    pub fn kick(&self, id: u64, block: Option<Duration>) -> bool {
        let Some(s) = lock(&self.live).get(&id).cloned() else {
            return false;
        };
        if let (Some(b), Some(stream)) = (block, lock(&s.state).stream.clone()) {
            lock(&self.blocked).insert(stream, Instant::now() + b);
        }
        self.kicks.fetch_add(1, Ordering::Relaxed);
        s.close("kicked by an operator".into());
        true
    }

    /// Tells every session, and every one registered from now on, that
    /// the server shuts down.
    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::Release);
        self.wake_all();
    }

    /// Tells every session to look at the server's signals (a drain).
    pub fn wake_all(&self) {
        let live: Vec<Arc<Session>> = lock(&self.live).values().cloned().collect();
        for s in live {
            s.attention.notify_one();
        }
    }

    /// How many players `stream` (`app/name`) has now.
    pub fn players_of(&self, stream: &str) -> usize {
        let live: Vec<Arc<Session>> = lock(&self.live).values().cloned().collect();
        live.iter()
            .filter(|s| {
                let st = lock(&s.state);
                s.kind != SessionKind::Relay
                    && st.role == Some("player")
                    && st.stream.as_deref() == Some(stream)
            })
            .count()
    }

    /// Ends every session `judge` refuses, given its application, role
    /// (`publish` or `play`, if any) and address; `judge` says why.
    /// How many were ended.
    pub fn close_where(
        &self,
        judge: impl Fn(&str, Option<Action>, Option<SocketAddr>) -> Option<String>,
    ) -> usize {
        let live: Vec<Arc<Session>> = lock(&self.live).values().cloned().collect();
        let mut closed = 0;
        for s in live {
            let (app, role, stream) = {
                let st = lock(&s.state);
                (st.app.clone(), st.role, st.stream.clone())
            };
            if app.is_empty() {
                continue;
            }
            let action = role.map(|r| match r {
                "publisher" => Action::Publish,
                _ => Action::Play,
            });
            if let Some(why) = judge(&app, action, s.peer) {
                let what = stream.as_deref().unwrap_or(&app);
                tracing::warn!(id = s.id, peer = ?s.peer, "closing the session of {what}: {why}");
                s.close(why);
                closed += 1;
            }
        }
        closed
    }

    /// How long publishes of `stream` stay refused, if they are.
    pub fn blocked(&self, stream: &str) -> Option<Duration> {
        let mut b = lock(&self.blocked);
        let now = Instant::now();
        b.retain(|_, until| *until > now);
        b.get(stream).map(|until| *until - now)
    }
}

/// The sessions of a running server, for operators (see
/// [`Server::sessions`](super::Server::sessions)).
#[derive(Debug, Clone)]
pub struct SessionsHandle(pub(super) Arc<Sessions>);

impl SessionsHandle {
    /// Every live session, by id.
    pub fn list(&self) -> Vec<SessionInfo> {
        self.0.list()
    }

    /// One session.
    pub fn get(&self, id: u64) -> Option<SessionInfo> {
        self.0.get(id)
    }

    /// Ends session `id` (a publisher or a player) at once; with `block`,
    /// its stream's next publishes are refused for that long. `false` if
    /// there is no such session.
    pub fn kick(&self, id: u64, block: Option<Duration>) -> bool {
        self.0.kick(id, block)
    }
}
