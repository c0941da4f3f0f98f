//! The one error type of the protocol core, grouped by who is at fault.

use thiserror::Error;

/// Any failure of the protocol core.
///
/// Grouped by who is at fault: the bytes were malformed ([`Error::Decode`]),
/// well-formed bytes broke the protocol ([`Error::Protocol`]), the handshake
/// failed ([`Error::Handshake`]), the peer refused us ([`Error::Rejected`]), or
/// the caller used the API wrongly ([`Error::Misuse`]).
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum Error {
    /// Malformed bytes from the peer.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Well-formed bytes that break the protocol or one of our limits.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The handshake could not be completed.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// The peer refused a request (`_error`, or an error-level `onStatus`).
    #[error("rejected by peer: {code} ({description})")]
    Rejected {
        /// The status code, e.g. `NetStream.Publish.BadName`.
        code: String,
        /// The peer's description, possibly empty.
        description: String,
    },
    /// The caller used the API in a way the protocol does not allow.
    #[error("misuse: {0}")]
    Misuse(&'static str),
}

/// Malformed bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a value whose length is known to be larger.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// An AMF0 type marker that does not exist.
    #[error("invalid amf0 marker 0x{0:02x}")]
    InvalidAmf0Marker(u8),
    /// An AMF0 marker that is reserved and carries no defined encoding
    /// (MovieClip 0x04, RecordSet 0x0E).
    #[error("reserved amf0 marker 0x{0:02x} is not supported")]
    ReservedAmf0Marker(u8),
    /// An AMF3 type marker that does not exist (AMF 3 Specification §3.1).
    #[error("invalid amf3 marker 0x{0:02x}")]
    InvalidAmf3Marker(u8),
    /// An AMF3 reference (§2.2) to an entry its table does not hold, or
    /// to a value still being decoded (a cycle).
    #[error("amf3 {table} reference {index} points to nothing")]
    Amf3BadReference {
        /// "string", "traits" or "object".
        table: &'static str,
        /// The index sent.
        index: usize,
    },
    /// More entries in an AMF3 reference table than allowed.
    #[error("more than 65535 amf3 {0} references")]
    Amf3TooManyReferences(&'static str),
    /// AMF3 references that would copy more than the budget of the
    /// message (a few bytes can reference each other into gigabytes).
    #[error("amf3 value expands past its budget")]
    Amf3TooLarge,
    /// An externalizable AMF3 object (§3.12): its bytes are private to its
    /// class, so nothing after it can be read.
    #[error("amf3 externalizable object of class {0:?} cannot be decoded")]
    Amf3Externalizable(String),
    /// AMF values nested deeper than the limit.
    #[error("amf nesting deeper than {0} levels")]
    NestingTooDeep(usize),
    /// A message whose payload does not have the shape its type requires.
    #[error("invalid {what} message: {detail}")]
    InvalidMessage {
        /// Which message.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// Bytes left over after a value that should end the input.
    #[error("{0} trailing bytes after {1}")]
    TrailingBytes(usize, &'static str),
    /// Not an FLV stream.
    #[error("not an flv file (signature {0:02x?})")]
    NotFlv([u8; 3]),
    /// A media tag header that cannot be parsed.
    #[error("invalid media tag: {0}")]
    InvalidMediaTag(&'static str),
}

/// Well-formed input that breaks the protocol or a configured limit.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Set Chunk Size outside the allowed range (Adobe RTMP 1.0 §5.4.1).
    #[error("chunk size {size} outside {min}..={max}")]
    ChunkSizeOutOfRange {
        /// The requested size.
        size: u32,
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// A message longer than the configured maximum.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    MessageTooLong {
        /// Announced length.
        len: u32,
        /// Limit.
        max: u32,
    },
    /// More chunk streams with partial messages than allowed.
    #[error("more than {0} chunk streams in use")]
    TooManyChunkStreams(usize),
    /// The bytes buffered for partial messages exceed the limit.
    #[error("partial messages hold more than {0} bytes")]
    TooMuchBuffered(usize),
    /// A chunk refers to header state that was never established.
    #[error("chunk stream {0} continues a message header that was never sent")]
    MissingHeader(u32),
    /// A message with a length that changed in the middle of a message.
    #[error("chunk stream {0}: new header while a message is in progress")]
    HeaderInsideMessage(u32),
    /// A message that is not allowed at this point of the session.
    #[error("unexpected {0}")]
    Unexpected(String),
}

/// The handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The peer asked for a protocol version we do not speak.
    #[error("unsupported rtmp version {0} (encrypted rtmpe is 6 or 8; plain rtmp is 3)")]
    UnsupportedVersion(u8),
    /// The first byte is a TLS handshake record (0x16): an `rtmps://`
    /// client on a plain RTMP port.
    #[error("the peer speaks TLS (rtmps://) on a plain rtmp port")]
    TlsOnPlainPort,
}

impl Error {
    /// What a session tells its peer before it closes because of this
    /// error: the code of an error-level `onStatus` on the connection (the
    /// description is this error's text), or nothing. This is the one place
    /// that decides it (as rustls maps its errors to alerts).
    ///
    /// - Malformed bytes: `NetConnection.Call.BadVersion`, the code FMS
    ///   documents for "packet encoded in an unidentified format".
    /// - Valid bytes that break the protocol or a limit:
    ///   `NetConnection.Call.Failed`, with our reason.
    /// - A failed handshake: nothing (there is no chunk stream to speak on).
    /// - The peer refused us, or our own misuse: nothing to tell.
    pub fn peer_status(&self) -> Option<&'static str> {
        match self {
            Error::Decode(_) => Some("NetConnection.Call.BadVersion"),
            Error::Protocol(_) => Some("NetConnection.Call.Failed"),
            Error::Handshake(_) | Error::Rejected { .. } | Error::Misuse(_) => None,
        }
    }

    /// Whether the peer broke the protocol: malformed bytes, a protocol
    /// violation or a failed handshake.
    pub fn is_protocol(&self) -> bool {
        matches!(
            self,
            Error::Decode(_) | Error::Protocol(_) | Error::Handshake(_)
        )
    }

    /// Whether the peer refused a request.
    pub fn is_rejected(&self) -> bool {
        matches!(self, Error::Rejected { .. })
    }

    /// The peer's status code, when the peer refused a request.
    pub fn status_code(&self) -> Option<&str> {
        match self {
            Error::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl DecodeError {
    pub(crate) fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        DecodeError::InvalidMessage {
            what,
            detail: detail.into(),
        }
    }
}

/// Results of the protocol core.
pub type Result<T, E = Error> = std::result::Result<T, E>;
