//! 10,000 idle connections: the server holds them with bounded memory,
//! closes each at the setup timeout, and a healthy player of a live stream
//! gets every frame meanwhile.
#![allow(clippy::unwrap_used)]

mod common;

use common::Served;
use common::raw::{Healthy, rss_kib};
use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

const IDLE: usize = 10_000;

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn ten_thousand_idle_connections_are_held_then_closed_and_hurt_nobody() {
    let limit = rlimit::increase_nofile_limit(IDLE as u64 + 1000).unwrap();
    assert!(
        limit >= IDLE as u64 + 500,
        "this test needs {} open files (ulimit -n); the hard limit allows {limit}",
        IDLE + 500
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "setup_timeout_secs = 8\nmax_connections = 12000\n").unwrap();
    let served = Served::start(&[
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--config".into(),
        config.display().to_string(),
    ]);
    let port = served.plain.unwrap();
    let pid = served.proc.0.id();
    let healthy = Healthy::start(port, dir.path());
    let (rss0, fds0) = (rss_kib(pid), open_fds(pid));
    let t = Instant::now();
    let mut idle: Vec<TcpStream> = Vec::with_capacity(IDLE);
    while idle.len() < IDLE {
        idle.push(TcpStream::connect(("127.0.0.1", port)).unwrap());
    }
    let opened = t.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let (rss1, fds1) = (rss_kib(pid), open_fds(pid));
    eprintln!(
        "{IDLE} idle connections opened in {:.1} s; server RSS {rss0} -> {rss1} KiB ({:.2} KiB each), fds {fds0} -> {fds1}",
        opened.as_secs_f64(),
        (rss1 - rss0) as f64 / IDLE as f64
    );
    assert!(
        fds1 >= fds0 + IDLE * 9 / 10,
        "the server did not take the connections"
    );
    assert!(
        rss1 < rss0 + 100 * 1024,
        "idle connections cost {} KiB",
        rss1 - rss0
    );
    // Each is closed at the setup timeout (8 s).
    let mut buf = [0u8; 16];
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let r = s.read(&mut buf);
        assert!(
            matches!(r, Ok(0) | Err(_)),
            "an idle connection was kept: {r:?}"
        );
    }
    eprintln!(
        "all closed {:.1} s after the first was opened",
        t.elapsed().as_secs_f64()
    );
    drop(idle);
    healthy.gets_every_frame("10,000 idle connections");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        open_fds(pid) <= fds0 + 2,
        "fds after: {} (before {fds0})",
        open_fds(pid)
    );
}
