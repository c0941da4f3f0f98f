//! H.264 access units as encoders give them, to FLV video tag bodies.
//!
//! An encoder hands out access units as an Annex B byte stream (ISO/IEC
//! 14496-10 Annex B: NAL units after `00 00 01` or `00 00 00 01` start
//! codes) or as 4-byte length-prefixed NAL units (the AVCC form). RTMP
//! carries them as FLV video tags (FLV E.4.3.1): a sequence header holding
//! the AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.2.4.1) built from
//! the SPS and PPS, then one tag per access unit with the keyframe flag,
//! the composition time (pts - dts) and the NAL units, each after its
//! 4-byte length. [`H264Packager`] does that, with no I/O.

use super::message::Media;
use crate::Timestamp;
use bytes::{BufMut, Bytes, BytesMut};

/// NAL unit types (H.264 Table 7-1) that matter here.
const IDR: u8 = 5;
const SPS: u8 = 7;
const PPS: u8 = 8;
const AUD: u8 = 9;

/// Why an access unit was not packaged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// It holds no NAL unit.
    #[error("the access unit holds no NAL unit")]
    Empty,
    /// Neither Annex B (no start code) nor length-prefixed (the lengths
    /// do not add up).
    #[error("neither Annex B nor 4-byte length-prefixed NAL units")]
    BadLength,
    /// A NAL unit's forbidden_zero_bit is set: this is not H.264.
    #[error("a NAL unit has its forbidden_zero_bit set: not H.264")]
    NotH264,
    /// No SPS and PPS came yet, in this access unit or before it.
    #[error("no SPS and PPS yet: the first access unit must carry them")]
    NoParameterSets,
    /// The SPS does not parse.
    #[error("the SPS does not parse")]
    BadSps,
    /// pts - dts does not fit FLV's 24-bit composition time.
    #[error("pts - dts = {0} ms does not fit a 24-bit composition time")]
    CompositionTime(i64),
}

/// The NAL units of access unit `au`, 4-byte length-prefixed when its
/// lengths add up to it exactly, else Annex B. (Either alone is
/// ambiguous: a first NAL unit of 256 to 511 bytes has a length that
/// begins like a start code.)
pub fn nal_units(au: &[u8]) -> Result<Vec<&[u8]>, FrameError> {
    let mut out = length_prefixed(au)
        .or_else(|| annex_b(au))
        .ok_or(FrameError::BadLength)?;
    out.retain(|n| !n.is_empty());
    if out.is_empty() {
        return Err(FrameError::Empty);
    }
    Ok(out)
}

/// The units of `au` if its 4-byte lengths cover it exactly.
fn length_prefixed(au: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = au;
    while !rest.is_empty() {
        let len = rest.get(..4)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let nal = rest.get(4..4usize.checked_add(len)?)?;
        // forbidden_zero_bit
        if nal.first().is_none_or(|b| b & 0x80 != 0) {
            return None;
        }
        out.push(nal);
        rest = &rest[4 + len..];
    }
    Some(out)
}

/// The units of an Annex B byte stream (`None` without a start code).
fn annex_b(au: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut start = None;
    let mut i = 0;
    while i + 3 <= au.len() {
        if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
            if let Some(s) = start {
                out.push(trim_zeros(&au[s..i]));
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    out.push(&au[start?..]);
    Some(out)
}

/// A NAL unit before the next start code, without the zero bytes of a
/// 4-byte start code (or trailing_zero_8bits) at its end.
fn trim_zeros(n: &[u8]) -> &[u8] {
    let end = n.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &n[..end]
}

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

/// Turns access units into FLV video tag bodies, sending a sequence
/// header before the first frame and again whenever the SPS or PPS
/// change (a new resolution).
#[derive(Debug, Default, Clone)]
pub struct H264Packager {
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    /// The record last sent.
    sent: Option<Bytes>,
}

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
        let cts = i64::from(pts) - i64::from(dts);
        if !(-(1 << 23)..(1 << 23)).contains(&cts) {
            return Err(FrameError::CompositionTime(cts));
        }
        let nals = nal_units(au)?;
        if nals.iter().any(|n| n[0] & 0x80 != 0) {
            return Err(FrameError::NotH264);
        }
        let mut keyframe = false;
        let mut frame = BytesMut::with_capacity(au.len() + 5 + 4 * nals.len());
        frame.put_slice(&[0, 1]);
        frame.put_slice(&(cts as i32).to_be_bytes()[1..]);
        for nal in &nals {
            match nal[0] & 0x1f {
                SPS => self.sps = Some(Bytes::copy_from_slice(nal)),
                PPS => self.pps = Some(Bytes::copy_from_slice(nal)),
                AUD => {}
                t => {
                    keyframe |= t == IDR;
                    frame.put_u32(nal.len() as u32);
                    frame.put_slice(nal);
                }
            }
        }
        let (Some(sps), Some(pps)) = (&self.sps, &self.pps) else {
            return Err(FrameError::NoParameterSets);
        };
        let record = avc_config(sps, pps)?;
        let ts = Timestamp(dts);
        let mut out = Vec::with_capacity(2);
        if self.sent.as_ref() != Some(&record) {
            let mut seq = BytesMut::with_capacity(record.len() + 5);
            seq.put_slice(&[0x17, 0, 0, 0, 0]);
            seq.put_slice(&record);
            out.push(Media::video(ts, seq.freeze()));
            self.sent = Some(record);
        }
        if frame.len() > 5 {
            frame[0] = if keyframe { 0x17 } else { 0x27 };
            out.push(Media::video(ts, frame.freeze()));
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "h264_tests.rs"]
mod tests;
