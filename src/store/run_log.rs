//! Run log files `<id>.<counter>.<status>` in a job's log directory (spec 1.4, 6.5, 7.4):
//! the start-up scan (which also recovers runs interrupted by a crash), retention,
//! lookup and reading, and [`RunLogWriter`], which streams a run's output to
//! `<id>.<counter>.running` with a time prefix on every line and renames the file to
//! its final status at the end. Files of other jobs or with unparsable names are
//! reported, never deleted. No decisions about when runs happen or what their status
//! is: callers say.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::num::NonZeroU64;
use std::os::unix::fs::{DirEntryExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use jiff::Timestamp;

use crate::clock::SharedClock;
use crate::job::{JobId, JobKind, RunStatus, Trigger};

use super::facts_cache::{CachedLog, DirFacts};
use super::framing::{self, rounded_second};
use super::{io_context, is_plain_id, rename_no_replace, sync_dir};

/// Size of the writer's buffer; output reaches the file in writes of about this size.
const WRITE_BUFFER: usize = 64 * 1024;

/// Each time this much more output has reached a log, the kernel is asked to start
/// writing it to disk (and to drop the pages of the window before, written by then):
/// the fsync at the end of a run with a large output then has little left to wait for,
/// and the output does not fill the page cache.
const WRITEBACK_STEP: u64 = 8 << 20;

/// The statuses a log file name can carry, `running` first: see [`find`].
const FILE_STATUSES: [RunStatus; 6] = [
    RunStatus::Running,
    RunStatus::Success,
    RunStatus::Failed,
    RunStatus::Canceled,
    RunStatus::Paused,
    RunStatus::Rotated,
];

/// One run log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The run's counter, 1 for a job's first run.
    pub counter: u64,
    /// The status in the file name; `Running` while the run streams into it.
    pub status: RunStatus,
    /// The full path of the file.
    pub path: PathBuf,
    /// The file's modification time (not rounded).
    pub modified: Timestamp,
    /// What the run's log tells of it: filled by [`scan`] (and by the scheduler for
    /// the runs it starts); empty from [`find`].
    pub facts: RunFacts,
}

/// A run's record beyond its counter and status: what started it, when it started
/// and ended, and the exit code of its last command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunFacts {
    /// What started the run (logs of karajo (Go) do not say).
    pub trigger: Option<Trigger>,
    /// When the run started.
    pub started: Option<Timestamp>,
    /// When the run ended; `None` while it runs.
    pub ended: Option<Timestamp>,
    /// The exit code of the command that ended the run, when a command exited (0
    /// when every command of a shell run succeeded); `None` otherwise.
    pub exit_code: Option<i32>,
}

/// How much of a log's start is read for its first lines.
const FACTS_HEAD: u64 = 4 * 1024;
/// How much of a log's end is read for its last lines.
const FACTS_TAIL: u64 = 8 * 1024;

/// Reads a run's record back from its log (at start-up): the start is the first
/// line's time, the trigger its `=== TRIGGER:` line, the end the last line's time
/// (`modified` when no line has a prefix), the exit code from the closing line. A
/// `.running` log has no end.
pub fn read_facts(path: &Path, status: RunStatus, modified: Timestamp) -> io::Result<RunFacts> {
    let mut file = File::open(path).map_err(|e| io_context(e, "open", path))?;
    let len = file
        .metadata()
        .map_err(|e| io_context(e, "stat", path))?
        .len();
    facts_of(&mut file, path, len, status, modified)
}

/// A log's modification time and its facts (see [`read_facts`]), from one open of the
/// file: the start-up scan's reading of each log. A log that cannot be opened or read
/// is listed all the same, with no record beyond its end (its modification time).
fn read_entry(path: &Path, status: RunStatus) -> io::Result<(Timestamp, u64, RunFacts)> {
    let unread = |modified| RunFacts {
        ended: Some(modified),
        ..RunFacts::default()
    };
    let Ok(mut file) = File::open(path) else {
        let meta = fs::metadata(path).map_err(|e| io_context(e, "stat", path))?;
        let modified = modified_of(&meta).map_err(|e| io_context(e, "stat", path))?;
        return Ok((modified, meta.len(), unread(modified)));
    };
    let context = |e| io_context(e, "stat", path);
    let meta = file.metadata().map_err(context)?;
    let modified = modified_of(&meta).map_err(context)?;
    let facts = facts_of(&mut file, path, meta.len(), status, modified)
        .unwrap_or_else(|_| unread(modified));
    Ok((modified, meta.len(), facts))
}

/// [`read_facts`] of an open log of `len` bytes. A log no longer than its head is read
/// once.
fn facts_of(
    file: &mut File,
    path: &Path,
    len: u64,
    status: RunStatus,
    modified: Timestamp,
) -> io::Result<RunFacts> {
    let mut head = Vec::new();
    (&mut *file)
        .take(FACTS_HEAD)
        .read_to_end(&mut head)
        .map_err(|e| io_context(e, "read", path))?;
    let mut lines = head.split(|&b| b == b'\n');
    let started = lines.next().and_then(framing::prefix_time);
    let trigger = lines
        .next()
        .and_then(|line| framing::parse_trigger(framing::text_of(line)));
    let ran_command = head
        .split(|&b| b == b'\n')
        .any(|line| framing::parse_execute(framing::text_of(line)).is_some());
    let mut facts = RunFacts {
        trigger,
        started,
        ..RunFacts::default()
    };
    if status == RunStatus::Running {
        return Ok(facts);
    }
    let tail = if head.len() as u64 == len {
        // The whole log is in `head` (FACTS_HEAD <= FACTS_TAIL).
        None
    } else {
        Some(
            read_tail(file, len, FACTS_TAIL)
                .map_err(|e| io_context(e, "read", path))?
                .1,
        )
    };
    let lines: Vec<&[u8]> = tail
        .as_ref()
        .unwrap_or(&head)
        .split(|&b| b == b'\n')
        .collect();
    facts.ended = lines
        .iter()
        .rev()
        .find_map(|line| framing::prefix_time(line))
        .or(Some(modified));
    let closing = lines
        .iter()
        .rev()
        .find_map(|line| framing::parse_closing(framing::text_of(line)));
    facts.exit_code = match closing {
        Some(framing::Closing::Done) if ran_command => Some(0),
        Some(closing) => closing.exit_code(),
        None => None,
    };
    Ok(facts)
}

/// What the start-up scan of one job's log directory found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogScan {
    /// The job's log files, ascending by counter (ties, which only foreign tools can
    /// make, by file name).
    pub entries: Vec<LogEntry>,
    /// The newest modification time among `entries`, rounded to the second (as the
    /// original); `None` when there are no logs.
    pub last_run: Option<Timestamp>,
    /// The status of the log with the highest counter.
    pub newest_status: Option<RunStatus>,
    /// The highest counter found, 0 when there are no logs.
    pub max_counter: u64,
    /// Logs that were left `.running` by a crash and are now `.failed` (also in
    /// `entries`).
    pub recovered: Vec<LogEntry>,
    /// Entries of the directory that are not this job's log files (other names, other
    /// jobs' ids, sub-directories, symlinks). They are left alone.
    pub ignored: Vec<PathBuf>,
    /// What the log facts cache is to hold for this directory now: every closed log in
    /// it, with its facts (see [`facts_cache`](super::facts_cache)).
    pub cache: DirFacts,
    /// Whether [`LogScan::cache`] differs from what the cache held: a log had to be
    /// read, or a log the cache knew is gone.
    pub cache_changed: bool,
}

/// The file name `<id>.<counter>.<status>`.
pub fn file_name(id: &JobId, counter: u64, status: RunStatus) -> String {
    format!("{id}.{counter}.{status}")
}

/// Scans a job's log directory at start-up.
///
/// Accepts only regular files named `<id>.<counter>.<status>` with this job's id, a
/// decimal counter ≥ 1 (no sign, no leading zero) and a status that reaches disk
/// (`success`, `failed`, `canceled`, `paused`, or `running`); everything else is listed
/// in [`LogScan::ignored`] and left alone. A `<id>.<n>.running` file is a run that
/// karajo did not see finish: a line `<prefix>!!! <kind>: <id>: interrupted: karajo
/// stopped before the run finished` (prefix time `now`) is appended, the file keeps
/// its modification time and is renamed to `<id>.<n>.failed`, for the kinds whose
/// runs end with karajo ([`JobKind::closes_interrupted_runs`]); a monitor's stays open.
///
/// A missing directory is an empty scan. Only call this while no run of the job is in
/// progress.
pub fn scan(log_dir: &Path, kind: JobKind, id: &JobId, now: Timestamp) -> io::Result<LogScan> {
    scan_with(
        log_dir,
        kind,
        id,
        now,
        kind.closes_interrupted_runs(),
        DirFacts::default(),
    )
}

/// As [`scan`], with `close_interrupted` saying whether `.running` logs are closed as
/// `failed` (cluster mode leaves a cluster job's open logs open: another node may still
/// be running the run, or will close it), and `cached` the facts the log facts cache
/// holds for this directory. A closed log the cache knows under the same name and inode
/// is not opened: when the directory's modification time is still the one the cache
/// saw (no file was added, renamed or removed since), it is not even stated; otherwise
/// its size and modification time must match as well. What the cache is to hold for
/// the directory now is in [`LogScan::cache`].
pub fn scan_with(
    log_dir: &Path,
    kind: JobKind,
    id: &JobId,
    now: Timestamp,
    close_interrupted: bool,
    mut cached: DirFacts,
) -> io::Result<LogScan> {
    let mut scan = LogScan::default();
    // The directory's time is taken before it is listed: a change made while or after
    // it is listed makes the next scan check each file.
    let listed = match fs::metadata(log_dir) {
        Ok(meta) => meta.modified().ok().and_then(|t| timestamp(t).ok()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(scan),
        Err(e) => return Err(io_context(e, "read log directory", log_dir)),
    };
    let unchanged = listed.is_some() && cached.listed == listed;
    scan.cache.listed = listed;
    let dir = match fs::read_dir(log_dir) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(scan),
        Err(e) => return Err(io_context(e, "read log directory", log_dir)),
    };
    for dirent in dir {
        let dirent = dirent.map_err(|e| io_context(e, "read log directory", log_dir))?;
        let path = dirent.path();
        let parsed = dirent
            .file_name()
            .to_str()
            .and_then(|name| parse_name(name, id.as_str()));
        let is_file = dirent
            .file_type()
            .map_err(|e| io_context(e, "stat", &path))?
            .is_file();
        let Some((counter, status)) = parsed.filter(|_| is_file) else {
            scan.ignored.push(path);
            continue;
        };
        if status == RunStatus::Running && close_interrupted {
            let mut entry = recover(&path, kind, id, counter, now)?;
            scan.recovered.push(entry.clone());
            // A log that cannot be read is still listed, with no record beyond its end.
            entry.facts =
                read_facts(&entry.path, entry.status, entry.modified).unwrap_or(RunFacts {
                    ended: Some(entry.modified),
                    ..RunFacts::default()
                });
            scan.entries.push(entry);
        } else {
            let ino = dirent.ino();
            let known = cached
                .logs
                .remove(&(counter, status))
                .filter(|log| log.ino == ino && status != RunStatus::Running)
                .filter(|log| unchanged || log.matches(dirent.metadata().ok().as_ref()));
            let (modified, size, facts) = match known {
                Some(log) => (log.modified, log.size, log.facts),
                None => {
                    scan.cache_changed |= status != RunStatus::Running;
                    read_entry(&path, status)?
                }
            };
            if status != RunStatus::Running {
                let log = CachedLog {
                    ino,
                    size,
                    modified,
                    facts,
                };
                scan.cache.logs.insert((counter, status), log);
            }
            scan.entries.push(LogEntry {
                counter,
                status,
                path,
                modified,
                facts,
            });
        }
    }
    scan.cache_changed |= !cached.logs.is_empty() || cached.listed != listed;
    if !scan.recovered.is_empty() {
        sync_dir(log_dir)?;
    }
    scan.entries
        .sort_by(|a, b| (a.counter, &a.path).cmp(&(b.counter, &b.path)));
    scan.recovered.sort_by_key(|e| e.counter);
    scan.ignored.sort();
    scan.max_counter = scan.entries.last().map_or(0, |e| e.counter);
    scan.newest_status = scan.entries.last().map(|e| e.status);
    scan.last_run = scan
        .entries
        .iter()
        .map(|e| e.modified)
        .max()
        .map(|t| Timestamp::from_second(rounded_second(t)).unwrap_or(t));
    Ok(scan)
}

/// Takes the oldest entries out of `entries` until at most `keep` remain and returns
/// their paths, for the caller to delete with [`delete_logs`]. `entries` is sorted by
/// counter first. A `.running` entry is never taken (but counts towards `keep`, as the
/// original counts the running log). Touches no file.
pub fn beyond_retention(entries: &mut Vec<LogEntry>, keep: usize) -> Vec<PathBuf> {
    entries.sort_by_key(|e| e.counter);
    let mut removed = Vec::new();
    let mut i = 0;
    while entries.len() > keep && i < entries.len() {
        if entries[i].status == RunStatus::Running {
            i += 1;
            continue;
        }
        removed.push(entries.remove(i).path);
    }
    removed
}

/// Deletes log files; a file that is already gone counts as deleted. Stops at the first
/// failure, naming the file.
pub fn delete_logs(paths: &[PathBuf]) -> io::Result<()> {
    for path in paths {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_context(e, "delete log", path)),
        }
    }
    Ok(())
}

/// Deletes the oldest log files until at most `keep` remain ([`beyond_retention`],
/// then [`delete_logs`]).
/// Returns the deleted paths.
pub fn prune(entries: &mut Vec<LogEntry>, keep: usize) -> io::Result<Vec<PathBuf>> {
    let removed = beyond_retention(entries, keep);
    delete_logs(&removed)?;
    Ok(removed)
}

/// Finds the log file of run `counter` of job `id` in `log_dir`, whatever its status.
/// `None` when there is none (or the directory is missing). An id that cannot be a
/// file name field (empty, or with `/`, `.` or NUL) is an `InvalidInput` error.
pub fn find(log_dir: &Path, id: &JobId, counter: u64) -> io::Result<Option<LogEntry>> {
    if !is_plain_id(id.as_str()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("job id {id:?} cannot name a log file"),
        ));
    }
    // `running` is looked at first: a run that finishes between two looks has
    // already been renamed to its final name when that is looked at.
    for status in FILE_STATUSES {
        let path = log_dir.join(file_name(id, counter, status));
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => {
                let modified = meta
                    .modified()
                    .and_then(timestamp)
                    .map_err(|e| io_context(e, "stat", &path))?;
                return Ok(Some(LogEntry {
                    counter,
                    status,
                    path,
                    modified,
                    facts: RunFacts::default(),
                }));
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) => {}
            Err(e) => return Err(io_context(e, "stat", &path)),
        }
    }
    Ok(None)
}

/// Opens a log file for reading. If the entry was `.running` and the run has finished
/// (the file was renamed) since it was found, opens the renamed file and returns its
/// new entry.
pub fn open(entry: &LogEntry) -> io::Result<(File, LogEntry)> {
    match File::open(&entry.path) {
        Ok(file) => Ok((file, entry.clone())),
        Err(e) if e.kind() == io::ErrorKind::NotFound && entry.status == RunStatus::Running => {
            let renamed = entry
                .path
                .parent()
                .zip(entry.path.file_name().and_then(|n| n.to_str()))
                .and_then(|(dir, name)| Some((dir, name.split('.').next()?)));
            if let Some((dir, id)) = renamed
                && let Some(now) = find(dir, &JobId::from_raw(id), entry.counter)?
                && now.status != RunStatus::Running
            {
                let file = File::open(&now.path).map_err(|e| io_context(e, "open", &now.path))?;
                return Ok((file, now));
            }
            Err(io_context(e, "open", &entry.path))
        }
        Err(e) => Err(io_context(e, "open", &entry.path)),
    }
}

/// Reads a whole log file. A `.running` file returns what has been flushed so far.
pub fn read(entry: &LogEntry) -> io::Result<Vec<u8>> {
    let (mut file, entry) = open(entry)?;
    let mut content = Vec::new();
    file.read_to_end(&mut content)
        .map_err(|e| io_context(e, "read", &entry.path))?;
    Ok(content)
}

/// Reads the bytes of `file` from a line start up to `upto`, at most `limit` of them:
/// the whole first `upto` bytes when they fit, else the last whole lines that fit (or
/// the last `limit` bytes when no line break is among them). Returns where the bytes
/// start and the bytes. Which start is chosen depends only on the file's first `upto`
/// bytes, so a log that grows past `upto` gives the same answer again.
pub fn read_tail(file: &mut File, upto: u64, limit: u64) -> io::Result<(u64, Vec<u8>)> {
    let capacity = |n: u64| usize::try_from(n).unwrap_or(0);
    if upto <= limit {
        file.seek(SeekFrom::Start(0))?;
        let mut bytes = Vec::with_capacity(capacity(upto));
        file.take(upto).read_to_end(&mut bytes)?;
        return Ok((0, bytes));
    }
    // One byte more, to see whether the window starts a line.
    let before = upto - limit - 1;
    file.seek(SeekFrom::Start(before))?;
    let mut bytes = Vec::with_capacity(capacity(limit + 1));
    file.take(limit + 1).read_to_end(&mut bytes)?;
    let skip = bytes
        .iter()
        .position(|&b| b == b'\n')
        .filter(|&i| i + 1 < bytes.len())
        .map_or(1, |i| i + 1);
    bytes.drain(..skip.min(bytes.len()));
    Ok((before + skip as u64, bytes))
}

/// Streams one run's output into `<id>.<counter>.running`.
///
/// Every line starts with the [`framing::line_prefix`] for the time its first byte
/// was written (lines split across several writes included; the original prefixes
/// only the start of each write). Output is buffered; call [`flush`](Self::flush) when the output
/// goes idle so readers of the running log see it. Dropping the writer without
/// [`finish`](Self::finish) leaves the `.running` file, which the next start-up scan
/// marks failed.
#[derive(Debug)]
pub struct RunLogWriter {
    out: BufWriter<File>,
    path: PathBuf,
    dir: PathBuf,
    kind: JobKind,
    id: JobId,
    counter: u64,
    clock: SharedClock,
    /// The rounded second `prefix` was formatted for.
    prefix_second: Option<i64>,
    prefix: Vec<u8>,
    /// Whether the last byte written was `\n` (or nothing was written yet).
    at_line_start: bool,
    bytes_written: u64,
    /// The window of the file whose writeback was started last: `[from, to)`.
    writeback: (u64, u64),
}

impl RunLogWriter {
    /// Creates `<log_dir>/<id>.<counter>.running` (mode 0600). Fails with
    /// `AlreadyExists` when a log of this counter exists, running or final: a counter
    /// is never reused. `counter` is at least 1.
    pub fn create(
        log_dir: &Path,
        kind: JobKind,
        id: &JobId,
        counter: u64,
        clock: SharedClock,
    ) -> io::Result<Self> {
        if counter == 0 || !is_plain_id(id.as_str()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot name a log file for job {id:?}, counter {counter}"),
            ));
        }
        for status in &FILE_STATUSES[1..] {
            let done = log_dir.join(file_name(id, counter, *status));
            if done.symlink_metadata().is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("create log: {} exists", done.display()),
                ));
            }
        }
        let path = log_dir.join(file_name(id, counter, RunStatus::Running));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_context(e, "create log", &path))?;
        Ok(Self {
            out: BufWriter::with_capacity(WRITE_BUFFER, file),
            path,
            dir: log_dir.to_path_buf(),
            kind,
            id: id.clone(),
            counter,
            clock,
            prefix_second: None,
            prefix: Vec::new(),
            at_line_start: true,
            bytes_written: 0,
            writeback: (0, 0),
        })
    }

    /// The file being written (`<id>.<counter>.running`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run's counter.
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// Bytes written so far, prefixes included (the file's size once flushed).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Appends a chunk of the run's output (any bytes, any split into chunks).
    pub fn write_output(&mut self, chunk: &[u8]) -> io::Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.refresh_prefix();
        self.write_lines(chunk)
            .map_err(|e| io_context(e, "write log", &self.path))
    }

    /// Writes one whole line: ends a partial output line first, then the prefix,
    /// `text` and `\n`. A trailing `\n` in `text` is not doubled; other newlines in it
    /// start new prefixed lines.
    pub fn line(&mut self, text: &str) -> io::Result<()> {
        self.refresh_prefix();
        let text = text.strip_suffix('\n').unwrap_or(text);
        self.end_line()
            .and_then(|()| self.write_lines(text.as_bytes()))
            .and_then(|()| self.write_lines(b"\n"))
            .map_err(|e| io_context(e, "write log", &self.path))
    }

    /// Hands the buffered output to the operating system, so readers see it.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out
            .flush()
            .map_err(|e| io_context(e, "write log", &self.path))?;
        self.start_writeback();
        Ok(())
    }

    /// Every [`WRITEBACK_STEP`] of output: starts the writeback of what was written
    /// since the last time and drops the window before it from the page cache. Only
    /// advice: the fsync in [`finish`](Self::finish) still makes the log durable.
    fn start_writeback(&mut self) {
        use rustix::fs::{Advice, fadvise};
        let (from, to) = self.writeback;
        let written = self.bytes_written;
        if written < to + WRITEBACK_STEP {
            return;
        }
        self.writeback = (to, written);
        // POSIX_FADV_DONTNEED starts the writeback of a range's dirty pages (without
        // waiting for it) and drops its clean ones. Submitting the writeback takes the
        // kernel a while, so one thread of its own does it, not the one copying output.
        let advise = move |file: &File| {
            let _ = fadvise(file, to, NonZeroU64::new(written - to), Advice::DontNeed);
            let _ = fadvise(file, from, NonZeroU64::new(to - from), Advice::DontNeed);
        };
        let Ok(file) = self.out.get_ref().try_clone() else {
            return;
        };
        if let Some(thread) = writeback_thread()
            && thread.send(Box::new(move || advise(&file))).is_ok()
        {
            return;
        }
        advise(self.out.get_ref());
    }

    /// Ends the run: terminates an unfinished last line with `\n`, flushes, syncs the
    /// file, renames it to `<id>.<counter>.<status>` (never replacing an existing file)
    /// and syncs the directory. Returns the final path. `status` must be final
    /// (`success`, `failed`, `canceled` or `paused`).
    pub fn finish(mut self, status: RunStatus) -> io::Result<PathBuf> {
        if !status.is_final() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "finish log {}: status {status} is not final",
                    self.path.display()
                ),
            ));
        }
        self.end_line()
            .and_then(|()| self.out.flush())
            .and_then(|()| self.out.get_ref().sync_all())
            .map_err(|e| io_context(e, "write log", &self.path))?;
        let done = self.dir.join(file_name(&self.id, self.counter, status));
        rename_no_replace(&self.path, &done)?;
        sync_dir(&self.dir)?;
        Ok(done)
    }

    /// Re-formats the cached prefix when the clock's (rounded) second has changed.
    fn refresh_prefix(&mut self) {
        let second = rounded_second(self.clock.now());
        if self.prefix_second != Some(second) {
            self.prefix_second = Some(second);
            self.prefix.clear();
            framing::write_prefix(&mut self.prefix, second, self.kind, &self.id);
        }
    }

    /// Writes `bytes`, putting the current prefix before every line start.
    fn write_lines(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.at_line_start {
                self.out.write_all(&self.prefix)?;
                self.bytes_written += self.prefix.len() as u64;
            }
            let (line, rest) = match find_newline(bytes) {
                Some(i) => bytes.split_at(i + 1),
                None => (bytes, &[][..]),
            };
            self.out.write_all(line)?;
            self.bytes_written += line.len() as u64;
            self.at_line_start = line.last() == Some(&b'\n');
            bytes = rest;
        }
        Ok(())
    }

    /// Writes `\n` if the last line is unfinished.
    fn end_line(&mut self) -> io::Result<()> {
        if !self.at_line_start {
            self.out.write_all(b"\n")?;
            self.bytes_written += 1;
            self.at_line_start = true;
        }
        Ok(())
    }
}

/// The thread that starts the writeback of large logs (see
/// [`RunLogWriter::flush`]); `None` when it cannot be started.
fn writeback_thread() -> Option<&'static std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>> {
    type Job = Box<dyn FnOnce() + Send>;
    static THREAD: std::sync::OnceLock<Option<std::sync::mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    THREAD
        .get_or_init(|| {
            let (send, receive) = std::sync::mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("karajo-writeback".into())
                .spawn(move || {
                    for job in receive {
                        job();
                    }
                })
                .ok()
                .map(|_| send)
        })
        .as_ref()
}

/// Marks an interrupted `.running` log failed; see [`scan`].
/// Closes a log a previous karajo left `.running` (a service instance it did not see
/// end): appends `line` (prefixed, at `now`) and renames it to `status`. Returns the
/// final path; `None` when there is no such running log (closed already).
pub fn close_leftover(
    dir: &Path,
    kind: JobKind,
    id: &JobId,
    counter: u64,
    status: RunStatus,
    line: &str,
    now: Timestamp,
) -> io::Result<Option<PathBuf>> {
    let path = dir.join(file_name(id, counter, RunStatus::Running));
    let context = |e| io_context(e, "close leftover log", &path);
    let mut file = match OpenOptions::new().read(true).append(true).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(context(e)),
    };
    append_last_line(&mut file, kind, id, now, line).map_err(context)?;
    file.sync_all().map_err(context)?;
    let done = dir.join(file_name(id, counter, status));
    rename_no_replace(&path, &done)?;
    sync_dir(dir)?;
    Ok(Some(done))
}

/// Appends `line` with its prefix at `now` to a log opened for reading and appending,
/// ending a cut last line first.
fn append_last_line(
    file: &mut File,
    kind: JobKind,
    id: &JobId,
    now: Timestamp,
    line: &str,
) -> io::Result<()> {
    let len = file.metadata()?.len();
    let mut tail = Vec::new();
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::End(-1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            tail.push(b'\n');
        }
    }
    tail.extend_from_slice(framing::line_prefix(kind, id, now).as_bytes());
    tail.extend_from_slice(line.as_bytes());
    tail.push(b'\n');
    file.write_all(&tail)
}

fn recover(
    path: &Path,
    kind: JobKind,
    id: &JobId,
    counter: u64,
    now: Timestamp,
) -> io::Result<LogEntry> {
    let context = |e| io_context(e, "recover interrupted log", path);
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
        .map_err(context)?;
    let mtime = file
        .metadata()
        .and_then(|m| m.modified())
        .map_err(context)?;
    append_last_line(&mut file, kind, id, now, &framing::interrupted(kind, id)).map_err(context)?;
    // The run's last activity is when it stopped writing, not now; best effort.
    let _ = file.set_modified(mtime);
    file.sync_all().map_err(context)?;
    drop(file);
    let failed = path.with_file_name(file_name(id, counter, RunStatus::Failed));
    rename_no_replace(path, &failed)?;
    Ok(LogEntry {
        counter,
        status: RunStatus::Failed,
        path: failed,
        modified: timestamp(mtime).map_err(context)?,
        facts: RunFacts::default(),
    })
}

/// Parses `<id>.<counter>.<status>` for job `id`; `None` for any other name.
pub fn parse_name(name: &str, id: &str) -> Option<(u64, RunStatus)> {
    let mut fields = name.split('.');
    let (Some(first), Some(counter), Some(status), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return None;
    };
    if first != id
        || counter.is_empty()
        || counter.starts_with('0')
        || !counter.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let counter = counter.parse().ok()?;
    let status = RunStatus::parse(status)?;
    (status.is_final() || status == RunStatus::Running).then_some((counter, status))
}

/// A file's modification time.
pub(super) fn modified_of(meta: &fs::Metadata) -> io::Result<Timestamp> {
    meta.modified().and_then(timestamp)
}

fn timestamp(t: SystemTime) -> io::Result<Timestamp> {
    Timestamp::try_from(t).map_err(io::Error::other)
}

/// The index of the first `\n` in `hay`, scanning 16 bytes at a time.
fn find_newline(hay: &[u8]) -> Option<usize> {
    const LO: u128 = u128::from_ne_bytes([0x01; 16]);
    const HI: u128 = u128::from_ne_bytes([0x80; 16]);
    const NL: u128 = u128::from_ne_bytes([b'\n'; 16]);
    let (words, tail) = hay.as_chunks::<16>();
    for (i, word) in words.iter().enumerate() {
        // A byte of `x` is zero where `word` has '\n'. The classic "has zero byte"
        // test may flag bytes above a real zero, but never below the first one, so
        // the lowest flagged byte is exact (bytes are read little-endian).
        let x = u128::from_le_bytes(*word) ^ NL;
        let flagged = x.wrapping_sub(LO) & !x & HI;
        if flagged != 0 {
            return Some(i * 16 + (flagged.trailing_zeros() / 8) as usize);
        }
    }
    tail.iter()
        .position(|&b| b == b'\n')
        .map(|p| words.len() * 16 + p)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::clock::ManualClock;

    const P: &str = "2023-01-09 00:00:00 UTC job: srht: ";

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn srht() -> JobId {
        JobId::from_raw("srht")
    }

    fn clock_at(s: &str) -> Arc<ManualClock> {
        Arc::new(ManualClock::new(ts(s)))
    }

    fn set_mtime(path: &Path, at: &str) {
        let f = OpenOptions::new().write(true).open(path).unwrap();
        f.set_modified(SystemTime::from(ts(at))).unwrap();
    }

    #[test]
    fn read_tail_starts_at_a_line_and_depends_only_on_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        fs::write(&path, "aaaa\nbbbb\ncccc\nlonglonglong").unwrap();
        let mut file = File::open(&path).unwrap();
        let mut tail = |upto, limit| {
            let (from, bytes) = read_tail(&mut file, upto, limit).unwrap();
            (from, String::from_utf8(bytes).unwrap())
        };
        // Fits: everything up to `upto`.
        assert_eq!(tail(10, 10), (0, "aaaa\nbbbb\n".into()));
        assert_eq!(tail(0, 4), (0, String::new()));
        // The window starts a line: kept whole.
        assert_eq!(tail(15, 10), (5, "bbbb\ncccc\n".into()));
        // Starts inside a line: from the next one.
        assert_eq!(tail(15, 8), (10, "cccc\n".into()));
        assert_eq!(tail(15, 6), (10, "cccc\n".into()));
        // No line break to cut at: the last `limit` bytes.
        assert_eq!(tail(27, 8), (19, "longlong".into()));
        // A line break only at the very end of the window: the last `limit` bytes.
        assert_eq!(tail(15, 3), (12, "cc\n".into()));
        // Past the end: what there is.
        assert_eq!(tail(100, 200), (0, "aaaa\nbbbb\ncccc\nlonglonglong".into()));
    }

    fn names(paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn names_are_parsed_strictly() {
        let ok = [
            ("srht.1.success", 1, RunStatus::Success),
            ("srht.12.failed", 12, RunStatus::Failed),
            ("srht.3.canceled", 3, RunStatus::Canceled),
            ("srht.4.paused", 4, RunStatus::Paused),
            ("srht.5.running", 5, RunStatus::Running),
        ];
        for (name, counter, status) in ok {
            assert_eq!(parse_name(name, "srht"), Some((counter, status)), "{name}");
        }
        for name in [
            "other.5.success.bak",
            "other.5.success",
            "x.conf",
            "srht.abc.success",
            "srht.3",
            "srht",
            "srht.0.success",
            "srht.03.success",
            "srht.+3.success",
            "srht.3.started",
            "srht.3.fail",
            "srht.3.success.bak",
            "srht.99999999999999999999.success",
            ".srht.1.success",
        ] {
            assert_eq!(parse_name(name, "srht"), None, "{name}");
        }
    }

    #[test]
    fn scan_accepts_logs_and_keeps_everything_else() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (name, at) in [
            ("srht.1.success", "2023-01-01T00:00:00Z"),
            ("srht.10.paused", "2023-01-03T00:00:00Z"),
            ("srht.2.failed", "2023-01-04T10:00:00.6Z"),
            ("other.5.success.bak", "2023-02-01T00:00:00Z"),
            ("other.50.success", "2023-02-01T00:00:00Z"),
            ("x.conf", "2023-02-01T00:00:00Z"),
            ("srht.abc.success", "2023-02-01T00:00:00Z"),
            ("srht.3", "2023-02-01T00:00:00Z"),
        ] {
            fs::write(d.join(name), name).unwrap();
            set_mtime(&d.join(name), at);
        }
        fs::create_dir(d.join("srht.11.success")).unwrap();
        let s = scan(d, JobKind::Exec, &srht(), ts("2023-03-01T00:00:00Z")).unwrap();
        let counters: Vec<_> = s.entries.iter().map(|e| (e.counter, e.status)).collect();
        assert_eq!(
            counters,
            [
                (1, RunStatus::Success),
                (2, RunStatus::Failed),
                (10, RunStatus::Paused)
            ]
        );
        assert_eq!(s.max_counter, 10);
        assert_eq!(s.newest_status, Some(RunStatus::Paused));
        assert_eq!(s.last_run, Some(ts("2023-01-04T10:00:01Z")));
        assert!(s.recovered.is_empty());
        assert_eq!(
            names(&s.ignored),
            [
                "other.5.success.bak",
                "other.50.success",
                "srht.11.success",
                "srht.3",
                "srht.abc.success",
                "x.conf"
            ]
        );
        for name in names(&s.ignored) {
            assert!(d.join(name).exists());
        }
    }

    #[test]
    fn scan_of_missing_or_empty_dir() {
        let dir = tempfile::tempdir().unwrap();
        let s = scan(
            &dir.path().join("nope"),
            JobKind::Exec,
            &srht(),
            Timestamp::UNIX_EPOCH,
        )
        .unwrap();
        assert_eq!(s, LogScan::default());
        let s = scan(dir.path(), JobKind::Exec, &srht(), Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(s.last_run, None);
        assert_eq!(s.newest_status, None);
        assert_eq!(s.max_counter, 0);
    }

    #[test]
    fn interrupted_run_is_recovered_as_failed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("srht.1.success"), "").unwrap();
        set_mtime(&d.join("srht.1.success"), "2023-01-01T00:00:00Z");
        let running = d.join("srht.2.running");
        fs::write(&running, format!("{P}=== BEGIN\n{P}half a li")).unwrap();
        set_mtime(&running, "2023-01-09T00:00:00Z");
        let s = scan(d, JobKind::Exec, &srht(), ts("2023-01-10T08:00:00Z")).unwrap();
        assert!(!running.exists());
        let failed = d.join("srht.2.failed");
        assert_eq!(
            fs::read_to_string(&failed).unwrap(),
            format!(
                "{P}=== BEGIN\n{P}half a li\n2023-01-10 08:00:00 UTC job: srht: \
                 !!! job: srht: interrupted: karajo stopped before the run finished\n"
            )
        );
        assert_eq!(s.recovered.len(), 1);
        assert_eq!(s.recovered[0].path, failed);
        assert_eq!(s.recovered[0].status, RunStatus::Failed);
        assert_eq!(s.newest_status, Some(RunStatus::Failed));
        assert_eq!(s.max_counter, 2);
        // The run's own time, not the recovery's.
        assert_eq!(s.last_run, Some(ts("2023-01-09T00:00:00Z")));

        // An empty running log (crash right after creation) gets just the line.
        fs::write(d.join("srht.3.running"), "").unwrap();
        let s = scan(d, JobKind::Http, &srht(), ts("2023-01-10T08:00:00Z")).unwrap();
        assert_eq!(
            fs::read_to_string(d.join("srht.3.failed")).unwrap(),
            "2023-01-10 08:00:00 UTC job_http: srht: \
             !!! job_http: srht: interrupted: karajo stopped before the run finished\n"
        );
        assert_eq!(s.entries.len(), 3);
    }

    #[test]
    fn facts_come_back_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(
            d.join("srht.1.failed"),
            format!(
                "{P}=== BEGIN\n{P}=== TRIGGER: webhook\n{P}\n{P}--- Execute  0: false\n\
                 no prefix\n2023-01-09 00:01:05 UTC job: srht: !!! job: srht: exit status 3\n"
            ),
        )
        .unwrap();
        fs::write(
            d.join("srht.2.success"),
            format!("{P}=== BEGIN\n{P}=== TRIGGER: api\n{P}--- Execute  0: true\n{P}=== DONE\n"),
        )
        .unwrap();
        // A log of karajo (Go): no trigger, no closing line.
        fs::write(d.join("srht.3.success"), format!("{P}hello\n")).unwrap();
        let s = scan(d, JobKind::Exec, &srht(), ts("2023-03-01T00:00:00Z")).unwrap();
        let facts: Vec<_> = s.entries.iter().map(|e| e.facts).collect();
        assert_eq!(
            facts[0],
            RunFacts {
                trigger: Some(Trigger::Webhook),
                started: Some(ts("2023-01-09T00:00:00Z")),
                ended: Some(ts("2023-01-09T00:01:05Z")),
                exit_code: Some(3),
            }
        );
        assert_eq!(facts[1].trigger, Some(Trigger::Api));
        assert_eq!(facts[1].exit_code, Some(0));
        assert_eq!(facts[2].trigger, None);
        assert_eq!(facts[2].exit_code, None);
        assert_eq!(facts[2].ended, Some(ts("2023-01-09T00:00:00Z")));
    }

    fn entry(dir: &Path, counter: u64, status: RunStatus) -> LogEntry {
        let path = dir.join(file_name(&srht(), counter, status));
        fs::write(&path, "x").unwrap();
        LogEntry {
            counter,
            status,
            path,
            modified: Timestamp::UNIX_EPOCH,
            facts: RunFacts::default(),
        }
    }

    #[test]
    fn prune_keeps_the_newest_and_never_the_running_one() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut entries: Vec<_> = (1..=6)
            .map(|n| entry(d, n, RunStatus::Success))
            .chain([entry(d, 7, RunStatus::Running)])
            .collect();
        let removed = prune(&mut entries, 3).unwrap();
        assert_eq!(
            removed,
            (1..=4)
                .map(|n| d.join(file_name(&srht(), n, RunStatus::Success)))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            entries.iter().map(|e| e.counter).collect::<Vec<_>>(),
            [5, 6, 7]
        );
        for path in &removed {
            assert!(!path.exists());
        }
        for e in &entries {
            assert!(e.path.exists());
        }
        // keep 0 still spares the running log.
        let removed = prune(&mut entries, 0).unwrap();
        assert_eq!(removed.len(), 2);
        assert_eq!(entries.len(), 1);
        assert!(d.join("srht.7.running").exists());
        // Already-deleted files count as deleted.
        let mut gone = vec![
            entry(d, 8, RunStatus::Failed),
            entry(d, 9, RunStatus::Failed),
        ];
        fs::remove_file(&gone[0].path).unwrap();
        assert_eq!(prune(&mut gone, 1).unwrap().len(), 1);
    }

    #[test]
    fn find_and_read_follow_a_finishing_run() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let clock = clock_at("2023-01-09T00:00:00Z");
        assert_eq!(find(d, &srht(), 1).unwrap(), None);
        assert!(find(d, &JobId::from_raw("../etc"), 1).is_err());
        let mut w = RunLogWriter::create(d, JobKind::Exec, &srht(), 1, clock).unwrap();
        w.line("=== BEGIN").unwrap();
        w.flush().unwrap();
        let found = find(d, &srht(), 1).unwrap().unwrap();
        assert_eq!(found.status, RunStatus::Running);
        assert_eq!(read(&found).unwrap(), format!("{P}=== BEGIN\n").as_bytes());
        w.write_output(b"more").unwrap();
        w.flush().unwrap();
        assert_eq!(
            read(&found).unwrap(),
            format!("{P}=== BEGIN\n{P}more").as_bytes()
        );
        w.finish(RunStatus::Success).unwrap();
        // The stale running entry still reads: it follows the rename.
        let (_, now) = open(&found).unwrap();
        assert_eq!(now.status, RunStatus::Success);
        assert_eq!(
            read(&found).unwrap(),
            format!("{P}=== BEGIN\n{P}more\n").as_bytes()
        );
        let found = find(d, &srht(), 1).unwrap().unwrap();
        assert_eq!(found.status, RunStatus::Success);
        assert_eq!(found.path, d.join("srht.1.success"));
    }

    #[test]
    fn a_large_output_is_complete_after_its_writeback_was_started_on_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let clock = clock_at("2023-01-09T00:00:00Z");
        let mut w = RunLogWriter::create(d, JobKind::Exec, &srht(), 1, clock).unwrap();
        let line = [b"x".repeat(99), b"\n".to_vec()].concat();
        let chunk = line.repeat(640); // 64,000 bytes
        let chunks = (WRITEBACK_STEP as usize * 5 / 2) / chunk.len() + 1;
        for _ in 0..chunks {
            w.write_output(&chunk).unwrap();
            w.flush().unwrap();
        }
        assert!(w.writeback.1 >= 2 * WRITEBACK_STEP, "{:?}", w.writeback);
        let written = w.bytes_written();
        let path = w.finish(RunStatus::Success).unwrap();
        let content = fs::read(&path).unwrap();
        assert_eq!(content.len() as u64, written);
        let prefixed = [P.as_bytes(), &line].concat();
        assert!(
            content
                .chunks(prefixed.len())
                .all(|l| l == prefixed.as_slice())
        );
        assert_eq!(content.len(), prefixed.len() * 640 * chunks);
    }

    #[test]
    fn writer_prefixes_every_line() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let clock = clock_at("2023-01-09T00:00:00Z");
        let mut w = RunLogWriter::create(d, JobKind::Exec, &srht(), 1, clock).unwrap();
        assert_eq!(w.path(), d.join("srht.1.running"));
        w.line("=== BEGIN").unwrap();
        w.line("").unwrap();
        // One line split over three chunks.
        w.write_output(b"hel").unwrap();
        w.write_output(b"lo wor").unwrap();
        w.write_output(b"ld\n").unwrap();
        // Many lines in one chunk, ending mid-line.
        w.write_output(b"a\nb\n\nc").unwrap();
        // A line() after a partial line ends that line first.
        w.line("=== DONE\n").unwrap();
        w.write_output(b"no newline at the end").unwrap();
        let written = w.bytes_written();
        let path = w.finish(RunStatus::Success).unwrap();
        assert_eq!(path, d.join("srht.1.success"));
        assert!(!d.join("srht.1.running").exists());
        let content = fs::read_to_string(&path).unwrap();
        assert_eq!(
            content,
            format!(
                "{P}=== BEGIN\n{P}\n{P}hello world\n{P}a\n{P}b\n{P}\n{P}c\n{P}=== DONE\n\
                 {P}no newline at the end\n"
            )
        );
        assert_eq!(written + 1, content.len() as u64);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn writer_prefix_follows_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock_at("2023-01-09T00:00:00Z");
        let mut w =
            RunLogWriter::create(dir.path(), JobKind::Http, &srht(), 4, clock.clone()).unwrap();
        w.write_output(b"one\ntw").unwrap();
        clock.set(ts("2023-01-09T00:00:01.7Z"));
        // The rest of a line keeps the line's prefix; the next line gets the new time.
        w.write_output(b"o\nthree\n").unwrap();
        clock.set(ts("2024-02-29T13:14:15Z"));
        w.line("=== DONE").unwrap();
        let path = w.finish(RunStatus::Failed).unwrap();
        assert_eq!(
            fs::read_to_string(path).unwrap(),
            "2023-01-09 00:00:00 UTC job_http: srht: one\n\
             2023-01-09 00:00:00 UTC job_http: srht: two\n\
             2023-01-09 00:00:02 UTC job_http: srht: three\n\
             2024-02-29 13:14:15 UTC job_http: srht: === DONE\n"
        );
    }

    #[test]
    fn a_counter_is_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let clock = clock_at("2023-01-09T00:00:00Z");
        let w = RunLogWriter::create(d, JobKind::Exec, &srht(), 1, clock.clone()).unwrap();
        let err = RunLogWriter::create(d, JobKind::Exec, &srht(), 1, clock.clone()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(err.to_string().contains("srht.1.running"), "{err}");
        // A paused run: an empty file.
        let path = w.finish(RunStatus::Paused).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"");
        let err = RunLogWriter::create(d, JobKind::Exec, &srht(), 1, clock.clone()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        let err = RunLogWriter::create(d, JobKind::Exec, &srht(), 0, clock.clone()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let w = RunLogWriter::create(d, JobKind::Exec, &srht(), 2, clock).unwrap();
        let err = w.finish(RunStatus::Running).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn finish_never_replaces_a_log() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let clock = clock_at("2023-01-09T00:00:00Z");
        let w = RunLogWriter::create(d, JobKind::Exec, &srht(), 1, clock).unwrap();
        fs::write(d.join("srht.1.failed"), "evidence").unwrap();
        let err = w.finish(RunStatus::Failed).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(d.join("srht.1.failed")).unwrap(), b"evidence");
        assert!(d.join("srht.1.running").exists());
    }

    #[test]
    fn large_chunks_pass_through() {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock_at("2023-01-09T00:00:00Z");
        let mut w = RunLogWriter::create(dir.path(), JobKind::Exec, &srht(), 1, clock).unwrap();
        let big = vec![b'x'; 3 * WRITE_BUFFER + 7];
        w.write_output(&big).unwrap();
        w.write_output(b"\n").unwrap();
        let path = w.finish(RunStatus::Success).unwrap();
        let content = fs::read(path).unwrap();
        assert_eq!(content.len(), P.len() + big.len() + 1);
        assert!(content.starts_with(P.as_bytes()));
    }

    proptest! {
        #[test]
        fn find_newline_matches_a_plain_search(
            hay in proptest::collection::vec(
                prop_oneof![Just(b'\n'), Just(0u8), Just(0x0b), Just(0x8a), any::<u8>()],
                0..100,
            ),
            fill in 0usize..80,
        ) {
            let mut long = vec![b'a'; fill];
            long.extend_from_slice(&hay);
            for h in [&hay[..], &long[..]] {
                prop_assert_eq!(find_newline(h), h.iter().position(|&b| b == b'\n'));
            }
        }

        #[test]
        fn any_chunking_keeps_the_bytes_and_prefixes_every_line(
            data in proptest::collection::vec(
                prop_oneof![3 => any::<u8>(), 1 => Just(b'\n')],
                0..600,
            ),
            mut cuts in proptest::collection::vec(0usize..600, 0..12),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let clock = clock_at("2023-01-09T00:00:00Z");
            let mut w =
                RunLogWriter::create(dir.path(), JobKind::Exec, &srht(), 1, clock).unwrap();
            cuts.push(0);
            cuts.push(data.len());
            cuts.iter_mut().for_each(|c| *c = (*c).min(data.len()));
            cuts.sort_unstable();
            for pair in cuts.windows(2) {
                w.write_output(&data[pair[0]..pair[1]]).unwrap();
            }
            let path = w.finish(RunStatus::Success).unwrap();
            let content = fs::read(path).unwrap();
            let mut expected = data.clone();
            if expected.last().is_some_and(|&b| b != b'\n') {
                expected.push(b'\n');
            }
            let mut stripped = Vec::new();
            for line in content.split_inclusive(|&b| b == b'\n') {
                prop_assert!(line.starts_with(P.as_bytes()));
                prop_assert!(line.ends_with(b"\n"));
                stripped.extend_from_slice(&line[P.len()..]);
            }
            prop_assert_eq!(stripped, expected);
        }
    }
}
