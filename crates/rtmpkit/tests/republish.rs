//! One connection that publishes, stops, stays idle past the setup timeout,
//! and publishes again: the server keeps it and serves the second stream.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::{collect, sample_tags, start, tag_media};
use rtmpkit::driver::{Connection, DriverOptions, Flow, Handler};
use rtmpkit::proto::session::{ClientConfig, ClientEvent, ClientSession, ClientSide, ClientState};
use rtmpkit::server::ServerOptions;
use rtmpkit::{ClientOptions, Media, PullSession, RtmpUrl};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Publishes `live/a`, stops, waits, publishes `live/b` with the sample.
struct Republisher {
    started: u32,
    media: Vec<Media>,
    /// What to do at the deadline.
    next: Option<(Instant, &'static str)>,
}

impl Handler<TcpStream, ClientSide> for Republisher {
    type Signal = ();
    type Stop = u32;

    async fn on_events(
        &mut self,
        conn: &mut Connection<TcpStream, ClientSide>,
    ) -> Result<Flow<u32>, rtmpkit::Error> {
        while let Some(ev) = conn.session_mut().poll_event() {
            if let ClientEvent::PublishStarted = ev {
                self.started += 1;
                if self.started == 1 {
                    self.next = Some((Instant::now() + Duration::from_millis(200), "stop"));
                } else {
                    for m in &self.media {
                        conn.session_mut().send_media(m).expect("media");
                    }
                    self.next = Some((Instant::now() + Duration::from_millis(300), "end"));
                }
            }
        }
        Ok(Flow::Continue)
    }

    fn deadline(&self, _: &Connection<TcpStream, ClientSide>) -> Option<Instant> {
        self.next.map(|n| n.0)
    }

    fn on_deadline(
        &mut self,
        conn: &mut Connection<TcpStream, ClientSide>,
    ) -> Result<Flow<u32>, rtmpkit::Error> {
        let s = conn.session_mut();
        match self.next.take().map(|n| n.1) {
            Some("stop") => {
                s.stop_stream().expect("stop");
                assert_eq!(s.state(), ClientState::Idle);
                // Idle for longer than the server's setup timeout.
                self.next = Some((Instant::now() + Duration::from_millis(1200), "again"));
            }
            Some("again") => s.restart_stream("b").expect("restart"),
            Some(_) => {
                s.stop_stream().expect("stop");
                return Ok(Flow::Stop(self.started));
            }
            None => {}
        }
        Ok(Flow::Continue)
    }
}

#[tokio::test]
async fn unpublish_idle_and_publish_again_on_one_connection() {
    let server = start(ServerOptions {
        setup_timeout: Duration::from_millis(300),
        ..ServerOptions::default()
    })
    .await;
    let url_a = format!("rtmp://{}/live/a", server.addr);
    let player = PullSession::connect(
        &format!("rtmp://{}/live/b", server.addr),
        ClientOptions::default(),
    )
    .await
    .unwrap();
    let sock = TcpStream::connect(server.addr).await.unwrap();
    let u = RtmpUrl::parse(&url_a).unwrap();
    let session = ClientSession::new(ClientConfig::publish(&u), std::time::Instant::now(), 3);
    let mut conn = Connection::new(sock, session, &url_a, DriverOptions::default());
    let mut h = Republisher {
        started: 0,
        media: sample_tags().iter().take(60).map(tag_media).collect(),
        next: None,
    };
    let started = tokio::time::timeout(Duration::from_secs(10), conn.drive(&mut h))
        .await
        .expect("in time")
        .expect("the server kept the connection");
    assert_eq!(started, 2, "published twice on one connection");
    // The last stop_stream goes out; the player's stream ends with it.
    conn.flush().await.unwrap();
    let got = collect(&player).await;
    assert_eq!(got.len(), 60, "the player of the second stream got it all");
    conn.session_mut().close();
    let _ = conn.flush().await;
    server.stop().await;
}
