//! A bench player over HTTP-FLV: one GET on a hyper client connection,
//! the body read as FLV tags and counted as an RTMP bench player counts.

use super::player::count;
use super::{BenchState, PlayerStats};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rtmpkit::proto::flv::FlvReader;
use rtmpkit::{Media, MediaKind};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Plays `url` (`http://host:port/app/stream.flv`) until the stream or
/// the connection ends; reports on `ready` once the response started.
pub(super) async fn player(
    url: String,
    stats: Arc<PlayerStats>,
    state: Arc<BenchState>,
    ready: tokio::sync::mpsc::Sender<Result<(), String>>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let mut permit = Some(permit);
    let res = play(&url, stats, state, &ready, &mut permit).await;
    if let Err(e) = res {
        let _ = ready.send(Err(e)).await;
    }
}

async fn play(
    url: &str,
    stats: Arc<PlayerStats>,
    state: Arc<BenchState>,
    ready: &tokio::sync::mpsc::Sender<Result<(), String>>,
    permit: &mut Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<(), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{url}: no host"))?
        .clone();
    let t0 = Instant::now();
    let start = async {
        let sock = TcpStream::connect(authority.as_str())
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = sock.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(sock))
            .await
            .map_err(|e| format!("http: {e}"))?;
        tokio::spawn(conn);
        let req = hyper::Request::get(uri.clone())
            .header(hyper::header::HOST, authority.as_str())
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        sender
            .send_request(req)
            .await
            .map_err(|e| format!("http: {e}"))
    };
    let resp = tokio::time::timeout(Duration::from_secs(10), start)
        .await
        .map_err(|_| "no HTTP response within 10 s".to_string())??;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    permit.take();
    let _ = ready.send(Ok(())).await;
    let mut body = resp.into_body();
    let mut flv = FlvReader::new();
    let mut first = true;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("http body: {e}"))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        flv.push(&data);
        let now = Instant::now();
        while let Some(tag) = flv.next_tag().map_err(|e| format!("flv: {e}"))? {
            let m = match tag.tag_type {
                8 => Media::audio(tag.timestamp, tag.data),
                9 => Media::video(tag.timestamp, tag.data),
                _ => continue,
            };
            if m.kind == MediaKind::Video || m.kind == MediaKind::Audio {
                count(&stats, &state, t0, &mut first, &m, now);
            }
        }
    }
    Err("server ended the response".into())
}
