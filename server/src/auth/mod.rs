//! Administrator authentication: passwords, sessions, login throttling.

pub mod password;
pub mod rate_limit;
pub mod refusals;
pub mod session;
