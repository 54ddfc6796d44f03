//! The HTTP surface: one router, its middleware, and the JSON/form endpoints.
//!
//! Request path through the layers (outermost first): tracing → metrics →
//! Host allow-list → timeout → compression → [`guard`] (Origin check,
//! session, CSRF) → body limit → handler. Leptos pages and server functions are
//! ordinary routes behind the same guard.

pub mod auth_routes;
pub mod bootstrap;
pub mod error;
pub mod guard;
pub mod host;
pub mod live;
pub mod metrics;
pub mod parser;
pub mod path;
pub mod process_metrics;
pub mod widescan;

use std::time::Duration;

use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    http::StatusCode,
    middleware,
    response::IntoResponse,
    routing::{get, post},
};
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower::ServiceBuilder;
use tower_http::{
    compression::CompressionLayer, limit::RequestBodyLimitLayer, timeout::TimeoutLayer,
    trace::TraceLayer,
};

use crate::{panel::Panel, state::AppState};

/// Builds the complete application router.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(app::App);
    let panel: std::sync::Arc<dyn app::ssr::PanelBackend> =
        std::sync::Arc::new(Panel::new(state.clone()));
    let limit = state.shared.config.body_limit;
    let timeout = state.shared.config.request_timeout;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::render))
        .route("/login", get(auth_routes::login_page))
        .route("/auth/login", post(auth_routes::login))
        .route("/auth/logout", post(auth_routes::logout))
        .route("/api/parser/input", post(parser::input))
        .route("/api/parser/output", get(parser::output))
        .route("/api/live", get(live::stream))
        .merge(bootstrap::routes())
        .merge(widescan::routes())
        .leptos_routes_with_context(&state, routes, move || provide_context(panel.clone()), {
            let options = state.leptos.clone();
            move || app::shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(
            app::shell,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(TraceLayer::new_for_http())
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    metrics::record,
                ))
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    host::allow_list,
                ))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    timeout,
                ))
                .layer(DefaultBodyLimit::max(limit))
                .layer(CompressionLayer::new())
                .layer(middleware::from_fn_with_state(state.clone(), guard::guard))
                // Innermost: it changes the body type, which `from_fn` layers cannot take.
                .layer(RequestBodyLimitLayer::new(limit)),
        )
        .with_state(state)
}

/// `GET /healthz`: 200 when the database answers, 503 otherwise.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let db = tokio::time::timeout(Duration::from_secs(2), state.shared.store.ping()).await;
    match db {
        Ok(Ok(())) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok"})),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: database error");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"status": "database unavailable"})),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "database timeout"})),
        ),
    }
}
