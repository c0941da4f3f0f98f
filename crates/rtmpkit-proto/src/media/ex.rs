//! The Enhanced RTMP v2 header walk shared by audio and video (E-RTMP v2,
//! "Enhanced Video" / "Enhanced Audio"; our notes in
//! `spec/enhanced-rtmp-v2.md` §1-§3): ModEx blocks first, then a command
//! (video), or a Multitrack header, or a FourCC; then the track loop.
//!
//! Every length is checked against the message: a short or lying message
//! is a [`DecodeError`], never a panic or an out-of-bounds read.

use crate::error::DecodeError;

/// PacketType 6 (video) / 5 (audio): Multitrack.
const VIDEO_MULTITRACK: u8 = 6;
const AUDIO_MULTITRACK: u8 = 5;
/// PacketType 7: ModEx, in both.
const MOD_EX: u8 = 7;
/// Video PacketType 4: Metadata.
const VIDEO_METADATA: u8 = 4;
/// Video FrameType 5: command frame.
const COMMAND_FRAME: u8 = 5;

/// How a Multitrack message lays out its tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultitrackType {
    /// One track, no size field.
    OneTrack,
    /// Several tracks of one codec, each with a UI24 size.
    ManyTracks,
    /// Several tracks, each with its own FourCC and a UI24 size.
    ManyTracksManyCodecs,
}

/// The header of an Enhanced RTMP message (byte 0 with IsEx / SoundFormat 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExHeader {
    /// Video FrameType (bits 6-4); `None` for audio.
    pub frame_type: Option<u8>,
    /// The PacketType of the payload (inside a Multitrack wrapper: the
    /// inner one).
    pub packet_type: u8,
    /// The Multitrack layout, when wrapped.
    pub multitrack: Option<MultitrackType>,
    /// ModEx TimestampOffsetNano (0..=999 999), when present.
    pub nano_offset: Option<u32>,
    /// A video command frame's VideoCommand (0 StartSeek, 1 EndSeek).
    pub command: Option<u8>,
    /// The FourCC, unless each track names its own.
    pub fourcc: Option<[u8; 4]>,
    /// Where the track loop starts.
    body: usize,
    is_video: bool,
}

/// One track's part of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExTrack<'a> {
    /// Track id (0 when the message has no Multitrack wrapper).
    pub id: u8,
    /// The codec.
    pub fourcc: [u8; 4],
    /// The payload for this track (for avc1/hvc1/vvc1 CodedFrames it
    /// starts with the SI24 composition time).
    pub payload: &'a [u8],
}

fn bad(what: &'static str) -> DecodeError {
    DecodeError::InvalidMediaTag(what)
}

fn fourcc_at(p: &[u8], at: usize) -> Result<[u8; 4], DecodeError> {
    let f = p
        .get(at..at + 4)
        .ok_or(bad("enhanced tag without fourcc"))?;
    Ok([f[0], f[1], f[2], f[3]])
}

fn u24_at(p: &[u8], at: usize) -> Result<usize, DecodeError> {
    let b = p.get(at..at + 3).ok_or(bad("multitrack size cut short"))?;
    Ok(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
}

impl ExHeader {
    /// Parses the header of an enhanced video (`is_video`) or audio
    /// message. The caller has checked byte 0 (IsEx bit / SoundFormat 9).
    pub fn parse(p: &[u8], is_video: bool) -> Result<ExHeader, DecodeError> {
        let b0 = *p.first().ok_or(bad("empty enhanced tag"))?;
        let frame_type = is_video.then_some((b0 >> 4) & 0x07);
        let mut packet_type = b0 & 0x0f;
        let mut at = 1;
        let mut nano_offset = None;
        // ModEx blocks, as many as there are.
        while packet_type == MOD_EX {
            let first = *p.get(at).ok_or(bad("modex size missing"))?;
            at += 1;
            let size = if first == 0xff {
                let b = p.get(at..at + 2).ok_or(bad("modex size cut short"))?;
                at += 2;
                (usize::from(b[0]) << 8 | usize::from(b[1])) + 1
            } else {
                usize::from(first) + 1
            };
            let data = p.get(at..at + size).ok_or(bad("modex data cut short"))?;
            at += size;
            let next = *p.get(at).ok_or(bad("modex type missing"))?;
            at += 1;
            if next >> 4 == 0 && data.len() >= 3 {
                // TimestampOffsetNano: UI24.
                let ns = u32::from(data[0]) << 16 | u32::from(data[1]) << 8 | u32::from(data[2]);
                nano_offset = Some(ns.min(999_999));
            }
            packet_type = next & 0x0f;
        }
        let mut header = ExHeader {
            frame_type,
            packet_type,
            multitrack: None,
            nano_offset,
            command: None,
            fourcc: None,
            body: at,
            is_video,
        };
        // Metadata is checked before the command: FFmpeg sends colorInfo
        // with FrameType 5 (command).
        if is_video && packet_type != VIDEO_METADATA && frame_type == Some(COMMAND_FRAME) {
            header.command = Some(*p.get(at).ok_or(bad("video command missing"))?);
            header.body = p.len();
            return Ok(header);
        }
        let multitrack = if is_video {
            VIDEO_MULTITRACK
        } else {
            AUDIO_MULTITRACK
        };
        if packet_type == multitrack {
            let b = *p.get(at).ok_or(bad("multitrack type missing"))?;
            at += 1;
            header.packet_type = b & 0x0f;
            if header.packet_type == multitrack {
                return Err(bad("multitrack inside multitrack"));
            }
            let kind = match b >> 4 {
                0 => MultitrackType::OneTrack,
                1 => MultitrackType::ManyTracks,
                2 => MultitrackType::ManyTracksManyCodecs,
                _ => return Err(bad("unknown multitrack type")),
            };
            header.multitrack = Some(kind);
            if kind != MultitrackType::ManyTracksManyCodecs {
                header.fourcc = Some(fourcc_at(p, at)?);
                at += 4;
            }
        } else {
            header.fourcc = Some(fourcc_at(p, at)?);
            at += 4;
        }
        header.body = at;
        Ok(header)
    }

    /// The tracks of message `p` (the one this header was parsed from).
    pub fn tracks<'a>(&self, p: &'a [u8]) -> ExTracks<'a> {
        ExTracks {
            p,
            at: self.body.min(p.len()),
            header: *self,
            done: self.command.is_some(),
        }
    }

    /// Whether this is video.
    pub fn is_video(&self) -> bool {
        self.is_video
    }
}

/// The track loop of a message.
#[derive(Debug, Clone)]
pub struct ExTracks<'a> {
    p: &'a [u8],
    at: usize,
    header: ExHeader,
    done: bool,
}

impl<'a> Iterator for ExTracks<'a> {
    type Item = Result<ExTrack<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.step();
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }
}

impl<'a> ExTracks<'a> {
    fn step(&mut self) -> Result<ExTrack<'a>, DecodeError> {
        let (p, mut at) = (self.p, self.at);
        let Some(kind) = self.header.multitrack else {
            // No wrapper: the rest is track 0.
            self.done = true;
            return Ok(ExTrack {
                id: 0,
                fourcc: self.header.fourcc.unwrap_or_default(),
                payload: &p[at..],
            });
        };
        let fourcc = match self.header.fourcc {
            Some(f) => f,
            None => {
                let f = fourcc_at(p, at)?;
                at += 4;
                f
            }
        };
        let id = *p.get(at).ok_or(bad("track id missing"))?;
        at += 1;
        let payload = if kind == MultitrackType::OneTrack {
            self.done = true;
            &p[at..]
        } else {
            let size = u24_at(p, at)?;
            at += 3;
            let body = p.get(at..at + size).ok_or(bad("track size past the end"))?;
            at += size;
            self.done = at >= p.len();
            body
        };
        self.at = at;
        Ok(ExTrack {
            id,
            fourcc,
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(p: &[u8], video: bool) -> (ExHeader, Vec<ExTrack<'_>>) {
        let h = ExHeader::parse(p, video).expect("header");
        let t = h.tracks(p).collect::<Result<Vec<_>, _>>().expect("tracks");
        (h, t)
    }

    #[test]
    fn single_track_and_command() {
        let (h, t) = all(b"\x91hvc1\x00\x00\x21NAL", true);
        assert_eq!((h.frame_type, h.packet_type), (Some(1), 1));
        assert_eq!(t.len(), 1);
        assert_eq!(
            (t[0].id, &t[0].fourcc, t[0].payload),
            (0, b"hvc1", &b"\x00\x00\x21NAL"[..])
        );
        // Command frame (not metadata): one UI8, no fourcc.
        let (h, t) = all(b"\xd1\x00", true);
        assert_eq!(h.command, Some(0));
        assert!(t.is_empty());
        // Metadata with FrameType 5 (FFmpeg): a fourcc and a body.
        let (h, t) = all(b"\xd4hvc1\x02\x00\x09colorInfo", true);
        assert_eq!((h.packet_type, h.command), (4, None));
        assert_eq!(&t[0].fourcc, b"hvc1");
    }

    #[test]
    fn modex_nano_offset_then_frames() {
        // PacketType 7, size-1 = 2 (3 bytes), 0x0003e8 ns, then type 0 / next 1.
        let (h, t) = all(b"\x97\x02\x00\x03\xe8\x01av01OBU", true);
        assert_eq!(h.nano_offset, Some(1000));
        assert_eq!(h.packet_type, 1);
        assert_eq!(t[0].payload, b"OBU");
        // The long size form: 0xff then UI16 (size-1).
        let mut long = vec![0x97, 0xff, 0x00, 0x03, 0, 0, 1, 0, 0x01];
        long.extend_from_slice(b"av01X");
        let (h, _) = all(&long, true);
        assert_eq!(h.nano_offset, Some(1));
        assert!(ExHeader::parse(b"\x97\x05\x00", true).is_err());
    }

    #[test]
    fn the_three_multitrack_layouts() {
        // Audio OneTrack: 0x95 = SoundFormat 9 | Multitrack, 0x01 = OneTrack | CodedFrames.
        let (h, t) = all(b"\x95\x01mp4a\x01AAC", false);
        assert_eq!(h.multitrack, Some(MultitrackType::OneTrack));
        assert_eq!((t[0].id, t[0].payload), (1, &b"AAC"[..]));
        // Video ManyTracks: two tracks of av01 with UI24 sizes.
        let (h, t) = all(b"\x96\x11av01\x00\x00\x00\x02ab\x01\x00\x00\x01c", true);
        assert_eq!(h.multitrack, Some(MultitrackType::ManyTracks));
        assert_eq!(t.len(), 2);
        assert_eq!((t[1].id, t[1].payload), (1, &b"c"[..]));
        // ManyTracksManyCodecs: each track names its codec.
        let (_, t) = all(b"\x96\x21avc1\x00\x00\x00\x01xhvc1\x02\x00\x00\x01y", true);
        assert_eq!((&t[0].fourcc, &t[1].fourcc, t[1].id), (b"avc1", b"hvc1", 2));
        // A size past the end, a nested multitrack, an unknown layout.
        let h = ExHeader::parse(b"\x96\x11av01\x00\x00\x00\x09ab", true).unwrap();
        assert!(
            h.tracks(b"\x96\x11av01\x00\x00\x00\x09ab")
                .any(|t| t.is_err())
        );
        assert!(ExHeader::parse(b"\x96\x06av01", true).is_err());
        assert!(ExHeader::parse(b"\x96\x31av01", true).is_err());
        assert!(ExHeader::parse(b"\x96", true).is_err());
    }
}
