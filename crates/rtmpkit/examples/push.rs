//! Publish an FLV file at real time.
//!
//! `cargo run -p rtmpkit --example push -- tests/fixtures/sample-5s.flv rtmp://127.0.0.1/live/test`

use rtmpkit::proto::flv::FlvReader;
use rtmpkit::{ClientOptions, Media, MediaKind, PushSession};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(file), Some(url)) = (args.next(), args.next()) else {
        eprintln!("usage: push FILE.flv rtmp://host/app/stream");
        std::process::exit(2);
    };
    let mut reader = FlvReader::new();
    reader.push(&std::fs::read(&file)?);

    let push = PushSession::connect(&url, ClientOptions::default()).await?;
    println!("{} publishing to {}", push.unique_key(), push.url());
    let start = tokio::time::Instant::now();
    while let Some(tag) = reader.next_tag()? {
        // Pace at real time, like ffmpeg -re.
        tokio::time::sleep_until(start + Duration::from_millis(tag.timestamp.as_millis().into()))
            .await;
        // FLV tag types are RTMP message types: 18 metadata, 8 audio, 9 video.
        if let Some(kind) = MediaKind::from_type_id(tag.tag_type) {
            push.write_media(Media::new(kind, tag.timestamp, tag.data))
                .await?;
        }
    }
    push.close().await?;
    println!("done: {} bytes written", push.stat().wrote_bytes);
    Ok(())
}
