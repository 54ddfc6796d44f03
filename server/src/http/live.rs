//! `GET /api/live`: the node's live feed as server-sent events, each
//! message one [`app::api::LiveEvent`] as JSON with its `seq` as the SSE
//! id. The feed's logic and bounds are in `node/live.rs`; this adapts it
//! to HTTP: the resume cursor, the 503 when every stream slot is taken,
//! and the end of every stream when the server shuts down (graceful
//! shutdown waits for open responses, so a stream that outlived it would
//! hold the server up).

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::{Query, State, rejection::QueryRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures_util::stream;
use serde::Deserialize;

use crate::{http::error::ApiError, state::AppState};

/// How long a client turned away for lack of stream slots should wait.
const RETRY_AFTER_SECS: &str = "5";
/// A comment this often lets proxies keep the connection and lets the
/// server notice a client that went away without a word.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `?after=N`: the last `seq` the client saw (it reconnects).
#[derive(Deserialize)]
pub struct LiveQuery {
    after: Option<u64>,
}

/// The stream; see the module docs.
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<LiveQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(e) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("bad query: {}", e.body_text()),
            )
            .into_response();
        }
    };
    let Some(node) = state.shared.node.clone() else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "the peer node is off ([node] enabled = false)",
        )
        .into_response();
    };
    // The browser's own reconnect sends the last id as a header.
    let after = query.after.or_else(|| {
        headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
    });
    let subscription = match node.live().subscribe(after) {
        Ok(subscription) => subscription,
        Err(busy) => {
            let mut response =
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, busy.to_string()).into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
            return response;
        }
    };
    let shutdown = state.shared.shutdown.clone();
    let events = stream::unfold(
        (subscription, shutdown),
        |(mut subscription, shutdown)| async move {
            let event = tokio::select! {
                () = shutdown.cancelled() => return None,
                event = subscription.next() => event?,
            };
            let data = match serde_json::to_string(&*event) {
                Ok(data) => data,
                Err(e) => {
                    tracing::error!(error = %e, "live event not encodable");
                    return None;
                }
            };
            let mut sse = Event::default().data(data);
            // `lagged` is outside the sequence: no id, so a reconnect
            // resumes after the last real event.
            if event.seq > 0 {
                sse = sse.id(event.seq.to_string());
            }
            Some((Ok::<_, Infallible>(sse), (subscription, shutdown)))
        },
    );
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    // nginx would otherwise buffer the stream (README: deploy behind one).
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
