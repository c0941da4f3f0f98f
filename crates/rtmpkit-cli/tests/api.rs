//! The operator API with real clients: sessions listed with what they
//! said and did, a kicked player gone within a second, a kicked publisher
//! blocked from republishing for `block` seconds, both counted in
//! `/metrics`; the API's bytes and bitrate out match what a raw player
//! received.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod common;

use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

fn sessions(web: u16) -> Vec<Value> {
    let (status, body) = http(web, "GET", "/api/v1/sessions");
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["sessions"].as_array().unwrap().clone()
}

fn with_role(web: u16, role: &str) -> Option<Value> {
    sessions(web).into_iter().find(|s| s["role"] == role)
}

fn kicks_counted(web: u16) -> u64 {
    let (_, body) = http(web, "GET", "/metrics");
    body.lines()
        .find(|l| l.starts_with("rtmpkit_kicks_total "))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn kick_a_player_and_block_a_publisher() {
    let served = Served::with_api(&[]);
    let (port, web) = (served.plain.unwrap(), served.http.unwrap());
    let url = format!("rtmp://127.0.0.1:{port}/live/cam");
    let publisher = push_looping(&url);
    let dir = std::env::temp_dir().join(format!("rtmpkit-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut player = pull_to(&url, &dir.join("p.flv"), 60, &[]);
    let t = Instant::now();
    while with_role(web, "player").is_none() || with_role(web, "publisher").is_none() {
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", sessions(web));
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let p = with_role(web, "player").unwrap();
    assert_eq!(p["kind"], "rtmp");
    assert_eq!(p["stream"], "live/cam");
    assert!(p["flash_ver"].as_str().unwrap().len() > 2, "{p}");
    assert!(p["tc_url"].as_str().unwrap().ends_with("/live"), "{p}");
    assert!(p["bytes_out"].as_u64().unwrap() > 10_000, "{p}");
    let (status, body) = http(web, "GET", &format!("/api/v1/sessions/{}", p["id"]));
    assert_eq!(status, 200, "{body}");
    // The stream view names its publisher and counts the player.
    let (_, body) = http(web, "GET", "/api/v1/streams/live/cam");
    let s: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        s["publisher"],
        with_role(web, "publisher").unwrap()["id"],
        "{s}"
    );
    assert_eq!(s["players_by_kind"]["rtmp"], 1, "{s}");

    // The command line sees the same.
    let listed = run(rtmpkit().args([
        "sessions",
        &format!("http://127.0.0.1:{web}"),
        "--token",
        "t0ken",
    ]));
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.contains("publisher") && text.contains("player") && text.contains("live/cam"),
        "{text}"
    );
    let no_token = run(rtmpkit().args(["sessions", &format!("http://127.0.0.1:{web}")]));
    assert!(!no_token.status.success());
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("401"));

    // Kick the player: gone from the list, and its pull ended, within 1 s.
    let kicked = Instant::now();
    let (status, body) = http(web, "DELETE", &format!("/api/v1/sessions/{}", p["id"]));
    assert_eq!(status, 200, "{body}");
    while sessions(web).iter().any(|s| s["id"] == p["id"]) {
        assert!(
            kicked.elapsed() < Duration::from_secs(1),
            "the kicked player stays"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        player.wait_timeout(Duration::from_secs(1)).is_some(),
        "the player's pull goes on"
    );
    eprintln!("player gone {:?} after the kick", kicked.elapsed());

    // An HTTP-FLV reader is a session too, with its bytes; kicked, its
    // response ends.
    let mut reader = Proc(
        std::process::Command::new("curl")
            .args(["-s", "-N", "--max-time", "30", "-o"])
            .arg(dir.join("h.flv"))
            .arg(format!("http://127.0.0.1:{web}/live/cam.flv"))
            .spawn()
            .unwrap(),
    );
    let t = Instant::now();
    let h = loop {
        let found = sessions(web)
            .into_iter()
            .find(|s| s["kind"] == "http-flv" && s["bytes_out"].as_u64().unwrap_or(0) > 10_000);
        if let Some(h) = found {
            break h;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", sessions(web));
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(h["role"], "player");
    assert_eq!(h["stream"], "live/cam");
    let (status, _) = http(web, "DELETE", &format!("/api/v1/sessions/{}", h["id"]));
    assert_eq!(status, 200);
    assert!(
        reader.wait_timeout(Duration::from_secs(1)).is_some(),
        "the kicked HTTP-FLV reader's response goes on"
    );

    // Kick the publisher with block=10: a republish is refused, then
    // accepted once the 10 s are over.
    let pb = with_role(web, "publisher").unwrap();
    // From the command line, the token from the environment.
    let kicked = run(rtmpkit().env("RTMPKIT_HTTP_TOKEN", "t0ken").args([
        "kick",
        &format!("http://127.0.0.1:{web}"),
        &pb["id"].to_string(),
        "--block",
        "10",
    ]));
    assert!(
        kicked.status.success(),
        "{}",
        String::from_utf8_lossy(&kicked.stderr)
    );
    let blocked_at = Instant::now();
    drop(publisher);
    let refused = push_fixture(&url, &[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("blocked"),
        "{err}"
    );
    std::thread::sleep(
        Duration::from_secs(10).saturating_sub(blocked_at.elapsed()) + Duration::from_millis(300),
    );
    let accepted = push_fixture(&url, &["--no-pace"]);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    assert_eq!(kicks_counted(web), 3);
    // Unknown ids and bad blocks.
    assert_eq!(http(web, "DELETE", "/api/v1/sessions/999999").0, 404);
    assert_eq!(
        http(
            web,
            "DELETE",
            &format!("/api/v1/sessions/{}?block=x", pb["id"])
        )
        .0,
        400
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every element path of an XML document (`rtmp/server/application/name`),
/// with the text of its first occurrence.
fn element_paths(xml: &str) -> std::collections::BTreeMap<String, String> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut out = std::collections::BTreeMap::new();
    loop {
        match r.read_event().unwrap() {
            Event::Start(e) => {
                path.push(String::from_utf8_lossy(e.name().as_ref()).into_owned());
                out.entry(path.join("/")).or_insert_with(String::new);
            }
            Event::Empty(e) => {
                let mut p = path.clone();
                p.push(String::from_utf8_lossy(e.name().as_ref()).into_owned());
                out.entry(p.join("/")).or_insert_with(String::new);
            }
            Event::Text(t) => {
                let v = t.decode().unwrap().into_owned();
                if let Some(slot) = out.get_mut(&path.join("/"))
                    && slot.is_empty()
                {
                    *slot = v;
                }
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

fn stat_reads_like_nginx_rtmps() {
    let nginx = Nginx::start();
    let served = Served::with_api(&[]);
    let (port, web) = (served.plain.unwrap(), served.http.unwrap());
    let ours = format!("rtmp://127.0.0.1:{port}/live/cam");
    let theirs = nginx.url("cam");
    // The same stream, a publisher and a player on each; nginx-rtmp
    // reports bandwidth every 10 s.
    let _pubs = (push_looping(&ours), push_looping(&theirs));
    let dir = std::env::temp_dir().join(format!("rtmpkit-stat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _players = (
        pull_to(&ours, &dir.join("a.flv"), 30, &[]),
        pull_to(&theirs, &dir.join("b.flv"), 30, &[]),
    );
    std::thread::sleep(Duration::from_secs(12));
    let (status, mine) = http(web, "GET", "/stat");
    assert_eq!(status, 200, "{mine}");
    let (status, reference) = http(nginx.stat_port, "GET", "/stat");
    assert_eq!(status, 200, "{reference}");
    let (a, b) = (element_paths(&mine), element_paths(&reference));
    let missing: Vec<&String> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    let extra: Vec<&String> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    eprintln!(
        "{} element paths in nginx-rtmp's /stat; missing here: {missing:?}; extra here: {extra:?}",
        b.len()
    );
    assert!(
        missing.is_empty(),
        "paths nginx-rtmp has and rtmpkit lacks: {missing:?}"
    );
    // The same values where the stream decides them.
    let s = "rtmp/server/application/live/stream";
    for k in [
        "rtmp/server/application/name",
        &format!("{s}/name"),
        &format!("{s}/nclients"),
        &format!("{s}/meta/video/width"),
        &format!("{s}/meta/video/height"),
        &format!("{s}/meta/video/frame_rate"),
        &format!("{s}/meta/video/codec"),
        &format!("{s}/meta/video/profile"),
        &format!("{s}/meta/video/compat"),
        &format!("{s}/meta/video/level"),
        &format!("{s}/meta/audio/codec"),
        &format!("{s}/meta/audio/profile"),
        &format!("{s}/meta/audio/channels"),
        &format!("{s}/meta/audio/sample_rate"),
    ] {
        assert_eq!(a.get(k), b.get(k), "{k}");
    }
    // Rates within 10 %. nginx-rtmp divides the bytes of a window by 10
    // s, but its window ends on the first whole second *past* its end
    // (`sec > intl_end`), so it holds 10-11 s of bytes: its figure reads
    // up to 10 % high. Ours divides by the window's real length.
    for k in ["bw_in", "bw_video", "bw_audio"] {
        let key = format!("{s}/{k}");
        let (x, y): (f64, f64) = (a[&key].parse().unwrap(), b[&key].parse().unwrap());
        eprintln!("{k}: rtmpkit {x}, nginx-rtmp {y}");
        assert!(y > 0.0, "{k}: nginx-rtmp has no figure yet");
        assert!(x >= y / 1.1 * 0.9 && x <= y * 1.1, "{k}: {x} against {y}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The API's bitrate out of a player against what a raw player counted on
/// its socket (within 2 %), and its bytes out (exactly).
fn api_figures_match_what_a_player_received() {
    use common::raw::{ask_bytes, handshaken_from};
    use rtmpkit_proto::message::Command;
    use std::io::Read;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let served = Served::with_api(&["--max-write-delay-ms".into(), "0".into()]);
    let (port, web) = (served.plain.unwrap(), served.http.unwrap());
    let mut s = handshaken_from("127.0.0.1", port);
    let me = s.local_addr().unwrap().to_string();
    let got = Arc::new(AtomicU64::new(
        ask_bytes(&mut s, "live", Command::play(3.0, "fig", None)).len() as u64,
    ));
    let count = got.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        while let Ok(n @ 1..) = s.read(&mut buf) {
            count.fetch_add(n as u64, Ordering::Relaxed);
        }
        s
    });
    let url = format!("rtmp://127.0.0.1:{port}/live/fig");
    let mut publisher = push_looping(&url);
    let mine = || {
        sessions(web)
            .into_iter()
            .find(|s| s["peer"] == me.as_str())
            .expect("the raw player's session")
    };
    std::thread::sleep(Duration::from_secs(3));
    // Bitrate: the API's reading over 8 s against the socket's count.
    let _ = mine();
    let (t0, c0) = (Instant::now(), got.load(Ordering::Relaxed));
    std::thread::sleep(Duration::from_secs(8));
    let p = mine();
    let (secs, c1) = (t0.elapsed().as_secs_f64(), got.load(Ordering::Relaxed));
    let counted_kbps = (c1 - c0) as f64 * 8.0 / secs / 1000.0;
    let api_kbps = p["bitrate_out_kbps"].as_f64().unwrap();
    eprintln!("bitrate out: API {api_kbps} kbit/s, player counted {counted_kbps:.1} kbit/s");
    assert!(
        (api_kbps - counted_kbps).abs() <= counted_kbps * 0.02 + 1.0,
        "{api_kbps} against {counted_kbps}"
    );
    let (_, body) = http(web, "GET", "/api/v1/streams/live/fig");
    let stream: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stream["players_by_kind"]["rtmp"], 1, "{stream}");
    assert!(stream["uptime_secs"].as_f64().unwrap() > 10.0, "{stream}");
    let tracks: Vec<String> = stream["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{} {} {}", t["kind"], t["id"], t["codec"]))
        .collect();
    assert_eq!(
        tracks,
        ["\"video\" 0 \"avc1\"", "\"audio\" 0 \"mp4a\""],
        "{stream}"
    );
    // Bytes: once the stream stopped and the socket went quiet, what the
    // API says was sent against what arrived.
    publisher.0.kill().unwrap();
    let _ = publisher.0.wait();
    std::thread::sleep(Duration::from_secs(1));
    let sent = mine()["bytes_out"].as_u64().unwrap();
    let stream_sent = {
        let (_, body) = http(web, "GET", "/api/v1/streams/live/fig");
        serde_json::from_str::<Value>(&body).unwrap()["bytes_out"].as_u64()
    };
    // The server's S0+S1+S2 (1 + 2 x 1536 bytes) came before the count.
    let received = got.load(Ordering::Relaxed) + 3073;
    eprintln!("bytes out: API {sent}, player received {received}");
    assert!(received > 300_000, "{received}");
    assert_eq!(sent, received, "every byte counted, no more");
    if let Some(stream_sent) = stream_sent {
        assert_eq!(stream_sent, sent);
    }
    drop(served);
    let _ = reader.join();
}

fn main() {
    run_interop(vec![
        interop(
            "api_figures_match_what_a_player_received",
            &[],
            api_figures_match_what_a_player_received,
        ),
        interop(
            "kick_a_player_and_block_a_publisher",
            &["ffmpeg", "curl"],
            kick_a_player_and_block_a_publisher,
        ),
        interop(
            "stat_reads_like_nginx_rtmps",
            &["ffmpeg", "nginx"],
            stat_reads_like_nginx_rtmps,
        ),
    ]);
}
