//! The writer over the committed H.264 + AAC sample: every frame lands in
//! a fragment, fragments stay within their limit, files rotate at
//! keyframes.

use super::*;
use rtmpkit_proto::flv::FlvReader;
use rtmpkit_proto::media::{Media, MediaKind};

fn sample_media() -> Vec<Media> {
    let mut r = FlvReader::new();
    r.push(include_bytes!("../../../../tests/fixtures/sample-5s.flv"));
    let mut out = Vec::new();
    while let Ok(Some(tag)) = r.next_tag() {
        let kind = match tag.tag_type {
            8 => MediaKind::Audio,
            9 => MediaKind::Video,
            _ => MediaKind::Metadata,
        };
        out.push(Media::new(kind, tag.timestamp, tag.data));
    }
    out
}

/// Box type and body of each top-level box of `b`.
fn boxes(b: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut v = Vec::new();
    let mut at = 0;
    while at + 8 <= b.len() {
        let size = u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        let kind = b[at + 4..at + 8].try_into().unwrap();
        v.push((kind, &b[at + 8..at + size]));
        at += size;
    }
    v
}

/// Samples per track id in a fragment (from each `trun`).
fn samples(frag: &[u8]) -> Vec<(u32, u32)> {
    let moof = boxes(frag)[0].1;
    boxes(moof)
        .into_iter()
        .filter(|(k, _)| k == b"traf")
        .map(|(_, traf)| {
            let inner = boxes(traf);
            let id = u32::from_be_bytes(inner[0].1[4..8].try_into().unwrap());
            let trun = inner.iter().find(|(k, _)| k == b"trun").unwrap().1;
            (id, u32::from_be_bytes(trun[4..8].try_into().unwrap()))
        })
        .collect()
}

fn frames(media: &[Media], audio: bool) -> u32 {
    let mut units = Vec::new();
    for m in media {
        demux(m, &mut units);
    }
    units
        .iter()
        .filter(|u| matches!(u, Unit::Frame { key, .. } if key.audio == audio))
        .count() as u32
}

#[test]
fn every_frame_in_a_fragment_of_at_most_a_second() {
    let media = sample_media();
    let mut w = FileWriter::new(1000, None);
    let mut out = Vec::new();
    for m in &media {
        w.push(m, &mut out);
    }
    w.finish(&mut out);
    assert!(matches!(
        out.first(),
        Some(Written::Open { start_dts: 0, .. })
    ));
    assert!(matches!(out.last(), Some(Written::Close { .. })));
    let (mut video, mut audio, mut last_end) = (0, 0, 0);
    for w in &out {
        if let Written::Fragment { data, end_dts } = w {
            for (id, n) in samples(data) {
                if id == 1 { video += n } else { audio += n }
            }
            assert!(
                *end_dts - last_end <= 1100,
                "a fragment spans {} ms",
                end_dts - last_end
            );
            last_end = *end_dts;
        }
    }
    assert_eq!(video, frames(&media, false));
    // Audio sent just before the first keyframe is kept too.
    assert_eq!(audio, frames(&media, true));
}

#[test]
fn files_rotate_at_the_first_keyframe_after_the_segment() {
    let media = sample_media();
    let mut w = FileWriter::new(1000, Some(2000));
    let mut out = Vec::new();
    for m in &media {
        w.push(m, &mut out);
    }
    w.finish(&mut out);
    let opens: Vec<u32> = out
        .iter()
        .filter_map(|w| match w {
            Written::Open { start_dts, .. } => Some(*start_dts),
            _ => None,
        })
        .collect();
    let closes = out
        .iter()
        .filter(|w| matches!(w, Written::Close { .. }))
        .count();
    assert!(opens.len() >= 2, "{opens:?}");
    assert_eq!(opens.len(), closes);
    assert!(opens.windows(2).all(|p| p[1] - p[0] >= 2000), "{opens:?}");
}

#[test]
fn a_new_configuration_opens_a_new_file() {
    let media = sample_media();
    let seq = media
        .iter()
        .find(|m| m.kind == MediaKind::Video && m.payload.get(1) == Some(&0))
        .unwrap()
        .clone();
    let mut w = FileWriter::new(1000, None);
    let mut out = Vec::new();
    let half = media.len() / 2;
    for m in &media[..half] {
        w.push(m, &mut out);
    }
    // The same configuration again changes nothing; a changed one does.
    w.push(&seq, &mut out);
    let mut changed = seq.clone();
    let mut body = changed.payload.to_vec();
    body.push(0);
    changed.payload = body.into();
    w.push(&changed, &mut out);
    for m in &media[half..] {
        w.push(m, &mut out);
    }
    let opens = out
        .iter()
        .filter(|w| matches!(w, Written::Open { .. }))
        .count();
    assert_eq!(opens, 2);
}
