//! The AMF3 encoder: strings and traits by reference when repeated
//! (§2.2), complex values always inline.

use super::value::{Amf3Object, Amf3Value};
use super::{INT_MAX, INT_MIN, U29_MAX, marker};
use bytes::BufMut;
use std::collections::HashMap;

/// The tables of one encoding.
#[derive(Default)]
pub(super) struct Encoder {
    strings: HashMap<String, u32>,
    /// Traits seen: (class name, dynamic, sealed names) to index.
    traits: HashMap<(String, bool, Vec<String>), u32>,
}

/// §1.3.1: 1 to 4 bytes; a value above 2^29 - 1 is cut to it.
pub(super) fn put_u29<B: BufMut>(v: u32, out: &mut B) {
    let v = v.min(U29_MAX);
    if v < 0x80 {
        out.put_u8(v as u8);
    } else if v < 0x4000 {
        out.put_u8(0x80 | (v >> 7) as u8);
        out.put_u8((v & 0x7F) as u8);
    } else if v < 0x20_0000 {
        out.put_u8(0x80 | (v >> 14) as u8);
        out.put_u8(0x80 | ((v >> 7) & 0x7F) as u8);
        out.put_u8((v & 0x7F) as u8);
    } else {
        out.put_u8(0x80 | (v >> 22) as u8);
        out.put_u8(0x80 | ((v >> 15) & 0x7F) as u8);
        out.put_u8(0x80 | ((v >> 8) & 0x7F) as u8);
        out.put_u8((v & 0xFF) as u8);
    }
}

/// The longest prefix of `s` whose length a U29 length field can hold.
fn fit(s: &str) -> &str {
    let max = (U29_MAX >> 1) as usize;
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A count or length with the "inline" low bit (U29 max is 2^28 - 1 items).
fn inline_len(n: usize) -> u32 {
    ((n.min((U29_MAX >> 1) as usize) as u32) << 1) | 1
}

impl Encoder {
    /// UTF-8-vr: by reference when sent before (never the empty string).
    fn string<B: BufMut>(&mut self, s: &str, out: &mut B) {
        let s = fit(s);
        if s.is_empty() {
            out.put_u8(0x01);
            return;
        }
        if let Some(&i) = self.strings.get(s) {
            put_u29(i << 1, out);
            return;
        }
        let next = self.strings.len() as u32;
        if next < U29_MAX >> 1 {
            self.strings.insert(s.to_owned(), next);
        }
        put_u29(inline_len(s.len()), out);
        out.put_slice(s.as_bytes());
    }

    fn text<B: BufMut>(&mut self, m: u8, s: &str, out: &mut B) {
        let s = fit(s);
        out.put_u8(m);
        put_u29(inline_len(s.len()), out);
        out.put_slice(s.as_bytes());
    }

    /// Members as name / value pairs up to the empty name; pairs whose
    /// name is empty cannot be written and are left out.
    fn members<B: BufMut>(&mut self, members: &[(String, Amf3Value)], out: &mut B) {
        for (k, v) in members.iter().filter(|(k, _)| !k.is_empty()) {
            self.string(k, out);
            self.value(v, out);
        }
        out.put_u8(0x01);
    }

    fn object<B: BufMut>(&mut self, o: &Amf3Object, out: &mut B) {
        let names: Vec<String> = o.sealed.iter().map(|(k, _)| k.clone()).collect();
        let key = (o.class_name.clone(), o.dynamic, names);
        match self.traits.get(&key) {
            Some(&i) => put_u29((i << 2) | 0x01, out),
            None => {
                let count = key.2.len().min((U29_MAX >> 4) as usize) as u32;
                put_u29((count << 4) | (u32::from(o.dynamic) << 3) | 0x03, out);
                self.string(&o.class_name, out);
                for name in key.2.iter().take(count as usize) {
                    self.string(name, out);
                }
                let next = self.traits.len() as u32;
                self.traits.insert(key, next);
            }
        }
        for (_, v) in o.sealed.iter().take((U29_MAX >> 4) as usize) {
            self.value(v, out);
        }
        if o.dynamic {
            self.members(&o.dynamic_members, out);
        }
    }

    pub(super) fn value<B: BufMut>(&mut self, v: &Amf3Value, out: &mut B) {
        let cap = (U29_MAX >> 1) as usize;
        match v {
            Amf3Value::Undefined => out.put_u8(marker::UNDEFINED),
            Amf3Value::Null => out.put_u8(marker::NULL),
            Amf3Value::Boolean(false) => out.put_u8(marker::FALSE),
            Amf3Value::Boolean(true) => out.put_u8(marker::TRUE),
            Amf3Value::Integer(i) if (INT_MIN..=INT_MAX).contains(i) => {
                out.put_u8(marker::INTEGER);
                put_u29((*i as u32) & U29_MAX, out);
            }
            Amf3Value::Integer(i) => {
                out.put_u8(marker::DOUBLE);
                out.put_f64(f64::from(*i));
            }
            Amf3Value::Double(d) => {
                out.put_u8(marker::DOUBLE);
                out.put_f64(*d);
            }
            Amf3Value::String(s) => {
                out.put_u8(marker::STRING);
                self.string(s, out);
            }
            Amf3Value::XmlDocument(s) => self.text(marker::XML_DOC, s, out),
            Amf3Value::Xml(s) => self.text(marker::XML, s, out),
            Amf3Value::Date(ms) => {
                out.put_u8(marker::DATE);
                out.put_u8(0x01);
                out.put_f64(*ms);
            }
            Amf3Value::Array { assoc, dense } => {
                out.put_u8(marker::ARRAY);
                put_u29(inline_len(dense.len()), out);
                self.members(assoc, out);
                for d in dense.iter().take(cap) {
                    self.value(d, out);
                }
            }
            Amf3Value::Object(o) => {
                out.put_u8(marker::OBJECT);
                self.object(o, out);
            }
            Amf3Value::ByteArray(b) => {
                out.put_u8(marker::BYTE_ARRAY);
                let b = &b[..b.len().min(cap)];
                put_u29(inline_len(b.len()), out);
                out.put_slice(b);
            }
            Amf3Value::VectorInt { fixed, items } => {
                out.put_u8(marker::VECTOR_INT);
                put_u29(inline_len(items.len()), out);
                out.put_u8(u8::from(*fixed));
                items.iter().take(cap).for_each(|i| out.put_i32(*i));
            }
            Amf3Value::VectorUint { fixed, items } => {
                out.put_u8(marker::VECTOR_UINT);
                put_u29(inline_len(items.len()), out);
                out.put_u8(u8::from(*fixed));
                items.iter().take(cap).for_each(|i| out.put_u32(*i));
            }
            Amf3Value::VectorDouble { fixed, items } => {
                out.put_u8(marker::VECTOR_DOUBLE);
                put_u29(inline_len(items.len()), out);
                out.put_u8(u8::from(*fixed));
                items.iter().take(cap).for_each(|d| out.put_f64(*d));
            }
            Amf3Value::VectorObject {
                fixed,
                type_name,
                items,
            } => {
                out.put_u8(marker::VECTOR_OBJECT);
                put_u29(inline_len(items.len()), out);
                out.put_u8(u8::from(*fixed));
                self.string(type_name, out);
                for i in items.iter().take(cap) {
                    self.value(i, out);
                }
            }
            Amf3Value::Dictionary { weak_keys, entries } => {
                out.put_u8(marker::DICTIONARY);
                put_u29(inline_len(entries.len()), out);
                out.put_u8(u8::from(*weak_keys));
                for (k, v) in entries.iter().take(cap) {
                    self.value(k, out);
                    self.value(v, out);
                }
            }
        }
    }
}
