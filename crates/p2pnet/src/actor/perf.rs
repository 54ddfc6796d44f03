//! Speed tests on this channel: the one this side asked for, and the one
//! it answers, each driven by its `p2pnet_proto::perf` state machine.
//!
//! Test ids carry the channel's direction in their low bit (even for the
//! side that dialled, odd for the other), so the two tests a channel may
//! run at once, one each way, never share an id.

use p2pnet_proto::packet::Packet;
use p2pnet_proto::perf::{MAX_PERF_CHUNK, Perf, PerfAnswerer, PerfAsker, PerfFailure, PerfRefusal};
use p2pnet_proto::{Direction, PeerId};
use tokio::sync::oneshot;

use super::Actor;
use crate::error::Error;
use crate::perf::{PerfReport, PerfRequest};

/// The test this side asked for, and who waits for its report.
pub(super) struct Asking {
    asker: PerfAsker,
    reply: oneshot::Sender<Result<PerfReport, Error>>,
}

/// Room left in a frame for a perf packet's own fields.
const PERF_FRAME_OVERHEAD: usize = 32;

impl Actor {
    pub(super) fn start_perf(
        &mut self,
        request: PerfRequest,
        reply: oneshot::Sender<Result<PerfReport, Error>>,
    ) {
        if self.asking.is_some() {
            let _ = reply.send(Err(Error::LimitReached(
                "one speed test per channel at a time",
            )));
            return;
        }
        if let Some(hello) = self.channel.remote_hello()
            && hello.protocol_version < 3
        {
            let _ = reply.send(Err(Error::PerfUnsupported(hello.protocol_version)));
            return;
        }
        self.perf_tests = self.perf_tests.wrapping_add(1);
        let id = self.perf_tests << 1 | self.perf_id_bit();
        let now = self.ctx.clock.now();
        let (asker, first) = PerfAsker::new(id, request.upload, request.download, now);
        match self.channel.send(Packet::Perf(first)) {
            Ok(()) => self.asking = Some(Box::new(Asking { asker, reply })),
            Err(err) => {
                let _ = reply.send(Err(err.into()));
            }
        }
    }

    pub(super) fn on_perf(&mut self, peer: PeerId, packet: Perf) {
        let id = packet.id();
        if id & 1 == self.perf_id_bit() {
            self.on_perf_answer(peer, &packet);
        } else {
            self.on_perf_question(packet);
        }
    }

    /// A packet of the test this side asked for.
    fn on_perf_answer(&mut self, peer: PeerId, packet: &Perf) {
        let Some(asking) = self.asking.as_mut() else {
            return;
        };
        if asking.asker.id() != packet.id() {
            return;
        }
        let now = self.ctx.clock.now();
        let result = match asking.asker.on_packet(packet, now) {
            Ok(None) => return,
            Ok(Some(outcome)) => Ok(PerfReport {
                peer,
                outcome,
                cipher: self
                    .channel
                    .cipher()
                    .unwrap_or(p2pnet_proto::Cipher::ChaCha20Poly1305),
                connect_time: self.connect_time,
            }),
            Err(failure) => Err(failure),
        };
        let Some(asking) = self.asking.take() else {
            return;
        };
        let Asking { asker, reply } = *asking;
        if matches!(result, Err(PerfFailure::Violation(_))) {
            self.send_or_hold(Packet::Perf(Perf::Cancel { id: asker.id() }));
        }
        let _ = reply.send(result.map_err(Error::from));
    }

    /// A packet of a test the peer asked for.
    fn on_perf_question(&mut self, packet: Perf) {
        let id = packet.id();
        match (&packet, self.answering.as_mut()) {
            (Perf::Request { .. }, Some(_)) => {
                let refusal = Perf::Refused {
                    id,
                    reason: PerfRefusal::Busy,
                };
                self.send_or_hold(Packet::Perf(refusal));
            }
            (Perf::Request { .. }, None) => {
                let cap = self.ctx.config.limits.max_perf_bytes;
                match PerfAnswerer::accept(&packet, cap) {
                    Ok((answerer, replies)) => {
                        self.answering = Some(Box::new(answerer));
                        for reply in replies {
                            self.send_or_hold(Packet::Perf(reply));
                        }
                    }
                    Err(refusal) => self.send_or_hold(Packet::Perf(refusal)),
                }
            }
            (Perf::Data { bytes, .. }, Some(answerer)) if answerer.id() == id => {
                match answerer.on_data(bytes.len()) {
                    Ok(None) => {}
                    Ok(Some(receipt)) => self.send_or_hold(Packet::Perf(receipt)),
                    Err(failure) => {
                        tracing::debug!(%failure, "speed test abandoned");
                        self.answering = None;
                        self.send_or_hold(Packet::Perf(Perf::Cancel { id }));
                    }
                }
            }
            (Perf::Cancel { .. }, Some(answerer)) if answerer.id() == id => {
                self.answering = None;
            }
            // A stray packet of a test already over.
            _ => {}
        }
    }

    /// Sends test bytes while the channel has room; cancels a test whose
    /// asker stopped waiting. Returns whether it did anything.
    pub(super) fn pump_perf(&mut self) -> bool {
        let mut progressed = false;
        if self
            .asking
            .as_ref()
            .is_some_and(|asking| asking.reply.is_closed())
            && let Some(asking) = self.asking.take()
        {
            self.send_or_hold(Packet::Perf(Perf::Cancel {
                id: asking.asker.id(),
            }));
            progressed = true;
        }
        let chunk = self.perf_chunk_size();
        while self.has_room() {
            let next = match (self.asking.as_mut(), self.answering.as_mut()) {
                (Some(asking), _) if asking.asker.is_uploading() => asking.asker.next_chunk(chunk),
                (_, Some(answerer)) => {
                    let next = answerer.next_chunk(chunk);
                    if answerer.is_done() {
                        self.answering = None;
                    }
                    next
                }
                _ => None,
            };
            let Some(packet) = next else { break };
            if let Err(err) = self.channel.send(Packet::Perf(packet)) {
                tracing::debug!(%err, "speed test data not sent");
                break;
            }
            progressed = true;
        }
        progressed
    }

    /// The low bit of the ids of the tests this side asks for.
    fn perf_id_bit(&self) -> u32 {
        u32::from(self.channel.direction() == Direction::Inbound)
    }

    fn perf_chunk_size(&self) -> usize {
        self.channel
            .remote_hello()
            .map_or(MAX_PERF_CHUNK, |hello| {
                (hello.max_frame_size as usize).saturating_sub(PERF_FRAME_OVERHEAD)
            })
            .min(MAX_PERF_CHUNK)
    }
}
