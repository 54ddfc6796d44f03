//! What a client accepts from a bootstrap server: the policy, the trust it
//! keeps between fetches (the pinned authority, the highest sequences),
//! and the checks, in TUF's order: the authority's signature over the
//! exact bytes before anything in them is read, then the network, the
//! sequence (no rollback), the expiry (no freeze), and each record's own
//! signature. No IO: the client (`client.rs`) fetches and persists.

use std::{collections::BTreeMap, time::SystemTime};

use serde::{Deserialize, Serialize};

use crate::{
    authority::{AuthorityError, PinnedAuthority, Rotation},
    error::SnapshotError,
    snapshot::{MAX_SNAPSHOT_LEN, Parsed, Snapshot},
};

/// Which servers a client listens to (the seed's four flags, plus a pin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BootstrapPolicy {
    /// Accept trustless servers (an unsigned list). `AllowBootstrapTrustlessConnection`.
    pub allow_trustless: bool,
    /// Accept authority servers (a signed list). `AllowBootstrapAuthorityConnection`.
    pub allow_authority: bool,
    /// Refuse every list an authority did not sign. `MustBeAuthority`.
    pub must_be_authority: bool,
    /// Pin the first authority met and refuse any other from then on (a
    /// rotation signed by the pinned key is followed).
    /// `FirstSingleLockingAuthority`.
    pub first_single_locking_authority: bool,
    /// The authority to trust, by fingerprint, from the start (no trust on
    /// first use).
    pub pinned_fingerprint: Option<String>,
}

impl Default for BootstrapPolicy {
    fn default() -> Self {
        Self {
            allow_trustless: true,
            allow_authority: true,
            must_be_authority: false,
            first_single_locking_authority: true,
            pinned_fingerprint: None,
        }
    }
}

/// The body of `GET /api/Bootstrap/peers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeersResponse {
    /// `trustless` or `authority`.
    pub mode: String,
    /// The exact signed text.
    pub snapshot: String,
    /// The authority's armored detached signature, in authority mode.
    pub signature: Option<String>,
}

/// The body of `GET /api/Bootstrap/authority`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorityDoc {
    /// The key's fingerprint.
    pub fingerprint: String,
    /// Its armored certificate.
    pub certificate: String,
    /// Its rotations, oldest first.
    #[serde(default)]
    pub rotations: Vec<Rotation>,
}

/// The pinned authority, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// Its fingerprint.
    pub fingerprint: String,
    /// Its armored certificate.
    pub certificate: String,
    /// The rotation it came from, if any.
    pub rotation_seq: Option<u64>,
}

/// What a client keeps between fetches (and restarts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrustState {
    /// The authority pinned, if any.
    pub pin: Option<Pin>,
    /// The highest snapshot sequence accepted from the pinned authority
    /// (every server it signs for shares one sequence).
    pub authority_seq: Option<u64>,
    /// The highest sequence accepted per trustless server.
    pub trustless_seq: BTreeMap<String, u64>,
    /// The sequence of this node's own last record.
    pub record_seq: u64,
    /// The last network task applied (0: none).
    pub last_task: u64,
}

/// Why a server's list was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The policy refuses this kind of server.
    #[error("refused by policy: {0}")]
    Policy(&'static str),
    /// A mode this client does not know.
    #[error("unknown bootstrap mode {0:?}")]
    UnknownMode(String),
    /// Authority mode without a signature.
    #[error("an authority list without a signature")]
    Unsigned,
    /// Authority mode, and the authority's certificate is needed (no pin
    /// yet, or another key than the pinned one): fetch it and try again.
    #[error("the authority's certificate is needed")]
    NeedAuthority,
    /// An authority other than the pinned (or configured) one.
    #[error("the list is signed by authority {found}, not the pinned {pinned}")]
    OtherAuthority {
        /// The pinned fingerprint.
        pinned: String,
        /// The server's.
        found: String,
    },
    /// The signature or the certificate failed.
    #[error(transparent)]
    Authority(#[from] AuthorityError),
    /// The snapshot failed its checks.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// An accepted list.
#[derive(Debug)]
pub enum Verified {
    /// A newer list than the one trusted: its peers.
    New(Parsed),
    /// The same sequence as the one trusted: nothing new.
    Unchanged,
}

/// Checks `response` from `server` under `policy`, updating `state` only
/// when it is accepted. `authority` is the server's authority document,
/// needed in authority mode unless the pinned key signed the list.
#[allow(clippy::too_many_arguments)] // each is one input of the decision
pub fn verify(
    policy: &BootstrapPolicy,
    state: &mut TrustState,
    server: &str,
    response: &PeersResponse,
    authority: Option<&AuthorityDoc>,
    network: &str,
    now: SystemTime,
    skew_secs: u64,
) -> Result<Verified, VerifyError> {
    if response.snapshot.len() > MAX_SNAPSHOT_LEN {
        return Err(SnapshotError::TooLarge(response.snapshot.len()).into());
    }
    let now_secs = crate::unix_secs(now);
    match response.mode.as_str() {
        "trustless" => {
            if policy.must_be_authority {
                return Err(VerifyError::Policy(
                    "an unsigned list, and only an authority's is accepted",
                ));
            }
            if !policy.allow_trustless {
                return Err(VerifyError::Policy("trustless servers are not accepted"));
            }
            let parsed = Snapshot::parse(&response.snapshot, network, now_secs, skew_secs)?;
            let trusted = state.trustless_seq.get(server).copied();
            if !parsed.snapshot.check(trusted, now_secs, skew_secs)? {
                return Ok(Verified::Unchanged);
            }
            state
                .trustless_seq
                .insert(server.to_owned(), parsed.snapshot.seq);
            Ok(Verified::New(parsed))
        }
        "authority" => {
            if !policy.allow_authority {
                return Err(VerifyError::Policy("authority servers are not accepted"));
            }
            let signature = response.signature.as_deref().ok_or(VerifyError::Unsigned)?;
            let (pinned, new_pin) = choose_key(policy, state, authority, now)?;
            pinned.verify_detached(response.snapshot.as_bytes(), signature, now)?;
            // Only now, signed by the trusted key, is the text read.
            let parsed = Snapshot::parse(&response.snapshot, network, now_secs, skew_secs)?;
            // A rotated key signs for the same servers: the sequence goes on.
            let fresh = parsed
                .snapshot
                .check(state.authority_seq, now_secs, skew_secs)?;
            if let Some(pin) = new_pin {
                state.pin = Some(pin);
            }
            if !fresh {
                return Ok(Verified::Unchanged);
            }
            state.authority_seq = Some(parsed.snapshot.seq);
            Ok(Verified::New(parsed))
        }
        other => Err(VerifyError::UnknownMode(other.to_owned())),
    }
}

/// The key to check an authority list with, and the pin to store if the
/// list verifies (a first pin, or a rotation followed).
fn choose_key(
    policy: &BootstrapPolicy,
    state: &TrustState,
    authority: Option<&AuthorityDoc>,
    now: SystemTime,
) -> Result<(PinnedAuthority, Option<Pin>), VerifyError> {
    if let Some(pin) = &state.pin {
        let pinned =
            PinnedAuthority::from_armored(&pin.certificate)?.with_rotation_seq(pin.rotation_seq);
        let Some(doc) = authority.filter(|doc| doc.fingerprint != pin.fingerprint) else {
            return Ok((pinned, None));
        };
        // Another key: acceptable only as a rotation the pinned key signed.
        let followed =
            pinned
                .follow_chain(&doc.rotations, now)
                .map_err(|_| VerifyError::OtherAuthority {
                    pinned: pin.fingerprint.clone(),
                    found: doc.fingerprint.clone(),
                })?;
        if followed.fingerprint() != doc.fingerprint {
            return Err(VerifyError::OtherAuthority {
                pinned: pin.fingerprint.clone(),
                found: doc.fingerprint.clone(),
            });
        }
        let pin = Pin {
            fingerprint: followed.fingerprint(),
            certificate: followed.certificate_armored(),
            rotation_seq: followed.rotation_seq(),
        };
        return Ok((followed, Some(pin)));
    }
    let doc = authority.ok_or(VerifyError::NeedAuthority)?;
    let key = PinnedAuthority::from_armored(&doc.certificate)?;
    if key.fingerprint() != doc.fingerprint {
        return Err(VerifyError::OtherAuthority {
            pinned: doc.fingerprint.clone(),
            found: key.fingerprint(),
        });
    }
    if let Some(wanted) = &policy.pinned_fingerprint
        && !wanted.eq_ignore_ascii_case(&key.fingerprint())
    {
        return Err(VerifyError::OtherAuthority {
            pinned: wanted.clone(),
            found: key.fingerprint(),
        });
    }
    let pin =
        (policy.first_single_locking_authority || policy.pinned_fingerprint.is_some()).then(|| {
            Pin {
                fingerprint: key.fingerprint(),
                certificate: key.certificate_armored(),
                rotation_seq: None,
            }
        });
    Ok((key, pin))
}
