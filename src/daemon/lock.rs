//! The exclusive lock a running daemon holds on its `dir_base`: an `flock` (LOCK_EX |
//! LOCK_NB) on `var/run/karajo/karajo.lock`, a 0600 file holding the holder's pid. It
//! is taken before anything reads or changes the state (the process groups a killed
//! karajo left, the run logs, the state file), so a second karajo on the same
//! `dir_base` refuses to start and touches nothing. The kernel releases the lock when
//! the holder exits, even on kill -9; the file itself is left in place. The lock's
//! descriptor is close-on-exec, so jobs' commands never hold it.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use crate::store::{FILE_MODE, Layout, create_private_dir};

/// Why the lock on `dir_base` could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "another karajo ({}) is running on {}: {} is locked",
        show_pid(*.pid),
        .dir_base.display(),
        .lock_file.display()
    )]
    Held {
        /// The holder's pid, as written in the lock file (unknown if it has not
        /// written it yet or the file does not hold a number).
        pid: Option<u32>,
        /// The `dir_base` in use.
        dir_base: PathBuf,
        /// The lock file.
        lock_file: PathBuf,
    },
    /// The lock file could not be created, locked or written.
    #[error("cannot lock {}: {source}", .lock_file.display())]
    Io {
        /// The lock file.
        lock_file: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

fn show_pid(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_string(),
    }
}

/// The lock on one `dir_base`, held until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// Takes the lock on `layout`'s `dir_base`, creating `var/run/karajo` (0700) and the
/// lock file (0600) if needed, then writes this process's pid into it. Fails without
/// waiting when another process holds it.
pub(crate) fn acquire(layout: &Layout) -> Result<DirLock, LockError> {
    let lock_file = layout.lock_file();
    let io = |source: io::Error| LockError::Io {
        lock_file: lock_file.clone(),
        source,
    };
    create_private_dir(&layout.run_dir()).map_err(io)?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(&lock_file)
        .map_err(io)?;
    // `karajo check` probes with a shared lock held for an instant: while only such
    // probes hold it (a shared lock can still be had), try again shortly.
    let mut probes_waited = 0;
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => break,
            Err(rustix::io::Errno::WOULDBLOCK)
                if probes_waited < PROBE_RETRIES && only_probes_hold(&lock_file) =>
            {
                probes_waited += 1;
                std::thread::sleep(PROBE_WAIT);
            }
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(LockError::Held {
                    pid: read_pid(&mut file),
                    dir_base: layout.dir_base().to_path_buf(),
                    lock_file,
                });
            }
            Err(e) => return Err(io(e.into())),
        }
    }
    if file.metadata().map_err(io)?.mode() & 0o777 != FILE_MODE {
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(io)?;
    }
    file.set_len(0).map_err(io)?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())
        .map_err(io)?;
    Ok(DirLock { _file: file })
}

/// The pid of the daemon running on `layout`'s `dir_base`, or `None` when none holds
/// the lock (or the lock file does not exist). Creates nothing; the probe holds a
/// shared lock for an instant only. `Some(None)` means locked by an unknown pid.
pub(crate) fn holder(layout: &Layout) -> io::Result<Option<Option<u32>>> {
    holder_of(&layout.lock_file())
}

fn holder_of(lock_file: &Path) -> io::Result<Option<Option<u32>>> {
    let mut file = match File::open(lock_file) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match flock(&file, FlockOperation::NonBlockingLockShared) {
        // Dropping the file releases the probe's lock.
        Ok(()) => Ok(None),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(Some(read_pid(&mut file))),
        Err(e) => Err(e.into()),
    }
}

/// How often, and how long apart, a start waits for `karajo check`'s probes to go.
const PROBE_RETRIES: u32 = 50;
const PROBE_WAIT: std::time::Duration = std::time::Duration::from_millis(10);

/// Whether the lock is held only shared (by probes), not exclusively by a daemon.
fn only_probes_hold(lock_file: &Path) -> bool {
    File::open(lock_file)
        .is_ok_and(|probe| flock(&probe, FlockOperation::NonBlockingLockShared).is_ok())
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_until_the_first_is_dropped() {
        let base = tempfile::tempdir().unwrap();
        let layout = Layout::new(base.path());
        assert!(holder(&layout).unwrap().is_none());
        let first = acquire(&layout).unwrap();
        let path = layout.lock_file();
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let me = std::process::id();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{me}\n"));
        // flock locks belong to the open file description, so a second open in the
        // same process conflicts as another process would.
        let err = acquire(&layout).unwrap_err();
        assert!(matches!(err, LockError::Held { pid: Some(p), .. } if p == me));
        let text = err.to_string();
        assert_eq!(
            text,
            format!(
                "another karajo (pid {me}) is running on {}: {} is locked",
                base.path().display(),
                path.display()
            )
        );
        assert_eq!(holder(&layout).unwrap(), Some(Some(me)));
        drop(first);
        assert_eq!(holder(&layout).unwrap(), None);
        let _again = acquire(&layout).unwrap();
    }

    #[test]
    fn a_stale_pid_is_replaced() {
        let base = tempfile::tempdir().unwrap();
        let layout = Layout::new(base.path());
        create_private_dir(&layout.run_dir()).unwrap();
        std::fs::write(layout.lock_file(), "999999999 and some junk\n").unwrap();
        let _lock = acquire(&layout).unwrap();
        assert_eq!(
            std::fs::read_to_string(layout.lock_file()).unwrap(),
            format!("{}\n", std::process::id())
        );
    }
}
