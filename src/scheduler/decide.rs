//! The scheduler's decisions, as one pure function: [`decide`] takes the whole
//! [`SchedulerState`], one [`Event`] (a trigger, a timer coming due, a run's end, a
//! pause, resume or cancel, a reload, the restore at start-up, the shutdown) and the
//! time, changes the state and returns the [`Effect`]s the executor must perform:
//! open a run log, spawn or cancel a run, save the state file, notify, publish a
//! snapshot, answer the caller. It does no IO, reads no clock, spawns nothing and
//! draws no random numbers, so every rule (the queue of one, `max_job_running`,
//! pausing, re-arming timers, reloads while runs go on, restore after a crash) is a
//! table test without processes or files. Its only side effect is tracing.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::monitors::{
    self, MonitorAlert, MonitorLogWrite, Monitors, PingAnswer, PulseError, RestoredMonitor,
};
use super::policy::{self, Cadence};
use super::restore::RestoredJob;
use super::services::{
    self, InstanceEvent, InstanceOrder, RestoredService, ServiceAlert, ServicePingAnswer, Services,
};
use super::{JobDef, JobView, LogSummary, Snapshot, TriggerError};
use crate::config::Config;
use crate::config::policies::Overlap;
use crate::exec::WebhookRequest;
use crate::job::JobId;
use crate::job::{JobKey, RunOrigin, RunStatus, Trigger};
use crate::monitor::{MonitorState, PauseUntil, Ping, Pulse};
use crate::schedule::interval_next;
use crate::store::NewEvent;
use crate::store::RetryState;
use crate::store::event_log::{Level, Source};
use crate::store::monitor_files::PingBlock;
use crate::store::{LogEntry, RunFacts, run_log};

/// Something that happened, for [`decide`] to act on.
#[derive(Debug)]
pub(crate) enum Event {
    /// Start-up: the jobs as restored from disk (interrupted runs already closed as
    /// `failed` by the scan).
    Restore {
        /// The restored jobs.
        jobs: Vec<RestoredJob>,
        /// `max_job_running`.
        max_job_running: usize,
        /// The configuration the jobs came from, published with them.
        config: Arc<Config>,
        /// The monitors, as restored from disk.
        monitors: Vec<RestoredMonitor>,
        /// When the previous karajo was last known alive (*L* of the monitors' restart
        /// rule); `None` when it left no mark.
        last_alive: Option<Timestamp>,
        /// The records of the dynamic monitors among `monitors`.
        pulses: Vec<Pulse>,
        /// The services, as restored from disk.
        services: Vec<RestoredService>,
    },
    /// A run was asked for (web hook, API, library).
    Trigger {
        /// The job.
        key: JobKey,
        /// What asks, and the web hook request if any.
        request: Request,
    },
    /// The earliest timer is due (or past due) at `now`.
    TimerDue,
    /// A run's work is done (its commands exited) and its log is being closed: it
    /// still runs until [`Event::RunFinished`], but gives its slot back now.
    RunExecuted {
        /// The job.
        key: JobKey,
        /// The run.
        counter: u64,
    },
    /// A run ended.
    RunFinished(Finished),
    /// The API paused a job.
    Pause(JobKey),
    /// The API resumed a job.
    Resume(JobKey),
    /// The API canceled a job's current run or its queued one.
    Cancel(JobKey),
    /// A new configuration: `jobs` is the whole new job set; `restored` holds what is
    /// on disk for the jobs that are new to the scheduler.
    Reload {
        /// Every job of the new configuration.
        jobs: Vec<JobDef>,
        /// The new jobs, restored from disk.
        restored: Vec<RestoredJob>,
        /// `max_job_running`.
        max_job_running: usize,
        /// The new configuration, published with the new job set.
        config: Arc<Config>,
        /// The monitors new to the scheduler, restored from disk.
        monitors: Vec<RestoredMonitor>,
        /// The services new to the scheduler, restored from disk.
        services: Vec<RestoredService>,
    },
    /// A check-in for monitor `id`, with the text its log gets.
    Ping {
        /// The monitor.
        id: JobId,
        /// What it says.
        ping: Ping,
        /// Its header line and captured body.
        block: PingBlock,
    },
    /// The API paused a monitor; `None` takes the monitor's default.
    PauseMonitor {
        /// The monitor.
        id: JobId,
        /// Until what.
        until: Option<PauseUntil>,
    },
    /// The API resumed a monitor.
    ResumeMonitor(JobId),
    /// A watchTower pulse, with the text its log gets.
    Pulse {
        /// What it asks for.
        pulse: Pulse,
        /// Its header line.
        block: PingBlock,
        /// What is on disk for its monitor when the scheduler did not know it.
        fresh: Option<Box<RestoredMonitor>>,
    },
    /// A watchTower cancel for `service`.
    CancelPulse(String),
    /// A control of a service.
    ServiceControl {
        /// The service.
        id: JobId,
        /// What is asked.
        control: crate::service::Control,
        /// The `cas=` precondition.
        cas: Option<u64>,
        /// Who asked.
        by: String,
    },
    /// A ping of a service with an instance token.
    ServicePing {
        /// The service.
        id: JobId,
        /// The token.
        token: String,
        /// What the ping says.
        update: crate::service::PingUpdate,
    },
    /// What a service instance's supervisor reported.
    Instance {
        /// The service.
        id: JobId,
        /// The spawn it is about.
        generation: u64,
        /// What happened.
        event: InstanceEvent,
    },
    /// Stop: no new runs, cancel those running, then [`Effect::Stopped`].
    Shutdown,
    /// Cluster mode: this node accepted an order; start run `counter` of `key` now
    /// (the cluster's counter; its queue and pause rules were applied by the
    /// cluster's record, so none of this node's apply).
    ClusterStart {
        /// The job.
        key: JobKey,
        /// The run's counter, from the shared record.
        counter: u64,
        /// What started it.
        trigger: Trigger,
        /// The run's id in the cluster.
        run: String,
    },
    /// Cluster mode: job `key`'s shared record as it is now; the job's view follows
    /// it, and a cancel it asks of a run of this node is carried out.
    ClusterRecord {
        /// The job.
        key: JobKey,
        /// The record.
        record: Box<crate::cluster::decide::JobRecord>,
        /// Its revision: an older one than the job has seen is ignored.
        revision: u64,
    },
    /// Cluster mode: run `counter` of `key` has a final log here that this node did not
    /// write as a run of its own (collected from the node that ran it, or written for a
    /// run that never ran: a paused execution, a lost or unaccepted run).
    ClusterLog {
        /// The job.
        key: JobKey,
        /// The run's counter.
        counter: u64,
        /// Its final status.
        status: RunStatus,
        /// The log file.
        path: PathBuf,
    },
}

/// A run asked for but not started yet.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// What asked for it.
    pub(crate) trigger: Trigger,
    /// The web hook request whose body the run gets.
    pub(crate) request: Option<Arc<WebhookRequest>>,
    /// The attempt it retries, the run it follows, or the slot it catches up.
    pub(crate) origin: Option<RunOrigin>,
    /// Extra environment of the run: a delivery's `KARAJO_GIT_*`, a manual run's
    /// `KARAJO_PARAM_*` (issue 15).
    pub(crate) env: Vec<(String, String)>,
}

impl Request {
    /// A timer's request.
    pub(crate) fn timer() -> Self {
        Self::from(Trigger::Timer, None)
    }

    /// A request by `trigger` for the reason `origin`.
    pub(crate) fn from(trigger: Trigger, origin: Option<RunOrigin>) -> Self {
        Self {
            trigger,
            request: None,
            origin,
            env: Vec::new(),
        }
    }
}

/// A run's end, as its task reports it.
#[derive(Debug)]
pub(crate) struct Finished {
    /// The job.
    pub(crate) key: JobKey,
    /// The run's counter.
    pub(crate) counter: u64,
    /// How it ended.
    pub(crate) status: RunStatus,
    /// When it ended.
    pub(crate) at: Timestamp,
    /// The exit code of the command that ended the run, when a command exited.
    pub(crate) exit_code: Option<i32>,
    /// The closed log, `None` when no log could be created.
    pub(crate) log: Option<PathBuf>,
}

/// What the executor must do, in order.
#[derive(Debug)]
pub(crate) enum Effect {
    /// Delete the logs in `prune` (beyond the retention) and create run `counter`'s
    /// log `<id>.<counter>.running` in `log_dir`.
    OpenLog {
        /// The job.
        key: JobKey,
        /// The new run's counter.
        counter: u64,
        /// The job's log directory.
        log_dir: PathBuf,
        /// Old logs to delete first.
        prune: Vec<PathBuf>,
    },
    /// Start the run whose log [`Effect::OpenLog`] opens.
    SpawnRun(RunOrder),
    /// Cancel a running run (it ends as `canceled` and reports back).
    CancelRun {
        /// The job.
        key: JobKey,
        /// The run's counter.
        counter: u64,
    },
    /// Count a finished run in the metrics.
    CountRun {
        /// The job.
        key: JobKey,
        /// How it ended.
        status: RunStatus,
        /// How long it took.
        took: Duration,
    },
    /// Queue the notifications of a finished run.
    Notify(Notice),
    /// Write the state file: `durable` means before the answer that follows is sent
    /// (a pause must survive a kill -9 that follows its answer); otherwise soon, once
    /// for a burst of changes.
    SaveState {
        /// Write and sync before answering.
        durable: bool,
    },
    /// Publish a new snapshot.
    Publish,
    /// Write a monitor's check-in log.
    MonitorLog(MonitorLogWrite),
    /// Write a monitor's state file: `durable` means before what follows (its
    /// notifications, the ping's answer) happens.
    SaveMonitor {
        /// The monitor.
        id: JobId,
        /// Its state.
        state: MonitorState,
        /// Write and sync before going on.
        durable: bool,
    },
    /// Append to the event log.
    RecordEvent(NewEvent),
    /// Count a monitor's transition into `to` in the metrics.
    CountTransition {
        /// The monitor.
        id: JobId,
        /// The status entered.
        to: &'static str,
    },
    /// Queue a monitor's notification.
    NotifyMonitor(MonitorAlert),
    /// Write `state/watchtower.json` with these records, before what follows.
    SavePulses(Vec<Pulse>),
    /// Write a service's state file: `durable` means before what follows.
    SaveService {
        /// The service.
        id: JobId,
        /// Its saved part.
        saved: crate::service::SavedService,
        /// Write and sync before going on.
        durable: bool,
    },
    /// Spawn a service instance.
    SpawnInstance(InstanceOrder),
    /// Take over a pid-file daemon a previous karajo left running.
    AdoptInstance {
        /// Its log segment and the service.
        order: InstanceOrder,
        /// The recorded instance.
        record: crate::service::InstanceRecord,
    },
    /// Signal a service's instance (or the orphan a previous karajo left).
    SignalService {
        /// The service.
        id: JobId,
        /// The signal.
        signal: crate::config::ServiceSignal,
        /// The recorded orphan to signal instead, if any.
        orphan: Option<crate::service::InstanceRecord>,
    },
    /// Tell a service's instance something (a log line, close the log).
    InstanceControl {
        /// The service.
        id: JobId,
        /// What.
        control: crate::exec::service::InstanceControl,
    },
    /// Close a segment a previous karajo left running.
    CloseLeftover {
        /// The service.
        id: JobId,
        /// Its log directory.
        log_dir: PathBuf,
        /// The segment.
        counter: u64,
        /// Its final status.
        status: RunStatus,
        /// The last line.
        line: String,
    },
    /// Append to a service's history.
    ServiceHistory {
        /// The service.
        id: JobId,
        /// The entry.
        entry: crate::service::HistoryEntry,
        /// The entries kept.
        keep: usize,
    },
    /// Queue a service's notification.
    NotifyService(ServiceAlert),
    /// Watch a recorded instance of a previous karajo until it is gone.
    WatchOrphan {
        /// The service.
        id: JobId,
        /// The instance.
        record: crate::service::InstanceRecord,
    },
    /// Delete old log files (beyond a retention).
    DeleteLogs(Vec<PathBuf>),
    /// Delete a removed monitor's state file and logs, after what was asked before.
    ForgetMonitor {
        /// The monitor.
        id: JobId,
        /// Its log directory.
        log_dir: PathBuf,
    },
    /// Delete these logs (beyond the retention).
    PruneLogs(Vec<PathBuf>),
    /// Cluster mode: a cluster job's timer slot is due; claim it, and if won apply the
    /// `Timer` transition (the cluster decides whether and where it runs).
    ClusterSlot {
        /// The job.
        key: JobKey,
        /// The slot.
        at: Timestamp,
    },
    /// Cluster mode: a run this node executed for the cluster ended; ship its final
    /// status and apply the `Finished` transition.
    ClusterEnded {
        /// The job.
        key: JobKey,
        /// The run's counter.
        counter: u64,
        /// How it ended.
        status: RunStatus,
        /// When.
        at: Timestamp,
    },
    /// Answer the caller of the event.
    Answer(Answer),
    /// The shutdown is complete: no run is left.
    Stopped,
}

/// A run to start.
#[derive(Debug)]
pub(crate) struct RunOrder {
    /// The job as it is at the start.
    pub(crate) def: JobDef,
    /// The run's counter.
    pub(crate) counter: u64,
    /// What started it.
    pub(crate) request: Request,
    /// The run's id when it runs for a cluster order.
    pub(crate) cluster_run: Option<String>,
}

/// A finished run, for its notifications.
#[derive(Debug)]
pub(crate) struct Notice {
    /// The job as it was when the run started.
    pub(crate) def: JobDef,
    /// The run's counter.
    pub(crate) counter: u64,
    /// How it ended.
    pub(crate) status: RunStatus,
    /// What started it.
    pub(crate) trigger: Trigger,
    /// When it started.
    pub(crate) started: Timestamp,
    /// When it ended.
    pub(crate) ended: Timestamp,
    /// The closed log.
    pub(crate) log: PathBuf,
    /// The job's previous run that ended `success` or `failed`.
    pub(crate) previous: Option<RunStatus>,
    /// A failed attempt that another follows: it goes to `notif_on_retry` instead
    /// of `notif_on_failed`.
    pub(crate) retrying: bool,
}

/// The answer to the event's caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The job as it is now (trigger accepted, paused, resumed, cancel requested).
    Job(JobKey),
    /// The trigger was refused.
    Refused(TriggerError),
    /// There is no such job or monitor.
    Unknown,
    /// A ping was taken.
    Ping(PingAnswer),
    /// The monitor as it is now (paused, resumed, pulsed).
    Monitor(JobId),
    /// A watchTower pulse or cancel was refused.
    PulseRefused(PulseError),
    /// The monitor was removed (a watchTower cancel).
    Removed(JobId),
    /// A service control's outcome (`None`: nothing to say, the service as it is).
    Service {
        /// The service.
        id: JobId,
        /// The machine's reply.
        reply: Option<crate::service::Reply>,
    },
    /// A service ping's outcome.
    ServicePing(ServicePingAnswer),
    /// Done (a reload).
    Done,
}

/// What a job is doing now.
#[derive(Debug)]
enum Active {
    /// Accepted, waiting for a `max_job_running` slot.
    Waiting(Request),
    /// Executing run `counter`.
    Running {
        counter: u64,
        started: Timestamp,
        trigger: Trigger,
        /// The job as it was when the run started (for its notifications).
        def: JobDef,
        /// Started by a cluster order: its end goes back to the cluster.
        cluster: bool,
        /// Which attempt, chain or catch-up it is.
        origin: Option<RunOrigin>,
        /// Its extra environment (parameters, a delivery's git facts), which a retry
        /// of it gets again.
        env: Vec<(String, String)>,
    },
}

/// One job's runtime state.
#[derive(Debug)]
struct JobEntry {
    def: JobDef,
    log_dir: PathBuf,
    status: RunStatus,
    paused: bool,
    counter: u64,
    last_run: Option<Timestamp>,
    next_run: Option<Timestamp>,
    logs: Vec<LogEntry>,
    /// The last run that ended `success` or `failed`, for `notif_on_recover`.
    last_completed: Option<RunStatus>,
    active: Option<Active>,
    /// A trigger accepted while a run is active.
    pending: Option<Request>,
    /// `overlap = allow`: the runs going on beside `active`, by counter (always
    /// [`Active::Running`]).
    side: BTreeMap<u64, Active>,
    /// Dropped from the configuration while running; forgotten when the run ends.
    removed: bool,
    /// Coordinated through the cluster (cluster mode, `run_on` other than `local`):
    /// its timer claims slots, its runs come as orders.
    cluster: bool,
    /// The cluster's record shows a run dispatched or running somewhere (an interval
    /// is armed only while it does not).
    cluster_busy: bool,
    /// The revision of the newest cluster record applied.
    cluster_revision: u64,
    /// A failed run's next attempt, waiting for its time.
    retry: Option<RetryState>,
    /// The extra environment the waiting retry gets (in memory only: parameters may
    /// be secrets, so a retry after a restart gets the defaults).
    retry_env: Vec<(String, String)>,
    /// Missed timer slots still to catch up, oldest first.
    catch_up: VecDeque<Timestamp>,
    /// Triggers refused lately by `overlap = skip`.
    skipped: VecDeque<(Timestamp, Trigger)>,
    view: Arc<JobView>,
    stale: bool,
}

impl JobEntry {
    fn new(job: RestoredJob) -> Self {
        let last_completed = job
            .logs
            .iter()
            .rev()
            .map(|l| l.status)
            .find(|s| matches!(s, RunStatus::Success | RunStatus::Failed));
        let mut entry = Self {
            view: Arc::new(JobView {
                def: job.def.clone(),
                status: job.status,
                paused: job.paused,
                last_run: job.last_run,
                next_run: None,
                counter: job.counter,
                logs: Vec::new(),
                queued: false,
                retry: job.retry,
                skipped: Vec::new(),
            }),
            def: job.def,
            log_dir: job.log_dir,
            status: job.status,
            paused: job.paused,
            counter: job.counter,
            last_run: job.last_run,
            next_run: None,
            logs: job.logs,
            last_completed,
            active: None,
            pending: None,
            side: BTreeMap::new(),
            removed: false,
            cluster: false,
            cluster_busy: false,
            cluster_revision: 0,
            retry: job.retry,
            retry_env: Vec::new(),
            catch_up: VecDeque::new(),
            skipped: VecDeque::new(),
            stale: true,
        };
        entry.refresh_view();
        entry
    }

    fn effective_status(&self) -> RunStatus {
        match (&self.active, self.paused) {
            (Some(Active::Running { .. }), _) => RunStatus::Running,
            _ if !self.side.is_empty() => RunStatus::Running,
            (None, false) if self.cluster_busy => RunStatus::Running,
            (_, true) => RunStatus::Paused,
            _ => self.status,
        }
    }

    fn running_counter(&self) -> Option<u64> {
        match &self.active {
            Some(Active::Running { counter, .. }) => Some(*counter),
            _ => None,
        }
    }

    /// The counters of every run going on: the active one and those beside it.
    fn running_counters(&self) -> Vec<u64> {
        self.running_counter()
            .into_iter()
            .chain(self.side.keys().copied())
            .collect()
    }

    fn refresh_view(&mut self) {
        if !self.stale {
            return;
        }
        self.stale = false;
        self.view = Arc::new(JobView {
            def: self.def.clone(),
            status: self.effective_status(),
            paused: self.paused,
            last_run: self.last_run,
            next_run: self.next_run,
            counter: self.counter,
            logs: self.logs.iter().map(LogSummary::from).collect(),
            queued: self.pending.is_some() || matches!(self.active, Some(Active::Waiting(_))),
            retry: self.retry,
            skipped: self.skipped.iter().copied().collect(),
        });
    }
}

/// Everything the scheduler decides on: every job's status, counters, timers and
/// queue, the `max_job_running` slots and the configuration to publish.
#[derive(Debug)]
pub(crate) struct SchedulerState {
    jobs: BTreeMap<JobKey, JobEntry>,
    /// Job keys sorted by kind and job name, the order of snapshots.
    by_name: Vec<JobKey>,
    /// `(due, job)` for every armed timer.
    timers: BTreeSet<(Timestamp, JobKey)>,
    /// `(due, job)` for every failed run's next attempt.
    retries: BTreeSet<(Timestamp, JobKey)>,
    /// Jobs whose accepted run waits for a slot, first come first served.
    waiting: VecDeque<JobKey>,
    /// Runs holding a `max_job_running` slot.
    slotted: usize,
    /// Slotted runs whose work is done and whose log is being made durable: they
    /// count as running but hold no slot (an fsync is not work `max_job_running`
    /// limits).
    closing: BTreeSet<(JobKey, u64)>,
    /// Runs of kinds that need no slot.
    unslotted: usize,
    max_running: usize,
    pub(crate) config: Arc<Config>,
    /// The heartbeat monitors.
    pub(crate) monitors: Monitors,
    /// The supervised services.
    pub(crate) services: Services,
    pub(crate) stopping: bool,
    /// This node is in a cluster with this name: jobs whose `run_on` is not `local`
    /// are coordinated through it. `None`: single-node mode.
    pub(crate) cluster_node: Option<crate::cluster::NodeName>,
    /// Something visible changed since the last [`Effect::Publish`].
    changed: bool,
    /// Something the state file holds changed since the last [`Effect::SaveState`].
    unsaved: bool,
}

impl SchedulerState {
    /// Whether a slotted run may start now.
    fn slot_free(&self) -> bool {
        self.slotted.saturating_sub(self.closing.len()) < self.max_running
    }

    /// An empty state; [`Event::Restore`] fills it.
    pub(crate) fn new(config: Arc<Config>) -> Self {
        Self {
            jobs: BTreeMap::new(),
            by_name: Vec::new(),
            timers: BTreeSet::new(),
            retries: BTreeSet::new(),
            waiting: VecDeque::new(),
            slotted: 0,
            closing: BTreeSet::new(),
            unslotted: 0,
            max_running: 1,
            config,
            monitors: Monitors::default(),
            services: Services::default(),
            stopping: false,
            cluster_node: None,
            changed: true,
            unsaved: false,
        }
    }

    /// When the earliest timer (of a job or a monitor) is due.
    pub(crate) fn next_due(&self) -> Option<Timestamp> {
        let job = self.timers.first().map(|(due, _)| *due);
        let retry = self.retries.first().map(|(due, _)| *due);
        [
            job,
            retry,
            self.monitors.next_due(),
            self.services.next_due(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Something visible changed: a snapshot is due.
    pub(crate) fn mark_changed(&mut self) {
        self.changed = true;
    }

    /// Whether the scheduler knows job `key` (a job removed while running is still
    /// known until its run ends).
    pub(crate) fn knows(&self, key: &JobKey) -> bool {
        self.jobs.contains_key(key)
    }

    /// The current view of job `key`.
    pub(crate) fn view(&mut self, key: &JobKey) -> Option<Arc<JobView>> {
        let job = self.jobs.get_mut(key)?;
        job.refresh_view();
        Some(job.view.clone())
    }

    /// A snapshot of every job, in name order.
    pub(crate) fn snapshot(&mut self) -> Snapshot {
        let mut jobs = Vec::with_capacity(self.by_name.len());
        for key in &self.by_name {
            if let Some(job) = self.jobs.get_mut(key) {
                job.refresh_view();
                jobs.push(job.view.clone());
            }
        }
        Snapshot {
            jobs,
            running: self.slotted + self.unslotted,
            waiting: self.waiting.len(),
            config: self.config.clone(),
            monitors: self.monitors.views(),
            ping_routes: self.monitors.routes(),
            services: self.services.views(),
        }
    }

    fn touch(&mut self, key: &JobKey) {
        if let Some(job) = self.jobs.get_mut(key) {
            job.stale = true;
        }
        self.changed = true;
    }
}

/// Applies `event` at time `now` to `state` and returns what must be done, in order.
pub(crate) fn decide(state: &mut SchedulerState, event: Event, now: Timestamp) -> Vec<Effect> {
    let mut out = Vec::new();
    match event {
        Event::Restore {
            jobs,
            max_job_running,
            config,
            monitors,
            last_alive,
            pulses,
            services: restored_services,
        } => {
            state.max_running = max_job_running.max(1);
            state.config = config;
            monitors::restore_pulses(state, pulses);
            // Lower priorities start first (monitors spec B.7).
            let mut restored_services = restored_services;
            restored_services.sort_by_key(|s| s.spec.priority);
            for service in restored_services {
                services::insert(state, service, now, &mut out);
            }
            for job in jobs {
                let key = job.def.key();
                let missed_from = job.next_run;
                insert(state, job, now);
                catch_up(state, &key, missed_from, now, &mut out);
            }
            index_names(state);
            for monitor in monitors {
                monitors::insert(state, monitor, Some(last_alive), now, &mut out);
            }
            state.changed = true;
        }
        Event::Trigger { key, request } => {
            let answer = trigger(state, &key, request, now, &mut out);
            out.push(Effect::Answer(answer));
        }
        Event::TimerDue => {
            fire_due_timers(state, now, &mut out);
            monitors::fire_due(state, now, &mut out);
            services::fire_due(state, now, &mut out);
        }
        Event::RunExecuted { key, counter } => executed(state, key, counter, now, &mut out),
        Event::RunFinished(done) => finished(state, done, now, &mut out),
        Event::Pause(key) => set_paused(state, &key, true, now, &mut out),
        Event::Resume(key) => set_paused(state, &key, false, now, &mut out),
        Event::Cancel(key) => {
            let answer = cancel(state, &key, &mut out);
            out.push(Effect::Answer(answer));
        }
        Event::Reload {
            jobs,
            restored,
            max_job_running,
            config,
            monitors: restored_monitors,
            services: restored_services,
        } => {
            let specs = config.monitors.iter().cloned().map(Arc::new).collect();
            let service_specs = config.services.iter().cloned().map(Arc::new).collect();
            reload(
                state,
                jobs,
                restored,
                max_job_running,
                config,
                now,
                &mut out,
            );
            monitors::reload(state, specs, restored_monitors, now, &mut out);
            if !state.stopping {
                services::reload(state, service_specs, restored_services, now, &mut out);
            }
            out.push(Effect::Answer(Answer::Done));
        }
        Event::Ping { id, ping, block } => {
            let answer = monitors::ping(state, &id, &ping, block, now, &mut out);
            out.push(Effect::Answer(answer));
        }
        Event::PauseMonitor { id, until } => {
            let answer = monitors::pause(state, &id, until, now, &mut out);
            out.push(Effect::Answer(answer));
        }
        Event::ResumeMonitor(id) => {
            let answer = monitors::resume(state, &id, now, &mut out);
            out.push(Effect::Answer(answer));
        }
        Event::Pulse {
            pulse,
            block,
            fresh,
        } => {
            let answer = monitors::pulse(state, pulse, block, fresh, now, &mut out);
            out.push(Effect::Answer(answer));
        }
        Event::CancelPulse(service) => {
            let answer = monitors::cancel_pulse(state, &service, now, &mut out);
            out.push(Effect::Answer(answer));
        }
        Event::ServiceControl {
            id,
            control,
            cas,
            by,
        } => {
            let answer = services::control(state, &id, control, cas, by, now, &mut out);
            out.push(Effect::Answer(answer));
        }
        Event::ServicePing { id, token, update } => {
            let answer = services::ping(state, &id, &token, update, now, &mut out);
            out.push(Effect::Answer(answer));
        }
        Event::Instance {
            id,
            generation,
            event,
        } => services::instance_event(state, &id, generation, event, now, &mut out),
        Event::Shutdown => begin_shutdown(state, &mut out),
        Event::ClusterStart {
            key,
            counter,
            trigger,
            run,
        } => {
            let answer = cluster_start(state, &key, counter, trigger, run, now, &mut out);
            out.push(Effect::Answer(answer));
        }
        Event::ClusterRecord {
            key,
            record,
            revision,
        } => {
            cluster_record(state, &key, &record, revision, now, &mut out);
            out.push(Effect::Answer(Answer::Job(key)));
        }
        Event::ClusterLog {
            key,
            counter,
            status,
            path,
        } => cluster_log(state, &key, counter, status, path, now, &mut out),
    }
    finish_effects(state, now, &mut out);
    out
}

/// Appends the state save and the publish that the changes call for, ahead of the
/// answer (an answer is sent after what it reports is published and, for a durable
/// save, written).
fn finish_effects(state: &mut SchedulerState, now: Timestamp, out: &mut Vec<Effect>) {
    // Jobs go first at shutdown; then the services, by descending priority.
    let services_down = !state.stopping
        || state.slotted + state.unslotted > 0
        || services::shutdown_step(state, now, out);
    let answer_at = out
        .iter()
        .position(|e| matches!(e, Effect::Answer(_)))
        .unwrap_or(out.len());
    let mut tail = Vec::new();
    let durable = out
        .iter()
        .any(|e| matches!(e, Effect::SaveState { durable: true }));
    if state.unsaved && !durable {
        tail.push(Effect::SaveState { durable: false });
    }
    state.unsaved = false;
    if state.changed {
        tail.push(Effect::Publish);
        state.changed = false;
    }
    let stopped = state.stopping && state.slotted + state.unslotted == 0 && services_down;
    let rest = out.split_off(answer_at);
    out.extend(tail);
    out.extend(rest);
    if stopped && !out.iter().any(|e| matches!(e, Effect::Stopped)) {
        out.push(Effect::SaveState { durable: true });
        out.push(Effect::Stopped);
    }
}

fn trigger(
    state: &mut SchedulerState,
    key: &JobKey,
    request: Request,
    now: Timestamp,
    out: &mut Vec<Effect>,
) -> Answer {
    if state.stopping {
        return Answer::Refused(TriggerError::ShuttingDown);
    }
    if state.jobs.get(key).is_none_or(|j| j.removed) {
        return Answer::Refused(TriggerError::NotFound(key.to_string()));
    }
    match accept(state, key, request, now, out) {
        Ok(()) => Answer::Job(key.clone()),
        Err(refused) => Answer::Refused(refused),
    }
}

/// Takes a run request for job `key` as its `overlap` policy says while a run goes
/// on (a trigger, a timer tick, a retry, a chained run alike): `queue` keeps one
/// waiting and refuses more, `skip` refuses it and records the skip, `replace`
/// cancels the running run and puts this one next (in place of any waiting one).
fn accept(
    state: &mut SchedulerState,
    key: &JobKey,
    request: Request,
    now: Timestamp,
    out: &mut Vec<Effect>,
) -> Result<(), TriggerError> {
    let slot_free = !key.kind.needs_slot() || state.slot_free();
    let Some(job) = state.jobs.get_mut(key) else {
        return Err(TriggerError::NotFound(key.to_string()));
    };
    if job.paused {
        return Err(TriggerError::Paused);
    }
    let Some(active) = &job.active else {
        activate(state, key, request, now, out);
        return Ok(());
    };
    let running = usize::from(matches!(active, Active::Running { .. })) + job.side.len();
    match job.def.common.policies.overlap {
        Overlap::Allow { max_parallel }
            if max_parallel.is_none_or(|max| running < max as usize)
                && matches!(active, Active::Running { .. })
                && slot_free =>
        {
            start_beside(state, key, request, now, out);
        }
        Overlap::Queue | Overlap::Allow { .. } => {
            if job.pending.is_some() {
                return Err(TriggerError::Busy);
            }
            job.pending = Some(request);
        }
        Overlap::Skip => {
            let trigger = request.trigger;
            tracing::info!(job = %key, trigger = trigger.as_str(), "a run is going on; trigger skipped (overlap = skip)");
            job.skipped.push_back((now, trigger));
            while job.skipped.len() > super::SKIPS_KEPT {
                job.skipped.pop_front();
            }
            state.touch(key);
            let message = format!(
                "trigger {} skipped: a run is going on (overlap = skip)",
                trigger.as_str()
            );
            out.extend(job_event(key, Level::Info, "skipped", message));
            return Err(TriggerError::Busy);
        }
        Overlap::Replace => match active {
            Active::Running { counter, .. } => {
                tracing::info!(job = %key, counter, "replacing the running run (overlap = replace)");
                out.push(Effect::CancelRun {
                    key: key.clone(),
                    counter: *counter,
                });
                job.pending = Some(request);
            }
            Active::Waiting(_) => job.active = Some(Active::Waiting(request)),
        },
    }
    state.touch(key);
    Ok(())
}

/// Starts a run of job `key` beside the one going on (`overlap = allow`): its own
/// counter, log and slot.
fn start_beside(
    state: &mut SchedulerState,
    key: &JobKey,
    request: Request,
    now: Timestamp,
    out: &mut Vec<Effect>,
) {
    let Some(job) = state.jobs.get_mut(key) else {
        return;
    };
    let going = job.active.take();
    start_run(state, key, request, now, out);
    let Some(job) = state.jobs.get_mut(key) else {
        return;
    };
    if let Some(started) = job.active.take()
        && let Active::Running { counter, .. } = &started
    {
        job.side.insert(*counter, started);
    }
    job.active = going;
    state.touch(key);
}

/// An entry of the event log about job `key`.
fn job_event(key: &JobKey, level: Level, kind: &str, message: String) -> Option<Effect> {
    let event = NewEvent::new(key.to_string(), level, message, Source::Karajo).ok()?;
    Some(Effect::RecordEvent(event.with_kind(kind).ok()?))
}

/// Starts an accepted run now, or queues it for a free slot.
fn activate(
    state: &mut SchedulerState,
    key: &JobKey,
    request: Request,
    now: Timestamp,
    out: &mut Vec<Effect>,
) {
    if !key.kind.needs_slot() || state.slot_free() {
        start_run(state, key, request, now, out);
    } else if let Some(job) = state.jobs.get_mut(key) {
        job.active = Some(Active::Waiting(request));
        state.waiting.push_back(key.clone());
        state.touch(key);
    }
}

fn start_run(
    state: &mut SchedulerState,
    key: &JobKey,
    request: Request,
    now: Timestamp,
    out: &mut Vec<Effect>,
) {
    let Some(job) = state.jobs.get(key) else {
        return;
    };
    let counter = job.counter + 1;
    start_numbered(state, key, request, counter, None, now, out);
}

/// Starts run `counter` of `key` now: its log, its process, a slot; a cluster run
/// (`cluster_run` its id) reports its end to the cluster.
fn start_numbered(
    state: &mut SchedulerState,
    key: &JobKey,
    request: Request,
    counter: u64,
    cluster_run: Option<String>,
    now: Timestamp,
    out: &mut Vec<Effect>,
) {
    let Some(job) = state.jobs.get_mut(key) else {
        return;
    };
    job.counter = job.counter.max(counter);
    // Room for the new log within the retention; an open log is never deleted.
    let keep = job.def.common.log_retention.saturating_sub(1);
    let prune = run_log::beyond_retention(&mut job.logs, keep);
    job.logs.push(LogEntry {
        counter,
        status: RunStatus::Running,
        path: job
            .log_dir
            .join(run_log::file_name(&key.id, counter, RunStatus::Running)),
        modified: now,
        facts: RunFacts {
            trigger: Some(request.trigger),
            started: Some(now),
            ended: None,
            exit_code: None,
        },
    });
    job.active = Some(Active::Running {
        counter,
        started: now,
        trigger: request.trigger,
        def: job.def.clone(),
        cluster: cluster_run.is_some(),
        origin: request.origin.clone(),
        env: request.env.clone(),
    });
    // Any run that starts supersedes a retry still waiting (a retry takes its own
    // wait before it starts).
    if let Some(wait) = job.retry.take() {
        state.retries.remove(&(wait.due, key.clone()));
    }
    if key.kind.needs_slot() {
        state.slotted += 1;
    } else {
        state.unslotted += 1;
    }
    tracing::info!(job = %key, counter, trigger = request.trigger.as_str(), "run started");
    out.push(Effect::OpenLog {
        key: key.clone(),
        counter,
        log_dir: job.log_dir.clone(),
        prune,
    });
    out.push(Effect::SpawnRun(RunOrder {
        def: job.def.clone(),
        counter,
        request,
        cluster_run,
    }));
    state.unsaved = true;
    // A schedule stays armed while the run goes on; an interval's period starts when
    // the run ends, so its timer is off until then.
    arm(state, key, now);
}

fn finished(state: &mut SchedulerState, done: Finished, now: Timestamp, out: &mut Vec<Effect>) {
    let key = done.key.clone();
    let stopping = state.stopping;
    let Some(job) = state.jobs.get_mut(&key) else {
        return;
    };
    let Some(Active::Running {
        counter,
        started,
        trigger,
        def,
        cluster,
        origin,
        env,
    }) = job
        .active
        .take_if(|a| matches!(a, Active::Running { counter, .. } if *counter == done.counter))
        .or_else(|| job.side.remove(&done.counter))
    else {
        tracing::warn!(job = %key, counter = done.counter, "the end of a run that is not running; ignored");
        return;
    };
    // The oldest run beside it, if any, becomes the job's active run.
    if job.active.is_none()
        && let Some(oldest) = job.side.keys().next().copied()
    {
        job.active = job.side.remove(&oldest);
    }
    if key.kind.needs_slot() {
        state.slotted = state.slotted.saturating_sub(1);
        state.closing.remove(&(key.clone(), counter));
    } else {
        state.unslotted = state.unslotted.saturating_sub(1);
    }
    let took = Duration::try_from(done.at.duration_since(started)).unwrap_or_default();
    out.push(Effect::CountRun {
        key: key.clone(),
        status: done.status,
        took,
    });
    job.status = done.status;
    job.last_run = Some(done.at);
    let previous = job.last_completed;
    if matches!(done.status, RunStatus::Success | RunStatus::Failed) {
        job.last_completed = Some(done.status);
    }
    // Retries and chains are the job's own: a cluster run's end goes to the cluster.
    let policies = &def.common.policies;
    let attempts = policies.retry + 1;
    let (attempt, first) = match &origin {
        Some(RunOrigin::Retry { attempt, first, .. }) => (*attempt, *first),
        _ => (1, counter),
    };
    let retry = (done.status == RunStatus::Failed
        && attempt <= policies.retry
        && !cluster
        && !job.paused
        && !job.removed
        && !stopping)
        .then(|| RetryState {
            attempt: attempt + 1,
            first,
            due: policy::later(done.at, policy::retry_delay(policies, &key, first, attempt)),
        });
    let chained: Vec<String> = match (done.status, &retry, cluster || stopping) {
        (RunStatus::Success, None, false) => &policies.on_success,
        (RunStatus::Failed, None, false) => &policies.on_failure,
        _ => &[][..],
    }
    .iter()
    .map(|chain| chain.job.clone())
    .collect();
    match &done.log {
        Some(path) => {
            if let Some(entry) = job.logs.iter_mut().find(|l| l.counter == counter) {
                entry.status = done.status;
                entry.path = path.clone();
                entry.modified = done.at;
                entry.facts.ended = Some(done.at);
                entry.facts.exit_code = done.exit_code;
            }
            out.push(Effect::Notify(Notice {
                def,
                counter,
                status: done.status,
                trigger,
                started,
                ended: done.at,
                log: path.clone(),
                previous,
                retrying: retry.is_some(),
            }));
        }
        // The log could not be created: the run left no file.
        None => job.logs.retain(|l| l.counter != counter),
    }
    if let Some(wait) = retry {
        tracing::info!(job = %key, counter, attempt = wait.attempt, due = %wait.due, "run failed; retrying");
        let message = format!(
            "run #{counter} failed; attempt {}/{} at {}",
            wait.attempt, attempts, wait.due
        );
        out.extend(job_event(&key, Level::Warning, "retry", message));
        job.retry = Some(wait);
        job.retry_env = env;
        state.retries.insert((wait.due, key.clone()));
        // A kill -9 right after must not lose the retry.
        out.push(Effect::SaveState { durable: true });
    }
    state.unsaved = true;
    if cluster {
        // The cluster's record holds the queue: the next run comes as an order.
        out.push(Effect::ClusterEnded {
            key: key.clone(),
            counter,
            status: done.status,
            at: done.at,
        });
    }
    let next = job
        .pending
        .take()
        .or_else(|| catch_up_request(job))
        .filter(|_| !stopping);
    if job.removed && job.active.is_none() {
        state.jobs.remove(&key);
        index_names(state);
        state.changed = true;
    } else if job.active.is_some() {
        // Runs go on beside it (`overlap = allow`): the next request takes the
        // freed place by the job's rule.
        if let Some(next) = next
            && let Err(refused) = accept(state, &key, next, now, out)
        {
            tracing::debug!(job = %key, %refused, "waiting run not taken");
        }
        state.touch(&key);
    } else {
        if let Some(next) = next {
            if key.kind.needs_slot() {
                // Behind whoever already waits for a slot.
                job.active = Some(Active::Waiting(next));
                state.waiting.push_back(key.clone());
            } else {
                start_run(state, &key, next, now, out);
            }
        }
        state.touch(&key);
        arm(state, &key, now);
    }
    for target in chained {
        start_chained(state, &key, counter, done.status, &target, now, out);
    }
    fill_slots(state, now, out);
}

/// Asks for a run of the job named `target` (of either kind), started by the end of
/// run `counter` of `parent`; the target's own pause and overlap rules apply.
fn start_chained(
    state: &mut SchedulerState,
    parent: &JobKey,
    counter: u64,
    status: RunStatus,
    target: &str,
    now: Timestamp,
    out: &mut Vec<Effect>,
) {
    let Some(key) = state
        .jobs
        .iter()
        .find(|(_, j)| !j.removed && j.def.name().eq_ignore_ascii_case(target.trim()))
        .map(|(key, _)| key.clone())
    else {
        tracing::warn!(job = %parent, target, "chained job is not defined any more; not started");
        return;
    };
    let origin = RunOrigin::Chain {
        job: parent.id.clone(),
        counter,
        status,
    };
    let request = Request::from(Trigger::Chain, Some(origin));
    match accept(state, &key, request, now, out) {
        Ok(()) => tracing::info!(job = %key, parent = %parent, counter, "chained run accepted"),
        Err(refused) => {
            tracing::info!(job = %key, parent = %parent, counter, %refused, "chained run refused");
            let message = format!("chained run after {parent} #{counter} refused: {refused}");
            out.extend(job_event(&key, Level::Info, "chain_refused", message));
        }
    }
}

/// The next missed slot of the job to catch up, as a request.
fn catch_up_request(job: &mut JobEntry) -> Option<Request> {
    let slot = job.catch_up.pop_front()?;
    Some(Request::from(
        Trigger::CatchUp,
        Some(RunOrigin::CatchUp { slot }),
    ))
}

/// At start-up: the slots of job `key` missed since `missed_from` (the due time the
/// state file had) that its `catch_up` policy runs, one after another from now.
fn catch_up(
    state: &mut SchedulerState,
    key: &JobKey,
    missed_from: Option<Timestamp>,
    now: Timestamp,
    out: &mut Vec<Effect>,
) {
    let Some(job) = state.jobs.get_mut(key) else {
        return;
    };
    let Some(due) = missed_from else { return };
    let common = &job.def.common;
    if job.cluster || job.paused {
        return;
    }
    let cadence = match (&common.schedule, common.interval) {
        (Some(schedule), _) => Cadence::Schedule(schedule),
        (None, Some(interval)) => Cadence::Interval(interval),
        (None, None) => return,
    };
    let first = policy::earlier(due, common.policies.jitter_offset(key));
    let (slots, left_out) = policy::missed_slots(&common.policies, cadence, first, now);
    if slots.is_empty() {
        return;
    }
    tracing::info!(job = %key, missed = slots.len(), left_out, "catching up slots missed while karajo was down");
    let message = format!(
        "{} slot(s) missed while karajo was down are caught up (from {}){}",
        slots.len(),
        slots[0],
        if left_out > 0 {
            format!("; {left_out} older ones are not (catch_up cap)")
        } else {
            String::new()
        }
    );
    out.extend(job_event(key, Level::Info, "catch_up", message));
    job.catch_up = slots.into();
    if job.active.is_none()
        && let Some(request) = catch_up_request(job)
    {
        activate(state, key, request, now, out);
        // An interval's timer waits for the catch-up runs to end.
        arm(state, key, now);
    }
}

/// Gives the slot of a run whose work is done back (once), and fills it.
fn executed(
    state: &mut SchedulerState,
    key: JobKey,
    counter: u64,
    now: Timestamp,
    out: &mut Vec<Effect>,
) {
    let running = state.jobs.get(&key).is_some_and(
        |job| matches!(job.active, Some(Active::Running { counter: c, .. }) if c == counter),
    );
    if running && key.kind.needs_slot() && state.closing.insert((key, counter)) {
        fill_slots(state, now, out);
    }
}

/// Starts waiting runs while slots are free.
fn fill_slots(state: &mut SchedulerState, now: Timestamp, out: &mut Vec<Effect>) {
    while state.slot_free() {
        let Some(key) = state.waiting.pop_front() else {
            return;
        };
        let Some(job) = state.jobs.get_mut(&key) else {
            continue;
        };
        if let Some(Active::Waiting(request)) =
            job.active.take_if(|a| matches!(a, Active::Waiting(_)))
        {
            start_run(state, &key, request, now, out);
        }
    }
}

fn set_paused(
    state: &mut SchedulerState,
    key: &JobKey,
    paused: bool,
    now: Timestamp,
    out: &mut Vec<Effect>,
) {
    let Some(job) = state.jobs.get_mut(key).filter(|j| !j.removed) else {
        out.push(Effect::Answer(Answer::Unknown));
        return;
    };
    job.paused = paused;
    if paused && drop_retry(state, key) {
        tracing::info!(job = %key, "paused: the waiting retry is dropped");
    }
    let Some(job) = state.jobs.get_mut(key) else {
        return;
    };
    if !paused {
        // Some kinds reset a resumed job's status (spec 6.4); a run in progress
        // still shows `running` and sets the status when it ends.
        if let Some(status) = key.kind.status_on_resume() {
            job.status = status;
        }
    }
    tracing::info!(job = %key, paused, "pause state changed");
    state.touch(key);
    if !paused {
        arm(state, key, now);
    }
    out.push(Effect::SaveState { durable: true });
    out.push(Effect::Answer(Answer::Job(key.clone())));
}

fn cancel(state: &mut SchedulerState, key: &JobKey, out: &mut Vec<Effect>) -> Answer {
    let Some(job) = state.jobs.get_mut(key).filter(|j| !j.removed) else {
        return Answer::Unknown;
    };
    match &job.active {
        Some(Active::Running { .. }) => {
            for counter in job.running_counters() {
                tracing::info!(job = %key, counter, "cancel requested");
                out.push(Effect::CancelRun {
                    key: key.clone(),
                    counter,
                });
            }
        }
        Some(Active::Waiting(_)) => {
            // The waiting run is dropped; one queued behind it takes its place.
            job.active = job.pending.take().map(Active::Waiting);
            if job.active.is_none() {
                state.waiting.retain(|w| w != key);
            }
            state.touch(key);
        }
        None => {
            if drop_retry(state, key) {
                tracing::info!(job = %key, "cancel: the waiting retry is dropped");
            }
        }
    }
    Answer::Job(key.clone())
}

fn fire_due_timers(state: &mut SchedulerState, now: Timestamp, out: &mut Vec<Effect>) {
    while let Some((due, key)) = state.timers.first().cloned() {
        if due > now {
            break;
        }
        state.timers.pop_first();
        let Some(job) = state.jobs.get_mut(&key) else {
            continue;
        };
        job.next_run = None;
        if job.cluster {
            // The cluster decides: one node claims the slot and applies it. An
            // interval waits for the record that the slot's run (or its loss) brings,
            // rather than coming due again at once.
            job.cluster_busy = job.def.common.interval.is_some();
            out.push(Effect::ClusterSlot {
                key: key.clone(),
                at: due,
            });
        } else if let Err(refused) = accept(state, &key, Request::timer(), now, out) {
            tracing::debug!(job = %key, %refused, "timer tick not taken");
        }
        state.touch(&key);
        arm_after(state, &key, due, now);
    }
    while let Some((due, key)) = state.retries.first().cloned() {
        if due > now {
            break;
        }
        state.retries.pop_first();
        let Some(job) = state.jobs.get_mut(&key) else {
            continue;
        };
        let Some(wait) = job.retry.take_if(|w| w.due == due) else {
            continue;
        };
        let origin = RunOrigin::Retry {
            attempt: wait.attempt,
            attempts: job.def.common.policies.retry + 1,
            first: wait.first,
        };
        let mut request = Request::from(Trigger::Retry, Some(origin));
        request.env = std::mem::take(&mut job.retry_env);
        state.touch(&key);
        if let Err(refused) = accept(state, &key, request, now, out) {
            tracing::info!(job = %key, %refused, "retry not taken");
        }
    }
}

/// Drops job `key`'s waiting retry (a pause, a cancel, a reload that ends retries).
fn drop_retry(state: &mut SchedulerState, key: &JobKey) -> bool {
    let Some(job) = state.jobs.get_mut(key) else {
        return false;
    };
    job.retry_env.clear();
    let Some(wait) = job.retry.take() else {
        return false;
    };
    state.retries.remove(&(wait.due, key.clone()));
    state.unsaved = true;
    state.touch(key);
    true
}

/// Arms the job's timer from `now` (after a run, a resume or a reload).
fn arm(state: &mut SchedulerState, key: &JobKey, now: Timestamp) {
    arm_after(state, key, now, now);
}

/// Arms the job's timer for its first due time after `slot` (a schedule slot that
/// just fired), never in the past. Interval jobs are armed only while idle: their
/// period runs from the end of the previous run.
fn arm_after(state: &mut SchedulerState, key: &JobKey, slot: Timestamp, now: Timestamp) {
    disarm(state, key);
    let Some(job) = state.jobs.get_mut(key) else {
        return;
    };
    if job.removed || state.stopping {
        return;
    }
    // `jitter` delays every start by the job's own stable offset: slots are computed
    // without it, timers are set with it.
    let offset = job.def.common.policies.jitter_offset(key);
    let next = if let Some(schedule) = job.def.common.schedule.as_ref() {
        let next = schedule.next_after(policy::earlier(slot, offset));
        let next = if policy::later(next, offset) <= now {
            schedule.next_after(policy::earlier(now, offset))
        } else {
            next
        };
        Some(policy::later(next, offset))
    } else if let Some(interval) = job.def.common.interval {
        // While paused, ticks are skipped one interval apart (the original's paused
        // tick also counts as a run for the next one).
        let since = if job.paused { Some(now) } else { job.last_run };
        let idle = job.active.is_none() && job.pending.is_none() && !job.cluster_busy;
        idle.then(|| policy::later(interval_next(since, interval, now), offset))
    } else {
        None
    };
    if job.next_run != next {
        state.unsaved = true;
    }
    job.next_run = next;
    if let Some(due) = next {
        state.timers.insert((due, key.clone()));
    }
    state.touch(key);
}

fn disarm(state: &mut SchedulerState, key: &JobKey) {
    if let Some(job) = state.jobs.get_mut(key)
        && let Some(due) = job.next_run
    {
        state.timers.remove(&(due, key.clone()));
    }
}

fn reload(
    state: &mut SchedulerState,
    defs: Vec<JobDef>,
    restored: Vec<RestoredJob>,
    max_job_running: usize,
    config: Arc<Config>,
    now: Timestamp,
    out: &mut Vec<Effect>,
) {
    state.max_running = max_job_running.max(1);
    state.config = config;
    let new_keys: BTreeSet<JobKey> = defs.iter().map(JobDef::key).collect();
    let gone: Vec<JobKey> = state
        .jobs
        .keys()
        .filter(|key| !new_keys.contains(*key))
        .cloned()
        .collect();
    for key in gone {
        disarm(state, &key);
        let Some(job) = state.jobs.get_mut(&key) else {
            continue;
        };
        if !job.running_counters().is_empty() {
            // Forgotten when its run ends.
            job.removed = true;
            job.pending = None;
            job.next_run = None;
            job.stale = true;
        } else {
            state.waiting.retain(|w| *w != key);
            state.jobs.remove(&key);
        }
        tracing::info!(job = %key, "job removed by reload");
    }
    let mut restored: BTreeMap<JobKey, RestoredJob> =
        restored.into_iter().map(|r| (r.def.key(), r)).collect();
    for def in defs {
        let key = def.key();
        match state.jobs.get_mut(&key) {
            Some(job) => {
                job.def = def;
                job.removed = false;
                job.cluster = state.cluster_node.is_some() && job.def.common.run_on.is_cluster();
                arm(state, &key, now);
            }
            None => match restored.remove(&key) {
                Some(mut job) => {
                    job.def = def;
                    tracing::info!(job = %key, "job added by reload");
                    insert(state, job, now);
                }
                None => {
                    tracing::error!(job = %key, "job added by reload could not be restored; not scheduled")
                }
            },
        }
    }
    index_names(state);
    state.changed = true;
    state.unsaved = true;
    fill_slots(state, now, out);
}

fn insert(state: &mut SchedulerState, job: RestoredJob, now: Timestamp) {
    let key = job.def.key();
    let mut entry = JobEntry::new(job);
    entry.cluster = is_cluster_job(state, &entry.def);
    if let Some(wait) = entry.retry {
        // A retry the last process left waiting: still due (or overdue).
        state.retries.insert((wait.due, key.clone()));
    }
    state.jobs.insert(key.clone(), entry);
    arm(state, &key, now);
}

/// Whether `def` is coordinated through the cluster on this node.
fn is_cluster_job(state: &SchedulerState, def: &JobDef) -> bool {
    state.cluster_node.is_some() && def.common.run_on.is_cluster()
}

/// Starts run `counter` of a cluster job for an order this node accepted.
fn cluster_start(
    state: &mut SchedulerState,
    key: &JobKey,
    counter: u64,
    trigger: Trigger,
    run: String,
    now: Timestamp,
    out: &mut Vec<Effect>,
) -> Answer {
    if state.stopping {
        return Answer::Refused(TriggerError::ShuttingDown);
    }
    let Some(job) = state.jobs.get(key).filter(|j| !j.removed && j.cluster) else {
        return Answer::Refused(TriggerError::NotFound(key.to_string()));
    };
    if job.active.is_some() {
        // One run per job and node: an order for another is a cluster bug.
        return Answer::Refused(TriggerError::Busy);
    }
    let request = Request::from(trigger, None);
    start_numbered(state, key, request, counter, Some(run), now, out);
    Answer::Job(key.clone())
}

/// Follows a cluster job's shared record: counter, status, pause, last run and
/// whether a run is going somewhere; cancels this node's run when the record asks.
fn cluster_record(
    state: &mut SchedulerState,
    key: &JobKey,
    record: &crate::cluster::decide::JobRecord,
    revision: u64,
    now: Timestamp,
    out: &mut Vec<Effect>,
) {
    let node = state.cluster_node.clone();
    let Some(job) = state.jobs.get_mut(key).filter(|j| j.cluster) else {
        return;
    };
    if revision < job.cluster_revision {
        return;
    }
    job.cluster_revision = revision;
    job.counter = job.counter.max(record.counter);
    if let Some(status) = record.status {
        job.status = status;
    }
    job.paused = record.paused;
    if record.last_run.is_some() {
        job.last_run = record.last_run;
    }
    job.cluster_busy = record.active.is_some();
    // The counter of this node's run that the record asks to cancel: the active run,
    // or this node's member of a `run_on = all` fan-out.
    let cancel_counter = record
        .active
        .as_ref()
        .filter(|active| active.cancel_requested)
        .and_then(|active| match (&active.group, &node) {
            (None, Some(node)) if active.node.as_ref() == Some(node) => Some(active.counter),
            (Some(group), Some(node)) => group.get(node).map(|member| member.counter),
            _ => None,
        });
    if let Some(counter) = job.running_counter()
        && cancel_counter == Some(counter)
    {
        tracing::info!(job = %key, counter, "cancel requested through the cluster");
        out.push(Effect::CancelRun {
            key: key.clone(),
            counter,
        });
    }
    state.unsaved = true;
    state.touch(key);
    arm(state, key, now);
}

/// Records a cluster run's final log that this node did not write as its own run,
/// within the job's retention.
fn cluster_log(
    state: &mut SchedulerState,
    key: &JobKey,
    counter: u64,
    status: RunStatus,
    path: PathBuf,
    now: Timestamp,
    out: &mut Vec<Effect>,
) {
    let Some(job) = state.jobs.get_mut(key) else {
        return;
    };
    if job.running_counter() == Some(counter) {
        // This node's own run: its end is recorded when its process ends.
        return;
    }
    job.counter = job.counter.max(counter);
    job.logs.retain(|l| l.counter != counter);
    let keep = job.def.common.log_retention;
    job.logs.push(LogEntry {
        counter,
        status,
        path,
        modified: now,
        facts: RunFacts {
            trigger: None,
            started: None,
            ended: Some(now),
            exit_code: None,
        },
    });
    let prune = run_log::beyond_retention(&mut job.logs, keep);
    if !prune.is_empty() {
        out.push(Effect::PruneLogs(prune));
    }
    state.unsaved = true;
    state.touch(key);
}

fn index_names(state: &mut SchedulerState) {
    let mut keys: Vec<_> = state
        .jobs
        .values()
        .map(|j| ((j.def.kind(), j.def.name().to_string()), j.def.key()))
        .collect();
    keys.sort();
    state.by_name = keys.into_iter().map(|(_, key)| key).collect();
}

fn begin_shutdown(state: &mut SchedulerState, out: &mut Vec<Effect>) {
    if state.stopping {
        return;
    }
    state.stopping = true;
    state.timers.clear();
    state.waiting.clear();
    state.retries.clear();
    for (key, job) in &mut state.jobs {
        job.pending = None;
        job.catch_up.clear();
        // `next_run` stays: saved, it tells the next start which slots it missed.
        job.stale = true;
        for counter in job.side.keys() {
            out.push(Effect::CancelRun {
                key: key.clone(),
                counter: *counter,
            });
        }
        match &job.active {
            Some(Active::Running { counter, .. }) => out.push(Effect::CancelRun {
                key: key.clone(),
                counter: *counter,
            }),
            Some(Active::Waiting(_)) => job.active = None,
            None => {}
        }
    }
    state.changed = true;
    tracing::info!(
        running = state.slotted + state.unslotted,
        "stopping: cancelling running jobs"
    );
}

#[cfg(test)]
mod tests;
