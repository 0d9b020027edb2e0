//! Server-Sent Events for the live pages. `/karajo/events?job=<kind>/<id>` sends an
//! `update` event with a job page's live part as an HTML fragment when the page
//! connects and whenever the scheduler publishes a new snapshot, at most a few times a
//! second; `?job=monitor/<id>` does the same for a heartbeat monitor's page and
//! `?job=service/<id>` for a service's (whose instance history is read again with each
//! update). `/karajo/events?view=cards|list` does the same for the dashboard's live part
//! in that view, but after the first event it sends only what changed: a `patch` event,
//! `{"head":"<html>"|null,"items":[["<key>","<html>"],…]}`, with the counts line when
//! it changed and the entries (cards or rows, by `data-key`) that changed, and nothing
//! when nothing did; a whole `update` only when the set of entries changed (a reload).
//! With `&have=<token>` from its page, the first event is a `patch` from what the page
//! shows (see [`super::dashboard`]). The log stream tails a `.running` log
//! from an offset, polling its size every 200 ms, sends each batch of whole lines as
//! HTML (`append`), and ends with an `end` event carrying the final status. Streams
//! of a session stop when the session ends.
//!
//! At most `max_sse_streams` streams are open at once (each holds a permit of
//! [`super::WuiState`] until it ends or its client goes away); past that the answer is
//! `503`. Each stream sends a keep-alive comment at least every half `idle_timeout`,
//! so the server does not close a quiet stream as idle.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::Instant;

use super::dashboard::{DashView, Digest, Entries, Patch};
use super::monitor::{self, MonitorLiveFragment};
use super::screens::{LogOwner, PAGE_LOG_LIMIT, find_job, source};
use super::service::{self, ServiceLiveFragment};
use super::view::{self, JobLiveFragment, ViewSource};
use super::{AnsiHtml, Viewer, WuiError, parse_kind};
use crate::job::{JobId, JobKey, RunStatus};
use crate::scheduler::Snapshot;
use crate::store::{framing, run_log};
use crate::web::AppState;

/// The shortest time between two updates of one stream.
const THROTTLE: Duration = Duration::from_millis(300);
/// How often a followed log's size is looked at.
const POLL: Duration = Duration::from_millis(200);
/// The most a log stream reads in one go.
const CHUNK: u64 = 256 * 1024;
/// The longest time between two keep-alive comments (less when `idle_timeout` is short).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `?job=<kind>/<id>`, or `?view=cards|list[&have=<token>]`, of the snapshot stream.
#[derive(Debug, serde::Deserialize)]
pub(super) struct EventsQuery {
    #[serde(default)]
    job: String,
    #[serde(default)]
    view: String,
    #[serde(default)]
    have: String,
}

/// What a snapshot stream follows.
enum Follow {
    /// A job's page: its live part, whole, with every change.
    Job(JobKey),
    /// A monitor's page: its live part, whole, with every change.
    Monitor(JobId),
    /// A service's page: its live part, whole, with every change.
    Service(JobId),
    /// The dashboard in one view: the parts that changed since `shown`.
    Dashboard {
        view: DashView,
        /// What the other end shows: the page's rendering, then what was sent.
        shown: Option<Arc<Digest>>,
        /// An event was sent already (later ones are sent only for changes).
        greeted: bool,
    },
}

struct SnapshotStream {
    _slot: OwnedSemaphorePermit,
    state: AppState,
    viewer: Viewer,
    rx: watch::Receiver<Arc<Snapshot>>,
    follow: Follow,
    last: Option<Instant>,
}

impl SnapshotStream {
    /// The next update, or `None` when the stream should end.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(last) = self.last {
                self.rx.changed().await.ok()?;
                tokio::time::sleep_until(last + THROTTLE).await;
            }
            if let Some(session) = &self.viewer.session {
                let config = self.state.config();
                let now = self.state.clock.now();
                let valid = self.state.sessions.get(&session.key, now, |u| {
                    config.users.iter().any(|x| x.name == u)
                });
                valid?;
            }
            self.last = Some(Instant::now());
            let snapshot = self.rx.borrow_and_update().clone();
            let src = source(&self.state);
            let now = self.state.clock.now();
            match &mut self.follow {
                Follow::Job(key) => {
                    let key = key.clone();
                    let html = tokio::task::spawn_blocking(move || -> Option<String> {
                        let view = snapshot.job(key.kind, key.id.as_str())?;
                        askama::Template::render(&JobLiveFragment {
                            live: src.live(view, now),
                        })
                        .ok()
                    })
                    .await
                    .ok()??;
                    return Some(Event::default().event("update").data(html));
                }
                Follow::Monitor(id) => {
                    let id = id.clone();
                    let html = tokio::task::spawn_blocking(move || -> Option<String> {
                        let view = snapshot.monitor(id.as_str())?;
                        askama::Template::render(&MonitorLiveFragment {
                            live: monitor::live(view, now),
                        })
                        .ok()
                    })
                    .await
                    .ok()??;
                    return Some(Event::default().event("update").data(html));
                }
                Follow::Service(id) => {
                    let id = id.clone();
                    let layout = self.state.layout.clone();
                    let meter = self.state.usage.clone();
                    let html = tokio::task::spawn_blocking(move || -> Option<String> {
                        let view = snapshot.service(id.as_str())?;
                        let history = service::history_of(&layout, view);
                        let usage = service::measure(&meter, view, now);
                        askama::Template::render(&ServiceLiveFragment {
                            live: service::live(view, &history, usage, now),
                        })
                        .ok()
                    })
                    .await
                    .ok()??;
                    return Some(Event::default().event("update").data(html));
                }
                Follow::Dashboard {
                    view,
                    shown,
                    greeted,
                } => {
                    let view = *view;
                    let before = shown.clone();
                    let (event, digest) = tokio::task::spawn_blocking(move || {
                        dashboard_event(&src, &snapshot, now, view, before.as_deref())
                    })
                    .await
                    .ok()??;
                    *shown = Some(Arc::new(digest));
                    match event {
                        DashEvent::Patch(patch) if patch.empty && *greeted => continue,
                        DashEvent::Patch(patch) => {
                            *greeted = true;
                            return Some(Event::default().event("patch").data(patch.json));
                        }
                        DashEvent::Update(html) => {
                            *greeted = true;
                            return Some(Event::default().event("update").data(html));
                        }
                    }
                }
            }
        }
    }
}

/// A dashboard stream's next event.
enum DashEvent {
    /// The parts that changed (`patch`).
    Patch(Patch),
    /// The whole live part (`update`).
    Update(String),
}

/// The dashboard's event for the other end that shows `shown`, and what it shows after
/// it (blocking). `None` when a template fails.
fn dashboard_event(
    src: &ViewSource,
    snapshot: &Snapshot,
    now: jiff::Timestamp,
    view: DashView,
    shown: Option<&Digest>,
) -> Option<(DashEvent, Digest)> {
    let rendered = Entries::build(src, snapshot, now, view).render().ok()?;
    let event = match shown.and_then(|s| rendered.patch(s)) {
        Some(patch) => DashEvent::Patch(patch),
        None => DashEvent::Update(rendered.html().ok()?),
    };
    Some((event, rendered.digest()))
}

/// `GET /karajo/events[?job=<kind>/<id> | ?view=cards|list[&have=<token>]]`.
pub(super) async fn snapshots(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<EventsQuery>,
) -> Result<Response, WuiError> {
    let slot = stream_slot(&state)?;
    let follow = match query.job.split_once('/') {
        None if query.job.is_empty() => {
            let entries = Entries::count(&state.scheduler.snapshot());
            Follow::Dashboard {
                view: DashView::chosen(&query.view, entries),
                shown: state.wui.renders.take(&query.have),
                greeted: false,
            }
        }
        Some((kind, id)) if parse_kind(kind) == Some(crate::job::JobKind::Monitor) => {
            Follow::Monitor(monitor::find(&state, id)?.id().clone())
        }
        Some((kind, id)) if parse_kind(kind) == Some(crate::job::JobKind::Service) => {
            Follow::Service(service::find(&state, id)?.id().clone())
        }
        Some((kind, id)) => {
            let view = find_job(&state, kind, id)?;
            Follow::Job(JobKey {
                kind: view.def.kind(),
                id: view.id().clone(),
            })
        }
        None => return Err(WuiError::JobNotFound),
    };
    let rx = state.scheduler.subscribe();
    let keep_alive = keep_alive(&state);
    let stream = SnapshotStream {
        _slot: slot,
        state,
        viewer,
        rx,
        follow,
        last: None,
    };
    let events = stream::unfold(stream, |mut s| async move {
        let event = s.next().await?;
        Some((Ok::<_, Infallible>(event), s))
    });
    Ok(sse(events, keep_alive))
}

/// A permit for one more stream, or `503` when `max_sse_streams` are open.
fn stream_slot(state: &AppState) -> Result<OwnedSemaphorePermit, WuiError> {
    state
        .wui
        .sse_streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| WuiError::TooManyStreams)
}

/// The keep-alive interval: 15 s, or half `idle_timeout` when that is shorter.
fn keep_alive(state: &AppState) -> Duration {
    KEEP_ALIVE.min(state.config().idle_timeout / 2)
}

fn sse(
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
    keep_alive: Duration,
) -> Response {
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(keep_alive))
        .into_response()
}

/// `?offset=&from=` of the log stream: bytes of the log the page already shows, and
/// where the part it shows starts (its colours start there).
#[derive(Debug, serde::Deserialize)]
pub(super) struct TailQuery {
    #[serde(default)]
    offset: u64,
    #[serde(default)]
    from: Option<u64>,
}

struct Tail {
    _slot: OwnedSemaphorePermit,
    state: AppState,
    viewer: Viewer,
    dir: std::path::PathBuf,
    id: JobId,
    counter: u64,
    offset: u64,
    ansi: AnsiHtml,
    start: Option<jiff::Timestamp>,
    last_time: Option<jiff::Timestamp>,
    pending: VecDeque<Event>,
    done: bool,
}

/// What one look at the log found.
struct Look {
    bytes: Vec<u8>,
    status: RunStatus,
    /// The time of the last line's prefix in `bytes`.
    last_time: Option<jiff::Timestamp>,
}

impl Tail {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.done {
                return None;
            }
            if let Some(session) = &self.viewer.session {
                let config = self.state.config();
                let now = self.state.clock.now();
                self.state.sessions.get(&session.key, now, |u| {
                    config.users.iter().any(|x| x.name == u)
                })?;
            }
            let look = self.look().await?;
            self.last_time = look.last_time.or(self.last_time);
            if !look.bytes.is_empty() {
                self.offset += look.bytes.len() as u64;
                let html = self.ansi.convert(&look.bytes);
                self.pending
                    .push_back(Event::default().event("append").data(html));
            }
            if look.status != RunStatus::Running {
                let duration = self
                    .start
                    .zip(self.last_time)
                    .map(|(s, e)| view::human_duration(e.duration_since(s).unsigned_abs()));
                let end = serde_json::json!({
                    "status": look.status.as_str(),
                    "duration": duration,
                });
                self.pending
                    .push_back(Event::default().event("end").data(end.to_string()));
                self.done = true;
                continue;
            }
            if self.pending.is_empty() {
                tokio::time::sleep(POLL).await;
            }
        }
    }

    /// Reads what was added since `offset`: whole lines while the run goes, the rest
    /// once it ended. `None` when the log is gone.
    async fn look(&self) -> Option<Look> {
        let dir = self.dir.clone();
        let id = self.id.clone();
        let counter = self.counter;
        let offset = self.offset;
        tokio::task::spawn_blocking(move || -> std::io::Result<Option<Look>> {
            let Some(entry) = run_log::find(&dir, &id, counter)? else {
                return Ok(None);
            };
            let (mut file, entry) = run_log::open(&entry)?;
            let running = entry.status == RunStatus::Running;
            file.seek(SeekFrom::Start(offset))?;
            let mut bytes = Vec::new();
            file.take(CHUNK).read_to_end(&mut bytes)?;
            let complete = !running && (bytes.len() as u64) < CHUNK;
            if !complete {
                let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                bytes.truncate(whole);
            }
            let last_time = bytes
                .split(|&b| b == b'\n')
                .rev()
                .find_map(framing::prefix_time);
            Ok(Some(Look {
                bytes,
                // Not finished until everything was read.
                status: if complete {
                    entry.status
                } else {
                    RunStatus::Running
                },
                last_time,
            }))
        })
        .await
        .ok()?
        .ok()?
    }
}

/// `GET /karajo/app/{kind}/{id}/log/{counter}/events?offset=N`.
pub(super) async fn log_tail(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path((kind, id, counter)): Path<(String, String, u64)>,
    Query(query): Query<TailQuery>,
) -> Result<Response, WuiError> {
    let slot = stream_slot(&state)?;
    let owner = LogOwner::find(&state, &kind, &id)?;
    let (mut file, _, len) = super::screens::open_log(&state, &owner, counter).await?;
    // The colours in force at `offset` (replayed from where the page's part starts,
    // at most the page's limit back), and the run's start.
    let offset = query.offset.min(len);
    let start = owner.record(&state, counter).and_then(|r| r.started);
    let shown = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let shown = match query.from {
            Some(from) if from <= offset && offset - from <= PAGE_LOG_LIMIT + 1 => {
                file.seek(SeekFrom::Start(from))?;
                let mut shown = Vec::new();
                (&mut file).take(offset - from).read_to_end(&mut shown)?;
                shown
            }
            _ => run_log::read_tail(&mut file, offset, PAGE_LOG_LIMIT)?.1,
        };
        Ok(shown)
    })
    .await??;
    let mut ansi = AnsiHtml::new();
    let _ = ansi.convert(&shown);
    let keep_alive = keep_alive(&state);
    let tail = Tail {
        _slot: slot,
        dir: owner.log_dir(&state),
        id: owner.id.clone(),
        counter,
        offset,
        ansi,
        start,
        last_time: None,
        pending: VecDeque::new(),
        done: false,
        state,
        viewer,
    };
    let events = stream::unfold(tail, |mut t| async move {
        let event = t.next().await?;
        Some((Ok::<_, Infallible>(event), t))
    });
    Ok(sse(events, keep_alive))
}
