//! Cluster mode with real processes: three `rtmpkit serve` nodes on
//! loopback ports sharing one `redis-server`, publishers from ffmpeg and
//! `rtmpkit push`, players from `rtmpkit pull`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` on a loopback port, with nothing saved to disk.
struct Redis {
    port: u16,
    proc: Option<Proc>,
}

impl Redis {
    fn start(port: u16) -> Redis {
        let mut r = Redis { port, proc: None };
        r.restart();
        r
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.proc = Some(Proc(child));
        wait_for_port(self.port);
    }

    fn stop(&mut self) {
        self.proc = None; // killed by pid and reaped
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// A cluster node: its RTMP port is chosen first, to be advertised.
struct Node {
    served: Served,
    port: u16,
}

impl Node {
    fn start(redis: &Redis) -> Node {
        let port = free_port();
        let served = Served::start(&[
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--http-listen".into(),
            "127.0.0.1:0".into(),
            "--cluster".into(),
            redis.url(),
            "--advertise".into(),
            format!("rtmp://127.0.0.1:{port}"),
        ]);
        Node { served, port }
    }

    fn url(&self, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{stream}", self.port)
    }

    fn get(&self, path: &str) -> (u16, String) {
        http(self.served.http.unwrap(), "GET", path)
    }

    fn kill(self) {
        // Proc's drop sends SIGKILL and reaps.
        drop(self.served);
    }
}

fn ffmpeg_publish(url: &str) -> Proc {
    Proc(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
            .arg(fixture())
            .args(["-c", "copy", "-f", "flv", url])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn looped_push(url: &str) -> Proc {
    Proc(
        rtmpkit()
            .args(["-q", "push", "--loop"])
            .arg(fixture())
            .arg(url)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Publishes like an encoder that retries: `push --loop` again every
/// 300 ms while the server refuses, until one stays up for 2 s.
fn push_until_accepted(url: &str, limit: Duration) -> (Proc, Duration) {
    let t = Instant::now();
    loop {
        assert!(
            t.elapsed() < limit,
            "no publish of {url} accepted in {limit:?}"
        );
        let mut p = looped_push(url);
        if p.wait_timeout(Duration::from_secs(2)).is_none() {
            return (p, t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Waits until `file` has grown by `by` bytes; how long that took.
fn grows(file: &Path, by: u64, limit: Duration) -> Option<Duration> {
    let (t, from) = (Instant::now(), file_len(file));
    while t.elapsed() < limit {
        if file_len(file) >= from + by {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// ffmpeg publishes to A; players on B and C, started before it, get
/// every frame; a second publisher of the stream on C is refused.
fn players_on_other_nodes_get_every_frame() {
    let redis = Redis::start(free_port());
    let (a, b, c) = (
        Node::start(&redis),
        Node::start(&redis),
        Node::start(&redis),
    );
    let dir = tempfile::tempdir().unwrap();
    let (out_b, out_c) = (dir.path().join("b.flv"), dir.path().join("c.flv"));
    let mut pb = pull_to(&b.url("cam"), &out_b, 30, &["-q"]);
    let mut pc = pull_to(&c.url("cam"), &out_c, 30, &["-q"]);
    std::thread::sleep(Duration::from_millis(500));
    let mut publisher = ffmpeg_publish(&a.url("cam"));
    std::thread::sleep(Duration::from_secs(2));
    let (_, stats) = c.get("/stats");
    assert!(
        stats.contains(&format!(r#""source":"{}""#, a.url("cam"))),
        "C pulls from A: {stats}"
    );
    let second = run(Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(fixture())
        .args(["-c", "copy", "-t", "2", "-f", "flv"])
        .arg(c.url("cam"))
        .stdin(Stdio::null()));
    assert!(
        !second.status.success(),
        "the second publisher on C was accepted"
    );
    assert!(
        c.served
            .wait_line("publish refused: published on", Duration::from_secs(1))
    );
    assert!(
        publisher
            .wait_timeout(Duration::from_secs(20))
            .unwrap()
            .success()
    );
    for (p, out) in [(&mut pb, &out_b), (&mut pc, &out_c)] {
        assert!(p.wait_timeout(Duration::from_secs(15)).unwrap().success());
        assert_same_media(&fixture(), out);
    }
    let (_, metrics) = c.get("/metrics");
    assert!(
        metrics.contains(r#"rtmpkit_pulls_total{kind="cluster"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"rtmpkit_failures_total{stage="publish",cause="claimed_elsewhere"} 1"#),
        "{metrics}"
    );
}

/// A dies (SIGKILL), its publisher reconnects to B; the player on C gets
/// the stream again within the claim's TTL plus a few seconds, without
/// reconnecting.
fn owner_killed_and_publisher_moved() {
    let redis = Redis::start(free_port());
    let (a, b, c) = (
        Node::start(&redis),
        Node::start(&redis),
        Node::start(&redis),
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.flv");
    let _publisher = looped_push(&a.url("cam"));
    std::thread::sleep(Duration::from_millis(500));
    let mut player = pull_to(&c.url("cam"), &out, 40, &["-q"]);
    assert!(
        grows(&out, 100_000, Duration::from_secs(8)).is_some(),
        "C plays"
    );
    a.kill();
    let killed = Instant::now();
    let (_moved, accepted_after) = push_until_accepted(&b.url("cam"), Duration::from_secs(15));
    eprintln!("publish on B accepted {accepted_after:?} after A was killed");
    let back = grows(&out, 100_000, Duration::from_secs(12));
    let since_kill = killed.elapsed();
    eprintln!("player on C growing again, {since_kill:?} after the kill");
    assert!(back.is_some(), "the player on C got nothing after the move");
    // TTL 5 s (the silent publisher's claim is taken over after 3 s) + a few.
    assert!(since_kill < Duration::from_secs(12), "{since_kill:?}");
    assert!(
        player.0.try_wait().unwrap().is_none(),
        "the player stayed connected"
    );
    let (_, stats) = c.get("/stats");
    assert!(
        stats.contains(&format!(r#""source":"{}""#, b.url("cam"))),
        "C pulls from B now: {stats}"
    );
    let (_, stats) = b.get("/stats");
    assert!(stats.contains(r#""owned":["live/cam"]"#), "{stats}");
}

/// Redis stops mid-stream: players on A keep playing, /healthz says so;
/// Redis comes back (empty), the claim is made again and a new player
/// on C finds the stream.
fn redis_lost_and_back() {
    let mut redis = Redis::start(free_port());
    let (a, c) = (Node::start(&redis), Node::start(&redis));
    // An idle node knows Redis answers too.
    let t = Instant::now();
    while c.get("/healthz").0 != 200 {
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "idle C is not healthy"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let dir = tempfile::tempdir().unwrap();
    let out_a = dir.path().join("a.flv");
    let _publisher = looped_push(&a.url("cam"));
    std::thread::sleep(Duration::from_millis(500));
    let mut player = pull_to(&a.url("cam"), &out_a, 14, &["-q"]);
    std::thread::sleep(Duration::from_secs(2));
    redis.stop();
    assert!(a.served.wait_line("unreachable", Duration::from_secs(5)));
    assert_eq!(a.get("/healthz").0, 503);
    assert!(
        grows(&out_a, 100_000, Duration::from_secs(4)).is_some(),
        "the player on A stopped while Redis was away"
    );
    redis.restart();
    let t = Instant::now();
    while a.get("/healthz").0 != 200 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "A never reached Redis again"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let out_c = dir.path().join("c.flv");
    let mut late = pull_to(&c.url("cam"), &out_c, 4, &["-q"]);
    assert!(
        late.wait_timeout(Duration::from_secs(15))
            .unwrap()
            .success()
    );
    let (video, audio) = counts(&out_c);
    assert!(
        video > 50 && audio > 50,
        "the new player on C got {video} video, {audio} audio"
    );
    assert!(
        player
            .wait_timeout(Duration::from_secs(15))
            .unwrap()
            .success()
    );
    // Continuous on A: no gap of a second between video frames.
    let dts: Vec<i64> = packets(&out_a)
        .into_iter()
        .filter(|p| p.0 == 'v')
        .map(|p| p.1)
        .collect();
    let gap = dts.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        dts.len() > 250 && gap < 500,
        "{} frames, largest gap {gap} ms",
        dts.len()
    );
}

fn main() {
    let needs = &["redis-server", "ffmpeg", "ffprobe"];
    run_interop(vec![
        interop(
            "cluster_players_on_other_nodes_get_every_frame",
            needs,
            players_on_other_nodes_get_every_frame,
        ),
        interop(
            "cluster_owner_killed_and_publisher_moved",
            needs,
            owner_killed_and_publisher_moved,
        ),
        interop("cluster_redis_lost_and_back", needs, redis_lost_and_back),
    ]);
}
