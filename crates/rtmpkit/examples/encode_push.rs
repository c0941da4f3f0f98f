//! Encode pictures in-process and publish them live: an animated test
//! pattern, encoded to H.264 by OpenH264 (the `openh264` crate), sent
//! frame by frame with `write_h264` at 25 frames a second.
//!
//! ```text
//! cargo run -p rtmpkit --example encode_push -- rtmp://127.0.0.1/live/test 10
//! ```
//!
//! The encoder hands out Annex B access units; the session makes the FLV
//! sequence header from their SPS and PPS, the keyframe flags and the
//! `onMetaData`. With `--drop-after-ms N` the push drops video when the
//! link falls N ms behind, and the example halves the encoder's bitrate
//! when the congestion watch leaves `Clear`, raising it again after 4 s
//! of `Clear`.

use openh264::OpenH264API;
use openh264::encoder::{BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod};
use openh264::formats::YUVBuffer;
use rtmpkit::{ClientOptions, CongestionLevel, DropPolicy, PushSession, Timestamp};
use std::time::Duration;

const WIDTH: usize = 640;
const HEIGHT: usize = 360;
const FPS: u32 = 25;
const BITRATE: u32 = 800_000;
/// How long the link must be clear before the bitrate goes back up.
const RAISE_AFTER: Duration = Duration::from_secs(4);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, secs, drop_after) = match args.as_slice() {
        [url, secs] => (url, secs.parse::<u32>()?, None),
        [url, secs, flag, ms] if flag == "--drop-after-ms" => {
            (url, secs.parse::<u32>()?, Some(ms.parse::<u64>()?))
        }
        _ => {
            eprintln!("usage: encode_push rtmp://host/app/stream SECONDS [--drop-after-ms N]");
            std::process::exit(2);
        }
    };
    let options = ClientOptions {
        drop_policy: drop_after.map(|ms| DropPolicy::after(Duration::from_millis(ms))),
        ..ClientOptions::default()
    };
    let push = PushSession::connect(url, options).await?;
    println!("{} publishing to {}", push.unique_key(), push.url());
    let congestion = push.congestion();

    let config = EncoderConfig::new()
        .bitrate(BitRate::from_bps(BITRATE))
        .max_frame_rate(FrameRate::from_hz(FPS as f32))
        .intra_frame_period(IntraFramePeriod::from_num_frames(2 * FPS))
        .skip_frames(false);
    let mut encoder = Encoder::with_api_config(OpenH264API::from_source(), config)?;
    let mut yuv = vec![0u8; WIDTH * HEIGHT * 3 / 2];
    let mut bitrate = BITRATE;
    let mut clear_since = None;

    let start = tokio::time::Instant::now();
    let (mut frames, mut keyframes) = (0u32, 0u32);
    for n in 0..secs * FPS {
        let ms = n * 1000 / FPS;
        tokio::time::sleep_until(start + Duration::from_millis(ms.into())).await;
        // Halve the bitrate as soon as the link falls behind; back up only
        // after it was clear for a while (OBS waits 30 s: DBR_INC_TIMER).
        let clear = congestion.borrow().level == CongestionLevel::Clear;
        let now = tokio::time::Instant::now();
        let want = match (clear, clear_since) {
            (false, _) => {
                clear_since = None;
                BITRATE / 2
            }
            (true, None) => {
                clear_since = Some(now);
                bitrate
            }
            (true, Some(t)) if now - t >= RAISE_AFTER => BITRATE,
            (true, Some(_)) => bitrate,
        };
        if want != bitrate {
            bitrate = want;
            println!("at {ms} ms: bitrate {bitrate} bit/s");
            // A new encoder starts with a keyframe and its SPS and PPS.
            let config = config.bitrate(BitRate::from_bps(bitrate));
            encoder = Encoder::with_api_config(OpenH264API::from_source(), config)?;
        }
        paint(&mut yuv, n);
        let picture = YUVBuffer::from_vec(yuv.clone(), WIDTH, HEIGHT);
        let encoded = encoder.encode(&picture)?;
        if matches!(encoded.frame_type(), FrameType::Skip | FrameType::Invalid) {
            continue;
        }
        keyframes += u32::from(encoded.frame_type() == FrameType::IDR);
        let access_unit = encoded.to_vec();
        push.write_h264(Timestamp(ms), Timestamp(ms), &access_unit)
            .await?;
        frames += 1;
    }
    push.close().await?;
    let st = push.stat();
    println!(
        "done: {frames} frames ({keyframes} keyframes) in {:.1} s, {} bytes written, {} frames dropped",
        start.elapsed().as_secs_f64(),
        st.wrote_bytes,
        st.dropped_inter_frames + st.purged_inter_frames
    );
    Ok(())
}

/// Frame `n` of the pattern (I420): a diagonal gradient that scrolls, and
/// a bright square that crosses the picture once a second.
fn paint(yuv: &mut [u8], n: u32) {
    let (luma, chroma) = yuv.split_at_mut(WIDTH * HEIGHT);
    let shift = n as usize * 4;
    for (y, row) in luma.chunks_mut(WIDTH).enumerate() {
        for (x, p) in row.iter_mut().enumerate() {
            *p = ((x + y + shift) % 220 + 16) as u8;
        }
    }
    let side = HEIGHT / 4;
    let left = (n % FPS) as usize * (WIDTH - side) / FPS as usize;
    for row in luma
        .chunks_mut(WIDTH)
        .skip(HEIGHT / 2 - side / 2)
        .take(side)
    {
        row[left..left + side].fill(235);
    }
    let (u, v) = chroma.split_at_mut(WIDTH * HEIGHT / 4);
    u.fill(128 + (n % 64) as u8);
    v.fill(128 - (n % 64) as u8);
}
