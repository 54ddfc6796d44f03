//! A scan job's findings as a download: `GET
//! /api/v1/widescan/jobs/{id}/results.csv` or `…/results.ndjson`, behind
//! the session like every panel route. The rows are read from the store
//! a page at a time while the response is written.

use axum::{
    Router,
    body::Body,
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

use crate::{
    state::AppState,
    widescan::export::{Format, PAGE},
};

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/widescan/jobs/{id}/{file}", get(results))
}

async fn results(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
) -> Response {
    let Some(format) = file
        .strip_prefix("results.")
        .and_then(Format::from_extension)
    else {
        return (
            StatusCode::NOT_FOUND,
            "no such download: results.csv or results.ndjson\n",
        )
            .into_response();
    };
    let Ok(id) = id.parse::<i64>() else {
        return (StatusCode::BAD_REQUEST, "the job id is a number\n").into_response();
    };
    let store = state.shared.store.clone();
    match store.scan_job(id).await {
        Ok(Some(_)) => {}
        Ok(None) => return (StatusCode::NOT_FOUND, "no such scan job\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "scan results unavailable");
            return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response();
        }
    }
    // Pages by row id: rows stored during the download follow in order.
    let pages = futures_util::stream::unfold((Some(0i64), true), move |(after, first)| {
        let store = store.clone();
        async move {
            let after = after?;
            let mut chunk = if first {
                format.header().to_owned()
            } else {
                String::new()
            };
            let rows = match store.scan_results_after(id, after, PAGE).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, job = id, "scan results download cut short");
                    return Some((Err(std::io::Error::other("database error")), (None, false)));
                }
            };
            let next = (rows.len() as i64 == PAGE).then(|| rows.last().map_or(after, |r| r.id));
            for row in &rows {
                chunk.push_str(&format.line(id, row));
            }
            if chunk.is_empty() && next.is_none() {
                return None;
            }
            Some((Ok::<_, std::io::Error>(chunk), (next, false)))
        }
    });
    // Fused: the compression layer polls once more after the end, which a
    // bare `unfold` answers with a panic.
    let mut response = Body::from_stream(futures_util::StreamExt::fuse(pages)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    let name = format!(
        "attachment; filename=\"scan-{id}-results.{}\"",
        if format == Format::Csv {
            "csv"
        } else {
            "ndjson"
        }
    );
    if let Ok(value) = HeaderValue::from_str(&name) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}
