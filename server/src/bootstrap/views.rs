//! What the panel and the terminal show of the bootstrap server: the
//! service, its served snapshot and its registered peers. Nothing here
//! changes anything.

use std::path::Path;

use app::api::{
    BootstrapView, MAX_SHOWN_PEERS, MAX_SHOWN_SIGNATURES, RegisteredPeerRow, SignatureRow,
};
use p2pnet::proto::record::SignedRecord;
use p2pnet_bootstrap::authority::KEY_FILE;

use super::{BootstrapService, ServeError, unix_now};
use crate::store::{AnnouncedRecord, StoreError};

impl BootstrapService {
    /// The service, the snapshot it serves (made now if one is due) and the
    /// peers registered now, the latest announce first (at most
    /// [`MAX_SHOWN_PEERS`]; `registered` counts them all).
    pub async fn view(&self) -> Result<BootstrapView, ServeError> {
        let served = self.snapshot().await?;
        let mut records = self.registered_records().await?;
        let registered = u64::try_from(records.len()).unwrap_or(u64::MAX);
        records.sort_by(|a, b| {
            b.announced_at_ms
                .cmp(&a.announced_at_ms)
                .then_with(|| a.peer_id.cmp(&b.peer_id))
        });
        records.truncate(MAX_SHOWN_PEERS);
        let signatures = self
            .store
            .latest_signatures(i64::try_from(MAX_SHOWN_SIGNATURES).unwrap_or(10))
            .await?
            .into_iter()
            .map(|e| SignatureRow {
                seq: e.seq,
                at_ms: e.at_ms,
                kind: e.kind,
                digest: e.digest,
            })
            .collect();
        Ok(BootstrapView {
            mode: self.config.mode.as_str().to_owned(),
            network: self.config.network.clone(),
            fingerprint: self.authority().map(|a| a.key.fingerprint()),
            snapshot_seq: served.seq,
            snapshot_issued_at: served.issued_at,
            snapshot_peers: u64::try_from(served.peers).unwrap_or(u64::MAX),
            registered,
            peers: records.into_iter().map(registered_row).collect(),
            signatures,
        })
    }

    /// The records unexpired now, by peer id.
    pub(super) async fn registered_records(&self) -> Result<Vec<AnnouncedRecord>, StoreError> {
        let now_s = i64::try_from(unix_now()).unwrap_or(i64::MAX);
        Ok(self.store.live_records(now_s).await?.1)
    }

    /// Whether `keys_dir` holds an authority key file (in trustless mode
    /// one may be kept ready for a switch to authority mode).
    pub fn has_key_file(keys_dir: &Path) -> bool {
        keys_dir.join(KEY_FILE).exists()
    }
}

fn registered_row(r: AnnouncedRecord) -> RegisteredPeerRow {
    // The text was checked when it was announced; parsed again for its
    // addresses, which the store does not keep apart.
    let addresses = SignedRecord::parse(&r.record)
        .map(|signed| {
            signed
                .record()
                .addresses
                .iter()
                .map(ToString::to_string)
                .collect()
        })
        .unwrap_or_default();
    RegisteredPeerRow {
        peer_id: r.peer_id,
        addresses,
        observed_ip: r.observed_ip,
        seq: u64::try_from(r.seq).unwrap_or(0),
        expires_at: u64::try_from(r.expires_at).unwrap_or(0),
        announced_at_ms: r.announced_at_ms,
    }
}
