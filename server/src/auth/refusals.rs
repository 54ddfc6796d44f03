//! Refused logins in the audit log, merged so that a flood cannot grow it.
//!
//! Each refused attempt used to add a row, so anyone could grow the audit
//! table at line rate without ever logging in. Now the first refusal of a
//! kind (`auth.login_failed`, `auth.login_throttled`) from a client, as the
//! limiter counts clients (an IPv4 address or an IPv6 /64), in a
//! [`WINDOW`] adds one row; later ones in that window rewrite its detail
//! with the new count. Beyond [`MAX_SOURCES_PER_WINDOW`] clients a window's
//! further refusals of a kind share one overflow row. So refused logins add
//! at most `2 × (MAX_SOURCES_PER_WINDOW + 1)` rows per window, whatever the
//! request rate or the number of addresses used.

use std::{
    collections::HashMap,
    net::IpAddr,
    time::{Duration, Instant},
};

use crate::{
    client_limit::Source,
    store::{NewAudit, Store, StoreError},
};

/// How long one audit row keeps counting a client's refusals.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Most clients with a row of their own per kind and window; beyond it their
/// refusals go to the window's overflow row (and the map stays this small).
pub const MAX_SOURCES_PER_WINDOW: usize = 64;

/// The merged refusal rows of the current window.
#[derive(Debug, Default)]
pub struct RefusalLog {
    // An async lock held across the store calls, so that two concurrent first
    // refusals cannot both insert a row. It serialises only refused logins.
    window: tokio::sync::Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    started: Option<Instant>,
    rows: HashMap<(&'static str, Option<Source>), Row>,
}

#[derive(Clone, Copy, Debug)]
struct Row {
    id: i64,
    attempts: u64,
}

/// What a refusal does to the audit table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Write {
    /// Adds a row for a client (`None`: the overflow row) not seen this window.
    Insert(Option<Source>),
    /// Rewrites the row `id`, now counting `attempts`.
    Update { id: i64, attempts: u64 },
}

impl Window {
    /// Decides where a refusal of `action` from `source` at `now` goes.
    fn plan(&mut self, action: &'static str, source: Source, now: Instant) -> Write {
        if self
            .started
            .is_none_or(|started| now.saturating_duration_since(started) >= WINDOW)
        {
            self.started = Some(now);
            self.rows.clear();
        }
        let mut key = (action, Some(source));
        if !self.rows.contains_key(&key) {
            let own_rows = self
                .rows
                .keys()
                .filter(|(a, s)| *a == action && s.is_some())
                .count();
            if own_rows >= MAX_SOURCES_PER_WINDOW {
                key = (action, None);
            }
        }
        match self.rows.get_mut(&key) {
            Some(row) => {
                row.attempts += 1;
                Write::Update {
                    id: row.id,
                    attempts: row.attempts,
                }
            }
            None => Write::Insert(key.1),
        }
    }
}

impl RefusalLog {
    /// Records one refused login of kind `action` by `client` for `username`.
    pub async fn record(
        &self,
        store: &dyn Store,
        action: &'static str,
        client: IpAddr,
        username: &str,
        now: Instant,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let source = Source::of(client);
        let mut window = self.window.lock().await;
        match window.plan(action, source, now) {
            Write::Update { id, attempts } => {
                let detail = detail(attempts, Some(source), client, username);
                store.update_audit_detail(id, &detail).await?;
            }
            Write::Insert(key) => {
                let id = store
                    .insert_audit(&NewAudit {
                        at_ms,
                        actor: "system".to_owned(),
                        action: action.to_owned(),
                        detail: detail(1, key, client, username),
                    })
                    .await?;
                window.rows.insert((action, key), Row { id, attempts: 1 });
            }
        }
        Ok(())
    }
}

/// A merged row's text: the count, the client, and the latest attempt.
fn detail(attempts: u64, source: Option<Source>, client: IpAddr, username: &str) -> String {
    let plural = if attempts == 1 { "" } else { "s" };
    let from = source.map_or_else(
        || format!("more than {MAX_SOURCES_PER_WINDOW} clients"),
        |s| s.to_string(),
    );
    format!(
        "{attempts} attempt{plural} from {from} within {} s; last: user={username} from {client}",
        WINDOW.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(i: u32) -> Source {
        Source::of(IpAddr::from(i.to_be_bytes()))
    }

    #[test]
    fn one_row_per_client_kind_and_window() {
        let mut w = Window::default();
        let t0 = Instant::now();
        let a = source(1);
        assert_eq!(w.plan("auth.login_failed", a, t0), Write::Insert(Some(a)));
        w.rows
            .insert(("auth.login_failed", Some(a)), Row { id: 7, attempts: 1 });
        assert_eq!(
            w.plan("auth.login_failed", a, t0 + Duration::from_secs(59)),
            Write::Update { id: 7, attempts: 2 }
        );
        assert_eq!(
            w.plan("auth.login_throttled", a, t0),
            Write::Insert(Some(a)),
            "another kind has its own row"
        );
        assert_eq!(
            w.plan("auth.login_failed", a, t0 + WINDOW),
            Write::Insert(Some(a)),
            "a new window starts a new row"
        );
        assert_eq!(w.rows.len(), 0);
    }

    #[test]
    fn rows_per_window_are_bounded_whatever_the_clients() {
        let mut w = Window::default();
        let t0 = Instant::now();
        let mut next_id = 0;
        let mut inserts = 0;
        for i in 0..10_000 {
            match w.plan("auth.login_failed", source(i), t0) {
                Write::Insert(key) => {
                    inserts += 1;
                    next_id += 1;
                    w.rows.insert(
                        ("auth.login_failed", key),
                        Row {
                            id: next_id,
                            attempts: 1,
                        },
                    );
                }
                Write::Update { .. } => {}
            }
        }
        assert_eq!(inserts, MAX_SOURCES_PER_WINDOW + 1, "own rows + overflow");
        assert_eq!(w.rows.len(), MAX_SOURCES_PER_WINDOW + 1);
        let overflow = w.rows[&("auth.login_failed", None)];
        assert_eq!(overflow.attempts, 10_000 - MAX_SOURCES_PER_WINDOW as u64);
    }

    #[test]
    fn details_name_the_client() {
        let client: IpAddr = "2001:db8:1:2::5".parse().expect("ip");
        assert_eq!(
            detail(3, Some(Source::of(client)), client, "admin"),
            "3 attempts from 2001:db8:1:2::/64 within 60 s; last: user=admin from 2001:db8:1:2::5"
        );
        let v4: IpAddr = "198.51.100.7".parse().expect("ip");
        assert_eq!(
            detail(1, Some(Source::of(v4)), v4, "root"),
            "1 attempt from 198.51.100.7 within 60 s; last: user=root from 198.51.100.7"
        );
        assert!(detail(9, None, v4, "x").starts_with("9 attempts from more than 64 clients"));
    }
}
