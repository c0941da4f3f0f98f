//! Players that do not speak RTMP (HTTP-FLV, the LL-HLS segmenter): a
//! [`Player`] is a subscription to a stream as an RTMP player's is. It
//! goes through the same play authorization (signed URL, `on_play` hook),
//! starts with the metadata, the sequence headers and the GOP, has the
//! same bounded queue (a slow reader loses non-key video first), starts an
//! edge or cluster pull when the stream is elsewhere, and counts in the
//! metrics as a player.

use super::auth::{Call, Caller, split_query};
use super::context::{ServerContext, not_served};
use super::hub::Out;
use super::sessions::{Registered, SessionKind};
use super::subscription::{PlayRefused, Subscription};
use rtmpkit_proto::media::Media;
use std::net::SocketAddr;
use std::sync::Arc;

/// Opens [`Player`]s on a running server (see [`Server::players`](super::Server::players)).
#[derive(Debug, Clone)]
pub struct Players(pub(super) Arc<ServerContext>);

/// Who asks to watch, as hooks are told.
#[derive(Debug, Clone)]
pub struct PlayerInfo {
    /// The client's address.
    pub addr: SocketAddr,
    /// The URL it asked for (`tcurl` for hooks).
    pub url: String,
    /// Its `Referer`, if any (`pageurl` for hooks).
    pub page_url: String,
    /// How it reaches the server (`HttpFlv`, `Hls`), as the sessions API
    /// lists it.
    pub kind: SessionKind,
}

impl Players {
    /// Checks a signed URL's token (`--play-secret`) for `app/name?query`
    /// without joining: each request of a segmented stream (HLS) carries
    /// it. Hooks are asked only by [`play`](Self::play).
    pub fn check_token(&self, app: &str, name: &str) -> Result<(), PlayRefused> {
        let checked = match self.0.app(app) {
            Some(policy) => policy.auth.check_play_token(app, name),
            None => Err(not_served(app)),
        };
        checked.map_err(|reason| {
            self.0.counters.fail("play", "unauthorized");
            PlayRefused {
                stream: format!("{app}/{}", split_query(name).0),
                reason,
            }
        })
    }

    /// Whether application `app` serves its streams over LL-HLS.
    pub fn serves_hls(&self, app: &str) -> bool {
        self.0.app(app).is_some_and(|a| a.policy.hls)
    }

    /// The play authorization of `app/name` (`name` may carry `?query`)
    /// without joining the live stream: signed URL and `on_play` hook, as
    /// for a player. Recordings are served behind it.
    pub async fn authorize(
        &self,
        app: &str,
        name: &str,
        who: PlayerInfo,
    ) -> Result<(), PlayRefused> {
        let caller = caller_of(&self.0, app, who);
        self.0
            .authorize(Call::Play, &caller, name, ("start", "-2".into()))
            .await
            .map(drop)
            .map_err(|(stream, reason)| PlayRefused { stream, reason })
    }

    /// Joins `app/name` (`name` may carry `?query`, e.g. a signed URL's
    /// token, or `track=N` for one rendition of a multitrack stream),
    /// after the play authorization. The player gets track 0 only:
    /// browsers' FLV players know no multitrack messages.
    pub async fn play(
        &self,
        app: &str,
        name: &str,
        who: PlayerInfo,
    ) -> Result<Player, PlayRefused> {
        self.join(app, name, who, true).await
    }

    /// As [`Players::play`], with every track of a multitrack stream (the
    /// LL-HLS segmenter makes a variant of each video track).
    #[cfg_attr(not(feature = "http"), allow(dead_code))] // the LL-HLS segmenter
    pub(crate) async fn play_every_track(
        &self,
        app: &str,
        name: &str,
        who: PlayerInfo,
    ) -> Result<Player, PlayRefused> {
        self.join(app, name, who, false).await
    }

    async fn join(
        &self,
        app: &str,
        name: &str,
        who: PlayerInfo,
        track0_only: bool,
    ) -> Result<Player, PlayRefused> {
        let kind = who.kind;
        let caller = Arc::new(caller_of(&self.0, app, who));
        let registered = self.0.sessions.open(caller.client_id, kind, caller.addr);
        registered
            .session
            .connected(app, &caller.flashver, &caller.tcurl);
        let subscription = self
            .0
            .join(caller, name, ("start", "-2".into()), track0_only)
            .await?;
        registered
            .session
            .playing(subscription.key(), subscription.queue().clone());
        Ok(Player {
            shutdown: self.0.shutdown.clone(),
            subscription,
            ended: false,
            registered,
        })
    }
}

/// Who an HTTP request is, as hooks are told.
fn caller_of(ctx: &ServerContext, app: &str, who: PlayerInfo) -> Caller {
    Caller {
        addr: Some(who.addr),
        client_id: ctx.next_id(),
        app: app.to_owned(),
        flashver: "HTTP-FLV".to_owned(),
        tcurl: who.url,
        pageurl: who.page_url,
        ..Caller::default()
    }
}

/// One non-RTMP player of a stream; it leaves the stream when dropped.
#[derive(Debug)]
pub struct Player {
    subscription: Subscription,
    shutdown: tokio::sync::watch::Receiver<bool>,
    ended: bool,
    /// Its entry in the server's sessions (bytes out, kick).
    registered: Registered,
}

impl Player {
    /// `app/stream`.
    pub fn stream(&self) -> &str {
        self.subscription.key()
    }

    /// Waits for messages and appends them to `out` (up to about 256 KiB
    /// at a time); `false` once the publisher left or the server shuts
    /// down (what was left is in `out`).
    pub async fn next(&mut self, out: &mut Vec<Media>) -> bool {
        loop {
            if self.ended {
                return false;
            }
            let ended = &mut self.ended;
            self.subscription.drain(256 * 1024, |o| match o {
                Out::Media(m) => out.push(m.clone()),
                Out::StreamBegin => {}
                Out::StreamEnd => *ended = true,
            });
            if !out.is_empty() || self.ended {
                return !self.ended;
            }
            let queue = self.subscription.queue().clone();
            tokio::select! {
                _ = queue.notify.notified() => {}
                _ = self.registered.session.attention.notified() => {
                    self.ended = self.registered.session.is_closed() || *self.shutdown.borrow();
                }
            }
        }
    }

    /// Counts `n` bytes handed to the reader (the sessions API shows them).
    pub fn sent(&self, n: usize) {
        self.registered
            .session
            .io
            .written
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Messages dropped so far because the reader fell behind.
    pub fn dropped(&self) -> u64 {
        self.subscription.dropped()
    }
}
