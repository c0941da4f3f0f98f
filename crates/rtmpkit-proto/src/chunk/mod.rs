//! The chunk stream (Adobe RTMP 1.0 §5.3): [`ChunkDecoder`] and [`ChunkEncoder`].
//!
//! "Chunking allows large upper-layer protocol messages to be broken into
//! smaller chunks ... and interleaved" (§5.3.1). Each chunk is a basic header
//! (format + chunk stream id), a message header of 11, 7, 3 or 0 bytes, an
//! optional extended timestamp, and up to chunk-size bytes of payload.

mod decoder;
mod encoder;

pub use decoder::{ChunkDecoder, DecoderLimits};
pub use encoder::{ChunkEncoder, ChunkRun};

use crate::Timestamp;
use bytes::Bytes;

/// Default chunk size of both directions until Set Chunk Size (§5.4.1).
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Largest chunk size: "values larger than 0xFFFFFF are equivalent to 0xFFFFFF" (§5.4.1).
pub const MAX_CHUNK_SIZE: u32 = 0xFF_FFFF;
/// A 24-bit timestamp field of this value announces the extended timestamp (§5.3.1.3).
pub const EXTENDED_TIMESTAMP_MARK: u32 = 0xFF_FFFF;
/// Largest message length a chunk header can carry (24 bits).
pub const MAX_MESSAGE_LEN: u32 = 0xFF_FFFF;
/// Largest chunk stream id: the 3-byte form reaches 65599 (§5.3.1.1).
pub const MAX_CHUNK_STREAM_ID: u32 = 65599;

/// A chunk stream id (2..=65599; 2 is for protocol control).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkStreamId(pub u32);

impl ChunkStreamId {
    /// "Chunk Stream ID with value 2 is reserved for low-level protocol
    /// control messages and commands" (§5.3.1.1).
    pub const CONTROL: ChunkStreamId = ChunkStreamId(2);
    /// Commands on the connection (msid 0), as FFmpeg and nginx-rtmp use.
    pub const COMMAND: ChunkStreamId = ChunkStreamId(3);
    /// Audio, as FFmpeg and OBS use.
    pub const AUDIO: ChunkStreamId = ChunkStreamId(4);
    /// Video.
    pub const VIDEO: ChunkStreamId = ChunkStreamId(6);
    /// Data and stream commands (onStatus, @setDataFrame).
    pub const STREAM: ChunkStreamId = ChunkStreamId(5);
}

/// A message stream id (0 is the connection itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MessageStreamId(pub u32);

/// A whole message as the chunk layer sees it: header fields and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// The chunk stream it travelled on.
    pub csid: ChunkStreamId,
    /// Absolute timestamp.
    pub timestamp: Timestamp,
    /// Message type id (§5.4, §7.1).
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: MessageStreamId,
    /// The payload, shared without copies where possible.
    pub payload: Bytes,
}

#[cfg(test)]
mod tests;
