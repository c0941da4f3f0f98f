//! `GET /metrics`, read by a Prometheus text-format parser: the values
//! match what the test did (players, bytes the players received,
//! refusals and broken handshakes).
#![allow(clippy::unwrap_used)]

mod common;

use common::raw::{handshaken, playing};
use common::{Served, fixture, http, rtmpkit};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

/// The samples of one scrape, by name and labels (`k=v,k=v`, sorted).
fn scrape(port: u16) -> HashMap<String, f64> {
    let (status, body) = http(port, "GET", "/metrics");
    assert_eq!(status, 200, "{body}");
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    let parsed = prometheus_parse::Scrape::parse(lines).unwrap();
    parsed
        .samples
        .into_iter()
        .map(|s| {
            let mut labels: Vec<String> =
                s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            let v = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                other => panic!("unexpected {other:?}"),
            };
            (format!("{}{{{}}}", s.metric, labels.join(",")), v)
        })
        .collect()
}

fn value(m: &HashMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("no {key} in {:#?}", m.keys().collect::<Vec<_>>()))
}

/// A player reading everything the server sends until it has been quiet
/// for `quiet`; the bytes it read, the handshake's included.
fn player(port: u16, quiet: Duration) -> std::thread::JoinHandle<(u64, TcpStream)> {
    std::thread::spawn(move || {
        let mut s = handshaken(port);
        playing(&mut s, "m");
        s.set_read_timeout(Some(quiet)).unwrap();
        let mut total = (1 + 2 * 1536) as u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n as u64,
            }
        }
        // Still connected for the scrape.
        (total, s)
    })
}

#[test]
fn metrics_match_what_happened() {
    let s = Served::start(&[
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--http-listen".into(),
        "127.0.0.1:0".into(),
    ]);
    let (port, web) = (s.plain.unwrap(), s.http.unwrap());
    let players: Vec<_> = (0..3)
        .map(|_| player(port, Duration::from_secs(3)))
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    let url = format!("rtmp://127.0.0.1:{port}/live/m");
    let mut pusher = common::Proc(
        rtmpkit()
            .args(["-q", "push"])
            .arg(fixture())
            .arg(&url)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let live = scrape(web);
    assert_eq!(value(&live, "rtmpkit_connections{role=player}"), 3.0);
    assert_eq!(value(&live, "rtmpkit_connections{role=publisher}"), 1.0);
    assert_eq!(value(&live, "rtmpkit_stream_players{stream=live/m}"), 3.0);
    assert_eq!(value(&live, "rtmpkit_streams_published{}"), 1.0);

    // A second publisher of the same stream is refused (BadName).
    let second = common::push_fixture(&url, &["-q"]);
    assert!(!second.status.success());
    // Not RTMP at all: a handshake failure.
    let mut web_client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    web_client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let _ = web_client.read(&mut [0u8; 16]);
    drop(web_client);

    assert!(
        pusher
            .wait_timeout(Duration::from_secs(20))
            .unwrap()
            .success()
    );
    let players: Vec<(u64, TcpStream)> = players.into_iter().map(|p| p.join().unwrap()).collect();
    let received: u64 = players.iter().map(|p| p.0).sum();
    assert!(received > 3 * 200_000, "players got {received} bytes");
    let end = scrape(web);
    let sent = value(&end, "rtmpkit_sent_bytes_total{}");
    // The players' bytes plus the replies to the two publishers.
    let off = (sent - received as f64) / received as f64;
    eprintln!(
        "sent {sent}, players received {received}: {:+.3}%",
        off * 100.0
    );
    assert!(
        (0.0..0.02).contains(&off),
        "sent {sent} against {received} received by the players ({:.2}%)",
        off * 100.0
    );
    let pushed = std::fs::metadata(fixture()).unwrap().len() as f64;
    let got = value(&end, "rtmpkit_received_bytes_total{}");
    assert!(
        got > pushed && got < pushed * 1.1,
        "received {got} for a {pushed}-byte file"
    );
    assert_eq!(
        value(
            &end,
            "rtmpkit_failures_total{cause=already_publishing,stage=publish}"
        ),
        1.0
    );
    let handshake: f64 = end
        .iter()
        .filter(|(k, _)| k.starts_with("rtmpkit_failures_total{") && k.contains("stage=handshake"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(handshake, 1.0, "{end:#?}");
    assert_eq!(value(&end, "rtmpkit_connections{role=publisher}"), 0.0);
    assert_eq!(value(&end, "rtmpkit_dropped_messages_total{}"), 0.0);
}
