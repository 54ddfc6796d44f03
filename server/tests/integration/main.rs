//! The server's integration tests, one binary: each module was once a
//! test target of its own, and every target links the whole server stack
//! (about 300 MB unoptimised), so nine of them cost nine links and 2.5 GB of
//! disk for nothing. Run one module with a filter, e.g.
//! `cargo test -p server --test integration http::`.

mod common;

mod bootstrap;
mod bootstrap_client;
mod bootstrap_panel;
mod http;
mod live;
mod node;
mod store;
mod widescan_http;
mod widescan_netns;
