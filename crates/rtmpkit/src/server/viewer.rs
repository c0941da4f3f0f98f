//! Players that do not speak RTMP (HTTP-FLV): a [`Viewer`] joins a stream
//! of the hub as an RTMP player does. It goes through the same play
//! authorization (signed URL, `on_play` hook), starts with the metadata,
//! the sequence headers and the GOP, has the same bounded queue (a slow
//! reader loses non-key video first), starts an edge or cluster pull when
//! the stream is elsewhere, and counts in the metrics as a player.

use super::ServerContext;
use super::auth::{Call, Caller, Decision, split_query};
use super::hub::{Item, Out, PlayerQueue};
use super::metrics::bump;
use rtmpkit_proto::media::Media;
use std::net::SocketAddr;
use std::sync::Arc;
use tracing::{info, warn};

/// Opens [`Viewer`]s on a running server (see [`Server::viewers`](super::Server::viewers)).
#[derive(Debug, Clone)]
pub struct Viewers(pub(super) Arc<ServerContext>);

/// Why a viewer was not let in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("play of {stream} refused: {reason}")]
pub struct PlayRefused {
    /// `app/stream`.
    pub stream: String,
    /// The secret's or the hook's answer.
    pub reason: String,
}

/// Who asks to watch, as hooks are told.
#[derive(Debug, Clone)]
pub struct ViewerInfo {
    /// The client's address.
    pub addr: SocketAddr,
    /// The URL it asked for (`tcurl` for hooks).
    pub url: String,
    /// Its `Referer`, if any (`pageurl` for hooks).
    pub page_url: String,
}

impl Viewers {
    /// Checks a signed URL's token (`--play-secret`) for `app/name?query`
    /// without joining: each request of a segmented stream (HLS) carries
    /// it. Hooks are asked only by [`play`](Self::play).
    pub fn check_token(&self, app: &str, name: &str) -> Result<(), PlayRefused> {
        self.0.auth.check_play_token(app, name).map_err(|reason| {
            self.0.counters.fail("play", "unauthorized");
            PlayRefused {
                stream: format!("{app}/{}", split_query(name).0),
                reason,
            }
        })
    }

    /// Joins `app/name` (`name` may carry `?query`, e.g. a signed URL's
    /// token), after the play authorization.
    pub async fn play(
        &self,
        app: &str,
        name: &str,
        who: ViewerInfo,
    ) -> Result<Viewer, PlayRefused> {
        let ctx = &self.0;
        let id = ctx.next_id();
        let caller = Caller {
            addr: Some(who.addr),
            client_id: id,
            app: app.to_owned(),
            flashver: "HTTP-FLV".to_owned(),
            tcurl: who.url,
            pageurl: who.page_url,
            ..Caller::default()
        };
        let (plain, query) = split_query(name);
        let (plain, redirect) = if ctx.auth.is_open(Call::Play) {
            (plain.to_owned(), None)
        } else {
            match ctx
                .auth
                .check(Call::Play, &caller, name, ("start", "-2".into()))
                .await
            {
                Decision::Allow { name, relay } => (name, relay),
                Decision::Refuse(reason) => {
                    let stream = format!("{app}/{plain}");
                    warn!(%stream, peer = %who.addr, "http play refused: {reason}");
                    ctx.counters.fail("play", "unauthorized");
                    return Err(PlayRefused { stream, reason });
                }
            }
        };
        let key = format!("{app}/{plain}");
        info!(stream = %key, peer = %who.addr, "http play");
        // Browsers' FLV players know no multitrack messages: track 0 only.
        let (_stream, queue) = ctx.hub.play(&key, id, true);
        ctx.on_play(&key, redirect, query);
        bump(&ctx.counters.players);
        Ok(Viewer {
            ctx: ctx.clone(),
            key,
            id,
            caller,
            queue,
            items: Vec::new(),
            ended: false,
        })
    }
}

/// One non-RTMP player of a stream; it leaves the stream when dropped.
#[derive(Debug)]
pub struct Viewer {
    ctx: Arc<ServerContext>,
    key: String,
    id: u64,
    caller: Caller,
    queue: Arc<PlayerQueue>,
    items: Vec<Item>,
    ended: bool,
}

impl Viewer {
    /// `app/stream`.
    pub fn stream(&self) -> &str {
        &self.key
    }

    /// Waits for messages and appends them to `out` (up to about 256 KiB
    /// at a time); `false` once the publisher left or the server shuts
    /// down (what was left is in `out`).
    pub async fn next(&mut self, out: &mut Vec<Media>) -> bool {
        let mut shutdown = self.ctx.shutdown.clone();
        loop {
            if self.ended {
                return false;
            }
            self.queue.take(256 * 1024, &mut self.items);
            for item in self.items.drain(..) {
                item.for_each(|o| match o {
                    Out::Media(m) => out.push(m.clone()),
                    Out::StreamBegin => {}
                    Out::StreamEnd => self.ended = true,
                });
            }
            if !out.is_empty() || self.ended {
                return !self.ended;
            }
            tokio::select! {
                _ = self.queue.notify.notified() => {}
                _ = crate::sync::raised(&mut shutdown) => self.ended = true,
            }
        }
    }

    /// Messages dropped so far because the reader fell behind.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped()
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.ctx
            .player_left(&self.key, self.id, &self.queue, &self.caller);
    }
}
