//! The node's bytes in and out, and their rate over the last minutes as an
//! inline SVG chart (two polylines; no chart library in the wasm).
//!
//! The samples are the snapshot's history followed by the live ones; a rate
//! is the difference of two consecutive samples over their interval.

use leptos::prelude::*;

use super::{format_bytes, format_duration};
use crate::{
    api::TrafficSample,
    live::{merge_traffic, use_live},
};

/// The chart's drawing size in tenths of a unit (it is scaled to its box).
/// Positions are integers printed with one decimal: float printing would
/// cost the wasm about 15 KB.
const WIDTH: u64 = 6000;
const HEIGHT: u64 = 1200;
/// The most the chart spans, ending at the newest sample...
const WINDOW_MS: i64 = 300_000;
/// ...and the least, so a young node's first samples are not one spike.
const MIN_WINDOW_MS: i64 = 60_000;

/// What the SVG draws.
#[derive(Debug, PartialEq)]
struct Chart {
    /// `x,y` pairs of the receive rate.
    received: String,
    /// `x,y` pairs of the send rate.
    sent: String,
    /// The highest rate in the window, bytes per second (the top edge).
    peak: u64,
    /// The newest rates, bytes per second.
    received_now: u64,
    sent_now: u64,
    /// The time spanned, ms.
    span_ms: i64,
}

/// Bytes per second between two samples (0 if a counter went back); `ms`
/// is positive.
fn rate(from: u64, to: u64, ms: i64) -> u64 {
    to.saturating_sub(from).saturating_mul(1000) / ms.unsigned_abs()
}

/// A position in tenths, printed as a decimal.
fn coordinate(tenths: u64) -> String {
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// The chart of `samples` (oldest first), or `None` with fewer than two.
fn chart(samples: &[TrafficSample]) -> Option<Chart> {
    let end = samples.last()?.at_ms;
    let span_ms = (end - samples.first()?.at_ms).clamp(MIN_WINDOW_MS, WINDOW_MS);
    let start = end - span_ms;
    let points: Vec<(u64, u64, u64)> = samples
        .windows(2)
        .filter(|w| w[1].at_ms > w[0].at_ms && w[1].at_ms >= start)
        .map(|w| {
            let ms = w[1].at_ms - w[0].at_ms;
            let x = (w[1].at_ms - start).unsigned_abs() * WIDTH / span_ms.unsigned_abs();
            (
                x,
                rate(w[0].bytes_received, w[1].bytes_received, ms),
                rate(w[0].bytes_sent, w[1].bytes_sent, ms),
            )
        })
        .collect();
    let &(_, received_now, sent_now) = points.last()?;
    let peak = points.iter().fold(1, |m: u64, &(_, r, s)| m.max(r).max(s));
    let line = |pick: fn(&(u64, u64, u64)) -> u64| {
        points
            .iter()
            .map(|p| {
                let y = HEIGHT - pick(p).saturating_mul(HEIGHT) / peak;
                format!("{},{}", coordinate(p.0), coordinate(y))
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    Some(Chart {
        received: line(|p| p.1),
        sent: line(|p| p.2),
        peak,
        received_now,
        sent_now,
        span_ms,
    })
}

fn per_second(rate: u64) -> String {
    format!("{}/s", format_bytes(rate))
}

/// Totals and the chart: `history` comes from the snapshot, the rest from
/// the live stream.
#[component]
pub fn Throughput(history: Vec<TrafficSample>, sent: u64, received: u64) -> impl IntoView {
    let live = use_live();
    // Recomputed by each reader (300 samples at most): cheaper in the wasm
    // than a memo, and the elements stay put while their values change.
    let drawn = move || live.traffic.with(|t| chart(&merge_traffic(&history, t)));
    let newest = move || live.traffic.with(|t| t.back().copied());
    let bytes_in =
        move || format_bytes(newest().map_or(received, |s| s.bytes_received.max(received)));
    let bytes_out = move || format_bytes(newest().map_or(sent, |s| s.bytes_sent.max(sent)));
    let legend = {
        let drawn = drawn.clone();
        move || match drawn() {
            None => "collecting samples, one a second".to_owned(),
            Some(c) => format!(
                "now {} in, {} out · top of the chart {} · last {}",
                per_second(c.received_now),
                per_second(c.sent_now),
                per_second(c.peak),
                format_duration(u64::try_from(c.span_ms / 1000).unwrap_or(0))
            ),
        }
    };
    view! {
        <dl class="facts plain">
            <dt>"Received"</dt><dd id="bytes-in">{bytes_in}</dd>
            <dt>"Sent"</dt><dd id="bytes-out">{bytes_out}</dd>
        </dl>
        <div id="throughput" class="chart">
            // Markup made here from numbers only: one closure draws it,
            // cheaper in the wasm than an SVG view.
            <div inner_html=move || svg(drawn().as_ref()) />
            <p class="legend muted">
                <span class="key received">"■"</span>" received "
                <span class="key sent">"■"</span>" sent · "{legend}
            </p>
        </div>
    }
}

/// The chart's SVG: two polylines (none yet without samples).
fn svg(chart: Option<&Chart>) -> String {
    let (received, sent) = chart.map_or(("", ""), |c| (c.received.as_str(), c.sent.as_str()));
    format!(
        r#"<svg viewBox="0 0 600 120" preserveAspectRatio="none" role="img" aria-label="Bytes per second received and sent over the last minutes"><polyline class="received" points="{received}"/><polyline class="sent" points="{sent}"/></svg>"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: i64, sent: u64, received: u64) -> TrafficSample {
        TrafficSample {
            at_ms,
            bytes_sent: sent,
            bytes_received: received,
        }
    }

    #[test]
    fn rates_are_differences_over_time_scaled_to_the_peak() {
        assert_eq!(chart(&[sample(0, 0, 0)]), None, "one sample has no rate");
        let c = chart(&[
            sample(0, 0, 0),
            sample(1000, 100, 400),
            sample(3000, 300, 400),
        ])
        .expect("a chart");
        assert_eq!(c.peak, 400);
        assert_eq!(c.received_now, 0);
        assert_eq!(c.sent_now, 100, "200 bytes over 2 s");
        assert_eq!(
            c.span_ms, MIN_WINDOW_MS,
            "a young node's chart spans a minute"
        );
        let received: Vec<&str> = c.received.split(' ').collect();
        assert_eq!(received.len(), 2);
        assert!(
            received[0].ends_with(",0.0"),
            "the peak at the top: {received:?}"
        );
        assert!(received[1].ends_with(",120.0"), "zero at the bottom");
        assert!(received[1].starts_with("600.0,"), "the newest at the right");
        assert!(received[0].starts_with("580.0,"), "2 s of 60 s before it");
    }

    #[test]
    fn old_samples_and_counter_resets_do_not_break_it() {
        let c = chart(&[
            sample(0, 1000, 1000),
            sample(WINDOW_MS + 1000, 0, 0),
            sample(WINDOW_MS + 2000, 50, 50),
        ])
        .expect("a chart");
        assert_eq!(c.span_ms, WINDOW_MS, "at most five minutes");
        assert_eq!(c.received.split(' ').count(), 2, "older ones dropped");
        assert!(c.received.starts_with("598.0,120.0"), "{}", c.received);
        assert_eq!(c.received_now, 50);
    }
}
