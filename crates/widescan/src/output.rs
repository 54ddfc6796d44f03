//! Result files: events as NDJSON (one JSON object per line) or CSV.

use std::io::{self, Write};
use std::str::FromStr;

use crate::error::Error;
use crate::event::Event;

/// Result file format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    /// One JSON object per line: `{"type":"hit","addr":…,"unix_ms":…}` or
    /// `{"type":"peer","addr":…,"tcp_port":…,"instance_id":"…","contact":…,"via":…,"unix_ms":…}`.
    #[default]
    Ndjson,
    /// `type,addr,tcp_port,instance_id,contact,via,unix_ms` with a header row.
    Csv,
}

impl FromStr for OutputFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ndjson" | "jsonl" => Ok(OutputFormat::Ndjson),
            "csv" => Ok(OutputFormat::Csv),
            other => Err(Error::InvalidConfig(format!(
                "output format {other:?}: expected ndjson or csv"
            ))),
        }
    }
}

/// Writes events to any `Write` in one format.
#[derive(Debug)]
pub struct ResultWriter<W: Write> {
    out: W,
    format: OutputFormat,
    header_written: bool,
}

const CSV_HEADER: &str = "type,addr,tcp_port,instance_id,contact,via,unix_ms\n";

impl<W: Write> ResultWriter<W> {
    /// A writer; CSV gets its header before the first row.
    pub fn new(out: W, format: OutputFormat) -> Self {
        ResultWriter {
            out,
            format,
            header_written: false,
        }
    }

    /// Writes one event as one line.
    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        match self.format {
            OutputFormat::Ndjson => {
                serde_json::to_writer(&mut self.out, event).map_err(io::Error::other)?;
                self.out.write_all(b"\n")
            }
            OutputFormat::Csv => {
                if !self.header_written {
                    self.out.write_all(CSV_HEADER.as_bytes())?;
                    self.header_written = true;
                }
                match event {
                    Event::Hit { addr, unix_ms } => writeln!(self.out, "hit,{addr},,,,,{unix_ms}"),
                    Event::Peer(p) => writeln!(
                        self.out,
                        "peer,{},{},{:016x},{},{},{}",
                        p.addr,
                        p.tcp_port,
                        p.instance_id,
                        csv_field(&p.contact),
                        p.via.as_str(),
                        p.unix_ms
                    ),
                }
            }
        }
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Quotes a CSV field when needed (RFC 4180); also defuses spreadsheet formulas.
fn csv_field(s: &str) -> String {
    let risky = s.starts_with(['=', '+', '-', '@']);
    if s.contains([',', '"', '\n', '\r']) || risky {
        let body = if risky {
            format!("'{s}")
        } else {
            s.to_string()
        };
        format!("\"{}\"", body.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Peer, PeerVia};

    fn events() -> Vec<Event> {
        vec![
            Event::Hit {
                addr: "2a00::1".parse().expect("addr"),
                unix_ms: 5,
            },
            Event::Peer(Peer {
                addr: "2a00::2".parse().expect("addr"),
                tcp_port: 4000,
                instance_id: 0xab,
                contact: "see \"x\", y".into(),
                via: PeerVia::Answer,
                unix_ms: 6,
            }),
        ]
    }

    /// The test events, written in `format`.
    fn render(format: OutputFormat) -> String {
        let mut w = ResultWriter::new(Vec::new(), format);
        for e in events() {
            w.write(&e).expect("write");
        }
        String::from_utf8(w.into_inner()).expect("utf8")
    }

    #[test]
    fn ndjson_lines_parse_back() {
        let text = render(OutputFormat::Ndjson);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines[0]["type"], "hit");
        assert_eq!(lines[0]["addr"], "2a00::1");
        assert_eq!(lines[1]["type"], "peer");
        assert_eq!(lines[1]["instance_id"], "00000000000000ab");
        assert_eq!(lines[1]["via"], "answer");
        assert_eq!(lines[1]["tcp_port"], 4000);
    }

    #[test]
    fn csv_has_header_and_quotes() {
        let text = render(OutputFormat::Csv);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], CSV_HEADER.trim_end());
        assert_eq!(lines[1], "hit,2a00::1,,,,,5");
        assert_eq!(
            lines[2],
            "peer,2a00::2,4000,00000000000000ab,\"see \"\"x\"\", y\",answer,6"
        );
        assert_eq!(csv_field("=cmd"), "\"'=cmd\"");
        assert!("xml".parse::<OutputFormat>().is_err());
    }
}
