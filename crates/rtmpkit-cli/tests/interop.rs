//! Interop with real peers on 127.0.0.1: nginx-rtmp, `ffmpeg -listen 1`,
//! ffmpeg as publisher and player, ffprobe to check media.
//!
//! Without the peers these tests say they are skipped and why; with
//! `CI=true` a missing peer is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

use rtmpkit_proto::flv::{FlvReader, TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO};
use rtmpkit_proto::media::{AudioTagHeader, VideoPacketKind, VideoTagHeader};
mod common;

use common::*;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn push_to_nginx_rtmp_and_pull_back_with_ffmpeg() {
    let nginx = Nginx::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ffmpeg-pulled.flv");
    let mut player = ffmpeg_player(&nginx.url("push1"), &out);
    std::thread::sleep(Duration::from_millis(800));
    let r = run(rtmpkit().arg("push").arg(fixture()).arg(nginx.url("push1")));
    assert!(r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("push: sent 346 tags"));
    assert!(
        player.wait_timeout(Duration::from_secs(30)).is_some(),
        "ffmpeg did not stop"
    );
    assert_same_media(&fixture(), &out);
}

fn push_to_ffmpeg_listen() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ffmpeg-listen.flv");
    let port = free_port();
    let url = format!("rtmp://127.0.0.1:{port}/live/listen");
    let mut server = Proc(
        Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-listen",
                "1",
                "-i",
                &url,
            ])
            .args(["-c", "copy", "-f", "flv", "-y"])
            .arg(&out)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // ffmpeg -listen takes one connection only: no probing, retry the push
    // while it is not listening yet.
    let t = Instant::now();
    loop {
        let r = run(rtmpkit()
            .arg("push")
            .arg("--no-pace")
            .arg(fixture())
            .arg(&url));
        if r.status.success() {
            break;
        }
        assert!(
            String::from_utf8_lossy(&r.stderr).contains("refused")
                && t.elapsed() < Duration::from_secs(10),
            "push to ffmpeg -listen failed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let st = server
        .wait_timeout(Duration::from_secs(15))
        .expect("ffmpeg -listen ends after the publisher leaves");
    assert!(st.success(), "ffmpeg exit {st}");
    assert_same_media(&fixture(), &out);
}

/// Checks what the FLV written by `rtmpkit pull` looks like: metadata, then
/// both sequence headers before any frame, monotonic timestamps.
fn check_pulled_flv(file: &Path) {
    let bytes = std::fs::read(file).unwrap();
    let mut r = FlvReader::new();
    r.push(&bytes);
    let mut tags = Vec::new();
    while let Some(t) = r.next_tag().unwrap() {
        tags.push(t);
    }
    assert_eq!(r.pending_bytes(), 0, "no trailing garbage");
    assert_eq!(tags[0].tag_type, TAG_SCRIPT, "starts with metadata");
    let first_frame = tags
        .iter()
        .position(|t| {
            (t.tag_type == TAG_VIDEO
                && !VideoTagHeader::parse(&t.data).unwrap().is_sequence_header())
                || (t.tag_type == TAG_AUDIO
                    && !AudioTagHeader::parse(&t.data).unwrap().sequence_header)
        })
        .unwrap();
    let head = &tags[..first_frame];
    assert!(
        head.iter().any(|t| t.tag_type == TAG_VIDEO),
        "video sequence header first"
    );
    assert!(
        head.iter().any(|t| t.tag_type == TAG_AUDIO),
        "audio sequence header first"
    );
    for kind in [TAG_VIDEO, TAG_AUDIO] {
        let ts: Vec<u32> = tags
            .iter()
            .filter(|t| t.tag_type == kind)
            .map(|t| t.timestamp.0)
            .collect();
        assert!(
            ts.windows(2).all(|w| w[0] <= w[1]),
            "monotonic timestamps of tag type {kind}"
        );
    }
}

fn pull_from_nginx_rtmp_while_ffmpeg_publishes() {
    let nginx = Nginx::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pulled.flv");
    let mut pull = Proc(
        rtmpkit()
            .arg("pull")
            .arg(nginx.url("pull1"))
            .arg("-o")
            .arg(&out)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let r = run(Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(fixture())
        .args(["-c", "copy", "-f", "flv", &nginx.url("pull1")]));
    assert!(r.status.success());
    let st = pull
        .wait_timeout(Duration::from_secs(15))
        .expect("pull ends when the publisher leaves");
    let mut err = String::new();
    std::io::Read::read_to_string(pull.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    eprintln!("pull: {err}");
    assert!(st.success(), "pull exit {st}");
    check_pulled_flv(&out);
    assert_same_media(&fixture(), &out);
}

fn digest_handshake_with_nginx_rtmp_push_and_pull() {
    let nginx = Nginx::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("digest.flv");
    let mut pull = Proc(
        rtmpkit()
            .args(["-vv", "pull", "--complex-handshake"])
            .arg(nginx.url("digest"))
            .arg("-o")
            .arg(&out)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let r = run(rtmpkit()
        .args(["-vv", "push", "--complex-handshake"])
        .arg(fixture())
        .arg(nginx.url("digest")));
    assert!(r.status.success());
    let push_log = String::from_utf8_lossy(&r.stderr);
    assert!(
        push_log.contains("server digest verified=true"),
        "nginx answered with a valid digest S1"
    );
    let st = pull
        .wait_timeout(Duration::from_secs(15))
        .expect("pull ends");
    let mut err = String::new();
    std::io::Read::read_to_string(pull.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(st.success(), "pull exit {st}: {err}");
    assert!(err.contains("server digest verified=true"));
    assert_same_media(&fixture(), &out);
}

fn second_publisher_on_nginx_rtmp_fails_fast_with_the_code() {
    let nginx = Nginx::start();
    let mut first = Proc(
        rtmpkit()
            .args(["-q", "push", "--loop"])
            .arg(fixture())
            .arg(nginx.url("dup"))
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        first.0.try_wait().unwrap().is_none(),
        "the first publisher is running"
    );
    let t = Instant::now();
    let r = run(rtmpkit().arg("push").arg(fixture()).arg(nginx.url("dup")));
    let took = t.elapsed();
    eprintln!("second publisher failed after {took:?}");
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains(&format!(
            "error: publish rejected by {}: NetStream.Publish.BadName",
            nginx.url("dup")
        )),
        "{err}"
    );
    // Well under the 10 s start timeout: the rejection ends the start at once.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        first.0.try_wait().unwrap().is_none(),
        "the first publisher is unharmed"
    );
}

fn cli_failures_name_the_cause() {
    let port = free_port();
    let t = Instant::now();
    let r = run(rtmpkit()
        .arg("pull")
        .arg(format!("rtmp://127.0.0.1:{port}/live/x")));
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("error: tcp connect with rtmp://127.0.0.1"),
        "{err}"
    );
    assert!(err.to_lowercase().contains("refused"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5));
    // A server that accepts and never answers: the start timeout names the stage.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("rtmp://127.0.0.1:{}/live/x", l.local_addr().unwrap().port());
    let r = run(rtmpkit()
        .args(["push", "--timeout", "1"])
        .arg(fixture())
        .arg(&url));
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains(&format!("error: handshake with {url} timed out after 1s")),
        "{err}"
    );
    drop(l);
    let r = run(rtmpkit()
        .arg("push")
        .arg("/nonexistent.flv")
        .arg("rtmp://127.0.0.1/live/x"));
    assert!(String::from_utf8_lossy(&r.stderr).contains("cannot open /nonexistent.flv"));
    let r = run(rtmpkit()
        .arg("push")
        .arg(fixture())
        .arg("rtmp://127.0.0.1/live"));
    assert!(String::from_utf8_lossy(&r.stderr).contains("invalid rtmp url"));
}

fn looped_push_keeps_timestamps_increasing_and_many_players_receive_it() {
    let nginx = Nginx::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("looped.flv");
    let one = Proc(
        rtmpkit()
            .args(["pull", "--duration", "8", "-o"])
            .arg(&out)
            .arg(nginx.url("loop"))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let many = Proc(
        rtmpkit()
            .args(["pull", "--duration", "8", "-n", "3"])
            .arg(nginx.url("loop"))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let _push = Proc(
        rtmpkit()
            .args(["-q", "push", "--loop"])
            .arg(fixture())
            .arg(nginx.url("loop"))
            .spawn()
            .unwrap(),
    );
    for mut p in [one, many] {
        let st = p
            .wait_timeout(Duration::from_secs(20))
            .expect("pull stops after --duration");
        let mut err = String::new();
        std::io::Read::read_to_string(p.0.stderr.as_mut().unwrap(), &mut err).unwrap();
        eprintln!("{err}");
        assert!(st.success(), "{err}");
        if err.contains("3 sessions") {
            assert!(err.contains("3 sessions, 0 failed"), "{err}");
        }
    }
    // More than one pass of the 5 s file, with timestamps that keep going up.
    let bytes = std::fs::read(&out).unwrap();
    let mut r = FlvReader::new();
    r.push(&bytes);
    let mut video = Vec::new();
    while let Some(t) = r.next_tag().unwrap() {
        if t.tag_type == TAG_VIDEO {
            let h = VideoTagHeader::parse(&t.data).unwrap();
            assert_ne!(
                h.kind,
                VideoPacketKind::SequenceEnd,
                "--loop drops end-of-sequence tags"
            );
            if h.kind == VideoPacketKind::Frame {
                video.push(t.timestamp.0);
            }
        }
    }
    assert!(video.len() > 150, "{} video frames in 8 s", video.len());
    assert!(
        video.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing video timestamps"
    );
    assert!(
        *video.last().unwrap() > 5500,
        "past the end of the first pass"
    );
}

fn main() {
    run_interop(vec![
        interop(
            "push_to_nginx_rtmp_and_pull_back_with_ffmpeg",
            &["ffmpeg", "ffprobe", "nginx"],
            push_to_nginx_rtmp_and_pull_back_with_ffmpeg,
        ),
        interop(
            "push_to_ffmpeg_listen",
            &["ffmpeg", "ffprobe"],
            push_to_ffmpeg_listen,
        ),
        interop(
            "pull_from_nginx_rtmp_while_ffmpeg_publishes",
            &["ffmpeg", "ffprobe", "nginx"],
            pull_from_nginx_rtmp_while_ffmpeg_publishes,
        ),
        interop(
            "digest_handshake_with_nginx_rtmp_push_and_pull",
            &["ffprobe", "nginx"],
            digest_handshake_with_nginx_rtmp_push_and_pull,
        ),
        interop(
            "second_publisher_on_nginx_rtmp_fails_fast_with_the_code",
            &["nginx"],
            second_publisher_on_nginx_rtmp_fails_fast_with_the_code,
        ),
        interop(
            "cli_failures_name_the_cause",
            &[],
            cli_failures_name_the_cause,
        ),
        interop(
            "looped_push_keeps_timestamps_increasing_and_many_players_receive_it",
            &["nginx"],
            looped_push_keeps_timestamps_increasing_and_many_players_receive_it,
        ),
    ]);
}
