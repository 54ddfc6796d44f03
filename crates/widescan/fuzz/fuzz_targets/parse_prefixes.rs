//! Feeds text to the prefix-list parser (what a user types into a scan
//! job's prefixes). Checks: no panic, and every prefix it accepts prints
//! as text that parses back to the same prefix.

#![no_main]

use libfuzzer_sys::fuzz_target;
use widescan::{Prefix, prefix::parse_prefix_list};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(prefixes) = parse_prefix_list(text) {
        for prefix in prefixes {
            let again: Prefix = prefix.to_string().parse().expect("a printed prefix parses");
            assert_eq!(again, prefix);
        }
    }
});
