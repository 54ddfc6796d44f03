//! The server's embedded peer node, driven through the terminal API with a
//! second, real p2pnet node on loopback: approval, grants, blocks, the
//! doctor, bad input, and a restart that forgets nothing decided — on
//! SQLite and on PostgreSQL.

use std::time::Duration;

use crate::common::server::{Running, client, config, login, terminal};
use p2pnet::{NetworkEvent, PeerNetwork, Scopes, proto::ChannelState};

const WAIT: Duration = Duration::from_secs(20);

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn peer_node() -> PeerNetwork {
    PeerNetwork::builder()
        .listen_ip("127.0.0.1".parse().unwrap())
        .start()
        .await
        .expect("peer node")
}

/// The flow, on a server whose database is `database_url` (empty: SQLite in
/// the data directory).
async fn decisions_survive_a_restart(database_url: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = database_url.to_owned();
    let make_config = || {
        let url = url.clone();
        config(dir.path(), move |raw| raw.database.url = url)
    };
    let s = Running::start(make_config()).await;
    let c = client();
    let session = login(&c, &s).await;
    let node_id = s.node.as_ref().unwrap().network().local_peer_id();

    // `node` names the node and where it listens.
    let lines = terminal(&c, &s, &session, "node").await.expect("node");
    assert!(lines[0].contains(&node_id.to_string()), "{lines:?}");
    assert!(lines[1].contains(&s.node_addr().to_string()), "{lines:?}");

    // A second node connects: it waits for approval.
    let friend = peer_node().await;
    let friend_id = friend.local_peer_id();
    let prefix = &friend_id.to_string()[..8];
    friend.connect(s.node_addr()).await.expect("connect");
    let pending = loop {
        let lines = terminal(&c, &s, &session, "pending")
            .await
            .expect("pending");
        if lines.iter().any(|l| l.contains(&friend_id.to_string())) {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(pending.len(), 1, "{pending:?}");

    // Approve it by an id prefix, grant it everything, block a network.
    let approved = terminal(&c, &s, &session, &format!("approve {prefix}"))
        .await
        .expect("approve");
    assert_eq!(approved, vec![format!("approved {friend_id}")]);
    let node = s.node.clone().unwrap();
    eventually("the friend's channel opens", || {
        node.network()
            .channel(&friend_id)
            .is_some_and(|c| matches!(c.state, ChannelState::Open { .. }))
    })
    .await;
    let elevated = terminal(&c, &s, &session, &format!("elevate {prefix}"))
        .await
        .expect("elevate");
    assert!(
        elevated[0].starts_with(&format!("elevated {friend_id}")),
        "{elevated:?}"
    );
    terminal(&c, &s, &session, "block 198.51.100.0/24")
        .await
        .expect("block");
    let peers = terminal(&c, &s, &session, "peers").await.expect("peers");
    assert!(
        peers
            .iter()
            .any(|l| l.contains(&friend_id.to_string()) && l.contains("approved")),
        "{peers:?}"
    );

    // A message from the friend arrives at the node.
    let mut node_events = node.network().subscribe();
    friend
        .send_message(node_id, "hello, server")
        .await
        .expect("send");
    let text = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(NetworkEvent::MessageReceived { text, .. }) = node_events.recv().await {
                return text;
            }
        }
    })
    .await
    .expect("message");
    assert_eq!(text, "hello, server");

    // The doctor explains the connected peer.
    let doctor = terminal(&c, &s, &session, &format!("doctor {prefix}"))
        .await
        .expect("doctor");
    assert!(
        doctor.iter().any(|l| l.contains("decision: approved")),
        "{doctor:?}"
    );
    assert!(
        doctor.iter().any(|l| l.contains("channel: open")),
        "{doctor:?}"
    );

    // Restart: nothing decided is forgotten.
    drop(node_events);
    drop(node);
    s.shutdown().await;
    let s = Running::start(make_config()).await;
    let node = s.node.clone().unwrap();
    let known = node.network().known_peer(&friend_id).expect("restored");
    assert!(known.approved, "{known:?}");
    assert!(
        known
            .grants
            .iter()
            .any(|g| g.scopes == Scopes::ALL && g.granted_by == "elevate"),
        "{known:?}"
    );
    let blocked: Vec<String> = node
        .network()
        .trust_policy()
        .access
        .blocked()
        .map(|t| t.to_string())
        .collect();
    assert_eq!(blocked, vec!["198.51.100.0/24".to_owned()]);
    // The friend comes back and is let in without asking.
    let mut node_events = node.network().subscribe();
    friend.connect(s.node_addr()).await.expect("reconnect");
    let scopes = tokio::time::timeout(WAIT, async {
        loop {
            match node_events.recv().await {
                Some(NetworkEvent::ChannelOpened { peer, scopes, .. }) if peer == friend_id => {
                    return scopes;
                }
                Some(NetworkEvent::ApprovalRequested { .. }) => {
                    panic!("asked again after a restart")
                }
                _ => {}
            }
        }
    })
    .await
    .expect("opened");
    assert_eq!(scopes, Scopes::ALL, "the grant came back");

    // Blocking the peer closes its channel, and the block survives too.
    let c = client();
    let session = login(&c, &s).await;
    terminal(&c, &s, &session, &format!("block {prefix}"))
        .await
        .expect("block peer");
    eventually("the blocked peer's channel closes", || {
        node.network().channel(&friend_id).is_none()
    })
    .await;
    let doctor = terminal(&c, &s, &session, &format!("doctor {prefix}"))
        .await
        .expect("doctor");
    assert!(
        doctor.iter().any(|l| l.contains("blocked (its id)")),
        "{doctor:?}"
    );
    drop(node_events);
    drop(node);
    s.shutdown().await;
    let s = Running::start(make_config()).await;
    assert!(
        s.node
            .as_ref()
            .unwrap()
            .network()
            .trust_policy()
            .access
            .blocks_peer(&friend_id),
        "the peer block survived"
    );
    friend.shutdown().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_survive_a_restart_on_sqlite() {
    decisions_survive_a_restart("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_survive_a_restart_on_postgres() {
    let Some(admin_url) = crate::common::pg::admin_url() else {
        return;
    };
    let db = crate::common::pg::PgDatabase::create(&admin_url).await;
    decisions_survive_a_restart(&db.url).await;
    db.drop_unused().await;
}

#[tokio::test]
async fn bad_node_input_gets_a_clear_message_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |_| {})).await;
    let c = client();
    let session = login(&c, &s).await;
    let cases = [
        ("approve zzzz", "no peer id starts with `zzzz`"),
        (
            "block 10.0.0.0/99",
            "neither a peer id nor an address or CIDR",
        ),
        ("unblock 192.0.2.1", "is not blocked"),
        ("connect nowhere", "is not an address:port"),
        ("connect 127.0.0.1:1", "connection refused"),
        ("routine start NoSuchRoutine", "no routine named"),
        (
            "routine interval DiscernPeerChannels 0",
            "between 1 and 86400",
        ),
        ("doctor", "takes one peer id"),
        ("frobnicate", "unknown command"),
    ];
    for (line, expected) in cases {
        let error = terminal(&c, &s, &session, line).await.expect_err(line);
        assert!(
            error.to_lowercase().contains(&expected.to_lowercase()),
            "{line}: {error}"
        );
    }
    let node = s.node.clone().unwrap();
    assert!(
        node.network()
            .trust_policy()
            .access
            .blocked()
            .next()
            .is_none()
    );
    assert!(node.network().known_peers().is_empty());
    // Two known peers whose ids share a first character: a one-character
    // prefix is ambiguous, and nothing is done.
    for byte in [0u8, 1] {
        let id = p2pnet::PeerId::from_bytes([byte; 32]);
        node.network()
            .restore_peer(p2pnet::KnownPeer::new(id, p2pnet::PeerSource::Manual))
            .expect("restore");
    }
    let first = p2pnet::PeerId::from_bytes([0; 32]).to_string();
    let error = terminal(&c, &s, &session, &format!("block {}", &first[..1]))
        .await
        .expect_err("ambiguous");
    assert!(error.contains("matches 2 peers"), "{error}");
    assert!(
        node.network()
            .trust_policy()
            .access
            .blocked()
            .next()
            .is_none()
    );
    let long = format!("send {} {}", &first[..10], "x".repeat(1100));
    let error = terminal(&c, &s, &session, &long)
        .await
        .expect_err("too long");
    assert!(error.contains("too long"), "{error}");
    // Still serving.
    assert!(terminal(&c, &s, &session, "node").await.is_ok());
    drop(node);
    s.shutdown().await;
}

#[tokio::test]
async fn the_node_can_be_switched_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |raw| raw.node.enabled = false)).await;
    assert!(s.node.is_none());
    let c = client();
    let session = login(&c, &s).await;
    let error = terminal(&c, &s, &session, "peers").await.expect_err("off");
    assert!(error.contains("node is off"), "{error}");
    s.shutdown().await;
}

#[tokio::test]
async fn settings_apply_at_once_or_after_a_restart_and_bad_fields_are_named() {
    use crate::common::server::form_action;
    use reqwest::header;
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |_| {})).await;
    let c = client();
    let session = login(&c, &s).await;
    let action = form_action(&c, &s, &session, "/settings", "/api/update_settings").await;
    let post = |fields: Vec<(&'static str, &'static str)>| {
        let mut form = vec![
            ("csrf_token", session.csrf.clone()),
            ("settings_form", "1".into()),
            ("node_name", "node-under-test".into()),
            ("placement", "queue-and-event".into()),
            ("approval_timeout_secs", "300".into()),
            ("default_exchange", "on".into()),
            ("accept_inbound_peers", "on".into()),
            ("auto_connect", "on".into()),
        ];
        for (k, v) in fields {
            form.retain(|(name, _)| *name != k);
            if !v.is_empty() {
                form.push((k, v.to_owned()));
            }
        }
        c.post(s.url(&action))
            .header(header::COOKIE, &session.cookie)
            .header(header::ACCEPT, "application/json")
            .form(&form)
    };
    // Bad fields: refused together, each named, nothing stored.
    let r = post(vec![
        ("placement", "inbox"),
        ("approval_timeout_secs", "2"),
        ("static_hosts", "bad host!"),
    ])
    .send()
    .await
    .expect("post");
    assert!(!r.status().is_success(), "{}", r.status());
    let body = r.text().await.expect("body");
    for field in ["placement", "approval_timeout_secs", "static_hosts"] {
        assert!(body.contains(field), "{field} not named: {body}");
    }
    let node = s.node.clone().unwrap();
    assert!(!node.network().trust_policy().auto_accept);

    // Trust defaults apply at once; accepting inbound peers after a restart.
    let r = post(vec![
        ("placement", "queue"),
        ("auto_accept", "on"),
        ("accept_inbound_peers", ""),
    ])
    .send()
    .await
    .expect("post");
    assert!(r.status().is_success(), "{}", r.status());
    let view: serde_json::Value = r.json().await.expect("json");
    assert_eq!(
        view["pending_restart"],
        serde_json::json!(["accept_inbound_peers"])
    );
    let policy = node.network().trust_policy();
    assert!(policy.auto_accept, "applied live");
    assert_eq!(policy.placement, p2pnet::Placement::Queue);
    assert!(
        node.network().local_addr().is_some(),
        "still listening until a restart"
    );
    drop(node);
    s.shutdown().await;

    let s = Running::start(config(dir.path(), |_| {})).await;
    let node = s.node.clone().unwrap();
    assert!(
        node.network().local_addr().is_none(),
        "inbound off after the restart"
    );
    assert!(
        node.network().trust_policy().auto_accept,
        "stored over the file"
    );
    drop(node);
    s.shutdown().await;
}

#[tokio::test]
async fn a_speed_test_runs_from_the_terminal_and_is_kept_for_the_peers_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |_| {})).await;
    let c = client();
    let session = login(&c, &s).await;
    let node = s.node.clone().unwrap();
    // A friend that grants whoever it dials everything, perf included.
    let friend = PeerNetwork::builder()
        .listen_ip("127.0.0.1".parse().unwrap())
        .trust_policy(p2pnet::IncomingPeerTrustPolicy {
            auto_accept: true,
            allow_enhanced_packet_exchange: true,
            ..Default::default()
        })
        .start()
        .await
        .expect("friend");
    let friend_id = friend.local_peer_id();
    let prefix = &friend_id.to_string()[..8];
    friend.connect(s.node_addr()).await.expect("connect");
    eventually("the friend waits for approval", || {
        node.network()
            .pending_approvals()
            .iter()
            .any(|p| p.peer == friend_id)
    })
    .await;
    terminal(&c, &s, &session, &format!("approve {prefix}"))
        .await
        .expect("approve");
    // Approved with messages only: no perf scope yet, so no test.
    eventually("the channel opens", || {
        node.network()
            .channel(&friend_id)
            .is_some_and(|c| matches!(c.state, ChannelState::Open { .. }))
    })
    .await;
    let error = terminal(&c, &s, &session, &format!("perf {prefix} 1M 1M"))
        .await
        .expect_err("not granted");
    assert!(error.contains("not permitted"), "{error}");

    terminal(&c, &s, &session, &format!("elevate {prefix}"))
        .await
        .expect("elevate");
    eventually("perf granted", || {
        node.network().channel(&friend_id).is_some_and(
            |c| matches!(c.state, ChannelState::Open { scopes } if scopes.contains(Scopes::PERF)),
        )
    })
    .await;
    let lines = terminal(&c, &s, &session, &format!("perf {prefix} 2M 3M"))
        .await
        .expect("perf");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert!(
        line.starts_with(&format!("perf {friend_id}: up 2.0 MiB in ")),
        "{line}"
    );
    assert!(line.contains("· down 3.0 MiB in "), "{line}");
    assert!(line.contains("round trip "), "{line}");
    let html = node.perf_history().html();
    assert!(html.contains(&friend_id.to_string()), "{html}");
    assert_eq!(html.matches("class=\"bar-up\"").count(), 1);

    // Sizes are checked before anything is sent.
    let error = terminal(&c, &s, &session, &format!("perf {prefix} 2G"))
        .await
        .expect_err("too large");
    assert!(error.contains("at most 1 GiB"), "{error}");
    let error = terminal(&c, &s, &session, &format!("perf {prefix} lots"))
        .await
        .expect_err("not a size");
    assert!(error.contains("is not a size"), "{error}");
    assert_eq!(node.perf_history().html().matches("<tr><td>").count(), 1);

    friend.shutdown().await;
    drop(node);
    s.shutdown().await;
}
