//! Rate limits: a global token bucket and a per-/64 budget.
//!
//! Both take the current time as an argument instead of reading a clock, so they
//! are deterministic under test; the sender passes `Instant::now()`.

use std::time::{Duration, Instant};

/// A token bucket: at most `burst + rate × t` tokens over any interval `t`.
#[derive(Clone, Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// `rate` tokens per second, holding at most `burst`; starts empty so the very
    /// first interval cannot exceed the rate either.
    pub(crate) fn new(rate: f64, burst: f64, now: Instant) -> Self {
        TokenBucket {
            rate: rate.max(f64::MIN_POSITIVE),
            burst: burst.max(1.0),
            tokens: 0.0,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.last = now;
    }

    /// Takes up to `want` whole tokens and returns how many were granted.
    pub(crate) fn take_up_to(&mut self, want: usize, now: Instant) -> usize {
        self.refill(now);
        let granted = (self.tokens.floor() as usize).min(want);
        self.tokens -= granted as f64;
        granted
    }

    /// How long until one whole token is available.
    pub(crate) fn wait_for_one(&self, now: Instant) -> Duration {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        let have = (self.tokens + dt * self.rate).min(self.burst);
        if have >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - have) / self.rate)
        }
    }
}

/// Slots in the per-/64 table. A power of two; 16 Ki slots × 16 bytes = 256 KiB.
const SUBNET_SLOTS: usize = 1 << 14;

/// A per-/64 packet budget in bounded memory.
///
/// /64s hash into a fixed table of token buckets. Two /64s that share a slot share
/// its budget, so the limit can only be *stricter* than configured, never looser.
/// With a scrambled scan order and many /64s, collisions cost little throughput; with
/// few /64s (the case the cap exists for) they are rare.
#[derive(Clone, Debug)]
pub(crate) struct SubnetLimiter {
    rate: f64,
    burst: f64,
    slots: Vec<(f64, Instant)>,
}

impl SubnetLimiter {
    pub(crate) fn new(rate_per_64: f64, now: Instant) -> Self {
        let burst = (rate_per_64 / 10.0).clamp(1.0, 64.0);
        SubnetLimiter {
            rate: rate_per_64.max(f64::MIN_POSITIVE),
            burst,
            slots: vec![(burst, now); SUBNET_SLOTS],
        }
    }

    fn slot(addr: &[u8; 16]) -> usize {
        let mut top = [0u8; 8];
        top.copy_from_slice(&addr[..8]);
        let h = u64::from_be_bytes(top).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> (64 - SUBNET_SLOTS.trailing_zeros())) as usize
    }

    /// Spends one token of `addr`'s /64, or says how long to wait for one.
    pub(crate) fn try_take(&mut self, addr: &[u8; 16], now: Instant) -> Result<(), Duration> {
        let (tokens, last) = &mut self.slots[Self::slot(addr)];
        let dt = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + dt * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_never_exceeds_burst_plus_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000.0, 10.0, t0);
        assert_eq!(b.take_up_to(100, t0), 0, "starts empty");
        let mut total = 0;
        for ms in 1..=2000u64 {
            total += b.take_up_to(1000, t0 + Duration::from_millis(ms));
        }
        assert!((1990..=2010).contains(&total), "{total}");
        // Idle for a long time: only `burst` tokens accumulate.
        let later = t0 + Duration::from_secs(100);
        assert_eq!(b.take_up_to(1000, later), 10);
        assert!(b.wait_for_one(later) > Duration::ZERO);
        assert!(b.wait_for_one(later) <= Duration::from_millis(1));
    }

    #[test]
    fn subnet_limit_is_per_64() {
        let t0 = Instant::now();
        let mut l = SubnetLimiter::new(100.0, t0);
        let a = [0x2a, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut a2 = a;
        a2[15] = 2; // same /64
        let mut b = a;
        b[7] = 2; // another /64
        let mut granted = 0;
        for _ in 0..50 {
            if l.try_take(&a, t0).is_ok() {
                granted += 1;
            }
            if l.try_take(&a2, t0).is_ok() {
                granted += 1;
            }
        }
        assert_eq!(granted, 10, "burst of rate/10 for the shared /64");
        let wait = l.try_take(&a, t0).expect_err("exhausted");
        assert!(wait <= Duration::from_millis(10), "{wait:?}");
        if SubnetLimiter::slot(&a) != SubnetLimiter::slot(&b) {
            assert!(l.try_take(&b, t0).is_ok(), "another /64 has its own budget");
        }
        // One second later: about 100 more for the /64 (bounded by the burst per call).
        let mut n = 0;
        for ms in 1..=1000u64 {
            while l.try_take(&a, t0 + Duration::from_millis(ms)).is_ok() {
                n += 1;
            }
        }
        assert!((95..=105).contains(&n), "{n}");
    }
}
