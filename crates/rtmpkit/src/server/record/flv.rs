//! A stream into FLV files, with no I/O: the tags as received (bodies
//! byte for byte), timestamps from 0 in each file. A file opens at the
//! first video keyframe (or the first frame of a stream without video)
//! with the metadata and the sequence headers first; the next opens at
//! the first keyframe after the segment length. Tags gather until
//! [`FlvFileWriter::flush`] (the recorder calls it every second).

use crate::fmp4::Written;
#[cfg(test)]
use bytes::Bytes;
use bytes::BytesMut;
use rtmpkit_proto::Timestamp;
use rtmpkit_proto::flv::{write_header, write_tag};
use rtmpkit_proto::media::{Media, MediaKind};

/// Gathered tags go out at this size even before the next flush.
const MAX_GATHERED: usize = 256 * 1024;

/// A stream into FLV files.
#[derive(Debug)]
pub struct FlvFileWriter {
    segment_ms: Option<u32>,
    metadata: Option<Media>,
    /// The latest sequence header of each (kind, track).
    headers: Vec<Media>,
    /// The stream time that is 0 in the open file.
    start: Option<u32>,
    gathered: BytesMut,
    last_dts: u32,
}

impl FlvFileWriter {
    /// A new file at the first keyframe after `segment_ms`.
    pub fn new(segment_ms: Option<u32>) -> Self {
        FlvFileWriter {
            segment_ms,
            metadata: None,
            headers: Vec::new(),
            start: None,
            gathered: BytesMut::new(),
            last_dts: 0,
        }
    }

    /// Takes one message of the stream.
    pub fn push(&mut self, m: &Media, out: &mut Vec<Written>) {
        let dts = m.timestamp.0;
        if m.kind == MediaKind::Metadata {
            self.metadata = Some(m.clone());
        } else if m.sequence_header {
            match self
                .headers
                .iter()
                .position(|h| h.kind == m.kind && h.track == m.track)
            {
                Some(i) => self.headers[i] = m.clone(),
                None if self.headers.len() < 64 => self.headers.push(m.clone()),
                None => {}
            }
        } else {
            let anchor = m.kind == MediaKind::Video && m.keyframe && m.track.unwrap_or(0) == 0;
            let has_video = self.headers.iter().any(|h| h.kind == MediaKind::Video);
            let opens = match self.start {
                None => anchor || (!has_video && m.kind == MediaKind::Audio),
                Some(start) => {
                    anchor
                        && self
                            .segment_ms
                            .is_some_and(|s| dts.wrapping_sub(start) >= s)
                }
            };
            if opens {
                self.finish(out);
                self.open(dts, out);
                return self.tag(m);
            }
        }
        if self.start.is_some() {
            self.tag(m);
            if self.gathered.len() >= MAX_GATHERED {
                self.flush(out);
            }
        }
    }

    /// What was gathered, as the next write of the open file.
    pub fn flush(&mut self, out: &mut Vec<Written>) {
        if self.start.is_some() && !self.gathered.is_empty() {
            out.push(Written::Fragment {
                data: self.gathered.split().freeze(),
                end_dts: self.last_dts,
            });
        }
    }

    /// Ends the open file, if any.
    pub fn finish(&mut self, out: &mut Vec<Written>) {
        if self.start.is_none() {
            return;
        }
        self.flush(out);
        self.start = None;
        out.push(Written::Close {
            end_dts: self.last_dts,
        });
    }

    fn open(&mut self, dts: u32, out: &mut Vec<Written>) {
        let has = |k| self.headers.iter().any(|h| h.kind == k);
        let mut head = BytesMut::new();
        write_header(has(MediaKind::Audio), has(MediaKind::Video), &mut head);
        self.start = Some(dts);
        self.last_dts = dts;
        for m in self.metadata.iter().chain(self.headers.iter()) {
            let _ = write_tag(tag_type(m.kind), Timestamp(0), &m.payload, &mut head);
        }
        out.push(Written::Open {
            init: head.freeze(),
            start_dts: dts,
        });
    }

    fn tag(&mut self, m: &Media) {
        let Some(start) = self.start else { return };
        let ts = m.timestamp.0.saturating_sub(start);
        self.last_dts = self.last_dts.max(m.timestamp.0);
        // A body past the 16 MiB an FLV tag holds is left out.
        let _ = write_tag(
            tag_type(m.kind),
            Timestamp(ts),
            &m.payload,
            &mut self.gathered,
        );
    }
}

fn tag_type(kind: MediaKind) -> u8 {
    match kind {
        MediaKind::Audio => 8,
        MediaKind::Video => 9,
        MediaKind::Metadata => 18,
    }
}

/// The tags of a file, for tests.
#[cfg(test)]
fn tags(file: &Bytes) -> Vec<(u8, u32, Bytes)> {
    let mut r = rtmpkit_proto::flv::FlvReader::new();
    r.push(file);
    let mut v = Vec::new();
    while let Ok(Some(t)) = r.next_tag() {
        v.push((t.tag_type, t.timestamp.0, t.data));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_first_bodies_as_received_timestamps_from_zero() {
        let mut w = FlvFileWriter::new(Some(1000));
        let mut out = Vec::new();
        let mut seq = Media::video(Timestamp(0), Bytes::from_static(b"\x17\x00\x00\x00\x00SEQ"));
        seq.sequence_header = true;
        let key = |ts| {
            let mut m = Media::video(
                Timestamp(ts),
                Bytes::from_static(b"\x17\x01\x00\x00\x00KEY"),
            );
            m.keyframe = true;
            m
        };
        let inter = |ts| Media::video(Timestamp(ts), Bytes::from_static(b"\x27\x01\x00\x00\x00P"));
        w.push(&inter(90), &mut out); // before any keyframe: dropped
        w.push(&seq, &mut out);
        w.push(&key(100), &mut out);
        w.push(&inter(140), &mut out);
        w.push(&key(600), &mut out); // within the segment: same file
        w.push(&key(1100), &mut out); // past it: a new file
        w.finish(&mut out);
        let files: Vec<Bytes> = {
            let mut files = Vec::new();
            let mut cur = BytesMut::new();
            for o in &out {
                match o {
                    Written::Open { init, .. } => cur.extend_from_slice(init),
                    Written::Fragment { data, .. } => cur.extend_from_slice(data),
                    Written::Close { .. } => files.push(cur.split().freeze()),
                }
            }
            files
        };
        assert_eq!(files.len(), 2);
        let first = tags(&files[0]);
        let ts: Vec<u32> = first.iter().map(|t| t.1).collect();
        assert_eq!(ts, [0, 0, 40, 500]);
        assert_eq!(&first[0].2[..], b"\x17\x00\x00\x00\x00SEQ");
        assert_eq!(&first[2].2[..], b"\x27\x01\x00\x00\x00P");
        let second = tags(&files[1]);
        assert_eq!(second.iter().map(|t| t.1).collect::<Vec<_>>(), [0, 0]);
    }
}
