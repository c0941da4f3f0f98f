//! Hostile clients against `rtmpkit serve`: each one is closed, the
//! server's memory stays bounded (measured and printed), and a healthy
//! player of a live stream gets every frame meanwhile.
#![allow(clippy::unwrap_used)]

mod common;

use common::raw::{SETUP_SECS, chunked, connect_msg, handshaken, publishing, with_healthy_player};

use rtmpkit_proto::amf0::{Amf0Object, Amf0Value};
use rtmpkit_proto::handshake::{ClientHandshake, HandshakeKind};
use rtmpkit_proto::message::{Command, Message};
use rtmpkit_proto::{ChunkEncoder, ChunkStreamId, MessageStreamId, Timestamp};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Writes what it is given (ignoring errors once the server hung up), then
/// reads until the server closes; panics if it stays open past `limit`.
fn expect_closed(s: &mut TcpStream, limit: Duration) -> Duration {
    let t = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return t.elapsed(),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return t.elapsed(),
        }
        assert!(
            t.elapsed() < limit,
            "the server kept a hostile connection open for {limit:?}"
        );
    }
}

/// Sends bytes one a second until the server hangs up.
fn trickle(s: &mut TcpStream, bytes: &[u8]) -> Duration {
    dribble(s, bytes.iter().map(|b| vec![*b]), Duration::from_secs(1))
}

/// Writes the pieces one at a time, `every` apart, until the server hangs
/// up; how long that took.
fn dribble(
    s: &mut TcpStream,
    pieces: impl IntoIterator<Item = Vec<u8>>,
    every: Duration,
) -> Duration {
    let t = Instant::now();
    for piece in pieces {
        if s.write_all(&piece).is_err() {
            break;
        }
        std::thread::sleep(every);
        let mut probe = [0u8; 4096];
        s.set_nonblocking(true).unwrap();
        let r = s.read(&mut probe);
        s.set_nonblocking(false).unwrap();
        if matches!(r, Ok(0)) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(SETUP_SECS + 5),
            "slowloris kept open"
        );
    }
    t.elapsed()
}

#[test]
fn slowloris_through_the_handshake_is_closed_at_the_setup_timeout() {
    with_healthy_player(
        "slowloris handshake",
        "handshake with 127.0.0.1",
        64,
        |port| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let mut hs = ClientHandshake::new(HandshakeKind::Simple, 0, 1);
            let took = trickle(&mut s, &hs.take_output());
            assert!(took <= Duration::from_secs(SETUP_SECS + 3), "{took:?}");
        },
    );
}

#[test]
fn slowloris_through_connect_is_closed_at_the_setup_timeout() {
    with_healthy_player(
        "slowloris connect",
        "connect command with 127.0.0.1",
        64,
        |port| {
            let mut s = handshaken(port);
            let bytes = chunked(&mut ChunkEncoder::new(), 3, 0, &connect_msg("live"));
            let took = trickle(&mut s, &bytes);
            assert!(took <= Duration::from_secs(SETUP_SECS + 3), "{took:?}");
        },
    );
}

/// Commands that are skipped (unknown calls, data, createStream before
/// connect) do not hold the setup phase open: closed at the setup timeout.
#[test]
fn skipped_commands_before_connect_are_closed_at_the_setup_timeout() {
    with_healthy_player(
        "skipped commands before connect",
        "connect command with 127.0.0.1",
        64,
        |port| {
            let mut s = handshaken(port);
            let mut enc = ChunkEncoder::new();
            let junk = [
                Message::command(Command::create_stream(2.0)),
                Message::command(Command::new("ping", 0.0, Amf0Value::Null, vec![])),
                Message::data(vec!["onTextData".into()]),
            ];
            let pieces = (0..).map(|i| chunked(&mut enc, 3, 0, &junk[i % 3]));
            let took = dribble(&mut s, pieces, Duration::from_millis(200));
            assert!(took <= Duration::from_secs(SETUP_SECS + 3), "{took:?}");
        },
    );
}

#[test]
fn a_connect_with_a_10_mb_string_is_refused() {
    with_healthy_player(
        "10 MB connect string",
        "exceeds the limit of 65536",
        64,
        |port| {
            let mut s = handshaken(port);
            let m = Message::command(Command::connect(
                Amf0Object::new()
                    .with("app", "live")
                    .with("flashVer", Amf0Value::LongString("x".repeat(10 << 20))),
            ));
            let bytes = chunked(&mut ChunkEncoder::new(), 3, 0, &m);
            let _ = s.write_all(&bytes);
            expect_closed(&mut s, Duration::from_secs(5));
        },
    );
}

#[test]
fn chunk_size_1_with_a_16_mb_message_is_refused() {
    with_healthy_player(
        "chunk size 1, 16 MB message",
        "exceeds the limit of 65536",
        64,
        |port| {
            let mut s = handshaken(port);
            let mut enc = ChunkEncoder::new();
            let mut bytes = chunked(&mut enc, 2, 0, &Message::SetChunkSize(1));
            enc.set_chunk_size(1).unwrap();
            let video = Message::Video(vec![0x17u8; (16 << 20) - 1].into());
            bytes.extend(chunked(&mut enc, 6, 1, &video));
            let _ = s.write_all(&bytes);
            expect_closed(&mut s, Duration::from_secs(10));
        },
    );
}

#[test]
fn thousands_of_chunk_streams_are_refused() {
    with_healthy_player("5000 chunk streams", "chunk streams in use", 64, |port| {
        let mut s = handshaken(port);
        let mut bytes = Vec::new();
        // On each chunk stream, the first chunk of a 200-byte message (its
        // header and 128 bytes), so each one holds a partial message.
        for csid in 3..5003u32 {
            let mut one = Vec::new();
            ChunkEncoder::new()
                .encode(
                    ChunkStreamId(csid),
                    Timestamp(0),
                    9,
                    MessageStreamId(1),
                    &[0x17; 200],
                    &mut one,
                )
                .unwrap();
            let basic = match csid {
                0..64 => 1,
                64..320 => 2,
                _ => 3,
            };
            bytes.extend_from_slice(&one[..basic + 11 + 128]);
        }
        let _ = s.write_all(&bytes);
        expect_closed(&mut s, Duration::from_secs(5));
    });
}

#[test]
fn amf_nested_100000_deep_is_refused() {
    // 100,000 levels take 400 KB: as a connect, refused by size.
    let nested = |payload: &mut Vec<u8>| {
        for _ in 0..100_000 {
            payload.extend_from_slice(&[0x03, 0x00, 0x01, b'a']);
        }
        payload.push(0x05);
    };
    with_healthy_player(
        "AMF nested 100,000 deep in connect",
        "exceeds the limit of 65536",
        64,
        |port| {
            let mut s = handshaken(port);
            let mut payload = vec![0x02, 0x00, 0x07];
            payload.extend_from_slice(b"connect");
            payload.push(0x00);
            payload.extend_from_slice(&1f64.to_be_bytes());
            nested(&mut payload);
            let mut bytes = Vec::new();
            ChunkEncoder::new()
                .encode(
                    ChunkStreamId(3),
                    Timestamp(0),
                    20,
                    MessageStreamId(0),
                    &payload,
                    &mut bytes,
                )
                .unwrap();
            let _ = s.write_all(&bytes);
            expect_closed(&mut s, Duration::from_secs(5));
        },
    );
    // From a publisher, as metadata (large messages are allowed then):
    // refused by depth, without a stack overflow. Data that does not
    // decode is skipped: the publisher goes on.
    with_healthy_player(
        "AMF nested 100,000 deep in metadata",
        "nesting deeper than 64 levels",
        64,
        |port| {
            let (mut s, mut enc) = publishing(port, "other");
            let mut payload = vec![0x02, 0x00, 0x0d];
            payload.extend_from_slice(b"@setDataFrame");
            payload.extend_from_slice(&[0x02, 0x00, 0x0a]);
            payload.extend_from_slice(b"onMetaData");
            nested(&mut payload);
            let mut bytes = Vec::new();
            enc.encode(
                ChunkStreamId(5),
                Timestamp(0),
                18,
                MessageStreamId(1),
                &payload,
                &mut bytes,
            )
            .unwrap();
            let _ = s.write_all(&bytes);
            expect_open(&mut s, Duration::from_secs(1));
        },
    );
}

/// The connection stays open for `d` (bytes from the server are fine).
fn expect_open(s: &mut TcpStream, d: Duration) {
    let t = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    while t.elapsed() < d {
        match s.read(&mut buf) {
            Ok(0) => panic!("the server closed the connection"),
            Ok(_) => {}
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "{e}"
            ),
        }
    }
}

/// Media on a message stream id that was never created belongs to the
/// connection's one publishing stream (Node-Media-Server's relay sends
/// it on stream 0); with nothing publishing it is dropped. Neither ends
/// the session.
#[test]
fn media_on_an_unknown_stream_id_is_not_fatal() {
    with_healthy_player(
        "media on unknown stream ids of a publisher",
        "taken as the publishing stream 1's",
        64,
        |port| {
            let (mut s, mut enc) = publishing(port, "other");
            let mut bytes = Vec::new();
            for stream in [7u32, 99, 0x00FF_FFFF] {
                bytes.extend(chunked(
                    &mut enc,
                    6,
                    stream,
                    &Message::Video(vec![0x17; 500].into()),
                ));
            }
            let _ = s.write_all(&bytes);
            expect_open(&mut s, Duration::from_secs(1));
        },
    );
    with_healthy_player(
        "media from a connection that publishes nothing",
        "with nothing publishing, dropped",
        64,
        |port| {
            let mut s = handshaken(port);
            let mut enc = ChunkEncoder::new();
            let mut bytes = chunked(&mut enc, 3, 0, &connect_msg("live"));
            for stream in [0u32, 7] {
                bytes.extend(chunked(
                    &mut enc,
                    6,
                    stream,
                    &Message::Video(vec![0x17; 500].into()),
                ));
            }
            let _ = s.write_all(&bytes);
            expect_open(&mut s, Duration::from_secs(1));
        },
    );
}
