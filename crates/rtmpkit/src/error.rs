//! Errors of the tokio layer, with predicates in the style of hyper / h2.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// A step of starting a client session, named in timeout and close errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// DNS lookup and TCP connect.
    Connect,
    /// The TLS handshake of an `rtmps://` connection.
    Tls,
    /// C0/C1/C2 and S0/S1/S2.
    Handshake,
    /// The `connect` command and its `_result`.
    ConnectCommand,
    /// `createStream` and its `_result`.
    CreateStream,
    /// `publish` and `NetStream.Publish.Start`.
    Publish,
    /// `play` and `NetStream.Play.Start`.
    Play,
    /// Publishing or playing.
    Streaming,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "tcp connect",
            Stage::Tls => "TLS handshake",
            Stage::Handshake => "handshake",
            Stage::ConnectCommand => "connect command",
            Stage::CreateStream => "createStream",
            Stage::Publish => "publish",
            Stage::Play => "play",
            Stage::Streaming => "streaming",
        })
    }
}

/// Any failure of a session, client or server side. `peer` names the other
/// end: the URL (without credentials) for a client, the address for a
/// connection the server accepted.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL could not be used.
    #[error(transparent)]
    Url(#[from] rtmpkit_proto::UrlError),
    /// A stage did not finish in time.
    #[error("{stage} with {peer} timed out after {}", fmt_duration(*.after))]
    Timeout {
        /// The stage that timed out.
        stage: Stage,
        /// The other end.
        peer: String,
        /// The limit that ran out.
        after: Duration,
    },
    /// A socket operation failed.
    #[error("{stage} with {peer} failed: {source}")]
    Io {
        /// The stage.
        stage: Stage,
        /// The other end.
        peer: String,
        /// The I/O error.
        #[source]
        source: Arc<io::Error>,
    },
    /// The server refused: `_error`, `NetConnection.Connect.Rejected`,
    /// `NetStream.Publish.BadName`, `NetStream.Play.StreamNotFound`, ...
    #[error("{stage} rejected by {peer}: {code}{}", fmt_description(description))]
    Rejected {
        /// The stage that was refused.
        stage: Stage,
        /// The other end.
        peer: String,
        /// The server's status code.
        code: String,
        /// The server's description.
        description: String,
    },
    /// The peer closed the connection.
    #[error("{peer} closed the connection during {stage}")]
    Closed {
        /// The stage.
        stage: Stage,
        /// The other end.
        peer: String,
    },
    /// The peer broke the protocol or sent malformed bytes.
    #[error("{stage} with {peer}: {source}")]
    Protocol {
        /// The stage.
        stage: Stage,
        /// The other end.
        peer: String,
        /// What the protocol core said.
        #[source]
        source: rtmpkit_proto::Error,
    },
    /// The TLS handshake failed (the reason names the cause: unknown CA,
    /// name mismatch, expired certificate, not TLS, closed).
    #[error("TLS handshake with {peer} failed: {reason}")]
    Tls {
        /// The other end.
        peer: String,
        /// Why, in one phrase.
        reason: String,
    },
    /// The peer took no data for this long (a stalled reader).
    #[error("{peer} took no data for {}", fmt_duration(*.after))]
    WriteStalled {
        /// The other end.
        peer: String,
        /// The limit that ran out.
        after: Duration,
    },
    /// The session was disposed.
    #[error("session disposed")]
    Disposed,
    /// The API was used in a way it does not allow.
    #[error("{0}")]
    Misuse(&'static str),
    /// Not supported (yet).
    #[error("{0}")]
    Unsupported(&'static str),
    /// A frame given to a frame-level write cannot be sent (no parameter
    /// sets yet, malformed NAL units, ...).
    #[error("the frame cannot be sent: {0}")]
    Frame(rtmpkit_proto::media::FrameError),
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

fn fmt_description(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!(" ({d})")
    }
}

impl Error {
    /// Whether a stage timed out, or the peer stopped taking data.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. } | Error::WriteStalled { .. })
    }

    /// Whether the peer broke the protocol (malformed bytes, a protocol
    /// violation, a failed handshake).
    pub fn is_protocol(&self) -> bool {
        matches!(self, Error::Protocol { source, .. } if source.is_protocol())
    }

    /// Whether the server refused.
    pub fn is_rejected(&self) -> bool {
        matches!(self, Error::Rejected { .. })
    }

    /// Whether a socket operation failed.
    pub fn is_io(&self) -> bool {
        matches!(self, Error::Io { .. })
    }

    /// Whether the peer closed the connection.
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed { .. })
    }

    /// Whether the TLS handshake failed.
    pub fn is_tls(&self) -> bool {
        matches!(self, Error::Tls { .. })
    }

    /// Whether the session was disposed.
    pub fn is_disposed(&self) -> bool {
        matches!(self, Error::Disposed)
    }

    /// The server's status code, when it refused.
    pub fn status_code(&self) -> Option<&str> {
        match self {
            Error::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The stage the error happened in, where known.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            Error::Timeout { stage, .. }
            | Error::Io { stage, .. }
            | Error::Rejected { stage, .. }
            | Error::Closed { stage, .. }
            | Error::Protocol { stage, .. } => Some(*stage),
            _ => None,
        }
    }
}

impl Error {
    /// An I/O failure at `stage`.
    pub(crate) fn io(stage: Stage, peer: &str, source: io::Error) -> Error {
        Error::Io {
            stage,
            peer: peer.to_owned(),
            source: Arc::new(source),
        }
    }

    /// A failure of the protocol core at `stage`; a refusal keeps its code.
    pub(crate) fn from_core(stage: Stage, peer: &str, e: rtmpkit_proto::Error) -> Error {
        match e {
            rtmpkit_proto::Error::Rejected { code, description } => Error::Rejected {
                stage,
                peer: peer.to_owned(),
                code,
                description,
            },
            source => Error::Protocol {
                stage,
                peer: peer.to_owned(),
                source,
            },
        }
    }
}
