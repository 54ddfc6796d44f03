//! One partial file, held exclusively by the transfer writing it.
//!
//! Two offers of one content from one sender map to one partial file. If
//! both wrote it, a peer could write garbage through one transfer while the
//! other, hashing the bytes it was sent, still verified. So a partial file
//! is opened and `flock`ed (exclusive, non-blocking) before anything reads
//! or writes it, and every write goes through that locked descriptor. The
//! lock is per open file, so it also keeps out a second network or process
//! sharing the download directory; a second claimant is refused
//! ([`OpenError::Busy`]) rather than made to wait.
//!
//! In-flight blocking IO shares the descriptor (an `Arc`), so a transfer
//! dropped mid-write keeps the file locked until that write has landed.
//! Reads and writes are positional: the offset written is the offset hashed.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use p2pnet_proto::transfer::FileReceiver;
use tokio_util::sync::CancellationToken;

/// Bytes read per step when re-hashing a prefix from disk; shutdown is
/// checked between steps.
const READ_STEP: usize = 1 << 20;

/// Opening attempts when the path keeps naming a file other than the one
/// just locked (it was finished or discarded meanwhile).
const OPEN_ATTEMPTS: usize = 3;

/// Why a partial file cannot be claimed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    /// Another transfer (here, in another network or another process)
    /// holds the file. The wording is sent to the peer: no local path.
    #[error("the same file is already being received from this peer")]
    Busy,
    /// The file cannot be opened or locked.
    #[error("cannot open the partial file: {0}")]
    Io(#[from] io::Error),
}

/// A partial file, open and exclusively locked until dropped.
#[derive(Debug)]
pub(crate) struct PartialFile {
    path: PathBuf,
    file: Arc<Flock<File>>,
}

impl PartialFile {
    /// Opens (creating it if needed) and locks the partial file at `path`.
    pub(crate) async fn open(path: PathBuf) -> Result<Self, OpenError> {
        tokio::task::spawn_blocking(move || open_locked(path))
            .await
            .map_err(|err| OpenError::Io(io::Error::other(err)))?
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes in the file.
    pub(crate) async fn len(&self) -> io::Result<u64> {
        self.blocking(|file| Ok(file.metadata()?.len())).await
    }

    pub(crate) async fn set_len(&self, len: u64) -> io::Result<()> {
        self.blocking(move |file| file.set_len(len)).await
    }

    pub(crate) async fn write_at(&self, offset: u64, data: Vec<u8>) -> io::Result<()> {
        self.blocking(move |file| file.write_all_at(&data, offset))
            .await
    }

    pub(crate) async fn sync_all(&self) -> io::Result<()> {
        self.blocking(File::sync_all).await
    }

    /// Feeds the file's first `len` bytes to `receiver` (a cold resume),
    /// stopping between steps if `cancel` fires (then the error's kind is
    /// `Interrupted`). Returns the receiver, which the work borrowed.
    pub(crate) async fn absorb_prefix(
        &self,
        mut receiver: FileReceiver,
        len: u64,
        cancel: &CancellationToken,
    ) -> io::Result<FileReceiver> {
        let cancel = cancel.clone();
        self.blocking(move |file| {
            let mut buf = vec![0; READ_STEP];
            let mut offset = 0;
            while offset < len {
                if cancel.is_cancelled() {
                    return Err(io::Error::new(
                        io::ErrorKind::Interrupted,
                        "the network is shutting down",
                    ));
                }
                let take = (len - offset).min(READ_STEP as u64) as usize;
                file.read_exact_at(&mut buf[..take], offset)?;
                receiver
                    .absorb_existing(&buf[..take])
                    .map_err(io::Error::other)?;
                offset += take as u64;
            }
            Ok(receiver)
        })
        .await
    }

    /// Deletes the file, then releases the lock: whoever opens the path
    /// next gets a new, empty file.
    pub(crate) async fn remove(self) -> io::Result<()> {
        tokio::fs::remove_file(&self.path).await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&File) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || work(&file))
            .await
            .map_err(io::Error::other)?
    }
}

fn open_locked(path: PathBuf) -> Result<PartialFile, OpenError> {
    for _ in 0..OPEN_ATTEMPTS {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        if let Some(locked) = lock_if_still_named(file, &path)? {
            return Ok(PartialFile {
                path,
                file: Arc::new(locked),
            });
        }
    }
    Err(OpenError::Io(io::Error::other(
        "the partial file keeps being replaced",
    )))
}

/// Locks `file`, opened from `path`, if `path` still names it. A holder
/// may have finished (moved the file away) or discarded it between our
/// open and our lock: then the lock would guard a file nobody will look
/// for again, and `None` says to open `path` anew.
fn lock_if_still_named(file: File, path: &Path) -> Result<Option<Flock<File>>, OpenError> {
    let locked = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => locked,
        Err((_, Errno::EWOULDBLOCK)) => return Err(OpenError::Busy),
        Err((_, errno)) => return Err(OpenError::Io(errno.into())),
    };
    let held = locked.metadata()?;
    match std::fs::symlink_metadata(path) {
        Ok(named) if named.dev() == held.dev() && named.ino() == held.ino() => Ok(Some(locked)),
        Ok(_) => Ok(None),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_claim_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.part");
        let first = PartialFile::open(path.clone()).await.unwrap();
        first.write_at(0, b"abc".to_vec()).await.unwrap();
        assert!(matches!(
            PartialFile::open(path.clone()).await,
            Err(OpenError::Busy)
        ));
        drop(first);
        let second = PartialFile::open(path.clone()).await.unwrap();
        assert_eq!(second.len().await.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_file_removed_before_its_lock_is_given_up_for_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.part");
        let first = PartialFile::open(path.clone()).await.unwrap();
        first.write_at(0, b"old".to_vec()).await.unwrap();
        // Opened, not yet locked, while the first holder still has it...
        let stale = File::open(&path).unwrap();
        // ...which then finishes and lets go.
        first.remove().await.unwrap();
        assert!(lock_if_still_named(stale, &path).unwrap().is_none());
        std::fs::write(&path, b"new!").unwrap();
        let stale = File::open(dir.path()).unwrap();
        assert!(lock_if_still_named(stale, &path).unwrap().is_none());
        let next = PartialFile::open(path).await.unwrap();
        assert_eq!(next.len().await.unwrap(), 4);
    }
}
