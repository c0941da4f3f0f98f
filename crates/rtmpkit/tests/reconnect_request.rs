//! E-RTMP v2 reconnect request: a server being drained asks its clients
//! to move; our push (with a reconnect policy, so it announced support)
//! moves to the named server at once and the stream goes on there.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::{collect, sample_tags, start, tag_media};
use rtmpkit::server::{Server, ServerOptions};
use rtmpkit::{ClientOptions, MediaKind, PullSession, PushSession, ReconnectPolicy};
use std::time::Duration;
use tokio::time::Instant;

#[tokio::test]
async fn a_drained_server_moves_our_push_to_another() {
    let target = start(ServerOptions::default()).await;
    let draining = Server::bind(ServerOptions {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..ServerOptions::default()
    })
    .await
    .unwrap();
    let drain_addr = draining.local_addr().unwrap();
    let drainer = draining.drainer();
    let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(draining.run(async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));

    let player = PullSession::connect(&target.url("moved"), ClientOptions::default())
        .await
        .unwrap();
    let puller = tokio::spawn(async move { collect(&player).await });
    let opts = ClientOptions {
        reconnect: Some(ReconnectPolicy::default()),
        ..ClientOptions::default()
    };
    let push = PushSession::connect(&format!("rtmp://{drain_addr}/live/moved"), opts)
        .await
        .unwrap();
    let t0 = Instant::now();
    let tags = sample_tags();
    let mut drained_at = None;
    for t in &tags {
        tokio::time::sleep_until(t0 + Duration::from_millis(t.timestamp.0.into())).await;
        if drained_at.is_none() && t0.elapsed() > Duration::from_millis(1500) {
            drainer.drain(Some(format!("rtmp://{}/live", target.addr)));
            drained_at = Some(t.timestamp.0);
        }
        push.write_media(tag_media(t)).await.unwrap();
    }
    push.close().await.unwrap();
    let st = push.stat();
    assert_eq!(st.reconnects, 1, "moved once");
    let got = puller.await.unwrap();
    let video: Vec<u32> = got
        .iter()
        .filter(|m| m.kind == MediaKind::Video && !m.sequence_header)
        .map(|m| m.timestamp.0)
        .collect();
    let drained_at = drained_at.unwrap();
    eprintln!(
        "moved at {drained_at} ms; the target's player got {} frames from {} ms, gap {:?} ms",
        video.len(),
        video[0],
        st.last_reconnect_gap_ms
    );
    assert!(video.len() >= 40, "the stream went on at the target");
    assert!(
        video.windows(2).all(|w| w[1] >= w[0]),
        "timestamps go forward"
    );
    assert!(
        video[0] >= drained_at,
        "it continues where it was, no step back"
    );
    let _ = stop.send(true);
    let _ = task.await;
    target.stop().await;
}
