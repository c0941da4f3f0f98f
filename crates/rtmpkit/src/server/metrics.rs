//! What a running server counts for its operators: connections by role,
//! bytes, failures by cause, pulls and reconnects. The counters are plain
//! atomics, bumped where things happen; [`Metrics`] is a copy of them
//! that [`StatsHandle::metrics`](super::StatsHandle::metrics) takes.

use crate::error::{Error, Stage};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The counters a server keeps while it runs.
#[derive(Debug, Default)]
pub(crate) struct MetricCounters {
    /// Accepted connections open now.
    pub connections: AtomicU64,
    /// Connections accepted since the server started.
    pub accepted: AtomicU64,
    /// Connections publishing now.
    pub publishers: AtomicU64,
    /// Connections playing now.
    pub players: AtomicU64,
    /// Messages dropped for players that had left.
    pub dropped_by_gone: AtomicU64,
    /// Edge pulls started (`relay_pull`, or a hook's redirect).
    pub relay_pulls: AtomicU64,
    /// Pulls from the node that owns a stream (cluster mode).
    pub cluster_pulls: AtomicU64,
    /// A publisher took a silent one's stream over (an encoder reconnected).
    pub takeovers: AtomicU64,
    /// A pull connected again after its source went away.
    pub pull_reconnects: AtomicU64,
    /// Reconnect requests sent to clients (drain, shutdown).
    pub reconnect_requests: AtomicU64,
    /// Recording files open now.
    pub recordings: AtomicU64,
    /// Recording writes (or file creations) that failed.
    pub record_errors: AtomicU64,
    /// Bytes written to recordings.
    pub record_bytes: AtomicU64,
    /// Failures by (stage, cause): rare, so a lock is fine.
    failures: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

/// Counts one more.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Counts one less (a gauge).
pub(crate) fn drop_one(c: &AtomicU64) {
    c.fetch_sub(1, Ordering::Relaxed);
}

fn read(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

impl MetricCounters {
    /// Counts a failure of `stage` (`accept`, `tls`, `handshake`,
    /// `connect`, `publish`, `play`) for `cause`.
    pub fn fail(&self, stage: &'static str, cause: &'static str) {
        let mut f = crate::sync::lock(&self.failures);
        *f.entry((stage, cause)).or_default() += 1;
    }

    /// Counts a connection that ended with `e` before it published or
    /// played; an error while streaming is not a setup failure.
    pub fn fail_setup(&self, e: &Error) {
        let stage = match e.stage() {
            Some(Stage::Connect | Stage::Tls) => "tls",
            Some(Stage::Handshake) => "handshake",
            Some(Stage::ConnectCommand | Stage::CreateStream) => "connect",
            Some(Stage::Publish) => "publish",
            Some(Stage::Play) => "play",
            Some(Stage::Streaming) | None => return,
        };
        let cause = if e.is_timeout() {
            "timeout"
        } else if e.is_closed() {
            "closed"
        } else if e.is_protocol() {
            "protocol"
        } else {
            "io"
        };
        self.fail(stage, cause);
    }

    /// A copy of the counters, with what the hub knows: bytes queued for
    /// players and messages dropped for the players present.
    pub fn snapshot(
        &self,
        queued_bytes: u64,
        dropped_by_present: u64,
        (bytes_received, bytes_sent): (u64, u64),
        kicks: u64,
    ) -> Metrics {
        let failures = crate::sync::lock(&self.failures)
            .iter()
            .map(|(&(stage, cause), &count)| FailureCount {
                stage,
                cause,
                count,
            })
            .collect();
        Metrics {
            connections: read(&self.connections),
            publishers: read(&self.publishers),
            players: read(&self.players),
            bytes_received,
            bytes_sent,
            kicks,
            dropped_messages: read(&self.dropped_by_gone) + dropped_by_present,
            queued_bytes,
            failures,
            relay_pulls: read(&self.relay_pulls),
            cluster_pulls: read(&self.cluster_pulls),
            takeovers: read(&self.takeovers),
            pull_reconnects: read(&self.pull_reconnects),
            reconnect_requests: read(&self.reconnect_requests),
            recordings: read(&self.recordings),
            record_errors: read(&self.record_errors),
            record_bytes: read(&self.record_bytes),
        }
    }
}

/// How often one kind of failure happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureCount {
    /// `accept`, `tls`, `handshake`, `connect`, `publish` or `play`.
    pub stage: &'static str,
    /// `timeout`, `closed`, `protocol`, `io`, `rejected`,
    /// `unauthorized`, `already_publishing`, `claimed_elsewhere`,
    /// `connection_limit`, `os_error`, ...
    pub cause: &'static str,
    /// Times it happened since the server started.
    pub count: u64,
}

/// The server's counters at one moment. Totals count since the server
/// started; the others are the state now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Accepted connections open now (any role, or still setting up).
    pub connections: u64,
    /// Connections publishing now.
    pub publishers: u64,
    /// Connections playing now.
    pub players: u64,
    /// Total bytes read from accepted connections.
    pub bytes_received: u64,
    /// Total bytes written to accepted connections.
    pub bytes_sent: u64,
    /// Total messages dropped for players that fell behind.
    pub dropped_messages: u64,
    /// Bytes waiting in players' queues now.
    pub queued_bytes: u64,
    /// Setup and authorization failures by stage and cause.
    pub failures: Vec<FailureCount>,
    /// Total edge pulls started.
    pub relay_pulls: u64,
    /// Total pulls from the owning node started (cluster mode).
    pub cluster_pulls: u64,
    /// Total publishers that took a silent publisher's stream over.
    pub takeovers: u64,
    /// Total times a pull connected again after losing its source.
    pub pull_reconnects: u64,
    /// Total reconnect requests sent to clients.
    pub reconnect_requests: u64,
    /// Total sessions kicked by an operator.
    pub kicks: u64,
    /// Recording files open now.
    pub recordings: u64,
    /// Total recording writes (or file creations) that failed.
    pub record_errors: u64,
    /// Total bytes written to recordings.
    pub record_bytes: u64,
}
