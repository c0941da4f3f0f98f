//! Data messages (§7.1.2): `@setDataFrame`, `onMetaData`, `|RtmpSampleAccess`.

use crate::amf0::{self, Amf0Object, Amf0Value};
use crate::error::DecodeError;

/// `@setDataFrame`: a publisher asks the server to keep the data that follows.
pub const SET_DATA_FRAME: &str = "@setDataFrame";
/// `onMetaData`: stream metadata.
pub const ON_METADATA: &str = "onMetaData";

/// The AMF0 values of a data message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DataMessage {
    /// The values, the handler name first.
    pub values: Vec<Amf0Value>,
}

impl DataMessage {
    /// Decodes AMF0 values.
    pub fn decode(p: &[u8]) -> Result<Self, DecodeError> {
        Ok(DataMessage {
            values: amf0::decode_all(p)?,
        })
    }

    /// `@setDataFrame`, `onMetaData`, metadata: what a publisher sends.
    pub fn set_data_frame(metadata: Amf0Object) -> Self {
        DataMessage {
            values: vec![
                SET_DATA_FRAME.into(),
                ON_METADATA.into(),
                Amf0Value::EcmaArray(metadata),
            ],
        }
    }

    /// `onMetaData`, metadata: what a server sends to players.
    pub fn on_metadata(metadata: Amf0Object) -> Self {
        DataMessage {
            values: vec![ON_METADATA.into(), Amf0Value::EcmaArray(metadata)],
        }
    }

    /// The handler name (the first value, when it is a string).
    pub fn handler(&self) -> Option<&str> {
        self.values.first().and_then(Amf0Value::as_str)
    }

    /// The metadata object of `onMetaData` or `@setDataFrame onMetaData`.
    pub fn metadata(&self) -> Option<&Amf0Object> {
        let rest = match self.handler()? {
            SET_DATA_FRAME => &self.values[1..],
            _ => &self.values[..],
        };
        match rest {
            [name, obj, ..] if name.as_str() == Some(ON_METADATA) => obj.as_object(),
            _ => None,
        }
    }

    /// Whether a value is AMF3 (after the AMF0 switch marker).
    pub fn has_amf3(&self) -> bool {
        self.values
            .iter()
            .any(|v| matches!(v, Amf0Value::Avmplus(_)))
    }

    /// The same data with every AMF3 value in its nearest AMF0 form
    /// ([`Amf3Value::to_amf0`](crate::amf3::Amf3Value::to_amf0)).
    pub fn to_amf0(&self) -> DataMessage {
        DataMessage {
            values: self
                .values
                .iter()
                .map(|v| match v {
                    Amf0Value::Avmplus(a) => a.to_amf0(),
                    other => other.clone(),
                })
                .collect(),
        }
    }

    /// The metadata a player gets, as AMF0 bytes (`onMetaData` and its
    /// values), from a data message of type 18 or 15 as a publisher sent
    /// it. Plain AMF0 comes out as a slice of `payload` (no copy); AMF3
    /// values, or the format byte of type 15, are re-encoded. `None` when
    /// the message is not `onMetaData`.
    pub fn player_metadata(&self, amf3: bool, payload: &bytes::Bytes) -> Option<bytes::Bytes> {
        if !amf3 && !self.has_amf3() {
            return metadata_body(payload);
        }
        let plain = self.to_amf0().without_set_data_frame();
        plain.metadata()?;
        Some(crate::message::Message::data(plain.values).payload())
    }

    /// The same data without a leading `@setDataFrame`, as players expect it.
    pub fn without_set_data_frame(&self) -> DataMessage {
        match self.handler() {
            Some(SET_DATA_FRAME) => DataMessage {
                values: self.values[1..].to_vec(),
            },
            _ => self.clone(),
        }
    }
}

/// `@setDataFrame` as AMF0: string marker, 16-bit length 13, the name.
pub(crate) const SET_DATA_FRAME_AMF0: &[u8] = b"\x02\x00\x0d@setDataFrame";
/// `onMetaData` as AMF0.
const ON_METADATA_AMF0: &[u8] = b"\x02\x00\x0aonMetaData";

/// The metadata a player gets, as bytes: `onMetaData` and its values, from a
/// data message as a publisher sent it (`@setDataFrame` first or not). It
/// is a slice of the same buffer: no decode, no copy. `None` when the
/// message is not `onMetaData`.
pub fn metadata_body(payload: &bytes::Bytes) -> Option<bytes::Bytes> {
    let body = if payload.starts_with(SET_DATA_FRAME_AMF0) {
        payload.slice(SET_DATA_FRAME_AMF0.len()..)
    } else {
        payload.clone()
    };
    body.starts_with(ON_METADATA_AMF0).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_body_is_a_slice_without_set_data_frame() {
        let mut o = Amf0Object::new();
        o.push("width", 320.0);
        let enc = |d: DataMessage| crate::message::Message::data(d.values).payload();
        let sent = enc(DataMessage::set_data_frame(o.clone()));
        let body = metadata_body(&sent).expect("metadata");
        assert_eq!(body, enc(DataMessage::on_metadata(o)));
        assert_eq!(metadata_body(&body), Some(body.clone()), "already stripped");
        let other = enc(DataMessage {
            values: vec!["onTextData".into()],
        });
        assert_eq!(metadata_body(&other), None);
    }
}
