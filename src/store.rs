//! Files under `dir_base/var`: where things live ([`layout`]), the run log files
//! `<id>.<counter>.<status>` with their start-up scan, recovery, retention and streaming
//! writer ([`run_log`]), and the state file ([`state`]). This room owns paths and file
//! formats only: it makes no scheduling or queueing decisions, and it is synchronous
//! (plain `std::fs`), so async callers run it on blocking threads. Nothing outside the
//! store writes into these directories by path.

pub mod layout;
pub mod run_log;
pub mod state;

use std::fs::File;
use std::io;
use std::path::Path;

pub use layout::Layout;
pub use run_log::{LogEntry, LogScan, RunLogWriter};
pub use state::{JobState, StateError, StateFile, StateWarning};

/// Adds what was being done and to which path to an IO error, keeping its kind so
/// callers can still match on `NotFound`, `AlreadyExists` and so on.
pub(crate) fn io_context(err: io::Error, action: &str, path: &Path) -> io::Error {
    io::Error::new(err.kind(), format!("{action} {}: {err}", path.display()))
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
    fn plain_ids() {
        assert!(is_plain_id("test_job-1"));
        for bad in ["", ".", "..", "a/b", "a.b", "a\0b"] {
            assert!(!is_plain_id(bad), "{bad:?}");
        }
    }
}
