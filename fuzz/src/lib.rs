//! Shared pieces of the fuzz targets: tight decoder limits (so that the
//! allocation limit `fuzz/run` gives libFuzzer means something), and valid
//! handshake prefixes that take a session to its command phase.
#![forbid(unsafe_code)]

use rtmpkit_proto::handshake::{ClientHandshake, HandshakeKind, ServerHandshake};
use rtmpkit_proto::session::{ClientConfig, ServerConfig};
use rtmpkit_proto::{ClientSession, DecoderLimits, RtmpUrl, ServerSession};
use std::time::Instant;

/// Decoder limits of every target: 1 MiB messages, 2 MiB buffered, 16
/// chunk streams. `fuzz/run` fails any single allocation above 8 MiB.
pub fn limits() -> DecoderLimits {
    DecoderLimits {
        max_message_len: 1 << 20,
        max_buffered: 2 << 20,
        max_chunk_streams: 16,
        ..DecoderLimits::default()
    }
}

/// Output may grow with input, never beyond this: a fixed allowance for
/// the replies to a handshake and a connect, plus a bounded factor per
/// input byte (a 30-byte play command gets a few hundred bytes of notices).
pub fn output_bound(input_len: usize) -> usize {
    16 * 1024 + 64 * input_len
}

/// Splits fuzz input into pieces whose sizes come from the input itself,
/// so the fuzzer also explores how reads are cut.
pub fn pieces(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let (step, rest) = match data.split_first() {
        Some((&b, rest)) => (1 + b as usize * 4, rest),
        None => (1, data),
    };
    rest.chunks(step)
}

/// Every byte a session has queued, taken out.
pub fn drain_output<S: rtmpkit_proto::session::Side>(
    s: &mut rtmpkit_proto::session::Session<S>,
) -> usize {
    let mut segs = Vec::new();
    s.poll_transmit(usize::MAX, &mut segs);
    segs.iter().map(|b| b.len()).sum()
}

/// A server session that has finished a handshake with a valid client.
pub fn server_after_handshake(now: Instant) -> ServerSession {
    let config = ServerConfig {
        limits: limits(),
        ..ServerConfig::default()
    };
    let mut s = ServerSession::new(config, now, 1);
    let mut c = ClientHandshake::new(HandshakeKind::Simple, 0, 2);
    s.handle_input(&c.take_output(), now)
        .expect("valid C0C1 is accepted");
    let mut segs = Vec::new();
    s.poll_transmit(usize::MAX, &mut segs);
    c.handle_input(&segs.concat(), 0)
        .expect("our S0S1S2 is valid");
    s.handle_input(&c.take_output(), now)
        .expect("valid C2 is accepted");
    drain_output(&mut s);
    s
}

/// A client session (publish or play) that has finished a handshake with a
/// valid server and sent its connect.
pub fn client_after_handshake(publish: bool, now: Instant) -> ClientSession {
    let url = RtmpUrl::parse("rtmp://127.0.0.1/live/fuzz").expect("valid URL");
    let mut config = if publish {
        ClientConfig::publish(&url)
    } else {
        ClientConfig::play(&url)
    };
    config.limits = limits();
    let mut c = ClientSession::new(config, now, 3);
    let mut segs = Vec::new();
    c.poll_transmit(usize::MAX, &mut segs);
    let mut s = ServerHandshake::new(0, 4);
    s.handle_input(&segs.concat(), 0)
        .expect("our C0C1 is valid");
    c.handle_input(&s.take_output(), now)
        .expect("valid S0S1S2 is accepted");
    drain_output(&mut c);
    c
}
