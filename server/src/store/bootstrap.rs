//! The bootstrap registry: the last record each peer announced, and the
//! version that rises with every change (the snapshot's sequence number).
//!
//! Every instance on one database shares both, so a snapshot any of them
//! serves is numbered in one sequence.

use async_trait::async_trait;

use super::StoreError;

/// An announced record, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnouncedRecord {
    /// Printable peer id.
    pub peer_id: String,
    /// The self-signed record's exact text.
    pub record: String,
    /// The record's sequence number (at most `i64::MAX`).
    pub seq: i64,
    /// The record's expiry, Unix seconds.
    pub expires_at: i64,
    /// The address the announce came from.
    pub observed_ip: Option<String>,
    /// When it was announced, Unix ms.
    pub announced_at_ms: i64,
}

/// What [`BootstrapStore::announce`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announced {
    /// Stored; the registry is now at `version`.
    Stored {
        /// The registry's version after the change.
        version: i64,
    },
    /// The same record again: nothing changed.
    Unchanged,
    /// A record with this sequence number or a higher one is stored.
    Stale {
        /// The stored sequence number.
        stored_seq: i64,
    },
    /// The registry holds `max_peers` live records; a new peer must wait.
    Full,
}

/// The bootstrap registry.
#[async_trait]
pub trait BootstrapStore: Send + Sync + 'static {
    /// Stores each record whose peer has none or an older one, in order,
    /// in one transaction (the records and the version's rise land
    /// together); what became of each. A peer not stored yet is refused
    /// while `max_peers` records are held once those expired at `now_s` are
    /// deleted. Batches run one at a time (the state row is taken first),
    /// which keeps the count exact.
    async fn announce_batch(
        &self,
        records: &[AnnouncedRecord],
        max_peers: i64,
        now_s: i64,
    ) -> Result<Vec<Announced>, StoreError>;
    /// The registry's version.
    async fn bootstrap_version(&self) -> Result<i64, StoreError>;
    /// The records unexpired at `now_s`, by peer id, and the version they
    /// are (read in one transaction, so they match).
    async fn live_records(&self, now_s: i64) -> Result<(i64, Vec<AnnouncedRecord>), StoreError>;
    /// Deletes the records expired at `now_s`; how many (the version rises
    /// if any).
    async fn prune_records(&self, now_s: i64) -> Result<u64, StoreError>;
}

/// Implements [`BootstrapStore`] for a struct with a `pool: sqlx::Pool<$db>`
/// field; both backends run the same SQL.
macro_rules! bootstrap_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::BootstrapStore for $store {
            async fn announce_batch(
                &self,
                records: &[$crate::store::AnnouncedRecord],
                max_peers: i64,
                now_s: i64,
            ) -> Result<Vec<$crate::store::Announced>, $crate::store::StoreError> {
                use $crate::store::Announced;
                let mut tx = self.pool.begin().await?;
                // Write first: the version's rise takes the write lock (a
                // row lock on PostgreSQL, so announces to every instance
                // run one batch at a time) before anything is read, so a
                // SQLite transaction never has to upgrade a read snapshot
                // (which fails at once under concurrency instead of
                // waiting). A batch that changes nothing is dropped, and
                // the rise with it.
                let (version, mut peer_rows): (i64, i64) = sqlx::query_as(
                    "UPDATE bootstrap_state SET version = version + 1 WHERE id = 1 \
                     RETURNING version, peer_rows",
                )
                .fetch_one(&mut *tx)
                .await?;
                let rows_before = peer_rows;
                let mut outcomes = Vec::with_capacity(records.len());
                for r in records {
                    let stored: Option<(i64, String)> = sqlx::query_as(
                        "SELECT seq, record FROM bootstrap_peers WHERE peer_id = $1",
                    )
                    .bind(&r.peer_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    match stored {
                        Some((_, text)) if text == r.record => {
                            outcomes.push(Announced::Unchanged);
                            continue;
                        }
                        Some((seq, _)) if seq >= r.seq => {
                            outcomes.push(Announced::Stale { stored_seq: seq });
                            continue;
                        }
                        Some(_) => {}
                        None => {
                            // Full: make room from the expired ones first.
                            if peer_rows >= max_peers {
                                let expired = sqlx::query(
                                    "DELETE FROM bootstrap_peers WHERE expires_at <= $1",
                                )
                                .bind(now_s)
                                .execute(&mut *tx)
                                .await?
                                .rows_affected();
                                peer_rows -= i64::try_from(expired).unwrap_or(0);
                            }
                            if peer_rows >= max_peers {
                                outcomes.push(Announced::Full);
                                continue;
                            }
                            peer_rows += 1;
                        }
                    }
                    sqlx::query(
                        "INSERT INTO bootstrap_peers (peer_id, record, seq, expires_at, observed_ip, \
                         announced_at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (peer_id) DO UPDATE SET record = excluded.record, \
                         seq = excluded.seq, expires_at = excluded.expires_at, \
                         observed_ip = excluded.observed_ip, announced_at_ms = excluded.announced_at_ms",
                    )
                    .bind(&r.peer_id)
                    .bind(&r.record)
                    .bind(r.seq)
                    .bind(r.expires_at)
                    .bind(&r.observed_ip)
                    .bind(r.announced_at_ms)
                    .execute(&mut *tx)
                    .await?;
                    outcomes.push(Announced::Stored { version });
                }
                let changed = outcomes
                    .iter()
                    .any(|o| matches!(o, Announced::Stored { .. }));
                // Expired rows deleted to make room change the list too.
                if changed || peer_rows != rows_before {
                    sqlx::query("UPDATE bootstrap_state SET peer_rows = $1 WHERE id = 1")
                        .bind(peer_rows)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                }
                Ok(outcomes)
            }

            async fn bootstrap_version(&self) -> Result<i64, $crate::store::StoreError> {
                Ok(
                    sqlx::query_scalar("SELECT version FROM bootstrap_state WHERE id = 1")
                        .fetch_one(&self.pool)
                        .await?,
                )
            }

            async fn live_records(
                &self,
                now_s: i64,
            ) -> Result<(i64, Vec<$crate::store::AnnouncedRecord>), $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                let version: i64 =
                    sqlx::query_scalar("SELECT version FROM bootstrap_state WHERE id = 1")
                        .fetch_one(&mut *tx)
                        .await?;
                let rows: Vec<(String, String, i64, i64, Option<String>, i64)> = sqlx::query_as(
                    "SELECT peer_id, record, seq, expires_at, observed_ip, announced_at_ms \
                     FROM bootstrap_peers WHERE expires_at > $1 ORDER BY peer_id",
                )
                .bind(now_s)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                let records = rows
                    .into_iter()
                    .map(
                        |(peer_id, record, seq, expires_at, observed_ip, announced_at_ms)| {
                            $crate::store::AnnouncedRecord {
                                peer_id,
                                record,
                                seq,
                                expires_at,
                                observed_ip,
                                announced_at_ms,
                            }
                        },
                    )
                    .collect();
                Ok((version, records))
            }

            async fn prune_records(&self, now_s: i64) -> Result<u64, $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                let deleted = sqlx::query("DELETE FROM bootstrap_peers WHERE expires_at <= $1")
                    .bind(now_s)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if deleted > 0 {
                    sqlx::query(
                        "UPDATE bootstrap_state SET version = version + 1, \
                         peer_rows = peer_rows - $1 WHERE id = 1",
                    )
                    .bind(i64::try_from(deleted).unwrap_or(0))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(deleted)
            }
        }
    };
}
pub(crate) use bootstrap_store;
