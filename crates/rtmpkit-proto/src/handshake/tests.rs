use super::digest::*;
use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Drives a client and a server against each other, delivering `step` bytes at a time.
fn run_pair(kind: HandshakeKind, step: usize) -> (ClientHandshake, ServerHandshake) {
    let mut c = ClientHandshake::new(kind, 1000, 1);
    let mut s = ServerHandshake::new(2000, 2);
    let mut to_server = c.take_output();
    let mut to_client = Vec::new();
    for _ in 0..10_000 {
        if c.is_complete() && s.is_complete() {
            break;
        }
        if !to_server.is_empty() {
            let n = step.min(to_server.len());
            let used = s.handle_input(&to_server[..n], 5).unwrap();
            assert_eq!(used, n);
            to_server.drain(..n);
            to_client.extend(s.take_output());
        }
        if !to_client.is_empty() {
            let n = step.min(to_client.len());
            let used = c.handle_input(&to_client[..n], 6).unwrap();
            assert_eq!(used, n);
            to_client.drain(..n);
            to_server.extend(c.take_output());
        }
    }
    assert!(c.is_complete() && s.is_complete());
    (c, s)
}

#[test]
fn simple_pair_completes() {
    for step in [1, 7, 1536, 5000] {
        let (c, s) = run_pair(HandshakeKind::Simple, step);
        assert!(!s.client_used_digest());
        assert!(!c.server_digest_verified());
    }
}

#[test]
fn digest_pair_completes_and_verifies_both_ways() {
    let (c, s) = run_pair(HandshakeKind::Digest, 600);
    assert!(s.client_used_digest());
    assert!(c.server_digest_verified(), "S1 and S2 digests verify");
}

#[test]
fn bytes_after_s2_are_not_consumed() {
    let mut c = ClientHandshake::new(HandshakeKind::Simple, 0, 3);
    let mut s = ServerHandshake::new(0, 4);
    let c0c1 = c.take_output();
    s.handle_input(&c0c1, 0).unwrap();
    let mut s012 = s.take_output();
    s012.extend_from_slice(b"chunk");
    let used = c.handle_input(&s012, 0).unwrap();
    assert_eq!(used, s012.len() - 5);
    assert!(c.is_complete());
    let mut c2 = c.take_output();
    c2.extend_from_slice(b"xyz");
    assert_eq!(s.handle_input(&c2, 0).unwrap(), 1536);
}

#[test]
fn simple_s2_echoes_c1() {
    let mut c = ClientHandshake::new(HandshakeKind::Simple, 77, 9);
    let c0c1 = c.take_output();
    let mut s = ServerHandshake::new(0, 4);
    s.handle_input(&c0c1, 0).unwrap();
    let out = s.take_output();
    assert_eq!(out.len(), 1 + 2 * 1536);
    assert_eq!(out[0], 3);
    let s2 = &out[1537..];
    assert_eq!(&s2[..4], &77u32.to_be_bytes());
    assert_eq!(&s2[8..], &c0c1[9..]);
}

#[test]
fn rtmpe_version_is_rejected_at_once() {
    let mut s = ServerHandshake::new(0, 4);
    assert_eq!(
        s.handle_input(&[6], 0),
        Err(HandshakeError::UnsupportedVersion(6))
    );
    let mut s = ServerHandshake::new(0, 4);
    assert_eq!(
        s.handle_input(&[200], 0),
        Err(HandshakeError::UnsupportedVersion(200))
    );
    // A TLS ClientHello on a plain port is named as such, at once.
    let mut s = ServerHandshake::new(0, 4);
    assert_eq!(
        s.handle_input(&[0x16, 3, 1, 0, 0xc8], 0),
        Err(HandshakeError::TlsOnPlainPort)
    );
}

/// lal v0.21.0's deterministic digest C1 (test-vectors.md): time 0, version
/// 09007c02, then a repeated text; the digest sits at offset 433.
#[test]
fn lal_digest_c1_vector() {
    let text = b"random buf of rtmp handshake gen by lal v0.21.0 (github.com/q191201771/lal)";
    let mut c1 = [0u8; PACKET_SIZE];
    c1[4..8].copy_from_slice(&[0x09, 0x00, 0x7c, 0x02]);
    for (i, b) in c1[8..].iter_mut().enumerate() {
        *b = text[i % text.len()];
    }
    assert_eq!(Schema::DigestFirst.digest_offset(&c1), 433);
    let d = imprint(&mut c1, Schema::DigestFirst, &player_key()[..30]);
    assert_eq!(
        d.to_vec(),
        hex("2df95dd708aada79a52707dd38d92dff654932732b211eadc09a1836b72b4e50")
    );
    // A server recognises it, and answers with a valid digest S1 and S2.
    assert_eq!(
        find_digest(&c1, &player_key()[..30]).map(|x| x.0),
        Some(Schema::DigestFirst)
    );
    let mut s = ServerHandshake::new(0, 11);
    let mut c0c1 = vec![3];
    c0c1.extend_from_slice(&c1);
    s.handle_input(&c0c1, 0).unwrap();
    assert!(s.client_used_digest());
    let out = s.take_output();
    let s1: [u8; PACKET_SIZE] = out[1..1537].try_into().unwrap();
    let s2: [u8; PACKET_SIZE] = out[1537..].try_into().unwrap();
    assert!(find_digest(&s1, &server_key()[..36]).is_some());
    assert!(verify_response(&s2, &server_key(), &d));
}

#[test]
fn key_first_schema_is_recognised() {
    let mut c1 = [0u8; PACKET_SIZE];
    SplitMix64::new(5).fill(&mut c1[8..]);
    c1[4..8].copy_from_slice(&[0x80, 0, 7, 2]);
    imprint(&mut c1, Schema::KeyFirst, &player_key()[..30]);
    assert_eq!(
        find_digest(&c1, &player_key()[..30]).map(|x| x.0),
        Some(Schema::KeyFirst)
    );
}

/// A C0+C1 captured from FFmpeg 5.1's RTMP client (`ffmpeg ... -f flv
/// rtmp://127.0.0.1:PORT/...` against a listener that records the first
/// 1537 bytes). VLC sends the identical C1. Its digest sits at offset 494
/// (digest-first schema, base 8).
#[test]
fn ffmpeg_c1_digest_verifies() {
    let c0c1 = include_bytes!("../../../../tests/vectors/ffmpeg-c0c1.bin");
    assert_eq!(c0c1.len(), 1537);
    assert_eq!(c0c1[0], 3);
    let c1: [u8; PACKET_SIZE] = c0c1[1..].try_into().unwrap();
    assert_eq!(&c1[..8], &[0, 0, 0, 0, 0x09, 0x00, 0x7c, 0x02]);
    assert_eq!(Schema::DigestFirst.digest_offset(&c1), 494);
    assert_eq!(
        find_digest(&c1, &player_key()[..30]).map(|x| x.0),
        Some(Schema::DigestFirst)
    );
    let mut s = ServerHandshake::new(0, 1);
    s.handle_input(c0c1, 0).unwrap();
    assert!(s.client_used_digest());
}
