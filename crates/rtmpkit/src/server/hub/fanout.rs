//! Handing a stream's batches to its players' queues, on every core when
//! there are many players.
//!
//! A player whose task is idle is written to right here
//! ([`PlayerQueue::push_batches`] writes the shared run to its socket),
//! so for a big stream the fan-out is mostly the kernel's work of sending:
//! one write per player per batch. One thread alone would cap a stream's
//! players at what one core can send, and make the last players of a
//! long list wait for the first ones. So a long list is cut into one
//! slice per core, served at once by helper threads:
//! - the flush clock's tick ([`push_all`]) serves one slice itself and
//!   returns when every player has the batches;
//! - with no write delay, each message ([`hand_out`]) goes to the helpers
//!   and the publisher's task goes on reading: each helper serves its own
//!   shard of the players (by connection id), in order, and a stream's
//!   notices wait until the helpers are done with its messages
//!   ([`Done::wait`]).
//!
//! The helpers sleep on a condition variable between jobs (a pool that
//! spins while it waits for work would burn the CPU it is meant to save).

use super::queue::{Batch, PlayerQueue};
use crate::sync::lock;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, OnceLock};

/// Lists shorter than this are served by the calling thread alone: a
/// hand-over to a helper costs a wake-up.
pub(super) const SHARE_FROM: usize = 128;

/// Most jobs a helper that is behind serves as one.
const MOST_MERGED: usize = 16;

/// Messages of one stream handed out and not yet served, per shard,
/// before its publisher's task waits for the helpers: a bound on the
/// memory a stream can hold there.
const MOST_HANDED_OUT: usize = 64;

/// Gives `batches` to every queue of `players`, in order, and returns
/// when all have them.
pub(super) fn push_all(players: &Arc<[Arc<PlayerQueue>]>, batches: &[Arc<Batch>]) {
    let helpers = helpers();
    if players.len() < SHARE_FROM || helpers.len() < 2 {
        serve(players, 0..players.len(), batches);
        return;
    }
    let slice = players.len().div_ceil(helpers.len());
    let shared: Arc<[Arc<Batch>]> = batches.into();
    let done = Arc::new(Done::default());
    let others: Vec<Range<usize>> = (1..helpers.len())
        .map(|i| i * slice..((i + 1) * slice).min(players.len()))
        .filter(|r| !r.is_empty())
        .collect();
    done.add(others.len());
    for (range, helper) in others.into_iter().zip(&helpers[1..]) {
        helper.post(Job {
            players: players.clone(),
            range,
            batches: shared.clone(),
            done: done.clone(),
        });
    }
    serve(players, 0..slice, batches);
    done.wait();
}

/// How many shards [`hand_out`] cuts a stream's players into: one per
/// helper (0 on one core: no helpers, nothing is handed out).
pub(super) fn shard_count() -> usize {
    helpers().len()
}

/// Hands `batches` to the helpers, shard `i` of the players to helper
/// `i`, without waiting; `done` (the stream's) counts them until served.
/// The caller added `shards.len()` to `done` beforehand, under the lock
/// that orders the stream's messages.
pub(super) fn hand_out(
    shards: &[Arc<[Arc<PlayerQueue>]>],
    batches: Arc<[Arc<Batch>]>,
    done: &Arc<Done>,
) {
    for (players, helper) in shards.iter().zip(helpers()) {
        helper.post(Job {
            players: players.clone(),
            range: 0..players.len(),
            batches: batches.clone(),
            done: done.clone(),
        });
    }
}

fn serve(players: &[Arc<PlayerQueue>], range: Range<usize>, batches: &[Arc<Batch>]) {
    for q in &players[range] {
        q.push_batches(batches);
    }
}

/// A slice of a list for a helper.
struct Job {
    players: Arc<[Arc<PlayerQueue>]>,
    range: Range<usize>,
    batches: Arc<[Arc<Batch>]>,
    done: Arc<Done>,
}

/// How many jobs of one caller (or one stream) are still being served.
#[derive(Debug, Default)]
pub(crate) struct Done {
    left: Mutex<usize>,
    cv: Condvar,
}

impl Done {
    /// Counts `n` more jobs.
    pub(super) fn add(&self, n: usize) {
        *lock(&self.left) += n;
    }

    /// Waits until every job is served.
    pub(super) fn wait(&self) {
        self.wait_until(0);
    }

    /// Waits until at most [`MOST_HANDED_OUT`] jobs are left per shard.
    pub(super) fn wait_for_room(&self) {
        self.wait_until(MOST_HANDED_OUT * shard_count().max(1));
    }

    /// Whether every job is served.
    pub(super) fn is_idle(&self) -> bool {
        *lock(&self.left) == 0
    }

    fn wait_until(&self, most: usize) {
        let mut left = lock(&self.left);
        while *left > most {
            left = self.cv.wait(left).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn finished(&self) {
        let mut left = lock(&self.left);
        *left -= 1;
        self.cv.notify_all();
    }
}

/// One helper thread and the jobs it serves in order.
#[derive(Default)]
struct Helper {
    jobs: Mutex<VecDeque<Job>>,
    cv: Condvar,
}

impl Helper {
    /// Queues `job` (already counted in its `done`).
    fn post(&self, job: Job) {
        lock(&self.jobs).push_back(job);
        self.cv.notify_one();
    }

    fn run(&self) {
        loop {
            let mut taken = {
                let mut jobs = lock(&self.jobs);
                loop {
                    if let Some(job) = jobs.pop_front() {
                        break vec![job];
                    }
                    jobs = self.cv.wait(jobs).unwrap_or_else(|e| e.into_inner());
                }
            };
            // Behind: the next jobs for the same players go out with this
            // one, one write per player for all of them (as a player's
            // task that is woken late writes all it has at once).
            {
                let mut jobs = lock(&self.jobs);
                while taken.len() < MOST_MERGED
                    && jobs.front().is_some_and(|next| next.serves_same(&taken[0]))
                {
                    taken.extend(jobs.pop_front());
                }
            }
            let batches: Vec<Arc<Batch>> = taken
                .iter()
                .flat_map(|j| j.batches.iter().cloned())
                .collect();
            let first = &taken[0];
            // A panic must not leave a caller waiting for ever.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                serve(&first.players, first.range.clone(), &batches)
            }));
            for job in taken {
                job.done.finished();
            }
        }
    }
}

impl Job {
    /// Whether `other` is for the very same players (same list, same
    /// slice), so the two can be served as one.
    fn serves_same(&self, other: &Job) -> bool {
        Arc::ptr_eq(&self.players, &other.players) && self.range == other.range
    }
}

/// One helper per core, started at the first big list (none on one core:
/// the calling thread serves everything).
fn helpers() -> &'static [Arc<Helper>] {
    static HELPERS: OnceLock<Vec<Arc<Helper>>> = OnceLock::new();
    HELPERS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        if cores < 2 {
            return Vec::new();
        }
        (0..cores)
            .filter_map(|i| {
                let helper = Arc::new(Helper::default());
                let h = helper.clone();
                std::thread::Builder::new()
                    .name(format!("rtmpkit-fanout-{i}"))
                    .spawn(move || h.run())
                    .ok()
                    .map(|_| helper)
            })
            .collect()
    })
}
