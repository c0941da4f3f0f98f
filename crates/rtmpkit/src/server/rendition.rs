//! Rendition N of a multitrack stream, for players that cannot switch:
//! a play of `STREAM?track=N` (RTMP, HTTP-FLV, HLS) gets video track N of
//! an E-RTMP multitrack publish as a plain one-track stream, with track
//! 0's audio. `track=0`, or no `track`, is the stream as it is.
//!
//! Each rendition is a stream of the hub of its own, `app/name?track=N`
//! (no publisher can take that name: a publish name's query is never part
//! of its key). One task per rendition consumes the stream like any other
//! consumer and rewrites each message once
//! ([`rendition`](rtmpkit_proto::media::rendition)), so the rendition's
//! players share its fan-out, GOP cache and chunk encoding. The task stops
//! when the rendition has had no player for a while.

use super::context::ServerContext;
use super::hub::{Out, PlayerQueue, Stream};
use super::subscription::Subscription;
use crate::sync::lock;
use rtmpkit_proto::media::rendition;
use std::sync::Arc;
use std::time::Duration;
use tracing::{Instrument, info, warn};

/// How often a rendition looks whether it still has players.
const IDLE_CHECK: Duration = Duration::from_secs(2);

/// The video track a play's query asks for: `None` for the stream as it
/// is (no `track`, or `track=0`).
pub(crate) fn asked_track(query: &str) -> Result<Option<u8>, String> {
    let Some((_, v)) = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "track") else {
        return Ok(None);
    };
    match v.parse::<u8>() {
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(format!("track={v}: a video track id is 0 to 255")),
    }
}

/// The hub's name of rendition `track` of `key`.
pub(crate) fn rendition_key(key: &str, track: u8) -> String {
    format!("{key}?track={track}")
}

impl ServerContext {
    /// Joins rendition `track` of `key` as player `conn` (its hub stream
    /// `rkey`), starting the rendition unless it runs. Joining and the
    /// rendition's last look for players happen under one lock, so a
    /// player never joins a rendition that is just stopping.
    pub(super) fn play_rendition(
        self: &Arc<Self>,
        key: &str,
        rkey: &str,
        track: u8,
        conn: u64,
    ) -> Arc<PlayerQueue> {
        let mut running = lock(&self.renditions);
        let (_, queue) = self.hub.play(rkey, conn, false);
        if running.insert(rkey.to_owned()) {
            let feed = self.join_internal(key);
            let span = tracing::info_span!("rendition", stream = %rkey);
            let task = run(self.clone(), key.to_owned(), rkey.to_owned(), track, feed);
            tokio::spawn(task.instrument(span));
        }
        queue
    }
}

async fn run(
    ctx: Arc<ServerContext>,
    key: String,
    rkey: String,
    track: u8,
    mut feed: Subscription,
) {
    info!("rendition started");
    let conn = ctx.next_id();
    let mut out: Option<Arc<Stream>> = None;
    let mut idle = tokio::time::interval(IDLE_CHECK);
    idle.tick().await;
    let mut shutdown = ctx.shutdown.clone();
    loop {
        tokio::select! {
            _ = feed.queue().notify.notified() => {}
            _ = idle.tick() => {
                let mut running = lock(&ctx.renditions);
                if ctx.hub.get(&rkey).is_none_or(|s| s.player_count() == 0) {
                    running.remove(&rkey);
                    break;
                }
                continue;
            }
            _ = crate::sync::raised(&mut shutdown) => {
                lock(&ctx.renditions).remove(&rkey);
                break;
            }
        }
        feed.drain(256 * 1024, |item| match item {
            Out::Media(m) => {
                let Some(r) = rendition(m, track) else {
                    return;
                };
                if out.is_none() {
                    match ctx.hub.publish(&rkey, conn, None, true) {
                        Ok(p) => out = Some(p.stream),
                        Err(e) => warn!("rendition not published: {e:?}"),
                    }
                }
                if let Some(s) = &out {
                    s.deliver(conn, r);
                }
            }
            Out::StreamBegin => {}
            Out::StreamEnd => {
                // Its players wait for the next publish, as the stream's do.
                if out.take().is_some() {
                    ctx.hub.unpublish(&rkey, conn);
                }
            }
        });
    }
    if out.take().is_some() {
        ctx.hub.unpublish(&rkey, conn);
    }
    drop(feed);
    // A pull started for this rendition's players stops with it.
    ctx.on_stop_playing(&key);
    info!("rendition stopped: no players");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_play_asks_for_a_track_with_track_n() {
        assert_eq!(asked_track(""), Ok(None));
        assert_eq!(asked_track("token=abc"), Ok(None));
        assert_eq!(asked_track("track=0"), Ok(None));
        assert_eq!(asked_track("token=abc&track=2"), Ok(Some(2)));
        assert!(asked_track("track=x").unwrap_err().contains("track=x"));
        assert!(asked_track("track=256").is_err());
    }
}
