//! [`Media`]: one audio, video or metadata message, the unit that travels
//! from a publisher's session through a server to every player's session.
//!
//! The tag header is parsed once, where the message enters (the receiving
//! session, or [`Media::new`] for a file): keyframe, sequence header and
//! codec are fields, so nobody downstream parses the payload again.

use super::{AudioCodec, AudioTagHeader, VideoCodec, VideoTagHeader};
use crate::Timestamp;
use crate::message::type_id;
use bytes::Bytes;

/// What a [`Media`] message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// `onMetaData` (RTMP type 18; an FLV script tag body).
    Metadata,
    /// An FLV audio tag body (RTMP type 8).
    Audio,
    /// An FLV video tag body (RTMP type 9).
    Video,
}

impl MediaKind {
    /// The RTMP message type / FLV tag type: 18, 8 or 9.
    pub fn type_id(self) -> u8 {
        match self {
            MediaKind::Metadata => type_id::DATA_AMF0,
            MediaKind::Audio => type_id::AUDIO,
            MediaKind::Video => type_id::VIDEO,
        }
    }

    /// The kind of an RTMP message type / FLV tag type, if it is one.
    pub fn from_type_id(type_id: u8) -> Option<MediaKind> {
        match type_id {
            type_id::DATA_AMF0 => Some(MediaKind::Metadata),
            type_id::AUDIO => Some(MediaKind::Audio),
            type_id::VIDEO => Some(MediaKind::Video),
            _ => None,
        }
    }
}

/// The codec a tag header names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// A video codec (legacy CodecID or Enhanced RTMP FourCC).
    Video(VideoCodec),
    /// An audio codec (legacy SoundFormat or Enhanced RTMP FourCC).
    Audio(AudioCodec),
}

/// One media message, its payload shared (reference counted) by everyone
/// who holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// Metadata, audio or video.
    pub kind: MediaKind,
    /// Timestamp.
    pub timestamp: Timestamp,
    /// The tag body as the publisher sent it. For metadata: `onMetaData`
    /// and its values, without the `@setDataFrame` a publisher puts first.
    pub payload: Bytes,
    /// A video keyframe that starts a GOP (not a sequence header; on
    /// track 0 of a multitrack stream).
    pub keyframe: bool,
    /// Codec configuration: AVC / HEVC / AV1 decoder configuration record,
    /// AAC AudioSpecificConfig, Enhanced RTMP SequenceStart.
    pub sequence_header: bool,
    /// The codec the tag header names; `None` for metadata and for a
    /// header that does not parse (such a payload still travels).
    pub codec: Option<Codec>,
    /// The (first) track id of an E-RTMP Multitrack message. `None`: no
    /// Multitrack wrapper, the track every player understands (track 0).
    pub track: Option<u8>,
}

impl Media {
    /// A message of `kind`, its tag header parsed for the flags and codec.
    pub fn new(kind: MediaKind, timestamp: Timestamp, payload: Bytes) -> Media {
        let (keyframe, sequence_header, codec, track) = match kind {
            MediaKind::Video => match VideoTagHeader::parse(&payload) {
                Ok(h) => (
                    // A GOP starts on track 0's keyframes.
                    h.is_keyframe() && h.track.is_none_or(|t| t == 0),
                    h.is_sequence_header(),
                    Some(Codec::Video(h.codec)),
                    h.track,
                ),
                Err(_) => (false, false, None, None),
            },
            MediaKind::Audio => match AudioTagHeader::parse(&payload) {
                Ok(h) => (
                    false,
                    h.sequence_header,
                    Some(Codec::Audio(h.codec)),
                    h.track,
                ),
                Err(_) => (false, false, None, None),
            },
            MediaKind::Metadata => (false, false, None, None),
        };
        Media {
            kind,
            timestamp,
            payload,
            keyframe,
            sequence_header,
            codec,
            track,
        }
    }

    /// An audio message.
    pub fn audio(timestamp: Timestamp, payload: Bytes) -> Media {
        Media::new(MediaKind::Audio, timestamp, payload)
    }

    /// A video message.
    pub fn video(timestamp: Timestamp, payload: Bytes) -> Media {
        Media::new(MediaKind::Video, timestamp, payload)
    }

    /// A metadata message: an FLV script tag body (`onMetaData` ...).
    pub fn metadata(timestamp: Timestamp, payload: Bytes) -> Media {
        Media::new(MediaKind::Metadata, timestamp, payload)
    }

    /// The RTMP message type: 18, 8 or 9.
    pub fn type_id(&self) -> u8 {
        self.kind.type_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_codec_come_from_the_tag_header() {
        let seq = Media::video(Timestamp(0), Bytes::from_static(&[0x17, 0, 0, 0, 0]));
        assert!(seq.sequence_header && !seq.keyframe);
        assert_eq!(seq.codec, Some(Codec::Video(VideoCodec::Legacy(7))));
        let key = Media::video(Timestamp(40), Bytes::from_static(&[0x17, 1, 0, 0, 0, 9]));
        assert!(key.keyframe && !key.sequence_header);
        let hevc = Media::video(Timestamp(0), Bytes::from_static(b"\x90hvc1\x01"));
        assert_eq!(hevc.codec, Some(Codec::Video(VideoCodec::FourCc(*b"hvc1"))));
        let asc = Media::audio(Timestamp(0), Bytes::from_static(&[0xaf, 0, 0x12, 0x10]));
        assert!(asc.sequence_header);
        let opus = Media::audio(Timestamp(0), Bytes::from_static(b"\x91Opus\x00"));
        assert_eq!(opus.codec, Some(Codec::Audio(AudioCodec::FourCc(*b"Opus"))));
        let broken = Media::video(Timestamp(0), Bytes::new());
        assert_eq!((broken.keyframe, broken.codec), (false, None));
        assert_eq!(MediaKind::from_type_id(9), Some(MediaKind::Video));
        assert_eq!(MediaKind::from_type_id(20), None);
    }
}
