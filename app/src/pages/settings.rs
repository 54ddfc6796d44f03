//! `/settings`: the effective configuration and the editable settings.

use leptos::prelude::*;
use leptos_meta::Title;

use super::error_view;
use crate::{
    api::{UpdateSettings, load_settings},
    session::{self, CSRF_FIELD},
};

/// Shows the configuration; the form saves the editable settings.
#[component]
pub fn SettingsPage() -> impl IntoView {
    let save = ServerAction::<UpdateSettings>::new();
    // Reload after each save so the page shows what the store now holds.
    let data = Resource::new(move || save.version().get(), |_| load_settings());
    let csrf = session::current().map(|s| s.csrf_token).unwrap_or_default();
    let status = move || match save.value().get() {
        None => None,
        Some(Ok(_)) => {
            Some(view! { <p class="ok" id="save-status" role="status">"Saved."</p> }.into_any())
        }
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
                        Ok(view) => view! {
                            <section class="card">
                                <h2>"Node"</h2>
                                <ActionForm action=save attr:id="settings-form">
                                    <input type="hidden" name=CSRF_FIELD value=csrf />
                                    <label>"Node name"
                                        <input id="node-name-input" name="node_name" required maxlength="64" value=view.editable.node_name />
                                    </label>
                                    <label class="check">
                                        <input type="checkbox" name="accept_inbound_peers" checked=view.editable.accept_inbound_peers />
                                        "Accept inbound peers"
                                    </label>
                                    <button type="submit" id="save-settings">"Save"</button>
                                </ActionForm>
                                {status}
                            </section>
                            <section class="card">
                                <h2>"Effective configuration"</h2>
                                <p class="muted">"From the config file, environment and flags; secrets are redacted."</p>
                                <pre id="effective-config">{view.effective_config}</pre>
                            </section>
                        }.into_any(),
                        Err(e) => error_view(e),
                    }
                })
            }}
        </Transition>
    }
}
