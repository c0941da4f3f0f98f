//! Adaptive bitrate from one multitrack publish, with real peers: FFmpeg 9
//! publishes a three-rung H.264 ladder (640x360, 426x240, 256x144, AAC)
//! as E-RTMP multitrack video, live, to `rtmpkit serve`; players that
//! cannot switch pick one rung with `?track=N`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod common;

use common::web::{PUPPETEER, browser, check_playlist, shots};
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The ladder: (width, height, kbit/s) of tracks 0, 1 and 2.
const RUNGS: [(u32, u32, u32); 3] = [(640, 360, 800), (426, 240, 400), (256, 144, 150)];

/// The ladder's file, encoded once for every test of this file (kept in
/// the target's temporary directory).
fn ladder_file() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("abr");
        std::fs::create_dir_all(&dir).unwrap();
        ladder(&dir, 40)
    })
}

/// FFmpeg 9 encodes `secs` of the ladder into one FLV: three H.264 video
/// tracks of one source, keyframes every 2 s on all three, and AAC.
fn ladder(dir: &Path, secs: u32) -> PathBuf {
    let out = dir.join("ladder.flv");
    let mut split = String::from("[0:v]split=3[v0][s1][s2];");
    split += &format!("[s1]scale={}:{}[v1];", RUNGS[1].0, RUNGS[1].1);
    split += &format!("[s2]scale={}:{}[v2]", RUNGS[2].0, RUNGS[2].1);
    let mut cmd = Command::new(ffmpeg9().unwrap());
    cmd.args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &secs.to_string(), "-filter_complex", &split])
        .args([
            "-map", "[v0]", "-map", "[v1]", "-map", "[v2]", "-map", "1:a",
        ])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        ])
        .args(["-g", "50", "-keyint_min", "50", "-sc_threshold", "0"]);
    for (i, (_, _, kbps)) in RUNGS.iter().enumerate() {
        let rate = format!("{kbps}k");
        cmd.args([
            &format!("-b:v:{i}"),
            &rate,
            &format!("-maxrate:v:{i}"),
            &rate,
        ])
        .args([&format!("-bufsize:v:{i}"), &format!("{}k", kbps * 2)]);
    }
    cmd.args(["-c:a", "aac", "-b:a", "64k", "-f", "flv"])
        .arg(&out)
        .stdin(Stdio::null());
    let r = run(&mut cmd);
    assert!(r.status.success(), "FFmpeg 9 encodes the ladder");
    out
}

/// `rtmpkit serve` with RTMP and HTTP on loopback ports.
fn serve_with_http() -> Served {
    let args = ["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"];
    Served::start(&args.map(String::from))
}

/// FFmpeg 9 publishing the first `secs` of the ladder live (`-re`, its
/// own RTMP muxer), every track; running.
fn publisher(url: &str, secs: u32) -> Proc {
    Proc(
        Command::new(ffmpeg9().unwrap())
            .args(["-hide_banner", "-loglevel", "error", "-re"])
            .args(["-t", &secs.to_string(), "-i"])
            .arg(ladder_file())
            .args(["-map", "0", "-c", "copy", "-f", "flv", url])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// What ffprobe decodes of a file's streams: (codec, width, height,
/// frames) per stream, and what it said on stderr (decoding errors).
fn decoded(file: &Path) -> (Vec<(String, u32, u32, u64)>, String) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .args([
            "stream=codec_name,width,height,nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .unwrap();
    let streams = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let n = |i: usize| f.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
            (f[0].to_owned(), n(1) as u32, n(2) as u32, n(f.len() - 1))
        })
        .collect();
    (streams, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Debian's ffmpeg 5.1 (no E-RTMP) plays `STREAM?track=1` over RTMP and
/// `STREAM.flv?track=2` over HTTP-FLV, and `rtmpkit pull` (an E-RTMP
/// player) plays `?track=2`: each is a plain one-track stream of that
/// rung's size, and every frame decodes. A plain play still gets track 0.
fn legacy_players_pick_one_rung_with_track_n() {
    ladder_file();
    let dir = tempfile::tempdir().unwrap();
    let s = serve_with_http();
    let url = format!("rtmp://127.0.0.1:{}/live/abr", s.plain.unwrap());
    let flv = format!("http://127.0.0.1:{}/live/abr.flv", s.http.unwrap());
    // (file, the rung it must be)
    let outs: Vec<(PathBuf, usize)> = ["track0", "track1", "track2", "track2-http"]
        .iter()
        .zip([0, 1, 2, 2])
        .map(|(name, rung)| (dir.path().join(format!("{name}.flv")), rung))
        .collect();
    let mut players = vec![
        ffmpeg_player(&url, &outs[0].0),
        ffmpeg_player(&format!("{url}?track=1"), &outs[1].0),
        pull_to(&format!("{url}?track=2"), &outs[2].0, 20, &[]),
        ffmpeg_player(&format!("{flv}?track=2"), &outs[3].0),
    ];
    std::thread::sleep(Duration::from_millis(800));
    let mut ffmpeg9 = publisher(&url, 6);
    let done = ffmpeg9.wait_timeout(Duration::from_secs(20));
    assert!(
        done.is_some_and(|s| s.success()),
        "FFmpeg 9 publishes the ladder"
    );
    for p in &mut players {
        assert!(
            p.wait_timeout(Duration::from_secs(15)).is_some(),
            "player ends"
        );
    }
    for (out, i) in &outs {
        let i = *i;
        let (streams, errors) = decoded(out);
        eprintln!("track {i}: {streams:?}");
        assert!(
            errors.trim().is_empty(),
            "track {i} decodes without errors: {errors}"
        );
        let video: Vec<_> = streams.iter().filter(|s| s.0 == "h264").collect();
        assert_eq!(video.len(), 1, "track {i}: one video stream: {streams:?}");
        let (w, h, _) = RUNGS[i];
        assert_eq!((video[0].1, video[0].2), (w, h), "track {i}'s size");
        // 6 s at 25 fps; a player may miss the start of the first GOP.
        assert!(video[0].3 >= 100, "track {i}: {} frames", video[0].3);
        assert!(
            streams.iter().any(|s| s.0 == "aac" && s.3 >= 200),
            "track {i} has the audio: {streams:?}"
        );
    }
}

/// `GET path` over HTTP/1.0 (no chunked body): status and body bytes.
fn get(port: u16, path: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(c, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut all = Vec::new();
    c.read_to_end(&mut all).unwrap();
    let end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = std::str::from_utf8(&all[9..12]).unwrap().parse().unwrap();
    (status, all[end + 4..].to_vec())
}

fn get_text(port: u16, path: &str) -> String {
    let (status, body) = get(port, path);
    assert_eq!(
        status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&body)
    );
    String::from_utf8(body).unwrap()
}

/// The attributes of a tag line (`#TAG:A=1,B="x,y"`), quotes taken off.
fn attributes(line: &str) -> Vec<(String, String)> {
    let list = line.split_once(':').map_or("", |(_, l)| l);
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for c in list.chars().chain(std::iter::once(',')) {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                if let Some((k, v)) = cur.split_once('=') {
                    out.push((k.to_owned(), v.to_owned()));
                }
                cur.clear();
            }
            c => cur.push(c),
        }
    }
    out
}

fn attr(list: &[(String, String)], name: &str) -> String {
    list.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {name} in {list:?}"))
}

/// FFmpeg 9 publishes the ladder live; `index.m3u8` is a multivariant
/// playlist with the three rungs (size, codecs, measured bandwidth), and
/// each variant's segments, on the same boundaries, decode in ffprobe.
fn the_ladder_is_served_as_adaptive_hls() {
    ladder_file();
    let dir = tempfile::tempdir().unwrap();
    let s = serve_with_http();
    let (port, web) = (s.plain.unwrap(), s.http.unwrap());
    let url = format!("rtmp://127.0.0.1:{port}/live/abr");
    let mut publisher = publisher(&url, 12);
    // Segmenting starts at the first request; the bandwidths are measured
    // on complete segments (2 s each), so look again a few segments later.
    std::thread::sleep(Duration::from_millis(1000));
    get_text(web, "/live/abr/index.m3u8");
    std::thread::sleep(Duration::from_millis(7000));
    let top = get_text(web, "/live/abr/index.m3u8");
    eprintln!("{top}");
    let strict = check_playlist(&top, true);
    assert_eq!(strict["variants"].as_array().unwrap().len(), 3, "{strict}");
    let lines: Vec<&str> = top.lines().collect();
    assert_eq!(lines[0], "#EXTM3U");
    let variants: Vec<(Vec<(String, String)>, &str)> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("#EXT-X-STREAM-INF:"))
        .map(|(i, l)| (attributes(l), lines[i + 1]))
        .collect();
    assert_eq!(variants.len(), 3, "one variant per rung");
    let mut boundaries = Vec::new();
    for (i, (list, uri)) in variants.iter().enumerate() {
        let (w, h, kbps) = RUNGS[i];
        assert_eq!(attr(list, "RESOLUTION"), format!("{w}x{h}"));
        let codecs = attr(list, "CODECS");
        assert!(
            codecs.starts_with("avc1.64") && codecs.ends_with(",mp4a.40.2"),
            "{codecs}"
        );
        assert_eq!(
            attr(list, "AUDIO"),
            "audio",
            "variant {i} plays with the audio group"
        );
        assert_eq!(
            attr(list, "AUDIO"),
            "audio",
            "variant {i} plays with the audio group"
        );
        // The encoder's settings: the rung's video and 64 kbit/s of audio.
        let want = f64::from(kbps + 64) * 1000.0;
        let average: f64 = attr(list, "AVERAGE-BANDWIDTH").parse().unwrap();
        let peak: f64 = attr(list, "BANDWIDTH").parse().unwrap();
        eprintln!("variant {i}: average {average}, peak {peak}, settings {want}");
        assert!(
            (average - want).abs() <= want * 0.25,
            "variant {i}: average {average} against {want}"
        );
        assert!(peak >= average, "variant {i}");
        let fps: f64 = attr(list, "FRAME-RATE").parse().unwrap();
        assert!((fps - 25.0).abs() < 0.5, "{fps}");

        // Its media playlist and its complete segments, read by ffprobe.
        let media = get_text(web, &format!("/live/abr/{uri}"));
        check_playlist(&media, false);
        let map = media
            .lines()
            .find(|l| l.starts_with("#EXT-X-MAP:"))
            .map(|l| attr(&attributes(l), "URI"))
            .unwrap();
        let segments: Vec<&str> = media
            .lines()
            .filter(|l| l.ends_with(".m4s") && !l.starts_with('#'))
            .collect();
        assert!(segments.len() >= 2, "{media}");
        let durations: Vec<&str> = media
            .lines()
            .filter(|l| l.starts_with("#EXTINF:"))
            .collect();
        boundaries.push((
            segments
                .iter()
                .map(|s| s.split_once('-').unwrap().1.to_owned())
                .collect::<Vec<_>>(),
            durations.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        ));
        let mut bytes = get(web, &format!("/live/abr/{map}")).1;
        for seg in &segments {
            let (status, body) = get(web, &format!("/live/abr/{seg}"));
            assert_eq!(status, 200, "{seg}");
            bytes.extend_from_slice(&body);
        }
        let out = dir.path().join(format!("variant{i}.mp4"));
        std::fs::write(&out, &bytes).unwrap();
        let (streams, errors) = decoded(&out);
        eprintln!("variant {i}: {streams:?}");
        assert!(
            errors.trim().is_empty(),
            "variant {i} decodes without errors: {errors}"
        );
        let video = streams.iter().find(|s| s.0 == "h264").unwrap();
        assert_eq!((video.1, video.2), (w, h), "variant {i}'s segments");
        let secs: f64 = durations
            .iter()
            .map(|d| d[8..].trim_end_matches(',').parse::<f64>().unwrap())
            .sum();
        assert_eq!(
            video.3,
            (secs * 25.0).round() as u64,
            "variant {i}: every frame of {secs} s"
        );
    }
    // Same segment numbers and durations in every variant: a player can
    // switch at any segment.
    assert!(
        boundaries.windows(2).all(|w| w[0] == w[1]),
        "{boundaries:?}"
    );

    // The audio: one rendition (the ladder has one audio track), its
    // segments numbered as the video's and as long within an AAC frame.
    let media: Vec<Vec<(String, String)>> = lines
        .iter()
        .filter(|l| l.starts_with("#EXT-X-MEDIA:"))
        .map(|l| attributes(l))
        .collect();
    assert_eq!(media.len(), 1, "{top}");
    assert_eq!(attr(&media[0], "TYPE"), "AUDIO");
    assert_eq!(attr(&media[0], "DEFAULT"), "YES");
    let uri = attr(&media[0], "URI");
    let audio = get_text(web, &format!("/live/abr/{uri}"));
    check_playlist(&audio, false);
    let map = audio
        .lines()
        .find(|l| l.starts_with("#EXT-X-MAP:"))
        .map(|l| attr(&attributes(l), "URI"))
        .unwrap();
    let mut bytes = get(web, &format!("/live/abr/{map}")).1;
    let mut audio_secs = 0.0;
    let (video_segments, video_durations) = &boundaries[0];
    for (line, next) in audio.lines().zip(audio.lines().skip(1)) {
        let Some(d) = line.strip_prefix("#EXTINF:") else {
            continue;
        };
        let d: f64 = d.trim_end_matches(',').parse().unwrap();
        let name = next.split_once('-').unwrap().1;
        if let Some(k) = video_segments.iter().position(|s| s == name) {
            let v: f64 = video_durations[k][8..]
                .trim_end_matches(',')
                .parse()
                .unwrap();
            eprintln!("{name}: audio {d} s, video {v} s");
            // The first may start a few AAC frames late: what the encoder
            // sent just before the keyframe a late joiner starts on.
            let late = if k == 0 { 0.2 } else { 0.0 };
            assert!(
                d - v < 0.05 && v - d < 0.05 + late,
                "{name}: audio {d} s, video {v} s"
            );
        }
        let (status, body) = get(web, &format!("/live/abr/{next}"));
        assert_eq!(status, 200, "{next}");
        bytes.extend_from_slice(&body);
        audio_secs += d;
    }
    assert!(audio_secs > 3.0, "{audio}");
    let out = dir.path().join("audio.mp4");
    std::fs::write(&out, &bytes).unwrap();
    let (streams, errors) = decoded(&out);
    eprintln!("audio: {streams:?}, {audio_secs} s");
    assert!(
        errors.trim().is_empty(),
        "the audio decodes without errors: {errors}"
    );
    assert_eq!(streams.len(), 1, "audio alone: {streams:?}");
    let frames = streams[0].3 as f64;
    // AAC at 48 kHz: 1024 samples a frame.
    assert!(
        (frames - audio_secs * 48000.0 / 1024.0).abs() <= 2.0,
        "{frames} frames in {audio_secs} s"
    );
    assert!(publisher.wait_timeout(Duration::from_secs(20)).is_some());
}

/// Headless chromium plays the watch page of the ladder with hls.js; the
/// quality menu lists the three rungs, and picking each in turn brings the
/// picture to that size with no stall over 1 s; then back to automatic.
fn the_watch_page_switches_between_the_rungs() {
    ladder_file();
    let s = serve_with_http();
    let (port, web) = (s.plain.unwrap(), s.http.unwrap());
    let mut publisher = publisher(&format!("rtmp://127.0.0.1:{port}/live/abr"), 40);
    std::thread::sleep(Duration::from_millis(1500));
    let shot = shots().join("ladder.png");
    let v = browser(&[
        "ladder",
        &format!("http://127.0.0.1:{web}/watch/live/abr"),
        shot.to_str().unwrap(),
        "8",
    ]);
    eprintln!("{v}");
    let mut levels: Vec<String> = v["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    levels.sort();
    let mut want: Vec<String> = RUNGS.iter().map(|(w, h, _)| format!("{w}x{h}")).collect();
    want.sort();
    assert_eq!(levels, want, "the menu lists the three rungs");
    let picked = v["picked"].as_array().unwrap();
    assert_eq!(picked.len(), 4, "each rung, then auto");
    for p in picked {
        let still = p["longestStillMs"].as_u64().unwrap();
        assert!(still < 1000, "the picture stood still {still} ms: {p}");
        if p["level"].as_i64().unwrap() >= 0 {
            assert_eq!(
                p["size"], p["want"],
                "the picture reaches the picked rung: {p}"
            );
        }
    }
    // Half a minute in: /stats lists the renditions with their measured
    // bit rates (10 s windows), each near the encoder's setting.
    let stats: serde_json::Value = serde_json::from_str(&get_text(web, "/stats")).unwrap();
    let stream = stats["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "live/abr")
        .unwrap()
        .clone();
    let renditions = stream["renditions"].as_array().unwrap();
    assert_eq!(renditions.len(), 3, "{stream}");
    for (r, (w, h, kbps)) in renditions.iter().zip(RUNGS) {
        assert_eq!(
            (r["width"].as_u64(), r["height"].as_u64()),
            (Some(w.into()), Some(h.into()))
        );
        let got = r["bitrate_kbps"].as_f64().unwrap();
        let want = f64::from(kbps);
        assert!(
            (got - want).abs() <= want * 0.25,
            "{r}: {got} kbit/s against {want}"
        );
    }
    publisher.0.kill().ok();
}

fn main() {
    run_interop(vec![
        interop(
            "legacy_players_pick_one_rung_with_track_n",
            &[FFMPEG9, "ffmpeg", "ffprobe"],
            legacy_players_pick_one_rung_with_track_n,
        ),
        interop(
            "the_ladder_is_served_as_adaptive_hls",
            &[FFMPEG9, "ffprobe"],
            the_ladder_is_served_as_adaptive_hls,
        ),
        interop(
            "the_watch_page_switches_between_the_rungs",
            &[FFMPEG9, "node", "chromium", PUPPETEER],
            the_watch_page_switches_between_the_rungs,
        ),
    ]);
}
