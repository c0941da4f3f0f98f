//! The recording goes on through trouble: a stalled publisher taken over
//! (one file, time never going back), and a full disk (the live stream
//! untouched, recording again once there is room).

use super::{recordings, tempdir};
use crate::common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Decode times per stream index of `file`, in file order.
fn dts(file: &Path) -> BTreeMap<u32, Vec<i64>> {
    let out = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=stream_index,dts",
            "-of",
            "csv=p=0",
        ])
        .arg(file));
    let mut m: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut f = line.split(',');
        let (Some(i), Some(d)) = (f.next(), f.next()) else {
            continue;
        };
        if let (Ok(i), Ok(d)) = (i.trim().parse(), d.trim().parse()) {
            m.entry(i).or_default().push(d);
        }
    }
    m
}

pub fn a_takeover_goes_on_in_the_same_file_with_time_going_forward() {
    let dir = tempdir("takeover");
    let rec = dir.join("rec");
    let served = Served::start(&[
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--record".into(),
        rec.display().to_string(),
        "--takeover-after".into(),
        "1".into(),
    ]);
    let url = format!("rtmp://127.0.0.1:{}/live/cam", served.plain.unwrap());
    // The first encoder hangs after 2 s (stopped, its socket open); a
    // second one takes the stream over.
    let first = push_looping(&url);
    std::thread::sleep(Duration::from_secs(2));
    run(Command::new("kill").args(["-STOP", &first.0.id().to_string()]));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(push_fixture(&url, &[]).status.success());
    drop(first);
    std::thread::sleep(Duration::from_millis(500));
    drop(served);
    let files = recordings(&rec);
    assert_eq!(files.len(), 1, "one file through the takeover: {files:?}");
    let d = dts(&files[0]);
    for (idx, times) in &d {
        assert!(
            times.windows(2).all(|w| w[1] >= w[0]),
            "stream {idx}: time went back"
        );
    }
    let video = d.get(&0).map_or(0, Vec::len);
    eprintln!("one file, {video} video frames, time never going back");
    assert!(video >= 125 + 40, "both publishers' video: {video}");
    let _ = std::fs::remove_dir_all(&dir);
}

pub fn a_full_disk_never_touches_the_live_stream() {
    let Some(disk) = SmallDisk::mount_or_skip(200) else {
        return;
    };
    let dir = tempdir("full");
    let rec = disk.0.path().to_path_buf();
    let served = Served::start(&[
        "-v".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--record".into(),
        rec.display().to_string(),
        "--record-segment".into(),
        "1".into(),
    ]);
    let port = served.plain.unwrap();
    let url = format!("rtmp://127.0.0.1:{port}/live/cam");
    // A player watches the whole time; the 5 s sample at real time fills
    // 200 KiB after about 3 s.
    let out = dir.join("played.flv");
    let mut player = pull_to(&url, &out, 30, &[]);
    std::thread::sleep(Duration::from_millis(500));
    let pusher = std::thread::spawn({
        let url = url.clone();
        move || push_fixture(&url, &[])
    });
    let t = Instant::now();
    while served.count_lines("cannot write") == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the disk never filled"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Room again while the stream goes on: the next file records.
    let size = |dir: &Path| -> u64 {
        recordings(dir)
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum()
    };
    let full = size(&rec);
    run(Command::new("mount")
        .args(["-o", "remount,size=4m"])
        .arg(&rec));
    assert!(
        pusher.join().unwrap().status.success(),
        "the publisher went on"
    );
    let _ = player.wait_timeout(Duration::from_secs(15));
    let errors = served.count_lines("cannot write");
    let after = size(&rec);
    eprintln!(
        "write errors logged: {errors}; {full} bytes when full, {after} after the room came back"
    );
    assert!(
        after > full + 10_000,
        "recording resumed when space was back"
    );
    // One line per failed file at most: the stream is 5 s in 1 s files.
    assert!(errors <= 6, "{errors} error lines");
    // The player lost nothing.
    assert_same_media(&fixture(), &out);
    drop(served);
    drop(disk);
    let _ = std::fs::remove_dir_all(&dir);
}
