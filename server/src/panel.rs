//! The server's implementation of the panel's [`PanelBackend`].

use app::{
    api::{
        DoctorReport, EditableSettings, NodeAction, Overview, PanelError, PeersView, RoutineRow,
        SettingsView,
    },
    ssr::PanelBackend,
};

use crate::{
    node::{NodeService, actions::ActionError},
    settings::{self, ACCEPT_INBOUND_PEERS, NODE_NAME},
    state::{AppState, now_ms},
    store::{NewAudit, StoreError},
};

/// Answers the panel's server functions from the server state.
pub struct Panel {
    state: AppState,
}

impl Panel {
    /// A backend over `state`.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl Panel {
    fn node(&self) -> Result<&NodeService, PanelError> {
        self.state.shared.node.as_deref().ok_or_else(|| {
            PanelError::Invalid("the peer node is off ([node] enabled = false)".into())
        })
    }
}

fn action_error(e: ActionError) -> PanelError {
    match e {
        ActionError::Invalid(message) => PanelError::Invalid(message),
        ActionError::Failed(message) => PanelError::Internal(message),
        ActionError::Store(e) => internal(e),
    }
}

fn internal(e: StoreError) -> PanelError {
    tracing::error!(error = %e, "panel request failed");
    PanelError::Internal("database unavailable; see the server log".into())
}

#[async_trait::async_trait]
impl PanelBackend for Panel {
    async fn overview(&self) -> Result<Overview, PanelError> {
        let shared = &self.state.shared;
        let effective = settings::load(shared.store.as_ref(), &shared.config.node_name)
            .await
            .map_err(internal)?;
        Ok(Overview {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_secs: shared.started.elapsed().as_secs(),
            database: shared.store.describe(),
            listen_addresses: shared
                .listen_addresses
                .iter()
                .map(|a| format!("http://{a}"))
                .collect(),
            node_name: effective.node_name,
            known_peers: shared.store.count_known_peers().await.map_err(internal)?,
            node: shared.node.as_ref().map(|node| node.summary()),
        })
    }

    async fn settings(&self) -> Result<SettingsView, PanelError> {
        let shared = &self.state.shared;
        let effective = settings::load(shared.store.as_ref(), &shared.config.node_name)
            .await
            .map_err(internal)?;
        Ok(SettingsView {
            effective_config: shared.config.redacted_toml(),
            editable: EditableSettings {
                node_name: effective.node_name,
                accept_inbound_peers: effective.accept_inbound_peers,
            },
        })
    }

    async fn update_settings(
        &self,
        actor: &str,
        update: EditableSettings,
    ) -> Result<SettingsView, PanelError> {
        let node_name = settings::validate_node_name(&update.node_name)
            .map_err(|m| PanelError::Invalid(format!("node name {m}")))?;
        let values = vec![
            (NODE_NAME.to_owned(), node_name.clone()),
            (
                ACCEPT_INBOUND_PEERS.to_owned(),
                update.accept_inbound_peers.to_string(),
            ),
        ];
        let audit = NewAudit {
            at_ms: now_ms(),
            actor: actor.to_owned(),
            action: "settings.update".into(),
            detail: format!(
                "node.name={node_name:?} node.accept_inbound_peers={}",
                update.accept_inbound_peers
            ),
        };
        self.state
            .shared
            .store
            .put_settings(&values, &audit)
            .await
            .map_err(internal)?;
        self.settings().await
    }

    async fn peers_view(&self) -> Result<PeersView, PanelError> {
        Ok(self.node()?.peers_view())
    }

    async fn doctor(&self, peer: &str) -> Result<DoctorReport, PanelError> {
        self.node()?.doctor(peer).map_err(action_error)
    }

    async fn node_action(&self, actor: &str, action: NodeAction) -> Result<String, PanelError> {
        self.node()?.run(actor, action).await.map_err(action_error)
    }

    async fn routines(&self) -> Result<Vec<RoutineRow>, PanelError> {
        Ok(self.node()?.routines())
    }
}
