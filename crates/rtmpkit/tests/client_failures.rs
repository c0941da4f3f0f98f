//! Failure paths of the client against small loopback servers of our own:
//! each fails fast with the right error, and nothing is left open.

mod common;

use bytes::Bytes;
use common::{ScriptServer, listener, opts};
use rtmpkit::proto::message::status;
use rtmpkit::{ClientOptions, EndReason, Media, PullSession, PushSession, Stage};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

#[tokio::test]
async fn refused_port_fails_at_once() {
    let (l, url) = listener().await;
    drop(l);
    let t = Instant::now();
    let e = PushSession::connect(&url, opts(Duration::from_secs(10)))
        .await
        .expect_err("nothing listens");
    assert!(e.is_io(), "{e}");
    assert_eq!(e.stage(), Some(Stage::Connect));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert!(e.to_string().contains("tcp connect"), "{e}");
}

/// Paused time: the 500 ms start timeout and the server's 30 s of silence
/// pass at once, as soon as nothing else can happen.
#[tokio::test(start_paused = true)]
async fn silent_server_times_out_naming_the_handshake() {
    let (l, url) = listener().await;
    let _held = tokio::spawn(async move {
        let (s, _) = l.accept().await.expect("accept");
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    });
    let t = Instant::now();
    let e = PullSession::connect(&url, opts(Duration::from_millis(500)))
        .await
        .expect_err("no answer");
    assert!(e.is_timeout(), "{e}");
    assert_eq!(e.stage(), Some(Stage::Handshake));
    assert_eq!(
        e.to_string(),
        format!("handshake with {url} timed out after 0.5s")
    );
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn server_closing_at_once_is_a_closed_error() {
    let (l, url) = listener().await;
    tokio::spawn(async move {
        let (s, _) = l.accept().await.expect("accept");
        drop(s);
    });
    let e = PushSession::connect(&url, opts(Duration::from_secs(10)))
        .await
        .expect_err("closed");
    assert!(e.is_closed() || e.is_io(), "{e}");
    assert_eq!(e.stage(), Some(Stage::Handshake));
}

#[tokio::test]
async fn dispose_during_start_returns_promptly_and_closes_the_socket() {
    let (l, url) = listener().await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("accept");
        // Read C0+C1 and whatever follows until the client closes.
        let mut buf = vec![0u8; 4096];
        let mut total = 0;
        let closed = loop {
            match timeout(Duration::from_secs(10), s.read(&mut buf)).await {
                Ok(Ok(0)) => break true,
                Ok(Ok(n)) => total += n,
                _ => break false,
            }
        };
        let _ = tx.send((closed, total));
    });
    let push = PushSession::new(&url, opts(Duration::from_secs(30))).expect("url");
    assert!(push.dispose().is_err(), "dispose before start says so");
    let p2 = push.clone();
    let start = tokio::spawn(async move { p2.start().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    push.dispose().expect("dispose while starting");
    push.dispose().expect("a second dispose is harmless");
    let r = timeout(Duration::from_secs(2), start)
        .await
        .expect("start returned")
        .expect("task");
    assert!(r.expect_err("disposed").is_disposed());
    assert!(t.elapsed() < Duration::from_secs(2));
    let (closed, total) = timeout(Duration::from_secs(5), rx)
        .await
        .expect("server")
        .expect("result");
    assert!(closed, "the server saw the socket close");
    assert_eq!(total, 1537, "the server got C0+C1 and nothing else");
    assert!(matches!(push.wait().await, EndReason::Disposed));
}

#[tokio::test]
async fn publish_rejected_fails_at_once_with_the_code() {
    let (l, url) = listener().await;
    let script = ScriptServer {
        reject_publish: Some(status::PUBLISH_BAD_NAME),
        media: vec![],
        received: vec![],
    };
    tokio::spawn(script.serve(l));
    let t = Instant::now();
    let e = PushSession::connect(&url, opts(Duration::from_secs(10)))
        .await
        .expect_err("rejected");
    assert!(e.is_rejected(), "{e}");
    assert_eq!(e.status_code(), Some(status::PUBLISH_BAD_NAME));
    assert_eq!(e.stage(), Some(Stage::Publish));
    assert_eq!(
        e.to_string(),
        format!("publish rejected by {url}: NetStream.Publish.BadName (Already publishing)")
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn pull_receives_media_in_order_then_ends() {
    let (l, url) = listener().await;
    let media: Vec<Media> = (0..50u32)
        .map(|i| match i % 2 {
            0 => Media::video(i.into(), Bytes::from(vec![i as u8; 9000 + i as usize])),
            _ => Media::audio(i.into(), Bytes::from(vec![i as u8; 300])),
        })
        .collect();
    let script = ScriptServer {
        reject_publish: None,
        media: media.clone(),
        received: vec![],
    };
    tokio::spawn(script.serve(l));
    let pull = PullSession::connect(&url, opts(Duration::from_secs(10)))
        .await
        .expect("play");
    assert!(pull.is_running());
    assert_eq!(pull.app_name(), "live");
    assert_eq!(pull.stream_name(), "test");
    assert!(pull.unique_key().starts_with("RTMPPULL"));
    let mut got = Vec::new();
    while let Some(m) = timeout(Duration::from_secs(5), pull.next_message())
        .await
        .expect("message")
    {
        got.push(m);
    }
    assert_eq!(got, media);
    assert!(matches!(pull.wait().await, EndReason::StreamEnded(_)));
    let st = pull.stat();
    assert!(st.read_bytes > 50 * 300);
    assert!(st.wrote_bytes > 1537);
    assert_eq!(st.protocol, "RTMP");
    assert!(!pull.is_running());
}

#[tokio::test]
async fn stats_and_liveness() {
    let (l, url) = listener().await;
    let script = ScriptServer {
        reject_publish: None,
        media: vec![],
        received: vec![],
    };
    tokio::spawn(script.serve(l));
    let push = PushSession::connect(&url, opts(Duration::from_secs(10)))
        .await
        .expect("publish");
    assert_eq!(push.is_alive(), (true, true), "first call answers alive");
    assert_eq!(push.is_alive(), (false, false), "nothing moved since");
    push.update_stat(Duration::ZERO); // no division by zero
    push.write_video(0.into(), Bytes::from(vec![0x17u8; 100_000]))
        .await
        .expect("write");
    push.update_stat(Duration::from_secs(1));
    let st = push.stat();
    assert!(st.write_bitrate_kbits >= 100_000 * 8 / 1024, "{st:?}");
    assert_eq!(st.bitrate_kbits, st.write_bitrate_kbits);
    assert!(push.is_alive().1);
    push.close().await.expect("close");
    push.close().await.expect("second close is harmless");
    assert!(matches!(push.wait().await, EndReason::Closed));
    assert!(
        push.write_video(0.into(), Bytes::from_static(&[0x17]))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn write_queue_and_write_buffer_deliver_everything() {
    for (queue, wbuf) in [(0usize, 0usize), (8, 0), (0, 16 * 1024), (4, 16 * 1024)] {
        let (l, url) = listener().await;
        let script = ScriptServer {
            reject_publish: None,
            media: vec![],
            received: vec![],
        };
        let server = tokio::spawn(script.serve(l));
        let o = ClientOptions {
            write_queue_size: queue,
            write_buffer_size: wbuf,
            ..ClientOptions::default()
        };
        let push = PushSession::connect(&url, o).await.expect("publish");
        for i in 0..200u32 {
            push.write_video(i.into(), Bytes::from(vec![0x27u8; 1000 + i as usize]))
                .await
                .expect("write");
        }
        push.close().await.expect("close");
        let frames = timeout(Duration::from_secs(5), server)
            .await
            .expect("server")
            .expect("frames");
        let expect: Vec<(u32, usize)> = (0..200u32).map(|i| (i, 1000 + i as usize)).collect();
        assert_eq!(frames, expect, "queue {queue} buffer {wbuf}");
    }
}

#[tokio::test]
async fn bad_urls_fail_before_connecting() {
    for bad in ["http://x/a/b", "rtmp://host/onlyapp", "rtmp://:1935/a/b"] {
        let e = PushSession::new(bad, ClientOptions::default()).expect_err(bad);
        assert!(e.to_string().contains("invalid rtmp url"), "{e}");
    }
    let push =
        PushSession::new("rtmps://127.0.0.1:1/live/x", ClientOptions::default()).expect("parses");
    let e = push.start().await.expect_err("tls unsupported");
    assert!(e.to_string().contains("rtmps"), "{e}");
    let _ = TcpStream::connect("127.0.0.1:1").await;
}

/// Forwards connections of `l` to `to`; the first is reset (SO_LINGER 0)
/// once `reset_after` bytes came from the client, the others run whole.
async fn resetting_proxy(l: tokio::net::TcpListener, to: std::net::SocketAddr, reset_after: usize) {
    let mut first = true;
    while let Ok((mut c, _)) = l.accept().await {
        let mut s = TcpStream::connect(to).await.expect("upstream");
        if !std::mem::take(&mut first) {
            tokio::spawn(async move {
                let _ = tokio::io::copy_bidirectional(&mut c, &mut s).await;
            });
            continue;
        }
        tokio::spawn(async move {
            let (mut cr, mut cw) = c.split();
            let (mut sr, mut sw) = s.split();
            let up = async {
                let mut buf = vec![0u8; 4096];
                let mut moved = 0;
                while moved < reset_after {
                    let n = cr.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    sw.write_all(&buf[..n]).await.expect("forward");
                    moved += n;
                }
            };
            tokio::select! {
                _ = up => {}
                _ = tokio::io::copy(&mut sr, &mut cw) => {}
            }
            c.set_zero_linger().expect("linger");
            drop(c);
        });
    }
}

/// A reset under a push that reconnects fails none of its writes: the
/// break may reach a write before the read sees it, and that write's
/// caller must not get the error (the session connects again). Ten rounds,
/// as either may come first.
#[tokio::test]
async fn a_reset_under_a_reconnecting_push_fails_no_write() {
    let server = common::start(rtmpkit::server::ServerOptions::default()).await;
    let tags = common::sample_tags();
    for round in 0..10 {
        let (l, _) = listener().await;
        let front = l.local_addr().expect("addr");
        let proxy = tokio::spawn(resetting_proxy(l, server.addr, 40_000));
        let opts = ClientOptions {
            reconnect: Some(rtmpkit::ReconnectPolicy {
                first_delay: Duration::from_millis(50),
                ..rtmpkit::ReconnectPolicy::default()
            }),
            ..ClientOptions::default()
        };
        let url = format!("rtmp://{front}/live/reset{round}");
        let push = PushSession::connect(&url, opts).await.expect("publish");
        for (i, t) in tags.iter().enumerate() {
            if let Err(e) = push.write_media(common::tag_media(t)).await {
                panic!("round {round}: write {i} failed: {e}");
            }
        }
        push.close().await.expect("close");
        assert_eq!(push.stat().reconnects, 1, "round {round}: one reconnect");
        proxy.abort();
    }
    server.stop().await;
}
