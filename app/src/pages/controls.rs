//! Buttons and forms that run a node action, each showing its own result
//! line (or error) beside it. Every button is one view type and every form
//! another: each distinct view is code in the wasm.
//!
//! Outcomes live in a map keyed by control, outside the rows they are shown
//! in: a live refetch rebuilds the rows, and the line must survive it.

use leptos::{either::Either, prelude::*};

use super::{ByKey, cells};
use crate::api::{NodeAction, run_node_action};

/// What a control's last action did.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Outcome {
    /// Sent, no answer yet.
    Running,
    /// The server's line saying what was done.
    Done(String),
    /// Why it was not done.
    Failed(String),
}

/// The outcomes of a page's controls; cheap to copy.
#[derive(Clone, Copy)]
pub(super) struct Controls {
    outcomes: RwSignal<ByKey<Outcome>>,
    /// Goes up when an action finished: the page's data may have changed
    /// even where no live event says so (an access-list entry, a routine).
    pub(super) finished: RwSignal<u64>,
}

impl Controls {
    pub(super) fn new() -> Self {
        Self {
            outcomes: RwSignal::new(ByKey::default()),
            finished: RwSignal::new(0),
        }
    }

    /// Runs `action` for the control `key`.
    pub(super) fn run(self, key: String, action: NodeAction) {
        self.outcomes
            .update(|m| m.set(key.clone(), Outcome::Running));
        leptos::task::spawn_local(async move {
            let outcome = match run_node_action(action).await {
                Ok(line) => Outcome::Done(line),
                Err(e) => Outcome::Failed(e.to_string()),
            };
            self.outcomes.update(|m| m.set(key, outcome));
            self.finished.update(|n| *n += 1);
        });
    }

    /// The result line of the control `key` (empty before its first use).
    /// One element whose class and text change: a view per outcome would
    /// cost wasm size.
    pub(super) fn outcome(self, key: String) -> impl IntoView {
        let class = {
            let key = key.clone();
            move || {
                self.outcomes.with(|m| match m.get(&key) {
                    None => "result",
                    Some(Outcome::Running) => "result muted",
                    Some(Outcome::Done(_)) => "result ok",
                    Some(Outcome::Failed(_)) => "result alert",
                })
            }
        };
        let text = {
            let key = key.clone();
            move || {
                self.outcomes.with(|m| match m.get(&key) {
                    None => String::new(),
                    Some(Outcome::Running) => "working…".to_owned(),
                    Some(Outcome::Done(line) | Outcome::Failed(line)) => line.clone(),
                })
            }
        };
        view! { <span class=class data-for=key role="status" aria-live="polite">{text}</span> }
    }

    /// Buttons (class, label, action) that run their action for `key`.
    pub(super) fn buttons(
        self,
        key: String,
        buttons: Vec<(&'static str, &'static str, NodeAction)>,
    ) -> impl IntoView {
        buttons
            .into_iter()
            .map(|(class, label, action)| self.button(key.clone(), class, label, action))
            .collect_view()
    }

    /// A button that runs `action` for `key`.
    pub(super) fn button(
        self,
        key: String,
        class: &'static str,
        label: &'static str,
        action: NodeAction,
    ) -> impl IntoView {
        view! {
            <button type="button" class=format!("small {class}")
                on:click=move |_| self.run(key.clone(), action.clone())>
                {label}
            </button>
        }
    }
}

/// One field of an action form: its label, its name (the input's id is
/// `{form}-{name}`), its placeholder. A field is required unless its
/// label ends with `(optional)`.
pub(super) type Field = (&'static str, &'static str, &'static str);
/// What a form does with its context and its fields' values.
pub(super) type FormAction = fn(&str, Vec<String>) -> NodeAction;

/// One row of an action [`table`](Controls::table).
pub(super) struct Row {
    /// Its `data-id`: a peer id, a network, a routine name.
    pub(super) id: String,
    /// Its text cells, each with its class.
    pub(super) cells: Vec<(&'static str, String)>,
    /// The control its buttons and form report under.
    pub(super) key: String,
    /// Its buttons: class, label, action.
    pub(super) buttons: Vec<(&'static str, &'static str, NodeAction)>,
    /// A form after the buttons (its context is the row's `id`).
    pub(super) form: Option<(&'static [Field], &'static str, FormAction)>,
}

impl Controls {
    /// A table of action rows (`#{id}-table`), or a line saying it is empty
    /// (`#{id}-empty`). Every table with actions renders through here, so
    /// all of them are one view type.
    pub(super) fn table(
        self,
        id: &'static str,
        empty: &'static str,
        headers: &'static [&'static str],
        rows: Vec<Row>,
    ) -> impl IntoView {
        if rows.is_empty() {
            return Either::Left(view! { <p id=format!("{id}-empty") class="muted">{empty}</p> });
        }
        // The headers are the callers' constants: markup, not a view each.
        let header: String = headers.iter().map(|h| format!("<th>{h}</th>")).collect();
        Either::Right(view! {
            <table id=format!("{id}-table") class="peers">
                <thead><tr inner_html=header></tr></thead>
                <tbody>{rows.into_iter().map(|row| self.row(row)).collect_view()}</tbody>
            </table>
        })
    }

    fn row(self, row: Row) -> impl IntoView {
        let Row {
            id,
            cells: texts,
            key,
            buttons,
            form,
        } = row;
        // A form shows the key's result line itself.
        let outcome = form.is_none().then(|| self.outcome(key.clone()));
        let form = form.map(|(fields, submit, action)| {
            self.form(key.clone(), id.clone(), fields, submit, action)
        });
        view! {
            <tr data-id=id>
                {cells(texts)}
                <td class="actions">
                    {self.buttons(key.clone(), buttons)}
                    {form}
                    {outcome}
                </td>
            </tr>
        }
    }
}

impl Controls {
    /// A form that runs `action(context, values of fields)` for the control
    /// `key` (the form's id is `{key}-form`, its button's `{key}-submit`).
    /// The inputs are read when it is submitted: no signal per field, and
    /// what is typed survives a refetch (the elements are updated in place).
    pub(super) fn form(
        self,
        key: String,
        context: String,
        fields: &'static [Field],
        submit: &'static str,
        action: FormAction,
    ) -> impl IntoView {
        let on_submit = {
            let key = key.clone();
            move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                self.run(key.clone(), action(&context, submitted(&ev, fields)));
            }
        };
        // The fields are markup from this file's constants (and the key, an
        // id or name): no view type per field, and nothing to escape but
        // the key's quotes.
        let inputs: String = fields
            .iter()
            .map(|(label, name, placeholder)| {
                let required = if label.ends_with("(optional)") {
                    ""
                } else {
                    " required"
                };
                format!(
                    r#"<label>{label}<input id="{}-{name}" name="{name}"{required} placeholder="{placeholder}"></label>"#,
                    key.replace('"', "")
                )
            })
            .collect();
        view! {
            <form id=format!("{key}-form") class="inline-form" on:submit=on_submit>
                <span class="fields" inner_html=inputs></span>
                <button type="submit" id=format!("{key}-submit")>{submit}</button>
                {self.outcome(key.clone())}
            </form>
        }
    }
}

/// The values of `fields` in the submitted form (empty where absent).
fn submitted(ev: &leptos::ev::SubmitEvent, fields: &[Field]) -> Vec<String> {
    let form = super::SubmittedForm::of(ev);
    fields
        .iter()
        .map(|(_, name, _)| form.get(name).unwrap_or_default())
        .collect()
}

/// The `n`th value, or nothing (the server says what is missing).
pub(super) fn nth(values: &[String], n: usize) -> String {
    values.get(n).cloned().unwrap_or_default()
}
