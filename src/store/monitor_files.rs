//! A heartbeat monitor's files (monitors spec 1.2, A.5, A.7): its check-in logs
//! `var/log/karajo/monitor/<id>/<id>.<n>.<status>` with the kind word `monitor` in
//! every line prefix, its state file `var/lib/karajo/state/monitor/<id>.json`, and the
//! daemon's liveness mark `var/lib/karajo/state/alive`, and the dynamic monitors
//! watchTower pulses created, `var/lib/karajo/state/watchtower.json`. Check-in logs are not synced
//! one by one: the state file carries what must survive a crash, and is written
//! atomically (temporary file, fsync, rename, fsync of the directory).

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::run_log::file_name;
use super::state::write_atomic;
use super::{FILE_MODE, framing, io_context, json_file, rename_no_replace};
use crate::job::{JobId, JobKind, RunStatus};
use crate::monitor::{MonitorState, Pulse};

/// The text a check-in adds to a log: its header line (`=== SUCCESS via GET from …`)
/// and the captured body, all stamped with the check-in's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingBlock {
    /// When the check-in arrived (every line's prefix time).
    pub at: Timestamp,
    /// The lines, without newlines.
    pub lines: Vec<String>,
}

impl PingBlock {
    /// The block as log bytes: every line with the monitor's prefix.
    fn bytes(&self, id: &JobId) -> Vec<u8> {
        let prefix = framing::line_prefix(JobKind::Monitor, id, self.at);
        let mut out = Vec::new();
        for line in &self.lines {
            out.extend_from_slice(prefix.as_bytes());
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        out
    }
}

/// Creates `<id>.<counter>.running` holding `block`: a `start` check-in opened a run.
pub fn open_run(dir: &Path, id: &JobId, counter: u64, block: &PingBlock) -> io::Result<PathBuf> {
    let path = dir.join(file_name(id, counter, RunStatus::Running));
    create_with(&path, &block.bytes(id))?;
    Ok(path)
}

/// Appends `block` to the open run `<id>.<counter>.running`.
pub fn append(dir: &Path, id: &JobId, counter: u64, block: &PingBlock) -> io::Result<()> {
    let path = dir.join(file_name(id, counter, RunStatus::Running));
    let mut file = OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| io_context(e, "append to log", &path))?;
    file.write_all(&block.bytes(id))
        .map_err(|e| io_context(e, "append to log", &path))
}

/// Appends `block` to the open run `<id>.<counter>.running` and renames it to
/// `status`. A run log that is missing (deleted by hand) is written anew.
pub fn close_run(
    dir: &Path,
    id: &JobId,
    counter: u64,
    status: RunStatus,
    block: &PingBlock,
) -> io::Result<PathBuf> {
    let running = dir.join(file_name(id, counter, RunStatus::Running));
    let done = dir.join(file_name(id, counter, status));
    match append(dir, id, counter, block) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_with(&done, &block.bytes(id))?;
            return Ok(done);
        }
        Err(e) => return Err(e),
    }
    rename_no_replace(&running, &done)?;
    Ok(done)
}

/// Writes a check-in that closes no run: `<id>.<counter>.<status>` in one step.
pub fn write_lone(
    dir: &Path,
    id: &JobId,
    counter: u64,
    status: RunStatus,
    block: &PingBlock,
) -> io::Result<PathBuf> {
    let path = dir.join(file_name(id, counter, status));
    create_with(&path, &block.bytes(id))?;
    Ok(path)
}

fn create_with(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| io_context(e, "create log", path))?;
    file.write_all(bytes)
        .map_err(|e| io_context(e, "write log", path))
}

/// Reads a monitor's state file. A missing file is `None`; a file that cannot be
/// used is moved aside to `<name>.corrupt-<unix seconds>` and is `None` too, with the
/// reason.
pub fn load_state(path: &Path, now: Timestamp) -> (Option<MonitorState>, Option<String>) {
    json_file::load(path, now)
}

/// Writes a monitor's state file atomically.
pub fn save_state(path: &Path, state: &MonitorState) -> io::Result<()> {
    json_file::save(path, state, false)
}

/// The dynamic monitors in `state/watchtower.json`, in the order they were written.
#[derive(Debug, Default, Serialize, Deserialize)]
struct PulseFile {
    monitors: Vec<Pulse>,
}

/// Reads the dynamic monitors. A missing file is none; a file that cannot be used is
/// moved aside as [`load_state`] does, with the reason.
pub fn load_pulses(path: &Path, now: Timestamp) -> (Vec<Pulse>, Option<String>) {
    let (file, problem) = json_file::load::<PulseFile>(path, now);
    (file.unwrap_or_default().monitors, problem)
}

/// Writes the dynamic monitors atomically.
pub fn save_pulses(path: &Path, pulses: &[Pulse]) -> io::Result<()> {
    let file = PulseFile {
        monitors: pulses.to_vec(),
    };
    json_file::save(path, &file, true)
}

/// Deletes a removed monitor's state file; one already gone is not an error.
pub fn remove_file(path: &Path) -> io::Result<()> {
    json_file::remove(path)
}

/// Deletes a removed monitor's check-in logs; a directory already gone is not an
/// error.
pub fn remove_logs(log_dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(log_dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_context(e, "delete", log_dir)),
        _ => Ok(()),
    }
}

/// The daemon's liveness mark: when it was last known to be alive, and whether it
/// stopped cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliveMark {
    /// The last moment the daemon was known to be alive (*L* of the restart rule).
    pub alive_at: Timestamp,
    /// The daemon's process id.
    pub pid: u32,
    /// Written by a clean shutdown.
    pub clean: bool,
}

impl AliveMark {
    /// Reads the mark; `None` when it is missing or unreadable (no history: no credit
    /// is needed).
    pub fn load(path: &Path) -> Option<Self> {
        serde_json::from_slice(&fs::read(path).ok()?).ok()
    }

    /// Writes the mark atomically.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let json = serde_json::to_vec(self)
            .map_err(|e| io_context(io::Error::other(e), "encode alive mark", path))?;
        write_atomic(path, |file| file.write_all(&json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(at: &str, lines: &[&str]) -> PingBlock {
        PingBlock {
            at: at.parse().unwrap(),
            lines: lines.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn a_run_opens_takes_a_log_ping_and_closes_under_its_status() {
        let dir = tempfile::tempdir().unwrap();
        let id = JobId::from_raw("backup_db");
        let start = block("2026-11-22T03:00:00Z", &["=== START rid=42 via GET"]);
        open_run(dir.path(), &id, 1, &start).unwrap();
        let log = block("2026-11-22T03:12:41Z", &["--- LOG via POST", "dumped 14"]);
        append(dir.path(), &id, 1, &log).unwrap();
        let end = block("2026-11-22T03:41:09Z", &["=== SUCCESS rid=42 via POST"]);
        let path = close_run(dir.path(), &id, 1, RunStatus::Success, &end).unwrap();
        assert_eq!(path, dir.path().join("backup_db.1.success"));
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "2026-11-22 03:00:00 UTC monitor: backup_db: === START rid=42 via GET\n\
             2026-11-22 03:12:41 UTC monitor: backup_db: --- LOG via POST\n\
             2026-11-22 03:12:41 UTC monitor: backup_db: dumped 14\n\
             2026-11-22 03:41:09 UTC monitor: backup_db: === SUCCESS rid=42 via POST\n"
        );
        assert!(!dir.path().join("backup_db.1.running").exists());
        // A lone check-in is one file in one step; a counter is never reused.
        let lone = block("2026-11-22T04:00:00Z", &["=== FAIL via GET"]);
        write_lone(dir.path(), &id, 2, RunStatus::Failed, &lone).unwrap();
        assert!(dir.path().join("backup_db.2.failed").exists());
        let err = write_lone(dir.path(), &id, 2, RunStatus::Failed, &lone).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn a_state_file_round_trips_and_a_corrupt_one_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        let now: Timestamp = "2026-11-22T03:00:00Z".parse().unwrap();
        assert_eq!(load_state(&path, now), (None, None));
        let state = MonitorState::new(now);
        save_state(&path, &state).unwrap();
        assert_eq!(load_state(&path, now).0, Some(state));
        fs::write(&path, "{not json").unwrap();
        let (state, reason) = load_state(&path, now);
        assert_eq!(state, None);
        assert!(reason.unwrap().contains("moved to"));
        assert!(!path.exists());
        let mark = AliveMark {
            alive_at: now,
            pid: 7,
            clean: true,
        };
        let alive = dir.path().join("alive");
        mark.save(&alive).unwrap();
        assert_eq!(AliveMark::load(&alive), Some(mark));
    }
}
