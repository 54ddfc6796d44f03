//! `[bootstrap]`: the bootstrap API's settings as written, and their
//! validation. Every rejected value names its key.

use std::time::Duration;

use p2pnet_bootstrap::snapshot::MAX_SNAPSHOT_PEERS;
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// `[bootstrap]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBootstrap {
    /// Serve the bootstrap API (announce, peers, authority, public IP).
    pub enabled: bool,
    /// `trustless` (the list as is) or `authority` (the list signed by the
    /// server's OpenPGP key).
    pub mode: String,
    /// The network whose peers this server lists; announces for another
    /// are refused. The node's default network is `p2pnet`.
    pub network: String,
    /// How long a snapshot holds; it is re-made at half of this, or within
    /// a second of a change.
    pub snapshot_lifetime_secs: u64,
    /// How soon a peer is asked to announce again (`Reannounce-After`).
    pub reannounce_after_secs: u64,
    /// Most peers listed at once; a new peer is refused while it is full.
    pub max_peers: u64,
    /// Announces one client (IPv4 address or IPv6 /64) may make a minute.
    pub announces_per_minute: u32,
    /// Clock difference tolerated between a peer and this server, seconds.
    pub max_clock_skew_secs: u64,
    /// Serve `GET /api/Bootstrap/publicip` (the caller's address).
    pub public_ip: bool,
    /// Authority mode: the passphrase that encrypts the authority key's
    /// secret in `<keys_dir>/authority.key`. Best given by the environment
    /// (`P2PNET_BOOTSTRAP__PASSPHRASE`) rather than written in a file.
    /// Without one the server refuses to start in authority mode, unless
    /// `allow_unencrypted_key` is set. Never logged or shown.
    pub passphrase: String,
    /// Authority mode without a passphrase: keep the key unencrypted
    /// (protected by its file mode 0600 only).
    pub allow_unencrypted_key: bool,
}

impl Default for RawBootstrap {
    fn default() -> Self {
        Self {
            enabled: true,
            mode: "trustless".into(),
            network: "p2pnet".into(),
            snapshot_lifetime_secs: 3600,
            reannounce_after_secs: 1800,
            max_peers: 100_000,
            announces_per_minute: 60,
            max_clock_skew_secs: 300,
            public_ip: true,
            passphrase: String::new(),
            allow_unencrypted_key: false,
        }
    }
}

/// How the list is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// As is, unsigned.
    Trustless,
    /// Signed by the authority key.
    Authority,
}

impl Mode {
    /// The word in config and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trustless => "trustless",
            Self::Authority => "authority",
        }
    }
}

/// The validated `[bootstrap]`.
#[derive(Clone, Debug)]
pub struct BootstrapConfig {
    /// See [`RawBootstrap::enabled`].
    pub enabled: bool,
    /// See [`RawBootstrap::mode`].
    pub mode: Mode,
    /// See [`RawBootstrap::network`].
    pub network: String,
    /// See [`RawBootstrap::snapshot_lifetime_secs`].
    pub snapshot_lifetime: Duration,
    /// See [`RawBootstrap::reannounce_after_secs`].
    pub reannounce_after: Duration,
    /// See [`RawBootstrap::max_peers`].
    pub max_peers: u64,
    /// See [`RawBootstrap::announces_per_minute`].
    pub announces_per_minute: u32,
    /// See [`RawBootstrap::max_clock_skew_secs`].
    pub max_clock_skew: Duration,
    /// See [`RawBootstrap::public_ip`].
    pub public_ip: bool,
    /// See [`RawBootstrap::passphrase`]; `None` when empty.
    pub passphrase: Option<p2pnet_bootstrap::authority::Passphrase>,
    /// See [`RawBootstrap::allow_unencrypted_key`].
    pub allow_unencrypted_key: bool,
}

impl RawBootstrap {
    /// Checks every value.
    pub fn validate(&self) -> Result<BootstrapConfig, ConfigError> {
        let invalid = |key, message: &str| ConfigError::Invalid {
            key,
            message: message.to_owned(),
        };
        let mode = match self.mode.as_str() {
            "trustless" => Mode::Trustless,
            "authority" => Mode::Authority,
            _ => {
                return Err(invalid(
                    "bootstrap.mode",
                    "must be `trustless` or `authority`",
                ));
            }
        };
        let network = self.network.trim();
        if network.is_empty() || network.len() > 64 || network.chars().any(char::is_control) {
            return Err(invalid(
                "bootstrap.network",
                "must be 1–64 bytes of printable text",
            ));
        }
        if !(60..=7 * 24 * 3600).contains(&self.snapshot_lifetime_secs) {
            return Err(invalid(
                "bootstrap.snapshot_lifetime_secs",
                "must be between 60 and 604800",
            ));
        }
        if !(60..=24 * 3600).contains(&self.reannounce_after_secs) {
            return Err(invalid(
                "bootstrap.reannounce_after_secs",
                "must be between 60 and 86400",
            ));
        }
        if !(1..=MAX_SNAPSHOT_PEERS as u64).contains(&self.max_peers) {
            return Err(invalid(
                "bootstrap.max_peers",
                "must be between 1 and 100000",
            ));
        }
        if !(1..=1_000_000).contains(&self.announces_per_minute) {
            return Err(invalid(
                "bootstrap.announces_per_minute",
                "must be between 1 and 1000000",
            ));
        }
        if self.max_clock_skew_secs > 3600 {
            return Err(invalid(
                "bootstrap.max_clock_skew_secs",
                "must be at most 3600",
            ));
        }
        Ok(BootstrapConfig {
            enabled: self.enabled,
            mode,
            network: network.to_owned(),
            snapshot_lifetime: Duration::from_secs(self.snapshot_lifetime_secs),
            reannounce_after: Duration::from_secs(self.reannounce_after_secs),
            max_peers: self.max_peers,
            announces_per_minute: self.announces_per_minute,
            max_clock_skew: Duration::from_secs(self.max_clock_skew_secs),
            public_ip: self.public_ip,
            passphrase: (!self.passphrase.is_empty())
                .then(|| p2pnet_bootstrap::authority::Passphrase::from(self.passphrase.clone())),
            allow_unencrypted_key: self.allow_unencrypted_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        let ok = RawBootstrap::default().validate().expect("defaults");
        assert_eq!(ok.mode, Mode::Trustless);
        type Spoil = fn(&mut RawBootstrap);
        let cases: [(&str, Spoil); 6] = [
            ("bootstrap.mode", |r| r.mode = "open".into()),
            ("bootstrap.network", |r| r.network = " ".into()),
            ("bootstrap.snapshot_lifetime_secs", |r| {
                r.snapshot_lifetime_secs = 1;
            }),
            ("bootstrap.reannounce_after_secs", |r| {
                r.reannounce_after_secs = 0;
            }),
            ("bootstrap.max_peers", |r| r.max_peers = 0),
            ("bootstrap.announces_per_minute", |r| {
                r.announces_per_minute = 0;
            }),
        ];
        for (key, spoil) in cases {
            let mut raw = RawBootstrap::default();
            spoil(&mut raw);
            match raw.validate() {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{key}: {other:?}"),
            }
        }
    }
}
