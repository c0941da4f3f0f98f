//! The client side: connect → createStream → publish or play.

use super::link::{AnyHandshake, HandshakeFacts, Link, NoticeEvent, media_csid, unexpected};
use super::{ClientSession, Session, Side};

mod config;

use crate::Timestamp;
use crate::amf0::Amf0Object;
use crate::chunk::{ChunkStreamId, RawMessage};
use crate::error::{Error, Result};
use crate::handshake::ClientHandshake;
use crate::media::{ADDITIONAL_MEDIA, Media, MediaKind, additional_media_audio};
use crate::message::{
    Command, DataMessage, Message, SET_DATA_FRAME_AMF0, StatusInfo, UserControl, status,
};
use bytes::{BufMut, BytesMut};
pub use config::{CAPS_EX_MULTITRACK, CAPS_EX_RECONNECT, ClientConfig, ClientMode};
use std::collections::HashMap;
use std::time::Instant;

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
    /// Metadata, audio or video of the played stream, in order.
    Media(Media),
    /// The played stream ended; the connection stays open.
    StreamEnded(StreamEnd),
    /// E-RTMP v2: the server asks us to connect again, to this `tcUrl`
    /// (as sent: absolute or relative) or, when `None`, to the same one.
    ReconnectRequested {
        /// The `tcUrl` of the request.
        tc_url: Option<String>,
    },
    /// Something unusual but harmless, worth a log line.
    Notice(String),
}

impl NoticeEvent for ClientEvent {
    fn notice(text: String) -> Self {
        ClientEvent::Notice(text)
    }
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
    /// Connected with no stream, after [`ClientSession::stop_stream`]:
    /// [`ClientSession::restart_stream`] goes on.
    Idle,
    /// Closed by [`ClientSession::close`] or a fatal error.
    Closed,
}

/// The client side of a session: what it asked for and where it is.
#[derive(Debug)]
pub struct ClientSide {
    config: ClientConfig,
    state: ClientState,
    next_tid: u32,
    pending: HashMap<u32, Pending>,
    stream_id: Option<u32>,
    /// Whether StreamEnded was reported since the stream last (re)started.
    ended: bool,
    /// Whether media on another message stream was reported once.
    stray_noticed: bool,
    server_digest_verified: bool,
}

impl Side for ClientSide {
    type Event = ClientEvent;

    fn on_handshake_done(
        &mut self,
        link: &mut Link<ClientEvent>,
        facts: HandshakeFacts,
    ) -> Result<()> {
        self.server_digest_verified = facts.server_digest_verified;
        link.set_chunk_size(self.config.chunk_size)?;
        let mut cmd = Command::connect(self.config.connect_object());
        cmd.transaction_id = self.tid(Some(Pending::Connect));
        link.send_command(ChunkStreamId::COMMAND, 0, cmd);
        self.state = ClientState::ExpectConnectResult;
        Ok(())
    }

    /// Answers to our requests, and statuses until the stream started:
    /// one that does not decode ends the session. Any other command that
    /// does not decode is skipped.
    fn must_act(&self, command: &str) -> bool {
        match command {
            "_result" | "_error" => self
                .pending
                .values()
                .any(|p| matches!(p, Pending::Connect | Pending::CreateStream)),
            "onStatus" => self.state != ClientState::Started,
            "close" => true,
            _ => false,
        }
    }

    fn on_message(
        &mut self,
        link: &mut Link<ClientEvent>,
        raw: RawMessage,
        msg: Message,
    ) -> Result<()> {
        let kind = match msg {
            Message::UserControl(uc) => {
                self.handle_user_control(link, uc);
                return Ok(());
            }
            Message::Command { command, .. } => return self.handle_command(link, command),
            Message::Data { amf3, data } => {
                self.handle_data(link, &raw, amf3, &data);
                return Ok(());
            }
            Message::Audio(_) => MediaKind::Audio,
            Message::Video(_) => MediaKind::Video,
            other => {
                link.notice(format!("ignored message type {}", other.type_id()));
                return Ok(());
            }
        };
        let msid = raw.stream_id.0;
        match (self.config.mode, self.stream_id) {
            // The one stream we play: media on another message stream id
            // is its too. Node-Media-Server plays on message stream 0 and
            // says its statuses on the stream it created.
            (ClientMode::Play, Some(sid)) => {
                if msid != sid && !self.stray_noticed {
                    self.stray_noticed = true;
                    link.notice(format!(
                        "media on message stream {msid} taken as the played stream {sid}'s"
                    ));
                }
                link.push_event(ClientEvent::Media(Media::new(
                    kind,
                    raw.timestamp,
                    raw.payload,
                )));
            }
            _ => link.notice(format!("media on message stream {msid} ignored")),
        }
        Ok(())
    }
}

impl ClientSide {
    /// Data from the server: metadata (servers send it on the stream or
    /// on the connection; AMF3 values made AMF0), OBS's VOD track packets
    /// as audio track 1, anything else skipped.
    fn handle_data(
        &mut self,
        link: &mut Link<ClientEvent>,
        raw: &RawMessage,
        amf3: bool,
        data: &DataMessage,
    ) {
        if self.config.mode != ClientMode::Play {
            link.notice(format!("ignored data message {:?}", data.handler()));
            return;
        }
        if data.handler() == Some(ADDITIONAL_MEDIA) {
            match additional_media_audio(data) {
                Ok(Some(p)) => link.push_event(ClientEvent::Media(Media::audio(raw.timestamp, p))),
                Ok(None) => {}
                Err(e) => link.notice(format!("skipped a VOD track packet: {e}")),
            }
            return;
        }
        match data.player_metadata(amf3, &raw.payload) {
            Some(body) => {
                link.push_event(ClientEvent::Media(Media::metadata(raw.timestamp, body)));
            }
            None if data.handler() == Some("|RtmpSampleAccess") => {}
            None => link.notice(format!("ignored data message {:?}", data.handler())),
        }
    }

    fn tid(&mut self, p: Option<Pending>) -> f64 {
        let t = self.next_tid;
        self.next_tid += 1;
        if let Some(p) = p {
            self.pending.insert(t, p);
        }
        f64::from(t)
    }

    fn handle_user_control(&mut self, link: &mut Link<ClientEvent>, uc: UserControl) {
        match uc {
            UserControl::StreamEof(sid) if Some(sid) == self.stream_id => {
                self.stream_ended(link, StreamEnd::Eof);
            }
            UserControl::StreamBegin(sid) if Some(sid) == self.stream_id => self.ended = false,
            UserControl::StreamBegin(_)
            | UserControl::StreamEof(_)
            | UserControl::StreamDry(_)
            | UserControl::StreamIsRecorded(_) => {}
            other => link.notice(format!("ignored user control {other:?}")),
        }
    }

    /// Reports the end of a played stream once (servers send both StreamEOF
    /// and UnpublishNotify).
    fn stream_ended(&mut self, link: &mut Link<ClientEvent>, why: StreamEnd) {
        if self.config.mode == ClientMode::Play && !self.ended {
            self.ended = true;
            link.push_event(ClientEvent::StreamEnded(why));
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

    fn handle_command(&mut self, link: &mut Link<ClientEvent>, cmd: Command) -> Result<()> {
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
                    link.push_event(ClientEvent::Connected);
                    self.create_stream(link);
                }
                Some(Pending::CreateStream) => {
                    let sid = cmd
                        .first_number()
                        .filter(|n| *n >= 0.0 && *n <= f64::from(u32::MAX) && n.fract() == 0.0)
                        .ok_or_else(|| unexpected("createStream _result without a stream id"))?
                        as u32;
                    self.stream_id = Some(sid);
                    link.push_event(ClientEvent::StreamCreated { stream_id: sid });
                    self.send_publish_or_play(link, sid);
                }
                Some(_) => {}
                None => link.notice(format!(
                    "_result for transaction {tid} that is not pending, ignored"
                )),
            },
            "_error" => match pending {
                Some(Pending::Connect | Pending::CreateStream) => {
                    return Err(Self::rejected(cmd.status(), "_error"));
                }
                // FFmpeg treats errors for these as warnings; so do we.
                Some(p) => link.notice(format!("{p:?} failed: {:?}", cmd.status())),
                None => link.notice(format!("_error for transaction {tid}: {:?}", cmd.status())),
            },
            "onStatus" => {
                let info = cmd.status().unwrap_or_default();
                if info.code == status::CONNECT_RECONNECT_REQUEST {
                    let tc_url = cmd
                        .info_object()
                        .and_then(|o| o.get_str("tcUrl"))
                        .map(str::to_owned);
                    link.push_event(ClientEvent::ReconnectRequested { tc_url });
                    return Ok(());
                }
                self.handle_status(link, info)?;
            }
            "onBWDone" => {
                // Answer as FFmpeg does; servers that send onBWDone expect it.
                let tid = self.tid(Some(Pending::CheckBw));
                link.send_command(ChunkStreamId::COMMAND, 0, Command::check_bw(tid));
            }
            "onFCPublish" | "onFCUnpublish" | "onFCSubscribe" | "_checkbw" | "onBWCheck" => {}
            "close" => {
                return Err(Self::rejected(cmd.status(), "NetConnection.Connect.Closed"));
            }
            other => link.notice(format!("ignored command {other}")),
        }
        Ok(())
    }

    fn handle_status(&mut self, link: &mut Link<ClientEvent>, info: StatusInfo) -> Result<()> {
        let mode = self.config.mode;
        let start_code = match mode {
            ClientMode::Publish => status::PUBLISH_START,
            ClientMode::Play => status::PLAY_START,
        };
        if info.code == start_code {
            if self.state == ClientState::ExpectStart {
                self.state = ClientState::Started;
                link.push_event(match mode {
                    ClientMode::Publish => ClientEvent::PublishStarted,
                    ClientMode::Play => ClientEvent::PlayStarted,
                });
            } else {
                // Seen in the wild: a server that says it twice.
                link.notice(format!("repeated {} ignored", info.code));
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
            status::PLAY_UNPUBLISH_NOTIFY => self.stream_ended(link, StreamEnd::UnpublishNotify),
            status::PLAY_STOP | "NetStream.Play.Complete" => {
                self.stream_ended(link, StreamEnd::Stopped);
            }
            status::PLAY_PUBLISH_NOTIFY => {
                self.ended = false;
                link.push_event(ClientEvent::Status(info));
            }
            _ => link.push_event(ClientEvent::Status(info)),
        }
        Ok(())
    }

    fn create_stream(&mut self, link: &mut Link<ClientEvent>) {
        if self.config.mode == ClientMode::Publish {
            // As FFmpeg and OBS do: nginx-rtmp, SRS and FMLE-era ingest expect them.
            let name = self.config.stream.clone();
            let t = self.tid(Some(Pending::ReleaseStream));
            link.send_command(ChunkStreamId::COMMAND, 0, Command::release_stream(t, &name));
            let t = self.tid(Some(Pending::FcPublish));
            link.send_command(ChunkStreamId::COMMAND, 0, Command::fc_publish(t, &name));
        }
        let t = self.tid(Some(Pending::CreateStream));
        link.send_command(ChunkStreamId::COMMAND, 0, Command::create_stream(t));
        self.state = ClientState::ExpectCreateStreamResult;
    }

    fn send_publish_or_play(&mut self, link: &mut Link<ClientEvent>, sid: u32) {
        let name = self.config.stream.clone();
        let t = self.tid(None);
        let cmd = match self.config.mode {
            ClientMode::Publish => Command::publish(t, &name, &self.config.publish_type),
            ClientMode::Play => Command::play(t, &name, Some(-2.0)),
        };
        link.send_command(ChunkStreamId::STREAM, sid, cmd);
        if self.config.mode == ClientMode::Play {
            link.send_control(&Message::UserControl(UserControl::SetBufferLength {
                stream_id: sid,
                buffer_ms: self.config.buffer_length_ms,
            }));
        }
        self.state = ClientState::ExpectStart;
    }

    /// FCUnpublish (for a started publisher) and deleteStream, as FFmpeg
    /// and OBS send them; forgets the stream. Whether there was one.
    fn leave_stream(&mut self, link: &mut Link<ClientEvent>) -> bool {
        let Some(sid) = self.stream_id.take() else {
            return false;
        };
        if self.config.mode == ClientMode::Publish && self.state == ClientState::Started {
            let name = self.config.stream.clone();
            let t = self.tid(None);
            link.send_command(ChunkStreamId::COMMAND, 0, Command::fc_unpublish(t, &name));
        }
        let t = self.tid(None);
        link.send_command(ChunkStreamId::COMMAND, 0, Command::delete_stream(t, sid));
        true
    }

    fn publishing_stream(&self) -> Result<u32> {
        match (self.state, self.config.mode, self.stream_id) {
            (ClientState::Started, ClientMode::Publish, Some(sid)) => Ok(sid),
            (_, ClientMode::Play, _) => Err(Error::Misuse("a play session cannot send media")),
            _ => Err(Error::Misuse("not publishing yet: wait for PublishStarted")),
        }
    }
}

impl ClientSession {
    /// Starts a session: C0+C1 are queued at once. `seed` feeds the
    /// handshake's random bytes.
    ///
    /// ```
    /// use rtmpkit_proto::session::{ClientConfig, ClientSession};
    /// use rtmpkit_proto::RtmpUrl;
    /// let url = RtmpUrl::parse("rtmp://127.0.0.1/live/test").unwrap();
    /// let mut s = ClientSession::new(ClientConfig::publish(&url), std::time::Instant::now(), 42);
    /// let mut out = Vec::new();
    /// assert_eq!(s.poll_transmit(usize::MAX, &mut out), 1537); // C0+C1
    /// ```
    pub fn new(config: ClientConfig, now: Instant, seed: u64) -> Self {
        let hs = AnyHandshake::Client(ClientHandshake::new(config.handshake, 0, seed));
        Session {
            link: Link::new(config.limits, hs, config.ping_interval, now),
            side: ClientSide {
                config,
                state: ClientState::ExpectHandshake,
                next_tid: 1,
                pending: HashMap::new(),
                stream_id: None,
                ended: false,
                stray_noticed: false,
                server_digest_verified: false,
            },
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.side.config
    }

    /// What the session waits for now.
    pub fn state(&self) -> ClientState {
        if self.link.is_closed() {
            ClientState::Closed
        } else {
            self.side.state
        }
    }

    /// Whether publish / play has started.
    pub fn is_started(&self) -> bool {
        self.state() == ClientState::Started
    }

    /// The message stream id from createStream.
    pub fn stream_id(&self) -> Option<u32> {
        self.side.stream_id
    }

    /// Whether the server's digest verified (digest handshake only).
    pub fn server_digest_verified(&self) -> bool {
        self.side.server_digest_verified
    }

    /// Sends metadata as `@setDataFrame onMetaData` (what servers keep and
    /// give to late players).
    pub fn send_metadata(&mut self, metadata: Amf0Object) -> Result<()> {
        let sid = self.side.publishing_stream()?;
        let msg = Message::data(DataMessage::set_data_frame(metadata).values);
        self.link
            .send(ChunkStreamId::STREAM, Timestamp::ZERO, sid, &msg);
        Ok(())
    }

    /// Sends one media message; the session chunks it. Metadata goes out
    /// as `@setDataFrame onMetaData ...`, as publishers send it.
    pub fn send_media(&mut self, media: &Media) -> Result<()> {
        let sid = self.side.publishing_stream()?;
        let csid = media_csid(media.kind, media.payload.len())?;
        let payload = if media.kind == MediaKind::Metadata
            && !media.payload.starts_with(SET_DATA_FRAME_AMF0)
        {
            let mut b = BytesMut::with_capacity(SET_DATA_FRAME_AMF0.len() + media.payload.len());
            b.put_slice(SET_DATA_FRAME_AMF0);
            b.put_slice(&media.payload);
            b.freeze()
        } else {
            media.payload.clone()
        };
        self.link
            .send_shared(csid, media.timestamp, media.type_id(), sid, &payload);
        Ok(())
    }

    /// Stops publishing (FCUnpublish + deleteStream) or playing
    /// (deleteStream) and keeps the connection: the state becomes
    /// [`ClientState::Idle`].
    pub fn stop_stream(&mut self) -> Result<()> {
        if self.side.state != ClientState::Started || !self.side.leave_stream(&mut self.link) {
            return Err(Error::Misuse("stop_stream needs a started stream"));
        }
        self.side.state = ClientState::Idle;
        Ok(())
    }

    /// Publishes or plays `stream` (a name, with any `?query`) on this
    /// connection again, after [`ClientSession::stop_stream`] (or stops the
    /// current stream first): createStream, then publish / play, and
    /// `PublishStarted` / `PlayStarted` once more.
    pub fn restart_stream(&mut self, stream: &str) -> Result<()> {
        if self.side.state == ClientState::Started {
            self.stop_stream()?;
        }
        if self.side.state != ClientState::Idle {
            return Err(Error::Misuse("restart_stream needs a connected session"));
        }
        self.side.config.stream = stream.to_owned();
        self.side.create_stream(&mut self.link);
        Ok(())
    }

    /// Closes cleanly: FCUnpublish + deleteStream for a publisher, deleteStream
    /// for a player (as FFmpeg and OBS do). Send what `poll_transmit` then
    /// returns before closing the socket. Calling it again does nothing.
    pub fn close(&mut self) {
        if self.link.is_closed() {
            return;
        }
        self.side.leave_stream(&mut self.link);
        self.link.close();
    }
}
