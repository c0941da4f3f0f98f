//! Server session after a valid handshake: arbitrary bytes in, cut
//! anywhere. Every request is accepted, so the fuzzer reaches publishing
//! and playing. Output stays bounded by input, and media handed out keeps
//! within the decoder limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmpkit_proto::session::ServerEvent;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut s = rtmpkit_fuzz::server_after_handshake(t0);
    let mut out = 0;
    for (i, piece) in rtmpkit_fuzz::pieces(data).enumerate() {
        let now = t0 + Duration::from_millis(i as u64 * 500);
        if s.handle_input(piece, now).is_err() {
            assert!(s.is_closed());
            break;
        }
        s.handle_timeout(now);
        while let Some(ev) = s.poll_event() {
            // Refusals of misuse are fine here: the input may ask twice.
            let _ = match ev {
                ServerEvent::ConnectRequested { .. } => s.accept_connect(),
                ServerEvent::PublishRequested { stream_id, .. } => s.accept_publish(stream_id),
                ServerEvent::PlayRequested { stream_id, .. } => s.accept_play(stream_id),
                ServerEvent::Media { media, .. } => {
                    assert!(media.payload.len() <= 1 << 20);
                    Ok(())
                }
                _ => Ok(()),
            };
        }
        out += rtmpkit_fuzz::drain_output(&mut s);
        assert!(out <= rtmpkit_fuzz::output_bound(data.len()));
    }
});
