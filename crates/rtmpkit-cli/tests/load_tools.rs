//! The load tools in the ingest shape: `push -n` / `pull -n` with `{i}`
//! address N streams, and `bench ingest` publishes and plays N streams and
//! reports the server's figures.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::process::Stdio;
use std::time::Duration;

fn serve() -> Served {
    Served::start(&[
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--http-listen".into(),
        "127.0.0.1:0".into(),
    ])
}

#[test]
fn push_and_pull_n_address_n_streams() {
    let s = serve();
    let (port, web) = (s.plain.unwrap(), s.http.unwrap());
    let url = format!("rtmp://127.0.0.1:{port}/live/cam{{i}}");
    let _push = Proc(
        rtmpkit()
            .args(["-q", "push", "--loop", "-n", "3"])
            .arg(fixture())
            .arg(&url)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(800));
    let (_, stats) = http(web, "GET", "/stats");
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    let mut live: Vec<&str> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["publishing"] == true)
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    live.sort_unstable();
    assert_eq!(live, ["live/cam0", "live/cam1", "live/cam2"], "{stats}");
    let out = run(rtmpkit()
        .args(["pull", "--duration", "2", "-n", "3"])
        .arg(&url)
        .stdin(Stdio::null()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("3 sessions, 0 failed"), "{err}");
}

#[test]
fn bench_ingest_reports_every_stream() {
    let s = serve();
    let port = s.plain.unwrap();
    let out = run(rtmpkit()
        .args(["-q", "bench", "ingest"])
        .arg(format!("rtmp://127.0.0.1:{port}/live/in"))
        .args(["-n", "4", "--duration", "2", "--input"])
        .arg(fixture())
        .args(["--server-pid", &s.proc.0.id().to_string()])
        .stdin(Stdio::null()));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let result = text
        .lines()
        .find(|l| l.starts_with("RESULT ingest"))
        .unwrap();
    let val = |k: &str| -> f64 {
        result
            .split(' ')
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(val("streams"), 4.0, "{result}");
    assert_eq!(val("publishing"), 4.0, "{result}");
    assert_eq!(val("playing"), 4.0, "{result}");
    assert_eq!(val("behind"), 0.0, "{result}");
    // The fixture: about 400 kbit/s, 25 fps video, 43 fps audio, GOP 1 s.
    assert!(val("msgs_per_s") > 4.0 * 50.0, "{result}");
    assert!((20.0..80.0).contains(&val("gop_kib")), "{result}");
    assert!(val("server_rss_kib") > 0.0, "{result}");
    // Small streams are read and served once per 100 ms flush period.
    let (p50, p99) = (val("lat_p50_ms"), val("lat_p99_ms"));
    assert!(p50 > 0.0 && p50 <= p99 && p99 < 250.0, "{result}");
}
