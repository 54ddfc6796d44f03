//! The bootstrap authority as the server keeps it: its OpenPGP key in the
//! keys directory (`authority.key`, the secret encrypted with
//! `bootstrap.passphrase`) and the rotations that led to it
//! (`authority.rotations.json`), which clients pinned to an older key
//! follow.
//!
//! A rotation writes the rotations file first and the new key second. A
//! crash between the two leaves the old key with a rotation it never
//! completed; loading drops such a trailing rotation (its key was never
//! saved, so it never signed anything).

use std::path::Path;

use p2pnet_bootstrap::authority::{AuthorityKey, DEFAULT_VALIDITY, Rotation, user_id_for};

use super::BootstrapConfig;

/// The authority: its key and the rotations that led to it.
pub struct Authority {
    /// The signing key.
    pub key: AuthorityKey,
    /// Past rotations, oldest first.
    pub rotations: Vec<Rotation>,
}

/// The file beside the key that lists its rotations, oldest first.
pub const ROTATIONS_FILE: &str = "authority.rotations.json";

impl Authority {
    /// Loads (or, on first start, creates) the authority key in
    /// `keys_dir` as `config` says, and its rotations.
    pub fn load(keys_dir: &std::path::Path, config: &BootstrapConfig) -> Result<Self, String> {
        let key = AuthorityKey::load_or_create(
            keys_dir,
            config.passphrase.as_ref(),
            &user_id_for(&config.network),
            config.allow_unencrypted_key,
        )
        .map_err(|e| e.to_string())?;
        let path = keys_dir.join(ROTATIONS_FILE);
        let mut rotations: Vec<Rotation> = match std::fs::read_to_string(&path) {
            Ok(text) => {
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        if rotations
            .last()
            .is_some_and(|r| r.new_fingerprint != key.fingerprint())
        {
            let unfinished = rotations.pop();
            tracing::warn!(
                to = unfinished.map(|r| r.new_fingerprint),
                "dropping a key rotation that did not complete"
            );
            write_rotations(keys_dir, &rotations)?;
        }
        tracing::info!(fingerprint = %key.fingerprint(), "bootstrap authority key loaded");
        Ok(Self { key, rotations })
    }

    /// Makes a new key certified by this one, records the rotation, and
    /// saves the new key over the old (kept as `authority.key.prev-FPR`).
    pub fn rotate(&self, keys_dir: &Path, config: &BootstrapConfig) -> Result<Self, String> {
        let (key, rotation) = self
            .key
            .rotate(
                self.rotations.last(),
                &user_id_for(&config.network),
                DEFAULT_VALIDITY,
            )
            .map_err(|e| e.to_string())?;
        let mut rotations = self.rotations.clone();
        rotations.push(rotation);
        write_rotations(keys_dir, &rotations)?;
        key.save(keys_dir, config.passphrase.as_ref())
            .map_err(|e| e.to_string())?;
        tracing::info!(
            from = %self.key.fingerprint(),
            to = %key.fingerprint(),
            "bootstrap authority key rotated"
        );
        Ok(Self { key, rotations })
    }
}

/// Writes the rotations file atomically (a synced temporary file renamed
/// over it).
fn write_rotations(keys_dir: &Path, rotations: &[Rotation]) -> Result<(), String> {
    use std::io::Write;
    let path = keys_dir.join(ROTATIONS_FILE);
    let temp = keys_dir.join(format!("{ROTATIONS_FILE}.tmp"));
    let text = serde_json::to_vec_pretty(rotations).map_err(|e| e.to_string())?;
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(&text)?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)?;
        std::fs::File::open(keys_dir)?.sync_all()
    };
    write().map_err(|e| format!("{}: {e}", path.display()))
}
