//! Hostile input on real sockets: garbage, oversized and truncated
//! handshakes, a foreign network, silence, floods and tampering. Each time
//! the offending connection is closed with a reason and the network keeps
//! serving others.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use p2pnet::{
    ChannelConfig, CloseReason, IncomingPeerTrustPolicy, Limits, NetworkEvent, PeerNetwork,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn auto_accept() -> IncomingPeerTrustPolicy {
    IncomingPeerTrustPolicy {
        auto_accept: true,
        ..Default::default()
    }
}

/// Reads until EOF or reset; fails if the server keeps the connection open.
async fn closed_by_server(stream: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(WAIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server closes the connection");
}

async fn still_serves(network: &PeerNetwork) {
    let client = start(local()).await;
    let mut events = network.subscribe();
    let id = client
        .connect(addr(network))
        .await
        .expect("a legitimate peer still connects");
    client.send_message(id, "still there?").await.unwrap();
    assert_eq!(message(&mut events).await.1, "still there?");
    client.shutdown().await;
}

async fn closed_error(events: &mut p2pnet::EventStream) -> String {
    wait_for(events, "a closed channel", |e| match e {
        NetworkEvent::ChannelClosed {
            reason: CloseReason::Error(err),
            ..
        } => Some(err.to_string()),
        NetworkEvent::ChannelClosed { reason, .. } => Some(format!("{reason:?}")),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn garbage_oversized_and_truncated_handshakes_are_closed() {
    let network = start(local().trust_policy(auto_accept())).await;
    let mut events = network.subscribe();

    let mut garbage = TcpStream::connect(addr(&network)).await.unwrap();
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = garbage.write_all(&noise).await;
    closed_by_server(&mut garbage).await;
    let reason = closed_error(&mut events).await;
    assert!(reason.contains("handshake"), "{reason}");

    let mut oversized = TcpStream::connect(addr(&network)).await.unwrap();
    oversized.write_all(&[0xff, 0xff]).await.unwrap();
    oversized.write_all(&[0u8; 2048]).await.unwrap();
    closed_by_server(&mut oversized).await;
    let reason = closed_error(&mut events).await;
    assert!(
        reason.contains("too large") || reason.contains("exceeds"),
        "{reason}"
    );

    let mut truncated = TcpStream::connect(addr(&network)).await.unwrap();
    truncated.write_all(&[0, 32, 1, 2, 3]).await.unwrap();
    drop(truncated);
    let reason = closed_error(&mut events).await;
    assert!(reason.contains("ConnectionLost"), "{reason}");

    still_serves(&network).await;
    eventually("every channel gone", || network.channels().is_empty()).await;
    network.shutdown().await;
}

#[tokio::test]
async fn a_peer_of_another_network_fails_the_handshake() {
    let mut other = ChannelConfig::default();
    other.network = "someone-else".into();
    let stranger = start(local().channel_config(other)).await;
    let network = start(local().trust_policy(auto_accept())).await;
    let err = stranger.connect(addr(&network)).await.unwrap_err();
    assert!(
        err.to_string().contains("handshake") || err.to_string().contains("closed"),
        "{err}"
    );
    eventually("no channel survives", || {
        network.channels().is_empty() && stranger.channels().is_empty()
    })
    .await;
    still_serves(&network).await;
    stranger.shutdown().await;
    network.shutdown().await;
}

#[tokio::test]
async fn silent_connections_time_out_and_a_flood_cannot_exceed_the_pending_limit() {
    let mut channel = ChannelConfig::default();
    channel.handshake_timeout = Duration::from_millis(400);
    let limits = Limits {
        max_pending: 16,
        ..Limits::default()
    };
    let network = start(
        local()
            .channel_config(channel)
            .limits(limits)
            .trust_policy(auto_accept()),
    )
    .await;

    let mut flood = Vec::new();
    for _ in 0..200 {
        flood.push(TcpStream::connect(addr(&network)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        network.channels().len() <= 16,
        "{} channels",
        network.channels().len()
    );
    // Everything past the limit was dropped at once, without a handshake.
    let mut dropped = 0;
    for stream in &mut flood[16..] {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(50), stream.read(&mut byte)).await
        {
            dropped += 1;
        }
    }
    assert!(dropped >= 180, "{dropped} of 184 dropped");
    // The silent ones time out, freeing the slots for real peers.
    eventually("silent connections timed out", || {
        network.channels().is_empty()
    })
    .await;
    still_serves(&network).await;
    drop(flood);
    network.shutdown().await;
}

/// A TCP proxy that flips one bit of the next client→server read once
/// `tamper` is set.
async fn tampering_proxy(
    target: std::net::SocketAddr,
    tamper: Arc<AtomicBool>,
) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = TcpStream::connect(target).await.unwrap();
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        });
        let mut buf = vec![0u8; 65536];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if tamper.swap(false, Ordering::SeqCst) {
                buf[n - 1] ^= 0x01;
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    addr
}

#[tokio::test]
async fn a_tampered_frame_closes_the_channel() {
    let bob = start(local().trust_policy(auto_accept())).await;
    let alice = start(local()).await;
    let tamper = Arc::new(AtomicBool::new(false));
    let proxy = tampering_proxy(addr(&bob), tamper.clone()).await;
    let mut bob_events = bob.subscribe();
    let bob_id = alice.connect(proxy).await.unwrap();
    alice.send_message(bob_id, "intact").await.unwrap();
    assert_eq!(message(&mut bob_events).await.1, "intact");

    tamper.store(true, Ordering::SeqCst);
    alice.send_message(bob_id, "tampered").await.unwrap();
    let reason = wait_for(&mut bob_events, "the close", |e| match e {
        NetworkEvent::MessageReceived { .. } => panic!("a tampered message was delivered"),
        NetworkEvent::ChannelClosed { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(
        matches!(reason, CloseReason::Error(p2pnet::proto::Error::Decrypt)),
        "{reason:?}"
    );
    still_serves(&bob).await;
    alice.shutdown().await;
    bob.shutdown().await;
}
