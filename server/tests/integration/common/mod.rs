//! Helpers shared by the server's integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod pg;
pub mod server;
