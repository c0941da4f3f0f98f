//! Chunk stream decode and encode throughput, side by side with rml_rtmp on
//! the same bytes.
//!
//! Input: a live-like mix of 10 KB video and 200-byte audio messages at a
//! 4 KiB chunk size, the shape of a 4 Mbit/s H.264 + AAC stream.
//! Run: `cargo bench -p rtmpkit-proto --bench chunk`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rml_rtmp::chunk_io::{ChunkDeserializer, ChunkSerializer};
use rml_rtmp::messages::MessagePayload;
use rml_rtmp::time::RtmpTimestamp;
use rtmpkit_proto::{ChunkDecoder, ChunkEncoder, ChunkStreamId, MessageStreamId, Timestamp};
use std::hint::black_box;

struct Msg {
    csid: ChunkStreamId,
    ts: Timestamp,
    type_id: u8,
    payload: bytes::Bytes,
}

fn messages() -> Vec<Msg> {
    let mut v = Vec::new();
    for i in 0..200u32 {
        v.push(Msg {
            csid: ChunkStreamId::VIDEO,
            ts: Timestamp(i * 40),
            type_id: 9,
            payload: (0..10_000).map(|j| (j as u32 ^ i) as u8).collect(),
        });
        v.push(Msg {
            csid: ChunkStreamId::AUDIO,
            ts: Timestamp(i * 23),
            type_id: 8,
            payload: (0..200).map(|j| (j + i) as u8).collect(),
        });
    }
    v
}

fn encode_all(enc: &mut ChunkEncoder, msgs: &[Msg], out: &mut Vec<u8>) {
    for m in msgs {
        enc.encode(m.csid, m.ts, m.type_id, MessageStreamId(1), &m.payload, out)
            .expect("valid message");
    }
}

fn bench(c: &mut Criterion) {
    let msgs = messages();
    let payload_bytes: usize = msgs.iter().map(|m| m.payload.len()).sum();
    let mut wire = Vec::new();
    let mut enc = ChunkEncoder::new();
    enc.set_chunk_size(4096).expect("valid size");
    encode_all(&mut enc, &msgs, &mut wire);

    let mut g = c.benchmark_group("chunk_decode");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("rtmpkit", |b| {
        b.iter(|| {
            let mut d = ChunkDecoder::new();
            d.set_chunk_size(4096).expect("valid size");
            // Feed in 64 KiB reads, as a socket would.
            let mut n = 0usize;
            for piece in wire.chunks(64 * 1024) {
                d.push(piece);
                while let Some(m) = d.next_message().expect("valid stream") {
                    n += m.payload.len();
                }
            }
            assert_eq!(n, payload_bytes);
            black_box(n)
        })
    });
    g.bench_function("rml_rtmp", |b| {
        b.iter(|| {
            let mut d = ChunkDeserializer::new();
            d.set_max_chunk_size(4096).expect("valid size");
            let mut n = 0usize;
            for piece in wire.chunks(64 * 1024) {
                let mut input = piece;
                while let Some(m) = d.get_next_message(input).expect("valid stream") {
                    n += m.data.len();
                    input = &[];
                }
            }
            assert_eq!(n, payload_bytes);
            black_box(n)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("chunk_encode");
    g.throughput(Throughput::Bytes(payload_bytes as u64));
    g.bench_function("rtmpkit", |b| {
        let mut out = Vec::with_capacity(wire.len());
        b.iter(|| {
            out.clear();
            let mut enc = ChunkEncoder::new();
            enc.set_chunk_size(4096).expect("valid size");
            encode_all(&mut enc, &msgs, &mut out);
            black_box(out.len())
        })
    });
    let rml_msgs: Vec<MessagePayload> = msgs
        .iter()
        .map(|m| MessagePayload {
            timestamp: RtmpTimestamp::new(m.ts.0),
            type_id: m.type_id,
            message_stream_id: 1,
            data: m.payload.clone(),
        })
        .collect();
    g.bench_function("rml_rtmp", |b| {
        b.iter(|| {
            let mut s = ChunkSerializer::new();
            let _ = s
                .set_max_chunk_size(4096, RtmpTimestamp::new(0))
                .expect("valid size");
            let mut n = 0;
            for m in &rml_msgs {
                n += s.serialize(m, false, false).expect("valid").bytes.len();
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
