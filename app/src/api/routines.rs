//! The Routines page: the node's named periodic routines.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::PanelError;
use super::codec::FormInJsonOut;
use crate::csrf_client::CsrfClient;

/// One routine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutineRow {
    /// Its name.
    pub name: String,
    /// Seconds between runs.
    pub interval_secs: u64,
    /// Whether it runs.
    pub running: bool,
    /// Its last run, Unix ms.
    pub last_run_ms: Option<i64>,
    /// The error of its last run, if it failed.
    pub last_error: Option<String>,
    /// Runs so far.
    pub runs: u64,
}

/// Every routine of the node.
#[server(client = CsrfClient, protocol = FormInJsonOut)]
pub async fn load_routines() -> Result<Vec<RoutineRow>, PanelError> {
    crate::ssr::backend()?.routines().await
}
