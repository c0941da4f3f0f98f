//! RTMPS with real peers: ffmpeg (GnuTLS) and FFmpeg 9 (OpenSSL) publish
//! and play over TLS, nginx-rtmp behind nginx's `stream {}` TLS, GStreamer's
//! rtmp2src; certificates from a CA made in the test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod common;

use common::pki::{ServerCert, TestCa};
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tls_args(cert: &ServerCert) -> Vec<String> {
    vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--tls-listen".into(),
        "127.0.0.1:0".into(),
        "--tls-cert".into(),
        cert.cert.display().to_string(),
        "--tls-key".into(),
        cert.key.display().to_string(),
    ]
}

/// A CA made here, a certificate for `localhost` it signed, and `rtmpkit
/// serve` with a plain and a TLS listener presenting it.
struct TlsServe {
    dir: tempfile::TempDir,
    server: Served,
    plain: u16,
    tls: u16,
    /// The CA's PEM file, as an argument.
    ca_pem: String,
}

fn tls_serve(expired: bool) -> TlsServe {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "main");
    let cert = ca.server_cert(dir.path(), "srv", &["localhost"], expired);
    let server = Served::start(&tls_args(&cert));
    let (plain, tls) = (server.plain.unwrap(), server.tls.unwrap());
    let ca_pem = ca.pem.display().to_string();
    TlsServe {
        dir,
        server,
        plain,
        tls,
        ca_pem,
    }
}

/// ffmpeg publishes the fixture; `tls` are its TLS options (FFmpeg 9
/// verifies certificates by default, and takes `-ca_file`).
fn ffmpeg_publish(ffmpeg: &Path, url: &str, tls: &[&str]) -> std::process::Output {
    run(Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(fixture())
        .args(["-c", "copy"])
        .args(tls)
        .args(["-f", "flv", url])
        .stdin(Stdio::null()))
}

fn ffmpeg_publishes_over_rtmps_and_players_on_both_ports_get_every_frame() {
    let TlsServe {
        dir,
        server: _server,
        plain,
        tls,
        ca_pem,
        ..
    } = tls_serve(false);
    let over_tls = dir.path().join("tls.flv");
    let over_plain = dir.path().join("plain.flv");
    let mut p1 = pull_to(
        &format!("rtmps://localhost:{tls}/live/t"),
        &over_tls,
        20,
        &["--tls-ca", &ca_pem],
    );
    let mut p2 = pull_to(
        &format!("rtmp://127.0.0.1:{plain}/live/t"),
        &over_plain,
        20,
        &[],
    );
    std::thread::sleep(Duration::from_millis(800));
    let r = ffmpeg_publish(
        Path::new("ffmpeg"),
        &format!("rtmps://localhost:{tls}/live/t"),
        &[],
    );
    assert!(r.status.success(), "Debian ffmpeg publishes over rtmps");
    for p in [&mut p1, &mut p2] {
        assert!(
            p.wait_timeout(Duration::from_secs(15)).is_some(),
            "player ends"
        );
    }
    assert_same_media(&fixture(), &over_tls);
    assert_same_media(&fixture(), &over_plain);
}

fn ffmpeg9_plays_over_rtmps_what_was_pushed_over_plain_rtmp() {
    let ffmpeg9 = ffmpeg9().unwrap();
    let TlsServe {
        dir,
        server: _server,
        plain,
        tls,
        ca_pem,
        ..
    } = tls_serve(false);
    let by_ffmpeg9 = dir.path().join("ffmpeg9.flv");
    let mut player = Proc(
        Command::new(&ffmpeg9)
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-rw_timeout",
                "3000000",
            ])
            .args(["-ca_file", &ca_pem, "-tls_verify", "1"])
            .args(["-i", &format!("rtmps://localhost:{tls}/live/r")])
            .args(["-c", "copy", "-f", "flv", "-y"])
            .arg(&by_ffmpeg9)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // A second TLS publisher too: FFmpeg 9 (OpenSSL) to the TLS port.
    let second = dir.path().join("second.flv");
    let mut p2 = pull_to(
        &format!("rtmp://127.0.0.1:{plain}/live/r2"),
        &second,
        20,
        &[],
    );
    std::thread::sleep(Duration::from_millis(1000));
    let r = push_fixture(&format!("rtmp://127.0.0.1:{plain}/live/r"), &[]);
    assert!(r.status.success(), "rtmpkit pushes over plain rtmp");
    assert!(
        player.wait_timeout(Duration::from_secs(15)).is_some(),
        "FFmpeg 9 player ends"
    );
    assert_same_media(&fixture(), &by_ffmpeg9);
    let r = ffmpeg_publish(
        &ffmpeg9,
        &format!("rtmps://localhost:{tls}/live/r2"),
        &["-ca_file", &ca_pem, "-tls_verify", "1"],
    );
    assert!(r.status.success(), "FFmpeg 9 publishes over rtmps");
    assert!(p2.wait_timeout(Duration::from_secs(15)).is_some());
    assert_same_media(&fixture(), &second);
}

fn failure_within(url: &str, extra: &[&str], limit: Duration, cause: &str) {
    let t = Instant::now();
    let r = push_fixture(url, extra);
    let took = t.elapsed();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success(), "push to {url} {extra:?} must fail");
    assert!(took < limit, "failed only after {took:?}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("error: ") && l.contains(cause)),
        "error names {cause:?}: {err}"
    );
}

fn rtmpkit_pushes_over_rtmps_to_nginx_rtmp_behind_stream_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "main");
    let other = TestCa::new(dir.path(), "other");
    let cert = ca.server_cert(dir.path(), "srv", &["localhost"], false);
    let nginx = Nginx::start_with_tls(Some(&cert));
    let nginx_tls = nginx.tls_port.unwrap();
    let ca_pem = ca.pem.display().to_string();
    let out = dir.path().join("from-nginx.flv");
    let mut player = pull_to(&nginx.url("n"), &out, 20, &[]);
    std::thread::sleep(Duration::from_millis(800));
    let url = format!("rtmps://localhost:{nginx_tls}/live/n");
    let r = push_fixture(&url, &["--tls-ca", &ca_pem]);
    assert!(r.status.success(), "push over rtmps to nginx stream TLS");
    // nginx-rtmp does not end its players when the publisher leaves.
    let _ = player.wait_timeout(Duration::from_secs(4));
    drop(player);
    assert_same_media(&fixture(), &out);

    let fast = Duration::from_secs(3);
    failure_within(&url, &[], fast, "unknown CA");
    failure_within(
        &url,
        &["--tls-ca", &other.pem.display().to_string()],
        fast,
        "unknown CA",
    );
    let by_ip = format!("rtmps://127.0.0.1:{nginx_tls}/live/n");
    failure_within(
        &by_ip,
        &["--tls-ca", &ca_pem],
        fast,
        "does not match the host name",
    );
    let r = push_fixture(&url, &["--insecure"]);
    assert!(r.status.success(), "--insecure connects anyway");
    assert!(String::from_utf8_lossy(&r.stderr).contains("not verified"));
}

fn expired_certificate_and_wrong_port_are_named() {
    let TlsServe {
        dir: _dir,
        server: s,
        plain,
        tls,
        ca_pem,
        ..
    } = tls_serve(true);
    let fast = Duration::from_secs(3);
    failure_within(
        &format!("rtmps://localhost:{tls}/live/x"),
        &["--tls-ca", &ca_pem],
        fast,
        "expired",
    );
    // rtmps:// to the plain port: the server sees TLS and closes at once.
    failure_within(
        &format!("rtmps://localhost:{plain}/live/x"),
        &["--tls-ca", &ca_pem],
        fast,
        "closed the connection during the TLS handshake",
    );
    assert!(s.wait_line("speaks TLS (rtmps://) on a plain rtmp port", fast));
    // Plain RTMP to the TLS port: closed at once, with a log line.
    let t = Instant::now();
    let r = push_fixture(&format!("rtmp://127.0.0.1:{tls}/live/x"), &[]);
    assert!(!r.status.success());
    assert!(
        t.elapsed() < fast,
        "plain rtmp on the TLS port took {:?}",
        t.elapsed()
    );
    assert!(s.wait_line("does not speak TLS here", fast));
    // Garbage, then silence: the setup timeout covers the TLS handshake
    // (default 10 s); garbage that is not TLS is closed at once.
    let mut junk = std::net::TcpStream::connect(("127.0.0.1", tls)).unwrap();
    std::io::Write::write_all(&mut junk, b"GET / HTTP/1.0\r\n\r\n").unwrap();
    junk.set_read_timeout(Some(fast)).unwrap();
    let mut buf = [0u8; 64];
    let t = Instant::now();
    let n = std::io::Read::read(&mut junk, &mut buf).unwrap_or(0);
    assert!(
        t.elapsed() < fast && n < buf.len(),
        "garbage is answered by a close"
    );
}

fn gstreamer_rtmp2src_plays_from_the_tls_port() {
    let TlsServe {
        dir,
        server: _server,
        plain,
        tls,
        ..
    } = tls_serve(false);
    let out = dir.path().join("gst.flv");
    // GLib reads the system's CA store only: trust is the one check left
    // out (126 = every GTlsCertificateFlags bit but unknown-ca), so the
    // name and dates are still checked.
    let mut gst = Proc(
        Command::new("gst-launch-1.0")
            .args([
                "-q",
                "rtmp2src",
                &format!("location=rtmps://localhost:{tls}/live/g"),
                "tls-validation-flags=126",
                "!",
                "filesink",
                &format!("location={}", out.display()),
            ])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1000));
    let r = push_fixture(&format!("rtmp://127.0.0.1:{plain}/live/g"), &[]);
    assert!(r.status.success());
    let status = gst.wait_timeout(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "rtmp2src ends cleanly at end of stream"
    );
    let (v_in, a_in) = counts(&fixture());
    let (v, a) = counts(&out);
    eprintln!("rtmp2src over TLS: {v}/{v_in} video, {a}/{a_in} audio");
    assert_eq!(v, v_in, "every video frame");
    // rtmp2src's FLV output has been seen to hold one audio frame less.
    assert!(a + 1 >= a_in, "audio frames: {a} of {a_in}");
}

fn sighup_reloads_the_certificate_without_dropping_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let first = TestCa::new(dir.path(), "first");
    let second = TestCa::new(dir.path(), "second");
    let cert = first.server_cert(dir.path(), "srv", &["localhost"], false);
    let s = Served::start(&tls_args(&cert));
    let (plain, tls) = (s.plain.unwrap(), s.tls.unwrap());
    let url = format!("rtmps://localhost:{tls}/live/h");
    let out = dir.path().join("kept.flv");
    let mut player = pull_to(
        &url,
        &out,
        20,
        &["--tls-ca", &first.pem.display().to_string()],
    );
    std::thread::sleep(Duration::from_millis(800));
    let mut publisher = Proc(
        rtmpkit()
            .arg("push")
            .arg(fixture())
            .arg(format!("rtmp://127.0.0.1:{plain}/live/h"))
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    // New files in place, then SIGHUP.
    let renewed = second.server_cert(dir.path(), "renewed", &["localhost"], false);
    std::fs::copy(&renewed.cert, &cert.cert).unwrap();
    std::fs::copy(&renewed.key, &cert.key).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &s.proc.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    assert!(s.wait_line("certificate read again", Duration::from_secs(3)));
    let second_pem = second.pem.display().to_string();
    let r = run(rtmpkit()
        .args(["probe", &url, "--duration", "1", "--tls-ca", &second_pem])
        .stdin(Stdio::null()));
    assert!(r.status.success(), "a new session gets the new certificate");
    failure_within(
        &url,
        &["--tls-ca", &first.pem.display().to_string()],
        Duration::from_secs(3),
        "unknown CA",
    );
    assert!(publisher.wait_timeout(Duration::from_secs(15)).is_some());
    assert!(player.wait_timeout(Duration::from_secs(15)).is_some());
    // The player was up from before the reload to the end of the stream.
    assert_same_media(&fixture(), &out);
}

fn main() {
    let gst = "gst-launch-1.0";
    run_interop(vec![
        interop(
            "ffmpeg_publishes_over_rtmps_and_players_on_both_ports_get_every_frame",
            &["ffmpeg", "ffprobe"],
            ffmpeg_publishes_over_rtmps_and_players_on_both_ports_get_every_frame,
        ),
        interop(
            "ffmpeg9_plays_over_rtmps_what_was_pushed_over_plain_rtmp",
            &[FFMPEG9, "ffprobe"],
            ffmpeg9_plays_over_rtmps_what_was_pushed_over_plain_rtmp,
        ),
        interop(
            "rtmpkit_pushes_over_rtmps_to_nginx_rtmp_behind_stream_tls",
            &["nginx", STREAM_MODULE, "ffprobe"],
            rtmpkit_pushes_over_rtmps_to_nginx_rtmp_behind_stream_tls,
        ),
        interop(
            "expired_certificate_and_wrong_port_are_named",
            &[],
            expired_certificate_and_wrong_port_are_named,
        ),
        interop(
            "gstreamer_rtmp2src_plays_from_the_tls_port",
            &[gst, "ffprobe"],
            gstreamer_rtmp2src_plays_from_the_tls_port,
        ),
        interop(
            "sighup_reloads_the_certificate_without_dropping_sessions",
            &["ffprobe", "kill"],
            sighup_reloads_the_certificate_without_dropping_sessions,
        ),
    ]);
}
