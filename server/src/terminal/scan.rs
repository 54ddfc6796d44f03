//! `scan …`: the widescan jobs from the terminal, with the CLI's flags.
//!
//! ```text
//! scan start -p 2a01:db8:1::/120 --rate 500 --seed 42
//! scan list
//! scan show 3
//! scan stop 3
//! scan resume 3
//! ```

use crate::widescan::ScanRequest;

use super::{ParseError, run::RunError};
use crate::widescan::{ScanError, WidescanService, views::result_row};

/// What `scan` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanCommand {
    /// `scan list`
    List,
    /// `scan show ID`
    Show(i64),
    /// `scan stop ID`
    Stop(i64),
    /// `scan resume ID`
    Resume(i64),
    /// `scan start FLAGS…`
    Start(Box<ScanRequest>),
}

const USAGE: ParseError = ParseError::Arguments {
    command: "scan",
    expected: "`list`, `show ID`, `stop ID`, `resume ID` or `start -p PREFIX [flags]`",
};

/// Parses what follows `scan` (the rest of the line).
pub fn parse(rest: &str) -> Result<ScanCommand, ParseError> {
    let words = split(rest)?;
    let id = |w: &[String]| match w {
        [id] => id.parse::<i64>().map_err(|_| ParseError::Arguments {
            command: "scan",
            expected: "a job id (a number, see `scan list`)",
        }),
        _ => Err(USAGE),
    };
    let Some((verb, args)) = words.split_first() else {
        return Err(USAGE);
    };
    match verb.to_ascii_lowercase().as_str() {
        "list" if args.is_empty() => Ok(ScanCommand::List),
        "show" => id(args).map(ScanCommand::Show),
        "stop" => id(args).map(ScanCommand::Stop),
        "resume" => id(args).map(ScanCommand::Resume),
        "start" => flags(args).map(|r| ScanCommand::Start(Box::new(r))),
        _ => Err(USAGE),
    }
}

/// Words separated by whitespace; `"…"` keeps spaces (a contact string).
fn split(text: &str) -> Result<Vec<String>, ParseError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if quoted {
        return Err(ParseError::Arguments {
            command: "scan",
            expected: "a closing `\"`",
        });
    }
    if started {
        words.push(word);
    }
    Ok(words)
}

/// The CLI's flags into a request (the server checks the values).
fn flags(args: &[String]) -> Result<ScanRequest, ParseError> {
    let mut request = ScanRequest::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with('-') => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        // The field a flag fills, and whether it repeats (a list).
        let (field, repeats): (&mut String, bool) = match flag {
            "-p" | "--prefix" => (&mut request.prefixes, true),
            "-x" | "--exclude" => (&mut request.excludes, true),
            "--rate" => (&mut request.rate, false),
            "--per-subnet-rate" => (&mut request.per_subnet_rate, false),
            "--hardware" => (&mut request.hardware, false),
            "--transport" => (&mut request.transport, false),
            "--seed" => (&mut request.seed, false),
            "--shard" => (&mut request.shard, false),
            "--contact" => (&mut request.contact, false),
            "--interface" => (&mut request.interface, false),
            "--gateway-mac" => (&mut request.gateway_mac, false),
            "--source" => (&mut request.source, false),
            "--test-mode" => {
                return Err(ParseError::Arguments {
                    command: "scan",
                    expected: "no --test-mode: test ranges are allowed by the server's \
                               configuration ([widescan] test_mode)",
                });
            }
            _ => {
                return Err(ParseError::Arguments {
                    command: "scan",
                    expected: "the flags -p/--prefix, -x/--exclude, --rate, --per-subnet-rate, \
                               --hardware, --transport, --seed, --shard, --contact, \
                               --interface, --gateway-mac, --source",
                });
            }
        };
        let value = value(inline, &mut args)?;
        if repeats && !field.is_empty() {
            field.push(',');
            field.push_str(&value);
        } else {
            *field = value;
        }
    }
    Ok(request)
}

/// A flag's value: after `=`, or the next word unless that is another
/// flag (`--rate --seed 1` lacks a rate). A value starting with `--`
/// must be written `--flag=--value`.
fn value<'a>(
    inline: Option<String>,
    args: &mut impl Iterator<Item = &'a String>,
) -> Result<String, ParseError> {
    match inline {
        Some(value) => Ok(value),
        None => {
            args.next()
                .filter(|v| !v.starts_with("--"))
                .cloned()
                .ok_or(ParseError::Arguments {
                    command: "scan",
                    expected: "a value after each flag",
                })
        }
    }
}

/// Runs a `scan` command for `actor`; the lines to show.
pub async fn run(
    service: &WidescanService,
    actor: &str,
    command: ScanCommand,
) -> Result<Vec<String>, RunError> {
    let failed = |e: ScanError| RunError::Scan(e.to_string());
    Ok(match command {
        ScanCommand::Start(request) => {
            let id = service.start(actor, &request).await.map_err(failed)?;
            vec![format!(
                "scan job {id} started; `scan show {id}` follows it"
            )]
        }
        ScanCommand::Stop(id) => {
            service.stop(actor, id).await.map_err(failed)?;
            vec![format!(
                "scan job {id} stopping; `scan resume {id}` continues it"
            )]
        }
        ScanCommand::Resume(id) => {
            service.resume(actor, id).await.map_err(failed)?;
            vec![format!("scan job {id} resumed from its checkpoint")]
        }
        ScanCommand::List => {
            let jobs = service.jobs(50).await.map_err(|e| failed(e.into()))?;
            if jobs.is_empty() {
                return Ok(vec![
                    "no scan jobs; `scan start -p PREFIX` starts one".into(),
                ]);
            }
            let mut lines = vec!["  ID  STATE        DONE     SENT   HITS  PEERS  PREFIXES".into()];
            for job in &jobs {
                let row = service.job_row(job);
                lines.push(format!(
                    "{:>4}  {:<11} {:>4}.{}% {:>8} {:>6} {:>6}  {}",
                    row.id,
                    row.state,
                    row.permille / 10,
                    row.permille % 10,
                    row.sent,
                    row.hits,
                    row.peers,
                    row.prefixes
                ));
            }
            lines
        }
        ScanCommand::Show(id) => {
            let job = service
                .job(id)
                .await
                .map_err(|e| failed(e.into()))?
                .ok_or_else(|| failed(ScanError::NotFound(id)))?;
            let row = service.job_row(&job);
            let mut lines = vec![
                format!(
                    "scan job {} · {} · started by {} at {}",
                    row.id,
                    row.state,
                    row.created_by,
                    app::format::format_unix_ms(row.created_at_ms)
                ),
                format!("prefixes  {}", row.prefixes),
                format!(
                    "excludes  {}",
                    if row.excludes.is_empty() {
                        "none"
                    } else {
                        &row.excludes
                    }
                ),
                format!("order     {} · rate {}/s", row.order, row.rate),
                format!(
                    "done      {}.{}% ({} of {} addresses){}",
                    row.permille / 10,
                    row.permille % 10,
                    row.done,
                    row.total,
                    row.eta_secs
                        .map(|s| format!(", about {s} s left"))
                        .unwrap_or_default()
                ),
                format!(
                    "probes    {} sent ({}/s; {} ms sending, {}/s on average) · {} received ({}/s)",
                    row.sent,
                    row.sent_per_sec,
                    row.send_ms,
                    (row.sent * 1000).checked_div(row.send_ms).unwrap_or(0),
                    row.received,
                    row.received_per_sec
                ),
                format!("found     {} hits · {} peers", row.hits, row.peers),
                format!(
                    "adapter   {} · {} addresses/s",
                    if row.adapter.is_empty() {
                        "not started"
                    } else {
                        &row.adapter
                    },
                    row.generated_per_sec
                ),
            ];
            if let Some(error) = &row.error {
                lines.push(format!("error     {error}"));
            }
            let results = service
                .store()
                .latest_scan_results(id, 20)
                .await
                .map_err(|e| failed(e.into()))?;
            for r in results.into_iter().map(result_row) {
                lines.push(match r.kind.as_str() {
                    "peer" => format!(
                        "  peer {} port {} instance {} via {} {}",
                        r.addr, r.port, r.instance_id, r.via, r.contact
                    ),
                    _ => format!("  hit  {}", r.addr),
                });
            }
            lines
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_flags_parse_into_a_request() {
        let ScanCommand::Start(r) = parse(
            "start -p 2a01::/120,2a02::/120 --prefix=2a03::/126 -x 2a01::1/128 --rate 500 \
             --per-subnet-rate 0 --hardware cpu --transport packet --seed 42 --shard 1/4 \
             --contact \"ops at example.org\" --interface eth0 --gateway-mac 02:00:00:00:00:01 \
             --source 2a01::1",
        )
        .expect("parses") else {
            panic!("a start");
        };
        assert_eq!(r.prefixes, "2a01::/120,2a02::/120,2a03::/126");
        assert_eq!(r.excludes, "2a01::1/128");
        assert_eq!((r.rate.as_str(), r.per_subnet_rate.as_str()), ("500", "0"));
        assert_eq!(
            (r.hardware.as_str(), r.transport.as_str()),
            ("cpu", "packet")
        );
        assert_eq!((r.seed.as_str(), r.shard.as_str()), ("42", "1/4"));
        assert_eq!(r.contact, "ops at example.org");
        assert_eq!(r.interface, "eth0");
        assert_eq!(r.gateway_mac, "02:00:00:00:00:01");
        assert_eq!(r.source, "2a01::1");
    }

    #[test]
    fn job_verbs_and_bad_input() {
        assert_eq!(parse("list"), Ok(ScanCommand::List));
        assert_eq!(parse("show 3"), Ok(ScanCommand::Show(3)));
        assert_eq!(parse("STOP 3"), Ok(ScanCommand::Stop(3)));
        assert_eq!(parse("resume 12"), Ok(ScanCommand::Resume(12)));
        for bad in [
            "",
            "list now",
            "show",
            "show three",
            "stop 1 2",
            "launch",
            "start --rate",
            "start --rate --seed 1",
            "start --warp 9",
            "start --test-mode -p fd00::/120",
            "start --contact \"unterminated",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
