//! [`ClientHandler`]: a client session's application side on the driver.
//! Requests from the handles go in (and a fed push's media, taken
//! straight from its [`Feed`]), pulled media goes to the pull queue; it
//! keeps what a new connection needs after a reconnect (the headers a push
//! sent, the timeline a pull handed on).

use super::congestion::Queued;
use super::feed::{Fed, Feed};
use super::headers::Headers;
use super::request::{Reply, Request};
use super::{ClientCore, EndReason, Phase};
use crate::driver::{Connection, Flow, Handler, Staged, Transport};
use crate::error::{Error, Stage};
use rtmpkit_proto::Timestamp;
use rtmpkit_proto::media::{Media, MediaKind};
use rtmpkit_proto::session::{ClientEvent, ClientMode, ClientSession, ClientSide};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// Why the application side wakes the driver.
pub(crate) enum Signal {
    Request(Option<Request>),
    /// The feed has media due.
    Fed,
    /// A push with a drop policy has media in its send queue.
    Queued,
    Disposed,
}

/// What becomes of a push's media message.
enum Verdict {
    /// It goes out now.
    Send(Media, Option<Reply>),
    /// Held back (non-key video after a reconnect); its writer was answered.
    Held,
    /// A move the server asked for happens here: this connection stops.
    Move,
}

/// Bytes a push with a drop policy takes from its send queue at a time.
const SEND_SLICE: usize = 16 * 1024;

/// Longest a push asked to move keeps streaming here, waiting for a keyframe.
const MOVE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) struct ClientHandler {
    pub core: Arc<ClientCore>,
    requests: mpsc::Receiver<Request>,
    /// A fed push's source, and what it gave that is still to be sent (a
    /// move leaves the rest of a batch for the next connection).
    feed: Option<Box<dyn Feed>>,
    fed: VecDeque<Fed>,
    /// Answered once publish / play first started (or the start failed).
    pub started: Option<oneshot::Sender<Result<(), Error>>>,
    pub dispose: watch::Receiver<bool>,
    /// Whether the current connection has yet to start publish / play.
    pub starting: bool,
    /// When it must have started (none without a start timeout).
    pub start_deadline: Option<Instant>,
    /// Whether publish / play ever started (a break after it may reconnect).
    pub ever_started: bool,
    headers: Headers,
    /// After a reconnect, a push holds non-key video back until a keyframe.
    await_keyframe: bool,
    /// When media last went out (push) or came in (pull).
    last_media: Option<Instant>,
    /// Set by a break: the first media after the reconnect measures the gap.
    pub gap_from: Option<Instant>,
    /// Pull: added to incoming timestamps so they never go back after a
    /// reconnect; `rebase` sets it on the first media.
    ts_offset: u32,
    rebase: bool,
    last_pulled: Option<u32>,
    pulled_video: bool,
    /// Set by a reconnect request the session acts on: where to go
    /// (`None` inside: the same server).
    pub move_to: Option<Option<String>>,
    /// A push asked to move goes on here up to the next keyframe, which
    /// then opens the stream on the new server.
    moving: Option<(Option<String>, Instant)>,
    /// That keyframe (and its writer's reply), sent first after the move.
    carried: Option<(Media, Option<Reply>)>,
}

impl ClientHandler {
    pub fn new(
        core: Arc<ClientCore>,
        requests: mpsc::Receiver<Request>,
        started: oneshot::Sender<Result<(), Error>>,
        feed: Option<Box<dyn Feed>>,
    ) -> Self {
        let dispose = core.dispose_tx.subscribe();
        ClientHandler {
            core,
            requests,
            feed,
            fed: VecDeque::new(),
            started: Some(started),
            dispose,
            starting: true,
            start_deadline: None,
            ever_started: false,
            headers: Headers::default(),
            await_keyframe: false,
            last_media: None,
            gap_from: None,
            ts_offset: 0,
            rebase: false,
            last_pulled: None,
            pulled_video: false,
            move_to: None,
            moving: None,
            carried: None,
        }
    }

    /// A break happened: the next start is a reconnect.
    pub fn on_break(&mut self) {
        if self.gap_from.is_none() {
            self.gap_from = Some(self.last_media.unwrap_or_else(Instant::now));
        }
    }

    fn record_gap(&mut self, now: Instant) {
        if let Some(from) = self.gap_from.take() {
            let ms = now.duration_since(from).as_millis() as u64;
            self.core.last_gap_ms.store(ms, Ordering::Relaxed);
            warn!(gap_ms = ms, "media flows again after the reconnect");
        }
    }

    /// Carries out one write-type command and answers it after the bytes
    /// were written (or buffered, with a write buffer).
    ///
    /// A message the core refuses (too big, wrong state) fails only that
    /// message. A transport that fails ends the connection: with a
    /// reconnect policy the caller is told the message was taken (it is
    /// lost in the break, like every message sent while the link was
    /// down) and the session connects again; without one the caller gets
    /// the error too.
    async fn write<T: Transport>(
        &self,
        conn: &mut Connection<T, ClientSide>,
        queue: impl FnOnce(&mut ClientSession) -> Result<(), rtmpkit_proto::Error>,
        reply: Option<Reply>,
    ) -> Result<Flow<EndReason>, Error> {
        let r = match queue(conn.session_mut()) {
            Ok(()) => conn.write_due().await,
            Err(e) => Err(Error::from_core(Stage::Streaming, conn.peer(), e)),
        };
        match r {
            Ok(()) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(()));
                }
                Ok(Flow::Continue)
            }
            Err(e @ Error::Protocol { .. }) => {
                match reply {
                    Some(reply) => {
                        let _ = reply.send(Err(e));
                    }
                    None => warn!("dropped a message: {e}"),
                }
                Ok(Flow::Continue)
            }
            Err(e) => {
                if let Some(reply) = reply {
                    let answer = match self.core.opts.reconnect {
                        Some(_) => Ok(()),
                        None => Err(e.clone()),
                    };
                    let _ = reply.send(answer);
                }
                Err(e)
            }
        }
    }

    /// A push's media, written and answered.
    async fn write_media<T: Transport>(
        &mut self,
        conn: &mut Connection<T, ClientSide>,
        m: Media,
        reply: Option<Reply>,
    ) -> Result<Flow<EndReason>, Error> {
        match self.judge_media(conn.session_mut(), m, reply) {
            Verdict::Send(m, reply) => self.write(conn, |s| s.send_media(&m), reply).await,
            Verdict::Held => Ok(Flow::Continue),
            Verdict::Move => Ok(Flow::Stop(EndReason::Closed)),
        }
    }

    /// A push with a drop policy: the next items of its send queue (about
    /// [`SEND_SLICE`] bytes, so that the policy decides on the rest as
    /// late as it can) go into the session and are written.
    async fn send_queued<T: Transport>(
        &mut self,
        conn: &mut Connection<T, ClientSide>,
    ) -> Result<Flow<EndReason>, Error> {
        let Some(queue) = self.core.queue.clone() else {
            return Ok(Flow::Continue);
        };
        let mut items = Vec::new();
        queue.take(SEND_SLICE, &mut items);
        let mut items = items.into_iter();
        while let Some(item) = items.next() {
            let m = match item {
                Queued::Metadata(obj) => {
                    self.headers.metadata = Some(obj.clone());
                    if let Err(e) = conn.session_mut().send_metadata(obj) {
                        warn!("metadata not sent: {e}");
                    }
                    continue;
                }
                Queued::Media(m) => m,
            };
            match self.judge_media(conn.session_mut(), m, None) {
                Verdict::Send(m, _) => match conn.session_mut().send_media(&m) {
                    Ok(()) => {
                        let end = self.core.io.written.load(Ordering::Relaxed)
                            + conn.session().pending_output() as u64;
                        queue.written(&m, end);
                    }
                    Err(e) => warn!("dropped a message: {e}"),
                },
                Verdict::Held => {}
                Verdict::Move => {
                    // The rest goes to the next server.
                    queue.put_back(items.collect());
                    return Ok(Flow::Stop(EndReason::Closed));
                }
            }
        }
        conn.write_due().await?;
        Ok(Flow::Continue)
    }

    /// Sends everything in the send queue (a close or flush loses nothing).
    async fn drain_queue<T: Transport>(
        &mut self,
        conn: &mut Connection<T, ClientSide>,
    ) -> Result<Flow<EndReason>, Error> {
        while self.core.queue.as_ref().is_some_and(|q| q.has_queued()) {
            if let Flow::Stop(r) = self.send_queued(conn).await? {
                return Ok(Flow::Stop(r));
            }
        }
        Ok(Flow::Continue)
    }

    /// A fed push: everything due goes into the session at once; the
    /// driver writes it in one go.
    fn take_fed(&mut self, session: &mut ClientSession) -> Flow<EndReason> {
        if let Some(feed) = self.feed.as_mut() {
            feed.take(&mut self.fed);
        }
        while let Some(item) = self.fed.pop_front() {
            let m = match item {
                Fed::Media(m) => m,
                Fed::End => {
                    info!("the source ended: closing");
                    session.close();
                    return Flow::Stop(EndReason::Closed);
                }
            };
            match self.judge_media(session, m, None) {
                Verdict::Send(m, _) => {
                    if let Err(e) = session.send_media(&m) {
                        warn!("dropped a message: {e}");
                    }
                }
                Verdict::Held => {}
                Verdict::Move => return Flow::Stop(EndReason::Closed),
            }
        }
        Flow::Continue
    }

    /// A push's media: remembered if a new connection needs it again;
    /// held back after a reconnect until a keyframe; where a move the
    /// server asked for happens.
    fn judge_media(
        &mut self,
        session: &mut ClientSession,
        m: Media,
        reply: Option<Reply>,
    ) -> Verdict {
        let h = &mut self.headers;
        if m.kind == MediaKind::Metadata {
            h.script = Some(m.clone());
        } else if m.sequence_header {
            let slot = if m.kind == MediaKind::Video {
                &mut h.video
            } else {
                &mut h.audio
            };
            *slot = Some(m.clone());
        } else {
            if let Some((_, since)) = &self.moving
                && (m.keyframe || since.elapsed() >= MOVE_WAIT)
                && let Some((tc_url, _)) = self.moving.take()
            {
                // The media boundary: leave here, open there with this
                // keyframe (a stream without one soon moves anyway and
                // waits for its next keyframe there).
                if m.keyframe {
                    self.carried = Some((m, reply));
                } else if let Some(reply) = reply {
                    let _ = reply.send(Ok(()));
                }
                self.move_to = Some(tc_url);
                session.close();
                return Verdict::Move;
            }
            h.wrote(&m);
            if self.await_keyframe && m.kind == MediaKind::Video {
                if !m.keyframe {
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(()));
                    }
                    return Verdict::Held;
                }
                self.await_keyframe = false;
            }
            // The gap is measured on video when there is video.
            if m.kind == MediaKind::Video || self.headers.video.is_none() {
                let now = Instant::now();
                self.last_media = Some(now);
                self.record_gap(now);
            }
        }
        Verdict::Send(m, reply)
    }

    /// A reconnected push: metadata and sequence headers again, at the
    /// latest timestamps, then frames from the next keyframe.
    fn resend_headers(&mut self, session: &mut ClientSession, peer: &str) {
        let h = &self.headers;
        let mut sent = Ok(());
        if let Some(obj) = &h.metadata {
            sent = sent.and(session.send_metadata(obj.clone()));
        }
        for m in [&h.script, &h.video, &h.audio].into_iter().flatten() {
            sent = sent.and(session.send_media(&h.again(m)));
        }
        if let Err(e) = sent {
            warn!("headers not sent again: {e}");
        }
        self.await_keyframe = true;
        // A move at a keyframe: that keyframe opens the stream here.
        if let Some((m, reply)) = self.carried.take() {
            let r = session
                .send_media(&m)
                .map_err(|e| Error::from_core(Stage::Streaming, peer, e));
            self.await_keyframe = false;
            self.headers.wrote(&m);
            let now = Instant::now();
            self.last_media = Some(now);
            self.record_gap(now);
            if let Some(reply) = reply {
                let _ = reply.send(r);
            }
        }
    }

    /// Pulled media, on a timeline that does not go back after a reconnect.
    fn place_pulled(&mut self, mut m: Media) -> Media {
        let ts = m.timestamp.0;
        if self.rebase && m.kind != MediaKind::Metadata {
            self.rebase = false;
            self.ts_offset = match self.last_pulled {
                Some(last) if ts < last => last - ts + 1,
                _ => 0,
            };
        }
        let placed = ts.wrapping_add(self.ts_offset);
        if m.kind != MediaKind::Metadata {
            self.last_pulled = Some(placed);
            // The gap is measured on video when there is video.
            self.pulled_video |= m.kind == MediaKind::Video;
            if m.kind == MediaKind::Video || !self.pulled_video {
                let now = Instant::now();
                self.last_media = Some(now);
                self.record_gap(now);
            }
        }
        m.timestamp = Timestamp(placed);
        m
    }
}

impl<T: Transport> Handler<T, ClientSide> for ClientHandler {
    type Signal = Signal;
    type Stop = EndReason;

    fn signal(&mut self) -> impl Future<Output = Signal> + Send {
        // Requests wait while a (re)connection starts: media cannot go out
        // before publish started.
        let starting = self.starting;
        let left_over = !self.fed.is_empty();
        let due = self.feed.as_deref().map(|f| f.due());
        let queue = self.core.queue.clone();
        let waiting = queue.as_ref().is_some_and(|q| q.has_queued());
        let (requests, dispose) = (&mut self.requests, &mut self.dispose);
        async move {
            let queued = async move {
                match &queue {
                    _ if waiting => {}
                    Some(q) => q.ready.notified().await,
                    None => std::future::pending().await,
                }
            };
            let fed = async move {
                match due {
                    _ if left_over => {}
                    Some(due) => due.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                c = requests.recv(), if !starting => Signal::Request(c),
                _ = fed, if !starting => Signal::Fed,
                _ = queued, if !starting => Signal::Queued,
                _ = crate::sync::raised(dispose) => Signal::Disposed,
            }
        }
    }

    async fn on_signal(
        &mut self,
        conn: &mut Connection<T, ClientSide>,
        signal: Signal,
    ) -> Result<Flow<EndReason>, Error> {
        let cmd = match signal {
            Signal::Disposed => return Ok(Flow::Stop(EndReason::Disposed)),
            // The core holds a sender for the session's whole life.
            Signal::Request(None) => return Ok(Flow::Continue),
            Signal::Request(Some(c)) => c,
            Signal::Fed => return Ok(self.take_fed(conn.session_mut())),
            Signal::Queued => return self.send_queued(conn).await,
        };
        match cmd {
            Request::Media(m, reply) => self.write_media(conn, m, reply).await,
            Request::Metadata(m, reply) => {
                self.headers.metadata = Some(m.clone());
                self.write(conn, |s| s.send_metadata(m), reply).await
            }
            Request::Flush(reply) => {
                if let Flow::Stop(r) = self.drain_queue(conn).await? {
                    let _ = reply.send(Ok(()));
                    return Ok(Flow::Stop(r));
                }
                let _ = reply.send(conn.flush().await);
                Ok(Flow::Continue)
            }
            Request::Close(reply) => {
                // Nothing queued is lost to a clean close.
                if let Flow::Stop(r) = self.drain_queue(conn).await? {
                    let _ = reply.send(Ok(()));
                    return Ok(Flow::Stop(r));
                }
                conn.session_mut().close();
                let r = conn.flush().await;
                let _ = reply.send(r);
                Ok(Flow::Stop(EndReason::Closed))
            }
        }
    }

    async fn on_events(
        &mut self,
        conn: &mut Connection<T, ClientSide>,
    ) -> Result<Flow<EndReason>, Error> {
        while let Some(ev) = conn.session_mut().poll_event() {
            match ev {
                ClientEvent::PublishStarted | ClientEvent::PlayStarted => {
                    self.starting = false;
                    // A move that a break overtook is over.
                    self.moving = None;
                    self.core.set_phase(Phase::Running);
                    if self.ever_started {
                        let n = self.core.reconnects.fetch_add(1, Ordering::Relaxed) + 1;
                        warn!(reconnects = n, "started again after a reconnect");
                        match self.core.mode {
                            ClientMode::Publish => {
                                let peer = conn.peer().to_owned();
                                self.resend_headers(conn.session_mut(), &peer);
                            }
                            ClientMode::Play => self.rebase = true,
                        }
                    } else {
                        info!("started");
                    }
                    self.ever_started = true;
                    if self.core.opts.complex_handshake {
                        debug!(
                            verified = conn.session().server_digest_verified(),
                            "server digest"
                        );
                    }
                    if let Some(tx) = self.started.take() {
                        let _ = tx.send(Ok(()));
                    }
                }
                ClientEvent::Media(m) => {
                    let m = self.place_pulled(m);
                    // A bounded queue: a slow consumer slows the reading of
                    // the socket, but dispose still gets through. Waiting
                    // (and watching for dispose) only when the queue is full.
                    let Err(async_channel::TrySendError::Full(m)) = self.core.media_tx.try_send(m)
                    else {
                        continue;
                    };
                    tokio::select! {
                        _ = self.core.media_tx.send(m) => {}
                        _ = crate::sync::raised(&mut self.dispose) => return Ok(Flow::Stop(EndReason::Disposed)),
                    }
                }
                ClientEvent::StreamEnded(why) => {
                    info!(?why, "stream ended");
                    return Ok(Flow::Stop(EndReason::StreamEnded(why)));
                }
                ClientEvent::ReconnectRequested { tc_url }
                    if self.core.opts.reconnect.is_some() =>
                {
                    warn!(?tc_url, "reconnect requested by the server");
                    if self.core.mode == ClientMode::Publish && self.headers.video.is_some() {
                        // Up to the next keyframe here (E-RTMP: "the next
                        // media boundary"), then there.
                        self.moving = Some((tc_url, Instant::now()));
                        continue;
                    }
                    // Leave this server cleanly; the task dials the next
                    // one at once, and the stream goes on there.
                    self.move_to = Some(tc_url);
                    conn.session_mut().close();
                    return Ok(Flow::Stop(EndReason::Closed));
                }
                ClientEvent::Status(s) => {
                    info!(code = %s.code, description = %s.description, "status");
                }
                ClientEvent::Notice(n) => debug!("{n}"),
                other => debug!(?other, "event"),
            }
        }
        Ok(Flow::Continue)
    }

    fn deadline(&self, conn: &Connection<T, ClientSide>) -> Option<Instant> {
        if self.starting {
            return self.start_deadline;
        }
        let rt = self.core.opts.read_timeout;
        (!rt.is_zero()).then(|| conn.last_input() + rt)
    }

    fn on_deadline(
        &mut self,
        conn: &mut Connection<T, ClientSide>,
    ) -> Result<Flow<EndReason>, Error> {
        if self.starting {
            return Err(Error::Timeout {
                stage: conn.session().stage(),
                peer: conn.peer().to_owned(),
                after: self.core.opts.timeout,
            });
        }
        Ok(Flow::Stop(EndReason::ReadTimeout))
    }
}
