//! `pull -o`: one fMP4 file, or segments (`--segment`) in fMP4 or FLV, hold
//! every frame the server sent.

use super::tempdir;
use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Video and audio frames of a file, as ffprobe counts them.
fn probe_counts(file: &Path) -> (usize, usize) {
    let out = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_type,nb_read_frames",
        ])
        .args(["-of", "csv=p=0"])
        .arg(file));
    let (mut v, mut a) = (0, 0);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (kind, n) = line.split_once(',').unwrap();
        let n: usize = n.trim().parse().unwrap_or(0);
        match kind {
            "video" => v += n,
            "audio" => a += n,
            _ => {}
        }
    }
    (v, a)
}

pub fn pull_writes_fmp4_and_cuts_segments() {
    let dir = tempdir("pull");
    let served = Served::start(&["--listen".into(), "127.0.0.1:0".into()]);
    let url = format!("rtmp://127.0.0.1:{}/live/cam", served.plain.unwrap());
    let one = dir.join("one.mp4");
    let cut = dir.join("cut.mp4");
    let cut_flv = dir.join("cut.flv");
    let pulls = [
        pull_to(&url, &one, 12, &[]),
        pull_to(&url, &cut, 12, &["--segment", "2"]),
        pull_to(&url, &cut_flv, 12, &["--segment", "2"]),
    ];
    std::thread::sleep(Duration::from_millis(700));
    assert!(push_fixture(&url, &[]).status.success());
    for mut p in pulls {
        assert!(
            p.wait_timeout(Duration::from_secs(15))
                .is_some_and(|s| s.success())
        );
    }
    let want = counts(&fixture());
    assert_eq!(probe_counts(&one), want, "one fMP4 file");
    for (name, ext) in [("cut", "mp4"), ("cut", "flv")] {
        let parts: Vec<PathBuf> = (1..=9)
            .map(|n| dir.join(format!("{name}-{n:04}.{ext}")))
            .take_while(|p| p.exists())
            .collect();
        assert!(parts.len() >= 2, "{ext}: {parts:?}");
        let mut sum = (0, 0);
        for p in &parts {
            let (v, a) = probe_counts(p);
            sum = (sum.0 + v, sum.1 + a);
        }
        eprintln!("{ext}: {} files, {sum:?} frames", parts.len());
        assert_eq!(sum, want, "{ext} segments");
    }
    drop(served);
    let _ = std::fs::remove_dir_all(&dir);
}
