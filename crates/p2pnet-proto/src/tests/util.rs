//! A quinn-style test harness: two channels joined by an in-memory link on
//! a virtual clock, with optional latency, byte splitting, and per-side
//! "blackholes" that drop everything a side sends.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::{
    Channel, ChannelConfig, ChannelEvent, CloseReason, Error, Grant, GrantId, Grants, Instant,
    Keypair, Packet, PeerId, Scopes,
};

pub(super) fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// One grant of `scopes` (id 1) that never expires.
pub(super) fn grants(scopes: Scopes) -> Grants {
    Grants::single(Grant::new(GrantId(1), scopes))
}

/// One end of the link.
pub(super) struct Side {
    pub(super) ch: Channel,
    pub(super) keys: Keypair,
    /// Every event, with the virtual time it was collected at.
    pub(super) events: Vec<(Instant, ChannelEvent)>,
    /// Errors returned by `handle_bytes`.
    pub(super) errors: Vec<Error>,
    /// Every transmit this side produced, in order (for replay tests).
    pub(super) sent: Vec<Vec<u8>>,
    /// Drop everything this side sends.
    pub(super) blackhole: bool,
    /// In flight towards this side: (delivery time, bytes).
    inbox: VecDeque<(Instant, Vec<u8>)>,
}

impl Side {
    fn new(ch: Channel, keys: Keypair) -> Self {
        Self {
            ch,
            keys,
            events: Vec::new(),
            errors: Vec::new(),
            sent: Vec::new(),
            blackhole: false,
            inbox: VecDeque::new(),
        }
    }

    pub(super) fn id(&self) -> PeerId {
        self.keys.peer_id()
    }

    /// Events without their timestamps.
    pub(super) fn events(&self) -> Vec<ChannelEvent> {
        self.events.iter().map(|(_, e)| e.clone()).collect()
    }

    /// Application packets delivered so far.
    pub(super) fn packets(&self) -> Vec<Packet> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                ChannelEvent::Packet(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    }

    /// The `Closed` event, if any: (time, reason, by_remote).
    pub(super) fn closed(&self) -> Option<(Instant, CloseReason, bool)> {
        self.events.iter().find_map(|(t, e)| match e {
            ChannelEvent::Closed { reason, by_remote } => Some((*t, reason.clone(), *by_remote)),
            _ => None,
        })
    }

    /// Time of the first event matching `pred`.
    pub(super) fn time_of(&self, pred: impl Fn(&ChannelEvent) -> bool) -> Option<Instant> {
        self.events.iter().find(|(_, e)| pred(e)).map(|(t, _)| *t)
    }

    fn collect(&mut self, now: Instant) -> bool {
        let mut any = false;
        while let Some(event) = self.ch.poll_event() {
            self.events.push((now, event));
            any = true;
        }
        any
    }
}

/// Two channels, `client` (outbound) and `server` (inbound).
pub(super) struct Pair {
    pub(super) now: Instant,
    pub(super) client: Side,
    pub(super) server: Side,
    /// One-way delay.
    pub(super) latency: Duration,
    /// Deliver bytes in pieces of at most this size.
    pub(super) split: Option<usize>,
}

impl Pair {
    pub(super) fn new(seed: u64) -> Self {
        Self::with_configs(ChannelConfig::default(), ChannelConfig::default(), seed)
    }

    pub(super) fn with_configs(client: ChannelConfig, server: ChannelConfig, seed: u64) -> Self {
        let mut rng = rng(seed);
        let client_keys = Keypair::generate(&mut rng);
        let server_keys = Keypair::generate(&mut rng);
        let expected = server_keys.peer_id();
        Self::build(
            client,
            client_keys,
            server,
            server_keys,
            Some(expected),
            seed,
        )
    }

    /// Full control over keys and the client's expected peer.
    pub(super) fn build(
        client_config: ChannelConfig,
        client_keys: Keypair,
        server_config: ChannelConfig,
        server_keys: Keypair,
        expected: Option<PeerId>,
        seed: u64,
    ) -> Self {
        let mut rng = rng(seed.wrapping_add(1));
        let now = Instant::ZERO;
        let client = Channel::new_outbound(
            Arc::new(client_config),
            &client_keys,
            expected,
            now,
            &mut rng,
        )
        .unwrap();
        let server =
            Channel::new_inbound(Arc::new(server_config), &server_keys, now, &mut rng).unwrap();
        Self {
            now,
            client: Side::new(client, client_keys),
            server: Side::new(server, server_keys),
            latency: Duration::ZERO,
            split: None,
        }
    }

    /// Handshake, then approve both sides with one permanent grant of the
    /// given scopes each.
    pub(super) fn open(&mut self, client: Scopes, server: Scopes) {
        self.open_with(grants(client), grants(server));
    }

    /// Handshake, then approve both sides with the given grants.
    pub(super) fn open_with(&mut self, client: Grants, server: Grants) {
        self.drive();
        self.client.ch.approve(client).unwrap();
        self.server.ch.approve(server).unwrap();
        self.drive();
    }

    /// Runs until nothing is in flight, advancing the clock only as far as
    /// deliveries need (timers that fall due on the way fire).
    pub(super) fn drive(&mut self) {
        loop {
            while self.step() {}
            let next = [self.client.inbox.front(), self.server.inbox.front()]
                .into_iter()
                .flatten()
                .map(|(t, _)| *t)
                .min();
            match next {
                Some(t) => {
                    let timer = self.next_timer().filter(|timer| *timer < t);
                    self.now = self.now.max(timer.unwrap_or(t));
                }
                None => return,
            }
        }
    }

    /// Runs for `duration` of virtual time, firing every timer and delivery
    /// in order.
    pub(super) fn advance(&mut self, duration: Duration) {
        let end = self.now + duration;
        loop {
            while self.step() {}
            let next = [
                self.client.inbox.front().map(|(t, _)| *t),
                self.server.inbox.front().map(|(t, _)| *t),
                self.next_timer(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t <= end => self.now = self.now.max(t),
                _ => {
                    self.now = end;
                    while self.step() {}
                    return;
                }
            }
        }
    }

    /// Moves transmits onto the link, delivers what is due, fires due
    /// timers, and collects events. Returns whether anything happened.
    pub(super) fn step(&mut self) -> bool {
        let mut any = self.flush();
        any |= Self::deliver(self.now, self.split, &mut self.server);
        any |= Self::deliver(self.now, self.split, &mut self.client);
        for side in [&mut self.client, &mut self.server] {
            if side.ch.poll_timeout().is_some_and(|t| t <= self.now) {
                side.ch.handle_timeout(self.now);
                any = true;
            }
        }
        any |= self.flush();
        any |= self.client.collect(self.now);
        any |= self.server.collect(self.now);
        any
    }

    fn flush(&mut self) -> bool {
        let at = self.now + self.latency;
        let mut any = false;
        while let Some(bytes) = self.client.ch.poll_transmit() {
            self.client.sent.push(bytes.clone());
            if !self.client.blackhole {
                self.server.inbox.push_back((at, bytes));
            }
            any = true;
        }
        while let Some(bytes) = self.server.ch.poll_transmit() {
            self.server.sent.push(bytes.clone());
            if !self.server.blackhole {
                self.client.inbox.push_back((at, bytes));
            }
            any = true;
        }
        any
    }

    fn deliver(now: Instant, split: Option<usize>, to: &mut Side) -> bool {
        let mut any = false;
        while to.inbox.front().is_some_and(|(t, _)| *t <= now) {
            let Some((_, bytes)) = to.inbox.pop_front() else {
                break;
            };
            for piece in bytes.chunks(split.unwrap_or(usize::MAX).max(1)) {
                if let Err(err) = to.ch.handle_bytes(now, piece) {
                    to.errors.push(err);
                }
            }
            any = true;
        }
        any
    }

    fn next_timer(&self) -> Option<Instant> {
        [self.client.ch.poll_timeout(), self.server.ch.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }
}
