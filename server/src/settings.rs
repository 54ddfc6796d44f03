//! Settings an administrator can change at run time, stored in the database.
//!
//! A stored value wins over the configuration file, so a change made in the
//! panel survives a restart; the file only provides the initial value. The
//! node's name and its trust defaults apply at once; the settings in
//! [`RESTART_FIELDS`] are laid over `[node]` when the server starts.

use app::api::{EditableSettings, FieldError, RESTART_FIELDS};

use crate::{
    config::{Config, ConfigError, NodeConfig, RawNode},
    store::{Store, StoreError},
};

/// Store key of the node's display name.
pub const NODE_NAME: &str = "node.name";
/// Store key of the inbound-peer switch (`true` / `false`).
pub const ACCEPT_INBOUND_PEERS: &str = "node.accept_inbound_peers";
const PLACEMENT: &str = "node.trust.placement";
const AUTO_ACCEPT: &str = "node.trust.auto_accept";
const DEFAULT_EXCHANGE: &str = "node.trust.default_exchange";
const ENHANCED_EXCHANGE: &str = "node.trust.enhanced_exchange";
const APPROVAL_TIMEOUT: &str = "node.trust.approval_timeout_secs";
const DISCOVERY_ENABLED: &str = "node.discovery.enabled";
const AUTO_CONNECT: &str = "node.discovery.auto_connect";
const STATIC_HOSTS: &str = "node.discovery.static_hosts";

/// The placements a form may choose.
pub const PLACEMENTS: [&str; 3] = ["queue", "event", "queue-and-event"];

/// The settings as the configuration file gives them.
pub fn defaults(config: &Config) -> EditableSettings {
    let raw = config.raw_node();
    EditableSettings {
        node_name: config.node_name.clone(),
        accept_inbound_peers: raw.accept_inbound,
        placement: raw.trust.placement.clone(),
        auto_accept: raw.trust.auto_accept,
        default_exchange: raw.trust.default_exchange,
        enhanced_exchange: raw.trust.enhanced_exchange,
        approval_timeout_secs: raw.trust.approval_timeout_secs,
        discovery_enabled: raw.discovery.enabled,
        auto_connect: raw.discovery.auto_connect,
        static_hosts: raw.discovery.static_hosts.clone(),
    }
}

/// Reads the stored settings over the configured ones. A stored value that
/// no longer parses is ignored (the configured one stays).
pub async fn load(store: &dyn Store, config: &Config) -> Result<EditableSettings, StoreError> {
    let mut s = defaults(config);
    let flag = |value: Option<String>, was: bool| value.map_or(was, |v| v == "true");
    if let Some(name) = store.setting(NODE_NAME).await? {
        s.node_name = name;
    }
    s.accept_inbound_peers = flag(
        store.setting(ACCEPT_INBOUND_PEERS).await?,
        s.accept_inbound_peers,
    );
    if let Some(placement) = store.setting(PLACEMENT).await? {
        s.placement = placement;
    }
    s.auto_accept = flag(store.setting(AUTO_ACCEPT).await?, s.auto_accept);
    s.default_exchange = flag(store.setting(DEFAULT_EXCHANGE).await?, s.default_exchange);
    s.enhanced_exchange = flag(store.setting(ENHANCED_EXCHANGE).await?, s.enhanced_exchange);
    if let Some(secs) = store
        .setting(APPROVAL_TIMEOUT)
        .await?
        .and_then(|v| v.parse().ok())
    {
        s.approval_timeout_secs = secs;
    }
    s.discovery_enabled = flag(store.setting(DISCOVERY_ENABLED).await?, s.discovery_enabled);
    s.auto_connect = flag(store.setting(AUTO_CONNECT).await?, s.auto_connect);
    if let Some(hosts) = store
        .setting(STATIC_HOSTS)
        .await?
        .and_then(|v| serde_json::from_str(&v).ok())
    {
        s.static_hosts = hosts;
    }
    Ok(s)
}

/// `[node]` with `settings` laid over it, validated like the file.
pub fn node_config(
    config: &Config,
    settings: &EditableSettings,
) -> Result<NodeConfig, ConfigError> {
    overlay(config.raw_node(), settings).validate(&config.data_dir, &config.keys_dir)
}

fn overlay(raw: &RawNode, s: &EditableSettings) -> RawNode {
    let mut raw = raw.clone();
    raw.accept_inbound = s.accept_inbound_peers;
    raw.trust.placement.clone_from(&s.placement);
    raw.trust.auto_accept = s.auto_accept;
    raw.trust.default_exchange = s.default_exchange;
    raw.trust.enhanced_exchange = s.enhanced_exchange;
    raw.trust.approval_timeout_secs = s.approval_timeout_secs;
    raw.discovery.enabled = s.discovery_enabled;
    raw.discovery.auto_connect = s.auto_connect;
    raw.discovery.static_hosts.clone_from(&s.static_hosts);
    raw
}

/// Checks every field as the node will; the normalised settings, or every
/// refused field with its reason.
pub fn validate(update: &EditableSettings) -> Result<EditableSettings, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut refuse = |field: &str, message: String| {
        errors.push(FieldError {
            field: field.to_owned(),
            message,
        });
    };
    let mut s = update.clone();
    match validate_node_name(&update.node_name) {
        Ok(name) => s.node_name = name,
        Err(message) => refuse("node_name", message),
    }
    s.placement = update.placement.trim().to_ascii_lowercase();
    if !PLACEMENTS.contains(&s.placement.as_str()) {
        refuse(
            "placement",
            format!(
                "`{}` is not one of {}",
                update.placement.trim(),
                PLACEMENTS.join(", ")
            ),
        );
    }
    if !(10..=86_400).contains(&update.approval_timeout_secs) {
        refuse(
            "approval_timeout_secs",
            "must be between 10 and 86400 seconds".into(),
        );
    }
    // The node's own parser, for what it alone knows (host syntax, bounds).
    if let Err(e) = p2pnet::DiscoveryConfig::default().static_hosts(&s.static_hosts) {
        refuse("static_hosts", e.to_string());
    }
    if errors.is_empty() {
        Ok(s)
    } else {
        Err(errors)
    }
}

/// The store's key/value form of `s`.
pub fn to_store(s: &EditableSettings) -> Vec<(String, String)> {
    vec![
        (NODE_NAME.into(), s.node_name.clone()),
        (
            ACCEPT_INBOUND_PEERS.into(),
            s.accept_inbound_peers.to_string(),
        ),
        (PLACEMENT.into(), s.placement.clone()),
        (AUTO_ACCEPT.into(), s.auto_accept.to_string()),
        (DEFAULT_EXCHANGE.into(), s.default_exchange.to_string()),
        (ENHANCED_EXCHANGE.into(), s.enhanced_exchange.to_string()),
        (APPROVAL_TIMEOUT.into(), s.approval_timeout_secs.to_string()),
        (DISCOVERY_ENABLED.into(), s.discovery_enabled.to_string()),
        (AUTO_CONNECT.into(), s.auto_connect.to_string()),
        (
            STATIC_HOSTS.into(),
            serde_json::to_string(&s.static_hosts).unwrap_or_else(|_| "[]".into()),
        ),
    ]
}

/// The restart-bound fields whose value differs between `in_force` (what
/// the server started with) and `stored`.
pub fn pending_restart(in_force: &EditableSettings, stored: &EditableSettings) -> Vec<String> {
    let differs = |field: &str| match field {
        "accept_inbound_peers" => in_force.accept_inbound_peers != stored.accept_inbound_peers,
        "approval_timeout_secs" => in_force.approval_timeout_secs != stored.approval_timeout_secs,
        "discovery_enabled" => in_force.discovery_enabled != stored.discovery_enabled,
        "auto_connect" => in_force.auto_connect != stored.auto_connect,
        "static_hosts" => in_force.static_hosts != stored.static_hosts,
        _ => false,
    };
    RESTART_FIELDS
        .iter()
        .filter(|f| differs(f))
        .map(|f| (*f).to_owned())
        .collect()
}

/// Trims and checks a node name: 1–64 characters, no control characters.
pub fn validate_node_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.chars().count() > 64 {
        return Err("must be at most 64 characters".into());
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;

    fn config() -> Config {
        Config::validate(RawConfig::default()).expect("defaults")
    }

    #[test]
    fn node_names_are_trimmed_and_bounded() {
        assert_eq!(validate_node_name("  alpha  ").as_deref(), Ok("alpha"));
        assert!(validate_node_name("   ").is_err());
        assert!(validate_node_name(&"x".repeat(65)).is_err());
        assert_eq!(
            validate_node_name(&"é".repeat(64)).map(|s| s.chars().count()),
            Ok(64)
        );
        assert!(validate_node_name("a\u{7}b").is_err());
    }

    #[test]
    fn every_bad_field_is_named_and_good_ones_are_normalised() {
        let config = config();
        let mut s = defaults(&config);
        s.node_name = " ".into();
        s.placement = "inbox".into();
        s.approval_timeout_secs = 3;
        s.static_hosts = vec!["no such host!".into()];
        let errors = validate(&s).expect_err("four bad fields");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "node_name",
                "placement",
                "approval_timeout_secs",
                "static_hosts"
            ]
        );
        let mut s = defaults(&config);
        s.placement = " Queue ".into();
        s.static_hosts = vec!["192.0.2.7:28351".into()];
        assert_eq!(validate(&s).expect("valid").placement, "queue");
    }

    #[test]
    fn restart_fields_are_pending_until_restart() {
        let config = config();
        let start = defaults(&config);
        let mut stored = start.clone();
        stored.node_name = "renamed".into();
        stored.auto_accept = true;
        assert!(
            pending_restart(&start, &stored).is_empty(),
            "both apply live"
        );
        stored.discovery_enabled = false;
        stored.static_hosts = vec!["peer.example.org".into()];
        assert_eq!(
            pending_restart(&start, &stored),
            ["discovery_enabled", "static_hosts"]
        );
        let node = node_config(&config, &stored).expect("valid");
        assert!(
            node.discovery.is_none(),
            "laid over [node] at the next start"
        );
    }
}
