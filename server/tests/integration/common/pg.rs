//! A throw-away PostgreSQL database per test, on the server named by
//! `P2PNET_TEST_POSTGRES_URL` (scripts/test.sh starts one and sets
//! `P2PNET_REQUIRE_POSTGRES=1`, so CI cannot skip these tests).

use std::{sync::Arc, time::Duration};

use server::store::{self, Store};

const TIMEOUT: Duration = Duration::from_secs(5);

/// The admin URL of the test server, or `None` (and a note) when there is
/// none and none is required.
pub fn admin_url() -> Option<String> {
    match std::env::var("P2PNET_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var("P2PNET_REQUIRE_POSTGRES").is_err(),
                "P2PNET_REQUIRE_POSTGRES is set but P2PNET_TEST_POSTGRES_URL is not"
            );
            eprintln!(
                "skipping PostgreSQL: P2PNET_TEST_POSTGRES_URL not set (scripts/test.sh sets it)"
            );
            None
        }
    }
}

/// A fresh database on the test server, dropped by the returned guard.
pub async fn postgres() -> Option<(Arc<dyn Store>, PgDatabase)> {
    let admin_url = admin_url()?;
    let db = PgDatabase::create(&admin_url).await;
    let store = store::connect(&db.url, 4, TIMEOUT)
        .await
        .expect("postgres store");
    Some((store, db))
}

pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(admin_url: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "p2pnet_test_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let pool = sqlx::PgPool::connect(admin_url)
            .await
            .expect("connect to test server");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .expect("create database");
        pool.close().await;
        let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
        Self {
            admin_url: admin_url.to_owned(),
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// Closes `store`, then drops the database.
    pub async fn drop_now(self, store: Arc<dyn Store>) {
        store.close().await;
        self.drop_unused().await;
    }

    /// Drops the database once nothing holds a connection of the caller's
    /// (a server under test closed its own pool at shutdown).
    pub async fn drop_unused(self) {
        let pool = sqlx::PgPool::connect(&self.admin_url)
            .await
            .expect("connect");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&pool)
        .await
        .expect("drop database");
    }
}
