//! [`ClientOptions`]: the settings of a client session.

use std::sync::Arc;
use std::time::Duration;

/// Options of a client session, with the defaults of the client spec
/// ("Options, with defaults").
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// "Do" timeout: from the start of the TCP connect (DNS included) until
    /// `NetStream.Publish.Start` / `NetStream.Play.Start`. Zero: none. Default 10 s.
    pub timeout: Duration,
    /// Longest wait for incoming data once started. Zero: none.
    pub read_timeout: Duration,
    /// Longest a single socket write may block. Zero: none.
    pub write_timeout: Duration,
    /// Bytes asked of the socket per read. Zero: 64 KiB.
    pub read_buffer_size: usize,
    /// Bytes gathered before a write; `flush` sends the rest, and nothing
    /// waits longer than 20 ms. Zero: every write goes out at once.
    pub write_buffer_size: usize,
    /// Zero: a write returns once its bytes were written (or buffered). N:
    /// writes go into a queue of N messages; a full queue makes the writer
    /// wait (back-pressure), nothing is dropped.
    pub write_queue_size: usize,
    /// Use the digest ("complex") handshake.
    pub complex_handshake: bool,
    /// Our outgoing chunk size.
    pub chunk_size: u32,
    /// Messages buffered between the session and [`PullSession::next_message`](super::PullSession::next_message).
    pub pull_queue_size: usize,
    /// Send a PingRequest this often as a keepalive. Zero: never.
    pub ping_interval: Duration,
    /// TLS settings for `rtmps://` URLs. `None`: verify the server against
    /// the built-in web roots ([`crate::tls::client_config`] adds CAs,
    /// [`crate::tls::insecure_client_config`] skips the check).
    pub tls: Option<Arc<crate::tls::ClientConfig>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(10),
            read_timeout: Duration::ZERO,
            write_timeout: Duration::ZERO,
            read_buffer_size: 0,
            write_buffer_size: 0,
            write_queue_size: 0,
            complex_handshake: false,
            chunk_size: 4096,
            pull_queue_size: 1024,
            ping_interval: Duration::ZERO,
            tls: None,
        }
    }
}
