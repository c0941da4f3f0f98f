//! `rtmpkit serve --check-config`, as `nginx -t`: a valid file says so and
//! exits 0; a bad one names the line and column (or the setting) and exits
//! 1; nothing is bound either way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

fn check(text: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("serve.toml");
    std::fs::write(&file, text).unwrap();
    let out = run(rtmpkit()
        .args(["serve", "--check-config", "--config"])
        .arg(&file));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_validates_and_exits() {
    // Port 1 would need root to bind: nothing is bound when checking.
    let (ok, out, _) =
        check("listen = \"127.0.0.1:1\"\non_publish = \"http://127.0.0.1:9/hook\"\n");
    assert!(ok && out.contains("is valid"), "{out}");
    let (ok, _, err) = check("listen = \"127.0.0.1:1935\"\nmax_connections = \"many\"\n");
    assert!(!ok && err.contains("line 2, column"), "{err}");
    // Per-application tables: a good one, and a rule nginx would not read.
    let (ok, out, _) = check(
        "[apps.live]\nrules = [\"allow publish 10.0.0.0/8\", \"deny publish all\"]\nmax_players = 10\n",
    );
    assert!(ok && out.contains("is valid"), "{out}");
    let (ok, _, err) = check("[apps.live]\nrules = [\"allow publish 10.0.0.0/40\"]\n");
    assert!(
        !ok && err.contains("line 2, column") && err.contains("10.0.0.0/40"),
        "{err}"
    );
    let (ok, _, err) = check("[apps.live]\nmax_viewers = 3\n");
    assert!(!ok && err.contains("max_viewers"), "{err}");
    let (ok, _, err) = check("on_play = \"https://example.com/hook\"\n");
    assert!(
        !ok && err.contains("on_play") && err.contains("http://"),
        "{err}"
    );
}
