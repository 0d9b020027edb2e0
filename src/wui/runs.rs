//! When each run started and ended, read from its log file: the start is the time in
//! the first line's prefix, the end the time in the last line's prefix (the file's
//! modification time when no prefix is found). Logs that have ended never change, so
//! their times are cached by path. Blocking file IO: call from a blocking thread.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jiff::Timestamp;

use crate::job::{JobId, RunStatus, Trigger};
use crate::scheduler::run::TRIGGER_LINE;
use crate::store::run_log;

/// How much of a log's start is read to find its first two lines.
const HEAD: usize = 256;
/// How much of a log's end is read to find its last line's prefix.
const TAIL: u64 = 8 * 1024;
/// Cached entries before the cache is emptied (a crude bound).
const CACHE_LIMIT: usize = 20_000;

/// A run's start and end, as far as its log tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunTimes {
    /// The first line's time.
    pub start: Option<Timestamp>,
    /// The last line's time; `None` while the run goes.
    pub end: Option<Timestamp>,
    /// The status of the file that was read.
    pub status: Option<RunStatus>,
    /// What started the run, from its `=== TRIGGER:` line (logs of karajo (Go) have
    /// none).
    pub trigger: Option<Trigger>,
}

/// The times of ended runs, by log path.
#[derive(Debug, Default)]
pub struct RunTimesCache {
    ended: Mutex<HashMap<PathBuf, RunTimes>>,
}

impl RunTimesCache {
    /// The times of run `counter` of job `id`, whose log is in `log_dir`. `status` is
    /// what the scheduler said last; the file is looked for under any status when it
    /// is not where that status puts it.
    pub fn times(&self, log_dir: &Path, id: &JobId, counter: u64, status: RunStatus) -> RunTimes {
        let path = log_dir.join(run_log::file_name(id, counter, status));
        if let Some(times) = self.lock().get(&path) {
            return *times;
        }
        let (path, status) = if path.is_file() {
            (path, status)
        } else {
            match run_log::find(log_dir, id, counter) {
                Ok(Some(entry)) => (entry.path, entry.status),
                _ => return RunTimes::default(),
            }
        };
        let times = read_times(&path, status).unwrap_or_default();
        if status != RunStatus::Running {
            let mut cache = self.lock();
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(path, times);
        }
        times
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, RunTimes>> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Reads the first line's and (for ended runs) the last line's time.
fn read_times(path: &Path, status: RunStatus) -> std::io::Result<RunTimes> {
    let mut file = File::open(path)?;
    let mut head = [0u8; HEAD];
    let n = read_up_to(&mut file, &mut head)?;
    let start = prefix_time(&head[..n]);
    let trigger = head_trigger(&head[..n]);
    if status == RunStatus::Running {
        return Ok(RunTimes {
            start,
            end: None,
            status: Some(status),
            trigger,
        });
    }
    let meta = file.metadata()?;
    let from = meta.len().saturating_sub(TAIL);
    file.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::with_capacity(TAIL as usize);
    file.take(TAIL).read_to_end(&mut tail)?;
    let mut lines: Vec<&[u8]> = tail.split(|&b| b == b'\n').collect();
    if from > 0 && !lines.is_empty() {
        lines.remove(0); // cut in the middle
    }
    let end = lines
        .iter()
        .rev()
        .find_map(|line| prefix_time(line))
        .or_else(|| {
            meta.modified()
                .ok()
                .and_then(|m| Timestamp::try_from(m).ok())
        });
    Ok(RunTimes {
        start,
        end,
        status: Some(status),
        trigger,
    })
}

/// The trigger named on the second line of a log's first bytes.
fn head_trigger(head: &[u8]) -> Option<Trigger> {
    let second = head.split(|&b| b == b'\n').nth(1)?;
    let text = std::str::from_utf8(second).ok()?;
    let word = text.split_once(TRIGGER_LINE)?.1.trim();
    [Trigger::Timer, Trigger::Webhook, Trigger::Api]
        .into_iter()
        .find(|t| t.as_str() == word)
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The time of a line prefix `YYYY-MM-DD hh:mm:ss UTC `.
pub fn prefix_time(line: &[u8]) -> Option<Timestamp> {
    let head = std::str::from_utf8(line.get(..24)?).ok()?;
    if &head[19..] != " UTC " || head.as_bytes()[10] != b' ' {
        return None;
    }
    format!("{}T{}Z", &head[..10], &head[11..19]).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse() {
        let t = prefix_time(b"2026-11-22 21:08:11 UTC job: hello: === BEGIN").unwrap();
        assert_eq!(t.to_string(), "2026-11-22T21:08:11Z");
        assert!(prefix_time(b"2026-11-22T21:08:11 UTC job").is_none());
        assert!(prefix_time(b"short").is_none());
    }

    #[test]
    fn times_come_from_the_first_and_last_lines_and_are_cached() {
        let dir = tempfile::tempdir().unwrap();
        let id = JobId::from_raw("j");
        let path = dir.path().join("j.1.success");
        std::fs::write(
            &path,
            "2026-01-01 00:00:00 UTC job: j: === BEGIN\n2026-01-01 00:00:00 UTC job: j: === TRIGGER: webhook\nno prefix\n2026-01-01 00:01:05 UTC job: j: done\n",
        )
        .unwrap();
        let cache = RunTimesCache::default();
        let t = cache.times(dir.path(), &id, 1, RunStatus::Success);
        assert_eq!(t.start.unwrap().to_string(), "2026-01-01T00:00:00Z");
        assert_eq!(t.end.unwrap().to_string(), "2026-01-01T00:01:05Z");
        assert_eq!(t.trigger, Some(Trigger::Webhook));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(cache.times(dir.path(), &id, 1, RunStatus::Success), t);
        // A running log that ended meanwhile is found under its new name.
        std::fs::write(
            dir.path().join("j.2.failed"),
            "2026-01-01 00:00:00 UTC job: j: a\n2026-01-01 00:00:03 UTC job: j: b\n",
        )
        .unwrap();
        let t = cache.times(dir.path(), &id, 2, RunStatus::Running);
        assert_eq!(t.status, Some(RunStatus::Failed));
        assert!(t.end.is_some());
    }
}
