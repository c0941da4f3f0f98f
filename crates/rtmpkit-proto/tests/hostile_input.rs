//! Random and mutated input never panics, never loops, and never takes
//! unbounded memory: every decoder returns a value, "need more", or an error.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap known-good values

use rtmpkit_proto::amf0::{self, Amf0Object, Amf0Value};
use rtmpkit_proto::flv::FlvReader;
use rtmpkit_proto::handshake::{ClientHandshake, HandshakeKind};
use rtmpkit_proto::message::Message;
use rtmpkit_proto::session::{ServerConfig, ServerSession};
use rtmpkit_proto::{ChunkDecoder, ChunkEncoder, ChunkStreamId, MessageStreamId, Timestamp};
use std::time::Instant;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn mutate(rng: &mut Rng, valid: &[u8]) -> Vec<u8> {
    let mut v = valid.to_vec();
    for _ in 0..1 + rng.below(4) {
        if v.is_empty() {
            break;
        }
        let i = rng.below(v.len());
        match rng.below(3) {
            0 => v[i] ^= 1 << rng.below(8),
            1 => v[i] = rng.next() as u8,
            _ => v.truncate(i),
        }
    }
    v
}

fn valid_chunks() -> Vec<u8> {
    let mut e = ChunkEncoder::new();
    let mut out = Vec::new();
    for i in 0..20u32 {
        let m = if i % 3 == 0 {
            Message::command(rtmpkit_proto::message::Command::publish(0.0, "s", "live"))
        } else {
            Message::Video(vec![0x17; 300 + i as usize].into())
        };
        e.encode(
            ChunkStreamId(3 + i % 5),
            Timestamp(i * 0x0100_0000),
            m.type_id(),
            MessageStreamId(1),
            &m.payload(),
            &mut out,
        )
        .unwrap();
    }
    out
}

fn drain_chunks(d: &mut ChunkDecoder) {
    for _ in 0..10_000 {
        match d.next_message() {
            Ok(Some(m)) => {
                let _ = Message::decode(m.type_id, m.payload);
            }
            Ok(None) | Err(_) => return,
        }
    }
    panic!("decoder kept producing messages from finite input");
}

#[test]
fn chunk_decoder_survives_random_and_mutated_input() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let valid = valid_chunks();
    for _ in 0..3000 {
        let input = if rng.below(2) == 0 {
            let n = rng.below(2000);
            rng.bytes(n)
        } else {
            mutate(&mut rng, &valid)
        };
        let mut d = ChunkDecoder::new();
        d.push(&input);
        drain_chunks(&mut d);
    }
}

#[test]
fn amf0_survives_random_and_mutated_input() {
    let mut rng = Rng(99);
    let obj = Amf0Value::Object(
        Amf0Object::new()
            .with("a", Amf0Value::StrictArray(vec![1.0.into(), "x".into()]))
            .with("b", Amf0Value::EcmaArray(Amf0Object::new().with("c", true))),
    );
    let valid = amf0::to_vec(&obj);
    for _ in 0..20_000 {
        let input = if rng.below(2) == 0 {
            let n = rng.below(64);
            rng.bytes(n)
        } else {
            mutate(&mut rng, &valid)
        };
        let _ = amf0::decode_all(&input);
    }
}

#[test]
fn flv_reader_survives_random_and_mutated_input() {
    let mut rng = Rng(7);
    let mut valid = Vec::new();
    rtmpkit_proto::flv::write_header(true, true, &mut valid);
    for i in 0..10u32 {
        rtmpkit_proto::flv::write_tag(9, Timestamp(i * 40), &[0x17; 50], &mut valid).unwrap();
    }
    for _ in 0..5000 {
        let input = mutate(&mut rng, &valid);
        let mut r = FlvReader::new();
        r.push(&input);
        for _ in 0..1000 {
            match r.next_tag() {
                Ok(Some(_)) => {}
                _ => break,
            }
        }
    }
}

#[test]
fn server_session_survives_random_input_after_handshake() {
    let mut rng = Rng(5);
    let t0 = Instant::now();
    let valid = valid_chunks();
    for _ in 0..2000 {
        let mut s = ServerSession::new(ServerConfig::default(), t0, 1);
        let mut c = ClientHandshake::new(HandshakeKind::Simple, 0, 2);
        s.handle_input(&c.take_output(), t0).unwrap();
        let mut segs = Vec::new();
        s.poll_transmit(usize::MAX, &mut segs);
        let out = segs.concat();
        c.handle_input(&out, 0).unwrap();
        s.handle_input(&c.take_output(), t0).unwrap();
        let input = if rng.below(2) == 0 {
            let n = rng.below(1000);
            rng.bytes(n)
        } else {
            mutate(&mut rng, &valid)
        };
        for piece in input.chunks(1 + rng.below(300)) {
            if s.handle_input(piece, t0).is_err() {
                break;
            }
        }
    }
}

#[test]
fn handshake_survives_random_input() {
    let mut rng = Rng(11);
    for _ in 0..500 {
        let mut c = ClientHandshake::new(HandshakeKind::Digest, 0, rng.next());
        let mut input = rng.bytes(1 + 1536 * 2);
        input[0] = 3;
        let _ = c.handle_input(&input, 0);
        let mut s = rtmpkit_proto::handshake::ServerHandshake::new(0, rng.next());
        let _ = s.handle_input(&input, 0);
    }
}

#[test]
fn enhanced_media_headers_survive_random_and_mutated_input() {
    use rtmpkit_proto::media::{AudioTagHeader, ExHeader, VideoTagHeader};
    use rtmpkit_proto::{Media, MediaKind};
    let valid: [&[u8]; 6] = [
        b"\x97\x02\x00\x03\xe8\x01av01OBU",
        b"\x96\x11av01\x00\x00\x00\x02ab\x01\x00\x00\x01c",
        b"\x96\x21avc1\x00\x00\x00\x04\x00\x00\x00xhvc1\x02\x00\x00\x01y",
        b"\x95\x01mp4a\x01AAC",
        b"\xd4hvc1\x02\x00\x09colorInfo",
        b"\x91hvc1\x00\x00\x21NAL",
    ];
    let mut rng = Rng(0x5eed_e47a);
    for i in 0..40_000 {
        let input = if i % 2 == 0 {
            let pick = rng.below(valid.len());
            mutate(&mut rng, valid[pick])
        } else {
            let n = rng.below(40);
            let mut v = rng.bytes(n);
            if let Some(b) = v.first_mut() {
                *b |= 0x80; // enhanced video, or SoundFormat >= 8
            }
            v
        };
        for video in [true, false] {
            if let Ok(h) = ExHeader::parse(&input, video) {
                // The track walk ends, and every slice lies inside the input.
                let mut total = 0;
                for t in h.tracks(&input).take(1000) {
                    match t {
                        Ok(t) => total += t.payload.len(),
                        Err(_) => break,
                    }
                }
                assert!(total <= input.len());
            }
        }
        let _ = VideoTagHeader::parse(&input);
        let _ = AudioTagHeader::parse(&input);
        let bytes = bytes::Bytes::from(input);
        let _ = Media::new(MediaKind::Video, Timestamp(0), bytes.clone());
        let _ = Media::new(MediaKind::Audio, Timestamp(0), bytes);
    }
}

/// A server session that finished a valid handshake.
fn handshaken_server(t0: Instant) -> ServerSession {
    let mut s = ServerSession::new(ServerConfig::default(), t0, 1);
    let mut c = ClientHandshake::new(HandshakeKind::Simple, 0, 2);
    s.handle_input(&c.take_output(), t0).unwrap();
    let mut segs = Vec::new();
    s.poll_transmit(usize::MAX, &mut segs);
    c.handle_input(&segs.concat(), 0).unwrap();
    s.handle_input(&c.take_output(), t0).unwrap();
    s
}

fn chunks_of(stream: u32, m: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    ChunkEncoder::new()
        .encode(
            ChunkStreamId(3),
            Timestamp(0),
            m.type_id(),
            MessageStreamId(stream),
            &m.payload(),
            &mut out,
        )
        .unwrap();
    out
}

#[test]
fn messages_before_publishing_are_small_and_media_after_may_be_large() {
    use rtmpkit_proto::message::Command;
    use rtmpkit_proto::session::{SETUP_MAX_MESSAGE_LEN, ServerEvent};
    let t0 = Instant::now();
    // A connect just over the setup limit ends the session at its header.
    let mut s = handshaken_server(t0);
    let big = Message::command(Command::connect(
        Amf0Object::new().with("app", "live").with(
            "flashVer",
            Amf0Value::LongString("x".repeat(SETUP_MAX_MESSAGE_LEN as usize)),
        ),
    ));
    let wire = chunks_of(0, &big);
    let err = s.handle_input(&wire[..200], t0).unwrap_err();
    assert!(
        err.to_string().contains("exceeds the limit of 65536"),
        "{err}"
    );
    // After an accepted publish, a 1 MiB keyframe is fine.
    let mut s = handshaken_server(t0);
    let steps = [
        chunks_of(
            0,
            &Message::command(Command::connect(Amf0Object::new().with("app", "live"))),
        ),
        chunks_of(0, &Message::command(Command::create_stream(2.0))),
        chunks_of(1, &Message::command(Command::publish(3.0, "s", "live"))),
    ];
    for step in steps {
        s.handle_input(&step, t0).unwrap();
        while let Some(ev) = s.poll_event() {
            match ev {
                ServerEvent::ConnectRequested { .. } => s.accept_connect().unwrap(),
                ServerEvent::PublishRequested { stream_id, .. } => {
                    s.accept_publish(stream_id).unwrap()
                }
                _ => {}
            }
        }
    }
    s.handle_input(
        &chunks_of(1, &Message::Video(vec![0x17; 1 << 20].into())),
        t0,
    )
    .unwrap();
    let got = std::iter::from_fn(|| s.poll_event())
        .any(|e| matches!(e, ServerEvent::Media { media, .. } if media.payload.len() == 1 << 20));
    assert!(got, "the large keyframe after publishing was not delivered");
}
