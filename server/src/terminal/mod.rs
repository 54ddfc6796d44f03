//! The panel's command line: parsing, running, and per-session transcripts.

mod bootstrap;
pub mod command;
mod run;
pub mod scan;
mod transcript;

pub use command::{Command, KeyCommand, ParseError, TaskCommand, parse};
pub use run::{RunError, run};
pub use transcript::{TranscriptKey, Transcripts};
