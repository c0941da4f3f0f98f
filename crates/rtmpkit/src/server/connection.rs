//! One accepted connection: its session runs on the [driver](crate::driver)
//! with [`ServerHandler`], which gives the connection its part in the hub
//! (publisher or player).

use super::ServerOptions;
use super::auth::{Authorizer, Caller};
use super::context::{ServerContext, not_served};
use super::hub::{Chunked, DirectOut, Out};
use super::metrics::{bump, drop_one};
use super::publication::Publication;
use super::sessions::{Registered, SessionKind};
use super::subscription::Subscription;
use crate::driver::{Connection, DriverOptions, Flow, Handler, SharedTcp, Transport};
use crate::error::{Error, Stage};
use rtmpkit_proto::message::status;
use rtmpkit_proto::session::{
    CAPS_EX_MULTITRACK, CAPS_EX_RECONNECT, ServerConfig, ServerEvent, ServerSession, ServerSide,
};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// What the connection does in the hub.
enum Role {
    None,
    Publisher(Box<Publication>),
    Player {
        stream_id: u32,
        subscription: Box<Subscription>,
    },
}

/// Why the server ended a connection on purpose.
#[derive(Debug)]
enum ServerStop {
    Shutdown,
    Rejected,
    /// A new publisher took the stream over from this silent one.
    Replaced,
    /// An operator kicked the session.
    Kicked,
}

/// Serves one accepted connection (TCP, or TLS over TCP) until it ends,
/// then leaves the hub.
pub(crate) async fn serve<T: Transport>(
    id: u64,
    kind: SessionKind,
    ctx: Arc<ServerContext>,
    socket: T,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
    tcp: Option<crate::driver::SharedTcp>,
) {
    let opts: &ServerOptions = &ctx.opts;
    let cfg = ServerConfig {
        chunk_size: opts.chunk_size,
        ..ServerConfig::default()
    };
    let seed = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(peer.port());
    let session = ServerSession::new(cfg, std::time::Instant::now(), seed);
    let driver = DriverOptions {
        // Players send little: start small; a publisher's reads grow it.
        read_size: 2 * 1024,
        max_read: 64 * 1024,
        write_timeout: Some(opts.stuck_timeout),
        ..DriverOptions::default()
    };
    let registered = ctx.sessions.open(id, kind, Some(peer));
    let mut conn = Connection::new(socket, session, &peer.to_string(), driver)
        .with_counters(registered.session.io.clone());
    registered.session.set_tcp(tcp.clone());
    // Reads are gated, and players written by the fan-out, on plain RTMP
    // only; RTMPS reads as bytes come, and its task writes every record.
    let socket = tcp.filter(|_| kind == SessionKind::Rtmp);
    if let Some(tcp) = &socket {
        conn = conn.with_read_gate(tcp.clone());
    }
    bump(&ctx.counters.connections);
    bump(&ctx.counters.accepted);
    let mut handler = ServerHandler {
        setup_deadline: Instant::now() + opts.setup_timeout,
        ctx: ctx.clone(),
        caller: Arc::new(Caller {
            addr: Some(peer),
            client_id: id,
            ..Caller::default()
        }),
        started: false,
        all_tracks: false,
        reconnect_ok: false,
        drain: ctx.drain.subscribe(),
        role: Role::None,
        shutdown,
        registered,
        update_due: None,
        update_answer: None,
        role_since: Instant::now(),
        socket,
        direct_set: false,
        gate_open: false,
    };
    let end = conn.run(&mut handler).await;
    handler.leave();
    drop_one(&ctx.counters.connections);
    if let (Err(e), false) = (&end, handler.started) {
        ctx.counters.fail_setup(e);
    }
    match end {
        Err(e) if e.is_closed() => debug!("connection closed by peer"),
        // Not RTMP at all (a scanner, rtmps:// on the plain port): worth
        // seeing without -v.
        Err(e) if e.is_protocol() && e.stage() == Some(Stage::Handshake) => {
            warn!("connection closed: {e}")
        }
        Err(e) => info!("connection closed: {e}"),
        Ok(ServerStop::Shutdown) => debug!("connection closed: server shutting down"),
        Ok(ServerStop::Rejected) => debug!("connection closed after a rejection"),
        Ok(ServerStop::Replaced) => {
            info!("connection closed: a new publisher took the stream over")
        }
        Ok(ServerStop::Kicked) => info!(
            "connection closed: {}",
            handler.registered.session.closed_because()
        ),
    }
}

/// Why the handler wakes the driver.
enum Wake {
    QueueReady,
    Replaced,
    /// The session's `attention`: a kick, a drain or the shutdown.
    Attention,
    UpdateDue,
    Updated(Result<(), String>),
}

struct ServerHandler {
    ctx: Arc<ServerContext>,
    /// Handshake, connect and publish / play must finish by then.
    setup_deadline: Instant,
    /// Who the client said it is in `connect` (told to hooks).
    /// Shared with the connection's publication or subscription (hooks).
    caller: Arc<Caller>,
    /// Whether a publish or play was ever accepted (setup is over).
    started: bool,
    /// Whether the client announced E-RTMP (every track goes to it).
    all_tracks: bool,
    /// Whether the client acts on a reconnect request (`capsEx` 0x01).
    reconnect_ok: bool,
    /// Drain requests of the server.
    drain: watch::Receiver<Option<Option<String>>>,
    role: Role,
    shutdown: watch::Receiver<bool>,
    /// Its entry in the server's sessions (bytes, role, kick).
    registered: Registered,
    /// `on_update`: when it is told next, and its answer on the way.
    update_due: Option<Instant>,
    update_answer: Option<oneshot::Receiver<Result<(), String>>>,
    /// When publish / play started (`time` for `on_update`).
    role_since: Instant,
    /// The plain TCP socket, which the fan-out may write to while the
    /// task is idle ([`DirectOut`]).
    socket: Option<SharedTcp>,
    /// The player's queue knows the socket.
    direct_set: bool,
    /// The fan-out may be writing to the socket: the queue must be asked
    /// what it wrote before the session queues anything.
    gate_open: bool,
}

impl<T: Transport> Handler<T, ServerSide> for ServerHandler {
    type Signal = Wake;
    type Stop = ServerStop;

    fn signal(&mut self) -> impl Future<Output = Wake> + Send {
        let (queue, replaced) = match &self.role {
            Role::Player { subscription, .. } => (Some(subscription.queue().clone()), None),
            Role::Publisher(p) => (None, Some(p.replaced().clone())),
            Role::None => (None, None),
        };
        let attention = self.registered.session.attention.notified();
        let due = self.update_due.filter(|_| self.update_answer.is_none());
        let answer = self.update_answer.as_mut();
        async move {
            tokio::select! {
                _ = attention => Wake::Attention,
                _ = async { tokio::time::sleep_until(due.expect("guarded")).await }, if due.is_some() => Wake::UpdateDue,
                a = async { answer.expect("guarded").await }, if answer.is_some() => {
                    // A dropped sender (the hook task failed) is no verdict.
                    Wake::Updated(a.unwrap_or(Ok(())))
                }
                _ = async { queue.as_ref().expect("guarded").notify.notified().await }, if queue.is_some() => Wake::QueueReady,
                _ = async { replaced.as_ref().expect("guarded").notified().await }, if replaced.is_some() => Wake::Replaced,
            }
        }
    }

    async fn on_signal(
        &mut self,
        conn: &mut Connection<T, ServerSide>,
        wake: Wake,
    ) -> Result<Flow<ServerStop>, Error> {
        self.close_gate(conn.session_mut());
        match wake {
            Wake::QueueReady => {
                // Woken when the queue stopped being empty, or by the
                // flush clock when coalescing: what is queued goes out in
                // one batch.
                self.fill_from_queue(conn.session_mut());
                Ok(Flow::Continue)
            }
            Wake::Replaced => Ok(Flow::Stop(ServerStop::Replaced)),
            Wake::UpdateDue => {
                self.tell_update();
                Ok(Flow::Continue)
            }
            Wake::Updated(answer) => {
                self.update_answer = None;
                match answer {
                    Ok(()) => Ok(Flow::Continue),
                    Err(why) => {
                        warn!("ending the session: {why}");
                        if let Role::Player { stream_id, .. } = self.role {
                            let _ = conn.session_mut().send_stream_end(stream_id);
                        }
                        Ok(Flow::Stop(ServerStop::Rejected))
                    }
                }
            }
            Wake::Attention if self.registered.session.is_closed() => {
                if let Role::Player { stream_id, .. } = self.role {
                    let _ = conn.session_mut().send_stream_end(stream_id);
                }
                Ok(Flow::Stop(ServerStop::Kicked))
            }
            Wake::Attention if *self.shutdown.borrow() => {
                if self.reconnect_ok {
                    bump(&self.ctx.counters.reconnect_requests);
                    conn.session_mut()
                        .send_reconnect_request(None, "the server is shutting down");
                }
                if let Role::Player { stream_id, .. } = self.role {
                    let _ = conn.session_mut().send_stream_end(stream_id);
                }
                Ok(Flow::Stop(ServerStop::Shutdown))
            }
            Wake::Attention if self.drain.has_changed().unwrap_or(false) => {
                let tc_url = self.drain.borrow_and_update().clone().flatten();
                if self.reconnect_ok {
                    info!(?tc_url, "asking the client to reconnect");
                    bump(&self.ctx.counters.reconnect_requests);
                    conn.session_mut()
                        .send_reconnect_request(tc_url.as_deref(), "the server is draining");
                }
                Ok(Flow::Continue)
            }
            // Told before its cause was set, or twice for one cause.
            Wake::Attention => Ok(Flow::Continue),
        }
    }

    async fn on_events(
        &mut self,
        conn: &mut Connection<T, ServerSide>,
    ) -> Result<Flow<ServerStop>, Error> {
        self.close_gate(conn.session_mut());
        let flow = self.handle_events(conn.session_mut()).await;
        let turns = match &self.role {
            Role::Publisher(p) => p.next_turn(),
            _ => None,
        };
        conn.set_read_grid(turns);
        match flow {
            Some(Ok(stop)) => Ok(Flow::Stop(stop)),
            Some(Err(e)) => Err(Error::from_core(Stage::ConnectCommand, conn.peer(), e)),
            None => Ok(Flow::Continue),
        }
    }

    fn on_output(&mut self, session: &mut ServerSession, idle: bool) {
        if !idle {
            self.close_gate(session);
        } else if !self.gate_open
            && self.direct_set
            && let Role::Player { subscription, .. } = &self.role
        {
            self.gate_open = subscription.queue().open_direct();
        }
    }

    fn deadline(&self, conn: &Connection<T, ServerSide>) -> Option<Instant> {
        match self.role {
            // After an unpublish / stop the connection may start again: it
            // is idle, not in setup.
            Role::None if self.started => Some(conn.last_input() + self.ctx.opts.idle_timeout),
            Role::None => Some(self.setup_deadline),
            Role::Publisher { .. } => Some(conn.last_input() + self.ctx.opts.idle_timeout),
            Role::Player { .. } => None,
        }
    }

    fn on_deadline(
        &mut self,
        conn: &mut Connection<T, ServerSide>,
    ) -> Result<Flow<ServerStop>, Error> {
        let (stage, after) = match self.role {
            Role::None if !self.started => (
                crate::driver::Staged::stage(conn.session()),
                self.ctx.opts.setup_timeout,
            ),
            // Publisher idle: no media for the idle timeout.
            _ => (Stage::Streaming, self.ctx.opts.idle_timeout),
        };
        Err(Error::Timeout {
            stage,
            peer: conn.peer().to_owned(),
            after,
        })
    }
}

impl ServerHandler {
    /// Publish or play started (the role is set): `on_update` is told
    /// from now on.
    fn started_role(&mut self) {
        self.role_since = Instant::now();
        self.update_due = self
            .hooks()
            .and_then(|h| h.update_interval())
            .map(|i| self.role_since + i);
    }

    /// The hooks of the application the session publishes or plays
    /// under (its policy when it started).
    fn hooks(&self) -> Option<Arc<Authorizer>> {
        match &self.role {
            Role::Publisher(p) => Some(p.app().auth.clone()),
            Role::Player { subscription, .. } => subscription.app().map(|a| a.auth.clone()),
            Role::None => None,
        }
    }

    /// Tells `on_update` (in the background); its answer wakes the driver.
    fn tell_update(&mut self) {
        let Some(hooks) = self.hooks() else {
            return;
        };
        let Some(interval) = hooks.update_interval() else {
            return;
        };
        self.update_due = Some(Instant::now() + interval);
        let (publishing, key) = match &self.role {
            Role::Publisher(p) => (true, p.key().to_owned()),
            Role::Player { subscription, .. } => (false, subscription.key().to_owned()),
            Role::None => return,
        };
        let name = key.split_once('/').map_or(key.as_str(), |(_, n)| n);
        let timestamp = self.ctx.hub.get(&key).map_or(0, |s| s.last_timestamp());
        let time = self.role_since.elapsed().as_secs();
        self.update_answer = hooks.update(publishing, &self.caller, name, time, timestamp);
    }

    /// Moves what is due into the session's output (one batch of up to
    /// 256 KiB, so a fast stream cannot starve the read side). A whole
    /// batch of the flush clock goes out as the run of chunks encoded once
    /// for every player of the stream.
    fn fill_from_queue(&mut self, session: &mut ServerSession) {
        self.close_gate(session);
        let Role::Player {
            stream_id,
            subscription,
        } = &mut self.role
        else {
            return;
        };
        let sid = *stream_id;
        let chunk_size = self.ctx.opts.chunk_size;
        let send = |session: &mut ServerSession, out: Out<'_>| match out {
            Out::Media(m) => session.send_media(sid, m),
            Out::StreamBegin => session.send_stream_begin(sid),
            Out::StreamEnd => session.send_stream_end(sid),
        };
        let mut runs_sent = false;
        subscription.drain_batches(256 * 1024, |chunked| {
            let r = match chunked {
                Chunked::Batch(b) => match b.run(chunk_size) {
                    Some(run) if session.send_media_run(sid, run).unwrap_or(false) => {
                        runs_sent = true;
                        Ok(())
                    }
                    _ => b
                        .media
                        .iter()
                        .try_for_each(|m| send(session, Out::Media(m))),
                },
                Chunked::One(out) => send(session, out),
            };
            if let Err(e) = r {
                debug!("cannot send to player: {e}");
            }
        });
        // A shared run went out on this session (its stream id and chunk
        // size are the run's): the fan-out may write the next ones itself.
        // Not with no write delay: a burst to every player for each
        // message would hold the publisher's task, and the players' own
        // tasks keep the latency lower there (README, "Fan-out").
        if runs_sent && !self.direct_set && !self.ctx.opts.max_write_delay.is_zero() {
            if let Some(socket) = &self.socket {
                subscription.queue().set_direct(DirectOut {
                    socket: socket.clone(),
                    counters: self.registered.session.io.clone(),
                    chunk_size,
                });
            }
            self.direct_set = true;
        }
    }

    /// Stops the fan-out's writes to the socket, and tells the session
    /// what they were, before the session queues anything itself.
    fn close_gate(&mut self, session: &mut ServerSession) {
        if !std::mem::take(&mut self.gate_open) {
            return;
        }
        if let Role::Player { subscription, .. } = &self.role
            && let Some(rest) = subscription.queue().close_direct()
        {
            session.written_elsewhere(rest);
        }
    }

    /// Acts on session events; returns how the connection must end, if it must.
    async fn handle_events(
        &mut self,
        session: &mut ServerSession,
    ) -> Option<Result<ServerStop, rtmpkit_proto::Error>> {
        while let Some(ev) = session.poll_event() {
            match ev {
                ServerEvent::ConnectRequested {
                    app,
                    tc_url,
                    object,
                } => {
                    debug!(%app, ?tc_url, "connect");
                    if app.is_empty() {
                        self.ctx.counters.fail("connect", "rejected");
                        let _ =
                            session.reject_connect("an app is required: rtmp://host/app/stream");
                        return Some(Ok(ServerStop::Rejected));
                    }
                    let text = |k: &str| object.get(k).and_then(|v| v.as_str()).unwrap_or("");
                    let caller = Arc::make_mut(&mut self.caller);
                    caller.flashver = text("flashVer").to_owned();
                    caller.swfurl = text("swfUrl").to_owned();
                    caller.pageurl = text("pageUrl").to_owned();
                    caller.tcurl = tc_url.unwrap_or_default();
                    self.registered
                        .session
                        .connected(&app, &caller.flashver, &caller.tcurl);
                    // E-RTMP v2: a client that announced codecs or
                    // multitrack gets every track; others track 0 only.
                    let caps = object
                        .get("capsEx")
                        .and_then(|v| v.as_number())
                        .unwrap_or(0.0) as u32;
                    self.all_tracks = object.get("fourCcList").is_some()
                        || object.get("videoFourCcInfoMap").is_some()
                        || object.get("audioFourCcInfoMap").is_some()
                        || caps & CAPS_EX_MULTITRACK != 0;
                    self.reconnect_ok = caps & CAPS_EX_RECONNECT != 0;
                    let Some(policy) = self.ctx.app(&app) else {
                        let why = not_served(&app);
                        warn!("connect refused: {why}");
                        self.ctx.counters.fail("connect", "unknown_app");
                        let _ = session.reject_connect(&why);
                        return Some(Ok(ServerStop::Rejected));
                    };
                    Arc::make_mut(&mut self.caller).app = app;
                    if let Err(why) = policy.auth.check_connect(&self.caller).await {
                        warn!("connect refused: {why}");
                        self.ctx.counters.fail("connect", "unauthorized");
                        let _ = session.reject_connect(&why);
                        return Some(Ok(ServerStop::Rejected));
                    }
                    if let Err(e) = session.accept_connect() {
                        return Some(Err(e));
                    }
                }
                ServerEvent::PublishRequested {
                    stream_id,
                    name,
                    kind,
                } => {
                    if !matches!(self.role, Role::None) {
                        let _ = session.reject_publish(
                            stream_id,
                            status::FAILED,
                            "this connection already publishes or plays",
                        );
                        continue;
                    }
                    match self.ctx.publish(self.caller.clone(), &name, &kind).await {
                        Ok(publication) => {
                            let _ = session.accept_publish(stream_id);
                            self.started = true;
                            self.registered.session.publishing(publication.key());
                            self.role = Role::Publisher(Box::new(publication));
                            self.started_role();
                        }
                        Err(refused) => {
                            let _ =
                                session.reject_publish(stream_id, refused.code, &refused.reason);
                            return Some(Ok(ServerStop::Rejected));
                        }
                    }
                }
                ServerEvent::PlayRequested {
                    stream_id,
                    name,
                    start,
                } => {
                    if !matches!(self.role, Role::None) {
                        let _ = session.reject_play(
                            stream_id,
                            status::FAILED,
                            "this connection already publishes or plays",
                        );
                        continue;
                    }
                    let joined = self
                        .ctx
                        .join(
                            self.caller.clone(),
                            &name,
                            ("start", start.to_string()),
                            !self.all_tracks,
                        )
                        .await;
                    let subscription = match joined {
                        Ok(s) => Box::new(s),
                        Err(refused) => {
                            let _ = session.reject_play(
                                stream_id,
                                status::PLAY_UNAUTHORIZED,
                                &refused.reason,
                            );
                            return Some(Ok(ServerStop::Rejected));
                        }
                    };
                    let _ = session.accept_play(stream_id);
                    self.started = true;
                    self.registered
                        .session
                        .playing(subscription.key(), subscription.queue().clone());
                    self.role = Role::Player {
                        stream_id,
                        subscription,
                    };
                    self.started_role();
                    // Send what a late joiner needs right away.
                    self.fill_from_queue(session);
                }
                ServerEvent::Media { media, .. } => {
                    if let Role::Publisher(p) = &self.role {
                        p.deliver(media);
                    }
                }
                ServerEvent::PublishEnded { .. } | ServerEvent::PlayEnded { .. } => {
                    self.close_gate(session);
                    self.leave();
                }
                ServerEvent::Notice(n) => debug!("{n}"),
                other => debug!(?other, "event"),
            }
        }
        None
    }

    /// Leaves the stream (idempotent): dropping the publication
    /// unpublishes, dropping the subscription leaves.
    fn leave(&mut self) {
        self.role = Role::None;
        self.direct_set = false;
        self.registered.session.idle();
        self.update_due = None;
        self.update_answer = None;
    }
}
