//! Medians, means and the markdown table.

use std::time::Duration;

use crate::common::BULK;

/// What a workload's samples measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Metric {
    /// Each sample moved [`BULK`] bytes; shown as throughput.
    Throughput,
    /// Each sample is one latency; shown in µs.
    Latency,
}

/// One stack's samples of one workload.
#[derive(Debug, Clone)]
struct Row {
    stack: &'static str,
    samples: Vec<Duration>,
}

/// One workload: its rows, plain TCP first.
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    name: String,
    metric: Metric,
    rows: Vec<Row>,
}

impl Workload {
    /// A workload's samples, one list per stack, plain TCP's first.
    pub(crate) fn new<const N: usize>(
        name: String,
        metric: Metric,
        stacks: [&'static str; N],
        samples: [Vec<Duration>; N],
    ) -> Self {
        let rows = stacks
            .into_iter()
            .zip(samples)
            .map(|(stack, samples)| Row { stack, samples })
            .collect();
        Self { name, metric, rows }
    }
}

fn seconds(samples: &[Duration]) -> Vec<f64> {
    samples.iter().map(Duration::as_secs_f64).collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

impl Row {
    /// (median, mean) in the metric's unit: bytes/s or seconds. The
    /// throughput of each run is its own; their median and mean are shown.
    fn figures(&self, metric: Metric) -> (f64, f64) {
        let mut values = seconds(&self.samples);
        if metric == Metric::Throughput {
            values.iter_mut().for_each(|s| *s = BULK as f64 / *s);
        }
        (median(values.clone()), mean(&values))
    }
}

fn format(metric: Metric, value: f64) -> String {
    match metric {
        Metric::Throughput => {
            let mib = value / f64::from(1u32 << 20);
            if mib >= 1024.0 {
                format!("{:.2} GiB/s", mib / 1024.0)
            } else {
                format!("{mib:.0} MiB/s")
            }
        }
        Metric::Latency => {
            let us = value * 1e6;
            if us >= 100.0 {
                format!("{us:.0} µs")
            } else {
                format!("{us:.1} µs")
            }
        }
    }
}

/// The markdown table: each figure and its ratio to plain TCP's (the first
/// row of each workload).
pub(crate) fn table(workloads: &[Workload]) -> String {
    let mut out = String::from(
        "| workload | stack | median | mean | median / TCP | mean / TCP |\n\
         |---|---|---:|---:|---:|---:|\n",
    );
    for workload in workloads {
        let (base_median, base_mean) = workload.rows[0].figures(workload.metric);
        for row in &workload.rows {
            let (median, mean) = row.figures(workload.metric);
            out += &format!(
                "| {} | {} | {} | {} | {:.2}× | {:.2}× |\n",
                workload.name,
                row.stack,
                format(workload.metric, median),
                format(workload.metric, mean),
                median / base_median,
                mean / base_mean,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn ratios_are_to_the_first_row() {
        let ms = Duration::from_millis;
        let workload = Workload::new(
            "w".into(),
            Metric::Latency,
            ["a", "b"],
            [vec![ms(1), ms(1)], vec![ms(3), ms(3)]],
        );
        let table = table(&[workload]);
        assert!(table.contains("| w | a | 1000 µs | 1000 µs | 1.00× | 1.00× |"));
        assert!(table.contains("| w | b | 3000 µs | 3000 µs | 3.00× | 3.00× |"));
    }
}
