//! Self-signed peer records: what a peer says about itself to bootstrap
//! servers.
//!
//! A record names the peer, its network, a sequence number, when it was
//! issued and until when it holds, and the addresses the peer accepts
//! channels on. The peer signs it with its identity ([`Keypair::sign`],
//! domain [`RECORD_DOMAIN`]), so a bootstrap server, a mirror or another
//! peer can relay it but not forge or alter it.
//!
//! # Text form
//!
//! A record travels as one line of text, a self-signed statement
//! ([`signed`](crate::signed)): `PAYLOAD.SIGNATURE`. The text is what is
//! relayed, byte for byte; nobody re-encodes a record they did not sign.
//!
//! # Checks
//!
//! [`SignedRecord::parse`] checks what needs no context: the sizes, the
//! signature, the layout and the bounds of every field.
//! [`SignedRecord::check`] adds what needs it: the network, and the time
//! (not expired, not issued in the future beyond a skew).
//! Which sequence numbers are new is the receiver's to decide: it keeps
//! the highest it accepted per peer.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::identity::{Keypair, PeerId};
use crate::signed;

/// The signing domain of peer records.
pub const RECORD_DOMAIN: &str = "p2pnet/peer-record/v1";
/// Most addresses one record lists.
pub const MAX_RECORD_ADDRESSES: usize = 16;
/// Longest network name, in bytes (as the handshake's).
pub const MAX_RECORD_NETWORK_LEN: usize = 64;
/// Longest payload, in bytes. Sixteen IPv6 addresses and a full network
/// name take under 500.
pub const MAX_RECORD_PAYLOAD_LEN: usize = 640;
/// Longest text form: the base64 of the payload and the signature and the
/// dot between them.
pub const MAX_RECORD_TEXT_LEN: usize = signed::max_text_len(MAX_RECORD_PAYLOAD_LEN);
/// Longest time a record may hold, from its issue to its expiry: a week.
/// A peer re-announces long before; a short life bounds how long a
/// stolen or stale record can mislead.
pub const MAX_RECORD_LIFETIME_SECS: u64 = 7 * 24 * 3600;

/// What a peer says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// The peer, whose key signs the record. First in the payload.
    pub peer: PeerId,
    /// The network the peer belongs to.
    pub network: String,
    /// Rises with every record the peer issues; receivers keep the highest
    /// they accepted and refuse lower ones. Not a time.
    pub seq: u64,
    /// When it was issued, Unix seconds.
    pub issued_at: u64,
    /// Until when it holds, Unix seconds.
    pub expires_at: u64,
    /// Where the peer accepts channels. An unspecified IP (`0.0.0.0`,
    /// `::`) asks the server to use the address it sees the announce from.
    pub addresses: Vec<SocketAddr>,
}

/// Why a record (or another self-signed statement, such as a heartbeat)
/// was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The text or payload is longer than its bound.
    #[error("record too large ({0} bytes)")]
    TooLarge(usize),
    /// The text or payload does not decode.
    #[error("malformed record: {0}")]
    Malformed(&'static str),
    /// The signature does not verify for the peer the record names.
    #[error("the record's signature is not its peer's")]
    BadSignature,
    /// A field is out of its bounds.
    #[error("invalid record: {0}")]
    Invalid(&'static str),
    /// The record belongs to another network.
    #[error("the record is for network {0:?}")]
    WrongNetwork(String),
    /// The record's time has passed.
    #[error("the record expired at {expires_at} (now {now})")]
    Expired {
        /// Its expiry, Unix seconds.
        expires_at: u64,
        /// The time it was checked at.
        now: u64,
    },
    /// The record says it was issued later than now plus the allowed skew.
    #[error("the record is issued at {issued_at}, in the future (now {now})")]
    FromTheFuture {
        /// Its issue time, Unix seconds.
        issued_at: u64,
        /// The time it was checked at.
        now: u64,
    },
    /// The keypair given to sign is not the record's peer.
    #[error("a record is signed by the peer it names")]
    NotTheSigner,
}

/// A record with its signature, as relayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRecord {
    record: PeerRecord,
    text: String,
}

impl SignedRecord {
    /// Signs `record` with `keys`, which must be the record's peer.
    pub fn sign(record: PeerRecord, keys: &Keypair) -> Result<Self, RecordError> {
        if keys.peer_id() != record.peer {
            return Err(RecordError::NotTheSigner);
        }
        validate(&record)?;
        let text = signed::seal(&record, keys, RECORD_DOMAIN, MAX_RECORD_PAYLOAD_LEN)?;
        Ok(Self { record, text })
    }

    /// Parses and verifies a record's text form (see the module docs).
    pub fn parse(text: &str) -> Result<Self, RecordError> {
        let record: PeerRecord = signed::open(text, RECORD_DOMAIN, MAX_RECORD_PAYLOAD_LEN)?;
        validate(&record)?;
        Ok(Self {
            record,
            text: text.to_owned(),
        })
    }

    /// Checks the record against its context: `network`, and the time
    /// `now` (Unix seconds) with `skew` seconds of tolerance for clocks
    /// that run apart.
    pub fn check(&self, network: &str, now: u64, skew: u64) -> Result<(), RecordError> {
        let r = &self.record;
        if r.network != network {
            return Err(RecordError::WrongNetwork(r.network.clone()));
        }
        if r.expires_at <= now {
            return Err(RecordError::Expired {
                expires_at: r.expires_at,
                now,
            });
        }
        if r.issued_at > now.saturating_add(skew) {
            return Err(RecordError::FromTheFuture {
                issued_at: r.issued_at,
                now,
            });
        }
        Ok(())
    }

    /// The record.
    pub fn record(&self) -> &PeerRecord {
        &self.record
    }

    /// The text form, exactly as signed and received.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// The bounds every record keeps, whoever made it.
fn validate(r: &PeerRecord) -> Result<(), RecordError> {
    if r.network.is_empty() || r.network.len() > MAX_RECORD_NETWORK_LEN {
        return Err(RecordError::Invalid("network name must be 1–64 bytes"));
    }
    if r.addresses.is_empty() || r.addresses.len() > MAX_RECORD_ADDRESSES {
        return Err(RecordError::Invalid("a record lists 1–16 addresses"));
    }
    if r.expires_at <= r.issued_at {
        return Err(RecordError::Invalid("expires before it is issued"));
    }
    if r.expires_at - r.issued_at > MAX_RECORD_LIFETIME_SECS {
        return Err(RecordError::Invalid("holds longer than a week"));
    }
    for addr in &r.addresses {
        if addr.port() == 0 {
            return Err(RecordError::Invalid("an address with port 0"));
        }
        let ip = addr.ip();
        if ip.is_multicast() || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()) {
            return Err(RecordError::Invalid("a multicast or broadcast address"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keypair {
        Keypair::from_seed(&[11; 32])
    }

    fn record(keys: &Keypair) -> PeerRecord {
        PeerRecord {
            peer: keys.peer_id(),
            network: "lan".into(),
            seq: 7,
            issued_at: 1_000,
            expires_at: 4_600,
            addresses: vec![
                "198.51.100.7:4000".parse().unwrap(),
                "[2001:db8::7]:4000".parse().unwrap(),
            ],
        }
    }

    #[test]
    fn a_signed_record_parses_back_exactly() {
        let keys = keys();
        let signed = SignedRecord::sign(record(&keys), &keys).unwrap();
        let text = signed.as_str();
        assert!(text.len() <= MAX_RECORD_TEXT_LEN);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "one line of base64url: {text}"
        );
        let parsed = SignedRecord::parse(text).unwrap();
        assert_eq!(parsed, signed);
        assert_eq!(parsed.record(), &record(&keys));
        assert_eq!(parsed.check("lan", 2_000, 60), Ok(()));
    }

    #[test]
    fn a_relay_can_alter_nothing() {
        let keys = keys();
        let text = SignedRecord::sign(record(&keys), &keys)
            .unwrap()
            .as_str()
            .to_owned();
        let (payload, signature) = text.split_once('.').unwrap();
        let b64 = &data_encoding::BASE64URL_NOPAD;
        // Every single-byte change of the payload is caught.
        let bytes = b64.decode(payload.as_bytes()).unwrap();
        for i in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[i] ^= 0x01;
            let forged = format!("{}.{signature}", b64.encode(&altered));
            assert!(SignedRecord::parse(&forged).is_err(), "byte {i} altered");
        }
        // Another peer's signature over the same payload.
        let other = Keypair::from_seed(&[12; 32]);
        let sig = other.sign(RECORD_DOMAIN, &bytes).unwrap();
        let forged = format!("{payload}.{}", b64.encode(&sig));
        assert_eq!(SignedRecord::parse(&forged), Err(RecordError::BadSignature));
        // The peer's own signature, but for another purpose.
        let sig = keys.sign("p2pnet/other", &bytes).unwrap();
        let forged = format!("{payload}.{}", b64.encode(&sig));
        assert_eq!(SignedRecord::parse(&forged), Err(RecordError::BadSignature));
    }

    #[test]
    fn only_the_peer_signs_its_record() {
        let other = Keypair::from_seed(&[12; 32]);
        assert_eq!(
            SignedRecord::sign(record(&keys()), &other),
            Err(RecordError::NotTheSigner)
        );
    }

    #[test]
    fn context_checks_network_and_time() {
        let keys = keys();
        let signed = SignedRecord::sign(record(&keys), &keys).unwrap();
        assert_eq!(
            signed.check("other", 2_000, 60),
            Err(RecordError::WrongNetwork("lan".into()))
        );
        assert!(matches!(
            signed.check("lan", 4_600, 60),
            Err(RecordError::Expired { .. })
        ));
        assert!(matches!(
            signed.check("lan", 900, 60),
            Err(RecordError::FromTheFuture { .. })
        ));
        assert_eq!(signed.check("lan", 950, 60), Ok(()), "within the skew");
    }

    #[test]
    fn out_of_bounds_records_are_refused_when_signed_or_parsed() {
        let keys = keys();
        type Spoil = fn(&mut PeerRecord);
        let bad: [(&str, Spoil); 7] = [
            ("empty network", |r| r.network.clear()),
            ("long network", |r| r.network = "n".repeat(65)),
            ("no address", |r| r.addresses.clear()),
            ("too many", |r| r.addresses = vec![r.addresses[0]; 17]),
            ("backwards", |r| r.expires_at = r.issued_at),
            ("too long a life", |r| {
                r.expires_at = r.issued_at + MAX_RECORD_LIFETIME_SECS + 1;
            }),
            ("port 0", |r| r.addresses[0].set_port(0)),
        ];
        for (what, spoil) in bad {
            let mut r = record(&keys);
            spoil(&mut r);
            assert!(
                matches!(
                    SignedRecord::sign(r.clone(), &keys),
                    Err(RecordError::Invalid(_))
                ),
                "{what}"
            );
            // Signed by hand, it is refused by the parser too.
            let payload = postcard::to_allocvec(&r).unwrap();
            let sig = keys.sign(RECORD_DOMAIN, &payload).unwrap();
            let b64 = &data_encoding::BASE64URL_NOPAD;
            let text = format!("{}.{}", b64.encode(&payload), b64.encode(&sig));
            assert!(
                matches!(
                    SignedRecord::parse(&text),
                    Err(RecordError::Invalid(_) | RecordError::TooLarge(_))
                ),
                "{what}"
            );
        }
        let mut multicast = record(&keys);
        multicast.addresses[0] = "224.0.0.1:4000".parse().unwrap();
        assert!(SignedRecord::sign(multicast, &keys).is_err());
    }

    #[test]
    fn garbage_gets_a_clear_error() {
        for text in ["", ".", "abc", "a.b", "!!!.???", "AAAA.AAAA"] {
            assert!(
                matches!(SignedRecord::parse(text), Err(RecordError::Malformed(_))),
                "{text:?}"
            );
        }
        let long = "A".repeat(MAX_RECORD_TEXT_LEN + 1);
        assert_eq!(
            SignedRecord::parse(&long),
            Err(RecordError::TooLarge(MAX_RECORD_TEXT_LEN + 1))
        );
    }
}
