//! What client and server sessions share: the chunk layer, flow control
//! messages, and the output buffer.

use crate::Timestamp;
use crate::chunk::{
    ChunkDecoder, ChunkEncoder, ChunkStreamId, DecoderLimits, MessageStreamId, RawMessage,
};
use crate::error::{Error, ProtocolError};
use crate::message::{LimitType, Message, UserControl};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;

/// Our Window Acknowledgement Size and Set Peer Bandwidth (what nginx-rtmp,
/// SRS and FFmpeg use).
pub const DEFAULT_WINDOW: u32 = 2_500_000;

/// Chunk layer plus acknowledgement bookkeeping.
#[derive(Debug)]
pub(crate) struct Conn {
    pub decoder: ChunkDecoder,
    pub encoder: ChunkEncoder,
    /// Bytes written by the encoder (control messages, commands, small
    /// media, chunk headers of shared payloads).
    out: BytesMut,
    /// What goes out before `out`: earlier bytes of `out` and shared payload
    /// slices, in order.
    segments: VecDeque<Bytes>,
    segments_len: usize,
    /// Bytes received since the session started (handshake included).
    pub received: u64,
    /// `received` when we last acknowledged.
    acked_at: u64,
    /// The window the peer asked us to acknowledge at.
    pub peer_window: Option<u32>,
    /// The last Window Acknowledgement Size we sent.
    pub window_sent: Option<u32>,
    /// The peer's last Acknowledgement sequence number.
    pub peer_acked: u32,
    /// Acknowledgements sent.
    pub acks_sent: u64,
    /// Bytes queued for sending since the session started.
    pub sent: u64,
}

impl Conn {
    pub fn new(limits: DecoderLimits) -> Self {
        Conn {
            decoder: ChunkDecoder::with_limits(limits),
            encoder: ChunkEncoder::new(),
            out: BytesMut::with_capacity(1024),
            segments: VecDeque::new(),
            segments_len: 0,
            received: 0,
            acked_at: 0,
            peer_window: None,
            window_sent: None,
            peer_acked: 0,
            acks_sent: 0,
            sent: 0,
        }
    }

    /// Queues raw bytes (the handshake).
    pub fn queue_raw(&mut self, b: &[u8]) {
        self.sent += b.len() as u64;
        self.out.extend_from_slice(b);
    }

    /// Queues one message.
    pub fn send(&mut self, csid: ChunkStreamId, ts: Timestamp, msid: u32, msg: &Message) {
        let payload = msg.payload();
        self.send_raw(csid, ts, msg.type_id(), msid, &payload);
    }

    /// Queues one message from its parts.
    pub fn send_raw(
        &mut self,
        csid: ChunkStreamId,
        ts: Timestamp,
        type_id: u8,
        msid: u32,
        payload: &[u8],
    ) {
        let before = self.out.len();
        // Our own callers pass valid chunk stream ids and payloads shorter than
        // 16 MiB (checked at the public API); an error here is a bug, reported
        // in debug builds and otherwise dropped rather than panicking.
        let r = self.encoder.encode(
            csid,
            ts,
            type_id,
            MessageStreamId(msid),
            payload,
            &mut self.out,
        );
        debug_assert!(r.is_ok(), "encode failed: {r:?}");
        self.sent += (self.out.len() - before) as u64;
    }

    /// Queues a message whose payload is shared, not copied: the chunk
    /// headers are written here and the payload goes out as slices of the
    /// same buffer (vectored write). Small payloads are copied: an extra
    /// I/O slice costs more than copying a few hundred bytes.
    pub fn send_shared(
        &mut self,
        csid: ChunkStreamId,
        ts: Timestamp,
        type_id: u8,
        msid: u32,
        payload: &Bytes,
    ) {
        if payload.len() < 1024 {
            self.send_raw(csid, ts, type_id, msid, payload);
            return;
        }
        if !self.out.is_empty() {
            let b = self.out.split().freeze();
            self.segments_len += b.len();
            self.segments.push_back(b);
        }
        let before = self.segments.len();
        let r = self.encoder.encode_shared(
            csid,
            ts,
            type_id,
            MessageStreamId(msid),
            payload,
            &mut self.out,
            &mut self.segments,
        );
        debug_assert!(r.is_ok(), "encode failed: {r:?}");
        let added: usize = self.segments.iter().skip(before).map(Bytes::len).sum();
        self.segments_len += added;
        self.sent += added as u64;
    }

    /// Moves everything queued into `dst`, in order, for one vectored write.
    pub fn take_output(&mut self, dst: &mut Vec<Bytes>) {
        dst.extend(self.segments.drain(..));
        self.segments_len = 0;
        // A burst (a late joiner's GOP) must not leave every player holding
        // room for hundreds of segments.
        self.segments.shrink_to(16);
        if !self.out.is_empty() {
            dst.push(self.out.split().freeze());
        }
        // Only once everything queued was handed out: start a small buffer
        // again instead of keeping a burst-sized one.
        if self.out.capacity() > 4096 {
            self.out = BytesMut::with_capacity(1024);
        }
    }

    /// Queues a protocol control message on csid 2, msid 0 (§5.4).
    pub fn send_control(&mut self, msg: &Message) {
        self.send(ChunkStreamId::CONTROL, Timestamp::ZERO, 0, msg);
    }

    /// Sends Set Chunk Size and switches the encoder after it.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), Error> {
        self.send_control(&Message::SetChunkSize(size));
        self.encoder.set_chunk_size(size)
    }

    /// Sends Window Acknowledgement Size.
    pub fn send_window(&mut self, size: u32) {
        self.send_control(&Message::WindowAckSize(size));
        self.window_sent = Some(size);
    }

    /// Bytes queued and not yet taken.
    pub fn pending_output(&self) -> usize {
        self.segments_len + self.out.len()
    }

    /// Bytes to send, if any, in order.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if let Some(b) = self.segments.pop_front() {
            self.segments_len -= b.len();
            return Some(b);
        }
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }

    /// Counts received bytes and acknowledges when a window is full.
    pub fn count_received(&mut self, n: usize) {
        self.received += n as u64;
    }

    /// §5.4.3: acknowledge after receiving a window's worth of bytes. The
    /// sequence number is the byte count modulo 2^32 (not reset near the top
    /// as some servers do).
    pub fn maybe_ack(&mut self) {
        if let Some(w) = self.peer_window {
            if w > 0 && self.received - self.acked_at >= u64::from(w) {
                self.acked_at = self.received;
                self.acks_sent += 1;
                self.send_control(&Message::Acknowledgement(self.received as u32));
            }
        }
    }

    /// Handles what both sides handle alike. Returns the message when the
    /// caller has more to do with it.
    pub fn handle_common(&mut self, raw: &RawMessage, msg: Message) -> Option<Message> {
        match msg {
            // Applied by the decoder already.
            Message::SetChunkSize(_) | Message::Abort(_) => None,
            Message::Acknowledgement(seq) => {
                self.peer_acked = seq;
                None
            }
            Message::WindowAckSize(w) => {
                self.peer_window = Some(w);
                None
            }
            Message::SetPeerBandwidth { size, limit } => {
                // §5.4.5: "The peer receiving this message SHOULD respond with
                // a Window Acknowledgement Size message if the window size is
                // different from the last one sent". Dynamic is treated as
                // hard; a soft limit only lowers.
                let answer = match (limit, self.window_sent) {
                    (LimitType::SOFT, Some(cur)) => size.min(cur),
                    _ => size,
                };
                if self.window_sent != Some(answer) {
                    self.send_window(answer);
                }
                None
            }
            Message::UserControl(UserControl::PingRequest(t)) => {
                self.send_control(&Message::UserControl(UserControl::PingResponse(t)));
                let _ = raw;
                None
            }
            other => Some(other),
        }
    }

    /// Decodes the next message, with the chunk layer's error mapped.
    pub fn next_raw(&mut self) -> Result<Option<RawMessage>, Error> {
        self.decoder.next_message()
    }
}

/// Converts a raw message into a typed one, or a protocol error naming it.
pub(crate) fn typed(raw: &RawMessage) -> Result<Message, Error> {
    Ok(Message::decode(raw.type_id, raw.payload.clone())?)
}

/// The chunk stream a media message goes on, checking its type and length.
pub(crate) fn media_csid(type_id: u8, len: usize) -> Result<ChunkStreamId, Error> {
    use crate::message::type_id as t;
    if len > crate::chunk::MAX_MESSAGE_LEN as usize {
        return Err(Error::Misuse("message longer than 16 MiB - 1"));
    }
    match type_id {
        t::AUDIO => Ok(ChunkStreamId::AUDIO),
        t::VIDEO => Ok(ChunkStreamId::VIDEO),
        t::DATA_AMF0 => Ok(ChunkStreamId::STREAM),
        _ => Err(Error::Misuse(
            "media type must be audio (8), video (9) or data (18)",
        )),
    }
}

pub(crate) fn unexpected(what: impl Into<String>) -> Error {
    ProtocolError::Unexpected(what.into()).into()
}
