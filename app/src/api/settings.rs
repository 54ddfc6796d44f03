//! The Settings page.

// The form's server function takes one argument per field (a form posts
// flat fields), more than clippy's default of seven.
#![allow(clippy::too_many_arguments)]

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
    /// Fields whose stored value is not in force yet (restart the server).
    pub pending_restart: Vec<String>,
}

/// Settings an administrator may change at run time. Some apply at once;
/// the others when the server restarts ([`SettingsView::pending_restart`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditableSettings {
    /// Display name of this node, 1–64 printable characters (live).
    pub node_name: String,
    /// Whether the embedded node accepts inbound peers (after restart).
    pub accept_inbound_peers: bool,
    /// Where peers awaiting approval appear: `queue`, `event` or
    /// `queue-and-event` (live).
    pub placement: String,
    /// Approve every peer the access list lets through (live).
    pub auto_accept: bool,
    /// Approved peers may send text messages (live, for new approvals).
    pub default_exchange: bool,
    /// Approved peers may send data, tasks, files and peer lists (live, for
    /// new approvals).
    pub enhanced_exchange: bool,
    /// Seconds a peer may wait for approval, 10–86400 (after restart).
    pub approval_timeout_secs: u64,
    /// LAN discovery on (after restart).
    pub discovery_enabled: bool,
    /// Dial the peers discovery hears (after restart).
    pub auto_connect: bool,
    /// Hosts announced to by unicast, one per line (after restart).
    pub static_hosts: Vec<String>,
}

/// The fields that apply only after a restart.
pub const RESTART_FIELDS: [&str; 5] = [
    "accept_inbound_peers",
    "approval_timeout_secs",
    "discovery_enabled",
    "auto_connect",
    "static_hosts",
];

/// The effective configuration and editable settings.
#[server(client = CsrfClient)]
pub async fn load_settings() -> Result<SettingsView, PanelError> {
    crate::ssr::backend()?.settings().await
}

/// Changes the editable settings; they are stored and survive a restart.
/// Every field is checked on the server; if any is refused, nothing is
/// saved and [`PanelError::Fields`] names each one. A field left out keeps
/// its value. Checkboxes are HTML checkboxes (present means on), sent with
/// `settings_form` so an unticked box can be told from a field left out.
#[server(client = CsrfClient)]
pub async fn update_settings(
    node_name: Option<String>,
    settings_form: Option<String>,
    accept_inbound_peers: Option<String>,
    placement: Option<String>,
    auto_accept: Option<String>,
    default_exchange: Option<String>,
    enhanced_exchange: Option<String>,
    approval_timeout_secs: Option<String>,
    discovery_enabled: Option<String>,
    auto_connect: Option<String>,
    static_hosts: Option<String>,
) -> Result<SettingsView, PanelError> {
    let session = crate::ssr::require_session()?;
    let backend = crate::ssr::backend()?;
    let current = backend.settings().await?.editable;
    // A form sends every checkbox it shows; a client posting only some
    // fields (old forms, scripts) keeps the others.
    let whole_form = settings_form.is_some();
    let flag = |sent: Option<String>, was: bool| {
        if whole_form {
            sent.is_some()
        } else {
            sent.is_some() || was
        }
    };
    let mut fields = Vec::new();
    let approval_timeout_secs = match approval_timeout_secs {
        None => current.approval_timeout_secs,
        Some(text) => text.trim().parse().unwrap_or_else(|_| {
            fields.push(super::FieldError {
                field: "approval_timeout_secs".into(),
                message: format!("`{}` is not a whole number of seconds", text.trim()),
            });
            current.approval_timeout_secs
        }),
    };
    if !fields.is_empty() {
        return Err(PanelError::Fields(fields));
    }
    let update = EditableSettings {
        node_name: node_name.unwrap_or(current.node_name),
        accept_inbound_peers: flag(accept_inbound_peers, current.accept_inbound_peers),
        placement: placement.unwrap_or(current.placement),
        auto_accept: flag(auto_accept, current.auto_accept),
        default_exchange: flag(default_exchange, current.default_exchange),
        enhanced_exchange: flag(enhanced_exchange, current.enhanced_exchange),
        approval_timeout_secs,
        discovery_enabled: flag(discovery_enabled, current.discovery_enabled),
        auto_connect: flag(auto_connect, current.auto_connect),
        static_hosts: static_hosts.map_or(current.static_hosts, |text| {
            text.lines()
                .flat_map(|l| l.split(','))
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
                .collect()
        }),
    };
    backend.update_settings(&session.username, update).await
}
