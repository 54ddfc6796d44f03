//! Grants on a live channel: scopes packet by packet, expiry on the virtual
//! clock, revocation, the revocation grace, and transfer wind-downs.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::util::{Pair, grants};
use crate::packet::{
    CollectionShare, ContentHash, DataTransmission, FileCancel, FileChunk, FileMessage, FileName,
    FileOffer, FileReject, Identifier, Payload, PureMessage, TransferId,
};
use crate::{
    ChannelConfig, ChannelEvent, ChannelState, CloseReason, Error, Grant, GrantId, Grants, Instant,
    Packet, PacketKind, PeerId, Permissions, ProtocolViolation, REVOCATION_GRACE, RefuseReason,
    Scopes,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn misc(data: &[u8]) -> Packet {
    DataTransmission::MiscData(Payload::new(data.to_vec())).into()
}

fn file(message: FileMessage) -> Packet {
    DataTransmission::File(message).into()
}

fn cancel() -> Packet {
    file(FileMessage::Cancel(FileCancel {
        transfer_id: TransferId(9),
        reason: Some("grant revoked".into()),
    }))
}

fn reject() -> Packet {
    file(FileMessage::Reject(FileReject {
        transfer_id: TransferId(9),
        reason: "no".into(),
    }))
}

/// One packet of every application kind a sender `id` can send, each with
/// the one scope it needs (`None`: it passes whatever the grants).
fn every_packet(id: PeerId) -> Vec<(Packet, Option<Scopes>)> {
    vec![
        (PureMessage::new("text").into(), Some(Scopes::MESSAGE)),
        (misc(b"data"), Some(Scopes::DATA)),
        (
            DataTransmission::Task(Payload::labelled("job", vec![1])).into(),
            Some(Scopes::TASK),
        ),
        (
            file(FileMessage::Offer(FileOffer {
                transfer_id: TransferId(9),
                name: FileName::new("f.bin").unwrap(),
                size: 4,
                chunk_size: 4,
                hash: ContentHash::of(b"abcd"),
            })),
            Some(Scopes::FILE),
        ),
        (
            file(FileMessage::Chunk(FileChunk {
                transfer_id: TransferId(9),
                offset: 0,
                data: b"abcd".to_vec(),
            })),
            Some(Scopes::FILE),
        ),
        (cancel(), None),
        (reject(), None),
        (
            Identifier {
                peer_id: id,
                listening_port: 4000,
                addresses: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))],
            }
            .into(),
            Some(Scopes::PEER_LIST),
        ),
        (
            CollectionShare { peers: vec![] }.into(),
            Some(Scopes::PEER_LIST),
        ),
    ]
}

fn refusals(events: &[ChannelEvent], reason: RefuseReason) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, ChannelEvent::PacketRefused { reason: r, .. } if *r == reason))
        .count()
}

#[test]
fn each_scope_admits_exactly_its_packets() {
    let granted = [
        Scopes::NONE,
        Scopes::MESSAGE,
        Scopes::DATA,
        Scopes::TASK,
        Scopes::FILE,
        Scopes::PEER_LIST,
        Scopes::ALL,
    ];
    for (seed, scopes) in (100..).zip(granted) {
        let mut pair = Pair::new(seed);
        pair.open(Scopes::ALL, scopes);
        let table = every_packet(pair.client.id());
        for (packet, _) in &table {
            pair.client.ch.send(packet.clone()).unwrap();
        }
        pair.drive();

        let admitted: Vec<Packet> = table
            .iter()
            .filter(|(_, needed)| needed.is_none_or(|n| scopes.contains(n)))
            .map(|(p, _)| p.clone())
            .collect();
        assert_eq!(pair.server.packets(), admitted, "granted {scopes}");
        let events = pair.server.events();
        assert_eq!(
            refusals(&events, RefuseReason::NotPermitted),
            table.len() - admitted.len(),
            "granted {scopes}"
        );
        assert_eq!(pair.server.ch.state(), ChannelState::Open { scopes });

        // The send gate applies the same rule to what the server sends.
        let table = every_packet(pair.server.id());
        for (packet, needed) in table {
            let expected = match needed {
                Some(n) if !scopes.contains(n) => Err(Error::NotPermitted(packet.kind())),
                _ => Ok(()),
            };
            assert_eq!(
                pair.server.ch.send(packet.clone()),
                expected,
                "granted {scopes}, sending {packet:?}"
            );
        }
    }
}

#[test]
fn a_grant_expires_at_exactly_its_instant() {
    let mut pair = Pair::new(110);
    pair.open(Scopes::ALL, Scopes::NONE);
    let t0 = pair.now;
    let expiry = t0 + Duration::from_secs(10);
    let mut server = grants(Scopes::MESSAGE);
    server
        .insert(Grant::new(GrantId(2), Scopes::DATA | Scopes::FILE).with_expiry(expiry))
        .unwrap();
    pair.server.ch.set_grants(t0, server).unwrap();
    // The expiry comes before the keepalive (15 s) and idle (45 s) timers.
    assert_eq!(pair.server.ch.poll_timeout(), Some(expiry));

    pair.advance(Duration::from_secs(10) - ms(1));
    pair.client.ch.send(misc(b"just in time")).unwrap();
    pair.drive();
    assert_eq!(pair.server.packets(), vec![misc(b"just in time")]);
    assert_eq!(
        pair.server.ch.permissions(),
        Some(Permissions {
            scopes: Scopes::MESSAGE | Scopes::DATA | Scopes::FILE,
            max_file_size: None
        })
    );

    pair.advance(Duration::from_secs(10));
    let expired = ChannelEvent::GrantsExpired {
        expired: vec![GrantId(2)],
        scopes: Scopes::MESSAGE,
    };
    assert_eq!(pair.server.time_of(|e| *e == expired), Some(expiry));
    assert_eq!(
        pair.server.ch.state(),
        ChannelState::Open {
            scopes: Scopes::MESSAGE
        }
    );
    assert_eq!(pair.server.ch.grants(), Some(&grants(Scopes::MESSAGE)));
    assert_eq!(
        pair.server.ch.send(misc(b"too late")),
        Err(Error::NotPermitted(PacketKind::DataTransmission))
    );
    // Nothing else expires: back to the keepalive timers.
    assert!(pair.server.ch.poll_timeout().is_some_and(|t| t > pair.now));
}

#[test]
fn renewing_a_grant_before_it_expires_keeps_its_scopes() {
    let mut pair = Pair::new(111);
    pair.open(Scopes::ALL, Scopes::NONE);
    let t0 = pair.now;
    let task = |until| Grants::single(Grant::new(GrantId(5), Scopes::TASK).with_expiry(until));
    pair.server
        .ch
        .set_grants(t0, task(t0 + Duration::from_secs(3)))
        .unwrap();
    pair.advance(Duration::from_secs(2));
    pair.server
        .ch
        .set_grants(pair.now, task(t0 + Duration::from_secs(8)))
        .unwrap();
    assert_eq!(
        pair.server.ch.poll_timeout(),
        Some(t0 + Duration::from_secs(8))
    );
    pair.advance(Duration::from_secs(5));
    assert!(
        !pair
            .server
            .events()
            .iter()
            .any(|e| matches!(e, ChannelEvent::GrantsExpired { .. }))
    );
    pair.advance(Duration::from_secs(2));
    let expired = ChannelEvent::GrantsExpired {
        expired: vec![GrantId(5)],
        scopes: Scopes::NONE,
    };
    assert_eq!(
        pair.server.time_of(|e| *e == expired),
        Some(t0 + Duration::from_secs(8))
    );
}

#[test]
fn grants_already_expired_at_approval_are_reported_at_once() {
    // Pending for 30 s: keepalive traffic moves the server's clock on.
    let mut pair = Pair::new(112);
    pair.advance(Duration::from_secs(30));
    let long_ago = Instant::from_duration(Duration::from_secs(1));
    let mut server = grants(Scopes::MESSAGE);
    server
        .insert(Grant::new(GrantId(2), Scopes::FILE).with_expiry(long_ago))
        .unwrap();
    pair.open_with(grants(Scopes::ALL), server);
    let events = pair.server.events();
    let opened = events
        .iter()
        .position(|e| matches!(e, ChannelEvent::Opened { .. }))
        .unwrap();
    assert_eq!(
        events[opened..opened + 2],
        [
            ChannelEvent::Opened {
                scopes: Scopes::MESSAGE
            },
            ChannelEvent::GrantsExpired {
                expired: vec![GrantId(2)],
                scopes: Scopes::MESSAGE
            },
        ]
    );
}

#[test]
fn live_grants_add_up() {
    let mut pair = Pair::new(113);
    let mut server = Grants::single(Grant::new(GrantId(1), Scopes::MESSAGE));
    server
        .insert(Grant::new(GrantId(2), Scopes::FILE).with_max_file_size(1000))
        .unwrap();
    server
        .insert(
            Grant::new(GrantId(3), Scopes::FILE | Scopes::TASK)
                .with_max_file_size(5000)
                .with_expiry(Instant::from_duration(Duration::from_secs(60))),
        )
        .unwrap();
    pair.open_with(grants(Scopes::ALL), server);
    let union = Scopes::MESSAGE | Scopes::FILE | Scopes::TASK;
    assert_eq!(
        pair.server.events()[2],
        ChannelEvent::Opened { scopes: union }
    );
    assert_eq!(
        pair.server.ch.permissions(),
        Some(Permissions {
            scopes: union,
            max_file_size: Some(5000)
        })
    );
    let table = every_packet(pair.client.id());
    for (packet, _) in &table {
        pair.client.ch.send(packet.clone()).unwrap();
    }
    pair.drive();
    let kinds: Vec<Option<Scopes>> = pair
        .server
        .packets()
        .iter()
        .map(Scopes::for_packet)
        .collect();
    assert_eq!(
        kinds,
        [
            Scopes::MESSAGE,
            Scopes::TASK,
            Scopes::FILE,
            Scopes::FILE,
            Scopes::FILE,
            Scopes::FILE
        ]
        .map(Some)
    );

    // Once the wider FILE grant expires, the smaller cap applies.
    pair.advance(Duration::from_secs(60));
    assert_eq!(
        pair.server.ch.permissions(),
        Some(Permissions {
            scopes: Scopes::MESSAGE | Scopes::FILE,
            max_file_size: Some(1000)
        })
    );
}

#[test]
fn set_grants_revokes_without_an_event() {
    let mut pair = Pair::new(114);
    let mut server = grants(Scopes::MESSAGE);
    server.insert(Grant::new(GrantId(2), Scopes::DATA)).unwrap();
    pair.open_with(grants(Scopes::ALL), server.clone());
    pair.server.ch.send(misc(b"allowed")).unwrap();

    let events_before = pair.server.events.len();
    assert!(server.revoke(GrantId(2)));
    pair.server.ch.set_grants(pair.now, server.clone()).unwrap();
    assert!(pair.server.ch.poll_event().is_none(), "the runtime knows");
    assert_eq!(pair.server.ch.grants(), Some(&server));
    assert_eq!(
        pair.server.ch.send(misc(b"revoked")),
        Err(Error::NotPermitted(PacketKind::DataTransmission))
    );
    pair.drive();
    assert_eq!(pair.client.packets(), vec![misc(b"allowed")]);
    assert_eq!(pair.server.events.len(), events_before);

    // Well after the revocation, the peer's data is an ordinary refusal.
    pair.advance(REVOCATION_GRACE + Duration::from_secs(1));
    pair.client
        .ch
        .send(misc(b"ignored the revocation"))
        .unwrap();
    pair.drive();
    assert!(pair.server.packets().is_empty());
    assert_eq!(
        refusals(&pair.server.events(), RefuseReason::NotPermitted),
        1
    );
}

/// A pair whose server tolerates at most three refusals and grants
/// message and data; the link takes 100 ms each way.
fn strict_pair(seed: u64, server_grants: Grants) -> Pair {
    let strict = ChannelConfig {
        max_refused_packets: 3,
        ..Default::default()
    };
    let mut pair = Pair::with_configs(ChannelConfig::default(), strict, seed);
    pair.latency = ms(100);
    pair.open_with(grants(Scopes::ALL), server_grants);
    pair
}

#[test]
fn in_flight_packets_of_a_revoked_scope_are_dropped_quietly() {
    let mut pair = strict_pair(115, grants(Scopes::MESSAGE | Scopes::DATA));
    // Ten packets are on the wire when the server revokes DATA.
    for i in 0..10u8 {
        pair.client.ch.send(misc(&[i])).unwrap();
    }
    pair.step();
    let revoked_at = pair.now;
    pair.server
        .ch
        .set_grants(revoked_at, grants(Scopes::MESSAGE))
        .unwrap();
    pair.drive();
    // Past max_refused_packets, yet the channel stays open.
    assert!(pair.server.packets().is_empty());
    let events = pair.server.events();
    assert_eq!(refusals(&events, RefuseReason::Revoked), 10);
    assert_eq!(refusals(&events, RefuseReason::NotPermitted), 0);
    assert_eq!(
        pair.server.ch.state(),
        ChannelState::Open {
            scopes: Scopes::MESSAGE
        }
    );

    // One more arrives 1 ms before the grace ends: still quiet. Four more
    // arrive exactly as it ends: they count, and close the channel.
    let grace_end = revoked_at + REVOCATION_GRACE;
    pair.advance((grace_end - pair.now) - pair.latency - ms(1));
    pair.client.ch.send(misc(b"late")).unwrap();
    pair.advance(ms(1));
    for _ in 0..4 {
        pair.client
            .ch
            .send(misc(b"ignored the revocation"))
            .unwrap();
    }
    pair.drive();
    let events = pair.server.events();
    assert_eq!(refusals(&events, RefuseReason::Revoked), 11);
    let last_quiet = pair.server.events.iter().rev().find_map(|(at, e)| {
        matches!(
            e,
            ChannelEvent::PacketRefused {
                reason: RefuseReason::Revoked,
                ..
            }
        )
        .then_some(*at)
    });
    assert_eq!(last_quiet, Some(revoked_at + (REVOCATION_GRACE - ms(1))));
    assert_eq!(refusals(&events, RefuseReason::NotPermitted), 4);
    assert_eq!(
        pair.server.closed().map(|(at, reason, _)| (at, reason)),
        Some((
            grace_end,
            CloseReason::Error(
                ProtocolViolation::TooManyRefusedPackets { count: 4, limit: 3 }.into()
            )
        ))
    );
}

#[test]
fn in_flight_packets_of_an_expired_scope_are_dropped_quietly() {
    let expiry = Instant::from_duration(Duration::from_secs(2));
    let mut server = grants(Scopes::MESSAGE);
    server
        .insert(Grant::new(GrantId(2), Scopes::TASK).with_expiry(expiry))
        .unwrap();
    let mut pair = strict_pair(116, server);
    // Sent before the expiry, arriving after it.
    pair.advance((expiry - pair.now) - ms(50));
    for _ in 0..5 {
        pair.client
            .ch
            .send(DataTransmission::Task(Payload::new(vec![0])))
            .unwrap();
    }
    pair.drive();
    assert!(pair.now > expiry);
    assert!(pair.server.packets().is_empty());
    let events = pair.server.events();
    assert_eq!(refusals(&events, RefuseReason::Revoked), 5);
    assert!(events.contains(&ChannelEvent::GrantsExpired {
        expired: vec![GrantId(2)],
        scopes: Scopes::MESSAGE
    }));
    assert!(pair.server.closed().is_none());
}

#[test]
fn cancel_and_reject_pass_without_file() {
    // A transfer under way when the server takes FILE away: both sides can
    // still call it off, in both directions.
    let mut pair = Pair::new(117);
    pair.open(Scopes::ALL, Scopes::FILE | Scopes::MESSAGE);
    pair.server
        .ch
        .set_grants(pair.now, grants(Scopes::MESSAGE))
        .unwrap();
    pair.advance(REVOCATION_GRACE * 2);
    pair.client.ch.send(cancel()).unwrap();
    pair.server.ch.send(reject()).unwrap();
    pair.server.ch.send(cancel()).unwrap();
    pair.drive();
    assert_eq!(pair.server.packets(), vec![cancel()]);
    assert_eq!(pair.client.packets(), vec![reject(), cancel()]);

    // Even with nothing granted at all.
    pair.server.ch.set_grants(pair.now, Grants::new()).unwrap();
    pair.server.ch.send(cancel()).unwrap();
    pair.client.ch.send(reject()).unwrap();
    pair.drive();
    assert_eq!(pair.server.packets(), vec![cancel(), reject()]);
    assert_eq!(pair.client.packets(), vec![reject(), cancel(), cancel()]);
    assert!(
        pair.server
            .events()
            .iter()
            .all(|e| !matches!(e, ChannelEvent::PacketRefused { .. }))
    );
}

#[test]
fn held_packets_meet_the_grants_given_on_approval() {
    let mut pair = Pair::new(118);
    pair.drive();
    pair.client.ch.approve(grants(Scopes::ALL)).unwrap();
    pair.client.ch.send(misc(b"held")).unwrap();
    pair.client.ch.send(cancel()).unwrap();
    pair.client
        .ch
        .send(DataTransmission::Task(Payload::new(vec![])))
        .unwrap();
    pair.drive();
    pair.server.ch.approve(grants(Scopes::TASK)).unwrap();
    pair.drive();
    assert_eq!(
        pair.server.packets(),
        vec![
            cancel(),
            DataTransmission::Task(Payload::new(vec![])).into()
        ]
    );
    assert_eq!(
        refusals(&pair.server.events(), RefuseReason::NotPermitted),
        1
    );
}
