//! A stream's LL-HLS variants: one per video track of an E-RTMP
//! multitrack publish (a quality ladder the encoder made), each the
//! segmenter of its rendition's video ([`rendition`]), so a player can
//! switch between them with no transcoding here; and one audio rendition
//! per audio track ([`audio_rendition`]), cut where track 0's video is.
//!
//! A stream whose first keyframe comes with one video track is served as
//! one track (video and audio together), and stays so.
//!
//! Every variant cuts on its own keyframes by the same rule, so when the
//! encoder puts the keyframes of all tracks at the same times (as OBS and
//! FFmpeg do with a fixed GOP) segments and parts of all variants start
//! at the same media times and have the same numbers, which is what lets
//! a player switch (RFC 8216bis §6.2.4, "content must be aligned"). A
//! variant whose segments start elsewhere than track 0's is logged once.

use super::segmenter::{Carries, Limits, Segmenter};
use rtmpkit_proto::media::{Media, MediaKind, audio_rendition, rendition};
use tracing::warn;

/// Variants of one stream, at most (each keeps its own segments).
const MAX_VARIANTS: usize = 8;

/// One rung of the ladder.
#[derive(Debug)]
pub struct Variant {
    /// Its video track id (0: the stream's main track).
    pub track: u8,
    pub seg: Segmenter,
    /// Video frames seen, and the first and last decode times.
    frames: u64,
    first_dts: Option<u32>,
    last_dts: u32,
    /// Whether a misaligned segment was logged already.
    warned: bool,
}

impl Variant {
    fn new(track: u8, limits: Limits, carries: Carries) -> Self {
        Variant {
            track,
            seg: Segmenter::carrying(limits, carries),
            frames: 0,
            first_dts: None,
            last_dts: 0,
            warned: false,
        }
    }

    /// Frames per second measured so far.
    pub fn frame_rate(&self) -> Option<f64> {
        let span = self.last_dts.wrapping_sub(self.first_dts?);
        (self.frames > 1 && span > 0).then(|| (self.frames - 1) as f64 * 1000.0 / f64::from(span))
    }

    /// Bits per second: the peak and the average over the complete
    /// segments kept, or over the open segment's parts before any is
    /// complete.
    pub fn bandwidth(&self) -> Option<(u64, u64)> {
        let mut done: Vec<(usize, u32)> = self
            .seg
            .segments
            .iter()
            .filter_map(|s| s.data.as_ref().map(|d| (d.len(), s.duration_ms)))
            .filter(|(_, ms)| *ms > 0)
            .collect();
        if done.is_empty() {
            let open = self.seg.segments.back()?;
            let bytes = open.parts.iter().map(|p| p.data.len()).sum();
            done.push((bytes, open.duration_ms));
        }
        let rate = |(bytes, ms): (usize, u32)| (bytes as u64 * 8 * 1000).checked_div(u64::from(ms));
        let peak = done.iter().filter_map(|d| rate(*d)).max()?;
        let (bytes, ms) = done.iter().fold((0, 0), |(b, m), d| (b + d.0, m + d.1));
        Some((peak, rate((bytes, ms))?))
    }
}

/// The variants of one stream: track 0 first, then the others in the
/// order their sequence headers came; and, for a ladder, its audio
/// renditions (track 0 first).
#[derive(Debug)]
pub struct Ladder {
    limits: Limits,
    /// Track 0's video and audio sequence headers: a segmenter made after
    /// they came starts with them.
    video_seq: Option<Media>,
    audio_seq: Option<Media>,
    pub variants: Vec<Variant>,
    /// Audio renditions (`Variant::track` is the audio track's id).
    pub audios: Vec<Variant>,
}

impl Ladder {
    pub fn new(limits: Limits) -> Self {
        Ladder {
            limits,
            video_seq: None,
            audio_seq: None,
            variants: vec![Variant::new(0, limits, Carries::Both)],
            audios: Vec::new(),
        }
    }

    /// Variant of video track `track`.
    pub fn variant(&self, track: u8) -> Option<&Variant> {
        self.variants.iter().find(|v| v.track == track)
    }

    /// The main variant (track 0).
    pub fn main(&self) -> &Segmenter {
        &self.variants[0].seg
    }

    /// Audio rendition of audio track `track`.
    pub fn audio(&self, track: u8) -> Option<&Variant> {
        self.audios.iter().find(|v| v.track == track)
    }

    /// Whether the stream has several video tracks.
    pub fn is_ladder(&self) -> bool {
        self.variants.len() > 1
    }

    /// A new video track: the stream becomes a ladder (if its first
    /// keyframe has not come yet): track 0's variant carries video alone,
    /// and track 0's audio becomes an audio rendition.
    fn add_variant(&mut self, track: u8) {
        if self.variants.len() >= MAX_VARIANTS {
            return;
        }
        if !self.is_ladder() {
            if self.variants[0].seg.init.is_some() {
                return;
            }
            let mut main = Variant::new(0, self.limits, Carries::Video);
            if let Some(seq) = &self.video_seq {
                main.seg.push(seq);
            }
            self.variants[0] = main;
            self.add_audio(0);
        }
        let v = Variant::new(track, self.limits, Carries::Video);
        self.variants.push(v);
    }

    fn add_audio(&mut self, track: u8) {
        if self.audios.len() >= MAX_VARIANTS || self.audio(track).is_some() {
            return;
        }
        let mut a = Variant::new(track, self.limits, Carries::Audio);
        if let Some(seq) = self.audio_seq.as_ref().filter(|_| track == 0) {
            a.seg.push(seq);
        }
        self.audios.push(a);
    }

    /// Takes one message of the stream (every track).
    pub fn push(&mut self, m: &Media) {
        if m.sequence_header {
            match (m.kind, m.track) {
                (MediaKind::Video, None | Some(0)) => self.video_seq = Some(m.clone()),
                (MediaKind::Audio, None | Some(0)) => self.audio_seq = Some(m.clone()),
                (MediaKind::Video, Some(t)) if self.variant(t).is_none() => self.add_variant(t),
                (MediaKind::Audio, Some(t)) if self.is_ladder() => self.add_audio(t),
                _ => {}
            }
        }
        for v in &mut self.variants {
            let Some(r) = rendition(m, v.track) else {
                continue;
            };
            if r.kind == MediaKind::Video && !r.sequence_header {
                v.frames += 1;
                v.first_dts.get_or_insert(r.timestamp.0);
                v.last_dts = r.timestamp.0;
            }
            v.seg.push(&r);
        }
        // The audio renditions are cut where track 0's video was.
        let (main, audios) = (&mut self.variants[0].seg, &mut self.audios);
        while let Some((at, segment)) = main.cuts.pop_front() {
            for a in audios.iter_mut() {
                a.seg.cut_at(at, segment);
            }
        }
        for a in &mut self.audios {
            if let Some(r) = audio_rendition(m, a.track) {
                a.seg.push(&r);
            }
        }
        self.check_alignment();
    }

    /// Logs, once per variant, a complete segment that does not start
    /// where track 0's segment of the same number does.
    fn check_alignment(&mut self) {
        let (main, rest) = self.variants.split_at_mut(1);
        for v in rest.iter_mut().filter(|v| !v.warned) {
            let Some(last) = v.seg.segments.iter().rev().find(|s| s.data.is_some()) else {
                continue;
            };
            let theirs = main[0].seg.segments.iter().find(|s| s.msn == last.msn);
            let aligned = theirs.is_some_and(|s| s.start_dts == last.start_dts);
            if !aligned && theirs.is_some_and(|s| s.data.is_some()) {
                warn!(
                    track = v.track,
                    "hls: video track {}'s keyframes do not line up with track 0's: players may stall when they switch to or from it",
                    v.track
                );
                v.warned = true;
            }
        }
    }

    /// The stream ended.
    pub fn finish(&mut self) {
        for v in self.variants.iter_mut().chain(&mut self.audios) {
            v.seg.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};

    /// The sample FLV (H.264 25 fps, keyframe every second, AAC), its
    /// video sent again as E-RTMP multitrack track 1 (as FFmpeg sends an
    /// extra rung), every message of track 1 right after track 0's. With
    /// `shift_keys`, track 1's keyframes are marked one frame late.
    fn two_rungs(shift_keys: bool) -> Vec<Media> {
        let mut out = Vec::new();
        let mut late_key = false;
        for m in crate::hls::segmenter::tests::fixture(u32::MAX, 0) {
            out.push(m.clone());
            if m.kind != MediaKind::Video {
                continue;
            }
            // Legacy AVC: frame type | 7, packet type, SI24 cts, data.
            let p = &m.payload;
            let mut frame_type = p[0] >> 4;
            if shift_keys && !m.sequence_header {
                let key = frame_type == 1;
                frame_type = if late_key { 1 } else { 2 };
                late_key = key;
            }
            let mut b = BytesMut::new();
            b.put_u8(0x80 | frame_type << 4 | 6);
            if p[1] == 0 {
                b.put_u8(0);
                b.put_slice(b"avc1");
                b.put_u8(1);
                b.put_slice(&p[5..]);
            } else {
                b.put_u8(1);
                b.put_slice(b"avc1");
                b.put_u8(1);
                b.put_slice(&p[2..]);
            }
            out.push(Media::video(m.timestamp, b.freeze()));
        }
        out
    }

    fn ladder_of(media: &[Media]) -> Ladder {
        let mut l = Ladder::new(Limits {
            part_ms: 400,
            segment_ms: 1000,
            segments: 20,
        });
        for m in media {
            l.push(m);
        }
        l.finish();
        l
    }

    /// (number, duration ms) of every complete segment.
    fn segments(s: &Segmenter) -> Vec<(u64, u32)> {
        s.segments
            .iter()
            .filter(|x| x.data.is_some())
            .map(|x| (x.msn, x.duration_ms))
            .collect()
    }

    #[test]
    fn a_second_video_track_makes_a_ladder_with_its_audio_apart() {
        let l = ladder_of(&two_rungs(false));
        assert!(l.is_ladder());
        assert_eq!(l.variants.len(), 2);
        assert_eq!(
            l.audios.len(),
            1,
            "track 0's audio is a rendition of its own"
        );
        let (v0, v1) = (segments(l.main()), segments(&l.variants[1].seg));
        assert!(v0.len() >= 4, "{v0:?}");
        assert_eq!(v0, v1, "the rungs are cut on the same boundaries");
        assert!(!l.variants[1].warned);
        // Video alone in the variants, audio alone in its rendition.
        assert_eq!(l.main().tracks.len(), 1);
        let audio = &l.audios[0].seg;
        assert_eq!(audio.tracks.len(), 1);
        assert!(!audio.tracks[0].entry.is_video());
        let a = segments(audio);
        assert_eq!(a.len(), v0.len(), "{a:?} {v0:?}");
        // Not the first (audio the encoder sent before the first keyframe
        // is not there) nor the last (cut by the end of the stream).
        for ((n, d), (m, e)) in a.iter().zip(&v0).skip(1).take(v0.len() - 2) {
            assert_eq!(n, m);
            assert!(
                d.abs_diff(*e) <= 50,
                "segment {n}: audio {d} ms, video {e} ms"
            );
        }
        let (peak, average) = l.variants[1].bandwidth().unwrap();
        assert!(peak >= average && average > 0);
        let fps = l.variants[1].frame_rate().unwrap();
        assert!((fps - 25.0).abs() < 0.5, "{fps}");
    }

    #[test]
    fn keyframes_that_do_not_line_up_are_noticed() {
        let l = ladder_of(&two_rungs(true));
        assert!(
            l.variants[1].warned,
            "track 1's segments start a frame late"
        );
    }

    #[test]
    fn a_one_track_stream_stays_one_track() {
        let media: Vec<Media> = two_rungs(false)
            .into_iter()
            .filter(|m| m.track.is_none())
            .collect();
        let l = ladder_of(&media);
        assert!(!l.is_ladder() && l.audios.is_empty());
        assert_eq!(l.main().tracks.len(), 2, "video and audio together");
    }
}
