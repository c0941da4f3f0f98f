//! From a media message (an FLV tag body, legacy or Enhanced RTMP) to the
//! units an MP4 writer takes: each track's codec configuration and its
//! coded frames, with the FLV headers taken off. A multitrack message
//! gives one unit per track it carries.

use bytes::Bytes;
use rtmpkit_proto::media::{ExHeader, Media, MediaKind};

/// A track of the stream: audio or video, and its Enhanced RTMP track id
/// (0 without the multitrack wrapper).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackKey {
    /// Video sorts first.
    pub audio: bool,
    pub id: u8,
}

/// One unit of one track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unit {
    /// The codec configuration (a sequence header / SequenceStart): the
    /// FourCC (legacy AVC is `avc1`, AAC `mp4a`) and its body.
    Config {
        key: TrackKey,
        fourcc: [u8; 4],
        body: Bytes,
    },
    /// A coded frame: decode time (ms), composition offset (ms), whether
    /// it is a sync sample, and the codec data (NAL units with their
    /// lengths, OBUs, a VP9 frame, a raw AAC or Opus frame).
    Frame {
        key: TrackKey,
        dts: u32,
        cts: i32,
        keyframe: bool,
        data: Bytes,
    },
}

/// Legacy FLV video codec id of AVC, and HEVC under the id SRS uses.
const LEGACY_AVC: u8 = 7;
const LEGACY_HEVC: u8 = 12;
/// Legacy FLV SoundFormat of AAC, and the Enhanced RTMP marker.
const LEGACY_AAC: u8 = 10;
const EX_AUDIO: u8 = 9;

/// The units of `m`, appended to `out`. Metadata, codecs the writer does
/// not know and anything malformed give none.
pub fn demux(m: &Media, out: &mut Vec<Unit>) {
    let p = &m.payload;
    let Some(&b0) = p.first() else { return };
    let dts = m.timestamp.0;
    match m.kind {
        MediaKind::Metadata => {}
        MediaKind::Video if b0 & 0x80 != 0 => enhanced(m, true, out),
        MediaKind::Video => {
            let codec = b0 & 0x0f;
            let fourcc = match codec {
                LEGACY_AVC => *b"avc1",
                LEGACY_HEVC => *b"hvc1",
                _ => return,
            };
            let (Some(&kind), Some(c)) = (p.get(1), p.get(2..5)) else {
                return;
            };
            let key = TrackKey {
                audio: false,
                id: 0,
            };
            let body = p.slice(5..);
            match kind {
                0 => out.push(Unit::Config { key, fourcc, body }),
                1 if !body.is_empty() => out.push(Unit::Frame {
                    key,
                    dts,
                    cts: si24(c),
                    keyframe: b0 >> 4 == 1,
                    data: body,
                }),
                _ => {}
            }
        }
        MediaKind::Audio if b0 >> 4 == EX_AUDIO => enhanced(m, false, out),
        MediaKind::Audio if b0 >> 4 == LEGACY_AAC => {
            let Some(&kind) = p.get(1) else { return };
            let key = TrackKey { audio: true, id: 0 };
            let body = p.slice(2..);
            match kind {
                0 => out.push(Unit::Config {
                    key,
                    fourcc: *b"mp4a",
                    body,
                }),
                1 if !body.is_empty() => out.push(Unit::Frame {
                    key,
                    dts,
                    cts: 0,
                    keyframe: true,
                    data: body,
                }),
                _ => {}
            }
        }
        MediaKind::Audio => {}
    }
}

/// An Enhanced RTMP message: every track it carries.
fn enhanced(m: &Media, video: bool, out: &mut Vec<Unit>) {
    let p = &m.payload;
    let Ok(ex) = ExHeader::parse(p, video) else {
        return;
    };
    if ex.command.is_some() {
        return;
    }
    let keyframe = !video || ex.frame_type == Some(1);
    for track in ex.tracks(p) {
        let Ok(t) = track else { return };
        let key = TrackKey {
            audio: !video,
            id: t.id,
        };
        let body = p.slice_ref(t.payload);
        match ex.packet_type {
            0 => out.push(Unit::Config {
                key,
                fourcc: t.fourcc,
                body,
            }),
            // CodedFrames (video CodedFramesX too): avc1 / hvc1 / vvc1
            // CodedFrames start with the SI24 cts, other codecs have none.
            1 | 3 if video || ex.packet_type == 1 => {
                let with_cts = video
                    && ex.packet_type == 1
                    && matches!(&t.fourcc, b"avc1" | b"hvc1" | b"vvc1");
                let (cts, data) = match with_cts {
                    true if body.len() > 3 => (si24(&body[..3]), body.slice(3..)),
                    true => continue,
                    false => (0, body),
                };
                if !data.is_empty() {
                    out.push(Unit::Frame {
                        key,
                        dts: m.timestamp.0,
                        cts,
                        keyframe,
                        data,
                    });
                }
            }
            _ => {}
        }
    }
}

fn si24(b: &[u8]) -> i32 {
    let v = i32::from(b[0]) << 16 | i32::from(b[1]) << 8 | i32::from(b[2]);
    (v << 8) >> 8
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtmpkit_proto::Timestamp;

    fn units(m: &Media) -> Vec<Unit> {
        let mut v = Vec::new();
        demux(m, &mut v);
        v
    }

    #[test]
    fn legacy_avc_and_aac() {
        let seq = Media::video(Timestamp(0), Bytes::from_static(b"\x17\x00\x00\x00\x00REC"));
        assert!(
            matches!(&units(&seq)[..], [Unit::Config { fourcc, body, .. }] if fourcc == b"avc1" && &body[..] == b"REC")
        );
        let key = Media::video(
            Timestamp(40),
            Bytes::from_static(b"\x17\x01\x00\x00\x50NAL"),
        );
        assert!(
            matches!(&units(&key)[..], [Unit::Frame { dts: 40, cts: 80, keyframe: true, data, .. }] if &data[..] == b"NAL")
        );
        let inter = Media::video(
            Timestamp(80),
            Bytes::from_static(b"\x27\x01\xff\xff\xffNAL"),
        );
        assert!(matches!(
            &units(&inter)[..],
            [Unit::Frame {
                cts: -1,
                keyframe: false,
                ..
            }]
        ));
        let asc = Media::audio(Timestamp(0), Bytes::from_static(b"\xaf\x00\x12\x10"));
        assert!(
            matches!(&units(&asc)[..], [Unit::Config { key: TrackKey { audio: true, id: 0 }, fourcc, .. }] if fourcc == b"mp4a")
        );
        let raw = Media::audio(Timestamp(23), Bytes::from_static(b"\xaf\x01AAC"));
        assert!(matches!(
            &units(&raw)[..],
            [Unit::Frame {
                dts: 23,
                keyframe: true,
                ..
            }]
        ));
        // MP3 and other legacy codecs: nothing.
        assert!(units(&Media::audio(Timestamp(0), Bytes::from_static(b"\x2fMP3"))).is_empty());
        assert!(units(&Media::video(Timestamp(0), Bytes::from_static(b"\x12VP6"))).is_empty());
    }

    #[test]
    fn enhanced_tracks() {
        // av01 CodedFrames, key: no cts.
        let av1 = Media::video(Timestamp(5), Bytes::from_static(b"\x91av01OBU"));
        assert!(
            matches!(&units(&av1)[..], [Unit::Frame { cts: 0, keyframe: true, data, .. }] if &data[..] == b"OBU")
        );
        // hvc1 CodedFrames, inter: SI24 cts first.
        let hevc = Media::video(Timestamp(5), Bytes::from_static(b"\xa1hvc1\x00\x00\x28NAL"));
        assert!(matches!(
            &units(&hevc)[..],
            [Unit::Frame {
                cts: 40,
                keyframe: false,
                ..
            }]
        ));
        // hvc1 CodedFramesX: no cts.
        let x = Media::video(Timestamp(5), Bytes::from_static(b"\x93hvc1NAL"));
        assert!(
            matches!(&units(&x)[..], [Unit::Frame { cts: 0, data, .. }] if &data[..] == b"NAL")
        );
        // Multitrack audio, ManyTracks of mp4a: tracks 0 and 1.
        let many = Media::audio(
            Timestamp(7),
            Bytes::from_static(b"\x95\x11mp4a\x00\x00\x00\x02AA\x01\x00\x00\x01B"),
        );
        let u = units(&many);
        assert_eq!(u.len(), 2);
        assert!(
            matches!(&u[1], Unit::Frame { key: TrackKey { audio: true, id: 1 }, data, .. } if &data[..] == b"B")
        );
        // A video command frame and a cut-short header: nothing.
        assert!(units(&Media::video(Timestamp(0), Bytes::from_static(b"\xd0\x00"))).is_empty());
        assert!(units(&Media::video(Timestamp(0), Bytes::from_static(b"\x90av"))).is_empty());
    }
}
