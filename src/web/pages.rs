//! The web UI under `/karajo/`: server-rendered pages (askama templates and static
//! assets from the top-level `wui/` folder, embedded in the binary) for logging in,
//! the live dashboard (cards or a list, see `dashboard.rs`), a job's page with its
//! controls, a heartbeat monitor's page (`monitor.rs`), a supervised service's page
//! (`service.rs`), live run logs, the event log's page (`event_log.rs`) and, in
//! cluster mode, the nodes page with the cluster banners (`cluster.rs`), plus
//! `dir_public` served at `/`. It reads the
//! scheduler's snapshots and the run logs and calls the scheduler handle; it owns no
//! job state. Sessions and users are in [`crate::auth`]; who may read is decided in
//! [`crate::web::access`].
//!
//! Access: with no users in `user.conf` every page is open and the controls ask for
//! the global secret; with users, pages need a session (else they redirect to the
//! login page), live streams and raw logs answer `401`, and the controls check the
//! session's CSRF token.
//!
//! Every page, error pages included, is titled with the configured `name`.

mod ansi;
mod assets;
mod chart;
mod cluster;
mod controls;
mod dashboard;
mod event_log;
mod events;
mod login;
mod monitor;
mod public;
mod screens;
mod service;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tokio::sync::Semaphore;

use crate::auth::session::SessionInfo;
use crate::auth::throttle::LoginThrottle;
use crate::job::JobKind;
use crate::web::AppState;
use crate::web::access;

pub use ansi::AnsiHtml;

/// Password checks (bcrypt) running at once; more logins wait (at most one per client
/// and per user name, see [`crate::auth::throttle`]).
const LOGIN_CHECKS: usize = 2;

/// The Content-Security-Policy of every page: nothing from elsewhere, no inline
/// scripts; inline `style` attributes only for 256-colour log spans.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the web UI keeps between requests.
#[derive(Debug, Clone)]
pub struct WuiState {
    /// Limits concurrent bcrypt checks.
    login_checks: Arc<Semaphore>,
    /// Failed logins and the checks in flight, by client and by user name.
    login_throttle: Arc<LoginThrottle>,
    /// The key of the login form's CSRF tokens, made at each start.
    login_key: Arc<str>,
    /// One permit per live stream (SSE) open now; `max_sse_streams` in all.
    sse_streams: Arc<Semaphore>,
    /// What the last dashboard pages showed, for their live streams.
    renders: Arc<dashboard::RenderCache>,
}

impl WuiState {
    /// A state that allows `max_sse_streams` live streams at once.
    pub fn new(max_sse_streams: usize) -> Self {
        Self {
            login_checks: Arc::new(Semaphore::new(LOGIN_CHECKS)),
            login_throttle: Arc::new(LoginThrottle::default()),
            login_key: crate::auth::session::random_key().into(),
            sse_streams: Arc::new(Semaphore::new(max_sse_streams)),
            renders: Arc::default(),
        }
    }
}

impl Default for WuiState {
    /// [`crate::config::model::DEFAULT_MAX_SSE_STREAMS`] live streams.
    fn default() -> Self {
        Self::new(crate::config::model::DEFAULT_MAX_SSE_STREAMS)
    }
}

/// Who is looking at a page: a session's user, or anyone when there are no users.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    /// The session, when users exist.
    pub session: Option<SessionInfo>,
}

/// The parts every page's frame shows.
#[derive(Debug, Clone)]
pub(crate) struct Chrome {
    /// The configured `name`.
    pub site: String,
    /// The logged-in user.
    pub user: Option<String>,
    /// The session's CSRF token (empty without a session).
    pub csrf: String,
    /// karajo's version.
    pub version: &'static str,
    /// The assets' fingerprint, for cache busting.
    pub assets: &'static str,
    /// Cluster mode: the navigation's link to the nodes page, and the banners; `None`
    /// on a single node, whose pages show nothing of it.
    pub cluster: Option<cluster::ClusterChrome>,
}

impl Chrome {
    /// The frame of a page for `viewer`; `None` for a page anyone may see (the login
    /// page), which shows no cluster banner.
    pub(crate) fn new(state: &AppState, viewer: Option<&Viewer>) -> Self {
        let session = viewer.and_then(|v| v.session.as_ref());
        Self {
            site: state.config().name.clone(),
            user: session.map(|s| s.user.clone()),
            csrf: session.map(|s| s.csrf.clone()).unwrap_or_default(),
            version: crate::VERSION,
            assets: assets::fingerprint(),
            cluster: state.cluster.as_ref().map(|info| match viewer {
                Some(_) => cluster::ClusterChrome::of(info),
                None => cluster::ClusterChrome::link_only(),
            }),
        }
    }
}

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum WuiError {
    /// No job of this kind and id.
    #[error("There is no such job.")]
    JobNotFound,
    /// No heartbeat monitor of this id.
    #[error("There is no such monitor.")]
    MonitorNotFound,
    /// No supervised service of this id.
    #[error("There is no such service.")]
    ServiceNotFound,
    /// No log of this run.
    #[error("There is no log of this run; it may have been deleted by log_retention.")]
    LogNotFound,
    /// A control or logout form without this session's token.
    #[error("The form's security token is missing or out of date. Reload the page and try again.")]
    Csrf,
    /// The secret typed into a control form is wrong.
    #[error("Wrong secret.")]
    WrongSecret,
    /// A control without a session while users exist.
    #[error("Log in first.")]
    NotLoggedIn,
    /// An unknown control action.
    #[error("Unknown action.")]
    BadAction,
    /// Run now with parameters the job refuses.
    #[error("Not started: {0}.")]
    Params(String),
    /// The daemon is stopping.
    #[error("karajo is shutting down.")]
    ShuttingDown,
    /// The nodes page of a karajo that is not in cluster mode.
    #[error("Cluster mode is off: this karajo runs on its own, with no other nodes to show.")]
    ClusterOff,
    /// A cluster job, and this node cannot reach the cluster now.
    #[error("{0} Try again once this node is connected.")]
    ClusterUnavailable(String),
    /// As many live streams as `max_sse_streams` allows are open.
    #[error(
        "Too many live views are open (max_sse_streams). Close other karajo pages or try again later."
    )]
    TooManyStreams,
    /// A template failed to render.
    #[error("template: {0}")]
    Template(#[from] askama::Error),
    /// Reading a log failed.
    #[error("reading the log: {0}")]
    Io(#[from] std::io::Error),
    /// A blocking task failed.
    #[error("background task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl WuiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::JobNotFound
            | Self::MonitorNotFound
            | Self::ServiceNotFound
            | Self::LogNotFound
            | Self::ClusterOff => StatusCode::NOT_FOUND,
            Self::Csrf | Self::WrongSecret | Self::NotLoggedIn => StatusCode::FORBIDDEN,
            Self::BadAction | Self::Params(_) => StatusCode::BAD_REQUEST,
            Self::ShuttingDown | Self::TooManyStreams | Self::ClusterUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Template(_) | Self::Io(_) | Self::Task(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The error page.
#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    title: &'static str,
    message: String,
    back: &'static str,
}

/// What an error page says, kept in its response's extensions so that
/// [`name_error_pages`] can render it again with the configured `name`.
#[derive(Debug, Clone)]
struct ErrorInfo {
    title: &'static str,
    message: String,
}

impl ErrorInfo {
    /// The page for a site called `site`; in cluster mode (`cluster_mode`) its
    /// navigation links the nodes page (no banner: the page does not know its viewer).
    fn render(&self, site: String, cluster_mode: bool) -> String {
        let page = ErrorPage {
            chrome: Chrome {
                site,
                user: None,
                csrf: String::new(),
                version: crate::VERSION,
                assets: assets::fingerprint(),
                cluster: cluster_mode.then(cluster::ClusterChrome::link_only),
            },
            title: self.title,
            message: self.message.clone(),
            back: "/karajo/app/",
        };
        askama::Template::render(&page).unwrap_or_else(|_| "error".into())
    }
}

impl IntoResponse for WuiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(err = %self, "web UI error");
            "Something went wrong; the server's log has the details.".to_string()
        } else {
            if status.is_server_error() {
                tracing::warn!(err = %self, "web UI request refused");
            }
            self.to_string()
        };
        let info = ErrorInfo {
            title: status.canonical_reason().unwrap_or("Error"),
            message,
        };
        // The configured name is not known here; `name_error_pages` puts it in.
        let body = info.render("karajo".into(), false);
        let mut res = (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response();
        res.extensions_mut().insert(info);
        res
    }
}

/// Renders error pages again with the configured `name` in their title and heading.
async fn name_error_pages(State(state): State<AppState>, mut res: Response) -> Response {
    if let Some(info) = res.extensions_mut().remove::<ErrorInfo>() {
        let body = info.render(state.config().name.clone(), state.cluster.is_some());
        let (mut parts, _) = res.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, axum::body::Body::from(body));
    }
    res
}

/// Renders a template as an HTML response.
pub(crate) fn html(template: &impl askama::Template) -> Result<Response, WuiError> {
    let body = template.render()?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response())
}

/// `job` → command jobs, `job_http` → HTTP jobs.
pub(crate) fn parse_kind(word: &str) -> Option<JobKind> {
    JobKind::parse(word)
}

/// The web UI's routes.
pub fn routes(state: AppState) -> Router<AppState> {
    // Pages: a session or no users, else to the login page.
    let pages = Router::new()
        .route("/karajo/app", get(screens::dashboard))
        .route("/karajo/app/", get(screens::dashboard))
        .route(event_log::PATH, get(event_log::page))
        .route(cluster::PATH, get(cluster::page))
        .route("/karajo/app/{kind}/{id}", get(screens::job))
        .route("/karajo/app/{kind}/{id}/log/{counter}", get(screens::log))
        .route_layer(middleware::from_fn_with_state(state.clone(), page_gate));
    // Streams and downloads: a session or no users, else 401.
    let live = Router::new()
        .route("/karajo/events", get(events::snapshots))
        .route(
            "/karajo/app/{kind}/{id}/log/{counter}/events",
            get(events::log_tail),
        )
        .route(
            "/karajo/app/{kind}/{id}/log/{counter}/raw",
            get(screens::raw_log),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), live_gate));
    let open = Router::new()
        .route("/karajo", get(screens::entry))
        .route("/karajo/", get(screens::entry))
        .route("/karajo/index.html", get(screens::entry))
        .route("/karajo/login", get(login::page).post(login::submit))
        .route("/karajo/logout", post(login::logout))
        .route("/karajo/api/auth/login", post(login::api))
        .route("/karajo/app/{kind}/{id}/control", post(controls::control))
        .route("/karajo/job_exec/log", get(screens::legacy_log_exec))
        .route("/karajo/job_exec/log/", get(screens::legacy_log_exec))
        .route("/karajo/job_http/log", get(screens::legacy_log_http))
        .route("/karajo/job_http/log/", get(screens::legacy_log_http));
    let pages = pages
        .merge(live)
        .merge(open)
        .layer(middleware::map_response_with_state(
            state.clone(),
            name_error_pages,
        ))
        .layer(middleware::map_response(page_headers));
    Router::new()
        .route("/karajo/static/{file}", get(assets::serve))
        .merge(pages)
        .fallback(public::serve)
}

/// The viewer of a request, or `None` when users exist and it has no session.
fn viewer(state: &AppState, headers: &axum::http::HeaderMap) -> Option<Viewer> {
    if !access::users_exist(state) {
        return Some(Viewer { session: None });
    }
    access::session(state, headers).map(|s| Viewer { session: Some(s) })
}

async fn page_gate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match viewer(&state, req.headers()) {
        Some(v) => {
            req.extensions_mut().insert(v);
            next.run(req).await
        }
        None => {
            let target = req
                .uri()
                .path_and_query()
                .map_or("/karajo/app/", |p| p.as_str());
            let query = serde_urlencoded::to_string([("next", target)]).unwrap_or_default();
            Redirect::to(&format!("/karajo/login?{query}")).into_response()
        }
    }
}

async fn live_gate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match viewer(&state, req.headers()) {
        Some(v) => {
            req.extensions_mut().insert(v);
            next.run(req).await
        }
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Unauthorized",
        )
            .into_response(),
    }
}

/// Headers of every page: never cached (they carry CSRF tokens and live data), and
/// the browser's protections on.
async fn page_headers(mut res: Response) -> Response {
    let headers = res.headers_mut();
    let set = [
        (header::CACHE_CONTROL, "no-store"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in set {
        if !headers.contains_key(&name) || name == header::CACHE_CONTROL {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    res
}
