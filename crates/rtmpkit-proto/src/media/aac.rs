//! AAC and Opus frames as encoders give them, to FLV audio tag bodies.
//!
//! AAC goes out as legacy FLV audio tags (FLV E.4.2.1, `0xAF`): a sequence
//! header holding the AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1), then
//! one tag per raw frame. An encoder gives either raw frames with the
//! config once, or ADTS frames (ISO/IEC 14496-3 §1.A.2), whose 7 or 9 byte
//! header carries what the config says. Opus goes out in Enhanced RTMP
//! audio tags (`Opus` FourCC): a SequenceStart holding the ID header
//! (RFC 7845 §5.1), then one CodedFrames tag per packet.

use super::frame_error::FrameError;
use super::message::Media;
use crate::Timestamp;
use bytes::{BufMut, Bytes, BytesMut};

/// The sampling rates an ADTS header or a short AudioSpecificConfig
/// indexes (ISO/IEC 14496-3 Table 1.18).
const RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Samples in one AAC frame (1024 for AAC LC; HE-AAC's core too).
const SAMPLES_PER_FRAME: u64 = 1024;

/// What an ADTS header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdtsHeader {
    /// Audio object type (profile + 1: 2 = LC).
    pub object_type: u8,
    /// Sampling frequency index into ISO/IEC 14496-3 Table 1.18.
    pub rate_index: u8,
    /// Channel configuration.
    pub channels: u8,
    /// 7 bytes, or 9 with a CRC.
    pub header_len: usize,
    /// The whole frame, header included.
    pub frame_len: usize,
}

impl AdtsHeader {
    /// The sampling rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        RATES[usize::from(self.rate_index)]
    }

    /// The AudioSpecificConfig this header stands for.
    pub fn config(&self) -> Bytes {
        aac_config(self.object_type, self.rate_index, self.channels)
    }
}

/// Whether `data` begins with the ADTS syncword.
pub fn is_adts(data: &[u8]) -> bool {
    data.len() >= 2 && data[0] == 0xff && data[1] & 0xf6 == 0xf0
}

/// Parses the ADTS header at the start of `data`, checking that its frame
/// fits in `data`.
pub fn parse_adts(data: &[u8]) -> Result<AdtsHeader, FrameError> {
    if data.len() < 7 {
        return Err(FrameError::BadAdts("shorter than a header"));
    }
    if !is_adts(data) {
        return Err(FrameError::BadAdts("no syncword"));
    }
    let header_len = if data[1] & 1 == 1 { 7 } else { 9 };
    let object_type = (data[2] >> 6) + 1;
    let rate_index = (data[2] >> 2) & 0x0f;
    if usize::from(rate_index) >= RATES.len() {
        return Err(FrameError::BadAdts("a reserved sampling frequency index"));
    }
    let channels = ((data[2] & 1) << 2) | (data[3] >> 6);
    let frame_len =
        (usize::from(data[3] & 3) << 11) | (usize::from(data[4]) << 3) | usize::from(data[5] >> 5);
    if data[6] & 3 != 0 {
        return Err(FrameError::BadAdts("more than one raw data block"));
    }
    if frame_len <= header_len || frame_len > data.len() {
        return Err(FrameError::BadAdts("the frame length does not fit"));
    }
    Ok(AdtsHeader {
        object_type,
        rate_index,
        channels,
        header_len,
        frame_len,
    })
}

/// The ADTS frames of `data` in order: each header and its raw frame.
/// Stops at the first that does not parse, with its error.
pub fn adts_frames(data: &[u8]) -> impl Iterator<Item = Result<(AdtsHeader, &[u8]), FrameError>> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let data = rest.take().filter(|d| !d.is_empty())?;
        match parse_adts(data) {
            Ok(h) => {
                rest = Some(&data[h.frame_len..]);
                Some(Ok((h, &data[h.header_len..h.frame_len])))
            }
            Err(e) => Some(Err(e)),
        }
    })
}

/// A two-byte AudioSpecificConfig: object type, sampling frequency index,
/// channel configuration (ISO/IEC 14496-3 §1.6.2.1).
pub fn aac_config(object_type: u8, rate_index: u8, channels: u8) -> Bytes {
    let ot = object_type & 0x1f;
    let ri = rate_index & 0x0f;
    Bytes::copy_from_slice(&[
        (ot << 3) | (ri >> 1),
        ((ri & 1) << 7) | ((channels & 0x0f) << 3),
    ])
}

/// Turns AAC frames into FLV audio tag bodies, sending the sequence
/// header before the first frame and again when the config changes.
#[derive(Debug, Default, Clone)]
pub struct AacPackager {
    config: Option<Bytes>,
    sent: Option<Bytes>,
}

impl AacPackager {
    /// A packager that has sent nothing yet.
    pub fn new() -> Self {
        AacPackager::default()
    }

    /// The AudioSpecificConfig for raw frames from now on.
    pub fn set_config(&mut self, asc: &[u8]) -> Result<(), FrameError> {
        super::parse_aac_config(asc).ok_or(FrameError::BadAudioConfig)?;
        self.config = Some(Bytes::copy_from_slice(asc));
        Ok(())
    }

    /// The config in use, once there is one.
    pub fn config(&self) -> Option<&Bytes> {
        self.config.as_ref()
    }

    /// The audio messages for `data` presented at `pts` (ms): one raw
    /// frame, or one or more ADTS frames (the second and later at `pts`
    /// plus 1024 samples each); a sequence header first when the config
    /// is new.
    pub fn package(&mut self, pts: u32, data: &[u8]) -> Result<Vec<Media>, FrameError> {
        if data.is_empty() {
            return Err(FrameError::Empty);
        }
        let mut out = Vec::with_capacity(2);
        if !is_adts(data) {
            let Some(config) = self.config.clone() else {
                return Err(FrameError::NoAudioConfig);
            };
            self.push_frame(&mut out, Timestamp(pts), &config, data);
            return Ok(out);
        }
        let frames: Vec<_> = adts_frames(data).collect::<Result<_, _>>()?;
        for (i, (h, raw)) in frames.iter().enumerate() {
            let offset = i as u64 * SAMPLES_PER_FRAME * 1000 / u64::from(h.sample_rate());
            let config = h.config();
            self.config = Some(config.clone());
            let ts = Timestamp(pts.wrapping_add(offset as u32));
            self.push_frame(&mut out, ts, &config, raw);
        }
        Ok(out)
    }

    fn push_frame(&mut self, out: &mut Vec<Media>, ts: Timestamp, config: &Bytes, raw: &[u8]) {
        if self.sent.as_ref() != Some(config) {
            let mut seq = BytesMut::with_capacity(config.len() + 2);
            seq.put_slice(&[0xaf, 0]);
            seq.put_slice(config);
            out.push(Media::audio(ts, seq.freeze()));
            self.sent = Some(config.clone());
        }
        let mut tag = BytesMut::with_capacity(raw.len() + 2);
        tag.put_slice(&[0xaf, 1]);
        tag.put_slice(raw);
        out.push(Media::audio(ts, tag.freeze()));
    }
}

/// The Enhanced RTMP audio header byte: SoundFormat 9 (ExHeader) and the
/// AudioPacketType.
const EX_AUDIO: u8 = 9 << 4;
const SEQUENCE_START: u8 = 0;
const CODED_FRAMES: u8 = 1;

/// An Opus ID header (RFC 7845 §5.1) for `channels` channels, mapping
/// family 0, with `pre_skip` samples and the input rate 48 kHz.
pub fn opus_head(channels: u8, pre_skip: u16) -> Bytes {
    let mut h = BytesMut::with_capacity(19);
    h.put_slice(b"OpusHead");
    h.put_u8(1);
    h.put_u8(channels);
    h.put_u16_le(pre_skip);
    h.put_u32_le(48000);
    h.put_i16_le(0);
    h.put_u8(0);
    h.freeze()
}

/// Turns Opus packets into Enhanced RTMP audio tag bodies, sending the ID
/// header as a SequenceStart first.
#[derive(Debug, Default, Clone)]
pub struct OpusPackager {
    head: Option<Bytes>,
    sent: bool,
}

impl OpusPackager {
    /// A packager that has sent nothing yet.
    pub fn new() -> Self {
        OpusPackager::default()
    }

    /// The ID header to send (a new one goes out before the next packet;
    /// the one in use again changes nothing).
    /// Without one, the first packet's TOC byte says mono or stereo, and
    /// the pre-skip is 0.
    pub fn set_head(&mut self, head: &[u8]) -> Result<(), FrameError> {
        if head.len() < 19 || &head[..8] != b"OpusHead" || head[9] == 0 {
            return Err(FrameError::NotOpus(
                "an ID header starts \"OpusHead\", 19 bytes or more",
            ));
        }
        if self.head.as_deref() != Some(head) {
            self.head = Some(Bytes::copy_from_slice(head));
            self.sent = false;
        }
        Ok(())
    }

    /// The audio messages for one Opus packet presented at `pts` (ms).
    pub fn package(&mut self, pts: u32, packet: &[u8]) -> Result<Vec<Media>, FrameError> {
        let Some(&toc) = packet.first() else {
            return Err(FrameError::Empty);
        };
        // RFC 6716 §3.2.5: a packet is at most 120 ms of 1275-byte frames.
        if packet.len() > 6 * 1275 + 7 {
            return Err(FrameError::NotOpus("longer than any Opus packet"));
        }
        let ts = Timestamp(pts);
        let mut out = Vec::with_capacity(2);
        if !self.sent {
            let head = self
                .head
                .get_or_insert_with(|| opus_head(if toc & 4 != 0 { 2 } else { 1 }, 0));
            out.push(Media::audio(ts, ex_audio(SEQUENCE_START, head)));
            self.sent = true;
        }
        out.push(Media::audio(ts, ex_audio(CODED_FRAMES, packet)));
        Ok(out)
    }
}

/// An Enhanced RTMP `Opus` audio tag body of `packet_type`.
fn ex_audio(packet_type: u8, body: &[u8]) -> Bytes {
    let mut tag = BytesMut::with_capacity(body.len() + 5);
    tag.put_u8(EX_AUDIO | packet_type);
    tag.put_slice(b"Opus");
    tag.put_slice(body);
    tag.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{AudioCodec, AudioTagHeader};

    /// An ADTS frame of `raw` (LC, 48 kHz, stereo), as ffmpeg's adts
    /// muxer writes it.
    fn adts(raw: &[u8]) -> Vec<u8> {
        let len = raw.len() + 7;
        let mut f = vec![
            0xff,
            0xf1,
            (1 << 6) | (3 << 2),
            (2 << 6) | ((len >> 11) as u8 & 3),
            (len >> 3) as u8,
            ((len as u8 & 7) << 5) | 0x1f,
            0xfc,
        ];
        f.extend_from_slice(raw);
        f
    }

    #[test]
    fn adts_frames_give_the_config_once_and_the_raw_frames() {
        let mut data = adts(&[0x21, 0x10, 0x04]);
        data.extend(adts(&[0x21, 0x1b]));
        let mut p = AacPackager::new();
        let out = p.package(1000, &data).unwrap();
        assert_eq!(out.len(), 3);
        assert!(out[0].sequence_header);
        assert_eq!(&out[0].payload[..], &[0xaf, 0, 0x11, 0x90]);
        let info = crate::media::parse_aac_config(&out[0].payload[2..]).unwrap();
        assert_eq!(
            (info.object_type, info.sample_rate, info.channels),
            (2, 48000, 2)
        );
        assert_eq!(&out[1].payload[..], &[0xaf, 1, 0x21, 0x10, 0x04]);
        assert_eq!(out[1].timestamp, Timestamp(1000));
        assert_eq!(&out[2].payload[..], &[0xaf, 1, 0x21, 0x1b]);
        // 1024 samples at 48 kHz.
        assert_eq!(out[2].timestamp, Timestamp(1021));
        // The same config is not sent again; raw frames now work too.
        let next = p.package(1042, &[0x21, 0x00]).unwrap();
        assert_eq!(next.len(), 1);
        assert!(!next[0].sequence_header);
    }

    #[test]
    fn raw_frames_need_a_config_and_bad_adts_is_named() {
        let mut p = AacPackager::new();
        assert_eq!(p.package(0, &[0x21, 0]), Err(FrameError::NoAudioConfig));
        assert_eq!(p.set_config(&[0x12]), Err(FrameError::BadAudioConfig));
        p.set_config(&[0x12, 0x10]).unwrap();
        let out = p.package(0, &[0x21, 0]).unwrap();
        assert_eq!(&out[0].payload[..], &[0xaf, 0, 0x12, 0x10]);
        let mut cut = adts(&[1, 2, 3]);
        cut.pop();
        assert!(matches!(p.package(0, &cut), Err(FrameError::BadAdts(_))));
        assert!(matches!(parse_adts(&cut[..5]), Err(FrameError::BadAdts(_))));
        assert_eq!(p.package(0, &[]), Err(FrameError::Empty));
    }

    #[test]
    fn opus_packets_get_an_id_header_first() {
        let mut p = OpusPackager::new();
        // TOC: config 31 (CELT FB 20 ms), stereo, one frame.
        let out = p.package(20, &[0xfc, 1, 2, 3]).unwrap();
        assert_eq!(out.len(), 2);
        let h = AudioTagHeader::parse(&out[0].payload).unwrap();
        assert!(h.sequence_header);
        assert!(h.codec.is_opus());
        assert_eq!(&out[0].payload[5..13], b"OpusHead");
        assert_eq!(out[0].payload[14], 2);
        let f = AudioTagHeader::parse(&out[1].payload).unwrap();
        assert!(!f.sequence_header && f.codec == AudioCodec::FourCc(*b"Opus"));
        assert_eq!(&out[1].payload[5..], &[0xfc, 1, 2, 3]);
        assert_eq!(p.package(40, &[0xfc]).unwrap().len(), 1);
        assert!(p.set_head(b"OpusTags").is_err());
        p.set_head(&opus_head(1, 312)).unwrap();
        assert_eq!(p.package(60, &[0xf8]).unwrap().len(), 2);
        p.set_head(&opus_head(1, 312)).unwrap();
        assert_eq!(
            p.package(80, &[0xf8]).unwrap().len(),
            1,
            "the same head again"
        );
    }
}
