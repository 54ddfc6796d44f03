//! The logged-in session as the page sees it.
//!
//! The server renders the user name and CSRF token into `<meta>` tags of the
//! document head; after hydration the browser reads them back from there, so
//! the server and the browser always agree without a round trip.

/// `<meta name=…>` holding the session's CSRF token.
pub const CSRF_META: &str = "csrf-token";
/// `<meta name=…>` holding the logged-in user's name.
pub const USER_META: &str = "p2pnet-user";
/// Request header carrying the CSRF token on state-changing API calls.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Form field carrying the CSRF token on plain HTML form posts.
pub const CSRF_FIELD: &str = "csrf_token";

/// The authenticated session of the current request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PanelSession {
    /// Name of the logged-in administrator.
    pub username: String,
    /// Token that every state-changing request must echo.
    pub csrf_token: String,
}

/// The current session, if any.
///
/// On the server it comes from the request (the server's auth middleware
/// inserts it); in the browser it is read from the document's meta tags.
pub fn current() -> Option<PanelSession> {
    #[cfg(feature = "ssr")]
    {
        use leptos::prelude::use_context;
        use_context::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<PanelSession>().cloned())
    }
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        let username = read_meta(USER_META)?;
        let csrf_token = read_meta(CSRF_META)?;
        (!username.is_empty()).then_some(PanelSession {
            username,
            csrf_token,
        })
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    {
        None
    }
}

/// Reads `<meta name=NAME content=…>` from the live document.
#[cfg(feature = "hydrate")]
pub fn read_meta(name: &str) -> Option<String> {
    use wasm_bindgen::JsCast;
    let document = web_sys::window()?.document()?;
    let element = document
        .query_selector(&format!("meta[name=\"{name}\"]"))
        .ok()??;
    let meta = element.dyn_into::<web_sys::HtmlMetaElement>().ok()?;
    Some(meta.content())
}
