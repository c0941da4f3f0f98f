//! Audio and video tag headers (FLV / RTMP payload bytes), legacy and
//! Enhanced RTMP.
//!
//! Legacy video (FLV spec E.4.3.1): `frameType(4) | codecId(4)`, and for
//! AVC (7) `AVCPacketType(8) | CompositionTime(SI24)`. Enhanced RTMP
//! (v1/v2, "ExVideoTagHeader"): `isEx(1) | frameType(3) | packetType(4)`,
//! then a FourCC such as `hvc1`, `av01`, `vp09`.
//!
//! Legacy audio (E.4.2.1): `soundFormat(4) | rate(2) | size(1) | type(1)`,
//! and for AAC (10) `AACPacketType(8)`. Enhanced audio uses soundFormat 9
//! with `audioPacketType(4)` and a FourCC.

mod aac;
mod additional;
mod av1;
mod codec;
mod describe;
mod ex;
mod frame_error;
mod h264;
mod hevc;
mod message;
mod nal;
mod rendition;
mod unpack;

pub use aac::{
    AacPackager, AdtsHeader, OpusPackager, aac_config, adts_frames, is_adts, opus_head, parse_adts,
};
pub use additional::{ADDITIONAL_MEDIA, ON_EXPECT_ADDITIONAL_MEDIA, additional_media_audio};
pub use av1::{
    Av1Info, Av1Packager, av1_config, av1_temporal_units, parse_av1_config, parse_sequence_header,
};
pub use codec::{AacInfo, AvcInfo, parse_aac_config, parse_avc_config};
pub use describe::Describer;
pub use ex::{ExHeader, ExTrack, ExTracks, MultitrackType};
pub use frame_error::FrameError;
pub use h264::{H264Packager, avc_config, h264_access_units};
pub use hevc::{HevcInfo, HevcPackager, hevc_access_units, hevc_config, parse_hevc_config};
pub use message::{Codec, Media, MediaKind};
pub use nal::nal_units;
pub use rendition::{audio_rendition, rendition};
pub use unpack::{CodedFrame, DecoderConfig, Frame, FrameCodec, frame};

use crate::error::DecodeError;

/// Video frame type (FLV E.4.3.1 / E-RTMP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameType {
    /// 1: keyframe (seekable).
    Key,
    /// 2: inter frame.
    Inter,
    /// 3: disposable inter frame (H.263 only).
    DisposableInter,
    /// 4: generated keyframe (server use).
    GeneratedKey,
    /// 5: video info / command frame.
    Command,
    /// Anything else.
    Other(u8),
}

impl FrameType {
    fn from_bits(v: u8) -> Self {
        match v {
            1 => FrameType::Key,
            2 => FrameType::Inter,
            3 => FrameType::DisposableInter,
            4 => FrameType::GeneratedKey,
            5 => FrameType::Command,
            x => FrameType::Other(x),
        }
    }
}

/// The video codec of a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// A legacy FLV CodecID (7 = AVC; 12 = HEVC and 13 = AV1 in the
    /// non-standard Chinese-ecosystem extension).
    Legacy(u8),
    /// An Enhanced RTMP FourCC (`avc1`, `hvc1`, `av01`, `vp09`, `vp08`, `vvc1`).
    FourCc([u8; 4]),
}

impl VideoCodec {
    /// Whether this is H.264 (legacy id 7 or `avc1`).
    pub fn is_avc(self) -> bool {
        matches!(
            self,
            VideoCodec::Legacy(7) | VideoCodec::FourCc([b'a', b'v', b'c', b'1'])
        )
    }

    /// Its short name, as ffprobe says it (`h264`, `hevc`, `av1`, `vp9`,
    /// ...); an unknown codec by its id or FourCC.
    pub fn name(self) -> String {
        match self {
            VideoCodec::Legacy(7) => "h264".into(),
            VideoCodec::Legacy(12) => "hevc".into(),
            VideoCodec::Legacy(2) => "h263".into(),
            VideoCodec::Legacy(4) | VideoCodec::Legacy(5) => "vp6".into(),
            VideoCodec::Legacy(x) => format!("codec id {x}"),
            VideoCodec::FourCc(f) => match &f {
                b"avc1" => "h264".into(),
                b"hvc1" => "hevc".into(),
                b"av01" => "av1".into(),
                b"vp09" => "vp9".into(),
                b"vp08" => "vp8".into(),
                _ => fourcc(f),
            },
        }
    }

    /// Whether this is H.265 (`hvc1`, or the legacy id 12 used by SRS).
    pub fn is_hevc(self) -> bool {
        matches!(
            self,
            VideoCodec::Legacy(12) | VideoCodec::FourCc([b'h', b'v', b'c', b'1'])
        )
    }
}

/// What a video tag carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoPacketKind {
    /// Codec configuration (AVC sequence header / E-RTMP SequenceStart).
    SequenceHeader,
    /// Coded frames.
    Frame,
    /// End of sequence.
    SequenceEnd,
    /// E-RTMP Metadata (e.g. HDR colorInfo).
    Metadata,
    /// E-RTMP Multitrack or ModEx, or anything not listed.
    Other(u8),
}

/// A parsed video tag header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoTagHeader {
    /// Frame type.
    pub frame_type: FrameType,
    /// Codec.
    pub codec: VideoCodec,
    /// Packet kind.
    pub kind: VideoPacketKind,
    /// Composition time offset in ms (AVC / HEVC CodedFrames), else 0.
    pub composition_time: i32,
    /// Whether this is an Enhanced RTMP ExVideoTagHeader.
    pub enhanced: bool,
    /// Bytes of header before the (first track's) codec payload.
    pub header_len: usize,
    /// The (first) track id of a Multitrack message; `None` without the
    /// wrapper (track 0, which every player understands).
    pub track: Option<u8>,
}

impl VideoTagHeader {
    /// Parses the header at the start of a video payload.
    pub fn parse(p: &[u8]) -> Result<Self, DecodeError> {
        let b0 = *p
            .first()
            .ok_or(DecodeError::InvalidMediaTag("empty video tag"))?;
        let si24 = |s: &[u8]| -> i32 {
            let v = i32::from(s[0]) << 16 | i32::from(s[1]) << 8 | i32::from(s[2]);
            (v << 8) >> 8
        };
        if b0 & 0x80 != 0 {
            // E-RTMP ExVideoTagHeader: ModEx, command, Multitrack, FourCC.
            let ex = ExHeader::parse(p, true)?;
            let frame_type = FrameType::from_bits(ex.frame_type.unwrap_or(0));
            let kind = match ex.packet_type {
                _ if ex.command.is_some() => VideoPacketKind::Other(ex.packet_type),
                0 => VideoPacketKind::SequenceHeader,
                1 | 3 => VideoPacketKind::Frame,
                2 => VideoPacketKind::SequenceEnd,
                4 => VideoPacketKind::Metadata,
                x => VideoPacketKind::Other(x),
            };
            let first = match ex.tracks(p).next() {
                Some(t) => Some(t?),
                None => None,
            };
            let fourcc = first.map_or(ex.fourcc.unwrap_or_default(), |t| t.fourcc);
            let mut header_len = first.map_or(p.len(), |t| p.len() - t.payload.len());
            let mut cts = 0;
            // CodedFrames: avc1/hvc1/vvc1 carry SI24 compositionTimeOffset.
            if ex.packet_type == 1 && matches!(&fourcc, b"avc1" | b"hvc1" | b"vvc1") {
                let c = first
                    .and_then(|t| t.payload.get(..3))
                    .ok_or(DecodeError::InvalidMediaTag("coded frames without cts"))?;
                cts = si24(c);
                header_len += 3;
            }
            return Ok(VideoTagHeader {
                frame_type,
                codec: VideoCodec::FourCc(fourcc),
                kind,
                composition_time: cts,
                enhanced: true,
                header_len,
                track: ex.multitrack.and(first.map(|t| t.id)),
            });
        }
        let frame_type = FrameType::from_bits(b0 >> 4);
        let codec_id = b0 & 0x0f;
        // AVC, and HEVC / AV1 under the legacy ids SRS uses, have the
        // AVCPacketType + CompositionTime layout.
        if matches!(codec_id, 7 | 12 | 13) {
            let h = p.get(1..5).ok_or(DecodeError::InvalidMediaTag(
                "avc video tag shorter than 5 bytes",
            ))?;
            let kind = match h[0] {
                0 => VideoPacketKind::SequenceHeader,
                1 => VideoPacketKind::Frame,
                2 => VideoPacketKind::SequenceEnd,
                x => VideoPacketKind::Other(x),
            };
            return Ok(VideoTagHeader {
                frame_type,
                codec: VideoCodec::Legacy(codec_id),
                kind,
                composition_time: si24(&h[1..4]),
                enhanced: false,
                header_len: 5,
                track: None,
            });
        }
        Ok(VideoTagHeader {
            frame_type,
            codec: VideoCodec::Legacy(codec_id),
            kind: VideoPacketKind::Frame,
            composition_time: 0,
            enhanced: false,
            header_len: 1,
            track: None,
        })
    }

    /// Whether the tag starts a GOP: a keyframe that is not a sequence header.
    pub fn is_keyframe(&self) -> bool {
        self.frame_type == FrameType::Key && self.kind == VideoPacketKind::Frame
    }

    /// Whether the tag is codec configuration.
    pub fn is_sequence_header(&self) -> bool {
        self.kind == VideoPacketKind::SequenceHeader
    }
}

/// The audio codec of a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// A legacy SoundFormat (10 = AAC, 2 = MP3, 13 = Opus in the Chinese-ecosystem extension).
    Legacy(u8),
    /// An Enhanced RTMP FourCC (`mp4a`, `Opus`, `fLaC`, `ac-3`, `ec-3`, `.mp3`).
    FourCc([u8; 4]),
}

impl AudioCodec {
    /// Its short name, as ffprobe says it (`aac`, `opus`, `mp3`, ...); an
    /// unknown codec by its sound format or FourCC.
    pub fn name(self) -> String {
        match self {
            AudioCodec::Legacy(10) => "aac".into(),
            AudioCodec::Legacy(2) | AudioCodec::Legacy(14) => "mp3".into(),
            AudioCodec::Legacy(11) => "speex".into(),
            AudioCodec::Legacy(7) => "g711a".into(),
            AudioCodec::Legacy(8) => "g711u".into(),
            AudioCodec::Legacy(13) => "opus".into(),
            AudioCodec::Legacy(x) => format!("sound format {x}"),
            AudioCodec::FourCc(f) => match &f {
                b"mp4a" => "aac".into(),
                b"Opus" => "opus".into(),
                b"fLaC" => "flac".into(),
                b".mp3" => "mp3".into(),
                _ => fourcc(f),
            },
        }
    }

    /// Whether this is AAC (legacy 10 or `mp4a`).
    pub fn is_aac(self) -> bool {
        matches!(
            self,
            AudioCodec::Legacy(10) | AudioCodec::FourCc([b'm', b'p', b'4', b'a'])
        )
    }

    /// Whether this is Opus (`Opus`, or the legacy 13 of the
    /// Chinese-ecosystem extension).
    pub fn is_opus(self) -> bool {
        matches!(
            self,
            AudioCodec::Legacy(13) | AudioCodec::FourCc([b'O', b'p', b'u', b's'])
        )
    }
}

/// A FourCC as text, without trailing NULs.
fn fourcc(c: [u8; 4]) -> String {
    String::from_utf8_lossy(&c)
        .trim_end_matches('\0')
        .to_owned()
}

/// A parsed audio tag header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioTagHeader {
    /// Codec.
    pub codec: AudioCodec,
    /// Legacy sound rate index (0: 5.5 kHz, 1: 11 kHz, 2: 22 kHz, 3: 44 kHz).
    pub rate_index: u8,
    /// Legacy: 16-bit samples.
    pub sixteen_bit: bool,
    /// Legacy: stereo.
    pub stereo: bool,
    /// AAC sequence header / E-RTMP SequenceStart.
    pub sequence_header: bool,
    /// Coded audio: not a sequence header, nor an E-RTMP SequenceEnd or
    /// MultichannelConfig.
    pub coded: bool,
    /// Bytes of header before the (first track's) codec payload.
    pub header_len: usize,
    /// The (first) track id of a Multitrack message; `None` without the
    /// wrapper.
    pub track: Option<u8>,
}

impl AudioTagHeader {
    /// Parses the header at the start of an audio payload.
    pub fn parse(p: &[u8]) -> Result<Self, DecodeError> {
        let b0 = *p
            .first()
            .ok_or(DecodeError::InvalidMediaTag("empty audio tag"))?;
        let format = b0 >> 4;
        if format == 9 {
            let ex = ExHeader::parse(p, false)?;
            let first = match ex.tracks(p).next() {
                Some(t) => Some(t?),
                None => None,
            };
            return Ok(AudioTagHeader {
                codec: AudioCodec::FourCc(
                    first.map_or(ex.fourcc.unwrap_or_default(), |t| t.fourcc),
                ),
                rate_index: 0,
                sixteen_bit: false,
                stereo: false,
                sequence_header: ex.packet_type == 0,
                coded: ex.packet_type == 1,
                header_len: first.map_or(p.len(), |t| p.len() - t.payload.len()),
                track: ex.multitrack.and(first.map(|t| t.id)),
            });
        }
        let (seq, len) = if format == 10 {
            let t = *p.get(1).ok_or(DecodeError::InvalidMediaTag(
                "aac audio tag without packet type",
            ))?;
            (t == 0, 2)
        } else {
            (false, 1)
        };
        Ok(AudioTagHeader {
            codec: AudioCodec::Legacy(format),
            rate_index: (b0 >> 2) & 3,
            sixteen_bit: b0 & 2 != 0,
            stereo: b0 & 1 != 0,
            sequence_header: seq,
            coded: !seq,
            header_len: len,
            track: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avc_headers() {
        let seq = VideoTagHeader::parse(&[0x17, 0, 0, 0, 0, 1, 0x64]).unwrap();
        assert!(seq.is_sequence_header() && !seq.is_keyframe());
        assert!(seq.codec.is_avc());
        let key = VideoTagHeader::parse(&[0x17, 1, 0, 0, 0x50, 0]).unwrap();
        assert!(key.is_keyframe());
        assert_eq!(key.composition_time, 80);
        let inter = VideoTagHeader::parse(&[0x27, 1, 0xff, 0xff, 0xd8]).unwrap();
        assert_eq!(inter.frame_type, FrameType::Inter);
        assert_eq!(inter.composition_time, -40);
        assert!(VideoTagHeader::parse(&[0x17, 1]).is_err());
        assert!(VideoTagHeader::parse(&[]).is_err());
    }

    #[test]
    fn enhanced_headers() {
        // isEx | Key | SequenceStart, hvc1.
        let h = VideoTagHeader::parse(b"\x90hvc1\x01").unwrap();
        assert!(h.enhanced && h.is_sequence_header() && h.codec.is_hevc());
        // Key | CodedFrames, hvc1, cts 0x000021.
        let h = VideoTagHeader::parse(b"\x91hvc1\x00\x00\x21\x00").unwrap();
        assert!(h.is_keyframe());
        assert_eq!(h.composition_time, 33);
        assert_eq!(h.header_len, 8);
        // Inter | CodedFramesX, av01: no cts.
        let h = VideoTagHeader::parse(b"\xa3av01\x00").unwrap();
        assert_eq!(h.codec, VideoCodec::FourCc(*b"av01"));
        assert_eq!(h.frame_type, FrameType::Inter);
        assert_eq!(h.header_len, 5);
        assert!(VideoTagHeader::parse(b"\x91hv").is_err());
        assert!(VideoTagHeader::parse(b"\x91hvc1\x00").is_err());
    }

    #[test]
    fn audio_headers() {
        let a = AudioTagHeader::parse(&[0xaf, 0, 0x12, 0x10]).unwrap();
        assert_eq!(a.codec, AudioCodec::Legacy(10));
        assert!(a.sequence_header && a.stereo && a.sixteen_bit);
        assert_eq!(a.rate_index, 3);
        let a = AudioTagHeader::parse(&[0xaf, 1, 0x21]).unwrap();
        assert!(!a.sequence_header);
        let e = AudioTagHeader::parse(b"\x90Opus").unwrap();
        assert_eq!(e.track, None);
        // An extra AAC track as FFmpeg and OBS send it: Multitrack OneTrack.
        let t = AudioTagHeader::parse(b"\x95\x00mp4a\x01\x12\x10").unwrap();
        assert_eq!(
            (t.track, t.sequence_header, t.header_len),
            (Some(1), true, 7)
        );
        assert_eq!(e.codec, AudioCodec::FourCc(*b"Opus"));
        assert!(e.sequence_header);
        assert!(AudioTagHeader::parse(&[0xaf]).is_err());
        assert!(AudioTagHeader::parse(&[0x2f]).is_ok());
    }
}
