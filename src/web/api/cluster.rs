//! `GET /karajo/api/cluster` (cluster spec 12.2): this node's link to the cluster and
//! every node it knows; `GET /karajo/api/cluster/events?limit=N`: the cluster's newest
//! events of the last day. They exist in cluster mode only; a single node answers 404.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{ApiError, json};
use crate::web::AppState;

/// `GET /karajo/api/cluster`.
pub(super) async fn get(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(json::data(&cluster_info(&state)?.status()))
}

/// How many events a request gets without `limit`, and at most.
const EVENTS_DEFAULT: usize = 100;
const EVENTS_MAX: usize = 1000;

/// The query of the events endpoint.
#[derive(Debug, serde::Deserialize)]
pub(super) struct EventsQuery {
    limit: Option<usize>,
}

/// `GET /karajo/api/cluster/events?limit=N` (default 100, at most 1000).
pub(super) async fn events(
    State(state): State<AppState>,
    Query(query): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let info = cluster_info(&state)?;
    let limit = query.limit.unwrap_or(EVENTS_DEFAULT).clamp(1, EVENTS_MAX);
    let events = info.coordinator.recent_events(limit).await.map_err(|err| {
        ApiError::with(
            StatusCode::SERVICE_UNAVAILABLE,
            "ERR_CLUSTER_UNAVAILABLE",
            err.to_string(),
        )
    })?;
    Ok(json::data(&events))
}

fn cluster_info(state: &AppState) -> Result<&crate::cluster::status::ClusterInfo, ApiError> {
    state.cluster.as_ref().ok_or_else(|| {
        ApiError::with(
            StatusCode::NOT_FOUND,
            "ERR_CLUSTER_DISABLED",
            "cluster mode is off on this node ([cluster] enabled = false)",
        )
    })
}
