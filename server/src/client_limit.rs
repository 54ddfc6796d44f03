//! Per-client token buckets, for every limit the server puts on what one
//! client may do (logins, bootstrap announces).
//!
//! A client is an IPv4 address or an IPv6 /64 ([`Source`]): one subscriber
//! usually holds a whole /64 and could otherwise try from 2^64 addresses,
//! each with a fresh budget. The table is bounded: beyond
//! [`MAX_CLIENTS`] the clients whose buckets are full (they carry no
//! information) are forgotten, and if none is, a new client is refused.

use std::{
    collections::HashMap,
    fmt,
    net::{IpAddr, Ipv6Addr},
    sync::Mutex,
    time::{Duration, Instant},
};

/// Most clients tracked at once.
pub const MAX_CLIENTS: usize = 10_000;

/// Prefix length of the IPv6 networks counted as one client.
const IPV6_CLIENT_PREFIX: u32 = 64;

/// A login client as the limiter counts it: an IPv4 address (an IPv4-mapped
/// IPv6 address counts as its IPv4 address), or an IPv6 /64.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Source(IpAddr);

impl Source {
    /// The client that `ip` belongs to.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let mask = u128::MAX << (128 - IPV6_CLIENT_PREFIX);
                Self(IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & mask)))
            }
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/{IPV6_CLIENT_PREFIX}"),
        }
    }
}

/// Allows `per_minute` events per client, in bursts of as many, refilling
/// continuously.
#[derive(Debug)]
pub struct ClientBuckets {
    per_minute: u32,
    buckets: Mutex<HashMap<Source, Bucket>>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl ClientBuckets {
    /// Buckets of `per_minute` tokens (at least one).
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `ip`'s client at `now`; `Err(wait)` when none is left.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let source = Source::of(ip);
        let capacity = f64::from(self.per_minute);
        let per_sec = capacity / 60.0;
        // A poisoned lock only means another thread panicked mid-update; the
        // map is still a valid map of buckets.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&source) {
            // Full buckets carry no information: forget them first.
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * per_sec
                    < capacity
            });
            if buckets.len() >= MAX_CLIENTS {
                return Err(Duration::from_secs(60));
            }
        }
        let bucket = buckets.entry(source).or_insert(Bucket {
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
        let limiter = ClientBuckets::new(3);
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
        let limiter = ClientBuckets::new(1);
        let t0 = Instant::now();
        assert!(limiter.check("192.0.2.1".parse().expect("ip"), t0).is_ok());
        assert!(limiter.check("192.0.2.1".parse().expect("ip"), t0).is_err());
        assert!(limiter.check("192.0.2.2".parse().expect("ip"), t0).is_ok());
        assert!(
            limiter
                .check("2001:db8:0:1::1".parse().expect("ip"), t0)
                .is_ok()
        );
        assert!(
            limiter
                .check("2001:db8:0:2::1".parse().expect("ip"), t0)
                .is_ok()
        );
    }

    #[test]
    fn an_ipv6_64_is_one_client() {
        let limiter = ClientBuckets::new(2);
        let t0 = Instant::now();
        for ip in ["2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"] {
            assert!(limiter.check(ip.parse().expect("ip"), t0).is_ok(), "{ip}");
        }
        assert!(
            limiter
                .check("2001:db8:1:2:dead:beef::1".parse().expect("ip"), t0)
                .is_err(),
            "the /64's budget is spent"
        );
        // An IPv4-mapped address is that IPv4 client.
        assert!(limiter.check("192.0.2.7".parse().expect("ip"), t0).is_ok());
        assert!(limiter.check("192.0.2.7".parse().expect("ip"), t0).is_ok());
        assert!(
            limiter
                .check("::ffff:192.0.2.7".parse().expect("ip"), t0)
                .is_err()
        );
    }

    #[test]
    fn memory_is_bounded() {
        let limiter = ClientBuckets::new(1);
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

    #[test]
    fn sources_print_as_address_or_prefix() {
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().expect("ip");
        assert_eq!(Source::of(v6).to_string(), "2001:db8:1:2::/64");
        let v4: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(Source::of(v4).to_string(), "192.0.2.7");
    }
}
