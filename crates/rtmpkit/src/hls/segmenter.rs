//! Cuts a live stream into LL-HLS segments and parts of fMP4, in memory.
//! Segments start on video keyframes; a part is cut before it would
//! outgrow the part target. Only the last few segments are kept, and the
//! parts only of the newest ones.
//!
//! A segmenter carries video and audio together (a one-track stream),
//! video alone (a variant of a ladder), or audio alone (an audio
//! rendition of a ladder), whose parts and segments are cut where the
//! video's were: the video segmenter tells its cuts ([`Segmenter::cuts`])
//! and the audio one takes them ([`Segmenter::cut_at`]).

use crate::fmp4::{self, Sample, Track, Unit};
use bytes::{Bytes, BytesMut};
use rtmpkit_proto::media::{AudioTagHeader, Media, MediaKind, VideoPacketKind, VideoTagHeader};
use std::collections::VecDeque;

/// Track ids: one video track (H.264 or HEVC) and one audio track (AAC
/// or Opus), track 0 of the stream.
const VIDEO: u32 = 1;
const AUDIO: u32 = 2;

/// The track of a sequence header, for the codecs LL-HLS carries here.
fn track_of(seq: Option<&Media>, id: u32) -> Option<Track> {
    let mut units = Vec::new();
    fmp4::demux(seq?, &mut units);
    let Some(Unit::Config { fourcc, body, .. }) = units.pop() else {
        return None;
    };
    let t = Track::from_config(id, &fourcc, body)?;
    let carried = match id {
        VIDEO => matches!(t.entry, fmp4::Entry::Avc(_) | fmp4::Entry::Hevc(_)),
        _ => matches!(t.entry, fmp4::Entry::Aac(_) | fmp4::Entry::Opus(_)),
    };
    carried.then_some(t)
}

/// What a segmenter puts in its fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carries {
    /// Video and its audio (a one-track stream).
    Both,
    /// Video alone; it records where it cuts.
    Video,
    /// Audio alone, cut where it is told.
    Audio,
}

/// Settings of the segmenter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest part, ms.
    pub part_ms: u32,
    /// A segment ends at the first keyframe after this many ms.
    pub segment_ms: u32,
    /// Complete segments kept.
    pub segments: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            part_ms: 500,
            segment_ms: 2000,
            segments: 6,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Part {
    pub duration_ms: u32,
    pub independent: bool,
    pub data: Bytes,
}

#[derive(Debug)]
pub struct Segment {
    pub msn: u64,
    pub parts: Vec<Part>,
    pub duration_ms: u32,
    /// Decode time of its first sample.
    pub start_dts: Option<u32>,
    /// The whole segment, once complete (the parts' bytes in order).
    pub data: Option<Bytes>,
}

/// A sample waiting for the next one of its track (its duration).
#[derive(Debug)]
struct Held {
    dts: u32,
    sample: Sample,
}

#[derive(Debug)]
pub struct Segmenter {
    limits: Limits,
    carries: Carries,
    /// Video alone: where each part it made ends (the decode time where
    /// the next starts) and whether a segment ended there too; the first
    /// is where segment 0 starts. Audio alone: the cuts to make.
    pub cuts: VecDeque<(u32, bool)>,
    video_seq: Option<Media>,
    audio_seq: Option<Media>,
    /// Whether the init segment has an audio track.
    has_audio: bool,
    pub init: Option<Bytes>,
    /// The tracks of the init segment: video, and audio if any.
    pub tracks: Vec<Track>,
    pub segments: VecDeque<Segment>,
    held_video: Option<Held>,
    held_audio: Option<Held>,
    /// Samples of the part being made, with their decode times.
    video: Vec<(u32, Sample)>,
    audio: Vec<(u32, Sample)>,
    part_ms: u32,
    fragment_seq: u32,
    /// Longest segment so far (for EXT-X-TARGETDURATION).
    pub longest_ms: u32,
    /// The wall clock when the first keyframe came, and its decode time:
    /// each segment's EXT-X-PROGRAM-DATE-TIME is reckoned from them.
    pub clock: Option<(std::time::SystemTime, u32)>,
}

impl Segmenter {
    #[cfg(test)]
    pub fn new(limits: Limits) -> Self {
        Segmenter::carrying(limits, Carries::Both)
    }

    /// A segmenter of video alone, or audio alone.
    pub fn carrying(limits: Limits, carries: Carries) -> Self {
        Segmenter {
            limits,
            carries,
            cuts: VecDeque::new(),
            video_seq: None,
            audio_seq: None,
            has_audio: false,
            init: None,
            tracks: Vec::new(),
            segments: VecDeque::new(),
            held_video: None,
            held_audio: None,
            video: Vec::new(),
            audio: Vec::new(),
            part_ms: 0,
            fragment_seq: 1,
            longest_ms: 0,
            clock: None,
        }
    }

    /// Takes one message of the stream (track 0 of a multitrack one).
    pub fn push(&mut self, m: &Media) {
        if m.track.is_some_and(|t| t != 0) {
            return;
        }
        match m.kind {
            MediaKind::Metadata => {}
            MediaKind::Video if m.sequence_header => self.video_seq = Some(m.clone()),
            MediaKind::Audio if m.sequence_header => self.audio_seq = Some(m.clone()),
            MediaKind::Video if self.carries == Carries::Audio => {}
            MediaKind::Audio if self.carries == Carries::Video => {}
            MediaKind::Video => {
                let Ok(h) = VideoTagHeader::parse(&m.payload) else {
                    return;
                };
                if h.kind == VideoPacketKind::Frame
                    && (h.codec.is_avc() || h.codec.is_hevc())
                    && h.header_len < m.payload.len()
                {
                    self.video_frame(m, h.composition_time, h.header_len);
                }
            }
            MediaKind::Audio => {
                let Ok(h) = AudioTagHeader::parse(&m.payload) else {
                    return;
                };
                if h.coded
                    && (h.codec.is_aac() || h.codec.is_opus())
                    && h.header_len < m.payload.len()
                {
                    self.audio_frame(m, h.header_len);
                }
            }
        }
    }

    fn video_frame(&mut self, m: &Media, cts: i32, header_len: usize) {
        let dts = m.timestamp.0;
        if self.init.is_none() {
            if !m.keyframe {
                return;
            }
            // The first keyframe: the codecs are known now.
            let Some(video) = track_of(self.video_seq.as_ref(), VIDEO) else {
                return;
            };
            let audio = match self.carries {
                Carries::Both => track_of(self.audio_seq.as_ref(), AUDIO),
                _ => None,
            };
            self.has_audio = audio.is_some();
            if self.carries == Carries::Video {
                self.cuts.push_back((dts, true));
            }
            let tracks: Vec<Track> = std::iter::once(video).chain(audio).collect();
            self.init = Some(fmp4::init_segment(&tracks));
            self.tracks = tracks;
            self.clock = Some((std::time::SystemTime::now(), dts));
            self.open_segment(0);
        }
        let mut last = 40;
        if let Some(h) = self.held_video.take() {
            // A pause in the input becomes a hole in the timeline (the next
            // part's decode time tells it), not a part past the target.
            last = dts.wrapping_sub(h.dts).clamp(1, self.limits.part_ms);
            // A frame longer than foreseen (a gap in the input) goes to the
            // next part: no part outgrows the target.
            if !self.video.is_empty() && self.part_ms + last > self.limits.part_ms {
                self.cut_part();
            }
            let mut s = h.sample;
            s.duration = last;
            self.part_ms += last;
            self.video.push((h.dts, s));
        }
        let seg_ms = self.segments.back().map_or(0, |s| s.duration_ms) + self.part_ms;
        if m.keyframe && seg_ms >= self.limits.segment_ms {
            self.cut_part();
            self.close_segment();
        } else if self.part_ms + last > self.limits.part_ms {
            self.cut_part();
        }
        self.held_video = Some(Held {
            dts,
            sample: Sample {
                duration: 0,
                cts,
                keyframe: m.keyframe,
                data: m.payload.slice(header_len..),
            },
        });
    }

    /// The cuts of the video this audio goes with: a part (and with
    /// `true` a segment) ends where the decode time `at` starts. The first
    /// is where segment 0 starts.
    pub fn cut_at(&mut self, at: u32, segment: bool) {
        if self.cuts.len() < 1000 {
            self.cuts.push_back((at, segment));
        }
    }

    /// Audio alone: makes the cuts due before `dts`.
    fn cut_audio(&mut self, dts: u32) {
        while let Some(&(at, segment)) = self.cuts.front() {
            // Wrapping compare: `at` is not after `dts`.
            if (dts.wrapping_sub(at) as i32) < 0 {
                break;
            }
            self.cuts.pop_front();
            if self.init.is_none() {
                // Where the video's segment 0 starts.
                let Some(audio) = track_of(self.audio_seq.as_ref(), AUDIO) else {
                    continue;
                };
                self.init = Some(fmp4::init_segment(std::slice::from_ref(&audio)));
                self.tracks = vec![audio];
                self.has_audio = true;
                self.clock = Some((std::time::SystemTime::now(), at));
                self.open_segment(0);
                continue;
            }
            self.cut_part();
            if segment {
                self.close_segment();
            }
        }
    }

    fn audio_frame(&mut self, m: &Media, header_len: usize) {
        let dts = m.timestamp.0;
        if self.carries == Carries::Audio {
            // Audio alone: the held sample ends here, then come the cuts
            // due before this one.
            self.end_held_audio(dts);
            self.cut_audio(dts);
        }
        if self.init.is_none() || !self.has_audio {
            return;
        }
        if self.carries != Carries::Audio {
            self.end_held_audio(dts);
        }
        self.held_audio = Some(Held {
            dts,
            sample: Sample {
                duration: 0,
                cts: 0,
                keyframe: true,
                data: m.payload.slice(header_len..),
            },
        });
    }

    /// The held audio sample lasts until `dts`: it joins the part being
    /// made (whose length it makes, when audio is alone).
    fn end_held_audio(&mut self, dts: u32) {
        if let Some(h) = self.held_audio.take() {
            let mut s = h.sample;
            s.duration = dts.wrapping_sub(h.dts).clamp(1, 10_000);
            if self.carries == Carries::Audio {
                self.part_ms += s.duration;
            }
            self.audio.push((h.dts, s));
        }
    }

    fn open_segment(&mut self, msn: u64) {
        self.segments.push_back(Segment {
            msn,
            parts: Vec::new(),
            duration_ms: 0,
            start_dts: None,
            data: None,
        });
    }

    /// Makes a part of what waits (if anything) and adds it to the open segment.
    fn cut_part(&mut self) {
        let leader = match self.carries {
            Carries::Audio => &self.audio,
            _ => &self.video,
        };
        let Some(&(first_dts, _)) = leader.first() else {
            return;
        };
        let video: Vec<Sample> = self.video.iter().map(|(_, s)| s.clone()).collect();
        let audio: Vec<Sample> = self.audio.iter().map(|(_, s)| s.clone()).collect();
        let mut tracks = Vec::with_capacity(2);
        if let Some((dts, _)) = self.video.first() {
            tracks.push((VIDEO, u64::from(*dts), &video[..]));
        }
        if let Some((dts, _)) = self.audio.first() {
            tracks.push((AUDIO, u64::from(*dts), &audio[..]));
        }
        let data = fmp4::fragment(self.fragment_seq, &tracks);
        self.fragment_seq += 1;
        let part = Part {
            duration_ms: self.part_ms,
            independent: video.first().is_none_or(|s| s.keyframe),
            data,
        };
        if self.carries == Carries::Video && self.cuts.len() < 1000 {
            self.cuts
                .push_back((first_dts.wrapping_add(self.part_ms), false));
        }
        self.video.clear();
        self.audio.clear();
        self.part_ms = 0;
        if let Some(seg) = self.segments.back_mut() {
            seg.start_dts.get_or_insert(first_dts);
            seg.duration_ms += part.duration_ms;
            seg.parts.push(part);
        }
    }

    fn close_segment(&mut self) {
        if self.carries == Carries::Video
            && let Some(cut) = self.cuts.back_mut()
        {
            cut.1 = true;
        }
        let Some(seg) = self.segments.back_mut() else {
            return;
        };
        let mut whole = BytesMut::new();
        for p in &seg.parts {
            whole.extend_from_slice(&p.data);
        }
        seg.data = Some(whole.freeze());
        self.longest_ms = self.longest_ms.max(seg.duration_ms);
        let next = seg.msn + 1;
        // Memory bound: the last segments. Parts stay listed only near the
        // end (RFC 8216bis 4.4.4.9: not past three target durations): for
        // the two newest complete segments and the open one.
        while self.segments.len() > self.limits.segments {
            self.segments.pop_front();
        }
        let n = self.segments.len();
        for s in self.segments.iter_mut().take(n.saturating_sub(2)) {
            s.parts.clear();
        }
        self.open_segment(next);
    }

    /// The stream ended: the open segment is closed with what it has.
    pub fn finish(&mut self) {
        if let Some(h) = self.held_video.take() {
            let mut s = h.sample;
            s.duration = 40;
            self.part_ms += 40;
            self.video.push((h.dts, s));
        }
        if let Some(h) = self.held_audio.take() {
            let mut s = h.sample;
            s.duration = 23;
            if self.carries == Carries::Audio {
                self.part_ms += 23;
            }
            self.audio.push((h.dts, s));
        }
        self.cut_part();
        if self.segments.back().is_some_and(|s| !s.parts.is_empty()) {
            self.close_segment();
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use rtmpkit_proto::Timestamp;
    use rtmpkit_proto::flv::FlvReader;

    /// The sample FLV's messages (H.264 25 fps, AAC), video timestamps
    /// from `gap_at` on moved `gap` ms later.
    pub(in crate::hls) fn fixture(gap_at: u32, gap: u32) -> Vec<Media> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/sample-5s.flv"
        );
        let mut r = FlvReader::new();
        r.push(&std::fs::read(path).unwrap());
        let mut out = Vec::new();
        while let Some(t) = r.next_tag().unwrap() {
            let Some(kind) = MediaKind::from_type_id(t.tag_type) else {
                continue;
            };
            let ts = t.timestamp.0;
            let ts = if ts >= gap_at { ts + gap } else { ts };
            out.push(Media::new(kind, Timestamp(ts), t.data.clone()));
        }
        out
    }

    /// Every part made, by segment (seen as they are made: older
    /// segments lose their part list).
    fn parts(media: &[Media], part_ms: u32) -> Vec<Vec<u32>> {
        let mut s = Segmenter::new(Limits {
            part_ms,
            ..Limits::default()
        });
        let mut seen: Vec<Vec<u32>> = Vec::new();
        let mut note = |s: &Segmenter| {
            for seg in &s.segments {
                let msn = seg.msn as usize;
                if seen.len() <= msn {
                    seen.resize(msn + 1, Vec::new());
                }
                if seg.parts.len() > seen[msn].len() {
                    seen[msn] = seg.parts.iter().map(|p| p.duration_ms).collect();
                }
            }
        };
        for m in media {
            s.push(m);
            note(&s);
        }
        s.finish();
        note(&s);
        assert!(s.init.is_some());
        seen.retain(|p| !p.is_empty());
        seen
    }

    #[test]
    fn parts_fill_the_target_and_never_pass_it() {
        for part_ms in [200, 333, 400, 500, 1000] {
            let segs = parts(&fixture(u32::MAX, 0), part_ms);
            for seg in &segs {
                for (i, d) in seg.iter().enumerate() {
                    assert!(*d <= part_ms, "{part_ms}: {segs:?}");
                    // All but a segment's last part: at least 85 % of the
                    // target (RFC 8216bis 4.4.4.9).
                    if i + 1 < seg.len() {
                        assert!(*d * 100 >= part_ms * 85, "{part_ms}: {segs:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_gap_in_the_input_does_not_make_a_long_part() {
        // 150 ms missing before 2.32 s, late in a part.
        let segs = parts(&fixture(2320, 150), 400);
        let all: Vec<u32> = segs.iter().flatten().copied().collect();
        assert!(all.iter().all(|d| *d <= 400), "{segs:?}");
        let total: u32 = all.iter().sum();
        assert_eq!(total, 5000 + 150, "{segs:?}");
    }
}
