//! A short soak: `rtmpkit bench soak` against `rtmpkit serve` for 20 s with
//! players and publishers coming and going. Steady players lose no frame,
//! and the server ends with the file descriptors it started with.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Served, fixture, rtmpkit};

fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

#[test]
fn a_short_soak_loses_no_frame_and_leaks_no_descriptor() {
    let served = Served::start(&["--listen".into(), "127.0.0.1:0".into()]);
    let out = rtmpkit()
        .args(["bench", "soak"])
        .arg(format!("rtmp://127.0.0.1:{}/live", served.plain.unwrap()))
        .arg("--input")
        .arg(fixture())
        .args([
            "--minutes",
            "0.33",
            "--every",
            "5",
            "--steady",
            "5",
            "--churn",
            "40",
            "--publishers",
            "2",
        ])
        .arg("--server-pid")
        .arg(served.proc.0.id().to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    let result = stdout
        .lines()
        .find(|l| l.starts_with("RESULT soak"))
        .unwrap();
    assert_eq!(field(result, "steady_lost"), 0);
    assert!(field(result, "steady_frames") > 5 * 25 * 15, "{result}");
    assert!(field(result, "joins") > 40, "{result}");
    assert!(field(result, "publishes") >= 2, "{result}");
    assert_eq!(field(result, "failures"), 0);
    assert!(
        field(result, "server_fds_end") <= field(result, "server_fds_start") + 1,
        "{result}"
    );
}
