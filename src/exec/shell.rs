//! Shell command jobs: each `command` runs through `/bin/sh -c`, in order, in the job's
//! work directory with a fixed environment, stopping at the first failure; a command
//! with no shell syntax at all runs as its program directly, as the shell would have
//! run it (see the `direct` module). Standard output and standard error share one
//! pipe, so their lines stay in the order they were written, and are streamed into the
//! run log as they arrive.

use std::io;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{Pid, Signal};
use tokio::io::AsyncReadExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::direct::{self, Direct};
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
    let path = job
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str());
    let mut child = match direct::direct(command, path, &job.work_dir) {
        // A program the shell would run as a script (no `#!`), or one gone since it
        // was looked up: the shell runs it, or says why not.
        Some(program) => match spawn(job, Some(&program), command, &writer) {
            Ok(child) => child,
            Err(_) => spawn(job, None, command, &writer)?,
        },
        None => spawn(job, None, command, &writer)?,
    };
    // Our copy of the pipe's write end goes, so the reader sees end-of-file once the
    // command's processes are gone.
    drop(writer);
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

/// Spawns `command` through `/bin/sh -c`, or, given `direct`, its program itself with
/// the environment the shell would have given it, in a new process group with its
/// output going to `writer`.
fn spawn(
    job: &ShellJob,
    direct: Option<&Direct>,
    command: &str,
    writer: &io::PipeWriter,
) -> io::Result<tokio::process::Child> {
    let mut cmd = match direct {
        Some(d) => {
            let mut cmd = tokio::process::Command::new(&d.program);
            cmd.arg0(&d.arg0).args(&d.args);
            cmd
        }
        None => {
            let mut cmd = tokio::process::Command::new("/bin/sh");
            cmd.arg("-c").arg(command);
            cmd
        }
    };
    cmd.current_dir(&job.work_dir)
        .env_clear()
        .envs(job.env.iter().map(|(k, v)| (k, v)));
    if direct.is_some() && !job.env.iter().any(|(k, _)| k == "PWD") {
        cmd.env("PWD", direct::shell_pwd(&job.work_dir));
    }
    cmd.stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer.try_clone()?)
        .process_group(0)
        .kill_on_drop(true);
    cmd.spawn()
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

    /// A job whose commands run in `dir`, with the PATH the daemon gives commands.
    fn job_in(dir: &std::path::Path, commands: &[&str]) -> ShellJob {
        let mut j = job(commands);
        j.work_dir = dir.to_path_buf();
        j.env = vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("KARAJO_JOB_COUNTER".into(), "7".into()),
        ];
        j
    }

    /// The output lines of a run's log, without karajo's `--- Execute` lines.
    fn output_of(text: &str) -> Vec<String> {
        text.lines()
            .filter(|l| !l.is_empty() && !l.starts_with("--- Execute"))
            .map(str::to_string)
            .collect()
    }

    /// Runs `direct_cmd` (no shell syntax: run without the shell) and `shell_cmd` (the
    /// same through the shell) and returns both outcomes and outputs.
    async fn both(
        dir: &std::path::Path,
        direct_cmd: &str,
        shell_cmd: &str,
    ) -> ((Outcome, Vec<String>), (Outcome, Vec<String>)) {
        let path = "/usr/local/bin:/usr/bin:/bin";
        assert!(
            direct::direct(direct_cmd, Some(path), dir).is_some(),
            "{direct_cmd} should run without the shell"
        );
        assert!(
            direct::direct(shell_cmd, Some(path), dir).is_none(),
            "{shell_cmd} should run through the shell"
        );
        let (o1, t1) = run(&job_in(dir, &[direct_cmd])).await;
        let (o2, t2) = run(&job_in(dir, &[shell_cmd])).await;
        ((o1, output_of(&t1)), (o2, output_of(&t2)))
    }

    #[tokio::test]
    async fn a_command_without_shell_syntax_gets_the_shells_environment_and_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (direct, shell) = both(dir.path(), "env", "exec env").await;
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(direct.0, Outcome::Success);
        assert_eq!(sorted(direct.1.clone()), sorted(shell.1), "environment");
        let pwd = std::fs::canonicalize(dir.path()).unwrap();
        assert!(
            direct.1.contains(&format!("PWD={}", pwd.display())),
            "{:?}",
            direct.1
        );
        let (direct, shell) = both(
            dir.path(),
            "readlink /proc/self/cwd",
            "exec readlink /proc/self/cwd",
        )
        .await;
        assert_eq!(direct, shell);
        assert_eq!(direct.1, [pwd.display().to_string()]);
    }

    #[tokio::test]
    async fn a_command_without_shell_syntax_leads_its_own_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let (direct, _) = both(
            dir.path(),
            "cat /proc/self/stat",
            "exec cat /proc/self/stat",
        )
        .await;
        let stat = &direct.1[0];
        let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
        let pid = stat.split(' ').next().unwrap();
        // After the name: state, ppid, pgrp.
        assert_eq!(fields[2], pid, "{stat}");
        assert_eq!(fields[1], std::process::id().to_string(), "{stat}");
    }

    #[tokio::test]
    async fn a_command_without_shell_syntax_exits_and_writes_as_through_the_shell() {
        let dir = tempfile::tempdir().unwrap();
        // Standard error, and a failing exit status.
        let (direct, shell) = both(
            dir.path(),
            "ls /nonexistent-karajo",
            "exec ls /nonexistent-karajo",
        )
        .await;
        assert_eq!(direct, shell);
        assert_eq!(direct.0, Outcome::Exited(2));
        assert!(
            direct.1[0].contains("/nonexistent-karajo"),
            "{:?}",
            direct.1
        );
        // A program killed by a signal.
        let script = dir.path().join("die.sh");
        std::fs::write(&script, "#!/bin/sh\necho dying\nkill -9 $$\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let (direct, shell) = both(dir.path(), "./die.sh", "exec ./die.sh").await;
        assert_eq!(direct, shell);
        assert_eq!(direct.0, Outcome::Failed("signal: killed".into()));
        assert_eq!(direct.1, ["dying"]);
        // The environment's counter reaches the program.
        let (direct, _) = both(
            dir.path(),
            "printenv KARAJO_JOB_COUNTER",
            "exec printenv KARAJO_JOB_COUNTER",
        )
        .await;
        assert_eq!(direct, (Outcome::Success, vec!["7".to_string()]));
    }

    #[tokio::test]
    async fn a_missing_program_gets_the_shells_error() {
        let dir = tempfile::tempdir().unwrap();
        let (outcome, text) = run(&job_in(dir.path(), &["nosuch-karajo-program a b"])).await;
        assert_eq!(outcome, Outcome::Exited(127));
        assert_eq!(
            output_of(&text),
            ["/bin/sh: 1: nosuch-karajo-program: not found"]
        );
        // Not executable: the shell's "Permission denied", status 126.
        std::fs::write(dir.path().join("data"), "x").unwrap();
        let (outcome, text) = run(&job_in(dir.path(), &["./data"])).await;
        assert_eq!(outcome, Outcome::Exited(126));
        assert_eq!(output_of(&text), ["/bin/sh: 1: ./data: Permission denied"]);
    }

    #[tokio::test]
    async fn a_script_without_an_interpreter_line_is_run_by_the_shell() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("plain");
        std::fs::write(&script, "echo from a plain script; exit 4\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let path = "/usr/local/bin:/usr/bin:/bin";
        assert!(direct::direct("./plain", Some(path), dir.path()).is_some());
        let (outcome, text) = run(&job_in(dir.path(), &["./plain"])).await;
        assert_eq!(outcome, Outcome::Exited(4));
        assert_eq!(output_of(&text), ["from a plain script"]);
    }
}
