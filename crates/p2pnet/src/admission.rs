//! Channel admission as pure decisions, apart from the IO that acts on them.
//!
//! Two questions, asked at two moments:
//!
//! 1. [`room_for_channel`]: a socket exists (accepted or dialled); is there
//!    room for one more channel? Inbound handshakes are bounded overall
//!    and per source (an IPv4 address or an IPv6 /64), so one host cannot
//!    hold every slot.
//! 2. [`after_handshake`]: the peer proved its id and passed the access
//!    list; does its channel open now, wait for approval, or close?
//!    A channel the *application* asked for (`connect`, `keep_connected`)
//!    counts as approval. A channel that discovery (or any other automatic
//!    source) dialled is gated exactly like an inbound one. A peer approved
//!    before opens without asking; approval waits are bounded overall and
//!    per source, and a peer on the allow-list is not refused for a queue
//!    that strangers filled.

use std::net::IpAddr;

use p2pnet_proto::{Admission, Direction, Scopes};

use crate::config::Limits;
use crate::peers::Decision;

/// Who wanted a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intent {
    /// The remote dialled us.
    Inbound,
    /// The application asked (`connect`, `add_peer`, a persistent peer's
    /// reconnect): that is its approval.
    Application,
    /// Discovery dialled a peer it heard of: gated like an inbound peer.
    Discovery,
    /// The application dialled an address a scan found, for discovery:
    /// gated like an inbound peer, as [`Intent::Discovery`] is.
    Scanned,
}

impl Intent {
    /// Whether the dial is discovery's, not the application's own wish:
    /// the channel then waits for approval as an inbound one would.
    pub(crate) fn is_discovery(self) -> bool {
        matches!(self, Self::Discovery | Self::Scanned)
    }
}

/// Where a connection comes from, for per-source bounds: an IPv4 address,
/// or the /64 of an IPv6 address (one host usually holds a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SourceKey(u128);

impl SourceKey {
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self(u128::from(u32::from(v4)) | (1 << 127)),
            IpAddr::V6(v6) => Self(u128::from(v6) >> 64),
        }
    }
}

/// The counts the limits apply to, taken from the channel table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Every channel.
    pub(crate) total: usize,
    /// Inbound channels.
    pub(crate) inbound: usize,
    /// Inbound channels still handshaking.
    pub(crate) handshaking: usize,
    /// Channels from this source handshaking or waiting for approval.
    pub(crate) from_source: usize,
    /// Channels waiting for approval.
    pub(crate) awaiting: usize,
}

/// Whether one more channel fits; the limit's name when it does not.
pub(crate) fn room_for_channel(
    counts: Counts,
    limits: &Limits,
    direction: Direction,
) -> Result<(), &'static str> {
    if counts.total >= limits.max_channels {
        return Err("max_channels");
    }
    if direction == Direction::Inbound {
        if counts.inbound >= limits.max_inbound {
            return Err("max_inbound");
        }
        if counts.handshaking >= limits.max_handshakes {
            return Err("max_handshakes");
        }
        if counts.from_source >= limits.max_pending_per_source {
            return Err("max_pending_per_source");
        }
    }
    Ok(())
}

/// What to do with a channel whose peer is authenticated and allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Open now, with `base` as the base grant (unless the peer has one);
    /// `remember` records the approval
    /// (the application's own decision), so later channels open without
    /// asking. An auto-accepting policy's approval is not recorded: the
    /// policy answers again next time, and strangers it let in must stay
    /// evictable from KnownPeers.
    Open { base: Scopes, remember: bool },
    /// Wait for the application: queue it and/or announce it.
    Wait { queue: bool, event: bool },
    /// Close: no room to wait.
    Refuse(&'static str),
}

/// The facts [`after_handshake`] decides on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts {
    pub(crate) intent: Intent,
    /// What was decided about this peer before.
    pub(crate) decision: Decision,
    /// The policy's answer for an undecided peer.
    pub(crate) policy: Admission,
    /// What a peer approved by default may send.
    pub(crate) initial: Scopes,
    /// The peer's id is on the allow-list.
    pub(crate) allow_listed: bool,
    /// Channels waiting for approval now, overall and from this source
    /// (this one not included).
    pub(crate) awaiting: usize,
    pub(crate) awaiting_from_source: usize,
}

/// Decides an authenticated channel's fate (see the module docs).
pub(crate) fn after_handshake(facts: Facts, limits: &Limits) -> Verdict {
    if facts.decision == Decision::Approved {
        return Verdict::Open {
            base: facts.initial,
            remember: false,
        };
    }
    match (facts.intent, facts.policy) {
        (Intent::Application, _) => Verdict::Open {
            base: facts.initial,
            remember: true,
        },
        (_, Admission::Approve(trust)) => Verdict::Open {
            base: trust.into(),
            remember: false,
        },
        (_, Admission::Defer { queue, event }) => {
            if facts.awaiting_from_source >= limits.max_pending_per_source {
                return Verdict::Refuse("too many peers from this address await approval");
            }
            if facts.awaiting >= limits.max_pending && !facts.allow_listed {
                return Verdict::Refuse("approval queue full");
            }
            Verdict::Wait { queue, event }
        }
    }
}

/// The direction a dial of this intent is checked against the access list
/// as.
pub(crate) fn direction_of(intent: Intent) -> Direction {
    match intent {
        Intent::Inbound => Direction::Inbound,
        Intent::Application | Intent::Discovery | Intent::Scanned => Direction::Outbound,
    }
}

#[cfg(test)]
mod tests {
    use p2pnet_proto::TrustLevel;

    use super::*;

    const DEFER: Admission = Admission::Defer {
        queue: true,
        event: true,
    };
    const WAIT: Verdict = Verdict::Wait {
        queue: true,
        event: true,
    };

    fn open(base: Scopes, remember: bool) -> Verdict {
        Verdict::Open { base, remember }
    }

    fn facts(intent: Intent, decision: Decision, policy: Admission) -> Facts {
        Facts {
            intent,
            decision,
            policy,
            initial: Scopes::MESSAGE,
            allow_listed: false,
            awaiting: 0,
            awaiting_from_source: 0,
        }
    }

    #[test]
    fn who_waits_for_approval() {
        let approved = Decision::Approved;
        let auto = Admission::Approve(TrustLevel::ELEVATED);
        let table = [
            // The application asking is its approval.
            (
                Intent::Application,
                Decision::Undecided,
                DEFER,
                open(Scopes::MESSAGE, true),
            ),
            (
                Intent::Application,
                Decision::Rejected,
                DEFER,
                open(Scopes::MESSAGE, true),
            ),
            // Discovery is gated exactly like inbound.
            (Intent::Discovery, Decision::Undecided, DEFER, WAIT),
            (Intent::Inbound, Decision::Undecided, DEFER, WAIT),
            (Intent::Discovery, Decision::Rejected, DEFER, WAIT),
            (Intent::Inbound, Decision::Rejected, DEFER, WAIT),
            // A remembered approval opens at its level, whoever dialled.
            (
                Intent::Discovery,
                approved,
                DEFER,
                open(Scopes::MESSAGE, false),
            ),
            (
                Intent::Inbound,
                approved,
                DEFER,
                open(Scopes::MESSAGE, false),
            ),
            (
                Intent::Application,
                approved,
                DEFER,
                open(Scopes::MESSAGE, false),
            ),
            // An auto-accepting policy opens everyone, and records nothing.
            (
                Intent::Discovery,
                Decision::Undecided,
                auto,
                open(Scopes::ALL, false),
            ),
            (
                Intent::Inbound,
                Decision::Undecided,
                auto,
                open(Scopes::ALL, false),
            ),
        ];
        let limits = Limits::default();
        for (intent, decision, policy, expected) in table {
            assert_eq!(
                after_handshake(facts(intent, decision, policy), &limits),
                expected,
                "{intent:?} {decision:?} {policy:?}"
            );
        }
    }

    #[test]
    fn approval_waits_are_bounded_overall_and_per_source() {
        let limits = Limits::default();
        let mut f = facts(Intent::Inbound, Decision::Undecided, DEFER);
        f.awaiting = limits.max_pending;
        assert_eq!(
            after_handshake(f, &limits),
            Verdict::Refuse("approval queue full")
        );
        // An allow-listed peer is not refused for a queue strangers filled.
        f.allow_listed = true;
        assert_eq!(after_handshake(f, &limits), WAIT);
        // But no source holds more than its share.
        f.awaiting_from_source = limits.max_pending_per_source;
        assert!(matches!(after_handshake(f, &limits), Verdict::Refuse(_)));
        // An approved peer never waits, whatever the queue.
        f.decision = Decision::Approved;
        assert_eq!(after_handshake(f, &limits), open(Scopes::MESSAGE, false));
    }

    #[test]
    fn room_for_channels() {
        let limits = Limits::default();
        let ok = Counts::default();
        let table = [
            (
                Counts {
                    total: limits.max_channels,
                    ..ok
                },
                Direction::Outbound,
                Err("max_channels"),
            ),
            (
                Counts {
                    inbound: limits.max_inbound,
                    ..ok
                },
                Direction::Inbound,
                Err("max_inbound"),
            ),
            (
                Counts {
                    inbound: limits.max_inbound,
                    ..ok
                },
                Direction::Outbound,
                Ok(()),
            ),
            (
                Counts {
                    handshaking: limits.max_handshakes,
                    ..ok
                },
                Direction::Inbound,
                Err("max_handshakes"),
            ),
            (
                Counts {
                    from_source: limits.max_pending_per_source,
                    ..ok
                },
                Direction::Inbound,
                Err("max_pending_per_source"),
            ),
            (
                Counts {
                    from_source: 1,
                    handshaking: 1,
                    ..ok
                },
                Direction::Inbound,
                Ok(()),
            ),
            (ok, Direction::Inbound, Ok(())),
        ];
        for (counts, direction, expected) in table {
            assert_eq!(
                room_for_channel(counts, &limits, direction),
                expected,
                "{counts:?}"
            );
        }
    }

    #[test]
    fn sources_are_addresses_or_ipv6_slash_64s() {
        let key = |s: &str| SourceKey::of(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
        assert_eq!(key("192.0.2.1"), key("::ffff:192.0.2.1"));
        assert_ne!(key("0.0.0.1"), key("::1"));
    }
}
