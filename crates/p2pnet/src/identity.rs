//! Where the long-term identity comes from: a file created on first use
//! (mode 0600, exactly one key even when several processes start at once),
//! a caller-supplied keypair, or a fresh ephemeral key.

use std::io::Write;
use std::path::{Path, PathBuf};

use p2pnet_proto::Keypair;
use p2pnet_proto::identity::KEYPAIR_ENCODED_LEN;

use crate::error::{Error, Result};

/// The source of a network's long-term keypair.
#[derive(Debug)]
pub enum IdentitySource {
    /// Generate a new key for this run only.
    Ephemeral,
    /// Use this keypair.
    Keypair(Keypair),
    /// Load the keypair from this file, creating it (mode 0600) if absent.
    File(PathBuf),
}

impl IdentitySource {
    pub(crate) fn resolve(self) -> Result<Keypair> {
        match self {
            Self::Ephemeral => Ok(Keypair::generate(&mut rand::rng())),
            Self::Keypair(keypair) => Ok(keypair),
            Self::File(path) => load_or_create(&path),
        }
    }
}

/// Loads the keypair stored at `path`, or creates one there.
///
/// A new key is written to a temporary file of its own (mode 0600),
/// synced, then hard-linked to `path`. The link fails if `path` exists, so
/// when several processes start at once exactly one key is published and
/// every other creator loads that one; a crash never leaves a half-written
/// key under `path`. An existing file that group or others can read is
/// refused, as OpenSSH refuses such keys, and a corrupt one is reported,
/// never replaced.
pub fn load_or_create(path: &Path) -> Result<Keypair> {
    match load(path) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            create(path)
        }
        loaded => loaded,
    }
}

fn load(path: &Path) -> Result<Keypair> {
    let bytes =
        std::fs::read(path).map_err(|err| Error::io(format!("reading {}", path.display()), err))?;
    check_permissions(path)?;
    Keypair::from_bytes(&bytes).map_err(|err| Error::Identity {
        path: path.to_owned(),
        reason: err.to_string(),
    })
}

fn create(path: &Path) -> Result<Keypair> {
    let keypair = Keypair::generate(&mut rand::rng());
    let bytes = keypair.to_bytes();
    debug_assert_eq!(bytes.len(), KEYPAIR_ENCODED_LEN);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|err| Error::io(format!("creating {}", dir.display()), err))?;
    }
    // Random, not the process id: threads of one process race too.
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!(".tmp{:016x}", rand::random::<u64>()));
    let temp = PathBuf::from(temp);
    let publish = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        // Unlike rename, a link never replaces: the first creator wins.
        std::fs::hard_link(&temp, path)
    };
    let published = publish();
    let _ = std::fs::remove_file(&temp);
    match published {
        Ok(()) => {
            sync_parent(path);
            tracing::info!(path = %path.display(), peer_id = %keypair.peer_id(), "created a new identity");
            Ok(keypair)
        }
        // Another process (or thread) published its key first: use that
        // one, with the same checks as any existing key.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => load(path),
        Err(err) => Err(Error::io(
            format!("writing identity {}", path.display()),
            err,
        )),
    }
}

/// Makes the new directory entry durable; a failure only risks losing a
/// key that a crash would have lost anyway, so it is logged.
fn sync_parent(path: &Path) {
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => dir,
        None => Path::new("."),
    };
    if let Err(err) = std::fs::File::open(dir).and_then(|dir| dir.sync_all()) {
        tracing::warn!(%err, dir = %dir.display(), "cannot sync the identity's directory");
    }
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|err| Error::io(format!("reading {}", path.display()), err))?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(Error::Identity {
            path: path.to_owned(),
            reason: format!(
                "mode {:o} lets other users read the key; chmod 600 it",
                mode & 0o777
            ),
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_with_mode_0600_and_reloads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/identity.key");
        let first = load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = load_or_create(&path).unwrap();
        assert_eq!(first.peer_id(), second.peer_id());
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[cfg(unix)]
    #[test]
    fn an_old_x25519_identity_is_kept_and_refused_with_what_to_do() {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        let mut old = b"P2PK\x01".to_vec();
        old.extend_from_slice(&[7; 64]);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        file.write_all(&old).unwrap();
        let err = load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("move the file away"), "{err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            old,
            "the old key is not overwritten"
        );
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_key_others_can_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn racing_creators_all_load_the_one_key_that_won() {
        const RACERS: usize = 8;
        let dir = tempfile::tempdir().unwrap();
        for round in 0..10 {
            let path = dir.path().join(format!("identity-{round}.key"));
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(RACERS));
            let racers: Vec<_> = (0..RACERS)
                .map(|_| {
                    let path = path.clone();
                    let barrier = barrier.clone();
                    std::thread::spawn(move || {
                        barrier.wait();
                        load_or_create(&path).map(|keypair| keypair.peer_id())
                    })
                })
                .collect();
            let ids: Vec<_> = racers
                .into_iter()
                .map(|racer| racer.join().unwrap())
                .collect::<Result<_>>()
                .unwrap_or_else(|err| panic!("round {round}: a racer failed: {err}"));
            let on_disk = load_or_create(&path).unwrap().peer_id();
            assert!(
                ids.iter().all(|id| *id == on_disk),
                "round {round}: racers ended up with different identities"
            );
        }
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 10);
    }

    #[test]
    fn refuses_a_corrupt_key_without_overwriting_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        std::fs::write(&path, b"not a key").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(matches!(load_or_create(&path), Err(Error::Identity { .. })));
        assert_eq!(std::fs::read(&path).unwrap(), b"not a key");
    }
}
