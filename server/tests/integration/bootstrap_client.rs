//! Two p2pnet nodes that find each other only through the server (LAN
//! discovery off: nothing else could introduce them), with the library's
//! bootstrap client, in trustless and in authority mode. The peer a list
//! names is gated like any discovered peer: it waits for approval.

use std::time::Duration;

use crate::common::server::{Running, config};
use p2pnet::{IncomingPeerTrustPolicy, PeerNetwork, PeerSource, Placement};
use p2pnet_bootstrap::{
    client::{BootstrapClient, BootstrapClientConfig},
    verify::BootstrapPolicy,
};

const WAIT: Duration = Duration::from_secs(30);

async fn node(auto_accept: bool) -> PeerNetwork {
    PeerNetwork::builder()
        .listen_ip("127.0.0.1".parse().unwrap())
        .trust_policy(IncomingPeerTrustPolicy {
            auto_accept,
            placement: Placement::QueueAndEvent,
            ..IncomingPeerTrustPolicy::default()
        })
        .start()
        .await
        .expect("node")
}

fn client(
    network: &PeerNetwork,
    s: &Running,
    policy: BootstrapPolicy,
    state: &std::path::Path,
) -> BootstrapClient {
    BootstrapClient::start(
        network.clone(),
        BootstrapClientConfig {
            servers: vec![s.url("")],
            policy,
            state_file: Some(state.to_path_buf()),
            fetch_interval: Duration::from_secs(1),
            ..BootstrapClientConfig::default()
        },
    )
    .expect("client")
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Alice auto-accepts; Bob approves by hand. Each learns the other from
/// the server's list and dials it; Bob's side waits for his approval.
async fn find_each_other(s: &Running, policy: BootstrapPolicy) -> Vec<BootstrapClient> {
    let dir = tempfile::tempdir().expect("tempdir");
    let alice = node(true).await;
    let bob = node(false).await;
    let clients = vec![
        client(&alice, s, policy.clone(), &dir.path().join("alice.json")),
        client(&bob, s, policy, &dir.path().join("bob.json")),
    ];
    let (a, b) = (alice.local_peer_id(), bob.local_peer_id());
    // Whoever reads the list first dials the other, who then knows the
    // dialler as inbound: at least one side learned from the list.
    let listed = |n: &PeerNetwork, p: &p2pnet::PeerId| {
        n.known_peer(p)
            .is_some_and(|k| k.source == PeerSource::Bootstrap)
    };
    eventually("they learn each other, one of them from the list", || {
        alice.known_peer(&b).is_some()
            && bob.known_peer(&a).is_some()
            && (listed(&alice, &b) || listed(&bob, &a))
    })
    .await;
    eventually("bob is asked to approve alice", || {
        bob.pending_approvals().iter().any(|p| p.peer == a)
    })
    .await;
    assert!(
        bob.channel(&a)
            .is_none_or(|c| !matches!(c.state, p2pnet::proto::ChannelState::Open { .. })),
        "not open before approval"
    );
    bob.approve(a, None).await.expect("approve");
    eventually("a channel both ways", || {
        alice
            .channel(&b)
            .is_some_and(|c| matches!(c.state, p2pnet::proto::ChannelState::Open { .. }))
            && bob
                .channel(&a)
                .is_some_and(|c| matches!(c.state, p2pnet::proto::ChannelState::Open { .. }))
    })
    .await;
    bob.send_message(a, "found you through the server")
        .await
        .expect("message");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("alice.json")).unwrap())
            .unwrap();
    assert!(state["record_seq"].as_u64().unwrap() > 0, "{state}");
    alice.shutdown().await;
    bob.shutdown().await;
    clients
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_meet_through_a_trustless_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |_| {})).await;
    let clients = find_each_other(&s, BootstrapPolicy::default()).await;
    for c in clients {
        let status = c.status();
        assert!(status.pinned.is_none(), "no authority to pin");
        assert!(status.errors.is_empty(), "{status:?}");
        c.stop().await;
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_meet_through_an_authority_they_pin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |raw| {
        raw.bootstrap.mode = "authority".into();
        raw.bootstrap.passphrase = "client test passphrase".into();
    }))
    .await;
    let fingerprint = s
        .bootstrap()
        .authority()
        .expect("authority mode")
        .key
        .fingerprint();
    let policy = BootstrapPolicy {
        must_be_authority: true,
        ..BootstrapPolicy::default()
    };
    let clients = find_each_other(&s, policy).await;
    for c in clients {
        assert_eq!(c.status().pinned.as_deref(), Some(fingerprint.as_str()));
        c.stop().await;
    }
    s.shutdown().await;

    // A client that insists on an authority refuses a trustless server.
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |_| {})).await;
    let carol = node(true).await;
    let c = client(
        &carol,
        &s,
        BootstrapPolicy {
            must_be_authority: true,
            ..BootstrapPolicy::default()
        },
        &dir.path().join("carol.json"),
    );
    let mut status = c.watch();
    let refused = tokio::time::timeout(WAIT, status.wait_for(|s| !s.errors.is_empty()))
        .await
        .expect("a round")
        .expect("status")
        .clone();
    assert!(
        refused.errors[0].1.contains("only an authority"),
        "{refused:?}"
    );
    c.stop().await;
    carol.shutdown().await;
    s.shutdown().await;
}

/// Tasks from the authority reach the peer they are for, in order and
/// once; a forged one (signed by another key, slipped into the queue)
/// is refused with an event; every signature issued is in the history,
/// which chains and answers `verify`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authority_tasks_reach_their_peer_and_forgeries_do_not() {
    use p2pnet_bootstrap::{
        authority::AuthorityKey,
        client::BootstrapEvent,
        task::{TASK_FORMAT, Task, TaskAction, TaskTarget},
    };
    use server::store::{NewAudit, NewSignature, StoredTask, sha256_hex, verify_chain};

    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |raw| {
        raw.bootstrap.mode = "authority".into();
        raw.bootstrap.passphrase = "task test passphrase".into();
    }))
    .await;
    let alice = node(true).await;
    let bob = node(true).await;
    let (a, b) = (alice.local_peer_id(), bob.local_peer_id());
    let alice_client = client(
        &alice,
        &s,
        BootstrapPolicy::default(),
        &dir.path().join("a.json"),
    );
    let bob_client = client(
        &bob,
        &s,
        BootstrapPolicy::default(),
        &dir.path().join("b.json"),
    );
    let mut events = alice_client.events();
    eventually("alice and bob connect through the list", || {
        alice
            .channel(&b)
            .is_some_and(|c| matches!(c.state, p2pnet::proto::ChannelState::Open { .. }))
    })
    .await;

    // A forged task first: signed by another key, in the queue all the same.
    let forger = AuthorityKey::generate("forger", Duration::from_secs(3600)).unwrap();
    let seq = s.store.next_task_seq().await.unwrap();
    let now = server::bootstrap::unix_now();
    let forged = Task {
        format: TASK_FORMAT.into(),
        network: "p2pnet".into(),
        seq: u64::try_from(seq).unwrap(),
        issued_at: now,
        expires_at: now + 600,
        target: TaskTarget::All,
        action: TaskAction::BlockPeer { peer: b },
    }
    .to_text()
    .unwrap();
    let forged_signature = forger.sign_detached(forged.as_bytes()).unwrap();
    s.store
        .queue_task(
            &StoredTask {
                seq,
                target: "*".into(),
                task: forged.clone(),
                signature: forged_signature.clone(),
                expires_at: i64::try_from(now + 600).unwrap(),
                queued_by: "intruder".into(),
                queued_at_ms: 0,
            },
            &NewSignature {
                at_ms: 0,
                kind: "task",
                digest: sha256_hex(forged.as_bytes()),
                fingerprint: forger.fingerprint(),
                signature: forged_signature,
            },
            &NewAudit {
                at_ms: 0,
                actor: "intruder".into(),
                action: "test".into(),
                detail: String::new(),
            },
        )
        .await
        .unwrap();
    // Then a real one for Alice only, from the terminal, peers named by
    // prefixes of their registered ids: block Bob.
    let c = crate::common::server::client();
    let session = crate::common::server::login(&c, &s).await;
    let (a_text, b_text) = (a.to_string(), b.to_string());
    let queued = crate::common::server::terminal(
        &c,
        &s,
        &session,
        &format!("task {} block {}", &a_text[..10], &b_text[..10]),
    )
    .await
    .expect("task queued");
    assert!(queued[0].contains("queued: block_peer"), "{queued:?}");
    let task = s
        .bootstrap()
        .recent_tasks(1)
        .await
        .unwrap()
        .pop()
        .map(|t| serde_json::from_str::<Task>(&t.task).unwrap())
        .expect("the task is stored");
    assert_eq!(task.target, TaskTarget::Peer(a));
    assert!(
        s.store
            .recent_audit(20)
            .await
            .unwrap()
            .iter()
            .any(|r| r.entry.action == "bootstrap.task" && r.entry.actor == "admin"),
        "queuing a task is audited"
    );
    let refused = crate::common::server::terminal(&c, &s, &session, "task * format-disk now")
        .await
        .expect_err("unknown action");
    assert!(refused.contains("a task is one of"), "{refused}");

    let mut seen = Vec::new();
    let applied = tokio::time::timeout(WAIT, async {
        loop {
            let event = events.recv().await.expect("event");
            seen.push(event.clone());
            if let BootstrapEvent::TaskApplied { seq, kind } = event {
                return (seq, kind);
            }
        }
    })
    .await
    .expect("the task arrives");
    assert_eq!(applied, (task.seq, "block_peer"));
    assert!(
        seen.iter().any(
            |e| matches!(e, BootstrapEvent::TaskRefused { reason, .. } if reason.contains("forged"))
        ),
        "the forged task was refused first: {seen:?}"
    );
    eventually("alice blocked bob: the channel is gone", || {
        alice.channel(&b).is_none()
    })
    .await;
    // Bob was not told to block anyone.
    assert!(bob.known_peer(&a).is_some());

    // The history holds every signature issued, chained, and answers verify.
    let lines = crate::common::server::terminal(&c, &s, &session, "bootstrap history")
        .await
        .expect("history");
    assert!(lines[0].ends_with("the chain holds"), "{lines:?}");
    let history = s.bootstrap().history(0, 1000).await.unwrap();
    assert!(history.iter().any(|e| e.kind == "snapshot"));
    assert_eq!(verify_chain(&history), Ok(()));
    let verify = |body: serde_json::Value| {
        let request = c.post(s.url("/api/v1/bootstrap/verify")).json(&body);
        async move {
            let answer: serde_json::Value = request
                .send()
                .await
                .expect("verify")
                .json()
                .await
                .expect("a JSON body");
            answer
        }
    };
    let digest = sha256_hex(task.to_text().unwrap().as_bytes());
    let answer: serde_json::Value = verify(serde_json::json!({ "digest": digest })).await;
    assert_eq!(answer["issued"], true, "{answer}");
    let unknown: serde_json::Value = verify(serde_json::json!({ "digest": "0".repeat(64) })).await;
    assert_eq!(unknown["issued"], false);
    // By signature too, whatever its line endings.
    let stored = s.bootstrap().recent_tasks(1).await.unwrap().pop().unwrap();
    let crlf = stored.signature.replace('\n', "\r\n");
    let by_signature: serde_json::Value = verify(serde_json::json!({ "signature": crlf })).await;
    assert_eq!(by_signature["issued"], true, "{by_signature}");
    assert_eq!(by_signature["entries"][0]["kind"], "task");
    let stranger = forger.sign_detached(b"never served").unwrap();
    let not_ours: serde_json::Value = verify(serde_json::json!({ "signature": stranger })).await;
    assert_eq!(not_ours["issued"], false);
    let bad = c
        .post(s.url("/api/v1/bootstrap/verify"))
        .json(&serde_json::json!({ "digest": "not hex" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), reqwest::StatusCode::BAD_REQUEST);

    // A heartbeat replayed is refused.
    let heartbeat = alice.sign_heartbeat(1, 0).unwrap();
    let replay = |text: String| {
        let c = c.clone();
        let url = s.url("/api/v1/bootstrap/heartbeat");
        async move {
            c.post(url)
                .json(&serde_json::json!({ "heartbeat": text }))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        replay(heartbeat.as_str().to_owned()).await,
        reqwest::StatusCode::BAD_REQUEST,
        "made at 1970: out of the clock skew"
    );
    let now_ms = u64::try_from(server::state::now_ms()).unwrap();
    let fresh = alice.sign_heartbeat(now_ms - 100_000, 0).unwrap();
    assert_eq!(
        replay(fresh.as_str().to_owned()).await,
        reqwest::StatusCode::CONFLICT,
        "older than the client's last heartbeat"
    );

    alice_client.stop().await;
    bob_client.stop().await;
    alice.shutdown().await;
    bob.shutdown().await;
    s.shutdown().await;
}
