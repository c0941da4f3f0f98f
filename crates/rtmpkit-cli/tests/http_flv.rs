//! HTTP-FLV (`GET /APP/STREAM.flv` on `--http-listen`): read by ffprobe
//! with every frame after the join from a keyframe on; a reader that takes
//! nothing is cut off while an RTMP player loses nothing; the play
//! authorization and CORS.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod common;

use common::raw::{Healthy, rss_kib};
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn serve(extra: &[&str]) -> Served {
    let mut args: Vec<String> = [
        "-v",
        "--listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    Served::start(&args)
}

/// (dts ms, size) of the video packets of `what` (a file or a URL).
fn video(what: &str) -> Vec<(i64, u64, bool)> {
    packets(std::path::Path::new(what))
        .into_iter()
        .filter(|p| p.0 == 'v')
        .map(|p| (p.1, p.2, p.3))
        .collect()
}

/// A reader that joins 1.7 s into the stream gets, from ffprobe's view,
/// a keyframe first and then every video frame the publisher sent.
fn ffprobe_reads_every_frame_from_a_keyframe() {
    let s = serve(&[]);
    let (port, web) = (s.plain.unwrap(), s.http.unwrap());
    let mut publisher = Proc(
        rtmpkit()
            .args(["-q", "push"])
            .arg(fixture())
            .arg(format!("rtmp://127.0.0.1:{port}/live/h"))
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1700));
    let url = format!("http://127.0.0.1:{web}/live/h.flv");
    let got = video(&url);
    assert!(
        publisher
            .wait_timeout(Duration::from_secs(10))
            .unwrap()
            .success()
    );
    let all = video(&fixture().display().to_string());
    let first = got.first().expect("no video over HTTP-FLV");
    assert!(first.2, "HTTP-FLV starts on a keyframe: {first:?}");
    let from: Vec<_> = all.iter().filter(|p| p.0 >= first.0).cloned().collect();
    assert_eq!(got, from, "every video frame after the join");
    eprintln!(
        "HTTP-FLV: joined at {} ms, {} of {} video frames, keyframe first",
        first.0,
        got.len(),
        all.len()
    );
}

/// GET without reading: the server drops for it, then cuts it off after
/// the stuck timeout; an RTMP player of another stream gets every frame.
fn a_reader_that_takes_nothing_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "stuck_timeout_secs = 2\n").unwrap();
    let s = serve(&["--config", &config.display().to_string()]);
    let (port, web) = (s.plain.unwrap(), s.http.unwrap());
    let healthy = Healthy::start(port, dir.path());
    let _flood = Proc(
        rtmpkit()
            .args(["-q", "push", "--loop", "--no-pace"])
            .arg(fixture())
            .arg(format!("rtmp://127.0.0.1:{port}/live/fast"))
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], web)).into())
        .unwrap();
    let mut slow: TcpStream = sock.into();
    write!(slow, "GET /live/fast.flv HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let t = Instant::now();
    assert!(
        s.wait_line("the reader took nothing for 2s", Duration::from_secs(20)),
        "the stalled HTTP reader was not cut off"
    );
    eprintln!(
        "cut off {:.1} s after its request",
        t.elapsed().as_secs_f64()
    );
    assert!(s.wait_line(
        "messages dropped while it was behind",
        Duration::from_secs(2)
    ));
    let rss = rss_kib(s.proc.0.id());
    assert!(rss < 96 * 1024, "server RSS {rss} KiB");
    drop(slow);
    healthy.gets_every_frame("stalled HTTP reader");
}

/// The play secret applies to HTTP-FLV; answers carry CORS headers.
fn play_authorization_and_cors() {
    let s = serve(&["--play-secret", "s3cret"]);
    let (port, web) = (s.plain.unwrap(), s.http.unwrap());
    let request = |path: &str| {
        let mut c = TcpStream::connect(("127.0.0.1", web)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        write!(
            c,
            "GET {path} HTTP/1.1\r\nHost: x\r\nOrigin: http://page.example\r\n\r\n"
        )
        .unwrap();
        let mut head = vec![0u8; 512];
        let n = c.read(&mut head).unwrap();
        String::from_utf8_lossy(&head[..n]).into_owned()
    };
    let refused = request("/live/x.flv");
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert!(
        refused.contains("access-control-allow-origin: *"),
        "{refused}"
    );
    let signed = run(rtmpkit().args([
        "sign",
        "--secret",
        "s3cret",
        &format!("rtmp://127.0.0.1:{port}/live/x"),
    ]));
    let signed = String::from_utf8(signed.stdout).unwrap();
    let query = signed.trim().split_once('?').unwrap().1.to_owned();
    let allowed = request(&format!("/live/x.flv?{query}"));
    assert!(allowed.starts_with("HTTP/1.1 200"), "{allowed}");
    assert!(allowed.contains("content-type: video/x-flv"), "{allowed}");
    assert!(
        allowed.contains("access-control-allow-origin: *"),
        "{allowed}"
    );
    let bad = request("/x.flv");
    assert!(bad.starts_with("HTTP/1.1 404"), "{bad}");
}

fn main() {
    run_interop(vec![
        interop(
            "http_flv_ffprobe_reads_every_frame_from_a_keyframe",
            &["ffprobe"],
            ffprobe_reads_every_frame_from_a_keyframe,
        ),
        interop(
            "http_flv_a_reader_that_takes_nothing_is_cut_off",
            &["ffprobe"],
            a_reader_that_takes_nothing_is_cut_off,
        ),
        interop(
            "http_flv_play_authorization_and_cors",
            &[],
            play_authorization_and_cors,
        ),
    ]);
}
