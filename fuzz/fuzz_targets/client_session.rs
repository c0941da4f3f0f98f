//! Client session (publish or play) after a valid handshake: arbitrary
//! server bytes in, cut anywhere. Output stays bounded by input; a
//! publishing client is fed a frame when it says it may publish.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmpkit_proto::session::ClientEvent;
use rtmpkit_proto::{Media, Timestamp};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let publish = data.first().is_some_and(|b| b & 1 == 1);
    let mut c = rtmpkit_fuzz::client_after_handshake(publish, t0);
    let mut out = 0;
    let mut frames = 0usize;
    for (i, piece) in rtmpkit_fuzz::pieces(data).enumerate() {
        let now = t0 + Duration::from_millis(i as u64 * 500);
        if c.handle_input(piece, now).is_err() {
            assert!(c.is_closed());
            break;
        }
        c.handle_timeout(now);
        while let Some(ev) = c.poll_event() {
            match ev {
                ClientEvent::PublishStarted => {
                    let frame =
                        Media::video(Timestamp(0), bytes::Bytes::from_static(b"\x17\x01\0\0\0x"));
                    if c.send_media(&frame).is_ok() {
                        frames += 1;
                    }
                }
                ClientEvent::Media(m) => assert!(m.payload.len() <= 1 << 20),
                _ => {}
            }
        }
        out += rtmpkit_fuzz::drain_output(&mut c);
        assert!(out <= rtmpkit_fuzz::output_bound(data.len()) + frames * 64);
    }
});
