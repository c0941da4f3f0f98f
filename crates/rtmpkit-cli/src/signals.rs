//! Stopping on request: Ctrl-C (SIGINT) and SIGTERM, which `timeout`,
//! systemd and container runtimes send, end a command the same way.

/// Resolves on the first SIGINT or SIGTERM. Create it once and keep it
/// pinned across a loop: a signal that comes between two short-lived
/// listeners would otherwise be missed.
pub async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
