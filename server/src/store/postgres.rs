//! The PostgreSQL store, for several server instances sharing one database.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::{Backend, StoreError, redact_url, sql_store};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// A PostgreSQL database.
pub struct PostgresStore {
    pool: PgPool,
    description: String,
}

impl PostgresStore {
    const BACKEND: Backend = Backend::Postgres;

    /// Connects to and migrates the database at `url`.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        connect_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let shown = redact_url(url);
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::InvalidUrl(format!("{shown}: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(connect_timeout)
            .connect_with(options.clone())
            .await
            .map_err(|source| StoreError::Connect {
                url: shown.clone(),
                source,
            })?;
        // Several instances may start together; the migrator takes an advisory lock.
        MIGRATOR.run(&pool).await?;
        let version: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&pool)
            .await?;
        Ok(Self {
            pool,
            description: format!(
                "PostgreSQL {version} at {}:{}/{}",
                options.get_host(),
                options.get_port(),
                options.get_database().unwrap_or("(default)")
            ),
        })
    }
}

impl super::signing::HasDb for PostgresStore {
    type Db = sqlx::Postgres;
}

sql_store!(PostgresStore);
