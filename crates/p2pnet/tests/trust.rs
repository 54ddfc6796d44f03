//! Approval, trust levels and access lists, across several networks on
//! loopback.

mod common;

use common::*;
use p2pnet::proto::packet::{DataTransmission, DisconnectReason, Payload};
use p2pnet::{
    CloseReason, Error, IncomingPeerTrustPolicy, NetworkEvent, PacketHandlers, Placement, Scopes,
    TrustLevel, Verdict,
};

fn closed_with(event: &NetworkEvent, code: DisconnectReason) -> bool {
    matches!(
        event,
        NetworkEvent::ChannelClosed { reason: CloseReason::Disconnect(d), .. } if d.reason == code
    )
}

#[tokio::test]
async fn approve_lets_messages_through_and_reject_disconnects() {
    let alice = start(local()).await;
    let bob = start(local()).await;
    let carol = start(local()).await;
    let mut bob_events = bob.subscribe();
    let mut carol_events = carol.subscribe();

    // Alice is approved; her message sent before approval was held, not lost.
    let bob_id = alice.connect(addr(&bob)).await.unwrap();
    alice
        .send_message(bob_id, "sent while pending")
        .await
        .unwrap();
    let alice_id = wait_for(&mut bob_events, "approval request", |e| match e {
        NetworkEvent::ApprovalRequested { peer, .. } => Some(*peer),
        _ => None,
    })
    .await;
    assert_eq!(alice_id, alice.local_peer_id());
    assert!(
        bob.pending_approvals().is_empty(),
        "placement Event does not queue"
    );
    bob.approve(alice_id, None).await.unwrap();
    assert_eq!(
        message(&mut bob_events).await,
        (alice_id, "sent while pending".into())
    );

    // Carol is rejected: told so, and nothing she sent is delivered.
    carol.connect(addr(&bob)).await.unwrap();
    let _ = carol.send_message(bob_id, "let me in").await;
    let carol_id = wait_for(&mut bob_events, "carol's request", |e| match e {
        NetworkEvent::ApprovalRequested { peer, .. } => Some(*peer),
        _ => None,
    })
    .await;
    bob.reject(carol_id).await.unwrap();
    wait_for(&mut carol_events, "rejection", |e| {
        closed_with(e, DisconnectReason::Rejected).then_some(())
    })
    .await;
    alice.send_message(bob_id, "after").await.unwrap();
    assert_eq!(message(&mut bob_events).await, (alice_id, "after".into()));
    assert!(bob.channel(&carol_id).is_none());

    for n in [alice, bob, carol] {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn queue_placement_and_the_approval_hook() {
    let policy = IncomingPeerTrustPolicy {
        placement: Placement::Queue,
        ..Default::default()
    };
    let blocked_by_hook = start(local()).await;
    let hook_victim = blocked_by_hook.local_peer_id();
    let bob = start(
        local()
            .trust_policy(policy)
            .on_approval_request(move |pending| {
                (pending.peer == hook_victim).then_some(Verdict::Reject)
            }),
    )
    .await;
    let alice = start(local()).await;
    let mut bob_events = bob.subscribe();

    let bob_id = alice.connect(addr(&bob)).await.unwrap();
    let pending = tokio::time::timeout(WAIT, bob.next_pending())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending.peer, alice.local_peer_id());
    bob.approve(pending.peer, Some(TrustLevel::DEFAULT))
        .await
        .unwrap();
    alice
        .send_message(bob_id, "queued and approved")
        .await
        .unwrap();
    assert_eq!(message(&mut bob_events).await.1, "queued and approved");

    // The hook rejects this peer at once; it never reaches the queue.
    let mut victim_events = blocked_by_hook.subscribe();
    blocked_by_hook.connect(addr(&bob)).await.unwrap();
    wait_for(&mut victim_events, "rejection by hook", |e| {
        closed_with(e, DisconnectReason::Rejected).then_some(())
    })
    .await;
    assert!(bob.pending_approvals().is_empty());

    for n in [alice, bob, blocked_by_hook] {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn approval_is_remembered_and_auto_accept_skips_it() {
    let bob = start(local()).await;
    let alice = start(local()).await;
    let (alice_id, bob_id) = link(&alice, &bob).await;
    alice.disconnect(bob_id).await.unwrap();
    eventually("the channel is gone", || bob.channel(&alice_id).is_none()).await;
    // Reconnecting needs no new approval.
    let mut bob_events = bob.subscribe();
    alice.connect(addr(&bob)).await.unwrap();
    wait_for(&mut bob_events, "reopened without approval", |e| match e {
        NetworkEvent::ChannelOpened { peer, .. } if *peer == alice_id => Some(()),
        NetworkEvent::ApprovalRequested { .. } => panic!("asked again"),
        _ => None,
    })
    .await;

    let open = start(local().trust_policy(IncomingPeerTrustPolicy {
        auto_accept: true,
        ..Default::default()
    }))
    .await;
    let mut open_events = open.subscribe();
    let open_id = alice.connect(addr(&open)).await.unwrap();
    alice
        .send_message(open_id, "no approval needed")
        .await
        .unwrap();
    assert_eq!(message(&mut open_events).await.1, "no approval needed");

    for n in [alice, bob, open] {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn blocking_a_peer_id_works_both_ways_and_closes_its_channel() {
    let bob = start(local()).await;
    let alice = start(local()).await;
    let carol = start(local()).await;
    let (alice_id, bob_id) = link(&alice, &bob).await;
    let mut alice_events = alice.subscribe();

    // Inbound: Bob blocks Alice; her open channel closes, and she cannot return.
    bob.block_peer(alice_id);
    wait_for(&mut alice_events, "blocked disconnect", |e| {
        closed_with(e, DisconnectReason::Blocked).then_some(())
    })
    .await;
    refused(&alice, addr(&bob), DisconnectReason::Blocked).await;
    assert!(bob.channel(&alice_id).is_none());

    // Outbound: Carol blocks Bob; she refuses before dialing when she knows
    // the id, and after the handshake proves it otherwise.
    carol.block_peer(bob_id);
    assert!(matches!(
        carol.connect_to(bob_id, addr(&bob)).await,
        Err(Error::Denied(_))
    ));
    let err = carol.connect(addr(&bob)).await.unwrap_err();
    assert!(err.to_string().contains("Blocked"), "{err}");
    assert!(carol.channels().is_empty());

    // Unblocking restores access.
    assert!(bob.unblock_peer(alice_id));
    alice.connect(addr(&bob)).await.unwrap();

    for n in [alice, bob, carol] {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn blocking_a_network_works_both_ways() {
    let bob = start(local()).await;
    let alice = start(local()).await;
    let (_alice_id, bob_id) = link(&alice, &bob).await;
    let mut alice_events = alice.subscribe();

    // Inbound by CIDR: the open channel closes; new connections are dropped
    // before any handshake.
    let mut bob_events = bob.subscribe();
    bob.block_network("127.0.0.0/8".parse().unwrap());
    wait_for(&mut alice_events, "blocked", |e| {
        closed_with(e, DisconnectReason::Blocked).then_some(())
    })
    .await;
    assert!(alice.connect(addr(&bob)).await.is_err());
    wait_for(&mut bob_events, "refusal", |e| match e {
        NetworkEvent::ConnectionRefused {
            peer: None, reason, ..
        } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(bob.unblock_network("127.0.0.0/8".parse().unwrap()));

    // Outbound by single address.
    alice.block_network("127.0.0.1/32".parse().unwrap());
    assert!(matches!(
        alice.connect(addr(&bob)).await,
        Err(Error::Denied(_))
    ));
    assert!(matches!(
        alice.connect_to(bob_id, addr(&bob)).await,
        Err(Error::Denied(_))
    ));
    alice.unblock_network("127.0.0.1/32".parse().unwrap());
    alice.connect(addr(&bob)).await.unwrap();

    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test]
async fn an_allow_list_denies_everyone_else() {
    let alice = start(local()).await;
    let carol = start(local()).await;
    let bob = start(local().trust_policy(IncomingPeerTrustPolicy {
        auto_accept: true,
        ..Default::default()
    }))
    .await;
    bob.allow_peer(alice.local_peer_id());
    alice.connect(addr(&bob)).await.unwrap();
    refused(&carol, addr(&bob), DisconnectReason::Blocked).await;
    eventually("only alice is connected", || {
        bob.channels()
            .iter()
            .filter_map(|c| c.peer)
            .collect::<Vec<_>>()
            == vec![alice.local_peer_id()]
    })
    .await;
    for n in [alice, bob, carol] {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn elevation_unlocks_data_transmission_on_each_side() {
    let bob = start(local()).await;
    let alice = start(local()).await;
    let (alice_id, bob_id) = link(&alice, &bob).await;
    let mut bob_events = bob.subscribe();
    let data = || DataTransmission::MiscData(Payload::labelled("blob", vec![7u8; 1000]));

    // Default trust: Alice's own gate refuses to send.
    let err = alice.send(bob_id, data()).await.unwrap_err();
    assert!(
        matches!(err, Error::Protocol(p2pnet::proto::Error::NotPermitted(_))),
        "{err}"
    );

    // Alice elevates Bob, Bob has not elevated Alice: Bob's gate drops it.
    alice.elevate(bob_id).await.unwrap();
    eventually("alice's side is elevated", || is_elevated(&alice, &bob_id)).await;
    alice.send(bob_id, data()).await.unwrap();
    wait_for(&mut bob_events, "refusal", |e| match e {
        NetworkEvent::PacketRefused { peer, .. } if *peer == alice_id => Some(()),
        NetworkEvent::DataReceived { .. } => panic!("delivered without elevation"),
        _ => None,
    })
    .await;

    // Both elevated: it arrives.
    bob.elevate(alice_id).await.unwrap();
    wait_for(&mut bob_events, "trust change", |e| match e {
        NetworkEvent::ScopesChanged { scopes, .. } => scopes.contains(Scopes::DATA).then_some(()),
        _ => None,
    })
    .await;
    alice.send(bob_id, data()).await.unwrap();
    let (label, len) = wait_for(&mut bob_events, "data", |e| match e {
        NetworkEvent::DataReceived { label, data, .. } => Some((label.clone(), data.len())),
        _ => None,
    })
    .await;
    assert_eq!((label.as_deref(), len), (Some("blob"), 1000));

    // Demotion withdraws it again.
    bob.demote(alice_id).await.unwrap();
    alice.send(bob_id, data()).await.unwrap();
    wait_for(&mut bob_events, "refusal after demotion", |e| match e {
        NetworkEvent::PacketRefused { .. } => Some(()),
        NetworkEvent::DataReceived { .. } => panic!("delivered after demotion"),
        _ => None,
    })
    .await;

    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test]
async fn a_failing_or_panicking_handler_is_reported_and_the_channel_lives_on() {
    let handlers = PacketHandlers::default().on_pure_message(
        |ctx: &p2pnet::PacketContext<'_>, m: p2pnet::proto::packet::PureMessage| match m
            .text
            .as_str()
        {
            "panic" => panic!("handler exploded"),
            "fail" => Err("refusing this one".into()),
            _ => p2pnet::handler::defaults::pure_message(ctx, m),
        },
    );
    let bob = start(local().handlers(handlers)).await;
    let alice = start(local()).await;
    let (_, bob_id) = link(&alice, &bob).await;
    let mut bob_events = bob.subscribe();
    for text in ["panic", "fail", "still here"] {
        alice.send_message(bob_id, text).await.unwrap();
    }
    let mut failures = Vec::new();
    let text = wait_for(&mut bob_events, "the last message", |e| match e {
        NetworkEvent::HandlerFailed { error, .. } => {
            failures.push(error.clone());
            None
        }
        NetworkEvent::MessageReceived { text, .. } => Some(text.clone()),
        _ => None,
    })
    .await;
    assert_eq!(text, "still here");
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures[0].contains("handler exploded"));
    assert!(failures[1].contains("refusing this one"));
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test]
async fn a_scanned_address_is_dialled_as_discovery_and_known_as_widescan() {
    // A scan gives an address only: the handshake names the peer, and the
    // channel is gated as discovery's (the default policy defers it).
    let scanner = start(local()).await;
    let found = start(local()).await;
    let mut events = scanner.subscribe();
    let found_id = scanner.dial_scanned(addr(&found)).await.unwrap();
    assert_eq!(found_id, found.local_peer_id());
    let peer = wait_for(&mut events, "approval request", |e| match e {
        NetworkEvent::ApprovalRequested { peer, .. } => Some(*peer),
        _ => None,
    })
    .await;
    assert_eq!(peer, found_id, "the scanner's own policy gates the channel");
    let known = scanner.known_peer(&found_id).expect("known");
    assert_eq!(known.source, p2pnet::PeerSource::Widescan);
    assert!(known.addresses.contains(&addr(&found)));
    assert_eq!(
        scanner.channel(&found_id).map(|c| c.state),
        Some(p2pnet::proto::ChannelState::PendingApproval),
        "not open before approval"
    );

    // A blocked network is never dialled.
    scanner.block_network("127.0.0.0/8".parse().unwrap());
    let other = start(local()).await;
    assert!(matches!(
        scanner.dial_scanned(addr(&other)).await,
        Err(Error::Denied(_))
    ));
    for n in [scanner, found, other] {
        n.shutdown().await;
    }
}
