//! `GET /karajo/api/cluster` (cluster spec 12.2): this node's link to the cluster and
//! every node it knows. It exists in cluster mode only; a single node answers 404.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::{ApiError, json};
use crate::web::AppState;

/// `GET /karajo/api/cluster`.
pub(super) async fn get(State(state): State<AppState>) -> Result<Response, ApiError> {
    let info = state.cluster.as_ref().ok_or_else(|| {
        ApiError::with(
            StatusCode::NOT_FOUND,
            "ERR_CLUSTER_DISABLED",
            "cluster mode is off on this node ([cluster] enabled = false)",
        )
    })?;
    Ok(json::data(&info.status()))
}
