//! Process groups: every command runs as the leader of a new process group, so the
//! whole tree it forks can be signalled at once. Stopping is SIGTERM to the group, a
//! grace period, then SIGKILL to the group.

use std::path::{Path, PathBuf};
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

/// A running command's process group, recorded on disk while it runs: if karajo is
/// killed (kill -9, a crash), the next start stops what was left running. The file
/// holds the boot id, the group id and the leader's start time, so a record from
/// another boot, or a group id the kernel has since given to someone else, is never
/// signalled. Dropping the record deletes the file.
#[derive(Debug)]
pub(super) struct GroupRecord(PathBuf);

impl GroupRecord {
    /// Records group `pgid` as `<dir>/<name>` (the directory 0700, the file 0600).
    pub(super) fn write(dir: &Path, name: &str, pgid: Pid) -> std::io::Result<Self> {
        let path = dir.join(name);
        let start = start_time(pgid).unwrap_or(0);
        let text = format!("{} {} {start}\n", boot_id(), pgid.as_raw_nonzero());
        crate::store::create_private_dir(dir)?;
        crate::store::write_private(&path, text.as_bytes())?;
        Ok(Self(path))
    }
}

impl Drop for GroupRecord {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Stops the process groups recorded in `dir` by a karajo that did not end cleanly
/// (SIGTERM, `grace`, then SIGKILL) and deletes the records. Blocking. Returns how
/// many groups still had processes.
pub fn stop_recorded_groups(dir: &Path, grace: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut stopped = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if let Some(pgid) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| live_group(&text))
        {
            tracing::warn!(record = %path.display(), "stopping processes left running by a karajo that was killed");
            stop_group(pgid, grace);
            stopped += 1;
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
