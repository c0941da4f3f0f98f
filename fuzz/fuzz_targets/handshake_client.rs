//! Client handshake against arbitrary server bytes (S0 S1 S2), either kind,
//! cut anywhere: it never consumes more than it got and never says more
//! than C0 C1 C2.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmpkit_proto::handshake::{ClientHandshake, HandshakeKind};

fuzz_target!(|data: &[u8]| {
    let kind = match data.first() {
        Some(b) if b & 0x80 != 0 => HandshakeKind::Digest,
        _ => HandshakeKind::Simple,
    };
    let mut c = ClientHandshake::new(kind, 0, 7);
    let mut said = c.take_output().len();
    let mut pending: Vec<u8> = Vec::new();
    for piece in rtmpkit_fuzz::pieces(data) {
        pending.extend_from_slice(piece);
        match c.handle_input(&pending, 0) {
            Ok(used) => {
                assert!(used <= pending.len());
                pending.drain(..used);
            }
            Err(_) => return,
        }
        said += c.take_output().len();
        assert!(said <= 1 + 2 * 1536);
        if c.is_complete() {
            return;
        }
    }
});
