//! A stream's LL-HLS variants: one per video track of an E-RTMP
//! multitrack publish (a quality ladder the encoder made), each the
//! segmenter of its rendition ([`rendition`]) with track 0's audio, so a
//! player can switch between them with no transcoding here.
//!
//! Every variant cuts on its own keyframes by the same rule, so when the
//! encoder puts the keyframes of all tracks at the same times (as OBS and
//! FFmpeg do with a fixed GOP) segments and parts of all variants start
//! at the same media times and have the same numbers, which is what lets
//! a player switch (RFC 8216bis §6.2.4, "content must be aligned"). A
//! variant whose segments start elsewhere than track 0's is logged once.

use super::segmenter::{Limits, Segmenter};
use rtmpkit_proto::media::{Media, MediaKind, rendition};
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
    fn new(track: u8, limits: Limits) -> Self {
        Variant {
            track,
            seg: Segmenter::new(limits),
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
/// order their sequence headers came.
#[derive(Debug)]
pub struct Ladder {
    limits: Limits,
    /// Track 0's audio sequence header: a variant made after it came
    /// (its video track's header comes later) starts with it too.
    audio_seq: Option<Media>,
    pub variants: Vec<Variant>,
}

impl Ladder {
    pub fn new(limits: Limits) -> Self {
        Ladder {
            limits,
            audio_seq: None,
            variants: vec![Variant::new(0, limits)],
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

    /// Whether the stream has several video tracks.
    pub fn is_ladder(&self) -> bool {
        self.variants.len() > 1
    }

    /// Takes one message of the stream (every track).
    pub fn push(&mut self, m: &Media) {
        if let (MediaKind::Video, true, Some(t)) = (m.kind, m.sequence_header, m.track) {
            if t > 0 && self.variant(t).is_none() && self.variants.len() < MAX_VARIANTS {
                let mut v = Variant::new(t, self.limits);
                if let Some(audio) = &self.audio_seq {
                    v.seg.push(audio);
                }
                self.variants.push(v);
            }
        }
        if m.kind == MediaKind::Audio && m.sequence_header && m.track.is_none() {
            self.audio_seq = Some(m.clone());
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
        for v in &mut self.variants {
            v.seg.finish();
        }
    }
}
