//! Per-application policy and live reload, with real clients:
//! - `deny publish` for 127.0.0.2 while 127.0.0.1 is allowed (loopback
//!   aliases): refused with the rule as the reason, and accepted;
//! - an application no table covers is refused at `connect`;
//! - `max_players` refuses the next player, `max_publishers` the next
//!   stream; `hls = false` serves no playlist;
//! - SIGHUP with a changed publish secret: a new publish needs the new
//!   token; a file with a syntax error is refused, the log names its
//!   line, and the old config stays;
//! - `POST /api/v1/reload`: a live player the new rules deny is closed
//!   with the reason logged; a bad file is answered 422 with its line;
//! - a reload moves the RTMP listener to a new port.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod common;

use common::raw::{ask, handshaken_from};
use common::*;
use rtmpkit_proto::message::Command;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn publish_from(local: &str, port: u16, app: &str, name: &str) -> String {
    let mut s = handshaken_from(local, port);
    ask(&mut s, app, Command::publish(3.0, name, "live"))
}

fn sign(port: u16, stream: &str, secret: &str) -> String {
    let out = run(rtmpkit().args([
        "sign",
        &format!("rtmp://127.0.0.1:{port}/{stream}"),
        "--secret",
        secret,
    ]));
    assert!(out.status.success());
    let url = String::from_utf8(out.stdout).unwrap();
    url.trim().rsplit('/').next().unwrap().to_owned()
}

fn hangup(served: &Served) {
    let pid = served.proc.0.id().to_string();
    assert!(
        run(std::process::Command::new("kill").args(["-HUP", &pid]))
            .status
            .success()
    );
}

/// Waits until a player's output file holds media.
fn wait_for_media(file: &Path) {
    let t = Instant::now();
    while counts(file).0 == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the player got nothing"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn serve_with(file: &Path) -> Served {
    Served::start(&[
        "--config".into(),
        file.display().to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ])
}

#[test]
fn access_rules_unknown_apps_and_player_limits() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("serve.toml");
    write(
        &file,
        r#"
[apps.live]
rules = ["allow publish 127.0.0.1", "deny publish all", "allow play all"]
max_players = 1

[apps.open]
max_publishers = 1
hls = false
"#,
    );
    let served = Served::start(&[
        "--config".into(),
        file.display().to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--http-listen".into(),
        "127.0.0.1:0".into(),
    ]);
    let (port, web) = (served.plain.unwrap(), served.http.unwrap());

    let refused = publish_from("127.0.0.2", port, "live", "a");
    assert!(
        refused.contains("NetStream.Publish.Unauthorized")
            && refused.contains("denied by the rule `deny publish all`"),
        "{refused}"
    );
    assert!(served.wait_line(
        "publish refused: denied by the rule",
        Duration::from_secs(5)
    ));
    // The same client from the allowed address.
    let accepted = publish_from("127.0.0.1", port, "live", "a");
    assert!(accepted.contains("NetStream.Publish.Start"), "{accepted}");
    // 127.0.0.2 may publish in an application without rules.
    let mut open = handshaken_from("127.0.0.2", port);
    let answer = ask(&mut open, "open", Command::publish(3.0, "a", "live"));
    assert!(answer.contains("NetStream.Publish.Start"), "{answer}");
    // max_publishers = 1: a second stream of "open" waits for the first.
    let second = publish_from("127.0.0.1", port, "open", "b");
    assert!(second.contains("already has 1 publishers"), "{second}");
    // hls = false: no playlist for "open", one for "live".
    let (status, body) = http(web, "GET", "/open/a/index.m3u8");
    assert!(
        status == 404 && body.contains("does not serve HLS"),
        "{status} {body}"
    );
    let (_, body) = http(web, "GET", "/live/a/index.m3u8");
    assert!(!body.contains("does not serve HLS"), "{body}");
    drop(open);

    let mut s = handshaken_from("127.0.0.1", port);
    let unknown = ask(&mut s, "other", Command::publish(3.0, "a", "live"));
    assert!(
        unknown.contains("NetConnection.Connect.Rejected")
            && unknown.contains("application \"other\" is not served here"),
        "{unknown}"
    );

    // max_players = 1: the second player is refused, with the reason.
    let url = format!("rtmp://127.0.0.1:{port}/live/b");
    let _publisher = push_looping(&url);
    let first = pull_to(&url, &dir.path().join("1.flv"), 30, &[]);
    wait_for_media(&dir.path().join("1.flv"));
    let second = run(rtmpkit()
        .args(["pull", &url, "-o"])
        .arg(dir.path().join("2.flv"))
        .args(["--duration", "5"])
        .stdin(Stdio::null()));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        !second.status.success() && err.contains("already has 1 players"),
        "{err}"
    );
    drop(first);
}

#[test]
fn sighup_reloads_secrets_and_keeps_the_old_config_on_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("serve.toml");
    write(&file, "publish_secret = \"one\"\n");
    let served = serve_with(&file);
    let port = served.plain.unwrap();
    let with_one = sign(port, "live/a", "one");
    let with_two = sign(port, "live/a", "two");
    let publish = |name: &str| publish_from("127.0.0.1", port, "live", name);
    assert!(publish(&with_one).contains("NetStream.Publish.Start"));

    write(&file, "publish_secret = \"two\"\n");
    hangup(&served);
    assert!(served.wait_line("reloaded (SIGHUP)", Duration::from_secs(5)));
    let old = publish(&with_one);
    assert!(
        old.contains("NetStream.Publish.Unauthorized") && old.contains("signed URL refused"),
        "{old}"
    );
    assert!(publish(&with_two).contains("NetStream.Publish.Start"));

    // A syntax error on line 2: refused, named, and "two" stays.
    write(&file, "publish_secret = \"three\"\nmax_connections = = 5\n");
    hangup(&served);
    assert!(served.wait_line("reload (SIGHUP) refused", Duration::from_secs(5)));
    let said = served
        .lines()
        .into_iter()
        .find(|l| l.contains("reload (SIGHUP) refused"))
        .unwrap();
    assert!(said.contains("line 2, column"), "{said}");
    assert!(publish(&with_two).contains("NetStream.Publish.Start"));
}

#[test]
fn api_reload_closes_denied_players_and_refuses_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("serve.toml");
    let web = free_port();
    let head = format!("http_listen = \"127.0.0.1:{web}\"\nhttp_token = \"t0ken\"\n");
    write(&file, &format!("{head}[apps.live]\n"));
    let served = serve_with(&file);
    let port = served.plain.unwrap();
    let url = format!("rtmp://127.0.0.1:{port}/live/c");
    let _publisher = push_looping(&url);
    let mut player = pull_to(&url, &dir.path().join("p.flv"), 60, &[]);
    wait_for_media(&dir.path().join("p.flv"));

    // The new file denies play from loopback.
    write(
        &file,
        &format!("{head}[apps.live]\nrules = [\"deny play 127.0.0.0/8\"]\n"),
    );
    let (status, body) = http(web, "POST", "/api/v1/reload");
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["closed_sessions"], 1, "{report}");
    let t = Instant::now();
    let ended = player.wait_timeout(Duration::from_secs(5));
    assert!(ended.is_some(), "the denied player is still there");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(served.wait_line(
        "the reloaded config: play denied by the rule `deny play 127.0.0.0/8`",
        Duration::from_secs(2)
    ));
    // A new player is refused too.
    let mut s = handshaken_from("127.0.0.1", port);
    let again = ask(&mut s, "live", Command::play(3.0, "c", None));
    assert!(again.contains("NetStream.Play"), "{again}");
    assert!(again.contains("denied by the rule"), "{again}");

    // A bad file through the API: 422 with the line, nothing changes.
    write(
        &file,
        &format!("{head}[apps.live]\nrules = [\"deny everybody\"]\n"),
    );
    let (status, body) = http(web, "POST", "/api/v1/reload");
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("line 4") && body.contains("deny everybody"),
        "{body}"
    );
}

#[test]
fn reload_moves_the_rtmp_listener() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("serve.toml");
    let (first, second) = (free_port(), free_port());
    write(&file, &format!("listen = \"127.0.0.1:{first}\"\n"));
    let served = Served::start(&["--config".into(), file.display().to_string()]);
    assert!(served.wait_line(
        &format!("listening rtmp 127.0.0.1:{first}"),
        Duration::from_secs(5)
    ));
    write(&file, &format!("listen = \"127.0.0.1:{second}\"\n"));
    hangup(&served);
    assert!(served.wait_line(
        "reloaded (SIGHUP): 1 listener change",
        Duration::from_secs(5)
    ));
    let answer = publish_from("127.0.0.1", second, "live", "moved");
    assert!(answer.contains("NetStream.Publish.Start"), "{answer}");
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", first)).is_ok() {
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "the old listener is still open"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
