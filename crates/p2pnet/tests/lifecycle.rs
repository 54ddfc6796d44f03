//! Peer management, routines and shutdown, with several networks in one
//! process.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::*;
use p2pnet::proto::packet::{CollectionShare, Identifier, PeerRecord};
use p2pnet::routines::DISCERN_PEER_CHANNELS;
use p2pnet::{IncomingPeerTrustPolicy, NetworkEvent, PeerSource, Scopes};

fn auto_accept() -> IncomingPeerTrustPolicy {
    IncomingPeerTrustPolicy {
        auto_accept: true,
        allow_enhanced_packet_exchange: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_channel_and_ends_every_task() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let nodes = [
        start(local().trust_policy(auto_accept())).await,
        start(local().trust_policy(auto_accept())).await,
        start(local().trust_policy(auto_accept())).await,
    ];
    for (i, a) in nodes.iter().enumerate() {
        for b in &nodes[i + 1..] {
            a.add_peer(addr(b)).await.unwrap();
        }
    }
    eventually("a full mesh", || {
        nodes.iter().all(|n| n.channels().len() == 2)
    })
    .await;
    assert!(metrics.num_alive_tasks() > baseline);
    let mut survivor_events = nodes[2].subscribe();
    nodes[0].shutdown().await;
    // Its peers hear a Disconnect(Shutdown), not a dropped connection.
    let reason = wait_for(&mut survivor_events, "shutdown notice", |e| match e {
        NetworkEvent::ChannelClosed {
            reason,
            by_remote: true,
            ..
        } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(
        matches!(reason, p2pnet::CloseReason::Disconnect(d) if d.reason == p2pnet::proto::packet::DisconnectReason::Shutdown)
    );
    assert!(nodes[0].channels().is_empty());
    assert!(nodes[0].connect(addr(&nodes[1])).await.is_err());
    nodes[1].shutdown().await;
    nodes[2].shutdown().await;
    eventually("no task left behind", || {
        metrics.num_alive_tasks() == baseline
    })
    .await;
}

#[tokio::test]
async fn dropping_every_handle_shuts_the_network_down() {
    let bob = start(local().trust_policy(auto_accept())).await;
    let mut bob_events = bob.subscribe();
    {
        let alice = start(local()).await;
        alice.connect(addr(&bob)).await.unwrap();
        wait_for(&mut bob_events, "open", |e| {
            matches!(e, NetworkEvent::ChannelOpened { .. }).then_some(())
        })
        .await;
    }
    wait_for(
        &mut bob_events,
        "closed by the dropped network",
        |e| match e {
            NetworkEvent::ChannelClosed {
                by_remote: true, ..
            } => Some(()),
            _ => None,
        },
    )
    .await;
    bob.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_persistent_peer_is_reconnected_until_removed_and_may_return() {
    let bob = start(local().trust_policy(auto_accept())).await;
    let alice =
        start(local().reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200)))
            .await;
    let bob_id = alice.add_peer(addr(&bob)).await.unwrap();
    let alice_id = alice.local_peer_id();
    assert!(alice.known_peer(&bob_id).unwrap().persistent);

    // Bob drops the channel; Alice comes back by herself.
    let mut bob_events = bob.subscribe();
    eventually("bob sees alice", || bob.channel(&alice_id).is_some()).await;
    bob.disconnect(alice_id).await.unwrap();
    wait_for(&mut bob_events, "closed", |e| {
        matches!(e, NetworkEvent::ChannelClosed { .. }).then_some(())
    })
    .await;
    wait_for(&mut bob_events, "reconnected", |e| match e {
        NetworkEvent::ChannelOpened { peer, .. } if *peer == alice_id => Some(()),
        _ => None,
    })
    .await;

    // Removed: no reconnect, forgotten.
    assert!(alice.remove_peer(bob_id).await);
    assert!(alice.known_peer(&bob_id).is_none());
    eventually("the channel is gone", || bob.channel(&alice_id).is_none()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        bob.channel(&alice_id).is_none(),
        "a removed peer is not redialed"
    );

    // Removal is not a block: Bob may connect to Alice again.
    let alice_open = bob.connect(addr(&alice)).await.unwrap();
    assert_eq!(alice_open, alice_id);
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test]
async fn identifiers_and_shared_peer_lists_fill_known_peers() {
    let alice = start(local().trust_policy(auto_accept())).await;
    let bob = start(local().trust_policy(auto_accept())).await;
    let carol = start(local()).await;
    let mut alice_events = alice.subscribe();
    let alice_id = bob.connect(addr(&alice)).await.unwrap();
    bob.elevate(alice_id).await.unwrap();
    wait_for(&mut alice_events, "open", |e| {
        matches!(e, NetworkEvent::ChannelOpened { .. }).then_some(())
    })
    .await;
    eventually("bob elevated alice", || {
        bob.channel(&alice_id).is_some_and(|c| {
            c.state
                == p2pnet::proto::ChannelState::Open {
                    scopes: Scopes::ALL,
                }
        })
    })
    .await;

    let bob_listen = addr(&bob);
    bob.send(
        alice_id,
        Identifier {
            peer_id: bob.local_peer_id(),
            listening_port: bob_listen.port(),
            addresses: vec!["127.0.0.1".parse().unwrap()],
        },
    )
    .await
    .unwrap();
    bob.send(
        alice_id,
        CollectionShare {
            peers: vec![
                PeerRecord {
                    peer_id: carol.local_peer_id(),
                    addresses: vec![addr(&carol)],
                },
                PeerRecord {
                    peer_id: alice_id,
                    addresses: vec![],
                },
            ],
        },
    )
    .await
    .unwrap();
    let (learned, source) = wait_for(&mut alice_events, "carol learned", |e| match e {
        NetworkEvent::PeerAdded { peer, source } if *peer == carol.local_peer_id() => {
            Some((*peer, *source))
        }
        _ => None,
    })
    .await;
    assert_eq!(
        source,
        PeerSource::Shared {
            by: bob.local_peer_id()
        }
    );
    assert_eq!(
        alice.known_peer(&learned).unwrap().addresses,
        vec![addr(&carol)]
    );
    assert!(alice.known_peer(&alice_id).is_none(), "never learns itself");
    assert!(
        alice
            .known_peer(&bob.local_peer_id())
            .unwrap()
            .addresses
            .contains(&bob_listen)
    );
    assert!(
        alice.channel(&learned).is_none(),
        "learning connects to no one"
    );

    // An identifier claiming someone else is refused by the channel.
    bob.send(
        alice_id,
        Identifier {
            peer_id: carol.local_peer_id(),
            listening_port: 1,
            addresses: vec![],
        },
    )
    .await
    .unwrap_err();
    for n in [alice, bob, carol] {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn broadcast_reaches_every_open_channel_its_trust_permits() {
    let hub = start(local().trust_policy(auto_accept())).await;
    let mut spokes = Vec::new();
    for _ in 0..3 {
        let spoke = start(local().trust_policy(auto_accept())).await;
        spoke.connect(addr(&hub)).await.unwrap();
        spokes.push(spoke);
    }
    eventually("three channels", || {
        hub.channels()
            .iter()
            .filter(|c| matches!(c.state, p2pnet::proto::ChannelState::Open { .. }))
            .count()
            == 3
    })
    .await;
    let mut inboxes: Vec<_> = spokes.iter().map(|s| s.subscribe()).collect();
    assert_eq!(
        hub.broadcast(p2pnet::proto::packet::PureMessage::new("to all"))
            .await,
        3
    );
    for inbox in &mut inboxes {
        assert_eq!(message(inbox).await.1, "to all");
    }
    hub.shutdown().await;
    for s in spokes {
        s.shutdown().await;
    }
}

#[tokio::test(start_paused = true)]
async fn routines_can_be_added_started_retimed_listed_and_stopped() {
    let network = start(local()).await;
    let routines = network.routines();
    let defaults = routines.list();
    assert_eq!(defaults.len(), 1);
    assert_eq!(defaults[0].name, DISCERN_PEER_CHANNELS);
    assert!(defaults[0].running);

    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    routines
        .add("count", Duration::from_millis(20), move |_network| {
            let counter = counter.clone();
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) == 1 {
                    return Err("second run fails".into());
                }
                Ok(())
            }
        })
        .unwrap();
    assert!(
        routines
            .add("count", Duration::from_secs(1), |_n| async { Ok(()) })
            .is_err()
    );
    assert!(!routines.get("count").unwrap().running);
    routines.start("count").unwrap();
    eventually("several runs", || runs.load(Ordering::SeqCst) >= 4).await;
    let info = routines.get("count").unwrap();
    assert!(info.running && info.runs >= 3 && info.last_run.is_some());

    routines.stop("count").unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let stopped_at = runs.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        stopped_at,
        "a stopped routine does not run"
    );
    assert!(!routines.get("count").unwrap().running);

    routines
        .set_interval("count", Duration::from_secs(3600))
        .unwrap();
    routines.start("count").unwrap();
    eventually("one run at start", || {
        runs.load(Ordering::SeqCst) == stopped_at + 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        stopped_at + 1,
        "the new interval holds"
    );
    assert_eq!(
        routines.get("count").unwrap().interval,
        Duration::from_secs(3600)
    );

    // A panicking routine is recorded and keeps its schedule.
    let mut events = network.subscribe();
    routines
        .add("boom", Duration::from_millis(20), |_n| async {
            panic!("routine exploded")
        })
        .unwrap();
    routines.start("boom").unwrap();
    let error = wait_for(&mut events, "routine failure", |e| match e {
        NetworkEvent::RoutineFailed { name, error } if name == "boom" => Some(error.clone()),
        _ => None,
    })
    .await;
    assert!(error.contains("routine exploded"));
    eventually("it keeps running", || {
        routines.get("boom").unwrap().runs >= 2
    })
    .await;
    assert!(routines.remove("boom").is_ok());
    assert!(routines.start("boom").is_err());
    network.shutdown().await;
}

#[tokio::test]
async fn many_networks_run_side_by_side_in_one_process() {
    let mut nodes = Vec::new();
    for _ in 0..6 {
        nodes.push(start(local().trust_policy(auto_accept())).await);
    }
    for pair in nodes.windows(2) {
        pair[0].connect(addr(&pair[1])).await.unwrap();
    }
    let mut last = nodes[5].subscribe();
    let ids: Vec<_> = nodes.iter().map(|n| n.local_peer_id()).collect();
    nodes[4]
        .send_message(ids[5], "down the line")
        .await
        .unwrap();
    assert_eq!(message(&mut last).await, (ids[4], "down the line".into()));
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 6);
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn a_peer_list_cannot_push_out_a_persistent_peers_addresses() {
    let alice = start(local().trust_policy(auto_accept())).await;
    let bob = start(local()).await;
    let carol = start(local()).await;
    let carol_addr = addr(&carol);
    let carol_id = alice.add_peer(carol_addr).await.unwrap();
    // Bob may send peer lists to Alice (her policy grants enhanced
    // exchange); Alice must let him send them (both sides gate).
    let alice_id = bob.connect(addr(&alice)).await.unwrap();
    bob.elevate(alice_id).await.unwrap();
    eventually("bob may send lists", || is_elevated(&bob, &alice_id)).await;
    let mut alice_events = alice.subscribe();
    let stranger = p2pnet::Keypair::generate(&mut rand::rng()).peer_id();
    bob.send(
        alice_id,
        CollectionShare {
            peers: vec![
                // Sixteen claimed addresses for Carol, twice what a peer keeps.
                PeerRecord {
                    peer_id: carol_id,
                    addresses: (1000..1016)
                        .map(|port| std::net::SocketAddr::from(([127, 0, 0, 1], port)))
                        .collect(),
                },
                // Addresses no peer can have.
                PeerRecord {
                    peer_id: stranger,
                    addresses: vec![
                        "0.0.0.0:4000".parse().unwrap(),
                        "224.0.0.1:4000".parse().unwrap(),
                        "[ff02::1]:4000".parse().unwrap(),
                        "127.0.0.1:0".parse().unwrap(),
                        "255.255.255.255:4000".parse().unwrap(),
                    ],
                },
            ],
        },
    )
    .await
    .unwrap();
    wait_for(&mut alice_events, "the stranger learned", |e| match e {
        NetworkEvent::PeerAdded { peer, .. } if *peer == stranger => Some(()),
        _ => None,
    })
    .await;
    let carol_known = alice.known_peer(&carol_id).unwrap();
    assert!(
        carol_known.addresses.contains(&carol_addr),
        "Carol's own address was pushed out: {:?}",
        carol_known.addresses
    );
    assert!(carol_known.persistent);
    assert_eq!(
        alice.known_peer(&stranger).unwrap().addresses,
        Vec::<std::net::SocketAddr>::new(),
        "implausible addresses are not recorded"
    );
    for n in [alice, bob, carol] {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn a_restored_peer_keeps_its_approval_grants_and_addresses() {
    let bob = start(local()).await;
    let alice_key = p2pnet::Keypair::generate(&mut rand::rng());
    let alice = start(local().keypair(alice_key.clone())).await;
    let (alice_id, _) = link(&alice, &bob).await;
    let granted = bob
        .grant(
            alice_id,
            p2pnet::GrantRequest::new(Scopes::DATA)
                .lasting(Duration::from_secs(3600))
                .granted_by("ops"),
        )
        .await
        .unwrap();
    let stored = bob.known_peer(&alice_id).unwrap();
    bob.shutdown().await;

    // A new run of Bob, restored from what the first one knew.
    let bob = start(local()).await;
    bob.restore_peer(stored.clone()).unwrap();
    let restored = bob.known_peer(&alice_id).unwrap();
    assert!(restored.approved);
    assert_eq!(restored.addresses, stored.addresses);
    assert_eq!(restored.proven_addresses, stored.proven_addresses);
    assert_eq!(restored.grants, stored.grants);
    assert!(restored.grants.iter().any(|g| g.id == granted.id));
    // Its approval holds: Alice's next channel opens without asking, with
    // the restored grants.
    let mut bob_events = bob.subscribe();
    alice.connect(addr(&bob)).await.unwrap();
    wait_for(&mut bob_events, "opened without asking", |e| match e {
        NetworkEvent::ChannelOpened { peer, scopes, .. } if *peer == alice_id => Some(*scopes),
        NetworkEvent::ApprovalRequested { .. } => panic!("a restored approval was asked again"),
        _ => None,
    })
    .await;
    // New grants never reuse a restored id.
    let next = bob
        .grant(alice_id, p2pnet::GrantRequest::new(Scopes::TASK))
        .await
        .unwrap();
    assert!(next.id > granted.id);
    alice.shutdown().await;
    bob.shutdown().await;
}
