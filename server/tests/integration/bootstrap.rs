//! The bootstrap API over real HTTP: announces and their refusals, the
//! snapshot in trustless and authority mode (checked by the pinned
//! certificate and by Debian's gpg), conditional requests, and two
//! servers on one PostgreSQL serving one view.

use std::time::Duration;

use crate::common::server::{Running, client, config, get_json};
use p2pnet::proto::{
    Keypair,
    record::{PeerRecord, SignedRecord},
};
use p2pnet_bootstrap::{authority::PinnedAuthority, snapshot::Snapshot};
use reqwest::{Client, StatusCode, header};
use serde_json::{Value, json};
use server::bootstrap::unix_now;

const PASSPHRASE: &str = "bootstrap test passphrase";

fn record(keys: &Keypair, seq: u64, network: &str, addrs: &[&str]) -> String {
    let now = unix_now();
    SignedRecord::sign(
        PeerRecord {
            peer: keys.peer_id(),
            network: network.into(),
            seq,
            issued_at: now,
            expires_at: now + 3600,
            addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        },
        keys,
    )
    .expect("sign")
    .as_str()
    .to_owned()
}

async fn announce(c: &Client, s: &Running, path: &str, record: &str) -> reqwest::Response {
    let request = if path.ends_with("/peers") {
        c.put(s.url(path))
    } else {
        c.post(s.url(path))
    };
    request
        .json(&json!({ "record": record }))
        .send()
        .await
        .expect("announce")
}

/// The served snapshot, parsed; waits out the one-second refresh until
/// `want` peers are listed.
async fn snapshot_with(c: &Client, s: &Running, want: usize) -> (Value, Snapshot) {
    for _ in 0..40 {
        let body: Value = get_json(c, s, "/api/Bootstrap/peers").await;
        let snapshot: Snapshot =
            serde_json::from_str(body["snapshot"].as_str().expect("snapshot text")).expect("parse");
        if snapshot.peers.len() == want {
            return (body, snapshot);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the snapshot never listed {want} peers");
}

#[tokio::test]
async fn announces_are_checked_and_listed_in_trustless_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |raw| {
        raw.bootstrap.announces_per_minute = 8;
    }))
    .await;
    let c = client();
    let alice = Keypair::from_seed(&[1; 32]);

    // The seed's PUT, with an unspecified address the server fills in.
    let first = record(&alice, 5, "p2pnet", &["0.0.0.0:4000"]);
    let r = announce(&c, &s, "/api/Bootstrap/peers", &first).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["reannounce-after"], "1800");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["status"], "stored");
    let r = announce(&c, &s, "/api/v1/bootstrap/announce", &first).await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["status"], "unchanged", "the same record again");

    let (body, snapshot) = snapshot_with(&c, &s, 1).await;
    assert_eq!(body["mode"], "trustless");
    assert!(body["signature"].is_null());
    assert_eq!(snapshot.network, "p2pnet");
    assert_eq!(snapshot.peers[0].record, first, "relayed byte for byte");
    assert_eq!(
        snapshot.peers[0].observed_ip,
        Some("127.0.0.1".parse().unwrap())
    );
    let parsed = Snapshot::parse(body["snapshot"].as_str().unwrap(), "p2pnet", unix_now(), 60)
        .expect("valid");
    assert_eq!(parsed.peers.len(), 1);
    assert!(parsed.refused.is_empty());

    // Refusals, each with its status and nothing stored.
    let lower = record(&alice, 4, "p2pnet", &["0.0.0.0:4000"]);
    let r = announce(&c, &s, "/api/v1/bootstrap/announce", &lower).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let other_network = record(&alice, 9, "elsewhere", &["0.0.0.0:4000"]);
    let r = announce(&c, &s, "/api/v1/bootstrap/announce", &other_network).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("elsewhere"));
    let mut forged = record(&alice, 9, "p2pnet", &["198.51.100.9:4000"]);
    forged.replace_range(10..11, if &forged[10..11] == "A" { "B" } else { "A" });
    let r = announce(&c, &s, "/api/v1/bootstrap/announce", &forged).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = announce(&c, &s, "/api/v1/bootstrap/announce", &"A".repeat(5000)).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = c
        .post(s.url("/api/v1/bootstrap/announce"))
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"record\": ")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (_, snapshot) = snapshot_with(&c, &s, 1).await;
    assert_eq!(
        snapshot.peers[0].record, first,
        "nothing refused was stored"
    );

    // A newer record replaces the old one and raises the sequence.
    let newer = record(&alice, 6, "p2pnet", &["198.51.100.1:4000"]);
    let r = announce(&c, &s, "/api/v1/bootstrap/announce", &newer).await;
    assert_eq!(r.status(), StatusCode::OK);
    let before = snapshot.seq;
    let mut after = snapshot_with(&c, &s, 1).await.1;
    for _ in 0..20 {
        if after.seq > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = snapshot_with(&c, &s, 1).await.1;
    }
    assert!(after.seq > before, "{} then {}", before, after.seq);
    assert_eq!(after.peers[0].record, newer);

    // The client's budget (8 a minute) is spent: 429 with Retry-After.
    let mut limited = None;
    for seq in 10..20 {
        let r = announce(
            &c,
            &s,
            "/api/v1/bootstrap/announce",
            &record(&alice, seq, "p2pnet", &["198.51.100.1:4000"]),
        )
        .await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
    }
    let limited = limited.expect("rate limited");
    let wait: u64 = limited.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=61).contains(&wait), "{wait}");

    // Gzip, made once per snapshot, for clients that take it.
    let plain = c
        .get(s.url("/api/v1/bootstrap/peers"))
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    let plain_etag = plain.headers()[header::ETAG].clone();
    let plain = plain.bytes().await.unwrap();
    let zipped = c
        .get(s.url("/api/v1/bootstrap/peers"))
        .header(header::ACCEPT_ENCODING, "br;q=1.0, gzip;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
    assert_eq!(zipped.headers()[header::VARY], "accept-encoding");
    assert_eq!(
        zipped.headers()[header::ETAG],
        plain_etag,
        "one snapshot, one tag"
    );
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&zipped.bytes().await.unwrap()[..]),
        &mut unzipped,
    )
    .expect("gzip");
    assert_eq!(unzipped, plain);
    let refused = c
        .get(s.url("/api/v1/bootstrap/peers"))
        .header(header::ACCEPT_ENCODING, "gzip;q=0")
        .send()
        .await
        .unwrap();
    assert!(refused.headers().get(header::CONTENT_ENCODING).is_none());

    // Conditional GET, and the public IP.
    let r = c
        .get(s.url("/api/v1/bootstrap/peers"))
        .send()
        .await
        .unwrap();
    let etag = r.headers()[header::ETAG].clone();
    let r = c
        .get(s.url("/api/v1/bootstrap/peers"))
        .header(header::IF_NONE_MATCH, etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let ip: Value = get_json(&c, &s, "/api/Bootstrap/publicip").await;
    assert_eq!(ip["ip"], "127.0.0.1");
    let r = c
        .get(s.url("/api/Bootstrap/authority"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "no authority in trustless mode"
    );
    let doc: Value = get_json(&c, &s, "/api/v1/bootstrap/openapi.json").await;
    assert!(doc["paths"]["/api/v1/bootstrap/announce"].is_object());
    s.shutdown().await;
}

#[tokio::test]
async fn authority_mode_signs_what_the_pin_and_gpg_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let authority_config = |raw: &mut server::config::RawConfig| {
        raw.bootstrap.mode = "authority".into();
        raw.bootstrap.passphrase = PASSPHRASE.into();
    };
    let s = Running::start(config(dir.path(), authority_config)).await;
    let c = client();
    let served: Value = get_json(&c, &s, "/api/Bootstrap/authority").await;
    let certificate = served["certificate"].as_str().expect("certificate");
    let pin = PinnedAuthority::from_armored(certificate).expect("a certificate");
    assert_eq!(served["fingerprint"], pin.fingerprint());
    assert_eq!(served["rotations"], json!([]));

    let bob = Keypair::from_seed(&[2; 32]);
    let r = announce(
        &c,
        &s,
        "/api/v1/bootstrap/announce",
        &record(&bob, 1, "p2pnet", &["[2001:db8::2]:4000"]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (body, _) = snapshot_with(&c, &s, 1).await;
    assert_eq!(body["mode"], "authority");
    let text = body["snapshot"].as_str().unwrap();
    let signature = body["signature"].as_str().expect("signed");
    pin.verify_detached(text.as_bytes(), signature, std::time::SystemTime::now())
        .expect("the pinned key signed it");
    let tampered = text.replacen("\"seq\":", "\"seq\":1", 1);
    assert!(
        pin.verify_detached(tampered.as_bytes(), signature, std::time::SystemTime::now())
            .is_err()
    );

    // An independent OpenPGP implementation agrees.
    let gpg = std::path::Path::new("/usr/bin/gpg");
    if gpg.exists() {
        let home = tempfile::tempdir().unwrap();
        let write = |name: &str, data: &str| {
            let path = home.path().join(name);
            std::fs::write(&path, data).unwrap();
            path
        };
        let cert = write("cert.asc", certificate);
        let sig = write("snapshot.asc", signature);
        let data = write("snapshot.json", text);
        let bad = write("tampered.json", &tampered);
        let run = |args: &[&std::ffi::OsStr]| {
            std::process::Command::new(gpg)
                .env("GNUPGHOME", home.path())
                .arg("--batch")
                .args(args)
                .output()
                .expect("gpg runs")
        };
        assert!(
            run(&["--import".as_ref(), cert.as_os_str()])
                .status
                .success()
        );
        let ok = run(&["--verify".as_ref(), sig.as_os_str(), data.as_os_str()]);
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let refused = run(&["--verify".as_ref(), sig.as_os_str(), bad.as_os_str()]);
        assert!(!refused.status.success());
    } else {
        eprintln!("skipping the gpg check: /usr/bin/gpg is absent");
    }
    s.shutdown().await;

    // The key persists, encrypted: a restart serves the same fingerprint.
    let s = Running::start(config(dir.path(), authority_config)).await;
    let again: Value = get_json(&c, &s, "/api/Bootstrap/authority").await;
    assert_eq!(again["fingerprint"], served["fingerprint"]);

    // A rotation: the list is signed by the new key at once, and a client
    // pinned to the old one follows the served rotation to it.
    let next = s
        .bootstrap()
        .rotate_authority(&dir.path().join("keys"))
        .expect("rotate");
    let rotated: Value = get_json(&c, &s, "/api/Bootstrap/authority").await;
    assert_eq!(rotated["fingerprint"], next.key.fingerprint());
    assert_ne!(rotated["fingerprint"], served["fingerprint"]);
    let rotations: Vec<p2pnet_bootstrap::authority::Rotation> =
        serde_json::from_value(rotated["rotations"].clone()).unwrap();
    assert_eq!(rotations.len(), 1);
    let body: Value = get_json(&c, &s, "/api/Bootstrap/peers").await;
    let (text, signature) = (
        body["snapshot"].as_str().unwrap(),
        body["signature"].as_str().unwrap(),
    );
    let now = std::time::SystemTime::now();
    assert!(
        pin.verify_detached(text.as_bytes(), signature, now)
            .is_err()
    );
    let followed = pin.follow_chain(&rotations, now).expect("follow");
    followed
        .verify_detached(text.as_bytes(), signature, now)
        .expect("signed by the new key");
    s.shutdown().await;
    // After a restart the new key and its rotation are served.
    let s = Running::start(config(dir.path(), authority_config)).await;
    let reloaded: Value = get_json(&c, &s, "/api/Bootstrap/authority").await;
    assert_eq!(reloaded["fingerprint"], next.key.fingerprint());
    assert_eq!(reloaded["rotations"].as_array().unwrap().len(), 1);
    s.shutdown().await;

    // Without the passphrase the server refuses to start.
    let no_passphrase = config(dir.path(), |raw| raw.bootstrap.mode = "authority".into());
    let Err(e) = server::Server::bind(no_passphrase).await else {
        panic!("started without the passphrase");
    };
    assert!(
        e.to_string().contains("P2PNET_BOOTSTRAP__PASSPHRASE"),
        "{e}"
    );
}

#[tokio::test]
async fn two_servers_on_one_postgres_serve_one_view() {
    let Some(admin_url) = crate::common::pg::admin_url() else {
        return;
    };
    let db = crate::common::pg::PgDatabase::create(&admin_url).await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = db.url.clone();
    let a = Running::start(config(dir_a.path(), |raw| raw.database.url = url.clone())).await;
    let url = db.url.clone();
    let b = Running::start(config(dir_b.path(), |raw| raw.database.url = url.clone())).await;
    let c = client();
    let carol = Keypair::from_seed(&[3; 32]);
    let dave = Keypair::from_seed(&[4; 32]);
    let r = announce(
        &c,
        &a,
        "/api/v1/bootstrap/announce",
        &record(&carol, 1, "p2pnet", &["0.0.0.0:4000"]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (_, from_b) = snapshot_with(&c, &b, 1).await;
    let r = announce(
        &c,
        &b,
        "/api/v1/bootstrap/announce",
        &record(&dave, 1, "p2pnet", &["0.0.0.0:4001"]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (_, from_a) = snapshot_with(&c, &a, 2).await;
    assert!(from_a.seq > from_b.seq, "one sequence across instances");
    // Once both list the change, a client alternating between them sees
    // one sequence number, not two.
    for i in 0..6 {
        let server: &Running = if i % 2 == 0 { &a } else { &b };
        let (_, s) = snapshot_with(&c, server, 2).await;
        assert_eq!(s.seq, from_a.seq, "request {i}");
    }
    // A stale announce to the other instance is refused there too.
    let r = announce(
        &c,
        &a,
        "/api/v1/bootstrap/announce",
        &record(&dave, 1, "p2pnet", &["0.0.0.0:4002"]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    a.shutdown().await;
    b.shutdown().await;
    drop(db);
}

/// Many announces at once all land: on SQLite a transaction that read
/// before writing failed at once ("database is locked") when another had
/// written meanwhile; the announce now takes the write lock first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_announces_all_land() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |raw| {
        raw.bootstrap.announces_per_minute = 100_000;
    }))
    .await;
    let c = client();
    let mut tasks = Vec::new();
    for i in 0..64u8 {
        let keys = Keypair::from_seed(&[i.wrapping_add(100); 32]);
        let text = record(&keys, 1, "p2pnet", &["0.0.0.0:4000"]);
        let c = c.clone();
        let url = s.url("/api/v1/bootstrap/announce");
        tasks.push(tokio::spawn(async move {
            c.post(url)
                .json(&json!({ "record": text }))
                .send()
                .await
                .expect("announce")
                .status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    let (_, snapshot) = snapshot_with(&c, &s, 64).await;
    assert_eq!(snapshot.peers.len(), 64);
    s.shutdown().await;
}

/// The cap on registered peers: a new peer is refused with 503 and
/// `Retry-After` while it is reached, an old one may still re-announce,
/// and expired records make room.
#[tokio::test]
async fn the_registry_is_capped_and_expired_records_make_room() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |raw| raw.bootstrap.max_peers = 2)).await;
    let c = client();
    let now = unix_now();
    let short_lived = |seed: u8, seq: u64, life: u64| {
        let keys = Keypair::from_seed(&[seed; 32]);
        SignedRecord::sign(
            PeerRecord {
                peer: keys.peer_id(),
                network: "p2pnet".into(),
                seq,
                issued_at: now,
                expires_at: now + life,
                addresses: vec!["198.51.100.7:4000".parse().unwrap()],
            },
            &keys,
        )
        .unwrap()
        .as_str()
        .to_owned()
    };
    let url = "/api/v1/bootstrap/announce";
    assert_eq!(
        announce(&c, &s, url, &short_lived(1, 1, 2)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        announce(&c, &s, url, &short_lived(2, 1, 3600))
            .await
            .status(),
        StatusCode::OK
    );
    let full = announce(&c, &s, url, &short_lived(3, 1, 3600)).await;
    assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(full.headers().contains_key(header::RETRY_AFTER));
    // A registered peer renews its record while the registry is full.
    assert_eq!(
        announce(&c, &s, url, &short_lived(2, 2, 3600))
            .await
            .status(),
        StatusCode::OK
    );
    // Once the first record expires, the newcomer gets its place.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(
        announce(&c, &s, url, &short_lived(3, 2, 3600))
            .await
            .status(),
        StatusCode::OK
    );
    s.shutdown().await;
}
