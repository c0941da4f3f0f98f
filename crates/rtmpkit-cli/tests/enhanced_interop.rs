//! Enhanced RTMP v2 with real peers: samples that FFmpeg 9 encodes in the
//! test (H.264 + two AAC tracks, HEVC + AAC, AV1 + Opus, VP9 + Opus) go
//! through `rtmpkit serve`; players that announced E-RTMP get every track
//! byte for byte, Debian's ffmpeg 5.1 (a legacy player) gets track 0.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod common;

use bytes::Bytes;
use common::*;
use rtmpkit_proto::flv::FlvReader;
use rtmpkit_proto::{Media, MediaKind, Timestamp};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// FFmpeg 9 encodes 3 s of test pattern and tones with these codecs.
fn encode(dir: &Path, name: &str, video: &[&str], audio: &[&str], tracks: usize) -> PathBuf {
    let out = dir.join(format!("{name}.flv"));
    let mut cmd = Command::new(ffmpeg9().unwrap());
    cmd.args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"]);
    for t in 0..tracks {
        cmd.args(["-f", "lavfi", "-i"]).arg(format!(
            "sine=frequency={}:sample_rate=48000",
            440 * (t + 1)
        ));
    }
    cmd.args(["-t", "3", "-map", "0:v"]);
    for t in 0..tracks {
        cmd.args(["-map", &format!("{}:a", t + 1)]);
    }
    cmd.args(video)
        .args(["-g", "25", "-pix_fmt", "yuv420p"])
        .args(audio)
        .args(["-f", "flv"])
        .arg(&out)
        .stdin(Stdio::null());
    let r = run(&mut cmd);
    assert!(r.status.success(), "FFmpeg 9 encodes {name}");
    out
}

/// Audio and video tags of an FLV file: (type, timestamp, payload).
fn tags(file: &Path) -> Vec<(u8, u32, Bytes)> {
    let mut r = FlvReader::new();
    r.push(&std::fs::read(file).unwrap());
    let mut v = Vec::new();
    while let Some(t) = r.next_tag().unwrap() {
        if t.tag_type != 18 {
            v.push((t.tag_type, t.timestamp.0, t.data));
        }
    }
    v
}

fn media(t: &(u8, u32, Bytes)) -> Media {
    let kind = MediaKind::from_type_id(t.0).unwrap();
    Media::new(kind, Timestamp(t.1), t.2.clone())
}

/// The first video tags of a late joiner: sequence header(s), then a keyframe.
fn starts_on_a_keyframe(file: &Path) {
    let video: Vec<Media> = tags(file)
        .iter()
        .filter(|t| t.0 == 9)
        .map(media)
        .filter(|m| m.track.is_none())
        .collect();
    assert!(
        video[0].sequence_header,
        "a late joiner gets the sequence header first"
    );
    let first = video.iter().find(|m| !m.sequence_header).unwrap();
    assert!(first.keyframe, "then a keyframe");
}

fn push_and_pull(sample: &Path, extra_players: &[(&str, PathBuf)]) -> (PathBuf, PathBuf, Served) {
    let s = Served::start(&["--listen".into(), "127.0.0.1:0".into()]);
    let url = format!("rtmp://127.0.0.1:{}/live/e", s.plain.unwrap());
    let dir = sample.parent().unwrap();
    let all = dir.join(format!(
        "{}-pulled.flv",
        sample.file_stem().unwrap().to_string_lossy()
    ));
    let late = dir.join(format!(
        "{}-late.flv",
        sample.file_stem().unwrap().to_string_lossy()
    ));
    let mut player = pull_to(&url, &all, 20, &[]);
    let mut others: Vec<Proc> = extra_players
        .iter()
        .map(|(kind, out)| match *kind {
            "legacy-ffmpeg" => ffmpeg_player(&url, out),
            // FFmpeg 9 announcing E-RTMP codecs (fourCcList).
            "ffmpeg9" => ffmpeg9_player(&url, out, "avc1,hvc1,av01,vp09,mp4a,Opus"),
            // `rtmpkit probe --json`, its report written to `out`.
            "probe" => Proc(
                rtmpkit()
                    .args(["probe", &url, "--json", "--duration", "2"])
                    .stdout(std::fs::File::create(out).unwrap())
                    .stdin(Stdio::null())
                    .spawn()
                    .unwrap(),
            ),
            _ => unreachable!(),
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    let publisher = Proc(
        rtmpkit()
            .args(["-q", "push"])
            .arg(sample)
            .arg(&url)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let mut late_player = pull_to(&url, &late, 20, &[]);
    let mut publisher = publisher;
    assert!(
        publisher
            .wait_timeout(Duration::from_secs(15))
            .is_some_and(|s| s.success())
    );
    for p in [&mut player, &mut late_player]
        .into_iter()
        .chain(others.iter_mut())
    {
        assert!(
            p.wait_timeout(Duration::from_secs(15)).is_some(),
            "player ends"
        );
    }
    (all, late, s)
}

fn multitrack_audio_reaches_e_rtmp_players_and_legacy_ffmpeg_gets_track_0() {
    let dir = tempfile::tempdir().unwrap();
    let sample = encode(
        dir.path(),
        "h264-2aac",
        &["-c:v", "libx264", "-preset", "veryfast"],
        &["-c:a", "aac", "-b:a", "64k"],
        2,
    );
    let want = tags(&sample);
    let extra = want.iter().filter(|t| media(t).track.is_some()).count();
    assert!(
        extra > 50,
        "FFmpeg 9 wrote the second AAC track as multitrack ({extra} tags)"
    );
    let legacy = dir.path().join("legacy.flv");
    let by_ffmpeg9 = dir.path().join("ffmpeg9.flv");
    let probed = dir.path().join("probe.json");
    let (all, late, _s) = push_and_pull(
        &sample,
        &[
            ("legacy-ffmpeg", legacy.clone()),
            ("ffmpeg9", by_ffmpeg9.clone()),
            ("probe", probed.clone()),
        ],
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&probed).unwrap()).unwrap();
    eprintln!("probe: {report}");
    assert_eq!(report["audio"]["codec"], "aac");
    assert_eq!(report["extra_tracks"][0]["kind"], "audio");
    assert_eq!(report["extra_tracks"][0]["id"], 1);
    assert_eq!(report["extra_tracks"][0]["codec"], "aac");
    assert!(report["extra_tracks"][0]["frames"].as_u64().unwrap() > 20);
    assert_eq!(tags(&all), want, "every tag of every track, byte for byte");
    starts_on_a_keyframe(&late);
    // FFmpeg 9 reads the pulled file with both audio tracks, and as a
    // player that announced E-RTMP it received both.
    for file in [&all, &by_ffmpeg9] {
        let r = run(Command::new(ffmpeg9().unwrap())
            .args(["-hide_banner", "-i"])
            .arg(file)
            .args(["-map", "0", "-c", "copy", "-f", "null", "-"]));
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(
            err.matches("Audio: aac").count() >= 2,
            "{}: two AAC tracks: {err}",
            file.display()
        );
    }
    let track1 = |f: &Path| tags(f).iter().filter(|t| media(t).track == Some(1)).count();
    assert_eq!(
        track1(&by_ffmpeg9),
        extra,
        "FFmpeg 9 got every frame of track 1"
    );
    // Debian's ffmpeg 5.1 got track 0 only: no multitrack tag, every
    // track-0 audio frame.
    let got: Vec<Media> = tags(&legacy).iter().map(media).collect();
    assert!(
        got.iter().all(|m| m.track.is_none()),
        "no multitrack tags for a legacy player"
    );
    let track0_audio = want
        .iter()
        .filter(|t| t.0 == 8 && media(t).track.is_none())
        .count();
    let p = packets(&legacy);
    assert_eq!(
        p.iter().filter(|x| x.0 == 'a').count() + 1,
        track0_audio,
        "track 0 audio frames (the sequence header is not a packet)"
    );
}

fn enhanced_codecs_pass_through_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let samples = [
        encode(
            dir.path(),
            "hevc-aac",
            &[
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-x265-params",
                "log-level=error",
            ],
            &["-c:a", "aac"],
            1,
        ),
        encode(
            dir.path(),
            "av1-opus",
            &["-c:v", "libsvtav1", "-preset", "12"],
            &["-c:a", "libopus"],
            1,
        ),
        encode(
            dir.path(),
            "vp9-opus",
            &[
                "-c:v",
                "libvpx-vp9",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
            ],
            &["-c:a", "libopus"],
            1,
        ),
    ];
    for sample in &samples {
        let want = tags(sample);
        let (all, late, _s) = push_and_pull(sample, &[]);
        assert_eq!(
            tags(&all),
            want,
            "{}: every tag, byte for byte",
            sample.display()
        );
        starts_on_a_keyframe(&late);
        eprintln!(
            "{}: {} tags through, late joiner on a keyframe",
            sample.display(),
            want.len()
        );
    }
}

/// Video frames (timestamp, keyframe) and the audio frame count of a file,
/// sequence headers left out: what a remuxing peer must keep.
fn frames(f: &Path) -> (Vec<(u32, bool)>, usize) {
    let t: Vec<Media> = tags(f)
        .iter()
        .map(media)
        .filter(|m| !m.sequence_header)
        .collect();
    let v = t
        .iter()
        .filter(|m| m.kind == MediaKind::Video)
        .map(|m| (m.timestamp.0, m.keyframe))
        .collect();
    let a = t.iter().filter(|m| m.kind == MediaKind::Audio).count();
    (v, a)
}

/// `rtmpkit push` into FFmpeg 9's own RTMP server (`-listen 1`).
fn push_into_ffmpeg9_listen_gives_the_same_frames() {
    let dir = tempfile::tempdir().unwrap();
    for (name, video, audio) in [
        (
            "hevc",
            &[
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-x265-params",
                "log-level=error",
            ][..],
            &["-c:a", "aac"][..],
        ),
        (
            "av1",
            &["-c:v", "libsvtav1", "-preset", "12"][..],
            &["-c:a", "libopus"][..],
        ),
    ] {
        let sample = encode(dir.path(), name, video, audio, 1);
        let port = free_port();
        let url = format!("rtmp://127.0.0.1:{port}/live/x");
        let out = dir.path().join(format!("{name}-listen.flv"));
        let mut listener = Proc(
            Command::new(ffmpeg9().unwrap())
                .args([
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-listen",
                    "1",
                    "-i",
                    &url,
                ])
                .args(["-map", "0", "-c", "copy", "-f", "flv", "-y"])
                .arg(&out)
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        );
        // -listen takes one connection only: no probing; retry the push
        // while it is not listening yet (refused at once).
        let t = std::time::Instant::now();
        loop {
            let r = push_fixture_file(&sample, &url);
            if r.status.success() {
                break;
            }
            let err = String::from_utf8_lossy(&r.stderr);
            assert!(err.contains("refused"), "push {name} into FFmpeg 9: {err}");
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "FFmpeg 9 never listened"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            listener
                .wait_timeout(Duration::from_secs(15))
                .is_some_and(|s| s.success())
        );
        let (want_v, want_a) = frames(&sample);
        let (got_v, got_a) = frames(&out);
        eprintln!(
            "{name}: {} video and {want_a} audio frames in, {} and {got_a} out",
            want_v.len(),
            got_v.len()
        );
        assert_eq!(
            got_v, want_v,
            "{name}: same video frames (timestamps, keyframes)"
        );
        assert_eq!(got_a, want_a, "{name}: same audio frame count");
    }
}

fn push_fixture_file(file: &Path, url: &str) -> std::process::Output {
    run(rtmpkit()
        .arg("push")
        .arg(file)
        .arg(url)
        .stdin(Stdio::null()))
}

/// FFmpeg 9 publishing live (its own RTMP muxer) with two audio tracks.
fn ffmpeg9_publishes_multitrack_live() {
    let dir = tempfile::tempdir().unwrap();
    let sample = encode(
        dir.path(),
        "live-2aac",
        &["-c:v", "libx264", "-preset", "veryfast"],
        &["-c:a", "aac", "-b:a", "64k"],
        2,
    );
    let s = Served::start(&["--listen".into(), "127.0.0.1:0".into()]);
    let url = format!("rtmp://127.0.0.1:{}/live/ff9", s.plain.unwrap());
    let got = dir.path().join("got.flv");
    let mut player = pull_to(&url, &got, 20, &[]);
    std::thread::sleep(Duration::from_millis(800));
    let r = run(Command::new(ffmpeg9().unwrap())
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(&sample)
        .args(["-map", "0", "-c", "copy", "-f", "flv", &url])
        .stdin(Stdio::null()));
    assert!(r.status.success(), "FFmpeg 9 publishes");
    assert!(player.wait_timeout(Duration::from_secs(15)).is_some());
    let per_track = |f: &Path| {
        let t: Vec<Media> = tags(f)
            .iter()
            .map(media)
            .filter(|m| !m.sequence_header)
            .collect();
        let count = |kind, track| {
            t.iter()
                .filter(|m| m.kind == kind && m.track == track)
                .count()
        };
        (
            count(MediaKind::Video, None),
            count(MediaKind::Audio, None),
            count(MediaKind::Audio, Some(1)),
        )
    };
    let (want, have) = (per_track(&sample), per_track(&got));
    eprintln!("video, audio track 0, audio track 1: {want:?} in, {have:?} received");
    assert_eq!(have, want, "every frame of every track");
}

fn main() {
    run_interop(vec![
        interop(
            "multitrack_audio_reaches_e_rtmp_players_and_legacy_ffmpeg_gets_track_0",
            &[FFMPEG9, "ffmpeg", "ffprobe"],
            multitrack_audio_reaches_e_rtmp_players_and_legacy_ffmpeg_gets_track_0,
        ),
        interop(
            "enhanced_codecs_pass_through_byte_for_byte",
            &[FFMPEG9],
            enhanced_codecs_pass_through_byte_for_byte,
        ),
        interop(
            "ffmpeg9_publishes_multitrack_live",
            &[FFMPEG9],
            ffmpeg9_publishes_multitrack_live,
        ),
        interop(
            "push_into_ffmpeg9_listen_gives_the_same_frames",
            &[FFMPEG9],
            push_into_ffmpeg9_listen_gives_the_same_frames,
        ),
    ]);
}
