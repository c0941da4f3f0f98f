//! Client and server sessions in memory, no sockets, virtual time.

use super::*;
use crate::Timestamp;
use crate::amf0::Amf0Object;
use crate::error::Error;
use crate::handshake::HandshakeKind;
use crate::message::{status, type_id};
use crate::url::RtmpUrl;
use bytes::Bytes;
use std::time::{Duration, Instant};

/// Everything a session has queued, as one byte string.
fn drain<S: Side>(s: &mut Session<S>) -> Vec<u8> {
    let mut segs = Vec::new();
    s.poll_transmit(usize::MAX, &mut segs);
    segs.concat()
}

/// One client connected to one server session.
struct Pair {
    client: ClientSession,
    server: ServerSession,
    client_events: Vec<ClientEvent>,
    server_events: Vec<ServerEvent>,
    client_error: Option<Error>,
}

impl Pair {
    fn new(cfg: ClientConfig, scfg: ServerConfig, now: Instant, seed: u64) -> Self {
        Pair {
            client: ClientSession::new(cfg, now, seed),
            server: ServerSession::new(scfg, now, seed + 1),
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_error: None,
        }
    }

    /// Moves bytes both ways (in pieces of `mtu`) until neither side has anything to say.
    fn pump(&mut self, now: Instant, mtu: usize) -> bool {
        let mut moved = false;
        let b = drain(&mut self.client);
        if !b.is_empty() {
            moved = true;
            for piece in b.chunks(mtu) {
                self.server.handle_input(piece, now).expect("server input");
            }
        }
        let b = drain(&mut self.server);
        if !b.is_empty() && self.client_error.is_none() {
            moved = true;
            for piece in b.chunks(mtu) {
                if let Err(e) = self.client.handle_input(piece, now) {
                    self.client_error = Some(e);
                    break;
                }
            }
        }
        while let Some(e) = self.client.poll_event() {
            moved = true;
            self.client_events.push(e);
        }
        while let Some(e) = self.server.poll_event() {
            moved = true;
            self.server_events.push(e);
        }
        moved
    }
}

fn url() -> RtmpUrl {
    RtmpUrl::parse("rtmp://127.0.0.1/live/cam?token=1").unwrap()
}

/// What a player should see: (type, timestamp, payload).
type Sample = (u8, u32, Bytes);

fn sample_media() -> Vec<Sample> {
    let mut v = vec![
        (
            type_id::VIDEO,
            0,
            Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]),
        ),
        (
            type_id::AUDIO,
            0,
            Bytes::from_static(&[0xaf, 0, 0x12, 0x10]),
        ),
    ];
    for i in 0..60u32 {
        let key = i % 25 == 0;
        let len = if key {
            20_000
        } else {
            1_500 + (i as usize * 97) % 3000
        };
        let mut p = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        p.extend((0..len).map(|j| (j as u32 ^ i) as u8));
        v.push((type_id::VIDEO, i * 40, Bytes::from(p)));
        let mut a = vec![0xaf, 1];
        a.extend((0..200).map(|j| (j + i) as u8));
        v.push((type_id::AUDIO, i * 23, Bytes::from(a)));
    }
    v
}

fn accept_all(events: &[ServerEvent], server: &mut ServerSession) {
    for e in events {
        match e {
            ServerEvent::ConnectRequested { .. } => server.accept_connect().unwrap(),
            ServerEvent::PublishRequested { stream_id, .. } => {
                server.accept_publish(*stream_id).unwrap()
            }
            ServerEvent::PlayRequested { stream_id, .. } => server.accept_play(*stream_id).unwrap(),
            _ => {}
        }
    }
}

/// Drives a pair until it is idle, accepting every request.
fn settle(p: &mut Pair, now: Instant) {
    for _ in 0..100 {
        let seen = p.server_events.len();
        let moved = p.pump(now, 1000);
        let new: Vec<ServerEvent> = p.server_events[seen..].to_vec();
        accept_all(&new, &mut p.server);
        if !moved && new.is_empty() {
            return;
        }
    }
    panic!("pair never settled");
}

#[test]
fn publish_and_play_through_a_server_in_memory() {
    let t0 = Instant::now();
    let scfg = ServerConfig {
        window_ack_size: 50_000,
        peer_bandwidth: 50_000,
        ping_interval: Some(Duration::from_secs(1)),
        ..ServerConfig::default()
    };
    let mut publisher = Pair::new(ClientConfig::publish(&url()), scfg.clone(), t0, 10);
    let mut play_cfg = ClientConfig::play(&url());
    play_cfg.handshake = HandshakeKind::Digest;
    let mut player = Pair::new(play_cfg, scfg, t0, 20);

    settle(&mut player, t0);
    assert!(player.server.client_used_digest());
    assert!(
        player.client_events.contains(&ClientEvent::PlayStarted),
        "{:?}",
        player.client_events
    );
    let play_sid = player.server_events.iter().find_map(|e| match e {
        ServerEvent::PlayRequested {
            stream_id, name, ..
        } => {
            assert_eq!(name, "cam?token=1");
            Some(*stream_id)
        }
        _ => None,
    });
    let play_sid = play_sid.expect("play requested");

    settle(&mut publisher, t0);
    assert!(
        publisher
            .client_events
            .contains(&ClientEvent::PublishStarted),
        "{:?}",
        publisher.client_events
    );
    assert!(publisher.client.is_started());
    assert!(publisher
        .server_events
        .iter()
        .any(|e| matches!(e, ServerEvent::PublishRequested { name, kind, .. } if name == "cam?token=1" && kind == "live")));

    // Publish metadata and media; the test plays the hub's part and relays
    // every server event of the publisher to the player's server session.
    let meta = Amf0Object::new()
        .with("width", 1280.0)
        .with("height", 720.0)
        .with("framerate", 25.0);
    publisher.client.send_metadata(meta.clone()).unwrap();
    let media = sample_media();
    let mut now = t0;
    for (i, (ty, ts, payload)) in media.iter().enumerate() {
        let kind = crate::media::MediaKind::from_type_id(*ty).unwrap();
        let m = crate::media::Media::new(kind, Timestamp(*ts), payload.clone());
        publisher.client.send_media(&m).unwrap();
        if i % 7 == 0 {
            now += Duration::from_millis(150);
            publisher.server.handle_timeout(now);
            player.server.handle_timeout(now);
        }
        let seen = publisher.server_events.len();
        publisher.pump(now, 1400);
        for e in publisher.server_events[seen..].iter().cloned() {
            if let ServerEvent::Media { media, .. } = e {
                player.server.send_media(play_sid, &media).unwrap();
            }
        }
        player.pump(now, 1400);
    }
    publisher.client.close();
    settle(&mut publisher, now);
    assert!(
        publisher
            .server_events
            .iter()
            .any(|e| matches!(e, ServerEvent::PublishEnded { .. }))
    );
    player.server.send_stream_end(play_sid).unwrap();
    settle(&mut player, now);

    // The player got the metadata, then every message identical and in order.
    let got_meta = player.client_events.iter().find_map(|e| match e {
        ClientEvent::Media(m) if m.kind == crate::media::MediaKind::Metadata => {
            crate::message::DataMessage::decode(&m.payload)
                .ok()
                .and_then(|d| d.metadata().cloned())
        }
        _ => None,
    });
    assert_eq!(got_meta, Some(meta));
    let got: Vec<Sample> = player
        .client_events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Media(m) if m.kind != crate::media::MediaKind::Metadata => {
                Some((m.type_id(), m.timestamp.0, m.payload.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(got.len(), media.len());
    assert_eq!(got, media);
    assert_eq!(
        player
            .client_events
            .iter()
            .filter(|e| matches!(e, ClientEvent::StreamEnded(_)))
            .count(),
        1,
        "StreamEOF + UnpublishNotify end the stream once"
    );

    // Acknowledgements flowed both ways, and pings were answered.
    assert!(
        publisher.server.counters().acks_sent > 0,
        "server acks the publisher"
    );
    assert!(publisher.client.counters().peer_acked > 0);
    assert!(
        player.client.counters().acks_sent > 0,
        "player acks the server"
    );
    assert!(player.server.counters().peer_acked > 0);
    assert!(player.server.counters().round_trip.is_some());
    assert!(publisher.server.counters().round_trip.is_some());
}

#[test]
fn duplicate_publisher_is_rejected_with_the_code() {
    let t0 = Instant::now();
    let mut p = Pair::new(
        ClientConfig::publish(&url()),
        ServerConfig::default(),
        t0,
        1,
    );
    for _ in 0..50 {
        let seen = p.server_events.len();
        p.pump(t0, 4096);
        for e in p.server_events[seen..].iter().cloned() {
            match e {
                ServerEvent::ConnectRequested { .. } => p.server.accept_connect().unwrap(),
                ServerEvent::PublishRequested { stream_id, .. } => p
                    .server
                    .reject_publish(stream_id, status::PUBLISH_BAD_NAME, "Already publishing")
                    .unwrap(),
                _ => {}
            }
        }
        if p.client_error.is_some() {
            break;
        }
    }
    let e = p.client_error.expect("publish fails");
    assert!(e.is_rejected());
    assert_eq!(e.status_code(), Some(status::PUBLISH_BAD_NAME));
    assert_eq!(
        e.to_string(),
        "rejected by peer: NetStream.Publish.BadName (Already publishing)"
    );
    assert_eq!(p.client.state(), ClientState::Closed);
}

#[test]
fn connect_rejected_fails_at_once() {
    let t0 = Instant::now();
    let mut p = Pair::new(ClientConfig::play(&url()), ServerConfig::default(), t0, 1);
    for _ in 0..20 {
        let seen = p.server_events.len();
        p.pump(t0, 4096);
        for e in p.server_events[seen..].iter().cloned() {
            if let ServerEvent::ConnectRequested { app, tc_url, .. } = e {
                assert_eq!(app, "live");
                assert_eq!(tc_url.as_deref(), Some("rtmp://127.0.0.1/live"));
                p.server.reject_connect("no such app").unwrap();
            }
        }
    }
    let e = p.client_error.expect("rejected");
    assert_eq!(e.status_code(), Some(status::CONNECT_REJECTED));
}

#[test]
fn media_before_start_is_misuse_not_panic() {
    let mut c = ClientSession::new(ClientConfig::publish(&url()), Instant::now(), 1);
    let m = crate::media::Media::video(Timestamp(0), Bytes::from_static(&[0x17]));
    assert!(matches!(c.send_media(&m), Err(Error::Misuse(_))));
    let mut c = ClientSession::new(ClientConfig::play(&url()), Instant::now(), 1);
    assert!(matches!(
        c.send_metadata(Amf0Object::new()),
        Err(Error::Misuse(_))
    ));
}

#[test]
fn garbage_after_handshake_closes_the_session_with_an_error() {
    let t0 = Instant::now();
    let mut s = ServerSession::new(ServerConfig::default(), t0, 1);
    let mut c = crate::handshake::ClientHandshake::new(HandshakeKind::Simple, 0, 2);
    s.handle_input(&c.take_output(), t0).unwrap();
    let s012 = drain(&mut s);
    c.handle_input(&s012, 0).unwrap();
    s.handle_input(&c.take_output(), t0).unwrap();
    // A fmt-3 chunk on a fresh chunk stream.
    let e = s.handle_input(&[0xc5, 1, 2, 3], t0).unwrap_err();
    assert!(e.is_protocol());
    assert_eq!(s.state(), ServerState::Closed);
    // The client is told why, once, as an error-level onStatus.
    let mut dec = crate::chunk::ChunkDecoder::new();
    dec.push(&drain(&mut s));
    let m = dec.next_message().unwrap().expect("a last word");
    let cmd = match crate::message::Message::decode(m.type_id, m.payload).unwrap() {
        crate::message::Message::Command { command, .. } => command,
        other => panic!("{other:?}"),
    };
    let info = cmd.status().unwrap();
    assert_eq!(info.code, "NetConnection.Call.Failed");
    assert!(info.description.contains("chunk stream 5"), "{info:?}");
    assert!(s.handle_input(&[0], t0).is_err());
}

#[test]
fn repeated_result_is_ignored() {
    use crate::chunk::{ChunkEncoder, ChunkStreamId, MessageStreamId};
    use crate::message::{Command, Message};
    let t0 = Instant::now();
    let mut p = Pair::new(ClientConfig::play(&url()), ServerConfig::default(), t0, 3);
    settle(&mut p, t0);
    assert!(p.client.is_started());
    // A second connect _result (transaction 1) from a confused server.
    let mut enc = ChunkEncoder::new();
    enc.set_chunk_size(4096).unwrap();
    let info = crate::message::StatusInfo::new("status", status::CONNECT_SUCCESS, "again");
    let m = Message::command(Command::result(
        1.0,
        crate::amf0::Amf0Value::Null,
        info.to_object().into(),
    ));
    let mut out = Vec::new();
    enc.encode(
        ChunkStreamId(9),
        Timestamp(0),
        m.type_id(),
        MessageStreamId(0),
        &m.payload(),
        &mut out,
    )
    .unwrap();
    p.client.handle_input(&out, t0).unwrap();
    let ev = p.client.poll_event();
    assert!(matches!(ev, Some(ClientEvent::Notice(_))), "{ev:?}");
    assert!(p.client.is_started());
}

/// Everything queued comes out of `poll_transmit`, in order, also after a
/// burst that grew the output buffer (a regression: bytes were dropped),
/// and also when taken in bounded batches.
/// A player connected to a server session (default configs), and the
/// message stream id it plays on.
fn playing_pair(t0: Instant, seed: u64) -> (Pair, u32) {
    let mut p = Pair::new(
        ClientConfig::play(&url()),
        ServerConfig::default(),
        t0,
        seed,
    );
    settle(&mut p, t0);
    let sid = p
        .server_events
        .iter()
        .find_map(|e| match e {
            ServerEvent::PlayRequested { stream_id, .. } => Some(*stream_id),
            _ => None,
        })
        .expect("play requested");
    (p, sid)
}

#[test]
fn poll_transmit_loses_nothing_after_a_burst() {
    use crate::chunk::ChunkDecoder;
    let t0 = Instant::now();
    let (mut p, sid) = playing_pair(t0, 5);
    let mut dec = ChunkDecoder::new();
    dec.set_chunk_size(4096).unwrap();
    let mut sent = Vec::new();
    let mut out = Vec::new();
    for round in 0..3u32 {
        let big = Bytes::from(vec![round as u8; 9000]);
        let m = crate::media::Media::video(Timestamp(round * 1000), big.clone());
        p.server.send_media(sid, &m).unwrap();
        sent.push((round * 1000, big));
        // Small messages are copied into the buffer: 100 of them, last in
        // the batch, grow it past 4 KiB.
        for i in 1..=100u32 {
            let payload = Bytes::from(vec![(i + round) as u8; 300]);
            let m = crate::media::Media::audio(Timestamp(round * 1000 + i), payload.clone());
            p.server.send_media(sid, &m).unwrap();
            sent.push((round * 1000 + i, payload));
        }
        // Batches of at least 5000 bytes, whole pieces.
        loop {
            out.clear();
            let before = p.server.pending_output();
            let n = p.server.poll_transmit(5000, &mut out);
            if n == 0 {
                break;
            }
            assert_eq!(p.server.pending_output(), before - n);
            assert!(n >= 5000 || p.server.pending_output() == 0);
            for seg in &out {
                dec.push(seg);
            }
        }
    }
    let mut got = Vec::new();
    while let Some(m) = dec.next_message().unwrap() {
        if m.type_id == type_id::AUDIO || m.type_id == type_id::VIDEO {
            got.push((m.timestamp.0, m.payload));
        }
    }
    assert_eq!(got, sent);
}

#[test]
fn after_writes_elsewhere_the_next_messages_decode_right() {
    // A player's server session sends two frames itself; the server's
    // fan-out then writes a shared run straight to the socket, the last
    // message of it short; the session is told, and its next frame must
    // decode right after the run however its headers were compressed.
    let t0 = Instant::now();
    let chunk_size = ServerConfig::default().chunk_size;
    let (mut p, sid) = playing_pair(t0, 30);
    let frame = |ts: u32, len: usize| {
        crate::media::Media::video(Timestamp(ts), Bytes::from(vec![0x27; len]))
    };
    let sent = [
        frame(0, 100),
        frame(40, 100),
        frame(80, 9000),
        frame(100, 50),
    ];
    p.server.send_media(sid, &sent[0]).unwrap();
    p.server.send_media(sid, &sent[1]).unwrap();
    p.pump(t0, 1000);
    let run = ServerSession::encode_media_run(chunk_size, sid, &sent[2..]).unwrap();
    let (now, rest) = run.bytes().split_at(run.bytes().len() - 700);
    p.client.handle_input(now, t0).expect("the run, short");
    p.server.written_elsewhere(Bytes::copy_from_slice(rest));
    // Same length as the session's last frame, 80 ms after it: without
    // being told, it would send a header that only holds after frame 40.
    let last = frame(120, 100);
    p.server.send_media(sid, &last).unwrap();
    p.pump(t0, 1000);
    assert!(p.client_error.is_none(), "{:?}", p.client_error);
    let got: Vec<(u32, usize)> = p
        .client_events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Media(m) if m.kind == crate::media::MediaKind::Video => {
                Some((m.timestamp.0, m.payload.len()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        [(0, 100), (40, 100), (80, 9000), (100, 50), (120, 100)]
    );
}
