//! The login page: a plain HTML form, so it works before (and without) wasm.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// `/login`: posts to `/auth/login`, which sets the session cookie.
#[component]
pub fn LoginPage() -> AnyView {
    let query = use_query_map();
    let message = move || {
        query.with(|q| match q.get("error").as_deref() {
            Some("invalid") => Some("Wrong user name or password."),
            Some("rate") => Some("Too many attempts. Wait a minute and try again."),
            Some("expired") => Some("Your session expired. Log in again."),
            Some(_) => Some("Login failed."),
            None => None,
        })
    };
    let next = move || query.with(|q| q.get("next").unwrap_or_default());
    view! {
        <Title text="Log in" />
        <main class="login">
            <h1>"P2PNet"</h1>
            <form method="post" action="/auth/login" class="card">
                {move || message().map(|m| view! { <p class="alert" role="alert" id="login-error">{m}</p> })}
                <label>"User name" <input name="username" autocomplete="username" required value="admin" /></label>
                <label>"Password" <input name="password" type="password" autocomplete="current-password" required autofocus /></label>
                <input type="hidden" name="next" value=next />
                <button type="submit" id="login-submit">"Log in"</button>
            </form>
        </main>
    }
    .into_any()
}
