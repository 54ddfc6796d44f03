//! Time-based behaviour at the real defaults, on tokio's paused clock:
//! keepalive, the handshake timeout, the approval timeout, the idle
//! timeout, reconnect backoff and routine intervals. Sockets are real
//! (loopback); only time is virtual, so minutes pass in milliseconds and
//! the assertions can be exact.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use common::{addr, local, start, wait_for};
use p2pnet::proto::ChannelState;
use p2pnet::proto::packet::DisconnectReason;
use p2pnet::{CloseReason, IncomingPeerTrustPolicy, NetworkEvent};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, sleep};

fn auto_accept() -> IncomingPeerTrustPolicy {
    IncomingPeerTrustPolicy {
        auto_accept: true,
        ..IncomingPeerTrustPolicy::default()
    }
}

fn is_open(state: ChannelState) -> bool {
    matches!(state, ChannelState::Open { .. })
}

#[tokio::test(start_paused = true)]
async fn keepalives_hold_an_idle_channel_open_for_ten_minutes() {
    let alice = start(local()).await;
    let bob = start(local().trust_policy(auto_accept())).await;
    let mut events = alice.subscribe();
    let bob_id = alice.connect(addr(&bob)).await.unwrap();
    let alice_id = alice.local_peer_id();
    // Nothing but keepalives for ten minutes: the idle timeout (45 s)
    // would have closed the channel 13 times over without them.
    sleep(Duration::from_secs(600)).await;
    assert!(alice.channel(&bob_id).is_some_and(|c| is_open(c.state)));
    assert!(bob.channel(&alice_id).is_some_and(|c| is_open(c.state)));
    // The keepalives measured the round trip and count as traffic.
    let channel = alice.channel(&bob_id).unwrap();
    assert!(channel.rtt.is_some(), "{channel:?}");
    assert!(
        channel.bytes_sent > 0 && channel.bytes_received > 0,
        "{channel:?}"
    );
    let total = alice.traffic();
    assert!(
        total.bytes_sent >= channel.bytes_sent,
        "{total:?} {channel:?}"
    );
    while let Some(event) = events.try_recv() {
        assert!(
            !matches!(event, NetworkEvent::ChannelClosed { .. }),
            "closed: {event:?}"
        );
    }
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_dropped_at_the_handshake_timeout() {
    let bob = start(local()).await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr(&bob)).await.unwrap();
    common::eventually("the connection is a channel", || bob.channels().len() == 1).await;
    sleep(Duration::from_millis(9_900).saturating_sub(started.elapsed())).await;
    assert_eq!(
        bob.channels().len(),
        1,
        "still within the 10 s handshake timeout"
    );
    sleep(Duration::from_millis(200)).await;
    let mut buf = [0u8; 64];
    // The responder wrote nothing; it closes at the timeout.
    let n = tokio::time::timeout(Duration::from_secs(1), silent.read(&mut buf))
        .await
        .expect("closed by then")
        .unwrap_or(0);
    assert_eq!(n, 0, "the responder says nothing to a silent initiator");
    common::eventually("the channel is gone", || bob.channels().is_empty()).await;
    assert!(started.elapsed() < Duration::from_secs(11));
    bob.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_approval_times_out_after_five_minutes() {
    let alice = start(local()).await;
    let bob = start(local()).await;
    let mut alice_events = alice.subscribe();
    let bob_id = alice.connect(addr(&bob)).await.unwrap();
    let alice_id = alice.local_peer_id();
    let asked = Instant::now();
    sleep(Duration::from_secs(299)).await;
    assert_eq!(
        bob.channel(&alice_id).map(|c| c.state),
        Some(ChannelState::PendingApproval),
        "still waiting just before the approval timeout"
    );
    let reason = wait_for(&mut alice_events, "the timeout's rejection", |e| match e {
        NetworkEvent::ChannelClosed {
            peer: Some(p),
            reason: CloseReason::Disconnect(d),
            ..
        } if *p == bob_id => Some(d.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason.reason, DisconnectReason::Rejected);
    assert_eq!(reason.message.as_deref(), Some("approval timed out"));
    // The approval timeout (300 s), checked every discern interval (10 s).
    let waited = asked.elapsed();
    assert!(
        (Duration::from_secs(300)..=Duration::from_secs(311)).contains(&waited),
        "rejected after {waited:?}"
    );
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_idle_channel_closes_after_the_idle_timeout_whatever_the_keepalives() {
    let bob = start(
        local()
            .trust_policy(auto_accept())
            .idle_channel_timeout(Some(Duration::from_secs(60))),
    )
    .await;
    let alice = start(local()).await;
    let mut alice_events = alice.subscribe();
    let bob_id = alice.connect(addr(&bob)).await.unwrap();
    let opened = Instant::now();
    sleep(Duration::from_secs(59)).await;
    assert!(alice.channel(&bob_id).is_some_and(|c| is_open(c.state)));
    // A message resets the clock.
    alice.send_message(bob_id, "still here").await.unwrap();
    let reset = Instant::now();
    sleep(Duration::from_secs(59)).await;
    assert!(
        alice.channel(&bob_id).is_some_and(|c| is_open(c.state)),
        "a message restarts the idle clock"
    );
    let reason = wait_for(&mut alice_events, "the idle close", |e| match e {
        NetworkEvent::ChannelClosed {
            reason: CloseReason::Disconnect(d),
            ..
        } => Some(d.reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::IdleTimeout);
    let idle = reset.elapsed();
    assert!(
        (Duration::from_secs(60)..=Duration::from_secs(71)).contains(&idle),
        "closed {idle:?} after the last message ({:?} after opening)",
        opened.elapsed()
    );
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn reconnects_back_off_exponentially_up_to_the_maximum() {
    let bob = start(local().trust_policy(auto_accept())).await;
    let alice = start(local()).await;
    let bob_addr = addr(&bob);
    let bob_id = alice.add_peer(bob_addr).await.unwrap();
    bob.shutdown().await;
    // Bob's address now answers and hangs up: every reconnect attempt is
    // a connection we can count.
    let impostor = TcpListener::bind(bob_addr).await.unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    let counting = tokio::spawn(async move {
        while let Ok((stream, _)) = impostor.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    sleep(Duration::from_secs(2)).await;
    let early = attempts.load(Ordering::SeqCst);
    sleep(Duration::from_secs(598)).await;
    let total = attempts.load(Ordering::SeqCst);
    // Delays are drawn in [250 ms, 250 ms x 2^(n+1)], capped at 60 s: at
    // most 3 attempts fit in the first 2 s (0.25 + 0.25 + 0.25 ... only
    // with the unlikeliest draws), and ten minutes hold about twenty.
    assert!(
        (1..=8).contains(&early),
        "{early} attempts in the first 2 s"
    );
    assert!(
        (8..=80).contains(&total),
        "{total} attempts in ten minutes (no backoff would make thousands)"
    );
    assert!(alice.known_peer(&bob_id).unwrap().persistent);
    alice.shutdown().await;
    counting.abort();
}

#[tokio::test(start_paused = true)]
async fn routines_run_at_start_then_every_interval() {
    let network = start(local()).await;
    let routines = network.routines();
    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    routines
        .add("count", Duration::from_secs(30), move |_network| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .unwrap();
    routines.start("count").unwrap();
    sleep(Duration::from_secs(95)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 4, "at 0, 30, 60 and 90 s");
    // A new interval applies after one new interval.
    routines
        .set_interval("count", Duration::from_secs(10))
        .unwrap();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    sleep(Duration::from_secs(10)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 5);
    sleep(Duration::from_secs(20)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 7);
    routines.stop("count").unwrap();
    sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        7,
        "a stopped routine does not run"
    );
    assert!(!routines.get("count").unwrap().running);
    network.shutdown().await;
}
