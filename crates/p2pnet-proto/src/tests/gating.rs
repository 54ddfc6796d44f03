//! Approval, and gating by grants of scopes that do not change over time
//! (see `grants.rs` for expiry, revocation and the grace).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::util::{Pair, grants};
use crate::codec::encode_frame;
use crate::packet::{
    CollectionShare, DataTransmission, Disconnect, DisconnectReason, Identifier, Keepalive,
    Payload, PureMessage,
};
use crate::{
    ChannelConfig, ChannelEvent, ChannelState, CloseReason, Error, PacketKind, PeerId,
    ProtocolViolation, RefuseReason, Scopes,
};

fn misc(data: &[u8]) -> DataTransmission {
    DataTransmission::MiscData(Payload::new(data.to_vec()))
}

/// Handshake done, client approved with `client_scopes`, server still pending.
fn client_open_server_pending(config: ChannelConfig, client_scopes: Scopes, seed: u64) -> Pair {
    let mut pair = Pair::with_configs(ChannelConfig::default(), config, seed);
    pair.drive();
    pair.client.ch.approve(grants(client_scopes)).unwrap();
    pair
}

#[test]
fn pending_channel_delivers_nothing_until_approved() {
    let mut pair = client_open_server_pending(ChannelConfig::default(), Scopes::MESSAGE, 50);
    pair.client
        .ch
        .send(PureMessage::new("knock knock"))
        .unwrap();
    pair.drive();
    assert_eq!(pair.server.ch.state(), ChannelState::PendingApproval);
    assert!(pair.server.packets().is_empty());
    assert!(matches!(
        pair.server.ch.send(PureMessage::new("too early")),
        Err(Error::InvalidState {
            operation: "send",
            state: "pending approval"
        })
    ));

    pair.server.ch.approve(grants(Scopes::MESSAGE)).unwrap();
    pair.drive();
    let events = pair.server.events();
    assert_eq!(
        events[2..],
        [
            ChannelEvent::Opened {
                scopes: Scopes::MESSAGE
            },
            ChannelEvent::Packet(PureMessage::new("knock knock").into()),
        ]
    );
    assert!(matches!(
        pair.server.ch.approve(grants(Scopes::MESSAGE)),
        Err(Error::InvalidState { .. })
    ));
}

#[test]
fn held_packets_pass_the_grant_gate_on_approval() {
    let mut pair = client_open_server_pending(ChannelConfig::default(), Scopes::ALL, 51);
    pair.client.ch.send(misc(b"enhanced")).unwrap();
    pair.client.ch.send(PureMessage::new("plain")).unwrap();
    pair.drive();
    pair.server.ch.approve(grants(Scopes::MESSAGE)).unwrap();
    pair.drive();
    assert_eq!(
        pair.server.packets(),
        vec![PureMessage::new("plain").into()]
    );
    assert!(pair.server.events().contains(&ChannelEvent::PacketRefused {
        kind: PacketKind::DataTransmission,
        reason: RefuseReason::NotPermitted
    }));
}

#[test]
fn pending_buffer_overflow_is_a_protocol_violation() {
    let config = ChannelConfig {
        pending_packet_limit: 4,
        ..Default::default()
    };
    let mut pair = client_open_server_pending(config, Scopes::MESSAGE, 52);
    for i in 0..5 {
        pair.client
            .ch
            .send(PureMessage::new(format!("{i}")))
            .unwrap();
    }
    pair.drive();
    let (_, reason, by_remote) = pair.server.closed().unwrap();
    assert_eq!(
        reason,
        CloseReason::Error(
            ProtocolViolation::PendingApprovalOverflow {
                packets: 5,
                bytes: 10
            }
            .into()
        )
    );
    assert!(!by_remote);
    assert!(pair.server.packets().is_empty());
    let (_, reason, by_remote) = pair.client.closed().unwrap();
    assert!(by_remote);
    assert!(matches!(
        reason,
        CloseReason::Disconnect(Disconnect {
            reason: DisconnectReason::ProtocolViolation,
            ..
        })
    ));
}

#[test]
fn pending_byte_limit_is_enforced() {
    let config = ChannelConfig {
        pending_byte_limit: 1000,
        ..Default::default()
    };
    let mut pair = client_open_server_pending(config, Scopes::MESSAGE, 53);
    pair.client
        .ch
        .send(PureMessage::new("x".repeat(600)))
        .unwrap();
    pair.client
        .ch
        .send(PureMessage::new("y".repeat(600)))
        .unwrap();
    pair.drive();
    assert!(matches!(
        pair.server.closed(),
        Some((
            _,
            CloseReason::Error(Error::ProtocolViolation(
                ProtocolViolation::PendingApprovalOverflow { packets: 2, .. }
            )),
            false
        ))
    ));
}

#[test]
fn rejection_discards_held_packets_and_tells_the_peer() {
    let mut pair = client_open_server_pending(ChannelConfig::default(), Scopes::MESSAGE, 54);
    pair.client.ch.send(PureMessage::new("let me in")).unwrap();
    pair.drive();
    pair.server
        .ch
        .reject(pair.now, DisconnectReason::Rejected)
        .unwrap();
    pair.drive();
    assert!(pair.server.packets().is_empty());
    assert_eq!(
        pair.client.closed().map(|(_, r, remote)| (r, remote)),
        Some((
            CloseReason::Disconnect(Disconnect::new(DisconnectReason::Rejected)),
            true
        ))
    );
    assert!(pair.server.ch.is_drained());
    assert!(matches!(
        pair.server.ch.reject(pair.now, DisconnectReason::Rejected),
        Err(Error::InvalidState { .. })
    ));
}

#[test]
fn pending_channel_stays_alive_and_can_be_abandoned() {
    let mut pair = client_open_server_pending(ChannelConfig::default(), Scopes::MESSAGE, 55);
    // A human takes five minutes to decide; keepalive holds the channel.
    pair.advance(Duration::from_secs(300));
    assert_eq!(pair.server.ch.state(), ChannelState::PendingApproval);
    assert!(pair.client.ch.rtt().is_some() || pair.server.ch.rtt().is_some());
    // The dialer gives up: its Disconnect is honoured even while pending.
    pair.client.ch.close(pair.now, DisconnectReason::Normal);
    pair.drive();
    assert_eq!(
        pair.server.closed().map(|(_, r, remote)| (r, remote)),
        Some((
            CloseReason::Disconnect(Disconnect::new(DisconnectReason::Normal)),
            true
        ))
    );
}

#[test]
fn message_scope_refuses_data_packets() {
    let mut pair = Pair::new(56);
    pair.open(Scopes::ALL, Scopes::MESSAGE);
    pair.client.ch.send(misc(b"file bytes")).unwrap();
    pair.client.ch.send(PureMessage::new("hi")).unwrap();
    pair.drive();
    assert_eq!(pair.server.packets(), vec![PureMessage::new("hi").into()]);
    assert!(pair.server.events().contains(&ChannelEvent::PacketRefused {
        kind: PacketKind::DataTransmission,
        reason: RefuseReason::NotPermitted
    }));
    assert_eq!(
        pair.server.ch.state(),
        ChannelState::Open {
            scopes: Scopes::MESSAGE
        }
    );
}

#[test]
fn sending_forbidden_or_control_kinds_errors() {
    let mut pair = Pair::new(57);
    pair.open(Scopes::MESSAGE, Scopes::NONE);
    assert_eq!(
        pair.client.ch.send(misc(b"x")),
        Err(Error::NotPermitted(PacketKind::DataTransmission))
    );
    assert_eq!(
        pair.client.ch.send(CollectionShare { peers: vec![] }),
        Err(Error::NotPermitted(PacketKind::CollectionShare))
    );
    assert_eq!(
        pair.server.ch.send(PureMessage::new("x")),
        Err(Error::NotPermitted(PacketKind::PureMessage))
    );
    assert_eq!(
        pair.client.ch.send(Keepalive::Ping(1)),
        Err(Error::ControlPacket(PacketKind::Keepalive))
    );
    assert_eq!(
        pair.client
            .ch
            .send(Disconnect::new(DisconnectReason::Normal)),
        Err(Error::ControlPacket(PacketKind::Disconnect))
    );
    assert_eq!(pair.client.ch.pending_send_bytes(), 0);
}

#[test]
fn no_scopes_still_keeps_alive() {
    let mut pair = Pair::new(58);
    pair.open(Scopes::MESSAGE, Scopes::NONE);
    pair.client.ch.send(PureMessage::new("ignored")).unwrap();
    pair.advance(Duration::from_secs(100));
    assert!(pair.server.packets().is_empty());
    assert_eq!(
        pair.server.ch.state(),
        ChannelState::Open {
            scopes: Scopes::NONE
        }
    );
    assert!(pair.client.ch.rtt().is_some() || pair.server.ch.rtt().is_some());
}

#[test]
fn widening_grants_unlocks_data_transmission() {
    let mut pair = Pair::new(59);
    pair.open(Scopes::MESSAGE, Scopes::MESSAGE);
    assert!(pair.client.ch.send(misc(b"nope")).is_err());

    let now = pair.now;
    pair.client.ch.set_grants(now, grants(Scopes::ALL)).unwrap();
    pair.server.ch.set_grants(now, grants(Scopes::ALL)).unwrap();
    pair.client.ch.send(misc(b"now allowed")).unwrap();
    pair.server.ch.send(misc(b"both ways")).unwrap();
    pair.drive();
    assert_eq!(pair.server.packets(), vec![misc(b"now allowed").into()]);
    assert_eq!(pair.client.packets(), vec![misc(b"both ways").into()]);
    assert_eq!(
        pair.server.ch.state(),
        ChannelState::Open {
            scopes: Scopes::ALL
        }
    );
    // Setting the same grants again is harmless.
    assert_eq!(pair.server.ch.set_grants(now, grants(Scopes::ALL)), Ok(()));
}

#[test]
fn set_grants_needs_an_open_channel() {
    let mut pair = client_open_server_pending(ChannelConfig::default(), Scopes::MESSAGE, 63);
    assert_eq!(pair.server.ch.grants(), None);
    assert_eq!(pair.server.ch.permissions(), None);
    assert_eq!(
        pair.server.ch.set_grants(pair.now, grants(Scopes::ALL)),
        Err(Error::InvalidState {
            operation: "set_grants",
            state: "pending approval"
        })
    );
    assert_eq!(pair.client.ch.grants(), Some(&grants(Scopes::MESSAGE)));
}

#[test]
fn repeated_refusals_close_the_channel() {
    let config = ChannelConfig {
        max_refused_packets: 3,
        ..Default::default()
    };
    let mut pair = Pair::with_configs(ChannelConfig::default(), config, 60);
    pair.open(Scopes::ALL, Scopes::MESSAGE);
    for _ in 0..4 {
        pair.client.ch.send(misc(b"spam")).unwrap();
    }
    pair.drive();
    let refused = pair
        .server
        .events()
        .iter()
        .filter(|e| matches!(e, ChannelEvent::PacketRefused { .. }))
        .count();
    assert_eq!(refused, 4);
    assert_eq!(
        pair.server.closed().map(|(_, r, remote)| (r, remote)),
        Some((
            CloseReason::Error(
                ProtocolViolation::TooManyRefusedPackets { count: 4, limit: 3 }.into()
            ),
            false
        ))
    );
}

#[test]
fn identifier_must_carry_the_authenticated_id() {
    let mut pair = Pair::new(61);
    pair.open(Scopes::ALL, Scopes::ALL);
    let addresses = vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))];
    let forged = Identifier {
        peer_id: PeerId::from_bytes([1; 32]),
        listening_port: 9000,
        addresses: addresses.clone(),
    };
    // The sending side refuses to lie...
    assert!(matches!(
        pair.client.ch.send(forged.clone()),
        Err(Error::InvalidPacket(_))
    ));
    // ...and the receiving side catches a peer that does.
    pair.client
        .ch
        .inject_plaintext(encode_frame(&forged.into(), 1 << 20).unwrap());
    let genuine = Identifier {
        peer_id: pair.client.id(),
        listening_port: 9000,
        addresses,
    };
    pair.client.ch.send(genuine.clone()).unwrap();
    pair.drive();
    assert!(pair.server.events().contains(&ChannelEvent::PacketRefused {
        kind: PacketKind::Identifier,
        reason: RefuseReason::IdentityMismatch
    }));
    assert_eq!(pair.server.packets(), vec![genuine.into()]);
}

#[test]
fn refused_bodies_are_not_even_decoded() {
    // A malformed body of a kind no live scope covers is refused, not a
    // decode error: the coarse gate runs before deserialization. A small
    // DataTransmission body is the exception (it may be a file Cancel or
    // Reject, which pass without a grant), so the one here is large.
    let cases = [
        (Scopes::NONE, PacketKind::PureMessage, 3),
        (Scopes::MESSAGE, PacketKind::Identifier, 3),
        (Scopes::MESSAGE, PacketKind::CollectionShare, 3),
        (
            Scopes::MESSAGE | Scopes::PEER_LIST,
            PacketKind::DataTransmission,
            5000,
        ),
    ];
    for (seed, (scopes, kind, len)) in (62..).zip(cases) {
        let mut pair = Pair::new(seed);
        pair.open(Scopes::ALL, scopes);
        let mut frame = crate::codec::FrameHeader {
            kind,
            body_len: len,
        }
        .to_bytes()
        .to_vec();
        frame.resize(frame.len() + len as usize, 0xff);
        pair.client.ch.inject_plaintext(frame);
        pair.drive();
        assert_eq!(
            pair.server.ch.state(),
            ChannelState::Open { scopes },
            "{kind}"
        );
        assert!(pair.server.errors.is_empty(), "{kind}");
        assert!(
            pair.server.events().contains(&ChannelEvent::PacketRefused {
                kind,
                reason: RefuseReason::NotPermitted
            }),
            "{kind}"
        );
    }
}

#[test]
fn small_data_frames_are_decoded_without_data_scopes() {
    // They might be a Cancel or Reject: a malformed one is a decode error.
    let mut pair = Pair::new(70);
    pair.open(Scopes::ALL, Scopes::MESSAGE);
    let mut frame = crate::codec::FrameHeader {
        kind: PacketKind::DataTransmission,
        body_len: 3,
    }
    .to_bytes()
    .to_vec();
    frame.extend_from_slice(&[0xff, 0xff, 0xff]);
    pair.client.ch.inject_plaintext(frame);
    pair.drive();
    assert!(matches!(
        pair.server.closed(),
        Some((
            _,
            CloseReason::Error(Error::Decode(crate::DecodeError::Malformed {
                kind: PacketKind::DataTransmission,
                ..
            })),
            false
        ))
    ));
}
