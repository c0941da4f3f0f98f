//! Client and server session state machines: one [`Session`] skeleton, two
//! sides ([`ClientSide`], [`ServerSide`]).
//!
//! Both are sans-IO, in the style of quinn-proto. Inputs are `handle_*`,
//! outputs `poll_*`; the caller owns the socket and the clock:
//! 1. read from the socket straight into [`Session::recv_buffer`], then call
//!    [`Session::handle_received`] (or hand a slice to [`Session::handle_input`]);
//! 2. drain [`Session::poll_event`] and act on the events (accept a publish,
//!    hand media on, ...);
//! 3. drain [`Session::poll_transmit`] into one vectored write;
//! 4. sleep until [`Session::poll_timeout`], then call [`Session::handle_timeout`].
//!
//! The skeleton does what both sides do alike: the handshake prologue, the
//! chunk layer, aggregate splitting (§7.1.6), acknowledgements (§5.4.3: "The
//! client or the server MUST send an acknowledgment to the peer after
//! receiving bytes equal to the window size"), Set Peer Bandwidth answers
//! (§5.4.5), ping answers and pings of our own (§7.1.7), notices and
//! counters. The sides handle commands and media.

mod client;
mod link;
mod server;

pub use client::{
    CAPS_EX_MULTITRACK, CAPS_EX_RECONNECT, ClientConfig, ClientEvent, ClientMode, ClientSide,
    ClientState, StreamEnd,
};
pub use link::{DEFAULT_WINDOW, TrafficCounts};
pub use server::{SETUP_MAX_MESSAGE_LEN, ServerConfig, ServerEvent, ServerSide, ServerState};

use crate::chunk::RawMessage;
use crate::error::{Error, Result};
use crate::message::Message;
use bytes::{Bytes, BytesMut};
use link::{HandshakeFacts, Link};
use std::time::Instant;

/// A client session: connect, createStream, then publish or play.
pub type ClientSession = Session<ClientSide>;
/// The server session of one accepted connection.
pub type ServerSession = Session<ServerSide>;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::ClientSide {}
    impl Sealed for super::ServerSide {}
}

/// One side of a session: [`ClientSide`] or [`ServerSide`]. Sealed.
pub trait Side: sealed::Sealed + Sized + std::fmt::Debug {
    /// What the session reports.
    type Event: std::fmt::Debug + link::NoticeEvent;

    /// The handshake finished; the chunk layer is up.
    #[doc(hidden)]
    fn on_handshake_done(
        &mut self,
        link: &mut Link<Self::Event>,
        facts: HandshakeFacts,
    ) -> Result<()>;

    /// Whether a command of this name is one the side acts on, so that
    /// a malformed one ends the session (other commands that do not
    /// decode are skipped).
    #[doc(hidden)]
    fn must_act(&self, command: &str) -> bool;

    /// A message that the skeleton did not handle itself.
    #[doc(hidden)]
    fn on_message(
        &mut self,
        link: &mut Link<Self::Event>,
        raw: RawMessage,
        msg: Message,
    ) -> Result<()>;
}

/// A session of either side; see [`ClientSession`] and [`ServerSession`]
/// for what each side adds.
#[derive(Debug)]
pub struct Session<S: Side> {
    link: Link<S::Event>,
    side: S,
}

impl<S: Side> Session<S> {
    /// The buffer received bytes go into: read from the socket straight
    /// into it (saving a copy), then call [`Session::handle_received`].
    pub fn recv_buffer(&mut self) -> &mut BytesMut {
        self.link.recv_buffer()
    }

    /// Handles `n` bytes just read into [`Session::recv_buffer`]. An error
    /// is fatal: the session is closed (with a last word to the peer where
    /// [`Error::peer_status`] has one; send it) and the connection should
    /// be dropped.
    pub fn handle_received(&mut self, n: usize, now: Instant) -> Result<()> {
        if self.link.is_closed() {
            return Err(Error::Misuse("session is closed"));
        }
        self.link.count_received(n);
        self.process(now).map_err(|e| self.link.fail(e))
    }

    /// Handles bytes received from the peer (copies them into
    /// [`Session::recv_buffer`] first).
    pub fn handle_input(&mut self, data: &[u8], now: Instant) -> Result<()> {
        self.link.recv_buffer().extend_from_slice(data);
        self.handle_received(data.len(), now)
    }

    fn process(&mut self, now: Instant) -> Result<()> {
        if let Some(hs) = self.link.advance_handshake(now)? {
            let facts = match hs {
                link::AnyHandshake::Client(h) => HandshakeFacts {
                    server_digest_verified: h.server_digest_verified(),
                    ..HandshakeFacts::default()
                },
                link::AnyHandshake::Server(h) => HandshakeFacts {
                    client_used_digest: h.client_used_digest(),
                    ..HandshakeFacts::default()
                },
            };
            self.side.on_handshake_done(&mut self.link, facts)?;
        }
        if !self.link.handshake_done() {
            return Ok(());
        }
        while !self.link.is_closed() {
            let side = &self.side;
            let Some((raw, msg)) = self.link.next_inbound(now, |c| side.must_act(c))? else {
                break;
            };
            self.side.on_message(&mut self.link, raw, msg)?;
        }
        self.link.maybe_ack();
        Ok(())
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<S::Event> {
        self.link.poll_event()
    }

    /// Moves queued output into `dst` in order, whole pieces, until at
    /// least `max_bytes` were moved (`usize::MAX`: everything); returns the
    /// bytes moved, 0 when nothing is queued. Payloads of media are slices
    /// of the shared buffer: write `dst` with one vectored write.
    pub fn poll_transmit(&mut self, max_bytes: usize, dst: &mut Vec<Bytes>) -> usize {
        self.link.poll_transmit(max_bytes, dst)
    }

    /// Tells the session that other code wrote to its transport while
    /// nothing of its own was queued or being written: whole messages
    /// (which the peer's chunk decoder has taken in), then, when a write
    /// stopped short, `rest` of the last one. `rest` goes out before
    /// anything queued, and the next message on every chunk stream gets a
    /// type-0 header (§5.3.1.2.1), which is right whatever the other code
    /// sent. The server's fan-out uses this to write a stream's shared
    /// chunks straight to a player's socket.
    pub fn written_elsewhere(&mut self, rest: Bytes) {
        self.link.written_elsewhere(rest);
    }

    /// Bytes queued and not yet taken by [`Session::poll_transmit`].
    pub fn pending_output(&self) -> usize {
        self.link.pending_output()
    }

    /// When [`Session::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.link.poll_timeout()
    }

    /// Does what is due at `now` (a PingRequest every ping interval).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.link.handle_timeout(now);
    }

    /// Byte and message counters.
    pub fn counters(&self) -> TrafficCounts {
        self.link.counters()
    }

    /// Whether the session is closed (by a failure or on purpose).
    pub fn is_closed(&self) -> bool {
        self.link.is_closed()
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tolerance_tests;
