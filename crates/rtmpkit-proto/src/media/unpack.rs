//! Frame-level pull: a played message as a decoder wants it. The reverse
//! of the packagers: a sequence header becomes the codec's configuration
//! (the record, and for H.264 and HEVC its parameter sets; the
//! AudioSpecificConfig; the Opus ID header), a coded frame becomes the
//! access unit with its pts and dts, length-prefixed as carried or in
//! Annex B.

use super::message::{Media, MediaKind};
use super::{AudioTagHeader, ExHeader, VideoPacketKind, VideoTagHeader};
use bytes::{BufMut, Bytes, BytesMut};

/// The codecs a frame-level player tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameCodec {
    /// H.264 (legacy id 7, `avc1`).
    H264,
    /// HEVC (`hvc1`, legacy id 12).
    Hevc,
    /// AV1 (`av01`).
    Av1,
    /// AAC (legacy 10, `mp4a`).
    Aac,
    /// Opus (`Opus`).
    Opus,
    /// Anything else: the payload as carried.
    Other,
}

/// What one played message is to a decoder.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A decoder configuration: before the first frame, and again when it
    /// changes (a new resolution).
    Config(DecoderConfig),
    /// One access unit (video) or frame (audio).
    Coded(CodedFrame),
}

/// A decoder configuration from a sequence header.
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderConfig {
    /// Video or audio.
    pub kind: MediaKind,
    /// The codec.
    pub codec: FrameCodec,
    /// The record as carried: AVCDecoderConfigurationRecord,
    /// HEVCDecoderConfigurationRecord, AV1CodecConfigurationRecord, the
    /// AudioSpecificConfig, the Opus ID header.
    pub record: Bytes,
    /// H.264 and HEVC: the parameter sets in the record (VPS, SPS, PPS in
    /// its order), each a NAL unit without start code.
    pub parameter_sets: Vec<Bytes>,
}

/// One coded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct CodedFrame {
    /// Video or audio.
    pub kind: MediaKind,
    /// The codec.
    pub codec: FrameCodec,
    /// Presentation time, ms (dts plus the composition time).
    pub pts: i64,
    /// Decoding time, ms (the message's timestamp).
    pub dts: u32,
    /// A video keyframe.
    pub keyframe: bool,
    /// The frame as carried: for H.264 and HEVC, NAL units each after its
    /// 4-byte length; for AV1, OBUs; for audio, the raw frame or packet.
    pub data: Bytes,
}

impl CodedFrame {
    /// An H.264 or HEVC access unit in Annex B: each NAL unit after a
    /// 4-byte start code, and with `config`'s parameter sets first on a
    /// keyframe (where a decoder may start). Other codecs: `None`.
    pub fn annex_b(&self, config: Option<&DecoderConfig>) -> Option<Bytes> {
        if !matches!(self.codec, FrameCodec::H264 | FrameCodec::Hevc) {
            return None;
        }
        let nals = super::nal_units(&self.data).ok()?;
        let sets = match config {
            Some(c) if self.keyframe => c.parameter_sets.as_slice(),
            _ => &[],
        };
        let mut out = BytesMut::with_capacity(self.data.len() + 64);
        for nal in sets.iter().map(|b| &b[..]).chain(nals) {
            out.put_slice(&[0, 0, 0, 1]);
            out.put_slice(nal);
        }
        Some(out.freeze())
    }
}

fn video_codec(c: super::VideoCodec) -> FrameCodec {
    match c {
        c if c.is_avc() => FrameCodec::H264,
        c if c.is_hevc() => FrameCodec::Hevc,
        super::VideoCodec::FourCc(f) if &f == b"av01" => FrameCodec::Av1,
        _ => FrameCodec::Other,
    }
}

fn audio_codec(c: super::AudioCodec) -> FrameCodec {
    match c {
        c if c.is_aac() => FrameCodec::Aac,
        c if c.is_opus() => FrameCodec::Opus,
        _ => FrameCodec::Other,
    }
}

/// The payload of a tag's first track, after its headers.
fn body(m: &Media, header_len: usize, enhanced: bool) -> Option<Bytes> {
    let p = &m.payload;
    if !enhanced {
        return (header_len <= p.len()).then(|| p.slice(header_len..));
    }
    let ex = ExHeader::parse(p, m.kind == MediaKind::Video).ok()?;
    let track = ex.tracks(p).next()?.ok()?;
    let start = track.payload.as_ptr() as usize - p.as_ptr() as usize;
    let mut body = p.slice(start..start + track.payload.len());
    // CodedFrames of avc1/hvc1/vvc1 start with a composition time.
    if m.kind == MediaKind::Video
        && ex.packet_type == 1
        && matches!(&track.fourcc, b"avc1" | b"hvc1" | b"vvc1")
    {
        body = body.get(3..).map(|_| body.slice(3..))?;
    }
    Some(body)
}

/// The parameter sets of an AVC or HEVC configuration record.
fn parameter_sets(codec: FrameCodec, rec: &[u8]) -> Option<Vec<Bytes>> {
    let mut out = Vec::new();
    let nal = |at: usize| -> Option<(Bytes, usize)> {
        let len = usize::from(u16::from_be_bytes([*rec.get(at)?, *rec.get(at + 1)?]));
        let n = rec.get(at + 2..at + 2 + len)?;
        Some((Bytes::copy_from_slice(n), at + 2 + len))
    };
    match codec {
        FrameCodec::H264 => {
            let mut at = 6;
            for _ in 0..(rec.get(5)? & 0x1f) {
                let (n, next) = nal(at)?;
                out.push(n);
                at = next;
            }
            let pps = *rec.get(at)?;
            at += 1;
            for _ in 0..pps {
                let (n, next) = nal(at)?;
                out.push(n);
                at = next;
            }
        }
        FrameCodec::Hevc => {
            let mut at = 23;
            for _ in 0..*rec.get(22)? {
                let count = u16::from_be_bytes([*rec.get(at + 1)?, *rec.get(at + 2)?]);
                at += 3;
                for _ in 0..count {
                    let (n, next) = nal(at)?;
                    out.push(n);
                    at = next;
                }
            }
        }
        _ => {}
    }
    Some(out)
}

/// What a played message is to a decoder; `None` for metadata, a video
/// command or sequence end, and a tag that does not parse.
pub fn frame(m: &Media) -> Option<Frame> {
    match m.kind {
        MediaKind::Metadata => None,
        MediaKind::Video => {
            let h = VideoTagHeader::parse(&m.payload).ok()?;
            let codec = video_codec(h.codec);
            let data = body(m, h.header_len, h.enhanced)?;
            match h.kind {
                VideoPacketKind::SequenceHeader => Some(Frame::Config(DecoderConfig {
                    kind: MediaKind::Video,
                    codec,
                    parameter_sets: parameter_sets(codec, &data)?,
                    record: data,
                })),
                VideoPacketKind::Frame => Some(Frame::Coded(CodedFrame {
                    kind: MediaKind::Video,
                    codec,
                    pts: i64::from(m.timestamp.0) + i64::from(h.composition_time),
                    dts: m.timestamp.0,
                    keyframe: h.is_keyframe(),
                    data,
                })),
                _ => None,
            }
        }
        MediaKind::Audio => {
            let h = AudioTagHeader::parse(&m.payload).ok()?;
            let codec = audio_codec(h.codec);
            let enhanced = matches!(h.codec, super::AudioCodec::FourCc(_));
            let data = body(m, h.header_len, enhanced)?;
            if h.sequence_header {
                return Some(Frame::Config(DecoderConfig {
                    kind: MediaKind::Audio,
                    codec,
                    record: data,
                    parameter_sets: Vec::new(),
                }));
            }
            h.coded.then(|| {
                Frame::Coded(CodedFrame {
                    kind: MediaKind::Audio,
                    codec,
                    pts: i64::from(m.timestamp.0),
                    dts: m.timestamp.0,
                    keyframe: false,
                    data,
                })
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{AacPackager, H264Packager, OpusPackager};

    const SPS: [u8; 22] = [
        0x67, 0x42, 0xc0, 0x0d, 0xda, 0x05, 0x07, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40,
        0x00, 0x00, 0x0c, 0x83, 0xc5, 0x0a, 0xa8,
    ];
    const PPS: [u8; 4] = [0x68, 0xce, 0x3c, 0x80];

    #[test]
    fn what_the_packagers_make_unpacks_to_what_went_in() {
        let mut au = Vec::new();
        for n in [&SPS[..], &PPS, &[0x65, 0x88, 0x84, 0x21]] {
            au.extend_from_slice(&[0, 0, 0, 1]);
            au.extend_from_slice(n);
        }
        let tags = H264Packager::new().package(120, 80, &au).unwrap();
        let Some(Frame::Config(c)) = frame(&tags[0]) else {
            panic!("a config first")
        };
        assert_eq!((c.codec, c.kind), (FrameCodec::H264, MediaKind::Video));
        assert_eq!(c.parameter_sets, [&SPS[..], &PPS[..]]);
        let Some(Frame::Coded(f)) = frame(&tags[1]) else {
            panic!("then a frame")
        };
        assert_eq!((f.pts, f.dts, f.keyframe), (120, 80, true));
        assert_eq!(&f.data[..], &[0, 0, 0, 4, 0x65, 0x88, 0x84, 0x21]);
        // Annex B with the parameter sets again: what went in.
        assert_eq!(&f.annex_b(Some(&c)).unwrap()[..], &au[..]);

        let mut a = AacPackager::new();
        a.set_config(&[0x11, 0x90]).unwrap();
        let tags = a.package(40, &[0x21, 0x00, 0x03]).unwrap();
        assert!(matches!(frame(&tags[0]), Some(Frame::Config(c)) if c.record[..] == [0x11, 0x90]));
        assert!(
            matches!(frame(&tags[1]), Some(Frame::Coded(f)) if f.data[..] == [0x21, 0, 3] && f.pts == 40)
        );

        let tags = OpusPackager::new().package(60, &[0xfc, 1]).unwrap();
        assert!(
            matches!(frame(&tags[0]), Some(Frame::Config(c)) if c.codec == FrameCodec::Opus && c.record.starts_with(b"OpusHead"))
        );
        assert!(matches!(frame(&tags[1]), Some(Frame::Coded(f)) if f.data[..] == [0xfc, 1]));
    }

    #[test]
    fn hevc_frames_keep_their_composition_time() {
        let rec = [
            0x01u8, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0xf0,
            0x00, 0xfc, 0xfd, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 0x00,
        ];
        // A hand-made record with no arrays: the parameter sets are empty.
        let mut seq = b"\x90hvc1".to_vec();
        seq.extend_from_slice(&rec);
        let m = Media::video(crate::Timestamp(0), Bytes::from(seq));
        assert!(
            matches!(frame(&m), Some(Frame::Config(c)) if c.codec == FrameCodec::Hevc && c.parameter_sets.is_empty())
        );
        let mut f = vec![0x80 | 0x20 | 1];
        f.extend_from_slice(b"hvc1");
        f.extend_from_slice(&[0xff, 0xff, 0xd8]); // cts -40
        f.extend_from_slice(&[0, 0, 0, 2, 0x02, 0x01]);
        let m = Media::video(crate::Timestamp(200), Bytes::from(f));
        let Some(Frame::Coded(c)) = frame(&m) else {
            panic!()
        };
        assert_eq!((c.pts, c.dts, c.keyframe), (160, 200, false));
        assert_eq!(&c.annex_b(None).unwrap()[..], &[0, 0, 0, 1, 0x02, 0x01]);
        assert!(frame(&Media::metadata(crate::Timestamp(0), Bytes::new())).is_none());
    }
}
