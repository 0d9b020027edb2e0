//! Table tests of [`decide`]: every rule of the scheduler, driven by events and a
//! hand-set clock, without processes, files or sleeping. Effects are compared as short
//! words (`spawn job/a#1 api`, `refused: job is paused`) so each table reads as the
//! rule it checks.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::*;
use crate::config::{ExecSpec, HttpMethod, HttpRequestType, HttpSpec, JobCommon};
use crate::job::{AuthKind, JobId, JobKind};
use crate::schedule::Schedule;
use crate::scheduler::JobDefKind;
use crate::scheduler::RestoredMonitor;

const T0: &str = "2026-01-01T00:00:00Z";

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn secs(n: i64) -> jiff::SignedDuration {
    jiff::SignedDuration::from_secs(n)
}

fn common(name: &str) -> JobCommon {
    JobCommon {
        name: name.to_string(),
        id: JobId::from_name(name),
        file: PathBuf::from("karajo.conf"),
        line: 1,
        description: String::new(),
        schedule: None,
        interval: None,
        timezone: TimeZone::UTC,
        log_retention: 5,
        notif_on_success: Vec::new(),
        notif_on_failed: Vec::new(),
        notif_on_recover: Vec::new(),
        secret: "s".to_string(),
        header_sign: "X-Karajo-Sign".to_string(),
        run_on: crate::cluster::RunOn::Any,
        policies: crate::config::policies::Policies::default(),
    }
}

fn exec_kind() -> JobDefKind {
    JobDefKind::Exec {
        spec: Arc::new(ExecSpec {
            path: None,
            auth_kind: AuthKind::HmacSha256,
            sourcehut_public_key: [0; 32],
            commands: vec!["true".to_string()],
            timeout: None,
            kill_grace: Duration::from_secs(5),
            hook_rules: Default::default(),
            params: Default::default(),
        }),
        function: None,
    }
}

fn http_kind() -> JobDefKind {
    JobDefKind::Http {
        spec: Arc::new(HttpSpec {
            http_method_text: "GET".to_string(),
            http_method: HttpMethod::Get,
            http_url: "http://127.0.0.1:1/".to_string(),
            http_request_type_text: String::new(),
            http_request_type: HttpRequestType::default(),
            http_headers: Vec::new(),
            http_header_lines: Vec::new(),
            http_header_secret: Vec::new(),
            http_timeout: None,
            http_insecure: false,
        }),
        url: "http://127.0.0.1:1/".to_string(),
        sent: None,
    }
}

/// A command job named `name`.
fn exec(name: &str) -> JobDef {
    JobDef {
        common: Arc::new(common(name)),
        kind: exec_kind(),
    }
}

/// An HTTP job named `name`.
fn http(name: &str) -> JobDef {
    JobDef {
        common: Arc::new(common(name)),
        kind: http_kind(),
    }
}

fn with(def: JobDef, change: impl FnOnce(&mut JobCommon)) -> JobDef {
    let mut common = (*def.common).clone();
    change(&mut common);
    JobDef {
        common: Arc::new(common),
        kind: def.kind,
    }
}

fn every(def: JobDef, seconds: u64) -> JobDef {
    with(def, |c| c.interval = Some(Duration::from_secs(seconds)))
}

fn minutely(def: JobDef) -> JobDef {
    with(def, |c| {
        c.schedule = Some(Schedule::parse("minutely", TimeZone::UTC).unwrap());
    })
}

/// A job as restored from an empty disk.
fn fresh(def: JobDef) -> RestoredJob {
    let log_dir = PathBuf::from("/log").join(def.id().as_str());
    RestoredJob {
        def,
        status: RunStatus::Started,
        paused: false,
        counter: 0,
        last_run: None,
        logs: Vec::new(),
        log_dir,
        next_run: None,
        retry: None,
    }
}

fn log(job: &str, counter: u64, status: RunStatus) -> LogEntry {
    LogEntry {
        counter,
        status,
        path: PathBuf::from(format!("/log/{job}/{job}.{counter}.{status}")),
        modified: at(T0),
        facts: RunFacts::default(),
    }
}

fn key(kind: JobKind, id: &str) -> JobKey {
    JobKey {
        kind,
        id: JobId::from_raw(id),
    }
}

fn job(id: &str) -> JobKey {
    key(JobKind::Exec, id)
}

fn job_http(id: &str) -> JobKey {
    key(JobKind::Http, id)
}

fn api() -> Request {
    Request::from(Trigger::Api, None)
}

/// The scheduler's state and a clock that only moves when told.
struct World {
    state: SchedulerState,
    now: Timestamp,
}

impl World {
    fn new(max_job_running: usize, jobs: Vec<RestoredJob>) -> Self {
        let config = Arc::new(crate::config::defaults(std::path::Path::new("/base")));
        let mut world = Self {
            state: SchedulerState::new(config.clone()),
            now: at(T0),
        };
        world.on(Event::Restore {
            jobs,
            max_job_running,
            config,
            monitors: Vec::new(),
            last_alive: None,
            pulses: Vec::new(),
            services: Vec::new(),
        });
        world
    }

    /// A world whose node `n1` is in a cluster: jobs not `run_on = local` are
    /// coordinated.
    fn clustered(jobs: Vec<RestoredJob>) -> Self {
        let config = Arc::new(crate::config::defaults(std::path::Path::new("/base")));
        let mut state = SchedulerState::new(config.clone());
        state.cluster_node = Some(crate::cluster::NodeName::parse("n1").unwrap());
        let mut world = Self { state, now: at(T0) };
        world.on(Event::Restore {
            jobs,
            max_job_running: 1,
            config,
            monitors: Vec::new(),
            last_alive: None,
            pulses: Vec::new(),
            services: Vec::new(),
        });
        world
    }

    fn on(&mut self, event: Event) -> Vec<String> {
        words(&decide(&mut self.state, event, self.now))
    }

    fn later(&mut self, seconds: i64) {
        self.now = self.now.checked_add(secs(seconds)).unwrap();
    }

    fn trigger(&mut self, key: JobKey) -> Vec<String> {
        self.on(Event::Trigger {
            key,
            request: api(),
        })
    }

    fn finish(&mut self, key: JobKey, counter: u64, status: RunStatus) -> Vec<String> {
        let log = PathBuf::from(format!("/log/{0}/{0}.{counter}.{status}", key.id));
        self.on(Event::RunFinished(Finished {
            key,
            counter,
            status,
            at: self.now,
            exit_code: None,
            log: Some(log),
        }))
    }

    fn view(&mut self, key: &JobKey) -> Arc<JobView> {
        self.state.view(key).unwrap()
    }

    fn snapshot(&mut self) -> Snapshot {
        self.state.snapshot()
    }
}

fn only_runs(words: Vec<String>) -> Vec<String> {
    words
        .into_iter()
        .filter(|w| {
            ["spawn", "cancel", "answer", "refused", "stopped"]
                .iter()
                .any(|p| w.starts_with(p))
        })
        .collect()
}

fn words(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .map(|effect| match effect {
            Effect::OpenLog {
                key,
                counter,
                prune,
                ..
            } if prune.is_empty() => format!("open {key}#{counter}"),
            Effect::OpenLog {
                key,
                counter,
                prune,
                ..
            } => {
                let names: Vec<_> = prune
                    .iter()
                    .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
                    .collect();
                format!("open {key}#{counter} prune {}", names.join(" "))
            }
            Effect::SpawnRun(order) => format!(
                "spawn {}#{} {}",
                order.def.key(),
                order.counter,
                order.request.trigger.as_str()
            ),
            Effect::CancelRun { key, counter } => format!("cancel {key}#{counter}"),
            Effect::PruneLogs(prune) => format!("prune {}", prune.len()),
            Effect::CountRun { key, status, .. } => format!("count {key} {status}"),
            Effect::Notify(n) => format!(
                "notify {}#{} {} after {}",
                n.def.key(),
                n.counter,
                n.status,
                n.previous.map_or("nothing".to_string(), |s| s.to_string())
            ),
            Effect::SaveState { durable: false } => "save".to_string(),
            Effect::SaveState { durable: true } => "save now".to_string(),
            Effect::Publish => "publish".to_string(),
            Effect::Answer(Answer::Job(key)) => format!("answer {key}"),
            Effect::Answer(Answer::Refused(err)) => format!("refused: {err}"),
            Effect::Answer(Answer::Unknown) => "answer unknown".to_string(),
            Effect::Answer(Answer::Done) => "answer done".to_string(),
            Effect::Stopped => "stopped".to_string(),
            Effect::MonitorLog(write) => {
                format!(
                    "log monitor/{}#{} {:?}",
                    write.id, write.counter, write.action
                )
            }
            Effect::SaveMonitor { id, durable, .. } => {
                format!("save monitor/{id}{}", if *durable { " now" } else { "" })
            }
            Effect::RecordEvent(_) => "event".to_string(),
            Effect::CountTransition { id, to } => format!("count monitor/{id} {to}"),
            Effect::NotifyMonitor(alert) => format!(
                "notify monitor/{} {}",
                alert.spec.id,
                alert.notice.event.as_str()
            ),
            Effect::Answer(Answer::Ping(ping)) => format!("answer ping {}", ping.status),
            Effect::Answer(Answer::Monitor(id)) => format!("answer monitor/{id}"),
            Effect::Answer(Answer::PulseRefused(err)) => format!("refused {err:?}"),
            Effect::Answer(Answer::Removed(id)) => format!("answer removed/{id}"),
            Effect::SavePulses(pulses) => {
                let ids: Vec<String> = pulses.iter().map(|p| p.id().to_string()).collect();
                format!("save pulses [{}]", ids.join(","))
            }
            Effect::ForgetMonitor { id, .. } => format!("forget monitor/{id}"),
            Effect::SaveService { id, durable, .. } => {
                format!("save service/{id}{}", if *durable { " now" } else { "" })
            }
            Effect::SpawnInstance(order) => {
                format!("spawn service/{}#{}", order.spec.id, order.counter)
            }
            Effect::SignalService { id, signal, .. } => {
                format!("signal service/{id} {}", signal.as_str())
            }
            Effect::InstanceControl { id, control } => format!("instance {id} {control:?}"),
            Effect::CloseLeftover { id, counter, .. } => format!("close leftover {id}#{counter}"),
            Effect::ServiceHistory { id, .. } => format!("history service/{id}"),
            Effect::NotifyService(alert) => format!("notify service/{}", alert.spec.id),
            Effect::WatchOrphan { id, .. } => format!("watch orphan {id}"),
            Effect::AdoptInstance { order, .. } => format!("adopt service/{}", order.spec.id),
            Effect::DeleteLogs(paths) => format!("delete {} logs", paths.len()),
            Effect::Answer(Answer::Service { id, reply }) => {
                format!("answer service/{id} {reply:?}")
            }
            Effect::Answer(Answer::ServicePing(ping)) => format!("answer ping {ping:?}"),
            Effect::ClusterSlot { key, at } => format!("claim {key}@{at}"),
            Effect::ClusterEnded {
                key,
                counter,
                status,
                ..
            } => format!("cluster end {key}#{counter} {status}"),
        })
        .collect()
}

// Queue rules (spec 6.1): idle starts now, one more is queued, further ones get 429;
// a paused job gets 412.

#[test]
fn an_idle_job_starts_at_once() {
    let mut w = World::new(1, vec![fresh(exec("a"))]);
    assert_eq!(
        w.trigger(job("a")),
        [
            "open job/a#1",
            "spawn job/a#1 api",
            "save",
            "publish",
            "answer job/a"
        ]
    );
    let view = w.view(&job("a"));
    assert_eq!(
        (view.status, view.counter, view.queued),
        (RunStatus::Running, 1, false)
    );
    assert_eq!(view.logs[0].status, RunStatus::Running);
    assert_eq!(view.logs[0].started, Some(at(T0)));
}

#[test]
fn a_trigger_while_running_is_queued_once() {
    let mut w = World::new(1, vec![fresh(exec("a"))]);
    w.trigger(job("a"));
    assert_eq!(w.trigger(job("a")), ["publish", "answer job/a"]);
    assert!(w.view(&job("a")).queued);
}

#[test]
fn a_third_trigger_is_refused_busy() {
    let mut w = World::new(1, vec![fresh(exec("a"))]);
    w.trigger(job("a"));
    w.trigger(job("a"));
    assert_eq!(w.trigger(job("a")), ["refused: job already run"]);
    assert_eq!(w.view(&job("a")).counter, 1);
}

#[test]
fn a_paused_job_refuses_triggers() {
    let mut w = World::new(1, vec![fresh(exec("a"))]);
    w.on(Event::Pause(job("a")));
    assert_eq!(w.trigger(job("a")), ["refused: job is paused"]);
}

#[test]
fn an_unknown_job_is_not_found() {
    let mut w = World::new(1, vec![fresh(exec("a"))]);
    assert_eq!(w.trigger(job("b")), ["refused: job not found: job/b"]);
    // Kinds do not mix: an HTTP job of the same id is another job.
    assert_eq!(
        w.trigger(job_http("a")),
        ["refused: job not found: job_http/a"]
    );
    assert_eq!(w.on(Event::Pause(job("b"))), ["answer unknown"]);
    assert_eq!(w.on(Event::Cancel(job("b"))), ["answer unknown"]);
}

#[test]
fn the_queued_run_starts_when_the_run_ends() {
    let mut w = World::new(1, vec![fresh(exec("a"))]);
    w.trigger(job("a"));
    w.trigger(job("a"));
    w.later(3);
    assert_eq!(
        w.finish(job("a"), 1, RunStatus::Success),
        [
            "count job/a success",
            "notify job/a#1 success after nothing",
            "open job/a#2",
            "spawn job/a#2 api",
            "save",
            "publish",
        ]
    );
    let view = w.view(&job("a"));
    assert_eq!((view.counter, view.queued), (2, false));
    assert_eq!(
        view.logs[0].ended,
        Some(at(T0).checked_add(secs(3)).unwrap())
    );
}

#[test]
fn an_http_job_queues_and_runs_the_same_way() {
    let mut w = World::new(1, vec![fresh(http("h"))]);
    assert_eq!(
        only_runs(w.trigger(job_http("h"))),
        ["spawn job_http/h#1 api", "answer job_http/h"]
    );
    w.trigger(job_http("h"));
    assert_eq!(w.trigger(job_http("h")), ["refused: job already run"]);
    assert_eq!(
        only_runs(w.finish(job_http("h"), 1, RunStatus::Failed)),
        ["spawn job_http/h#2 api"]
    );
}

// max_job_running

#[test]
fn a_second_job_waits_for_a_slot() {
    let mut w = World::new(1, vec![fresh(exec("a")), fresh(exec("b"))]);
    w.trigger(job("a"));
    assert_eq!(w.trigger(job("b")), ["publish", "answer job/b"]);
    let snapshot = w.snapshot();
    assert_eq!((snapshot.running, snapshot.waiting), (1, 1));
    let b = w.view(&job("b"));
    assert_eq!(
        (b.status, b.queued, b.counter),
        (RunStatus::Started, true, 0)
    );
}

#[test]
fn a_freed_slot_goes_to_the_first_waiter() {
    let mut w = World::new(
        1,
        vec![fresh(exec("a")), fresh(exec("b")), fresh(exec("c"))],
    );
    w.trigger(job("a"));
    w.trigger(job("c"));
    w.trigger(job("b"));
    assert_eq!(
        only_runs(w.finish(job("a"), 1, RunStatus::Success)),
        ["spawn job/c#1 api"]
    );
    assert_eq!(
        only_runs(w.finish(job("c"), 1, RunStatus::Success)),
        ["spawn job/b#1 api"]
    );
    assert_eq!(w.snapshot().waiting, 0);
}

#[test]
fn a_run_whose_work_is_done_gives_its_slot_back_but_still_runs() {
    let mut w = World::new(
        1,
        vec![fresh(exec("a")), fresh(exec("b")), fresh(exec("c"))],
    );
    w.trigger(job("a"));
    w.trigger(job("a"));
    w.trigger(job("b"));
    w.trigger(job("c"));
    let executed = |key: JobKey, counter| Event::RunExecuted { key, counter };
    // a's commands exited; its log is being closed: b gets the slot.
    assert_eq!(
        only_runs(w.on(executed(job("a"), 1))),
        ["spawn job/b#1 api"]
    );
    let snapshot = w.snapshot();
    assert_eq!((snapshot.running, snapshot.waiting), (2, 1));
    assert_eq!(w.view(&job("a")).status, RunStatus::Running);
    // Told twice, or about a run that is not running: nothing more.
    assert!(only_runs(w.on(executed(job("a"), 1))).is_empty());
    assert!(only_runs(w.on(executed(job("c"), 1))).is_empty());
    assert!(only_runs(w.on(executed(job("a"), 7))).is_empty());
    // a ends: its slot is already taken by b, so c still waits; a's queued run goes
    // behind c.
    assert!(only_runs(w.finish(job("a"), 1, RunStatus::Success)).is_empty());
    let snapshot = w.snapshot();
    assert_eq!((snapshot.running, snapshot.waiting), (1, 2));
    assert_eq!(
        only_runs(w.finish(job("b"), 1, RunStatus::Success)),
        ["spawn job/c#1 api"]
    );
    assert_eq!(
        only_runs(w.finish(job("c"), 1, RunStatus::Success)),
        ["spawn job/a#2 api"]
    );
}

#[test]
fn a_queued_run_of_a_busy_job_waits_behind_other_waiters() {
    let mut w = World::new(1, vec![fresh(exec("a")), fresh(exec("b"))]);
    w.trigger(job("a"));
    w.trigger(job("a"));
    w.trigger(job("b"));
    // a's queued run goes to the back of the line, behind b.
    assert_eq!(
        only_runs(w.finish(job("a"), 1, RunStatus::Success)),
        ["spawn job/b#1 api"]
    );
    assert_eq!(
        only_runs(w.finish(job("b"), 1, RunStatus::Success)),
        ["spawn job/a#2 api"]
    );
}

#[test]
fn http_jobs_take_no_slot() {
    let mut w = World::new(1, vec![fresh(exec("a")), fresh(http("h"))]);
    w.trigger(job("a"));
    assert_eq!(
        only_runs(w.trigger(job_http("h"))),
        ["spawn job_http/h#1 api", "answer job_http/h"]
    );
    let snapshot = w.snapshot();
    assert_eq!((snapshot.running, snapshot.waiting), (2, 0));
}

#[test]
fn two_slots_run_two_jobs() {
    let mut w = World::new(
        2,
        vec![fresh(exec("a")), fresh(exec("b")), fresh(exec("c"))],
    );
    for id in ["a", "b", "c"] {
        w.trigger(job(id));
    }
    let snapshot = w.snapshot();
    assert_eq!((snapshot.running, snapshot.waiting), (2, 1));
}

// Pause, resume and cancel in every state.

#[test]
fn pausing_an_idle_job_is_saved_before_the_answer() {
    let mut w = World::new(1, vec![fresh(exec("a"))]);
    assert_eq!(
        w.on(Event::Pause(job("a"))),
        ["save now", "publish", "answer job/a"]
    );
    let view = w.view(&job("a"));
    assert_eq!((view.status, view.paused), (RunStatus::Paused, true));
}

#[test]
fn pausing_a_running_job_lets_the_run_finish() {
    let mut w = World::new(1, vec![fresh(exec("a"))]);
    w.trigger(job("a"));
    assert_eq!(only_runs(w.on(Event::Pause(job("a")))), ["answer job/a"]);
    assert_eq!(w.view(&job("a")).status, RunStatus::Running);
    w.finish(job("a"), 1, RunStatus::Success);
    let view = w.view(&job("a"));
    assert_eq!((view.status, view.paused), (RunStatus::Paused, true));
    assert_eq!(view.logs[0].status, RunStatus::Success);
}

#[test]
fn a_run_accepted_before_a_pause_still_runs() {
    let mut w = World::new(1, vec![fresh(exec("a")), fresh(exec("b"))]);
    w.trigger(job("a"));
    w.trigger(job("b"));
    w.on(Event::Pause(job("b")));
    // b was accepted before the pause: it keeps its place and runs.
    assert_eq!(
        only_runs(w.finish(job("a"), 1, RunStatus::Success)),
        ["spawn job/b#1 api"]
    );
}

#[test]
fn resuming_rearms_an_interval_job_from_its_last_run() {
    let mut w = World::new(1, vec![fresh(every(exec("a"), 60))]);
    w.on(Event::TimerDue);
    w.later(10);
    w.finish(job("a"), 1, RunStatus::Success);
    w.on(Event::Pause(job("a")));
    w.later(20);
    w.on(Event::Resume(job("a")));
    let view = w.view(&job("a"));
    assert!(!view.paused);
    assert_eq!(view.status, RunStatus::Success);
    // Due one interval after the run ended at T0+10.
    assert_eq!(view.next_run, Some(at("2026-01-01T00:01:10Z")));
    assert_eq!(w.state.next_due(), Some(at("2026-01-01T00:01:10Z")));
}

#[test]
fn resuming_an_http_job_resets_its_status_to_started() {
    let mut w = World::new(1, vec![fresh(http("h"))]);
    w.trigger(job_http("h"));
    w.finish(job_http("h"), 1, RunStatus::Failed);
    w.on(Event::Pause(job_http("h")));
    assert_eq!(
        w.on(Event::Resume(job_http("h"))),
        ["save now", "publish", "answer job_http/h"]
    );
    assert_eq!(w.view(&job_http("h")).status, RunStatus::Started);
    // A command job keeps its last status (spec 6.4).
    let mut w = World::new(1, vec![fresh(exec("a"))]);
    w.trigger(job("a"));
    w.finish(job("a"), 1, RunStatus::Failed);
    w.on(Event::Pause(job("a")));
    w.on(Event::Resume(job("a")));
    assert_eq!(w.view(&job("a")).status, RunStatus::Failed);
}

#[test]
fn cancelling_a_running_job_cancels_its_run() {
    let mut w = World::new(1, vec![fresh(exec("a"))]);
    w.trigger(job("a"));
    assert_eq!(
        w.on(Event::Cancel(job("a"))),
        ["cancel job/a#1", "answer job/a"]
    );
    assert_eq!(
        only_runs(w.finish(job("a"), 1, RunStatus::Canceled)),
        Vec::<String>::new()
    );
    assert_eq!(w.view(&job("a")).status, RunStatus::Canceled);
}

#[test]
fn cancelling_a_waiting_job_drops_its_run() {
    let mut w = World::new(1, vec![fresh(exec("a")), fresh(exec("b"))]);
    w.trigger(job("a"));
    w.trigger(job("b"));
    assert_eq!(w.on(Event::Cancel(job("b"))), ["publish", "answer job/b"]);
    assert_eq!(w.snapshot().waiting, 0);
    assert!(!w.view(&job("b")).queued);
    assert_eq!(
        only_runs(w.finish(job("a"), 1, RunStatus::Success)),
        Vec::<String>::new()
    );
}

#[test]
fn cancelling_a_waiting_job_with_one_queued_keeps_the_queued_one() {
    let mut w = World::new(1, vec![fresh(exec("a")), fresh(exec("b"))]);
    w.trigger(job("a"));
    w.trigger(job("b"));
    w.trigger(job("b"));
    w.on(Event::Cancel(job("b")));
    assert!(w.view(&job("b")).queued);
    assert_eq!(
        only_runs(w.finish(job("a"), 1, RunStatus::Success)),
        ["spawn job/b#1 api"]
    );
}

#[test]
fn cancelling_an_idle_job_changes_nothing() {
    let mut w = World::new(1, vec![fresh(exec("a"))]);
    assert_eq!(w.on(Event::Cancel(job("a"))), ["answer job/a"]);
}

// Timers: interval and schedule re-arming.

#[test]
fn an_interval_job_that_never_ran_is_due_at_once_and_rearmed_after_its_run() {
    let mut w = World::new(1, vec![fresh(every(exec("a"), 60))]);
    assert_eq!(w.state.next_due(), Some(at(T0)));
    assert_eq!(only_runs(w.on(Event::TimerDue)), ["spawn job/a#1 timer"]);
    // The period runs from the end of the run: no timer while it runs.
    assert_eq!(w.state.next_due(), None);
    w.later(10);
    w.finish(job("a"), 1, RunStatus::Success);
    assert_eq!(w.state.next_due(), Some(at("2026-01-01T00:01:10Z")));
    assert_eq!(w.view(&job("a")).next_run, Some(at("2026-01-01T00:01:10Z")));
}

#[test]
fn a_timer_not_yet_due_fires_nothing() {
    let mut w = World::new(1, vec![fresh(minutely(exec("a")))]);
    assert_eq!(w.state.next_due(), Some(at("2026-01-01T00:01:00Z")));
    w.later(30);
    assert_eq!(w.on(Event::TimerDue), Vec::<String>::new());
}

#[test]
fn a_schedule_fires_each_slot_and_queues_one_run_behind_a_long_one() {
    let mut w = World::new(1, vec![fresh(minutely(exec("a")))]);
    w.later(60);
    assert_eq!(only_runs(w.on(Event::TimerDue)), ["spawn job/a#1 timer"]);
    // A schedule stays armed while the run goes on.
    assert_eq!(w.state.next_due(), Some(at("2026-01-01T00:02:00Z")));
    w.later(60);
    assert_eq!(only_runs(w.on(Event::TimerDue)), Vec::<String>::new());
    assert!(w.view(&job("a")).queued);
    w.later(60);
    // A third slot while one is queued is coalesced.
    w.on(Event::TimerDue);
    assert_eq!(w.view(&job("a")).counter, 1);
    assert_eq!(
        only_runs(w.finish(job("a"), 1, RunStatus::Success)),
        ["spawn job/a#2 timer"]
    );
    assert_eq!(w.state.next_due(), Some(at("2026-01-01T00:04:00Z")));
}

#[test]
fn a_run_asked_for_by_the_api_leaves_the_schedule_armed() {
    let mut w = World::new(1, vec![fresh(minutely(exec("a")))]);
    w.later(30);
    w.trigger(job("a"));
    assert_eq!(w.state.next_due(), Some(at("2026-01-01T00:01:00Z")));
    // The slot during the run queues one more run.
    w.later(30);
    w.on(Event::TimerDue);
    assert!(w.view(&job("a")).queued);
    assert_eq!(
        only_runs(w.finish(job("a"), 1, RunStatus::Success)),
        ["spawn job/a#2 timer"]
    );
}

#[test]
fn a_late_wake_up_fires_a_schedule_once_and_skips_missed_slots() {
    let mut w = World::new(1, vec![fresh(minutely(exec("a")))]);
    w.later(60 * 3 + 5);
    assert_eq!(only_runs(w.on(Event::TimerDue)), ["spawn job/a#1 timer"]);
    assert_eq!(w.state.next_due(), Some(at("2026-01-01T00:04:00Z")));
}

#[test]
fn a_timer_of_a_paused_job_is_skipped_and_rearmed() {
    let mut w = World::new(1, vec![fresh(minutely(exec("a")))]);
    w.on(Event::Pause(job("a")));
    w.later(60);
    assert_eq!(only_runs(w.on(Event::TimerDue)), Vec::<String>::new());
    assert_eq!(w.view(&job("a")).counter, 0);
    assert_eq!(w.state.next_due(), Some(at("2026-01-01T00:02:00Z")));
    // A paused interval job skips ticks one interval apart.
    let mut w = World::new(1, vec![fresh(every(exec("b"), 60))]);
    w.on(Event::Pause(job("b")));
    w.on(Event::TimerDue);
    assert_eq!(w.view(&job("b")).counter, 0);
    assert_eq!(w.state.next_due(), Some(at("2026-01-01T00:01:00Z")));
}

// Reloads while runs are going.

#[test]
fn a_reload_adds_a_job_and_arms_it() {
    let mut w = World::new(1, vec![fresh(exec("a"))]);
    let b = every(exec("b"), 60);
    let config = w.state.config.clone();
    assert_eq!(
        w.on(Event::Reload {
            jobs: vec![exec("a"), b.clone()],
            restored: vec![fresh(b)],
            max_job_running: 1,
            config,
            monitors: Vec::new(),
            services: Vec::new(),
        }),
        ["save", "publish", "answer done"]
    );
    let names: Vec<_> = w
        .snapshot()
        .jobs
        .iter()
        .map(|j| j.name().to_string())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(w.state.next_due(), Some(at(T0)));
    assert_eq!(only_runs(w.on(Event::TimerDue)), ["spawn job/b#1 timer"]);
}

#[test]
fn a_reload_publishes_the_new_configuration_with_the_new_jobs() {
    let mut w = World::new(1, vec![fresh(exec("a"))]);
    let mut config = crate::config::defaults(std::path::Path::new("/base"));
    config.name = "renamed".to_string();
    w.on(Event::Reload {
        jobs: vec![exec("b")],
        restored: vec![fresh(exec("b"))],
        max_job_running: 1,
        config: Arc::new(config),
        monitors: Vec::new(),
        services: Vec::new(),
    });
    let snapshot = w.snapshot();
    assert_eq!(snapshot.config.name, "renamed");
    assert_eq!(snapshot.jobs.len(), 1);
    assert_eq!(snapshot.jobs[0].name(), "b");
}

#[test]
fn a_reload_drops_an_idle_job_at_once() {
    let mut w = World::new(1, vec![fresh(exec("a")), fresh(every(exec("b"), 60))]);
    let config = w.state.config.clone();
    w.on(Event::Reload {
        jobs: vec![exec("a")],
        restored: vec![],
        max_job_running: 1,
        config,
        monitors: Vec::new(),
        services: Vec::new(),
    });
    assert_eq!(w.snapshot().jobs.len(), 1);
    assert_eq!(w.state.next_due(), None);
    assert_eq!(w.trigger(job("b")), ["refused: job not found: job/b"]);
}

#[test]
fn a_job_removed_while_running_is_forgotten_when_its_run_ends() {
    let mut w = World::new(2, vec![fresh(exec("a")), fresh(every(exec("b"), 60))]);
    w.on(Event::TimerDue);
    w.trigger(job("a"));
    w.trigger(job("a"));
    let config = w.state.config.clone();
    w.on(Event::Reload {
        jobs: vec![every(exec("b"), 60)],
        restored: vec![],
        max_job_running: 1,
        config,
        monitors: Vec::new(),
        services: Vec::new(),
    });
    // Still listed while its run goes on, but it takes no more triggers.
    assert_eq!(w.snapshot().jobs.len(), 2);
    assert_eq!(w.trigger(job("a")), ["refused: job not found: job/a"]);
    assert_eq!(w.on(Event::Cancel(job("a"))), ["answer unknown"]);
    // Its queued run is dropped with it.
    assert_eq!(
        only_runs(w.finish(job("a"), 1, RunStatus::Success)),
        Vec::<String>::new()
    );
    assert_eq!(w.snapshot().jobs.len(), 1);
}

#[test]
fn a_job_changed_while_running_keeps_its_run_and_changes_from_the_next() {
    let old = with(exec("a"), |c| c.notif_on_failed = vec!["old".to_string()]);
    let new = with(every(exec("a"), 60), |c| {
        c.notif_on_failed = vec!["new".to_string()];
    });
    let mut w = World::new(1, vec![fresh(old)]);
    w.trigger(job("a"));
    let config = w.state.config.clone();
    w.on(Event::Reload {
        jobs: vec![new],
        restored: vec![],
        max_job_running: 1,
        config,
        monitors: Vec::new(),
        services: Vec::new(),
    });
    // Interval jobs are not armed while they run.
    assert_eq!(w.state.next_due(), None);
    let effects = decide(
        &mut w.state,
        Event::RunFinished(Finished {
            key: job("a"),
            counter: 1,
            status: RunStatus::Failed,
            at: w.now,
            exit_code: Some(1),
            log: Some(PathBuf::from("/log/a/a.1.failed")),
        }),
        w.now,
    );
    // The run's notifications follow the job as it was when the run started.
    let notified: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Notify(n) => Some(n.def.common.notif_on_failed.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(notified, [vec!["old".to_string()]]);
    assert_eq!(w.state.next_due(), Some(at("2026-01-01T00:01:00Z")));
    assert_eq!(w.view(&job("a")).logs[0].exit_code, Some(1));
}

#[test]
fn a_reload_raising_max_job_running_starts_waiting_runs() {
    let mut w = World::new(1, vec![fresh(exec("a")), fresh(exec("b"))]);
    w.trigger(job("a"));
    w.trigger(job("b"));
    let config = w.state.config.clone();
    assert_eq!(
        only_runs(w.on(Event::Reload {
            jobs: vec![exec("a"), exec("b")],
            restored: vec![],
            max_job_running: 2,
            config,
            monitors: Vec::new(),
            services: Vec::new(),
        })),
        ["spawn job/b#1 api", "answer done"]
    );
}

#[test]
fn a_reload_removing_a_waiting_job_takes_it_out_of_the_line() {
    let mut w = World::new(1, vec![fresh(exec("a")), fresh(exec("b"))]);
    w.trigger(job("a"));
    w.trigger(job("b"));
    let config = w.state.config.clone();
    w.on(Event::Reload {
        jobs: vec![exec("a")],
        restored: vec![],
        max_job_running: 1,
        config,
        monitors: Vec::new(),
        services: Vec::new(),
    });
    assert_eq!(w.snapshot().waiting, 0);
    assert_eq!(
        only_runs(w.finish(job("a"), 1, RunStatus::Success)),
        Vec::<String>::new()
    );
}

// Restore after a crash, logs and the end of runs.

#[test]
fn a_restored_job_continues_its_counter_and_notifies_a_recovery() {
    // The scan closed the interrupted run 7 as failed.
    let mut restored = fresh(exec("a"));
    restored.counter = 7;
    restored.status = RunStatus::Failed;
    restored.last_run = Some(at(T0));
    restored.logs = vec![
        log("a", 6, RunStatus::Success),
        log("a", 7, RunStatus::Failed),
    ];
    let mut w = World::new(1, vec![restored]);
    assert_eq!(w.view(&job("a")).status, RunStatus::Failed);
    assert_eq!(
        only_runs(w.trigger(job("a"))),
        ["spawn job/a#8 api", "answer job/a"]
    );
    let effects = w.finish(job("a"), 8, RunStatus::Success);
    assert!(
        effects.contains(&"notify job/a#8 success after failed".to_string()),
        "{effects:?}"
    );
}

#[test]
fn a_restored_paused_job_stays_paused() {
    let mut restored = fresh(minutely(exec("a")));
    restored.paused = true;
    let mut w = World::new(1, vec![restored]);
    assert_eq!(w.view(&job("a")).status, RunStatus::Paused);
    assert_eq!(w.trigger(job("a")), ["refused: job is paused"]);
    w.later(60);
    assert_eq!(only_runs(w.on(Event::TimerDue)), Vec::<String>::new());
}

#[test]
fn a_restored_interval_job_is_due_one_interval_after_its_last_run() {
    let mut restored = fresh(every(exec("a"), 3600));
    restored.last_run = Some(at("2025-12-31T23:30:00Z"));
    let w = World::new(1, vec![restored]);
    assert_eq!(w.state.next_due(), Some(at("2026-01-01T00:30:00Z")));
    // Overdue while karajo was down: due at once, not in the past.
    let mut restored = fresh(every(exec("b"), 60));
    restored.last_run = Some(at("2025-12-31T20:00:00Z"));
    let w = World::new(1, vec![restored]);
    assert_eq!(w.state.next_due(), Some(at(T0)));
}

#[test]
fn a_new_run_prunes_the_oldest_logs_but_never_a_running_one() {
    let mut restored = fresh(with(exec("a"), |c| c.log_retention = 2));
    restored.counter = 3;
    restored.logs = (1..=3).map(|n| log("a", n, RunStatus::Success)).collect();
    let mut w = World::new(1, vec![restored]);
    assert_eq!(
        w.trigger(job("a"))[0],
        "open job/a#4 prune a.1.success a.2.success"
    );
    let counters: Vec<_> = w.view(&job("a")).logs.iter().map(|l| l.counter).collect();
    assert_eq!(counters, [3, 4]);
}

#[test]
fn a_run_whose_log_could_not_be_created_leaves_no_log_and_fails() {
    let mut w = World::new(1, vec![fresh(exec("a"))]);
    w.trigger(job("a"));
    let effects = w.on(Event::RunFinished(Finished {
        key: job("a"),
        counter: 1,
        status: RunStatus::Failed,
        at: w.now,
        exit_code: None,
        log: None,
    }));
    assert!(
        !effects.iter().any(|e| e.starts_with("notify")),
        "{effects:?}"
    );
    let view = w.view(&job("a"));
    assert_eq!((view.status, view.counter), (RunStatus::Failed, 1));
    assert!(view.logs.is_empty());
}

#[test]
fn the_end_of_a_run_that_is_not_running_is_ignored() {
    let mut w = World::new(1, vec![fresh(exec("a"))]);
    w.trigger(job("a"));
    assert_eq!(
        w.finish(job("a"), 5, RunStatus::Success),
        Vec::<String>::new()
    );
    assert_eq!(
        w.finish(job("zz"), 1, RunStatus::Success),
        Vec::<String>::new()
    );
    assert_eq!(w.view(&job("a")).status, RunStatus::Running);
}

// Shutdown.

#[test]
fn an_idle_scheduler_stops_at_once() {
    let mut w = World::new(1, vec![fresh(minutely(exec("a")))]);
    assert_eq!(w.on(Event::Shutdown), ["publish", "save now", "stopped"]);
    assert_eq!(w.state.next_due(), None);
}

#[test]
fn a_shutdown_cancels_runs_and_stops_after_the_last_one_ends() {
    let mut w = World::new(
        1,
        vec![fresh(exec("a")), fresh(exec("b")), fresh(http("h"))],
    );
    w.trigger(job("a"));
    w.trigger(job("a"));
    w.trigger(job("b"));
    w.trigger(job_http("h"));
    assert_eq!(
        only_runs(w.on(Event::Shutdown)),
        ["cancel job/a#1", "cancel job_http/h#1"]
    );
    assert_eq!(w.snapshot().waiting, 0);
    assert_eq!(w.trigger(job("b")), ["refused: karajo is shutting down"]);
    // The queued run of a is not started.
    assert_eq!(
        only_runs(w.finish(job("a"), 1, RunStatus::Canceled)),
        Vec::<String>::new()
    );
    let last = w.finish(job_http("h"), 1, RunStatus::Canceled);
    assert_eq!(last[last.len() - 2..], ["save now", "stopped"]);
    assert_eq!(w.state.next_due(), None);
}

// Heartbeat monitors in the same state and timer set.

fn monitor_spec(name: &str, period: u64, notify: bool) -> crate::config::MonitorSpec {
    use crate::config::{Cadence, MonitorAuth, MonitorRules};
    crate::config::MonitorSpec {
        name: name.to_string(),
        id: JobId::from_name(name),
        file: PathBuf::from("karajo.conf"),
        line: 1,
        description: String::new(),
        path: format!("/{name}"),
        auth: MonitorAuth::None,
        post_only: false,
        ping_body_limit: 10_000,
        log_retention: 3,
        manual_resume: false,
        accept_pulse: false,
        rules: MonitorRules {
            cadence: Cadence::Period(Duration::from_secs(period)),
            grace: Duration::ZERO,
            max_runtime: None,
            log_success: true,
            notif_on_down: if notify {
                vec!["ops".to_string()]
            } else {
                Vec::new()
            },
            notif_on_up: if notify {
                vec!["ops".to_string()]
            } else {
                Vec::new()
            },
            notif_on_late: Vec::new(),
            notif_repeat: None,
        },
        origin: crate::config::MonitorOrigin::Section,
    }
}

fn monitor_world(
    state: Option<crate::monitor::MonitorState>,
    last_alive: Option<Timestamp>,
) -> World {
    let config = Arc::new(crate::config::defaults(std::path::Path::new("/base")));
    let mut world = World {
        state: SchedulerState::new(config.clone()),
        now: at(T0),
    };
    world.on(Event::Restore {
        jobs: Vec::new(),
        max_job_running: 1,
        config,
        monitors: vec![RestoredMonitor {
            spec: Arc::new(monitor_spec("m", 60, true)),
            state,
            logs: Vec::new(),
            log_dir: PathBuf::from("/log/m"),
        }],
        last_alive,
        pulses: Vec::new(),
        services: Vec::new(),
    });
    world
}

fn check_in(w: &mut World, signal: crate::monitor::Signal) -> Vec<String> {
    w.on(Event::Ping {
        id: JobId::from_raw("m"),
        ping: crate::monitor::Ping {
            signal,
            rid: None,
            next_in: None,
        },
        block: PingBlock {
            at: w.now,
            lines: vec!["=== SUCCESS via GET".to_string()],
        },
    })
}

#[test]
fn a_first_ping_writes_its_log_saves_the_transition_and_answers_after_it() {
    let mut w = monitor_world(None, None);
    assert_eq!(w.state.next_due(), None);
    assert_eq!(
        check_in(&mut w, crate::monitor::Signal::Success),
        [
            "log monitor/m#1 Lone(Success)",
            "save monitor/m now",
            "count monitor/m up",
            "event",
            "publish",
            "answer ping up",
        ]
    );
    // Due one period later, in the same timer set as the jobs.
    assert_eq!(w.state.next_due(), Some(at("2026-01-01T00:01:00Z")));
    assert_eq!(w.snapshot().monitors[0].logs.len(), 1);
}

#[test]
fn a_missed_deadline_takes_a_monitor_down_and_notifies_once() {
    let mut w = monitor_world(None, None);
    check_in(&mut w, crate::monitor::Signal::Success);
    w.later(60);
    assert_eq!(
        w.on(Event::TimerDue),
        [
            "save monitor/m now",
            "count monitor/m down",
            "event",
            "notify monitor/m down",
            "publish"
        ]
    );
    assert_eq!(w.snapshot().monitors[0].state.status.as_str(), "down");
    assert_eq!(w.state.next_due(), None);
    w.later(5);
    let back = check_in(&mut w, crate::monitor::Signal::Success);
    assert!(
        back.contains(&"notify monitor/m up".to_string()),
        "{back:?}"
    );
}

#[test]
fn pausing_a_monitor_is_saved_before_its_answer_and_ignores_no_success() {
    let mut w = monitor_world(None, None);
    check_in(&mut w, crate::monitor::Signal::Success);
    let paused = w.on(Event::PauseMonitor {
        id: JobId::from_raw("m"),
        until: None,
    });
    assert_eq!(
        paused.first().map(String::as_str),
        Some("save monitor/m now")
    );
    assert_eq!(paused.last().map(String::as_str), Some("answer monitor/m"));
    assert_eq!(w.state.next_due(), None);
    // Paused until the next success, which resumes it.
    check_in(&mut w, crate::monitor::Signal::Success);
    assert_eq!(w.snapshot().monitors[0].state.status.as_str(), "up");
    assert_eq!(
        w.on(Event::ResumeMonitor(JobId::from_raw("zz"))),
        ["answer unknown"]
    );
}

#[test]
fn a_restart_credits_a_deadline_that_fell_while_karajo_was_down() {
    // Up, due at 10:01; karajo stopped at 10:00:30 and started at 10:02 (spec A.7).
    let mut state = crate::monitor::MonitorState::new(at("2026-01-01T09:00:00Z"));
    state.status = crate::monitor::Status::Up;
    state.last_ping = Some(at("2026-01-01T10:00:00Z"));
    state.due = Some(at("2026-01-01T10:01:00Z"));
    let config = Arc::new(crate::config::defaults(std::path::Path::new("/base")));
    let mut w = World {
        state: SchedulerState::new(config.clone()),
        now: at("2026-01-01T10:02:00Z"),
    };
    let effects = w.on(Event::Restore {
        jobs: Vec::new(),
        max_job_running: 1,
        config,
        monitors: vec![RestoredMonitor {
            spec: Arc::new(monitor_spec("m", 60, true)),
            state: Some(state),
            logs: Vec::new(),
            log_dir: PathBuf::from("/log/m"),
        }],
        last_alive: Some(at("2026-01-01T10:00:30Z")),
        pulses: Vec::new(),
        services: Vec::new(),
    });
    assert!(
        !effects.iter().any(|e| e.starts_with("notify")),
        "{effects:?}"
    );
    assert!(effects.contains(&"event".to_string()), "{effects:?}");
    let monitor = &w.snapshot().monitors[0];
    assert_eq!(monitor.state.status.as_str(), "up");
    assert_eq!(monitor.state.due, Some(at("2026-01-01T10:03:00Z")));
}

#[test]
fn a_pause_until_a_time_resumes_by_itself_on_its_timer() {
    let mut w = monitor_world(None, None);
    check_in(&mut w, crate::monitor::Signal::Success);
    let until = crate::monitor::PauseUntil::Time(at("2026-01-01T00:00:30Z"));
    w.on(Event::PauseMonitor {
        id: JobId::from_raw("m"),
        until: Some(until),
    });
    // Pings are ignored until then, and write no log.
    let ignored = check_in(&mut w, crate::monitor::Signal::Success);
    assert!(
        !ignored.iter().any(|e| e.starts_with("log ")),
        "{ignored:?}"
    );
    assert_eq!(
        ignored.last().map(String::as_str),
        Some("answer ping paused")
    );
    assert_eq!(w.state.next_due(), Some(at("2026-01-01T00:00:30Z")));
    w.later(30);
    w.on(Event::TimerDue);
    assert_eq!(w.snapshot().monitors[0].state.status.as_str(), "up");
    // Due one period after the resume.
    assert_eq!(w.state.next_due(), Some(at("2026-01-01T00:01:30Z")));
}

#[test]
fn a_reload_drops_a_removed_monitor_and_its_deadline() {
    let mut w = monitor_world(None, None);
    check_in(&mut w, crate::monitor::Signal::Success);
    assert!(w.state.next_due().is_some());
    let config = Arc::new(crate::config::defaults(std::path::Path::new("/base")));
    w.on(Event::Reload {
        jobs: Vec::new(),
        restored: Vec::new(),
        max_job_running: 1,
        config,
        monitors: Vec::new(),
        services: Vec::new(),
    });
    assert!(w.snapshot().monitors.is_empty());
    assert_eq!(w.state.next_due(), None);
    assert_eq!(
        check_in(&mut w, crate::monitor::Signal::Success),
        ["answer unknown"]
    );
}

#[test]
fn a_reload_changing_a_period_moves_the_deadline_from_the_last_check_in() {
    let mut w = monitor_world(None, None);
    check_in(&mut w, crate::monitor::Signal::Success);
    assert_eq!(w.state.next_due(), Some(at("2026-01-01T00:01:00Z")));
    let mut config = crate::config::defaults(std::path::Path::new("/base"));
    config.monitors = vec![monitor_spec("m", 600, true)];
    w.later(10);
    w.on(Event::Reload {
        jobs: Vec::new(),
        restored: Vec::new(),
        max_job_running: 1,
        config: Arc::new(config),
        monitors: Vec::new(),
        services: Vec::new(),
    });
    assert_eq!(w.snapshot().monitors[0].state.status.as_str(), "up");
    assert_eq!(w.state.next_due(), Some(at("2026-01-01T00:10:00Z")));
}

#[test]
fn a_run_opens_its_log_on_start_and_closes_it_on_the_end_ping() {
    let mut w = monitor_world(None, None);
    let started = check_in(&mut w, crate::monitor::Signal::Start);
    assert_eq!(started[0], "log monitor/m#1 Open");
    assert_eq!(started[1], "save monitor/m now");
    w.later(5);
    let ended = check_in(&mut w, crate::monitor::Signal::Success);
    assert_eq!(ended[0], "log monitor/m#1 Close(Success)");
    let monitor = &w.snapshot().monitors[0];
    assert_eq!(monitor.state.last_duration, Some(Duration::from_secs(5)));
    assert_eq!(monitor.logs.len(), 1);
    assert_eq!(monitor.logs[0].status, RunStatus::Success);
}

// watchTower pulses: dynamic monitors beside the configured one.

fn pulse_world(max_monitors: usize) -> World {
    let mut config = crate::config::defaults(std::path::Path::new("/base"));
    config.watchtower = Some(crate::config::WatchtowerConfig {
        file: PathBuf::from("karajo.conf"),
        line: 1,
        password: "pw".to_string(),
        path: "/karajo/api/watchtower".to_string(),
        grace: Duration::ZERO,
        max_monitors,
        log_retention: 5,
        notif_on_down: vec!["ops".to_string()],
        notif_on_up: Vec::new(),
    });
    config.monitors = vec![monitor_spec("m", 60, false)];
    let config = Arc::new(config);
    let mut world = World {
        state: SchedulerState::new(config.clone()),
        now: at(T0),
    };
    world.on(Event::Restore {
        jobs: Vec::new(),
        max_job_running: 1,
        config,
        monitors: vec![RestoredMonitor {
            spec: Arc::new(monitor_spec("m", 60, false)),
            state: None,
            logs: Vec::new(),
            log_dir: PathBuf::from("/log/m"),
        }],
        last_alive: None,
        pulses: Vec::new(),
        services: Vec::new(),
    });
    world
}

fn a_pulse(service: &str, next_in: u32) -> crate::monitor::Pulse {
    crate::monitor::Pulse {
        service: service.to_string(),
        alert_type: String::new(),
        alert_target: String::new(),
        next_in: crate::monitor::NextIn::from_seconds(next_in).unwrap(),
    }
}

fn send_pulse(w: &mut World, pulse: crate::monitor::Pulse, fresh: bool) -> Vec<String> {
    let id = pulse.id();
    let fresh = fresh.then(|| {
        Box::new(RestoredMonitor {
            spec: Arc::new(monitor_spec(id.as_str(), 1, false)),
            state: None,
            logs: Vec::new(),
            log_dir: PathBuf::from(format!("/log/{id}")),
        })
    });
    let block = PingBlock {
        at: w.now,
        lines: vec!["=== PULSE".to_string()],
    };
    w.on(Event::Pulse {
        pulse,
        block,
        fresh,
    })
}

#[test]
fn a_pulse_creates_a_dynamic_monitor_saves_its_record_and_checks_in_with_next_in() {
    let mut w = pulse_world(10);
    let effects = send_pulse(&mut w, a_pulse("svc A", 30), true);
    assert_eq!(
        effects,
        [
            "event",
            "save monitor/svc_a",
            "save pulses [svc_a]",
            "log monitor/svc_a#1 Lone(Success)",
            "save monitor/svc_a now",
            "count monitor/svc_a up",
            "event",
            "publish",
            "answer monitor/svc_a",
        ]
    );
    let snapshot = w.snapshot();
    let view = snapshot.monitor("svc_a").unwrap();
    assert!(view.spec.is_dynamic());
    assert_eq!(
        view.spec.rules.notif_on_down,
        ["ops"],
        "[watchtower] notifs"
    );
    assert_eq!(view.state.next_due(), Some(at("2026-01-01T00:00:30Z")));
    // No ping route for it: only the configured monitor has one.
    assert!(snapshot.ping_routes.resolve("svc_a").is_err());
    assert!(snapshot.ping_routes.resolve("m").is_ok());
    // The same pulse again changes no record: no save of it.
    w.later(10);
    let again = send_pulse(&mut w, a_pulse("svc A", 30), false);
    assert!(
        !again.iter().any(|e| e.starts_with("save pulses")),
        "{again:?}"
    );
    // A new nextIn is a new record.
    let changed = send_pulse(&mut w, a_pulse("svc A", 90), false);
    assert!(
        changed.contains(&"save pulses [svc_a]".to_string()),
        "{changed:?}"
    );
    assert_eq!(w.state.next_due(), Some(at("2026-01-01T00:01:40Z")));
}

#[test]
fn a_pulse_for_a_configured_monitor_needs_accept_pulse_and_the_limit_holds() {
    let mut w = pulse_world(1);
    assert_eq!(
        send_pulse(&mut w, a_pulse("M", 30), false),
        ["refused Conflict(\"m\")"]
    );
    assert_eq!(
        send_pulse(&mut w, a_pulse("a", 30), true).last().unwrap(),
        "answer monitor/a"
    );
    assert_eq!(
        send_pulse(&mut w, a_pulse("b", 30), true),
        ["refused Limit(1)"]
    );
    assert!(w.snapshot().monitor("b").is_none());
}

#[test]
fn a_cancel_forgets_a_dynamic_monitor_and_a_reload_keeps_the_others() {
    let mut w = pulse_world(10);
    send_pulse(&mut w, a_pulse("a", 30), true);
    send_pulse(&mut w, a_pulse("b", 30), true);
    // A reload (the configured monitor unchanged) keeps both dynamic monitors.
    let config = w.snapshot().config.clone();
    w.on(Event::Reload {
        jobs: Vec::new(),
        restored: Vec::new(),
        max_job_running: 1,
        config: config.clone(),
        monitors: Vec::new(),
        services: Vec::new(),
    });
    assert!(w.snapshot().monitor("a").is_some() && w.snapshot().monitor("b").is_some());
    assert_eq!(
        w.on(Event::CancelPulse("a".to_string())),
        [
            "forget monitor/a",
            "event",
            "save pulses [b]",
            "publish",
            "answer removed/a"
        ]
    );
    assert!(w.snapshot().monitor("a").is_none());
    // Its timer went with it: the next due is b's.
    assert_eq!(w.state.next_due(), Some(at("2026-01-01T00:00:30Z")));
    assert_eq!(
        w.on(Event::CancelPulse("a".to_string())),
        ["refused NotFound(\"a\")"]
    );
    // A configured monitor with b's id replaces the dynamic one, keeping its state.
    let mut config = (*config).clone();
    config.monitors.push(monitor_spec("b", 600, false));
    w.on(Event::Reload {
        jobs: Vec::new(),
        restored: Vec::new(),
        max_job_running: 1,
        config: Arc::new(config),
        monitors: Vec::new(),
        services: Vec::new(),
    });
    let snapshot = w.snapshot();
    let b = snapshot.monitor("b").unwrap();
    assert!(!b.spec.is_dynamic());
    assert_eq!(b.state.counter, 1);
    assert!(snapshot.ping_routes.resolve("b").is_ok());
}

// Cluster mode (cluster spec 7.2, 7.4, 7.5): the scheduler's side. The cluster's record
// holds the queue and the pause; this node claims its timers' slots, runs the orders
// it accepted with the cluster's counters, and reports their ends.

#[test]
fn a_cluster_jobs_due_timer_becomes_a_slot_claim_and_a_local_job_runs_as_before() {
    let tick = minutely(exec("tick"));
    let local = with(minutely(exec("loc")), |c| {
        c.run_on = crate::cluster::RunOn::Local;
    });
    let mut w = World::clustered(vec![fresh(tick), fresh(local)]);
    w.later(60);
    let effects = w.on(Event::TimerDue);
    assert!(
        effects.contains(&"claim job/tick@2026-01-01T00:01:00Z".to_string()),
        "{effects:?}"
    );
    assert!(
        effects.contains(&"spawn job/loc#1 timer".to_string()),
        "{effects:?}"
    );
    assert!(
        !effects.iter().any(|e| e.starts_with("spawn job/tick")),
        "{effects:?}"
    );
    assert_eq!(
        w.view(&job("tick")).next_run,
        Some(at("2026-01-01T00:02:00Z")),
        "re-armed for the next slot"
    );
}

#[test]
fn an_accepted_order_runs_with_the_clusters_counter_and_its_end_goes_back() {
    let mut w = World::clustered(vec![fresh(exec("pin"))]);
    let effects = w.on(Event::ClusterStart {
        key: job("pin"),
        counter: 7,
        trigger: Trigger::Webhook,
        run: "r7".into(),
    });
    assert_eq!(
        only_runs(effects),
        ["spawn job/pin#7 webhook", "answer job/pin"]
    );
    assert_eq!(w.view(&job("pin")).counter, 7);
    let second = w.on(Event::ClusterStart {
        key: job("pin"),
        counter: 8,
        trigger: Trigger::Webhook,
        run: "r8".into(),
    });
    assert_eq!(only_runs(second), ["refused: job already run"]);
    let end = w.finish(job("pin"), 7, RunStatus::Success);
    assert!(
        end.contains(&"cluster end job/pin#7 success".to_string()),
        "{end:?}"
    );
    assert!(
        end.iter().any(|e| e.starts_with("notify job/pin#7")),
        "{end:?}"
    );
    assert!(
        !end.iter().any(|e| e.starts_with("spawn")),
        "no local queue: {end:?}"
    );
}

#[test]
fn the_shared_record_drives_the_view_and_a_cancel_for_this_nodes_run() {
    use crate::cluster::decide::{ActiveRun, ActiveState, JobRecord};
    let mut w = World::clustered(vec![fresh(exec("long"))]);
    w.on(Event::ClusterStart {
        key: job("long"),
        counter: 3,
        trigger: Trigger::Api,
        run: "r3".into(),
    });
    let mut record = JobRecord::seed(3, Some(RunStatus::Success), Some(at(T0)), true);
    record.active = Some(ActiveRun {
        run: "r3".into(),
        counter: 3,
        target: crate::cluster::RunOn::Any,
        node: Some(crate::cluster::NodeName::parse("n1").unwrap()),
        state: ActiveState::Running,
        seq: None,
        since: at(T0),
        deadline: at(T0),
        cancel_requested: true,
        group: None,
    });
    let effects = w.on(Event::ClusterRecord {
        key: job("long"),
        record: Box::new(record.clone()),
        revision: 5,
    });
    assert!(
        effects.contains(&"cancel job/long#3".to_string()),
        "{effects:?}"
    );
    let view = w.view(&job("long"));
    assert!(view.paused, "the pause is the cluster's");
    // Another node's run: the view says running, nothing is cancelled here.
    let mut w = World::clustered(vec![fresh(exec("long"))]);
    if let Some(active) = record.active.as_mut() {
        active.node = Some(crate::cluster::NodeName::parse("n2").unwrap());
    }
    record.paused = false;
    let effects = w.on(Event::ClusterRecord {
        key: job("long"),
        record: Box::new(record),
        revision: 6,
    });
    assert!(
        !effects.iter().any(|e| e.starts_with("cancel")),
        "{effects:?}"
    );
    let view = w.view(&job("long"));
    assert_eq!(view.status, RunStatus::Running);
    assert_eq!(view.counter, 3);
}

#[test]
fn a_jobs_cluster_digest_changes_with_its_definition_and_the_shared_secret_only() {
    use crate::cluster::agent::job_digest;
    let key = b"shared-secret";
    let base = job_digest(&exec("pin"), key);
    assert!(base.starts_with("hmac-sha256:"), "{base}");
    assert_eq!(
        base,
        job_digest(&exec("pin"), key),
        "the same on every node"
    );
    // What may differ between nodes does not change it.
    let local = with(exec("pin"), |c| {
        c.file = "/elsewhere/job.d/pin.conf".into();
        c.line = 40;
        c.log_retention = 99;
        c.notif_on_failed = vec!["ops".into()];
    });
    assert_eq!(base, job_digest(&local, key));
    // What changes what a run does, does.
    let other_secret = with(exec("pin"), |c| c.secret = "t".into());
    assert_ne!(base, job_digest(&other_secret, key));
    let other_place = with(exec("pin"), |c| c.run_on = crate::cluster::RunOn::All);
    assert_ne!(base, job_digest(&other_place, key));
    assert_ne!(base, job_digest(&http("pin"), key));
    // Keyed: without the shared secret a reader of the lease cannot reproduce it.
    assert_ne!(base, job_digest(&exec("pin"), b"another-cluster"));
}

mod policies;
