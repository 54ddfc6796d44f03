//! Logging setup for the binary (libraries only emit spans and events).

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

/// Parses `tracing` filter directives (`info,server=debug`).
///
/// tracing-subscriber 0.3 panics on some non-ASCII directives (it slices
/// inside a character; found by the `parse_config` fuzz target), so such
/// text is refused first. Directives are made of target paths, span and
/// field names and levels: ASCII loses nothing.
pub fn parse_filter(text: &str) -> Result<EnvFilter, String> {
    if !text.is_ascii() {
        return Err("only ASCII is allowed: target paths, span and field names, levels".into());
    }
    EnvFilter::try_new(text).map_err(|e| e.to_string())
}

/// Installs the global subscriber: `RUST_LOG` if set and valid, else
/// `filter` (already checked by the configuration).
pub fn init(filter: &str, format: LogFormat) {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .map(|text| parse_filter(&text));
    let filter = match from_env {
        Some(Ok(from_env)) => from_env,
        Some(Err(e)) => {
            eprintln!("warning: RUST_LOG ignored ({e}); using log.filter");
            EnvFilter::new(filter)
        }
        None => EnvFilter::new(filter),
    };
    let registry = tracing_subscriber::registry().with(filter);
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => registry.with(fmt::layer().with_target(true)).try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().flatten_event(true))
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::parse_filter;

    #[test]
    fn filters_parse_and_non_ascii_is_refused_not_a_panic() {
        assert!(parse_filter("info,server=debug").is_ok());
        assert!(parse_filter("server[span{name=x}]=trace").is_ok());
        // From the parse_config fuzz target's input: it panicked inside
        // tracing-subscriber's directive parser.
        let e =
            parse_filter(":nwww792, 2\u{292}='''$#\tas[[\u{6ef}\u{36f} 4").expect_err("refused");
        assert!(e.contains("ASCII"), "{e}");
        assert!(parse_filter("info,=[").is_err());
    }
}
