//! Where karajo's files live under `dir_base` (spec 1.2): the per-job working and log
//! directories, the state file and the kept webhook request bodies, plus the `mkdir -p`
//! (mode 0700) done at start-up. Paths only; what goes into the files belongs to
//! [`super::run_log`] and [`super::state`].

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::job::{JobId, JobKind};

use super::{io_context, rename_no_replace};

/// The directory layout under one `dir_base`. The literal directory name is always
/// `karajo`, whatever the configured `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    dir_base: PathBuf,
}

impl Layout {
    /// The layout under `dir_base` (the `[karajo] dir_base` option, `/` by default).
    pub fn new(dir_base: impl Into<PathBuf>) -> Self {
        Self {
            dir_base: dir_base.into(),
        }
    }

    /// The base directory everything else derives from.
    pub fn dir_base(&self) -> &Path {
        &self.dir_base
    }

    /// `$dir_base/var/lib/karajo`.
    pub fn lib_dir(&self) -> PathBuf {
        self.dir_base.join("var/lib/karajo")
    }

    /// `$dir_base/var/log/karajo`.
    pub fn log_root(&self) -> PathBuf {
        self.dir_base.join("var/log/karajo")
    }

    /// `$dir_base/var/run/karajo`.
    pub fn run_dir(&self) -> PathBuf {
        self.dir_base.join("var/run/karajo")
    }

    /// `$dir_base/var/run/karajo/groups`: one record per running command's process
    /// group, so a restart after kill -9 can stop what was left running.
    pub fn group_dir(&self) -> PathBuf {
        self.run_dir().join("groups")
    }

    /// `$dir_base/var/lib/karajo/<kind>/<id>`: the job's working directory (the cwd of
    /// its commands, kept across runs). `id` must be a normalised id (no `/` or `.`).
    pub fn work_dir(&self, kind: JobKind, id: &JobId) -> PathBuf {
        self.lib_dir().join(kind.as_str()).join(id.as_str())
    }

    /// `$dir_base/var/log/karajo/<kind>/<id>`: the job's run log files.
    /// `id` must be a normalised id (no `/` or `.`).
    pub fn log_dir(&self, kind: JobKind, id: &JobId) -> PathBuf {
        self.log_root().join(kind.as_str()).join(id.as_str())
    }

    /// `$dir_base/var/lib/karajo/state.json`.
    pub fn state_file(&self) -> PathBuf {
        self.lib_dir().join("state.json")
    }

    /// `$dir_base/var/lib/karajo/request`: where webhook request bodies are kept for
    /// the commands of the run they triggered.
    pub fn request_dir(&self) -> PathBuf {
        self.lib_dir().join("request")
    }

    /// Creates the shared directories (mode 0700, like the original's `mkdir -p`):
    /// `var/lib/karajo/{job,job_http,request}`, `var/log/karajo/{job,job_http}` and
    /// `var/run/karajo/job_http`. `etc/karajo` is not created.
    pub fn ensure_dirs(&self) -> io::Result<()> {
        let lib = self.lib_dir();
        let log = self.log_root();
        for dir in [
            lib.join(JobKind::Exec.as_str()),
            lib.join(JobKind::Http.as_str()),
            self.request_dir(),
            log.join(JobKind::Exec.as_str()),
            log.join(JobKind::Http.as_str()),
            self.run_dir().join(JobKind::Http.as_str()),
        ] {
            mkdir_all(&dir)?;
        }
        Ok(())
    }

    /// Creates one job's working and log directories (mode 0700).
    ///
    /// For an HTTP job, a regular *file* at the log directory's path is the single-file
    /// log of karajo before 0.8. The original deletes it; here it is renamed to
    /// `<id>.pre-0.8.log` beside it (never losing data) before the directory is made.
    pub fn ensure_job_dirs(&self, kind: JobKind, id: &JobId) -> io::Result<()> {
        if !super::is_plain_id(id.as_str()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("job id {id:?} cannot name a directory"),
            ));
        }
        mkdir_all(&self.work_dir(kind, id))?;
        let log_dir = self.log_dir(kind, id);
        if kind == JobKind::Http
            && let Ok(meta) = log_dir.symlink_metadata()
            && meta.is_file()
        {
            let aside = log_dir.with_file_name(format!("{id}.pre-0.8.log"));
            rename_no_replace(&log_dir, &aside)?;
        }
        mkdir_all(&log_dir)
    }
}

/// `mkdir -p` with mode 0700 for every directory it creates.
fn mkdir_all(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_context(e, "create directory", dir))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn paths_follow_the_original() {
        let l = Layout::new("/base");
        let id = JobId::from_raw("my_job");
        assert_eq!(
            l.work_dir(JobKind::Exec, &id),
            Path::new("/base/var/lib/karajo/job/my_job")
        );
        assert_eq!(
            l.work_dir(JobKind::Http, &id),
            Path::new("/base/var/lib/karajo/job_http/my_job")
        );
        assert_eq!(
            l.log_dir(JobKind::Exec, &id),
            Path::new("/base/var/log/karajo/job/my_job")
        );
        assert_eq!(
            l.log_dir(JobKind::Http, &id),
            Path::new("/base/var/log/karajo/job_http/my_job")
        );
        assert_eq!(l.state_file(), Path::new("/base/var/lib/karajo/state.json"));
        assert_eq!(l.request_dir(), Path::new("/base/var/lib/karajo/request"));
        assert_eq!(
            Layout::new("/").state_file(),
            Path::new("/var/lib/karajo/state.json")
        );
    }

    #[test]
    fn ensure_dirs_creates_private_directories() {
        let base = tempfile::tempdir().unwrap();
        let l = Layout::new(base.path());
        l.ensure_dirs().unwrap();
        l.ensure_dirs().unwrap(); // idempotent
        let id = JobId::from_raw("j");
        l.ensure_job_dirs(JobKind::Exec, &id).unwrap();
        for dir in [
            base.path().join("var/lib/karajo/job"),
            base.path().join("var/lib/karajo/job_http"),
            base.path().join("var/lib/karajo/request"),
            base.path().join("var/log/karajo/job"),
            base.path().join("var/log/karajo/job_http"),
            base.path().join("var/run/karajo/job_http"),
            l.work_dir(JobKind::Exec, &id),
            l.log_dir(JobKind::Exec, &id),
        ] {
            let meta = std::fs::metadata(&dir).unwrap();
            assert!(meta.is_dir(), "{}", dir.display());
            assert_eq!(
                meta.permissions().mode() & 0o777,
                0o700,
                "{}",
                dir.display()
            );
        }
        assert!(!base.path().join("etc").exists());
    }

    #[test]
    fn old_single_file_http_log_is_moved_aside() {
        let base = tempfile::tempdir().unwrap();
        let l = Layout::new(base.path());
        l.ensure_dirs().unwrap();
        let id = JobId::from_raw("ping");
        let old = l.log_dir(JobKind::Http, &id);
        std::fs::write(&old, "old log").unwrap();
        l.ensure_job_dirs(JobKind::Http, &id).unwrap();
        assert!(old.is_dir());
        let aside = base.path().join("var/log/karajo/job_http/ping.pre-0.8.log");
        assert_eq!(std::fs::read(aside).unwrap(), b"old log");
    }

    #[test]
    fn unsafe_ids_are_refused() {
        let base = tempfile::tempdir().unwrap();
        let l = Layout::new(base.path());
        let err = l
            .ensure_job_dirs(JobKind::Exec, &JobId::from_raw("../x"))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
