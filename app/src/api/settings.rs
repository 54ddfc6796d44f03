//! The Settings page.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::PanelError;
use crate::csrf_client::CsrfClient;

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
