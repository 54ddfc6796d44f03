//! Conversions between the node's peers and their stored records, and the
//! words the panel and terminal show for sources, states and grants.

use std::{
    net::SocketAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use p2pnet::{
    DiscoveryVia, GrantId, GrantInfo, KnownPeer, PeerId, PeerSource, Scopes, proto::ChannelState,
};

use crate::store::{GrantRecord, KnownPeerRecord};

/// Unix milliseconds of a wall-clock time (0 before the epoch).
pub fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn from_unix_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// How a peer became known, in words (stored and shown).
pub fn source_word(source: PeerSource) -> String {
    match source {
        PeerSource::Manual => "manual".into(),
        PeerSource::Inbound => "inbound".into(),
        PeerSource::Shared { by } => format!("shared:{by}"),
        PeerSource::Discovery { via } => format!("discovery:{}", via_word(via)),
        PeerSource::Bootstrap => "bootstrap".into(),
        PeerSource::Widescan => "widescan".into(),
        _ => "other".into(),
    }
}

/// How a discovery announce arrived, in words.
pub fn via_word(via: DiscoveryVia) -> &'static str {
    match via {
        DiscoveryVia::Broadcast => "broadcast",
        DiscoveryVia::Multicast => "multicast",
        DiscoveryVia::Unicast => "unicast",
    }
}

fn parse_source(word: &str) -> PeerSource {
    match word.split_once(':') {
        Some(("shared", by)) => by
            .parse::<PeerId>()
            .map_or(PeerSource::Manual, |by| PeerSource::Shared { by }),
        Some(("discovery", via)) => PeerSource::Discovery {
            via: match via {
                "broadcast" => DiscoveryVia::Broadcast,
                "multicast" => DiscoveryVia::Multicast,
                _ => DiscoveryVia::Unicast,
            },
        },
        _ if word == "inbound" => PeerSource::Inbound,
        _ if word == "bootstrap" => PeerSource::Bootstrap,
        _ if word == "widescan" => PeerSource::Widescan,
        _ => PeerSource::Manual,
    }
}

/// A channel state in words.
pub fn state_word(state: ChannelState) -> &'static str {
    match state {
        ChannelState::Handshaking => "handshaking",
        ChannelState::PendingApproval => "pending approval",
        ChannelState::Open { .. } => "open",
        ChannelState::Closing => "closing",
        ChannelState::Closed => "closed",
    }
}

/// The stored form of a grant.
pub fn grant_record(grant: &GrantInfo) -> GrantRecord {
    GrantRecord {
        id: grant.id.0,
        scopes: grant.scopes.to_string(),
        max_file_size: grant.max_file_size,
        expires_at_ms: grant.expires_at.map(unix_ms),
        granted_by: grant.granted_by.clone(),
        granted_at_ms: unix_ms(grant.granted_at),
    }
}

/// The stored form of a known peer.
pub fn peer_record(peer: &KnownPeer) -> KnownPeerRecord {
    KnownPeerRecord {
        peer_id: peer.peer_id.to_string(),
        addresses: peer.addresses.iter().map(ToString::to_string).collect(),
        proven: peer
            .proven_addresses
            .iter()
            .map(ToString::to_string)
            .collect(),
        source: source_word(peer.source),
        first_seen_ms: unix_ms(peer.first_seen),
        last_seen_ms: unix_ms(peer.last_seen),
        decision: if peer.approved {
            "approved"
        } else if peer.rejected {
            "rejected"
        } else {
            "undecided"
        }
        .into(),
        persistent: peer.persistent,
        grants: peer.grants.iter().map(grant_record).collect(),
    }
}

/// A stored peer back as the node takes it; `Err` names what is wrong
/// with the row (it is then skipped, not half restored).
pub fn known_peer(record: &KnownPeerRecord) -> Result<KnownPeer, String> {
    let peer_id = record
        .peer_id
        .parse::<PeerId>()
        .map_err(|e| format!("peer id `{}`: {e}", record.peer_id))?;
    let parse_addrs = |list: &[String]| -> Result<Vec<SocketAddr>, String> {
        list.iter()
            .map(|a| a.parse().map_err(|_| format!("address `{a}`")))
            .collect()
    };
    let grants = record
        .grants
        .iter()
        .map(|g| {
            Ok(GrantInfo {
                id: GrantId(g.id),
                scopes: g
                    .scopes
                    .parse::<Scopes>()
                    .map_err(|e| format!("grant {}: {e}", g.id))?,
                max_file_size: g.max_file_size,
                expires_at: g.expires_at_ms.map(from_unix_ms),
                granted_by: g.granted_by.clone(),
                granted_at: from_unix_ms(g.granted_at_ms),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let (approved, rejected) = match record.decision.as_str() {
        "approved" => (true, false),
        "rejected" => (false, true),
        _ => (false, false),
    };
    let mut peer = p2pnet::KnownPeer::new(peer_id, parse_source(&record.source));
    peer.addresses = parse_addrs(&record.addresses)?;
    peer.proven_addresses = parse_addrs(&record.proven)?;
    peer.first_seen = from_unix_ms(record.first_seen_ms);
    peer.last_seen = from_unix_ms(record.last_seen_ms);
    peer.approved = approved;
    peer.rejected = rejected;
    peer.persistent = record.persistent;
    peer.grants = grants;
    Ok(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_survives_the_round_trip_through_its_record() {
        let id = p2pnet::PeerId::from_bytes([7; 32]);
        let by = p2pnet::PeerId::from_bytes([9; 32]);
        let now = from_unix_ms(unix_ms(SystemTime::now()));
        let mut peer = KnownPeer::new(id, PeerSource::Shared { by });
        peer.addresses = vec![
            "192.0.2.1:4000".parse().unwrap(),
            "[2001:db8::1]:4000".parse().unwrap(),
        ];
        peer.proven_addresses = vec!["192.0.2.1:4000".parse().unwrap()];
        peer.first_seen = now;
        peer.last_seen = now;
        peer.approved = true;
        peer.persistent = true;
        peer.grants = vec![GrantInfo {
            id: GrantId(7),
            scopes: Scopes::FILE | Scopes::DATA,
            max_file_size: Some(1 << 20),
            expires_at: Some(now + Duration::from_secs(60)),
            granted_by: "ops".into(),
            granted_at: now,
        }];
        let back = known_peer(&peer_record(&peer)).expect("valid");
        assert_eq!(back, peer);
        for source in [
            PeerSource::Manual,
            PeerSource::Inbound,
            PeerSource::Discovery {
                via: DiscoveryVia::Multicast,
            },
            PeerSource::Bootstrap,
            PeerSource::Widescan,
        ] {
            assert_eq!(parse_source(&source_word(source)), source);
        }
    }

    #[test]
    fn a_corrupt_row_is_refused_with_the_reason() {
        let id = p2pnet::PeerId::from_bytes([7; 32]);
        let mut record = peer_record(&KnownPeer::new(id, PeerSource::Manual));
        record.addresses = vec!["not an address".into()];
        assert!(known_peer(&record).unwrap_err().contains("not an address"));
        record.peer_id = "short".into();
        assert!(known_peer(&record).unwrap_err().contains("short"));
    }
}
