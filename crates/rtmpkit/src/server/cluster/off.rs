//! Cluster mode in a build without the `cluster` feature: there is no
//! cluster value, so every use of one is unreachable, and asking for one
//! is an error that names the feature.

use super::{Claim, ClusterOptions};
use crate::server::context::ServerContext;
use std::sync::Arc;
use std::time::Duration;

/// No value of this type exists without the `cluster` feature.
#[derive(Debug)]
pub(crate) enum Cluster {}

impl Cluster {
    pub fn new(opts: ClusterOptions, _takeover_after: Option<Duration>) -> std::io::Result<Self> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!(
                "cluster mode (Redis at {}) needs rtmpkit built with the `cluster` feature",
                opts.redis
            ),
        ))
    }

    pub fn opts(&self) -> &ClusterOptions {
        match *self {}
    }

    pub fn reachable(&self) -> bool {
        match *self {}
    }

    pub fn owned(&self) -> Vec<String> {
        match *self {}
    }

    pub async fn claim(&self, _key: &str) -> Claim {
        match *self {}
    }

    pub fn own(&self, _key: &str) {
        match *self {}
    }

    pub fn disown(self: &Arc<Self>, _key: &str) {
        match **self {}
    }

    pub async fn owner(&self, _key: &str) -> Option<String> {
        match *self {}
    }

    pub async fn run(self: Arc<Self>, _ctx: Arc<ServerContext>) {
        match *self {}
    }
}
