//! `/routines`: the node's named periodic routines, with start, stop and
//! their interval. Fetched again on live changes, after each action, and
//! every few seconds while open (a routine's runs make no events).

use leptos::{either::Either, prelude::*};
use leptos_meta::Title;

use super::{
    controls::{Controls, Row, nth},
    error_view, format_duration, format_unix_ms,
};
use crate::{
    api::{NodeAction, RoutineRow, load_routines},
    live::use_live,
};

/// The routines table.
#[component]
pub fn RoutinesPage() -> AnyView {
    let live = use_live();
    let controls = Controls::new();
    // The stream's traffic sample comes every second: every fifth is the
    // poll (a routine's runs make no events of their own).
    let every_5s = move || {
        live.traffic
            .with(|t| t.back().map_or(0, |s| s.at_ms / 5000))
    };
    let data = Resource::new(
        move || (live.changes.get(), controls.finished.get(), every_5s()),
        |_| load_routines(),
    );
    view! {
        <Title text="Routines" />
        <h1>"Routines"</h1>
        <p class="muted">"Named tasks the node runs periodically."</p>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || data.get().map(|result| match result {
                Ok(rows) => Either::Left(controls.table(
                    "routines",
                    "The node has no routines.",
                    &["Name", "Every", "Running", "Last run", "Last error", "Runs", "Control"],
                    rows.into_iter().map(routine_row).collect(),
                )),
                Err(e) => Either::Right(error_view(e)),
            })}
        </Transition>
    }
    .into_any()
}

fn routine_row(row: RoutineRow) -> Row {
    let name = row.name;
    let toggle = if row.running {
        (
            "stop secondary",
            "Stop",
            NodeAction::RoutineStop { name: name.clone() },
        )
    } else {
        (
            "start",
            "Start",
            NodeAction::RoutineStart { name: name.clone() },
        )
    };
    Row {
        key: format!("routine-{name}"),
        cells: vec![
            ("mono", name.clone()),
            ("", format_duration(row.interval_secs)),
            ("running", if row.running { "yes" } else { "no" }.to_owned()),
            (
                "",
                row.last_run_ms
                    .map_or_else(|| "never".to_owned(), format_unix_ms),
            ),
            ("alert", row.last_error.unwrap_or_default()),
            ("", row.runs.to_string()),
        ],
        buttons: vec![toggle],
        // A non-number is sent as 0, which the server refuses with the
        // allowed range: one place says what is valid.
        form: Some((
            &[("Every", "secs", "seconds")],
            "Set interval",
            |name, v| NodeAction::RoutineInterval {
                name: name.to_owned(),
                secs: nth(&v, 0).trim().parse().unwrap_or(0),
            },
        )),
        id: name,
    }
}
