//! A scan as asked for (the panel's form, the terminal's flags) checked
//! into a [`JobSpec`]: every refused field is named, and the spec is what
//! the store keeps, so a resumed run rebuilds exactly the same scan.
//!
//! The library's policy applies unchanged: prefixes outside `2000::/3`
//! and the reserved ranges are refused unless `[widescan] test_mode`.

use std::net::Ipv6Addr;

use app::api::FieldError;
use serde::{Deserialize, Serialize};
use widescan::{
    AddressSpace, Contact, HardwareMode, IndexRange, MacAddr, Prefix, Shard, TargetSet, Transport,
};

use super::config::WidescanConfig;

/// No configured `max_rate` may exceed this (probes a second).
pub const RATE_CEILING: u32 = 10_000_000;
/// Most prefixes (and, apart, excludes) a request may list.
pub const MAX_PREFIXES: usize = 1024;
/// Longest text accepted in one field, bytes.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;

/// A scan as asked for, from the panel's form or the terminal's flags:
/// text as typed (an empty field takes the server's default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanRequest {
    /// Prefixes to scan, separated by commas or spaces.
    pub prefixes: String,
    /// Ranges never to probe, separated by commas or spaces.
    pub excludes: String,
    /// Probes a second, all targets together.
    pub rate: String,
    /// Probes a second into any one /64 (`0`: no cap).
    pub per_subnet_rate: String,
    /// `auto`, `gpu` or `cpu`.
    pub hardware: String,
    /// `kernel` or `packet`.
    pub transport: String,
    /// The scan order's seed (empty: random).
    pub seed: String,
    /// `k/n`: scan only shard k of n.
    pub shard: String,
    /// The contact string probes carry.
    pub contact: String,
    /// Send and listen on this interface only.
    pub interface: String,
    /// With the packet transport: the gateway's MAC.
    pub gateway_mac: String,
    /// Source address for probes.
    pub source: String,
}

impl ScanRequest {
    /// The panel's form fields by name; a name this server does not know
    /// is refused (a newer page, or a forged request).
    pub fn from_fields(fields: &[(String, String)]) -> Result<Self, Vec<FieldError>> {
        let mut request = Self::default();
        let mut unknown = Vec::new();
        for (name, value) in fields {
            let slot = match name.as_str() {
                "prefixes" => &mut request.prefixes,
                "excludes" => &mut request.excludes,
                "rate" => &mut request.rate,
                "per_subnet_rate" => &mut request.per_subnet_rate,
                "hardware" => &mut request.hardware,
                "transport" => &mut request.transport,
                "seed" => &mut request.seed,
                "shard" => &mut request.shard,
                "contact" => &mut request.contact,
                "interface" => &mut request.interface,
                "gateway_mac" => &mut request.gateway_mac,
                "source" => &mut request.source,
                _ => {
                    unknown.push(FieldError {
                        field: name.chars().take(40).collect(),
                        message: "not a field of a scan".into(),
                    });
                    continue;
                }
            };
            value.clone_into(slot);
        }
        if unknown.is_empty() {
            Ok(request)
        } else {
            Err(unknown)
        }
    }
}

/// A validated scan: what the store keeps (as JSON) and every run of the
/// job is built from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The prefixes, normalised.
    pub prefixes: Vec<String>,
    /// The excluded ranges, normalised.
    pub excludes: Vec<String>,
    /// Probes a second.
    pub rate: u32,
    /// Probes a second per /64; `None`: no cap.
    pub per_subnet_rate: Option<u32>,
    /// `auto`, `gpu` or `cpu`.
    pub hardware: String,
    /// `kernel` or `packet`.
    pub transport: String,
    /// The packet transport's gateway MAC, if given.
    pub gateway_mac: Option<String>,
    /// Probes' source address, if given.
    pub source: Option<Ipv6Addr>,
    /// The scan order's seed.
    pub seed: u64,
    /// Shard index and count.
    pub shard: (u32, u32),
    /// The contact string probes carry.
    pub contact: String,
    /// The interface to send and listen on, if one.
    pub interface: Option<String>,
}

impl JobSpec {
    /// Checks `request` against the configuration; every refused field is
    /// named. `random_seed` is used when the request names no seed. The
    /// spec, and the index range its space and shard give.
    pub fn from_request(
        request: &ScanRequest,
        config: &WidescanConfig,
        random_seed: u64,
    ) -> Result<(Self, IndexRange), Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut refuse = |field: &str, message: String| {
            errors.push(FieldError {
                field: field.to_owned(),
                message,
            });
        };
        let prefixes = parse_prefixes(&request.prefixes).unwrap_or_else(|m| {
            refuse("prefixes", m);
            Vec::new()
        });
        if prefixes.is_empty() && request.prefixes.trim().is_empty() {
            refuse(
                "prefixes",
                "give at least one prefix, e.g. 2a01:db8:1::/120".into(),
            );
        }
        let excludes = parse_prefixes(&request.excludes).unwrap_or_else(|m| {
            refuse("excludes", m);
            Vec::new()
        });
        let rate = match number::<u32>(&request.rate, "probes a second") {
            Ok(None) => config.default_rate,
            Ok(Some(0)) => {
                refuse("rate", "must be at least 1 probe a second".into());
                0
            }
            Ok(Some(r)) if r > config.max_rate => {
                refuse(
                    "rate",
                    format!(
                        "at most {} probes a second here (widescan.max_rate)",
                        config.max_rate
                    ),
                );
                0
            }
            Ok(Some(r)) => r,
            Err(m) => {
                refuse("rate", m);
                0
            }
        };
        let per_subnet_rate = match number::<u32>(&request.per_subnet_rate, "probes a second") {
            Ok(None) => config.default_per_subnet_rate,
            Ok(Some(0)) => None,
            Ok(Some(r)) if r > config.max_rate => {
                refuse(
                    "per_subnet_rate",
                    format!(
                        "at most {} (widescan.max_rate); 0 for no cap",
                        config.max_rate
                    ),
                );
                None
            }
            Ok(Some(r)) => Some(r),
            Err(m) => {
                refuse("per_subnet_rate", m);
                None
            }
        };
        let hardware = word(&request.hardware, "auto");
        if hardware.parse::<HardwareMode>().is_err() {
            refuse("hardware", "must be auto, gpu or cpu".into());
        }
        let transport = word(&request.transport, "kernel");
        if !matches!(transport.as_str(), "kernel" | "packet") {
            refuse("transport", "must be kernel or packet".into());
        }
        let gateway_mac = match request.gateway_mac.trim() {
            "" => None,
            mac => match mac.parse::<MacAddr>() {
                Ok(_) if transport != "packet" => {
                    refuse("gateway_mac", "only with the packet transport".into());
                    None
                }
                Ok(_) => Some(mac.to_owned()),
                Err(e) => {
                    refuse("gateway_mac", e.to_string());
                    None
                }
            },
        };
        let source = match request.source.trim() {
            "" => None,
            s => match s.parse::<Ipv6Addr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    refuse("source", format!("{s:?} is not an IPv6 address"));
                    None
                }
            },
        };
        let seed = match number::<u64>(&request.seed, "a whole number") {
            Ok(s) => s.unwrap_or(random_seed),
            Err(m) => {
                refuse("seed", m);
                0
            }
        };
        let shard = match request.shard.trim() {
            "" => Shard::WHOLE,
            s => s.parse::<Shard>().unwrap_or_else(|e| {
                refuse("shard", e.to_string());
                Shard::WHOLE
            }),
        };
        let contact = match request.contact.trim() {
            "" => config.contact.clone(),
            c => c.to_owned(),
        };
        if let Err(e) = Contact::new(contact.clone()) {
            refuse("contact", e.to_string());
        }
        let interface = match request.interface.trim() {
            "" => config.interface.clone(),
            i if i.len() > 15 || i.contains(['/', ' ']) => {
                refuse("interface", "not an interface name".into());
                None
            }
            i => Some(i.to_owned()),
        };
        let spec = Self {
            prefixes,
            excludes,
            rate,
            per_subnet_rate,
            hardware,
            transport,
            gateway_mac,
            source,
            seed,
            shard: (shard.index(), shard.count()),
            contact,
            interface,
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        // The prefixes as a whole: the policy, an empty or oversized space,
        // an empty shard.
        match spec.range(config.test_mode) {
            Ok(range) => Ok((spec, range)),
            Err((field, message)) => Err(vec![FieldError {
                field: field.into(),
                message,
            }]),
        }
    }

    /// The target set under the policy (`test_mode` admits test ranges).
    pub fn targets(&self, test_mode: bool) -> Result<TargetSet, widescan::Error> {
        let parse = |list: &[String]| -> Result<Vec<Prefix>, widescan::Error> {
            list.iter().map(|p| p.parse()).collect()
        };
        TargetSet::builder()
            .prefixes(parse(&self.prefixes)?)
            .excludes(parse(&self.excludes)?)
            .test_mode(test_mode)
            .build()
    }

    /// The permuted space of this job.
    pub fn space(&self, test_mode: bool) -> Result<AddressSpace, widescan::Error> {
        AddressSpace::new(self.targets(test_mode)?, self.seed)
    }

    /// The index range this job covers, or the field to blame and why.
    pub fn range(&self, test_mode: bool) -> Result<IndexRange, (&'static str, String)> {
        let space = self.space(test_mode).map_err(|e| {
            let field = match &e {
                widescan::Error::InvalidPrefix { input, .. }
                    if self.excludes.iter().any(|x| x == input) =>
                {
                    "excludes"
                }
                _ => "prefixes",
            };
            (field, policy_message(&e, test_mode))
        })?;
        let shard = Shard::new(self.shard.0, self.shard.1).map_err(|e| ("shard", e.to_string()))?;
        let range = shard.range(space.len());
        if range.is_empty() {
            return Err((
                "shard",
                format!(
                    "shard {}/{} of {} addresses is empty",
                    self.shard.0,
                    self.shard.1,
                    space.len()
                ),
            ));
        }
        Ok(range)
    }

    /// Where addresses are generated.
    pub fn hardware_mode(&self) -> HardwareMode {
        self.hardware.parse().unwrap_or_default()
    }

    /// How probes leave.
    pub fn transport(&self) -> Transport {
        match self.transport.as_str() {
            "packet" => Transport::Packet {
                gateway_mac: self.gateway_mac.as_deref().and_then(|m| m.parse().ok()),
            },
            _ => Transport::Kernel,
        }
    }

    /// The shard.
    pub fn shard(&self) -> Shard {
        Shard::new(self.shard.0, self.shard.1).unwrap_or(Shard::WHOLE)
    }
}

/// The library's reason, with a hint where the policy refused a prefix.
fn policy_message(e: &widescan::Error, test_mode: bool) -> String {
    match e {
        widescan::Error::PrefixRefused { .. } if !test_mode => format!(
            "{e} (only global unicast space inside 2000::/3 is scanned; test ranges need \
             [widescan] test_mode = true)"
        ),
        other => other.to_string(),
    }
}

/// Prefixes separated by commas or whitespace.
fn parse_prefixes(text: &str) -> Result<Vec<String>, String> {
    if text.len() > MAX_FIELD_BYTES {
        return Err(format!("longer than {MAX_FIELD_BYTES} bytes"));
    }
    let words: Vec<&str> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() > MAX_PREFIXES {
        return Err(format!("more than {MAX_PREFIXES} prefixes"));
    }
    words
        .into_iter()
        .map(|w| {
            w.parse::<Prefix>()
                .map(|p| p.to_string())
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// A number, or `None` when the field is empty.
fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<Option<T>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("{text:?} is not a number ({what})"))
}

fn word(text: &str, default: &str) -> String {
    match text.trim() {
        "" => default.to_owned(),
        w => w.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::widescan::config::RawWidescan;

    fn config(test_mode: bool) -> WidescanConfig {
        RawWidescan {
            test_mode,
            ..RawWidescan::default()
        }
        .validate()
        .expect("config")
    }

    fn request(prefixes: &str) -> ScanRequest {
        ScanRequest {
            prefixes: prefixes.into(),
            ..ScanRequest::default()
        }
    }

    fn fields<T: std::fmt::Debug>(r: Result<T, Vec<FieldError>>) -> Vec<String> {
        r.expect_err("refused")
            .into_iter()
            .map(|f| f.field)
            .collect()
    }

    #[test]
    fn defaults_fill_empty_fields() {
        let (spec, range) =
            JobSpec::from_request(&request("2a00:1450:4001::/120"), &config(false), 7)
                .expect("valid");
        assert_eq!(range.len(), 256);
        assert_eq!(spec.prefixes, ["2a00:1450:4001::/120"]);
        assert_eq!(spec.rate, 10_000);
        assert_eq!(spec.per_subnet_rate, Some(100));
        assert_eq!(spec.seed, 7, "the random seed when none is given");
        assert_eq!(
            (spec.hardware.as_str(), spec.transport.as_str()),
            ("auto", "kernel")
        );
        assert_eq!(spec.range(false).expect("range").len(), 256);
    }

    #[test]
    fn the_policy_refuses_test_ranges_outside_test_mode() {
        let r = request("fd00:5ca7:1::/120");
        let err = JobSpec::from_request(&r, &config(false), 1).expect_err("refused");
        assert_eq!(err[0].field, "prefixes");
        assert!(err[0].message.contains("test_mode"), "{}", err[0].message);
        assert!(JobSpec::from_request(&r, &config(true), 1).is_ok());
        // Documentation space is refused even when written inside a larger prefix.
        assert_eq!(
            fields(JobSpec::from_request(
                &request("2001:db8::/64"),
                &config(false),
                1
            )),
            ["prefixes"]
        );
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let r = ScanRequest {
            prefixes: "2a00::/200, nonsense".into(),
            excludes: "::1/300".into(),
            rate: "0".into(),
            per_subnet_rate: "-3".into(),
            hardware: "tpu".into(),
            transport: "carrier-pigeon".into(),
            seed: "x".into(),
            shard: "3/2".into(),
            contact: "é".into(),
            interface: "a/b".into(),
            gateway_mac: "zz".into(),
            source: "10.0.0.1".into(),
        };
        let named = fields(JobSpec::from_request(&r, &config(false), 1));
        for field in [
            "prefixes",
            "excludes",
            "rate",
            "per_subnet_rate",
            "hardware",
            "transport",
            "seed",
            "shard",
            "contact",
            "interface",
            "gateway_mac",
            "source",
        ] {
            assert!(
                named.iter().any(|f| f == field),
                "{field} not named: {named:?}"
            );
        }
    }

    #[test]
    fn absurd_rates_and_empty_spaces_are_refused() {
        let mut r = request("2a00:1450:4001::/120");
        r.rate = "4294967295".into();
        assert_eq!(
            fields(JobSpec::from_request(&r, &config(false), 1)),
            ["rate"]
        );
        r.rate = "99999999999999".into();
        assert_eq!(
            fields(JobSpec::from_request(&r, &config(false), 1)),
            ["rate"]
        );
        // Excluding everything leaves nothing to scan.
        let mut r = request("2a00:1450:4001::/120");
        r.excludes = "2a00:1450:4001::/112".into();
        assert_eq!(
            fields(JobSpec::from_request(&r, &config(false), 1)),
            ["prefixes"]
        );
        // More shards than addresses: an empty shard.
        let mut r = request("2a00:1450:4001::/127");
        r.shard = "0/3".into();
        assert_eq!(
            fields(JobSpec::from_request(&r, &config(false), 1)),
            ["shard"]
        );
        assert_eq!(
            fields(JobSpec::from_request(&request(""), &config(false), 1)),
            ["prefixes"]
        );
        let many = vec!["2a00::/120"; MAX_PREFIXES + 1].join(",");
        assert_eq!(
            fields(JobSpec::from_request(&request(&many), &config(false), 1)),
            ["prefixes"]
        );
    }

    #[test]
    fn form_fields_fill_a_request_by_name() {
        let fields = [
            ("prefixes", "2a00::/120"),
            ("rate", "5"),
            ("contact", "x y"),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()));
        let r = ScanRequest::from_fields(&fields).expect("known names");
        assert_eq!(
            (r.prefixes.as_str(), r.rate.as_str(), r.contact.as_str()),
            ("2a00::/120", "5", "x y")
        );
        let forged = [
            ("prefixes".to_owned(), String::new()),
            ("test_mode".to_owned(), "1".to_owned()),
        ];
        let err = ScanRequest::from_fields(&forged).expect_err("unknown name");
        assert_eq!(err[0].field, "test_mode");
    }

    #[test]
    fn the_spec_survives_its_json() {
        let mut r = request("2a00:1450:4001::/120 2a00:1450:4002::/126");
        r.seed = "42".into();
        r.shard = "1/2".into();
        r.per_subnet_rate = "0".into();
        let (spec, _) = JobSpec::from_request(&r, &config(false), 1).expect("valid");
        let back: JobSpec =
            serde_json::from_str(&serde_json::to_string(&spec).expect("json")).expect("parse");
        assert_eq!(back, spec);
        assert_eq!(back.per_subnet_rate, None);
        assert_eq!(back.range(false), spec.range(false));
    }
}
