//! The Widescan page: the server's scan jobs, their live progress and what
//! they found. Started, stopped and resumed through [`NodeAction`]s
//! (`ScanStart`, `ScanStop`, `ScanResume`), like the terminal's `scan`.
//!
//! [`NodeAction`]: super::NodeAction

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::PanelError;
use super::codec::FormInJsonOut;
use crate::csrf_client::CsrfClient;

/// A scan as asked for, from the page's form or the terminal's flags:
/// text as typed, checked by the server (an empty field takes the
/// server's default).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRequest {
    /// Prefixes to scan, separated by commas or spaces.
    pub prefixes: String,
    /// Ranges never to probe, separated by commas or spaces.
    pub excludes: String,
    /// Probes a second, all targets together.
    pub rate: String,
    /// Probes a second into any one /64 (`0`: no cap).
    pub per_subnet_rate: String,
    /// `auto`, `gpu` or `cpu`.
    pub hardware: String,
    /// `kernel` or `packet`.
    pub transport: String,
    /// The scan order's seed (empty: random).
    pub seed: String,
    /// `k/n`: scan only shard k of n.
    pub shard: String,
    /// The contact string probes carry.
    pub contact: String,
    /// Send and listen on this interface only.
    pub interface: String,
    /// With the packet transport: the gateway's MAC.
    pub gateway_mac: String,
    /// Source address for probes.
    pub source: String,
}

/// The scan jobs as the panel and the terminal show them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WidescanView {
    /// Whether jobs may run here (`[widescan] enabled`).
    pub enabled: bool,
    /// Whether test ranges are admitted (`[widescan] test_mode`).
    pub test_mode: bool,
    /// Jobs that may run at once.
    pub max_jobs: u32,
    /// Highest rate a job may ask for.
    pub max_rate: u32,
    /// The jobs, newest first (at most [`MAX_SHOWN_JOBS`]).
    pub jobs: Vec<ScanJobRow>,
    /// The job whose results are shown (the newest, or the one asked for).
    pub selected: Option<i64>,
    /// Its latest results, newest first (at most [`MAX_SHOWN_RESULTS`]).
    pub results: Vec<ScanResultRow>,
}

/// Most jobs a view carries.
pub const MAX_SHOWN_JOBS: usize = 50;
/// Most results a view carries; the downloads have them all.
pub const MAX_SHOWN_RESULTS: usize = 200;

/// One scan job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Addresses done and in all (decimal: they may exceed 64 bits).
    pub done: String,
    /// Addresses in the job's range.
    pub total: String,
    /// Probes the kernel accepted, every run together.
    pub sent: u64,
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
    /// Addresses the generator makes a second while it works (0: not measured yet).
    pub generated_per_sec: u64,
    /// Who started it.
    pub created_by: String,
    /// When, Unix ms.
    pub created_at_ms: i64,
}

/// A host or an instance a job found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// The jobs, and the results of `job` (default: the newest job).
#[server(client = CsrfClient, protocol = FormInJsonOut)]
pub async fn load_widescan(job: Option<i64>) -> Result<WidescanView, PanelError> {
    crate::ssr::backend()?.widescan_view(job).await
}
