//! One module per page, plus the parts pages share: `controls` (action
//! buttons with their result lines) and `throughput` (the traffic chart).

mod bootstrap;
mod controls;
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
pub(crate) use login::LoginPage;
pub(crate) use not_found::NotFound;
pub(crate) use overview::OverviewPage;
pub(crate) use peers::PeersPage;
pub(crate) use routines::RoutinesPage;
pub(crate) use settings::SettingsPage;
pub(crate) use terminal::TerminalPage;
pub(crate) use widescan::WidescanPage;

use leptos::prelude::*;

use crate::api::PanelError;

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

/// Formats Unix milliseconds as `YYYY-MM-DD HH:MM:SS UTC`.
fn format_unix_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// The time of day of Unix milliseconds, `HH:MM:SS` (UTC), for the feed.
fn format_clock(ms: i64) -> String {
    let rem = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// A byte count with a binary unit: `0 B`, `1.5 KiB`, `12.0 MiB`.
///
/// In integers: formatting a float would bring core's float printing
/// (about 15 KB) into the wasm for one decimal.
fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut unit = 0;
    while unit + 1 < UNITS.len() && bytes >> (10 * (unit + 2)) != 0 {
        unit += 1;
    }
    let divisor = 1u64 << (10 * (unit + 1));
    // Tenths, rounded half up; the remainder times ten fits in a u64.
    let rounded = (bytes % divisor * 10 + divisor / 2) / divisor;
    tenths(bytes / divisor * 10 + rounded, UNITS[unit])
}

/// `n` tenths as a decimal with a unit: `(15, "KiB")` is `1.5 KiB`.
fn tenths(n: u64, unit: &str) -> String {
    format!("{}.{} {unit}", n / 10, n % 10)
}

/// Howard Hinnant's days-to-civil conversion (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Formats a duration in seconds as `1d 2h 3m 4s`, leaving out leading zeros.
fn format_duration(total: u64) -> String {
    let (d, h, m, s) = (
        total / 86_400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m {s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_ms_formats_as_utc() {
        assert_eq!(format_unix_ms(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_unix_ms(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_unix_ms(1_795_000_000_123), "2026-11-18 11:06:40 UTC");
        assert_eq!(format_unix_ms(-1000), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn clock_and_bytes_read_naturally() {
        assert_eq!(format_clock(1_795_000_000_123), "11:06:40");
        assert_eq!(format_clock(-1000), "23:59:59");
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(12 << 20), "12.0 MiB");
        assert_eq!(format_bytes(1024 * 1024 - 1), "1024.0 KiB", "rounded");
        assert_eq!(format_bytes(1024 * 1024), "1.0 MiB");
        assert_eq!(format_bytes(u64::MAX), "16384.0 PiB", "the largest unit");
    }

    #[test]
    fn durations_drop_leading_zero_units() {
        assert_eq!(format_duration(5), "5s");
        assert_eq!(format_duration(65), "1m 5s");
        assert_eq!(format_duration(3600), "1h 0m 0s");
        assert_eq!(format_duration(90_061), "1d 1h 1m 1s");
    }
}
