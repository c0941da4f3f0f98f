//! One accepted connection: its session runs on the [driver](crate::driver)
//! with [`ServerHandler`], which gives the connection its part in the hub
//! (publisher or player).

use super::ServerOptions;
use super::auth::{Call, Caller, Decision, split_query};
use super::cluster::Claim;
use super::context::ServerContext;
use super::hub::{Out, PublishError, Stream};
use super::metrics::{bump, drop_one};
use super::subscription::Subscription;
use crate::driver::{Connection, DriverOptions, Flow, Handler, Transport};
use crate::error::{Error, Stage};
use rtmpkit_proto::message::status;
use rtmpkit_proto::session::{
    CAPS_EX_MULTITRACK, CAPS_EX_RECONNECT, ServerConfig, ServerEvent, ServerSession, ServerSide,
};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// What the connection does in the hub.
enum Role {
    None,
    Publisher {
        key: String,
        stream: Arc<Stream>,
        /// Told when a new publisher takes the stream over.
        replaced: Arc<Notify>,
    },
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
}

/// The stream key: `app/name` without the query.
fn stream_key(app: &str, name: &str) -> String {
    format!("{app}/{}", split_query(name).0)
}

/// Serves one accepted connection (TCP, or TLS over TCP) until it ends,
/// then leaves the hub.
pub(crate) async fn serve<T: Transport>(
    id: u64,
    ctx: Arc<ServerContext>,
    socket: T,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
    gate: Option<crate::driver::ReadGate>,
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
    let mut conn = Connection::new(socket, session, &peer.to_string(), driver)
        .with_counters(ctx.counters.io.clone());
    if let Some(g) = gate {
        conn = conn.with_read_gate(g);
    }
    bump(&ctx.counters.connections);
    let mut handler = ServerHandler {
        id,
        setup_deadline: Instant::now() + opts.setup_timeout,
        ctx: ctx.clone(),
        caller: Caller {
            addr: Some(peer),
            client_id: id,
            ..Caller::default()
        },
        started: false,
        all_tracks: false,
        reconnect_ok: false,
        drain: ctx.drain.subscribe(),
        role: Role::None,
        shutdown,
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
    }
}

/// Why the handler wakes the driver.
enum Wake {
    QueueReady,
    Replaced,
    Drain,
    Shutdown,
}

struct ServerHandler {
    id: u64,
    ctx: Arc<ServerContext>,
    /// Handshake, connect and publish / play must finish by then.
    setup_deadline: Instant,
    /// Who the client said it is in `connect` (told to hooks).
    caller: Caller,
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
}

impl<T: Transport> Handler<T, ServerSide> for ServerHandler {
    type Signal = Wake;
    type Stop = ServerStop;

    fn signal(&mut self) -> impl Future<Output = Wake> + Send {
        let (queue, replaced) = match &self.role {
            Role::Player { subscription, .. } => (Some(subscription.queue().clone()), None),
            Role::Publisher { replaced, .. } => (None, Some(replaced.clone())),
            Role::None => (None, None),
        };
        let shutdown = &mut self.shutdown;
        let drain = &mut self.drain;
        async move {
            tokio::select! {
                Ok(()) = drain.changed() => Wake::Drain,
                _ = async { queue.as_ref().expect("guarded").notify.notified().await }, if queue.is_some() => Wake::QueueReady,
                _ = async { replaced.as_ref().expect("guarded").notified().await }, if replaced.is_some() => Wake::Replaced,
                _ = crate::sync::raised(shutdown) => Wake::Shutdown,
            }
        }
    }

    async fn on_signal(
        &mut self,
        conn: &mut Connection<T, ServerSide>,
        wake: Wake,
    ) -> Result<Flow<ServerStop>, Error> {
        match wake {
            Wake::QueueReady => {
                // Woken when the queue stopped being empty, or by the
                // flush clock when coalescing: what is queued goes out in
                // one batch.
                self.fill_from_queue(conn.session_mut());
                Ok(Flow::Continue)
            }
            Wake::Replaced => Ok(Flow::Stop(ServerStop::Replaced)),
            Wake::Drain => {
                let tc_url = self.drain.borrow_and_update().clone().flatten();
                if self.reconnect_ok {
                    info!(?tc_url, "asking the client to reconnect");
                    bump(&self.ctx.counters.reconnect_requests);
                    conn.session_mut()
                        .send_reconnect_request(tc_url.as_deref(), "the server is draining");
                }
                Ok(Flow::Continue)
            }
            Wake::Shutdown => {
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
        }
    }

    async fn on_events(
        &mut self,
        conn: &mut Connection<T, ServerSide>,
    ) -> Result<Flow<ServerStop>, Error> {
        let flow = self.handle_events(conn.session_mut()).await;
        // A small stream's publisher is read in bunches on its turn, and
        // what it sent goes to the players at once: they would get it only
        // once per period anyway.
        let turns = match &self.role {
            Role::Publisher { stream, .. } => {
                let turns = self.ctx.hub.clock().and_then(|c| c.turns(stream));
                if turns.is_some() {
                    stream.serve_read();
                }
                turns
            }
            _ => None,
        };
        conn.set_read_grid(turns);
        match flow {
            Some(Ok(stop)) => Ok(Flow::Stop(stop)),
            Some(Err(e)) => Err(Error::from_core(Stage::ConnectCommand, conn.peer(), e)),
            None => Ok(Flow::Continue),
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
    /// Moves what is due into the session's output (one batch of up to
    /// 256 KiB, so a fast stream cannot starve the read side).
    fn fill_from_queue(&mut self, session: &mut ServerSession) {
        let Role::Player {
            stream_id,
            subscription,
        } = &mut self.role
        else {
            return;
        };
        let sid = *stream_id;
        subscription.drain(256 * 1024, |out| {
            let r = match out {
                Out::Media(m) => session.send_media(sid, m),
                Out::StreamBegin => session.send_stream_begin(sid),
                Out::StreamEnd => session.send_stream_end(sid),
            };
            if let Err(e) = r {
                debug!("cannot send to player: {e}");
            }
        });
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
                    self.caller.flashver = text("flashVer").to_owned();
                    self.caller.swfurl = text("swfUrl").to_owned();
                    self.caller.pageurl = text("pageUrl").to_owned();
                    self.caller.tcurl = tc_url.unwrap_or_default();
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
                    self.caller.app = app;
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
                    let (name, redirect) = match self
                        .authorize(Call::Publish, &name, ("type", kind.clone()))
                        .await
                    {
                        Decision::Allow { name, relay } => (name, relay),
                        Decision::Refuse(why) => {
                            warn!(stream = %stream_key(&self.caller.app, &name), "publish refused: {why}");
                            self.ctx.counters.fail("publish", "unauthorized");
                            let _ = session.reject_publish(
                                stream_id,
                                status::PUBLISH_UNAUTHORIZED,
                                &why,
                            );
                            return Some(Ok(ServerStop::Rejected));
                        }
                    };
                    let key = stream_key(&self.caller.app, &name);
                    if let Some(owner) = self.claim_in_cluster(&key).await {
                        warn!(stream = %key, "publish refused: published on {owner}");
                        self.ctx.counters.fail("publish", "claimed_elsewhere");
                        let _ = session.reject_publish(
                            stream_id,
                            status::PUBLISH_BAD_NAME,
                            &format!("Already publishing (on {owner})"),
                        );
                        return Some(Ok(ServerStop::Rejected));
                    }
                    match self
                        .ctx
                        .hub
                        .publish(&key, self.id, self.ctx.opts.takeover_after)
                    {
                        Ok(p) => {
                            match p.took_over {
                                Some(old) => {
                                    bump(&self.ctx.counters.takeovers);
                                    info!(stream = %key, %kind, old, "publish: took the stream over from a silent publisher")
                                }
                                None => info!(stream = %key, %kind, "publish"),
                            }
                            let _ = session.accept_publish(stream_id);
                            if let Some(cluster) = &self.ctx.cluster {
                                cluster.own(&key);
                            }
                            self.ctx.on_publish(&key, redirect);
                            self.started = true;
                            bump(&self.ctx.counters.publishers);
                            self.role = Role::Publisher {
                                key,
                                stream: p.stream,
                                replaced: p.replaced,
                            };
                        }
                        Err(PublishError::AlreadyPublishing) => {
                            warn!(stream = %key, "publish refused: already publishing");
                            self.ctx.counters.fail("publish", "already_publishing");
                            let _ = session.reject_publish(
                                stream_id,
                                status::PUBLISH_BAD_NAME,
                                "Already publishing",
                            );
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
                    self.role = Role::Player {
                        stream_id,
                        subscription,
                    };
                    // Send what a late joiner needs right away.
                    self.fill_from_queue(session);
                }
                ServerEvent::Media { media, .. } => {
                    if let Role::Publisher { stream, .. } = &self.role {
                        stream.deliver(self.id, media);
                    }
                }
                ServerEvent::PublishEnded { .. } | ServerEvent::PlayEnded { .. } => self.leave(),
                ServerEvent::Notice(n) => debug!("{n}"),
                other => debug!(?other, "event"),
            }
        }
        None
    }

    /// Asks the secrets and hooks, unless nothing is configured. While a
    /// hook thinks, the connection is not read: nothing the client sends
    /// meanwhile goes anywhere before the answer.
    async fn authorize(&self, call: Call, name: &str, extra: (&str, String)) -> Decision {
        if self.ctx.auth.is_open(call) {
            return Decision::Allow {
                name: split_query(name).0.to_owned(),
                relay: None,
            };
        }
        self.ctx.auth.check(call, &self.caller, name, extra).await
    }

    /// Cluster mode: claims `key` for this node; the owner if another
    /// node's live publisher has it. Without Redis the publish goes on
    /// here, and the claim is made when Redis is back.
    async fn claim_in_cluster(&self, key: &str) -> Option<String> {
        let cluster = self.ctx.cluster.as_ref()?;
        match cluster.claim(key).await {
            Claim::Ours => None,
            Claim::Elsewhere(owner) => Some(owner),
            Claim::Unreachable => {
                warn!(stream = %key, "cluster: Redis unreachable; publishing here, claiming when it is back");
                None
            }
        }
    }

    /// Leaves the hub (idempotent).
    fn leave(&mut self) {
        match std::mem::replace(&mut self.role, Role::None) {
            Role::Publisher { key, .. } => {
                info!(stream = %key, "unpublish");
                drop_one(&self.ctx.counters.publishers);
                self.ctx.hub.unpublish(&key, self.id);
                let still = self.ctx.hub.get(&key).is_some_and(|s| s.has_publisher());
                if let (Some(cluster), false) = (&self.ctx.cluster, still) {
                    cluster.disown(&key);
                }
                self.notify_done(Call::PublishDone, &key);
            }
            // Dropping the subscription leaves the stream.
            Role::Player { .. } | Role::None => {}
        }
    }

    /// Tells a done hook about `key` (`app/name`).
    fn notify_done(&self, call: Call, key: &str) {
        let name = key.split_once('/').map_or(key, |(_, n)| n);
        self.ctx.auth.notify_done(call, &self.caller, name);
    }
}
