//! Chat between two terminals over loopback.
//!
//! ```text
//! terminal 1:  cargo run -p p2pnet --example chat -- --port 4000
//! terminal 2:  cargo run -p p2pnet --example chat -- --port 4001 --connect 127.0.0.1:4000
//! ```
//!
//! Terminal 1 is asked to approve terminal 2 (`/approve`); then every line
//! typed is sent to every open channel. Commands: `/connect ADDR`,
//! `/approve`, `/reject`, `/peers`, `/quit`. `--identity FILE` keeps the
//! same peer id across runs (the file is created with mode 0600).

use std::net::SocketAddr;

use p2pnet::proto::packet::PureMessage;
use p2pnet::{NetworkEvent, PeerNetwork};
use tokio::io::{AsyncBufReadExt, BufReader};

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port: u16 = flag(&args, "--port")
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(0);
    let mut builder = PeerNetwork::builder()
        .listen_ip("127.0.0.1".parse()?)
        .port(port);
    if let Some(path) = flag(&args, "--identity") {
        builder = builder.identity_file(path);
    }
    let network = builder.start().await?;
    println!(
        "you are {} listening on {}",
        network.local_peer_id(),
        network.local_addr().map_or("-".into(), |a| a.to_string())
    );

    let mut events = network.subscribe();
    let printer = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                NetworkEvent::ApprovalRequested { peer, addr } => {
                    println!(
                        "* {} at {addr} wants to chat: /approve or /reject",
                        peer.short()
                    );
                }
                NetworkEvent::ChannelOpened { peer, .. } => {
                    println!("* connected to {}", peer.short())
                }
                NetworkEvent::ChannelClosed {
                    peer: Some(peer),
                    reason,
                    ..
                } => {
                    println!("* {} left ({reason:?})", peer.short());
                }
                NetworkEvent::MessageReceived { peer, text } => {
                    println!("<{}> {text}", peer.short())
                }
                _ => {}
            }
        }
    });

    if let Some(addr) = flag(&args, "--connect") {
        connect(&network, &addr).await;
    }

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let line = line.trim();
        match line.split_once(' ').unwrap_or((line, "")) {
            ("/quit", _) => break,
            ("/connect", addr) => connect(&network, addr).await,
            ("/approve" | "/reject", _) => {
                let Some(pending) = network
                    .channels()
                    .into_iter()
                    .find(|c| c.state == p2pnet::proto::ChannelState::PendingApproval)
                    .and_then(|c| c.peer)
                else {
                    println!("* nobody is waiting");
                    continue;
                };
                let result = if line == "/approve" {
                    network.approve(pending, None).await
                } else {
                    network.reject(pending).await
                };
                if let Err(err) = result {
                    println!("* {err}");
                }
            }
            ("/peers", _) => {
                for channel in network.channels() {
                    println!(
                        "* {:?} {} {:?}",
                        channel.peer.map(|p| p.short()),
                        channel.addr,
                        channel.state
                    );
                }
            }
            ("", _) => {}
            _ => {
                let sent = network.broadcast(PureMessage::new(line)).await;
                if sent == 0 {
                    println!("* no open channel; /connect ADDR first");
                }
            }
        }
    }
    network.shutdown().await;
    printer.abort();
    Ok(())
}

async fn connect(network: &PeerNetwork, addr: &str) {
    match addr.trim().parse::<SocketAddr>() {
        Ok(addr) => match network.connect(addr).await {
            Ok(peer) => println!(
                "* handshake with {} done (they may still have to approve you)",
                peer.short()
            ),
            Err(err) => println!("* {err}"),
        },
        Err(err) => println!("* {addr:?} is not an address: {err}"),
    }
}
