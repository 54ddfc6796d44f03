//! A job's findings as CSV or NDJSON, written page by page from the store
//! so a download of millions of rows holds one page in memory.

use serde::Serialize;

use crate::store::ScanResultRecord;

/// Rows read from the store at a time.
pub const PAGE: i64 = 1000;

/// A download format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated, with a header line.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

impl Format {
    /// From a file extension: `csv` or `ndjson`.
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "csv" => Some(Self::Csv),
            "ndjson" => Some(Self::Ndjson),
            _ => None,
        }
    }

    /// The response's content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Ndjson => "application/x-ndjson",
        }
    }

    /// The file's first lines.
    pub fn header(self) -> &'static str {
        match self {
            Self::Csv => "job,kind,addr,instance_id,port,contact,via,at_ms\n",
            Self::Ndjson => "",
        }
    }

    /// One finding as a line.
    pub fn line(self, job: i64, r: &ScanResultRecord) -> String {
        match self {
            Self::Csv => format!(
                "{job},{},{},{},{},{},{},{}\n",
                r.kind,
                r.addr,
                r.instance_id,
                r.port,
                csv_field(&r.contact),
                r.via,
                r.at_ms
            ),
            Self::Ndjson => {
                #[derive(Serialize)]
                struct Line<'a> {
                    job: i64,
                    #[serde(flatten)]
                    result: &'a ScanResultRecord,
                }
                let mut line = serde_json::to_string(&Line { job, result: r })
                    .unwrap_or_else(|_| String::from("{}"));
                line.push('\n');
                line
            }
        }
    }
}

/// A CSV field: quoted when it holds a separator or a quote, and a leading
/// `=`, `+`, `-`, `@` neutralised. A contact string comes from whoever
/// sent the probe, and a spreadsheet would run it as a formula.
fn csv_field(text: &str) -> String {
    let guarded = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(contact: &str) -> ScanResultRecord {
        ScanResultRecord {
            id: 9,
            kind: "peer".into(),
            addr: "2a00::40".into(),
            instance_id: "00000000aaaa0002".into(),
            port: 4000,
            contact: contact.into(),
            via: "answer".into(),
            at_ms: 5,
        }
    }

    #[test]
    fn csv_lines_quote_and_defuse_what_a_remote_wrote() {
        let line = Format::Csv.line(3, &peer("=HYPERLINK(\"x\"),1"));
        assert_eq!(
            line,
            "3,peer,2a00::40,00000000aaaa0002,4000,\"'=HYPERLINK(\"\"x\"\"),1\",answer,5\n"
        );
        assert_eq!(
            Format::Csv.line(3, &peer("https://example.org/scan")),
            "3,peer,2a00::40,00000000aaaa0002,4000,https://example.org/scan,answer,5\n"
        );
        let columns = Format::Csv.header().matches(',').count();
        assert_eq!(
            Format::Csv.line(3, &peer("x")).matches(',').count(),
            columns
        );
    }

    #[test]
    fn ndjson_lines_are_objects_with_the_job() {
        let line = Format::Ndjson.line(3, &peer("a\"b"));
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).expect("json");
        assert_eq!(v["job"], 3);
        assert_eq!(v["contact"], "a\"b");
        assert_eq!(v["port"], 4000);
        assert!(v.get("id").is_none(), "the row id is internal");
        assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
    }
}
