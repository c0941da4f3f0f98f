//! `serve --record`: every frame of every codec and track lands on disk,
//! files rotate, a `kill -9` loses at most about a second, FLV keeps the
//! tags, and the hook hears of every file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod common;
#[path = "recording/faults.rs"]
mod faults;
#[path = "recording/pull_files.rs"]
mod pull_files;

use common::hooks::HookServer;
use common::*;
use faults::{
    a_full_disk_never_touches_the_live_stream,
    a_takeover_goes_on_in_the_same_file_with_time_going_forward,
};
use pull_files::pull_writes_fmp4_and_cuts_segments;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Packets per stream index of `file`, as FFmpeg 9 demuxes it (it reads
/// every Enhanced RTMP track and fMP4 track).
fn frames(file: &Path) -> BTreeMap<u32, usize> {
    let out = run(Command::new(ffmpeg9().unwrap())
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0", "-c", "copy", "-f", "framecrc", "-"]));
    let mut m = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(idx) = line.split(',').next().filter(|_| !line.starts_with('#')) {
            *m.entry(idx.trim().parse().unwrap()).or_default() += 1;
        }
    }
    m
}

/// Every recording under `dir`, oldest name first.
pub(crate) fn recordings(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, &mut v);
    v.sort();
    v
}

pub(crate) fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rtmpkit-rec-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Makes a 4 s Enhanced RTMP input with FFmpeg 9.
fn make_input(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(format!("{name}.flv"));
    let mut cmd = Command::new(ffmpeg9().unwrap());
    cmd.args([
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=25",
    ])
    .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
    .args([
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=880:sample_rate=48000",
        "-t",
        "4",
    ])
    .args(args)
    .args(["-f", "flv"])
    .arg(&out);
    run(&mut cmd);
    out
}

fn every_frame_of_every_codec_and_track() {
    let dir = tempdir("codecs");
    let inputs = [
        ("h264-aac", fixture()),
        (
            "hevc-aac",
            make_input(
                &dir,
                "hevc-aac",
                &[
                    "-map",
                    "0",
                    "-map",
                    "1",
                    "-c:v",
                    "libx265",
                    "-preset",
                    "ultrafast",
                    "-x265-params",
                    "keyint=25:log-level=error",
                    "-c:a",
                    "aac",
                ],
            ),
        ),
        (
            "av1-opus",
            make_input(
                &dir,
                "av1-opus",
                &[
                    "-map",
                    "0",
                    "-map",
                    "1",
                    "-c:v",
                    "libsvtav1",
                    "-preset",
                    "12",
                    "-g",
                    "25",
                    "-svtav1-params",
                    "lp=2",
                    "-c:a",
                    "libopus",
                ],
            ),
        ),
        (
            "vp9-opus",
            make_input(
                &dir,
                "vp9-opus",
                &[
                    "-map",
                    "0",
                    "-map",
                    "1",
                    "-c:v",
                    "libvpx-vp9",
                    "-deadline",
                    "realtime",
                    "-cpu-used",
                    "8",
                    "-g",
                    "25",
                    "-c:a",
                    "libopus",
                ],
            ),
        ),
        (
            "h264-2aac",
            make_input(
                &dir,
                "h264-2aac",
                &[
                    "-map",
                    "0",
                    "-map",
                    "1",
                    "-map",
                    "2",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-g",
                    "25",
                    "-c:a",
                    "aac",
                ],
            ),
        ),
    ];
    let rec = dir.join("rec");
    let served = Served::start(&[
        "-v".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--record".into(),
        rec.display().to_string(),
        "--record-segment".into(),
        "2".into(),
    ]);
    let port = served.plain.unwrap();
    for (name, input) in &inputs {
        let url = format!("rtmp://127.0.0.1:{port}/live/{name}");
        run(Command::new(ffmpeg9().unwrap())
            .args(["-v", "error", "-i"])
            .arg(input)
            .args(["-map", "0", "-c", "copy", "-f", "flv", &url])
            .stdin(Stdio::null()));
    }
    // The recorders close their files once the publishers are gone.
    let t = Instant::now();
    while served.count_lines("recording stopped") < inputs.len() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the recorders did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for (name, input) in &inputs {
        let want = frames(input);
        let files = recordings(&rec.join("live").join(name));
        assert!(files.len() >= 2, "{name}: 4 s in 2 s files, got {files:?}");
        let mut got = BTreeMap::new();
        for f in &files {
            assert_eq!(f.extension().unwrap(), "mp4");
            for (idx, n) in frames(f) {
                *got.entry(idx).or_insert(0) += n;
            }
        }
        eprintln!(
            "{name}: source {want:?}, recorded {got:?} in {} files",
            files.len()
        );
        assert_eq!(got, want, "{name}: every frame of every track");
    }
    drop(served);
    let _ = std::fs::remove_dir_all(&dir);
}

fn kill_9_loses_at_most_a_second_and_a_half() {
    let dir = tempdir("kill");
    let rec = dir.join("rec");
    let served = Served::start(&[
        "-v".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--record".into(),
        rec.display().to_string(),
    ]);
    let port = served.plain.unwrap();
    let url = format!("rtmp://127.0.0.1:{port}/live/cam");
    // Real time, looping: the kill comes mid-stream.
    let _push = push_looping(&url);
    assert!(served.wait_line("recording to a new file", Duration::from_secs(10)));
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(6500));
    let pid = served.proc.0.id();
    let elapsed = started.elapsed().as_secs_f64();
    run(Command::new("kill").args(["-9", &pid.to_string()]));
    std::thread::sleep(Duration::from_millis(200));
    let files = recordings(&rec);
    assert_eq!(files.len(), 1, "{files:?}");
    // ffprobe reads it as it is, with no repair.
    let out = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(&files[0]));
    let duration: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let decoded = run(Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&files[0])
        .args(["-f", "null", "-"]));
    assert!(
        decoded.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&decoded.stderr)
    );
    eprintln!("killed after {elapsed:.2} s of recording; the file holds {duration:.2} s");
    assert!(
        duration >= elapsed - 1.5,
        "lost more than 1.5 s: {duration:.2} of {elapsed:.2}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn flv_keeps_the_tags_and_the_hook_hears_of_every_file() {
    let dir = tempdir("flv");
    let rec = dir.join("rec");
    let hook = HookServer::start();
    let served = Served::start(&[
        "-v".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--record".into(),
        rec.display().to_string(),
        "--record-format".into(),
        "flv".into(),
        "--on-record-done".into(),
        hook.url(),
    ]);
    let port = served.plain.unwrap();
    let out = push_fixture(&format!("rtmp://127.0.0.1:{port}/live/cam?k=v"), &[]);
    assert!(out.status.success());
    let call = hook.wait_call("record_done", "cam");
    let files = recordings(&rec);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().unwrap(), "flv");
    assert_same_media(&fixture(), &files[0]);
    let field = |k: &str| call.get(k).cloned().unwrap_or_default();
    assert_eq!(field("call"), "record_done");
    assert_eq!(field("app"), "live");
    assert_eq!(field("name"), "cam");
    assert_eq!(field("k"), "v");
    assert_eq!(field("recorder"), "rtmpkit");
    assert_eq!(PathBuf::from(field("path")), files[0]);
    assert_eq!(
        field("bytes"),
        std::fs::metadata(&files[0]).unwrap().len().to_string()
    );
    let d: f64 = field("duration").parse().unwrap();
    assert!((4.0..=5.5).contains(&d), "duration {d}");
    assert!(field("end").parse::<u64>().unwrap() >= field("start").parse::<u64>().unwrap());
    drop(served);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every file a server said it opened, in order.
fn opened(served: &Served) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for text in served.lines() {
        if text.contains("recording to a new file")
            && let Some(p) = text.split("path=").nth(1)
        {
            v.push(PathBuf::from(p.trim()));
        }
    }
    v
}

fn retention_deletes_the_oldest_files() {
    // By size: at most 120 KiB of 1 s files (about 50 KiB each).
    let dir = tempdir("retention");
    let rec = dir.join("rec");
    let served = Served::start(&[
        "-v".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--record".into(),
        rec.display().to_string(),
        "--record-segment".into(),
        "1".into(),
        "--record-max-bytes".into(),
        "120k".into(),
    ]);
    let port = served.plain.unwrap();
    assert!(
        push_fixture(&format!("rtmp://127.0.0.1:{port}/live/cam"), &[])
            .status
            .success()
    );
    std::thread::sleep(Duration::from_millis(1500));
    let all = opened(&served);
    let left = recordings(&rec);
    let total: u64 = left
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    eprintln!(
        "{} files made, {} left, {total} bytes",
        all.len(),
        left.len()
    );
    assert!(all.len() >= 5, "{all:?}");
    assert!(total <= 120 * 1024, "{total} bytes left");
    assert!(!left.is_empty());
    // The newest stay.
    assert_eq!(left[..], all[all.len() - left.len()..]);
    drop(served);
    // By age: nothing older than 1.8 s.
    let rec = dir.join("rec-age");
    let served = Served::start(&[
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--record".into(),
        rec.display().to_string(),
        "--record-segment".into(),
        "1".into(),
        "--record-delete-after".into(),
        "0.0005".into(),
    ]);
    let port = served.plain.unwrap();
    assert!(
        push_fixture(&format!("rtmp://127.0.0.1:{port}/live/cam"), &[])
            .status
            .success()
    );
    let t = Instant::now();
    while !recordings(&rec).is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(8),
            "old files stay: {:?}",
            recordings(&rec)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(served);
    let _ = std::fs::remove_dir_all(&dir);
}

fn recordings_over_http_behind_the_play_authorization() {
    let dir = tempdir("http");
    let rec = dir.join("rec");
    let served = Served::with_api(&[
        "--play-secret".into(),
        "s3cret".into(),
        "--record".into(),
        rec.display().to_string(),
        "--record-segment".into(),
        "2".into(),
    ]);
    let (port, web) = (served.plain.unwrap(), served.http.unwrap());
    assert!(
        push_fixture(&format!("rtmp://127.0.0.1:{port}/live/cam"), &[])
            .status
            .success()
    );
    std::thread::sleep(Duration::from_millis(500));
    // The listing, behind the bearer token (the helper sends it).
    let (status, body) = http(web, "GET", "/recordings");
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let files = list["recordings"][0]["files"].as_array().unwrap().clone();
    assert_eq!(list["recordings"][0]["stream"], "cam");
    assert!(files.len() >= 2, "{body}");
    let total: f64 = files.iter().map(|f| f["duration"].as_f64().unwrap()).sum();
    assert!(
        (4.5..=5.5).contains(&total),
        "durations add up to {total}: {body}"
    );
    // Files and playlists need the play authorization.
    let (status, _) = http(web, "GET", "/recordings/live/cam/index.m3u8");
    assert_eq!(status, 403);
    let signed = run(rtmpkit().args(["sign", "--secret", "s3cret", "rtmp://h/live/cam"]));
    let signed = String::from_utf8(signed.stdout).unwrap();
    let query = signed.trim().split_once('?').unwrap().1.to_owned();
    let (status, body) = http(
        web,
        "GET",
        &format!("/recordings/live/cam/index.json?{query}"),
    );
    assert_eq!(status, 200, "{body}");
    // A path out of the stream's directory is not found.
    let (status, _) = http(
        web,
        "GET",
        &format!("/recordings/live/cam/..%2F..%2Fetc%2Fpasswd?{query}"),
    );
    assert_eq!(status, 404);
    // A byte range, as players ask.
    let url = format!(
        "http://127.0.0.1:{web}{}?{query}",
        files[0]["url"].as_str().unwrap()
    );
    let part = dir.join("part");
    let out = run(Command::new("curl")
        .args(["-s", "-D", "-", "-r", "100-1099", "-o"])
        .arg(&part)
        .arg(&url));
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(head.starts_with("http/1.1 206"), "{head}");
    assert!(head.contains("content-range: bytes 100-1099/"), "{head}");
    let whole = std::fs::read(
        rec.join("live/cam")
            .join(files[0]["name"].as_str().unwrap()),
    )
    .unwrap();
    assert_eq!(std::fs::read(&part).unwrap(), whole[100..1100]);
    // The VOD playlist over every file: FFmpeg reads every frame.
    let playlist = format!("http://127.0.0.1:{web}/recordings/live/cam/index.m3u8?{query}");
    let got = {
        let out = run(Command::new("ffmpeg")
            .args(["-v", "error", "-http_seekable", "0", "-i", &playlist])
            .args(["-map", "0", "-c", "copy", "-f", "framecrc", "-"]));
        let mut m = BTreeMap::new();
        for line in String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
        {
            *m.entry(line.split(',').next().unwrap().trim().to_owned())
                .or_insert(0) += 1;
        }
        m
    };
    eprintln!("frames over the VOD playlist: {got:?}");
    let (v, a) = counts(&fixture());
    assert_eq!(got.get("0"), Some(&v));
    assert_eq!(got.get("1"), Some(&a));
    drop(served);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    run_interop(vec![
        interop(
            "every_frame_of_every_codec_and_track",
            &["ffmpeg", FFMPEG9],
            every_frame_of_every_codec_and_track,
        ),
        interop(
            "kill_9_loses_at_most_a_second_and_a_half",
            &["ffmpeg", "ffprobe"],
            kill_9_loses_at_most_a_second_and_a_half,
        ),
        interop(
            "flv_keeps_the_tags_and_the_hook_hears_of_every_file",
            &["ffmpeg", "ffprobe"],
            flv_keeps_the_tags_and_the_hook_hears_of_every_file,
        ),
        interop(
            "pull_writes_fmp4_and_cuts_segments",
            &["ffmpeg", "ffprobe"],
            pull_writes_fmp4_and_cuts_segments,
        ),
        interop(
            "a_takeover_goes_on_in_the_same_file_with_time_going_forward",
            &["ffmpeg", "ffprobe"],
            a_takeover_goes_on_in_the_same_file_with_time_going_forward,
        ),
        interop(
            "retention_deletes_the_oldest_files",
            &["ffmpeg"],
            retention_deletes_the_oldest_files,
        ),
        interop(
            "recordings_over_http_behind_the_play_authorization",
            &["ffmpeg", "ffprobe", "curl"],
            recordings_over_http_behind_the_play_authorization,
        ),
        interop(
            "a_full_disk_never_touches_the_live_stream",
            &["ffmpeg", "ffprobe", "mount"],
            a_full_disk_never_touches_the_live_stream,
        ),
    ]);
}
