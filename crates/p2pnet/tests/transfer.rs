//! File transfer over loopback: a 100 MiB file verified by hash, consent,
//! and resume after the sender is killed mid-transfer.

mod common;

use std::io::Write;
use std::path::Path;

use common::*;
use p2pnet::proto::packet::ContentHash;
use p2pnet::{FileDecision, Keypair, NetworkEvent, PacketHandlers, PeerNetwork, TransferDirection};

/// Writes `mib` MiB of deterministic, non-repeating bytes.
fn write_file(path: &Path, mib: usize) -> ContentHash {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hasher = blake3::Hasher::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        hasher.update(&block);
        file.write_all(&block).unwrap();
    }
    file.flush().unwrap();
    hasher.finalize().into()
}

fn hash_of(path: &Path) -> ContentHash {
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_reader(std::fs::File::open(path).unwrap())
        .unwrap();
    hasher.finalize().into()
}

async fn elevated_pair(
    sender: &PeerNetwork,
    receiver: &PeerNetwork,
) -> (p2pnet::PeerId, p2pnet::PeerId) {
    let (s, r) = link(sender, receiver).await;
    sender.elevate(r).await.unwrap();
    receiver.elevate(s).await.unwrap();
    eventually("both sides elevated", || {
        is_elevated(sender, &r) && is_elevated(receiver, &s)
    })
    .await;
    (s, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mib_file_arrives_verified_with_progress() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("big.bin");
    let expected = write_file(&source, 100);
    let downloads = dir.path().join("downloads");
    let sender = start(local()).await;
    let receiver = start(local().download_dir(&downloads)).await;
    let (_, receiver_id) = elevated_pair(&sender, &receiver).await;
    let mut events = receiver.subscribe();

    let started = std::time::Instant::now();
    sender.send_file(receiver_id, &source).await.unwrap();
    let mut progress_events = 0;
    let (path, hash, resumed) = wait_for(&mut events, "completion", |e| match e {
        NetworkEvent::TransferProgress {
            direction: TransferDirection::Incoming,
            ..
        } => {
            progress_events += 1;
            None
        }
        NetworkEvent::TransferFailed { reason, .. } => panic!("transfer failed: {reason}"),
        NetworkEvent::TransferCompleted {
            path,
            hash,
            resumed_from,
            direction: TransferDirection::Incoming,
            ..
        } => Some((path.clone(), *hash, *resumed_from)),
        _ => None,
    })
    .await;
    eprintln!("100 MiB in {:?}", started.elapsed());
    assert_eq!(hash, expected);
    assert_eq!(resumed, 0);
    assert_eq!(path, downloads.join("big.bin"));
    assert_eq!(
        hash_of(&path),
        expected,
        "the bytes on disk are the sent bytes"
    );
    assert!(
        (10..=60).contains(&progress_events),
        "{progress_events} progress events"
    );
    // The partial directory is empty once the file is in place.
    assert_eq!(
        std::fs::read_dir(downloads.join(p2pnet::PARTIAL_DIR))
            .unwrap()
            .count(),
        0
    );

    sender.shutdown().await;
    receiver.shutdown().await;
}

#[tokio::test]
async fn offers_are_refused_without_consent_a_download_dir_or_within_the_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("small.txt");
    std::fs::write(&source, b"hello").unwrap();
    let sender = start(local()).await;

    let no_dir = start(local()).await;
    let refusing = start(local().download_dir(dir.path().join("r")).handlers(
        PacketHandlers::default().on_file_offer(
            |_: &p2pnet::PacketContext<'_>, offer: &p2pnet::FileOfferInfo| {
                FileDecision::Reject(format!("no thanks to {}", offer.name))
            },
        ),
    ))
    .await;
    let tiny = start(local().download_dir(dir.path().join("t")).max_file_size(4)).await;
    let mut events = sender.subscribe();
    for (receiver, expected) in [
        (&no_dir, "does not accept files"),
        (&refusing, "no thanks to small.txt"),
        (&tiny, "too large"),
    ] {
        let (_, id) = elevated_pair(&sender, receiver).await;
        sender.send_file(id, &source).await.unwrap();
        let reason = wait_for(&mut events, "rejection", |e| match e {
            NetworkEvent::TransferFailed { reason, .. } => Some(reason.clone()),
            NetworkEvent::TransferCompleted {
                direction: TransferDirection::Outgoing,
                ..
            } => {
                panic!("sent despite refusal")
            }
            _ => None,
        })
        .await;
        assert!(reason.contains(expected), "{reason}");
    }
    for n in [sender, no_dir, refusing, tiny] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sender_resumes_from_the_last_verified_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("resume.bin");
    let expected = write_file(&source, 64);
    let downloads = dir.path().join("downloads");
    let key = Keypair::generate(&mut rand::rng()).to_bytes().to_vec();
    // The receiver admits and elevates inbound peers at once, and remembers
    // the trust it granted when the same identity comes back.
    let receiver = start(local().download_dir(&downloads).trust_policy(
        p2pnet::IncomingPeerTrustPolicy {
            auto_accept: true,
            allow_enhanced_packet_exchange: true,
            ..Default::default()
        },
    ))
    .await;
    let receiver_addr = addr(&receiver);
    let mut events = receiver.subscribe();

    // The first sender runs in its own runtime, dropped mid-transfer: its
    // tasks vanish and its sockets close without a Disconnect, as when a
    // process is killed.
    let (kill, killed) = tokio::sync::oneshot::channel::<()>();
    let doomed = {
        let key = key.clone();
        let source = source.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let sender = runtime.block_on(async move {
                let sender = start(local().keypair(Keypair::from_bytes(&key).unwrap())).await;
                let receiver_id = sender.connect(receiver_addr).await.unwrap();
                sender.elevate(receiver_id).await.unwrap();
                eventually("sender elevated", || is_elevated(&sender, &receiver_id)).await;
                sender.send_file(receiver_id, &source).await.unwrap();
                let _ = killed.await;
                sender
            });
            drop(runtime);
            drop(sender);
        })
    };
    wait_for(&mut events, "a quarter received", |e| match e {
        NetworkEvent::TransferProgress {
            transferred, total, ..
        } => (*transferred >= total / 4).then_some(()),
        NetworkEvent::TransferCompleted { .. } => panic!("finished before the kill"),
        _ => None,
    })
    .await;
    kill.send(()).unwrap();
    doomed.join().unwrap();
    wait_for(&mut events, "the dead channel noticed", |e| match e {
        NetworkEvent::TransferFailed {
            direction: TransferDirection::Incoming,
            ..
        } => Some(()),
        NetworkEvent::TransferCompleted { .. } => panic!("finished before the kill"),
        _ => None,
    })
    .await;
    let partial = std::fs::read_dir(downloads.join(p2pnet::PARTIAL_DIR))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let kept = partial.metadata().unwrap().len();
    assert!(kept > 0 && kept < 64 << 20, "{kept} bytes kept");

    // The same identity comes back and offers the same file.
    let sender = start(local().keypair(Keypair::from_bytes(&key).unwrap())).await;
    let receiver_id = sender.connect(receiver_addr).await.unwrap();
    sender.elevate(receiver_id).await.unwrap();
    eventually("sender elevated again", || {
        is_elevated(&sender, &receiver_id)
    })
    .await;
    sender.send_file(receiver_id, &source).await.unwrap();
    let (path, hash, resumed_from) = wait_for(&mut events, "completion", |e| match e {
        NetworkEvent::TransferFailed { reason, .. } => panic!("resume failed: {reason}"),
        NetworkEvent::TransferCompleted {
            path,
            hash,
            resumed_from,
            direction: TransferDirection::Incoming,
            ..
        } => Some((path.clone(), *hash, *resumed_from)),
        _ => None,
    })
    .await;
    assert!(
        resumed_from > 0 && resumed_from <= kept,
        "resumed from {resumed_from}, {kept} kept"
    );
    assert_eq!(
        resumed_from % u64::from(p2pnet::proto::packet::DEFAULT_CHUNK_SIZE),
        0
    );
    assert_eq!(hash, expected);
    assert_eq!(hash_of(&path), expected);
    sender.shutdown().await;
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_abandons_hashing_a_large_file() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("sparse.bin");
    // 16 GiB of holes: quick to make, long to hash in full.
    std::fs::File::create(&source)
        .unwrap()
        .set_len(16 << 30)
        .unwrap();
    let sender = start(local()).await;
    let receiver = start(local()).await;
    let (_, receiver_id) = link(&sender, &receiver).await;

    let offering = {
        let sender = sender.clone();
        tokio::spawn(async move { sender.send_file(receiver_id, &source).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!offering.is_finished(), "hashing 16 GiB took under 200 ms");
    let cancelled = std::time::Instant::now();
    sender.shutdown().await;
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(30), offering)
        .await
        .expect("send_file never returned")
        .unwrap();
    let took = cancelled.elapsed();
    assert!(
        matches!(outcome, Err(p2pnet::Error::Shutdown)),
        "{outcome:?} after {took:?}"
    );
    assert!(
        took < std::time::Duration::from_secs(2),
        "hashing went on for {took:?} after shutdown"
    );
    receiver.shutdown().await;
}
