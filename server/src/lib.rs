//! The P2PNet server: control panel, terminal API and database, in one axum
//! application. `main.rs` is a thin wrapper around [`Server`].
//!
//! # Layout
//! - [`config`]: file + environment + flags → validated [`config::Config`].
//! - [`store`]: the [`store::Store`] trait with SQLite and PostgreSQL behind it.
//! - [`auth`]: password hashing, session tokens, login throttling.
//! - [`http`]: the router and its middleware; [`panel`] answers the Leptos
//!   server functions; [`terminal`] parses and runs terminal commands.
//! - [`settings`]: run-time settings persisted in the store.
//! - [`widescan`]: scan jobs run in the background, stored and resumable.
//! - [`telemetry`], [`shutdown`]: process concerns used by the binary.

// The panel's pages are nested view types; rendering them on the server
// (`RenderHtml::resolve`) goes deeper than the default limit of 128.
#![recursion_limit = "256"]

pub mod auth;
pub mod bootstrap;
pub mod client_limit;
pub mod config;
pub mod http;
pub mod node;
pub mod panel;
pub mod settings;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod terminal;
pub mod widescan;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use leptos::config::LeptosOptions;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    config::Config,
    state::{AppState, Shared, now_ms},
    store::{NewAudit, Store, StoreError},
};

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Hashing the administrator password failed.
    #[error("cannot hash the administrator password: {0}")]
    Password(String),
    /// Serving HTTP failed.
    #[error("HTTP server error: {0}")]
    Serve(#[source] std::io::Error),
    /// Authority mode, and the authority key could not be loaded or made.
    #[error("bootstrap authority key: {0}")]
    Authority(String),
    /// The embedded peer node could not start.
    #[error(transparent)]
    Node(#[from] node::NodeError),
}

/// How often expired sessions are deleted.
const SESSION_SWEEP_INTERVAL: Duration = Duration::from_secs(600);

/// A server with its database open and its sockets bound, not yet serving.
pub struct Server {
    state: AppState,
    listeners: Vec<TcpListener>,
    generated_password: Option<String>,
}

impl Server {
    /// Opens the store, creates the administrator if needed, binds the listeners.
    pub async fn bind(config: Config) -> Result<Self, ServerError> {
        let store = store::connect(
            &config.database_url,
            config.database_max_connections,
            config.database_connect_timeout,
        )
        .await?;
        let generated_password = ensure_admin(store.as_ref(), &config).await?;

        let mut listeners = Vec::with_capacity(config.listen.len());
        for &addr in &config.listen {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind { addr, source })?;
            listeners.push(listener);
        }
        let listen_addresses = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<Result<Vec<_>, _>>()
            .map_err(ServerError::Serve)?;

        // Settings stored from the panel are laid over the file's `[node]`.
        let settings_at_start = settings::load(store.as_ref(), &config).await?;
        let node_config = settings::node_config(&config, &settings_at_start).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "stored node settings are not valid; using the configuration's");
            config.node.clone()
        });
        let node = if node_config.enabled {
            Some(Arc::new(
                node::NodeService::start(&node_config, store.clone()).await?,
            ))
        } else {
            None
        };

        let leptos = LeptosOptions::builder()
            .output_name("p2pnet")
            .site_root(config.site_root.display().to_string())
            .site_pkg_dir("pkg")
            .site_addr(listen_addresses[0])
            .build();
        let bootstrap = if config.bootstrap.enabled {
            let authority = match config.bootstrap.mode {
                bootstrap::Mode::Trustless => None,
                bootstrap::Mode::Authority => Some(
                    bootstrap::Authority::load(&config.keys_dir, &config.bootstrap)
                        .map_err(ServerError::Authority)?,
                ),
            };
            Some(Arc::new(bootstrap::BootstrapService::new(
                config.bootstrap.clone(),
                store.clone(),
                authority,
            )))
        } else {
            None
        };
        let widescan = Arc::new(widescan::WidescanService::new(
            config.widescan.clone(),
            store.clone(),
            node.clone(),
        ));
        let shared = Shared {
            login_limiter: auth::rate_limit::LoginLimiter::new(config.login_attempts_per_minute),
            bootstrap,
            config,
            store,
            started: std::time::Instant::now(),
            listen_addresses,
            transcripts: terminal::Transcripts::default(),
            metrics: http::metrics::HttpMetrics::default(),
            node,
            widescan,
            settings_at_start,
            shutdown: CancellationToken::new(),
        };
        Ok(Self {
            state: AppState {
                shared: Arc::new(shared),
                leptos,
            },
            listeners,
            generated_password,
        })
    }

    /// The administrator password generated at this start, if one was.
    /// Show it to the operator once; it is not stored anywhere in clear.
    pub fn take_generated_password(&mut self) -> Option<String> {
        self.generated_password.take()
    }

    /// The bound addresses.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.state.shared.listen_addresses
    }

    /// The embedded peer node, when it runs (for tests and tools).
    pub fn node(&self) -> Option<Arc<node::NodeService>> {
        self.state.shared.node.clone()
    }

    /// The bootstrap service, when `[bootstrap] enabled`.
    pub fn bootstrap(&self) -> Option<Arc<bootstrap::BootstrapService>> {
        self.state.shared.bootstrap.clone()
    }

    /// The scan jobs (for tests and tools).
    pub fn widescan(&self) -> Arc<widescan::WidescanService> {
        self.state.shared.widescan.clone()
    }

    /// The store (for tests and tools).
    pub fn store(&self) -> Arc<dyn Store> {
        self.state.shared.store.clone()
    }

    /// Serves until `shutdown` is cancelled, then drains connections and
    /// closes the store.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), ServerError> {
        // Jobs a stop interrupted continue where they were, before any
        // request can start one (a job started meanwhile is no leftover);
        // at shutdown they stop at once, storing their checkpoints, while
        // HTTP drains.
        if let Err(e) = self.state.shared.widescan.restore().await {
            tracing::warn!(error = %e, "cannot restore the scan jobs");
        }
        let router = http::router(self.state.clone());
        let mut tasks = JoinSet::new();
        for listener in self.listeners {
            let app = router
                .clone()
                .into_make_service_with_connect_info::<SocketAddr>();
            let token = shutdown.clone();
            let streams = self.state.shared.shutdown.clone();
            tasks.spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        token.cancelled().await;
                        // Open live streams end now; the drain waits for them.
                        streams.cancel();
                    })
                    .await
            });
        }
        let sweeper = tokio::spawn(sweep_sessions(
            self.state.shared.store.clone(),
            shutdown.clone(),
        ));
        for addr in &self.state.shared.listen_addresses {
            tracing::info!(%addr, "listening");
        }
        let scans = tokio::spawn({
            let widescan = self.state.shared.widescan.clone();
            let token = shutdown.clone();
            async move {
                token.cancelled().await;
                widescan.shutdown().await;
            }
        });
        let mut result = Ok(());
        while let Some(joined) = tasks.join_next().await {
            let outcome = match joined {
                Ok(r) => r.map_err(ServerError::Serve),
                Err(e) => Err(ServerError::Serve(std::io::Error::other(e))),
            };
            if let Err(e) = outcome {
                // One listener failing takes the whole server down cleanly.
                shutdown.cancel();
                result = result.and(Err(e));
            }
        }
        shutdown.cancel();
        let _ = sweeper.await;
        let _ = scans.await;
        // Order: HTTP has drained and the scan jobs have stored their
        // checkpoints (and stopped handing peers to the node); the node
        // stops (and saves) before the store it saves to closes.
        if let Some(node) = &self.state.shared.node {
            node.stop().await;
        }
        self.state.shared.store.close().await;
        tracing::info!("stopped");
        result
    }
}

/// Creates the administrator on first start. Returns the password if it was
/// generated (none configured), so the caller can show it once.
async fn ensure_admin(store: &dyn Store, config: &Config) -> Result<Option<String>, ServerError> {
    if store.find_admin(&config.admin_user).await?.is_some() {
        return Ok(None);
    }
    let (password, generated) = match &config.admin_password {
        Some(p) => (p.clone(), false),
        None => (auth::password::generate(), true),
    };
    let to_hash = password.clone();
    let phc = tokio::task::spawn_blocking(move || auth::password::hash(&to_hash))
        .await
        .map_err(|e| ServerError::Password(e.to_string()))?
        .map_err(|e| ServerError::Password(e.to_string()))?;
    let created = store
        .create_admin_if_absent(&config.admin_user, &phc, now_ms())
        .await?;
    if !created {
        // Another instance sharing the database created it first.
        return Ok(None);
    }
    store
        .append_audit(&NewAudit {
            at_ms: now_ms(),
            actor: "system".into(),
            action: "auth.admin_created".into(),
            detail: format!(
                "user={} password={}",
                config.admin_user,
                if generated {
                    "generated"
                } else {
                    "from configuration"
                }
            ),
        })
        .await?;
    tracing::info!(user = %config.admin_user, generated, "administrator created");
    Ok(generated.then_some(password))
}

async fn sweep_sessions(store: Arc<dyn Store>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(SESSION_SWEEP_INTERVAL);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => match store.delete_expired_sessions(now_ms()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(removed = n, "expired sessions removed"),
                Err(e) => tracing::warn!(error = %e, "cannot remove expired sessions"),
            },
        }
    }
}
