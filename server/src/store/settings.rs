//! Run-time settings as key/value rows (see `crate::settings`).

use async_trait::async_trait;

use super::{NewAudit, StoreError};

/// Settings stored from the panel.
#[async_trait]
pub trait SettingsStore: Send + Sync + 'static {
    /// One setting's stored value.
    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Writes settings and their audit entry in one transaction.
    async fn put_settings(
        &self,
        values: &[(String, String)],
        audit: &NewAudit,
    ) -> Result<(), StoreError>;
}

/// Implements [`SettingsStore`] for a struct with a `pool: sqlx::Pool<$db>`
/// field; both backends run the same SQL.
macro_rules! settings_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::SettingsStore for $store {
            async fn setting(&self, key: &str) -> Result<Option<String>, $crate::store::StoreError> {
                Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn put_settings(
                &self,
                values: &[(String, String)],
                audit: &$crate::store::NewAudit,
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                for (key, value) in values {
                    sqlx::query(
                        "INSERT INTO settings (key, value, updated_at_ms) VALUES ($1, $2, $3) \
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at_ms = excluded.updated_at_ms",
                    )
                    .bind(key)
                    .bind(value)
                    .bind(audit.at_ms)
                    .execute(&mut *tx)
                    .await?;
                }
                $crate::store::audit_row!(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}
pub(crate) use settings_store;
