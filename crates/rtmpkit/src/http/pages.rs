//! The pages a person opens: `GET /` (the live streams), `GET /watch/APP/STREAM`
//! (a player) and the files they load from `/assets/`, compiled into the
//! binary so they need no internet. The players are hls.js and mpegts.js
//! from npm (see `assets/vendor/README.md`).

use bytes::Bytes;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Every file under `/assets/`: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "hls.light.min.js",
        JS,
        include_bytes!("../../assets/vendor/hls.light.min.js"),
    ),
    (
        "hls.js.LICENSE",
        TEXT,
        include_bytes!("../../assets/vendor/hls.js.LICENSE"),
    ),
    (
        "mpegts.js",
        JS,
        include_bytes!("../../assets/vendor/mpegts.js"),
    ),
    (
        "mpegts.js.LICENSE",
        TEXT,
        include_bytes!("../../assets/vendor/mpegts.js.LICENSE"),
    ),
    (
        "mpegts.js.LICENSE.txt",
        TEXT,
        include_bytes!("../../assets/vendor/mpegts.js.LICENSE.txt"),
    ),
];

/// A page or file of `path`: content type, body and whether it may be
/// cached; `None` when `path` is none of them.
pub fn find(path: &str) -> Option<(&'static str, Bytes, bool)> {
    if path == "/" || path == "/index.html" {
        return Some((
            HTML,
            Bytes::from_static(include_bytes!("../../assets/index.html")),
            false,
        ));
    }
    if let Some(stream) = path.strip_prefix("/watch/") {
        // APP/STREAM, both present.
        let (app, name) = stream.split_once('/')?;
        if app.is_empty() || name.is_empty() {
            return None;
        }
        return Some((
            HTML,
            Bytes::from_static(include_bytes!("../../assets/watch.html")),
            false,
        ));
    }
    let name = path.strip_prefix("/assets/")?;
    ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, kind, body)| (*kind, Bytes::from_static(body), true))
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn pages_and_assets() {
        assert!(find("/").unwrap().0.starts_with("text/html"));
        assert!(find("/watch/live/cam").is_some());
        assert!(find("/watch/live").is_none());
        assert!(find("/watch//x").is_none());
        let (kind, body, cached) = find("/assets/hls.light.min.js").unwrap();
        assert!(kind.starts_with("text/javascript") && cached && body.len() > 100_000);
        assert!(find("/assets/../Cargo.toml").is_none());
        assert!(find("/stats").is_none());
    }
}
