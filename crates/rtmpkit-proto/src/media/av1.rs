//! AV1 temporal units as encoders give them, to Enhanced RTMP `av01`
//! video tag bodies.
//!
//! An encoder hands out one temporal unit per frame in the low overhead
//! bitstream format (AV1 §5.2: OBUs, each with its size field). RTMP
//! carries it as in ISO-BMFF (AV1-ISOBMFF §2.4): a SequenceStart holding
//! the AV1CodecConfigurationRecord (§2.3.3) with the sequence header OBU,
//! then CodedFrames with the temporal unit's OBUs, temporal delimiters
//! left out, and no composition time (E-RTMP v2).

use super::codec::Bits;
use super::frame_error::FrameError;
use super::message::Media;
use crate::Timestamp;
use bytes::{BufMut, Bytes, BytesMut};

/// OBU types (AV1 §6.2.2) that matter here.
const OBU_SEQUENCE_HEADER: u8 = 1;
const OBU_TEMPORAL_DELIMITER: u8 = 2;
const OBU_FRAME_HEADER: u8 = 3;
const OBU_FRAME: u8 = 6;

/// What an AV1 sequence header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Av1Info {
    /// `seq_profile` (0 Main, 1 High, 2 Professional).
    pub profile: u8,
    /// `seq_level_idx[0]`.
    pub level: u8,
    /// `seq_tier[0]`.
    pub tier: u8,
    /// 8, 10 or 12.
    pub bit_depth: u8,
    /// `mono_chrome`.
    pub monochrome: bool,
    /// `subsampling_x`, `subsampling_y`.
    pub subsampling: (u8, u8),
    /// `chroma_sample_position`.
    pub chroma_sample_position: u8,
    /// `max_frame_width_minus_1 + 1`.
    pub width: u32,
    /// `max_frame_height_minus_1 + 1`.
    pub height: u32,
    /// `reduced_still_picture_header`.
    reduced_still_picture: bool,
}

/// One OBU: its type and the whole OBU (header, size and payload), and
/// where its payload starts.
struct Obu<'a> {
    kind: u8,
    bytes: &'a [u8],
    payload: &'a [u8],
}

/// A LEB128 number (AV1 §4.10.5) and its length.
fn leb128(p: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, b) in p.iter().take(8).enumerate() {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// The OBUs of a temporal unit; each must carry its size but the last,
/// which may run to the end.
fn obus(tu: &[u8]) -> Result<Vec<Obu<'_>>, FrameError> {
    let bad = FrameError::NotAv1;
    let mut out = Vec::new();
    let mut rest = tu;
    while !rest.is_empty() {
        let h = rest[0];
        if h & 0x80 != 0 {
            return Err(bad("an OBU has its forbidden bit set"));
        }
        let mut at = 1 + usize::from(h & 0x04 != 0);
        let size = if h & 0x02 != 0 {
            let (size, n) = leb128(rest.get(at..).unwrap_or_default())
                .ok_or(bad("an OBU size runs past the data"))?;
            at += n;
            usize::try_from(size).map_err(|_| bad("an OBU size runs past the data"))?
        } else {
            rest.len().saturating_sub(at)
        };
        let end = at
            .checked_add(size)
            .filter(|&e| e <= rest.len())
            .ok_or(bad("an OBU size runs past the data"))?;
        out.push(Obu {
            kind: (h >> 3) & 0x0f,
            bytes: &rest[..end],
            payload: &rest[at..end],
        });
        rest = &rest[end..];
    }
    if out.is_empty() {
        return Err(FrameError::Empty);
    }
    Ok(out)
}

/// Parses a sequence header OBU's payload (AV1 §5.5).
pub fn parse_sequence_header(p: &[u8]) -> Option<Av1Info> {
    let mut r = Bits { data: p, pos: 0 };
    let profile = r.bits(3)? as u8;
    r.bit()?; // still_picture
    let reduced = r.bit()? == 1;
    let (mut level, mut tier) = (0, 0);
    if reduced {
        level = r.bits(5)? as u8;
    } else {
        let mut decoder_model = false;
        let mut buffer_delay_len = 0;
        if r.bit()? == 1 {
            // timing_info
            r.bits(32)?;
            r.bits(32)?;
            if r.bit()? == 1 {
                // num_ticks_per_picture_minus_1, uvlc
                let mut zeros = 0;
                while r.bit()? == 0 {
                    zeros += 1;
                    if zeros >= 32 {
                        return None;
                    }
                }
                r.bits(zeros)?;
            }
            decoder_model = r.bit()? == 1;
            if decoder_model {
                buffer_delay_len = r.bits(5)? + 1;
                r.bits(32)?;
                r.bits(10)?; // two 5-bit lengths
            }
        }
        let initial_delay = r.bit()? == 1;
        let points = r.bits(5)? + 1;
        for i in 0..points {
            r.bits(12)?; // operating_point_idc
            let l = r.bits(5)? as u8;
            let t = if l > 7 { r.bit()? as u8 } else { 0 };
            if i == 0 {
                (level, tier) = (l, t);
            }
            if decoder_model && r.bit()? == 1 {
                r.bits(buffer_delay_len)?;
                r.bits(buffer_delay_len)?;
                r.bit()?;
            }
            if initial_delay && r.bit()? == 1 {
                r.bits(4)?;
            }
        }
    }
    let wbits = r.bits(4)? + 1;
    let hbits = r.bits(4)? + 1;
    let width = r.bits(wbits)? + 1;
    let height = r.bits(hbits)? + 1;
    if !reduced && r.bit()? == 1 {
        r.bits(7)?; // frame id lengths
    }
    r.bits(3)?; // 128x128 superblock, filter intra, intra edge filter
    if !reduced {
        r.bits(4)?; // interintra, masked compound, warped motion, dual filter
        let order_hint = r.bit()? == 1;
        if order_hint {
            r.bits(2)?;
        }
        let force_screen = if r.bit()? == 1 { 2 } else { r.bit()? };
        if force_screen > 0 && r.bit()? == 0 {
            r.bit()?; // seq_force_integer_mv
        }
        if order_hint {
            r.bits(3)?;
        }
    }
    r.bits(3)?; // superres, cdef, restoration
    // color_config (§5.5.2)
    let high = r.bit()? == 1;
    let twelve = profile == 2 && high && r.bit()? == 1;
    let bit_depth = if twelve {
        12
    } else if high {
        10
    } else {
        8
    };
    let monochrome = profile != 1 && r.bit()? == 1;
    let (mut cp, mut tc, mut mc) = (2, 2, 2);
    if r.bit()? == 1 {
        (cp, tc, mc) = (r.bits(8)?, r.bits(8)?, r.bits(8)?);
    }
    let (mut sub, mut csp) = ((1, 1), 0);
    if monochrome {
        r.bit()?;
    } else if (cp, tc, mc) == (1, 13, 0) {
        sub = (0, 0);
    } else {
        r.bit()?; // color_range
        sub = match profile {
            0 => (1, 1),
            1 => (0, 0),
            _ if bit_depth == 12 => {
                let x = r.bit()? as u8;
                (x, if x == 1 { r.bit()? as u8 } else { 0 })
            }
            _ => (1, 0),
        };
        if sub == (1, 1) {
            csp = r.bits(2)? as u8;
        }
    }
    Some(Av1Info {
        profile,
        level,
        tier,
        bit_depth,
        monochrome,
        subsampling: sub,
        chroma_sample_position: csp,
        width,
        height,
        reduced_still_picture: reduced,
    })
}

/// The AV1CodecConfigurationRecord of a sequence header OBU (the whole
/// OBU, header included).
pub fn av1_config(sequence_header_obu: &[u8]) -> Result<Bytes, FrameError> {
    let o = obus(sequence_header_obu)?;
    let seq = o
        .first()
        .filter(|o| o.kind == OBU_SEQUENCE_HEADER)
        .ok_or(FrameError::NotAv1("not a sequence header OBU"))?;
    let i = parse_sequence_header(seq.payload).ok_or(FrameError::BadSps)?;
    let mut r = BytesMut::with_capacity(4 + seq.bytes.len());
    r.put_u8(0x81); // marker, version 1
    r.put_u8((i.profile << 5) | (i.level & 0x1f));
    r.put_u8(
        (i.tier << 7)
            | (u8::from(i.bit_depth > 8) << 6)
            | (u8::from(i.bit_depth == 12) << 5)
            | (u8::from(i.monochrome) << 4)
            | (i.subsampling.0 << 3)
            | (i.subsampling.1 << 2)
            | i.chroma_sample_position,
    );
    r.put_u8(0); // no initial presentation delay
    r.put_slice(seq.bytes);
    Ok(r.freeze())
}

/// What an AV1CodecConfigurationRecord's sequence header says.
pub fn parse_av1_config(rec: &[u8]) -> Option<Av1Info> {
    if rec.len() < 4 || rec[0] != 0x81 {
        return None;
    }
    let o = obus(&rec[4..]).ok()?;
    let seq = o.iter().find(|o| o.kind == OBU_SEQUENCE_HEADER)?;
    parse_sequence_header(seq.payload)
}

/// Splits a low overhead AV1 bitstream (what `ffmpeg -f obu` writes: OBUs
/// with size fields) into temporal units, each beginning at its temporal
/// delimiter, ready for [`Av1Packager::package`].
pub fn av1_temporal_units(stream: &[u8]) -> Result<Vec<&[u8]>, FrameError> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut at = 0;
    for o in obus(stream)? {
        if o.kind == OBU_TEMPORAL_DELIMITER && at > start {
            out.push(&stream[start..at]);
            start = at;
        }
        at += o.bytes.len();
    }
    if at > start {
        out.push(&stream[start..at]);
    }
    Ok(out)
}

/// Turns temporal units into `av01` video tag bodies, sending a
/// SequenceStart before the first frame and again whenever the sequence
/// header changes.
#[derive(Debug, Default, Clone)]
pub struct Av1Packager {
    sequence_header: Option<(Bytes, Av1Info)>,
    sent: Option<Bytes>,
}

impl Av1Packager {
    /// A packager that has sent nothing yet.
    pub fn new() -> Self {
        Av1Packager::default()
    }

    /// The video messages for one temporal unit presented at `pts` (ms):
    /// a SequenceStart first when its sequence header is new, then the
    /// frame, a keyframe when its first frame header says KEY_FRAME.
    pub fn package(&mut self, pts: u32, tu: &[u8]) -> Result<Vec<Media>, FrameError> {
        let units = obus(tu)?;
        let mut body = BytesMut::with_capacity(tu.len() + 5);
        let mut keyframe = None;
        for o in &units {
            match o.kind {
                OBU_TEMPORAL_DELIMITER => continue,
                OBU_SEQUENCE_HEADER => {
                    let info = parse_sequence_header(o.payload).ok_or(FrameError::BadSps)?;
                    self.sequence_header = Some((Bytes::copy_from_slice(o.bytes), info));
                }
                OBU_FRAME_HEADER | OBU_FRAME if keyframe.is_none() => {
                    let reduced = self
                        .sequence_header
                        .as_ref()
                        .is_some_and(|(_, i)| i.reduced_still_picture);
                    // show_existing_frame(1), frame_type(2): 0 is KEY_FRAME.
                    let b = o.payload.first().copied().unwrap_or(0xff);
                    keyframe = Some(reduced || b & 0xe0 == 0);
                }
                _ => {}
            }
            body.put_slice(o.bytes);
        }
        let Some((seq, _)) = &self.sequence_header else {
            return Err(FrameError::NoParameterSets);
        };
        let record = av1_config(seq)?;
        let ts = Timestamp(pts);
        let mut out = Vec::with_capacity(2);
        if self.sent.as_ref() != Some(&record) {
            let mut tag = BytesMut::with_capacity(record.len() + 5);
            tag.put_slice(b"\x90av01");
            tag.put_slice(&record);
            out.push(Media::video(ts, tag.freeze()));
            self.sent = Some(record);
        }
        if let Some(key) = keyframe {
            let mut tag = BytesMut::with_capacity(body.len() + 5);
            tag.put_u8(if key { 0x91 } else { 0xa1 });
            tag.put_slice(b"av01");
            tag.put_slice(&body);
            out.push(Media::video(ts, tag.freeze()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::VideoTagHeader;

    /// A sequence header OBU: profile 0, level 8 (4.0), 1280x720, 8-bit
    /// 4:2:0, built field by field (AV1 §5.5).
    fn sequence_header() -> Vec<u8> {
        let mut bits = String::new();
        bits += "000"; // seq_profile
        bits += "0"; // still_picture
        bits += "0"; // reduced_still_picture_header
        bits += "0"; // timing_info_present_flag
        bits += "0"; // initial_display_delay_present_flag
        bits += "00000"; // operating_points_cnt_minus_1
        bits += "000000000000"; // operating_point_idc[0]
        bits += "01000"; // seq_level_idx[0] = 8
        bits += "0"; // seq_tier[0]
        bits += "1010"; // frame_width_bits_minus_1 = 10
        bits += "1001"; // frame_height_bits_minus_1 = 9
        bits += &format!("{:011b}", 1279);
        bits += &format!("{:010b}", 719);
        bits += "0"; // frame_id_numbers_present_flag
        bits += "000"; // 128x128, filter intra, intra edge
        bits += "0000"; // interintra, masked, warped, dual filter
        bits += "1"; // enable_order_hint
        bits += "00"; // jnt_comp, ref_frame_mvs
        bits += "1"; // seq_choose_screen_content_tools
        bits += "1"; // seq_choose_integer_mv
        bits += "110"; // order_hint_bits_minus_1
        bits += "000"; // superres, cdef, restoration
        bits += "0"; // high_bitdepth
        bits += "0"; // mono_chrome
        bits += "0"; // color_description_present_flag
        bits += "0"; // color_range
        bits += "00"; // chroma_sample_position
        bits += "0"; // separate_uv_delta_q
        bits += "0"; // film_grain_params_present
        bits += "1"; // trailing one bit
        while bits.len() % 8 != 0 {
            bits.push('0');
        }
        let payload: Vec<u8> = bits
            .as_bytes()
            .chunks(8)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap())
            .collect();
        let mut obu = vec![(OBU_SEQUENCE_HEADER << 3) | 2, payload.len() as u8];
        obu.extend(payload);
        obu
    }

    #[test]
    fn a_key_temporal_unit_gives_the_record_and_a_keyframe() {
        let seq = sequence_header();
        let info = parse_sequence_header(&seq[2..]).unwrap();
        assert_eq!((info.width, info.height, info.level), (1280, 720, 8));
        assert_eq!((info.bit_depth, info.subsampling), (8, (1, 1)));
        let mut tu = vec![0x12, 0]; // temporal delimiter
        tu.extend_from_slice(&seq);
        // A frame OBU: show_existing_frame 0, frame_type 0 (KEY_FRAME).
        tu.extend_from_slice(&[(OBU_FRAME << 3) | 2, 3, 0x10, 0xaa, 0xbb]);
        let mut p = Av1Packager::new();
        let out = p.package(0, &tu).unwrap();
        assert_eq!(out.len(), 2);
        let h = VideoTagHeader::parse(&out[0].payload).unwrap();
        assert!(h.is_sequence_header());
        let rec = &out[0].payload[5..];
        assert_eq!(&rec[..4], &[0x81, 0x08, 0x0c, 0]);
        assert_eq!(parse_av1_config(rec).unwrap().width, 1280);
        assert!(out[1].keyframe);
        // The temporal delimiter is gone; the sequence header stays.
        assert_eq!(&out[1].payload[5..5 + seq.len()], &seq[..]);
        // An inter frame (frame_type 1): no record again.
        let out = p
            .package(40, &[0x12, 0, (OBU_FRAME << 3) | 2, 2, 0x30, 1])
            .unwrap();
        assert_eq!(out.len(), 1);
        assert!(!out[0].keyframe);
        assert_eq!(out[0].payload[0], 0xa1);
    }

    #[test]
    fn a_bitstream_splits_at_its_temporal_delimiters() {
        let seq = sequence_header();
        let mut stream = vec![0x12, 0];
        stream.extend_from_slice(&seq);
        stream.extend_from_slice(&[(OBU_FRAME << 3) | 2, 3, 0x10, 0xaa, 0xbb]);
        stream.extend_from_slice(&[0x12, 0, (OBU_FRAME << 3) | 2, 2, 0x30, 1]);
        let units = av1_temporal_units(&stream).unwrap();
        assert_eq!(units.len(), 2);
        assert_eq!(units[1], &[0x12, 0, (OBU_FRAME << 3) | 2, 2, 0x30, 1]);
        assert!(av1_temporal_units(&[0x12, 5]).is_err());
    }

    #[test]
    fn broken_units_are_refused() {
        let mut p = Av1Packager::new();
        assert_eq!(p.package(0, &[]), Err(FrameError::Empty));
        assert!(matches!(
            p.package(0, &[0x32, 9, 1]),
            Err(FrameError::NotAv1(_))
        ));
        assert!(matches!(p.package(0, &[0x80]), Err(FrameError::NotAv1(_))));
        assert_eq!(
            p.package(0, &[(OBU_FRAME << 3) | 2, 1, 0x10]),
            Err(FrameError::NoParameterSets)
        );
    }
}
