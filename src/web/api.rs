//! The original's API: thin axum adapters that check limits and signatures, call the
//! scheduler handle or the store, and answer with the original's JSON envelopes and
//! error objects (spec 4). One file per endpoint group; [`error::ApiError`] renders
//! every failure. Who may call them is decided in [`crate::web::access`].

mod cluster;
mod delivery;
pub mod environment;
mod error;
mod event;
mod job_exec;
mod job_http;
pub mod json;
pub mod monitor;
pub mod service;
pub(crate) mod watchtower;
mod webhook;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::{get, post};

pub use error::ApiError;
pub(crate) use job_exec::PARAM_FIELD;
pub(crate) use webhook::count_outcome;

use crate::web::{AppState, access};

/// The API's routes: the read endpoints behind [`access::require_reader`], the control
/// endpoints and web hooks (which check their own signatures).
pub fn routes(state: AppState) -> Router<AppState> {
    // Read endpoints: open without users, else a session or a signature (access.rs).
    let reads = Router::new()
        .route("/karajo/api/cluster", get(cluster::get))
        .route("/karajo/api/cluster/events", get(cluster::events))
        .route("/karajo/api/environment", get(environment::get_environment))
        .route("/karajo/api/job_exec/log", get(job_exec::log))
        .route("/karajo/api/job_http", get(job_http::get))
        .route("/karajo/api/job_http/log", get(job_http::log))
        .route("/karajo/api/monitor", get(monitor::get))
        .route("/karajo/api/monitor/log", get(monitor::log))
        .route("/karajo/api/service", get(service::get))
        .route("/karajo/api/service/log", get(service::log))
        .route("/karajo/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::require_reader,
        ));
    Router::new()
        .route("/karajo/api/job_exec/run/{*path}", post(webhook::run))
        .route("/karajo/api/job_exec/run", post(job_exec::run))
        .route("/karajo/api/job_exec/pause", post(job_exec::pause))
        .route("/karajo/api/job_exec/resume", post(job_exec::resume))
        .route("/karajo/api/job_exec/cancel", post(job_exec::cancel))
        .route("/karajo/api/job_http/pause", post(job_http::pause))
        .route("/karajo/api/job_http/resume", post(job_http::resume))
        .route(
            "/karajo/api/monitor/ping/{*rest}",
            get(monitor::ping).post(monitor::ping),
        )
        .route("/karajo/api/monitor/pause", post(monitor::pause))
        // Reading events needs read access; posting one is signed or carries a
        // monitor's token (the layer covers only the GET registered before it).
        .route(
            "/karajo/api/event",
            get(event::list)
                .route_layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    access::require_reader,
                ))
                .post(event::post),
        )
        .route("/karajo/api/monitor/resume", post(monitor::resume))
        // Service controls are signed forms (the global secret or the service's own);
        // pings carry an instance token (service.rs).
        .route("/karajo/api/service/enable", post(service::enable))
        .route("/karajo/api/service/disable", post(service::disable))
        .route("/karajo/api/service/restart", post(service::restart))
        .route("/karajo/api/service/run_once", post(service::run_once))
        .route("/karajo/api/service/signal", post(service::signal))
        .route(
            "/karajo/api/service/ping/{id}",
            get(service::ping).post(service::ping),
        )
        // watchTower's routes check their own password (watchtower.rs).
        .route(
            watchtower::ROUTE_BASE,
            post(watchtower::pulse)
                .delete(watchtower::cancel)
                .get(watchtower::list),
        )
        .route(
            "/karajo/api/watchtower/add-event",
            post(watchtower::add_event),
        )
        .route(
            "/karajo/api/watchtower/list-events",
            get(watchtower::list_events),
        )
        .merge(reads)
}

/// `GET /karajo/metrics`: the Prometheus text format.
async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    let snapshot = state.scheduler.snapshot();
    let now = state.clock.now();
    let (metrics, meter) = (state.metrics.clone(), state.usage.clone());
    let cluster = state.cluster.clone();
    let Ok(text) = tokio::task::spawn_blocking(move || {
        let targets: Vec<_> = snapshot
            .services
            .iter()
            .filter_map(|s| s.usage_target(now))
            .collect();
        let usage = meter.measure(&targets);
        let measured: Vec<_> = targets.iter().map(|t| t.service).zip(usage).collect();
        metrics.render(&snapshot, &measured, cluster.as_ref())
    })
    .await
    else {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
