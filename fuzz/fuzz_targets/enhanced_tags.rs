//! Enhanced RTMP and legacy tag headers: arbitrary bytes. Parsers return,
//! and every track slice of a multitrack tag lies inside the input. One
//! track taken out of a message (a rendition) is no larger than the
//! message and a few header bytes. A frame-level player's view of it
//! (`media::frame`) lies inside it too, and its Annex B form parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmpkit_proto::media::{
    AudioTagHeader, ExHeader, Frame, VideoTagHeader, audio_rendition, frame, rendition,
};
use rtmpkit_proto::{Media, MediaKind, Timestamp};

fuzz_target!(|data: &[u8]| {
    for video in [true, false] {
        if let Ok(h) = ExHeader::parse(data, video) {
            let mut total = 0;
            for t in h.tracks(data).take(10_000) {
                match t {
                    Ok(t) => total += t.payload.len(),
                    Err(_) => break,
                }
            }
            assert!(total <= data.len());
        }
    }
    let _ = VideoTagHeader::parse(data);
    let _ = AudioTagHeader::parse(data);
    let bytes = bytes::Bytes::copy_from_slice(data);
    let video = Media::new(MediaKind::Video, Timestamp(0), bytes.clone());
    let audio = Media::new(MediaKind::Audio, Timestamp(0), bytes);
    for m in [&video, &audio] {
        match frame(m) {
            Some(Frame::Coded(f)) => {
                assert!(f.data.len() <= data.len());
                if let Some(au) = f.annex_b(None) {
                    assert!(au.len() <= data.len() * 2);
                }
            }
            Some(Frame::Config(c)) => {
                assert!(c.record.len() <= data.len());
                let sets: usize = c.parameter_sets.iter().map(|s| s.len()).sum();
                assert!(sets <= c.record.len());
            }
            None => {}
        }
    }
    for track in [0, 1, 2, 255] {
        for r in [
            rendition(&video, track),
            rendition(&audio, track),
            audio_rendition(&audio, track),
        ]
        .into_iter()
        .flatten()
        {
            assert!(r.payload.len() <= data.len() + 5);
        }
    }
});
