//! # rtmpkit-proto: the sans-IO RTMP protocol core
//!
//! Everything here is deterministic: no sockets, no tasks, no clock of its own.
//! Bytes and the current time go in; bytes to send and events come out. The
//! `rtmpkit` crate drives this core over tokio.
//!
//! Layers, bottom up:
//! - [`amf0`] and [`amf3`]: AMF values (Adobe AMF0 and AMF 3 specifications).
//! - [`handshake`]: C0/C1/C2 and S0/S1/S2, simple and digest (Adobe RTMP 1.0 §5.2).
//! - the chunk stream: [`ChunkDecoder`] / [`ChunkEncoder`] (Adobe RTMP 1.0 §5.3).
//! - [`message`]: typed RTMP messages (§5.4, §6, §7).
//! - [`session`]: [`ClientSession`] / [`ServerSession`] state machines.
//! - [`media`] and [`flv`]: audio/video tag headers, [`Media`], and the FLV file format.
//! - [`RtmpUrl`]: `rtmp://host[:port]/app/stream[?query]`; [`Error`]: every failure,
//!   grouped by who is at fault.
//!
//! ```
//! use rtmpkit_proto::amf0::{self, Amf0Value};
//! let bytes = amf0::to_vec(&Amf0Value::String("live".into()));
//! assert_eq!(amf0::decode(&bytes).unwrap().as_str(), Some("live"));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod amf0;
pub mod amf3;
mod chunk;
mod error;
pub mod flv;
pub mod handshake;
pub mod media;
pub mod message;
pub mod session;
mod time;
mod url;

pub use chunk::{
    ChunkDecoder, ChunkEncoder, ChunkRun, ChunkStreamId, DecoderLimits, MessageStreamId, RawMessage,
};
pub use error::{DecodeError, Error, HandshakeError, ProtocolError, Result};
pub use media::{Codec, Media, MediaKind};
pub use message::Message;
pub use session::{ClientSession, ServerSession};
pub use time::Timestamp;
pub use url::{RtmpUrl, UrlError, redact as redact_url};
