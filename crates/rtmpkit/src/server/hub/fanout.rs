//! Handing a stream's batches to its players' queues, on every core when
//! there are many players.
//!
//! A player whose task is idle is written to right here
//! ([`PlayerQueue::push_batches`] writes the shared run to its socket),
//! so for a big stream the fan-out is mostly the kernel's work of sending:
//! one write per player per batch. One thread alone would cap a stream's
//! players at what one core can send, and make the last players of a
//! long list wait for the first ones. So a long list is cut into one
//! slice per core and the slices are served at once by a small thread
//! pool, and the call returns when every player has the batches: the
//! order of batches and notices is kept as when one thread does it all.

use super::queue::{Batch, PlayerQueue};
use rayon::prelude::*;
use std::sync::{Arc, OnceLock};

/// Lists shorter than this are served by the calling thread: sharing out
/// costs a hand-over to the pool (a few microseconds).
const SHARE_FROM: usize = 128;

/// The fan-out's threads, one per core, started at the first big stream.
fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        if cores < 2 {
            return None;
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(cores)
            .thread_name(|i| format!("rtmpkit-fanout-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// Gives `batches` to every queue of `players`, in order, and returns
/// when all have them.
pub(super) fn push_all(players: &[Arc<PlayerQueue>], batches: &[Arc<Batch>]) {
    let serve = |slice: &[Arc<PlayerQueue>]| {
        for q in slice {
            q.push_batches(batches);
        }
    };
    match pool() {
        Some(pool) if players.len() >= SHARE_FROM => {
            let slice = players.len().div_ceil(pool.current_num_threads());
            pool.install(|| players.par_chunks(slice).for_each(serve));
        }
        _ => serve(players),
    }
}
