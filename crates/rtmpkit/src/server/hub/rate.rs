//! The publisher's bit rate, measured over windows of a few seconds.

use std::time::{Duration, Instant};

/// A window closes after this long and gives the rate (by default).
const WINDOW: Duration = Duration::from_secs(2);

/// Bytes in, and the rate of the last closed window.
#[derive(Debug)]
pub(super) struct Rate {
    window: Duration,
    start: Option<Instant>,
    bytes: u64,
    last_bps: u64,
}

impl Default for Rate {
    fn default() -> Self {
        Rate::over(WINDOW)
    }
}

impl Rate {
    /// A rate over windows of `window` (nginx-rtmp's `/stat` uses 10 s).
    pub fn over(window: Duration) -> Self {
        Rate {
            window,
            start: None,
            bytes: 0,
            last_bps: 0,
        }
    }

    pub fn add(&mut self, bytes: usize, now: Instant) {
        let start = *self.start.get_or_insert(now);
        self.bytes += bytes as u64;
        let took = now.duration_since(start);
        if took >= self.window {
            self.last_bps = (self.bytes as f64 * 8.0 / took.as_secs_f64()) as u64;
            self.bytes = 0;
            self.start = Some(now);
        }
    }

    /// Bits per second of the last window; 0 once input stopped for
    /// two windows or before the first closed.
    pub fn bits_per_second(&self, now: Instant) -> u64 {
        match self.start {
            Some(s) if now.duration_since(s) < self.window * 2 => self.last_bps,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_of_the_last_window() {
        let t0 = Instant::now();
        let mut r = Rate::default();
        for i in 0..=50u32 {
            // 1000 bytes every 50 ms: 160 kbit/s.
            r.add(1000, t0 + Duration::from_millis(u64::from(i) * 50));
        }
        let now = t0 + Duration::from_millis(2500);
        let bps = r.bits_per_second(now);
        assert!((155_000..=170_000).contains(&bps), "{bps}");
        assert_eq!(r.bits_per_second(t0 + Duration::from_secs(10)), 0);
    }
}
