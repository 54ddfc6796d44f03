use std::sync::Arc;
use std::time::Duration;

use super::util::{Pair, rng};
use crate::packet::PureMessage;
use crate::{
    Channel, ChannelConfig, ChannelEvent, ChannelState, Cipher, CloseReason, Error, HandshakeError,
    Instant, Keypair, PeerId, Scopes,
};

#[test]
fn handshake_authenticates_both_sides() {
    let mut pair = Pair::new(1);
    pair.drive();

    let (client_id, server_id) = (pair.client.id(), pair.server.id());
    for (side, remote) in [(&pair.client, server_id), (&pair.server, client_id)] {
        let events = side.events();
        assert_eq!(events.len(), 2, "{events:?}");
        match &events[0] {
            ChannelEvent::HandshakeComplete { peer_id, hello } => {
                assert_eq!(*peer_id, remote);
                assert_eq!(hello.protocol_version, crate::PROTOCOL_VERSION);
                assert_eq!(hello.max_frame_size, crate::codec::DEFAULT_MAX_FRAME_SIZE);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(events[1], ChannelEvent::AwaitingApproval);
        assert_eq!(side.ch.state(), ChannelState::PendingApproval);
        assert_eq!(side.ch.peer_id(), Some(remote));
        assert!(side.errors.is_empty());
    }
    assert!(pair.client.ch.handshake_hash().is_some());
    assert_eq!(
        pair.client.ch.handshake_hash(),
        pair.server.ch.handshake_hash()
    );
    // XX is three messages: client sends two, server one.
    assert_eq!(pair.client.sent.len(), 2);
    assert_eq!(pair.server.sent.len(), 1);
}

#[test]
fn hello_carries_configured_port_and_agent() {
    let config = ChannelConfig {
        listening_port: Some(8051),
        agent: "test-agent/1".into(),
        ..Default::default()
    };
    let mut pair = Pair::with_configs(config, ChannelConfig::default(), 2);
    pair.drive();
    let hello = pair.server.ch.remote_hello().unwrap();
    assert_eq!(hello.listening_port, Some(8051));
    assert_eq!(hello.agent, "test-agent/1");
    assert_eq!(pair.client.ch.remote_hello().unwrap().listening_port, None);
}

#[test]
fn handshake_timing_with_latency() {
    let mut pair = Pair::new(3);
    pair.latency = Duration::from_millis(50);
    pair.drive();
    let complete = |e: &ChannelEvent| matches!(e, ChannelEvent::HandshakeComplete { .. });
    // The initiator completes when message 2 arrives (1 RTT), the responder
    // when message 3 arrives (1.5 RTT).
    assert_eq!(
        pair.client.time_of(complete),
        Some(Instant::from_duration(Duration::from_millis(100)))
    );
    assert_eq!(
        pair.server.time_of(complete),
        Some(Instant::from_duration(Duration::from_millis(150)))
    );
}

#[test]
fn handshake_and_message_survive_one_byte_reads() {
    let mut pair = Pair::new(4);
    pair.split = Some(1);
    pair.latency = Duration::from_millis(5);
    pair.open(Scopes::MESSAGE, Scopes::MESSAGE);
    pair.client
        .ch
        .send(PureMessage::new("one byte at a time"))
        .unwrap();
    pair.server.ch.send(PureMessage::new("and back")).unwrap();
    pair.drive();
    assert_eq!(
        pair.server.packets(),
        vec![PureMessage::new("one byte at a time").into()]
    );
    assert_eq!(
        pair.client.packets(),
        vec![PureMessage::new("and back").into()]
    );
}

#[test]
fn wrong_expected_peer_id_is_rejected_before_revealing_identity() {
    let mut r = rng(5);
    let client_keys = Keypair::generate(&mut r);
    let server_keys = Keypair::generate(&mut r);
    let expected = PeerId::from_bytes([0x42; 32]);
    let mut pair = Pair::build(
        ChannelConfig::default(),
        client_keys,
        ChannelConfig::default(),
        server_keys,
        Some(expected),
        5,
    );
    pair.drive();

    let actual = pair.server.id();
    let err = Error::Handshake(HandshakeError::PeerIdMismatch { expected, actual });
    assert_eq!(pair.client.errors, vec![err.clone()]);
    let (_, reason, by_remote) = pair.client.closed().unwrap();
    assert_eq!(reason, CloseReason::Error(err));
    assert!(!by_remote);
    // Message 3, which carries the initiator's static key, was never sent.
    assert_eq!(pair.client.sent.len(), 1);
    assert!(pair.client.ch.is_drained());

    // The responder never learns who dialed and eventually times out.
    assert_eq!(pair.server.ch.state(), ChannelState::Handshaking);
    pair.advance(Duration::from_secs(10));
    let (_, reason, _) = pair.server.closed().unwrap();
    assert_eq!(reason, CloseReason::Error(HandshakeError::Timeout.into()));
    assert_eq!(pair.server.ch.peer_id(), None);
}

#[test]
fn connecting_to_self_is_detected() {
    let keys = Keypair::generate(&mut rng(6));
    let mut pair = Pair::build(
        ChannelConfig::default(),
        keys.clone(),
        ChannelConfig::default(),
        keys,
        None,
        6,
    );
    pair.drive();
    assert_eq!(
        pair.client.errors,
        vec![Error::Handshake(HandshakeError::SelfConnection)]
    );
}

fn lone_responder() -> Channel {
    let mut r = rng(7);
    let keys = Keypair::generate(&mut r);
    Channel::new_inbound(
        Arc::new(ChannelConfig::default()),
        &keys,
        Instant::ZERO,
        &mut r,
    )
    .unwrap()
}

fn lone_initiator() -> Channel {
    let mut r = rng(8);
    let keys = Keypair::generate(&mut r);
    Channel::new_outbound(
        Arc::new(ChannelConfig::default()),
        &keys,
        None,
        Instant::ZERO,
        &mut r,
    )
    .unwrap()
}

#[test]
fn http_request_instead_of_handshake_fails_fast() {
    let mut ch = lone_responder();
    let err = ch
        .handle_bytes(Instant::ZERO, b"GET / HTTP/1.1\r\nHost: peer\r\n\r\n")
        .unwrap_err();
    assert_eq!(
        err,
        Error::Handshake(HandshakeError::MessageTooLarge {
            len: 0x4745,
            max: 1024
        })
    );
    assert_eq!(ch.state(), ChannelState::Closed);
    assert_eq!(
        ch.poll_event(),
        Some(ChannelEvent::Closed {
            reason: CloseReason::Error(err),
            by_remote: false
        })
    );
    // Nothing is sent back to a stranger, and further input is ignored.
    assert_eq!(ch.poll_transmit(), None);
    assert!(ch.is_drained());
    assert_eq!(ch.handle_bytes(Instant::ZERO, b"more"), Ok(()));
}

#[test]
fn garbage_of_plausible_length_is_rejected() {
    // 40 bytes: a 32-byte "ephemeral key" followed by an 8-byte payload,
    // which the first XX message must not carry.
    let mut ch = lone_responder();
    let mut msg = vec![0, 40];
    msg.extend((0..40).map(|i| i as u8 ^ 0x5a));
    assert_eq!(
        ch.handle_bytes(Instant::ZERO, &msg),
        Err(HandshakeError::UnexpectedPayload.into())
    );

    // Too short to hold an ephemeral key.
    let mut ch = lone_responder();
    assert_eq!(
        ch.handle_bytes(Instant::ZERO, &[0, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
        Err(HandshakeError::Crypto.into())
    );

    // Garbage as message 2 fails authentication at the initiator.
    let mut ch = lone_initiator();
    assert!(ch.poll_transmit().is_some());
    let mut msg = vec![0, 120];
    msg.extend((0..120).map(|i| (i * 7) as u8));
    assert_eq!(
        ch.handle_bytes(Instant::ZERO, &msg),
        Err(HandshakeError::Crypto.into())
    );
    assert!(ch.is_closed());
}

#[test]
fn handshake_times_out() {
    let mut ch = lone_initiator();
    assert!(ch.poll_transmit().is_some());
    let deadline = Instant::from_duration(Duration::from_secs(10));
    assert_eq!(ch.poll_timeout(), Some(deadline));
    ch.handle_timeout(Instant::from_duration(Duration::from_millis(9_999)));
    assert_eq!(ch.state(), ChannelState::Handshaking);
    assert_eq!(ch.poll_event(), None);
    ch.handle_timeout(deadline);
    assert_eq!(
        ch.poll_event(),
        Some(ChannelEvent::Closed {
            reason: CloseReason::Error(HandshakeError::Timeout.into()),
            by_remote: false
        })
    );
    assert_eq!(ch.poll_timeout(), None);
}

#[test]
fn a_restarted_handshake_timeout_counts_from_the_restart() {
    // A dialler builds its channel, then TCP takes 9 s to connect.
    let mut ch = lone_initiator();
    let connected = Instant::from_duration(Duration::from_secs(9));
    ch.restart_handshake_timeout(connected);
    let deadline = Instant::from_duration(Duration::from_secs(19));
    assert_eq!(ch.poll_timeout(), Some(deadline));
    ch.handle_timeout(Instant::from_duration(Duration::from_secs(18)));
    assert_eq!(ch.state(), ChannelState::Handshaking);
    ch.handle_timeout(deadline);
    assert!(matches!(
        ch.poll_event(),
        Some(ChannelEvent::Closed {
            reason: CloseReason::Error(Error::Handshake(HandshakeError::Timeout)),
            ..
        })
    ));
}

#[test]
fn different_networks_cannot_connect() {
    let a = ChannelConfig {
        network: "alpha".into(),
        ..Default::default()
    };
    let b = ChannelConfig {
        network: "beta".into(),
        ..Default::default()
    };
    let mut pair = Pair::with_configs(a, b, 9);
    pair.drive();
    // The prologue differs, so message 2 does not authenticate.
    assert_eq!(
        pair.client.errors,
        vec![Error::Handshake(HandshakeError::Crypto)]
    );
    assert_eq!(pair.server.ch.state(), ChannelState::Handshaking);
}

#[test]
fn close_during_handshake_is_immediate() {
    let mut ch = lone_initiator();
    ch.close(Instant::ZERO, crate::packet::DisconnectReason::Shutdown);
    assert!(ch.is_drained(), "the first handshake message is discarded");
    assert!(matches!(
        ch.poll_event(),
        Some(ChannelEvent::Closed {
            reason: CloseReason::Disconnect(_),
            by_remote: false
        })
    ));
}

#[test]
fn handshakes_are_deterministic_under_a_seeded_rng() {
    let transcript = |seed| {
        let mut pair = Pair::new(seed);
        pair.drive();
        (pair.client.sent.clone(), pair.server.sent.clone())
    };
    assert_eq!(transcript(10), transcript(10));
    assert_ne!(transcript(10), transcript(11));
}

#[test]
fn invalid_config_is_rejected() {
    let keys = Keypair::generate(&mut rng(12));
    let config = ChannelConfig {
        idle_timeout: Duration::from_secs(15),
        ..Default::default()
    };
    let err =
        Channel::new_inbound(Arc::new(config), &keys, Instant::ZERO, &mut rng(1)).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)));

    let config = ChannelConfig {
        max_frame_size: crate::codec::MAX_FRAME_SIZE_CEILING + 1,
        ..Default::default()
    };
    assert!(Channel::new_inbound(Arc::new(config), &keys, Instant::ZERO, &mut rng(1)).is_err());

    let config = ChannelConfig {
        agent: "x".repeat(crate::handshake::MAX_AGENT_LEN + 1),
        ..Default::default()
    };
    assert!(Channel::new_inbound(Arc::new(config), &keys, Instant::ZERO, &mut rng(1)).is_err());
}

fn offering(ciphers: &[Cipher]) -> ChannelConfig {
    ChannelConfig {
        ciphers: ciphers.to_vec(),
        ..Default::default()
    }
}

#[test]
fn both_sides_settle_on_the_same_cipher_and_exchange_under_it() {
    use Cipher::{Aes256Gcm, ChaCha20Poly1305};
    let cases = [
        (
            [Aes256Gcm, ChaCha20Poly1305].as_slice(),
            [Aes256Gcm, ChaCha20Poly1305].as_slice(),
            Aes256Gcm,
        ),
        (
            &[ChaCha20Poly1305],
            &[Aes256Gcm, ChaCha20Poly1305],
            ChaCha20Poly1305,
        ),
        (
            &[Aes256Gcm, ChaCha20Poly1305],
            &[ChaCha20Poly1305],
            ChaCha20Poly1305,
        ),
        (&[Aes256Gcm], &[ChaCha20Poly1305, Aes256Gcm], Aes256Gcm),
    ];
    for (seed, (client, server, expected)) in (10..).zip(cases) {
        let mut pair = Pair::with_configs(offering(client), offering(server), seed);
        pair.open(Scopes::MESSAGE, Scopes::MESSAGE);
        assert_eq!(
            pair.client.ch.cipher(),
            Some(expected),
            "{client:?} / {server:?}"
        );
        assert_eq!(pair.server.ch.cipher(), Some(expected));
        assert_eq!(pair.server.ch.remote_hello().unwrap().ciphers, client);
        assert_eq!(pair.client.ch.remote_hello().unwrap().ciphers, server);
        pair.client.ch.send(PureMessage::new("sealed")).unwrap();
        pair.server.ch.send(PureMessage::new("back")).unwrap();
        pair.drive();
        assert_eq!(
            pair.server.packets(),
            vec![PureMessage::new("sealed").into()]
        );
        assert_eq!(pair.client.packets(), vec![PureMessage::new("back").into()]);
    }
}

#[test]
fn no_cipher_in_common_fails_before_the_initiator_reveals_itself() {
    let mut pair = Pair::with_configs(
        offering(&[Cipher::Aes256Gcm]),
        offering(&[Cipher::ChaCha20Poly1305]),
        20,
    );
    pair.drive();
    assert_eq!(
        pair.client.errors,
        vec![Error::Handshake(HandshakeError::NoCommonCipher {
            remote_version: crate::PROTOCOL_VERSION
        })]
    );
    // Message 3 (the initiator's identity) never left.
    assert_eq!(pair.client.sent.len(), 1);
    assert_eq!(pair.server.ch.peer_id(), None);
}

#[test]
fn an_empty_cipher_list_is_refused_by_the_config() {
    let config = offering(&[]);
    assert!(matches!(config.validate(), Err(Error::InvalidConfig(_))));
}
