//! The client side: connect → createStream → publish or play.

use super::conn::{Conn, media_csid, typed, unexpected};
use crate::Timestamp;
use crate::amf0::Amf0Object;
use crate::chunk::{ChunkStreamId, DecoderLimits, RawMessage};
use crate::error::{Error, Result};
use crate::handshake::{ClientHandshake, HandshakeKind};
use crate::message::{
    Command, DataMessage, Message, StatusInfo, UserControl, split_aggregate, status, type_id,
};
use crate::url::RtmpUrl;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// Whether the client publishes or plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMode {
    /// Send a stream to the server (push).
    Publish,
    /// Receive a stream from the server (pull).
    Play,
}

/// What a client session asks for, and how.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Publish or play.
    pub mode: ClientMode,
    /// The `app` of connect.
    pub app: String,
    /// The `tcUrl` of connect.
    pub tc_url: String,
    /// The name given to publish / play (stream name with the raw query).
    pub stream: String,
    /// Simple or digest handshake.
    pub handshake: HandshakeKind,
    /// Our outgoing chunk size, announced right after the handshake (4096 like
    /// lal, OBS and nginx-rtmp; some servers assume a command fits one chunk).
    pub chunk_size: u32,
    /// `flashVer` of connect.
    pub flash_ver: String,
    /// The publishing type: "live", "record" or "append".
    pub publish_type: String,
    /// Buffer length announced after play (Set Buffer Length), in ms.
    pub buffer_length_ms: u32,
    /// Chunk decoder limits.
    pub limits: DecoderLimits,
}

impl ClientConfig {
    fn from_url(mode: ClientMode, url: &RtmpUrl) -> Self {
        ClientConfig {
            mode,
            app: url.app.clone(),
            tc_url: url.tc_url(),
            stream: url.stream_with_query(),
            handshake: HandshakeKind::Simple,
            chunk_size: 4096,
            flash_ver: match mode {
                ClientMode::Publish => concat!(
                    "FMLE/3.0 (compatible; rtmpkit/",
                    env!("CARGO_PKG_VERSION"),
                    ")"
                )
                .into(),
                ClientMode::Play => "LNX 9,0,124,2".into(),
            },
            publish_type: "live".into(),
            buffer_length_ms: 3000,
            limits: DecoderLimits::default(),
        }
    }

    /// Settings to publish to `url`.
    pub fn publish(url: &RtmpUrl) -> Self {
        Self::from_url(ClientMode::Publish, url)
    }

    /// Settings to play `url`.
    pub fn play(url: &RtmpUrl) -> Self {
        Self::from_url(ClientMode::Play, url)
    }
}

/// Why a played stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// User Control StreamEOF.
    Eof,
    /// `NetStream.Play.UnpublishNotify`: the publisher left.
    UnpublishNotify,
    /// `NetStream.Play.Stop` or `NetStream.Play.Complete`.
    Stopped,
}

/// What a client session reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// connect succeeded.
    Connected,
    /// createStream answered with this stream id.
    StreamCreated {
        /// The message stream id.
        stream_id: u32,
    },
    /// `NetStream.Publish.Start`: media may be sent.
    PublishStarted,
    /// `NetStream.Play.Start`: media will arrive.
    PlayStarted,
    /// Another `onStatus` (warnings, notifications).
    Status(StatusInfo),
    /// Metadata (`onMetaData`) of the played stream.
    Metadata {
        /// Timestamp.
        timestamp: Timestamp,
        /// The data message (without `@setDataFrame`).
        data: DataMessage,
    },
    /// An audio message of the played stream.
    Audio {
        /// Timestamp.
        timestamp: Timestamp,
        /// FLV audio tag body.
        payload: Bytes,
    },
    /// A video message of the played stream.
    Video {
        /// Timestamp.
        timestamp: Timestamp,
        /// FLV video tag body.
        payload: Bytes,
    },
    /// The played stream ended; the connection stays open.
    StreamEnded(StreamEnd),
    /// Something unusual but harmless, worth a log line.
    Notice(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Connect,
    CreateStream,
    ReleaseStream,
    FcPublish,
    CheckBw,
}

/// What the session waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// S0/S1/S2.
    ExpectHandshake,
    /// `_result` of connect.
    ExpectConnectResult,
    /// `_result` of createStream.
    ExpectCreateStreamResult,
    /// `NetStream.Publish.Start` / `NetStream.Play.Start`.
    ExpectStart,
    /// Publishing or playing.
    Started,
    /// Closed by [`ClientSession::close`] or a fatal error.
    Closed,
}

/// The client session state machine.
///
/// ```
/// use rtmpkit_proto::session::{ClientConfig, ClientSession};
/// use rtmpkit_proto::url::RtmpUrl;
/// let url = RtmpUrl::parse("rtmp://127.0.0.1/live/test").unwrap();
/// let mut s = ClientSession::new(ClientConfig::publish(&url), std::time::Instant::now(), 42);
/// let c0c1 = s.poll_transmit().unwrap();
/// assert_eq!(c0c1.len(), 1537);
/// ```
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    conn: Conn,
    handshake: Option<ClientHandshake>,
    state: ClientState,
    started_at: Instant,
    next_tid: u32,
    pending: HashMap<u32, Pending>,
    stream_id: Option<u32>,
    events: VecDeque<ClientEvent>,
    notices: u32,
    /// Whether StreamEnded was reported since the stream last (re)started.
    ended: bool,
    server_digest_verified: bool,
}

const MAX_NOTICES: u32 = 32;

impl ClientSession {
    /// Starts a session: C0+C1 are queued at once. `seed` feeds the
    /// handshake's random bytes.
    pub fn new(config: ClientConfig, now: Instant, seed: u64) -> Self {
        let mut conn = Conn::new(config.limits);
        let mut hs = ClientHandshake::new(config.handshake, 0, seed);
        conn.queue_raw(&hs.take_output());
        ClientSession {
            config,
            conn,
            handshake: Some(hs),
            state: ClientState::ExpectHandshake,
            started_at: now,
            next_tid: 1,
            pending: HashMap::new(),
            stream_id: None,
            events: VecDeque::new(),
            notices: 0,
            ended: false,
            server_digest_verified: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// What the session waits for now.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// Whether publish / play has started.
    pub fn is_started(&self) -> bool {
        self.state == ClientState::Started
    }

    /// The message stream id from createStream.
    pub fn stream_id(&self) -> Option<u32> {
        self.stream_id
    }

    /// Total bytes received (handshake included).
    pub fn bytes_received(&self) -> u64 {
        self.conn.received
    }

    /// Total bytes queued for sending (handshake included).
    pub fn bytes_sent(&self) -> u64 {
        self.conn.sent
    }

    /// Acknowledgements we sent.
    pub fn acks_sent(&self) -> u64 {
        self.conn.acks_sent
    }

    /// The last acknowledgement sequence number the server sent.
    pub fn peer_acked(&self) -> u32 {
        self.conn.peer_acked
    }

    /// Moves everything queued into `dst`, in order, for one vectored write.
    pub fn take_output(&mut self, dst: &mut Vec<Bytes>) {
        self.conn.take_output(dst);
    }

    /// Bytes queued and not yet taken by [`ClientSession::poll_transmit`].
    pub fn pending_output(&self) -> usize {
        self.conn.pending_output()
    }

    /// Whether the server's digest verified (digest handshake only).
    pub fn server_digest_verified(&self) -> bool {
        self.server_digest_verified
    }

    /// Bytes to send now.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.conn.poll_transmit()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    fn millis(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.started_at).as_millis() as u32
    }

    fn tid(&mut self, p: Option<Pending>) -> f64 {
        let t = self.next_tid;
        self.next_tid += 1;
        if let Some(p) = p {
            self.pending.insert(t, p);
        }
        f64::from(t)
    }

    fn notice(&mut self, s: String) {
        self.notices += 1;
        if self.notices <= MAX_NOTICES {
            self.events.push_back(ClientEvent::Notice(s));
        }
    }

    fn fail(&mut self, e: Error) -> Error {
        self.state = ClientState::Closed;
        e
    }

    /// Feeds bytes received from the server. An error is fatal: the session
    /// is closed and the connection should be dropped.
    pub fn handle_input(&mut self, mut data: &[u8], now: Instant) -> Result<()> {
        if self.state == ClientState::Closed {
            return Err(Error::Misuse("session is closed"));
        }
        self.conn.count_received(data.len());
        let now_ms = self.millis(now);
        if let Some(hs) = &mut self.handshake {
            let used = hs.handle_input(data, now_ms).map_err(Error::from);
            let used = match used {
                Ok(u) => u,
                Err(e) => return Err(self.fail(e)),
            };
            let out = hs.take_output();
            let done = hs.is_complete();
            self.server_digest_verified = hs.server_digest_verified();
            self.conn.queue_raw(&out);
            data = &data[used..];
            if done {
                self.handshake = None;
                self.after_handshake()?;
            }
        }
        if self.handshake.is_none() {
            self.conn.decoder.push(data);
            loop {
                let raw = match self.conn.next_raw() {
                    Ok(Some(r)) => r,
                    Ok(None) => break,
                    Err(e) => return Err(self.fail(e)),
                };
                if let Err(e) = self.handle_raw(raw) {
                    return Err(self.fail(e));
                }
                if self.state == ClientState::Closed {
                    break;
                }
            }
            self.conn.maybe_ack();
        }
        Ok(())
    }

    fn after_handshake(&mut self) -> Result<()> {
        self.conn.set_chunk_size(self.config.chunk_size)?;
        let c = &self.config;
        let mut o = Amf0Object::new()
            .with("app", c.app.as_str())
            .with("type", "nonprivate")
            .with("flashVer", c.flash_ver.as_str())
            .with("tcUrl", c.tc_url.as_str());
        if c.mode == ClientMode::Play {
            // The fields players send (FFmpeg / Flash): all audio and video
            // codecs, no proxy.
            o.push("fpad", false);
            o.push("capabilities", 15.0);
            o.push("audioCodecs", 4071.0);
            o.push("videoCodecs", 252.0);
            o.push("videoFunction", 1.0);
        }
        let tid = self.tid(Some(Pending::Connect));
        debug_assert_eq!(tid, 1.0);
        let mut cmd = Command::connect(o);
        cmd.transaction_id = tid;
        self.conn.send(
            ChunkStreamId::COMMAND,
            Timestamp::ZERO,
            0,
            &Message::command(cmd),
        );
        self.state = ClientState::ExpectConnectResult;
        Ok(())
    }

    fn handle_raw(&mut self, raw: RawMessage) -> Result<()> {
        if raw.type_id == type_id::AGGREGATE {
            for sub in split_aggregate(&raw)? {
                if sub.type_id == type_id::AGGREGATE {
                    return Err(unexpected("aggregate inside an aggregate"));
                }
                self.handle_raw(sub)?;
            }
            return Ok(());
        }
        let msg = typed(&raw)?;
        let Some(msg) = self.conn.handle_common(&raw, msg) else {
            return Ok(());
        };
        match msg {
            Message::UserControl(uc) => self.handle_user_control(uc),
            Message::Command { command, .. } => self.handle_command(command)?,
            Message::Data { data, .. } => self.handle_data(raw.timestamp, data),
            Message::Audio(payload) => self.media(
                raw.stream_id.0,
                |timestamp| ClientEvent::Audio { timestamp, payload },
                raw.timestamp,
            ),
            Message::Video(payload) => self.media(
                raw.stream_id.0,
                |timestamp| ClientEvent::Video { timestamp, payload },
                raw.timestamp,
            ),
            other => self.notice(format!("ignored message type {}", other.type_id())),
        }
        Ok(())
    }

    fn media(&mut self, msid: u32, f: impl FnOnce(Timestamp) -> ClientEvent, ts: Timestamp) {
        if self.config.mode == ClientMode::Play && Some(msid) == self.stream_id {
            self.events.push_back(f(ts));
        } else {
            self.notice(format!("media on message stream {msid} ignored"));
        }
    }

    fn handle_user_control(&mut self, uc: UserControl) {
        match uc {
            UserControl::StreamEof(sid) if Some(sid) == self.stream_id => {
                self.stream_ended(StreamEnd::Eof);
            }
            UserControl::StreamBegin(sid) if Some(sid) == self.stream_id => self.ended = false,
            UserControl::StreamBegin(_)
            | UserControl::StreamEof(_)
            | UserControl::StreamDry(_)
            | UserControl::StreamIsRecorded(_)
            | UserControl::PingResponse(_) => {}
            other => self.notice(format!("ignored user control {other:?}")),
        }
    }

    /// Reports the end of a played stream once (servers send both StreamEOF
    /// and UnpublishNotify).
    fn stream_ended(&mut self, why: StreamEnd) {
        if self.config.mode == ClientMode::Play && !self.ended {
            self.ended = true;
            self.events.push_back(ClientEvent::StreamEnded(why));
        }
    }

    fn handle_data(&mut self, timestamp: Timestamp, data: DataMessage) {
        match data.handler() {
            Some("|RtmpSampleAccess") => {}
            _ if data.metadata().is_some() && self.config.mode == ClientMode::Play => {
                self.events.push_back(ClientEvent::Metadata {
                    timestamp,
                    data: data.without_set_data_frame(),
                });
            }
            h => self.notice(format!("ignored data message {h:?}")),
        }
    }

    fn rejected(info: Option<StatusInfo>, fallback: &str) -> Error {
        let info = info.unwrap_or_default();
        Error::Rejected {
            code: if info.code.is_empty() {
                fallback.to_owned()
            } else {
                info.code
            },
            description: info.description,
        }
    }

    fn handle_command(&mut self, cmd: Command) -> Result<()> {
        let tid = cmd.transaction_id;
        let pending = if tid >= 1.0 && tid.fract() == 0.0 && tid <= f64::from(u32::MAX) {
            self.pending.remove(&(tid as u32))
        } else {
            None
        };
        match cmd.name.as_str() {
            "_result" => match pending {
                Some(Pending::Connect) => {
                    let info = cmd.status();
                    if let Some(i) = &info {
                        if !i.code.is_empty() && i.code != status::CONNECT_SUCCESS {
                            return Err(Self::rejected(info, "_result"));
                        }
                    }
                    self.events.push_back(ClientEvent::Connected);
                    self.create_stream();
                }
                Some(Pending::CreateStream) => {
                    let sid = cmd
                        .first_number()
                        .filter(|n| *n >= 0.0 && *n <= f64::from(u32::MAX) && n.fract() == 0.0)
                        .ok_or_else(|| unexpected("createStream _result without a stream id"))?
                        as u32;
                    self.stream_id = Some(sid);
                    self.events
                        .push_back(ClientEvent::StreamCreated { stream_id: sid });
                    self.start_stream(sid);
                }
                Some(_) => {}
                None => self.notice(format!(
                    "_result for transaction {tid} that is not pending, ignored"
                )),
            },
            "_error" => match pending {
                Some(Pending::Connect | Pending::CreateStream) => {
                    return Err(Self::rejected(cmd.status(), "_error"));
                }
                // FFmpeg treats errors for these as warnings; so do we.
                Some(p) => self.notice(format!("{p:?} failed: {:?}", cmd.status())),
                None => self.notice(format!("_error for transaction {tid}: {:?}", cmd.status())),
            },
            "onStatus" => {
                let info = cmd.status().unwrap_or_default();
                self.handle_status(info)?;
            }
            "onBWDone" => {
                // Answer as FFmpeg does; servers that send onBWDone expect it.
                let tid = self.tid(Some(Pending::CheckBw));
                self.conn.send(
                    ChunkStreamId::COMMAND,
                    Timestamp::ZERO,
                    0,
                    &Message::command(Command::check_bw(tid)),
                );
            }
            "onFCPublish" | "onFCUnpublish" | "onFCSubscribe" | "_checkbw" | "onBWCheck" => {}
            "close" => {
                return Err(Self::rejected(cmd.status(), "NetConnection.Connect.Closed"));
            }
            other => self.notice(format!("ignored command {other}")),
        }
        Ok(())
    }

    fn handle_status(&mut self, info: StatusInfo) -> Result<()> {
        let mode = self.config.mode;
        let start_code = match mode {
            ClientMode::Publish => status::PUBLISH_START,
            ClientMode::Play => status::PLAY_START,
        };
        if info.code == start_code {
            if self.state == ClientState::ExpectStart {
                self.state = ClientState::Started;
                self.events.push_back(match mode {
                    ClientMode::Publish => ClientEvent::PublishStarted,
                    ClientMode::Play => ClientEvent::PlayStarted,
                });
            } else {
                // Seen in the wild: a server that says it twice.
                self.notice(format!("repeated {} ignored", info.code));
            }
            return Ok(());
        }
        if self.state != ClientState::Started && info.is_error() {
            return Err(Error::Rejected {
                code: info.code,
                description: info.description,
            });
        }
        match info.code.as_str() {
            status::PLAY_UNPUBLISH_NOTIFY => self.stream_ended(StreamEnd::UnpublishNotify),
            status::PLAY_STOP | "NetStream.Play.Complete" => self.stream_ended(StreamEnd::Stopped),
            status::PLAY_PUBLISH_NOTIFY => {
                self.ended = false;
                self.events.push_back(ClientEvent::Status(info));
            }
            _ => self.events.push_back(ClientEvent::Status(info)),
        }
        Ok(())
    }

    fn send_command(&mut self, csid: ChunkStreamId, msid: u32, cmd: Command) {
        self.conn
            .send(csid, Timestamp::ZERO, msid, &Message::command(cmd));
    }

    fn create_stream(&mut self) {
        if self.config.mode == ClientMode::Publish {
            // As FFmpeg and OBS do: nginx-rtmp, SRS and FMLE-era ingest expect them.
            let name = self.config.stream.clone();
            let t = self.tid(Some(Pending::ReleaseStream));
            self.send_command(ChunkStreamId::COMMAND, 0, Command::release_stream(t, &name));
            let t = self.tid(Some(Pending::FcPublish));
            self.send_command(ChunkStreamId::COMMAND, 0, Command::fc_publish(t, &name));
        }
        let t = self.tid(Some(Pending::CreateStream));
        self.send_command(ChunkStreamId::COMMAND, 0, Command::create_stream(t));
        self.state = ClientState::ExpectCreateStreamResult;
    }

    fn start_stream(&mut self, sid: u32) {
        let name = self.config.stream.clone();
        let t = self.tid(None);
        match self.config.mode {
            ClientMode::Publish => {
                let kind = self.config.publish_type.clone();
                self.send_command(
                    ChunkStreamId::STREAM,
                    sid,
                    Command::publish(t, &name, &kind),
                );
            }
            ClientMode::Play => {
                self.send_command(
                    ChunkStreamId::STREAM,
                    sid,
                    Command::play(t, &name, Some(-2.0)),
                );
                self.conn
                    .send_control(&Message::UserControl(UserControl::SetBufferLength {
                        stream_id: sid,
                        buffer_ms: self.config.buffer_length_ms,
                    }));
            }
        }
        self.state = ClientState::ExpectStart;
    }

    fn publishing_stream(&self) -> Result<u32> {
        match (self.state, self.config.mode, self.stream_id) {
            (ClientState::Started, ClientMode::Publish, Some(sid)) => Ok(sid),
            (_, ClientMode::Play, _) => Err(Error::Misuse("a play session cannot send media")),
            _ => Err(Error::Misuse("not publishing yet: wait for PublishStarted")),
        }
    }

    /// Sends metadata as `@setDataFrame onMetaData` (what servers keep and
    /// give to late players).
    pub fn send_metadata(&mut self, metadata: Amf0Object) -> Result<()> {
        let sid = self.publishing_stream()?;
        let msg = Message::data(DataMessage::set_data_frame(metadata).values);
        self.conn
            .send(ChunkStreamId::STREAM, Timestamp::ZERO, sid, &msg);
        Ok(())
    }

    /// Sends a data message (type 18) as is.
    pub fn send_data(&mut self, timestamp: Timestamp, data: &DataMessage) -> Result<()> {
        let sid = self.publishing_stream()?;
        let msg = Message::data(data.values.clone());
        self.conn.send(ChunkStreamId::STREAM, timestamp, sid, &msg);
        Ok(())
    }

    /// Sends an audio (8), video (9) or AMF0 data (18) message; the session
    /// chunks it.
    pub fn send_media(&mut self, type_id: u8, timestamp: Timestamp, payload: &[u8]) -> Result<()> {
        let sid = self.publishing_stream()?;
        let csid = media_csid(type_id, payload.len())?;
        self.conn.send_raw(csid, timestamp, type_id, sid, payload);
        Ok(())
    }

    /// Closes cleanly: FCUnpublish + deleteStream for a publisher, deleteStream
    /// for a player (as FFmpeg and OBS do). Send what `poll_transmit` then
    /// returns before closing the socket. Calling it again does nothing.
    pub fn close(&mut self) {
        if self.state == ClientState::Closed {
            return;
        }
        if let Some(sid) = self.stream_id {
            if self.config.mode == ClientMode::Publish && self.state == ClientState::Started {
                let name = self.config.stream.clone();
                let t = self.tid(None);
                self.send_command(ChunkStreamId::COMMAND, 0, Command::fc_unpublish(t, &name));
            }
            let t = self.tid(None);
            self.send_command(ChunkStreamId::COMMAND, 0, Command::delete_stream(t, sid));
        }
        self.state = ClientState::Closed;
    }
}
