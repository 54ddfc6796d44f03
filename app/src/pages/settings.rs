//! `/settings`: the node's editable settings as a form (checked on the
//! server, each refused field's reason shown next to it), and the effective
//! configuration.

use leptos::prelude::*;
use leptos_meta::Title;

use server_fn::ServerFn;

use super::{SubmittedForm, error_view};
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
pub fn SettingsPage() -> AnyView {
    let save = ServerAction::<UpdateSettings>::new();
    // Reload after each save so the page shows what the store now holds.
    let data = Resource::new(move || save.version().get(), |_| load_settings());
    let csrf = session::current().map(|s| s.csrf_token).unwrap_or_default();
    let error = Memo::new(move |_| save.value().get().and_then(Result::err));
    // Read when submitted; a plain form (not `ActionForm`, which decodes
    // the form in the wasm through serde_qs) still posts without script.
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let form = SubmittedForm::of(&ev);
        save.dispatch(UpdateSettings {
            node_name: form.get("node_name"),
            settings_form: form.get("settings_form"),
            accept_inbound_peers: form.get("accept_inbound_peers"),
            placement: form.get("placement"),
            auto_accept: form.get("auto_accept"),
            default_exchange: form.get("default_exchange"),
            enhanced_exchange: form.get("enhanced_exchange"),
            approval_timeout_secs: form.get("approval_timeout_secs"),
            discovery_enabled: form.get("discovery_enabled"),
            auto_connect: form.get("auto_connect"),
            static_hosts: form.get("static_hosts"),
        });
    };
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
                                    <form id="settings-form" method="post" action=UpdateSettings::url() on:submit=on_submit>
                                        <input type="hidden" name=CSRF_FIELD value=csrf />
                                        <input type="hidden" name="settings_form" value="1" />
                                        {settings_fields(view.editable, error)}
                                        <button type="submit" id="save-settings">"Save"</button>
                                    </form>
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
    .into_any()
}

/// Escapes text for an HTML attribute or element.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// How one setting is edited.
enum Input {
    Text { value: String, maxlength: u32 },
    Check(bool),
    Choice(String),
    Lines(Vec<String>),
}

/// One field: its form name, its label and its input. Every field renders
/// through the same view (the input is markup built here, values escaped),
/// so the form costs one view type in the wasm, not one per field.
struct Field {
    name: &'static str,
    label: &'static str,
    input: Input,
}

impl Field {
    fn input_html(&self) -> String {
        let name = self.name;
        let id = format!("{}-input", name.replace('_', "-"));
        // The node name keeps the id the tests and the previous page used.
        let id = if name == "node_name" {
            "node-name-input".to_owned()
        } else {
            id
        };
        match &self.input {
            Input::Text { value, maxlength } => format!(
                r#"<input id="{id}" name="{name}" maxlength="{maxlength}" value="{}">"#,
                escape(value)
            ),
            Input::Check(on) => format!(
                r#"<input type="checkbox" id="{id}" name="{name}"{}>"#,
                if *on { " checked" } else { "" }
            ),
            Input::Choice(current) => {
                let options: String = PLACEMENTS
                    .iter()
                    .map(|(value, text)| {
                        format!(
                            r#"<option value="{value}"{}>{text}</option>"#,
                            if current == value { " selected" } else { "" }
                        )
                    })
                    .collect();
                format!(r#"<select id="{id}" name="{name}">{options}</select>"#)
            }
            Input::Lines(lines) => format!(
                r#"<textarea id="{id}" name="{name}" rows="3">{}</textarea>"#,
                escape(&lines.join("\n"))
            ),
        }
    }
}

fn fields(s: EditableSettings) -> Vec<Field> {
    let text = |value: String, maxlength| Input::Text { value, maxlength };
    vec![
        Field {
            name: "node_name",
            label: "Node name",
            input: text(s.node_name, 64),
        },
        Field {
            name: "placement",
            label: "Peers awaiting approval appear in",
            input: Input::Choice(s.placement),
        },
        Field {
            name: "auto_accept",
            label: "Approve every peer the access list lets through",
            input: Input::Check(s.auto_accept),
        },
        Field {
            name: "default_exchange",
            label: "Approved peers may send messages",
            input: Input::Check(s.default_exchange),
        },
        Field {
            name: "enhanced_exchange",
            label: "Approved peers may send data, tasks, files and peer lists",
            input: Input::Check(s.enhanced_exchange),
        },
        Field {
            name: "approval_timeout_secs",
            label: "Approval timeout (seconds, 10–86400)",
            input: text(s.approval_timeout_secs.to_string(), 5),
        },
        Field {
            name: "accept_inbound_peers",
            label: "Accept inbound peers",
            input: Input::Check(s.accept_inbound_peers),
        },
        Field {
            name: "discovery_enabled",
            label: "LAN discovery (broadcast and multicast)",
            input: Input::Check(s.discovery_enabled),
        },
        Field {
            name: "auto_connect",
            label: "Dial the peers discovery hears (they still wait for approval)",
            input: Input::Check(s.auto_connect),
        },
        Field {
            name: "static_hosts",
            label: "Static hosts, one per line",
            input: Input::Lines(s.static_hosts),
        },
    ]
}

fn settings_fields(s: EditableSettings, error: Memo<Option<PanelError>>) -> impl IntoView {
    fields(s)
        .into_iter()
        .map(|field| {
            let name = field.name;
            let when = if RESTART_FIELDS.contains(&name) {
                "applies after restart"
            } else {
                "applies at once"
            };
            let reason = move || error.get().and_then(|e| e.field(name));
            view! {
                <label class="setting">
                    {field.label}
                    <span class="muted when">{when}</span>
                    <span class="control" inner_html=field.input_html()></span>
                </label>
                <span class="field-error" id=format!("error-{name}") role="alert">{reason}</span>
            }
        })
        .collect_view()
}
