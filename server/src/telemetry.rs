//! Logging setup for the binary (libraries only emit spans and events).

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

/// Parses `tracing` filter directives (`info,server=debug`).
///
/// Faults of tracing-subscriber 0.3, found by the `parse_config` fuzz
/// target, are kept out:
/// - it panics on some non-ASCII directives (it slices inside a
///   character), so such text is refused first; directives are made of
///   target paths, span and field names and levels, so ASCII loses nothing;
/// - a field value (`[span{field=value}]`) is compiled as a regular
///   expression by default, and a 200-byte one took 10 s and gigabytes to
///   build; values are matched literally instead.
pub fn parse_filter(text: &str) -> Result<EnvFilter, String> {
    if !text.is_ascii() {
        return Err("only ASCII is allowed: target paths, span and field names, levels".into());
    }
    // A third fault: an internal assertion of its directive ordering fails
    // on some filters with field directives (also found by fuzzing). The
    // panic stays inside this call and becomes a refusal.
    std::panic::catch_unwind(|| EnvFilter::builder().with_regex(false).parse(text))
        .map_err(|_| "not a filter tracing-subscriber can read (its parser failed)".to_owned())?
        .map_err(|e| e.to_string())
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
            configured(filter)
        }
        None => configured(filter),
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

/// The configured filter, which the configuration has checked.
fn configured(filter: &str) -> EnvFilter {
    parse_filter(filter).unwrap_or_else(|_| EnvFilter::new("info"))
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

    #[test]
    fn a_filter_that_breaks_the_parser_is_refused() {
        let broken = concat!(
            r#":n['!w{MMMMMMMMMMMMw{D=-UMMMMMMMMMM*M={}],ww:n['!w{D=-UMMMMMM=}],"#,
            r#"ww:n['!w{D=-UMMMMMM={}],w]0"#
        );
        let e = parse_filter(broken).expect_err("refused");
        assert!(!e.is_empty());
    }

    #[test]
    fn a_field_value_is_matched_literally_not_compiled() {
        // The fuzz target's slow input: as a regular expression its field
        // value took 10 s and gigabytes to compile.
        let slow = concat!(
            r#":nwwwWWWWWWWWWWWWWWWWWWWWWWWWWWWWWSwwswwwww@['!wwwwwwwwl{oowgwpr =  wwwwme:morFFFFFFFFFFFFFFFFFFFFFF"#,
            r#"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF+.................................................................."#,
            r#".........FFFFFFFFFFFFFFFFFFFttttttttttttttttttvtttttttttttttttttttttttttttttttttttttttttttFFFFwauth=`'}wwwfo"#,
        );
        let started = std::time::Instant::now();
        let parsed = parse_filter(slow);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        drop(parsed);
    }
}
