//! The scheduler task itself: the job table, the timer index, the queue of runs
//! waiting for a `max_job_running` slot, and the loop that reacts to commands, timers
//! and finished runs.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::restore::{RestoredJob, restore_job};
use super::run::{self, Finished, RunPlan};
use super::{Command, JobDef, JobView, LogSummary, SchedulerHandle, Snapshot, TriggerError};
use crate::clock::SharedClock;
use crate::exec::{RunContext, WebhookRequest};
use crate::job::{JobKey, RunStatus, Trigger};
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::schedule::interval_next;
use crate::store::{JobState, Layout, LogEntry, RunFacts, RunLogWriter, StateFile, run_log};

/// How many commands may wait in the channel before senders wait.
const COMMAND_QUEUE: usize = 1024;

/// What the scheduler starts from.
#[derive(Debug)]
pub struct SchedulerOptions {
    /// Paths under `dir_base`.
    pub layout: Layout,
    /// The source of "now" and of timer sleeps.
    pub clock: SharedClock,
    /// `max_job_running`.
    pub max_job_running: usize,
    /// The jobs, as restored from disk.
    pub jobs: Vec<RestoredJob>,
    /// Where finished runs are counted.
    pub metrics: Arc<Metrics>,
    /// Where finished runs are reported for notifications; `None` sends none.
    pub notifier: Option<Notifier>,
}

/// Starts the scheduler task. The returned handle talks to it; the join handle ends
/// after [`SchedulerHandle::shutdown`].
pub fn spawn(opts: SchedulerOptions) -> (SchedulerHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let (finished_tx, finished_rx) = mpsc::unbounded_channel();
    let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(Snapshot::default()));
    let saver = tokio::spawn(save_state_loop(
        opts.layout.state_file(),
        snapshot_rx.clone(),
    ));
    let now = opts.clock.now();
    let mut rt = Runtime {
        layout: opts.layout,
        clock: opts.clock,
        jobs: BTreeMap::new(),
        by_name: Vec::new(),
        timers: BTreeSet::new(),
        waiting: VecDeque::new(),
        running: 0,
        unslotted: 0,
        max_running: opts.max_job_running.max(1),
        finished_tx,
        snapshot_tx,
        metrics: opts.metrics,
        changed: true,
        stopping: None,
        notifier: opts.notifier,
    };
    for job in opts.jobs {
        rt.insert(job, now);
    }
    rt.index_names();
    rt.publish();
    let handle = SchedulerHandle {
        tx,
        snapshot: snapshot_rx,
    };
    let task = tokio::spawn(async move {
        rt.run(rx, finished_rx).await;
        // The final state was saved by the shutdown; the saver's channel closes here.
        drop(rt);
        let _ = saver.await;
    });
    (handle, task)
}

/// A run asked for but not started yet.
#[derive(Debug, Clone)]
struct Request {
    trigger: Trigger,
    request: Option<Arc<WebhookRequest>>,
}

/// What a job is doing now.
#[derive(Debug)]
enum Active {
    /// Accepted, waiting for a `max_job_running` slot.
    Waiting(Request),
    /// Executing run `counter`, started at `started`.
    Running {
        counter: u64,
        started: Timestamp,
        cancel: CancellationToken,
    },
}

/// One job's runtime state.
#[derive(Debug)]
struct JobRt {
    def: JobDef,
    status: RunStatus,
    paused: bool,
    counter: u64,
    last_run: Option<Timestamp>,
    next_run: Option<Timestamp>,
    logs: Vec<LogEntry>,
    active: Option<Active>,
    pending: Option<Request>,
    /// Dropped from the configuration while running; forgotten when the run ends.
    removed: bool,
    view: Arc<JobView>,
    stale: bool,
}

impl JobRt {
    fn effective_status(&self) -> RunStatus {
        match (&self.active, self.paused) {
            (Some(Active::Running { .. }), _) => RunStatus::Running,
            (_, true) => RunStatus::Paused,
            _ => self.status,
        }
    }

    fn build_view(&self) -> JobView {
        JobView {
            def: self.def.clone(),
            status: self.effective_status(),
            paused: self.paused,
            last_run: self.last_run,
            next_run: self.next_run,
            counter: self.counter,
            logs: self
                .logs
                .iter()
                .map(|l| LogSummary {
                    counter: l.counter,
                    status: l.status,
                    trigger: l.facts.trigger,
                    started: l.facts.started,
                    ended: l.facts.ended,
                    exit_code: l.facts.exit_code,
                })
                .collect(),
            queued: self.pending.is_some() || matches!(self.active, Some(Active::Waiting(_))),
        }
    }
}

struct Runtime {
    layout: Layout,
    clock: SharedClock,
    jobs: BTreeMap<JobKey, JobRt>,
    /// Job keys sorted by kind and job name, the order of snapshots.
    by_name: Vec<JobKey>,
    /// `(due, job)` for every armed timer.
    timers: BTreeSet<(Timestamp, JobKey)>,
    /// Jobs whose accepted run waits for a slot, first come first served.
    waiting: VecDeque<JobKey>,
    /// Runs holding a `max_job_running` slot (command jobs).
    running: usize,
    /// Runs that need no slot (HTTP jobs).
    unslotted: usize,
    max_running: usize,
    finished_tx: mpsc::UnboundedSender<Finished>,
    snapshot_tx: watch::Sender<Arc<Snapshot>>,
    metrics: Arc<Metrics>,
    /// Something changed since the last publish.
    changed: bool,
    /// Set once shutdown began: who to tell when the last run is recorded.
    stopping: Option<Vec<oneshot::Sender<()>>>,
    notifier: Option<Notifier>,
}

impl Runtime {
    async fn run(
        &mut self,
        mut commands: mpsc::Receiver<Command>,
        mut finished: mpsc::UnboundedReceiver<Finished>,
    ) {
        loop {
            let next_due = self.timers.first().map(|(due, _)| *due);
            let sleep = async {
                match next_due {
                    Some(due) => self.clock.sleep_until(due).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                Some(done) = finished.recv() => self.finished(done),
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None if self.stopping.is_none() => self.begin_shutdown(None),
                    None => {}
                },
                () = sleep => self.fire_due_timers(),
            }
            // Take whatever else is ready before publishing once.
            for _ in 0..256 {
                match finished.try_recv() {
                    Ok(done) => self.finished(done),
                    Err(_) => match commands.try_recv() {
                        Ok(cmd) => self.command(cmd),
                        Err(_) => break,
                    },
                }
            }
            self.publish();
            if self.stopping.is_some() && self.running + self.unslotted == 0 {
                self.end_shutdown();
                return;
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Trigger {
                key,
                trigger,
                request,
                reply,
            } => {
                let result = self.trigger(&key, Request { trigger, request });
                let _ = reply.send(result);
            }
            Command::Pause { key, reply } => {
                let _ = reply.send(self.set_paused(&key, true));
            }
            Command::Resume { key, reply } => {
                let _ = reply.send(self.set_paused(&key, false));
            }
            Command::Cancel { key, reply } => {
                let _ = reply.send(self.cancel(&key));
            }
            Command::Reload {
                jobs,
                max_job_running,
                reply,
            } => {
                self.reload(jobs, max_job_running);
                let _ = reply.send(());
            }
            Command::Shutdown { reply } => self.begin_shutdown(Some(reply)),
        }
    }

    fn trigger(&mut self, key: &JobKey, req: Request) -> Result<Arc<JobView>, TriggerError> {
        if self.stopping.is_some() {
            return Err(TriggerError::ShuttingDown);
        }
        let job = self
            .jobs
            .get_mut(key)
            .filter(|j| !j.removed)
            .ok_or_else(|| TriggerError::NotFound(key.to_string()))?;
        if job.paused {
            return Err(TriggerError::Paused);
        }
        if job.active.is_none() {
            self.activate(key, req);
        } else if job.pending.is_none() {
            job.pending = Some(req);
            job.stale = true;
        } else {
            return Err(TriggerError::Busy);
        }
        self.fresh_view(key)
            .ok_or_else(|| TriggerError::NotFound(key.to_string()))
    }

    /// Starts an accepted run now, or queues it for a free slot.
    fn activate(&mut self, key: &JobKey, req: Request) {
        if !key.kind.needs_slot() || self.running < self.max_running {
            self.start_run(key, req);
        } else if let Some(job) = self.jobs.get_mut(key) {
            job.active = Some(Active::Waiting(req));
            job.stale = true;
            self.waiting.push_back(key.clone());
        }
    }

    fn start_run(&mut self, key: &JobKey, req: Request) {
        // A running job's timer is re-armed when the run ends.
        self.disarm(key);
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        job.counter += 1;
        let counter = job.counter;
        let kind = key.kind;
        let log_dir = self.layout.log_dir(kind, &key.id);
        // The last completed run, for notif_on_recover (before pruning its log).
        let previous = job
            .logs
            .iter()
            .rev()
            .map(|l| l.status)
            .find(|s| matches!(s, RunStatus::Success | RunStatus::Failed));
        // Room for the new log within the retention.
        let keep = job.def.common.log_retention.saturating_sub(1);
        if let Err(err) = run_log::prune(&mut job.logs, keep) {
            tracing::warn!(job = %key, %err, "cannot delete old run logs");
        }
        let writer = match RunLogWriter::create(
            &log_dir,
            kind,
            &key.id,
            counter,
            self.clock.clone(),
        ) {
            Ok(writer) => writer,
            Err(err) => {
                tracing::error!(job = %key, counter, %err, "cannot create the run log; run skipped");
                let now = self.clock.now();
                job.status = RunStatus::Failed;
                job.last_run = Some(now);
                job.stale = true;
                self.changed = true;
                self.arm(key, now);
                return;
            }
        };
        let started = self.clock.now();
        job.logs.push(LogEntry {
            counter,
            status: RunStatus::Running,
            path: writer.path().to_path_buf(),
            modified: started,
            facts: RunFacts {
                trigger: Some(req.trigger),
                started: Some(started),
                ended: None,
                exit_code: None,
            },
        });
        let cancel = CancellationToken::new();
        job.active = Some(Active::Running {
            counter,
            started,
            cancel: cancel.clone(),
        });
        job.stale = true;
        if job.def.needs_slot() {
            self.running += 1;
        } else {
            self.unslotted += 1;
        }
        self.changed = true;
        tracing::info!(job = %key, counter, trigger = req.trigger.as_str(), "run started");
        let plan = RunPlan {
            def: job.def.clone(),
            ctx: RunContext {
                job_id: key.id.clone(),
                counter,
                trigger: req.trigger,
                request: req.request,
            },
            work_dir: self.layout.work_dir(kind, &key.id),
            request_file: self.layout.request_body_file(&key.id, counter),
            group_dir: self.layout.group_dir(),
            writer,
            cancel,
            clock: self.clock.clone(),
            notifier: self.notifier.clone(),
            previous,
        };
        tokio::spawn(run::execute(plan, self.finished_tx.clone()));
    }

    fn finished(&mut self, done: Finished) {
        if done.key.kind.needs_slot() {
            self.running = self.running.saturating_sub(1);
        } else {
            self.unslotted = self.unslotted.saturating_sub(1);
        }
        self.changed = true;
        let now = self.clock.now();
        if let Some(job) = self.jobs.get_mut(&done.key) {
            if let Some(Active::Running {
                counter, started, ..
            }) = &job.active
                && *counter == done.counter
            {
                let took = done.at.duration_since(*started);
                let took = std::time::Duration::try_from(took).unwrap_or_default();
                self.metrics.run_finished(&done.key, done.status, took);
                job.active = None;
            }
            job.status = done.status;
            job.last_run = Some(done.at);
            if let Some(entry) = job.logs.iter_mut().find(|l| l.counter == done.counter) {
                entry.status = done.status;
                entry.path = entry.path.with_extension(done.status.as_str());
                entry.modified = done.at;
                entry.facts.ended = Some(done.at);
                entry.facts.exit_code = done.exit_code;
            }
            job.stale = true;
            let next = job.pending.take().filter(|_| self.stopping.is_none());
            if job.removed {
                self.jobs.remove(&done.key);
                self.index_names();
            } else if let Some(next) = next {
                // Behind whoever already waits for a slot.
                if done.key.kind.needs_slot() {
                    job.active = Some(Active::Waiting(next));
                    self.waiting.push_back(done.key.clone());
                } else {
                    self.start_run(&done.key, next);
                }
            }
            self.arm(&done.key, now);
        }
        self.fill_slots();
    }

    /// Starts waiting runs while slots are free.
    fn fill_slots(&mut self) {
        while self.running < self.max_running {
            let Some(key) = self.waiting.pop_front() else {
                return;
            };
            let Some(job) = self.jobs.get_mut(&key) else {
                continue;
            };
            if matches!(job.active, Some(Active::Waiting(_)))
                && let Some(Active::Waiting(req)) = job.active.take()
            {
                self.start_run(&key, req);
            }
        }
    }

    fn set_paused(&mut self, key: &JobKey, paused: bool) -> Option<Arc<JobView>> {
        let now = self.clock.now();
        let job = self.jobs.get_mut(key).filter(|j| !j.removed)?;
        job.paused = paused;
        job.stale = true;
        self.changed = true;
        if !paused {
            // Some kinds reset a resumed job's status (spec 6.4); a run in progress
            // still shows `running` and sets the status when it ends.
            if let Some(status) = key.kind.status_on_resume() {
                job.status = status;
            }
            self.arm(key, now);
        }
        tracing::info!(job = %key, paused, "pause state changed");
        self.save_state_now();
        self.fresh_view(key)
    }

    fn cancel(&mut self, key: &JobKey) -> Option<Arc<JobView>> {
        let job = self.jobs.get_mut(key).filter(|j| !j.removed)?;
        match &job.active {
            Some(Active::Running {
                cancel, counter, ..
            }) => {
                tracing::info!(job = %key, counter, "cancel requested");
                cancel.cancel();
            }
            Some(Active::Waiting(_)) => {
                job.active = job.pending.take().map(Active::Waiting);
                if job.active.is_none() {
                    self.waiting.retain(|w| w != key);
                }
                job.stale = true;
                self.changed = true;
            }
            None => {}
        }
        self.fresh_view(key)
    }

    fn fire_due_timers(&mut self) {
        let now = self.clock.now();
        while let Some((due, key)) = self.timers.first().cloned() {
            if due > now {
                break;
            }
            self.timers.pop_first();
            let Some(job) = self.jobs.get_mut(&key) else {
                continue;
            };
            job.next_run = None;
            job.stale = true;
            self.changed = true;
            if job.paused {
                tracing::debug!(job = %key, "timer fired while paused; skipped");
            } else if job.active.is_none() {
                self.activate(&key, timer_request());
            } else if job.pending.is_none() {
                job.pending = Some(timer_request());
            } else {
                tracing::debug!(job = %key, "timer fired while a run is running and another queued; coalesced");
            }
            self.arm_after(&key, due, now);
        }
    }

    /// Arms the job's timer from `now` (after a run, a resume or a reload).
    fn arm(&mut self, key: &JobKey, now: Timestamp) {
        self.arm_after(key, now, now);
    }

    /// Arms the job's timer for its first due time after `slot` (a schedule slot that
    /// just fired), never in the past. Interval jobs are armed only while idle: their
    /// period runs from the end of the previous run.
    fn arm_after(&mut self, key: &JobKey, slot: Timestamp, now: Timestamp) {
        self.disarm(key);
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        if job.removed || self.stopping.is_some() {
            return;
        }
        let next = if let Some(schedule) = job.def.common.schedule.as_ref() {
            let next = schedule.next_after(slot);
            Some(if next <= now {
                schedule.next_after(now)
            } else {
                next
            })
        } else if let Some(interval) = job.def.common.interval {
            // While paused, ticks are skipped one interval apart (the original's paused
            // tick also counts as a run for the next one).
            let since = if job.paused { Some(now) } else { job.last_run };
            let idle = job.active.is_none() && job.pending.is_none();
            idle.then(|| interval_next(since, interval, now))
        } else {
            None
        };
        job.next_run = next;
        job.stale = true;
        self.changed = true;
        if let Some(due) = next {
            self.timers.insert((due, key.clone()));
        }
    }

    fn disarm(&mut self, key: &JobKey) {
        if let Some(job) = self.jobs.get_mut(key)
            && let Some(due) = job.next_run
        {
            self.timers.remove(&(due, key.clone()));
        }
    }

    fn reload(&mut self, defs: Vec<JobDef>, max_job_running: usize) {
        let now = self.clock.now();
        // Jobs added back get what the state file last said of them.
        let saved = StateFile::load(&self.layout.state_file())
            .map(|(state, _)| state)
            .unwrap_or_default();
        self.max_running = max_job_running.max(1);
        let new_keys: BTreeSet<JobKey> = defs.iter().map(JobDef::key).collect();
        let old_keys: Vec<JobKey> = self.jobs.keys().cloned().collect();
        for key in old_keys.iter().filter(|key| !new_keys.contains(*key)) {
            self.disarm(key);
            let Some(job) = self.jobs.get_mut(key) else {
                continue;
            };
            if matches!(job.active, Some(Active::Running { .. })) {
                job.removed = true;
                job.pending = None;
            } else {
                self.waiting.retain(|w| w != key);
                self.jobs.remove(key);
            }
            tracing::info!(job = %key, "job removed by reload");
        }
        for def in defs {
            let key = def.key();
            match self.jobs.get_mut(&key) {
                Some(job) => {
                    job.def = def;
                    job.removed = false;
                    job.stale = true;
                    self.arm(&key, now);
                }
                None => match restore_job(&self.layout, def, &saved, now) {
                    Ok(restored) => {
                        tracing::info!(job = %key, "job added by reload");
                        self.insert(restored, now);
                    }
                    Err(err) => tracing::error!(job = %key, %err, "cannot add job on reload"),
                },
            }
        }
        self.index_names();
        self.changed = true;
        self.fill_slots();
    }

    fn insert(&mut self, job: RestoredJob, now: Timestamp) {
        let key = job.def.key();
        let rt = JobRt {
            view: Arc::new(JobView {
                def: job.def.clone(),
                status: job.status,
                paused: job.paused,
                last_run: job.last_run,
                next_run: None,
                counter: job.counter,
                logs: Vec::new(),
                queued: false,
            }),
            def: job.def,
            status: job.status,
            paused: job.paused,
            counter: job.counter,
            last_run: job.last_run,
            next_run: None,
            logs: job.logs,
            active: None,
            pending: None,
            removed: false,
            stale: true,
        };
        self.jobs.insert(key.clone(), rt);
        self.arm(&key, now);
    }

    fn index_names(&mut self) {
        let mut keys: Vec<_> = self
            .jobs
            .values()
            .map(|j| ((j.def.kind(), j.def.name().to_string()), j.def.key()))
            .collect();
        keys.sort();
        self.by_name = keys.into_iter().map(|(_, key)| key).collect();
    }

    /// Rebuilds the view of one job now (for a reply) and returns it.
    fn fresh_view(&mut self, key: &JobKey) -> Option<Arc<JobView>> {
        let job = self.jobs.get_mut(key)?;
        if job.stale {
            job.view = Arc::new(job.build_view());
            job.stale = false;
            self.changed = true;
        }
        Some(job.view.clone())
    }

    /// Publishes a new snapshot, if anything changed; the state saver follows it.
    fn publish(&mut self) {
        if !self.changed {
            return;
        }
        self.changed = false;
        let mut snapshot = Snapshot {
            running: self.running + self.unslotted,
            waiting: self.waiting.len(),
            ..Snapshot::default()
        };
        for key in &self.by_name {
            let Some(job) = self.jobs.get_mut(key) else {
                continue;
            };
            if job.stale {
                job.view = Arc::new(job.build_view());
                job.stale = false;
            }
            snapshot.jobs.push(job.view.clone());
        }
        self.snapshot_tx.send_replace(Arc::new(snapshot));
    }

    /// Publishes and writes the state file now, before answering (a pause must survive
    /// a kill -9 that follows the answer).
    fn save_state_now(&mut self) {
        self.publish();
        let state = state_of(&self.snapshot_tx.borrow());
        if let Err(err) = state.save(&self.layout.state_file()) {
            tracing::error!(%err, "cannot save the state file");
        }
    }

    fn begin_shutdown(&mut self, reply: Option<oneshot::Sender<()>>) {
        let waiters = self.stopping.get_or_insert_with(Vec::new);
        waiters.extend(reply);
        self.timers.clear();
        self.waiting.clear();
        for job in self.jobs.values_mut() {
            job.pending = None;
            job.next_run = None;
            job.stale = true;
            match &job.active {
                Some(Active::Running { cancel, .. }) => cancel.cancel(),
                Some(Active::Waiting(_)) => job.active = None,
                None => {}
            }
        }
        self.changed = true;
        tracing::info!(running = self.running, "stopping: cancelling running jobs");
    }

    fn end_shutdown(&mut self) {
        self.changed = true;
        self.save_state_now();
        for waiter in self.stopping.take().unwrap_or_default() {
            let _ = waiter.send(());
        }
    }
}

fn timer_request() -> Request {
    Request {
        trigger: Trigger::Timer,
        request: None,
    }
}

/// The least time between two background saves of the state file. What it holds
/// besides the paused flags (last and next runs, counters) is also recoverable from the
/// run logs, and pauses are saved at once, so a burst of runs costs one save per
/// interval instead of one per run.
const SAVE_INTERVAL: Duration = Duration::from_millis(250);

/// The state file's content for a snapshot.
fn state_of(snapshot: &Snapshot) -> StateFile {
    let mut state = StateFile::default();
    for view in &snapshot.jobs {
        *state.entry(view.def.kind(), view.id()) = JobState {
            paused: view.paused,
            last_run: view.last_run,
            next_run: view.next_run,
            counter: view.counter,
        };
    }
    state
}

/// Writes the state of new snapshots to disk, at most once per [`SAVE_INTERVAL`]: only
/// the latest state of a burst is written.
async fn save_state_loop(path: std::path::PathBuf, mut rx: watch::Receiver<Arc<Snapshot>>) {
    while rx.changed().await.is_ok() {
        let state = state_of(&rx.borrow_and_update());
        let path = path.clone();
        let saved = tokio::task::spawn_blocking(move || state.save(&path)).await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(%err, "cannot save the state file"),
            Err(err) => tracing::error!(%err, "saving the state file panicked"),
        }
        tokio::time::sleep(SAVE_INTERVAL).await;
    }
}
