//! `/terminal`: a command line against the server's parser.
//!
//! Input goes to `POST /api/parser/input`; the transcript is polled from
//! `GET /api/parser/output?after=N`, so output produced by the server later
//! (or from another tab of the same session) appears too.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{TerminalLine, TerminalLineKind};

/// How often the transcript is polled while the page is open.
#[cfg(feature = "hydrate")]
const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(1000);

/// The terminal view.
#[component]
pub fn TerminalPage() -> AnyView {
    let lines = RwSignal::new(Vec::<TerminalLine>::new());
    let input = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let next = StoredValue::new(0u64);

    #[cfg(feature = "hydrate")]
    {
        let poll = move || {
            leptos::task::spawn_local(async move {
                match client::fetch_output(next.get_value()).await {
                    Ok(out) => {
                        absorb(lines, next, out);
                        problem.set(None);
                    }
                    Err(e) => problem.set(Some(e)),
                }
            })
        };
        Effect::new(move |_| {
            poll();
            if let Ok(handle) = set_interval_with_handle(poll, POLL_INTERVAL) {
                on_cleanup(move || handle.clear());
            }
        });
    }

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let line = input.get_untracked();
        if line.trim().is_empty() {
            return;
        }
        input.set(String::new());
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            if let Err(e) = client::send_input(&line).await {
                problem.set(Some(e));
                return;
            }
            match client::fetch_output(next.get_value()).await {
                Ok(out) => absorb(lines, next, out),
                Err(e) => problem.set(Some(e)),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (line, next);
    };

    view! {
        <Title text="Terminal" />
        <h1>"Terminal"</h1>
        <section class="terminal" aria-live="polite">
            <pre id="terminal-output">
                <For each=move || lines.get() key=|l| l.seq let:line>
                    <div class=match line.kind {
                        TerminalLineKind::Input => "t-in",
                        TerminalLineKind::Output => "t-out",
                        TerminalLineKind::Error => "t-err",
                    }>{line.text}</div>
                </For>
            </pre>
            <form id="terminal-form" on:submit=submit>
                <span class="prompt">"›"</span>
                <input
                    id="terminal-input"
                    autocomplete="off"
                    spellcheck="false"
                    placeholder="type help and press Enter"
                    maxlength="1024"
                    bind:value=input
                />
                <button type="submit" id="terminal-send">"Run"</button>
            </form>
            {move || problem.get().map(|p| view! { <p class="alert" role="alert">{p}</p> })}
        </section>
    }
    .into_any()
}

/// Appends the lines of a transcript fetch that are not shown yet. The poll and
/// a submit can fetch from the same position concurrently, and their answers can
/// arrive in either order: lines are taken only past the last shown `seq` (a
/// duplicate key would corrupt the keyed list), and `next` never moves back.
#[cfg(feature = "hydrate")]
fn absorb(
    lines: RwSignal<Vec<TerminalLine>>,
    next: StoredValue<u64>,
    out: crate::api::TerminalOutput,
) {
    if out.next > next.get_value() {
        next.set_value(out.next);
    }
    let shown = lines.with_untracked(|l| l.last().map(|line| line.seq));
    let fresh: Vec<TerminalLine> = out
        .lines
        .into_iter()
        .filter(|line| shown.is_none_or(|last| line.seq > last))
        .collect();
    if !fresh.is_empty() {
        lines.update(|l| l.extend(fresh));
    }
}

#[cfg(feature = "hydrate")]
mod client {
    //! The two HTTP calls, with the CSRF header on the state-changing one.

    use gloo_net::http::Request;

    use crate::api::{TerminalInput, TerminalOutput};
    use crate::session::{CSRF_HEADER, CSRF_META, read_meta};

    pub(super) async fn send_input(line: &str) -> Result<(), String> {
        let token = read_meta(CSRF_META).unwrap_or_default();
        let response = Request::post("/api/parser/input")
            .header(CSRF_HEADER, &token)
            .json(&TerminalInput {
                line: line.to_owned(),
            })
            .map_err(|e| e.to_string())?
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.ok() {
            Ok(())
        } else {
            Err(format!(
                "the server refused the input ({})",
                response.status()
            ))
        }
    }

    pub(super) async fn fetch_output(after: u64) -> Result<TerminalOutput, String> {
        let response = Request::get(&format!("/api/parser/output?after={after}"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.ok() {
            return Err(format!("could not read output ({})", response.status()));
        }
        response
            .json::<TerminalOutput>()
            .await
            .map_err(|e| e.to_string())
    }
}
