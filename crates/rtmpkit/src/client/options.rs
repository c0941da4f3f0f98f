//! [`ClientOptions`]: the settings of a client session.

use std::time::Duration;

/// Options of a client session, with the defaults of the client spec
/// ("Options, with defaults").
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// "Do" timeout: from the start of the TCP connect (DNS included) until
    /// `NetStream.Publish.Start` / `NetStream.Play.Start`. Zero: none. Default 10 s.
    pub timeout: Duration,
    /// Longest wait for incoming data once started. Zero: none.
    pub read_timeout: Duration,
    /// Longest a single socket write may block. Zero: none.
    pub write_timeout: Duration,
    /// Bytes asked of the socket per read. Zero: 64 KiB.
    pub read_buffer_size: usize,
    /// Bytes gathered before a write; `flush` sends the rest, and nothing
    /// waits longer than 20 ms. Zero: every write goes out at once.
    pub write_buffer_size: usize,
    /// Zero: a write returns once its bytes were written (or buffered). N:
    /// writes go into a queue of N messages; a full queue makes the writer
    /// wait (back-pressure), nothing is dropped.
    pub write_queue_size: usize,
    /// Use the digest ("complex") handshake.
    pub complex_handshake: bool,
    /// Our outgoing chunk size.
    pub chunk_size: u32,
    /// Messages buffered between the session and [`PullSession::next_message`](super::PullSession::next_message).
    pub pull_queue_size: usize,
    /// Send a PingRequest this often as a keepalive. Zero: never.
    pub ping_interval: Duration,
    /// TLS settings for `rtmps://` URLs. `None`: verify the server against
    /// the built-in web roots ([`crate::tls::client_config`] adds CAs,
    /// [`crate::tls::insecure_client_config`] skips the check).
    #[cfg(feature = "tls")]
    pub tls: Option<std::sync::Arc<crate::tls::ClientConfig>>,
    /// Dial again when an established session breaks (off by default).
    pub reconnect: Option<ReconnectPolicy>,
    /// Enhanced RTMP v2 codecs to announce in connect (`fourCcList` and the
    /// InfoMaps), e.g. `["hvc1", "av01", "mp4a", "Opus"]`. Not empty: the
    /// client also announces multitrack (`capsEx`), so a server sends it
    /// every track; empty (the default): a legacy client, track 0 only.
    pub fourcc_list: Vec<String>,
    /// What a push drops when it falls behind (`None`, the default: it
    /// drops nothing and the writer waits, as `write_queue_size` says).
    pub drop_policy: Option<DropPolicy>,
}

/// Every codec an FLV file can carry: what a client that writes FLV (or
/// forwards) can take.
pub const ALL_FOURCCS: [&str; 12] = [
    "avc1", "hvc1", "vvc1", "av01", "vp09", "vp08", "mp4a", "Opus", "fLaC", "ac-3", "ec-3", ".mp3",
];

impl ClientOptions {
    /// These options, announcing every codec and track an FLV file can
    /// carry ([`ALL_FOURCCS`]): for a client that records or forwards.
    pub fn with_every_codec(mut self) -> Self {
        self.fourcc_list = ALL_FOURCCS.map(String::from).to_vec();
        self
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(10),
            read_timeout: Duration::ZERO,
            write_timeout: Duration::ZERO,
            read_buffer_size: 0,
            write_buffer_size: 0,
            write_queue_size: 0,
            complex_handshake: false,
            chunk_size: 4096,
            pull_queue_size: 1024,
            ping_interval: Duration::ZERO,
            #[cfg(feature = "tls")]
            tls: None,
            reconnect: None,
            fourcc_list: Vec::new(),
            drop_policy: None,
        }
    }
}

/// A push's answer to a link slower than its stream, after OBS's
/// (`obs-outputs/rtmp-stream.c`): it measures the media time queued and
/// not yet delivered (from the oldest frame the peer has not acknowledged
/// to the newest one written), and drops video frames in a fixed order.
/// Audio, sequence headers, metadata and keyframes are never dropped.
///
/// With a policy, a write returns at once: frames wait in the session's
/// own queue (its memory bounded by [`DropPolicy::max_queued_bytes`],
/// beyond which the writer waits), and the kernel keeps few bytes unsent
/// (`TCP_NOTSENT_LOWAT`), so that what waits, waits where it can be
/// dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct DropPolicy {
    /// Above this much queued, a new non-key video frame is not sent, nor
    /// any video frame after it up to the next keyframe (they depend on
    /// it). OBS's `drop_threshold_ms` default: 700 ms.
    pub drop_inter_after: Duration,
    /// Above this much queued, the non-key video frames already queued are
    /// dropped too, leaving keyframes and audio. OBS's
    /// `pframe_drop_threshold_ms` default: 900 ms, and OBS keeps it at
    /// least 200 ms above the first threshold.
    pub purge_after: Duration,
    /// Above this much queued, [`PushSession::congestion`](super::PushSession::congestion)
    /// says [`CongestionLevel::Rising`](super::CongestionLevel::Rising): time for an
    /// encoder to lower its bitrate. OBS's dynamic bitrate acts at 200 ms
    /// (`DBR_TRIGGER_USEC`).
    pub warn_after: Duration,
    /// The most bytes the queue holds before a writer waits.
    pub max_queued_bytes: usize,
}

impl Default for DropPolicy {
    fn default() -> Self {
        DropPolicy::after(Duration::from_millis(700))
    }
}

impl DropPolicy {
    /// Drops non-key video above `drop_inter_after`, purges the queue 200
    /// ms later (OBS's rule), warns at 200 ms (or sooner, for a shorter
    /// first threshold).
    pub fn after(drop_inter_after: Duration) -> Self {
        DropPolicy {
            drop_inter_after,
            purge_after: drop_inter_after + Duration::from_millis(200),
            warn_after: (drop_inter_after / 2).min(Duration::from_millis(200)),
            max_queued_bytes: 32 << 20,
        }
    }
}

/// When a session that had started breaks (a network error, the server
/// closed, no data for the read timeout), dial again, re-handshake and
/// publish / play the same stream again. A push sends metadata and sequence
/// headers again before its first frame and then waits for a keyframe; a
/// pull keeps the timestamps it hands on going forward. A refusal while
/// reconnecting (`BadName`: the server still holds the old session) is
/// retried too. The defaults follow OBS: 2 s, then x1.5 (plus up to 5 %
/// jitter) per attempt, capped at 15 min, 25 attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectPolicy {
    /// Wait before the first attempt.
    pub first_delay: Duration,
    /// Each further wait is this many times the one before.
    pub factor: f64,
    /// The longest wait.
    pub max_delay: Duration,
    /// Up to this fraction is added to each wait at random.
    pub jitter: f64,
    /// Attempts in a row before giving up; 0: never give up. A session
    /// that starts again resets the count.
    pub max_attempts: u32,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            first_delay: Duration::from_secs(2),
            factor: 1.5,
            max_delay: Duration::from_secs(15 * 60),
            jitter: 0.05,
            max_attempts: 25,
        }
    }
}

impl ReconnectPolicy {
    /// The wait before attempt `n` (1-based); `random` in 0..1.
    pub fn delay(&self, n: u32, random: f64) -> Duration {
        let grown = self.first_delay.as_secs_f64()
            * self
                .factor
                .max(1.0)
                .powi(n.saturating_sub(1).min(1000) as i32);
        let capped = grown.min(self.max_delay.as_secs_f64());
        let jittered = capped * (1.0 + self.jitter.clamp(0.0, 1.0) * random.clamp(0.0, 1.0));
        Duration::from_secs_f64(jittered.min(self.max_delay.as_secs_f64().max(capped)))
    }

    /// Whether attempt `n` (1-based) may be made.
    pub fn allows(&self, n: u32) -> bool {
        self.max_attempts == 0 || n <= self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_like_obs_and_stop_at_the_cap() {
        let p = ReconnectPolicy::default();
        assert_eq!(p.delay(1, 0.0), Duration::from_secs(2));
        assert_eq!(p.delay(2, 0.0), Duration::from_secs(3));
        assert_eq!(p.delay(3, 0.0), Duration::from_secs_f64(4.5));
        assert!(p.delay(2, 1.0) > Duration::from_secs(3));
        assert!(p.delay(2, 1.0) <= Duration::from_secs_f64(3.15));
        assert_eq!(p.delay(200, 0.5), Duration::from_secs(900));
        assert!(p.allows(25) && !p.allows(26));
        let forever = ReconnectPolicy {
            max_attempts: 0,
            ..p
        };
        assert!(forever.allows(u32::MAX));
    }
}
