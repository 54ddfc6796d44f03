//! Configuration: a TOML file, then `P2PNET_*` environment variables, then
//! command-line flags, merged and validated once into [`Config`].
//!
//! Two stages, as ripgrep does: [`RawConfig`] mirrors the file (every key has
//! a documented default, unknown keys are errors), and [`Config::validate`]
//! turns it into typed values or an error that names the offending key.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;
use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

pub use crate::node::config::{NodeConfig, RawDiscovery, RawLimits, RawNode, RawTrust};

/// Command-line flags. Each overrides the same key from the file and environment.
#[derive(Debug, Default, Parser)]
#[command(
    name = "p2pnet-server",
    version,
    about = "P2PNet server and control panel"
)]
pub struct Cli {
    /// TOML configuration file (see config.example.toml).
    #[arg(short, long, env = "P2PNET_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (repeat for several); overrides server.listen.
    #[arg(long)]
    pub listen: Vec<String>,
    /// Database URL (sqlite:… or postgres://…); overrides database.url.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Directory for the SQLite file and keys; overrides server.data_dir.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Directory with the built panel (pkg/, assets); overrides server.site_root.
    #[arg(long)]
    pub site_root: Option<PathBuf>,
    /// Log filter such as `info,server=debug`; overrides log.filter.
    #[arg(long)]
    pub log_filter: Option<String>,
    /// Log format, `text` or `json`; overrides log.format.
    #[arg(long)]
    pub log_format: Option<String>,
}

/// The configuration as written, before validation. Field docs are the
/// reference; `config.example.toml` repeats them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// `[server]`
    pub server: RawServer,
    /// `[database]`
    pub database: RawDatabase,
    /// `[auth]`
    pub auth: RawAuth,
    /// `[log]`
    pub log: RawLog,
    /// `[node]`
    pub node: RawNode,
    /// `[bootstrap]`
    pub bootstrap: crate::bootstrap::RawBootstrap,
    /// `[widescan]`
    pub widescan: crate::widescan::RawWidescan,
}

/// `[server]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    /// Socket addresses to listen on.
    pub listen: Vec<String>,
    /// Host names accepted in the `Host` header besides localhost, 127.0.0.1 and [::1].
    pub allowed_hosts: Vec<String>,
    /// Public URL when served behind TLS (e.g. `https://p2p.example.org`); makes cookies `Secure`.
    pub public_url: String,
    /// Use the last `X-Forwarded-For` address (the one the proxy appended) as the
    /// client; only behind a trusted proxy.
    pub trust_forwarded_for: bool,
    /// Largest accepted request body in bytes.
    pub body_limit_bytes: u64,
    /// Requests taking longer are answered with 408.
    pub request_timeout_secs: u64,
    /// Directory for the SQLite database (and, by default, keys and downloads).
    pub data_dir: PathBuf,
    /// Directory for key files (the node's identity); empty means `<data_dir>/keys`.
    pub keys_dir: PathBuf,
    /// Built panel assets (`pkg/`, files from `public/`).
    pub site_root: PathBuf,
}

/// `[database]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDatabase {
    /// `sqlite:…` or `postgres://…`; empty means `sqlite://<data_dir>/p2pnet.db`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// How long to wait for a connection.
    pub connect_timeout_secs: u64,
}

/// `[auth]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuth {
    /// Administrator login name.
    pub admin_user: String,
    /// Password used to create the administrator on first start; empty means
    /// generate one and print it once. Ignored once the administrator exists.
    pub admin_password: String,
    /// Session lifetime in minutes (absolute, not sliding).
    pub session_ttl_minutes: u64,
    /// Failed-or-not login attempts allowed per client address per minute.
    pub login_attempts_per_minute: u32,
}

/// `[log]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    /// `tracing` env-filter directives; `RUST_LOG` wins when set.
    pub filter: String,
    /// `text` (default) or `json`.
    pub format: String,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: vec!["127.0.0.1:3000".into()],
            allowed_hosts: Vec::new(),
            public_url: String::new(),
            trust_forwarded_for: false,
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            data_dir: PathBuf::from("data"),
            keys_dir: PathBuf::new(),
            site_root: PathBuf::from("target/site"),
        }
    }
}

impl Default for RawDatabase {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 8,
            connect_timeout_secs: 5,
        }
    }
}

impl Default for RawAuth {
    fn default() -> Self {
        Self {
            admin_user: "admin".into(),
            admin_password: String::new(),
            session_ttl_minutes: 12 * 60,
            login_attempts_per_minute: 10,
        }
    }
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            format: "text".into(),
        }
    }
}

/// A configuration value that was rejected; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file, environment or flags could not be read or parsed.
    #[error("configuration: {0}")]
    Source(#[from] Box<figment::Error>),
    /// A value has the right type but is not acceptable.
    #[error("configuration key `{key}`: {message}")]
    Invalid {
        /// Dotted key, e.g. `server.listen`.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Addresses to bind.
    pub listen: Vec<SocketAddr>,
    /// Accepted `Host` names (lowercase, without port), localhost names included.
    pub allowed_hosts: Vec<String>,
    /// Whether cookies get the `Secure` attribute.
    pub secure_cookies: bool,
    /// See [`RawServer::trust_forwarded_for`].
    pub trust_forwarded_for: bool,
    /// Largest request body.
    pub body_limit: usize,
    /// Per-request time limit.
    pub request_timeout: Duration,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Key directory.
    pub keys_dir: PathBuf,
    /// Built panel assets.
    pub site_root: PathBuf,
    /// Database URL (may hold a password: never log it, use `redact_url`).
    pub database_url: String,
    /// Pool size.
    pub database_max_connections: u32,
    /// Connection wait.
    pub database_connect_timeout: Duration,
    /// Admin login name.
    pub admin_user: String,
    /// First-start admin password, if configured. Never logged or shown.
    pub admin_password: Option<String>,
    /// Session lifetime.
    pub session_ttl: Duration,
    /// Login attempts per client per minute.
    pub login_attempts_per_minute: u32,
    /// Log filter directives.
    pub log_filter: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Initial node name.
    pub node_name: String,
    /// The embedded peer node.
    pub node: NodeConfig,
    /// The bootstrap API.
    pub bootstrap: crate::bootstrap::BootstrapConfig,
    /// Scan jobs.
    pub widescan: crate::widescan::WidescanConfig,
    /// The merged raw form, kept to show the effective configuration.
    raw: RawConfig,
}

/// Names always accepted in the `Host` header.
const LOCAL_HOSTS: [&str; 4] = ["localhost", "127.0.0.1", "[::1]", "::1"];

impl Config {
    /// Reads the file named by `cli.config` (if any), `P2PNET_*` variables
    /// (`P2PNET_SERVER__LISTEN`, `P2PNET_AUTH__ADMIN_PASSWORD`, …) and the
    /// flags, in that order of increasing precedence, and validates.
    pub fn load(cli: &Cli) -> Result<Self, ConfigError> {
        Self::load_with_env(cli, Env::prefixed("P2PNET_").split("__"))
    }

    fn load_with_env(cli: &Cli, env: Env) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
        if let Some(path) = &cli.config {
            if !path.is_file() {
                return Err(invalid(
                    "--config",
                    format!("{} is not a readable file", path.display()),
                ));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // Only SECTION__KEY variables are configuration; others sharing the
        // prefix (P2PNET_CONFIG names the file, test harness variables) are not.
        figment = figment
            .merge(env.filter(|key| key.as_str().contains("__") || key.as_str().contains('.')));
        let raw: RawConfig = figment.extract().map_err(Box::new)?;
        Self::validate(apply_flags(raw, cli))
    }

    /// Reads a configuration file's text alone (no environment, no flags)
    /// and validates it: what `--config FILE` contributes.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = Figment::from(Serialized::defaults(RawConfig::default()))
            .merge(Toml::string(text))
            .extract()
            .map_err(Box::new)?;
        Self::validate(raw)
    }

    /// Checks every value; the first problem is returned, naming its key.
    pub fn validate(raw: RawConfig) -> Result<Self, ConfigError> {
        if raw.server.listen.is_empty() {
            return Err(invalid("server.listen", "at least one address is needed"));
        }
        let listen = raw
            .server
            .listen
            .iter()
            .map(|a| {
                a.parse::<SocketAddr>()
                    .map_err(|_| invalid("server.listen", format!("`{a}` is not an address:port")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut allowed_hosts: Vec<String> = LOCAL_HOSTS.iter().map(|h| (*h).to_owned()).collect();
        for host in &raw.server.allowed_hosts {
            let host = host.trim().to_ascii_lowercase();
            if host.is_empty() || host.contains(['/', ' ', '@']) {
                return Err(invalid(
                    "server.allowed_hosts",
                    format!("`{host}` is not a host name"),
                ));
            }
            allowed_hosts.push(host);
        }
        let public_url = raw.server.public_url.trim();
        let secure_cookies = public_url.starts_with("https://");
        if !public_url.is_empty() {
            let Some(host) = public_url
                .strip_prefix("https://")
                .or_else(|| public_url.strip_prefix("http://"))
                .map(|rest| {
                    rest.split(['/', ':'])
                        .next()
                        .unwrap_or_default()
                        .to_ascii_lowercase()
                })
                .filter(|h| !h.is_empty())
            else {
                return Err(invalid(
                    "server.public_url",
                    "must look like https://host[:port]",
                ));
            };
            allowed_hosts.push(host);
        }
        let body_limit = usize::try_from(raw.server.body_limit_bytes)
            .ok()
            .filter(|b| (1024..=64 * 1024 * 1024).contains(b))
            .ok_or_else(|| {
                invalid(
                    "server.body_limit_bytes",
                    "must be between 1024 and 67108864",
                )
            })?;
        if !(1..=3600).contains(&raw.server.request_timeout_secs) {
            return Err(invalid(
                "server.request_timeout_secs",
                "must be between 1 and 3600",
            ));
        }
        let database_url = if raw.database.url.trim().is_empty() {
            format!(
                "sqlite://{}",
                raw.server.data_dir.join("p2pnet.db").display()
            )
        } else {
            raw.database.url.trim().to_owned()
        };
        let scheme_ok = ["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|s| database_url.starts_with(s));
        if !scheme_ok {
            return Err(invalid(
                "database.url",
                "must start with sqlite: or postgres://",
            ));
        }
        if !(1..=256).contains(&raw.database.max_connections) {
            return Err(invalid(
                "database.max_connections",
                "must be between 1 and 256",
            ));
        }
        if !(1..=300).contains(&raw.database.connect_timeout_secs) {
            return Err(invalid(
                "database.connect_timeout_secs",
                "must be between 1 and 300",
            ));
        }
        let admin_user = raw.auth.admin_user.trim().to_owned();
        if admin_user.is_empty()
            || admin_user.len() > 64
            || admin_user.chars().any(char::is_control)
        {
            return Err(invalid(
                "auth.admin_user",
                "must be 1–64 printable characters",
            ));
        }
        let admin_password = match raw.auth.admin_password.as_str() {
            "" => None,
            p if p.chars().count() < 12 => {
                return Err(invalid(
                    "auth.admin_password",
                    "must be at least 12 characters (or empty to generate one)",
                ));
            }
            p => Some(p.to_owned()),
        };
        if !(1..=60 * 24 * 30).contains(&raw.auth.session_ttl_minutes) {
            return Err(invalid(
                "auth.session_ttl_minutes",
                "must be between 1 and 43200",
            ));
        }
        if !(1..=1000).contains(&raw.auth.login_attempts_per_minute) {
            return Err(invalid(
                "auth.login_attempts_per_minute",
                "must be between 1 and 1000",
            ));
        }
        let log_format = match raw.log.format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid(
                    "log.format",
                    format!("`{other}` is not `text` or `json`"),
                ));
            }
        };
        crate::telemetry::parse_filter(&raw.log.filter).map_err(|e| invalid("log.filter", e))?;
        let node_name = crate::settings::validate_node_name(&raw.node.name)
            .map_err(|m| invalid("node.name", m))?;
        let keys_dir = if raw.server.keys_dir.as_os_str().is_empty() {
            raw.server.data_dir.join("keys")
        } else {
            raw.server.keys_dir.clone()
        };
        let node = raw.node.validate(&raw.server.data_dir, &keys_dir)?;
        let bootstrap = raw.bootstrap.validate()?;
        let widescan = raw.widescan.validate()?;
        Ok(Self {
            listen,
            allowed_hosts,
            secure_cookies,
            trust_forwarded_for: raw.server.trust_forwarded_for,
            body_limit,
            request_timeout: Duration::from_secs(raw.server.request_timeout_secs),
            data_dir: raw.server.data_dir.clone(),
            keys_dir,
            site_root: raw.server.site_root.clone(),
            database_url,
            database_max_connections: raw.database.max_connections,
            database_connect_timeout: Duration::from_secs(raw.database.connect_timeout_secs),
            admin_user,
            admin_password,
            session_ttl: Duration::from_secs(raw.auth.session_ttl_minutes * 60),
            login_attempts_per_minute: raw.auth.login_attempts_per_minute,
            log_filter: raw.log.filter.clone(),
            log_format,
            node_name,
            node,
            bootstrap,
            widescan,
            raw,
        })
    }

    /// `[node]` as written (before validation), for settings stored in the
    /// database to be laid over.
    pub fn raw_node(&self) -> &RawNode {
        &self.raw.node
    }

    /// The effective configuration as TOML with secrets replaced.
    pub fn redacted_toml(&self) -> String {
        let mut raw = self.raw.clone();
        if !raw.auth.admin_password.is_empty() {
            raw.auth.admin_password = "<redacted>".into();
        }
        if !raw.bootstrap.passphrase.is_empty() {
            raw.bootstrap.passphrase = "<redacted>".into();
        }
        raw.database.url = crate::store::redact_url(&self.database_url);
        toml::to_string_pretty(&raw).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

fn apply_flags(mut raw: RawConfig, cli: &Cli) -> RawConfig {
    if !cli.listen.is_empty() {
        raw.server.listen.clone_from(&cli.listen);
    }
    if let Some(url) = &cli.database_url {
        raw.database.url.clone_from(url);
    }
    if let Some(dir) = &cli.data_dir {
        raw.server.data_dir.clone_from(dir);
    }
    if let Some(dir) = &cli.site_root {
        raw.server.site_root.clone_from(dir);
    }
    if let Some(filter) = &cli.log_filter {
        raw.log.filter.clone_from(filter);
    }
    if let Some(format) = &cli.log_format {
        raw.log.format.clone_from(format);
    }
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_is_valid_and_means_the_defaults() {
        let example = load(include_str!("../../config.example.toml"), Cli::default())
            .expect("config.example.toml validates");
        let defaults = Config::validate(RawConfig::default()).expect("defaults");
        assert_eq!(
            example.redacted_toml(),
            defaults.redacted_toml(),
            "the example documents the defaults"
        );
    }

    /// Loads `toml` as the config file, with no environment overrides.
    fn load(toml: &str, cli: Cli) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml).expect("write");
        let cli = Cli {
            config: Some(path),
            ..cli
        };
        // A prefix no variable has: the process environment stays out of it.
        Config::load_with_env(&cli, Env::prefixed("P2PNET_TEST_UNUSED_").split("__"))
    }

    #[test]
    fn a_file_alone_is_read_and_checked() {
        let c = Config::from_toml(include_str!("../../config.example.toml")).expect("example");
        assert_eq!(c.database_url, "sqlite://data/p2pnet.db");
        let bad = Config::from_toml("[server]\nlisten = []\n").expect_err("no listener");
        assert!(bad.to_string().contains("server.listen"), "{bad}");
        let broken = Config::from_toml("[server\nlisten = 3").expect_err("not TOML");
        assert!(!broken.to_string().is_empty());
    }

    #[test]
    fn defaults_are_valid_and_local() {
        let c = Config::validate(RawConfig::default()).expect("defaults");
        assert_eq!(
            c.listen,
            vec!["127.0.0.1:3000".parse::<SocketAddr>().expect("addr")]
        );
        assert_eq!(c.database_url, "sqlite://data/p2pnet.db");
        assert!(!c.secure_cookies);
        assert!(c.allowed_hosts.contains(&"localhost".to_owned()));
        assert_eq!(c.admin_password, None);
    }

    #[test]
    fn file_then_flags_take_precedence() {
        let c = load(
            "[server]\nlisten = [\"127.0.0.1:4000\"]\n[log]\nformat = \"json\"\n",
            Cli {
                listen: vec!["127.0.0.1:5000".into()],
                ..Cli::default()
            },
        )
        .expect("valid");
        assert_eq!(c.listen[0].port(), 5000, "flag beats file");
        assert_eq!(c.log_format, LogFormat::Json, "file beats default");
    }

    #[test]
    // figment's Jail API returns its large error type; only this test uses it.
    #[allow(clippy::result_large_err)]
    fn environment_overrides_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[node]\nname = \"from-file\"\n")?;
            jail.set_env("P2PNET_NODE__NAME", "from-env");
            // Not a SECTION__KEY variable: ignored, not an unknown-key error.
            jail.set_env("P2PNET_UNRELATED", "x");
            let cli = Cli {
                config: Some("c.toml".into()),
                ..Cli::default()
            };
            let c = Config::load(&cli).map_err(|e| e.to_string())?;
            assert_eq!(c.node_name, "from-env");
            Ok(())
        });
    }

    #[test]
    fn errors_name_the_key() {
        let err = load("[server]\nlisten = [\"nope\"]\n", Cli::default()).expect_err("bad");
        assert!(err.to_string().contains("server.listen"), "{err}");
        let err = load("[server]\nbody_limit_bytes = \"big\"\n", Cli::default()).expect_err("bad");
        assert!(err.to_string().contains("body_limit_bytes"), "{err}");
        let err = load("[serverr]\n", Cli::default()).expect_err("unknown section");
        assert!(err.to_string().contains("serverr"), "{err}");
        let err = load("[auth]\nadmin_password = \"short\"\n", Cli::default()).expect_err("bad");
        assert!(err.to_string().contains("auth.admin_password"), "{err}");
        let err = load("[database]\nurl = \"mysql://x\"\n", Cli::default()).expect_err("bad");
        assert!(err.to_string().contains("database.url"), "{err}");
        let err = load("not toml at all [", Cli::default()).expect_err("bad");
        assert!(matches!(err, ConfigError::Source(_)), "{err}");
    }

    #[test]
    fn redacted_config_hides_secrets() {
        let c = load(
            "[auth]\nadmin_password = \"correct horse battery\"\n[database]\nurl = \"postgres://u:pw@db/p\"\n",
            Cli::default(),
        )
        .expect("valid");
        let shown = c.redacted_toml();
        assert!(!shown.contains("correct horse"), "{shown}");
        assert!(!shown.contains(":pw@"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(shown.contains("postgres://u:***@db/p"), "{shown}");
    }

    #[test]
    fn the_example_file_is_valid_and_states_every_default() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config.example.toml");
        let text = std::fs::read_to_string(path).expect("config.example.toml");
        let from_file: RawConfig = toml::from_str(&text).expect("every key is known");
        assert_eq!(
            toml::to_string(&from_file).expect("toml"),
            toml::to_string(&RawConfig::default()).expect("toml"),
            "config.example.toml and the defaults disagree"
        );
        Config::validate(from_file).expect("valid");
    }

    #[test]
    fn node_settings_are_validated_with_their_key() {
        let err = load("[node]\nlisten = \"everywhere\"\n", Cli::default()).expect_err("bad");
        assert!(err.to_string().contains("node.listen"), "{err}");
        let err = load("[node.trust]\nplacement = \"inbox\"\n", Cli::default()).expect_err("bad");
        assert!(err.to_string().contains("node.trust.placement"), "{err}");
        let err = load("[node.discovery]\nport = [1]\n", Cli::default()).expect_err("unknown key");
        assert!(err.to_string().contains("port"), "{err}");
        let c = load("[server]\ndata_dir = \"/srv/p2p\"\n", Cli::default()).expect("valid");
        assert_eq!(c.keys_dir, PathBuf::from("/srv/p2p/keys"));
        assert_eq!(
            c.node.identity_file,
            PathBuf::from("/srv/p2p/keys/node.key")
        );
    }

    #[test]
    fn public_https_url_makes_cookies_secure_and_allows_its_host() {
        let c = load(
            "[server]\npublic_url = \"https://P2P.example.org/\"\n",
            Cli::default(),
        )
        .expect("valid");
        assert!(c.secure_cookies);
        assert!(c.allowed_hosts.contains(&"p2p.example.org".to_owned()));
    }
}
