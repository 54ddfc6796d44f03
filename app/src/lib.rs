//! The P2PNet control panel: Leptos components and server functions.
//!
//! The same crate compiles twice: with `ssr` into the server (rendering and
//! server functions) and with `hydrate` into the wasm bundle that makes the
//! rendered pages interactive.
//!
//! # Layout
//! - [`api`]: the data the panel shows (plain serde types) and the server
//!   functions that fetch or change it.
//! - [`csrf_client`]: the server-function client that attaches the session's
//!   CSRF token to every call.
//! - [`session`]: who is logged in, as seen by the rendered page.
//! - [`format`]: times, durations and byte counts in words.
//! - [`live`]: the live stream (`/api/live`) as signals the pages read.
//! - `layout`, `pages`: the components.
//! - [`ssr`] (server only): the [`ssr::PanelBackend`] trait the server
//!   implements, so this crate never depends on the server.

// Rendering the pages on the server (`RenderHtml::resolve` of their
// nested view types) goes deeper than the default limit of 128.
#![recursion_limit = "256"]
// `#[component]` expands to `pub` props structs even for crate-private
// components, which this lint would flag on every page.
#![allow(unreachable_pub)]

pub mod api;
pub mod csrf_client;
pub mod format;
mod layout;
pub mod live;
mod pages;
pub mod session;
#[cfg(feature = "ssr")]
pub mod ssr;

/// `/login`, rendered by the server alone (see `pages::login`).
#[cfg(feature = "ssr")]
pub use pages::login_document;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    components::{ParentRoute, Route, Router, Routes},
    path,
};

use crate::layout::Layout;
use crate::pages::{
    BootstrapPage, NotFound, OverviewPage, PeersPage, RoutinesPage, SettingsPage, TerminalPage,
    WidescanPage,
};

/// The HTML document around the application, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let session = session::current();
    let csrf = session
        .as_ref()
        .map(|s| s.csrf_token.clone())
        .unwrap_or_default();
    let user = session.map(|s| s.username).unwrap_or_default();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <meta name=session::CSRF_META content=csrf />
                <meta name=session::USER_META content=user />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The panel: the authenticated pages inside one layout. (`/login` is
/// the server's alone: `login_document`.)
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="p2pnet" href="/pkg/p2pnet.css" />
        <Title formatter=|page: String| format!("{page} · P2PNet") />
        <Router>
            <Routes fallback=NotFound>
                <ParentRoute path=path!("") view=Layout>
                    <Route path=path!("") view=OverviewPage />
                    <Route path=path!("peers") view=PeersPage />
                    <Route path=path!("routines") view=RoutinesPage />
                    <Route path=path!("bootstrap") view=BootstrapPage />
                    <Route path=path!("widescan") view=WidescanPage />
                    <Route path=path!("settings") view=SettingsPage />
                    <Route path=path!("terminal") view=TerminalPage />
                </ParentRoute>
            </Routes>
        </Router>
    }
}
