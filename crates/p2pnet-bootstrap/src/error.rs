//! The crate's error type.

use crate::authority::AuthorityError;

/// Everything that can go wrong in bootstrap discovery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The authority key or a signature check failed.
    #[error("authority: {0}")]
    Authority(#[from] AuthorityError),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
