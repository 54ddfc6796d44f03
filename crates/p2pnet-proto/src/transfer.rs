//! Sans-IO bookkeeping for resumable file transfers.
//!
//! The wire messages are [`FileMessage`](crate::packet::FileMessage)s inside
//! [`DataTransmission::File`](crate::packet::DataTransmission::File). This
//! module holds the state on each side; the runtime does the disk IO.
//!
//! ```text
//! sender                                   receiver
//!   FileSender::new ── Offer ──────────────►  FileReceiver::new (size limit)
//!                                             resume_offset(bytes on disk)
//!                                             absorb_existing(prefix)   (re-hash)
//!   handle_accept ◄──────────────── Accept ── accept()
//!   next_read → read disk → chunk() ─ Chunk ► handle_chunk → write at offset
//!   ...                                       ...
//!   done() ──────────────────────────── Done ► handle_done → hash verified,
//!                                               runtime renames temp file
//! ```
//!
//! * Chunks travel strictly in order; every chunk but the last is exactly
//!   `chunk_size` bytes. Any other offset or length is a protocol error.
//! * The receiver hashes incrementally with BLAKE3 as chunks arrive, and
//!   compares with the offered hash on `Done`.
//! * **Resume.** BLAKE3's hasher state cannot be persisted, so on resume the
//!   receiver *re-hashes* the prefix already on disk: the runtime keeps the
//!   partial temp file, truncates it to
//!   [`FileReceiver::resume_offset`] (the bytes on disk rounded down to a
//!   chunk boundary), feeds that prefix to
//!   [`FileReceiver::absorb_existing`], and accepts with
//!   `resume_from` = that offset. Re-reading costs one sequential read of the
//!   prefix but means the verified hash always covers the bytes actually on
//!   disk. If the prefix came from different content, `Done` reports a hash
//!   mismatch and the runtime restarts from zero.
//! * **Resume from memory.** A receiver that stops early can be turned into
//!   a [`HashedPrefix`] (the hasher state and the length it covers), which
//!   a later receiver of the same content continues from with
//!   [`FileReceiver::resume_hashed_prefix`] instead of re-reading its
//!   prefix. The runtime keeps one only while nothing else can write the
//!   partial file, so it still describes the bytes on disk.

use crate::error::{Error, TransferError};
use crate::packet::{
    ContentHash, FileAccept, FileCancel, FileChunk, FileDone, FileName, FileOffer, FileReject,
    MAX_CHUNK_SIZE, MAX_REASON_LEN, TransferId,
};

/// Bytes a [`FileChunk`] frame needs besides its data (variant tags,
/// transfer id, offset and length varints), rounded up.
pub const CHUNK_FRAME_OVERHEAD: u32 = 64;

/// The largest chunk size whose chunks fit in frames of `max_frame_size`
/// (use the peer's [`Hello::max_frame_size`](crate::Hello::max_frame_size)).
pub fn max_chunk_size_for_frame(max_frame_size: u32) -> u32 {
    max_frame_size
        .saturating_sub(CHUNK_FRAME_OVERHEAD)
        .clamp(1, MAX_CHUNK_SIZE)
}

/// Bytes moved so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes sent (sender) or received and hashed in order (receiver),
    /// including a resumed prefix.
    pub transferred: u64,
    /// The file size.
    pub total: u64,
}

impl Progress {
    /// `transferred / total` in `[0, 1]`; an empty file is complete.
    pub fn fraction(self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.transferred as f64 / self.total as f64
        }
    }
}

/// A range the sender must read from disk next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRequest {
    /// Offset in the file.
    pub offset: u64,
    /// Bytes to read.
    pub len: u32,
}

/// A range the receiver must write to its temp file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkWrite {
    /// Offset in the file.
    pub offset: u64,
    /// Bytes to write (the chunk's data).
    pub len: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SenderState {
    Offered,
    Sending { next: u64 },
    Finished,
    Rejected,
    Cancelled,
}

impl SenderState {
    const fn name(self) -> &'static str {
        match self {
            Self::Offered => "offered",
            Self::Sending { .. } => "sending",
            Self::Finished => "finished",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
        }
    }
}

/// The sending side of one transfer.
#[derive(Debug, Clone)]
pub struct FileSender {
    offer: FileOffer,
    state: SenderState,
}

impl FileSender {
    /// Prepares an offer. `hash` is the BLAKE3 hash of the whole file, which
    /// the runtime computes while reading it once.
    pub fn new(
        transfer_id: TransferId,
        name: FileName,
        size: u64,
        chunk_size: u32,
        hash: ContentHash,
    ) -> Result<Self, Error> {
        if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
            return Err(TransferError::InvalidChunkSize(chunk_size).into());
        }
        Ok(Self {
            offer: FileOffer {
                transfer_id,
                name,
                size,
                chunk_size,
                hash,
            },
            state: SenderState::Offered,
        })
    }

    /// The offer to send.
    pub fn offer(&self) -> &FileOffer {
        &self.offer
    }

    /// Handles the receiver's acceptance.
    pub fn handle_accept(&mut self, accept: &FileAccept) -> Result<(), TransferError> {
        self.check_id(accept.transfer_id)?;
        if self.state != SenderState::Offered {
            return Err(self.invalid("accept"));
        }
        let FileOffer {
            size, chunk_size, ..
        } = self.offer;
        let offset = accept.resume_from;
        if offset > size || (!offset.is_multiple_of(u64::from(chunk_size)) && offset != size) {
            return Err(TransferError::InvalidResume { offset, size });
        }
        self.state = SenderState::Sending { next: offset };
        Ok(())
    }

    /// Handles the receiver's rejection.
    pub fn handle_reject(&mut self, reject: &FileReject) -> Result<(), TransferError> {
        self.check_id(reject.transfer_id)?;
        if self.state != SenderState::Offered {
            return Err(self.invalid("reject"));
        }
        self.state = SenderState::Rejected;
        Ok(())
    }

    /// Handles a cancel from the receiver.
    pub fn handle_cancel(&mut self, cancel: &FileCancel) -> Result<(), TransferError> {
        self.check_id(cancel.transfer_id)?;
        self.state = SenderState::Cancelled;
        Ok(())
    }

    /// What to read from disk next, or `None` if nothing is due (not yet
    /// accepted, or every chunk produced: then send [`done`](Self::done)).
    pub fn next_read(&self) -> Option<ChunkRequest> {
        let SenderState::Sending { next } = self.state else {
            return None;
        };
        let remaining = self.offer.size - next;
        if remaining == 0 {
            return None;
        }
        let len = remaining.min(u64::from(self.offer.chunk_size));
        // `len <= chunk_size`, a u32.
        let len = u32::try_from(len).unwrap_or(self.offer.chunk_size);
        Some(ChunkRequest { offset: next, len })
    }

    /// Wraps the bytes read for the current [`ChunkRequest`] into a chunk
    /// message. `data` must be exactly the requested range; a short read
    /// means the file changed, and the transfer should be cancelled.
    pub fn chunk(&mut self, offset: u64, data: Vec<u8>) -> Result<FileChunk, TransferError> {
        let Some(request) = self.next_read() else {
            return Err(self.invalid("chunk"));
        };
        if offset != request.offset {
            return Err(TransferError::WrongOffset {
                expected: request.offset,
                got: offset,
            });
        }
        if data.len() as u64 != u64::from(request.len) {
            return Err(TransferError::WrongChunkLength {
                expected: u64::from(request.len),
                got: data.len() as u64,
            });
        }
        self.state = SenderState::Sending {
            next: offset + u64::from(request.len),
        };
        Ok(FileChunk {
            transfer_id: self.offer.transfer_id,
            offset,
            data,
        })
    }

    /// The final message, once every chunk has been produced.
    pub fn done(&mut self) -> Result<FileDone, TransferError> {
        match self.state {
            SenderState::Sending { next } if next == self.offer.size => {
                self.state = SenderState::Finished;
                Ok(FileDone {
                    transfer_id: self.offer.transfer_id,
                })
            }
            _ => Err(self.invalid("done")),
        }
    }

    /// Abandons the transfer; send the returned message.
    pub fn cancel(&mut self, reason: Option<String>) -> FileCancel {
        self.state = SenderState::Cancelled;
        FileCancel {
            transfer_id: self.offer.transfer_id,
            reason: reason.map(bounded_reason),
        }
    }

    /// Bytes handed out so far.
    pub fn progress(&self) -> Progress {
        let transferred = match self.state {
            SenderState::Sending { next } => next,
            SenderState::Finished => self.offer.size,
            _ => 0,
        };
        Progress {
            transferred,
            total: self.offer.size,
        }
    }

    /// Whether [`done`](Self::done) has been produced.
    pub fn is_finished(&self) -> bool {
        self.state == SenderState::Finished
    }

    fn check_id(&self, got: TransferId) -> Result<(), TransferError> {
        if got != self.offer.transfer_id {
            return Err(TransferError::WrongTransfer {
                expected: self.offer.transfer_id.0,
                got: got.0,
            });
        }
        Ok(())
    }

    fn invalid(&self, operation: &'static str) -> TransferError {
        TransferError::InvalidState {
            operation,
            state: self.state.name(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReceiverState {
    Offered,
    Receiving,
    Complete,
    Rejected,
    Cancelled,
    Failed,
}

impl ReceiverState {
    const fn name(self) -> &'static str {
        match self {
            Self::Offered => "offered",
            Self::Receiving => "receiving",
            Self::Complete => "complete",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }
}

/// What a receiver took in before it stopped: the length of the prefix it
/// received (or absorbed) in order, and the BLAKE3 state over it. Bytes of
/// a refused chunk are never part of it.
#[derive(Debug, Clone)]
pub struct HashedPrefix {
    /// The content hash the bytes were received towards.
    target: ContentHash,
    hasher: blake3::Hasher,
    len: u64,
}

impl HashedPrefix {
    /// Bytes covered.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no byte is covered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The content hash of the offer the bytes belong to.
    pub fn target(&self) -> ContentHash {
        self.target
    }
}

/// The receiving side of one transfer.
#[derive(Debug, Clone)]
pub struct FileReceiver {
    offer: FileOffer,
    state: ReceiverState,
    hasher: blake3::Hasher,
    /// Bytes received (or absorbed) and hashed, in order.
    received: u64,
}

impl FileReceiver {
    /// Evaluates an offer against the local size limit.
    pub fn new(offer: FileOffer, max_size: u64) -> Result<Self, TransferError> {
        if offer.size > max_size {
            return Err(TransferError::TooLarge {
                size: offer.size,
                limit: max_size,
            });
        }
        if offer.chunk_size == 0 || offer.chunk_size > MAX_CHUNK_SIZE {
            return Err(TransferError::InvalidChunkSize(offer.chunk_size));
        }
        Ok(Self {
            offer,
            state: ReceiverState::Offered,
            hasher: blake3::Hasher::new(),
            received: 0,
        })
    }

    /// The offer.
    pub fn offer(&self) -> &FileOffer {
        &self.offer
    }

    /// Where to resume given `bytes_on_disk` of a previous attempt: that
    /// amount capped at the file size and rounded down to a chunk boundary
    /// (a complete file stays complete). Truncate the temp file to this.
    pub fn resume_offset(&self, bytes_on_disk: u64) -> u64 {
        let size = self.offer.size;
        if bytes_on_disk >= size {
            return size;
        }
        let chunk = u64::from(self.offer.chunk_size);
        bytes_on_disk - bytes_on_disk % chunk
    }

    /// Feeds bytes of the on-disk prefix, in order, before
    /// [`accept`](Self::accept).
    pub fn absorb_existing(&mut self, data: &[u8]) -> Result<(), TransferError> {
        if self.state != ReceiverState::Offered {
            return Err(self.invalid("absorb_existing"));
        }
        let end = self.received + data.len() as u64;
        if end > self.offer.size {
            return Err(TransferError::InvalidResume {
                offset: end,
                size: self.offer.size,
            });
        }
        self.hasher.update(data);
        self.received = end;
        Ok(())
    }

    /// Before [`accept`](Self::accept), in place of
    /// [`absorb_existing`](Self::absorb_existing): continues from a prefix
    /// an earlier receiver of the same content hashed. Refused, leaving this
    /// receiver as it was, if bytes were absorbed already, if the prefix
    /// belongs to other content, or if its length is not a resume point of
    /// this offer (past the end, or off its chunk boundaries: an offer with
    /// another chunk size).
    pub fn resume_hashed_prefix(&mut self, prefix: HashedPrefix) -> Result<(), TransferError> {
        if self.state != ReceiverState::Offered {
            return Err(self.invalid("resume_hashed_prefix"));
        }
        if self.received != 0 {
            return Err(TransferError::InvalidState {
                operation: "resume_hashed_prefix",
                state: "absorbing a prefix from disk",
            });
        }
        if prefix.target != self.offer.hash {
            return Err(TransferError::ForeignPrefix {
                offered: self.offer.hash,
                kept: prefix.target,
            });
        }
        let expected = self.resume_offset(prefix.len);
        if expected != prefix.len {
            return Err(TransferError::ResumePrefixMismatch {
                absorbed: prefix.len,
                expected,
            });
        }
        self.hasher = prefix.hasher;
        self.received = prefix.len;
        Ok(())
    }

    /// Ends this receiver, keeping the prefix it hashed for a later
    /// receiver of the same content (see
    /// [`resume_hashed_prefix`](Self::resume_hashed_prefix)).
    pub fn into_hashed_prefix(self) -> HashedPrefix {
        HashedPrefix {
            target: self.offer.hash,
            hasher: self.hasher,
            len: self.received,
        }
    }

    /// Accepts the offer, resuming after whatever was absorbed.
    pub fn accept(&mut self) -> Result<FileAccept, TransferError> {
        if self.state != ReceiverState::Offered {
            return Err(self.invalid("accept"));
        }
        let expected = self.resume_offset(self.received);
        if expected != self.received {
            return Err(TransferError::ResumePrefixMismatch {
                absorbed: self.received,
                expected,
            });
        }
        self.state = ReceiverState::Receiving;
        Ok(FileAccept {
            transfer_id: self.offer.transfer_id,
            resume_from: self.received,
        })
    }

    /// Declines the offer; send the returned message.
    pub fn reject(&mut self, reason: impl Into<String>) -> FileReject {
        self.state = ReceiverState::Rejected;
        FileReject {
            transfer_id: self.offer.transfer_id,
            reason: bounded_reason(reason.into()),
        }
    }

    /// Checks a chunk and hashes it; the runtime then writes `chunk.data` at
    /// the returned offset. Any error leaves the transfer failed.
    pub fn handle_chunk(&mut self, chunk: &FileChunk) -> Result<ChunkWrite, TransferError> {
        let result = self.check_chunk(chunk);
        match result {
            Ok(_) => self.take_chunk(chunk),
            Err(_) if self.state == ReceiverState::Receiving => self.state = ReceiverState::Failed,
            Err(_) => {}
        }
        result
    }

    /// Checks a chunk as [`handle_chunk`](Self::handle_chunk) would,
    /// changing nothing: a runtime that writes before it hands the chunk
    /// over (so that the hash never covers bytes that failed to reach the
    /// disk) never writes a chunk that will be refused.
    pub fn check_chunk(&self, chunk: &FileChunk) -> Result<ChunkWrite, TransferError> {
        if self.state != ReceiverState::Receiving {
            return Err(self.invalid("chunk"));
        }
        self.check_id(chunk.transfer_id)?;
        if chunk.offset != self.received {
            return Err(TransferError::WrongOffset {
                expected: self.received,
                got: chunk.offset,
            });
        }
        let expected = (self.offer.size - self.received).min(u64::from(self.offer.chunk_size));
        let got = chunk.data.len() as u64;
        if got != expected || got == 0 {
            return Err(TransferError::WrongChunkLength { expected, got });
        }
        // `got <= chunk_size`, a u32.
        let len = u32::try_from(got).unwrap_or(u32::MAX);
        Ok(ChunkWrite {
            offset: chunk.offset,
            len,
        })
    }

    /// Handles the sender's `Done`: checks completeness and the hash. On
    /// success the runtime moves the temp file into place.
    pub fn handle_done(&mut self, done: &FileDone) -> Result<ContentHash, TransferError> {
        self.check_id(done.transfer_id)?;
        if self.state != ReceiverState::Receiving {
            return Err(self.invalid("done"));
        }
        self.state = ReceiverState::Failed;
        if self.received != self.offer.size {
            return Err(TransferError::Incomplete {
                received: self.received,
                size: self.offer.size,
            });
        }
        let actual = ContentHash::from(self.hasher.finalize());
        if actual != self.offer.hash {
            return Err(TransferError::HashMismatch {
                expected: self.offer.hash,
                actual,
            });
        }
        self.state = ReceiverState::Complete;
        Ok(actual)
    }

    /// Handles a cancel from the sender.
    pub fn handle_cancel(&mut self, cancel: &FileCancel) -> Result<(), TransferError> {
        self.check_id(cancel.transfer_id)?;
        self.state = ReceiverState::Cancelled;
        Ok(())
    }

    /// Abandons the transfer; send the returned message.
    pub fn cancel(&mut self, reason: Option<String>) -> FileCancel {
        self.state = ReceiverState::Cancelled;
        FileCancel {
            transfer_id: self.offer.transfer_id,
            reason: reason.map(bounded_reason),
        }
    }

    /// Bytes received in order so far, including a resumed prefix.
    pub fn progress(&self) -> Progress {
        Progress {
            transferred: self.received,
            total: self.offer.size,
        }
    }

    /// Whether the content was received and verified.
    pub fn is_complete(&self) -> bool {
        self.state == ReceiverState::Complete
    }

    /// Hashes a chunk [`check_chunk`](Self::check_chunk) accepted.
    fn take_chunk(&mut self, chunk: &FileChunk) {
        self.hasher.update(&chunk.data);
        self.received += chunk.data.len() as u64;
    }

    fn check_id(&self, got: TransferId) -> Result<(), TransferError> {
        if got != self.offer.transfer_id {
            return Err(TransferError::WrongTransfer {
                expected: self.offer.transfer_id.0,
                got: got.0,
            });
        }
        Ok(())
    }

    fn invalid(&self, operation: &'static str) -> TransferError {
        TransferError::InvalidState {
            operation,
            state: self.state.name(),
        }
    }
}

fn bounded_reason(mut reason: String) -> String {
    if reason.len() > MAX_REASON_LEN {
        let mut end = MAX_REASON_LEN;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{DEFAULT_MAX_FRAME_SIZE, MIN_MAX_FRAME_SIZE, encode_frame};
    use crate::packet::{DataTransmission, FileMessage, Packet};

    fn content(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn sender(data: &[u8], chunk: u32) -> FileSender {
        FileSender::new(
            TransferId(1),
            FileName::new("f.bin").unwrap(),
            data.len() as u64,
            chunk,
            ContentHash::of(data),
        )
        .unwrap()
    }

    /// Runs the sender against the receiver over an in-memory "disk"; the
    /// receiver's file starts as `on_disk`.
    fn transfer(
        data: &[u8],
        chunk: u32,
        on_disk: &[u8],
    ) -> (Result<ContentHash, TransferError>, Vec<u8>, usize) {
        let mut tx = sender(data, chunk);
        let mut rx = FileReceiver::new(tx.offer().clone(), 1 << 30).unwrap();
        let resume = rx.resume_offset(on_disk.len() as u64) as usize;
        let mut file = on_disk[..resume].to_vec();
        for piece in file.chunks(7) {
            rx.absorb_existing(piece).unwrap();
        }
        let accept = rx.accept().unwrap();
        assert_eq!(accept.resume_from, resume as u64);
        tx.handle_accept(&accept).unwrap();
        let mut chunks = 0;
        while let Some(req) = tx.next_read() {
            let range = req.offset as usize..req.offset as usize + req.len as usize;
            let msg = tx.chunk(req.offset, data[range].to_vec()).unwrap();
            let write = rx.handle_chunk(&msg).unwrap();
            assert_eq!(write.offset as usize, file.len());
            file.extend_from_slice(&msg.data);
            chunks += 1;
            assert_eq!(tx.progress().transferred, rx.progress().transferred);
        }
        let done = tx.done().unwrap();
        (rx.handle_done(&done), file, chunks)
    }

    #[test]
    fn multi_chunk_transfer_verifies_hash() {
        let data = content(10_000);
        let (result, file, chunks) = transfer(&data, 1024, &[]);
        assert_eq!(result.unwrap(), ContentHash::of(&data));
        assert_eq!(file, data);
        assert_eq!(chunks, 10); // 9 full chunks + 784 bytes
    }

    #[test]
    fn resume_from_midpoint_gives_the_same_hash() {
        let data = content(10_000);
        // 4500 bytes on disk: rounded down to 4096, 6 chunks remain.
        let (result, file, chunks) = transfer(&data, 1024, &data[..4500]);
        assert_eq!(result.unwrap(), ContentHash::of(&data));
        assert_eq!(file, data);
        assert_eq!(chunks, 6);
    }

    #[test]
    fn resume_with_complete_file_sends_nothing() {
        let data = content(3000);
        let (result, _, chunks) = transfer(&data, 1000, &data);
        assert_eq!(result.unwrap(), ContentHash::of(&data));
        assert_eq!(chunks, 0);
    }

    #[test]
    fn empty_file() {
        let (result, file, chunks) = transfer(&[], 1024, &[]);
        assert_eq!(result.unwrap(), ContentHash::of(&[]));
        assert!(file.is_empty());
        assert_eq!(chunks, 0);
    }

    #[test]
    fn stale_prefix_on_disk_is_a_hash_mismatch() {
        let data = content(5000);
        let mut stale = data[..2048].to_vec();
        stale[100] ^= 0xff;
        let (result, _, _) = transfer(&data, 1024, &stale);
        assert!(matches!(result, Err(TransferError::HashMismatch { .. })));
    }

    #[test]
    fn tampered_chunk_is_a_hash_mismatch() {
        let data = content(4096);
        let mut tx = sender(&data, 1024);
        let mut rx = FileReceiver::new(tx.offer().clone(), u64::MAX).unwrap();
        tx.handle_accept(&rx.accept().unwrap()).unwrap();
        while let Some(req) = tx.next_read() {
            let mut msg = tx
                .chunk(
                    req.offset,
                    data[req.offset as usize..][..req.len as usize].to_vec(),
                )
                .unwrap();
            if req.offset == 2048 {
                msg.data[5] ^= 1;
            }
            rx.handle_chunk(&msg).unwrap();
        }
        let err = rx.handle_done(&tx.done().unwrap()).unwrap_err();
        assert_eq!(
            err,
            TransferError::HashMismatch {
                expected: ContentHash::of(&data),
                actual: ContentHash::of(&{
                    let mut d = data.clone();
                    d[2048 + 5] ^= 1;
                    d
                }),
            }
        );
        assert!(!rx.is_complete());
    }

    #[test]
    fn wrong_offset_and_length_are_rejected() {
        let data = content(3000);
        let tx = sender(&data, 1000);
        let mut rx = FileReceiver::new(tx.offer().clone(), u64::MAX).unwrap();
        rx.accept().unwrap();
        let skip = FileChunk {
            transfer_id: TransferId(1),
            offset: 1000,
            data: data[1000..2000].to_vec(),
        };
        assert_eq!(
            rx.handle_chunk(&skip),
            Err(TransferError::WrongOffset {
                expected: 0,
                got: 1000
            })
        );
        // The transfer is dead after a protocol error.
        let first = FileChunk {
            transfer_id: TransferId(1),
            offset: 0,
            data: data[..1000].to_vec(),
        };
        assert!(matches!(
            rx.handle_chunk(&first),
            Err(TransferError::InvalidState { .. })
        ));

        let mut rx = FileReceiver::new(tx.offer().clone(), u64::MAX).unwrap();
        rx.accept().unwrap();
        let short = FileChunk {
            transfer_id: TransferId(1),
            offset: 0,
            data: data[..999].to_vec(),
        };
        assert_eq!(
            rx.handle_chunk(&short),
            Err(TransferError::WrongChunkLength {
                expected: 1000,
                got: 999
            })
        );

        let mut rx = FileReceiver::new(tx.offer().clone(), u64::MAX).unwrap();
        rx.accept().unwrap();
        let other = FileChunk {
            transfer_id: TransferId(2),
            offset: 0,
            data: data[..1000].to_vec(),
        };
        assert_eq!(
            rx.handle_chunk(&other),
            Err(TransferError::WrongTransfer {
                expected: 1,
                got: 2
            })
        );
    }

    #[test]
    fn replayed_chunk_is_rejected() {
        let data = content(3000);
        let mut tx = sender(&data, 1000);
        let mut rx = FileReceiver::new(tx.offer().clone(), u64::MAX).unwrap();
        tx.handle_accept(&rx.accept().unwrap()).unwrap();
        let c = tx.chunk(0, data[..1000].to_vec()).unwrap();
        rx.handle_chunk(&c).unwrap();
        assert_eq!(
            rx.handle_chunk(&c),
            Err(TransferError::WrongOffset {
                expected: 1000,
                got: 0
            })
        );
    }

    #[test]
    fn done_before_all_bytes_is_incomplete() {
        let data = content(3000);
        let mut tx = sender(&data, 1000);
        let mut rx = FileReceiver::new(tx.offer().clone(), u64::MAX).unwrap();
        tx.handle_accept(&rx.accept().unwrap()).unwrap();
        rx.handle_chunk(&tx.chunk(0, data[..1000].to_vec()).unwrap())
            .unwrap();
        assert!(matches!(tx.done(), Err(TransferError::InvalidState { .. })));
        let forged = FileDone {
            transfer_id: TransferId(1),
        };
        assert_eq!(
            rx.handle_done(&forged),
            Err(TransferError::Incomplete {
                received: 1000,
                size: 3000
            })
        );
    }

    #[test]
    fn size_limit_and_resume_validation() {
        let data = content(5000);
        let tx = sender(&data, 1024);
        assert_eq!(
            FileReceiver::new(tx.offer().clone(), 4999).unwrap_err(),
            TransferError::TooLarge {
                size: 5000,
                limit: 4999
            }
        );

        let mut tx2 = sender(&data, 1024);
        for bad in [100, 5001] {
            let accept = FileAccept {
                transfer_id: TransferId(1),
                resume_from: bad,
            };
            assert_eq!(
                tx2.handle_accept(&accept),
                Err(TransferError::InvalidResume {
                    offset: bad,
                    size: 5000
                })
            );
        }
        tx2.handle_accept(&FileAccept {
            transfer_id: TransferId(1),
            resume_from: 5000,
        })
        .unwrap();
        assert_eq!(tx2.next_read(), None);

        // Absorbing an unaligned prefix and accepting is refused.
        let mut rx = FileReceiver::new(tx.offer().clone(), u64::MAX).unwrap();
        rx.absorb_existing(&data[..1500]).unwrap();
        assert_eq!(
            rx.accept(),
            Err(TransferError::ResumePrefixMismatch {
                absorbed: 1500,
                expected: 1024
            })
        );
        assert!(rx.absorb_existing(&data).is_err());

        assert_eq!(rx.resume_offset(0), 0);
        assert_eq!(rx.resume_offset(1023), 0);
        assert_eq!(rx.resume_offset(2048), 2048);
        assert_eq!(rx.resume_offset(9999), 5000);
    }

    #[test]
    fn sender_rejects_mismatched_reads() {
        let data = content(3000);
        let mut tx = sender(&data, 1000);
        assert_eq!(tx.next_read(), None, "nothing before acceptance");
        tx.handle_accept(&FileAccept {
            transfer_id: TransferId(1),
            resume_from: 0,
        })
        .unwrap();
        assert_eq!(
            tx.next_read(),
            Some(ChunkRequest {
                offset: 0,
                len: 1000
            })
        );
        assert_eq!(
            tx.chunk(0, vec![0; 10]),
            Err(TransferError::WrongChunkLength {
                expected: 1000,
                got: 10
            })
        );
        assert_eq!(
            tx.chunk(1000, vec![0; 1000]),
            Err(TransferError::WrongOffset {
                expected: 0,
                got: 1000
            })
        );
        assert!(
            FileSender::new(
                TransferId(1),
                FileName::new("x").unwrap(),
                1,
                0,
                ContentHash::of(b"")
            )
            .is_err()
        );
    }

    #[test]
    fn reject_and_cancel() {
        let data = content(10);
        let mut tx = sender(&data, 4);
        let mut rx = FileReceiver::new(tx.offer().clone(), u64::MAX).unwrap();
        let reject = rx.reject("x".repeat(1000));
        assert_eq!(reject.reason.len(), MAX_REASON_LEN);
        tx.handle_reject(&reject).unwrap();
        assert_eq!(tx.next_read(), None);
        assert!(matches!(
            rx.accept(),
            Err(TransferError::InvalidState { .. })
        ));

        let mut tx = sender(&data, 4);
        let mut rx = FileReceiver::new(tx.offer().clone(), u64::MAX).unwrap();
        tx.handle_accept(&rx.accept().unwrap()).unwrap();
        let cancel = tx.cancel(Some("bye".into()));
        rx.handle_cancel(&cancel).unwrap();
        assert!(matches!(
            rx.handle_chunk(&FileChunk {
                transfer_id: TransferId(1),
                offset: 0,
                data: vec![0; 4]
            }),
            Err(TransferError::InvalidState { .. })
        ));
    }

    #[test]
    fn check_chunk_changes_nothing() {
        let data = content(3000);
        let mut tx = sender(&data, 1000);
        let mut rx = FileReceiver::new(tx.offer().clone(), u64::MAX).unwrap();
        tx.handle_accept(&rx.accept().unwrap()).unwrap();
        let good = tx.chunk(0, data[..1000].to_vec()).unwrap();
        let skip = FileChunk {
            offset: 1000,
            ..good.clone()
        };
        assert!(matches!(
            rx.check_chunk(&skip),
            Err(TransferError::WrongOffset { .. })
        ));
        assert_eq!(
            rx.check_chunk(&good),
            Ok(ChunkWrite {
                offset: 0,
                len: 1000
            })
        );
        assert_eq!(rx.progress().transferred, 0);
        // Neither check moved the receiver on or failed it.
        assert_eq!(rx.handle_chunk(&good).unwrap().offset, 0);
        assert_eq!(rx.progress().transferred, 1000);
    }

    #[test]
    fn a_hashed_prefix_resumes_without_rereading() {
        let data = content(10_000);
        let mut tx = sender(&data, 1024);
        let mut rx = FileReceiver::new(tx.offer().clone(), u64::MAX).unwrap();
        tx.handle_accept(&rx.accept().unwrap()).unwrap();
        for _ in 0..3 {
            let req = tx.next_read().unwrap();
            let range = req.offset as usize..req.offset as usize + req.len as usize;
            rx.handle_chunk(&tx.chunk(req.offset, data[range].to_vec()).unwrap())
                .unwrap();
        }
        // A refused chunk is not part of the prefix.
        let bad = FileChunk {
            transfer_id: TransferId(1),
            offset: 3072,
            data: vec![0; 10],
        };
        assert!(rx.handle_chunk(&bad).is_err());
        let prefix = rx.into_hashed_prefix();
        assert_eq!(prefix.len(), 3072);
        assert_eq!(prefix.target(), ContentHash::of(&data));

        // A new offer of the same content under another id continues.
        let mut tx = FileSender::new(
            TransferId(2),
            FileName::new("f.bin").unwrap(),
            data.len() as u64,
            1024,
            ContentHash::of(&data),
        )
        .unwrap();
        let mut rx = FileReceiver::new(tx.offer().clone(), u64::MAX).unwrap();
        rx.resume_hashed_prefix(prefix.clone()).unwrap();
        let accept = rx.accept().unwrap();
        assert_eq!(accept.resume_from, 3072);
        tx.handle_accept(&accept).unwrap();
        while let Some(req) = tx.next_read() {
            let range = req.offset as usize..req.offset as usize + req.len as usize;
            rx.handle_chunk(&tx.chunk(req.offset, data[range].to_vec()).unwrap())
                .unwrap();
        }
        assert_eq!(
            rx.handle_done(&tx.done().unwrap()),
            Ok(ContentHash::of(&data))
        );

        // Another chunk size makes 3072 no resume point.
        let other_chunks = FileSender::new(
            TransferId(3),
            FileName::new("f.bin").unwrap(),
            data.len() as u64,
            2048,
            ContentHash::of(&data),
        )
        .unwrap();
        let mut rx = FileReceiver::new(other_chunks.offer().clone(), u64::MAX).unwrap();
        assert_eq!(
            rx.resume_hashed_prefix(prefix.clone()),
            Err(TransferError::ResumePrefixMismatch {
                absorbed: 3072,
                expected: 2048
            })
        );
        assert_eq!(rx.accept().unwrap().resume_from, 0, "left unchanged");

        // Nor does a prefix of other content fit.
        let other = content(9_000);
        let mut rx = FileReceiver::new(sender(&other, 1024).offer().clone(), u64::MAX).unwrap();
        assert!(matches!(
            rx.resume_hashed_prefix(prefix.clone()),
            Err(TransferError::ForeignPrefix { .. })
        ));

        // And not on top of bytes absorbed from disk.
        let mut rx = FileReceiver::new(sender(&data, 1024).offer().clone(), u64::MAX).unwrap();
        rx.absorb_existing(&data[..1024]).unwrap();
        assert!(matches!(
            rx.resume_hashed_prefix(prefix),
            Err(TransferError::InvalidState { .. })
        ));
    }

    #[test]
    fn chunk_size_for_frame_fits() {
        for limit in [
            MIN_MAX_FRAME_SIZE,
            100_000,
            DEFAULT_MAX_FRAME_SIZE,
            16 << 20,
        ] {
            let size = max_chunk_size_for_frame(limit);
            assert!(size <= MAX_CHUNK_SIZE);
            let chunk = FileChunk {
                transfer_id: TransferId(u64::MAX),
                offset: u64::MAX - u64::from(size),
                data: vec![0; size as usize],
            };
            let packet =
                Packet::DataTransmission(DataTransmission::File(FileMessage::Chunk(chunk)));
            assert!(encode_frame(&packet, limit).is_ok(), "limit {limit}");
        }
    }
}
