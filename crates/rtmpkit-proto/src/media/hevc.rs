//! The HEVC decoder configuration record (ISO/IEC 14496-15 §8.3.3.1) and
//! the picture size its SPS gives (H.265 §7.3.2.2).

use super::codec::{Bits, unescape};
use super::frame_error::FrameError;
use super::message::Media;
use super::nal::{Boundary, NalPackager, NalRole, NalSyntax, put_si24, split_access_units};
use bytes::{BufMut, Bytes, BytesMut};

/// What an HEVC sequence header (HEVCDecoderConfigurationRecord with its
/// first SPS) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HevcInfo {
    /// `general_profile_idc` (1 Main, 2 Main 10, 3 Main Still Picture,
    /// 4 range extensions).
    pub profile: u8,
    /// `general_level_idc` (30 x the level: 93 = 3.1).
    pub level: u8,
    /// Decoded width in pixels (after the conformance window).
    pub width: u32,
    /// Decoded height in pixels (after the conformance window).
    pub height: u32,
}

impl HevcInfo {
    /// The profile's usual name.
    pub fn profile_name(&self) -> &'static str {
        match self.profile {
            1 => "Main",
            2 => "Main 10",
            3 => "Main Still Picture",
            4 => "Rext",
            _ => "unknown profile",
        }
    }
}

/// The length of the record's fixed part, before its NAL unit arrays.
const FIXED: usize = 23;

/// Parses an HEVCDecoderConfigurationRecord and the first SPS in it.
/// `None` when it is malformed.
pub fn parse_hevc_config(rec: &[u8]) -> Option<HevcInfo> {
    if rec.len() < FIXED || rec[0] != 1 {
        return None;
    }
    let arrays = rec[22];
    let mut at = FIXED;
    for _ in 0..arrays {
        let nal_type = rec.get(at)? & 0x3f;
        let count = u16::from_be_bytes([*rec.get(at + 1)?, *rec.get(at + 2)?]);
        at += 3;
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes([*rec.get(at)?, *rec.get(at + 1)?]));
            let nal = rec.get(at + 2..at + 2 + len)?;
            at += 2 + len;
            if nal_type == 33 {
                // Skip the two-byte NAL unit header.
                let sps = parse_sps(&unescape(nal.get(2..)?))?;
                return Some(HevcInfo {
                    profile: sps.profile,
                    level: sps.level,
                    width: sps.width,
                    height: sps.height,
                });
            }
        }
    }
    None
}

/// The fields of an SPS that the record and the picture size need.
#[derive(Debug, Clone, Copy)]
struct SpsFields {
    profile: u8,
    level: u8,
    width: u32,
    height: u32,
    sub_layers: u32,
    nesting: u32,
    chroma_format_idc: u32,
    luma_depth: u32,
    chroma_depth: u32,
}

/// The SPS from its RBSP (after the NAL unit header), up to the bit
/// depths (H.265 §7.3.2.2.1).
fn parse_sps(rbsp: &[u8]) -> Option<SpsFields> {
    let mut r = Bits { data: rbsp, pos: 0 };
    r.bits(4)?; // sps_video_parameter_set_id
    let sub_layers = r.bits(3)?; // sps_max_sub_layers_minus1
    let nesting = r.bit()?; // sps_temporal_id_nesting_flag
    // profile_tier_level(1, sub_layers): the general part is 96 bits.
    r.bits(3)?; // profile space, tier
    let profile = r.bits(5)? as u8;
    r.bits(32)?; // compatibility flags
    r.bits(32)?; // source flags and constraint flags: 48 bits in all
    r.bits(16)?;
    let level = r.bits(8)? as u8;
    let mut present = Vec::new();
    for _ in 0..sub_layers {
        present.push((r.bit()?, r.bit()?));
    }
    if sub_layers > 0 {
        for _ in sub_layers..8 {
            r.bits(2)?;
        }
    }
    for (profile_present, level_present) in present {
        if profile_present == 1 {
            // 88 bits of sub-layer profile.
            r.bits(32)?;
            r.bits(32)?;
            r.bits(24)?;
        }
        if level_present == 1 {
            r.bits(8)?;
        }
    }
    r.ue()?; // sps_seq_parameter_set_id
    let chroma_format_idc = r.ue()?;
    if chroma_format_idc == 3 {
        r.bit()?; // separate_colour_plane_flag
    }
    let mut width = r.ue()?;
    let mut height = r.ue()?;
    if r.bit()? == 1 {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let sub_w = if matches!(chroma_format_idc, 1 | 2) {
            2
        } else {
            1
        };
        let sub_h = if chroma_format_idc == 1 { 2 } else { 1 };
        width = width.checked_sub(left.checked_add(right)?.checked_mul(sub_w)?)?;
        height = height.checked_sub(top.checked_add(bottom)?.checked_mul(sub_h)?)?;
    }
    let (luma_depth, chroma_depth) = (r.ue()?, r.ue()?);
    Some(SpsFields {
        profile,
        level,
        width,
        height,
        sub_layers,
        nesting,
        chroma_format_idc,
        luma_depth,
        chroma_depth,
    })
}

/// NAL unit types (H.265 Table 7-1) that matter here.
const VPS: u8 = 32;
const SPS: u8 = 33;
const PPS: u8 = 34;
const AUD: u8 = 35;

/// The HEVCDecoderConfigurationRecord of one VPS, SPS and PPS (ISO/IEC
/// 14496-15 §8.3.3.1), as FFmpeg writes it: arrays not marked complete,
/// no frame rate, 4-byte lengths.
pub fn hevc_config(vps: &[u8], sps: &[u8], pps: &[u8]) -> Result<Bytes, FrameError> {
    let too_long = |n: &[u8]| n.len() < 3 || n.len() > 0xffff;
    if too_long(vps) || too_long(sps) || too_long(pps) {
        return Err(FrameError::BadSps);
    }
    let rbsp = unescape(&sps[2..]);
    let f = parse_sps(&rbsp).ok_or(FrameError::BadSps)?;
    if f.chroma_format_idc > 3 || f.luma_depth > 7 || f.chroma_depth > 7 {
        return Err(FrameError::BadSps);
    }
    let mut r = BytesMut::with_capacity(vps.len() + sps.len() + pps.len() + 40);
    r.put_u8(1);
    // The general profile_tier_level: 12 bytes after the SPS's first.
    r.put_slice(rbsp.get(1..13).ok_or(FrameError::BadSps)?);
    r.put_u16(0xf000); // min_spatial_segmentation_idc 0
    r.put_u8(0xfc); // parallelismType 0
    r.put_u8(0xfc | f.chroma_format_idc as u8);
    r.put_u8(0xf8 | f.luma_depth as u8);
    r.put_u8(0xf8 | f.chroma_depth as u8);
    r.put_u16(0); // avgFrameRate
    r.put_u8(((f.sub_layers as u8 + 1) << 3) | ((f.nesting as u8) << 2) | 3);
    r.put_u8(3);
    for (t, nal) in [(VPS, vps), (SPS, sps), (PPS, pps)] {
        r.put_u8(t);
        r.put_u16(1);
        r.put_u16(nal.len() as u16);
        r.put_slice(nal);
    }
    let record = r.freeze();
    parse_hevc_config(&record).ok_or(FrameError::BadSps)?;
    Ok(record)
}

/// Splits an HEVC Annex B byte stream (what `ffmpeg -f hevc` writes) into
/// access units, each with its start codes, ready for
/// [`HevcPackager::package`]. A new access unit begins (H.265 §7.4.2.4.4)
/// at a delimiter; at a VPS, SPS, PPS or prefix SEI after a slice; and at
/// a slice with `first_slice_segment_in_pic_flag` after a slice.
pub fn hevc_access_units(stream: &[u8]) -> Vec<&[u8]> {
    split_access_units(stream, |nal| match (nal[0] >> 1) & 0x3f {
        AUD => Boundary::Starts,
        VPS | SPS | PPS | 39 | 41..=44 | 48..=55 => Boundary::StartsAfterSlice,
        0..=31 => Boundary::Slice {
            first: nal.get(2).is_some_and(|b| b & 0x80 != 0),
        },
        _ => Boundary::Inside,
    })
}

/// HEVC to [`NalPackager`]: Enhanced RTMP `hvc1` tags.
#[derive(Debug, Default, Clone)]
pub(crate) struct Hvc;

impl NalSyntax for Hvc {
    const SETS: usize = 3;

    fn role(nal: &[u8]) -> NalRole {
        match (nal[0] >> 1) & 0x3f {
            VPS => NalRole::ParameterSet(0),
            SPS => NalRole::ParameterSet(1),
            PPS => NalRole::ParameterSet(2),
            AUD => NalRole::Dropped,
            // IRAP pictures: BLA, IDR, CRA (and the reserved 22, 23).
            16..=23 => NalRole::Key,
            _ => NalRole::Other,
        }
    }

    fn config(sets: &[Bytes]) -> Result<Bytes, FrameError> {
        hevc_config(&sets[0], &sets[1], &sets[2])
    }

    fn sequence_header() -> &'static [u8] {
        // isEx, FrameType 1, SequenceStart.
        b"\x90hvc1"
    }

    fn frame_header(keyframe: bool, cts: i32, out: &mut BytesMut) {
        let frame_type = if keyframe { 0x10 } else { 0x20 };
        if cts == 0 {
            // CodedFramesX: the composition time is implied 0.
            out.put_u8(0x80 | frame_type | 3);
            out.put_slice(b"hvc1");
        } else {
            out.put_u8(0x80 | frame_type | 1);
            out.put_slice(b"hvc1");
            put_si24(out, cts);
        }
    }
}

/// Turns HEVC access units into Enhanced RTMP `hvc1` video tag bodies,
/// sending a SequenceStart before the first frame and again whenever a
/// parameter set changes. Frames go out as CodedFramesX when pts equals
/// dts, else as CodedFrames with the composition time.
#[derive(Debug, Default, Clone)]
pub struct HevcPackager(NalPackager<Hvc>);

impl HevcPackager {
    /// A packager that has sent nothing yet.
    pub fn new() -> Self {
        HevcPackager::default()
    }

    /// The video messages for access unit `au` (Annex B or length-
    /// prefixed) presented at `pts` and decoded at `dts` (ms). VPS, SPS,
    /// PPS and delimiters are kept out of the frame; a frame with an IRAP
    /// slice is a keyframe.
    pub fn package(&mut self, pts: u32, dts: u32, au: &[u8]) -> Result<Vec<Media>, FrameError> {
        self.0.package(pts, dts, au)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x265's record of a 640x360 Main stream (its VPS, SPS and PPS; the
    /// SEI array left out), as FFmpeg 9 puts it in an E-RTMP SequenceStart.
    const X265_640X360: [u8; 111] = [
        0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0xf0, 0x00,
        0xfc, 0xfd, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 0x03, 0x20, 0x00, 0x01, 0x00, 0x18, 0x40, 0x01,
        0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
        0x00, 0x03, 0x00, 0x3f, 0x95, 0x94, 0x09, 0x21, 0x00, 0x01, 0x00, 0x2b, 0x42, 0x01, 0x01,
        0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3f,
        0xa0, 0x05, 0x02, 0x01, 0x71, 0xf2, 0xe5, 0x95, 0x95, 0x29, 0x30, 0xbc, 0x05, 0xa0, 0x20,
        0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x03, 0x03, 0x21, 0x22, 0x00, 0x01, 0x00, 0x06,
        0x44, 0x01, 0xc0, 0x73, 0xc1, 0x89,
    ];

    #[test]
    fn x265_main_640x360() {
        let i = parse_hevc_config(&X265_640X360).unwrap();
        assert_eq!((i.width, i.height), (640, 360));
        assert_eq!((i.profile, i.level), (1, 63));
        assert_eq!(i.profile_name(), "Main");
    }

    /// The record's parameter sets, VPS, SPS and PPS.
    fn sets() -> Vec<Vec<u8>> {
        let mut at = 23;
        let mut out = Vec::new();
        for _ in 0..X265_640X360[22] {
            let len = usize::from(u16::from_be_bytes([
                X265_640X360[at + 3],
                X265_640X360[at + 4],
            ]));
            out.push(X265_640X360[at + 5..at + 5 + len].to_vec());
            at += 5 + len;
        }
        out
    }

    #[test]
    fn the_record_built_from_x265s_parameter_sets_is_x265s() {
        let s = sets();
        assert_eq!(
            &hevc_config(&s[0], &s[1], &s[2]).unwrap()[..],
            &X265_640X360[..]
        );
        assert_eq!(
            hevc_config(&s[0], &s[1][..6], &s[2]),
            Err(FrameError::BadSps)
        );
    }

    #[test]
    fn access_units_become_hvc1_tags() {
        let s = sets();
        let mut au = Vec::new();
        for n in s
            .iter()
            .map(Vec::as_slice)
            .chain([&[0x26, 0x01, 0xaf, 0x1f][..]])
        {
            au.extend_from_slice(&[0, 0, 0, 1]);
            au.extend_from_slice(n);
        }
        let mut p = HevcPackager::new();
        let out = p.package(80, 40, &au).unwrap();
        assert_eq!(out.len(), 2);
        let seq = crate::media::VideoTagHeader::parse(&out[0].payload).unwrap();
        assert!(seq.is_sequence_header() && seq.codec.is_hevc());
        assert_eq!(&out[0].payload[5..], &X265_640X360[..]);
        let key = crate::media::VideoTagHeader::parse(&out[1].payload).unwrap();
        assert!(key.is_keyframe());
        assert_eq!(key.composition_time, 40);
        assert_eq!(
            &out[1].payload[key.header_len..],
            &[0, 0, 0, 4, 0x26, 0x01, 0xaf, 0x1f]
        );
        // A trailing picture (type 1), pts = dts: CodedFramesX.
        let out = p.package(120, 120, &[0, 0, 1, 0x02, 0x01, 0xd0]).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].payload[0], 0x80 | 0x20 | 3);
        assert!(!out[0].keyframe);
    }

    #[test]
    fn an_annex_b_stream_splits_at_each_picture() {
        let s = sets();
        let mut stream = Vec::new();
        for n in s.iter().map(Vec::as_slice) {
            stream.extend_from_slice(&[0, 0, 0, 1]);
            stream.extend_from_slice(n);
        }
        // An IDR in two slice segments, then two trailing pictures.
        for nal in [
            &[0x26, 0x01, 0x80, 0x11][..],
            &[0x26, 0x01, 0x40, 0x22],
            &[0x02, 0x01, 0x80],
            &[0x02, 0x01, 0x80],
        ] {
            stream.extend_from_slice(&[0, 0, 1]);
            stream.extend_from_slice(nal);
        }
        let units = hevc_access_units(&stream);
        assert_eq!(units.len(), 3);
        let mut p = HevcPackager::new();
        let first = p.package(0, 0, units[0]).unwrap();
        assert_eq!(
            first.len(),
            2,
            "the parameter sets and both segments in the first"
        );
        assert!(first[1].keyframe);
        assert_eq!(p.package(40, 40, units[1]).unwrap().len(), 1);
    }

    #[test]
    fn truncated_or_foreign_records_are_refused() {
        assert!(parse_hevc_config(&X265_640X360[..60]).is_none());
        assert!(parse_hevc_config(&[]).is_none());
        assert!(parse_hevc_config(&[0; 23]).is_none());
        let mut rec = vec![1u8; 23];
        rec[22] = 1; // one array, cut short
        assert!(parse_hevc_config(&rec).is_none());
    }
}
