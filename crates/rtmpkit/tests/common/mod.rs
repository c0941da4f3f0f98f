//! Helpers the test files share: an in-process server, the sample stream,
//! and small peers of our own that run on the library's driver.
// Each test file uses a different subset of these helpers.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use bytes::Bytes;
use rtmpkit::driver::{Connection, DriverOptions, Flow, Handler};
use rtmpkit::proto::flv::{FlvReader, FlvTag, TAG_SCRIPT};
use rtmpkit::proto::session::{
    ClientConfig, ClientEvent, ClientSession, ClientSide, ServerConfig, ServerEvent, ServerSession,
    ServerSide,
};
use rtmpkit::server::{Server as RtmpServer, ServerOptions};
use rtmpkit::{ClientOptions, Media, MediaKind, PullSession, PushSession, RtmpUrl};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, timeout};

pub async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    (l, format!("rtmp://127.0.0.1:{port}/live/test"))
}

pub fn opts(timeout: Duration) -> ClientOptions {
    ClientOptions {
        timeout,
        ..ClientOptions::default()
    }
}

/// An rtmpkit server running in this process.
pub struct Running {
    pub addr: SocketAddr,
    pub tls_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub fn url(&self, stream: &str) -> String {
        format!("rtmp://{}/live/{stream}", self.addr)
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        timeout(Duration::from_secs(5), self.task)
            .await
            .expect("server stops")
            .expect("task")
            .expect("run");
    }
}

pub async fn start(mut opts: ServerOptions) -> Running {
    opts.listen = Some("127.0.0.1:0".parse().expect("addr"));
    if opts.tls_certificate.is_some() {
        opts.tls_listen = Some("127.0.0.1:0".parse().expect("addr"));
    }
    let server = RtmpServer::bind(opts).await.expect("bind");
    let addr = server.local_addr().expect("plain listener");
    let tls_addr = server.tls_local_addr();
    let (stop, mut rx) = watch::channel(false);
    let task = tokio::spawn(server.run(async move {
        let _ = rx.wait_for(|s| *s).await;
    }));
    Running {
        addr,
        tls_addr,
        stop,
        task,
    }
}

pub fn sample_tags() -> Vec<FlvTag> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/sample-5s.flv"
    );
    let mut r = FlvReader::new();
    r.push(&std::fs::read(path).expect("fixture"));
    let mut v = Vec::new();
    while let Some(t) = r.next_tag().expect("valid flv") {
        v.push(t);
    }
    v
}

/// A tag of the sample as a media message.
pub fn tag_media(t: &FlvTag) -> Media {
    let kind = MediaKind::from_type_id(t.tag_type).expect("a media tag");
    Media::new(kind, t.timestamp, t.data.clone())
}

/// Publishes the sample; `pace` plays it at real time.
pub async fn publish(url: &str, pace: bool) -> PushSession {
    let push = PushSession::connect(url, ClientOptions::default())
        .await
        .expect("publish");
    let t0 = Instant::now();
    for t in sample_tags() {
        if pace {
            tokio::time::sleep_until(t0 + Duration::from_millis(t.timestamp.0.into())).await;
        }
        push.write_media(tag_media(&t)).await.expect("media");
    }
    push
}

/// (type, timestamp, payload) of the sample's audio and video tags.
pub fn expected_media() -> Vec<(u8, u32, Bytes)> {
    sample_tags()
        .into_iter()
        .filter(|t| t.tag_type != TAG_SCRIPT)
        .map(|t| (t.tag_type, t.timestamp.0, t.data))
        .collect()
}

pub async fn collect(pull: &PullSession) -> Vec<Media> {
    let mut v = Vec::new();
    while let Some(m) = timeout(Duration::from_secs(15), pull.next_message())
        .await
        .expect("message in time")
    {
        v.push(m);
    }
    v
}

/// Every message with the moment it arrived.
#[allow(dead_code)]
pub async fn collect_timed(pull: &PullSession) -> Vec<(Media, Instant)> {
    let mut v = Vec::new();
    while let Some(m) = timeout(Duration::from_secs(15), pull.next_message())
        .await
        .expect("message in time")
    {
        v.push((m, Instant::now()));
    }
    v
}

pub fn media_of(msgs: &[Media]) -> Vec<(u8, u32, Bytes)> {
    msgs.iter()
        .filter(|m| m.kind != MediaKind::Metadata)
        .map(|m| (m.type_id(), m.timestamp.0, m.payload.clone()))
        .collect()
}

/// A scripted server of one connection on the protocol core: accepts
/// connect; answers publish with `reject_publish` or accepts it; answers
/// play by sending `media` and the end of the stream. What a publisher
/// sends (video timestamp and length) comes back through `received`.
pub struct ScriptServer {
    pub reject_publish: Option<&'static str>,
    pub media: Vec<Media>,
    pub received: Vec<(u32, usize)>,
}

impl ScriptServer {
    /// Serves the first connection of `l` to its end; returns what a
    /// publisher sent.
    pub async fn serve(mut self, l: TcpListener) -> Vec<(u32, usize)> {
        let (s, peer) = l.accept().await.expect("accept");
        s.set_nodelay(true).expect("nodelay");
        let session = ServerSession::new(ServerConfig::default(), std::time::Instant::now(), 7);
        let mut conn = Connection::new(s, session, &peer.to_string(), DriverOptions::default());
        let _ = conn.run(&mut self).await;
        self.received
    }
}

impl Handler<TcpStream, ServerSide> for ScriptServer {
    type Signal = ();
    type Stop = ();

    async fn on_events(
        &mut self,
        conn: &mut Connection<TcpStream, ServerSide>,
    ) -> Result<Flow<()>, rtmpkit::Error> {
        let sess = conn.session_mut();
        while let Some(ev) = sess.poll_event() {
            match ev {
                ServerEvent::ConnectRequested { .. } => sess.accept_connect().expect("accept"),
                ServerEvent::PublishRequested { stream_id, .. } => match self.reject_publish {
                    Some(code) => sess
                        .reject_publish(stream_id, code, "Already publishing")
                        .expect("reject"),
                    None => sess.accept_publish(stream_id).expect("accept"),
                },
                ServerEvent::PlayRequested { stream_id, .. } => {
                    sess.accept_play(stream_id).expect("accept");
                    for m in &self.media {
                        sess.send_media(stream_id, m).expect("media");
                    }
                    sess.send_stream_end(stream_id).expect("eof");
                }
                ServerEvent::Media { media, .. } if media.kind == MediaKind::Video => {
                    self.received.push((media.timestamp.0, media.payload.len()));
                }
                _ => {}
            }
        }
        Ok(Flow::Continue)
    }
}

/// A player on the protocol core that stays connected across the ends of
/// streams (our `PullSession` ends with the stream, as ffmpeg users
/// expect); every event goes to the returned channel.
pub async fn event_player(url: &str) -> mpsc::UnboundedReceiver<ClientEvent> {
    let u = RtmpUrl::parse(url).expect("url");
    let sock = TcpStream::connect(u.authority()).await.expect("connect");
    let session = ClientSession::new(ClientConfig::play(&u), std::time::Instant::now(), 1);
    let mut conn = Connection::new(sock, session, url, DriverOptions::default());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _ = conn.run(&mut EventPlayer(tx)).await;
    });
    rx
}

struct EventPlayer(mpsc::UnboundedSender<ClientEvent>);

impl Handler<TcpStream, ClientSide> for EventPlayer {
    type Signal = ();
    type Stop = ();

    async fn on_events(
        &mut self,
        conn: &mut Connection<TcpStream, ClientSide>,
    ) -> Result<Flow<()>, rtmpkit::Error> {
        while let Some(ev) = conn.session_mut().poll_event() {
            if self.0.send(ev).is_err() {
                return Ok(Flow::Stop(()));
            }
        }
        Ok(Flow::Continue)
    }
}
