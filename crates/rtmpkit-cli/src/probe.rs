//! `rtmpkit probe URL`: what is in a live stream.

use anyhow::{Result, bail};
use rtmpkit::proto::amf0::Amf0Value;
use rtmpkit::proto::media::{AudioTagHeader, VideoTagHeader, parse_aac_config, parse_avc_config};
use rtmpkit::proto::message::DataMessage;
use rtmpkit::{ClientOptions, MediaKind, PullSession};
use std::time::Duration;
use tokio::time::Instant;

/// Arguments of `rtmpkit probe`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// What to look at: rtmp[s]://host[:port]/app/stream.
    url: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Seconds of media to look at, at most.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Seconds allowed to connect and start playing.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    #[command(flatten)]
    tls: crate::client_tls::TlsArgs,
}

#[derive(Debug, Default)]
struct Report {
    video_codec: Option<String>,
    video_profile: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    fps: Option<f64>,
    audio_codec: Option<String>,
    audio_profile: Option<String>,
    sample_rate: Option<u32>,
    channels: Option<u8>,
    video_bytes: u64,
    audio_bytes: u64,
    span_ms: u32,
    first_video_ms: Option<u128>,
    first_video_key: bool,
    video_frames: u64,
    audio_frames: u64,
    /// The extra tracks of an E-RTMP multitrack stream, in order of arrival.
    tracks: Vec<Track>,
}

/// One extra track (id >= 1) of a multitrack stream.
#[derive(Debug)]
struct Track {
    kind: &'static str,
    id: u8,
    codec: String,
    frames: u64,
}

impl Report {
    /// Counts a message of an extra track.
    fn extra(&mut self, kind: &'static str, id: u8, codec: String, frame: bool) {
        let pos = self
            .tracks
            .iter()
            .position(|t| t.kind == kind && t.id == id);
        let t = match pos {
            Some(i) => &mut self.tracks[i],
            None => {
                self.tracks.push(Track {
                    kind,
                    id,
                    codec: codec.clone(),
                    frames: 0,
                });
                let last = self.tracks.len() - 1;
                &mut self.tracks[last]
            }
        };
        t.codec = codec;
        t.frames += u64::from(frame);
    }
}

pub async fn run(args: ProbeArgs) -> Result<()> {
    if !(args.duration.is_finite() && args.duration > 0.0) {
        bail!("--duration must be a number of seconds > 0");
    }
    let opts = ClientOptions {
        timeout: Duration::from_secs_f64(args.timeout.max(0.0)),
        ..ClientOptions::default()
    };
    // Every codec and track, so that probe sees what the stream holds.
    let mut opts = opts.with_every_codec();
    args.tls.apply(&mut opts)?;
    let t0 = Instant::now();
    let pull = PullSession::connect(&args.url, opts).await?;
    let mut rep = Report::default();
    let mut video_ts: Vec<u32> = Vec::new();
    let (mut first_ts, mut last_ts): (Option<u32>, u32) = (None, 0);
    let wall_limit = t0 + Duration::from_secs_f64(args.duration + args.timeout.max(0.0));
    loop {
        let msg = tokio::select! {
            m = pull.next_message() => m,
            _ = tokio::time::sleep_until(wall_limit) => None,
        };
        let Some(m) = msg else { break };
        match m.kind {
            MediaKind::Metadata => {
                if let Some(meta) = DataMessage::decode(&m.payload)
                    .ok()
                    .and_then(|d| d.metadata().cloned())
                {
                    let num = |k: &str| meta.get(k).and_then(Amf0Value::as_number);
                    rep.width = rep.width.or(num("width").map(|v| v as u32));
                    rep.height = rep.height.or(num("height").map(|v| v as u32));
                    rep.fps = rep.fps.or(num("framerate").filter(|v| *v > 0.0));
                }
                continue;
            }
            MediaKind::Video => {
                let Ok(h) = VideoTagHeader::parse(&m.payload) else {
                    continue;
                };
                if let Some(id) = h.track.filter(|t| *t > 0) {
                    let frame = !h.is_sequence_header();
                    rep.extra("video", id, h.codec.name(), frame);
                    continue;
                }
                rep.video_codec = Some(h.codec.name());
                if h.is_sequence_header() {
                    if h.codec.is_avc() {
                        if let Some(i) = parse_avc_config(&m.payload[h.header_len..]) {
                            rep.video_profile = Some(i.profile_name().into());
                            rep.width = Some(i.width);
                            rep.height = Some(i.height);
                        }
                    }
                    continue;
                }
                if rep.first_video_ms.is_none() {
                    rep.first_video_ms = Some(t0.elapsed().as_millis());
                    rep.first_video_key = h.is_keyframe();
                }
                rep.video_frames += 1;
                rep.video_bytes += m.payload.len() as u64;
                video_ts.push(m.timestamp.0);
            }
            MediaKind::Audio => {
                let Ok(h) = AudioTagHeader::parse(&m.payload) else {
                    continue;
                };
                if let Some(id) = h.track.filter(|t| *t > 0) {
                    rep.extra("audio", id, h.codec.name(), !h.sequence_header);
                    continue;
                }
                rep.audio_codec = Some(h.codec.name());
                if h.sequence_header {
                    if let Some(i) = parse_aac_config(&m.payload[h.header_len..]) {
                        rep.audio_profile = Some(i.profile_name().into());
                        rep.sample_rate = Some(i.sample_rate);
                        rep.channels = Some(i.channels);
                    }
                    continue;
                }
                rep.audio_frames += 1;
                rep.audio_bytes += m.payload.len() as u64;
            }
        }
        let f = *first_ts.get_or_insert(m.timestamp.0);
        last_ts = last_ts.max(m.timestamp.0);
        rep.span_ms = last_ts.wrapping_sub(f);
        if f64::from(rep.span_ms) >= args.duration * 1000.0 {
            break;
        }
    }
    let _ = pull.close().await;
    if video_ts.len() >= 2 {
        let span = video_ts[video_ts.len() - 1].wrapping_sub(video_ts[0]);
        if span > 0 {
            rep.fps = Some((video_ts.len() - 1) as f64 * 1000.0 / f64::from(span));
        }
    }
    if rep.video_codec.is_none() && rep.audio_codec.is_none() {
        bail!("{}: no audio or video arrived", pull.url());
    }
    if args.json {
        println!("{}", to_json(pull.url(), &rep));
    } else {
        print_text(pull.url(), &rep);
    }
    Ok(())
}

fn kbps(bytes: u64, ms: u32) -> u64 {
    if ms == 0 {
        0
    } else {
        bytes * 8 / u64::from(ms)
    }
}

fn print_text(url: &str, r: &Report) {
    println!("stream: {url}");
    match &r.video_codec {
        Some(c) => {
            let mut line = format!("video: {c}");
            if let Some(p) = &r.video_profile {
                line += &format!(" {p}");
            }
            if let (Some(w), Some(h)) = (r.width, r.height) {
                line += &format!(" {w}x{h}");
            }
            if let Some(f) = r.fps {
                line += &format!(", {f:.2} fps");
            }
            println!("{line}");
        }
        None => println!("video: none"),
    }
    match &r.audio_codec {
        Some(c) => {
            let mut line = format!("audio: {c}");
            if let Some(p) = &r.audio_profile {
                line += &format!(" {p}");
            }
            if let Some(s) = r.sample_rate {
                line += &format!(" {s} Hz");
            }
            match r.channels {
                Some(1) => line += " mono",
                Some(2) => line += " stereo",
                Some(n) => line += &format!(" {n} channels"),
                None => {}
            }
            println!("{line}");
        }
        None => println!("audio: none"),
    }
    for t in &r.tracks {
        println!(
            "{} track {}: {}, {} frames",
            t.kind, t.id, t.codec, t.frames
        );
    }
    println!(
        "bitrate: {} kbit/s (video {}, audio {}) over {:.1}s of media",
        kbps(r.video_bytes + r.audio_bytes, r.span_ms),
        kbps(r.video_bytes, r.span_ms),
        kbps(r.audio_bytes, r.span_ms),
        f64::from(r.span_ms) / 1000.0
    );
    if let Some(ms) = r.first_video_ms {
        println!(
            "first video frame: {ms} ms after connecting ({})",
            if r.first_video_key {
                "keyframe"
            } else {
                "not a keyframe"
            }
        );
    }
}

fn to_json(url: &str, r: &Report) -> String {
    let milli = |v: f64| (v * 1000.0).round() / 1000.0;
    serde_json::json!({
        "url": url,
        "video": {
            "codec": r.video_codec,
            "profile": r.video_profile,
            "width": r.width,
            "height": r.height,
            "fps": r.fps.map(milli),
            "frames": r.video_frames,
        },
        "audio": {
            "codec": r.audio_codec,
            "profile": r.audio_profile,
            "sample_rate": r.sample_rate,
            "channels": r.channels,
            "frames": r.audio_frames,
        },
        "bitrate_kbps": kbps(r.video_bytes + r.audio_bytes, r.span_ms),
        "media_seconds": milli(f64::from(r.span_ms) / 1000.0),
        "first_video_frame_ms": r.first_video_ms,
        "first_video_frame_is_keyframe": r.first_video_key,
        "extra_tracks": r.tracks.iter().map(|t| serde_json::json!({
            "kind": t.kind,
            "id": t.id,
            "codec": t.codec,
            "frames": t.frames,
        })).collect::<Vec<_>>(),
    })
    .to_string()
}
