//! What the templates show, built from the scheduler's snapshot, the configuration and
//! the run logs' times: job cards and list rows for the dashboard (with the groups that
//! its counts and filters use), a job's state and recent runs,
//! its definition (secret header values and URL user info redacted by
//! [`crate::redact`]), and times as UTC ISO strings that the page's script localises
//! (schedule times also in the job's own zone, labelled). Status words for people
//! differ from the API's in one place: a job that never ran is `new`, not `started`.
//! Reading run times touches files: build views on a blocking thread.

use std::time::Duration;

use jiff::Timestamp;

use super::chart;
use crate::job::{JobKind, RunStatus, Trigger};
use crate::redact::{self, SecretHeaders};
use crate::scheduler::{JobDefKind, JobView, LogSummary};

/// Bars in a dashboard card's chart.
pub(super) const CARD_BARS: usize = 12;
/// Bars in a job page's chart.
pub(super) const PAGE_BARS: usize = 30;

/// A time for a `<time datetime>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TimeView {
    /// `2026-11-22T21:08:11Z`.
    pub iso: String,
    /// `2026-11-22 21:08:11 UTC`, shown until the script localises it.
    pub text: String,
}

/// A schedule time in the job's zone, with that zone, and as a [`TimeView`] for the
/// reader's zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ZonedTime {
    /// The instant, localised by the page's script to the reader's zone.
    pub at: TimeView,
    /// `Mon 2026-11-23 03:00 CET`: the wall-clock time in the job's zone.
    pub text: String,
    /// The job's zone: its IANA name (`Europe/Berlin`), or its offset (`+05:30`).
    pub zone: String,
}

impl ZonedTime {
    /// The view of `at` in `tz`; `None` for the far future.
    pub(super) fn new(at: Timestamp, tz: &jiff::tz::TimeZone) -> Option<Self> {
        let view = TimeView::new(at)?;
        let zoned = at.to_zoned(tz.clone());
        let zone = match tz.iana_name() {
            Some(name) => name.to_string(),
            None => zoned.offset().to_string(),
        };
        Some(Self {
            at: view,
            text: zoned.strftime("%a %Y-%m-%d %H:%M %Z").to_string(),
            zone,
        })
    }
}

impl TimeView {
    /// The view of `at`, rounded to the second; `None` for the far future.
    pub(super) fn new(at: Timestamp) -> Option<Self> {
        if at
            >= Timestamp::MAX
                .checked_sub(jiff::SignedDuration::from_hours(24))
                .ok()?
        {
            return None;
        }
        let at = at.round(jiff::Unit::Second).ok()?;
        Some(Self {
            iso: at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            text: at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        })
    }
}

/// One run in a list or chart.
#[derive(Debug, Clone)]
pub(super) struct RunRow {
    /// The run's counter.
    pub counter: u64,
    /// Its status word.
    pub status: &'static str,
    /// What started it (`timer`, `webhook`, `api`), `—` when the log does not say.
    pub trigger: &'static str,
    /// When it started.
    pub started: Option<TimeView>,
    /// How long it took (or has taken so far), for people.
    pub duration: String,
    /// The same in seconds, for the chart; `None` when unknown.
    pub seconds: Option<f64>,
    /// Whole seconds so far while the run goes (the page's script counts on).
    pub elapsed_secs: Option<u64>,
    /// Its log page.
    pub href: String,
}

/// How an entry of the dashboard counts: the counts at the top and the status filters
/// group the status words into these. Jobs use all but [`Group::Late`] and
/// [`Group::Backoff`]; a heartbeat monitor maps `new` → [`Group::New`], `up` →
/// [`Group::Ok`], `late` → [`Group::Late`], `down` → [`Group::Failed`] and `paused` →
/// [`Group::Paused`]; a supervised service's mapping is `service::group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Group {
    /// The last run failed (a monitor: down).
    Failed,
    /// A monitor past its due time, within its grace.
    Late,
    /// A service waiting for its restart delay.
    Backoff,
    /// A run is going on.
    Running,
    /// Paused.
    Paused,
    /// The last run was canceled.
    Canceled,
    /// The last run succeeded (a monitor: up).
    Ok,
    /// Never ran (a monitor: no check-in yet).
    New,
}

impl Group {
    /// Every group, in the order of the counts line and the filter buttons: what needs
    /// attention first.
    pub(super) const ALL: [Group; 8] = [
        Group::Failed,
        Group::Late,
        Group::Backoff,
        Group::Running,
        Group::Paused,
        Group::Canceled,
        Group::Ok,
        Group::New,
    ];

    /// The word in `data-group` and `data-filter`.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Group::Failed => "failed",
            Group::Late => "late",
            Group::Backoff => "backoff",
            Group::Running => "running",
            Group::Paused => "paused",
            Group::Canceled => "canceled",
            Group::Ok => "ok",
            Group::New => "new",
        }
    }

    /// The words after a count in the counts line (`3 failed`, `5 never run`).
    pub(super) fn label(self) -> &'static str {
        match self {
            Group::New => "never run",
            Group::Backoff => "in back-off",
            other => other.as_str(),
        }
    }

    /// The filter button's text.
    pub(super) fn title(self) -> &'static str {
        match self {
            Group::Failed => "Failed",
            Group::Late => "Late",
            Group::Backoff => "Back-off",
            Group::Running => "Running",
            Group::Paused => "Paused",
            Group::Canceled => "Canceled",
            Group::Ok => "OK",
            Group::New => "Never run",
        }
    }

    /// The status colour of the group (`st-<word>` in the stylesheet).
    pub(super) fn css(self) -> &'static str {
        match self {
            Group::Ok => "success",
            other => other.as_str(),
        }
    }

    /// Whether its filter button shows even with no entry in the group (the rarer
    /// groups' buttons show only while they have entries).
    pub(super) fn always_offered(self) -> bool {
        !matches!(self, Group::Late | Group::Backoff | Group::Canceled)
    }

    /// Its place in [`Group::ALL`].
    pub(super) fn index(self) -> usize {
        Group::ALL.iter().position(|g| *g == self).unwrap_or(0)
    }

    /// The group of a job (see [`ui_status`]): a job going on is running even when
    /// paused; an idle HTTP job counts as ok.
    pub(super) fn of_job(view: &JobView) -> Group {
        match view.status {
            RunStatus::Running => Group::Running,
            RunStatus::Paused => Group::Paused,
            RunStatus::Failed => Group::Failed,
            RunStatus::Canceled => Group::Canceled,
            RunStatus::Success | RunStatus::Rotated => Group::Ok,
            RunStatus::Started if ui_status(view) == "new" => Group::New,
            RunStatus::Started => Group::Ok,
        }
    }

    /// The group of a heartbeat monitor's status.
    pub(super) fn of_monitor(status: crate::monitor::Status) -> Group {
        use crate::monitor::Status;
        match status {
            Status::New => Group::New,
            Status::Up => Group::Ok,
            Status::Late { .. } => Group::Late,
            Status::Down(_) => Group::Failed,
            Status::Paused(_) => Group::Paused,
        }
    }
}

/// One row of the dashboard's list. Nothing in it is job-specific: a heartbeat monitor
/// fills the same fields (its last check-in, its due time, the duration of its last
/// run), a supervised service too (its last exit, its next start, its uptime), and
/// their rows join the list beside the jobs'.
#[derive(Debug, Clone)]
pub(super) struct ListRow {
    /// Unique on the page: `<kind>/<id>` (`job/hello`, `job_http/ping`). The page's
    /// script searches it with the name.
    pub key: String,
    /// The kind in a word (`command`, `HTTP`).
    pub kind: &'static str,
    /// The name.
    pub name: String,
    /// The entry's page.
    pub href: String,
    /// The status word, also its colour (`st-<status>`).
    pub status: &'static str,
    /// Its group, for the counts and filters.
    pub group: Group,
    /// A run waits behind the current one.
    pub queued: bool,
    /// When the last run ended.
    pub last: Option<TimeView>,
    /// The last run's log.
    pub last_href: Option<String>,
    /// When the next run is due.
    pub next: Option<TimeView>,
    /// What the next run cell says without a time (`paused`, `on request`).
    pub next_note: &'static str,
    /// How long the run going on has taken so far, or the last run took; `—` when
    /// unknown.
    pub duration: String,
    /// Whole seconds of the run going on (the page's script counts on).
    pub elapsed_secs: Option<u64>,
    /// What the counted time starts with (`up ` for a service's uptime).
    pub elapsed_prefix: &'static str,
    /// What it ends with (` so far` for a run going on).
    pub elapsed_suffix: &'static str,
}

/// An entry of the dashboard's cards view: a job, or a heartbeat monitor (whose
/// check-ins are its runs and whose due time is its next run; [`CardWords`] name them).
#[derive(Debug, Clone)]
pub(super) struct EntryCard {
    /// `<kind>/<id>`, unique on the page.
    pub key: String,
    /// Its group, for the counts and filters.
    pub group: Group,
    /// Its name.
    pub name: String,
    /// Its status word for people (see [`ui_status`]; a monitor's own word).
    pub status: &'static str,
    /// Paused by the API or the UI.
    pub paused: bool,
    /// A run waits behind the current one.
    pub queued: bool,
    /// When the last run ended (a monitor: the last check-in).
    pub last_run: Option<TimeView>,
    /// When the timer fires next (a monitor: when the next check-in is due).
    pub next_run: Option<TimeView>,
    /// What the next run line says when there is no time (see [`next_note`]).
    pub next_note: &'static str,
    /// The run going on now (a monitor: its newest open run).
    pub current: Option<CurrentRun>,
    /// The chart of recent runs (SVG, built and escaped by [`chart`]).
    pub chart: String,
    /// The chart's scale in words (`longest 12 s`).
    pub chart_scale: String,
    /// The entry's page.
    pub href: String,
    /// The labels of the card's lines.
    pub words: &'static CardWords,
}

/// The labels of a card's lines, which differ by kind.
#[derive(Debug)]
pub(super) struct CardWords {
    /// The label of the last run's time.
    pub last: &'static str,
    /// The label of the next run's time.
    pub next: &'static str,
    /// What the line of the run going on starts with.
    pub current: &'static str,
}

/// A job's card labels.
pub(super) const JOB_WORDS: CardWords = CardWords {
    last: "Last run",
    next: "Next run",
    current: "Running",
};

/// A heartbeat monitor's card labels.
pub(super) const MONITOR_WORDS: CardWords = CardWords {
    last: "Last check-in",
    next: "Next due",
    current: "Run open",
};

/// The run going on now.
#[derive(Debug, Clone)]
pub(super) struct CurrentRun {
    /// Its counter.
    pub counter: u64,
    /// When it started.
    pub started: Option<TimeView>,
    /// Whole seconds it has taken when the view was built; the page's script counts
    /// on from there.
    pub elapsed_secs: u64,
    /// The same for people (`12 s`).
    pub elapsed: String,
    /// Its log page.
    pub href: String,
}

/// A job page's live part (`_job_live.html`).
#[derive(Debug, Clone, askama::Template)]
#[template(path = "_job_live.html")]
pub(super) struct JobLiveFragment {
    /// The state and runs.
    pub live: JobLive,
}

/// A job's state and recent runs.
#[derive(Debug, Clone)]
pub(super) struct JobLive {
    /// Status word for people (see [`ui_status`]).
    pub status: &'static str,
    /// Paused.
    pub paused: bool,
    /// A run is queued.
    pub queued: bool,
    /// Last run's end.
    pub last_run: Option<TimeView>,
    /// Next timer.
    pub next_run: Option<TimeView>,
    /// What the next run line says when there is no timer (see [`next_note`]).
    pub next_note: &'static str,
    /// The run going on now.
    pub current: Option<CurrentRun>,
    /// Runs, newest first.
    pub runs: Vec<RunRow>,
    /// Chart of the runs.
    pub chart: String,
    /// The chart's scale in words.
    pub chart_scale: String,
    /// A failed run's next attempt: `attempt 2 of 3 (after #41)` and when.
    pub retry: Option<(String, TimeView)>,
    /// Triggers skipped lately (`overlap = skip`): how many, and the newest.
    pub skipped: Option<(usize, TimeView)>,
}

/// A labelled value of a job's definition.
#[derive(Debug, Clone)]
pub(super) struct Fact {
    /// The label.
    pub name: &'static str,
    /// The value (escaped by the template).
    pub value: String,
}

/// A job's definition, for its page.
#[derive(Debug, Clone)]
pub(super) struct JobDetail {
    /// `job` or `job_http`.
    pub kind: &'static str,
    /// `Command job` or `HTTP job`.
    pub kind_label: &'static str,
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The description as configured; the template escapes it.
    pub description: String,
    /// The schedule or interval in words.
    pub schedule_text: String,
    /// The next five runs of a schedule, in the job's zone and the reader's.
    pub upcoming: Vec<ZonedTime>,
    /// Other settings.
    pub facts: Vec<Fact>,
    /// The jobs its runs' ends start.
    pub chains: Vec<ChainFact>,
    /// Commands (command jobs) or request headers (HTTP jobs).
    pub lines: Vec<String>,
    /// The heading of `lines`.
    pub lines_title: &'static str,
    /// Where the control form posts.
    pub control_href: String,
    /// The parameters Run now asks for (issue 15), with their defaults.
    pub params: Vec<ParamField>,
}

/// One parameter field of the Run now form.
#[derive(Debug, Clone)]
pub(super) struct ParamField {
    /// The form field's name (`param.ENV`).
    pub field: String,
    /// The parameter's name.
    pub name: String,
    /// The default filled in; empty for a required one.
    pub value: String,
    /// Declared without a default.
    pub required: bool,
}

/// The key of a dashboard entry: `<kind>/<id>` (`job/hello`).
pub(super) fn entry_key(kind: JobKind, id: &str) -> String {
    format!("{}/{id}", kind.as_str())
}

/// A job's kind in a word, for the dashboard's list.
pub(super) fn kind_word(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Exec => "command",
        JobKind::Http => "HTTP",
        JobKind::Monitor => "monitor",
        JobKind::Service => "service",
    }
}

/// How long the run of `log` took, or has taken by `now` while it runs.
fn took(log: &LogSummary, now: Timestamp) -> Option<Duration> {
    let end = match log.status {
        RunStatus::Running => Some(now),
        _ => log.ended,
    };
    log.started
        .zip(end)
        .map(|(s, e)| e.duration_since(s).unsigned_abs())
}

/// The URL of a job's page.
pub(super) fn job_href(kind: JobKind, id: &str) -> String {
    format!("/karajo/app/{}/{id}", kind.as_str())
}

/// The URL of a run's log page.
pub(super) fn log_href(kind: JobKind, id: &str, counter: u64) -> String {
    format!("/karajo/app/{}/{id}/log/{counter}", kind.as_str())
}

/// The status word shown for a job: the API's word, except that a job with no run
/// yet is `new` (the API says `started`, which reads as running), and one whose status
/// is still `started` after runs (an HTTP job just resumed) is `idle`.
pub(super) fn ui_status(view: &JobView) -> &'static str {
    match view.status {
        RunStatus::Started if view.counter == 0 && view.logs.is_empty() => "new",
        RunStatus::Started => "idle",
        other => other.as_str(),
    }
}

/// What the next run line says when no timer is armed: `paused`; `after this run` for
/// an interval job (its timer is armed when the current run ends) and for a schedule
/// whose next time is not known now; `on request` only for jobs with neither.
pub(super) fn next_note(view: &JobView) -> &'static str {
    if view.paused {
        "paused"
    } else if view.def.common.interval.is_some() || view.def.common.schedule.is_some() {
        "after this run"
    } else {
        "on request"
    }
}

/// The run going on now among `runs` (oldest first), when the job is running.
fn current_run(view: &JobView, runs: &[RunRow]) -> Option<CurrentRun> {
    if view.status != RunStatus::Running {
        return None;
    }
    let run = runs.iter().rev().find(|r| r.status == "running")?;
    let secs = run.elapsed_secs.unwrap_or(0);
    Some(CurrentRun {
        counter: run.counter,
        started: run.started.clone(),
        elapsed_secs: secs,
        elapsed: human_duration(Duration::from_secs(secs)),
        href: run.href.clone(),
    })
}

/// A duration for people: `< 1 s`, `12 s`, `3 min 4 s`, `2 h 5 min`. Log times have
/// whole seconds, so shorter runs are `< 1 s`.
pub(super) fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => "< 1 s".to_string(),
        1..60 => format!("{secs} s"),
        60..3600 if secs.is_multiple_of(60) => format!("{} min", secs / 60),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ if secs.is_multiple_of(3600) => format!("{} h", secs / 3600),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

/// The rows of the runs in `logs` of the job or monitor `id` of `kind`, in the same
/// order, each linked to its log page.
pub(super) fn run_rows(
    kind: JobKind,
    id: &str,
    logs: &[LogSummary],
    now: Timestamp,
) -> Vec<RunRow> {
    logs.iter()
        .map(|log| {
            let status = log.status;
            let took = took(log, now);
            RunRow {
                counter: log.counter,
                status: status.as_str(),
                trigger: log.trigger.map_or("—", Trigger::as_str),
                started: log.started.and_then(TimeView::new),
                duration: took.map_or_else(
                    || "—".to_string(),
                    |d| {
                        let text = human_duration(d);
                        if status == RunStatus::Running {
                            format!("{text} so far")
                        } else {
                            text
                        }
                    },
                ),
                seconds: took.map(|d| d.as_secs_f64()),
                elapsed_secs: took
                    .filter(|_| status == RunStatus::Running)
                    .map(|d| d.as_secs()),
                href: log_href(kind, id, log.counter),
            }
        })
        .collect()
}

/// Builds views of jobs from snapshots and their run records; cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct ViewSource;

impl ViewSource {
    /// The runs of `view`, oldest first, from the run records of its snapshot.
    pub(super) fn runs(&self, view: &JobView, now: Timestamp) -> Vec<RunRow> {
        self.runs_of(view, &view.logs, now)
    }

    /// The runs of `logs` (some of `view`'s, oldest first).
    fn runs_of(&self, view: &JobView, logs: &[LogSummary], now: Timestamp) -> Vec<RunRow> {
        run_rows(view.def.kind(), view.id().as_str(), logs, now)
    }

    /// The dashboard's card of `view` (blocking). Only the runs its chart shows are
    /// read.
    pub(super) fn card(&self, view: &JobView, now: Timestamp) -> EntryCard {
        let shown = &view.logs[view.logs.len().saturating_sub(CARD_BARS)..];
        let runs = self.runs_of(view, shown, now);
        let kind = view.def.kind();
        EntryCard {
            key: entry_key(kind, view.id().as_str()),
            group: Group::of_job(view),
            name: view.name().to_string(),
            status: ui_status(view),
            paused: view.paused,
            queued: view.queued,
            last_run: view.last_run.and_then(TimeView::new),
            next_run: view.next_run.and_then(TimeView::new),
            next_note: next_note(view),
            current: current_run(view, &runs),
            chart: chart::runs_svg(&runs, CARD_BARS),
            chart_scale: chart::scale_text(&runs, CARD_BARS),
            href: job_href(kind, view.id().as_str()),
            words: &JOB_WORDS,
        }
    }

    /// The dashboard list's row of `view`: the last run's end (linked to its log) and
    /// duration, or the time so far of the run going on.
    pub(super) fn row(&self, view: &JobView, now: Timestamp) -> ListRow {
        let kind = view.def.kind();
        let id = view.id().as_str();
        let current = view
            .logs
            .last()
            .filter(|l| view.status == RunStatus::Running && l.status == RunStatus::Running);
        let finished = view
            .logs
            .iter()
            .rev()
            .find(|l| l.status != RunStatus::Running);
        let (duration, elapsed_secs) = match current.and_then(|l| took(l, now)) {
            Some(so_far) => (
                format!("{} so far", human_duration(so_far)),
                Some(so_far.as_secs()),
            ),
            None => (
                finished
                    .and_then(|l| took(l, now))
                    .map_or_else(|| "—".to_string(), human_duration),
                None,
            ),
        };
        ListRow {
            key: entry_key(kind, id),
            kind: kind_word(kind),
            name: view.name().to_string(),
            href: job_href(kind, id),
            status: ui_status(view),
            group: Group::of_job(view),
            queued: view.queued,
            last: view.last_run.and_then(TimeView::new),
            last_href: finished.map(|l| log_href(kind, id, l.counter)),
            next: view
                .next_run
                .filter(|_| !view.paused)
                .and_then(TimeView::new),
            next_note: next_note(view),
            duration,
            elapsed_secs,
            elapsed_prefix: "",
            elapsed_suffix: " so far",
        }
    }

    /// A job page's live part (blocking).
    pub(super) fn live(&self, view: &JobView, now: Timestamp) -> JobLive {
        let runs = self.runs(view, now);
        let chart = chart::runs_svg(&runs, PAGE_BARS);
        let chart_scale = chart::scale_text(&runs, PAGE_BARS);
        let current = current_run(view, &runs);
        let mut runs = runs;
        runs.reverse();
        JobLive {
            status: ui_status(view),
            paused: view.paused,
            queued: view.queued,
            last_run: view.last_run.and_then(TimeView::new),
            next_run: view.next_run.and_then(TimeView::new),
            next_note: next_note(view),
            current,
            runs,
            chart,
            chart_scale,
            retry: view.retry.and_then(|wait| {
                let what = format!(
                    "attempt {} of {} (after #{})",
                    wait.attempt,
                    view.def.common.policies.retry + 1,
                    wait.first
                );
                Some((what, TimeView::new(wait.due)?))
            }),
            skipped: view
                .skipped
                .last()
                .and_then(|(at, _)| Some((view.skipped.len(), TimeView::new(*at)?))),
        }
    }
}

/// A job that a chain starts, linked.
#[derive(Debug, Clone)]
pub(super) struct ChainLink {
    /// The target's name.
    pub name: String,
    /// Its page; `None` when no such job is defined now.
    pub href: Option<String>,
}

/// `on_success` or `on_failure`: the jobs a run's end starts.
#[derive(Debug, Clone)]
pub(super) struct ChainFact {
    /// `On success` or `On failure`.
    pub name: &'static str,
    /// The jobs.
    pub jobs: Vec<ChainLink>,
}

/// A job's definition for its page; `find` gives the job called by a name (either
/// kind), for the links of its chains.
pub(super) fn detail(
    view: &JobView,
    now: Timestamp,
    find: impl Fn(&str) -> Option<(JobKind, String)>,
) -> JobDetail {
    let kind = view.def.kind();
    let id = view.id().to_string();
    let common = &*view.def.common;
    let schedule_text = match (common.schedule.as_ref(), common.interval) {
        (Some(schedule), _) => format!("{} — {}", schedule.as_str(), schedule.describe()),
        (None, Some(every)) => format!(
            "every {} after the previous run ends",
            human_duration(every)
        ),
        (None, None) => "none: runs only when triggered".to_string(),
    };
    // With `jitter`, every start is the job's offset after its slot.
    let offset = common.policies.jitter_offset(&view.def.key());
    let upcoming = common
        .schedule
        .as_ref()
        .map(|s| {
            let from = now.checked_sub(offset).unwrap_or(now);
            s.upcoming(from, 5)
                .into_iter()
                .filter_map(|at| at.checked_add(offset).ok())
                .filter_map(|at| ZonedTime::new(at, s.timezone()))
                .collect()
        })
        .unwrap_or_default();
    let mut facts = Vec::new();
    let (lines, lines_title) = match &view.def.kind {
        JobDefKind::Exec {
            spec: job,
            function,
        } => {
            if let Some(path) = &job.path {
                facts.push(Fact {
                    name: "Web hook",
                    value: format!(
                        "POST /karajo/api/job_exec/run{path} ({}, {})",
                        job.auth_kind.as_str(),
                        common.header_sign
                    ),
                });
            }
            if let Some(rules) = job.hook_rules.describe(job.auth_kind.as_str()) {
                facts.push(Fact {
                    name: "Web hook rules",
                    value: rules,
                });
            }
            if let Some(params) = job.params.describe() {
                facts.push(Fact {
                    name: "Parameters",
                    value: params.trim_start_matches("params: ").to_string(),
                });
            }
            if let Some(timeout) = job.timeout {
                facts.push(Fact {
                    name: "Timeout",
                    value: human_duration(timeout),
                });
            }
            if function.is_some() {
                facts.push(Fact {
                    name: "Runs",
                    value: "a Rust function registered for this job".into(),
                });
            }
            (job.commands.clone(), "Commands")
        }
        JobDefKind::Http { spec: job, .. } => {
            let secret = SecretHeaders::new(&common.header_sign, &job.http_header_secret);
            facts.push(Fact {
                name: "Request",
                value: format!(
                    "{} {}",
                    job.http_method.as_str(),
                    redact::url(&job.http_url)
                ),
            });
            facts.push(Fact {
                name: "Parameters in",
                value: if job.http_request_type_text.is_empty() {
                    "query".to_string()
                } else {
                    job.http_request_type_text.clone()
                },
            });
            facts.push(Fact {
                name: "Timeout",
                value: job.http_timeout.map_or("none".into(), human_duration),
            });
            if job.http_insecure {
                facts.push(Fact {
                    name: "TLS",
                    value: "certificates not checked (http_insecure)".into(),
                });
            }
            (
                job.http_header_lines
                    .iter()
                    .map(|line| secret.header_line(line).into_owned())
                    .collect(),
                "Request headers",
            )
        }
    };
    facts.push(Fact {
        name: "Logs kept",
        value: common.log_retention.to_string(),
    });
    for (name, value) in common.policies.describe(&view.def.key()) {
        facts.push(Fact { name, value });
    }
    let chains = [
        ("On success", &common.policies.on_success),
        ("On failure", &common.policies.on_failure),
    ]
    .into_iter()
    .filter(|(_, jobs)| !jobs.is_empty())
    .map(|(name, jobs)| ChainFact {
        name,
        jobs: jobs
            .iter()
            .map(|chain| ChainLink {
                name: chain.job.clone(),
                href: find(&chain.job).map(|(kind, id)| job_href(kind, &id)),
            })
            .collect(),
    })
    .collect();
    JobDetail {
        chains,
        kind: kind.as_str(),
        kind_label: kind.title(),
        control_href: format!("{}/control", job_href(kind, &id)),
        id,
        name: view.name().to_string(),
        description: common.description.clone(),
        schedule_text,
        upcoming,
        facts,
        lines,
        lines_title,
        params: param_fields(&view.def.kind),
    }
}

/// The Run now form's parameter fields of a command job (none for HTTP jobs).
fn param_fields(kind: &JobDefKind) -> Vec<ParamField> {
    let JobDefKind::Exec { spec, .. } = kind else {
        return Vec::new();
    };
    spec.params
        .list
        .iter()
        .map(|p| ParamField {
            field: format!("{}{}", crate::web::api::PARAM_FIELD, p.name),
            name: p.name.clone(),
            value: p.default.clone().unwrap_or_default(),
            required: p.default.is_none(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        let s = Duration::from_secs;
        assert_eq!(human_duration(Duration::from_millis(400)), "< 1 s");
        assert_eq!(human_duration(s(12)), "12 s");
        assert_eq!(human_duration(s(60)), "1 min");
        assert_eq!(human_duration(s(184)), "3 min 4 s");
        assert_eq!(human_duration(s(7500)), "2 h 5 min");
        assert_eq!(human_duration(s(7200)), "2 h");
    }

    #[test]
    fn times_are_utc_iso() {
        let t: Timestamp = "2026-11-22T21:08:11.6Z".parse().unwrap();
        let v = TimeView::new(t).unwrap();
        assert_eq!(v.iso, "2026-11-22T21:08:12Z");
        assert_eq!(v.text, "2026-11-22 21:08:12 UTC");
        assert!(TimeView::new(Timestamp::MAX).is_none());
    }

    #[test]
    fn zoned_times_name_their_zone() {
        let t: Timestamp = "2026-11-23T02:00:00Z".parse().unwrap();
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        let z = ZonedTime::new(t, &berlin).unwrap();
        assert_eq!(z.text, "Mon 2026-11-23 03:00 CET");
        assert_eq!(z.zone, "Europe/Berlin");
        assert_eq!(z.at.text, "2026-11-23 02:00:00 UTC");
        let fixed = jiff::tz::TimeZone::fixed(jiff::tz::offset(7));
        let z = ZonedTime::new(t, &fixed).unwrap();
        assert_eq!(z.zone, "+07");
        assert!(z.text.starts_with("Mon 2026-11-23 09:00"), "{}", z.text);
    }
}
