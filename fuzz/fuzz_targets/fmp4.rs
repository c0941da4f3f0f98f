//! The fragmented-MP4 writer and its reader: arbitrary bytes as a stream
//! of media messages (each `kind`, `timestamp` and body from the input) go
//! through the demuxer and `FileWriter`; every fragment it writes reads
//! back with `fragment_span`, and so do the raw bytes. Output stays within
//! a bound of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmpkit::fmp4::{FileWriter, Written, fragment_span};
use rtmpkit_proto::{Media, MediaKind, Timestamp};

fuzz_target!(|data: &[u8]| {
    let _ = fragment_span(data);
    let mut w = FileWriter::new(1000, Some(2000));
    let mut out = Vec::new();
    let mut rest = data;
    let mut ts = 0u32;
    // Each message: kind (1 byte), timestamp step (1 byte, x8 ms), body
    // length (1 byte), body.
    while rest.len() >= 3 {
        let kind = match rest[0] % 3 {
            0 => MediaKind::Video,
            1 => MediaKind::Audio,
            _ => MediaKind::Metadata,
        };
        let step = u32::from(rest[1]) * 8;
        let len = usize::from(rest[2]).min(rest.len() - 3);
        let body = bytes::Bytes::copy_from_slice(&rest[3..3 + len]);
        rest = &rest[3 + len..];
        ts = ts.wrapping_add(step);
        w.push(&Media::new(kind, Timestamp(ts), body), &mut out);
    }
    w.finish(&mut out);
    let mut total = 0;
    for o in &out {
        match o {
            Written::Open { init, .. } => total += init.len(),
            Written::Fragment { data: f, .. } => {
                total += f.len();
                let size = u32::from_be_bytes([f[0], f[1], f[2], f[3]]) as usize;
                assert_eq!(&f[4..8], b"moof");
                assert!(
                    fragment_span(&f[8..size]).is_some(),
                    "a written fragment reads back"
                );
            }
            Written::Close { .. } => {}
        }
    }
    assert!(
        total <= 64 * 1024 + 64 * data.len(),
        "{total} bytes out of {}",
        data.len()
    );
});
