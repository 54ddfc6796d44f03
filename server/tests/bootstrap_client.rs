//! Two p2pnet nodes that find each other only through the server (LAN
//! discovery off: nothing else could introduce them), with the library's
//! bootstrap client, in trustless and in authority mode. The peer a list
//! names is gated like any discovered peer: it waits for approval.

mod common;

use std::time::Duration;

use common::server::{Running, config};
use p2pnet::{IncomingPeerTrustPolicy, PeerNetwork, PeerSource, Placement};
use p2pnet_bootstrap::{
    client::{BootstrapClient, BootstrapClientConfig},
    verify::BootstrapPolicy,
};

const WAIT: Duration = Duration::from_secs(30);

async fn node(auto_accept: bool) -> PeerNetwork {
    PeerNetwork::builder()
        .listen_ip("127.0.0.1".parse().unwrap())
        .trust_policy(IncomingPeerTrustPolicy {
            auto_accept,
            placement: Placement::QueueAndEvent,
            ..IncomingPeerTrustPolicy::default()
        })
        .start()
        .await
        .expect("node")
}

fn client(
    network: &PeerNetwork,
    s: &Running,
    policy: BootstrapPolicy,
    state: &std::path::Path,
) -> BootstrapClient {
    BootstrapClient::start(
        network.clone(),
        BootstrapClientConfig {
            servers: vec![s.url("")],
            policy,
            state_file: Some(state.to_path_buf()),
            fetch_interval: Duration::from_secs(1),
            ..BootstrapClientConfig::default()
        },
    )
    .expect("client")
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Alice auto-accepts; Bob approves by hand. Each learns the other from
/// the server's list and dials it; Bob's side waits for his approval.
async fn find_each_other(s: &Running, policy: BootstrapPolicy) -> Vec<BootstrapClient> {
    let dir = tempfile::tempdir().expect("tempdir");
    let alice = node(true).await;
    let bob = node(false).await;
    let clients = vec![
        client(&alice, s, policy.clone(), &dir.path().join("alice.json")),
        client(&bob, s, policy, &dir.path().join("bob.json")),
    ];
    let (a, b) = (alice.local_peer_id(), bob.local_peer_id());
    // Whoever reads the list first dials the other, who then knows the
    // dialler as inbound: at least one side learned from the list.
    let listed = |n: &PeerNetwork, p: &p2pnet::PeerId| {
        n.known_peer(p)
            .is_some_and(|k| k.source == PeerSource::Bootstrap)
    };
    eventually("they learn each other, one of them from the list", || {
        alice.known_peer(&b).is_some()
            && bob.known_peer(&a).is_some()
            && (listed(&alice, &b) || listed(&bob, &a))
    })
    .await;
    eventually("bob is asked to approve alice", || {
        bob.pending_approvals().iter().any(|p| p.peer == a)
    })
    .await;
    assert!(
        bob.channel(&a)
            .is_none_or(|c| !matches!(c.state, p2pnet::proto::ChannelState::Open { .. })),
        "not open before approval"
    );
    bob.approve(a, None).await.expect("approve");
    eventually("a channel both ways", || {
        alice
            .channel(&b)
            .is_some_and(|c| matches!(c.state, p2pnet::proto::ChannelState::Open { .. }))
            && bob
                .channel(&a)
                .is_some_and(|c| matches!(c.state, p2pnet::proto::ChannelState::Open { .. }))
    })
    .await;
    bob.send_message(a, "found you through the server")
        .await
        .expect("message");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("alice.json")).unwrap())
            .unwrap();
    assert!(state["record_seq"].as_u64().unwrap() > 0, "{state}");
    alice.shutdown().await;
    bob.shutdown().await;
    clients
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_meet_through_a_trustless_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |_| {})).await;
    let clients = find_each_other(&s, BootstrapPolicy::default()).await;
    for c in clients {
        let status = c.status();
        assert!(status.pinned.is_none(), "no authority to pin");
        assert!(status.errors.is_empty(), "{status:?}");
        c.stop().await;
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_meet_through_an_authority_they_pin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |raw| {
        raw.bootstrap.mode = "authority".into();
        raw.bootstrap.passphrase = "client test passphrase".into();
    }))
    .await;
    let fingerprint = s
        .bootstrap()
        .authority()
        .expect("authority mode")
        .key
        .fingerprint();
    let policy = BootstrapPolicy {
        must_be_authority: true,
        ..BootstrapPolicy::default()
    };
    let clients = find_each_other(&s, policy).await;
    for c in clients {
        assert_eq!(c.status().pinned.as_deref(), Some(fingerprint.as_str()));
        c.stop().await;
    }
    s.shutdown().await;

    // A client that insists on an authority refuses a trustless server.
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |_| {})).await;
    let carol = node(true).await;
    let c = client(
        &carol,
        &s,
        BootstrapPolicy {
            must_be_authority: true,
            ..BootstrapPolicy::default()
        },
        &dir.path().join("carol.json"),
    );
    let mut status = c.watch();
    let refused = tokio::time::timeout(WAIT, status.wait_for(|s| !s.errors.is_empty()))
        .await
        .expect("a round")
        .expect("status")
        .clone();
    assert!(
        refused.errors[0].1.contains("only an authority"),
        "{refused:?}"
    );
    c.stop().await;
    carol.shutdown().await;
    s.shutdown().await;
}
