//! One run, from its first log line to its last: frames the output as the original
//! does (spec 6.5), hands the request body to commands through a file, calls the
//! executor, closes the log under its final status, queues the run's notifications
//! and reports back to the scheduler.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::JobDef;
use crate::clock::SharedClock;
use crate::exec::{self, LogSink, Outcome, RunContext, ShellJob};
use crate::job::{JobId, JobKind, RunStatus, Trigger};
use crate::notify::{Notifier, NotifyOn, RunRecord};
use crate::store::RunLogWriter;

/// The fixed `PATH` the original gives commands (spec 6.2).
pub(crate) const COMMAND_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/bin/site_perl:/usr/bin/vendor_perl:/usr/bin/core_perl";

/// A run's end, as reported to the scheduler.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) id: JobId,
    pub(crate) counter: u64,
    pub(crate) status: RunStatus,
    pub(crate) at: Timestamp,
}

/// Everything a run needs, prepared by the scheduler.
pub(crate) struct RunPlan {
    pub(crate) def: JobDef,
    pub(crate) ctx: RunContext,
    pub(crate) work_dir: PathBuf,
    pub(crate) request_file: PathBuf,
    pub(crate) writer: RunLogWriter,
    pub(crate) cancel: CancellationToken,
    pub(crate) clock: SharedClock,
    /// Told about the run's end, before the scheduler is.
    pub(crate) notifier: Option<Notifier>,
    /// The job's last run that ended `success` or `failed`.
    pub(crate) previous: Option<RunStatus>,
}

/// The run log behind the executor's [`LogSink`]; emptied when the run is closed, so a
/// late writer (an aborted output copier) cannot touch a finished file. Every write is
/// flushed, so readers of the running log see output as it arrives: the output copier
/// hands over whole pipe reads (up to 64 KiB), so this costs one `write` per read.
struct LogFile(Option<RunLogWriter>);

impl LogSink for LogFile {
    fn output(&mut self, chunk: &[u8]) -> io::Result<()> {
        match &mut self.0 {
            Some(w) => w.write_output(chunk).and_then(|()| w.flush()),
            None => Ok(()),
        }
    }

    fn line(&mut self, text: &str) -> io::Result<()> {
        match &mut self.0 {
            Some(w) => w.line(text).and_then(|()| w.flush()),
            None => Ok(()),
        }
    }
}

/// Runs `plan` to its end and sends the result on `done`.
pub(crate) async fn execute(plan: RunPlan, done: mpsc::UnboundedSender<Finished>) {
    let RunPlan {
        def,
        ctx,
        work_dir,
        request_file,
        writer,
        cancel,
        clock,
        notifier,
        previous,
    } = plan;
    let started = clock.now();
    let id = ctx.job_id.clone();
    let counter = ctx.counter;
    let file = Arc::new(Mutex::new(LogFile(Some(writer))));
    let log: exec::SharedLog = file.clone();
    exec::log_line(&log, "=== BEGIN");

    let body_file = write_request_body(&ctx, &request_file).await;
    let outcome = match (&def.function, &body_file) {
        (_, Err(err)) => Outcome::Failed(format!("cannot store the request body: {err}")),
        (Some(function), Ok(_)) => {
            let cfg = &def.config;
            exec::run_function(
                function,
                ctx.clone(),
                log.clone(),
                cancel,
                cfg.timeout,
                cfg.kill_grace,
            )
            .await
        }
        (None, Ok(body)) => {
            let job = shell_job(&def, &ctx, &work_dir, body.as_ref());
            exec::run_shell(&job, log.clone(), cancel).await
        }
    };
    exec::log_line(&log, &closing_line(&id, &outcome));
    if let Ok(Some(path)) = &body_file {
        let _ = tokio::fs::remove_file(path).await;
    }

    let writer = file.lock().unwrap_or_else(|e| e.into_inner()).0.take();
    let status = outcome.status();
    let mut log_path = None;
    if let Some(writer) = writer {
        let running = writer.path().to_path_buf();
        let closed = tokio::task::spawn_blocking(move || writer.finish(status)).await;
        log_path = Some(match closed {
            Ok(Ok(path)) => path,
            Ok(Err(err)) => {
                tracing::error!(job = %id, counter, %err, "cannot close run log");
                running.with_extension(status.as_str())
            }
            Err(err) => {
                tracing::error!(job = %id, counter, %err, "closing the run log panicked");
                running.with_extension(status.as_str())
            }
        });
    }
    match &outcome {
        Outcome::Success => tracing::info!(job = %id, counter, "run succeeded"),
        other => tracing::warn!(job = %id, counter, outcome = ?other, "run did not succeed"),
    }
    let at = clock.now();
    if let (Some(notifier), Some(log_path)) = (&notifier, log_path) {
        let cfg = &def.config;
        let record = RunRecord {
            kind: JobKind::Exec,
            id: id.clone(),
            name: cfg.name.clone(),
            counter,
            status,
            trigger: ctx.trigger,
            started,
            ended: at,
            log_path,
            previous,
        };
        let on = NotifyOn {
            success: &cfg.notif_on_success,
            failed: &cfg.notif_on_failed,
            recover: &cfg.notif_on_recover,
        };
        notifier.submit(record, on).await;
    }
    let _ = done.send(Finished {
        id,
        counter,
        status,
        at,
    });
}

/// The last framing line of a run (spec 6.5, plus timeouts).
fn closing_line(id: &JobId, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Success => format!("=== DONE\n=== job: {id}: finished."),
        Outcome::Failed(why) => format!("!!! job: {id}: {why}"),
        Outcome::TimedOut(after) => format!("!!! job: {id}: timed out after {after:?}"),
        Outcome::Canceled => "??? CANCELED".to_string(),
    }
}

/// Writes a webhook run's raw body where its commands can read it; `None` for runs
/// without a request.
async fn write_request_body(ctx: &RunContext, path: &PathBuf) -> io::Result<Option<PathBuf>> {
    let Some(request) = &ctx.request else {
        return Ok(None);
    };
    tokio::fs::write(path, &request.body).await?;
    Ok(Some(path.clone()))
}

/// The commands, directory and environment of a shell run (spec 6.2 plus the new
/// variables).
fn shell_job(def: &JobDef, ctx: &RunContext, work_dir: &Path, body: Option<&PathBuf>) -> ShellJob {
    let cfg = &def.config;
    let mut env = vec![
        ("KARAJO_JOB_COUNTER".to_string(), ctx.counter.to_string()),
        ("PATH".to_string(), COMMAND_PATH.to_string()),
        ("KARAJO_JOB_ID".to_string(), ctx.job_id.to_string()),
        (
            "KARAJO_TRIGGER".to_string(),
            ctx.trigger.as_str().to_string(),
        ),
    ];
    if let (Trigger::Webhook, Some(body)) = (ctx.trigger, body) {
        env.push((
            "KARAJO_REQUEST_BODY".to_string(),
            body.to_string_lossy().into_owned(),
        ));
    }
    ShellJob {
        commands: cfg.commands.clone(),
        work_dir: work_dir.to_path_buf(),
        env,
        timeout: cfg.timeout,
        kill_grace: cfg.kill_grace,
    }
}
