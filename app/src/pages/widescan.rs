//! `/widescan`: the server's scan jobs. A form starts one; the jobs table
//! shows each job's progress (fetched again on every progress event of
//! the live stream, once a second while a job runs) with Stop and Resume;
//! below it, what one job found, with CSV and NDJSON downloads. Instances
//! a job finds are dialled by the node and appear on the Peers page
//! (source `widescan`).

use leptos::{either::Either, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::{
    controls::{Controls, Field, Row, nth},
    error_view, facts, format_duration, format_unix_ms,
};
use crate::{
    api::{NodeAction, ScanJobRow, ScanRequest, ScanResultRow, WidescanView, load_widescan},
    live::use_live,
};

/// The start form's fields, in the order [`request`] reads them.
const FIELDS: &[Field] = &[
    ("Prefixes", "prefixes", "2a01:db8:1::/120, …"),
    ("Exclude (optional)", "excludes", "ranges never probed"),
    ("Rate/s (optional)", "rate", "10000"),
    ("Per /64/s (optional)", "per_subnet_rate", "100; 0: no cap"),
    ("Hardware (optional)", "hardware", "auto, gpu or cpu"),
    ("Transport (optional)", "transport", "kernel or packet"),
    ("Seed (optional)", "seed", "random"),
    ("Shard (optional)", "shard", "k/n"),
    ("Contact (optional)", "contact", "URL explaining the scan"),
];

fn request(_: &str, v: Vec<String>) -> NodeAction {
    NodeAction::ScanStart {
        request: Box::new(ScanRequest {
            prefixes: nth(&v, 0),
            excludes: nth(&v, 1),
            rate: nth(&v, 2),
            per_subnet_rate: nth(&v, 3),
            hardware: nth(&v, 4),
            transport: nth(&v, 5),
            seed: nth(&v, 6),
            shard: nth(&v, 7),
            contact: nth(&v, 8),
            ..ScanRequest::default()
        }),
    }
}

/// The jobs, the start form and one job's results.
#[component]
pub fn WidescanPage() -> impl IntoView {
    let live = use_live();
    let controls = Controls::new();
    let query = use_query_map();
    let job = move || query.with(|q| q.get("job").and_then(|j| j.parse::<i64>().ok()));
    let data = Resource::new(
        move || {
            (
                live.changes.get(),
                live.scan_ticks.get(),
                controls.finished.get(),
                job(),
            )
        },
        |(_, _, _, job)| load_widescan(job),
    );
    view! {
        <Title text="Widescan" />
        <h1>"Widescan"</h1>
        <p class="muted">"IPv6 scans for live hosts and other instances; the instances found are dialled by the node and gated by its trust policy."</p>
        <section class="card" id="scan-start">
            <h2>"New scan"</h2>
            {controls.form("scan".into(), String::new(), FIELDS, "Start", request)}
        </section>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || data.get().map(|result| match result {
                Ok(view) => Either::Left(jobs_view(controls, view)),
                Err(e) => Either::Right(error_view(e)),
            })}
        </Transition>
    }
}

fn jobs_view(controls: Controls, v: WidescanView) -> impl IntoView {
    let policy = if v.test_mode {
        "test mode: test and documentation ranges are admitted".to_owned()
    } else {
        "global unicast inside 2000::/3, reserved ranges refused".to_owned()
    };
    let limits = format!(
        "{} jobs at once · at most {} probes/s",
        v.max_jobs, v.max_rate
    );
    let results = v.selected.map(|job| {
        let links = format!(
            r#"<a id="scan-csv" href="/api/v1/widescan/jobs/{job}/results.csv">CSV</a> · <a id="scan-ndjson" href="/api/v1/widescan/jobs/{job}/results.ndjson">NDJSON</a>"#
        );
        view! {
            <section class="card" id="scan-results">
                <h2>"Found by job "<span id="scan-selected">{job}</span></h2>
                <p class="muted">"Download everything: "<span inner_html=links></span></p>
                {controls.table(
                    "scan-results",
                    "Nothing found yet.",
                    &["Kind", "Address", "Instance", "Port", "Contact", "Via", "When", ""],
                    v.results.into_iter().map(result_row).collect(),
                )}
            </section>
        }
    });
    view! {
        <section class="card" id="scan-jobs">
            <h2>"Jobs"</h2>
            <dl class="facts plain">
                {facts(vec![("Targets", "scan-policy", policy), ("Limits", "scan-limits", limits)])}
            </dl>
            {controls.table(
                "scan-jobs",
                "No scan yet.",
                &["#", "State", "Prefixes", "Done", "Sent", "Received", "Hits", "Peers", "Left", "Generator", ""],
                v.jobs.into_iter().map(job_row).collect(),
            )}
        </section>
        {results}
    }
}

fn job_row(j: ScanJobRow) -> Row {
    let id = j.id;
    let buttons = match j.state.as_str() {
        "running" => vec![("stop secondary", "Stop", NodeAction::ScanStop { job: id })],
        "stopped" | "interrupted" | "failed" => {
            vec![("resume", "Resume", NodeAction::ScanResume { job: id })]
        }
        _ => Vec::new(),
    };
    let state = match j.error {
        Some(e) => format!("{}: {e}", j.state),
        None => j.state,
    };
    let generator = if j.generated_per_sec > 0 {
        format!("{} · {} M/s", j.adapter, j.generated_per_sec / 1_000_000)
    } else {
        j.adapter
    };
    Row {
        key: format!("scan-{id}"),
        cells: vec![
            ("mono", id.to_string()),
            ("state", state),
            ("mono prefixes", j.prefixes),
            ("done", format!("{}.{}%", j.permille / 10, j.permille % 10)),
            ("sent", format!("{} ({}/s)", j.sent, j.sent_per_sec)),
            (
                "received",
                format!("{} ({}/s)", j.received, j.received_per_sec),
            ),
            ("hits", j.hits.to_string()),
            ("peers", j.peers.to_string()),
            ("eta", j.eta_secs.map(format_duration).unwrap_or_default()),
            ("generator", generator),
        ],
        buttons,
        form: None,
        id: id.to_string(),
    }
}

fn result_row(r: ScanResultRow) -> Row {
    let port = if r.port == 0 {
        String::new()
    } else {
        r.port.to_string()
    };
    Row {
        key: format!("result-{}-{}", r.addr, r.instance_id),
        cells: vec![
            ("kind", r.kind),
            ("mono addr", r.addr.clone()),
            ("mono", r.instance_id),
            ("port", port),
            ("", r.contact),
            ("", r.via),
            ("", format_unix_ms(r.at_ms)),
        ],
        buttons: Vec::new(),
        form: None,
        id: r.addr,
    }
}
