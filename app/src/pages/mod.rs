//! One module per page, plus the parts pages share: `controls` (action
//! buttons with their result lines) and `throughput` (the traffic chart).

mod bootstrap;
mod controls;
#[cfg(feature = "ssr")]
mod login;
mod not_found;
mod overview;
mod peers;
mod routines;
mod settings;
mod terminal;
mod throughput;
mod widescan;

pub(crate) use bootstrap::BootstrapPage;
#[cfg(feature = "ssr")]
pub use login::login_document;
pub(crate) use not_found::NotFound;
pub(crate) use overview::OverviewPage;
pub(crate) use peers::PeersPage;
pub(crate) use routines::RoutinesPage;
pub(crate) use settings::SettingsPage;
pub(crate) use terminal::TerminalPage;
pub(crate) use widescan::WidescanPage;

use leptos::prelude::*;

use crate::api::PanelError;
pub(crate) use crate::format::{format_bytes, format_clock, format_duration, format_unix_ms};

/// A few values by key: per-control state (an action's outcome, a doctor
/// report, a half-typed field), kept outside the rows a refetch rebuilds.
/// A page has a handful of controls, and a linear search is far smaller in
/// the wasm than a hash map.
#[derive(Clone, Debug, PartialEq)]
struct ByKey<V>(Vec<(String, V)>);

impl<V> Default for ByKey<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<V> ByKey<V> {
    fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn set(&mut self, key: String, value: V) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }
}

/// `<dt>`/`<dd id=…>` pairs of plain text. Every fact list renders
/// through here, as every table's text cells render through [`cells`]:
/// each distinct view type is code in the wasm, and these two serve all.
fn facts(rows: Vec<(&'static str, &'static str, String)>) -> impl IntoView {
    rows.into_iter()
        .map(|(label, id, value)| view! { <dt>{label}</dt><dd id=id>{value}</dd> })
        .collect_view()
}

/// Table cells of plain text, each with its class (see [`facts`]).
fn cells(cells: Vec<(&'static str, String)>) -> impl IntoView {
    cells
        .into_iter()
        .map(|(class, text)| view! { <td class=class>{text}</td> })
        .collect_view()
}

/// A `<dt>`/`<dd>` pair whose value is an id to copy: the text in
/// `<code id=id>`, a Copy button `#button` and the line `#status` that
/// says whether it was copied. Every copyable id renders through here.
fn copyable(
    label: &'static str,
    id: &'static str,
    button: &'static str,
    status: &'static str,
    text: String,
) -> impl IntoView {
    let copied = RwSignal::new(None::<Result<(), String>>);
    let copy = {
        let text = text.clone();
        move |_| {
            let text = text.clone();
            leptos::task::spawn_local(async move {
                copied.set(Some(clipboard::write(&text).await));
            });
        }
    };
    view! {
        <dt>{label}</dt>
        <dd class="id-line">
            <code id=id class="mono selectable">{text}</code>
            <button type="button" class="small" id=button on:click=copy>"Copy"</button>
            <span id=status class="muted">
                {move || match copied.get() {
                    None => String::new(),
                    Some(Ok(())) => "Copied.".to_owned(),
                    Some(Err(e)) => e,
                }}
            </span>
        </dd>
    }
}

mod clipboard {
    //! Copying text, where the browser allows it (a secure context:
    //! https, or http on localhost).

    /// Copies `text`; why not, if it could not.
    pub(super) async fn write(text: &str) -> Result<(), String> {
        #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
        {
            use wasm_bindgen::JsValue;
            let refused = || "Copy not allowed here: select the id and copy it.".to_owned();
            let window = web_sys::window().ok_or_else(refused)?;
            let navigator = window.navigator();
            // `navigator.clipboard` is undefined outside secure contexts;
            // calling it there would throw.
            let present = js_sys::Reflect::get(&navigator, &JsValue::from_str("clipboard"))
                .is_ok_and(|c| !c.is_undefined());
            if !present {
                return Err(refused());
            }
            let promise = navigator.clipboard().write_text(text);
            wasm_bindgen_futures::JsFuture::from(promise)
                .await
                .map(|_| ())
                .map_err(|_| refused())
        }
        #[cfg(not(all(feature = "hydrate", not(feature = "ssr"))))]
        {
            let _ = text;
            Err("Copying works in the browser only.".to_owned())
        }
    }
}

/// The fields of a form as it is submitted, read once from the browser's
/// `FormData`: a page reads its inputs at submit time and keeps no signal
/// per field (on the server, where nothing is submitted, it is empty).
struct SubmittedForm {
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    data: Option<web_sys::FormData>,
}

impl SubmittedForm {
    fn of(ev: &leptos::ev::SubmitEvent) -> Self {
        #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
        {
            use wasm_bindgen::JsCast;
            let data = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlFormElement>().ok())
                .and_then(|form| web_sys::FormData::new_with_form(&form).ok());
            Self { data }
        }
        #[cfg(not(all(feature = "hydrate", not(feature = "ssr"))))]
        {
            let _ = ev;
            Self {}
        }
    }

    /// The value of the field `name`; `None` if the form did not send it
    /// (an unticked checkbox).
    fn get(&self, name: &str) -> Option<String> {
        #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
        {
            self.data.as_ref().and_then(|d| d.get(name).as_string())
        }
        #[cfg(not(all(feature = "hydrate", not(feature = "ssr"))))]
        {
            let _ = name;
            None
        }
    }
}

/// Renders a failed call as an alert.
fn error_view(error: PanelError) -> AnyView {
    view! { <p class="alert" role="alert">{error.to_string()}</p> }.into_any()
}
