//! Where karajo's files live under `dir_base` (spec 1.2): the per-job working and log
//! directories, the state file and the kept webhook request bodies, plus the `mkdir -p`
//! (mode 0700) done at start-up, which also tightens karajo's own directories left with
//! a looser mode by an earlier version. Paths only; what goes into the files belongs to
//! [`super::run_log`] and [`super::state`].

use std::io;
use std::path::{Path, PathBuf};

use crate::job::{JobId, JobKind};

use super::{create_private_dir, rename_no_replace, tighten_dir};

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

    /// `$dir_base/var/run/karajo/karajo.lock`: the lock a running daemon holds on this
    /// `dir_base` (with its pid inside), so that a second one refuses to start.
    pub fn lock_file(&self) -> PathBuf {
        self.run_dir().join("karajo.lock")
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

    /// `$dir_base/var/lib/karajo/state/log-facts`: the log facts cache (see
    /// [`facts_cache`](super::facts_cache)).
    pub fn log_facts_file(&self) -> PathBuf {
        self.lib_dir().join("state/log-facts")
    }

    /// `$dir_base/var/lib/karajo/state.json`.
    pub fn state_file(&self) -> PathBuf {
        self.lib_dir().join("state.json")
    }

    /// `$dir_base/var/lib/karajo/state/monitor/<id>.json`: a monitor's state.
    pub fn monitor_state_file(&self, id: &JobId) -> PathBuf {
        self.monitor_state_dir().join(format!("{id}.json"))
    }

    /// `$dir_base/var/lib/karajo/state/monitor`.
    pub fn monitor_state_dir(&self) -> PathBuf {
        self.lib_dir().join("state/monitor")
    }

    /// `$dir_base/var/lib/karajo/state/service/<id>.json`: a service's state (enabled,
    /// run once, cas, current instance).
    pub fn service_state_file(&self, id: &JobId) -> PathBuf {
        self.lib_dir()
            .join("state/service")
            .join(format!("{id}.json"))
    }

    /// `$dir_base/var/lib/karajo/state/service/<id>.history.jsonl`: a service's
    /// instance history.
    pub fn service_history_file(&self, id: &JobId) -> PathBuf {
        self.lib_dir()
            .join("state/service")
            .join(format!("{id}.history.jsonl"))
    }

    /// `$dir_base/var/run/karajo/service/<id>.notify`: a service's notify socket.
    pub fn service_notify_socket(&self, id: &JobId) -> PathBuf {
        self.run_dir().join("service").join(format!("{id}.notify"))
    }

    /// `$dir_base/var/lib/karajo/state/watchtower.json`: the monitors watchTower
    /// pulses created.
    pub fn watchtower_file(&self) -> PathBuf {
        self.lib_dir().join("state/watchtower.json")
    }

    /// `$dir_base/var/lib/karajo/state/alive`: the daemon's liveness mark.
    pub fn alive_file(&self) -> PathBuf {
        self.lib_dir().join("state/alive")
    }

    /// `$dir_base/var/log/karajo/event`: the event log's day files.
    pub fn event_dir(&self) -> PathBuf {
        self.log_root().join("event")
    }

    /// `$dir_base/var/lib/karajo/request`: where webhook request bodies are kept for
    /// the commands of the run they triggered.
    pub fn request_dir(&self) -> PathBuf {
        self.lib_dir().join("request")
    }

    /// `$dir_base/var/lib/karajo/request/<id>.<counter>.body`: the raw body of the web
    /// hook request that triggered run `counter` of command job `id`, kept for its
    /// commands while the run goes.
    pub fn request_body_file(&self, id: &JobId, counter: u64) -> PathBuf {
        self.request_dir().join(format!("{id}.{counter}.body"))
    }

    /// `$dir_base/var/lib/karajo/notify`: the notification spool.
    pub fn notify_dir(&self) -> PathBuf {
        self.lib_dir().join("notify")
    }

    /// Creates the shared directories (mode 0700, like the original's `mkdir -p`):
    /// `var/lib/karajo/{job,job_http,request,notify}`, `var/log/karajo/{job,job_http}`
    /// and `var/run/karajo/{job_http,groups}`. `etc/karajo` is not created.
    ///
    /// Those directories, `var/{lib,log,run}/karajo` themselves and the spool's
    /// `failed/` are then set to 0700 if an earlier version left them open to others
    /// and this user owns them ([`super::tighten_dir`]). The directories above them
    /// (`/var/lib` when `dir_base` is `/`) and what jobs create in their working
    /// directories are never touched.
    pub fn ensure_dirs(&self) -> io::Result<()> {
        let lib = self.lib_dir();
        let log = self.log_root();
        let shared = [
            lib.join(JobKind::Exec.as_str()),
            lib.join(JobKind::Http.as_str()),
            self.request_dir(),
            self.notify_dir(),
            log.join(JobKind::Exec.as_str()),
            log.join(JobKind::Http.as_str()),
            self.run_dir().join(JobKind::Http.as_str()),
            self.group_dir(),
        ];
        for dir in &shared {
            create_private_dir(dir)?;
        }
        let roots = [
            lib.clone(),
            log,
            self.run_dir(),
            self.notify_dir().join("failed"),
        ];
        for dir in roots.iter().chain(&shared) {
            tighten(dir);
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
        let work_dir = self.work_dir(kind, id);
        create_private_dir(&work_dir)?;
        tighten(&work_dir);
        let log_dir = self.log_dir(kind, id);
        if kind.had_log_file()
            && let Ok(meta) = log_dir.symlink_metadata()
            && meta.is_file()
        {
            let aside = log_dir.with_file_name(format!("{id}.pre-0.8.log"));
            rename_no_replace(&log_dir, &aside)?;
        }
        create_private_dir(&log_dir)?;
        tighten(&log_dir);
        Ok(())
    }
}

/// [`tighten_dir`], reporting what it changed or could not change.
fn tighten(dir: &Path) {
    match tighten_dir(dir) {
        Ok(true) => tracing::info!(dir = %dir.display(), "directory mode set to 0700"),
        Ok(false) => {}
        Err(err) => tracing::warn!(%err, "cannot restrict a directory to its owner"),
    }
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
            l.request_body_file(&id, 7),
            Path::new("/base/var/lib/karajo/request/my_job.7.body")
        );
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
            base.path().join("var/run/karajo/groups"),
            base.path().join("var/lib/karajo/notify"),
            base.path().join("var"),
            base.path().join("var/lib"),
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
    fn directories_left_open_by_an_earlier_version_are_tightened() {
        let base = tempfile::tempdir().unwrap();
        let l = Layout::new(base.path());
        let id = JobId::from_raw("j");
        let old = [
            base.path().join("var/lib/karajo/job/j"),
            base.path().join("var/lib/karajo/notify/failed"),
            base.path().join("var/log/karajo/job/j"),
            base.path().join("var/run/karajo/groups"),
            base.path().join("var/run/karajo/job_http"),
        ];
        for dir in &old {
            std::fs::create_dir_all(dir).unwrap();
        }
        let all_open = [
            base.path().join("var"),
            base.path().join("var/lib"),
            base.path().join("var/lib/karajo"),
            base.path().join("var/lib/karajo/job"),
            base.path().join("var/lib/karajo/notify"),
            base.path().join("var/log/karajo"),
            base.path().join("var/log/karajo/job"),
            base.path().join("var/run/karajo"),
        ];
        let work_file = base.path().join("var/lib/karajo/job/j/checkout");
        std::fs::create_dir(&work_file).unwrap();
        for dir in old.iter().chain(&all_open).chain([&work_file]) {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        l.ensure_dirs().unwrap();
        l.ensure_job_dirs(JobKind::Exec, &id).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for dir in old.iter().chain(&all_open[2..]) {
            assert_eq!(mode(dir), 0o700, "{}", dir.display());
        }
        // Above karajo's own directories, and inside a job's working directory,
        // nothing changes.
        assert_eq!(mode(&base.path().join("var")), 0o755);
        assert_eq!(mode(&base.path().join("var/lib")), 0o755);
        assert_eq!(mode(&work_file), 0o755);
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
