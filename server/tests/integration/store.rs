//! One test-suite for every `Store` backend: SQLite always, PostgreSQL when
//! `P2PNET_TEST_POSTGRES_URL` names a server (the test script starts a
//! throw-away one and sets `P2PNET_REQUIRE_POSTGRES=1`, so CI cannot skip it).

use std::{sync::Arc, time::Duration};

use crate::common::pg::postgres;
use server::store::{
    self, AccessKind, Backend, GrantRecord, KnownPeerRecord, NewAudit, NewSession, Store,
};

const TIMEOUT: Duration = Duration::from_secs(5);

async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    // A nested directory that does not exist yet: the store must create it.
    let url = format!("sqlite://{}/nested/p2pnet.db", dir.path().display());
    (
        store::connect(&url, 4, TIMEOUT)
            .await
            .expect("sqlite store"),
        dir,
    )
}

/// The suite. Each step asserts observable behaviour of the trait.
async fn suite(store: &dyn Store, backend: Backend) {
    assert_eq!(store.backend(), backend);
    store.ping().await.expect("ping");

    // Admins: created once, never overwritten.
    assert_eq!(store.find_admin("admin").await.expect("find"), None);
    assert!(
        store
            .create_admin_if_absent("admin", "$argon2id$first", 1)
            .await
            .expect("create")
    );
    assert!(
        !store
            .create_admin_if_absent("admin", "$argon2id$second", 2)
            .await
            .expect("again")
    );
    let admin = store
        .find_admin("admin")
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(
        (admin.username.as_str(), admin.password_hash.as_str()),
        ("admin", "$argon2id$first")
    );

    // Sessions: found while unexpired, gone after expiry or deletion.
    let session = NewSession {
        token_hash: "h1".into(),
        admin_id: admin.id,
        csrf_token: "csrf1".into(),
        created_at_ms: 1_000,
        expires_at_ms: 2_000,
    };
    store.create_session(&session).await.expect("session");
    store
        .create_session(&NewSession {
            token_hash: "h2".into(),
            expires_at_ms: 9_000,
            ..session.clone()
        })
        .await
        .expect("session 2");
    let found = store
        .find_session("h1", 1_500)
        .await
        .expect("find")
        .expect("live");
    assert_eq!(
        (
            found.username.as_str(),
            found.csrf_token.as_str(),
            found.expires_at_ms
        ),
        ("admin", "csrf1", 2_000)
    );
    assert_eq!(
        store.find_session("h1", 2_000).await.expect("find"),
        None,
        "expiry is exclusive"
    );
    assert_eq!(store.find_session("nope", 0).await.expect("find"), None);
    assert_eq!(
        store.delete_expired_sessions(5_000).await.expect("sweep"),
        1
    );
    assert!(
        store
            .find_session("h2", 5_000)
            .await
            .expect("find")
            .is_some(),
        "unexpired survives sweep"
    );
    assert!(store.delete_session("h2").await.expect("delete"));
    assert!(!store.delete_session("h2").await.expect("delete twice"));
    // A session for a missing admin violates the foreign key.
    let orphan = NewSession {
        token_hash: "h3".into(),
        admin_id: admin.id + 1000,
        ..session.clone()
    };
    assert!(
        store.create_session(&orphan).await.is_err(),
        "foreign key enforced"
    );

    // Settings: written with their audit entry in one transaction.
    assert_eq!(store.setting("node.name").await.expect("get"), None);
    let audit = NewAudit {
        at_ms: 10,
        actor: "admin".into(),
        action: "settings.update".into(),
        detail: "x".into(),
    };
    store
        .put_settings(
            &[
                ("node.name".into(), "alpha".into()),
                ("node.flag".into(), "true".into()),
            ],
            &audit,
        )
        .await
        .expect("put");
    store
        .put_settings(&[("node.name".into(), "beta".into())], &audit)
        .await
        .expect("overwrite");
    assert_eq!(
        store.setting("node.name").await.expect("get").as_deref(),
        Some("beta")
    );
    assert_eq!(
        store.setting("node.flag").await.expect("get").as_deref(),
        Some("true")
    );

    // Audit log: newest first, limited.
    for i in 0..5 {
        let entry = NewAudit {
            at_ms: 100 + i,
            actor: "admin".into(),
            action: "terminal.input".into(),
            detail: format!("cmd {i}"),
        };
        store.append_audit(&entry).await.expect("audit");
    }
    let recent = store.recent_audit(3).await.expect("recent");
    assert_eq!(recent.len(), 3);
    assert_eq!(recent[0].entry.detail, "cmd 4");
    assert!(recent[0].id > recent[1].id && recent[1].id > recent[2].id);
    assert_eq!(
        store.recent_audit(100).await.expect("all").len(),
        7,
        "2 settings audits + 5 appended"
    );
    // Merged entries: inserted with their id, then rewritten in place.
    let id = store
        .insert_audit(&NewAudit {
            at_ms: 200,
            actor: "system".into(),
            action: "auth.login_failed".into(),
            detail: "1 attempt".into(),
        })
        .await
        .expect("insert");
    assert!(id > recent[0].id);
    assert!(
        store
            .update_audit_detail(id, "2 attempts")
            .await
            .expect("update")
    );
    assert!(
        !store
            .update_audit_detail(id + 1, "x")
            .await
            .expect("missing")
    );
    let newest = store.recent_audit(1).await.expect("newest");
    assert_eq!(
        (newest[0].id, newest[0].entry.detail.as_str()),
        (id, "2 attempts")
    );
    assert_eq!(newest[0].entry.at_ms, 200);

    // Known peers: saved in batches, first_seen kept, decisions and grants
    // stored, forgotten peers deleted.
    assert_eq!(store.count_known_peers().await.expect("count"), 0);
    assert!(store.known_peers().await.expect("list").is_empty());
    let peer = KnownPeerRecord {
        peer_id: "p2p1abc".into(),
        addresses: vec!["127.0.0.1:9000".into(), "[::1]:9000".into()],
        proven: vec!["127.0.0.1:9000".into()],
        source: "manual".into(),
        first_seen_ms: 50,
        last_seen_ms: 50,
        decision: "undecided".into(),
        persistent: false,
        grants: vec![],
    };
    let other = KnownPeerRecord {
        peer_id: "p2p1zzz".into(),
        last_seen_ms: 60,
        ..peer.clone()
    };
    store
        .save_known_peers(&[peer.clone(), other.clone()])
        .await
        .expect("insert");
    let approved = KnownPeerRecord {
        addresses: vec!["127.0.0.1:9001".into()],
        source: "discovery:broadcast".into(),
        first_seen_ms: 70,
        last_seen_ms: 70,
        decision: "approved".into(),
        persistent: true,
        grants: vec![GrantRecord {
            id: 3,
            scopes: "data,file".into(),
            max_file_size: Some(1 << 20),
            expires_at_ms: Some(9_000),
            granted_by: "ops".into(),
            granted_at_ms: 65,
        }],
        ..peer.clone()
    };
    store
        .save_known_peers(std::slice::from_ref(&approved))
        .await
        .expect("update");
    let peers = store.known_peers().await.expect("list");
    assert_eq!(peers.len(), 2);
    assert_eq!(peers[0].peer_id, "p2p1abc", "most recently seen first");
    assert_eq!(peers[0].first_seen_ms, 50, "first_seen kept");
    assert_eq!(
        peers[0],
        KnownPeerRecord {
            first_seen_ms: 50,
            ..approved
        }
    );
    assert_eq!(store.count_known_peers().await.expect("count"), 2);
    store
        .delete_known_peers(&["p2p1zzz".into(), "never-there".into()])
        .await
        .expect("delete");
    assert_eq!(store.count_known_peers().await.expect("count"), 1);

    // The access list: entries with their audit in one transaction.
    let audit = |action: &str, detail: &str| NewAudit {
        at_ms: 100,
        actor: "admin".into(),
        action: action.into(),
        detail: detail.into(),
    };
    assert!(
        store
            .add_access(
                AccessKind::Block,
                "10.0.0.0/8",
                &audit("node.block", "10.0.0.0/8")
            )
            .await
            .expect("block")
    );
    assert!(
        !store
            .add_access(
                AccessKind::Block,
                "10.0.0.0/8",
                &audit("node.block", "again")
            )
            .await
            .expect("twice"),
        "already there"
    );
    store
        .add_access(
            AccessKind::Allow,
            "p2p1abc",
            &audit("node.allow", "p2p1abc"),
        )
        .await
        .expect("allow");
    let list = store.access_list().await.expect("list");
    assert_eq!(
        list.iter()
            .map(|e| (e.kind, e.target.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (AccessKind::Block, "10.0.0.0/8"),
            (AccessKind::Allow, "p2p1abc")
        ]
    );
    assert!(
        store
            .remove_access(
                AccessKind::Block,
                "10.0.0.0/8",
                &audit("node.unblock", "10.0.0.0/8")
            )
            .await
            .expect("unblock")
    );
    let audits_before = store.recent_audit(100).await.expect("audit").len();
    assert!(
        !store
            .remove_access(
                AccessKind::Block,
                "10.0.0.0/8",
                &audit("node.unblock", "gone")
            )
            .await
            .expect("not there"),
    );
    assert_eq!(
        store.recent_audit(100).await.expect("audit").len(),
        audits_before,
        "nothing is written for an entry that was not there"
    );
    assert_eq!(store.access_list().await.expect("list").len(), 1);
    scan_jobs(store).await;
}

/// Scan jobs: created with their audit entry, moved between states only
/// from the states named, progress written, findings stored once each and
/// capped.
async fn scan_jobs(store: &dyn Store) {
    use server::store::{NewScanJob, ScanProgressUpdate, ScanResultRecord};
    let audits = store.recent_audit(1000).await.expect("audit").len();
    let huge = (u128::MAX - 5).to_string();
    let id = store
        .create_scan_job(
            &NewScanJob {
                created_at_ms: 10,
                created_by: "admin".into(),
                spec: "{}".into(),
                range_start: "0".into(),
                range_end: huge.clone(),
            },
            &NewAudit {
                at_ms: 10,
                actor: "admin".into(),
                action: "widescan.start".into(),
                detail: "prefixes=2a00::/8".into(),
            },
        )
        .await
        .expect("create");
    let audit = store.recent_audit(1000).await.expect("audit");
    assert_eq!(
        audit.len(),
        audits + 1,
        "the audit entry is in the same transaction"
    );
    assert!(
        audit
            .iter()
            .any(|a| a.entry.detail == format!("job={id} prefixes=2a00::/8"))
    );
    let job = store.scan_job(id).await.expect("read").expect("stored");
    assert_eq!(
        (job.state.as_str(), job.runs, job.checkpoint.as_str()),
        ("running", 1, "0")
    );
    assert_eq!(
        job.range_end, huge,
        "indices beyond 64 bits survive as text"
    );

    let progress = ScanProgressUpdate {
        checkpoint: (u128::MAX - 9).to_string(),
        sent: 300,
        received: 12,
        send_errors: 1,
        send_ms: 4_500,
        adapter: "CPU (2 threads)".into(),
        generated_per_sec: 5_000_000,
        at_ms: 20,
    };
    store
        .update_scan_progress(id, &progress)
        .await
        .expect("progress");
    let job = store.scan_job(id).await.expect("read").expect("stored");
    assert_eq!(job.checkpoint, progress.checkpoint);
    assert_eq!((job.sent, job.received, job.send_errors), (300, 12, 1));
    assert_eq!(job.send_ms, 4_500);
    assert_eq!(job.adapter, "CPU (2 threads)");

    // State moves only from the states named.
    assert!(
        !store
            .set_scan_state(id, &["stopped"], "running", None, 30)
            .await
            .expect("set")
    );
    assert!(
        store
            .set_scan_state(id, &["running"], "failed", Some("no CAP_NET_RAW"), 30)
            .await
            .expect("set")
    );
    assert!(
        store
            .set_scan_state(id, &["failed"], "running", None, 31)
            .await
            .expect("set")
    );
    let job = store.scan_job(id).await.expect("read").expect("stored");
    assert_eq!(
        (job.state.as_str(), job.error, job.runs),
        ("running", None, 2)
    );
    assert_eq!(store.scan_jobs_in(&["running"]).await.expect("in").len(), 1);
    assert!(
        store
            .scan_jobs_in(&["stopped"])
            .await
            .expect("in")
            .is_empty()
    );
    assert!(
        !store
            .set_scan_state(id + 99, &["running"], "stopped", None, 1)
            .await
            .expect("set")
    );

    let finding = |kind: &str, addr: &str, instance: &str| ScanResultRecord {
        id: 0,
        kind: kind.into(),
        addr: addr.into(),
        instance_id: instance.into(),
        port: if kind == "peer" { 4000 } else { 0 },
        contact: String::new(),
        via: String::new(),
        at_ms: 40,
    };
    let batch = [
        finding("hit", "2a00::1", ""),
        finding("hit", "2a00::2", ""),
        finding("hit", "2a00::1", ""),
        finding("peer", "2a00::1", "00000000000000aa"),
    ];
    let stored = store
        .store_scan_results(id, &batch, 10)
        .await
        .expect("store");
    assert_eq!(
        (stored.hits, stored.peers, stored.dropped),
        (2, 1, 0),
        "one row per finding"
    );
    // A resumed run finds the same host again: nothing new; the cap holds.
    let again = [
        finding("hit", "2a00::2", ""),
        finding("hit", "2a00::3", ""),
        finding("hit", "2a00::4", ""),
    ];
    let stored = store
        .store_scan_results(id, &again, 4)
        .await
        .expect("store");
    assert_eq!((stored.hits, stored.peers, stored.dropped), (1, 0, 1));
    let job = store.scan_job(id).await.expect("read").expect("stored");
    assert_eq!((job.hits, job.peers, job.results_dropped), (3, 1, 1));
    let all = store.scan_results_after(id, 0, 100).await.expect("all");
    assert_eq!(
        all.iter().map(|r| r.addr.as_str()).collect::<Vec<_>>(),
        ["2a00::1", "2a00::2", "2a00::1", "2a00::3"]
    );
    let page = store
        .scan_results_after(id, all[1].id, 1)
        .await
        .expect("page");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, all[2].id, "pages follow row ids");
    let latest = store.latest_scan_results(id, 2).await.expect("latest");
    assert_eq!(latest[0].addr, "2a00::3", "newest first");
    assert_eq!(store.scan_jobs(10).await.expect("jobs")[0].id, id);
}

#[tokio::test]
async fn sqlite_store_passes_the_suite() {
    let (store, _dir) = sqlite().await;
    suite(store.as_ref(), Backend::Sqlite).await;
    assert!(
        store.describe().starts_with("SQLite 3."),
        "{}",
        store.describe()
    );
}

#[tokio::test]
async fn postgres_store_passes_the_suite() {
    let Some((store, db)) = postgres().await else {
        return;
    };
    suite(store.as_ref(), Backend::Postgres).await;
    assert!(
        store.describe().starts_with("PostgreSQL "),
        "{}",
        store.describe()
    );
    db.drop_now(store).await;
}

#[tokio::test]
async fn sqlite_data_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/p2pnet.db", dir.path().display());
    let first = store::connect(&url, 2, TIMEOUT).await.expect("open");
    let audit = NewAudit {
        at_ms: 1,
        actor: "a".into(),
        action: "settings.update".into(),
        detail: String::new(),
    };
    first
        .put_settings(&[("node.name".into(), "kept".into())], &audit)
        .await
        .expect("put");
    first.close().await;
    // Reopening re-runs the migrator, which must be a no-op.
    let second = store::connect(&url, 2, TIMEOUT).await.expect("reopen");
    assert_eq!(
        second.setting("node.name").await.expect("get").as_deref(),
        Some("kept")
    );
}

#[tokio::test]
async fn unusable_databases_fail_with_clear_errors() {
    let err = store::connect("mysql://localhost/x", 1, TIMEOUT)
        .await
        .err()
        .expect("scheme refused");
    assert!(err.to_string().contains("expected sqlite:"), "{err}");
    // Nothing listens on port 1; the error must come quickly and hide the password.
    let started = std::time::Instant::now();
    let err = store::connect(
        "postgres://u:secret@127.0.0.1:1/db",
        1,
        Duration::from_secs(2),
    )
    .await
    .err()
    .expect("unreachable");
    assert!(started.elapsed() < Duration::from_secs(10));
    let text = err.to_string();
    assert!(
        text.contains("cannot connect") && !text.contains("secret"),
        "{text}"
    );
    let err = store::connect("sqlite:///proc/definitely/not/writable.db", 1, TIMEOUT)
        .await
        .err()
        .expect("unwritable");
    assert!(err.to_string().contains("/proc/definitely"), "{err}");
}
