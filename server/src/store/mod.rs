//! Persistent state behind one trait, with SQLite and PostgreSQL behind it.
//!
//! Both backends run the same SQL (`$n` placeholders, `ON CONFLICT`,
//! `RETURNING` and Unix-millisecond integers work in both), so one macro
//! ([`sql_store!`]) writes the two implementations; only connecting and the
//! migration folders differ. The `query!` macros are deliberately not used:
//! they would need a live database at compile time.

mod peers;
mod postgres;
mod sqlite;

use std::time::Duration;

use async_trait::async_trait;

pub use peers::{AccessEntry, AccessKind, GrantRecord, KnownPeerRecord, PeerStore};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

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

/// An administrator account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminRecord {
    /// Row id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Argon2 PHC string; never the password.
    pub password_hash: String,
}

/// A session to create at login.
#[derive(Clone, Debug)]
pub struct NewSession {
    /// BLAKE3 hash of the cookie token (the token itself is never stored).
    pub token_hash: String,
    /// Owner.
    pub admin_id: i64,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// Creation time, Unix ms.
    pub created_at_ms: i64,
    /// Absolute expiry, Unix ms.
    pub expires_at_ms: i64,
}

/// A live session, joined with its owner's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// Owner's name.
    pub username: String,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// Absolute expiry, Unix ms.
    pub expires_at_ms: i64,
}

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
pub trait Store: PeerStore + Send + Sync + 'static {
    /// Which backend this is.
    fn backend(&self) -> Backend;
    /// Backend and location for display, without credentials.
    fn describe(&self) -> String;

    /// The admin called `username`, if any.
    async fn find_admin(&self, username: &str) -> Result<Option<AdminRecord>, StoreError>;
    /// Creates the admin unless one with that name exists; true if created.
    async fn create_admin_if_absent(
        &self,
        username: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Stores a new session.
    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError>;
    /// The unexpired session with this token hash.
    async fn find_session(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<SessionRecord>, StoreError>;
    /// Ends a session; true if it existed.
    async fn delete_session(&self, token_hash: &str) -> Result<bool, StoreError>;
    /// Removes expired sessions; returns how many.
    async fn delete_expired_sessions(&self, now_ms: i64) -> Result<u64, StoreError>;

    /// One setting's stored value.
    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Writes settings and their audit entry in one transaction.
    async fn put_settings(
        &self,
        values: &[(String, String)],
        audit: &NewAudit,
    ) -> Result<(), StoreError>;

    /// Appends to the audit log.
    async fn append_audit(&self, entry: &NewAudit) -> Result<(), StoreError>;
    /// The newest `limit` audit entries, newest first.
    async fn recent_audit(&self, limit: u32) -> Result<Vec<AuditRecord>, StoreError>;
    /// Appends to the audit log and returns the new entry's id.
    async fn insert_audit(&self, entry: &NewAudit) -> Result<i64, StoreError>;
    /// Rewrites the detail of entry `id`; true if it exists. Only merged
    /// entries (refused logins, counted per client and minute) are rewritten.
    async fn update_audit_detail(&self, id: i64, detail: &str) -> Result<bool, StoreError>;

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

/// The URL with its secrets replaced by `***`, for logs and the panel: the
/// userinfo password, and the values of secret query parameters
/// ([`SECRET_PARAMETER_MARKERS`]).
///
/// The URL may be malformed (this runs on error paths too) and a password
/// may hold `@`, `:`, `/`, `?` or `#` unencoded, so the rules err towards
/// hiding too much: the password runs from the first `:` of the userinfo to
/// the *last* `@` in the URL, and a secret parameter's value to the next
/// `&`. An `@` in a query after a `host:port` therefore hides the rest of
/// the authority and query too; nothing is ever shown that could be secret.
pub fn redact_url(url: &str) -> String {
    redact_query(&redact_userinfo(url))
}

/// Query parameter names containing any of these (case-insensitive, after
/// percent-decoding) have their values hidden: `password`, `sslpassword`,
/// `passwd`, `pass`, `pwd`, `secret`, `token`, `auth_token`, `sslkey`,
/// `api_key`, `credentials` and the like.
pub const SECRET_PARAMETER_MARKERS: [&str; 6] =
    ["pass", "pwd", "secret", "token", "key", "credential"];

/// `scheme://user:password@host…` → `scheme://user:***@host…`.
fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// `…?password=x&sslmode=y` → `…?password=***&sslmode=y`.
fn redact_query(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((name, _)) if is_secret_parameter(name) => format!("{name}=***"),
            _ => param.to_owned(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

fn is_secret_parameter(raw_name: &str) -> bool {
    // The name as the driver reads it: `%70assword` is `password`.
    let name = form_urlencoded::parse(raw_name.as_bytes())
        .next()
        .map_or_else(String::new, |(name, _)| name.to_ascii_lowercase());
    SECRET_PARAMETER_MARKERS
        .iter()
        .any(|marker| name.contains(marker))
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

/// Implements [`Store`] (and [`PeerStore`]) for a struct with a
/// `pool: sqlx::Pool<$db>` field.
macro_rules! sql_store {
    ($store:ty) => {
        $crate::store::peers::peer_store!($store);

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> $crate::store::Backend {
                Self::BACKEND
            }

            fn describe(&self) -> String {
                self.description.clone()
            }

            async fn find_admin(
                &self,
                username: &str,
            ) -> Result<Option<$crate::store::AdminRecord>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let row = sqlx::query(
                    "SELECT id, username, password_hash FROM admins WHERE username = $1",
                )
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
                Ok(match row {
                    Some(r) => Some($crate::store::AdminRecord {
                        id: r.try_get("id")?,
                        username: r.try_get("username")?,
                        password_hash: r.try_get("password_hash")?,
                    }),
                    None => None,
                })
            }

            async fn create_admin_if_absent(
                &self,
                username: &str,
                password_hash: &str,
                now_ms: i64,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query(
                    "INSERT INTO admins (username, password_hash, created_at_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (username) DO NOTHING",
                )
                .bind(username)
                .bind(password_hash)
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_session(
                &self,
                s: &$crate::store::NewSession,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "INSERT INTO sessions (token_hash, admin_id, csrf_token, created_at_ms, expires_at_ms) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&s.token_hash)
                .bind(s.admin_id)
                .bind(&s.csrf_token)
                .bind(s.created_at_ms)
                .bind(s.expires_at_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn find_session(
                &self,
                token_hash: &str,
                now_ms: i64,
            ) -> Result<Option<$crate::store::SessionRecord>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let row = sqlx::query(
                    "SELECT a.username, s.csrf_token, s.expires_at_ms FROM sessions s \
                     JOIN admins a ON a.id = s.admin_id \
                     WHERE s.token_hash = $1 AND s.expires_at_ms > $2",
                )
                .bind(token_hash)
                .bind(now_ms)
                .fetch_optional(&self.pool)
                .await?;
                Ok(match row {
                    Some(r) => Some($crate::store::SessionRecord {
                        username: r.try_get("username")?,
                        csrf_token: r.try_get("csrf_token")?,
                        expires_at_ms: r.try_get("expires_at_ms")?,
                    }),
                    None => None,
                })
            }

            async fn delete_session(&self, token_hash: &str) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_expired_sessions(&self, now_ms: i64) -> Result<u64, $crate::store::StoreError> {
                let done = sqlx::query("DELETE FROM sessions WHERE expires_at_ms <= $1")
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

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

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_passwords_and_secret_parameters() {
        // (URL, what may be shown)
        let table = [
            (
                "postgres://app:s3cret@db:5432/p2p",
                "postgres://app:***@db:5432/p2p",
            ),
            // A password with `@`, `:` or `/` in it is hidden whole.
            (
                "postgres://app:p@ss@db:5432/p2p",
                "postgres://app:***@db:5432/p2p",
            ),
            ("postgres://app:a@b:c/d@db/p2p", "postgres://app:***@db/p2p"),
            ("postgres://app@db/p2p", "postgres://app@db/p2p"),
            ("postgres://db:5432/p2p", "postgres://db:5432/p2p"),
            ("sqlite://data/p2pnet.db", "sqlite://data/p2pnet.db"),
            (
                "postgres://db/p2p?password=s3cret&sslmode=require",
                "postgres://db/p2p?password=***&sslmode=require",
            ),
            (
                "postgres://db/p2p?sslmode=require&PassWord=s3cret",
                "postgres://db/p2p?sslmode=require&PassWord=***",
            ),
            (
                "postgres://u:x@db/p2p?passwd=a&pass=b&pwd=c&secret=d&token=e",
                "postgres://u:***@db/p2p?passwd=***&pass=***&pwd=***&secret=***&token=***",
            ),
            (
                "postgres://db/p2p?sslpassword=a&sslkey=/k.pem&sslcert=/c.pem",
                "postgres://db/p2p?sslpassword=***&sslkey=***&sslcert=/c.pem",
            ),
            // A secret runs to the next `&`: a `#` may be part of it.
            (
                "postgres://db/p2p?auth_token=a#b&api_key=c#frag",
                "postgres://db/p2p?auth_token=***&api_key=***",
            ),
            // An `@` after the host does not hide a secret parameter...
            (
                "postgres://db/p2p?password=a@b&sslmode=require",
                "postgres://db/p2p?password=***&sslmode=require",
            ),
            // ...and with a port before it, everything up to it is hidden.
            (
                "postgres://db:5432/p2p?application_name=a@b",
                "postgres://db:***@b",
            ),
            (
                "postgres://db/p2p?%70assword=s3cret",
                "postgres://db/p2p?%70assword=***",
            ),
            (
                "sqlite:p2p.db?password=s3cret",
                "sqlite:p2p.db?password=***",
            ),
            ("not a url", "not a url"),
        ];
        for (url, shown) in table {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}
