//! Publish an encoder's raw output at real time: an H.264 or HEVC Annex B
//! file or an AV1 OBU file, and an AAC ADTS file, as `ffmpeg -f h264`,
//! `-f hevc`, `-f obu` and `-f adts` write them.
//!
//! ```text
//! ffmpeg -i input.mp4 -an -c:v libx264 -bf 0 -f h264 video.h264
//! ffmpeg -i input.mp4 -vn -c:a aac -f adts audio.aac
//! cargo run -p rtmpkit --example annexb_push -- video.h264 audio.aac 25 rtmp://127.0.0.1/live/test
//! ```
//!
//! The video's codec is told by its extension: `.h264`/`.264`, `.hevc`/
//! `.h265`/`.265`, `.obu`. `none` for the audio publishes video alone.
//! Raw files carry no timestamps: video frame `n` is presented at `n / fps`
//! (the stream must have no B-frames, so that decode order is
//! presentation order), and each AAC frame lasts 1024 samples at the rate
//! its ADTS header gives. The session makes the sequence headers (again
//! when the stream changes resolution), keyframe flags and `onMetaData`
//! from the frames themselves; HEVC and AV1 go out as Enhanced RTMP.

use rtmpkit::proto::media::{
    adts_frames, av1_temporal_units, h264_access_units, hevc_access_units,
};
use rtmpkit::{ClientOptions, PushSession, Timestamp};
use std::time::Duration;

/// The video file's codec.
#[derive(Clone, Copy)]
enum Codec {
    H264,
    Hevc,
    Av1,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [video, audio, fps, url] = args.as_slice() else {
        eprintln!(
            "usage: annexb_push VIDEO.{{h264,hevc,obu}} AUDIO.aac|none FPS rtmp://host/app/stream"
        );
        std::process::exit(2);
    };
    let fps: f64 = fps.parse()?;
    let codec = match video.rsplit('.').next().unwrap_or_default() {
        "h264" | "264" => Codec::H264,
        "hevc" | "h265" | "265" => Codec::Hevc,
        "obu" => Codec::Av1,
        other => return Err(format!("{video}: .{other} is not .h264, .hevc or .obu").into()),
    };
    let video = std::fs::read(video)?;
    let audio = match audio.as_str() {
        "none" => Vec::new(),
        path => std::fs::read(path)?,
    };
    let units = match codec {
        Codec::H264 => h264_access_units(&video),
        Codec::Hevc => hevc_access_units(&video),
        Codec::Av1 => av1_temporal_units(&video)?,
    };

    // (time ms, is video, bytes), in time order.
    let mut frames: Vec<(u32, bool, &[u8])> = units
        .into_iter()
        .enumerate()
        .map(|(n, au)| ((n as f64 * 1000.0 / fps).round() as u32, true, au))
        .collect();
    // Each ADTS frame whole, header included: its header gives the config.
    let (mut samples, mut at) = (0u64, 0);
    for frame in adts_frames(&audio) {
        let (header, _) = frame?;
        let ms = samples * 1000 / u64::from(header.sample_rate());
        frames.push((ms as u32, false, &audio[at..at + header.frame_len]));
        at += header.frame_len;
        samples += 1024;
    }
    frames.sort_by_key(|(ms, video, _)| (*ms, !*video));

    let push = PushSession::connect(url, ClientOptions::default()).await?;
    println!("{} publishing to {}", push.unique_key(), push.url());
    let start = tokio::time::Instant::now();
    let (mut sent_video, mut sent_audio) = (0, 0);
    for (ms, is_video, bytes) in frames {
        tokio::time::sleep_until(start + Duration::from_millis(ms.into())).await;
        let ts = Timestamp(ms);
        if is_video {
            match codec {
                Codec::H264 => push.write_h264(ts, ts, bytes).await?,
                Codec::Hevc => push.write_hevc(ts, ts, bytes).await?,
                Codec::Av1 => push.write_av1(ts, bytes).await?,
            }
            sent_video += 1;
        } else {
            push.write_aac(ts, bytes).await?;
            sent_audio += 1;
        }
    }
    push.close().await?;
    println!(
        "done: {sent_video} video and {sent_audio} audio frames, {} bytes written",
        push.stat().wrote_bytes
    );
    Ok(())
}
