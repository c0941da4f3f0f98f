//! The AMF3 decoder and its reference tables (§2.2).

use super::value::{Amf3Object, Amf3Value};
use super::{MAX_REFERENCES, marker};
use crate::amf0::MAX_DEPTH;
use crate::error::DecodeError;

/// What one decoded node is charged: its size in memory. A reference
/// costs what its target cost, so the budget bounds the memory that
/// references can make out of few bytes.
const NODE_COST: usize = std::mem::size_of::<Amf3Value>();

/// Decoded bytes that AMF3 values of one message may take, references and
/// the tables' copies included.
#[derive(Debug)]
pub(crate) struct Budget(usize);

impl Budget {
    /// The budget for a message of `len` bytes: far more than any value
    /// written without references needs, and at most 32 MiB.
    pub(crate) fn for_input(len: usize) -> Budget {
        Budget(
            len.saturating_mul(256)
                .saturating_add(1 << 20)
                .min(32 << 20),
        )
    }

    fn charge(&mut self, cost: usize) -> Result<(), DecodeError> {
        self.0 = self.0.checked_sub(cost).ok_or(DecodeError::Amf3TooLarge)?;
        Ok(())
    }
}

/// Traits of an object (§3.12): kept in the traits table.
#[derive(Debug, Clone)]
struct Traits {
    class_name: String,
    dynamic: bool,
    externalizable: bool,
    sealed: Vec<String>,
}

/// One decode: the input, the position and the three tables.
struct Decoder<'a, 'b> {
    buf: &'a [u8],
    pos: usize,
    budget: &'b mut Budget,
    strings: Vec<String>,
    traits: Vec<Traits>,
    /// Complex values by reference index; `None` while the value is being
    /// decoded (a reference to it then would be a cycle).
    objects: Vec<Option<(Amf3Value, usize)>>,
}

/// Reads one AMF3 value at `*pos` with fresh reference tables (each AMF0
/// switch to AMF3 starts its own), charging `budget`. `depth` is the
/// nesting of the AMF0 value around it.
pub(crate) fn read_value(
    buf: &[u8],
    pos: &mut usize,
    depth: usize,
    budget: &mut Budget,
) -> Result<Amf3Value, DecodeError> {
    let mut d = Decoder {
        buf,
        pos: *pos,
        budget,
        strings: Vec::new(),
        traits: Vec::new(),
        objects: Vec::new(),
    };
    let (v, _) = d.value(depth)?;
    *pos = d.pos;
    Ok(v)
}

fn bad_ref(table: &'static str, index: usize) -> DecodeError {
    DecodeError::Amf3BadReference { table, index }
}

impl Decoder<'_, '_> {
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], DecodeError> {
        if n > self.left() {
            return Err(DecodeError::Truncated(what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    fn f64(&mut self, what: &'static str) -> Result<f64, DecodeError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    /// §1.3.1: up to three bytes of 7 bits with a continuation bit, then
    /// a fourth of 8 bits.
    fn u29(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let mut v: u32 = 0;
        for _ in 0..3 {
            let b = self.u8(what)?;
            v = (v << 7) | u32::from(b & 0x7F);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Ok((v << 8) | u32::from(self.u8(what)?))
    }

    /// A count that announces at least `min_each` bytes per item: larger
    /// than what is left is truncated input, not an allocation request.
    fn count(&self, n: u32, min_each: usize, what: &'static str) -> Result<usize, DecodeError> {
        let n = n as usize;
        if n.saturating_mul(min_each) > self.left() {
            return Err(DecodeError::Truncated(what));
        }
        Ok(n)
    }

    /// Room to reserve for `n` values: no more than the budget can pay for.
    fn room(&self, n: usize) -> usize {
        n.min(self.budget.0 / NODE_COST)
    }

    fn text(&mut self, len: usize, what: &'static str) -> Result<String, DecodeError> {
        let b = self.take(len, what)?;
        // As in AMF0: a lossy string serves better than a dropped session.
        Ok(String::from_utf8_lossy(b).into_owned())
    }

    /// UTF-8-vr (§1.3.2): a string, or a reference into the string table.
    fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let h = self.u29(what)?;
        if h & 1 == 0 {
            let i = (h >> 1) as usize;
            let s = self.strings.get(i).ok_or(bad_ref("string", i))?.clone();
            self.budget.charge(s.len())?;
            return Ok(s);
        }
        let s = self.text((h >> 1) as usize, what)?;
        // "The empty String is never sent by reference" nor kept.
        if !s.is_empty() {
            if self.strings.len() >= MAX_REFERENCES {
                return Err(DecodeError::Amf3TooManyReferences("string"));
            }
            self.budget.charge(s.len())?;
            self.strings.push(s.clone());
        }
        Ok(s)
    }

    /// The U29 header of a complex value: `Ok(Err(value))` for a reference
    /// (already resolved and charged), else `Ok(Ok((number, slot)))` with
    /// the value's slot in the object table reserved.
    #[allow(clippy::type_complexity)]
    fn complex(
        &mut self,
        what: &'static str,
    ) -> Result<Result<(u32, usize), (Amf3Value, usize)>, DecodeError> {
        let h = self.u29(what)?;
        if h & 1 == 0 {
            let i = (h >> 1) as usize;
            let (v, cost) = self
                .objects
                .get(i)
                .and_then(Option::as_ref)
                .ok_or(bad_ref("object", i))?
                .clone();
            self.budget.charge(cost)?;
            return Ok(Err((v, cost)));
        }
        if self.objects.len() >= MAX_REFERENCES {
            return Err(DecodeError::Amf3TooManyReferences("object"));
        }
        self.objects.push(None);
        Ok(Ok((h >> 1, self.objects.len() - 1)))
    }

    /// Fills a reserved slot of the object table with the finished value.
    fn keep(&mut self, slot: usize, v: &Amf3Value, cost: usize) -> Result<(), DecodeError> {
        self.budget.charge(cost)?;
        self.objects[slot] = Some((v.clone(), cost));
        Ok(())
    }

    /// One value and what it cost.
    fn value(&mut self, depth: usize) -> Result<(Amf3Value, usize), DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::NestingTooDeep(MAX_DEPTH));
        }
        self.budget.charge(NODE_COST)?;
        let m = self.u8("amf3 marker")?;
        let simple = match m {
            marker::UNDEFINED => Amf3Value::Undefined,
            marker::NULL => Amf3Value::Null,
            marker::FALSE => Amf3Value::Boolean(false),
            marker::TRUE => Amf3Value::Boolean(true),
            marker::INTEGER => {
                // §3.6: the 29 bits are two's complement.
                let u = self.u29("amf3 integer")?;
                Amf3Value::Integer(((u << 3) as i32) >> 3)
            }
            marker::DOUBLE => Amf3Value::Double(self.f64("amf3 double")?),
            marker::STRING => {
                let s = self.string("amf3 string")?;
                let cost = NODE_COST + s.len();
                return Ok((Amf3Value::String(s), cost));
            }
            _ => return self.complex_value(m, depth),
        };
        Ok((simple, NODE_COST))
    }

    fn complex_value(&mut self, m: u8, depth: usize) -> Result<(Amf3Value, usize), DecodeError> {
        let what = match m {
            marker::XML_DOC => "amf3 xml document",
            marker::DATE => "amf3 date",
            marker::ARRAY => "amf3 array",
            marker::OBJECT => "amf3 object",
            marker::XML => "amf3 xml",
            marker::BYTE_ARRAY => "amf3 byte array",
            marker::VECTOR_INT | marker::VECTOR_UINT | marker::VECTOR_DOUBLE => "amf3 vector",
            marker::VECTOR_OBJECT => "amf3 object vector",
            marker::DICTIONARY => "amf3 dictionary",
            other => return Err(DecodeError::InvalidAmf3Marker(other)),
        };
        let (n, slot) = match self.complex(what)? {
            Ok(h) => h,
            Err(resolved) => return Ok(resolved),
        };
        let mut cost = NODE_COST;
        let v = match m {
            marker::XML_DOC | marker::XML => {
                let s = self.text(n as usize, what)?;
                cost += s.len();
                self.budget.charge(s.len())?;
                if m == marker::XML {
                    Amf3Value::Xml(s)
                } else {
                    Amf3Value::XmlDocument(s)
                }
            }
            // §3.10: the U29 says "not a reference"; its other bits are unused.
            marker::DATE => Amf3Value::Date(self.f64(what)?),
            marker::BYTE_ARRAY => {
                let b = self.take(n as usize, what)?.to_vec();
                cost += b.len();
                self.budget.charge(b.len())?;
                Amf3Value::ByteArray(b)
            }
            marker::ARRAY => {
                let dense_len = self.count(n, 1, what)?;
                let (assoc, c) = self.members(depth, what)?;
                let (dense, d) = self.values(dense_len, depth)?;
                cost += c + d;
                Amf3Value::Array { assoc, dense }
            }
            marker::OBJECT => {
                let (o, c) = self.object(n, depth)?;
                cost += c;
                Amf3Value::Object(o)
            }
            marker::VECTOR_INT | marker::VECTOR_UINT | marker::VECTOR_DOUBLE => {
                let size = if m == marker::VECTOR_DOUBLE { 8 } else { 4 };
                let len = self.count(n, size, what)?;
                let fixed = self.u8(what)? != 0;
                let raw = self.take(len * size, what)?;
                cost += len * size;
                let v = match m {
                    marker::VECTOR_INT => Amf3Value::VectorInt {
                        fixed,
                        items: raw
                            .chunks_exact(4)
                            .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                            .collect(),
                    },
                    marker::VECTOR_UINT => Amf3Value::VectorUint {
                        fixed,
                        items: raw
                            .chunks_exact(4)
                            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                            .collect(),
                    },
                    _ => Amf3Value::VectorDouble {
                        fixed,
                        items: raw
                            .chunks_exact(8)
                            .map(|c| {
                                let mut a = [0u8; 8];
                                a.copy_from_slice(c);
                                f64::from_be_bytes(a)
                            })
                            .collect(),
                    },
                };
                self.budget.charge(len * size)?;
                v
            }
            marker::VECTOR_OBJECT => {
                let len = self.count(n, 1, what)?;
                let fixed = self.u8(what)? != 0;
                let type_name = self.string(what)?;
                let (items, c) = self.values(len, depth)?;
                cost += c;
                Amf3Value::VectorObject {
                    fixed,
                    type_name,
                    items,
                }
            }
            _ => {
                // Dictionary: a weak-keys byte, then key / value pairs.
                let len = self.count(n, 2, what)?;
                let weak_keys = self.u8(what)? != 0;
                let mut entries = Vec::with_capacity(self.room(len));
                for _ in 0..len {
                    let (k, ck) = self.value(depth + 1)?;
                    let (v, cv) = self.value(depth + 1)?;
                    cost += ck + cv;
                    entries.push((k, v));
                }
                Amf3Value::Dictionary { weak_keys, entries }
            }
        };
        self.keep(slot, &v, cost)?;
        Ok((v, cost))
    }

    /// §3.12: the traits (inline, by reference, or externalizable), the
    /// sealed members, then the dynamic members up to the empty name.
    fn object(&mut self, n: u32, depth: usize) -> Result<(Amf3Object, usize), DecodeError> {
        let what = "amf3 object";
        // `n` is the U29 without its low (reference) bit.
        let traits = if n & 1 == 0 {
            let i = (n >> 1) as usize;
            self.traits.get(i).ok_or(bad_ref("traits", i))?.clone()
        } else {
            let externalizable = n & 2 != 0;
            let dynamic = n & 4 != 0;
            let sealed_len = self.count(n >> 3, 1, what)?;
            let class_name = self.string(what)?;
            let mut sealed = Vec::with_capacity(sealed_len);
            if !externalizable {
                for _ in 0..sealed_len {
                    sealed.push(self.string(what)?);
                }
            }
            if self.traits.len() >= MAX_REFERENCES {
                return Err(DecodeError::Amf3TooManyReferences("traits"));
            }
            let t = Traits {
                class_name,
                dynamic,
                externalizable,
                sealed,
            };
            self.budget
                .charge(t.sealed.iter().map(String::len).sum::<usize>() + t.class_name.len())?;
            self.traits.push(t.clone());
            t
        };
        if traits.externalizable {
            return Err(DecodeError::Amf3Externalizable(traits.class_name));
        }
        let mut cost = traits.class_name.len();
        let mut o = Amf3Object {
            class_name: traits.class_name,
            dynamic: traits.dynamic,
            sealed: Vec::with_capacity(traits.sealed.len()),
            dynamic_members: Vec::new(),
        };
        for name in traits.sealed {
            let (v, c) = self.value(depth + 1)?;
            cost += c + name.len();
            o.sealed.push((name, v));
        }
        if o.dynamic {
            let (members, c) = self.members(depth, what)?;
            cost += c;
            o.dynamic_members = members;
        }
        Ok((o, cost))
    }

    /// Name / value pairs up to the empty name (an array's associative
    /// part, an object's dynamic members), and what they cost.
    #[allow(clippy::type_complexity)]
    fn members(
        &mut self,
        depth: usize,
        what: &'static str,
    ) -> Result<(Vec<(String, Amf3Value)>, usize), DecodeError> {
        let (mut members, mut cost) = (Vec::new(), 0);
        loop {
            let key = self.string(what)?;
            if key.is_empty() {
                return Ok((members, cost));
            }
            let (v, c) = self.value(depth + 1)?;
            cost += c + key.len();
            members.push((key, v));
        }
    }

    /// `n` values (an array's dense part, an object vector's items), and
    /// what they cost.
    fn values(&mut self, n: usize, depth: usize) -> Result<(Vec<Amf3Value>, usize), DecodeError> {
        let (mut values, mut cost) = (Vec::with_capacity(self.room(n)), 0);
        for _ in 0..n {
            let (v, c) = self.value(depth + 1)?;
            cost += c;
            values.push(v);
        }
        Ok((values, cost))
    }
}
