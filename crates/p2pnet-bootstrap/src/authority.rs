//! The bootstrap authority's OpenPGP key (placeholder; see the helper's work).

/// What can go wrong with the authority key or its signatures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorityError {
    /// Not built yet.
    #[error("not built yet")]
    Missing,
}
