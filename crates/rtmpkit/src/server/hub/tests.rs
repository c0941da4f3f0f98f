//! Hub behaviour: late joiners, duplicate publishers, slow players, takeover.

use super::*;

use bytes::Bytes;
use rtmpkit_proto::Timestamp;
use rtmpkit_proto::media::MediaKind;

pub(super) fn video(ts: u32, key: bool, len: usize) -> Media {
    let mut p = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
    p.resize(len, 0);
    Media::video(Timestamp(ts), Bytes::from(p))
}

fn audio(ts: u32) -> Media {
    Media::audio(Timestamp(ts), Bytes::from_static(&[0xaf, 1, 0, 0]))
}

pub(super) fn hub() -> Hub {
    Hub::new(
        GopLimits {
            enabled: true,
            max_bytes: 1 << 20,
            max_messages: 100,
        },
        QueueLimits {
            soft_bytes: 10_000,
            hard_bytes: 20_000,
        },
    )
}

/// What the player would send, batches opened.
fn drain(q: &PlayerQueue) -> Vec<Item> {
    let mut v = Vec::new();
    q.take(usize::MAX, &mut v);
    let mut out = Vec::new();
    for item in &v {
        item.for_each(|o| {
            out.push(match o {
                Out::Media(m) => Item::Media(m.clone()),
                Out::StreamBegin => Item::StreamBegin,
                Out::StreamEnd => Item::StreamEnd,
            })
        });
    }
    out
}

#[test]
fn late_joiner_starts_with_headers_and_the_last_gop() {
    let h = hub();
    let s = h.publish("live/a", 1, None, true).unwrap().stream;
    s.deliver(
        1,
        Media::metadata(Timestamp(0), Bytes::from_static(b"meta")),
    );
    s.deliver(
        1,
        Media::video(Timestamp(0), Bytes::from_static(&[0x17, 0, 0, 0, 0])),
    );
    s.deliver(
        1,
        Media::audio(Timestamp(0), Bytes::from_static(&[0xaf, 0, 0x12, 0x10])),
    );
    s.deliver(1, video(0, true, 100));
    s.deliver(1, video(40, false, 100));
    s.deliver(1, video(80, true, 100));
    s.deliver(1, audio(90));
    s.deliver(1, video(120, false, 100));
    let (_, q) = h.play("live/a", 2, false);
    let items = drain(&q);
    let ts: Vec<(u8, u32)> = items
        .iter()
        .map(|i| match i {
            Item::Media(f) => (f.type_id(), f.timestamp.0),
            _ => (0, 0),
        })
        .collect();
    assert_eq!(
        ts,
        vec![(18, 0), (9, 0), (8, 0), (9, 80), (8, 90), (9, 120)]
    );
    assert!(matches!(&items[3], Item::Media(f) if f.keyframe));
}

#[test]
fn an_application_without_gop_cache_gives_late_joiners_headers_only() {
    let h = hub();
    let s = h.publish("live/a", 1, None, false).unwrap().stream;
    s.deliver(
        1,
        Media::video(Timestamp(0), Bytes::from_static(&[0x17, 0, 0, 0, 0])),
    );
    s.deliver(1, video(0, true, 100));
    s.deliver(1, video(40, false, 100));
    let (_, q) = h.play("live/a", 2, false);
    let got: Vec<u32> = drain(&q)
        .iter()
        .filter_map(|i| match i {
            Item::Media(f) => Some(f.timestamp.0),
            _ => None,
        })
        .collect();
    // The sequence header only; the next keyframe starts the picture.
    assert_eq!(got, vec![0]);
    s.deliver(1, video(80, false, 100));
    s.deliver(1, video(120, true, 100));
    let next: Vec<(u32, bool)> = drain(&q)
        .iter()
        .filter_map(|i| match i {
            Item::Media(f) => Some((f.timestamp.0, f.keyframe)),
            _ => None,
        })
        .collect();
    assert_eq!(next, vec![(120, true)]);
}

#[test]
fn duplicate_publisher_is_refused_and_the_first_keeps_the_stream() {
    let h = hub();
    let _s = h.publish("live/a", 1, None, true).unwrap().stream;
    assert_eq!(
        h.publish("live/a", 2, None, true).unwrap_err(),
        PublishError::AlreadyPublishing
    );
    h.unpublish("live/a", 2); // not the publisher: no effect
    assert!(h.get("live/a").unwrap().has_publisher());
    h.unpublish("live/a", 1);
    assert!(h.get("live/a").is_none(), "idle streams are forgotten");
}

#[test]
fn waiting_player_sees_begin_and_end() {
    let h = hub();
    let (_, q) = h.play("live/a", 7, false);
    assert!(drain(&q).is_empty());
    let s = h.publish("live/a", 1, None, true).unwrap().stream;
    s.deliver(1, video(0, true, 50));
    h.unpublish("live/a", 1);
    let items = drain(&q);
    assert!(matches!(items[0], Item::StreamBegin));
    assert!(matches!(items[1], Item::Media(_)));
    assert!(matches!(items[2], Item::StreamEnd));
    assert!(h.get("live/a").is_some(), "the player keeps the stream");
    h.stop_playing("live/a", 7);
    assert!(h.get("live/a").is_none());
}

#[test]
fn slow_player_drops_video_until_a_keyframe_and_keeps_headers() {
    let h = hub();
    let s = h.publish("live/a", 1, None, true).unwrap().stream;
    let (_, q) = h.play("live/a", 2, false);
    s.deliver(1, video(0, true, 3000));
    for i in 1..10 {
        s.deliver(1, video(i * 40, false, 3000)); // over the soft limit after 3
    }
    s.deliver(
        1,
        Media::video(Timestamp(400), Bytes::from_static(&[0x17, 0, 0, 0, 0])),
    );
    for i in 0..200 {
        s.deliver(1, audio(i)); // audio keeps flowing up to the hard limit
    }
    assert!(q.queued_bytes() <= 20_000 + 64);
    assert!(q.dropped() > 0);
    let items = drain(&q);
    let vids: Vec<u32> = items
        .iter()
        .filter_map(|i| match i {
            Item::Media(f) if f.kind == MediaKind::Video => Some(f.timestamp.0),
            _ => None,
        })
        .collect();
    assert_eq!(
        vids,
        vec![0, 40, 80, 400],
        "no video after a drop until a keyframe; seq header kept"
    );
    // Room again: non-key video still waits for a keyframe.
    s.deliver(1, video(440, false, 100));
    s.deliver(1, video(480, true, 100));
    s.deliver(1, video(520, false, 100));
    let vids: Vec<u32> = drain(&q)
        .iter()
        .filter_map(|i| match i {
            Item::Media(f) if f.kind == MediaKind::Video => Some(f.timestamp.0),
            _ => None,
        })
        .collect();
    assert_eq!(vids, vec![480, 520]);
}

#[test]
fn a_silent_publisher_is_taken_over_and_players_keep_a_forward_timeline() {
    let h = hub();
    let old = h.publish("live/a", 1, Some(Duration::ZERO), true).unwrap();
    let (_, q) = h.play("live/a", 9, false);
    old.stream.deliver(1, video(0, true, 50));
    old.stream.deliver(1, video(5000, false, 50));
    // A live publisher is refused when takeover is off.
    assert_eq!(
        h.publish("live/a", 2, None, true).unwrap_err(),
        PublishError::AlreadyPublishing
    );
    let new = h.publish("live/a", 2, Some(Duration::ZERO), true).unwrap();
    assert_eq!(new.took_over, Some(1));
    // The old publisher is told, and reaches nobody any more.
    let told = std::pin::pin!(old.replaced.notified());
    assert!(futures_ready(told));
    old.stream.deliver(1, video(5040, false, 50));
    // The new one starts at 0 again; players see it after 5000.
    new.stream.deliver(2, video(0, false, 50)); // not a keyframe: skipped
    new.stream.deliver(2, video(40, true, 50));
    new.stream.deliver(2, video(80, false, 50));
    let vids: Vec<(u32, bool)> = drain(&q)
        .iter()
        .filter_map(|i| match i {
            Item::Media(f) => Some((f.timestamp.0, f.keyframe)),
            _ => None,
        })
        .collect();
    assert_eq!(vids.len(), 4, "{vids:?}");
    assert_eq!(&vids[..2], &[(0, true), (5000, false)]);
    assert!(vids[2].1, "the new publisher starts on a keyframe");
    assert!(vids[2].0 > 5000 && vids[3].0 == vids[2].0 + 40, "{vids:?}");
    // No StreamEnd / StreamBegin between them: the player's session goes on.
    h.unpublish("live/a", 1); // the replaced one leaving changes nothing
    assert!(h.get("live/a").unwrap().has_publisher());
}

/// Whether a future is ready at its first poll.
fn futures_ready<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> bool {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    f.poll(&mut cx).is_ready()
}

#[test]
fn extra_tracks_reach_only_players_that_announced_them() {
    let h = hub();
    let s = h.publish("live/m", 1, None, true).unwrap().stream;
    // Track 0: legacy AAC; track 1: Multitrack OneTrack mp4a (as FFmpeg / OBS).
    s.deliver(
        1,
        Media::audio(Timestamp(0), Bytes::from_static(&[0xaf, 0, 0x12, 0x10])),
    );
    s.deliver(
        1,
        Media::audio(
            Timestamp(0),
            Bytes::from_static(b"\x95\x00mp4a\x01\x12\x10"),
        ),
    );
    s.deliver(1, video(0, true, 50));
    let (_, legacy) = h.play("live/m", 2, true);
    let (_, enhanced) = h.play("live/m", 3, false);
    s.deliver(
        1,
        Media::audio(Timestamp(20), Bytes::from_static(b"\x95\x01mp4a\x01\x21")),
    );
    s.deliver(
        1,
        Media::audio(Timestamp(21), Bytes::from_static(&[0xaf, 1, 0x21])),
    );
    let tracks = |q: &PlayerQueue| -> Vec<Option<u8>> {
        drain(q)
            .iter()
            .filter_map(|i| match i {
                Item::Media(m) if m.kind == MediaKind::Audio => Some(m.track),
                _ => None,
            })
            .collect()
    };
    // Late joiners get both sequence headers (the extra one from its own
    // cache slot), then the frames.
    assert_eq!(tracks(&enhanced), vec![None, Some(1), Some(1), None]);
    assert_eq!(tracks(&legacy), vec![None, None]);
}

#[test]
fn a_player_is_woken_once_per_batch() {
    let h = hub();
    let s = h.publish("live/w", 1, None, true).unwrap().stream;
    let (_, q) = h.play("live/w", 2, false);
    for i in 0..10 {
        s.deliver(1, audio(i));
    }
    assert!(futures_ready(std::pin::pin!(q.notify.notified())));
    {
        let again = std::pin::pin!(q.notify.notified());
        assert!(!futures_ready(again), "one wake-up for ten messages");
    }
    assert_eq!(drain(&q).len(), 10);
    // Empty again: the next message wakes the player.
    s.deliver(1, audio(20));
    assert!(futures_ready(std::pin::pin!(q.notify.notified())));
}

fn timestamps(items: &[Item]) -> Vec<Option<u32>> {
    items
        .iter()
        .map(|i| match i {
            Item::Media(m) => Some(m.timestamp.0),
            _ => None,
        })
        .collect()
}

#[test]
fn coalescing_fans_out_one_batch_per_tick_in_order() {
    let clock = Arc::new(FlushClock::new(Duration::from_millis(40)));
    let h = hub().with_clock(clock.clone());
    let s = h.publish("live/c", 1, None, true).unwrap().stream;
    let (_, a) = h.play("live/c", 2, false);
    let mut spare = Vec::new();
    s.deliver(1, video(0, true, 100));
    for i in 1..4 {
        s.deliver(1, video(i * 40, false, 100));
    }
    assert!(
        !futures_ready(std::pin::pin!(a.notify.notified())),
        "messages wait for the tick"
    );
    // A player joining before the tick gets the GOP (which holds the
    // pending messages) and not the same messages again from the batch.
    let (_, b) = h.play("live/c", 3, false);
    assert!(
        futures_ready(std::pin::pin!(b.notify.notified())),
        "a join is served at once"
    );
    assert_eq!(
        timestamps(&drain(&b)),
        [Some(0), Some(40), Some(80), Some(120)]
    );
    assert_eq!(
        clock.tick(&mut spare),
        1,
        "one stream listed for four messages"
    );
    assert!(futures_ready(std::pin::pin!(a.notify.notified())));
    assert!(!futures_ready(std::pin::pin!(b.notify.notified())));
    assert_eq!(
        timestamps(&drain(&a)),
        [Some(0), Some(40), Some(80), Some(120)]
    );
    assert!(drain(&b).is_empty());
    assert_eq!(clock.tick(&mut spare), 0, "nothing pending, nothing listed");
    // Both get the next batch; an unpublish comes after what was pending.
    s.deliver(1, audio(150));
    s.deliver(1, video(160, false, 100));
    h.unpublish("live/c", 1);
    for q in [&a, &b] {
        assert!(futures_ready(std::pin::pin!(q.notify.notified())));
        assert_eq!(timestamps(&drain(q)), [Some(150), Some(160), None]);
    }
    assert_eq!(clock.tick(&mut spare), 0);
    assert!(drain(&a).is_empty(), "the batch went out once");
}

#[test]
fn phase_groups_are_served_in_turn_and_get_every_batch_once() {
    // 100 ms: four groups, a tick every 25 ms.
    let clock = Arc::new(FlushClock::new(Duration::from_millis(100)));
    let h = hub().with_clock(clock.clone());
    let s = h.publish("live/p", 1, None, true).unwrap().stream;
    // Connections 12, 13, 10, 11 are groups 0, 1, 2, 3.
    let players: Vec<_> = [12, 13, 10, 11]
        .into_iter()
        .map(|conn| h.play("live/p", conn, false).1)
        .collect();
    // More players, so that the stream is not small (served all at once).
    let _more: Vec<_> = (100..108)
        .map(|conn| h.play("live/p", conn, false).1)
        .collect();
    let mut spare = Vec::new();
    s.deliver(1, audio(0));
    for turn in 0..2 {
        assert_eq!(clock.tick(&mut spare), 1);
        for (i, q) in players.iter().enumerate() {
            let got = timestamps(&drain(q));
            if i == turn {
                assert_eq!(got, [Some(0)], "group {i} is served at tick {turn}");
            } else {
                assert!(got.is_empty(), "group {i} waits for its turn");
            }
        }
    }
    // A second batch: group 2 gets both at its turn, groups 0 and 1 the
    // new one at theirs.
    s.deliver(1, audio(30));
    assert_eq!(clock.tick(&mut spare), 1);
    assert_eq!(timestamps(&drain(&players[2])), [Some(0), Some(30)]);
    assert_eq!(clock.tick(&mut spare), 1);
    assert_eq!(timestamps(&drain(&players[3])), [Some(0), Some(30)]);
    assert_eq!(clock.tick(&mut spare), 1);
    assert_eq!(timestamps(&drain(&players[0])), [Some(30)]);
    assert_eq!(clock.tick(&mut spare), 1);
    assert_eq!(timestamps(&drain(&players[1])), [Some(30)]);
    assert_eq!(clock.tick(&mut spare), 0, "every group had every batch");
    for q in &players {
        assert!(drain(q).is_empty());
    }
}

#[test]
fn a_coalescing_player_that_falls_behind_still_drops_by_the_rules() {
    let clock = Arc::new(FlushClock::new(Duration::from_millis(40)));
    let h = hub().with_clock(clock.clone());
    let s = h.publish("live/d", 1, None, true).unwrap().stream;
    let (_, q) = h.play("live/d", 2, false);
    let mut spare = Vec::new();
    for i in 0..10 {
        s.deliver(1, video(i * 40, i == 0, 3000));
        clock.tick(&mut spare);
    }
    // The soft limit (10 000 bytes) takes three frames; then video waits
    // for a keyframe.
    assert_eq!(timestamps(&drain(&q)), [Some(0), Some(40), Some(80)]);
    assert!(q.dropped() > 0);
    s.deliver(1, video(400, true, 3000));
    clock.tick(&mut spare);
    assert_eq!(timestamps(&drain(&q)), [Some(400)]);
}

#[test]
fn a_small_stream_is_served_whole_once_per_period_on_its_phase() {
    // 100 ms: four phases, a tick every 25 ms.
    let clock = Arc::new(FlushClock::new(Duration::from_millis(100)));
    let h = hub().with_clock(clock.clone());
    // Streams take the phases in turn: this second one has phase 1.
    let _first = h.publish("live/a", 1, None, true).unwrap().stream;
    let s = h.publish("live/b", 2, None, true).unwrap().stream;
    let players: Vec<_> = [12, 13, 10]
        .into_iter()
        .map(|conn| h.play("live/b", conn, false).1)
        .collect();
    let mut spare = Vec::new();
    s.deliver(2, audio(0));
    s.deliver(2, audio(20));
    // Tick 0: not its turn; tick 1: every player gets both at once.
    assert_eq!(clock.tick(&mut spare), 1);
    assert!(players.iter().all(|q| drain(q).is_empty()));
    assert_eq!(clock.tick(&mut spare), 1);
    for q in &players {
        assert_eq!(timestamps(&drain(q)), [Some(0), Some(20)]);
    }
    // Nothing more for a whole period: the clock stops visiting it.
    for _ in 0..3 {
        assert_eq!(clock.tick(&mut spare), 1);
    }
    assert_eq!(clock.tick(&mut spare), 0);
    assert!(players.iter().all(|q| drain(q).is_empty()));
}

#[test]
fn a_small_stream_read_on_its_turn_is_served_at_once_and_the_clock_lets_go() {
    let clock = Arc::new(FlushClock::new(Duration::from_millis(100)));
    let h = hub().with_clock(clock.clone());
    let s = h.publish("live/r", 1, None, true).unwrap().stream;
    let players: Vec<_> = [10, 11]
        .into_iter()
        .map(|c| h.play("live/r", c, false).1)
        .collect();
    // What one read brought, served right after it: no tick needed.
    s.deliver(1, audio(0));
    s.deliver(1, audio(20));
    s.serve_read();
    for q in &players {
        assert_eq!(timestamps(&drain(q)), [Some(0), Some(20)]);
    }
    // The ticks find nothing more to give, and stop visiting it.
    let mut spare = Vec::new();
    let mut visited = 0;
    while clock.tick(&mut spare) > 0 {
        visited += 1;
        assert!(visited <= 4, "still visited after a whole period");
    }
    assert!(players.iter().all(|q| drain(q).is_empty()), "nothing twice");
    // A big stream is left to the clock.
    let _more: Vec<_> = (20..28).map(|c| h.play("live/r", c, false).1).collect();
    s.deliver(1, audio(40));
    s.serve_read();
    assert!(
        drain(&players[0]).is_empty(),
        "a big stream waits for its tick"
    );
}

#[test]
fn the_gop_is_released_when_its_publisher_leaves() {
    let h = hub();
    let s = h.publish("live/g", 1, None, true).unwrap().stream;
    // A player stays: the stream lives on, waiting for a publisher.
    let (_, _q) = h.play("live/g", 2, false);
    for i in 0..20 {
        s.deliver(1, video(i * 40, i == 0, 1000));
    }
    assert_eq!(lock(&s.state).gop.len(), 20);
    h.unpublish("live/g", 1);
    let st = lock(&s.state);
    assert_eq!((st.gop.capacity(), st.gop_bytes), (0, 0), "no room kept");
}

#[test]
fn a_big_stream_with_no_delay_keeps_every_players_order_across_threads() {
    // 300 players: each message is served on every core at once (one
    // slice of the players by a helper thread); the unpublish notice
    // still comes after every message, for every player.
    let h = hub();
    let s = h.publish("live/big", 1, None, true).unwrap().stream;
    s.deliver(1, video(0, true, 10));
    let players: Vec<_> = (2..302).map(|c| h.play("live/big", c, false).1).collect();
    // Within the queue limit: nothing is dropped.
    for i in 1..100u32 {
        s.deliver(1, video(i * 40, i % 50 == 0, 10));
    }
    h.unpublish("live/big", 1);
    let want: Vec<Option<u32>> = (0..100).map(|i| Some(i * 40)).chain([None]).collect();
    for q in &players {
        let got = drain(q);
        assert!(
            matches!(got.last(), Some(Item::StreamEnd)),
            "the notice last"
        );
        assert_eq!(
            timestamps(&got),
            want,
            "every message, in order, then the notice"
        );
    }
}
