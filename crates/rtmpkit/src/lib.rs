//! # rtmpkit: RTMP client and server over tokio
//!
//! This crate drives the sans-IO protocol core [`rtmpkit_proto`] (re-exported
//! as [`proto`]) over tokio sockets, so an application depends on one crate.

pub use rtmpkit_proto as proto;
pub use rtmpkit_proto::url::RtmpUrl;
