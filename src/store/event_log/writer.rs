//! The single writer of the event log: a tokio task that owns the open day file and
//! does all file work on blocking threads, a batch of queued messages at a time. It
//! appends one `write` per line to `<UTC date>.jsonl` (the date of the event's time),
//! enforces the day cap, writes the `karajo.events_dropped` markers, fsyncs at most
//! once a second (and at once on flush and close), and deletes expired day files when
//! the UTC day rolls over.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{FileExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use tokio::sync::{mpsc, oneshot, watch};

use super::record::{EventRecord, Level, NewEvent, Source};
use super::{
    Counters, EventLimits, IdState, PendingDrops, day_file_path, day_of, lock, next_midnight,
    remove_expired,
};
use crate::clock::SharedClock;
use crate::store::{FILE_MODE, create_private_dir, io_context, sync_dir};

/// The most queued messages handled in one trip to a blocking thread.
const MAX_BATCH: usize = 512;
/// The shortest time between two fsyncs that nobody asked for.
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// The `kind` of the markers the writer writes about dropped events.
pub(super) const DROPPED_KIND: &str = "karajo.events_dropped";
/// The `service` of karajo's own notes.
pub(super) const KARAJO_SERVICE: &str = "karajo";

/// What the handle sends to the writer.
#[derive(Debug)]
pub(super) enum Msg {
    /// Append this record.
    Event(Box<EventRecord>),
    /// Answer once everything queued before is written (not synced).
    Barrier(oneshot::Sender<()>),
    /// Answer once everything queued before is written and synced.
    Flush(oneshot::Sender<io::Result<()>>),
    /// Write what is queued, sync, answer and stop.
    Close(oneshot::Sender<io::Result<()>>),
    /// Write a marker for events a full queue refused (never sent by the handle: the
    /// writer puts it into a batch where it belongs).
    Dropped(PendingDrops),
}

/// What a fresh [`Disk`] needs; kept to build another one if a blocking trip panics.
#[derive(Debug, Clone)]
pub(super) struct DiskConfig {
    pub(super) dir: PathBuf,
    pub(super) limits: EventLimits,
    pub(super) counters: Arc<Counters>,
    pub(super) ids: Arc<Mutex<IdState>>,
    pub(super) clock: SharedClock,
}

/// The day file being appended to.
#[derive(Debug)]
struct DayFile {
    date: Date,
    path: PathBuf,
    file: File,
    size: u64,
    /// The cap was reached and its marker written (or found reached when opened).
    capped: bool,
}

/// The writer's file state; lives on blocking threads between batches.
#[derive(Debug)]
pub(super) struct Disk {
    config: DiskConfig,
    day: Option<DayFile>,
    /// Written since the last sync.
    dirty: bool,
    /// The newest UTC day for which retention ran (start-up ran it for its day).
    retention_day: Date,
}

impl Disk {
    pub(super) fn new(config: DiskConfig) -> Self {
        let retention_day = day_of(config.clock.now());
        Self {
            config,
            day: None,
            dirty: false,
            retention_day,
        }
    }

    /// Handles a batch in order: events and markers are written, then barriers are
    /// answered, and flushes and closes after one sync.
    fn apply(&mut self, batch: Vec<Msg>) {
        let mut barriers = Vec::new();
        let mut syncs = Vec::new();
        for msg in batch {
            match msg {
                Msg::Event(record) => self.append(&record, true),
                Msg::Dropped(pending) => self.mark_queue_drops(pending),
                Msg::Barrier(reply) => barriers.push(reply),
                Msg::Flush(reply) | Msg::Close(reply) => syncs.push(reply),
            }
        }
        for reply in barriers {
            let _ = reply.send(());
        }
        if !syncs.is_empty() {
            let synced = self.sync();
            for reply in syncs {
                let _ = reply.send(match &synced {
                    Ok(()) => Ok(()),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                });
            }
        }
    }

    /// Writes the marker for events that [`super::EventLog::record`] could not queue,
    /// with the first one's id and time.
    fn mark_queue_drops(&mut self, pending: PendingDrops) {
        let dropped = pending.count;
        let message = format!(
            "{dropped} event{} dropped: the event log's queue was full",
            if dropped == 1 { "" } else { "s" }
        );
        if let Some(marker) = marker(message) {
            self.append(&marker.into_record(pending.id), false);
        }
    }

    /// Appends `record` to the file of its UTC day, unless that day is capped. The
    /// event that finds the day full is replaced by the day's one marker, which takes
    /// its id and time. `counted` is false for markers, which are not counted as
    /// dropped events when they cannot be written.
    fn append(&mut self, record: &EventRecord, counted: bool) {
        let date = day_of(record.time);
        if self.day.as_ref().is_none_or(|day| day.date != date)
            && let Err(e) = self.open_day(date)
        {
            self.lost(record, &e, counted);
            return;
        }
        let cap = self.config.limits.effective_day_max();
        let Some(day) = self.day.as_mut() else {
            return;
        };
        if day.capped {
            if counted {
                self.config
                    .counters
                    .dropped_day_cap
                    .fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        if day.size >= cap {
            day.capped = true;
            if counted {
                self.config
                    .counters
                    .dropped_day_cap
                    .fetch_add(1, Ordering::Relaxed);
            }
            let message = format!(
                "event_day_max of {cap} bytes reached for {date}: further events of that day are dropped"
            );
            if let Some(marker) = marker(message) {
                let marker = marker.into_record(record.id);
                // The marker goes past the cap: it is the one line that may.
                self.write_line(&marker, false);
            }
            return;
        }
        self.write_line(record, counted);
    }

    /// Writes one line to the open day file with one `write`.
    fn write_line(&mut self, record: &EventRecord, counted: bool) {
        let mut line = match serde_json::to_vec(record) {
            Ok(line) => line,
            Err(e) => {
                self.lost(record, &io::Error::other(e), counted);
                return;
            }
        };
        line.push(b'\n');
        let Some(day) = self.day.as_mut() else {
            return;
        };
        match day.file.write_all(&line) {
            Ok(()) => {
                day.size += line.len() as u64;
                self.dirty = true;
                self.config.counters.written[record.level.index()].fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let e = io_context(e, "append to", &day.path);
                // Reopen next time: a partial line is ended before the next one.
                self.day = None;
                self.lost(record, &e, counted);
            }
        }
    }

    /// Reports an event that could not be written, and counts it unless it is a
    /// marker.
    fn lost(&self, record: &EventRecord, err: &io::Error, counted: bool) {
        if counted {
            self.config
                .counters
                .dropped_write_error
                .fetch_add(1, Ordering::Relaxed);
        }
        tracing::warn!(id = %record.id, service = %record.service, %err, "event not written to the event log");
    }

    /// Closes the current day file (synced) and opens the one of `date`: created 0600
    /// (and its directory entry synced) or reopened for appending. A file whose last
    /// line was cut short by a crash gets a newline first, so the next event starts
    /// a line of its own. When the day moves forward, expired day files are deleted.
    fn open_day(&mut self, date: Date) -> io::Result<()> {
        if let Err(e) = self.sync() {
            tracing::warn!(err = %e, "cannot sync the event log");
        }
        self.day = None;
        if date > self.retention_day {
            self.expire(date);
        }
        let dir = &self.config.dir;
        create_private_dir(dir)?;
        let path = day_file_path(dir, date);
        let context = |e| io_context(e, "open event log", &path);
        let existed = path.symlink_metadata().is_ok();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(context)?;
        let meta = file.metadata().map_err(context)?;
        if meta.mode() & 0o777 != FILE_MODE {
            file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
                .map_err(context)?;
        }
        if !existed {
            sync_dir(dir)?;
        }
        let mut size = meta.len();
        if size > 0 {
            let mut last = [0u8; 1];
            file.read_exact_at(&mut last, size - 1).map_err(context)?;
            if last[0] != b'\n' {
                file.write_all(b"\n").map_err(context)?;
                size += 1;
                self.dirty = true;
            }
        }
        let capped = size >= self.config.limits.effective_day_max();
        self.day = Some(DayFile {
            date,
            path,
            file,
            size,
            capped,
        });
        Ok(())
    }

    /// Deletes the day files past retention (as of the clock's now), reporting
    /// failures; `day` is the UTC day this is done for.
    fn expire(&mut self, day: Date) {
        self.retention_day = self.retention_day.max(day);
        let now = self.config.clock.now();
        match remove_expired(&self.config.dir, now, self.config.limits.retention) {
            Ok(removed) => {
                for path in removed {
                    tracing::info!(path = %path.display(), "event log day file past event_retention deleted");
                }
            }
            Err(err) => tracing::warn!(%err, "cannot apply event_retention"),
        }
    }

    /// fsyncs the open day file if anything was written since the last sync.
    fn sync(&mut self) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        if let Some(day) = &self.day {
            day.file
                .sync_data()
                .map_err(|e| io_context(e, "sync", &day.path))?;
        }
        self.dirty = false;
        Ok(())
    }

    fn sync_logged(&mut self) {
        if let Err(err) = self.sync() {
            tracing::warn!(%err, "cannot sync the event log");
        }
    }
}

/// A `karajo.events_dropped` marker with this message.
fn marker(message: String) -> Option<NewEvent> {
    NewEvent::new(KARAJO_SERVICE, Level::Warning, message, Source::Karajo)
        .and_then(|event| event.with_kind(DROPPED_KIND))
        .ok()
}

/// Runs `work` on `disk` on a blocking thread and gives the disk back. If the work
/// panicked (a bug), the disk's open file is lost and a fresh one is made: the next
/// event reopens its day file.
async fn on_blocking(mut disk: Disk, work: impl FnOnce(&mut Disk) + Send + 'static) -> Disk {
    let config = disk.config.clone();
    match tokio::task::spawn_blocking(move || {
        work(&mut disk);
        disk
    })
    .await
    {
        Ok(disk) => disk,
        Err(err) => {
            tracing::error!(%err, "event log writer failed; reopening its file");
            Disk::new(config)
        }
    }
}

/// The writer task: takes queued messages in batches, runs them on a blocking thread,
/// syncs at most once a second when something was written, runs retention at each UTC
/// midnight of the clock (the first is `first_midnight`, the one after start-up), and
/// stops after a close (once everything queued before the queue closed is written and
/// synced) or when every handle is gone. Sets `done` when it stops.
pub(super) async fn run(
    mut rx: mpsc::Receiver<Msg>,
    mut disk: Disk,
    first_midnight: Timestamp,
    done: watch::Sender<bool>,
) {
    let clock = disk.config.clock.clone();
    let mut midnight = clock.sleep_until(first_midnight);
    let mut sync_due: Option<tokio::time::Instant> = None;
    let mut last_sync = tokio::time::Instant::now();
    loop {
        let first = tokio::select! {
            biased;
            () = &mut midnight => {
                let today = day_of(clock.now());
                disk = on_blocking(disk, move |disk| disk.expire(today)).await;
                midnight = clock.sleep_until(next_midnight(clock.now()));
                continue;
            }
            // Before the queue, so a steady stream of events cannot starve it.
            () = sleep_until(sync_due) => {
                disk = on_blocking(disk, Disk::sync_logged).await;
                sync_due = None;
                last_sync = tokio::time::Instant::now();
                continue;
            }
            msg = rx.recv() => msg,
        };
        let Some(first) = first else {
            // Every handle is gone: nothing more can come.
            let pending = lock(&disk.config.ids).pending.take();
            on_blocking(disk, move |disk| {
                if let Some(pending) = pending {
                    disk.mark_queue_drops(pending);
                }
                disk.sync_logged();
            })
            .await;
            break;
        };
        let mut closing = matches!(first, Msg::Close(_));
        let mut batch = vec![first];
        while !closing && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(msg) => {
                    closing = matches!(msg, Msg::Close(_));
                    batch.push(msg);
                }
                Err(_) => break,
            }
        }
        if closing {
            // Refuse new events, but write every one already accepted.
            rx.close();
            while let Some(msg) = rx.recv().await {
                batch.push(msg);
            }
        }
        place_drop_marker(&mut batch, &rx, &disk.config.ids);
        let syncs = batch
            .iter()
            .any(|msg| matches!(msg, Msg::Flush(_) | Msg::Close(_)));
        disk = on_blocking(disk, move |disk| disk.apply(batch)).await;
        if closing {
            break;
        }
        if syncs {
            sync_due = None;
            last_sync = tokio::time::Instant::now();
        } else if disk.dirty && sync_due.is_none() {
            sync_due = Some(last_sync + SYNC_EVERY);
        }
    }
    let _ = done.send(true);
}

/// Puts the marker for refused events into `batch` when its place is known: before the
/// first event with a larger id (every event with a smaller id was queued before that
/// one, so it is in this batch or an earlier one), or at the end when the queue is
/// empty (then every event queued before the refusal has been taken). Otherwise a
/// later batch places it. The check and the taking happen under the lock that
/// [`super::EventLog::record`] holds while it makes an id and queues its event.
fn place_drop_marker(batch: &mut Vec<Msg>, rx: &mpsc::Receiver<Msg>, ids: &Mutex<IdState>) {
    let mut state = lock(ids);
    let Some(pending) = state.pending else {
        return;
    };
    let newer = batch
        .iter()
        .position(|msg| matches!(msg, Msg::Event(record) if record.id > pending.id));
    let at = match newer {
        Some(at) => at,
        None if rx.is_empty() => batch.len(),
        None => return,
    };
    state.pending = None;
    drop(state);
    batch.insert(at, Msg::Dropped(pending));
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
