//! The operator API under `/api/v1`, behind the bearer token:
//! - `GET /api/v1/streams` and `GET /api/v1/streams/APP/STREAM`: each
//!   stream's publisher session, players by kind, codecs, bitrate in and
//!   out, recording state;
//! - `GET /api/v1/sessions` and `GET /api/v1/sessions/ID`: each session's
//!   kind, role, stream, address, start, bytes and bitrate in and out,
//!   queue, drops, round trip and what it said in `connect`;
//! - `DELETE /api/v1/sessions/ID[?block=SECS]`: kicks a session; `block`
//!   refuses its stream's next publishes for that long;
//! - `POST /api/v1/reload`: the program reads its settings again and
//!   applies them (see [`Reloader`](crate::server::Reloader));
//! - `GET /api/v1/openapi.json`: this API as an OpenAPI 3.1 document,
//!   generated from the handlers and types below ([`openapi_json`]).

use super::{Body, Page, json};
use crate::server::{SessionInfo, StreamStat};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// One session.
#[derive(Debug, Serialize, ToSchema)]
struct Session {
    id: u64,
    /// `rtmp`, `rtmps`, `http-flv`, `hls`, `relay` (a push of this
    /// server) or `pull` (an edge's or cluster node's pull).
    kind: String,
    /// `publisher` or `player`, once it publishes or plays.
    role: Option<String>,
    /// `app/stream` it publishes or plays.
    stream: Option<String>,
    /// The client's address.
    peer: Option<String>,
    /// When it started, seconds since the Unix epoch.
    started: f64,
    bytes_in: u64,
    bytes_out: u64,
    /// Over the time since the previous reading of this session (at least
    /// 1 s), or since it started.
    bitrate_in_kbps: u64,
    bitrate_out_kbps: u64,
    /// A player's bytes waiting in its queue.
    queued_bytes: u64,
    /// Messages a player lost for being behind.
    dropped: u64,
    /// The kernel's smoothed round-trip time (RTMP and RTMPS).
    round_trip_ms: Option<f64>,
    /// What the client said in `connect` (a relay: its URL).
    flash_ver: String,
    tc_url: String,
}

impl From<&SessionInfo> for Session {
    fn from(s: &SessionInfo) -> Self {
        let started = s
            .started
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Session {
            id: s.id,
            kind: s.kind.name().to_owned(),
            role: s.role.map(str::to_owned),
            stream: s.stream.clone(),
            peer: s.peer.map(|p| p.to_string()),
            started,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            bitrate_in_kbps: s.bitrate_in / 1000,
            bitrate_out_kbps: s.bitrate_out / 1000,
            queued_bytes: s.queued_bytes,
            dropped: s.dropped,
            round_trip_ms: s.round_trip.map(|d| d.as_secs_f64() * 1000.0),
            flash_ver: s.flash_ver.clone(),
            tc_url: s.tc_url.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct SessionList {
    sessions: Vec<Session>,
}

/// One stream.
#[derive(Debug, Serialize, ToSchema)]
struct Stream {
    /// `app/stream`.
    name: String,
    publishing: bool,
    /// The publisher's session id.
    publisher: Option<u64>,
    /// Its consumers (relay pushes included).
    players: usize,
    /// Player sessions by kind (`rtmp`, `http-flv`, `hls`, ...).
    players_by_kind: BTreeMap<String, u64>,
    /// What the publisher sends, over the last seconds.
    bitrate_in_kbps: u64,
    /// What its player sessions are sent, summed.
    bitrate_out_kbps: u64,
    /// Bytes sent to its present player sessions, summed.
    bytes_out: u64,
    /// How long its publisher has published, seconds.
    uptime_secs: Option<f64>,
    /// Track 0's video and audio.
    video: Option<Video>,
    audio: Option<Audio>,
    /// Every track (E-RTMP multitrack: several of a kind).
    tracks: Vec<Track>,
    /// Whether it is being recorded.
    recording: bool,
}

#[derive(Debug, Serialize, ToSchema)]
struct Track {
    /// `video` or `audio`.
    kind: String,
    /// The E-RTMP track id (0 without multitrack).
    id: u8,
    /// The FourCC: `avc1`, `hvc1`, `av01`, `vp09`, `mp4a`, `Opus`, ...
    codec: String,
    /// A video track's picture size, when its sequence header tells it
    /// (H.264, HEVC).
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    /// A video track of a multitrack stream (a rendition of a ladder):
    /// what the publisher sends of it, over 10 s windows. Play one
    /// rendition as a plain stream with `STREAM?track=ID`.
    #[serde(skip_serializing_if = "Option::is_none")]
    bitrate_kbps: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Video {
    codec: String,
    profile: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Audio {
    codec: String,
    profile: Option<String>,
    sample_rate: Option<u32>,
    channels: Option<u8>,
}

#[derive(Debug, Serialize, ToSchema)]
struct StreamList {
    streams: Vec<Stream>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Kicked {
    kicked: u64,
    block_secs: Option<f64>,
}

/// What a reload changed, or why it changed nothing.
#[derive(Debug, Serialize, ToSchema)]
struct Reloaded {
    reloaded: bool,
    /// Listener changes, e.g. `rtmp 0.0.0.0:1935 -> 0.0.0.0:1936`.
    listeners: Vec<String>,
    /// Whether the TLS certificate was read again.
    certificate_reloaded: bool,
    /// Live sessions closed because the new policy denies them.
    closed_sessions: usize,
    /// Changed settings that apply only after a restart.
    restart_needed: Vec<String>,
    /// Why the reload was refused (the file's line and column).
    error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct ApiError {
    error: String,
}

fn reply(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    json(
        status,
        serde_json::to_value(body).unwrap_or(serde_json::Value::Null),
    )
}

fn not_found(why: &str) -> Response<Body> {
    reply(StatusCode::NOT_FOUND, &ApiError { error: why.into() })
}

/// Every session.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions",
    responses((status = 200, description = "Every live session", body = SessionList)))]
fn list_sessions(page: &Page) -> Response<Body> {
    let sessions = page.sessions.list().iter().map(Session::from).collect();
    reply(StatusCode::OK, &SessionList { sessions })
}

/// One session.
#[utoipa::path(get, path = "/api/v1/sessions/{id}", tag = "sessions",
    params(("id" = u64, Path, description = "Session id")),
    responses((status = 200, description = "The session", body = Session),
        (status = 404, description = "No such session", body = ApiError)))]
fn get_session(page: &Page, id: &str) -> Response<Body> {
    match id.parse().ok().and_then(|id| page.sessions.get(id)) {
        Some(s) => reply(StatusCode::OK, &Session::from(&s)),
        None => not_found("no such session"),
    }
}

/// Ends a session (publisher or player) at once.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "sessions",
    params(("id" = u64, Path, description = "Session id"),
        ("block" = Option<f64>, Query,
            description = "Seconds during which the session's stream may not be published again")),
    responses((status = 200, description = "Kicked", body = Kicked),
        (status = 400, description = "A bad block value", body = ApiError),
        (status = 404, description = "No such session", body = ApiError)))]
fn kick_session(page: &Page, id: &str, query: &str) -> Response<Body> {
    let block = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "block")
        .map(|(_, v)| v.parse::<f64>());
    let block = match block {
        None => None,
        Some(Ok(s)) if s.is_finite() && s > 0.0 && s <= 86_400.0 * 365.0 => {
            Some(Duration::from_secs_f64(s))
        }
        Some(_) => {
            let error = "block must be a number of seconds > 0".into();
            return reply(StatusCode::BAD_REQUEST, &ApiError { error });
        }
    };
    match id.parse() {
        Ok(id) if page.sessions.kick(id, block) => reply(
            StatusCode::OK,
            &Kicked {
                kicked: id,
                block_secs: block.map(|b| b.as_secs_f64()),
            },
        ),
        _ => not_found("no such session"),
    }
}

/// Every stream.
#[utoipa::path(get, path = "/api/v1/streams", tag = "streams",
    responses((status = 200, description = "Every stream", body = StreamList)))]
fn list_streams(page: &Page) -> Response<Body> {
    let sessions = page.sessions.list();
    let streams = page
        .stats
        .streams()
        .iter()
        .map(|s| page.stream(s, &sessions))
        .collect();
    reply(StatusCode::OK, &StreamList { streams })
}

/// One stream.
#[utoipa::path(get, path = "/api/v1/streams/{app}/{stream}", tag = "streams",
    params(("app" = String, Path), ("stream" = String, Path)),
    responses((status = 200, description = "The stream", body = Stream),
        (status = 404, description = "No such stream", body = ApiError)))]
fn get_stream(page: &Page, name: &str) -> Response<Body> {
    let sessions = page.sessions.list();
    match page.stats.streams().iter().find(|s| s.name == name) {
        Some(s) => reply(StatusCode::OK, &page.stream(s, &sessions)),
        None => not_found("no such stream"),
    }
}

/// Reads the settings again and applies them; a bad file changes nothing.
#[utoipa::path(post, path = "/api/v1/reload", tag = "server",
    responses((status = 200, description = "Applied", body = Reloaded),
        (status = 422, description = "Refused: nothing changed", body = Reloaded),
        (status = 503, description = "This server cannot reload", body = ApiError)))]
async fn reload(page: &Page) -> Response<Body> {
    let unavailable = |why: &str| {
        let error = why.to_owned();
        reply(StatusCode::SERVICE_UNAVAILABLE, &ApiError { error })
    };
    let Some(requests) = &page.reload else {
        return unavailable("this server cannot reload");
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    if requests.send(tx).await.is_err() {
        return unavailable("the reload task has stopped");
    }
    let (status, body) = match rx.await {
        Ok(Ok(r)) => (
            StatusCode::OK,
            Reloaded {
                reloaded: true,
                listeners: r.listeners,
                certificate_reloaded: r.certificate_reloaded,
                closed_sessions: r.closed_sessions,
                restart_needed: r.restart_needed.iter().map(|s| s.to_string()).collect(),
                error: None,
            },
        ),
        Ok(Err(why)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Reloaded {
                reloaded: false,
                listeners: Vec::new(),
                certificate_reloaded: false,
                closed_sessions: 0,
                restart_needed: Vec::new(),
                error: Some(why),
            },
        ),
        Err(_) => return unavailable("the reload was dropped"),
    };
    reply(status, &body)
}

/// This API as an OpenAPI document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "server",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
fn openapi() -> Response<Body> {
    let doc: serde_json::Value = serde_json::from_str(&openapi_json()).unwrap_or_default();
    json(StatusCode::OK, doc)
}

/// Every operation needs `Authorization: Bearer TOKEN` when the server
/// has a token.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "rtmpkit operator API", description = "Sessions, streams, kick and reload of a running `rtmpkit serve`."),
    paths(list_sessions, get_session, kick_session, list_streams, get_stream, reload, openapi),
    modifiers(&Bearer),
    security(("bearer" = []))
)]
struct ApiDoc;

/// The operator API as an OpenAPI 3.1 document (pretty JSON), generated
/// from the handlers and their types; `docs/openapi.json` is this.
pub fn openapi_json() -> String {
    let mut doc = ApiDoc::openapi();
    // The API's version, so the committed file does not change with the
    // crate's.
    doc.info.version = "v1".into();
    doc.to_pretty_json().unwrap_or_default()
}

impl Page {
    fn stream(&self, st: &StreamStat, sessions: &[SessionInfo]) -> Stream {
        let mine = sessions
            .iter()
            .filter(|s| s.stream.as_deref() == Some(st.name.as_str()));
        let mut players: BTreeMap<String, u64> = BTreeMap::new();
        let (mut publisher, mut bitrate_out, mut bytes_out) = (None, 0, 0);
        for s in mine {
            match s.role {
                Some("publisher") => publisher = Some(s.id),
                Some("player") => {
                    *players.entry(s.kind.name().to_owned()).or_default() += 1;
                    bitrate_out += s.bitrate_out;
                    bytes_out += s.bytes_out;
                }
                _ => {}
            }
        }
        Stream {
            name: st.name.clone(),
            publishing: st.publishing,
            publisher,
            players: st.players,
            players_by_kind: players,
            bitrate_in_kbps: st.bits_per_second / 1000,
            bitrate_out_kbps: bitrate_out / 1000,
            bytes_out,
            uptime_secs: st.published_for.map(|d| d.as_secs_f64()),
            tracks: st
                .tracks
                .iter()
                .map(|t| Track {
                    kind: if t.audio { "audio" } else { "video" }.to_owned(),
                    id: t.id,
                    codec: t.codec.clone(),
                    width: (t.width > 0).then_some(t.width),
                    height: (t.height > 0).then_some(t.height),
                    bitrate_kbps: (st.tracks.iter().filter(|x| !x.audio).count() > 1 && !t.audio)
                        .then_some(t.bits_per_second / 1000),
                })
                .collect(),
            video: st.video.as_ref().map(|v| Video {
                codec: v.codec.clone(),
                profile: v.profile.clone(),
                width: v.width,
                height: v.height,
            }),
            audio: st.audio.as_ref().map(|a| Audio {
                codec: a.codec.clone(),
                profile: a.profile.clone(),
                sample_rate: a.sample_rate,
                channels: a.channels,
            }),
            recording: self.stats.recording(&st.name),
        }
    }

    /// A request under `/api/v1/` (the bearer token was checked).
    pub(super) async fn api(&self, req: &Request<Incoming>) -> Response<Body> {
        let path = percent_encoding::percent_decode_str(req.uri().path()).decode_utf8_lossy();
        let rest = path.trim_start_matches("/api/v1/").trim_end_matches('/');
        let (what, arg) = rest.split_once('/').unwrap_or((rest, ""));
        match (req.method(), what) {
            (&Method::GET, "sessions") if arg.is_empty() => list_sessions(self),
            (&Method::GET, "sessions") => get_session(self, arg),
            (&Method::DELETE, "sessions") => {
                kick_session(self, arg, req.uri().query().unwrap_or(""))
            }
            (&Method::GET, "streams") if arg.is_empty() => list_streams(self),
            (&Method::GET, "streams") => get_stream(self, arg),
            (&Method::POST, "reload") if arg.is_empty() => reload(self).await,
            (&Method::GET, "openapi.json") => openapi(),
            _ => not_found(
                "the API is GET /api/v1/streams[/APP/STREAM], GET /api/v1/sessions[/ID], DELETE /api/v1/sessions/ID[?block=SECS], POST /api/v1/reload and GET /api/v1/openapi.json",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    /// `docs/openapi.json` is what the code generates; after a change to
    /// the API, `RTMPKIT_WRITE_OPENAPI=1 cargo test -p rtmpkit openapi`
    /// writes it again.
    #[test]
    fn committed_openapi_document_is_generated() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let generated = super::openapi_json() + "\n";
        if std::env::var_os("RTMPKIT_WRITE_OPENAPI").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is not what the code generates: run RTMPKIT_WRITE_OPENAPI=1 cargo test -p rtmpkit openapi"
        );
        let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
        for path in [
            "/api/v1/sessions",
            "/api/v1/sessions/{id}",
            "/api/v1/streams",
            "/api/v1/streams/{app}/{stream}",
            "/api/v1/reload",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} missing");
        }
        assert!(doc["components"]["schemas"]["Session"]["properties"]["round_trip_ms"].is_object());
    }
}
