//! The frame-level client's packaging: arbitrary encoder output, in turn,
//! to one packager. The first byte picks it (0 H.264, 1 HEVC, 2 AV1,
//! 3 AAC, 4 Opus); the rest is a run of 2-byte lengths, each followed by
//! that many bytes of frame. Packaging returns an error or tags, never
//! panics; every tag's header parses, a frame tag holds no more bytes
//! than went in, a player's view of it (`media::frame`) gives those bytes
//! back, and the metadata describer takes every tag.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmpkit_proto::media::{
    AacPackager, AudioTagHeader, Av1Packager, Describer, Frame, H264Packager, HevcPackager,
    MediaKind, OpusPackager, VideoTagHeader, nal_units,
};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let (mut h264, mut hevc, mut av1) =
        (H264Packager::new(), HevcPackager::new(), Av1Packager::new());
    let (mut aac, mut opus) = (AacPackager::new(), OpusPackager::new());
    let mut describer = Describer::new();
    let mut ts = 0u32;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let frame = &rest[2..2 + len];
        rest = &rest[2 + len..];
        ts += 40;
        let pts = ts + u32::from(frame.first().copied().unwrap_or(0));
        let tags = match pick % 5 {
            0 => h264.package(pts, ts, frame),
            1 => hevc.package(pts, ts, frame),
            2 => av1.package(ts, frame),
            3 => aac.package(ts, frame),
            _ => opus.package(ts, frame),
        };
        let Ok(tags) = tags else { continue };
        for t in &tags {
            let _ = describer.observe(t);
            let header_len = match t.kind {
                MediaKind::Video => {
                    VideoTagHeader::parse(&t.payload)
                        .expect("video header")
                        .header_len
                }
                MediaKind::Audio => {
                    AudioTagHeader::parse(&t.payload)
                        .expect("audio header")
                        .header_len
                }
                MediaKind::Metadata => unreachable!("packagers make no metadata"),
            };
            if t.sequence_header {
                continue;
            }
            let body = &t.payload[header_len..];
            match rtmpkit_proto::media::frame(t) {
                Some(Frame::Coded(c)) => assert_eq!(&c.data[..], body),
                other => panic!("a coded frame unpacks as one: {other:?}"),
            }
            if pick % 5 < 2 {
                let nals = nal_units(body).expect("a frame tag's NAL units parse");
                assert!(nals.iter().map(|n| n.len()).sum::<usize>() <= frame.len());
            } else {
                assert!(body.len() <= frame.len());
            }
        }
    }
});
