//! What both sides of a session do alike: the handshake prologue, the chunk
//! layer, acknowledgements, pings, the output queue, events and notices.

use crate::Timestamp;
use crate::chunk::{
    ChunkDecoder, ChunkEncoder, ChunkStreamId, DecoderLimits, MessageStreamId, RawMessage,
};
use crate::error::{DecodeError, Error, HandshakeError, ProtocolError};
use crate::handshake::{ClientHandshake, ServerHandshake};
use crate::message::{
    self, Command, LimitType, Message, StatusInfo, UserControl, split_aggregate, status, type_id,
};
use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Our Window Acknowledgement Size and Set Peer Bandwidth (what nginx-rtmp,
/// SRS and FFmpeg use).
pub const DEFAULT_WINDOW: u32 = 2_500_000;

/// At most this many notices are reported per session; a peer that repeats
/// an oddity must not flood the log.
const MAX_NOTICES: u32 = 32;

/// Events that can carry a notice: something unusual but harmless.
pub trait NoticeEvent {
    /// The event for a notice.
    fn notice(text: String) -> Self;
}

/// What the handshake found out about the peer.
#[derive(Debug, Clone, Copy, Default)]
pub struct HandshakeFacts {
    /// Client side: the server's S1 digest verified.
    pub server_digest_verified: bool,
    /// Server side: the client's C1 carried a valid digest.
    pub client_used_digest: bool,
}

/// Either side of the handshake.
#[derive(Debug)]
pub(crate) enum AnyHandshake {
    Client(ClientHandshake),
    Server(ServerHandshake),
}

impl AnyHandshake {
    fn handle_input(&mut self, input: &[u8], now: u32) -> Result<usize, HandshakeError> {
        match self {
            AnyHandshake::Client(h) => h.handle_input(input, now),
            AnyHandshake::Server(h) => h.handle_input(input, now),
        }
    }

    fn take_output(&mut self) -> Vec<u8> {
        match self {
            AnyHandshake::Client(h) => h.take_output(),
            AnyHandshake::Server(h) => h.take_output(),
        }
    }

    fn is_complete(&self) -> bool {
        match self {
            AnyHandshake::Client(h) => h.is_complete(),
            AnyHandshake::Server(h) => h.is_complete(),
        }
    }
}

/// The connection state a session's side works with: chunk codec, flow
/// control, output, events. Only the session module reaches it.
#[derive(Debug)]
pub struct Link<E> {
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    handshake: Option<AnyHandshake>,
    /// Sub-messages of an aggregate still to hand out.
    unpacked: VecDeque<RawMessage>,
    /// Bytes written by the encoder (control messages, commands, small
    /// media, chunk headers of shared payloads).
    out: BytesMut,
    /// What goes out before `out`: earlier bytes of `out` and shared payload
    /// slices, in order.
    segments: VecDeque<Bytes>,
    segments_len: usize,
    started_at: Instant,
    received: u64,
    /// `received` when we last acknowledged.
    acked_at: u64,
    peer_window: Option<u32>,
    window_sent: Option<u32>,
    peer_acked: u32,
    acks_sent: u64,
    sent: u64,
    ping_interval: Option<Duration>,
    next_ping: Option<Instant>,
    round_trip: Option<Duration>,
    events: VecDeque<E>,
    notices: u32,
    closed: bool,
}

impl<E: NoticeEvent> Link<E> {
    pub(crate) fn new(
        limits: DecoderLimits,
        mut handshake: AnyHandshake,
        ping_interval: Option<Duration>,
        now: Instant,
    ) -> Self {
        let mut link = Link {
            decoder: ChunkDecoder::with_limits(limits),
            encoder: ChunkEncoder::new(),
            unpacked: VecDeque::new(),
            out: BytesMut::with_capacity(1024),
            segments: VecDeque::new(),
            segments_len: 0,
            started_at: now,
            received: 0,
            acked_at: 0,
            peer_window: None,
            window_sent: None,
            peer_acked: 0,
            acks_sent: 0,
            sent: 0,
            ping_interval: ping_interval.filter(|d| !d.is_zero()),
            next_ping: None,
            round_trip: None,
            events: VecDeque::new(),
            notices: 0,
            closed: false,
            handshake: None,
        };
        // C0+C1 of a client go out at once.
        link.queue_raw(&handshake.take_output());
        link.handshake = Some(handshake);
        link
    }

    /// Milliseconds since the session started: our RTMP clock.
    pub(crate) fn millis(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.started_at).as_millis() as u32
    }

    pub(crate) fn recv_buffer(&mut self) -> &mut BytesMut {
        self.decoder.buffer_mut()
    }

    pub(crate) fn count_received(&mut self, n: usize) {
        self.received += n as u64;
    }

    /// Feeds received bytes to the handshake; returns it once it completed.
    pub(crate) fn advance_handshake(
        &mut self,
        now: Instant,
    ) -> Result<Option<AnyHandshake>, Error> {
        let ms = self.millis(now);
        let Some(hs) = &mut self.handshake else {
            return Ok(None);
        };
        let buf = self.decoder.buffer_mut();
        let used = hs.handle_input(buf, ms)?;
        buf.advance(used);
        let out = hs.take_output();
        let done = hs.is_complete();
        self.queue_raw(&out);
        if !done {
            return Ok(None);
        }
        self.next_ping = self.ping_interval.map(|iv| now + iv);
        Ok(self.handshake.take())
    }

    pub(crate) fn handshake_done(&self) -> bool {
        self.handshake.is_none()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    pub(crate) fn close(&mut self) {
        self.closed = true;
    }

    /// Closes after a failure, telling the peer what [`Error::peer_status`]
    /// says when the chunk layer is up.
    pub(crate) fn fail(&mut self, e: Error) -> Error {
        if !self.closed && self.handshake.is_none() {
            if let Some(code) = e.peer_status() {
                let info = StatusInfo::new(status::LEVEL_ERROR, code, &e.to_string());
                self.send(
                    ChunkStreamId::COMMAND,
                    Timestamp::ZERO,
                    0,
                    &Message::command(Command::on_status(&info)),
                );
            }
        }
        self.closed = true;
        e
    }

    /// The next message for the side, after what both sides handle alike;
    /// aggregates come out as their sub-messages.
    ///
    /// A message whose payload does not decode is skipped with a notice,
    /// the session goes on: data messages, control messages the session
    /// only takes note of (3, 4, 5, 6) and commands, except a command
    /// whose name `must_act` says the side acts on (connect, publish, an
    /// answer to our request, ...): that one ends the session.
    pub(crate) fn next_inbound(
        &mut self,
        now: Instant,
        must_act: impl Fn(&str) -> bool,
    ) -> Result<Option<(RawMessage, Message)>, Error> {
        loop {
            let raw = match self.unpacked.pop_front() {
                Some(r) => r,
                None => match self.decoder.next_message()? {
                    Some(r) => r,
                    None => return Ok(None),
                },
            };
            if raw.type_id == type_id::AGGREGATE {
                let subs = split_aggregate(&raw)?;
                if subs.iter().any(|s| s.type_id == type_id::AGGREGATE) {
                    return Err(
                        ProtocolError::Unexpected("aggregate inside an aggregate".into()).into(),
                    );
                }
                self.unpacked.extend(subs);
                continue;
            }
            let msg = match Message::decode(raw.type_id, raw.payload.clone()) {
                Ok(m) => m,
                Err(e) => {
                    self.skip_undecodable(&raw, e, &must_act)?;
                    continue;
                }
            };
            if let Some(msg) = self.handle_common(msg, now) {
                return Ok(Some((raw, msg)));
            }
        }
    }

    /// Decides about a message that does not decode: skipped with a
    /// notice, or the error when the side must act on it.
    fn skip_undecodable(
        &mut self,
        raw: &RawMessage,
        e: DecodeError,
        must_act: impl Fn(&str) -> bool,
    ) -> Result<(), Error> {
        let what = match raw.type_id {
            type_id::DATA_AMF0 | type_id::DATA_AMF3 => "data message",
            type_id::COMMAND_AMF0 | type_id::COMMAND_AMF3 => "command",
            type_id::ACKNOWLEDGEMENT
            | type_id::USER_CONTROL
            | type_id::WINDOW_ACK_SIZE
            | type_id::SET_PEER_BANDWIDTH => "control message",
            _ => return Err(e.into()),
        };
        let name = message::leading_name(raw.type_id, &raw.payload);
        if what == "command" && name.as_deref().is_some_and(must_act) {
            return Err(e.into());
        }
        let label = name.map_or_else(|| format!("type {}", raw.type_id), |n| format!("{n:?}"));
        self.notice(format!("skipped {what} {label} that does not decode: {e}"));
        Ok(())
    }

    /// Handles what both sides handle alike. Returns the message when the
    /// side has more to do with it.
    fn handle_common(&mut self, msg: Message, now: Instant) -> Option<Message> {
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
            // §7.1.7: "The client sends this event in response to a ping request."
            Message::UserControl(UserControl::PingRequest(t)) => {
                self.send_control(&Message::UserControl(UserControl::PingResponse(t)));
                None
            }
            Message::UserControl(UserControl::PingResponse(t)) => {
                let now_ms = self.millis(now);
                self.round_trip = Some(Duration::from_millis(u64::from(now_ms.wrapping_sub(t))));
                None
            }
            other => Some(other),
        }
    }

    /// §5.4.3: acknowledge after receiving a window's worth of bytes. The
    /// sequence number is the byte count modulo 2^32 (not reset near the top
    /// as some servers do).
    pub(crate) fn maybe_ack(&mut self) {
        if let Some(w) = self.peer_window {
            if w > 0 && self.received - self.acked_at >= u64::from(w) {
                self.acked_at = self.received;
                self.acks_sent += 1;
                self.send_control(&Message::Acknowledgement(self.received as u32));
            }
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.closed { None } else { self.next_ping }
    }

    /// Sends a PingRequest when one is due (§7.1.7: "The server sends this
    /// event to test whether the client is reachable").
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if let (Some(due), Some(iv)) = (self.next_ping, self.ping_interval) {
            if now >= due && !self.closed {
                let ms = self.millis(now);
                self.send_control(&Message::UserControl(UserControl::PingRequest(ms)));
                self.next_ping = Some(now + iv);
            }
        }
    }

    pub(crate) fn push_event(&mut self, e: E) {
        self.events.push_back(e);
    }

    pub(crate) fn notice(&mut self, text: String) {
        self.notices += 1;
        if self.notices <= MAX_NOTICES {
            self.events.push_back(E::notice(text));
        }
    }

    pub(crate) fn poll_event(&mut self) -> Option<E> {
        self.events.pop_front()
    }
}

/// Output and counters: the same for any event type.
impl<E> Link<E> {
    /// Queues raw bytes (the handshake).
    fn queue_raw(&mut self, b: &[u8]) {
        self.sent += b.len() as u64;
        self.out.extend_from_slice(b);
    }

    /// Queues one message.
    pub(crate) fn send(&mut self, csid: ChunkStreamId, ts: Timestamp, msid: u32, msg: &Message) {
        let payload = msg.payload();
        self.send_raw(csid, ts, msg.type_id(), msid, &payload);
    }

    /// Queues a command on the connection (csid 3, msid 0) or a stream.
    pub(crate) fn send_command(&mut self, csid: ChunkStreamId, msid: u32, cmd: Command) {
        self.send(csid, Timestamp::ZERO, msid, &Message::command(cmd));
    }

    fn send_raw(&mut self, csid: ChunkStreamId, ts: Timestamp, type_id: u8, msid: u32, p: &[u8]) {
        self.room_out();
        let before = self.out.len();
        // Our own callers pass valid chunk stream ids and payloads shorter than
        // 16 MiB (checked at the public API); an error here is a bug, reported
        // in debug builds and otherwise dropped rather than panicking.
        let r = self
            .encoder
            .encode(csid, ts, type_id, MessageStreamId(msid), p, &mut self.out);
        debug_assert!(r.is_ok(), "encode failed: {r:?}");
        self.sent += (self.out.len() - before) as u64;
    }

    /// Queues a message whose payload is shared, not copied: the chunk
    /// headers are written here and the payload goes out as slices of the
    /// same buffer (vectored write). Small payloads are copied: an extra
    /// I/O slice costs more than copying a few hundred bytes.
    pub(crate) fn send_shared(
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
        self.seal_out();
        self.room_out();
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

    /// Queues a run encoded once for many connections; `false` (nothing
    /// queued) when it was made at another chunk size.
    pub(crate) fn send_run(&mut self, run: &crate::chunk::ChunkRun) -> bool {
        if !self.encoder.adopt(run) {
            return false;
        }
        self.seal_out();
        let b = run.bytes().clone();
        self.segments_len += b.len();
        self.sent += b.len() as u64;
        self.segments.push_back(b);
        true
    }

    /// Someone else wrote to the transport (whole messages, then `rest`
    /// of one begun): `rest` goes out before anything queued, and every
    /// chunk stream's next message gets a full header.
    pub(crate) fn written_elsewhere(&mut self, rest: Bytes) {
        self.encoder.reset();
        self.seal_out();
        if !rest.is_empty() {
            self.segments_len += rest.len();
            self.sent += rest.len() as u64;
            self.segments.push_front(rest);
        }
    }

    /// Gives `out` a buffer again after it was let go (headers and small
    /// messages then share one allocation, not one each).
    fn room_out(&mut self) {
        if self.out.capacity() == 0 {
            self.out.reserve(1024);
        }
    }

    /// Moves the bytes written so far into the segment queue.
    fn seal_out(&mut self) {
        if !self.out.is_empty() {
            let b = self.out.split().freeze();
            self.segments_len += b.len();
            self.segments.push_back(b);
        }
    }

    /// Moves queued output into `dst`, in order, whole segments until at
    /// least `max_bytes` were moved. Returns the bytes moved.
    pub(crate) fn poll_transmit(&mut self, max_bytes: usize, dst: &mut Vec<Bytes>) -> usize {
        self.seal_out();
        let mut moved = 0;
        while moved < max_bytes {
            let Some(b) = self.segments.pop_front() else {
                break;
            };
            moved += b.len();
            dst.push(b);
        }
        self.segments_len -= moved;
        if self.segments.is_empty() {
            // A burst (a late joiner's GOP) must not leave every player
            // holding room for hundreds of segments, nor a burst-sized buffer.
            self.segments.shrink_to(16);
            // What is left of `out`'s buffer keeps the whole allocation
            // alive (a late joiner's burst, for the connection's life when
            // later messages go out as shared runs): let it go, and take a
            // new buffer at the next message.
            if self.out.is_empty() {
                self.out = BytesMut::new();
            }
        }
        moved
    }

    pub(crate) fn pending_output(&self) -> usize {
        self.segments_len + self.out.len()
    }

    /// Queues a protocol control message on csid 2, msid 0 (§5.4).
    pub(crate) fn send_control(&mut self, msg: &Message) {
        self.send(ChunkStreamId::CONTROL, Timestamp::ZERO, 0, msg);
    }

    /// Sends Set Chunk Size and switches the encoder after it.
    /// See [`ChunkDecoder::set_max_message_len`].
    pub(crate) fn set_max_message_len(&mut self, max: u32) {
        self.decoder.set_max_message_len(max);
    }

    pub(crate) fn set_chunk_size(&mut self, size: u32) -> Result<(), Error> {
        self.send_control(&Message::SetChunkSize(size));
        self.encoder.set_chunk_size(size)
    }

    /// Sends Window Acknowledgement Size.
    pub(crate) fn send_window(&mut self, size: u32) {
        self.send_control(&Message::WindowAckSize(size));
        self.window_sent = Some(size);
    }

    /// Until the peer announces a window, acknowledge at this one.
    pub(crate) fn assume_peer_window(&mut self, size: u32) {
        self.peer_window = Some(size);
    }

    pub(crate) fn counters(&self) -> TrafficCounts {
        TrafficCounts {
            bytes_received: self.received,
            bytes_sent: self.sent,
            acks_sent: self.acks_sent,
            peer_acked: self.peer_acked,
            round_trip: self.round_trip,
        }
    }
}

/// Byte and message counters of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrafficCounts {
    /// Bytes received, handshake included.
    pub bytes_received: u64,
    /// Bytes queued for sending, handshake included.
    pub bytes_sent: u64,
    /// Acknowledgements we sent.
    pub acks_sent: u64,
    /// The peer's last Acknowledgement sequence number.
    pub peer_acked: u32,
    /// The round trip of our last answered PingRequest.
    pub round_trip: Option<Duration>,
}

/// The chunk stream a media message goes on, checking its length.
pub(crate) fn media_csid(
    kind: crate::media::MediaKind,
    len: usize,
) -> Result<ChunkStreamId, Error> {
    use crate::media::MediaKind;
    if len > crate::chunk::MAX_MESSAGE_LEN as usize {
        return Err(Error::Misuse("message longer than 16 MiB - 1"));
    }
    Ok(match kind {
        MediaKind::Audio => ChunkStreamId::AUDIO,
        MediaKind::Video => ChunkStreamId::VIDEO,
        MediaKind::Metadata => ChunkStreamId::STREAM,
    })
}

pub(crate) fn unexpected(what: impl Into<String>) -> Error {
    ProtocolError::Unexpected(what.into()).into()
}
