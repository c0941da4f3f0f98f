//! The flush clock of fan-out coalescing.
//!
//! With a write-delay bound `D`, a publisher's messages are not handed to
//! the players one by one: they wait in their stream's pending batch, and
//! the clock hands the stream's batches to its players, one shared list
//! per batch. A player's queue takes each batch as one item and the player
//! is woken once, then writes all of it in one vectored write. So a player
//! costs one lock, one wake-up and one write per `D` however many messages
//! arrive (video, audio, data).
//!
//! The players are spread over `P` phase groups (`P` = `D` / 25 ms, 1 to
//! 8) and the clock ticks every `D / P`, serving one group per tick: the
//! writes of a period are spread over it instead of all landing in the
//! same millisecond, which would make the last players of a big stream
//! wait for the first ones. A message waits at most `D` (plus the time a
//! tick takes to serve): made into a batch at the next tick (`D / P`), it
//! reaches each group at that group's next turn.
//!
//! A small stream (up to [`SMALL_STREAM`] players, the common case of an
//! ingest server with hundreds of streams watched once or relayed) has
//! nothing to spread: the clock serves it once per period, on the tick of
//! its own phase (streams take the phases in turn), with one batch for all
//! its players. The other ticks pass it by without a lock, so a stream
//! costs one visit per period, not `P`.

use super::Stream;
use crate::sync::lock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Streams with at most this many players are served all at once, once
/// per period.
pub(crate) const SMALL_STREAM: usize = 8;

/// Streams the clock visits: those with batches not yet given to every
/// phase group.
#[derive(Debug)]
pub(crate) struct FlushClock {
    period: Duration,
    phases: u64,
    streams: Mutex<Vec<Arc<Stream>>>,
    ticks: AtomicU64,
    /// When the first tick was.
    start: std::sync::OnceLock<tokio::time::Instant>,
}

impl FlushClock {
    /// A clock for the write-delay bound `period`.
    pub fn new(period: Duration) -> Self {
        let phases = (period.as_millis() as u64 / 25).clamp(1, 8);
        FlushClock {
            period,
            phases,
            streams: Mutex::new(Vec::new()),
            ticks: AtomicU64::new(0),
            start: std::sync::OnceLock::new(),
        }
    }

    /// How many phase groups the players are split into.
    pub(super) fn phases(&self) -> u64 {
        self.phases
    }

    /// When a small `stream` has its turn: the times `anchor + k * period`
    /// of its phase, at which its publisher is read (and the stream served
    /// at once, [`Stream::serve_read`]), so a message waits at most the
    /// period. `None` for a big stream (its groups are served at every
    /// tick: reading it in bunches would add to the bound) and before the
    /// clock runs.
    pub fn turns(&self, stream: &Stream) -> Option<(tokio::time::Instant, Duration)> {
        let start = *self.start.get()?;
        if self.phases == 1 || !stream.small.load(Ordering::Relaxed) {
            return None;
        }
        let step = self.period / self.phases as u32;
        let at = start + step * (stream.phase % self.phases) as u32;
        Some((at, self.period))
    }

    /// Starts visiting a stream (it has a pending message).
    pub(super) fn add(&self, stream: Arc<Stream>) {
        lock(&self.streams).push(stream);
    }

    /// Serves the next phase group of every stream; returns how many
    /// streams are still visited.
    pub fn tick(&self, visiting: &mut Vec<Arc<Stream>>) -> usize {
        let k = self.ticks.fetch_add(1, Ordering::Relaxed);
        std::mem::swap(&mut *lock(&self.streams), visiting);
        visiting.retain(|s| s.on_tick(k, self.phases));
        let mut streams = lock(&self.streams);
        // Streams added during this tick stay listed after the kept ones.
        visiting.append(&mut streams);
        std::mem::swap(&mut *streams, visiting);
        streams.len()
    }

    /// Ticks until `stop` resolves (the server's lifetime).
    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let step = self.period / self.phases as u32;
        let start = tokio::time::Instant::now();
        let _ = self.start.set(start);
        let mut interval = tokio::time::interval_at(start, step);
        // A late tick is not made up for with a burst of ticks.
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut visiting = Vec::new();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    self.tick(&mut visiting);
                }
                () = &mut stop => return,
            }
        }
    }
}
