//! The flush clock of fan-out coalescing.
//!
//! With a write-delay bound `D`, a publisher's messages are not handed to
//! the players one by one: they wait in their stream's pending batch, the
//! stream is listed here, and every `D` the clock fans each listed
//! stream's batch out, one shared list per stream. A player's queue takes
//! it as one item and the player is woken once, then writes all of it in
//! one vectored write. So a player costs one lock, one wake-up and one
//! write per tick however many messages arrive (video, audio, data), and
//! every message waits at most `D` (plus the time to serve the tick).

use super::{Stream, lock};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Streams to fan out at the next tick.
#[derive(Debug)]
pub(crate) struct FlushClock {
    period: Duration,
    due: Mutex<Vec<Arc<Stream>>>,
}

impl FlushClock {
    /// A clock that ticks every `period` (the write-delay bound).
    pub fn new(period: Duration) -> Self {
        FlushClock {
            period,
            due: Mutex::new(Vec::new()),
        }
    }

    /// Lists a stream whose pending batch stopped being empty.
    pub(super) fn add(&self, stream: Arc<Stream>) {
        lock(&self.due).push(stream);
    }

    /// Fans out every listed stream's batch; returns how many streams.
    pub fn tick(&self, spare: &mut Vec<Arc<Stream>>) -> usize {
        std::mem::swap(&mut *lock(&self.due), spare);
        let n = spare.len();
        for s in spare.drain(..) {
            s.fan_out_pending();
        }
        n
    }

    /// Ticks until `stop` resolves (the server's lifetime).
    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let mut interval = tokio::time::interval(self.period);
        // A late tick is not made up for with a burst of ticks.
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut spare = Vec::new();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    self.tick(&mut spare);
                }
                () = &mut stop => return,
            }
        }
    }
}
