//! Feeds text to the configuration file reader (`--config FILE`): TOML,
//! then every value's check. Checks: no panic, and a refused file names
//! what is wrong.

#![no_main]

use libfuzzer_sys::fuzz_target;
use server::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Config::from_toml(text) {
        assert!(!e.to_string().is_empty(), "a refusal without a message");
    }
});
