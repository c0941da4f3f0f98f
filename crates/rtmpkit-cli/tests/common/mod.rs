//! Helpers shared by the interop test files: real peers, processes stopped
//! by pid, ffprobe.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // not every file uses every helper

use libtest_mimic::{Arguments, Trial};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod hooks;
mod nginx;
#[allow(unused_imports)] // as with dead_code: not every test file starts nginx
pub use nginx::{NGINX_MODULE, Nginx, STREAM_MODULE};

pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A need that is not a program: the README's default port must be free.
pub const FREE_PORT_1935: &str = "free port 1935";

/// A need: the static FFmpeg 9 of PyPI's imageio-ffmpeg, found through
/// `$RTMPKIT_FFMPEG9` (`.ci/run` sets it).
pub const FFMPEG9: &str = "FFmpeg 9 ($RTMPKIT_FFMPEG9)";

pub fn ffmpeg9() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os("RTMPKIT_FFMPEG9")?);
    p.is_file().then_some(p)
}

/// What of `needs` is missing here: programs on the PATH, files (paths
/// starting with `/`), nginx's rtmp module, a free port 1935.
fn missing(needs: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = needs
        .iter()
        .filter(|n| match **n {
            FREE_PORT_1935 => std::net::TcpListener::bind("127.0.0.1:1935").is_err(),
            FFMPEG9 => ffmpeg9().is_none(),
            p if p.starts_with('/') => !Path::new(p).exists(),
            cmd => !have(cmd),
        })
        .map(|n| n.to_string())
        .collect();
    if needs.contains(&"nginx") && !Path::new(NGINX_MODULE).exists() {
        v.push("libnginx-mod-rtmp".into());
    }
    v
}

/// One interop test. Where a peer is missing it is reported as ignored,
/// with the reason in front of its name, so the summary counts it; with
/// `CI=true` it runs and fails instead.
pub fn interop(name: &str, needs: &[&str], test: fn()) -> Trial {
    let missing = missing(needs);
    let ci = std::env::var("CI").as_deref() == Ok("true");
    let trial = Trial::test(name, move || {
        if !missing.is_empty() {
            return Err(format!(
                "interop peers required in CI: missing {} (.ci/run installs them all)",
                missing.join(", ")
            )
            .into());
        }
        test();
        Ok(())
    });
    match trial_kind(needs) {
        Some(kind) if !ci => trial.with_ignored_flag(true).with_kind(kind),
        _ => trial,
    }
}

fn trial_kind(needs: &[&str]) -> Option<String> {
    let m = missing(needs);
    (!m.is_empty()).then(|| format!("SKIPPED: missing {}", m.join(", ")))
}

/// Runs the trials one at a time (they time real-time media on a 2-core
/// machine), and says how many were skipped for a missing peer.
pub fn run_interop(trials: Vec<Trial>) {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let skipped = trials.iter().filter(|t| t.has_ignored_flag()).count();
    let conclusion = libtest_mimic::run(&args, trials);
    if skipped > 0 {
        eprintln!("SKIPPED: {skipped} interop tests, for missing peers (listed above as ignored)");
    }
    conclusion.exit();
}

pub fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sample-5s.flv")
}

pub fn rtmpkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rtmpkit"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_for_port(port: u16) {
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "port {port} never opened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process that is stopped (by pid) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let t = Instant::now();
        while t.elapsed() < limit {
            if let Ok(Some(s)) = self.0.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

/// (kind 'v'/'a', dts ms, size, keyframe) of one packet.
pub type Packet = (char, i64, u64, bool);
/// (dts ms from the start of the file, size, keyframe) of one stream's packets.
pub type Track = Vec<(i64, u64, bool)>;

/// Every packet of a file, via ffprobe.
pub fn packets(file: &Path) -> Vec<Packet> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=codec_type,dts_time,size,flags",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let kind = if f[0] == "video" { 'v' } else { 'a' };
            let dts = (f[1].parse::<f64>().unwrap_or(0.0) * 1000.0).round() as i64;
            (kind, dts, f[2].parse().unwrap(), f[3].starts_with('K'))
        })
        .collect()
}

/// Per stream kind: sizes, keyframe flags and timestamps relative to the
/// first packet of the file.
pub fn summary(p: &[Packet]) -> Vec<(char, Track)> {
    let base = p.iter().map(|x| x.1).min().unwrap_or(0);
    ['v', 'a']
        .iter()
        .map(|&k| {
            (
                k,
                p.iter()
                    .filter(|x| x.0 == k)
                    .map(|x| (x.1 - base, x.2, x.3))
                    .collect(),
            )
        })
        .collect()
}

pub fn assert_same_media(input: &Path, output: &Path) {
    let a = summary(&packets(input));
    let b = summary(&packets(output));
    for ((k, x), (_, y)) in a.iter().zip(b.iter()) {
        assert_eq!(
            x.len(),
            y.len(),
            "{k} packet count: in {} out {}",
            x.len(),
            y.len()
        );
        assert_eq!(x, y, "{k} packets differ");
    }
    eprintln!(
        "same media: {} video, {} audio packets, same sizes, keyframes and timestamps",
        a[0].1.len(),
        a[1].1.len()
    );
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    eprintln!(
        "{:?} -> {}\n{}",
        cmd,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Debian's ffmpeg as a player, writing what it gets to `out`.
pub fn ffmpeg_player(url: &str, out: &Path) -> Proc {
    ffmpeg_reader(Command::new("ffmpeg"), &[], &[], url, out)
}

/// FFmpeg 9 as a player that announces E-RTMP (`-rtmp_enhanced_codecs`,
/// sent as `fourCcList`), writing every track it gets to `out`.
pub fn ffmpeg9_player(url: &str, out: &Path, codecs: &str) -> Proc {
    let ffmpeg9 = Command::new(ffmpeg9().expect("FFmpeg 9"));
    let input = ["-rtmp_enhanced_codecs", codecs];
    ffmpeg_reader(ffmpeg9, &input, &["-map", "0"], url, out)
}

/// `ffmpeg INPUT_OPTIONS -i URL OUTPUT_OPTIONS -c copy -f flv OUT`,
/// running. ffmpeg does not stop when the publisher leaves: the read
/// timeout ends it.
fn ffmpeg_reader(
    mut ffmpeg: Command,
    input: &[&str],
    output: &[&str],
    url: &str,
    out: &Path,
) -> Proc {
    Proc(
        ffmpeg
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-rw_timeout",
                "3000000",
            ])
            .args(input)
            .args(["-i", url])
            .args(output)
            .args(["-c", "copy", "-f", "flv", "-y"])
            .arg(out)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

pub mod pki;
pub mod raw;
pub mod web;

/// A running `rtmpkit serve`: its ports, and its stdout / stderr lines as
/// they come (read by threads, so the server never writes to a closed pipe).
pub struct Served {
    pub proc: Proc,
    pub plain: Option<u16>,
    pub tls: Option<u16>,
    pub http: Option<u16>,
    out: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    err: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

fn collect_lines(
    r: impl std::io::Read + Send + 'static,
) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    use std::io::BufRead;
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            eprintln!("  serve| {line}");
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

impl Served {
    /// Starts `rtmpkit serve ARGS` and waits for its "listening" lines.
    pub fn start(args: &[String]) -> Served {
        Served::start_with(rtmpkit(), args)
    }

    /// `rtmpkit serve` on loopback ports with its HTTP side behind the
    /// token `t0ken` (what [`http`] sends), then `args`.
    pub fn with_api(args: &[String]) -> Served {
        let mut all: Vec<String> = [
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--http-token",
            "t0ken",
        ]
        .map(String::from)
        .to_vec();
        all.extend_from_slice(args);
        Served::start(&all)
    }

    /// `rtmpkit serve ARGS` with at most `nofile` open file descriptors.
    pub fn start_limited(nofile: u32, args: &[String]) -> Served {
        let mut sh = Command::new("sh");
        sh.args([
            "-c",
            &format!("ulimit -n {nofile} && exec \"$0\" \"$@\""),
            env!("CARGO_BIN_EXE_rtmpkit"),
        ]);
        Served::start_with(sh, args)
    }

    fn start_with(mut cmd: Command, args: &[String]) -> Served {
        let mut child = cmd
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let out = collect_lines(child.stdout.take().unwrap());
        let err = collect_lines(child.stderr.take().unwrap());
        let want = ["--listen", "--tls-listen", "--http-listen"]
            .iter()
            .filter(|f| args.iter().any(|a| a == *f))
            .count()
            - usize::from(
                args.windows(2)
                    .any(|w| w[0] == "--listen" && w[1] == "none"),
            );
        let mut s = Served {
            proc: Proc(child),
            plain: None,
            tls: None,
            http: None,
            out,
            err,
        };
        let t = Instant::now();
        while s.out.lock().unwrap().len() < want {
            assert!(t.elapsed() < Duration::from_secs(10), "serve did not start");
            assert!(
                s.proc.0.try_wait().unwrap().is_none(),
                "serve exited: {:?}",
                s.err.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let port = |l: &str| {
            l.rsplit(':')
                .next()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .ok()
        };
        for l in s.out.lock().unwrap().iter() {
            if let Some(r) = l.strip_prefix("listening rtmps ") {
                s.tls = port(r);
            } else if let Some(r) = l.strip_prefix("listening rtmp ") {
                s.plain = port(r);
            } else if let Some(r) = l.strip_prefix("listening http ") {
                s.http = port(r);
            }
        }
        s
    }

    /// Every stdout and stderr line so far.
    pub fn lines(&self) -> Vec<String> {
        let mut v = self.out.lock().unwrap().clone();
        v.extend(self.err.lock().unwrap().iter().cloned());
        v
    }

    /// How many stdout and stderr lines so far contain `text`.
    pub fn count_lines(&self, text: &str) -> usize {
        let n = |v: &std::sync::Arc<std::sync::Mutex<Vec<String>>>| {
            v.lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains(text))
                .count()
        };
        n(&self.out) + n(&self.err)
    }

    /// Waits up to `limit` for a stdout or stderr line containing `text`.
    pub fn wait_line(&self, text: &str, limit: Duration) -> bool {
        let t = Instant::now();
        while t.elapsed() < limit {
            let seen = |v: &std::sync::Arc<std::sync::Mutex<Vec<String>>>| {
                v.lock().unwrap().iter().any(|l| l.contains(text))
            };
            if seen(&self.out) || seen(&self.err) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port` (with the bearer token
/// `t0ken`); the status and the body.
pub fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0ken\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    (status, text.split_once("\r\n\r\n").unwrap().1.to_owned())
}

/// `rtmpkit push --loop` of the fixture to `url`, running.
pub fn push_looping(url: &str) -> Proc {
    Proc(
        rtmpkit()
            .args(["-q", "push", "--loop"])
            .arg(fixture())
            .arg(url)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// `rtmpkit pull URL -o FILE --duration SECS EXTRA...`, running.
pub fn pull_to(url: &str, out: &Path, secs: u32, extra: &[&str]) -> Proc {
    Proc(
        rtmpkit()
            .args(["pull", url, "-o"])
            .arg(out)
            .args(["--duration", &secs.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// `rtmpkit push FIXTURE URL EXTRA...` to its end.
pub fn push_fixture(url: &str, extra: &[&str]) -> Output {
    run(rtmpkit()
        .arg("push")
        .arg(fixture())
        .arg(url)
        .args(extra)
        .stdin(Stdio::null()))
}

/// Video and audio packet counts of an FLV file (0, 0 for a missing or empty one).
pub fn counts(file: &Path) -> (usize, usize) {
    if std::fs::metadata(file).map(|m| m.len()).unwrap_or(0) <= 13 {
        return (0, 0);
    }
    let p = packets(file);
    (
        p.iter().filter(|x| x.0 == 'v').count(),
        p.iter().filter(|x| x.0 == 'a').count(),
    )
}

/// A small tmpfs, unmounted when dropped.
pub struct SmallDisk(pub tempfile::TempDir);

impl SmallDisk {
    /// `None` where this process may not mount (not root).
    pub fn mount(kib: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk(dir))
    }

    /// [`mount`](Self::mount), or `None` after saying SKIPPED where this
    /// process may not mount; under CI that fails instead.
    pub fn mount_or_skip(kib: u32) -> Option<SmallDisk> {
        let disk = SmallDisk::mount(kib);
        if disk.is_none() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must be able to mount a tmpfs (run as root)"
            );
            eprintln!("SKIPPED: cannot mount a tmpfs here (not root)");
        }
        disk
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}
