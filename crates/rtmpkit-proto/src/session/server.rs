//! The server side of one connection: accepts connect, createStream,
//! publish and play, and answers the way nginx-rtmp and SRS do.
//!
//! The session decides nothing about streams: requests come out as events
//! ([`ServerEvent::PublishRequested`], ...) and the application answers with
//! [`ServerSession::accept_publish`] / [`ServerSession::reject_publish`] and so on.

use super::conn::{Conn, DEFAULT_WINDOW, media_csid, typed, unexpected};
use crate::Timestamp;
use crate::amf0::{Amf0Object, Amf0Value};
use crate::chunk::{ChunkStreamId, DecoderLimits, RawMessage};
use crate::error::{Error, Result};
use crate::handshake::ServerHandshake;
use crate::message::{
    Command, DataMessage, LimitType, Message, StatusInfo, UserControl, split_aggregate, status,
    type_id,
};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Settings of a server session.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Our outgoing chunk size, announced when connect is accepted.
    pub chunk_size: u32,
    /// Window Acknowledgement Size we announce.
    pub window_ack_size: u32,
    /// Set Peer Bandwidth we announce (limit type dynamic).
    pub peer_bandwidth: u32,
    /// Send a PingRequest this often (None: never).
    pub ping_interval: Option<Duration>,
    /// Most message streams one connection may create.
    pub max_streams: u32,
    /// Chunk decoder limits.
    pub limits: DecoderLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            chunk_size: 4096,
            window_ack_size: DEFAULT_WINDOW,
            peer_bandwidth: DEFAULT_WINDOW,
            ping_interval: None,
            max_streams: 16,
            limits: DecoderLimits::default(),
        }
    }
}

/// What a server session reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// The client sent connect: answer with accept_connect / reject_connect.
    ConnectRequested {
        /// `app` of the command object.
        app: String,
        /// `tcUrl`, if given.
        tc_url: Option<String>,
        /// The whole command object.
        object: Amf0Object,
    },
    /// The client wants to publish: answer with accept_publish / reject_publish.
    PublishRequested {
        /// Message stream id.
        stream_id: u32,
        /// Stream name as sent (may carry `?query`).
        name: String,
        /// Publishing type ("live" when left out).
        kind: String,
    },
    /// The client wants to play: answer with accept_play / reject_play.
    PlayRequested {
        /// Message stream id.
        stream_id: u32,
        /// Stream name as sent.
        name: String,
        /// `start` argument (-2 when left out).
        start: f64,
    },
    /// A publishing stream ended (FCUnpublish, deleteStream or closeStream).
    PublishEnded {
        /// Message stream id.
        stream_id: u32,
    },
    /// A playing stream ended (deleteStream or closeStream).
    PlayEnded {
        /// Message stream id.
        stream_id: u32,
    },
    /// Metadata from a publisher (`@setDataFrame` removed).
    Metadata {
        /// Message stream id.
        stream_id: u32,
        /// Timestamp.
        timestamp: Timestamp,
        /// The `onMetaData` data message.
        data: DataMessage,
    },
    /// Audio from a publisher.
    Audio {
        /// Message stream id.
        stream_id: u32,
        /// Timestamp.
        timestamp: Timestamp,
        /// FLV audio tag body.
        payload: Bytes,
    },
    /// Video from a publisher.
    Video {
        /// Message stream id.
        stream_id: u32,
        /// Timestamp.
        timestamp: Timestamp,
        /// FLV video tag body.
        payload: Bytes,
    },
    /// The client answered our PingRequest.
    PingAnswered {
        /// Round trip in ms.
        round_trip_ms: u32,
    },
    /// Something unusual but harmless, worth a log line.
    Notice(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Created,
    PublishRequested,
    Publishing,
    PlayRequested,
    Playing,
}

#[derive(Debug)]
struct Slot {
    role: Role,
    name: String,
}

/// What the session waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// C0/C1/C2.
    ExpectHandshake,
    /// The connect command.
    ExpectConnect,
    /// The application's answer to connect.
    ExpectConnectDecision,
    /// Connected: streams may be created.
    Connected,
    /// Closed.
    Closed,
}

/// The server session state machine of one connection.
#[derive(Debug)]
pub struct ServerSession {
    config: ServerConfig,
    conn: Conn,
    handshake: Option<ServerHandshake>,
    state: ServerState,
    started_at: Instant,
    now_ms: u32,
    connect_tid: f64,
    object_encoding: f64,
    app: Option<String>,
    next_stream_id: u32,
    streams: HashMap<u32, Slot>,
    events: VecDeque<ServerEvent>,
    next_ping: Option<Instant>,
    notices: u32,
    client_used_digest: bool,
}

const MAX_NOTICES: u32 = 32;

impl ServerSession {
    /// A new session for an accepted connection.
    pub fn new(config: ServerConfig, now: Instant, seed: u64) -> Self {
        let mut conn = Conn::new(config.limits);
        // Until the client announces a window, acknowledge at ours.
        conn.peer_window = Some(config.window_ack_size);
        ServerSession {
            conn,
            handshake: Some(ServerHandshake::new(0, seed)),
            state: ServerState::ExpectHandshake,
            started_at: now,
            now_ms: 0,
            connect_tid: 1.0,
            object_encoding: 0.0,
            app: None,
            next_stream_id: 1,
            streams: HashMap::new(),
            events: VecDeque::new(),
            next_ping: None,
            notices: 0,
            client_used_digest: false,
            config,
        }
    }

    /// What the session waits for.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// The app of the accepted connect.
    pub fn app(&self) -> Option<&str> {
        self.app.as_deref()
    }

    /// Whether the client used the digest handshake.
    pub fn client_used_digest(&self) -> bool {
        self.client_used_digest
    }

    /// Total bytes received.
    pub fn bytes_received(&self) -> u64 {
        self.conn.received
    }

    /// Total bytes queued for sending.
    pub fn bytes_sent(&self) -> u64 {
        self.conn.sent
    }

    /// Acknowledgements we sent.
    pub fn acks_sent(&self) -> u64 {
        self.conn.acks_sent
    }

    /// The client's last acknowledgement sequence number.
    pub fn peer_acked(&self) -> u32 {
        self.conn.peer_acked
    }

    /// Moves everything queued into `dst`, in order, for one vectored write.
    pub fn take_output(&mut self, dst: &mut Vec<Bytes>) {
        self.conn.take_output(dst);
    }

    /// Bytes queued and not yet taken by [`ServerSession::poll_transmit`].
    pub fn pending_output(&self) -> usize {
        self.conn.pending_output()
    }

    /// Bytes to send now.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.conn.poll_transmit()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// When [`ServerSession::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_ping
    }

    /// Sends a PingRequest when one is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now_ms = self.millis(now);
        if let (Some(due), Some(iv)) = (self.next_ping, self.config.ping_interval) {
            if now >= due && self.state == ServerState::Connected {
                self.conn
                    .send_control(&Message::UserControl(UserControl::PingRequest(self.now_ms)));
                self.next_ping = Some(now + iv);
            }
        }
    }

    fn millis(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.started_at).as_millis() as u32
    }

    fn notice(&mut self, s: String) {
        self.notices += 1;
        if self.notices <= MAX_NOTICES {
            self.events.push_back(ServerEvent::Notice(s));
        }
    }

    fn fail(&mut self, e: Error) -> Error {
        self.state = ServerState::Closed;
        e
    }

    /// Feeds bytes from the client. An error is fatal: drop the connection.
    pub fn handle_input(&mut self, mut data: &[u8], now: Instant) -> Result<()> {
        if self.state == ServerState::Closed {
            return Err(Error::Misuse("session is closed"));
        }
        self.now_ms = self.millis(now);
        self.conn.count_received(data.len());
        if let Some(hs) = &mut self.handshake {
            let used = match hs.handle_input(data, self.now_ms) {
                Ok(u) => u,
                Err(e) => return Err(self.fail(e.into())),
            };
            let out = hs.take_output();
            self.conn.queue_raw(&out);
            data = &data[used..];
            if hs.is_complete() {
                self.client_used_digest = hs.client_used_digest();
                self.handshake = None;
                self.state = ServerState::ExpectConnect;
                if let Some(iv) = self.config.ping_interval {
                    self.next_ping = Some(now + iv);
                }
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
                if self.state == ServerState::Closed {
                    break;
                }
            }
            self.conn.maybe_ack();
        }
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
        let sid = raw.stream_id.0;
        match msg {
            Message::UserControl(UserControl::PingResponse(t)) => {
                self.events.push_back(ServerEvent::PingAnswered {
                    round_trip_ms: self.now_ms.wrapping_sub(t),
                });
            }
            Message::UserControl(_) => {}
            Message::Command { command, .. } => self.handle_command(sid, command)?,
            Message::Data { data, .. } => {
                if self.is_publishing(sid) {
                    if data.metadata().is_some() {
                        self.events.push_back(ServerEvent::Metadata {
                            stream_id: sid,
                            timestamp: raw.timestamp,
                            data: data.without_set_data_frame(),
                        });
                    } else {
                        self.notice(format!("ignored data message {:?}", data.handler()));
                    }
                }
            }
            Message::Audio(payload) if self.is_publishing(sid) => {
                self.events.push_back(ServerEvent::Audio {
                    stream_id: sid,
                    timestamp: raw.timestamp,
                    payload,
                });
            }
            Message::Video(payload) if self.is_publishing(sid) => {
                self.events.push_back(ServerEvent::Video {
                    stream_id: sid,
                    timestamp: raw.timestamp,
                    payload,
                });
            }
            Message::Audio(_) | Message::Video(_) => {
                self.notice(format!(
                    "media on stream {sid}, which is not publishing, ignored"
                ));
            }
            other => self.notice(format!("ignored message type {}", other.type_id())),
        }
        Ok(())
    }

    fn is_publishing(&self, sid: u32) -> bool {
        self.streams
            .get(&sid)
            .is_some_and(|s| s.role == Role::Publishing)
    }

    fn send_command(&mut self, csid: ChunkStreamId, msid: u32, cmd: Command) {
        self.conn
            .send(csid, Timestamp::ZERO, msid, &Message::command(cmd));
    }

    fn send_status(&mut self, msid: u32, level: &str, code: &str, description: &str) {
        let cmd = Command::on_status(&StatusInfo::new(level, code, description));
        self.send_command(ChunkStreamId::STREAM, msid, cmd);
    }

    fn handle_command(&mut self, msid: u32, cmd: Command) -> Result<()> {
        let tid = cmd.transaction_id;
        if self.state == ServerState::ExpectConnect {
            if cmd.name != "connect" {
                return Err(unexpected(format!("{} before connect", cmd.name)));
            }
            let object = cmd.object().cloned().unwrap_or_default();
            let app = object.get_str("app").unwrap_or_default().to_owned();
            self.connect_tid = tid;
            self.object_encoding = object.get_number("objectEncoding").unwrap_or(0.0);
            self.state = ServerState::ExpectConnectDecision;
            self.events.push_back(ServerEvent::ConnectRequested {
                app,
                tc_url: object.get_str("tcUrl").map(str::to_owned),
                object,
            });
            return Ok(());
        }
        if self.state != ServerState::Connected {
            // Commands before our answer to connect are kept waiting by
            // nobody: a client must wait for _result.
            return Err(unexpected(format!(
                "{} before connect was answered",
                cmd.name
            )));
        }
        match cmd.name.as_str() {
            "createStream" => {
                if self.streams.len() as u32 >= self.config.max_streams {
                    let info = StatusInfo::new(
                        status::LEVEL_ERROR,
                        "NetConnection.Call.Failed",
                        "too many streams",
                    );
                    self.send_command(ChunkStreamId::COMMAND, 0, Command::error(tid, &info));
                    return Ok(());
                }
                let sid = self.next_stream_id;
                self.next_stream_id += 1;
                self.streams.insert(
                    sid,
                    Slot {
                        role: Role::Created,
                        name: String::new(),
                    },
                );
                self.send_command(
                    ChunkStreamId::COMMAND,
                    0,
                    Command::result(tid, Amf0Value::Null, sid.into()),
                );
            }
            "releaseStream" => {
                self.send_command(
                    ChunkStreamId::COMMAND,
                    0,
                    Command::result(tid, Amf0Value::Null, Amf0Value::Undefined),
                );
            }
            "FCPublish" => {
                let name = cmd.stream_name().unwrap_or_default().to_owned();
                let info = StatusInfo::new(status::LEVEL_STATUS, status::PUBLISH_START, &name);
                self.send_command(ChunkStreamId::COMMAND, 0, Command::on_fc_publish(&info));
                self.send_command(
                    ChunkStreamId::COMMAND,
                    0,
                    Command::result(tid, Amf0Value::Null, Amf0Value::Undefined),
                );
            }
            "FCUnpublish" => {
                let name = cmd.stream_name().unwrap_or_default().to_owned();
                let info = StatusInfo::new(status::LEVEL_STATUS, status::UNPUBLISH_SUCCESS, &name);
                self.send_command(ChunkStreamId::COMMAND, 0, Command::on_fc_unpublish(&info));
                self.send_command(
                    ChunkStreamId::COMMAND,
                    0,
                    Command::result(tid, Amf0Value::Null, Amf0Value::Undefined),
                );
                let found = self
                    .streams
                    .iter()
                    .find(|(_, s)| s.role == Role::Publishing && s.name == name)
                    .map(|(&k, _)| k);
                if let Some(sid) = found {
                    self.end_stream_slot(sid, true);
                }
            }
            "publish" => {
                let Some(slot) = self.streams.get_mut(&msid) else {
                    self.send_status(
                        msid,
                        status::LEVEL_ERROR,
                        status::FAILED,
                        "publish on a stream that was not created",
                    );
                    return Ok(());
                };
                let name = cmd.stream_name().unwrap_or_default().to_owned();
                let kind = cmd
                    .args
                    .get(1)
                    .and_then(Amf0Value::as_str)
                    .unwrap_or("live")
                    .to_owned();
                if name.is_empty() {
                    self.send_status(
                        msid,
                        status::LEVEL_ERROR,
                        status::PUBLISH_BAD_NAME,
                        "empty stream name",
                    );
                    return Ok(());
                }
                slot.role = Role::PublishRequested;
                slot.name = name.clone();
                self.events.push_back(ServerEvent::PublishRequested {
                    stream_id: msid,
                    name,
                    kind,
                });
            }
            "play" => {
                let Some(slot) = self.streams.get_mut(&msid) else {
                    self.send_status(
                        msid,
                        status::LEVEL_ERROR,
                        status::FAILED,
                        "play on a stream that was not created",
                    );
                    return Ok(());
                };
                let name = cmd.stream_name().unwrap_or_default().to_owned();
                let start = cmd
                    .args
                    .get(1)
                    .and_then(Amf0Value::as_number)
                    .unwrap_or(-2.0);
                slot.role = Role::PlayRequested;
                slot.name = name.clone();
                self.events.push_back(ServerEvent::PlayRequested {
                    stream_id: msid,
                    name,
                    start,
                });
            }
            "deleteStream" => {
                let sid = cmd.first_number().unwrap_or(0.0);
                if sid >= 0.0 && sid <= f64::from(u32::MAX) {
                    self.end_stream_slot(sid as u32, false);
                    self.streams.remove(&(sid as u32));
                }
            }
            "closeStream" => {
                self.end_stream_slot(msid, false);
            }
            "_checkbw" | "_result" | "_error" | "onBWDone" | "getStreamLength" | "receiveAudio"
            | "receiveVideo" | "FCSubscribe" | "FCUnsubscribe" | "pause" => {
                self.notice(format!("ignored command {}", cmd.name));
            }
            other => {
                // nginx-rtmp ignores unknown calls; answering with _error tells
                // the client at once instead of leaving it waiting.
                if tid > 0.0 {
                    let info = StatusInfo::new(
                        status::LEVEL_ERROR,
                        "NetConnection.Call.Failed",
                        &format!("unknown command {other}"),
                    );
                    self.send_command(ChunkStreamId::COMMAND, 0, Command::error(tid, &info));
                }
                self.notice(format!("unknown command {other}"));
            }
        }
        Ok(())
    }

    fn end_stream_slot(&mut self, sid: u32, only_publishing: bool) {
        let Some(slot) = self.streams.get_mut(&sid) else {
            return;
        };
        let ev = match slot.role {
            Role::Publishing | Role::PublishRequested => {
                ServerEvent::PublishEnded { stream_id: sid }
            }
            Role::Playing | Role::PlayRequested if !only_publishing => {
                ServerEvent::PlayEnded { stream_id: sid }
            }
            _ => return,
        };
        slot.role = Role::Created;
        self.events.push_back(ev);
    }

    /// Accepts the connect request: Window Acknowledgement Size, Set Peer
    /// Bandwidth, Set Chunk Size, then `_result` with
    /// `NetConnection.Connect.Success` (§7.2.1.1).
    pub fn accept_connect(&mut self) -> Result<()> {
        if self.state != ServerState::ExpectConnectDecision {
            return Err(Error::Misuse("no connect request to accept"));
        }
        self.conn.send_window(self.config.window_ack_size);
        self.conn.send_control(&Message::SetPeerBandwidth {
            size: self.config.peer_bandwidth,
            limit: LimitType::DYNAMIC,
        });
        self.conn.set_chunk_size(self.config.chunk_size)?;
        let props = Amf0Object::new()
            .with("fmsVer", "FMS/3,0,1,123")
            .with("capabilities", 31.0);
        let info = StatusInfo::new(
            status::LEVEL_STATUS,
            status::CONNECT_SUCCESS,
            "Connection succeeded.",
        )
        .to_object()
        .with("objectEncoding", self.object_encoding);
        let tid = self.connect_tid;
        self.send_command(
            ChunkStreamId::COMMAND,
            0,
            Command::result(tid, props.into(), info.into()),
        );
        self.state = ServerState::Connected;
        Ok(())
    }

    /// Refuses the connect request with `NetConnection.Connect.Rejected`.
    /// The caller should close the connection after sending.
    pub fn reject_connect(&mut self, description: &str) -> Result<()> {
        if self.state != ServerState::ExpectConnectDecision {
            return Err(Error::Misuse("no connect request to reject"));
        }
        let info = StatusInfo::new(status::LEVEL_ERROR, status::CONNECT_REJECTED, description);
        let tid = self.connect_tid;
        self.send_command(ChunkStreamId::COMMAND, 0, Command::error(tid, &info));
        self.state = ServerState::Closed;
        Ok(())
    }

    fn slot_in(&mut self, sid: u32, role: Role) -> Result<&mut Slot> {
        match self.streams.get_mut(&sid) {
            Some(s) if s.role == role => Ok(s),
            _ => Err(Error::Misuse("no such request on that stream")),
        }
    }

    /// Accepts a publish request: `onStatus NetStream.Publish.Start`.
    pub fn accept_publish(&mut self, stream_id: u32) -> Result<()> {
        let slot = self.slot_in(stream_id, Role::PublishRequested)?;
        slot.role = Role::Publishing;
        let desc = format!("{} is now published.", slot.name);
        self.send_status(
            stream_id,
            status::LEVEL_STATUS,
            status::PUBLISH_START,
            &desc,
        );
        Ok(())
    }

    /// Refuses a publish request with an error-level `onStatus` carrying
    /// `code` (e.g. `NetStream.Publish.BadName`).
    pub fn reject_publish(&mut self, stream_id: u32, code: &str, description: &str) -> Result<()> {
        let slot = self.slot_in(stream_id, Role::PublishRequested)?;
        slot.role = Role::Created;
        self.send_status(stream_id, status::LEVEL_ERROR, code, description);
        Ok(())
    }

    /// Accepts a play request: StreamBegin, `Play.Reset`, `Play.Start`,
    /// `|RtmpSampleAccess` (the order nginx-rtmp uses). Media may follow.
    pub fn accept_play(&mut self, stream_id: u32) -> Result<()> {
        let slot = self.slot_in(stream_id, Role::PlayRequested)?;
        slot.role = Role::Playing;
        let name = slot.name.clone();
        self.conn
            .send_control(&Message::UserControl(UserControl::StreamBegin(stream_id)));
        self.send_status(
            stream_id,
            status::LEVEL_STATUS,
            status::PLAY_RESET,
            &format!("Playing and resetting {name}."),
        );
        self.send_status(
            stream_id,
            status::LEVEL_STATUS,
            status::PLAY_START,
            &format!("Started playing {name}."),
        );
        let access = Message::data(vec!["|RtmpSampleAccess".into(), true.into(), true.into()]);
        self.conn
            .send(ChunkStreamId::STREAM, Timestamp::ZERO, stream_id, &access);
        Ok(())
    }

    /// Refuses a play request with an error-level `onStatus`.
    pub fn reject_play(&mut self, stream_id: u32, code: &str, description: &str) -> Result<()> {
        let slot = self.slot_in(stream_id, Role::PlayRequested)?;
        slot.role = Role::Created;
        self.send_status(stream_id, status::LEVEL_ERROR, code, description);
        Ok(())
    }

    fn playing(&self, stream_id: u32) -> Result<()> {
        match self.streams.get(&stream_id) {
            Some(s) if s.role == Role::Playing => Ok(()),
            _ => Err(Error::Misuse("stream is not playing")),
        }
    }

    /// Sends `onMetaData` to a player.
    pub fn send_metadata(
        &mut self,
        stream_id: u32,
        timestamp: Timestamp,
        data: &DataMessage,
    ) -> Result<()> {
        self.playing(stream_id)?;
        let msg = Message::data(data.values.clone());
        self.conn
            .send(ChunkStreamId::STREAM, timestamp, stream_id, &msg);
        Ok(())
    }

    /// Sends an audio (8), video (9) or AMF0 data (18, e.g. an encoded
    /// `onMetaData`) message to a player.
    pub fn send_media(
        &mut self,
        stream_id: u32,
        type_id: u8,
        timestamp: Timestamp,
        payload: &[u8],
    ) -> Result<()> {
        self.playing(stream_id)?;
        let csid = media_csid(type_id, payload.len())?;
        self.conn
            .send_raw(csid, timestamp, type_id, stream_id, payload);
        Ok(())
    }

    /// Like [`ServerSession::send_media`], but the payload is not copied:
    /// it goes out as slices of `payload` (take the output with
    /// [`ServerSession::take_output`] and write it vectored). This is how one
    /// buffer serves every player of a stream.
    pub fn send_media_shared(
        &mut self,
        stream_id: u32,
        type_id: u8,
        timestamp: Timestamp,
        payload: &Bytes,
    ) -> Result<()> {
        self.playing(stream_id)?;
        let csid = media_csid(type_id, payload.len())?;
        self.conn
            .send_shared(csid, timestamp, type_id, stream_id, payload);
        Ok(())
    }

    /// Tells a player its publisher left: StreamEOF, then
    /// `NetStream.Play.UnpublishNotify` (what nginx-rtmp sends).
    pub fn send_stream_end(&mut self, stream_id: u32) -> Result<()> {
        self.playing(stream_id)?;
        self.conn
            .send_control(&Message::UserControl(UserControl::StreamEof(stream_id)));
        self.send_status(
            stream_id,
            status::LEVEL_STATUS,
            status::PLAY_UNPUBLISH_NOTIFY,
            "Stop publishing.",
        );
        Ok(())
    }

    /// Tells a player a publisher (re)appeared: StreamBegin, then
    /// `NetStream.Play.PublishNotify`.
    pub fn send_stream_begin(&mut self, stream_id: u32) -> Result<()> {
        self.playing(stream_id)?;
        self.conn
            .send_control(&Message::UserControl(UserControl::StreamBegin(stream_id)));
        self.send_status(
            stream_id,
            status::LEVEL_STATUS,
            status::PLAY_PUBLISH_NOTIFY,
            "Start publishing.",
        );
        Ok(())
    }
}
