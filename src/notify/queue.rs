//! The delivery queue: one task that owns every pending notification (spooled ones
//! loaded at start, new ones submitted after each run or monitor transition), sends
//! up to `concurrency` at once, and on failure retries with exponential backoff (5s,
//! doubling, at most 10 minutes apart) until 24 hours after the notification was
//! queued; then, or at once for errors that retrying cannot fix, it gives up with an
//! error log and moves the spooled file to `failed/`. Nothing here blocks start-up or
//! waits on a server outside the task. Counters are atomics in an `Arc`, read
//! through [`Notifier::stats`].

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::message::{self, NotifyOn, Pending, RunRecord, targets};
use super::notice::{MonitorInfo, MonitorRecord, ServiceRecord, monitor_info, service_info};
use super::spool::Spool;
use super::{SendError, email, pushover, webhook};
use crate::config::{NotifConfig, NotifKind};
use crate::job::JobKey;

/// When to try again after failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait between two attempts.
    pub max: Duration,
    /// No attempt is made this long after the notification was queued.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    /// 5s, doubling up to 10 minutes, for 24 hours.
    fn default() -> Self {
        Self {
            first: Duration::from_secs(5),
            max: Duration::from_secs(600),
            give_up_after: Duration::from_secs(24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The wait after `failures` (≥ 1) failed attempts in a row.
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(32);
        self.first
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// What the notifier starts from.
#[derive(Debug, Clone)]
pub struct NotifierOptions {
    /// The spool directory (`$dir_base/var/lib/karajo/notify`).
    pub spool_dir: PathBuf,
    /// The `[notif]` sections.
    pub notifs: Vec<NotifConfig>,
    /// The web UI's base URL, for log links (`http://<listen address>` by default).
    pub public_url: String,
    /// Retry timing.
    pub retry: RetryPolicy,
    /// How many notifications are sent at once.
    pub concurrency: usize,
    /// Timeout of one SMTP conversation step.
    pub smtp_timeout: Duration,
    /// Timeout of one webhook request.
    pub webhook_timeout: Duration,
}

impl NotifierOptions {
    /// Options with the default retry policy, 4 senders and 30 s timeouts.
    pub fn new(
        spool_dir: impl Into<PathBuf>,
        notifs: Vec<NotifConfig>,
        public_url: impl Into<String>,
    ) -> Self {
        Self {
            spool_dir: spool_dir.into(),
            notifs,
            public_url: public_url.into(),
            retry: RetryPolicy::default(),
            concurrency: 4,
            smtp_timeout: Duration::from_secs(30),
            webhook_timeout: Duration::from_secs(30),
        }
    }
}

/// Delivery counters, shared with whoever wants to read them (metrics).
#[derive(Debug, Default)]
pub struct NotifyStats {
    queued: AtomicU64,
    sent: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    pending: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatsSnapshot {
    /// Notifications queued since start (spooled ones loaded at start included).
    pub queued: u64,
    /// Delivered.
    pub sent: u64,
    /// Failed attempts that were scheduled to be tried again.
    pub retried: u64,
    /// Given up (after 24 hours, or at once for errors retrying cannot fix).
    pub failed: u64,
    /// Waiting or being sent now.
    pub pending: u64,
}

impl NotifyStats {
    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            queued: self.queued.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            pending: self.pending.load(Ordering::Relaxed),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn sub(counter: &AtomicU64) {
        let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            Some(n.saturating_sub(1))
        });
    }

    /// One pending notification is delivered or given up.
    fn done(&self) {
        Self::sub(&self.pending);
    }

    /// A submitted notification turned out to be queued already.
    fn undo_queued(&self) {
        Self::sub(&self.queued);
        Self::sub(&self.pending);
    }
}

/// The notif settings in force (replaced on reload).
#[derive(Debug, Default)]
struct Table {
    notifs: HashMap<String, NotifConfig>,
    public_url: String,
}

impl Table {
    fn new(notifs: Vec<NotifConfig>, public_url: String) -> Self {
        Self {
            notifs: notifs.into_iter().map(|n| (n.name.clone(), n)).collect(),
            public_url,
        }
    }
}

/// One notification in the queue.
#[derive(Debug)]
struct Item {
    /// The spool file name; `None` when it could not be written (kept in memory).
    file: Option<String>,
    pending: Pending,
    failures: u32,
    /// Found in the spool at start-up. Such a file may also have been submitted by
    /// a sender that wrote it just before the spool was read; its name stays known
    /// after delivery, so that late submission is not sent a second time.
    loaded: bool,
}

/// The handle on the delivery queue; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::UnboundedSender<Item>,
    table: watch::Sender<Arc<Table>>,
    stats: Arc<NotifyStats>,
    spool: Spool,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("spool", &self.inner.spool.dir())
            .field("stats", &self.inner.stats.snapshot())
            .finish()
    }
}

impl Notifier {
    /// Starts the delivery task (inside a tokio runtime). It first loads the spool;
    /// nothing is sent or waited for here.
    pub fn start(opts: NotifierOptions) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let table = Arc::new(Table::new(opts.notifs, opts.public_url));
        let (table_tx, table_rx) = watch::channel(table);
        let stats = Arc::new(NotifyStats::default());
        let spool = Spool::new(opts.spool_dir);
        let stop = CancellationToken::new();
        let http = LazyClient::new(opts.webhook_timeout);
        let worker = Worker {
            rx,
            table: table_rx,
            stats: stats.clone(),
            spool: spool.clone(),
            retry: opts.retry,
            concurrency: opts.concurrency.max(1),
            smtp_timeout: opts.smtp_timeout,
            http: Arc::new(http),
            waiting: BTreeMap::new(),
            known: HashSet::new(),
            seq: 0,
            in_flight: JoinSet::new(),
        };
        let task = tokio::spawn(worker.run(stop.clone()));
        Self {
            inner: Arc::new(Inner {
                tx,
                table: table_tx,
                stats,
                spool,
                stop,
                task: Mutex::new(Some(task)),
            }),
        }
    }

    /// The counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// The shared counters themselves.
    pub fn stats_handle(&self) -> Arc<NotifyStats> {
        self.inner.stats.clone()
    }

    /// Replaces the notif settings (a configuration reload). Queued notifications
    /// use the settings in force when they are sent.
    pub fn reload(&self, notifs: Vec<NotifConfig>, public_url: impl Into<String>) {
        let table = Table::new(notifs, public_url.into());
        self.inner.table.send_replace(Arc::new(table));
    }

    /// Queues the notifications of a finished run (per its job's `notif_on_*`
    /// lists) and returns how many. Each is written to the spool before this
    /// returns, so it survives a restart; delivery happens in the background.
    pub async fn submit(&self, run: RunRecord, on: NotifyOn<'_>) -> usize {
        let chosen = targets(&run, on);
        if chosen.is_empty() {
            return 0;
        }
        let table = self.inner.table.borrow().clone();
        let chosen: Vec<_> = chosen
            .into_iter()
            .filter(|(name, _)| {
                let known = table.notifs.contains_key(name);
                if !known {
                    tracing::warn!(job = %JobKey { kind: run.kind, id: run.id.clone() }, notif = %name, "no [notif] of this name; not notified");
                }
                known
            })
            .collect();
        if chosen.is_empty() {
            return 0;
        }
        let public_url = table.public_url.clone();
        let spool = self.inner.spool.clone();
        let what = format!("{}/{} #{}", run.kind.as_str(), run.id, run.counter);
        let now = Timestamp::now();
        let prepared = tokio::task::spawn_blocking(move || {
            let info = message::run_info(&run, &public_url);
            chosen
                .into_iter()
                .map(|(name, event)| {
                    let pending = message::pending(&name, event, info.clone(), now);
                    spool_item(&spool, pending, now)
                })
                .collect::<Vec<_>>()
        })
        .await;
        self.queue_prepared(&what, prepared)
    }

    /// Queues the notification of a monitor's transition (or `notif_repeat`
    /// reminder) to each notif of `record.notice.notifs` (each once; unknown names
    /// are skipped with a warning) and returns how many. As for runs, each is
    /// written to the spool before this returns and delivered in the background,
    /// with the end of `record.log` read now. A `record.target` is kept for the
    /// notifs whose `allow_target` rule accepts it (and applied again at each
    /// attempt); where it is refused, a warning is logged and the notif's own
    /// recipient is used.
    pub async fn submit_monitor(&self, record: MonitorRecord) -> usize {
        let what = format!("monitor/{}", record.id);
        let notifs = record.notice.notifs.clone();
        let target = record.target.clone();
        self.submit_notice(what, &notifs, target.as_deref(), move |public_url| {
            monitor_info(&record, public_url)
        })
        .await
    }

    /// Queues a service's notice (failed, fatal, recover) to each notif of
    /// `record.notifs`, as [`Notifier::submit_monitor`] does a monitor's.
    pub async fn submit_service(&self, record: ServiceRecord) -> usize {
        let what = format!("service/{}", record.id);
        let notifs = record.notifs.clone();
        self.submit_notice(what, &notifs, None, move |public_url| {
            service_info(&record, public_url)
        })
        .await
    }

    /// Spools the notice `info` builds (on the blocking pool: it reads a log's tail)
    /// once for each notif of `notifs` (each once; unknown names are skipped with a
    /// warning), with `target` where the notif accepts it.
    async fn submit_notice(
        &self,
        what: String,
        notifs: &[String],
        target: Option<&str>,
        info: impl FnOnce(&str) -> MonitorInfo + Send + 'static,
    ) -> usize {
        let table = self.inner.table.borrow().clone();
        let target = target.map(str::trim).filter(|t| !t.is_empty());
        let mut chosen: Vec<(String, Option<String>)> = Vec::new();
        for name in notifs {
            if chosen.iter().any(|(n, _)| n == name) {
                continue;
            }
            let Some(notif) = table.notifs.get(name) else {
                tracing::warn!(%what, notif = %name, "no [notif] of this name; not notified");
                continue;
            };
            let target = target.and_then(|target| match notif.with_target(target) {
                Ok(_) => Some(target.to_string()),
                Err(err) => {
                    tracing::warn!(%what, notif = %name, %err, "the target is ignored; the notif's own recipient is used");
                    None
                }
            });
            chosen.push((name.clone(), target));
        }
        if chosen.is_empty() {
            return 0;
        }
        let public_url = table.public_url.clone();
        let spool = self.inner.spool.clone();
        let now = Timestamp::now();
        let prepared = tokio::task::spawn_blocking(move || {
            let info = info(&public_url);
            chosen
                .into_iter()
                .map(|(name, target)| {
                    let pending = message::monitor_pending(&name, info.clone(), target, now);
                    spool_item(&spool, pending, now)
                })
                .collect::<Vec<_>>()
        })
        .await;
        self.queue_prepared(&what, prepared)
    }

    /// Hands spooled items to the delivery task and counts them.
    fn queue_prepared(
        &self,
        what: &str,
        prepared: Result<Vec<Item>, tokio::task::JoinError>,
    ) -> usize {
        let items = match prepared {
            Ok(items) => items,
            Err(err) => {
                tracing::error!(%what, %err, "preparing the notifications failed");
                return 0;
            }
        };
        let count = items.len();
        NotifyStats::add(&self.inner.stats.queued, count as u64);
        NotifyStats::add(&self.inner.stats.pending, count as u64);
        for item in items {
            tracing::info!(%what, notif = %item.pending.notif, event = item.pending.event_str(), "notification queued");
            if self.inner.tx.send(item).is_err() {
                tracing::warn!(%what, "the notifier is stopped; the notification stays in the spool for the next start");
            }
        }
        count
    }

    /// Stops the delivery task. Notifications not delivered yet stay in the spool
    /// and are sent after the next start (one being sent right now may then be
    /// sent twice).
    pub async fn shutdown(&self) {
        self.inner.stop.cancel();
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// Writes `pending` to the spool (on the blocking pool); on failure it is kept in
/// memory only, with an error log.
fn spool_item(spool: &Spool, pending: Pending, now: Timestamp) -> Item {
    let file = match spool.write(&pending, now) {
        Ok(file) => Some(file),
        Err(err) => {
            tracing::error!(what = %pending.what(), notif = %pending.notif, %err, dir = %spool.dir().display(),
                "cannot spool the notification; it is kept in memory only");
            None
        }
    };
    Item {
        file,
        pending,
        failures: 0,
        loaded: false,
    }
}

/// The delivery task's state.
struct Worker {
    rx: mpsc::UnboundedReceiver<Item>,
    table: watch::Receiver<Arc<Table>>,
    stats: Arc<NotifyStats>,
    spool: Spool,
    retry: RetryPolicy,
    concurrency: usize,
    smtp_timeout: Duration,
    http: Arc<LazyClient>,
    /// Items by due time (and arrival order).
    waiting: BTreeMap<(Instant, u64), Item>,
    /// Spool file names queued or in flight, so a file loaded at start and also
    /// submitted is sent once.
    known: HashSet<String>,
    seq: u64,
    in_flight: JoinSet<(Item, Result<(), SendError>)>,
}

impl Worker {
    async fn run(mut self, stop: CancellationToken) {
        self.load_spool().await;
        loop {
            self.start_due();
            let next_due = self.waiting.first_key_value().map(|((due, _), _)| *due);
            let can_start = self.in_flight.len() < self.concurrency;
            tokio::select! {
                () = stop.cancelled() => break,
                item = self.rx.recv() => match item {
                    Some(item) => {
                        if !self.enqueue(item, Instant::now()) {
                            self.stats.undo_queued();
                        }
                    }
                    None => {
                        if self.waiting.is_empty() && self.in_flight.is_empty() {
                            break;
                        }
                        stop.cancelled().await;
                        break;
                    }
                },
                Some(done) = self.in_flight.join_next(), if !self.in_flight.is_empty() => match done {
                    Ok((item, result)) => self.finished(item, result).await,
                    Err(err) => tracing::error!(%err, "a notification sender panicked"),
                },
                () = sleep_until(next_due), if can_start && next_due.is_some() => {}
            }
        }
        self.in_flight.abort_all();
        let left = self.waiting.len() + self.in_flight.len();
        if left > 0 {
            tracing::info!(
                left,
                "notifier stopped; undelivered notifications stay in the spool"
            );
        }
    }

    async fn load_spool(&mut self) {
        let spool = self.spool.clone();
        let loaded = match tokio::task::spawn_blocking(move || spool.load()).await {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(err)) => {
                tracing::error!(dir = %self.spool.dir().display(), %err, "cannot read the notification spool");
                return;
            }
            Err(err) => {
                tracing::error!(%err, "reading the notification spool panicked");
                return;
            }
        };
        for (path, why) in loaded.bad {
            tracing::error!(file = %path.display(), why, "unreadable spooled notification set aside");
        }
        let count = loaded.pending.len();
        if count > 0 {
            tracing::info!(
                count,
                "notifications left from the previous run are queued again"
            );
        }
        let now = Instant::now();
        for (file, pending) in loaded.pending {
            let item = Item {
                file: Some(file),
                pending,
                failures: 0,
                loaded: true,
            };
            if self.enqueue(item, now) {
                NotifyStats::add(&self.stats.queued, 1);
                NotifyStats::add(&self.stats.pending, 1);
            }
        }
    }

    /// Queues `item` due at `due`; false when its spool file is queued already
    /// (loaded from the spool at start and submitted as well).
    fn enqueue(&mut self, item: Item, due: Instant) -> bool {
        if let Some(file) = &item.file
            && !self.known.insert(file.clone())
        {
            return false;
        }
        self.seq += 1;
        self.waiting.insert((due, self.seq), item);
        true
    }

    /// Starts sending due items while senders are free.
    fn start_due(&mut self) {
        let now = Instant::now();
        while self.in_flight.len() < self.concurrency {
            let Some(entry) = self.waiting.first_entry() else {
                return;
            };
            if entry.key().0 > now {
                return;
            }
            let item = entry.remove();
            let table = self.table.borrow().clone();
            let http = self.http.clone();
            let timeout = self.smtp_timeout;
            self.in_flight.spawn(async move {
                let result = deliver(&table, &http, timeout, &item.pending).await;
                (item, result)
            });
        }
    }

    async fn finished(&mut self, mut item: Item, result: Result<(), SendError>) {
        let p = &item.pending;
        let (what, notif) = (p.what(), &p.notif);
        let err = match result {
            Ok(()) => {
                tracing::info!(%what, notif = %notif, "notification sent");
                self.forget(&item, Disposal::Remove).await;
                NotifyStats::add(&self.stats.sent, 1);
                self.stats.done();
                return;
            }
            Err(err) => err,
        };
        let age = Timestamp::now().duration_since(p.created());
        let too_old = age.as_secs() >= 0 && age.unsigned_abs() >= self.retry.give_up_after;
        if err.is_permanent() || too_old {
            let why = if too_old {
                "given up after retrying"
            } else {
                "given up: retrying cannot help"
            };
            tracing::error!(%what, notif = %notif, failures = item.failures + 1, %err, "notification {why}");
            self.forget(&item, Disposal::Bury).await;
            NotifyStats::add(&self.stats.failed, 1);
            self.stats.done();
            return;
        }
        item.failures += 1;
        let delay = self.retry.delay(item.failures);
        tracing::warn!(%what, notif = %notif, failures = item.failures, retry_in = ?delay, %err, "notification not delivered; will retry");
        NotifyStats::add(&self.stats.retried, 1);
        self.seq += 1;
        self.waiting
            .insert((Instant::now() + delay, self.seq), item);
    }

    /// Deletes (delivered) or sets aside (given up) the spooled file of `item`.
    async fn forget(&mut self, item: &Item, disposal: Disposal) {
        let Some(file) = item.file.clone() else {
            return;
        };
        if !item.loaded {
            self.known.remove(&file);
        }
        let spool = self.spool.clone();
        let done = tokio::task::spawn_blocking(move || match disposal {
            Disposal::Remove => spool.remove(&file).map(|()| None),
            Disposal::Bury => spool.bury(&file).map(Some),
        })
        .await;
        match done {
            Ok(Ok(Some(path))) => {
                tracing::error!(file = %path.display(), "the undelivered notification is kept here");
            }
            Ok(Ok(None)) => {}
            Ok(Err(err)) => tracing::error!(%err, "cannot update the notification spool"),
            Err(err) => tracing::error!(%err, "updating the notification spool panicked"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Disposal {
    Remove,
    Bury,
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// The HTTP client of webhook and Pushover notifications, built when the first one
/// is sent: a daemon whose notifications are all mail (or none) never sets up TLS,
/// which costs start-up time and resident memory.
struct LazyClient {
    timeout: Duration,
    client: std::sync::OnceLock<Result<reqwest::Client, reqwest::Error>>,
}

impl LazyClient {
    fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            client: std::sync::OnceLock::new(),
        }
    }

    fn get(&self) -> &Result<reqwest::Client, reqwest::Error> {
        self.client.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(self.timeout)
                .build()
                .inspect_err(|err| {
                    tracing::error!(%err, "cannot build the HTTP client; webhook notifications will fail");
                })
        })
    }
}

/// One attempt to deliver `pending` with the settings in force (and its target,
/// where the notif's `allow_target` rule still accepts it).
async fn deliver(
    table: &Table,
    http: &LazyClient,
    smtp_timeout: Duration,
    pending: &Pending,
) -> Result<(), SendError> {
    let notif = table
        .notifs
        .get(&pending.notif)
        .ok_or_else(|| SendError::UnknownNotif(pending.notif.clone()))?;
    let notif = match pending.target.as_deref() {
        None => Cow::Borrowed(notif),
        Some(target) => match notif.with_target(target) {
            Ok(retargeted) => Cow::Owned(retargeted),
            Err(err) => {
                tracing::warn!(what = %pending.what(), notif = %pending.notif, %err,
                    "the target is no longer accepted; the notif's own recipient is used");
                Cow::Borrowed(notif)
            }
        },
    };
    let client = || {
        http.get()
            .as_ref()
            .map_err(|e| SendError::NoClient(e.to_string()))
    };
    match &notif.kind {
        NotifKind::Email(cfg) => email::send(cfg, pending, smtp_timeout).await,
        NotifKind::Webhook(cfg) => webhook::send(client()?, cfg, pending).await,
        NotifKind::Pushover(cfg) => pushover::send(client()?, cfg, pending).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_5s_up_to_10_minutes() {
        let p = RetryPolicy::default();
        let secs: Vec<u64> = (1..=10).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
        assert_eq!(p.delay(1000), Duration::from_secs(600));
        assert_eq!(p.delay(0), Duration::from_secs(5));
    }
}
