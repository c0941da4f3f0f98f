//! The frame-level client's examples against `rtmpkit serve`, with real
//! peers on both sides: Debian's ffmpeg writes the raw files the Annex B
//! example publishes, and records what it plays; ffprobe counts and
//! decodes what arrived.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod common;

use common::*;
use rtmpkit_proto::flv::FlvReader;
use rtmpkit_proto::media::{AudioTagHeader, VideoPacketKind, VideoTagHeader, parse_avc_config};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// An example of the `rtmpkit` crate, as `cargo test --workspace` built it.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.is_file(),
        "{} is not built: run cargo test --workspace, or cargo build -p rtmpkit --examples",
        path.display()
    );
    path
}

/// Debian's ffmpeg, quiet, to its end.
fn ffmpeg(args: &[&str]) {
    let out = run(Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .stdin(Stdio::null()));
    assert!(out.status.success(), "ffmpeg {args:?} failed");
}

/// Frames of each stream of `file`, as ffprobe counts its packets.
fn stream_packets(file: &Path) -> Vec<u64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_entries"])
        .args(["stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim_end_matches(',').parse().ok())
        .collect()
}

/// Decoding `file` to the end says nothing on stderr.
fn assert_decodes(file: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && errors.trim().is_empty(),
        "{} does not decode cleanly: {errors}",
        file.display()
    );
}

/// The picture sizes ffprobe decodes in `file`, with their frame counts.
fn decoded_sizes(file: &Path) -> Vec<(String, usize)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries"])
        .args(["frame=width,height", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .unwrap();
    let mut sizes: Vec<(String, usize)> = Vec::new();
    for l in String::from_utf8(out.stdout).unwrap().lines() {
        let size = l.trim_end_matches(',').to_owned();
        if size.is_empty() {
            continue;
        }
        match sizes.last_mut() {
            Some((s, n)) if *s == size => *n += 1,
            _ => sizes.push((size, 1)),
        }
    }
    sizes
}

/// The picture sizes of the AVC sequence headers in an FLV file, in order.
fn sequence_header_sizes(file: &Path) -> Vec<(u32, u32)> {
    let mut r = FlvReader::new();
    r.push(&std::fs::read(file).unwrap());
    let mut out = Vec::new();
    while let Some(t) = r.next_tag().unwrap() {
        if t.tag_type == 9 && VideoTagHeader::parse(&t.data).unwrap().is_sequence_header() {
            let i = parse_avc_config(&t.data[5..]).unwrap();
            out.push((i.width, i.height));
        }
    }
    out
}

/// `ffmpeg -f h264` and `-f adts` files of the fixture, the video in two
/// halves of different sizes: Annex B files concatenate, so the second
/// half brings its own SPS and PPS.
fn raw_files(dir: &Path) -> (PathBuf, PathBuf) {
    let fixture = fixture();
    let fx = fixture.to_str().unwrap();
    let (a, b) = (dir.join("a.h264"), dir.join("b.h264"));
    let x264 = [
        "-an", "-c:v", "libx264", "-bf", "0", "-g", "25", "-f", "h264",
    ];
    let half = |from: &[&str], size: &str, out: &Path| {
        let mut args = from.to_vec();
        args.extend(["-i", fx]);
        args.extend(x264);
        args.extend(["-s", size, out.to_str().unwrap()]);
        ffmpeg(&args);
    };
    half(&["-t", "2.5"][..], "320x180", &a);
    half(&["-ss", "2.5"][..], "480x270", &b);
    let video = dir.join("video.h264");
    let mut joined = std::fs::read(&a).unwrap();
    joined.extend(std::fs::read(&b).unwrap());
    std::fs::write(&video, joined).unwrap();
    let audio = dir.join("audio.aac");
    ffmpeg(&[
        "-i",
        fx,
        "-vn",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        "-f",
        "adts",
        audio.to_str().unwrap(),
    ]);
    (video, audio)
}

fn annex_b_files_arrive_frame_for_frame_through_a_resolution_change() {
    let dir = tempfile::tempdir().unwrap();
    let (video, audio) = raw_files(dir.path());
    let want = [stream_packets(&video), stream_packets(&audio)].concat();
    eprintln!("input: {} video frames, {} audio frames", want[0], want[1]);
    assert!(want[0] > 100 && want[1] > 150, "the inputs: {want:?}");

    let served = Served::start(&["--listen".into(), "127.0.0.1:0".into()]);
    let url = format!("rtmp://127.0.0.1:{}/live/annexb", served.plain.unwrap());
    let by_ffmpeg = dir.path().join("ffmpeg.flv");
    let by_rtmpkit = dir.path().join("rtmpkit.flv");
    let player = ffmpeg_player(&url, &by_ffmpeg);
    let puller = pull_to(&url, &by_rtmpkit, 30, &[]);
    std::thread::sleep(Duration::from_millis(800));
    let out = run(Command::new(example("annexb_push"))
        .arg(&video)
        .arg(&audio)
        .args(["25", &url])
        .stdin(Stdio::null()));
    assert!(out.status.success(), "the example failed");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("{} video and {} audio frames", want[0], want[1])),
        "the example sent every frame: {said}"
    );
    wait_end(player);
    wait_end(puller);

    for rec in [&by_ffmpeg, &by_rtmpkit] {
        let got = stream_packets(rec);
        eprintln!("{}: {got:?} frames", rec.display());
        assert_eq!(got, want, "{}: the same number of frames", rec.display());
        assert_decodes(rec);
        let sizes = decoded_sizes(rec);
        eprintln!("{}: decoded {sizes:?}", rec.display());
        let names: Vec<&str> = sizes.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(names, ["320,180", "480,270"], "{}", rec.display());
    }
    assert_eq!(
        sequence_header_sizes(&by_rtmpkit),
        [(320, 180), (480, 270)],
        "a new sequence header at the new SPS and PPS"
    );
}

/// FFmpeg 9 (the E-RTMP peer), quiet, to its end.
fn ffmpeg9(args: &[&str]) -> std::process::Output {
    run(Command::new(common::ffmpeg9().unwrap())
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .stdin(Stdio::null()))
}

/// Video frames of an FLV file, as FFmpeg 9 (which reads E-RTMP) counts
/// them, and whether they decode without a word on stderr.
fn e_rtmp_frames(file: &Path) -> (usize, String) {
    let f = file.to_str().unwrap();
    let out = ffmpeg9(&["-i", f, "-map", "0:v", "-c", "copy", "-f", "framecrc", "-"]);
    let frames = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count();
    let decode = ffmpeg9(&["-i", f, "-f", "null", "-"]);
    (
        frames,
        String::from_utf8_lossy(&decode.stderr).trim().to_owned(),
    )
}

/// HEVC (`-f hevc`, x265) and AV1 (`-f obu`, SVT-AV1) raw files from
/// FFmpeg 9, published by the example with `write_hevc` / `write_av1`, and
/// played by FFmpeg 9 as Enhanced RTMP: every frame arrives and decodes.
fn hevc_and_av1_files_arrive_as_enhanced_rtmp() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&["--listen".into(), "127.0.0.1:0".into()]);
    let source = [
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-frames:v",
        "75",
    ];
    let codecs: [(&str, &[&str]); 2] = [
        (
            "hevc",
            &[
                "-c:v",
                "libx265",
                "-x265-params",
                "bframes=0:keyint=25:log-level=error",
                "-f",
                "hevc",
            ],
        ),
        (
            "obu",
            &[
                "-c:v",
                "libsvtav1",
                "-g",
                "25",
                "-svtav1-params",
                "pred-struct=1",
                "-f",
                "obu",
            ],
        ),
    ];
    for (ext, encode) in codecs {
        let raw = dir.path().join(format!("video.{ext}"));
        let mut args = source.to_vec();
        args.extend_from_slice(encode);
        args.push(raw.to_str().unwrap());
        assert!(ffmpeg9(&args).status.success(), "FFmpeg 9 encodes {ext}");
        let url = format!("rtmp://127.0.0.1:{}/live/{ext}", served.plain.unwrap());
        let rec = dir.path().join(format!("{ext}.flv"));
        let player = ffmpeg9_player(&url, &rec, "hvc1,av01");
        std::thread::sleep(Duration::from_millis(800));
        let out = run(Command::new(example("annexb_push"))
            .arg(&raw)
            .args(["none", "25", &url])
            .stdin(Stdio::null()));
        assert!(out.status.success(), "the example failed on {ext}");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains("75 video and 0 audio frames"),
            "{ext}: {said}"
        );
        wait_end(player);
        let (frames, errors) = e_rtmp_frames(&rec);
        eprintln!("{ext}: FFmpeg 9 recorded {frames} frames; decoding said {errors:?}");
        let probe = Command::new(common::ffmpeg9().unwrap())
            .arg("-i")
            .arg(&rec)
            .output()
            .unwrap();
        let probe = String::from_utf8_lossy(&probe.stderr);
        let name = if ext == "hevc" {
            "Video: hevc"
        } else {
            "Video: av1"
        };
        assert!(
            probe.contains(name) && probe.contains("320x240"),
            "{ext}: {probe}"
        );
        assert_eq!(frames, 75, "{ext}: every frame");
        assert!(errors.is_empty(), "{ext}: {errors}");
    }
}

/// (video, audio) coded frames in an FLV file's tags. (FFmpeg 9's own
/// count of a file it remuxed varies by one Opus packet with the order
/// its streams came in, for the same tags.)
fn coded_frames(file: &Path) -> (usize, usize) {
    let mut r = FlvReader::new();
    r.push(&std::fs::read(file).unwrap());
    let (mut video, mut audio) = (0, 0);
    while let Some(t) = r.next_tag().unwrap() {
        match t.tag_type {
            9 => {
                video += usize::from(
                    VideoTagHeader::parse(&t.data).is_ok_and(|h| h.kind == VideoPacketKind::Frame),
                )
            }
            8 => audio += usize::from(AudioTagHeader::parse(&t.data).is_ok_and(|h| h.coded)),
            _ => {}
        }
    }
    (video, audio)
}

/// The restream example plays what FFmpeg 9 publishes (x264 + Opus,
/// x265 + AAC, SVT-AV1 + Opus) as frames, and publishes them again with
/// the frame-level writes: FFmpeg 9 records both streams, and the second
/// has every frame of the first, of the same codecs, decoding cleanly.
fn restreamed_frames_keep_every_frame_of_each_codec() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&["--listen".into(), "127.0.0.1:0".into()]);
    let port = served.plain.unwrap();
    let sources: [(&str, &[&str], &str, &str); 3] = [
        (
            "h264",
            &[
                "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-c:a", "libopus", "-b:a",
                "64k",
            ],
            "h264",
            "opus",
        ),
        (
            "hevc",
            &[
                "-c:v",
                "libx265",
                "-x265-params",
                "keyint=50:log-level=error",
                "-c:a",
                "aac",
                "-b:a",
                "64k",
            ],
            "hevc",
            "aac",
        ),
        (
            "av1",
            &[
                "-c:v",
                "libsvtav1",
                "-g",
                "50",
                "-c:a",
                "libopus",
                "-b:a",
                "64k",
            ],
            "av1",
            "opus",
        ),
    ];
    let all = "hvc1,av01,avc1,Opus,mp4a";
    for (name, codecs, video, audio) in sources {
        let src = format!("rtmp://127.0.0.1:{port}/live/{name}-in");
        let dst = format!("rtmp://127.0.0.1:{port}/live/{name}-out");
        let (a, b) = (
            dir.path().join(format!("{name}-in.flv")),
            dir.path().join(format!("{name}-out.flv")),
        );
        let rec_in = ffmpeg9_player(&src, &a, all);
        let rec_out = ffmpeg9_player(&dst, &b, all);
        let restream = Proc(
            Command::new(example("restream"))
                .args([&src, &dst])
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        );
        std::thread::sleep(Duration::from_millis(800));
        let mut publish = vec!["-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"];
        publish.extend([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "4",
        ]);
        publish.extend_from_slice(codecs);
        publish.extend(["-f", "flv", &src]);
        assert!(
            ffmpeg9(&publish).status.success(),
            "FFmpeg 9 publishes {name}"
        );
        for p in [restream, rec_in, rec_out] {
            wait_end(p);
        }
        let (sent, got) = (coded_frames(&a), coded_frames(&b));
        eprintln!("{name}: the source had {sent:?} (video, audio) frames, the restream {got:?}");
        assert!(sent.0 >= 95 && sent.1 >= 150, "{name}: the source {sent:?}");
        assert_eq!(got, sent, "{name}: every frame restreamed");
        let probe = Command::new(common::ffmpeg9().unwrap())
            .arg("-i")
            .arg(&b)
            .output()
            .unwrap();
        let probe = String::from_utf8_lossy(&probe.stderr);
        for codec in [video, audio] {
            assert!(
                probe.contains(&format!(": {codec}")),
                "{name}: {codec} in {probe}"
            );
        }
        let decode = ffmpeg9(&["-i", b.to_str().unwrap(), "-f", "null", "-"]);
        let errors = String::from_utf8_lossy(&decode.stderr);
        assert!(errors.trim().is_empty(), "{name}: {errors}");
    }
}

/// Waits up to 15 s for a player to end (ffmpeg on its read timeout, 3 s
/// after the publisher left; a pull at the stream's end).
fn wait_end(mut p: Proc) {
    let t = std::time::Instant::now();
    while p.0.try_wait().unwrap().is_none() && t.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn the_encoder_example_publishes_ten_seconds_live() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&["--listen".into(), "127.0.0.1:0".into()]);
    let url = format!("rtmp://127.0.0.1:{}/live/encoded", served.plain.unwrap());
    let rec = dir.path().join("encoded.flv");
    let player = ffmpeg_player(&url, &rec);
    std::thread::sleep(Duration::from_millis(800));
    let t = std::time::Instant::now();
    let out = run(Command::new(example("encode_push"))
        .args([&url, "10"])
        .stdin(Stdio::null()));
    let took = t.elapsed();
    assert!(out.status.success(), "the example failed");
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    wait_end(player);
    let frames = stream_packets(&rec);
    eprintln!("the player recorded {frames:?} frames; the example ran {took:.1?}");
    assert!(
        (245..=250).contains(&frames[0]),
        "about 250 frames in 10 s: {frames:?}"
    );
    assert_decodes(&rec);
    assert_eq!(decoded_sizes(&rec)[0].0, "640,360");
}

fn main() {
    run_interop(vec![
        interop(
            "annex_b_files_arrive_frame_for_frame_through_a_resolution_change",
            &["ffmpeg", "ffprobe"],
            annex_b_files_arrive_frame_for_frame_through_a_resolution_change,
        ),
        interop(
            "hevc_and_av1_files_arrive_as_enhanced_rtmp",
            &[FFMPEG9],
            hevc_and_av1_files_arrive_as_enhanced_rtmp,
        ),
        interop(
            "restreamed_frames_keep_every_frame_of_each_codec",
            &[FFMPEG9],
            restreamed_frames_keep_every_frame_of_each_codec,
        ),
        interop(
            "the_encoder_example_publishes_ten_seconds_live",
            &["ffmpeg", "ffprobe"],
            the_encoder_example_publishes_ten_seconds_live,
        ),
    ]);
}
