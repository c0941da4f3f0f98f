//! The two small helpers every task here shares: a lock that a panic in
//! another holder does not poison, and the wait for a flag to be raised.

use std::sync::{Mutex, MutexGuard};
use tokio::sync::watch;

/// Locks `m`, taking the data even if a holder panicked (the data of our
/// mutexes stays consistent at every unlock).
#[cfg_attr(not(feature = "server"), allow(dead_code))] // the client holds no mutex
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Resolves once the flag is true (shutdown, stop, dispose). The guard of
/// `wait_for` is not `Send`, so it is dropped here, never held across the
/// caller's awaits.
pub(crate) async fn raised(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
