//! Runs one job: its shell commands, its registered Rust function or its HTTP request. Owns process
//! spawning, output capture and stopping whole process trees. It knows nothing of HTTP
//! serving, scheduling or where logs live: it gets a [`RunContext`] and a [`LogSink`]
//! and returns an [`Outcome`].

mod direct;
mod function;
pub mod group_usage;
pub mod http;
pub mod notify_socket;
mod process;
pub mod service;
mod shell;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) use function::run_function;
pub use function::{JobContext, JobError, JobFn, JobFuture, RunLog, job_fn};
pub use http::{HttpJob, SentSignatures, run_http};
pub use process::stop_recorded_groups;
pub use shell::{ShellJob, run_shell};

use crate::job::{JobId, Trigger};

/// Where a run's output and framing lines go. The store's run log implements it; tests
/// may use a `Vec<u8>`.
pub trait LogSink: Send {
    /// Appends raw output (any chunking; lines may be split across calls).
    fn output(&mut self, chunk: &[u8]) -> io::Result<()>;
    /// Appends one whole line of karajo's own text (no trailing newline in `text`).
    fn line(&mut self, text: &str) -> io::Result<()>;
}

/// A log sink shared between the task that waits for a process and the one that copies
/// its output. The lock is only ever held for one synchronous write.
pub type SharedLog = Arc<Mutex<dyn LogSink>>;

/// Writes one line to a shared log, ignoring a poisoned lock and reporting IO errors to
/// the tracing log (a full disk must not stop the run from being stopped or recorded).
pub(crate) fn log_line(log: &SharedLog, text: &str) {
    let mut sink = log.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(err) = sink.line(text) {
        tracing::warn!(%err, "cannot write to run log");
    }
}

impl LogSink for Vec<u8> {
    fn output(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.extend_from_slice(chunk);
        Ok(())
    }

    fn line(&mut self, text: &str) -> io::Result<()> {
        if self.last().is_some_and(|b| *b != b'\n') {
            self.push(b'\n');
        }
        self.extend_from_slice(text.as_bytes());
        self.push(b'\n');
        Ok(())
    }
}

/// What a run knows about itself.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The job being run.
    pub job_id: JobId,
    /// This run's counter.
    pub counter: u64,
    /// What started the run.
    pub trigger: Trigger,
    /// The triggering web hook request, for webhook runs.
    pub request: Option<Arc<WebhookRequest>>,
    /// Extra environment variables: a web hook delivery's `KARAJO_GIT_*`, a manual
    /// run's `KARAJO_PARAM_*`; shell runs add them after karajo's own.
    pub env: Vec<(String, String)>,
    /// Cluster mode: this node's name (`KARAJO_NODE`).
    pub node: Option<String>,
    /// Cluster mode: the run's id, for a run ordered by the cluster (`KARAJO_RUN_ID`).
    pub run_id: Option<String>,
    /// The attempt it retries, the run it follows, or the slot it catches up.
    pub origin: Option<crate::job::RunOrigin>,
}

/// A web hook request that triggered a run, as received (after its signature checked).
#[derive(Debug, Clone, Default)]
pub struct WebhookRequest {
    /// The request headers.
    pub headers: ::http::HeaderMap,
    /// The raw request body.
    pub body: bytes::Bytes,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every command exited 0 / the function returned `Ok`.
    Success,
    /// A command exited with this non-zero code (`exit status 3`).
    Exited(i32),
    /// A command failed otherwise or the function returned an error; the text says
    /// why (`signal: killed`, the function's message).
    Failed(String),
    /// Stopped by its `timeout`.
    TimedOut(Duration),
    /// Stopped by a cancel request or by shutdown.
    Canceled,
}

impl std::fmt::Display for Outcome {
    /// The outcome in words: `succeeded`, `failed: exit status 2`, `timed out after 5s`,
    /// `canceled`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Success => f.write_str("succeeded"),
            Self::Exited(code) => write!(f, "failed: exit status {code}"),
            Self::Failed(why) => write!(f, "failed: {why}"),
            Self::TimedOut(after) => {
                let after = jiff::SignedDuration::try_from(*after).unwrap_or_default();
                write!(f, "timed out after {after:#}")
            }
            Self::Canceled => f.write_str("canceled"),
        }
    }
}

impl Outcome {
    /// The run status this outcome is recorded as.
    pub fn status(&self) -> crate::job::RunStatus {
        use crate::job::RunStatus;
        match self {
            Self::Success => RunStatus::Success,
            Self::Exited(_) | Self::Failed(_) | Self::TimedOut(_) => RunStatus::Failed,
            Self::Canceled => RunStatus::Canceled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_read_as_words() {
        assert_eq!(Outcome::Success.to_string(), "succeeded");
        assert_eq!(
            Outcome::Failed("exit status 2".into()).to_string(),
            "failed: exit status 2"
        );
        assert_eq!(
            Outcome::TimedOut(Duration::from_millis(500)).to_string(),
            "timed out after 500ms"
        );
        assert_eq!(
            Outcome::TimedOut(Duration::from_secs(90)).to_string(),
            "timed out after 1m 30s"
        );
        assert_eq!(Outcome::Exited(3).to_string(), "failed: exit status 3");
        assert_eq!(Outcome::Canceled.to_string(), "canceled");
    }
}
