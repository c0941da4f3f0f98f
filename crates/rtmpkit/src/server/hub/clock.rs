//! The flush clock of fan-out coalescing.
//!
//! With a write-delay bound `D`, a player whose queue stops being empty is
//! not woken at once: its queue is listed here, and every `D` the clock
//! wakes each listed player once. A player then writes everything it has
//! in one vectored write. So a player costs one wake-up and one write per
//! tick however many messages arrive (video, audio, data), every message
//! waits at most `D` (plus scheduling), and one shared timer replaces a
//! timer per player.

use super::{PlayerQueue, lock};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Players to wake at the next tick.
#[derive(Debug)]
pub(crate) struct FlushClock {
    period: Duration,
    due: Mutex<Vec<Arc<PlayerQueue>>>,
}

impl FlushClock {
    /// A clock that ticks every `period` (the write-delay bound).
    pub fn new(period: Duration) -> Self {
        FlushClock {
            period,
            due: Mutex::new(Vec::new()),
        }
    }

    /// Lists queues that stopped being empty (one lock per message fanned
    /// out, none when no queue changed).
    pub(super) fn add(&self, mut queues: Vec<Arc<PlayerQueue>>) {
        if queues.is_empty() {
            return;
        }
        lock(&self.due).append(&mut queues);
    }

    /// Wakes every listed player; returns how many.
    pub fn tick(&self, spare: &mut Vec<Arc<PlayerQueue>>) -> usize {
        std::mem::swap(&mut *lock(&self.due), spare);
        let n = spare.len();
        for q in spare.drain(..) {
            q.wake();
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
