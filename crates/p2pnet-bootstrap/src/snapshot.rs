//! The bootstrap snapshot: the list of peer records a server serves.
//!
//! A snapshot is one JSON text, and that exact text is what an authority
//! signs and what a client checks, byte for byte; nobody re-encodes it.
//! It names the network, a sequence number that rises with every change
//! (a client refuses a lower one: rollback), when it was issued and until
//! when it holds (a client refuses an expired one: freeze), and the
//! self-signed records, each with the address the server saw its announce
//! come from.
//!
//! [`Snapshot::parse`] checks what needs no context (size, format, bounds)
//! and sorts the records into those that verify and those that do not: a
//! bad record costs only itself. The freshness rules that need the
//! client's state are in [`Snapshot::check`].

use std::net::IpAddr;

use p2pnet::proto::record::{RecordError, SignedRecord};
use serde::{Deserialize, Serialize};

use crate::error::SnapshotError;

/// The `format` of every snapshot this crate writes and reads.
pub const SNAPSHOT_FORMAT: &str = "p2pnet-bootstrap-snapshot/1";
/// The most records one snapshot carries.
pub const MAX_SNAPSHOT_PEERS: usize = 100_000;
/// The longest snapshot text read, in bytes (a full snapshot of records
/// with sixteen IPv6 addresses each stays below).
pub const MAX_SNAPSHOT_LEN: usize = 128 * 1024 * 1024;

/// One peer in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPeer {
    /// The peer's record, its text form exactly as the peer signed it.
    pub record: String,
    /// The address the server saw the announce come from; it stands in for
    /// the record's unspecified addresses (`0.0.0.0`, `::`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_ip: Option<IpAddr>,
}

/// What a server lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// [`SNAPSHOT_FORMAT`].
    pub format: String,
    /// The network the peers belong to.
    pub network: String,
    /// Rises with every change the server makes to its list.
    pub seq: u64,
    /// When it was made, Unix seconds.
    pub issued_at: u64,
    /// Until when it holds, Unix seconds.
    pub expires_at: u64,
    /// The peers.
    pub peers: Vec<SnapshotPeer>,
}

/// A record of a parsed snapshot, verified, with what the server saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPeer {
    /// The record.
    pub record: SignedRecord,
    /// See [`SnapshotPeer::observed_ip`].
    pub observed_ip: Option<IpAddr>,
}

/// A parsed snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The snapshot as written.
    pub snapshot: Snapshot,
    /// Its records that verify (their signature, and their network and
    /// time as of the check).
    pub peers: Vec<ListedPeer>,
    /// Those that did not, with why.
    pub refused: Vec<RecordError>,
}

impl Snapshot {
    /// A snapshot of `peers` for `network`.
    pub fn new(
        network: &str,
        seq: u64,
        issued_at: u64,
        expires_at: u64,
        peers: Vec<SnapshotPeer>,
    ) -> Self {
        Self {
            format: SNAPSHOT_FORMAT.to_owned(),
            network: network.to_owned(),
            seq,
            issued_at,
            expires_at,
            peers,
        }
    }

    /// The text to serve and sign.
    pub fn to_text(&self) -> Result<String, SnapshotError> {
        serde_json::to_string(self).map_err(|e| SnapshotError::Malformed(e.to_string()))
    }

    /// Parses `text` and verifies each record for `network` at `now`
    /// (Unix seconds, `skew` seconds of tolerance). Checks nothing about
    /// the snapshot's own freshness: see [`check`](Self::check).
    pub fn parse(text: &str, network: &str, now: u64, skew: u64) -> Result<Parsed, SnapshotError> {
        if text.len() > MAX_SNAPSHOT_LEN {
            return Err(SnapshotError::TooLarge(text.len()));
        }
        let snapshot: Self =
            serde_json::from_str(text).map_err(|e| SnapshotError::Malformed(e.to_string()))?;
        if snapshot.format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::UnknownFormat(snapshot.format));
        }
        if snapshot.peers.len() > MAX_SNAPSHOT_PEERS {
            return Err(SnapshotError::TooManyPeers(snapshot.peers.len()));
        }
        if snapshot.network != network {
            return Err(SnapshotError::WrongNetwork(snapshot.network));
        }
        let mut peers = Vec::with_capacity(snapshot.peers.len());
        let mut refused = Vec::new();
        for peer in &snapshot.peers {
            match SignedRecord::parse(&peer.record).and_then(|record| {
                record.check(network, now, skew)?;
                Ok(record)
            }) {
                Ok(record) => peers.push(ListedPeer {
                    record,
                    observed_ip: peer.observed_ip,
                }),
                Err(e) => refused.push(e),
            }
        }
        Ok(Parsed {
            snapshot,
            peers,
            refused,
        })
    }

    /// The freshness rules (as TUF's for its timestamp role): the sequence
    /// is not below `trusted_seq` (rollback), the snapshot has not expired
    /// at `now` (freeze), and it was not issued beyond `now + skew`.
    /// `Ok(false)` when its sequence equals the trusted one: nothing new.
    pub fn check(
        &self,
        trusted_seq: Option<u64>,
        now: u64,
        skew: u64,
    ) -> Result<bool, SnapshotError> {
        if let Some(trusted) = trusted_seq
            && self.seq < trusted
        {
            return Err(SnapshotError::Rollback {
                seq: self.seq,
                trusted,
            });
        }
        if self.expires_at <= now {
            return Err(SnapshotError::Expired {
                expires_at: self.expires_at,
                now,
            });
        }
        if self.issued_at > now.saturating_add(skew) {
            return Err(SnapshotError::FromTheFuture {
                issued_at: self.issued_at,
                now,
            });
        }
        Ok(trusted_seq != Some(self.seq))
    }
}

#[cfg(test)]
mod tests {
    use p2pnet::proto::{Keypair, record::PeerRecord};

    use super::*;

    fn record(seed: u8, network: &str, expires_at: u64) -> String {
        let keys = Keypair::from_seed(&[seed; 32]);
        SignedRecord::sign(
            PeerRecord {
                peer: keys.peer_id(),
                network: network.into(),
                seq: 1,
                issued_at: 100,
                expires_at,
                addresses: vec!["0.0.0.0:4000".parse().unwrap()],
            },
            &keys,
        )
        .unwrap()
        .as_str()
        .to_owned()
    }

    #[test]
    fn parses_back_and_sorts_records() {
        let good = SnapshotPeer {
            record: record(1, "lan", 5_000),
            observed_ip: Some("198.51.100.1".parse().unwrap()),
        };
        let expired = SnapshotPeer {
            record: record(2, "lan", 150),
            observed_ip: None,
        };
        let other_network = SnapshotPeer {
            record: record(3, "wan", 5_000),
            observed_ip: None,
        };
        let garbage = SnapshotPeer {
            record: "not a record".into(),
            observed_ip: None,
        };
        let snapshot = Snapshot::new(
            "lan",
            3,
            200,
            3_800,
            vec![good.clone(), expired, other_network, garbage],
        );
        let text = snapshot.to_text().unwrap();
        let parsed = Snapshot::parse(&text, "lan", 300, 60).unwrap();
        assert_eq!(parsed.snapshot, snapshot);
        assert_eq!(parsed.peers.len(), 1);
        assert_eq!(parsed.peers[0].record.as_str(), good.record);
        assert_eq!(parsed.peers[0].observed_ip, good.observed_ip);
        assert_eq!(parsed.refused.len(), 3, "{:?}", parsed.refused);
    }

    #[test]
    fn freshness_refuses_rollback_freeze_and_the_future() {
        let s = Snapshot::new("lan", 10, 1_000, 2_000, vec![]);
        assert_eq!(s.check(None, 1_500, 60), Ok(true));
        assert_eq!(s.check(Some(9), 1_500, 60), Ok(true));
        assert_eq!(s.check(Some(10), 1_500, 60), Ok(false), "nothing new");
        assert_eq!(
            s.check(Some(11), 1_500, 60),
            Err(SnapshotError::Rollback {
                seq: 10,
                trusted: 11
            })
        );
        assert!(matches!(
            s.check(None, 2_000, 60),
            Err(SnapshotError::Expired { .. })
        ));
        assert!(matches!(
            s.check(None, 900, 60),
            Err(SnapshotError::FromTheFuture { .. })
        ));
    }

    #[test]
    fn bad_snapshots_get_clear_errors() {
        assert!(matches!(
            Snapshot::parse("{", "lan", 0, 0),
            Err(SnapshotError::Malformed(_))
        ));
        let mut s = Snapshot::new("lan", 1, 0, 10, vec![]);
        s.format = "something/2".into();
        assert!(matches!(
            Snapshot::parse(&s.to_text().unwrap(), "lan", 0, 0),
            Err(SnapshotError::UnknownFormat(_))
        ));
        let s = Snapshot::new("wan", 1, 0, 10, vec![]);
        assert!(matches!(
            Snapshot::parse(&s.to_text().unwrap(), "lan", 0, 0),
            Err(SnapshotError::WrongNetwork(_))
        ));
        let text = Snapshot::new("lan", 1, 0, 10, vec![]).to_text().unwrap();
        let extra = text.replacen('{', "{\"injected\":1,", 1);
        assert!(matches!(
            Snapshot::parse(&extra, "lan", 0, 0),
            Err(SnapshotError::Malformed(_))
        ));
    }
}
