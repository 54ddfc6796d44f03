//! Persistent state: one trait per concern, one file each (`accounts.rs`
//! admins and sessions, `settings.rs`, `audit.rs`, `peers.rs` the node's
//! peers and access list, `bootstrap.rs` the bootstrap registry,
//! `signing.rs` tasks, heartbeats and the signing history, `widescan.rs`
//! scan jobs and their findings), gathered by [`Store`], with SQLite and
//! PostgreSQL behind it. `url.rs` shows database URLs without secrets.
//!
//! Both backends run the same SQL (`$n` placeholders, `ON CONFLICT`,
//! `RETURNING` and Unix-millisecond integers work in both), so one macro
//! per concern, gathered by [`sql_store!`], writes the two implementations;
//! only connecting and the migration folders differ. The `query!` macros are deliberately not used:
//! they would need a live database at compile time.

mod accounts;
mod audit;
mod bootstrap;
mod peers;
mod postgres;
mod settings;
pub(crate) mod signing;
mod sqlite;
mod url;
mod widescan;

use std::time::Duration;

use async_trait::async_trait;

pub use accounts::{AccountStore, AdminRecord, NewSession, SessionRecord};
pub(crate) use audit::audit_row;
pub use audit::{AuditRecord, AuditStore, NewAudit};
pub use bootstrap::{Announced, AnnouncedRecord, BootstrapStore};
pub use peers::{AccessEntry, AccessKind, GrantRecord, KnownPeerRecord, PeerStore};
pub use postgres::PostgresStore;
pub use settings::SettingsStore;
pub use signing::{
    HeartbeatSeen, HistoryEntry, NewSignature, SigningStore, StoredTask, entry_hash, sha256_hex,
    signature_digest, verify_chain,
};
pub use sqlite::SqliteStore;
pub use url::{SECRET_PARAMETER_MARKERS, redact_url};
pub use widescan::{
    NewScanJob, ScanJobRecord, ScanProgressUpdate, ScanResultRecord, ScanStore, StoredFindings,
};

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL could not be used.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The database could not be reached in time.
    #[error("cannot connect to the database ({url}): {source}")]
    Connect {
        /// The URL, credentials removed.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The schema migration failed; the database is left as it was.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// Preparing the SQLite data directory failed.
    #[error("cannot create database directory {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Which database a store talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// The server's persistent state.
///
/// Every method is a single statement or a single transaction, so a failure
/// leaves the stored data as it was.
#[async_trait]
pub trait Store:
    AccountStore
    + SettingsStore
    + AuditStore
    + PeerStore
    + BootstrapStore
    + SigningStore
    + ScanStore
    + Send
    + Sync
    + 'static
{
    /// Which backend this is.
    fn backend(&self) -> Backend;
    /// Backend and location for display, without credentials.
    fn describe(&self) -> String;

    /// Runs a trivial query: is the database answering?
    async fn ping(&self) -> Result<(), StoreError>;
    /// Closes the pool, waiting for in-flight queries.
    async fn close(&self);
}

/// Opens the store for `url` (`sqlite:…` or `postgres://…`) and migrates it.
pub async fn connect(
    url: &str,
    max_connections: u32,
    connect_timeout: Duration,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(
            PostgresStore::connect(url, max_connections, connect_timeout).await?,
        ))
    } else if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(
            SqliteStore::connect(url, max_connections, connect_timeout).await?,
        ))
    } else {
        Err(StoreError::InvalidUrl(format!(
            "{}: expected sqlite:… or postgres://…",
            redact_url(url)
        )))
    }
}

/// Implements [`Store`] and every concern's trait for a struct with a
/// `pool: sqlx::Pool<$db>` field.
macro_rules! sql_store {
    ($store:ty) => {
        $crate::store::accounts::account_store!($store);
        $crate::store::settings::settings_store!($store);
        $crate::store::audit::audit_store!($store);
        $crate::store::peers::peer_store!($store);
        $crate::store::bootstrap::bootstrap_store!($store);
        $crate::store::signing::signing_store!($store);
        $crate::store::widescan::scan_store!($store);

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> $crate::store::Backend {
                Self::BACKEND
            }

            fn describe(&self) -> String {
                self.description.clone()
            }

            async fn ping(&self) -> Result<(), $crate::store::StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn close(&self) {
                self.pool.close().await;
            }
        }
    };
}
pub(crate) use sql_store;
