//! The Peers page: known peers, channels, pending approvals, the access
//! list, a per-peer "why not connected?" report, and the node actions.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    NodeAction, PanelError,
    codec::{FormInJsonOut, JsonInJsonOut},
};
use crate::csrf_client::CsrfClient;

/// Everything the Peers page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeersView {
    /// KnownPeers, most recently seen first.
    pub known: Vec<KnownPeerRow>,
    /// Active channels.
    pub channels: Vec<ChannelRow>,
    /// Peers waiting for approval, oldest first.
    pub pending: Vec<PendingRow>,
    /// Blocked peer ids and networks.
    pub blocked: Vec<String>,
    /// Allow-listed peer ids and networks (non-empty means default deny).
    pub allowed: Vec<String>,
    /// The latest speed tests, a chart and a table, as markup the server
    /// made (the browser's code stays small).
    pub perf_html: String,
}

/// One known peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownPeerRow {
    /// Its id.
    pub peer_id: String,
    /// How it became known (manual, inbound, discovery: broadcast, shared by …).
    pub source: String,
    /// Addresses, most recent last.
    pub addresses: Vec<String>,
    /// The addresses a connection or the administrator proved.
    pub proven: Vec<String>,
    /// First seen, Unix ms.
    pub first_seen_ms: i64,
    /// Last seen, Unix ms.
    pub last_seen_ms: i64,
    /// Approved by the administrator (or a connection it asked for).
    pub approved: bool,
    /// Rejected: discovery does not dial it.
    pub rejected: bool,
    /// Blocked by id.
    pub blocked: bool,
    /// Kept connected.
    pub persistent: bool,
    /// Its live grants.
    pub grants: Vec<GrantRow>,
}

/// One grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRow {
    /// Its id (0: the approval's base grant).
    pub id: u64,
    /// What it lets the peer send, e.g. `message,file`.
    pub scopes: String,
    /// A file-size cap, if any.
    pub max_file_size: Option<u64>,
    /// When it ends, Unix ms, if ever.
    pub expires_at_ms: Option<i64>,
    /// Who granted it.
    pub granted_by: String,
    /// When, Unix ms.
    pub granted_at_ms: i64,
}

/// One active channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelRow {
    /// The channel's id.
    pub id: u64,
    /// The peer, once authenticated.
    pub peer_id: Option<String>,
    /// Its address.
    pub addr: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// `handshaking`, `pending approval`, `open`, `closing`, `closed`.
    pub state: String,
    /// What it lets through when open, e.g. `message,data`.
    pub scopes: String,
    /// Since, Unix ms.
    pub since_ms: i64,
    /// Last keepalive round trip, microseconds.
    pub rtt_us: Option<u64>,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
}

/// A peer waiting for approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRow {
    /// Its id.
    pub peer_id: String,
    /// Its address.
    pub addr: String,
    /// Waiting since, Unix ms.
    pub since_ms: i64,
}

/// "Why is this peer (not) connected?": one line per fact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorReport {
    /// The full id of the peer.
    pub peer_id: String,
    /// The facts, in the order a person reads them.
    pub lines: Vec<String>,
}

/// The Peers page's data.
#[server(client = CsrfClient, protocol = FormInJsonOut)]
pub async fn load_peers() -> Result<PeersView, PanelError> {
    crate::ssr::backend()?.peers_view().await
}

/// Why a peer is or is not connected.
#[server(client = CsrfClient, protocol = FormInJsonOut)]
pub async fn load_doctor(peer: String) -> Result<DoctorReport, PanelError> {
    crate::ssr::backend()?.doctor(&peer).await
}

/// Runs a node action (approve, block, connect, ...); audited. Returns a
/// line saying what was done.
///
/// Its argument is JSON, not the default url-encoded form: the form's flat
/// strings cannot carry a number inside a tagged enum (`RoutineInterval {
/// secs }` failed to decode). Its path is fixed, `/api/node_action`, for
/// scripts and tests.
#[server(client = CsrfClient, protocol = JsonInJsonOut, endpoint = "node_action")]
pub async fn run_node_action(action: NodeAction) -> Result<String, PanelError> {
    let session = crate::ssr::require_session()?;
    crate::ssr::backend()?
        .node_action(&session.username, action)
        .await
}
