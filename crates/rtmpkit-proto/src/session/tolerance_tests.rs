//! Scripted peers that send what real peers send and strict sessions
//! refused: media on message stream 0, AMF3 data and commands, OBS 29's
//! VOD track, messages that do not decode. No session ends for them;
//! a malformed command the session acts on still ends it.

use super::*;
use crate::Timestamp;
use crate::amf0::{Amf0Object, Amf0Value};
use crate::amf3::Amf3Value;
use crate::chunk::{ChunkEncoder, ChunkStreamId, MessageStreamId};
use crate::error::Error;
use crate::handshake::{ClientHandshake, HandshakeKind, ServerHandshake};
use crate::media::MediaKind;
use crate::message::{Command, Message, type_id};
use crate::url::RtmpUrl;
use std::time::Instant;

fn drain<S: Side>(s: &mut Session<S>) -> Vec<u8> {
    let mut segs = Vec::new();
    s.poll_transmit(usize::MAX, &mut segs);
    segs.concat()
}

/// A publisher written by hand against a real server session.
struct ScriptedPublisher {
    server: ServerSession,
    enc: ChunkEncoder,
    now: Instant,
    events: Vec<ServerEvent>,
}

impl ScriptedPublisher {
    /// Handshake, connect, createStream, publish "cam" on stream 1.
    fn publishing() -> Self {
        let now = Instant::now();
        let mut server = ServerSession::new(ServerConfig::default(), now, 3);
        let mut hs = ClientHandshake::new(HandshakeKind::Simple, 0, 1);
        server.handle_input(&hs.take_output(), now).unwrap();
        hs.handle_input(&drain(&mut server), 0).unwrap();
        server.handle_input(&hs.take_output(), now).unwrap();
        let mut p = ScriptedPublisher {
            server,
            enc: ChunkEncoder::new(),
            now,
            events: Vec::new(),
        };
        let connect = Command::connect(Amf0Object::new().with("app", "live"));
        p.command(0, connect).unwrap();
        p.command(0, Command::create_stream(2.0)).unwrap();
        p.command(1, Command::publish(3.0, "cam", "live")).unwrap();
        assert!(String::from_utf8_lossy(&drain(&mut p.server)).contains("NetStream.Publish.Start"));
        p.events.clear();
        p
    }

    fn raw(&mut self, msid: u32, ts: u32, type_id: u8, payload: &[u8]) -> Result<()> {
        let mut b = Vec::new();
        self.enc
            .encode(
                ChunkStreamId(5),
                Timestamp(ts),
                type_id,
                MessageStreamId(msid),
                payload,
                &mut b,
            )
            .unwrap();
        let r = self.server.handle_input(&b, self.now);
        while let Some(e) = self.server.poll_event() {
            match &e {
                ServerEvent::ConnectRequested { .. } => self.server.accept_connect().unwrap(),
                ServerEvent::PublishRequested { stream_id, .. } => {
                    self.server.accept_publish(*stream_id).unwrap();
                }
                _ => {}
            }
            self.events.push(e);
        }
        r
    }

    fn command(&mut self, msid: u32, c: Command) -> Result<()> {
        self.raw(
            msid,
            0,
            type_id::COMMAND_AMF0,
            &Message::command(c).payload(),
        )
    }

    fn media(&self) -> Vec<(u32, MediaKind, Option<u8>, u32)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Media { stream_id, media } => {
                    Some((*stream_id, media.kind, media.track, media.timestamp.0))
                }
                _ => None,
            })
            .collect()
    }
}

#[test]
fn a_publisher_may_send_media_on_message_stream_0() {
    let mut p = ScriptedPublisher::publishing();
    p.raw(0, 0, type_id::VIDEO, &[0x17, 0, 0, 0, 0, 1]).unwrap();
    p.raw(0, 40, type_id::AUDIO, &[0xaf, 1, 9]).unwrap();
    p.raw(7, 80, type_id::VIDEO, &[0x27, 1, 0, 0, 0, 1])
        .unwrap();
    let metadata = Message::data(
        crate::message::DataMessage::set_data_frame(Amf0Object::new().with("width", 320.0)).values,
    );
    p.raw(0, 0, type_id::DATA_AMF0, &metadata.payload())
        .unwrap();
    assert_eq!(
        p.media(),
        vec![
            (1, MediaKind::Video, None, 0),
            (1, MediaKind::Audio, None, 40),
            (1, MediaKind::Video, None, 80),
            (1, MediaKind::Metadata, None, 0),
        ]
    );
    assert!(!p.server.is_closed());
}

#[test]
fn amf3_data_and_commands_mid_stream_go_by() {
    let mut p = ScriptedPublisher::publishing();
    // Type 15 metadata: the format byte, then AMF0 whose object is AMF3.
    let mut meta = vec![0x00];
    let values = [
        Amf0Value::from("@setDataFrame"),
        "onMetaData".into(),
        Amf0Value::Avmplus(Amf3Value::Object(
            crate::amf3::Amf3Object::anonymous().with("width", Amf3Value::Integer(640)),
        )),
    ];
    values
        .iter()
        .for_each(|v| crate::amf0::encode(v, &mut meta));
    p.raw(1, 0, type_id::DATA_AMF3, &meta).unwrap();
    // Type 17: an unknown call with AMF3 arguments, and one that does
    // not decode at all.
    let call = Message::Command {
        amf3: true,
        command: Command::new(
            "setPeerInfo",
            0.0,
            Amf0Value::Null,
            vec![Amf0Value::Avmplus(Amf3Value::ByteArray(vec![1, 2]))],
        ),
    };
    p.raw(0, 0, type_id::COMMAND_AMF3, &call.payload()).unwrap();
    p.raw(
        0,
        0,
        type_id::COMMAND_AMF3,
        b"\x00\x02\x00\x03foo\x11\x0a\x07\x03X",
    )
    .unwrap();
    // Data that does not decode, and an empty one.
    p.raw(1, 0, type_id::DATA_AMF0, b"\x02\x00\x06onText\x11\x12")
        .unwrap();
    p.raw(1, 0, type_id::DATA_AMF0, b"").unwrap();
    p.raw(1, 40, type_id::VIDEO, &[0x17, 1, 0, 0, 0, 1])
        .unwrap();
    assert!(!p.server.is_closed());
    let got = p.media();
    assert_eq!(got.len(), 2, "{got:?}");
    // The metadata reaches players as plain AMF0.
    let ServerEvent::Media { media, .. } = p
        .events
        .iter()
        .find(
            |e| matches!(e, ServerEvent::Media { media, .. } if media.kind == MediaKind::Metadata),
        )
        .unwrap()
    else {
        unreachable!()
    };
    let d = crate::message::DataMessage::decode(&media.payload).unwrap();
    assert_eq!(d.metadata().unwrap().get_number("width"), Some(640.0));
    assert!(!d.has_amf3());
    let skipped = p
        .events
        .iter()
        .filter(|e| matches!(e, ServerEvent::Notice(n) if n.contains("does not decode")))
        .count();
    assert_eq!(skipped, 2, "{:?}", p.events);
}

/// OBS 29's bytes (plugins/obs-outputs/flv-mux.c): the announcement of
/// the VOD track, then its AAC sequence header and a 300-byte frame as
/// `"additionalMedia" {id: "stream0", media: <AMF3 ByteArray>}`.
const OBS29_ANNOUNCEMENT: &[u8] =
    include_bytes!("../../../../tests/vectors/obs29-on-expect-additional-media.bin");
const OBS29_AAC_HEADER: &[u8] =
    include_bytes!("../../../../tests/vectors/obs29-additional-media-aac-header.bin");
const OBS29_AAC_FRAME: &[u8] =
    include_bytes!("../../../../tests/vectors/obs29-additional-media-aac-frame.bin");

#[test]
fn obs29_vod_track_becomes_audio_track_1() {
    let mut p = ScriptedPublisher::publishing();
    p.raw(1, 0, type_id::DATA_AMF0, OBS29_ANNOUNCEMENT).unwrap();
    p.raw(1, 0, type_id::DATA_AMF0, OBS29_AAC_HEADER).unwrap();
    p.raw(1, 23, type_id::DATA_AMF0, OBS29_AAC_FRAME).unwrap();
    let frame = [0x21; 300];
    assert!(!p.server.is_closed());
    assert_eq!(
        p.media(),
        vec![
            (1, MediaKind::Audio, Some(1), 0),
            (1, MediaKind::Audio, Some(1), 23),
        ]
    );
    let audio: Vec<_> = p
        .events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Media { media, .. } => Some(media.clone()),
            _ => None,
        })
        .collect();
    assert!(audio[0].sequence_header);
    assert_eq!(&audio[0].payload[..], b"\x95\x00mp4a\x01\x12\x10");
    assert_eq!(&audio[1].payload[7..], &frame[..]);
    assert!(
        p.events
            .iter()
            .any(|e| matches!(e, ServerEvent::Notice(n) if n.contains("announced a VOD track")))
    );
}

#[test]
fn a_malformed_command_the_server_acts_on_still_ends_the_session() {
    let mut p = ScriptedPublisher::publishing();
    // createStream whose command object is an AMF3 value that ends early.
    let r = p.raw(
        0,
        0,
        type_id::COMMAND_AMF0,
        b"\x02\x00\x0ccreateStream\x00\x40\x00\x00\x00\x00\x00\x00\x00\x11\x0a",
    );
    assert!(matches!(r, Err(Error::Decode(_))), "{r:?}");
    assert!(p.server.is_closed());
}

/// A player session after its handshake with a server written by hand,
/// and a way to send it one message as that server.
fn scripted_player() -> (
    ClientSession,
    impl FnMut(&mut ClientSession, u32, u32, &Message) -> Result<()>,
) {
    let now = Instant::now();
    let url = RtmpUrl::parse("rtmp://127.0.0.1/live/cam").unwrap();
    let mut client = ClientSession::new(ClientConfig::play(&url), now, 5);
    let mut hs = ServerHandshake::new(0, 9);
    hs.handle_input(&drain(&mut client), 0).unwrap();
    client.handle_input(&hs.take_output(), now).unwrap();
    let mut enc = ChunkEncoder::new();
    let send = move |client: &mut ClientSession, msid: u32, ts: u32, m: &Message| {
        let mut b = Vec::new();
        enc.encode(
            ChunkStreamId(5),
            Timestamp(ts),
            m.type_id(),
            MessageStreamId(msid),
            &m.payload(),
            &mut b,
        )
        .unwrap();
        client.handle_input(&b, now)
    };
    // connect's and createStream's answers (stream 1).
    let ok = crate::message::StatusInfo::new("status", "NetConnection.Connect.Success", "");
    let result = Command::result(1.0, Amf0Value::Null, Amf0Value::Object(ok.to_object()));
    let created = Command::result(2.0, Amf0Value::Null, 1.0.into());
    let mut send = send;
    send(&mut client, 0, 0, &Message::command(result)).unwrap();
    send(&mut client, 0, 0, &Message::command(created)).unwrap();
    (client, send)
}

#[test]
fn a_player_takes_media_on_message_stream_0_as_its_stream() {
    // As Node-Media-Server plays: statuses on the stream it created (1),
    // media on message stream 0.
    let (mut client, mut send) = scripted_player();
    let mut msg = |client: &mut ClientSession, msid: u32, ts: u32, m: Message| {
        send(client, msid, ts, &m).unwrap();
    };
    let start = crate::message::StatusInfo::new("status", "NetStream.Play.Start", "");
    msg(
        &mut client,
        1,
        0,
        Message::command(Command::on_status(&start)),
    );
    msg(
        &mut client,
        0,
        0,
        Message::Video(vec![0x17, 0, 0, 0, 0, 1].into()),
    );
    msg(&mut client, 0, 40, Message::Audio(vec![0xaf, 1, 7].into()));
    msg(
        &mut client,
        1,
        80,
        Message::Video(vec![0x27, 1, 0, 0, 0, 1].into()),
    );
    let cue = vec![
        Amf0Value::from("onCuePoint"),
        Amf0Value::Avmplus(Amf3Value::Null),
    ];
    msg(&mut client, 1, 90, Message::data(cue));
    // A command that does not decode, which the player does not act on.
    let broken = b"\x02\x00\x09onBWCheck\x00\x11\x0a\x07\x01";
    msg(&mut client, 0, 0, command_bytes(broken));
    msg(&mut client, 0, 120, Message::Audio(vec![0xaf, 1, 8].into()));
    let mut media = Vec::new();
    while let Some(e) = client.poll_event() {
        if let ClientEvent::Media(m) = e {
            media.push((m.kind, m.timestamp.0));
        }
    }
    assert_eq!(
        media,
        vec![
            (MediaKind::Video, 0),
            (MediaKind::Audio, 40),
            (MediaKind::Video, 80),
            (MediaKind::Audio, 120)
        ]
    );
    assert!(client.is_started() && !client.is_closed());
}

/// A type 20 message of these bytes, decoded or not.
fn command_bytes(b: &[u8]) -> Message {
    Message::Unknown {
        type_id: type_id::COMMAND_AMF0,
        payload: b.to_vec().into(),
    }
}

#[test]
fn a_status_that_does_not_decode_before_the_start_ends_a_player() {
    let (mut client, mut send) = scripted_player();
    // onStatus whose info object is an externalizable AMF3 object.
    let status = b"\x02\x00\x08onStatus\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05\x11\x0a\x07\x03X";
    let r = send(&mut client, 1, 0, &command_bytes(status));
    assert!(matches!(r, Err(Error::Decode(_))), "{r:?}");
    assert!(client.is_closed());
}
