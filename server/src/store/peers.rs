//! The node's persistent peer state: known peers with what the administrator
//! decided about them and their grants, and the access list.
//!
//! Written so a restart forgets nothing decided: every decision is stored
//! when it is made (with its audit entry in the same transaction for the
//! access list), and the node's table is saved in batches.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{NewAudit, StoreError};

/// A peer the node knows about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownPeerRecord {
    /// Printable peer id.
    pub peer_id: String,
    /// Addresses it may be reached at, most recent last.
    pub addresses: Vec<String>,
    /// The subset a connection or the administrator proved.
    pub proven: Vec<String>,
    /// How it was learned.
    pub source: String,
    /// First seen, Unix ms.
    pub first_seen_ms: i64,
    /// Last seen, Unix ms.
    pub last_seen_ms: i64,
    /// `undecided`, `approved` or `rejected`.
    pub decision: String,
    /// Kept connected.
    pub persistent: bool,
    /// Its grants.
    pub grants: Vec<GrantRecord>,
}

/// A stored grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    /// Its id (0: the approval's base grant).
    pub id: u64,
    /// Scopes, as `message,file`.
    pub scopes: String,
    /// A file-size cap.
    pub max_file_size: Option<u64>,
    /// Expiry, Unix ms.
    pub expires_at_ms: Option<i64>,
    /// Who granted it.
    pub granted_by: String,
    /// When, Unix ms.
    pub granted_at_ms: i64,
}

/// Block or allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessKind {
    /// A blocked peer id or network.
    Block,
    /// An allow-listed peer id or network.
    Allow,
}

impl AccessKind {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Allow => "allow",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        match word {
            "block" => Some(Self::Block),
            "allow" => Some(Self::Allow),
            _ => None,
        }
    }
}

/// One access-list entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessEntry {
    /// Block or allow.
    pub kind: AccessKind,
    /// A peer id or a network (CIDR).
    pub target: String,
    /// When it was added, Unix ms.
    pub created_at_ms: i64,
}

/// The node's peers and access list.
#[async_trait]
pub trait PeerStore: Send + Sync + 'static {
    /// Inserts or replaces these peers, keeping each one's first-seen time,
    /// in one transaction.
    async fn save_known_peers(&self, peers: &[KnownPeerRecord]) -> Result<(), StoreError>;
    /// Deletes these peers (forgotten by the node), in one transaction.
    async fn delete_known_peers(&self, peer_ids: &[String]) -> Result<(), StoreError>;
    /// All known peers, most recently seen first.
    async fn known_peers(&self) -> Result<Vec<KnownPeerRecord>, StoreError>;
    /// Number of known peers.
    async fn count_known_peers(&self) -> Result<u64, StoreError>;
    /// Adds an access-list entry and its audit entry in one transaction;
    /// false if it was there already.
    async fn add_access(
        &self,
        kind: AccessKind,
        target: &str,
        audit: &NewAudit,
    ) -> Result<bool, StoreError>;
    /// Removes an access-list entry and appends its audit entry in one
    /// transaction; false if it was not there (nothing is written then).
    async fn remove_access(
        &self,
        kind: AccessKind,
        target: &str,
        audit: &NewAudit,
    ) -> Result<bool, StoreError>;
    /// The access list, oldest first.
    async fn access_list(&self) -> Result<Vec<AccessEntry>, StoreError>;
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String, sqlx::Error> {
    serde_json::to_string(value).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

pub(crate) fn from_json<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

pub(crate) fn access_kind(word: &str) -> Result<AccessKind, sqlx::Error> {
    AccessKind::parse(word)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown access kind `{word}`").into()))
}

/// Implements [`PeerStore`] for a struct with a `pool: sqlx::Pool<$db>`
/// field; both backends run the same SQL.
macro_rules! peer_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::PeerStore for $store {
            async fn save_known_peers(
                &self,
                peers: &[$crate::store::KnownPeerRecord],
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::peers::to_json;
                let mut tx = self.pool.begin().await?;
                for p in peers {
                    sqlx::query(
                        "INSERT INTO known_peers (peer_id, addresses, proven, source, first_seen_ms, \
                         last_seen_ms, decision, persistent, grants) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                         ON CONFLICT (peer_id) DO UPDATE SET addresses = excluded.addresses, \
                         proven = excluded.proven, source = excluded.source, \
                         last_seen_ms = excluded.last_seen_ms, decision = excluded.decision, \
                         persistent = excluded.persistent, grants = excluded.grants",
                    )
                    .bind(&p.peer_id)
                    .bind(to_json(&p.addresses)?)
                    .bind(to_json(&p.proven)?)
                    .bind(&p.source)
                    .bind(p.first_seen_ms)
                    .bind(p.last_seen_ms)
                    .bind(&p.decision)
                    .bind(i64::from(p.persistent))
                    .bind(to_json(&p.grants)?)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn delete_known_peers(
                &self,
                peer_ids: &[String],
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                for id in peer_ids {
                    sqlx::query("DELETE FROM known_peers WHERE peer_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn known_peers(
                &self,
            ) -> Result<Vec<$crate::store::KnownPeerRecord>, $crate::store::StoreError> {
                use sqlx::Row as _;
                use $crate::store::peers::from_json;
                let rows = sqlx::query(
                    "SELECT peer_id, addresses, proven, source, first_seen_ms, last_seen_ms, \
                     decision, persistent, grants FROM known_peers \
                     ORDER BY last_seen_ms DESC, peer_id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|r| {
                        let persistent: i64 = r.try_get("persistent")?;
                        Ok($crate::store::KnownPeerRecord {
                            peer_id: r.try_get("peer_id")?,
                            addresses: from_json(&r.try_get::<String, _>("addresses")?)?,
                            proven: from_json(&r.try_get::<String, _>("proven")?)?,
                            source: r.try_get("source")?,
                            first_seen_ms: r.try_get("first_seen_ms")?,
                            last_seen_ms: r.try_get("last_seen_ms")?,
                            decision: r.try_get("decision")?,
                            persistent: persistent != 0,
                            grants: from_json(&r.try_get::<String, _>("grants")?)?,
                        })
                    })
                    .collect()
            }

            async fn count_known_peers(&self) -> Result<u64, $crate::store::StoreError> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM known_peers")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn add_access(
                &self,
                kind: $crate::store::AccessKind,
                target: &str,
                audit: &$crate::store::NewAudit,
            ) -> Result<bool, $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                let added = sqlx::query(
                    "INSERT INTO access_list (kind, target, created_at_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (kind, target) DO NOTHING",
                )
                .bind(kind.as_str())
                .bind(target)
                .bind(audit.at_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    > 0;
                $crate::store::audit_row!(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(added)
            }

            async fn remove_access(
                &self,
                kind: $crate::store::AccessKind,
                target: &str,
                audit: &$crate::store::NewAudit,
            ) -> Result<bool, $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                let removed = sqlx::query("DELETE FROM access_list WHERE kind = $1 AND target = $2")
                    .bind(kind.as_str())
                    .bind(target)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    > 0;
                if !removed {
                    return Ok(false);
                }
                $crate::store::audit_row!(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn access_list(
                &self,
            ) -> Result<Vec<$crate::store::AccessEntry>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT kind, target, created_at_ms FROM access_list ORDER BY created_at_ms, target",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|r| {
                        let kind: String = r.try_get("kind")?;
                        Ok($crate::store::AccessEntry {
                            kind: $crate::store::peers::access_kind(&kind)?,
                            target: r.try_get("target")?,
                            created_at_ms: r.try_get("created_at_ms")?,
                        })
                    })
                    .collect()
            }
        }
    };
}
pub(crate) use peer_store;
