use super::*;
use crate::flv::FlvReader;
use crate::media::{MediaKind, nal_units, parse_avc_config};

/// The fixture's video tags: (dts, tag body).
fn video_tags() -> Vec<(u32, Bytes)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/sample-5s.flv"
    );
    let mut r = FlvReader::new();
    r.push(&std::fs::read(path).unwrap());
    let mut out = Vec::new();
    while let Some(t) = r.next_tag().unwrap() {
        if t.tag_type == 9 {
            out.push((t.timestamp.0, t.data));
        }
    }
    out
}

/// The SPS and PPS of an AVCDecoderConfigurationRecord with one of each.
fn parameter_sets(record: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let sps_len = usize::from(u16::from_be_bytes([record[6], record[7]]));
    let sps = record[8..8 + sps_len].to_vec();
    let at = 8 + sps_len + 1;
    let pps_len = usize::from(u16::from_be_bytes([record[at], record[at + 1]]));
    (sps, record[at + 2..at + 2 + pps_len].to_vec())
}

/// The length-prefixed NAL units of a frame tag body as an Annex B access
/// unit: an AUD first, and the SPS and PPS before a keyframe's slices, as
/// x264 writes them.
fn annex_b(body: &[u8], sets: Option<&(Vec<u8>, Vec<u8>)>) -> Vec<u8> {
    let mut au = vec![0, 0, 0, 1, 0x09, 0xf0];
    if let Some((sps, pps)) = sets {
        for n in [sps, pps] {
            au.extend_from_slice(&[0, 0, 0, 1]);
            au.extend_from_slice(n);
        }
    }
    for nal in nal_units(&body[5..]).unwrap() {
        au.extend_from_slice(&[0, 0, 1]);
        au.extend_from_slice(nal);
    }
    au
}

fn cts_of(body: &[u8]) -> i32 {
    i32::from_be_bytes([body[2], body[3], body[4], 0]) >> 8
}

#[test]
fn annex_b_access_units_become_the_same_flv_tags() {
    let tags = video_tags();
    let (_, seq) = &tags[0];
    assert_eq!(
        &seq[..2],
        &[0x17, 0],
        "the fixture starts with its sequence header"
    );
    let sets = parameter_sets(&seq[5..]);
    let mut p = H264Packager::new();
    let mut sequence_headers = 0;
    // Frames only (not the end-of-sequence tag at the end).
    for (dts, body) in tags[1..].iter().filter(|(_, b)| b[1] == 1) {
        let key = body[0] >> 4 == 1;
        let pts = (*dts as i64 + i64::from(cts_of(body))) as u32;
        let out = p
            .package(pts, *dts, &annex_b(body, key.then_some(&sets)))
            .unwrap();
        for m in &out {
            assert_eq!(m.kind, MediaKind::Video);
            assert_eq!(m.timestamp.0, *dts);
        }
        let frame = out.last().unwrap();
        if out.len() == 2 {
            sequence_headers += 1;
            let seq = &out[0];
            assert!(seq.sequence_header);
            assert_eq!(
                parse_avc_config(&seq.payload[5..]),
                parse_avc_config(&tags[0].1[5..]),
                "the record says what the encoder's said"
            );
        }
        // The same tag: keyframe flag, composition time and NAL units
        // (the AUD, SPS and PPS left out).
        assert_eq!(frame.payload, *body, "frame at {dts}");
        assert_eq!(frame.keyframe, key);
    }
    assert_eq!(
        sequence_headers, 1,
        "sent once: the parameter sets never change"
    );
}

#[test]
fn length_prefixed_access_units_work_the_same() {
    let tags = video_tags();
    let sets = parameter_sets(&tags[0].1[5..]);
    let mut p = H264Packager::new();
    let (dts, body) = &tags[1];
    let mut au = Vec::new();
    for n in [&sets.0, &sets.1] {
        au.extend_from_slice(&(n.len() as u32).to_be_bytes());
        au.extend_from_slice(n);
    }
    au.extend_from_slice(&body[5..]);
    let pts = (*dts as i64 + i64::from(cts_of(body))) as u32;
    let out = p.package(pts, *dts, &au).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].payload, *body);
}

#[test]
fn new_parameter_sets_send_a_new_sequence_header() {
    let tags = video_tags();
    let sets = parameter_sets(&tags[0].1[5..]);
    let (dts, body) = &tags[1];
    let mut p = H264Packager::new();
    assert_eq!(
        p.package(*dts, *dts, &annex_b(body, Some(&sets)))
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        p.package(*dts, *dts, &annex_b(body, Some(&sets)))
            .unwrap()
            .len(),
        1
    );
    // Another level in the SPS: what a new resolution brings.
    let mut sps = sets.0.clone();
    sps[3] = sps[3].wrapping_add(1);
    let out = p
        .package(*dts, *dts, &annex_b(body, Some(&(sps, sets.1.clone()))))
        .unwrap();
    assert_eq!(out.len(), 2);
    assert!(out[0].sequence_header);
}

#[test]
fn what_cannot_be_sent_says_why() {
    let mut p = H264Packager::new();
    assert_eq!(p.package(0, 0, &[]), Err(FrameError::Empty));
    assert_eq!(
        p.package(0, 0, &[0, 0, 0, 9, 1]),
        Err(FrameError::BadLength)
    );
    assert_eq!(
        p.package(0, 0, &[0, 0, 1, 0xe5, 0x88]),
        Err(FrameError::ForbiddenBit)
    );
    // A slice with no SPS and PPS before it.
    assert_eq!(
        p.package(0, 0, &[0, 0, 1, 0x65, 0x88]),
        Err(FrameError::NoParameterSets)
    );
    assert_eq!(
        p.package(0, 1 << 24, &[0, 0, 1, 0x65, 0x88]),
        Err(FrameError::CompositionTime(-(1 << 24)))
    );
    // A 4-byte start code's leading zero does not end the unit before.
    let units = nal_units(&[0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2]).unwrap();
    assert_eq!(units, vec![&[0x67, 1][..], &[0x68, 2][..]]);
}

#[test]
fn an_annex_b_stream_splits_into_the_access_units_it_was_made_of() {
    let tags = video_tags();
    let sets = parameter_sets(&tags[0].1[5..]);
    let mut stream = Vec::new();
    let mut units = Vec::new();
    for (_, body) in tags[1..].iter().filter(|(_, b)| b[1] == 1) {
        let key = body[0] >> 4 == 1;
        let au = annex_b(body, key.then_some(&sets));
        // Without delimiters too: the splitter must find the slices' starts.
        let au = if units.len() % 2 == 0 {
            au
        } else {
            au[6..].to_vec()
        };
        stream.extend_from_slice(&au);
        units.push(au);
    }
    let split = h264_access_units(&stream);
    assert_eq!(split.len(), units.len());
    for (got, want) in split.iter().zip(&units) {
        assert_eq!(nal_units(got).unwrap(), nal_units(want).unwrap());
    }
    assert!(h264_access_units(&[]).is_empty());
    assert_eq!(h264_access_units(&[0, 0, 1, 0x65, 0x88]).len(), 1);
}
