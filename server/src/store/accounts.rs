//! Administrators and their login sessions.

use async_trait::async_trait;

use super::StoreError;

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

/// Administrator accounts and login sessions.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
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
}

/// Implements [`AccountStore`] for a struct with a `pool: sqlx::Pool<$db>`
/// field; both backends run the same SQL.
macro_rules! account_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::AccountStore for $store {
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
        }
    };
}
pub(crate) use account_store;
