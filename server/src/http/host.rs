//! Host-header allow-list, against DNS rebinding.
//!
//! A page on an attacker's domain that re-resolves to 127.0.0.1 would reach
//! the panel with its own domain in `Host`; only configured names pass.

use axum::{
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::state::AppState;

/// Refuses requests whose `Host` is not allowed.
pub async fn allow_list(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    match host {
        Some(host) if is_allowed(host, &state.shared.config.allowed_hosts) => next.run(req).await,
        _ => {
            tracing::info!(host = ?host, "refused request for a host not in server.allowed_hosts");
            (
                StatusCode::MISDIRECTED_REQUEST,
                "this server does not answer for that host name\n",
            )
                .into_response()
        }
    }
}

/// Whether `host` (as sent, maybe with a port) is in `allowed`.
pub fn is_allowed(host: &str, allowed: &[String]) -> bool {
    let name = strip_port(host).to_ascii_lowercase();
    allowed.contains(&name)
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [v6]:port → [v6]
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        ["localhost", "127.0.0.1", "[::1]", "p2p.example.org"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }

    #[test]
    fn local_and_configured_names_pass_with_or_without_port() {
        for host in [
            "localhost",
            "LOCALHOST:3000",
            "127.0.0.1:8080",
            "[::1]:3000",
            "[::1]",
            "p2p.example.org",
        ] {
            assert!(is_allowed(host, &allowed()), "{host}");
        }
    }

    #[test]
    fn other_names_are_refused() {
        for host in [
            "evil.example",
            "127.0.0.2",
            "localhost.evil.example",
            "p2p.example.org.evil",
            "",
            "[::2]:80",
        ] {
            assert!(!is_allowed(host, &allowed()), "{host}");
        }
    }
}
