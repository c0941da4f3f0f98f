//! A bench player: a client session on the library's driver that counts
//! what arrives and measures latency against the bench's publisher.

use super::{BenchState, PlayerStats, rand_seed};
use rtmpkit::RtmpUrl;
use rtmpkit::driver::{Connection, DriverOptions, Flow, Handler, Transport};
use rtmpkit::proto::session::{ClientConfig, ClientEvent, ClientSession, ClientSide};
use rtmpkit::{Media, MediaKind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// One player on the protocol core directly, run by the library's driver:
/// read, decode, count.
pub(super) async fn player(
    url: String,
    tls: Arc<rtmpkit::tls::ClientConfig>,
    stats: Arc<PlayerStats>,
    state: Arc<BenchState>,
    ready: tokio::sync::mpsc::Sender<Result<(), String>>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let res = player_inner(&url, tls, stats, state, ready.clone(), permit).await;
    if let Err(e) = res {
        let _ = ready.send(Err(e)).await;
    }
}

async fn player_inner(
    url: &str,
    tls: Arc<rtmpkit::tls::ClientConfig>,
    stats: Arc<PlayerStats>,
    state: Arc<BenchState>,
    ready: tokio::sync::mpsc::Sender<Result<(), String>>,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Result<(), String> {
    let u = RtmpUrl::parse(url).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    // A server that never answers must not hang the bench: 10 s to Play.Start.
    let start_deadline = t0 + Duration::from_secs(10);
    let sock = tokio::time::timeout_at(start_deadline, TcpStream::connect(u.authority()))
        .await
        .map_err(|_| "no tcp connect within 10 s".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = sock.set_nodelay(true);
    let session = ClientSession::new(
        ClientConfig::play(&u),
        std::time::Instant::now(),
        rand_seed(),
    );
    let p = BenchPlayer {
        stats,
        state,
        ready,
        permit: Some(permit),
        t0,
        start_deadline,
        first: true,
    };
    if !u.tls {
        return drive(
            Connection::new(sock, session, url, DriverOptions::default()),
            p,
        )
        .await;
    }
    let name = rustls_pki_types::ServerName::try_from(u.host.clone())
        .map_err(|e| format!("tls server name: {e}"))?;
    let handshake = tokio_rustls::TlsConnector::from(tls).connect(name, sock);
    let sock = tokio::time::timeout_at(start_deadline, handshake)
        .await
        .map_err(|_| "no TLS handshake within 10 s".to_string())?
        .map_err(|e| format!("TLS handshake: {e}"))?;
    drive(
        Connection::new(sock, session, url, DriverOptions::default()),
        p,
    )
    .await
}

/// Runs a connected player to its end.
async fn drive<T: Transport>(
    mut conn: Connection<T, ClientSide>,
    mut p: BenchPlayer,
) -> Result<(), String> {
    match conn.run(&mut p).await {
        Ok(why) => Err(why.into()),
        Err(e) if p.permit.is_some() && e.is_timeout() => Err("no Play.Start within 10 s".into()),
        Err(e) if e.is_closed() && p.permit.is_some() => {
            Err("server closed before Play.Start".into())
        }
        Err(e) if e.is_closed() => Err("server closed".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// A bench player's application side: counts what arrives.
struct BenchPlayer {
    stats: Arc<PlayerStats>,
    state: Arc<BenchState>,
    ready: tokio::sync::mpsc::Sender<Result<(), String>>,
    /// Held until Play.Start: the next player of the ramp may connect then.
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    t0: Instant,
    start_deadline: Instant,
    first: bool,
}

impl<T: Transport> Handler<T, ClientSide> for BenchPlayer {
    type Signal = ();
    type Stop = &'static str;

    async fn on_events(
        &mut self,
        conn: &mut Connection<T, ClientSide>,
    ) -> Result<Flow<&'static str>, rtmpkit::Error> {
        let now = Instant::now();
        while let Some(ev) = conn.session_mut().poll_event() {
            match ev {
                ClientEvent::PlayStarted => {
                    self.permit.take();
                    let _ = self.ready.send(Ok(())).await;
                }
                ClientEvent::Media(m) => {
                    count(&self.stats, &self.state, self.t0, &mut self.first, &m, now);
                }
                ClientEvent::StreamEnded(_) => return Ok(Flow::Stop("stream ended")),
                _ => {}
            }
        }
        Ok(Flow::Continue)
    }

    fn deadline(&self, _: &Connection<T, ClientSide>) -> Option<Instant> {
        self.permit.is_some().then_some(self.start_deadline)
    }

    fn on_deadline(
        &mut self,
        conn: &mut Connection<T, ClientSide>,
    ) -> Result<Flow<&'static str>, rtmpkit::Error> {
        Err(rtmpkit::Error::Timeout {
            stage: rtmpkit::Stage::Play,
            peer: conn.peer().to_owned(),
            after: Duration::from_secs(10),
        })
    }
}

/// Counts one message a player got: bytes and messages while measuring,
/// the time to the first video frame, and the latency of live frames.
pub(super) fn count(
    stats: &PlayerStats,
    state: &BenchState,
    t0: Instant,
    first: &mut bool,
    m: &Media,
    now: Instant,
) {
    let video = m.kind == MediaKind::Video;
    if video && *first && !m.sequence_header {
        *first = false;
        state
            .first_frame
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    let audio = m.kind == MediaKind::Audio;
    if !state.measuring.load(Ordering::Relaxed) || !(video || audio) {
        return;
    }
    stats.messages.fetch_add(1, Ordering::Relaxed);
    stats
        .bytes
        .fetch_add(m.payload.len() as u64, Ordering::Relaxed);
    if audio {
        return;
    }
    stats.video.fetch_add(1, Ordering::Relaxed);
    let sent = state
        .sent
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&m.timestamp.0)
        .copied();
    // Frames from the GOP cache were published before this player
    // joined: they say nothing about live latency.
    if let Some(s) = sent.filter(|s| *s >= t0) {
        let ms = now.saturating_duration_since(s).as_secs_f64() * 1000.0;
        state
            .latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ms as f32);
    }
}
