//! Moving a verified file into the download directory without ever
//! replacing one that is there.
//!
//! Checking that a name is free and then renaming is a race: two transfers
//! finishing with one name both see it free, and the second rename replaces
//! the first file. Here each candidate name is *taken* by an operation that
//! fails if the name exists: a hard link of the file (then the old name is
//! removed), or, on filesystems without hard links, `renameat2` with
//! `RENAME_NOREPLACE` (Linux with glibc). On `AlreadyExists` the next
//! candidate is tried: `name`, `stem (1).ext`, `stem (2).ext`...

use std::io;
use std::path::{Path, PathBuf};

/// Numbered candidates tried before random ones.
const NUMBERED_CANDIDATES: u32 = 10_000;
/// Random candidates tried after the numbered ones.
const RANDOM_CANDIDATES: u32 = 16;

/// Moves `source` into `dir` under `name` or the first free numbered
/// variant of it, and returns where it went. Never replaces a file.
pub(crate) async fn move_without_replacing(
    source: &Path,
    dir: &Path,
    name: &str,
) -> io::Result<PathBuf> {
    let (source, dir, name) = (source.to_owned(), dir.to_owned(), name.to_owned());
    tokio::task::spawn_blocking(move || place(&source, &dir, &name, take_name))
        .await
        .map_err(io::Error::other)?
}

/// How a candidate name was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    /// Linked to the file; its old name is still there.
    Linked,
    /// The file was renamed to it.
    Renamed,
}

fn take_name(source: &Path, target: &Path) -> io::Result<Take> {
    take_name_with(|s, t| std::fs::hard_link(s, t), source, target)
}

fn take_name_with(
    link: impl Fn(&Path, &Path) -> io::Result<()>,
    source: &Path,
    target: &Path,
) -> io::Result<Take> {
    match link(source, target) {
        Ok(()) => Ok(Take::Linked),
        Err(err) if no_hard_links(&err) => {
            rename_no_replace(source, target).map(|()| Take::Renamed)
        }
        Err(err) => Err(err),
    }
}

fn place(
    source: &Path,
    dir: &Path,
    name: &str,
    take: impl Fn(&Path, &Path) -> io::Result<Take>,
) -> io::Result<PathBuf> {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    let numbered = (1..NUMBERED_CANDIDATES).map(|n| format!("{stem} ({n}){ext}"));
    let random =
        (0..RANDOM_CANDIDATES).map(|_| format!("{stem} ({:08x}){ext}", rand::random::<u32>()));
    for candidate in std::iter::once(name.to_owned())
        .chain(numbered)
        .chain(random)
    {
        let target = dir.join(candidate);
        match take(source, &target) {
            Ok(Take::Linked) => {
                // The file is in place: a leftover partial name costs at
                // most a duplicate if the same content is offered again.
                if let Err(err) = std::fs::remove_file(source) {
                    tracing::warn!(%err, part = %source.display(), "cannot remove the partial name");
                }
                return Ok(target);
            }
            Ok(Take::Renamed) => return Ok(target),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("no free name for {name:?}"),
    ))
}

/// Whether a failed `link` means the filesystem has no hard links (FAT and
/// exFAT answer EPERM, some FUSE filesystems EOPNOTSUPP or ENOSYS).
fn no_hard_links(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::Unsupported
    )
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn rename_no_replace(source: &Path, target: &Path) -> io::Result<()> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    renameat2(
        AT_FDCWD,
        source,
        AT_FDCWD,
        target,
        RenameFlags::RENAME_NOREPLACE,
    )
    .map_err(io::Error::from)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn rename_no_replace(_source: &Path, _target: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "the download directory's filesystem has no hard links",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, data).unwrap();
        path
    }

    #[tokio::test]
    async fn takes_the_first_free_name_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let parts = tempfile::tempdir_in(dir.path()).unwrap();
        file(dir.path(), "a.txt", b"mine");
        file(dir.path(), "a (1).txt", b"mine too");
        let source = file(parts.path(), "x.part", b"new");
        let placed = move_without_replacing(&source, dir.path(), "a.txt")
            .await
            .unwrap();
        assert_eq!(placed, dir.path().join("a (2).txt"));
        assert_eq!(std::fs::read(&placed).unwrap(), b"new");
        assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"mine");
        assert!(!source.exists(), "the partial name is gone");

        file(dir.path(), "noext", b"x");
        let source = file(parts.path(), "y.part", b"y");
        let placed = move_without_replacing(&source, dir.path(), "noext")
            .await
            .unwrap();
        assert_eq!(placed, dir.path().join("noext (1)"));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn without_hard_links_a_no_replace_rename_takes_the_name() {
        let dir = tempfile::tempdir().unwrap();
        file(dir.path(), "b.bin", b"mine");
        let source = file(dir.path(), "z.part", b"new");
        // What FAT and exFAT answer to link(2).
        let no_links = |source: &Path, target: &Path| {
            let refuse = |_: &Path, _: &Path| Err(io::Error::from(io::ErrorKind::PermissionDenied));
            take_name_with(refuse, source, target)
        };
        let placed = place(&source, dir.path(), "b.bin", no_links).unwrap();
        assert_eq!(placed, dir.path().join("b (1).bin"));
        assert_eq!(std::fs::read(&placed).unwrap(), b"new");
        assert_eq!(std::fs::read(dir.path().join("b.bin")).unwrap(), b"mine");
        assert!(!source.exists());
    }
}
