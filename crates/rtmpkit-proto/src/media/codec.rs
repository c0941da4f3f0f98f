//! Codec configuration records: just enough to tell a user what a stream
//! carries (profile, resolution, sample rate, channels).

/// What an H.264 sequence header (AVCDecoderConfigurationRecord with its
/// first SPS) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvcInfo {
    /// `profile_idc` (66 Baseline, 77 Main, 100 High, ...).
    pub profile: u8,
    /// `constraint_set` flags byte.
    pub constraints: u8,
    /// `level_idc` (31 = 3.1).
    pub level: u8,
    /// Decoded width in pixels (after cropping).
    pub width: u32,
    /// Decoded height in pixels (after cropping).
    pub height: u32,
}

impl AvcInfo {
    /// The profile's usual name.
    pub fn profile_name(&self) -> &'static str {
        match (self.profile, self.constraints & 0x40 != 0) {
            (66, true) => "Constrained Baseline",
            (66, false) => "Baseline",
            (77, _) => "Main",
            (88, _) => "Extended",
            (100, _) => "High",
            (110, _) => "High 10",
            (122, _) => "High 4:2:2",
            (244, _) => "High 4:4:4",
            _ => "unknown profile",
        }
    }
}

/// A NAL unit's payload without its emulation prevention bytes
/// (00 00 03 -> 00 00).
pub(super) fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut rbsp = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        rbsp.push(b);
    }
    rbsp
}

/// Reads bits MSB first, past emulation prevention bytes already removed.
pub(super) struct Bits<'a> {
    pub data: &'a [u8],
    pub pos: usize,
}

impl Bits<'_> {
    pub fn bit(&mut self) -> Option<u32> {
        let b = *self.data.get(self.pos / 8)?;
        let v = (b >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(v))
    }

    pub fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v = 0;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Some(v)
    }

    /// Unsigned Exp-Golomb (H.264 §9.1).
    pub fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    pub fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        Some(if k % 2 == 1 {
            k.div_ceil(2) as i32
        } else {
            -((k / 2) as i32)
        })
    }
}

/// Parses an AVCDecoderConfigurationRecord (ISO 14496-15 §5.2.4.1) and the
/// SPS in it (H.264 §7.3.2.1.1). `None` when it is malformed.
pub fn parse_avc_config(rec: &[u8]) -> Option<AvcInfo> {
    if rec.len() < 8 || rec[0] != 1 {
        return None;
    }
    let sps_len = usize::from(u16::from_be_bytes([rec[6], rec[7]]));
    let sps = rec.get(8..8 + sps_len)?;
    let rbsp = unescape(sps.get(1..)?);
    let mut r = Bits {
        data: &rbsp,
        pos: 0,
    };
    let profile = r.bits(8)? as u8;
    let constraints = r.bits(8)? as u8;
    let level = r.bits(8)? as u8;
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = 0;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()?;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256) % 256;
                        }
                        last = if next == 0 { last } else { next };
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    let poc_type = r.ue()?;
    if poc_type == 0 {
        r.ue()?;
    } else if poc_type == 1 {
        r.bit()?;
        r.se()?;
        r.se()?;
        let n = r.ue()?;
        if n > 255 {
            return None;
        }
        for _ in 0..n {
            r.se()?;
        }
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()? + 1;
    let height_map_units = r.ue()? + 1;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let mut width = width_mbs.checked_mul(16)?;
    let mut height = height_map_units
        .checked_mul(16)?
        .checked_mul(2 - frame_mbs_only)?;
    if r.bit()? == 1 {
        let (l, rr, t, b) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let (cx, cy) = match (chroma_format_idc, separate_colour_plane) {
            (0, _) | (_, 1) => (1, 2 - frame_mbs_only),
            (1, _) => (2, 2 * (2 - frame_mbs_only)),
            (2, _) => (2, 2 - frame_mbs_only),
            _ => (1, 2 - frame_mbs_only),
        };
        width = width.checked_sub((l + rr).checked_mul(cx)?)?;
        height = height.checked_sub((t + b).checked_mul(cy)?)?;
    }
    Some(AvcInfo {
        profile,
        constraints,
        level,
        width,
        height,
    })
}

/// What an AAC AudioSpecificConfig (ISO 14496-3 §1.6.2.1) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AacInfo {
    /// Audio object type (2 = LC, 5 = SBR / HE-AAC, 29 = PS / HE-AAC v2).
    pub object_type: u8,
    /// Sampling rate in Hz.
    pub sample_rate: u32,
    /// Channel configuration (1 mono, 2 stereo, ...).
    pub channels: u8,
}

impl AacInfo {
    /// The profile's usual name.
    pub fn profile_name(&self) -> &'static str {
        match self.object_type {
            1 => "Main",
            2 => "LC",
            3 => "SSR",
            4 => "LTP",
            5 => "HE-AAC",
            29 => "HE-AACv2",
            _ => "unknown profile",
        }
    }
}

const AAC_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Parses an AudioSpecificConfig.
pub fn parse_aac_config(asc: &[u8]) -> Option<AacInfo> {
    let mut r = Bits { data: asc, pos: 0 };
    let mut object_type = r.bits(5)?;
    if object_type == 31 {
        object_type = 32 + r.bits(6)?;
    }
    let idx = r.bits(4)?;
    let sample_rate = if idx == 15 {
        r.bits(24)?
    } else {
        *AAC_RATES.get(idx as usize)?
    };
    let channels = r.bits(4)? as u8;
    Some(AacInfo {
        object_type: object_type as u8,
        sample_rate,
        channels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aac_lc_44100_stereo() {
        let i = parse_aac_config(&[0x12, 0x10]).unwrap();
        assert_eq!((i.object_type, i.sample_rate, i.channels), (2, 44100, 2));
        assert_eq!(i.profile_name(), "LC");
        assert!(parse_aac_config(&[0x12]).is_none());
    }

    #[test]
    fn avc_sps_resolution() {
        // x264 Main profile 320x240 (level 1.3): SPS 67 4d 00 0d ...
        // Built from the fields: profile 77, level 13, 20x15 macroblocks, no cropping.
        let mut bits = String::new();
        let ue = |v: u32| {
            let x = v + 1;
            let n = 32 - x.leading_zeros();
            format!(
                "{}{:0width$b}",
                "0".repeat((n - 1) as usize),
                x,
                width = n as usize
            )
        };
        bits += &ue(0); // sps id
        bits += &ue(0); // log2_max_frame_num_minus4
        bits += &ue(2); // poc type 2
        bits += &ue(3); // max refs
        bits += "0"; // gaps
        bits += &ue(19); // width in mbs - 1
        bits += &ue(14); // height in map units - 1
        bits += "1"; // frame_mbs_only
        bits += "1"; // direct 8x8
        bits += "0"; // no cropping
        bits += "0"; // no vui
        bits += "1"; // stop bit
        while bits.len() % 8 != 0 {
            bits.push('0');
        }
        let mut sps = vec![0x67, 77, 0x40, 13];
        for c in bits.as_bytes().chunks(8) {
            sps.push(u8::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap());
        }
        let mut rec = vec![1, 77, 0x40, 13, 0xff, 0xe1];
        rec.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        rec.extend_from_slice(&sps);
        let i = parse_avc_config(&rec).unwrap();
        assert_eq!((i.width, i.height, i.profile, i.level), (320, 240, 77, 13));
        assert_eq!(i.profile_name(), "Main");
        assert!(parse_avc_config(&rec[..10]).is_none());
    }
}
