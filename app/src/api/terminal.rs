//! The terminal page's transcript, over `/api/parser/*`.

use serde::{Deserialize, Serialize};

/// One line of the terminal transcript.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalLine {
    /// Position in the session's transcript; strictly increasing.
    pub seq: u64,
    /// What the line is.
    pub kind: TerminalLineKind,
    /// The text, one line.
    pub text: String,
}

/// The kind of a [`TerminalLine`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TerminalLineKind {
    /// The command as typed.
    Input,
    /// Normal output.
    Output,
    /// An error message.
    Error,
}

/// Body of `POST /api/parser/input`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TerminalInput {
    /// One command line.
    pub line: String,
}

/// Body of `GET /api/parser/output`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TerminalOutput {
    /// Lines after the requested sequence number, oldest first.
    pub lines: Vec<TerminalLine>,
    /// Pass as `after` on the next poll.
    pub next: u64,
}
