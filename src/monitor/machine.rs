//! The monitor state machine (monitors spec A.4.2 to A.4.5 and the restart rule of
//! A.7) as pure functions of a [`MonitorState`], the monitor's [`MonitorRules`] and a
//! time the caller passes in. Each returns the [`MonitorEffect`]s to perform; none reads
//! a clock, touches a file or sleeps. Time-driven transitions happen in [`advance`],
//! which every other entry point runs first, so a ping that arrives just after a
//! deadline the scheduler has not acted on yet still sees the transition it missed;
//! [`next_deadline`] tells the scheduler when to call [`advance`] next.
//!
//! Choices where the spec is silent, made as a healthchecks user would expect:
//! * a time-driven transition is dated at its deadline (`since` of a `down` reached
//!   through `late` is `due + grace`), not at the moment the scheduler woke up;
//! * under `until = ping`, pings other than a success are still recorded (a `start`
//!   opens its run, a `fail` is logged) but change no status: the pause is there
//!   because failures are expected while someone fixes the job;
//! * pausing ends an outage: a monitor resumed after a pause is `up` or `new`, and its
//!   recovery is not notified;
//! * a run whose `max_runtime` passed while the monitor was paused is closed as
//!   `canceled` at resume time (its end ping may have been ignored), not timed out;
//! * a `start` whose `rid` is already open cancels the older run of that `rid`;
//! * a `down` reminder that was missed (karajo stopped, scheduler late) is sent once,
//!   not once per missed period;
//! * after a restart, a run canceled because its deadline fell while karajo was down
//!   also credits the monitor's due time, since its end check-in may have come in the
//!   gap.

use std::time::Duration;

use jiff::Timestamp;

use super::due::{due_after, elapsed, later};
use super::effect::{ClosedBy, EventKind, MonitorEffect, MonitorEvent, MonitorNotice, NoticeEvent};
use super::ping::{NextIn, RunId, Signal};
use super::state::{DownReason, MAX_OPEN_RUNS, MonitorState, Outage, PauseUntil, Status};
use crate::config::MonitorRules;
use crate::config::duration::format_short;
use crate::job::RunStatus;

/// One ping's meaning, once its route and parameters were accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    /// What it reports.
    pub signal: Signal,
    /// Its `rid`, if any.
    pub rid: Option<RunId>,
    /// Its `next_in`, if any.
    pub next_in: Option<NextIn>,
}

impl Ping {
    /// A ping with neither `rid` nor `next_in`.
    pub fn plain(signal: Signal) -> Self {
        Self {
            signal,
            rid: None,
            next_in: None,
        }
    }
}

/// Takes a ping that arrived at `now` (monitors spec A.4.3, A.4.4): first the
/// transitions that time brought ([`advance`]), then the ping's runs, logs, due time
/// and status change. A monitor paused until `resume` or a time ignores it.
pub fn check_in(
    state: &mut MonitorState,
    rules: &MonitorRules,
    ping: &Ping,
    now: Timestamp,
) -> Vec<MonitorEffect> {
    let mut step = Step::new(state, rules);
    step.advance(now);
    match step.state.status {
        Status::Paused(until @ (PauseUntil::Resume | PauseUntil::Time(_))) => {
            step.effects.push(MonitorEffect::Ignored);
            let message = format!(
                "{} ping ignored: paused {}",
                ping.signal.as_str(),
                until_words(until)
            );
            step.event(EventKind::Ignored, None, message);
            return step.effects;
        }
        Status::Paused(PauseUntil::Ping) if ping.signal.is_success() => {
            step.resume_at(now, ResumedBy::Ping);
        }
        Status::Paused(PauseUntil::Ping) => {}
        _ => step.change_status(ping, now),
    }
    step.record(ping, now);
    step.effects
}

/// The transitions time brings by `now` (monitors spec A.4.2): a pause window ending,
/// runs overrunning `max_runtime`, `late` at the due time, `down` after `grace`, and
/// `notif_repeat` reminders while down.
pub fn advance(
    state: &mut MonitorState,
    rules: &MonitorRules,
    now: Timestamp,
) -> Vec<MonitorEffect> {
    let mut step = Step::new(state, rules);
    step.advance(now);
    step.effects
}

/// Pauses the monitor at `now` until `until` (monitors spec A.4.4); pausing a paused
/// monitor changes its `until`. The due time is dropped and any outage ends; open runs
/// stay open but cannot time out while paused. A time that is not after `now` resumes
/// at once (the API refuses one).
pub fn pause(
    state: &mut MonitorState,
    rules: &MonitorRules,
    until: PauseUntil,
    now: Timestamp,
) -> Vec<MonitorEffect> {
    let mut step = Step::new(state, rules);
    step.advance(now);
    let was_paused = step.state.status.is_paused();
    step.state.status = Status::Paused(until);
    let message = if was_paused {
        format!("pause changed: paused {}", until_words(until))
    } else {
        step.state.since = now;
        step.state.due = None;
        format!("paused {}", until_words(until))
    };
    step.event(EventKind::Paused, None, message);
    step.advance(now);
    step.effects
}

/// Resumes a paused monitor at `now` through the API: `up` with the due time one
/// cadence from now when it has ever checked in, else `new`. Not paused: nothing.
pub fn resume(
    state: &mut MonitorState,
    rules: &MonitorRules,
    now: Timestamp,
) -> Vec<MonitorEffect> {
    let mut step = Step::new(state, rules);
    step.advance(now);
    if step.state.status.is_paused() {
        step.resume_at(now, ResumedBy::Api);
    }
    step.effects
}

/// The earliest time at which [`advance`] would change something: the due time
/// (`late`, or `down` when `grace` is zero), `due + grace` when late, the first open
/// run's `started + max_runtime`, the next `notif_repeat` reminder, or the end of a
/// pause window. `None` when time alone changes nothing.
pub fn next_deadline(state: &MonitorState, rules: &MonitorRules) -> Option<Timestamp> {
    let deadline = match state.status {
        Status::Paused(PauseUntil::Time(end)) => Some(end),
        Status::Paused(_) => None,
        status => {
            let run = state
                .runs
                .iter()
                .filter_map(|run| run_deadline(run.started, rules))
                .min();
            let due = match status {
                Status::Up if state.runs.is_empty() => state.due,
                Status::Late { .. } if state.runs.is_empty() => {
                    state.due.map(|due| later(due, rules.grace))
                }
                _ => None,
            };
            let reminder = match (status, reminder_every(rules)) {
                (Status::Down(outage), Some(repeat)) => Some(later(outage.last_notice, repeat)),
                _ => None,
            };
            [run, due, reminder].into_iter().flatten().min()
        }
    };
    deadline.filter(|at| *at != Timestamp::MAX)
}

/// The restart rule (monitors spec A.7): karajo was last known alive at `last_alive`
/// (*L*, `None` when there is no liveness mark) and starts listening at `start` (*S*).
/// Without a mark, *L* is the newest time the state itself records (its `since`, last
/// check-in or a run's start): the spec's "no mark, no history" holds for a monitor
/// without a state, but one with a state was kept by a karajo that died before its
/// first mark (a kill -9 in its first moments), and a deadline that fell while it was
/// down must not become a false `down` then either.
/// What fell due while it was alive is evaluated as usual (a crash lost it); a
/// deadline that fell in (*L*, *S*] is not evidence against the client, because it
/// could not check in: an `up` monitor's due time is credited as if a check-in had come
/// at *S*, a `late` one goes down at *S* + `grace`, a run whose `max_runtime` ended in
/// the gap is closed as `canceled`, and a pause window that ended in the gap ends at
/// *S*. Each credit is a `monitor.credit` event. `down`, `new` and other pauses are left
/// as they are, and a `down` monitor is not notified again (its reminders go on).
pub fn restart(
    state: &mut MonitorState,
    rules: &MonitorRules,
    last_alive: Option<Timestamp>,
    start: Timestamp,
) -> Vec<MonitorEffect> {
    let last_alive = last_alive.or_else(|| newest_record(state));
    let mut step = Step::new(state, rules);
    if let Some(alive) = last_alive.filter(|alive| *alive < start) {
        step.advance(alive);
        step.credit_gap(alive, start);
    }
    step.advance(start);
    step.effects
}

/// After a reload changed the monitor's rules: a due time that came from the old
/// `period` or `schedule` is recomputed from the last check-in (one that came from a
/// `next_in` stays), a `late` monitor whose new due time is still ahead is `up` again,
/// then time is evaluated at `now`.
pub fn reconfigure(
    state: &mut MonitorState,
    rules: &MonitorRules,
    now: Timestamp,
) -> Vec<MonitorEffect> {
    let mut step = Step::new(state, rules);
    let follows_cadence = step.state.last_next_in.is_none();
    if let (Status::Up | Status::Late { .. }, Some(last), true) =
        (step.state.status, step.state.last_ping, follows_cadence)
    {
        let due = due_after(rules, last, None);
        step.state.due = Some(due);
        if let Status::Late { notified } = step.state.status
            && now < due
        {
            step.state.status = Status::Up;
            step.state.since = now;
            let message = format!("up: the new cadence makes the next check-in due at {due}");
            step.event(EventKind::Up, None, message);
            if notified {
                step.notify_up(Status::Late { notified }, "UP (no longer late)".to_string());
            }
        }
    }
    step.advance(now);
    step.effects
}

/// The newest moment `state` records (karajo was alive then: it wrote it), as *L* of
/// the restart rule when there is no liveness mark.
fn newest_record(state: &MonitorState) -> Option<Timestamp> {
    let runs = state.runs.iter().map(|run| run.started);
    [Some(state.since), state.last_ping]
        .into_iter()
        .flatten()
        .chain(runs)
        .max()
}

/// `max_runtime`, where a zero is no limit as in the configuration.
fn run_limit(rules: &MonitorRules) -> Option<Duration> {
    rules.max_runtime.filter(|limit| !limit.is_zero())
}

/// `notif_repeat`, where a zero is never as in the configuration.
fn reminder_every(rules: &MonitorRules) -> Option<Duration> {
    rules.notif_repeat.filter(|every| !every.is_zero())
}

/// When a run started at `started` times out; `None` without a `max_runtime`.
fn run_deadline(started: Timestamp, rules: &MonitorRules) -> Option<Timestamp> {
    run_limit(rules).map(|limit| later(started, limit))
}

/// `until the next success check-in`, `until resumed` or `until <time>`.
fn until_words(until: PauseUntil) -> String {
    match until {
        PauseUntil::Ping => "until the next success check-in".to_string(),
        PauseUntil::Resume => "until resumed".to_string(),
        PauseUntil::Time(at) => format!("until {at}"),
    }
}

/// `02:00:01Z`: a time of day in UTC, for subjects, rounded to the second (halves
/// up) as the house rounds "now" and the log line prefixes, so a subject names the
/// second its log shows: a check-in at 02:00:00.6 is `02:00:01Z` in both.
fn clock(at: Timestamp) -> String {
    let rounded = at
        .round(jiff::TimestampRound::new().smallest(jiff::Unit::Second))
        .unwrap_or(at);
    rounded.strftime("%H:%M:%SZ").to_string()
}

/// `02:00:01Z`, or `never` for a monitor that never checked in.
fn clock_or_never(at: Option<Timestamp>) -> String {
    at.map_or_else(|| "never".to_string(), clock)
}

/// What resumed a paused monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResumedBy {
    Api,
    WindowEnd,
    Ping,
}

/// One call's work: the state being changed, the rules it follows, and the effects
/// gathered so far.
struct Step<'a> {
    state: &'a mut MonitorState,
    rules: &'a MonitorRules,
    effects: Vec<MonitorEffect>,
}

impl<'a> Step<'a> {
    fn new(state: &'a mut MonitorState, rules: &'a MonitorRules) -> Self {
        Self {
            state,
            rules,
            effects: Vec::new(),
        }
    }

    fn event(&mut self, kind: EventKind, reason: Option<DownReason>, message: String) {
        let event = MonitorEvent {
            kind,
            reason,
            message,
        };
        self.effects.push(MonitorEffect::Event(event));
    }

    /// Queues a notification when `notifs` names anyone.
    fn notify(&mut self, notifs: &[String], notice: MonitorNotice) {
        if !notifs.is_empty() {
            self.effects.push(MonitorEffect::Notify(MonitorNotice {
                notifs: notifs.to_vec(),
                ..notice
            }));
        }
    }

    fn notify_up(&mut self, previous_status: Status, summary: String) {
        let notice = MonitorNotice {
            event: NoticeEvent::Up,
            notifs: Vec::new(),
            previous_status,
            reason: None,
            exit_code: None,
            summary,
            reminder: false,
        };
        self.notify(&self.rules.notif_on_up, notice);
    }

    // ---- time ----

    fn advance(&mut self, now: Timestamp) {
        if let Status::Paused(PauseUntil::Time(end)) = self.state.status
            && end <= now
        {
            self.resume_at(end, ResumedBy::WindowEnd);
        }
        if self.state.status.is_paused() {
            return;
        }
        self.time_out_runs(now);
        if self.state.runs.is_empty() {
            self.pass_due_time(now);
        }
        self.remind(now);
    }

    /// Closes every run past `started + max_runtime` as failed; the first deadline
    /// takes the monitor down (`run_timeout`) unless it is down already.
    fn time_out_runs(&mut self, now: Timestamp) {
        let Some(max_runtime) = run_limit(self.rules) else {
            return;
        };
        let first = self
            .state
            .runs
            .iter()
            .filter(|run| later(run.started, max_runtime) <= now)
            .min_by_key(|run| run.started)
            .cloned();
        let Some(first) = first else {
            return;
        };
        let note = format!(
            "!!! no end signal within max_runtime {}",
            format_short(max_runtime)
        );
        while let Some(index) = self
            .state
            .runs
            .iter()
            .position(|run| later(run.started, max_runtime) <= now)
        {
            let deadline = later(self.state.runs[index].started, max_runtime);
            self.close_run(
                index,
                RunStatus::Failed,
                ClosedBy::Note(note.clone()),
                deadline,
            );
        }
        let rid = first
            .rid
            .as_ref()
            .map(|rid| format!(" (rid {rid})"))
            .unwrap_or_default();
        let cause = DownCause {
            reason: DownReason::RunTimeout,
            exit_code: None,
            detail: format!(
                "the run started at {}{rid} got no end signal within max_runtime {}",
                first.started,
                format_short(max_runtime)
            ),
        };
        self.go_down(cause, later(first.started, max_runtime));
    }

    /// `up` → `late` at the due time, and `up`/`late` → `down` at `due + grace`.
    fn pass_due_time(&mut self, now: Timestamp) {
        let Some(due) = self.state.due else {
            return;
        };
        let down_at = later(due, self.rules.grace);
        match self.state.status {
            Status::Up | Status::Late { .. } if down_at <= now => {
                let detail = format!(
                    "no check-in since {} (due {}, grace {})",
                    self.last_ping_text(),
                    clock(due),
                    format_short(self.rules.grace)
                );
                let cause = DownCause {
                    reason: DownReason::Timeout,
                    exit_code: None,
                    detail,
                };
                self.go_down(cause, down_at);
            }
            Status::Up if due <= now => self.go_late(due, down_at),
            _ => {}
        }
    }

    /// One `notif_repeat` reminder when one (or more) fell due by `now`.
    fn remind(&mut self, now: Timestamp) {
        let (Status::Down(outage), Some(repeat)) = (self.state.status, reminder_every(self.rules))
        else {
            return;
        };
        if later(outage.last_notice, repeat) > now {
            return;
        }
        // One reminder for however many fell due; the next stays on the same rhythm.
        let missed = elapsed(outage.last_notice, now).as_nanos() / repeat.as_nanos();
        let last_notice = u32::try_from(missed)
            .ok()
            .and_then(|n| repeat.checked_mul(n))
            .map_or(now, |d| later(outage.last_notice, d));
        self.state.status = Status::Down(Outage {
            last_notice,
            ..outage
        });
        let summary = format!(
            "STILL DOWN after {} ({})",
            format_short(elapsed(self.state.since, now)),
            self.down_summary(outage.reason, outage.exit_code)
        );
        let notice = MonitorNotice {
            event: NoticeEvent::Down,
            notifs: Vec::new(),
            previous_status: self.state.status,
            reason: Some(outage.reason),
            exit_code: outage.exit_code,
            summary,
            reminder: true,
        };
        self.notify(&self.rules.notif_on_down, notice);
    }

    // ---- transitions ----

    /// → `down` at `at`, unless already down (then nothing: the ping is still logged).
    fn go_down(&mut self, cause: DownCause, at: Timestamp) {
        let previous = self.state.status;
        if matches!(previous, Status::Down(_)) {
            return;
        }
        self.state.status = Status::Down(Outage {
            reason: cause.reason,
            exit_code: cause.exit_code,
            last_notice: at,
        });
        self.state.since = at;
        let message = format!("down: {}", cause.detail);
        self.event(EventKind::Down, Some(cause.reason), message);
        let notice = MonitorNotice {
            event: NoticeEvent::Down,
            notifs: Vec::new(),
            previous_status: previous,
            reason: Some(cause.reason),
            exit_code: cause.exit_code,
            summary: format!(
                "DOWN ({})",
                self.down_summary(cause.reason, cause.exit_code)
            ),
            reminder: false,
        };
        self.notify(&self.rules.notif_on_down, notice);
    }

    /// `up` → `late` at `due`.
    fn go_late(&mut self, due: Timestamp, down_at: Timestamp) {
        let previous = self.state.status;
        let notified = !self.rules.notif_on_late.is_empty();
        self.state.status = Status::Late { notified };
        self.state.since = due;
        let message = format!(
            "late: no check-in since {} (due {}, down at {})",
            self.last_ping_text(),
            clock(due),
            clock(down_at)
        );
        self.event(EventKind::Late, None, message);
        let notice = MonitorNotice {
            event: NoticeEvent::Late,
            notifs: Vec::new(),
            previous_status: previous,
            reason: None,
            exit_code: None,
            summary: format!(
                "LATE (no check-in since {})",
                clock_or_never(self.state.last_ping)
            ),
            reminder: false,
        };
        self.notify(&self.rules.notif_on_late, notice);
    }

    /// The status change a ping brings (not paused): a success is `up` from any
    /// status, a `start` ends `late`, a failure is `down`.
    fn change_status(&mut self, ping: &Ping, now: Timestamp) {
        let signal = ping.signal;
        if signal.is_failure() {
            let detail = match signal.exit_code() {
                Some(code) => format!("exit status {code}"),
                None => "fail check-in".to_string(),
            };
            let cause = DownCause {
                reason: DownReason::Fail,
                exit_code: signal.exit_code(),
                detail,
            };
            self.go_down(cause, now);
        } else if signal.is_success()
            || (signal == Signal::Start && matches!(self.state.status, Status::Late { .. }))
        {
            self.go_up(signal, now);
        }
    }

    /// → `up` at `at` from `new`, `late` or `down`.
    fn go_up(&mut self, signal: Signal, at: Timestamp) {
        let previous = self.state.status;
        match previous {
            Status::Up | Status::Paused(_) => return,
            Status::New => {
                let message = format!("up: first check-in ({})", signal.as_str());
                self.event(EventKind::First, None, message);
            }
            Status::Late { notified } => {
                let due = self.state.due.unwrap_or(at);
                let late_by = format_short(elapsed(due, at));
                let message = format!(
                    "up: {} check-in {late_by} after the due time {}",
                    signal.as_str(),
                    clock(due)
                );
                self.event(EventKind::Up, None, message);
                if notified {
                    self.notify_up(previous, format!("UP ({late_by} late)"));
                }
            }
            Status::Down(_) => {
                let outage = format_short(elapsed(self.state.since, at));
                let message = format!("up after {outage} down ({} check-in)", signal.as_str());
                self.event(EventKind::Up, None, message);
                self.notify_up(previous, format!("UP after {outage}"));
            }
        }
        self.state.status = Status::Up;
        self.state.since = at;
    }

    /// `paused` → `up` or `new` at `at`. Runs whose `max_runtime` passed during the
    /// pause are closed as `canceled`. Resumed by a ping, the ping sets the due time.
    fn resume_at(&mut self, at: Timestamp, by: ResumedBy) {
        let note = "??? outcome unknown: the monitor was paused at the run's deadline";
        self.cancel_runs(note, |deadline| deadline <= at);
        self.state.since = at;
        let how = match by {
            ResumedBy::Api => "resumed through the API",
            ResumedBy::WindowEnd => "resumed at the end of the pause window",
            ResumedBy::Ping => "resumed by a success check-in",
        };
        let message = if by == ResumedBy::Ping {
            self.state.status = Status::Up;
            how.to_string()
        } else if self.state.last_ping.is_some() {
            let due = due_after(self.rules, at, self.state.last_next_in);
            self.state.status = Status::Up;
            self.state.due = Some(due);
            format!("{how}; next check-in due at {due}")
        } else {
            self.state.status = Status::New;
            self.state.due = None;
            format!("{how}; no check-in yet, so it is new")
        };
        self.event(EventKind::Resumed, None, message);
    }

    /// The gap (`alive`, `start`] of the restart rule; see [`restart`].
    fn credit_gap(&mut self, alive: Timestamp, start: Timestamp) {
        if let Status::Paused(PauseUntil::Time(end)) = self.state.status
            && end <= start
        {
            self.resume_at(start, ResumedBy::WindowEnd);
        }
        if self.state.status.is_paused() {
            return;
        }
        let note = "??? outcome unknown: karajo was not running at the run's deadline";
        let canceled = self.cancel_runs(note, |deadline| alive < deadline && deadline <= start);
        if !self.state.runs.is_empty() {
            return;
        }
        let Some(due) = self.state.due else {
            return;
        };
        let window = format!("while karajo was not running (from {alive} to {start})");
        match self.state.status {
            Status::Up if due <= start && (alive < due || canceled) => {
                let credited = due_after(self.rules, start, self.state.last_next_in);
                self.state.due = Some(credited);
                let message = format!(
                    "credit: the check-in due at {due} fell {window}; now due at {credited}"
                );
                self.event(EventKind::Credit, None, message);
            }
            Status::Late { .. } => {
                let down_at = later(due, self.rules.grace);
                if alive < down_at && down_at <= start {
                    self.state.due = Some(start);
                    let message = format!(
                        "credit: the down deadline {down_at} fell {window}; down at {} \
                         without a check-in",
                        later(start, self.rules.grace)
                    );
                    self.event(EventKind::Credit, None, message);
                }
            }
            _ => {}
        }
    }

    // ---- runs and logs ----

    /// The runs, logs and due time a ping brings.
    fn record(&mut self, ping: &Ping, now: Timestamp) {
        let signal = ping.signal;
        match signal {
            Signal::Log => {
                let effect = match self.run_for(ping.rid.as_ref()) {
                    Some(index) => MonitorEffect::AppendRunLog {
                        counter: self.state.runs[index].counter,
                    },
                    None => MonitorEffect::StrayLog,
                };
                self.effects.push(effect);
                return;
            }
            Signal::Start => self.open_run(ping.rid.clone(), now),
            _ => {
                let status = if signal.is_success() {
                    RunStatus::Success
                } else {
                    RunStatus::Failed
                };
                match self.run_for(ping.rid.as_ref()) {
                    Some(index) => self.close_run(index, status, ClosedBy::Ping, now),
                    None if signal.is_success() && !self.rules.log_success => {}
                    None => {
                        let counter = self.next_counter();
                        self.effects
                            .push(MonitorEffect::WriteCheckInLog { counter, status });
                    }
                }
            }
        }
        self.state.last_ping = Some(now);
        self.state.last_ping_kind = Some(signal);
        self.state.last_next_in = ping.next_in;
        self.state.due = match self.state.status {
            Status::Paused(_) => None,
            _ => Some(due_after(self.rules, now, ping.next_in)),
        };
    }

    /// Opens a run; a run already open with the same `rid` is canceled, and beyond
    /// [`MAX_OPEN_RUNS`] the oldest is.
    fn open_run(&mut self, rid: Option<RunId>, now: Timestamp) {
        if let Some(rid) = &rid
            && let Some(index) = self
                .state
                .runs
                .iter()
                .position(|r| r.rid.as_ref() == Some(rid))
        {
            let note = format!("??? canceled: a new start came with the same rid {rid}");
            self.close_run(index, RunStatus::Canceled, ClosedBy::Note(note), now);
        }
        let counter = self.next_counter();
        self.state.runs.push(super::state::OpenRun {
            rid,
            started: now,
            counter,
        });
        self.effects.push(MonitorEffect::OpenRunLog { counter });
        while self.state.runs.len() > MAX_OPEN_RUNS {
            let note = format!(
                "??? canceled: more than {MAX_OPEN_RUNS} runs were open, so the oldest is \
                 no longer followed"
            );
            self.close_run(0, RunStatus::Canceled, ClosedBy::Note(note), now);
        }
    }

    /// The open run a `rid` names; without one, the newest open run without a `rid`,
    /// else the newest open run. A `rid` that is not open names none.
    fn run_for(&self, rid: Option<&RunId>) -> Option<usize> {
        let runs = &self.state.runs;
        match rid {
            Some(rid) => runs.iter().rposition(|run| run.rid.as_ref() == Some(rid)),
            None => runs
                .iter()
                .rposition(|run| run.rid.is_none())
                .or_else(|| runs.len().checked_sub(1)),
        }
    }

    /// Closes run `index` at `at`; a close by the end check-in sets `last_duration`.
    fn close_run(&mut self, index: usize, status: RunStatus, closed_by: ClosedBy, at: Timestamp) {
        let run = self.state.runs.remove(index);
        let took = elapsed(run.started, at);
        if closed_by == ClosedBy::Ping {
            self.state.last_duration = Some(took);
        }
        self.effects.push(MonitorEffect::CloseRunLog {
            counter: run.counter,
            status,
            closed_by,
            took,
        });
    }

    /// Cancels the runs whose deadline `matches`, with `note`; whether any was.
    fn cancel_runs(&mut self, note: &str, matches: impl Fn(Timestamp) -> bool) -> bool {
        let mut canceled = false;
        while let Some(index) = self
            .state
            .runs
            .iter()
            .position(|run| run_deadline(run.started, self.rules).is_some_and(&matches))
        {
            let deadline = run_deadline(self.state.runs[index].started, self.rules);
            let at = deadline.unwrap_or(self.state.runs[index].started);
            let closed_by = ClosedBy::Note(note.to_string());
            self.close_run(index, RunStatus::Canceled, closed_by, at);
            canceled = true;
        }
        canceled
    }

    fn next_counter(&mut self) -> u64 {
        self.state.counter += 1;
        self.state.counter
    }

    // ---- words ----

    fn last_ping_text(&self) -> String {
        self.state
            .last_ping
            .map_or_else(|| "never".to_string(), |at| at.to_string())
    }

    /// The parenthesis of a down subject: `no check-in since 02:00:01Z`, `fail`,
    /// `exit status 3` or `no end signal within max_runtime 2h`.
    fn down_summary(&self, reason: DownReason, exit_code: Option<u8>) -> String {
        match (reason, exit_code) {
            (DownReason::Timeout, _) => {
                format!("no check-in since {}", clock_or_never(self.state.last_ping))
            }
            (DownReason::Fail, Some(code)) => format!("exit status {code}"),
            (DownReason::Fail, None) => "fail".to_string(),
            (DownReason::RunTimeout, _) => match run_limit(self.rules) {
                Some(max) => format!("no end signal within max_runtime {}", format_short(max)),
                None => "no end signal".to_string(),
            },
        }
    }
}

/// Why a monitor goes down, with the words of its event.
struct DownCause {
    reason: DownReason,
    exit_code: Option<u8>,
    detail: String,
}
