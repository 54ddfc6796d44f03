//! A second node for trying the server's panel (and for its browser tests):
//! it dials one address and reports on stdout, one line per fact.
//!
//! ```text
//! cargo run -p p2pnet --example dial_peer -- --connect 127.0.0.1:4000 --message hello
//! ```
//!
//! Lines: `peer id: ID` at start, `connected: ID at ADDR` once the
//! handshake is done (our side opens at once; the remote may still make us
//! wait for its approval), `sent: TEXT` once the message is queued (a remote
//! that has not approved us holds it and delivers it on approval),
//! `message: TEXT` for what the remote sends, and `closed: REASON` when the
//! channel ends: then it exits with status 0. A failed dial prints
//! `error: ...` and exits with status 1. `--key FILE` keeps the same peer id
//! across runs (the file is created with mode 0600). `--elevate` grants
//! the remote everything once connected (`elevated` is printed), so it may
//! ask this node for a speed test.

use std::{net::SocketAddr, process::ExitCode};

use p2pnet::proto::CloseReason;
use p2pnet::{NetworkEvent, PeerNetwork};

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(target) = flag(&args, "--connect") else {
        eprintln!("usage: dial_peer --connect ADDR [--message TEXT] [--key FILE] [--elevate]");
        return Ok(ExitCode::from(2));
    };
    let target: SocketAddr = target.parse()?;
    let mut builder = PeerNetwork::builder().listen_ip("127.0.0.1".parse()?);
    if let Some(path) = flag(&args, "--key") {
        builder = builder.identity_file(path);
    }
    let network = builder.start().await?;
    println!("peer id: {}", network.local_peer_id());
    // Subscribed before dialling, so no close goes unseen.
    let mut events = network.subscribe();

    let remote = match network.connect(target).await {
        Ok(remote) => remote,
        Err(e) => {
            println!("error: {e}");
            network.shutdown().await;
            return Ok(ExitCode::from(1));
        }
    };
    println!("connected: {remote} at {target}");
    if args.iter().any(|a| a == "--elevate") {
        match network.elevate(remote).await {
            Ok(_) => println!("elevated"),
            Err(e) => println!("error: cannot elevate: {e}"),
        }
    }
    if let Some(text) = flag(&args, "--message") {
        match network.send_message(remote, text.clone()).await {
            Ok(()) => println!("sent: {text}"),
            Err(e) => println!("error: cannot send: {e}"),
        }
    }

    while let Some(event) = events.recv().await {
        match event {
            NetworkEvent::MessageReceived { peer, text } if peer == remote => {
                println!("message: {text}");
            }
            NetworkEvent::ChannelClosed {
                peer: Some(peer),
                reason,
                by_remote,
                ..
            } if peer == remote => {
                println!(
                    "closed: {} (by {})",
                    words(&reason),
                    if by_remote { "the remote" } else { "us" }
                );
                break;
            }
            _ => {}
        }
    }
    network.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn words(reason: &CloseReason) -> String {
    match reason {
        CloseReason::Disconnect(d) => d.reason.to_string(),
        CloseReason::IdleTimeout => "idle timeout".into(),
        CloseReason::ConnectionLost => "connection lost".into(),
        CloseReason::Error(e) => format!("error: {e}"),
    }
}
