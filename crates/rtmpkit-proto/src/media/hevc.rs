//! The HEVC decoder configuration record (ISO/IEC 14496-15 §8.3.3.1) and
//! the picture size its SPS gives (H.265 §7.3.2.2).

use super::codec::{Bits, unescape};

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
                return parse_sps(&unescape(nal.get(2..)?));
            }
        }
    }
    None
}

fn parse_sps(rbsp: &[u8]) -> Option<HevcInfo> {
    let mut r = Bits { data: rbsp, pos: 0 };
    r.bits(4)?; // sps_video_parameter_set_id
    let sub_layers = r.bits(3)?; // sps_max_sub_layers_minus1
    r.bit()?; // sps_temporal_id_nesting_flag
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
    Some(HevcInfo {
        profile,
        level,
        width,
        height,
    })
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
