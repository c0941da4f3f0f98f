//! AMF3 values: encode and decode (Adobe "AMF 3 Specification", January
//! 2013).
//!
//! Every value is a one-byte marker (§3.1) and its encoding. Integers and
//! lengths are U29, a variable-length 29-bit number of 1 to 4 bytes
//! (§1.3.1). Strings, traits and complex values may be sent once and then
//! by reference (§2.2): the decoder keeps the three reference tables and
//! resolves every reference, so an [`Amf3Value`] holds no references.
//!
//! In RTMP, AMF3 arrives inside AMF0: the AMF0 marker 0x11
//! ("avmplus-object-marker", AMF0 §3.1) switches one value to AMF3. Data
//! (type 15) and command (type 17) messages are AMF0 values after a format
//! byte, with such switches. OBS 29 sends its VOD audio track as an AMF3
//! ByteArray this way.
//!
//! Decoding never panics and is bounded like AMF0: nesting deeper than
//! [`MAX_DEPTH`](crate::amf0::MAX_DEPTH), a count larger than the bytes
//! left, more than [`MAX_REFERENCES`] entries in a table, or references
//! that would copy more than a budget proportional to the input (so a few
//! bytes that reference each other cannot expand into gigabytes) are
//! [`DecodeError`]s. An externalizable object (§3.12, its encoding private
//! to its class) is [`DecodeError::Amf3Externalizable`].

mod decode;
mod encode;
mod value;

pub use value::{Amf3Object, Amf3Value};

pub(crate) use decode::{Budget, read_value};

use crate::error::DecodeError;
use bytes::BufMut;

/// Most entries one reference table (strings, traits, objects) may hold.
pub const MAX_REFERENCES: usize = 65_535;

/// AMF3 §3.1 type markers.
pub(crate) mod marker {
    pub const UNDEFINED: u8 = 0x00;
    pub const NULL: u8 = 0x01;
    pub const FALSE: u8 = 0x02;
    pub const TRUE: u8 = 0x03;
    pub const INTEGER: u8 = 0x04;
    pub const DOUBLE: u8 = 0x05;
    pub const STRING: u8 = 0x06;
    pub const XML_DOC: u8 = 0x07;
    pub const DATE: u8 = 0x08;
    pub const ARRAY: u8 = 0x09;
    pub const OBJECT: u8 = 0x0A;
    pub const XML: u8 = 0x0B;
    pub const BYTE_ARRAY: u8 = 0x0C;
    pub const VECTOR_INT: u8 = 0x0D;
    pub const VECTOR_UINT: u8 = 0x0E;
    pub const VECTOR_DOUBLE: u8 = 0x0F;
    pub const VECTOR_OBJECT: u8 = 0x10;
    pub const DICTIONARY: u8 = 0x11;
}

/// Largest U29 (§1.3.1): 2^29 - 1.
const U29_MAX: u32 = 0x1FFF_FFFF;
/// The range of an AMF3 integer (§3.6).
const INT_MIN: i32 = -(1 << 28);
const INT_MAX: i32 = (1 << 28) - 1;

/// Decodes exactly one value that fills the whole of `buf`, with fresh
/// reference tables.
pub fn decode(buf: &[u8]) -> Result<Amf3Value, DecodeError> {
    let mut pos = 0;
    let mut budget = Budget::for_input(buf.len());
    let v = read_value(buf, &mut pos, 0, &mut budget)?;
    if pos < buf.len() {
        return Err(DecodeError::TrailingBytes(buf.len() - pos, "amf3 value"));
    }
    Ok(v)
}

/// Appends the encoding of `value` to `out`, with fresh reference tables:
/// repeated strings and traits go by reference, complex values always
/// inline.
///
/// Encoding is total: an integer outside the 29-bit range becomes a
/// double (§3.6); an empty member name (which ends a member list) is
/// left out; a string or count longer than a U29 can say is cut.
pub fn encode<B: BufMut>(value: &Amf3Value, out: &mut B) {
    encode::Encoder::default().value(value, out);
}

/// Encodes `value` into a new vector.
pub fn to_vec(value: &Amf3Value) -> Vec<u8> {
    let mut v = Vec::new();
    encode(value, &mut v);
    v
}

#[cfg(test)]
mod tests;
