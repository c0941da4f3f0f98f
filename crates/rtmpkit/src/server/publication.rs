//! A stream's publisher: [`ServerContext::publish`] lets it in (the
//! publish authorization, the cluster claim, the hub's publisher role,
//! relay pushes, metrics), [`Publication::deliver`] hands its media to
//! the stream, [`Publication::next_turn`] says when the driver reads it
//! next, and dropping the [`Publication`] unpublishes (the hub, the
//! cluster claim, the `on_publish_done` hook).

use super::auth::{Call, Caller, split_query};
use super::cluster::Claim;
use super::context::{Authorized, ServerContext};
use super::hub::{PublishError, Stream};
use super::metrics::{bump, drop_one};
use super::policy::App;
use rtmpkit_proto::media::Media;
use rtmpkit_proto::message::status;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{info, warn};

/// Why a publish was not let in: the status code for the client, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublishRefused {
    /// `NetStream.Publish.Unauthorized` or `NetStream.Publish.BadName`.
    pub code: &'static str,
    pub reason: String,
}

/// The publisher of one stream; it unpublishes when dropped.
#[derive(Debug)]
pub(crate) struct Publication {
    ctx: Arc<ServerContext>,
    key: String,
    id: u64,
    caller: Arc<Caller>,
    /// The application's policy it was let in under.
    app: Arc<App>,
    stream: Arc<Stream>,
    /// Told when a new publisher takes the stream over.
    replaced: Arc<Notify>,
}

impl ServerContext {
    /// Publishes `app/name` (`name` may carry `?query`) for the connection
    /// of `caller`, after the publish authorization and, in cluster mode,
    /// the claim; `kind` is the publishing type (`live`).
    pub(crate) async fn publish(
        self: &Arc<Self>,
        caller: Arc<Caller>,
        name: &str,
        kind: &str,
    ) -> Result<Publication, PublishRefused> {
        let extra = ("type", kind.to_owned());
        let Authorized { key, relay, app } = self
            .authorize(Call::Publish, &caller, name, extra)
            .await
            .map_err(|(_, reason)| PublishRefused {
                code: status::PUBLISH_UNAUTHORIZED,
                reason,
            })?;
        if let Some(max) = app.policy.max_publishers {
            let prefix = format!("{}/", caller.app);
            let now = self.hub.publishing_under(&prefix, &key);
            if now >= max {
                warn!(stream = %key, "publish refused: {now} streams of {:?} already publish (max_publishers {max})", caller.app);
                self.counters.fail("publish", "limit");
                return Err(PublishRefused {
                    code: status::PUBLISH_BAD_NAME,
                    reason: format!("this application already has {now} publishers (its most)"),
                });
            }
        }
        if let Some(left) = self.sessions.blocked(&key) {
            warn!(stream = %key, "publish refused: blocked by an operator for {left:.0?} more");
            self.counters.fail("publish", "blocked");
            return Err(PublishRefused {
                code: status::PUBLISH_BAD_NAME,
                reason: format!("blocked by an operator for {} s more", left.as_secs() + 1),
            });
        }
        if let Some(owner) = self.claim_in_cluster(&key).await {
            warn!(stream = %key, "publish refused: published on {owner}");
            self.counters.fail("publish", "claimed_elsewhere");
            return Err(PublishRefused {
                code: status::PUBLISH_BAD_NAME,
                reason: format!("Already publishing (on {owner})"),
            });
        }
        let id = caller.client_id;
        let policy = &app.policy;
        let p = match self
            .hub
            .publish(&key, id, policy.takeover_after, policy.gop_cache)
        {
            Ok(p) => p,
            Err(PublishError::AlreadyPublishing) => {
                warn!(stream = %key, "publish refused: already publishing");
                self.counters.fail("publish", "already_publishing");
                return Err(PublishRefused {
                    code: status::PUBLISH_BAD_NAME,
                    reason: "Already publishing".into(),
                });
            }
        };
        match p.took_over {
            Some(old) => {
                bump(&self.counters.takeovers);
                info!(stream = %key, %kind, old, "publish: took the stream over from a silent publisher");
            }
            None => info!(stream = %key, %kind, "publish"),
        }
        if let Some(cluster) = &self.cluster {
            cluster.own(&key);
        }
        self.on_publish(&key, relay, &caller, &app, split_query(name).1);
        bump(&self.counters.publishers);
        Ok(Publication {
            ctx: self.clone(),
            key,
            id,
            caller,
            app,
            stream: p.stream,
            replaced: p.replaced,
        })
    }

    /// Cluster mode: claims `key` for this node; the owner if another
    /// node's live publisher has it. Without Redis the publish goes on
    /// here, and the claim is made when Redis is back.
    async fn claim_in_cluster(&self, key: &str) -> Option<String> {
        let cluster = self.cluster.as_ref()?;
        match cluster.claim(key).await {
            Claim::Ours => None,
            Claim::Elsewhere(owner) => Some(owner),
            Claim::Unreachable => {
                warn!(stream = %key, "cluster: Redis unreachable; publishing here, claiming when it is back");
                None
            }
        }
    }
}

impl Publication {
    /// Hands one message of the publisher to the stream's caches and
    /// players (nobody, once another publisher took the stream over).
    pub fn deliver(&self, media: Media) {
        self.stream.deliver(self.id, media);
    }

    /// After a read of the publisher: when it is read next. A small
    /// stream's publisher is read on its stream's turn of the flush clock,
    /// and what the read brought goes to the players now (they would get
    /// it only once per period anyway); `None`: whenever bytes arrive.
    pub fn next_turn(&self) -> Option<(Instant, Duration)> {
        let turns = self.ctx.hub.clock().and_then(|c| c.turns(&self.stream));
        if turns.is_some() {
            self.stream.serve_read();
        }
        turns
    }

    /// `app/stream`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The application's policy it was let in under.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Told when a new publisher takes the stream over.
    pub fn replaced(&self) -> &Arc<Notify> {
        &self.replaced
    }
}

impl Drop for Publication {
    fn drop(&mut self) {
        let ctx = &self.ctx;
        info!(stream = %self.key, "unpublish");
        drop_one(&ctx.counters.publishers);
        ctx.hub.unpublish(&self.key, self.id);
        let still = ctx.hub.get(&self.key).is_some_and(|s| s.has_publisher());
        if let (Some(cluster), false) = (&ctx.cluster, still) {
            cluster.disown(&self.key);
        }
        let name = self.key.split_once('/').map_or(&*self.key, |(_, n)| n);
        self.app
            .auth
            .notify_done(Call::PublishDone, &self.caller, name);
    }
}
