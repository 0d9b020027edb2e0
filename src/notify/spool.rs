//! The spool: `var/lib/karajo/notify/`, one JSON file per notification not yet
//! delivered, so that none is lost to a restart or a crash. A file is written (to a
//! temporary name, synced, then renamed) before the run is reported done, deleted
//! once delivered, and moved to `failed/` when delivery is given up. Files that
//! cannot be read are renamed `*.bad` and reported. Directories are made 0700 and
//! files 0600. Synchronous; callers run it on the blocking pool.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;

use super::message::Pending;
use crate::store::{create_private_dir, sync_dir};

/// Where given-up notifications go, below the spool.
const FAILED_DIR: &str = "failed";
/// Temporary files older than this were left by a crash.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// A spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

/// What loading the spool found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Readable notifications, oldest first, with their file names.
    pub pending: Vec<(String, Pending)>,
    /// Files that could not be read, and why (already renamed `*.bad`).
    pub bad: Vec<(PathBuf, String)>,
}

impl Spool {
    /// The spool in `dir` (created when the first file is written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `pending` durably under a new unique name, which it returns.
    pub fn write(&self, pending: &Pending, now: Timestamp) -> io::Result<String> {
        create_private_dir(&self.dir)?;
        let name = format!(
            "{:013}-{:08x}.json",
            now.as_millisecond().max(0),
            rand::random::<u32>()
        );
        let json = serde_json::to_vec_pretty(pending).map_err(io::Error::other)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .suffix(".json")
            .tempfile_in(&self.dir)?;
        tmp.write_all(&json)?;
        tmp.as_file().sync_data()?;
        tmp.persist(self.dir.join(&name)).map_err(|e| e.error)?;
        sync_dir(&self.dir)?;
        Ok(name)
    }

    /// Deletes a delivered notification; a missing file is fine.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        match std::fs::remove_file(self.dir.join(name)) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    /// Moves a notification that will not be retried to `failed/`, and returns
    /// where it went.
    pub fn bury(&self, name: &str) -> io::Result<PathBuf> {
        let failed = self.dir.join(FAILED_DIR);
        create_private_dir(&failed)?;
        let to = failed.join(name);
        std::fs::rename(self.dir.join(name), &to)?;
        Ok(to)
    }

    /// Reads every spooled notification (a missing directory is an empty spool).
    /// Unreadable files are renamed `<name>.bad` and listed in [`Loaded::bad`];
    /// temporary files left by a crash (older than an hour) are deleted.
    pub fn load(&self) -> io::Result<Loaded> {
        let mut loaded = Loaded::default();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(loaded),
            Err(err) => return Err(err),
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let path = self.dir.join(&name);
            if name.starts_with(".tmp-") {
                // Being written now, or left by a crash: deleted once clearly stale.
                if is_older_than(&path, STALE_TMP) {
                    let _ = std::fs::remove_file(&path);
                }
                continue;
            }
            if !name.ends_with(".json") {
                continue;
            }
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    serde_json::from_slice::<Pending>(&bytes).map_err(|e| e.to_string())
                });
            match parsed {
                Ok(pending) => loaded.pending.push((name, pending)),
                Err(why) => {
                    let bad = self.dir.join(format!("{name}.bad"));
                    let _ = std::fs::rename(&path, &bad);
                    loaded.bad.push((bad, why));
                }
            }
        }
        Ok(loaded)
    }
}

fn is_older_than(path: &Path, age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|elapsed| elapsed > age)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::{Event, RunInfo, pending};

    fn sample() -> Pending {
        let run = RunInfo {
            job_kind: "job".into(),
            job_id: "j".into(),
            job_name: "J".into(),
            counter: 1,
            status: "failed".into(),
            trigger: "timer".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            ended_at: "2026-01-01T00:00:01Z".into(),
            duration_ms: 1000,
            log_url: "http://k/karajo/job_exec/log?id=j&counter=1".into(),
            log_size: 2,
            log_tail: "x\n".into(),
            log_truncated: false,
        };
        pending("n", Event::Failed, run, Timestamp::now())
    }

    #[test]
    fn written_notifications_load_back_until_removed_or_buried() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("notify"));
        assert!(spool.load().unwrap().pending.is_empty());
        let p = sample();
        let a = spool.write(&p, Timestamp::now()).unwrap();
        let b = spool.write(&p, Timestamp::now()).unwrap();
        assert_ne!(a, b);
        std::fs::write(spool.dir().join("zz.json"), "{not json").unwrap();
        std::fs::write(spool.dir().join(".tmp-x.json"), "half").unwrap();
        let loaded = spool.load().unwrap();
        assert_eq!(loaded.pending.len(), 2);
        assert_eq!(loaded.pending[0].1, p);
        assert_eq!(loaded.bad.len(), 1);
        assert!(spool.dir().join("zz.json.bad").exists());
        assert!(
            spool.dir().join(".tmp-x.json").exists(),
            "maybe being written"
        );
        spool.remove(&a).unwrap();
        spool.remove(&a).unwrap();
        let buried = spool.bury(&b).unwrap();
        assert!(buried.exists());
        assert!(spool.load().unwrap().pending.is_empty());
    }

    #[test]
    fn spool_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("lib/notify"));
        let name = spool.write(&sample(), Timestamp::now()).unwrap();
        assert_eq!(mode(spool.dir()), 0o700);
        assert_eq!(mode(&dir.path().join("lib")), 0o700);
        assert_eq!(mode(&spool.dir().join(&name)), 0o600);
        let buried = spool.bury(&name).unwrap();
        assert_eq!(mode(buried.parent().unwrap()), 0o700);
        assert_eq!(mode(&buried), 0o600);
    }
}
