//! `POST /auth/login` and `POST /auth/logout` (plain HTML form posts).

use std::{
    net::{IpAddr, SocketAddr},
    time::Instant,
};

use axum::{
    Extension, Form,
    extract::{ConnectInfo, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::{
    auth::{password, session},
    http::{error::ApiError, guard::AuthSession, path},
    state::{AppState, now_ms},
    store::{NewAudit, NewSession},
};

/// The login form.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// The query of `GET /login`.
#[derive(Deserialize)]
pub struct LoginQuery {
    /// Why the last attempt failed.
    error: Option<String>,
    /// Where to go after logging in.
    #[serde(default)]
    next: String,
}

/// `GET /login`: the login form, rendered here alone (it needs no script).
pub async fn login_page(Query(query): Query<LoginQuery>) -> Response {
    axum::response::Html(app::login_document(query.error.as_deref(), &query.next)).into_response()
}

/// Checks the credentials; on success sets the session cookie and redirects.
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, ApiError> {
    let shared = &state.shared;
    let client = client_ip(peer, &headers, shared.config.trust_forwarded_for);
    let username: String = form
        .username
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();

    let limiter = &shared.login_limiter;
    if let Err(wait) = limiter.check(client, Instant::now()) {
        limiter
            .refusals()
            .record(
                shared.store.as_ref(),
                "auth.login_throttled",
                client,
                &username,
                Instant::now(),
                now_ms(),
            )
            .await?;
        let secs = wait.as_secs().max(1);
        return Ok(retry_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            &format!("Too many login attempts. Try again in {secs} s."),
            "/login?error=rate",
            secs,
        ));
    }
    // The attempt has already spent its limiter token, so retrying a busy
    // server is not free for anyone.
    let Some(permit) = limiter.try_password_check() else {
        tracing::debug!(%client, "login refused: password checks at capacity");
        return Ok(retry_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            "The server is checking other logins. Try again in a moment.",
            "/login",
            BUSY_RETRY_AFTER_SECS,
        ));
    };

    let admin = shared.store.find_admin(&username).await?;
    let candidate = form.password;
    let phc = admin.as_ref().map_or_else(
        || password::decoy_hash().to_owned(),
        |a| a.password_hash.clone(),
    );
    let valid = tokio::task::spawn_blocking(move || {
        // Held until Argon2 returns, even if the request is dropped meanwhile.
        let _permit = permit;
        password::verify(&candidate, &phc)
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    let admin = match admin {
        Some(admin) if valid => admin,
        _ => {
            limiter
                .refusals()
                .record(
                    shared.store.as_ref(),
                    "auth.login_failed",
                    client,
                    &username,
                    Instant::now(),
                    now_ms(),
                )
                .await?;
            tracing::info!(%client, "failed login");
            return Ok(Redirect::to("/login?error=invalid").into_response());
        }
    };

    let token = session::new_token();
    let now = now_ms();
    let ttl = shared.config.session_ttl;
    shared
        .store
        .create_session(&NewSession {
            token_hash: session::token_hash(&token),
            admin_id: admin.id,
            csrf_token: session::new_token(),
            created_at_ms: now,
            expires_at_ms: now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
        })
        .await?;
    audit(
        &state,
        &admin.username,
        "auth.login",
        format!("from {client}"),
    )
    .await?;
    tracing::info!(user = %admin.username, %client, "login");

    let mut response = Redirect::to(safe_next(&form.next)).into_response();
    let cookie = session::set_cookie(&token, ttl.as_secs(), shared.config.secure_cookies);
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal(&e))?,
    );
    Ok(response)
}

/// What a login refused with 503 (password checks at capacity) is told to
/// wait: Argon2 takes tens of milliseconds, so a second is plenty.
const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// A small HTML page for a refused login, with `Retry-After`.
fn retry_page(
    status: StatusCode,
    title: &str,
    message: &str,
    back: &str,
    retry_after_secs: u64,
) -> Response {
    let mut response = (
        status,
        Html(format!(
            "<!DOCTYPE html><title>{title}</title><p>{message}</p>\
             <p><a href=\"{back}\">Back to login</a></p>"
        )),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

/// Ends the session (the guard already checked its CSRF token).
pub async fn logout(
    State(state): State<AppState>,
    Extension(session): Extension<AuthSession>,
) -> Result<Response, ApiError> {
    state
        .shared
        .store
        .delete_session(&session.token_hash)
        .await?;
    state.shared.transcripts.remove(&session.token_hash);
    audit(&state, &session.username, "auth.logout", String::new()).await?;
    let mut response = Redirect::to("/login").into_response();
    let cookie = session::clear_cookie(state.shared.config.secure_cookies);
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal(&e))?,
    );
    Ok(response)
}

async fn audit(
    state: &AppState,
    actor: &str,
    action: &str,
    detail: String,
) -> Result<(), ApiError> {
    let entry = NewAudit {
        at_ms: now_ms(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        detail,
    };
    state.shared.store.append_audit(&entry).await?;
    Ok(())
}

/// The client address: the socket peer, or, when the operator said a trusted
/// proxy sets `X-Forwarded-For`, the entry that proxy appended.
///
/// That is the last entry of the last header line: everything before it was
/// written by the client (or by proxies nobody vouched for) and can be
/// forged, so trusting the first entry let a client pick its own limiter
/// budget and audit address. A last entry that is not an address (a
/// misconfigured proxy) falls back to the socket peer, never to an earlier
/// entry. `IP:port` and `[IPv6]:port` forms are accepted.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trust_forwarded_for: bool) -> IpAddr {
    if trust_forwarded_for
        && let Some(ip) = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|last| parse_forwarded_address(last.trim()))
    {
        return ip;
    }
    peer.ip()
}

fn parse_forwarded_address(entry: &str) -> Option<IpAddr> {
    entry
        .parse()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// A same-site path to continue to after login; anything else becomes `/`.
///
/// Judged on the percent-decoded target, because that is what a browser
/// acts on: it drops tabs and newlines (`/%09/evil.example` is
/// `//evil.example`, another site) and reads `\` as `/`. The decoded target
/// must start with a single `/` followed by neither `/` nor `\`, and hold no
/// control character or backslash anywhere; the raw target, which becomes
/// the `Location` header, must be printable ASCII.
fn safe_next(next: &str) -> &str {
    let Some(decoded) = path::percent_decode(next) else {
        return "/";
    };
    let printable = next.bytes().all(|b| b.is_ascii_graphic());
    let one_slash =
        decoded.starts_with('/') && !matches!(decoded.as_bytes().get(1), Some(b'/' | b'\\'));
    let clean = !decoded.chars().any(|c| c.is_control() || c == '\\');
    let internal = decoded.starts_with("/login") || decoded.starts_with("/auth/");
    if printable && one_slash && clean && !internal {
        next
    } else {
        "/"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_must_stay_on_this_site() {
        // (the `next` form value as the handler sees it, where to go)
        let table = [
            ("/peers", "/peers"),
            ("/settings?tab=1", "/settings?tab=1"),
            ("/ok?x=1", "/ok?x=1"),
            ("/peers?q=a%20b", "/peers?q=a%20b"),
            ("", "/"),
            ("peers", "/"),
            ("https://evil", "/"),
            ("https://evil.example", "/"),
            ("//evil", "/"),
            ("//evil.example", "/"),
            ("/\\evil", "/"),
            ("/\\evil.example", "/"),
            // Browsers drop tabs and newlines: `/\t/evil` is `//evil`.
            ("/\t/evil.example", "/"),
            ("/\n/evil.example", "/"),
            ("/%09/evil.example", "/"),
            ("/%0a/evil.example", "/"),
            ("/%2F/evil", "/"),
            ("/%2f/evil", "/"),
            ("/%5Cevil", "/"),
            ("/%5cevil", "/"),
            ("/ok/%5Cevil", "/"),
            ("%2F%2Fevil", "/"),
            ("/%zz", "/"),
            ("/login", "/"),
            ("/%6Cogin", "/"),
            ("/auth/logout", "/"),
        ];
        for (next, expected) in table {
            assert_eq!(safe_next(next), expected, "{next:?}");
        }
    }

    #[test]
    fn forwarded_for_is_used_only_when_trusted() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 10.0.0.1"),
        );
        assert_eq!(client_ip(peer, &headers, false), peer.ip());
        // The trusted proxy appended the last entry; the client wrote the rest.
        assert_eq!(
            client_ip(peer, &headers, true),
            "10.0.0.1".parse::<IpAddr>().expect("ip")
        );
        // A second header line is the proxy's if the client sent one too.
        headers.append(
            "x-forwarded-for",
            HeaderValue::from_static("[2001:db8::7]:443"),
        );
        assert_eq!(
            client_ip(peer, &headers, true),
            "2001:db8::7".parse::<IpAddr>().expect("ip")
        );
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, garbage"),
        );
        assert_eq!(client_ip(peer, &headers, true), peer.ip());
    }
}
