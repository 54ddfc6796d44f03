//! The server's implementation of the panel's [`PanelBackend`].

use app::{
    api::{
        BootstrapView, DoctorReport, EditableSettings, NodeAction, Overview, PanelError, PeersView,
        RoutineRow, SettingsView, WidescanView,
    },
    ssr::PanelBackend,
};

use crate::{
    node::{NodeService, actions::ActionError},
    settings,
    state::{AppState, now_ms},
    store::{NewAudit, StoreError},
    widescan::{ScanError, ScanRequest},
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

    /// Signs and queues a network task (audited by the service).
    async fn queue_task(
        &self,
        actor: &str,
        target: &str,
        task: &str,
    ) -> Result<String, PanelError> {
        use crate::bootstrap::tasks::QueueError;
        let service = self.state.shared.bootstrap.as_deref().ok_or_else(|| {
            PanelError::Invalid("the bootstrap server is off ([bootstrap] enabled = false)".into())
        })?;
        let queued = service
            .queue_task_line(actor, target, task)
            .await
            .map_err(|e| match e {
                QueueError::Store(e) => internal(e),
                other => PanelError::Invalid(other.to_string()),
            })?;
        Ok(format!(
            "task {} queued: {}",
            queued.seq,
            queued.action.kind()
        ))
    }
}

fn action_error(e: ActionError) -> PanelError {
    match e {
        ActionError::Invalid(message) => PanelError::Invalid(message),
        ActionError::Failed(message) => PanelError::Internal(message),
        ActionError::Store(e) => internal(e),
    }
}

fn scan_error(e: ScanError) -> PanelError {
    match e {
        ScanError::Fields(fields) => PanelError::Fields(fields),
        ScanError::Store(e) => internal(e),
        other => PanelError::Invalid(other.to_string()),
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
        let effective = settings::load(shared.store.as_ref(), &shared.config)
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
        let stored = settings::load(shared.store.as_ref(), &shared.config)
            .await
            .map_err(internal)?;
        Ok(SettingsView {
            effective_config: shared.config.redacted_toml(),
            pending_restart: settings::pending_restart(&shared.settings_at_start, &stored),
            editable: stored,
        })
    }

    async fn update_settings(
        &self,
        actor: &str,
        update: EditableSettings,
    ) -> Result<SettingsView, PanelError> {
        let shared = &self.state.shared;
        let valid = settings::validate(&update).map_err(PanelError::Fields)?;
        let audit = NewAudit {
            at_ms: now_ms(),
            actor: actor.to_owned(),
            action: "settings.update".into(),
            detail: settings::to_store(&valid)
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
        };
        shared
            .store
            .put_settings(&settings::to_store(&valid), &audit)
            .await
            .map_err(internal)?;
        // Stored first; then what applies live is applied.
        if let Some(node) = &shared.node {
            node.network().update_trust_policy(|policy| {
                policy.placement = match valid.placement.as_str() {
                    "queue" => p2pnet::Placement::Queue,
                    "event" => p2pnet::Placement::Event,
                    _ => p2pnet::Placement::QueueAndEvent,
                };
                policy.auto_accept = valid.auto_accept;
                policy.allow_default_communication = valid.default_exchange;
                policy.allow_enhanced_packet_exchange = valid.enhanced_exchange;
            });
        }
        self.settings().await
    }

    async fn peers_view(&self) -> Result<PeersView, PanelError> {
        Ok(self.node()?.peers_view())
    }

    async fn doctor(&self, peer: &str) -> Result<DoctorReport, PanelError> {
        self.node()?.doctor(peer).map_err(action_error)
    }

    async fn node_action(&self, actor: &str, action: NodeAction) -> Result<String, PanelError> {
        match action {
            NodeAction::QueueTask { target, task } => {
                return self.queue_task(actor, &target, &task).await;
            }
            NodeAction::ScanStart { fields } => {
                let request = ScanRequest::from_fields(&fields).map_err(PanelError::Fields)?;
                let service = &self.state.shared.widescan;
                let id = service.start(actor, &request).await.map_err(scan_error)?;
                return Ok(format!("scan job {id} started"));
            }
            NodeAction::ScanStop { job } => {
                let service = &self.state.shared.widescan;
                service.stop(actor, job).await.map_err(scan_error)?;
                return Ok(format!("scan job {job} stopping"));
            }
            NodeAction::ScanResume { job } => {
                let service = &self.state.shared.widescan;
                service.resume(actor, job).await.map_err(scan_error)?;
                return Ok(format!("scan job {job} resumed"));
            }
            _ => {}
        }
        self.node()?.run(actor, action).await.map_err(action_error)
    }

    async fn routines(&self) -> Result<Vec<RoutineRow>, PanelError> {
        Ok(self.node()?.routines())
    }

    async fn bootstrap_view(&self) -> Result<BootstrapView, PanelError> {
        let service = self.state.shared.bootstrap.as_deref().ok_or_else(|| {
            PanelError::Invalid("the bootstrap server is off ([bootstrap] enabled = false)".into())
        })?;
        service.view().await.map_err(|e| {
            tracing::error!(error = %e, "the bootstrap view failed");
            PanelError::Internal("the bootstrap registry is unavailable; see the server log".into())
        })
    }

    async fn widescan_view(&self, job: Option<i64>) -> Result<WidescanView, PanelError> {
        self.state.shared.widescan.view(job).await.map_err(internal)
    }
}
