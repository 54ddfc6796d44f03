//! The bootstrap server as the administrator sees it: the terminal's
//! `bootstrap` and `key` commands (in trustless and authority mode, with
//! their refusals and audit rows) and the panel's `/bootstrap` page.

use std::time::Duration;

use crate::common::server::{
    Running, Session, client, config, get_json, login, page_html, terminal,
};
use p2pnet::proto::{
    Keypair,
    record::{PeerRecord, SignedRecord},
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use server::bootstrap::unix_now;

const PASSPHRASE: &str = "bootstrap panel test passphrase";

/// Announces a record of `keys` listing `addr`; the reply's status word.
async fn announce(c: &Client, s: &Running, keys: &Keypair, seq: u64, addr: &str) -> String {
    let now = unix_now();
    let record = SignedRecord::sign(
        PeerRecord {
            peer: keys.peer_id(),
            network: "p2pnet".into(),
            seq,
            issued_at: now,
            expires_at: now + 3600,
            addresses: vec![addr.parse().expect("address")],
        },
        keys,
    )
    .expect("sign");
    let r = c
        .post(s.url("/api/v1/bootstrap/announce"))
        .json(&json!({ "record": record.as_str() }))
        .send()
        .await
        .expect("announce");
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    body["status"].as_str().expect("status").to_owned()
}

/// Runs `line`, which must succeed.
async fn ok(c: &Client, s: &Running, session: &Session, line: &str) -> Vec<String> {
    terminal(c, s, session, line)
        .await
        .unwrap_or_else(|e| panic!("{line}: {e}"))
}

/// Runs `line`, which must fail; its error line.
async fn refused(c: &Client, s: &Running, session: &Session, line: &str) -> String {
    match terminal(c, s, session, line).await {
        Ok(lines) => panic!("{line} succeeded: {lines:?}"),
        Err(e) => e,
    }
}

/// The line of `lines` that starts with `label`.
fn line<'a>(lines: &'a [String], label: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` line in {lines:?}"))
}

/// `bootstrap` again until its snapshot lists `peers` (it is re-made at
/// most once a second).
async fn status_listing(c: &Client, s: &Running, session: &Session, peers: u64) -> Vec<String> {
    let want = format!("lists {peers} peers");
    for _ in 0..40 {
        let lines = ok(c, s, session, "bootstrap").await;
        if line(&lines, "snapshot").ends_with(&want) {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the snapshot never listed {peers} peers");
}

async fn audit_rows(dir: &std::path::Path, action: &str) -> Vec<String> {
    let store = server::store::connect(
        &format!("sqlite://{}/p2pnet.db", dir.display()),
        1,
        Duration::from_secs(5),
    )
    .await
    .expect("store");
    store
        .recent_audit(100)
        .await
        .expect("audit")
        .into_iter()
        .filter(|a| a.entry.action == action)
        .map(|a| a.entry.detail)
        .collect()
}

#[tokio::test]
async fn the_terminal_shows_a_trustless_server_and_prepares_a_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |raw| {
        raw.bootstrap.passphrase = PASSPHRASE.into();
    }))
    .await;
    let c = client();
    let session = login(&c, &s).await;

    let empty = ok(&c, &s, &session, "bootstrap").await;
    assert_eq!(line(&empty, "mode"), "mode      trustless");
    assert_eq!(line(&empty, "network"), "network   p2pnet");
    assert_eq!(line(&empty, "peers"), "peers     0 registered");
    assert!(line(&empty, "authority").contains("none (trustless mode"));
    assert_eq!(
        ok(&c, &s, &session, "bootstrap peers").await,
        vec!["no peers are registered"]
    );
    // The page, rendered on the server: a session is needed, then the
    // facts and the empty state.
    let r = c.get(s.url("/bootstrap")).send().await.expect("page");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = page_html(&c, &s, &session.cookie, "/bootstrap").await;
    assert!(html.contains(r#"<dd id="bootstrap-mode">trustless</dd>"#));
    assert!(html.contains(r#"<dd id="bootstrap-network">p2pnet</dd>"#));
    assert!(html.contains(r#"<dd id="authority-fingerprint">none: trustless mode"#));
    assert!(html.contains(r#"id="registered-empty""#));
    assert!(!html.contains(r#"id="registered-table""#));

    let alice = Keypair::from_seed(&[21; 32]);
    let bob = Keypair::from_seed(&[22; 32]);
    assert_eq!(
        announce(&c, &s, &alice, 3, "127.0.0.1:4100").await,
        "stored"
    );
    assert_eq!(announce(&c, &s, &bob, 9, "0.0.0.0:4200").await, "stored");
    let status = status_listing(&c, &s, &session, 2).await;
    assert_eq!(line(&status, "peers"), "peers     2 registered");
    let seq: u64 = line(&status, "snapshot")
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.trim_end_matches(',').parse().ok())
        .expect("a sequence number");
    assert!(seq >= 2, "one rise per stored record: {status:?}");

    let peers = ok(&c, &s, &session, "bootstrap peers").await;
    assert_eq!(peers[0], "2 registered peers");
    assert_eq!(peers.len(), 3, "{peers:?}");
    let short = |k: &Keypair| k.peer_id().to_string()[..16].to_owned();
    // The latest announce first.
    assert!(peers[1].starts_with(&format!("{}…  0.0.0.0:4200", short(&bob))));
    let alice_line = &peers[2];
    assert!(
        alice_line.starts_with(&format!("{}…  127.0.0.1:4100", short(&alice))),
        "{alice_line}"
    );
    for part in ["observed 127.0.0.1", "seq 3", "expires in 3"] {
        assert!(alice_line.contains(part), "{part}: {alice_line}");
    }
    assert!(
        alice_line.contains("  announced ") && alice_line.ends_with("s ago"),
        "{alice_line}"
    );
    // The page's table: a row per peer, the latest announce first.
    let html = page_html(&c, &s, &session.cookie, "/bootstrap").await;
    assert!(!html.contains(r#"id="registered-empty""#));
    let table = html
        .split(r#"id="registered-table""#)
        .nth(1)
        .expect("the registered peers table");
    let (alice_id, bob_id) = (alice.peer_id().to_string(), bob.peer_id().to_string());
    let bob_at = table
        .find(&format!(r#"data-id="{bob_id}""#))
        .expect("bob's row");
    let alice_at = table
        .find(&format!(r#"data-id="{alice_id}""#))
        .expect("alice's row");
    assert!(bob_at < alice_at, "the latest announce first");
    let alice_row = &table[alice_at..];
    let alice_row = &alice_row[..alice_row.find("</tr>").expect("row end")];
    for cell in [
        format!(r#"<td class="mono peer">{alice_id}</td>"#),
        r#"<td class="mono addresses">127.0.0.1:4100</td>"#.to_owned(),
        r#"<td class="mono observed">127.0.0.1</td>"#.to_owned(),
        r#"<td class="seq">3</td>"#.to_owned(),
    ] {
        assert!(alice_row.contains(&cell), "{cell} in {alice_row}");
    }
    assert!(html.contains(r#"<dd id="bootstrap-registered">2</dd>"#));

    // No key in use; `key gen` prepares one, once.
    let keys = ok(&c, &s, &session, "key list").await;
    assert_eq!(line(&keys, "mode"), "mode      trustless");
    assert!(line(&keys, "key ").contains("none in use"));
    assert!(line(&keys, "key file").contains("`key gen` creates one"));
    for line in ["key export", "key rotate"] {
        let e = refused(&c, &s, &session, line).await;
        assert_eq!(
            e, "this server runs in trustless mode: it has no authority key",
            "{line}"
        );
    }
    let made = ok(&c, &s, &session, "key gen").await;
    let key_file = dir.path().join("keys/authority.key");
    assert!(key_file.exists());
    let fingerprint = made[0]
        .strip_prefix("authority key created: ")
        .and_then(|rest| rest.split_whitespace().next())
        .expect("fingerprint")
        .to_owned();
    assert_eq!(fingerprint.len(), 40, "{made:?}");
    assert!(made[1].contains("mode = \"authority\""), "{made:?}");
    // The key is the one a restart in authority mode signs with.
    let pinned = p2pnet_bootstrap::authority::AuthorityKey::load_or_create(
        &dir.path().join("keys"),
        Some(&p2pnet_bootstrap::authority::Passphrase::from(
            PASSPHRASE.to_owned(),
        )),
        "unused",
        false,
    )
    .expect("the key opens with the passphrase");
    assert_eq!(pinned.fingerprint(), fingerprint);
    let keys = ok(&c, &s, &session, "key list").await;
    assert!(line(&keys, "key file").contains("exists"), "{keys:?}");
    let again = refused(&c, &s, &session, "key gen").await;
    assert!(again.contains("use `key rotate`"), "{again}");
    assert_eq!(
        audit_rows(dir.path(), "bootstrap.key_gen").await,
        vec![fingerprint]
    );

    // Bad input is refused with what to type instead.
    for (input, expected) in [
        (
            "key",
            "`key` takes one of `list`, `export`, `rotate` or `gen`; type `help key`",
        ),
        (
            "key delete",
            "`key` takes one of `list`, `export`, `rotate` or `gen`; type `help key`",
        ),
        (
            "key list now",
            "`key` takes one of `list`, `export`, `rotate` or `gen`; type `help key`",
        ),
        (
            "bootstrap nodes",
            "`bootstrap` takes nothing, `peers` or `history`; type `help bootstrap`",
        ),
        (
            "bootstrap peers all",
            "`bootstrap` takes nothing, `peers` or `history`; type `help bootstrap`",
        ),
    ] {
        assert_eq!(refused(&c, &s, &session, input).await, expected, "{input}");
    }
    let help = ok(&c, &s, &session, "help key").await;
    assert!(help[0].starts_with("key: ") && help[0].contains("`key rotate`"));
    let help = ok(&c, &s, &session, "help").await;
    assert!(
        help.iter()
            .any(|l| l.trim_start().starts_with("bootstrap "))
    );
    // Every line was audited as typed, refused ones too.
    let inputs = audit_rows(dir.path(), "terminal.input").await;
    for input in [
        "bootstrap peers",
        "key gen",
        "key delete",
        "bootstrap nodes",
    ] {
        assert!(inputs.iter().any(|i| i == input), "{input} not audited");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn the_terminal_lists_exports_and_rotates_the_authority_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |raw| {
        raw.bootstrap.mode = "authority".into();
        raw.bootstrap.passphrase = PASSPHRASE.into();
    }))
    .await;
    let c = client();
    let session = login(&c, &s).await;
    let first = s
        .bootstrap()
        .authority()
        .expect("authority")
        .key
        .fingerprint();

    let status = ok(&c, &s, &session, "bootstrap").await;
    assert_eq!(line(&status, "mode"), "mode      authority");
    assert_eq!(line(&status, "authority"), format!("authority {first}"));
    let keys = ok(&c, &s, &session, "key list").await;
    assert_eq!(
        keys,
        vec![
            "mode      authority".to_owned(),
            format!("key       {first}"),
            "rotations none".to_owned(),
        ]
    );

    // The exported certificate is the one clients pin.
    let exported = ok(&c, &s, &session, "key export").await.join("\n");
    assert!(exported.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    let pinned =
        p2pnet_bootstrap::authority::PinnedAuthority::from_armored(&exported).expect("armored");
    assert_eq!(pinned.fingerprint(), first);
    assert!(!exported.contains("PRIVATE"), "public only");

    let rotated = ok(&c, &s, &session, "key rotate").await;
    let second = s
        .bootstrap()
        .authority()
        .expect("authority")
        .key
        .fingerprint();
    assert_ne!(second, first);
    assert_eq!(
        rotated[0],
        format!("authority key rotated (rotation #1): {first} → {second}")
    );
    let keys = ok(&c, &s, &session, "key list").await;
    assert_eq!(keys[1], format!("key       {second}"));
    assert_eq!(keys[2], "rotations 1");
    assert_eq!(keys[3], format!("  #1 {first} → {second}"));
    // The API serves the new key, and the next snapshot is signed with it.
    let served: Value = get_json(&c, &s, "/api/v1/bootstrap/authority").await;
    assert_eq!(served["fingerprint"], second.as_str());
    let status = ok(&c, &s, &session, "bootstrap").await;
    assert_eq!(line(&status, "authority"), format!("authority {second}"));

    let refused_gen = refused(&c, &s, &session, "key gen").await;
    assert!(
        refused_gen.starts_with("an authority key exists already")
            && refused_gen.ends_with("use `key rotate` to replace it"),
        "{refused_gen}"
    );
    assert_eq!(
        audit_rows(dir.path(), "bootstrap.key_rotate").await,
        vec![format!("{first} → {second}")]
    );

    // The page's task form goes through the panel's action endpoint: a
    // signed task is queued and shows in `task list` and the page's
    // signing history.
    let queue = |target: &'static str, task: &'static str| {
        c.post(s.url("/api/node_action"))
            .header("cookie", &session.cookie)
            .header("x-csrf-token", &session.csrf)
            .json(&serde_json::json!({
                "action": { "action": "queue_task", "target": target, "task": task }
            }))
            .send()
    };
    let r = queue("*", "message  maintenance at noon")
        .await
        .expect("post");
    assert!(r.status().is_success(), "{}", r.status());
    let answer: String = r.json().await.expect("json");
    assert!(answer.starts_with("task 1 queued: message"), "{answer}");
    let r = queue("*", "reboot everything").await.expect("post");
    assert!(!r.status().is_success(), "an unknown task is refused");
    assert!(r.text().await.unwrap().contains("a task is one of"));
    let tasks = ok(&c, &s, &session, "task list").await;
    assert!(
        tasks[0].starts_with("#1 for * message, queued by admin"),
        "{tasks:?}"
    );
    let html = crate::common::server::page_html(&c, &s, &session.cookie, "/bootstrap").await;
    assert!(
        html.contains(r#"id="task-form""#),
        "the task form is on the page"
    );
    assert!(
        html.contains(r#"<td class="kind">task</td>"#),
        "the task's signature is listed"
    );
    s.shutdown().await;
}
