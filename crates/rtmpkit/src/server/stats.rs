//! The handle that reads a running server: [`StatsHandle`].

use super::context::ServerContext;
use crate::sync::lock;
use rtmpkit_proto::media::{
    AudioTagHeader, Media, VideoTagHeader, parse_aac_config, parse_avc_config, parse_hevc_config,
};
use std::sync::Arc;

/// One stream as [`StatsHandle::streams`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStat {
    /// `app/stream`.
    pub name: String,
    /// Whether a publisher (or an edge relay) feeds it.
    pub publishing: bool,
    /// Players (relay pushes included).
    pub players: usize,
    /// Bytes waiting in its players' queues.
    pub queued_bytes: usize,
    /// Messages dropped for its present players that fell behind.
    pub dropped: u64,
    /// Its video, from the sequence header, once one came.
    pub video: Option<VideoStat>,
    /// Its audio, from the sequence header, once one came.
    pub audio: Option<AudioStat>,
    /// What the publisher sent over the last seconds, bits per second
    /// (0 without input).
    pub bits_per_second: u64,
    /// The same over 10 s windows, and its video's and audio's part (as
    /// nginx-rtmp's `/stat` measures them).
    pub bits_per_second_10s: u64,
    pub video_bits_per_second: u64,
    pub audio_bits_per_second: u64,
    /// Frames per second, as the publisher's metadata says.
    pub frame_rate: Option<u32>,
    /// The latest media timestamp (ms).
    pub last_timestamp: u32,
    /// How long the current publisher has published.
    pub published_for: Option<std::time::Duration>,
    /// Every track with a codec configuration: track 0 and, for an
    /// E-RTMP multitrack stream, the others.
    pub tracks: Vec<TrackStat>,
}

/// One track of a stream, from its sequence header.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrackStat {
    /// Whether it is audio (else video).
    pub audio: bool,
    /// Its E-RTMP track id (0 without multitrack).
    pub id: u8,
    /// Its FourCC (`avc1`, `hvc1`, `av01`, `vp09`, `mp4a`, `Opus`, ...).
    pub codec: String,
    /// A video track's picture size (H.264 and HEVC; 0 when unknown).
    pub width: u32,
    pub height: u32,
    /// A video track's bits per second over 10 s windows, measured for
    /// each track of a multitrack stream (a ladder's rungs); 0 otherwise.
    pub bits_per_second: u64,
}

/// The tracks the sequence headers `seqs` configure, video first, by id,
/// with the video tracks' measured `rates` (track id, bits per second).
fn tracks<'a>(seqs: impl Iterator<Item = &'a Media>, rates: &[(u8, u64)]) -> Vec<TrackStat> {
    let mut units = Vec::new();
    for m in seqs {
        crate::fmp4::demux(m, &mut units);
    }
    let mut v: Vec<TrackStat> = units
        .into_iter()
        .filter_map(|u| match u {
            crate::fmp4::Unit::Config { key, fourcc, body } => {
                let size = match &fourcc {
                    b"avc1" => parse_avc_config(&body).map(|i| (i.width, i.height)),
                    b"hvc1" => parse_hevc_config(&body).map(|i| (i.width, i.height)),
                    _ => None,
                };
                let (width, height) = size.filter(|_| !key.audio).unwrap_or((0, 0));
                let bits_per_second = rates
                    .iter()
                    .find(|(id, _)| !key.audio && *id == key.id)
                    .map_or(0, |r| r.1);
                Some(TrackStat {
                    audio: key.audio,
                    id: key.id,
                    codec: String::from_utf8_lossy(&fourcc).into_owned(),
                    width,
                    height,
                    bits_per_second,
                })
            }
            crate::fmp4::Unit::Frame { .. } => None,
        })
        .collect();
    v.sort_by_key(|t| (t.audio, t.id));
    v.dedup_by_key(|t| (t.audio, t.id));
    v
}

/// A stream's video as its sequence header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoStat {
    /// Short name as ffprobe says it (`h264`, `hevc`, `av1`, ...).
    pub codec: String,
    /// Profile (H.264 and HEVC).
    pub profile: Option<String>,
    /// Width in pixels (H.264 and HEVC).
    pub width: Option<u32>,
    /// Height in pixels (H.264 and HEVC).
    pub height: Option<u32>,
    /// Level (`3.1`; H.264).
    pub level: Option<String>,
    /// The constraint flags byte (H.264).
    pub compat: Option<u8>,
}

/// A stream's audio as its sequence header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioStat {
    /// Short name as ffprobe says it (`aac`, `opus`, ...).
    pub codec: String,
    /// Profile (AAC only).
    pub profile: Option<String>,
    /// Sampling rate, Hz (AAC only).
    pub sample_rate: Option<u32>,
    /// Channels (AAC only).
    pub channels: Option<u8>,
}

fn video_stat(seq: &Media) -> Option<VideoStat> {
    let h = VideoTagHeader::parse(&seq.payload).ok()?;
    let rec = seq.payload.get(h.header_len..)?;
    let avc = h.codec.is_avc().then(|| parse_avc_config(rec)).flatten();
    let (profile, size) = if h.codec.is_avc() {
        avc.as_ref().map_or((None, None), |a| {
            (Some(a.profile_name()), Some((a.width, a.height)))
        })
    } else if h.codec.is_hevc() {
        parse_hevc_config(rec).map_or((None, None), |a| {
            (Some(a.profile_name()), Some((a.width, a.height)))
        })
    } else {
        (None, None)
    };
    Some(VideoStat {
        codec: h.codec.name(),
        profile: profile.map(str::to_owned),
        width: size.map(|s| s.0),
        height: size.map(|s| s.1),
        level: avc
            .as_ref()
            .map(|a| format!("{}.{}", a.level / 10, a.level % 10)),
        compat: avc.as_ref().map(|a| a.constraints),
    })
}

/// `framerate` (or `videoframerate`) of the stream's `onMetaData`.
fn frame_rate(meta: &Media) -> Option<u32> {
    let data = rtmpkit_proto::message::DataMessage::decode(&meta.payload).ok()?;
    let obj = data.metadata()?;
    let fps = ["framerate", "videoframerate"]
        .iter()
        .find_map(|k| obj.get(k).and_then(|v| v.as_number()))?;
    (fps.is_finite() && fps > 0.0 && fps < 1000.0).then(|| fps.round() as u32)
}

fn audio_stat(seq: &Media) -> Option<AudioStat> {
    let h = AudioTagHeader::parse(&seq.payload).ok()?;
    let aac = h
        .codec
        .is_aac()
        .then(|| parse_aac_config(seq.payload.get(h.header_len..)?))
        .flatten();
    Some(AudioStat {
        codec: h.codec.name(),
        profile: aac.map(|a| a.profile_name().to_owned()),
        sample_rate: aac.map(|a| a.sample_rate),
        channels: aac.map(|a| a.channels),
    })
}

/// Reads a running server's state.
#[derive(Debug, Clone)]
pub struct StatsHandle(pub(super) Arc<ServerContext>);

impl StatsHandle {
    /// Whether the server is moving its clients away (a drain was asked
    /// for) or shutting down: a load balancer should stop sending new ones.
    pub fn is_draining(&self) -> bool {
        self.0.drain.borrow().is_some() || *self.0.shutdown.borrow()
    }

    /// How long the server has run.
    pub fn uptime(&self) -> std::time::Duration {
        self.0.started.elapsed()
    }

    /// Connections accepted since the server started.
    pub fn accepted(&self) -> u64 {
        self.0
            .counters
            .accepted
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether `app/stream` is being recorded now.
    pub fn recording(&self, stream: &str) -> bool {
        self.0.recordings.is_recording(stream)
    }

    /// Every stream with a publisher or a player.
    pub fn streams(&self) -> Vec<StreamStat> {
        self.0
            .hub
            .list()
            .into_iter()
            .map(|s| StreamStat {
                name: s.name,
                publishing: s.publishing,
                players: s.players,
                queued_bytes: s.queued_bytes,
                dropped: s.dropped,
                video: s.video_seq.as_ref().and_then(video_stat),
                audio: s.audio_seq.as_ref().and_then(audio_stat),
                bits_per_second: s.bits_per_second,
                bits_per_second_10s: s.bits_per_second_10s,
                video_bits_per_second: s.video_bits_per_second,
                audio_bits_per_second: s.audio_bits_per_second,
                frame_rate: s.metadata.as_ref().and_then(frame_rate),
                last_timestamp: s.last_timestamp,
                published_for: s.published_for,
                tracks: tracks(
                    s.video_seq.iter().chain(&s.audio_seq).chain(&s.track_seqs),
                    &s.video_track_bits_per_second,
                ),
            })
            .collect()
    }

    /// The server's counters now (see [`Metrics`](super::Metrics)).
    pub fn metrics(&self) -> super::Metrics {
        let (queued, dropped) = self.0.hub.list().iter().fold((0, 0), |(q, d), s| {
            (q + s.queued_bytes as u64, d + s.dropped)
        });
        let kicks = self
            .0
            .sessions
            .kicks
            .load(std::sync::atomic::Ordering::Relaxed);
        self.0
            .counters
            .snapshot(queued, dropped, self.0.sessions.totals(), kicks)
    }
}

/// The node's part of the cluster, as [`StatsHandle::cluster`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterView {
    /// This node's advertised URL (what the others pull from).
    pub node: String,
    /// Whether the last Redis round trip worked.
    pub redis_reachable: bool,
    /// Streams published here and claimed in Redis.
    pub owned: Vec<String>,
    /// Streams pulled into this server, with their source.
    pub pulled: Vec<PulledStream>,
}

/// A stream this server pulls from another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledStream {
    /// `app/stream`.
    pub name: String,
    /// Where the pull connects now (`None`: looking for the owner).
    pub source: Option<String>,
    /// Whether it follows the cluster's owner (else an edge's origin, or
    /// a hook's redirect).
    pub cluster: bool,
}

impl StatsHandle {
    /// The cluster as this node sees it; `None` outside cluster mode.
    pub fn cluster(&self) -> Option<ClusterView> {
        let c = self.0.cluster.as_ref()?;
        Some(ClusterView {
            node: c.opts().advertise.clone(),
            redis_reachable: c.reachable(),
            owned: c.owned(),
            pulled: self.pulled(),
        })
    }

    /// Every pull running now, by name.
    pub fn pulled(&self) -> Vec<PulledStream> {
        let mut v: Vec<PulledStream> = lock(&self.0.relay_pulls)
            .iter()
            .map(|(name, p)| PulledStream {
                name: name.clone(),
                source: p.source.clone(),
                cluster: p.cluster,
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rtmpkit_proto::Timestamp;

    #[test]
    fn tracks_come_from_every_sequence_header() {
        let avc = Media::video(
            Timestamp(0),
            Bytes::from_static(b"\x17\x00\x00\x00\x00\x01"),
        );
        // E-RTMP multitrack audio, ManyTracks of mp4a, SequenceStart:
        // tracks 0 and 1.
        let two_aac = Media::audio(
            Timestamp(0),
            Bytes::from_static(b"\x95\x10mp4a\x00\x00\x00\x02AA\x01\x00\x00\x01B"),
        );
        let got: Vec<(bool, u8, String)> = tracks([&avc, &two_aac].into_iter(), &[])
            .into_iter()
            .map(|t| (t.audio, t.id, t.codec))
            .collect();
        assert_eq!(
            got,
            vec![
                (false, 0, "avc1".into()),
                (true, 0, "mp4a".into()),
                (true, 1, "mp4a".into())
            ]
        );
    }
}
