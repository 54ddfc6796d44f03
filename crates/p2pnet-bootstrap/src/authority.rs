//! The bootstrap authority's OpenPGP key, and the pinned certificate a
//! client checks its signatures with.
//!
//! A bootstrap server serves a snapshot (UTF-8 text) with an ASCII-armored
//! OpenPGP *detached* signature over exactly those bytes, made by the signing
//! subkey of its authority key, so that `gpg --verify snapshot.asc snapshot`
//! with the served certificate verifies it. A client pins the authority's
//! certificate on first use ([`PinnedAuthority`]) and from then on accepts
//! only what that key signed ([`PinnedAuthority::verify_detached`]).
//!
//! # Keys
//!
//! [`AuthorityKey::generate`] makes an Ed25519 certificate (sequoia's
//! `CipherSuite::Cv25519`, v4 keys that GnuPG 2.2 reads): a
//! certification-only primary key, one signing subkey, one user id, and a
//! validity period fixed at creation (an expiry added later could be
//! stripped by whoever relays the certificate).
//!
//! [`AuthorityKey::load_or_create`] keeps the key in `dir/authority.key`, an
//! ASCII-armored transferable secret key whose secrets are encrypted with
//! the passphrase. Without a passphrase it refuses to create or load an
//! unencrypted key unless the caller allows it explicitly; a fixed
//! passphrase is never used. The file is written to a temporary file,
//! synced and renamed, with mode 0600 in a 0700 directory; a file that group
//! or others can read is refused.
//!
//! # Rotation
//!
//! [`AuthorityKey::rotate`] makes a new key and a [`Rotation`] statement:
//! a domain-separated text naming the sequence number, the old and the new
//! fingerprint, signed by the old key *and* by the new one (TUF root
//! rotation: both sign). [`PinnedAuthority::follow`] moves a pin along one
//! statement, [`PinnedAuthority::follow_chain`] along a served list.
//!
//! # Policy
//!
//! Every check runs under sequoia's [`StandardPolicy`] at the caller's time:
//! it refuses, among others, SHA-1 based signatures and keys under 2048-bit
//! RSA. Signatures are checked by the key that made them at their creation
//! time (sequoia), and in addition the certificate and the signing key must
//! be alive and unrevoked at the time of the check (this module).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openpgp::cert::CertParser;
use openpgp::cert::prelude::*;
use openpgp::crypto::mem::Protected;
use openpgp::crypto::{KeyPair, Password};
use openpgp::packet::Signature;
use openpgp::parse::Parse;
use openpgp::parse::stream::{
    DetachedVerifierBuilder, MessageLayer, MessageStructure, VerificationError, VerificationHelper,
};
use openpgp::policy::StandardPolicy;
use openpgp::serialize::SerializeInto;
use openpgp::serialize::stream::{Armorer, Message, Signer};
use openpgp::types::{KeyFlags, ReasonForRevocation, RevocationStatus, SignatureType};
use openpgp::{Cert, Fingerprint, KeyHandle, Packet, armor};
use sequoia_openpgp as openpgp;
use serde::{Deserialize, Serialize};

/// The key file's name inside the authority directory.
pub const KEY_FILE: &str = "authority.key";

/// The environment variable the server reads the passphrase from
/// ([`Passphrase::from_env`]).
pub const PASSPHRASE_ENV: &str = "P2PNET_BOOTSTRAP__PASSPHRASE";

/// The environment variable that, set to `1`, lets the server keep its key
/// unencrypted (the `allow_unencrypted` argument of
/// [`AuthorityKey::load_or_create`]).
pub const ALLOW_UNENCRYPTED_ENV: &str = "P2PNET_BOOTSTRAP__ALLOW_UNENCRYPTED_KEY";

/// How long a key made by [`AuthorityKey::load_or_create`] is valid: two
/// years (of 365 days).
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(2 * 365 * 24 * 60 * 60);

/// The largest certificate [`PinnedAuthority::from_armored`] reads.
pub const MAX_CERTIFICATE_LEN: usize = 64 * 1024;

/// The largest armored signature the checks read.
pub const MAX_SIGNATURE_LEN: usize = 16 * 1024;

/// The largest key file [`AuthorityKey::load_or_create`] reads.
const MAX_KEY_FILE_LEN: u64 = 1024 * 1024;

/// The first line of every rotation statement. Snapshot signing and
/// checking refuse data that starts with it, so a signature over a
/// statement never passes for a snapshot's, nor the other way round.
pub const ROTATION_DOMAIN: &str = "P2PNet bootstrap authority key rotation v1";

/// The user id an authority key for `network` carries.
pub fn user_id_for(network: &str) -> String {
    format!("P2PNet bootstrap authority {network}")
}

/// What can go wrong with the authority key or its signatures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorityError {
    /// A file or directory operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done ("reading", "writing", …).
        action: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// No passphrase was given and an unencrypted key was not allowed.
    #[error(
        "no passphrase for the authority key in {}: set {PASSPHRASE_ENV} \
         (the server's bootstrap.passphrase), or allow an unencrypted key \
         explicitly ({ALLOW_UNENCRYPTED_ENV}=true)",
        dir.display()
    )]
    PassphraseRequired {
        /// The authority directory.
        dir: PathBuf,
    },
    /// The key file holds unencrypted secrets and that was not allowed.
    #[error(
        "the authority key {} is not encrypted: set {PASSPHRASE_ENV} to load \
         it (then save it to encrypt it), or allow an unencrypted key \
         explicitly ({ALLOW_UNENCRYPTED_ENV}=true)",
        path.display()
    )]
    UnencryptedKey {
        /// The key file.
        path: PathBuf,
    },
    /// The passphrase is empty.
    #[error("the authority key passphrase is empty; set {PASSPHRASE_ENV} to a real passphrase")]
    EmptyPassphrase,
    /// The passphrase does not decrypt the key file.
    #[error("wrong passphrase for the authority key {}", path.display())]
    WrongPassphrase {
        /// The key file.
        path: PathBuf,
    },
    /// The key file can be read by group or others.
    #[error(
        "the authority key {} is readable by group or others (mode {mode:03o}); \
         run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file is not a usable authority key.
    #[error("the authority key {} is unusable: {reason}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The key has no signing subkey that is alive, unrevoked and unlocked.
    #[error(
        "the authority key {fingerprint} has no usable signing key (expired or revoked? rotate it)"
    )]
    NoSigningKey {
        /// The certificate's fingerprint.
        fingerprint: String,
    },
    /// An OpenPGP operation failed.
    #[error("OpenPGP {context}: {message}")]
    OpenPgp {
        /// What was being done.
        context: &'static str,
        /// sequoia's error, with its causes.
        message: String,
    },
    /// The certificate is over the size limit.
    #[error("certificate too large: {len} bytes, the limit is {max}")]
    CertificateTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The certificate could not be parsed or is not one certificate.
    #[error("malformed certificate: {0}")]
    MalformedCertificate(String),
    /// The certificate carries secret key material.
    #[error("the certificate contains secret key material; pin the public certificate only")]
    SecretKeyMaterial,
    /// The certificate is not valid under the policy at the time of the check.
    #[error("certificate {fingerprint} is not valid: {reason}")]
    InvalidCertificate {
        /// The certificate's fingerprint.
        fingerprint: String,
        /// Why (sequoia's policy).
        reason: String,
    },
    /// The signature is over the size limit.
    #[error("signature too large: {len} bytes, the limit is {max}")]
    SignatureTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The signature could not be parsed, or holds no signature.
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
    /// The signature was made by a key that is not the pinned one.
    #[error("signed by another key ({issuer}), not by the authority {expected}")]
    SignedByOtherKey {
        /// The issuer the signature names.
        issuer: String,
        /// The pinned fingerprint.
        expected: String,
    },
    /// The signature does not match the data (altered data or signature).
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// The key that made the signature cannot make it (not signing capable,
    /// or expired or revoked when it signed).
    #[error("the signing key cannot be used: {0}")]
    UnusableKey(String),
    /// The certificate or its signing key has expired.
    #[error("the authority certificate {fingerprint} has expired: {reason}")]
    Expired {
        /// The certificate's fingerprint.
        fingerprint: String,
        /// sequoia's reason.
        reason: String,
    },
    /// The certificate or its signing key is revoked.
    #[error("the authority certificate {fingerprint} is revoked{}", reason_suffix(.reason))]
    Revoked {
        /// The certificate's fingerprint.
        fingerprint: String,
        /// The reason given in the revocation, if any.
        reason: Option<String>,
    },
    /// The data starts with [`ROTATION_DOMAIN`], reserved for rotation
    /// statements.
    #[error(
        "the data starts with the rotation statement header; refusing to sign or accept it as a snapshot"
    )]
    ReservedPrefix,
    /// A rotation statement does not fit the pin it is followed from.
    #[error("rotation {seq} refused: {reason}")]
    Rotation {
        /// The statement's sequence number.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// A signature on a rotation statement does not verify.
    #[error("rotation {seq} refused: the {signer} key's signature: {source}")]
    RotationSignature {
        /// The statement's sequence number.
        seq: u64,
        /// "old" or "new".
        signer: &'static str,
        /// Why.
        #[source]
        source: Box<AuthorityError>,
    },
}

fn reason_suffix(reason: &Option<String>) -> String {
    reason
        .as_ref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default()
}

fn pgp(context: &'static str) -> impl FnOnce(openpgp::anyhow::Error) -> AuthorityError {
    move |e| AuthorityError::OpenPgp {
        context,
        message: format!("{e:#}"),
    }
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> AuthorityError + 'a {
    move |source| AuthorityError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// A passphrase for the authority key. `Debug` never shows it, and its
/// memory is encrypted while held and zeroed when dropped (sequoia's
/// [`Password`]).
#[derive(Clone)]
pub struct Passphrase(Password);

impl Passphrase {
    /// The passphrase in [`PASSPHRASE_ENV`], if set and not empty.
    pub fn from_env() -> Option<Self> {
        let value = std::env::var(PASSPHRASE_ENV).ok()?;
        (!value.is_empty()).then(|| Self::from(value))
    }

    fn is_empty(&self) -> bool {
        self.0.map(|p| p.is_empty())
    }

    fn password(&self) -> &Password {
        &self.0
    }
}

impl From<String> for Passphrase {
    fn from(value: String) -> Self {
        Self(Password::from(value))
    }
}

impl From<&str> for Passphrase {
    fn from(value: &str) -> Self {
        Self(Password::from(value))
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// The server's authority key, with its secrets (held unlocked in sequoia's
/// protected memory; `Debug` shows the fingerprint only).
#[derive(Clone)]
pub struct AuthorityKey {
    /// The transferable secret key, secrets decrypted.
    cert: Cert,
}

impl fmt::Debug for AuthorityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorityKey")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl AuthorityKey {
    /// A new Ed25519 key (`CipherSuite::Cv25519`): a certification-only
    /// primary key, one signing subkey, the user id `user_id`, valid for
    /// `validity` from now (set at creation; both keys share it).
    pub fn generate(user_id: &str, validity: Duration) -> Result<Self, AuthorityError> {
        Self::generate_with_revocation(user_id, validity).map(|(key, _)| key)
    }

    /// [`generate`](Self::generate), also returning the revocation
    /// certificate sequoia makes with the key.
    fn generate_with_revocation(
        user_id: &str,
        validity: Duration,
    ) -> Result<(Self, Signature), AuthorityError> {
        if user_id.trim().is_empty() {
            return Err(AuthorityError::InvalidArgument(
                "the user id is empty".into(),
            ));
        }
        if validity.is_zero() {
            // A key expiration time of 0 means "never" in OpenPGP.
            return Err(AuthorityError::InvalidArgument(
                "the validity period is zero".into(),
            ));
        }
        let (cert, revocation) = CertBuilder::new()
            .set_cipher_suite(CipherSuite::Cv25519)
            .set_primary_key_flags(KeyFlags::empty().set_certification())
            .add_userid(user_id)
            .add_signing_subkey()
            .set_validity_period(validity)
            .generate()
            .map_err(pgp("generating the authority key"))?;
        let key = Self { cert };
        tracing::info!(fingerprint = %key.fingerprint(), "generated an authority key");
        Ok((key, revocation))
    }

    /// Loads `dir/authority.key`, or creates it when absent.
    ///
    /// The file is an ASCII-armored transferable secret key whose secrets
    /// are encrypted with `passphrase`. When created, it gets a new key with
    /// `user_id` and [`DEFAULT_VALIDITY`], written with mode 0600 through a
    /// synced temporary file (the directory is created with mode 0700). When
    /// loaded, `user_id` is not used.
    ///
    /// Without a passphrase, an unencrypted key is created or loaded only if
    /// `allow_unencrypted` is true; otherwise the error names
    /// [`PASSPHRASE_ENV`] and [`ALLOW_UNENCRYPTED_ENV`]. An encrypted file
    /// needs its passphrase; a wrong one is [`AuthorityError::WrongPassphrase`].
    /// A file that group or others can read (`mode & 077`) is refused.
    pub fn load_or_create(
        dir: &Path,
        passphrase: Option<&Passphrase>,
        user_id: &str,
        allow_unencrypted: bool,
    ) -> Result<Self, AuthorityError> {
        if passphrase.is_some_and(Passphrase::is_empty) {
            return Err(AuthorityError::EmptyPassphrase);
        }
        let path = dir.join(KEY_FILE);
        if let Some(bytes) = read_key_file(&path)? {
            return Self::from_key_file(&path, &bytes, passphrase, allow_unencrypted);
        }
        if passphrase.is_none() && !allow_unencrypted {
            return Err(AuthorityError::PassphraseRequired {
                dir: dir.to_path_buf(),
            });
        }
        let key = Self::generate(user_id, DEFAULT_VALIDITY)?;
        let bytes = key.tsk_bytes(passphrase)?;
        create_dir(dir)?;
        match write_file(dir, &bytes, WriteMode::CreateNew)? {
            Created::Yes => {
                tracing::info!(
                    fingerprint = %key.fingerprint(),
                    path = %path.display(),
                    encrypted = passphrase.is_some(),
                    "stored a new authority key"
                );
                Ok(key)
            }
            // Another process created it meanwhile: use theirs.
            Created::AlreadyThere => match read_key_file(&path)? {
                Some(bytes) => Self::from_key_file(&path, &bytes, passphrase, allow_unencrypted),
                None => Err(AuthorityError::KeyFile {
                    path,
                    reason: "vanished while being created".into(),
                }),
            },
        }
    }

    fn from_key_file(
        path: &Path,
        bytes: &[u8],
        passphrase: Option<&Passphrase>,
        allow_unencrypted: bool,
    ) -> Result<Self, AuthorityError> {
        let unusable = |reason: String| AuthorityError::KeyFile {
            path: path.to_path_buf(),
            reason,
        };
        let cert = Cert::from_bytes(bytes).map_err(|e| unusable(format!("{e:#}")))?;
        if !cert.is_tsk() {
            return Err(unusable("it holds no secret key".into()));
        }
        let encrypted = cert
            .keys()
            .secret()
            .any(|ka| !ka.key().has_unencrypted_secret());
        let cert = if encrypted {
            let Some(passphrase) = passphrase else {
                return Err(AuthorityError::PassphraseRequired {
                    dir: path.parent().unwrap_or(path).to_path_buf(),
                });
            };
            let mut unlocked: Vec<Packet> = Vec::new();
            for ka in cert.keys().secret() {
                if ka.key().has_unencrypted_secret() {
                    continue;
                }
                let key = ka
                    .key()
                    .clone()
                    .decrypt_secret(passphrase.password())
                    .map_err(|_| AuthorityError::WrongPassphrase {
                        path: path.to_path_buf(),
                    })?;
                unlocked.push(if ka.primary() {
                    key.role_into_primary().into()
                } else {
                    key.role_into_subordinate().into()
                });
            }
            cert.insert_packets(unlocked)
                .map_err(pgp("unlocking the authority key"))?
                .0
        } else {
            if passphrase.is_none() && !allow_unencrypted {
                return Err(AuthorityError::UnencryptedKey {
                    path: path.to_path_buf(),
                });
            }
            if passphrase.is_some() {
                tracing::warn!(
                    path = %path.display(),
                    "the authority key file is not encrypted; save it to encrypt it"
                );
            }
            cert
        };
        let key = Self { cert };
        let policy = StandardPolicy::new();
        let valid = key
            .cert
            .with_policy(&policy, None)
            .map_err(|e| unusable(format!("{e:#}")))?;
        if valid.keys().for_signing().secret().next().is_none() {
            return Err(unusable("it has no signing key with its secret".into()));
        }
        if let Err(e) = valid.alive() {
            tracing::warn!(fingerprint = %key.fingerprint(), "the authority key is not alive: {e}");
        }
        Ok(key)
    }

    /// The certificate's fingerprint: uppercase hex, as gpg prints it.
    pub fn fingerprint(&self) -> String {
        self.cert.fingerprint().to_hex()
    }

    /// The public certificate, ASCII-armored (no secrets).
    pub fn certificate_armored(&self) -> String {
        self.pinned().certificate_armored()
    }

    /// The public side, as a client pins it.
    pub fn pinned(&self) -> PinnedAuthority {
        PinnedAuthority {
            cert: self.cert.clone().strip_secret_key_material(),
            seq: None,
        }
    }

    /// An ASCII-armored detached signature (type binary) over `data`, made
    /// by the signing subkey. Data that starts with [`ROTATION_DOMAIN`] is
    /// refused.
    pub fn sign_detached(&self, data: &[u8]) -> Result<String, AuthorityError> {
        if data.starts_with(ROTATION_DOMAIN.as_bytes()) {
            return Err(AuthorityError::ReservedPrefix);
        }
        self.sign_raw(data)
    }

    fn sign_raw(&self, data: &[u8]) -> Result<String, AuthorityError> {
        let keypair = self.signing_keypair()?;
        let mut sink = Vec::new();
        let message = Message::new(&mut sink);
        let message = Armorer::new(message)
            .kind(armor::Kind::Signature)
            .build()
            .map_err(pgp("armoring the signature"))?;
        let mut signer = Signer::new(message, keypair)
            .map_err(pgp("signing"))?
            .detached()
            .build()
            .map_err(pgp("signing"))?;
        signer
            .write_all(data)
            .map_err(|e| pgp("signing")(e.into()))?;
        signer.finalize().map_err(pgp("signing"))?;
        String::from_utf8(sink).map_err(|e| pgp("armoring the signature")(e.into()))
    }

    fn signing_keypair(&self) -> Result<KeyPair, AuthorityError> {
        let policy = StandardPolicy::new();
        let no_key = || AuthorityError::NoSigningKey {
            fingerprint: self.fingerprint(),
        };
        let valid = self.cert.with_policy(&policy, None).map_err(|_| no_key())?;
        if valid.alive().is_err()
            || matches!(valid.revocation_status(), RevocationStatus::Revoked(_))
        {
            return Err(no_key());
        }
        let ka = valid
            .keys()
            .supported()
            .alive()
            .revoked(false)
            .for_signing()
            .secret()
            .next()
            .ok_or_else(no_key)?;
        ka.key()
            .clone()
            .into_keypair()
            .map_err(pgp("unlocking the signing key"))
    }

    /// A new key, and the statement that moves a client pinned to this key
    /// onto it: `previous` is the last rotation this key came from (its
    /// `new_fingerprint` must be this key's), or `None` for the first
    /// rotation; the statement's `seq` is one more than `previous`'s, or 1.
    /// The old key (this one) and the new key both sign the statement.
    pub fn rotate(
        &self,
        previous: Option<&Rotation>,
        user_id: &str,
        validity: Duration,
    ) -> Result<(AuthorityKey, Rotation), AuthorityError> {
        let old_fingerprint = self.fingerprint();
        let seq = match previous {
            None => 1,
            Some(previous) if previous.new_fingerprint == old_fingerprint => previous
                .seq
                .checked_add(1)
                .ok_or_else(|| AuthorityError::InvalidArgument("rotation seq overflow".into()))?,
            Some(previous) => {
                return Err(AuthorityError::InvalidArgument(format!(
                    "the previous rotation leads to {}, not to this key {old_fingerprint}",
                    previous.new_fingerprint
                )));
            }
        };
        let new = Self::generate(user_id, validity)?;
        let new_fingerprint = new.fingerprint();
        let statement = rotation_statement(seq, &old_fingerprint, &new_fingerprint);
        let signature_by_old = self.sign_raw(statement.as_bytes())?;
        let signature_by_new = new.sign_raw(statement.as_bytes())?;
        let rotation = Rotation {
            seq,
            old_fingerprint,
            new_fingerprint,
            new_certificate: new.certificate_armored(),
            statement,
            signature_by_old,
            signature_by_new,
        };
        tracing::info!(
            seq,
            old = %rotation.old_fingerprint,
            new = %rotation.new_fingerprint,
            "rotated the authority key"
        );
        Ok((new, rotation))
    }

    /// An ASCII-armored revocation certificate for this key (reason: key
    /// compromised, which revokes every signature it made). Needs the
    /// primary key's secret.
    pub fn revocation_certificate(&self, message: &str) -> Result<String, AuthorityError> {
        let primary = self
            .cert
            .primary_key()
            .key()
            .clone()
            .parts_into_secret()
            .map_err(|_| AuthorityError::NoSigningKey {
                fingerprint: self.fingerprint(),
            })?;
        let mut signer = primary
            .into_keypair()
            .map_err(pgp("unlocking the primary key"))?;
        let revocation = self
            .cert
            .revoke(
                &mut signer,
                ReasonForRevocation::KeyCompromised,
                message.as_bytes(),
            )
            .map_err(pgp("revoking"))?;
        armor_signature(revocation)
    }

    /// Saves this key over `dir/authority.key`, its secrets encrypted with
    /// `passphrase` (without one, unencrypted: the caller decides whether
    /// that is allowed). Written to a synced temporary file (mode 0600) and
    /// renamed; a previous key file is kept, hard-linked (or copied) as
    /// `authority.key.prev-<its fingerprint>`.
    pub fn save(&self, dir: &Path, passphrase: Option<&Passphrase>) -> Result<(), AuthorityError> {
        if passphrase.is_some_and(Passphrase::is_empty) {
            return Err(AuthorityError::EmptyPassphrase);
        }
        let bytes = self.tsk_bytes(passphrase)?;
        create_dir(dir)?;
        let path = dir.join(KEY_FILE);
        if let Some(previous) = read_key_file(&path)? {
            let fingerprint = Cert::from_bytes(&previous[..])
                .map_err(|e| AuthorityError::KeyFile {
                    path: path.clone(),
                    reason: format!("{e:#}; move it away before saving another key over it"),
                })?
                .fingerprint()
                .to_hex();
            let backup = dir.join(format!("{KEY_FILE}.prev-{fingerprint}"));
            keep_backup(&path, &backup)?;
        }
        write_file(dir, &bytes, WriteMode::Replace)?;
        tracing::info!(
            fingerprint = %self.fingerprint(),
            path = %path.display(),
            encrypted = passphrase.is_some(),
            "saved the authority key"
        );
        Ok(())
    }

    /// The armored transferable secret key, secrets encrypted with
    /// `passphrase` when given.
    fn tsk_bytes(&self, passphrase: Option<&Passphrase>) -> Result<Protected, AuthorityError> {
        let cert = match passphrase {
            None => self.cert.clone(),
            Some(passphrase) => {
                let mut locked: Vec<Packet> = Vec::new();
                for ka in self.cert.keys().secret() {
                    let key = ka.key().clone();
                    let key = if key.has_unencrypted_secret() {
                        key.encrypt_secret(passphrase.password())
                            .map_err(pgp("encrypting the authority key"))?
                    } else {
                        key
                    };
                    locked.push(if ka.primary() {
                        key.role_into_primary().into()
                    } else {
                        key.role_into_subordinate().into()
                    });
                }
                self.cert
                    .clone()
                    .insert_packets(locked)
                    .map_err(pgp("encrypting the authority key"))?
                    .0
            }
        };
        cert.as_tsk()
            .armored()
            .to_vec()
            .map(Protected::from)
            .map_err(pgp("serializing the authority key"))
    }
}

/// A signature packet, ASCII-armored.
fn armor_signature(signature: Signature) -> Result<String, AuthorityError> {
    use openpgp::serialize::Serialize as _;
    let mut writer = armor::Writer::new(Vec::new(), armor::Kind::Signature)
        .map_err(|e| pgp("armoring a signature")(e.into()))?;
    Packet::from(signature)
        .serialize(&mut writer)
        .map_err(pgp("armoring a signature"))?;
    let bytes = writer
        .finalize()
        .map_err(|e| pgp("armoring a signature")(e.into()))?;
    String::from_utf8(bytes).map_err(|e| pgp("armoring a signature")(e.into()))
}

/// The text a rotation's signatures cover.
fn rotation_statement(seq: u64, old_fingerprint: &str, new_fingerprint: &str) -> String {
    format!("{ROTATION_DOMAIN}\nseq {seq}\nold {old_fingerprint}\nnew {new_fingerprint}\n")
}

/// A key rotation: the authority moves from the old key to the new one, and
/// both sign the statement. Served as JSON in a list, oldest first.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// 1 for the first rotation, then one more each time.
    pub seq: u64,
    /// The old certificate's fingerprint (uppercase hex).
    pub old_fingerprint: String,
    /// The new certificate's fingerprint (uppercase hex).
    pub new_fingerprint: String,
    /// The new public certificate, ASCII-armored.
    pub new_certificate: String,
    /// The exact text signed: [`ROTATION_DOMAIN`], then `seq`, `old` and
    /// `new` lines.
    pub statement: String,
    /// The old key's armored detached signature over `statement`.
    pub signature_by_old: String,
    /// The new key's armored detached signature over `statement`.
    pub signature_by_new: String,
}

/// What a client pins: the authority's public certificate, and the
/// sequence number of the last rotation followed to it, if any.
#[derive(Clone)]
pub struct PinnedAuthority {
    cert: Cert,
    seq: Option<u64>,
}

impl fmt::Debug for PinnedAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedAuthority")
            .field("fingerprint", &self.fingerprint())
            .field("seq", &self.seq)
            .finish()
    }
}

/// Whether a check may accept a rotation statement and an expired key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// A snapshot: not a statement; the key alive now.
    Snapshot,
    /// A rotation statement signed by the key the pin follows from: it may
    /// have expired since (TUF checks no intermediate root's expiry), but
    /// the signature was made while it was alive (sequoia checks that).
    RotationFromOld,
    /// A rotation statement signed by the key the pin follows to.
    RotationToNew,
}

impl PinnedAuthority {
    /// Reads an ASCII-armored (or binary) public certificate: at most
    /// [`MAX_CERTIFICATE_LEN`] bytes, exactly one certificate, no secret
    /// key material, valid under the standard policy now, with a
    /// signing-capable key.
    pub fn from_armored(certificate: &str) -> Result<Self, AuthorityError> {
        if certificate.len() > MAX_CERTIFICATE_LEN {
            return Err(AuthorityError::CertificateTooLarge {
                len: certificate.len(),
                max: MAX_CERTIFICATE_LEN,
            });
        }
        let malformed =
            |e: openpgp::anyhow::Error| AuthorityError::MalformedCertificate(format!("{e:#}"));
        let mut certs = CertParser::from_bytes(certificate.as_bytes()).map_err(malformed)?;
        let cert = match certs.next() {
            Some(cert) => cert.map_err(malformed)?,
            None => {
                return Err(AuthorityError::MalformedCertificate(
                    "no certificate found".into(),
                ));
            }
        };
        if certs.next().is_some() {
            return Err(AuthorityError::MalformedCertificate(
                "more than one certificate".into(),
            ));
        }
        if cert.is_tsk() {
            return Err(AuthorityError::SecretKeyMaterial);
        }
        let policy = StandardPolicy::new();
        let valid =
            cert.with_policy(&policy, None)
                .map_err(|e| AuthorityError::InvalidCertificate {
                    fingerprint: cert.fingerprint().to_hex(),
                    reason: format!("{e:#}"),
                })?;
        if valid.keys().for_signing().next().is_none() {
            return Err(AuthorityError::InvalidCertificate {
                fingerprint: cert.fingerprint().to_hex(),
                reason: "no signing-capable key".into(),
            });
        }
        Ok(Self { cert, seq: None })
    }

    /// The certificate's fingerprint: uppercase hex, as gpg prints it.
    pub fn fingerprint(&self) -> String {
        self.cert.fingerprint().to_hex()
    }

    /// The certificate, ASCII-armored.
    pub fn certificate_armored(&self) -> String {
        // Serializing a certificate held in memory into a Vec fails only on
        // a bug; an empty string then fails any later parse loudly.
        self.cert
            .armored()
            .to_vec()
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_default()
    }

    /// The sequence number of the last rotation followed to this pin;
    /// `None` for a certificate pinned on first use.
    pub fn rotation_seq(&self) -> Option<u64> {
        self.seq
    }

    /// This pin, recording that it was reached by rotation `seq` (for a
    /// client restoring its stored pin).
    pub fn with_rotation_seq(mut self, seq: Option<u64>) -> Self {
        self.seq = seq;
        self
    }

    /// Checks `signature` (an armored detached signature, at most
    /// [`MAX_SIGNATURE_LEN`] bytes) over `data`: made by this certificate's
    /// signing-capable key, a binary signature, valid under the standard
    /// policy at `now`, with the certificate and the signing key alive and
    /// not revoked at `now`. Data starting with [`ROTATION_DOMAIN`] is
    /// refused.
    pub fn verify_detached(
        &self,
        data: &[u8],
        signature: &str,
        now: SystemTime,
    ) -> Result<(), AuthorityError> {
        self.verify(data, signature, now, Purpose::Snapshot)
    }

    /// Applies an armored revocation certificate for this certificate (as
    /// [`AuthorityKey::revocation_certificate`] makes); afterwards every
    /// check fails with [`AuthorityError::Revoked`]. A signature that does
    /// not revoke this certificate is refused.
    pub fn apply_revocation(&self, revocation: &str) -> Result<Self, AuthorityError> {
        if revocation.len() > MAX_SIGNATURE_LEN {
            return Err(AuthorityError::SignatureTooLarge {
                len: revocation.len(),
                max: MAX_SIGNATURE_LEN,
            });
        }
        let packet = Packet::from_bytes(revocation.as_bytes())
            .map_err(|e| AuthorityError::MalformedSignature(format!("{e:#}")))?;
        let Packet::Signature(signature) = packet else {
            return Err(AuthorityError::MalformedSignature(
                "not a signature packet".into(),
            ));
        };
        let fingerprint = self.fingerprint();
        let (cert, _) = self
            .cert
            .clone()
            .insert_packets(Some(signature))
            .map_err(pgp("applying the revocation"))?;
        let policy = StandardPolicy::new();
        if !matches!(
            cert.revocation_status(&policy, None),
            RevocationStatus::Revoked(_)
        ) {
            return Err(AuthorityError::MalformedSignature(format!(
                "not a valid revocation of {fingerprint}"
            )));
        }
        Ok(Self {
            cert,
            seq: self.seq,
        })
    }

    /// Follows one rotation: the statement must name this pin as old, the
    /// new certificate's fingerprint as new, and be the exact text of
    /// [`AuthorityKey::rotate`]; its `seq` must be this pin's plus one (any
    /// `seq` when this pin was made on first use). Both signatures must
    /// verify under the standard policy at `now`: the old one by this pin
    /// (which may have expired since it signed, but not be revoked), the
    /// new one by the new certificate, alive and unrevoked at `now`.
    /// Returns the new pin.
    pub fn follow(
        &self,
        rotation: &Rotation,
        now: SystemTime,
    ) -> Result<PinnedAuthority, AuthorityError> {
        let seq = rotation.seq;
        let refuse = |reason: String| AuthorityError::Rotation { seq, reason };
        let old = self.fingerprint();
        if rotation.old_fingerprint != old {
            return Err(refuse(format!(
                "it rotates from {}, not from the pinned {old}",
                rotation.old_fingerprint
            )));
        }
        match self.seq {
            Some(pinned) if Some(seq) != pinned.checked_add(1) => {
                return Err(refuse(format!(
                    "expected rotation {}",
                    pinned.saturating_add(1)
                )));
            }
            None if seq == 0 => return Err(refuse("rotations start at 1".into())),
            _ => {}
        }
        let expected =
            rotation_statement(seq, &rotation.old_fingerprint, &rotation.new_fingerprint);
        if rotation.statement != expected {
            return Err(refuse("the statement does not match its fields".into()));
        }
        let new = PinnedAuthority::from_armored(&rotation.new_certificate)
            .map_err(|e| refuse(format!("new certificate: {e}")))?;
        if new.fingerprint() != rotation.new_fingerprint {
            return Err(refuse(format!(
                "the new certificate is {}, the statement names {}",
                new.fingerprint(),
                rotation.new_fingerprint
            )));
        }
        if new.fingerprint() == old {
            return Err(refuse("the new key is the old key".into()));
        }
        let statement = rotation.statement.as_bytes();
        self.verify(
            statement,
            &rotation.signature_by_old,
            now,
            Purpose::RotationFromOld,
        )
        .map_err(|e| AuthorityError::RotationSignature {
            seq,
            signer: "old",
            source: Box::new(e),
        })?;
        new.verify(
            statement,
            &rotation.signature_by_new,
            now,
            Purpose::RotationToNew,
        )
        .map_err(|e| AuthorityError::RotationSignature {
            seq,
            signer: "new",
            source: Box::new(e),
        })?;
        Ok(new.with_rotation_seq(Some(seq)))
    }

    /// Follows the rotations in `rotations` (a server's list, in any order)
    /// that lead on from this pin, one after the other; rotations from other
    /// keys, and those already behind this pin's `seq`, are skipped. Returns
    /// this pin when none applies.
    pub fn follow_chain(
        &self,
        rotations: &[Rotation],
        now: SystemTime,
    ) -> Result<PinnedAuthority, AuthorityError> {
        let mut ordered: Vec<&Rotation> = rotations.iter().collect();
        ordered.sort_by_key(|r| r.seq);
        let mut pin = self.clone();
        for rotation in ordered {
            if pin.seq.is_some_and(|seq| rotation.seq <= seq) {
                continue;
            }
            if rotation.old_fingerprint == pin.fingerprint() {
                pin = pin.follow(rotation, now)?;
            }
        }
        Ok(pin)
    }

    fn verify(
        &self,
        data: &[u8],
        signature: &str,
        now: SystemTime,
        purpose: Purpose,
    ) -> Result<(), AuthorityError> {
        if signature.len() > MAX_SIGNATURE_LEN {
            return Err(AuthorityError::SignatureTooLarge {
                len: signature.len(),
                max: MAX_SIGNATURE_LEN,
            });
        }
        if purpose == Purpose::Snapshot && data.starts_with(ROTATION_DOMAIN.as_bytes()) {
            return Err(AuthorityError::ReservedPrefix);
        }
        let fingerprint = self.fingerprint();
        let policy = StandardPolicy::new();
        let valid = self.cert.with_policy(&policy, now).map_err(|e| {
            AuthorityError::InvalidCertificate {
                fingerprint: fingerprint.clone(),
                reason: format!("{e:#}"),
            }
        })?;
        check_not_revoked(&fingerprint, valid.revocation_status())?;
        if purpose != Purpose::RotationFromOld {
            valid.alive().map_err(|e| AuthorityError::Expired {
                fingerprint: fingerprint.clone(),
                reason: format!("{e:#}"),
            })?;
        }

        let helper = Helper {
            cert: self.cert.clone(),
            expected: fingerprint.clone(),
            signer: None,
            failure: None,
        };
        let malformed =
            |e: openpgp::anyhow::Error| AuthorityError::MalformedSignature(format!("{e:#}"));
        let mut verifier = DetachedVerifierBuilder::from_bytes(signature.as_bytes())
            .map_err(malformed)?
            .with_policy(&policy, now, helper)
            .map_err(malformed)?;
        let result = verifier.verify_bytes(data);
        let helper = verifier.into_helper();
        let signer = match (result, helper.signer) {
            (Ok(()), Some(signer)) => signer,
            (_, _) => {
                return Err(helper.failure.unwrap_or_else(|| {
                    AuthorityError::MalformedSignature("no signature found".into())
                }));
            }
        };

        // sequoia checked the signing key at the signature's time; check it
        // now as well.
        let key = valid
            .keys()
            .key_handle(signer.clone())
            .next()
            .ok_or_else(|| {
                AuthorityError::UnusableKey(format!("key {signer} not found at this time"))
            })?;
        check_not_revoked(&fingerprint, key.revocation_status())?;
        if purpose != Purpose::RotationFromOld {
            key.alive().map_err(|e| AuthorityError::Expired {
                fingerprint,
                reason: format!("signing key {signer}: {e:#}"),
            })?;
        }
        Ok(())
    }
}

fn check_not_revoked(
    fingerprint: &str,
    status: RevocationStatus<'_>,
) -> Result<(), AuthorityError> {
    match status {
        RevocationStatus::Revoked(revocations) => Err(AuthorityError::Revoked {
            fingerprint: fingerprint.to_string(),
            reason: revocations.first().and_then(|sig| {
                sig.reason_for_revocation().map(|(code, message)| {
                    let message = String::from_utf8_lossy(message);
                    if message.is_empty() {
                        code.to_string()
                    } else {
                        format!("{code}: {message}")
                    }
                })
            }),
        }),
        RevocationStatus::CouldBe(_) | RevocationStatus::NotAsFarAsWeKnow => Ok(()),
    }
}

/// The verification helper: hands sequoia the pinned certificate and keeps
/// the outcome, mapped to [`AuthorityError`].
struct Helper {
    cert: Cert,
    expected: String,
    /// The key that made a good signature.
    signer: Option<Fingerprint>,
    /// The first failure seen.
    failure: Option<AuthorityError>,
}

impl Helper {
    fn fail(&mut self, error: AuthorityError) {
        if self.failure.is_none() {
            self.failure = Some(error);
        }
    }
}

impl VerificationHelper for Helper {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(vec![self.cert.clone()])
    }

    fn check(&mut self, structure: MessageStructure<'_>) -> openpgp::Result<()> {
        for layer in structure {
            let MessageLayer::SignatureGroup { results } = layer else {
                self.fail(AuthorityError::MalformedSignature(
                    "not a detached signature".into(),
                ));
                continue;
            };
            for result in results {
                let error = match result {
                    Ok(good) if good.sig.typ() == SignatureType::Binary => {
                        self.signer = Some(good.ka.key().fingerprint());
                        return Ok(());
                    }
                    Ok(good) => AuthorityError::BadSignature(format!(
                        "a {} signature, expected a binary one",
                        good.sig.typ()
                    )),
                    Err(VerificationError::MissingKey { sig }) => {
                        AuthorityError::SignedByOtherKey {
                            issuer: sig
                                .get_issuers()
                                .first()
                                .map(KeyHandle::to_hex)
                                .unwrap_or_else(|| "no issuer named".into()),
                            expected: self.expected.clone(),
                        }
                    }
                    Err(VerificationError::BadSignature { error, .. }) => {
                        AuthorityError::BadSignature(format!("{error:#}"))
                    }
                    Err(VerificationError::BadKey { error, .. }) => {
                        AuthorityError::UnusableKey(format!("{error:#}"))
                    }
                    Err(VerificationError::UnboundKey { error, .. }) => {
                        AuthorityError::UnusableKey(format!("{error:#}"))
                    }
                    Err(VerificationError::MalformedSignature { error, .. }) => {
                        AuthorityError::MalformedSignature(format!("{error:#}"))
                    }
                    Err(other) => AuthorityError::MalformedSignature(other.to_string()),
                };
                self.fail(error);
            }
        }
        Err(openpgp::anyhow::anyhow!("no good signature"))
    }
}

/// Reads the key file, if present: a regular file, at most
/// [`MAX_KEY_FILE_LEN`] bytes, that group and others cannot read.
fn read_key_file(path: &Path) -> Result<Option<Protected>, AuthorityError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("opening", path)(e)),
    };
    let metadata = file.metadata().map_err(io_err("reading", path))?;
    if !metadata.is_file() {
        return Err(AuthorityError::KeyFile {
            path: path.to_path_buf(),
            reason: "not a regular file".into(),
        });
    }
    check_mode(path, &metadata)?;
    if metadata.len() > MAX_KEY_FILE_LEN {
        return Err(AuthorityError::KeyFile {
            path: path.to_path_buf(),
            reason: format!(
                "{} bytes, over the {MAX_KEY_FILE_LEN}-byte limit",
                metadata.len()
            ),
        });
    }
    let mut bytes = Vec::new();
    // `take` bounds a file that grows under us.
    let read = file
        .take(MAX_KEY_FILE_LEN)
        .read_to_end(&mut bytes)
        .map_err(io_err("reading", path));
    let bytes = Protected::from(bytes);
    read?;
    Ok(Some(bytes))
}

#[cfg(unix)]
fn check_mode(path: &Path, metadata: &fs::Metadata) -> Result<(), AuthorityError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(AuthorityError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path, _metadata: &fs::Metadata) -> Result<(), AuthorityError> {
    Ok(())
}

fn create_dir(dir: &Path) -> Result<(), AuthorityError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io_err("creating", dir))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WriteMode {
    /// Only if no key file is there.
    CreateNew,
    /// Over any key file.
    Replace,
}

enum Created {
    Yes,
    AlreadyThere,
}

/// Writes `dir/authority.key` through a synced temporary file with mode
/// 0600, then syncs the directory.
fn write_file(dir: &Path, bytes: &[u8], mode: WriteMode) -> Result<Created, AuthorityError> {
    let path = dir.join(KEY_FILE);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{KEY_FILE}.tmp-{}-{nanos}", std::process::id()));
    let result = write_tmp(&tmp, bytes).and_then(|()| match mode {
        WriteMode::Replace => fs::rename(&tmp, &path)
            .map(|()| Created::Yes)
            .map_err(io_err("renaming into", &path)),
        // A hard link fails if the target exists: create-if-absent, atomically.
        WriteMode::CreateNew => match fs::hard_link(&tmp, &path) {
            Ok(()) => Ok(Created::Yes),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Created::AlreadyThere),
            Err(e) => Err(io_err("linking into", &path)(e)),
        },
    });
    // After a rename the temporary name is gone; after a link or a failure
    // it must go.
    if tmp.exists() {
        let _ = fs::remove_file(&tmp);
    }
    let created = result?;
    sync_dir(dir)?;
    Ok(created)
}

fn write_tmp(tmp: &Path, bytes: &[u8]) -> Result<(), AuthorityError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(tmp).map_err(io_err("creating", tmp))?;
    file.write_all(bytes).map_err(io_err("writing", tmp))?;
    file.sync_all().map_err(io_err("syncing", tmp))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), AuthorityError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing", dir))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), AuthorityError> {
    Ok(())
}

/// Keeps `path` as `backup`: a hard link (`path` stays in place, so a crash
/// never leaves the directory without a key), or a copy where links fail.
fn keep_backup(path: &Path, backup: &Path) -> Result<(), AuthorityError> {
    match fs::remove_file(backup) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("removing", backup)(e)),
    }
    if fs::hard_link(path, backup).is_ok() {
        return Ok(());
    }
    // `fs::copy` keeps the permission bits (0600).
    fs::copy(path, backup)
        .map(|_| ())
        .map_err(io_err("copying to", backup))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    #[test]
    fn generated_key_shape() {
        let key = AuthorityKey::generate(&user_id_for("testnet"), DAY).unwrap();
        let policy = StandardPolicy::new();
        let valid = key.cert.with_policy(&policy, None).unwrap();
        let primary_flags = valid.primary_key().key_flags().unwrap();
        assert!(primary_flags.for_certification());
        assert!(!primary_flags.for_signing());
        assert_eq!(valid.keys().subkeys().count(), 1);
        assert_eq!(valid.keys().subkeys().for_signing().count(), 1);
        assert_eq!(
            valid.userids().next().unwrap().userid().value(),
            b"P2PNet bootstrap authority testnet"
        );
        // The validity is set at creation, on the primary key's binding.
        assert!(valid.primary_key().key_expiration_time().is_some());
        assert_eq!(key.fingerprint().len(), 40);
        assert_eq!(key.fingerprint(), key.fingerprint().to_uppercase());
        let public = key.certificate_armored();
        assert!(public.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
        assert!(!Cert::from_bytes(public.as_bytes()).unwrap().is_tsk());
        assert!(!format!("{key:?}").contains("Secret"));
    }

    #[test]
    fn revocation_from_generation_is_refused_as_revoked() {
        let (key, revocation) =
            AuthorityKey::generate_with_revocation("revoked authority", DAY).unwrap();
        let data = b"snapshot";
        let signature = key.sign_detached(data).unwrap();
        let pin = key.pinned();
        pin.verify_detached(data, &signature, SystemTime::now())
            .unwrap();

        let armored = armor_signature(revocation.clone()).unwrap();
        let revoked = pin.apply_revocation(&armored).unwrap();
        let err = revoked
            .verify_detached(data, &signature, SystemTime::now())
            .unwrap_err();
        assert!(matches!(err, AuthorityError::Revoked { .. }), "{err}");
        // The revoked key signs no more.
        let (cert, _) = key.cert.clone().insert_packets(Some(revocation)).unwrap();
        let err = AuthorityKey { cert }.sign_detached(data).unwrap_err();
        assert!(matches!(err, AuthorityError::NoSigningKey { .. }), "{err}");
    }

    #[test]
    fn passphrase_debug_is_redacted() {
        let passphrase = Passphrase::from("hunter2-secret");
        assert_eq!(format!("{passphrase:?}"), "Passphrase(<redacted>)");
    }

    #[test]
    fn statement_is_domain_separated() {
        let statement = rotation_statement(3, "AA", "BB");
        assert_eq!(
            statement,
            "P2PNet bootstrap authority key rotation v1\nseq 3\nold AA\nnew BB\n"
        );
        let key = AuthorityKey::generate("a", DAY).unwrap();
        assert!(matches!(
            key.sign_detached(statement.as_bytes()),
            Err(AuthorityError::ReservedPrefix)
        ));
        let signature = key.sign_raw(statement.as_bytes()).unwrap();
        assert!(matches!(
            key.pinned()
                .verify_detached(statement.as_bytes(), &signature, SystemTime::now()),
            Err(AuthorityError::ReservedPrefix)
        ));
    }

    /// A rotation to an attacker's key that names the pinned key as old,
    /// with a valid statement and the new key's genuine signature, but no
    /// signature by the pinned key.
    #[test]
    fn rotation_signed_only_by_the_new_key_is_refused() {
        let old = AuthorityKey::generate("old", DAY).unwrap();
        let attacker = AuthorityKey::generate("attacker", DAY).unwrap();
        let statement = rotation_statement(1, &old.fingerprint(), &attacker.fingerprint());
        let by_attacker = attacker.sign_raw(statement.as_bytes()).unwrap();
        let forged = Rotation {
            seq: 1,
            old_fingerprint: old.fingerprint(),
            new_fingerprint: attacker.fingerprint(),
            new_certificate: attacker.certificate_armored(),
            statement: statement.clone(),
            signature_by_old: by_attacker.clone(),
            signature_by_new: by_attacker,
        };
        let err = old.pinned().follow(&forged, SystemTime::now()).unwrap_err();
        match &err {
            AuthorityError::RotationSignature { signer, source, .. } => {
                assert_eq!(*signer, "old");
                assert!(
                    matches!(**source, AuthorityError::SignedByOtherKey { .. }),
                    "{source}"
                );
            }
            _ => panic!("expected RotationSignature, got {err}"),
        }
        // With the old key's signature added, the same statement is accepted:
        // the refusal above was for the missing signature alone.
        let genuine = Rotation {
            signature_by_old: old.sign_raw(statement.as_bytes()).unwrap(),
            ..forged
        };
        let pin = old.pinned().follow(&genuine, SystemTime::now()).unwrap();
        assert_eq!(pin.fingerprint(), attacker.fingerprint());
    }
}
