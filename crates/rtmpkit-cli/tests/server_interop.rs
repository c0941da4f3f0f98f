//! `rtmpkit serve` with real peers: ffmpeg publishes, ffmpeg and rtmpdump
//! play; a player that stops reading; the README quick start.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod common;

use common::*;
use rtmpkit::driver::{Connection, DriverOptions, Flow, Handler};
use rtmpkit_proto::RtmpUrl;
use rtmpkit_proto::session::{ClientConfig, ClientEvent, ClientSession, ClientSide};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `rtmpkit serve` on a free loopback port, with optional extra arguments.
fn serve(extra: &[&str]) -> (Proc, u16) {
    let port = free_port();
    let mut child = rtmpkit()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), format!("listening rtmp 127.0.0.1:{port}"));
    (Proc(child), port)
}

fn url(port: u16, stream: &str) -> String {
    format!("rtmp://127.0.0.1:{port}/live/{stream}")
}

fn ffmpeg_publishes_ffmpeg_and_rtmpdump_play() {
    let (_server, port) = serve(&[]);
    let dir = tempfile::tempdir().unwrap();
    let by_ffmpeg = dir.path().join("ffmpeg.flv");
    let by_rtmpdump = dir.path().join("rtmpdump.flv");
    let mut ffplayer = ffmpeg_player(&url(port, "live1"), &by_ffmpeg);
    let mut dump = Proc(
        Command::new("rtmpdump")
            .args(["-q", "--live", "-m", "3", "-r", &url(port, "live1"), "-o"])
            .arg(&by_rtmpdump)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(800));
    let r = run(Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(fixture())
        .args(["-c", "copy", "-f", "flv", &url(port, "live1")]));
    assert!(r.status.success(), "ffmpeg publishes to rtmpkit serve");
    assert!(
        ffplayer.wait_timeout(Duration::from_secs(30)).is_some(),
        "ffmpeg player ends"
    );
    assert!(
        dump.wait_timeout(Duration::from_secs(30)).is_some(),
        "rtmpdump ends"
    );
    assert_same_media(&fixture(), &by_ffmpeg);
    assert_same_media(&fixture(), &by_rtmpdump);
}

fn player_joining_mid_stream_gets_a_keyframe_first() {
    let (_server, port) = serve(&[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("late.flv");
    let _publisher = Proc(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
            .arg(fixture())
            .args(["-c", "copy", "-f", "flv", &url(port, "mid")])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(2500));
    let mut player = ffmpeg_player(&url(port, "mid"), &out);
    assert!(player.wait_timeout(Duration::from_secs(30)).is_some());
    let p = packets(&out);
    let first_video = p.iter().find(|x| x.0 == 'v').expect("video");
    assert!(
        first_video.3,
        "the first video packet is a keyframe: {first_video:?}"
    );
    let n = p.iter().filter(|x| x.0 == 'v').count();
    assert!(
        n > 40 && n < 125,
        "joined mid-stream: {n} of 125 video frames"
    );
}

/// A player that stops at Play.Start and leaves its connection unread.
struct StopAtStart;

impl Handler<tokio::net::TcpStream, ClientSide> for StopAtStart {
    type Signal = ();
    type Stop = ();

    async fn on_events(
        &mut self,
        conn: &mut Connection<tokio::net::TcpStream, ClientSide>,
    ) -> Result<Flow<()>, rtmpkit::Error> {
        while let Some(ev) = conn.session_mut().poll_event() {
            if ev == ClientEvent::PlayStarted {
                return Ok(Flow::Stop(()));
            }
        }
        Ok(Flow::Continue)
    }
}

/// A stalled player: handshake + connect + play on the library's driver
/// over a socket with a tiny receive buffer, then never read again. The
/// runtime and the connection are kept (not driven) to keep the socket open.
fn stalled_player(
    port: u16,
    stream: &str,
) -> (
    tokio::runtime::Runtime,
    Connection<tokio::net::TcpStream, ClientSide>,
) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    s.set_nonblocking(true).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let target = url(port, stream);
    let conn = rt.block_on(async {
        let tcp = tokio::net::TcpStream::from_std(s.into()).unwrap();
        let u = RtmpUrl::parse(&target).unwrap();
        let session = ClientSession::new(ClientConfig::play(&u), std::time::Instant::now(), 3);
        let mut conn = Connection::new(tcp, session, &target, DriverOptions::default());
        tokio::time::timeout(Duration::from_secs(10), conn.drive(&mut StopAtStart))
            .await
            .expect("play started in time")
            .expect("play started");
        conn
    });
    (rt, conn)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn a_stalled_player_costs_bounded_memory_and_a_healthy_one_gets_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    // 12 s of 20 Mbit/s video: 30 MB through the server, far more than a
    // player's queue bound (1 MiB here) and the GOP cache.
    let input = dir.path().join("heavy.flv");
    let r = run(Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=25",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            "12",
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-b:v",
            "20M",
            "-minrate",
            "20M",
            "-maxrate",
            "20M",
        ])
        .args([
            "-bufsize", "4M", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
            "-f", "flv",
        ])
        .arg(&input));
    assert!(r.status.success());
    let size = std::fs::metadata(&input).unwrap().len();
    let config = dir.path().join("rtmpkit.toml");
    std::fs::write(
        &config,
        "player_queue_soft_bytes = 524288\nplayer_queue_hard_bytes = 1048576\nstuck_timeout_secs = 120\n",
    )
    .unwrap();
    let (server, port) = serve(&["--config", config.to_str().unwrap()]);
    let pid = server.0.id();
    let _stalled = stalled_player(port, "heavy");
    let healthy_out = dir.path().join("healthy.flv");
    let mut healthy = Proc(
        rtmpkit()
            .args(["-q", "pull", "-o"])
            .arg(&healthy_out)
            .arg(url(port, "heavy"))
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let base = rss_kib(pid);
    let mut push = Proc(
        rtmpkit()
            .args(["-q", "push"])
            .arg(&input)
            .arg(url(port, "heavy"))
            .spawn()
            .unwrap(),
    );
    let t = Instant::now();
    let mut peak = base;
    while push.0.try_wait().unwrap().is_none() {
        assert!(t.elapsed() < Duration::from_secs(60), "push takes too long");
        peak = peak.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        healthy
            .wait_timeout(Duration::from_secs(20))
            .unwrap()
            .success()
    );
    eprintln!(
        "{} MB pushed; server RSS {} KiB before, {} KiB peak (+{} KiB) with a stalled player",
        size / 1_000_000,
        base,
        peak,
        peak - base
    );
    assert!(size > 20_000_000, "enough data to show a bound: {size}");
    assert!(
        peak - base < 16 * 1024,
        "server memory grew by {} KiB",
        peak - base
    );
    assert_same_media(&input, &healthy_out);
}

fn readme_quick_start_works_as_written() {
    // The README's commands use the default port 1935 (a need of this test).
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    for cmd in [
        "rtmpkit serve",
        "rtmpkit push tests/fixtures/sample-5s.flv rtmp://127.0.0.1/live/test",
        "rtmpkit pull rtmp://127.0.0.1/live/test -o out.flv",
        "rtmpkit probe rtmp://127.0.0.1/live/test",
    ] {
        assert!(readme.contains(cmd), "README shows `{cmd}`");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let mut server = Proc(
        rtmpkit()
            .arg("serve")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "listening rtmp 0.0.0.0:1935");
    let mut pull = Proc(
        rtmpkit()
            .args(["pull", "rtmp://127.0.0.1/live/test", "-o"])
            .arg(dir.path().join("out.flv"))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let mut probe = Proc(
        rtmpkit()
            .args(["probe", "rtmp://127.0.0.1/live/test"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let push = run(rtmpkit().current_dir(&root).args([
        "push",
        "tests/fixtures/sample-5s.flv",
        "rtmp://127.0.0.1/live/test",
    ]));
    assert!(push.status.success());
    assert!(String::from_utf8_lossy(&push.stderr).starts_with("push: sent 346 tags"));
    assert!(
        pull.wait_timeout(Duration::from_secs(10))
            .unwrap()
            .success()
    );
    let mut err = String::new();
    pull.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("pull: received 127 video, 218 audio, 1 metadata messages"),
        "{err}"
    );
    assert!(
        probe
            .wait_timeout(Duration::from_secs(10))
            .unwrap()
            .success()
    );
    let mut out = String::new();
    probe
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    eprintln!("{out}");
    assert!(out.contains("video: h264 Main 320x240"), "{out}");
    assert!(out.contains("audio: aac LC 44100 Hz stereo"), "{out}");
    // Clean stop on SIGTERM.
    let _ = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status();
    let st = server
        .wait_timeout(Duration::from_secs(5))
        .expect("serve stops on SIGTERM");
    assert!(st.success(), "exit 0 on SIGTERM: {st}");
}

fn relay_command_copies_a_stream() {
    let (_server, port) = serve(&[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("relayed.flv");
    let mut pull = Proc(
        rtmpkit()
            .args(["-q", "pull", "-o"])
            .arg(&out)
            .arg(url(port, "copy"))
            .spawn()
            .unwrap(),
    );
    let mut relay = Proc(
        rtmpkit()
            .args(["relay", &url(port, "orig"), &url(port, "copy")])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let r = run(rtmpkit()
        .args(["push", "--no-pace"])
        .arg(fixture())
        .arg(url(port, "orig")));
    assert!(r.status.success());
    assert!(
        relay
            .wait_timeout(Duration::from_secs(10))
            .unwrap()
            .success()
    );
    assert!(
        pull.wait_timeout(Duration::from_secs(10))
            .unwrap()
            .success()
    );
    assert_same_media(&fixture(), &out);
}

fn main() {
    run_interop(vec![
        interop(
            "ffmpeg_publishes_ffmpeg_and_rtmpdump_play",
            &["ffmpeg", "ffprobe", "rtmpdump"],
            ffmpeg_publishes_ffmpeg_and_rtmpdump_play,
        ),
        interop(
            "player_joining_mid_stream_gets_a_keyframe_first",
            &["ffmpeg", "ffprobe"],
            player_joining_mid_stream_gets_a_keyframe_first,
        ),
        interop(
            "a_stalled_player_costs_bounded_memory_and_a_healthy_one_gets_every_frame",
            &["ffmpeg", "ffprobe", "/proc/self/status"],
            a_stalled_player_costs_bounded_memory_and_a_healthy_one_gets_every_frame,
        ),
        interop(
            "readme_quick_start_works_as_written",
            &[FREE_PORT_1935],
            readme_quick_start_works_as_written,
        ),
        interop(
            "relay_command_copies_a_stream",
            &["ffprobe"],
            relay_command_copies_a_stream,
        ),
    ]);
}
