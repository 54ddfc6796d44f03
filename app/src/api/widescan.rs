//! The Widescan page: the server's scan jobs, their live progress and what
//! they found. Started, stopped and resumed through [`NodeAction`]s
//! (`ScanStart`, `ScanStop`, `ScanResume`), like the terminal's `scan`.
//!
//! The server sends the rows formatted, ready to show: the page renders
//! strings, and the wasm carries no decoder or formatter per figure.
//!
//! [`NodeAction`]: super::NodeAction

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::PanelError;
use super::codec::FormInJsonOut;
use crate::csrf_client::CsrfClient;

/// The scan jobs as the panel shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WidescanView {
    /// What may be scanned here (the policy, test mode).
    pub policy: String,
    /// Jobs at once and the highest rate.
    pub limits: String,
    /// The jobs, newest first (at most [`MAX_SHOWN_JOBS`]), each as
    /// cells: id, state (`running`, `stopping`, `stopped`, `interrupted`,
    /// `completed` or `failed`: which of Stop and Resume apply), then what
    /// the table shows: id, state with the error, prefixes, done, sent,
    /// received, hits, peers, time left, generator.
    pub jobs: Vec<Vec<String>>,
    /// The job whose findings are shown (the newest, or the one asked for).
    pub selected: Option<i64>,
    /// Its latest findings, newest first (at most [`MAX_SHOWN_RESULTS`]),
    /// each as cells: kind, address, instance id, port, contact, how it
    /// was learned, when.
    pub results: Vec<Vec<String>>,
}

/// Most jobs a view carries.
pub const MAX_SHOWN_JOBS: usize = 50;
/// Most findings a view carries; the downloads have them all.
pub const MAX_SHOWN_RESULTS: usize = 200;

/// The jobs, and the findings of `job` (default: the newest job).
#[server(client = CsrfClient, protocol = FormInJsonOut)]
pub async fn load_widescan(job: Option<i64>) -> Result<WidescanView, PanelError> {
    crate::ssr::backend()?.widescan_view(job).await
}
