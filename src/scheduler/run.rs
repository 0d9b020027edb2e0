//! One run, from its first log line to its last: frames the output as the original
//! does (spec 6.5), hands the request body to commands through a file, calls the
//! kind's executor, closes the log under its final status and returns the run's end
//! for the scheduler to decide on.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::decide::Finished;
use super::{JobDef, JobDefKind};
use crate::clock::SharedClock;
use crate::config::{ExecSpec, HttpSpec, JobCommon};
use crate::exec::{self, HttpJob, LogSink, Outcome, RunContext, ShellJob};
use crate::job::{JobId, JobKind, Trigger};
use crate::redact::SecretHeaders;
use crate::store::{RunLogWriter, framing};

/// The fixed `PATH` the original gives commands (spec 6.2).
pub(crate) const COMMAND_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/bin/site_perl:/usr/bin/vendor_perl:/usr/bin/core_perl";

/// Everything a run needs, prepared by the scheduler.
pub(crate) struct RunPlan {
    pub(crate) def: JobDef,
    pub(crate) ctx: RunContext,
    pub(crate) work_dir: PathBuf,
    pub(crate) request_file: PathBuf,
    /// Where the commands' process groups are recorded while they run.
    pub(crate) group_dir: PathBuf,
    pub(crate) cancel: CancellationToken,
    pub(crate) clock: SharedClock,
    /// Called once the run's work is done, before its log is closed and made durable
    /// (the scheduler gives the run's slot back).
    pub(crate) executed: Box<dyn FnOnce() + Send>,
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

/// Runs `plan` to its end, writing into the opened log `writer`, and returns how it
/// ended.
pub(crate) async fn execute(plan: RunPlan, writer: RunLogWriter) -> Finished {
    let RunPlan {
        def,
        ctx,
        work_dir,
        request_file,
        group_dir,
        cancel,
        clock,
        executed,
    } = plan;
    let id = ctx.job_id.clone();
    let key = def.key();
    let counter = ctx.counter;
    let file = Arc::new(Mutex::new(LogFile(Some(writer))));
    let log: exec::SharedLog = file.clone();
    exec::log_line(&log, framing::begin());
    // The second line names what started the run, for the web UI of any kept log.
    exec::log_line(&log, &framing::trigger(ctx.trigger));
    // In cluster mode, the third names the node it runs on (every node has the log).
    if let Some(node) = &ctx.node {
        exec::log_line(&log, &framing::node(node));
    }
    // A retry, a chained run or a catch-up says which.
    if let Some(origin) = &ctx.origin {
        exec::log_line(&log, &origin.log_line());
    }

    let body_file = write_request_body(&ctx, &request_file).await;
    let outcome = match &body_file {
        Err(err) => Outcome::Failed(format!("cannot store the request body: {err}")),
        Ok(body) => {
            let run = KindRun {
                common: &def.common,
                ctx: &ctx,
                work_dir: &work_dir,
                group_dir,
                body: body.as_ref(),
                log: log.clone(),
                cancel,
                clock: &clock,
            };
            def.kind.run(run).await
        }
    };
    executed();
    exec::log_line(&log, &closing_line(def.kind(), &id, &outcome));
    // The body file goes on the same blocking thread that closes the log.
    let body_path = body_file.ok().flatten();
    let remove_body = move || {
        if let Some(path) = body_path {
            let _ = std::fs::remove_file(path);
        }
    };

    let writer = file.lock().unwrap_or_else(|e| e.into_inner()).0.take();
    let status = outcome.status();
    let mut log_path = None;
    if let Some(writer) = writer {
        let running = writer.path().to_path_buf();
        let closed = tokio::task::spawn_blocking(move || {
            remove_body();
            writer.finish(status)
        })
        .await;
        log_path = Some(match closed {
            Ok(Ok(path)) => path,
            Ok(Err(err)) => {
                tracing::error!(job = %key, counter, %err, "cannot close run log");
                running.with_extension(status.as_str())
            }
            Err(err) => {
                tracing::error!(job = %key, counter, %err, "closing the run log panicked");
                running.with_extension(status.as_str())
            }
        });
    } else {
        let _ = tokio::task::spawn_blocking(remove_body).await;
    }
    match &outcome {
        Outcome::Success => tracing::info!(job = %key, counter, "run succeeded"),
        other => tracing::warn!(job = %key, counter, outcome = %other, "run did not succeed"),
    }
    Finished {
        key,
        counter,
        status,
        at: clock.now(),
        exit_code: exit_code(&def.kind, &outcome),
        log: log_path,
    }
}

/// What a run of any kind gets to work with, besides its kind's own configuration.
struct KindRun<'a> {
    common: &'a JobCommon,
    ctx: &'a RunContext,
    work_dir: &'a Path,
    group_dir: PathBuf,
    /// The stored request body of a webhook run.
    body: Option<&'a PathBuf>,
    log: exec::SharedLog,
    cancel: CancellationToken,
    clock: &'a SharedClock,
}

impl JobDefKind {
    /// Does the work of one run of this kind: the registered function or the shell
    /// commands of a command job, the request of an HTTP job.
    async fn run(&self, run: KindRun<'_>) -> Outcome {
        match self {
            Self::Exec {
                spec,
                function: Some(function),
            } => {
                exec::run_function(
                    function,
                    run.ctx.clone(),
                    run.log,
                    run.cancel,
                    spec.timeout,
                    spec.kill_grace,
                )
                .await
            }
            Self::Exec {
                spec,
                function: None,
            } => {
                let mut job = shell_job(spec, run.ctx, run.work_dir, run.body);
                let record = format!("{}.{}", run.ctx.job_id, run.ctx.counter);
                job.group_record = Some((run.group_dir, record));
                exec::run_shell(&job, run.log, run.cancel).await
            }
            Self::Http { spec, url, sent } => {
                let mut job = http_job(run.common, spec, url);
                job.sent = sent.clone();
                let now = run.clock.now().as_second();
                exec::run_http(&job, now, run.log, run.cancel).await
            }
        }
    }

    /// The exit code a successful run reports: 0 when shell commands ran (every one
    /// succeeded), `None` when no command exited (functions, HTTP requests).
    fn success_exit_code(&self) -> Option<i32> {
        match self {
            Self::Exec {
                spec,
                function: None,
            } if !spec.commands.is_empty() => Some(0),
            _ => None,
        }
    }
}

/// The exit code of the command that ended a run: a failed command's code, 0 when
/// every command of a shell run succeeded, `None` when no command exited (functions,
/// HTTP requests, timeouts, cancels, commands killed by a signal).
fn exit_code(kind: &JobDefKind, outcome: &Outcome) -> Option<i32> {
    match outcome {
        Outcome::Exited(code) => Some(*code),
        Outcome::Success => kind.success_exit_code(),
        _ => None,
    }
}

/// The last framing lines of a run (spec 6.5 and 7.4, plus timeouts).
fn closing_line(kind: JobKind, id: &JobId, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Success => framing::done(kind, id),
        Outcome::Failed(why) => framing::failed(kind, id, why),
        Outcome::Exited(code) => framing::failed(kind, id, format_args!("exit status {code}")),
        Outcome::TimedOut(_) => framing::failed(kind, id, outcome),
        Outcome::Canceled => framing::canceled().to_string(),
    }
}

/// Writes a webhook run's raw body (mode 0600) where its commands can read it; `None`
/// for runs without a request or with an empty body.
async fn write_request_body(ctx: &RunContext, path: &Path) -> io::Result<Option<PathBuf>> {
    let Some(request) = ctx.request.as_ref().filter(|r| !r.body.is_empty()) else {
        return Ok(None);
    };
    let (path, body) = (path.to_path_buf(), request.body.clone());
    tokio::task::spawn_blocking(move || {
        crate::store::write_private(&path, &body)?;
        Ok(Some(path))
    })
    .await
    .map_err(io::Error::other)?
}

/// The commands, directory and environment of a shell run (spec 6.2 plus the new
/// variables).
fn shell_job(
    cfg: &ExecSpec,
    ctx: &RunContext,
    work_dir: &Path,
    body: Option<&PathBuf>,
) -> ShellJob {
    let mut env = vec![
        ("KARAJO_JOB_COUNTER".to_string(), ctx.counter.to_string()),
        ("PATH".to_string(), COMMAND_PATH.to_string()),
        ("KARAJO_JOB_ID".to_string(), ctx.job_id.to_string()),
        (
            "KARAJO_TRIGGER".to_string(),
            ctx.trigger.as_str().to_string(),
        ),
    ];
    if let Some(node) = &ctx.node {
        env.push(("KARAJO_NODE".to_string(), node.clone()));
    }
    if let Some(run) = &ctx.run_id {
        env.push(("KARAJO_RUN_ID".to_string(), run.clone()));
    }
    if let Some(origin) = &ctx.origin {
        env.extend(origin.env());
    }
    if let (Trigger::Webhook, Some(body)) = (ctx.trigger, body) {
        env.push((
            "KARAJO_REQUEST_BODY".to_string(),
            body.to_string_lossy().into_owned(),
        ));
    }
    env.extend(ctx.env.iter().cloned());
    // A run nobody gave values to (a timer, a delivery) gets the defaults.
    for (name, value) in cfg.params.defaults() {
        if !env.iter().any(|(n, _)| *n == name) {
            env.push((name, value));
        }
    }
    ShellJob {
        commands: cfg.commands.clone(),
        work_dir: work_dir.to_path_buf(),
        env,
        timeout: cfg.timeout,
        kill_grace: cfg.kill_grace,
        group_record: None,
    }
}

/// The request of an HTTP run.
fn http_job(common: &JobCommon, cfg: &HttpSpec, url: &str) -> HttpJob {
    HttpJob {
        method: cfg.http_method,
        url: url.to_string(),
        request_type: cfg.http_request_type,
        headers: cfg.http_headers.clone(),
        secret: common.secret.clone(),
        header_sign: common.header_sign.clone(),
        secret_headers: SecretHeaders::new(&common.header_sign, &cfg.http_header_secret),
        timeout: cfg.http_timeout,
        insecure: cfg.http_insecure,
        sent: None,
    }
}
