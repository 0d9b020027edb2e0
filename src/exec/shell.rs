//! Shell command jobs: each `command` runs through `/bin/sh -c`, in order, in the job's
//! work directory with a fixed environment, stopping at the first failure. Standard
//! output and standard error share one pipe, so their lines stay in the order they were
//! written, and are streamed into the run log as they arrive.

use std::io;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{Pid, Signal};
use tokio::io::AsyncReadExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::process::{GroupRecord, group_of, signal_group, terminate};
use super::{Outcome, SharedLog, log_line};
use crate::store::framing;

/// Size of one read from a command's output pipe.
const READ_CHUNK: usize = 64 * 1024;

/// The capacity asked for each output pipe; a bigger pipe means fewer wake-ups when a
/// command writes a lot. The kernel may refuse (then the default stays).
const PIPE_CAPACITY: usize = 1024 * 1024;

/// Everything needed to run a job's commands.
#[derive(Debug, Clone)]
pub struct ShellJob {
    /// Commands, each run as `/bin/sh -c <command>`.
    pub commands: Vec<String>,
    /// The working directory of every command.
    pub work_dir: PathBuf,
    /// The complete environment of every command (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// The longest the whole run may take.
    pub timeout: Option<Duration>,
    /// How long a stopped process group gets between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// Where each command's process group is recorded while it runs, and the record's
    /// file name (see [`stop_recorded_groups`](super::stop_recorded_groups)).
    pub group_record: Option<(PathBuf, String)>,
}

/// Runs the commands of `job` in order, streaming their output into `log`, until one
/// fails, the run times out or `cancel` fires. Processes a command leaves behind in its
/// process group are stopped when the command exits, so no child outlives its run.
pub async fn run_shell(job: &ShellJob, log: SharedLog, cancel: CancellationToken) -> Outcome {
    let deadline = job.timeout.map(|t| tokio::time::Instant::now() + t);
    for (index, command) in job.commands.iter().enumerate() {
        log_line(&log, "");
        log_line(&log, &framing::execute(index, command));
        match run_one(job, command, &log, &cancel, deadline).await {
            Ok(Ended::Exited(status)) if status.success() => continue,
            Ok(Ended::Exited(status)) => return describe_exit(status),
            Ok(Ended::Canceled) => return Outcome::Canceled,
            Ok(Ended::TimedOut) => return Outcome::TimedOut(job.timeout.unwrap_or_default()),
            Err(err) => return Outcome::Failed(format!("cannot run /bin/sh: {err}")),
        }
    }
    Outcome::Success
}

/// How one command ended.
enum Ended {
    Exited(ExitStatus),
    Canceled,
    TimedOut,
}

async fn run_one(
    job: &ShellJob,
    command: &str,
    log: &SharedLog,
    cancel: &CancellationToken,
    deadline: Option<tokio::time::Instant>,
) -> io::Result<Ended> {
    let (reader, writer) = io::pipe()?;
    let _ = rustix::pipe::fcntl_setpipe_size(&writer, PIPE_CAPACITY);
    let mut child = {
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(command)
            .current_dir(&job.work_dir)
            .env_clear()
            .envs(job.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer)
            .process_group(0)
            .kill_on_drop(true);
        cmd.spawn()?
        // `cmd` drops here and with it our copies of the pipe's write end, so the
        // reader sees end-of-file once the command's processes are gone.
    };
    let pgid = group_of(&child);
    let _record = pgid
        .zip(job.group_record.as_ref())
        .and_then(|(pgid, (dir, name))| {
            GroupRecord::write(dir, name, pgid)
                .map_err(|err| tracing::warn!(%err, "cannot record the process group"))
                .ok()
        });
    let mut copier = tokio::spawn(copy_output(reader, log.clone()));

    let until_deadline = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    let ended = tokio::select! {
        status = child.wait() => Ended::Exited(status?),
        () = cancel.cancelled() => Ended::Canceled,
        () = until_deadline => Ended::TimedOut,
    };
    if let Some(pgid) = pgid {
        if !matches!(ended, Ended::Exited(_)) {
            terminate(&mut child, pgid, job.kill_grace).await;
        }
        stop_leftovers(pgid, &mut copier, job.kill_grace).await;
    }
    // Output of processes that escaped the group (setsid) is not waited for forever.
    if !copier.is_finished()
        && tokio::time::timeout(job.kill_grace, &mut copier)
            .await
            .is_err()
    {
        copier.abort();
        log_line(
            log,
            "!!! output still open after the command ended; stopped reading",
        );
    }
    Ok(ended)
}

/// Stops what a finished command left running in its group: SIGTERM, then SIGKILL once
/// the grace is over or the output pipe closed (which means they all exited).
async fn stop_leftovers(pgid: Pid, copier: &mut JoinHandle<()>, grace: Duration) {
    if !signal_group(pgid, Signal::TERM) {
        return; // nothing left
    }
    if !copier.is_finished() {
        let _ = tokio::time::timeout(grace, copier).await;
    }
    signal_group(pgid, Signal::KILL);
}

/// Copies a command's output pipe into the log until end-of-file.
async fn copy_output(reader: io::PipeReader, log: SharedLog) {
    let fd = std::os::fd::OwnedFd::from(reader);
    let mut pipe = match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
        Ok(pipe) => pipe,
        Err(err) => {
            log_line(&log, &format!("!!! cannot read command output: {err}"));
            return;
        }
    };
    let mut buf = vec![0u8; READ_CHUNK];
    let mut write_failed = false;
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                log_line(&log, &format!("!!! cannot read command output: {err}"));
                return;
            }
        };
        let result = log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .output(&buf[..n]);
        // Keep draining the pipe after a write error so the command is not blocked.
        if let Err(err) = result
            && !write_failed
        {
            write_failed = true;
            tracing::error!(%err, "cannot write command output to the run log");
        }
    }
}

/// Words for an exit status, as Go prints them: `exit status 3`, `signal: killed`.
fn describe_exit(status: ExitStatus) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return Outcome::Exited(code);
    }
    Outcome::Failed(match status.signal() {
        Some(9) => "signal: killed".to_string(),
        Some(15) => "signal: terminated".to_string(),
        Some(signal) => format!("signal: {signal}"),
        None => status.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn job(commands: &[&str]) -> ShellJob {
        ShellJob {
            commands: commands.iter().map(|c| c.to_string()).collect(),
            work_dir: std::env::temp_dir(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            timeout: None,
            kill_grace: Duration::from_secs(2),
            group_record: None,
        }
    }

    async fn run(job: &ShellJob) -> (Outcome, String) {
        let log = Arc::new(Mutex::new(Vec::<u8>::new()));
        let outcome = run_shell(job, log.clone(), CancellationToken::new()).await;
        let text = String::from_utf8(log.lock().unwrap().clone()).unwrap();
        (outcome, text)
    }

    #[tokio::test]
    async fn commands_run_in_order_and_stop_at_the_first_failure() {
        let (outcome, text) = run(&job(&["echo one", "echo two >&2; exit 3", "echo three"])).await;
        assert_eq!(outcome, Outcome::Exited(3));
        assert!(text.contains("--- Execute  0: echo one\none\n"), "{text}");
        assert!(text.contains("two\n"), "{text}");
        assert!(!text.contains("three"), "{text}");
    }

    #[tokio::test]
    async fn the_environment_is_replaced_not_inherited() {
        let mut j = job(&["env | sort"]);
        j.env.push(("KARAJO_JOB_COUNTER".into(), "7".into()));
        let (outcome, text) = run(&j).await;
        assert_eq!(outcome, Outcome::Success);
        assert!(text.contains("KARAJO_JOB_COUNTER=7"), "{text}");
        assert!(!text.contains("HOME="), "{text}");
    }

    #[tokio::test]
    async fn a_timeout_stops_the_run_and_its_grandchildren() {
        let mut j = job(&["sleep 30 & sleep 30; echo never"]);
        j.timeout = Some(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let (outcome, text) = run(&j).await;
        assert_eq!(outcome, Outcome::TimedOut(Duration::from_millis(300)));
        assert!(started.elapsed() < Duration::from_secs(5), "{text}");
        assert!(!text.contains("\nnever\n"), "{text}");
    }
}
