//! `--reconnect` and `--reconnect-max`: what push, pull and relay do when an
//! established session breaks.

use rtmpkit::{ClientOptions, ReconnectPolicy};

/// Reconnect flags shared by push, pull and relay.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReconnectArgs {
    /// Dial again when the session breaks (waits 2 s, then x1.5 each time, like OBS).
    #[arg(long)]
    reconnect: bool,
    /// Attempts in a row before giving up, 0 for no limit [default: 25]; implies --reconnect.
    #[arg(long, value_name = "N")]
    reconnect_max: Option<u32>,
}

impl ReconnectArgs {
    /// Sets `opts.reconnect`.
    pub fn apply(&self, opts: &mut ClientOptions) {
        if self.reconnect || self.reconnect_max.is_some() {
            let mut policy = ReconnectPolicy::default();
            if let Some(n) = self.reconnect_max {
                policy.max_attempts = n;
            }
            opts.reconnect = Some(policy);
        }
    }
}

/// ", N reconnects (last gap X ms)" for a summary line, or nothing.
pub fn summary(reconnects: u64, last_gap_ms: Option<u64>) -> String {
    match (reconnects, last_gap_ms) {
        (0, _) => String::new(),
        (n, Some(ms)) => format!(", {n} reconnects (last gap {ms} ms)"),
        (n, None) => format!(", {n} reconnects"),
    }
}
