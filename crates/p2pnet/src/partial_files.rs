//! The partial files one network keeps between transfers, so that a resume
//! continues from memory instead of re-reading the file.
//!
//! BLAKE3's hasher state cannot be saved to disk, so resuming a partial
//! file cold means re-reading and re-hashing its prefix, up to
//! `max_file_size`. A peer that offers and cancels in a loop would make the
//! node do that for every offer. So when an incoming transfer stops early,
//! the network keeps its [`PartialFile`] (still locked) and the receiver's
//! [`HashedPrefix`] here, and the next offer of the same content from the
//! same sender takes them back and goes on where it stopped. As the file
//! stays locked meanwhile, nothing else can write it, and the kept state
//! still describes the bytes on disk.
//!
//! Bounds: at most [`MAX_KEPT`] files, and at most `per_sender` of one
//! sender (the number of transfers it may run at once). When one must
//! make room, the sender's own oldest goes if it is at its share, else the
//! oldest of all; its partial file is **deleted**. Keeping the file without
//! its state would cost a full re-read at its next resume, and a peer
//! cycling through more files than the table holds would bring back the
//! loop this table exists to stop. So each partial file is read back from
//! disk at most once per network lifetime (its first resume after a
//! restart), and a transfer pushed out of the table restarts from zero.
//!
//! Files are kept until the network shuts down ([`release_all`]); while
//! kept, another network or process sharing the download directory is
//! refused that content from that sender.
//!
//! [`release_all`]: PartialFiles::release_all

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use p2pnet_proto::PeerId;
use p2pnet_proto::transfer::HashedPrefix;
use tokio_util::sync::CancellationToken;

use crate::partial_file::{OpenError, PartialFile};

/// Suspended transfers one network keeps, across all senders.
pub(crate) const MAX_KEPT: usize = 64;

/// A network's table of suspended partial files. Built once per network;
/// clones share the table.
#[derive(Debug, Clone)]
pub(crate) struct PartialFiles {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Cancelled when the network shuts down: cold re-reads stop.
    shutdown: CancellationToken,
    per_sender: usize,
    /// Oldest first.
    kept: Mutex<VecDeque<Kept>>,
}

#[derive(Debug)]
struct Kept {
    sender: PeerId,
    file: PartialFile,
    prefix: HashedPrefix,
}

/// A partial file claimed for a new transfer.
#[derive(Debug)]
pub(crate) enum Claim {
    /// A suspended transfer's file, with the state its receiver had.
    Kept {
        file: PartialFile,
        // Boxed: a hasher state is 2 KB, the other variant a handle.
        prefix: Box<HashedPrefix>,
    },
    /// The file on disk, locked; whatever it holds must be re-read.
    Opened(PartialFile),
}

impl PartialFiles {
    /// `shutdown` is the network's cancellation token; `per_sender` the
    /// transfers one sender may run at once.
    pub(crate) fn new(shutdown: CancellationToken, per_sender: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                shutdown,
                per_sender: per_sender.clamp(1, MAX_KEPT),
                kept: Mutex::new(VecDeque::new()),
            }),
        }
    }

    /// Fires when the network shuts down.
    pub(crate) fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// Claims the partial file at `path` for a new transfer: the kept one
    /// if this network suspended a transfer of it, else the file on disk,
    /// opened and locked ([`OpenError::Busy`] if a transfer holds it).
    pub(crate) async fn claim(&self, path: &Path) -> Result<Claim, OpenError> {
        let kept = {
            let mut kept = self.kept();
            kept.iter()
                .position(|k| k.file.path() == path)
                .and_then(|i| kept.remove(i))
        };
        match kept {
            Some(Kept { file, prefix, .. }) => Ok(Claim::Kept {
                file,
                prefix: Box::new(prefix),
            }),
            None => PartialFile::open(path.to_owned()).await.map(Claim::Opened),
        }
    }

    /// Keeps a stopped transfer's file, whose first `prefix.len()` bytes
    /// are exactly the bytes `prefix` hashed, for a later resume. May push
    /// out (and delete) an older one, see the module documentation.
    pub(crate) async fn keep(&self, sender: PeerId, file: PartialFile, prefix: HashedPrefix) {
        let pushed_out = {
            let mut kept = self.kept();
            let own = kept.iter().filter(|k| k.sender == sender).count();
            let pushed_out = if own >= self.inner.per_sender {
                kept.iter()
                    .position(|k| k.sender == sender)
                    .and_then(|i| kept.remove(i))
            } else if kept.len() >= MAX_KEPT {
                kept.pop_front()
            } else {
                None
            };
            kept.push_back(Kept {
                sender,
                file,
                prefix,
            });
            pushed_out
        };
        if let Some(old) = pushed_out {
            tracing::info!(part = %old.file.path().display(), "too many suspended transfers; discarding the oldest");
            if let Err(err) = old.file.remove().await {
                tracing::warn!(%err, "cannot delete a discarded partial file");
            }
        }
    }

    /// Lets go of every kept file (they stay on disk, unlocked): the
    /// network is shutting down and will not resume them.
    pub(crate) fn release_all(&self) {
        let released = std::mem::take(&mut *self.kept());
        drop(released);
    }

    #[cfg(test)]
    pub(crate) fn kept_len(&self) -> usize {
        self.kept().len()
    }

    fn kept(&self) -> MutexGuard<'_, VecDeque<Kept>> {
        // Plain data: a panic elsewhere leaves it usable.
        self.inner
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use p2pnet_proto::packet::{ContentHash, FileName, FileOffer, TransferId};
    use p2pnet_proto::transfer::FileReceiver;

    use super::*;

    fn prefix() -> HashedPrefix {
        let offer = FileOffer {
            transfer_id: TransferId(1),
            name: FileName::new("f").unwrap(),
            size: 10,
            chunk_size: 4,
            hash: ContentHash::of(b"0123456789"),
        };
        FileReceiver::new(offer, u64::MAX)
            .unwrap()
            .into_hashed_prefix()
    }

    async fn keep_new(partials: &PartialFiles, dir: &Path, name: &str, sender: u8) -> PathBuf {
        let path = dir.join(name);
        let file = PartialFile::open(path.clone()).await.unwrap();
        partials
            .keep(PeerId::from_bytes([sender; 32]), file, prefix())
            .await;
        path
    }

    #[tokio::test]
    async fn a_sender_at_its_share_pushes_out_its_own_oldest_file() {
        let dir = tempfile::tempdir().unwrap();
        let partials = PartialFiles::new(CancellationToken::new(), 2);
        let other = keep_new(&partials, dir.path(), "other", 9).await;
        let first = keep_new(&partials, dir.path(), "first", 1).await;
        let second = keep_new(&partials, dir.path(), "second", 1).await;
        let third = keep_new(&partials, dir.path(), "third", 1).await;
        assert_eq!(partials.kept_len(), 3);
        // The pushed-out file is gone rather than left for a costly re-read.
        assert!(!first.exists());
        for kept in [&other, &second, &third] {
            assert!(kept.exists());
            assert!(matches!(
                partials.claim(kept).await.unwrap(),
                Claim::Kept { .. }
            ));
        }
        assert_eq!(partials.kept_len(), 0);
    }

    #[tokio::test]
    async fn the_table_is_bounded_across_senders() {
        let dir = tempfile::tempdir().unwrap();
        let partials = PartialFiles::new(CancellationToken::new(), 4);
        let mut paths = Vec::new();
        for sender in 0..=MAX_KEPT {
            let sender = u8::try_from(sender).unwrap();
            paths.push(keep_new(&partials, dir.path(), &format!("p{sender}"), sender).await);
        }
        assert_eq!(partials.kept_len(), MAX_KEPT);
        assert!(!paths[0].exists(), "the oldest of all went");
        assert!(paths[1..].iter().all(|p| p.exists()));
    }

    #[tokio::test]
    async fn kept_files_stay_locked_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let partials = PartialFiles::new(CancellationToken::new(), 4);
        let other_network = PartialFiles::new(CancellationToken::new(), 4);
        let path = keep_new(&partials, dir.path(), "x", 1).await;
        assert!(matches!(
            other_network.claim(&path).await,
            Err(OpenError::Busy)
        ));
        partials.release_all();
        assert_eq!(partials.kept_len(), 0);
        assert!(path.exists(), "released, not deleted");
        assert!(matches!(
            other_network.claim(&path).await.unwrap(),
            Claim::Opened(_)
        ));
    }
}
