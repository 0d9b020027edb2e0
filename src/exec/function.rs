//! Jobs that are Rust async functions registered through the library API instead of
//! shell commands. The function gets the run's log, the triggering request and a
//! cancellation signal; it is also dropped (and so stopped) on cancel and timeout.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Outcome, RunContext, SharedLog, log_line};

/// The error a job function may return; its text goes into the run log.
pub type JobError = Box<dyn std::error::Error + Send + Sync>;

/// The future a job function returns.
pub type JobFuture = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send>>;

/// A job implemented as a Rust async function.
pub type JobFn = Arc<dyn Fn(JobContext) -> JobFuture + Send + Sync>;

/// Wraps an async function or closure as a [`JobFn`].
///
/// ```
/// use std::io::Write;
/// let job = karajo::exec::job_fn(|mut ctx| async move {
///     writeln!(ctx.log, "hello from run #{}", ctx.run.counter)?;
///     Ok(())
/// });
/// # let _ = job;
/// ```
pub fn job_fn<F, Fut>(f: F) -> JobFn
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    Arc::new(move |ctx| Box::pin(f(ctx)))
}

/// What a job function is given.
pub struct JobContext {
    /// Job id, counter, trigger and the web hook request, if any.
    pub run: RunContext,
    /// The run's log; implements [`std::io::Write`].
    pub log: RunLog,
    /// Fires when the run is cancelled or times out; the function should return soon
    /// after (it is dropped once the grace period is over).
    pub cancel: CancellationToken,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("run", &self.run)
            .finish()
    }
}

/// A handle on the run's log for job functions. Every line gets the usual prefix.
#[derive(Clone)]
pub struct RunLog(SharedLog);

impl io::Write for RunLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .output(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs a job function until it returns, `cancel` fires or `timeout` passes. On cancel
/// or timeout the function's own token fires first and it gets `grace` to finish.
pub(crate) async fn run_function(
    job: &JobFn,
    run: RunContext,
    log: SharedLog,
    cancel: CancellationToken,
    timeout: Option<Duration>,
    grace: Duration,
) -> Outcome {
    let own_cancel = CancellationToken::new();
    let ctx = JobContext {
        run,
        log: RunLog(log.clone()),
        cancel: own_cancel.clone(),
    };
    let mut fut = job(ctx);
    let until_deadline = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let stopped = tokio::select! {
        result = &mut fut => return match result {
            Ok(()) => Outcome::Success,
            Err(err) => Outcome::Failed(err.to_string()),
        },
        () = cancel.cancelled() => Outcome::Canceled,
        () = until_deadline => Outcome::TimedOut(timeout.unwrap_or_default()),
    };
    own_cancel.cancel();
    if tokio::time::timeout(grace, &mut fut).await.is_err() {
        log_line(
            &log,
            "!!! the job function did not stop within the grace period",
        );
    }
    stopped
}
