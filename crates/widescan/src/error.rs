//! The crate's single error type.

use std::io;

/// Everything that can go wrong in widescan.
///
/// Input errors (prefixes, shards, probe bytes) are values, never panics: prefixes
/// come from users and probe bytes from the network, which "could represent an
/// attacker".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A prefix string could not be parsed.
    #[error("invalid prefix {input:?}: {reason}")]
    InvalidPrefix {
        /// The text as given.
        input: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A prefix is syntactically fine but the scan policy refuses it.
    #[error("prefix {prefix} refused: {reason}")]
    PrefixRefused {
        /// The refused prefix, normalised.
        prefix: String,
        /// Which rule refused it.
        reason: String,
    },

    /// No prefix was given, or every prefix was removed by the policy.
    #[error("no targets: {0}")]
    EmptyTargetSet(String),

    /// The merged target space does not fit the 128-bit index space.
    #[error("target space too large: the prefixes cover 2^128 addresses or more")]
    TargetSpaceTooLarge,

    /// An index range, shard or checkpoint is outside the target space or empty.
    #[error("invalid range: {0}")]
    InvalidRange(String),

    /// A configuration value is out of bounds.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// The packet transport found no single Ethernet next hop for the targets.
    #[error("packet transport: {0}")]
    NoLinkPath(String),

    /// `HardwareMode::Gpu` was requested but no usable adapter exists (or the
    /// crate was built without the `gpu` feature).
    #[error("GPU unavailable: {0}")]
    GpuUnavailable(String),

    /// The GPU path failed after it was set up (device lost, mapping failed, …).
    #[error("GPU failure: {0}")]
    Gpu(String),

    /// Opening a raw ICMPv6 socket needs `CAP_NET_RAW` (root or a capability).
    #[error(
        "no permission to open a raw ICMPv6 socket (needs CAP_NET_RAW: run as root or \
         `setcap cap_net_raw+ep` the binary): {0}"
    )]
    RawSocketPermission(#[source] io::Error),

    /// A probe or packet could not be decoded.
    #[error("malformed probe: {0}")]
    Malformed(&'static str),

    /// The sender gave up after too many consecutive send failures.
    #[error("sender aborted after {failures} consecutive send failures; last: {last}")]
    SendAborted {
        /// Consecutive failures seen.
        failures: u32,
        /// The last OS error.
        #[source]
        last: io::Error,
    },

    /// A worker thread panicked (a bug; reported instead of propagated).
    #[error("internal worker {0} panicked")]
    WorkerPanicked(&'static str),

    /// Any other operating-system error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn io(context: &'static str, source: io::Error) -> Self {
        Error::Io { context, source }
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
