//! What the panel and the terminal show of the scan jobs; changes nothing.

use app::api::{MAX_SHOWN_JOBS, MAX_SHOWN_RESULTS, ScanJobRow, ScanResultRow, WidescanView};

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
                .map(result_row)
                .collect(),
            None => Vec::new(),
        };
        Ok(WidescanView {
            enabled: config.enabled,
            test_mode: config.test_mode,
            max_jobs: u32::try_from(config.max_jobs).unwrap_or(u32::MAX),
            max_rate: config.max_rate,
            jobs: jobs.iter().map(|j| self.job_row(j)).collect(),
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
        assert_eq!(permille(u128::MAX / 2, u128::MAX), 499);
        assert_eq!(permille(u128::MAX, u128::MAX), 1000);
    }
}
