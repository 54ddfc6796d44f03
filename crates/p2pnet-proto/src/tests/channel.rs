use std::sync::Arc;
use std::time::Duration;

use super::util::{Pair, rng};
use crate::codec::{FRAME_HEADER_LEN, FrameHeader, encode_frame};
use crate::packet::{
    DataTransmission, Disconnect, DisconnectReason, Keepalive, Payload, PureMessage,
};
use crate::{
    Channel, ChannelConfig, ChannelEvent, ChannelState, CloseReason, DecodeError, Error, Instant,
    Keypair, Packet, PacketKind, Scopes,
};

fn opened(seed: u64) -> Pair {
    let mut pair = Pair::new(seed);
    pair.open(Scopes::MESSAGE, Scopes::MESSAGE);
    pair
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Asserts `side` closed because of `err`, and the other side was told.
fn assert_closed_with(pair: &Pair, err: Error) {
    assert_eq!(pair.server.errors, vec![err.clone()]);
    let (_, reason, by_remote) = pair.server.closed().unwrap();
    assert_eq!(reason, CloseReason::Error(err));
    assert!(!by_remote);
    // The client got the server's parting Disconnect.
    let (_, reason, by_remote) = pair.client.closed().unwrap();
    assert!(by_remote);
    assert!(matches!(
        reason,
        CloseReason::Disconnect(Disconnect {
            reason: DisconnectReason::ProtocolViolation,
            message: Some(_)
        })
    ));
}

#[test]
fn messages_flow_both_ways_after_approval() {
    let mut pair = opened(20);
    pair.client.ch.send(PureMessage::new("ping?")).unwrap();
    pair.client.ch.send(PureMessage::new("second")).unwrap();
    pair.server.ch.send(PureMessage::new("pong!")).unwrap();
    pair.drive();
    assert_eq!(
        pair.server.packets(),
        vec![
            PureMessage::new("ping?").into(),
            PureMessage::new("second").into()
        ]
    );
    assert_eq!(
        pair.client.packets(),
        vec![PureMessage::new("pong!").into()]
    );
    assert_eq!(pair.client.ch.stats().packets_sent, 2);
    assert_eq!(pair.server.ch.stats().packets_received, 2);
}

#[test]
fn large_frames_span_many_noise_messages() {
    let mut pair = Pair::new(21);
    pair.split = Some(1000);
    pair.latency = Duration::from_millis(3);
    pair.open(Scopes::ALL, Scopes::ALL);
    let data: Vec<u8> = (0..900_000u32).map(|i| (i % 253) as u8).collect();
    let packet: crate::Packet = DataTransmission::MiscData(Payload::labelled("blob", data)).into();
    pair.client.ch.send(packet.clone()).unwrap();
    pair.client.ch.send(PureMessage::new("after")).unwrap();
    let before = pair.client.sent.len();
    pair.drive();
    // 900 KB of plaintext needs at least 14 Noise messages of < 64 KiB.
    assert!(pair.client.sent.len() - before >= 14);
    assert!(
        pair.client.sent[before..]
            .iter()
            .all(|m| m.len() <= 2 + 65535)
    );
    assert_eq!(
        pair.server.packets(),
        vec![packet, PureMessage::new("after").into()]
    );
}

#[test]
fn tampered_ciphertext_closes_the_channel() {
    let mut pair = opened(22);
    pair.client.ch.send(PureMessage::new("integrity")).unwrap();
    let mut bytes = pair.client.ch.poll_transmit().unwrap();
    bytes[10] ^= 0x01;
    let err = pair.server.ch.handle_bytes(pair.now, &bytes).unwrap_err();
    assert_eq!(err, Error::Decrypt);
    pair.server.errors.push(err);
    pair.drive();
    assert!(pair.server.packets().is_empty());
    assert_closed_with(&pair, Error::Decrypt);
    assert!(pair.client.ch.is_drained() && pair.server.ch.is_drained());
}

#[test]
fn replayed_message_closes_the_channel() {
    let mut pair = opened(23);
    pair.client.ch.send(PureMessage::new("once")).unwrap();
    let bytes = pair.client.ch.poll_transmit().unwrap();
    pair.server.ch.handle_bytes(pair.now, &bytes).unwrap();
    assert_eq!(
        pair.server.ch.handle_bytes(pair.now, &bytes),
        Err(Error::Decrypt)
    );
    pair.server.errors.push(Error::Decrypt);
    pair.drive();
    assert_eq!(pair.server.packets(), vec![PureMessage::new("once").into()]);
    assert_closed_with(&pair, Error::Decrypt);
}

#[test]
fn reordered_messages_close_the_channel() {
    let mut pair = opened(24);
    pair.client.ch.send(PureMessage::new("first")).unwrap();
    let first = pair.client.ch.poll_transmit().unwrap();
    pair.client.ch.send(PureMessage::new("second")).unwrap();
    let second = pair.client.ch.poll_transmit().unwrap();
    assert_eq!(
        pair.server.ch.handle_bytes(pair.now, &second),
        Err(Error::Decrypt)
    );
    assert_eq!(
        pair.server.ch.handle_bytes(pair.now, &first),
        Ok(()),
        "input after close is ignored"
    );
    pair.server.errors.push(Error::Decrypt);
    pair.drive();
    assert!(pair.server.packets().is_empty());
    assert_closed_with(&pair, Error::Decrypt);
}

#[test]
fn oversized_declared_frame_closes_before_buffering() {
    let mut pair = opened(25);
    let limit = crate::codec::DEFAULT_MAX_FRAME_SIZE;
    // Only the six header bytes are sent: the body never exists.
    let header = FrameHeader {
        kind: PacketKind::PureMessage,
        body_len: limit + 1,
    }
    .to_bytes();
    pair.client.ch.inject_plaintext(header.to_vec());
    pair.drive();
    assert_closed_with(
        &pair,
        DecodeError::Oversized {
            declared: limit + 1,
            limit,
        }
        .into(),
    );
}

#[test]
fn unknown_version_and_packet_type_close_with_clear_errors() {
    let mut frame = encode_frame(&PureMessage::new("x").into(), 1 << 20).unwrap();
    frame[0] = 7;
    let mut pair = opened(26);
    pair.client.ch.inject_plaintext(frame.clone());
    pair.drive();
    assert_closed_with(&pair, DecodeError::UnknownVersion(7).into());

    frame[0] = crate::codec::FRAME_VERSION;
    frame[1] = 99;
    let mut pair = opened(27);
    pair.client.ch.inject_plaintext(frame);
    pair.drive();
    assert_closed_with(&pair, DecodeError::UnknownPacketType(99).into());
}

#[test]
fn malformed_body_closes() {
    let mut pair = opened(28);
    // PureMessage body: a string claiming 200 bytes, holding 3.
    let mut frame = FrameHeader {
        kind: PacketKind::PureMessage,
        body_len: 4,
    }
    .to_bytes()
    .to_vec();
    frame.extend_from_slice(&[200, 1, b'a', b'b']);
    pair.client.ch.inject_plaintext(frame);
    pair.drive();
    let (_, reason, _) = pair.server.closed().unwrap();
    assert!(matches!(
        reason,
        CloseReason::Error(Error::Decode(DecodeError::Malformed {
            kind: PacketKind::PureMessage,
            ..
        }))
    ));
}

#[test]
fn keepalive_pings_when_idle_and_measures_rtt() {
    let mut pair = Pair::new(29);
    pair.latency = Duration::from_millis(20);
    pair.open(Scopes::MESSAGE, Scopes::MESSAGE);
    let opened_at = pair.now;
    assert_eq!(pair.client.ch.rtt(), None);
    let sent_before = pair.client.sent.len();

    // Just before the keepalive interval: nothing is sent.
    pair.advance(secs(15) - Duration::from_millis(100));
    assert_eq!(pair.client.sent.len(), sent_before);

    pair.advance(secs(1));
    // The client pinged and the server answered. (The server's own timer
    // was pushed back by the client's ping, which counts as activity.)
    assert_eq!(pair.client.ch.rtt(), Some(Duration::from_millis(40)));
    assert_eq!(pair.client.sent.len(), sent_before + 1);

    // Keepalive keeps an otherwise silent channel open indefinitely.
    pair.advance(secs(600));
    assert_eq!(
        pair.client.ch.state(),
        ChannelState::Open {
            scopes: Scopes::MESSAGE
        }
    );
    assert_eq!(
        pair.server.ch.state(),
        ChannelState::Open {
            scopes: Scopes::MESSAGE
        }
    );
    assert!(pair.now - opened_at > secs(600));
    assert_eq!(pair.server.ch.rtt(), Some(Duration::from_millis(40)));
    assert!(
        pair.client.packets().is_empty(),
        "keepalive is never surfaced as a packet"
    );
}

#[test]
fn idle_timeout_closes_a_silent_channel() {
    let mut pair = opened(30);
    let opened_at = pair.now;
    pair.server.blackhole = true;
    let sent_before = pair.client.sent.len();
    pair.advance(secs(60));

    let (at, reason, by_remote) = pair.client.closed().unwrap();
    assert_eq!(reason, CloseReason::IdleTimeout);
    assert!(!by_remote);
    assert_eq!(at, opened_at + secs(45));
    // Pings at 15 s and 30 s went unanswered, then a Disconnect at 45 s.
    assert_eq!(pair.client.sent.len() - sent_before, 3);
    assert_eq!(pair.client.ch.rtt(), None);

    // The server, which still hears the client, learns why.
    let (_, reason, by_remote) = pair.server.closed().unwrap();
    assert_eq!(
        reason,
        CloseReason::Disconnect(Disconnect::new(DisconnectReason::IdleTimeout))
    );
    assert!(by_remote);
}

#[test]
fn only_the_matching_pong_yields_an_rtt() {
    let mut pair = opened(31);
    let t = pair.now + secs(15);
    pair.client.ch.handle_timeout(t);
    let ping = pair.client.ch.poll_transmit().unwrap();
    // A pong with the wrong nonce is ignored.
    let pong = encode_frame(&Keepalive::Pong(12345).into(), 1 << 20).unwrap();
    pair.server.ch.inject_plaintext(pong);
    let bytes = pair.server.ch.poll_transmit().unwrap();
    pair.client
        .ch
        .handle_bytes(t + Duration::from_millis(5), &bytes)
        .unwrap();
    assert_eq!(pair.client.ch.rtt(), None);
    // The real answer arrives 30 ms after the ping.
    pair.server
        .ch
        .handle_bytes(t + Duration::from_millis(15), &ping)
        .unwrap();
    let pong = pair.server.ch.poll_transmit().unwrap();
    pair.client
        .ch
        .handle_bytes(t + Duration::from_millis(30), &pong)
        .unwrap();
    assert_eq!(pair.client.ch.rtt(), Some(Duration::from_millis(30)));
}

#[test]
fn ping_flood_owes_a_single_pong() {
    let mut pair = opened(32);
    let ping = encode_frame(&Keepalive::Ping(1).into(), 1 << 20).unwrap();
    let flood: Vec<u8> = (0..1000).flat_map(|_| ping.clone()).collect();
    pair.client.ch.inject_plaintext(flood);
    let bytes = pair.client.ch.poll_transmit().unwrap();
    pair.server.ch.handle_bytes(pair.now, &bytes).unwrap();
    let reply = pair.server.ch.poll_transmit().unwrap();
    // One pong frame (8 bytes) + tag + length prefix.
    assert_eq!(reply.len(), 2 + FRAME_HEADER_LEN + 2 + 16);
    assert_eq!(pair.server.ch.poll_transmit(), None);
}

#[test]
fn graceful_close_flushes_queued_data_first() {
    let mut pair = opened(33);
    for i in 0..3 {
        pair.client
            .ch
            .send(PureMessage::new(format!("m{i}")))
            .unwrap();
    }
    pair.client.ch.close(
        pair.now,
        Disconnect::with_message(DisconnectReason::Normal, "bye"),
    );
    assert_eq!(pair.client.ch.state(), ChannelState::Closing);
    assert!(matches!(
        pair.client.ch.send(PureMessage::new("late")),
        Err(Error::InvalidState {
            operation: "send",
            state: "closing"
        })
    ));
    pair.drive();

    assert_eq!(pair.server.packets().len(), 3);
    let bye = Disconnect::with_message(DisconnectReason::Normal, "bye");
    let (_, reason, by_remote) = pair.server.closed().unwrap();
    assert_eq!(
        (reason, by_remote),
        (CloseReason::Disconnect(bye.clone()), true)
    );
    let (_, reason, by_remote) = pair.client.closed().unwrap();
    assert_eq!((reason, by_remote), (CloseReason::Disconnect(bye), false));
    assert!(pair.client.ch.is_drained() && pair.server.ch.is_drained());
    // Closed is the last event on both sides.
    assert!(matches!(
        pair.client.events.last(),
        Some((_, ChannelEvent::Closed { .. }))
    ));
    assert!(matches!(
        pair.server.events.last(),
        Some((_, ChannelEvent::Closed { .. }))
    ));
}

#[test]
fn graceful_close_gives_up_after_close_timeout() {
    let mut pair = opened(34);
    pair.client
        .ch
        .send(PureMessage::new("never written"))
        .unwrap();
    pair.client.ch.close(pair.now, DisconnectReason::Shutdown);
    // The runtime never manages to write (the peer is not reading).
    assert_eq!(pair.client.ch.poll_timeout(), Some(pair.now + secs(5)));
    pair.client.ch.handle_timeout(pair.now + secs(5));
    assert!(pair.client.ch.is_drained());
    assert!(matches!(
        std::iter::from_fn(|| pair.client.ch.poll_event()).last(),
        Some(ChannelEvent::Closed {
            by_remote: false,
            ..
        })
    ));
}

#[test]
fn eof_means_connection_lost() {
    let mut pair = opened(35);
    pair.server.ch.handle_eof();
    pair.drive();
    let (_, reason, by_remote) = pair.server.closed().unwrap();
    assert_eq!((reason, by_remote), (CloseReason::ConnectionLost, true));
    assert!(pair.server.ch.is_drained());
}

#[test]
fn send_buffer_applies_backpressure() {
    let config = ChannelConfig {
        send_buffer_limit: 100_000,
        ..Default::default()
    };
    let mut pair = Pair::with_configs(config, ChannelConfig::default(), 36);
    pair.open(Scopes::ALL, Scopes::ALL);
    let chunk = || DataTransmission::MiscData(Payload::new(vec![7; 30_000]));

    let mut accepted = 0;
    let err = loop {
        match pair.client.ch.send(chunk()) {
            Ok(()) => accepted += 1,
            Err(err) => break err,
        }
    };
    assert_eq!(accepted, 3);
    let Error::SendBufferFull { pending, limit } = err else {
        panic!("{err:?}")
    };
    assert_eq!(limit, 100_000);
    assert!(pending <= limit && pending >= 90_000, "{pending}");
    assert!(pair.client.ch.pending_send_bytes() <= 100_000);
    assert!(pair.client.ch.poll_event().is_none(), "not yet writable");

    // The runtime writes; once below half the limit the channel says so.
    let mut writable = false;
    while let Some(bytes) = pair.client.ch.poll_transmit() {
        pair.client.sent.push(bytes);
        if let Some(event) = pair.client.ch.poll_event() {
            assert_eq!(event, ChannelEvent::Writable);
            assert!(pair.client.ch.pending_send_bytes() <= 50_000);
            writable = true;
            break;
        }
    }
    assert!(writable);
    pair.client.ch.send(chunk()).unwrap();
}

#[test]
fn closed_is_the_last_event_even_for_a_blocked_writer() {
    let config = ChannelConfig {
        send_buffer_limit: 50_000,
        ..Default::default()
    };
    let mut pair = Pair::with_configs(config, ChannelConfig::default(), 39);
    pair.open(Scopes::ALL, Scopes::ALL);
    let blob = || DataTransmission::MiscData(Payload::new(vec![1; 40_000]));
    pair.client.ch.send(blob()).unwrap();
    assert!(matches!(
        pair.client.ch.send(blob()),
        Err(Error::SendBufferFull { .. })
    ));
    pair.client.ch.close(pair.now, DisconnectReason::Normal);
    pair.drive();
    let events = pair.client.events();
    assert!(
        matches!(
            events.last(),
            Some(ChannelEvent::Closed {
                by_remote: false,
                ..
            })
        ),
        "{events:?}"
    );
    assert!(!events.contains(&ChannelEvent::Writable));
    assert_eq!(pair.server.packets().len(), 1);
}

#[test]
fn packets_larger_than_the_peer_accepts_are_refused_locally() {
    let server = ChannelConfig {
        max_frame_size: crate::codec::MIN_MAX_FRAME_SIZE,
        ..Default::default()
    };
    let mut pair = Pair::with_configs(ChannelConfig::default(), server, 37);
    pair.open(Scopes::ALL, Scopes::ALL);
    let err = pair
        .client
        .ch
        .send(DataTransmission::MiscData(Payload::new(vec![0; 20_000])))
        .unwrap_err();
    assert!(
        matches!(err, Error::PacketTooLarge { limit: 16384, .. }),
        "{err:?}"
    );
    // The server's own limit does not restrict what it sends to the client.
    pair.server
        .ch
        .send(DataTransmission::MiscData(Payload::new(vec![0; 20_000])))
        .unwrap();
    pair.drive();
    assert_eq!(pair.client.packets().len(), 1);
}

#[test]
fn file_transfer_over_a_channel() {
    use crate::packet::{FileMessage, FileName, TransferId};
    use crate::transfer::{FileReceiver, FileSender, max_chunk_size_for_frame};

    let mut pair = Pair::new(38);
    pair.split = Some(777);
    pair.latency = Duration::from_millis(1);
    pair.open(Scopes::ALL, Scopes::ALL);
    let content: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let peer_limit = pair.client.ch.remote_hello().unwrap().max_frame_size;
    let chunk_size = max_chunk_size_for_frame(peer_limit).min(32 * 1024);

    let mut tx = FileSender::new(
        TransferId(1),
        FileName::new("data.bin").unwrap(),
        content.len() as u64,
        chunk_size,
        crate::packet::ContentHash::of(&content),
    )
    .unwrap();
    let file = |m| DataTransmission::File(m);
    pair.client
        .ch
        .send(file(FileMessage::Offer(tx.offer().clone())))
        .unwrap();
    pair.drive();

    let mut rx = None;
    let mut written = Vec::new();
    let mut verified = None;
    let mut seen = 0;
    loop {
        // Server: handle what arrived.
        let server_packets = pair.server.packets();
        for packet in &server_packets[seen..] {
            let crate::Packet::DataTransmission(DataTransmission::File(msg)) = packet else {
                panic!()
            };
            match msg {
                FileMessage::Offer(offer) => {
                    let mut r = FileReceiver::new(offer.clone(), 1 << 20).unwrap();
                    pair.server
                        .ch
                        .send(file(FileMessage::Accept(r.accept().unwrap())))
                        .unwrap();
                    rx = Some(r);
                }
                FileMessage::Chunk(chunk) => {
                    let write = rx.as_mut().unwrap().handle_chunk(chunk).unwrap();
                    assert_eq!(write.offset as usize, written.len());
                    written.extend_from_slice(&chunk.data);
                }
                FileMessage::Done(done) => {
                    verified = Some(rx.as_mut().unwrap().handle_done(done).unwrap())
                }
                other => panic!("{other:?}"),
            }
        }
        seen = server_packets.len();
        // Client: react to the accept, then stream chunks.
        for packet in pair.client.packets() {
            if let crate::Packet::DataTransmission(DataTransmission::File(FileMessage::Accept(a))) =
                packet
                && tx.progress().transferred == 0
                && !tx.is_finished()
                && tx.next_read().is_none()
            {
                tx.handle_accept(&a).unwrap();
            }
        }
        while let Some(req) = tx.next_read() {
            let range = req.offset as usize..(req.offset + u64::from(req.len)) as usize;
            let chunk = tx.chunk(req.offset, content[range].to_vec()).unwrap();
            pair.client
                .ch
                .send(file(FileMessage::Chunk(chunk)))
                .unwrap();
        }
        if tx.progress().transferred == content.len() as u64 && !tx.is_finished() {
            pair.client
                .ch
                .send(file(FileMessage::Done(tx.done().unwrap())))
                .unwrap();
        }
        pair.drive();
        if verified.is_some() {
            break;
        }
        assert!(
            pair.now < Instant::from_duration(secs(5)),
            "transfer stalled"
        );
    }
    assert_eq!(verified, Some(crate::packet::ContentHash::of(&content)));
    assert_eq!(written, content);
}

#[test]
fn channels_without_a_peer_are_deterministic_constructions() {
    // Two inbound channels built from the same seed emit identical bytes
    // for the same input: no hidden randomness or clock.
    let keys = Keypair::generate(&mut rng(40));
    let run = || {
        let mut r = rng(41);
        let mut ch = Channel::new_outbound(
            Arc::new(ChannelConfig::default()),
            &keys,
            None,
            Instant::ZERO,
            &mut r,
        )
        .unwrap();
        ch.poll_transmit().unwrap()
    };
    assert_eq!(run(), run());
}

#[test]
fn bytes_opened_in_place_give_the_same_packets_in_any_split() {
    let packets: Vec<Packet> = [10usize, 70_000, 1, 65_000, 300]
        .iter()
        .enumerate()
        .map(|(i, &len)| DataTransmission::MiscData(Payload::new(vec![i as u8; len])).into())
        .collect();
    for cut in [1usize, 2, 7, 1000, 65_537, 70_000, usize::MAX] {
        let mut pair = Pair::new(40);
        pair.open(Scopes::DATA, Scopes::DATA);
        for packet in &packets {
            pair.client.ch.send(packet.clone()).unwrap();
        }
        let mut stream = Vec::new();
        while pair.client.ch.poll_transmit_into(&mut stream) {}
        let piece_len = cut.min(stream.len());
        for piece in stream.chunks_mut(piece_len) {
            pair.server.ch.handle_bytes_mut(pair.now, piece).unwrap();
        }
        let received: Vec<Packet> = std::iter::from_fn(|| pair.server.ch.poll_event())
            .filter_map(|event| match event {
                ChannelEvent::Packet(packet) => Some(packet),
                _ => None,
            })
            .collect();
        assert_eq!(received, packets, "pieces of {cut}");
    }
}

#[test]
fn a_speed_test_the_grants_do_not_allow_is_refused_by_the_channel_at_once() {
    use crate::perf::{Perf, PerfRefusal};
    let mut pair = Pair::new(41);
    // The client may ask; the server's grants for it hold messages only.
    pair.open(Scopes::MESSAGE | Scopes::PERF, Scopes::MESSAGE);
    let request = Perf::Request {
        id: 6,
        upload: 1 << 20,
        download: 0,
    };
    pair.client.ch.send(request).unwrap();
    pair.drive();
    assert_eq!(
        pair.client.packets(),
        vec![Packet::Perf(Perf::Refused {
            id: 6,
            reason: PerfRefusal::NotGranted
        })]
    );
    assert!(pair.server.packets().is_empty());
    assert!(pair.server.events().contains(&ChannelEvent::PacketRefused {
        kind: PacketKind::Perf,
        reason: crate::channel::RefuseReason::NotPermitted,
    }));
    // Test data without the scope is refused undecoded, and not answered.
    let data = Perf::Data {
        id: 6,
        bytes: vec![0; 1000].into(),
    };
    pair.client.ch.send(data).unwrap();
    pair.drive();
    assert_eq!(pair.client.packets().len(), 1);
}
