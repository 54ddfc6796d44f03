//! `/peers`: peers waiting for approval, known peers (with a filter),
//! active channels, the access list, and the node actions: connect,
//! disconnect, remove, block/unblock, elevate/demote, send, a speed test
//! per channel (with the latest results: a chart and a table the server
//! draws), and a per-peer "Why?" (the doctor: why it is or is not
//! connected).
//!
//! The snapshot is fetched again on every live change and after every
//! action; the forms sit outside it, so a refetch never clears what is
//! being typed.

use leptos::{either::Either, prelude::*};
use leptos_meta::Title;

use super::{
    ByKey, cells,
    controls::{Controls, Row, nth},
    error_view, format_bytes, format_unix_ms,
};
use crate::{
    api::{ChannelRow, KnownPeerRow, NodeAction, PendingRow, load_doctor, load_peers},
    live::{Live, use_live},
};

/// The doctor's answers (one fact a line, or why there is none), by peer
/// id.
type Reports = RwSignal<ByKey<String>>;

/// The peer pages' state shared by its sections.
#[derive(Clone, Copy)]
struct Page {
    controls: Controls,
    reports: Reports,
    live: Live,
}

impl Page {
    /// Asks the doctor about `peer` and shows the answer in its row.
    fn why(self, peer: String) {
        leptos::task::spawn_local(async move {
            let report = match load_doctor(peer.clone()).await {
                Ok(report) => report.lines.join("\n"),
                Err(e) => e.to_string(),
            };
            self.reports.update(|m| m.set(peer, report));
        });
    }
}

/// The peer list and everything done to peers.
#[component]
pub fn PeersPage() -> AnyView {
    let page = Page {
        controls: Controls::new(),
        reports: RwSignal::new(ByKey::default()),
        live: use_live(),
    };
    let data = Resource::new(
        move || (page.live.changes.get(), page.controls.finished.get()),
        |_| load_peers(),
    );
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
                Ok(view) => Either::Left(view! {
                    {pending_section(view.pending, page)}
                    {known_section(view.known, filter, page)}
                    {channels_section(view.channels, page)}
                    <section class="card" id="perf">
                        <h2>"Speed tests"</h2>
                        <div inner_html=view.perf_html></div>
                    </section>
                    {access_section(view.blocked, view.allowed, page)}
                }),
                Err(e) => Either::Right(error_view(e)),
            })}
        </Transition>
        {action_forms(page.controls)}
    }
    .into_any()
}

fn pending_section(rows: Vec<PendingRow>, page: Page) -> impl IntoView {
    let rows = rows
        .into_iter()
        .map(|row| Row {
            // The peer's key, as in its known-peer row: once approved, this
            // row goes and the result shows there.
            key: format!("peer-{}", row.peer_id),
            buttons: vec![
                (
                    "approve",
                    "Approve",
                    NodeAction::Approve {
                        peer: row.peer_id.clone(),
                    },
                ),
                (
                    "reject secondary",
                    "Reject",
                    NodeAction::Reject {
                        peer: row.peer_id.clone(),
                    },
                ),
            ],
            cells: vec![
                ("mono", row.peer_id.clone()),
                ("mono", row.addr),
                ("", format_unix_ms(row.since_ms)),
            ],
            id: row.peer_id,
            form: None,
        })
        .collect();
    card(
        "pending",
        "Waiting for approval",
        page.controls.table(
            "pending",
            "Nobody is waiting for approval.",
            &["Peer id", "Address", "Waiting since", "Decide"],
            rows,
        ),
    )
}

/// A card with a title around `body`.
fn card(id: &'static str, title: &'static str, body: impl IntoView) -> impl IntoView {
    view! {
        <section class="card" id=id>
            <h2>{title}</h2>
            {body}
        </section>
    }
}

/// Whether the filter (lowercased) matches a row. Ids, sources and
/// addresses are ASCII, so ASCII case folding serves (Unicode's tables
/// would cost the wasm 4 KB).
fn matches(row: &KnownPeerRow, needle: &str) -> bool {
    needle.is_empty()
        || row.peer_id.to_ascii_lowercase().contains(needle)
        || row.source.to_ascii_lowercase().contains(needle)
        || row
            .addresses
            .iter()
            .any(|a| a.to_ascii_lowercase().contains(needle))
}

fn summary(total: usize, shown: usize, needle: &str) -> String {
    if total == 0 && needle.is_empty() {
        "No peers known yet. Peers appear here once the node discovers or is given them.".into()
    } else if total == 0 {
        format!("No peers known yet, so none match “{needle}”.")
    } else if needle.is_empty() {
        format!("{total} known peers")
    } else {
        format!("{shown} of {total} peers match “{needle}”")
    }
}

fn known_section(rows: Vec<KnownPeerRow>, filter: RwSignal<String>, page: Page) -> impl IntoView {
    let total = rows.len();
    let visible = move || {
        let needle = filter.get().trim().to_ascii_lowercase();
        rows.iter()
            .filter(|r| matches(r, &needle))
            .cloned()
            .collect::<Vec<_>>()
    };
    let summary = {
        let visible = visible.clone();
        move || summary(total, visible().len(), filter.get().trim())
    };
    view! {
            <section class="card" id="known">
                <h2>"Known peers"</h2>
                <p id="peer-summary" class="muted">{summary}</p>
                <table class="peers" id="peers-table">
                    <thead><tr>
                        <th>"Peer"</th><th>"Addresses"</th><th>"Seen"</th><th>"Grants"</th>
                        <th>"State"</th>
                    </tr></thead>
                    // One <tbody> per peer: its facts, then its controls.
    {move || visible().into_iter().map(|row| known_row(row, page)).collect_view()}
                </table>
            </section>
        }
}

fn known_row(row: KnownPeerRow, page: Page) -> impl IntoView {
    let id = row.peer_id.clone();
    let key = format!("peer-{id}");
    let flags: Vec<&'static str> = [
        (row.approved, "approved"),
        (row.rejected, "rejected"),
        (row.blocked, "blocked"),
        (row.persistent, "kept"),
    ]
    .into_iter()
    .filter_map(|(on, word)| on.then_some(word))
    .collect();
    let flags = if flags.is_empty() {
        vec!["undecided"]
    } else {
        flags
    };
    let addresses = row
        .addresses
        .iter()
        .map(|a| {
            if row.proven.contains(a) {
                format!("{a} ✓")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let grants = if row.grants.is_empty() {
        "policy default".to_owned()
    } else {
        row.grants
            .iter()
            .map(|g| {
                let by = if g.granted_by.is_empty() {
                    "?"
                } else {
                    &g.granted_by
                };
                format!("#{} {} (by {by})", g.id, g.scopes)
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    // Read when the row is drawn, not tracked: every event about a peer
    // also refetches the page, which draws its row again.
    let last_event = page
        .live
        .last_about(&id)
        .map(|e| e.text)
        .unwrap_or_default();
    let block = if row.blocked {
        (
            "unblock",
            "Unblock",
            NodeAction::Unblock { target: id.clone() },
        )
    } else {
        (
            "block danger",
            "Block",
            NodeAction::Block { target: id.clone() },
        )
    };
    let buttons = vec![
        (
            "disconnect secondary",
            "Disconnect",
            NodeAction::Disconnect { peer: id.clone() },
        ),
        (
            "remove secondary",
            "Remove",
            NodeAction::Remove { peer: id.clone() },
        ),
        block,
        (
            "elevate secondary",
            "Elevate",
            NodeAction::Elevate { peer: id.clone() },
        ),
        (
            "demote secondary",
            "Demote",
            NodeAction::Demote { peer: id.clone() },
        ),
    ];
    // One line a fact (the style sheet keeps the line breaks); an empty
    // element until asked.
    let report = {
        let id = id.clone();
        move || {
            page.reports
                .with(|m| m.get(&id).cloned().unwrap_or_default())
        }
    };
    let why = {
        let id = id.clone();
        move |_| page.why(id.clone())
    };
    view! {
        <tbody class="peer" data-peer=id.clone()>
        <tr>
            <td>
                <span class="mono id" title=id.clone()>{id.clone()}</span>
                <br /><span class="muted">{row.source}</span>
            </td>
            {cells(vec![
                ("mono", addresses),
                ("muted seen", format!(
                    "first {}\nlast {}",
                    format_unix_ms(row.first_seen_ms),
                    format_unix_ms(row.last_seen_ms)
                )),
                ("", grants),
            ])}
            <td class="state">
                // One pill; its classes name the flags (styled, and tested).
                <span class=format!("flag {}", flags.join(" "))>{flags.join(" · ")}</span>
                <div class="last-event muted">{last_event}</div>
            </td>
        </tr>
        <tr class="controls">
            <td colspan="5" class="actions">
                {page.controls.buttons(key.clone(), buttons)}
                <button type="button" class="small why secondary" on:click=why>"Why?"</button>
                {page.controls.outcome(key.clone())}
                <div class="doctor">{report}</div>
            </td>
        </tr>
        </tbody>
    }
}

fn channels_section(rows: Vec<ChannelRow>, page: Page) -> impl IntoView {
    let rows = rows
        .into_iter()
        .map(|c| {
            let state = if c.scopes.is_empty() {
                c.state.clone()
            } else {
                format!("{} ({})", c.state, c.scopes)
            };
            let shown = c.peer_id.as_ref().map_or_else(
                || "(handshaking)".to_owned(),
                |p| p.chars().take(12).collect::<String>() + "…",
            );
            Row {
                key: format!("channel-{}", c.id),
                buttons: c
                    .peer_id
                    .iter()
                    .flat_map(|peer| {
                        let perf = NodeAction::Perf {
                            peer: peer.clone(),
                            upload: String::new(),
                            download: String::new(),
                        };
                        let disconnect = NodeAction::Disconnect { peer: peer.clone() };
                        [
                            ("perf", "Speed test", perf),
                            ("disconnect secondary", "Disconnect", disconnect),
                        ]
                    })
                    .collect(),
                cells: vec![
                    ("mono", shown),
                    ("mono", c.addr),
                    ("", c.direction),
                    ("channel-state", state),
                    (
                        "",
                        c.rtt_us.map_or_else(
                            || "–".to_owned(),
                            |us| format!("{}.{} ms", us / 1000, us % 1000 / 100),
                        ),
                    ),
                    (
                        "",
                        format!(
                            "{} / {}",
                            format_bytes(c.bytes_received),
                            format_bytes(c.bytes_sent)
                        ),
                    ),
                    ("", format_unix_ms(c.since_ms)),
                ],
                id: c.peer_id.unwrap_or_else(|| c.id.to_string()),
                form: None,
            }
        })
        .collect();
    card(
        "channels",
        "Channels",
        page.controls.table(
            "channels",
            "No channels are open.",
            &[
                "Peer",
                "Address",
                "Direction",
                "State",
                "Round trip",
                "In / out",
                "Since",
                "",
            ],
            rows,
        ),
    )
}

fn access_section(blocked: Vec<String>, allowed: Vec<String>, page: Page) -> impl IntoView {
    let rows = blocked
        .into_iter()
        .map(|target| Row {
            key: format!("blocked-{target}"),
            buttons: vec![(
                "unblock secondary",
                "Unblock",
                NodeAction::Unblock {
                    target: target.clone(),
                },
            )],
            cells: vec![("mono", target.clone())],
            id: target,
            form: None,
        })
        .collect();
    let allowed_view = (!allowed.is_empty()).then(|| {
        view! {
            <h3>"Allowed (everyone else is refused)"</h3>
            <p id="allowed-list" class="mono">{allowed.join(", ")}</p>
        }
    });
    card(
        "access",
        "Blocked",
        view! {
            {page.controls.table("blocked", "Nothing is blocked.", &["Peer id or network", ""], rows)}
            {allowed_view}
        },
    )
}

/// Connect, block, unblock (by id or network), send a message.
fn action_forms(controls: Controls) -> impl IntoView {
    let form = |key: &str, fields, submit, action| {
        controls.form(key.into(), String::new(), fields, submit, action)
    };
    view! {
        <section class="card" id="actions">
            <h2>"Actions"</h2>
            {form("connect", &[("Connect to", "target", "ADDR or ID@ADDR")], "Connect",
                |_, v| NodeAction::Connect { target: nth(&v, 0) })}
            {form("block", &[("Block", "target", "peer id (or prefix), address or CIDR")], "Block",
                |_, v| NodeAction::Block { target: nth(&v, 0) })}
            {form("unblock", &[("Unblock", "target", "peer id (or prefix), address or CIDR")], "Unblock",
                |_, v| NodeAction::Unblock { target: nth(&v, 0) })}
            {form("send", &[("Send to", "peer", "peer id (or prefix)"), ("Message", "text", "")], "Send",
                |_, v| NodeAction::Send { peer: nth(&v, 0), text: nth(&v, 1) })}
            {form("perf", &[("Speed test with", "peer", "peer id (or prefix)"), ("Up (optional)", "upload", "16M"), ("Down (optional)", "download", "16M")], "Test",
                |_, v| NodeAction::Perf { peer: nth(&v, 0), upload: nth(&v, 1), download: nth(&v, 2) })}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_what_the_filter_left() {
        assert!(summary(0, 0, "").starts_with("No peers known yet."));
        assert_eq!(
            summary(0, 0, "abc"),
            "No peers known yet, so none match “abc”."
        );
        assert_eq!(summary(3, 3, ""), "3 known peers");
        assert_eq!(summary(3, 1, "10.0"), "1 of 3 peers match “10.0”");
    }
}
