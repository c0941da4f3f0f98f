//! # rtmpkit: RTMP client and server over tokio
//!
//! This crate drives the sans-IO protocol core [`rtmpkit_proto`] (re-exported
//! as [`proto`]) over tokio sockets, so an application depends on one crate.
//!
//! - [`client`]: [`PushSession`] publishes a stream, [`PullSession`] plays one.
//! - [`server`]: [`server::Server`], a live server with GOP cache, fan-out and relays.
//! - [`tls`]: RTMPS settings for both (rustls).
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
pub mod server;
pub mod tls;

pub use client::{
    ClientHandle, ClientOptions, EndReason, PullSession, PushSession, ReconnectPolicy, SessionStat,
};
pub use error::{Error, Stage};
pub use rtmpkit_proto as proto;
pub use rtmpkit_proto::RtmpUrl;
pub use rtmpkit_proto::{Media, MediaKind, Timestamp};
