//! AMF0 decode (side by side with rml_amf0), FLV read, and fan-out of one
//! message to 1000 players' chunk encoders.
//! Run: `cargo bench -p rtmpkit-proto --bench codecs`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rtmpkit_proto::amf0::{self, Amf0Object, Amf0Value};
use rtmpkit_proto::flv::{self, FlvReader};
use rtmpkit_proto::{ChunkEncoder, ChunkStreamId, MessageStreamId, Timestamp};
use std::hint::black_box;

/// A connect command and an onStatus, as plain objects both libraries read.
fn amf0_input() -> Vec<u8> {
    let mut v = Vec::new();
    let connect = Amf0Object::new()
        .with("app", "live")
        .with("type", "nonprivate")
        .with("flashVer", "FMLE/3.0 (compatible; FMSc/1.0)")
        .with("swfUrl", "rtmp://127.0.0.1/live")
        .with("tcUrl", "rtmp://127.0.0.1/live")
        .with("fpad", false)
        .with("capabilities", 239.0)
        .with("audioCodecs", 3575.0)
        .with("videoCodecs", 252.0)
        .with("videoFunction", 1.0);
    for val in [
        Amf0Value::String("connect".into()),
        Amf0Value::Number(1.0),
        Amf0Value::Object(connect),
        Amf0Value::String("onStatus".into()),
        Amf0Value::Number(0.0),
        Amf0Value::Null,
        Amf0Value::Object(
            Amf0Object::new()
                .with("level", "status")
                .with("code", "NetStream.Publish.Start")
                .with("description", "Start publishing"),
        ),
    ] {
        amf0::encode(&val, &mut v);
    }
    v
}

fn bench(c: &mut Criterion) {
    let input = amf0_input();
    let mut g = c.benchmark_group("amf0_decode");
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.bench_function("rtmpkit", |b| {
        b.iter(|| black_box(amf0::decode_all(black_box(&input)).expect("valid").len()))
    });
    g.bench_function("rml_amf0", |b| {
        b.iter(|| {
            let mut r = std::io::Cursor::new(black_box(&input[..]));
            black_box(rml_amf0::deserialize(&mut r).expect("valid").len())
        })
    });
    g.finish();

    // 10 s of a 4 Mbit/s-like stream as FLV.
    let mut file = Vec::new();
    flv::write_header(true, true, &mut file);
    let video = vec![0x27u8; 20_000];
    let audio = vec![0xafu8; 300];
    for i in 0..250u32 {
        flv::write_tag(9, Timestamp(i * 40), &video, &mut file).expect("tag");
        flv::write_tag(8, Timestamp(i * 40), &audio, &mut file).expect("tag");
    }
    let mut g = c.benchmark_group("flv_read");
    g.throughput(Throughput::Bytes(file.len() as u64));
    g.bench_function("rtmpkit", |b| {
        b.iter(|| {
            let mut r = FlvReader::new();
            let mut n = 0;
            for piece in file.chunks(64 * 1024) {
                r.push(piece);
                while let Some(t) = r.next_tag().expect("valid") {
                    n += t.data.len();
                }
            }
            black_box(n)
        })
    });
    g.finish();

    // One 10 KB video message to 1000 players, each with its own encoder.
    let payload = vec![0x27u8; 10_000];
    let mut g = c.benchmark_group("fanout_1000_players");
    g.throughput(Throughput::Bytes(1000 * payload.len() as u64));
    let mut encoders: Vec<ChunkEncoder> = (0..1000)
        .map(|_| {
            let mut e = ChunkEncoder::new();
            e.set_chunk_size(4096).expect("size");
            e
        })
        .collect();
    let mut outs: Vec<Vec<u8>> = (0..1000).map(|_| Vec::with_capacity(16 * 1024)).collect();
    let mut ts = 0u32;
    g.bench_function("rtmpkit_encode_per_player", |b| {
        b.iter(|| {
            ts += 40;
            for (e, o) in encoders.iter_mut().zip(outs.iter_mut()) {
                o.clear();
                e.encode(
                    ChunkStreamId::VIDEO,
                    Timestamp(ts),
                    9,
                    MessageStreamId(1),
                    &payload,
                    o,
                )
                .expect("encode");
            }
            black_box(outs[999].len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
