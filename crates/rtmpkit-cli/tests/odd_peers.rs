//! What real encoders and servers send that strict peers refuse, from
//! scripted peers written by hand on the protocol core:
//! - a publisher that sends its media on message stream 0 (as
//!   Node-Media-Server's push relay does), with AMF3 data and commands
//!   (types 15 and 17, the 0x11 switch) and undecodable data mid-stream;
//! - a server that plays on message stream 0 and says its statuses on
//!   stream 1 (as Node-Media-Server does), read by `pull`, `probe`,
//!   `relay` and an edge's `--relay-pull`;
//! - OBS 29's VOD track (`onExpectAdditionalMedia`, `additionalMedia`
//!   with an AMF3 ByteArray), which FFmpeg 9 must get as audio track 1
//!   and Debian's ffmpeg 5.1 must play cleanly without.
//!
//! No session ends for any of it, and every frame arrives.
//!
//! And the real Node-Media-Server 4 (from npm, `npm ci` in `tests/web`):
//! `pull`, `probe`, `relay` and an edge read it, and its push relay
//! publishes into `rtmpkit serve`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod common;
#[path = "odd_peers/node_media_server.rs"]
mod node_media_server;

use common::raw::{av_tags, publishing};
use common::*;
use rtmpkit_proto::amf0::{Amf0Object, Amf0Value};
use rtmpkit_proto::amf3::Amf3Value;
use rtmpkit_proto::flv::{FlvReader, FlvTag};
use rtmpkit_proto::handshake::ServerHandshake;
use rtmpkit_proto::media::{AudioTagHeader, Media, MediaKind};
use rtmpkit_proto::message::{Command, Message, StatusInfo, UserControl};
use rtmpkit_proto::{ChunkDecoder, ChunkEncoder, ChunkStreamId, MessageStreamId, Timestamp};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command as Cmd, Stdio};
use std::time::{Duration, Instant};

fn fixture_tags() -> Vec<FlvTag> {
    let mut r = FlvReader::new();
    r.push(&std::fs::read(fixture()).unwrap());
    let mut v = Vec::new();
    while let Ok(Some(t)) = r.next_tag() {
        v.push(t);
    }
    v
}

/// Writes one message, chunked (csid by kind, as publishers do).
fn send(s: &mut TcpStream, enc: &mut ChunkEncoder, msid: u32, ts: u32, ty: u8, p: &[u8]) {
    let csid = match ty {
        8 => 4,
        9 => 6,
        _ => 5,
    };
    let mut b = Vec::new();
    enc.encode(
        ChunkStreamId(csid),
        Timestamp(ts),
        ty,
        MessageStreamId(msid),
        p,
        &mut b,
    )
    .unwrap();
    s.write_all(&b).unwrap();
}

fn sleep_until(t0: Instant, ts: u32) {
    let at = t0 + Duration::from_millis(u64::from(ts));
    if let Some(d) = at.checked_duration_since(Instant::now()) {
        std::thread::sleep(d);
    }
}

/// The publisher's connection is still open: nothing but bytes (acks,
/// pings) or silence, no end of stream.
fn still_open(s: &mut TcpStream) {
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => panic!("the server closed the publisher"),
            Ok(_) => continue,
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                    "{e}"
                );
                return;
            }
        }
    }
}

/// `rtmpkit probe URL --json --duration 2`, running; its report at the end.
struct Probe(Proc, std::path::PathBuf);

impl Probe {
    fn start(url: &str, dir: &Path) -> Probe {
        let out = dir.join(format!("probe-{}.json", free_port()));
        let p = Proc(
            rtmpkit()
                .args(["probe", url, "--json", "--duration", "2"])
                .stdout(std::fs::File::create(&out).unwrap())
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        );
        Probe(p, out)
    }

    fn report(mut self) -> serde_json::Value {
        assert!(
            self.0.wait_timeout(Duration::from_secs(15)).is_some(),
            "probe ends"
        );
        let r = serde_json::from_str(&std::fs::read_to_string(&self.1).unwrap()).unwrap();
        eprintln!("probe: {r}");
        r
    }
}

fn serve() -> Served {
    Served::start(&["-vv".into(), "--listen".into(), "127.0.0.1:0".into()])
}

/// A publisher that publishes on stream 1 and sends metadata and media on
/// message stream 0, with AMF3 and broken messages between them.
fn publisher_on_stream_0_with_amf3() {
    let s = serve();
    let port = s.plain.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("got.flv");
    let mut player = pull_to(&format!("rtmp://127.0.0.1:{port}/live/z"), &out, 20, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let (mut sock, mut enc) = publishing(port, "z");
    let t0 = Instant::now();
    for (i, t) in fixture_tags().iter().enumerate() {
        sleep_until(t0, t.timestamp.0);
        let p = if t.tag_type == 18 {
            let mut b = b"\x02\x00\x0d@setDataFrame".to_vec();
            b.extend_from_slice(&t.data);
            b
        } else {
            t.data.to_vec()
        };
        send(&mut sock, &mut enc, 0, t.timestamp.0, t.tag_type, &p);
        if i % 50 == 10 {
            // Type 15: the format byte, then AMF0 with an AMF3 object.
            let mut d = vec![0u8];
            let o = rtmpkit_proto::amf3::Amf3Object::anonymous()
                .with("text", Amf3Value::String("hi".into()));
            for v in [
                Amf0Value::from("onTextData"),
                Amf0Value::Avmplus(Amf3Value::Object(o)),
            ] {
                rtmpkit_proto::amf0::encode(&v, &mut d);
            }
            send(&mut sock, &mut enc, 1, t.timestamp.0, 15, &d);
            // Type 17: an unknown call with an AMF3 argument.
            let call = Message::Command {
                amf3: true,
                command: Command::new(
                    "setPeerInfo",
                    0.0,
                    Amf0Value::Null,
                    vec![Amf0Value::Avmplus(Amf3Value::Integer(5))],
                ),
            };
            send(&mut sock, &mut enc, 0, 0, 17, &call.payload());
            // Data that does not decode.
            send(
                &mut sock,
                &mut enc,
                1,
                0,
                18,
                b"\x02\x00\x04junk\x11\x0a\x07\x01",
            );
        }
    }
    still_open(&mut sock);
    drop(sock);
    assert!(player.wait_timeout(Duration::from_secs(10)).is_some());
    assert_eq!(av_tags(&out), av_tags(&fixture()), "every frame");
    assert!(s.wait_line("taken as the publishing stream 1's", Duration::from_secs(2)));
    assert!(s.wait_line("does not decode", Duration::from_secs(2)));
}

/// A server that plays the fixture as Node-Media-Server does: statuses on
/// the stream it created (1), metadata and media on message stream 0.
/// Serves every connection it gets, each in a thread.
fn stream_0_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming().take(20) {
            let Ok(conn) = conn else { continue };
            std::thread::spawn(move || {
                let _ = serve_stream_0(conn);
            });
        }
    });
    port
}

fn serve_stream_0(mut s: TcpStream) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut hs = ServerHandshake::new(0, 3);
    let mut c0c1 = vec![0u8; 1537];
    s.read_exact(&mut c0c1)?;
    hs.handle_input(&c0c1, 0).unwrap();
    s.write_all(&hs.take_output())?;
    let mut c2 = vec![0u8; 1536];
    s.read_exact(&mut c2)?;
    let mut dec = ChunkDecoder::new();
    let mut enc = ChunkEncoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        dec.push(&buf[..n]);
        while let Some(raw) = dec.next_message().unwrap() {
            let Ok(Message::Command { command, .. }) = Message::decode(raw.type_id, raw.payload)
            else {
                continue;
            };
            let tid = command.transaction_id;
            match command.name.as_str() {
                "connect" => {
                    send(&mut s, &mut enc, 0, 0, 1, &4096u32.to_be_bytes());
                    enc.set_chunk_size(4096).unwrap();
                    let info = StatusInfo::new("status", "NetConnection.Connect.Success", "ok");
                    let props = Amf0Object::new().with("fmsVer", "FMS/3,0,1,123");
                    let r = Command::result(tid, props.into(), info.to_object().into());
                    send(&mut s, &mut enc, 0, 0, 20, &Message::command(r).payload());
                }
                "createStream" => {
                    let r = Command::result(tid, Amf0Value::Null, 1.0.into());
                    send(&mut s, &mut enc, 0, 0, 20, &Message::command(r).payload());
                }
                "play" => {
                    play_on_stream_0(&mut s, &mut enc)?;
                    // Wait for the player to leave.
                    s.set_read_timeout(Some(Duration::from_secs(5)))?;
                    while s.read(&mut buf)? > 0 {}
                    return Ok(());
                }
                _ => {}
            }
        }
    }
}

fn play_on_stream_0(s: &mut TcpStream, enc: &mut ChunkEncoder) -> std::io::Result<()> {
    let status = |code: &str| {
        let c = Command::on_status(&StatusInfo::new("status", code, ""));
        Message::command(c).payload()
    };
    let begin = Message::UserControl(UserControl::StreamBegin(1)).payload();
    send(s, enc, 0, 0, 4, &begin);
    send(s, enc, 1, 0, 20, &status("NetStream.Play.Reset"));
    send(s, enc, 1, 0, 20, &status("NetStream.Play.Start"));
    let t0 = Instant::now();
    for t in fixture_tags() {
        sleep_until(t0, t.timestamp.0);
        let mut b = Vec::new();
        enc.encode(
            ChunkStreamId(if t.tag_type == 9 { 6 } else { 4 }),
            t.timestamp,
            t.tag_type,
            MessageStreamId(0),
            &t.data,
            &mut b,
        )
        .unwrap();
        s.write_all(&b)?;
    }
    let eof = Message::UserControl(UserControl::StreamEof(1)).payload();
    send(s, enc, 0, 0, 4, &eof);
    send(s, enc, 1, 0, 20, &status("NetStream.Play.UnpublishNotify"));
    Ok(())
}

/// `pull`, `probe`, `relay` and an edge's `--relay-pull` all read a server
/// that plays on message stream 0, and get every frame.
fn a_server_that_plays_on_stream_0() {
    let origin = stream_0_server();
    let src = format!("rtmp://127.0.0.1:{origin}/live/s");
    let dir = tempfile::tempdir().unwrap();
    // pull
    let direct = dir.path().join("direct.flv");
    let mut pull = pull_to(&src, &direct, 20, &[]);
    let probe = Probe::start(&src, dir.path());
    // relay into a server, and a player there
    let s = serve();
    let relayed = dir.path().join("relayed.flv");
    let dst = format!("rtmp://127.0.0.1:{}/live/r", s.plain.unwrap());
    let mut relayed_player = pull_to(&dst, &relayed, 20, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let mut relay = Proc(
        rtmpkit()
            .args(["-q", "relay", &src, &dst])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // an edge that pulls from it
    let edge = Served::start(&[
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--relay-pull".into(),
        format!("rtmp://127.0.0.1:{origin}"),
    ]);
    let at_edge = dir.path().join("edge.flv");
    let edge_url = format!("rtmp://127.0.0.1:{}/live/s", edge.plain.unwrap());
    let mut edge_player = pull_to(&edge_url, &at_edge, 20, &[]);

    let report = probe.report();
    assert_eq!(report["video"]["codec"], "h264");
    assert_eq!(report["audio"]["codec"], "aac");
    assert!(report["video"]["frames"].as_u64().unwrap() > 20);
    for p in [&mut pull, &mut relay, &mut relayed_player, &mut edge_player] {
        assert!(p.wait_timeout(Duration::from_secs(20)).is_some(), "ends");
    }
    let want = av_tags(&fixture());
    assert_eq!(av_tags(&direct), want, "pull got every frame");
    assert_eq!(av_tags(&relayed), want, "the relay passed every frame");
    assert_eq!(av_tags(&at_edge), want, "the edge's player got every frame");
}

/// OBS 29's announcement of its VOD track (plugins/obs-outputs/flv-mux.c,
/// flv_build_additional_meta_data), byte for byte.
const OBS29_ANNOUNCEMENT: &[u8] =
    include_bytes!("../../../tests/vectors/obs29-on-expect-additional-media.bin");

/// OBS 29's packet of the VOD track (flv_build_additional_audio):
/// `"additionalMedia" {id: "stream0", media: 0x11 <ByteArray>}`, the
/// ByteArray's U29 length written as OBS's s_u29b_value does.
fn obs29_packet(aac_tag_body: &[u8]) -> Vec<u8> {
    let mut b = b"\x02\x00\x0fadditionalMedia\x03\x00\x02id\x02\x00\x07stream0".to_vec();
    b.extend_from_slice(b"\x00\x05media\x11\x0c");
    let v = ((aac_tag_body.len() as u32) << 1) | 1;
    if v <= 0x7f {
        b.push(v as u8);
    } else if v <= 0x3fff {
        b.extend_from_slice(&[0x80 | (v >> 7) as u8, (v & 0x7f) as u8]);
    } else {
        b.extend_from_slice(&[
            0x80 | (v >> 14) as u8,
            0x80 | ((v >> 7) & 0x7f) as u8,
            (v & 0x7f) as u8,
        ]);
    }
    b.extend_from_slice(aac_tag_body);
    b.extend_from_slice(&[0, 0, 9]);
    b
}

fn media_tags(file: &Path) -> Vec<Media> {
    let mut r = FlvReader::new();
    r.push(&std::fs::read(file).unwrap());
    let mut v = Vec::new();
    while let Ok(Some(t)) = r.next_tag() {
        if let Some(k) = MediaKind::from_type_id(t.tag_type).filter(|k| *k != MediaKind::Metadata) {
            v.push(Media::new(k, t.timestamp, t.data));
        }
    }
    v
}

/// OBS 29 with its VOD track: the fixture's AAC goes out twice, as audio
/// and as the `additionalMedia` track.
fn obs29_vod_track_reaches_e_rtmp_players() {
    let Some(ffmpeg9) = ffmpeg9() else {
        panic!("FFmpeg 9 is needed (RTMPKIT_FFMPEG9)");
    };
    let s = serve();
    let port = s.plain.unwrap();
    let url = format!("rtmp://127.0.0.1:{port}/live/obs");
    let dir = tempfile::tempdir().unwrap();
    let (by9, legacy, ours, late) = (
        dir.path().join("ffmpeg9.flv"),
        dir.path().join("legacy.flv"),
        dir.path().join("ours.flv"),
        dir.path().join("late.flv"),
    );
    let mut players = vec![
        ffmpeg9_player(&url, &by9, "avc1,mp4a"),
        ffmpeg_player(&url, &legacy),
        pull_to(&url, &ours, 20, &[]),
    ];
    let probe = Probe::start(&url, dir.path());
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        obs29_packet(&[0xaf, 0, 0x12, 0x10]),
        include_bytes!("../../../tests/vectors/obs29-additional-media-aac-header.bin"),
        "the packets are OBS 29's"
    );
    let (mut sock, mut enc) = publishing(port, "obs");
    let tags = fixture_tags();
    let t0 = Instant::now();
    let mut vod_frames = 0;
    for t in &tags {
        sleep_until(t0, t.timestamp.0);
        if t.tag_type == 18 {
            let mut b = b"\x02\x00\x0d@setDataFrame".to_vec();
            b.extend_from_slice(&t.data);
            send(&mut sock, &mut enc, 1, 0, 18, &b);
            send(&mut sock, &mut enc, 1, 0, 18, OBS29_ANNOUNCEMENT);
            continue;
        }
        send(&mut sock, &mut enc, 1, t.timestamp.0, t.tag_type, &t.data);
        if t.tag_type == 8 {
            send(
                &mut sock,
                &mut enc,
                1,
                t.timestamp.0,
                18,
                &obs29_packet(&t.data),
            );
            vod_frames += 1;
        }
        if players.len() == 3 && t.timestamp.0 > 2500 {
            players.push(pull_to(&url, &late, 20, &[]));
        }
    }
    still_open(&mut sock);
    drop(sock);
    for p in &mut players {
        assert!(
            p.wait_timeout(Duration::from_secs(15)).is_some(),
            "player ends"
        );
    }
    let report = probe.report();
    assert_eq!(report["extra_tracks"][0]["kind"], "audio");
    assert_eq!(report["extra_tracks"][0]["id"], 1);
    assert_eq!(report["extra_tracks"][0]["codec"], "aac");

    // Track 1's sequence header and frames (FFmpeg 9's muxer adds a
    // MultichannelConfig packet of its own after the sequence header).
    let track1 = |f: &Path| {
        media_tags(f)
            .into_iter()
            .filter(|m| m.track == Some(1))
            .filter(|m| {
                AudioTagHeader::parse(&m.payload).is_ok_and(|h| h.coded || h.sequence_header)
            })
            .count()
    };
    let audio0 = |f: &Path| {
        media_tags(f)
            .into_iter()
            .filter(|m| m.kind == MediaKind::Audio && m.track.is_none())
            .count()
    };
    eprintln!(
        "VOD frames sent {vod_frames}; track 1 at FFmpeg 9 {}, at pull {}, at Debian's ffmpeg {}",
        track1(&by9),
        track1(&ours),
        track1(&legacy)
    );
    assert_eq!(track1(&by9), vod_frames, "FFmpeg 9 got every VOD frame");
    assert_eq!(track1(&ours), vod_frames, "pull got every VOD frame");
    assert_eq!(audio0(&by9), vod_frames, "and every main audio frame");
    // FFmpeg 9 reads what it wrote as two AAC tracks.
    let r = run(Cmd::new(&ffmpeg9)
        .args(["-hide_banner", "-i"])
        .arg(&by9)
        .args(["-map", "0", "-c", "copy", "-f", "null", "-"]));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.matches("Audio: aac").count() >= 2,
        "two AAC tracks: {err}"
    );
    // Debian's ffmpeg 5.1: track 0 only, every audio frame, no error.
    assert_eq!(track1(&legacy), 0);
    let p = packets(&legacy);
    assert_eq!(
        p.iter().filter(|x| x.0 == 'a').count() + 1,
        vod_frames,
        "legacy ffmpeg: every track-0 audio frame (the sequence header is not a packet)"
    );
    // A late joiner gets track 1's sequence header before its frames.
    let late_track1: Vec<Media> = media_tags(&late)
        .into_iter()
        .filter(|m| m.track == Some(1))
        .collect();
    assert!(late_track1.len() > 10);
    assert!(
        late_track1[0].sequence_header,
        "late joiner: track 1 config first"
    );
}

fn main() {
    run_interop(vec![
        interop(
            "publisher_on_stream_0_with_amf3",
            &[],
            publisher_on_stream_0_with_amf3,
        ),
        interop(
            "a_server_that_plays_on_stream_0",
            &[],
            a_server_that_plays_on_stream_0,
        ),
        interop(
            "node_media_server",
            &["node", node_media_server::NMS],
            node_media_server::node_media_server,
        ),
        interop(
            "obs29_vod_track_reaches_e_rtmp_players",
            &["ffmpeg", "ffprobe", FFMPEG9],
            obs29_vod_track_reaches_e_rtmp_players,
        ),
    ]);
}
