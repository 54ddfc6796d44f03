//! `/settings`: the node's editable settings as a form (checked on the
//! server, each refused field's reason shown next to it), and the effective
//! configuration.

use leptos::prelude::*;
use leptos_meta::Title;

use super::error_view;
use crate::{
    api::{EditableSettings, PanelError, RESTART_FIELDS, UpdateSettings, load_settings},
    session::{self, CSRF_FIELD},
};

/// The placements the trust policy knows, with how the form shows them.
const PLACEMENTS: [(&str, &str); 3] = [
    ("queue-and-event", "Queue and event (the panel lists them)"),
    ("queue", "Queue only"),
    ("event", "Event only"),
];

/// The form; the configuration below it.
#[component]
pub fn SettingsPage() -> impl IntoView {
    let save = ServerAction::<UpdateSettings>::new();
    // Reload after each save so the page shows what the store now holds.
    let data = Resource::new(move || save.version().get(), |_| load_settings());
    let csrf = session::current().map(|s| s.csrf_token).unwrap_or_default();
    let error = Memo::new(move |_| save.value().get().and_then(Result::err));
    let status = move || match save.value().get() {
        None => None,
        Some(Ok(_)) => {
            Some(view! { <p class="ok" id="save-status" role="status">"Saved."</p> }.into_any())
        }
        Some(Err(PanelError::Fields(_))) => Some(
            view! {
                <p class="alert" id="save-status" role="alert">
                    "Not saved: see the fields marked below."
                </p>
            }
            .into_any(),
        ),
        Some(Err(e)) => Some(
            view! { <p class="alert" id="save-status" role="alert">{e.to_string()}</p> }.into_any(),
        ),
    };
    view! {
        <Title text="Settings" />
        <h1>"Settings"</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                let csrf = csrf.clone();
                data.get().map(|result| {
                    match result {
                        Ok(view) => {
                            let pending = view.pending_restart.clone();
                            view! {
                                <section class="card">
                                    <h2>"Node"</h2>
                                    {(!pending.is_empty()).then(|| view! {
                                        <p class="alert" id="pending-restart">
                                            "Saved, applies after a restart: " {pending.join(", ")}
                                        </p>
                                    })}
                                    <ActionForm action=save attr:id="settings-form">
                                        <input type="hidden" name=CSRF_FIELD value=csrf />
                                        <input type="hidden" name="settings_form" value="1" />
                                        {settings_fields(view.editable, error)}
                                        <button type="submit" id="save-settings">"Save"</button>
                                    </ActionForm>
                                    {status}
                                </section>
                                <section class="card">
                                    <h2>"Effective configuration"</h2>
                                    <p class="muted">"From the config file, environment and flags; secrets are redacted."</p>
                                    <pre id="effective-config">{view.effective_config}</pre>
                                </section>
                            }.into_any()
                        }
                        Err(e) => error_view(e),
                    }
                })
            }}
        </Transition>
    }
}

/// The reason the last save gave for `field`, shown next to it.
fn field_error(error: Memo<Option<PanelError>>, field: &'static str) -> impl IntoView {
    move || {
        error.get().and_then(|e| e.field(field)).map(|message| {
            view! { <span class="field-error" id=format!("error-{field}") role="alert">{message}</span> }
        })
    }
}

fn when(field: &'static str) -> &'static str {
    if RESTART_FIELDS.contains(&field) {
        "applies after restart"
    } else {
        "applies at once"
    }
}

fn checkbox(
    field: &'static str,
    label: &'static str,
    checked: bool,
    error: Memo<Option<PanelError>>,
) -> impl IntoView {
    view! {
        <label class="check">
            <input type="checkbox" id=format!("{field}-input") name=field checked=checked />
            {label}
            <span class="muted when">{when(field)}</span>
        </label>
        {field_error(error, field)}
    }
}

fn settings_fields(s: EditableSettings, error: Memo<Option<PanelError>>) -> impl IntoView {
    let placement = s.placement.clone();
    view! {
        <label>"Node name " <span class="muted when">{when("node_name")}</span>
            <input id="node-name-input" name="node_name" required maxlength="64" value=s.node_name />
        </label>
        {field_error(error, "node_name")}
        <fieldset>
            <legend>"Trust policy"</legend>
            <label>"Peers awaiting approval appear in " <span class="muted when">{when("placement")}</span>
                <select id="placement-input" name="placement">
                    {PLACEMENTS.iter().map(|(value, text)| view! {
                        <option value=*value selected=placement == *value>{*text}</option>
                    }).collect_view()}
                </select>
            </label>
            {field_error(error, "placement")}
            {checkbox("auto_accept", "Approve every peer the access list lets through", s.auto_accept, error)}
            {checkbox("default_exchange", "Approved peers may send messages", s.default_exchange, error)}
            {checkbox("enhanced_exchange", "Approved peers may send data, tasks, files and peer lists", s.enhanced_exchange, error)}
            <label>"Approval timeout (seconds, 10–86400) " <span class="muted when">{when("approval_timeout_secs")}</span>
                <input id="approval-timeout-input" name="approval_timeout_secs" inputmode="numeric" value=s.approval_timeout_secs.to_string() />
            </label>
            {field_error(error, "approval_timeout_secs")}
            {checkbox("accept_inbound_peers", "Accept inbound peers", s.accept_inbound_peers, error)}
        </fieldset>
        <fieldset>
            <legend>"Discovery"</legend>
            {checkbox("discovery_enabled", "LAN discovery (broadcast and multicast)", s.discovery_enabled, error)}
            {checkbox("auto_connect", "Dial the peers discovery hears (they still wait for approval)", s.auto_connect, error)}
            <label>"Static hosts, one per line " <span class="muted when">{when("static_hosts")}</span>
                <textarea id="static-hosts-input" name="static_hosts" rows="3">{s.static_hosts.join("\n")}</textarea>
            </label>
            {field_error(error, "static_hosts")}
        </fieldset>
    }
}
