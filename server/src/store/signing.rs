//! Network tasks, heartbeats and the signing history: the authority's side
//! of the bootstrap registry.
//!
//! The signing history is append-only and hash-chained: each entry's hash
//! covers the previous entry's hash and the entry itself
//! ([`entry_hash`]), so no entry can be changed or removed without
//! breaking every later hash. Appending takes the registry's state row
//! first (an `UPDATE`), which serializes appends across instances on one
//! PostgreSQL.

use async_trait::async_trait;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{NewAudit, StoreError};

/// A signature about to be recorded.
#[derive(Clone, Debug)]
pub struct NewSignature {
    /// When, Unix ms.
    pub at_ms: i64,
    /// `snapshot` or `task`.
    pub kind: &'static str,
    /// SHA-256 of the signed bytes, lowercase hex.
    pub digest: String,
    /// The signing key's fingerprint.
    pub fingerprint: String,
    /// The armored signature.
    pub signature: String,
}

/// One entry of the signing history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct HistoryEntry {
    /// Its position, from 1.
    pub seq: i64,
    /// When, Unix ms.
    pub at_ms: i64,
    /// `snapshot` or `task`.
    pub kind: String,
    /// SHA-256 of the signed bytes, hex.
    pub digest: String,
    /// The signing key's fingerprint.
    pub fingerprint: String,
    /// The armored signature.
    pub signature: String,
    /// The previous entry's hash (empty for the first).
    pub prev_hash: String,
    /// This entry's hash ([`entry_hash`]).
    pub entry_hash: String,
}

/// A queued task, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct StoredTask {
    /// Its sequence.
    pub seq: i64,
    /// `*` or a peer id.
    pub target: String,
    /// The exact signed text.
    pub task: String,
    /// The armored signature.
    pub signature: String,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// Who queued it.
    pub queued_by: String,
    /// When, Unix ms.
    pub queued_at_ms: i64,
}

/// What a heartbeat found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeartbeatSeen {
    /// Newer than the last: recorded.
    Accepted,
    /// Not newer than the last one accepted: a replay.
    Replayed,
    /// The peer has no live record here.
    Unknown,
}

/// The key an armored signature is looked up by: SHA-256 of its text
/// without whitespace (line endings and wrapping do not matter).
pub fn signature_digest(armored: &str) -> String {
    let compact: String = armored.split_whitespace().collect();
    sha256_hex(compact.as_bytes())
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(bytes))
}

/// The hash of a history entry: SHA-256 over the previous hash and every
/// field, one per line (the signature by its own hash).
pub fn entry_hash(prev_hash: &str, seq: i64, entry: &NewSignature) -> String {
    let text = format!(
        "{prev_hash}\n{seq}\n{}\n{}\n{}\n{}\n{}",
        entry.at_ms,
        entry.kind,
        entry.digest,
        entry.fingerprint,
        sha256_hex(entry.signature.as_bytes())
    );
    sha256_hex(text.as_bytes())
}

/// Whether `entries` (oldest first, consecutive) chain up: each hash is
/// right and names the one before; the first names the hash it follows
/// (empty for the history's first entry). The first broken position.
pub fn verify_chain(entries: &[HistoryEntry]) -> Result<(), i64> {
    let mut prev = entries
        .first()
        .map(|e| e.prev_hash.clone())
        .unwrap_or_default();
    if entries
        .first()
        .is_some_and(|e| e.seq == 1 && !e.prev_hash.is_empty())
    {
        return Err(1);
    }
    for e in entries {
        let fields = NewSignature {
            at_ms: e.at_ms,
            kind: match e.kind.as_str() {
                "snapshot" => "snapshot",
                "task" => "task",
                _ => return Err(e.seq),
            },
            digest: e.digest.clone(),
            fingerprint: e.fingerprint.clone(),
            signature: e.signature.clone(),
        };
        if e.prev_hash != prev || e.entry_hash != entry_hash(&prev, e.seq, &fields) {
            return Err(e.seq);
        }
        prev.clone_from(&e.entry_hash);
    }
    Ok(())
}

/// Tasks, heartbeats and the signing history.
#[async_trait]
pub trait SigningStore: Send + Sync + 'static {
    /// Appends a signature to the history; the entry.
    async fn append_signature(&self, entry: &NewSignature) -> Result<HistoryEntry, StoreError>;
    /// The next task sequence number (a gap is left if it is never used).
    async fn next_task_seq(&self) -> Result<i64, StoreError>;
    /// Stores a signed task, its history entry and its audit row in one
    /// transaction.
    async fn queue_task(
        &self,
        task: &StoredTask,
        signature: &NewSignature,
        audit: &NewAudit,
    ) -> Result<HistoryEntry, StoreError>;
    /// Records a heartbeat of `peer_id` made at `at_ms` that acknowledges
    /// `acked_task`, if newer than the last and the peer has a record
    /// unexpired at `now_s`.
    async fn record_heartbeat(
        &self,
        peer_id: &str,
        at_ms: i64,
        acked_task: i64,
        now_s: i64,
    ) -> Result<HeartbeatSeen, StoreError>;
    /// The unexpired tasks for `peer_id` (or for all) after `after`, oldest
    /// first, at most `limit`.
    async fn tasks_for(
        &self,
        peer_id: &str,
        after: i64,
        now_s: i64,
        limit: i64,
    ) -> Result<Vec<StoredTask>, StoreError>;
    /// The most recent tasks, newest first.
    async fn recent_tasks(&self, limit: i64) -> Result<Vec<StoredTask>, StoreError>;
    /// The history entries whose signed bytes or whose signature has this
    /// digest ([`sha256_hex`] of the bytes, [`signature_digest`] of a
    /// signature).
    async fn find_signature(&self, digest: &str) -> Result<Vec<HistoryEntry>, StoreError>;
    /// The latest `limit` history entries, newest first.
    async fn latest_signatures(&self, limit: i64) -> Result<Vec<HistoryEntry>, StoreError>;
    /// History entries after `after` (oldest first, at most `limit`).
    async fn signing_history(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<HistoryEntry>, StoreError>;
}

/// Implements [`SigningStore`] for a struct with a `pool: sqlx::Pool<$db>`
/// field; both backends run the same SQL.
macro_rules! signing_store {
    ($store:ty) => {
        impl $store {
            async fn append_in(
                tx: &mut sqlx::Transaction<'_, <$store as $crate::store::signing::HasDb>::Db>,
                entry: &$crate::store::NewSignature,
            ) -> Result<$crate::store::HistoryEntry, sqlx::Error> {
                // Taking the state row first serializes appends.
                let (seq, prev_hash): (i64, String) = sqlx::query_as(
                    "UPDATE bootstrap_state SET history_len = history_len + 1 WHERE id = 1 \
                     RETURNING history_len, history_head",
                )
                .fetch_one(&mut **tx)
                .await?;
                let entry_hash = $crate::store::signing::entry_hash(&prev_hash, seq, entry);
                sqlx::query(
                    "INSERT INTO signing_history (seq, at_ms, kind, digest, fingerprint, signature, \
                     signature_digest, prev_hash, entry_hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(seq)
                .bind(entry.at_ms)
                .bind(entry.kind)
                .bind(&entry.digest)
                .bind(&entry.fingerprint)
                .bind(&entry.signature)
                .bind($crate::store::signing::signature_digest(&entry.signature))
                .bind(&prev_hash)
                .bind(&entry_hash)
                .execute(&mut **tx)
                .await?;
                sqlx::query("UPDATE bootstrap_state SET history_head = $1 WHERE id = 1")
                    .bind(&entry_hash)
                    .execute(&mut **tx)
                    .await?;
                Ok($crate::store::HistoryEntry {
                    seq,
                    at_ms: entry.at_ms,
                    kind: entry.kind.to_owned(),
                    digest: entry.digest.clone(),
                    fingerprint: entry.fingerprint.clone(),
                    signature: entry.signature.clone(),
                    prev_hash,
                    entry_hash,
                })
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::SigningStore for $store {
            async fn append_signature(
                &self,
                entry: &$crate::store::NewSignature,
            ) -> Result<$crate::store::HistoryEntry, $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                let appended = Self::append_in(&mut tx, entry).await?;
                tx.commit().await?;
                Ok(appended)
            }

            async fn next_task_seq(&self) -> Result<i64, $crate::store::StoreError> {
                Ok(sqlx::query_scalar(
                    "UPDATE bootstrap_state SET task_seq = task_seq + 1 WHERE id = 1 \
                     RETURNING task_seq",
                )
                .fetch_one(&self.pool)
                .await?)
            }

            async fn queue_task(
                &self,
                task: &$crate::store::StoredTask,
                signature: &$crate::store::NewSignature,
                audit: &$crate::store::NewAudit,
            ) -> Result<$crate::store::HistoryEntry, $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO bootstrap_tasks (seq, target, task, signature, expires_at, \
                     queued_by, queued_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(task.seq)
                .bind(&task.target)
                .bind(&task.task)
                .bind(&task.signature)
                .bind(task.expires_at)
                .bind(&task.queued_by)
                .bind(task.queued_at_ms)
                .execute(&mut *tx)
                .await?;
                let entry = Self::append_in(&mut tx, signature).await?;
                $crate::store::audit_row!(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(entry)
            }

            async fn record_heartbeat(
                &self,
                peer_id: &str,
                at_ms: i64,
                acked_task: i64,
                now_s: i64,
            ) -> Result<$crate::store::HeartbeatSeen, $crate::store::StoreError> {
                use $crate::store::HeartbeatSeen;
                let updated = sqlx::query(
                    "UPDATE bootstrap_peers SET last_heartbeat_ms = $2, acked_task = $3 \
                     WHERE peer_id = $1 AND expires_at > $4 AND last_heartbeat_ms < $2",
                )
                .bind(peer_id)
                .bind(at_ms)
                .bind(acked_task)
                .bind(now_s)
                .execute(&self.pool)
                .await?
                .rows_affected();
                if updated > 0 {
                    return Ok(HeartbeatSeen::Accepted);
                }
                let live: Option<i64> = sqlx::query_scalar(
                    "SELECT last_heartbeat_ms FROM bootstrap_peers \
                     WHERE peer_id = $1 AND expires_at > $2",
                )
                .bind(peer_id)
                .bind(now_s)
                .fetch_optional(&self.pool)
                .await?;
                Ok(if live.is_some() {
                    HeartbeatSeen::Replayed
                } else {
                    HeartbeatSeen::Unknown
                })
            }

            async fn tasks_for(
                &self,
                peer_id: &str,
                after: i64,
                now_s: i64,
                limit: i64,
            ) -> Result<Vec<$crate::store::StoredTask>, $crate::store::StoreError> {
                Ok(sqlx::query_as(
                    "SELECT seq, target, task, signature, expires_at, queued_by, queued_at_ms \
                     FROM bootstrap_tasks WHERE seq > $2 AND (target = $1 OR target = '*') \
                     AND expires_at > $3 ORDER BY seq LIMIT $4",
                )
                .bind(peer_id)
                .bind(after)
                .bind(now_s)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn recent_tasks(
                &self,
                limit: i64,
            ) -> Result<Vec<$crate::store::StoredTask>, $crate::store::StoreError> {
                Ok(sqlx::query_as(
                    "SELECT seq, target, task, signature, expires_at, queued_by, queued_at_ms \
                     FROM bootstrap_tasks ORDER BY seq DESC LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn find_signature(
                &self,
                digest: &str,
            ) -> Result<Vec<$crate::store::HistoryEntry>, $crate::store::StoreError> {
                Ok(sqlx::query_as(
                    "SELECT seq, at_ms, kind, digest, fingerprint, signature, prev_hash, entry_hash \
                     FROM signing_history WHERE digest = $1 OR signature_digest = $1 ORDER BY seq",
                )
                .bind(digest)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn latest_signatures(
                &self,
                limit: i64,
            ) -> Result<Vec<$crate::store::HistoryEntry>, $crate::store::StoreError> {
                Ok(sqlx::query_as(
                    "SELECT seq, at_ms, kind, digest, fingerprint, signature, prev_hash, entry_hash \
                     FROM signing_history ORDER BY seq DESC LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn signing_history(
                &self,
                after: i64,
                limit: i64,
            ) -> Result<Vec<$crate::store::HistoryEntry>, $crate::store::StoreError> {
                Ok(sqlx::query_as(
                    "SELECT seq, at_ms, kind, digest, fingerprint, signature, prev_hash, entry_hash \
                     FROM signing_history WHERE seq > $1 ORDER BY seq LIMIT $2",
                )
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}
pub(crate) use signing_store;

/// The database type of a store, for the helper that appends inside a
/// transaction.
pub(crate) trait HasDb {
    type Db: sqlx::Database;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: i64) -> NewSignature {
        NewSignature {
            at_ms: 1000 + n,
            kind: "snapshot",
            digest: sha256_hex(&n.to_be_bytes()),
            fingerprint: "F".into(),
            signature: format!("sig {n}"),
        }
    }

    fn chain(n: i64) -> Vec<HistoryEntry> {
        let mut prev = String::new();
        (1..=n)
            .map(|seq| {
                let e = entry(seq);
                let hash = entry_hash(&prev, seq, &e);
                let out = HistoryEntry {
                    seq,
                    at_ms: e.at_ms,
                    kind: e.kind.into(),
                    digest: e.digest,
                    fingerprint: e.fingerprint,
                    signature: e.signature,
                    prev_hash: prev.clone(),
                    entry_hash: hash.clone(),
                };
                prev = hash;
                out
            })
            .collect()
    }

    #[test]
    fn a_chain_verifies_and_any_change_breaks_it() {
        let good = chain(5);
        assert_eq!(verify_chain(&good), Ok(()));
        let mut altered = good.clone();
        altered[2].signature.push('!');
        assert_eq!(verify_chain(&altered), Err(3));
        let mut removed = good.clone();
        removed.remove(1);
        assert_eq!(verify_chain(&removed), Err(3));
        let mut reordered = good;
        reordered.swap(3, 4);
        assert_eq!(verify_chain(&reordered), Err(5));
    }
}
