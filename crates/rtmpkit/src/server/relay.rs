//! Relays: an edge pulls a stream from its origin while players watch it;
//! a published stream is pushed to other servers.

use super::context::ServerContext;
use super::hub::Out;
use super::sessions::SessionKind;
use super::subscription::Subscription;
use crate::client::{
    ClientOptions, EndReason, Fed, Feed, PullSession, PushSession, ReconnectPolicy,
};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::futures::Notified;
use tokio::sync::watch;
use tracing::{Instrument, info, warn};

/// How long an edge keeps a stream for its players while the origin is
/// away (the pull retries meanwhile): an origin that restarts, or a
/// publisher that reconnects to it, is back without the players noticing.
const SOURCE_GRACE: Duration = Duration::from_secs(10);

/// `base` (`rtmp://host[:port]`) and `app/stream` as one URL.
pub(crate) fn stream_url(base: &str, key: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), key)
}

/// Where a pull takes its stream from.
#[derive(Debug, Clone)]
pub(crate) enum PullSource {
    /// A fixed URL: the edge's origin, or a hook's redirect.
    Url(String),
    /// Whichever node owns the stream in the cluster, asked again before
    /// each attempt and every second while pulling; `query` (the
    /// player's tokens) goes with it.
    Cluster { query: String },
}

/// How often a relay push whose target is not up yet checks that its
/// stream is still published here.
const UNPUBLISHED_CHECK: Duration = Duration::from_secs(1);
/// How often a cluster pull checks that its source still owns the stream.
const OWNER_CHECK: Duration = Duration::from_secs(1);
/// How often a cluster pull whose stream has no owner yet looks again
/// (players wait; the first GOP should not be missed).
const OWNER_POLL: Duration = Duration::from_millis(250);
/// Longest wait between attempts: a fixed origin, and a cluster owner
/// (the next attempt may find a new owner, so it retries sooner).
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const MAX_CLUSTER_BACKOFF: Duration = Duration::from_secs(1);

/// Pulls `source` into the local stream `key` until told to stop, the
/// server shuts down, or nobody watches; retries with back-off while
/// players wait.
pub(crate) fn spawn_pull(
    ctx: Arc<ServerContext>,
    key: String,
    source: PullSource,
    mut stop: watch::Receiver<bool>,
) {
    let span = tracing::info_span!("relay_pull", stream = %key);
    tokio::spawn(
        async move {
            let id = ctx.next_id();
            let mut shutdown = ctx.shutdown.clone();
            let mut backoff = Duration::from_millis(200);
            // While the origin is away, players keep the stream (and wait)
            // for up to SOURCE_GRACE; the next pull takes it over again.
            let mut lost_at: Option<Instant> = None;
            let mut connected_before = false;
            'pulling: loop {
                if *stop.borrow() || *shutdown.borrow() {
                    break;
                }
                if lost_at.is_some_and(|t| t.elapsed() > SOURCE_GRACE) {
                    info!("no source for {SOURCE_GRACE:?}: ending the stream for its players");
                    ctx.hub.unpublish(&key, id);
                    lost_at = None;
                }
                let url = match &source {
                    PullSource::Url(url) => url.clone(),
                    PullSource::Cluster { query } => match ctx.cluster_source(&key, query).await {
                        Some(url) => url,
                        None if ctx
                            .hub
                            .get(&key)
                            .and_then(|s| s.publisher_conn())
                            .is_some_and(|c| c != id) =>
                        {
                            // Published here now: no need to pull.
                            break;
                        }
                        None => {
                            // No owner yet (or Redis away): players wait.
                            tokio::select! {
                                _ = tokio::time::sleep(OWNER_POLL) => {}
                                _ = crate::sync::raised(&mut stop) => break,
                                _ = crate::sync::raised(&mut shutdown) => break,
                            }
                            continue;
                        }
                    },
                };
                ctx.set_pull_source(&key, &url);
                // A forwarder takes every codec and track.
                let opts = ClientOptions::default().with_every_codec();
                let pull = match PullSession::new(&url, opts) {
                    Ok(p) => p,
                    Err(e) => {
                        warn!("relay pull: {e}");
                        break;
                    }
                };
                let started = tokio::select! {
                    r = pull.start() => r,
                    _ = crate::sync::raised(&mut stop) => { let _ = pull.dispose(); break; }
                    _ = crate::sync::raised(&mut shutdown) => { let _ = pull.dispose(); break; }
                };
                if let Err(e) = started {
                    warn!("relay pull from {url}: {e}; retrying in {backoff:?}");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = crate::sync::raised(&mut stop) => break,
                    }
                    backoff = (backoff * 2).min(match source {
                        PullSource::Url(_) => MAX_BACKOFF,
                        PullSource::Cluster { .. } => MAX_CLUSTER_BACKOFF,
                    });
                    continue;
                }
                backoff = Duration::from_millis(200);
                if std::mem::replace(&mut connected_before, true) {
                    super::metrics::bump(&ctx.counters.pull_reconnects);
                }
                let app = key.split_once('/').map_or(key.as_str(), |(a, _)| a);
                let gop_cache = ctx.app(app).is_none_or(|a| a.policy.gop_cache);
                let Ok(stream) = ctx.hub.publish(&key, id, None, gop_cache).map(|p| p.stream)
                else {
                    // Somebody publishes here now: no need to pull.
                    let _ = pull.close().await;
                    break;
                };
                info!("relaying from {url}");
                let registered =
                    ctx.sessions
                        .open_counted(id, SessionKind::Pull, None, pull.io_counters());
                registered.session.relaying(&key, &url, None);
                let following = matches!(source, PullSource::Cluster { .. });
                let mut check = tokio::time::interval(OWNER_CHECK);
                let mut moved = false;
                loop {
                    let msg = tokio::select! {
                        m = pull.next_message() => m,
                        _ = registered.session.closed() => {
                            info!("relay from {url}: {}", registered.session.closed_because());
                            let _ = pull.close().await;
                            break 'pulling;
                        }
                        _ = crate::sync::raised(&mut stop) => None,
                        _ = crate::sync::raised(&mut shutdown) => None,
                        _ = check.tick(), if following => {
                            if let PullSource::Cluster { query } = &source
                                && let Some(now) = ctx.cluster_source(&key, query).await
                                && now != url
                            {
                                info!("the stream moved to {now}: following it");
                                moved = true;
                                None
                            } else if stream.publisher_conn() != Some(id) {
                                // Published here now: no need to pull.
                                let _ = pull.close().await;
                                break 'pulling;
                            } else {
                                continue;
                            }
                        }
                    };
                    let Some(m) = msg else { break };
                    stream.deliver(id, m);
                }
                let _ = pull.close().await;
                if moved {
                    lost_at.get_or_insert_with(Instant::now);
                    continue;
                }
                let reason = pull.wait().await;
                info!("relay from {url} ended: {reason}");
                if matches!(reason, EndReason::StreamEnded(_)) {
                    // The origin's publisher left: so do we, as a local
                    // publisher would (players keep waiting for the next).
                    ctx.hub.unpublish(&key, id);
                } else {
                    // The origin went away: keep the stream for a while.
                    lost_at = Some(Instant::now());
                }
            }
            // Stopped (nobody watches, or shutdown) or given up: players,
            // if any, get the end of the stream.
            ctx.hub.unpublish(&key, id);
            ctx.forget_pull(&key);
        }
        .instrument(span),
    );
}

/// Pushes the local stream `key` to `url` while it is published. The push
/// session takes its media straight from its subscription on its own task
/// (one wake-up per batch, no channel). It follows the client's reconnect
/// policy (OBS-like back-off), from the first attempt on: a target that is
/// down at first or breaks later is dialled again while the stream is
/// published, and what the subscription gathered meanwhile goes out first.
pub(crate) fn spawn_push(ctx: Arc<ServerContext>, key: String, url: String) {
    let span = tracing::info_span!("relay_push", stream = %key);
    tokio::spawn(
        async move {
            let opts = ClientOptions {
                reconnect: Some(ReconnectPolicy::default()),
                ..ClientOptions::default()
            };
            let push = match PushSession::new(&url, opts) {
                Ok(p) => p,
                Err(e) => {
                    warn!("relay push to {url}: {e}");
                    return;
                }
            };
            let feed = Box::new(ctx.join_internal(&key));
            let registered = ctx.sessions.open_counted(
                ctx.next_id(),
                SessionKind::Relay,
                None,
                push.io_counters(),
            );
            registered
                .session
                .relaying(&key, &url, Some(feed.queue().clone()));
            let kicked = registered.session.closed();
            tokio::pin!(kicked);
            let mut shutdown = ctx.shutdown.clone();
            let mut check = tokio::time::interval(UNPUBLISHED_CHECK);
            let started = push.start_fed(feed);
            tokio::pin!(started);
            // Retrying a target that is down: given up once the stream is
            // no longer published here, or at shutdown.
            let started = loop {
                tokio::select! {
                    r = &mut started => break r,
                    _ = check.tick() => {
                        if !ctx.hub.get(&key).is_some_and(|s| s.has_publisher()) {
                            let _ = push.dispose();
                        }
                    }
                    _ = crate::sync::raised(&mut shutdown) => {
                        let _ = push.dispose();
                    }
                    _ = &mut kicked => {
                        let _ = push.dispose();
                    }
                }
            };
            if let Err(e) = started {
                warn!("relay push to {url}: {e}; giving up");
                return;
            }
            info!("relaying to {url}");
            let reason = tokio::select! {
                r = push.wait() => r,
                _ = crate::sync::raised(&mut shutdown) => {
                    let _ = push.close().await;
                    push.wait().await
                }
                _ = &mut kicked => {
                    let _ = push.close().await;
                    push.wait().await
                }
            };
            info!("relay to {url} ended: {reason}");
        }
        .instrument(span),
    );
}

impl Feed for Subscription {
    fn due(&self) -> Notified<'_> {
        self.queue().notify.notified()
    }

    fn take(&mut self, out: &mut VecDeque<Fed>) {
        self.drain(256 * 1024, |item| match item {
            Out::Media(m) => out.push_back(Fed::Media(m.clone())),
            Out::StreamBegin => {}
            Out::StreamEnd => out.push_back(Fed::End),
        });
    }
}
