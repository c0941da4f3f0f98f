//! Live resilience with real processes: a frozen publisher taken over by a
//! new one while a player stays connected; a pushing client that survives
//! the server being killed and started again.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts an rtmpkit command whose stderr (its summary line) the test reads.
fn with_stderr(cmd: &mut Command) -> std::process::Child {
    cmd.stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a command started by [`with_stderr`]: it must end well, and
/// its summary must count exactly one reconnect. Returns its stderr.
fn ends_after_one_reconnect(child: std::process::Child) -> String {
    let done = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr).into_owned();
    eprintln!("{err}");
    assert!(done.status.success(), "exit 0");
    assert!(
        err.contains("1 reconnects"),
        "the summary counts one reconnect"
    );
    err
}

fn signal(p: &Proc, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &p.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

fn looped_push(url: &str, extra: &[&str]) -> Proc {
    Proc(
        rtmpkit()
            .args(["-q", "push", "--loop"])
            .arg(fixture())
            .arg(url)
            .args(extra)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Video dts (ms) of a file, in order, and the largest step between two.
fn video_dts(file: &Path) -> Vec<i64> {
    packets(file)
        .into_iter()
        .filter(|p| p.0 == 'v')
        .map(|p| p.1)
        .collect()
}

fn largest_step(dts: &[i64]) -> (usize, i64) {
    dts.windows(2)
        .enumerate()
        .map(|(i, w)| (i + 1, w[1] - w[0]))
        .max_by_key(|x| x.1)
        .unwrap_or((0, 0))
}

fn assert_forward(file: &Path) {
    for kind in ['v', 'a'] {
        let dts: Vec<i64> = packets(file)
            .into_iter()
            .filter(|p| p.0 == kind)
            .map(|p| p.1)
            .collect();
        let back = dts.windows(2).filter(|w| w[1] < w[0]).count();
        if let Some(i) = dts.windows(2).position(|w| w[1] < w[0]) {
            eprintln!(
                "{kind} steps back at {i}: {:?}",
                &dts[i.saturating_sub(3)..(i + 4).min(dts.len())]
            );
        }
        assert_eq!(back, 0, "{kind} timestamps went backwards {back} times");
    }
}

fn a_frozen_publisher_is_taken_over_and_the_player_stays() {
    let s = Served::start(&["--listen".into(), "127.0.0.1:0".into()]);
    let url = format!("rtmp://127.0.0.1:{}/live/take", s.plain.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("player.flv");
    let mut player = pull_to(&url, &out, 30, &[]);
    std::thread::sleep(Duration::from_millis(500));
    let old = looped_push(&url, &[]);
    std::thread::sleep(Duration::from_secs(3));
    signal(&old, "-STOP");
    let stopped = Instant::now();
    // An encoder that reconnects: a fresh push every half second.
    let new = loop {
        assert!(stopped.elapsed() < Duration::from_secs(10), "no takeover");
        let mut p = looped_push(&url, &[]);
        if p.wait_timeout(Duration::from_millis(500)).is_none() {
            break p; // still publishing: it took the stream over
        }
    };
    let took = stopped.elapsed();
    eprintln!("takeover: a new publisher got the stream {took:?} after the old one froze");
    assert!(
        took <= Duration::from_secs(4) + Duration::from_millis(500),
        "{took:?}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        player.0.try_wait().unwrap().is_none(),
        "the player stayed connected"
    );
    drop(new);
    drop(old);
    assert!(
        player.wait_timeout(Duration::from_secs(10)).is_some(),
        "player ends"
    );
    assert_forward(&out);
    let dts = video_dts(&out);
    let (at, gap) = largest_step(&dts);
    eprintln!(
        "takeover gap a player sees: {gap} ms between the old publisher's last frame and the new one's first ({} frames before, {} after)",
        at,
        dts.len() - at
    );
    assert!(
        dts.len() - at >= 50,
        "the new publisher's frames reached the player"
    );
    assert!((3000..=6000).contains(&gap), "gap {gap} ms");
}

fn push_reconnects_to_a_restarted_server() {
    push_reconnects_across_a_restart(false);
}

/// SIGTERM: the server asks the push to reconnect (E-RTMP v2) as it shuts
/// down; the push comes back when the server does.
fn push_reconnects_when_the_server_restarts_gracefully() {
    push_reconnects_across_a_restart(true);
}

fn push_reconnects_across_a_restart(graceful: bool) {
    let port = free_port();
    let listen = ["--listen".to_string(), format!("127.0.0.1:{port}")];
    let first = Served::start(&listen);
    let url = format!("rtmp://127.0.0.1:{port}/live/back");
    let push = with_stderr(
        rtmpkit()
            .arg("push")
            .arg(fixture())
            .args([&url, "--reconnect"]),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let mut first = first;
    if graceful {
        signal(&first.proc, "-TERM");
        assert!(
            first.proc.wait_timeout(Duration::from_secs(5)).is_some(),
            "serve stops on SIGTERM"
        );
    }
    drop(first); // killed (or stopped): the push's connection breaks
    std::thread::sleep(Duration::from_millis(300));
    let _second = Served::start(&listen);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("after.flv");
    let mut player = pull_to(&url, &out, 20, &[]);
    let err = ends_after_one_reconnect(push);
    let gap: u64 = err
        .split("last gap ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the summary gives the gap");
    eprintln!(
        "reconnect gap at the client: {gap} ms from the last frame written before the break to the first after"
    );
    assert!(
        player.wait_timeout(Duration::from_secs(15)).is_some(),
        "player ends"
    );
    assert_forward(&out);
    let p = packets(&out);
    let video: Vec<&Packet> = p.iter().filter(|x| x.0 == 'v').collect();
    assert!(
        video.len() >= 25,
        "the restarted server's player got {} frames",
        video.len()
    );
    assert!(video[0].3, "it starts on a keyframe");
}

fn pull_reconnects_and_keeps_its_timeline_forward() {
    let port = free_port();
    let listen = ["--listen".to_string(), format!("127.0.0.1:{port}")];
    let first = Served::start(&listen);
    let url = format!("rtmp://127.0.0.1:{port}/live/keep");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kept.flv");
    let player = with_stderr(rtmpkit().args(["pull", &url, "-o"]).arg(&out).args([
        "--duration",
        "20",
        "--reconnect",
    ]));
    std::thread::sleep(Duration::from_millis(500));
    let before = looped_push(&url, &[]);
    std::thread::sleep(Duration::from_millis(2500));
    drop(first); // the player's connection breaks
    drop(before);
    let _second = Served::start(&listen);
    // A publisher on the restarted server, from timestamp 0 again.
    let r = push_fixture(&url, &[]);
    assert!(r.status.success());
    ends_after_one_reconnect(player);
    assert_forward(&out);
    let dts = video_dts(&out);
    let (at, gap) = largest_step(&dts);
    eprintln!(
        "pull reconnect: {at} frames before the break, {} after, gap {gap} ms",
        dts.len() - at
    );
    assert!(
        at >= 40 && dts.len() - at >= 50,
        "frames from both servers in one file"
    );
}

/// `rtmpkit relay --reconnect` while its destination restarts.
fn relay_reconnects_to_a_restarted_destination() {
    let src = Served::start(&["--listen".into(), "127.0.0.1:0".into()]);
    let port = free_port();
    let listen = ["--listen".to_string(), format!("127.0.0.1:{port}")];
    let first_dst = Served::start(&listen);
    let src_url = format!("rtmp://127.0.0.1:{}/live/r", src.plain.unwrap());
    let dst_url = format!("rtmp://127.0.0.1:{port}/live/r");
    let mut publisher = looped_push(&src_url, &[]);
    std::thread::sleep(Duration::from_millis(800));
    let relay = with_stderr(rtmpkit().args(["relay", &src_url, &dst_url, "--reconnect"]));
    std::thread::sleep(Duration::from_millis(1500));
    drop(first_dst);
    std::thread::sleep(Duration::from_millis(300));
    let _dst = Served::start(&listen);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("relayed.flv");
    let mut player = pull_to(&dst_url, &out, 20, &[]);
    std::thread::sleep(Duration::from_secs(5));
    signal(&publisher, "-TERM"); // the source stream ends, so does the relay
    let _ = publisher.wait_timeout(Duration::from_secs(5));
    ends_after_one_reconnect(relay);
    assert!(player.wait_timeout(Duration::from_secs(10)).is_some());
    assert_forward(&out);
    let frames = video_dts(&out).len();
    eprintln!("the restarted destination's player got {frames} relayed frames");
    assert!(frames >= 25);
}

fn post(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        c,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    text
}

fn post_drain_moves_a_push_to_another_server() {
    let a = Served::start(&[
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--http-listen".into(),
        "127.0.0.1:0".into(),
    ]);
    let b = Served::start(&["--listen".into(), "127.0.0.1:0".into()]);
    let (a_rtmp, a_http, b_rtmp) = (a.plain.unwrap(), a.http.unwrap(), b.plain.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("on-b.flv");
    let mut player = pull_to(&format!("rtmp://127.0.0.1:{b_rtmp}/live/d"), &out, 20, &[]);
    let push = with_stderr(
        rtmpkit()
            .arg("push")
            .arg(fixture())
            .arg(format!("rtmp://127.0.0.1:{a_rtmp}/live/d"))
            .arg("--reconnect"),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let answer = post(
        a_http,
        &format!("/drain?tcUrl=rtmp://127.0.0.1:{b_rtmp}/live"),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    ends_after_one_reconnect(push);
    assert!(player.wait_timeout(Duration::from_secs(15)).is_some());
    assert_forward(&out);
    let frames = video_dts(&out).len();
    eprintln!("the player on the second server got {frames} video frames after the move");
    assert!(frames >= 40);
}

fn main() {
    run_interop(vec![
        interop(
            "a_frozen_publisher_is_taken_over_and_the_player_stays",
            &["ffprobe", "kill"],
            a_frozen_publisher_is_taken_over_and_the_player_stays,
        ),
        interop(
            "push_reconnects_to_a_restarted_server",
            &["ffprobe"],
            push_reconnects_to_a_restarted_server,
        ),
        interop(
            "push_reconnects_when_the_server_restarts_gracefully",
            &["ffprobe", "kill"],
            push_reconnects_when_the_server_restarts_gracefully,
        ),
        interop(
            "pull_reconnects_and_keeps_its_timeline_forward",
            &["ffprobe"],
            pull_reconnects_and_keeps_its_timeline_forward,
        ),
        interop(
            "relay_reconnects_to_a_restarted_destination",
            &["ffprobe", "kill"],
            relay_reconnects_to_a_restarted_destination,
        ),
        interop(
            "post_drain_moves_a_push_to_another_server",
            &["ffprobe"],
            post_drain_moves_a_push_to_another_server,
        ),
    ]);
}
