//! What the panel shows, and the server functions that fetch or change it,
//! one module per page.
//!
//! The types here are plain data shared by the server and the browser. Every
//! server function uses [`CsrfClient`](crate::csrf_client::CsrfClient) and
//! returns [`PanelError`], so a caller can tell "not logged in" from "bad
//! input" from "server trouble".

mod bootstrap;
mod codec;
mod live;
mod node;
mod overview;
mod peers;
mod routines;
mod settings;
mod terminal;
mod widescan;

use serde::{Deserialize, Serialize};
use server_fn::error::{FromServerFnError, ServerFnErrorErr};

pub use bootstrap::*;
pub use live::*;
pub use node::*;
pub use overview::*;
pub use peers::*;
pub use routines::*;
pub use settings::*;
pub use terminal::*;
pub use widescan::*;

/// Why a panel call failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum PanelError {
    /// No valid session: log in again.
    #[error("not logged in")]
    Unauthorized,
    /// The input was rejected; the message says why.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// Form fields were rejected, each with its reason; nothing was saved.
    #[error("invalid input: {}", describe_fields(.0))]
    Fields(Vec<FieldError>),
    /// The server could not complete the call (database down, …).
    #[error("server error: {0}")]
    Internal(String),
    /// The call itself failed (network, encoding).
    #[error("request failed: {0}")]
    Request(String),
}

/// A form field the server rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field's name (the form input's `name`).
    pub field: String,
    /// Why.
    pub message: String,
}

fn describe_fields(fields: &[FieldError]) -> String {
    fields
        .iter()
        .map(|f| format!("{}: {}", f.field, f.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl PanelError {
    /// The reason given for `field`, if this error names it.
    pub fn field(&self, field: &str) -> Option<String> {
        match self {
            Self::Fields(fields) => fields
                .iter()
                .find(|f| f.field == field)
                .map(|f| f.message.clone()),
            _ => None,
        }
    }
}

impl FromServerFnError for PanelError {
    // As the answers are (see `codec`): one decoder for both.
    type Encoder = codec::JsonText;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        Self::Request(value.to_string())
    }
}
