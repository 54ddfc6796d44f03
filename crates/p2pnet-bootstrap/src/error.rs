//! The crate's error type.

use crate::authority::AuthorityError;

/// Everything that can go wrong in bootstrap discovery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The authority key or a signature check failed.
    #[error("authority: {0}")]
    Authority(#[from] AuthorityError),
    /// A snapshot was refused.
    #[error("snapshot: {0}")]
    Snapshot(#[from] SnapshotError),
    /// A server's list was refused.
    #[error("bootstrap list: {0}")]
    Verify(#[from] crate::verify::VerifyError),
    /// The client could not start.
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
}

/// Why a snapshot was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Longer than [`MAX_SNAPSHOT_LEN`](crate::snapshot::MAX_SNAPSHOT_LEN).
    #[error("snapshot too large ({0} bytes)")]
    TooLarge(usize),
    /// Not the JSON of a snapshot.
    #[error("malformed snapshot: {0}")]
    Malformed(String),
    /// A format this version does not read.
    #[error("unknown snapshot format {0:?}")]
    UnknownFormat(String),
    /// More than [`MAX_SNAPSHOT_PEERS`](crate::snapshot::MAX_SNAPSHOT_PEERS).
    #[error("snapshot lists {0} peers, more than allowed")]
    TooManyPeers(usize),
    /// Another network's.
    #[error("the snapshot is for network {0:?}")]
    WrongNetwork(String),
    /// Older than the one trusted already: a rollback.
    #[error("snapshot {seq} is older than the trusted {trusted} (rollback)")]
    Rollback {
        /// Its sequence number.
        seq: u64,
        /// The highest trusted so far.
        trusted: u64,
    },
    /// Past its expiry: a frozen or replayed list.
    #[error("the snapshot expired at {expires_at} (now {now})")]
    Expired {
        /// Its expiry, Unix seconds.
        expires_at: u64,
        /// The time of the check.
        now: u64,
    },
    /// Issued later than now plus the skew allowed.
    #[error("the snapshot is issued at {issued_at}, in the future (now {now})")]
    FromTheFuture {
        /// Its issue time, Unix seconds.
        issued_at: u64,
        /// The time of the check.
        now: u64,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
