//! What an administrator may do to the node, from the panel or the
//! terminal: one [`NodeAction`] at a time, audited, its decision saved
//! before the answer. Peers are named by their id or any unambiguous
//! prefix of it.

use std::{net::IpAddr, time::Duration};

use app::api::NodeAction;
use ipnet::IpNet;
use p2pnet::PeerId;

use super::NodeService;
use crate::{
    state::now_ms,
    store::{AccessKind, NewAudit, StoreError},
};

/// Longest message the panel or terminal may send.
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// Why an action was not done.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The input was not acceptable (unknown or ambiguous peer, bad
    /// address, not waiting for approval...): say why.
    #[error("{0}")]
    Invalid(String),
    /// The node tried and failed (the dial failed, the channel closed).
    #[error("{0}")]
    Failed(String),
    /// The decision could not be stored; it was not applied further.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A peer id or a network, for the access list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessTarget {
    /// One peer.
    Peer(PeerId),
    /// An address (a /32 or /128) or a network.
    Network(IpNet),
}

impl AccessTarget {
    /// A full peer id, a CIDR, or an address; prefixes are resolved by the
    /// caller.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(net) = text.parse::<IpNet>() {
            return Ok(Self::Network(net.trunc()));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Self::Network(IpNet::from(ip)));
        }
        text.parse::<PeerId>()
            .map(Self::Peer)
            .map_err(|_| format!("`{text}` is neither a peer id nor an address or CIDR"))
    }

    /// How it is stored and shown.
    pub fn to_text(self) -> String {
        match self {
            Self::Peer(peer) => peer.to_string(),
            Self::Network(net) => net.to_string(),
        }
    }
}

fn failed(error: p2pnet::Error) -> ActionError {
    use p2pnet::Error;
    match error {
        Error::NotPending(peer) => {
            ActionError::Invalid(format!("{peer} is not waiting for approval"))
        }
        Error::UnknownPeer(peer) => ActionError::Invalid(format!("{peer} is not a known peer")),
        Error::NotConnected(peer) => ActionError::Invalid(format!("no channel to {peer}")),
        Error::Denied(reason) => {
            ActionError::Invalid(format!("the access list denies it ({reason:?})"))
        }
        Error::UnknownRoutine(name) => ActionError::Invalid(format!("no routine named `{name}`")),
        Error::InvalidConfig(message) => ActionError::Invalid(message),
        other => ActionError::Failed(other.to_string()),
    }
}

impl NodeService {
    /// The peer whose id starts with `prefix`, among known peers, channels
    /// and pending approvals.
    pub fn resolve(&self, prefix: &str) -> Result<PeerId, ActionError> {
        let prefix = prefix.trim().to_ascii_lowercase();
        if prefix.is_empty() {
            return Err(ActionError::Invalid(
                "a peer id (or a prefix of one) is needed".into(),
            ));
        }
        if let Ok(full) = prefix.parse::<PeerId>() {
            return Ok(full);
        }
        let network = self.network();
        let mut candidates: Vec<PeerId> = network
            .known_peers()
            .into_iter()
            .map(|p| p.peer_id)
            .chain(network.channels().into_iter().filter_map(|c| c.peer))
            .chain(network.pending_approvals().into_iter().map(|p| p.peer))
            .filter(|id| id.to_string().starts_with(&prefix))
            .collect();
        candidates.sort();
        candidates.dedup();
        match candidates.as_slice() {
            [one] => Ok(*one),
            [] => Err(ActionError::Invalid(format!(
                "no peer id starts with `{prefix}`"
            ))),
            many => Err(ActionError::Invalid(format!(
                "`{prefix}` matches {} peers ({}…); give more characters",
                many.len(),
                many.iter()
                    .take(3)
                    .map(PeerId::short)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// An access-list target: an address or CIDR, or a peer id (prefix).
    fn access_target(&self, text: &str) -> Result<AccessTarget, ActionError> {
        let text = text.trim();
        match AccessTarget::parse(text) {
            Ok(target) => Ok(target),
            Err(_) if !text.contains(['/', ':', '.']) => self.resolve(text).map(AccessTarget::Peer),
            Err(reason) => Err(ActionError::Invalid(reason)),
        }
    }

    /// Runs `action` for `actor`; a line saying what was done.
    pub async fn run(&self, actor: &str, action: NodeAction) -> Result<String, ActionError> {
        let audit_name = action.audit_name();
        let network = self.network();
        let (peer_saved, detail, answer) = match action {
            NodeAction::QueueTask { .. } => {
                return Err(ActionError::Invalid(
                    "a bootstrap task is queued by the bootstrap service, not the node".into(),
                ));
            }
            NodeAction::ScanStart { .. }
            | NodeAction::ScanStop { .. }
            | NodeAction::ScanResume { .. } => {
                return Err(ActionError::Invalid(
                    "scan jobs are run by the widescan service, not the node".into(),
                ));
            }
            NodeAction::Approve { peer } => {
                let peer = self.resolve(&peer)?;
                network.approve(peer, None).await.map_err(failed)?;
                (Some(peer), peer.to_string(), format!("approved {peer}"))
            }
            NodeAction::Reject { peer } => {
                let peer = self.resolve(&peer)?;
                network.reject(peer).await.map_err(failed)?;
                (Some(peer), peer.to_string(), format!("rejected {peer}"))
            }
            NodeAction::Connect { target } => {
                let (expected, addr) = match target.trim().split_once('@') {
                    Some((id, addr)) => (Some(self.resolve(id)?), addr),
                    None => (None, target.trim()),
                };
                let addr: std::net::SocketAddr = addr.parse().map_err(|_| {
                    ActionError::Invalid(format!("`{addr}` is not an address:port"))
                })?;
                let peer = match expected {
                    Some(peer) => network.connect_to(peer, addr).await,
                    None => network.connect(addr).await,
                }
                .map_err(failed)?;
                (
                    Some(peer),
                    format!("{peer}@{addr}"),
                    format!("connected to {peer} at {addr}"),
                )
            }
            NodeAction::Disconnect { peer } => {
                let peer = self.resolve(&peer)?;
                network.disconnect(peer).await.map_err(failed)?;
                (None, peer.to_string(), format!("disconnected {peer}"))
            }
            NodeAction::Remove { peer } => {
                let peer = self.resolve(&peer)?;
                if !network.remove_peer(peer).await {
                    return Err(ActionError::Invalid(format!(
                        "{peer} is neither known nor connected"
                    )));
                }
                (Some(peer), peer.to_string(), format!("removed {peer}"))
            }
            NodeAction::Block { target } => {
                let target = self.access_target(&target)?;
                let text = target.to_text();
                let audit = self.audit(actor, audit_name, &text);
                // Stored first: a block that did not persist must not look done.
                self.store()
                    .add_access(AccessKind::Block, &text, &audit)
                    .await?;
                match target {
                    AccessTarget::Peer(peer) => network.block_peer(peer),
                    AccessTarget::Network(net) => network.block_network(net),
                }
                return Ok(format!("blocked {text}"));
            }
            NodeAction::Unblock { target } => {
                let target = self.access_target(&target)?;
                let text = target.to_text();
                let audit = self.audit(actor, audit_name, &text);
                let stored = self
                    .store()
                    .remove_access(AccessKind::Block, &text, &audit)
                    .await?;
                let lifted = match target {
                    AccessTarget::Peer(peer) => network.unblock_peer(peer),
                    AccessTarget::Network(net) => network.unblock_network(net),
                };
                if !stored && !lifted {
                    return Err(ActionError::Invalid(format!("{text} is not blocked")));
                }
                return Ok(format!("unblocked {text}"));
            }
            NodeAction::Elevate { peer } => {
                let peer = self.resolve(&peer)?;
                let grant = network.elevate(peer).await.map_err(failed)?;
                (
                    Some(peer),
                    format!("{peer} grant {}", grant.id),
                    format!("elevated {peer}: grant {} ({})", grant.id, grant.scopes),
                )
            }
            NodeAction::Demote { peer } => {
                let peer = self.resolve(&peer)?;
                network.demote(peer).await.map_err(failed)?;
                (
                    Some(peer),
                    peer.to_string(),
                    format!("demoted {peer}: its grants are revoked"),
                )
            }
            NodeAction::Send { peer, text } => {
                let peer = self.resolve(&peer)?;
                if text.trim().is_empty() {
                    return Err(ActionError::Invalid("the message is empty".into()));
                }
                if text.chars().count() > MAX_MESSAGE_CHARS {
                    return Err(ActionError::Invalid(format!(
                        "the message is longer than {MAX_MESSAGE_CHARS} characters"
                    )));
                }
                network
                    .send_message(peer, text.clone())
                    .await
                    .map_err(failed)?;
                (
                    None,
                    format!("{peer}: {} characters", text.chars().count()),
                    format!("sent to {peer}"),
                )
            }
            NodeAction::Perf {
                peer,
                upload,
                download,
            } => {
                let peer = self.resolve(&peer)?;
                let request =
                    super::perf::request(&upload, &download).map_err(ActionError::Invalid)?;
                let report = network.perf(peer, request).await.map_err(|err| match err {
                    p2pnet::Error::PerfTimedOut => ActionError::Failed(format!(
                        "no answer from {peer} in {} s",
                        super::perf::TIMEOUT.as_secs()
                    )),
                    other => failed(other),
                })?;
                self.perf_history().record(now_ms(), report);
                (
                    None,
                    super::perf::audit_detail(peer, &request),
                    super::perf::summary(&report),
                )
            }
            NodeAction::RoutineStart { name } => {
                network.routines().start(&name).map_err(failed)?;
                (None, name.clone(), format!("routine {name} started"))
            }
            NodeAction::RoutineStop { name } => {
                network.routines().stop(&name).map_err(failed)?;
                (None, name.clone(), format!("routine {name} stopped"))
            }
            NodeAction::RoutineInterval { name, secs } => {
                if !(1..=86_400).contains(&secs) {
                    return Err(ActionError::Invalid(
                        "the interval must be between 1 and 86400 seconds".into(),
                    ));
                }
                network
                    .routines()
                    .set_interval(&name, Duration::from_secs(secs))
                    .map_err(failed)?;
                (
                    None,
                    format!("{name} {secs}s"),
                    format!("routine {name} runs every {secs} s"),
                )
            }
        };
        if let Some(peer) = peer_saved {
            self.save_peer(&peer).await?;
        }
        self.store()
            .append_audit(&self.audit(actor, audit_name, &detail))
            .await?;
        Ok(answer)
    }

    fn audit(&self, actor: &str, action: &str, detail: &str) -> NewAudit {
        NewAudit {
            at_ms: now_ms(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            detail: detail.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_targets_parse_ids_addresses_and_networks() {
        let id = p2pnet::PeerId::from_bytes([7; 32]);
        assert_eq!(
            AccessTarget::parse(&id.to_string()),
            Ok(AccessTarget::Peer(id))
        );
        assert_eq!(
            AccessTarget::parse("192.0.2.7").unwrap().to_text(),
            "192.0.2.7/32"
        );
        assert_eq!(
            AccessTarget::parse("2001:db8::1/64").unwrap().to_text(),
            "2001:db8::/64",
            "stored truncated, so unblock finds it"
        );
        assert!(AccessTarget::parse("10.0.0.0/33").is_err());
        assert!(AccessTarget::parse("not-a-target").is_err());
    }
}
