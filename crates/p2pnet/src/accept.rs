//! The listener: binding the port, accepting connections, and refusing
//! blocked addresses before a single byte is said.

use std::net::{IpAddr, SocketAddr};

use p2pnet_proto::{Decision, Direction};
use tokio::net::{TcpListener, TcpStream};

use crate::admission::Intent;
use crate::dial::{Origin, inbound_channel, open_channel};
use crate::error::{Error, Result};
use crate::event::NetworkEvent;
use crate::network::PeerNetwork;

pub(crate) async fn bind(ip: IpAddr, ports: std::ops::RangeInclusive<u16>) -> Result<TcpListener> {
    let mut last = None;
    for port in ports {
        match TcpListener::bind(SocketAddr::new(ip, port)).await {
            Ok(listener) => return Ok(listener),
            Err(err) => last = Some((port, err)),
        }
    }
    match last {
        Some((port, err)) => Err(Error::io(
            format!("binding {ip} (last port tried: {port})"),
            err,
        )),
        None => Err(Error::InvalidConfig("the port range is empty".into())),
    }
}

pub(crate) async fn accept_loop(network: PeerNetwork, listener: TcpListener) {
    let cancel = network.node().cancel.clone();
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, addr)) => on_inbound(&network, stream, addr),
            Err(err) => {
                // Typically EMFILE under a connection flood: back off a
                // little instead of spinning, and keep serving.
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    tracing::debug!("listener stopped");
}

fn on_inbound(network: &PeerNetwork, stream: TcpStream, addr: SocketAddr) {
    let node = network.node();
    let addr = crate::scope::canonical(addr);
    node.events
        .emit(NetworkEvent::IncomingConnectionAttempt { addr });
    let refuse = |reason: String| {
        tracing::info!(%addr, %reason, "inbound connection refused");
        node.events.emit(NetworkEvent::ConnectionRefused {
            addr,
            peer: None,
            reason,
        });
    };
    if let Decision::Deny(reason) = node.access.decide(None, addr.ip(), Direction::Inbound) {
        // Dropping the stream closes it: nothing is said to a blocked
        // address, not even a handshake.
        refuse(format!("{reason:?}"));
        return;
    }
    let origin = Origin::Accepted {
        at: tokio::time::Instant::now(),
    };
    let opened = inbound_channel(node)
        .and_then(|channel| open_channel(node, stream, addr, Intent::Inbound, channel, origin));
    if let Err(err) = opened {
        refuse(err.to_string());
    }
}
