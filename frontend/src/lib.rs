//! The wasm entry point: hydrates the server-rendered panel.
// A workspace build compiles this crate for the host with `ssr` and
// `hydrate` both on; rendering the deeper pages then needs more than the
// default 128 (the server crate sets the same).
#![recursion_limit = "256"]

/// Called by the hydration script once the wasm module is loaded.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
