//! The web side of the interop tests (`tests/web`, installed by `npm ci`):
//! headless chromium driven by puppeteer-core (`watch.mjs`) and the strict
//! HLS playlist parser (`check-playlist.mjs`).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::Proc;

pub const WEB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/web");
pub const PUPPETEER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/web/node_modules/puppeteer-core"
);

/// Where screenshots go (kept after the run, for a person to look at).
pub fn shots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `watch.mjs ARGS` (bounded) and returns what it printed.
pub fn browser(args: &[&str]) -> Value {
    let mut child = Command::new("node")
        .arg(Path::new(WEB).join("watch.mjs"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let mut proc = Proc(child);
    proc.wait_timeout(Duration::from_secs(90))
        .expect("the browser did not finish within 90 s");
    let text = reader.join().unwrap();
    let v: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("watch.mjs printed no JSON ({e}): {text}"));
    assert!(v.get("error").is_none(), "browser: {}", v["error"]);
    v
}

/// What hls-parser in strict mode read of playlist `text` (a media
/// playlist, or with `multivariant` a multivariant one); fails the test
/// with the parser's complaint when it refuses it.
pub fn check_playlist(text: &str, multivariant: bool) -> Value {
    let mut child = Command::new("node")
        .arg(Path::new(WEB).join("check-playlist.mjs"))
        .args(multivariant.then_some("multivariant"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "hls-parser (strict) refused the playlist: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
