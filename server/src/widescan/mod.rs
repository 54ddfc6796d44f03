//! Widescan jobs: scans the server runs in the background, started,
//! stopped and resumed from the panel and the terminal.
//!
//! - `config.rs`: `[widescan]` and its validation.
//! - `request.rs`: a [`ScanRequest`] (form fields, terminal flags) checked
//!   into a [`request::JobSpec`], every refused field named; the spec is
//!   what the store keeps.
//! - `mod.rs` (here): [`WidescanService`]: the bound on jobs running at
//!   once, start, stop, resume, the restart of jobs a stop interrupted,
//!   and shutdown.
//! - `run.rs`: one run of one job: the library's scan on its threads, its
//!   figures stored and sent on the live feed once a second, its findings
//!   stored in batches, and the instances it finds dialled by the node.
//! - `views.rs`: what the panel and the terminal show; `export.rs`: the
//!   results as CSV or NDJSON.
//!
//! The store is the job's truth: a job's row says its state, checkpoint
//! and counters; the service keeps only the handles of running runs.

pub mod config;
pub mod export;
pub mod request;
mod run;
pub mod views;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use app::api::FieldError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use config::{RawWidescan, WidescanConfig};
use request::JobSpec;
pub use request::ScanRequest;

use crate::{
    node::NodeService,
    state::now_ms,
    store::{NewAudit, NewScanJob, ScanJobRecord, Store, StoreError},
};

/// Dials of found instances in flight at once, over every job.
const CONCURRENT_DIALS: usize = 8;

/// Why a scan could not be started, stopped or resumed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Jobs are off here, or cannot run (no node to announce).
    #[error("{0}")]
    Unavailable(String),
    /// The request was refused; each field with its reason.
    #[error("{}", describe(.0))]
    Fields(Vec<FieldError>),
    /// As many jobs as allowed are running.
    #[error("{0} scan jobs are running already (widescan.max_jobs); stop one or wait")]
    Busy(usize),
    /// No such job.
    #[error("no scan job {0}")]
    NotFound(i64),
    /// The job is not in a state that allows it.
    #[error("{0}")]
    Refused(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn describe(fields: &[FieldError]) -> String {
    fields
        .iter()
        .map(|f| format!("{}: {}", f.field, f.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The states a job's row may be in.
pub mod state {
    /// A run is under way.
    pub const RUNNING: &str = "running";
    /// Asked to stop; the run is ending.
    pub const STOPPING: &str = "stopping";
    /// Stopped by an administrator; resume continues it.
    pub const STOPPED: &str = "stopped";
    /// The server stopped during a run; the next start resumes it.
    pub const INTERRUPTED: &str = "interrupted";
    /// Every address of its range was probed.
    pub const COMPLETED: &str = "completed";
    /// The run failed (the error says why); resume retries it.
    pub const FAILED: &str = "failed";
    /// The states a job may be resumed from.
    pub const RESUMABLE: &[&str] = &[STOPPED, INTERRUPTED, FAILED];
}

/// What a run needs besides its job: a narrow context, shared.
pub(crate) struct JobContext {
    pub(crate) config: WidescanConfig,
    pub(crate) store: Arc<dyn Store>,
    /// The node that dials found instances and carries the live feed.
    pub(crate) node: Option<Arc<NodeService>>,
    pub(crate) dials: Arc<Semaphore>,
    /// Dials spawned by runs; shutdown waits for them.
    pub(crate) tasks: TaskTracker,
}

/// A running job's figures that the store does not keep: its rates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveFigures {
    /// Probes a second over the last second.
    pub sent_per_sec: u64,
    /// Messages read a second over the last second.
    pub received_per_sec: u64,
    /// Seconds left at the average rate.
    pub eta_secs: Option<u64>,
}

struct Running {
    /// Ends the run as a stop by an administrator.
    stop: CancellationToken,
    figures: Arc<Mutex<LiveFigures>>,
}

/// The server's scan jobs.
pub struct WidescanService {
    ctx: Arc<JobContext>,
    /// Whether an explicit `gpu` job can run here: the adapter's name, or
    /// why not. Asked once (it opens a device), at the first such request.
    gpu: tokio::sync::OnceCell<Result<String, String>>,
    slots: Arc<Semaphore>,
    running: Arc<Mutex<HashMap<i64, Running>>>,
    /// Cancelled at shutdown: every run ends as `interrupted`.
    shutdown: CancellationToken,
}

impl WidescanService {
    /// The service; no job runs until [`start`](Self::start),
    /// [`resume`](Self::resume) or [`restore`](Self::restore).
    pub fn new(
        config: WidescanConfig,
        store: Arc<dyn Store>,
        node: Option<Arc<NodeService>>,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(config.max_jobs));
        Self {
            ctx: Arc::new(JobContext {
                config,
                store,
                node,
                dials: Arc::new(Semaphore::new(CONCURRENT_DIALS)),
                tasks: TaskTracker::new(),
            }),
            slots,
            gpu: tokio::sync::OnceCell::new(),
            running: Arc::default(),
            shutdown: CancellationToken::new(),
        }
    }

    /// Whether a GPU job can run here; asked once.
    async fn gpu(&self) -> &Result<String, String> {
        self.gpu
            .get_or_init(|| async {
                let probe = tokio::task::spawn_blocking(|| {
                    let targets = widescan::TargetSet::builder()
                        .parse_prefixes("2a00::/120")?
                        .build()?;
                    let space = widescan::AddressSpace::new(targets, 1)?;
                    widescan::Generator::new(space, widescan::HardwareMode::Gpu)
                        .map(|g| g.hardware().to_string())
                });
                match probe.await {
                    Ok(Ok(adapter)) => Ok(adapter),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(format!("the GPU check failed: {e}")),
                }
            })
            .await
    }

    /// The configuration.
    pub fn config(&self) -> &WidescanConfig {
        &self.ctx.config
    }

    fn running(&self) -> MutexGuard<'_, HashMap<i64, Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A running job's rates.
    pub fn figures(&self, job: i64) -> Option<LiveFigures> {
        self.running()
            .get(&job)
            .map(|r| *r.figures.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether a run of `job` is under way.
    pub fn is_running(&self, job: i64) -> bool {
        self.running().contains_key(&job)
    }

    fn check_available(&self) -> Result<(), ScanError> {
        if !self.ctx.config.enabled {
            return Err(ScanError::Unavailable(
                "scan jobs are off here ([widescan] enabled = false)".into(),
            ));
        }
        if self.ctx.node.is_none() {
            return Err(ScanError::Unavailable(
                "scan jobs announce the embedded node, which is off ([node] enabled = false)"
                    .into(),
            ));
        }
        if self.shutdown.is_cancelled() {
            return Err(ScanError::Unavailable("the server is stopping".into()));
        }
        Ok(())
    }

    fn slot(&self) -> Result<OwnedSemaphorePermit, ScanError> {
        self.slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| ScanError::Busy(self.ctx.config.max_jobs))
    }

    /// Checks and stores a new job, then starts its first run; its id.
    /// Nothing is stored when the request is refused or no slot is free.
    pub async fn start(&self, actor: &str, request: &ScanRequest) -> Result<i64, ScanError> {
        self.check_available()?;
        let (spec, range) = JobSpec::from_request(request, &self.ctx.config, rand::random())
            .map_err(ScanError::Fields)?;
        // An explicit GPU that is not there is the request's fault: said at
        // its field, before anything is stored (`auto` falls back to the CPU).
        if spec.hardware == "gpu"
            && let Err(why) = self.gpu().await
        {
            return Err(ScanError::Fields(vec![FieldError {
                field: "hardware".into(),
                message: format!("{why}; choose auto or cpu"),
            }]));
        }
        let permit = self.slot()?;
        let spec_json = serde_json::to_string(&spec)
            .map_err(|e| ScanError::Refused(format!("cannot store the request: {e}")))?;
        let at_ms = now_ms();
        let id = self
            .ctx
            .store
            .create_scan_job(
                &NewScanJob {
                    created_at_ms: at_ms,
                    created_by: actor.to_owned(),
                    spec: spec_json,
                    range_start: range.start.to_string(),
                    range_end: range.end.to_string(),
                },
                &NewAudit {
                    at_ms,
                    actor: actor.to_owned(),
                    action: "widescan.start".into(),
                    detail: format!(
                        "prefixes={} excludes={} rate={} seed={} shard={}/{}",
                        spec.prefixes.join(","),
                        spec.excludes.join(","),
                        spec.rate,
                        spec.seed,
                        spec.shard.0,
                        spec.shard.1
                    ),
                },
            )
            .await?;
        tracing::info!(job = id, %actor, prefixes = %spec.prefixes.join(","), "scan job started");
        self.spawn_run(
            run::JobStart {
                id,
                spec,
                range,
                checkpoint: range.start,
                base: run::Totals::default(),
            },
            permit,
        );
        Ok(id)
    }

    /// Asks a running job to stop; it keeps its checkpoint for a resume.
    pub async fn stop(&self, actor: &str, job: i64) -> Result<(), ScanError> {
        let token = self.running().get(&job).map(|r| r.stop.clone());
        let Some(token) = token else {
            return match self.ctx.store.scan_job(job).await? {
                None => Err(ScanError::NotFound(job)),
                Some(row) => Err(ScanError::Refused(format!(
                    "scan job {job} is not running (it is {})",
                    row.state
                ))),
            };
        };
        self.ctx
            .store
            .set_scan_state(job, &[state::RUNNING], state::STOPPING, None, now_ms())
            .await?;
        token.cancel();
        self.audit(actor, "widescan.stop", format!("job={job}"))
            .await?;
        Ok(())
    }

    /// Resumes a stopped, interrupted or failed job from its checkpoint.
    pub async fn resume(&self, actor: &str, job: i64) -> Result<(), ScanError> {
        self.check_available()?;
        let row = self
            .ctx
            .store
            .scan_job(job)
            .await?
            .ok_or(ScanError::NotFound(job))?;
        if self.is_running(job) || !state::RESUMABLE.contains(&row.state.as_str()) {
            return Err(ScanError::Refused(format!(
                "scan job {job} is {}: only a stopped, interrupted or failed job resumes",
                row.state
            )));
        }
        let start = run::JobStart::from_row(&row).map_err(ScanError::Refused)?;
        let permit = self.slot()?;
        if !self
            .ctx
            .store
            .set_scan_state(job, state::RESUMABLE, state::RUNNING, None, now_ms())
            .await?
        {
            return Err(ScanError::Refused(format!(
                "scan job {job} changed meanwhile; try again"
            )));
        }
        self.audit(
            actor,
            "widescan.resume",
            format!("job={job} checkpoint={}", start.checkpoint),
        )
        .await?;
        self.spawn_run(start, permit);
        Ok(())
    }

    /// At start: a job the last process left `running` or `stopping` (it
    /// ended without a clean stop) is `interrupted`, and every interrupted
    /// job resumes from its stored checkpoint, while slots last.
    pub async fn restore(&self) -> Result<(), ScanError> {
        let at = now_ms();
        for row in self
            .ctx
            .store
            .scan_jobs_in(&[state::RUNNING, state::STOPPING])
            .await?
        {
            if !self.is_running(row.id) {
                self.ctx
                    .store
                    .set_scan_state(
                        row.id,
                        &[state::RUNNING, state::STOPPING],
                        state::INTERRUPTED,
                        None,
                        at,
                    )
                    .await?;
            }
        }
        if self.check_available().is_err() {
            return Ok(());
        }
        for row in self.ctx.store.scan_jobs_in(&[state::INTERRUPTED]).await? {
            match self.resume("system", row.id).await {
                Ok(()) => tracing::info!(job = row.id, "interrupted scan job resumed"),
                Err(e) => {
                    tracing::warn!(job = row.id, error = %e, "interrupted scan job not resumed")
                }
            }
        }
        Ok(())
    }

    /// Ends every run (each stores its checkpoint and becomes
    /// `interrupted`) and waits for them and their dials.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.ctx.tasks.close();
        self.ctx.tasks.wait().await;
    }

    fn spawn_run(&self, start: run::JobStart, permit: OwnedSemaphorePermit) {
        let id = start.id;
        let stop = CancellationToken::new();
        let figures = Arc::new(Mutex::new(LiveFigures::default()));
        self.running().insert(
            id,
            Running {
                stop: stop.clone(),
                figures: figures.clone(),
            },
        );
        let ctx = self.ctx.clone();
        let running = self.running.clone();
        let shutdown = self.shutdown.clone();
        self.ctx.tasks.spawn(async move {
            run::run_job(ctx, start, run::Signals { stop, shutdown }, figures).await;
            running
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
            drop(permit);
        });
    }

    async fn audit(&self, actor: &str, action: &str, detail: String) -> Result<(), StoreError> {
        self.ctx
            .store
            .append_audit(&NewAudit {
                at_ms: now_ms(),
                actor: actor.to_owned(),
                action: action.into(),
                detail,
            })
            .await
    }

    /// The stored jobs, newest first.
    pub async fn jobs(&self, limit: i64) -> Result<Vec<ScanJobRecord>, StoreError> {
        self.ctx.store.scan_jobs(limit).await
    }

    /// One stored job.
    pub async fn job(&self, id: i64) -> Result<Option<ScanJobRecord>, StoreError> {
        self.ctx.store.scan_job(id).await
    }

    /// The store (for the views and the downloads).
    pub(crate) fn store(&self) -> &dyn Store {
        self.ctx.store.as_ref()
    }
}
