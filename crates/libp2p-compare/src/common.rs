//! What the three stacks share: the workload sizes, the [`Bench`] each
//! stack implements per workload, the schedule that interleaves the stacks,
//! the byte counter of the bulk receivers, and the numbered messages that
//! prove an answer belongs to its question.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Bytes per bulk message (as in `crates/p2pnet/benches/channel.rs`).
pub(crate) const PACKET: usize = 60 * 1024;
/// Bytes per bulk run.
pub(crate) const BULK: u64 = 64 << 20;
/// Bytes per round-trip and connect message.
pub(crate) const SMALL: usize = 32;
/// The bulk receivers' read buffer.
pub(crate) const READ_BUF: usize = 256 * 1024;

/// One stack's side of one workload, set up before timing starts.
pub(crate) trait Bench: Send {
    /// Runs iteration `i` once and returns its time (each implementation
    /// says what the time covers).
    fn once(&mut self, i: usize) -> impl Future<Output = anyhow::Result<Duration>> + Send;

    /// Closes down and checks that every byte sent arrived.
    fn finish(self) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// How often a workload runs: `warmup` untimed iterations per stack, then
/// `rounds` rounds of `per_round` timed iterations per stack.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    pub(crate) warmup: usize,
    pub(crate) rounds: usize,
    pub(crate) per_round: usize,
}

impl Schedule {
    /// Timed iterations per stack.
    pub(crate) fn samples(self) -> usize {
        self.rounds * self.per_round
    }
}

/// Warms up each stack, then times them in interleaved rounds, the order
/// rotating each round, so that noise on a shared machine (another build, a
/// frequency change) falls on all three alike. Returns the samples in the
/// order of the arguments.
pub(crate) async fn interleave<A: Bench, B: Bench, C: Bench>(
    (mut a, mut b, mut c): (A, B, C),
    schedule: Schedule,
) -> anyhow::Result<[Vec<Duration>; 3]> {
    let mut samples: [Vec<Duration>; 3] = Default::default();
    let mut next = [0usize; 3];
    for round in 0..=schedule.rounds {
        let (count, keep) = if round == 0 {
            (schedule.warmup, false)
        } else {
            (schedule.per_round, true)
        };
        for turn in 0..3 {
            let stack = (round + turn) % 3;
            for _ in 0..count {
                let i = next[stack];
                next[stack] += 1;
                let time = match stack {
                    0 => a.once(i).await?,
                    1 => b.once(i).await?,
                    _ => c.once(i).await?,
                };
                if keep {
                    samples[stack].push(time);
                }
            }
        }
    }
    a.finish().await?;
    b.finish().await?;
    c.finish().await?;
    Ok(samples)
}

/// The sizes of one bulk run's messages: [`PACKET`] bytes each and a
/// shorter last one, [`BULK`] bytes in all.
pub(crate) fn bulk_messages() -> impl Iterator<Item = usize> {
    let full = (BULK / PACKET as u64) as usize;
    let rest = (BULK % PACKET as u64) as usize;
    std::iter::repeat_n(PACKET, full).chain((rest > 0).then_some(rest))
}

/// Counts the bytes a bulk receiver gets and wakes the sender when a run's
/// bytes are all in.
#[derive(Default)]
pub(crate) struct Sink {
    bytes: AtomicU64,
    target: AtomicU64,
    reached: Notify,
}

/// A bulk run under way: the total to wait for and when it started.
pub(crate) struct Run {
    target: u64,
    started: Instant,
}

impl Sink {
    /// Records `n` received bytes.
    pub(crate) fn add(&self, n: u64) {
        let total = self.bytes.fetch_add(n, Ordering::AcqRel) + n;
        if total >= self.target.load(Ordering::Acquire) {
            self.reached.notify_one();
        }
    }

    /// Bytes received so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }

    /// Starts a run of [`BULK`] bytes; call before sending.
    pub(crate) fn begin(&self) -> Run {
        let target = self.bytes() + BULK;
        self.target.store(target, Ordering::Release);
        Run {
            target,
            started: Instant::now(),
        }
    }

    /// Waits until the receiver has all of the run's bytes; the time from
    /// [`Sink::begin`] until then. Fails if it counted more.
    pub(crate) async fn end(&self, run: Run) -> anyhow::Result<Duration> {
        while self.bytes() < run.target {
            self.reached.notified().await;
        }
        let elapsed = run.started.elapsed();
        let bytes = self.bytes();
        anyhow::ensure!(
            bytes == run.target,
            "the receiver counted {bytes} bytes, expected {}",
            run.target
        );
        Ok(elapsed)
    }
}

/// A [`SMALL`]-byte message carrying the iteration number, in ASCII so that
/// p2pnet can send it as text.
pub(crate) fn numbered(i: usize) -> [u8; SMALL] {
    let text = format!("{i:0width$}", width = SMALL);
    let mut message = [0u8; SMALL];
    message.copy_from_slice(text.as_bytes());
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bulk_run_is_exactly_bulk_bytes() {
        assert_eq!(bulk_messages().map(|n| n as u64).sum::<u64>(), BULK);
        assert!(bulk_messages().all(|n| (1..=PACKET).contains(&n)));
    }

    #[test]
    fn numbered_messages_differ() {
        assert_ne!(numbered(1), numbered(2));
        assert!(std::str::from_utf8(&numbered(123_456)).is_ok());
    }
}
