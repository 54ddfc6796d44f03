//! Login throttling, and the bounds around the password check.
//!
//! - A token bucket per client, where a client is an IPv4 address or an IPv6
//!   /64 ([`crate::client_limit`]).
//! - At most [`MAX_CONCURRENT_PASSWORD_CHECKS`] Argon2 verifications at once,
//!   whatever the number of clients: each costs tens of milliseconds of CPU
//!   and 19 MiB of memory, and many clients could otherwise take every core.
//!   A login finding none free is answered 503 with `Retry-After` at once
//!   rather than queued, so an attacker cannot park requests (and
//!   connections) waiting for a permit.
//! - Refused logins are merged in the audit log ([`RefusalLog`]).

use std::{
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{auth::refusals::RefusalLog, client_limit::ClientBuckets};

/// Most Argon2 verifications running at once (see the module docs).
pub const MAX_CONCURRENT_PASSWORD_CHECKS: usize = 4;

/// Allows `per_minute` attempts per client ([`ClientBuckets`]); caps
/// concurrent password checks; keeps the merged refusal rows.
#[derive(Debug)]
pub struct LoginLimiter {
    buckets: ClientBuckets,
    password_checks: Arc<Semaphore>,
    refusals: RefusalLog,
}

impl LoginLimiter {
    /// A limiter allowing bursts of `per_minute` and that rate on average.
    pub fn new(per_minute: u32) -> Self {
        Self {
            buckets: ClientBuckets::new(per_minute),
            password_checks: Arc::new(Semaphore::new(MAX_CONCURRENT_PASSWORD_CHECKS)),
            refusals: RefusalLog::default(),
        }
    }

    /// Takes one attempt for `ip`'s client at `now`; `Err(wait)` when none is left.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        self.buckets.check(ip, now)
    }

    /// A permit for one password check, or `None` when
    /// [`MAX_CONCURRENT_PASSWORD_CHECKS`] are running. Move it into the
    /// blocking task: a request dropped mid-check (client gone, timeout) must
    /// not free the permit while Argon2 still runs.
    pub fn try_password_check(&self) -> Option<OwnedSemaphorePermit> {
        self.password_checks.clone().try_acquire_owned().ok()
    }

    /// The merged audit rows of refused logins.
    pub fn refusals(&self) -> &RefusalLog {
        &self.refusals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_checks_are_capped() {
        let limiter = LoginLimiter::new(1);
        let held: Vec<_> = (0..MAX_CONCURRENT_PASSWORD_CHECKS)
            .map(|_| limiter.try_password_check().expect("free permit"))
            .collect();
        assert!(limiter.try_password_check().is_none());
        drop(held);
        assert!(limiter.try_password_check().is_some());
    }
}
