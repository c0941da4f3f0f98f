//! The AMF0 value model.

/// One AMF0 value (AMF0 specification §2).
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    /// 0x00: IEEE-754 double.
    Number(f64),
    /// 0x01.
    Boolean(bool),
    /// 0x02: UTF-8, at most 65535 bytes.
    String(String),
    /// 0x03: anonymous object.
    Object(Amf0Object),
    /// 0x05.
    Null,
    /// 0x06.
    Undefined,
    /// 0x07: index of an earlier complex value (kept as the index).
    Reference(u16),
    /// 0x08: associative array.
    EcmaArray(Amf0Object),
    /// 0x0A: dense array.
    StrictArray(Vec<Amf0Value>),
    /// 0x0B: milliseconds since the Unix epoch, and a time zone that AMF0 says
    /// should be 0.
    Date {
        /// Milliseconds since 1970-01-01 UTC.
        millis: f64,
        /// Time-zone offset (reserved, normally 0).
        timezone: i16,
    },
    /// 0x0C: UTF-8 with a 32-bit length.
    LongString(String),
    /// 0x0D.
    Unsupported,
    /// 0x0F: XML text with a 32-bit length.
    XmlDocument(String),
    /// 0x10: object with a registered class name.
    TypedObject {
        /// The class alias.
        class_name: String,
        /// The properties.
        properties: Amf0Object,
    },
    /// 0x11: one value in AMF3 (AMF0 §3.1, "switch to AMF 3").
    Avmplus(crate::amf3::Amf3Value),
}

/// Ordered key/value pairs of an AMF0 object or ECMA array.
///
/// Order is kept so that encoding what was decoded gives the same bytes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Amf0Object(Vec<(String, Amf0Value)>);

impl Amf0Object {
    /// An empty object.
    pub fn new() -> Self {
        Amf0Object(Vec::new())
    }

    /// Appends a property (a later property of the same name shadows nothing:
    /// [`Amf0Object::get`] returns the first).
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<Amf0Value>) {
        self.0.push((key.into(), value.into()));
    }

    /// Builder form of [`Amf0Object::push`].
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Amf0Value>) -> Self {
        self.push(key, value);
        self
    }

    /// Sets `key` to `value`, replacing the first property of that name.
    pub fn set(&mut self, key: &str, value: impl Into<Amf0Value>) {
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key.to_owned(), value)),
        }
    }

    /// The first property called `key`.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Removes every property called `key`.
    pub fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }

    /// The string property `key`, if it is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Amf0Value::as_str)
    }

    /// The number property `key`, if it is a number.
    pub fn get_number(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Amf0Value::as_number)
    }

    /// All properties in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Amf0Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no properties.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, Amf0Value)> for Amf0Object {
    fn from_iter<T: IntoIterator<Item = (String, Amf0Value)>>(iter: T) -> Self {
        Amf0Object(iter.into_iter().collect())
    }
}

impl Amf0Value {
    /// The string of a `String` or `LongString` (or of an AMF3 string).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) | Amf0Value::LongString(s) => Some(s),
            Amf0Value::Avmplus(v) => v.as_str(),
            _ => None,
        }
    }

    /// The number of a `Number` (or of an AMF3 integer or double).
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            Amf0Value::Avmplus(v) => v.as_number(),
            _ => None,
        }
    }

    /// The boolean of a `Boolean`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Amf0Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The properties of an `Object`, `EcmaArray` or `TypedObject`.
    pub fn as_object(&self) -> Option<&Amf0Object> {
        match self {
            Amf0Value::Object(o)
            | Amf0Value::EcmaArray(o)
            | Amf0Value::TypedObject { properties: o, .. } => Some(o),
            _ => None,
        }
    }

    /// Whether this is `Null` or `Undefined`.
    pub fn is_null(&self) -> bool {
        matches!(
            self,
            Amf0Value::Null
                | Amf0Value::Undefined
                | Amf0Value::Avmplus(
                    crate::amf3::Amf3Value::Null | crate::amf3::Amf3Value::Undefined
                )
        )
    }

    /// A rough size of the encoding, for buffer reservation.
    pub(crate) fn encoded_len_hint(&self) -> usize {
        match self {
            Amf0Value::String(s) | Amf0Value::LongString(s) | Amf0Value::XmlDocument(s) => {
                5 + s.len()
            }
            Amf0Value::Object(o) | Amf0Value::EcmaArray(o) => {
                8 + o
                    .iter()
                    .map(|(k, v)| 2 + k.len() + v.encoded_len_hint())
                    .sum::<usize>()
            }
            Amf0Value::StrictArray(a) => 5 + a.iter().map(Self::encoded_len_hint).sum::<usize>(),
            _ => 11,
        }
    }
}

impl From<f64> for Amf0Value {
    fn from(v: f64) -> Self {
        Amf0Value::Number(v)
    }
}
impl From<u32> for Amf0Value {
    fn from(v: u32) -> Self {
        Amf0Value::Number(f64::from(v))
    }
}
impl From<bool> for Amf0Value {
    fn from(v: bool) -> Self {
        Amf0Value::Boolean(v)
    }
}
impl From<&str> for Amf0Value {
    fn from(v: &str) -> Self {
        Amf0Value::String(v.to_owned())
    }
}
impl From<String> for Amf0Value {
    fn from(v: String) -> Self {
        Amf0Value::String(v)
    }
}
impl From<Amf0Object> for Amf0Value {
    fn from(v: Amf0Object) -> Self {
        Amf0Value::Object(v)
    }
}
