use super::*;

fn all_values() -> Vec<Amf0Value> {
    let obj = Amf0Object::new()
        .with("app", "live")
        .with("n", 1.5)
        .with("objectEncoding", Amf0Value::Null)
        .with("u", Amf0Value::Undefined)
        .with("", "empty key");
    vec![
        Amf0Value::Number(3.25),
        Amf0Value::Boolean(true),
        Amf0Value::Boolean(false),
        Amf0Value::String("héllo".into()),
        Amf0Value::String(String::new()),
        Amf0Value::Object(obj.clone()),
        Amf0Value::Object(Amf0Object::new()),
        Amf0Value::Null,
        Amf0Value::Undefined,
        Amf0Value::Reference(7),
        Amf0Value::EcmaArray(obj.clone()),
        Amf0Value::StrictArray(vec![1.0.into(), "x".into(), Amf0Value::Null]),
        Amf0Value::Date {
            millis: 1_700_000_000_000.0,
            timezone: -60,
        },
        Amf0Value::LongString("long".into()),
        Amf0Value::Unsupported,
        Amf0Value::XmlDocument("<a/>".into()),
        Amf0Value::TypedObject {
            class_name: "Cls".into(),
            properties: obj.with("nested", Amf0Value::StrictArray(vec![])),
        },
    ]
}

#[test]
fn round_trip_every_marker() {
    for v in all_values() {
        let bytes = to_vec(&v);
        assert_eq!(decode(&bytes).unwrap(), v, "{bytes:02x?}");
    }
}

#[test]
fn every_strict_prefix_is_truncated() {
    for v in all_values() {
        let bytes = to_vec(&v);
        for n in 0..bytes.len() {
            match decode(&bytes[..n]) {
                Err(DecodeError::Truncated(_)) => {}
                other => panic!("prefix {n} of {v:?}: {other:?}"),
            }
        }
    }
}

#[test]
fn trailing_bytes_rejected() {
    let mut b = to_vec(&Amf0Value::Null);
    b.push(0x05);
    assert_eq!(decode(&b), Err(DecodeError::TrailingBytes(1, "amf0 value")));
}

#[test]
fn number_and_string_bytes() {
    assert_eq!(
        to_vec(&Amf0Value::Number(1.0)),
        [0, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        to_vec(&Amf0Value::String("ab".into())),
        [2, 0, 2, b'a', b'b']
    );
}

#[test]
fn long_string_chosen_for_big_strings() {
    let s = "x".repeat(70_000);
    let bytes = to_vec(&Amf0Value::String(s.clone()));
    assert_eq!(bytes[0], marker::LONG_STRING);
    assert_eq!(decode(&bytes).unwrap(), Amf0Value::LongString(s));
}

#[test]
fn avmplus_switches_to_amf3_and_reserved_markers_are_errors() {
    assert_eq!(
        decode(&[0x11, 0x02]),
        Ok(Amf0Value::Avmplus(crate::amf3::Amf3Value::Boolean(false)))
    );
    assert_eq!(decode(&[0x11]), Err(DecodeError::Truncated("amf3 marker")));
    assert_eq!(decode(&[0x04]), Err(DecodeError::ReservedAmf0Marker(4)));
    assert_eq!(decode(&[0x0e]), Err(DecodeError::ReservedAmf0Marker(0x0e)));
    assert_eq!(decode(&[0x12]), Err(DecodeError::InvalidAmf0Marker(0x12)));
    assert_eq!(decode(&[0x09]), Err(DecodeError::InvalidAmf0Marker(0x09)));
}

#[test]
fn nesting_limit() {
    let mut v = Amf0Value::Null;
    for _ in 0..(MAX_DEPTH + 5) {
        v = Amf0Value::StrictArray(vec![v]);
    }
    let bytes = to_vec(&v);
    assert_eq!(decode(&bytes), Err(DecodeError::NestingTooDeep(MAX_DEPTH)));
    // A hostile input of nothing but object markers must not recurse forever.
    let mut hostile = Vec::new();
    for _ in 0..100_000 {
        hostile.extend_from_slice(&[0x03, 0x00, 0x01, b'a']);
    }
    assert_eq!(
        decode(&hostile),
        Err(DecodeError::NestingTooDeep(MAX_DEPTH))
    );
}

#[test]
fn strict_array_count_is_not_trusted() {
    // Claims 4 billion elements with 1 byte behind: an error, not an allocation.
    assert_eq!(
        decode(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x05]),
        Err(DecodeError::Truncated("amf0 strict array"))
    );
}

#[test]
fn ecma_array_count_is_only_a_hint() {
    // count 0 but two properties: FFmpeg and others write wrong counts.
    let mut b = vec![0x08, 0, 0, 0, 0];
    b.extend_from_slice(&[0, 1, b'a', 0x05, 0, 1, b'b', 0x01, 1, 0, 0, 9]);
    let v = decode(&b).unwrap();
    let o = v.as_object().unwrap();
    assert_eq!(o.len(), 2);
    assert_eq!(o.get("b"), Some(&Amf0Value::Boolean(true)));
}

/// ZLMediaKit's connect `_result` carries `objectEncoding: null` in its
/// information object (test-vectors.md, amf0_test.go).
#[test]
fn null_inside_object_parses() {
    let info = Amf0Object::new()
        .with("level", "status")
        .with("code", "NetConnection.Connect.Success")
        .with("description", "Connection succeeded.")
        .with("objectEncoding", Amf0Value::Null);
    let bytes = to_vec(&Amf0Value::Object(info.clone()));
    let v = decode(&bytes).unwrap();
    assert_eq!(
        v.as_object().unwrap().get("objectEncoding"),
        Some(&Amf0Value::Null)
    );
    assert_eq!(v, Amf0Value::Object(info));
}

/// The connect object of the "易推流" iOS app as described in test-vectors.md
/// (swfUrl null, pageUrl null, objectEncoding undefined). The vector does not
/// give its tcUrl, so only the shape and the round trip are checked.
#[test]
fn mobile_app_connect_object() {
    let o = Amf0Object::new()
        .with("app", "live")
        .with("flashVer", "FMLE/3.0 (compatible; FMSc/1.0)")
        .with("swfUrl", Amf0Value::Null)
        .with("tcUrl", "rtmp://192.168.0.1:1935/live")
        .with("fpad", true)
        .with("capabilities", 239.0)
        .with("audioCodecs", 1024.0)
        .with("videoCodecs", 128.0)
        .with("videoFunction", 1.0)
        .with("pageUrl", Amf0Value::Null)
        .with("objectEncoding", Amf0Value::Undefined);
    let bytes = to_vec(&Amf0Value::Object(o.clone()));
    assert!(bytes.ends_with(&[0x06, 0, 0, 9]));
    assert_eq!(decode(&bytes).unwrap(), Amf0Value::Object(o));
}

/// FFmpeg's `onMetaData` is an ECMA array of 16 entries.
#[test]
fn ffmpeg_metadata_ecma_array() {
    let o = Amf0Object::new()
        .with("duration", 0.0)
        .with("width", 768.0)
        .with("height", 320.0)
        .with("videodatarate", 0.0)
        .with("framerate", 25.0)
        .with("videocodecid", 7.0)
        .with("audiodatarate", 0.0)
        .with("audiosamplerate", 44100.0)
        .with("audiosamplesize", 16.0)
        .with("stereo", true)
        .with("audiocodecid", 10.0)
        .with("major_brand", "isom")
        .with("minor_version", "512")
        .with("compatible_brands", "isomiso2avc1mp41")
        .with("encoder", "Lavf57.83.100")
        .with("filesize", 0.0);
    let v = Amf0Value::EcmaArray(o);
    let bytes = to_vec(&v);
    assert_eq!(&bytes[..5], &[0x08, 0, 0, 0, 16]);
    let back = decode_all(&bytes).unwrap();
    assert_eq!(back, vec![v]);
}

#[test]
fn keyframes_strict_array_of_135_numbers() {
    let v = Amf0Value::StrictArray((0..135).map(|i| Amf0Value::Number(f64::from(i))).collect());
    let bytes = to_vec(&v);
    assert_eq!(bytes.len(), 5 + 135 * 9);
    assert_eq!(decode(&bytes).unwrap(), v);
}

#[test]
fn decode_all_reads_a_sequence() {
    let mut b = Vec::new();
    encode(&"connect".into(), &mut b);
    encode(&1.0.into(), &mut b);
    encode(&Amf0Value::Null, &mut b);
    let vs = decode_all(&b).unwrap();
    assert_eq!(vs.len(), 3);
    assert_eq!(vs[0].as_str(), Some("connect"));
}
