//! The server side of the panel: what the server must provide.

use std::sync::Arc;

use leptos::prelude::use_context;

use crate::api::{
    BootstrapView, DoctorReport, EditableSettings, NodeAction, Overview, PanelError, PeersView,
    RoutineRow, SettingsView, WidescanView,
};
pub use crate::session::PanelSession;

/// Everything the panel's server functions need from the server.
///
/// The server implements it and provides an `Arc<dyn PanelBackend>` as Leptos
/// context; this crate never depends on the server crate.
#[async_trait::async_trait]
pub trait PanelBackend: Send + Sync + 'static {
    /// Figures for the Overview page.
    async fn overview(&self) -> Result<Overview, PanelError>;
    /// The effective configuration and editable settings.
    async fn settings(&self) -> Result<SettingsView, PanelError>;
    /// Validates, stores and audits a settings change by `actor`.
    async fn update_settings(
        &self,
        actor: &str,
        update: EditableSettings,
    ) -> Result<SettingsView, PanelError>;
    /// Known peers, channels, pending approvals and the access list.
    async fn peers_view(&self) -> Result<PeersView, PanelError>;
    /// Why a peer (named by id or unambiguous prefix) is or is not connected.
    async fn doctor(&self, peer: &str) -> Result<DoctorReport, PanelError>;
    /// Runs and audits an action by `actor`; a line saying what was done.
    async fn node_action(&self, actor: &str, action: NodeAction) -> Result<String, PanelError>;
    /// The node's routines.
    async fn routines(&self) -> Result<Vec<RoutineRow>, PanelError>;
    /// The bootstrap service: mode, authority, snapshot, registered peers.
    async fn bootstrap_view(&self) -> Result<BootstrapView, PanelError>;
    /// The scan jobs, and the latest results of `job` (default: the newest).
    async fn widescan_view(&self, job: Option<i64>) -> Result<WidescanView, PanelError>;
}

/// The backend provided by the server for this request.
pub fn backend() -> Result<Arc<dyn PanelBackend>, PanelError> {
    // Absent only if the server forgot to provide it: a bug, not user error.
    use_context::<Arc<dyn PanelBackend>>()
        .ok_or_else(|| PanelError::Internal("panel backend not provided".into()))
}

/// The session of this request; the auth middleware guarantees one on every
/// panel route, so its absence means the request bypassed it.
pub fn require_session() -> Result<PanelSession, PanelError> {
    crate::session::current().ok_or(PanelError::Unauthorized)
}
