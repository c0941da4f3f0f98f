//! Cluster mode: servers that share one stream directory in Redis behave
//! as one. A publish claims its stream (`rtmpkit:stream:APP/NAME` = the
//! node's advertised URL) with a short TTL that the node refreshes; a
//! player on another node pulls the stream from the owner.
//!
//! Two keys per stream:
//! - the claim, refreshed every second while the stream is published
//!   here, gone [`ClusterOptions::claim_ttl`] after its node died;
//! - `rtmpkit:live:APP/NAME`, refreshed only while the publisher sends,
//!   with the takeover time as TTL: without it, a publish on any node
//!   takes the claim over (an encoder that reconnected elsewhere).
//!
//! Redis being away stops nothing local: publishing and playing go on, the
//! loss is logged, and the claims are made again when Redis is back.
//!
//! Without the `cluster` feature the server has no Redis client: asking
//! for cluster mode is an error at [`Server::bind`](super::Server::bind).

#[cfg(feature = "cluster")]
mod redis;
#[cfg(feature = "cluster")]
pub(crate) use self::redis::Cluster;

#[cfg(not(feature = "cluster"))]
mod off;
#[cfg(not(feature = "cluster"))]
pub(crate) use off::Cluster;

use std::time::Duration;

/// Settings of cluster mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// The shared directory: `redis://HOST:PORT[/DB]`.
    pub redis: String,
    /// How the other nodes reach this one: `rtmp://HOST:PORT`.
    pub advertise: String,
    /// How long a claim outlives its node (default 5 s).
    pub claim_ttl: Duration,
}

impl ClusterOptions {
    /// Redis at `redis`, this node reachable at `advertise`, default TTL.
    pub fn new(redis: impl Into<String>, advertise: impl Into<String>) -> Self {
        ClusterOptions {
            redis: redis.into(),
            advertise: advertise.into(),
            claim_ttl: Duration::from_secs(5),
        }
    }
}

/// What a claim attempt found.
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "cluster"), allow(dead_code))] // used by cluster mode
pub(crate) enum Claim {
    Ours,
    /// Another node's live publisher has it.
    Elsewhere(String),
    /// Redis did not answer: publish locally, claim later.
    Unreachable,
}
