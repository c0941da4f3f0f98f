//! OBS's legacy VOD track: `additionalMedia` data messages become
//! Enhanced RTMP multitrack audio.
//!
//! OBS 29 (and OBS 30 before 30.2) sends its "Twitch VOD Track", a second
//! audio track for the archive, outside the audio messages
//! (`plugins/obs-outputs/flv-mux.c`):
//! - once, `@setDataFrame onExpectAdditionalMedia {processingIntents,
//!   additionalMedia: {stream0: {type: 8, mediaLabels}}, defaultMedia}`;
//! - then each audio packet of the track as a data message (type 18) with
//!   the packet's timestamp: `"additionalMedia" {id: "stream0", media:
//!   <AMF3 ByteArray>}`, the ByteArray an FLV audio tag body (`0xAF`, then
//!   0 for the AAC sequence header or 1 for a frame, then the data).
//!
//! OBS 30.2 and later send the same track as E-RTMP multitrack audio
//! (Multitrack, OneTrack, `mp4a`, track 1). That is what this turns the
//! old form into, so players and recorders see one kind of extra track.

use crate::amf0::Amf0Value;
use crate::message::DataMessage;
use bytes::{BufMut, Bytes, BytesMut};

/// The handler name of a VOD track packet.
pub const ADDITIONAL_MEDIA: &str = "additionalMedia";
/// The data OBS announces its VOD track with (after `@setDataFrame`).
pub const ON_EXPECT_ADDITIONAL_MEDIA: &str = "onExpectAdditionalMedia";

/// E-RTMP audio: SoundFormat 9 (ExHeader) with PacketType 5 (Multitrack).
const EX_AUDIO_MULTITRACK: u8 = 0x95;
/// AvMultitrackType OneTrack (high nibble 0) with PacketType SequenceStart
/// (0) or CodedFrames (1).
const ONE_TRACK_SEQUENCE_START: u8 = 0x00;
const ONE_TRACK_CODED_FRAMES: u8 = 0x01;

/// The E-RTMP multitrack audio payload for one `additionalMedia` data
/// message: the track of `id: "streamN"` becomes track N + 1 (track 0 is
/// the main audio). `Ok(None)` when the message is not `additionalMedia`;
/// an error names what is wrong with one that is.
pub fn additional_media_audio(data: &DataMessage) -> Result<Option<Bytes>, String> {
    if data.handler() != Some(ADDITIONAL_MEDIA) {
        return Ok(None);
    }
    let o = data
        .values
        .get(1)
        .and_then(Amf0Value::as_object)
        .ok_or("additionalMedia without an object")?;
    let id = o.get_str("id").ok_or("additionalMedia without an id")?;
    let track = id
        .strip_prefix("stream")
        .and_then(|n| n.parse::<u8>().ok())
        .and_then(|n| n.checked_add(1))
        .ok_or_else(|| format!("additionalMedia id {id:?} is not streamN"))?;
    let body = match o.get("media") {
        Some(Amf0Value::Avmplus(v)) => v.as_bytes(),
        _ => None,
    }
    .ok_or("additionalMedia without an AMF3 ByteArray in media")?;
    legacy_audio_as_track(body, track).map(Some)
}

/// A legacy FLV audio tag body (AAC or MP3) as E-RTMP multitrack audio
/// of track `track`.
pub(crate) fn legacy_audio_as_track(body: &[u8], track: u8) -> Result<Bytes, String> {
    let b0 = *body.first().ok_or("empty audio tag")?;
    let (fourcc, packet_type, data) = match b0 >> 4 {
        10 => {
            let kind = *body.get(1).ok_or("aac audio tag without packet type")?;
            let packet = match kind {
                0 => ONE_TRACK_SEQUENCE_START,
                1 => ONE_TRACK_CODED_FRAMES,
                x => return Err(format!("aac packet type {x}")),
            };
            (b"mp4a", packet, &body[2..])
        }
        2 => (b".mp3", ONE_TRACK_CODED_FRAMES, &body[1..]),
        f => return Err(format!("sound format {f} has no E-RTMP form here")),
    };
    let mut out = BytesMut::with_capacity(7 + data.len());
    out.put_u8(EX_AUDIO_MULTITRACK);
    out.put_u8(packet_type);
    out.put_slice(fourcc);
    out.put_u8(track);
    out.put_slice(data);
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amf0::Amf0Object;
    use crate::amf3::Amf3Value;
    use crate::media::AudioTagHeader;

    fn obs_packet(id: &str, body: &[u8]) -> DataMessage {
        let o = Amf0Object::new().with("id", id).with(
            "media",
            Amf0Value::Avmplus(Amf3Value::ByteArray(body.to_vec())),
        );
        DataMessage {
            values: vec![ADDITIONAL_MEDIA.into(), Amf0Value::Object(o)],
        }
    }

    #[test]
    fn obs_aac_packets_become_track_1() {
        let seq = additional_media_audio(&obs_packet("stream0", &[0xaf, 0, 0x12, 0x10]))
            .unwrap()
            .unwrap();
        assert_eq!(&seq[..], b"\x95\x00mp4a\x01\x12\x10");
        let h = AudioTagHeader::parse(&seq).unwrap();
        assert_eq!((h.track, h.sequence_header), (Some(1), true));
        let frame = additional_media_audio(&obs_packet("stream0", &[0xaf, 1, 0x21, 0x00]))
            .unwrap()
            .unwrap();
        let h = AudioTagHeader::parse(&frame).unwrap();
        assert_eq!((h.track, h.coded, h.codec.is_aac()), (Some(1), true, true));
        assert_eq!(&frame[7..], &[0x21, 0x00]);
        // Round trip through the wire form.
        let msg = crate::message::Message::data(obs_packet("stream1", &[0xaf, 1, 9]).values);
        let back = DataMessage::decode(&msg.payload()).unwrap();
        let t = additional_media_audio(&back).unwrap().unwrap();
        assert_eq!(t[6], 2, "stream1 is track 2");
    }

    #[test]
    fn other_data_and_broken_packets() {
        let meta = DataMessage::on_metadata(Amf0Object::new());
        assert_eq!(additional_media_audio(&meta), Ok(None));
        assert!(additional_media_audio(&obs_packet("vod", &[0xaf, 1])).is_err());
        assert!(additional_media_audio(&obs_packet("stream0", &[])).is_err());
        assert!(additional_media_audio(&obs_packet("stream0", &[0xaf])).is_err());
        assert!(additional_media_audio(&obs_packet("stream255", &[0xaf, 1])).is_err());
        assert!(additional_media_audio(&obs_packet("stream0", &[0x6f, 1])).is_err());
        let no_media = DataMessage {
            values: vec![ADDITIONAL_MEDIA.into()],
        };
        assert!(additional_media_audio(&no_media).is_err());
    }
}
