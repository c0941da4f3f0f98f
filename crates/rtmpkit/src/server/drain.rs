//! The handle that moves a running server's clients elsewhere (E-RTMP v2
//! reconnect request): [`DrainHandle`].

use super::context::ServerContext;
use std::sync::Arc;

/// Moves clients off a running server (E-RTMP v2 reconnect request).
#[derive(Debug, Clone)]
pub struct DrainHandle(pub(super) Arc<ServerContext>);

impl DrainHandle {
    /// Asks every connected client that announced reconnect support
    /// (`capsEx` 0x01) to connect again: to `tc_url` (e.g.
    /// `rtmp://other:1935/live`), or to this server. The server keeps
    /// serving them until they leave; clients that did not announce it are
    /// left alone.
    pub fn drain(&self, tc_url: Option<String>) {
        self.0.drain.send_replace(Some(tc_url));
        self.0.sessions.wake_all();
    }
}
