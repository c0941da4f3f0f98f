//! `GET /healthz`: 200 while the server takes clients, 503 once it drains;
//! no token needed even when the status page has one.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Served, http as request};
use std::io::{Read, Write};
use std::net::TcpStream;

#[test]
fn healthz_is_ok_until_the_server_drains() {
    let s = Served::with_api(&[]);
    let http = s.http.unwrap();
    // No token: /healthz answers, /stats does not.
    let mut c = TcpStream::connect(("127.0.0.1", http)).unwrap();
    write!(
        c,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(r#""status":"ok""#), "{text}");
    assert_eq!(request(http, "POST", "/drain").0, 200);
    let (status, body) = request(http, "GET", "/healthz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("draining"), "{body}");
}
