//! The grant gate of an open channel: which grants are live on the
//! channel's clock, what they permit, and which scopes were just taken away.
//!
//! When a scope is taken away (by [`Channel::set_grants`] or by a grant
//! expiring), the peer may already have packets of that scope in flight:
//! it cannot know before our decision reaches it, if it ever does. For
//! [`REVOCATION_GRACE`] after the narrowing, such packets are dropped
//! quietly ([`Verdict::Revoked`]) instead of being counted as refusals, so
//! that an honest peer is not closed for a protocol violation it could not
//! avoid. After the grace they count again.
//!
//! [`Channel::set_grants`]: super::Channel::set_grants

use std::time::Duration;

use crate::grant::{GrantId, Grants, Permissions, Scopes};
use crate::packet::{MAX_REASON_LEN, Packet, PacketKind};
use crate::time::Instant;

/// How long, on the core clock, packets of a scope just taken away are
/// dropped quietly instead of counted towards
/// [`ChannelConfig::max_refused_packets`](super::ChannelConfig::max_refused_packets).
/// Long enough to cover a round trip plus a full send buffer on a slow
/// link; short enough that a peer ignoring a revocation is soon refused.
pub const REVOCATION_GRACE: Duration = Duration::from_secs(5);

/// Upper bound on the body of a file `Cancel` or `Reject` frame: two
/// variant tags, the transfer id (a varint of at most 10 bytes), the
/// option tag of `Cancel`'s reason, the reason's length (a varint of at
/// most 10 bytes) and the reason itself. A DataTransmission frame no
/// larger than this may be a transfer wind-down, which passes without a
/// grant, so it is decoded even when no data scope is held; anything
/// larger is refused without being decoded.
const MAX_WIND_DOWN_BODY_LEN: usize = 2 + 10 + 1 + 10 + MAX_REASON_LEN;

/// Upper bound on the body of a perf `Request`: its variant tag, the id
/// and two sizes (varints of at most 5, 10 and 10 bytes). A Perf frame no
/// larger than this may be a request the channel answers itself when the
/// grants do not allow speed tests, so it is decoded even then.
pub(super) const MAX_PERF_REQUEST_BODY_LEN: usize = 1 + 5 + 10 + 10;

/// What the gate decides about a decoded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Deliver it.
    Admit,
    /// Its scope was taken away less than [`REVOCATION_GRACE`] ago: drop it
    /// without counting it as a refusal.
    Revoked,
    /// No live grant permits it: refuse it, and count it.
    NotPermitted,
}

/// Grants and revocation grace of an open channel.
#[derive(Debug)]
pub(super) struct GrantGate {
    grants: Grants,
    /// `grants.permissions(now)`, cached: every packet is checked against it.
    permissions: Permissions,
    /// The latest instant the gate was given.
    now: Instant,
    /// For each single scope, in [`Scopes::EACH`] order, when the grace
    /// that started when it was last taken away ends.
    grace_ends: [Option<Instant>; Scopes::EACH.len()],
}

impl GrantGate {
    /// A gate holding `grants` at `now`. Grants already expired at `now` are
    /// removed at once; their ids are returned. Nothing was permitted
    /// before, so no grace starts.
    pub(super) fn open(grants: Grants, now: Instant) -> (Self, Vec<GrantId>) {
        let mut gate = Self {
            grants,
            permissions: Permissions::NONE,
            now,
            grace_ends: [None; Scopes::EACH.len()],
        };
        let expired = gate.grants.expire(now);
        gate.permissions = gate.grants.permissions(now);
        (gate, expired)
    }

    /// Moves the gate's clock to `now` (never backwards): expires grants
    /// and starts the grace of every scope this takes away. Returns the
    /// ids of the expired grants.
    pub(super) fn advance(&mut self, now: Instant) -> Vec<GrantId> {
        self.now = self.now.max(now);
        let expired = self.grants.expire(self.now);
        if !expired.is_empty() {
            self.recompute();
        }
        expired
    }

    /// Replaces the grants at `now`; scopes this takes away get their grace.
    /// Returns the ids of the new grants that are already expired.
    pub(super) fn replace(&mut self, grants: Grants, now: Instant) -> Vec<GrantId> {
        self.now = self.now.max(now);
        self.grants = grants;
        let expired = self.grants.expire(self.now);
        self.recompute();
        expired
    }

    /// The grants, all live at the gate's latest instant.
    pub(super) fn grants(&self) -> &Grants {
        &self.grants
    }

    /// What the grants permit at the gate's latest instant.
    pub(super) fn permissions(&self) -> Permissions {
        self.permissions
    }

    /// When the next grant expires.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.grants.next_expiry()
    }

    /// Whether a frame of `kind` with a body of `body_len` bytes is worth
    /// decoding, judged from its header alone: some scope it may need is
    /// live or in its grace, or it may be a transfer wind-down. A frame
    /// that is not is refused undecoded, so a peer cannot make us
    /// deserialize large bodies we would throw away.
    pub(super) fn worth_decoding(&self, kind: PacketKind, body_len: usize) -> bool {
        let Some(coarse) = Scopes::for_kind(kind) else {
            return true;
        };
        coarse.intersects(self.permissions.scopes.union(self.in_grace()))
            || (kind == PacketKind::DataTransmission && body_len <= MAX_WIND_DOWN_BODY_LEN)
            || (kind == PacketKind::Perf && body_len <= MAX_PERF_REQUEST_BODY_LEN)
    }

    /// The exact decision on a decoded packet.
    pub(super) fn verdict(&self, packet: &Packet) -> Verdict {
        if self.permissions.permits(packet) {
            Verdict::Admit
        } else if Scopes::for_packet(packet).is_some_and(|needed| self.in_grace().contains(needed))
        {
            Verdict::Revoked
        } else {
            Verdict::NotPermitted
        }
    }

    /// Recomputes the permissions at `now` after the grants changed, and
    /// starts the grace of each scope that is no longer permitted.
    fn recompute(&mut self) {
        let permissions = self.grants.permissions(self.now);
        let taken_away = self.permissions.scopes.difference(permissions.scopes);
        for (scope, grace_end) in Scopes::EACH.iter().zip(&mut self.grace_ends) {
            if taken_away.contains(*scope) {
                *grace_end = Some(self.now + REVOCATION_GRACE);
            }
        }
        self.permissions = permissions;
    }

    /// The scopes whose grace has not ended at the gate's latest instant.
    fn in_grace(&self) -> Scopes {
        Scopes::EACH
            .iter()
            .zip(&self.grace_ends)
            .filter(|(_, end)| end.is_some_and(|end| self.now < end))
            .fold(Scopes::NONE, |scopes, (scope, _)| scopes | *scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{FRAME_HEADER_LEN, MAX_FRAME_SIZE_CEILING, encode_frame};
    use crate::grant::Grant;
    use crate::packet::{
        DataTransmission, FileCancel, FileMessage, FileReject, Payload, PureMessage, TransferId,
    };
    use crate::perf::Perf;

    fn at(secs: u64) -> Instant {
        Instant::from_duration(Duration::from_secs(secs))
    }

    fn body_len(packet: Packet) -> usize {
        encode_frame(&packet, MAX_FRAME_SIZE_CEILING).unwrap().len() - FRAME_HEADER_LEN
    }

    #[test]
    fn the_largest_wind_downs_fit_the_undecoded_bound() {
        let reason = "é".repeat(MAX_REASON_LEN / 2);
        let file = |m| Packet::DataTransmission(DataTransmission::File(m));
        let cancel = file(FileMessage::Cancel(FileCancel {
            transfer_id: TransferId(u64::MAX),
            reason: Some(reason.clone()),
        }));
        let reject = file(FileMessage::Reject(FileReject {
            transfer_id: TransferId(u64::MAX),
            reason,
        }));
        for packet in [cancel, reject] {
            assert!(body_len(packet) <= MAX_WIND_DOWN_BODY_LEN);
        }
    }

    #[test]
    fn frames_without_a_scope_are_refused_undecoded_unless_they_may_wind_down() {
        let (gate, _) = GrantGate::open(
            Grants::single(Grant::new(GrantId(1), Scopes::MESSAGE)),
            at(0),
        );
        assert!(gate.worth_decoding(PacketKind::PureMessage, 1 << 20));
        assert!(gate.worth_decoding(PacketKind::Keepalive, 8));
        assert!(!gate.worth_decoding(PacketKind::CollectionShare, 10));
        assert!(gate.worth_decoding(PacketKind::DataTransmission, MAX_WIND_DOWN_BODY_LEN));
        assert!(!gate.worth_decoding(PacketKind::DataTransmission, MAX_WIND_DOWN_BODY_LEN + 1));
        let big = DataTransmission::MiscData(Payload::new(vec![0; 1000]));
        assert!(body_len(big.into()) > MAX_WIND_DOWN_BODY_LEN);
        // The largest perf request fits its bound; test data does not.
        let request = Perf::Request {
            id: u32::MAX,
            upload: u64::MAX,
            download: u64::MAX,
        };
        assert!(body_len(request.into()) <= MAX_PERF_REQUEST_BODY_LEN);
        assert!(gate.worth_decoding(PacketKind::Perf, MAX_PERF_REQUEST_BODY_LEN));
        assert!(!gate.worth_decoding(PacketKind::Perf, MAX_PERF_REQUEST_BODY_LEN + 1));
    }

    #[test]
    fn narrowing_starts_a_grace_per_scope() {
        let everything = Grant::new(GrantId(1), Scopes::ALL);
        let messages = Grant::new(GrantId(2), Scopes::MESSAGE);
        let mut grants = Grants::single(everything.with_expiry(at(10)));
        grants.insert(messages).unwrap();
        let (mut gate, expired) = GrantGate::open(grants, at(0));
        assert!(expired.is_empty());
        let task: Packet = DataTransmission::Task(Payload::new(vec![])).into();
        assert_eq!(gate.verdict(&task), Verdict::Admit);

        assert_eq!(gate.advance(at(10)), vec![GrantId(1)]);
        assert_eq!(gate.permissions().scopes, Scopes::MESSAGE);
        assert_eq!(gate.verdict(&task), Verdict::Revoked);
        assert_eq!(gate.verdict(&PureMessage::new("x").into()), Verdict::Admit);
        assert!(gate.worth_decoding(PacketKind::Identifier, 1000));

        // The grace ends exactly REVOCATION_GRACE after the narrowing.
        gate.advance(at(10) + (REVOCATION_GRACE - Duration::from_nanos(1)));
        assert_eq!(gate.verdict(&task), Verdict::Revoked);
        gate.advance(at(10) + REVOCATION_GRACE);
        assert_eq!(gate.verdict(&task), Verdict::NotPermitted);
        assert!(!gate.worth_decoding(PacketKind::Identifier, 1000));

        // Time never runs backwards for the gate.
        gate.advance(at(0));
        assert_eq!(gate.verdict(&task), Verdict::NotPermitted);

        // Replacing the grants narrows too; widening starts no grace.
        gate.replace(Grants::single(Grant::new(GrantId(3), Scopes::TASK)), at(20));
        assert_eq!(gate.verdict(&task), Verdict::Admit);
        assert_eq!(
            gate.verdict(&PureMessage::new("x").into()),
            Verdict::Revoked
        );
        gate.replace(Grants::new(), at(30));
        assert_eq!(gate.verdict(&task), Verdict::Revoked);
        assert_eq!(
            gate.verdict(&PureMessage::new("x").into()),
            Verdict::NotPermitted
        );
    }
}
