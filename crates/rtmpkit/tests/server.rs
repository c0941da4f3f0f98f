//! The server in-process on 127.0.0.1, driven by our own client.

mod common;

use bytes::Bytes;
use common::{collect, event_player, expected_media, media_of, publish, sample_tags, start};
use rtmpkit::proto::message::{DataMessage, status};
use rtmpkit::proto::session::ClientEvent;
use rtmpkit::server::ServerOptions;
use rtmpkit::{ClientOptions, EndReason, Media, MediaKind, PullSession, PushSession};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout};

#[tokio::test]
async fn our_push_through_our_server_to_our_pull_is_identical() {
    let srv = start(ServerOptions::default()).await;
    let pull = PullSession::connect(&srv.url("same"), ClientOptions::default())
        .await
        .expect("play");
    let puller = tokio::spawn(async move {
        let msgs = collect(&pull).await;
        (msgs, pull.wait().await)
    });
    let push = publish(&srv.url("same"), false).await;
    push.close().await.expect("close");
    let (msgs, end) = puller.await.expect("pull");
    assert!(matches!(end, EndReason::StreamEnded(_)), "{end:?}");
    assert_eq!(msgs[0].kind, MediaKind::Metadata, "metadata first");
    let meta = DataMessage::decode(&msgs[0].payload).expect("amf0");
    let file_meta = DataMessage::decode(&sample_tags()[0].data).expect("amf0");
    assert_eq!(meta.metadata(), file_meta.metadata());
    assert_eq!(
        media_of(&msgs),
        expected_media(),
        "every frame, same timestamps and bytes"
    );
    srv.stop().await;
}

#[tokio::test]
async fn late_joiner_starts_on_a_keyframe_from_the_gop_cache() {
    let srv = start(ServerOptions::default()).await;
    let url = srv.url("late");
    let publisher = tokio::spawn({
        let url = url.clone();
        async move { publish(&url, true).await }
    });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let joined = Instant::now();
    let pull = PullSession::connect(&url, ClientOptions::default())
        .await
        .expect("play");
    let first = timeout(Duration::from_secs(5), async {
        let mut v = Vec::new();
        while v.len() < 4 {
            v.push(pull.next_message().await.expect("message"));
        }
        v
    })
    .await
    .expect("at once");
    let waited = joined.elapsed();
    assert_eq!(first[0].kind, MediaKind::Metadata);
    let video: Vec<&Media> = first
        .iter()
        .filter(|m| m.kind == MediaKind::Video)
        .collect();
    assert!(video[0].sequence_header);
    let frame = pull_first_video_frame(&pull, &first).await;
    assert!(frame.keyframe, "first video frame is a keyframe");
    assert!(
        frame.timestamp.0 >= 2000 && frame.timestamp.0 <= 2500,
        "from the cached GOP: {}",
        frame.timestamp
    );
    assert!(
        waited < Duration::from_secs(2),
        "got it at once ({waited:?})"
    );
    publisher.await.expect("push").close().await.expect("close");
    srv.stop().await;
}

async fn pull_first_video_frame(pull: &PullSession, seen: &[Media]) -> Media {
    let is_frame = |m: &Media| m.kind == MediaKind::Video && !m.sequence_header;
    if let Some(m) = seen.iter().find(|m| is_frame(m)) {
        return m.clone();
    }
    loop {
        let m = pull.next_message().await.expect("message");
        if is_frame(&m) {
            return m;
        }
    }
}

#[tokio::test]
async fn duplicate_publisher_is_rejected_and_the_first_stream_is_unharmed() {
    let srv = start(ServerOptions::default()).await;
    let url = srv.url("dup");
    let pull = PullSession::connect(&url, ClientOptions::default())
        .await
        .expect("play");
    let puller = tokio::spawn(async move { collect(&pull).await });
    let first = tokio::spawn({
        let url = url.clone();
        async move { publish(&url, true).await }
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let t = Instant::now();
    let e = PushSession::connect(&url, ClientOptions::default())
        .await
        .expect_err("taken");
    assert!(e.is_rejected(), "{e}");
    assert_eq!(e.status_code(), Some(status::PUBLISH_BAD_NAME));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    first.await.expect("first").close().await.expect("close");
    let msgs = puller.await.expect("pull");
    assert_eq!(
        media_of(&msgs),
        expected_media(),
        "the player of the first stream lost nothing"
    );
    srv.stop().await;
}

/// A player that stays connected while the publisher leaves and returns,
/// driven with the protocol core directly (our PullSession ends at the end
/// of a stream, as ffmpeg users expect).
#[tokio::test]
async fn player_stays_connected_while_the_publisher_leaves_and_returns() {
    let srv = start(ServerOptions::default()).await;
    let url = srv.url("back");
    let mut rx = event_player(&url).await;
    // Wait until playing.
    loop {
        let ev = timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("event")
            .expect("open");
        if ev == ClientEvent::PlayStarted {
            break;
        }
    }
    for round in 0..2 {
        let push = publish(&url, false).await;
        push.close().await.expect("close");
        let mut frames = 0;
        loop {
            let ev = timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("event")
                .expect("open");
            match ev {
                ClientEvent::Media(m) if m.kind != MediaKind::Metadata => frames += 1,
                ClientEvent::StreamEnded(_) => break,
                _ => {}
            }
        }
        assert_eq!(frames, expected_media().len(), "round {round}: every frame");
    }
    drop(rx);
    srv.stop().await;
}

#[tokio::test]
async fn edge_pulls_from_origin_for_its_players() {
    let origin = start(ServerOptions::default()).await;
    let edge = start(ServerOptions {
        relay_pull: Some(format!("rtmp://{}", origin.addr)),
        ..ServerOptions::default()
    })
    .await;
    let pull = PullSession::connect(&edge.url("relayed"), ClientOptions::default())
        .await
        .expect("play on edge");
    let puller = tokio::spawn(async move { collect(&pull).await });
    // Give the edge a moment to reach the origin and wait there.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let push = publish(&origin.url("relayed"), false).await;
    push.close().await.expect("close");
    let msgs = puller.await.expect("pull");
    assert_eq!(
        media_of(&msgs),
        expected_media(),
        "the edge player got what the origin got"
    );
    edge.stop().await;
    origin.stop().await;
}

#[tokio::test]
async fn published_streams_are_pushed_to_relay_targets() {
    let target = start(ServerOptions::default()).await;
    let source = start(ServerOptions {
        relay_push: vec![format!("rtmp://{}", target.addr)],
        ..ServerOptions::default()
    })
    .await;
    let pull = PullSession::connect(&target.url("fwd"), ClientOptions::default())
        .await
        .expect("play");
    let puller = tokio::spawn(async move { collect(&pull).await });
    let push = publish(&source.url("fwd"), false).await;
    push.close().await.expect("close");
    let msgs = puller.await.expect("pull");
    assert_eq!(media_of(&msgs), expected_media());
    assert_eq!(msgs[0].kind, MediaKind::Metadata);
    source.stop().await;
    target.stop().await;
}

#[tokio::test]
async fn shutdown_ends_players_cleanly() {
    let srv = start(ServerOptions::default()).await;
    let url = srv.url("bye");
    let pull = PullSession::connect(&url, ClientOptions::default())
        .await
        .expect("play");
    let push = PushSession::connect(&url, ClientOptions::default())
        .await
        .expect("publish");
    push.write_video(0.into(), Bytes::from_static(&[0x17, 1, 0, 0, 0, 1]))
        .await
        .expect("w");
    srv.stop().await;
    let end = timeout(Duration::from_secs(5), pull.wait())
        .await
        .expect("ends");
    assert!(
        matches!(end, EndReason::StreamEnded(_) | EndReason::PeerClosed),
        "{end:?}"
    );
}

#[tokio::test]
async fn garbage_and_silent_clients_do_not_hurt_others() {
    let srv = start(ServerOptions {
        setup_timeout: Duration::from_millis(500),
        ..ServerOptions::default()
    })
    .await;
    // Garbage instead of a handshake.
    let mut g = tokio::net::TcpStream::connect(srv.addr)
        .await
        .expect("connect");
    g.write_all(&[0xff; 4000]).await.expect("write");
    let mut buf = [0u8; 16];
    let r = timeout(Duration::from_secs(2), g.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    // Silent after connecting: closed at the setup timeout.
    let mut s = tokio::net::TcpStream::connect(srv.addr)
        .await
        .expect("connect");
    let r = timeout(Duration::from_secs(3), s.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    // The server still serves.
    let pull = PullSession::connect(&srv.url("ok"), ClientOptions::default())
        .await
        .expect("play");
    let puller = tokio::spawn(async move { collect(&pull).await });
    publish(&srv.url("ok"), false)
        .await
        .close()
        .await
        .expect("close");
    assert_eq!(media_of(&puller.await.expect("pull")), expected_media());
    srv.stop().await;
}
