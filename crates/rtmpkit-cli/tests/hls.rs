//! LL-HLS over fMP4: the playlist's tags and durations checked line by
//! line, the segments read by ffprobe, and a blocking playlist reload.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod common;

use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn serve() -> Served {
    serve_with(&[])
}

fn serve_with(extra: &[&str]) -> Served {
    let args: Vec<String> = ["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
    Served::start(&args)
}

/// With a play secret, every HLS request needs the token, also once the
/// stream is being segmented for somebody who had it.
fn every_request_needs_the_token() {
    let s = serve_with(&["--play-secret", "s3cret"]);
    let (port, web) = (s.plain.unwrap(), s.http.unwrap());
    let _publisher = push_looping(&format!("rtmp://127.0.0.1:{port}/live/t"));
    let signed = run(rtmpkit().args([
        "sign",
        "--secret",
        "s3cret",
        &format!("rtmp://127.0.0.1:{port}/live/t"),
    ]));
    let signed = String::from_utf8(signed.stdout).unwrap();
    let query = signed.trim().split_once('?').unwrap().1.to_owned();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(http(web, "GET", "/live/t/index.m3u8").0, 403);
    assert_eq!(
        http(web, "GET", &format!("/live/t/index.m3u8?{query}")).0,
        200
    );
    // Segmenting now; without the token it stays closed.
    assert_eq!(http(web, "GET", "/live/t/index.m3u8").0, 403);
    assert_eq!(http(web, "GET", "/live/t/init.mp4").0, 403);
}

/// The value of `ATTR=` in a tag line.
fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split_once(':')?
        .1
        .split(',')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
}

fn seconds(v: &str) -> f64 {
    v.trim_end_matches(',').parse().unwrap()
}

/// The fixture published once while HLS is asked for: a playlist that
/// follows the rules, and segments that hold every frame.
fn playlist_and_segments_hold_the_stream() {
    let s = serve();
    let (port, web) = (s.plain.unwrap(), s.http.unwrap());
    // The first request starts segmenting (it waits for the stream).
    let first = std::thread::spawn(move || http(web, "GET", "/live/v/index.m3u8"));
    std::thread::sleep(Duration::from_millis(300));
    let out = push_fixture(&format!("rtmp://127.0.0.1:{port}/live/v"), &["-q"]);
    assert!(out.status.success());
    assert_eq!(first.join().unwrap().0, 200);
    // The end of the stream reaches the playlist within a flush period or
    // two of the publisher leaving.
    let t = Instant::now();
    let (status, text) = loop {
        let (status, text) = http(web, "GET", "/live/v/index.m3u8");
        if status != 200 || text.contains("#EXT-X-ENDLIST") || t.elapsed() > Duration::from_secs(3)
        {
            break (status, text);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status, 200, "{text}");
    eprintln!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "#EXTM3U");
    let tag = |t: &str| lines.iter().find(|l| l.starts_with(t)).copied();
    let target: f64 = seconds(
        tag("#EXT-X-TARGETDURATION:")
            .unwrap()
            .split(':')
            .nth(1)
            .unwrap(),
    );
    let part_target = seconds(attr(tag("#EXT-X-PART-INF:").unwrap(), "PART-TARGET").unwrap());
    assert!(
        tag("#EXT-X-SERVER-CONTROL:")
            .unwrap()
            .contains("CAN-BLOCK-RELOAD=YES")
    );
    assert!(tag("#EXT-X-MAP:URI=\"init.mp4\"").is_some());
    assert_eq!(*lines.last().unwrap(), "#EXT-X-ENDLIST");
    let (mut parts, mut total, mut segments) = (0.0, 0.0, 0);
    for l in &lines {
        if l.starts_with("#EXT-X-PART:") {
            let d = seconds(attr(l, "DURATION").unwrap());
            assert!(
                d <= part_target,
                "part {d} s over the target {part_target}: {l}"
            );
            parts += d;
        } else if let Some(d) = l.strip_prefix("#EXTINF:") {
            let d = seconds(d);
            assert!(
                d.round() <= target,
                "segment {d} s over the target {target}"
            );
            // Parts stay listed for the newest segments only.
            assert!(
                parts == 0.0 || (d - parts).abs() < 0.002,
                "segment {d} s, its parts {parts} s"
            );
            total += d;
            parts = 0.0;
            segments += 1;
        }
    }
    // The fixture: 125 frames at 25 fps.
    assert!((total - 5.0).abs() < 0.05, "{segments} segments, {total} s");
    let url = format!("http://127.0.0.1:{web}/live/v/index.m3u8");
    let probe = run(std::process::Command::new("timeout")
        .args(["30", "ffprobe", "-v", "error", "-count_packets"])
        .args([
            "-show_entries",
            "stream=codec_name,nb_read_packets",
            "-of",
            "csv=p=0",
        ])
        .arg(&url)
        .stdin(Stdio::null()));
    let got = String::from_utf8_lossy(&probe.stdout).into_owned();
    assert!(got.contains("h264,125"), "{got}");
    assert!(got.contains("aac,217"), "{got}");
}

/// `_HLS_msn` / `_HLS_part`: the playlist is held until that part exists.
fn blocking_reload_waits_for_the_part() {
    let s = serve();
    let (port, web) = (s.plain.unwrap(), s.http.unwrap());
    let _publisher = push_looping(&format!("rtmp://127.0.0.1:{port}/live/b"));
    std::thread::sleep(Duration::from_millis(500));
    let (status, _) = http(web, "GET", "/live/b/index.m3u8");
    assert_eq!(status, 200);
    // Segments are about 2 s of 4 parts or so: ask for one ~2.5 s ahead.
    let (_, text) = http(web, "GET", "/live/b/index.m3u8");
    let hint = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part"))
        .unwrap()
        .trim_end_matches(".m4s\"")
        .to_owned();
    let (msn, _) = hint.split_once('.').unwrap();
    let want = msn.parse::<u64>().unwrap() + 1;
    let t = Instant::now();
    let (status, text) = http(
        web,
        "GET",
        &format!("/live/b/index.m3u8?_HLS_msn={want}&_HLS_part=0"),
    );
    let waited = t.elapsed();
    assert_eq!(status, 200);
    assert!(text.contains(&format!("part{want}.0.m4s")), "{text}");
    assert!(
        waited > Duration::from_millis(300),
        "answered at once ({waited:?})"
    );
    eprintln!("blocking reload for part {want}.0 answered after {waited:?}");
    // The part itself: a moof + mdat fragment (binary: read as bytes).
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", web)).unwrap();
    write!(
        c,
        "GET /live/b/part{want}.0.m4s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    c.read_to_end(&mut reply).unwrap();
    assert!(reply.starts_with(b"HTTP/1.1 200"));
    let body = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(&reply[body + 4..body + 8], b"moof");
}

const HLS_PARSER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/web/node_modules/hls-parser"
);

/// A live playlist (parts, preload hint, program date times) read by
/// hls-parser in strict mode, which throws on anything against the spec.
fn live_playlist_passes_a_strict_parser() {
    let s = serve_with(&["--hls-part-ms", "400"]);
    let (port, web) = (s.plain.unwrap(), s.http.unwrap());
    // A live encoder at 25 fps, keyframes every second.
    let _publisher = Proc(
        std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=sample_rate=44100"])
            .args(["-c:v", "libx264", "-preset", "veryfast", "-g", "25"])
            .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv"])
            .arg(format!("rtmp://127.0.0.1:{port}/live/p"))
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(http(web, "GET", "/live/p/index.m3u8").0, 200);
    std::thread::sleep(Duration::from_secs(7));
    let (status, text) = http(web, "GET", "/live/p/index.m3u8");
    assert_eq!(status, 200);
    let p = common::web::check_playlist(&text, false);
    assert_eq!(p["version"], 9);
    assert_eq!(p["partTargetDuration"], 0.4);
    assert_eq!(p["canBlockReload"], true);
    assert_eq!(p["endlist"], false);
    let segs = p["segments"].as_array().unwrap();
    assert!(segs.len() >= 3, "{text}");
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    for pair in segs.windows(2) {
        // Each complete segment: its parts add up to it (while listed),
        // and the next one's date is this one's plus its duration.
        let (a, b) = (&pair[0], &pair[1]);
        let parts = a["parts"].as_array().unwrap();
        if !parts.is_empty() {
            let sum: f64 = parts.iter().map(|x| f(&x["duration"])).sum();
            assert!((sum - f(&a["duration"])).abs() < 0.002, "{a}");
        }
        for x in parts {
            assert!(f(&x["duration"]) <= 0.4, "{x}");
        }
        let gap = f(&b["programDateTime"]) - f(&a["programDateTime"]);
        assert!(
            (gap - f(&a["duration"]) * 1000.0).abs() < 2.0,
            "{a} then {b}"
        );
        assert_eq!(a["map"], "init.mp4");
    }
    let last = segs.last().unwrap()["parts"].as_array().unwrap();
    assert_eq!(last.last().unwrap()["hint"], true, "{text}");
    assert_eq!(last[0]["independent"], true, "{text}");
    println!(
        "strict parse: {} segments, {} parts in the open one",
        segs.len(),
        last.len()
    );
}

/// Video frames and audio packets (sequence headers and ends left out)
/// of an FLV file.
fn frames(file: &std::path::Path) -> (usize, usize) {
    use rtmpkit_proto::media::{AudioTagHeader, Media, MediaKind, VideoPacketKind, VideoTagHeader};
    let mut r = rtmpkit_proto::flv::FlvReader::new();
    r.push(&std::fs::read(file).unwrap());
    let (mut video, mut audio) = (0, 0);
    while let Some(t) = r.next_tag().unwrap() {
        let Some(kind) = MediaKind::from_type_id(t.tag_type) else {
            continue;
        };
        let m = Media::new(kind, t.timestamp, t.data.clone());
        match kind {
            MediaKind::Video
                if VideoTagHeader::parse(&m.payload).map(|h| h.kind)
                    == Ok(VideoPacketKind::Frame) =>
            {
                video += 1
            }
            MediaKind::Audio if AudioTagHeader::parse(&m.payload).is_ok_and(|h| h.coded) => {
                audio += 1
            }
            _ => {}
        }
    }
    (video, audio)
}

/// HEVC and Opus (Enhanced RTMP from FFmpeg 9) in `hvc1` + `hvcC` and
/// `Opus` + `dOps` sample entries: ffprobe reads every frame.
fn hevc_and_opus() {
    let dir = tempfile::tempdir().unwrap();
    let flv = dir.path().join("hevc-opus.flv");
    let made = run(std::process::Command::new(ffmpeg9().unwrap())
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "4"])
        .args(["-c:v", "libx265", "-preset", "ultrafast"])
        .args([
            "-x265-params",
            "log-level=error:keyint=25",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "libopus", "-b:a", "64k", "-f", "flv"])
        .arg(&flv)
        .stdin(Stdio::null()));
    assert!(made.status.success());
    let (video, audio) = frames(&flv);
    assert!(video >= 99 && audio >= 190, "{video} {audio}");
    let s = serve();
    let (port, web) = (s.plain.unwrap(), s.http.unwrap());
    let first = std::thread::spawn(move || http(web, "GET", "/live/h/index.m3u8"));
    std::thread::sleep(Duration::from_millis(300));
    let out = run(rtmpkit()
        .args(["-q", "push"])
        .arg(&flv)
        .arg(format!("rtmp://127.0.0.1:{port}/live/h"))
        .stdin(Stdio::null()));
    assert!(out.status.success());
    assert_eq!(first.join().unwrap().0, 200);
    let url = format!("http://127.0.0.1:{web}/live/h/index.m3u8");
    let probe = run(std::process::Command::new("timeout")
        .args(["30", "ffprobe", "-v", "error", "-count_packets"])
        .args([
            "-show_entries",
            "stream=codec_name,codec_tag_string,width,height,sample_rate,nb_read_packets",
            "-of",
            "compact=p=0:nk=1",
        ])
        .arg(&url)
        .stdin(Stdio::null()));
    let got = String::from_utf8_lossy(&probe.stdout).into_owned();
    println!("{got}");
    assert!(
        got.contains(&format!("hevc|hvc1|640|360|{video}")),
        "{video} HEVC frames published: {got}"
    );
    assert!(
        got.contains(&format!("opus|Opus|48000|{audio}")),
        "{audio} Opus packets published: {got}"
    );
}

/// A hook server that takes 3 s to allow stream "slow" and allows every
/// other at once; one thread per call.
fn slow_hook_server() -> u16 {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(100) {
            let Ok(conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = r.read_exact(&mut body);
                if String::from_utf8_lossy(&body).contains("name=slow") {
                    std::thread::sleep(Duration::from_secs(3));
                }
                let _ = (&conn).write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            });
        }
    });
    port
}

/// A play hook that thinks for 3 s about stream A holds no lock that
/// requests for stream B wait on: B's playlist is answered at once.
fn a_slow_hook_stalls_only_its_stream() {
    let hook = format!("http://127.0.0.1:{}/hook", slow_hook_server());
    let s = serve_with(&["--on-play", &hook, "--hook-timeout", "10"]);
    let (port, web) = (s.plain.unwrap(), s.http.unwrap());
    let _publisher = push_looping(&format!("rtmp://127.0.0.1:{port}/live/b"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(http(web, "GET", "/live/b/index.m3u8").0, 200, "b segments");
    let slow = std::thread::spawn(move || {
        let t = Instant::now();
        let status = http(web, "GET", "/live/slow/index.m3u8").0;
        (status, t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..5 {
        let t = Instant::now();
        let (status, _) = http(web, "GET", "/live/b/index.m3u8");
        let took = t.elapsed();
        eprintln!("b's playlist while the hook of slow thinks: {status} in {took:?}");
        assert_eq!(status, 200);
        assert!(took < Duration::from_millis(500), "b waited {took:?}");
    }
    let (status, took) = slow.join().unwrap();
    eprintln!("slow's playlist: {status} after {took:?}");
    assert!(took >= Duration::from_millis(2900), "the hook did think");
}

fn main() {
    run_interop(vec![
        interop(
            "hls_a_slow_hook_stalls_only_its_stream",
            &[],
            a_slow_hook_stalls_only_its_stream,
        ),
        interop("hls_hevc_and_opus", &["ffprobe", FFMPEG9], hevc_and_opus),
        interop(
            "hls_live_playlist_passes_a_strict_parser",
            &["ffmpeg", "node", HLS_PARSER],
            live_playlist_passes_a_strict_parser,
        ),
        interop(
            "hls_playlist_and_segments_hold_the_stream",
            &["ffprobe"],
            playlist_and_segments_hold_the_stream,
        ),
        interop(
            "hls_every_request_needs_the_token",
            &[],
            every_request_needs_the_token,
        ),
        interop(
            "hls_blocking_reload_waits_for_the_part",
            &[],
            blocking_reload_waits_for_the_part,
        ),
    ]);
}
