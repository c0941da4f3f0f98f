//! Typed RTMP messages (Adobe RTMP 1.0 §5.4, §6.2, §7).
//!
//! [`Message::decode`] turns a payload of a known type id into a typed value;
//! [`Message::encode_into`] does the reverse. Audio, video and aggregate payloads
//! stay [`Bytes`] so they are never copied.

mod aggregate;
mod command;
mod data;
mod user_control;

pub use aggregate::split_aggregate;
pub use command::{Command, StatusInfo, status};
pub(crate) use data::SET_DATA_FRAME_AMF0;
pub use data::{DataMessage, metadata_body};
pub use user_control::UserControl;

use crate::amf0::{self, Amf0Value};
use crate::error::DecodeError;
use bytes::{BufMut, Bytes};

/// Message type ids (§5.4, §7.1).
pub mod type_id {
    /// Set Chunk Size (§5.4.1).
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// Abort Message (§5.4.2).
    pub const ABORT: u8 = 2;
    /// Acknowledgement (§5.4.3).
    pub const ACKNOWLEDGEMENT: u8 = 3;
    /// User Control Message (§6.2).
    pub const USER_CONTROL: u8 = 4;
    /// Window Acknowledgement Size (§5.4.4).
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// Set Peer Bandwidth (§5.4.5).
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    /// Audio (§7.1.4).
    pub const AUDIO: u8 = 8;
    /// Video (§7.1.5).
    pub const VIDEO: u8 = 9;
    /// Data message, AMF3 (§7.1.2).
    pub const DATA_AMF3: u8 = 15;
    /// Shared object, AMF3 (§7.1.3).
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    /// Command message, AMF3 (§7.1.1).
    pub const COMMAND_AMF3: u8 = 17;
    /// Data message, AMF0 (§7.1.2).
    pub const DATA_AMF0: u8 = 18;
    /// Shared object, AMF0 (§7.1.3).
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    /// Command message, AMF0 (§7.1.1).
    pub const COMMAND_AMF0: u8 = 20;
    /// Aggregate message (§7.1.6).
    pub const AGGREGATE: u8 = 22;
}

/// Set Peer Bandwidth limit types (§5.4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitType(pub u8);

impl LimitType {
    /// "The peer SHOULD limit its output bandwidth to the indicated window size."
    pub const HARD: LimitType = LimitType(0);
    /// The smaller of this window and the one in effect.
    pub const SOFT: LimitType = LimitType(1);
    /// Hard if the previous limit was hard, else ignored.
    pub const DYNAMIC: LimitType = LimitType(2);
}

/// One RTMP message, typed by its type id.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// Type 1: the sender's new maximum chunk size.
    SetChunkSize(u32),
    /// Type 2: discard the partial message on this chunk stream id.
    Abort(u32),
    /// Type 3: bytes received so far (wraps at 2^32).
    Acknowledgement(u32),
    /// Type 4.
    UserControl(UserControl),
    /// Type 5: acknowledge every this many bytes.
    WindowAckSize(u32),
    /// Type 6.
    SetPeerBandwidth {
        /// Window size in bytes.
        size: u32,
        /// Limit type.
        limit: LimitType,
    },
    /// Type 8: an FLV audio tag body.
    Audio(Bytes),
    /// Type 9: an FLV video tag body.
    Video(Bytes),
    /// Type 18 (or 15 with `amf3`): data such as `@setDataFrame` / `onMetaData`.
    Data {
        /// Whether it came as type 15 (a format byte, then AMF0 values
        /// that may switch to AMF3).
        amf3: bool,
        /// The values.
        data: DataMessage,
    },
    /// Type 20 (or 17 with `amf3`): a command such as `connect` or `onStatus`.
    Command {
        /// Whether it came as type 17 (a format byte, then AMF0 values
        /// that may switch to AMF3).
        amf3: bool,
        /// The command.
        command: Command,
    },
    /// Type 22: several audio/video/data sub-messages; see [`split_aggregate`].
    Aggregate(Bytes),
    /// Any other type (shared objects, unknown ids): kept, not interpreted.
    Unknown {
        /// The type id.
        type_id: u8,
        /// The payload.
        payload: Bytes,
    },
}

fn be32(p: &[u8], what: &'static str) -> Result<u32, DecodeError> {
    match p.get(..4) {
        Some(x) => Ok(u32::from_be_bytes([x[0], x[1], x[2], x[3]])),
        None => Err(DecodeError::invalid(
            what,
            format!("{} bytes, need 4", p.len()),
        )),
    }
}

/// The AMF0 values of a type 15 / 17 message: after the format byte, 0
/// ("only 0 is defined, meaning AMF0" in E-RTMP v2; FMS-era peers send the
/// same leading zero). AMF3 values come inside as AMF0 switches (0x11). A
/// peer that leaves the byte out is read from the first byte on.
fn amf3_body(p: &[u8]) -> &[u8] {
    match p.split_first() {
        Some((0, rest)) => rest,
        _ => p,
    }
}

/// The name a command or data message starts with (its first AMF0 value,
/// when that is a string), without decoding the rest: what a session
/// needs to know to skip a message whose body does not decode.
pub(crate) fn leading_name(type_id: u8, payload: &[u8]) -> Option<String> {
    let body = match type_id {
        type_id::DATA_AMF3 | type_id::COMMAND_AMF3 => amf3_body(payload),
        type_id::DATA_AMF0 | type_id::COMMAND_AMF0 => payload,
        _ => return None,
    };
    let mut r = amf0::Amf0Reader::new(body);
    match r.read_value() {
        Ok(v) => v.as_str().map(str::to_owned),
        Err(_) => None,
    }
}

impl Message {
    /// Decodes the payload of a message of type `type_id`.
    pub fn decode(type_id: u8, payload: Bytes) -> Result<Message, DecodeError> {
        use self::type_id as t;
        Ok(match type_id {
            t::SET_CHUNK_SIZE => Message::SetChunkSize(be32(&payload, "set chunk size")?),
            t::ABORT => Message::Abort(be32(&payload, "abort")?),
            t::ACKNOWLEDGEMENT => Message::Acknowledgement(be32(&payload, "acknowledgement")?),
            t::USER_CONTROL => Message::UserControl(UserControl::decode(&payload)?),
            t::WINDOW_ACK_SIZE => Message::WindowAckSize(be32(&payload, "window ack size")?),
            t::SET_PEER_BANDWIDTH => {
                let size = be32(&payload, "set peer bandwidth")?;
                let limit = *payload
                    .get(4)
                    .ok_or_else(|| DecodeError::invalid("set peer bandwidth", "no limit type"))?;
                Message::SetPeerBandwidth {
                    size,
                    limit: LimitType(limit),
                }
            }
            t::AUDIO => Message::Audio(payload),
            t::VIDEO => Message::Video(payload),
            t::DATA_AMF0 => Message::Data {
                amf3: false,
                data: DataMessage::decode(&payload)?,
            },
            t::DATA_AMF3 => Message::Data {
                amf3: true,
                data: DataMessage::decode(amf3_body(&payload))?,
            },
            t::COMMAND_AMF0 => Message::Command {
                amf3: false,
                command: Command::decode(&payload)?,
            },
            t::COMMAND_AMF3 => Message::Command {
                amf3: true,
                command: Command::decode(amf3_body(&payload))?,
            },
            t::AGGREGATE => Message::Aggregate(payload),
            other => Message::Unknown {
                type_id: other,
                payload,
            },
        })
    }

    /// The type id this message is sent with.
    pub fn type_id(&self) -> u8 {
        use self::type_id as t;
        match self {
            Message::SetChunkSize(_) => t::SET_CHUNK_SIZE,
            Message::Abort(_) => t::ABORT,
            Message::Acknowledgement(_) => t::ACKNOWLEDGEMENT,
            Message::UserControl(_) => t::USER_CONTROL,
            Message::WindowAckSize(_) => t::WINDOW_ACK_SIZE,
            Message::SetPeerBandwidth { .. } => t::SET_PEER_BANDWIDTH,
            Message::Audio(_) => t::AUDIO,
            Message::Video(_) => t::VIDEO,
            Message::Data { amf3: false, .. } => t::DATA_AMF0,
            Message::Data { amf3: true, .. } => t::DATA_AMF3,
            Message::Command { amf3: false, .. } => t::COMMAND_AMF0,
            Message::Command { amf3: true, .. } => t::COMMAND_AMF3,
            Message::Aggregate(_) => t::AGGREGATE,
            Message::Unknown { type_id, .. } => *type_id,
        }
    }

    /// Whether this is a protocol control message (types 1-6), which "MUST
    /// have message stream ID 0 ... and be sent in chunk stream ID 2" (§5.4).
    pub fn is_control(&self) -> bool {
        self.type_id() <= type_id::SET_PEER_BANDWIDTH
    }

    /// The payload bytes of this message.
    pub fn payload(&self) -> Bytes {
        match self {
            Message::Audio(b) | Message::Video(b) | Message::Aggregate(b) => b.clone(),
            Message::Unknown { payload, .. } => payload.clone(),
            _ => {
                let mut v = Vec::with_capacity(64);
                self.encode_into(&mut v);
                Bytes::from(v)
            }
        }
    }

    /// Appends the payload bytes to `out`.
    pub fn encode_into<B: BufMut>(&self, out: &mut B) {
        match self {
            Message::SetChunkSize(v)
            | Message::Abort(v)
            | Message::Acknowledgement(v)
            | Message::WindowAckSize(v) => out.put_u32(*v),
            Message::UserControl(u) => u.encode(out),
            Message::SetPeerBandwidth { size, limit } => {
                out.put_u32(*size);
                out.put_u8(limit.0);
            }
            Message::Audio(b) | Message::Video(b) | Message::Aggregate(b) => out.put_slice(b),
            Message::Unknown { payload, .. } => out.put_slice(payload),
            Message::Data { amf3, data } => {
                if *amf3 {
                    out.put_u8(0);
                }
                for v in &data.values {
                    amf0::encode(v, out);
                }
            }
            Message::Command { amf3, command } => {
                if *amf3 {
                    out.put_u8(0);
                }
                command.encode(out);
            }
        }
    }

    /// An AMF0 command message.
    pub fn command(command: Command) -> Message {
        Message::Command {
            amf3: false,
            command,
        }
    }

    /// An AMF0 data message.
    pub fn data(values: Vec<Amf0Value>) -> Message {
        Message::Data {
            amf3: false,
            data: DataMessage { values },
        }
    }
}

#[cfg(test)]
mod tests;
