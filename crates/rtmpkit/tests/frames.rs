//! The frame-level push: an encoder's H.264 access units (Annex B) go in
//! with `write_h264`, and a player of our server gets the FLV tags the
//! same encoder's own FLV muxer wrote.

mod common;

use bytes::Bytes;
use common::{collect, sample_tags, start, tag_media};
use rtmpkit::proto::media::parse_avc_config;
use rtmpkit::server::ServerOptions;
use rtmpkit::{ClientOptions, MediaKind, PullSession, PushSession, Timestamp};

/// The length-prefixed NAL units of an FLV video tag's body.
fn nal_units(body: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = &body[5..];
    while rest.len() >= 4 {
        let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        out.push(&rest[4..4 + n]);
        rest = &rest[4 + n..];
    }
    out
}

#[tokio::test]
async fn annex_b_frames_arrive_as_the_encoders_flv_tags() {
    let tags = sample_tags();
    let video: Vec<_> = tags.iter().filter(|t| t.tag_type == 9).collect();
    let record = &video[0].data[5..];
    let sps_len = usize::from(u16::from_be_bytes([record[6], record[7]]));
    let sps = &record[8..8 + sps_len];
    let at = 8 + sps_len + 1;
    let pps_len = usize::from(u16::from_be_bytes([record[at], record[at + 1]]));
    let pps = &record[at + 2..at + 2 + pps_len];

    let srv = start(ServerOptions::default()).await;
    let pull = PullSession::connect(&srv.url("frames"), ClientOptions::default())
        .await
        .expect("play");
    let puller = tokio::spawn(async move { collect(&pull).await });
    let push = PushSession::connect(&srv.url("frames"), ClientOptions::default())
        .await
        .expect("publish");
    let mut sent_frames = Vec::new();
    for t in &tags {
        match t.tag_type {
            // Frames only: the packager makes the sequence header.
            9 if t.data[1] == 1 => {
                let key = t.data[0] >> 4 == 1;
                let cts = i32::from_be_bytes([t.data[2], t.data[3], t.data[4], 0]) >> 8;
                // Annex B, with the parameter sets before each keyframe.
                let mut au = Vec::new();
                let sets: &[&[u8]] = if key { &[sps, pps] } else { &[] };
                for n in sets.iter().copied().chain(nal_units(&t.data)) {
                    au.extend_from_slice(&[0, 0, 0, 1]);
                    au.extend_from_slice(n);
                }
                let pts = Timestamp((i64::from(t.timestamp.0) + i64::from(cts)) as u32);
                push.write_h264(pts, t.timestamp, &au).await.expect("frame");
                sent_frames.push((t.timestamp.0, t.data.clone()));
            }
            8 => push.write_media(tag_media(t)).await.expect("audio"),
            _ => {}
        }
    }
    push.close().await.expect("close");
    let got = puller.await.expect("pull");
    let seqs: Vec<_> = got
        .iter()
        .filter(|m| m.kind == MediaKind::Video && m.sequence_header)
        .collect();
    assert_eq!(seqs.len(), 1, "one sequence header");
    assert_eq!(
        parse_avc_config(&seqs[0].payload[5..]),
        parse_avc_config(record)
    );
    let frames: Vec<(u32, Bytes)> = got
        .iter()
        .filter(|m| m.kind == MediaKind::Video && !m.sequence_header)
        .map(|m| (m.timestamp.0, m.payload.clone()))
        .collect();
    assert_eq!(frames.len(), sent_frames.len());
    assert!(
        frames == sent_frames,
        "every frame, byte for byte as the encoder's FLV muxer wrote it"
    );
    let audio = got.iter().filter(|m| m.kind == MediaKind::Audio).count();
    assert_eq!(audio, tags.iter().filter(|t| t.tag_type == 8).count());
    srv.stop().await;
}

#[tokio::test]
async fn a_frame_before_any_parameter_set_is_refused_with_the_reason() {
    let srv = start(ServerOptions::default()).await;
    let push = PushSession::connect(&srv.url("early"), ClientOptions::default())
        .await
        .expect("publish");
    let e = push
        .write_h264(Timestamp(0), Timestamp(0), &[0, 0, 1, 0x65, 0x88, 0x84])
        .await
        .expect_err("no SPS yet");
    assert!(e.to_string().contains("SPS and PPS"), "{e}");
    // The session goes on.
    push.close().await.expect("close");
    srv.stop().await;
}

/// A push as a `Sink` and a pull as a `Stream` of frames: the fixture goes
/// in tag by tag with `SinkExt::send`, and comes out as decoder
/// configurations and access units with the fixture's pts and dts.
#[tokio::test]
async fn a_sink_in_and_a_frame_stream_out() {
    use futures_util::{SinkExt, StreamExt};
    use rtmpkit::proto::media::{Frame, FrameCodec};

    let tags = sample_tags();
    let srv = start(ServerOptions::default()).await;
    let pull = PullSession::connect(&srv.url("sink"), ClientOptions::default())
        .await
        .expect("play");
    let frames = tokio::spawn(async move { pull.frames().collect::<Vec<Frame>>().await });
    let push = PushSession::connect(&srv.url("sink"), ClientOptions::default())
        .await
        .expect("publish");
    let mut sink = push.sink();
    for t in tags.iter().filter(|t| t.tag_type != 18) {
        sink.send(tag_media(t)).await.expect("send");
    }
    sink.close().await.expect("close");
    let got = tokio::time::timeout(std::time::Duration::from_secs(15), frames)
        .await
        .expect("the stream ends with the session")
        .expect("join");

    let video: Vec<_> = tags
        .iter()
        .filter(|t| t.tag_type == 9 && t.data[1] == 1)
        .collect();
    let coded: Vec<_> = got
        .iter()
        .filter_map(|f| match f {
            Frame::Coded(c) if c.codec == FrameCodec::H264 => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(coded.len(), video.len(), "every video frame");
    for (c, t) in coded.iter().zip(&video) {
        let cts = i32::from_be_bytes([t.data[2], t.data[3], t.data[4], 0]) >> 8;
        assert_eq!(c.dts, t.timestamp.0);
        assert_eq!(c.pts, i64::from(t.timestamp.0) + i64::from(cts));
        assert_eq!(&c.data[..], &t.data[5..]);
    }
    let Some(Frame::Config(config)) = got
        .iter()
        .find(|f| matches!(f, Frame::Config(c) if c.codec == FrameCodec::H264))
    else {
        panic!("a decoder configuration")
    };
    let sps = &config.parameter_sets[0];
    assert_eq!(sps[0] & 0x1f, 7, "the SPS first");
    // A keyframe in Annex B carries the parameter sets, so a decoder can
    // start on it.
    let key = coded.iter().find(|c| c.keyframe).expect("a keyframe");
    let au = key.annex_b(Some(config)).expect("H.264");
    assert!(au.starts_with(&[0, 0, 0, 1]) && au[4..].starts_with(sps));
    let audio = got
        .iter()
        .filter(|f| matches!(f, Frame::Coded(c) if c.codec == FrameCodec::Aac))
        .count();
    assert_eq!(
        audio,
        tags.iter()
            .filter(|t| t.tag_type == 8 && t.data[1] == 1)
            .count()
    );
    srv.stop().await;
}
