use super::*;
use crate::Timestamp;
use crate::amf0::{Amf0Object, Amf0Value};
use crate::chunk::{ChunkDecoder, ChunkEncoder, ChunkStreamId, MessageStreamId, RawMessage};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn ascii(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Encodes a message as one chunk stream message with a fresh encoder at chunk size 4096.
fn wire(csid: u32, msid: u32, m: &Message) -> Vec<u8> {
    let mut e = ChunkEncoder::new();
    e.set_chunk_size(4096).unwrap();
    let mut out = Vec::new();
    e.encode(
        ChunkStreamId(csid),
        Timestamp(0),
        m.type_id(),
        MessageStreamId(msid),
        &m.payload(),
        &mut out,
    )
    .unwrap();
    out
}

fn all_messages() -> Vec<Message> {
    let info = StatusInfo::new("status", status::PUBLISH_START, "Start publishing");
    vec![
        Message::SetChunkSize(4096),
        Message::Abort(6),
        Message::Acknowledgement(123_456),
        Message::WindowAckSize(2_500_000),
        Message::SetPeerBandwidth {
            size: 2_500_000,
            limit: LimitType::DYNAMIC,
        },
        Message::UserControl(UserControl::StreamBegin(1)),
        Message::UserControl(UserControl::StreamEof(1)),
        Message::UserControl(UserControl::StreamDry(1)),
        Message::UserControl(UserControl::SetBufferLength {
            stream_id: 1,
            buffer_ms: 3000,
        }),
        Message::UserControl(UserControl::StreamIsRecorded(1)),
        Message::UserControl(UserControl::PingRequest(77)),
        Message::UserControl(UserControl::PingResponse(77)),
        Message::UserControl(UserControl::Other {
            event: 31,
            data: Bytes::from_static(&[0, 0, 0, 1]),
        }),
        Message::Audio(Bytes::from_static(&[0xaf, 1, 2, 3])),
        Message::Video(Bytes::from_static(&[0x17, 1, 0, 0, 0, 9])),
        Message::Aggregate(Bytes::from_static(&[
            9, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x17, 0, 0, 0, 12,
        ])),
        Message::Unknown {
            type_id: 19,
            payload: Bytes::from_static(b"so"),
        },
        Message::data(DataMessage::set_data_frame(Amf0Object::new().with("width", 640.0)).values),
        Message::Data {
            amf3: true,
            data: DataMessage::on_metadata(Amf0Object::new().with("fps", 25.0)),
        },
        Message::command(Command::connect(Amf0Object::new().with("app", "live"))),
        Message::command(Command::create_stream(2.0)),
        Message::command(Command::release_stream(2.0, "s")),
        Message::command(Command::fc_publish(3.0, "s")),
        Message::command(Command::fc_unpublish(5.0, "s")),
        Message::command(Command::publish(0.0, "s", "live")),
        Message::command(Command::play(0.0, "s", Some(-2.0))),
        Message::command(Command::delete_stream(6.0, 1)),
        Message::command(Command::result(2.0, Amf0Value::Null, 1.0.into())),
        Message::command(Command::error(
            2.0,
            &StatusInfo::new("error", "NetConnection.Call.Failed", "x"),
        )),
        Message::command(Command::on_status(&info)),
        Message::command(Command::on_bw_done()),
        Message::command(Command::check_bw(3.0)),
        Message::command(Command::on_fc_publish(&info)),
        Message::Command {
            amf3: true,
            command: Command::create_stream(2.0),
        },
        // AMF3 values after the AMF0 switch, as Flash-era peers send them.
        Message::Command {
            amf3: true,
            command: Command::new(
                "onCuePoint",
                0.0,
                Amf0Value::Null,
                vec![Amf0Value::Avmplus(crate::amf3::Amf3Value::Integer(7))],
            ),
        },
        Message::Data {
            amf3: true,
            data: DataMessage {
                values: vec![
                    "onTextData".into(),
                    Amf0Value::Avmplus(crate::amf3::Amf3Value::ByteArray(vec![1, 2])),
                ],
            },
        },
    ]
}

#[test]
fn round_trip_every_message_type() {
    for m in all_messages() {
        let p = m.payload();
        let back = Message::decode(m.type_id(), p.clone()).unwrap();
        assert_eq!(back, m);
        // And through the chunk layer.
        let mut d = ChunkDecoder::new();
        d.set_chunk_size(4096).unwrap();
        d.push(&wire(3, 1, &m));
        let raw = d.next_message().unwrap().unwrap();
        assert_eq!(Message::decode(raw.type_id, raw.payload).unwrap(), m);
    }
}

#[test]
fn every_strict_prefix_of_a_control_or_command_is_an_error_not_a_value() {
    for m in all_messages() {
        let p = m.payload();
        let ty = m.type_id();
        if matches!(ty, 8 | 9 | 19 | 22) {
            continue; // opaque payloads
        }
        for n in 0..p.len() {
            match Message::decode(ty, p.slice(..n)) {
                Err(_) => {}
                // A command cut right after a complete value is a shorter,
                // still valid command: it must not equal the original.
                // The one exception: a command whose transaction id 0 and null
                // command object are left out reads as the same command (peers
                // do leave them out).
                Ok(v) if v == m => {
                    let tail = crate::amf0::decode_all(&p[n..]).unwrap();
                    assert!(
                        tail == [Amf0Value::Null]
                            || tail == [Amf0Value::Number(0.0), Amf0Value::Null],
                        "prefix {n} of {m:?}"
                    );
                }
                Ok(_) => {}
            }
        }
    }
}

#[test]
fn short_control_payloads_are_errors() {
    for ty in [1u8, 2, 3, 4, 5, 6] {
        assert!(
            Message::decode(ty, Bytes::from_static(&[0, 1])).is_err(),
            "type {ty}"
        );
    }
    // A ping request of fewer than 6 bytes (lal panicked).
    assert!(Message::decode(4, Bytes::from_static(&[0, 6, 0, 0, 1])).is_err());
    assert!(Message::decode(17, Bytes::new()).is_err());
    assert!(Message::decode(17, Bytes::from_static(&[3, 5])).is_err());
}

// --- lal message_packer_test.go vectors ---

#[test]
fn vector_control_messages() {
    assert_eq!(
        wire(2, 0, &Message::WindowAckSize(1)),
        hex("02 000000 000004 05 00000000 00000001")
    );
    assert_eq!(
        wire(2, 0, &Message::SetChunkSize(1)),
        hex("02 000000 000004 01 00000000 00000001")
    );
    assert_eq!(
        wire(
            2,
            0,
            &Message::SetPeerBandwidth {
                size: 1,
                limit: LimitType::DYNAMIC
            }
        ),
        hex("02 000000 000005 06 00000000 00000001 02")
    );
}

#[test]
fn vector_create_stream_and_result() {
    let m = Message::command(Command::create_stream(2.0));
    let expect = format!(
        "03 000000 000019 14 00000000 02 000c {} 00 4000000000000000 05",
        ascii("createStream")
    );
    assert_eq!(wire(3, 0, &m), hex(&expect));
    let m = Message::command(Command::result(1.0, Amf0Value::Null, 1.0.into()));
    let expect = format!(
        "03 000000 00001d 14 00000000 02 0007 {} 00 3ff0000000000000 05 00 3ff0000000000000",
        ascii("_result")
    );
    assert_eq!(wire(3, 0, &m), hex(&expect));
}

#[test]
fn vector_play_and_publish() {
    let m = Message::command(Command::play(3.0, "test", None));
    let expect = format!(
        "05 000000 000018 14 01000000 02 0004 {} 00 4008000000000000 05 02 0004 {}",
        ascii("play"),
        ascii("test")
    );
    assert_eq!(wire(5, 1, &m), hex(&expect));
    let m = Message::command(Command::publish(3.0, "test", "live"));
    let expect = format!(
        "05 000000 000022 14 01000000 02 0007 {} 00 4008000000000000 05 02 0004 {} 02 0004 {}",
        ascii("publish"),
        ascii("test"),
        ascii("live")
    );
    assert_eq!(wire(5, 1, &m), hex(&expect));
}

#[test]
fn vector_on_status_lengths() {
    let p = Message::command(Command::on_status(&StatusInfo::new(
        "status",
        status::PUBLISH_START,
        "Start publishing",
    )))
    .payload();
    assert_eq!(p.len(), 0x69);
    let p = Message::command(Command::on_status(&StatusInfo::new(
        "status",
        status::PLAY_START,
        "Start live",
    )))
    .payload();
    assert_eq!(p.len(), 0x60);
}

#[test]
fn vector_connect() {
    let o = Amf0Object::new()
        .with("app", "live")
        .with("type", "nonprivate")
        .with("flashVer", "FMLE/3.0 (compatible; lal0.37.4)")
        .with("fpad", false)
        .with("tcUrl", "rtmp://127.0.0.1/live");
    let m = Message::command(Command::connect(o));
    let expect = "0300000000008a1400000000020007636f6e6e656374003ff00000000000000300036170700200046c69766500047479706502000a6e6f6e707269766174650008666c617368566572020020464d4c452f332e302028636f6d70617469626c653b206c616c302e33372e342900046670616401000005746355726c02001572746d703a2f2f3132372e302e302e312f6c697665000009";
    assert_eq!(wire(3, 0, &m), hex(expect));
}

/// lal server_session_test.go: a publish command without a publishing type.
#[test]
fn publish_without_type_parses() {
    let p = hex(&format!(
        "02 0007 {} 00 4008000000000000 05 02 0009 {}",
        ascii("publish"),
        ascii("innertest")
    ));
    let c = Command::decode(&p).unwrap();
    assert_eq!(c.name, "publish");
    assert_eq!(c.stream_name(), Some("innertest"));
    assert_eq!(c.args.len(), 1);
}

#[test]
fn metadata_accessors() {
    let meta = Amf0Object::new().with("width", 1280.0);
    let sdf = DataMessage::set_data_frame(meta.clone());
    assert_eq!(sdf.metadata(), Some(&meta));
    let plain = sdf.without_set_data_frame();
    assert_eq!(plain.handler(), Some("onMetaData"));
    assert_eq!(plain.metadata(), Some(&meta));
    assert_eq!(plain, DataMessage::on_metadata(meta));
}

#[test]
fn status_error_detection() {
    assert!(StatusInfo::new("error", "NetStream.Publish.BadName", "").is_error());
    assert!(StatusInfo::new("status", "NetConnection.Connect.Rejected", "").is_error());
    assert!(!StatusInfo::new("status", status::PLAY_START, "").is_error());
}

fn sub(ty: u8, ts: u32, data: &[u8]) -> Vec<u8> {
    let mut v = vec![ty];
    v.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    v.extend_from_slice(&ts.to_be_bytes()[1..]);
    v.push((ts >> 24) as u8);
    v.extend_from_slice(&[0, 0, 0]);
    v.extend_from_slice(data);
    v.extend_from_slice(&((11 + data.len()) as u32).to_be_bytes());
    v
}

#[test]
fn aggregate_is_split_with_rebased_timestamps() {
    let mut body = sub(9, 0x0100_0010, &[0x17, 1, 2]);
    body.extend(sub(8, 0x0100_0020, &[0xaf, 1]));
    body.extend(sub(9, 0x0100_0030, &[0x27, 1]));
    let agg = RawMessage {
        csid: ChunkStreamId(6),
        timestamp: Timestamp(1000),
        type_id: 22,
        stream_id: MessageStreamId(1),
        payload: Bytes::from(body.clone()),
    };
    let subs = split_aggregate(&agg).unwrap();
    assert_eq!(subs.len(), 3);
    assert_eq!(
        subs.iter().map(|m| m.timestamp.0).collect::<Vec<_>>(),
        vec![1000, 1016, 1032]
    );
    assert_eq!(
        subs.iter().map(|m| m.type_id).collect::<Vec<_>>(),
        vec![9, 8, 9]
    );
    assert_eq!(&subs[0].payload[..], &[0x17, 1, 2]);
    assert_eq!(subs[1].stream_id, MessageStreamId(1));
    // Without the final back pointer.
    let short = RawMessage {
        payload: Bytes::from(body[..body.len() - 4].to_vec()),
        ..agg.clone()
    };
    assert_eq!(split_aggregate(&short).unwrap().len(), 3);
    // Truncated inside a sub-message: an error.
    let bad = RawMessage {
        payload: Bytes::from(body[..body.len() - 6].to_vec()),
        ..agg
    };
    assert!(split_aggregate(&bad).is_err());
}

#[test]
fn amf3_messages_with_or_without_the_format_byte() {
    // Type 15 as FMS sends it: 0, then AMF0 with a switch to AMF3.
    let with = Bytes::from_static(b"\x00\x02\x00\x06onData\x11\x04\x05");
    let without = with.slice(1..);
    for p in [with, without] {
        let Message::Data { amf3: true, data } = Message::decode(15, p.clone()).unwrap() else {
            panic!("data");
        };
        assert_eq!(data.handler(), Some("onData"));
        assert_eq!(data.values[1].as_number(), Some(5.0));
        assert_eq!(super::leading_name(15, &p).as_deref(), Some("onData"));
    }
    // The name of a command whose body does not decode.
    let broken = b"\x02\x00\x07connect\x00\x3f\xf0\x00\x00\x00\x00\x00\x00\x12";
    assert!(Message::decode(20, Bytes::from_static(broken)).is_err());
    assert_eq!(super::leading_name(20, broken).as_deref(), Some("connect"));
    assert_eq!(super::leading_name(20, b"\x12"), None);
    assert_eq!(super::leading_name(9, broken), None);
}
