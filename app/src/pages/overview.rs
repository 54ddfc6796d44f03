//! `/`: version, uptime, database, listen addresses.

use leptos::prelude::*;
use leptos_meta::Title;

use super::{error_view, format_duration};
use crate::api::load_overview;

/// The dashboard.
#[component]
pub fn OverviewPage() -> impl IntoView {
    let refreshes = RwSignal::new(0u32);
    let data = Resource::new(move || refreshes.get(), |_| load_overview());
    view! {
        <Title text="Overview" />
        <div class="page-head">
            <h1>"Overview"</h1>
            <button id="refresh" on:click=move |_| refreshes.update(|n| *n += 1)>"Refresh"</button>
            <span class="muted" id="refresh-count">{move || format!("refreshed {}×", refreshes.get())}</span>
        </div>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || data.get().map(|result| {
                match result {
                    Ok(o) => view! {
                        <dl class="facts">
                            <dt>"Node"</dt><dd id="node-name">{o.node_name}</dd>
                            <dt>"Version"</dt><dd id="version">{o.version}</dd>
                            <dt>"Uptime"</dt><dd id="uptime">{format_duration(o.uptime_secs)}</dd>
                            <dt>"Database"</dt><dd id="database">{o.database}</dd>
                            <dt>"Listening on"</dt>
                            <dd id="listen">{o.listen_addresses.join(", ")}</dd>
                            <dt>"Known peers"</dt><dd id="known-peers">{o.known_peers}</dd>
                        </dl>
                    }.into_any(),
                    Err(e) => error_view(e),
                }
            })}
        </Transition>
    }
}
