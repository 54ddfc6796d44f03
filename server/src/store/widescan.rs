//! Widescan jobs and their results: definitions, checkpoints, progress
//! counters and findings, so a restart shows each job as it was and an
//! interrupted job resumes where it stopped.
//!
//! Scan indices (range, checkpoint) are stored as decimal text: they are
//! `u128` and may exceed what an SQL integer holds.

use async_trait::async_trait;

use super::{NewAudit, StoreError};

/// A job about to be stored.
#[derive(Clone, Debug)]
pub struct NewScanJob {
    /// When, Unix ms.
    pub created_at_ms: i64,
    /// Who started it.
    pub created_by: String,
    /// The validated request, JSON.
    pub spec: String,
    /// First index of its range (decimal).
    pub range_start: String,
    /// End of its range (decimal, exclusive).
    pub range_end: String,
}

/// A job as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ScanJobRecord {
    /// Its id.
    pub id: i64,
    /// When it was created, Unix ms.
    pub created_at_ms: i64,
    /// Who started it.
    pub created_by: String,
    /// The validated request, JSON.
    pub spec: String,
    /// `running`, `stopping`, `stopped`, `interrupted`, `completed`, `failed`.
    pub state: String,
    /// Why it failed.
    pub error: Option<String>,
    /// First index of its range (decimal).
    pub range_start: String,
    /// End of its range (decimal, exclusive).
    pub range_end: String,
    /// First index not yet handed to the kernel (decimal).
    pub checkpoint: String,
    /// Probes sent, every run together.
    pub sent: i64,
    /// ICMPv6 messages read, every run together.
    pub received: i64,
    /// Probes that could not be sent.
    pub send_errors: i64,
    /// Time spent sending, every run together, ms.
    pub send_ms: i64,
    /// Distinct live hosts stored.
    pub hits: i64,
    /// Distinct instances stored.
    pub peers: i64,
    /// Findings past the per-job cap: counted, not stored.
    pub results_dropped: i64,
    /// Runs started (1 + resumes).
    pub runs: i64,
    /// Where addresses were generated in the last run.
    pub adapter: String,
    /// Its generation rate, addresses a second.
    pub generated_per_sec: i64,
    /// Last change, Unix ms.
    pub updated_at_ms: i64,
}

/// A running job's figures, written about once a second.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanProgressUpdate {
    /// First index not yet handed to the kernel (decimal).
    pub checkpoint: String,
    /// Probes sent, every run together.
    pub sent: i64,
    /// Messages read, every run together.
    pub received: i64,
    /// Probes not sent, every run together.
    pub send_errors: i64,
    /// Time spent sending, every run together, ms.
    pub send_ms: i64,
    /// Where addresses are generated.
    pub adapter: String,
    /// Its generation rate.
    pub generated_per_sec: i64,
    /// When, Unix ms.
    pub at_ms: i64,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct ScanResultRecord {
    /// Its row id (pages of a download go by it).
    #[serde(skip)]
    pub id: i64,
    /// `hit` or `peer`.
    pub kind: String,
    /// The address.
    pub addr: String,
    /// A peer's instance id (16 hex digits), empty for a hit.
    pub instance_id: String,
    /// A peer's TCP port, 0 for a hit.
    pub port: i64,
    /// A peer's contact string.
    pub contact: String,
    /// `probe` or `answer` for a peer, empty for a hit.
    pub via: String,
    /// When, Unix ms.
    pub at_ms: i64,
}

/// What storing a batch of findings did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoredFindings {
    /// New hits stored.
    pub hits: u64,
    /// New peers stored.
    pub peers: u64,
    /// Past the cap: counted, not stored.
    pub dropped: u64,
}

/// Scan jobs and their results.
#[async_trait]
pub trait ScanStore {
    /// Stores a new job in state `running` (its first run) with its audit
    /// entry; its id.
    async fn create_scan_job(&self, job: &NewScanJob, audit: &NewAudit) -> Result<i64, StoreError>;
    /// One job.
    async fn scan_job(&self, id: i64) -> Result<Option<ScanJobRecord>, StoreError>;
    /// The newest jobs first.
    async fn scan_jobs(&self, limit: i64) -> Result<Vec<ScanJobRecord>, StoreError>;
    /// Jobs in one of `states`, oldest first.
    async fn scan_jobs_in(&self, states: &[&str]) -> Result<Vec<ScanJobRecord>, StoreError>;
    /// Moves a job from one of `from` to `to` (with `error`); whether it
    /// was in one of `from`. Starting a run counts it.
    async fn set_scan_state(
        &self,
        id: i64,
        from: &[&str],
        to: &str,
        error: Option<&str>,
        at_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Writes a running job's figures.
    async fn update_scan_progress(
        &self,
        id: i64,
        progress: &ScanProgressUpdate,
    ) -> Result<(), StoreError>;
    /// Stores new findings (one per distinct kind, address and instance),
    /// at most `cap` per job in all, and counts them on the job: one
    /// transaction.
    async fn store_scan_results(
        &self,
        job: i64,
        results: &[ScanResultRecord],
        cap: u64,
    ) -> Result<StoredFindings, StoreError>;
    /// Findings of a job with a row id above `after`, oldest first.
    async fn scan_results_after(
        &self,
        job: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ScanResultRecord>, StoreError>;
    /// The latest findings of a job, newest first.
    async fn latest_scan_results(
        &self,
        job: i64,
        limit: i64,
    ) -> Result<Vec<ScanResultRecord>, StoreError>;
}

/// Implements [`ScanStore`] for a struct with a `pool: sqlx::Pool<$db>`
/// field; both backends run the same SQL.
macro_rules! scan_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::ScanStore for $store {
            async fn create_scan_job(
                &self,
                job: &$crate::store::NewScanJob,
                audit: &$crate::store::NewAudit,
            ) -> Result<i64, $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO scan_jobs (created_at_ms, created_by, spec, state, range_start, \
                     range_end, checkpoint, runs, updated_at_ms) \
                     VALUES ($1, $2, $3, 'running', $4, $5, $4, 1, $1) RETURNING id",
                )
                .bind(job.created_at_ms)
                .bind(&job.created_by)
                .bind(&job.spec)
                .bind(&job.range_start)
                .bind(&job.range_end)
                .fetch_one(&mut *tx)
                .await?;
                let audit = $crate::store::NewAudit {
                    detail: format!("job={id} {}", audit.detail),
                    ..audit.clone()
                };
                $crate::store::audit_row!(&mut *tx, &audit).await?;
                tx.commit().await?;
                Ok(id)
            }

            async fn scan_job(
                &self,
                id: i64,
            ) -> Result<Option<$crate::store::ScanJobRecord>, $crate::store::StoreError> {
                Ok(sqlx::query_as("SELECT * FROM scan_jobs WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn scan_jobs(
                &self,
                limit: i64,
            ) -> Result<Vec<$crate::store::ScanJobRecord>, $crate::store::StoreError> {
                Ok(sqlx::query_as("SELECT * FROM scan_jobs ORDER BY id DESC LIMIT $1")
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn scan_jobs_in(
                &self,
                states: &[&str],
            ) -> Result<Vec<$crate::store::ScanJobRecord>, $crate::store::StoreError> {
                let mut jobs: Vec<$crate::store::ScanJobRecord> = Vec::new();
                for state in states {
                    jobs.extend(
                        sqlx::query_as::<_, $crate::store::ScanJobRecord>(
                            "SELECT * FROM scan_jobs WHERE state = $1",
                        )
                        .bind(*state)
                        .fetch_all(&self.pool)
                        .await?,
                    );
                }
                jobs.sort_by_key(|j| j.id);
                Ok(jobs)
            }

            async fn set_scan_state(
                &self,
                id: i64,
                from: &[&str],
                to: &str,
                error: Option<&str>,
                at_ms: i64,
            ) -> Result<bool, $crate::store::StoreError> {
                // One conditional statement: of two callers moving a job
                // from the same state, exactly one wins.
                let placeholders: Vec<String> =
                    (0..from.len()).map(|i| format!("${}", i + 6)).collect();
                let sql = format!(
                    "UPDATE scan_jobs SET state = $2, error = $3, runs = runs + $4, \
                     updated_at_ms = $5 WHERE id = $1 AND state IN ({})",
                    placeholders.join(", ")
                );
                if from.is_empty() {
                    return Ok(false);
                }
                // Only placeholders are formatted in; the states are bound.
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .bind(to)
                    .bind(error)
                    .bind(i64::from(to == "running"))
                    .bind(at_ms);
                for state in from {
                    query = query.bind(*state);
                }
                Ok(query.execute(&self.pool).await?.rows_affected() > 0)
            }

            async fn update_scan_progress(
                &self,
                id: i64,
                p: &$crate::store::ScanProgressUpdate,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "UPDATE scan_jobs SET checkpoint = $2, sent = $3, received = $4, \
                     send_errors = $5, adapter = $6, generated_per_sec = $7, updated_at_ms = $8, \
                     send_ms = $9 WHERE id = $1",
                )
                .bind(id)
                .bind(&p.checkpoint)
                .bind(p.sent)
                .bind(p.received)
                .bind(p.send_errors)
                .bind(&p.adapter)
                .bind(p.generated_per_sec)
                .bind(p.at_ms)
                .bind(p.send_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn store_scan_results(
                &self,
                job: i64,
                results: &[$crate::store::ScanResultRecord],
                cap: u64,
            ) -> Result<$crate::store::StoredFindings, $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                // Taking the job's row first serializes batches of one job.
                let (hits, peers): (i64, i64) = sqlx::query_as(
                    "UPDATE scan_jobs SET updated_at_ms = updated_at_ms WHERE id = $1 \
                     RETURNING hits, peers",
                )
                .bind(job)
                .fetch_one(&mut *tx)
                .await?;
                let mut room = cap.saturating_sub(u64::try_from(hits + peers).unwrap_or(u64::MAX));
                let mut stored = $crate::store::StoredFindings::default();
                for r in results {
                    if room == 0 {
                        stored.dropped += 1;
                        continue;
                    }
                    let added = sqlx::query(
                        "INSERT INTO scan_results (job_id, kind, addr, instance_id, port, contact, \
                         via, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (job_id, kind, addr, instance_id) DO NOTHING",
                    )
                    .bind(job)
                    .bind(&r.kind)
                    .bind(&r.addr)
                    .bind(&r.instance_id)
                    .bind(r.port)
                    .bind(&r.contact)
                    .bind(&r.via)
                    .bind(r.at_ms)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if added > 0 {
                        room -= 1;
                        if r.kind == "peer" {
                            stored.peers += 1;
                        } else {
                            stored.hits += 1;
                        }
                    }
                }
                let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                sqlx::query(
                    "UPDATE scan_jobs SET hits = hits + $2, peers = peers + $3, \
                     results_dropped = results_dropped + $4 WHERE id = $1",
                )
                .bind(job)
                .bind(count(stored.hits))
                .bind(count(stored.peers))
                .bind(count(stored.dropped))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(stored)
            }

            async fn scan_results_after(
                &self,
                job: i64,
                after: i64,
                limit: i64,
            ) -> Result<Vec<$crate::store::ScanResultRecord>, $crate::store::StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, kind, addr, instance_id, port, contact, via, at_ms \
                     FROM scan_results WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(job)
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn latest_scan_results(
                &self,
                job: i64,
                limit: i64,
            ) -> Result<Vec<$crate::store::ScanResultRecord>, $crate::store::StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, kind, addr, instance_id, port, contact, via, at_ms \
                     FROM scan_results WHERE job_id = $1 ORDER BY id DESC LIMIT $2",
                )
                .bind(job)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}
pub(crate) use scan_store;
