//! The frame-level client's H.264 packaging: arbitrary access units, in
//! turn, to one packager (the input is a run of 2-byte lengths, each
//! followed by that many bytes of access unit). It returns an error or
//! tags, never panics; a frame tag holds no more NAL bytes than went in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmpkit_proto::media::{H264Packager, nal_units};

fuzz_target!(|data: &[u8]| {
    let mut p = H264Packager::new();
    let mut rest = data;
    let mut ts = 0u32;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let au = &rest[2..2 + len];
        rest = &rest[2 + len..];
        ts += 40;
        let pts = ts + u32::from(au.first().copied().unwrap_or(0));
        if let Ok(tags) = p.package(pts, ts, au) {
            for t in tags.iter().filter(|t| !t.sequence_header) {
                let nals = nal_units(&t.payload[5..]).expect("a frame tag's NAL units parse");
                assert!(nals.iter().map(|n| n.len()).sum::<usize>() <= au.len());
            }
        }
    }
});
