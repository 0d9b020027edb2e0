//! The one owner of runtime state. A single task holds every job's status, counters,
//! timers and queues; it sleeps until the next due time (no polling) and takes
//! [`Command`]s (run, pause, resume, cancel, reload, shutdown) over a channel. It
//! enforces the queue rules (idle starts now, one more is queued, further ones are
//! refused) and `max_job_running`, starts runs, and records their ends. Readers (the
//! HTTP API, later the UI and metrics) get cheap [`Snapshot`]s through a `watch`
//! channel; everyone else holds a cloneable [`SchedulerHandle`].

mod restore;
mod run;
mod runtime;

use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot, watch};

pub use restore::{RestoredJob, restore_jobs};
pub use runtime::{SchedulerOptions, spawn};

use crate::config::JobExecConfig;
use crate::exec::{JobFn, WebhookRequest};
use crate::job::{JobId, JobKind, RunStatus, Trigger};

/// A job as the scheduler runs it: its configuration and, for jobs implemented in
/// Rust, the registered function that replaces its commands.
#[derive(Clone)]
pub struct JobDef {
    /// The job's configuration.
    pub config: Arc<JobExecConfig>,
    /// The registered function, if any.
    pub function: Option<JobFn>,
}

impl std::fmt::Debug for JobDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobDef")
            .field("id", &self.config.id)
            .field("function", &self.function.is_some())
            .finish()
    }
}

/// One run log as listed in a job view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSummary {
    /// The run's counter.
    pub counter: u64,
    /// `running` while it runs, then its final status.
    pub status: RunStatus,
}

/// A read-only picture of one job, published after every change.
#[derive(Debug, Clone)]
pub struct JobView {
    /// Command job or HTTP job.
    pub kind: JobKind,
    /// The job's configuration.
    pub config: Arc<JobExecConfig>,
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
}

/// Everything the scheduler publishes.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every job, sorted by name.
    pub jobs: Vec<Arc<JobView>>,
    /// Runs executing now.
    pub running: usize,
    /// Runs waiting for a `max_job_running` slot.
    pub waiting: usize,
}

impl Snapshot {
    /// The job with this id.
    pub fn job(&self, id: &str) -> Option<&Arc<JobView>> {
        self.jobs.iter().find(|j| j.config.id.as_str() == id)
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
}

/// Messages to the scheduler task.
#[derive(Debug)]
pub(crate) enum Command {
    Trigger {
        id: JobId,
        trigger: Trigger,
        request: Option<Arc<WebhookRequest>>,
        reply: oneshot::Sender<Result<Arc<JobView>, TriggerError>>,
    },
    Pause {
        id: JobId,
        reply: oneshot::Sender<Option<Arc<JobView>>>,
    },
    Resume {
        id: JobId,
        reply: oneshot::Sender<Option<Arc<JobView>>>,
    },
    Cancel {
        id: JobId,
        reply: oneshot::Sender<Option<Arc<JobView>>>,
    },
    Reload {
        jobs: Vec<JobDef>,
        max_job_running: usize,
        reply: oneshot::Sender<()>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// A cheap, cloneable handle on the scheduler task.
#[derive(Debug, Clone)]
pub struct SchedulerHandle {
    tx: mpsc::Sender<Command>,
    snapshot: watch::Receiver<Arc<Snapshot>>,
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

    /// Asks for a run of job `id`. Answers with the job as it was when the trigger was
    /// accepted: started now, or queued behind the current run.
    pub async fn trigger(
        &self,
        id: JobId,
        trigger: Trigger,
        request: Option<Arc<WebhookRequest>>,
    ) -> Result<Arc<JobView>, TriggerError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Trigger {
            id,
            trigger,
            request,
            reply,
        };
        self.ask(cmd, rx)
            .await
            .unwrap_or(Err(TriggerError::ShuttingDown))
    }

    /// Pauses job `id`; `None` when there is no such job.
    pub async fn pause(&self, id: JobId) -> Option<Arc<JobView>> {
        let (reply, rx) = oneshot::channel();
        self.ask(Command::Pause { id, reply }, rx).await.flatten()
    }

    /// Resumes job `id`; `None` when there is no such job.
    pub async fn resume(&self, id: JobId) -> Option<Arc<JobView>> {
        let (reply, rx) = oneshot::channel();
        self.ask(Command::Resume { id, reply }, rx).await.flatten()
    }

    /// Cancels the current run of job `id` (a no-op when idle); `None` when there is
    /// no such job. The run ends shortly after, as `canceled`.
    pub async fn cancel(&self, id: JobId) -> Option<Arc<JobView>> {
        let (reply, rx) = oneshot::channel();
        self.ask(Command::Cancel { id, reply }, rx).await.flatten()
    }

    /// Replaces the job set: new jobs are added, removed ones dropped once idle,
    /// changed ones take effect from their next run. Running runs are not disturbed.
    pub async fn reload(&self, jobs: Vec<JobDef>, max_job_running: usize) {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Reload {
            jobs,
            max_job_running,
            reply,
        };
        let _ = self.ask(cmd, rx).await;
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
