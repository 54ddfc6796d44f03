//! Who gets a channel, and who must wait: the holes the 2026-12 review
//! found in admission, each as a regression test over loopback.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::discovery::{free_udp_port, unicast};
use common::{addr, eventually, local, start, wait_for};
use p2pnet::proto::discovery::Announce;
use p2pnet::proto::packet::{DataTransmission, Payload};
use p2pnet::{ChannelConfig, IncomingPeerTrustPolicy, Keypair, NetworkEvent, PeerNetwork};
use tokio::net::{TcpListener, TcpSocket};

/// A loopback TCP port nobody listens on.
fn free_tcp_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn auto_accept() -> IncomingPeerTrustPolicy {
    IncomingPeerTrustPolicy {
        auto_accept: true,
        ..IncomingPeerTrustPolicy::default()
    }
}

fn approval_requested(peer: p2pnet::PeerId) -> impl FnMut(&NetworkEvent) -> Option<()> {
    move |e| match e {
        NetworkEvent::ApprovalRequested { peer: p, .. } if *p == peer => Some(()),
        _ => None,
    }
}

/// Whether `events` delivers a message within `wait`.
async fn message_within(events: &mut p2pnet::EventStream, wait: Duration) -> Option<String> {
    tokio::time::timeout(wait, async {
        loop {
            match events.recv().await {
                Some(NetworkEvent::MessageReceived { text, .. }) => return text,
                Some(_) => {}
                None => std::future::pending::<()>().await,
            }
        }
    })
    .await
    .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovered_peer_waits_for_approval_like_an_inbound_one() {
    let (px, pm) = (free_udp_port(), free_udp_port());
    // X keeps the default policy: peers wait for approval.
    let x = start(local().discovery(unicast(px, &[pm]))).await;
    let mut x_events = x.subscribe();
    // M announces itself to X and accepts whatever connects, but dials no
    // one: every channel between them is one X's discovery opened.
    let m = start(
        local()
            .trust_policy(auto_accept())
            .discovery(unicast(pm, &[px]).auto_connect(false)),
    )
    .await;
    let (x_id, m_id) = (x.local_peer_id(), m.local_peer_id());

    wait_for(
        &mut x_events,
        "X asks about the peer it discovered",
        approval_requested(m_id),
    )
    .await;
    eventually("M's side is open", || m.channel(&x_id).is_some()).await;
    eventually("M's side is open", || {
        m.channel(&x_id)
            .is_some_and(|c| matches!(c.state, p2pnet::proto::ChannelState::Open { .. }))
    })
    .await;
    m.send_message(x_id, "before approval").await.unwrap();
    assert_eq!(
        message_within(&mut x_events, Duration::from_millis(500)).await,
        None,
        "nothing a discovered peer sends reaches the application before approval"
    );
    x.approve(m_id, None).await.unwrap();
    assert_eq!(
        message_within(&mut x_events, common::WAIT).await.as_deref(),
        Some("before approval"),
        "held, then delivered on approval"
    );
    assert!(x.known_peer(&m_id).unwrap().approved);
    // Why it is connected, for a doctor: how discovery hears it, how the
    // last dial went.
    let heard = x.discovery_status().unwrap().heard_peers;
    assert!(
        heard
            .iter()
            .any(|h| h.peer_id == m_id && h.via == p2pnet::DiscoveryVia::Unicast),
        "{heard:?}"
    );
    let dials = x.known_peer(&m_id).unwrap().last_dials;
    assert_eq!(
        dials.last().map(|d| d.error.clone()),
        Some(None),
        "{dials:?}"
    );

    // remove_peer forgets the approval: the peer must ask again. (Its
    // channel closes; discovery may dial it again at once, so the close is
    // awaited as an event, not as an empty table.)
    assert!(x.remove_peer(m_id).await);
    wait_for(&mut x_events, "the channel closes", |e| match e {
        NetworkEvent::ChannelClosed { peer, .. } if *peer == Some(m_id) => Some(()),
        _ => None,
    })
    .await;
    assert!(x.known_peer(&m_id).is_none_or(|k| !k.approved));
    m.connect(addr(&x)).await.unwrap();
    wait_for(
        &mut x_events,
        "a fresh approval request",
        approval_requested(m_id),
    )
    .await;

    // A rejection lasts: discovery does not dial the peer again.
    x.reject(m_id).await.unwrap();
    eventually("the channel is gone", || x.channel(&m_id).is_none()).await;
    assert!(x.known_peer(&m_id).unwrap().rejected);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        x.channel(&m_id).is_none(),
        "discovery dialled a rejected peer"
    );
    let closed = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    x.connect_to(m_id, closed).await.unwrap_err();
    let last = x.known_peer(&m_id).unwrap().last_dials.pop().unwrap();
    assert_eq!(last.addr, closed);
    assert!(
        last.error.is_some_and(|e| e.contains("refused")),
        "a failed dial says why"
    );
    x.shutdown().await;
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_announces_cannot_aim_dials_at_a_victim() {
    // The victim: a TCP service that counts connections.
    let victim = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let victim_port = victim.local_addr().unwrap().port();
    let dials = Arc::new(AtomicUsize::new(0));
    let counter = dials.clone();
    let accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = victim.accept().await {
            counter.fetch_add(1, Ordering::Relaxed);
            held.push(stream);
        }
    });
    let px = free_udp_port();
    let node = start(
        PeerNetwork::builder()
            .listen_ip("127.0.0.1".parse().unwrap())
            .discovery(unicast(px, &[])),
    )
    .await;
    // 40 announces under 40 ids, each claiming to listen on the victim's
    // port: an attacker on the link needs no key to send them.
    let network = ChannelConfig::default().network;
    let forger = UdpSocket::bind("127.0.0.1:0").unwrap();
    for n in 0..40u64 {
        let announce = Announce {
            reply: false,
            solicit: false,
            peer_id: Keypair::generate(&mut rand::rng()).peer_id(),
            instance: n,
            ports: vec![victim_port],
            addresses: vec!["127.0.0.1".parse().unwrap()],
        };
        let datagram = announce.encode(&network).unwrap();
        forger
            .send_to(&datagram, SocketAddr::from(([127, 0, 0, 1], px)))
            .unwrap();
    }
    eventually("the node heard the forged peers", || {
        node.discovery_status().unwrap().heard.len() >= 40
    })
    .await;
    // Long enough for every dial grace and backoff-free first dial.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let made = dials.load(Ordering::Relaxed);
    eprintln!("dials that reached the victim: {made}");
    assert!(
        made <= 4,
        "{made} dials reached the victim; at most the per-target budget (4) may"
    );
    node.shutdown().await;
    accepting.abort();
}

/// Opens `n` TCP connections to `to` from source address `from` that never
/// say a word.
async fn silent_connections(from: &str, to: SocketAddr, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        let socket = TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::new(from.parse().unwrap(), 0))
            .unwrap();
        if let Ok(stream) = socket.connect(to).await {
            held.push(stream);
        }
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_hold_every_pending_slot() {
    let bob = start(local()).await;
    let alice = start(local()).await;
    // Alice is approved once.
    let (alice_id, bob_id) = common::link(&alice, &bob).await;
    alice.disconnect(bob_id).await.unwrap();
    eventually("closed", || bob.channel(&alice_id).is_none()).await;
    let mut bob_events = bob.subscribe();

    // A stranger on another address opens 80 connections that never
    // handshake: more than every pending slot bob has.
    let held = silent_connections("127.0.0.2", addr(&bob), 80).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = bob.channels().len();
    assert!(
        waiting <= 8,
        "one source holds {waiting} handshake slots (per-source bound 8)"
    );

    // The approved peer still gets in, and opens without asking.
    alice.connect(addr(&bob)).await.unwrap();
    wait_for(&mut bob_events, "alice's channel opens", |e| match e {
        NetworkEvent::ChannelOpened { peer, .. } if *peer == alice_id => Some(()),
        NetworkEvent::ApprovalRequested { peer, .. } if *peer == alice_id => {
            panic!("an approved peer was asked again")
        }
        _ => None,
    })
    .await;
    drop(held);
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_waits_are_bounded_and_approved_peers_skip_them() {
    let limits = p2pnet::Limits {
        max_pending: 3,
        ..Default::default()
    };
    let bob = start(local().limits(limits)).await;
    let friend = start(local()).await;
    let (friend_id, bob_id) = common::link(&friend, &bob).await;
    friend.disconnect(bob_id).await.unwrap();
    eventually("closed", || bob.channel(&friend_id).is_none()).await;
    let mut bob_events = bob.subscribe();

    // Five strangers complete handshakes and wait: three fit.
    let mut strangers = Vec::new();
    for _ in 0..5 {
        let stranger = start(local()).await;
        let _ = stranger.connect(addr(&bob)).await;
        strangers.push(stranger);
    }
    eventually("three strangers wait", || {
        bob.channels()
            .iter()
            .filter(|c| c.state == p2pnet::proto::ChannelState::PendingApproval)
            .count()
            == 3
    })
    .await;
    // The approved friend does not need a slot.
    friend.connect(addr(&bob)).await.unwrap();
    wait_for(&mut bob_events, "the friend's channel opens", |e| match e {
        NetworkEvent::ChannelOpened { peer, .. } if *peer == friend_id => Some(()),
        NetworkEvent::ApprovalRequested { peer, .. } if *peer == friend_id => {
            panic!("an approved peer was asked again")
        }
        _ => None,
    })
    .await;
    for s in strangers {
        s.shutdown().await;
    }
    friend.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_holds_a_bounded_number_of_event_bytes() {
    let alice = start(local()).await;
    let bob = start(local()).await;
    let (alice_id, bob_id) = common::link(&alice, &bob).await;
    bob.elevate(alice_id).await.unwrap();
    alice.elevate(bob_id).await.unwrap();
    eventually("elevated both ways", || {
        common::is_elevated(&alice, &bob_id) && common::is_elevated(&bob, &alice_id)
    })
    .await;
    let mut slow = bob.subscribe();
    let mut reader = bob.subscribe();
    // 48 MiB of data in 64 KiB payloads: 768 events, under the default
    // count bound (1,024) but three times the default byte bound (16 MiB).
    const PAYLOAD: usize = 64 * 1024;
    const COUNT: usize = 768;
    let sending = {
        let alice = alice.clone();
        tokio::spawn(async move {
            for _ in 0..COUNT {
                let payload = Payload::new(vec![7; PAYLOAD]);
                alice
                    .send(bob_id, DataTransmission::MiscData(payload))
                    .await
                    .unwrap();
            }
        })
    };
    let mut received = 0;
    while received < COUNT {
        match tokio::time::timeout(common::WAIT, reader.recv()).await {
            Ok(Some(NetworkEvent::DataReceived { .. })) => received += 1,
            Ok(Some(_)) => {}
            other => panic!("reader stopped after {received}: {other:?}"),
        }
    }
    sending.await.unwrap();
    let Some(NetworkEvent::EventsLost { count }) = slow.try_recv() else {
        panic!("the slow subscriber lost nothing: it holds all 48 MiB");
    };
    let mut held_bytes = 0;
    while let Some(event) = slow.try_recv() {
        if let NetworkEvent::DataReceived { data, .. } = event {
            held_bytes += data.len();
        }
    }
    assert!(count > 0);
    assert!(
        held_bytes <= 16 << 20,
        "the slow subscriber held {held_bytes} bytes"
    );
    alice.shutdown().await;
    bob.shutdown().await;
}
