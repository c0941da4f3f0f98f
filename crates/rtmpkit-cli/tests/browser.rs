//! A real browser on the watch pages: Debian's chromium, headless, driven
//! by puppeteer-core (`tests/web/watch.mjs`), plays a stream that ffmpeg
//! publishes, over LL-HLS (hls.js) and over HTTP-FLV (mpegts.js), and reads
//! the stream list. The publisher burns its capture time into every frame,
//! so the page measures glass-to-glass latency frame by frame.
//!
//! Needs chromium, node and `npm ci` in `tests/web` (`.ci/run` does it);
//! without them the test is SKIPPED, and under CI=true it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod common;

use common::web::{PUPPETEER, browser, shots};
use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// ffmpeg publishing a 640x360 25 fps test picture with a tone, the
/// capture time (wall clock ms - `base`) burnt into the top 32 rows as 20
/// white-or-black squares, the lowest bit on the left.
fn timecoded_publisher(url: &str, base: u64) -> Proc {
    let mut vf = format!(
        "settb=1/1000,setpts=RTCTIME/1000-{base},\
         drawbox=x=0:y=0:w=640:h=32:color=black:t=fill"
    );
    for k in 0..20 {
        vf += &format!(
            ",drawbox=x={}:y=0:w=32:h=32:color=white:t=fill:enable='mod(floor(t*1000/{}),2)'",
            32 * k,
            1u64 << k
        );
    }
    // Even timestamps again for the encoder.
    vf += ",setpts=N*40";
    Proc(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
            .args(["-vf", &vf])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-tune",
                "zerolatency",
            ])
            .args(["-g", "25", "-pix_fmt", "yuv420p", "-b:v", "1M"])
            .args(["-c:a", "aac", "-b:a", "96k", "-f", "flv", url])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Latencies (ms) of the frames shown at or after `from` (wall ms), sorted.
fn latencies_after(v: &Value, from: f64) -> Vec<i64> {
    let mut l: Vec<i64> = v["latencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p[0].as_f64().unwrap() >= from)
        .map(|p| p[1].as_i64().unwrap())
        .collect();
    l.sort_unstable();
    l
}

fn percentile(sorted: &[i64], p: usize) -> i64 {
    sorted[(sorted.len() - 1) * p / 100]
}

/// The video reached readyState 3+ and its currentTime kept up with the
/// wall clock over the last 4 s of samples.
fn assert_plays(v: &Value, what: &str) {
    assert!(
        v["maxReady"].as_i64().unwrap() >= 3,
        "{what}: readyState stayed below 3: {v}"
    );
    let samples = v["samples"].as_array().unwrap();
    let last = samples.last().unwrap();
    let earlier = samples
        .iter()
        .rev()
        .find(|s| last["at"].as_f64().unwrap() - s["at"].as_f64().unwrap() >= 4000.0)
        .unwrap();
    let wall = (last["at"].as_f64().unwrap() - earlier["at"].as_f64().unwrap()) / 1000.0;
    let media = last["time"].as_f64().unwrap() - earlier["time"].as_f64().unwrap();
    println!("{what}: currentTime advanced {media:.2} s in {wall:.2} s");
    assert!(
        media > wall * 0.8 && media < wall * 1.25,
        "{what}: currentTime advanced {media:.2} s in {wall:.2} s"
    );
    assert_eq!(v["width"], 640, "{what}: {v}");
    assert_eq!(v["height"], 360, "{what}: {v}");
}

/// A page waits for a stream; ffmpeg publishes; the page plays it over
/// LL-HLS. Then a page asked for HTTP-FLV plays it, and the list shows it.
fn watch_pages_play_a_live_stream() {
    let s = Served::start(&[
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--http-listen".into(),
        "127.0.0.1:0".into(),
    ]);
    let (port, web) = (s.plain.unwrap(), s.http.unwrap());
    let base = now_ms() - 1000;
    let dir = shots();

    // LL-HLS: the player is there first, then the stream starts.
    let hls_shot = dir.join("watch-hls.png");
    let watch = format!("http://127.0.0.1:{web}/watch/live/b");
    let (w, shot, b) = (watch.clone(), hls_shot.clone(), base.to_string());
    let page =
        std::thread::spawn(move || browser(&["watch", &w, shot.to_str().unwrap(), "22", &b]));
    std::thread::sleep(Duration::from_secs(3));
    let published = now_ms();
    let _publisher = timecoded_publisher(&format!("rtmp://127.0.0.1:{port}/live/b"), base);
    let hls = page.join().unwrap();
    assert_eq!(hls["via"], "hls.js", "{hls}");
    assert_plays(&hls, "LL-HLS");
    let first = hls["firstFrameShown"].as_f64().unwrap();
    let to_first = first - published as f64;
    let steady = latencies_after(&hls, first + 8000.0);
    assert!(steady.len() > 100, "few timecoded frames: {hls}");
    let (p50, p90) = (percentile(&steady, 50), percentile(&steady, 90));
    println!(
        "LL-HLS: publish to first frame shown {:.2} s; glass-to-glass over {} frames: median {p50} ms, p90 {p90} ms, min {} ms, max {} ms",
        to_first / 1000.0,
        steady.len(),
        steady[0],
        steady[steady.len() - 1]
    );
    // A wrongly read timecode gives wild values; a sane one a steady delay.
    assert!(
        steady[0] > 0,
        "a frame shown before it was captured: {steady:?}"
    );
    assert!(p90 - steady[0] < 1500, "latency jumps around: {steady:?}");
    assert!(p50 < 6000, "LL-HLS latency {p50} ms");
    assert!(
        to_first < 15000.0,
        "first frame {to_first} ms after publish"
    );

    // Joining the running stream over LL-HLS.
    let join_shot = dir.join("watch-hls-join.png");
    let join = browser(&[
        "watch",
        &watch,
        join_shot.to_str().unwrap(),
        "14",
        &base.to_string(),
    ]);
    assert_eq!(join["via"], "hls.js", "{join}");
    assert_plays(&join, "LL-HLS join");
    let opened = join["opened"].as_f64().unwrap();
    let first = join["firstFrameShown"].as_f64().unwrap();
    let steady = latencies_after(&join, first + 6000.0);
    assert!(steady.len() > 100, "few timecoded frames: {join}");
    let (p50, p90) = (percentile(&steady, 50), percentile(&steady, 90));
    println!(
        "LL-HLS join: page open to first frame {:.2} s; glass-to-glass median {p50} ms, p90 {p90} ms",
        (first - opened) / 1000.0
    );
    assert!(
        steady[0] > 0 && p50 < 6000,
        "LL-HLS join latency: {steady:?}"
    );

    // Joining the running stream over HTTP-FLV.
    let flv_shot = dir.join("watch-flv.png");
    let flv = browser(&[
        "watch",
        &format!("{watch}?via=flv"),
        flv_shot.to_str().unwrap(),
        "10",
        &base.to_string(),
    ]);
    assert_eq!(flv["via"], "mpegts.js", "{flv}");
    assert_plays(&flv, "HTTP-FLV");
    let opened = flv["opened"].as_f64().unwrap();
    let first = flv["firstFrameShown"].as_f64().unwrap();
    let steady = latencies_after(&flv, first + 4000.0);
    assert!(steady.len() > 50, "few timecoded frames: {flv}");
    let (p50, p90) = (percentile(&steady, 50), percentile(&steady, 90));
    println!(
        "HTTP-FLV: page open to first frame {:.2} s; glass-to-glass median {p50} ms, p90 {p90} ms",
        (first - opened) / 1000.0
    );
    assert!(steady[0] > 0 && p50 < 3000, "HTTP-FLV latency: {steady:?}");

    // The list.
    let list_shot = dir.join("list.png");
    let list = browser(&[
        "list",
        &format!("http://127.0.0.1:{web}/"),
        list_shot.to_str().unwrap(),
    ]);
    let row: Vec<&str> = list["rows"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    println!("stream list: {row:?}");
    assert_eq!(row[0], "live/b");
    assert_eq!(row[1], "h264 (High)");
    assert_eq!(row[2], "640x360");
    assert!(row[3].starts_with("aac (LC), 44100 Hz"), "{row:?}");
    let kbps: u64 = row[4].split(' ').next().unwrap().parse().unwrap();
    assert!((500..3000).contains(&kbps), "bitrate {kbps} kbit/s");
    assert_eq!(list["links"][0], "/watch/live/b");
    println!(
        "screenshots: {}, {}, {}, {}",
        hls_shot.display(),
        join_shot.display(),
        flv_shot.display(),
        list_shot.display()
    );
}

/// A recording plays from the watch page: a 5 s stream recorded in fMP4,
/// listed under the player once the stream is over, played by hls.js over
/// the VOD playlist.
fn a_recording_plays_from_the_watch_page() {
    let dir = std::env::temp_dir().join(format!("rtmpkit-browser-rec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let served = Served::start(&[
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--http-listen".into(),
        "127.0.0.1:0".into(),
        "--record".into(),
        dir.display().to_string(),
    ]);
    let (rtmp, http) = (served.plain.unwrap(), served.http.unwrap());
    let out = push_fixture(&format!("rtmp://127.0.0.1:{rtmp}/live/rec"), &[]);
    assert!(out.status.success());
    std::thread::sleep(Duration::from_millis(500));
    let shot = shots().join("recording.png");
    let v = browser(&[
        "recording",
        &format!("http://127.0.0.1:{http}/watch/live/rec"),
        shot.to_str().unwrap(),
        "4",
    ]);
    println!(
        "recording: {} listed, via {}, errors {}",
        v["items"], v["via"], v["errors"]
    );
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["via"], "recording");
    assert!(v["errors"].as_array().unwrap().is_empty(), "{v}");
    assert!(v["maxReady"].as_i64().unwrap() >= 3, "{v}");
    assert_eq!(v["width"], 320, "the sample's picture: {v}");
    let samples = v["samples"].as_array().unwrap();
    let last = samples.last().unwrap();
    // The 5 s recording: about 5 s long, and it plays on.
    let duration = last["duration"].as_f64().unwrap_or(0.0);
    assert!((4.5..=5.5).contains(&duration), "duration {duration}: {v}");
    assert!(last["time"].as_f64().unwrap() > 2.0, "currentTime: {v}");
    drop(served);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    run_interop(vec![
        interop(
            "watch_pages_play_a_live_stream",
            &["ffmpeg", "node", "chromium", PUPPETEER],
            watch_pages_play_a_live_stream,
        ),
        interop(
            "a_recording_plays_from_the_watch_page",
            &["ffmpeg", "node", "chromium", PUPPETEER],
            a_recording_plays_from_the_watch_page,
        ),
    ]);
}
