//! The bootstrap API over HTTP; the logic is in `crate::bootstrap`.
//!
//! Paths: the seed's `/api/Bootstrap/...` and the versioned
//! `/api/v1/bootstrap/...` name the same handlers. The API needs no
//! session (a record's signature is its authentication), so the guard
//! lets it through without one. The OpenAPI description is served at
//! `/api/v1/bootstrap/openapi.json`.

use std::net::SocketAddr;

use axum::{
    Json, Router,
    extract::{ConnectInfo, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use p2pnet::proto::record::MAX_RECORD_TEXT_LEN;
use serde::{Deserialize, Serialize};

use crate::{
    bootstrap::{AnnounceError, AnnounceOutcome, BootstrapService},
    http::{
        auth_routes::client_ip,
        error::{ApiError, ApiJson},
    },
    state::AppState,
};

/// The OpenAPI description of this API.
const OPENAPI: &str = include_str!("../../openapi/bootstrap.json");

/// Whether `path` (canonical) belongs to this API.
pub fn is_bootstrap_path(path: &str) -> bool {
    path.starts_with("/api/Bootstrap/") || path.starts_with("/api/v1/bootstrap/")
}

/// The routes, under both prefixes.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for prefix in ["/api/Bootstrap", "/api/v1/bootstrap"] {
        router = router
            .route(&format!("{prefix}/peers"), get(peers).put(announce))
            .route(&format!("{prefix}/announce"), axum::routing::post(announce))
            .route(&format!("{prefix}/publicip"), get(public_ip))
            .route(&format!("{prefix}/authority"), get(authority))
            .route(
                &format!("{prefix}/heartbeat"),
                axum::routing::post(heartbeat),
            )
            .route(&format!("{prefix}/verify"), axum::routing::post(verify))
            .route(&format!("{prefix}/history"), get(history));
    }
    router.route("/api/v1/bootstrap/openapi.json", get(openapi))
}

/// The body of an announce.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnounceBody {
    /// The self-signed record, its text form.
    record: String,
}

#[derive(Serialize)]
struct AnnounceReply {
    status: &'static str,
    reannounce_after: u64,
}

fn service(state: &AppState) -> Result<&BootstrapService, ApiError> {
    state.shared.bootstrap.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "the bootstrap API is off ([bootstrap] enabled = false)",
        )
    })
}

/// `GET /api/Bootstrap/peers`: the snapshot; 304 for a matching
/// `If-None-Match`.
async fn peers(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let service = match service(&state) {
        Ok(service) => service,
        Err(e) => return e.into_response(),
    };
    let served = match service.snapshot().await {
        Ok(served) => served,
        Err(e) => return ApiError::internal(&e).into_response(),
    };
    let etag = HeaderValue::from_str(&served.etag).ok();
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == served.etag));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else if accepts_gzip(&headers) {
        // Already gzipped: the compression layer leaves it as it is.
        (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CONTENT_ENCODING, "gzip"),
            ],
            served.body_gzip.clone(),
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/json")],
            served.body.clone(),
        )
            .into_response()
    };
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Whether the client takes gzip (`Accept-Encoding: gzip`, not `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// `PUT /api/Bootstrap/peers` (and `POST .../announce`): stores a record.
async fn announce(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AnnounceBody>,
) -> Response {
    let service = match service(&state) {
        Ok(service) => service,
        Err(e) => return e.into_response(),
    };
    if body.record.len() > MAX_RECORD_TEXT_LEN {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a record is at most {MAX_RECORD_TEXT_LEN} bytes"),
        )
        .into_response();
    }
    let from = client_ip(peer, &headers, state.shared.config.trust_forwarded_for);
    let reannounce = service.config().reannounce_after.as_secs();
    match service.announce(&body.record, from).await {
        Ok(outcome) => {
            let status = match outcome {
                AnnounceOutcome::Stored => "stored",
                AnnounceOutcome::Unchanged => "unchanged",
            };
            let mut response = Json(AnnounceReply {
                status,
                reannounce_after: reannounce,
            })
            .into_response();
            response
                .headers_mut()
                .insert("reannounce-after", HeaderValue::from(reannounce));
            response
        }
        Err(e) => announce_error(e),
    }
}

fn announce_error(e: AnnounceError) -> Response {
    let (status, retry_after) = match &e {
        AnnounceError::Invalid(_) => (StatusCode::BAD_REQUEST, None),
        AnnounceError::Stale { .. } => (StatusCode::CONFLICT, None),
        AnnounceError::TooMany(wait) => (StatusCode::TOO_MANY_REQUESTS, Some(wait.as_secs() + 1)),
        AnnounceError::Full => (StatusCode::SERVICE_UNAVAILABLE, Some(300)),
        AnnounceError::Store(store) => return ApiError::internal(store).into_response(),
    };
    let mut response = ApiError::new(status, e.to_string()).into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// `GET /api/Bootstrap/publicip`: the address this server sees.
async fn public_ip(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let service = match service(&state) {
        Ok(service) => service,
        Err(e) => return e.into_response(),
    };
    if !service.config().public_ip {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "off on this server ([bootstrap] public_ip = false)",
        )
        .into_response();
    }
    let ip = client_ip(peer, &headers, state.shared.config.trust_forwarded_for);
    Json(serde_json::json!({ "ip": ip.to_canonical().to_string() })).into_response()
}

/// `GET /api/Bootstrap/authority`: the key a client pins, and its past
/// rotations; 404 in trustless mode.
async fn authority(State(state): State<AppState>) -> Response {
    let service = match service(&state) {
        Ok(service) => service,
        Err(e) => return e.into_response(),
    };
    let Some(authority) = service.authority() else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "this server runs in trustless mode: it has no authority key",
        )
        .into_response();
    };
    Json(serde_json::json!({
        "fingerprint": authority.key.fingerprint(),
        "certificate": authority.key.certificate_armored(),
        "rotations": authority.rotations,
    }))
    .into_response()
}

/// The body of a heartbeat.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatBody {
    /// The self-signed heartbeat, its text form.
    heartbeat: String,
}

/// `POST .../heartbeat`: the signed tasks queued for the peer.
async fn heartbeat(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<HeartbeatBody>,
) -> Response {
    use crate::bootstrap::tasks::HeartbeatError;
    let service = match service(&state) {
        Ok(service) => service,
        Err(e) => return e.into_response(),
    };
    if body.heartbeat.len() > p2pnet::proto::heartbeat::MAX_HEARTBEAT_TEXT_LEN {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "heartbeat too large").into_response();
    }
    let from = client_ip(peer, &headers, state.shared.config.trust_forwarded_for);
    match service.heartbeat(&body.heartbeat, from).await {
        Ok(tasks) => Json(serde_json::json!({
            "tasks": tasks,
            "heartbeat_after": service.config().reannounce_after.as_secs(),
        }))
        .into_response(),
        Err(e) => {
            let status = match &e {
                HeartbeatError::Invalid(_) => StatusCode::BAD_REQUEST,
                HeartbeatError::NotHere(_) => StatusCode::NOT_FOUND,
                HeartbeatError::Replayed => StatusCode::CONFLICT,
                HeartbeatError::TooMany(wait) => {
                    let mut response =
                        ApiError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string()).into_response();
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs() + 1));
                    return response;
                }
                HeartbeatError::Store(store) => return ApiError::internal(store).into_response(),
            };
            ApiError::new(status, e.to_string()).into_response()
        }
    }
}

/// The body of a verify request: the SHA-256 (hex) of the signed bytes,
/// or an armored signature.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    signature: Option<String>,
}

/// `POST .../verify`: whether this server signed bytes with this digest.
async fn verify(State(state): State<AppState>, ApiJson(body): ApiJson<VerifyBody>) -> Response {
    let service = match service(&state) {
        Ok(service) => service,
        Err(e) => return e.into_response(),
    };
    let digest = match (body.digest, body.signature) {
        (Some(digest), None) => {
            let digest = digest.trim().to_owned();
            if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "digest must be a SHA-256 in hex (64 characters)",
                )
                .into_response();
            }
            digest
        }
        (None, Some(signature)) if signature.len() <= 16 * 1024 => {
            crate::store::signature_digest(&signature)
        }
        _ => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "give either `digest` (SHA-256 of the signed bytes, hex) or `signature` (armored, at most 16 KiB)",
            )
            .into_response();
        }
    };
    match service.issued(&digest).await {
        Ok(entries) => Json(serde_json::json!({
            "issued": !entries.is_empty(),
            "entries": entries,
        }))
        .into_response(),
        Err(e) => ApiError::internal(&e).into_response(),
    }
}

/// `?after=N&limit=M`
#[derive(Deserialize)]
pub struct HistoryQuery {
    #[serde(default)]
    after: i64,
    #[serde(default = "default_history_limit")]
    limit: i64,
}

fn default_history_limit() -> i64 {
    100
}

/// `GET .../history`: the signing history, oldest first, hash-chained.
async fn history(
    State(state): State<AppState>,
    query: Result<axum::extract::Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let service = match service(&state) {
        Ok(service) => service,
        Err(e) => return e.into_response(),
    };
    let Ok(axum::extract::Query(query)) = query else {
        return ApiError::new(StatusCode::BAD_REQUEST, "after and limit are whole numbers")
            .into_response();
    };
    match service.history(query.after, query.limit).await {
        Ok(entries) => Json(serde_json::json!({ "entries": entries })).into_response(),
        Err(e) => ApiError::internal(&e).into_response(),
    }
}

/// `GET /api/v1/bootstrap/openapi.json`.
async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
