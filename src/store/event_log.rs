//! The event log (spec 1.4): an append-only record of what happened (monitor
//! transitions, service lifecycle steps, events posted by users and watchTower
//! clients, karajo's own notes) in one JSON-lines file per UTC day,
//! `var/log/karajo/event/YYYY-MM-DD.jsonl`. This room owns the record format
//! ([`EventRecord`]), its single writer ([`EventLog`]) and its reader ([`query_dir`],
//! [`EventLog::query`]). It does not decide which events exist or who may post them:
//! callers build a [`NewEvent`] and the API maps [`InvalidEvent`] to 400
//! `ERR_EVENT_INVALID`. It is not where monitor pings live (those are run logs).
//!
//! **Ids and times.** [`EventLog::record`] stamps an event with a UUID v7 and sets
//! its `time` to the id's millisecond, so times have millisecond precision and id
//! order, time order and day-file order agree: an event goes to the file of its own
//! time's UTC date, and lines follow each other in id order (markers included). Ids only grow, across restarts too (the newest id is read back at
//! start); a wall clock that steps back by up to a minute holds times still until it
//! catches up, a larger step back is believed.
//!
//! **Writing.** [`EventLog::record`] never waits: it puts the event on a bounded
//! queue that one writer task drains, and each line reaches the file with one
//! `write`. Nothing is lost silently:
//!
//! * **queue full** (more than [`EventLimits::queue`] events waiting for the disk):
//!   the event is refused with [`RecordError::QueueFull`] and counted. The writer then
//!   writes one `karajo.events_dropped` marker naming how many were refused since its
//!   last marker; it takes the id and time of the first of them, so it sits where
//!   they would have. The API should answer such a refusal with an error (503), so a
//!   client knows to retry;
//! * **day cap** (`event_day_max`): events are written while the day file is smaller
//!   than the cap. The first event that finds it at or past the cap is replaced by the
//!   day's one `karajo.events_dropped` marker (which takes its id and time); it and
//!   every later event of that day are counted and dropped. A file thus ends at most
//!   one event line and the marker past the cap. After a restart, a day file found at
//!   the cap counts as marked already;
//! * **write error** (disk full, file gone): counted and logged with `tracing`.
//!
//! All three counts, and events written per level (markers included), are in
//! [`EventLog::stats`], for `karajo_events_dropped_total` and
//! `karajo_events_total{level}`.
//!
//! **Durability.** A line is visible to queries once written; the file is fsynced at
//! most once a second, and at once by [`EventLog::flush`] and [`EventLog::close`]. A
//! crash may lose the last second; a line it cut short is ended by the writer before
//! the next one and skipped by queries.
//!
//! **Retention.** Day files whose whole day ended `event_retention` or longer ago are
//! deleted at start-up ([`EventLog::spawn`]), at each UTC midnight of the clock, and
//! when the first event of a new day arrives. Names other than `YYYY-MM-DD.jsonl` are
//! never touched. A zero `event_retention` keeps every file, a zero `event_day_max`
//! sets no cap.
//!
//! **Reading.** See [`EventQuery`] for the filters and [`query_dir`] for what a query
//! reads. [`EventLog::query`] first waits for the writer to write every event recorded
//! before it, so a client reads its own events at once.
//!
//! Time comes from the crate's [`Clock`](crate::clock::Clock), so tests drive
//! midnights and day files by hand. Files are 0600 and the directory 0700, as
//! everything under `dir_base/var`.

mod query;
mod record;
#[cfg(test)]
mod tests;
mod writer;

use std::cmp::Reverse;
use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::{mpsc, oneshot, watch};

pub use query::{
    DEFAULT_LIMIT, EventPage, EventQuery, MAX_LIMIT, parse_limit, parse_time, query_dir,
};
pub use record::{
    CUT_MARK, EventId, EventRecord, InvalidEvent, KIND_MAX, Level, MESSAGE_MAX, NewEvent,
    SERVICE_MAX, Source, check_service, cut_message, parse_level,
};

use self::record::IdGen;

/// A fresh UUID v7 for `now` (for ids outside the event log: service instances).
pub fn new_uuid_v7(now: jiff::Timestamp) -> String {
    IdGen::new(None).next(now).to_string()
}
use self::writer::{Disk, DiskConfig, Msg};
use super::{create_private_dir, io_context, sync_dir, tighten_dir};
use crate::clock::SharedClock;

/// The `kind` of karajo's markers about dropped events.
pub const DROPPED_KIND: &str = writer::DROPPED_KIND;

/// How much the event log may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLimits {
    /// `[karajo] event_day_max`: bytes per day file; 0 means no cap.
    pub day_max: u64,
    /// `[karajo] event_retention`: how long after its day ended a day file is kept;
    /// zero keeps day files for ever.
    pub retention: Duration,
    /// How many events may wait for the writer before [`EventLog::record`] refuses
    /// more (at least 1).
    pub queue: usize,
}

impl Default for EventLimits {
    /// 64 MiB a day, 720 hours, 4096 queued events.
    fn default() -> Self {
        Self {
            day_max: 64 * 1024 * 1024,
            retention: Duration::from_secs(720 * 3600),
            queue: 4096,
        }
    }
}

impl EventLimits {
    fn effective_day_max(&self) -> u64 {
        if self.day_max == 0 {
            u64::MAX
        } else {
            self.day_max
        }
    }
}

/// Why [`EventLog::record`] did not take an event. Either way the event is counted
/// as dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The writer's queue is full; a `karajo.events_dropped` marker will say how many
    /// events it refused. Trying again later can succeed.
    #[error("event log is busy: event dropped, try again")]
    QueueFull,
    /// The log was closed (karajo is stopping).
    #[error("event log is closed: event dropped")]
    Closed,
}

/// The counters the handle and the writer share.
#[derive(Debug, Default)]
struct Counters {
    /// Written events (markers included) by level, in [`Level::ALL`] order.
    written: [AtomicU64; 6],
    dropped_queue_full: AtomicU64,
    dropped_day_cap: AtomicU64,
    dropped_write_error: AtomicU64,
    dropped_closed: AtomicU64,
    corrupt_lines: AtomicU64,
}

/// The event log's counters at one moment, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventLogStats {
    /// Events written (markers included), by level in [`Level::ALL`] order.
    pub written: [u64; 6],
    /// Refused by [`EventLog::record`] because the queue was full.
    pub dropped_queue_full: u64,
    /// Dropped because their day file had reached `event_day_max`.
    pub dropped_day_cap: u64,
    /// Lost to a failed write.
    pub dropped_write_error: u64,
    /// Refused because the log was closed.
    pub dropped_closed: u64,
    /// Lines that queries skipped because they were not events.
    pub corrupt_lines: u64,
}

impl EventLogStats {
    /// Every dropped event, whatever the reason: `karajo_events_dropped_total`.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_day_cap
            + self.dropped_write_error
            + self.dropped_closed
    }

    /// Events written at `level`: `karajo_events_total{level}`.
    pub fn written_at(&self, level: Level) -> u64 {
        self.written[level.index()]
    }

    /// Events written at any level.
    pub fn written_total(&self) -> u64 {
        self.written.iter().sum()
    }
}

/// The handle of the event log: cheap to clone, shared by everyone who records or
/// reads events. The writer task stops at [`EventLog::close`] or when the last handle
/// is dropped (then it still writes and syncs what was queued).
#[derive(Debug, Clone)]
pub struct EventLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    tx: mpsc::Sender<Msg>,
    /// Held while an id is made and its event queued, so queue order is id order.
    ids: Arc<Mutex<IdState>>,
    clock: SharedClock,
    counters: Arc<Counters>,
    done: watch::Receiver<bool>,
}

impl EventLog {
    /// Opens the event log in `dir` (`var/log/karajo/event`) and starts its writer.
    /// Creates `dir` (0700; a looser mode we own is tightened), deletes day files past
    /// `limits.retention`, and reads the newest id back so that new ids sort after
    /// every existing one. Fails only when `dir` cannot be created or made private; a
    /// failed deletion or read-back is logged and start-up goes on. Must run inside a
    /// tokio runtime.
    pub async fn spawn(
        dir: impl Into<PathBuf>,
        limits: EventLimits,
        clock: SharedClock,
    ) -> io::Result<Self> {
        let dir = dir.into();
        let now = clock.now();
        let start_dir = dir.clone();
        let seed = tokio::task::spawn_blocking(move || -> io::Result<Option<EventId>> {
            create_private_dir(&start_dir)?;
            tighten_dir(&start_dir)?;
            // Neither stops karajo: old files wait for the next midnight, and ids
            // then follow the clock alone.
            match remove_expired(&start_dir, now, limits.retention) {
                Ok(removed) => {
                    for path in removed {
                        tracing::info!(path = %path.display(), "event log day file past event_retention deleted");
                    }
                }
                Err(err) => tracing::warn!(%err, "cannot apply event_retention"),
            }
            Ok(newest_id(&start_dir).unwrap_or_else(|err| {
                tracing::warn!(%err, "cannot read the newest event id back");
                None
            }))
        })
        .await
        .map_err(io::Error::other)??;

        let ids = Arc::new(Mutex::new(IdState {
            ids: IdGen::new(seed),
            pending: None,
        }));
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel(limits.queue.max(1));
        let (done_tx, done) = watch::channel(false);
        let disk = Disk::new(DiskConfig {
            dir: dir.clone(),
            limits,
            counters: Arc::clone(&counters),
            ids: Arc::clone(&ids),
            clock: Arc::clone(&clock),
        });
        tokio::spawn(writer::run(rx, disk, next_midnight(now), done_tx));
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                tx,
                ids,
                clock,
                counters,
                done,
            }),
        })
    }

    /// The directory of the day files.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Stamps `event` with a new id and the current time (the id's millisecond) and
    /// queues it for the writer, without waiting. Returns the record as it will be
    /// written, for the API's answer. Events recorded one after another get increasing
    /// ids, and reach the file in that order.
    ///
    /// A full queue or a closed log refuses the event ([`RecordError`]); the refusal is
    /// counted, and a full queue is also noted in the log by a marker. An event
    /// accepted here can still be dropped by the day cap, which is counted and marked
    /// the same way.
    pub fn record(&self, event: NewEvent) -> Result<EventRecord, RecordError> {
        let counters = &self.inner.counters;
        let mut state = lock(&self.inner.ids);
        let record = event.into_record(state.ids.next(self.inner.clock.now()));
        match self.inner.tx.try_send(Msg::Event(Box::new(record.clone()))) {
            Ok(()) => Ok(record),
            Err(mpsc::error::TrySendError::Full(_)) => {
                state
                    .pending
                    .get_or_insert(PendingDrops {
                        id: record.id,
                        count: 0,
                    })
                    .count += 1;
                drop(state);
                counters.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
                Err(RecordError::QueueFull)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                drop(state);
                counters.dropped_closed.fetch_add(1, Ordering::Relaxed);
                Err(RecordError::Closed)
            }
        }
    }

    /// Waits until every event recorded before the call is written and fsynced (and
    /// a pending queue-full marker with them). Fails when the sync fails or the log is
    /// closed.
    pub async fn flush(&self) -> io::Result<()> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .tx
            .send(Msg::Flush(reply))
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Stops the log cleanly: new events are refused from now on, every event already
    /// accepted is written, the file is fsynced, and the writer task ends before this
    /// returns. Closing a closed log does nothing. The answer is the final sync's.
    pub async fn close(&self) -> io::Result<()> {
        let (reply, answer) = oneshot::channel();
        let synced = match self.inner.tx.send(Msg::Close(reply)).await {
            Ok(()) => answer.await.unwrap_or(Ok(())),
            Err(_) => Ok(()), // already closed (or closing)
        };
        let mut done = self.inner.done.clone();
        // An error means the task is gone, which is what we wait for.
        let _ = done.wait_for(|done| *done).await;
        synced
    }

    /// Runs `query` over the day files on a blocking thread (see [`query_dir`]), after
    /// the writer has written every event recorded before the call, so a client reads
    /// its own events at once.
    pub async fn query(&self, query: EventQuery) -> io::Result<EventPage> {
        let (reply, answer) = oneshot::channel();
        if self.inner.tx.send(Msg::Barrier(reply)).await.is_ok() {
            // No answer means the writer stopped: the files are as they will stay.
            let _ = answer.await;
        }
        let dir = self.inner.dir.clone();
        let page = tokio::task::spawn_blocking(move || query_dir(&dir, &query))
            .await
            .map_err(io::Error::other)??;
        self.inner
            .counters
            .corrupt_lines
            .fetch_add(page.skipped_lines, Ordering::Relaxed);
        Ok(page)
    }

    /// The counters now.
    pub fn stats(&self) -> EventLogStats {
        let c = &self.inner.counters;
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        EventLogStats {
            written: std::array::from_fn(|i| get(&c.written[i])),
            dropped_queue_full: get(&c.dropped_queue_full),
            dropped_day_cap: get(&c.dropped_day_cap),
            dropped_write_error: get(&c.dropped_write_error),
            dropped_closed: get(&c.dropped_closed),
            corrupt_lines: get(&c.corrupt_lines),
        }
    }

    /// Every dropped event so far: `karajo_events_dropped_total`.
    pub fn dropped(&self) -> u64 {
        self.stats().dropped()
    }
}

/// The id generator, and the events a full queue refused that no marker names yet.
/// One lock covers making an id and queueing its event, so the queue holds events in
/// id order, and a refused event's id marks where in that order its marker belongs.
#[derive(Debug)]
struct IdState {
    ids: IdGen,
    pending: Option<PendingDrops>,
}

/// Events refused by a full queue since the last marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PendingDrops {
    /// The id of the first of them, which the marker takes.
    id: EventId,
    /// How many.
    count: u64,
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "event log is closed")
}

/// Locks a mutex whose data stays valid even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The UTC date of an instant.
fn day_of(at: Timestamp) -> Date {
    TimeZone::UTC.to_datetime(at).date()
}

/// The first instant of a UTC date (`None` only outside jiff's range).
fn day_start(date: Date) -> Option<Timestamp> {
    TimeZone::UTC
        .to_timestamp(date.to_datetime(Time::midnight()))
        .ok()
}

/// The first instant after a UTC date (`None` for the last date jiff knows).
fn day_end(date: Date) -> Option<Timestamp> {
    date.tomorrow().ok().and_then(day_start)
}

/// The next UTC midnight after `now` (far in the future at the end of time).
fn next_midnight(now: Timestamp) -> Timestamp {
    day_end(day_of(now)).unwrap_or(Timestamp::MAX)
}

/// `<dir>/YYYY-MM-DD.jsonl`.
fn day_file_path(dir: &Path, date: Date) -> PathBuf {
    dir.join(format!("{date}.jsonl"))
}

/// The date of a day file's name: exactly `YYYY-MM-DD.jsonl`.
fn parse_day_name(name: &str) -> Option<Date> {
    let stem = name.strip_suffix(".jsonl")?;
    if stem.len() != 10 {
        return None;
    }
    let date = stem.parse::<Date>().ok()?;
    (date.to_string() == stem).then_some(date)
}

/// The day files in `dir`, in no particular order; none when `dir` is missing.
fn day_files(dir: &Path) -> io::Result<Vec<(Date, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_context(e, "list event log directory", dir)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_context(e, "list event log directory", dir))?;
        let name = entry.file_name();
        if let Some(date) = name.to_str().and_then(parse_day_name) {
            files.push((date, entry.path()));
        }
    }
    Ok(files)
}

/// Deletes the day files of `dir` whose day ended `retention` or longer before `now`,
/// and returns their paths. A zero retention deletes nothing.
fn remove_expired(dir: &Path, now: Timestamp, retention: Duration) -> io::Result<Vec<PathBuf>> {
    let Some(cutoff) = SignedDuration::try_from(retention)
        .ok()
        .filter(|_| !retention.is_zero())
        .and_then(|keep| now.checked_sub(keep).ok())
    else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    for (date, path) in day_files(dir)? {
        if day_end(date).is_none_or(|end| end > cutoff) {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_context(e, "delete expired event log", &path)),
        }
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// How much of the newest day file's end is read for the newest id.
const SEED_TAIL: u64 = 256 * 1024;

/// The largest id near the end of the newest day file that has one, so ids made
/// after a restart sort after it.
fn newest_id(dir: &Path) -> io::Result<Option<EventId>> {
    let mut files = day_files(dir)?;
    files.sort_by_key(|(date, _)| Reverse(*date));
    for (_, path) in files {
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_context(e, "open event log", &path)),
        };
        let context = |e| io_context(e, "read event log", &path);
        let len = file.metadata().map_err(context)?.len();
        let start = len.saturating_sub(SEED_TAIL);
        file.seek(SeekFrom::Start(start)).map_err(context)?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail).map_err(context)?;
        let mut lines = tail.split(|&b| b == b'\n');
        if start > 0 {
            lines.next(); // most likely a part of a line
        }
        let newest = lines
            .filter_map(|line| serde_json::from_slice::<EventRecord>(line).ok())
            .map(|record| record.id)
            .max();
        if newest.is_some() {
            return Ok(newest);
        }
    }
    Ok(None)
}
