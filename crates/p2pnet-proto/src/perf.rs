//! The speed test between two peers ("perf"), in the manner of libp2p's
//! perf protocol: the asker states how many bytes it will send up and how
//! many it wants back; the answerer accepts (or refuses), counts the
//! upload, acknowledges it, then sends the download.
//!
//! ```text
//! asker                                answerer
//!   Request { id, upload, download } ->
//!                                    <- Accepted { id }       (round trip)
//!   Data { id, bytes } x n           ->                       (upload)
//!                                    <- Received { id }
//!                                    <- Data { id, bytes } x m (download)
//! ```
//!
//! Perf packets need [`Scopes::PERF`](crate::Scopes::PERF) like any gated
//! packet, so a peer is tested only where both grants allow it; a request
//! the answerer's grants do not allow is answered `Refused(NotGranted)` by
//! the channel itself (a reply always permitted, like a file Cancel). The
//! answerer also caps the bytes of one test ([`PerfAnswerer::accept`])
//! and runs one test per channel at a time. Either side may send
//! `Cancel`. These are pure state machines: the runtime sends what they
//! return and reads the clock for them.

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::InvalidPacket;
use crate::time::Instant;

/// Largest `Data` chunk, in bytes.
pub const MAX_PERF_CHUNK: usize = 64 * 1024;

/// `len` test bytes (at most [`MAX_PERF_CHUNK`]), all zero: a slice of one
/// static buffer, so a test allocates and zeroes nothing per chunk and
/// measures the channel, not the allocator.
fn test_bytes(len: usize) -> Bytes {
    static ZEROS: [u8; MAX_PERF_CHUNK] = [0; MAX_PERF_CHUNK];
    Bytes::from_static(&ZEROS[..len.min(MAX_PERF_CHUNK)])
}

/// A perf packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Perf {
    /// Asks for a test: `upload` bytes follow, `download` bytes asked back.
    Request {
        /// Chosen by the asker; every later packet of the test carries it.
        id: u32,
        /// Bytes the asker will send.
        upload: u64,
        /// Bytes the asker asks for.
        download: u64,
    },
    /// The answerer takes the test; the asker times the round trip on it.
    Accepted {
        /// The test.
        id: u32,
    },
    /// The answerer declines the test.
    Refused {
        /// The test.
        id: u32,
        /// Why.
        reason: PerfRefusal,
    },
    /// Test bytes, either way.
    Data {
        /// The test.
        id: u32,
        /// At most [`MAX_PERF_CHUNK`] bytes; their value is meaningless.
        bytes: Bytes,
    },
    /// The answerer has every upload byte; the download follows.
    Received {
        /// The test.
        id: u32,
    },
    /// Either side ends the test.
    Cancel {
        /// The test.
        id: u32,
    },
}

impl Perf {
    /// Checks the protocol bounds.
    pub fn validate(&self) -> Result<(), InvalidPacket> {
        match self {
            Self::Data { bytes, .. } if bytes.len() > MAX_PERF_CHUNK => {
                Err(InvalidPacket::TooLong {
                    field: "perf data",
                    len: bytes.len(),
                    max: MAX_PERF_CHUNK,
                })
            }
            _ => Ok(()),
        }
    }

    /// The test this packet belongs to.
    pub const fn id(&self) -> u32 {
        match self {
            Self::Request { id, .. }
            | Self::Accepted { id }
            | Self::Refused { id, .. }
            | Self::Data { id, .. }
            | Self::Received { id }
            | Self::Cancel { id } => *id,
        }
    }
}

/// Why an answerer declined a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum PerfRefusal {
    /// The test asked for more bytes than the answerer allows.
    #[error("the peer serves at most {cap} bytes each way")]
    TooLarge {
        /// The answerer's cap, each way.
        cap: u64,
    },
    /// A test of this channel is already running.
    #[error("the peer is already running a speed test on this channel")]
    Busy,
    /// The answerer's grants for the asker do not include the `perf`
    /// scope. The channel answers this itself, so the asker need not wait
    /// for its timeout.
    #[error("the peer does not grant this node speed tests (the perf scope)")]
    NotGranted,
}

/// A test that did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PerfFailure {
    /// The answerer declined.
    #[error("refused: {0}")]
    Refused(PerfRefusal),
    /// The other side cancelled.
    #[error("cancelled by the peer")]
    Cancelled,
    /// The other side broke the exchange.
    #[error("the peer broke the exchange: {0}")]
    Violation(&'static str),
}

/// What a finished test measured, on the asker's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerfOutcome {
    /// From `Request` sent to `Accepted` received.
    pub round_trip: Duration,
    /// Bytes sent up.
    pub upload_bytes: u64,
    /// From `Accepted` to `Received`: the upload, plus half a round trip.
    pub upload_time: Duration,
    /// Bytes received.
    pub download_bytes: u64,
    /// From `Received` to the last download byte.
    pub download_time: Duration,
}

impl PerfOutcome {
    /// Upload throughput in bytes per second (0 when nothing was sent).
    pub fn upload_rate(&self) -> f64 {
        rate(self.upload_bytes, self.upload_time)
    }

    /// Download throughput in bytes per second.
    pub fn download_rate(&self) -> f64 {
        rate(self.download_bytes, self.download_time)
    }
}

fn rate(bytes: u64, time: Duration) -> f64 {
    if bytes == 0 || time.is_zero() {
        return 0.0;
    }
    bytes as f64 / time.as_secs_f64()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AskPhase {
    AwaitingAnswer,
    Uploading,
    AwaitingReceipt,
    Downloading,
}

/// The asking side of one test.
#[derive(Debug)]
pub struct PerfAsker {
    id: u32,
    upload: u64,
    download: u64,
    phase: AskPhase,
    sent: u64,
    received: u64,
    started: Instant,
    accepted: Option<Instant>,
    receipt: Option<Instant>,
}

impl PerfAsker {
    /// Starts test `id` at `now`; send the returned `Request`.
    pub fn new(id: u32, upload: u64, download: u64, now: Instant) -> (Self, Perf) {
        let asker = Self {
            id,
            upload,
            download,
            phase: AskPhase::AwaitingAnswer,
            sent: 0,
            received: 0,
            started: now,
            accepted: None,
            receipt: None,
        };
        (
            asker,
            Perf::Request {
                id,
                upload,
                download,
            },
        )
    }

    /// The test's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Whether upload chunks are due ([`next_chunk`](Self::next_chunk)).
    pub fn is_uploading(&self) -> bool {
        self.phase == AskPhase::Uploading
    }

    /// The next upload chunk, at most `max` bytes, while uploading.
    pub fn next_chunk(&mut self, max: usize) -> Option<Perf> {
        if self.phase != AskPhase::Uploading {
            return None;
        }
        let len = chunk_len(self.upload - self.sent, max);
        if len == 0 {
            self.phase = AskPhase::AwaitingReceipt;
            return None;
        }
        self.sent += len as u64;
        if self.sent == self.upload {
            self.phase = AskPhase::AwaitingReceipt;
        }
        Some(Perf::Data {
            id: self.id,
            bytes: test_bytes(len),
        })
    }

    /// Takes a packet of this test from the answerer: `Ok(Some)` once the
    /// test is complete, `Err` if it ended otherwise.
    pub fn on_packet(
        &mut self,
        packet: &Perf,
        now: Instant,
    ) -> Result<Option<PerfOutcome>, PerfFailure> {
        let violation = |what| Err(PerfFailure::Violation(what));
        match (packet, self.phase) {
            (Perf::Accepted { .. }, AskPhase::AwaitingAnswer) => {
                self.accepted = Some(now);
                self.phase = AskPhase::Uploading;
                if self.upload == 0 {
                    self.phase = AskPhase::AwaitingReceipt;
                }
            }
            (Perf::Refused { reason, .. }, AskPhase::AwaitingAnswer) => {
                return Err(PerfFailure::Refused(*reason));
            }
            (Perf::Received { .. }, AskPhase::AwaitingReceipt) => {
                self.receipt = Some(now);
                self.phase = AskPhase::Downloading;
            }
            (Perf::Received { .. }, AskPhase::Uploading) => {
                return violation("receipt before the upload ended");
            }
            (Perf::Data { bytes, .. }, AskPhase::Downloading) => {
                self.received += bytes.len() as u64;
                if self.received > self.download {
                    return violation("more download bytes than asked");
                }
            }
            (Perf::Data { .. }, _) => return violation("download bytes before the receipt"),
            (Perf::Cancel { .. }, _) => return Err(PerfFailure::Cancelled),
            _ => return violation("unexpected perf packet"),
        }
        if self.phase != AskPhase::Downloading || self.received < self.download {
            return Ok(None);
        }
        let (Some(accepted), Some(receipt)) = (self.accepted, self.receipt) else {
            return violation("unexpected perf packet");
        };
        Ok(Some(PerfOutcome {
            round_trip: accepted - self.started,
            upload_bytes: self.upload,
            upload_time: receipt - accepted,
            download_bytes: self.download,
            download_time: now - receipt,
        }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AnswerPhase {
    Receiving,
    Sending,
    Done,
}

/// The answering side of one test.
#[derive(Debug)]
pub struct PerfAnswerer {
    id: u32,
    upload_left: u64,
    download_left: u64,
    phase: AnswerPhase,
}

impl PerfAnswerer {
    /// Answers a `Request`: the answerer and the packets to send now
    /// (`Accepted`, and `Received` at once for an empty upload), or the
    /// `Refused` to send when it asks for more than `cap` bytes either way.
    pub fn accept(request: &Perf, cap: u64) -> Result<(Self, Vec<Perf>), Perf> {
        let &Perf::Request {
            id,
            upload,
            download,
        } = request
        else {
            return Err(Perf::Cancel { id: request.id() });
        };
        if upload > cap || download > cap {
            return Err(Perf::Refused {
                id,
                reason: PerfRefusal::TooLarge { cap },
            });
        }
        let mut answerer = Self {
            id,
            upload_left: upload,
            download_left: download,
            phase: AnswerPhase::Receiving,
        };
        let mut out = vec![Perf::Accepted { id }];
        if upload == 0 {
            answerer.phase = AnswerPhase::Sending;
            out.push(Perf::Received { id });
        }
        Ok((answerer, out))
    }

    /// The test's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Counts an upload chunk; returns the `Received` to send once the
    /// upload is complete.
    pub fn on_data(&mut self, len: usize) -> Result<Option<Perf>, PerfFailure> {
        if self.phase != AnswerPhase::Receiving {
            return Err(PerfFailure::Violation(
                "upload bytes after the upload ended",
            ));
        }
        self.upload_left = self
            .upload_left
            .checked_sub(len as u64)
            .ok_or(PerfFailure::Violation("more upload bytes than announced"))?;
        if self.upload_left > 0 {
            return Ok(None);
        }
        self.phase = AnswerPhase::Sending;
        Ok(Some(Perf::Received { id: self.id }))
    }

    /// The next download chunk, at most `max` bytes, once the upload is in.
    pub fn next_chunk(&mut self, max: usize) -> Option<Perf> {
        if self.phase != AnswerPhase::Sending {
            return None;
        }
        let len = chunk_len(self.download_left, max);
        self.download_left -= len as u64;
        if self.download_left == 0 {
            self.phase = AnswerPhase::Done;
        }
        (len > 0).then(|| Perf::Data {
            id: self.id,
            bytes: test_bytes(len),
        })
    }

    /// Whether the test is over on this side.
    pub fn is_done(&self) -> bool {
        self.phase == AnswerPhase::Done
    }
}

fn chunk_len(left: u64, max: usize) -> usize {
    usize::try_from(left).map_or(max, |left| left.min(max).min(MAX_PERF_CHUNK))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_duration(Duration::from_millis(ms))
    }

    #[test]
    fn a_full_test_measures_each_phase_on_the_askers_clock() {
        let (mut asker, request) = PerfAsker::new(7, 150_000, 100_000, at(0));
        let (mut answerer, first) = PerfAnswerer::accept(&request, 1 << 20).unwrap();
        assert_eq!(first, vec![Perf::Accepted { id: 7 }]);
        assert_eq!(
            asker.next_chunk(MAX_PERF_CHUNK),
            None,
            "not before Accepted"
        );
        assert_eq!(asker.on_packet(&first[0], at(2)), Ok(None));
        let mut uploaded = 0;
        let mut receipt = None;
        while let Some(chunk) = asker.next_chunk(MAX_PERF_CHUNK) {
            let Perf::Data { bytes, .. } = &chunk else {
                panic!("{chunk:?}")
            };
            uploaded += bytes.len();
            receipt = answerer.on_data(bytes.len()).unwrap();
        }
        assert_eq!(uploaded, 150_000);
        assert_eq!(receipt, Some(Perf::Received { id: 7 }));
        assert_eq!(asker.on_packet(&Perf::Received { id: 7 }, at(12)), Ok(None));
        let mut outcome = None;
        let mut downloaded = 0;
        while let Some(chunk) = answerer.next_chunk(40_000) {
            let Perf::Data { bytes, .. } = &chunk else {
                panic!("{chunk:?}")
            };
            downloaded += bytes.len();
            assert_eq!(outcome, None);
            outcome = asker.on_packet(&chunk, at(17)).unwrap();
        }
        assert!(answerer.is_done());
        assert_eq!(downloaded, 100_000);
        let outcome = outcome.expect("complete");
        assert_eq!(outcome.round_trip, Duration::from_millis(2));
        assert_eq!(outcome.upload_time, Duration::from_millis(10));
        assert_eq!(outcome.download_time, Duration::from_millis(5));
        assert_eq!(outcome.upload_rate(), 15_000_000.0);
        assert_eq!(outcome.download_rate(), 20_000_000.0);
    }

    #[test]
    fn an_empty_upload_is_received_at_once_and_an_empty_test_ends_there() {
        let (mut asker, request) = PerfAsker::new(1, 0, 0, at(0));
        let (mut answerer, out) = PerfAnswerer::accept(&request, 10).unwrap();
        assert_eq!(
            out,
            vec![Perf::Accepted { id: 1 }, Perf::Received { id: 1 }]
        );
        assert_eq!(asker.on_packet(&out[0], at(1)), Ok(None));
        let outcome = asker.on_packet(&out[1], at(1)).unwrap().unwrap();
        assert_eq!(outcome.upload_rate(), 0.0);
        assert_eq!(outcome.download_bytes, 0);
        assert_eq!(answerer.next_chunk(10), None);
        assert!(answerer.is_done());
    }

    #[test]
    fn the_answerer_caps_tests_and_counts_exactly() {
        let (_, request) = PerfAsker::new(3, 11, 0, at(0));
        assert_eq!(
            PerfAnswerer::accept(&request, 10).unwrap_err(),
            Perf::Refused {
                id: 3,
                reason: PerfRefusal::TooLarge { cap: 10 }
            }
        );
        let (_, request) = PerfAsker::new(4, 10, 0, at(0));
        let (mut answerer, _) = PerfAnswerer::accept(&request, 10).unwrap();
        assert_eq!(answerer.on_data(6), Ok(None));
        assert_eq!(
            answerer.on_data(5),
            Err(PerfFailure::Violation("more upload bytes than announced"))
        );
    }

    #[test]
    fn the_asker_refuses_out_of_order_or_excess_packets() {
        let (mut asker, _) = PerfAsker::new(5, 0, 4, at(0));
        let data = Perf::Data {
            id: 5,
            bytes: test_bytes(5),
        };
        assert!(matches!(
            asker.on_packet(&data, at(1)),
            Err(PerfFailure::Violation(_))
        ));
        let (mut asker, _) = PerfAsker::new(5, 0, 4, at(0));
        asker.on_packet(&Perf::Accepted { id: 5 }, at(1)).unwrap();
        asker.on_packet(&Perf::Received { id: 5 }, at(1)).unwrap();
        assert_eq!(
            asker.on_packet(&data, at(2)),
            Err(PerfFailure::Violation("more download bytes than asked"))
        );
        let (mut asker, _) = PerfAsker::new(6, 0, 0, at(0));
        assert_eq!(
            asker.on_packet(
                &Perf::Refused {
                    id: 6,
                    reason: PerfRefusal::Busy
                },
                at(1)
            ),
            Err(PerfFailure::Refused(PerfRefusal::Busy))
        );
    }

    #[test]
    fn oversized_chunks_are_invalid() {
        let chunk = Perf::Data {
            id: 1,
            bytes: vec![0; MAX_PERF_CHUNK + 1].into(),
        };
        assert!(chunk.validate().is_err());
    }
}
