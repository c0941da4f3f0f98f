//! The server side of one connection: accepts connect, createStream,
//! publish and play, and answers the way nginx-rtmp and SRS do.
//!
//! The session decides nothing about streams: requests come out as events
//! ([`ServerEvent::PublishRequested`], ...) and the application answers with
//! [`ServerSession::accept_publish`] / [`ServerSession::reject_publish`] and so on.

use super::link::{AnyHandshake, DEFAULT_WINDOW, HandshakeFacts, Link, NoticeEvent, media_csid};
use super::{ServerSession, Session, Side};
use crate::Timestamp;
use crate::amf0::Amf0Object;
use crate::chunk::{ChunkStreamId, DecoderLimits, RawMessage};
use crate::error::{Error, Result};
use crate::handshake::ServerHandshake;
use crate::media::{Media, MediaKind};
use crate::message::{Command, LimitType, Message, StatusInfo, UserControl, status};
use std::collections::HashMap;

mod commands;
mod inbound;
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
    /// Send a PingRequest this often (None: never). Default 60 s, as
    /// nginx-rtmp's `ping`.
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
            ping_interval: Some(Duration::from_secs(60)),
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
    /// Metadata (`@setDataFrame` removed), audio or video from a publisher.
    Media {
        /// Message stream id.
        stream_id: u32,
        /// The message.
        media: Media,
    },
    /// Something unusual but harmless, worth a log line.
    Notice(String),
}

impl NoticeEvent for ServerEvent {
    fn notice(text: String) -> Self {
        ServerEvent::Notice(text)
    }
}

/// Where a message stream of the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Created,
    PublishRequested,
    Publishing,
    PlayRequested,
    Playing,
}

#[derive(Debug)]
struct Slot {
    state: SlotState,
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

/// The server side of a session: the connection's app and message streams.
#[derive(Debug)]
pub struct ServerSide {
    config: ServerConfig,
    state: ServerState,
    connect_tid: f64,
    object_encoding: f64,
    app: Option<String>,
    next_stream_id: u32,
    streams: HashMap<u32, Slot>,
    client_used_digest: bool,
    /// Whether media on another message stream was reported once.
    stray_noticed: bool,
}

impl Side for ServerSide {
    type Event = ServerEvent;

    fn on_handshake_done(
        &mut self,
        _: &mut Link<ServerEvent>,
        facts: HandshakeFacts,
    ) -> Result<()> {
        self.client_used_digest = facts.client_used_digest;
        self.state = ServerState::ExpectConnect;
        Ok(())
    }

    /// The commands that set the connection up: one that does not decode
    /// ends it (`NetConnection.Call.BadVersion`). Any other is skipped.
    fn must_act(&self, command: &str) -> bool {
        matches!(command, "connect" | "createStream" | "publish" | "play")
    }

    fn on_message(
        &mut self,
        link: &mut Link<ServerEvent>,
        raw: RawMessage,
        msg: Message,
    ) -> Result<()> {
        match msg {
            Message::Command { command, .. } => {
                return self.handle_command(link, raw.stream_id.0, command);
            }
            Message::Data { amf3, data } => self.handle_data(link, &raw, amf3, &data),
            Message::Audio(_) => self.handle_media(link, raw, MediaKind::Audio),
            Message::Video(_) => self.handle_media(link, raw, MediaKind::Video),
            Message::UserControl(_) => {}
            other => link.notice(format!("ignored message type {}", other.type_id())),
        }
        Ok(())
    }
}

impl ServerSide {
    fn is_publishing(&self, sid: u32) -> bool {
        self.streams
            .get(&sid)
            .is_some_and(|s| s.state == SlotState::Publishing)
    }

    fn send_status(
        link: &mut Link<ServerEvent>,
        msid: u32,
        level: &str,
        code: &str,
        description: &str,
    ) {
        let cmd = Command::on_status(&StatusInfo::new(level, code, description));
        link.send_command(ChunkStreamId::STREAM, msid, cmd);
    }

    fn slot_in(&mut self, sid: u32, state: SlotState) -> Result<&mut Slot> {
        match self.streams.get_mut(&sid) {
            Some(s) if s.state == state => Ok(s),
            _ => Err(Error::Misuse("no such request on that stream")),
        }
    }

    fn playing(&self, stream_id: u32) -> Result<()> {
        match self.streams.get(&stream_id) {
            Some(s) if s.state == SlotState::Playing => Ok(()),
            _ => Err(Error::Misuse("stream is not playing")),
        }
    }
}

/// Largest message a client may send before one of its publishes is
/// accepted. Commands are small (FFmpeg's and OBS's connect is a few hundred
/// bytes) and media before publishing is refused anyway, so a 10 MB
/// "connect" or a 16 MB message at chunk size 1 ends the session at its
/// header instead of costing its size in memory first.
pub const SETUP_MAX_MESSAGE_LEN: u32 = 64 * 1024;

impl ServerSession {
    /// A new session for an accepted connection.
    pub fn new(config: ServerConfig, now: Instant, seed: u64) -> Self {
        let hs = AnyHandshake::Server(ServerHandshake::new(0, seed));
        let mut link = Link::new(config.limits, hs, config.ping_interval, now);
        link.set_max_message_len(config.limits.max_message_len.min(SETUP_MAX_MESSAGE_LEN));
        // Until the client announces a window, acknowledge at ours.
        link.assume_peer_window(config.window_ack_size);
        Session {
            link,
            side: ServerSide {
                config,
                state: ServerState::ExpectHandshake,
                connect_tid: 1.0,
                object_encoding: 0.0,
                app: None,
                next_stream_id: 1,
                streams: HashMap::new(),
                client_used_digest: false,
                stray_noticed: false,
            },
        }
    }

    /// What the session waits for.
    pub fn state(&self) -> ServerState {
        if self.link.is_closed() {
            ServerState::Closed
        } else {
            self.side.state
        }
    }

    /// The app of the accepted connect.
    pub fn app(&self) -> Option<&str> {
        self.side.app.as_deref()
    }

    /// Whether the client used the digest handshake.
    pub fn client_used_digest(&self) -> bool {
        self.side.client_used_digest
    }

    /// Accepts the connect request: Window Acknowledgement Size, Set Peer
    /// Bandwidth, Set Chunk Size, then `_result` with
    /// `NetConnection.Connect.Success` (§7.2.1.1).
    pub fn accept_connect(&mut self) -> Result<()> {
        if self.side.state != ServerState::ExpectConnectDecision {
            return Err(Error::Misuse("no connect request to accept"));
        }
        self.link.send_window(self.side.config.window_ack_size);
        self.link.send_control(&Message::SetPeerBandwidth {
            size: self.side.config.peer_bandwidth,
            limit: LimitType::DYNAMIC,
        });
        self.link.set_chunk_size(self.side.config.chunk_size)?;
        // E-RTMP v2: we forward any codec and understand multitrack,
        // ModEx, nanosecond offsets and reconnect requests.
        let forward_any = || Amf0Object::new().with("*", 4.0);
        let props = Amf0Object::new()
            .with("fmsVer", "FMS/3,0,1,123")
            .with("capabilities", 31.0)
            .with("capsEx", 15.0)
            .with("videoFourCcInfoMap", forward_any())
            .with("audioFourCcInfoMap", forward_any());
        let info = StatusInfo::new(
            status::LEVEL_STATUS,
            status::CONNECT_SUCCESS,
            "Connection succeeded.",
        )
        .to_object()
        .with("objectEncoding", self.side.object_encoding);
        let tid = self.side.connect_tid;
        self.link.send_command(
            ChunkStreamId::COMMAND,
            0,
            Command::result(tid, props.into(), info.into()),
        );
        self.side.state = ServerState::Connected;
        Ok(())
    }

    /// E-RTMP v2 "Reconnect Request": asks the client to connect again,
    /// to `tc_url` (absolute, `//host/app` or `/app`) or, without one, to
    /// the same server. An `onStatus` with transaction id 0 on message
    /// stream 0. The session goes on until the client leaves.
    pub fn send_reconnect_request(&mut self, tc_url: Option<&str>, description: &str) {
        let mut info = StatusInfo::new(
            status::LEVEL_STATUS,
            status::CONNECT_RECONNECT_REQUEST,
            description,
        )
        .to_object();
        if let Some(url) = tc_url {
            info.push("tcUrl", url);
        }
        let cmd = Command::new(
            "onStatus",
            0.0,
            crate::amf0::Amf0Value::Null,
            vec![info.into()],
        );
        self.link.send_command(ChunkStreamId::COMMAND, 0, cmd);
    }

    /// Refuses the connect request with `NetConnection.Connect.Rejected`.
    /// The caller should close the connection after sending.
    pub fn reject_connect(&mut self, description: &str) -> Result<()> {
        if self.side.state != ServerState::ExpectConnectDecision {
            return Err(Error::Misuse("no connect request to reject"));
        }
        let info = StatusInfo::new(status::LEVEL_ERROR, status::CONNECT_REJECTED, description);
        let tid = self.side.connect_tid;
        self.link
            .send_command(ChunkStreamId::COMMAND, 0, Command::error(tid, &info));
        self.link.close();
        Ok(())
    }

    /// Accepts a publish request: `onStatus NetStream.Publish.Start`.
    pub fn accept_publish(&mut self, stream_id: u32) -> Result<()> {
        let max = self.side.config.limits.max_message_len;
        let slot = self.side.slot_in(stream_id, SlotState::PublishRequested)?;
        slot.state = SlotState::Publishing;
        self.link.set_max_message_len(max);
        let desc = format!("{} is now published.", slot.name);
        ServerSide::send_status(
            &mut self.link,
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
        self.reject(stream_id, SlotState::PublishRequested, code, description)
    }

    /// Accepts a play request: StreamBegin, `Play.Reset`, `Play.Start`,
    /// `|RtmpSampleAccess` (the order nginx-rtmp uses). Media may follow.
    pub fn accept_play(&mut self, stream_id: u32) -> Result<()> {
        let slot = self.side.slot_in(stream_id, SlotState::PlayRequested)?;
        slot.state = SlotState::Playing;
        let name = slot.name.clone();
        self.link
            .send_control(&Message::UserControl(UserControl::StreamBegin(stream_id)));
        ServerSide::send_status(
            &mut self.link,
            stream_id,
            status::LEVEL_STATUS,
            status::PLAY_RESET,
            &format!("Playing and resetting {name}."),
        );
        ServerSide::send_status(
            &mut self.link,
            stream_id,
            status::LEVEL_STATUS,
            status::PLAY_START,
            &format!("Started playing {name}."),
        );
        let access = Message::data(vec!["|RtmpSampleAccess".into(), true.into(), true.into()]);
        self.link
            .send(ChunkStreamId::STREAM, Timestamp::ZERO, stream_id, &access);
        Ok(())
    }

    /// Refuses a play request with an error-level `onStatus`.
    pub fn reject_play(&mut self, stream_id: u32, code: &str, description: &str) -> Result<()> {
        self.reject(stream_id, SlotState::PlayRequested, code, description)
    }

    /// Refuses the request a stream waits on: back to created, and an
    /// error-level `onStatus`.
    fn reject(
        &mut self,
        stream_id: u32,
        requested: SlotState,
        code: &str,
        description: &str,
    ) -> Result<()> {
        let slot = self.side.slot_in(stream_id, requested)?;
        slot.state = SlotState::Created;
        ServerSide::send_status(
            &mut self.link,
            stream_id,
            status::LEVEL_ERROR,
            code,
            description,
        );
        Ok(())
    }

    /// Sends one media message to a player. The payload is not copied: it
    /// goes out as slices of `media.payload` (take the output with
    /// [`ServerSession::poll_transmit`] and write it vectored). This is how
    /// one buffer serves every player of a stream.
    pub fn send_media(&mut self, stream_id: u32, media: &Media) -> Result<()> {
        self.side.playing(stream_id)?;
        let csid = media_csid(media.kind, media.payload.len())?;
        self.link.send_shared(
            csid,
            media.timestamp,
            media.type_id(),
            stream_id,
            &media.payload,
        );
        Ok(())
    }

    /// The chunks of `media` for any player on message stream `stream_id`
    /// at our chunk size `chunk_size`, encoded once for all of them (see
    /// [`ServerSession::send_media_run`]).
    pub fn encode_media_run(
        chunk_size: u32,
        stream_id: u32,
        media: &[Media],
    ) -> Result<crate::chunk::ChunkRun> {
        let mut msgs = Vec::with_capacity(media.len());
        for m in media {
            let csid = media_csid(m.kind, m.payload.len())?;
            msgs.push((csid, m.timestamp, m.type_id(), &m.payload[..]));
        }
        crate::chunk::ChunkRun::encode(chunk_size, crate::chunk::MessageStreamId(stream_id), msgs)
    }

    /// Sends media encoded once by [`ServerSession::encode_media_run`], as
    /// [`ServerSession::send_media`] would each message of it. `false`
    /// (nothing sent) when the run was made for another stream id or
    /// chunk size: send its messages one by one then.
    pub fn send_media_run(&mut self, stream_id: u32, run: &crate::chunk::ChunkRun) -> Result<bool> {
        self.side.playing(stream_id)?;
        if run.stream_id().0 != stream_id {
            return Ok(false);
        }
        Ok(self.link.send_run(run))
    }

    /// Tells a player its publisher left: StreamEOF, then
    /// `NetStream.Play.UnpublishNotify` (what nginx-rtmp sends).
    pub fn send_stream_end(&mut self, stream_id: u32) -> Result<()> {
        self.side.playing(stream_id)?;
        self.link
            .send_control(&Message::UserControl(UserControl::StreamEof(stream_id)));
        ServerSide::send_status(
            &mut self.link,
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
        self.side.playing(stream_id)?;
        self.link
            .send_control(&Message::UserControl(UserControl::StreamBegin(stream_id)));
        ServerSide::send_status(
            &mut self.link,
            stream_id,
            status::LEVEL_STATUS,
            status::PLAY_PUBLISH_NOTIFY,
            "Start publishing.",
        );
        Ok(())
    }
}
