//! What the panel shows, and the server functions that fetch or change it.
//!
//! The types here are plain data shared by the server and the browser. Every
//! server function uses [`CsrfClient`] and returns [`PanelError`], so a caller
//! can tell "not logged in" from "bad input" from "server trouble".

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};

use crate::csrf_client::CsrfClient;

/// The Overview page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    /// Server version (the crate version).
    pub version: String,
    /// Seconds since the server started.
    pub uptime_secs: u64,
    /// Database backend and location, without credentials.
    pub database: String,
    /// Addresses the HTTP server listens on.
    pub listen_addresses: Vec<String>,
    /// The node's display name (a persisted setting).
    pub node_name: String,
    /// Peers known to the store.
    pub known_peers: u64,
}

/// The Settings page: the effective configuration and the editable settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SettingsView {
    /// The effective configuration as TOML, secrets redacted.
    pub effective_config: String,
    /// Settings that can be changed from the panel; they persist in the store.
    pub editable: EditableSettings,
}

/// Settings an administrator may change at run time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditableSettings {
    /// Display name of this node, 1–64 printable characters.
    pub node_name: String,
    /// Whether the embedded node accepts inbound peers.
    pub accept_inbound_peers: bool,
}

/// One row of the Peers page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRow {
    /// The peer's id (derived from its public key).
    pub peer_id: String,
    /// Addresses the peer was seen at.
    pub addresses: Vec<String>,
    /// How the peer was learned (manual, broadcast, bootstrap, …).
    pub source: String,
    /// First time seen, Unix milliseconds.
    pub first_seen_ms: i64,
    /// Last time seen, Unix milliseconds.
    pub last_seen_ms: i64,
}

/// One line of the terminal transcript.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalLine {
    /// Position in the session's transcript; strictly increasing.
    pub seq: u64,
    /// What the line is.
    pub kind: TerminalLineKind,
    /// The text, one line.
    pub text: String,
}

/// The kind of a [`TerminalLine`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TerminalLineKind {
    /// The command as typed.
    Input,
    /// Normal output.
    Output,
    /// An error message.
    Error,
}

/// Body of `POST /api/parser/input`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TerminalInput {
    /// One command line.
    pub line: String,
}

/// Body of `GET /api/parser/output`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TerminalOutput {
    /// Lines after the requested sequence number, oldest first.
    pub lines: Vec<TerminalLine>,
    /// Pass as `after` on the next poll.
    pub next: u64,
}

/// Why a panel call failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum PanelError {
    /// No valid session: log in again.
    #[error("not logged in")]
    Unauthorized,
    /// The input was rejected; the message says why.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The server could not complete the call (database down, …).
    #[error("server error: {0}")]
    Internal(String),
    /// The call itself failed (network, encoding).
    #[error("request failed: {0}")]
    Request(String),
}

impl FromServerFnError for PanelError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        Self::Request(value.to_string())
    }
}

/// The dashboard figures.
#[server(client = CsrfClient)]
pub async fn load_overview() -> Result<Overview, PanelError> {
    crate::ssr::backend()?.overview().await
}

/// The effective configuration and editable settings.
#[server(client = CsrfClient)]
pub async fn load_settings() -> Result<SettingsView, PanelError> {
    crate::ssr::backend()?.settings().await
}

/// Changes the editable settings; they are stored and survive a restart.
///
/// `accept_inbound_peers` is an HTML checkbox: present (any value) means on.
#[server(client = CsrfClient)]
pub async fn update_settings(
    node_name: String,
    accept_inbound_peers: Option<String>,
) -> Result<SettingsView, PanelError> {
    let session = crate::ssr::require_session()?;
    let update = EditableSettings {
        node_name,
        accept_inbound_peers: accept_inbound_peers.is_some(),
    };
    crate::ssr::backend()?
        .update_settings(&session.username, update)
        .await
}

/// Peers known to the store.
#[server(client = CsrfClient)]
pub async fn list_peers() -> Result<Vec<PeerRow>, PanelError> {
    crate::ssr::backend()?.peers().await
}
