//! Disk side of file transfers: the protocol core's `FileSender` and
//! `FileReceiver` decide, this module reads and writes.
//!
//! * The sender hashes the file once (BLAKE3, on a blocking thread, in steps
//!   that stop when the network shuts down) before offering it, then
//!   streams it chunk by chunk: memory stays at one chunk per transfer
//!   whatever the file size.
//! * The receiver writes into `<download dir>/.p2pnet-partial/<sender>-<hash>.part`.
//!   The name depends only on who sends which content, so when the same
//!   sender offers the same file again (after a reconnect or a restart) the
//!   partial file is found, re-hashed up to its last whole chunk, and the
//!   transfer resumes there. Only a verified file is moved into the
//!   download directory, under a name that nothing had
//!   ([`placement`](crate::placement)).

use std::io::{Read, SeekFrom};
use std::path::{Path, PathBuf};

use p2pnet_proto::PeerId;
use p2pnet_proto::packet::{ContentHash, FileAccept, FileChunk, FileDone, FileName, FileOffer};
use p2pnet_proto::transfer::{FileReceiver, FileSender};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// Subdirectory of the download directory holding partial files.
pub const PARTIAL_DIR: &str = ".p2pnet-partial";

/// Progress events per transfer: at most this many, plus the last.
const PROGRESS_STEPS: u64 = 50;
const MIN_PROGRESS_STEP: u64 = 1 << 20;

/// Bytes hashed between two looks at the shutdown token.
const HASH_STEP: usize = 1 << 20;

/// A file hashed and ready to offer.
#[derive(Debug)]
pub(crate) struct PreparedFile {
    pub(crate) path: PathBuf,
    pub(crate) name: FileName,
    pub(crate) size: u64,
    pub(crate) hash: ContentHash,
    file: tokio::fs::File,
}

impl PreparedFile {
    /// Checks that `path` is a regular file with a usable name and hashes
    /// it. Hashing a large file takes a while: it stops within one step
    /// once `shutdown` fires, with [`Error::Shutdown`].
    pub(crate) async fn open(path: PathBuf, shutdown: &CancellationToken) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidFile {
            path: path.clone(),
            reason,
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| invalid("the file name is not valid UTF-8".into()))?;
        let name = FileName::new(name).map_err(|err| invalid(err.to_string()))?;
        let hash_path = path.clone();
        let shutdown = shutdown.clone();
        // The hash is taken from the very file handle the chunks will be
        // read from, so renaming another file into place changes nothing.
        let hashed = tokio::task::spawn_blocking(move || hash_file(&hash_path, &shutdown))
            .await
            .map_err(|err| invalid(format!("hashing task failed: {err}")))?
            .map_err(|err| invalid(err.to_string()))?;
        let Some((file, size, hash)) = hashed else {
            return Err(Error::Shutdown);
        };
        Ok(Self {
            path,
            name,
            size,
            hash,
            file: tokio::fs::File::from_std(file),
        })
    }
}

/// Opens and hashes the file's `len()` bytes at open time; `None` if
/// `shutdown` fired first.
fn hash_file(
    path: &Path,
    shutdown: &CancellationToken,
) -> std::io::Result<Option<(std::fs::File, u64, ContentHash)>> {
    let mut file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let size = meta.len();
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0; HASH_STEP];
    let mut left = size;
    loop {
        if shutdown.is_cancelled() {
            return Ok(None);
        }
        if left == 0 {
            break;
        }
        let take = left.min(HASH_STEP as u64) as usize;
        // The offered size and hash must describe the same bytes: a file
        // that shrinks while hashed is refused, one that grows is hashed
        // up to its size at open.
        file.read_exact(&mut buf[..take])?;
        hasher.update(&buf[..take]);
        left -= take as u64;
    }
    Ok(Some((file, size, ContentHash::from(hasher.finalize()))))
}

/// Emits progress at most every `step` bytes.
#[derive(Debug)]
pub(crate) struct ProgressGate {
    next: u64,
    step: u64,
}

impl ProgressGate {
    pub(crate) fn new(total: u64, from: u64) -> Self {
        let step = (total / PROGRESS_STEPS).max(MIN_PROGRESS_STEP);
        Self {
            next: from + step,
            step,
        }
    }

    /// Whether `transferred` crossed the next step.
    pub(crate) fn due(&mut self, transferred: u64) -> bool {
        if transferred < self.next {
            return false;
        }
        self.next = transferred + self.step;
        true
    }
}

/// One file we are sending.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) sender: FileSender,
    pub(crate) path: PathBuf,
    file: tokio::fs::File,
    position: u64,
    pub(crate) progress: ProgressGate,
}

impl Outgoing {
    pub(crate) fn new(prepared: PreparedFile, sender: FileSender) -> Self {
        Self {
            progress: ProgressGate::new(prepared.size, 0),
            sender,
            path: prepared.path,
            file: prepared.file,
            // Hashing left the cursor past the start: force a seek.
            position: u64::MAX,
        }
    }

    /// Reads the next chunk the sender wants, if any.
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<FileChunk>> {
        let Some(request) = self.sender.next_read() else {
            return Ok(None);
        };
        if self.position != request.offset {
            self.file
                .seek(SeekFrom::Start(request.offset))
                .await
                .map_err(|err| Error::io("seeking in the file being sent", err))?;
        }
        let mut data = vec![0; request.len as usize];
        self.file
            .read_exact(&mut data)
            .await
            .map_err(|err| Error::io("reading the file being sent (did it shrink?)", err))?;
        self.position = request.offset + u64::from(request.len);
        let chunk = self
            .sender
            .chunk(request.offset, data)
            .map_err(p2pnet_proto::Error::from)?;
        Ok(Some(chunk))
    }
}

/// One file we are receiving.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) receiver: FileReceiver,
    part: PathBuf,
    download_dir: PathBuf,
    file: tokio::fs::File,
    pub(crate) resumed_from: u64,
    pub(crate) progress: ProgressGate,
}

impl Incoming {
    /// Opens (or resumes) the partial file for `offer` and accepts it.
    pub(crate) async fn start(
        download_dir: &Path,
        sender: &PeerId,
        offer: FileOffer,
        max_size: u64,
    ) -> std::result::Result<(Self, FileAccept), String> {
        let mut receiver = FileReceiver::new(offer, max_size).map_err(|err| err.to_string())?;
        let partial_dir = download_dir.join(PARTIAL_DIR);
        tokio::fs::create_dir_all(&partial_dir)
            .await
            .map_err(|err| format!("cannot create the download directory: {err}"))?;
        let offer = receiver.offer();
        let part = partial_dir.join(format!("{sender}-{}.part", offer.hash));
        let mut file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&part)
            .await
            .map_err(|err| format!("cannot open the partial file: {err}"))?;
        let on_disk = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        let resume = receiver.resume_offset(on_disk);
        let absorbed = absorb_prefix(&mut file, &mut receiver, resume).await;
        let resumed_from = match absorbed {
            Ok(()) => resume,
            Err(err) => {
                tracing::warn!(%err, part = %part.display(), "cannot resume; starting over");
                receiver = FileReceiver::new(receiver.offer().clone(), max_size)
                    .map_err(|err| err.to_string())?;
                0
            }
        };
        file.set_len(resumed_from)
            .await
            .map_err(|err| format!("cannot truncate the partial file: {err}"))?;
        file.seek(SeekFrom::Start(resumed_from))
            .await
            .map_err(|err| format!("cannot seek in the partial file: {err}"))?;
        let accept = receiver.accept().map_err(|err| err.to_string())?;
        let total = receiver.offer().size;
        Ok((
            Self {
                receiver,
                part,
                download_dir: download_dir.to_owned(),
                file,
                resumed_from,
                progress: ProgressGate::new(total, resumed_from),
            },
            accept,
        ))
    }

    /// Verifies and appends a chunk.
    pub(crate) async fn write(&mut self, chunk: &FileChunk) -> std::result::Result<(), String> {
        self.receiver
            .handle_chunk(chunk)
            .map_err(|err| err.to_string())?;
        self.file
            .write_all(&chunk.data)
            .await
            .map_err(|err| format!("cannot write the partial file: {err}"))
    }

    /// Stops receiving, keeping the partial file for a later resume. Writes
    /// still in flight land before this returns, so the file's length is
    /// final when the failure is reported.
    pub(crate) async fn suspend(mut self) {
        if let Err(err) = self.file.flush().await {
            tracing::warn!(%err, part = %self.part.display(), "cannot flush the partial file");
        }
    }

    /// Checks the hash and moves the file into place. On a hash mismatch
    /// the partial file is deleted, so a retry starts from zero.
    pub(crate) async fn finish(
        mut self,
        done: &FileDone,
    ) -> std::result::Result<(PathBuf, ContentHash), String> {
        self.file
            .flush()
            .await
            .map_err(|err| format!("cannot flush the partial file: {err}"))?;
        let hash = match self.receiver.handle_done(done) {
            Ok(hash) => hash,
            Err(err) => {
                let _ = tokio::fs::remove_file(&self.part).await;
                return Err(err.to_string());
            }
        };
        self.file
            .sync_all()
            .await
            .map_err(|err| format!("cannot sync the received file: {err}"))?;
        drop(self.file);
        let target = crate::placement::move_without_replacing(
            &self.part,
            &self.download_dir,
            self.receiver.offer().name.as_str(),
        )
        .await
        .map_err(|err| format!("cannot move the received file into place: {err}"))?;
        Ok((target, hash))
    }
}

async fn absorb_prefix(
    file: &mut tokio::fs::File,
    receiver: &mut FileReceiver,
    len: u64,
) -> std::io::Result<()> {
    let mut buf = vec![0; 1 << 20];
    let mut remaining = len;
    file.seek(SeekFrom::Start(0)).await?;
    while remaining > 0 {
        let take = remaining.min(buf.len() as u64) as usize;
        file.read_exact(&mut buf[..take]).await?;
        receiver
            .absorb_existing(&buf[..take])
            .map_err(std::io::Error::other)?;
        remaining -= take as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use p2pnet_proto::packet::TransferId;

    /// Tests that measure this process's reads, or read a lot, run one at a
    /// time so that they do not count each other's reads.
    static HEAVY_IO: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    fn content(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u64 * 31 + u64::from(seed) * 7919) as u8 ^ (i >> 12) as u8)
            .collect()
    }

    const CHUNK: u32 = 64 * 1024;

    fn sender_id(n: u8) -> PeerId {
        PeerId::from_bytes([n; 32])
    }

    fn offer_of(id: u64, name: &str, data: &[u8]) -> FileOffer {
        FileOffer {
            transfer_id: TransferId(id),
            name: FileName::new(name).unwrap(),
            size: data.len() as u64,
            chunk_size: CHUNK,
            hash: ContentHash::of(data),
        }
    }

    fn chunk_of(id: u64, data: &[u8], offset: u64) -> FileChunk {
        let start = offset as usize;
        let end = (start + CHUNK as usize).min(data.len());
        FileChunk {
            transfer_id: TransferId(id),
            offset,
            data: data[start..end].to_vec(),
        }
    }

    fn done(id: u64) -> FileDone {
        FileDone {
            transfer_id: TransferId(id),
        }
    }

    fn hash_on_disk(path: &Path) -> ContentHash {
        ContentHash::of(&std::fs::read(path).unwrap())
    }

    async fn start_incoming(
        dir: &Path,
        sender: &PeerId,
        offer: FileOffer,
    ) -> std::result::Result<(Incoming, FileAccept), String> {
        Incoming::start(dir, sender, offer, u64::MAX).await
    }

    /// Sends every chunk from `accept.resume_from` on.
    async fn receive_rest(incoming: &mut Incoming, id: u64, data: &[u8], from: u64) {
        let mut offset = from;
        while offset < data.len() as u64 {
            incoming.write(&chunk_of(id, data, offset)).await.unwrap();
            offset += u64::from(CHUNK);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_completions_on_one_name_never_replace_each_other() {
        const RACERS: usize = 6;
        const ROUNDS: usize = 10;
        let dir = tempfile::tempdir().unwrap();
        for round in 0..ROUNDS {
            let name = format!("same-{round}.txt");
            let mut ready = Vec::new();
            for racer in 0..RACERS {
                let data = content(1000 + racer, (round * RACERS + racer) as u8);
                let id = racer as u64;
                let (mut incoming, _) = start_incoming(
                    dir.path(),
                    &sender_id(racer as u8),
                    offer_of(id, &name, &data),
                )
                .await
                .unwrap();
                receive_rest(&mut incoming, id, &data, 0).await;
                ready.push((incoming, id));
            }
            let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
            let tasks: Vec<_> = ready
                .into_iter()
                .map(|(incoming, id)| {
                    let barrier = barrier.clone();
                    tokio::spawn(async move {
                        barrier.wait().await;
                        incoming.finish(&done(id)).await
                    })
                })
                .collect();
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await.unwrap().unwrap());
            }
            let mut placed = std::collections::HashSet::new();
            for (path, hash) in results {
                assert_eq!(
                    hash_on_disk(&path),
                    hash,
                    "round {round}: {} was replaced by another transfer",
                    path.display()
                );
                assert!(
                    placed.insert(path),
                    "round {round}: two transfers share a name"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_prepared_file_is_hashed_unless_the_network_shuts_down() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small.bin");
        let data = content(3 * HASH_STEP + 17, 6);
        std::fs::write(&path, &data).unwrap();
        let shutdown = CancellationToken::new();
        let prepared = PreparedFile::open(path.clone(), &shutdown).await.unwrap();
        assert_eq!(prepared.hash, ContentHash::of(&data));
        assert_eq!(prepared.size, data.len() as u64);
        shutdown.cancel();
        assert!(matches!(
            PreparedFile::open(path, &shutdown).await,
            Err(Error::Shutdown)
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_a_large_file_stops_soon_after_shutdown() {
        let _heavy = HEAVY_IO.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse.bin");
        // 16 GiB of holes: quick to make, long to hash in full.
        std::fs::File::create(&path)
            .unwrap()
            .set_len(16 << 30)
            .unwrap();
        let shutdown = CancellationToken::new();
        let hashing = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { PreparedFile::open(path, &shutdown).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!hashing.is_finished(), "16 GiB hashed in 100 ms");
        let cancelled = std::time::Instant::now();
        shutdown.cancel();
        // The blocking thread itself has stopped when this returns: `open`
        // waits for it.
        let outcome = hashing.await.unwrap();
        let took = cancelled.elapsed();
        assert!(matches!(outcome, Err(Error::Shutdown)), "{outcome:?}");
        assert!(
            took < std::time::Duration::from_secs(1),
            "hashing went on for {took:?}"
        );
    }

    #[test]
    fn progress_gate_fires_once_per_step() {
        let mut gate = ProgressGate::new(100 << 20, 0);
        let step = (100u64 << 20) / PROGRESS_STEPS;
        assert!(!gate.due(step - 1));
        assert!(gate.due(step));
        assert!(!gate.due(step + 1));
        assert!(gate.due(2 * step + 10));
    }
}
