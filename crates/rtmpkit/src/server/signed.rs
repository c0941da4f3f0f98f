//! Signed stream URLs: `?expires=E&token=T` on the stream name, where `E`
//! is a Unix time in seconds and `T` the lower-case hex of
//! HMAC-SHA256(secret, `APP/STREAM:E`). For `rtmp://h/live/cam1?expires=E`
//! the signed text is `live/cam1:E`. The token arguments are not part of
//! the stream's name.

use hmac::{Hmac, Mac};
use rtmpkit_proto::{RtmpUrl, UrlError};
use sha2::Sha256;
use std::time::{SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn mac(secret: &str, key: &str, expires: &str) -> HmacSha256 {
    // HMAC takes a key of any length.
    let mut m = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    m.update(key.as_bytes());
    m.update(b":");
    m.update(expires.as_bytes());
    m
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// The token for stream `key` (`app/stream`) valid until `expires`.
pub fn token(secret: &str, key: &str, expires: u64) -> String {
    hex(&mac(secret, key, &expires.to_string())
        .finalize()
        .into_bytes())
}

/// `url` with `expires` and `token` added to its query, valid until
/// `expires` (Unix seconds). Arguments already there are kept, except an
/// old `expires` / `token`.
pub fn sign_url(url: &str, secret: &str, expires: u64) -> Result<String, UrlError> {
    let parsed = RtmpUrl::parse(url)?;
    let key = format!("{}/{}", parsed.app, parsed.stream);
    let token = token(secret, &key, expires);
    let base = url.split_once('?').map_or(url, |(b, _)| b);
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(q) = &parsed.query {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            if k != "expires" && k != "token" {
                query.append_pair(&k, &v);
            }
        }
    }
    query.append_pair("expires", &expires.to_string());
    query.append_pair("token", &token);
    Ok(format!("{base}?{}", query.finish()))
}

/// Checks the `expires` and `token` arguments of `query` for stream `key`
/// at time `now`; the error names what is wrong.
pub(crate) fn verify(secret: &str, key: &str, query: &str, now: u64) -> Result<(), String> {
    let (mut expires, mut token) = (None, None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "expires" => expires = Some(v.into_owned()),
            "token" => token = Some(v.into_owned()),
            _ => {}
        }
    }
    let (Some(expires), Some(token)) = (expires, token) else {
        return Err("no expires / token in the stream URL".into());
    };
    let Ok(at) = expires.parse::<u64>() else {
        return Err(format!("expires={expires:?} is not a Unix time"));
    };
    let Some(token) = unhex(&token) else {
        return Err("token is not hex".into());
    };
    // Checked before the time, so a wrong token never tells whether it expired.
    mac(secret, key, &expires)
        .verify_slice(&token)
        .map_err(|_| "wrong token".to_string())?;
    if at < now {
        return Err(format!("token expired {} s ago", now - at));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify() {
        let url = sign_url("rtmp://h:1935/live/cam1?x=1", "s3cret", 1_767_225_600).expect("url");
        let token = token("s3cret", "live/cam1", 1_767_225_600);
        assert_eq!(token.len(), 64);
        assert_eq!(
            url,
            format!("rtmp://h:1935/live/cam1?x=1&expires=1767225600&token={token}")
        );
        let q = url.split_once('?').expect("query").1;
        assert_eq!(verify("s3cret", "live/cam1", q, 1_767_225_600), Ok(()));
        assert!(verify("s3cret", "live/cam1", q, 1_767_225_601).is_err());
        assert_eq!(
            verify("other", "live/cam1", q, 0),
            Err("wrong token".into())
        );
        assert_eq!(
            verify("s3cret", "live/cam2", q, 0),
            Err("wrong token".into())
        );
        assert!(verify("s3cret", "live/cam1", "x=1", 0).is_err());
        assert!(verify("s3cret", "live/cam1", "expires=1&token=zz", 0).is_err());
    }
}
