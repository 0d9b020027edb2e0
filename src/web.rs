//! The web room: one axum application serving the original's API ([`api`]) and the web
//! UI's pages ([`pages`]), with the state every handler shares ([`AppState`]), the
//! access rules ([`access`]), the client address rules ([`peer`]) and the request body
//! budget ([`body`]). [`app`] builds the whole router; the daemon serves it and tests
//! drive it with `tower::ServiceExt::oneshot`.

pub mod access;
pub mod api;
pub mod body;
pub mod pages;
pub mod peer;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware;
use tower::ServiceExt as _;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;

use crate::auth::ReplayGuard;
use crate::auth::session::SessionStore;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::scheduler::SchedulerHandle;
use crate::store::Layout;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The scheduler.
    pub scheduler: SchedulerHandle,
    /// Paths under `dir_base`.
    pub layout: Layout,
    /// The source of "now".
    pub clock: SharedClock,
    /// The signatures already accepted (and those karajo sent).
    pub replay: Arc<ReplayGuard>,
    /// The bytes request bodies being read may hold together.
    pub bodies: body::BodyBudget,
    /// Counters for `/karajo/metrics`.
    pub metrics: Arc<Metrics>,
    /// Web UI sessions.
    pub sessions: Arc<SessionStore>,
    /// What the web UI keeps between requests.
    pub wui: pages::WuiState,
    /// The last rendering of the environment.
    pub env_cache: Arc<api::environment::EnvCache>,
    /// The event log; `None` serves no events.
    pub events: Option<crate::store::EventLog>,
    /// What service instances' processes use, between page views and scrapes.
    pub usage: Arc<crate::exec::group_usage::UsageMeter>,
    /// Cluster mode: this node's view of the cluster; `None` on a single node.
    pub cluster: Option<crate::cluster::status::ClusterInfo>,
}

impl AppState {
    /// The configuration in force now, as the scheduler last published it with its
    /// jobs. A handler that also looks up jobs reads both from one
    /// [`Snapshot`](crate::scheduler::Snapshot) instead.
    pub fn config(&self) -> Arc<Config> {
        self.scheduler.snapshot().config.clone()
    }
}

/// Builds the whole HTTP application. Paths under `/karajo/api/` match
/// case-insensitively and with or without a trailing slash, as the original's router.
pub fn app(
    state: AppState,
) -> impl tower::Service<
    Request,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    let body_limit = state.config().max_body_size;
    let router = Router::new()
        .merge(api::routes(state.clone()))
        .merge(pages::routes(state.clone()))
        // Handlers that read bodies themselves (web hooks, signed forms) use body.rs;
        // the extractors of the other routes (login and control forms) get little.
        .layer(DefaultBodyLimit::max(body::SMALL_BODY_LIMIT))
        // Refuses a declared Content-Length past the limit before reading any of it.
        .layer(RequestBodyLimitLayer::new(body_limit))
        // Outside the limits, so web hooks refused for their size are counted too.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            api::count_outcome,
        ))
        .layer(CompressionLayer::new().gzip(true))
        .with_state(state.clone());
    router.map_request(move |req| api::watchtower::mount(&state, normalize_api_path(req)))
}

/// Lower-cases API paths and drops a trailing slash, so `/KARAJO/API/JOB_EXEC/RUN/HELLO/`
/// reaches the same handler as `/karajo/api/job_exec/run/hello`.
fn normalize_api_path(mut req: Request) -> Request {
    let path = req.uri().path();
    let prefix = b"/karajo/api/";
    let is_api = path
        .as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix));
    if !is_api {
        return req;
    }
    let mut normal = path.to_ascii_lowercase();
    while normal.len() > 1 && normal.ends_with('/') {
        normal.pop();
    }
    if normal != path {
        let with_query = match req.uri().query() {
            Some(q) => format!("{normal}?{q}"),
            None => normal,
        };
        if let Ok(uri) = with_query.parse() {
            *req.uri_mut() = uri;
        }
    }
    req
}

#[cfg(test)]
mod tests;
