//! Files under `dir_base/var`: where things live ([`layout`]), the run log files
//! `<id>.<counter>.<status>` with their start-up scan, recovery, retention and streaming
//! writer ([`run_log`]), the text inside them ([`framing`]), and the state file
//! ([`state`]), a heartbeat monitor's check-in logs and state ([`monitor_files`]) and
//! the event log ([`event_log`]). This room owns paths and file formats only: it makes no scheduling or queueing decisions, and it is synchronous
//! (plain `std::fs`), so async callers run it on blocking threads. Nothing outside the
//! store writes into these directories by path.
//!
//! File modes: every directory karajo creates under `dir_base/var` is 0700 and every
//! file 0600 ([`create_private_dir`], [`write_private`]; run logs and the state file
//! are opened with 0600 themselves), whatever the umask. Run logs, web hook bodies and
//! notifications hold what jobs print and receive, so nobody else may read them.

pub mod event_log;
pub mod facts_cache;
pub mod framing;
pub mod json_file;
pub mod layout;
pub mod monitor_files;
pub mod run_log;
pub mod state;

use std::fs::File;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub use event_log::{EventLimits, EventLog, EventQuery, EventRecord, NewEvent};
pub use facts_cache::FactsCache;
pub use layout::Layout;
pub use run_log::{LogEntry, LogScan, RunFacts, RunLogWriter};
pub use state::{JobState, RetryState, StateError, StateFile, StateWarning};

/// Adds what was being done and to which path to an IO error, keeping its kind so
/// callers can still match on `NotFound`, `AlreadyExists` and so on.
pub(crate) fn io_context(err: io::Error, action: &str, path: &Path) -> io::Error {
    io::Error::new(err.kind(), format!("{action} {}: {err}", path.display()))
}

/// The mode of every directory karajo creates under `dir_base/var`.
pub const DIR_MODE: u32 = 0o700;
/// The mode of every file karajo creates under `dir_base/var`.
pub const FILE_MODE: u32 = 0o600;

/// `mkdir -p` with mode 0700 for every directory it creates (the umask can only
/// remove bits from 0700). Existing directories are left as they are.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|e| io_context(e, "create directory", dir))
}

/// Sets an existing directory that this process's user owns to 0700 when others may
/// use it (a looser mode left by an earlier version of karajo); returns whether it
/// changed it. A missing path, a symbolic link, a file and a directory owned by
/// someone else are left alone.
pub fn tighten_dir(dir: &Path) -> io::Result<bool> {
    let meta = match dir.symlink_metadata() {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_context(e, "inspect directory", dir)),
    };
    if !meta.is_dir()
        || meta.uid() != rustix::process::geteuid().as_raw()
        || meta.mode() & 0o077 == 0
    {
        return Ok(false);
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
        .map_err(|e| io_context(e, "restrict the mode of directory", dir))?;
    Ok(true)
}

/// Writes `bytes` to `path` (created with mode 0600, or truncated and set to 0600).
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let context = |e| io_context(e, "write", path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(context)?;
    if file.metadata().map_err(context)?.mode() & 0o777 != FILE_MODE {
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(context)?;
    }
    file.write_all(bytes).map_err(context)
}

/// Makes a directory's entries (a create, rename or unlink in it) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_context(e, "sync directory", dir))
}

/// Renames `from` to `to`, failing with `AlreadyExists` instead of replacing an
/// existing `to`: a log or evidence file is never clobbered.
pub(crate) fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            // The file system (or the kernel) does not support RENAME_NOREPLACE:
            // fall back to the check-then-rename below.
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {}
            Err(e) => {
                let e = io::Error::from(e);
                return Err(io::Error::new(
                    e.kind(),
                    format!("rename {} to {}: {e}", from.display(), to.display()),
                ));
            }
        }
    }
    if to.symlink_metadata().is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "rename {} to {}: target exists",
                from.display(),
                to.display()
            ),
        ));
    }
    std::fs::rename(from, to).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("rename {} to {}: {e}", from.display(), to.display()),
        )
    })
}

/// Whether `id` is safe to use as one path component and one dot-separated field of a
/// log file name: not empty, no `/`, `.` or NUL. Ids made by `JobId::from_name` always
/// are; ids read back from a URL may not be.
pub(crate) fn is_plain_id(id: &str) -> bool {
    !id.is_empty() && !id.bytes().any(|b| matches!(b, b'/' | b'.' | 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_no_replace_refuses_to_clobber() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, "a").unwrap();
        std::fs::write(&b, "b").unwrap();
        let err = rename_no_replace(&a, &b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&b).unwrap(), b"b");
        std::fs::remove_file(&b).unwrap();
        rename_no_replace(&a, &b).unwrap();
        assert_eq!(std::fs::read(&b).unwrap(), b"a");
        assert!(!a.exists());
    }

    #[test]
    fn private_files_and_directories_ignore_the_umask_and_old_modes() {
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let deep = dir.path().join("a/b/c");
        create_private_dir(&deep).unwrap();
        for p in [dir.path().join("a"), dir.path().join("a/b"), deep.clone()] {
            assert_eq!(mode(&p), 0o700, "{}", p.display());
        }
        let file = deep.join("f");
        write_private(&file, b"one").unwrap();
        assert_eq!(mode(&file), 0o600);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&file, b"two").unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read(&file).unwrap(), b"two");

        let old = dir.path().join("old");
        std::fs::create_dir(&old).unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(tighten_dir(&old).unwrap());
        assert_eq!(mode(&old), 0o700);
        assert!(!tighten_dir(&old).unwrap());
        assert!(!tighten_dir(&dir.path().join("missing")).unwrap());
        assert!(!tighten_dir(&file).unwrap());
        let link = dir.path().join("link");
        let target = dir.path().join("target");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(!tighten_dir(&link).unwrap());
        assert_eq!(mode(&target), 0o755);
    }

    #[test]
    fn plain_ids() {
        assert!(is_plain_id("test_job-1"));
        for bad in ["", ".", "..", "a/b", "a.b", "a\0b"] {
            assert!(!is_plain_id(bad), "{bad:?}");
        }
    }
}
