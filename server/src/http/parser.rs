//! The terminal API: `POST /api/parser/input`, `GET /api/parser/output`.
//!
//! Every input line is recorded in the audit log before it runs. A line that
//! does not parse is answered with an error line in the transcript (HTTP
//! 200: the input was received and handled); only a malformed request body
//! is an HTTP error.

use axum::{
    Extension, Json,
    extract::{Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use serde::Deserialize;

use app::api::{TerminalInput, TerminalLineKind, TerminalOutput};

use crate::{
    http::{
        error::{ApiError, ApiJson},
        guard::AuthSession,
    },
    state::{AppState, now_ms},
    store::NewAudit,
    terminal,
};

/// Runs one command line and returns the lines it added to the transcript.
pub async fn input(
    State(state): State<AppState>,
    Extension(session): Extension<AuthSession>,
    ApiJson(body): ApiJson<TerminalInput>,
) -> Result<Json<TerminalOutput>, ApiError> {
    let shown = printable(&body.line);
    state
        .shared
        .store
        .append_audit(&NewAudit {
            at_ms: now_ms(),
            actor: session.username.clone(),
            action: "terminal.input".into(),
            detail: shown.clone(),
        })
        .await?;
    let mut lines = vec![(TerminalLineKind::Input, format!("› {shown}"))];
    match terminal::run(&state, &session, &body.line).await {
        Ok(output) => lines.extend(output.into_iter().map(|l| (TerminalLineKind::Output, l))),
        Err(e) => lines.push((TerminalLineKind::Error, e.to_string())),
    }
    let (lines, next) = state.shared.transcripts.push(&session.token_hash, lines);
    Ok(Json(TerminalOutput { lines, next }))
}

/// `?after=N`: the sequence number of the last line already seen.
#[derive(Deserialize)]
pub struct OutputQuery {
    #[serde(default)]
    after: u64,
}

/// Transcript lines after `after`.
pub async fn output(
    State(state): State<AppState>,
    Extension(session): Extension<AuthSession>,
    query: Result<Query<OutputQuery>, QueryRejection>,
) -> Result<Json<TerminalOutput>, ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("bad query: {}", e.body_text()),
        )
    })?;
    let (lines, next) = state
        .shared
        .transcripts
        .since(&session.token_hash, query.after);
    Ok(Json(TerminalOutput { lines, next }))
}

/// The line as it may be shown and logged: bounded, control characters escaped.
fn printable(line: &str) -> String {
    let bounded: String = line.chars().take(terminal::command::MAX_LINE).collect();
    let escaped: String = bounded
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if bounded.len() < line.len() {
        format!("{escaped}…")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn printable_escapes_and_bounds() {
        assert_eq!(printable("help"), "help");
        assert_eq!(printable("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        let long = "x".repeat(5000);
        let shown = printable(&long);
        assert!(shown.ends_with('…') && shown.chars().count() == 1025);
    }
}
