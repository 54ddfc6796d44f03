//! The authority key and the pinned certificate, through the public API:
//! signatures, key files, rotation, and GnuPG interoperability.
#![cfg(unix)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use p2pnet_bootstrap::authority::{
    AuthorityError, AuthorityKey, KEY_FILE, MAX_CERTIFICATE_LEN, MAX_SIGNATURE_LEN, PASSPHRASE_ENV,
    Passphrase, PinnedAuthority, Rotation, user_id_for,
};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const SNAPSHOT: &[u8] = b"{\"network\":\"testnet\",\"seq\":7,\"records\":[]}\n";

fn key(name: &str) -> AuthorityKey {
    AuthorityKey::generate(&user_id_for(name), 30 * DAY).expect("generate")
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn sign_then_verify_and_altered_data_is_a_bad_signature() {
    let key = key("testnet");
    let signature = key.sign_detached(SNAPSHOT).unwrap();
    assert!(signature.starts_with("-----BEGIN PGP SIGNATURE-----"));
    let pin = PinnedAuthority::from_armored(&key.certificate_armored()).unwrap();
    assert_eq!(pin.fingerprint(), key.fingerprint());
    pin.verify_detached(SNAPSHOT, &signature, SystemTime::now())
        .unwrap();

    let mut altered = SNAPSHOT.to_vec();
    altered[20] ^= 1;
    let err = pin
        .verify_detached(&altered, &signature, SystemTime::now())
        .unwrap_err();
    assert!(matches!(err, AuthorityError::BadSignature(_)), "{err}");
    // One more byte at the end is altered data too.
    let mut longer = SNAPSHOT.to_vec();
    longer.push(b' ');
    let err = pin
        .verify_detached(&longer, &signature, SystemTime::now())
        .unwrap_err();
    assert!(matches!(err, AuthorityError::BadSignature(_)), "{err}");
}

#[test]
fn a_signature_by_another_key_is_refused_as_such() {
    let pinned = key("testnet");
    let other = key("testnet");
    let signature = other.sign_detached(SNAPSHOT).unwrap();
    let err = pinned
        .pinned()
        .verify_detached(SNAPSHOT, &signature, SystemTime::now())
        .unwrap_err();
    match &err {
        AuthorityError::SignedByOtherKey { expected, .. } => {
            assert_eq!(expected, &pinned.fingerprint());
        }
        _ => panic!("expected SignedByOtherKey, got {err}"),
    }
}

#[test]
fn an_expired_certificate_is_refused_as_expired() {
    let key = AuthorityKey::generate("short-lived", DAY).unwrap();
    let signature = key.sign_detached(SNAPSHOT).unwrap();
    let pin = key.pinned();
    pin.verify_detached(SNAPSHOT, &signature, SystemTime::now() + DAY / 2)
        .unwrap();
    let err = pin
        .verify_detached(SNAPSHOT, &signature, SystemTime::now() + 2 * DAY)
        .unwrap_err();
    assert!(matches!(err, AuthorityError::Expired { .. }), "{err}");
}

#[test]
fn a_revoked_certificate_is_refused_as_revoked() {
    let key = key("testnet");
    let signature = key.sign_detached(SNAPSHOT).unwrap();
    let revocation = key.revocation_certificate("retired").unwrap();
    let pin = key.pinned().apply_revocation(&revocation).unwrap();
    let err = pin
        .verify_detached(SNAPSHOT, &signature, SystemTime::now())
        .unwrap_err();
    assert!(matches!(err, AuthorityError::Revoked { .. }), "{err}");
    assert!(err.to_string().contains("retired"), "{err}");

    // Another key's revocation does not apply.
    let other = self::key("other");
    let err = other.pinned().apply_revocation(&revocation).unwrap_err();
    assert!(
        matches!(err, AuthorityError::MalformedSignature(_)),
        "{err}"
    );
}

#[test]
fn garbage_and_oversized_inputs_are_clear_errors() {
    let key = key("testnet");
    let pin = key.pinned();
    let now = SystemTime::now();

    let err = pin
        .verify_detached(SNAPSHOT, "not a signature", now)
        .unwrap_err();
    assert!(
        matches!(err, AuthorityError::MalformedSignature(_)),
        "{err}"
    );
    let err = pin
        .verify_detached(
            SNAPSHOT,
            "-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n",
            now,
        )
        .unwrap_err();
    assert!(
        matches!(err, AuthorityError::MalformedSignature(_)),
        "{err}"
    );
    // A certificate where a signature belongs.
    let err = pin
        .verify_detached(SNAPSHOT, &key.certificate_armored(), now)
        .unwrap_err();
    assert!(
        matches!(err, AuthorityError::MalformedSignature(_)),
        "{err}"
    );
    let big = "A".repeat(MAX_SIGNATURE_LEN + 1);
    let err = pin.verify_detached(SNAPSHOT, &big, now).unwrap_err();
    assert!(
        matches!(err, AuthorityError::SignatureTooLarge { .. }),
        "{err}"
    );

    let err = PinnedAuthority::from_armored("garbage").unwrap_err();
    assert!(
        matches!(err, AuthorityError::MalformedCertificate(_)),
        "{err}"
    );
    let err = PinnedAuthority::from_armored("").unwrap_err();
    assert!(
        matches!(err, AuthorityError::MalformedCertificate(_)),
        "{err}"
    );
    let big = "A".repeat(MAX_CERTIFICATE_LEN + 1);
    let err = PinnedAuthority::from_armored(&big).unwrap_err();
    assert!(
        matches!(err, AuthorityError::CertificateTooLarge { .. }),
        "{err}"
    );
    let two = format!(
        "{}{}",
        key.certificate_armored(),
        self::key("b").certificate_armored()
    );
    let err = PinnedAuthority::from_armored(&two).unwrap_err();
    assert!(
        matches!(err, AuthorityError::MalformedCertificate(_)),
        "{err}"
    );
}

#[test]
fn a_secret_key_is_not_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuthorityKey::load_or_create(dir.path(), None, "unencrypted", true).unwrap();
    let tsk = fs::read_to_string(dir.path().join(KEY_FILE)).unwrap();
    assert!(tsk.starts_with("-----BEGIN PGP PRIVATE KEY BLOCK-----"));
    let err = PinnedAuthority::from_armored(&tsk).unwrap_err();
    assert!(matches!(err, AuthorityError::SecretKeyMaterial), "{err}");
    assert!(!key.certificate_armored().contains("PRIVATE"));
}

#[test]
fn load_or_create_stores_an_encrypted_0600_key_and_reloads_it() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("authority");
    let passphrase = Passphrase::from("correct horse battery staple");
    let created =
        AuthorityKey::load_or_create(&dir, Some(&passphrase), &user_id_for("testnet"), false)
            .unwrap();
    let path = dir.join(KEY_FILE);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir), 0o700);
    // No temporary file left behind.
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);

    // The secrets on disk are encrypted: loading without the passphrase
    // fails, and so does a wrong one.
    let err = AuthorityKey::load_or_create(&dir, None, "ignored", true).unwrap_err();
    assert!(
        matches!(err, AuthorityError::PassphraseRequired { .. }),
        "{err}"
    );
    let err =
        AuthorityKey::load_or_create(&dir, Some(&"wrong".into()), "ignored", false).unwrap_err();
    assert!(
        matches!(err, AuthorityError::WrongPassphrase { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("wrong passphrase"), "{err}");

    let loaded = AuthorityKey::load_or_create(&dir, Some(&passphrase), "ignored", false).unwrap();
    assert_eq!(loaded.fingerprint(), created.fingerprint());
    // The reloaded key signs, and the created key's pin accepts it.
    let signature = loaded.sign_detached(SNAPSHOT).unwrap();
    created
        .pinned()
        .verify_detached(SNAPSHOT, &signature, SystemTime::now())
        .unwrap();

    let err = AuthorityKey::load_or_create(&dir, Some(&"".into()), "ignored", false).unwrap_err();
    assert!(matches!(err, AuthorityError::EmptyPassphrase), "{err}");
}

#[test]
fn no_passphrase_needs_an_explicit_allowance() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("authority");
    let err = AuthorityKey::load_or_create(&dir, None, "a", false).unwrap_err();
    assert!(
        matches!(err, AuthorityError::PassphraseRequired { .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains(PASSPHRASE_ENV), "{message}");
    assert!(message.contains("ALLOW_UNENCRYPTED_KEY"), "{message}");
    assert!(!dir.join(KEY_FILE).exists());

    let created = AuthorityKey::load_or_create(&dir, None, "a", true).unwrap();
    assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
    let loaded = AuthorityKey::load_or_create(&dir, None, "a", true).unwrap();
    assert_eq!(loaded.fingerprint(), created.fingerprint());
    // An unencrypted key is not loaded silently.
    let err = AuthorityKey::load_or_create(&dir, None, "a", false).unwrap_err();
    assert!(
        matches!(err, AuthorityError::UnencryptedKey { .. }),
        "{err}"
    );

    // Saving with a passphrase encrypts it.
    let passphrase = Passphrase::from("now encrypted");
    loaded.save(&dir, Some(&passphrase)).unwrap();
    let err = AuthorityKey::load_or_create(&dir, None, "a", true).unwrap_err();
    assert!(
        matches!(err, AuthorityError::PassphraseRequired { .. }),
        "{err}"
    );
    let reloaded = AuthorityKey::load_or_create(&dir, Some(&passphrase), "a", false).unwrap();
    assert_eq!(reloaded.fingerprint(), created.fingerprint());
}

#[test]
fn a_key_file_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let passphrase = Passphrase::from("pw");
    AuthorityKey::load_or_create(dir.path(), Some(&passphrase), "a", false).unwrap();
    let path = dir.path().join(KEY_FILE);
    for loose in [0o644, 0o640, 0o604] {
        fs::set_permissions(&path, fs::Permissions::from_mode(loose)).unwrap();
        let err =
            AuthorityKey::load_or_create(dir.path(), Some(&passphrase), "a", false).unwrap_err();
        assert!(
            matches!(err, AuthorityError::InsecurePermissions { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    AuthorityKey::load_or_create(dir.path(), Some(&passphrase), "a", false).unwrap();
}

#[test]
fn a_corrupt_key_file_is_an_error_not_a_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(KEY_FILE);
    fs::write(&path, "not a key").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let err = AuthorityKey::load_or_create(dir.path(), Some(&"pw".into()), "a", false).unwrap_err();
    assert!(matches!(err, AuthorityError::KeyFile { .. }), "{err}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "not a key");
}

#[test]
fn rotate_then_follow_to_the_new_key() {
    let old = key("testnet");
    let pin = old.pinned();
    let (new, rotation) = old.rotate(None, &user_id_for("testnet"), 30 * DAY).unwrap();
    assert_eq!(rotation.seq, 1);
    assert_eq!(rotation.old_fingerprint, old.fingerprint());
    assert_eq!(rotation.new_fingerprint, new.fingerprint());
    assert_ne!(new.fingerprint(), old.fingerprint());

    // Served as JSON.
    let json = serde_json::to_string(&[&rotation]).unwrap();
    let served: Vec<Rotation> = serde_json::from_str(&json).unwrap();
    assert_eq!(served[0], rotation);

    let now = SystemTime::now();
    let followed = pin.follow(&served[0], now).unwrap();
    assert_eq!(followed.fingerprint(), new.fingerprint());
    assert_eq!(followed.rotation_seq(), Some(1));
    let signature = new.sign_detached(SNAPSHOT).unwrap();
    followed.verify_detached(SNAPSHOT, &signature, now).unwrap();
    // The old pin does not accept the new key's signatures directly.
    let err = pin.verify_detached(SNAPSHOT, &signature, now).unwrap_err();
    assert!(
        matches!(err, AuthorityError::SignedByOtherKey { .. }),
        "{err}"
    );

    // A second rotation goes on from the first; a chain is followed whole.
    let (newest, second) = new.rotate(Some(&rotation), "testnet 3", 30 * DAY).unwrap();
    assert_eq!(second.seq, 2);
    let err = old.rotate(Some(&rotation), "x", DAY).unwrap_err();
    assert!(matches!(err, AuthorityError::InvalidArgument(_)), "{err}");
    let end = pin
        .follow_chain(&[second.clone(), rotation.clone()], now)
        .unwrap();
    assert_eq!(end.fingerprint(), newest.fingerprint());
    assert_eq!(end.rotation_seq(), Some(2));
    // Rotation 1 once more is skipped, not replayed.
    let same = end
        .follow_chain(&[rotation.clone(), second.clone()], now)
        .unwrap();
    assert_eq!(same.fingerprint(), newest.fingerprint());
    // A pin that knows its seq takes only the next one.
    let err = followed
        .clone()
        .with_rotation_seq(Some(5))
        .follow(&second, now)
        .unwrap_err();
    assert!(matches!(err, AuthorityError::Rotation { .. }), "{err}");
}

#[test]
fn a_forged_rotation_is_refused() {
    let old = key("testnet");
    let pin = old.pinned();
    let now = SystemTime::now();
    let (_, genuine) = old.rotate(None, "testnet", 30 * DAY).unwrap();

    // An attacker's own rotation, from their key to theirs.
    let attacker = key("attacker");
    let (_, attacker_rotation) = attacker.rotate(None, "testnet", 30 * DAY).unwrap();

    // The genuine statement with the old key's signature swapped for the new key's.
    let mut only_new = genuine.clone();
    only_new.signature_by_old = genuine.signature_by_new.clone();
    let err = pin.follow(&only_new, now).unwrap_err();
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

    // The genuine statement without the new key's own signature.
    let mut only_old = genuine.clone();
    only_old.signature_by_new = genuine.signature_by_old.clone();
    let err = pin.follow(&only_old, now).unwrap_err();
    assert!(
        matches!(err, AuthorityError::RotationSignature { signer: "new", .. }),
        "{err}"
    );

    // A rotation from another key does not apply to this pin.
    let err = pin.follow(&attacker_rotation, now).unwrap_err();
    assert!(matches!(err, AuthorityError::Rotation { .. }), "{err}");

    // Fields that disagree with the signed statement.
    let mut renumbered = genuine.clone();
    renumbered.seq = 2;
    let err = pin.follow(&renumbered, now).unwrap_err();
    assert!(matches!(err, AuthorityError::Rotation { .. }), "{err}");
    let mut swapped_cert = genuine.clone();
    swapped_cert.new_certificate = attacker.certificate_armored();
    let err = pin.follow(&swapped_cert, now).unwrap_err();
    assert!(matches!(err, AuthorityError::Rotation { .. }), "{err}");

    // The genuine one passes.
    pin.follow(&genuine, now).unwrap();
}

#[test]
fn an_expired_pin_still_follows_but_a_revoked_one_does_not() {
    let old = AuthorityKey::generate("short", DAY).unwrap();
    let (new, rotation) = old.rotate(None, "long", 30 * DAY).unwrap();
    let later = SystemTime::now() + 2 * DAY;
    // The old key expired since it signed the statement (TUF: intermediate
    // roots' expiry is not checked); the new one is alive.
    let followed = old.pinned().follow(&rotation, later).unwrap();
    assert_eq!(followed.fingerprint(), new.fingerprint());

    let revoked = old
        .pinned()
        .apply_revocation(&old.revocation_certificate("stolen").unwrap())
        .unwrap();
    let err = revoked.follow(&rotation, SystemTime::now()).unwrap_err();
    match &err {
        AuthorityError::RotationSignature { source, .. } => {
            assert!(
                matches!(**source, AuthorityError::Revoked { .. }),
                "{source}"
            );
        }
        _ => panic!("expected RotationSignature, got {err}"),
    }
}

#[test]
fn save_keeps_the_previous_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let passphrase = Passphrase::from("pw");
    let old = AuthorityKey::load_or_create(dir.path(), Some(&passphrase), "a", false).unwrap();
    let (new, _) = old.rotate(None, "a", 30 * DAY).unwrap();
    new.save(dir.path(), Some(&passphrase)).unwrap();

    let path = dir.path().join(KEY_FILE);
    let backup = dir
        .path()
        .join(format!("{KEY_FILE}.prev-{}", old.fingerprint()));
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&backup), 0o600);
    let reloaded = AuthorityKey::load_or_create(dir.path(), Some(&passphrase), "a", false).unwrap();
    assert_eq!(reloaded.fingerprint(), new.fingerprint());
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

/// GnuPG verifies what `sign_detached` makes, with the served certificate.
#[test]
fn gpg_verifies_the_detached_signature() {
    let gpg = Path::new("/usr/bin/gpg");
    if !gpg.exists() {
        eprintln!("NOTICE: /usr/bin/gpg is absent; skipping the GnuPG interop test");
        return;
    }
    let key = key("testnet");
    let home = tempfile::tempdir().unwrap();
    fs::set_permissions(home.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let cert = work.path().join("cert.asc");
    let data = work.path().join("snapshot.json");
    let sig = work.path().join("snapshot.json.asc");
    fs::write(&cert, key.certificate_armored()).unwrap();
    fs::write(&data, SNAPSHOT).unwrap();
    fs::write(&sig, key.sign_detached(SNAPSHOT).unwrap()).unwrap();

    let run = |args: &[&Path]| {
        let output = Command::new(gpg)
            .env("GNUPGHOME", home.path())
            .arg("--batch")
            .arg("--no-tty")
            .args(args.iter().map(|a| a.as_os_str()))
            .output()
            .expect("run gpg");
        (
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (status, stderr) = run(&[Path::new("--import"), &cert]);
    assert!(status.success(), "gpg --import: {stderr}");
    let (status, stderr) = run(&[Path::new("--verify"), &sig, &data]);
    assert!(status.success(), "gpg --verify: {stderr}");
    assert!(stderr.contains("Good signature"), "{stderr}");
    // gpg prints the primary fingerprint in groups of four.
    assert!(
        stderr.replace(' ', "").contains(&key.fingerprint()),
        "{stderr}"
    );

    let mut altered = SNAPSHOT.to_vec();
    altered[3] ^= 1;
    fs::write(&data, altered).unwrap();
    let (status, stderr) = run(&[Path::new("--verify"), &sig, &data]);
    assert!(!status.success(), "gpg accepted altered data: {stderr}");
    assert!(stderr.contains("BAD signature"), "{stderr}");
}
