//! Property tests of AMF3 (AMF 3 Specification): every value round-trips,
//! alone and inside AMF0 after the 0x11 switch, with the encoder's string
//! and traits references resolved by the decoder; and no prefix of an
//! encoding decodes to something else without an error.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use rtmpkit_proto::amf0::{self, Amf0Value};
use rtmpkit_proto::amf3::{self, Amf3Object, Amf3Value};

fn number() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("not NaN", |x| !x.is_nan())
}

/// A member name: never empty (the empty name ends a member list). Few
/// letters, so that names repeat and go by reference.
fn name() -> impl Strategy<Value = String> {
    "[abc]{1,3}"
}

fn members(
    inner: impl Strategy<Value = Amf3Value> + Clone,
) -> impl Strategy<Value = Vec<(String, Amf3Value)>> {
    prop::collection::vec((name(), inner), 0..4)
}

fn amf3_value() -> impl Strategy<Value = Amf3Value> {
    let leaf = prop_oneof![
        Just(Amf3Value::Undefined),
        Just(Amf3Value::Null),
        any::<bool>().prop_map(Amf3Value::Boolean),
        (-(1i32 << 28)..(1 << 28)).prop_map(Amf3Value::Integer),
        number().prop_map(Amf3Value::Double),
        "[abc]{0,3}|.{0,20}".prop_map(Amf3Value::String),
        ".{0,20}".prop_map(Amf3Value::XmlDocument),
        ".{0,20}".prop_map(Amf3Value::Xml),
        number().prop_map(Amf3Value::Date),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Amf3Value::ByteArray),
        (any::<bool>(), prop::collection::vec(any::<i32>(), 0..6))
            .prop_map(|(fixed, items)| Amf3Value::VectorInt { fixed, items }),
        (any::<bool>(), prop::collection::vec(any::<u32>(), 0..6))
            .prop_map(|(fixed, items)| Amf3Value::VectorUint { fixed, items }),
        (any::<bool>(), prop::collection::vec(number(), 0..6))
            .prop_map(|(fixed, items)| Amf3Value::VectorDouble { fixed, items }),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            (
                members(inner.clone()),
                prop::collection::vec(inner.clone(), 0..4)
            )
                .prop_map(|(assoc, dense)| Amf3Value::Array { assoc, dense }),
            (
                "[PQ]?",
                any::<bool>(),
                members(inner.clone()),
                members(inner.clone())
            )
                .prop_map(|(class_name, dynamic, sealed, dynamic_members)| {
                    Amf3Value::Object(Amf3Object {
                        class_name,
                        dynamic,
                        sealed,
                        // A sealed-only object has no dynamic part to write.
                        dynamic_members: if dynamic { dynamic_members } else { vec![] },
                    })
                }),
            (
                any::<bool>(),
                "[*PQ]",
                prop::collection::vec(inner.clone(), 0..4)
            )
                .prop_map(|(fixed, type_name, items)| Amf3Value::VectorObject {
                    fixed,
                    type_name,
                    items
                }),
            (
                any::<bool>(),
                prop::collection::vec((inner.clone(), inner), 0..3)
            )
                .prop_map(|(weak_keys, entries)| Amf3Value::Dictionary { weak_keys, entries }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn amf3_values_round_trip(v in amf3_value()) {
        let bytes = amf3::to_vec(&v);
        prop_assert_eq!(amf3::decode(&bytes), Ok(v.clone()));
        // Every strict prefix is an error, never another value.
        for cut in 0..bytes.len() {
            prop_assert!(amf3::decode(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn amf3_inside_amf0_round_trips(values in prop::collection::vec(amf3_value(), 1..4)) {
        // As a data message: a handler name, then AMF3 values after 0x11.
        let mut all = vec![Amf0Value::String("onData".into())];
        all.extend(values.into_iter().map(Amf0Value::Avmplus));
        let mut bytes = Vec::new();
        for v in &all {
            amf0::encode(v, &mut bytes);
        }
        prop_assert_eq!(amf0::decode_all(&bytes), Ok(all));
    }
}
