//! Feeds text to the configuration file reader (`--config FILE`): TOML,
//! then every value's check. Checks: no panic, and a refused file names
//! what is wrong.

#![no_main]

use std::panic::{self, PanicHookInfo};

use libfuzzer_sys::fuzz_target;
use server::config::Config;

/// libfuzzer-sys aborts on every panic, even one the code under test
/// catches. `telemetry::parse_filter` catches tracing-subscriber's own
/// directive-parser panics on purpose (a found fault of that crate,
/// turned into a refusal there), so those alone are let unwind to it; any
/// other panic still aborts and is reported.
fn abort_unless_caught_by_parse_filter() {
    let libfuzzer_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
        let in_tracing_subscriber = info
            .location()
            .is_some_and(|at| at.file().contains("tracing-subscriber"));
        if !in_tracing_subscriber {
            libfuzzer_hook(info);
        }
    }));
}

fuzz_target!(init: abort_unless_caught_by_parse_filter(), |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Config::from_toml(text) {
        assert!(!e.to_string().is_empty(), "a refusal without a message");
    }
});
