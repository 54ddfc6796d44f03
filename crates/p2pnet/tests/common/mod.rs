//! Helpers shared by the loopback integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod discovery;
pub mod netns;

use std::net::SocketAddr;
use std::time::Duration;

use p2pnet::{EventStream, NetworkEvent, PeerNetwork, PeerNetworkBuilder};

pub const WAIT: Duration = Duration::from_secs(20);

/// A builder listening on loopback only.
pub fn local() -> PeerNetworkBuilder {
    PeerNetwork::builder().listen_ip("127.0.0.1".parse().unwrap())
}

pub async fn start(builder: PeerNetworkBuilder) -> PeerNetwork {
    builder.start().await.expect("network starts")
}

pub fn addr(network: &PeerNetwork) -> SocketAddr {
    network.local_addr().expect("listening")
}

/// Waits for the first event `pick` maps to `Some`, failing after [`WAIT`].
pub async fn wait_for<T>(
    events: &mut EventStream,
    what: &str,
    mut pick: impl FnMut(&NetworkEvent) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Some(event) => {
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                None => panic!("event stream ended while waiting for {what}"),
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Polls `check` until it holds, failing after [`WAIT`].
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Connects `a` to `b` and has `b` approve it; returns (a's id, b's id).
pub async fn link(a: &PeerNetwork, b: &PeerNetwork) -> (p2pnet::PeerId, p2pnet::PeerId) {
    let mut b_events = b.subscribe();
    let b_id = a.connect(addr(b)).await.expect("connect");
    let a_id = wait_for(&mut b_events, "approval request", |e| match e {
        NetworkEvent::ApprovalRequested { peer, .. } => Some(*peer),
        _ => None,
    })
    .await;
    b.approve(a_id, None).await.expect("approve");
    wait_for(&mut b_events, "channel opened", |e| match e {
        NetworkEvent::ChannelOpened { peer, .. } if *peer == a_id => Some(()),
        _ => None,
    })
    .await;
    (a_id, b_id)
}

pub async fn message(events: &mut EventStream) -> (p2pnet::PeerId, String) {
    wait_for(events, "a message", |e| match e {
        NetworkEvent::MessageReceived { peer, text } => Some((*peer, text.clone())),
        _ => None,
    })
    .await
}

/// Dials `target` and asserts that no channel survives: either the dial
/// fails, or the channel (open on the dialer's side after the handshake)
/// is closed by the remote with `code`. Returns the dial result's error
/// text or the close reason.
pub async fn refused(
    dialer: &PeerNetwork,
    target: SocketAddr,
    code: p2pnet::proto::packet::DisconnectReason,
) -> String {
    let mut events = dialer.subscribe();
    match dialer.connect(target).await {
        Err(err) => err.to_string(),
        Ok(peer) => {
            let reason = wait_for(&mut events, "the remote's refusal", |e| match e {
                NetworkEvent::ChannelClosed {
                    peer: Some(p),
                    reason,
                    ..
                } if *p == peer => Some(reason.clone()),
                _ => None,
            })
            .await;
            assert!(
                matches!(&reason, p2pnet::CloseReason::Disconnect(d) if d.reason == code),
                "closed for another reason: {reason:?}"
            );
            format!("{reason:?}")
        }
    }
}

/// Whether `network`'s channel to `peer` is open with every scope.
pub fn is_elevated(network: &PeerNetwork, peer: &p2pnet::PeerId) -> bool {
    network.channel(peer).is_some_and(|c| {
        matches!(c.state, p2pnet::proto::ChannelState::Open { scopes } if scopes == p2pnet::Scopes::ALL)
    })
}
