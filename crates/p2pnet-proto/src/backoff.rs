//! Exponential backoff with full jitter for reconnect attempts.
//!
//! Attempt `n` (counting from zero) waits a duration drawn uniformly from
//! the window `[min, ceiling(n)]`, where `ceiling(n) = min(max, min * 2^(n+1))`.
//! Drawing over the whole window ("full jitter") spreads peers that lost a
//! common neighbour at the same moment, instead of having them retry in
//! lockstep. The first retry already has a window (`[min, 2*min]`) for the
//! same reason. The randomness is a `u64` supplied by the caller.

use std::time::Duration;

/// Reconnect backoff state for one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff between `min` and `max` (`max` is raised to `min` if lower).
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// The delay before the next attempt, drawn with `random` (any
    /// uniformly distributed `u64`); advances the attempt counter.
    pub fn next_delay(&mut self, random: u64) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let span = ceiling.saturating_sub(self.min).as_nanos();
        // Multiply-shift maps `random` onto [0, span] without modulo bias
        // beyond 2^-64.
        let offset = (u128::from(random) * (span + 1)) >> 64;
        let offset = u64::try_from(offset).unwrap_or(u64::MAX);
        self.min
            .saturating_add(Duration::from_nanos(offset))
            .min(ceiling)
    }

    /// Upper bound of the next delay's window.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32
            .checked_shl(self.attempt.saturating_add(1))
            .unwrap_or(u32::MAX);
        self.min
            .checked_mul(factor)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// Back to the first attempt; call after a successful connection.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Attempts made since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The lower bound of every delay.
    pub fn min(&self) -> Duration {
        self.min
    }

    /// The upper bound of every delay.
    pub fn max(&self) -> Duration {
        self.max
    }
}

impl Default for Backoff {
    /// 1 second to 5 minutes.
    fn default() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(300))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn ceiling_grows_exponentially_then_caps() {
        let mut b = Backoff::new(S(1), S(60));
        let ceilings: Vec<u64> = (0..10)
            .map(|_| {
                let c = b.ceiling();
                b.next_delay(0);
                c.as_secs()
            })
            .collect();
        assert_eq!(ceilings, vec![2, 4, 8, 16, 32, 60, 60, 60, 60, 60]);
        assert_eq!(b.attempts(), 10);
    }

    #[test]
    fn jitter_spans_the_window_and_stays_in_bounds() {
        let mut b = Backoff::new(S(1), S(60));
        // Extremes of the random input hit the window's ends.
        assert_eq!(b.clone().next_delay(0), S(1));
        assert_eq!(b.clone().next_delay(u64::MAX), S(2));
        let mid = b.clone().next_delay(u64::MAX / 2);
        assert!(mid > S(1) && mid < S(2), "{mid:?}");

        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for attempt in 0..40 {
            let ceiling = b.ceiling();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let d = b.next_delay(x);
            assert!(
                d >= S(1) && d <= ceiling && d <= S(60),
                "attempt {attempt}: {d:?}"
            );
        }
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(Duration::from_millis(100), S(10));
        for _ in 0..6 {
            b.next_delay(u64::MAX);
        }
        assert_eq!(b.ceiling(), S(10));
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert_eq!(b.ceiling(), Duration::from_millis(200));
        assert!(b.next_delay(u64::MAX) <= Duration::from_millis(200));
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut b = Backoff::new(S(1), S(300));
        b.attempt = u32::MAX - 1;
        assert_eq!(b.ceiling(), S(300));
        let d = b.next_delay(u64::MAX);
        assert_eq!(d, S(300));
        assert_eq!(b.attempts(), u32::MAX);
        b.next_delay(1);
        assert_eq!(b.attempts(), u32::MAX);
    }

    #[test]
    fn max_below_min_is_raised() {
        let mut b = Backoff::new(S(5), S(1));
        assert_eq!(b.max(), S(5));
        assert_eq!(b.next_delay(u64::MAX), S(5));
    }
}
