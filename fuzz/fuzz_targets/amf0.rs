//! AMF0 decoder: arbitrary bytes. What decodes encodes to bytes that decode
//! to values that encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmpkit_proto::amf0;

fuzz_target!(|data: &[u8]| {
    let Ok(values) = amf0::decode_all(data) else {
        return;
    };
    let mut once = Vec::new();
    for v in &values {
        amf0::encode(v, &mut once);
    }
    let again = amf0::decode_all(&once).expect("re-encoded AMF0 decodes");
    assert_eq!(again.len(), values.len());
    let mut twice = Vec::new();
    for v in &again {
        amf0::encode(v, &mut twice);
    }
    assert_eq!(once, twice);
});
