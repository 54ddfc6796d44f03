//! The audit log: who did what, when.

use async_trait::async_trait;

use super::StoreError;

/// An audit entry to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAudit {
    /// When, Unix ms.
    pub at_ms: i64,
    /// Who (an admin name, or `system`).
    pub actor: String,
    /// What, a short dotted verb such as `auth.login` or `terminal.input`.
    pub action: String,
    /// Free text (never a secret).
    pub detail: String,
}

/// A stored audit entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Row id, increasing with time.
    pub id: i64,
    /// The entry.
    pub entry: NewAudit,
}

/// The append-only audit log (refused logins update their merged row).
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Appends to the audit log.
    async fn append_audit(&self, entry: &NewAudit) -> Result<(), StoreError>;
    /// The newest `limit` audit entries, newest first.
    async fn recent_audit(&self, limit: u32) -> Result<Vec<AuditRecord>, StoreError>;
    /// Appends to the audit log and returns the new entry's id.
    async fn insert_audit(&self, entry: &NewAudit) -> Result<i64, StoreError>;
    /// Rewrites the detail of entry `id`; true if it exists. Only merged
    /// entries (refused logins, counted per client and minute) are rewritten.
    async fn update_audit_detail(&self, id: i64, detail: &str) -> Result<bool, StoreError>;
}

/// Appends `$audit` (a `NewAudit`) to the audit log through `$executor`
/// (the pool, or a transaction the entry must share).
macro_rules! audit_row {
    ($executor:expr, $audit:expr) => {
        sqlx::query("INSERT INTO audit_log (at_ms, actor, action, detail) VALUES ($1, $2, $3, $4)")
            .bind($audit.at_ms)
            .bind(&$audit.actor)
            .bind(&$audit.action)
            .bind(&$audit.detail)
            .execute($executor)
    };
}
pub(crate) use audit_row;

/// Implements [`AuditStore`] for a struct with a `pool: sqlx::Pool<$db>`
/// field; both backends run the same SQL.
macro_rules! audit_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::AuditStore for $store {
            async fn append_audit(&self, e: &$crate::store::NewAudit) -> Result<(), $crate::store::StoreError> {
                $crate::store::audit_row!(&self.pool, e).await?;
                Ok(())
            }

            async fn insert_audit(
                &self,
                e: &$crate::store::NewAudit,
            ) -> Result<i64, $crate::store::StoreError> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO audit_log (at_ms, actor, action, detail) VALUES ($1, $2, $3, $4) \
                     RETURNING id",
                )
                .bind(e.at_ms)
                .bind(&e.actor)
                .bind(&e.action)
                .bind(&e.detail)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn update_audit_detail(
                &self,
                id: i64,
                detail: &str,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query("UPDATE audit_log SET detail = $1 WHERE id = $2")
                    .bind(detail)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn recent_audit(
                &self,
                limit: u32,
            ) -> Result<Vec<$crate::store::AuditRecord>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT id, at_ms, actor, action, detail FROM audit_log ORDER BY id DESC LIMIT $1",
                )
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|r| {
                        Ok($crate::store::AuditRecord {
                            id: r.try_get("id")?,
                            entry: $crate::store::NewAudit {
                                at_ms: r.try_get("at_ms")?,
                                actor: r.try_get("actor")?,
                                action: r.try_get("action")?,
                                detail: r.try_get("detail")?,
                            },
                        })
                    })
                    .collect()
            }
        }
    };
}
pub(crate) use audit_store;
