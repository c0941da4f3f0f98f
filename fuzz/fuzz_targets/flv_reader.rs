//! FLV reader: arbitrary bytes, cut anywhere. Every tag read writes back
//! to bytes that read as the same tag.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmpkit_proto::flv::{self, FlvReader};

fuzz_target!(|data: &[u8]| {
    let mut r = FlvReader::new();
    let mut tags = Vec::new();
    'feed: for piece in rtmpkit_fuzz::pieces(data) {
        r.push(piece);
        loop {
            match r.next_tag() {
                Ok(Some(t)) => tags.push(t),
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
    let mut file = Vec::new();
    flv::write_header(true, true, &mut file);
    for t in &tags {
        flv::write_tag(t.tag_type, t.timestamp, &t.data, &mut file).expect("a read tag writes");
    }
    let mut back = FlvReader::new();
    back.push(&file);
    for t in &tags {
        let b = back
            .next_tag()
            .expect("our FLV reads")
            .expect("every tag comes back");
        assert_eq!(
            (b.tag_type, b.timestamp, &b.data),
            (t.tag_type, t.timestamp, &t.data)
        );
    }
});
