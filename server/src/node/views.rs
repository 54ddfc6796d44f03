//! What the panel and the terminal show of the node: plain data built from
//! the network's snapshots (no locks held, nothing changed).

use std::time::SystemTime;

use app::api::{
    ChannelRow, DiscoverySummary, DoctorReport, GrantRow, KnownPeerRow, NodeSummary, PeersView,
    PendingRow, RoutineRow,
};
use p2pnet::{
    ChannelInfo, Direction, KnownPeer,
    proto::{ChannelState, Decision, DenyReason},
};

use super::{
    NodeService,
    actions::ActionError,
    records::{grant_record, source_word, state_word, unix_ms, via_word},
};

fn grant_row(grant: &p2pnet::GrantInfo) -> GrantRow {
    let record = grant_record(grant);
    GrantRow {
        id: record.id,
        scopes: record.scopes,
        max_file_size: record.max_file_size,
        expires_at_ms: record.expires_at_ms,
        granted_by: record.granted_by,
        granted_at_ms: record.granted_at_ms,
    }
}

fn channel_row(c: &ChannelInfo) -> ChannelRow {
    ChannelRow {
        id: c.id,
        peer_id: c.peer.map(|p| p.to_string()),
        addr: c.addr.to_string(),
        direction: match c.direction {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
        .into(),
        state: state_word(c.state).into(),
        scopes: match c.state {
            ChannelState::Open { scopes } => scopes.to_string(),
            _ => String::new(),
        },
        since_ms: unix_ms(c.since),
        rtt_us: c
            .rtt
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        bytes_sent: c.bytes_sent,
        bytes_received: c.bytes_received,
    }
}

impl NodeService {
    /// The node in figures.
    pub fn summary(&self) -> NodeSummary {
        let network = self.network();
        let channels = network.channels();
        let count = |f: fn(&ChannelState) -> bool| {
            u32::try_from(channels.iter().filter(|c| f(&c.state)).count()).unwrap_or(u32::MAX)
        };
        let traffic = network.traffic();
        NodeSummary {
            peer_id: network.local_peer_id().to_string(),
            listen: network
                .local_addr()
                .iter()
                .map(ToString::to_string)
                .collect(),
            channels_open: count(|s| matches!(s, ChannelState::Open { .. })),
            channels_pending: count(|s| *s == ChannelState::PendingApproval),
            channels_handshaking: count(|s| *s == ChannelState::Handshaking),
            known_peers: u32::try_from(network.known_peers().len()).unwrap_or(u32::MAX),
            pending_approvals: u32::try_from(network.pending_approvals().len()).unwrap_or(u32::MAX),
            bytes_sent: traffic.bytes_sent,
            bytes_received: traffic.bytes_received,
            discovery: network.discovery_status().map(|d| DiscoverySummary {
                ports: d.designated_ports.clone(),
                broadcast_port: d.broadcast_port,
                listening: d.listening.iter().map(ToString::to_string).collect(),
                interfaces: d.interfaces.clone(),
                sent: d.datagrams_sent,
                received: d.datagrams_received,
                dropped: d.datagrams_dropped,
                refused: d.denied,
                heard: u32::try_from(d.heard.len()).unwrap_or(u32::MAX),
                settled: d.settled,
            }),
            traffic: self.live().traffic_history(),
        }
    }

    /// Known peers, channels, pending approvals and the access list.
    pub fn peers_view(&self) -> PeersView {
        let network = self.network();
        let policy = network.trust_policy();
        let known = network
            .known_peers()
            .iter()
            .map(|p| KnownPeerRow {
                peer_id: p.peer_id.to_string(),
                source: source_word(p.source),
                addresses: p.addresses.iter().map(ToString::to_string).collect(),
                proven: p.proven_addresses.iter().map(ToString::to_string).collect(),
                first_seen_ms: unix_ms(p.first_seen),
                last_seen_ms: unix_ms(p.last_seen),
                approved: p.approved,
                rejected: p.rejected,
                blocked: policy.access.blocks_peer(&p.peer_id),
                persistent: p.persistent,
                grants: p.grants.iter().map(grant_row).collect(),
            })
            .collect();
        PeersView {
            known,
            channels: network.channels().iter().map(channel_row).collect(),
            pending: network
                .pending_approvals()
                .iter()
                .map(|p| PendingRow {
                    peer_id: p.peer.to_string(),
                    addr: p.addr.to_string(),
                    since_ms: unix_ms(p.since),
                })
                .collect(),
            perf_html: self.perf_history().html(),
            blocked: policy.access.blocked().map(|t| t.to_string()).collect(),
            allowed: policy.access.allowed().map(|t| t.to_string()).collect(),
        }
    }

    /// "Why is this peer (not) connected?", one fact a line.
    pub fn doctor(&self, prefix: &str) -> Result<DoctorReport, ActionError> {
        let peer = self.resolve(prefix)?;
        let network = self.network();
        let known = network.known_peer(&peer);
        let channel = network.channel(&peer);
        let mut lines = Vec::new();
        match &known {
            None => lines.push("not in KnownPeers: never heard of, removed, or pruned".into()),
            Some(k) => lines.extend(known_lines(k)),
        }
        let policy = network.trust_policy();
        let addresses = known
            .as_ref()
            .map(|k| k.addresses.clone())
            .unwrap_or_default();
        let verdict = |decision: Decision| match decision {
            Decision::Allow => "allowed".to_owned(),
            Decision::Deny(DenyReason::BlockedPeer) => "blocked (its id)".to_owned(),
            Decision::Deny(DenyReason::BlockedAddress) => "blocked (its address)".to_owned(),
            Decision::Deny(DenyReason::NotAllowListed) => "not on the allow-list".to_owned(),
        };
        let by_id = policy.access.decide(
            Some(&peer),
            std::net::Ipv6Addr::UNSPECIFIED.into(),
            Direction::Outbound,
        );
        lines.push(format!("access list, by id: {}", verdict(by_id)));
        for addr in &addresses {
            let decision = policy
                .access
                .decide(Some(&peer), addr.ip(), Direction::Outbound);
            lines.push(format!(
                "access list, dialing {addr}: {}",
                verdict(decision)
            ));
        }
        match &channel {
            Some(c) => lines.push(format!(
                "channel: {} ({}, {}, since {}s){}",
                state_word(c.state),
                match c.direction {
                    Direction::Inbound => "it dialled us",
                    Direction::Outbound => "we dialled it",
                },
                c.addr,
                SystemTime::now()
                    .duration_since(c.since)
                    .map_or(0, |d| d.as_secs()),
                c.rtt
                    .map(|rtt| format!(", round trip {:.1} ms", rtt.as_secs_f64() * 1000.0))
                    .unwrap_or_default()
            )),
            None => lines.push("channel: none".into()),
        }
        if network.pending_approvals().iter().any(|p| p.peer == peer) {
            lines.push("waiting for your approval: `approve` or `reject` it".into());
        }
        match network.discovery_status() {
            None => lines.push("discovery: off".into()),
            Some(status) => match status.heard_peers.iter().find(|h| h.peer_id == peer) {
                Some(heard) => lines.push(format!(
                    "discovery: heard by {} from {}, last {}s ago",
                    via_word(heard.via),
                    heard.source,
                    SystemTime::now()
                        .duration_since(heard.last_heard)
                        .map_or(0, |d| d.as_secs())
                )),
                None => lines.push("discovery: not heard (not on this LAN, or quiet)".into()),
            },
        }
        if let Some(k) = &known {
            if k.last_dials.is_empty() {
                lines.push("dials: none this run".into());
            }
            for dial in &k.last_dials {
                let ago = SystemTime::now()
                    .duration_since(dial.at)
                    .map_or(0, |d| d.as_secs());
                lines.push(match &dial.error {
                    None => format!("dial {} {ago}s ago: opened", dial.addr),
                    Some(error) => format!("dial {} {ago}s ago: failed: {error}", dial.addr),
                });
            }
        }
        Ok(DoctorReport {
            peer_id: peer.to_string(),
            lines,
        })
    }

    /// The node's routines.
    pub fn routines(&self) -> Vec<RoutineRow> {
        self.network()
            .routines()
            .list()
            .into_iter()
            .map(|r| RoutineRow {
                name: r.name,
                interval_secs: r.interval.as_secs(),
                running: r.running,
                last_run_ms: r.last_run.map(unix_ms),
                last_error: r.last_error,
                runs: r.runs,
            })
            .collect()
    }
}

fn known_lines(k: &KnownPeer) -> Vec<String> {
    let mut lines = vec![format!("known: source {}", source_word(k.source))];
    lines.push(match (k.approved, k.rejected) {
        (true, _) => "decision: approved (its channels open without asking)".into(),
        (_, true) => "decision: rejected (discovery does not dial it)".into(),
        _ => "decision: none yet (it waits for approval when it connects)".into(),
    });
    if k.persistent {
        lines.push("kept connected: reconnects with backoff".into());
    }
    let claimed: Vec<String> = k
        .addresses
        .iter()
        .filter(|a| !k.proven_addresses.contains(a))
        .map(ToString::to_string)
        .collect();
    let proven: Vec<String> = k.proven_addresses.iter().map(ToString::to_string).collect();
    lines.push(format!(
        "addresses: proven [{}], claimed [{}]",
        proven.join(", "),
        claimed.join(", ")
    ));
    if k.grants.is_empty() {
        lines.push("grants: none (the trust policy's default applies)".into());
    }
    for g in &k.grants {
        let record = grant_record(g);
        lines.push(format!(
            "grant {}: {}{}{} by {}",
            record.id,
            record.scopes,
            record
                .max_file_size
                .map(|cap| format!(", files up to {cap} bytes"))
                .unwrap_or_default(),
            g.expires_at
                .and_then(|at| at.duration_since(SystemTime::now()).ok())
                .map(|left| format!(", {}s left", left.as_secs()))
                .unwrap_or_default(),
            if record.granted_by.is_empty() {
                "?"
            } else {
                &record.granted_by
            }
        ));
    }
    lines
}
