//! The frame around every authenticated page: navigation, user, logout.

use leptos::prelude::*;
use leptos_router::components::{A, Outlet};

use crate::session::{self, CSRF_FIELD};

/// Navigation bar and the routed page below it.
#[component]
pub fn Layout() -> impl IntoView {
    let session = session::current();
    let username = session
        .as_ref()
        .map(|s| s.username.clone())
        .unwrap_or_default();
    let csrf = session.map(|s| s.csrf_token).unwrap_or_default();
    view! {
        <header class="topbar">
            <span class="brand">"P2PNet"</span>
            <nav>
                <A href="/" exact=true>"Overview"</A>
                <A href="/peers">"Peers"</A>
                <A href="/settings">"Settings"</A>
                <A href="/terminal">"Terminal"</A>
            </nav>
            <form class="logout" method="post" action="/auth/logout">
                <span class="user" id="current-user">{username}</span>
                <input type="hidden" name=CSRF_FIELD value=csrf />
                <button type="submit" id="logout">"Log out"</button>
            </form>
        </header>
        <main>
            <Outlet />
        </main>
    }
}
