//! A node that joins a network through bootstrap servers only: it
//! announces its signed record, fetches the list, and dials the peers it
//! names (they still wait for their operators' approval), then prints what
//! happens, one line per fact, until Ctrl-C.
//!
//! ```text
//! cargo run -p p2pnet-bootstrap --example join -- --server http://127.0.0.1:3000
//! cargo run -p p2pnet-bootstrap --example join -- --server http://127.0.0.1:3000 \
//!     --must-be-authority --state trust.json --key node.key --auto-accept
//! ```
//!
//! Lines: `peer id: ID`, `listening: ADDR`, `pinned: FINGERPRINT` when an
//! authority is pinned, `learned: N peers`, `channel: ID open`,
//! `approval asked: ID` (with `--auto-accept` they are let in at once),
//! `message from ID: TEXT`, `task applied: SEQ KIND`, `task refused:
//! REASON`, `error: SERVER: REASON`. `--key FILE` keeps the peer id across
//! runs; `--state FILE` keeps the pinned authority and the sequences.

use std::time::Duration;

use p2pnet::{IncomingPeerTrustPolicy, NetworkEvent, PeerNetwork};
use p2pnet_bootstrap::{
    client::{BootstrapClient, BootstrapClientConfig, BootstrapEvent},
    verify::BootstrapPolicy,
};

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let servers: Vec<String> = args
        .windows(2)
        .filter(|w| w[0] == "--server")
        .map(|w| w[1].trim_end_matches('/').to_owned())
        .collect();
    if servers.is_empty() {
        eprintln!(
            "usage: join --server URL [--server URL...] [--listen IP] [--key FILE] \
             [--state FILE] [--must-be-authority] [--pin FINGERPRINT] [--auto-accept]"
        );
        std::process::exit(2);
    }
    let mut builder = PeerNetwork::builder()
        .listen_ip(
            flag(&args, "--listen")
                .unwrap_or_else(|| "0.0.0.0".into())
                .parse()?,
        )
        .trust_policy(IncomingPeerTrustPolicy {
            auto_accept: args.iter().any(|a| a == "--auto-accept"),
            ..IncomingPeerTrustPolicy::default()
        });
    if let Some(path) = flag(&args, "--key") {
        builder = builder.identity_file(path);
    }
    let network = builder.start().await?;
    println!("peer id: {}", network.local_peer_id());
    if let Some(addr) = network.local_addr() {
        println!("listening: {addr}");
    }
    let mut events = network.subscribe();
    let client = BootstrapClient::start(
        network.clone(),
        BootstrapClientConfig {
            servers,
            policy: BootstrapPolicy {
                must_be_authority: args.iter().any(|a| a == "--must-be-authority"),
                pinned_fingerprint: flag(&args, "--pin"),
                ..BootstrapPolicy::default()
            },
            state_file: flag(&args, "--state").map(Into::into),
            fetch_interval: Duration::from_secs(30),
            ..BootstrapClientConfig::default()
        },
    )?;
    let mut tasks = client.events();
    let mut status = client.watch();
    let mut shown = status.borrow().clone();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            changed = status.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = status.borrow().clone();
                if now.pinned != shown.pinned && let Some(fingerprint) = &now.pinned {
                    println!("pinned: {fingerprint}");
                }
                if now.peers_learned != shown.peers_learned {
                    println!("learned: {} peers", now.peers_learned);
                }
                for (server, error) in &now.errors {
                    if !shown.errors.contains(&(server.clone(), error.clone())) {
                        println!("error: {server}: {error}");
                    }
                }
                shown = now;
            }
            event = events.recv() => match event {
                Some(NetworkEvent::ChannelOpened { peer, .. }) => println!("channel: {peer} open"),
                Some(NetworkEvent::ApprovalRequested { peer, .. }) => println!("approval asked: {peer}"),
                Some(NetworkEvent::MessageReceived { peer, text }) => println!("message from {peer}: {text}"),
                Some(_) => {}
                None => break,
            },
            task = tasks.recv() => match task {
                Ok(BootstrapEvent::TaskApplied { seq, kind }) => println!("task applied: {seq} {kind}"),
                Ok(BootstrapEvent::TaskRefused { reason, .. }) => println!("task refused: {reason}"),
                Ok(BootstrapEvent::Message { text, .. }) => println!("authority says: {text}"),
                Ok(_) | Err(_) => {}
            },
        }
    }
    client.stop().await;
    network.shutdown().await;
    Ok(())
}
