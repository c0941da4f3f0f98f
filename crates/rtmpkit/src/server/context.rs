//! What the server's connection, relay and player tasks share: the
//! options, the hub, the authorizer, the counters, the running pulls and
//! the shutdown and drain signals; and what happens around a publish and
//! a play (relays started and stopped).

use super::ServerOptions;
use super::auth::{Call, Caller, Decision, split_query};
use super::cluster::Cluster;
use super::hub::Hub;
use super::metrics::{self, MetricCounters};
use super::policy::{Action, App, Policy};
use super::record::Recordings;
use super::relay::{self, PullSource};
use super::sessions::Sessions;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tracing::warn;

/// What the server's connection and relay tasks share.
#[derive(Debug)]
pub(crate) struct ServerContext {
    pub opts: ServerOptions,
    pub hub: Hub,
    /// Every application's policy, replaced whole by a reload.
    pub policy: Mutex<Arc<Policy>>,
    pub counters: MetricCounters,
    pub(super) next_id: AtomicU64,
    pub relay_pulls: Mutex<HashMap<String, Pull>>,
    /// This node's part of the cluster, in cluster mode.
    pub cluster: Option<Arc<Cluster>>,
    pub shutdown: watch::Receiver<bool>,
    /// Drain requests: each one asks every client that supports it to
    /// reconnect (to the `tcUrl` inside, or here again).
    pub drain: watch::Sender<Option<Option<String>>>,
    /// The recorders and their open files.
    pub recordings: Recordings,
    /// The renditions running (their hub names), see [`super::rendition`].
    pub renditions: Mutex<std::collections::HashSet<String>>,
    /// Every session, for operators.
    pub sessions: Arc<Sessions>,
    /// When the server started.
    pub started: std::time::Instant,
}

impl ServerContext {
    /// The policy in force of application `app`; `None`: not served.
    pub fn app(&self, app: &str) -> Option<Arc<App>> {
        crate::sync::lock(&self.policy).app(app)
    }

    /// The publish or play authorization of one request (the
    /// application's access rules, signed URL, hook), shared by
    /// publishers and players: the application's policy, the stream key
    /// (`app/name`, the name as a hook may have renamed it) and where a
    /// hook's redirect sends the stream; or the stream key and why it was
    /// refused (logged and counted here).
    pub(crate) async fn authorize(
        &self,
        call: Call,
        caller: &Caller,
        name: &str,
        extra: (&str, String),
    ) -> Result<Authorized, (String, String)> {
        let plain = split_query(name).0;
        let (what, action) = match call {
            Call::Publish => ("publish", Action::Publish),
            _ => ("play", Action::Play),
        };
        let stream = format!("{}/{plain}", caller.app);
        let refuse = |reason: String, counted: &'static str| {
            warn!(%stream, peer = ?caller.addr, "{what} refused: {reason}");
            self.counters.fail(what, counted);
            Err((stream.clone(), reason))
        };
        let Some(app) = self.app(&caller.app) else {
            return refuse(not_served(&caller.app), "unknown_app");
        };
        if let Err(reason) = app.policy.check_access(action, caller.addr.map(|a| a.ip())) {
            return refuse(reason, "denied");
        }
        if app.auth.is_open(call) {
            return Ok(Authorized {
                key: stream.clone(),
                relay: None,
                app,
            });
        }
        match app.auth.check(call, caller, name, extra).await {
            Decision::Allow { name, relay } => Ok(Authorized {
                key: format!("{}/{name}", caller.app),
                relay,
                app,
            }),
            Decision::Refuse(reason) => refuse(reason, "unauthorized"),
        }
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A stream started publishing: start static relay pushes, and the one
    /// a hook's redirect asked for.
    pub fn on_publish(
        self: &Arc<Self>,
        key: &str,
        redirect: Option<String>,
        caller: &Arc<Caller>,
        app: &Arc<App>,
        query: &str,
    ) {
        if app.policy.record {
            self.start_recording(key, caller.clone(), app, query);
        }
        for base in &self.opts.relay_push {
            relay::spawn_push(self.clone(), key.to_owned(), relay::stream_url(base, key));
        }
        if let Some(url) = redirect {
            relay::spawn_push(self.clone(), key.to_owned(), url);
        }
    }

    /// A player joined: on an edge (or when a hook redirected the play to
    /// another server), pull the stream if nobody publishes it here; in
    /// cluster mode, pull it from the node that owns it. A pull carries
    /// the player's `query` (tokens) to its source.
    pub fn on_play(self: &Arc<Self>, key: &str, redirect: Option<String>, query: &str) {
        let source = match (redirect, &self.opts.relay_pull) {
            (Some(url), _) => PullSource::Url(url),
            (None, Some(origin)) if query.is_empty() => {
                PullSource::Url(relay::stream_url(origin, key))
            }
            (None, Some(origin)) => {
                PullSource::Url(format!("{}?{query}", relay::stream_url(origin, key)))
            }
            (None, None) if self.cluster.is_some() => PullSource::Cluster {
                query: query.to_owned(),
            },
            (None, None) => return,
        };
        self.start_pull(key, source);
    }

    /// Cluster mode: pulls `key` from its owner for the local players.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // used by cluster mode
    pub fn pull_from_cluster(self: &Arc<Self>, key: &str, query: &str) {
        if self.cluster.is_some() {
            let query = query.to_owned();
            self.start_pull(key, PullSource::Cluster { query });
        }
    }

    /// Starts a pull of `key` unless it is published here or pulled already.
    fn start_pull(self: &Arc<Self>, key: &str, source: PullSource) {
        if self.hub.get(key).is_some_and(|s| s.has_publisher()) {
            return;
        }
        let mut pulls = crate::sync::lock(&self.relay_pulls);
        if pulls.contains_key(key) {
            return;
        }
        let (tx, rx) = watch::channel(false);
        let cluster = matches!(source, PullSource::Cluster { .. });
        pulls.insert(
            key.to_owned(),
            Pull {
                stop: tx,
                source: None,
                cluster,
            },
        );
        metrics::bump(if cluster {
            &self.counters.cluster_pulls
        } else {
            &self.counters.relay_pulls
        });
        relay::spawn_pull(self.clone(), key.to_owned(), source, rx);
    }

    /// The URL to pull `key` from: its owner's, unless that is this node
    /// or nobody (or Redis does not answer).
    pub(crate) async fn cluster_source(&self, key: &str, query: &str) -> Option<String> {
        let cluster = self.cluster.as_ref()?;
        let owner = cluster.owner(key).await?;
        if owner == cluster.opts().advertise {
            return None;
        }
        let url = relay::stream_url(&owner, key);
        Some(match query {
            "" => url,
            q => format!("{url}?{q}"),
        })
    }

    /// Notes where the pull of `key` connects now (for `/stats`).
    pub(crate) fn set_pull_source(&self, key: &str, url: &str) {
        if let Some(p) = crate::sync::lock(&self.relay_pulls).get_mut(key) {
            p.source = Some(url.split('?').next().unwrap_or(url).to_owned());
        }
    }

    /// A player left: stop a pull nobody watches any more.
    pub fn on_stop_playing(self: &Arc<Self>, key: &str) {
        if self.hub.get(key).is_some_and(|s| s.player_count() > 0) {
            return;
        }
        if let Some(p) = crate::sync::lock(&self.relay_pulls).remove(key) {
            let _ = p.stop.send(true);
        }
    }

    pub(crate) fn forget_pull(&self, key: &str) {
        crate::sync::lock(&self.relay_pulls).remove(key);
    }
}

/// A running pull of a stream into this server.
#[derive(Debug)]
pub(crate) struct Pull {
    stop: watch::Sender<bool>,
    /// Where it connects now (without the query).
    pub source: Option<String>,
    /// Whether it follows the cluster's owner (else a fixed URL).
    pub cluster: bool,
}

/// A publish or play the authorization let in.
#[derive(Debug)]
pub(crate) struct Authorized {
    /// `app/name`, the name as a hook may have renamed it.
    pub key: String,
    /// Where a hook's redirect sends the stream.
    pub relay: Option<String>,
    /// The application's policy it was let in under.
    pub app: Arc<App>,
}

/// Why a request of an application no policy covers is refused.
pub(crate) fn not_served(app: &str) -> String {
    format!("application {app:?} is not served here")
}
