//! Login throttling: a token bucket per client address, bounded in memory.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Most client addresses tracked at once; beyond this the oldest-refilled
/// entries are dropped, and if none can be dropped the attempt is refused.
const MAX_CLIENTS: usize = 10_000;

/// Allows `per_minute` attempts per address, refilling continuously.
#[derive(Debug)]
pub struct LoginLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl LoginLimiter {
    /// A limiter allowing bursts of `per_minute` and that rate on average.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one attempt for `ip` at `now`; `Err(wait)` when none is left.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(self.per_minute);
        let per_sec = capacity / 60.0;
        // A poisoned lock only means another thread panicked mid-update; the
        // map is still a valid map of buckets.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&ip) {
            // Full buckets carry no information: forget them first.
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * per_sec
                    < capacity
            });
            if buckets.len() >= MAX_CLIENTS {
                return Err(Duration::from_secs(60));
            }
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_sec).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_sec))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_refuses_then_refills() {
        let limiter = LoginLimiter::new(3);
        let ip: IpAddr = "192.0.2.10".parse().expect("ip");
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(ip, t0).is_ok());
        }
        let wait = limiter.check(ip, t0).expect_err("fourth attempt refused");
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        // One attempt refills every 20 s.
        assert!(limiter.check(ip, t0 + Duration::from_secs(21)).is_ok());
        assert!(limiter.check(ip, t0 + Duration::from_secs(21)).is_err());
    }

    #[test]
    fn addresses_are_independent() {
        let limiter = LoginLimiter::new(1);
        let t0 = Instant::now();
        assert!(limiter.check("::1".parse().expect("ip"), t0).is_ok());
        assert!(limiter.check("::1".parse().expect("ip"), t0).is_err());
        assert!(limiter.check("::2".parse().expect("ip"), t0).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let limiter = LoginLimiter::new(1);
        let t0 = Instant::now();
        for i in 0..MAX_CLIENTS as u32 {
            assert!(limiter.check(IpAddr::from(i.to_be_bytes()), t0).is_ok());
        }
        // Every tracked client is mid-window, so a new one cannot be tracked.
        assert!(limiter.check("::9".parse().expect("ip"), t0).is_err());
        // A minute later all buckets are full again and can be forgotten.
        assert!(
            limiter
                .check("::9".parse().expect("ip"), t0 + Duration::from_secs(61))
                .is_ok()
        );
        assert!(limiter.buckets.lock().expect("lock").len() <= 2);
    }
}
