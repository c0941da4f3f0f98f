//! Splits messages into chunks, compressing headers where §5.3.1.2 allows.

use super::{
    ChunkStreamId, DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP_MARK, MAX_CHUNK_SIZE,
    MAX_CHUNK_STREAM_ID, MAX_MESSAGE_LEN, MessageStreamId, decoder::validate_chunk_size,
};
use crate::Timestamp;
use crate::error::Error;
use bytes::{BufMut, Bytes, BytesMut};

#[derive(Debug, Clone, Copy)]
struct Sent {
    timestamp: Timestamp,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The delta a following fmt-3 header implies, when we are sure every
    /// peer reads it the same way (after a fmt 1 or 2 header).
    delta: Option<u32>,
    /// The extended timestamp written with the last fmt 0/1/2 header.
    ext: Option<u32>,
}

/// Turns messages into chunks.
///
/// Header choice per message on a chunk stream (§5.3.1.2): fmt 0 for the
/// first message, a new message stream id or a timestamp that goes back;
/// fmt 1 when only length or type changed; fmt 2 when only the delta
/// changed; fmt 3 when everything repeats. Continuation chunks are fmt 3 and
/// repeat the extended timestamp whenever the header had one (§5.3.1.3; FFmpeg
/// closes the connection if it is missing).
#[derive(Debug)]
pub struct ChunkEncoder {
    chunk_size: u32,
    /// Header state per chunk stream. A session uses a handful of chunk
    /// streams, so a short list searched in order is both the smallest and
    /// the fastest map here (no hashing on the per-message path).
    streams: Vec<(u32, Sent)>,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkEncoder {
    /// An encoder at the default chunk size of 128.
    pub fn new() -> Self {
        ChunkEncoder {
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: Vec::new(),
        }
    }

    /// Our current outgoing chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Changes the outgoing chunk size for every later message. The caller
    /// must send the Set Chunk Size message (encoded at the old size) first.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), Error> {
        self.chunk_size = validate_chunk_size(size, MAX_CHUNK_SIZE)?;
        Ok(())
    }

    /// Forgets header state, so the next message on every chunk stream
    /// starts with fmt 0.
    pub fn reset(&mut self) {
        self.streams.clear();
    }

    /// Appends the chunks of one message to `out` (payload copied).
    pub fn encode<B: BufMut>(
        &mut self,
        csid: ChunkStreamId,
        timestamp: Timestamp,
        type_id: u8,
        stream_id: MessageStreamId,
        payload: &[u8],
        out: &mut B,
    ) -> Result<(), Error> {
        let plan = self.plan(csid, timestamp, type_id, stream_id, payload.len())?;
        let first = payload.len().min(self.chunk_size as usize);
        plan.first_header(out);
        out.put_slice(&payload[..first]);
        let mut rest = &payload[first..];
        while !rest.is_empty() {
            let n = rest.len().min(self.chunk_size as usize);
            plan.continuation_header(out);
            out.put_slice(&rest[..n]);
            rest = &rest[n..];
        }
        Ok(())
    }

    /// Encodes one message without copying its payload: chunk headers are
    /// written into `headers` and handed out as segments, interleaved with
    /// slices of `payload` (same buffer, reference counted), ready for a
    /// vectored write. Every player of a stream shares the payload.
    #[allow(clippy::too_many_arguments)] // the message header fields of `encode`, plus two outputs
    pub fn encode_shared(
        &mut self,
        csid: ChunkStreamId,
        timestamp: Timestamp,
        type_id: u8,
        stream_id: MessageStreamId,
        payload: &Bytes,
        headers: &mut BytesMut,
        segments: &mut impl Extend<Bytes>,
    ) -> Result<(), Error> {
        let plan = self.plan(csid, timestamp, type_id, stream_id, payload.len())?;
        let size = self.chunk_size as usize;
        let mut pos = 0;
        loop {
            let header = if pos == 0 {
                plan.first_header(headers);
                headers.split().freeze()
            } else {
                plan.static_continuation().unwrap_or_else(|| {
                    plan.continuation_header(headers);
                    headers.split().freeze()
                })
            };
            let end = (pos + size).min(payload.len());
            segments.extend([header, payload.slice(pos..end)]);
            pos = end;
            if pos >= payload.len() {
                return Ok(());
            }
        }
    }

    /// Sends `run` on this connection: takes over the header state the run
    /// leaves on each chunk stream it used, as if this encoder had encoded
    /// its messages; the caller queues [`ChunkRun::bytes`]. `false`
    /// (nothing changed) when the run was made at another chunk size.
    pub fn adopt(&mut self, run: &ChunkRun) -> bool {
        if run.chunk_size != self.chunk_size {
            return false;
        }
        for &(csid, sent) in &run.last {
            match self.streams.iter_mut().find(|(c, _)| *c == csid) {
                Some(slot) => slot.1 = sent,
                None => self.streams.push((csid, sent)),
            }
        }
        true
    }

    /// Chooses the header of the next message on `csid` and records it.
    fn plan(
        &mut self,
        csid: ChunkStreamId,
        timestamp: Timestamp,
        type_id: u8,
        stream_id: MessageStreamId,
        len: usize,
    ) -> Result<Plan, Error> {
        if csid.0 < 2 || csid.0 > MAX_CHUNK_STREAM_ID {
            return Err(Error::Misuse("chunk stream id must be 2..=65599"));
        }
        let length = u32::try_from(len)
            .ok()
            .filter(|&l| l <= MAX_MESSAGE_LEN)
            .ok_or(Error::Misuse("message longer than 16 MiB - 1"))?;
        let slot = self.streams.iter().position(|(c, _)| *c == csid.0);
        let prev = slot.map(|i| self.streams[i].1);
        let (fmt, field, delta) = match prev {
            Some(p) if p.stream_id == stream_id.0 && !timestamp.is_before(p.timestamp) => {
                let delta = timestamp.wrapping_sub(p.timestamp);
                if p.length != length || p.type_id != type_id {
                    (1u8, delta, Some(delta))
                } else if p.delta != Some(delta) {
                    (2, delta, Some(delta))
                } else {
                    (3, delta, Some(delta))
                }
            }
            _ => (0, timestamp.as_millis(), None),
        };
        // §5.3.1.3: the 24-bit field is 0xFFFFFF when the value is >= 0xFFFFFF.
        let ext = match fmt {
            3 => prev.and_then(|p| p.ext),
            _ => (field >= EXTENDED_TIMESTAMP_MARK).then_some(field),
        };
        let sent = Sent {
            timestamp,
            length,
            type_id,
            stream_id: stream_id.0,
            delta,
            ext,
        };
        match slot {
            Some(i) => self.streams[i].1 = sent,
            None => self.streams.push((csid.0, sent)),
        }
        Ok(Plan {
            fmt,
            csid: csid.0,
            ts24: if ext.is_some() {
                EXTENDED_TIMESTAMP_MARK
            } else {
                field
            },
            length,
            type_id,
            stream_id: stream_id.0,
            ext,
        })
    }
}

/// The chunks of a run of messages, encoded once for every connection
/// that sends the same messages at the same chunk size on the same message
/// stream (a stream's fan-out to its players). Each chunk stream's first
/// message in the run has a full (fmt 0) header, which any connection may
/// send whatever it sent before; later ones are compressed against it.
/// A connection sends it by [`ChunkEncoder::adopt`] and queuing the bytes.
#[derive(Debug, Clone)]
pub struct ChunkRun {
    bytes: Bytes,
    chunk_size: u32,
    stream_id: u32,
    /// The header state the run leaves on each chunk stream it used.
    last: Vec<(u32, Sent)>,
}

impl ChunkRun {
    /// Encodes `messages` (chunk stream, timestamp, type, payload) on
    /// message stream `stream_id` at `chunk_size`, one contiguous buffer.
    pub fn encode<'a>(
        chunk_size: u32,
        stream_id: MessageStreamId,
        messages: impl IntoIterator<Item = (ChunkStreamId, Timestamp, u8, &'a [u8])>,
    ) -> Result<ChunkRun, Error> {
        let mut enc = ChunkEncoder::new();
        enc.set_chunk_size(chunk_size)?;
        let messages: Vec<_> = messages.into_iter().collect();
        // The exact room, at most: a header of up to 18 bytes a message
        // and of up to 7 a continuation chunk. The buffer is kept as it is
        // while every player sends it.
        let room: usize = messages
            .iter()
            .map(|m| m.3.len() + 18 + m.3.len() / chunk_size as usize * 7)
            .sum();
        let mut out = BytesMut::with_capacity(room);
        for (csid, ts, type_id, payload) in messages {
            enc.encode(csid, ts, type_id, stream_id, payload, &mut out)?;
        }
        Ok(ChunkRun {
            bytes: out.freeze(),
            chunk_size,
            stream_id: stream_id.0,
            last: enc.streams,
        })
    }

    /// The chunks, ready to write.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The message stream it was encoded for.
    pub fn stream_id(&self) -> MessageStreamId {
        MessageStreamId(self.stream_id)
    }
}

/// The header fields of one message, decided by [`ChunkEncoder::plan`].
#[derive(Debug, Clone, Copy)]
struct Plan {
    fmt: u8,
    csid: u32,
    ts24: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    ext: Option<u32>,
}

impl Plan {
    fn first_header<B: BufMut>(&self, out: &mut B) {
        put_basic_header(self.fmt, self.csid, out);
        match self.fmt {
            0 => {
                put_u24(out, self.ts24);
                put_u24(out, self.length);
                out.put_u8(self.type_id);
                // §5.3.1.2.1: message stream id, little-endian.
                out.put_u32_le(self.stream_id);
            }
            1 => {
                put_u24(out, self.ts24);
                put_u24(out, self.length);
                out.put_u8(self.type_id);
            }
            2 => put_u24(out, self.ts24),
            _ => {}
        }
        if let Some(e) = self.ext {
            out.put_u32(e);
        }
    }

    /// fmt 3, repeating the extended timestamp when the header had one
    /// (§5.3.1.3; FFmpeg closes the connection if it is missing).
    /// The one-byte continuation header as a static slice (no allocation,
    /// no reference count) when it is one byte: chunk stream 2..=63 and no
    /// extended timestamp. Fan-out sends these once per chunk per player.
    fn static_continuation(&self) -> Option<Bytes> {
        static FMT3: [u8; 64] = {
            let mut t = [0u8; 64];
            let mut i = 0;
            while i < 64 {
                t[i] = 0xC0 | i as u8;
                i += 1;
            }
            t
        };
        let c = self.csid as usize;
        (self.ext.is_none() && (2..64).contains(&c)).then(|| Bytes::from_static(&FMT3[c..=c]))
    }

    fn continuation_header<B: BufMut>(&self, out: &mut B) {
        put_basic_header(3, self.csid, out);
        if let Some(e) = self.ext {
            out.put_u32(e);
        }
    }
}

fn put_u24<B: BufMut>(out: &mut B, v: u32) {
    out.put_slice(&v.to_be_bytes()[1..]);
}

/// §5.3.1.1: the smallest form that fits; the 3-byte form is little-endian.
fn put_basic_header<B: BufMut>(fmt: u8, csid: u32, out: &mut B) {
    let f = fmt << 6;
    match csid {
        2..=63 => out.put_u8(f | csid as u8),
        64..=319 => {
            out.put_u8(f);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            let v = csid - 64;
            out.put_u8(f | 1);
            out.put_u8((v & 0xff) as u8);
            out.put_u8((v >> 8) as u8);
        }
    }
}
