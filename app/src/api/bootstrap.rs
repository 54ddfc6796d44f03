//! The Bootstrap page: the server's bootstrap service and the peers
//! registered with it.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::PanelError;
use super::codec::FormInJsonOut;
use crate::csrf_client::CsrfClient;

/// The bootstrap service as the panel and the terminal show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootstrapView {
    /// `trustless` or `authority`.
    pub mode: String,
    /// The network whose peers are listed.
    pub network: String,
    /// The authority key's fingerprint (authority mode).
    pub fingerprint: Option<String>,
    /// The served snapshot's sequence number.
    pub snapshot_seq: u64,
    /// When the served snapshot was made, Unix seconds.
    pub snapshot_issued_at: u64,
    /// Peers the served snapshot lists.
    pub snapshot_peers: u64,
    /// Peers registered now (unexpired records).
    pub registered: u64,
    /// The registered peers, the latest announce first; at most
    /// [`MAX_SHOWN_PEERS`] of them (`registered` counts all).
    pub peers: Vec<RegisteredPeerRow>,
    /// The latest signatures the authority issued, newest first (at most
    /// [`MAX_SHOWN_SIGNATURES`]).
    pub signatures: Vec<SignatureRow>,
}

/// Most signatures a view carries.
pub const MAX_SHOWN_SIGNATURES: usize = 10;

/// One entry of the signing history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureRow {
    /// Its position in the history.
    pub seq: i64,
    /// When, Unix ms.
    pub at_ms: i64,
    /// `snapshot` or `task`.
    pub kind: String,
    /// SHA-256 of the signed bytes, hex.
    pub digest: String,
}

/// Most registered peers a view carries.
pub const MAX_SHOWN_PEERS: usize = 200;

/// A peer registered with the bootstrap server: its last record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredPeerRow {
    /// Its peer id.
    pub peer_id: String,
    /// The addresses its record lists, as it wrote them (an unspecified
    /// IP stands for the observed one).
    pub addresses: Vec<String>,
    /// The address its announce came from.
    pub observed_ip: Option<String>,
    /// The record's sequence number.
    pub seq: u64,
    /// When the record expires, Unix seconds.
    pub expires_at: u64,
    /// When it was announced, Unix ms.
    pub announced_at_ms: i64,
}

/// The bootstrap service and its registered peers.
#[server(client = CsrfClient, protocol = FormInJsonOut)]
pub async fn load_bootstrap() -> Result<BootstrapView, PanelError> {
    crate::ssr::backend()?.bootstrap_view().await
}
