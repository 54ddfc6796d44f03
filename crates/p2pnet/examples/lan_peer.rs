//! A LAN node: discovers peers by broadcast and multicast, connects to
//! them, and prints peers and messages. Every line typed is sent to every
//! open channel.
//!
//! ```text
//! host A:  cargo run -p p2pnet --example lan_peer
//! host B:  cargo run -p p2pnet --example lan_peer
//! ```
//!
//! Flags: `--ports 28351,28352` (designated UDP ports), `--static HOST[:PORT]`
//! (repeatable: unicast announces across networks broadcast cannot
//! cross), `--no-broadcast`, `--no-multicast4`, `--no-multicast6`,
//! `--identity FILE` (a stable peer id), `--approve` (approve inbound
//! peers by hand instead of accepting them). Commands: `/peers`,
//! `/status`, `/approve`, `/quit`.

use p2pnet::{DiscoveryConfig, IncomingPeerTrustPolicy, NetworkEvent, PeerNetwork, PeerSource};
use tokio::io::{AsyncBufReadExt, BufReader};

fn values<'a>(args: &'a [String], name: &'a str) -> impl Iterator<Item = &'a String> {
    args.windows(2).filter(move |w| w[0] == name).map(|w| &w[1])
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let mut discovery = DiscoveryConfig::default()
        .broadcast(!has("--no-broadcast"))
        .static_hosts(values(&args, "--static"))?;
    if has("--no-multicast4") {
        discovery = discovery.multicast_v4(None);
    }
    if has("--no-multicast6") {
        discovery = discovery.multicast_v6(None);
    }
    if let Some(ports) = values(&args, "--ports").next() {
        let ports: Vec<u16> = ports.split(',').map(str::parse).collect::<Result<_, _>>()?;
        discovery = discovery.designated_ports(ports);
    }
    let mut builder =
        PeerNetwork::builder()
            .discovery(discovery)
            .trust_policy(IncomingPeerTrustPolicy {
                auto_accept: !has("--approve"),
                ..IncomingPeerTrustPolicy::default()
            });
    if let Some(path) = values(&args, "--identity").next() {
        builder = builder.identity_file(path);
    }
    let network = builder.start().await?;
    let status = network.discovery_status().unwrap_or_default();
    println!(
        "you are {} on TCP {}; discovery on UDP {:?} via {:?}",
        network.local_peer_id(),
        network.local_addr().map_or("-".into(), |a| a.to_string()),
        status.designated_ports,
        status.interfaces,
    );

    let mut events = network.subscribe();
    let printer = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                NetworkEvent::PeerAdded {
                    peer,
                    source: PeerSource::Discovery { via },
                } => println!("* discovered {} ({via:?})", peer.short()),
                NetworkEvent::PeerRemoved { peer } => println!("* {} left", peer.short()),
                NetworkEvent::ApprovalRequested { peer, addr } => {
                    println!("* {} at {addr} waits: /approve", peer.short());
                }
                NetworkEvent::ChannelOpened { peer, addr, .. } => {
                    println!("* connected to {} at {addr}", peer.short());
                }
                NetworkEvent::ChannelClosed {
                    peer: Some(peer), ..
                } => println!("* disconnected from {}", peer.short()),
                NetworkEvent::MessageReceived { peer, text } => {
                    println!("<{}> {text}", peer.short());
                }
                _ => {}
            }
        }
    });

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        match line.trim() {
            "" => {}
            "/quit" => break,
            "/peers" => {
                for known in network.known_peers() {
                    let open = network.channel(&known.peer_id).is_some();
                    println!(
                        "  {} {:?} {:?}{}",
                        known.peer_id.short(),
                        known.source,
                        known.addresses,
                        if open { " (connected)" } else { "" }
                    );
                }
            }
            "/status" => println!("{:#?}", network.discovery_status()),
            "/approve" => {
                for pending in network.pending_approvals() {
                    network.approve(pending.peer, None).await?;
                }
            }
            text => {
                let sent = network
                    .broadcast(p2pnet::proto::packet::PureMessage::new(text))
                    .await;
                println!("(sent to {sent})");
            }
        }
    }
    network.shutdown().await;
    printer.abort();
    Ok(())
}
