//! Fan-out coalescing (`max_write_delay`): players get every message, in
//! batches, within the bound.

mod common;

use common::{collect_timed, expected_media, media_of, publish, start};
use rtmpkit::server::ServerOptions;
use rtmpkit::{ClientOptions, PullSession};
use std::time::Duration;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalesced_players_get_every_message_in_batches_within_the_bound() {
    let bound = Duration::from_millis(100);
    let srv = start(ServerOptions {
        max_write_delay: bound,
        ..ServerOptions::default()
    })
    .await;
    let mut pullers = Vec::new();
    for _ in 0..2 {
        let pull = PullSession::connect(&srv.url("c"), ClientOptions::default())
            .await
            .expect("play");
        pullers.push(tokio::spawn(async move { collect_timed(&pull).await }));
    }
    let t0 = Instant::now();
    let push = publish(&srv.url("c"), true).await;
    push.close().await.expect("close");
    for p in pullers {
        let got = p.await.expect("pull");
        let msgs: Vec<_> = got.iter().map(|(m, _)| m.clone()).collect();
        assert_eq!(media_of(&msgs), expected_media(), "every frame, in order");
        // Each message left the publisher at t0 + its timestamp (paced).
        let late = got
            .iter()
            .filter(|(m, _)| m.kind != rtmpkit::MediaKind::Metadata)
            .map(|(m, at)| {
                at.saturating_duration_since(t0 + Duration::from_millis(m.timestamp.0.into()))
            })
            .max()
            .expect("messages");
        assert!(
            late < bound + Duration::from_millis(150),
            "a message waited {late:?}, bound {bound:?}"
        );
        // Messages arrive in bursts (one write per tick), not one by one:
        // a burst is messages that arrive within 3 ms of the previous one.
        let mut bursts = 1;
        for w in got.windows(2) {
            if w[1].1.duration_since(w[0].1) > Duration::from_millis(3) {
                bursts += 1;
            }
        }
        assert!(
            bursts * 3 < got.len(),
            "{bursts} bursts for {} messages: not coalesced",
            got.len()
        );
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_gets_the_gop_then_every_message_once() {
    // The publisher starts before anyone plays: the clock visits a stream
    // with no players, then a player joins from the GOP cache.
    let srv = start(ServerOptions {
        max_write_delay: Duration::from_millis(100),
        ..ServerOptions::default()
    })
    .await;
    let url = srv.url("late");
    let pusher = tokio::spawn(async move { publish(&url, true).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pull = PullSession::connect(&srv.url("late"), ClientOptions::default())
        .await
        .expect("play");
    let collector = tokio::spawn(async move { collect_timed(&pull).await });
    pusher.await.expect("push").close().await.expect("close");
    let got = collector.await.expect("pull");
    let msgs: Vec<_> = got.into_iter().map(|(m, _)| m).collect();
    let got = media_of(&msgs);
    let expected = expected_media();
    // From the first keyframe the player got on, every message in order.
    let first = got
        .iter()
        .position(|(t, _, p)| *t == 9 && p.first() == Some(&0x17) && p.get(1) == Some(&1))
        .expect("a keyframe");
    let at = expected
        .iter()
        .position(|m| *m == got[first])
        .expect("the keyframe was published");
    assert!(at > 0, "the player joined late");
    assert_eq!(
        &got[first..],
        &expected[at..],
        "every message after it, once"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_written_by_the_fan_out_get_every_message_in_order() {
    // The flush clock's batches are written to idle players' sockets by
    // the fan-out itself. One player keeps up; one stops reading for a
    // while (its task takes over, then hands back).
    let srv = start(ServerOptions {
        max_write_delay: Duration::from_millis(20),
        ..ServerOptions::default()
    })
    .await;
    let mut pullers = Vec::new();
    for pause in [Duration::ZERO, Duration::from_millis(700)] {
        let pull = PullSession::connect(&srv.url("direct"), ClientOptions::default())
            .await
            .expect("play");
        pullers.push(tokio::spawn(async move {
            let first = pull.next_message().await;
            tokio::time::sleep(pause).await;
            let mut got: Vec<_> = first.into_iter().collect();
            got.extend(collect_timed(&pull).await.into_iter().map(|(m, _)| m));
            got
        }));
    }
    let push = publish(&srv.url("direct"), true).await;
    push.close().await.expect("close");
    for p in pullers {
        let got = p.await.expect("pull");
        assert_eq!(media_of(&got), expected_media(), "every frame, in order");
    }
    srv.stop().await;
}
