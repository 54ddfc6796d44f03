//! Caller-supplied time.
//!
//! The protocol core never reads a clock. Every input that depends on time
//! takes an [`Instant`]: a point on the caller's monotonic clock, expressed as
//! the time elapsed since an epoch the caller chooses (typically the moment
//! the runtime started). Tests start at [`Instant::ZERO`] and advance a
//! virtual clock, which makes every state machine in this crate
//! deterministic.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// A point in time on the caller's monotonic clock.
///
/// Arithmetic saturates instead of panicking: a deadline that would overflow
/// is simply "never" for any practical purpose.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    /// The caller's epoch.
    pub const ZERO: Self = Self(Duration::ZERO);

    /// The instant `since_epoch` after the caller's epoch.
    ///
    /// A runtime typically records a `std::time::Instant` at start-up and
    /// passes `Instant::from_duration(start.elapsed())`.
    pub const fn from_duration(since_epoch: Duration) -> Self {
        Self(since_epoch)
    }

    /// Time elapsed since the caller's epoch.
    pub const fn as_duration(self) -> Duration {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// `self + duration`, or `None` on overflow.
    pub fn checked_add(self, duration: Duration) -> Option<Self> {
        self.0.checked_add(duration).map(Self)
    }
}

impl Add<Duration> for Instant {
    type Output = Self;

    fn add(self, rhs: Duration) -> Self {
        Self(self.0.saturating_add(rhs))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub for Instant {
    type Output = Duration;

    /// Saturating: an earlier `self` yields [`Duration::ZERO`].
    fn sub(self, rhs: Self) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instant({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_duration(Duration::from_secs(5));
        assert_eq!(
            t + Duration::from_secs(1),
            Instant::from_duration(Duration::from_secs(6))
        );
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
        assert_eq!(t - Instant::ZERO, Duration::from_secs(5));
        assert_eq!(
            Instant::from_duration(Duration::MAX) + Duration::from_secs(1),
            Instant::from_duration(Duration::MAX)
        );
        assert_eq!(
            Instant::from_duration(Duration::MAX).checked_add(Duration::from_secs(1)),
            None
        );
    }
}
