//! The frame around every authenticated page: navigation, user, logout.

use leptos::prelude::*;
use leptos_router::components::{A, Outlet};

use crate::{
    live::provide_live,
    session::{self, CSRF_FIELD},
};

/// Navigation bar and the routed page below it. It opens the live stream
/// once for every page below (client-side navigation keeps it).
#[component]
pub fn Layout() -> impl IntoView {
    let live = provide_live();
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
                <A href="/routines">"Routines"</A>
                <A href="/bootstrap">"Bootstrap"</A>
                <A href="/widescan">"Widescan"</A>
                <A href="/settings">"Settings"</A>
                <A href="/terminal">"Terminal"</A>
            </nav>
            <span
                id="live-status"
                class=move || live.status.get().class()
                title="The live stream of the node's events"
            >
                {move || live.status.get().word()}
            </span>
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
