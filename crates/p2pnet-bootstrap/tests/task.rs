//! A task applies only if the pinned authority signed it, for this node
//! and network, unexpired, and above the last one applied.

use std::time::{Duration, SystemTime};

use p2pnet::proto::Keypair;
use p2pnet_bootstrap::{
    authority::AuthorityKey,
    task::{SignedTask, TASK_FORMAT, Task, TaskAction, TaskError, TaskTarget, check_task},
};

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn task(seq: u64, target: TaskTarget, action: TaskAction) -> Task {
    Task {
        format: TASK_FORMAT.into(),
        network: "p2pnet".into(),
        seq,
        issued_at: now(),
        expires_at: now() + 600,
        target,
        action,
    }
}

fn sign(key: &AuthorityKey, task: &Task) -> SignedTask {
    let text = task.to_text().unwrap();
    SignedTask {
        signature: key.sign_detached(text.as_bytes()).unwrap(),
        task: text,
    }
}

#[test]
fn only_a_signed_fresh_task_for_this_node_applies() {
    let key = AuthorityKey::generate("a", YEAR).unwrap();
    let pin = key.pinned();
    let me = Keypair::from_seed(&[1; 32]).peer_id();
    let other = Keypair::from_seed(&[2; 32]).peer_id();
    let block = TaskAction::BlockPeer { peer: other };
    let check =
        |signed: &SignedTask, last| check_task(signed, &pin, "p2pnet", me, last, SystemTime::now());

    let ok = sign(&key, &task(5, TaskTarget::Peer(me), block.clone()));
    assert_eq!(check(&ok, 4).unwrap().action, block);
    let all = sign(&key, &task(6, TaskTarget::All, TaskAction::Ping));
    assert_eq!(check(&all, 5).unwrap().seq, 6);

    // Replayed, or older than one applied.
    assert!(matches!(
        check(&ok, 5),
        Err(TaskError::Replayed { seq: 5, last: 5 })
    ));
    // Forged: another key, or the text altered after signing.
    let forger = AuthorityKey::generate("f", YEAR).unwrap();
    assert!(matches!(
        check(
            &sign(&forger, &task(7, TaskTarget::All, TaskAction::Ping)),
            0
        ),
        Err(TaskError::Forged(_))
    ));
    let mut altered = ok.clone();
    altered.task = altered.task.replace("block_peer", "disconnect");
    assert!(matches!(check(&altered, 0), Err(TaskError::Forged(_))));
    // For someone else, or another network.
    let theirs = sign(&key, &task(8, TaskTarget::Peer(other), TaskAction::Ping));
    assert!(matches!(check(&theirs, 0), Err(TaskError::NotForUs(_))));
    let mut elsewhere = task(9, TaskTarget::All, TaskAction::Ping);
    elsewhere.network = "other".into();
    assert!(matches!(
        check(&sign(&key, &elsewhere), 0),
        Err(TaskError::NotForUs(_))
    ));
    // Expired.
    let mut old = task(10, TaskTarget::All, TaskAction::Ping);
    old.expires_at = now() - 1;
    assert!(matches!(
        check(&sign(&key, &old), 0),
        Err(TaskError::Expired { seq: 10, .. })
    ));
    // Signed, but unknown or invalid: malformed, never guessed at.
    let unknown = r#"{"format":"p2pnet-bootstrap-task/1","network":"p2pnet","seq":11,"issued_at":1,"expires_at":99999999999,"target":"*","action":{"kind":"format_disk"}}"#;
    let signed = SignedTask {
        task: unknown.into(),
        signature: key.sign_detached(unknown.as_bytes()).unwrap(),
    };
    assert!(matches!(check(&signed, 0), Err(TaskError::Malformed(_))));
    let bad_cidr = sign(
        &key,
        &task(
            12,
            TaskTarget::All,
            TaskAction::BlockNetwork {
                cidr: "10.0.0.0/33".into(),
            },
        ),
    );
    assert!(matches!(check(&bad_cidr, 0), Err(TaskError::Malformed(_))));
    let oversized = SignedTask {
        task: "x".repeat(5000),
        signature: String::new(),
    };
    assert!(matches!(
        check(&oversized, 0),
        Err(TaskError::TooLarge(5000))
    ));
}

#[test]
fn targets_read_and_write_as_star_or_an_id() {
    let id = Keypair::from_seed(&[3; 32]).peer_id();
    assert_eq!("*".parse::<TaskTarget>().unwrap(), TaskTarget::All);
    assert_eq!(
        id.to_string().parse::<TaskTarget>().unwrap(),
        TaskTarget::Peer(id)
    );
    assert!("nobody".parse::<TaskTarget>().is_err());
    let json = serde_json::to_string(&TaskTarget::Peer(id)).unwrap();
    assert_eq!(json, format!("\"{id}\""));
}
