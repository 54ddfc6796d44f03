//! Maps tokio's clock onto the protocol core's [`Instant`].
//!
//! The core reads no clock: every input carries `now`. The runtime measures
//! time from one base instant per network with `tokio::time`, so tests can
//! pause and advance time with `tokio::time::pause`.

use p2pnet_proto::Instant;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    base: tokio::time::Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            base: tokio::time::Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> Instant {
        Instant::from_duration(self.base.elapsed())
    }

    /// The tokio deadline for a core instant.
    /// The core's instant for a runtime deadline (an earlier one is the
    /// core's zero).
    pub(crate) fn at(&self, deadline: tokio::time::Instant) -> Instant {
        Instant::from_duration(deadline.saturating_duration_since(self.base))
    }

    pub(crate) fn deadline(&self, at: Instant) -> tokio::time::Instant {
        self.base + at.as_duration()
    }
}
