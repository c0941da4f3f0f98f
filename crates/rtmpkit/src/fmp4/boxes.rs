//! The boxes: the init segment (`ftyp` + `moov` with one `trak` per
//! track) and a fragment (`moof` + `mdat`). Sample entries: H.264 and
//! HEVC (`avc1`/`avcC`, `hvc1`/`hvcC`, ISO/IEC 14496-15), AV1
//! (`av01`/`av1C`, the AV1-in-ISOBMFF binding), VP9 (`vp09`/`vpcC`, the VP
//! codec ISOBMFF binding), AAC (`mp4a`/`esds`) and Opus (`Opus`/`dOps`,
//! the Opus-in-ISOBMFF mapping). Timescale: ms, as FLV timestamps are.

use bytes::{BufMut, Bytes, BytesMut};
use rtmpkit_proto::media::{parse_aac_config, parse_avc_config, parse_hevc_config};

/// The timescale of every track: ms, as FLV timestamps are.
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

/// A track's sample entry: its codec and configuration record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `avc1` + `avcC`: AVCDecoderConfigurationRecord.
    Avc(Bytes),
    /// `hvc1` + `hvcC`: HEVCDecoderConfigurationRecord.
    Hevc(Bytes),
    /// `av01` + `av1C`: AV1CodecConfigurationRecord.
    Av1(Bytes),
    /// `vp09` + `vpcC`: the box's body as Enhanced RTMP carries it (version
    /// 1 and flags, then the VPCodecConfigurationRecord).
    Vp9(Bytes),
    /// `mp4a` + `esds`: AudioSpecificConfig.
    Aac(Bytes),
    /// `Opus` + `dOps`, made from the Opus ID header.
    Opus(Bytes),
}

impl Entry {
    /// Whether the track is video.
    pub fn is_video(&self) -> bool {
        matches!(
            self,
            Entry::Avc(_) | Entry::Hevc(_) | Entry::Av1(_) | Entry::Vp9(_)
        )
    }
}

/// One track of the init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// Track id (1-based) in the init segment and fragments.
    pub id: u32,
    pub entry: Entry,
    /// Picture size (0 where the configuration does not say).
    pub width: u32,
    pub height: u32,
    /// Sample rate and channels (audio).
    pub sample_rate: u32,
    pub channels: u8,
}

impl Track {
    /// A track from an Enhanced RTMP FourCC (legacy AVC is `avc1`, AAC
    /// `mp4a`) and its sequence-start body; `None` for codecs the writer
    /// does not carry (VP8, AC-3, FLAC, MP3, ...) or a body it cannot read.
    pub fn from_config(id: u32, fourcc: &[u8; 4], config: Bytes) -> Option<Track> {
        let video = |entry, (width, height)| Track {
            id,
            entry,
            width,
            height,
            sample_rate: 0,
            channels: 0,
        };
        let audio = |entry, sample_rate, channels| Track {
            id,
            entry,
            width: 0,
            height: 0,
            sample_rate,
            channels,
        };
        Some(match fourcc {
            b"avc1" => {
                let i = parse_avc_config(&config)?;
                video(Entry::Avc(config), (i.width, i.height))
            }
            b"hvc1" => {
                let i = parse_hevc_config(&config)?;
                video(Entry::Hevc(config), (i.width, i.height))
            }
            // The picture size is in the bitstream; players read it there.
            b"av01" if config.len() >= 4 && config[0] & 0x80 != 0 => {
                video(Entry::Av1(config), (0, 0))
            }
            b"vp09" if config.len() >= 12 && config[0] == 1 => video(Entry::Vp9(config), (0, 0)),
            b"mp4a" => {
                let i = parse_aac_config(&config)?;
                audio(Entry::Aac(config), i.sample_rate, i.channels)
            }
            b"Opus" => {
                let (dops, channels) = opus_dops(&config)?;
                audio(Entry::Opus(dops), 48_000, channels)
            }
            _ => return None,
        })
    }
}

/// `ftyp` + `moov` for `tracks` (ids as given).
pub fn init_segment(tracks: &[Track]) -> Bytes {
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
            o.put_u32(0); // duration: fragmented
            o.put_u32(0x0001_0000); // rate 1.0
            o.put_u16(0x0100); // volume 1.0
            o.put_bytes(0, 10);
            MATRIX.iter().for_each(|m| o.put_u32(*m));
            o.put_bytes(0, 24);
            let next = tracks.iter().map(|t| t.id).max().unwrap_or(0) + 1;
            o.put_u32(next);
        });
        for t in tracks {
            trak(o, t);
        }
        boxed(o, b"mvex", |o| {
            for t in tracks {
                full(o, b"trex", 0, 0, |o| {
                    o.put_u32(t.id);
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

/// The visual sample entry.
fn video_entry(o: &mut BytesMut, t: &Track) {
    let (kind, conf, rec) = match &t.entry {
        Entry::Avc(r) => (b"avc1", b"avcC", r),
        Entry::Hevc(r) => (b"hvc1", b"hvcC", r),
        Entry::Av1(r) => (b"av01", b"av1C", r),
        Entry::Vp9(r) => (b"vp09", b"vpcC", r),
        Entry::Aac(_) | Entry::Opus(_) => return,
    };
    boxed(o, kind, |o| {
        o.put_bytes(0, 6);
        o.put_u16(1); // data reference index
        o.put_bytes(0, 16);
        o.put_u16(t.width as u16);
        o.put_u16(t.height as u16);
        o.put_u32(0x0048_0000); // 72 dpi
        o.put_u32(0x0048_0000);
        o.put_u32(0);
        o.put_u16(1); // frames per sample
        o.put_bytes(0, 32); // compressor name
        o.put_u16(0x18); // depth
        o.put_i16(-1);
        // For vpcC, E-RTMP's body starts with the full box's version
        // and flags already.
        boxed(o, conf, |o| o.put_slice(rec));
    });
}

/// The audio sample entry.
fn audio_entry(o: &mut BytesMut, t: &Track) {
    let kind = match &t.entry {
        Entry::Aac(_) => b"mp4a",
        Entry::Opus(_) => b"Opus",
        _ => return,
    };
    boxed(o, kind, |o| {
        o.put_bytes(0, 6);
        o.put_u16(1);
        o.put_bytes(0, 8);
        o.put_u16(u16::from(t.channels));
        o.put_u16(16);
        o.put_u32(0);
        o.put_u32(t.sample_rate.min(65535) << 16);
        match &t.entry {
            Entry::Aac(asc) => esds(o, t.id, asc),
            Entry::Opus(dops) => boxed(o, b"dOps", |o| o.put_slice(dops)),
            _ => {}
        }
    });
}

/// `trak` with its header, media header, handler and sample entry.
fn trak(o: &mut BytesMut, t: &Track) {
    let video = t.entry.is_video();
    let (id, w, h) = (t.id, t.width, t.height);
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
                        if video {
                            video_entry(o, t);
                        } else {
                            audio_entry(o, t);
                        }
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
fn esds(o: &mut BytesMut, id: u32, asc: &[u8]) {
    full(o, b"esds", 0, 0, |o| {
        let dsi = asc.len() as u8;
        o.put_u8(0x03); // ES_Descriptor
        o.put_u8(23 + dsi);
        o.put_u16(id as u16);
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
/// `tracks`: (track id, decode time of the first sample, samples). Audio
/// samples are all sync samples: mark them `keyframe`.
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
                        o.put_u32(if s.keyframe { 0x0200_0000 } else { 0x0101_0000 });
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
