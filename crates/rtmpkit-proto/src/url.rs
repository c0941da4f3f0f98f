//! `rtmp://` and `rtmps://` URLs.
//!
//! `rtmp://host[:port]/app[/more/app]/stream[?query]`: the app is every path
//! item but the last, the stream name is the last one, the raw query is kept
//! and sent with the stream name in publish / play (as FFmpeg and OBS do, so
//! `?key=...` style tokens reach the server).

use std::fmt;

/// A parsed RTMP URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// Whether the scheme is `rtmps` (RTMP over TLS).
    pub tls: bool,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// Port given in the URL, if any.
    pub port: Option<u16>,
    /// Application: the path without its last item.
    pub app: String,
    /// Stream name: the last path item.
    pub stream: String,
    /// Raw query without `?`, if any.
    pub query: Option<String>,
    /// `user[:password]` from the URL, if any (never printed).
    pub userinfo: Option<String>,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rtmp url {url:?}: {reason}")]
pub struct UrlError {
    /// The URL (with any password removed).
    pub url: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl RtmpUrl {
    /// Parses a URL. An app or stream name that is missing is an error.
    pub fn parse(s: &str) -> Result<Self, UrlError> {
        let err = |reason| UrlError {
            url: redact(s),
            reason,
        };
        let (tls, rest) = if let Some(r) = strip_prefix_ci(s, "rtmp://") {
            (false, r)
        } else if let Some(r) = strip_prefix_ci(s, "rtmps://") {
            (true, r)
        } else {
            return Err(err("scheme must be rtmp:// or rtmps://"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(authority[..i].to_owned()), &authority[i + 1..]),
            None => (None, authority),
        };
        let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| err("unclosed [ in ipv6 host"))?;
            let host = &r[..end];
            let after = &r[end + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse::<u16>().map_err(|_| err("bad port"))?),
                None if after.is_empty() => None,
                None => return Err(err("junk after ipv6 host")),
            };
            (host.to_owned(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_owned(),
                    Some(p.parse::<u16>().map_err(|_| err("bad port"))?),
                ),
                None => (hostport.to_owned(), None),
            }
        };
        if host.is_empty() {
            return Err(err("no host"));
        }
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (path, None),
        };
        let path = path.trim_end_matches('/');
        let (app, stream) = path.rsplit_once('/').ok_or_else(|| {
            err(if path.is_empty() {
                "no app and no stream name"
            } else {
                "no stream name (rtmp://host/app/stream)"
            })
        })?;
        if app.is_empty() {
            return Err(err("empty app"));
        }
        if stream.is_empty() {
            return Err(err("empty stream name"));
        }
        Ok(RtmpUrl {
            tls,
            host,
            port,
            app: app.to_owned(),
            stream: stream.to_owned(),
            query,
            userinfo,
        })
    }

    /// The port to connect to: the URL's, else 1935 (443 for rtmps).
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(if self.tls { 443 } else { 1935 })
    }

    fn scheme(&self) -> &'static str {
        if self.tls { "rtmps" } else { "rtmp" }
    }

    fn host_for_url(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// `scheme://host[:port]/app`: the tcUrl of connect (port only if given).
    pub fn tc_url(&self) -> String {
        match self.port {
            Some(p) => format!(
                "{}://{}:{}/{}",
                self.scheme(),
                self.host_for_url(),
                p,
                self.app
            ),
            None => format!("{}://{}/{}", self.scheme(), self.host_for_url(), self.app),
        }
    }

    /// The name sent in publish / play: the stream name with the raw query.
    pub fn stream_with_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{}", self.stream, q),
            None => self.stream.clone(),
        }
    }

    /// `host:port` to connect to.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host_for_url(), self.port_or_default())
    }
}

/// Prints the URL without credentials.
impl fmt::Display for RtmpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tc_url(), self.stream_with_query())
    }
}

fn strip_prefix_ci<'a>(s: &'a str, p: &str) -> Option<&'a str> {
    (s.len() >= p.len() && s.is_char_boundary(p.len()) && s[..p.len()].eq_ignore_ascii_case(p))
        .then(|| &s[p.len()..])
}

/// The URL with any `user:password@` removed.
pub fn redact(s: &str) -> String {
    if let Some(i) = s.find("://") {
        let rest = &s[i + 3..];
        let auth_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..auth_end].rfind('@') {
            return format!("{}{}", &s[..i + 3], &rest[at + 1..]);
        }
    }
    s.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let u = RtmpUrl::parse("rtmp://127.0.0.1/live/test").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.app.as_str(), u.stream.as_str()),
            ("127.0.0.1", None, "live", "test")
        );
        assert_eq!(u.tc_url(), "rtmp://127.0.0.1/live");
        assert_eq!(u.port_or_default(), 1935);
        let u = RtmpUrl::parse("rtmp://h:19350/a/b/c?k=v&x=1").unwrap();
        assert_eq!(u.app, "a/b");
        assert_eq!(u.stream, "c");
        assert_eq!(u.query.as_deref(), Some("k=v&x=1"));
        assert_eq!(u.tc_url(), "rtmp://h:19350/a/b");
        assert_eq!(u.stream_with_query(), "c?k=v&x=1");
        let u = RtmpUrl::parse("rtmps://[::1]/live/s").unwrap();
        assert!(u.tls);
        assert_eq!(u.host, "::1");
        assert_eq!(u.port_or_default(), 443);
        assert_eq!(u.authority(), "[::1]:443");
        let u = RtmpUrl::parse("rtmp://[::1]:1936/live/s").unwrap();
        assert_eq!(u.port, Some(1936));
    }

    #[test]
    fn password_is_never_printed() {
        let u = RtmpUrl::parse("rtmp://user:secret@host/live/s").unwrap();
        assert_eq!(u.userinfo.as_deref(), Some("user:secret"));
        assert!(!u.to_string().contains("secret"));
        let e = RtmpUrl::parse("rtmp://user:secret@host/").unwrap_err();
        assert!(!e.to_string().contains("secret"));
    }

    #[test]
    fn missing_parts_are_errors() {
        for bad in [
            "http://h/a/s",
            "rtmp://h",
            "rtmp://h/",
            "rtmp://h/app",
            "rtmp:///a/s",
            "rtmp://h:x/a/s",
            "rtmp://h//s",
        ] {
            assert!(RtmpUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
