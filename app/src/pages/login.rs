//! The login page: a plain HTML form posting to `/auth/login`, rendered by
//! the server alone. It needs no script, so it is not part of the hydrated
//! panel: a route less in the wasm, and it works before (and without) it.

use leptos::{prelude::*, tachys::view::RenderHtml};

/// What a failed login's `error` query parameter says to the user.
fn message(error: Option<&str>) -> Option<&'static str> {
    error.map(|e| match e {
        "invalid" => "Wrong user name or password.",
        "rate" => "Too many attempts. Wait a minute and try again.",
        "expired" => "Your session expired. Log in again.",
        _ => "Login failed.",
    })
}

/// `/login` as a whole HTML document: `error` is the query's reason for a
/// failed attempt, `next` where to go after logging in (the server checks
/// it again when the form is posted). Every value is escaped.
pub fn login_document(error: Option<&str>, next: &str) -> String {
    let alert =
        message(error).map(|m| view! { <p class="alert" role="alert" id="login-error">{m}</p> });
    let next = next.to_owned();
    let page = view! {
        <main class="login">
            <h1>"P2PNet"</h1>
            <form method="post" action="/auth/login" class="card">
                {alert}
                <label>"User name" <input name="username" autocomplete="username" required value="admin" /></label>
                <label>"Password" <input name="password" type="password" autocomplete="current-password" required autofocus /></label>
                <input type="hidden" name="next" value=next />
                <button type="submit" id="login-submit">"Log in"</button>
            </form>
        </main>
    };
    let body = Owner::new().with(|| page.to_html());
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"/favicon.svg\" type=\"image/svg+xml\">\
         <link rel=\"stylesheet\" href=\"/pkg/p2pnet.css\">\
         <title>Log in · P2PNet</title></head><body>{body}</body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_escapes_what_the_query_carries() {
        let html = login_document(Some("invalid"), "/peers\"><script>alert(1)</script>");
        assert!(html.contains("Wrong user name or password."));
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("id=\"login-submit\""));
        assert!(!login_document(None, "/").contains("login-error"));
        assert!(login_document(Some("whatever"), "/").contains("Login failed."));
    }
}
