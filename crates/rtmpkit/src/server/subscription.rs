//! One consumer of a stream: an RTMP player, an HTTP-FLV reader, the
//! LL-HLS segmenter, a relay push, the recorder. Every one joins through
//! [`ServerContext::join`] and leaves by dropping its [`Subscription`],
//! so there is one join path, one leave path and one drain loop:
//! - joining does the play authorization (signed URL, `on_play` hook), the
//!   late-joiner data (metadata, sequence headers, GOP: the hub gives them
//!   on [`Hub::play`](super::hub::Hub::play)), an edge or cluster pull when
//!   the stream is elsewhere, and the metrics;
//! - [`Subscription::drain`] hands out what is due, in order;
//! - dropping it leaves the hub, stops a pull nobody watches any more, and
//!   tells the `on_play_done` hook.

use super::auth::{Call, Caller, split_query};
use super::context::{Authorized, ServerContext};
use super::hub::{Chunked, Item, Out, PlayerQueue};
use super::metrics::{bump, drop_one};
use super::policy::App;
use super::rendition::{asked_track, rendition_key};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tracing::{info, warn};

/// Why a play was not let in: the secret's or the hook's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("play of {stream} refused: {reason}")]
pub struct PlayRefused {
    /// `app/stream`.
    pub stream: String,
    /// The secret's or the hook's answer.
    pub reason: String,
}

/// Who consumes the stream.
#[derive(Debug, Clone)]
pub(crate) enum Consumer {
    /// A player (RTMP or HTTP): authorized under its application's
    /// policy, counted, told to the done hook.
    Player(Arc<App>),
    /// This server's own consumer (a relay push, the recorder): none of
    /// that.
    Internal,
}

/// A consumer's place in a stream; it leaves when dropped.
#[derive(Debug)]
pub(crate) struct Subscription {
    ctx: Arc<ServerContext>,
    key: String,
    /// The hub stream it plays: `key`, or one of its renditions.
    hub_key: String,
    id: u64,
    caller: Arc<Caller>,
    consumer: Consumer,
    queue: Arc<PlayerQueue>,
    items: Vec<Item>,
}

impl ServerContext {
    /// Joins `app/name` (`name` may carry `?query`) as the player
    /// `caller`, after the play authorization; `extra` is the hook field
    /// the request adds (`start`). `track0_only`: no E-RTMP multitrack
    /// messages (a player that did not announce E-RTMP). A query with
    /// `track=N` plays rendition N (see [`super::rendition`]).
    pub(crate) async fn join(
        self: &Arc<Self>,
        caller: Arc<Caller>,
        name: &str,
        extra: (&str, String),
        track0_only: bool,
    ) -> Result<Subscription, PlayRefused> {
        let Authorized { key, relay, app } = self
            .authorize(Call::Play, &caller, name, extra)
            .await
            .map_err(|(stream, reason)| PlayRefused { stream, reason })?;
        let track = asked_track(split_query(name).1).map_err(|reason| {
            self.counters.fail("play", "bad_request");
            PlayRefused {
                stream: key.clone(),
                reason,
            }
        })?;
        if let Some(max) = app.policy.max_players {
            let now = self.sessions.players_of(&key);
            if now >= max {
                warn!(stream = %key, "play refused: {now} players already (max_players {max})");
                self.counters.fail("play", "limit");
                return Err(PlayRefused {
                    stream: key,
                    reason: format!("this stream already has {now} players (its most)"),
                });
            }
        }
        info!(stream = %key, flashver = %caller.flashver, "play");
        let sub = self.subscribe(key, caller, Consumer::Player(app), track0_only, track);
        self.on_play(&sub.key, relay, split_query(name).1);
        bump(&self.counters.players);
        Ok(sub)
    }

    /// Joins `key` as this server's own consumer (a relay push, the
    /// recorder): every track, no authorization, not counted as a player.
    pub(crate) fn join_internal(self: &Arc<Self>, key: &str) -> Subscription {
        let caller = Arc::new(Caller {
            client_id: self.next_id(),
            ..Caller::default()
        });
        self.subscribe(key.to_owned(), caller, Consumer::Internal, false, None)
    }

    fn subscribe(
        self: &Arc<Self>,
        key: String,
        caller: Arc<Caller>,
        consumer: Consumer,
        track0_only: bool,
        track: Option<u8>,
    ) -> Subscription {
        let id = caller.client_id;
        let (hub_key, queue) = match track {
            None => (key.clone(), self.hub.play(&key, id, track0_only).1),
            Some(n) => {
                let rkey = rendition_key(&key, n);
                let queue = self.play_rendition(&key, &rkey, n, id);
                (rkey, queue)
            }
        };
        Subscription {
            ctx: self.clone(),
            key,
            hub_key,
            id,
            caller,
            consumer,
            queue,
            items: Vec::new(),
        }
    }
}

impl Subscription {
    /// `app/stream`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The queue, whose `notify` says something is due.
    pub fn queue(&self) -> &Arc<PlayerQueue> {
        &self.queue
    }

    /// Hands what is due (up to about `max_bytes`) to `f`, in order.
    pub fn drain(&mut self, max_bytes: usize, mut f: impl FnMut(Out<'_>)) {
        self.queue.take(max_bytes, &mut self.items);
        for item in self.items.drain(..) {
            item.for_each(&mut f);
        }
        // Keep little room between batches: thousands of players each
        // holding a GOP-sized vector would add up.
        self.items.shrink_to(32);
    }

    /// The application's policy a player was let in under.
    pub fn app(&self) -> Option<&Arc<App>> {
        match &self.consumer {
            Consumer::Player(app) => Some(app),
            Consumer::Internal => None,
        }
    }

    /// As [`Subscription::drain`], but each whole batch comes as one (an
    /// RTMP player sends it as one run of chunks, encoded once for all).
    pub fn drain_batches(&mut self, max_bytes: usize, mut f: impl FnMut(Chunked<'_>)) {
        self.queue.take(max_bytes, &mut self.items);
        for item in self.items.drain(..) {
            item.for_each_batch(&mut f);
        }
        self.items.shrink_to(32);
    }

    /// Messages dropped so far because the consumer fell behind.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let ctx = &self.ctx;
        ctx.hub.stop_playing(&self.hub_key, self.id);
        let Consumer::Player(app) = &self.consumer else {
            return;
        };
        let dropped = self.queue.dropped();
        drop_one(&ctx.counters.players);
        ctx.counters
            .dropped_by_gone
            .fetch_add(dropped, Ordering::Relaxed);
        if dropped > 0 {
            info!(stream = %self.key, dropped, "player left; messages dropped while it was behind");
        }
        ctx.on_stop_playing(&self.key);
        let name = self.key.split_once('/').map_or(&*self.key, |(_, n)| n);
        app.auth.notify_done(Call::PlayDone, &self.caller, name);
    }
}
