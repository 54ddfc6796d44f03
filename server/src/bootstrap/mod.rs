//! The bootstrap server: peers announce their self-signed records, and
//! anyone fetches the list of them as a snapshot.
//!
//! - [`BootstrapService::announce`] checks a record (size, signature,
//!   network, time, a rising sequence) and stores it with the address it
//!   came from; a client's announces are rate-limited per IPv4 address or
//!   IPv6 /64.
//! - [`BootstrapService::snapshot`] serves the list, made from the store at
//!   most once a second and only when it changed (the store's version is
//!   the snapshot's sequence number) or half of its lifetime has passed, so
//!   a flood of reads costs one read of the store a second, whatever the
//!   number of peers. Between two makes every request gets the same bytes.
//!
//! The store is shared by every instance on one database, so all of them
//! number their snapshots in one sequence.
//!
//! In authority mode every snapshot is signed by the authority key
//! (`<keys_dir>/authority.key`, its secret encrypted with
//! `bootstrap.passphrase`): once per make, never per request. The key's
//! past rotations are read from `<keys_dir>/authority.rotations.json`,
//! so a client pinned to an older key can follow them.

mod authority;
mod batch;
pub mod config;
pub mod tasks;
mod views;

use std::{
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use axum::body::Bytes;
use p2pnet::proto::record::SignedRecord;
use p2pnet_bootstrap::{
    authority::AuthorityError,
    snapshot::{Snapshot, SnapshotPeer},
};
use serde::Serialize;

use crate::{
    client_limit::ClientBuckets,
    store::{Announced, AnnouncedRecord, Store, StoreError},
};
pub use authority::{Authority, ROTATIONS_FILE};
pub use config::{BootstrapConfig, Mode, RawBootstrap};

/// How often, at most, the snapshot is re-made from the store.
pub const REFRESH: Duration = Duration::from_secs(1);
/// How often expired records are deleted from the store.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The snapshot as served.
#[derive(Debug)]
pub struct Served {
    /// Its sequence number.
    pub seq: u64,
    /// The response body: `{"mode", "snapshot", "signature"}`.
    pub body: Bytes,
    /// The same, gzipped once when it was made (tens of milliseconds for
    /// a large list: per request it would let clients spend the server's
    /// CPU).
    pub body_gzip: Bytes,
    /// Its entity tag (quoted), for conditional requests.
    pub etag: String,
    /// Peers listed.
    pub peers: usize,
    /// When it was made, Unix seconds.
    pub issued_at: u64,
    made: Instant,
}

/// The response body of `GET /api/Bootstrap/peers`.
#[derive(Serialize)]
struct PeersBody<'a> {
    mode: &'static str,
    snapshot: &'a str,
    signature: Option<&'a str>,
}

/// What an accepted announce did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnounceOutcome {
    /// The record is new and stored.
    Stored,
    /// The same record was stored already.
    Unchanged,
}

/// Why an announce was refused; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    /// The record is malformed, forged, for another network or out of time
    /// (400).
    #[error("{0}")]
    Invalid(String),
    /// A record with this sequence number or a higher one is stored (409).
    #[error("a record with sequence {stored_seq} is stored; announce a higher one")]
    Stale {
        /// The stored sequence number.
        stored_seq: i64,
    },
    /// The client announces too often (429).
    #[error("too many announces from this address; retry after {0:?}")]
    TooMany(Duration),
    /// The registry is full (503).
    #[error("this server lists as many peers as it may; retry later")]
    Full,
    /// The store failed (500).
    #[error(transparent)]
    Store(Arc<StoreError>),
}

/// Why no snapshot could be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The snapshot could not be written out.
    #[error("the snapshot could not be encoded: {0}")]
    Encode(String),
    /// The authority could not sign it.
    #[error("the snapshot could not be signed: {0}")]
    Sign(#[from] AuthorityError),
}

/// The bootstrap API's state.
pub struct BootstrapService {
    config: BootstrapConfig,
    store: Arc<dyn Store>,
    /// Replaced whole when the key rotates.
    authority: std::sync::RwLock<Option<Arc<Authority>>>,
    announces: ClientBuckets,
    /// Writes announces in batches.
    writer: batch::Batcher,
    served: Mutex<Option<Arc<Served>>>,
    /// One make at a time; the others serve what is there.
    making: tokio::sync::Mutex<()>,
    last_prune: Mutex<Option<Instant>>,
}

impl BootstrapService {
    /// The service over `store`; `authority` signs the snapshots (authority
    /// mode) or is `None` (trustless mode).
    pub fn new(
        config: BootstrapConfig,
        store: Arc<dyn Store>,
        authority: Option<Authority>,
    ) -> Self {
        let max_peers = i64::try_from(config.max_peers).unwrap_or(i64::MAX);
        Self {
            announces: ClientBuckets::new(config.announces_per_minute),
            writer: batch::Batcher::start(store.clone(), max_peers),
            config,
            store,
            authority: std::sync::RwLock::new(authority.map(Arc::new)),
            served: Mutex::new(None),
            making: tokio::sync::Mutex::new(()),
            last_prune: Mutex::new(None),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &BootstrapConfig {
        &self.config
    }

    /// The authority, in authority mode.
    pub fn authority(&self) -> Option<Arc<Authority>> {
        self.authority
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Rotates the authority key (see [`Authority::rotate`]); the next
    /// snapshot is made and signed with the new key at once.
    pub fn rotate_authority(&self, keys_dir: &std::path::Path) -> Result<Arc<Authority>, String> {
        let current = self
            .authority()
            .ok_or("this server runs in trustless mode: it has no authority key")?;
        let next = Arc::new(current.rotate(keys_dir, &self.config)?);
        *self
            .authority
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(next.clone());
        *self.served.lock().unwrap_or_else(PoisonError::into_inner) = None;
        Ok(next)
    }

    /// Checks and stores an announced record (its text form) from `from`.
    pub async fn announce(
        &self,
        text: &str,
        from: IpAddr,
    ) -> Result<AnnounceOutcome, AnnounceError> {
        self.announces
            .check(from, Instant::now())
            .map_err(AnnounceError::TooMany)?;
        let record =
            SignedRecord::parse(text.trim()).map_err(|e| AnnounceError::Invalid(e.to_string()))?;
        let now = unix_now();
        record
            .check(
                &self.config.network,
                now,
                self.config.max_clock_skew.as_secs(),
            )
            .map_err(|e| AnnounceError::Invalid(e.to_string()))?;
        let r = record.record();
        let seq = i64::try_from(r.seq)
            .map_err(|_| AnnounceError::Invalid("sequence numbers stop at 2^63 - 1".into()))?;
        let expires_at = i64::try_from(r.expires_at)
            .map_err(|_| AnnounceError::Invalid("expiry out of range".into()))?;
        let stored = AnnouncedRecord {
            peer_id: r.peer.to_string(),
            record: record.as_str().to_owned(),
            seq,
            expires_at,
            observed_ip: Some(from.to_canonical().to_string()),
            announced_at_ms: crate::state::now_ms(),
        };
        match self
            .writer
            .announce(stored)
            .await
            .map_err(AnnounceError::Store)?
        {
            Announced::Stored { .. } => {
                tracing::debug!(peer = %r.peer, seq = r.seq, "bootstrap announce stored");
                Ok(AnnounceOutcome::Stored)
            }
            Announced::Unchanged => Ok(AnnounceOutcome::Unchanged),
            Announced::Stale { stored_seq } => Err(AnnounceError::Stale { stored_seq }),
            Announced::Full => Err(AnnounceError::Full),
        }
    }

    /// The snapshot to serve (see the module docs for when it is re-made).
    pub async fn snapshot(&self) -> Result<Arc<Served>, ServeError> {
        let current = self.current();
        if let Some(served) = &current
            && !self.due(served)
        {
            return Ok(served.clone());
        }
        // Someone else is making one: serve what there is, if anything.
        let _making = match (self.making.try_lock(), &current) {
            (Ok(guard), _) => guard,
            (Err(_), Some(served)) => return Ok(served.clone()),
            (Err(_), None) => self.making.lock().await,
        };
        // It may have been made while this request waited.
        if let Some(served) = self.current()
            && !self.due(&served)
        {
            return Ok(served);
        }
        self.prune_if_due().await;
        let version = self.store.bootstrap_version().await?;
        let seq = u64::try_from(version).unwrap_or(0);
        let now = unix_now();
        if let Some(served) = &current
            && served.seq == seq
            && now < served.issued_at + self.config.snapshot_lifetime.as_secs() / 2
        {
            // Unchanged: the same bytes for another second.
            let again = Arc::new(Served {
                seq,
                body: served.body.clone(),
                body_gzip: served.body_gzip.clone(),
                etag: served.etag.clone(),
                peers: served.peers,
                issued_at: served.issued_at,
                made: Instant::now(),
            });
            self.publish(again.clone());
            return Ok(again);
        }
        let made = self.make(now).await?;
        self.publish(made.clone());
        Ok(made)
    }

    fn current(&self) -> Option<Arc<Served>> {
        self.served
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn publish(&self, served: Arc<Served>) {
        *self.served.lock().unwrap_or_else(PoisonError::into_inner) = Some(served);
    }

    fn due(&self, served: &Served) -> bool {
        served.made.elapsed() >= REFRESH
    }

    async fn make(&self, now: u64) -> Result<Arc<Served>, ServeError> {
        let now_s = i64::try_from(now).unwrap_or(i64::MAX);
        let (version, records) = self.store.live_records(now_s).await?;
        let seq = u64::try_from(version).unwrap_or(0);
        let peers: Vec<SnapshotPeer> = records
            .into_iter()
            .map(|r| SnapshotPeer {
                record: r.record,
                observed_ip: r.observed_ip.and_then(|ip| ip.parse().ok()),
            })
            .collect();
        let count = peers.len();
        let snapshot = Snapshot::new(
            &self.config.network,
            seq,
            now,
            now + self.config.snapshot_lifetime.as_secs(),
            peers,
        );
        let text = snapshot
            .to_text()
            .map_err(|e| ServeError::Encode(e.to_string()))?;
        let signature = match self.authority() {
            Some(authority) => {
                let signature = authority.key.sign_detached(text.as_bytes())?;
                // Every signature issued is in the history before it is out.
                self.record_signature(authority.key.fingerprint(), text.as_bytes(), &signature)
                    .await?;
                Some(signature)
            }
            None => None,
        };
        let body = serde_json::to_vec(&PeersBody {
            mode: self.config.mode.as_str(),
            snapshot: &text,
            signature: signature.as_deref(),
        })
        .map_err(|e| ServeError::Encode(e.to_string()))?;
        let body_gzip = gzip(&body).map_err(|e| ServeError::Encode(e.to_string()))?;
        tracing::debug!(seq, peers = count, "bootstrap snapshot made");
        Ok(Arc::new(Served {
            seq,
            body: Bytes::from(body),
            body_gzip: Bytes::from(body_gzip),
            // Weak: the plain and gzipped bodies are the same snapshot.
            etag: format!("W/\"{}-{seq}-{now}\"", self.config.mode.as_str()),
            peers: count,
            issued_at: now,
            made: Instant::now(),
        }))
    }

    async fn prune_if_due(&self) {
        {
            let mut last = self
                .last_prune
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < PRUNE_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let now_s = i64::try_from(unix_now()).unwrap_or(i64::MAX);
        match self.store.prune_records(now_s).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(expired = n, "bootstrap records pruned"),
            Err(e) => tracing::warn!(error = %e, "pruning bootstrap records failed"),
        }
    }
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 2),
        flate2::Compression::default(),
    );
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
