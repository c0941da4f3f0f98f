//! A track's codec as the `CODECS` attribute of an HLS playlist names it
//! (RFC 6381 §3.3, with each codec's ISO BMFF binding): `avc1.PPCCLL`
//! (ISO/IEC 14496-15 Annex A), `hvc1.…` (14496-15 Annex E), `av01.P.LLT.DD`
//! (AV1 ISOBMFF §5), `vp09.PP.LL.DD` (VP codec ISOBMFF), `mp4a.40.N`
//! (RFC 6381 §3.3) and `opus` (Opus in ISOBMFF §4.1).

use super::boxes::{Entry, Track};
use std::fmt::Write as _;

impl Track {
    /// The codec's RFC 6381 name; `None` for a configuration record too
    /// short to name it.
    pub fn codec_string(&self) -> Option<String> {
        match &self.entry {
            Entry::Avc(c) => {
                let b = c.get(1..4)?;
                Some(format!("avc1.{:02x}{:02x}{:02x}", b[0], b[1], b[2]))
            }
            Entry::Hevc(c) => hevc(c),
            Entry::Av1(c) => {
                let (b1, b2) = (*c.get(1)?, *c.get(2)?);
                let depth = match (b2 & 0x40 != 0, b2 & 0x20 != 0) {
                    (true, true) => 12,
                    (true, false) => 10,
                    _ => 8,
                };
                let tier = if b2 & 0x80 != 0 { 'H' } else { 'M' };
                Some(format!(
                    "av01.{}.{:02}{tier}.{depth:02}",
                    b1 >> 5,
                    b1 & 0x1f
                ))
            }
            Entry::Vp9(c) => {
                // Version and flags (4 bytes), then profile, level, and
                // bit depth in the high nibble.
                let b = c.get(4..7)?;
                Some(format!("vp09.{:02}.{:02}.{:02}", b[0], b[1], b[2] >> 4))
            }
            Entry::Aac(c) => {
                let object_type = c.first()? >> 3;
                Some(format!("mp4a.40.{object_type}"))
            }
            Entry::Opus(_) => Some("opus".to_owned()),
        }
    }
}

/// `hvc1.[A-C]?PROFILE.COMPAT.{L,H}LEVEL.CONSTRAINTS` from an
/// HEVCDecoderConfigurationRecord: the compatibility flags bit-reversed in
/// hex, the six constraint bytes in hex without the trailing zero ones.
fn hevc(c: &[u8]) -> Option<String> {
    let b1 = *c.get(1)?;
    let space = ["", "A", "B", "C"][usize::from(b1 >> 6)];
    let tier = if b1 & 0x20 != 0 { 'H' } else { 'L' };
    let compat = u32::from_be_bytes(c.get(2..6)?.try_into().ok()?).reverse_bits();
    let constraints = c.get(6..12)?;
    let level = *c.get(12)?;
    let mut s = format!("hvc1.{space}{}.{compat:x}.{tier}{level}", b1 & 0x1f);
    let kept = constraints
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i + 1);
    for b in &constraints[..kept] {
        let _ = write!(s, ".{b:x}");
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn track(entry: Entry) -> Track {
        Track {
            id: 1,
            entry,
            width: 0,
            height: 0,
            sample_rate: 0,
            channels: 0,
        }
    }

    #[test]
    fn each_codec_is_named_as_players_expect() {
        let avc = Bytes::from_static(&[1, 0x64, 0x00, 0x1e, 0xff]);
        assert_eq!(
            track(Entry::Avc(avc)).codec_string().as_deref(),
            Some("avc1.64001e")
        );
        // Main profile, Main tier, level 3.1, progressive source flag only:
        // what x265 writes for 720p.
        let hvcc = Bytes::from_static(&[1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93, 0xf0]);
        assert_eq!(
            track(Entry::Hevc(hvcc)).codec_string().as_deref(),
            Some("hvc1.1.6.L93.90")
        );
        // Profile 0, level 8 (4.0), Main tier, 8 bits.
        let av1c = Bytes::from_static(&[0x81, 0x08, 0x0c, 0]);
        assert_eq!(
            track(Entry::Av1(av1c)).codec_string().as_deref(),
            Some("av01.0.08M.08")
        );
        let vpcc = Bytes::from_static(&[1, 0, 0, 0, 0, 31, 0x80, 1, 1, 1, 0, 0]);
        assert_eq!(
            track(Entry::Vp9(vpcc)).codec_string().as_deref(),
            Some("vp09.00.31.08")
        );
        let asc = Bytes::from_static(&[0x11, 0x90]);
        assert_eq!(
            track(Entry::Aac(asc)).codec_string().as_deref(),
            Some("mp4a.40.2")
        );
        assert_eq!(
            track(Entry::Avc(Bytes::from_static(&[1]))).codec_string(),
            None
        );
    }
}
