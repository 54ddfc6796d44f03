//! Discovery over loopback, without namespaces: unicast announces to static
//! hosts on designated ports (the WAN mechanism), bad datagrams, the access
//! list, auto-connect off, and the control calls. The LAN mechanisms
//! (broadcast, multicast) need links and are tested across namespaces in
//! `discovery_netns.rs`.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::discovery::{fast, free_udp_port, unicast};
use common::{eventually, start, wait_for};
use p2pnet::discovery::DiscoveryParams;
use p2pnet::{
    DiscoveryConfig, DiscoveryVia, IncomingPeerTrustPolicy, Keypair, NetworkEvent, PeerNetwork,
    PeerSource,
};

fn open() -> IncomingPeerTrustPolicy {
    IncomingPeerTrustPolicy {
        auto_accept: true,
        ..IncomingPeerTrustPolicy::default()
    }
}

async fn node(config: DiscoveryConfig) -> PeerNetwork {
    start(
        PeerNetwork::builder()
            .listen_ip("127.0.0.1".parse().unwrap())
            .trust_policy(open())
            .discovery(config),
    )
    .await
}

fn connected(a: &PeerNetwork, b: &PeerNetwork) -> bool {
    a.channel(&b.local_peer_id())
        .is_some_and(|c| matches!(c.state, p2pnet::proto::ChannelState::Open { .. }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_hosts_find_each_other_by_unicast_and_connect() {
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let a = node(unicast(pa, &[pb])).await;
    let b = node(unicast(pb, &[pa])).await;
    eventually("a and b connected", || {
        connected(&a, &b) && connected(&b, &a)
    })
    .await;
    let known = a.known_peer(&b.local_peer_id()).expect("b is known");
    assert_eq!(
        known.source,
        PeerSource::Discovery {
            via: DiscoveryVia::Unicast
        }
    );
    assert!(known.addresses.contains(&b.local_addr().unwrap()));
    let status = a.discovery_status().expect("discovery on");
    assert_eq!(status.designated_ports, vec![pa]);
    assert!(
        status
            .listening
            .contains(&SocketAddr::from(([0, 0, 0, 0], pa)))
    );
    assert!(status.heard.contains(&b.local_peer_id()));
    assert!(status.stats.accepted > 0 && status.datagrams_sent > 0);
    // One channel between them, whoever dialed.
    assert_eq!(a.channels().len(), 1);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_way_static_host_is_answered_and_both_learn() {
    // Only a lists b; b learns a from a's announce and answers it.
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let params = DiscoveryParams {
        quiet_interval: Duration::from_millis(300),
        settled_interval: Duration::from_millis(300),
        peer_ttl: Duration::from_millis(1200),
        reply_interval: Duration::from_millis(100),
        ..fast()
    };
    let a = node(unicast(pa, &[pb]).params(params.clone())).await;
    let b = node(unicast(pb, &[]).params(params)).await;
    eventually("connected", || connected(&a, &b)).await;
    assert!(b.known_peer(&a.local_peer_id()).is_some());
    assert!(a.known_peer(&b.local_peer_id()).is_some());
    // Past the TTL, a still hears b: its announces to a static host ask
    // for an answer every time.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = a.discovery_status().unwrap();
    assert!(status.heard.contains(&b.local_peer_id()), "{status:?}");
    assert_eq!(status.stats.expired, 0);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_host_given_by_name_is_resolved() {
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let a = node(
        unicast(pa, &[])
            .static_hosts([format!("localhost:{pb}")])
            .unwrap(),
    )
    .await;
    let b = node(unicast(pb, &[])).await;
    eventually("connected through the name", || connected(&a, &b)).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_are_counted_and_discovery_goes_on() {
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let a = node(unicast(pa, &[])).await;
    let flood = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = SocketAddr::from(([127, 0, 0, 1], pa));
    let mut valid_prefix = b"P2PA\x01\x00".to_vec();
    valid_prefix.extend_from_slice(&[0xAB; 60]);
    // Bursts of 50, each as fast as the socket takes it, so the kernel's
    // receive buffer does not drop any and every datagram is accounted for.
    let before = a.discovery_status().unwrap().datagrams_received;
    for burst in 0..40u32 {
        for i in burst * 50..(burst + 1) * 50 {
            let datagram: Vec<u8> = match i % 4 {
                0 => i.to_be_bytes().repeat(i as usize % 50),
                1 => valid_prefix.clone(),
                2 => vec![0xFF; 1400],
                _ => b"P2PA".to_vec(),
            };
            flood.send_to(&datagram, target).unwrap();
        }
        let sent = u64::from((burst + 1) * 50);
        eventually("the burst is received", || {
            a.discovery_status().unwrap().datagrams_received >= before + sent
        })
        .await;
    }
    eventually("the flood is counted", || {
        let s = a.discovery_status().unwrap();
        s.stats.garbage() + s.datagrams_dropped >= 2000
    })
    .await;
    let status = a.discovery_status().unwrap();
    assert_eq!(status.stats.accepted, 0);
    assert!(status.stats.malformed > 0 && status.stats.foreign > 0);
    // Still discovering.
    let b = node(unicast(pb, &[pa])).await;
    eventually("connected after the flood", || connected(&a, &b)).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_id_is_recorded_nowhere_and_never_connected() {
    let (pa, pb, pc) = (free_udp_port(), free_udp_port(), free_udp_port());
    let blocked = Keypair::generate(&mut rand::rng());
    let blocked_id = blocked.peer_id();
    let mut policy = open();
    policy.access.block_peer(blocked_id);
    let a = start(
        PeerNetwork::builder()
            .listen_ip("127.0.0.1".parse().unwrap())
            .trust_policy(policy)
            .discovery(unicast(pa, &[pb])),
    )
    .await;
    let mut a_events = a.subscribe();
    let c = start(
        PeerNetwork::builder()
            .keypair(blocked)
            .listen_ip("127.0.0.1".parse().unwrap())
            .trust_policy(open())
            .discovery(unicast(pc, &[pa])),
    )
    .await;
    let b = node(unicast(pb, &[pa, pc])).await;
    eventually("a–b and b–c connected", || {
        connected(&a, &b) && connected(&b, &c)
    })
    .await;
    // Several announce rounds later, a has still not let c in.
    tokio::time::sleep(Duration::from_secs(2)).await;
    while let Some(event) = a_events.try_recv() {
        if let NetworkEvent::ChannelOpened { peer, .. } = event {
            assert_ne!(peer, blocked_id, "a opened a channel to the blocked id");
        }
    }
    assert!(!connected(&a, &c));
    assert!(a.known_peer(&blocked_id).is_none());
    assert!(a.discovery_status().unwrap().denied > 0);
    // c announced itself to a all along and was never answered.
    assert!(
        !c.discovery_status()
            .unwrap()
            .heard
            .contains(&a.local_peer_id())
    );
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auto_connect_peers_are_known_but_not_dialled() {
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let a = node(unicast(pa, &[pb]).auto_connect(false)).await;
    let b = node(unicast(pb, &[pa]).auto_connect(false)).await;
    eventually("both known", || {
        a.known_peer(&b.local_peer_id()).is_some() && b.known_peer(&a.local_peer_id()).is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(a.channels().is_empty() && b.channels().is_empty());
    // The application may connect to what discovery found.
    let known = a.known_peer(&b.local_peer_id()).unwrap();
    let addr = *known.addresses.last().unwrap();
    a.connect_to(b.local_peer_id(), addr).await.unwrap();
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_goes_quiet_is_pruned() {
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let a = node(unicast(pa, &[pb])).await;
    let mut events = a.subscribe();
    let b = node(unicast(pb, &[pa])).await;
    let b_id = b.local_peer_id();
    eventually("connected", || connected(&a, &b)).await;
    b.shutdown().await;
    wait_for(&mut events, "b pruned", |e| match e {
        NetworkEvent::PeerRemoved { peer } if *peer == b_id => Some(()),
        _ => None,
    })
    .await;
    assert!(a.known_peer(&b_id).is_none());
    eventually("the status no longer lists b", || {
        !a.discovery_status().unwrap().heard.contains(&b_id)
    })
    .await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_cycles_the_designated_ports_and_control_calls_need_discovery() {
    let ports = [free_udp_port(), free_udp_port(), free_udp_port()];
    // Without the routine, rotation is by hand and starts at the first port.
    let manual = start(
        PeerNetwork::builder()
            .listen_ip("127.0.0.1".parse().unwrap())
            .default_routines(false)
            .discovery(unicast(ports[0], &[]).designated_ports(ports)),
    )
    .await;
    assert_eq!(manual.discovery_status().unwrap().broadcast_port, ports[0]);
    for step in 1..=3 {
        let port = manual.rotate_broadcast_port().await.unwrap();
        assert_eq!(port, ports[step % 3]);
        eventually("the status follows", || {
            manual.discovery_status().unwrap().broadcast_port == port
        })
        .await;
    }
    manual.rescan_interfaces().await.unwrap();
    manual.announce_now().await.unwrap();
    manual.shutdown().await;

    // With the routine, broadcasts also start on the first port.
    let a = node(unicast(ports[0], &[]).designated_ports(ports)).await;
    assert_eq!(a.discovery_status().unwrap().broadcast_port, ports[0]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.discovery_status().unwrap().broadcast_port, ports[0]);
    let names: Vec<String> = a.routines().list().into_iter().map(|r| r.name).collect();
    for routine in [
        p2pnet::discovery::ROTATE_BROADCAST_PORT,
        p2pnet::discovery::RESCAN_INTERFACES,
    ] {
        assert!(names.iter().any(|n| n == routine), "{routine} in {names:?}");
    }
    a.shutdown().await;

    let plain = start(PeerNetwork::builder().listen_ip("127.0.0.1".parse().unwrap())).await;
    assert!(plain.discovery_status().is_none());
    assert!(matches!(
        plain.rotate_broadcast_port().await,
        Err(p2pnet::Error::DiscoveryOff)
    ));
    plain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_discovery_settings_are_refused_at_start() {
    let err = PeerNetwork::builder()
        .discovery(DiscoveryConfig::default().designated_ports([]))
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("designated_ports"), "{err}");
    assert!(
        DiscoveryConfig::default()
            .static_hosts(["not a host"])
            .is_err()
    );
}
