//! AMF0 values: encode and decode.
//!
//! AMF0 specification (Adobe, 2006), §2: every value is a one-byte type
//! marker followed by its encoding. All numbers are big-endian.
//!
//! Decoding never panics: a value cut short yields
//! [`DecodeError::Truncated`], unknown markers
//! [`DecodeError::InvalidAmf0Marker`], and nesting deeper than
//! [`MAX_DEPTH`] [`DecodeError::NestingTooDeep`]. The AVM+ marker (0x11,
//! AMF0 §3.1) switches one value to AMF3: it decodes to
//! [`Amf0Value::Avmplus`] with the [`amf3`] decoder, with
//! fresh AMF3 reference tables for each switch and one expansion budget
//! for the whole input.

mod value;

pub use value::{Amf0Object, Amf0Value};

use crate::amf3;
use crate::error::DecodeError;
use bytes::BufMut;

/// Deepest nesting of objects / arrays that [`decode`] accepts.
pub const MAX_DEPTH: usize = 64;

/// AMF0 §2.1 type markers.
pub(crate) mod marker {
    pub const NUMBER: u8 = 0x00;
    pub const BOOLEAN: u8 = 0x01;
    pub const STRING: u8 = 0x02;
    pub const OBJECT: u8 = 0x03;
    pub const MOVIE_CLIP: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const UNDEFINED: u8 = 0x06;
    pub const REFERENCE: u8 = 0x07;
    pub const ECMA_ARRAY: u8 = 0x08;
    pub const OBJECT_END: u8 = 0x09;
    pub const STRICT_ARRAY: u8 = 0x0A;
    pub const DATE: u8 = 0x0B;
    pub const LONG_STRING: u8 = 0x0C;
    pub const UNSUPPORTED: u8 = 0x0D;
    pub const RECORD_SET: u8 = 0x0E;
    pub const XML_DOCUMENT: u8 = 0x0F;
    pub const TYPED_OBJECT: u8 = 0x10;
    pub const AVMPLUS: u8 = 0x11;
}

/// A cursor over AMF0 bytes.
#[derive(Debug)]
pub struct Amf0Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// What AMF3 values (0x11) of this input may expand to.
    amf3_budget: amf3::Budget,
}

impl<'a> Amf0Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Amf0Reader {
            buf,
            pos: 0,
            amf3_budget: amf3::Budget::for_input(buf.len()),
        }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// How many bytes were read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Reads one value.
    pub fn read_value(&mut self) -> Result<Amf0Value, DecodeError> {
        self.value(0)
    }

    /// Reads values until the input ends.
    pub fn read_all(&mut self) -> Result<Vec<Amf0Value>, DecodeError> {
        let mut out = Vec::new();
        while !self.is_empty() {
            out.push(self.read_value()?);
        }
        Ok(out)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(DecodeError::Truncated(what))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self, what: &'static str) -> Result<f64, DecodeError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn utf8(&mut self, len: usize, what: &'static str) -> Result<String, DecodeError> {
        let b = self.take(len, what)?;
        // Peers do send invalid UTF-8 in names and metadata; a lossy string is
        // more useful than a dropped session.
        Ok(String::from_utf8_lossy(b).into_owned())
    }

    fn short_string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let len = self.u16(what)? as usize;
        self.utf8(len, what)
    }

    fn long_string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let len = self.u32(what)? as usize;
        self.utf8(len, what)
    }

    /// Object properties up to and including the `00 00 09` end marker.
    fn properties(&mut self, depth: usize) -> Result<Amf0Object, DecodeError> {
        let mut obj = Amf0Object::new();
        loop {
            let key = self.short_string("amf0 property name")?;
            if key.is_empty() {
                // An empty key followed by the ObjectEnd marker ends the object
                // (AMF0 §2.5); an empty key with any other value is a property.
                if self.buf.get(self.pos) == Some(&marker::OBJECT_END) {
                    self.pos += 1;
                    return Ok(obj);
                }
                if self.pos >= self.buf.len() {
                    return Err(DecodeError::Truncated("amf0 object"));
                }
            }
            let v = self.value(depth + 1)?;
            obj.push(key, v);
        }
    }

    fn value(&mut self, depth: usize) -> Result<Amf0Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::NestingTooDeep(MAX_DEPTH));
        }
        let m = self.u8("amf0 marker")?;
        Ok(match m {
            marker::NUMBER => Amf0Value::Number(self.f64("amf0 number")?),
            marker::BOOLEAN => Amf0Value::Boolean(self.u8("amf0 boolean")? != 0),
            marker::STRING => Amf0Value::String(self.short_string("amf0 string")?),
            marker::OBJECT => Amf0Value::Object(self.properties(depth)?),
            marker::NULL => Amf0Value::Null,
            marker::UNDEFINED => Amf0Value::Undefined,
            marker::REFERENCE => Amf0Value::Reference(self.u16("amf0 reference")?),
            marker::ECMA_ARRAY => {
                // The count is only a hint (FFmpeg writes 0 at times); the end
                // marker is what ends the array.
                let _hint = self.u32("amf0 ecma array")?;
                Amf0Value::EcmaArray(self.properties(depth)?)
            }
            marker::OBJECT_END => return Err(DecodeError::InvalidAmf0Marker(m)),
            marker::STRICT_ARRAY => {
                let count = self.u32("amf0 strict array")? as usize;
                // Every element takes at least one byte: a count larger than
                // what is left is truncated input, not an allocation request.
                let left = self.buf.len() - self.pos;
                if count > left {
                    return Err(DecodeError::Truncated("amf0 strict array"));
                }
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Amf0Value::StrictArray(items)
            }
            marker::DATE => {
                let millis = self.f64("amf0 date")?;
                let tz = self.u16("amf0 date")? as i16;
                Amf0Value::Date {
                    millis,
                    timezone: tz,
                }
            }
            marker::LONG_STRING => Amf0Value::LongString(self.long_string("amf0 long string")?),
            marker::UNSUPPORTED => Amf0Value::Unsupported,
            marker::XML_DOCUMENT => Amf0Value::XmlDocument(self.long_string("amf0 xml document")?),
            marker::TYPED_OBJECT => {
                let class_name = self.short_string("amf0 typed object")?;
                let properties = self.properties(depth)?;
                Amf0Value::TypedObject {
                    class_name,
                    properties,
                }
            }
            marker::MOVIE_CLIP | marker::RECORD_SET => {
                return Err(DecodeError::ReservedAmf0Marker(m));
            }
            marker::AVMPLUS => {
                let v = amf3::read_value(self.buf, &mut self.pos, depth, &mut self.amf3_budget)?;
                Amf0Value::Avmplus(v)
            }
            other => return Err(DecodeError::InvalidAmf0Marker(other)),
        })
    }
}

/// Decodes exactly one value that fills the whole of `buf`.
pub fn decode(buf: &[u8]) -> Result<Amf0Value, DecodeError> {
    let mut r = Amf0Reader::new(buf);
    let v = r.read_value()?;
    if !r.is_empty() {
        return Err(DecodeError::TrailingBytes(
            r.remaining().len(),
            "amf0 value",
        ));
    }
    Ok(v)
}

/// Decodes every value in `buf`.
pub fn decode_all(buf: &[u8]) -> Result<Vec<Amf0Value>, DecodeError> {
    Amf0Reader::new(buf).read_all()
}

/// Appends the encoding of `value` to `out`.
///
/// Encoding is total: a `String` longer than 65535 bytes is written as a Long
/// String (AMF0 §2.14), and an object key longer than 65535 bytes (which
/// AMF0 cannot express) is cut at the last character boundary that fits.
pub fn encode<B: BufMut>(value: &Amf0Value, out: &mut B) {
    match value {
        Amf0Value::Number(n) => {
            out.put_u8(marker::NUMBER);
            out.put_f64(*n);
        }
        Amf0Value::Boolean(b) => {
            out.put_u8(marker::BOOLEAN);
            out.put_u8(u8::from(*b));
        }
        Amf0Value::String(s) if s.len() <= u16::MAX as usize => {
            out.put_u8(marker::STRING);
            put_short_string(s, out);
        }
        Amf0Value::String(s) | Amf0Value::LongString(s) => {
            out.put_u8(marker::LONG_STRING);
            put_long_string(s, out);
        }
        Amf0Value::Object(o) => {
            out.put_u8(marker::OBJECT);
            put_properties(o, out);
        }
        Amf0Value::Null => out.put_u8(marker::NULL),
        Amf0Value::Undefined => out.put_u8(marker::UNDEFINED),
        Amf0Value::Reference(r) => {
            out.put_u8(marker::REFERENCE);
            out.put_u16(*r);
        }
        Amf0Value::EcmaArray(o) => {
            out.put_u8(marker::ECMA_ARRAY);
            out.put_u32(u32::try_from(o.len()).unwrap_or(u32::MAX));
            put_properties(o, out);
        }
        Amf0Value::StrictArray(items) => {
            out.put_u8(marker::STRICT_ARRAY);
            out.put_u32(u32::try_from(items.len()).unwrap_or(u32::MAX));
            for v in items {
                encode(v, out);
            }
        }
        Amf0Value::Date { millis, timezone } => {
            out.put_u8(marker::DATE);
            out.put_f64(*millis);
            out.put_i16(*timezone);
        }
        Amf0Value::Unsupported => out.put_u8(marker::UNSUPPORTED),
        Amf0Value::XmlDocument(s) => {
            out.put_u8(marker::XML_DOCUMENT);
            put_long_string(s, out);
        }
        Amf0Value::TypedObject {
            class_name,
            properties,
        } => {
            out.put_u8(marker::TYPED_OBJECT);
            put_short_string(class_name, out);
            put_properties(properties, out);
        }
        Amf0Value::Avmplus(v) => {
            out.put_u8(marker::AVMPLUS);
            amf3::encode(v, out);
        }
    }
}

/// Encodes `value` into a new vector.
pub fn to_vec(value: &Amf0Value) -> Vec<u8> {
    let mut v = Vec::with_capacity(value.encoded_len_hint());
    encode(value, &mut v);
    v
}

fn put_short_string<B: BufMut>(s: &str, out: &mut B) {
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.put_u16(end as u16);
    out.put_slice(&s.as_bytes()[..end]);
}

fn put_long_string<B: BufMut>(s: &str, out: &mut B) {
    let mut end = s.len().min(u32::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.put_u32(end as u32);
    out.put_slice(&s.as_bytes()[..end]);
}

fn put_properties<B: BufMut>(o: &Amf0Object, out: &mut B) {
    for (k, v) in o.iter() {
        put_short_string(k, out);
        encode(v, out);
    }
    out.put_slice(&[0, 0, marker::OBJECT_END]);
}

#[cfg(test)]
mod tests;
