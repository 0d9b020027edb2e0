//! A heartbeat monitor in the web UI: its page at `/karajo/app/monitor/<id>` (the status
//! in words and colour, the cadence and limits, the open runs and the pause, the ping
//! URL to copy, the recent check-ins linked to their log pages, and pause/resume
//! controls), the part of that page that its live stream sends again with every
//! snapshot ([`MonitorLive`]), and the monitor's card and list row on the dashboard.
//! Everything is built from the scheduler's [`MonitorView`]; nothing here reads a file
//! or changes a monitor (the controls are in `controls.rs`).
//!
//! **No secrets.** A monitor's `token` and `secret` never reach a page: the ping URL is
//! shown with the placeholder `?token=…`, and only the kind of authentication is named.

use std::time::Duration;

use axum::Extension;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use jiff::Timestamp;

use super::chart;
pub(super) use super::login::Connect;
use super::view::{
    self, CARD_BARS, CurrentRun, EntryCard, Fact, Group, ListRow, MONITOR_WORDS, PAGE_BARS, RunRow,
    TimeView, ZonedTime, human_duration,
};
use super::{Chrome, Viewer, WuiError, html};
use crate::config::{Cadence, MonitorAuth};
use crate::job::{JobKind, RunStatus};
use crate::monitor::{DownReason, PauseUntil, Signal, Status};
use crate::scheduler::MonitorView;
use crate::web::AppState;
use crate::web::peer;

/// The URL of a monitor's page.
pub(super) fn page_href(id: &str) -> String {
    view::job_href(JobKind::Monitor, id)
}

/// A monitor's status in words, so that it does not rest on colour alone:
/// `Down since <time>: a check-in reported failure (exit status 3)`.
#[derive(Debug, Clone)]
pub(super) struct StatusWords {
    /// `Down`, `Paused for maintenance`.
    pub head: &'static str,
    /// `since` or `until`, with its time.
    pub at: Option<(&'static str, TimeView)>,
    /// What it means: `a check-in reported failure (exit status 3)`.
    pub detail: String,
}

/// What a monitor's status means, in a sentence.
pub(super) fn status_words(view: &MonitorView) -> StatusWords {
    let state = &view.state;
    let rules = &view.spec.rules;
    let since = TimeView::new(state.since).map(|t| ("since", t));
    let (head, at, detail) = match state.status {
        Status::New => (
            "New",
            None,
            "no check-in yet; a new monitor is never late or down by time".to_string(),
        ),
        Status::Up => ("Up", since, "checked in on time".to_string()),
        Status::Late { .. } => (
            "Late",
            since,
            format!(
                "the expected check-in has not arrived; down when its grace of {} ends",
                human_duration(rules.grace)
            ),
        ),
        Status::Down(outage) => {
            let why = match outage.reason {
                DownReason::Timeout => "no check-in arrived in time".to_string(),
                DownReason::Fail => match outage.exit_code {
                    Some(code) => format!("a check-in reported failure (exit status {code})"),
                    None => "a check-in reported failure".to_string(),
                },
                DownReason::RunTimeout => match rules.max_runtime {
                    Some(max) => format!(
                        "a run got no end signal within max_runtime ({})",
                        human_duration(max)
                    ),
                    None => "a run got no end signal within max_runtime".to_string(),
                },
            };
            ("Down", since, why)
        }
        Status::Paused(PauseUntil::Ping) => (
            "Paused",
            since,
            "the next success check-in resumes it; no alarms until then".to_string(),
        ),
        Status::Paused(PauseUntil::Resume) => (
            "Paused",
            since,
            "pings are ignored until someone resumes it".to_string(),
        ),
        Status::Paused(PauseUntil::Time(until)) => (
            "Paused for maintenance",
            TimeView::new(until).map(|t| ("until", t)),
            "pings are ignored until then, and it resumes by itself".to_string(),
        ),
    };
    StatusWords { head, at, detail }
}

/// What the last check-in said, for people.
fn ping_kind_words(signal: Signal) -> String {
    match signal {
        Signal::Start => "a run started".to_string(),
        Signal::Success => "success".to_string(),
        Signal::Fail => "failure".to_string(),
        Signal::Exit(0) => "exit status 0 (success)".to_string(),
        Signal::Exit(code) => format!("exit status {code} (failure)"),
        Signal::Log => "log".to_string(),
        Signal::Pulse => "watchTower pulse".to_string(),
    }
}

/// A run that a `start` opened and no end check-in closed yet.
#[derive(Debug, Clone)]
pub(super) struct OpenRunRow {
    /// The `rid` of its start; `—` without one.
    pub rid: String,
    /// When it started.
    pub started: Option<TimeView>,
    /// Whole seconds so far (the page's script counts on).
    pub elapsed_secs: u64,
    /// The same for people.
    pub elapsed: String,
    /// When it turns the monitor down without an end signal (`max_runtime`).
    pub deadline: Option<TimeView>,
    /// Its log page.
    pub href: String,
    /// Its log's counter.
    pub counter: u64,
}

/// The part of a monitor's page that changes: its state, open runs and check-ins.
#[derive(Debug, Clone)]
pub(super) struct MonitorLive {
    /// `new`, `up`, `late`, `down` or `paused` (also its colour, `st-<status>`).
    pub status: &'static str,
    /// The status in words.
    pub words: StatusWords,
    /// The last check-in's time.
    pub last_ping: Option<TimeView>,
    /// What it said.
    pub last_ping_kind: String,
    /// When the next check-in is due (none while a run is open or paused).
    pub next_due: Option<TimeView>,
    /// What the due line says without a time.
    pub next_note: &'static str,
    /// When the status changes by itself if nothing arrives, and what happens then.
    pub deadline: Option<(&'static str, TimeView)>,
    /// How long the last closed run took; `—` when none.
    pub last_duration: String,
    /// The open runs, oldest first.
    pub runs: Vec<OpenRunRow>,
    /// The kept check-in logs, newest first.
    pub checkins: Vec<RunRow>,
    /// The chart of the check-ins (SVG, escaped by [`chart`]).
    pub chart: String,
    /// The chart's scale in words.
    pub chart_scale: String,
}

/// A monitor page's live part (`_monitor_live.html`), sent whole by its stream.
#[derive(Debug, Clone, askama::Template)]
#[template(path = "_monitor_live.html")]
pub(super) struct MonitorLiveFragment {
    /// The state and check-ins.
    pub live: MonitorLive,
}

/// What the next due line says when there is no due time.
fn next_note(view: &MonitorView) -> &'static str {
    let state = &view.state;
    match state.status {
        Status::Paused(_) => "paused",
        _ if !state.runs.is_empty() => "when the open run ends",
        Status::New => "after the first check-in",
        _ => "—",
    }
}

/// The monitor's deadline (when its status changes by time) with what happens then;
/// `None` when it is the due time shown already.
fn deadline(view: &MonitorView) -> Option<(&'static str, TimeView)> {
    let state = &view.state;
    let deadline = view.deadline.filter(|d| Some(*d) != state.next_due())?;
    let at = TimeView::new(deadline)?;
    let what = match state.status {
        Status::Paused(PauseUntil::Time(_)) => "Resumes at",
        Status::Paused(_) => return None,
        Status::Down(_) => "Next reminder",
        _ if !state.runs.is_empty() => "Down at (run timeout)",
        Status::New => return None,
        Status::Up | Status::Late { .. } => "Down at",
    };
    Some((what, at))
}

/// The open runs of `view`, oldest first.
fn open_runs(view: &MonitorView, now: Timestamp) -> Vec<OpenRunRow> {
    let id = view.id().as_str();
    let max = view
        .spec
        .rules
        .max_runtime
        .and_then(|max| jiff::SignedDuration::try_from(max).ok());
    view.state
        .runs
        .iter()
        .map(|run| {
            let so_far = Duration::try_from(now.duration_since(run.started)).unwrap_or_default();
            OpenRunRow {
                rid: run
                    .rid
                    .as_ref()
                    .map_or_else(|| "—".to_string(), ToString::to_string),
                started: TimeView::new(run.started),
                elapsed_secs: so_far.as_secs(),
                elapsed: human_duration(so_far),
                deadline: max
                    .and_then(|max| run.started.checked_add(max).ok())
                    .and_then(TimeView::new),
                href: view::log_href(JobKind::Monitor, id, run.counter),
                counter: run.counter,
            }
        })
        .collect()
}

/// A monitor page's live part.
pub(super) fn live(view: &MonitorView, now: Timestamp) -> MonitorLive {
    let state = &view.state;
    let id = view.id().as_str();
    let runs = view::run_rows(JobKind::Monitor, id, &view.logs, now);
    let chart = chart::runs_svg(&runs, PAGE_BARS);
    let chart_scale = chart::scale_text(&runs, PAGE_BARS);
    let mut checkins = runs;
    checkins.reverse();
    MonitorLive {
        status: state.status.as_str(),
        words: status_words(view),
        last_ping: state.last_ping.and_then(TimeView::new),
        last_ping_kind: state
            .last_ping_kind
            .map(ping_kind_words)
            .unwrap_or_default(),
        next_due: state.next_due().and_then(TimeView::new),
        next_note: next_note(view),
        deadline: deadline(view),
        last_duration: state
            .last_duration
            .map_or_else(|| "—".to_string(), human_duration),
        runs: open_runs(view, now),
        checkins,
        chart,
        chart_scale,
    }
}

/// The newest open run as the card's "run open" line.
fn current_run(view: &MonitorView, now: Timestamp) -> Option<CurrentRun> {
    let run = open_runs(view, now).pop()?;
    Some(CurrentRun {
        counter: run.counter,
        started: run.started,
        elapsed_secs: run.elapsed_secs,
        elapsed: run.elapsed,
        href: run.href,
    })
}

/// The monitor's card on the dashboard, with a chart of its recent check-ins.
pub(super) fn card(view: &MonitorView, now: Timestamp) -> EntryCard {
    let id = view.id().as_str();
    let state = &view.state;
    let shown = &view.logs[view.logs.len().saturating_sub(CARD_BARS)..];
    let runs = view::run_rows(JobKind::Monitor, id, shown, now);
    EntryCard {
        key: view::entry_key(JobKind::Monitor, id),
        group: Group::of_monitor(state.status),
        name: view.spec.name.clone(),
        status: state.status.as_str(),
        paused: state.status.is_paused(),
        queued: false,
        last_run: state.last_ping.and_then(TimeView::new),
        next_run: state.next_due().and_then(TimeView::new),
        next_note: next_note(view),
        current: current_run(view, now),
        chart: chart::runs_svg(&runs, CARD_BARS),
        chart_scale: chart::scale_text(&runs, CARD_BARS),
        href: page_href(id),
        words: &MONITOR_WORDS,
    }
}

/// The monitor's row in the dashboard's list: its last check-in (linked to the newest
/// closed log), its due time, and the duration of its open run or its last run.
pub(super) fn row(view: &MonitorView, now: Timestamp) -> ListRow {
    let state = &view.state;
    let id = view.id().as_str();
    let open = state.runs.iter().map(|r| r.started).min();
    let (duration, elapsed_secs) = match open {
        Some(started) => {
            let so_far = Duration::try_from(now.duration_since(started)).unwrap_or_default();
            (
                format!("{} so far", human_duration(so_far)),
                Some(so_far.as_secs()),
            )
        }
        None => (
            state
                .last_duration
                .map_or_else(|| "—".to_string(), human_duration),
            None,
        ),
    };
    let last_log = view
        .logs
        .iter()
        .rev()
        .find(|l| l.status != RunStatus::Running);
    ListRow {
        key: view::entry_key(JobKind::Monitor, id),
        kind: view::kind_word(JobKind::Monitor),
        name: view.spec.name.clone(),
        href: page_href(id),
        status: state.status.as_str(),
        group: Group::of_monitor(state.status),
        queued: false,
        last: state.last_ping.and_then(TimeView::new),
        last_href: last_log.map(|l| view::log_href(JobKind::Monitor, id, l.counter)),
        next: state.next_due().and_then(TimeView::new),
        next_note: match next_note(view) {
            "—" => "",
            note => note,
        },
        duration,
        elapsed_secs,
        elapsed_prefix: "",
        elapsed_suffix: " so far",
    }
}

/// How to check in, for the page: the URL without any secret, and what it needs.
#[derive(Debug, Clone)]
pub(super) struct PingHelp {
    /// `http://host:port/karajo/api/monitor/ping/backup`, or only the path when the
    /// request named no usable host.
    pub url: String,
    /// What follows the URL in place of the token: `?token=…` for token monitors.
    pub token_placeholder: &'static str,
    /// How pings authenticate, in words (never the token or secret itself).
    pub auth: String,
    /// Whether only POST is taken.
    pub post_only: bool,
}

/// A monitor's settings, for its page.
#[derive(Debug, Clone)]
pub(super) struct MonitorDetail {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The description as configured; the template escapes it.
    pub description: String,
    /// The cadence in words: the period, or the schedule with its zone.
    pub cadence: String,
    /// The next five slots of a schedule, in its zone and the reader's.
    pub upcoming: Vec<ZonedTime>,
    /// `grace` for people.
    pub grace: String,
    /// `max_runtime` for people (`no limit` when none).
    pub max_runtime: String,
    /// How to check in.
    pub ping: PingHelp,
    /// Other settings.
    pub facts: Vec<Fact>,
    /// Where the control form posts.
    pub control_href: String,
    /// The pause form's `until` choices: value, words, chosen.
    pub pause_choices: Vec<(&'static str, &'static str, bool)>,
}

/// `scheme://host[:port]` of the request, as the browser reached karajo (see
/// [`origin_of`]).
pub(super) fn request_origin(
    state: &AppState,
    headers: &HeaderMap,
    connect: &Connect,
) -> Option<String> {
    let addr = connect.as_ref().map(|Extension(ConnectInfo(a))| *a);
    origin_of(
        headers,
        peer::peer(&state.config().trusted_proxy, addr, headers),
    )
}

/// `scheme://host[:port]` from the `Host` header, or a trusted proxy's
/// `X-Forwarded-Host`; `https` only when a trusted proxy says so. `None` when the host
/// is missing or has characters a host cannot have (it is shown on the page).
fn origin_of(headers: &HeaderMap, peer: peer::Peer) -> Option<String> {
    let text = |value: &axum::http::HeaderValue| {
        value
            .to_str()
            .ok()
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_string())
    };
    let host = peer
        .via_proxy
        .then(|| headers.get("x-forwarded-host").and_then(text))
        .flatten()
        .or_else(|| headers.get(header::HOST).and_then(text))?;
    let plausible = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b));
    if !plausible {
        return None;
    }
    let scheme = if peer.https { "https" } else { "http" };
    Some(format!("{scheme}://{host}"))
}

/// A monitor's settings for its page; `origin` is [`request_origin`]'s.
pub(super) fn detail(view: &MonitorView, now: Timestamp, origin: Option<&str>) -> MonitorDetail {
    let spec = &view.spec;
    let rules = &spec.rules;
    let id = spec.id.as_str();
    let mut facts = Vec::new();
    let (cadence, upcoming) = match &rules.cadence {
        Cadence::Period(period) => (
            format!("a check-in at least every {}", human_duration(*period)),
            Vec::new(),
        ),
        Cadence::Schedule {
            schedule,
            early_tolerance,
        } => {
            facts.push(Fact {
                name: "Early tolerance",
                value: format!(
                    "a check-in up to {} before a slot counts for that slot",
                    human_duration(*early_tolerance)
                ),
            });
            (
                format!("{} — {}", schedule.as_str(), schedule.describe()),
                schedule
                    .upcoming(now, 5)
                    .into_iter()
                    .filter_map(|at| ZonedTime::new(at, schedule.timezone()))
                    .collect(),
            )
        }
    };
    let (token_placeholder, auth) = match &spec.auth {
        MonitorAuth::Token(_) => (
            "?token=…",
            "token: put the monitor's token from its configuration in place of … (or send it in the X-Karajo-Token header)".to_string(),
        ),
        MonitorAuth::HmacSha256 { header_sign, .. } => (
            "",
            format!("hmac-sha256: POST only, with the HMAC-SHA256 of the body in the {header_sign} header"),
        ),
        MonitorAuth::None => (
            "",
            "none: anyone who can reach the URL can check in".to_string(),
        ),
    };
    let base = origin.unwrap_or_default();
    facts.push(Fact {
        name: "Logs kept",
        value: spec.log_retention.to_string(),
    });
    if !rules.log_success {
        facts.push(Fact {
            name: "Lone successes",
            value: "not logged (log_success = false)".to_string(),
        });
    }
    let names = |list: &[String]| {
        if list.is_empty() {
            "nobody".to_string()
        } else {
            list.join(", ")
        }
    };
    facts.push(Fact {
        name: "Notified when down",
        value: match rules.notif_repeat {
            Some(every) if !rules.notif_on_down.is_empty() => format!(
                "{}, again every {} while down",
                names(&rules.notif_on_down),
                human_duration(every)
            ),
            _ => names(&rules.notif_on_down),
        },
    });
    facts.push(Fact {
        name: "Notified when up again",
        value: names(&rules.notif_on_up),
    });
    if !rules.notif_on_late.is_empty() {
        facts.push(Fact {
            name: "Notified when late",
            value: names(&rules.notif_on_late),
        });
    }
    let manual = spec.manual_resume;
    MonitorDetail {
        id: id.to_string(),
        name: spec.name.clone(),
        description: spec.description.clone(),
        cadence,
        upcoming,
        grace: human_duration(rules.grace),
        max_runtime: rules
            .max_runtime
            .map_or_else(|| "no limit".to_string(), human_duration),
        ping: PingHelp {
            url: format!("{base}/karajo/api/monitor/ping{}", spec.path),
            token_placeholder,
            auth,
            post_only: spec.post_only,
        },
        facts,
        control_href: format!("{}/control", page_href(id)),
        pause_choices: vec![
            ("ping", "the next success check-in", !manual),
            ("resume", "someone resumes it", manual),
        ],
    }
}

/// The monitor page (`monitor.html`).
#[derive(askama::Template)]
#[template(path = "monitor.html")]
pub(super) struct MonitorPage {
    pub chrome: Chrome,
    pub monitor: MonitorDetail,
    pub live: MonitorLive,
    pub notice: Option<&'static str>,
    pub csrf: Option<String>,
}

/// `GET /karajo/app/monitor/{id}` (reached through the job page's route): the page,
/// with `notice` after a control.
pub(super) async fn page(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    notice: Option<&'static str>,
    headers: &HeaderMap,
    connect: &Connect,
) -> Result<Response, WuiError> {
    let view = find(state, id)?;
    let now = state.clock.now();
    let origin = request_origin(state, headers, connect);
    html(&MonitorPage {
        chrome: Chrome::new(state, Some(viewer)),
        monitor: detail(&view, now, origin.as_deref()),
        live: live(&view, now),
        notice,
        csrf: viewer.session.as_ref().map(|s| s.csrf.clone()),
    })
}

/// The monitor with this id in the newest snapshot.
pub(super) fn find(state: &AppState, id: &str) -> Result<std::sync::Arc<MonitorView>, WuiError> {
    state
        .scheduler
        .snapshot()
        .monitor(id)
        .cloned()
        .ok_or(WuiError::MonitorNotFound)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn ping_kinds_read_as_words() {
        assert_eq!(ping_kind_words(Signal::Exit(3)), "exit status 3 (failure)");
        assert_eq!(ping_kind_words(Signal::Exit(0)), "exit status 0 (success)");
        assert_eq!(ping_kind_words(Signal::Start), "a run started");
    }

    #[test]
    fn the_origin_comes_from_the_host_and_only_a_trusted_proxy_changes_it() {
        let direct = peer::Peer {
            client: None,
            via_proxy: false,
            https: false,
        };
        let proxy = peer::Peer {
            client: None,
            via_proxy: true,
            https: true,
        };
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:31937"));
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("karajo.example"),
        );
        assert_eq!(
            origin_of(&h, direct).as_deref(),
            Some("http://127.0.0.1:31937")
        );
        assert_eq!(
            origin_of(&h, proxy).as_deref(),
            Some("https://karajo.example")
        );
        h.insert(header::HOST, HeaderValue::from_static("[::1]:80"));
        assert_eq!(origin_of(&h, direct).as_deref(), Some("http://[::1]:80"));
        // Anything a host cannot hold: no origin, only the path is shown.
        for bad in ["a\"><script>", "x y", "evil/path", ""] {
            h.insert(header::HOST, HeaderValue::from_str(bad).unwrap());
            assert_eq!(origin_of(&h, direct), None, "{bad}");
        }
        h.remove(header::HOST);
        assert_eq!(origin_of(&h, direct), None);
    }
}
