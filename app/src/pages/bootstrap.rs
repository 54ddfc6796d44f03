//! `/bootstrap`: the bootstrap server this server runs: its mode, network
//! and authority key, the snapshot it serves, and the peers registered
//! with it. Fetched again on live changes and every few seconds while
//! open (announces make no live events). In authority mode it also shows
//! the latest signatures issued and queues signed network tasks. The key
//! is changed from the terminal (`key rotate`, `key gen`).

use leptos::{either::Either, prelude::*};
use leptos_meta::Title;

use super::{
    controls::{Controls, Row, nth},
    copyable, error_view, facts, format_unix_ms,
};
use crate::{
    api::{BootstrapView, NodeAction, RegisteredPeerRow, SignatureRow, load_bootstrap},
    live::use_live,
};

/// The bootstrap service and its registered peers.
#[component]
pub fn BootstrapPage() -> AnyView {
    let live = use_live();
    // Every fifth traffic sample (one a second) is the poll.
    let every_5s = move || {
        live.traffic
            .with(|t| t.back().map_or(0, |s| s.at_ms / 5000))
    };
    let data = Resource::new(
        move || (live.changes.get(), every_5s()),
        |_| load_bootstrap(),
    );
    view! {
        <Title text="Bootstrap" />
        <h1>"Bootstrap"</h1>
        <p class="muted">"Peers announce their signed records here and fetch the list of the others."</p>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || data.get().map(|result| match result {
                Ok(view) => Either::Left(service_view(view)),
                Err(e) => Either::Right(error_view(e)),
            })}
        </Transition>
    }
    .into_any()
}

fn service_view(v: BootstrapView) -> impl IntoView {
    let authority_mode = v.fingerprint.is_some();
    let authority = match v.fingerprint {
        Some(fingerprint) => Either::Left(copyable(
            "Authority key",
            "authority-fingerprint",
            "copy-fingerprint",
            "copy-fingerprint-status",
            fingerprint,
        )),
        None => Either::Right(facts(vec![(
            "Authority key",
            "authority-fingerprint",
            "none: trustless mode, the list is not signed".to_owned(),
        )])),
    };
    let shown = v.peers.len();
    let registered = if shown as u64 == v.registered {
        v.registered.to_string()
    } else {
        format!("{} (the {shown} latest announces are shown)", v.registered)
    };
    let snapshot = format!(
        "#{} issued {} · lists {} peers",
        v.snapshot_seq,
        format_unix_ms(secs_to_ms(v.snapshot_issued_at)),
        v.snapshot_peers
    );
    view! {
        <section class="card" id="bootstrap-service">
            <h2>"Service"</h2>
            <dl class="facts plain">
                {facts(vec![
                    ("Mode", "bootstrap-mode", v.mode),
                    ("Network", "bootstrap-network", v.network),
                ])}
                {authority}
                {facts(vec![
                    ("Snapshot", "bootstrap-snapshot", snapshot),
                    ("Registered peers", "bootstrap-registered", registered),
                ])}
            </dl>
        </section>
        <section class="card" id="registered">
            <h2>"Registered peers"</h2>
            // Read-only rows through the shared table: one view type for
            // every table in the wasm.
            {Controls::new().table(
                "registered",
                "No peers are registered. Peers appear here once they announce their records.",
                &["Peer", "Addresses", "Observed IP", "Seq", "Last announce", "Expires", ""],
                v.peers.into_iter().map(peer_row).collect(),
            )}
        </section>
        {authority_mode.then(|| authority_view(v.signatures))}
    }
}

/// Authority mode: queue a task, and the latest signatures issued.
fn authority_view(signatures: Vec<SignatureRow>) -> impl IntoView {
    let controls = Controls::new();
    view! {
        <section class="card" id="tasks">
            <h2>"Network tasks"</h2>
            <p class="muted">"Signed by the authority; peers collect them with their next heartbeat (valid for a day, audited)."</p>
            {controls.form(
                "task".into(),
                String::new(),
                &[
                    ("For", "target", "* or a registered peer id (prefix)"),
                    ("Task", "task", "block ID, block-network CIDR, disconnect ID, authorize ID SCOPES [SECS], revoke ID, message TEXT, ping"),
                ],
                "Queue",
                |_, v| NodeAction::QueueTask { target: nth(&v, 0), task: nth(&v, 1) },
            )}
        </section>
        <section class="card" id="signatures">
            <h2>"Signing history"</h2>
            <p class="muted">"The latest signatures issued; the whole chain is at /api/v1/bootstrap/history, and `bootstrap history` in the terminal checks it."</p>
            {Controls::new().table(
                "signatures",
                "No signature issued yet.",
                &["#", "When", "Signed", "SHA-256", ""],
                signatures.into_iter().map(signature_row).collect(),
            )}
        </section>
    }
}

fn signature_row(s: SignatureRow) -> Row {
    Row {
        key: format!("signature-{}", s.seq),
        cells: vec![
            ("seq", s.seq.to_string()),
            ("at", format_unix_ms(s.at_ms)),
            ("kind", s.kind),
            ("mono digest", s.digest),
        ],
        buttons: Vec::new(),
        form: None,
        id: s.seq.to_string(),
    }
}

fn peer_row(p: RegisteredPeerRow) -> Row {
    Row {
        key: format!("registered-{}", p.peer_id),
        cells: vec![
            ("mono peer", p.peer_id.clone()),
            ("mono addresses", p.addresses.join(", ")),
            (
                "mono observed",
                p.observed_ip.unwrap_or_else(|| "–".to_owned()),
            ),
            ("seq", p.seq.to_string()),
            ("announced", format_unix_ms(p.announced_at_ms)),
            ("expires", format_unix_ms(secs_to_ms(p.expires_at))),
        ],
        buttons: Vec::new(),
        form: None,
        id: p.peer_id,
    }
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}
