//! SIGTERM (what `timeout`, systemd and container runtimes send) ends
//! push, pull and relay like Ctrl-C: a clean close, the summary, exit 0,
//! and a complete FLV file; and `pull -o` flushes at least once a second.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Proc, Served, fixture, push_looping, rtmpkit};
use rtmpkit_proto::flv::FlvReader;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn term(p: &Proc) {
    let ok = Command::new("kill")
        .args(["-TERM", &p.0.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Tags of an FLV file (which may end mid-tag) and the media time they span.
fn flv_tags(file: &Path) -> (usize, u32) {
    let data = std::fs::read(file).unwrap_or_default();
    let mut r = FlvReader::new();
    r.push(&data);
    let (mut n, mut first, mut last) = (0, None, 0);
    while let Ok(Some(t)) = r.next_tag() {
        n += 1;
        first.get_or_insert(t.timestamp.as_millis());
        last = t.timestamp.as_millis();
    }
    (n, last.saturating_sub(first.unwrap_or(0)))
}

/// A server with the fixture published to live/s in a loop.
fn live() -> (Served, Proc, String) {
    let served = Served::start(&["--listen".into(), "127.0.0.1:0".into()]);
    let url = format!("rtmp://127.0.0.1:{}/live/s", served.plain.unwrap());
    let pusher = push_looping(&url);
    std::thread::sleep(Duration::from_millis(500));
    (served, pusher, url)
}

fn stderr_of(p: Proc) -> String {
    let mut p = p;
    let mut s = String::new();
    use std::io::Read;
    p.0.stderr.take().unwrap().read_to_string(&mut s).unwrap();
    s
}

#[test]
fn pull_on_sigterm_writes_everything_and_prints_its_summary() {
    let (_served, _pusher, url) = live();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.flv");
    let mut pull = Proc(
        rtmpkit()
            .args(["pull", &url, "-o"])
            .arg(&out)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The file follows the stream within about a second, long before the
    // 256 KiB write buffer would fill (the fixture is ~400 kbit/s).
    let t = Instant::now();
    let mut seen = (0, 0);
    while t.elapsed() < Duration::from_secs(3) {
        seen = flv_tags(&out);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        seen.1 >= 1000,
        "after 3 s the file holds only {} ms of media ({} tags): not flushed each second",
        seen.1,
        seen.0
    );
    term(&pull);
    let status = pull
        .wait_timeout(Duration::from_secs(5))
        .expect("pull ends on SIGTERM");
    assert!(status.success(), "pull exit status {status:?}");
    let err = stderr_of(pull);
    assert!(
        err.contains("pull: received"),
        "no summary on SIGTERM: {err}"
    );
    let (n, span) = flv_tags(&out);
    assert!(
        n > seen.0 && span >= 2500,
        "file after SIGTERM: {n} tags, {span} ms"
    );
    // Nothing was left in the buffer: the file ends on a whole tag.
    let data = std::fs::read(&out).unwrap();
    let mut r = FlvReader::new();
    r.push(&data);
    while let Ok(Some(_)) = r.next_tag() {}
    assert_eq!(r.pending_bytes(), 0, "the file ends mid-tag");
}

#[test]
fn push_on_sigterm_closes_and_prints_its_summary() {
    let served = Served::start(&["--listen".into(), "127.0.0.1:0".into()]);
    let url = format!("rtmp://127.0.0.1:{}/live/p", served.plain.unwrap());
    let mut push = Proc(
        rtmpkit()
            .args(["push", "--loop"])
            .arg(fixture())
            .arg(&url)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(2));
    term(&push);
    let status = push
        .wait_timeout(Duration::from_secs(5))
        .expect("push ends on SIGTERM");
    assert!(status.success(), "push exit status {status:?}");
    let err = stderr_of(push);
    assert!(err.contains("push: sent"), "no summary on SIGTERM: {err}");
}

#[test]
fn relay_on_sigterm_closes_both_sides() {
    let (served, _pusher, url) = live();
    let dst = format!("rtmp://127.0.0.1:{}/live/copy", served.plain.unwrap());
    let mut relay = Proc(
        rtmpkit()
            .args(["relay", &url, &dst])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(2));
    term(&relay);
    let status = relay
        .wait_timeout(Duration::from_secs(5))
        .expect("relay ends on SIGTERM");
    assert!(status.success(), "relay exit status {status:?}");
}
