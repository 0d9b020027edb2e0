//! The service state machine (monitors spec B.4.2, B.4.3, B.5, B.7, B.11) as one pure
//! function, [`step`], of a [`ServiceState`], the service's [`ServicePolicy`], an
//! [`Input`] and the time it happened. It answers with [`ServiceEffect`]s and reads no
//! clock, touches no file, spawns nothing and sleeps nowhere. Every deadline is one
//! row of one list ([`next_deadline`] names the earliest, so the scheduler sleeps
//! until exactly then); [`step`] fires what is due before and after each input, so a
//! report that arrives just after a deadline the scheduler has not acted on yet still
//! sees the transition it missed.
//!
//! Choices where the spec is silent:
//! * facts are dated at their deadline (an instance that lived `start_seconds` was
//!   ready then, whenever the scheduler woke up), actions at the moment they are taken
//!   (a stop's `stop_timeout` counts from the signal actually sent);
//! * the CAS grows once per change: a `disable` of a running service changes
//!   `enabled` and the status, so it grows by two;
//! * controls while `stopping` never interrupt the stop; they change what comes after
//!   it (`enable`, `restart` and `run_once on` → start again, `disable` → disabled),
//!   except during karajo's shutdown;
//! * `disable` also clears `run_once`; a `restart` enables;
//! * an instance of a service that is not enabled (a run-once, or one whose flag was
//!   cleared while it ran) is never restarted by the policy;
//! * a run-once still set at start-up (its instance did not end under karajo's watch)
//!   is still owed: the service starts even when disabled;
//! * a recorded instance found dead at start-up is written to the history as `lost`;
//! * a failure streak is what the back-off counts (monitors spec B.5.3: after
//!   `backoff_reset` of continuous running "the next failure counts as the first
//!   again"), so it ends, and `notif_on_recover` is told, when an instance has been
//!   running for `backoff_reset`, not at its ready: an instance that crashes soon
//!   after each ready would otherwise be notified failed and recovered once per crash,
//!   which B.5.3 rules out ("once per streak, not per crash"). Controls leave the
//!   streak open.

use std::time::Duration;

use jiff::Timestamp;

use super::effect::{
    EventKind, HistoryEntry, HistoryReason, NoticeEvent, Reply, SegmentStatus, ServiceEffect,
    ServiceEvent, ServiceNotice, StopReason,
};
use super::input::{Control, Input, Leftover, PingUpdate, SpawnedInstance};
use super::state::{
    InstanceRecord, KeyValue, LastExit, RETIRED_TOKENS, SavedService, ServiceState, Status, Stop,
    StopTarget, Watch,
};
use crate::config::duration::format_short;
use crate::config::model::{ReadyRule, RestartPolicy, ServicePolicy};

/// The most characters of `status_text` kept.
pub const STATUS_TEXT_MAX_CHARS: usize = 256;
/// The most keys in an instance's key/value map.
pub const KEYVALUE_MAX_KEYS: usize = 64;
/// The most bytes of an instance's key/value map as JSON.
pub const KEYVALUE_MAX_BYTES: usize = 4096;
/// Signals whose ending counts as clean for a long-running service (monitors spec
/// B.5.2, as systemd).
pub const CLEAN_SIGNALS: [&str; 4] = ["HUP", "INT", "TERM", "PIPE"];

/// The most deadlines one step fires; a bound that only a bug could reach.
const MAX_DEADLINES_PER_STEP: usize = 16;

/// Handles `input`, which happened at `now`: first the deadlines that fell due by
/// `now`, then the input, then the deadlines it made due at once. Returns what to do,
/// in order; a [`ServiceEffect::SaveState`] comes first whenever the saved part
/// changed, and controls and pings get exactly one [`ServiceEffect::Reply`].
pub fn step(
    state: &mut ServiceState,
    policy: &ServicePolicy,
    input: Input,
    now: Timestamp,
) -> Vec<ServiceEffect> {
    let before = state.saved.clone();
    let mut step = Step {
        state,
        policy,
        now,
        effects: Vec::new(),
    };
    step.advance();
    step.apply(input);
    step.advance();
    step.finish(&before)
}

/// When time alone next changes something: the end of a back-off, readiness by
/// delay, `start_timeout`, the liveness deadline `max(ready, last ping) +
/// ping_timeout`, `max_runtime`, `stop_timeout` (→ SIGKILL) or `backoff_reset`. `None`
/// when only an input can.
pub fn next_deadline(state: &ServiceState, policy: &ServicePolicy) -> Option<Timestamp> {
    earliest_deadline(state, policy).map(|(at, _)| at)
}

/// The restart delay before policy restart number `n` (from 1): `min(restart_delay ×
/// 2^(n−1), restart_delay_max)` (monitors spec B.5.3).
pub fn backoff_delay(policy: &ServicePolicy, n: u32) -> Duration {
    let factor = 2u32.checked_pow(n.saturating_sub(1));
    factor
        .and_then(|factor| policy.restart_delay.checked_mul(factor))
        .map_or(policy.restart_delay_max, |delay| {
            delay.min(policy.restart_delay_max)
        })
}

/// Whether a process ending counts as clean (monitors spec B.5.2): an exit code in
/// `success_exit_codes`, or SIGHUP, SIGINT, SIGTERM or SIGPIPE without a core dump.
/// An unknown ending (pid-file mode) is not clean.
pub fn is_clean_exit(
    policy: &ServicePolicy,
    exit_code: Option<i32>,
    signal: Option<&str>,
    core_dumped: bool,
) -> bool {
    match (exit_code, signal) {
        _ if core_dumped => false,
        (_, Some(signal)) => CLEAN_SIGNALS.contains(&signal),
        (Some(code), None) => policy.success_exit_codes.contains(&code),
        (None, None) => false,
    }
}

/// What a deadline does when it falls due. At equal times the earlier variant fires
/// first: an instance that lived long enough was ready before it timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Deadline {
    BackoffElapsed,
    Ready,
    BackoffReset,
    StartTimeout,
    Liveness,
    MaxRuntime,
    Kill,
}

/// The one list of deadlines, by status; the earliest with its kind.
fn earliest_deadline(
    state: &ServiceState,
    policy: &ServicePolicy,
) -> Option<(Timestamp, Deadline)> {
    let spawned = state.instance().map(|record| record.spawned);
    let max_runtime = nonzero(policy.max_runtime)
        .zip(spawned)
        .map(|(limit, spawned)| (later(spawned, limit), Deadline::MaxRuntime));
    let candidates = match state.status {
        Status::Backoff { until, .. } => [Some((until, Deadline::BackoffElapsed)), None, None],
        Status::Starting => {
            let ready = match (policy.ready, state.tracked_since) {
                (ReadyRule::Delay, Some(found)) => {
                    Some((later(found, policy.start_seconds), Deadline::Ready))
                }
                _ => spawned.map(|at| (later(at, policy.start_timeout), Deadline::StartTimeout)),
            };
            [ready, max_runtime, None]
        }
        Status::Running => {
            let liveness =
                nonzero(policy.ping_timeout)
                    .zip(state.ready_at)
                    .map(|(timeout, ready)| {
                        let since = state.last_ping.map_or(ready, |ping| ping.max(ready));
                        (later(since, timeout), Deadline::Liveness)
                    });
            let reset = state
                .ready_at
                .filter(|_| state.restarts > 0 || state.streak_open)
                .map(|ready| (later(ready, policy.backoff_reset), Deadline::BackoffReset));
            [liveness, max_runtime, reset]
        }
        Status::Stopping(stop) if !stop.killed => [
            Some((later(stop.since, policy.stop_timeout), Deadline::Kill)),
            None,
            None,
        ],
        _ => [None, None, None],
    };
    candidates
        .into_iter()
        .flatten()
        .filter(|(at, _)| *at != Timestamp::MAX)
        .min()
}

/// How the supervisor's report ended the instance.
enum Ending {
    Exited {
        exit_code: Option<i32>,
        signal: Option<String>,
        core_dumped: bool,
    },
    SpawnFailed(String),
}

/// What an ending means for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Clean, on its own, after ready.
    Clean,
    /// karajo was asked to stop it.
    Stopped,
    /// A crash's orphan, stopped at start-up.
    Orphaned,
    /// Anything else.
    Failure,
}

/// One call's work: the state being changed, the policy it follows, the time, and the
/// effects gathered so far.
struct Step<'a> {
    state: &'a mut ServiceState,
    policy: &'a ServicePolicy,
    now: Timestamp,
    effects: Vec<ServiceEffect>,
}

impl Step<'_> {
    fn apply(&mut self, input: Input) {
        match input {
            Input::Boot { found } => self.boot(found),
            Input::Control { control, cas, by } => self.control(control, cas, &by),
            Input::Spawned(spawned) => self.spawned(spawned),
            Input::SpawnFailed { why } => self.end(Ending::SpawnFailed(why)),
            Input::Tracked {
                pid,
                pgid,
                starttime,
            } => self.tracked(pid, pgid, starttime),
            Input::ReadyNotify => {
                if self.state.status == Status::Starting
                    && self.policy.ready == ReadyRule::Notify
                    && self.state.instance().is_some()
                {
                    self.become_ready(self.now);
                }
            }
            Input::Ping { instance, update } => self.ping(&instance, update),
            Input::StatusText(text) => self.state.status_text = capped(text),
            Input::Exited {
                exit_code,
                signal,
                core_dumped,
            } => self.end(Ending::Exited {
                exit_code,
                signal: signal.map(|name| signal_name(&name)),
                core_dumped,
            }),
            Input::LogRotated { segment } => {
                if let Some(record) = self.state.saved.instance.as_mut() {
                    record.segment = segment;
                }
            }
            Input::Tick => {}
            Input::Shutdown { leave_running } => self.shutdown(leave_running),
            Input::Reconfigure { respawn, enabled } => self.reconfigure(respawn, enabled),
        }
    }

    /// Puts a [`ServiceEffect::SaveState`] first when the saved part changed.
    fn finish(mut self, before: &SavedService) -> Vec<ServiceEffect> {
        let after = &self.state.saved;
        if after != before {
            let identity = |saved: &SavedService| {
                saved.instance.as_ref().map(|record| InstanceRecord {
                    segment: 0,
                    ..record.clone()
                })
            };
            let durable = after.enabled != before.enabled
                || after.run_once != before.run_once
                || after.cas != before.cas
                || identity(after) != identity(before);
            self.effects.insert(0, ServiceEffect::SaveState { durable });
        }
        self.effects
    }

    // ---- the changes the CAS counts (monitors spec B.5.5) ----

    fn set_status(&mut self, status: Status) {
        if status.as_str() != self.state.status.as_str() {
            self.bump_cas();
        }
        self.state.status = status;
    }

    fn set_enabled(&mut self, enabled: bool) {
        if self.state.saved.enabled != enabled {
            self.state.saved.enabled = enabled;
            self.bump_cas();
        }
    }

    fn set_run_once(&mut self, run_once: bool) {
        if self.state.saved.run_once != run_once {
            self.state.saved.run_once = run_once;
            self.bump_cas();
        }
    }

    fn bump_cas(&mut self) {
        self.state.saved.cas = self.state.saved.cas.saturating_add(1);
    }

    fn record_instance(&mut self, record: InstanceRecord) {
        self.state.saved.instance = Some(record);
        self.bump_cas();
    }

    // ---- time ----

    fn advance(&mut self) {
        for _ in 0..MAX_DEADLINES_PER_STEP {
            let due = earliest_deadline(self.state, self.policy).filter(|(at, _)| *at <= self.now);
            let Some((at, deadline)) = due else {
                return;
            };
            match deadline {
                Deadline::BackoffElapsed => {
                    if let Status::Backoff { delay, .. } = self.state.status {
                        self.start(Some(delay));
                    }
                }
                Deadline::Ready => self.become_ready(at),
                Deadline::BackoffReset => self.ran_well(at),
                Deadline::StartTimeout => self.stop(StopReason::StartTimeout, StopTarget::Policy),
                Deadline::Liveness => self.stop(StopReason::Liveness, StopTarget::Policy),
                Deadline::MaxRuntime => self.stop(StopReason::MaxRuntime, StopTarget::Policy),
                Deadline::Kill => self.kill(),
            }
        }
    }

    // ---- start-up (monitors spec B.7) ----

    fn boot(&mut self, found: Leftover) {
        if let Some(record) = self.state.saved.instance.clone() {
            match found {
                Leftover::Nothing | Leftover::Gone => self.lost_at_boot(&record),
                Leftover::Orphan => {
                    let message = format!(
                        "orphan of a karajo restart: pid {} (instance {}); stopping it",
                        record.pid, record.instance
                    );
                    self.event(EventKind::Orphan, message);
                    let target = if self.owes_a_run() {
                        StopTarget::Start
                    } else {
                        StopTarget::Disabled
                    };
                    self.stop(StopReason::Orphaned, target);
                }
                Leftover::Adopted { segment } => {
                    if let Some(record) = self.state.saved.instance.as_mut() {
                        record.segment = segment;
                    }
                    self.state.ready_at = Some(self.now);
                    self.state.tracked_since = Some(self.now);
                    self.set_status(Status::Running);
                    self.log(format!(
                        "=== adopted pid {} after karajo restart",
                        record.pid
                    ));
                    let message = format!(
                        "adopted pid {} (instance {}) after karajo restart",
                        record.pid, record.instance
                    );
                    self.event(EventKind::Adopt, message);
                }
            }
        }
        if matches!(self.state.status, Status::Stopped | Status::Disabled) && self.owes_a_run() {
            self.start(None);
        }
    }

    /// A recorded instance that ended while karajo was not running.
    fn lost_at_boot(&mut self, record: &InstanceRecord) {
        self.effects.push(ServiceEffect::CloseLeftoverLog {
            counter: record.segment,
            status: SegmentStatus::Failed,
            line: "=== lost: the instance ended while karajo was not running".to_string(),
        });
        let entry = self.history_entry(HistoryReason::Lost, false, None, None);
        self.effects.push(ServiceEffect::History(entry));
        let message = format!(
            "instance {} (pid {}) was gone at start-up",
            record.instance, record.pid
        );
        self.event(EventKind::Lost, message);
        self.retire_instance();
    }

    /// Whether the service should have an instance: enabled, or a run-once owed.
    fn owes_a_run(&self) -> bool {
        self.state.saved.enabled || self.state.saved.run_once
    }

    // ---- controls (monitors spec B.5.4, B.5.5, B.10) ----

    fn control(&mut self, control: Control, cas: Option<u64>, by: &str) {
        let current = self.state.saved.cas;
        if cas.is_some_and(|cas| cas != current) {
            self.effects
                .push(ServiceEffect::Reply(Reply::CasMismatch { current }));
            return;
        }
        let mark = self.effects.len();
        let before = self.state.status;
        match control {
            Control::Enable => self.enable(),
            Control::Disable => self.disable(),
            Control::Restart => self.restart(),
            Control::RunOnce(on) => self.run_once(on),
            Control::Signal(signal) => {
                let pgid = self.state.instance().map(|record| record.pgid);
                let Some(pgid) = pgid.filter(|_| self.state.status.is_live()) else {
                    self.effects.push(ServiceEffect::Reply(Reply::NotRunning));
                    return;
                };
                let name = signal.as_str();
                self.log(format!("=== SIGNAL SIG{name} to group {pgid} (by {by})"));
                self.effects.push(ServiceEffect::SendSignal(signal));
            }
        }
        let after = self.state.status;
        let word = match control {
            Control::Signal(signal) => format!("signal {}", signal.as_str()),
            other => other.as_str().to_string(),
        };
        let message = if after.as_str() == before.as_str() {
            format!("{word} by {by} ({})", after.as_str())
        } else {
            format!("{word} by {by}: {} → {}", before.as_str(), after.as_str())
        };
        let event = ServiceEvent {
            kind: EventKind::Control,
            message,
        };
        self.effects.insert(mark, ServiceEffect::Event(event));
        let cas = self.state.saved.cas;
        self.effects.push(ServiceEffect::Reply(Reply::Done { cas }));
    }

    fn enable(&mut self) {
        self.set_enabled(true);
        match self.state.status {
            Status::Disabled | Status::Stopped | Status::Fatal => {
                self.reset_counters();
                self.start(None);
            }
            Status::Stopping(stop) if stop.target == StopTarget::Disabled => {
                self.retarget(StopTarget::Start);
            }
            _ => {}
        }
    }

    fn disable(&mut self) {
        self.set_enabled(false);
        self.set_run_once(false);
        match self.state.status {
            Status::Starting | Status::Running => {
                self.stop(StopReason::Disable, StopTarget::Disabled);
            }
            Status::Stopping(_) => self.retarget(StopTarget::Disabled),
            Status::Backoff { .. } | Status::Stopped | Status::Fatal => {
                self.set_status(Status::Disabled);
            }
            Status::Disabled => {}
        }
    }

    fn restart(&mut self) {
        self.set_enabled(true);
        self.reset_counters();
        match self.state.status {
            Status::Starting | Status::Running => {
                self.stop(StopReason::Restart, StopTarget::Start);
            }
            Status::Stopping(_) => self.retarget(StopTarget::Start),
            Status::Disabled | Status::Stopped | Status::Fatal | Status::Backoff { .. } => {
                self.start(None);
            }
        }
    }

    fn run_once(&mut self, on: bool) {
        self.set_run_once(on);
        if !on {
            return;
        }
        match self.state.status {
            Status::Disabled | Status::Stopped | Status::Fatal => {
                self.reset_counters();
                self.start(None);
            }
            Status::Stopping(stop) if stop.target == StopTarget::Disabled => {
                self.retarget(StopTarget::Start);
            }
            _ => {}
        }
    }

    /// Changes what a stop in progress leads to, unless karajo is shutting down.
    fn retarget(&mut self, target: StopTarget) {
        if let Status::Stopping(stop) = self.state.status
            && stop.target != StopTarget::Exit
        {
            self.state.status = Status::Stopping(Stop { target, ..stop });
        }
    }

    fn reset_counters(&mut self) {
        self.state.start_failures = 0;
        self.state.restarts = 0;
    }

    // ---- reload and shutdown (monitors spec B.6, B.7) ----

    fn reconfigure(&mut self, respawn: bool, enabled: Option<bool>) {
        let live = matches!(self.state.status, Status::Starting | Status::Running);
        if let Some(enabled) = enabled.filter(|e| *e != self.state.saved.enabled) {
            let mark = self.effects.len();
            let before = self.state.status;
            if enabled {
                self.enable();
            } else {
                self.disable();
            }
            let word = if enabled { "enabled" } else { "disabled" };
            let message = format!(
                "{word} by the configuration: {} → {}",
                before.as_str(),
                self.state.status.as_str()
            );
            let event = ServiceEvent {
                kind: EventKind::Control,
                message,
            };
            self.effects.insert(mark, ServiceEffect::Event(event));
        }
        if respawn && live && matches!(self.state.status, Status::Starting | Status::Running) {
            self.reset_counters();
            self.stop(StopReason::Reload, StopTarget::Start);
        }
    }

    fn shutdown(&mut self, leave_running: bool) {
        match self.state.status {
            Status::Starting | Status::Running if leave_running => {
                if let Some(pid) = self.state.instance().map(|record| record.pid) {
                    self.log(format!(
                        "=== karajo stopping; instance left running (pid {pid})"
                    ));
                    self.effects
                        .push(ServiceEffect::CloseLog(SegmentStatus::Rotated));
                } else {
                    self.stop(StopReason::Shutdown, StopTarget::Exit);
                }
            }
            Status::Starting | Status::Running => {
                self.stop(StopReason::Shutdown, StopTarget::Exit);
            }
            Status::Stopping(stop) => {
                self.state.status = Status::Stopping(Stop {
                    target: StopTarget::Exit,
                    ..stop
                });
            }
            Status::Backoff { .. } => self.set_status(self.at_rest()),
            Status::Disabled | Status::Stopped | Status::Fatal => {}
        }
    }

    /// `stopped`, or `disabled` when not enabled.
    fn at_rest(&self) -> Status {
        if self.state.saved.enabled {
            Status::Stopped
        } else {
            Status::Disabled
        }
    }

    // ---- the instance's life ----

    /// → `starting`: ask the supervisor for a new instance; `after_backoff` when the
    /// policy's delay just ended.
    fn start(&mut self, after_backoff: Option<Duration>) {
        self.state.attempt = self.state.restarts.saturating_add(1);
        self.state.starting_since = Some(self.now);
        self.state.tracked_since = None;
        self.state.ready_at = None;
        self.state.last_ping = None;
        self.state.backoff = after_backoff;
        self.set_status(Status::Starting);
        self.effects.push(ServiceEffect::Spawn {
            attempt: self.state.attempt,
            after_backoff,
        });
    }

    fn spawned(&mut self, spawned: SpawnedInstance) {
        if !matches!(self.state.status, Status::Starting | Status::Stopping(_)) {
            return;
        }
        let record = InstanceRecord {
            instance: spawned.instance,
            pid: spawned.pid,
            pgid: spawned.pgid,
            starttime: spawned.starttime,
            boot_id: spawned.boot_id,
            spawned: self.now,
            counter: spawned.counter,
            segment: spawned.counter,
            token_sha256: spawned.token.sha256_hex(),
            watch: spawned.watch,
        };
        if record.watch == Watch::Child {
            self.state.tracked_since = Some(self.now);
        }
        if spawned.keyvalue_clear {
            self.state.keyvalue.clear();
        }
        self.state.status_text.clear();
        let attempt = match self.state.backoff {
            Some(delay) => format!(
                " (attempt {} after {} back-off)",
                self.state.attempt,
                format_short(delay)
            ),
            None => String::new(),
        };
        let line = format!(
            "=== START instance {} pid {}{attempt}",
            record.instance, record.pid
        );
        let message = format!(
            "started: instance {} pid {} (#{}){attempt}",
            record.instance, record.pid, record.counter
        );
        self.record_instance(record);
        self.log(line);
        self.event(EventKind::Start, message);
        if let Status::Stopping(stop) = self.state.status {
            // The stop came while the spawn was in flight: stop what was spawned.
            self.stop(stop.reason, stop.target);
        }
    }

    fn tracked(&mut self, pid: u32, pgid: u32, starttime: u64) {
        if !self.state.status.is_live() {
            return;
        }
        let Some(record) = self.state.saved.instance.as_mut() else {
            return;
        };
        if record.watch != Watch::PidFile {
            return;
        }
        let changed = (record.pid, record.pgid, record.starttime) != (pid, pgid, starttime);
        record.pid = pid;
        record.pgid = pgid;
        record.starttime = starttime;
        if self.state.tracked_since.is_none() {
            self.state.tracked_since = Some(self.now);
            self.log(format!("=== TRACKING pid {pid} (pid file)"));
        } else if changed {
            self.log(format!("=== TRACKING pid {pid} (the pid file changed)"));
        }
    }

    /// `starting` → `running` at `at` (monitors spec B.4.2).
    fn become_ready(&mut self, at: Timestamp) {
        if self.state.status != Status::Starting {
            return;
        }
        let spawned = self.state.instance().map_or(at, |record| record.spawned);
        let took = elapsed(spawned, at).as_secs_f64();
        let how = self.policy.ready.as_str();
        self.state.ready_at = Some(at);
        self.state.start_failures = 0;
        self.set_status(Status::Running);
        self.log(format!("=== READY after {took:.1}s ({how})"));
        self.event(EventKind::Ready, format!("ready after {took:.1}s ({how})"));
    }

    /// The instance has been running continuously for `backoff_reset` (since `at`
    /// minus that): the next failure counts as the first again, so the back-off starts
    /// over and a failure streak is over (`notif_on_recover`).
    fn ran_well(&mut self, at: Timestamp) {
        self.state.restarts = 0;
        if !self.state.streak_open {
            return;
        }
        self.state.streak_open = false;
        let counter = self.state.instance().map(|record| record.segment);
        let well = format_short(self.policy.backoff_reset);
        let ready = self.state.ready_at.unwrap_or(at);
        let message = format!("recovered: running since {ready} ({well} without a failure)");
        self.event(EventKind::Recover, message);
        let summary = match counter {
            Some(counter) => format!("RECOVERED: #{counter} running for {well}"),
            None => format!("RECOVERED: running for {well}"),
        };
        let notice = Notice {
            reason: None,
            summary,
            counter,
        };
        self.notify(NoticeEvent::Recover, Status::Running, notice);
    }

    fn ping(&mut self, instance: &str, update: PingUpdate) {
        let current = self.state.status.is_live()
            && self
                .state
                .instance()
                .is_some_and(|record| record.instance == instance);
        if !current {
            let instance = instance.to_string();
            self.effects
                .push(ServiceEffect::Reply(Reply::Stale { instance }));
            return;
        }
        if let Some(keyvalue) = update.keyvalue {
            let merged = if update.keyvalue_replace {
                keyvalue
            } else {
                let mut merged = self.state.keyvalue.clone();
                merged.extend(keyvalue);
                merged
            };
            if let Err(why) = check_keyvalue(&merged) {
                self.effects
                    .push(ServiceEffect::Reply(Reply::BadRequest(why)));
                return;
            }
            self.state.keyvalue = merged;
        }
        if let Some(text) = update.status_text {
            self.state.status_text = capped(text);
        }
        self.state.last_ping = Some(self.now);
        if self.state.status == Status::Starting && self.policy.ready == ReadyRule::Ping {
            self.become_ready(self.now);
        }
        let cas = self.state.saved.cas;
        self.effects.push(ServiceEffect::Reply(Reply::Done { cas }));
    }

    /// → `stopping`: the stop signal to the instance (monitors spec B.6).
    fn stop(&mut self, reason: StopReason, target: StopTarget) {
        let stop = Stop {
            reason,
            target,
            since: self.now,
            killed: false,
        };
        self.set_status(Status::Stopping(stop));
        let signal = self.policy.stop_signal;
        if reason != StopReason::Orphaned {
            let why = if reason.is_request() {
                format!("requested ({})", reason.as_str())
            } else {
                format!("({}: {})", reason.as_str(), self.stop_detail(reason))
            };
            let to = self.group_words();
            self.log(format!("=== STOP {why}: SIG{} to {to}", signal.as_str()));
        }
        self.effects.push(ServiceEffect::Stop {
            signal,
            timeout: self.policy.stop_timeout,
            reason,
        });
    }

    fn kill(&mut self) {
        if let Status::Stopping(stop) = self.state.status {
            self.state.status = Status::Stopping(Stop {
                killed: true,
                ..stop
            });
            if stop.reason != StopReason::Orphaned {
                let to = self.group_words();
                let timeout = format_short(self.policy.stop_timeout);
                self.log(format!(
                    "=== KILL: no exit within stop_timeout {timeout}: SIGKILL to {to}"
                ));
            }
            self.effects.push(ServiceEffect::Kill);
        }
    }

    /// The end of the instance (or of its spawn): log, history, events and
    /// notifications, then what comes next (monitors spec B.5.2 to B.5.4).
    fn end(&mut self, ending: Ending) {
        if !self.state.status.is_live() {
            return;
        }
        let stop = match self.state.status {
            Status::Stopping(stop) => Some(stop),
            _ => None,
        };
        let (exit_code, signal) = match &ending {
            Ending::Exited {
                exit_code, signal, ..
            } => (*exit_code, signal.clone()),
            Ending::SpawnFailed(_) => (None, None),
        };
        let was_ready = self.state.ready_at.is_some();
        let (reason, outcome) = self.judge(stop, &ending);
        if outcome == Outcome::Failure && !was_ready {
            self.state.start_failures = self.state.start_failures.saturating_add(1);
        }

        // The words.
        let started = self.started();
        let took = format_short(whole_millis(elapsed(started, self.now)));
        let how = match &ending {
            Ending::Exited {
                exit_code,
                signal,
                core_dumped,
            } => exit_words(*exit_code, signal.as_deref(), *core_dumped),
            Ending::SpawnFailed(why) => format!("start failed: {why}"),
        };
        let detail = match stop {
            Some(stop) if !stop.reason.is_request() && outcome == Outcome::Failure => {
                self.stop_detail(stop.reason)
            }
            _ => how.clone(),
        };
        let counter = self.state.instance().map(|record| record.segment);

        // The log.
        let record = self.state.instance().cloned();
        match (outcome, &ending, &record) {
            (Outcome::Orphaned, _, Some(record)) => {
                self.effects.push(ServiceEffect::CloseLeftoverLog {
                    counter: record.segment,
                    status: SegmentStatus::Failed,
                    line: "=== orphaned by a karajo restart; stopped".to_string(),
                });
            }
            (Outcome::Orphaned, _, None) => {}
            (_, Ending::SpawnFailed(why), _) => {
                self.log(format!("=== START failed: {why}"));
            }
            (_, Ending::Exited { .. }, _) => {
                self.log(format!("=== EXIT {how} after {took} ({})", reason.as_str()));
            }
        }
        if outcome != Outcome::Orphaned {
            let status = match outcome {
                Outcome::Clean => SegmentStatus::Success,
                Outcome::Stopped => SegmentStatus::Canceled,
                Outcome::Orphaned | Outcome::Failure => SegmentStatus::Failed,
            };
            self.effects.push(ServiceEffect::CloseLog(status));
        }

        // The history and the instance record.
        let clean = matches!(outcome, Outcome::Clean | Outcome::Stopped);
        let entry = self.history_entry(reason, clean, exit_code, signal.clone());
        self.effects.push(ServiceEffect::History(entry));
        self.state.last_exit = Some(LastExit {
            exit_code,
            signal,
            reason,
            at: self.now,
        });
        self.retire_instance();

        // The event, and the notification of a streak's first failure; the status
        // the instance failed in is the one before any stop.
        let previous = if was_ready {
            Status::Running
        } else {
            Status::Starting
        };
        match outcome {
            Outcome::Clean => self.event(EventKind::Exit, format!("exited: {how} after {took}")),
            Outcome::Stopped => self.event(
                EventKind::Stopped,
                format!("stopped ({}): {how} after {took}", reason_word(stop)),
            ),
            Outcome::Orphaned => {
                let message = format!("orphan stopped: {how}");
                self.event(EventKind::Orphan, message);
            }
            Outcome::Failure => {
                let message = format!("failed: {detail} after {took} ({})", reason.as_str());
                self.event(EventKind::Failed, message);
                if !self.state.streak_open {
                    self.state.streak_open = true;
                    let summary = match counter {
                        Some(counter) => format!("#{counter}: failed ({detail})"),
                        None => format!("failed ({detail})"),
                    };
                    let notice = Notice {
                        reason: Some(reason),
                        summary,
                        counter,
                    };
                    self.notify(NoticeEvent::Failed, previous, notice);
                }
            }
        }

        // What comes next.
        match stop.map(|stop| stop.target) {
            Some(StopTarget::Disabled) => self.set_status(Status::Disabled),
            Some(StopTarget::Start) => self.start(None),
            Some(StopTarget::Exit) => self.set_status(self.at_rest()),
            Some(StopTarget::Policy) | None => {
                let failure = (outcome == Outcome::Failure).then_some(Notice {
                    reason: Some(reason),
                    summary: detail,
                    counter,
                });
                self.after_ending(failure);
            }
        }
    }

    /// Why the instance ended and what that means (monitors spec B.5.2): a stop's
    /// reason decides when karajo stopped it; else a clean exit after ready is clean
    /// and anything else (an ending before ready included) a failure.
    fn judge(&self, stop: Option<Stop>, ending: &Ending) -> (HistoryReason, Outcome) {
        if let Some(stop) = stop {
            let outcome = match stop.reason {
                StopReason::Orphaned => Outcome::Orphaned,
                reason if reason.is_request() => Outcome::Stopped,
                _ => Outcome::Failure,
            };
            return (stop.reason.history_reason(), outcome);
        }
        let Ending::Exited {
            exit_code,
            signal,
            core_dumped,
        } = ending
        else {
            return (HistoryReason::StartFailed, Outcome::Failure);
        };
        let pid_file = self
            .state
            .instance()
            .is_some_and(|record| record.watch == Watch::PidFile);
        let reason = if pid_file && exit_code.is_none() && signal.is_none() {
            HistoryReason::Lost
        } else {
            HistoryReason::Exited
        };
        let clean = is_clean_exit(self.policy, *exit_code, signal.as_deref(), *core_dumped);
        if clean && self.state.ready_at.is_some() {
            (reason, Outcome::Clean)
        } else {
            (reason, Outcome::Failure)
        }
    }

    /// The restart policy (monitors spec B.5.2, B.5.3), or the run-once rule.
    /// `failure` is `None` for a clean ending, else what to tell if it is fatal (its
    /// summary is the failure's detail).
    fn after_ending(&mut self, failure: Option<Notice>) {
        if self.state.saved.run_once || !self.state.saved.enabled {
            self.set_run_once(false);
            match failure {
                _ if !self.state.saved.enabled => self.set_status(Status::Disabled),
                Some(failure) => {
                    let summary =
                        format!("FATAL (the run-once instance failed: {})", failure.summary);
                    self.go_fatal(Notice { summary, ..failure });
                }
                None => self.set_status(Status::Stopped),
            }
            return;
        }
        match (self.policy.restart, failure) {
            (RestartPolicy::Never, Some(failure)) => {
                let summary = format!("FATAL (restart = never): {}", failure.summary);
                self.go_fatal(Notice { summary, ..failure });
            }
            (RestartPolicy::OnFailure | RestartPolicy::Never, None) => {
                self.set_status(Status::Stopped);
            }
            (RestartPolicy::Always | RestartPolicy::OnFailure, failure) => {
                if self.state.start_failures > self.policy.start_retries {
                    let summary =
                        format!("FATAL after {} failed starts", self.state.start_failures);
                    let reason = failure.as_ref().and_then(|failure| failure.reason);
                    let counter = failure.and_then(|failure| failure.counter);
                    self.go_fatal(Notice {
                        reason,
                        summary,
                        counter,
                    });
                } else {
                    self.back_off();
                }
            }
        }
    }

    fn back_off(&mut self) {
        self.state.restarts = self.state.restarts.saturating_add(1);
        let delay = backoff_delay(self.policy, self.state.restarts);
        let until = later(self.now, delay);
        self.set_status(Status::Backoff { until, delay });
        let message = format!(
            "restart in {} (attempt {})",
            format_short(delay),
            self.state.restarts.saturating_add(1)
        );
        self.event(EventKind::Backoff, message);
    }

    fn go_fatal(&mut self, notice: Notice) {
        let previous = self.state.status;
        self.set_status(Status::Fatal);
        self.event(EventKind::Fatal, notice.summary.clone());
        self.notify(NoticeEvent::Fatal, previous, notice);
    }

    /// Moves the current instance's token to the retired list and clears the record.
    fn retire_instance(&mut self) {
        if let Some(record) = self.state.saved.instance.take() {
            self.state
                .retired
                .push_back((record.instance, record.token_sha256));
            while self.state.retired.len() > RETIRED_TOKENS {
                self.state.retired.pop_front();
            }
        }
        self.state.tracked_since = None;
        self.state.ready_at = None;
    }

    // ---- words and effects ----

    fn history_entry(
        &self,
        reason: HistoryReason,
        clean: bool,
        exit_code: Option<i32>,
        signal: Option<String>,
    ) -> HistoryEntry {
        let record = self.state.instance();
        let started = self.started();
        HistoryEntry {
            instance: record.map(|record| record.instance.clone()),
            pid: record.map(|record| record.pid),
            started,
            ready: self.state.ready_at,
            last_seen: self.state.last_ping,
            stopped: self.now,
            exit_code,
            signal: signal.unwrap_or_default(),
            reason,
            clean,
            counters: record.map(InstanceRecord::counters).unwrap_or_default(),
            duration: elapsed(started, self.now),
            keyvalue: self.state.keyvalue.clone(),
        }
    }

    /// When the current instance was spawned, else when its start began.
    fn started(&self) -> Timestamp {
        self.state
            .instance()
            .map(|record| record.spawned)
            .or(self.state.starting_since)
            .unwrap_or(self.now)
    }

    /// `group 4242`, or `the instance being spawned` before the spawn is reported.
    fn group_words(&self) -> String {
        match self.state.instance() {
            Some(record) => format!("group {}", record.pgid),
            None => "the instance being spawned".to_string(),
        }
    }

    /// Why a stop for a failure happened, in words.
    fn stop_detail(&self, reason: StopReason) -> String {
        let policy = self.policy;
        match reason {
            StopReason::Liveness => format!(
                "no ping within ping_timeout {}",
                format_short(policy.ping_timeout.unwrap_or_default())
            ),
            StopReason::MaxRuntime => format!(
                "ran for max_runtime {}",
                format_short(policy.max_runtime.unwrap_or_default())
            ),
            StopReason::StartTimeout => format!(
                "not ready within start_timeout {}",
                format_short(policy.start_timeout)
            ),
            other => other.as_str().to_string(),
        }
    }

    fn log(&mut self, line: String) {
        self.effects.push(ServiceEffect::LogLine(line));
    }

    fn event(&mut self, kind: EventKind, message: String) {
        self.effects
            .push(ServiceEffect::Event(ServiceEvent { kind, message }));
    }

    /// Queues a notification when the policy names anyone for `event`.
    fn notify(&mut self, event: NoticeEvent, previous_status: Status, notice: Notice) {
        let Notice {
            reason,
            summary,
            counter,
        } = notice;
        let notifs = match event {
            NoticeEvent::Failed => &self.policy.notif_on_failed,
            NoticeEvent::Fatal => &self.policy.notif_on_fatal,
            NoticeEvent::Recover => &self.policy.notif_on_recover,
        };
        if notifs.is_empty() {
            return;
        }
        let notice = ServiceNotice {
            event,
            notifs: notifs.clone(),
            previous_status,
            reason,
            summary,
            counter,
        };
        self.effects.push(ServiceEffect::Notify(notice));
    }
}

/// What a notification says besides its event: why, its subject, and the log segment
/// whose tail goes with it.
struct Notice {
    reason: Option<HistoryReason>,
    summary: String,
    counter: Option<u64>,
}

/// `disable`, `restart`, ... for the `stopped` event.
fn reason_word(stop: Option<Stop>) -> &'static str {
    stop.map_or("request", |stop| stop.reason.as_str())
}

/// `status 1`, `signal KILL`, `signal SEGV (core dumped)` or `unknown status`.
fn exit_words(exit_code: Option<i32>, signal: Option<&str>, core_dumped: bool) -> String {
    let core = if core_dumped { " (core dumped)" } else { "" };
    match (exit_code, signal) {
        (_, Some(signal)) => format!("signal {signal}{core}"),
        (Some(code), None) => format!("status {code}{core}"),
        (None, None) => format!("unknown status{core}"),
    }
}

/// A signal name as the history writes it: upper case, without `SIG`.
fn signal_name(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    upper.strip_prefix("SIG").unwrap_or(&upper).to_string()
}

/// `status_text` cut to [`STATUS_TEXT_MAX_CHARS`].
fn capped(text: String) -> String {
    match text.char_indices().nth(STATUS_TEXT_MAX_CHARS) {
        Some((end, _)) => text[..end].to_string(),
        None => text,
    }
}

fn check_keyvalue(map: &KeyValue) -> Result<(), String> {
    if map.len() > KEYVALUE_MAX_KEYS {
        return Err(format!(
            "keyvalue would hold {} keys; at most {KEYVALUE_MAX_KEYS}",
            map.len()
        ));
    }
    let bytes = serde_json::to_string(map).map_or(usize::MAX, |json| json.len());
    if bytes > KEYVALUE_MAX_BYTES {
        return Err(format!(
            "keyvalue would take {bytes} bytes of JSON; at most {KEYVALUE_MAX_BYTES}"
        ));
    }
    Ok(())
}

/// A configured duration where zero means "off", as in the configuration.
fn nonzero(duration: Option<Duration>) -> Option<Duration> {
    duration.filter(|d| !d.is_zero())
}

/// `at + by`, or [`Timestamp::MAX`] past the end of time.
fn later(at: Timestamp, by: Duration) -> Timestamp {
    at.checked_add(by).unwrap_or(Timestamp::MAX)
}

/// The time from `from` to `to`; zero when `to` is not later.
fn elapsed(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}

/// `duration` cut to whole milliseconds, for messages.
fn whole_millis(duration: Duration) -> Duration {
    Duration::from_millis(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}
