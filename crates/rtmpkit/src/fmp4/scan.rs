//! Reading back what the writer wrote, with no I/O: the time span of a
//! fragment (`moof`), so that recordings can be listed and served as HLS
//! segments by byte range.

/// A fragment's place in time, by its first track (the video track when
/// there is one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentSpan {
    /// Decode time of its first sample (ms since the file's start).
    pub start_ms: u64,
    /// The sum of its samples' durations (ms).
    pub duration_ms: u64,
    /// Whether its first sample is a sync sample (a keyframe).
    pub starts_with_key: bool,
}

/// Child boxes of `b`: type and body.
fn children(b: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let head = b.get(at..at + 8)?;
        let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = [head[4], head[5], head[6], head[7]];
        let body = b.get(at + 8..at.checked_add(size)?).filter(|_| size >= 8)?;
        at += size;
        Some((kind, body))
    })
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The span of a fragment from its `moof` box body (without the 8-byte
/// box header); `None` for a box that does not read as one.
pub fn fragment_span(moof: &[u8]) -> Option<FragmentSpan> {
    let mut best: Option<(u32, FragmentSpan)> = None;
    for (kind, traf) in children(moof) {
        if &kind != b"traf" {
            continue;
        }
        let (mut id, mut base, mut span) = (None, 0u64, None);
        for (kind, b) in children(traf) {
            match &kind {
                b"tfhd" => id = u32_at(b, 4),
                b"tfdt" => {
                    base = match b.first()? {
                        1 => u64::from(u32_at(b, 4)?) << 32 | u64::from(u32_at(b, 8)?),
                        _ => u64::from(u32_at(b, 4)?),
                    }
                }
                b"trun" => span = trun(b),
                _ => {}
            }
        }
        let (Some(id), Some((duration_ms, key))) = (id, span) else {
            continue;
        };
        let s = FragmentSpan {
            start_ms: base,
            duration_ms,
            starts_with_key: key,
        };
        if best.is_none_or(|(b, _)| id < b) {
            best = Some((id, s));
        }
    }
    best.map(|(_, s)| s)
}

/// A `trun` body: the sum of its durations and whether its first sample
/// is a sync sample.
fn trun(b: &[u8]) -> Option<(u64, bool)> {
    let flags = u32_at(b, 0)? & 0x00ff_ffff;
    let count = u32_at(b, 4)? as usize;
    let mut at = 8;
    if flags & 0x1 != 0 {
        at += 4; // data offset
    }
    let mut first_flags = None;
    if flags & 0x4 != 0 {
        first_flags = Some(u32_at(b, at)?);
        at += 4;
    }
    let fields = [0x100, 0x200, 0x400, 0x800]
        .iter()
        .filter(|f| flags & **f != 0)
        .count();
    let mut total = 0u64;
    for i in 0..count.min(1 << 20) {
        let mut f = at + i * fields * 4;
        if flags & 0x100 != 0 {
            total += u64::from(u32_at(b, f)?);
            f += 4;
        }
        if flags & 0x200 != 0 {
            f += 4;
        }
        if i == 0 && first_flags.is_none() && flags & 0x400 != 0 {
            first_flags = Some(u32_at(b, f)?);
        }
    }
    // sample_is_non_sync_sample is bit 16 of the sample flags.
    let key = first_flags.is_none_or(|f| f & 0x0001_0000 == 0);
    Some((total, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmp4::{Sample, fragment};
    use bytes::Bytes;

    #[test]
    fn spans_of_written_fragments() {
        let s = |d, key| Sample {
            duration: d,
            cts: 0,
            keyframe: key,
            data: Bytes::from_static(b"x"),
        };
        let video = [s(40, true), s(40, false), s(41, false)];
        let audio = [s(21, true), s(21, true)];
        let f = fragment(3, &[(2, 500, &audio), (1, 480, &video)]);
        let span = fragment_span(&f[8..u32_at(&f, 0).unwrap() as usize]).unwrap();
        assert_eq!(
            span,
            FragmentSpan {
                start_ms: 480,
                duration_ms: 121,
                starts_with_key: true
            }
        );
        let f = fragment(4, &[(1, 601, &video[1..])]);
        let span = fragment_span(&f[8..u32_at(&f, 0).unwrap() as usize]).unwrap();
        assert!(!span.starts_with_key);
        assert!(fragment_span(b"\x00\x00\x00\x10traf\x00\x00").is_none());
    }
}
