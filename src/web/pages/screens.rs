//! The pages: the entry redirect, the dashboard, a job's page (a heartbeat monitor's
//! page is in `monitor.rs` and a service's in `service.rs`, reached through the same
//! route) and a run's log page (its last 256 KiB, with the whole file as a streamed raw
//! download) for jobs, monitors and services alike (a service's runs are its
//! instances' log segments), plus redirects from the original's log page URLs.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use tokio_util::io::ReaderStream;

use super::controls::Notice;
use super::dashboard::{Counts, DashView, Entries, Filter};
use super::view::{self, JobDetail, JobLive, TimeView, ViewSource};
use super::{AnsiHtml, Chrome, Viewer, WuiError, html, parse_kind};
use super::{monitor, service};
use crate::job::{JobId, JobKind, RunStatus};
use crate::scheduler::{JobView, LogSummary};
use crate::store::run_log;
use crate::web::AppState;
use crate::web::access;

/// `GET /karajo/`: the dashboard, or the login page when users exist and the request
/// has no session.
pub(super) async fn entry(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !access::users_exist(&state) || access::session(&state, &headers).is_some() {
        Redirect::to("/karajo/app/").into_response()
    } else {
        Redirect::to("/karajo/login").into_response()
    }
}

pub(crate) fn source(_state: &AppState) -> ViewSource {
    ViewSource
}

#[derive(askama::Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    chrome: Chrome,
    /// `cards` or `list`.
    view: &'static str,
    counts: Counts,
    filters: Vec<Filter>,
    /// The live part, rendered.
    live: String,
    /// Names what the live part shows, for the live stream (`?have=`).
    token: String,
}

/// `?view=` of the dashboard and its live stream.
#[derive(Debug, serde::Deserialize)]
pub(super) struct ViewQuery {
    #[serde(default)]
    view: String,
}

/// `GET /karajo/app/[?view=cards|list]`: every job with its state, as cards (with a
/// chart of recent runs) or as a list, updated live. Without `view`, a list when there
/// are more than [`super::dashboard::CARDS_UP_TO`] jobs; the page's script asks for the
/// reader's remembered choice. Monitors and services count as entries too.
pub(super) async fn dashboard(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<ViewQuery>,
) -> Result<Response, WuiError> {
    let snapshot = state.scheduler.snapshot();
    let view = DashView::chosen(&query.view, Entries::count(&snapshot));
    let src = source(&state);
    let now = state.clock.now();
    let (counts, live, digest) =
        tokio::task::spawn_blocking(move || -> Result<_, askama::Error> {
            let entries = Entries::build(&src, &snapshot, now, view);
            let rendered = entries.render()?;
            Ok((entries.counts, rendered.html()?, rendered.digest()))
        })
        .await??;
    html(&Dashboard {
        chrome: Chrome::new(&state, Some(&viewer)),
        view: view.as_str(),
        filters: Filter::all(&counts),
        counts,
        live,
        token: state.wui.renders.put(digest),
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
pub(super) struct NoticeQuery {
    #[serde(default)]
    notice: String,
}

fn notice_text(word: &str) -> Option<&'static str> {
    Notice::parse(word).map(Notice::text)
}

#[derive(askama::Template)]
#[template(path = "job.html")]
struct JobPage {
    chrome: Chrome,
    job: JobDetail,
    live: JobLive,
    notice: Option<&'static str>,
    csrf: Option<String>,
    /// Cluster mode: where the job runs and its run in progress.
    cluster: Option<super::cluster::job::JobPlace>,
}

/// `GET /karajo/app/{kind}/{id}`: a job's state, runs, definition and controls; for
/// `monitor/{id}`, the monitor's page; for `service/{id}`, the service's.
pub(super) async fn job(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path((kind, id)): Path<(String, String)>,
    Query(query): Query<NoticeQuery>,
    headers: HeaderMap,
    connect: monitor::Connect,
) -> Result<Response, WuiError> {
    match parse_kind(&kind) {
        Some(JobKind::Monitor) => {
            let notice = notice_text(&query.notice);
            return monitor::page(&state, &viewer, &id, notice, &headers, &connect).await;
        }
        Some(JobKind::Service) => {
            return service::page(&state, &viewer, &id, notice_text(&query.notice)).await;
        }
        _ => {}
    }
    let view = find_job(&state, &kind, &id)?;
    let now = state.clock.now();
    let src = source(&state);
    let for_live = view.clone();
    let live = tokio::task::spawn_blocking(move || src.live(&for_live, now)).await?;
    html(&JobPage {
        chrome: Chrome::new(&state, Some(&viewer)),
        job: view::detail(&view, now, |name| {
            let snapshot = state.scheduler.snapshot();
            let target = snapshot
                .jobs
                .iter()
                .find(|j| j.name().eq_ignore_ascii_case(name.trim()))?;
            Some((target.def.kind(), target.id().to_string()))
        }),
        live,
        notice: notice_text(&query.notice),
        csrf: viewer.session.as_ref().map(|s| s.csrf.clone()),
        cluster: super::cluster::job::JobPlace::of(state.cluster.as_ref(), &view, now),
    })
}

/// The most of a log its page shows: the last 256 KiB, from a line start. The whole
/// log is the raw download's.
pub(crate) const PAGE_LOG_LIMIT: u64 = 256 * 1024;

/// Whose run logs a log page, its raw download and its live tail show: a job, a
/// heartbeat monitor (whose check-ins are its runs), or a supervised service (whose
/// runs are its instances' log segments).
#[derive(Debug, Clone)]
pub(crate) struct LogOwner {
    /// The kind, which names the log directory.
    pub kind: JobKind,
    /// The id.
    pub id: JobId,
    /// The name, for the page.
    pub name: String,
}

impl LogOwner {
    /// The job, monitor or service of a URL's kind word and id.
    pub(crate) fn find(state: &AppState, kind: &str, id: &str) -> Result<Self, WuiError> {
        match parse_kind(kind) {
            Some(JobKind::Monitor) => {
                let view = monitor::find(state, id)?;
                return Ok(Self {
                    kind: JobKind::Monitor,
                    id: view.id().clone(),
                    name: view.spec.name.clone(),
                });
            }
            Some(JobKind::Service) => {
                let view = service::find(state, id)?;
                return Ok(Self {
                    kind: JobKind::Service,
                    id: view.id().clone(),
                    name: view.spec.name.clone(),
                });
            }
            _ => {}
        }
        let view = find_job(state, kind, id)?;
        Ok(Self {
            kind: view.def.kind(),
            id: view.id().clone(),
            name: view.name().to_string(),
        })
    }

    /// The record of run `counter` in the newest snapshot (the run may have ended
    /// since the owner was found).
    pub(crate) fn record(&self, state: &AppState, counter: u64) -> Option<LogSummary> {
        let snapshot = state.scheduler.snapshot();
        let logs = match self.kind {
            JobKind::Monitor => &snapshot.monitor(self.id.as_str())?.logs,
            JobKind::Service => &snapshot.service(self.id.as_str())?.logs,
            kind => &snapshot.job(kind, self.id.as_str())?.logs,
        };
        logs.iter().find(|l| l.counter == counter).copied()
    }

    /// Its log directory.
    pub(crate) fn log_dir(&self, state: &AppState) -> std::path::PathBuf {
        state.layout.log_dir(self.kind, &self.id)
    }
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
    /// Whole seconds so far while the run goes; the page's script counts on.
    elapsed_secs: Option<u64>,
    raw_href: String,
    follow: Option<String>,
    /// When only the end of the log is shown: the log's size and how much is shown.
    cut: Option<(String, String)>,
    /// Cluster mode: the node the run ran on, from its log.
    node: Option<String>,
    content: String,
}

/// A run's log file, opened now: the file, its entry (the renamed one, when the run
/// ended since it was found) and its length.
pub(crate) async fn open_log(
    state: &AppState,
    owner: &LogOwner,
    counter: u64,
) -> Result<(std::fs::File, run_log::LogEntry, u64), WuiError> {
    let dir = owner.log_dir(state);
    let id = owner.id.clone();
    tokio::task::spawn_blocking(move || -> Result<_, WuiError> {
        let entry = run_log::find(&dir, &id, counter)?.ok_or(WuiError::LogNotFound)?;
        let (file, entry) = run_log::open(&entry)?;
        let len = file.metadata()?.len();
        Ok((file, entry, len))
    })
    .await?
}

/// What the log page shows of a log: its entry and length, where the shown part
/// starts, and the shown part.
struct Shown {
    entry: run_log::LogEntry,
    len: u64,
    from: u64,
    content: Vec<u8>,
}

/// `GET /karajo/app/{kind}/{id}/log/{counter}`: the log with ANSI colours (its last
/// [`PAGE_LOG_LIMIT`] bytes, with a note, when it is longer); a running log is
/// followed live by the page's script. The same page shows a monitor's check-in log
/// and a service's log segment.
pub(super) async fn log(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path((kind, id, counter)): Path<(String, String, u64)>,
) -> Result<Response, WuiError> {
    let owner = LogOwner::find(&state, &kind, &id)?;
    let (mut file, entry, len) = open_log(&state, &owner, counter).await?;
    let Shown {
        entry,
        len,
        from,
        content,
    } = tokio::task::spawn_blocking(move || -> std::io::Result<Shown> {
        let (from, content) = run_log::read_tail(&mut file, len, PAGE_LOG_LIMIT)?;
        Ok(Shown {
            entry,
            len,
            from,
            content,
        })
    })
    .await??;
    // The run's times come from its record in the snapshot, not from the file.
    let record = owner.record(&state, counter);
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
    let start = record.and_then(|r| r.started);
    let end = if running {
        Some(state.clock.now())
    } else {
        record.and_then(|r| r.ended).or(Some(entry.modified))
    };
    let took_secs = start
        .zip(end)
        .map(|(s, e)| e.duration_since(s).unsigned_abs());
    let took = took_secs.map(view::human_duration);
    let base = view::log_href(owner.kind, owner.id.as_str(), counter);
    let offset = from + shown as u64;
    html(&LogPage {
        chrome: Chrome::new(&state, Some(&viewer)),
        job_href: view::job_href(owner.kind, owner.id.as_str()),
        job_name: owner.name,
        counter,
        status: entry.status.as_str(),
        started: start.and_then(TimeView::new),
        duration: match (took, running) {
            (Some(t), true) => format!("{t} so far"),
            (Some(t), false) => t,
            (None, _) => "—".into(),
        },
        elapsed_secs: took_secs.filter(|_| running).map(|d| d.as_secs()),
        raw_href: format!("{base}/raw"),
        follow: running.then(|| format!("{base}/events?offset={offset}&from={from}")),
        cut: (from > 0).then(|| (human_size(len), human_size(len - from))),
        node: (from == 0)
            .then(|| crate::store::framing::node_of(&content))
            .flatten(),
        content: html_content,
    })
}

/// A size for people: `512 bytes`, `256 KiB`, `81.2 MiB`, `1.5 GiB`.
pub(super) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut size = bytes as f64 / 1024.0;
    let mut unit = 0;
    while size >= 1024.0 && unit + 1 < UNITS.len() {
        size /= 1024.0;
        unit += 1;
    }
    if size >= 100.0 || size.fract() < 0.05 {
        format!("{size:.0} {}", UNITS[unit])
    } else {
        format!("{size:.1} {}", UNITS[unit])
    }
}

/// `GET /karajo/app/{kind}/{id}/log/{counter}/raw`: the log file as a download,
/// streamed as it is when opened.
pub(super) async fn raw_log(
    State(state): State<AppState>,
    Path((kind, id, counter)): Path<(String, String, u64)>,
) -> Result<Response, WuiError> {
    use tokio::io::AsyncReadExt as _;
    let owner = LogOwner::find(&state, &kind, &id)?;
    let (file, entry, len) = open_log(&state, &owner, counter).await?;
    let name = format!("{}.{counter}.{}.log", owner.id, entry.status);
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    let reader = tokio::fs::File::from_std(file).take(len);
    let body = Body::from_stream(ReaderStream::with_capacity(reader, RAW_CHUNK));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CONTENT_LENGTH, HeaderValue::from(len)),
        ],
        body,
    )
        .into_response())
}

/// Bytes of a raw log read and sent at a time.
const RAW_CHUNK: usize = 64 * 1024;

/// `?id=&counter=` of the original's log pages.
#[derive(Debug, serde::Deserialize)]
pub(super) struct LegacyLogQuery {
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
pub(super) async fn legacy_log_exec(Query(query): Query<LegacyLogQuery>) -> Response {
    legacy(JobKind::Exec, &query)
}

/// `GET /karajo/job_http/log/?id=&counter=`: the original's log page URL.
pub(super) async fn legacy_log_http(Query(query): Query<LegacyLogQuery>) -> Response {
    legacy(JobKind::Http, &query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(256 * 1024), "256 KiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(81 * 1024 * 1024 + 200 * 1024), "81.2 MiB");
        assert_eq!(human_size(300 * 1024 * 1024), "300 MiB");
        assert_eq!(human_size(3 << 40), "3072 GiB");
    }
}
