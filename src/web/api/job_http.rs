//! The HTTP job API of the original (spec 4.4 rows 8 to 11): the job, its logs, and
//! pause and resume signed with the global secret over the raw query string.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;

use super::job_exec::{LogQuery, form_value, serve_log};
use super::json::{self, ClusterPlace, JobHttpJson};
use super::{ApiError, AppState, access};
use crate::job::{JobId, JobKey, JobKind};

/// The query of `GET /karajo/api/job_http`.
#[derive(Debug, serde::Deserialize)]
pub(super) struct IdQuery {
    #[serde(default)]
    id: String,
}

/// `GET /karajo/api/job_http?id=<id>`: one HTTP job (the id is exact).
pub(super) async fn get(
    State(state): State<AppState>,
    Query(query): Query<IdQuery>,
) -> Result<Response, ApiError> {
    let snapshot = state.scheduler.snapshot();
    snapshot
        .job(JobKind::Http, &query.id)
        .and_then(|view| {
            let place = ClusterPlace::of(state.cluster.as_ref(), view);
            JobHttpJson::new(view).map(|job| json::data(&job.placed(place)))
        })
        .ok_or_else(|| ApiError::invalid_job_id(snapshot.unknown_job(JobKind::Http, &query.id)))
}

/// `GET /karajo/api/job_http/log?id=<id>&counter=<n>`.
pub(super) async fn log(
    State(state): State<AppState>,
    Query(query): Query<LogQuery>,
) -> Result<Response, ApiError> {
    serve_log(&state, JobKind::Http, query).await
}

/// `POST /karajo/api/job_http/pause?id=<id>`.
pub(super) async fn pause(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = signed_query_job(&state, &uri, &headers)?;
    let view = state
        .scheduler
        .control(key.clone(), crate::scheduler::JobControl::Pause)
        .await;
    reply(&state, view, &key)
}

/// `POST /karajo/api/job_http/resume?id=<id>`.
pub(super) async fn resume(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = signed_query_job(&state, &uri, &headers)?;
    let view = state
        .scheduler
        .control(key.clone(), crate::scheduler::JobControl::Resume)
        .await;
    reply(&state, view, &key)
}

fn reply(
    state: &AppState,
    view: Result<Option<std::sync::Arc<crate::scheduler::JobView>>, crate::scheduler::TriggerError>,
    key: &JobKey,
) -> Result<Response, ApiError> {
    super::job_exec::control_outcome(view)?
        .as_deref()
        .and_then(|view| {
            let place = ClusterPlace::of(state.cluster.as_ref(), view);
            JobHttpJson::new(view).map(|job| json::data(&job.placed(place)))
        })
        .ok_or_else(|| {
            let message = state
                .scheduler
                .snapshot()
                .unknown_job(key.kind, key.id.as_str());
            ApiError::invalid_job_id(message)
        })
}

/// Accepts the raw query string signed exactly as sent, then reads `id` from it.
fn signed_query_job(state: &AppState, uri: &Uri, headers: &HeaderMap) -> Result<JobKey, ApiError> {
    let query = uri.query().unwrap_or("");
    access::accept_global_signature(state, headers, query.as_bytes())
        .map_err(|refusal| ApiError::refused_signature(&refusal))?;
    let id = form_value(query.as_bytes(), "id").unwrap_or_default();
    Ok(JobKey::http(JobId::from_raw(id)))
}
