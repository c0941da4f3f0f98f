//! Handing a stream's batches to its players' queues, on every core when
//! there are many players.
//!
//! A player whose task is idle is written to right here
//! ([`PlayerQueue::push_batches`] writes the shared run to its socket),
//! so for a big stream the fan-out is mostly the kernel's work of sending:
//! one write per player per batch. One thread alone would cap a stream's
//! players at what one core can send, and make the last players of a
//! long list wait for the first ones. So a long list is cut into one
//! slice per core: the calling thread serves the first and helper
//! threads the others at the same time, and the call returns when every
//! player has the batches, so batches and notices keep their order as
//! when one thread does it all.
//!
//! The helpers sleep on a condition variable between lists (a pool that
//! spins while it waits for work would burn the CPU it is meant to save).

use super::queue::{Batch, PlayerQueue};
use crate::sync::lock;
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, OnceLock};

/// Lists shorter than this are served by the calling thread alone: a
/// hand-over to a helper costs a wake-up.
const SHARE_FROM: usize = 128;

/// Gives `batches` to every queue of `players`, in order, and returns
/// when all have them.
pub(super) fn push_all(players: &Arc<[Arc<PlayerQueue>]>, batches: &[Arc<Batch>]) {
    let helpers = helpers();
    if players.len() < SHARE_FROM || helpers.is_empty() {
        serve(players, 0..players.len(), batches);
        return;
    }
    let slice = players.len().div_ceil(helpers.len() + 1);
    let shared: Arc<[Arc<Batch>]> = batches.into();
    let done = Arc::new(Done::default());
    let mut mine: Vec<Range<usize>> = Vec::with_capacity(helpers.len() + 1);
    mine.push(0..slice);
    for (i, helper) in helpers.iter().enumerate() {
        let range = (i + 1) * slice..((i + 2) * slice).min(players.len());
        if range.is_empty() {
            continue;
        }
        let job = Job {
            players: players.clone(),
            range: range.clone(),
            batches: shared.clone(),
            done: done.clone(),
        };
        if !helper.offer(job) {
            // Busy with another stream's list: this thread serves it.
            mine.push(range);
        }
    }
    for range in mine {
        serve(players, range, batches);
    }
    done.wait();
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

/// How many slices of one list are still being served.
#[derive(Default)]
struct Done {
    left: Mutex<usize>,
    cv: Condvar,
}

impl Done {
    fn wait(&self) {
        let mut left = lock(&self.left);
        while *left > 0 {
            left = self.cv.wait(left).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn finished(&self) {
        let mut left = lock(&self.left);
        *left -= 1;
        if *left == 0 {
            self.cv.notify_all();
        }
    }
}

/// One helper thread and its slot for a job.
#[derive(Default)]
struct Helper {
    job: Mutex<Option<Job>>,
    cv: Condvar,
}

impl Helper {
    /// Hands `job` over; `false` when the helper already has one.
    fn offer(&self, job: Job) -> bool {
        let mut slot = lock(&self.job);
        if slot.is_some() {
            return false;
        }
        *lock(&job.done.left) += 1;
        *slot = Some(job);
        self.cv.notify_one();
        true
    }

    fn run(&self) {
        loop {
            let job = {
                let mut slot = lock(&self.job);
                loop {
                    // Taken only once served: `offer` sees the helper busy.
                    if let Some(job) = slot.as_ref() {
                        break (job.players.clone(), job.range.clone(), job.batches.clone());
                    }
                    slot = self.cv.wait(slot).unwrap_or_else(|e| e.into_inner());
                }
            };
            let (players, range, batches) = job;
            // A panic must not leave the caller waiting for ever.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                serve(&players, range, &batches)
            }));
            if let Some(job) = lock(&self.job).take() {
                job.done.finished();
            }
        }
    }
}

/// One helper per core beyond the first, started at the first big list.
fn helpers() -> &'static [Arc<Helper>] {
    static HELPERS: OnceLock<Vec<Arc<Helper>>> = OnceLock::new();
    HELPERS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        (1..cores)
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
