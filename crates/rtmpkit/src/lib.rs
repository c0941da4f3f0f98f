//! # rtmpkit: RTMP client and server over tokio
//!
//! This crate drives the sans-IO protocol core [`rtmpkit_proto`] (re-exported
//! as [`proto`]) over tokio sockets, so an application depends on one crate.
//!
//! - [`client`]: [`PushSession`] publishes a stream, [`PullSession`] plays one.
//! - [`server`] (feature `server`): [`server::Server`], a live server with
//!   GOP cache, fan-out and relays.
//! - [`tls`] (feature `tls`): RTMPS settings for both (rustls).
//! - [`http`] (feature `http`): the server's HTTP side over hyper: the
//!   watch pages, HTTP-FLV, LL-HLS ([`hls`]: the segmenter and its fMP4
//!   and playlist writers, with no I/O), `/stats`, `/metrics`, `/drain`
//!   and `/healthz`.
//!
//! Features (all on by default): `tls` (rtmps://, rustls), `server` (the
//! live server, with `tls`; its hook client brings hyper), `http` (the
//! HTTP side, with `server`), `cluster` (cluster mode over Redis, with
//! `server`). A program that only pushes
//! or pulls takes `default-features = false, features = ["tls"]` and
//! compiles neither hyper nor redis.
//! - [`driver`]: the one connection driver both run on (a transport, a
//!   session, an application [`driver::Handler`]), for your own endpoints.
//!
//! ```no_run
//! # async fn f() -> Result<(), rtmpkit::Error> {
//! use rtmpkit::{ClientOptions, PullSession};
//! let pull = PullSession::connect("rtmp://127.0.0.1/live/test", ClientOptions::default()).await?;
//! while let Some(msg) = pull.next_message().await {
//!     println!("{:?} at {} ({} bytes)", msg.kind, msg.timestamp, msg.payload.len());
//! }
//! println!("ended: {}", pull.wait().await);
//! # Ok(()) }
//! ```

pub mod client;
pub mod driver;
mod error;
pub mod fmp4;
#[cfg(feature = "http")]
pub mod hls;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "server")]
pub mod server;
mod sync;
#[cfg(feature = "tls")]
pub mod tls;

pub use client::{
    ClientHandle, ClientOptions, Congestion, CongestionLevel, DropPolicy, EndReason, PullSession,
    PushSession, ReconnectPolicy, SessionStat,
};
pub use error::{Error, Stage};
pub use rtmpkit_proto as proto;
pub use rtmpkit_proto::RtmpUrl;
pub use rtmpkit_proto::{Media, MediaKind, Timestamp};
