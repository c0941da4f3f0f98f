//! Relays that live through trouble: an edge pull that carries the
//! player's token to the origin, a relay push whose target comes up late.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::{collect, expected_media, media_of, publish, start};
use rtmpkit::server::{AuthOptions, ServerOptions, sign_url};
use rtmpkit::{ClientOptions, PullSession};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[tokio::test]
async fn an_edge_pull_carries_the_players_token_to_the_origin() {
    let origin = start(ServerOptions {
        auth: AuthOptions {
            play_secret: Some("origin-secret".into()),
            ..AuthOptions::default()
        },
        ..ServerOptions::default()
    })
    .await;
    let edge = start(ServerOptions {
        relay_pull: Some(format!("rtmp://{}", origin.addr)),
        ..ServerOptions::default()
    })
    .await;
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    let signed = sign_url(&edge.url("tok"), "origin-secret", expires).unwrap();
    let pull = PullSession::connect(&signed, ClientOptions::default())
        .await
        .expect("play on edge");
    let puller = tokio::spawn(async move { collect(&pull).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let push = publish(&origin.url("tok"), false).await;
    push.close().await.expect("close");
    let msgs = puller.await.expect("pull");
    assert_eq!(
        media_of(&msgs),
        expected_media(),
        "the origin took the token"
    );
    edge.stop().await;
    origin.stop().await;
}

#[tokio::test]
async fn a_relay_push_retries_until_its_target_is_up() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target_addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let source = start(ServerOptions {
        relay_push: vec![format!("rtmp://{target_addr}")],
        ..ServerOptions::default()
    })
    .await;
    // The source publishes (at real time, 5 s) while the target is down.
    let url = source.url("late");
    let publisher = tokio::spawn(async move { publish(&url, true).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let target = rtmpkit::server::Server::bind(ServerOptions {
        listen: Some(target_addr),
        ..ServerOptions::default()
    })
    .await
    .expect("bind the target");
    let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
    let target_task = tokio::spawn(target.run(async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    let pull = PullSession::connect(
        &format!("rtmp://{target_addr}/live/late"),
        ClientOptions::default(),
    )
    .await
    .expect("play on the target");
    let puller = tokio::spawn(async move { collect(&pull).await });
    let push = publisher.await.unwrap();
    push.close().await.unwrap();
    let got = media_of(&puller.await.unwrap());
    let want = expected_media();
    let videos = |v: &[(u8, u32, bytes::Bytes)]| v.iter().filter(|m| m.0 == 9).count();
    eprintln!(
        "target's player: {} of {} video",
        videos(&got),
        videos(&want)
    );
    assert!(
        videos(&got) * 10 >= videos(&want) * 8,
        "the retried relay delivered the stream"
    );
    let _ = stop.send(true);
    let _ = target_task.await;
    source.stop().await;
}
