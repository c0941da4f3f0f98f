//! Raw RTMP peers for hostile and fault tests: a handshake, chunked
//! messages and a publisher made by hand, with the protocol core.
#![allow(dead_code, clippy::unwrap_used)]

use super::{Proc, Served, fixture, rtmpkit};
use rtmpkit_proto::amf0::Amf0Object;
use rtmpkit_proto::flv::FlvReader;
use rtmpkit_proto::handshake::{ClientHandshake, HandshakeKind};
use rtmpkit_proto::message::{Command, Message};
use rtmpkit_proto::{ChunkEncoder, ChunkStreamId, MessageStreamId, Timestamp};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Setup timeout of the servers here (config file), so slow clients end soon.
pub const SETUP_SECS: u64 = 2;

/// Connects and completes a valid handshake.
pub fn handshaken(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    handshake(&mut s);
    s
}

/// Connects to 127.0.0.1:`port` from the loopback address `local`
/// (127.0.0.2, ...) and completes a valid handshake.
pub fn handshaken_from(local: &str, port: u16) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: std::net::SocketAddr = format!("{local}:0").parse().unwrap();
    sock.bind(&from.into()).unwrap();
    let to: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    sock.connect(&to.into()).unwrap();
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    handshake(&mut s);
    s
}

/// Sends `connect` to `app`, `createStream` and `request` (a publish or
/// play), each after the server's answer; what the server answered, as
/// text (status codes and descriptions are readable in it).
pub fn ask(s: &mut TcpStream, app: &str, request: Command) -> String {
    String::from_utf8_lossy(&ask_bytes(s, app, request)).into_owned()
}

/// [`ask`], with the bytes the server sent until it paused for 500 ms.
pub fn ask_bytes(s: &mut TcpStream, app: &str, request: Command) -> Vec<u8> {
    let mut enc = ChunkEncoder::new();
    let setup = [
        chunked(&mut enc, 3, 0, &connect_msg(app)),
        chunked(
            &mut enc,
            3,
            0,
            &Message::command(Command::create_stream(2.0)),
        ),
        chunked(&mut enc, 3, 1, &Message::command(request)),
    ];
    for step in setup {
        if s.write_all(&step).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut all = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = s.read(&mut buf) {
        all.extend_from_slice(&buf[..n]);
    }
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    all
}

/// Completes a valid client handshake on a connected socket.
pub fn handshake(s: &mut TcpStream) {
    let mut hs = ClientHandshake::new(HandshakeKind::Simple, 0, 1);
    s.write_all(&hs.take_output()).unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
    s.read_exact(&mut s0s1s2).unwrap();
    hs.handle_input(&s0s1s2, 0).unwrap();
    s.write_all(&hs.take_output()).unwrap();
}

pub fn chunked(enc: &mut ChunkEncoder, csid: u32, stream: u32, m: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    enc.encode(
        ChunkStreamId(csid),
        Timestamp(0),
        m.type_id(),
        MessageStreamId(stream),
        &m.payload(),
        &mut out,
    )
    .unwrap();
    out
}

pub fn connect_msg(app: &str) -> Message {
    Message::command(Command::connect(
        Amf0Object::new()
            .with("app", app)
            .with("tcUrl", format!("rtmp://127.0.0.1/{app}")),
    ))
}

/// A client that connected and published live/NAME properly, each step
/// after the server's answer.
pub fn publishing(port: u16, name: &str) -> (TcpStream, ChunkEncoder) {
    let mut s = handshaken(port);
    let mut enc = ChunkEncoder::new();
    let setup = [
        chunked(&mut enc, 3, 0, &connect_msg("live")),
        chunked(
            &mut enc,
            3,
            0,
            &Message::command(Command::create_stream(2.0)),
        ),
        chunked(
            &mut enc,
            3,
            1,
            &Message::command(Command::publish(3.0, name, "live")),
        ),
    ];
    for step in setup {
        s.write_all(&step).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut buf = vec![0u8; 64 * 1024];
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let n = s.read(&mut buf).unwrap();
    let answers = String::from_utf8_lossy(&buf[..n]);
    assert!(
        answers.contains("NetStream.Publish.Start"),
        "publish was not accepted"
    );
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    (s, enc)
}

/// Audio + video tags of an FLV file.
pub fn av_tags(file: &Path) -> usize {
    let data = std::fs::read(file).unwrap_or_default();
    let mut r = FlvReader::new();
    r.push(&data);
    let mut n = 0;
    while let Ok(Some(t)) = r.next_tag() {
        n += usize::from(t.tag_type == 8 || t.tag_type == 9);
    }
    n
}

pub fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// A server, a player waiting for live/s, and the fixture published to it
/// in real time; `attack` runs while it plays. Then the server must have
/// logged `cause` for the connection it closed (or the message it skipped), the player must have every
/// frame, and the server's RSS stays under `max_rss_mib`.
pub fn with_healthy_player(name: &str, cause: &str, max_rss_mib: u64, attack: impl FnOnce(u16)) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(
        &config,
        format!("setup_timeout_secs = {SETUP_SECS}\nidle_timeout_secs = {SETUP_SECS}\n"),
    )
    .unwrap();
    // -vv: what a session skips is a debug line.
    let served = Served::start(&[
        "-vv".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--config".into(),
        config.display().to_string(),
    ]);
    let port = served.plain.unwrap();
    let pid = served.proc.0.id();
    let healthy = Healthy::start(port, dir.path());
    let before = rss_kib(pid);
    let t = Instant::now();
    attack(port);
    let after = rss_kib(pid);
    eprintln!(
        "{name}: closed after {:.1} s; server RSS {before} KiB before, {after} KiB after",
        t.elapsed().as_secs_f64()
    );
    assert!(after < max_rss_mib * 1024, "{name}: server RSS {after} KiB");
    assert!(
        served.wait_line(cause, Duration::from_secs(5)),
        "{name}: the server did not log \"{cause}\""
    );
    healthy.gets_every_frame(name);
    assert!(served.proc.0.id() == pid);
}

/// A client that connected and asked to play live/NAME, each step after
/// the server's answer.
pub fn playing(s: &mut TcpStream, name: &str) {
    let mut enc = ChunkEncoder::new();
    let setup = [
        chunked(&mut enc, 3, 0, &connect_msg("live")),
        chunked(
            &mut enc,
            3,
            0,
            &Message::command(Command::create_stream(2.0)),
        ),
        chunked(
            &mut enc,
            3,
            1,
            &Message::command(Command::play(3.0, name, None)),
        ),
    ];
    for step in setup {
        s.write_all(&step).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Closes with a reset (SO_LINGER 0) instead of a FIN.
pub fn reset(s: TcpStream) {
    let sock = socket2::Socket::from(s);
    sock.set_linger(Some(Duration::ZERO)).unwrap();
    drop(sock);
}

/// A player of live/s (pull -o) started first, then the fixture published
/// to it once, in real time.
pub struct Healthy {
    player: Proc,
    pusher: Proc,
    out: std::path::PathBuf,
}

impl Healthy {
    pub fn start(port: u16, dir: &Path) -> Healthy {
        let url = format!("rtmp://127.0.0.1:{port}/live/s");
        let out = dir.join("healthy.flv");
        let player = Proc(
            rtmpkit()
                .args(["-q", "pull", &url, "-o"])
                .arg(&out)
                .args(["--duration", "40"])
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        );
        std::thread::sleep(Duration::from_millis(300));
        let pusher = Proc(
            rtmpkit()
                .args(["-q", "push"])
                .arg(fixture())
                .arg(&url)
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        );
        Healthy {
            player,
            pusher,
            out,
        }
    }

    /// Waits for the publisher and the player to end; the player must
    /// have every audio and video frame of the fixture.
    pub fn gets_every_frame(mut self, name: &str) {
        assert!(
            self.pusher
                .wait_timeout(Duration::from_secs(30))
                .unwrap()
                .success()
        );
        assert!(
            self.player
                .wait_timeout(Duration::from_secs(10))
                .unwrap()
                .success()
        );
        assert_eq!(
            av_tags(&self.out),
            av_tags(&fixture()),
            "{name}: the healthy player lost frames"
        );
    }
}
