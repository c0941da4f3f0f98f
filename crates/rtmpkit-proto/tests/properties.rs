//! Property tests: AMF0 values, messages and chunk streams round-trip, and a
//! chunk stream decodes to the same messages however it is cut.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use proptest::prelude::*;
use rtmpkit_proto::amf0::{self, Amf0Object, Amf0Value};
use rtmpkit_proto::message::{Command, LimitType, Message, UserControl};
use rtmpkit_proto::{
    ChunkDecoder, ChunkEncoder, ChunkStreamId, MessageStreamId, RawMessage, Timestamp,
};

fn number() -> impl Strategy<Value = f64> {
    // NaN is never equal to itself; every other double round-trips bit for bit.
    any::<f64>().prop_filter("not NaN", |x| !x.is_nan())
}

fn key() -> impl Strategy<Value = String> {
    // An empty key is the object-end marker's, so real keys are not empty.
    "[a-zA-Z0-9_é]{1,12}"
}

fn object(inner: impl Strategy<Value = Amf0Value> + Clone) -> impl Strategy<Value = Amf0Object> {
    prop::collection::vec((key(), inner), 0..6).prop_map(|props| {
        let mut o = Amf0Object::new();
        for (k, v) in props {
            o.push(k, v);
        }
        o
    })
}

fn amf0_value() -> impl Strategy<Value = Amf0Value> {
    let leaf = prop_oneof![
        number().prop_map(Amf0Value::Number),
        any::<bool>().prop_map(Amf0Value::Boolean),
        ".{0,40}".prop_map(Amf0Value::String),
        Just(Amf0Value::Null),
        Just(Amf0Value::Undefined),
        any::<u16>().prop_map(Amf0Value::Reference),
        (number(), any::<i16>())
            .prop_map(|(millis, timezone)| Amf0Value::Date { millis, timezone }),
        ".{0,40}".prop_map(Amf0Value::LongString),
        Just(Amf0Value::Unsupported),
        ".{0,40}".prop_map(Amf0Value::XmlDocument),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            object(inner.clone()).prop_map(Amf0Value::Object),
            object(inner.clone()).prop_map(Amf0Value::EcmaArray),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Amf0Value::StrictArray),
            (key(), object(inner)).prop_map(|(class_name, properties)| Amf0Value::TypedObject {
                class_name,
                properties
            }),
        ]
    })
}

fn message() -> impl Strategy<Value = Message> {
    let bytes = || prop::collection::vec(any::<u8>(), 0..300).prop_map(Bytes::from);
    prop_oneof![
        (1u32..=0x7FFF_FFFF).prop_map(Message::SetChunkSize),
        any::<u32>().prop_map(Message::Abort),
        any::<u32>().prop_map(Message::Acknowledgement),
        any::<u32>().prop_map(Message::WindowAckSize),
        (any::<u32>(), 0u8..3).prop_map(|(size, l)| Message::SetPeerBandwidth {
            size,
            limit: LimitType(l)
        }),
        any::<u32>().prop_map(|s| Message::UserControl(UserControl::StreamBegin(s))),
        any::<u32>().prop_map(|s| Message::UserControl(UserControl::StreamEof(s))),
        (any::<u32>(), any::<u32>()).prop_map(|(stream_id, buffer_ms)| Message::UserControl(
            UserControl::SetBufferLength {
                stream_id,
                buffer_ms
            }
        )),
        any::<u32>().prop_map(|t| Message::UserControl(UserControl::PingRequest(t))),
        any::<u32>().prop_map(|t| Message::UserControl(UserControl::PingResponse(t))),
        bytes().prop_map(Message::Audio),
        bytes().prop_map(Message::Video),
        (
            "[a-zA-Z_]{1,20}",
            number(),
            amf0_value(),
            prop::collection::vec(amf0_value(), 0..3)
        )
            .prop_map(|(name, txn, obj, args)| Message::command(Command::new(
                &name, txn, obj, args
            ))),
        prop::collection::vec(amf0_value(), 1..4).prop_map(Message::data),
    ]
}

/// One message on the wire: where, when and what.
#[derive(Debug, Clone)]
struct Wire {
    csid: u32,
    timestamp: u32,
    type_id: u8,
    stream_id: u32,
    payload: Vec<u8>,
}

fn wire_message() -> impl Strategy<Value = Wire> {
    (
        prop_oneof![2u32..10, 60u32..70, 310u32..330, 65590u32..65600],
        prop_oneof![0u32..100_000, 0xFF_FFF0u32..0x100_0010, any::<u32>()],
        prop_oneof![Just(8u8), Just(9u8), Just(18u8), Just(20u8)],
        0u32..4,
        prop::collection::vec(any::<u8>(), 0..700),
    )
        .prop_map(|(csid, timestamp, type_id, stream_id, payload)| Wire {
            csid,
            timestamp,
            type_id,
            stream_id,
            payload,
        })
}

fn encode_all(msgs: &[Wire], chunk_size: u32) -> Vec<u8> {
    let mut e = ChunkEncoder::new();
    e.set_chunk_size(chunk_size).unwrap();
    let mut out = Vec::new();
    for m in msgs {
        e.encode(
            ChunkStreamId(m.csid),
            Timestamp(m.timestamp),
            m.type_id,
            MessageStreamId(m.stream_id),
            &m.payload,
            &mut out,
        )
        .unwrap();
    }
    out
}

fn decode_in_pieces(wire: &[u8], chunk_size: u32, cuts: &[usize]) -> Vec<RawMessage> {
    let mut d = ChunkDecoder::new();
    d.set_chunk_size(chunk_size).unwrap();
    let mut got = Vec::new();
    let mut pos = 0;
    let mut cuts = cuts.iter().copied().cycle();
    while pos < wire.len() {
        let n = cuts.next().unwrap_or(wire.len()).clamp(1, wire.len() - pos);
        d.push(&wire[pos..pos + n]);
        pos += n;
        while let Some(m) = d.next_message().unwrap() {
            got.push(m);
        }
    }
    got
}

fn assert_same(got: &[RawMessage], sent: &[Wire]) {
    assert_eq!(got.len(), sent.len());
    for (g, s) in got.iter().zip(sent) {
        assert_eq!(
            (
                g.csid.0,
                g.timestamp.as_millis(),
                g.type_id,
                g.stream_id.0,
                &g.payload[..]
            ),
            (s.csid, s.timestamp, s.type_id, s.stream_id, &s.payload[..])
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn amf0_values_round_trip(values in prop::collection::vec(amf0_value(), 1..5)) {
        let mut bytes = Vec::new();
        for v in &values {
            amf0::encode(v, &mut bytes);
        }
        prop_assert_eq!(amf0::decode_all(&bytes).unwrap(), values);
    }

    #[test]
    fn messages_round_trip(m in message()) {
        let back = Message::decode(m.type_id(), m.payload()).unwrap();
        prop_assert_eq!(back, m);
    }

    #[test]
    fn chunk_streams_decode_however_they_are_cut(
        msgs in prop::collection::vec(wire_message(), 1..12),
        chunk_size in prop_oneof![Just(128u32), 1u32..300, Just(4096u32)],
        cuts in prop::collection::vec(1usize..400, 1..8),
    ) {
        let wire = encode_all(&msgs, chunk_size);
        assert_same(&decode_in_pieces(&wire, chunk_size, &cuts), &msgs);
    }
}

/// Every single cut point of one stream with extended timestamps, several
/// chunk streams and a message over several chunks.
#[test]
fn chunk_stream_cut_at_every_boundary() {
    let msgs: Vec<Wire> = (0..6u32)
        .map(|i| Wire {
            csid: [3, 4, 64, 320][i as usize % 4],
            timestamp: 0xFF_FFF0 + i * 40,
            type_id: if i % 2 == 0 { 9 } else { 8 },
            stream_id: 1,
            payload: (0..(50 + i * 90)).map(|b| b as u8).collect(),
        })
        .collect();
    let wire = encode_all(&msgs, 128);
    for cut in 0..=wire.len() {
        let mut d = ChunkDecoder::new();
        let mut got = Vec::new();
        for piece in [&wire[..cut], &wire[cut..]] {
            d.push(piece);
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_same(&got, &msgs);
    }
}
