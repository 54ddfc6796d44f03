//! The authority's side of the bootstrap service: network tasks queued
//! for peers, heartbeats that collect them, and the signing history
//! behind every signature issued (snapshots and tasks alike).

use std::{net::IpAddr, time::Instant};

use p2pnet::proto::{PeerId, heartbeat::SignedHeartbeat};
use p2pnet_bootstrap::task::{SignedTask, TASK_FORMAT, Task, TaskAction, TaskTarget};

use super::{BootstrapService, unix_now};
use crate::{
    state::now_ms,
    store::{
        HeartbeatSeen, HistoryEntry, NewAudit, NewSignature, StoreError, StoredTask, sha256_hex,
    },
};

/// Most tasks one heartbeat collects; the rest come with the next.
pub const TASKS_PER_HEARTBEAT: i64 = 64;
/// Longest a task may wait to be collected.
pub const MAX_TASK_TTL_SECS: u64 = 30 * 24 * 3600;

/// Why a heartbeat was refused.
#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    /// Malformed, forged, another network's or out of time (400).
    #[error("{0}")]
    Invalid(String),
    /// Trustless mode, or the peer has no live record here (404).
    #[error("{0}")]
    NotHere(&'static str),
    /// Not newer than the last heartbeat accepted (409).
    #[error("a heartbeat as old as this one was accepted already")]
    Replayed,
    /// Too many requests from this client (429).
    #[error("too many requests from this address; retry after {0:?}")]
    TooMany(std::time::Duration),
    /// The store failed (500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a task could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The input is wrong; the message says how.
    #[error("{0}")]
    Invalid(String),
    /// Trustless mode: there is no key to sign with.
    #[error("tasks need authority mode ([bootstrap] mode = \"authority\")")]
    NoAuthority,
    /// Signing failed.
    #[error("signing the task failed: {0}")]
    Sign(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BootstrapService {
    /// Checks a heartbeat (its text form) from `from` and returns the tasks
    /// queued for its peer after the last one it applied.
    pub async fn heartbeat(
        &self,
        text: &str,
        from: IpAddr,
    ) -> Result<Vec<SignedTask>, HeartbeatError> {
        self.announces
            .check(from, Instant::now())
            .map_err(HeartbeatError::TooMany)?;
        if self.authority().is_none() {
            return Err(HeartbeatError::NotHere(
                "this server runs in trustless mode: it sends no tasks",
            ));
        }
        let heartbeat = SignedHeartbeat::parse(text.trim())
            .map_err(|e| HeartbeatError::Invalid(e.to_string()))?;
        let now = u64::try_from(now_ms()).unwrap_or(0);
        let skew = self.config.max_clock_skew.as_millis();
        heartbeat
            .check(
                &self.config.network,
                now,
                u64::try_from(skew).unwrap_or(u64::MAX),
            )
            .map_err(|e| HeartbeatError::Invalid(e.to_string()))?;
        let h = heartbeat.heartbeat();
        let (at_ms, acked) = (
            i64::try_from(h.at_ms)
                .map_err(|_| HeartbeatError::Invalid("time out of range".into()))?,
            i64::try_from(h.after_task)
                .map_err(|_| HeartbeatError::Invalid("task number out of range".into()))?,
        );
        let peer = h.peer.to_string();
        let now_s = i64::try_from(unix_now()).unwrap_or(i64::MAX);
        match self
            .store
            .record_heartbeat(&peer, at_ms, acked, now_s)
            .await?
        {
            HeartbeatSeen::Accepted => {}
            HeartbeatSeen::Replayed => return Err(HeartbeatError::Replayed),
            HeartbeatSeen::Unknown => {
                return Err(HeartbeatError::NotHere(
                    "no live record of this peer here: announce first",
                ));
            }
        }
        let tasks = self
            .store
            .tasks_for(&peer, acked, now_s, TASKS_PER_HEARTBEAT)
            .await?;
        Ok(tasks
            .into_iter()
            .map(|t| SignedTask {
                task: t.task,
                signature: t.signature,
            })
            .collect())
    }

    /// Signs and queues a task for `target`, valid for `ttl_secs`; audited
    /// as `actor`'s. The task as queued.
    pub async fn queue_task(
        &self,
        actor: &str,
        target: TaskTarget,
        action: TaskAction,
        ttl_secs: u64,
    ) -> Result<Task, QueueError> {
        let authority = self.authority().ok_or(QueueError::NoAuthority)?;
        action.validate().map_err(QueueError::Invalid)?;
        if !(1..=MAX_TASK_TTL_SECS).contains(&ttl_secs) {
            return Err(QueueError::Invalid(format!(
                "a task lives 1–{MAX_TASK_TTL_SECS} seconds"
            )));
        }
        let seq = self.store.next_task_seq().await?;
        let now = unix_now();
        let task = Task {
            format: TASK_FORMAT.to_owned(),
            network: self.config.network.clone(),
            seq: u64::try_from(seq).unwrap_or(0),
            issued_at: now,
            expires_at: now + ttl_secs,
            target,
            action,
        };
        let text = task.to_text().map_err(QueueError::Sign)?;
        let signature = authority
            .key
            .sign_detached(text.as_bytes())
            .map_err(|e| QueueError::Sign(e.to_string()))?;
        let at_ms = now_ms();
        let target_word = match task.target {
            TaskTarget::All => "*".to_owned(),
            TaskTarget::Peer(peer) => peer.to_string(),
        };
        let stored = StoredTask {
            seq,
            target: target_word.clone(),
            task: text.clone(),
            signature: signature.clone(),
            expires_at: i64::try_from(task.expires_at).unwrap_or(i64::MAX),
            queued_by: actor.to_owned(),
            queued_at_ms: at_ms,
        };
        let entry = NewSignature {
            at_ms,
            kind: "task",
            digest: sha256_hex(text.as_bytes()),
            fingerprint: authority.key.fingerprint(),
            signature,
        };
        let audit = NewAudit {
            at_ms,
            actor: actor.to_owned(),
            action: "bootstrap.task".to_owned(),
            detail: format!("task {seq} for {target_word}: {}", task.action.kind()),
        };
        self.store.queue_task(&stored, &entry, &audit).await?;
        tracing::info!(seq, target = %target_word, kind = task.action.kind(), "bootstrap task queued");
        Ok(task)
    }

    /// Records a snapshot's signature in the history before it is served.
    pub(super) async fn record_signature(
        &self,
        fingerprint: String,
        signed: &[u8],
        signature: &str,
    ) -> Result<HistoryEntry, StoreError> {
        self.store
            .append_signature(&NewSignature {
                at_ms: now_ms(),
                kind: "snapshot",
                digest: sha256_hex(signed),
                fingerprint,
                signature: signature.to_owned(),
            })
            .await
    }

    /// Whether this server issued a signature over bytes whose SHA-256 is
    /// `digest` (hex), with the history entries that say so.
    pub async fn issued(&self, digest: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        self.store
            .find_signature(&digest.trim().to_ascii_lowercase())
            .await
    }

    /// The latest `limit` history entries, newest first.
    pub async fn latest_signatures(&self, limit: i64) -> Result<Vec<HistoryEntry>, StoreError> {
        self.store.latest_signatures(limit.clamp(1, 100_000)).await
    }

    /// History entries after `after`, oldest first, at most `limit`.
    pub async fn history(&self, after: i64, limit: i64) -> Result<Vec<HistoryEntry>, StoreError> {
        self.store
            .signing_history(after, limit.clamp(1, 1000))
            .await
    }
}

/// How long a task queued from the panel or the terminal lives: a day.
pub const DEFAULT_TASK_TTL_SECS: u64 = 24 * 3600;

/// The words of a task as an administrator types them, e.g. `block ID`,
/// `block-network CIDR`, `disconnect ID`, `authorize ID SCOPES [SECS]`,
/// `revoke ID`, `message TEXT`, `ping`.
pub const TASK_SYNTAX: &str = "`block ID`, `block-network CIDR`, `disconnect ID`, \
     `authorize ID SCOPES [SECS]`, `revoke ID`, `message TEXT` or `ping`";

impl BootstrapService {
    /// Queues a task written as an administrator types it: `target` is `*`
    /// or a peer (a full id, or a prefix of exactly one registered peer),
    /// `action` one of [`TASK_SYNTAX`]. The task as queued.
    pub async fn queue_task_line(
        &self,
        actor: &str,
        target: &str,
        action: &str,
    ) -> Result<Task, QueueError> {
        if self.authority().is_none() {
            return Err(QueueError::NoAuthority);
        }
        let registered = self.registered_ids().await?;
        let resolve = |text: &str| resolve_peer(text, &registered).map_err(QueueError::Invalid);
        let target = match target.trim() {
            "*" | "all" => TaskTarget::All,
            peer => TaskTarget::Peer(resolve(peer)?),
        };
        let words: Vec<&str> = action.split_whitespace().collect();
        let invalid = || QueueError::Invalid(format!("a task is one of {TASK_SYNTAX}"));
        let action = match words.as_slice() {
            [kind, peer] if kind.eq_ignore_ascii_case("block") => TaskAction::BlockPeer {
                peer: resolve(peer)?,
            },
            [kind, cidr] if kind.eq_ignore_ascii_case("block-network") => {
                TaskAction::BlockNetwork {
                    cidr: (*cidr).to_owned(),
                }
            }
            [kind, peer] if kind.eq_ignore_ascii_case("disconnect") => TaskAction::Disconnect {
                peer: resolve(peer)?,
            },
            [kind, peer] if kind.eq_ignore_ascii_case("revoke") => TaskAction::Revoke {
                peer: resolve(peer)?,
            },
            [kind, peer, scopes, rest @ ..] if kind.eq_ignore_ascii_case("authorize") => {
                let ttl_secs = match rest {
                    [] => None,
                    [secs] => Some(secs.parse().map_err(|_| {
                        QueueError::Invalid(format!("`{secs}` is not a whole number of seconds"))
                    })?),
                    _ => return Err(invalid()),
                };
                TaskAction::Authorize {
                    peer: resolve(peer)?,
                    scopes: (*scopes).to_owned(),
                    ttl_secs,
                }
            }
            [kind, _, ..] if kind.eq_ignore_ascii_case("message") => TaskAction::Message {
                // The text is the rest, spacing kept.
                text: action.trim_start()[kind.len()..].trim().to_owned(),
            },
            [kind] if kind.eq_ignore_ascii_case("ping") => TaskAction::Ping,
            _ => return Err(invalid()),
        };
        self.queue_task(actor, target, action, DEFAULT_TASK_TTL_SECS)
            .await
    }

    /// The ids of the peers registered now.
    async fn registered_ids(&self) -> Result<Vec<String>, StoreError> {
        let records = self.registered_records().await?;
        Ok(records.into_iter().map(|r| r.peer_id).collect())
    }

    /// The most recent tasks queued, newest first.
    pub async fn recent_tasks(&self, limit: i64) -> Result<Vec<StoredTask>, StoreError> {
        self.store.recent_tasks(limit.clamp(1, 1000)).await
    }
}

/// A full peer id, or a prefix of exactly one of `registered`.
fn resolve_peer(text: &str, registered: &[String]) -> Result<PeerId, String> {
    if let Ok(peer) = text.parse::<PeerId>() {
        return Ok(peer);
    }
    let needle = text.to_ascii_lowercase();
    let mut matches = registered.iter().filter(|id| id.starts_with(&needle));
    match (matches.next(), matches.next()) {
        (Some(id), None) if !needle.is_empty() => id
            .parse()
            .map_err(|e| format!("registered id `{id}` does not parse: {e}")),
        (Some(_), Some(_)) => Err(format!("`{text}` is the start of several registered peers")),
        _ => Err(format!(
            "`{text}` is neither a peer id nor the start of a registered peer's"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_resolve_by_id_or_unique_prefix() {
        let a = p2pnet::proto::Keypair::from_seed(&[1; 32])
            .peer_id()
            .to_string();
        let b = p2pnet::proto::Keypair::from_seed(&[2; 32])
            .peer_id()
            .to_string();
        let registered = vec![a.clone(), b.clone()];
        assert_eq!(
            resolve_peer(&a, &[]).unwrap().to_string(),
            a,
            "a full id needs no registry"
        );
        assert_eq!(resolve_peer(&a[..6], &registered).unwrap().to_string(), a);
        assert_eq!(
            resolve_peer(&b[..6].to_uppercase(), &registered)
                .unwrap()
                .to_string(),
            b
        );
        assert!(resolve_peer("", &registered).is_err());
        assert!(
            resolve_peer("zzzz", &registered)
                .unwrap_err()
                .contains("neither")
        );
        let twins = vec![format!("{}x", &a[..10]), format!("{}y", &a[..10])];
        assert!(
            resolve_peer(&a[..10], &twins)
                .unwrap_err()
                .contains("several")
        );
    }
}
