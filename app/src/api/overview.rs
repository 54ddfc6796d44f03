//! The Overview page.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::codec::FormInJsonOut;
use super::{NodeSummary, PanelError};
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
    /// The embedded peer node, when it runs.
    pub node: Option<NodeSummary>,
}

/// The dashboard figures.
#[server(client = CsrfClient, protocol = FormInJsonOut)]
pub async fn load_overview() -> Result<Overview, PanelError> {
    crate::ssr::backend()?.overview().await
}
