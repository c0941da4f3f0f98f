//! [`Headers`]: what a push sent that a new connection must send again
//! (after a reconnect, or a move the server asked for) before its frames.

use rtmpkit_proto::Timestamp;
use rtmpkit_proto::amf0::Amf0Object;
use rtmpkit_proto::media::{Media, MediaKind};

/// What a push sent that a new connection must send again first.
#[derive(Debug, Default)]
pub(crate) struct Headers {
    pub metadata: Option<Amf0Object>,
    pub script: Option<Media>,
    pub video: Option<Media>,
    pub audio: Option<Media>,
    /// The latest audio and video timestamps written: resent headers carry
    /// their kind's, so no track steps back.
    last_audio: Option<Timestamp>,
    last_video: Option<Timestamp>,
}

impl Headers {
    /// `m` went out: its kind's latest timestamp.
    pub fn wrote(&mut self, m: &Media) {
        match m.kind {
            MediaKind::Audio => self.last_audio = Some(m.timestamp),
            MediaKind::Video => self.last_video = Some(m.timestamp),
            MediaKind::Metadata => {}
        }
    }

    /// `m` again, at its kind's latest timestamp.
    pub fn again(&self, m: &Media) -> Media {
        let ts = match m.kind {
            MediaKind::Audio => self.last_audio,
            MediaKind::Video => self.last_video,
            MediaKind::Metadata => self.last_audio.min(self.last_video),
        };
        let mut m = m.clone();
        if let Some(ts) = ts {
            m.timestamp = ts;
        }
        m
    }
}
