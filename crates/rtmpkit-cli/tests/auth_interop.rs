//! Authorization with real processes: nginx-rtmp-style HTTP hooks answered
//! by a small HTTP server of the test (allow, deny, rename, relay, hang;
//! a play renamed),
//! signed URLs with tokens computed here, and the status page's token.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod common;

use common::hooks::HookServer;
use common::*;
use hmac::{Hmac, Mac};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn stderr_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn push_is_refused(url: &str, extra: &[&str], words: &[&str]) {
    let t = Instant::now();
    let r = push_fixture(url, extra);
    let err = stderr_of(&r);
    assert!(!r.status.success(), "push to {url} must be refused");
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "refused only after {:?}",
        t.elapsed()
    );
    for w in words {
        assert!(err.contains(w), "error names {w:?}: {err}");
    }
}

fn hooks_allow_deny_rename_relay_and_time_out() {
    let hooks = HookServer::start();
    let hook = hooks.url();
    let s = Served::start(&[
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--on-publish".into(),
        hook.clone(),
        "--on-play".into(),
        hook.clone(),
        "--on-publish-done".into(),
        hook.clone(),
        "--on-play-done".into(),
        hook,
        "--hook-timeout".into(),
        "1".into(),
    ]);
    let port = s.plain.unwrap();
    hooks.rtmp_port.store(port, Ordering::Relaxed);
    let url = |name: &str| format!("rtmp://127.0.0.1:{port}/live/{name}");
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(format!("{name}.flv"));

    // Players wait on every stream the publishers will try.
    let mut players: Vec<(&str, Proc)> = ["allowed", "denied", "renamed", "copy", "alias"]
        .into_iter()
        .map(|n| (n, pull_to(&url(n), &out(n), 12, &[])))
        .collect();
    std::thread::sleep(Duration::from_millis(800));

    // Three publishers at once: allowed, renamed (a 3xx with a plain
    // name), relayed (a 3xx with an rtmp:// URL).
    let publish = |url: String| {
        Proc(
            rtmpkit()
                .arg("push")
                .arg(fixture())
                .arg(url)
                .stdin(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let mut publishers = [
        publish(format!("{}?key=abc", url("allowed"))),
        publish(url("moved")),
        publish(url("relayed")),
    ];

    // The hook hears nginx-rtmp's fields and the URL's arguments.
    let f = hooks.wait_call("publish", "allowed");
    assert_eq!(f["app"], "live");
    assert_eq!(f["type"], "live");
    assert_eq!(f["key"], "abc");
    assert_eq!(f["addr"], "127.0.0.1");
    assert_eq!(f["tcurl"], format!("rtmp://127.0.0.1:{port}/live"));
    assert!(!f["flashver"].is_empty() && f.contains_key("clientid"));
    let play = hooks.wait_call("play", "allowed");
    assert_eq!(play["app"], "live");

    // Denied: the publisher gets the refusal with the hook's answer.
    push_is_refused(
        &url("denied"),
        &[],
        &["NetStream.Publish.Unauthorized", "403", "no such key"],
    );
    // Hang: no answer within --hook-timeout refuses.
    push_is_refused(&url("slow"), &[], &["Unauthorized", "did not answer"]);
    // A player the play hook refuses.
    let r = run(rtmpkit()
        .args(["pull", &url("forbidden"), "--duration", "3"])
        .stdin(std::process::Stdio::null()));
    let err = stderr_of(&r);
    assert!(!r.status.success());
    assert!(
        err.contains("NetStream.Play.Unauthorized") && err.contains("not for you"),
        "{err}"
    );

    for p in &mut publishers {
        let end = p.wait_timeout(Duration::from_secs(15));
        assert!(end.is_some_and(|s| s.success()), "publisher ends well");
    }
    let done = hooks.wait_call("publish_done", "allowed");
    assert_eq!(done["clientid"], f["clientid"]);
    for (_, p) in &mut players {
        let _ = p.wait_timeout(Duration::from_secs(15));
    }
    assert_same_media(&fixture(), &out("allowed"));
    assert_same_media(&fixture(), &out("renamed"));
    assert_same_media(&fixture(), &out("copy"));
    // The play hook renamed `alias` to `allowed`.
    assert_same_media(&fixture(), &out("alias"));
    assert_eq!(
        counts(&out("denied")),
        (0, 0),
        "a refused publisher reaches nobody"
    );
    hooks.wait_call("play_done", "allowed");
}

type HmacSha256 = Hmac<sha2::Sha256>;

/// The token, computed here from the definition: lower-case hex of
/// HMAC-SHA256(secret, "APP/STREAM:E").
fn token(secret: &str, text: &str) -> String {
    let mut m = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
    m.update(text.as_bytes());
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn signed_urls_valid_expired_wrong_missing() {
    let s = Served::start(&[
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--publish-secret".into(),
        "pub-s3cret".into(),
        "--play-secret".into(),
        "play-s3cret".into(),
    ]);
    let port = s.plain.unwrap();
    let base = format!("rtmp://127.0.0.1:{port}/live/cam1");
    let e = now() + 600;
    let signed = |secret: &str, e: u64| {
        format!(
            "{base}?expires={e}&token={}",
            token(secret, &format!("live/cam1:{e}"))
        )
    };

    // `rtmpkit sign` gives the same token as the definition.
    let r = run(rtmpkit().args(["sign", &base, "--secret", "pub-s3cret", "--ttl", "600"]));
    assert!(r.status.success());
    let printed = String::from_utf8(r.stdout).unwrap().trim().to_owned();
    let (_, query) = printed.split_once('?').unwrap();
    let e_printed: u64 = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("expires="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(e_printed.abs_diff(e) <= 5);
    assert_eq!(printed, signed("pub-s3cret", e_printed));

    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("seen.flv");
    // The player plays `live/cam1` (its own token); the publisher's
    // token arguments are not part of the stream's name.
    let mut player = pull_to(&signed("play-s3cret", e), &seen, 12, &[]);
    std::thread::sleep(Duration::from_millis(800));
    push_is_refused(
        &base,
        &[],
        &["NetStream.Publish.Unauthorized", "no expires"],
    );
    push_is_refused(
        &signed("pub-s3cret", now() - 10),
        &[],
        &["Unauthorized", "expired"],
    );
    push_is_refused(
        &signed("wrong-secret", e),
        &[],
        &["Unauthorized", "wrong token"],
    );
    // A play token does not publish.
    push_is_refused(&signed("play-s3cret", e), &[], &["wrong token"]);
    let r = push_fixture(&printed, &[]);
    assert!(r.status.success(), "the signed URL publishes");
    assert!(player.wait_timeout(Duration::from_secs(15)).is_some());
    assert_same_media(&fixture(), &seen);

    let r = run(rtmpkit()
        .args(["pull", &base, "--duration", "2"])
        .stdin(std::process::Stdio::null()));
    let err = stderr_of(&r);
    assert!(
        !r.status.success() && err.contains("NetStream.Play.Unauthorized"),
        "{err}"
    );
}

fn http_get(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

fn status_page_needs_its_bearer_token() {
    let s = Served::with_api(&[]);
    let (rtmp, http) = (s.plain.unwrap(), s.http.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let _player = pull_to(
        &format!("rtmp://127.0.0.1:{rtmp}/live/a\"b"),
        &dir.path().join("x.flv"),
        5,
        &[],
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(http_get(http, "/stats", None).0, 401);
    assert_eq!(http_get(http, "/stats", Some("wrong")).0, 401);
    let (status, body) = http_get(http, "/stats", Some("t0ken"));
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["streams"][0]["name"], "live/a\"b", "{body}");
    assert_eq!(v["streams"][0]["players"], 1);
    assert_eq!(v["streams"][0]["publishing"], false);
    assert_eq!(http_get(http, "/nope", Some("t0ken")).0, 404);
}

/// nginx-rtmp's on_connect and strict on_update: a connect the hook
/// refuses is rejected; a publisher and a player whose on_update answers
/// 403 on its second call are ended then, the first call having `time`
/// and `timestamp`.
fn on_connect_refuses_and_on_update_ends_sessions() {
    let hooks = HookServer::start();
    let served = Served::start(&[
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--on-connect".into(),
        hooks.url(),
        "--on-update".into(),
        hooks.url(),
        "--notify-update-interval".into(),
        "1".into(),
    ]);
    let port = served.plain.unwrap();
    // The hook closes app "closed".
    let refused = push_fixture(&format!("rtmp://127.0.0.1:{port}/closed/s"), &[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("app closed"),
        "{err}"
    );
    let c = hooks.wait_call("connect", "");
    assert_eq!(c["app"], "closed");
    assert!(c["flashver"].len() > 2, "{c:?}");
    // A publisher told twice: ended at the second call, about 2 s in.
    let t = Instant::now();
    let publisher = push_looping(&format!("rtmp://127.0.0.1:{port}/live/upd"));
    let first = hooks.wait_call("update_publish", "upd");
    assert_eq!(first["time"], "1", "{first:?}");
    assert!(
        first["timestamp"].parse::<u64>().unwrap() > 500,
        "{first:?}"
    );
    let mut publisher = publisher;
    assert!(
        publisher.wait_timeout(Duration::from_secs(5)).is_some(),
        "the publisher goes on after on_update refused"
    );
    let ended = t.elapsed();
    eprintln!("publisher ended {ended:?} after it started (on_update every 1 s)");
    assert!(ended >= Duration::from_millis(1900) && ended < Duration::from_secs(5));
    // A publisher the hook keeps allowing goes on.
    let ok = push_fixture(&format!("rtmp://127.0.0.1:{port}/live/fine"), &[]);
    assert!(ok.status.success());
    assert!(
        hooks
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|f| f["call"] == "update_publish" && f["name"] == "fine")
            .count()
            >= 3
    );
}

fn main() {
    run_interop(vec![
        interop(
            "hooks_allow_deny_rename_relay_and_time_out",
            &["ffprobe"],
            hooks_allow_deny_rename_relay_and_time_out,
        ),
        interop(
            "signed_urls_valid_expired_wrong_missing",
            &["ffprobe"],
            signed_urls_valid_expired_wrong_missing,
        ),
        interop(
            "on_connect_refuses_and_on_update_ends_sessions",
            &[],
            on_connect_refuses_and_on_update_ends_sessions,
        ),
        interop(
            "status_page_needs_its_bearer_token",
            &[],
            status_page_needs_its_bearer_token,
        ),
    ]);
}
