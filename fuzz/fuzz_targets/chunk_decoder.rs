//! Chunk decoder: arbitrary bytes, cut anywhere. Every message respects the
//! limits, and what was decoded encodes and decodes back to the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmpkit_proto::message::Message;
use rtmpkit_proto::{ChunkDecoder, ChunkEncoder, RawMessage};

fuzz_target!(|data: &[u8]| {
    let limits = rtmpkit_fuzz::limits();
    let mut d = ChunkDecoder::with_limits(limits);
    let mut got: Vec<RawMessage> = Vec::new();
    'feed: for piece in rtmpkit_fuzz::pieces(data) {
        d.push(piece);
        loop {
            match d.next_message() {
                Ok(Some(m)) => {
                    assert!(m.payload.len() <= limits.max_message_len as usize);
                    let _ = Message::decode(m.type_id, m.payload.clone());
                    got.push(m);
                }
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
    // Round trip. The decoder applies Set Chunk Size itself (and so will
    // the second one); the encoder follows each one it writes.
    let mut e = ChunkEncoder::new();
    let mut wire = Vec::new();
    for m in &got {
        e.encode(
            m.csid,
            m.timestamp,
            m.type_id,
            m.stream_id,
            &m.payload,
            &mut wire,
        )
        .expect("a decoded message encodes");
        if let Ok(Message::SetChunkSize(size)) = Message::decode(m.type_id, m.payload.clone()) {
            e.set_chunk_size(size).expect("a size the decoder took");
        }
    }
    let mut again = ChunkDecoder::new();
    again.push(&wire);
    for m in &got {
        let back = again
            .next_message()
            .expect("our own chunks decode")
            .expect("every message comes back");
        assert_eq!(
            (
                back.csid,
                back.timestamp,
                back.type_id,
                back.stream_id,
                &back.payload
            ),
            (m.csid, m.timestamp, m.type_id, m.stream_id, &m.payload)
        );
    }
    assert!(again.next_message().expect("no trailing garbage").is_none());
});
