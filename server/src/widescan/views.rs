//! What the panel and the terminal show of the scan jobs; changes nothing.

//! The panel gets its rows formatted, as cells: the page renders strings.

use app::{
    api::{MAX_SHOWN_JOBS, MAX_SHOWN_RESULTS, WidescanView},
    format::{format_duration, format_unix_ms},
};

/// One scan job in figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanJobRow {
    /// Its id.
    pub id: i64,
    /// `running`, `stopping`, `stopped`, `interrupted`, `completed` or `failed`.
    pub state: String,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The prefixes, as validated.
    pub prefixes: String,
    /// The ranges excluded.
    pub excludes: String,
    /// Probes a second asked for.
    pub rate: u32,
    /// Its seed and shard, `seed 42 · shard 0/1`.
    pub order: String,
    /// Done, in tenths of a percent (0 to 1000).
    pub permille: u32,
    /// Addresses done (decimal: they may exceed 64 bits).
    pub done: String,
    /// Addresses in the job's range.
    pub total: String,
    /// Probes the kernel accepted, every run together.
    pub sent: u64,
    /// Time spent sending them, ms.
    pub send_ms: u64,
    /// ICMPv6 messages read, every run together.
    pub received: u64,
    /// Probes a second over the last second (0 when not running).
    pub sent_per_sec: u64,
    /// Messages read a second over the last second.
    pub received_per_sec: u64,
    /// Distinct live hosts found.
    pub hits: u64,
    /// Distinct other instances found.
    pub peers: u64,
    /// Seconds left at the current rate (running jobs).
    pub eta_secs: Option<u64>,
    /// Where its addresses are generated: `GPU <adapter>` or `CPU (n threads)`.
    pub adapter: String,
    /// Addresses the generator makes a second while it works.
    pub generated_per_sec: u64,
    /// Who started it.
    pub created_by: String,
    /// When, Unix ms.
    pub created_at_ms: i64,
}

impl ScanJobRow {
    /// The row as the panel's cells (see [`WidescanView::jobs`]).
    pub fn line(self) -> Vec<String> {
        let state = match &self.error {
            Some(e) => format!("{}: {e}", self.state),
            None => self.state.clone(),
        };
        let generator = match (self.adapter.is_empty(), self.generated_per_sec) {
            (true, _) => String::new(),
            (false, 0) => self.adapter.clone(),
            (false, rate) => format!("{} · {} M/s", self.adapter, rate / 1_000_000),
        };
        vec![
            self.id.to_string(),
            self.state,
            self.id.to_string(),
            state,
            self.prefixes,
            format!("{}.{}%", self.permille / 10, self.permille % 10),
            format!("{} ({}/s)", self.sent, self.sent_per_sec),
            format!("{} ({}/s)", self.received, self.received_per_sec),
            self.hits.to_string(),
            self.peers.to_string(),
            self.eta_secs.map(format_duration).unwrap_or_default(),
            generator,
        ]
    }
}

/// A host or an instance a job found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanResultRow {
    /// `hit` (a live host) or `peer` (another instance).
    pub kind: String,
    /// Its address.
    pub addr: String,
    /// A peer's instance id (16 hex digits); empty for a hit.
    pub instance_id: String,
    /// The TCP port a peer's node listens on; 0 for a hit.
    pub port: u16,
    /// A peer's contact string.
    pub contact: String,
    /// How a peer was learned: `probe` or `answer`.
    pub via: String,
    /// When, Unix ms.
    pub at_ms: i64,
}

impl ScanResultRow {
    /// The row as the panel's cells (see [`WidescanView::results`]).
    pub fn cells(self) -> Vec<String> {
        let port = if self.port == 0 {
            String::new()
        } else {
            self.port.to_string()
        };
        vec![
            self.kind,
            self.addr,
            self.instance_id,
            port,
            self.contact,
            self.via,
            format_unix_ms(self.at_ms),
        ]
    }
}

use super::{WidescanService, request::JobSpec};
use crate::store::{ScanJobRecord, ScanResultRecord, StoreError};

/// Done out of total, in tenths of a percent (0 to 1000), for any sizes.
pub fn permille(done: u128, total: u128) -> u32 {
    if total == 0 {
        return 1000;
    }
    let value = match done.checked_mul(1000) {
        Some(scaled) => scaled / total,
        None => done / (total / 1000),
    };
    u32::try_from(value.min(1000)).unwrap_or(1000)
}

impl WidescanService {
    /// The jobs, newest first, and the latest results of `selected`
    /// (default: the newest job).
    pub async fn view(&self, selected: Option<i64>) -> Result<WidescanView, StoreError> {
        let config = self.config();
        let jobs = self.jobs(MAX_SHOWN_JOBS as i64).await?;
        let selected = selected.or_else(|| jobs.first().map(|j| j.id));
        let results = match selected {
            Some(job) => self
                .store()
                .latest_scan_results(job, MAX_SHOWN_RESULTS as i64)
                .await?
                .into_iter()
                .map(|r| result_row(r).cells())
                .collect(),
            None => Vec::new(),
        };
        let policy = match (config.enabled, config.test_mode) {
            (false, _) => "scan jobs are off here ([widescan] enabled = false)".to_owned(),
            (true, true) => "test mode: test and documentation ranges are admitted".to_owned(),
            (true, false) => {
                "global unicast inside 2000::/3; reserved ranges are refused".to_owned()
            }
        };
        Ok(WidescanView {
            policy,
            limits: format!(
                "{} jobs at once · at most {} probes/s each",
                config.max_jobs, config.max_rate
            ),
            jobs: jobs.iter().map(|j| self.job_row(j).line()).collect(),
            selected,
            results,
        })
    }

    /// One job as a row, with the rates of its run when it runs.
    pub fn job_row(&self, job: &ScanJobRecord) -> ScanJobRow {
        let spec: Option<JobSpec> = serde_json::from_str(&job.spec).ok();
        let index = |t: &str| t.parse::<u128>().unwrap_or(0);
        let (start, end, checkpoint) = (
            index(&job.range_start),
            index(&job.range_end),
            index(&job.checkpoint),
        );
        let total = end.saturating_sub(start);
        let done = checkpoint.saturating_sub(start).min(total);
        let figures = self.figures(job.id).unwrap_or_default();
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        ScanJobRow {
            id: job.id,
            state: job.state.clone(),
            error: job.error.clone(),
            prefixes: spec
                .as_ref()
                .map(|s| s.prefixes.join(", "))
                .unwrap_or_default(),
            excludes: spec
                .as_ref()
                .map(|s| s.excludes.join(", "))
                .unwrap_or_default(),
            rate: spec.as_ref().map_or(0, |s| s.rate),
            order: spec.as_ref().map_or_else(String::new, |s| {
                format!("seed {} · shard {}/{}", s.seed, s.shard.0, s.shard.1)
            }),
            permille: permille(done, total),
            done: done.to_string(),
            total: total.to_string(),
            sent: count(job.sent),
            send_ms: count(job.send_ms),
            received: count(job.received),
            sent_per_sec: figures.sent_per_sec,
            received_per_sec: figures.received_per_sec,
            hits: count(job.hits),
            peers: count(job.peers),
            eta_secs: figures.eta_secs.filter(|_| self.is_running(job.id)),
            adapter: job.adapter.clone(),
            generated_per_sec: count(job.generated_per_sec),
            created_by: job.created_by.clone(),
            created_at_ms: job.created_at_ms,
        }
    }
}

/// A stored finding as the panel shows it.
pub fn result_row(r: ScanResultRecord) -> ScanResultRow {
    ScanResultRow {
        kind: r.kind,
        addr: r.addr,
        instance_id: r.instance_id,
        port: u16::try_from(r.port).unwrap_or(0),
        contact: r.contact,
        via: r.via,
        at_ms: r.at_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::permille;

    #[test]
    fn permille_holds_for_every_size() {
        assert_eq!(permille(0, 0), 1000, "nothing to do is done");
        assert_eq!(permille(1, 3), 333);
        assert_eq!(permille(253, 253), 1000);
        assert_eq!(
            permille(u128::MAX / 2, u128::MAX),
            500,
            "rounded at this size"
        );
        assert_eq!(permille(1 << 100, 1 << 101), 500);
        assert_eq!(permille(u128::MAX, u128::MAX), 1000);
    }
}
