//! Parsing one terminal line into a [`Command`].
//!
//! Input is untrusted: it is bounded, must be printable, and anything not
//! understood yields a [`ParseError`] whose message tells the user what to do.

/// Longest accepted line, in bytes.
pub const MAX_LINE: usize = 1024;

/// A command the terminal understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `help [command]`
    Help(Option<String>),
    /// `version`
    Version,
    /// `whoami`
    WhoAmI,
    /// `uptime`
    Uptime,
}

/// Every command with its one-line description, in `help` order.
pub const COMMANDS: [(&str, &str); 4] = [
    ("help", "list commands, or `help <command>` for one"),
    ("version", "show the server version"),
    ("whoami", "show the logged-in administrator"),
    ("uptime", "show how long the server has been running"),
];

/// Why a line was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but whitespace.
    #[error("empty input")]
    Empty,
    /// Over [`MAX_LINE`] bytes.
    #[error("input too long ({0} bytes; the limit is {MAX_LINE})")]
    TooLong(usize),
    /// Control characters (other than tab) in the line.
    #[error("input contains control characters")]
    ControlCharacters,
    /// A command that does not exist.
    #[error("unknown command `{0}`; type `help` for the list")]
    Unknown(String),
    /// A known command with arguments it does not take.
    #[error("`{command}` takes {expected}; type `help {command}`")]
    Arguments {
        /// The command.
        command: &'static str,
        /// What it takes.
        expected: &'static str,
    },
}

/// Parses one line.
pub fn parse(line: &str) -> Result<Command, ParseError> {
    if line.len() > MAX_LINE {
        return Err(ParseError::TooLong(line.len()));
    }
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Err(ParseError::ControlCharacters);
    }
    let mut words = line.split_whitespace();
    let Some(name) = words.next() else {
        return Err(ParseError::Empty);
    };
    let args: Vec<&str> = words.collect();
    let no_args = |command: &'static str, cmd: Command| {
        if args.is_empty() {
            Ok(cmd)
        } else {
            Err(ParseError::Arguments {
                command,
                expected: "no arguments",
            })
        }
    };
    match name.to_ascii_lowercase().as_str() {
        "help" | "?" => match args.as_slice() {
            [] => Ok(Command::Help(None)),
            [topic] => Ok(Command::Help(Some(topic.to_ascii_lowercase()))),
            _ => Err(ParseError::Arguments {
                command: "help",
                expected: "at most one command name",
            }),
        },
        "version" => no_args("version", Command::Version),
        "whoami" => no_args("whoami", Command::WhoAmI),
        "uptime" => no_args("uptime", Command::Uptime),
        _ => Err(ParseError::Unknown(truncate(name, 40))),
    }
}

/// The help text for `topic` (or all commands).
pub fn help(topic: Option<&str>) -> Result<Vec<String>, ParseError> {
    match topic {
        None => {
            let mut lines = vec!["Commands:".to_owned()];
            lines.extend(
                COMMANDS
                    .iter()
                    .map(|(name, about)| format!("  {name:<8} {about}")),
            );
            Ok(lines)
        }
        Some(topic) => COMMANDS
            .iter()
            .find(|(name, _)| *name == topic)
            .map(|(name, about)| vec![format!("{name}: {about}")])
            .ok_or_else(|| ParseError::Unknown(truncate(topic, 40))),
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_commands_case_insensitively() {
        assert_eq!(parse("help"), Ok(Command::Help(None)));
        assert_eq!(
            parse("  HELP   version "),
            Ok(Command::Help(Some("version".into())))
        );
        assert_eq!(parse("version"), Ok(Command::Version));
        assert_eq!(parse("WhoAmI"), Ok(Command::WhoAmI));
        assert_eq!(parse("uptime"), Ok(Command::Uptime));
    }

    #[test]
    fn rejects_garbage_with_clear_errors() {
        assert_eq!(parse("   "), Err(ParseError::Empty));
        assert_eq!(parse("rm -rf /"), Err(ParseError::Unknown("rm".into())));
        assert_eq!(
            parse("version now"),
            Err(ParseError::Arguments {
                command: "version",
                expected: "no arguments"
            })
        );
        assert_eq!(
            parse("help a b"),
            Err(ParseError::Arguments {
                command: "help",
                expected: "at most one command name"
            })
        );
        assert_eq!(parse("who\u{1b}[2Jami"), Err(ParseError::ControlCharacters));
        assert_eq!(
            parse(&"x".repeat(MAX_LINE + 1)),
            Err(ParseError::TooLong(MAX_LINE + 1))
        );
        let long_unknown = parse(&"é".repeat(100)).expect_err("unknown");
        assert!(long_unknown.to_string().contains('…'), "{long_unknown}");
        assert!(
            parse("nonsense")
                .expect_err("unknown")
                .to_string()
                .contains("type `help`")
        );
    }

    #[test]
    fn help_lists_every_command_and_explains_one() {
        let all = help(None).expect("help");
        for (name, _) in COMMANDS {
            assert!(
                all.iter().any(|l| l.trim_start().starts_with(name)),
                "{name} missing"
            );
        }
        assert_eq!(
            help(Some("whoami")).expect("topic"),
            vec!["whoami: show the logged-in administrator"]
        );
        assert!(help(Some("nope")).is_err());
    }
}
