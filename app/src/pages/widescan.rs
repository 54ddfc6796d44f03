//! `/widescan`: the server's scan jobs. A form starts one; the jobs table
//! shows each job's progress (fetched again on every progress event of
//! the live stream, once a second while a job runs) with Stop and Resume;
//! below it, what one job found, with CSV and NDJSON downloads. Instances
//! a job finds are dialled by the node and appear on the Peers page
//! (source `widescan`). The server sends every cell formatted.

use leptos::{either::Either, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::{
    controls::{Controls, Field, Row},
    error_view,
};
use crate::{
    api::{NodeAction, WidescanView, load_widescan},
    live::use_live,
};

/// The start form's fields; their names are what the server reads.
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

fn start(_: &str, values: Vec<String>) -> NodeAction {
    NodeAction::ScanStart {
        fields: FIELDS
            .iter()
            .zip(values)
            .map(|((_, name, _), value)| ((*name).to_owned(), value))
            .collect(),
    }
}

/// The jobs, the start form and one job's findings.
#[component]
pub fn WidescanPage() -> AnyView {
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
            {controls.form("scan".into(), String::new(), FIELDS, "Start", start)}
        </section>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || data.get().map(|result| match result {
                Ok(view) => Either::Left(jobs_view(controls, view)),
                Err(e) => Either::Right(error_view(e)),
            })}
        </Transition>
    }
    .into_any()
}

fn jobs_view(controls: Controls, v: WidescanView) -> impl IntoView {
    // Markup for what only links and labels: the job shown, its downloads,
    // and a form that shows another job's (a plain GET: the server renders
    // the page for `?job=N`).
    let found = v.selected.map_or_else(String::new, |job| {
        format!(
            r#"<h2>Found by job <span id="scan-selected">{job}</span></h2><p class="muted">Download <a id="scan-csv" href="/api/v1/widescan/jobs/{job}/results.csv">CSV</a> · <a id="scan-ndjson" href="/api/v1/widescan/jobs/{job}/results.ndjson">NDJSON</a></p><form method="get" action="/widescan" class="inline-form"><label>Job <input id="scan-job" name="job" inputmode="numeric" size="5" value="{job}"></label><button type="submit" id="scan-show">Show its findings</button></form>"#
        )
    });
    let results = v
        .results
        .into_iter()
        .map(|cells| {
            let addr = cells.get(1).cloned().unwrap_or_default();
            Row {
                key: format!("result-{addr}-{}", cells.get(2).map_or("", |c| c.as_str())),
                id: addr,
                cells: columns(&RESULT_CLASSES, cells),
                buttons: Vec::new(),
                form: None,
            }
        })
        .collect();
    view! {
        <section class="card" id="scan-jobs">
            <h2>"Jobs"</h2>
            <p class="muted" id="scan-policy">{v.policy}" · "{v.limits}</p>
            {controls.table(
                "scan-jobs",
                "No scan yet.",
                &JOB_HEADERS,
                v.jobs.into_iter().map(job_row).collect(),
            )}
            <div id="scan-results" inner_html=found></div>
            {controls.table("scan-results", "Nothing found yet.", &RESULT_HEADERS, results)}
        </section>
    }
}

/// The jobs table: headers, and the class of each cell the server sends.
const JOB_HEADERS: [&str; 11] = [
    "#",
    "State",
    "Prefixes",
    "Done",
    "Sent",
    "Received",
    "Hits",
    "Peers",
    "Left",
    "Generator",
    "",
];
const JOB_CLASSES: [&str; 10] = [
    "mono",
    "state",
    "mono prefixes",
    "done",
    "sent",
    "received",
    "hits",
    "peers",
    "eta",
    "generator",
];
/// The findings table, as the jobs table.
const RESULT_HEADERS: [&str; 8] = [
    "Kind", "Address", "Instance", "Port", "Contact", "Via", "When", "",
];
const RESULT_CLASSES: [&str; 7] = ["kind", "mono addr", "mono instance", "port", "", "via", ""];

/// Cells with the classes of their columns.
fn columns(classes: &[&'static str], cells: Vec<String>) -> Vec<(&'static str, String)> {
    classes.iter().copied().zip(cells).collect()
}

fn job_row(mut cells: Vec<String>) -> Row {
    let id = cells
        .first()
        .and_then(|c| c.parse::<i64>().ok())
        .unwrap_or(0);
    let state = cells.get(1).cloned().unwrap_or_default();
    let buttons = match state.as_str() {
        "running" => vec![("stop secondary", "Stop", NodeAction::ScanStop { job: id })],
        "stopped" | "interrupted" | "failed" => {
            vec![("resume", "Resume", NodeAction::ScanResume { job: id })]
        }
        _ => Vec::new(),
    };
    let shown = cells.split_off(2.min(cells.len()));
    Row {
        key: format!("scan-{id}"),
        cells: columns(&JOB_CLASSES, shown),
        buttons,
        form: None,
        id: id.to_string(),
    }
}
