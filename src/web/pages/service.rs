//! A supervised service in the web UI: its page at `/karajo/app/service/<id>` (the
//! status in words and colour, enabled and run once, the CAS, the current instance
//! and the last exit, the recent log segments linked to their log pages, the instance
//! history, the definition, and the controls), the part of that page that its live
//! stream sends again with every snapshot ([`ServiceLive`]), and the service's card and
//! list row on the dashboard. Everything is built from the scheduler's
//! [`ServiceView`] and, for the history, from `state/service/<id>.history.jsonl`
//! (read on a blocking thread); nothing here changes a service (the controls are in
//! `controls.rs`).
//!
//! **No secrets.** A service's `env` values and its `secret` never reach a page: the
//! environment is shown by its names only, and the secret only as "set".

use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use jiff::Timestamp;

use super::screens::human_size;
use super::view::{self, Fact, Group, ListRow, RunRow, TimeView, human_duration};
use super::{Chrome, Viewer, WuiError, html};
use crate::config::duration::format_short;
use crate::config::model::{OnExit, ReadyRule, RestartPolicy, ServicePolicy, ServiceSignal};
use crate::exec::group_usage::{Usage, UsageMeter};
use crate::job::{JobId, JobKind, RunStatus};
use crate::scheduler::ServiceView;
use crate::service::{HistoryEntry, HistoryReason, LastExit, Status, StopTarget};
use crate::store::Layout;
use crate::web::AppState;

/// Instance history entries a page shows, newest first.
pub(super) const HISTORY_ROWS: usize = 20;

/// The URL of a service's page.
pub(super) fn page_href(id: &str) -> String {
    view::job_href(JobKind::Service, id)
}

/// The service with this id in the newest snapshot.
pub(super) fn find(state: &AppState, id: &str) -> Result<Arc<ServiceView>, WuiError> {
    state
        .scheduler
        .snapshot()
        .service(id)
        .cloned()
        .ok_or(WuiError::ServiceNotFound)
}

/// How often, and how long apart, [`history_of`] reads the history again while it
/// lags behind the snapshot.
const HISTORY_RETRIES: u32 = 4;
const HISTORY_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// The newest [`HISTORY_ROWS`] entries of `view`'s instance history, newest first
/// (blocking). The scheduler appends an ending to the file a moment after it publishes
/// the snapshot that shows it, so a history older than the view's last exit is read
/// again a few times, briefly, before it is shown as it is.
pub(super) fn history_of(layout: &Layout, view: &ServiceView) -> Vec<HistoryEntry> {
    let last_exit = view.state.last_exit.as_ref().map(|l| l.at);
    let mut history = read_history(layout, view.id());
    for _ in 0..HISTORY_RETRIES {
        let newest = history.first().map(|h| h.stopped);
        if last_exit.is_none_or(|at| newest.is_some_and(|n| n >= at)) {
            break;
        }
        std::thread::sleep(HISTORY_RETRY_PAUSE);
        history = read_history(layout, view.id());
    }
    history
}

/// The newest [`HISTORY_ROWS`] entries of the service's instance history, newest
/// first (blocking). A history that cannot be read shows as empty, with a warning in
/// the server's log.
fn read_history(layout: &Layout, id: &JobId) -> Vec<HistoryEntry> {
    let path = layout.service_history_file(id);
    crate::store::json_file::read_lines::<HistoryEntry>(&path, HISTORY_ROWS).unwrap_or_else(|err| {
        tracing::warn!(service = %id, %err, "reading the instance history for the web UI");
        Vec::new()
    })
}

/// The group of a service's status on the dashboard: `fatal` is failed, `backoff`
/// its own group, an instance that starts, runs or stops is running, `disabled` counts
/// as paused and `stopped` (ended cleanly, nothing pending) as ok.
pub(super) fn group(status: Status) -> Group {
    match status {
        Status::Fatal => Group::Failed,
        Status::Backoff { .. } => Group::Backoff,
        Status::Starting | Status::Running | Status::Stopping(_) => Group::Running,
        Status::Disabled => Group::Paused,
        Status::Stopped => Group::Ok,
    }
}

/// A time so far, which the page's script counts on.
#[derive(Debug, Clone)]
pub(super) struct Elapsed {
    /// Whole seconds when the view was built.
    pub secs: u64,
    /// The same for people (`7 min`).
    pub text: String,
}

impl Elapsed {
    fn since(start: Timestamp, now: Timestamp) -> Self {
        let so_far = Duration::try_from(now.duration_since(start)).unwrap_or_default();
        Self {
            secs: so_far.as_secs(),
            text: human_duration(so_far),
        }
    }
}

/// A time in a status sentence.
#[derive(Debug, Clone)]
pub(super) struct WordsTime {
    /// `since`, `next start`.
    pub word: &'static str,
    /// The time.
    pub at: TimeView,
    /// Shown relative to now (`in 3 sec.`) rather than as a clock time.
    pub relative: bool,
}

/// A service's status in words, so that it does not rest on colour alone:
/// `Running since 10:00:00 UTC (pid 4242), up 7 min: restarted after a failure…`.
#[derive(Debug, Clone)]
pub(super) struct ServiceWords {
    /// `Running`, `Back-off:`, `Fatal`.
    pub head: &'static str,
    /// `since <time>`, `next start <time>`.
    pub at: Option<WordsTime>,
    /// In brackets after the time: `pid 4242`, `attempt 3`.
    pub note: Option<String>,
    /// How long the instance has run.
    pub up: Option<Elapsed>,
    /// What it means, with its leading separator (`: …` or `, …`); may be empty.
    pub detail: String,
}

/// An exit status for people: `exit status 1`, `signal KILL`, `exit status unknown`.
fn exit_words(code: Option<i32>, signal: Option<&str>) -> String {
    match (signal.filter(|s| !s.is_empty()), code) {
        (Some(signal), _) => format!("signal {signal}"),
        (None, Some(code)) => format!("exit status {code}"),
        (None, None) => "exit status unknown".to_string(),
    }
}

/// Why an instance ended, for people.
fn reason_words(reason: HistoryReason) -> &'static str {
    match reason {
        HistoryReason::Exited => "ended on its own",
        HistoryReason::Stopped => "stopped on request",
        HistoryReason::Liveness => "no ping in time (ping_timeout)",
        HistoryReason::MaxRuntime => "ran for max_runtime",
        HistoryReason::StartTimeout => "not ready within start_timeout",
        HistoryReason::StartFailed => "could not start",
        HistoryReason::Orphaned => "left by a karajo that crashed; stopped",
        HistoryReason::Lost => "gone without karajo seeing how",
    }
}

/// What the restart policy does, in a clause.
fn policy_clause(policy: &ServicePolicy) -> &'static str {
    match policy.restart {
        RestartPolicy::Always => "restarted whenever it ends (restart = always)",
        RestartPolicy::OnFailure => "restarted if it fails (restart = on-failure)",
        RestartPolicy::Never => "a failure makes it fatal (restart = never)",
    }
}

/// When a starting instance counts as running, in a clause.
fn ready_clause(policy: &ServicePolicy) -> String {
    match policy.ready {
        ReadyRule::Delay if policy.start_seconds.is_zero() => {
            "at once (ready = delay, start_seconds = 0s)".to_string()
        }
        ReadyRule::Delay => format!(
            "once it has lived {} (ready = delay)",
            format_short(policy.start_seconds)
        ),
        ReadyRule::Notify => format!(
            "when it sends READY=1 to its notify socket, within {} (ready = notify)",
            format_short(policy.start_timeout)
        ),
        ReadyRule::Ping => format!(
            "at its first ping, within {} (ready = ping)",
            format_short(policy.start_timeout)
        ),
    }
}

/// How the last instance ended, in a clause: `exit status 1, ended on its own`.
fn last_exit_clause(last: &LastExit) -> String {
    format!(
        "{}, {}",
        exit_words(last.exit_code, last.signal.as_deref()),
        reason_words(last.reason)
    )
}

/// What a service's status means, in a sentence.
pub(super) fn status_words(view: &ServiceView, now: Timestamp) -> ServiceWords {
    let state = &view.state;
    let policy = &view.spec.policy;
    let instance = state.instance();
    let pid = instance.map(|i| format!("pid {}", i.pid));
    let since = |at: Option<Timestamp>| {
        at.and_then(TimeView::new).map(|at| WordsTime {
            word: "since",
            at,
            relative: false,
        })
    };
    let last_exit = state.last_exit.as_ref();
    let words = |head, at, note, detail| ServiceWords {
        head,
        at,
        note,
        up: None,
        detail,
    };
    match state.status {
        Status::Disabled => words(
            "Disabled",
            None,
            None,
            ": nothing runs until someone enables, restarts or runs it once".to_string(),
        ),
        Status::Stopped => words(
            "Stopped",
            since(last_exit.map(|l| l.at)),
            None,
            match last_exit {
                Some(last) => format!(
                    ": enabled, but its last instance ended cleanly ({}) and is not restarted; Restart or Run once start it",
                    last_exit_clause(last)
                ),
                None => ": enabled, and nothing runs".to_string(),
            },
        ),
        Status::Starting => words(
            "Starting",
            since(state.starting_since),
            pid,
            format!(
                ": attempt {}, ready {}",
                state.attempt.max(1),
                ready_clause(policy)
            ),
        ),
        Status::Running => ServiceWords {
            head: "Running",
            at: since(instance.map(|i| i.spawned)),
            note: pid,
            up: instance.map(|i| Elapsed::since(i.spawned, now)),
            detail: if state.saved.run_once {
                ": it runs once and is not restarted when it ends".to_string()
            } else {
                format!(": {}", policy_clause(policy))
            },
        },
        Status::Backoff { until, delay } => words(
            "Back-off:",
            TimeView::new(until).map(|at| WordsTime {
                word: "next start",
                at,
                relative: true,
            }),
            Some(format!("attempt {}", state.restarts.saturating_add(1))),
            match last_exit {
                Some(last) => format!(
                    ", {} after the last instance ended ({})",
                    format_short(delay),
                    last_exit_clause(last)
                ),
                None => format!(", {} after the last instance ended", format_short(delay)),
            },
        ),
        Status::Stopping(stop) => {
            let then = match stop.target {
                StopTarget::Disabled => "then it is disabled",
                StopTarget::Start => "then it starts again",
                StopTarget::Policy => "then the restart policy decides",
                StopTarget::Exit => "karajo is shutting down",
            };
            let signal = if stop.killed {
                "SIGKILL sent after stop_timeout".to_string()
            } else {
                format!(
                    "SIG{} sent ({}), SIGKILL if it has not ended within {}",
                    policy.stop_signal.as_str(),
                    stop.reason.as_str(),
                    format_short(policy.stop_timeout)
                )
            };
            words(
                "Stopping",
                since(Some(stop.since)),
                pid,
                format!(": {signal}; {then}"),
            )
        }
        Status::Fatal => {
            let why = if state.start_failures > policy.start_retries {
                format!(
                    "gave up after {} failed starts in a row",
                    state.start_failures
                )
            } else if policy.restart == RestartPolicy::Never {
                "its instance failed and restart = never".to_string()
            } else {
                "its one run failed".to_string()
            };
            let exit = last_exit
                .map(|l| format!(" ({})", last_exit_clause(l)))
                .unwrap_or_default();
            words(
                "Fatal",
                since(last_exit.map(|l| l.at)),
                None,
                format!(": {why}{exit}; Enable, Restart or Run once start it again"),
            )
        }
    }
}

/// The current instance, for the page.
#[derive(Debug, Clone)]
pub(super) struct InstanceFacts {
    /// Its UUID.
    pub instance: String,
    /// The tracked process.
    pub pid: u32,
    /// When it was spawned.
    pub spawned: Option<TimeView>,
    /// How long it has run.
    pub up: Elapsed,
    /// When it became ready.
    pub ready_at: Option<TimeView>,
    /// Its last ping.
    pub last_seen: Option<TimeView>,
    /// Its log segments' counters, first to current.
    pub segment: u64,
    /// Its current log segment's page.
    pub segment_href: String,
    /// What its processes use, when `/proc` could be read.
    pub usage: Option<UsageFacts>,
}

/// What an instance's processes use, for people.
#[derive(Debug, Clone)]
pub(super) struct UsageFacts {
    /// Their CPU time: `0.42 s`, `3 min 4 s`.
    pub cpu_time: String,
    /// Their CPU share: `12.5 %` (of one core).
    pub cpu_percent: String,
    /// Their resident memory: `81.2 MiB`.
    pub memory: String,
    /// How many processes.
    pub processes: u32,
}

impl UsageFacts {
    fn new(usage: &Usage) -> Self {
        let cpu = usage.totals.cpu;
        Self {
            cpu_time: if cpu < Duration::from_secs(60) {
                format!("{:.2} s", cpu.as_secs_f64())
            } else {
                human_duration(cpu)
            },
            cpu_percent: format!("{:.1} %", usage.cpu_percent),
            memory: human_size(usage.totals.rss_bytes),
            processes: usage.totals.processes,
        }
    }
}

/// Measures `view`'s live instance (blocking: it reads `/proc`).
pub(super) fn measure(meter: &UsageMeter, view: &ServiceView, now: Timestamp) -> Option<Usage> {
    let target = view.usage_target(now)?;
    meter.measure(&[target]).pop()
}

/// How the last instance ended, for the page.
#[derive(Debug, Clone)]
pub(super) struct ExitFacts {
    /// `exit status 1`, `signal KILL`.
    pub status: String,
    /// The history reason's word (`exited`).
    pub reason: &'static str,
    /// The same for people.
    pub reason_words: &'static str,
    /// When.
    pub at: Option<TimeView>,
}

impl ExitFacts {
    fn new(last: &LastExit) -> Self {
        Self {
            status: exit_words(last.exit_code, last.signal.as_deref()),
            reason: last.reason.as_str(),
            reason_words: reason_words(last.reason),
            at: TimeView::new(last.at),
        }
    }
}

/// One ended instance in the history table.
#[derive(Debug, Clone)]
pub(super) struct HistoryRow {
    /// The instance's UUID (empty when the spawn itself failed).
    pub instance: String,
    /// Its first characters, for the table.
    pub instance_short: String,
    /// The page of its first log segment, while that segment is kept.
    pub href: Option<String>,
    /// The pid, or `—`.
    pub pid: String,
    /// When it was spawned.
    pub started: Option<TimeView>,
    /// When it ended.
    pub stopped: Option<TimeView>,
    /// How long it ran.
    pub duration: String,
    /// `exit status 1`, `signal TERM`.
    pub exit: String,
    /// The history reason's word (`exited`).
    pub reason: &'static str,
    /// The same for people.
    pub reason_words: &'static str,
    /// Whether the ending was clean.
    pub clean: bool,
}

impl HistoryRow {
    fn new(entry: &HistoryEntry, view: &ServiceView) -> Self {
        let id = view.id().as_str();
        let first = entry.counters.first().copied();
        let kept = first.filter(|c| view.logs.iter().any(|l| l.counter == *c));
        let instance = entry.instance.clone().unwrap_or_default();
        Self {
            instance_short: instance.chars().take(8).collect(),
            instance,
            href: kept.map(|c| view::log_href(JobKind::Service, id, c)),
            pid: entry.pid.map_or_else(|| "—".to_string(), |p| p.to_string()),
            started: TimeView::new(entry.started),
            stopped: TimeView::new(entry.stopped),
            duration: human_duration(entry.duration),
            exit: exit_words(entry.exit_code, Some(entry.signal.as_str())),
            reason: entry.reason.as_str(),
            reason_words: reason_words(entry.reason),
            clean: entry.clean,
        }
    }
}

/// The part of a service's page that changes: its state, log segments and history.
#[derive(Debug, Clone)]
pub(super) struct ServiceLive {
    /// The status word (also its colour, `st-<status>`).
    pub status: &'static str,
    /// The status in words.
    pub words: ServiceWords,
    /// Whether it should run.
    pub enabled: bool,
    /// Whether the current or next instance is not restarted.
    pub run_once: bool,
    /// The CAS counter.
    pub cas: u64,
    /// The current instance.
    pub instance: Option<InstanceFacts>,
    /// How the last instance ended.
    pub last_exit: Option<ExitFacts>,
    /// What the instance says about itself (`STATUS=` or a ping's `status_text`).
    pub status_text: String,
    /// Restarts in a row the policy triggered.
    pub restarts: u32,
    /// Instances in a row that ended before ready.
    pub start_failures: u32,
    /// Failed starts in a row that make it fatal.
    pub fatal_after: u32,
    /// The kept log segments, newest first.
    pub segments: Vec<RunRow>,
    /// The newest ended instances, newest first.
    pub history: Vec<HistoryRow>,
    /// How many entries the history keeps.
    pub history_kept: usize,
}

/// A service page's live part (`_service_live.html`), sent whole by its stream.
#[derive(Debug, Clone, askama::Template)]
#[template(path = "_service_live.html")]
pub(super) struct ServiceLiveFragment {
    /// The state, segments and history.
    pub live: ServiceLive,
}

/// A service page's live part; `history` is [`history_of`]'s and `usage` [`measure`]'s.
pub(super) fn live(
    view: &ServiceView,
    history: &[HistoryEntry],
    usage: Option<Usage>,
    now: Timestamp,
) -> ServiceLive {
    let state = &view.state;
    let id = view.id().as_str();
    let mut segments = view::run_rows(JobKind::Service, id, &view.logs, now);
    segments.reverse();
    let instance = state
        .instance()
        .filter(|_| state.status.is_live())
        .map(|i| InstanceFacts {
            instance: i.instance.clone(),
            pid: i.pid,
            spawned: TimeView::new(i.spawned),
            up: Elapsed::since(i.spawned, now),
            ready_at: state.ready_at.and_then(TimeView::new),
            last_seen: state.last_ping.and_then(TimeView::new),
            segment: i.segment.max(i.counter),
            segment_href: view::log_href(JobKind::Service, id, i.segment.max(i.counter)),
            usage: usage.as_ref().map(UsageFacts::new),
        });
    ServiceLive {
        status: state.status.as_str(),
        words: status_words(view, now),
        enabled: state.saved.enabled,
        run_once: state.saved.run_once,
        cas: state.cas(),
        instance,
        last_exit: state.last_exit.as_ref().map(ExitFacts::new),
        status_text: state.status_text.clone(),
        restarts: state.restarts,
        start_failures: state.start_failures,
        fatal_after: view.spec.policy.start_retries.saturating_add(1),
        segments,
        history: history.iter().map(|e| HistoryRow::new(e, view)).collect(),
        history_kept: view.spec.history,
    }
}

/// What a card or row says where a time so far or the next start goes.
#[derive(Debug, Clone)]
pub(super) enum Now {
    /// The instance has been starting, running or stopping this long.
    Up {
        /// `Up`, `Starting`, `Stopping`.
        label: &'static str,
        /// Since the spawn (since the stop signal while stopping).
        elapsed: Elapsed,
    },
    /// In back-off until then.
    NextStart(TimeView),
    /// No process and none due: what starts one.
    Idle(&'static str),
}

/// A service's card on the dashboard.
#[derive(Debug, Clone)]
pub(super) struct ServiceCard {
    /// `service/<id>`, unique on the page.
    pub key: String,
    /// Its group, for the counts and filters.
    pub group: Group,
    /// Its name.
    pub name: String,
    /// Its status word.
    pub status: &'static str,
    /// `run_once` is set.
    pub run_once: bool,
    /// The tracked pid while an instance lives.
    pub pid: Option<u32>,
    /// Its time so far, its next start or what starts it.
    pub now: Now,
    /// How the last instance ended.
    pub last_exit: Option<ExitFacts>,
    /// Its page.
    pub href: String,
}

/// What the card and row say about now.
fn now_of(view: &ServiceView, now: Timestamp) -> Now {
    let state = &view.state;
    let spawned = state.instance().map(|i| i.spawned);
    match state.status {
        Status::Running => spawned.map_or(Now::Idle("—"), |s| Now::Up {
            label: "Up",
            elapsed: Elapsed::since(s, now),
        }),
        Status::Starting => Now::Up {
            label: "Starting",
            elapsed: Elapsed::since(spawned.or(state.starting_since).unwrap_or(now), now),
        },
        Status::Stopping(stop) => Now::Up {
            label: "Stopping",
            elapsed: Elapsed::since(stop.since, now),
        },
        Status::Backoff { until, .. } => {
            TimeView::new(until).map_or(Now::Idle("—"), Now::NextStart)
        }
        Status::Disabled => Now::Idle("when enabled"),
        Status::Stopped => Now::Idle("on restart or run once"),
        Status::Fatal => Now::Idle("on enable, restart or run once"),
    }
}

/// The service's card on the dashboard.
pub(super) fn card(view: &ServiceView, now: Timestamp) -> ServiceCard {
    let state = &view.state;
    let id = view.id().as_str();
    ServiceCard {
        key: view::entry_key(JobKind::Service, id),
        group: group(state.status),
        name: view.spec.name.clone(),
        status: state.status.as_str(),
        run_once: state.saved.run_once,
        pid: state
            .instance()
            .filter(|_| state.status.is_live())
            .map(|i| i.pid),
        now: now_of(view, now),
        last_exit: state.last_exit.as_ref().map(ExitFacts::new),
        href: page_href(id),
    }
}

/// The service's row in the dashboard's list: its last exit (linked to the newest
/// closed log segment), its next start in back-off, and its uptime.
pub(super) fn row(view: &ServiceView, now: Timestamp) -> ListRow {
    let state = &view.state;
    let id = view.id().as_str();
    let last_log = view
        .logs
        .iter()
        .rev()
        .find(|l| !matches!(l.status, RunStatus::Running | RunStatus::Rotated));
    let (next, next_note, duration, elapsed_secs, elapsed_prefix) = match now_of(view, now) {
        Now::Up { label, elapsed } => {
            let prefix = match label {
                "Up" => "up ",
                "Starting" => "starting ",
                _ => "stopping ",
            };
            (
                None,
                "",
                format!("{prefix}{}", elapsed.text),
                Some(elapsed.secs),
                prefix,
            )
        }
        Now::NextStart(at) => (Some(at), "", "—".to_string(), None, ""),
        Now::Idle(note) => (None, note, "—".to_string(), None, ""),
    };
    ListRow {
        key: view::entry_key(JobKind::Service, id),
        kind: view::kind_word(JobKind::Service),
        name: view.spec.name.clone(),
        href: page_href(id),
        status: state.status.as_str(),
        group: group(state.status),
        queued: false,
        last: state.last_exit.as_ref().and_then(|l| TimeView::new(l.at)),
        last_href: last_log.map(|l| view::log_href(JobKind::Service, id, l.counter)),
        next,
        next_note,
        duration,
        elapsed_secs,
        elapsed_prefix,
        elapsed_suffix: "",
    }
}

/// A service's definition, for its page. Never its `env` values or its `secret`.
#[derive(Debug, Clone)]
pub(super) struct ServiceDetail {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The description as configured; the template escapes it.
    pub description: String,
    /// `command`, as configured; the template escapes it.
    pub command: String,
    /// `pre_start` commands.
    pub pre_start: Vec<String>,
    /// The restart policy in words.
    pub restart: String,
    /// The readiness rule in words.
    pub ready: String,
    /// `priority` in words.
    pub priority: String,
    /// The stop signal and timeout in words.
    pub stop: String,
    /// `ping_timeout` in words.
    pub ping_timeout: String,
    /// Other settings.
    pub facts: Vec<Fact>,
    /// Where the control form posts.
    pub control_href: String,
    /// The signals the signal control offers.
    pub signals: Vec<&'static str>,
}

/// The signals the page offers, in the order of the monitors spec's API table.
const SIGNALS: [ServiceSignal; 7] = [
    ServiceSignal::Hup,
    ServiceSignal::Usr1,
    ServiceSignal::Usr2,
    ServiceSignal::Int,
    ServiceSignal::Term,
    ServiceSignal::Quit,
    ServiceSignal::Kill,
];

/// A list of names for people: `a, b`, or `nobody`.
fn names(list: &[String]) -> String {
    if list.is_empty() {
        "nobody".to_string()
    } else {
        list.join(", ")
    }
}

/// A service's definition for its page.
pub(super) fn detail(view: &ServiceView) -> ServiceDetail {
    let spec = &view.spec;
    let policy = &spec.policy;
    let id = spec.id.as_str();
    let codes: Vec<String> = policy
        .success_exit_codes
        .iter()
        .map(ToString::to_string)
        .collect();
    let restart = format!(
        "{}: {}; clean exit statuses: {}",
        policy.restart.as_str(),
        match policy.restart {
            RestartPolicy::Always => "restarted after every ending, after its back-off",
            RestartPolicy::OnFailure => {
                "restarted after a failure, after its back-off; a clean ending leaves it stopped"
            }
            RestartPolicy::Never => {
                "never restarted; a clean ending leaves it stopped, a failure makes it fatal"
            }
        },
        codes.join(", ")
    );
    let mut facts = vec![
        Fact {
            name: "Back-off",
            value: format!(
                "{} at first, doubling up to {}; back to the start after {} running",
                format_short(policy.restart_delay),
                format_short(policy.restart_delay_max),
                format_short(policy.backoff_reset)
            ),
        },
        Fact {
            name: "Start retries",
            value: format!(
                "{} ({} failed starts in a row make it fatal)",
                policy.start_retries,
                policy.start_retries.saturating_add(1)
            ),
        },
        Fact {
            name: "Max runtime",
            value: policy
                .max_runtime
                .map_or_else(|| "no limit".to_string(), format_short),
        },
        Fact {
            name: "Working directory",
            value: spec.working_dir.as_ref().map_or_else(
                || format!("var/lib/karajo/service/{id} (the default)"),
                |dir| dir.display().to_string(),
            ),
        },
    ];
    if !spec.user.is_empty() {
        facts.push(Fact {
            name: "Runs as",
            value: spec.user.clone(),
        });
    }
    let env_names: Vec<&str> = spec.env.iter().map(|(name, _)| name.as_str()).collect();
    facts.push(Fact {
        name: "Environment",
        value: format!(
            "{}{}",
            if spec.env_inherit {
                "karajo's own environment"
            } else {
                "the job environment"
            },
            if env_names.is_empty() {
                String::new()
            } else {
                format!(", plus {} (values not shown)", env_names.join(", "))
            }
        ),
    });
    if let Some(pid_file) = &spec.pid_file {
        facts.push(Fact {
            name: "Pid file",
            value: format!(
                "{} (checked every {} without pidfd)",
                pid_file.display(),
                format_short(spec.check_interval)
            ),
        });
    }
    if spec.wants_notify_socket() {
        facts.push(Fact {
            name: "Notify socket",
            value: "NOTIFY_SOCKET is given".to_string(),
        });
    }
    facts.push(Fact {
        name: "When karajo stops",
        value: match spec.on_exit {
            OnExit::Stop => "it is stopped (on_exit = stop)".to_string(),
            OnExit::Leave => "it is left running for the next karajo (on_exit = leave)".to_string(),
        },
    });
    facts.push(Fact {
        name: "Logs kept",
        value: format!(
            "{} segments of up to {} each",
            spec.log_retention,
            human_size(spec.log_max_size)
        ),
    });
    facts.push(Fact {
        name: "History kept",
        value: format!("{} instances", spec.history),
    });
    facts.push(Fact {
        name: "Notified on failure",
        value: names(&policy.notif_on_failed),
    });
    facts.push(Fact {
        name: "Notified when fatal",
        value: names(&policy.notif_on_fatal),
    });
    facts.push(Fact {
        name: "Notified on recovery",
        value: names(&policy.notif_on_recover),
    });
    facts.push(Fact {
        name: "Delegated control",
        value: if spec.secret.is_empty() {
            "none: controls are signed with the global secret".to_string()
        } else {
            "a service secret is set (not shown)".to_string()
        },
    });
    ServiceDetail {
        id: id.to_string(),
        name: spec.name.clone(),
        description: spec.description.clone(),
        command: spec.command.clone(),
        pre_start: spec.pre_start.clone(),
        restart,
        ready: format!("ready {}", ready_clause(policy)),
        priority: format!("{} (lower starts first and stops last)", spec.priority),
        stop: format!(
            "SIG{}, then SIGKILL after {}",
            policy.stop_signal.as_str(),
            format_short(policy.stop_timeout)
        ),
        ping_timeout: policy.ping_timeout.map_or_else(
            || "off".to_string(),
            |t| {
                format!(
                    "{}: once ready, it must ping at least this often",
                    format_short(t)
                )
            },
        ),
        facts,
        control_href: format!("{}/control", page_href(id)),
        signals: SIGNALS.iter().map(|s| s.as_str()).collect(),
    }
}

/// The service page (`service.html`).
#[derive(askama::Template)]
#[template(path = "service.html")]
pub(super) struct ServicePage {
    pub chrome: Chrome,
    pub service: ServiceDetail,
    pub live: ServiceLive,
    pub notice: Option<&'static str>,
    pub csrf: Option<String>,
}

/// `GET /karajo/app/service/{id}` (reached through the job page's route): the page,
/// with `notice` after a control.
pub(super) async fn page(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    notice: Option<&'static str>,
) -> Result<Response, WuiError> {
    let view = find(state, id)?;
    let now = state.clock.now();
    let layout = state.layout.clone();
    let for_live = view.clone();
    let meter = state.usage.clone();
    let live = tokio::task::spawn_blocking(move || {
        let history = history_of(&layout, &for_live);
        let usage = measure(&meter, &for_live, now);
        live(&for_live, &history, usage, now)
    })
    .await?;
    html(&ServicePage {
        chrome: Chrome::new(state, Some(viewer)),
        service: detail(&view),
        live,
        notice,
        csrf: viewer.session.as_ref().map(|s| s.csrf.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{ServiceState, Stop, StopReason};

    /// A service `api` as the configuration loader makes it, with an `env` value and a
    /// secret.
    fn spec() -> Arc<crate::config::ServiceSpec> {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc/karajo");
        std::fs::create_dir_all(&etc).unwrap();
        let conf = format!(
            "[karajo]\ndir_base = {}\nsecret = s3cret\n\n[service \"api\"]\ncommand = exec ./api\nrestart_delay = 2s\nstart_retries = 2\nenv = TOKEN=env-value\nsecret = svc-secret\n",
            dir.path().display()
        );
        std::fs::write(etc.join("karajo.conf"), conf).unwrap();
        let config = crate::config::load_with(&etc.join("karajo.conf"), &|_| false).unwrap();
        Arc::new(config.services[0].clone())
    }

    fn view_with(state: ServiceState) -> ServiceView {
        ServiceView {
            spec: spec(),
            state,
            deadline: None,
            logs: Vec::new(),
        }
    }

    fn sentence(words: &ServiceWords) -> String {
        let at = words
            .at
            .as_ref()
            .map(|t| format!(" {} {}", t.word, t.at.text))
            .unwrap_or_default();
        let note = words
            .note
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        format!("{}{at}{note}{}", words.head, words.detail)
    }

    #[test]
    fn statuses_read_as_sentences() {
        let at: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        let exit = LastExit {
            exit_code: Some(1),
            signal: None,
            reason: HistoryReason::Exited,
            at,
        };
        let mut state = ServiceState::restored(None, true);
        state.status = Status::Backoff {
            until: "2026-11-22T10:00:03Z".parse().unwrap(),
            delay: Duration::from_secs(4),
        };
        state.restarts = 2;
        state.last_exit = Some(exit.clone());
        assert_eq!(
            sentence(&status_words(&view_with(state.clone()), at)),
            "Back-off: next start 2026-11-22 10:00:03 UTC (attempt 3), 4s after the last instance ended (exit status 1, ended on its own)"
        );
        state.status = Status::Fatal;
        state.start_failures = 3;
        assert_eq!(
            sentence(&status_words(&view_with(state.clone()), at)),
            "Fatal since 2026-11-22 10:00:00 UTC: gave up after 3 failed starts in a row (exit status 1, ended on its own); Enable, Restart or Run once start it again"
        );
        state.status = Status::Stopping(Stop {
            reason: StopReason::Disable,
            target: StopTarget::Disabled,
            since: at,
            killed: false,
        });
        assert_eq!(
            sentence(&status_words(&view_with(state.clone()), at)),
            "Stopping since 2026-11-22 10:00:00 UTC: SIGTERM sent (disable), SIGKILL if it has not ended within 10s; then it is disabled"
        );
        state.status = Status::Disabled;
        assert_eq!(
            sentence(&status_words(&view_with(state), at)),
            "Disabled: nothing runs until someone enables, restarts or runs it once"
        );
    }

    #[test]
    fn the_definition_names_the_environment_but_shows_no_value_or_secret() {
        let view = view_with(ServiceState::restored(None, true));
        let detail = detail(&view);
        let all = format!("{detail:?}");
        assert!(!all.contains("env-value"), "{all}");
        assert!(!all.contains("svc-secret"), "{all}");
        assert!(all.contains("plus TOKEN (values not shown)"), "{all}");
        assert!(all.contains("a service secret is set (not shown)"), "{all}");
        assert_eq!(detail.command, "exec ./api");
        assert_eq!(
            detail.signals,
            ["HUP", "USR1", "USR2", "INT", "TERM", "QUIT", "KILL"]
        );
    }

    #[test]
    fn exits_read_as_words() {
        assert_eq!(exit_words(Some(1), None), "exit status 1");
        assert_eq!(exit_words(Some(0), Some("")), "exit status 0");
        assert_eq!(exit_words(None, Some("KILL")), "signal KILL");
        assert_eq!(exit_words(None, None), "exit status unknown");
        assert_eq!(reason_words(HistoryReason::Stopped), "stopped on request");
    }

    #[test]
    fn statuses_fall_into_the_dashboards_groups() {
        let at = Timestamp::UNIX_EPOCH;
        assert_eq!(group(Status::Fatal), Group::Failed);
        assert_eq!(
            group(Status::Backoff {
                until: at,
                delay: Duration::from_secs(1)
            }),
            Group::Backoff
        );
        assert_eq!(group(Status::Running), Group::Running);
        assert_eq!(group(Status::Starting), Group::Running);
        assert_eq!(group(Status::Disabled), Group::Paused);
        assert_eq!(group(Status::Stopped), Group::Ok);
    }
}
