//! Process groups: every command runs as the leader of a new process group, so the
//! whole tree it forks can be signalled at once. Stopping is SIGTERM to the group, a
//! grace period, then SIGKILL to the group. Running commands' groups are recorded in
//! one append-only journal per directory, which the next start reads to stop what a
//! killed karajo left running.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::process::Child;

/// Sends `signal` to every process of the group led by `pgid`. Returns `false` when the
/// group no longer exists.
pub(super) fn signal_group(pgid: Pid, signal: Signal) -> bool {
    kill_process_group(pgid, signal).is_ok()
}

/// Stops the group of a child that is still running: SIGTERM to the group, wait up to
/// `grace` for the leader to exit, then SIGKILL to the group. Returns once the leader
/// has been reaped.
pub(super) async fn terminate(child: &mut Child, pgid: Pid, grace: Duration) {
    signal_group(pgid, Signal::TERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        signal_group(pgid, Signal::KILL);
    }
    // The leader is either gone or was sent SIGKILL, so this returns promptly.
    let _ = child.wait().await;
    // Members that ignored SIGTERM while the leader exited get SIGKILL too.
    signal_group(pgid, Signal::KILL);
}

/// The process group id of a just-spawned child (its own pid, as it leads the group).
pub(super) fn group_of(child: &Child) -> Option<Pid> {
    child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .and_then(Pid::from_raw)
}

/// The journal's file name in the group directory.
const JOURNAL: &str = "journal";

/// The journal is rewritten with only its live records once it has grown past this.
const COMPACT_AT: u64 = 256 * 1024;

/// A running command's process group, recorded on disk while it runs: if karajo is
/// killed (kill -9, a crash), the next start stops what was left running. The record
/// is a line `+ <n> <boot id> <group id> <leader's start time> <name>` appended to
/// `<dir>/journal`, and dropping it appends `- <n>`; so a record from another boot, or
/// a group id the kernel has since given to someone else, is never signalled. One
/// `write` per line on a file opened once (`O_APPEND`: lines of concurrent runs never
/// mix), instead of a file created and deleted per command. The journal is not synced:
/// the processes it names do not outlive the machine either.
#[derive(Debug)]
pub(super) struct GroupRecord {
    dir: PathBuf,
    number: u64,
}

/// An open journal and the records in it that are still live.
struct Journal {
    file: File,
    path: PathBuf,
    live: HashMap<u64, String>,
    next: u64,
    size: u64,
}

/// The open journals, by directory.
fn journals() -> &'static Mutex<HashMap<PathBuf, Journal>> {
    static JOURNALS: OnceLock<Mutex<HashMap<PathBuf, Journal>>> = OnceLock::new();
    JOURNALS.get_or_init(|| Mutex::new(HashMap::new()))
}

impl Journal {
    /// Opens (creating it, 0600, in a 0700 directory) the journal of `dir`.
    fn open(dir: &Path) -> std::io::Result<Self> {
        crate::store::create_private_dir(dir)?;
        let path = dir.join(JOURNAL);
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(crate::store::FILE_MODE)
            .open(&path)
            .map_err(|e| crate::store::io_context(e, "open", &path))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Self {
            file,
            path,
            live: HashMap::new(),
            next: 1,
            size,
        })
    }

    fn append(&mut self, line: &str) -> std::io::Result<()> {
        self.file
            .write_all(line.as_bytes())
            .map_err(|e| crate::store::io_context(e, "write", &self.path))?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// Rewrites the journal with only the live records (to a new file renamed over
    /// it, so a kill -9 in between leaves either journal, each naming every live group).
    fn compact(&mut self) -> std::io::Result<()> {
        let fresh = self.path.with_extension("new");
        let mut text = String::new();
        for line in self.live.values() {
            text.push_str(line);
        }
        crate::store::write_private(&fresh, text.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&fresh)
            .map_err(|e| crate::store::io_context(e, "open", &fresh))?;
        std::fs::rename(&fresh, &self.path)
            .map_err(|e| crate::store::io_context(e, "rename", &fresh))?;
        self.file = file;
        self.size = text.len() as u64;
        Ok(())
    }
}

impl GroupRecord {
    /// Records group `pgid`, named `name`, in the journal of `dir` (the directory
    /// 0700, the file 0600).
    pub(super) fn write(dir: &Path, name: &str, pgid: Pid) -> std::io::Result<Self> {
        let start = start_time(pgid).unwrap_or(0);
        let mut all = journals().lock().unwrap_or_else(|e| e.into_inner());
        let journal = match all.get_mut(dir) {
            Some(journal) => journal,
            None => all.entry(dir.to_path_buf()).or_insert(Journal::open(dir)?),
        };
        let number = journal.next;
        journal.next += 1;
        let line = format!(
            "+ {number} {} {} {start} {name}\n",
            boot_id(),
            pgid.as_raw_nonzero()
        );
        journal.append(&line)?;
        journal.live.insert(number, line);
        Ok(Self {
            dir: dir.to_path_buf(),
            number,
        })
    }
}

impl Drop for GroupRecord {
    fn drop(&mut self) {
        let mut all = journals().lock().unwrap_or_else(|e| e.into_inner());
        let Some(journal) = all.get_mut(&self.dir) else {
            return;
        };
        journal.live.remove(&self.number);
        let result = if journal.size >= COMPACT_AT {
            journal.compact()
        } else {
            journal.append(&format!("- {}\n", self.number))
        };
        if let Err(err) = result {
            tracing::warn!(%err, "cannot record the end of a process group");
        }
    }
}

/// The records of a journal's text that were never ended: each record's fields after
/// its number (boot id, group id, start time, name).
fn open_records(text: &str) -> Vec<&str> {
    let mut live: Vec<(&str, &str)> = Vec::new();
    for line in text.lines() {
        let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
        let (number, fields) = rest.split_once(' ').unwrap_or((rest, ""));
        match kind {
            "+" => live.push((number, fields)),
            "-" => live.retain(|(n, _)| *n != number),
            _ => {}
        }
    }
    live.into_iter().map(|(_, fields)| fields).collect()
}

/// Stops the process groups recorded in `dir` by a karajo that did not end cleanly
/// (SIGTERM, `grace`, then SIGKILL) and deletes the records: the journal's records
/// that were never ended, and the one-file-per-command records of earlier versions.
/// Blocking. Returns how many groups still had processes.
pub fn stop_recorded_groups(dir: &Path, grace: Duration) -> usize {
    // A journal this process had open (a daemon restarted in the same process) starts
    // anew.
    journals()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(dir);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut stopped = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let is_journal = path
            .file_name()
            .is_some_and(|n| n == JOURNAL || n == "journal.new");
        let records = if is_journal {
            open_records(&text)
        } else {
            vec![text.as_str()]
        };
        for record in records {
            if let Some(pgid) = live_group(record) {
                tracing::warn!(record = %path.display(), "stopping processes left running by a karajo that was killed");
                stop_group(pgid, grace);
                stopped += 1;
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    stopped
}

/// The group of a record, if it is from this boot, still has processes, and its
/// leader (if alive) is the process recorded.
fn live_group(record: &str) -> Option<Pid> {
    let mut fields = record.split_whitespace();
    let (boot, pgid, start) = (fields.next()?, fields.next()?, fields.next()?);
    if boot != boot_id() {
        return None;
    }
    let pgid = Pid::from_raw(pgid.parse().ok()?)?;
    let start: u64 = start.parse().ok()?;
    if start_time(pgid).is_some_and(|now| now != start) {
        return None; // the number belongs to another process now
    }
    (!members(pgid).is_empty()).then_some(pgid)
}

fn stop_group(pgid: Pid, grace: Duration) {
    signal_group(pgid, Signal::TERM);
    let deadline = std::time::Instant::now() + grace;
    while !members(pgid).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    signal_group(pgid, Signal::KILL);
}

/// The process group of `pid`, while it lives.
pub(super) fn pgid_of(pid: Pid) -> Option<i32> {
    stat_fields(pid.as_raw_nonzero().get())?
        .get(2)?
        .parse()
        .ok()
}

/// Whether `pid` is a zombie (or gone while it was looked at).
pub(super) fn is_zombie(pid: Pid) -> bool {
    stat_fields(pid.as_raw_nonzero().get())
        .and_then(|f| f.first().cloned())
        .is_none_or(|state| state == "Z" || state == "X")
}

/// The processes (not zombies) whose process group is `pgid`.
fn members(pgid: Pid) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            stat_fields(*pid).is_some_and(|f| {
                f.first()
                    .is_some_and(|state| *state != "Z" && *state != "X")
                    && f.get(2).and_then(|g| g.parse::<i32>().ok())
                        == Some(pgid.as_raw_nonzero().get())
            })
        })
        .collect()
}

/// The fields of `/proc/<pid>/stat` after the command name: state, ppid, pgrp, ...
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// A process's start time, in clock ticks since boot (field 22 of its stat).
pub(super) fn start_time(pid: Pid) -> Option<u64> {
    stat_fields(pid.as_raw_nonzero().get())?
        .get(19)?
        .parse()
        .ok()
}

/// This boot's id (read once: it cannot change while the process lives).
pub(super) fn boot_id() -> &'static str {
    static BOOT_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BOOT_ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_keeps_the_records_never_ended() {
        let text = "+ 1 b 10 5 a.1\n+ 2 b 11 6 a.2\n- 1\n+ 3 b 12 7 c.1\n- 3\n+ 4 b 13 8 d.1\n";
        assert_eq!(open_records(text), ["b 11 6 a.2", "b 13 8 d.1"]);
        // A line cut by a kill -9 in the middle of a write is ignored.
        assert_eq!(open_records("+ 1 b 10 5 a.1\n- "), ["b 10 5 a.1"]);
        assert!(open_records("").is_empty());
    }

    #[test]
    fn records_are_appended_and_ended_in_one_journal_and_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let groups = dir.path().join("groups");
        let me = Pid::from_raw(rustix::process::getpgrp().as_raw_nonzero().get()).unwrap();
        let first = GroupRecord::write(&groups, "a.1", me).unwrap();
        let second = GroupRecord::write(&groups, "a.2", me).unwrap();
        drop(first);
        let journal = groups.join(JOURNAL);
        let text = std::fs::read_to_string(&journal).unwrap();
        let open = open_records(&text);
        assert_eq!(open.len(), 1, "{text}");
        assert!(open[0].ends_with(" a.2"), "{text}");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&journal).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Past the size limit, an end rewrites the journal with the live records only.
        let mut many = Vec::new();
        while std::fs::metadata(&journal).unwrap().len() < COMPACT_AT {
            many.push(GroupRecord::write(&groups, "b.1", me).unwrap());
        }
        drop(many.pop());
        let text = std::fs::read_to_string(&journal).unwrap();
        assert_eq!(open_records(&text).len(), many.len() + 1);
        assert!(!text.contains("- "), "compacted: {}", text.len());
        drop(many);
        drop(second);
        let text = std::fs::read_to_string(&journal).unwrap();
        assert!(open_records(&text).is_empty());
        // A restart forgets the open journal and deletes the file.
        assert_eq!(stop_recorded_groups(&groups, Duration::from_millis(10)), 0);
        assert!(!journal.exists());
        let again = GroupRecord::write(&groups, "a.3", me).unwrap();
        assert!(journal.exists());
        drop(again);
    }
}
