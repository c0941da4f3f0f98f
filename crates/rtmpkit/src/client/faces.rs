//! The two faces of the client core: [`PushSession`] publishes, and
//! [`PullSession`] plays (spec `client-session.md`, "one core, two
//! faces"). Both are a [`ClientHandle`] with their own writes or reads.

use super::congestion::{Congestion, Queued};
use super::feed::Feed;
use super::frames::Packagers;
use super::request::Request;
use super::{ClientHandle, ClientOptions};
use crate::error::Error;
use bytes::Bytes;
use rtmpkit_proto::amf0::Amf0Object;
use rtmpkit_proto::media::Media;
use rtmpkit_proto::session::ClientMode;
use rtmpkit_proto::{MediaKind, Timestamp};
use std::sync::Arc;

/// Publishes a live stream to a server.
///
/// ```no_run
/// # async fn f() -> Result<(), rtmpkit::Error> {
/// use rtmpkit::client::{ClientOptions, PushSession};
/// let push = PushSession::new("rtmp://127.0.0.1/live/test", ClientOptions::default())?;
/// push.start().await?;
/// push.write_video(0.into(), bytes::Bytes::from_static(&[0x17, 0, 0, 0, 0])).await?;
/// push.close().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PushSession {
    handle: ClientHandle,
    /// What the frame-level writes have sent (parameter sets, configs,
    /// the metadata said for the user).
    pub(super) frames: Arc<std::sync::Mutex<Packagers>>,
}

/// Plays a live stream from a server.
#[derive(Debug, Clone)]
pub struct PullSession {
    handle: ClientHandle,
}

impl std::ops::Deref for PushSession {
    type Target = ClientHandle;
    fn deref(&self) -> &ClientHandle {
        &self.handle
    }
}

impl std::ops::Deref for PullSession {
    type Target = ClientHandle;
    fn deref(&self) -> &ClientHandle {
        &self.handle
    }
}

impl PushSession {
    /// A session for `url`; nothing happens until [`ClientHandle::start`].
    /// A URL without an app or stream name is an error here.
    pub fn new(url: &str, options: ClientOptions) -> Result<Self, Error> {
        Ok(PushSession {
            handle: ClientHandle::new(ClientMode::Publish, url, options)?,
            frames: Arc::default(),
        })
    }

    /// `new` + `start`.
    pub async fn connect(url: &str, options: ClientOptions) -> Result<Self, Error> {
        let s = Self::new(url, options)?;
        s.start().await?;
        Ok(s)
    }

    /// Starts as [`ClientHandle::start`] does, with `feed` as the source of
    /// the media: the session task takes it straight from there.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) async fn start_fed(&self, feed: Box<dyn Feed>) -> Result<(), Error> {
        self.core.start(Some(feed)).await
    }

    /// Sends one media message (metadata goes out as `@setDataFrame`).
    ///
    /// With a [`DropPolicy`](super::DropPolicy) it goes into the session's
    /// send queue and the call returns at once (unless the queue is full);
    /// the policy may drop it. Without one, the call returns once the
    /// message was written (or taken into the `write_queue_size` queue).
    pub async fn write_media(&self, media: Media) -> Result<(), Error> {
        match &self.core.queue {
            Some(q) => self.core.enqueue(q, Queued::Media(media)).await,
            None => self.core.submit(|reply| Request::Media(media, reply)).await,
        }
    }

    /// Metadata, in order with the media.
    pub(super) async fn send_metadata(&self, metadata: Amf0Object) -> Result<(), Error> {
        match &self.core.queue {
            Some(q) => self.core.enqueue(q, Queued::Metadata(metadata)).await,
            None => {
                self.core
                    .submit(|reply| Request::Metadata(metadata, reply))
                    .await
            }
        }
    }

    /// Told whenever the [`CongestionLevel`](super::CongestionLevel) of
    /// the send queue changes, with the media time queued then: an
    /// encoder lowers its bitrate on
    /// [`Rising`](super::CongestionLevel::Rising) and raises it again
    /// after a while at [`Clear`](super::CongestionLevel::Clear). Without
    /// a [`DropPolicy`](super::DropPolicy) it stays `Clear`.
    pub fn congestion(&self) -> tokio::sync::watch::Receiver<Congestion> {
        match &self.core.queue {
            Some(q) => q.subscribe(),
            None => tokio::sync::watch::channel(Congestion::default()).1,
        }
    }

    /// Sends an FLV audio tag body.
    pub async fn write_audio(&self, timestamp: Timestamp, payload: Bytes) -> Result<(), Error> {
        self.write_media(Media::audio(timestamp, payload)).await
    }

    /// Sends an FLV video tag body.
    pub async fn write_video(&self, timestamp: Timestamp, payload: Bytes) -> Result<(), Error> {
        self.write_media(Media::video(timestamp, payload)).await
    }

    /// Sends an FLV script tag body (`onMetaData ...`) as metadata, bytes
    /// as they are.
    pub async fn write_script_tag(&self, body: Bytes) -> Result<(), Error> {
        self.user_metadata();
        self.write_media(Media::new(MediaKind::Metadata, Timestamp::ZERO, body))
            .await
    }

    /// Sends metadata as `@setDataFrame onMetaData`.
    pub async fn write_metadata(&self, metadata: Amf0Object) -> Result<(), Error> {
        self.user_metadata();
        self.send_metadata(metadata).await
    }

    /// Sends everything buffered.
    pub async fn flush(&self) -> Result<(), Error> {
        self.core.call(Request::Flush).await
    }
}

impl PullSession {
    /// A session for `url`; nothing happens until [`ClientHandle::start`].
    pub fn new(url: &str, options: ClientOptions) -> Result<Self, Error> {
        Ok(PullSession {
            handle: ClientHandle::new(ClientMode::Play, url, options)?,
        })
    }

    /// `new` + `start`.
    pub async fn connect(url: &str, options: ClientOptions) -> Result<Self, Error> {
        let s = Self::new(url, options)?;
        s.start().await?;
        Ok(s)
    }

    /// The next metadata / audio / video message in order; `None` once the
    /// session ended (see [`ClientHandle::wait`] for why).
    pub async fn next_message(&self) -> Option<Media> {
        self.core.media_rx.recv().await.ok()
    }
}
