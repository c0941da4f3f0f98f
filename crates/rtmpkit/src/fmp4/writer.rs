//! A stream into fragmented MP4 files, with no I/O: each file is an init
//! segment, then fragments written as soon as they are complete, so a file
//! is valid at every fragment boundary (a crash loses at most the fragment
//! being gathered).
//!
//! - A file opens at the first keyframe of its first video track (for an
//!   audio-only stream, the first audio frame), with every track whose
//!   configuration is known then, one MP4 track each.
//! - A fragment ends at each keyframe of that track and whenever it would
//!   span more than the fragment limit.
//! - A new file opens at the first keyframe after the segment length, and
//!   after a track's configuration changed or a new track appeared.
//! - A sample's duration is the gap to the next sample of its track, so
//!   each track holds its latest sample back until the next arrives.

use super::boxes::{Sample, Track, fragment, init_segment};
use super::demux::{TrackKey, Unit, demux};
use bytes::Bytes;
use rtmpkit_proto::media::Media;
use std::collections::BTreeMap;

/// What the writer asks of its output, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// A new file starts with `init`; `start_dts` is the stream time (ms)
    /// that is time 0 in it.
    Open { init: Bytes, start_dts: u32 },
    /// The next fragment of the open file, ending at stream time `end_dts`.
    Fragment { data: Bytes, end_dts: u32 },
    /// The open file is complete; it ends at stream time `end_dts`.
    Close { end_dts: u32 },
}

/// A stream into fragmented MP4 files.
#[derive(Debug)]
pub struct FileWriter {
    max_fragment_ms: u32,
    segment_ms: Option<u32>,
    /// The latest configuration of every track seen.
    configs: BTreeMap<TrackKey, ([u8; 4], Bytes)>,
    file: Option<OpenFile>,
    units: Vec<Unit>,
    /// Frames that came before the first file opened (audio sent just
    /// before the opening keyframe, at its time): the file takes those
    /// at or after its start.
    early: Vec<Early>,
}

/// A frame kept until the first file opens.
#[derive(Debug)]
struct Early {
    key: TrackKey,
    dts: u32,
    cts: i32,
    keyframe: bool,
    data: Bytes,
}

/// Frames kept before the first file opens, at most.
const MAX_EARLY: usize = 256;
/// How long before the first keyframe audio still goes into the file.
const EARLY_WINDOW_MS: u32 = 1000;

#[derive(Debug)]
struct OpenFile {
    /// The track whose keyframes open files and end fragments.
    anchor: TrackKey,
    tracks: BTreeMap<TrackKey, TrackState>,
    start_dts: u32,
    fragment_start: u32,
    sequence: u32,
    /// A configuration changed, or a track appeared: the next anchor
    /// keyframe opens a new file.
    stale: bool,
}

#[derive(Debug)]
struct TrackState {
    id: u32,
    /// The latest sample, waiting for the next one's time.
    held: Option<(u32, Sample)>,
    ready: Vec<(u32, Sample)>,
    last_duration: u32,
    audio: bool,
}

impl FileWriter {
    /// Fragments span at most `max_fragment_ms`; a new file opens at the
    /// first keyframe after `segment_ms` (never, with `None`).
    pub fn new(max_fragment_ms: u32, segment_ms: Option<u32>) -> Self {
        FileWriter {
            max_fragment_ms: max_fragment_ms.max(1),
            segment_ms,
            configs: BTreeMap::new(),
            file: None,
            units: Vec::new(),
            early: Vec::new(),
        }
    }

    /// Takes one message of the stream; what to write goes to `out`.
    pub fn push(&mut self, m: &Media, out: &mut Vec<Written>) {
        let mut units = std::mem::take(&mut self.units);
        demux(m, &mut units);
        for unit in units.drain(..) {
            match unit {
                Unit::Config { key, fourcc, body } => self.config(key, fourcc, body),
                Unit::Frame {
                    key,
                    dts,
                    cts,
                    keyframe,
                    data,
                } => self.frame(key, dts, cts, keyframe, data, out),
            }
        }
        self.units = units;
    }

    /// Ends the open file, if any: its held samples, then `Close`.
    pub fn finish(&mut self, out: &mut Vec<Written>) {
        let Some(mut f) = self.file.take() else {
            return;
        };
        for t in f.tracks.values_mut() {
            if let Some((dts, mut s)) = t.held.take() {
                s.duration = t.last_duration;
                t.ready.push((dts, s));
            }
        }
        let end = f.emit(out);
        out.push(Written::Close {
            end_dts: end.unwrap_or(f.fragment_start),
        });
    }

    /// Whether a file is open.
    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }

    fn config(&mut self, key: TrackKey, fourcc: [u8; 4], body: Bytes) {
        let new = (fourcc, body);
        if self.configs.get(&key) == Some(&new) {
            return;
        }
        self.configs.insert(key, new);
        if let Some(f) = self.file.as_mut() {
            f.stale = true;
        }
    }

    fn frame(
        &mut self,
        key: TrackKey,
        dts: u32,
        cts: i32,
        keyframe: bool,
        data: Bytes,
        out: &mut Vec<Written>,
    ) {
        let opens = match &self.file {
            None => self.anchor() == Some(key) && keyframe,
            Some(f) => {
                f.anchor == key
                    && keyframe
                    && (f.stale
                        || self
                            .segment_ms
                            .is_some_and(|s| dts.wrapping_sub(f.start_dts) >= s))
            }
        };
        if opens {
            self.finish(out);
            // Audio sent just before the first keyframe belongs in the
            // file: it starts with the earliest of it.
            let mut early = std::mem::take(&mut self.early);
            early.retain(|e| e.key.audio && e.dts <= dts && e.dts + EARLY_WINDOW_MS >= dts);
            let start = early.iter().map(|e| e.dts).min().unwrap_or(dts).min(dts);
            self.open(start, out);
            for e in early {
                self.frame(e.key, e.dts, e.cts, e.keyframe, e.data, out);
            }
        }
        let max = self.max_fragment_ms;
        let Some(f) = self.file.as_mut() else {
            if self.early.len() >= MAX_EARLY {
                self.early.remove(0);
            }
            self.early.push(Early {
                key,
                dts,
                cts,
                keyframe,
                data,
            });
            return;
        };
        if dts < f.start_dts {
            // Before the opening keyframe (audio that came first).
            return;
        }
        let Some(t) = f.tracks.get_mut(&key) else {
            return;
        };
        if let Some((held_dts, mut s)) = t.held.take() {
            s.duration = dts.saturating_sub(held_dts);
            if s.duration > 0 {
                t.last_duration = s.duration;
            }
            t.ready.push((held_dts, s));
        }
        let sample = Sample {
            duration: 0,
            cts,
            keyframe: keyframe || t.audio,
            data,
        };
        t.held = Some((dts, sample));
        let cut = (key == f.anchor && keyframe) || dts.saturating_sub(f.fragment_start) >= max;
        if cut {
            f.emit(out);
            f.fragment_start = dts;
        }
    }

    /// The track that opens files: the first video track whose codec the
    /// writer carries, else the first audio track.
    fn anchor(&self) -> Option<TrackKey> {
        self.configs
            .iter()
            .find(|(k, (fourcc, body))| {
                Track::from_config(1, fourcc, body.clone()).is_some() && !k.audio
            })
            .or_else(|| {
                self.configs.iter().find(|(_, (fourcc, body))| {
                    Track::from_config(1, fourcc, body.clone()).is_some()
                })
            })
            .map(|(k, _)| *k)
    }

    fn open(&mut self, dts: u32, out: &mut Vec<Written>) {
        let Some(anchor) = self.anchor() else { return };
        let mut tracks = BTreeMap::new();
        let mut list = Vec::new();
        for (key, (fourcc, body)) in &self.configs {
            let id = list.len() as u32 + 1;
            if let Some(t) = Track::from_config(id, fourcc, body.clone()) {
                list.push(t);
                tracks.insert(
                    *key,
                    TrackState {
                        id,
                        held: None,
                        ready: Vec::new(),
                        last_duration: if key.audio { 21 } else { 33 },
                        audio: key.audio,
                    },
                );
            }
        }
        out.push(Written::Open {
            init: init_segment(&list),
            start_dts: dts,
        });
        self.file = Some(OpenFile {
            anchor,
            tracks,
            start_dts: dts,
            fragment_start: dts,
            sequence: 0,
            stale: false,
        });
    }
}

impl OpenFile {
    /// A fragment of every ready sample, if any; returns its end time.
    fn emit(&mut self, out: &mut Vec<Written>) -> Option<u32> {
        let start = self.start_dts;
        let mut parts: Vec<(u32, u64, Vec<Sample>)> = Vec::new();
        let mut end = None::<u32>;
        for t in self.tracks.values_mut() {
            let Some(&(first, _)) = t.ready.first() else {
                continue;
            };
            if let Some((dts, s)) = t.ready.last() {
                let e = dts + s.duration;
                end = Some(end.map_or(e, |x| x.max(e)));
            }
            let samples = t.ready.drain(..).map(|(_, s)| s).collect();
            parts.push((t.id, u64::from(first - start), samples));
        }
        let end = end?;
        self.sequence += 1;
        let refs: Vec<(u32, u64, &[Sample])> =
            parts.iter().map(|(id, b, s)| (*id, *b, &s[..])).collect();
        out.push(Written::Fragment {
            data: fragment(self.sequence, &refs),
            end_dts: end,
        });
        Some(end)
    }
}
