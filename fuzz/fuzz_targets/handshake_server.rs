//! Server handshake against arbitrary client bytes (C0 C1 C2), cut
//! anywhere: it never consumes more than it got and never says more than
//! S0 S1 S2.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmpkit_proto::handshake::ServerHandshake;

fuzz_target!(|data: &[u8]| {
    let mut s = ServerHandshake::new(0, 9);
    let mut said = 0;
    let mut pending: Vec<u8> = Vec::new();
    for piece in rtmpkit_fuzz::pieces(data) {
        pending.extend_from_slice(piece);
        match s.handle_input(&pending, 0) {
            Ok(used) => {
                assert!(used <= pending.len());
                pending.drain(..used);
            }
            Err(_) => return,
        }
        said += s.take_output().len();
        assert!(said <= 1 + 2 * 1536);
        if s.is_complete() {
            return;
        }
    }
});
