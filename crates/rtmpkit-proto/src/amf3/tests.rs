use super::*;
use crate::amf0::{self, Amf0Value, MAX_DEPTH};

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex"))
        .collect()
}

/// Both ways: `value` encodes to exactly `bytes`, and `bytes` decode to it.
fn both_ways(value: Amf3Value, bytes: &str) {
    let b = hex(bytes);
    assert_eq!(to_vec(&value), b, "{value:?}");
    assert_eq!(decode(&b), Ok(value), "{bytes}");
}

#[test]
fn simple_values_and_u29_boundaries() {
    // §3.2-§3.5.
    both_ways(Amf3Value::Undefined, "00");
    both_ways(Amf3Value::Null, "01");
    both_ways(Amf3Value::Boolean(false), "02");
    both_ways(Amf3Value::Boolean(true), "03");
    // §1.3.1 U29: the last value of each length, and the first of the next.
    both_ways(Amf3Value::Integer(0), "04 00");
    both_ways(Amf3Value::Integer(0x7F), "04 7f");
    both_ways(Amf3Value::Integer(0x80), "04 81 00");
    both_ways(Amf3Value::Integer(0x3FFF), "04 ff 7f");
    both_ways(Amf3Value::Integer(0x4000), "04 81 80 00");
    both_ways(Amf3Value::Integer(0x1F_FFFF), "04 ff ff 7f");
    both_ways(Amf3Value::Integer(0x20_0000), "04 80 c0 80 00");
    both_ways(Amf3Value::Integer(0x0FFF_FFFF), "04 bf ff ff ff");
    // §3.6: 29-bit two's complement.
    both_ways(Amf3Value::Integer(-1), "04 ff ff ff ff");
    both_ways(Amf3Value::Integer(-(1 << 28)), "04 c0 80 80 00");
    // Out of the 29-bit range: a double (§3.6).
    let big = to_vec(&Amf3Value::Integer(1 << 28));
    assert_eq!(decode(&big), Ok(Amf3Value::Double(268_435_456.0)));
    both_ways(Amf3Value::Double(1.5), "05 3f f8 00 00 00 00 00 00");
    both_ways(Amf3Value::Date(0.0), "08 01 00 00 00 00 00 00 00 00");
}

#[test]
fn strings_and_the_string_table() {
    both_ways("hello".into(), "06 0b 68 65 6c 6c 6f");
    // §1.3.2: the empty string is 0x01 and never a reference.
    both_ways("".into(), "06 01");
    // A repeated string goes by reference: [ "ab", "ab" ] as a dense array.
    let arr = Amf3Value::Array {
        assoc: vec![],
        dense: vec!["ab".into(), "ab".into()],
    };
    both_ways(arr, "09 05 01 06 05 61 62 06 00");
    // A reference past the table.
    assert_eq!(
        decode(&hex("06 02")),
        Err(DecodeError::Amf3BadReference {
            table: "string",
            index: 1
        })
    );
}

#[test]
fn arrays_objects_and_traits() {
    // §3.11: dense [1, 2, 3], no associative part.
    let dense = Amf3Value::Array {
        assoc: vec![],
        dense: vec![
            Amf3Value::Integer(1),
            Amf3Value::Integer(2),
            Amf3Value::Integer(3),
        ],
    };
    both_ways(dense, "09 07 01 04 01 04 02 04 03");
    // Associative part first: { a: null }, then one dense null.
    let mixed = Amf3Value::Array {
        assoc: vec![("a".into(), Amf3Value::Null)],
        dense: vec![Amf3Value::Null],
    };
    both_ways(mixed, "09 03 03 61 01 01 01");
    // §3.12: anonymous dynamic object { a: 1 }: inline traits 0x0b
    // (dynamic, 0 sealed), class name "", member, then the empty name.
    let anon = Amf3Value::Object(Amf3Object::anonymous().with("a", Amf3Value::Integer(1)));
    both_ways(anon, "0a 0b 01 03 61 04 01 01");
    // A typed sealed object, twice: the second uses the traits reference
    // (0x01: traits index 0) and the string table for nothing else.
    let point = Amf3Object {
        class_name: "P".into(),
        dynamic: false,
        sealed: vec![("x".into(), Amf3Value::Integer(1))],
        dynamic_members: vec![],
    };
    let two = Amf3Value::Array {
        assoc: vec![],
        dense: vec![Amf3Value::Object(point.clone()), Amf3Value::Object(point)],
    };
    both_ways(two, "09 05 01 0a 13 03 50 03 78 04 01 0a 01 04 01");
    // An object reference (0x02: object table index 1, the first object
    // inside the array) resolves to a copy.
    let b = hex("09 05 01 0a 0b 01 03 61 04 01 01 0a 02");
    let Ok(Amf3Value::Array { dense, .. }) = decode(&b) else {
        panic!("array");
    };
    assert_eq!(dense[0], dense[1]);
    // A reference to the array that holds it: a cycle, refused.
    assert_eq!(
        decode(&hex("09 03 01 09 00")),
        Err(DecodeError::Amf3BadReference {
            table: "object",
            index: 0
        })
    );
    // Externalizable traits (0x07): the class's own encoding follows.
    assert_eq!(
        decode(&hex("0a 07 07 46 6f 6f 00")),
        Err(DecodeError::Amf3Externalizable("Foo".into()))
    );
}

#[test]
fn xml_bytes_vectors_and_dictionary() {
    both_ways(Amf3Value::XmlDocument("<a/>".into()), "07 09 3c 61 2f 3e");
    both_ways(Amf3Value::Xml("<a/>".into()), "0b 09 3c 61 2f 3e");
    both_ways(Amf3Value::ByteArray(vec![1, 2, 3]), "0c 07 01 02 03");
    both_ways(
        Amf3Value::VectorInt {
            fixed: false,
            items: vec![1, -1],
        },
        "0d 05 00 00 00 00 01 ff ff ff ff",
    );
    both_ways(
        Amf3Value::VectorUint {
            fixed: true,
            items: vec![0xFFFF_FFFF],
        },
        "0e 03 01 ff ff ff ff",
    );
    both_ways(
        Amf3Value::VectorDouble {
            fixed: false,
            items: vec![1.5],
        },
        "0f 03 00 3f f8 00 00 00 00 00 00",
    );
    both_ways(
        Amf3Value::VectorObject {
            fixed: false,
            type_name: "*".into(),
            items: vec![Amf3Value::Null],
        },
        "10 03 00 03 2a 01",
    );
    both_ways(
        Amf3Value::Dictionary {
            weak_keys: false,
            entries: vec![(Amf3Value::Integer(1), "v".into())],
        },
        "11 03 00 04 01 06 03 76",
    );
}

#[test]
fn hostile_inputs_are_errors() {
    // Counts larger than the input.
    for b in [
        "09 ff ff ff 01",
        "0d 81 01 00",
        "0c 85 01 01",
        "11 ff ff ff 7f 00",
    ] {
        assert!(
            matches!(decode(&hex(b)), Err(DecodeError::Truncated(_))),
            "{b}"
        );
    }
    assert_eq!(
        decode(&hex("12")),
        Err(DecodeError::InvalidAmf3Marker(0x12))
    );
    // Nesting: arrays of one array each.
    let mut deep = Vec::new();
    for _ in 0..=MAX_DEPTH + 1 {
        deep.extend_from_slice(&[0x09, 0x03, 0x01]);
    }
    deep.push(0x01);
    assert_eq!(decode(&deep), Err(DecodeError::NestingTooDeep(MAX_DEPTH)));
    // References that double at each level: array k holds array k-1 twice
    // (the second time by reference). 40 levels would be 2^40 copies.
    let mut bomb = Vec::new();
    for _ in 0..40 {
        bomb.extend_from_slice(&[0x09, 0x05, 0x01]);
    }
    bomb.push(0x01);
    for level in (0..40u32).rev() {
        // The second item of array `level`: a reference to array level+1
        // (table index level + 1), or null at the innermost.
        if level == 39 {
            bomb.push(0x01);
        } else {
            let mut r = Vec::new();
            encode::put_u29((level + 1) << 1, &mut r);
            bomb.push(0x09);
            bomb.extend_from_slice(&r);
        }
    }
    assert_eq!(decode(&bomb), Err(DecodeError::Amf3TooLarge));
}

#[test]
fn inside_amf0_as_obs_sends_its_vod_track() {
    // OBS 29 (plugins/obs-outputs/flv-mux.c, flv_build_additional_audio):
    // "additionalMedia", then an AMF0 object whose `media` switches to
    // AMF3 for a ByteArray holding an FLV audio tag body.
    let mut b = hex("02 00 0f");
    b.extend_from_slice(b"additionalMedia");
    b.extend_from_slice(&hex("03 00 02 69 64 02 00 07"));
    b.extend_from_slice(b"stream0");
    b.extend_from_slice(&hex(
        "00 05 6d 65 64 69 61 11 0c 0b af 01 21 10 04 00 00 09",
    ));
    let values = amf0::decode_all(&b).expect("decodes");
    let o = values[1].as_object().expect("object");
    assert_eq!(o.get_str("id"), Some("stream0"));
    let Some(Amf0Value::Avmplus(media)) = o.get("media") else {
        panic!("media is AMF3");
    };
    assert_eq!(media.as_bytes(), Some(&[0xaf, 0x01, 0x21, 0x10, 0x04][..]));
    // And back to the same bytes.
    let mut again = Vec::new();
    for v in &values {
        amf0::encode(v, &mut again);
    }
    assert_eq!(again, b);
}
