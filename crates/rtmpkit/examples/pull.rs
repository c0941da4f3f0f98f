//! Play a stream and print what arrives.
//!
//! `cargo run -p rtmpkit --example pull -- rtmp://127.0.0.1/live/test`

use rtmpkit::{ClientOptions, PullSession};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: pull rtmp://host/app/stream");
        std::process::exit(2);
    };
    let pull = PullSession::connect(&url, ClientOptions::default()).await?;
    println!("{} playing {}", pull.unique_key(), pull.url());
    while let Some(msg) = pull.next_message().await {
        println!(
            "{:?} {} {} bytes",
            msg.kind,
            msg.timestamp,
            msg.payload.len()
        );
    }
    println!("ended: {}", pull.wait().await);
    Ok(())
}
