//! FLV files as byte codecs (Adobe Flash Video File Format Specification
//! v10.1, annex E).
//!
//! `header(9) | PreviousTagSize0 (0) | { tag(11 + data) | PreviousTagSize }*`.
//! A tag header is `type(1) | dataSize(3) | timestamp(3) | timestampExtended(1)
//! | streamId(3)`: the timestamp is SI32 with its upper 8 bits last.

use crate::Timestamp;
use crate::error::DecodeError;
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// FLV tag type of audio.
pub const TAG_AUDIO: u8 = 8;
/// FLV tag type of video.
pub const TAG_VIDEO: u8 = 9;
/// FLV tag type of script data (`onMetaData`).
pub const TAG_SCRIPT: u8 = 18;

/// The 9-byte header plus PreviousTagSize0.
pub const FILE_HEADER_LEN: usize = 13;
/// Longest header we skip over (DataOffset beyond 9 is reserved for future use).
const MAX_DATA_OFFSET: u32 = 1 << 16;

/// One FLV tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvTag {
    /// 8 audio, 9 video, 18 script data.
    pub tag_type: u8,
    /// Timestamp in ms.
    pub timestamp: Timestamp,
    /// The tag body (what an RTMP audio / video / data message carries).
    pub data: Bytes,
}

/// The FLV file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlvHeader {
    /// Version byte (1).
    pub version: u8,
    /// TypeFlagsAudio.
    pub has_audio: bool,
    /// TypeFlagsVideo.
    pub has_video: bool,
}

/// Reads FLV from bytes pushed in pieces.
#[derive(Debug, Default)]
pub struct FlvReader {
    buf: BytesMut,
    header: Option<FlvHeader>,
    skip: usize,
}

impl FlvReader {
    /// A reader expecting the FLV header first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The file header, once read.
    pub fn header(&self) -> Option<FlvHeader> {
        self.header
    }

    /// Bytes pushed but not consumed.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }

    /// The next tag, `Ok(None)` when more bytes are needed.
    pub fn next_tag(&mut self) -> Result<Option<FlvTag>, DecodeError> {
        if self.header.is_none() {
            if self.buf.len() < 9 {
                if self.buf.len() >= 3 && &self.buf[..3] != b"FLV" {
                    return Err(DecodeError::NotFlv([self.buf[0], self.buf[1], self.buf[2]]));
                }
                return Ok(None);
            }
            if &self.buf[..3] != b"FLV" {
                return Err(DecodeError::NotFlv([self.buf[0], self.buf[1], self.buf[2]]));
            }
            let offset = u32::from_be_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]]);
            if !(9..=MAX_DATA_OFFSET).contains(&offset) {
                return Err(DecodeError::InvalidMediaTag(
                    "flv header data offset out of range",
                ));
            }
            let flags = self.buf[4];
            self.header = Some(FlvHeader {
                version: self.buf[3],
                has_audio: flags & 4 != 0,
                has_video: flags & 1 != 0,
            });
            self.buf.advance(9);
            // The rest of the header, then PreviousTagSize0.
            self.skip = offset as usize - 9 + 4;
        }
        if self.skip > 0 {
            let n = self.skip.min(self.buf.len());
            self.buf.advance(n);
            self.skip -= n;
            if self.skip > 0 {
                return Ok(None);
            }
        }
        if self.buf.len() < 11 {
            return Ok(None);
        }
        let h = &self.buf[..11];
        let tag_type = h[0] & 0x1f;
        if h[0] & 0x20 != 0 {
            return Err(DecodeError::InvalidMediaTag(
                "encrypted flv tag (filter bit set)",
            ));
        }
        let size = (u32::from(h[1]) << 16 | u32::from(h[2]) << 8 | u32::from(h[3])) as usize;
        let ts =
            u32::from(h[7]) << 24 | u32::from(h[4]) << 16 | u32::from(h[5]) << 8 | u32::from(h[6]);
        if self.buf.len() < 11 + size + 4 {
            return Ok(None);
        }
        self.buf.advance(11);
        let data = self.buf.split_to(size).freeze();
        // PreviousTagSize: not trusted (several muxers write it wrong).
        self.buf.advance(4);
        Ok(Some(FlvTag {
            tag_type,
            timestamp: Timestamp(ts),
            data,
        }))
    }
}

/// Writes the FLV header and PreviousTagSize0.
pub fn write_header<B: BufMut>(has_audio: bool, has_video: bool, out: &mut B) {
    out.put_slice(b"FLV");
    out.put_u8(1);
    out.put_u8(if has_audio { 4 } else { 0 } | u8::from(has_video));
    out.put_u32(9);
    out.put_u32(0);
}

/// Writes one tag and its PreviousTagSize. Bodies longer than 16 MiB - 1
/// cannot be expressed in FLV and are an error.
pub fn write_tag<B: BufMut>(
    tag_type: u8,
    timestamp: Timestamp,
    data: &[u8],
    out: &mut B,
) -> Result<(), DecodeError> {
    let size = u32::try_from(data.len())
        .ok()
        .filter(|&s| s <= 0xFF_FFFF)
        .ok_or(DecodeError::InvalidMediaTag("tag body longer than 16 MiB"))?;
    write_tag_header(tag_type, timestamp, size, out);
    out.put_slice(data);
    out.put_u32(size + 11);
    Ok(())
}

/// Writes the 11-byte header of a tag whose body is `size` bytes (at most
/// 16 MiB - 1): for a writer that sends the body from its own buffer.
pub fn write_tag_header<B: BufMut>(tag_type: u8, timestamp: Timestamp, size: u32, out: &mut B) {
    let ts = timestamp.as_millis();
    out.put_u8(tag_type);
    out.put_slice(&size.to_be_bytes()[1..]);
    out.put_slice(&ts.to_be_bytes()[1..]);
    out.put_u8((ts >> 24) as u8);
    out.put_slice(&[0, 0, 0]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut v = Vec::new();
        write_header(true, true, &mut v);
        write_tag(TAG_SCRIPT, Timestamp(0), b"\x02\x00\x0aonMetaData", &mut v).unwrap();
        write_tag(TAG_VIDEO, Timestamp(0), &[0x17, 0, 0, 0, 0, 1], &mut v).unwrap();
        write_tag(TAG_AUDIO, Timestamp(0x0123_4567), &[0xaf, 1, 2], &mut v).unwrap();
        v
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        assert_eq!(&bytes[..13], b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00");
        let mut r = FlvReader::new();
        r.push(&bytes);
        let mut tags = Vec::new();
        while let Some(t) = r.next_tag().unwrap() {
            tags.push(t);
        }
        assert_eq!(tags.len(), 3);
        assert_eq!(tags[2].timestamp, Timestamp(0x0123_4567));
        assert_eq!(&tags[2].data[..], &[0xaf, 1, 2]);
        assert_eq!(
            r.header().unwrap(),
            FlvHeader {
                version: 1,
                has_audio: true,
                has_video: true
            }
        );
        assert_eq!(r.pending_bytes(), 0);
    }

    #[test]
    fn every_strict_prefix_is_incomplete() {
        let bytes = sample();
        let mut whole = FlvReader::new();
        whole.push(&bytes);
        let mut all = Vec::new();
        while let Some(t) = whole.next_tag().unwrap() {
            all.push(t);
        }
        for n in 0..bytes.len() {
            let mut r = FlvReader::new();
            r.push(&bytes[..n]);
            let mut got = Vec::new();
            while let Some(t) = r.next_tag().unwrap() {
                got.push(t);
            }
            assert!(got.len() < all.len());
            assert_eq!(&got[..], &all[..got.len()]);
        }
        // Byte at a time gives the same tags.
        let mut r = FlvReader::new();
        let mut got = Vec::new();
        for b in &bytes {
            r.push(std::slice::from_ref(b));
            while let Some(t) = r.next_tag().unwrap() {
                got.push(t);
            }
        }
        assert_eq!(got, all);
    }

    #[test]
    fn not_flv() {
        let mut r = FlvReader::new();
        r.push(b"GIF89a...");
        assert_eq!(r.next_tag(), Err(DecodeError::NotFlv(*b"GIF")));
        let mut r = FlvReader::new();
        r.push(b"FLV\x01\x05\xff\xff\xff\xff");
        assert!(r.next_tag().is_err());
    }
}
