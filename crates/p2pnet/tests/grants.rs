//! Scoped, time-limited grants over loopback: what a channel lets through
//! is the union of the peer's live grants; grants are listed, revoked live
//! (a transfer they covered is cancelled on both sides), expire on the
//! clock, cap file sizes, outlive reconnects, and every change is an event.

mod common;

use std::time::Duration;

use common::*;
use p2pnet::proto::ChannelState;
use p2pnet::proto::packet::{DataTransmission, Payload};
use p2pnet::{
    BASE_GRANT, Error, GrantChange, GrantRequest, IncomingPeerTrustPolicy, NetworkEvent,
    PeerNetwork, Scopes, TransferDirection,
};

fn data() -> DataTransmission {
    DataTransmission::MiscData(Payload::new(vec![1, 2, 3]))
}

fn task() -> DataTransmission {
    DataTransmission::Task(Payload::new(vec![4]))
}

fn scopes_of(network: &PeerNetwork, peer: &p2pnet::PeerId) -> Option<Scopes> {
    match network.channel(peer)?.state {
        ChannelState::Open { scopes } => Some(scopes),
        _ => None,
    }
}

/// Grants `scopes` both ways between linked `a` and `b`.
async fn grant_both(a: &PeerNetwork, b: &PeerNetwork, scopes: Scopes) {
    let (a_id, b_id) = (a.local_peer_id(), b.local_peer_id());
    a.grant(b_id, GrantRequest::new(scopes)).await.unwrap();
    b.grant(a_id, GrantRequest::new(scopes)).await.unwrap();
    eventually("granted both ways", || {
        scopes_of(a, &b_id).is_some_and(|s| s.contains(scopes))
            && scopes_of(b, &a_id).is_some_and(|s| s.contains(scopes))
    })
    .await;
}

async fn data_arrives(events: &mut p2pnet::EventStream) -> bool {
    wait_for(events, "data or its refusal", |e| match e {
        NetworkEvent::DataReceived { .. } => Some(true),
        NetworkEvent::PacketRefused { .. } => Some(false),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn a_channel_lets_through_the_union_of_live_grants_each_change_an_event() {
    let alice = start(local()).await;
    let bob = start(local()).await;
    let (alice_id, bob_id) = link(&alice, &bob).await;
    let mut bob_events = bob.subscribe();
    assert_eq!(
        scopes_of(&bob, &alice_id),
        Some(Scopes::MESSAGE),
        "the policy's default"
    );

    let granted = bob
        .grant(
            alice_id,
            GrantRequest::new(Scopes::DATA).granted_by("operator ana"),
        )
        .await
        .unwrap();
    let event = wait_for(&mut bob_events, "the grant event", |e| match e {
        NetworkEvent::GrantChanged {
            peer,
            grant,
            change,
        } if *peer == alice_id => Some((grant.clone(), *change)),
        _ => None,
    })
    .await;
    assert_eq!(event, (granted.clone(), GrantChange::Granted));
    alice
        .grant(bob_id, GrantRequest::new(Scopes::DATA))
        .await
        .unwrap();
    eventually("data flows both ways", || {
        scopes_of(&alice, &bob_id) == Some(Scopes::MESSAGE | Scopes::DATA)
            && scopes_of(&bob, &alice_id) == Some(Scopes::MESSAGE | Scopes::DATA)
    })
    .await;

    // Listed, base grant first (the approval's), with who and when.
    let listed = bob.grants(&alice_id).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        (listed[0].id, listed[0].scopes),
        (BASE_GRANT, Scopes::MESSAGE)
    );
    assert_eq!(listed[1], granted);
    assert_eq!(listed[1].granted_by, "operator ana");
    assert!(listed[1].expires_at.is_none());

    // DATA passes, TASK does not: scopes are finer than "enhanced".
    alice.send(bob_id, data()).await.unwrap();
    assert!(data_arrives(&mut bob_events).await);
    let err = alice.send(bob_id, task()).await.unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err}");

    // Revoked live: the channel narrows at once.
    assert!(bob.revoke(alice_id, granted.id).await.unwrap());
    assert!(
        !bob.revoke(alice_id, granted.id).await.unwrap(),
        "only once"
    );
    wait_for(&mut bob_events, "the revoke event", |e| match e {
        NetworkEvent::GrantChanged {
            change: GrantChange::Revoked,
            grant,
            ..
        } if grant.id == granted.id => Some(()),
        _ => None,
    })
    .await;
    eventually("narrowed", || {
        scopes_of(&bob, &alice_id) == Some(Scopes::MESSAGE)
    })
    .await;
    alice.send(bob_id, data()).await.unwrap();
    assert!(
        !data_arrives(&mut bob_events).await,
        "refused after the revoke"
    );
    assert!(
        bob.channel(&alice_id).is_some(),
        "a packet in flight of a revoked scope does not kill the channel"
    );

    // elevate = everything without expiry; demote = back to the policy.
    bob.elevate(alice_id).await.unwrap();
    eventually("elevated", || {
        scopes_of(&bob, &alice_id) == Some(Scopes::ALL)
    })
    .await;
    bob.demote(alice_id).await.unwrap();
    eventually("demoted", || {
        scopes_of(&bob, &alice_id) == Some(Scopes::MESSAGE)
    })
    .await;
    assert_eq!(
        bob.grants(&alice_id).unwrap(),
        vec![],
        "demote revokes every grant"
    );
    assert!(
        bob.known_peer(&alice_id).unwrap().approved,
        "the approval stays"
    );

    let stranger = p2pnet::Keypair::generate(&mut rand::rng()).peer_id();
    assert!(matches!(
        bob.grant(stranger, GrantRequest::new(Scopes::ALL)).await,
        Err(Error::UnknownPeer(_))
    ));
    alice.shutdown().await;
    bob.shutdown().await;
}

/// Found by the crash campaign: an administrator clicking Elevate again
/// added one identical grant per click until the per-peer cap refused the
/// next with a misleading "connection limit" message.
#[tokio::test]
async fn elevate_is_idempotent_and_the_grant_cap_names_itself() {
    let alice = start(local()).await;
    let bob = start(local()).await;
    let (alice_id, _) = link(&alice, &bob).await;
    let first = bob.elevate(alice_id).await.unwrap();
    for _ in 0..20 {
        assert_eq!(bob.elevate(alice_id).await.unwrap().id, first.id);
    }
    assert_eq!(
        bob.grants(&alice_id).unwrap().len(),
        2,
        "base + one elevation"
    );

    // A capped grant does not count as covering: elevate adds its own.
    bob.demote(alice_id).await.unwrap();
    bob.grant(alice_id, GrantRequest::new(Scopes::ALL).max_file_size(1024))
        .await
        .unwrap();
    let elevated = bob.elevate(alice_id).await.unwrap();
    assert!(elevated.max_file_size.is_none());
    assert_eq!(bob.grants(&alice_id).unwrap().len(), 2);

    // Explicit grants still stop at the cap, with a reason that says so.
    let refused = loop {
        match bob.grant(alice_id, GrantRequest::new(Scopes::DATA)).await {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert!(matches!(refused, Error::LimitReached(_)), "{refused}");
    assert!(refused.to_string().contains("grants per peer"), "{refused}");
    assert!(!refused.to_string().contains("connection"), "{refused}");
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_grant_ends_at_its_expiry_on_the_clock() {
    let alice = start(local()).await;
    let bob = start(local()).await;
    let (alice_id, bob_id) = link(&alice, &bob).await;
    alice
        .grant(bob_id, GrantRequest::new(Scopes::DATA))
        .await
        .unwrap();
    let mut bob_events = bob.subscribe();
    let granted = bob
        .grant(
            alice_id,
            GrantRequest::new(Scopes::DATA).lasting(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    assert!(granted.expires_at.is_some());
    let start = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3599)).await;
    alice.send(bob_id, data()).await.unwrap();
    assert!(
        data_arrives(&mut bob_events).await,
        "still live a second before"
    );
    let (grant, change) = wait_for(&mut bob_events, "the expiry", |e| match e {
        NetworkEvent::GrantChanged { grant, change, .. } => Some((grant.id, *change)),
        _ => None,
    })
    .await;
    assert_eq!((grant, change), (granted.id, GrantChange::Expired));
    let at = start.elapsed();
    assert!(
        (Duration::from_secs(3600)..Duration::from_millis(3_600_100)).contains(&at),
        "expired at {at:?}, not at its instant"
    );
    assert_eq!(scopes_of(&bob, &alice_id), Some(Scopes::MESSAGE));
    assert_eq!(
        bob.grants(&alice_id).unwrap().len(),
        1,
        "only the base grant is left"
    );
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_file_grant_cancels_the_transfer_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("large.bin");
    std::fs::write(&source, vec![0x5a; 64 << 20]).unwrap();
    let alice = start(local()).await;
    let bob = start(local().download_dir(dir.path().join("in"))).await;
    let (alice_id, bob_id) = link(&alice, &bob).await;
    grant_both(&alice, &bob, Scopes::FILE).await;
    let file_grant = bob.grants(&alice_id).unwrap()[1].id;
    let mut alice_events = alice.subscribe();
    let mut bob_events = bob.subscribe();
    alice.send_file(bob_id, &source).await.unwrap();
    wait_for(&mut bob_events, "the transfer under way", |e| {
        matches!(e, NetworkEvent::TransferProgress { .. }).then_some(())
    })
    .await;
    bob.revoke(alice_id, file_grant).await.unwrap();
    let failed = |direction| {
        move |e: &NetworkEvent| match e {
            NetworkEvent::TransferFailed {
                direction: d,
                reason,
                ..
            } if *d == direction => Some(reason.clone()),
            NetworkEvent::TransferCompleted { .. } => panic!("completed after the revoke"),
            _ => None,
        }
    };
    let on_bob = wait_for(
        &mut bob_events,
        "bob's side cancelled",
        failed(TransferDirection::Incoming),
    )
    .await;
    let on_alice = wait_for(
        &mut alice_events,
        "alice's side cancelled",
        failed(TransferDirection::Outgoing),
    )
    .await;
    assert!(on_bob.contains("revoked"), "{on_bob}");
    assert!(on_alice.contains("revoked"), "{on_alice}");
    // The channel itself is fine.
    let mut bob_events = bob.subscribe();
    alice.send_message(bob_id, "still friends").await.unwrap();
    assert_eq!(message(&mut bob_events).await.1, "still friends");
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test]
async fn a_file_size_cap_refuses_larger_offers() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.bin");
    let big = dir.path().join("big.bin");
    std::fs::write(&small, vec![1; 1000]).unwrap();
    std::fs::write(&big, vec![2; 5000]).unwrap();
    let alice = start(local()).await;
    let bob = start(local().download_dir(dir.path().join("in"))).await;
    let (alice_id, bob_id) = link(&alice, &bob).await;
    alice
        .grant(bob_id, GrantRequest::new(Scopes::FILE))
        .await
        .unwrap();
    bob.grant(
        alice_id,
        GrantRequest::new(Scopes::FILE).max_file_size(4096),
    )
    .await
    .unwrap();
    eventually("file granted both ways", || {
        scopes_of(&bob, &alice_id).is_some_and(|s| s.contains(Scopes::FILE))
            && scopes_of(&alice, &bob_id).is_some_and(|s| s.contains(Scopes::FILE))
    })
    .await;
    let mut alice_events = alice.subscribe();
    alice.send_file(bob_id, &big).await.unwrap();
    let reason = wait_for(&mut alice_events, "the refusal", |e| match e {
        NetworkEvent::TransferFailed { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(reason.contains("limit 4096"), "{reason}");
    alice.send_file(bob_id, &small).await.unwrap();
    wait_for(&mut alice_events, "the small file", |e| match e {
        NetworkEvent::TransferCompleted { .. } => Some(()),
        NetworkEvent::TransferFailed { reason, .. } => panic!("{reason}"),
        _ => None,
    })
    .await;
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test]
async fn grants_outlive_a_reconnect_and_concurrent_changes_land_in_order() {
    let bob = start(local()).await;
    let alice = start(local()).await;
    let (alice_id, bob_id) = link(&alice, &bob).await;
    // Twelve concurrent grant and revoke calls: the channel ends up with
    // exactly what the table holds.
    let mut calls = Vec::new();
    for n in 0..12u32 {
        let bob = bob.clone();
        calls.push(tokio::spawn(async move {
            let scopes = if n % 2 == 0 {
                Scopes::DATA
            } else {
                Scopes::TASK
            };
            let grant = bob
                .grant(alice_id, GrantRequest::new(scopes))
                .await
                .unwrap();
            if n % 3 == 0 {
                bob.revoke(alice_id, grant.id).await.unwrap();
            }
        }));
    }
    for call in calls {
        call.await.unwrap();
    }
    let expected = bob
        .grants(&alice_id)
        .unwrap()
        .iter()
        .fold(Scopes::NONE, |all, g| all | g.scopes);
    assert_eq!(expected, Scopes::MESSAGE | Scopes::DATA | Scopes::TASK);
    eventually("the channel matches the table", || {
        scopes_of(&bob, &alice_id) == Some(expected)
    })
    .await;
    // Reconnected: the approval and the grants are still there.
    alice.disconnect(bob_id).await.unwrap();
    eventually("closed", || bob.channel(&alice_id).is_none()).await;
    alice.connect(addr(&bob)).await.unwrap();
    eventually("reopened with the same grants", || {
        scopes_of(&bob, &alice_id) == Some(expected)
    })
    .await;
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test]
async fn an_auto_accepting_policy_gives_its_default_and_nothing_is_remembered() {
    let bob = start(local().trust_policy(IncomingPeerTrustPolicy {
        auto_accept: true,
        allow_enhanced_packet_exchange: true,
        ..IncomingPeerTrustPolicy::default()
    }))
    .await;
    let alice = start(local()).await;
    alice.connect(addr(&bob)).await.unwrap();
    let alice_id = alice.local_peer_id();
    eventually("open with the policy's scopes", || {
        scopes_of(&bob, &alice_id) == Some(Scopes::ALL)
    })
    .await;
    let known = bob.known_peer(&alice_id).unwrap();
    assert!(!known.approved && known.grants.is_empty());
    alice.shutdown().await;
    bob.shutdown().await;
}
