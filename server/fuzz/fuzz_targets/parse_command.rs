//! Feeds lines to the terminal's command parser (what an administrator
//! types, through `POST /api/parser/input`). Checks: no panic, and every
//! refusal has a message to show.

#![no_main]

use libfuzzer_sys::fuzz_target;
use server::terminal::command::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = parse(line) {
        assert!(!e.to_string().is_empty(), "a refusal without a message");
    }
});
