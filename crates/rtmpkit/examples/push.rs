//! Publish an FLV file at real time.
//!
//! `cargo run -p rtmpkit --example push -- tests/fixtures/sample-5s.flv rtmp://127.0.0.1/live/test`

use bytes::Bytes;
use rtmpkit::proto::flv::{FlvReader, TAG_SCRIPT};
use rtmpkit::{ClientOptions, PushSession};
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
        if tag.tag_type == TAG_SCRIPT {
            push.write_script_tag(&tag.data).await?;
        } else {
            push.write_media(tag.tag_type, tag.timestamp, Bytes::clone(&tag.data))
                .await?;
        }
    }
    push.close().await?;
    println!("done: {} bytes written", push.stat().wrote_bytes);
    Ok(())
}
