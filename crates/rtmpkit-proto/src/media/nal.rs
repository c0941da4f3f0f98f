//! NAL unit access units (H.264 and HEVC) as encoders give them, to FLV
//! video tag bodies.
//!
//! An encoder hands out access units as an Annex B byte stream (H.264
//! Annex B, H.265 Annex B: NAL units after `00 00 01` or `00 00 00 01`
//! start codes) or as 4-byte length-prefixed NAL units (the form of
//! ISO/IEC 14496-15). RTMP carries them as video tags: a sequence header
//! holding the decoder configuration record built from the parameter
//! sets, then one tag per access unit with the keyframe flag, the
//! composition time (pts - dts) and the NAL units, each after its 4-byte
//! length. [`NalPackager`] does that for both codecs, with no I/O; what
//! differs between them is in [`NalSyntax`].

use super::frame_error::FrameError;
use super::message::Media;
use crate::Timestamp;
use bytes::{BufMut, Bytes, BytesMut};
use std::marker::PhantomData;

/// The NAL units of access unit `au`, 4-byte length-prefixed when its
/// lengths add up to it exactly, else Annex B. (Either alone is
/// ambiguous: a first NAL unit of 256 to 511 bytes has a length that
/// begins like a start code.)
pub fn nal_units(au: &[u8]) -> Result<Vec<&[u8]>, FrameError> {
    let mut out = length_prefixed(au)
        .or_else(|| annex_b(au))
        .ok_or(FrameError::BadLength)?;
    out.retain(|n| !n.is_empty());
    if out.is_empty() {
        return Err(FrameError::Empty);
    }
    Ok(out)
}

/// The units of `au` if its 4-byte lengths cover it exactly.
fn length_prefixed(au: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = au;
    while !rest.is_empty() {
        let len = rest.get(..4)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let nal = rest.get(4..4usize.checked_add(len)?)?;
        // forbidden_zero_bit
        if nal.first().is_none_or(|b| b & 0x80 != 0) {
            return None;
        }
        out.push(nal);
        rest = &rest[4 + len..];
    }
    Some(out)
}

/// The units of an Annex B byte stream (`None` without a start code).
fn annex_b(au: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut start = None;
    let mut i = 0;
    while i + 3 <= au.len() {
        if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
            if let Some(s) = start {
                out.push(trim_zeros(&au[s..i]));
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    out.push(&au[start?..]);
    Some(out)
}

/// A NAL unit before the next start code, without the zero bytes of a
/// 4-byte start code (or trailing_zero_8bits) at its end.
fn trim_zeros(n: &[u8]) -> &[u8] {
    let end = n.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &n[..end]
}

/// What a NAL unit is to the packager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NalRole {
    /// A parameter set, kept for the configuration record: its slot.
    ParameterSet(usize),
    /// Left out of the frame (an access unit delimiter).
    Dropped,
    /// Part of a keyframe (an IDR / IRAP slice).
    Key,
    /// Anything else, sent as it is.
    Other,
}

/// The codec-specific part of a [`NalPackager`].
pub(crate) trait NalSyntax: std::fmt::Debug + Default + Clone {
    /// How many parameter sets the record needs (SPS, PPS; VPS, SPS, PPS).
    const SETS: usize;
    /// What `nal` (not empty, forbidden bit clear) is.
    fn role(nal: &[u8]) -> NalRole;
    /// The decoder configuration record of the parameter sets, in slot
    /// order.
    fn config(sets: &[Bytes]) -> Result<Bytes, FrameError>;
    /// The tag header of a sequence header.
    fn sequence_header() -> &'static [u8];
    /// The tag header of a frame.
    fn frame_header(keyframe: bool, cts: i32, out: &mut BytesMut);
}

/// Turns access units into FLV video tag bodies, sending a sequence
/// header before the first frame and again whenever a parameter set
/// changes (a new resolution).
#[derive(Debug, Default, Clone)]
pub(crate) struct NalPackager<S: NalSyntax> {
    sets: Vec<Option<Bytes>>,
    /// The record last sent.
    sent: Option<Bytes>,
    syntax: PhantomData<S>,
}

impl<S: NalSyntax> NalPackager<S> {
    /// The video messages for access unit `au` (Annex B or length-
    /// prefixed) presented at `pts` and decoded at `dts` (ms): a sequence
    /// header first when the parameter sets are new, then the frame.
    /// Parameter sets and delimiters are kept out of the frame.
    pub fn package(&mut self, pts: u32, dts: u32, au: &[u8]) -> Result<Vec<Media>, FrameError> {
        let cts = i64::from(pts) - i64::from(dts);
        if !(-(1 << 23)..(1 << 23)).contains(&cts) {
            return Err(FrameError::CompositionTime(cts));
        }
        let nals = nal_units(au)?;
        if nals.iter().any(|n| n[0] & 0x80 != 0) {
            return Err(FrameError::ForbiddenBit);
        }
        if self.sets.len() != S::SETS {
            self.sets = vec![None; S::SETS];
        }
        let mut keyframe = false;
        let mut body = BytesMut::with_capacity(au.len() + 4 * nals.len());
        for nal in &nals {
            match S::role(nal) {
                NalRole::ParameterSet(slot) => {
                    self.sets[slot] = Some(Bytes::copy_from_slice(nal));
                }
                NalRole::Dropped => {}
                role => {
                    keyframe |= role == NalRole::Key;
                    body.put_u32(nal.len() as u32);
                    body.put_slice(nal);
                }
            }
        }
        let sets: Option<Vec<Bytes>> = self.sets.iter().cloned().collect();
        let record = S::config(&sets.ok_or(FrameError::NoParameterSets)?)?;
        let ts = Timestamp(dts);
        let mut out = Vec::with_capacity(2);
        if self.sent.as_ref() != Some(&record) {
            let header = S::sequence_header();
            let mut seq = BytesMut::with_capacity(record.len() + header.len());
            seq.put_slice(header);
            seq.put_slice(&record);
            out.push(Media::video(ts, seq.freeze()));
            self.sent = Some(record);
        }
        if !body.is_empty() {
            let mut frame = BytesMut::with_capacity(body.len() + 8);
            S::frame_header(keyframe, cts as i32, &mut frame);
            frame.put_slice(&body);
            out.push(Media::video(ts, frame.freeze()));
        }
        Ok(out)
    }
}

/// An SI24 composition time.
pub(crate) fn put_si24(out: &mut BytesMut, v: i32) {
    out.put_slice(&v.to_be_bytes()[1..]);
}

/// Where a NAL unit stands in an access unit (H.264 §7.4.1.2.3, H.265
/// §7.4.2.4.4), to split a byte stream.
pub(crate) enum Boundary {
    /// It begins one (a delimiter).
    Starts,
    /// It begins one when a slice came before it in this one (parameter
    /// sets, prefix SEI).
    StartsAfterSlice,
    /// A slice; `first` of its picture, which begins an access unit after
    /// a slice.
    Slice { first: bool },
    /// It belongs to the access unit it is in.
    Inside,
}

/// The access units of an Annex B byte stream, each with its start codes,
/// cut where `classify` says a NAL unit (header first) begins one.
pub(crate) fn split_access_units(
    stream: &[u8],
    classify: impl Fn(&[u8]) -> Boundary,
) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut unit_start = None;
    let mut has_slice = false;
    let mut i = 0;
    while i + 3 < stream.len() {
        if stream[i] != 0 || stream[i + 1] != 0 || stream[i + 2] != 1 {
            i += 1;
            continue;
        }
        let code = if i > 0 && stream[i - 1] == 0 {
            i - 1
        } else {
            i
        };
        i += 3;
        let (begins, slice) = match classify(&stream[i..]) {
            Boundary::Starts => (true, false),
            Boundary::StartsAfterSlice => (has_slice, false),
            Boundary::Slice { first } => (has_slice && first, true),
            Boundary::Inside => (false, false),
        };
        if begins && let Some(s) = unit_start.replace(code) {
            out.push(&stream[s..code]);
            has_slice = false;
        }
        unit_start.get_or_insert(code);
        has_slice |= slice;
    }
    if let Some(s) = unit_start {
        out.push(&stream[s..]);
    }
    out
}
