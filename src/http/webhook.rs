//! `POST /karajo/api/job_exec/run/<path>`: a signed web hook starts a command job.
//! Limit (the router's body limit) → verify the job's signature → replay rules →
//! scheduler → envelope. Nothing else happens here.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::json::{self, JobExecJson};
use super::{ApiError, AppState};
use crate::auth::{WebhookAuth, check_epoch, delivery_key, verify_webhook};
use crate::exec::WebhookRequest;
use crate::job::{JobKey, Trigger};
use crate::metrics::WebhookOutcome;
use crate::scheduler::TriggerError;

/// Verifies and queues a web hook run (spec 4.4 row 3, 5.1, 6.1).
pub(super) async fn run(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let live = state.live();
    let path = format!("/{}", path.trim_matches('/'));
    let Some(job) = live.job_by_path(&path) else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let auth = WebhookAuth {
        kind: job.auth_kind,
        header_sign: job.header_sign.clone(),
        secret: job.secret.as_bytes().to_vec(),
        sourcehut_public_key: job.sourcehut_public_key,
    };
    if let Err(err) = verify_webhook(&auth, &headers, &body) {
        tracing::warn!(job = %job.id, %err, "web hook refused");
        return Err(ApiError::forbidden());
    }
    let now = state.clock.now();
    if let Err(err) = check_epoch(&body, now, live.config.epoch_window) {
        tracing::warn!(job = %job.id, %err, "web hook refused");
        return Err(ApiError::forbidden_because(err.to_string()));
    }
    // Only a verified request may be remembered, so unsigned ones cannot poison it.
    if let Some(key) = delivery_key(job.auth_kind, &headers) {
        let key = format!("{}:{key}", job.id);
        if let Err(err) = state.replay.check_and_remember(&key, now) {
            tracing::warn!(job = %job.id, %err, "web hook refused");
            return Err(ApiError::replayed(err.to_string()));
        }
    }
    let request = Arc::new(WebhookRequest { headers, body });
    let accepted = state
        .scheduler
        .trigger(
            JobKey::exec(job.id.clone()),
            Trigger::Webhook,
            Some(request),
        )
        .await;
    match accepted {
        Ok(view) => Ok(json::data_ok(&JobExecJson::new(&view))),
        Err(TriggerError::Paused) => Err(ApiError::paused()),
        Err(TriggerError::Busy) => Err(ApiError::busy()),
        Err(TriggerError::NotFound(_)) => Ok(StatusCode::NOT_FOUND.into_response()),
        Err(TriggerError::ShuttingDown) => Err(ApiError::shutting_down()),
    }
}

/// Counts every web hook response by outcome, including those the body limits answer
/// before the handler runs; other requests pass uncounted.
pub(super) async fn count_outcome(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let is_webhook = request
        .uri()
        .path()
        .starts_with("/karajo/api/job_exec/run/");
    let response = next.run(request).await;
    if !is_webhook {
        return response;
    }
    state
        .metrics
        .webhook(WebhookOutcome::from_status(response.status().as_u16()));
    response
}
