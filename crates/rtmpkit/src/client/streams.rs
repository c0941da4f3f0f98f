//! The sessions as the async ecosystem's traits: a [`PushSession`] as a
//! `futures::Sink<Media>` ([`MediaSink`]), a [`PullSession`] as a
//! `futures::Stream` of messages ([`MediaStream`]) or of frames
//! ([`FrameStream`]), so that they compose with other async code
//! (`StreamExt::forward` relays a pull into a push).

use super::faces::{PullSession, PushSession};
use crate::error::Error;
use futures_core::Stream;
use futures_sink::Sink;
use rtmpkit_proto::media::{Frame, Media, frame};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

type Step = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

/// A [`PushSession`] as a `Sink<Media>`: `start_send` writes one message
/// ([`PushSession::write_media`]), `poll_flush` sends what is buffered,
/// `poll_close` closes the session cleanly.
pub struct MediaSink {
    session: PushSession,
    /// The write, flush or close under way.
    step: Option<(Kind, Step)>,
}

/// What a [`MediaSink`]'s step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Write,
    Flush,
    Close,
}

impl std::fmt::Debug for MediaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSink")
            .field("session", &self.session.unique_key())
            .field("busy", &self.step.is_some())
            .finish()
    }
}

impl MediaSink {
    /// Drives the step under way to its end; says what it was.
    fn finish_step(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Kind>, Error>> {
        let Some((kind, step)) = self.step.as_mut() else {
            return Poll::Ready(Ok(None));
        };
        let kind = *kind;
        let r = ready!(step.as_mut().poll(cx));
        self.step = None;
        Poll::Ready(r.map(|()| Some(kind)))
    }

    /// Finishes what is under way, then does `kind` (unless that was it).
    fn then(
        &mut self,
        cx: &mut Context<'_>,
        kind: Kind,
        make: impl FnOnce(PushSession) -> Step,
    ) -> Poll<Result<(), Error>> {
        if ready!(self.finish_step(cx))? == Some(kind) {
            return Poll::Ready(Ok(()));
        }
        self.step = Some((kind, make(self.session.clone())));
        ready!(self.finish_step(cx))?;
        Poll::Ready(Ok(()))
    }
}

impl Sink<Media> for MediaSink {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().finish_step(cx).map_ok(drop)
    }

    fn start_send(self: Pin<&mut Self>, item: Media) -> Result<(), Error> {
        let me = self.get_mut();
        let session = me.session.clone();
        let write: Step = Box::pin(async move { session.write_media(item).await });
        me.step = Some((Kind::Write, write));
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().then(cx, Kind::Flush, |s| {
            Box::pin(async move { s.flush().await })
        })
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().then(cx, Kind::Close, |s| {
            Box::pin(async move { s.close().await })
        })
    }
}

/// A [`PullSession`]'s messages as a `Stream`; it ends when the session
/// does ([`ClientHandle::wait`](super::ClientHandle::wait) says why).
#[derive(Debug)]
pub struct MediaStream {
    rx: Pin<Box<async_channel::Receiver<Media>>>,
}

impl Stream for MediaStream {
    type Item = Media;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Media>> {
        self.get_mut().rx.as_mut().poll_next(cx)
    }
}

/// A [`PullSession`]'s audio and video as a `Stream` of [`Frame`]s:
/// decoder configurations and coded frames (`media::frame`); metadata and
/// what does not parse is left out.
#[derive(Debug)]
pub struct FrameStream {
    rx: Pin<Box<async_channel::Receiver<Media>>>,
}

impl Stream for FrameStream {
    type Item = Frame;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        let rx = &mut self.get_mut().rx;
        loop {
            match ready!(rx.as_mut().poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(m) => {
                    if let Some(f) = frame(&m) {
                        return Poll::Ready(Some(f));
                    }
                }
            }
        }
    }
}

impl PushSession {
    /// This session as a `futures::Sink<Media>`.
    pub fn sink(&self) -> MediaSink {
        MediaSink {
            session: self.clone(),
            step: None,
        }
    }
}

impl PullSession {
    /// This session's messages as a `futures::Stream` (what
    /// [`PullSession::next_message`] gives, in the same order; use one or
    /// the other).
    pub fn stream(&self) -> MediaStream {
        MediaStream {
            rx: Box::pin(self.core.media_rx.clone()),
        }
    }

    /// This session's frames as a `futures::Stream`.
    pub fn frames(&self) -> FrameStream {
        FrameStream {
            rx: Box::pin(self.core.media_rx.clone()),
        }
    }

    /// The next decoder configuration or coded frame, as a decoder wants
    /// it (`media::frame`: the parameter sets or AudioSpecificConfig; the
    /// access unit with its pts and dts, which
    /// [`CodedFrame::annex_b`](rtmpkit_proto::media::CodedFrame::annex_b)
    /// gives in Annex B); `None` once the session ended.
    pub async fn next_frame(&self) -> Option<Frame> {
        loop {
            if let Some(f) = frame(&self.next_message().await?) {
                return Some(f);
            }
        }
    }
}
