//! `[widescan]`: the server's scan jobs as configured, and their
//! validation. Every rejected value names its key.

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// `[widescan]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawWidescan {
    /// Offer scan jobs (panel, terminal).
    pub enabled: bool,
    /// Admit prefixes outside `2000::/3` and the reserved ranges
    /// (documentation, ULA, …). Only for networks you own: test namespaces
    /// and labs.
    pub test_mode: bool,
    /// Jobs running at once; another start is refused until one ends.
    pub max_jobs: usize,
    /// Highest probe rate a job may ask for, probes a second.
    pub max_rate: u32,
    /// The rate a job gets when it names none.
    pub default_rate: u32,
    /// The per-/64 rate a job gets when it names none (0: no cap).
    pub default_per_subnet_rate: u32,
    /// The contact string a job announces when it names none (printable
    /// ASCII, at most 64 bytes): a URL that explains the scan and offers an
    /// opt-out.
    pub contact: String,
    /// Send and listen on this interface only (empty: any).
    pub interface: String,
    /// Memory for generated addresses in flight, per job, in MiB.
    pub memory_mib: usize,
    /// Results (hits and peers) stored per job; more are counted, not kept.
    pub max_results_per_job: u64,
    /// Seconds a job keeps listening after its last probe.
    pub cooldown_secs: u64,
}

impl Default for RawWidescan {
    fn default() -> Self {
        Self {
            enabled: true,
            test_mode: false,
            max_jobs: 2,
            max_rate: 100_000,
            default_rate: widescan::sender::DEFAULT_RATE_PPS,
            default_per_subnet_rate: widescan::sender::DEFAULT_PER_SUBNET_PPS,
            contact: String::new(),
            interface: String::new(),
            memory_mib: 16,
            max_results_per_job: 1_000_000,
            cooldown_secs: 3,
        }
    }
}

/// The validated `[widescan]`.
#[derive(Clone, Debug)]
pub struct WidescanConfig {
    /// See [`RawWidescan::enabled`].
    pub enabled: bool,
    /// See [`RawWidescan::test_mode`].
    pub test_mode: bool,
    /// See [`RawWidescan::max_jobs`].
    pub max_jobs: usize,
    /// See [`RawWidescan::max_rate`].
    pub max_rate: u32,
    /// See [`RawWidescan::default_rate`].
    pub default_rate: u32,
    /// See [`RawWidescan::default_per_subnet_rate`]; `None`: no cap.
    pub default_per_subnet_rate: Option<u32>,
    /// See [`RawWidescan::contact`].
    pub contact: String,
    /// See [`RawWidescan::interface`]; `None` when empty.
    pub interface: Option<String>,
    /// See [`RawWidescan::memory_mib`], in bytes.
    pub memory_limit: usize,
    /// See [`RawWidescan::max_results_per_job`].
    pub max_results_per_job: u64,
    /// See [`RawWidescan::cooldown_secs`].
    pub cooldown: std::time::Duration,
}

impl RawWidescan {
    /// Checks every value.
    pub fn validate(&self) -> Result<WidescanConfig, ConfigError> {
        let invalid = |key, message: &str| ConfigError::Invalid {
            key,
            message: message.to_owned(),
        };
        if !(1..=64).contains(&self.max_jobs) {
            return Err(invalid("widescan.max_jobs", "must be between 1 and 64"));
        }
        if !(1..=crate::widescan::request::RATE_CEILING).contains(&self.max_rate) {
            return Err(invalid(
                "widescan.max_rate",
                "must be between 1 and 10000000",
            ));
        }
        if !(1..=self.max_rate).contains(&self.default_rate) {
            return Err(invalid(
                "widescan.default_rate",
                "must be between 1 and widescan.max_rate",
            ));
        }
        if self.default_per_subnet_rate > self.max_rate {
            return Err(invalid(
                "widescan.default_per_subnet_rate",
                "must be at most widescan.max_rate (0: no cap)",
            ));
        }
        widescan::Contact::new(self.contact.clone())
            .map_err(|_| invalid("widescan.contact", "at most 64 bytes of printable ASCII"))?;
        let interface = self.interface.trim();
        if interface.len() > 15 || interface.contains(['/', ' ']) {
            return Err(invalid(
                "widescan.interface",
                "must be an interface name (at most 15 bytes, no `/` or space)",
            ));
        }
        if !(1..=1024).contains(&self.memory_mib) {
            return Err(invalid("widescan.memory_mib", "must be between 1 and 1024"));
        }
        if !(1..=100_000_000).contains(&self.max_results_per_job) {
            return Err(invalid(
                "widescan.max_results_per_job",
                "must be between 1 and 100000000",
            ));
        }
        if self.cooldown_secs > 600 {
            return Err(invalid("widescan.cooldown_secs", "must be at most 600"));
        }
        Ok(WidescanConfig {
            enabled: self.enabled,
            test_mode: self.test_mode,
            max_jobs: self.max_jobs,
            max_rate: self.max_rate,
            default_rate: self.default_rate,
            default_per_subnet_rate: (self.default_per_subnet_rate > 0)
                .then_some(self.default_per_subnet_rate),
            contact: self.contact.clone(),
            interface: (!interface.is_empty()).then(|| interface.to_owned()),
            memory_limit: self.memory_mib << 20,
            max_results_per_job: self.max_results_per_job,
            cooldown: std::time::Duration::from_secs(self.cooldown_secs),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_safe() {
        let c = RawWidescan::default().validate().expect("valid");
        assert!(!c.test_mode, "real prefixes only by default");
        assert_eq!(c.default_rate, 10_000);
        assert_eq!(c.default_per_subnet_rate, Some(100));
        assert_eq!(c.max_jobs, 2);
    }

    #[test]
    fn each_bad_value_names_its_key() {
        type Spoil = fn(&mut RawWidescan);
        let cases: [(&str, Spoil); 6] = [
            ("widescan.max_jobs", |r| r.max_jobs = 0),
            ("widescan.max_rate", |r| r.max_rate = 0),
            ("widescan.default_rate", |r| r.default_rate = r.max_rate + 1),
            ("widescan.contact", |r| r.contact = "é".into()),
            ("widescan.interface", |r| r.interface = "eth0/1".into()),
            ("widescan.memory_mib", |r| r.memory_mib = 0),
        ];
        for (key, spoil) in cases {
            let mut raw = RawWidescan::default();
            spoil(&mut raw);
            let err = raw.validate().expect_err(key).to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }
}
