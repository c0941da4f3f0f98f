//! A push session fed straight from a source on its own task, instead of
//! through its handle's requests: no per-message channel, reply or
//! wake-up of another task. The server's relay push feeds its session from
//! its subscription to the local stream this way.

use rtmpkit_proto::media::Media;
use std::collections::VecDeque;
use tokio::sync::futures::Notified;

/// What a fed push session sends.
#[cfg_attr(not(feature = "server"), allow(dead_code))]
pub(crate) enum Fed {
    /// One media message, in order.
    Media(Media),
    /// The source ended (the stream's publisher left): the push closes.
    End,
}

/// Where a fed push session takes its media from.
pub(crate) trait Feed: Send + Sync + 'static {
    /// Resolves once something is due; a wake-up with nothing due is
    /// harmless.
    fn due(&self) -> Notified<'_>;

    /// Appends what is due to `out`, in order.
    fn take(&mut self, out: &mut VecDeque<Fed>);
}
