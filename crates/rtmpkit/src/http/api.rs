//! The operator API under `/api/v1`, behind the bearer token:
//! - `GET /api/v1/streams` and `GET /api/v1/streams/APP/STREAM`: each
//!   stream's publisher session, players by kind, codecs, bitrate in,
//!   recording state;
//! - `GET /api/v1/sessions` and `GET /api/v1/sessions/ID`: each session's
//!   kind, role, stream, address, start, bytes in and out, queue, drops
//!   and what it said in `connect`;
//! - `DELETE /api/v1/sessions/ID[?block=SECS]`: kicks a session; `block`
//!   refuses its stream's next publishes for that long;
//! - `POST /api/v1/reload`: the program reads its settings again and
//!   applies them (see [`Reloader`](crate::server::Reloader)).

use super::{Body, Page, json};
use crate::server::{SessionInfo, StreamStat};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

fn session_json(s: &SessionInfo) -> Value {
    let started = s
        .started
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    json!({
        "id": s.id,
        "kind": s.kind.name(),
        "role": s.role,
        "stream": s.stream,
        "peer": s.peer.map(|p| p.to_string()),
        "started": started,
        "bytes_in": s.bytes_in,
        "bytes_out": s.bytes_out,
        "queued_bytes": s.queued_bytes,
        "dropped": s.dropped,
        "flash_ver": s.flash_ver,
        "tc_url": s.tc_url,
    })
}

fn not_found(why: &str) -> Response<Body> {
    json(StatusCode::NOT_FOUND, json!({ "error": why }))
}

impl Page {
    fn stream_json(&self, st: &StreamStat, sessions: &[SessionInfo]) -> Value {
        let mine = sessions
            .iter()
            .filter(|s| s.stream.as_deref() == Some(st.name.as_str()));
        let mut players: BTreeMap<&str, u64> = BTreeMap::new();
        let mut publisher = None;
        for s in mine {
            match s.role {
                Some("publisher") => publisher = Some(s.id),
                Some("player") => *players.entry(s.kind.name()).or_default() += 1,
                _ => {}
            }
        }
        json!({
            "name": st.name,
            "publishing": st.publishing,
            "publisher": publisher,
            "players": st.players,
            "players_by_kind": players,
            "bitrate_in_kbps": st.bits_per_second / 1000,
            "video": st.video.as_ref().map(|v| json!({
                "codec": v.codec, "profile": v.profile, "width": v.width, "height": v.height,
            })),
            "audio": st.audio.as_ref().map(|a| json!({
                "codec": a.codec, "profile": a.profile,
                "sample_rate": a.sample_rate, "channels": a.channels,
            })),
            "recording": self.stats.recording(&st.name),
        })
    }

    /// Asks the program to reload, and answers with what changed.
    async fn reload(&self) -> Response<Body> {
        let unavailable =
            |why: &str| json(StatusCode::SERVICE_UNAVAILABLE, json!({ "error": why }));
        let Some(requests) = &self.reload else {
            return unavailable("this server cannot reload");
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        if requests.send(tx).await.is_err() {
            return unavailable("the reload task has stopped");
        }
        match rx.await {
            Ok(Ok(r)) => json(
                StatusCode::OK,
                json!({
                    "reloaded": true,
                    "listeners": r.listeners,
                    "closed_sessions": r.closed_sessions,
                    "restart_needed": r.restart_needed,
                }),
            ),
            Ok(Err(why)) => json(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "reloaded": false, "error": why }),
            ),
            Err(_) => unavailable("the reload was dropped"),
        }
    }

    /// A request under `/api/v1/` (the bearer token was checked).
    pub(super) async fn api(&self, req: &Request<Incoming>) -> Response<Body> {
        let path = percent_encoding::percent_decode_str(req.uri().path()).decode_utf8_lossy();
        let rest = path.trim_start_matches("/api/v1/").trim_end_matches('/');
        let (what, arg) = rest.split_once('/').unwrap_or((rest, ""));
        match (req.method(), what) {
            (&Method::GET, "sessions") if arg.is_empty() => {
                let list: Vec<Value> = self.sessions.list().iter().map(session_json).collect();
                json(StatusCode::OK, json!({ "sessions": list }))
            }
            (&Method::GET, "sessions") => {
                match arg.parse().ok().and_then(|id| self.sessions.get(id)) {
                    Some(s) => json(StatusCode::OK, session_json(&s)),
                    None => not_found("no such session"),
                }
            }
            (&Method::DELETE, "sessions") => {
                let block = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                    .find(|(k, _)| k == "block")
                    .map(|(_, v)| v.parse::<f64>());
                let block = match block {
                    None => None,
                    Some(Ok(s)) if s.is_finite() && s > 0.0 && s <= 86_400.0 * 365.0 => {
                        Some(Duration::from_secs_f64(s))
                    }
                    Some(_) => {
                        return json(
                            StatusCode::BAD_REQUEST,
                            json!({"error": "block must be a number of seconds > 0"}),
                        );
                    }
                };
                match arg.parse() {
                    Ok(id) if self.sessions.kick(id, block) => json(
                        StatusCode::OK,
                        json!({ "kicked": id, "block_secs": block.map(|b| b.as_secs_f64()) }),
                    ),
                    _ => not_found("no such session"),
                }
            }
            (&Method::GET, "streams") => {
                let sessions = self.sessions.list();
                let streams = self.stats.streams();
                if arg.is_empty() {
                    let list: Vec<Value> = streams
                        .iter()
                        .map(|s| self.stream_json(s, &sessions))
                        .collect();
                    return json(StatusCode::OK, json!({ "streams": list }));
                }
                match streams.iter().find(|s| s.name == arg) {
                    Some(s) => json(StatusCode::OK, self.stream_json(s, &sessions)),
                    None => not_found("no such stream"),
                }
            }
            (&Method::POST, "reload") if arg.is_empty() => self.reload().await,
            _ => not_found(
                "the API is GET /api/v1/streams[/APP/STREAM], GET /api/v1/sessions[/ID], DELETE /api/v1/sessions/ID[?block=SECS] and POST /api/v1/reload",
            ),
        }
    }
}
