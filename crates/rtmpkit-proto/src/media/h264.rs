//! H.264 access units to legacy FLV video tags (FLV E.4.3.1): the
//! AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.2.4.1) built from the
//! SPS and PPS, `AVCPacketType` and an SI24 composition time.

use super::frame_error::FrameError;
use super::message::Media;
use super::nal::{Boundary, NalPackager, NalRole, NalSyntax, put_si24, split_access_units};
use bytes::{BufMut, Bytes, BytesMut};

/// NAL unit types (H.264 Table 7-1) that matter here.
const IDR: u8 = 5;
const SPS: u8 = 7;
const PPS: u8 = 8;
const AUD: u8 = 9;

/// The AVCDecoderConfigurationRecord of one SPS and one PPS, with the
/// chroma and bit depth fields the High profiles add.
pub fn avc_config(sps: &[u8], pps: &[u8]) -> Result<Bytes, FrameError> {
    if sps.len() < 4 || sps.len() > 0xffff || pps.is_empty() || pps.len() > 0xffff {
        return Err(FrameError::BadSps);
    }
    let mut r = BytesMut::with_capacity(sps.len() + pps.len() + 16);
    // Version 1, profile, compatibility, level, 4-byte lengths, one SPS.
    r.put_slice(&[1, sps[1], sps[2], sps[3], 0xff, 0xe1]);
    r.put_u16(sps.len() as u16);
    r.put_slice(sps);
    r.put_u8(1);
    r.put_u16(pps.len() as u16);
    r.put_slice(pps);
    if matches!(sps[1], 100 | 110 | 122 | 144) {
        let (chroma, luma_depth, chroma_depth) =
            high_profile_fields(sps).ok_or(FrameError::BadSps)?;
        r.put_u8(0xfc | chroma as u8);
        r.put_u8(0xf8 | luma_depth as u8);
        r.put_u8(0xf8 | chroma_depth as u8);
        r.put_u8(0); // no SPS extensions
    }
    let record = r.freeze();
    super::parse_avc_config(&record).ok_or(FrameError::BadSps)?;
    Ok(record)
}

/// chroma_format_idc, bit_depth_luma_minus8 and bit_depth_chroma_minus8 of
/// a High profile SPS (H.264 §7.3.2.1.1).
fn high_profile_fields(sps: &[u8]) -> Option<(u32, u32, u32)> {
    let rbsp = super::codec::unescape(sps.get(1..)?);
    let mut r = super::codec::Bits {
        data: &rbsp,
        pos: 0,
    };
    r.bits(24)?; // profile, constraints, level
    r.ue()?; // seq_parameter_set_id
    let chroma = r.ue()?;
    if chroma == 3 {
        r.bit()?;
    }
    let (luma, chroma_depth) = (r.ue()?, r.ue()?);
    (chroma <= 3 && luma <= 7 && chroma_depth <= 7).then_some((chroma, luma, chroma_depth))
}

/// Splits an H.264 Annex B byte stream (what `ffmpeg -f h264` writes)
/// into access units, each with its start codes, ready for
/// [`H264Packager::package`]. A new access unit begins (H.264
/// §7.4.1.2.3) at a delimiter; at an SPS, PPS or SEI after a slice; and at
/// a slice whose `first_mb_in_slice` is 0 after a slice.
pub fn h264_access_units(stream: &[u8]) -> Vec<&[u8]> {
    split_access_units(stream, |nal| match nal[0] & 0x1f {
        AUD => Boundary::Starts,
        6 | SPS | PPS | 13..=18 => Boundary::StartsAfterSlice,
        // first_mb_in_slice is ue(v): 0 is the single bit 1.
        1 | IDR => Boundary::Slice {
            first: nal.get(1).is_some_and(|b| b & 0x80 != 0),
        },
        2..=4 => Boundary::Slice { first: false },
        _ => Boundary::Inside,
    })
}

/// H.264 to [`NalPackager`].
#[derive(Debug, Default, Clone)]
pub(crate) struct Avc;

impl NalSyntax for Avc {
    const SETS: usize = 2;

    fn role(nal: &[u8]) -> NalRole {
        match nal[0] & 0x1f {
            SPS => NalRole::ParameterSet(0),
            PPS => NalRole::ParameterSet(1),
            AUD => NalRole::Dropped,
            IDR => NalRole::Key,
            _ => NalRole::Other,
        }
    }

    fn config(sets: &[Bytes]) -> Result<Bytes, FrameError> {
        avc_config(&sets[0], &sets[1])
    }

    fn sequence_header() -> &'static [u8] {
        &[0x17, 0, 0, 0, 0]
    }

    fn frame_header(keyframe: bool, cts: i32, out: &mut BytesMut) {
        out.put_slice(&[if keyframe { 0x17 } else { 0x27 }, 1]);
        put_si24(out, cts);
    }
}

/// Turns H.264 access units into FLV video tag bodies, sending a
/// sequence header before the first frame and again whenever the SPS or
/// PPS change (a new resolution).
#[derive(Debug, Default, Clone)]
pub struct H264Packager(NalPackager<Avc>);

impl H264Packager {
    /// A packager that has sent nothing yet.
    pub fn new() -> Self {
        H264Packager::default()
    }

    /// The video messages for access unit `au` (Annex B or length-
    /// prefixed) presented at `pts` and decoded at `dts` (ms): a sequence
    /// header first when the parameter sets are new, then the frame. SPS,
    /// PPS and access unit delimiters are kept out of the frame; a frame
    /// with an IDR slice is a keyframe.
    pub fn package(&mut self, pts: u32, dts: u32, au: &[u8]) -> Result<Vec<Media>, FrameError> {
        self.0.package(pts, dts, au)
    }
}

#[cfg(test)]
#[path = "h264_tests.rs"]
mod tests;
