//! Fragmented MP4 (ISO/IEC 14496-12, CMAF): the init segment (`ftyp` +
//! `moov`) and one fragment (`moof` + `mdat`) per LL-HLS part, for H.264
//! (`avc1` + `avcC`) or HEVC (`hvc1` + `hvcC`, ISO/IEC 14496-15) video and
//! AAC (`mp4a` + `esds`) or Opus (`Opus` + `dOps`, the Opus-in-ISOBMFF
//! mapping) audio. Timescale: ms, as FLV timestamps are.

use bytes::{BufMut, Bytes, BytesMut};
use rtmpkit_proto::media::{
    AudioTagHeader, VideoTagHeader, parse_aac_config, parse_avc_config, parse_hevc_config,
};

/// Track ids in the init segment and fragments.
pub const VIDEO: u32 = 1;
pub const AUDIO: u32 = 2;
const TIMESCALE: u32 = 1000;

/// One sample of a fragment.
#[derive(Debug, Clone)]
pub struct Sample {
    pub duration: u32,
    /// Presentation minus decode time (H.264 composition offset).
    pub cts: i32,
    pub keyframe: bool,
    pub data: Bytes,
}

/// Writes a box: size, type, then what `body` puts.
fn boxed(out: &mut BytesMut, kind: &[u8; 4], body: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_u32(0);
    out.put_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// A full box: version and flags first.
fn full(
    out: &mut BytesMut,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut BytesMut),
) {
    boxed(out, kind, |o| {
        o.put_u32((u32::from(version) << 24) | flags);
        body(o);
    });
}

const MATRIX: [u32; 9] = [0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x4000_0000];

/// The video sample entry: its type and configuration box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoEntry {
    /// AVCDecoderConfigurationRecord.
    Avc(Bytes),
    /// HEVCDecoderConfigurationRecord.
    Hevc(Bytes),
}

/// The audio sample entry: its type and configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioEntry {
    /// AudioSpecificConfig.
    Aac(Bytes),
    /// `dOps` body, made from the Opus ID header.
    Opus(Bytes),
}

/// The codecs of a stream, from its sequence headers.
#[derive(Debug, Clone)]
pub struct Tracks {
    /// Sample entry and picture size.
    pub video: Option<(VideoEntry, u32, u32)>,
    /// Sample entry, sample rate, channels.
    pub audio: Option<(AudioEntry, u32, u8)>,
}

impl Tracks {
    /// From the FLV bodies of the sequence headers, legacy or Enhanced
    /// RTMP: H.264 or HEVC, AAC or Opus. Other codecs are left out.
    pub fn from_headers(video: Option<&Bytes>, audio: Option<&Bytes>) -> Tracks {
        let video = video.and_then(|v| {
            let h = VideoTagHeader::parse(v).ok()?;
            let rec = v.slice(h.header_len.min(v.len())..);
            if h.codec.is_avc() {
                let info = parse_avc_config(&rec)?;
                Some((VideoEntry::Avc(rec), info.width, info.height))
            } else if h.codec.is_hevc() {
                let info = parse_hevc_config(&rec)?;
                Some((VideoEntry::Hevc(rec), info.width, info.height))
            } else {
                None
            }
        });
        let audio = audio.and_then(|a| {
            let h = AudioTagHeader::parse(a).ok()?;
            let conf = a.slice(h.header_len.min(a.len())..);
            if h.codec.is_aac() {
                let info = parse_aac_config(&conf)?;
                Some((AudioEntry::Aac(conf), info.sample_rate, info.channels))
            } else if h.codec.is_opus() {
                let (dops, channels) = opus_dops(&conf)?;
                Some((AudioEntry::Opus(dops), 48_000, channels))
            } else {
                None
            }
        });
        Tracks { video, audio }
    }

    /// `ftyp` + `moov`.
    pub fn init_segment(&self) -> Bytes {
        let mut o = BytesMut::with_capacity(1024);
        boxed(&mut o, b"ftyp", |o| {
            o.put_slice(b"iso6");
            o.put_u32(0);
            for brand in [b"iso6", b"cmfc", b"mp41"] {
                o.put_slice(brand);
            }
        });
        boxed(&mut o, b"moov", |o| {
            full(o, b"mvhd", 0, 0, |o| {
                o.put_u32(0); // creation
                o.put_u32(0); // modification
                o.put_u32(TIMESCALE);
                o.put_u32(0); // duration: live
                o.put_u32(0x0001_0000); // rate 1.0
                o.put_u16(0x0100); // volume 1.0
                o.put_bytes(0, 10);
                MATRIX.iter().for_each(|m| o.put_u32(*m));
                o.put_bytes(0, 24);
                o.put_u32(AUDIO + 1); // next track id
            });
            if let Some((entry, w, h)) = &self.video {
                trak(o, VIDEO, (*w, *h), |o| {
                    let (kind, conf, rec) = match entry {
                        VideoEntry::Avc(r) => (b"avc1", b"avcC", r),
                        VideoEntry::Hevc(r) => (b"hvc1", b"hvcC", r),
                    };
                    boxed(o, kind, |o| {
                        o.put_bytes(0, 6);
                        o.put_u16(1); // data reference index
                        o.put_bytes(0, 16);
                        o.put_u16(*w as u16);
                        o.put_u16(*h as u16);
                        o.put_u32(0x0048_0000); // 72 dpi
                        o.put_u32(0x0048_0000);
                        o.put_u32(0);
                        o.put_u16(1); // frames per sample
                        o.put_bytes(0, 32); // compressor name
                        o.put_u16(0x18); // depth
                        o.put_i16(-1);
                        boxed(o, conf, |o| o.put_slice(rec));
                    });
                });
            }
            if let Some((entry, rate, channels)) = &self.audio {
                trak(o, AUDIO, (0, 0), |o| {
                    let kind = match entry {
                        AudioEntry::Aac(_) => b"mp4a",
                        AudioEntry::Opus(_) => b"Opus",
                    };
                    boxed(o, kind, |o| {
                        o.put_bytes(0, 6);
                        o.put_u16(1);
                        o.put_bytes(0, 8);
                        o.put_u16(u16::from(*channels));
                        o.put_u16(16);
                        o.put_u32(0);
                        o.put_u32(rate.min(&65535) << 16);
                        match entry {
                            AudioEntry::Aac(asc) => esds(o, asc),
                            AudioEntry::Opus(dops) => boxed(o, b"dOps", |o| o.put_slice(dops)),
                        }
                    });
                });
            }
            boxed(o, b"mvex", |o| {
                for id in self.ids() {
                    full(o, b"trex", 0, 0, |o| {
                        o.put_u32(id);
                        o.put_u32(1); // sample description index
                        o.put_u32(0);
                        o.put_u32(0);
                        o.put_u32(0);
                    });
                }
            });
        });
        o.freeze()
    }

    fn ids(&self) -> Vec<u32> {
        let mut v = Vec::new();
        if self.video.is_some() {
            v.push(VIDEO);
        }
        if self.audio.is_some() {
            v.push(AUDIO);
        }
        v
    }
}

/// `trak` with its header, media header and handler; `entry` writes the
/// sample entry into `stsd`.
fn trak(o: &mut BytesMut, id: u32, (w, h): (u32, u32), entry: impl FnOnce(&mut BytesMut)) {
    let video = id == VIDEO;
    boxed(o, b"trak", |o| {
        full(o, b"tkhd", 0, 3, |o| {
            o.put_u32(0);
            o.put_u32(0);
            o.put_u32(id);
            o.put_u32(0);
            o.put_u32(0); // duration
            o.put_bytes(0, 8);
            o.put_u16(0); // layer
            o.put_u16(if video { 0 } else { 1 }); // alternate group
            o.put_u16(if video { 0 } else { 0x0100 }); // volume
            o.put_u16(0);
            MATRIX.iter().for_each(|m| o.put_u32(*m));
            o.put_u32(w << 16);
            o.put_u32(h << 16);
        });
        boxed(o, b"mdia", |o| {
            full(o, b"mdhd", 0, 0, |o| {
                o.put_u32(0);
                o.put_u32(0);
                o.put_u32(TIMESCALE);
                o.put_u32(0);
                o.put_u16(0x55c4); // language "und"
                o.put_u16(0);
            });
            full(o, b"hdlr", 0, 0, |o| {
                o.put_u32(0);
                o.put_slice(if video { b"vide" } else { b"soun" });
                o.put_bytes(0, 12);
                o.put_slice(if video { b"Video\0" } else { b"Audio\0" });
            });
            boxed(o, b"minf", |o| {
                if video {
                    full(o, b"vmhd", 0, 1, |o| o.put_bytes(0, 8));
                } else {
                    full(o, b"smhd", 0, 0, |o| o.put_u32(0));
                }
                boxed(o, b"dinf", |o| {
                    full(o, b"dref", 0, 0, |o| {
                        o.put_u32(1);
                        full(o, b"url ", 0, 1, |_| {});
                    });
                });
                boxed(o, b"stbl", |o| {
                    full(o, b"stsd", 0, 0, |o| {
                        o.put_u32(1);
                        entry(o);
                    });
                    for kind in [b"stts", b"stsc", b"stco"] {
                        full(o, kind, 0, 0, |o| o.put_u32(0));
                    }
                    full(o, b"stsz", 0, 0, |o| {
                        o.put_u32(0);
                        o.put_u32(0);
                    });
                });
            });
        });
    });
}

/// The `dOps` body (Opus in ISOBMFF §4.3.2) from an Opus ID header
/// ("OpusHead", RFC 7845 §5.1: little-endian), and the channel count. An
/// empty header means stereo with the usual 312 samples of pre-skip.
fn opus_dops(head: &[u8]) -> Option<(Bytes, u8)> {
    let mut o = BytesMut::with_capacity(32);
    if head.is_empty() {
        o.put_u8(0); // version
        o.put_u8(2);
        o.put_u16(312);
        o.put_u32(48_000);
        o.put_i16(0);
        o.put_u8(0);
        return Some((o.freeze(), 2));
    }
    if head.len() < 19 || &head[..8] != b"OpusHead" {
        return None;
    }
    let channels = head[9];
    let family = head[18];
    o.put_u8(0); // version
    o.put_u8(channels);
    o.put_u16(u16::from_le_bytes([head[10], head[11]]));
    o.put_u32(u32::from_le_bytes([head[12], head[13], head[14], head[15]]));
    o.put_i16(i16::from_le_bytes([head[16], head[17]]));
    o.put_u8(family);
    if family != 0 {
        // Stream count, coupled count, one mapping byte per channel.
        o.put_slice(head.get(19..21 + usize::from(channels))?);
    }
    Some((o.freeze(), channels))
}

/// `esds` with the AudioSpecificConfig (ISO/IEC 14496-1 descriptors).
fn esds(o: &mut BytesMut, asc: &[u8]) {
    full(o, b"esds", 0, 0, |o| {
        let dsi = asc.len() as u8;
        o.put_u8(0x03); // ES_Descriptor
        o.put_u8(23 + dsi);
        o.put_u16(AUDIO as u16);
        o.put_u8(0);
        o.put_u8(0x04); // DecoderConfigDescriptor
        o.put_u8(15 + dsi);
        o.put_u8(0x40); // MPEG-4 audio
        o.put_u8(0x15); // audio stream
        o.put_bytes(0, 3); // buffer size
        o.put_u32(0); // max bitrate
        o.put_u32(0); // average bitrate
        o.put_u8(0x05); // DecoderSpecificInfo
        o.put_u8(dsi);
        o.put_slice(asc);
        o.put_u8(0x06); // SLConfigDescriptor
        o.put_u8(1);
        o.put_u8(2);
    });
}

/// One fragment: `moof` (a `traf` per track with samples) and `mdat`.
/// `tracks`: (track id, decode time of the first sample, samples).
pub fn fragment(sequence: u32, tracks: &[(u32, u64, &[Sample])]) -> Bytes {
    let mut o = BytesMut::new();
    let mut offsets = Vec::new();
    let moof_start = o.len();
    boxed(&mut o, b"moof", |o| {
        full(o, b"mfhd", 0, 0, |o| o.put_u32(sequence));
        for (id, base, samples) in tracks.iter().filter(|t| !t.2.is_empty()) {
            boxed(o, b"traf", |o| {
                // default-base-is-moof
                full(o, b"tfhd", 0, 0x02_0000, |o| o.put_u32(*id));
                full(o, b"tfdt", 1, 0, |o| o.put_u64(*base));
                // data offset, duration, size, flags, composition offset
                full(o, b"trun", 1, 0x0f01, |o| {
                    o.put_u32(samples.len() as u32);
                    offsets.push(o.len());
                    o.put_u32(0); // data offset, set below
                    for s in samples.iter() {
                        o.put_u32(s.duration);
                        o.put_u32(s.data.len() as u32);
                        o.put_u32(if s.keyframe || *id == AUDIO {
                            0x0200_0000
                        } else {
                            0x0101_0000
                        });
                        o.put_i32(s.cts);
                    }
                });
            });
        }
    });
    let moof_len = o.len() - moof_start;
    let mut data_offset = moof_len + 8;
    for (at, (_, _, samples)) in offsets
        .iter()
        .zip(tracks.iter().filter(|t| !t.2.is_empty()))
    {
        let at = *at;
        o[at..at + 4].copy_from_slice(&(data_offset as u32).to_be_bytes());
        data_offset += samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    let mdat_len: usize = tracks
        .iter()
        .flat_map(|t| t.2.iter())
        .map(|s| s.data.len())
        .sum();
    o.put_u32(8 + mdat_len as u32);
    o.put_slice(b"mdat");
    for (_, _, samples) in tracks.iter().filter(|t| !t.2.is_empty()) {
        for s in samples.iter() {
            o.put_slice(&s.data);
        }
    }
    o.freeze()
}
