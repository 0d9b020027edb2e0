//! The command job API of the original (spec 4.4 rows 4 to 7): pause, resume and
//! cancel, signed with the global secret over the raw body, and the log reader.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use bytes::Bytes;

use super::json::{self, JobExecJson, LogJson};
use super::{ApiError, AppState};
use crate::auth::{check_epoch, verify_global};
use crate::job::{JobId, JobKind};
use crate::store::run_log;

/// `POST /karajo/api/job_exec/pause`.
pub(super) async fn pause(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = signed_form_id(&state, &uri, &headers, &body)?;
    let view = state.scheduler.pause(JobId::from_raw(&id)).await;
    view.map(|v| json::data(&JobExecJson::new(&v)))
        .ok_or_else(|| ApiError::job_not_found(&id))
}

/// `POST /karajo/api/job_exec/resume`.
pub(super) async fn resume(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = signed_form_id(&state, &uri, &headers, &body)?;
    let view = state.scheduler.resume(JobId::from_raw(&id)).await;
    view.map(|v| json::data(&JobExecJson::new(&v)))
        .ok_or_else(|| ApiError::job_not_found(&id))
}

/// `POST /karajo/api/job_exec/cancel`.
pub(super) async fn cancel(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = signed_form_id(&state, &uri, &headers, &body)?;
    let view = state.scheduler.cancel(JobId::from_raw(&id)).await;
    view.map(|v| json::data(&JobExecJson::new(&v)))
        .ok_or_else(|| ApiError::job_not_found(&id))
}

/// Checks `X-Karajo-Sign` (global secret, raw body) and the body's epoch, then reads
/// `id` from the form: body values first, then the query string, as Go's `FormValue`.
fn signed_form_id(
    state: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, ApiError> {
    let live = state.live();
    let signature = headers.get("x-karajo-sign").and_then(|v| v.to_str().ok());
    verify_global(live.config.secret.as_bytes(), signature, body)
        .map_err(|_| ApiError::bad_signature())?;
    check_epoch(body, state.clock.now(), live.config.epoch_window)
        .map_err(|err| ApiError::stale_request(err.to_string()))?;
    let from_body = form_value(body, "id");
    let from_query = || form_value(uri.query().unwrap_or("").as_bytes(), "id");
    Ok(from_body.or_else(from_query).unwrap_or_default())
}

fn form_value(form: &[u8], key: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(form).ok()?;
    pairs.into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// The query of the log endpoint.
#[derive(Debug, serde::Deserialize)]
pub(super) struct LogQuery {
    #[serde(default)]
    id: String,
    #[serde(default)]
    counter: String,
}

/// `GET /karajo/api/job_exec/log?id=<id>&counter=<n>`: a whole log, running or not.
pub(super) async fn log(
    State(state): State<AppState>,
    Query(query): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let id = query.id.to_ascii_lowercase();
    let snapshot = state.scheduler.snapshot();
    let view = snapshot
        .job(&id)
        .ok_or_else(|| ApiError::log_job_not_found(&id))?;
    let counter: u64 = query
        .counter
        .parse()
        .map_err(|_| ApiError::log_not_found(&query.counter, false))?;
    let summary = view
        .logs
        .iter()
        .find(|l| l.counter == counter)
        .copied()
        .ok_or_else(|| ApiError::log_not_found(&query.counter, true))?;
    let dir = state.layout.log_dir(JobKind::Exec, &view.config.id);
    let job_id = view.config.id.clone();
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let Some(entry) = run_log::find(&dir, &job_id, counter)? else {
            return Ok(None);
        };
        Ok(Some((entry.status, run_log::read(&entry)?)))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let Some((status, content)) = read else {
        return Err(ApiError::log_not_found(&query.counter, true));
    };
    let summary = crate::scheduler::LogSummary { status, ..summary };
    #[derive(serde::Serialize)]
    struct Envelope {
        code: u16,
        data: LogJson,
    }
    let envelope = Envelope {
        code: 200,
        data: LogJson::new(&id, summary, &content),
    };
    Ok(json::response(
        axum::http::StatusCode::OK,
        json::to_string(&envelope),
    ))
}
