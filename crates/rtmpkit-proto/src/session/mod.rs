//! Client and server session state machines.
//!
//! Both are sans-IO, in the style of quinn-proto: feed received bytes with
//! `handle_input(bytes, now)`, then drain `poll_transmit()` (bytes to send)
//! and `poll_event()` (what happened) until both are empty. The caller owns
//! the socket and the clock; nothing here blocks or sleeps.
//!
//! The shared connection core does what both sides do alike: the chunk layer,
//! acknowledgements (§5.4.3: "The client or the server MUST send an
//! acknowledgment to the peer after receiving bytes equal to the window
//! size"), Set Peer Bandwidth answers (§5.4.5) and ping responses (§7.1.7).

mod client;
pub(crate) mod conn;
mod server;

pub use client::{ClientConfig, ClientEvent, ClientMode, ClientSession, ClientState, StreamEnd};
pub use server::{ServerConfig, ServerEvent, ServerSession, ServerState};

#[cfg(test)]
mod tests;
