//! Heartbeats: how a peer asks a bootstrap server for the network tasks
//! queued for it, authenticated by its own signature.
//!
//! A heartbeat names the peer, its network, the time it was made and the
//! last task the peer applied; it is a self-signed statement
//! ([`signed`](crate::signed)) under [`HEARTBEAT_DOMAIN`]. A server
//! accepts one only within the clock skew of its own time and newer than
//! the last it accepted from that peer, so a captured heartbeat cannot be
//! replayed to learn the peer's tasks again.

use serde::{Deserialize, Serialize};

use crate::identity::{Keypair, PeerId};
use crate::record::{MAX_RECORD_NETWORK_LEN, RecordError};
use crate::signed;

/// The signing domain of heartbeats.
pub const HEARTBEAT_DOMAIN: &str = "p2pnet/bootstrap-heartbeat/v1";
/// Longest payload, in bytes.
pub const MAX_HEARTBEAT_PAYLOAD_LEN: usize = 160;
/// Longest text form.
pub const MAX_HEARTBEAT_TEXT_LEN: usize = signed::max_text_len(MAX_HEARTBEAT_PAYLOAD_LEN);

/// A peer asking for its tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The peer, whose key signs it. First in the payload.
    pub peer: PeerId,
    /// Its network.
    pub network: String,
    /// When it was made, Unix milliseconds (a server keeps the highest).
    pub at_ms: u64,
    /// The sequence of the last task the peer applied (0: none).
    pub after_task: u64,
}

/// A heartbeat with its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeartbeat {
    heartbeat: Heartbeat,
    text: String,
}

impl SignedHeartbeat {
    /// Signs `heartbeat` with `keys`, which must be its peer.
    pub fn sign(heartbeat: Heartbeat, keys: &Keypair) -> Result<Self, RecordError> {
        if keys.peer_id() != heartbeat.peer {
            return Err(RecordError::NotTheSigner);
        }
        validate(&heartbeat)?;
        let text = signed::seal(
            &heartbeat,
            keys,
            HEARTBEAT_DOMAIN,
            MAX_HEARTBEAT_PAYLOAD_LEN,
        )?;
        Ok(Self { heartbeat, text })
    }

    /// Parses and verifies a heartbeat's text form.
    pub fn parse(text: &str) -> Result<Self, RecordError> {
        let heartbeat: Heartbeat = signed::open(text, HEARTBEAT_DOMAIN, MAX_HEARTBEAT_PAYLOAD_LEN)?;
        validate(&heartbeat)?;
        Ok(Self {
            heartbeat,
            text: text.to_owned(),
        })
    }

    /// Checks it against `network` and the time `now_ms`, allowing
    /// `skew_ms` either way.
    pub fn check(&self, network: &str, now_ms: u64, skew_ms: u64) -> Result<(), RecordError> {
        let h = &self.heartbeat;
        if h.network != network {
            return Err(RecordError::WrongNetwork(h.network.clone()));
        }
        if h.at_ms > now_ms.saturating_add(skew_ms) {
            return Err(RecordError::FromTheFuture {
                issued_at: h.at_ms / 1000,
                now: now_ms / 1000,
            });
        }
        if h.at_ms.saturating_add(skew_ms) < now_ms {
            return Err(RecordError::Expired {
                expires_at: (h.at_ms + skew_ms) / 1000,
                now: now_ms / 1000,
            });
        }
        Ok(())
    }

    /// The heartbeat.
    pub fn heartbeat(&self) -> &Heartbeat {
        &self.heartbeat
    }

    /// The text form, exactly as signed.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn validate(h: &Heartbeat) -> Result<(), RecordError> {
    if h.network.is_empty() || h.network.len() > MAX_RECORD_NETWORK_LEN {
        return Err(RecordError::Invalid("network name must be 1–64 bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat(keys: &Keypair) -> Heartbeat {
        Heartbeat {
            peer: keys.peer_id(),
            network: "lan".into(),
            at_ms: 1_000_000,
            after_task: 3,
        }
    }

    #[test]
    fn signed_heartbeats_parse_back_and_forgeries_do_not() {
        let keys = Keypair::from_seed(&[21; 32]);
        let signed = SignedHeartbeat::sign(heartbeat(&keys), &keys).unwrap();
        assert!(signed.as_str().len() <= MAX_HEARTBEAT_TEXT_LEN);
        let parsed = SignedHeartbeat::parse(signed.as_str()).unwrap();
        assert_eq!(parsed, signed);
        assert_eq!(parsed.check("lan", 1_000_500, 60_000), Ok(()));

        let other = Keypair::from_seed(&[22; 32]);
        assert_eq!(
            SignedHeartbeat::sign(heartbeat(&keys), &other),
            Err(RecordError::NotTheSigner)
        );
        // A record's signature does not make a heartbeat: the domains differ.
        let payload = postcard::to_allocvec(&heartbeat(&keys)).unwrap();
        let sig = keys.sign(crate::record::RECORD_DOMAIN, &payload).unwrap();
        let b64 = &data_encoding::BASE64URL_NOPAD;
        let text = format!("{}.{}", b64.encode(&payload), b64.encode(&sig));
        assert_eq!(
            SignedHeartbeat::parse(&text),
            Err(RecordError::BadSignature)
        );
    }

    #[test]
    fn only_a_fresh_heartbeat_of_the_network_passes() {
        let keys = Keypair::from_seed(&[21; 32]);
        let signed = SignedHeartbeat::sign(heartbeat(&keys), &keys).unwrap();
        assert!(matches!(
            signed.check("wan", 1_000_000, 60_000),
            Err(RecordError::WrongNetwork(_))
        ));
        assert!(matches!(
            signed.check("lan", 1_070_000, 60_000),
            Err(RecordError::Expired { .. })
        ));
        assert!(matches!(
            signed.check("lan", 930_000, 60_000),
            Err(RecordError::FromTheFuture { .. })
        ));
    }
}
