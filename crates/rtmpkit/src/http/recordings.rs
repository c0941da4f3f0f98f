//! Recordings over HTTP (`serve --record`):
//! - `GET /recordings`: every stream's files as JSON (app, stream, and
//!   each file's name, URL, start, duration, bytes), behind the bearer
//!   token like the other status pages;
//! - `GET /recordings/APP/STREAM/index.json`: that stream's files alone
//!   (what the watch page lists);
//! - `GET /recordings/APP/STREAM/FILE`: a file, with byte ranges;
//! - `GET /recordings/APP/STREAM/index.m3u8[?start=UNIX&duration=SECS]`:
//!   an HLS VOD playlist over the stream's fMP4 files, each file its own
//!   `EXT-X-MAP` and its fragments byte ranges of it, from keyframe to
//!   keyframe.
//!
//! The files and playlists sit behind the play authorization of
//! `APP/STREAM` (signed URL, `on_play` hook), asked at every request.

use super::flv::Pieces;
use super::{Body, Page, cors, full, json, player_info};
use crate::fmp4::fragment_span;
use crate::server::SessionKind;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderValue, RANGE,
};
use hyper::{Request, Response, StatusCode};
use std::fmt::Write as _;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// A recorded file of a stream.
#[derive(Debug, Clone)]
pub(super) struct Recorded {
    /// Its path under the stream's directory (`/`-separated).
    pub name: String,
    pub path: PathBuf,
    pub bytes: u64,
    /// When it started (Unix seconds).
    pub start: f64,
    pub duration_ms: u64,
}

/// One HLS segment of a file: a byte range and a time span.
#[derive(Debug, Clone, Copy)]
pub(super) struct Segment {
    pub offset: u64,
    pub len: u64,
    pub start_ms: u64,
    pub duration_ms: u64,
}

/// An fMP4 recording's layout: the init segment's length, then its
/// segments. A box cut short by a crash ends it.
#[derive(Debug, Default)]
pub(super) struct Layout {
    pub init_len: u64,
    pub segments: Vec<Segment>,
}

/// Largest `moof` read (a fragment of a second has a few hundred samples).
const MAX_MOOF: u64 = 4 << 20;

/// Reads the box headers of an fMP4 file (and each `moof`), skipping the
/// media data.
pub(super) fn layout(path: &Path) -> io::Result<Layout> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut out = Layout::default();
    let mut at = 0u64;
    let mut pending: Option<(u64, crate::fmp4::FragmentSpan)> = None;
    while at + 8 <= len {
        let mut head = [0u8; 16];
        f.seek(SeekFrom::Start(at))?;
        f.read_exact(&mut head[..8])?;
        let mut size = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let mut header = 8;
        if size == 1 {
            f.read_exact(&mut head[8..16])?;
            size = u64::from_be_bytes(head[8..16].try_into().unwrap_or_default());
            header = 16;
        }
        if size < header || at + size > len {
            break;
        }
        match &head[4..8] {
            b"moov" => out.init_len = at + size,
            b"moof" if size <= MAX_MOOF => {
                let mut body = vec![0u8; (size - header) as usize];
                f.read_exact(&mut body)?;
                pending = fragment_span(&body).map(|s| (at, s));
            }
            b"mdat" => {
                if let Some((start, span)) = pending.take() {
                    let end = at + size;
                    match out.segments.last_mut() {
                        // A fragment that does not start with a keyframe
                        // joins the segment before it.
                        Some(last) if !span.starts_with_key => {
                            last.len = end - last.offset;
                            last.duration_ms =
                                (span.start_ms + span.duration_ms).saturating_sub(last.start_ms);
                        }
                        _ => out.segments.push(Segment {
                            offset: start,
                            len: end - start,
                            start_ms: span.start_ms,
                            duration_ms: span.duration_ms,
                        }),
                    }
                }
            }
            _ => {}
        }
        at += size;
    }
    Ok(out)
}

/// The media time of an FLV file: its last tag's timestamp.
fn flv_duration_ms(path: &Path) -> io::Result<u64> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len < 13 + 15 {
        return Ok(0);
    }
    let mut b = [0u8; 4];
    f.seek(SeekFrom::Start(len - 4))?;
    f.read_exact(&mut b)?;
    let size = u64::from(u32::from_be_bytes(b));
    if size < 11 || size + 4 > len {
        return Ok(0);
    }
    let mut tag = [0u8; 8];
    f.seek(SeekFrom::Start(len - 4 - size))?;
    f.read_exact(&mut tag)?;
    let ts = u32::from(tag[7]) << 24
        | u32::from(tag[4]) << 16
        | u32::from(tag[5]) << 8
        | u32::from(tag[6]);
    Ok(u64::from(ts))
}

/// The recordings of one stream (its directory), oldest first.
pub(super) fn stream_files(dir: &Path) -> Vec<Recorded> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out, 0);
    out.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.name.cmp(&b.name)));
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<Recorded>, depth: u32) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_dir() && depth < 6 {
            walk(root, &path, out, depth + 1);
            continue;
        }
        let ext = path.extension().and_then(|x| x.to_str()).unwrap_or("");
        let duration_ms = match ext {
            "mp4" => layout(&path)
                .ok()
                .and_then(|l| {
                    let (first, last) = (l.segments.first()?, l.segments.last()?);
                    Some(last.start_ms + last.duration_ms - first.start_ms)
                })
                .unwrap_or(0),
            "flv" => flv_duration_ms(&path).unwrap_or(0),
            _ => continue,
        };
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let secs = |t: std::time::SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0)
        };
        let start = match meta.created() {
            Ok(t) => secs(t),
            Err(_) => meta.modified().map(secs).unwrap_or(0.0) - duration_ms as f64 / 1000.0,
        };
        out.push(Recorded {
            name: rel.to_string_lossy().replace('\\', "/"),
            path,
            bytes: meta.len(),
            start,
            duration_ms,
        });
    }
}

/// Every stream with recordings: `(app, stream)` directories under `root`.
pub(super) fn streams(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let dirs = |p: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        v.sort();
        v
    };
    for app in dirs(root) {
        for stream in dirs(&root.join(&app)) {
            out.push((app.clone(), stream));
        }
    }
    out
}

/// `rest` (a path under a stream's directory from a URL) as a path there,
/// or `None` if it would leave it.
pub(super) fn under(dir: &Path, rest: &str) -> Option<PathBuf> {
    let rel = Path::new(rest);
    let safe = rel
        .components()
        .all(|c| matches!(c, Component::Normal(s) if !s.to_string_lossy().starts_with('.')));
    (safe && !rest.is_empty()).then(|| dir.join(rel))
}

/// The VOD playlist of `files` (fMP4 only) within `[from, to]` (Unix
/// seconds); `query` goes on every URI (a signed URL's token).
pub(super) fn playlist(files: &[(Recorded, Layout)], from: f64, to: f64, query: &str) -> String {
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let mut body = String::new();
    let mut target = 1u64;
    let mut first = true;
    for (file, layout) in files {
        let base = layout.segments.first().map_or(0, |s| s.start_ms);
        let picked: Vec<&Segment> = layout
            .segments
            .iter()
            .filter(|s| {
                let t0 = file.start + (s.start_ms - base) as f64 / 1000.0;
                let t1 = t0 + s.duration_ms as f64 / 1000.0;
                t1 > from && t0 < to
            })
            .collect();
        if picked.is_empty() || layout.init_len == 0 {
            continue;
        }
        if !std::mem::replace(&mut first, false) {
            body.push_str("#EXT-X-DISCONTINUITY\n");
        }
        let uri = percent_encoding::utf8_percent_encode(&file.name, URI).to_string();
        let _ = writeln!(
            body,
            "#EXT-X-MAP:URI=\"{uri}{q}\",BYTERANGE=\"{}@0\"",
            layout.init_len
        );
        for s in picked {
            target = target.max(s.duration_ms.div_ceil(1000));
            let _ = writeln!(
                body,
                "#EXTINF:{:.3},\n#EXT-X-BYTERANGE:{}@{}\n{uri}{q}",
                s.duration_ms as f64 / 1000.0,
                s.len,
                s.offset
            );
        }
    }
    format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n{body}#EXT-X-ENDLIST\n"
    )
}

/// What a path segment of a URI keeps as it is.
const URI: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'/');

/// A file is sent in reads of this size.
const CHUNK: u64 = 256 * 1024;

fn not_found(why: &str) -> Response<Body> {
    cors(json(
        StatusCode::NOT_FOUND,
        serde_json::json!({ "error": why }),
    ))
}

impl Page {
    /// `GET /recordings`.
    pub(super) async fn recording_list(&self) -> Response<Body> {
        let Some(root) = self.recordings.clone() else {
            return not_found("recording is off (serve --record DIR)");
        };
        let listed = tokio::task::spawn_blocking(move || {
            streams(&root)
                .into_iter()
                .map(|(app, stream)| {
                    let files = files_json(&root, &app, &stream);
                    serde_json::json!({ "app": app, "stream": stream, "files": files })
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        json(StatusCode::OK, serde_json::json!({ "recordings": listed }))
    }

    /// `GET /recordings/APP/STREAM/FILE`, `FILE` being `index.m3u8` or a
    /// recorded file.
    pub(super) async fn recording(
        &self,
        req: &Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let Some(root) = self.recordings.clone() else {
            return not_found("recording is off (serve --record DIR)");
        };
        let path = percent_encoding::percent_decode_str(req.uri().path()).decode_utf8_lossy();
        let parts = path
            .strip_prefix("/recordings/")
            .and_then(|p| p.split_once('/'))
            .and_then(|(app, rest)| Some((app, rest.split_once('/')?)))
            .map(|(app, (stream, file))| (app.to_owned(), stream.to_owned(), file.to_owned()));
        let Some((app, stream, file)) = parts else {
            return not_found("recordings are GET /recordings/APP/STREAM/FILE or .../index.m3u8");
        };
        let Some(dir) = under(&root, &format!("{app}/{stream}")) else {
            return not_found("no such stream");
        };
        let query = req.uri().query().unwrap_or("");
        let name = if query.is_empty() {
            stream.clone()
        } else {
            format!("{stream}?{query}")
        };
        if let Err(refused) = self
            .players
            .authorize(&app, &name, player_info(req, peer, SessionKind::HttpFlv))
            .await
        {
            return cors(json(
                StatusCode::FORBIDDEN,
                serde_json::json!({"error": refused.to_string()}),
            ));
        }
        if file == "index.m3u8" {
            return self.vod_playlist(dir, query).await;
        }
        if file == "index.json" {
            let files = tokio::task::spawn_blocking(move || files_json(&root, &app, &stream))
                .await
                .unwrap_or_default();
            return cors(json(StatusCode::OK, serde_json::json!({ "files": files })));
        }
        let Some(path) = under(&dir, &file) else {
            return not_found("no such recording");
        };
        let range = req
            .headers()
            .get(RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        send_file(&path, range.as_deref()).await
    }

    async fn vod_playlist(&self, dir: PathBuf, query: &str) -> Response<Body> {
        let arg = |k: &str| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == k)
                .and_then(|(_, v)| v.parse::<f64>().ok())
        };
        let from = arg("start").unwrap_or(0.0);
        let to = arg("duration").map_or(f64::INFINITY, |d| from + d);
        // The token (if any) goes on every URI; the window does not.
        let keep: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                form_urlencoded::parse(query.as_bytes())
                    .filter(|(k, _)| k != "start" && k != "duration"),
            )
            .finish();
        let files = tokio::task::spawn_blocking(move || {
            stream_files(&dir)
                .into_iter()
                .filter(|f| f.name.ends_with(".mp4"))
                .filter_map(|f| {
                    let l = layout(&f.path).ok()?;
                    Some((f, l))
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        if files.is_empty() {
            return not_found("no fMP4 recordings of this stream");
        }
        let text = playlist(&files, from, to, &keep);
        let mut resp = Response::new(full(Bytes::from(text)));
        let h = resp.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/vnd.apple.mpegurl"),
        );
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        cors(resp)
    }
}

/// A stream's files as the listings give them.
fn files_json(root: &Path, app: &str, stream: &str) -> Vec<serde_json::Value> {
    let Some(dir) = under(root, &format!("{app}/{stream}")) else {
        return Vec::new();
    };
    stream_files(&dir)
        .into_iter()
        .map(|f| {
            let url = format!(
                "/recordings/{app}/{stream}/{}",
                percent_encoding::utf8_percent_encode(&f.name, URI)
            );
            serde_json::json!({
                "name": f.name,
                "url": url,
                "start": f.start,
                "duration": f.duration_ms as f64 / 1000.0,
                "bytes": f.bytes,
            })
        })
        .collect()
}

/// A file, whole or the one range asked for (several ranges get the
/// whole file, which a server may always answer).
async fn send_file(path: &Path, range: Option<&str>) -> Response<Body> {
    let Ok(mut file) = tokio::fs::File::open(path).await else {
        return not_found("no such recording");
    };
    let Ok(len) = file.metadata().await.map(|m| m.len()) else {
        return not_found("no such recording");
    };
    let wanted = match range
        .map(|r| http_range_header::parse_range_header(r).and_then(|p| p.validate(len)))
    {
        None => None,
        Some(Ok(ranges)) if ranges.len() == 1 => Some(ranges[0].clone()),
        Some(Ok(_)) => None,
        Some(Err(_)) => {
            let mut resp = cors(json(
                StatusCode::RANGE_NOT_SATISFIABLE,
                serde_json::json!({"error": "range not satisfiable"}),
            ));
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                resp.headers_mut().insert(CONTENT_RANGE, v);
            }
            return resp;
        }
    };
    let (start, end) = wanted
        .as_ref()
        .map_or((0, len.saturating_sub(1)), |r| (*r.start(), *r.end()));
    let count = if len == 0 { 0 } else { end - start + 1 };
    if file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return not_found("no such recording");
    }
    let body = futures_util::stream::unfold((file, count), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; CHUNK.min(left) as usize];
        match file.read_exact(&mut buf).await {
            Ok(_) => {
                let n = buf.len() as u64;
                Some((
                    Ok(Frame::data(Pieces::from(Bytes::from(buf)))),
                    (file, left - n),
                ))
            }
            // Cut short (a file truncated meanwhile): the body ends.
            Err(_) => None,
        }
    });
    let mut resp = Response::new(StreamBody::new(body).boxed_unsync());
    if wanted.is_some() {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
            resp.headers_mut().insert(CONTENT_RANGE, v);
        }
    }
    let kind = if path.extension().is_some_and(|x| x == "flv") {
        "video/x-flv"
    } else {
        "video/mp4"
    };
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
    cors(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_stream() {
        let d = Path::new("/rec/live/cam");
        assert_eq!(
            under(d, "2026/a.mp4"),
            Some(PathBuf::from("/rec/live/cam/2026/a.mp4"))
        );
        assert_eq!(under(d, "../other/a.mp4"), None);
        assert_eq!(under(d, "/etc/passwd"), None);
        assert_eq!(under(d, ".hidden"), None);
        assert_eq!(under(d, ""), None);
    }
}
