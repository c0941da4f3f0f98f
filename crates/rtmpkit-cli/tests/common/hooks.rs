//! A control panel stand-in for hook tests: answers nginx-rtmp-style hook
//! calls by the stream name (allow, deny, rename, relay, hang) and keeps
//! every call it got.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The form fields of one hook call.
pub type Form = HashMap<String, String>;

/// A control panel stand-in: answers hook calls by the stream name and
/// keeps every call it got.
pub struct HookServer {
    port: u16,
    pub calls: Arc<Mutex<Vec<Form>>>,
    /// The RTMP port of the server under test, for relay redirects.
    pub rtmp_port: Arc<AtomicU16>,
}

fn parse_form(body: &str) -> Form {
    body.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-decoding of a form value, written out here so the test does not
/// share the server's code.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The answer to a hook call; `before` is how many calls of the same kind
/// for the same stream came before it.
fn answer(call: &str, name: &str, app: &str, before: usize, rtmp_port: u16) -> String {
    let reply = |status: &str, extra: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    match (call, name) {
        ("publish", "denied") => reply("403 Forbidden", "", "no such key"),
        ("publish", "moved") => reply("302 Found", "Location: renamed\r\n", ""),
        ("publish", "relayed") => reply(
            "302 Found",
            &format!("Location: rtmp://127.0.0.1:{rtmp_port}/live/copy\r\n"),
            "",
        ),
        ("publish", "slow") => {
            std::thread::sleep(Duration::from_secs(5));
            reply("200 OK", "", "")
        }
        ("play", "forbidden") => reply("403 Forbidden", "", "not for you"),
        ("connect", _) if app == "closed" => reply("403 Forbidden", "", "app closed"),
        // on_update: fine once, then refused.
        ("update_publish" | "update_play", "upd") if before >= 1 => {
            reply("403 Forbidden", "", "time is up")
        }
        ("play", "alias") => reply("302 Found", "Location: allowed\r\n", ""),
        _ => reply("200 OK", "", ""),
    }
}

impl HookServer {
    pub fn start() -> HookServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let rtmp_port = Arc::new(AtomicU16::new(0));
        let (c, r) = (calls.clone(), rtmp_port.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().take(200) {
                let Ok(conn) = conn else { continue };
                let (c, r) = (c.clone(), r.clone());
                std::thread::spawn(move || {
                    let _ = serve_hook(conn, &c, r.load(Ordering::Relaxed));
                });
            }
        });
        HookServer {
            port,
            calls,
            rtmp_port,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Waits for a call with these fields.
    pub fn wait_call(&self, call: &str, name: &str) -> Form {
        let t = Instant::now();
        loop {
            let found = self
                .calls
                .lock()
                .unwrap()
                .iter()
                .find(|f| f.get("call").map(String::as_str) == Some(call) && f["name"] == name)
                .cloned();
            if let Some(f) = found {
                return f;
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "no {call} hook call for {name}: {:?}",
                self.calls.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn serve_hook(conn: TcpStream, calls: &Mutex<Vec<Form>>, rtmp_port: u16) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut length = 0usize;
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let form = parse_form(&String::from_utf8_lossy(&body));
    assert!(request_line.starts_with("POST /hook "), "{request_line}");
    // Counted and kept before answering: a slow answer holds no lock.
    let before = {
        let mut calls = calls.lock().unwrap();
        let before = calls
            .iter()
            .filter(|f| f.get("call") == form.get("call") && f.get("name") == form.get("name"))
            .count();
        calls.push(form.clone());
        before
    };
    let app = form.get("app").cloned().unwrap_or_default();
    let reply = answer(&form["call"], &form["name"], &app, before, rtmp_port);
    (&conn).write_all(reply.as_bytes())
}
