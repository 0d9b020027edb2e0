//! The state file `var/lib/karajo/state.json`: what must survive a restart besides the
//! logs (pause flags, last and next run, counters), replacing the original's empty
//! `.paused` logs. Loading never fails on bad content: an unreadable or corrupt file is
//! moved aside as evidence and an empty state is used. Saving is atomic (temporary file
//! in the same directory, fsync, rename, fsync of the directory). What the values mean
//! is the scheduler's business.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::job::{JobId, JobKind};

use super::{io_context, rename_no_replace, sync_dir};

/// The format version written and understood.
pub const VERSION: u32 = 1;

/// The whole state file:
/// `{"version":1,"jobs":{"job/<id>":{...},"job_http/<id>":{...}}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    /// Always [`VERSION`] once loaded.
    pub version: u32,
    /// Per job, keyed `<kind>/<id>`. Keys this version does not understand are kept
    /// as they are.
    #[serde(default)]
    jobs: BTreeMap<String, JobState>,
}

/// What is remembered about one job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobState {
    /// Paused through the API; stays paused across restarts.
    pub paused: bool,
    /// When the last run ended (RFC 3339 in the file).
    #[serde(with = "opt_rfc3339")]
    pub last_run: Option<Timestamp>,
    /// When the timer fires next (RFC 3339 in the file).
    #[serde(with = "opt_rfc3339")]
    pub next_run: Option<Timestamp>,
    /// The counter of the job's last run.
    pub counter: u64,
    /// A failed run's next attempt, waiting for its time (`retry`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryState>,
}

/// The next attempt of a failed run: which attempt, of which run, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryState {
    /// The number of the attempt to make, from 2.
    pub attempt: u32,
    /// The counter of the run's first attempt.
    pub first: u64,
    /// When it starts (RFC 3339 in the file).
    #[serde(with = "rfc3339")]
    pub due: Timestamp,
}

/// `Timestamp` as an RFC 3339 string.
mod rfc3339 {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(at: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&at.to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

/// The state file could not be used, and could not be moved aside either; saving over
/// it would destroy the evidence.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Moving the unusable file aside failed.
    #[error("state file {} is unusable ({reason}) and could not be moved aside: {source}", .path.display())]
    MoveAside {
        /// The state file.
        path: PathBuf,
        /// Why it is unusable.
        reason: String,
        /// Why the rename failed.
        #[source]
        source: io::Error,
    },
}

/// Reported by [`StateFile::load`] when the file was unusable and was moved aside.
#[derive(Debug, thiserror::Error)]
#[error(
    "state file {} is unusable ({reason}); moved it to {} and started with an empty state",
    .path.display(),
    .moved_to.display()
)]
pub struct StateWarning {
    /// The state file.
    pub path: PathBuf,
    /// Where its content now is: `state.json.corrupt-<unix seconds>` (with `-<n>`
    /// appended if that name was taken).
    pub moved_to: PathBuf,
    /// Why it was unusable.
    pub reason: String,
}

impl Default for StateFile {
    fn default() -> Self {
        Self {
            version: VERSION,
            jobs: BTreeMap::new(),
        }
    }
}

impl StateFile {
    /// Reads the state file. A missing file is an empty state. A file that cannot be
    /// read, is not valid JSON of this shape, or has another version is renamed to
    /// `state.json.corrupt-<unix seconds>` and an empty state is returned with a
    /// warning. Fails only when that rename fails.
    pub fn load(path: &Path) -> Result<(Self, Option<StateWarning>), StateError> {
        let reason = match fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<Self>(&bytes) {
                Ok(state) if state.version == VERSION => return Ok((state, None)),
                Ok(state) => format!("unsupported version {}", state.version),
                Err(e) => format!("invalid content: {e}"),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Self::default(), None)),
            Err(e) => format!("unreadable: {e}"),
        };
        match move_aside(path, Timestamp::now().as_second()) {
            Ok(moved_to) => Ok((
                Self::default(),
                Some(StateWarning {
                    path: path.to_path_buf(),
                    moved_to,
                    reason,
                }),
            )),
            Err(source) => Err(StateError::MoveAside {
                path: path.to_path_buf(),
                reason,
                source,
            }),
        }
    }

    /// Writes the state atomically: a temporary file in the same directory, fsync,
    /// rename over `path`, fsync of the directory. On failure the old file is intact
    /// and no temporary file is left.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let mut json = serde_json::to_vec_pretty(self)
            .map_err(|e| io_context(io::Error::other(e), "encode state file", path))?;
        json.push(b'\n');
        write_atomic(path, |file| file.write_all(&json))
    }

    /// The state of one job, if any.
    pub fn get(&self, kind: JobKind, id: &JobId) -> Option<&JobState> {
        self.jobs.get(&key(kind, id))
    }

    /// The state of one job, inserting the default state if there is none.
    pub fn entry(&mut self, kind: JobKind, id: &JobId) -> &mut JobState {
        self.jobs.entry(key(kind, id)).or_default()
    }

    /// Forgets one job.
    pub fn remove(&mut self, kind: JobKind, id: &JobId) -> Option<JobState> {
        self.jobs.remove(&key(kind, id))
    }

    /// Every job with a key this version understands, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (JobKind, JobId, &JobState)> {
        self.jobs.iter().filter_map(|(key, state)| {
            let (kind, id) = parse_key(key)?;
            Some((kind, id, state))
        })
    }
}

fn key(kind: JobKind, id: &JobId) -> String {
    format!("{}/{id}", kind.as_str())
}

fn parse_key(key: &str) -> Option<(JobKind, JobId)> {
    let (kind, id) = key.split_once('/')?;
    Some((JobKind::parse(kind)?, JobId::from_raw(id)))
}

/// Renames `path` to `<name>.corrupt-<secs>` (or `…-<secs>-<n>` if taken) beside it.
fn move_aside(path: &Path, secs: i64) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| String::from("state.json"));
    let mut last_err = None;
    for n in 0..100 {
        let aside = if n == 0 {
            path.with_file_name(format!("{name}.corrupt-{secs}"))
        } else {
            path.with_file_name(format!("{name}.corrupt-{secs}-{n}"))
        };
        match rename_no_replace(path, &aside) {
            Ok(()) => {
                if let Some(dir) = path.parent() {
                    // Best effort: the rename happened; losing it in a crash only
                    // means it happens again at the next start.
                    let _ = sync_dir(dir);
                }
                return Ok(aside);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no free name to move the state file to")))
}

/// Writes a new version of `path` through a temporary file in the same directory.
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let context = |e| io_context(e, "write state file", path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".state.json.")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(context)?;
    write(tmp.as_file_mut())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(context)?;
    tmp.persist(path).map_err(|e| context(e.error))?;
    sync_dir(dir)
}

/// `Option<Timestamp>` as an RFC 3339 string or `null`.
mod opt_rfc3339 {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(
        at: &Option<Timestamp>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => s.serialize_some(&at.to_string()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| text.parse::<Timestamp>().map_err(D::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn dir_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn round_trip_and_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let a = JobId::from_raw("a");
        let mut state = StateFile::default();
        {
            let job = state.entry(JobKind::Exec, &a);
            job.paused = true;
            job.last_run = Some(ts("2023-01-09T00:00:00Z"));
            job.counter = 3;
        }
        state.entry(JobKind::Http, &a).next_run = Some(ts("2023-01-09T00:00:30.5Z"));
        state.save(&path).unwrap();

        let (loaded, warning) = StateFile::load(&path).unwrap();
        assert!(warning.is_none());
        assert_eq!(loaded, state);
        assert!(loaded.get(JobKind::Exec, &a).unwrap().paused);
        assert!(!loaded.get(JobKind::Http, &a).unwrap().paused);
        assert_eq!(loaded.get(JobKind::Exec, &JobId::from_raw("b")), None);
        let kinds: Vec<_> = loaded.iter().map(|(k, id, _)| (k, id)).collect();
        assert_eq!(
            kinds,
            [(JobKind::Exec, a.clone()), (JobKind::Http, a.clone())]
        );

        let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "version": 1,
                "jobs": {
                    "job/a": {
                        "paused": true,
                        "last_run": "2023-01-09T00:00:00Z",
                        "next_run": null,
                        "counter": 3
                    },
                    "job_http/a": {
                        "paused": false,
                        "last_run": null,
                        "next_run": "2023-01-09T00:00:30.5Z",
                        "counter": 0
                    }
                }
            })
        );
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "state file is private");
    }

    #[test]
    fn missing_file_is_empty_state() {
        let dir = tempfile::tempdir().unwrap();
        let (state, warning) = StateFile::load(&dir.path().join("state.json")).unwrap();
        assert_eq!(state, StateFile::default());
        assert!(warning.is_none());
    }

    #[test]
    fn lenient_about_missing_and_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(
            &path,
            r#"{"version":1,"extra":2,"jobs":{"job/a":{"paused":true,"x":1},
                "other/thing":{"counter":9},
                "job_http/b":{"last_run":"2023-01-09T07:00:00+07:00"}}}"#,
        )
        .unwrap();
        let (mut state, warning) = StateFile::load(&path).unwrap();
        assert!(warning.is_none());
        let a = state.get(JobKind::Exec, &JobId::from_raw("a")).unwrap();
        assert!(a.paused);
        assert_eq!(a.counter, 0);
        let b = state.get(JobKind::Http, &JobId::from_raw("b")).unwrap();
        assert_eq!(b.last_run, Some(ts("2023-01-09T00:00:00Z")));
        assert_eq!(state.iter().count(), 2);
        // Keys this version does not understand survive a save.
        state.remove(JobKind::Exec, &JobId::from_raw("a"));
        state.save(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("other/thing"));
        assert!(!text.contains("job/a"));
    }

    #[test]
    fn corrupt_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        for bad in [
            &b"{\"version\":1,\"jobs\":{"[..],
            b"\xff\xfe not json",
            b"{\"version\":2,\"jobs\":{}}",
            b"{\"version\":1,\"jobs\":{\"job/a\":{\"last_run\":\"yesterday\"}}}",
            b"",
        ] {
            fs::write(&path, bad).unwrap();
            let (state, warning) = StateFile::load(&path).unwrap();
            assert_eq!(state, StateFile::default());
            let warning = warning.unwrap();
            assert!(!path.exists());
            let name = warning.moved_to.file_name().unwrap().to_str().unwrap();
            assert!(name.starts_with("state.json.corrupt-"), "{name}");
            assert_eq!(fs::read(&warning.moved_to).unwrap(), bad);
            assert!(warning.to_string().contains("moved it to"), "{warning}");
        }
        // Five pieces of evidence, none overwritten.
        assert_eq!(dir_names(dir.path()).len(), 5);
    }

    #[test]
    fn move_aside_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, "one").unwrap();
        let first = move_aside(&path, 42).unwrap();
        fs::write(&path, "two").unwrap();
        let second = move_aside(&path, 42).unwrap();
        assert_eq!(first, dir.path().join("state.json.corrupt-42"));
        assert_eq!(second, dir.path().join("state.json.corrupt-42-1"));
        assert_eq!(fs::read(first).unwrap(), b"one");
        assert_eq!(fs::read(second).unwrap(), b"two");
    }

    #[test]
    fn unmovable_corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        // A path whose parent is a file: unreadable, and cannot be renamed.
        fs::write(dir.path().join("file"), "x").unwrap();
        let path = dir.path().join("file/state.json");
        // NotADirectory is not NotFound: reported, not treated as missing.
        let err = StateFile::load(&path).unwrap_err();
        assert!(
            err.to_string().contains("could not be moved aside"),
            "{err}"
        );
    }

    #[test]
    fn save_replaces_completely_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut big = StateFile::default();
        for n in 0..50 {
            big.entry(JobKind::Exec, &JobId::from_raw(format!("job{n}")))
                .counter = n;
        }
        big.save(&path).unwrap();
        let small = StateFile::default();
        small.save(&path).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "{\n  \"version\": 1,\n  \"jobs\": {}\n}\n"
        );
        assert_eq!(dir_names(dir.path()), ["state.json"]);
    }

    #[test]
    fn failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, "old").unwrap();
        let err = write_atomic(&path, |f| {
            f.write_all(b"half of the new")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("state.json"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(dir_names(dir.path()), ["state.json"]);

        let err = StateFile::default()
            .save(&dir.path().join("missing/state.json"))
            .unwrap_err();
        assert!(err.to_string().contains("missing/state.json"), "{err}");
    }
}
