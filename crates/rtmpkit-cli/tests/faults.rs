//! Faults of the network, the operating system and the disk end one
//! session (or one command) cleanly, and nothing else: the server keeps
//! serving, and a healthy player gets every frame.
#![allow(clippy::unwrap_used)]

mod common;

use common::raw::{
    Healthy, chunked, handshake, handshaken, playing, publishing, reset, with_healthy_player,
};
use common::{Proc, Served, SmallDisk, push_looping, rtmpkit};
use rtmpkit_proto::ChunkEncoder;
use rtmpkit_proto::flv::FlvReader;
use rtmpkit_proto::message::Message;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A keyframe of `len` bytes (AVC NALU, not a sequence header).
fn keyframe(len: usize) -> Message {
    let mut v = vec![0x17, 0x01, 0, 0, 0];
    v.resize(len, 0xAB);
    Message::Video(v.into())
}

/// Half of a large video message on a publishing connection.
fn half_a_message(s: &mut TcpStream, enc: &mut ChunkEncoder) {
    let bytes = chunked(enc, 6, 1, &keyframe(1 << 20));
    s.write_all(&bytes[..bytes.len() / 2]).unwrap();
}

#[test]
fn a_publisher_that_resets_mid_message_ends_its_stream_only() {
    with_healthy_player(
        "publisher RST mid-message",
        "unpublish stream=live/v",
        64,
        |port| {
            let (mut s, mut enc) = publishing(port, "v");
            s.write_all(&chunked(&mut enc, 6, 1, &keyframe(2000)))
                .unwrap();
            half_a_message(&mut s, &mut enc);
            reset(s);
            std::thread::sleep(Duration::from_millis(500));
            // The name is free again at once.
            let _again = publishing(port, "v");
        },
    );
}

#[test]
fn a_half_open_publisher_is_dropped_at_the_idle_timeout() {
    with_healthy_player(
        "publisher silent mid-message",
        "timed out after 2s",
        64,
        |port| {
            let (mut s, mut enc) = publishing(port, "v");
            half_a_message(&mut s, &mut enc);
            // It neither sends nor closes: the server ends it after the idle timeout.
            let t = Instant::now();
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut buf = [0u8; 4096];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => break,
                }
                assert!(
                    t.elapsed() < Duration::from_secs(6),
                    "the silent publisher was kept"
                );
            }
            let _again = publishing(port, "v");
        },
    );
}

#[test]
fn players_that_reset_during_a_large_keyframe_leave_the_rest_unharmed() {
    with_healthy_player(
        "players RST mid-keyframe",
        "play stream=live/big",
        64,
        |port| {
            let mut players = Vec::new();
            for _ in 0..5 {
                let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                    .unwrap();
                sock.set_recv_buffer_size(4096).unwrap();
                sock.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
                    .unwrap();
                let mut s: TcpStream = sock.into();
                handshake(&mut s);
                playing(&mut s, "big");
                players.push(s);
            }
            // Players first (they wait for the stream), so the publisher is never idle.
            let (mut publisher, mut enc) = publishing(port, "big");
            // 2 MB keyframes: the players' small windows stop each one mid-frame.
            for _ in 0..5 {
                publisher
                    .write_all(&chunked(&mut enc, 6, 1, &keyframe(2 << 20)))
                    .unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
            for mut p in players {
                let mut some = [0u8; 1000];
                let _ = p.read(&mut some);
                reset(p);
            }
            publisher
                .write_all(&chunked(&mut enc, 6, 1, &keyframe(2 << 20)))
                .unwrap();
            std::thread::sleep(Duration::from_millis(500));
            let _fresh = handshaken(port);
        },
    );
}

#[test]
fn out_of_file_descriptors_the_server_keeps_its_clients_and_recovers() {
    let served = Served::start_limited(48, &["-v".into(), "--listen".into(), "127.0.0.1:0".into()]);
    let port = served.plain.unwrap();
    let url = format!("rtmp://127.0.0.1:{port}/live/s");
    let dir = tempfile::tempdir().unwrap();
    let healthy = Healthy::start(port, dir.path());
    std::thread::sleep(Duration::from_millis(500));
    // More connections than descriptors left: the kernel completes them,
    // the server cannot accept them all.
    let flood: Vec<TcpStream> = (0..80)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(
        served.wait_line("accept failed", Duration::from_secs(5)),
        "no log line for the refused connections"
    );
    std::thread::sleep(Duration::from_secs(1));
    drop(flood);
    // Recovered: a new player is served.
    std::thread::sleep(Duration::from_secs(2));
    let probe = rtmpkit()
        .args(["-q", "pull", &url, "--duration", "1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        probe.status.success(),
        "a new player after the flood: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    healthy.gets_every_frame("out of file descriptors");
}

#[test]
fn pull_onto_a_full_disk_fails_clearly_and_keeps_a_valid_file() {
    let Some(disk) = SmallDisk::mount_or_skip(200) else {
        return;
    };
    let served = Served::start(&["--listen".into(), "127.0.0.1:0".into()]);
    let url = format!("rtmp://127.0.0.1:{}/live/s", served.plain.unwrap());
    let _pusher = push_looping(&url);
    let out = disk.0.path().join("out.flv");
    let mut pull = Proc(
        rtmpkit()
            .args(["pull", &url, "-o"])
            .arg(&out)
            .args(["--duration", "30"])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let status = pull
        .wait_timeout(Duration::from_secs(20))
        .expect("pull ends when the disk is full");
    let mut err = String::new();
    pull.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    eprintln!("{err}");
    assert_eq!(status.code(), Some(1), "exit status {status:?}");
    assert!(
        err.contains("No space left on device"),
        "the error names the cause: {err}"
    );
    // Valid up to the failure: the header, then whole tags (the last one
    // may be cut where the disk ran out).
    let data = std::fs::read(&out).unwrap();
    assert!(data.len() > 100 * 1024, "only {} bytes written", data.len());
    let mut r = FlvReader::new();
    r.push(&data);
    let mut tags = 0;
    while let Ok(Some(_)) = r.next_tag() {
        tags += 1;
    }
    assert!(r.header().is_some() && tags > 50, "{tags} readable tags");
}

#[test]
fn an_edge_gets_the_stream_back_when_its_origin_returns() {
    let origin_port = common::free_port();
    let origin_args = vec!["--listen".to_string(), format!("127.0.0.1:{origin_port}")];
    let origin = Served::start(&origin_args);
    let edge = Served::start(&[
        "-v".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--relay-pull".into(),
        format!("rtmp://127.0.0.1:{origin_port}"),
    ]);
    let origin_url = format!("rtmp://127.0.0.1:{origin_port}/live/o");
    let push = push_looping;
    let pusher = push(&origin_url);
    std::thread::sleep(Duration::from_millis(500));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("edge.flv");
    let mut player = Proc(
        rtmpkit()
            .args([
                "-q",
                "pull",
                &format!("rtmp://127.0.0.1:{}/live/o", edge.plain.unwrap()),
                "-o",
            ])
            .arg(&out)
            .args(["--duration", "25"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(3));
    // The origin dies (SIGKILL), and with it the publisher's connection.
    drop(origin);
    drop(pusher);
    std::thread::sleep(Duration::from_secs(2));
    let before = common::raw::av_tags(&out);
    assert!(
        before > 50,
        "the edge's player got {before} tags before the origin died"
    );
    // The origin comes back on the same port, and the publisher with it.
    let _origin = Served::start(&origin_args);
    let _pusher = push(&origin_url);
    let t = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = common::raw::av_tags(&out);
        if now >= before + 100 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "the edge's player got only {} tags after the origin returned",
            now - before
        );
    }
    assert!(
        player.0.try_wait().unwrap().is_none(),
        "the edge's player had to reconnect"
    );
    eprintln!(
        "edge's player: {before} tags before, back after {:.1} s",
        t.elapsed().as_secs_f64()
    );
}
