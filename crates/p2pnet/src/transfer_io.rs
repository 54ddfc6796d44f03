//! Disk side of file transfers: the protocol core's `FileSender` and
//! `FileReceiver` decide, this module reads and writes.
//!
//! * The sender hashes the file once (BLAKE3, on a blocking thread, in steps
//!   that stop when the network shuts down) before offering it, then
//!   streams it chunk by chunk: memory stays at one chunk per transfer
//!   whatever the file size.
//! * The receiver writes into `<download dir>/.p2pnet-partial/<sender>-<hash>.part`,
//!   held exclusively for the life of the transfer ([`PartialFile`]): a
//!   second offer of the same content is refused while one is running.
//!   The name depends only on who sends which content, so when the same
//!   sender offers the same file again (after a reconnect or a restart) the
//!   partial file is found and the transfer resumes at its last whole
//!   chunk: from the hashing state the network kept when the earlier
//!   transfer stopped ([`PartialFiles`]), or, the first time after a
//!   restart, by re-hashing the prefix on disk.
//! * A chunk is written at the offset it is hashed for, through the locked
//!   descriptor, and counted only once it is on disk, so the verified hash
//!   is the hash of the bytes in the file. Only a verified file is moved
//!   into the download directory, under a name that nothing had
//!   ([`placement`](crate::placement)).

use std::io::{Read, SeekFrom};
use std::path::{Path, PathBuf};

use p2pnet_proto::PeerId;
use p2pnet_proto::packet::{ContentHash, FileAccept, FileChunk, FileDone, FileName, FileOffer};
use p2pnet_proto::transfer::{FileReceiver, FileSender};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::partial_file::PartialFile;
use crate::partial_files::{Claim, PartialFiles};

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
    sender: PeerId,
    file: PartialFile,
    partials: PartialFiles,
    download_dir: PathBuf,
    pub(crate) resumed_from: u64,
    pub(crate) progress: ProgressGate,
}

impl Incoming {
    /// Claims (or resumes) the partial file for `offer` and accepts it.
    /// `partials` is the network's table of suspended transfers; the error
    /// is a reason to send the peer.
    pub(crate) async fn start(
        download_dir: &Path,
        sender: &PeerId,
        offer: FileOffer,
        max_size: u64,
        partials: &PartialFiles,
    ) -> std::result::Result<(Self, FileAccept), String> {
        let mut receiver = FileReceiver::new(offer, max_size).map_err(|err| err.to_string())?;
        let offer = receiver.offer().clone();
        let partial_dir = download_dir.join(PARTIAL_DIR);
        tokio::fs::create_dir_all(&partial_dir)
            .await
            .map_err(|err| format!("cannot create the download directory: {err}"))?;
        let part = partial_dir.join(format!("{sender}-{}.part", offer.hash));
        let claim = partials.claim(&part).await.map_err(|err| err.to_string())?;
        let (file, resumed_from) = match claim {
            Claim::Kept { file, prefix } => {
                let kept = prefix.len();
                match receiver.resume_hashed_prefix(*prefix) {
                    Ok(()) => (file, kept),
                    // Not a resume point of this offer (another chunk size):
                    // the kept state is lost, and re-reading would let a
                    // peer alternating offers cost us a read per offer.
                    Err(err) => {
                        tracing::info!(%err, part = %part.display(), "kept state does not fit the offer; starting over");
                        (file, 0)
                    }
                }
            }
            Claim::Opened(file) => {
                let on_disk = file
                    .len()
                    .await
                    .map_err(|err| format!("cannot read the partial file: {err}"))?;
                let resume = receiver.resume_offset(on_disk);
                match file
                    .absorb_prefix(receiver, resume, partials.shutdown())
                    .await
                {
                    Ok(absorbed) => {
                        receiver = absorbed;
                        (file, resume)
                    }
                    // Leave the file as it is for the next run.
                    Err(_) if partials.shutdown().is_cancelled() => {
                        return Err("the receiver is shutting down".into());
                    }
                    Err(err) => {
                        tracing::warn!(%err, part = %part.display(), "cannot resume; starting over");
                        receiver =
                            FileReceiver::new(offer, max_size).map_err(|err| err.to_string())?;
                        (file, 0)
                    }
                }
            }
        };
        file.set_len(resumed_from)
            .await
            .map_err(|err| format!("cannot truncate the partial file: {err}"))?;
        let accept = receiver.accept().map_err(|err| err.to_string())?;
        let total = receiver.offer().size;
        Ok((
            Self {
                receiver,
                sender: *sender,
                file,
                partials: partials.clone(),
                download_dir: download_dir.to_owned(),
                resumed_from,
                progress: ProgressGate::new(total, resumed_from),
            },
            accept,
        ))
    }

    /// Checks a chunk, writes it at its offset, then has the receiver hash
    /// it. Hashed only once written: if the write fails, the receiver's
    /// count (and hash) stays short of the disk, never past it, and the
    /// bytes of the failed write lie past the prefix, where a suspend cuts
    /// them off. A chunk the receiver refuses is never written.
    pub(crate) async fn write(&mut self, chunk: &FileChunk) -> std::result::Result<(), String> {
        let write = self
            .receiver
            .check_chunk(chunk)
            .map_err(|err| err.to_string())?;
        self.file
            .write_at(write.offset, chunk.data.clone())
            .await
            .map_err(|err| format!("cannot write the partial file: {err}"))?;
        self.receiver
            .handle_chunk(chunk)
            .map(drop)
            .map_err(|err| err.to_string())
    }

    /// Stops receiving and hands the partial file, still locked, and the
    /// receiver's hashing state to the network for a later resume. Every
    /// write has landed when this returns (writes are awaited one by one),
    /// so the file's length is final when the failure is reported.
    pub(crate) async fn suspend(self) {
        let Self {
            receiver,
            sender,
            file,
            partials,
            ..
        } = self;
        let prefix = receiver.into_hashed_prefix();
        // The hash state covers exactly `prefix.len()` bytes: cut anything
        // written past them, and keep nothing if the file is shorter (then
        // it changed behind our back, and the next resume re-reads it).
        match file.len().await {
            Ok(len) if len >= prefix.len() => {}
            Ok(len) => {
                tracing::warn!(len, hashed = prefix.len(), part = %file.path().display(), "partial file shorter than received");
                return;
            }
            Err(err) => {
                tracing::warn!(%err, part = %file.path().display(), "cannot read the partial file");
                return;
            }
        }
        if let Err(err) = file.set_len(prefix.len()).await {
            tracing::warn!(%err, part = %file.path().display(), "cannot truncate the partial file");
            return;
        }
        partials.keep(sender, file, prefix).await;
    }

    /// Checks the hash and moves the file into place. On a hash mismatch
    /// (or a `Done` before the end) the partial file is deleted, so a retry
    /// starts from zero.
    pub(crate) async fn finish(
        mut self,
        done: &FileDone,
    ) -> std::result::Result<(PathBuf, ContentHash), String> {
        let hash = match self.receiver.handle_done(done) {
            Ok(hash) => hash,
            Err(err) => {
                if let Err(err) = self.file.remove().await {
                    tracing::warn!(%err, "cannot delete a failed partial file");
                }
                return Err(err.to_string());
            }
        };
        // Every byte hashed went to disk at its offset through our lock;
        // a length that differs means something else changed the file.
        let size = self.receiver.offer().size;
        match self.file.len().await {
            Ok(len) if len == size => {}
            other => {
                let _ = self.file.remove().await;
                return Err(match other {
                    Ok(len) => format!("the partial file changed on disk ({len} of {size} bytes)"),
                    Err(err) => format!("cannot read the received file: {err}"),
                });
            }
        }
        self.file
            .sync_all()
            .await
            .map_err(|err| format!("cannot sync the received file: {err}"))?;
        // Still locked while it moves: no one can claim the name meanwhile.
        let target = crate::placement::move_without_replacing(
            self.file.path(),
            &self.download_dir,
            self.receiver.offer().name.as_str(),
        )
        .await
        .map_err(|err| format!("cannot move the received file into place: {err}"))?;
        Ok((target, hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p2pnet_proto::packet::TransferId;

    /// Tests that measure this process's reads, or read a lot, run one at a
    /// time so that they do not count each other's reads.
    static HEAVY_IO: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    const CHUNK: u32 = 64 * 1024;

    fn content(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u64 * 31 + u64::from(seed) * 7919) as u8 ^ (i >> 12) as u8)
            .collect()
    }

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

    /// Where the receiver keeps the partial file of `hash` from `sender`.
    fn partial_path(dir: &Path, sender: &PeerId, hash: &ContentHash) -> PathBuf {
        dir.join(PARTIAL_DIR).join(format!("{sender}-{hash}.part"))
    }

    /// One network's table of suspended transfers.
    fn network_partials() -> PartialFiles {
        PartialFiles::new(CancellationToken::new(), 4)
    }

    async fn start_incoming(
        dir: &Path,
        sender: &PeerId,
        offer: FileOffer,
        partials: &PartialFiles,
    ) -> std::result::Result<(Incoming, FileAccept), String> {
        Incoming::start(dir, sender, offer, u64::MAX, partials).await
    }

    /// Sends every chunk from `accept.resume_from` on.
    async fn receive_rest(incoming: &mut Incoming, id: u64, data: &[u8], from: u64) {
        let mut offset = from;
        while offset < data.len() as u64 {
            incoming.write(&chunk_of(id, data, offset)).await.unwrap();
            offset += u64::from(CHUNK);
        }
    }

    /// This process's bytes read so far (`rchar`: every read(2), cached
    /// or not), or `None` where /proc does not tell.
    fn bytes_read_by_process() -> Option<u64> {
        let io = std::fs::read_to_string("/proc/self/io").ok()?;
        io.lines()
            .find_map(|line| line.strip_prefix("rchar: "))?
            .trim()
            .parse()
            .ok()
    }

    #[tokio::test]
    async fn a_second_concurrent_offer_of_one_content_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (here, other_network) = (network_partials(), network_partials());
        let sender = sender_id(1);
        let data = content(4 * CHUNK as usize, 1);
        let (mut first, accept) =
            start_incoming(dir.path(), &sender, offer_of(1, "f.bin", &data), &here)
                .await
                .unwrap();
        assert_eq!(accept.resume_from, 0);
        // Same sender, same content, another transfer id: the same partial.
        match start_incoming(dir.path(), &sender, offer_of(2, "f.bin", &data), &here).await {
            Err(reason) => assert!(reason.contains("already being received"), "{reason}"),
            Ok((mut intruder, _)) => {
                // Both write one partial file: the intruder's garbage lands
                // under the first transfer, whose hash (taken from the
                // bytes it was sent) still verifies.
                first.write(&chunk_of(1, &data, 0)).await.unwrap();
                let garbage = vec![0xAA; CHUNK as usize];
                intruder.write(&chunk_of(2, &garbage, 0)).await.unwrap();
                receive_rest(&mut first, 1, &data, u64::from(CHUNK)).await;
                let (path, hash) = first.finish(&done(1)).await.unwrap();
                assert_eq!(
                    hash_on_disk(&path),
                    hash,
                    "a file reported as verified holds other bytes"
                );
                panic!("a second concurrent offer of one partial file was accepted");
            }
        }
        // Nor may another network (or process) sharing the directory write it.
        let reason = start_incoming(
            dir.path(),
            &sender,
            offer_of(2, "f.bin", &data),
            &other_network,
        )
        .await
        .unwrap_err();
        assert!(reason.contains("already being received"), "{reason}");

        receive_rest(&mut first, 1, &data, 0).await;
        let (path, hash) = first.finish(&done(1)).await.unwrap();
        assert_eq!(hash, ContentHash::of(&data));
        assert_eq!(hash_on_disk(&path), hash);
        // Once the first transfer is over, the content can be offered again.
        let (again, accept) = start_incoming(
            dir.path(),
            &sender,
            offer_of(3, "f.bin", &data),
            &other_network,
        )
        .await
        .unwrap();
        assert_eq!(accept.resume_from, 0);
        drop(again);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn offer_cancel_rounds_read_the_partial_prefix_at_most_once() {
        let _heavy = HEAVY_IO.lock().await;
        const PREFIX: usize = 8 << 20;
        const ROUNDS: u64 = 16;
        let dir = tempfile::tempdir().unwrap();
        let sender = sender_id(2);
        let data = content(PREFIX + 3 * CHUNK as usize, 2);
        // A partial file left by an earlier run of the node.
        let part = partial_path(dir.path(), &sender, &ContentHash::of(&data));
        std::fs::create_dir_all(part.parent().unwrap()).unwrap();
        std::fs::write(&part, &data[..PREFIX]).unwrap();

        let partials = network_partials();
        let Some(before) = bytes_read_by_process() else {
            return;
        };
        for round in 0..ROUNDS {
            let (incoming, accept) = start_incoming(
                dir.path(),
                &sender,
                offer_of(round, "f.bin", &data),
                &partials,
            )
            .await
            .unwrap();
            assert_eq!(accept.resume_from, PREFIX as u64, "round {round}");
            // The peer cancels; the partial file stays for a resume.
            incoming.suspend().await;
        }
        // The first offer re-reads the prefix the earlier run left (once);
        // every later one continues from the state kept at the cancel.
        let read = bytes_read_by_process().unwrap() - before;
        eprintln!("{ROUNDS} offer/cancel rounds read {read} bytes");
        assert!(
            read <= PREFIX as u64 + (PREFIX as u64) / 4,
            "{ROUNDS} offer/cancel rounds read {read} bytes for a {PREFIX}-byte prefix"
        );

        // And the resumed transfer still verifies against the bytes on disk.
        let (mut incoming, accept) =
            start_incoming(dir.path(), &sender, offer_of(99, "f.bin", &data), &partials)
                .await
                .unwrap();
        receive_rest(&mut incoming, 99, &data, accept.resume_from).await;
        let (path, hash) = incoming.finish(&done(99)).await.unwrap();
        assert_eq!(hash, ContentHash::of(&data));
        assert_eq!(hash_on_disk(&path), hash);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_completions_on_one_name_never_replace_each_other() {
        const RACERS: usize = 6;
        const ROUNDS: usize = 10;
        let dir = tempfile::tempdir().unwrap();
        let partials = network_partials();
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
                    &partials,
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
    async fn a_refused_chunk_never_reaches_the_verified_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let partials = network_partials();
        let sender = sender_id(3);
        let data = content(5 * CHUNK as usize, 3);
        let (mut incoming, _) =
            start_incoming(dir.path(), &sender, offer_of(1, "f.bin", &data), &partials)
                .await
                .unwrap();
        receive_rest(&mut incoming, 1, &data[..2 * CHUNK as usize], 0).await;
        // A chunk for the wrong offset is refused, and not written.
        let wrong = chunk_of(1, &vec![0xEE; 5 * CHUNK as usize], 3 * u64::from(CHUNK));
        assert!(incoming.write(&wrong).await.is_err());
        incoming.suspend().await;
        let part = partial_path(dir.path(), &sender, &ContentHash::of(&data));
        assert_eq!(
            std::fs::metadata(&part).unwrap().len(),
            2 * u64::from(CHUNK)
        );

        let (mut incoming, accept) =
            start_incoming(dir.path(), &sender, offer_of(2, "f.bin", &data), &partials)
                .await
                .unwrap();
        assert_eq!(accept.resume_from, 2 * u64::from(CHUNK));
        receive_rest(&mut incoming, 2, &data, accept.resume_from).await;
        let (path, hash) = incoming.finish(&done(2)).await.unwrap();
        assert_eq!(hash, ContentHash::of(&data));
        assert_eq!(hash_on_disk(&path), hash);
        assert!(!part.exists());
    }

    #[tokio::test]
    async fn a_kept_state_that_does_not_fit_the_offer_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let partials = network_partials();
        let sender = sender_id(4);
        let data = content(5 * CHUNK as usize, 4);
        let (mut incoming, _) =
            start_incoming(dir.path(), &sender, offer_of(1, "f.bin", &data), &partials)
                .await
                .unwrap();
        receive_rest(&mut incoming, 1, &data[..3 * CHUNK as usize], 0).await;
        incoming.suspend().await;
        // The same content in chunks twice as large: 3 chunks is no
        // boundary of those. Starting over costs the peer, not our disk.
        let mut offer = offer_of(2, "f.bin", &data);
        offer.chunk_size = 2 * CHUNK;
        let (incoming, accept) = start_incoming(dir.path(), &sender, offer, &partials)
            .await
            .unwrap();
        assert_eq!(accept.resume_from, 0);
        let part = partial_path(dir.path(), &sender, &ContentHash::of(&data));
        assert_eq!(std::fs::metadata(&part).unwrap().len(), 0);
        drop(incoming);
    }

    #[tokio::test]
    async fn shutdown_stops_a_cold_resume_and_keeps_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let shutdown = CancellationToken::new();
        let partials = PartialFiles::new(shutdown.clone(), 4);
        let sender = sender_id(5);
        let data = content(4 * CHUNK as usize, 5);
        let part = partial_path(dir.path(), &sender, &ContentHash::of(&data));
        std::fs::create_dir_all(part.parent().unwrap()).unwrap();
        std::fs::write(&part, &data[..3 * CHUNK as usize]).unwrap();
        shutdown.cancel();
        let reason = start_incoming(dir.path(), &sender, offer_of(1, "f.bin", &data), &partials)
            .await
            .unwrap_err();
        assert!(reason.contains("shutting down"), "{reason}");
        assert_eq!(std::fs::read(&part).unwrap(), &data[..3 * CHUNK as usize]);
    }

    #[tokio::test]
    async fn a_prepared_file_is_hashed_unless_the_network_shuts_down() {
        let _heavy = HEAVY_IO.lock().await;
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
