//! One service instance's process mechanics (monitors spec B.3, B.6, B.8), and no
//! policy: run the `pre_start` commands, spawn `/bin/sh -c <command>` as the leader of
//! a new process group with its output in one pipe, record the group so a restart
//! after a crash stops an orphan, stream the output into log segments rotated at
//! `log_max_size`, signal or kill the group when told, and report what happened
//! (spawned, segment rotated, exited, log closed). Whether to start, stop, restart or
//! give up is the scheduler's, from [`crate::service`].

use std::io;
use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{Pid, Signal};
use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;

use super::process::{GroupRecord, group_of, signal_group, start_time};
use crate::clock::SharedClock;
use crate::config::ServiceSignal;
use crate::job::{JobId, JobKind, RunStatus};
use crate::store::RunLogWriter;

/// Size of one read from the output pipe.
const READ_CHUNK: usize = 64 * 1024;

/// The capacity asked for the output pipe.
const PIPE_CAPACITY: usize = 1024 * 1024;

/// How long output may wait in the writer's buffer before readers of the running log
/// see it.
const FLUSH_AFTER: Duration = Duration::from_millis(200);

/// How long what is left in the group gets between SIGTERM and SIGKILL once the main
/// process has exited, and how long its output is drained after that.
const LEFTOVER_GRACE: Duration = Duration::from_secs(2);

/// Everything one instance needs.
#[derive(Debug, Clone)]
pub struct InstancePlan {
    /// The service.
    pub id: JobId,
    /// The instance's id (a UUID).
    pub instance: String,
    /// `/bin/sh -c` this.
    pub command: String,
    /// Run first, in order; the first failure is a failed start.
    pub pre_start: Vec<String>,
    /// The working directory (created if missing).
    pub work_dir: PathBuf,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    /// `user`: run as this user (a name or a numeric uid; its uid and primary gid),
    /// which needs karajo to run as root; empty is karajo's own.
    pub user: String,
    /// Where the log segments go.
    pub log_dir: PathBuf,
    /// The counter of the first segment.
    pub counter: u64,
    /// A segment's size before rotation.
    pub log_max_size: u64,
    /// Pid-file mode: the file (absolute) that names the process to watch once the
    /// launcher has started it, and how often to look at it.
    pub pid_file: Option<(PathBuf, Duration)>,
    /// Where the process group is recorded while it runs (directory and file name);
    /// `None` records nothing (a daemon that may be left running).
    pub group_record: Option<(PathBuf, String)>,
    /// The clock of the log's line prefixes.
    pub clock: SharedClock,
}

/// What an instance reports, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceReport {
    /// The main process runs.
    Spawned {
        /// Its pid, which is also its process group.
        pid: i32,
        /// Its start time (field 22 of `/proc/<pid>/stat`).
        starttime: u64,
    },
    /// It never ran: a `pre_start` command failed, the log could not be created, or
    /// the spawn failed. The log (if any) is still open for [`InstanceControl::Close`].
    NotStarted {
        /// Why, in words.
        why: String,
    },
    /// Segment `closed` reached the size limit and was closed as `rotated`; the
    /// instance goes on in `next`.
    Rotated {
        /// The closed segment's counter.
        closed: u64,
        /// The new segment's counter.
        next: u64,
    },
    /// Pid-file mode: the pid file names this verified process (first found, or
    /// changed).
    Tracked {
        /// Its pid.
        pid: i32,
        /// Its process group.
        pgid: i32,
        /// Its start time.
        starttime: u64,
    },
    /// The main process ended (and what was left of its group is gone); in pid-file
    /// mode, the tracked process is gone (its exit status is unknown).
    Exited(ExitInfo),
    /// The last segment was closed (after [`InstanceControl::Close`]).
    Closed {
        /// Its counter.
        counter: u64,
        /// Its final path, `None` when it could not be renamed.
        path: Option<PathBuf>,
    },
    /// Output lost because the log could not be written (disk full), in bytes.
    Dropped(u64),
}

/// How a main process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    /// Its exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// Whether it dumped core.
    pub core_dumped: bool,
}

impl ExitInfo {
    fn of(status: ExitStatus) -> Self {
        Self {
            code: status.code(),
            signal: status.signal(),
            core_dumped: status.core_dumped(),
        }
    }

    /// `exit status 3`, `signal TERM`, `signal KILL (core dumped)`.
    pub fn describe(&self) -> String {
        match (self.code, self.signal) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => {
                let name = signal_name(signal);
                if self.core_dumped {
                    format!("signal {name} (core dumped)")
                } else {
                    format!("signal {name}")
                }
            }
            (None, None) => "ended".to_string(),
        }
    }
}

/// A signal's name without `SIG` (`TERM`), or its number.
pub fn signal_name(signal: i32) -> String {
    Signal::from_named_raw(signal)
        .and_then(|s| {
            ServiceSignal::ALL
                .into_iter()
                .find(|candidate| to_signal(*candidate) == s)
                .map(|found| found.as_str().to_string())
                .or_else(|| match s {
                    Signal::PIPE => Some("PIPE".to_string()),
                    Signal::SEGV => Some("SEGV".to_string()),
                    Signal::ABORT => Some("ABRT".to_string()),
                    Signal::ALARM => Some("ALRM".to_string()),
                    _ => None,
                })
        })
        .unwrap_or_else(|| signal.to_string())
}

/// The signal of a configured name.
pub fn to_signal(signal: ServiceSignal) -> Signal {
    match signal {
        ServiceSignal::Term => Signal::TERM,
        ServiceSignal::Int => Signal::INT,
        ServiceSignal::Hup => Signal::HUP,
        ServiceSignal::Quit => Signal::QUIT,
        ServiceSignal::Usr1 => Signal::USR1,
        ServiceSignal::Usr2 => Signal::USR2,
        ServiceSignal::Kill => Signal::KILL,
    }
}

/// What the scheduler tells an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceControl {
    /// Send this signal to the process group.
    Signal(ServiceSignal),
    /// Write a line of karajo's own into the running segment.
    Line(String),
    /// Close the last segment under this status (after the exit, or to give up a
    /// start that never ran); the instance reports [`InstanceReport::Closed`] and
    /// ends.
    Close(RunStatus),
}

/// The scheduler's side of a running instance.
#[derive(Debug, Clone)]
pub struct InstanceHandle {
    control: mpsc::UnboundedSender<InstanceControl>,
}

impl InstanceHandle {
    /// Tells the instance something; ignored once it has ended.
    pub fn send(&self, control: InstanceControl) {
        let _ = self.control.send(control);
    }
}

/// Whether the process a record names is alive: it exists (not a zombie), was
/// started at `starttime` (so the pid was not recycled), in this boot.
pub fn recorded_alive(pid: u32, starttime: u64, boot_id: &str) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    boot_id == super::process::boot_id()
        && start_time(pid) == Some(starttime)
        && !super::process::is_zombie(pid)
}

/// Sends `signal` to the group of a recorded process that is still the one recorded
/// (a service instance a previous karajo left behind). Returns whether it was sent.
pub fn signal_recorded(
    pid: u32,
    pgid: u32,
    starttime: u64,
    boot_id: &str,
    signal: ServiceSignal,
) -> bool {
    let group = i32::try_from(pgid).ok().and_then(Pid::from_raw);
    match group {
        Some(group) if recorded_alive(pid, starttime, boot_id) => {
            signal_group(group, to_signal(signal))
        }
        _ => false,
    }
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`).
pub fn boot_id() -> String {
    super::process::boot_id().to_string()
}

/// Starts an instance on its own task; `report` is called with each
/// [`InstanceReport`], in order.
pub fn spawn_instance(
    plan: InstancePlan,
    report: impl Fn(InstanceReport) + Send + Sync + 'static,
) -> InstanceHandle {
    let (control, controls) = mpsc::unbounded_channel();
    tokio::spawn(run_instance(plan, None, controls, report));
    InstanceHandle { control }
}

/// Takes over process `pid` (started at `starttime`), a pid-file daemon a previous
/// karajo left running: its log goes on in a new segment (`plan.counter`), and it is
/// looked at every `every` until it is gone; its output is not karajo's to read any
/// more. Reports as [`spawn_instance`] does, from [`InstanceReport::Exited`] on.
pub fn adopt_instance(
    plan: InstancePlan,
    pid: u32,
    starttime: u64,
    every: Duration,
    report: impl Fn(InstanceReport) + Send + Sync + 'static,
) -> InstanceHandle {
    let (control, controls) = mpsc::unbounded_channel();
    let pid = i32::try_from(pid).ok().and_then(Pid::from_raw);
    match pid {
        Some(pid) => {
            tokio::spawn(run_instance(
                plan,
                Some((pid, starttime, every)),
                controls,
                report,
            ));
        }
        None => report(InstanceReport::Exited(ExitInfo {
            code: None,
            signal: None,
            core_dumped: false,
        })),
    }
    InstanceHandle { control }
}

/// Watches an adopted process until it is gone (then reports the exit), passing on
/// signals and lines; a close before that (karajo stops and leaves it running again)
/// is returned.
async fn watch_adopted(
    pid: Pid,
    starttime: u64,
    every: Duration,
    segments: &mut Segments,
    controls: &mut mpsc::UnboundedReceiver<InstanceControl>,
    report: &(impl Fn(InstanceReport) + Send + Sync),
) -> Result<Option<RunStatus>, String> {
    loop {
        tokio::select! {
            control = controls.recv() => match control {
                Some(InstanceControl::Signal(signal)) => signal_daemon(pid, None, to_signal(signal)),
                Some(InstanceControl::Line(text)) => segments.line(&text),
                Some(InstanceControl::Close(status)) => {
                    if status != RunStatus::Rotated {
                        signal_daemon(pid, None, Signal::KILL);
                    }
                    return Ok(Some(status));
                }
                None => return Ok(Some(RunStatus::Failed)),
            },
            () = tokio::time::sleep(every) => {
                if start_time(pid) != Some(starttime) || super::process::is_zombie(pid) {
                    report(InstanceReport::Exited(ExitInfo { code: None, signal: None, core_dumped: false }));
                    return Ok(None);
                }
            }
        }
    }
}

/// Sends `signal` to a daemon and to its process group, and to the launcher's group.
fn signal_daemon(pid: Pid, launcher_group: Option<Pid>, signal: Signal) {
    let _ = rustix::process::kill_process(pid, signal);
    if let Some(group) = super::process::pgid_of(pid).and_then(Pid::from_raw) {
        signal_group(group, signal);
    }
    if let Some(group) = launcher_group {
        signal_group(group, signal);
    }
}

/// The running segment, rotated by size, and what could not be written.
struct Segments {
    plan: InstancePlan,
    writer: RunLogWriter,
    dropped: u64,
    unflushed: bool,
}

impl Segments {
    fn open(plan: &InstancePlan) -> io::Result<Self> {
        crate::store::create_private_dir(&plan.log_dir)?;
        let writer = RunLogWriter::create(
            &plan.log_dir,
            JobKind::Service,
            &plan.id,
            plan.counter,
            plan.clock.clone(),
        )?;
        Ok(Self {
            plan: plan.clone(),
            writer,
            dropped: 0,
            unflushed: false,
        })
    }

    /// Writes one of karajo's own lines, and flushes it for readers of the log.
    fn line(&mut self, text: &str) {
        if let Err(err) = self.writer.line(text) {
            tracing::warn!(service = %self.plan.id, %err, "cannot write the instance log");
        }
        self.unflushed = true;
        self.flush();
    }

    /// Appends output, rotating the segment whenever it is full: a chunk is cut after
    /// its last newline that fits (or where the segment is full, for a line longer
    /// than a segment).
    fn output(&mut self, mut chunk: &[u8], report: &impl Fn(InstanceReport)) {
        while !chunk.is_empty() {
            self.rotate_if_full(report);
            let room = usize::try_from(
                self.plan
                    .log_max_size
                    .saturating_sub(self.writer.bytes_written()),
            )
            .unwrap_or(usize::MAX)
            .max(1);
            let take = if chunk.len() <= room {
                chunk.len()
            } else {
                chunk[..room]
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(room, |at| at + 1)
            };
            self.write_output(&chunk[..take], report);
            chunk = &chunk[take..];
        }
        self.rotate_if_full(report);
    }

    /// Writes output to the running segment; a failed write is counted and noted once
    /// writing works again.
    fn write_output(&mut self, chunk: &[u8], report: &impl Fn(InstanceReport)) {
        if self.dropped > 0 {
            let note = format!(
                "!!! {} bytes of output were lost: the log could not be written",
                self.dropped
            );
            if self.writer.line(&note).is_ok() {
                self.dropped = 0;
            }
        }
        match self.writer.write_output(chunk) {
            Ok(()) => self.unflushed = true,
            Err(err) => {
                if self.dropped == 0 {
                    tracing::error!(service = %self.plan.id, %err, "cannot write the instance log; output is dropped");
                }
                self.dropped += chunk.len() as u64;
                report(InstanceReport::Dropped(chunk.len() as u64));
            }
        }
    }

    fn flush(&mut self) {
        if std::mem::take(&mut self.unflushed) {
            let _ = self.writer.flush();
        }
    }

    /// Closes the running segment as `rotated` and opens the next one, when the
    /// running one is full.
    fn rotate_if_full(&mut self, report: &impl Fn(InstanceReport)) {
        if self.writer.bytes_written() < self.plan.log_max_size {
            return;
        }
        let closed = self.writer.counter();
        let next = closed + 1;
        let opened = RunLogWriter::create(
            &self.plan.log_dir,
            JobKind::Service,
            &self.plan.id,
            next,
            self.plan.clock.clone(),
        );
        let mut new = match opened {
            Ok(new) => new,
            Err(err) => {
                tracing::warn!(service = %self.plan.id, %err, "cannot rotate the instance log");
                return;
            }
        };
        let _ = self.writer.line(&format!("=== continued in #{next}"));
        let full = std::mem::replace(&mut self.writer, {
            let _ = new.line(&format!(
                "=== instance {} continued from #{closed}",
                self.plan.instance
            ));
            new
        });
        if let Err(err) = full.finish(RunStatus::Rotated) {
            tracing::warn!(service = %self.plan.id, %err, "cannot close a rotated segment");
        }
        report(InstanceReport::Rotated { closed, next });
    }

    fn close(self, status: RunStatus) -> (u64, Option<PathBuf>) {
        let counter = self.writer.counter();
        match self.writer.finish(status) {
            Ok(path) => (counter, Some(path)),
            Err(err) => {
                tracing::error!(service = %self.plan.id, %err, "cannot close the instance log");
                (counter, None)
            }
        }
    }
}

async fn run_instance(
    plan: InstancePlan,
    adopt: Option<(Pid, u64, Duration)>,
    mut controls: mpsc::UnboundedReceiver<InstanceControl>,
    report: impl Fn(InstanceReport) + Send + Sync + 'static,
) {
    let mut segments = match Segments::open(&plan) {
        Ok(segments) => segments,
        Err(err) => {
            report(InstanceReport::NotStarted {
                why: format!("cannot create the log: {err}"),
            });
            wait_for_close(&mut controls).await;
            report(InstanceReport::Closed {
                counter: plan.counter,
                path: None,
            });
            return;
        }
    };
    let started = match adopt {
        Some((pid, starttime, every)) => {
            watch_adopted(pid, starttime, every, &mut segments, &mut controls, &report).await
        }
        None => start(&plan, &mut segments, &mut controls, &report).await,
    };
    let early = match started {
        Ok(early) => early,
        Err(why) => {
            segments.line(&format!("!!! {why}"));
            report(InstanceReport::NotStarted { why });
            None
        }
    };
    // Lines until the close (unless it came already: a daemon left running).
    let status = early.unwrap_or(loop {
        match controls.recv().await {
            Some(InstanceControl::Line(text)) => segments.line(&text),
            Some(InstanceControl::Close(status)) => break status,
            Some(InstanceControl::Signal(_)) => {}
            None => break RunStatus::Failed,
        }
    });
    let (counter, path) = segments.close(status);
    report(InstanceReport::Closed { counter, path });
}

async fn wait_for_close(controls: &mut mpsc::UnboundedReceiver<InstanceControl>) {
    while let Some(control) = controls.recv().await {
        if matches!(control, InstanceControl::Close(_)) {
            return;
        }
    }
}

/// Runs `pre_start`, spawns the main process and supervises it until it ends (then
/// reports [`InstanceReport::Exited`]). `Err` is a start that never ran.
async fn start(
    plan: &InstancePlan,
    segments: &mut Segments,
    controls: &mut mpsc::UnboundedReceiver<InstanceControl>,
    report: &(impl Fn(InstanceReport) + Send + Sync),
) -> Result<Option<RunStatus>, String> {
    crate::store::create_private_dir(&plan.work_dir)
        .map_err(|e| format!("cannot create the working directory: {e}"))?;
    let user = resolve_user(
        &plan.user,
        &std::fs::read_to_string("/etc/passwd").unwrap_or_default(),
    )?;
    if let Some((uid, gid)) = user {
        // The instance's files are its own.
        let _ = rustix::fs::chown(
            &plan.work_dir,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        );
    }
    let plan = &InstancePlan {
        user: String::new(),
        ..plan.clone()
    };
    for (index, command) in plan.pre_start.iter().enumerate() {
        segments.line(&format!("=== PRE_START {index}: {command}"));
        let (mut child, reader) = spawn_shell(plan, user, command)
            .map_err(|e| format!("cannot run pre_start {index}: {e}"))?;
        let status = supervise(&mut child, reader, segments, controls, report)
            .await
            .map_err(|e| format!("pre_start {index}: {e}"))?;
        if !status.success() {
            return Err(format!(
                "pre_start {index} failed: {}",
                ExitInfo::of(status).describe()
            ));
        }
    }
    if let Some((pid_file, _)) = &plan.pid_file {
        // A file left by an earlier daemon must not be taken for this one's.
        match std::fs::remove_file(pid_file) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(format!("cannot delete the old pid file: {e}"));
            }
            _ => {}
        }
    }
    let (mut child, reader) =
        spawn_shell(plan, user, &plan.command).map_err(|e| format!("cannot run /bin/sh: {e}"))?;
    let pid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .ok_or("the command ended before it was seen")?;
    let pgid = group_of(&child);
    let _record = pgid
        .zip(plan.group_record.as_ref())
        .and_then(|(pgid, (dir, name))| {
            GroupRecord::write(dir, name, pgid)
                .map_err(|err| tracing::warn!(%err, "cannot record the process group"))
                .ok()
        });
    let starttime = pgid.and_then(start_time).unwrap_or(0);
    // The scheduler writes the `=== START` line, with the pid, once told.
    report(InstanceReport::Spawned { pid, starttime });
    if let Some((pid_file, every)) = &plan.pid_file {
        return supervise_daemon(
            child, reader, pid_file, *every, starttime, segments, controls, report,
        )
        .await
        .map_err(|e| format!("cannot watch the daemon: {e}"));
    }
    let status = supervise(&mut child, reader, segments, controls, report)
        .await
        .map_err(|e| format!("cannot wait for the command: {e}"))?;
    report(InstanceReport::Exited(ExitInfo::of(status)));
    Ok(None)
}

/// Pid-file mode (monitors spec B.4.1): the launcher may exit (0 is normal for a
/// program that daemonises; another status before the pid file names a process is a
/// failed start); the instance is the process the pid file names, once verified
/// (alive, started no earlier than the launcher less a second, so a recycled pid is
/// never taken), followed when the file names another, and its end is the instance's
/// (with an unknown status). Signals go to the tracked process and its group. The
/// output pipe is drained as long as anyone holds it.
#[allow(clippy::too_many_arguments)]
async fn supervise_daemon(
    mut launcher: tokio::process::Child,
    reader: io::PipeReader,
    pid_file: &std::path::Path,
    every: Duration,
    launcher_start: u64,
    segments: &mut Segments,
    controls: &mut mpsc::UnboundedReceiver<InstanceControl>,
    report: &(impl Fn(InstanceReport) + Send + Sync),
) -> io::Result<Option<RunStatus>> {
    let launcher_group = group_of(&launcher);
    let mut pipe =
        tokio::net::unix::pipe::Receiver::from_owned_fd(std::os::fd::OwnedFd::from(reader))?;
    let mut buf = vec![0u8; READ_CHUNK];
    let mut pipe_open = true;
    let mut launcher_done = false;
    let mut tracked: Option<(Pid, u64)> = None;
    // Clock ticks per second of /proc start times (100 on Linux).
    let slack = 100;
    let look = |tracked: Option<(Pid, u64)>| -> Option<(Pid, u64)> {
        let text = std::fs::read_to_string(pid_file).ok()?;
        let pid = Pid::from_raw(text.trim().parse().ok()?)?;
        let start = start_time(pid)?;
        let fresh = start + slack >= launcher_start && !super::process::is_zombie(pid);
        (fresh && tracked != Some((pid, start))).then_some((pid, start))
    };
    loop {
        let flush_timer = tokio::time::sleep(FLUSH_AFTER);
        let check = tokio::time::sleep(if tracked.is_some() {
            every
        } else {
            every.min(Duration::from_millis(100))
        });
        tokio::select! {
            status = launcher.wait(), if !launcher_done => {
                launcher_done = true;
                let status = status?;
                if !status.success() && tracked.is_none() && look(None).is_none() {
                    report(InstanceReport::Exited(ExitInfo::of(status)));
                    return Ok(None);
                }
            }
            read = pipe.read(&mut buf), if pipe_open => match read {
                Ok(0) | Err(_) => pipe_open = false,
                Ok(n) => segments.output(&buf[..n], report),
            },
            control = controls.recv() => match control {
                Some(InstanceControl::Signal(signal)) => match tracked {
                    Some((pid, _)) => signal_daemon(pid, launcher_group, to_signal(signal)),
                    None => {
                        if let Some(group) = launcher_group {
                            signal_group(group, to_signal(signal));
                        }
                    }
                },
                Some(InstanceControl::Line(text)) => segments.line(&text),
                // Closed as rotated: karajo stops and leaves the daemon running.
                Some(InstanceControl::Close(RunStatus::Rotated)) => {
                    return Ok(Some(RunStatus::Rotated));
                }
                Some(InstanceControl::Close(status)) => {
                    if let Some((pid, _)) = tracked {
                        signal_daemon(pid, launcher_group, Signal::KILL);
                    }
                    return Ok(Some(status));
                }
                None => {
                    if let Some((pid, _)) = tracked {
                        signal_daemon(pid, launcher_group, Signal::KILL);
                    }
                    return Ok(Some(RunStatus::Failed));
                }
            },
            () = check => {
                if let Some(found) = look(tracked) {
                    tracked = Some(found);
                    let pgid = super::process::pgid_of(found.0).unwrap_or(0);
                    report(InstanceReport::Tracked {
                        pid: found.0.as_raw_nonzero().get(),
                        pgid,
                        starttime: found.1,
                    });
                } else if let Some((pid, start)) = tracked
                    && (start_time(pid) != Some(start) || super::process::is_zombie(pid))
                {
                    segments.flush();
                    report(InstanceReport::Exited(ExitInfo { code: None, signal: None, core_dumped: false }));
                    return Ok(None);
                }
            }
            () = flush_timer, if segments.unflushed => segments.flush(),
        }
    }
}

/// The uid and primary gid of `user` (a name, or a numeric uid) in the text of
/// `/etc/passwd`; `None` for an empty `user` or karajo's own. Another user needs karajo
/// to run as root. Supplementary groups are not set (the instance has the primary
/// group only).
pub fn resolve_user(user: &str, passwd: &str) -> Result<Option<(u32, u32)>, String> {
    let user = user.trim();
    if user.is_empty() {
        return Ok(None);
    }
    let entry = passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let (name, uid, gid) = (fields.first()?, fields.get(2)?, fields.get(3)?);
        let (uid, gid) = (uid.parse::<u32>().ok()?, gid.parse::<u32>().ok()?);
        (*name == user || user.parse::<u32>() == Ok(uid)).then_some((uid, gid))
    });
    let own = rustix::process::geteuid().as_raw();
    match entry {
        Some((uid, _)) if uid == own => Ok(None),
        Some(ids) if own == 0 => Ok(Some(ids)),
        Some(_) => Err(format!(
            "user = {user:?}: karajo runs as uid {own}, not root, so it cannot switch users"
        )),
        None => Err(format!("user = {user:?}: no such user in /etc/passwd")),
    }
}

/// Spawns `/bin/sh -c command` as the leader of a new process group, with stdin from
/// `/dev/null` and stdout and stderr in one pipe.
fn spawn_shell(
    plan: &InstancePlan,
    user: Option<(u32, u32)>,
    command: &str,
) -> io::Result<(tokio::process::Child, io::PipeReader)> {
    let (reader, writer) = io::pipe()?;
    let _ = rustix::pipe::fcntl_setpipe_size(&writer, PIPE_CAPACITY);
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .current_dir(&plan.work_dir)
        .env_clear()
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .process_group(0)
        .kill_on_drop(false);
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    let child = cmd.spawn()?;
    Ok((child, reader))
}

/// Copies output into the segments and passes signals and lines on until the main
/// process exits; then stops what is left in its group and drains the pipe.
async fn supervise(
    child: &mut tokio::process::Child,
    reader: io::PipeReader,
    segments: &mut Segments,
    controls: &mut mpsc::UnboundedReceiver<InstanceControl>,
    report: &(impl Fn(InstanceReport) + Send + Sync),
) -> io::Result<ExitStatus> {
    let pgid = group_of(child);
    let mut pipe =
        tokio::net::unix::pipe::Receiver::from_owned_fd(std::os::fd::OwnedFd::from(reader))?;
    let mut buf = vec![0u8; READ_CHUNK];
    let mut pipe_open = true;
    let mut pending_close = None;
    let status = loop {
        let flush_timer = tokio::time::sleep(FLUSH_AFTER);
        tokio::select! {
            status = child.wait() => break status?,
            read = pipe.read(&mut buf), if pipe_open => match read {
                Ok(0) => pipe_open = false,
                Ok(n) => segments.output(&buf[..n], report),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    segments.line(&format!("!!! cannot read the output: {err}"));
                    pipe_open = false;
                }
            },
            control = controls.recv() => match control {
                Some(InstanceControl::Signal(signal)) => {
                    if let Some(pgid) = pgid {
                        signal_group(pgid, to_signal(signal));
                    }
                }
                Some(InstanceControl::Line(text)) => segments.line(&text),
                // A close before the exit: stop the group, then close.
                Some(InstanceControl::Close(status)) => {
                    pending_close = Some(status);
                    if let Some(pgid) = pgid {
                        signal_group(pgid, Signal::KILL);
                    }
                }
                None => {
                    if let Some(pgid) = pgid {
                        signal_group(pgid, Signal::KILL);
                    }
                }
            },
            () = flush_timer, if segments.unflushed => segments.flush(),
        }
    };
    if let Some(pgid) = pgid {
        stop_leftovers(pgid, &mut pipe, pipe_open, segments, report).await;
    }
    segments.flush();
    if let Some(status) = pending_close {
        // The scheduler gave up on this instance: it still gets its close.
        segments.line(&format!("=== closed as {status} before the exit"));
    }
    Ok(status)
}

/// After the main process exited: what is left in its group gets SIGTERM, then
/// SIGKILL after [`LEFTOVER_GRACE`] or once the pipe closes; the pipe is drained.
async fn stop_leftovers(
    pgid: Pid,
    pipe: &mut tokio::net::unix::pipe::Receiver,
    mut pipe_open: bool,
    segments: &mut Segments,
    report: &impl Fn(InstanceReport),
) {
    let anyone_left = signal_group(pgid, Signal::TERM);
    let deadline = tokio::time::Instant::now() + LEFTOVER_GRACE;
    let mut buf = vec![0u8; READ_CHUNK];
    while pipe_open {
        match tokio::time::timeout_at(deadline, pipe.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => pipe_open = false,
            Ok(Ok(n)) => segments.output(&buf[..n], report),
            Err(_) => break,
        }
    }
    if anyone_left {
        signal_group(pgid, Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    struct Bench {
        dir: tempfile::TempDir,
        reports: Arc<Mutex<Vec<InstanceReport>>>,
    }

    impl Bench {
        fn new() -> Self {
            Self {
                dir: tempfile::tempdir().unwrap(),
                reports: Arc::default(),
            }
        }

        fn plan(&self, command: &str) -> InstancePlan {
            InstancePlan {
                id: JobId::from_raw("web"),
                instance: "0193-test".to_string(),
                command: command.to_string(),
                pre_start: Vec::new(),
                work_dir: self.dir.path().join("work"),
                env: vec![("PATH".to_string(), "/usr/bin:/bin".to_string())],
                user: String::new(),
                log_dir: self.dir.path().join("log"),
                counter: 1,
                log_max_size: 10 * 1024 * 1024,
                pid_file: None,
                group_record: None,
                clock: std::sync::Arc::new(crate::clock::SystemClock),
            }
        }

        fn start(&self, plan: InstancePlan) -> InstanceHandle {
            let reports = self.reports.clone();
            spawn_instance(plan, move |r| reports.lock().unwrap().push(r))
        }

        async fn wait(
            &self,
            what: &str,
            done: impl Fn(&[InstanceReport]) -> bool,
        ) -> Vec<InstanceReport> {
            for _ in 0..500 {
                let reports = self.reports.lock().unwrap().clone();
                if done(&reports) {
                    return reports;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!(
                "timed out waiting for {what}: {:?}",
                self.reports.lock().unwrap()
            );
        }

        fn log(&self, name: &str) -> String {
            std::fs::read_to_string(self.dir.path().join("log").join(name)).unwrap()
        }
    }

    fn exited(reports: &[InstanceReport]) -> Option<ExitInfo> {
        reports.iter().find_map(|r| match r {
            InstanceReport::Exited(info) => Some(*info),
            _ => None,
        })
    }

    fn closed(reports: &[InstanceReport]) -> bool {
        reports
            .iter()
            .any(|r| matches!(r, InstanceReport::Closed { .. }))
    }

    #[tokio::test]
    async fn an_instance_runs_reports_its_exit_and_closes_its_log_when_told() {
        let bench = Bench::new();
        let handle = bench.start(bench.plan("echo hello; exit 3"));
        let reports = bench.wait("the exit", |r| exited(r).is_some()).await;
        assert!(
            matches!(reports[0], InstanceReport::Spawned { pid, starttime } if pid > 0 && starttime > 0),
            "{reports:?}"
        );
        let info = exited(&reports).unwrap();
        assert_eq!(info.code, Some(3));
        assert_eq!(info.describe(), "exit status 3");
        // The log stays open for karajo's own lines until the close.
        handle.send(InstanceControl::Line("=== EXIT exit status 3".to_string()));
        handle.send(InstanceControl::Line("=== START written late".to_string()));
        handle.send(InstanceControl::Close(RunStatus::Failed));
        let reports = bench.wait("the close", closed).await;
        assert!(matches!(
            reports.last(),
            Some(InstanceReport::Closed {
                counter: 1,
                path: Some(_)
            })
        ));
        let log = bench.log("web.1.failed");
        assert!(log.contains("service: web: hello\n"), "{log}");
        assert!(log.trim_end().ends_with("=== START written late"), "{log}");
    }

    #[tokio::test]
    async fn a_stop_signal_reaches_the_whole_group_and_leftovers_are_killed() {
        let bench = Bench::new();
        // The shell ignores TERM; its background sleep does not, and is its group's.
        let handle = bench.start(bench.plan("trap '' TERM; sleep 1002 & wait; sleep 1003"));
        bench.wait("the spawn", |r| !r.is_empty()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        handle.send(InstanceControl::Signal(ServiceSignal::Kill));
        let reports = bench.wait("the exit", |r| exited(r).is_some()).await;
        let info = exited(&reports).unwrap();
        assert_eq!(info.signal, Some(9));
        assert_eq!(info.describe(), "signal KILL");
        let InstanceReport::Spawned { pid, .. } = reports[0] else {
            panic!("{reports:?}");
        };
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists() || {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                stat.contains(") Z ")
            }
        );
    }

    #[tokio::test]
    async fn a_full_segment_is_rotated_and_the_instance_goes_on_in_the_next() {
        let bench = Bench::new();
        let mut plan = bench.plan(
            "i=0; while [ $i -lt 400 ]; do echo line-$i-padding-padding-padding; i=$((i+1)); done",
        );
        plan.log_max_size = 4096;
        let handle = bench.start(plan);
        let reports = bench.wait("the exit", |r| exited(r).is_some()).await;
        let rotations: Vec<_> = reports
            .iter()
            .filter_map(|r| match r {
                InstanceReport::Rotated { closed, next } => Some((*closed, *next)),
                _ => None,
            })
            .collect();
        assert!(rotations.len() >= 3, "{reports:?}");
        assert_eq!(rotations[0], (1, 2));
        handle.send(InstanceControl::Close(RunStatus::Success));
        let reports = bench.wait("the close", closed).await;
        let Some(InstanceReport::Closed { counter, .. }) = reports.last() else {
            panic!("{reports:?}");
        };
        assert_eq!(*counter, rotations.last().unwrap().1);
        let first = bench.log("web.1.rotated");
        assert!(first.trim_end().ends_with("=== continued in #2"), "{first}");
        let second = bench.log("web.2.rotated");
        assert!(
            second
                .lines()
                .next()
                .unwrap()
                .ends_with("=== instance 0193-test continued from #1"),
            "{second}"
        );
        // Nothing lost across segments: every line is in one of them, in order.
        let mut all = String::new();
        for n in 1..=*counter {
            let status = if n == *counter { "success" } else { "rotated" };
            all.push_str(&bench.log(&format!("web.{n}.{status}")));
        }
        let numbers: Vec<usize> = all
            .lines()
            .filter_map(|l| l.split("line-").nth(1)?.split('-').next()?.parse().ok())
            .collect();
        assert_eq!(numbers, (0..400).collect::<Vec<_>>());
    }

    #[test]
    fn a_user_is_read_from_passwd_and_needs_root_to_switch_to() {
        let passwd = "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/usr/sbin/nologin\n";
        assert_eq!(resolve_user("", passwd), Ok(None));
        assert!(
            resolve_user("ghost", passwd)
                .unwrap_err()
                .contains("no such user")
        );
        let root = rustix::process::geteuid().as_raw() == 0;
        if root {
            assert_eq!(resolve_user("nobody", passwd), Ok(Some((65534, 65534))));
            assert_eq!(resolve_user("65534", passwd), Ok(Some((65534, 65534))));
            assert_eq!(resolve_user("root", passwd), Ok(None), "karajo's own");
        } else {
            assert!(
                resolve_user("nobody", passwd)
                    .unwrap_err()
                    .contains("not root")
            );
        }
    }

    #[tokio::test]
    async fn a_failed_pre_start_is_a_start_that_never_ran() {
        let bench = Bench::new();
        let mut plan = bench.plan("echo never");
        plan.pre_start = vec!["echo preparing".to_string(), "exit 7".to_string()];
        let handle = bench.start(plan);
        let reports = bench
            .wait("the refusal", |r| {
                r.iter()
                    .any(|r| matches!(r, InstanceReport::NotStarted { .. }))
            })
            .await;
        assert!(
            !reports
                .iter()
                .any(|r| matches!(r, InstanceReport::Spawned { .. })),
            "{reports:?}"
        );
        handle.send(InstanceControl::Close(RunStatus::Failed));
        bench.wait("the close", closed).await;
        let log = bench.log("web.1.failed");
        assert!(log.contains("preparing"), "{log}");
        assert!(
            log.contains("!!! pre_start 1 failed: exit status 7"),
            "{log}"
        );
        assert!(!log.contains("never"), "{log}");
    }
}
