//! RTMP timestamps.
//!
//! Adobe RTMP 1.0 §4: "Timestamps in RTMP are given as an integer number of
//! milliseconds relative to an unspecified epoch ... timestamps MUST be
//! handled with serial number arithmetic (RFC 1982)"; they roll over every
//! 2^32 ms (49 d 17 h 2 m 47.296 s).

use std::fmt;

/// A 32-bit RTMP timestamp in milliseconds with wrapping (serial) arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Timestamp(pub u32);

impl Timestamp {
    /// Timestamp zero.
    pub const ZERO: Timestamp = Timestamp(0);

    /// Builds a timestamp from milliseconds.
    pub const fn from_millis(ms: u32) -> Self {
        Timestamp(ms)
    }

    /// The raw millisecond value.
    pub const fn as_millis(self) -> u32 {
        self.0
    }

    /// `self + delta`, wrapping at 2^32.
    #[must_use]
    pub const fn wrapping_add(self, delta: u32) -> Self {
        Timestamp(self.0.wrapping_add(delta))
    }

    /// The forward distance from `earlier` to `self`, wrapping at 2^32.
    pub const fn wrapping_sub(self, earlier: Timestamp) -> u32 {
        self.0.wrapping_sub(earlier.0)
    }

    /// Signed serial difference `self - other` (RFC 1982): positive when
    /// `self` is after `other` within half the number space.
    pub const fn serial_diff(self, other: Timestamp) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// Whether `self` comes before `other` in serial arithmetic.
    pub const fn is_before(self, other: Timestamp) -> bool {
        self.serial_diff(other) < 0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

impl From<u32> for Timestamp {
    fn from(v: u32) -> Self {
        Timestamp(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_2_pow_32() {
        let t = Timestamp(u32::MAX - 5);
        let u = t.wrapping_add(10);
        assert_eq!(u, Timestamp(4));
        assert_eq!(u.wrapping_sub(t), 10);
        assert_eq!(u.serial_diff(t), 10);
        assert!(t.is_before(u));
        assert!(!u.is_before(t));
    }
}
