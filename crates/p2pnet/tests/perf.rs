//! Speed tests between two networks on loopback: both directions, the
//! grant that gates them, the answerer's cap, and two tests at once.

mod common;

use common::{addr, eventually, local, start};
use p2pnet::proto::ChannelState;
use p2pnet::proto::perf::{PerfFailure, PerfRefusal};
use p2pnet::{Error, IncomingPeerTrustPolicy, Limits, PeerId, PeerNetwork, PerfRequest, Scopes};

fn open_policy() -> IncomingPeerTrustPolicy {
    IncomingPeerTrustPolicy {
        auto_accept: true,
        allow_enhanced_packet_exchange: true,
        ..IncomingPeerTrustPolicy::default()
    }
}

/// Alice dials Bob; both grant each other everything (perf included).
async fn elevated_pair(bob_limits: Limits) -> (PeerNetwork, PeerNetwork, PeerId, PeerId) {
    let alice = start(local().trust_policy(open_policy())).await;
    let bob = start(local().trust_policy(open_policy()).limits(bob_limits)).await;
    let bob_id = alice.connect(addr(&bob)).await.unwrap();
    let alice_id = alice.local_peer_id();
    alice.elevate(bob_id).await.unwrap();
    eventually("bob sees the channel", || bob.channel(&alice_id).is_some()).await;
    bob.elevate(alice_id).await.unwrap();
    for (network, peer) in [(&alice, bob_id), (&bob, alice_id)] {
        eventually("perf granted", || {
            network.channel(&peer).is_some_and(|c| {
                matches!(c.state, ChannelState::Open { scopes } if scopes.contains(Scopes::PERF))
            })
        })
        .await;
    }
    (alice, bob, alice_id, bob_id)
}

#[tokio::test]
async fn a_test_moves_the_bytes_asked_and_times_each_direction() {
    let (alice, bob, _, bob_id) = elevated_pair(Limits::default()).await;
    let report = alice
        .perf(bob_id, PerfRequest::new(3 << 20, 5 << 20))
        .await
        .unwrap();
    assert_eq!(report.peer, bob_id);
    assert_eq!(report.outcome.upload_bytes, 3 << 20);
    assert_eq!(report.outcome.download_bytes, 5 << 20);
    assert!(report.outcome.upload_rate() > 0.0);
    assert!(report.outcome.download_rate() > 0.0);
    assert!(!report.outcome.round_trip.is_zero());
    assert!(report.connect_time.is_some_and(|t| !t.is_zero()));
    // The bytes really crossed the channel, each way.
    eventually("traffic published", || {
        alice
            .channel(&bob_id)
            .is_some_and(|c| c.bytes_sent >= 3 << 20 && c.bytes_received >= 5 << 20)
    })
    .await;
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test]
async fn both_sides_can_test_each_other_at_once() {
    let (alice, bob, alice_id, bob_id) = elevated_pair(Limits::default()).await;
    let (ab, ba) = tokio::join!(
        alice.perf(bob_id, PerfRequest::new(1 << 20, 2 << 20)),
        bob.perf(alice_id, PerfRequest::new(2 << 20, 1 << 20)),
    );
    let (ab, ba) = (ab.unwrap(), ba.unwrap());
    assert_eq!(
        (ab.outcome.upload_bytes, ab.outcome.download_bytes),
        (1 << 20, 2 << 20)
    );
    assert_eq!(
        (ba.outcome.upload_bytes, ba.outcome.download_bytes),
        (2 << 20, 1 << 20)
    );
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test]
async fn the_answerer_refuses_a_test_over_its_cap_and_serves_the_next() {
    let limits = Limits {
        max_perf_bytes: 1 << 20,
        ..Limits::default()
    };
    let (alice, bob, _, bob_id) = elevated_pair(limits).await;
    let err = alice
        .perf(bob_id, PerfRequest::new(0, (1 << 20) + 1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Perf(PerfFailure::Refused(PerfRefusal::TooLarge { cap })) if cap == 1 << 20
        ),
        "{err}"
    );
    let report = alice
        .perf(bob_id, PerfRequest::new(1 << 20, 1 << 20))
        .await
        .unwrap();
    assert_eq!(report.outcome.download_bytes, 1 << 20);
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test]
async fn without_the_perf_scope_no_test_is_asked() {
    // Default trust: messages only.
    let alice = start(local()).await;
    let bob = start(local().trust_policy(IncomingPeerTrustPolicy {
        auto_accept: true,
        ..IncomingPeerTrustPolicy::default()
    }))
    .await;
    let bob_id = alice.connect(addr(&bob)).await.unwrap();
    let err = alice
        .perf(bob_id, PerfRequest::new(1024, 1024))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Protocol(p2pnet::proto::Error::NotPermitted(_))),
        "{err}"
    );
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test]
async fn a_peer_that_does_not_grant_perf_refuses_at_once() {
    // Alice grants Bob everything; Bob's grants for Alice hold messages
    // only (his policy's default), so her request is answered NotGranted.
    let alice = start(local().trust_policy(open_policy())).await;
    let bob = start(local().trust_policy(IncomingPeerTrustPolicy {
        auto_accept: true,
        ..IncomingPeerTrustPolicy::default()
    }))
    .await;
    let bob_id = alice.connect(addr(&bob)).await.unwrap();
    alice.elevate(bob_id).await.unwrap();
    eventually("perf granted on Alice's side", || {
        alice.channel(&bob_id).is_some_and(
            |c| matches!(c.state, ChannelState::Open { scopes } if scopes.contains(Scopes::PERF)),
        )
    })
    .await;
    let mut request = PerfRequest::new(1 << 20, 1 << 20);
    request.timeout = std::time::Duration::from_secs(10);
    let started = std::time::Instant::now();
    let err = alice.perf(bob_id, request).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Perf(PerfFailure::Refused(PerfRefusal::NotGranted))
        ),
        "{err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "not a timeout"
    );
    alice.shutdown().await;
    bob.shutdown().await;
}
