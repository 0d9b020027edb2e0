//! The pages: the entry redirect, the dashboard, a job's page and a run's log page
//! (with its raw download), plus redirects from the original's log page URLs.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::view::{self, JobDetail, JobLive, JobsFragment, TimeView, ViewSource};
use super::{AnsiHtml, Chrome, Viewer, WuiError, html, parse_kind, runs};
use crate::http::AppState;
use crate::http::access;
use crate::job::{JobKind, RunStatus};
use crate::scheduler::JobView;
use crate::store::run_log;

/// `GET /karajo/`: the dashboard, or the login page when users exist and the request
/// has no session.
pub async fn entry(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !access::users_exist(&state) || access::session(&state, &headers).is_some() {
        Redirect::to("/karajo/app/").into_response()
    } else {
        Redirect::to("/karajo/login").into_response()
    }
}

pub(crate) fn source(state: &AppState) -> ViewSource {
    ViewSource {
        layout: state.layout.clone(),
        cache: state.wui.run_times.clone(),
    }
}

#[derive(askama::Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    chrome: Chrome,
    exec_jobs: Vec<view::JobCard>,
    http_jobs: Vec<view::JobCard>,
    running: usize,
    waiting: usize,
}

/// `GET /karajo/app/`: every job with its state and recent runs, updated live.
pub async fn dashboard(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Response, WuiError> {
    let snapshot = state.scheduler.snapshot();
    let src = source(&state);
    let now = state.clock.now();
    let JobsFragment {
        exec_jobs,
        http_jobs,
        running,
        waiting,
    } = tokio::task::spawn_blocking(move || src.jobs(&snapshot, now)).await?;
    html(&Dashboard {
        chrome: Chrome::new(&state, Some(&viewer)),
        exec_jobs,
        http_jobs,
        running,
        waiting,
    })
}

/// The job of a URL's kind word and id.
pub(crate) fn find_job(state: &AppState, kind: &str, id: &str) -> Result<Arc<JobView>, WuiError> {
    let kind = parse_kind(kind).ok_or(WuiError::JobNotFound)?;
    state
        .scheduler
        .snapshot()
        .job(kind, id)
        .cloned()
        .ok_or(WuiError::JobNotFound)
}

/// Fixed messages shown after a control, chosen by `?notice=`.
#[derive(Debug, serde::Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    notice: String,
}

fn notice_text(word: &str) -> Option<&'static str> {
    Some(match word {
        "queued" => "The run is queued behind the current one.",
        "busy" => "Not started: a run is in progress and another one is already queued.",
        "paused-refused" => "Not started: the job is paused. Resume it first.",
        "paused" => "Paused: timers and web hooks start no runs until it is resumed.",
        "resumed" => "Resumed.",
        "canceled" => "Cancel requested: a running run ends shortly.",
        _ => return None,
    })
}

#[derive(askama::Template)]
#[template(path = "job.html")]
struct JobPage {
    chrome: Chrome,
    job: JobDetail,
    live: JobLive,
    notice: Option<&'static str>,
    csrf: Option<String>,
}

/// `GET /karajo/app/{kind}/{id}`: a job's state, runs, definition and controls.
pub async fn job(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path((kind, id)): Path<(String, String)>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, WuiError> {
    let view = find_job(&state, &kind, &id)?;
    let now = state.clock.now();
    let src = source(&state);
    let for_live = view.clone();
    let live = tokio::task::spawn_blocking(move || src.live(&for_live, now)).await?;
    html(&JobPage {
        chrome: Chrome::new(&state, Some(&viewer)),
        job: view::detail(&view, now),
        live,
        notice: notice_text(&query.notice),
        csrf: viewer.session.as_ref().map(|s| s.csrf.clone()),
    })
}

#[derive(askama::Template)]
#[template(path = "log.html")]
struct LogPage {
    chrome: Chrome,
    job_name: String,
    job_href: String,
    counter: u64,
    status: &'static str,
    started: Option<TimeView>,
    duration: String,
    raw_href: String,
    follow: Option<String>,
    content: String,
}

/// A run's log as read now: its entry and content.
pub(crate) async fn read_log(
    state: &AppState,
    view: &JobView,
    counter: u64,
) -> Result<(run_log::LogEntry, Vec<u8>), WuiError> {
    let dir = state.layout.log_dir(view.def.kind(), view.id());
    let id = view.id().clone();
    tokio::task::spawn_blocking(move || -> Result<_, WuiError> {
        let entry = run_log::find(&dir, &id, counter)?.ok_or(WuiError::LogNotFound)?;
        let (mut file, entry) = run_log::open(&entry)?;
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut content)?;
        Ok((entry, content))
    })
    .await?
}

/// `GET /karajo/app/{kind}/{id}/log/{counter}`: the log with ANSI colours; a running
/// log is followed live by the page's script.
pub async fn log(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path((kind, id, counter)): Path<(String, String, u64)>,
) -> Result<Response, WuiError> {
    let view = find_job(&state, &kind, &id)?;
    let (entry, content) = read_log(&state, &view, counter).await?;
    let running = entry.status == RunStatus::Running;
    // A running log is shown up to its last whole line; the stream goes on from there.
    let shown = if running {
        content
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
    } else {
        content.len()
    };
    let html_content = AnsiHtml::new().convert(&content[..shown]);
    let start = content.get(..24).and_then(runs::prefix_time);
    let end = if running {
        Some(state.clock.now())
    } else {
        content
            .split(|&b| b == b'\n')
            .rev()
            .find_map(runs::prefix_time)
            .or(Some(entry.modified))
    };
    let took = start
        .zip(end)
        .map(|(s, e)| view::human_duration(e.duration_since(s).unsigned_abs()));
    let base = view::log_href(view.def.kind(), view.id().as_str(), counter);
    html(&LogPage {
        chrome: Chrome::new(&state, Some(&viewer)),
        job_name: view.name().to_string(),
        job_href: view::job_href(view.def.kind(), view.id().as_str()),
        counter,
        status: entry.status.as_str(),
        started: start.and_then(TimeView::new),
        duration: match (took, running) {
            (Some(t), true) => format!("{t} so far"),
            (Some(t), false) => t,
            (None, _) => "—".into(),
        },
        raw_href: format!("{base}/raw"),
        follow: running.then(|| format!("{base}/events?offset={shown}")),
        content: html_content,
    })
}

/// `GET /karajo/app/{kind}/{id}/log/{counter}/raw`: the log file as a download.
pub async fn raw_log(
    State(state): State<AppState>,
    Path((kind, id, counter)): Path<(String, String, u64)>,
) -> Result<Response, WuiError> {
    let view = find_job(&state, &kind, &id)?;
    let (entry, content) = read_log(&state, &view, counter).await?;
    let name = format!("{}.{counter}.{}.log", view.id(), entry.status);
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        content,
    )
        .into_response())
}

/// `?id=&counter=` of the original's log pages.
#[derive(Debug, serde::Deserialize)]
pub struct LegacyLogQuery {
    #[serde(default)]
    id: String,
    #[serde(default)]
    counter: String,
}

fn legacy(kind: JobKind, query: &LegacyLogQuery) -> Response {
    let id = query.id.to_ascii_lowercase();
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    match query.counter.parse::<u64>() {
        Ok(counter) if plain(&id) => {
            Redirect::to(&view::log_href(kind, &id, counter)).into_response()
        }
        _ => Redirect::to("/karajo/app/").into_response(),
    }
}

/// `GET /karajo/job_exec/log/?id=&counter=`: the original's log page URL.
pub async fn legacy_log_exec(Query(query): Query<LegacyLogQuery>) -> Response {
    legacy(JobKind::Exec, &query)
}

/// `GET /karajo/job_http/log/?id=&counter=`: the original's log page URL.
pub async fn legacy_log_http(Query(query): Query<LegacyLogQuery>) -> Response {
    legacy(JobKind::Http, &query)
}
