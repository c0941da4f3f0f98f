//! One rendition of a multitrack stream as a plain one-track stream.
//!
//! An encoder that sends a quality ladder (OBS's Enhanced Broadcasting,
//! FFmpeg 8+ with several video streams) puts each rung on its own video
//! track: track 0 without a wrapper, the others in E-RTMP v2 Multitrack
//! messages (`spec/enhanced-rtmp-v2.md` §1, "Multitrack"; FFmpeg and OBS
//! send OneTrack). Players that know one track (legacy RTMP, flv.js,
//! FFmpeg before 8) can play rung N once its messages are taken out of the
//! wrapper: H.264 becomes a legacy AVC tag (FLV E.4.3.1), other codecs keep
//! their Enhanced RTMP header without the wrapper, as for track 0. Audio
//! is track 0's, and metadata passes as it is.

use super::ex::ExHeader;
use super::message::{Media, MediaKind};
use bytes::{BufMut, Bytes, BytesMut};

/// Video PacketTypes (E-RTMP "Enhanced Video").
const SEQUENCE_START: u8 = 0;
const CODED_FRAMES: u8 = 1;
const SEQUENCE_END: u8 = 2;
const CODED_FRAMES_X: u8 = 3;
/// Audio PacketTypes (E-RTMP "Enhanced Audio").
const AUDIO_SEQUENCE_START: u8 = 0;
const AUDIO_CODED_FRAMES: u8 = 1;
/// Legacy FLV video CodecID of AVC.
const AVC: u8 = 7;
/// Legacy AAC audio byte: SoundFormat 10, 44 kHz, 16 bit, stereo (what
/// every AAC tag carries; the AudioSpecificConfig says the truth).
const AAC_BYTE: u8 = 0xaf;

/// Message `m` as rendition `video_track` sees it: `None` when the message
/// is not part of it (another track's video, an extra audio track).
///
/// A message that does not parse passes unchanged on track 0, and is left
/// out of the other renditions.
pub fn rendition(m: &Media, video_track: u8) -> Option<Media> {
    match m.kind {
        MediaKind::Metadata => Some(m.clone()),
        MediaKind::Video => one_track(m, video_track),
        MediaKind::Audio => one_track(m, 0),
    }
}

/// Audio track `track` of message `m` as a plain one-track audio message
/// (legacy AAC, or an Enhanced RTMP header without the wrapper); `None`
/// for any other message.
pub fn audio_rendition(m: &Media, track: u8) -> Option<Media> {
    (m.kind == MediaKind::Audio).then(|| one_track(m, track))?
}

/// Track `want` of audio or video message `m`, out of its wrapper.
fn one_track(m: &Media, want: u8) -> Option<Media> {
    let is_video = m.kind == MediaKind::Video;
    let p = &m.payload;
    let enhanced = p
        .first()
        .is_some_and(|b| if is_video { b & 0x80 != 0 } else { b >> 4 == 9 });
    if !enhanced {
        // Legacy: track 0.
        return (want == 0).then(|| m.clone());
    }
    let Ok(header) = ExHeader::parse(p, is_video) else {
        return (want == 0).then(|| m.clone());
    };
    if header.multitrack.is_none() {
        return (want == 0).then(|| m.clone());
    }
    let track = header
        .tracks(p)
        .map_while(Result::ok)
        .find(|t| t.id == want)?;
    let payload = if is_video {
        video_tag(
            header.frame_type.unwrap_or(1),
            header.packet_type,
            track.fourcc,
            track.payload,
        )?
    } else {
        audio_tag(header.packet_type, track.fourcc, track.payload)
    };
    Some(Media::new(m.kind, m.timestamp, payload))
}

/// A one-track video tag body.
fn video_tag(frame_type: u8, packet_type: u8, fourcc: [u8; 4], body: &[u8]) -> Option<Bytes> {
    let mut out = BytesMut::with_capacity(body.len() + 5);
    if &fourcc == b"avc1" {
        out.put_u8(frame_type << 4 | AVC);
        match packet_type {
            SEQUENCE_START => out.put_slice(&[0, 0, 0, 0]),
            // The body starts with the SI24 composition time.
            CODED_FRAMES => out.put_u8(1),
            CODED_FRAMES_X => out.put_slice(&[1, 0, 0, 0]),
            SEQUENCE_END => out.put_slice(&[2, 0, 0, 0]),
            _ => return None,
        }
    } else {
        out.put_u8(0x80 | (frame_type & 0x07) << 4 | packet_type);
        out.put_slice(&fourcc);
    }
    out.put_slice(body);
    Some(out.freeze())
}

/// A one-track audio tag body.
fn audio_tag(packet_type: u8, fourcc: [u8; 4], body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(body.len() + 5);
    if &fourcc == b"mp4a" && matches!(packet_type, AUDIO_SEQUENCE_START | AUDIO_CODED_FRAMES) {
        out.put_u8(AAC_BYTE);
        out.put_u8(packet_type);
    } else {
        out.put_u8(0x90 | packet_type);
        out.put_slice(&fourcc);
    }
    out.put_slice(body);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    /// A Multitrack OneTrack video message as FFmpeg sends it.
    fn wrapped(frame_type: u8, packet_type: u8, fourcc: &[u8; 4], id: u8, body: &[u8]) -> Media {
        let mut p = vec![0x80 | frame_type << 4 | 6, packet_type];
        p.extend_from_slice(fourcc);
        p.push(id);
        p.extend_from_slice(body);
        Media::video(Timestamp(40), Bytes::from(p))
    }

    #[test]
    fn h264_on_track_2_becomes_a_legacy_avc_tag() {
        let config = wrapped(1, SEQUENCE_START, b"avc1", 2, &[1, 0x64, 0, 0x1f]);
        let r = rendition(&config, 2).expect("track 2's config");
        assert_eq!(&r.payload[..], &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]);
        assert!(r.sequence_header && r.track.is_none());

        // CodedFrames: the composition time comes with the body.
        let key = wrapped(1, CODED_FRAMES, b"avc1", 2, &[0, 0, 40, 0, 0, 0, 1, 0x65]);
        let r = rendition(&key, 2).expect("track 2's keyframe");
        assert_eq!(&r.payload[..], &[0x17, 1, 0, 0, 40, 0, 0, 0, 1, 0x65]);
        assert!(r.keyframe, "a keyframe of the rendition starts its GOPs");
        assert_eq!(r.timestamp, Timestamp(40));

        // CodedFramesX: composition time 0.
        let inter = wrapped(2, CODED_FRAMES_X, b"avc1", 2, &[0, 0, 0, 1, 0x41]);
        let r = rendition(&inter, 2).expect("track 2's frame");
        assert_eq!(&r.payload[..], &[0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41]);
        assert!(!r.keyframe);

        assert_eq!(rendition(&key, 1), None, "another track's video");
        assert_eq!(rendition(&key, 0), None, "track 0 has no wrapper");
    }

    #[test]
    fn track_0_legacy_video_is_rendition_0_only_and_audio_0_is_everyones() {
        let video = Media::video(Timestamp(0), Bytes::from_static(&[0x17, 1, 0, 0, 0, 9]));
        assert_eq!(rendition(&video, 0), Some(video.clone()));
        assert_eq!(rendition(&video, 1), None);
        let audio = Media::audio(Timestamp(0), Bytes::from_static(&[0xaf, 1, 7]));
        assert_eq!(rendition(&audio, 1), Some(audio.clone()));
        let meta = Media::metadata(Timestamp(0), Bytes::from_static(&[2, 0, 0]));
        assert_eq!(rendition(&meta, 3), Some(meta.clone()));
        // An extra audio track is left out of every rendition.
        let mut p = vec![0x90 | 5, AUDIO_CODED_FRAMES];
        p.extend_from_slice(b"mp4a");
        p.extend_from_slice(&[1, 0x21, 0x10]);
        let extra = Media::audio(Timestamp(0), Bytes::from(p));
        assert_eq!(rendition(&extra, 0), None);
        assert_eq!(rendition(&extra, 1), None);
    }

    #[test]
    fn an_extra_audio_track_becomes_a_legacy_aac_tag() {
        let mut p = vec![0x90 | 5, AUDIO_CODED_FRAMES];
        p.extend_from_slice(b"mp4a");
        p.extend_from_slice(&[1, 0x21, 0x10]);
        let extra = Media::audio(Timestamp(20), Bytes::from(p));
        let r = audio_rendition(&extra, 1).expect("audio track 1");
        assert_eq!(&r.payload[..], &[0xaf, 1, 0x21, 0x10]);
        assert_eq!(audio_rendition(&extra, 0), None);
        let main = Media::audio(Timestamp(0), Bytes::from_static(&[0xaf, 1, 7]));
        assert_eq!(audio_rendition(&main, 0), Some(main.clone()));
        let video = Media::video(Timestamp(0), Bytes::from_static(&[0x17, 1, 0, 0, 0, 9]));
        assert_eq!(audio_rendition(&video, 0), None);
    }

    #[test]
    fn other_codecs_keep_their_enhanced_header_without_the_wrapper() {
        let m = wrapped(1, CODED_FRAMES, b"hvc1", 1, &[0, 0, 0, 9, 9]);
        let r = rendition(&m, 1).expect("track 1");
        assert_eq!(
            &r.payload[..],
            &[
                0x80 | 1 << 4 | CODED_FRAMES,
                b'h',
                b'v',
                b'c',
                b'1',
                0,
                0,
                0,
                9,
                9
            ]
        );
        assert!(r.keyframe && r.track.is_none());
    }

    #[test]
    fn many_tracks_in_one_message_give_the_one_asked_for() {
        // ManyTracks, one FourCC, each track with a UI24 size.
        let mut p = vec![0x80 | 2 << 4 | 6, 1 << 4 | CODED_FRAMES_X];
        p.extend_from_slice(b"avc1");
        p.extend_from_slice(&[1, 0, 0, 2, 0xaa, 0xbb]);
        p.extend_from_slice(&[2, 0, 0, 1, 0xcc]);
        let m = Media::video(Timestamp(0), Bytes::from(p));
        let r = rendition(&m, 2).expect("track 2");
        assert_eq!(&r.payload[..], &[0x27, 1, 0, 0, 0, 0xcc]);
        assert_eq!(rendition(&m, 3), None);
        // Cut short: nothing, and no panic.
        let short = Media::video(Timestamp(0), m.payload.slice(..m.payload.len() - 3));
        assert_eq!(rendition(&short, 2), None);
    }
}
