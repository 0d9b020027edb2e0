//! Collecting other nodes' run logs (cluster spec 7.6 "Collector"): one ordered
//! consumer on `<prefix>.log.>` from the persisted cursor + 1 appends each run's chunks
//! to `<id>.<counter>.running` in the job's log directory and renames the file to
//! `<id>.<counter>.<status>` at the run's final message, so every node holds the same,
//! Go-compatible log files. Messages of this node's own runs are skipped: it wrote them.
//!
//! Applying a message twice is harmless: a chunk says at which byte of the log it
//! starts (`Karajo-Offset`), and the file's length says what is applied, so a replay
//! after a crash, or a chunk the shipper sent twice, appends nothing. This module
//! writes log files only; retention, the cursor's persistence and the `log_gap` event
//! are the caller's, from what [`Collector::next`] and [`Collector::start`] report.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig};
use async_nats::jetstream::{self, Context};
use bytes::Bytes;
use futures_util::StreamExt as _;

use crate::cluster::NodeName;
use crate::cluster::nats::layout::Names;
use crate::cluster::nats::logship::{LogError, NODE_HEADER, OFFSET_HEADER, STATUS_HEADER, bounded};
use crate::job::{JobId, JobKind, RunStatus};
use crate::store::run_log;
use crate::store::{FILE_MODE, create_private_dir, is_plain_id, rename_no_replace, sync_dir};

/// The most bytes held back for one file while the chunks before them are missing.
/// Past it, the held chunks are written as they are and the missing bytes stay out.
const HOLD_MAX: usize = 4 * 1024 * 1024;
/// How many finished runs are remembered, so that their replayed chunks are skipped
/// without looking at the disk.
const DONE_REMEMBERED: usize = 1024;

/// Where the log files of a job go: its log directory, or `None` when the job is not
/// defined on this node (its messages are skipped).
pub type LogDirFn = Box<dyn Fn(JobKind, &JobId) -> Option<PathBuf> + Send + Sync>;

/// The cursor asked for is older than the stream's first message: the node was away
/// longer than the stream keeps logs. The collector starts at `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogGap {
    /// The sequence the cursor asked for (cursor + 1).
    pub wanted: u64,
    /// The first sequence still in the stream, where collecting starts.
    pub first: u64,
}

/// Why a message changed no file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// It is from this node's own run.
    OwnNode,
    /// Its subject or headers are not a run log's.
    NotALog,
    /// The job is not defined on this node.
    UnknownJob,
    /// The run's log is already final here.
    AlreadyFinal,
}

/// What one log message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collected {
    /// Nothing.
    Skipped {
        /// The message's stream sequence.
        seq: u64,
        /// Why.
        why: Skip,
    },
    /// A chunk: `appended` new bytes reached the file (0 for a chunk applied before),
    /// or the chunk waits in memory for missing chunks before it (`held`).
    Chunk {
        /// The message's stream sequence.
        seq: u64,
        /// The job's kind.
        kind: JobKind,
        /// The job.
        job: JobId,
        /// The run's counter.
        counter: u64,
        /// Bytes appended to the file.
        appended: u64,
        /// Whether the chunk is held back.
        held: bool,
    },
    /// The final message: the file is renamed to its status.
    Finished {
        /// The message's stream sequence.
        seq: u64,
        /// The job's kind.
        kind: JobKind,
        /// The job.
        job: JobId,
        /// The run's counter.
        counter: u64,
        /// The run's status.
        status: RunStatus,
        /// The renamed file.
        path: PathBuf,
        /// Bytes of the run's log that never arrived (0 normally).
        missing: u64,
    },
}

type RunKey = (JobKind, JobId, u64);

/// A `.running` file being collected.
#[derive(Debug)]
struct OpenLog {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    /// The log offset up to which the file holds the log (its length plus `missing`).
    end: u64,
    /// Bytes of the log that never arrived and are not in the file.
    missing: u64,
    /// Chunks that start past `end`: offset → (stream sequence, bytes).
    held: BTreeMap<u64, (u64, Bytes)>,
    held_bytes: usize,
}

impl OpenLog {
    /// Appends what of the chunk at `offset` is new; returns how many bytes.
    fn apply(&mut self, offset: u64, bytes: &[u8]) -> io::Result<u64> {
        let end = offset + bytes.len() as u64;
        if end <= self.end {
            return Ok(0);
        }
        let skip = usize::try_from(self.end.saturating_sub(offset)).unwrap_or(usize::MAX);
        let new = bytes.get(skip..).unwrap_or_default();
        if offset > self.end {
            self.missing += offset - self.end;
        }
        self.file.write_all(new)?;
        self.end = end;
        Ok(new.len() as u64)
    }

    /// Applies the held chunks that now follow the file, or (with `force`) all of
    /// them, the missing bytes left out.
    fn drain(&mut self, force: bool) -> io::Result<u64> {
        let mut appended = 0;
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() > self.end && !force {
                break;
            }
            let (offset, (_, bytes)) = entry.remove_entry();
            self.held_bytes -= bytes.len();
            appended += self.apply(offset, &bytes)?;
        }
        Ok(appended)
    }
}

/// The log collector of one node. Call [`Collector::next`] in a loop; persist
/// [`Collector::cursor`] every second or every 100 messages and at shutdown, and
/// start the next collector from it. After an error, start a new collector from the
/// cursor.
pub struct Collector {
    node: String,
    subject_prefix: String,
    log_dir: LogDirFn,
    messages: Ordered,
    stream: String,
    /// The last stream sequence handled.
    cursor: u64,
    open: HashMap<RunKey, OpenLog>,
    done: VecDeque<RunKey>,
    done_set: HashSet<RunKey>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("node", &self.node)
            .field("stream", &self.stream)
            .field("cursor", &self.cursor)
            .field("open", &self.open.len())
            .finish_non_exhaustive()
    }
}

impl Collector {
    /// Starts collecting after `cursor` (0: from the beginning) for node `node`, with
    /// an ordered consumer on every log subject. When `cursor + 1` is older than the
    /// stream's first message, collecting starts at the first one and the gap is
    /// returned for the caller to report (`log_gap`).
    pub async fn start(
        js: &Context,
        names: &Names,
        node: &NodeName,
        cursor: u64,
        log_dir: LogDirFn,
        op_timeout: Duration,
    ) -> Result<(Self, Option<LogGap>), LogError> {
        let stream_name = names.logs_stream();
        let what = || format!("collect logs from stream {stream_name}");
        let stream = bounded(what, op_timeout, js.get_stream(&stream_name)).await?;
        let first = stream.cached_info().state.first_sequence;
        let wanted = cursor.saturating_add(1);
        let (start, gap) = if wanted < first {
            (first, Some(LogGap { wanted, first }))
        } else {
            (wanted, None)
        };
        let consumer = bounded(
            what,
            op_timeout,
            stream.create_consumer(OrderedConfig {
                filter_subject: names.all_logs(),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
                ..Default::default()
            }),
        )
        .await?;
        let messages = bounded(what, op_timeout, consumer.messages()).await?;
        let collector = Self {
            node: node.as_str().to_string(),
            subject_prefix: format!("{}.log.", names.prefix),
            log_dir,
            messages,
            stream: stream_name.clone(),
            cursor: start - 1,
            open: HashMap::new(),
            done: VecDeque::new(),
            done_set: HashSet::new(),
        };
        Ok((collector, gap))
    }

    /// The cursor to persist: every message up to it has been applied to the files
    /// (chunks held back for missing ones before them count as not applied yet).
    pub fn cursor(&self) -> u64 {
        self.open
            .values()
            .flat_map(|log| log.held.values().map(|(seq, _)| *seq))
            .min()
            .map_or(self.cursor, |seq| seq.saturating_sub(1).min(self.cursor))
    }

    /// Waits for the next log message and applies it. `None` when the consumer ended.
    pub async fn next(&mut self) -> Result<Option<Collected>, LogError> {
        loop {
            let message = match self.messages.next().await {
                None => return Ok(None),
                Some(Err(err)) => {
                    return Err(LogError::Nats {
                        what: format!("collect logs from stream {}", self.stream),
                        source: Box::new(err),
                    });
                }
                Some(Ok(message)) => message,
            };
            let seq = message
                .info()
                .map(|info| info.stream_sequence)
                .map_err(|source| LogError::Nats {
                    what: format!("collect logs from stream {}", self.stream),
                    source,
                })?;
            // A recreated ordered consumer may go back; what is behind the cursor is done.
            if seq <= self.cursor {
                continue;
            }
            let collected = self.apply(seq, &message)?;
            self.cursor = seq;
            return Ok(Some(collected));
        }
    }

    fn apply(&mut self, seq: u64, message: &jetstream::Message) -> Result<Collected, LogError> {
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_string())
        };
        let skipped = |why| Ok(Collected::Skipped { seq, why });
        if header(NODE_HEADER).as_deref() == Some(self.node.as_str()) {
            return skipped(Skip::OwnNode);
        }
        let Some((kind, job, counter)) = self.parse_subject(message.subject.as_str()) else {
            return skipped(Skip::NotALog);
        };
        let Some(dir) = (self.log_dir)(kind, &job) else {
            return skipped(Skip::UnknownJob);
        };
        let key = (kind, job.clone(), counter);
        if self.done_set.contains(&key) {
            return skipped(Skip::AlreadyFinal);
        }
        let status = header(STATUS_HEADER);
        let offset = header(OFFSET_HEADER).and_then(|v| v.parse::<u64>().ok());
        let final_status = match status.as_deref().map(RunStatus::parse) {
            None => None,
            Some(Some(status)) if status.is_final() => Some(status),
            Some(_) => return skipped(Skip::NotALog),
        };
        if !self.open.contains_key(&key) {
            match open_log(&dir, &job, counter)? {
                Some(log) => {
                    self.open.insert(key.clone(), log);
                }
                None => {
                    self.remember_done(key);
                    return skipped(Skip::AlreadyFinal);
                }
            }
        }
        let Some(log) = self.open.get_mut(&key) else {
            return skipped(Skip::NotALog);
        };
        let io_err = |path: &Path, source| LogError::Io {
            what: format!("collect log {}", path.display()),
            source,
        };
        match final_status {
            None => {
                let offset = offset.unwrap_or(log.end);
                let (appended, held) = if offset > log.end {
                    log.held_bytes += message.payload.len();
                    log.held
                        .entry(offset)
                        .or_insert_with(|| (seq, message.payload.clone()));
                    if log.held_bytes > HOLD_MAX {
                        tracing::warn!(path = %log.path.display(), "log chunks missing; writing the later ones without them");
                        (log.drain(true).map_err(|e| io_err(&log.path, e))?, false)
                    } else {
                        (0, true)
                    }
                } else {
                    let appended = log
                        .apply(offset, &message.payload)
                        .and_then(|n| Ok(n + log.drain(false)?))
                        .map_err(|e| io_err(&log.path, e))?;
                    (appended, false)
                };
                Ok(Collected::Chunk {
                    seq,
                    kind,
                    job,
                    counter,
                    appended,
                    held,
                })
            }
            Some(status) => {
                let Some(mut log) = self.open.remove(&key) else {
                    return skipped(Skip::NotALog);
                };
                log.drain(true).map_err(|e| io_err(&log.path, e))?;
                if let Some(total) = offset.filter(|total| *total > log.end) {
                    log.missing += total - log.end;
                }
                log.file.sync_all().map_err(|e| io_err(&log.path, e))?;
                let done = log.dir.join(run_log::file_name(&job, counter, status));
                rename_no_replace(&log.path, &done)
                    .and_then(|()| sync_dir(&log.dir))
                    .map_err(|e| io_err(&log.path, e))?;
                if log.missing > 0 {
                    tracing::warn!(path = %done.display(), missing = log.missing, "collected log is missing bytes");
                }
                self.remember_done(key);
                Ok(Collected::Finished {
                    seq,
                    kind,
                    job,
                    counter,
                    status,
                    path: done,
                    missing: log.missing,
                })
            }
        }
    }

    /// `<prefix>.log.<kind>.<id>.<counter>` → its parts, for the kinds that run in a
    /// cluster and ids that can name a file.
    fn parse_subject(&self, subject: &str) -> Option<RunKey> {
        let rest = subject.strip_prefix(&self.subject_prefix)?;
        let mut parts = rest.split('.');
        let (kind, id, counter) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let kind = JobKind::parse(kind).filter(|k| matches!(k, JobKind::Exec | JobKind::Http))?;
        let counter = counter.parse::<u64>().ok().filter(|c| *c > 0)?;
        is_plain_id(id).then(|| (kind, JobId::from_raw(id), counter))
    }

    fn remember_done(&mut self, key: RunKey) {
        if self.done_set.insert(key.clone()) {
            self.done.push_back(key);
        }
        while self.done.len() > DONE_REMEMBERED {
            if let Some(old) = self.done.pop_front() {
                self.done_set.remove(&old);
            }
        }
    }
}

/// Opens run `counter`'s `.running` file in `dir` for appending, creating it (and
/// `dir`) when there is none; `None` when the run's log is already final here.
fn open_log(dir: &Path, job: &JobId, counter: u64) -> Result<Option<OpenLog>, LogError> {
    let io_err = |path: &Path, source| LogError::Io {
        what: format!("collect log {}", path.display()),
        source,
    };
    let existing = run_log::find(dir, job, counter).map_err(|e| io_err(dir, e))?;
    if existing
        .as_ref()
        .is_some_and(|entry| entry.status != RunStatus::Running)
    {
        return Ok(None);
    }
    if existing.is_none() {
        create_private_dir(dir).map_err(|e| io_err(dir, e))?;
    }
    let path = dir.join(run_log::file_name(job, counter, RunStatus::Running));
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(&path)
        .map_err(|e| io_err(&path, e))?;
    let end = file.metadata().map_err(|e| io_err(&path, e))?.len();
    Ok(Some(OpenLog {
        dir: dir.to_path_buf(),
        path,
        file,
        end,
        missing: 0,
        held: BTreeMap::new(),
        held_bytes: 0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> OpenLog {
        open_log(dir, &JobId::from_raw("a"), 1).unwrap().unwrap()
    }

    #[test]
    fn chunks_apply_once_whatever_the_order() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = open(tmp.path());
        assert_eq!(log.apply(0, b"hello ").unwrap(), 6);
        assert_eq!(log.apply(0, b"hello ").unwrap(), 0);
        assert_eq!(log.apply(3, b"lo wor").unwrap(), 3);
        log.held.insert(11, (9, Bytes::from_static(b"!")));
        log.held_bytes = 1;
        assert_eq!(log.drain(false).unwrap(), 0);
        assert_eq!(log.apply(8, b"rld").unwrap(), 2);
        assert_eq!(log.drain(false).unwrap(), 1);
        assert_eq!(std::fs::read(&log.path).unwrap(), b"hello world!");
        // Reopened after a crash, the file's length says what is applied.
        drop(log);
        let mut log = open(tmp.path());
        assert_eq!(log.apply(6, b"world!").unwrap(), 0);
        assert_eq!(log.missing, 0);
    }

    #[test]
    fn a_final_log_is_not_reopened() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.1.success"), b"x").unwrap();
        assert!(
            open_log(tmp.path(), &JobId::from_raw("a"), 1)
                .unwrap()
                .is_none()
        );
    }
}
