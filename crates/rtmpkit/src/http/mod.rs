//! The HTTP side of a server (feature `http`), over hyper; what `rtmpkit
//! serve --http-listen` serves: `GET /` (the live
//! streams) and `GET /watch/APP/STREAM` (a player page), `GET /APP/STREAM.flv`
//! (HTTP-FLV, behind the play authorization, with CORS), LL-HLS under
//! `GET /APP/STREAM/`, `GET /stats` as
//! JSON, `GET /metrics` for Prometheus,
//! the operator API under `/api/v1` (sessions, kick, streams, reload), nginx-rtmp's
//! `GET /stat` XML,
//! the recordings under `GET /recordings` (`serve --record`: files, byte
//! ranges, an HLS VOD playlist),
//! `POST /drain[?tcUrl=rtmp://other/app]`, which asks every client that
//! supports it (E-RTMP v2 reconnect request) to move, and `GET /healthz`
//! for load balancers (200 while the server takes clients, 503 once it
//! drains or shuts down, or in cluster mode while Redis is unreachable).
//!
//! It is open to whoever reaches the address it listens on, unless a
//! bearer token is set (`--http-token`); the pages and `/healthz` tell
//! nothing and need no token, and HTTP-FLV and HLS ask what RTMP players
//! are asked.

mod api;
mod flv;
mod metrics;
mod pages;
mod recordings;
mod stall;
mod stat;

use crate::server::{DrainHandle, PlayerInfo, Players, SessionKind, SessionsHandle, StatsHandle};
use bytes::Bytes;
use flv::Pieces;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tracing::{debug, info};

/// What each request needs.
struct Page {
    hls: Arc<crate::hls::Hls>,
    stats: StatsHandle,
    drainer: DrainHandle,
    players: Players,
    /// `Bearer <token>`, when one is required.
    authorization: Option<String>,
    /// Where the recordings are (`serve --record`).
    recordings: Option<std::path::PathBuf>,
    sessions: SessionsHandle,
    reload: Option<ReloadRequests>,
}

/// How `POST /api/v1/reload` asks the program to read its settings again
/// and apply them: each request carries where the answer goes (the
/// report, or why nothing changed).
pub type ReloadRequests = tokio::sync::mpsc::Sender<
    tokio::sync::oneshot::Sender<Result<crate::server::ReloadReport, String>>,
>;

/// A response body: a JSON page, or a live stream.
type Body = UnsyncBoxBody<Pieces, Infallible>;

/// What [`serve`] serves.
#[derive(Debug)]
pub struct Handles {
    /// Reads the server's streams and counters.
    pub stats: StatsHandle,
    /// Moves its clients (`POST /drain`).
    pub drainer: DrainHandle,
    /// Opens HTTP-FLV and LL-HLS players.
    pub players: Players,
    /// Bearer token of the status pages.
    pub token: Option<String>,
    /// A reader that takes nothing this long is cut off.
    pub stuck_timeout: Duration,
    /// LL-HLS part and segment lengths, segments kept.
    pub hls: crate::hls::Limits,
    /// The recordings' directory, served under `/recordings`.
    pub recordings: Option<std::path::PathBuf>,
    /// Lists and kicks sessions (`/api/v1/sessions`).
    pub sessions: SessionsHandle,
    /// Where `POST /api/v1/reload` goes (none: the API says it cannot).
    pub reload: Option<ReloadRequests>,
}

/// Serves HTTP until the process ends.
pub async fn serve(listener: TcpListener, handles: Handles) {
    let stuck = handles.stuck_timeout;
    let page = Arc::new(Page {
        hls: crate::hls::Hls::new(handles.players.clone(), handles.hls),
        stats: handles.stats,
        drainer: handles.drainer,
        players: handles.players,
        authorization: handles.token.map(|t| format!("Bearer {t}")),
        recordings: handles.recordings,
        sessions: handles.sessions,
        reload: handles.reload,
    });
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                debug!("http accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let page = page.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let page = page.clone();
                async move { Ok::<_, Infallible>(page.answer(&req, peer).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(TokioIo::new(stall::StallGuard::new(socket, stuck)), service);
            if let Err(e) = conn.await {
                // A reader cut off for taking nothing is worth seeing.
                let stalled = std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<std::io::Error>())
                    .filter(|io| io.kind() == std::io::ErrorKind::TimedOut);
                if let Some(why) = stalled {
                    info!(%peer, "http connection closed: {why}");
                } else {
                    debug!(%peer, "http connection: {e}");
                }
            }
        });
    }
}

fn full(b: Bytes) -> Body {
    Full::new(Pieces::from(b)).boxed_unsync()
}

fn json(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut text = body.to_string();
    text.push('\n');
    let mut resp = Response::new(full(Bytes::from(text)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Page {
    async fn answer(&self, req: &Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        if req.method() == Method::GET && req.uri().path().starts_with("/recordings/") {
            return self.recording(req, peer).await;
        }
        if req.method() == Method::GET && req.uri().path().ends_with(".flv") {
            return self.http_flv(req, peer).await;
        }
        let path = req.uri().path();
        if req.method() == Method::GET
            && [".m3u8", ".m4s", ".mp4"].iter().any(|x| path.ends_with(x))
        {
            return self.hls(req, peer).await;
        }
        if req.method() == Method::GET
            && let Some((kind, body, cached)) = pages::find(path)
        {
            let mut resp = Response::new(full(body));
            let h = resp.headers_mut();
            h.insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static(kind));
            let cache = if cached { "max-age=3600" } else { "no-cache" };
            h.insert(
                hyper::header::CACHE_CONTROL,
                hyper::header::HeaderValue::from_static(cache),
            );
            return resp;
        }
        if req.method() == Method::GET && req.uri().path() == "/healthz" {
            let cluster = self.stats.cluster();
            return if self.stats.is_draining() {
                json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({"status": "draining"}),
                )
            } else if cluster.is_some_and(|c| !c.redis_reachable) {
                json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({"status": "redis unreachable"}),
                )
            } else {
                json(StatusCode::OK, serde_json::json!({"status": "ok"}))
            };
        }
        if let Some(want) = &self.authorization {
            let given = req
                .headers()
                .get(AUTHORIZATION)
                .map(|v| v.as_bytes())
                .unwrap_or_default();
            if !same(given, want.as_bytes()) {
                let mut resp = json(
                    StatusCode::UNAUTHORIZED,
                    serde_json::json!({"error": "a bearer token is required"}),
                );
                resp.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    hyper::header::HeaderValue::from_static("Bearer"),
                );
                return resp;
            }
        }
        if req.method() == Method::POST && req.uri().path() == "/drain" {
            let tc_url = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                .find(|(k, _)| k == "tcUrl")
                .map(|(_, v)| v.into_owned());
            if let Some(url) = &tc_url
                && !(url.starts_with("rtmp://")
                    || url.starts_with("rtmps://")
                    || url.starts_with('/'))
            {
                return json(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({"error": "tcUrl must be rtmp[s]://host[:port]/app, //host/app or /app"}),
                );
            }
            self.drainer.drain(tc_url.clone());
            return json(
                StatusCode::OK,
                serde_json::json!({ "draining": true, "tcUrl": tc_url }),
            );
        }
        if req.uri().path().starts_with("/api/v1/") {
            return self.api(req).await;
        }
        if req.method() == Method::GET && req.uri().path() == "/stat" {
            return self.stat();
        }
        if req.method() == Method::GET && req.uri().path() == "/recordings" {
            return self.recording_list().await;
        }
        if req.method() == Method::GET && req.uri().path() == "/metrics" {
            let mut resp = Response::new(full(Bytes::from(self::metrics::render(&self.stats))));
            resp.headers_mut().insert(
                CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(self::metrics::CONTENT_TYPE),
            );
            return resp;
        }
        if req.method() != Method::GET || req.uri().path() != "/stats" {
            return json(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "try GET /, GET /stats, GET /metrics, GET /healthz or POST /drain"}),
            );
        }
        let streams: Vec<serde_json::Value> =
            self.stats
                .streams()
                .into_iter()
                .map(|s| {
                    // A multitrack stream's video tracks: the renditions that
                    // `STREAM?track=ID` plays.
                    let video: Vec<_> = s.tracks.iter().filter(|t| !t.audio).collect();
                    let renditions: Vec<serde_json::Value> =
                        if video.len() > 1 {
                            video
                        .iter()
                        .map(|t| serde_json::json!({
                            "track": t.id, "codec": t.codec, "width": t.width,
                            "height": t.height, "bitrate_kbps": t.bits_per_second / 1000,
                        }))
                        .collect()
                        } else {
                            Vec::new()
                        };
                    serde_json::json!({
                        "name": s.name,
                        "publishing": s.publishing,
                        "players": s.players,
                        "bitrate_kbps": s.bits_per_second / 1000,
                        "renditions": renditions,
                        "video": s.video.map(|v| serde_json::json!({
                            "codec": v.codec, "profile": v.profile,
                            "width": v.width, "height": v.height,
                        })),
                        "audio": s.audio.map(|a| serde_json::json!({
                            "codec": a.codec, "profile": a.profile,
                            "sample_rate": a.sample_rate, "channels": a.channels,
                        })),
                    })
                })
                .collect();
        let mut body = serde_json::json!({ "streams": streams });
        if let Some(c) = self.stats.cluster() {
            let pulled: Vec<serde_json::Value> = c
                .pulled
                .iter()
                .map(|p| serde_json::json!({"name": p.name, "source": p.source, "cluster": p.cluster}))
                .collect();
            body["cluster"] = serde_json::json!({
                "node": c.node,
                "redis_reachable": c.redis_reachable,
                "owned": c.owned,
                "pulled": pulled,
            });
        }
        json(StatusCode::OK, body)
    }
}

impl Page {
    /// `GET /APP/STREAM.flv[?query]`: the live stream as FLV.
    async fn http_flv(&self, req: &Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let path = req.uri().path();
        let path = path[1..path.len() - ".flv".len()].to_owned();
        let path = percent_encoding::percent_decode_str(&path).decode_utf8_lossy();
        let Some((app, name)) = path
            .split_once('/')
            .filter(|(a, n)| !a.is_empty() && !n.is_empty())
        else {
            return cors(json(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "HTTP-FLV is GET /APP/STREAM.flv"}),
            ));
        };
        let name = match req.uri().query() {
            Some(q) => format!("{name}?{q}"),
            None => name.to_owned(),
        };
        let who = player_info(req, peer, SessionKind::HttpFlv);
        match self.players.play(app, &name, who).await {
            Ok(player) => {
                let body = StreamBody::new(flv::body(player)).boxed_unsync();
                let mut resp = Response::new(body);
                let h = resp.headers_mut();
                h.insert(
                    CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("video/x-flv"),
                );
                h.insert(
                    hyper::header::CACHE_CONTROL,
                    hyper::header::HeaderValue::from_static("no-cache"),
                );
                cors(resp)
            }
            Err(refused) => cors(json(
                StatusCode::FORBIDDEN,
                serde_json::json!({"error": refused.to_string()}),
            )),
        }
    }
}

/// Who asks, as hooks are told.
fn player_info(req: &Request<Incoming>, peer: SocketAddr, kind: SessionKind) -> PlayerInfo {
    let text = |h| {
        req.headers()
            .get(h)
            .and_then(|v: &hyper::header::HeaderValue| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    PlayerInfo {
        addr: peer,
        url: format!("http://{}{}", text(hyper::header::HOST), req.uri()),
        page_url: text(hyper::header::REFERER),
        kind,
    }
}

impl Page {
    /// `GET /APP/STREAM/FILE`: LL-HLS.
    async fn hls(&self, req: &Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let path = percent_encoding::percent_decode_str(req.uri().path()).decode_utf8_lossy();
        let parts: Option<(&str, &str, &str)> =
            path[1..].split_once('/').and_then(|(app, rest)| {
                let (name, file) = rest.rsplit_once('/')?;
                (!app.is_empty() && !name.is_empty()).then_some((app, name, file))
            });
        let Some((app, name, file)) = parts else {
            return cors(json(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "LL-HLS is GET /APP/STREAM/index.m3u8"}),
            ));
        };
        let query = req.uri().query().unwrap_or("");
        match self
            .hls
            .answer(
                app,
                name,
                file,
                query,
                player_info(req, peer, SessionKind::Hls),
            )
            .await
        {
            crate::hls::Answer::Ok(kind, body) => {
                let mut resp = Response::new(full(body));
                let h = resp.headers_mut();
                h.insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static(kind));
                let cache = if file.ends_with(".m3u8") {
                    "no-cache"
                } else {
                    "max-age=60"
                };
                h.insert(
                    hyper::header::CACHE_CONTROL,
                    hyper::header::HeaderValue::from_static(cache),
                );
                cors(resp)
            }
            crate::hls::Answer::Err(code, why) => cors(json(
                StatusCode::from_u16(code).unwrap_or(StatusCode::NOT_FOUND),
                serde_json::json!({ "error": why }),
            )),
        }
    }
}

/// Lets a page on another origin read the response.
fn cors(mut resp: Response<Body>) -> Response<Body> {
    resp.headers_mut().insert(
        hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN,
        hyper::header::HeaderValue::from_static("*"),
    );
    resp
}
