//! Settings an administrator can change at run time, stored in the database.
//!
//! A stored value wins over the configuration file, so a change made in the
//! panel survives a restart; the file only provides the initial value.

use crate::store::{Store, StoreError};

/// Store key of the node's display name.
pub const NODE_NAME: &str = "node.name";
/// Store key of the inbound-peer switch (`true` / `false`).
pub const ACCEPT_INBOUND_PEERS: &str = "node.accept_inbound_peers";

/// The editable settings in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectiveSettings {
    /// Display name.
    pub node_name: String,
    /// Whether inbound peers are accepted.
    pub accept_inbound_peers: bool,
}

/// Reads the stored settings, falling back to the configured defaults.
pub async fn load(store: &dyn Store, default_name: &str) -> Result<EffectiveSettings, StoreError> {
    let node_name = store
        .setting(NODE_NAME)
        .await?
        .unwrap_or_else(|| default_name.to_owned());
    let accept_inbound_peers = store
        .setting(ACCEPT_INBOUND_PEERS)
        .await?
        .is_none_or(|v| v == "true");
    Ok(EffectiveSettings {
        node_name,
        accept_inbound_peers,
    })
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
    use super::validate_node_name;

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
}
