//! User Control messages (Adobe RTMP 1.0 §6.2, §7.1.7): a 2-byte event type,
//! then event data.

use crate::error::DecodeError;
use bytes::{BufMut, Bytes};

/// A User Control event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserControl {
    /// 0: the stream became functional.
    StreamBegin(u32),
    /// 1: playback of the stream is over.
    StreamEof(u32),
    /// 2: no more data on the stream for now.
    StreamDry(u32),
    /// 3: the client's buffer length in ms.
    SetBufferLength {
        /// Message stream id.
        stream_id: u32,
        /// Buffer in milliseconds.
        buffer_ms: u32,
    },
    /// 4: the stream is recorded.
    StreamIsRecorded(u32),
    /// 6: the server checks the client; answer with a PingResponse of the same value.
    PingRequest(u32),
    /// 7: the answer to a PingRequest.
    PingResponse(u32),
    /// Any other event (SWF verification 26/27, FMS buffer events 31/32, ...).
    Other {
        /// Event type.
        event: u16,
        /// Event data.
        data: Bytes,
    },
}

impl UserControl {
    /// Decodes a User Control payload; short payloads are errors, never panics.
    pub fn decode(p: &[u8]) -> Result<Self, DecodeError> {
        let Some(ev) = p.get(..2) else {
            return Err(DecodeError::invalid("user control", "shorter than 2 bytes"));
        };
        let event = u16::from_be_bytes([ev[0], ev[1]]);
        let word = |i: usize| -> Result<u32, DecodeError> {
            match p.get(i..i + 4) {
                Some(x) => Ok(u32::from_be_bytes([x[0], x[1], x[2], x[3]])),
                None => Err(DecodeError::invalid(
                    "user control",
                    format!("event {event} with {} data bytes", p.len() - 2),
                )),
            }
        };
        Ok(match event {
            0 => UserControl::StreamBegin(word(2)?),
            1 => UserControl::StreamEof(word(2)?),
            2 => UserControl::StreamDry(word(2)?),
            3 => UserControl::SetBufferLength {
                stream_id: word(2)?,
                buffer_ms: word(6)?,
            },
            4 => UserControl::StreamIsRecorded(word(2)?),
            // The timestamp is the 4 bytes right after the event type (an old
            // lal read the wrong offset).
            6 => UserControl::PingRequest(word(2)?),
            7 => UserControl::PingResponse(word(2)?),
            _ => UserControl::Other {
                event,
                data: Bytes::copy_from_slice(&p[2..]),
            },
        })
    }

    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        let (ev, a, b) = match self {
            UserControl::StreamBegin(s) => (0, *s, None),
            UserControl::StreamEof(s) => (1, *s, None),
            UserControl::StreamDry(s) => (2, *s, None),
            UserControl::SetBufferLength {
                stream_id,
                buffer_ms,
            } => (3, *stream_id, Some(*buffer_ms)),
            UserControl::StreamIsRecorded(s) => (4, *s, None),
            UserControl::PingRequest(t) => (6, *t, None),
            UserControl::PingResponse(t) => (7, *t, None),
            UserControl::Other { event, data } => {
                out.put_u16(*event);
                out.put_slice(data);
                return;
            }
        };
        out.put_u16(ev);
        out.put_u32(a);
        if let Some(b) = b {
            out.put_u32(b);
        }
    }
}
