//! The discovery machine on a virtual clock: schedule, answers, bounds,
//! expiry.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::*;

const NET: &str = "p2pnet";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn at(millis: u64) -> Instant {
    Instant::from_duration(ms(millis))
}

fn announce(id: u8, instance: u64) -> Announce {
    Announce {
        reply: false,
        solicit: false,
        peer_id: PeerId::from_bytes([id; 32]),
        instance,
        ports: vec![4000 + u16::from(id)],
        addresses: vec![IpAddr::from([0, 0, 0, 0])],
    }
}

fn source(id: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, id], 50_000))
}

fn machine(id: u8, params: DiscoveryParams) -> Discovery {
    Discovery::new(NET, announce(id, u64::from(id)), params, Instant::ZERO, 7).unwrap()
}

fn no_jitter() -> DiscoveryParams {
    DiscoveryParams {
        jitter_percent: 0,
        ..DiscoveryParams::default()
    }
}

/// Every announce sent until `until`, as (time, solicit).
fn announces_until(m: &mut Discovery, until: u64) -> Vec<(u64, bool)> {
    let mut sent = Vec::new();
    let mut now = 0;
    while now <= until {
        while let Some(t) = m.poll_transmit(at(now)) {
            assert_eq!(t.to, Destination::Everywhere);
            let decoded = Announce::decode(&t.payload, NET).unwrap();
            sent.push((now, decoded.solicit));
        }
        now += 50;
    }
    sent
}

#[test]
fn announces_fast_then_quiet_and_solicits_only_at_first() {
    let mut m = machine(1, no_jitter());
    let sent = announces_until(&mut m, 120_000);
    let times: Vec<u64> = sent.iter().map(|(t, _)| *t).collect();
    // 0, +250, +500, +1 s, +2, +4, +8, +16 (fast, doubling below 30 s),
    // then every 30 s.
    assert_eq!(
        times,
        vec![
            0, 250, 750, 1750, 3750, 7750, 15_750, 31_750, 61_750, 91_750
        ]
    );
    let solicits = sent.iter().filter(|(_, s)| *s).count();
    assert_eq!(solicits, SOLICITING_ANNOUNCES as usize);
    assert!(sent[..3].iter().all(|(_, s)| *s));
    assert_eq!(m.stats().announces_sent, 10);
}

#[test]
fn a_settled_node_announces_less_and_wakes_when_a_peer_is_lost() {
    let mut m = machine(1, no_jitter());
    announces_until(&mut m, 31_750);
    m.set_settled(true, at(31_800));
    // The interval chosen at 31.75 s was still the quiet one.
    assert!(m.poll_transmit(at(61_749)).is_none());
    assert!(m.poll_transmit(at(61_750)).is_some());
    // Now 60 s.
    assert!(m.poll_transmit(at(121_749)).is_none());
    m.set_settled(false, at(70_000));
    // Back to at most the quiet interval from the moment it unsettled.
    assert!(m.poll_transmit(at(99_999)).is_none());
    assert!(m.poll_transmit(at(100_000)).is_some());
}

#[test]
fn jitter_stays_in_bounds_and_depends_on_the_seed() {
    let params = DiscoveryParams {
        jitter_percent: 20,
        ..DiscoveryParams::default()
    };
    let intervals = |seed| {
        let mut m =
            Discovery::new(NET, announce(1, 1), params.clone(), Instant::ZERO, seed).unwrap();
        let mut last = 0u64;
        let mut out = Vec::new();
        for now in (0..600_000).step_by(10) {
            if m.poll_transmit(at(now)).is_some() {
                out.push(now - last);
                last = now;
            }
        }
        out
    };
    let a = intervals(1);
    let b = intervals(2);
    assert_ne!(a, b);
    // Quiet-phase intervals: 30 s ± 20 %.
    for gap in a.iter().skip(9) {
        assert!((24_000..=36_010).contains(gap), "{gap} ms");
    }
    assert_eq!(a, intervals(1), "same seed, same schedule");
}

#[test]
fn two_nodes_learn_each_other_in_one_exchange() {
    let mut a = machine(1, no_jitter());
    let mut b = machine(2, no_jitter());
    let from_a = a.poll_transmit(Instant::ZERO).unwrap();
    let heard = b
        .on_datagram(
            at(1),
            &from_a.payload,
            source(1),
            DiscoveryVia::Broadcast,
            true,
        )
        .unwrap()
        .unwrap();
    assert!(heard.new && !heard.restarted);
    assert_eq!(heard.peer.peer_id, PeerId::from_bytes([1; 32]));
    assert_eq!(heard.peer.via, DiscoveryVia::Broadcast);
    // The unspecified address became the source; the port is the announced one.
    assert_eq!(
        heard.peer.candidates().collect::<Vec<_>>(),
        vec![SocketAddr::from(([10, 0, 0, 1], 4001))]
    );
    // B answers at once, by unicast, before its own announce.
    let reply = b.poll_transmit(at(1)).unwrap();
    assert_eq!(reply.to, Destination::Unicast(source(1)));
    let decoded = Announce::decode(&reply.payload, NET).unwrap();
    assert!(decoded.reply && !decoded.solicit);
    let back = a
        .on_datagram(
            at(2),
            &reply.payload,
            source(2),
            DiscoveryVia::Unicast,
            true,
        )
        .unwrap()
        .unwrap();
    assert!(back.new);
    assert_eq!(back.peer.via, DiscoveryVia::Unicast);
    // A reply is never answered: no ping-pong.
    assert_eq!(a.poll_timeout(), at(250));
    assert_eq!(a.stats().replies_sent, 0);
}

#[test]
fn known_peers_are_answered_only_when_they_solicit_and_not_too_often() {
    let mut b = machine(2, no_jitter());
    let mut quiet = announce(1, 1);
    let first = quiet.encode(NET).unwrap();
    b.on_datagram(at(0), &first, source(1), DiscoveryVia::Broadcast, true)
        .unwrap();
    assert!(matches!(
        b.poll_transmit(at(0)).map(|t| t.to),
        Some(Destination::Unicast(_))
    ));
    // A plain announce from a known peer: no answer.
    b.on_datagram(at(10), &first, source(1), DiscoveryVia::Broadcast, true)
        .unwrap();
    quiet.solicit = true;
    let soliciting = quiet.encode(NET).unwrap();
    // A solicitation within the reply interval: no answer either.
    b.on_datagram(
        at(500),
        &soliciting,
        source(1),
        DiscoveryVia::Broadcast,
        true,
    )
    .unwrap();
    assert_eq!(b.stats().replies_sent, 1);
    assert!(
        b.poll_transmit(at(500))
            .is_none_or(|t| t.to == Destination::Everywhere)
    );
    // After it: answered.
    b.on_datagram(
        at(1_000),
        &soliciting,
        source(1),
        DiscoveryVia::Multicast,
        true,
    )
    .unwrap();
    assert_eq!(
        b.poll_transmit(at(1_000)).map(|t| t.to),
        Some(Destination::Unicast(source(1)))
    );
}

#[test]
fn a_restart_is_reported_and_answered() {
    let mut b = machine(2, no_jitter());
    let before = announce(1, 1).encode(NET).unwrap();
    let after = announce(1, 2).encode(NET).unwrap();
    b.on_datagram(at(0), &before, source(1), DiscoveryVia::Broadcast, true)
        .unwrap();
    b.poll_transmit(at(0));
    let event = b
        .on_datagram(at(5_000), &after, source(1), DiscoveryVia::Broadcast, true)
        .unwrap()
        .unwrap();
    assert!(event.restarted && !event.new);
    assert_eq!(event.peer.instance, 2);
    assert_eq!(
        b.poll_transmit(at(5_000)).map(|t| t.to),
        Some(Destination::Unicast(source(1)))
    );
}

#[test]
fn own_announces_are_ignored_and_a_clash_is_counted() {
    let mut a = machine(1, no_jitter());
    let own = a.poll_transmit(Instant::ZERO).unwrap();
    assert_eq!(
        a.on_datagram(
            at(1),
            &own.payload,
            source(1),
            DiscoveryVia::Broadcast,
            true
        ),
        Ok(None)
    );
    let twin = announce(1, 99).encode(NET).unwrap();
    assert_eq!(
        a.on_datagram(at(2), &twin, source(9), DiscoveryVia::Broadcast, true),
        Ok(None)
    );
    assert_eq!(a.peers().count(), 0);
    let stats = a.stats();
    assert_eq!((stats.own, stats.identity_clashes), (2, 1));
    assert_eq!(a.poll_transmit(at(2)), None, "nothing answered");
}

#[test]
fn garbage_is_counted_by_kind_and_changes_nothing() {
    let mut a = machine(1, no_jitter());
    a.poll_transmit(Instant::ZERO);
    let valid = announce(2, 2).encode(NET).unwrap();
    let inputs: Vec<Vec<u8>> = vec![
        b"M-SEARCH * HTTP/1.1".to_vec(),
        announce(2, 2).encode("another network").unwrap(),
        valid[..valid.len() - 1].to_vec(),
        [valid.as_slice(), &[0]].concat(),
        vec![0; 4096],
        Vec::new(),
    ];
    for input in &inputs {
        assert!(
            a.on_datagram(at(5), input, source(2), DiscoveryVia::Broadcast, true)
                .is_err()
        );
    }
    let stats = a.stats();
    assert_eq!(stats.foreign, 3);
    assert_eq!(stats.other_network, 1);
    assert_eq!(stats.malformed, 2);
    assert_eq!(stats.garbage(), 6);
    assert_eq!(stats.accepted, 0);
    assert_eq!(a.peers().count(), 0);
    assert_eq!(a.poll_transmit(at(5)), None);
    // Discovery goes on.
    assert!(
        a.on_datagram(at(6), &valid, source(2), DiscoveryVia::Broadcast, true)
            .unwrap()
            .is_some()
    );
}

#[test]
fn replies_are_rate_limited_overall() {
    let mut b = machine(
        2,
        DiscoveryParams {
            replies_per_second: 10,
            max_peers: 10_000,
            ..no_jitter()
        },
    );
    b.poll_transmit(Instant::ZERO);
    // 1000 "new peers" (spoofable) in one instant.
    for i in 0..1000u32 {
        let mut a = announce(0, 0);
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&i.to_be_bytes());
        id[31] = 1;
        a.peer_id = PeerId::from_bytes(id);
        b.on_datagram(
            at(1),
            &a.encode(NET).unwrap(),
            source(3),
            DiscoveryVia::Broadcast,
            true,
        )
        .unwrap();
    }
    let mut replies = 0;
    while let Some(t) = b.poll_transmit(at(1)) {
        if matches!(t.to, Destination::Unicast(_)) {
            replies += 1;
        }
    }
    assert_eq!(replies, 10, "a burst of one second's worth");
    assert_eq!(b.stats().replies_suppressed, 990);
    // The bucket refills at the configured rate.
    let mut a = announce(0, 0);
    a.peer_id = PeerId::from_bytes([0xee; 32]);
    b.on_datagram(
        at(101),
        &a.encode(NET).unwrap(),
        source(4),
        DiscoveryVia::Broadcast,
        true,
    )
    .unwrap();
    assert_eq!(
        b.poll_transmit(at(101)).map(|t| t.to),
        Some(Destination::Unicast(source(4)))
    );
}

#[test]
fn the_table_is_bounded_and_evicts_the_least_recently_heard() {
    let mut b = machine(
        9,
        DiscoveryParams {
            max_peers: 3,
            ..no_jitter()
        },
    );
    for (i, id) in [1u8, 2, 3].into_iter().enumerate() {
        b.on_datagram(
            at(i as u64),
            &announce(id, 1).encode(NET).unwrap(),
            source(id),
            DiscoveryVia::Broadcast,
            true,
        )
        .unwrap();
    }
    // Refresh 1, so 2 is the oldest.
    b.on_datagram(
        at(10),
        &announce(1, 1).encode(NET).unwrap(),
        source(1),
        DiscoveryVia::Broadcast,
        true,
    )
    .unwrap();
    b.on_datagram(
        at(11),
        &announce(4, 1).encode(NET).unwrap(),
        source(4),
        DiscoveryVia::Broadcast,
        true,
    )
    .unwrap();
    let mut ids: Vec<u8> = b.peers().map(|p| p.peer_id.as_bytes()[0]).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 3, 4]);
    assert_eq!(b.stats().evicted, 1);
}

#[test]
fn silent_peers_expire_after_the_ttl_and_heard_ones_do_not() {
    let params = no_jitter();
    let ttl = params.peer_ttl;
    let mut b = machine(9, params);
    let one = announce(1, 1).encode(NET).unwrap();
    let two = announce(2, 2).encode(NET).unwrap();
    b.on_datagram(at(0), &one, source(1), DiscoveryVia::Broadcast, true)
        .unwrap();
    b.on_datagram(at(0), &two, source(2), DiscoveryVia::Broadcast, true)
        .unwrap();
    b.on_datagram(at(60_000), &two, source(2), DiscoveryVia::Broadcast, true)
        .unwrap();
    let first_expiry = Instant::ZERO + ttl;
    assert!(b.expire(at(ttl.as_millis() as u64 - 1)).is_empty());
    assert_eq!(b.expire(first_expiry), vec![PeerId::from_bytes([1; 32])]);
    assert_eq!(b.peers().count(), 1);
    assert_eq!(b.stats().expired, 1);
    // Heard again later: new again.
    let event = b
        .on_datagram(
            first_expiry + ms(5),
            &one,
            source(1),
            DiscoveryVia::Broadcast,
            true,
        )
        .unwrap()
        .unwrap();
    assert!(event.new);
}

#[test]
fn an_address_change_restarts_the_fast_phase() {
    let mut m = machine(1, no_jitter());
    announces_until(&mut m, 100_000);
    m.set_local(vec![4001], vec!["10.0.0.1".parse().unwrap()], at(100_000))
        .unwrap();
    let t = m.poll_transmit(at(100_000)).unwrap();
    let decoded = Announce::decode(&t.payload, NET).unwrap();
    assert!(decoded.solicit);
    assert_eq!(
        decoded.addresses,
        vec!["10.0.0.1".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(m.poll_timeout(), at(100_250));
    // The same addresses again: no restart.
    m.poll_transmit(at(100_250));
    m.set_local(vec![4001], vec!["10.0.0.1".parse().unwrap()], at(100_300))
        .unwrap();
    assert_eq!(m.poll_timeout(), at(100_750));
    assert!(m.set_local(vec![], vec![], at(100_400)).is_err());
}

#[test]
fn inconsistent_parameters_are_refused_with_the_field_named() {
    let bad = [
        DiscoveryParams {
            first_repeat: Duration::ZERO,
            ..DiscoveryParams::default()
        },
        DiscoveryParams {
            jitter_percent: 80,
            ..DiscoveryParams::default()
        },
        DiscoveryParams {
            peer_ttl: Duration::from_secs(10),
            ..DiscoveryParams::default()
        },
        DiscoveryParams {
            replies_per_second: 0,
            ..DiscoveryParams::default()
        },
    ];
    for params in bad {
        let err = Discovery::new(NET, announce(1, 1), params, Instant::ZERO, 0).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
    }
}

#[test]
fn a_reply_is_never_larger_than_what_it_answers() {
    let mut big = Announce {
        ports: vec![4000, 4001, 4002, 4003],
        addresses: (1..=8)
            .map(|i| IpAddr::from([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, i]))
            .collect(),
        ..announce(9, 9)
    };
    big.solicit = false;
    let mut b = Discovery::new(NET, big, no_jitter(), Instant::ZERO, 1).unwrap();
    b.poll_transmit(Instant::ZERO);
    let mut small = announce(1, 1);
    small.addresses.clear();
    let request = small.encode(NET).unwrap();
    b.on_datagram(at(1), &request, source(1), DiscoveryVia::Broadcast, true)
        .unwrap();
    let reply = b.poll_transmit(at(1)).unwrap();
    assert!(
        reply.payload.len() <= request.len(),
        "{} > {}",
        reply.payload.len(),
        request.len()
    );
    let decoded = Announce::decode(&reply.payload, NET).unwrap();
    assert!(decoded.reply && decoded.addresses.is_empty());
    assert_eq!(decoded.ports, vec![4000]);
    // A request with room gets every address.
    let roomy = announce(2, 2);
    let mut roomy_bytes = roomy.clone();
    roomy_bytes.addresses = vec![IpAddr::from([0u8; 16]); 8];
    roomy_bytes.ports = vec![1, 2, 3, 4];
    let roomy_bytes = roomy_bytes.encode(NET).unwrap();
    b.on_datagram(
        at(2),
        &roomy_bytes,
        source(2),
        DiscoveryVia::Broadcast,
        true,
    )
    .unwrap();
    let full = Announce::decode(&b.poll_transmit(at(2)).unwrap().payload, NET).unwrap();
    assert_eq!(full.addresses.len(), 8);
}

#[test]
fn a_refused_announce_is_counted_and_changes_nothing() {
    let mut b = machine(2, no_jitter());
    b.poll_transmit(Instant::ZERO);
    let datagram = announce(1, 1).encode(NET).unwrap();
    let outcome = b.on_datagram_admitting(
        at(1),
        &datagram,
        source(1),
        DiscoveryVia::Broadcast,
        true,
        |a| a.peer_id != PeerId::from_bytes([1; 32]),
    );
    assert_eq!(outcome, Ok(None));
    assert_eq!(b.peers().count(), 0);
    assert_eq!(b.poll_transmit(at(1)), None, "not answered");
    assert_eq!((b.stats().denied, b.stats().accepted), (1, 0));
}

#[test]
fn no_reply_where_the_runtime_forbids_it() {
    let mut b = machine(2, no_jitter());
    b.poll_transmit(Instant::ZERO);
    let event = b
        .on_datagram(
            at(1),
            &announce(1, 1).encode(NET).unwrap(),
            source(1),
            DiscoveryVia::Broadcast,
            false,
        )
        .unwrap()
        .unwrap();
    assert!(event.new, "the peer is still recorded");
    assert_eq!(b.poll_transmit(at(1)), None);
    assert_eq!(b.stats().replies_sent, 0);
}

#[test]
fn evicted_peers_are_reported_once() {
    let mut b = machine(
        9,
        DiscoveryParams {
            max_peers: 1,
            ..no_jitter()
        },
    );
    for id in [1u8, 2] {
        b.on_datagram(
            at(u64::from(id)),
            &announce(id, 1).encode(NET).unwrap(),
            source(id),
            DiscoveryVia::Broadcast,
            true,
        )
        .unwrap();
    }
    assert_eq!(b.expire(at(3)), vec![PeerId::from_bytes([1; 32])]);
    assert!(b.expire(at(4)).is_empty());
}
