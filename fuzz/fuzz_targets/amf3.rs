//! AMF3 decoder: arbitrary bytes, alone and after the AMF0 switch marker.
//! What decodes encodes to bytes that decode to a value that encodes to
//! the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmpkit_proto::{amf0, amf3};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = amf3::decode(data) {
        let once = amf3::to_vec(&v);
        let again = amf3::decode(&once).expect("re-encoded AMF3 decodes");
        assert_eq!(amf3::to_vec(&again), once);
    }
    // The same bytes as AMF0 values with 0x11 switches inside.
    if let Ok(values) = amf0::decode_all(data) {
        let mut once = Vec::new();
        values.iter().for_each(|v| amf0::encode(v, &mut once));
        let again = amf0::decode_all(&once).expect("re-encoded AMF0 decodes");
        let mut twice = Vec::new();
        again.iter().for_each(|v| amf0::encode(v, &mut twice));
        assert_eq!(once, twice);
    }
});
