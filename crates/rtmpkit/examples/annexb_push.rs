//! Publish an encoder's raw output: an H.264 Annex B file and an AAC ADTS
//! file, as `ffmpeg -f h264` and `ffmpeg -f adts` write them, at real time.
//!
//! ```text
//! ffmpeg -i input.mp4 -an -c:v libx264 -bf 0 -f h264 video.h264
//! ffmpeg -i input.mp4 -vn -c:a aac -f adts audio.aac
//! cargo run -p rtmpkit --example annexb_push -- video.h264 audio.aac 25 rtmp://127.0.0.1/live/test
//! ```
//!
//! Raw files carry no timestamps: video frame `n` is presented at `n / fps`
//! (the stream must have no B-frames, so that decode order is
//! presentation order), and each AAC frame lasts 1024 samples at the rate
//! its ADTS header gives. The session makes the FLV sequence headers
//! (again when the stream changes resolution), keyframe flags and
//! `onMetaData` from the frames themselves.

use rtmpkit::proto::media::{adts_frames, h264_access_units};
use rtmpkit::{ClientOptions, PushSession, Timestamp};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [video, audio, fps, url] = args.as_slice() else {
        eprintln!("usage: annexb_push VIDEO.h264 AUDIO.aac FPS rtmp://host/app/stream");
        std::process::exit(2);
    };
    let fps: f64 = fps.parse()?;
    let video = std::fs::read(video)?;
    let audio = std::fs::read(audio)?;

    // (time ms, is video, bytes), in time order.
    let mut frames: Vec<(u32, bool, &[u8])> = h264_access_units(&video)
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
        if is_video {
            push.write_h264(Timestamp(ms), Timestamp(ms), bytes).await?;
            sent_video += 1;
        } else {
            push.write_aac(Timestamp(ms), bytes).await?;
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
