//! [`Describer`]: the `onMetaData` a frame-level publisher sends for its
//! user, from what the frames themselves say.
//!
//! A program that hands a session encoded frames knows its codecs but
//! rarely fills FLV metadata (FLV spec E.5, `onMetaData`). Players and
//! servers show it (nginx-rtmp's `/stat`, ffprobe), so it is sent for the
//! user: before the first frame with the sizes and codecs the sequence
//! headers give, again once two seconds of media measured the frame rate
//! and bit rates, and again when the picture size changes.

use super::message::{Media, MediaKind};
use super::{AudioTagHeader, VideoTagHeader};
use crate::amf0::Amf0Object;

/// Media time measured before the rates are sent.
const MEASURE_MS: u32 = 2000;

/// Audio time after which a stream with no video is described.
const AUDIO_ONLY_MS: u32 = 1000;

/// Builds the metadata of a stream from its frames.
#[derive(Debug, Default, Clone)]
pub struct Describer {
    video_codec: Option<f64>,
    size: Option<(u32, u32)>,
    audio_codec: Option<f64>,
    audio: Option<(u32, u8)>,
    /// Whether the first frame was described.
    started: bool,
    first_ts: Option<u32>,
    video_frames: u64,
    first_video: Option<u32>,
    /// From the first video frame to the latest, ms.
    video_span: u32,
    video_bytes: u64,
    audio_bytes: u64,
    measured: bool,
}

impl Describer {
    /// A describer that has seen nothing.
    pub fn new() -> Self {
        Describer::default()
    }

    /// Looks at the next message a session sends; the metadata to send
    /// before it, when there is something new to say.
    pub fn observe(&mut self, m: &Media) -> Option<Amf0Object> {
        match m.kind {
            MediaKind::Video if m.sequence_header => {
                let (codec, size) = video_config(&m.payload)?;
                self.video_codec = Some(codec);
                let changed = size.is_some() && size != self.size;
                self.size = size.or(self.size);
                // A new size mid-stream: say so before its frames.
                return (changed && self.started).then(|| self.object());
            }
            MediaKind::Audio if m.sequence_header => {
                let (codec, audio) = audio_config(&m.payload)?;
                self.audio_codec = Some(codec);
                self.audio = audio.or(self.audio);
                return None;
            }
            MediaKind::Video => {
                let first = *self.first_video.get_or_insert(m.timestamp.0);
                self.video_span = m.timestamp.0.wrapping_sub(first);
                self.video_frames += 1;
                self.video_bytes += m.payload.len() as u64;
            }
            MediaKind::Audio => self.audio_bytes += m.payload.len() as u64,
            MediaKind::Metadata => return None,
        }
        let first = *self.first_ts.get_or_insert(m.timestamp.0);
        let span = m.timestamp.0.wrapping_sub(first);
        if !self.started {
            // Said at the first video frame, so that both sequence headers
            // are in; a stream with no video after a second of audio.
            let audio_only =
                self.video_codec.is_none() && (AUDIO_ONLY_MS..u32::MAX / 2).contains(&span);
            if m.kind == MediaKind::Video || audio_only {
                self.started = true;
                return Some(self.object());
            }
            return None;
        }
        if !self.measured && (MEASURE_MS..u32::MAX / 2).contains(&span) {
            self.measured = true;
            let secs = f64::from(span) / 1000.0;
            let mut o = self.object();
            if self.video_codec.is_some() && (1..u32::MAX / 2).contains(&self.video_span) {
                let intervals = self.video_frames.saturating_sub(1) as f64;
                let fps = intervals * 1000.0 / f64::from(self.video_span);
                o.set("framerate", (fps * 100.0).round() / 100.0);
                o.set(
                    "videodatarate",
                    self.video_bytes as f64 * 8.0 / 1000.0 / secs,
                );
            }
            if self.audio_codec.is_some() {
                o.set(
                    "audiodatarate",
                    self.audio_bytes as f64 * 8.0 / 1000.0 / secs,
                );
            }
            return Some(o);
        }
        None
    }

    /// What is known now, as FFmpeg's FLV muxer names it.
    fn object(&self) -> Amf0Object {
        let mut o = Amf0Object::new().with("duration", 0.0);
        if let Some((w, h)) = self.size {
            o.push("width", f64::from(w));
            o.push("height", f64::from(h));
        }
        if let Some(c) = self.video_codec {
            o.push("videocodecid", c);
        }
        if let Some((rate, channels)) = self.audio {
            o.push("audiosamplerate", f64::from(rate));
            o.push("audiosamplesize", 16.0);
            o.push("stereo", channels >= 2);
        }
        if let Some(c) = self.audio_codec {
            o.push("audiocodecid", c);
        }
        o.push("encoder", concat!("rtmpkit ", env!("CARGO_PKG_VERSION")));
        o
    }
}

/// A FourCC as the number E-RTMP's onMetaData carries.
fn fourcc_number(f: [u8; 4]) -> f64 {
    f64::from(u32::from_be_bytes(f))
}

/// The codec id and picture size of a video sequence header.
fn video_config(p: &[u8]) -> Option<(f64, Option<(u32, u32)>)> {
    let h = VideoTagHeader::parse(p).ok()?;
    let body = p.get(h.header_len..)?;
    if h.codec.is_avc() {
        let size = super::parse_avc_config(body).map(|i| (i.width, i.height));
        return Some((7.0, size));
    }
    let super::VideoCodec::FourCc(f) = h.codec else {
        return Some((0.0, None));
    };
    let size = match &f {
        b"hvc1" => super::parse_hevc_config(body).map(|i| (i.width, i.height)),
        b"av01" => super::parse_av1_config(body).map(|i| (i.width, i.height)),
        _ => None,
    };
    Some((fourcc_number(f), size))
}

/// The codec id, sampling rate and channels of an audio sequence header.
fn audio_config(p: &[u8]) -> Option<(f64, Option<(u32, u8)>)> {
    let h = AudioTagHeader::parse(p).ok()?;
    let body = p.get(h.header_len..)?;
    if h.codec.is_aac() {
        let a = super::parse_aac_config(body).map(|i| (i.sample_rate, i.channels));
        return Some((10.0, a));
    }
    match h.codec {
        super::AudioCodec::FourCc(f) if &f == b"Opus" => {
            let channels = body.get(9).copied();
            Some((fourcc_number(f), channels.map(|c| (48000, c))))
        }
        super::AudioCodec::FourCc(f) => Some((fourcc_number(f), None)),
        super::AudioCodec::Legacy(id) => Some((f64::from(id), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{AacPackager, H264Packager};

    #[test]
    fn metadata_before_the_first_frame_then_with_the_rates() {
        let sps = [
            0x67, 0x42, 0xc0, 0x0d, 0xda, 0x05, 0x07, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00,
            0x40, 0x00, 0x00, 0x0c, 0x83, 0xc5, 0x0a, 0xa8,
        ];
        let mut au = vec![0, 0, 0, 1];
        au.extend_from_slice(&sps);
        au.extend_from_slice(&[
            0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 0, 1, 0x65, 0x88, 0x84,
        ]);
        let mut v = H264Packager::new();
        let mut a = AacPackager::new();
        a.set_config(&[0x11, 0x90]).unwrap();
        let mut d = Describer::new();
        let mut first = a.package(0, &[0x21, 0]).unwrap();
        first.extend(v.package(0, 0, &au).unwrap());
        // Sequence headers say nothing yet; the first frame brings it all.
        let said: Vec<_> = first.iter().filter_map(|m| d.observe(m)).collect();
        assert_eq!(said.len(), 1);
        let o = &said[0];
        assert_eq!(o.get_number("width"), Some(320.0));
        assert_eq!(o.get_number("height"), Some(240.0));
        assert_eq!(o.get_number("videocodecid"), Some(7.0));
        assert_eq!(o.get_number("audiocodecid"), Some(10.0));
        assert_eq!(o.get_number("audiosamplerate"), Some(48000.0));
        let mut again = None;
        for i in 1..=60u32 {
            let p = [0, 0, 0, 1, 0x41, 0x9a, 0x02];
            for m in v.package(i * 40, i * 40, &p).unwrap() {
                again = again.or(d.observe(&m));
            }
        }
        let o = again.expect("the rates after two seconds");
        assert_eq!(o.get_number("framerate"), Some(25.0));
        assert!(o.get_number("videodatarate").is_some_and(|r| r > 0.0));
    }
}
