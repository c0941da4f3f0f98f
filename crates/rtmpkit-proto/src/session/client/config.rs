//! [`ClientConfig`]: what a client session asks for, and the `connect`
//! command object it makes of it.

use crate::amf0::{Amf0Object, Amf0Value};
use crate::chunk::DecoderLimits;
use crate::handshake::HandshakeKind;
use crate::url::RtmpUrl;
use std::time::Duration;

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
    /// Send a PingRequest this often as a keepalive (None: never).
    pub ping_interval: Option<Duration>,
    /// Enhanced RTMP v2 (E-RTMP "Enhancing NetConnection connect
    /// Command"): the FourCCs announced in `fourCcList` and as CanDecode |
    /// CanForward in `videoFourCcInfoMap` / `audioFourCcInfoMap`, and the
    /// `capsEx` bits (0x01 Reconnect, 0x02 Multitrack). Empty and 0 (the
    /// default): nothing is announced, as a legacy client.
    pub fourcc_list: Vec<String>,
    /// See `fourcc_list`.
    pub caps_ex: u32,
}

/// `capsEx` bit: the client acts on `NetConnection.Connect.ReconnectRequest`.
pub const CAPS_EX_RECONNECT: u32 = 0x01;
/// `capsEx` bit: multitrack audio / video.
pub const CAPS_EX_MULTITRACK: u32 = 0x02;

/// The video FourCCs of E-RTMP v2.
const VIDEO_FOURCCS: [&str; 6] = ["avc1", "hvc1", "vvc1", "av01", "vp09", "vp08"];

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
            ping_interval: None,
            fourcc_list: Vec::new(),
            caps_ex: 0,
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

impl ClientConfig {
    /// The command object of `connect`.
    pub(super) fn connect_object(&self) -> Amf0Object {
        let c = self;
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
        if !c.fourcc_list.is_empty() {
            let list: Vec<Amf0Value> = c
                .fourcc_list
                .iter()
                .map(|f| Amf0Value::from(f.as_str()))
                .collect();
            o.push("fourCcList", Amf0Value::StrictArray(list));
            // CanDecode | CanForward for each codec we take.
            let (mut video, mut audio) = (Amf0Object::new(), Amf0Object::new());
            for f in &c.fourcc_list {
                let map = if VIDEO_FOURCCS.contains(&f.as_str()) {
                    &mut video
                } else {
                    &mut audio
                };
                map.push(f.as_str(), 5.0);
            }
            o.push("videoFourCcInfoMap", video);
            o.push("audioFourCcInfoMap", audio);
        }
        if c.caps_ex != 0 {
            o.push("capsEx", f64::from(c.caps_ex));
        }
        o
    }
}
