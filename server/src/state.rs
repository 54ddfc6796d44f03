//! What every request handler can reach.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::rate_limit::LoginLimiter, config::Config, http::metrics::HttpMetrics, node::NodeService,
    store::Store, terminal::Transcripts,
};

/// Shared server state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Everything but the Leptos options.
    pub shared: Arc<Shared>,
    /// Where the panel's assets live and what they are called.
    pub leptos: LeptosOptions,
}

/// The state behind the `Arc`.
pub struct Shared {
    /// Validated configuration.
    pub config: Config,
    /// The database.
    pub store: Arc<dyn Store>,
    /// When the server started.
    pub started: Instant,
    /// Addresses actually bound (a configured port 0 becomes the real port).
    pub listen_addresses: Vec<SocketAddr>,
    /// Login throttling.
    pub login_limiter: LoginLimiter,
    /// Terminal transcripts.
    pub transcripts: Transcripts,
    /// Request counters and latencies.
    pub metrics: HttpMetrics,
    /// The bootstrap API (`None` when `[bootstrap] enabled = false`).
    pub bootstrap: Option<Arc<crate::bootstrap::BootstrapService>>,
    /// The embedded peer node (`None` when `[node] enabled = false`).
    pub node: Option<Arc<NodeService>>,
    /// Scan jobs.
    pub widescan: Arc<crate::widescan::WidescanService>,
    /// The settings the server started with (stored over the file), to
    /// tell which stored changes wait for a restart.
    pub settings_at_start: app::api::EditableSettings,
    /// Cancelled when the server starts to shut down: long-lived responses
    /// (the live stream) end on it, so the graceful drain can finish.
    pub shutdown: CancellationToken,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

/// Milliseconds since the Unix epoch, the time unit stored in the database.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
