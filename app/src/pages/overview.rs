//! `/`: the server (version, uptime, database, addresses) and its peer node
//! (id, listen addresses, channels, peers, approvals, discovery, traffic),
//! with the live feed. The snapshot is fetched again whenever the live
//! stream says the node changed; the traffic moves with the stream.

use leptos::{either::Either, prelude::*};
use leptos_meta::Title;

use super::{copyable, error_view, facts, format_clock, format_duration, throughput::Throughput};
use crate::{
    api::{DiscoverySummary, NodeSummary, load_overview},
    live::{Live, use_live},
};

/// The dashboard.
#[component]
pub fn OverviewPage() -> AnyView {
    let live = use_live();
    let refreshes = RwSignal::new(0u32);
    let data = Resource::new(
        move || (refreshes.get(), live.changes.get()),
        |_| load_overview(),
    );
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
                    Ok(o) => {
                        Either::Left(view! {
                            <div class="grid">
                            <section class="card">
                                <h2>"Server"</h2>
                                <dl class="facts plain">
                                    {facts(vec![
                                        ("Node", "node-name", o.node_name),
                                        ("Version", "version", o.version),
                                        ("Up for", "uptime", format_duration(o.uptime_secs)),
                                        ("Database", "database", o.database),
                                        ("Listening on", "listen", o.listen_addresses.join(", ")),
                                        ("Peers stored", "known-peers", o.known_peers.to_string()),
                                    ])}
                                </dl>
                            </section>
                            {match o.node {
                                Some(node) => Either::Left(node_view(node)),
                                None => Either::Right(view! {
                                    <section class="card" id="node-off">
                                        <h2>"Peer node"</h2>
                                        <p class="muted">"The peer node is off ([node] enabled = false)."</p>
                                    </section>
                                }),
                            }}
                            </div>
                        })
                    }
                    Err(e) => Either::Right(error_view(e)),
                }
            })}
        </Transition>
        {feed(live)}
    }
    .into_any()
}

fn node_view(node: NodeSummary) -> impl IntoView {
    let listen = if node.listen.is_empty() {
        "not listening".to_owned()
    } else {
        node.listen.join(", ")
    };
    view! {
        <section class="card">
            <h2>"Peer node"</h2>
            <dl class="facts plain">
                {copyable("Peer id", "node-id", "copy-node-id", "copy-status", node.peer_id)}
                {facts(vec![
                    ("Listening on", "node-listen", listen),
                    ("Channels", "node-channels", format!(
                        "{} open · {} waiting for approval · {} handshaking",
                        node.channels_open, node.channels_pending, node.channels_handshaking
                    )),
                    ("Known peers", "node-known-peers", node.known_peers.to_string()),
                    ("Pending approvals", "pending-approvals", node.pending_approvals.to_string()),
                ])}
            </dl>
        </section>
        <section class="card">
            <h2>"Discovery"</h2>
            {discovery_view(node.discovery)}
        </section>
        <section class="card">
            <h2>"Traffic"</h2>
            <Throughput history=node.traffic sent=node.bytes_sent received=node.bytes_received />
        </section>
    }
}

fn discovery_view(discovery: Option<DiscoverySummary>) -> impl IntoView {
    let Some(d) = discovery else {
        return Either::Left(view! {
            <p id="discovery" class="muted">"Off: the node finds peers only when told an address."</p>
        });
    };
    let ports = d
        .ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    Either::Right(view! {
        <dl id="discovery" class="facts plain">
            {facts(vec![
                ("Ports", "discovery-ports", format!("{ports} (broadcasting to {})", d.broadcast_port)),
                ("Sockets", "discovery-sockets", d.listening.join(", ")),
                ("Interfaces", "discovery-interfaces", d.interfaces.join(", ")),
                ("Datagrams", "discovery-datagrams", format!(
                    "{} sent · {} received · {} refused · {} dropped",
                    d.sent, d.received, d.refused, d.dropped
                )),
                ("Peers heard", "discovery-heard", format!(
                    "{}{}",
                    d.heard,
                    if d.settled { " (all connected or backing off)" } else { "" }
                )),
            ])}
        </dl>
    })
}

/// The recent events, newest first. From the live stream only: the page
/// renders it empty, the stream's replay fills it, and while it is empty
/// the style sheet says so. (Unkeyed: the list is short, and a keyed list
/// costs more wasm than redrawing it.)
fn feed(live: Live) -> impl IntoView {
    let items = move || {
        live.events.with(|events| {
            events
                .iter()
                .rev()
                .map(|item| {
                    let e = &item.event;
                    view! {
                        <li data-kind=e.kind.clone()>
                            <time class="muted mono">{format_clock(e.at_ms)}</time>
                            <span class="kind">{e.kind.clone()}</span>
                            <span class="text">{e.text.clone()}</span>
                        </li>
                    }
                })
                .collect_view()
        })
    };
    view! {
        <section class="card">
            <h2>"Events"</h2>
            <ol id="event-feed" class="feed">{items}</ol>
        </section>
    }
}
