//! The real Node-Media-Server 4 (from npm, `npm ci` in `tests/web`): it plays
//! on message stream 0 and its push relay publishes there; `pull`, `probe`,
//! `relay` and an edge read it, and `rtmpkit serve` takes its relay.

use super::{Probe, media_tags};
use crate::common::*;
use rtmpkit_proto::media::{Media, MediaKind};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command as Cmd, Stdio};
use std::time::Duration;

/// Node-Media-Server from npm (`npm ci` in `crates/rtmpkit-cli/tests/web`).
pub const NMS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/web/node_modules/node-media-server/bin/app.js"
);

/// Node-Media-Server on loopback ports of its own; its RTMP and HTTP ports.
fn start_nms(dir: &Path) -> (Proc, u16, u16) {
    let (rtmp, http) = (free_port(), free_port());
    let cfg = dir.join("nms.json");
    let config = serde_json::json!({
        "bind": "127.0.0.1",
        "rtmp": {"port": rtmp},
        "http": {"port": http},
        "store": {"path": dir.join("nms-data")},
        "webadmin": {"enable": false},
        "auth": {"play": false, "publish": false, "secret": "", "jwt": {
            "secret": "test-secret", "expiresIn": "1h", "refreshExpiresIn": "1h",
            "algorithm": "HS256",
            "users": [{"username": "admin", "password": "testpw", "role": "admin"}]
        }}
    });
    std::fs::write(&cfg, config.to_string()).unwrap();
    let p = Proc(
        Cmd::new("node")
            .arg(NMS)
            .arg("-c")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(rtmp);
    wait_for_port(http);
    (p, rtmp, http)
}

/// A POST with a JSON body to Node-Media-Server's API; the answer's JSON.
fn nms_post(
    port: u16,
    path: &str,
    token: Option<&str>,
    body: &serde_json::Value,
) -> serde_json::Value {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body = body.to_string();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        c,
        "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    let json = text.split_once("\r\n\r\n").unwrap().1;
    // The body may come chunked: the JSON is between the first { and the last }.
    let (a, b) = (json.find('{').unwrap(), json.rfind('}').unwrap());
    serde_json::from_str(&json[a..=b]).unwrap()
}

/// Video frames and audio frames of an FLV file, and whether its first
/// video frame is a keyframe.
fn frames_of(file: &Path) -> (usize, usize, bool) {
    let m = media_tags(file);
    let video: Vec<&Media> = m
        .iter()
        .filter(|m| m.kind == MediaKind::Video && !m.sequence_header)
        .collect();
    let audio = m
        .iter()
        .filter(|m| m.kind == MediaKind::Audio && !m.sequence_header)
        .count();
    (
        video.len(),
        audio,
        video.first().is_some_and(|v| v.keyframe),
    )
}

/// The real Node-Media-Server plays on message stream 0, and its push
/// relay publishes there: our pull, probe, relay and an edge read it, and
/// `rtmpkit serve` takes its relay.
pub fn node_media_server() {
    let dir = tempfile::tempdir().unwrap();
    let (_nms, nms_rtmp, nms_http) = start_nms(dir.path());
    let src = format!("rtmp://127.0.0.1:{nms_rtmp}/live/n");
    let _publisher = push_looping(&src);
    std::thread::sleep(Duration::from_millis(1500));
    let s = Served::start(&[
        "-vv".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--relay-pull".into(),
        format!("rtmp://127.0.0.1:{nms_rtmp}"),
    ]);
    let port = s.plain.unwrap();
    let (direct, relayed, at_edge, pushed) = (
        dir.path().join("direct.flv"),
        dir.path().join("relayed.flv"),
        dir.path().join("edge.flv"),
        dir.path().join("pushed.flv"),
    );
    let mut pull = pull_to(&src, &direct, 4, &[]);
    let _relay = Proc(
        rtmpkit()
            .args([
                "-q",
                "relay",
                &src,
                &format!("rtmp://127.0.0.1:{port}/live/r"),
            ])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Node-Media-Server's own push relay, into our server as live/p.
    let login = nms_post(
        nms_http,
        "/api/v1/login",
        None,
        &serde_json::json!({"username": "admin", "password": "testpw"}),
    );
    let token = login["data"]["token"].as_str().unwrap().to_owned();
    let added = nms_post(
        nms_http,
        "/api/v1/relay",
        Some(&token),
        &serde_json::json!({
            "url": format!("rtmp://127.0.0.1:{port}/live/p"),
            "mode": "push",
            "streamPath": "/live/n"
        }),
    );
    assert_eq!(added["success"], true, "{added}");
    std::thread::sleep(Duration::from_millis(1000));
    let mut players = [
        pull_to(&format!("rtmp://127.0.0.1:{port}/live/r"), &relayed, 4, &[]),
        pull_to(&format!("rtmp://127.0.0.1:{port}/live/n"), &at_edge, 4, &[]),
        pull_to(&format!("rtmp://127.0.0.1:{port}/live/p"), &pushed, 4, &[]),
    ];
    let report = Probe::start(&src, dir.path()).report();
    assert_eq!(report["video"]["codec"], "h264");
    assert_eq!(report["audio"]["codec"], "aac");
    assert!(report["video"]["frames"].as_u64().unwrap() >= 40);
    for p in players.iter_mut().chain([&mut pull]) {
        assert!(p.wait_timeout(Duration::from_secs(15)).is_some(), "ends");
    }
    // 4 s of a 25 fps, 44.1 kHz AAC stream: about 100 video and 170 audio
    // frames; each player starts on a keyframe.
    for (what, f) in [
        ("pull from Node-Media-Server", &direct),
        ("a player of our relay of it", &relayed),
        ("a player of an edge of it", &at_edge),
        ("a player of its push relay", &pushed),
    ] {
        let (v, a, key) = frames_of(f);
        eprintln!("{what}: {v} video, {a} audio frames");
        assert!(v >= 70 && a >= 120, "{what}: {v} video, {a} audio frames");
        assert!(key, "{what}: starts on a keyframe");
    }
    assert!(s.wait_line("taken as the publishing stream 1's", Duration::from_secs(1)));
}
