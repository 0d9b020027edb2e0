//! `POST /karajo/api/job_exec/run/<path>`: a signed web hook starts a command job.
//! The job and its signature headers are checked before the body is read; then the
//! body is read within the shared budget, the signature verified, spent in the replay
//! guard (stamped with `_karajo_epoch` for `hmac-sha256`; a GitHub delivery id or a
//! SourceHut nonce for those), and the run queued. A GitHub or SourceHut delivery then
//! meets the job's web hook rules (issue 15): one they ignore is answered `202` with
//! the reason and runs nothing; one that runs gets its `KARAJO_GIT_*` variables. An
//! `hmac-sha256` body may carry the run's parameters as a JSON object `params`.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::delivery;
use super::json::{self, ClusterPlace, JobExecJson};
use super::{ApiError, AppState};
use crate::auth::{
    SignatureId, WebhookAuth, github_delivery_id, github_delivery_keys, verify_webhook,
    webhook_headers_present,
};
use crate::config::hook_rules::Verdict;
use crate::exec::WebhookRequest;
use crate::job::{AuthKind, JobKey, Trigger};
use crate::metrics::WebhookOutcome;
use crate::scheduler::TriggerError;
use crate::web::body::refuse;

/// Verifies and queues a web hook run (spec 4.4 row 3, 5.1, 6.1).
pub(super) async fn run(
    State(state): State<AppState>,
    Path(path): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let path = format!("/{}", path.trim_matches('/'));
    // The job and the settings come from one snapshot of the scheduler, so a web hook
    // during a reload sees the old or the new configuration, never a mix of the two.
    let snapshot = state.scheduler.snapshot();
    let config = &snapshot.config;
    let Some((view, exec)) = snapshot.job_by_path(&path) else {
        let (parts, body) = request.into_parts();
        return Ok(refuse(&state.bodies, &parts.headers, body, StatusCode::NOT_FOUND).await);
    };
    let job = &view.def.common;
    let auth = WebhookAuth {
        kind: exec.auth_kind,
        header_sign: job.header_sign.clone(),
        secret: job.secret.as_bytes().to_vec(),
        sourcehut_public_key: exec.sourcehut_public_key,
    };
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    if let Err(err) = webhook_headers_present(&auth, &headers) {
        tracing::warn!(job = %JobKey::exec(job.id.clone()), %err, "web hook refused before reading its body");
        return Ok(refuse(&state.bodies, &headers, body, ApiError::forbidden()).await);
    }
    let body = crate::web::body::read(&state.bodies, &headers, body, config.max_body_size).await?;
    let id = match verify_webhook(&auth, &headers, &body.bytes) {
        Ok(id) => id,
        Err(err) => {
            tracing::warn!(job = %JobKey::exec(job.id.clone()), %err, "web hook refused");
            return Err(ApiError::forbidden());
        }
    };
    if let Err(err) = spend(&state, config, exec.auth_kind, id, &headers, &body.bytes) {
        tracing::warn!(job = %JobKey::exec(job.id.clone()), %err, "web hook refused");
        return Err(if err.is_reuse() {
            ApiError::replayed(err.to_string())
        } else {
            ApiError::forbidden_because(err.to_string())
        });
    }
    // Signed and spent: only now does the body's content count.
    let env = match delivery::read(exec.auth_kind, &headers, &body.bytes) {
        Some(delivery) => {
            let verdict = exec.hook_rules.judge(exec.auth_kind.as_str(), &delivery);
            if let Verdict::Ignore(reason) = &verdict {
                tracing::info!(job = %JobKey::exec(job.id.clone()), %reason, "web hook delivery ignored by the job's rules");
                return Ok(delivery::ignored(&delivery, reason));
            }
            delivery::git_env(&delivery, delivery::chosen(&verdict))
        }
        None => body_params(&body.bytes)
            .and_then(|given| exec.params.resolve(&given).map_err(|e| e.to_string()))
            .map_err(params_refused)?,
    };
    let request = Arc::new(WebhookRequest {
        headers,
        body: body.bytes.clone(),
    });
    let accepted = state
        .scheduler
        .trigger_with_env(
            JobKey::exec(job.id.clone()),
            Trigger::Webhook,
            Some(request),
            env,
        )
        .await;
    run_answer(&state, accepted, || StatusCode::NOT_FOUND.into_response())
}

/// The answer to a run asked for: the job as it was when the run was accepted (the
/// original's envelope), or why not; `gone` answers a job removed meanwhile.
pub(super) fn run_answer(
    state: &AppState,
    accepted: Result<Arc<crate::scheduler::JobView>, TriggerError>,
    gone: impl FnOnce() -> Response,
) -> Result<Response, ApiError> {
    match accepted {
        Ok(view) => {
            let place = ClusterPlace::of(state.cluster.as_ref(), &view);
            Ok(json::data_ok(
                &JobExecJson::new(&view).map(|job| job.placed(place)),
            ))
        }
        Err(TriggerError::Paused) => Err(ApiError::paused()),
        Err(TriggerError::Busy) => Err(ApiError::busy()),
        Err(TriggerError::NotFound(_)) => Ok(gone()),
        Err(TriggerError::ShuttingDown) => Err(ApiError::shutting_down()),
        Err(TriggerError::ClusterUnavailable(why)) => Err(ApiError::cluster_unavailable(why)),
    }
}

/// The parameters of a signed body: its JSON object `params` of strings; none when
/// the body is not a JSON object or has no `params`.
pub(super) fn body_params(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return Ok(Vec::new());
    };
    json_params(map.get("params"))
}

/// A JSON `params` value: an object whose values are strings.
pub(super) fn json_params(
    params: Option<&serde_json::Value>,
) -> Result<Vec<(String, String)>, String> {
    let Some(params) = params.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let serde_json::Value::Object(params) = params else {
        return Err("params must be a JSON object of strings".to_string());
    };
    params
        .iter()
        .map(|(name, value)| match value {
            serde_json::Value::String(value) => Ok((name.clone(), value.clone())),
            _ => Err(format!("parameter {name}: the value must be a JSON string")),
        })
        .collect()
}

/// The `400` of refused parameters.
pub(super) fn params_refused(why: String) -> ApiError {
    ApiError::with(StatusCode::BAD_REQUEST, "ERR_PARAMS", why)
}

/// Spends a verified delivery's signature: stamped for `hmac-sha256`, by delivery for
/// GitHub (its id and body too) and SourceHut (the signature covers the nonce).
fn spend(
    state: &AppState,
    config: &crate::config::Config,
    kind: AuthKind,
    id: SignatureId,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<(), crate::auth::ReplayError> {
    let now = state.clock.now();
    let rules = config.stamp_rules();
    match kind {
        AuthKind::HmacSha256 => state.replay.accept_signed(id, body, &rules, now),
        AuthKind::Github => {
            let delivery =
                github_delivery_id(headers).ok_or(crate::auth::ReplayError::MissingDeliveryId)?;
            // A stamp, when a sender adds one, must be fresh all the same.
            crate::auth::stamp(body, now, &rules)?;
            state
                .replay
                .accept_delivery(id, &github_delivery_keys(delivery, body), now)
        }
        AuthKind::Sourcehut => {
            crate::auth::stamp(body, now, &rules)?;
            state.replay.accept_delivery(id, &[], now)
        }
    }
}

/// Counts every web hook response by outcome, including those the body limits answer
/// before the handler runs; other requests pass uncounted.
pub(crate) async fn count_outcome(
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
