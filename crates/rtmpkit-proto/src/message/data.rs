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
