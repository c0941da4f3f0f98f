//! What a publisher sends besides commands: media and data, and which of
//! the connection's streams it belongs to.

use super::{ServerEvent, ServerSide, SlotState};
use crate::chunk::RawMessage;
use crate::media::{
    ADDITIONAL_MEDIA, Media, MediaKind, ON_EXPECT_ADDITIONAL_MEDIA, additional_media_audio,
};
use crate::message::DataMessage;
use crate::session::link::Link;

impl ServerSide {
    /// The publishing stream a message sent on message stream `sid`
    /// belongs to: `sid` itself when it publishes; otherwise the
    /// connection's one publishing stream, when there is exactly one.
    /// Node-Media-Server's push relay sends its media on message stream
    /// 0 after publishing on stream 1, and nginx-rtmp takes it.
    pub(super) fn publishing_stream_for(
        &mut self,
        link: &mut Link<ServerEvent>,
        sid: u32,
    ) -> Option<u32> {
        if self.is_publishing(sid) {
            return Some(sid);
        }
        let mut publishing = self
            .streams
            .iter()
            .filter(|(_, s)| s.state == SlotState::Publishing)
            .map(|(&k, _)| k);
        let (Some(only), None) = (publishing.next(), publishing.next()) else {
            return None;
        };
        if !self.stray_noticed {
            self.stray_noticed = true;
            link.notice(format!(
                "media on message stream {sid} taken as the publishing stream {only}'s"
            ));
        }
        Some(only)
    }

    /// Audio or video: to the publishing stream it belongs to, or dropped
    /// (a publish still being authorized, or just ended), never fatal.
    pub(super) fn handle_media(
        &mut self,
        link: &mut Link<ServerEvent>,
        raw: RawMessage,
        kind: MediaKind,
    ) {
        let sid = raw.stream_id.0;
        match self.publishing_stream_for(link, sid) {
            Some(stream_id) => link.push_event(ServerEvent::Media {
                stream_id,
                media: Media::new(kind, raw.timestamp, raw.payload),
            }),
            None => link.notice(format!(
                "media on message stream {sid}, with nothing publishing, dropped"
            )),
        }
    }

    /// Data of a publisher: metadata (in AMF0 for players, whatever the
    /// publisher used), OBS's VOD track packets (as audio track 1), and
    /// anything else skipped with a notice.
    pub(super) fn handle_data(
        &mut self,
        link: &mut Link<ServerEvent>,
        raw: &RawMessage,
        amf3: bool,
        data: &DataMessage,
    ) {
        let Some(stream_id) = self.publishing_stream_for(link, raw.stream_id.0) else {
            link.notice(format!(
                "data message {:?} with nothing publishing, ignored",
                data.handler()
            ));
            return;
        };
        let media = if data.handler() == Some(ADDITIONAL_MEDIA) {
            match additional_media_audio(data) {
                Ok(p) => p.map(|p| Media::audio(raw.timestamp, p)),
                Err(e) => {
                    link.notice(format!("skipped a VOD track packet: {e}"));
                    None
                }
            }
        } else {
            data.player_metadata(amf3, &raw.payload)
                .map(|body| Media::metadata(raw.timestamp, body))
        };
        match media {
            Some(media) => link.push_event(ServerEvent::Media { stream_id, media }),
            None if data.values.get(1).and_then(|v| v.as_str())
                == Some(ON_EXPECT_ADDITIONAL_MEDIA) =>
            {
                link.notice(
                    "the publisher announced a VOD track (OBS additionalMedia); it goes to players as audio track 1"
                        .into(),
                );
            }
            None if data.handler() == Some(ADDITIONAL_MEDIA) => {}
            None => link.notice(format!("ignored data message {:?}", data.handler())),
        }
    }
}
