//! LAN discovery across network namespaces: hosts on a bridge that the
//! test creates and deletes, one peer network per host. Each mechanism is
//! tested alone (broadcast, IPv4 multicast, IPv6 multicast), then port
//! rotation, the access list, a garbage flood and a host leaving. Skipped
//! (with a message) where namespaces cannot be made; CI runs as root.

mod common;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::netns::{NsNode, full_mesh};
use netns_lab::{Lab, can_run, enter};
use p2pnet::discovery::DiscoveryParams;
use p2pnet::{
    ChannelConfig, DiscoveryConfig, DiscoveryVia, IncomingPeerTrustPolicy, Keypair, NetworkEvent,
    PeerNetwork, PeerNetworkBuilder, PeerSource,
};

const MESH_WAIT: Duration = Duration::from_secs(20);

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn open_policy() -> IncomingPeerTrustPolicy {
    IncomingPeerTrustPolicy {
        auto_accept: true,
        ..IncomingPeerTrustPolicy::default()
    }
}

fn builder(discovery: DiscoveryConfig) -> PeerNetworkBuilder {
    PeerNetwork::builder()
        .trust_policy(open_policy())
        .discovery(discovery)
}

fn v4_hosts(lab: &mut Lab, subnet: u8, n: u8) -> Vec<String> {
    (1..=n)
        .map(|i| lab.host(&format!("h{i}"), &[&format!("10.61.{subnet}.{i}/24")]))
        .collect()
}

fn start_all(hosts: &[String], discovery: &DiscoveryConfig) -> Vec<NsNode> {
    hosts
        .iter()
        .map(|ns| {
            let discovery = discovery.clone();
            NsNode::start(ns, move || builder(discovery))
        })
        .collect()
}

/// Every way each node learned the others.
fn sources(nodes: &[NsNode]) -> Vec<DiscoveryVia> {
    nodes
        .iter()
        .flat_map(|node| node.network.known_peers())
        .map(|known| match known.source {
            PeerSource::Discovery { via } => via,
            other => panic!("a peer was learned by {other:?}, not discovery"),
        })
        .collect()
}

/// Sends a message from `from` to `to` and waits until it arrives.
fn message_crosses(from: &NsNode, to: &NsNode) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut events = to.network.subscribe();
        from.network
            .send_message(to.id(), "hello over the LAN")
            .await
            .expect("message sent");
        let arrived = tokio::time::timeout(MESH_WAIT, async {
            loop {
                match events.recv().await {
                    Some(NetworkEvent::MessageReceived { peer, text }) => {
                        return (peer, text);
                    }
                    Some(_) => {}
                    None => panic!("event stream ended"),
                }
            }
        })
        .await
        .expect("message arrives");
        assert_eq!(arrived, (from.id(), "hello over the LAN".to_owned()));
    });
}

#[test]
fn broadcast_alone_meshes_three_hosts() {
    if !can_run("broadcast_alone_meshes_three_hosts") {
        return;
    }
    let mut lab = Lab::new("bc");
    let hosts = v4_hosts(&mut lab, 1, 3);
    let config = DiscoveryConfig::default()
        .multicast_v4(None)
        .multicast_v6(None);
    let nodes = start_all(&hosts, &config);
    wait_until("a full mesh", MESH_WAIT, || full_mesh(&nodes));
    let vias = sources(&nodes);
    assert!(vias.contains(&DiscoveryVia::Broadcast), "{vias:?}");
    assert!(!vias.contains(&DiscoveryVia::Multicast), "{vias:?}");
    message_crosses(&nodes[0], &nodes[2]);
    for node in &nodes {
        let status = node.network.discovery_status().unwrap();
        assert_eq!(status.interfaces, vec!["eth0".to_owned()]);
        assert_eq!(status.send_errors, 0, "{status:?}");
    }
}

#[test]
fn ipv4_multicast_alone_meshes_three_hosts() {
    if !can_run("ipv4_multicast_alone_meshes_three_hosts") {
        return;
    }
    let mut lab = Lab::new("m4");
    let hosts = v4_hosts(&mut lab, 2, 3);
    let config = DiscoveryConfig::default()
        .broadcast(false)
        .multicast_v6(None);
    let nodes = start_all(&hosts, &config);
    wait_until("a full mesh", MESH_WAIT, || full_mesh(&nodes));
    let vias = sources(&nodes);
    assert!(vias.contains(&DiscoveryVia::Multicast), "{vias:?}");
    assert!(!vias.contains(&DiscoveryVia::Broadcast), "{vias:?}");
    message_crosses(&nodes[1], &nodes[0]);
}

#[test]
fn ipv6_multicast_alone_meshes_three_hosts() {
    if !can_run("ipv6_multicast_alone_meshes_three_hosts") {
        return;
    }
    let mut lab = Lab::new("m6");
    // IPv6 only: no IPv4 address anywhere.
    let hosts: Vec<String> = (1..=3)
        .map(|i| lab.host(&format!("h{i}"), &[&format!("fd5a:7e57:6::{i}/64")]))
        .collect();
    let config = DiscoveryConfig::default()
        .broadcast(false)
        .multicast_v4(None);
    let nodes = start_all(&hosts, &config);
    wait_until("a full mesh", MESH_WAIT, || full_mesh(&nodes));
    let vias = sources(&nodes);
    assert!(vias.contains(&DiscoveryVia::Multicast), "{vias:?}");
    assert!(!vias.contains(&DiscoveryVia::Broadcast), "{vias:?}");
    for node in &nodes {
        for channel in node.network.channels() {
            assert!(channel.addr.is_ipv6(), "{channel:?}");
        }
    }
    message_crosses(&nodes[2], &nodes[1]);
}

#[test]
fn port_rotation_really_moves_the_broadcasts_and_keeps_the_mesh() {
    if !can_run("port_rotation_really_moves_the_broadcasts_and_keeps_the_mesh") {
        return;
    }
    let mut lab = Lab::new("rot");
    let hosts = v4_hosts(&mut lab, 3, 4);
    let ports = [28451u16, 28452, 28453];
    let config = DiscoveryConfig::default()
        .designated_ports(ports)
        .multicast_v4(None)
        .multicast_v6(None)
        .rotate_interval(Duration::from_millis(300))
        .params(DiscoveryParams {
            quiet_interval: Duration::from_millis(250),
            settled_interval: Duration::from_millis(250),
            peer_ttl: Duration::from_secs(5),
            ..DiscoveryParams::default()
        });
    // The fourth host only listens, each designated port on its own
    // socket, and counts the broadcasts that arrive on each.
    let spy = hosts[3].clone();
    let spies: Vec<UdpSocket> = std::thread::scope(|s| {
        s.spawn(|| {
            enter(&spy);
            ports
                .iter()
                .map(|port| {
                    let socket = UdpSocket::bind(("0.0.0.0", *port)).unwrap();
                    socket.set_nonblocking(true).unwrap();
                    socket
                })
                .collect()
        })
        .join()
        .unwrap()
    });
    let nodes = start_all(&hosts[..3], &config);
    wait_until("a full mesh", MESH_WAIT, || full_mesh(&nodes));
    let channels_before: HashSet<_> = nodes
        .iter()
        .flat_map(|n| n.network.channels())
        .map(|c| (c.peer, c.since))
        .collect();
    let mut arrivals: Vec<(Instant, usize, IpAddr)> = Vec::new();
    let mut buf = [0u8; 512];
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        for (port, socket) in spies.iter().enumerate() {
            while let Ok((_, from)) = socket.recv_from(&mut buf) {
                arrivals.push((Instant::now(), port, from.ip()));
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Per node: each announce (a burst: limited and subnet broadcast) goes
    // to one port only, and successive announces move across the ports.
    for node in 1..=3u8 {
        let ip: IpAddr = format!("10.61.3.{node}").parse().unwrap();
        let mut bursts: Vec<HashSet<usize>> = Vec::new();
        let mut last: Option<Instant> = None;
        for (at, port, _) in arrivals.iter().filter(|(_, _, from)| *from == ip) {
            if last.is_none_or(|l| at.duration_since(l) > Duration::from_millis(60)) {
                bursts.push(HashSet::new());
            }
            last = Some(*at);
            bursts.last_mut().unwrap().insert(*port);
        }
        assert!(
            bursts.len() >= 6,
            "node {node}: {} announces heard",
            bursts.len()
        );
        assert!(
            bursts.iter().all(|ports| ports.len() == 1),
            "node {node} sent one announce to several ports: {bursts:?}"
        );
        let used: HashSet<usize> = bursts.iter().flatten().copied().collect();
        assert_eq!(used.len(), 3, "node {node} used ports {used:?}");
    }
    for node in &nodes {
        let info = node
            .network
            .routines()
            .get(p2pnet::discovery::ROTATE_BROADCAST_PORT)
            .unwrap();
        assert!(info.runs >= 5, "{info:?}");
    }
    assert!(full_mesh(&nodes), "the mesh held through the rotations");
    let channels_after: HashSet<_> = nodes
        .iter()
        .flat_map(|n| n.network.channels())
        .map(|c| (c.peer, c.since))
        .collect();
    assert_eq!(channels_before, channels_after, "no channel was replaced");
}

#[test]
fn a_blocked_id_is_never_connected() {
    if !can_run("a_blocked_id_is_never_connected") {
        return;
    }
    let mut lab = Lab::new("blk");
    let hosts = v4_hosts(&mut lab, 4, 3);
    let config = DiscoveryConfig::default();
    let blocked = Keypair::generate(&mut rand::rng());
    let blocked_id = blocked.peer_id();
    let strict = {
        let config = config.clone();
        NsNode::start(&hosts[0], move || {
            let mut policy = open_policy();
            policy.access.block_peer(blocked_id);
            PeerNetwork::builder()
                .trust_policy(policy)
                .discovery(config)
        })
    };
    let outcast = {
        let config = config.clone();
        NsNode::start(&hosts[1], move || builder(config).keypair(blocked))
    };
    let other = {
        let config = config.clone();
        NsNode::start(&hosts[2], move || builder(config))
    };
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        assert!(
            !strict.open_peers().contains(&blocked_id),
            "the blocked id got a channel"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(strict.open_peers().contains(&other.id()));
    assert!(outcast.open_peers().contains(&other.id()));
    assert!(strict.network.known_peer(&blocked_id).is_none());
    assert!(strict.network.discovery_status().unwrap().denied > 0);
}

#[test]
fn a_garbage_flood_does_not_stop_discovery() {
    if !can_run("a_garbage_flood_does_not_stop_discovery") {
        return;
    }
    let mut lab = Lab::new("gbg");
    let hosts = v4_hosts(&mut lab, 5, 4);
    let flooder = hosts[3].clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            enter(&flooder);
            let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
            socket.set_broadcast(true).unwrap();
            let mut sent = 0u64;
            let mut junk = b"P2PA\x01".to_vec();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                junk.push((sent % 251) as u8);
                junk.truncate(4 + (sent as usize % 300));
                for port in p2pnet::discovery::DEFAULT_DESIGNATED_PORTS {
                    let to = SocketAddr::from(([10, 61, 5, 255], port));
                    if socket.send_to(&junk, to).is_ok() {
                        sent += 1;
                    }
                }
                if sent.is_multiple_of(64) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            sent
        })
    };
    let nodes = start_all(&hosts[..3], &DiscoveryConfig::default());
    wait_until("a full mesh under the flood", MESH_WAIT, || {
        full_mesh(&nodes)
    });
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = flood.join().unwrap();
    assert!(sent > 1000, "the flood sent {sent}");
    for node in &nodes {
        let status = node.network.discovery_status().unwrap();
        assert!(status.stats.garbage() > 100, "{status:?}");
    }
    message_crosses(&nodes[0], &nodes[1]);
}

#[test]
fn a_host_that_leaves_is_pruned() {
    if !can_run("a_host_that_leaves_is_pruned") {
        return;
    }
    let mut lab = Lab::new("lv");
    let hosts = v4_hosts(&mut lab, 6, 3);
    let config = DiscoveryConfig::default().params(DiscoveryParams {
        quiet_interval: Duration::from_millis(500),
        settled_interval: Duration::from_millis(500),
        peer_ttl: Duration::from_millis(1500),
        ..DiscoveryParams::default()
    });
    let nodes: Vec<NsNode> = hosts
        .iter()
        .map(|ns| {
            let config = config.clone();
            NsNode::start(ns, move || {
                let mut channel = ChannelConfig::default();
                channel.keepalive_interval = Duration::from_millis(300);
                channel.idle_timeout = Duration::from_secs(1);
                builder(config).channel_config(channel)
            })
        })
        .collect();
    wait_until("a full mesh", MESH_WAIT, || full_mesh(&nodes));
    let gone = nodes[2].id();
    // The host drops off the LAN without a word.
    lab.set_link(&hosts[2], false);
    wait_until("the others pruned it", MESH_WAIT, || {
        nodes[..2].iter().all(|n| {
            n.network.known_peer(&gone).is_none()
                && n.network.channel(&gone).is_none()
                && !n.network.discovery_status().unwrap().heard.contains(&gone)
        })
    });
    // The two that stayed still talk.
    assert!(nodes[0].open_peers().contains(&nodes[1].id()));
    let addr: IpAddr = "10.61.6.3".parse().unwrap();
    assert!(
        nodes[0]
            .network
            .known_peers()
            .iter()
            .all(|k| k.addresses.iter().all(|a| a.ip() != addr))
    );
}

#[test]
fn a_new_address_is_announced_after_a_rescan() {
    if !can_run("a_new_address_is_announced_after_a_rescan") {
        return;
    }
    let mut lab = Lab::new("addr");
    let hosts = v4_hosts(&mut lab, 7, 2);
    let config = DiscoveryConfig::default().rescan_interval(Duration::from_millis(200));
    let nodes = start_all(&hosts, &config);
    wait_until("a full mesh", MESH_WAIT, || full_mesh(&nodes));
    wait_until("both settled", MESH_WAIT, || {
        nodes
            .iter()
            .all(|n| n.network.discovery_status().unwrap().settled)
    });
    let added: IpAddr = "10.61.7.101".parse().unwrap();
    std::process::Command::new("ip")
        .args([
            "-n",
            &hosts[0],
            "addr",
            "add",
            "10.61.7.101/24",
            "dev",
            "eth0",
            "nodad",
        ])
        .status()
        .unwrap();
    let port = nodes[0].network.local_addr().unwrap().port();
    // RescanInterfaces notices, the fast phase restarts, and the other
    // node records the new address.
    wait_until("the new address is known", MESH_WAIT, || {
        nodes[1]
            .network
            .known_peer(&nodes[0].id())
            .is_some_and(|k| k.addresses.contains(&SocketAddr::new(added, port)))
    });
    assert!(
        nodes[0]
            .network
            .discovery_status()
            .unwrap()
            .announced
            .contains(&added)
    );
}
