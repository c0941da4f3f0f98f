//! Chunk stream decode and encode throughput.
//!
//! Input: a live-like mix of 10 KB video and 200-byte audio messages at a
//! 4 KiB chunk size, the shape of a 4 Mbit/s H.264 + AAC stream.
//! Run: `cargo bench -p rtmpkit-proto --bench chunk`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rtmpkit_proto::{ChunkDecoder, ChunkEncoder, ChunkStreamId, MessageStreamId, Timestamp};
use std::hint::black_box;

struct Msg {
    csid: ChunkStreamId,
    ts: Timestamp,
    type_id: u8,
    payload: Vec<u8>,
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

    let mut g = c.benchmark_group("chunk");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("decode_10k_video_audio_4k_chunks", |b| {
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
    g.throughput(Throughput::Bytes(payload_bytes as u64));
    g.bench_function("encode_10k_video_audio_4k_chunks", |b| {
        let mut out = Vec::with_capacity(wire.len());
        b.iter(|| {
            out.clear();
            let mut enc = ChunkEncoder::new();
            enc.set_chunk_size(4096).expect("valid size");
            encode_all(&mut enc, &msgs, &mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
