//! Table tests of the service room: every row of monitors spec B.5.4, the policy table
//! of B.5.2, the back-off of B.5.3 and its example, start-up after a crash (B.7), and
//! the timings the Services rows of C.4 observe (SVC-03, -04, -06, -07, -12, -14, -16,
//! -17). No sleeping, no processes, no files: every time is written out, and a small
//! scripted supervisor ([`Sim`]) stands in for the real one.

use std::collections::VecDeque;
use std::time::Duration;

use jiff::Timestamp;

use super::*;
use crate::config::model::{ReadyRule, RestartPolicy, ServicePolicy, ServiceSignal};

// ---- helpers ----

/// 2026-11-22T10:00:00Z plus `ms` milliseconds.
fn at(ms: u64) -> Timestamp {
    let start: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
    start.checked_add(Duration::from_millis(ms)).unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The defaults of monitors spec B.2, with `ops` told of everything.
fn defaults() -> ServicePolicy {
    ServicePolicy {
        restart: RestartPolicy::OnFailure,
        success_exit_codes: vec![0],
        restart_delay: secs(1),
        restart_delay_max: secs(60),
        backoff_reset: secs(60),
        start_retries: 3,
        ready: ReadyRule::Delay,
        start_seconds: secs(1),
        start_timeout: secs(30),
        max_runtime: None,
        stop_signal: ServiceSignal::Term,
        stop_timeout: secs(10),
        ping_timeout: None,
        notif_on_failed: vec!["ops".into()],
        notif_on_fatal: vec!["ops".into()],
        notif_on_recover: vec!["ops".into()],
    }
}

/// The acceptance tests' services: `restart_delay = 500ms` (monitors spec C.4).
fn svc_policy() -> ServicePolicy {
    ServicePolicy {
        restart_delay: ms(500),
        ..defaults()
    }
}

/// The instance the supervisor reports for spawn number `n`.
fn instance(n: u32) -> SpawnedInstance {
    SpawnedInstance {
        instance: format!("inst-{n}"),
        token: InstanceToken::new(format!("token-{n}")),
        pid: 4000 + n,
        pgid: 4000 + n,
        starttime: 100 + u64::from(n),
        boot_id: "boot-a".into(),
        counter: u64::from(n),
        watch: Watch::Child,
        keyvalue_clear: true,
    }
}

/// One service driven by hand: its state, policy, clock and spawn count.
struct Svc {
    state: ServiceState,
    policy: ServicePolicy,
    now: Timestamp,
    spawns: u32,
}

impl Svc {
    /// A service with no state file, enabled or not by the configuration; not booted.
    fn new(policy: ServicePolicy, enabled: bool) -> Self {
        Self {
            state: ServiceState::restored(None, enabled),
            policy,
            now: at(0),
            spawns: 0,
        }
    }

    fn send_at(&mut self, input: Input, ms: u64) -> Vec<ServiceEffect> {
        self.now = at(ms);
        self.send(input)
    }

    fn send(&mut self, input: Input) -> Vec<ServiceEffect> {
        step(&mut self.state, &self.policy, input, self.now)
    }

    fn boot(&mut self) -> Vec<ServiceEffect> {
        self.send(Input::Boot {
            found: Leftover::Nothing,
        })
    }

    /// The supervisor reports the next instance.
    fn spawned(&mut self) -> Vec<ServiceEffect> {
        self.spawns += 1;
        self.send(Input::Spawned(instance(self.spawns)))
    }

    fn exit(&mut self, code: i32) -> Vec<ServiceEffect> {
        self.send(Input::Exited {
            exit_code: Some(code),
            signal: None,
            core_dumped: false,
        })
    }

    fn killed_by(&mut self, signal: &str) -> Vec<ServiceEffect> {
        self.send(Input::Exited {
            exit_code: None,
            signal: Some(signal.into()),
            core_dumped: false,
        })
    }

    fn tick_at(&mut self, ms: u64) -> Vec<ServiceEffect> {
        self.send_at(Input::Tick, ms)
    }

    fn control(&mut self, control: Control) -> Vec<ServiceEffect> {
        self.send(Input::Control {
            control,
            cas: None,
            by: "127.0.0.1".into(),
        })
    }

    fn status(&self) -> &'static str {
        self.state.status.as_str()
    }

    fn deadline(&self) -> Option<Timestamp> {
        next_deadline(&self.state, &self.policy)
    }
}

// The statuses of the B.5.4 table, each reached through the machine itself. The
// clock stands where the last input left it.

/// `disabled`: `disabled = true` in the configuration, booted at 0.
fn disabled() -> Svc {
    let mut svc = Svc::new(svc_policy(), false);
    assert!(svc.boot().is_empty());
    svc
}

/// `starting`: booted at 0, instance 1 spawned at 0.
fn starting() -> Svc {
    let mut svc = Svc::new(svc_policy(), true);
    svc.boot();
    svc.spawned();
    assert_eq!(svc.status(), "starting");
    svc
}

/// `running`: ready at 1 s.
fn running() -> Svc {
    let mut svc = starting();
    svc.tick_at(1000);
    assert_eq!(svc.status(), "running");
    svc
}

/// `backoff`: instance 1 failed at 2 s, restart at 2.5 s.
fn backoff() -> Svc {
    let mut svc = running();
    svc.now = at(2000);
    svc.exit(1);
    assert_eq!(svc.status(), "backoff");
    svc
}

/// `stopping`: disabled at 2 s.
fn stopping() -> Svc {
    let mut svc = running();
    svc.now = at(2000);
    svc.control(Control::Disable);
    assert_eq!(svc.status(), "stopping");
    svc
}

/// `stopped`: instance 1 ended cleanly at 2 s under `on-failure`.
fn stopped() -> Svc {
    let mut svc = running();
    svc.now = at(2000);
    svc.exit(0);
    assert_eq!(svc.status(), "stopped");
    svc
}

/// `fatal`: instance 1 failed at 2 s under `restart = never`.
fn fatal() -> Svc {
    let mut svc = running();
    svc.policy.restart = RestartPolicy::Never;
    svc.now = at(2000);
    svc.exit(1);
    assert_eq!(svc.status(), "fatal");
    svc
}

/// Effects as short words, so tables read like the spec.
fn describe(effects: &[ServiceEffect]) -> Vec<String> {
    effects.iter().map(word).collect()
}

fn word(effect: &ServiceEffect) -> String {
    match effect {
        ServiceEffect::SaveState { durable: true } => "save".into(),
        ServiceEffect::SaveState { durable: false } => "save lazily".into(),
        ServiceEffect::Spawn {
            attempt,
            after_backoff: None,
        } => format!("spawn #{attempt}"),
        ServiceEffect::Spawn {
            attempt,
            after_backoff: Some(delay),
        } => format!("spawn #{attempt} after {delay:?}"),
        ServiceEffect::Stop { signal, reason, .. } => {
            format!("stop {} ({})", signal.as_str(), reason.as_str())
        }
        ServiceEffect::Kill => "kill".into(),
        ServiceEffect::SendSignal(signal) => format!("signal {}", signal.as_str()),
        ServiceEffect::LogLine(line) => {
            let first = line.split_whitespace().nth(1).unwrap_or_default();
            let first = first.trim_end_matches(':');
            format!("log {first}")
        }
        ServiceEffect::CloseLog(status) => format!("close {}", status.as_str()),
        ServiceEffect::CloseLeftoverLog {
            counter, status, ..
        } => format!("close leftover #{counter} {}", status.as_str()),
        ServiceEffect::History(entry) => format!("history {}", entry.reason.as_str()),
        ServiceEffect::Event(event) => event.kind.as_str().into(),
        ServiceEffect::Notify(notice) => format!("notify {}", notice.event.as_str()),
        ServiceEffect::Reply(Reply::Done { .. }) => "reply done".into(),
        ServiceEffect::Reply(Reply::CasMismatch { current }) => {
            format!("reply cas mismatch {current}")
        }
        ServiceEffect::Reply(Reply::NotRunning) => "reply not running".into(),
        ServiceEffect::Reply(Reply::Stale { instance }) => format!("reply stale {instance}"),
        ServiceEffect::Reply(Reply::BadRequest(_)) => "reply bad request".into(),
    }
}

fn log_lines(effects: &[ServiceEffect]) -> Vec<&str> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            ServiceEffect::LogLine(line) => Some(line.as_str()),
            _ => None,
        })
        .collect()
}

fn histories(effects: &[ServiceEffect]) -> Vec<&HistoryEntry> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            ServiceEffect::History(entry) => Some(entry),
            _ => None,
        })
        .collect()
}

fn notices(effects: &[ServiceEffect]) -> Vec<&ServiceNotice> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            ServiceEffect::Notify(notice) => Some(notice),
            _ => None,
        })
        .collect()
}

fn events(effects: &[ServiceEffect]) -> Vec<&ServiceEvent> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            ServiceEffect::Event(event) => Some(event),
            _ => None,
        })
        .collect()
}

// ---- a scripted supervisor ----

/// What a scripted instance does.
#[derive(Debug, Clone, Copy)]
enum Script {
    /// Exits with `code` this long after its spawn.
    Exit { after: u64, code: i32 },
    /// Runs until stopped.
    Forever,
}

/// The scheduler and the supervisor in miniature: it sleeps until the machine's next
/// deadline or the scripted instance's exit, whichever comes first, performs `Spawn`
/// (the spawn succeeds at once), `Stop` (the instance ends by the signal
/// `stop_delay` later) and `Kill` (at once), and keeps everything that happened.
struct Sim {
    svc: Svc,
    script: fn(u32) -> Script,
    stop_delay: u64,
    exit: Option<(Timestamp, Input)>,
    pending: VecDeque<Input>,
    spawns: Vec<Timestamp>,
    statuses: Vec<(Timestamp, &'static str)>,
    effects: Vec<(Timestamp, ServiceEffect)>,
}

impl Sim {
    fn new(policy: ServicePolicy, script: fn(u32) -> Script) -> Self {
        Self {
            svc: Svc::new(policy, true),
            script,
            stop_delay: 100,
            exit: None,
            pending: VecDeque::new(),
            spawns: Vec::new(),
            statuses: Vec::new(),
            effects: Vec::new(),
        }
    }

    /// Boots at 0 and runs until `end_ms`.
    fn run(policy: ServicePolicy, script: fn(u32) -> Script, end_ms: u64) -> Self {
        let mut sim = Self::new(policy, script);
        sim.feed(
            Input::Boot {
                found: Leftover::Nothing,
            },
            at(0),
        );
        sim.run_until(end_ms);
        sim
    }

    fn run_until(&mut self, end_ms: u64) {
        let end = at(end_ms);
        loop {
            let deadline = self.svc.deadline();
            let exit = self.exit.as_ref().map(|(when, _)| *when);
            let next = match (deadline, exit) {
                (Some(d), Some(e)) => d.min(e),
                (d, e) => match d.or(e) {
                    Some(next) => next,
                    None => return,
                },
            };
            if next > end {
                return;
            }
            if exit == Some(next) {
                let (_, input) = self.exit.take().unwrap();
                self.feed(input, next);
            } else {
                self.feed(Input::Tick, next);
            }
        }
    }

    fn feed(&mut self, input: Input, now: Timestamp) {
        self.pending.push_back(input);
        while let Some(input) = self.pending.pop_front() {
            self.svc.now = now;
            let effects = self.svc.send(input);
            let status = self.svc.status();
            if self.statuses.last().map(|(_, s)| *s) != Some(status) {
                self.statuses.push((now, status));
            }
            for effect in effects {
                self.perform(&effect, now);
                self.effects.push((now, effect));
            }
        }
    }

    fn perform(&mut self, effect: &ServiceEffect, now: Timestamp) {
        let ended_by = |signal: &str| Input::Exited {
            exit_code: None,
            signal: Some(signal.to_string()),
            core_dumped: false,
        };
        match effect {
            ServiceEffect::Spawn { .. } => {
                self.spawns.push(now);
                self.svc.spawns += 1;
                let n = self.svc.spawns;
                self.pending.push_back(Input::Spawned(instance(n)));
                self.exit = match (self.script)(n) {
                    Script::Exit { after, code } => Some((
                        now.checked_add(ms(after)).unwrap(),
                        Input::Exited {
                            exit_code: Some(code),
                            signal: None,
                            core_dumped: false,
                        },
                    )),
                    Script::Forever => None,
                };
            }
            ServiceEffect::Stop { signal, .. } => {
                let when = now.checked_add(ms(self.stop_delay)).unwrap();
                self.exit = Some((when, ended_by(signal.as_str())));
            }
            ServiceEffect::Kill => self.exit = Some((now, ended_by("KILL"))),
            _ => {}
        }
    }

    /// Spawn times in milliseconds from the start.
    fn spawn_ms(&self) -> Vec<u64> {
        let start = at(0);
        self.spawns
            .iter()
            .map(|t| u64::try_from(t.duration_since(start).as_millis()).unwrap())
            .collect()
    }

    fn count(&self, wanted: &str) -> usize {
        self.effects
            .iter()
            .filter(|(_, e)| word(e) == wanted)
            .count()
    }

    fn first_time_of(&self, status: &str) -> Option<Timestamp> {
        self.statuses
            .iter()
            .find(|(_, s)| *s == status)
            .map(|(when, _)| *when)
    }

    fn ever(&self, status: &str) -> bool {
        self.first_time_of(status).is_some()
    }

    fn all<'a>(&'a self, pick: impl Fn(&'a ServiceEffect) -> Option<String>) -> Vec<String> {
        self.effects.iter().filter_map(|(_, e)| pick(e)).collect()
    }
}

// ---- B.5.4: the transition table, row by row ----

/// Something done to a service in a table row.
type Action = fn(&mut Svc) -> Vec<ServiceEffect>;

type Row = (
    &'static str,
    fn() -> Svc,
    Action,
    &'static str,
    &'static [&'static str],
    (bool, bool),
);

fn enable(svc: &mut Svc) -> Vec<ServiceEffect> {
    svc.control(Control::Enable)
}
fn disable(svc: &mut Svc) -> Vec<ServiceEffect> {
    svc.control(Control::Disable)
}
fn restart(svc: &mut Svc) -> Vec<ServiceEffect> {
    svc.control(Control::Restart)
}
fn run_once_on(svc: &mut Svc) -> Vec<ServiceEffect> {
    svc.control(Control::RunOnce(true))
}
fn run_once_off(svc: &mut Svc) -> Vec<ServiceEffect> {
    svc.control(Control::RunOnce(false))
}
fn shutdown(svc: &mut Svc) -> Vec<ServiceEffect> {
    svc.send(Input::Shutdown {
        leave_running: false,
    })
}

const START_NOW: &[&str] = &["save", "service.control", "spawn #1", "reply done"];
const STOP_FOR_DISABLE: &[&str] = &[
    "save",
    "service.control",
    "log STOP",
    "stop TERM (disable)",
    "reply done",
];
const STOP_FOR_RESTART: &[&str] = &[
    "save",
    "service.control",
    "log STOP",
    "stop TERM (restart)",
    "reply done",
];
const SET_FLAG: &[&str] = &["save", "service.control", "reply done"];
const NO_OP: &[&str] = &["service.control", "reply done"];

/// The rows of monitors spec B.5.4 whose event is a control or time, from every
/// status they name. The columns: row, from, event, to, effects, then `enabled` and
/// `run_once` after it.
#[test]
fn every_control_row_of_the_transition_table() {
    let rows: &[Row] = &[
        (
            "disabled enable",
            disabled,
            enable,
            "starting",
            START_NOW,
            (true, false),
        ),
        (
            "disabled restart",
            disabled,
            restart,
            "starting",
            START_NOW,
            (true, false),
        ),
        (
            "stopped restart",
            stopped,
            restart,
            "starting",
            START_NOW,
            (true, false),
        ),
        (
            "fatal restart",
            fatal,
            restart,
            "starting",
            START_NOW,
            (true, false),
        ),
        (
            "stopped enable",
            stopped,
            enable,
            "starting",
            START_NOW,
            (true, false),
        ),
        (
            "fatal enable",
            fatal,
            enable,
            "starting",
            START_NOW,
            (true, false),
        ),
        (
            "disabled run_once(1)",
            disabled,
            run_once_on,
            "starting",
            START_NOW,
            (false, true),
        ),
        (
            "stopped run_once(1)",
            stopped,
            run_once_on,
            "starting",
            START_NOW,
            (true, true),
        ),
        (
            "fatal run_once(1)",
            fatal,
            run_once_on,
            "starting",
            START_NOW,
            (true, true),
        ),
        (
            "backoff elapsed",
            backoff,
            |svc| svc.tick_at(2500),
            "starting",
            &["save", "spawn #2 after 500ms"],
            (true, false),
        ),
        (
            "starting disable",
            starting,
            disable,
            "stopping",
            STOP_FOR_DISABLE,
            (false, false),
        ),
        (
            "running disable",
            running,
            disable,
            "stopping",
            STOP_FOR_DISABLE,
            (false, false),
        ),
        (
            "starting restart",
            starting,
            restart,
            "stopping",
            STOP_FOR_RESTART,
            (true, false),
        ),
        (
            "running restart",
            running,
            restart,
            "stopping",
            STOP_FOR_RESTART,
            (true, false),
        ),
        (
            "backoff disable",
            backoff,
            disable,
            "disabled",
            SET_FLAG,
            (false, false),
        ),
        (
            "backoff restart",
            backoff,
            restart,
            "starting",
            START_NOW,
            (true, false),
        ),
        (
            "stopping stop_timeout",
            stopping,
            |svc| svc.tick_at(12_000),
            "stopping",
            &["log KILL", "kill"],
            (false, false),
        ),
        (
            "running shutdown",
            running,
            shutdown,
            "stopping",
            &["save", "log STOP", "stop TERM (shutdown)"],
            (true, false),
        ),
        (
            "starting shutdown",
            starting,
            shutdown,
            "stopping",
            &["save", "log STOP", "stop TERM (shutdown)"],
            (true, false),
        ),
        (
            "running enable",
            running,
            enable,
            "running",
            NO_OP,
            (true, false),
        ),
        (
            "starting enable",
            starting,
            enable,
            "starting",
            NO_OP,
            (true, false),
        ),
        (
            "running run_once(1)",
            running,
            run_once_on,
            "running",
            SET_FLAG,
            (true, true),
        ),
        (
            "starting run_once(1)",
            starting,
            run_once_on,
            "starting",
            SET_FLAG,
            (true, true),
        ),
        (
            "disabled run_once(0)",
            disabled,
            run_once_off,
            "disabled",
            NO_OP,
            (false, false),
        ),
        (
            "running run_once(0)",
            running,
            run_once_off,
            "running",
            NO_OP,
            (true, false),
        ),
        (
            "backoff run_once(0)",
            backoff,
            run_once_off,
            "backoff",
            NO_OP,
            (true, false),
        ),
        (
            "fatal run_once(0)",
            fatal,
            run_once_off,
            "fatal",
            NO_OP,
            (true, false),
        ),
        (
            "stopped run_once(0)",
            stopped,
            run_once_off,
            "stopped",
            NO_OP,
            (true, false),
        ),
        (
            "starting run_once(0)",
            starting,
            run_once_off,
            "starting",
            NO_OP,
            (true, false),
        ),
        (
            "stopping run_once(0)",
            stopping,
            run_once_off,
            "stopping",
            NO_OP,
            (false, false),
        ),
    ];
    for (name, from, event, to, effects, (enabled, run_once)) in rows {
        let mut svc = from();
        let got = event(&mut svc);
        assert_eq!(describe(&got), *effects, "{name}");
        assert_eq!(svc.status(), *to, "{name}");
        assert_eq!(
            (svc.state.saved.enabled, svc.state.saved.run_once),
            (*enabled, *run_once),
            "{name}"
        );
    }
}

#[test]
fn run_once_off_clears_a_set_flag_and_nothing_else() {
    let mut svc = running();
    svc.control(Control::RunOnce(true));
    let cas = svc.state.cas();
    let got = svc.control(Control::RunOnce(false));
    assert_eq!(describe(&got), SET_FLAG);
    assert_eq!((svc.status(), svc.state.saved.run_once), ("running", false));
    assert_eq!(svc.state.cas(), cas + 1);
}

#[test]
fn manual_starts_reset_both_counters() {
    for control in [Control::Enable, Control::Restart, Control::RunOnce(true)] {
        let mut svc = fatal();
        svc.state.start_failures = 4;
        svc.state.restarts = 3;
        svc.control(control);
        assert_eq!(
            (svc.state.start_failures, svc.state.restarts),
            (0, 0),
            "{control:?}"
        );
    }
    // A restart of a live instance too: the next spawn is attempt 1, without delay.
    let mut svc = backoff();
    svc.tick_at(2500);
    svc.spawned();
    svc.tick_at(3500);
    assert_eq!((svc.status(), svc.state.restarts), ("running", 1));
    svc.control(Control::Restart);
    assert_eq!((svc.state.start_failures, svc.state.restarts), (0, 0));
    svc.now = at(3600);
    let got = svc.killed_by("TERM");
    assert_eq!(
        describe(&got),
        [
            "save",
            "log EXIT",
            "close canceled",
            "history stopped",
            "service.stopped",
            "spawn #1"
        ]
    );
    assert_eq!(svc.status(), "starting");
}

#[test]
fn ready_turns_starting_into_running() {
    let mut svc = starting();
    assert_eq!(svc.deadline(), Some(at(1000)));
    assert!(svc.tick_at(999).is_empty());
    let got = svc.tick_at(1000);
    assert_eq!(describe(&got), ["save", "log READY", "service.ready"]);
    assert_eq!(log_lines(&got), ["=== READY after 1.0s (delay)"]);
    assert_eq!(svc.state.ready_at, Some(at(1000)));
}

#[test]
fn a_failure_streak_ends_after_backoff_reset_of_running() {
    // Ready after a failure resets start_failures but does not end the streak yet.
    let mut svc = backoff();
    assert!(svc.state.streak_open);
    svc.tick_at(2500);
    svc.spawned();
    let got = svc.tick_at(3500);
    assert_eq!(describe(&got), ["save", "log READY", "service.ready"]);
    assert_eq!((svc.state.start_failures, svc.state.streak_open), (0, true));
    // A crash within backoff_reset belongs to the same streak: not notified.
    let mut again = Svc {
        state: svc.state.clone(),
        policy: svc.policy.clone(),
        now: at(30_000),
        spawns: svc.spawns,
    };
    let got = again.exit(1);
    assert_eq!(notices(&got).len(), 0);
    assert_eq!(again.state.next_start(), Some(at(31_000)), "n = 2: 1s");
    // Running for backoff_reset ends it: one recovery.
    assert_eq!(svc.deadline(), Some(at(63_500)));
    let got = svc.tick_at(63_500);
    assert_eq!(describe(&got), ["service.recover", "notify recover"]);
    assert_eq!(notices(&got)[0].summary, "RECOVERED: #2 running for 1m");
    assert_eq!((svc.state.streak_open, svc.state.restarts), (false, 0));
    assert_eq!(svc.deadline(), None);
    // The next failure opens a new streak, and is told.
    svc.now = at(70_000);
    let got = svc.exit(1);
    assert_eq!(notices(&got)[0].event, NoticeEvent::Failed);
}

#[test]
fn a_stopping_service_ends_at_its_stop_target() {
    // disable → disabled, after SIGKILL if need be.
    let mut svc = stopping();
    assert_eq!(svc.deadline(), Some(at(12_000)));
    svc.tick_at(12_000);
    assert_eq!(
        svc.deadline(),
        None,
        "after SIGKILL only the exit is awaited"
    );
    let got = svc.killed_by("KILL");
    assert_eq!(
        describe(&got),
        [
            "save",
            "log EXIT",
            "close canceled",
            "history stopped",
            "service.stopped"
        ]
    );
    assert_eq!(svc.status(), "disabled");
    let entry = histories(&got)[0];
    assert_eq!((entry.signal.as_str(), entry.clean), ("KILL", true));

    // restart → starting at once, whatever the exit says.
    let mut svc = running();
    svc.control(Control::Restart);
    svc.now = at(1500);
    let got = svc.exit(3);
    assert_eq!(describe(&got).last().unwrap(), "spawn #1");
    assert_eq!(histories(&got)[0].reason, HistoryReason::Stopped);

    // shutdown → stopped (disabled when not enabled), nothing spawned.
    let mut svc = running();
    shutdown(&mut svc);
    let got = svc.killed_by("TERM");
    assert!(!describe(&got).iter().any(|w| w.starts_with("spawn")));
    assert_eq!(svc.status(), "stopped");
}

#[test]
fn controls_while_stopping_change_what_comes_next() {
    let cases: [(&str, Action, &str); 4] = [
        ("enable", enable, "starting"),
        ("restart", restart, "starting"),
        ("run_once(1)", run_once_on, "starting"),
        ("disable", disable, "disabled"),
    ];
    for (name, control, then) in cases {
        let mut svc = stopping();
        let got = control(&mut svc);
        assert!(
            !describe(&got).iter().any(|w| w.starts_with("stop")),
            "{name}: the stop goes on"
        );
        assert_eq!(svc.status(), "stopping", "{name}");
        svc.killed_by("TERM");
        assert_eq!(svc.status(), then, "{name}");
    }
    // During shutdown the target stays.
    let mut svc = stopping();
    shutdown(&mut svc);
    svc.control(Control::Restart);
    assert_eq!(svc.state.stop_target(), Some(StopTarget::Exit));
    svc.killed_by("TERM");
    assert_eq!(
        svc.status(),
        "stopped",
        "restart enabled it; nothing starts"
    );
}

#[test]
fn shutdown_of_a_service_without_a_process() {
    let mut svc = backoff();
    let got = shutdown(&mut svc);
    assert_eq!(describe(&got), ["save"]);
    assert_eq!((svc.status(), svc.deadline()), ("stopped", None));
    for mut svc in [disabled(), stopped(), fatal()] {
        let before = svc.status();
        assert!(shutdown(&mut svc).is_empty(), "{before}");
        assert_eq!(svc.status(), before);
    }
}

#[test]
fn shutdown_leaves_an_on_exit_leave_daemon_running() {
    let mut svc = starting();
    svc.tick_at(1000);
    let cas = svc.state.cas();
    let got = svc.send(Input::Shutdown {
        leave_running: true,
    });
    assert_eq!(describe(&got), ["log karajo", "close rotated"]);
    assert_eq!(
        log_lines(&got),
        ["=== karajo stopping; instance left running (pid 4001)"]
    );
    assert_eq!((svc.status(), svc.state.cas()), ("running", cas));
    assert!(svc.state.instance().is_some(), "kept for adoption");
}

// ---- B.5.2: clean and failed endings, and the policy table ----

#[test]
fn clean_endings_follow_systemd() {
    let mut policy = defaults();
    policy.success_exit_codes = vec![0, 3];
    let cases = [
        (Some(0), None, false, true),
        (Some(3), None, false, true),
        (Some(1), None, false, false),
        (Some(255), None, false, false),
        (None, Some("HUP"), false, true),
        (None, Some("INT"), false, true),
        (None, Some("TERM"), false, true),
        (None, Some("PIPE"), false, true),
        (None, Some("TERM"), true, false),
        (None, Some("KILL"), false, false),
        (None, Some("SEGV"), true, false),
        (None, Some("USR1"), false, false),
        (None, None, false, false),
    ];
    for (code, signal, core, clean) in cases {
        assert_eq!(
            is_clean_exit(&policy, code, signal, core),
            clean,
            "{code:?} {signal:?} core {core}"
        );
    }
}

#[test]
fn the_policy_table() {
    use RestartPolicy::{Always, Never, OnFailure};
    // (restart, exit code, ends after ready, status after the end)
    let cases = [
        (Always, 0, true, "backoff"),
        (OnFailure, 0, true, "stopped"),
        (Never, 0, true, "stopped"),
        (Always, 1, true, "backoff"),
        (OnFailure, 1, true, "backoff"),
        (Never, 1, true, "fatal"),
        // Before ready every ending is a failed start.
        (Always, 0, false, "backoff"),
        (OnFailure, 0, false, "backoff"),
        (Never, 0, false, "fatal"),
    ];
    for (restart, code, after_ready, want) in cases {
        let mut svc = starting();
        svc.policy.restart = restart;
        svc.now = at(if after_ready { 1500 } else { 500 });
        let got = svc.exit(code);
        assert_eq!(
            svc.status(),
            want,
            "{restart:?} exit {code} ready {after_ready}"
        );
        let entry = histories(&got)[0];
        assert_eq!(entry.reason, HistoryReason::Exited);
        assert_eq!(entry.clean, code == 0 && after_ready, "{restart:?} {code}");
        let failures = u32::from(!after_ready);
        assert_eq!(svc.state.start_failures, failures);
    }
}

#[test]
fn end_effects_for_each_kind_of_ending() {
    // (how it ends, effects, log line)
    let mut svc = running();
    svc.now = at(433_000);
    let got = svc.exit(0);
    assert_eq!(
        describe(&got),
        [
            "save",
            "log EXIT",
            "close success",
            "history exited",
            "service.exit"
        ]
    );
    assert_eq!(log_lines(&got), ["=== EXIT status 0 after 7m13s (exited)"]);

    let mut svc = running();
    svc.now = at(2000);
    let got = svc.send(Input::Exited {
        exit_code: None,
        signal: Some("SIGSEGV".into()),
        core_dumped: true,
    });
    assert_eq!(
        describe(&got),
        [
            "save",
            "log EXIT",
            "close failed",
            "history exited",
            "service.failed",
            "notify failed",
            "service.backoff"
        ]
    );
    assert_eq!(
        log_lines(&got),
        ["=== EXIT signal SEGV (core dumped) after 2s (exited)"]
    );
    let notice = notices(&got)[0];
    assert_eq!(notice.summary, "#1: failed (signal SEGV (core dumped))");
    assert_eq!(
        (notice.previous_status.as_str(), notice.counter),
        ("running", Some(1))
    );
    assert_eq!(histories(&got)[0].signal, "SEGV");

    // A requested stop: `=== EXIT signal TERM after 7m13s (stopped)`.
    let mut svc = running();
    svc.now = at(433_000);
    let got = svc.control(Control::Disable);
    assert_eq!(
        log_lines(&got),
        ["=== STOP requested (disable): SIGTERM to group 4001"]
    );
    let got = svc.killed_by("TERM");
    assert_eq!(
        log_lines(&got),
        ["=== EXIT signal TERM after 7m13s (stopped)"]
    );
}

#[test]
fn a_spawn_failure_is_a_failed_start() {
    let mut svc = Svc::new(svc_policy(), true);
    svc.boot();
    svc.now = at(20);
    let got = svc.send(Input::SpawnFailed {
        why: "pre_start `make` exited 2".into(),
    });
    assert_eq!(
        describe(&got),
        [
            "save",
            "log START",
            "close failed",
            "history start_failed",
            "service.failed",
            "notify failed",
            "service.backoff"
        ]
    );
    assert_eq!(
        log_lines(&got),
        ["=== START failed: pre_start `make` exited 2"]
    );
    let entry = histories(&got)[0];
    assert_eq!((entry.instance.as_deref(), entry.pid), (None, None));
    assert_eq!((entry.started, entry.stopped), (at(0), at(20)));
    assert_eq!(svc.state.start_failures, 1);
    assert_eq!(svc.state.next_start(), Some(at(520)));
}

// ---- B.5.3: back-off and giving up ----

#[test]
fn backoff_doubles_up_to_the_cap() {
    let policy = defaults();
    let cases = [
        (0, 1),
        (1, 1),
        (2, 2),
        (3, 4),
        (4, 8),
        (6, 32),
        (7, 60),
        (40, 60),
    ];
    for (n, seconds) in cases {
        assert_eq!(backoff_delay(&policy, n), secs(seconds), "n = {n}");
    }
    let huge = ServicePolicy {
        restart_delay: Duration::MAX,
        ..defaults()
    };
    assert_eq!(backoff_delay(&huge, 3), secs(60), "overflow is the cap");
}

#[test]
fn spec_example_exit_1_with_defaults_is_fatal_at_7s_after_4_instances() {
    let sim = Sim::run(defaults(), |_| Script::Exit { after: 0, code: 1 }, 30_000);
    assert_eq!(sim.spawn_ms(), [0, 1000, 3000, 7000]);
    assert_eq!(sim.first_time_of("fatal"), Some(at(7000)));
    assert_eq!(sim.svc.status(), "fatal");
    assert_eq!(sim.count("close failed"), 4);
    assert_eq!(sim.count("history exited"), 4);
    assert_eq!(sim.count("notify failed"), 1, "once per streak");
    assert_eq!(sim.count("notify fatal"), 1);
    assert_eq!(sim.svc.state.start_failures, 4);
    let fatal = sim.all(|e| match e {
        ServiceEffect::Notify(n) if n.event == NoticeEvent::Fatal => Some(n.summary.clone()),
        _ => None,
    });
    assert_eq!(fatal, ["FATAL after 4 failed starts"]);
}

#[test]
fn svc_04_fatal_at_3_5s_and_no_further_spawn() {
    let sim = Sim::run(svc_policy(), |_| Script::Exit { after: 0, code: 1 }, 8_500);
    assert_eq!(sim.spawn_ms(), [0, 500, 1500, 3500]);
    assert_eq!(sim.first_time_of("fatal"), Some(at(3500)));
    assert_eq!(sim.count("close failed"), 4);
    assert_eq!(sim.count("notify fatal"), 1);
    assert_eq!(sim.svc.deadline(), None, "nothing more happens by itself");
}

/// SVC-03: `sleep 2; exit 1` with `restart_delay = 500ms`. Each instance is ready at
/// 1 s (so `start_failures` stays 0 and it never turns fatal) and fails at 2 s; the
/// policy restart number n waits 500ms × 2^(n−1): 0.5 s, 1 s, 2 s. Spawns at 0, 2.5,
/// 5.5 and 9.5 s, so the gaps are 2 + 0.5, 2 + 1 and 2 + 2 seconds, the spec's 2.5,
/// 3.0 and 4.0.
#[test]
fn svc_03_gaps_grow_2_5_then_3_then_4_seconds_and_never_fatal() {
    let sim = Sim::run(
        svc_policy(),
        |_| Script::Exit {
            after: 2000,
            code: 1,
        },
        12_000,
    );
    let spawns = sim.spawn_ms();
    assert_eq!(spawns, [0, 2500, 5500, 9500]);
    let gaps: Vec<u64> = spawns.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps, [2500, 3000, 4000]);
    assert!(!sim.ever("fatal"));
    assert_eq!(
        sim.count("notify failed"),
        1,
        "one streak: the first failure"
    );
    assert_eq!(
        sim.count("notify recover"),
        0,
        "never ran for backoff_reset"
    );
    let lines = sim.all(|e| match e {
        ServiceEffect::LogLine(line) if line.starts_with("=== START") => Some(line.clone()),
        _ => None,
    });
    assert_eq!(
        lines,
        [
            "=== START instance inst-1 pid 4001",
            "=== START instance inst-2 pid 4002 (attempt 2 after 500ms back-off)",
            "=== START instance inst-3 pid 4003 (attempt 3 after 1s back-off)",
            "=== START instance inst-4 pid 4004 (attempt 4 after 2s back-off)",
        ]
    );
}

#[test]
fn svc_07_always_restarts_clean_endings_too() {
    let mut policy = svc_policy();
    policy.restart = RestartPolicy::Always;
    let sim = Sim::run(
        policy,
        |_| Script::Exit {
            after: 2000,
            code: 0,
        },
        7000,
    );
    assert_eq!(sim.spawn_ms(), [0, 2500, 5500]);
    assert_eq!(sim.count("close success"), 2);
    assert_eq!(sim.count("close failed"), 0);
    assert!(!sim.ever("fatal"));
    assert_eq!(sim.count("notify failed"), 0);
}

#[test]
fn svc_06_policies_after_ready() {
    use RestartPolicy::{Never, OnFailure};
    // (restart, success codes, exit code, final status)
    let cases = [
        (Never, vec![0], 0, "stopped"),
        (Never, vec![0], 1, "fatal"),
        (OnFailure, vec![0, 3], 3, "stopped"),
    ];
    for (restart, codes, code, want) in cases {
        let mut policy = svc_policy();
        policy.restart = restart;
        policy.success_exit_codes = codes;
        let script = match code {
            0 => |_| Script::Exit {
                after: 2000,
                code: 0,
            },
            1 => |_| Script::Exit {
                after: 2000,
                code: 1,
            },
            _ => |_| Script::Exit {
                after: 2000,
                code: 3,
            },
        };
        let sim = Sim::run(policy, script, 10_000);
        assert_eq!(sim.svc.status(), want, "{restart:?} exit {code}");
        assert_eq!(
            sim.spawns.len(),
            1,
            "{restart:?} exit {code}: no second instance"
        );
    }
}

#[test]
fn backoff_reset_after_running_well_for_a_while() {
    let mut svc = running();
    svc.state.restarts = 5;
    assert_eq!(svc.deadline(), Some(at(61_000)), "ready + backoff_reset");
    assert!(svc.tick_at(61_000).is_empty(), "a silent reset");
    assert_eq!((svc.state.restarts, svc.deadline()), (0, None));
    svc.now = at(70_000);
    svc.exit(1);
    assert_eq!(
        svc.state.next_start(),
        Some(at(70_500)),
        "the first delay again"
    );

    // Ended just before the reset: the back-off goes on growing.
    let mut svc = running();
    svc.state.restarts = 5;
    svc.now = at(60_999);
    svc.exit(1);
    assert_eq!(svc.state.restarts, 6);
    assert_eq!(
        svc.state.next_start(),
        Some(at(60_999 + 16_000)),
        "500ms × 2^5"
    );
}

// ---- B.5.4: the end of a run-once instance ----

#[test]
fn run_once_endings() {
    // (enabled, exit code, status after, effects of the ending after the log)
    let cases: [(bool, i32, &str, &[&str]); 4] = [
        (
            true,
            0,
            "stopped",
            &["close success", "history exited", "service.exit"],
        ),
        (
            false,
            0,
            "disabled",
            &["close success", "history exited", "service.exit"],
        ),
        (
            true,
            1,
            "fatal",
            &[
                "close failed",
                "history exited",
                "service.failed",
                "notify failed",
                "service.fatal",
                "notify fatal",
            ],
        ),
        (
            false,
            1,
            "disabled",
            &[
                "close failed",
                "history exited",
                "service.failed",
                "notify failed",
            ],
        ),
    ];
    for (enabled, code, want, tail) in cases {
        let mut svc = if enabled { stopped() } else { disabled() };
        svc.control(Control::RunOnce(true));
        svc.spawned();
        svc.tick_at(3000);
        assert_eq!(svc.status(), "running");
        svc.now = at(5000);
        let got = svc.exit(code);
        let words = describe(&got);
        assert_eq!(&words[..2], ["save", "log EXIT"], "{enabled} {code}");
        assert_eq!(&words[2..], tail, "{enabled} {code}");
        assert_eq!(svc.status(), want, "{enabled} {code}");
        assert_eq!(
            (svc.state.saved.enabled, svc.state.saved.run_once),
            (enabled, false)
        );
        assert_eq!(svc.deadline(), None, "no restart");
    }
}

/// SVC-12: `disabled = true`, `command = "sleep 1; exit 1"`, `run_once on=1`. The
/// exit at 1 s races `start_seconds = 1s`; either way one instance, no restart,
/// `disabled` with `run_once` false, and one history entry.
#[test]
fn svc_12_run_once_of_a_disabled_service() {
    for exit_ms in [999, 1000, 1001] {
        let mut svc = disabled();
        let got = svc.control(Control::RunOnce(true));
        assert_eq!(describe(&got), START_NOW);
        svc.spawned();
        svc.now = at(exit_ms);
        let got = svc.exit(1);
        assert_eq!(svc.status(), "disabled", "exit at {exit_ms}");
        assert!(!svc.state.saved.run_once);
        assert_eq!(histories(&got).len(), 1);
        assert!(!describe(&got).iter().any(|w| w.starts_with("spawn")));
        assert_eq!(svc.deadline(), None);
    }
}

// ---- B.4.2, B.4.3: readiness and liveness ----

/// SVC-14: `ping_timeout = 2s`; the instance pings once at 50 ms, before it is ready
/// at 1 s. The deadline is `max(ready, last ping) + ping_timeout` = 3 s; then a stop
/// for liveness, a failure, and a restart after the back-off.
#[test]
fn svc_14_liveness_deadline_counts_from_ready_when_the_ping_came_before() {
    let mut svc = Svc::new(
        ServicePolicy {
            ping_timeout: Some(secs(2)),
            ..svc_policy()
        },
        true,
    );
    svc.boot();
    svc.spawned();
    svc.now = at(50);
    let got = svc.send(Input::Ping {
        instance: "inst-1".into(),
        update: PingUpdate::default(),
    });
    assert_eq!(
        describe(&got),
        ["reply done"],
        "a ping changes no CAS, saves nothing"
    );
    assert_eq!(svc.status(), "starting", "ready = delay ignores pings");
    svc.tick_at(1000);
    assert_eq!(svc.deadline(), Some(at(3000)));
    assert!(svc.tick_at(2999).is_empty());
    let got = svc.tick_at(3000);
    assert_eq!(describe(&got), ["save", "log STOP", "stop TERM (liveness)"]);
    assert_eq!(
        log_lines(&got),
        ["=== STOP (liveness: no ping within ping_timeout 2s): SIGTERM to group 4001"]
    );
    svc.now = at(3100);
    let got = svc.killed_by("TERM");
    assert_eq!(
        describe(&got),
        [
            "save",
            "log EXIT",
            "close failed",
            "history liveness",
            "service.failed",
            "notify failed",
            "service.backoff"
        ]
    );
    let entry = histories(&got)[0];
    assert_eq!(
        (entry.clean, entry.ready, entry.last_seen),
        (false, Some(at(1000)), Some(at(50)))
    );
    assert_eq!(
        notices(&got)[0].summary,
        "#1: failed (no ping within ping_timeout 2s)"
    );
    assert_eq!(notices(&got)[0].previous_status, Status::Running);
    assert_eq!(
        svc.state.start_failures, 0,
        "it was ready: not a failed start"
    );
    assert_eq!(svc.state.next_start(), Some(at(3600)));
}

#[test]
fn a_ping_after_ready_moves_the_liveness_deadline() {
    let mut svc = Svc::new(
        ServicePolicy {
            ping_timeout: Some(secs(2)),
            ..svc_policy()
        },
        true,
    );
    svc.boot();
    svc.spawned();
    svc.tick_at(1000);
    for (ping_ms, deadline_ms) in [(2500, 4500), (4000, 6000), (5999, 7999)] {
        svc.now = at(ping_ms);
        svc.send(Input::Ping {
            instance: "inst-1".into(),
            update: PingUpdate::default(),
        });
        assert_eq!(svc.deadline(), Some(at(deadline_ms)), "ping at {ping_ms}");
    }
    // `WATCHDOG=1` comes the same way; a ping after the deadline is too late.
    svc.now = at(8000);
    let got = svc.send(Input::Ping {
        instance: "inst-1".into(),
        update: PingUpdate::default(),
    });
    assert_eq!(
        describe(&got),
        ["save", "log STOP", "stop TERM (liveness)", "reply done"]
    );
}

/// SVC-16: after the restart, a ping with the first instance's token is stale and
/// moves no deadline.
#[test]
fn svc_16_a_stale_instance_cannot_keep_the_new_one_alive() {
    let mut svc = Svc::new(
        ServicePolicy {
            ping_timeout: Some(secs(2)),
            ..svc_policy()
        },
        true,
    );
    svc.boot();
    svc.spawned();
    svc.tick_at(1000);
    svc.tick_at(3000);
    svc.now = at(3100);
    svc.killed_by("TERM");
    svc.tick_at(3600);
    svc.spawned();
    svc.tick_at(4600);
    assert_eq!(svc.deadline(), Some(at(6600)));

    assert_eq!(svc.state.token_owner("token-2"), Some("inst-2"));
    assert_eq!(
        svc.state.token_owner("token-1"),
        Some("inst-1"),
        "an earlier one"
    );
    assert_eq!(svc.state.token_owner("guess"), None, "403");
    let cas = svc.state.cas();
    svc.now = at(6000);
    let got = svc.send(Input::Ping {
        instance: "inst-1".into(),
        update: PingUpdate {
            status_text: Some("still here".into()),
            ..PingUpdate::default()
        },
    });
    assert_eq!(describe(&got), ["reply stale inst-1"]);
    assert_eq!(svc.deadline(), Some(at(6600)), "not extended");
    assert_eq!((svc.state.cas(), svc.state.status_text.as_str()), (cas, ""));
}

/// SVC-17: `ready = ping`, `start_timeout = 2s`, no ping: `starting` for 2 s, then a
/// failed start (`start_timeout`) and the back-off.
#[test]
fn svc_17_ready_by_ping_times_out() {
    let policy = ServicePolicy {
        ready: ReadyRule::Ping,
        start_timeout: secs(2),
        ..svc_policy()
    };
    let mut sim = Sim::new(policy, |_| Script::Forever);
    sim.feed(
        Input::Boot {
            found: Leftover::Nothing,
        },
        at(0),
    );
    sim.run_until(2549);
    assert_eq!(
        sim.statuses,
        [
            (at(0), "starting"),
            (at(2000), "stopping"),
            (at(2100), "backoff")
        ]
    );
    assert_eq!(sim.count("stop TERM (start_timeout)"), 1);
    assert_eq!(sim.count("history start_timeout"), 1);
    assert_eq!(sim.svc.state.start_failures, 1);
    assert_eq!(sim.svc.state.next_start(), Some(at(2600)));
}

#[test]
fn ready_by_ping_or_notify() {
    let mut svc = Svc::new(
        ServicePolicy {
            ready: ReadyRule::Ping,
            ..svc_policy()
        },
        true,
    );
    svc.boot();
    svc.spawned();
    assert_eq!(svc.deadline(), Some(at(30_000)), "start_timeout");
    svc.now = at(700);
    let got = svc.send(Input::ReadyNotify);
    assert!(got.is_empty(), "READY=1 is not the rule here");
    let got = svc.send(Input::Ping {
        instance: "inst-1".into(),
        update: PingUpdate::default(),
    });
    assert_eq!(
        describe(&got),
        ["save", "log READY", "service.ready", "reply done"]
    );
    assert_eq!(log_lines(&got), ["=== READY after 0.7s (ping)"]);

    let mut svc = Svc::new(
        ServicePolicy {
            ready: ReadyRule::Notify,
            ..svc_policy()
        },
        true,
    );
    svc.boot();
    svc.spawned();
    svc.now = at(1200);
    let got = svc.send(Input::ReadyNotify);
    assert_eq!(describe(&got), ["save", "log READY", "service.ready"]);
    assert_eq!(svc.state.ready_at, Some(at(1200)));
}

#[test]
fn start_seconds_zero_is_ready_at_spawn() {
    let mut svc = Svc::new(
        ServicePolicy {
            start_seconds: Duration::ZERO,
            ..svc_policy()
        },
        true,
    );
    svc.boot();
    let got = svc.spawned();
    assert_eq!(
        describe(&got),
        [
            "save",
            "log START",
            "service.start",
            "log READY",
            "service.ready"
        ]
    );
    assert_eq!(svc.status(), "running");
}

#[test]
fn max_runtime_stops_the_instance_as_a_failure() {
    let mut svc = Svc::new(
        ServicePolicy {
            max_runtime: Some(secs(300)),
            ..svc_policy()
        },
        true,
    );
    svc.boot();
    svc.spawned();
    svc.tick_at(1000);
    assert_eq!(svc.deadline(), Some(at(300_000)));
    let got = svc.tick_at(300_000);
    assert_eq!(
        describe(&got),
        ["save", "log STOP", "stop TERM (max_runtime)"]
    );
    svc.now = at(300_050);
    let got = svc.killed_by("TERM");
    let entry = histories(&got)[0];
    assert_eq!(
        (entry.reason, entry.clean),
        (HistoryReason::MaxRuntime, false)
    );
    assert_eq!(svc.status(), "backoff");
}

// ---- B.5.5: CAS ----

#[test]
fn cas_mismatch_refuses_and_changes_nothing() {
    let mut svc = running();
    let c = svc.state.cas();
    let before = svc.state.clone();
    let got = svc.send(Input::Control {
        control: Control::Disable,
        cas: Some(c - 1),
        by: "10.0.0.9".into(),
    });
    assert_eq!(describe(&got), [format!("reply cas mismatch {c}")]);
    assert_eq!(svc.state, before);
    let got = svc.send(Input::Control {
        control: Control::Disable,
        cas: Some(c),
        by: "10.0.0.9".into(),
    });
    assert_eq!(svc.status(), "stopping");
    let Some(Reply::Done { cas }) = reply(&got) else {
        panic!("{got:?}")
    };
    assert_eq!(*cas, c + 2, "enabled and the status changed");
    assert_eq!(
        events(&got)[0].message,
        "disable by 10.0.0.9: running → stopping"
    );
}

#[test]
fn cas_counts_transitions_flags_and_instances_but_not_pings() {
    let mut svc = Svc::new(svc_policy(), true);
    // (what happens, CAS growth)
    let steps: [(&str, Action, u64); 9] = [
        ("boot: stopped → starting", |svc| svc.boot(), 1),
        ("a new instance", |svc| svc.spawned(), 1),
        (
            "a ping",
            |svc| {
                svc.send(Input::Ping {
                    instance: "inst-1".into(),
                    update: PingUpdate::default(),
                })
            },
            0,
        ),
        (
            "a status text",
            |svc| svc.send(Input::StatusText("warm".into())),
            0,
        ),
        ("ready: starting → running", |svc| svc.tick_at(1000), 1),
        ("run_once on", |svc| svc.control(Control::RunOnce(true)), 1),
        (
            "enable while running",
            |svc| svc.control(Control::Enable),
            0,
        ),
        (
            "a log rotation",
            |svc| svc.send(Input::LogRotated { segment: 2 }),
            0,
        ),
        (
            "exit with run_once: running → stopped, flag cleared",
            |svc| svc.exit(0),
            2,
        ),
    ];
    for (what, action, growth) in steps {
        let before = svc.state.cas();
        action(&mut svc);
        assert_eq!(svc.state.cas() - before, growth, "{what}");
    }
}

#[test]
fn the_saved_part_is_written_first_and_synced_when_it_matters() {
    let mut svc = Svc::new(svc_policy(), true);
    svc.boot();
    let got = svc.spawned();
    assert_eq!(got[0], ServiceEffect::SaveState { durable: true });
    assert_eq!(svc.state.instance().unwrap().instance, "inst-1");
    let got = svc.send(Input::LogRotated { segment: 2 });
    assert_eq!(describe(&got), ["save lazily"]);
    assert_eq!(svc.state.instance().unwrap().counters(), [1, 2]);
    let got = svc.send(Input::StatusText("x".repeat(300)));
    assert!(got.is_empty(), "runtime only");
    assert_eq!(svc.state.status_text.chars().count(), STATUS_TEXT_MAX_CHARS);
}

// ---- controls: signal ----

#[test]
fn signal_goes_to_a_live_instance_only() {
    let mut svc = running();
    let cas = svc.state.cas();
    let got = svc.control(Control::Signal(ServiceSignal::Hup));
    assert_eq!(
        describe(&got),
        ["service.control", "log SIGNAL", "signal HUP", "reply done"]
    );
    assert_eq!(
        log_lines(&got),
        ["=== SIGNAL SIGHUP to group 4001 (by 127.0.0.1)"]
    );
    assert_eq!((svc.status(), svc.state.cas()), ("running", cas));
    for mut svc in [disabled(), stopped(), backoff(), fatal()] {
        let got = svc.control(Control::Signal(ServiceSignal::Hup));
        assert_eq!(describe(&got), ["reply not running"], "{}", svc.status());
    }
    // Starting, but the spawn not reported yet: nothing to signal.
    let mut svc = Svc::new(svc_policy(), true);
    svc.boot();
    let got = svc.control(Control::Signal(ServiceSignal::Usr1));
    assert_eq!(describe(&got), ["reply not running"]);
}

// ---- next_deadline ----

#[test]
fn the_next_deadline_by_status() {
    let with_ping = || {
        let mut svc = running();
        svc.policy.ping_timeout = Some(secs(2));
        svc
    };
    // (status reached, deadline)
    let cases: [(&str, Svc, Option<u64>); 9] = [
        ("disabled", disabled(), None),
        ("stopped", stopped(), None),
        ("fatal", fatal(), None),
        ("starting (delay)", starting(), Some(1000)),
        ("running", running(), None),
        ("running with ping_timeout", with_ping(), Some(3000)),
        ("backoff", backoff(), Some(2500)),
        ("stopping", stopping(), Some(12_000)),
        ("running after restarts", backoff_then_ready(), Some(63_500)),
    ];
    for (name, svc, want) in cases {
        assert_eq!(svc.deadline(), want.map(at), "{name}");
    }
}

fn backoff_then_ready() -> Svc {
    let mut svc = backoff();
    svc.tick_at(2500);
    svc.spawned();
    svc.tick_at(3500);
    svc
}

// ---- the supervisor's reports at awkward moments ----

#[test]
fn a_stop_while_the_spawn_is_in_flight() {
    let mut svc = Svc::new(svc_policy(), true);
    svc.boot();
    let got = svc.control(Control::Disable);
    assert_eq!(
        log_lines(&got),
        ["=== STOP requested (disable): SIGTERM to the instance being spawned"]
    );
    svc.now = at(10);
    let got = svc.spawned();
    assert_eq!(
        describe(&got),
        [
            "save",
            "log START",
            "service.start",
            "log STOP",
            "stop TERM (disable)"
        ],
        "what was spawned is stopped too"
    );
    svc.now = at(20);
    svc.killed_by("TERM");
    assert_eq!(svc.status(), "disabled");

    // Or the supervisor canceled it before the spawn.
    let mut svc = Svc::new(svc_policy(), true);
    svc.boot();
    svc.control(Control::Disable);
    let got = svc.send(Input::SpawnFailed {
        why: "canceled".into(),
    });
    assert_eq!(
        describe(&got),
        [
            "save",
            "log START",
            "close canceled",
            "history stopped",
            "service.stopped"
        ]
    );
    assert_eq!(svc.status(), "disabled");
}

#[test]
fn reports_nobody_waits_for_are_ignored() {
    for mut svc in [disabled(), stopped(), backoff(), fatal()] {
        let before = svc.state.clone();
        for input in [
            Input::Exited {
                exit_code: Some(1),
                signal: None,
                core_dumped: false,
            },
            Input::SpawnFailed { why: "x".into() },
            Input::Spawned(instance(9)),
            Input::ReadyNotify,
            Input::Tracked {
                pid: 1,
                pgid: 1,
                starttime: 1,
            },
        ] {
            assert!(svc.send(input).is_empty(), "{}", svc.status());
        }
        assert_eq!(svc.state, before);
    }
}

// ---- B.4.1: pid-file mode ----

#[test]
fn pid_file_mode_is_ready_from_the_verified_pid_and_lost_without_an_exit_code() {
    let mut svc = Svc::new(svc_policy(), true);
    svc.boot();
    svc.send(Input::Spawned(SpawnedInstance {
        watch: Watch::PidFile,
        ..instance(1)
    }));
    assert_eq!(
        svc.deadline(),
        Some(at(30_000)),
        "start_timeout until a pid"
    );
    svc.now = at(3000);
    let got = svc.send(Input::Tracked {
        pid: 5555,
        pgid: 5550,
        starttime: 777,
    });
    assert_eq!(describe(&got), ["save", "log TRACKING"]);
    assert_eq!(svc.state.instance().unwrap().pid, 5555);
    assert_eq!(svc.deadline(), Some(at(4000)), "start_seconds from the pid");
    svc.tick_at(4000);
    assert_eq!(svc.status(), "running");
    svc.now = at(9000);
    let got = svc.send(Input::Exited {
        exit_code: None,
        signal: None,
        core_dumped: false,
    });
    assert_eq!(log_lines(&got), ["=== EXIT unknown status after 9s (lost)"]);
    let entry = histories(&got)[0];
    assert_eq!(
        (entry.reason, entry.clean, entry.pid),
        (HistoryReason::Lost, false, Some(5555))
    );
    assert_eq!(svc.status(), "backoff");

    // No verified pid within start_timeout: a failed start.
    let mut svc = Svc::new(svc_policy(), true);
    svc.boot();
    svc.send(Input::Spawned(SpawnedInstance {
        watch: Watch::PidFile,
        ..instance(1)
    }));
    let got = svc.tick_at(30_000);
    assert_eq!(
        describe(&got),
        ["save", "log STOP", "stop TERM (start_timeout)"]
    );
}

// ---- B.7: start-up and reload ----

/// A saved state that records instance 1 (spawned an hour before the restart).
fn saved_with_instance(enabled: bool, watch: Watch) -> SavedService {
    let start: Timestamp = "2026-11-22T09:00:00Z".parse().unwrap();
    SavedService {
        enabled,
        run_once: false,
        cas: 41,
        instance: Some(InstanceRecord {
            instance: "old".into(),
            pid: 3000,
            pgid: 3000,
            starttime: 5,
            boot_id: "boot-a".into(),
            spawned: start,
            counter: 7,
            segment: 8,
            token_sha256: InstanceToken::new("old-token").sha256_hex(),
            watch,
        }),
    }
}

fn booted(saved: SavedService, found: Leftover) -> (Svc, Vec<ServiceEffect>) {
    let mut svc = Svc {
        state: ServiceState::restored(Some(saved), true),
        policy: svc_policy(),
        now: at(0),
        spawns: 0,
    };
    let got = svc.send(Input::Boot { found });
    (svc, got)
}

#[test]
fn boot_without_a_state_file_follows_the_configuration() {
    let mut svc = Svc::new(svc_policy(), true);
    assert_eq!(describe(&svc.boot()), ["save", "spawn #1"]);
    let mut svc = Svc::new(svc_policy(), false);
    assert!(svc.boot().is_empty());
    assert_eq!(svc.status(), "disabled");
}

#[test]
fn boot_with_a_run_once_owed_starts_a_disabled_service() {
    let saved = SavedService {
        run_once: true,
        ..SavedService::first(false)
    };
    let mut svc = Svc {
        state: ServiceState::restored(Some(saved), true),
        policy: svc_policy(),
        now: at(0),
        spawns: 0,
    };
    assert_eq!(describe(&svc.boot()), ["save", "spawn #1"]);
}

#[test]
fn boot_stops_an_orphan_before_starting_afresh() {
    let (mut svc, got) = booted(saved_with_instance(true, Watch::Child), Leftover::Orphan);
    assert_eq!(
        describe(&got),
        ["save", "service.orphan", "stop TERM (orphaned)"],
        "no line in a log nobody writes"
    );
    assert_eq!(svc.state.stop_target(), Some(StopTarget::Start));
    svc.now = at(200);
    let got = svc.killed_by("TERM");
    assert_eq!(
        describe(&got),
        [
            "save",
            "close leftover #8 failed",
            "history orphaned",
            "service.orphan",
            "spawn #1"
        ]
    );
    let entry = histories(&got)[0];
    assert_eq!(
        (
            entry.instance.as_deref(),
            entry.counters.as_slice(),
            entry.clean
        ),
        (Some("old"), &[7, 8][..], false)
    );
    assert_eq!(
        notices(&got).len(),
        0,
        "an orphan is not a failure of the service"
    );
    assert!(svc.state.instance().is_none());

    // A disabled service's orphan is stopped, and nothing starts.
    let (mut svc, _) = booted(saved_with_instance(false, Watch::Child), Leftover::Orphan);
    svc.killed_by("TERM");
    assert_eq!(svc.status(), "disabled");
}

#[test]
fn boot_records_an_instance_that_died_with_karajo_as_lost() {
    let (svc, got) = booted(saved_with_instance(true, Watch::Child), Leftover::Gone);
    assert_eq!(
        describe(&got),
        [
            "save",
            "close leftover #8 failed",
            "history lost",
            "service.lost",
            "spawn #1"
        ]
    );
    assert_eq!(svc.status(), "starting");
    assert!(svc.state.instance().is_none());
}

#[test]
fn boot_adopts_a_verified_pid_file_daemon() {
    let (svc, got) = booted(
        saved_with_instance(true, Watch::PidFile),
        Leftover::Adopted { segment: 9 },
    );
    assert_eq!(describe(&got), ["save", "log adopted", "service.adopt"]);
    assert_eq!(
        log_lines(&got),
        ["=== adopted pid 3000 after karajo restart"]
    );
    assert_eq!(svc.status(), "running");
    let record = svc.state.instance().unwrap();
    assert_eq!((record.instance.as_str(), record.segment), ("old", 9));
    assert_eq!(
        svc.state.token_owner("old-token"),
        Some("old"),
        "its token still works"
    );
}

#[test]
fn reload_restarts_a_live_instance_only_when_needed() {
    let mut svc = running();
    let got = svc.send(Input::Reconfigure {
        respawn: false,
        enabled: None,
    });
    assert!(got.is_empty());
    let got = svc.send(Input::Reconfigure {
        respawn: true,
        enabled: None,
    });
    assert_eq!(describe(&got), ["save", "log STOP", "stop TERM (reload)"]);
    svc.now = at(1500);
    let got = svc.killed_by("TERM");
    assert_eq!(describe(&got).last().unwrap(), "spawn #1", "no back-off");

    // The configuration's `disabled` changed: it acts like the control.
    let mut svc = running();
    let got = svc.send(Input::Reconfigure {
        respawn: true,
        enabled: Some(false),
    });
    assert_eq!(
        describe(&got),
        ["save", "service.control", "log STOP", "stop TERM (disable)"]
    );
    let mut svc = disabled();
    svc.send(Input::Reconfigure {
        respawn: true,
        enabled: Some(true),
    });
    assert_eq!(svc.status(), "starting");
    // A respawn with nothing running changes nothing.
    let mut svc = backoff();
    let got = svc.send(Input::Reconfigure {
        respawn: true,
        enabled: None,
    });
    assert!(got.is_empty());
}

// ---- B.4.4: what a ping says ----

#[test]
fn pings_merge_or_replace_the_keyvalue_map_within_limits() {
    let mut svc = running();
    let kv = |pairs: &[(&str, i64)]| -> KeyValue {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), serde_json::json!(v)))
            .collect()
    };
    let ping = |svc: &mut Svc, keyvalue: KeyValue, replace: bool| {
        svc.send(Input::Ping {
            instance: "inst-1".into(),
            update: PingUpdate {
                status_text: Some("busy".into()),
                keyvalue: Some(keyvalue),
                keyvalue_replace: replace,
            },
        })
    };
    ping(&mut svc, kv(&[("a", 1), ("b", 2)]), false);
    ping(&mut svc, kv(&[("b", 3), ("c", 4)]), false);
    assert_eq!(svc.state.keyvalue, kv(&[("a", 1), ("b", 3), ("c", 4)]));
    ping(&mut svc, kv(&[("z", 0)]), true);
    assert_eq!(svc.state.keyvalue, kv(&[("z", 0)]));
    assert_eq!(svc.state.status_text, "busy");

    let many: KeyValue = (0..KEYVALUE_MAX_KEYS)
        .map(|i| (format!("k{i}"), serde_json::json!(i)))
        .collect();
    let got = ping(&mut svc, many, false);
    assert_eq!(describe(&got), ["reply bad request"], "64 + 1 keys");
    assert_eq!(svc.state.keyvalue, kv(&[("z", 0)]), "nothing changed");
    let big: KeyValue = [("big".to_string(), serde_json::json!("x".repeat(5000)))].into();
    assert_eq!(describe(&ping(&mut svc, big, true)), ["reply bad request"]);

    // A new instance starts with a clean map (keyvalue_clear).
    svc.now = at(2000);
    svc.exit(1);
    svc.tick_at(2500);
    svc.spawned();
    assert!(svc.state.keyvalue.is_empty());
    assert_eq!(svc.state.status_text, "");
}

// ---- persisted and reported formats ----

#[test]
fn the_state_file_holds_no_token() {
    let mut svc = starting();
    svc.control(Control::RunOnce(true));
    let json = serde_json::to_string(&svc.state.saved).unwrap();
    assert!(!json.contains("token-1"), "{json}");
    assert!(json.contains(&InstanceToken::new("token-1").sha256_hex()));
    let back: SavedService = serde_json::from_str(&json).unwrap();
    assert_eq!(back, svc.state.saved);
    assert_eq!(
        format!("{:?}", InstanceToken::new("token-1")),
        crate::redact::REDACTED
    );
    let minimal: SavedService = serde_json::from_str(r#"{"enabled":false}"#).unwrap();
    assert_eq!(minimal, SavedService::first(false));
}

#[test]
fn history_entries_have_the_spec_shape() {
    let mut svc = running();
    svc.now = at(433_000);
    let got = svc.exit(1);
    let json = serde_json::to_value(histories(&got)[0]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "instance": "inst-1",
            "pid": 4001,
            "started": "2026-11-22T10:00:00Z",
            "ready": "2026-11-22T10:00:01Z",
            "stopped": "2026-11-22T10:07:13Z",
            "exit_code": 1,
            "signal": "",
            "reason": "exited",
            "clean": false,
            "counters": [1],
            "duration": 433_000_000_000u64,
            "keyvalue": {}
        })
    );
    let mut svc = running();
    let got = svc.killed_by("KILL");
    let json = serde_json::to_value(histories(&got)[0]).unwrap();
    assert_eq!(json["exit_code"], serde_json::Value::Null, "always present");
    assert_eq!(json["signal"], "KILL");
}
