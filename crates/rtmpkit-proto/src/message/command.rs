//! AMF0 command messages (Adobe RTMP 1.0 §7.2): a name, a transaction id, a
//! command object, then arguments.

use crate::amf0::{self, Amf0Object, Amf0Reader, Amf0Value};
use crate::error::DecodeError;
use bytes::BufMut;

/// Status codes and levels seen in `onStatus` / `_result` / `_error`.
pub mod status {
    /// `level` of a success.
    pub const LEVEL_STATUS: &str = "status";
    /// `level` of a failure.
    pub const LEVEL_ERROR: &str = "error";
    /// connect succeeded.
    pub const CONNECT_SUCCESS: &str = "NetConnection.Connect.Success";
    /// connect refused (auth, unknown app).
    pub const CONNECT_REJECTED: &str = "NetConnection.Connect.Rejected";
    /// The connection was closed.
    pub const CONNECT_CLOSED: &str = "NetConnection.Connect.Closed";
    /// publish accepted.
    pub const PUBLISH_START: &str = "NetStream.Publish.Start";
    /// publish refused: the name is taken (nginx-rtmp, SRS).
    pub const PUBLISH_BAD_NAME: &str = "NetStream.Publish.BadName";
    /// Publish refused by authorization (a hook or a signed URL).
    pub const PUBLISH_UNAUTHORIZED: &str = "NetStream.Publish.Unauthorized";
    /// E-RTMP v2: the server asks the client to connect again (to the
    /// `tcUrl` of the info object, or the same one).
    pub const CONNECT_RECONNECT_REQUEST: &str = "NetConnection.Connect.ReconnectRequest";
    /// Play refused by authorization (a hook or a signed URL).
    pub const PLAY_UNAUTHORIZED: &str = "NetStream.Play.Unauthorized";
    /// The publisher stopped.
    pub const UNPUBLISH_SUCCESS: &str = "NetStream.Unpublish.Success";
    /// Play is starting.
    pub const PLAY_START: &str = "NetStream.Play.Start";
    /// A play list was reset.
    pub const PLAY_RESET: &str = "NetStream.Play.Reset";
    /// Playback stopped.
    pub const PLAY_STOP: &str = "NetStream.Play.Stop";
    /// No such stream.
    pub const PLAY_STREAM_NOT_FOUND: &str = "NetStream.Play.StreamNotFound";
    /// The publisher of a played stream went away.
    pub const PLAY_UNPUBLISH_NOTIFY: &str = "NetStream.Play.UnpublishNotify";
    /// A publisher appeared for a played stream.
    pub const PLAY_PUBLISH_NOTIFY: &str = "NetStream.Play.PublishNotify";
    /// Generic failure.
    pub const FAILED: &str = "NetStream.Failed";
}

/// The information object of `onStatus`, `_result` and `_error`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusInfo {
    /// "status", "warning" or "error".
    pub level: String,
    /// e.g. `NetStream.Publish.Start`.
    pub code: String,
    /// Free text.
    pub description: String,
}

impl StatusInfo {
    /// A status-level info object.
    pub fn new(level: &str, code: &str, description: &str) -> Self {
        StatusInfo {
            level: level.to_owned(),
            code: code.to_owned(),
            description: description.to_owned(),
        }
    }

    /// Reads level / code / description from an object.
    pub fn from_object(o: &Amf0Object) -> Self {
        StatusInfo {
            level: o.get_str("level").unwrap_or_default().to_owned(),
            code: o.get_str("code").unwrap_or_default().to_owned(),
            description: o.get_str("description").unwrap_or_default().to_owned(),
        }
    }

    /// As an AMF0 object with level, code and description, in that order.
    pub fn to_object(&self) -> Amf0Object {
        Amf0Object::new()
            .with("level", self.level.as_str())
            .with("code", self.code.as_str())
            .with("description", self.description.as_str())
    }

    /// Whether the level is "error" or the code names a failure.
    pub fn is_error(&self) -> bool {
        self.level == status::LEVEL_ERROR
            || self.code.ends_with(".Failed")
            || self.code.ends_with(".Rejected")
            || self.code.ends_with(".BadName")
            || self.code.ends_with(".StreamNotFound")
    }
}

/// An AMF0 command (§7.2). Typed constructors build the ones RTMP clients
/// and servers exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The command name, e.g. `connect`, `_result`, `onStatus`.
    pub name: String,
    /// Transaction id: 1 for connect, 0 for notifications.
    pub transaction_id: f64,
    /// The command object (Null for most commands).
    pub command_object: Amf0Value,
    /// Optional arguments.
    pub args: Vec<Amf0Value>,
}

impl Command {
    /// A command from its parts.
    pub fn new(
        name: &str,
        transaction_id: f64,
        command_object: Amf0Value,
        args: Vec<Amf0Value>,
    ) -> Self {
        Command {
            name: name.to_owned(),
            transaction_id,
            command_object,
            args,
        }
    }

    /// `connect` (§7.2.1.1), transaction 1.
    pub fn connect(object: Amf0Object) -> Self {
        Self::new("connect", 1.0, Amf0Value::Object(object), vec![])
    }

    /// `createStream` (§7.2.1.3).
    pub fn create_stream(transaction_id: f64) -> Self {
        Self::new("createStream", transaction_id, Amf0Value::Null, vec![])
    }

    /// `releaseStream` (FMLE; sent before publish by FFmpeg and OBS).
    pub fn release_stream(transaction_id: f64, name: &str) -> Self {
        Self::new(
            "releaseStream",
            transaction_id,
            Amf0Value::Null,
            vec![name.into()],
        )
    }

    /// `FCPublish` (FMLE; the server may answer `onFCPublish`).
    pub fn fc_publish(transaction_id: f64, name: &str) -> Self {
        Self::new(
            "FCPublish",
            transaction_id,
            Amf0Value::Null,
            vec![name.into()],
        )
    }

    /// `FCUnpublish`, sent on a clean stop.
    pub fn fc_unpublish(transaction_id: f64, name: &str) -> Self {
        Self::new(
            "FCUnpublish",
            transaction_id,
            Amf0Value::Null,
            vec![name.into()],
        )
    }

    /// `publish` (§7.2.2.6): name and type ("live", "record" or "append").
    pub fn publish(transaction_id: f64, name: &str, kind: &str) -> Self {
        Self::new(
            "publish",
            transaction_id,
            Amf0Value::Null,
            vec![name.into(), kind.into()],
        )
    }

    /// `play` (§7.2.2.1): name, and `start` (-2: live or recorded, -1: live
    /// only, >= 0: recorded from that second); `None` leaves it out.
    pub fn play(transaction_id: f64, name: &str, start: Option<f64>) -> Self {
        let mut args = vec![name.into()];
        if let Some(s) = start {
            args.push(Amf0Value::Number(s));
        }
        Self::new("play", transaction_id, Amf0Value::Null, args)
    }

    /// `deleteStream` (§7.2.2.3).
    pub fn delete_stream(transaction_id: f64, stream_id: u32) -> Self {
        Self::new(
            "deleteStream",
            transaction_id,
            Amf0Value::Null,
            vec![stream_id.into()],
        )
    }

    /// `_result` with a properties value and an information value.
    pub fn result(transaction_id: f64, properties: Amf0Value, info: Amf0Value) -> Self {
        Self::new("_result", transaction_id, properties, vec![info])
    }

    /// `_error` with a status information object.
    pub fn error(transaction_id: f64, info: &StatusInfo) -> Self {
        Self::new(
            "_error",
            transaction_id,
            Amf0Value::Null,
            vec![Amf0Value::Object(info.to_object())],
        )
    }

    /// `onStatus` (§7.2.2): transaction 0, null object, the info object.
    pub fn on_status(info: &StatusInfo) -> Self {
        Self::new(
            "onStatus",
            0.0,
            Amf0Value::Null,
            vec![Amf0Value::Object(info.to_object())],
        )
    }

    /// `onBWDone`, sent by servers after connect.
    pub fn on_bw_done() -> Self {
        Self::new("onBWDone", 0.0, Amf0Value::Null, vec![])
    }

    /// `_checkbw`, a client's answer to `onBWDone`.
    pub fn check_bw(transaction_id: f64) -> Self {
        Self::new("_checkbw", transaction_id, Amf0Value::Null, vec![])
    }

    /// `onFCPublish` with the given info.
    pub fn on_fc_publish(info: &StatusInfo) -> Self {
        Self::new(
            "onFCPublish",
            0.0,
            Amf0Value::Null,
            vec![Amf0Value::Object(info.to_object())],
        )
    }

    /// `onFCUnpublish` with the given info.
    pub fn on_fc_unpublish(info: &StatusInfo) -> Self {
        Self::new(
            "onFCUnpublish",
            0.0,
            Amf0Value::Null,
            vec![Amf0Value::Object(info.to_object())],
        )
    }

    /// The command object, if it is an object.
    pub fn object(&self) -> Option<&Amf0Object> {
        self.command_object.as_object()
    }

    /// The first argument that is an object: the information object of
    /// `_result`, `_error` and `onStatus`.
    pub fn info_object(&self) -> Option<&Amf0Object> {
        self.args.iter().find_map(Amf0Value::as_object)
    }

    /// The status of `_result`, `_error` and `onStatus`, when an info object is there.
    pub fn status(&self) -> Option<StatusInfo> {
        self.info_object().map(StatusInfo::from_object)
    }

    /// The first argument as a string: the stream name of publish, play,
    /// releaseStream, FCPublish, FCUnpublish.
    pub fn stream_name(&self) -> Option<&str> {
        self.args.first().and_then(Amf0Value::as_str)
    }

    /// The first argument as a number: the stream id of a createStream
    /// `_result` or of deleteStream.
    pub fn first_number(&self) -> Option<f64> {
        self.args.first().and_then(Amf0Value::as_number)
    }

    /// Decodes a command from AMF0 bytes.
    pub fn decode(p: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Amf0Reader::new(p);
        let name = match r.read_value()? {
            // An AMF3 string after the switch marker is a name too.
            v if v.as_str().is_some() => v.as_str().unwrap_or_default().to_owned(),
            other => {
                return Err(DecodeError::invalid(
                    "command",
                    format!("name is {other:?}, not a string"),
                ));
            }
        };
        let transaction_id = if r.is_empty() {
            0.0
        } else {
            match r.read_value()? {
                v if v.as_number().is_some() => v.as_number().unwrap_or_default(),
                other => {
                    return Err(DecodeError::invalid(
                        "command",
                        format!("{name}: transaction id is {other:?}, not a number"),
                    ));
                }
            }
        };
        let command_object = if r.is_empty() {
            Amf0Value::Null
        } else {
            r.read_value()?
        };
        let args = r.read_all()?;
        Ok(Command {
            name,
            transaction_id,
            command_object,
            args,
        })
    }

    /// Appends the AMF0 encoding.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        amf0::encode(&Amf0Value::String(self.name.clone()), out);
        amf0::encode(&Amf0Value::Number(self.transaction_id), out);
        amf0::encode(&self.command_object, out);
        for a in &self.args {
            amf0::encode(a, out);
        }
    }
}
