//! Restream at the frame level: play one stream and publish what a
//! decoder would get (parameter sets, access units, audio frames) to
//! another through the frame-level writes, as a program that transcodes or
//! composites in between would.
//!
//! ```text
//! cargo run -p rtmpkit --example restream -- rtmp://127.0.0.1/live/in rtmp://127.0.0.1/live/out
//! ```
//!
//! It plays announcing every Enhanced RTMP codec, so HEVC, AV1 and Opus
//! come through as well as H.264 and AAC; it ends when the played stream
//! does.

use futures_util::StreamExt;
use rtmpkit::proto::media::{DecoderConfig, Frame, FrameCodec};
use rtmpkit::{ClientOptions, MediaKind, PullSession, PushSession, Timestamp};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [from, to] = args.as_slice() else {
        eprintln!("usage: restream rtmp://host/app/in rtmp://host/app/out");
        std::process::exit(2);
    };
    let pull = PullSession::connect(from, ClientOptions::default().with_every_codec()).await?;
    let push = PushSession::connect(to, ClientOptions::default()).await?;
    println!("{} -> {}", pull.url(), push.url());

    let mut video_config: Option<DecoderConfig> = None;
    let (mut video, mut audio) = (0u32, 0u32);
    let mut frames = pull.frames();
    while let Some(frame) = frames.next().await {
        let coded = match frame {
            Frame::Config(c) => {
                match (c.kind, c.codec) {
                    (MediaKind::Video, _) => video_config = Some(c),
                    (_, FrameCodec::Aac) => push.set_aac_config(&c.record)?,
                    (_, FrameCodec::Opus) => push.set_opus_head(&c.record)?,
                    (_, other) => eprintln!("no frame-level write for {other:?} audio"),
                }
                continue;
            }
            Frame::Coded(c) => c,
        };
        let dts = Timestamp(coded.dts);
        let pts = Timestamp(u32::try_from(coded.pts).unwrap_or(coded.dts));
        let config = video_config.as_ref();
        match coded.codec {
            FrameCodec::H264 | FrameCodec::Hevc => {
                // Annex B, with the parameter sets before each keyframe, as
                // an encoder hands it out.
                let au = coded.annex_b(config).unwrap_or_default();
                if coded.codec == FrameCodec::H264 {
                    push.write_h264(pts, dts, &au).await?;
                } else {
                    push.write_hevc(pts, dts, &au).await?;
                }
            }
            FrameCodec::Av1 => {
                // The sequence header OBU (in the record after its 4 bytes)
                // before each keyframe, as an encoder writes it.
                let mut tu = Vec::with_capacity(coded.data.len() + 64);
                if let (true, Some(c)) = (coded.keyframe, config) {
                    tu.extend_from_slice(c.record.get(4..).unwrap_or_default());
                }
                tu.extend_from_slice(&coded.data);
                push.write_av1(pts, &tu).await?;
            }
            FrameCodec::Aac => push.write_aac(dts, &coded.data).await?,
            FrameCodec::Opus => push.write_opus(dts, &coded.data).await?,
            FrameCodec::Other => continue,
        }
        match coded.kind {
            MediaKind::Video => video += 1,
            _ => audio += 1,
        }
    }
    push.close().await?;
    println!(
        "done: {video} video and {audio} audio frames restreamed; the source {}",
        pull.wait().await
    );
    Ok(())
}
