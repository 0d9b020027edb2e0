//! The one owner of runtime state. Its decisions are one pure function
//! (`decide`: state, event and time in, effects out), and a thin
//! executor task performs them: it holds every job's status, counters, timers and
//! queues, sleeps until the next due time (no polling), takes commands (run, pause,
//! resume, cancel, reload, shutdown) over a channel, starts runs, and records their
//! ends. Readers (the web room, metrics) get cheap [`Snapshot`]s, the job set and the
//! configuration it came from together, through a `watch` channel; everyone else holds
//! a cloneable [`SchedulerHandle`]. The state file has one writer, its own task.

mod decide;
mod executor;
mod monitors;
mod policy;
mod restore;
pub mod run;
mod services;
mod state_writer;

use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot, watch};

pub use executor::{SchedulerOptions, spawn};
pub use monitors::{MonitorView, PingAnswer, PulseError, RestoredMonitor};
pub use restore::{
    RestoredJob, refresh_facts_cache, restore_jobs, restore_monitors, restore_pulses,
    restore_services, sweep_removed_services,
};
pub use services::{RestoredService, ServiceAnswer, ServicePingAnswer, ServiceView};

use crate::config::{Config, ExecSpec, HttpSpec, JobCommon};
use crate::exec::{JobFn, WebhookRequest};
use crate::job::{JobId, JobKey, JobKind, RunStatus, Trigger};

/// A job as the scheduler runs it: what every kind shares, read directly from
/// [`JobDef::common`], and the kind's own configuration with its runtime extras in
/// [`JobDef::kind`].
#[derive(Clone)]
pub struct JobDef {
    /// The keys every job kind shares.
    pub common: Arc<JobCommon>,
    /// The kind's configuration and what its runs need besides.
    pub kind: JobDefKind,
}

/// The kind-specific part of a [`JobDef`]. Rules that differ by kind are methods here,
/// on [`JobKind`] or on [`crate::config::JobKindSpec`].
#[derive(Clone)]
pub enum JobDefKind {
    /// A `[job "..."]`: shell commands, or the registered Rust function that replaces
    /// them.
    Exec {
        /// The job's own keys.
        spec: Arc<ExecSpec>,
        /// The registered function, if any.
        function: Option<JobFn>,
    },
    /// A `[job.http "..."]`: one HTTP request per run.
    Http {
        /// The job's own keys.
        spec: Arc<HttpSpec>,
        /// `http_url` resolved against the server's own address when it starts with `/`.
        url: String,
        /// Where the signatures it sends are recorded as spent; `None` when it calls
        /// karajo itself.
        sent: Option<crate::exec::SentSignatures>,
    },
}

impl JobDefKind {
    /// Command job or HTTP job.
    pub fn kind(&self) -> JobKind {
        match self {
            Self::Exec { .. } => JobKind::Exec,
            Self::Http { .. } => JobKind::Http,
        }
    }
}

impl JobDef {
    /// Command job or HTTP job.
    pub fn kind(&self) -> JobKind {
        self.kind.kind()
    }

    /// The job's id.
    pub fn id(&self) -> &JobId {
        &self.common.id
    }

    /// The job's key (kind and id).
    pub fn key(&self) -> JobKey {
        JobKey {
            kind: self.kind(),
            id: self.id().clone(),
        }
    }

    /// The job's name as configured.
    pub fn name(&self) -> &str {
        &self.common.name
    }

    /// Whether runs of this job take a `max_job_running` slot.
    pub fn needs_slot(&self) -> bool {
        self.kind().needs_slot()
    }
}

impl std::fmt::Debug for JobDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobDef").field("key", &self.key()).finish()
    }
}

/// The record of one kept run as listed in a job view: its counter and status, what
/// started it, when it started and ended and its exit code. The scheduler fills it
/// when the run starts and ends; at start-up it is read back from the log once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSummary {
    /// The run's counter.
    pub counter: u64,
    /// `running` while it runs, then its final status.
    pub status: RunStatus,
    /// What started the run (logs of karajo (Go) do not say).
    pub trigger: Option<Trigger>,
    /// When the run started.
    pub started: Option<Timestamp>,
    /// When the run ended; `None` while it runs.
    pub ended: Option<Timestamp>,
    /// The exit code of the command that ended the run, when a command exited.
    pub exit_code: Option<i32>,
}

impl From<&crate::store::LogEntry> for LogSummary {
    /// The record of a log the scheduler keeps.
    fn from(log: &crate::store::LogEntry) -> Self {
        Self {
            counter: log.counter,
            status: log.status,
            trigger: log.facts.trigger,
            started: log.facts.started,
            ended: log.facts.ended,
            exit_code: log.facts.exit_code,
        }
    }
}

impl LogSummary {
    /// A run with only its counter and status known.
    pub fn new(counter: u64, status: RunStatus) -> Self {
        Self {
            counter,
            status,
            trigger: None,
            started: None,
            ended: None,
            exit_code: None,
        }
    }
}

/// A read-only picture of one job, published after every change.
#[derive(Debug, Clone)]
pub struct JobView {
    /// The job and its configuration.
    pub def: JobDef,
    /// `running` during a run, `paused` while paused and idle, else the last run's
    /// status (`started` before the first run).
    pub status: RunStatus,
    /// Paused by the API.
    pub paused: bool,
    /// When the last run finished.
    pub last_run: Option<Timestamp>,
    /// When the timer next fires.
    pub next_run: Option<Timestamp>,
    /// The highest counter used so far.
    pub counter: u64,
    /// The logs on disk, oldest first.
    pub logs: Vec<LogSummary>,
    /// A trigger is waiting behind the current run.
    pub queued: bool,
    /// A failed run's next attempt, waiting for its time.
    pub retry: Option<crate::store::RetryState>,
    /// The triggers refused lately because a run was going on (`overlap = skip`),
    /// newest last, at most [`SKIPS_KEPT`].
    pub skipped: Vec<(Timestamp, Trigger)>,
}

/// How many skipped triggers a job's view keeps.
pub const SKIPS_KEPT: usize = 10;

impl JobView {
    /// The job's id.
    pub fn id(&self) -> &JobId {
        self.def.id()
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        self.def.name()
    }
}

/// Everything the scheduler publishes: the job set and the configuration it came
/// from, replaced together by a reload, so a reader of one snapshot never pairs a job
/// of one configuration with the settings of another.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Every job, sorted by kind (command jobs first), then by name.
    pub jobs: Vec<Arc<JobView>>,
    /// Runs executing now (all kinds).
    pub running: usize,
    /// Command job runs waiting for a `max_job_running` slot.
    pub waiting: usize,
    /// The configuration in force: the global settings (secret, stamp rules, users,
    /// limits, name) that go with these jobs.
    pub config: Arc<Config>,
    /// Every heartbeat monitor, sorted by id.
    pub monitors: Vec<Arc<MonitorView>>,
    /// The configured monitors' ping paths, to their ids.
    pub ping_routes: Arc<crate::monitor::PingRoutes<JobId>>,
    /// Every supervised service, sorted by id.
    pub services: Vec<Arc<ServiceView>>,
}

impl Snapshot {
    /// No jobs, with `config` in force.
    pub fn empty(config: Arc<Config>) -> Self {
        Self {
            jobs: Vec::new(),
            running: 0,
            waiting: 0,
            config,
            monitors: Vec::new(),
            ping_routes: Arc::default(),
            services: Vec::new(),
        }
    }

    /// The jobs of one kind, sorted by name.
    pub fn jobs_of(&self, kind: JobKind) -> impl Iterator<Item = &Arc<JobView>> {
        self.jobs.iter().filter(move |j| j.def.kind() == kind)
    }

    /// The job of this kind with this id.
    pub fn job(&self, kind: JobKind, id: &str) -> Option<&Arc<JobView>> {
        self.jobs_of(kind).find(|j| j.id().as_str() == id)
    }

    /// What to tell a client that named job `id` of `kind` that does not exist:
    /// `no command job has the id "x"`, with the closest existing id when one is close.
    pub fn unknown_job(&self, kind: JobKind, id: &str) -> String {
        let what = kind.noun();
        let ids: Vec<&str> = self.jobs_of(kind).map(|j| j.id().as_str()).collect();
        let hint = crate::suggest::did_you_mean(id, &ids);
        if id.is_empty() {
            format!("no {what} id given (id=...)")
        } else {
            format!("no {what} has the id \"{id}\"{hint}")
        }
    }

    /// The monitor with this id.
    pub fn monitor(&self, id: &str) -> Option<&Arc<MonitorView>> {
        let at = self
            .monitors
            .binary_search_by(|m| m.id().as_str().cmp(id))
            .ok()?;
        self.monitors.get(at)
    }

    /// The service whose id is `id`.
    pub fn service(&self, id: &str) -> Option<&Arc<ServiceView>> {
        let at = self
            .services
            .binary_search_by(|s| s.id().as_str().cmp(id))
            .ok()?;
        self.services.get(at)
    }

    /// The command job whose web hook path is `path` (`/hello`, compared
    /// case-insensitively), with its own keys: the web hook route finds its job here,
    /// in the job set the scheduler runs, never in a copy of its own.
    pub fn job_by_path(&self, path: &str) -> Option<(&Arc<JobView>, &Arc<ExecSpec>)> {
        self.jobs_of(JobKind::Exec)
            .find_map(|view| match &view.def.kind {
                JobDefKind::Exec { spec, .. }
                    if spec
                        .path
                        .as_deref()
                        .is_some_and(|own| own.eq_ignore_ascii_case(path)) =>
                {
                    Some((view, spec))
                }
                _ => None,
            })
    }
}

/// Why a trigger was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// No such job.
    #[error("job not found: {0}")]
    NotFound(String),
    /// The job is paused.
    #[error("job is paused")]
    Paused,
    /// A run is in progress and another one is already queued.
    #[error("job already run")]
    Busy,
    /// The daemon is stopping.
    #[error("karajo is shutting down")]
    ShuttingDown,
    /// A cluster job, and this node cannot reach the cluster now (answered with 503).
    #[error("{0}")]
    ClusterUnavailable(String),
}

/// A pause, resume or cancel of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobControl {
    /// Pause the job.
    Pause,
    /// Resume the job.
    Resume,
    /// Cancel its current run.
    Cancel,
}

/// A cluster job's due timer slot or the end of a run this node executed for the
/// cluster: what the scheduler hands to the cluster agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterNotice {
    /// A timer slot of `key` is due.
    Slot {
        /// The job.
        key: JobKey,
        /// The slot.
        at: Timestamp,
    },
    /// Run `counter` of `key`, started for a cluster order, ended; its log is closed.
    Ended {
        /// The job.
        key: JobKey,
        /// The run's counter.
        counter: u64,
        /// How it ended.
        status: RunStatus,
        /// When.
        at: Timestamp,
    },
}

/// A boxed future answering a routed call.
pub type RouteFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// Where triggers and controls of cluster jobs go instead of the local queue: the
/// cluster agent, which applies them to the shared record.
pub trait ClusterRoute: Send + Sync + 'static {
    /// A run of cluster job `key` asked for by a web hook or the API.
    fn trigger(
        &self,
        key: JobKey,
        trigger: Trigger,
    ) -> RouteFuture<Result<Arc<JobView>, TriggerError>>;

    /// A pause, resume or cancel of cluster job `key`.
    fn control(
        &self,
        key: JobKey,
        control: JobControl,
    ) -> RouteFuture<Result<Option<Arc<JobView>>, TriggerError>>;
}

/// The answer to a watchTower pulse or cancel: the monitor as it is now (`None`: it
/// was removed), or why not.
pub type PulseReply = Result<Option<Arc<MonitorView>>, PulseError>;

/// Messages to the scheduler task.
#[derive(Debug)]
pub(crate) enum Command {
    Trigger {
        key: JobKey,
        trigger: Trigger,
        request: Option<Arc<WebhookRequest>>,
        env: Vec<(String, String)>,
        reply: oneshot::Sender<Result<Arc<JobView>, TriggerError>>,
    },
    Pause {
        key: JobKey,
        reply: oneshot::Sender<Option<Arc<JobView>>>,
    },
    Resume {
        key: JobKey,
        reply: oneshot::Sender<Option<Arc<JobView>>>,
    },
    Cancel {
        key: JobKey,
        reply: oneshot::Sender<Option<Arc<JobView>>>,
    },
    Reload {
        jobs: Vec<JobDef>,
        config: Arc<Config>,
        reply: oneshot::Sender<()>,
    },
    Ping {
        id: JobId,
        ping: crate::monitor::Ping,
        block: crate::store::monitor_files::PingBlock,
        reply: oneshot::Sender<Option<PingAnswer>>,
    },
    PauseMonitor {
        id: JobId,
        until: Option<crate::monitor::PauseUntil>,
        reply: oneshot::Sender<Option<Arc<MonitorView>>>,
    },
    ResumeMonitor {
        id: JobId,
        reply: oneshot::Sender<Option<Arc<MonitorView>>>,
    },
    Pulse {
        pulse: crate::monitor::Pulse,
        block: crate::store::monitor_files::PingBlock,
        reply: oneshot::Sender<PulseReply>,
    },
    CancelPulse {
        service: String,
        reply: oneshot::Sender<PulseReply>,
    },
    ServiceControl {
        id: JobId,
        control: crate::service::Control,
        cas: Option<u64>,
        by: String,
        reply: oneshot::Sender<Option<ServiceAnswer>>,
    },
    ServicePing {
        id: JobId,
        token: String,
        update: crate::service::PingUpdate,
        reply: oneshot::Sender<Option<ServicePingAnswer>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
    ClusterStart {
        key: JobKey,
        counter: u64,
        trigger: Trigger,
        run: String,
        reply: oneshot::Sender<Result<Arc<JobView>, TriggerError>>,
    },
    ClusterRecord {
        key: JobKey,
        record: Box<crate::cluster::decide::JobRecord>,
        revision: u64,
        reply: oneshot::Sender<Option<Arc<JobView>>>,
    },
    ClusterLog {
        key: JobKey,
        counter: u64,
        status: RunStatus,
        path: std::path::PathBuf,
    },
}

/// A cheap, cloneable handle on the scheduler task.
#[derive(Clone)]
pub struct SchedulerHandle {
    tx: mpsc::Sender<Command>,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    /// Cluster mode: where cluster jobs' triggers and controls go (set once the
    /// cluster agent runs).
    cluster: Arc<std::sync::OnceLock<Arc<dyn ClusterRoute>>>,
}

impl std::fmt::Debug for SchedulerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerHandle")
            .field("cluster", &self.cluster.get().is_some())
            .finish_non_exhaustive()
    }
}

impl SchedulerHandle {
    /// The latest published snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// A receiver that sees every new snapshot (for live views).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.clone()
    }

    /// Asks for a run of job `key`. Answers with the job as it was when the trigger was
    /// accepted: started now, or queued behind the current run.
    pub async fn trigger(
        &self,
        key: JobKey,
        trigger: Trigger,
        request: Option<Arc<WebhookRequest>>,
    ) -> Result<Arc<JobView>, TriggerError> {
        self.trigger_with_env(key, trigger, request, Vec::new())
            .await
    }

    /// As [`Self::trigger`], with extra environment variables for the run (a
    /// delivery's `KARAJO_GIT_*`, a manual run's `KARAJO_PARAM_*`). A cluster job's
    /// run does not get them: the cluster's orders carry no environment.
    pub async fn trigger_with_env(
        &self,
        key: JobKey,
        trigger: Trigger,
        request: Option<Arc<WebhookRequest>>,
        env: Vec<(String, String)>,
    ) -> Result<Arc<JobView>, TriggerError> {
        if let Some(route) = self.cluster_route(&key) {
            return route.trigger(key, trigger).await;
        }
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Trigger {
            key,
            trigger,
            request,
            env,
            reply,
        };
        self.ask(cmd, rx)
            .await
            .unwrap_or(Err(TriggerError::ShuttingDown))
    }

    /// Pauses job `key`; `None` when there is no such job (or it is a cluster job
    /// this node cannot reach the cluster for: see [`Self::control`]).
    pub async fn pause(&self, key: JobKey) -> Option<Arc<JobView>> {
        self.control(key, JobControl::Pause).await.ok().flatten()
    }

    /// Resumes job `key`; `None` when there is no such job.
    pub async fn resume(&self, key: JobKey) -> Option<Arc<JobView>> {
        self.control(key, JobControl::Resume).await.ok().flatten()
    }

    /// Cancels the current run of job `key` (a no-op when idle); `None` when there is
    /// no such job. The run ends shortly after, as `canceled`.
    pub async fn cancel(&self, key: JobKey) -> Option<Arc<JobView>> {
        self.control(key, JobControl::Cancel).await.ok().flatten()
    }

    /// Pauses, resumes or cancels job `key`: `Ok(None)` when there is no such job,
    /// [`TriggerError::ClusterUnavailable`] for a cluster job while this node cannot
    /// reach the cluster.
    pub async fn control(
        &self,
        key: JobKey,
        control: JobControl,
    ) -> Result<Option<Arc<JobView>>, TriggerError> {
        if let Some(route) = self.cluster_route(&key) {
            return route.control(key, control).await;
        }
        let (reply, rx) = oneshot::channel();
        let cmd = match control {
            JobControl::Pause => Command::Pause { key, reply },
            JobControl::Resume => Command::Resume { key, reply },
            JobControl::Cancel => Command::Cancel { key, reply },
        };
        Ok(self.ask(cmd, rx).await.flatten())
    }

    /// Sends cluster jobs' triggers and controls to `route` from now on. Set once; a
    /// second call is ignored.
    pub fn set_cluster_route(&self, route: Arc<dyn ClusterRoute>) {
        let _ = self.cluster.set(route);
    }

    /// The route for job `key` when it is a cluster job and a route is set.
    fn cluster_route(&self, key: &JobKey) -> Option<&Arc<dyn ClusterRoute>> {
        let route = self.cluster.get()?;
        let clustered = self
            .snapshot
            .borrow()
            .job(key.kind, key.id.as_str())
            .is_some_and(|view| view.def.common.run_on.is_cluster());
        clustered.then_some(route)
    }

    /// Cluster mode: starts run `counter` (id `run`) of `key` for an order this node
    /// accepted.
    pub async fn cluster_start(
        &self,
        key: JobKey,
        counter: u64,
        trigger: Trigger,
        run: String,
    ) -> Result<Arc<JobView>, TriggerError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::ClusterStart {
            key,
            counter,
            trigger,
            run,
            reply,
        };
        self.ask(cmd, rx)
            .await
            .unwrap_or(Err(TriggerError::ShuttingDown))
    }

    /// Cluster mode: job `key`'s shared record at `revision`; answers with the job's
    /// view once it follows the record.
    pub async fn cluster_record(
        &self,
        key: JobKey,
        record: crate::cluster::decide::JobRecord,
        revision: u64,
    ) -> Option<Arc<JobView>> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::ClusterRecord {
            key,
            record: Box::new(record),
            revision,
            reply,
        };
        self.ask(cmd, rx).await.flatten()
    }

    /// Cluster mode: run `counter` of `key` has its final log at `path` here, written
    /// by another node's run (collected) or for a run that never ran here.
    pub async fn cluster_log(
        &self,
        key: JobKey,
        counter: u64,
        status: RunStatus,
        path: std::path::PathBuf,
    ) {
        let cmd = Command::ClusterLog {
            key,
            counter,
            status,
            path,
        };
        let _ = self.tx.send(cmd).await;
    }

    /// Replaces the job set and the configuration published with it: new jobs are
    /// added, removed ones dropped once idle, changed ones take effect from their next
    /// run. Running runs are not disturbed.
    pub async fn reload(&self, jobs: Vec<JobDef>, config: Arc<Config>) {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Reload {
            jobs,
            config,
            reply,
        };
        let _ = self.ask(cmd, rx).await;
    }

    /// Records a check-in of monitor `id`; answers after what it changed is on disk.
    /// `None` when there is no such monitor (or karajo is stopping).
    pub async fn ping(
        &self,
        id: JobId,
        ping: crate::monitor::Ping,
        block: crate::store::monitor_files::PingBlock,
    ) -> Option<PingAnswer> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Ping {
            id,
            ping,
            block,
            reply,
        };
        self.ask(cmd, rx).await.flatten()
    }

    /// Pauses monitor `id` (`until` `None`: the monitor's default); `None` when there
    /// is no such monitor.
    pub async fn pause_monitor(
        &self,
        id: JobId,
        until: Option<crate::monitor::PauseUntil>,
    ) -> Option<Arc<MonitorView>> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::PauseMonitor { id, until, reply };
        self.ask(cmd, rx).await.flatten()
    }

    /// Resumes monitor `id`; `None` when there is no such monitor.
    pub async fn resume_monitor(&self, id: JobId) -> Option<Arc<MonitorView>> {
        let (reply, rx) = oneshot::channel();
        self.ask(Command::ResumeMonitor { id, reply }, rx)
            .await
            .flatten()
    }

    /// A watchTower pulse: a success check-in with its `next_in`, creating the dynamic
    /// monitor when needed. Answers with the monitor once what changed is on disk.
    pub async fn pulse(
        &self,
        pulse: crate::monitor::Pulse,
        block: crate::store::monitor_files::PingBlock,
    ) -> PulseReply {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Pulse {
            pulse,
            block,
            reply,
        };
        self.ask(cmd, rx)
            .await
            .unwrap_or_else(|| Err(PulseError::NotFound("karajo is stopping".into())))
    }

    /// A watchTower cancel: removes the dynamic monitor of `service` (answering
    /// `None`), or pauses the configured one that accepts pulses until its next
    /// check-in (answering it).
    pub async fn cancel_pulse(&self, service: String) -> PulseReply {
        let (reply, rx) = oneshot::channel();
        self.ask(Command::CancelPulse { service, reply }, rx)
            .await
            .unwrap_or_else(|| Err(PulseError::NotFound("karajo is stopping".into())))
    }

    /// A control of service `id` (enable, disable, restart, run once, signal), with an
    /// optional `cas` precondition; `by` names who asked, for the event log. Answers
    /// with the service once the action has started; `None` when there is no such
    /// service.
    pub async fn service_control(
        &self,
        id: JobId,
        control: crate::service::Control,
        cas: Option<u64>,
        by: String,
    ) -> Option<ServiceAnswer> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::ServiceControl {
            id,
            control,
            cas,
            by,
            reply,
        };
        self.ask(cmd, rx).await.flatten()
    }

    /// A ping of service `id` with an instance token; `None` when there is no such
    /// service.
    pub async fn service_ping(
        &self,
        id: JobId,
        token: String,
        update: crate::service::PingUpdate,
    ) -> Option<ServicePingAnswer> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::ServicePing {
            id,
            token,
            update,
            reply,
        };
        self.ask(cmd, rx).await.flatten()
    }

    /// Stops the timers, cancels running runs (SIGTERM, then SIGKILL after each job's
    /// `kill_grace`), waits until they are recorded as `canceled`, saves the state and
    /// ends the scheduler task.
    pub async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        let _ = self.ask(Command::Shutdown { reply }, rx).await;
    }

    async fn ask<T>(&self, cmd: Command, rx: oneshot::Receiver<T>) -> Option<T> {
        self.tx.send(cmd).await.ok()?;
        rx.await.ok()
    }
}
