use super::*;
use crate::error::{Error, ProtocolError};
use bytes::{BufMut, Bytes};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn enc(e: &mut ChunkEncoder, csid: u32, ts: u32, ty: u8, msid: u32, p: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    e.encode(
        ChunkStreamId(csid),
        Timestamp(ts),
        ty,
        MessageStreamId(msid),
        p,
        &mut out,
    )
    .unwrap();
    out
}

fn decode_all(d: &mut ChunkDecoder, bytes: &[u8]) -> Vec<RawMessage> {
    d.push(bytes);
    let mut v = Vec::new();
    while let Some(m) = d.next_message().unwrap() {
        v.push(m);
    }
    v
}

/// lal chunk_divider_test.go: chunk size 4096, csid 7, ts 123, type 9, msid 1.
#[test]
fn divider_vector_lengths() {
    for (len, chunks) in [
        (1usize, 1usize),
        (2, 1),
        (4095, 1),
        (4096, 1),
        (4097, 2),
        (4098, 2),
        (8191, 2),
        (8192, 2),
        (8193, 3),
        (8194, 3),
        (12288, 3),
    ] {
        let mut e = ChunkEncoder::new();
        e.set_chunk_size(4096).unwrap();
        let payload = vec![0xabu8; len];
        let out = enc(&mut e, 7, 123, 9, 1, &payload);
        let l = (len as u32).to_be_bytes();
        let mut expect = vec![0x07, 0x00, 0x00, 0x7b, l[1], l[2], l[3], 0x09, 1, 0, 0, 0];
        for (i, c) in payload.chunks(4096).enumerate() {
            if i > 0 {
                expect.push(0xc7);
            }
            expect.extend_from_slice(c);
        }
        assert_eq!(out, expect, "len {len}");
        assert_eq!(out.len(), 12 + len + (chunks - 1));
    }
}

/// lal chunk_composer_test.go: peer chunk size 20, an audio message spliced
/// between two chunks of a video message.
#[test]
fn interleaved_chunk_streams_reassemble() {
    let video: Vec<u8> = (0..50u8).collect();
    let audio: Vec<u8> = (100..115u8).collect();
    let mut wire = hex("06 0003e8 000032 09 01000000");
    wire.extend_from_slice(&video[..20]);
    wire.push(0xc6);
    wire.extend_from_slice(&video[20..40]);
    wire.extend_from_slice(&hex("05 0003e8 00000f 08 01000000"));
    wire.extend_from_slice(&audio);
    wire.push(0xc6);
    wire.extend_from_slice(&video[40..]);
    let mut d = ChunkDecoder::new();
    d.set_chunk_size(20).unwrap();
    let msgs = decode_all(&mut d, &wire);
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].type_id, 8);
    assert_eq!(&msgs[0].payload[..], &audio[..]);
    assert_eq!(msgs[0].timestamp, Timestamp(1000));
    assert_eq!(msgs[1].type_id, 9);
    assert_eq!(&msgs[1].payload[..], &video[..]);
    assert_eq!(msgs[1].timestamp, Timestamp(1000));
    assert_eq!(msgs[1].stream_id, MessageStreamId(1));
}

#[test]
fn every_strict_prefix_is_incomplete() {
    let mut e = ChunkEncoder::new();
    let mut wire = enc(&mut e, 6, 0xFFFFFF + 5, 9, 1, &[7u8; 300]);
    wire.extend(enc(&mut e, 70, 3, 8, 1, &[1u8; 10]));
    wire.extend(enc(&mut e, 65599, 3, 8, 1, &[1u8; 0]));
    let all = decode_all(&mut ChunkDecoder::new(), &wire);
    assert_eq!(all.len(), 3);
    for n in 0..wire.len() {
        let mut d = ChunkDecoder::new();
        let got = decode_all(&mut d, &wire[..n]);
        // Never a wrong value: whatever comes out is a prefix of the whole.
        assert!(got.len() < all.len(), "prefix {n}");
        assert_eq!(&got[..], &all[..got.len()], "prefix {n}");
    }
    let mut d = ChunkDecoder::new();
    assert_eq!(decode_all(&mut d, &wire).len(), 3);
}

#[test]
fn byte_at_a_time_equals_all_at_once() {
    let mut e = ChunkEncoder::new();
    let mut wire = Vec::new();
    let mut sent = Vec::new();
    for i in 0..40u32 {
        let len = (i * 37 % 400) as usize;
        let p: Vec<u8> = (0..len).map(|j| (j as u32 + i) as u8).collect();
        let csid = [3u32, 4, 6, 64, 319, 320, 65599][(i % 7) as usize];
        let ts = i * 40 + (i % 3);
        wire.extend(enc(&mut e, csid, ts, 8 + (i % 2) as u8, 1, &p));
        sent.push((csid, ts, p));
    }
    let mut d = ChunkDecoder::new();
    let mut got = Vec::new();
    for b in &wire {
        d.push(std::slice::from_ref(b));
        while let Some(m) = d.next_message().unwrap() {
            got.push((m.csid.0, m.timestamp.0, m.payload.to_vec()));
        }
    }
    assert_eq!(got, sent);
}

#[test]
fn header_compression_is_used() {
    let mut e = ChunkEncoder::new();
    let a = enc(&mut e, 4, 0, 8, 1, &[0; 10]);
    let b = enc(&mut e, 4, 23, 8, 1, &[0; 10]);
    let c = enc(&mut e, 4, 46, 8, 1, &[0; 10]);
    let d = enc(&mut e, 4, 69, 8, 1, &[0; 11]);
    let back = enc(&mut e, 4, 10, 8, 1, &[0; 11]);
    assert_eq!(a[0] >> 6, 0);
    assert_eq!(b[0] >> 6, 2, "same length and type: fmt 2");
    assert_eq!(c[0] >> 6, 3, "same delta: fmt 3");
    assert_eq!(c.len(), 1 + 10);
    assert_eq!(d[0] >> 6, 1, "new length: fmt 1");
    assert_eq!(back[0] >> 6, 0, "timestamp going back: fmt 0");
    let mut dec = ChunkDecoder::new();
    let mut wire = a;
    wire.extend(b);
    wire.extend(c);
    wire.extend(d);
    wire.extend(back);
    let ts: Vec<u32> = decode_all(&mut dec, &wire)
        .iter()
        .map(|m| m.timestamp.0)
        .collect();
    assert_eq!(ts, vec![0, 23, 46, 69, 10]);
}

/// A fmt-3 chunk right after a fmt-0 chunk starts a message whose delta is
/// the fmt-0 timestamp (§5.3.1.2.4).
#[test]
fn fmt3_after_fmt0_uses_timestamp_as_delta() {
    let mut wire = hex("04 000064 000002 08 01000000 aabb");
    wire.extend(hex("c4 ccdd"));
    let mut d = ChunkDecoder::new();
    let m = decode_all(&mut d, &wire);
    assert_eq!(m[1].timestamp, Timestamp(200));
    assert_eq!(&m[1].payload[..], &[0xcc, 0xdd]);
}

#[test]
fn three_byte_csid_65599_is_little_endian() {
    let mut e = ChunkEncoder::new();
    let out = enc(&mut e, 65599, 0, 8, 1, &[1, 2]);
    assert_eq!(&out[..3], &[0x01, 0xff, 0xff]);
    let out = enc(&mut e, 365, 0, 8, 1, &[1, 2]);
    // §5.3.1.1: "ID 365 would be represented by 1 in the first byte, and 301
    // in the 16-bit field" (little-endian on the wire, as FFmpeg writes it).
    assert_eq!(&out[..3], &[0x01, 0x2d, 0x01]);
    let out = enc(&mut e, 64, 0, 8, 1, &[1, 2]);
    assert_eq!(&out[..2], &[0x00, 0x00]);
    let out = enc(&mut e, 319, 0, 8, 1, &[1, 2]);
    assert_eq!(&out[..2], &[0x00, 0xff]);
    let mut d = ChunkDecoder::new();
    let mut wire = enc(&mut ChunkEncoder::new(), 65599, 5, 9, 1, &[9; 300]);
    wire.extend(enc(&mut ChunkEncoder::new(), 320, 5, 9, 1, &[8; 3]));
    let m = decode_all(&mut d, &wire);
    assert_eq!(m[0].csid, ChunkStreamId(65599));
    assert_eq!(m[0].payload.len(), 300);
    assert_eq!(m[1].csid, ChunkStreamId(320));
}

#[test]
fn invalid_csid_is_misuse() {
    let mut e = ChunkEncoder::new();
    let mut out = Vec::new();
    for c in [0, 1, 65600] {
        assert!(matches!(
            e.encode(
                ChunkStreamId(c),
                Timestamp(0),
                8,
                MessageStreamId(1),
                &[],
                &mut out
            ),
            Err(Error::Misuse(_))
        ));
    }
}

/// §5.3.1.3 at exactly 0xFFFFFF: the spec's ">=" (lal's writer used ">").
#[test]
fn extended_timestamp_at_exactly_0xffffff() {
    let mut e = ChunkEncoder::new();
    let out = enc(&mut e, 6, 0xFFFFFF, 9, 1, &[5u8; 200]);
    let mut expect = hex("06 ffffff 0000c8 09 01000000 00ffffff");
    expect.extend_from_slice(&[5u8; 128]);
    expect.extend(hex("c6 00ffffff"));
    expect.extend_from_slice(&[5u8; 72]);
    assert_eq!(out, expect);
    let mut d = ChunkDecoder::new();
    let m = decode_all(&mut d, &out);
    assert_eq!(m[0].timestamp, Timestamp(0xFFFFFF));
    assert_eq!(m[0].payload.len(), 200);
    // Just below: no extension.
    let out = enc(&mut ChunkEncoder::new(), 6, 0xFFFFFE, 9, 1, &[5u8; 2]);
    assert_eq!(out.len(), 12 + 2);
}

/// Extended timestamps on fmt 1/2 are deltas and must be added once (lal
/// double-counted them).
#[test]
fn extended_delta_on_fmt2_and_fmt1() {
    let mut wire = hex("06 000010 000001 09 01000000 aa");
    wire.extend(hex("86 ffffff 01000000 bb")); // fmt 2, delta 0x01000000
    wire.extend(hex("46 ffffff 000002 09 01000001 ccdd")); // fmt 1, delta 0x01000001
    let mut d = ChunkDecoder::new();
    let m = decode_all(&mut d, &wire);
    assert_eq!(m[1].timestamp, Timestamp(0x10 + 0x0100_0000));
    assert_eq!(m[2].timestamp, Timestamp(0x10 + 0x0100_0000 + 0x0100_0001));
}

/// Timestamps across the 2^32 wrap keep increasing in serial arithmetic,
/// with the extended field on every chunk.
#[test]
fn extended_timestamp_across_the_wrap() {
    let mut e = ChunkEncoder::new();
    let stamps = [u32::MAX - 40, u32::MAX - 1, u32::MAX, 0, 39, 79];
    let mut wire = Vec::new();
    for &t in &stamps {
        wire.extend(enc(&mut e, 6, t, 9, 1, &[1u8; 300]));
    }
    let mut d = ChunkDecoder::new();
    let got: Vec<u32> = decode_all(&mut d, &wire)
        .iter()
        .map(|m| m.timestamp.0)
        .collect();
    assert_eq!(got, stamps);
    // The first message after the wrap is written as a delta (fmt 2), not a
    // jump back (fmt 0).
    let mut e = ChunkEncoder::new();
    enc(&mut e, 6, u32::MAX, 9, 1, &[1]);
    let after = enc(&mut e, 6, 3, 9, 1, &[1]);
    assert_eq!(after[0] >> 6, 2);
    assert_eq!(&after[1..4], &[0, 0, 4]);
}

/// rtmpdump-style peers omit the extended timestamp on fmt-3 chunks; the
/// decoder accepts both forms.
#[test]
fn fmt3_without_extended_timestamp_is_accepted() {
    let payload: Vec<u8> = (0..200u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut wire = hex("06 ffffff 0000c8 09 01000000 01000000");
    wire.extend_from_slice(&payload[..128]);
    wire.push(0xc6);
    wire.extend_from_slice(&payload[128..]);
    let mut d = ChunkDecoder::new();
    let m = decode_all(&mut d, &wire);
    assert_eq!(m[0].timestamp, Timestamp(0x0100_0000));
    assert_eq!(&m[0].payload[..], &payload[..]);
}

/// Set Chunk Size takes effect at the next chunk, also when it arrives in
/// the middle of another message (lal corrupted that message).
#[test]
fn chunk_size_changed_mid_message() {
    let video: Vec<u8> = (0..=255u8).cycle().take(400).collect();
    let mut wire = hex("06 000000 000190 09 01000000");
    wire.extend_from_slice(&video[..128]);
    // Set Chunk Size 100 on csid 2.
    wire.extend(hex("02 000000 000004 01 00000000 00000064"));
    wire.push(0xc6);
    wire.extend_from_slice(&video[128..228]);
    wire.push(0xc6);
    wire.extend_from_slice(&video[228..328]);
    wire.push(0xc6);
    wire.extend_from_slice(&video[328..]);
    let mut d = ChunkDecoder::new();
    let m = decode_all(&mut d, &wire);
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].type_id, 1);
    assert_eq!(d.chunk_size(), 100);
    assert_eq!(&m[1].payload[..], &video[..]);
}

#[test]
fn abort_discards_the_partial_message() {
    let mut wire = hex("06 000000 000100 09 01000000");
    wire.extend_from_slice(&[1u8; 128]);
    wire.extend(hex("02 000000 000004 02 00000000 00000006"));
    wire.extend(hex("06 000000 000002 09 01000000 0909"));
    let mut d = ChunkDecoder::new();
    let m = decode_all(&mut d, &wire);
    assert_eq!(m.len(), 2);
    assert_eq!(&m[1].payload[..], &[9, 9]);
}

#[test]
fn bad_chunk_sizes_are_errors() {
    for bad in ["00000000", "80000000"] {
        let wire = hex(&format!("02 000000 000004 01 00000000 {bad}"));
        let mut d = ChunkDecoder::new();
        d.push(&wire);
        assert!(matches!(
            d.next_message(),
            Err(Error::Protocol(ProtocolError::ChunkSizeOutOfRange { .. }))
        ));
    }
    // Larger than 0xFFFFFF is the same as 0xFFFFFF.
    let wire = hex("02 000000 000004 01 00000000 7fffffff");
    let mut d = ChunkDecoder::new();
    decode_all(&mut d, &wire);
    assert_eq!(d.chunk_size(), 0xFFFFFF);
    // An empty Set Chunk Size payload is a decode error, not a panic.
    let wire = hex("02 000000 000000 01 00000000");
    let mut d = ChunkDecoder::new();
    d.push(&wire);
    assert!(matches!(d.next_message(), Err(Error::Decode(_))));
}

#[test]
fn limits_are_enforced() {
    let limits = DecoderLimits {
        max_message_len: 1000,
        max_chunk_streams: 3,
        max_buffered: 2000,
        ..DecoderLimits::default()
    };
    let mut d = ChunkDecoder::with_limits(limits);
    d.push(&hex("06 000000 0003e9 09 01000000"));
    assert!(matches!(
        d.next_message(),
        Err(Error::Protocol(ProtocolError::MessageTooLong {
            len: 1001,
            max: 1000
        }))
    ));

    let mut d = ChunkDecoder::with_limits(limits);
    for c in 3..6u8 {
        d.push(&[c, 0, 0, 0, 0, 0, 1, 9, 1, 0, 0, 0, 0]);
    }
    assert_eq!(decode_all(&mut d, &[]).len(), 3);
    d.push(&[7, 0, 0, 0, 0, 0, 1, 9, 1, 0, 0, 0, 0]);
    assert!(matches!(
        d.next_message(),
        Err(Error::Protocol(ProtocolError::TooManyChunkStreams(3)))
    ));

    // Partial messages over all chunk streams are bounded.
    let mut d = ChunkDecoder::with_limits(limits);
    let mut wire = Vec::new();
    for c in 3..6u8 {
        wire.extend_from_slice(&[c, 0, 0, 0, 0, 0x03, 0xe8, 9, 1, 0, 0, 0]);
        wire.extend_from_slice(&[0u8; 128]);
    }
    for _ in 0..5 {
        for c in 3..6u8 {
            wire.push(0xc0 | c);
            wire.extend_from_slice(&[0u8; 128]);
        }
    }
    d.push(&wire);
    let mut res = Ok(None);
    for _ in 0..100 {
        res = d.next_message();
        if res.is_err() {
            break;
        }
    }
    assert!(matches!(
        res,
        Err(Error::Protocol(ProtocolError::TooMuchBuffered(2000)))
    ));
}

#[test]
fn fresh_stream_without_full_header_is_an_error() {
    let mut d = ChunkDecoder::new();
    d.push(&hex("c4 0000"));
    assert!(matches!(
        d.next_message(),
        Err(Error::Protocol(ProtocolError::MissingHeader(4)))
    ));
    // librtmp starts its ping on csid 2 with fmt 1: tolerated.
    let mut d = ChunkDecoder::new();
    let m = decode_all(&mut d, &hex("42 000000 000006 04 0006 00000010"));
    assert_eq!(m[0].type_id, 4);
}

#[test]
fn zero_length_message() {
    let mut e = ChunkEncoder::new();
    let wire = enc(&mut e, 4, 5, 8, 1, &[]);
    let mut d = ChunkDecoder::new();
    let m = decode_all(&mut d, &wire);
    assert_eq!(m.len(), 1);
    assert!(m[0].payload.is_empty());
}

#[test]
fn bytes_written_into_the_buffer_directly_decode() {
    let mut e = ChunkEncoder::new();
    let wire = enc(&mut e, 4, 5, 8, 1, &[3u8; 100]);
    let mut d = ChunkDecoder::new();
    d.buffer_mut().put_slice(&wire);
    let m = d.next_message().unwrap().unwrap();
    assert_eq!(m.payload, Bytes::from(vec![3u8; 100]));
    assert_eq!(d.pending_bytes(), 0);
}

/// The shared (vectored) form gives the same bytes as the copying form,
/// with one-byte (static) and longer continuation headers.
#[test]
fn encode_shared_equals_encode() {
    for csid in [2, 6, 63, 64, 400] {
        encode_shared_equals_encode_on(ChunkStreamId(csid));
    }
}

fn encode_shared_equals_encode_on(csid: ChunkStreamId) {
    let mut a = ChunkEncoder::new();
    let mut b = ChunkEncoder::new();
    a.set_chunk_size(1000).unwrap();
    b.set_chunk_size(1000).unwrap();
    let mut copied = Vec::new();
    let mut segments: Vec<Bytes> = Vec::new();
    let mut headers = bytes::BytesMut::new();
    for (i, len) in [0usize, 1, 999, 1000, 1001, 2500, 3000, 3000]
        .iter()
        .enumerate()
    {
        let payload = Bytes::from((0..*len).map(|j| (j + i) as u8).collect::<Vec<u8>>());
        let ts = Timestamp(0xFFFFF0 + i as u32 * 10);
        a.encode(csid, ts, 9, MessageStreamId(1), &payload, &mut copied)
            .unwrap();
        b.encode_shared(
            csid,
            ts,
            9,
            MessageStreamId(1),
            &payload,
            &mut headers,
            &mut segments,
        )
        .unwrap();
    }
    let joined: Vec<u8> = segments.iter().flat_map(|s| s.iter().copied()).collect();
    assert_eq!(joined, copied);
}

/// A run encoded once and adopted by a connection in the middle of its
/// own messages reads back as if the connection had encoded every message
/// itself, including the compressed headers after the run.
#[test]
fn an_adopted_run_decodes_as_the_connection_own_messages() {
    let big = vec![7u8; 300];
    let mut e = ChunkEncoder::new();
    let mut wire = Vec::new();
    wire.extend(enc(&mut e, 6, 1000, 9, 1, b"before"));
    wire.extend(enc(&mut e, 4, 1000, 8, 1, b"a0"));
    let run = ChunkRun::encode(
        128,
        MessageStreamId(1),
        [
            (ChunkStreamId(6), Timestamp(1040), 9, &big[..]),
            (ChunkStreamId(4), Timestamp(1023), 8, &b"a1"[..]),
            (ChunkStreamId(4), Timestamp(1046), 8, &b"a2"[..]),
            (ChunkStreamId(6), Timestamp(1080), 9, &b"v2"[..]),
        ],
    )
    .unwrap();
    assert!(e.adopt(&run));
    wire.extend_from_slice(run.bytes());
    // After the run: compressed against the run's last headers.
    let after = enc(&mut e, 4, 1069, 8, 1, b"a3");
    assert_eq!(after[0] >> 6, 3, "same delta, length and type: fmt 3");
    wire.extend(after);
    wire.extend(enc(&mut e, 6, 1120, 9, 1, b"v3"));
    let got: Vec<(u32, u32, Vec<u8>)> = decode_all(&mut ChunkDecoder::new(), &wire)
        .into_iter()
        .map(|m| (m.csid.0, m.timestamp.0, m.payload.to_vec()))
        .collect();
    let want: Vec<(u32, u32, Vec<u8>)> = vec![
        (6, 1000, b"before".to_vec()),
        (4, 1000, b"a0".to_vec()),
        (6, 1040, big.clone()),
        (4, 1023, b"a1".to_vec()),
        (4, 1046, b"a2".to_vec()),
        (6, 1080, b"v2".to_vec()),
        (4, 1069, b"a3".to_vec()),
        (6, 1120, b"v3".to_vec()),
    ];
    assert_eq!(got, want);
    // A run made at another chunk size is not taken.
    let other = ChunkRun::encode(
        4096,
        MessageStreamId(1),
        [(ChunkStreamId(6), Timestamp(0), 9, &b"x"[..])],
    )
    .unwrap();
    assert!(!e.adopt(&other));
}
