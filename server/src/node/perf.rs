//! Speed tests the administrator runs from the panel or the terminal
//! (`perf ID [UP [DOWN]]`): sizes read from what was typed, the answer
//! line, and the latest results, which the Peers page shows as a table and
//! a small chart (markup made here, so the browser's code stays small).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use p2pnet::{PeerId, PerfReport, PerfRequest};

/// What a test moves each way when no size is given: 16 MiB.
pub const DEFAULT_SIZE: u64 = 16 << 20;
/// The most a test asked from here may move each way: 1 GiB. The peer
/// caps what it answers too (`Limits::max_perf_bytes`).
pub const MAX_SIZE: u64 = 1 << 30;
/// How long a test may take before it is given up.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Results kept (newest first), and drawn in the chart.
const KEPT: usize = 20;
const CHARTED: usize = 10;

/// The request for sizes as typed (`""` is the default, a bare number is
/// MiB, `K`/`M`/`G` with an optional `iB` or `B` name binary units).
pub fn request(upload: &str, download: &str) -> Result<PerfRequest, String> {
    let mut request = PerfRequest::new(
        parse_size(upload, "upload")?,
        parse_size(download, "download")?,
    );
    request.timeout = TIMEOUT;
    Ok(request)
}

fn parse_size(text: &str, field: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(DEFAULT_SIZE);
    }
    let invalid = || {
        format!("{field}: `{text}` is not a size (e.g. 16, 512K, 64M, 1G; a bare number is MiB)")
    };
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "m" | "mb" | "mib" => 20,
        "k" | "kb" | "kib" => 10,
        "g" | "gb" | "gib" => 30,
        "b" => 0,
        _ => return Err(invalid()),
    };
    let bytes = number
        .checked_mul(1 << shift)
        .filter(|bytes| *bytes <= MAX_SIZE)
        .ok_or_else(|| format!("{field}: at most 1 GiB each way"))?;
    Ok(bytes)
}

/// The answer line of a finished test.
pub fn summary(report: &PerfReport) -> String {
    let o = &report.outcome;
    let connect = report.connect_time.map_or_else(|| "–".to_owned(), millis);
    format!(
        "perf {}: up {} in {} ({}) · down {} in {} ({}) · round trip {} · connect {} · {}",
        report.peer,
        app::format::format_bytes(o.upload_bytes),
        millis(o.upload_time),
        rate(o.upload_rate()),
        app::format::format_bytes(o.download_bytes),
        millis(o.download_time),
        rate(o.download_rate()),
        millis(o.round_trip),
        connect,
        report.cipher,
    )
}

fn millis(time: Duration) -> String {
    format!("{:.2} ms", time.as_secs_f64() * 1000.0)
}

fn rate(bytes_per_sec: f64) -> String {
    if bytes_per_sec <= 0.0 {
        return "–".into();
    }
    let mib = bytes_per_sec / f64::from(1u32 << 20);
    if mib >= 1024.0 {
        format!("{:.2} GiB/s", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB/s")
    }
}

/// One finished test.
#[derive(Debug, Clone)]
struct Entry {
    at_ms: i64,
    report: PerfReport,
}

/// The latest results, newest first.
#[derive(Debug, Default)]
pub struct PerfHistory {
    entries: Mutex<VecDeque<Entry>>,
}

impl PerfHistory {
    /// Keeps a finished test.
    pub fn record(&self, at_ms: i64, report: PerfReport) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.push_front(Entry { at_ms, report });
        entries.truncate(KEPT);
    }

    /// The results as the Peers page shows them: a chart of the latest
    /// tests' throughput each way, and a table. Empty before the first.
    pub fn html(&self) -> String {
        let entries: Vec<Entry> = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        if entries.is_empty() {
            return r#"<p class="muted" id="perf-empty">No speed test yet: use a channel's “Speed test” button or the form below (both sides need the perf scope).</p>"#.into();
        }
        let mut html = chart(&entries[..entries.len().min(CHARTED)]);
        html.push_str(
            r#"<table id="perf-results"><thead><tr><th>When</th><th>Peer</th><th>Up</th><th>Down</th><th>Round trip</th><th>Connect</th><th>Cipher</th></tr></thead><tbody>"#,
        );
        for entry in &entries {
            let o = &entry.report.outcome;
            let peer = entry.report.peer.to_string();
            let _ = write!(
                html,
                r#"<tr><td>{}</td><td class="mono" title="{peer}">{}…</td><td>{} · {}</td><td>{} · {}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                app::format::format_unix_ms(entry.at_ms),
                &peer[..12.min(peer.len())],
                app::format::format_bytes(o.upload_bytes),
                rate(o.upload_rate()),
                app::format::format_bytes(o.download_bytes),
                rate(o.download_rate()),
                millis(o.round_trip),
                entry
                    .report
                    .connect_time
                    .map_or_else(|| "–".to_owned(), millis),
                entry.report.cipher,
            );
        }
        html.push_str("</tbody></table>");
        html
    }
}

/// Two bars a test (up, down), oldest on the left, scaled to the fastest.
fn chart(newest_first: &[Entry]) -> String {
    const W: f64 = 600.0;
    const H: f64 = 120.0;
    let peak = newest_first
        .iter()
        .flat_map(|e| {
            [
                e.report.outcome.upload_rate(),
                e.report.outcome.download_rate(),
            ]
        })
        .fold(0.0f64, f64::max);
    let slot = W / CHARTED as f64;
    let bar = slot * 0.35;
    let mut svg = format!(
        r#"<figure class="perf-chart"><svg id="perf-chart" viewBox="0 0 {W} {}" role="img" aria-label="Throughput of the latest speed tests, up and down">"#,
        H + 16.0
    );
    for (i, entry) in newest_first.iter().rev().enumerate() {
        let x = i as f64 * slot + slot * 0.1;
        for (j, (class, value)) in [
            ("up", entry.report.outcome.upload_rate()),
            ("down", entry.report.outcome.download_rate()),
        ]
        .into_iter()
        .enumerate()
        {
            let height = if peak > 0.0 { value / peak * H } else { 0.0 };
            let _ = write!(
                svg,
                r#"<rect class="bar-{class}" x="{:.1}" y="{:.1}" width="{bar:.1}" height="{height:.1}"><title>{class} {}</title></rect>"#,
                x + j as f64 * bar,
                H - height,
                rate(value),
            );
        }
    }
    let _ = write!(
        svg,
        r#"<text x="0" y="{}" class="axis">peak {} · bars: up, down (oldest left)</text></svg></figure>"#,
        H + 13.0,
        rate(peak)
    );
    svg
}

/// The peer a test ran against, for the audit line.
pub fn audit_detail(peer: PeerId, request: &PerfRequest) -> String {
    format!("{peer}: up {} down {}", request.upload, request.download)
}

#[cfg(test)]
mod tests {
    use p2pnet::proto::Cipher;
    use p2pnet::proto::perf::PerfOutcome;

    use super::*;

    #[test]
    fn sizes_read_with_units_and_bounds() {
        assert_eq!(parse_size("", "up"), Ok(DEFAULT_SIZE));
        assert_eq!(parse_size("8", "up"), Ok(8 << 20));
        assert_eq!(parse_size("512K", "up"), Ok(512 << 10));
        assert_eq!(parse_size(" 64 MiB ", "up"), Ok(64 << 20));
        assert_eq!(parse_size("1g", "up"), Ok(1 << 30));
        assert_eq!(parse_size("100b", "up"), Ok(100));
        assert_eq!(parse_size("0", "up"), Ok(0));
        assert!(
            parse_size("2G", "up")
                .unwrap_err()
                .contains("at most 1 GiB")
        );
        assert!(parse_size("99999999999999999999", "up").is_err());
        assert!(parse_size("ten", "down").unwrap_err().starts_with("down:"));
        assert!(parse_size("5 parsecs", "up").is_err());
    }

    fn report(up_ms: u64) -> PerfReport {
        PerfReport {
            peer: PeerId::from_bytes([9; 32]),
            outcome: PerfOutcome {
                round_trip: Duration::from_micros(250),
                upload_bytes: 1 << 30,
                upload_time: Duration::from_millis(up_ms),
                download_bytes: 16 << 20,
                download_time: Duration::from_millis(100),
            },
            cipher: Cipher::Aes256Gcm,
            connect_time: Some(Duration::from_micros(600)),
        }
    }

    #[test]
    fn the_summary_and_the_page_show_the_figures() {
        let line = summary(&report(500));
        assert!(
            line.contains("up 1.0 GiB in 500.00 ms (2.00 GiB/s)"),
            "{line}"
        );
        assert!(
            line.contains("down 16.0 MiB in 100.00 ms (160.0 MiB/s)"),
            "{line}"
        );
        assert!(
            line.contains("round trip 0.25 ms · connect 0.60 ms · aes-256-gcm"),
            "{line}"
        );

        let history = PerfHistory::default();
        assert!(history.html().contains("perf-empty"));
        for up_ms in [500, 1000] {
            history.record(0, report(up_ms));
        }
        let html = history.html();
        assert_eq!(html.matches("<rect class=\"bar-up\"").count(), 2);
        assert_eq!(html.matches("<tr><td>").count(), 2);
        // The fastest bar is full height; the other half of it.
        assert!(
            html.contains(r#"height="120.0"><title>up 2.00 GiB/s"#),
            "{html}"
        );
        assert!(
            html.contains(r#"height="60.0"><title>up 1.00 GiB/s"#),
            "{html}"
        );
    }

    #[test]
    fn the_history_keeps_the_latest() {
        let history = PerfHistory::default();
        for _ in 0..KEPT + 5 {
            history.record(0, report(500));
        }
        assert_eq!(history.html().matches("<tr><td>").count(), KEPT);
    }
}
