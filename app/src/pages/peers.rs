//! `/peers`: the node's known peers, with a filter.

use leptos::prelude::*;
use leptos_meta::Title;

use super::{error_view, format_unix_ms};
use crate::api::{KnownPeerRow, load_peers};

/// The peer list.
#[component]
pub fn PeersPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| load_peers());
    let filter = RwSignal::new(String::new());
    view! {
        <Title text="Peers" />
        <div class="page-head">
            <h1>"Peers"</h1>
            <input
                id="peer-filter"
                type="search"
                placeholder="Filter by id, address or source"
                bind:value=filter
            />
        </div>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || data.get().map(|result| match result {
                Ok(view) => peer_table(view.known, filter).into_any(),
                Err(e) => error_view(e),
            })}
        </Transition>
    }
}

fn matches(row: &KnownPeerRow, needle: &str) -> bool {
    needle.is_empty()
        || row.peer_id.to_lowercase().contains(needle)
        || row.source.to_lowercase().contains(needle)
        || row
            .addresses
            .iter()
            .any(|a| a.to_lowercase().contains(needle))
}

fn peer_table(rows: Vec<KnownPeerRow>, filter: RwSignal<String>) -> impl IntoView {
    let total = rows.len();
    let visible = move || {
        let needle = filter.get().trim().to_lowercase();
        rows.iter()
            .filter(|r| matches(r, &needle))
            .cloned()
            .collect::<Vec<_>>()
    };
    let summary = {
        let visible = visible.clone();
        move || {
            let needle = filter.get();
            let shown = visible().len();
            if total == 0 && needle.trim().is_empty() {
                "No peers known yet. Peers appear here once the node discovers or is given them."
                    .to_string()
            } else if total == 0 {
                format!("No peers known yet, so none match “{}”.", needle.trim())
            } else if needle.trim().is_empty() {
                format!("{total} known peers")
            } else {
                format!("{shown} of {total} peers match “{}”", needle.trim())
            }
        }
    };
    view! {
        <p id="peer-summary" class="muted">{summary}</p>
        <table class="peers">
            <thead><tr><th>"Peer id"</th><th>"Addresses"</th><th>"Source"</th><th>"First seen"</th><th>"Last seen"</th></tr></thead>
            <tbody>
                <For each=visible key=|r| r.peer_id.clone() let:row>
                    <tr>
                        <td class="mono">{row.peer_id}</td>
                        <td>{row.addresses.join(", ")}</td>
                        <td>{row.source}</td>
                        <td>{format_unix_ms(row.first_seen_ms)}</td>
                        <td>{format_unix_ms(row.last_seen_ms)}</td>
                    </tr>
                </For>
            </tbody>
        </table>
    }
}
