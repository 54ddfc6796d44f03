//! Prometheus metrics: request counts and latencies, served at `/metrics`.
//!
//! The registry lives in the server state (no global recorder), so several
//! servers in one process (as in the tests) keep separate figures.
//!
//! Every label takes its values from a fixed, small set, because each new
//! value is a new series kept until restart and `/metrics` needs no login:
//! the method is one of the nine standard methods or `other` (any token is
//! a valid method on the wire), the route is the matched route template or
//! one of two fallback names (never the raw path), and the status is the
//! numeric code the server chose.

use std::{sync::Mutex, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

use crate::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

/// The HTTP metrics and their registry.
pub struct HttpMetrics {
    registry: Mutex<Registry>,
    process: super::process_metrics::ProcessMetrics,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        let mut registry = Registry::with_prefix("p2pnet");
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            latency.clone(),
        );
        let process = super::process_metrics::ProcessMetrics::default();
        process.register(&mut registry);
        Self {
            registry: Mutex::new(registry),
            process,
            requests,
            latency,
        }
    }
}

impl HttpMetrics {
    fn observe(&self, method: &str, route: &str, status: StatusCode, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.into(),
                route: route.into(),
                status: status.as_u16(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.into(),
                route: route.into(),
            })
            .observe(seconds);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        self.process.refresh();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        encode(&mut out, &registry)?;
        Ok(out)
    }
}

/// Middleware recording every request.
pub async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    let route = req.extensions().get::<MatchedPath>().map_or_else(
        || fallback_route(req.uri().path()).to_owned(),
        |m| m.as_str().to_owned(),
    );
    let response = next.run(req).await;
    state.shared.metrics.observe(
        method,
        &route,
        response.status(),
        start.elapsed().as_secs_f64(),
    );
    response
}

/// The method's label: a standard method's name, otherwise `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// A bounded label for requests no route matched (static files, 404s).
fn fallback_route(path: &str) -> &'static str {
    if path.starts_with("/pkg/") {
        "/pkg/*"
    } else {
        "fallback"
    }
}

/// `GET /metrics`
pub async fn render(State(state): State<AppState>) -> Response {
    match state.shared.metrics.encode() {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for invented in ["XYZZY", "get", "PROPFIND", "G3T"] {
            let method = Method::from_bytes(invented.as_bytes()).expect("token");
            assert_eq!(method_label(&method), "other", "{invented}");
        }
    }
}
