//! Discovery helpers for the loopback tests: free designated ports, fast
//! timing, unicast-only configurations.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use p2pnet::DiscoveryConfig;
use p2pnet::discovery::DiscoveryParams;

/// A UDP port free on both families, never the same twice in this
/// process: designated ports are bound with SO_REUSEPORT, so two tests
/// given one port would silently share it.
pub fn free_udp_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 20_000) as u16;
    loop {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed) % 20_000;
        if UdpSocket::bind(("0.0.0.0", port)).is_ok() && UdpSocket::bind(("::", port)).is_ok() {
            return port;
        }
    }
}

pub fn fast() -> DiscoveryParams {
    DiscoveryParams {
        first_repeat: Duration::from_millis(100),
        quiet_interval: Duration::from_millis(500),
        settled_interval: Duration::from_millis(500),
        peer_ttl: Duration::from_millis(1500),
        ..DiscoveryParams::default()
    }
}

/// Unicast-only discovery on `port`, announcing to the static hosts.
pub fn unicast(port: u16, hosts: &[u16]) -> DiscoveryConfig {
    DiscoveryConfig::default()
        .designated_ports([port])
        .broadcast(false)
        .multicast_v4(None)
        .multicast_v6(None)
        .params(fast())
        .static_hosts(hosts.iter().map(|p| format!("127.0.0.1:{p}")))
        .unwrap()
}
