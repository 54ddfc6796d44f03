//! The gate in front of every route: path check, same-origin check, session,
//! CSRF.
//!
//! 0. The path is judged in its percent-decoded form, and a path whose raw
//!    and decoded readings could name different resources (encoded `/`,
//!    `\`, `%` or unreserved characters, `.` or `..` segments, control
//!    characters) is refused with 400 before any handler runs; see
//!    [`canonical_path`]. Without this, `/pkg/%2e%2e/settings` counted as
//!    public and the Leptos router rendered `/settings` for it.
//!    The bootstrap API (`/api/Bootstrap/`, `/api/v1/bootstrap/`) goes on
//!    from here: its requests are authenticated by signatures, and it reads
//!    no cookie.
//! 1. A state-changing request (anything but GET/HEAD/OPTIONS) must come from
//!    this origin: a foreign `Origin`, or `Sec-Fetch-Site: cross-site`, is
//!    refused before anything else happens.
//! 2. The session cookie is resolved against the store; the session (if any)
//!    is put in the request extensions for handlers and Leptos.
//! 3. Every path except the public ones needs a session: pages redirect to
//!    `/login`, API calls get 401.
//! 4. A state-changing request with a session must echo the session's CSRF
//!    token, in the `x-csrf-token` header or (plain HTML forms) the
//!    `csrf_token` form field. Login has no session yet and relies on (1).

use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};

use app::session::{CSRF_FIELD, CSRF_HEADER, PanelSession};

use crate::{
    auth::session::{constant_time_eq, token_from_cookie_header, token_hash},
    http::{error::ApiError, path::canonical_path},
    state::{AppState, now_ms},
};

/// The authenticated session of a request.
#[derive(Clone, Debug)]
pub struct AuthSession {
    /// Hash of the cookie token: the session's key in the store.
    pub token_hash: String,
    /// Administrator name.
    pub username: String,
    /// The token state-changing requests must echo.
    pub csrf_token: String,
}

/// The middleware; see the module docs for the order of checks.
pub async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = match canonical_path(req.uri().path()) {
        Ok(path) => path,
        Err(why) => return ApiError::new(StatusCode::BAD_REQUEST, why.to_string()).into_response(),
    };
    // The bootstrap API is for machines, authenticated by signatures, not
    // by sessions: no cookie is read, so no CSRF can ride on one.
    if crate::http::bootstrap::is_bootstrap_path(&path) {
        return next.run(req).await;
    }
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state && !same_origin(req.headers()) {
        return ApiError::new(StatusCode::FORBIDDEN, "cross-origin request refused")
            .into_response();
    }

    let session = match load_session(&state, req.headers()).await {
        Ok(session) => session,
        Err(e) => return e.into_response(),
    };
    let Some(session) = session else {
        if is_public(&path) {
            return next.run(req).await;
        }
        if path.starts_with("/api/") || changes_state {
            return ApiError::new(StatusCode::UNAUTHORIZED, "not logged in").into_response();
        }
        let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
        return Redirect::to(&format!("/login?next={}", encode_component(target))).into_response();
    };

    if path == "/login" && *req.method() == Method::GET {
        return Redirect::to("/").into_response();
    }

    if changes_state {
        match csrf_token_of(req, state.shared.config.body_limit).await {
            Ok((rebuilt, Some(token))) if constant_time_eq(&token, &session.csrf_token) => {
                req = rebuilt
            }
            Ok(_) => {
                return ApiError::new(StatusCode::FORBIDDEN, "missing or wrong CSRF token")
                    .into_response();
            }
            Err(response) => return response,
        }
    }

    req.extensions_mut().insert(PanelSession {
        username: session.username.clone(),
        csrf_token: session.csrf_token.clone(),
    });
    req.extensions_mut().insert(session);
    next.run(req).await
}

async fn load_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<AuthSession>, ApiError> {
    let Some(token) = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(token_from_cookie_header)
    else {
        return Ok(None);
    };
    let hash = token_hash(token);
    let record = state.shared.store.find_session(&hash, now_ms()).await?;
    Ok(record.map(|r| AuthSession {
        token_hash: hash,
        username: r.username,
        csrf_token: r.csrf_token,
    }))
}

/// Paths reachable without a session; `path` is the decoded, canonical one.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/login" | "/auth/login" | "/healthz" | "/metrics" | "/favicon.svg" | "/robots.txt"
    ) || path.starts_with("/pkg/")
}

/// Whether a state-changing request comes from this origin (see module docs).
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if let Some(origin) = headers.get(header::ORIGIN) {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        return match (authority, host) {
            (Some(a), Some(h)) => a.eq_ignore_ascii_case(h),
            _ => false,
        };
    }
    // No Origin (older browsers, non-browser clients): fall back to Fetch Metadata.
    !headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site == "cross-site" || site == "same-site")
}

/// The CSRF token of a request: the header, or the form field of a
/// url-encoded body (read within `limit` and put back for the handler).
async fn csrf_token_of(req: Request, limit: usize) -> Result<(Request, Option<String>), Response> {
    if let Some(token) = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        let token = token.to_owned();
        return Ok((req, Some(token)));
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((req, None));
    }
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response()
    })?;
    let token = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned());
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}

/// Percent-encodes a query component.
fn encode_component(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_origin_rules() {
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "null")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(
            same_origin(&headers(&[("host", "127.0.0.1:3000")])),
            "curl-like clients"
        );
    }

    #[test]
    fn public_paths() {
        for p in [
            "/login",
            "/auth/login",
            "/healthz",
            "/metrics",
            "/pkg/p2pnet.js",
        ] {
            assert!(is_public(p), "{p}");
        }
        for p in [
            "/",
            "/peers",
            "/api/parser/input",
            "/auth/logout",
            "/pkgx",
            "/login/x",
        ] {
            assert!(!is_public(p), "{p}");
        }
    }
}
