//! The AMF3 value model (AMF 3 Specification §3).

use crate::amf0::{Amf0Object, Amf0Value};

/// One AMF3 value (AMF 3 Specification §3.2-§3.14).
///
/// References (§2.2) are resolved while decoding: a value that the bytes
/// sent by reference is here as a copy of the value it points to.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf3Value {
    /// 0x00 (§3.2).
    Undefined,
    /// 0x01 (§3.3).
    Null,
    /// 0x02 false, 0x03 true (§3.4, §3.5).
    Boolean(bool),
    /// 0x04 (§3.6): a 29-bit signed integer. A value outside
    /// -2^28 ..= 2^28 - 1 is encoded as a double, as the spec requires.
    Integer(i32),
    /// 0x05 (§3.7).
    Double(f64),
    /// 0x06 (§3.8).
    String(String),
    /// 0x07 (§3.9): legacy `flash.xml.XMLDocument` text.
    XmlDocument(String),
    /// 0x08 (§3.10): milliseconds since 1970-01-01 UTC.
    Date(f64),
    /// 0x09 (§3.11): the associative part, then the dense part.
    Array {
        /// Named members, in order (names are never empty).
        assoc: Vec<(String, Amf3Value)>,
        /// Members 0..n.
        dense: Vec<Amf3Value>,
    },
    /// 0x0A (§3.12).
    Object(Amf3Object),
    /// 0x0B (§3.13): E4X XML text.
    Xml(String),
    /// 0x0C (§3.14).
    ByteArray(Vec<u8>),
    /// 0x0D (§3.15): `Vector.<int>`.
    VectorInt {
        /// Whether the vector has a fixed length.
        fixed: bool,
        /// The items.
        items: Vec<i32>,
    },
    /// 0x0E (§3.15): `Vector.<uint>`.
    VectorUint {
        /// Whether the vector has a fixed length.
        fixed: bool,
        /// The items.
        items: Vec<u32>,
    },
    /// 0x0F (§3.15): `Vector.<Number>`.
    VectorDouble {
        /// Whether the vector has a fixed length.
        fixed: bool,
        /// The items.
        items: Vec<f64>,
    },
    /// 0x10 (§3.15): `Vector.<T>` of objects; `type_name` is T's class
    /// name (`"*"` for any).
    VectorObject {
        /// Whether the vector has a fixed length.
        fixed: bool,
        /// The item type's class name.
        type_name: String,
        /// The items.
        items: Vec<Amf3Value>,
    },
    /// 0x11 (§3.16): `flash.utils.Dictionary`, keys of any type.
    Dictionary {
        /// Whether the keys are weakly referenced.
        weak_keys: bool,
        /// Key / value pairs, in order.
        entries: Vec<(Amf3Value, Amf3Value)>,
    },
}

/// An AMF3 object (§3.12): its traits (class name, dynamic or not, the
/// names of the sealed members) and its members.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Amf3Object {
    /// The class alias; empty for an anonymous object.
    pub class_name: String,
    /// Whether members beyond the sealed ones may follow.
    pub dynamic: bool,
    /// Sealed members, in the order of the traits.
    pub sealed: Vec<(String, Amf3Value)>,
    /// Dynamic members, in order (names are never empty).
    pub dynamic_members: Vec<(String, Amf3Value)>,
}

impl Amf3Object {
    /// An anonymous dynamic object, as ActionScript's `{}`.
    pub fn anonymous() -> Self {
        Amf3Object {
            dynamic: true,
            ..Amf3Object::default()
        }
    }

    /// Builder: appends a dynamic member.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: Amf3Value) -> Self {
        self.dynamic_members.push((key.into(), value));
        self
    }

    /// The first member called `key`, sealed members first.
    pub fn get(&self, key: &str) -> Option<&Amf3Value> {
        self.sealed
            .iter()
            .chain(&self.dynamic_members)
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Every member, sealed first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Amf3Value)> {
        self.sealed
            .iter()
            .chain(&self.dynamic_members)
            .map(|(k, v)| (k.as_str(), v))
    }
}

impl Amf3Value {
    /// The text of a `String`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf3Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number of an `Integer` or a `Double`.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Amf3Value::Integer(i) => Some(f64::from(*i)),
            Amf3Value::Double(d) => Some(*d),
            _ => None,
        }
    }

    /// The bytes of a `ByteArray`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Amf3Value::ByteArray(b) => Some(b),
            _ => None,
        }
    }

    /// The members of an `Object`.
    pub fn as_object(&self) -> Option<&Amf3Object> {
        match self {
            Amf3Value::Object(o) => Some(o),
            _ => None,
        }
    }
}

impl From<&str> for Amf3Value {
    fn from(v: &str) -> Self {
        Amf3Value::String(v.to_owned())
    }
}

impl From<f64> for Amf3Value {
    fn from(v: f64) -> Self {
        Amf3Value::Double(v)
    }
}

impl From<bool> for Amf3Value {
    fn from(v: bool) -> Self {
        Amf3Value::Boolean(v)
    }
}

impl Amf3Value {
    /// The nearest AMF0 value, for peers that read AMF0 only (metadata
    /// that a publisher sent in AMF3 goes to players this way): integers
    /// become numbers, an array with named members an ECMA array (dense
    /// items under their index), vectors strict arrays, an object with a
    /// class a typed object. A ByteArray or a Dictionary has no AMF0 form
    /// and stays behind the switch marker.
    pub fn to_amf0(&self) -> Amf0Value {
        let members = |m: &mut dyn Iterator<Item = (&str, &Amf3Value)>| -> Amf0Object {
            m.map(|(k, v)| (k.to_owned(), v.to_amf0())).collect()
        };
        match self {
            Amf3Value::Undefined => Amf0Value::Undefined,
            Amf3Value::Null => Amf0Value::Null,
            Amf3Value::Boolean(b) => Amf0Value::Boolean(*b),
            Amf3Value::Integer(_) | Amf3Value::Double(_) => {
                Amf0Value::Number(self.as_number().unwrap_or_default())
            }
            Amf3Value::String(s) => Amf0Value::String(s.clone()),
            Amf3Value::XmlDocument(s) | Amf3Value::Xml(s) => Amf0Value::XmlDocument(s.clone()),
            Amf3Value::Date(ms) => Amf0Value::Date {
                millis: *ms,
                timezone: 0,
            },
            Amf3Value::Array { assoc, dense } if assoc.is_empty() => {
                Amf0Value::StrictArray(dense.iter().map(Amf3Value::to_amf0).collect())
            }
            Amf3Value::Array { assoc, dense } => {
                let mut o = members(&mut assoc.iter().map(|(k, v)| (k.as_str(), v)));
                for (i, v) in dense.iter().enumerate() {
                    o.push(i.to_string(), v.to_amf0());
                }
                Amf0Value::EcmaArray(o)
            }
            Amf3Value::Object(o) if o.class_name.is_empty() => {
                Amf0Value::Object(members(&mut o.iter()))
            }
            Amf3Value::Object(o) => Amf0Value::TypedObject {
                class_name: o.class_name.clone(),
                properties: members(&mut o.iter()),
            },
            Amf3Value::VectorInt { items, .. } => {
                Amf0Value::StrictArray(items.iter().map(|i| f64::from(*i).into()).collect())
            }
            Amf3Value::VectorUint { items, .. } => {
                Amf0Value::StrictArray(items.iter().map(|i| f64::from(*i).into()).collect())
            }
            Amf3Value::VectorDouble { items, .. } => {
                Amf0Value::StrictArray(items.iter().map(|d| (*d).into()).collect())
            }
            Amf3Value::VectorObject { items, .. } => {
                Amf0Value::StrictArray(items.iter().map(Amf3Value::to_amf0).collect())
            }
            Amf3Value::ByteArray(_) | Amf3Value::Dictionary { .. } => {
                Amf0Value::Avmplus(self.clone())
            }
        }
    }
}
