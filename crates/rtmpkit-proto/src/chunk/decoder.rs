//! Reassembles messages from chunks.

use super::{
    ChunkStreamId, DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP_MARK, MAX_CHUNK_SIZE, MessageStreamId,
    RawMessage,
};
use crate::Timestamp;
use crate::error::{DecodeError, Error, ProtocolError};
use bytes::{Buf, Bytes, BytesMut};
use std::collections::HashMap;

/// Limits that keep a hostile peer from taking unbounded memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderLimits {
    /// Largest chunk size a peer may set (default 0xFFFFFF, the spec's cap).
    pub max_chunk_size: u32,
    /// Largest message length accepted (default 16 MiB − 1, all a header can say).
    pub max_message_len: u32,
    /// Most chunk streams with header state at once (default 64; nginx-rtmp allows 32).
    pub max_chunk_streams: usize,
    /// Most bytes held in partial messages over all chunk streams (default 32 MiB).
    pub max_buffered: usize,
}

impl Default for DecoderLimits {
    fn default() -> Self {
        DecoderLimits {
            max_chunk_size: MAX_CHUNK_SIZE,
            max_message_len: super::MAX_MESSAGE_LEN,
            max_chunk_streams: 64,
            max_buffered: 32 << 20,
        }
    }
}

#[derive(Debug, Default)]
struct ChunkStreamState {
    timestamp: Timestamp,
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The extended-timestamp value of the last fmt 0/1/2 header, if it had one.
    ext: Option<u32>,
    /// Payload bytes of the message in progress.
    partial: Vec<u8>,
    /// Whether a message is in progress (it may have read 0 bytes so far).
    in_progress: bool,
}

/// Turns a byte stream of chunks into [`RawMessage`]s.
///
/// Feed bytes with [`ChunkDecoder::push`], then call
/// [`ChunkDecoder::next_message`] until it returns `Ok(None)` ("not enough
/// bytes yet"). Set Chunk Size and Abort Message are applied by the decoder
/// itself the moment they complete, so the next chunk is read correctly even
/// when the change lands in the middle of another message (§5.4.1, §5.4.2);
/// they are still returned to the caller.
#[derive(Debug)]
pub struct ChunkDecoder {
    buf: BytesMut,
    chunk_size: u32,
    streams: HashMap<u32, ChunkStreamState>,
    limits: DecoderLimits,
    buffered: usize,
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// What reading one chunk did.
enum Step {
    NeedMore,
    Consumed,
    Message(RawMessage),
}

/// What the header of the next chunk says, before anything is consumed.
struct Header {
    fmt: u8,
    csid: u32,
    /// Bytes of basic + message header + extended timestamp.
    len: usize,
    ts_field: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The extended timestamp, when present.
    ext: Option<u32>,
}

impl ChunkDecoder {
    /// A decoder with the default chunk size (128) and limits.
    pub fn new() -> Self {
        Self::with_limits(DecoderLimits::default())
    }

    /// A decoder with the given limits.
    pub fn with_limits(limits: DecoderLimits) -> Self {
        ChunkDecoder {
            buf: BytesMut::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: HashMap::new(),
            limits,
            buffered: 0,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The buffer that received bytes go into: read from a socket straight
    /// into it to save a copy.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes pushed but not yet consumed.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Changes the largest message accepted from the next message on (a
    /// message already started keeps the limit it started under).
    pub fn set_max_message_len(&mut self, max: u32) {
        self.limits.max_message_len = max;
    }

    /// The chunk size the peer currently uses.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Sets the peer's chunk size (normally done by a Set Chunk Size message).
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), Error> {
        self.chunk_size = validate_chunk_size(size, self.limits.max_chunk_size)?;
        Ok(())
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<RawMessage>, Error> {
        loop {
            let Some(h) = self.peek_header()? else {
                return Ok(None);
            };
            match self.read_chunk(h)? {
                Step::Message(msg) => return Ok(Some(msg)),
                Step::NeedMore => return Ok(None),
                // A chunk was consumed without completing a message: try the next.
                Step::Consumed => {}
            }
        }
    }

    fn peek_header(&mut self) -> Result<Option<Header>, Error> {
        let b = &self.buf[..];
        let Some(&b0) = b.first() else {
            return Ok(None);
        };
        let fmt = b0 >> 6;
        // §5.3.1.1: csid field 0 → 2 bytes (64..319); 1 → 3 bytes, little-endian (64..65599).
        let (csid, mut pos) = match b0 & 0x3f {
            0 => match b.get(1) {
                Some(&x) => (u32::from(x) + 64, 2),
                None => return Ok(None),
            },
            1 => match (b.get(1), b.get(2)) {
                (Some(&lo), Some(&hi)) => (u32::from(hi) * 256 + u32::from(lo) + 64, 3),
                _ => return Ok(None),
            },
            x => (u32::from(x), 1),
        };
        let mh = [11usize, 7, 3, 0][usize::from(fmt)];
        if b.len() < pos + mh {
            return Ok(None);
        }
        let m = &b[pos..pos + mh];
        let be24 = |s: &[u8]| u32::from(s[0]) << 16 | u32::from(s[1]) << 8 | u32::from(s[2]);
        let (ts_field, length, type_id, stream_id) = match fmt {
            0 => (
                be24(&m[0..3]),
                be24(&m[3..6]),
                m[6],
                // §5.3.1.2.1: the message stream id is little-endian.
                u32::from_le_bytes([m[7], m[8], m[9], m[10]]),
            ),
            1 => (be24(&m[0..3]), be24(&m[3..6]), m[6], 0),
            2 => (be24(&m[0..3]), 0, 0, 0),
            _ => (0, 0, 0, 0),
        };
        pos += mh;
        let state = self.streams.get(&csid);
        if state.is_none() {
            // A fresh chunk stream must start with a full header. librtmp's
            // ping starts csid 2 with fmt 1 (SRS tolerates it, so do we).
            if fmt >= 2 {
                return Err(ProtocolError::MissingHeader(csid).into());
            }
            if self.streams.len() >= self.limits.max_chunk_streams {
                return Err(
                    ProtocolError::TooManyChunkStreams(self.limits.max_chunk_streams).into(),
                );
            }
        }
        let ext = if fmt < 3 {
            if ts_field == EXTENDED_TIMESTAMP_MARK {
                let Some(x) = b.get(pos..pos + 4) else {
                    return Ok(None);
                };
                pos += 4;
                Some(u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
            } else {
                None
            }
        } else {
            // §5.3.1.3: a fmt-3 chunk carries the extended timestamp when the
            // last fmt 0/1/2 chunk of this stream did. rtmpdump-style peers omit
            // it, so (as SRS does) we only consume 4 bytes that repeat the value
            // we expect: the last extended field, or the message's timestamp.
            match state.and_then(|s| s.ext.map(|e| (e, s))) {
                None => None,
                Some((e, s)) => match b.get(pos..pos + 4) {
                    Some(x) => {
                        let v = u32::from_be_bytes([x[0], x[1], x[2], x[3]]);
                        if v == e || (s.in_progress && v == s.timestamp.as_millis()) {
                            pos += 4;
                            Some(v)
                        } else {
                            None
                        }
                    }
                    None => {
                        // Not enough to decide yet.
                        return Ok(None);
                    }
                },
            }
        };
        Ok(Some(Header {
            fmt,
            csid,
            len: pos,
            ts_field,
            length,
            type_id,
            stream_id,
            ext,
        }))
    }

    /// Consumes one chunk if it is all here; returns a message it completed.
    fn read_chunk(&mut self, h: Header) -> Result<Step, Error> {
        let max_len = self.limits.max_message_len;
        let chunk_size = self.chunk_size as usize;
        let state = self.streams.entry(h.csid).or_default();
        let starting = !state.in_progress;
        if !starting && h.fmt != 3 {
            return Err(ProtocolError::HeaderInsideMessage(h.csid).into());
        }
        // Work out what the header means without changing state, since the
        // payload might not be here yet.
        let length = match h.fmt {
            0 | 1 => h.length,
            _ => state.length,
        };
        if starting && length > max_len {
            return Err(ProtocolError::MessageTooLong {
                len: length,
                max: max_len,
            }
            .into());
        }
        let done = if starting { 0 } else { state.partial.len() };
        let payload_len = (length as usize - done).min(chunk_size);
        if self.buf.len() < h.len + payload_len {
            return Ok(Step::NeedMore);
        }
        // Commit the header.
        if starting {
            let field = h.ext.unwrap_or(h.ts_field);
            match h.fmt {
                0 => {
                    state.timestamp = Timestamp(field);
                    // §5.3.1.2.4: after a type 0 chunk, the delta of a following
                    // type 3 chunk is the type 0 chunk's timestamp.
                    state.delta = field;
                    state.length = h.length;
                    state.type_id = h.type_id;
                    state.stream_id = h.stream_id;
                    state.ext = h.ext;
                }
                1 => {
                    state.delta = field;
                    state.timestamp = state.timestamp.wrapping_add(field);
                    state.length = h.length;
                    state.type_id = h.type_id;
                    state.ext = h.ext;
                }
                2 => {
                    state.delta = field;
                    state.timestamp = state.timestamp.wrapping_add(field);
                    state.ext = h.ext;
                }
                _ => {
                    state.timestamp = state.timestamp.wrapping_add(state.delta);
                }
            }
            state.in_progress = true;
        }
        self.buf.advance(h.len);
        let whole = starting && payload_len == state.length as usize;
        let payload = if whole {
            // The message fits in one chunk. It is copied out rather than
            // split off the receive buffer: a split would pin the whole
            // receive allocation for as long as any player queue or GOP cache
            // holds the message, so memory would no longer follow the bytes
            // actually kept.
            let p = Bytes::copy_from_slice(&self.buf[..payload_len]);
            self.buf.advance(payload_len);
            p
        } else {
            if self.buffered + payload_len > self.limits.max_buffered {
                return Err(ProtocolError::TooMuchBuffered(self.limits.max_buffered).into());
            }
            if state.partial.capacity() == 0 {
                // Grow with what arrives, not with what the header promises.
                state.partial.reserve(state.length.min(1 << 16) as usize);
            }
            state.partial.extend_from_slice(&self.buf[..payload_len]);
            self.buf.advance(payload_len);
            self.buffered += payload_len;
            if state.partial.len() < state.length as usize {
                return Ok(Step::Consumed);
            }
            self.buffered -= state.partial.len();
            let mut v = std::mem::take(&mut state.partial);
            // Keep the allocation close to the message size: it may be held
            // for a long time (GOP cache, player queues).
            if v.capacity() - v.len() > v.len() / 8 {
                v.shrink_to_fit();
            }
            Bytes::from(v)
        };
        state.in_progress = false;
        let msg = RawMessage {
            csid: ChunkStreamId(h.csid),
            timestamp: state.timestamp,
            type_id: state.type_id,
            stream_id: MessageStreamId(state.stream_id),
            payload,
        };
        self.apply_control(&msg)?;
        Ok(Step::Message(msg))
    }

    /// Set Chunk Size and Abort act on the chunk layer itself, before the next
    /// chunk is parsed.
    fn apply_control(&mut self, msg: &RawMessage) -> Result<(), Error> {
        match msg.type_id {
            crate::message::type_id::SET_CHUNK_SIZE => {
                let size = be32(&msg.payload, "set chunk size")?;
                self.set_chunk_size(size)
            }
            crate::message::type_id::ABORT => {
                let csid = be32(&msg.payload, "abort")?;
                if let Some(s) = self.streams.get_mut(&csid) {
                    if s.in_progress {
                        self.buffered -= s.partial.len();
                        s.partial = Vec::new();
                        s.in_progress = false;
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn be32(p: &[u8], what: &'static str) -> Result<u32, Error> {
    match p.get(..4) {
        Some(x) => Ok(u32::from_be_bytes([x[0], x[1], x[2], x[3]])),
        None => Err(DecodeError::invalid(what, format!("{} bytes, need 4", p.len())).into()),
    }
}

/// §5.4.1: "The maximum chunk size can be 65536 bytes" (2009) / "valid
/// sizes are 1 to 2147483647 (0x7FFFFFFF) inclusive; however, all sizes
/// greater than 16777215 (0xFFFFFF) are equivalent" (2012). Bit 31 MUST be 0.
pub(crate) fn validate_chunk_size(size: u32, max: u32) -> Result<u32, Error> {
    if size == 0 || size > 0x7FFF_FFFF {
        return Err(ProtocolError::ChunkSizeOutOfRange {
            size,
            min: 1,
            max: MAX_CHUNK_SIZE,
        }
        .into());
    }
    let size = size.min(MAX_CHUNK_SIZE);
    if size > max {
        return Err(ProtocolError::ChunkSizeOutOfRange { size, min: 1, max }.into());
    }
    Ok(size)
}
