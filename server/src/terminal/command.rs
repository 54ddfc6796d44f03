//! Parsing one terminal line into a [`Command`].
//!
//! Input is untrusted: it is bounded, must be printable, and anything not
//! understood yields a [`ParseError`] whose message tells the user what to do.

use app::api::NodeAction;

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
    /// `node`: the node's id, listen address and counts.
    Node,
    /// `peers`
    Peers,
    /// `channels`
    Channels,
    /// `pending`
    Pending,
    /// `doctor ID`
    Doctor(String),
    /// `discovery`
    Discovery,
    /// `routines`
    Routines,
    /// An action on the node (approve, block, send, routine ...).
    Action(NodeAction),
    /// `bootstrap`: the bootstrap service in figures.
    Bootstrap,
    /// `bootstrap peers`: the peers registered with it.
    BootstrapPeers,
    /// `bootstrap history`: the latest signatures issued, and whether the
    /// history chains.
    BootstrapHistory,
    /// `task list`, or `task TARGET ACTION...`: network tasks.
    Task(TaskCommand),
    /// `key list|export|rotate|gen`: the bootstrap authority key.
    Key(KeyCommand),
    /// `scan start|list|show|stop|resume …`: widescan jobs.
    Scan(super::scan::ScanCommand),
}

/// What `key` does with the bootstrap authority key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyCommand {
    /// `key list`: the mode, the key's fingerprint and its rotations.
    List,
    /// `key export`: the public certificate, armored.
    Export,
    /// `key rotate`: a new key, certified by the current one.
    Rotate,
    /// `key gen`: create the key file where there is none.
    Gen,
}

/// What `task` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskCommand {
    /// `task list`: the latest tasks queued.
    List,
    /// `task TARGET ACTION...`: sign and queue one.
    Queue {
        /// `*` or a peer.
        target: String,
        /// The action as typed, e.g. `block ID` or `message TEXT`.
        action: String,
    },
}

/// Every command with its one-line description, in `help` order. An ID
/// may be any unambiguous prefix of a peer id.
pub const COMMANDS: [(&str, &str); 27] = [
    ("help", "list commands, or `help <command>` for one"),
    ("version", "show the server version"),
    ("whoami", "show the logged-in administrator"),
    ("uptime", "show how long the server has been running"),
    ("node", "the node's id, listen address and counts"),
    ("peers", "known peers with their decisions and grants"),
    ("channels", "active channels: state, round trip, bytes"),
    ("pending", "peers waiting for approval"),
    (
        "approve",
        "`approve ID`: let a waiting peer in (remembered)",
    ),
    ("reject", "`reject ID`: refuse a waiting peer"),
    (
        "connect",
        "`connect ADDR` or `connect ID@ADDR`: dial a peer",
    ),
    ("disconnect", "`disconnect ID`: close the channel to a peer"),
    (
        "remove",
        "`remove ID`: forget a peer and what was decided about it",
    ),
    (
        "block",
        "`block ID|ADDRESS|CIDR`: refuse it both ways, now and later",
    ),
    ("unblock", "`unblock ID|ADDRESS|CIDR`: lift a block"),
    ("elevate", "`elevate ID`: grant a peer everything"),
    ("demote", "`demote ID`: revoke every grant of a peer"),
    ("send", "`send ID TEXT`: send a text message"),
    (
        "perf",
        "`perf ID [UP [DOWN]]`: speed test over the channel (sizes like 16M, 512K, 1G; default 16M each way)",
    ),
    ("doctor", "`doctor ID`: why a peer is or is not connected"),
    (
        "discovery",
        "LAN discovery: ports, interfaces, datagrams, peers heard",
    ),
    ("routines", "the node's routines"),
    (
        "routine",
        "`routine start|stop NAME` or `routine interval NAME SECS`",
    ),
    (
        "bootstrap",
        "the bootstrap server: mode, network, peers, snapshot, authority; \
         `bootstrap peers`: each registered peer's addresses, record and expiry; \
         `bootstrap history`: the latest signatures issued, and whether the chain holds",
    ),
    (
        "task",
        "network tasks the authority signs: `task list`, or `task TARGET ACTION` \
         where TARGET is `*` or a registered peer and ACTION is `block ID`, \
         `block-network CIDR`, `disconnect ID`, `authorize ID SCOPES [SECS]`, \
         `revoke ID`, `message TEXT` or `ping` (queued for a day, audited)",
    ),
    (
        "key",
        "the bootstrap authority key: `key list` (fingerprint, rotations), \
         `key export` (public certificate), `key rotate` (a new key the old \
         one certifies), `key gen` (create the key file where there is none)",
    ),
    (
        "scan",
        "widescan jobs: `scan start -p PREFIX [-x EXCLUDE] [--rate N] \
         [--per-subnet-rate N] [--hardware auto|gpu|cpu] [--transport kernel|packet] \
         [--seed N] [--shard K/N] [--contact TEXT] [--interface IF]`, `scan list`, \
         `scan show ID`, `scan stop ID`, `scan resume ID` (from its checkpoint)",
    ),
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

/// What `key` takes.
const KEY_ARGUMENTS: ParseError = ParseError::Arguments {
    command: "key",
    expected: "one of `list`, `export`, `rotate` or `gen`",
};

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
    let one = |command: &'static str, expected: &'static str| match args.as_slice() {
        [arg] => Ok((*arg).to_owned()),
        _ => Err(ParseError::Arguments { command, expected }),
    };
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
        "node" => no_args("node", Command::Node),
        "peers" => no_args("peers", Command::Peers),
        "channels" => no_args("channels", Command::Channels),
        "pending" => no_args("pending", Command::Pending),
        "discovery" => no_args("discovery", Command::Discovery),
        "routines" => no_args("routines", Command::Routines),
        "doctor" => one("doctor", "one peer id").map(Command::Doctor),
        "approve" => {
            one("approve", "one peer id").map(|peer| Command::Action(NodeAction::Approve { peer }))
        }
        "reject" => {
            one("reject", "one peer id").map(|peer| Command::Action(NodeAction::Reject { peer }))
        }
        "disconnect" => one("disconnect", "one peer id")
            .map(|peer| Command::Action(NodeAction::Disconnect { peer })),
        "remove" => {
            one("remove", "one peer id").map(|peer| Command::Action(NodeAction::Remove { peer }))
        }
        "elevate" => {
            one("elevate", "one peer id").map(|peer| Command::Action(NodeAction::Elevate { peer }))
        }
        "demote" => {
            one("demote", "one peer id").map(|peer| Command::Action(NodeAction::Demote { peer }))
        }
        "connect" => one("connect", "ADDR or ID@ADDR")
            .map(|target| Command::Action(NodeAction::Connect { target })),
        "block" => one("block", "one peer id, address or CIDR")
            .map(|target| Command::Action(NodeAction::Block { target })),
        "unblock" => one("unblock", "one peer id, address or CIDR")
            .map(|target| Command::Action(NodeAction::Unblock { target })),
        "send" => match args.as_slice() {
            [peer, _, ..] => {
                // The text is the rest of the line, spacing kept.
                let after_name = line.trim_start()[name.len()..].trim_start();
                let text = after_name[peer.len()..].trim().to_owned();
                Ok(Command::Action(NodeAction::Send {
                    peer: (*peer).to_owned(),
                    text,
                }))
            }
            _ => Err(ParseError::Arguments {
                command: "send",
                expected: "a peer id and a message",
            }),
        },
        "perf" => match args.as_slice() {
            [peer, sizes @ ..] if sizes.len() <= 2 => Ok(Command::Action(NodeAction::Perf {
                peer: (*peer).to_owned(),
                upload: sizes.first().map_or_else(String::new, |s| (*s).to_owned()),
                download: sizes.get(1).map_or_else(String::new, |s| (*s).to_owned()),
            })),
            _ => Err(ParseError::Arguments {
                command: "perf",
                expected: "a peer id, then optionally the upload and download sizes",
            }),
        },
        "bootstrap" => match args.as_slice() {
            [] => Ok(Command::Bootstrap),
            [sub] if sub.eq_ignore_ascii_case("peers") => Ok(Command::BootstrapPeers),
            [sub] if sub.eq_ignore_ascii_case("history") => Ok(Command::BootstrapHistory),
            _ => Err(ParseError::Arguments {
                command: "bootstrap",
                expected: "nothing, `peers` or `history`",
            }),
        },
        "task" => match args.as_slice() {
            [sub] if sub.eq_ignore_ascii_case("list") => Ok(Command::Task(TaskCommand::List)),
            [target, _, ..] => {
                // The action is the rest of the line, spacing kept (a message).
                let after_name = line.trim_start()[name.len()..].trim_start();
                Ok(Command::Task(TaskCommand::Queue {
                    target: (*target).to_owned(),
                    action: after_name[target.len()..].trim().to_owned(),
                }))
            }
            _ => Err(ParseError::Arguments {
                command: "task",
                expected: "`list`, or a target (`*` or a peer) and an action",
            }),
        },
        "key" => match args.as_slice() {
            [sub] => match sub.to_ascii_lowercase().as_str() {
                "list" => Ok(Command::Key(KeyCommand::List)),
                "export" => Ok(Command::Key(KeyCommand::Export)),
                "rotate" => Ok(Command::Key(KeyCommand::Rotate)),
                "gen" => Ok(Command::Key(KeyCommand::Gen)),
                _ => Err(KEY_ARGUMENTS),
            },
            _ => Err(KEY_ARGUMENTS),
        },
        "scan" => super::scan::parse(line.trim_start()[name.len()..].trim()).map(Command::Scan),
        "routine" => match args.as_slice() {
            [verb, name] if verb.eq_ignore_ascii_case("start") => {
                Ok(Command::Action(NodeAction::RoutineStart {
                    name: (*name).to_owned(),
                }))
            }
            [verb, name] if verb.eq_ignore_ascii_case("stop") => {
                Ok(Command::Action(NodeAction::RoutineStop {
                    name: (*name).to_owned(),
                }))
            }
            [verb, name, secs] if verb.eq_ignore_ascii_case("interval") => secs
                .parse::<u64>()
                .map(|secs| {
                    Command::Action(NodeAction::RoutineInterval {
                        name: (*name).to_owned(),
                        secs,
                    })
                })
                .map_err(|_| ParseError::Arguments {
                    command: "routine",
                    expected: "a whole number of seconds after `interval NAME`",
                }),
            _ => Err(ParseError::Arguments {
                command: "routine",
                expected: "`start NAME`, `stop NAME` or `interval NAME SECS`",
            }),
        },
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
                    .map(|(name, about)| format!("  {name:<10} {about}")),
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
        assert_eq!(parse("peers"), Ok(Command::Peers));
        assert_eq!(parse("doctor ab12"), Ok(Command::Doctor("ab12".into())));
        assert_eq!(
            parse("approve ab12"),
            Ok(Command::Action(NodeAction::Approve {
                peer: "ab12".into()
            }))
        );
        assert_eq!(
            parse("connect ab12@127.0.0.1:4000"),
            Ok(Command::Action(NodeAction::Connect {
                target: "ab12@127.0.0.1:4000".into()
            }))
        );
        assert_eq!(
            parse("block 10.0.0.0/8"),
            Ok(Command::Action(NodeAction::Block {
                target: "10.0.0.0/8".into()
            }))
        );
        assert_eq!(
            parse("send ab12   hello,  world "),
            Ok(Command::Action(NodeAction::Send {
                peer: "ab12".into(),
                text: "hello,  world".into()
            }))
        );
        assert_eq!(
            parse("perf ab12"),
            Ok(Command::Action(NodeAction::Perf {
                peer: "ab12".into(),
                upload: String::new(),
                download: String::new(),
            }))
        );
        assert_eq!(
            parse("perf ab12 64M 1G"),
            Ok(Command::Action(NodeAction::Perf {
                peer: "ab12".into(),
                upload: "64M".into(),
                download: "1G".into(),
            }))
        );
        assert!(parse("perf").is_err());
        assert!(parse("perf ab12 1M 2M 3M").is_err());
        assert_eq!(
            parse("routine interval DiscernPeerChannels 30"),
            Ok(Command::Action(NodeAction::RoutineInterval {
                name: "DiscernPeerChannels".into(),
                secs: 30
            }))
        );
    }

    #[test]
    fn bootstrap_and_key_commands_parse_and_refuse_extras() {
        assert_eq!(parse("bootstrap"), Ok(Command::Bootstrap));
        assert_eq!(parse("Bootstrap PEERS"), Ok(Command::BootstrapPeers));
        assert_eq!(parse("bootstrap history"), Ok(Command::BootstrapHistory));
        assert_eq!(parse("task list"), Ok(Command::Task(TaskCommand::List)));
        assert_eq!(
            parse("task * message  hello   world "),
            Ok(Command::Task(TaskCommand::Queue {
                target: "*".into(),
                action: "message  hello   world".into()
            }))
        );
        assert!(matches!(
            parse("task"),
            Err(ParseError::Arguments {
                command: "task",
                ..
            })
        ));
        assert!(matches!(
            parse("task abc"),
            Err(ParseError::Arguments {
                command: "task",
                ..
            })
        ));
        assert_eq!(parse("key list"), Ok(Command::Key(KeyCommand::List)));
        assert_eq!(parse("key Export"), Ok(Command::Key(KeyCommand::Export)));
        assert_eq!(parse("key rotate"), Ok(Command::Key(KeyCommand::Rotate)));
        assert_eq!(parse("KEY gen"), Ok(Command::Key(KeyCommand::Gen)));
        for line in ["bootstrap nodes", "bootstrap peers now"] {
            assert_eq!(
                parse(line),
                Err(ParseError::Arguments {
                    command: "bootstrap",
                    expected: "nothing, `peers` or `history`"
                }),
                "{line}"
            );
        }
        for line in ["key", "key delete", "key list all", "key rotate now"] {
            let err = parse(line).expect_err(line);
            assert_eq!(err, KEY_ARGUMENTS, "{line}");
            assert_eq!(
                err.to_string(),
                "`key` takes one of `list`, `export`, `rotate` or `gen`; type `help key`"
            );
        }
        assert!(help(Some("key")).expect("help key")[0].contains("key rotate"));
        assert!(help(Some("bootstrap")).expect("help")[0].contains("bootstrap peers"));
    }

    #[test]
    fn node_commands_name_what_they_need() {
        for line in [
            "approve",
            "approve a b",
            "send ab12",
            "routine",
            "routine interval X soon",
            "doctor",
        ] {
            let err = parse(line).expect_err(line);
            assert!(matches!(err, ParseError::Arguments { .. }), "{line}: {err}");
            assert!(err.to_string().contains("help"), "{line}: {err}");
        }
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
