//! What a client refuses: a tampered list, a rollback, a frozen (expired)
//! list, another key after locking, an unsigned list under
//! `must_be_authority`; and what it accepts: a rotation the pinned key
//! signed.

use std::time::{Duration, SystemTime};

use p2pnet::proto::{
    Keypair,
    record::{PeerRecord, SignedRecord},
};
use p2pnet_bootstrap::{
    authority::AuthorityKey,
    error::SnapshotError,
    snapshot::{Snapshot, SnapshotPeer},
    verify::{
        AuthorityDoc, BootstrapPolicy, PeersResponse, TrustState, Verified, VerifyError, verify,
    },
};

const SERVER: &str = "http://bootstrap.test";
const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn snapshot_text(seq: u64, issued_at: u64, expires_at: u64) -> String {
    let keys = Keypair::from_seed(&[9; 32]);
    let record = SignedRecord::sign(
        PeerRecord {
            peer: keys.peer_id(),
            network: "p2pnet".into(),
            seq: 1,
            issued_at: now_secs(),
            expires_at: now_secs() + 3600,
            addresses: vec!["198.51.100.9:4000".parse().unwrap()],
        },
        &keys,
    )
    .unwrap();
    Snapshot::new(
        "p2pnet",
        seq,
        issued_at,
        expires_at,
        vec![SnapshotPeer {
            record: record.as_str().to_owned(),
            observed_ip: None,
        }],
    )
    .to_text()
    .unwrap()
}

fn signed(key: &AuthorityKey, seq: u64) -> PeersResponse {
    let text = snapshot_text(seq, now_secs(), now_secs() + 600);
    PeersResponse {
        mode: "authority".into(),
        signature: Some(key.sign_detached(text.as_bytes()).unwrap()),
        snapshot: text,
    }
}

fn doc(key: &AuthorityKey) -> AuthorityDoc {
    AuthorityDoc {
        fingerprint: key.fingerprint(),
        certificate: key.certificate_armored(),
        rotations: Vec::new(),
    }
}

fn check(
    policy: &BootstrapPolicy,
    state: &mut TrustState,
    response: &PeersResponse,
    authority: Option<&AuthorityDoc>,
) -> Result<Verified, VerifyError> {
    verify(
        policy,
        state,
        SERVER,
        response,
        authority,
        "p2pnet",
        SystemTime::now(),
        60,
    )
}

#[test]
fn the_first_authority_is_pinned_and_then_the_only_one() {
    let policy = BootstrapPolicy::default();
    let key = AuthorityKey::generate("a", YEAR).unwrap();
    let mut state = TrustState::default();
    assert!(matches!(
        check(&policy, &mut state, &signed(&key, 5), None),
        Err(VerifyError::NeedAuthority)
    ));
    let Verified::New(parsed) =
        check(&policy, &mut state, &signed(&key, 5), Some(&doc(&key))).unwrap()
    else {
        panic!("a first list is new");
    };
    assert_eq!(parsed.peers.len(), 1);
    assert_eq!(state.pin.as_ref().unwrap().fingerprint, key.fingerprint());
    assert_eq!(state.authority_seq, Some(5));

    // The same sequence again: nothing new. A lower one: rollback.
    assert!(matches!(
        check(&policy, &mut state, &signed(&key, 5), None),
        Ok(Verified::Unchanged)
    ));
    assert!(matches!(
        check(&policy, &mut state, &signed(&key, 4), None),
        Err(VerifyError::Snapshot(SnapshotError::Rollback {
            seq: 4,
            trusted: 5
        }))
    ));

    // A tampered list fails the signature before anything is read.
    let mut tampered = signed(&key, 6);
    let original = tampered.snapshot.clone();
    tampered.snapshot = original.replacen("\"seq\":6", "\"seq\":60", 1);
    assert_ne!(tampered.snapshot, original);
    let before = state.clone();
    assert!(matches!(
        check(&policy, &mut state, &tampered, None),
        Err(VerifyError::Authority(_))
    ));
    assert_eq!(state, before, "a refused list changes nothing");

    // Another key, even with its own certificate at hand: refused.
    let other = AuthorityKey::generate("b", YEAR).unwrap();
    assert!(matches!(
        check(&policy, &mut state, &signed(&other, 7), Some(&doc(&other))),
        Err(VerifyError::OtherAuthority { .. })
    ));
    assert!(matches!(
        check(&policy, &mut state, &signed(&other, 7), None),
        Err(VerifyError::Authority(_))
    ));

    // An expired (frozen) list, properly signed: refused.
    let old = snapshot_text(8, now_secs() - 7200, now_secs() - 3600);
    let frozen = PeersResponse {
        mode: "authority".into(),
        signature: Some(key.sign_detached(old.as_bytes()).unwrap()),
        snapshot: old,
    };
    assert!(matches!(
        check(&policy, &mut state, &frozen, None),
        Err(VerifyError::Snapshot(SnapshotError::Expired { .. }))
    ));
    assert_eq!(state, before);
}

#[test]
fn a_rotation_signed_by_the_pinned_key_is_followed() {
    let policy = BootstrapPolicy::default();
    let key = AuthorityKey::generate("a", YEAR).unwrap();
    let mut state = TrustState::default();
    check(&policy, &mut state, &signed(&key, 1), Some(&doc(&key))).unwrap();
    let (next, rotation) = key.rotate(None, "a", YEAR).unwrap();
    let mut rotated = doc(&next);
    rotated.rotations.push(rotation);
    assert!(matches!(
        check(&policy, &mut state, &signed(&next, 2), Some(&rotated)),
        Ok(Verified::New(_))
    ));
    assert_eq!(state.pin.as_ref().unwrap().fingerprint, next.fingerprint());
    // The old key is no longer trusted.
    assert!(check(&policy, &mut state, &signed(&key, 3), None).is_err());
}

#[test]
fn policy_flags_refuse_what_they_exclude() {
    let text = snapshot_text(1, now_secs(), now_secs() + 600);
    let unsigned = PeersResponse {
        mode: "trustless".into(),
        snapshot: text,
        signature: None,
    };
    let mut state = TrustState::default();
    let strict = BootstrapPolicy {
        must_be_authority: true,
        ..BootstrapPolicy::default()
    };
    assert!(matches!(
        check(&strict, &mut state, &unsigned, None),
        Err(VerifyError::Policy(_))
    ));
    let no_trustless = BootstrapPolicy {
        allow_trustless: false,
        ..BootstrapPolicy::default()
    };
    assert!(matches!(
        check(&no_trustless, &mut state, &unsigned, None),
        Err(VerifyError::Policy(_))
    ));
    assert!(matches!(
        check(&BootstrapPolicy::default(), &mut state, &unsigned, None),
        Ok(Verified::New(_))
    ));
    // An authority list without its signature is not taken as trustless.
    let key = AuthorityKey::generate("a", YEAR).unwrap();
    let mut stripped = signed(&key, 2);
    stripped.signature = None;
    assert!(matches!(
        check(
            &BootstrapPolicy::default(),
            &mut state,
            &stripped,
            Some(&doc(&key))
        ),
        Err(VerifyError::Unsigned)
    ));
    // A configured pin refuses every other key from the start.
    let pinned = BootstrapPolicy {
        pinned_fingerprint: Some("0".repeat(40)),
        ..BootstrapPolicy::default()
    };
    assert!(matches!(
        check(
            &pinned,
            &mut TrustState::default(),
            &signed(&key, 1),
            Some(&doc(&key))
        ),
        Err(VerifyError::OtherAuthority { .. })
    ));
    let no_authority = BootstrapPolicy {
        allow_authority: false,
        ..BootstrapPolicy::default()
    };
    assert!(matches!(
        check(
            &no_authority,
            &mut TrustState::default(),
            &signed(&key, 1),
            Some(&doc(&key))
        ),
        Err(VerifyError::Policy(_))
    ));
}
