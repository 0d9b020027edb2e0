//! The command job API of the original (spec 4.4 rows 4 to 7): pause, resume and
//! cancel, signed with the global secret over the raw body (each signature good for one
//! request), and the log reader, which the HTTP job API shares. Also run by id with
//! parameters (issue 15), signed the same way.

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;

use super::json::{self, ClusterPlace, JobExecJson, LogJson};
use super::{ApiError, AppState, access};
use crate::job::{JobId, JobKey, JobKind};
use crate::scheduler::{JobControl, JobView, LogSummary, TriggerError};
use crate::store::run_log;
use crate::web::access::SignRefusal;
use crate::web::body::SMALL_BODY_LIMIT;

/// `POST /karajo/api/job_exec/run`: runs a command job now (trigger `api`), signed
/// with the global secret like pause. The body is a form (`id=ID&param.NAME=VALUE`) or
/// a JSON object (`{"id":"ID","params":{"NAME":"VALUE"}}`), stamped with
/// `_karajo_epoch`. Parameters the job does not declare, required ones left out and bad
/// values are refused with `400` naming them.
pub(super) async fn run(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, Response> {
    let body = signed_form(&state, request).await?;
    let (id, given) = run_request(&body).map_err(super::webhook::params_refused)?;
    let id = id.to_ascii_lowercase();
    let snapshot = state.scheduler.snapshot();
    let spec = snapshot
        .job(JobKind::Exec, &id)
        .and_then(|view| match &view.def.kind {
            crate::scheduler::JobDefKind::Exec { spec, .. } => Some(spec.clone()),
            crate::scheduler::JobDefKind::Http { .. } => None,
        })
        .ok_or_else(|| ApiError::job_not_found(snapshot.unknown_job(JobKind::Exec, &id)))?;
    let env = spec
        .params
        .resolve(&given)
        .map_err(|e| super::webhook::params_refused(e.to_string()))?;
    let key = JobKey::exec(JobId::from_raw(id));
    let key_id = key.id.clone();
    let accepted = state
        .scheduler
        .trigger_with_env(key, crate::job::Trigger::Api, None, env)
        .await;
    Ok(super::webhook::run_answer(&state, accepted, || {
        Response::from(ApiError::job_not_found(
            snapshot.unknown_job(JobKind::Exec, key_id.as_str()),
        ))
    })?)
}

/// The job id and the parameters of a run request's body (see [`run`]).
fn run_request(body: &[u8]) -> Result<(String, Vec<(String, String)>), String> {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) {
        let id = map
            .get("id")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string();
        return Ok((id, super::webhook::json_params(map.get("params"))?));
    }
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|e| format!("the body is not a form: {e}"))?;
    let id = pairs
        .iter()
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let params = pairs
        .into_iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(PARAM_FIELD)
                .map(|name| (name.to_string(), v))
        })
        .collect();
    Ok((id, params))
}

/// The prefix of a parameter's field in a form: `param.ENV=prod`.
pub(crate) const PARAM_FIELD: &str = "param.";

/// `POST /karajo/api/job_exec/pause`.
pub(super) async fn pause(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, Response> {
    let key = signed_form_job(&state, request).await?;
    let view = state
        .scheduler
        .control(key.clone(), JobControl::Pause)
        .await;
    Ok(reply(&state, view, &key)?)
}

/// `POST /karajo/api/job_exec/resume`.
pub(super) async fn resume(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, Response> {
    let key = signed_form_job(&state, request).await?;
    let view = state
        .scheduler
        .control(key.clone(), JobControl::Resume)
        .await;
    Ok(reply(&state, view, &key)?)
}

/// `POST /karajo/api/job_exec/cancel`.
pub(super) async fn cancel(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, Response> {
    let key = signed_form_job(&state, request).await?;
    let view = state
        .scheduler
        .control(key.clone(), JobControl::Cancel)
        .await;
    Ok(reply(&state, view, &key)?)
}

/// A pause, resume or cancel's outcome: the job (`None`: no such job), or the 503 of a
/// cluster job this node cannot reach the cluster for.
pub(super) fn control_outcome(
    view: Result<Option<std::sync::Arc<JobView>>, TriggerError>,
) -> Result<Option<std::sync::Arc<JobView>>, ApiError> {
    match view {
        Ok(view) => Ok(view),
        Err(TriggerError::ClusterUnavailable(why)) => Err(ApiError::cluster_unavailable(why)),
        Err(_) => Err(ApiError::shutting_down()),
    }
}

fn reply(
    state: &AppState,
    view: Result<Option<std::sync::Arc<JobView>>, TriggerError>,
    key: &JobKey,
) -> Result<Response, ApiError> {
    control_outcome(view)?
        .as_deref()
        .and_then(|view| {
            let place = ClusterPlace::of(state.cluster.as_ref(), view);
            JobExecJson::new(view).map(|job| json::data(&job.placed(place)))
        })
        .ok_or_else(|| {
            let message = state
                .scheduler
                .snapshot()
                .unknown_job(key.kind, key.id.as_str());
            ApiError::job_not_found(message)
        })
}

/// Accepts a form body signed with the global secret (refused before reading when it
/// has no signature header) and reads `id` from it: only the signed bytes count, never
/// the query string.
async fn signed_form_job(state: &AppState, request: Request) -> Result<JobKey, Response> {
    let form = signed_form(state, request).await?;
    let id = form_value(&form, "id").unwrap_or_default();
    Ok(JobKey::exec(JobId::from_raw(id)))
}

/// Reads a small form body signed with the global secret, stamped and spent; refuses
/// a request without `X-Karajo-Sign` before reading its body.
pub(super) async fn signed_form(
    state: &AppState,
    request: Request,
) -> Result<bytes::Bytes, Response> {
    signed_form_or_delegate(state, request, |_| None).await
}

/// As [`signed_form`], but a signature made with the secret `delegate` finds for the
/// form (a service's own `secret`: delegated control, monitors spec B.2) is accepted
/// as well. The global secret is tried first; the stamp and the replay guard apply
/// to either signature the same way.
pub(super) async fn signed_form_or_delegate(
    state: &AppState,
    request: Request,
    delegate: impl FnOnce(&[u8]) -> Option<String>,
) -> Result<bytes::Bytes, Response> {
    let (parts, body) = request.into_parts();
    if !access::has_signature(&parts.headers) {
        let refusal = ApiError::bad_signature();
        return Err(crate::web::body::refuse(&state.bodies, &parts.headers, body, refusal).await);
    }
    let body =
        crate::web::body::read(&state.bodies, &parts.headers, body, SMALL_BODY_LIMIT).await?;
    let accepted = match access::accept_global_signature(state, &parts.headers, &body.bytes) {
        Err(SignRefusal::Signature(global)) => match delegate(&body.bytes) {
            Some(secret) if !secret.is_empty() => {
                accept_delegated_signature(state, &parts.headers, &body.bytes, &secret).map_err(
                    |refusal| match refusal {
                        SignRefusal::Signature(_) => SignRefusal::Signature(global),
                        stamp => stamp,
                    },
                )
            }
            _ => Err(SignRefusal::Signature(global)),
        },
        other => other,
    };
    accepted.map_err(|refusal| ApiError::refused_signature(&refusal))?;
    Ok(body.bytes)
}

/// [`access::accept_global_signature`] with another secret: the signature must
/// verify with `secret`, then its stamp is checked and it is spent.
fn accept_delegated_signature(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    signed: &[u8],
    secret: &str,
) -> Result<(), SignRefusal> {
    let signature = headers
        .get(crate::auth::HEADER_KARAJO_SIGN)
        .and_then(|v| v.to_str().ok());
    let id = crate::auth::verify_global(secret.as_bytes(), signature, signed)
        .map_err(SignRefusal::Signature)?;
    state
        .replay
        .accept_signed(id, signed, &state.config().stamp_rules(), state.clock.now())
        .map_err(SignRefusal::Stamp)
}

/// The first value of `key` in a URL-encoded form.
pub(super) fn form_value(form: &[u8], key: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(form).ok()?;
    pairs.into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// The query of the log endpoints.
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
    serve_log(&state, JobKind::Exec, query).await
}

/// Serves one log of a job of `kind`, with the original's answers for an unknown job
/// (`job ID x not found` for command jobs, `ERR_INVALID_JOB_ID` for HTTP jobs) and for
/// a missing log.
pub(super) async fn serve_log(
    state: &AppState,
    kind: JobKind,
    query: LogQuery,
) -> Result<Response, ApiError> {
    let id = query.id.to_ascii_lowercase();
    let snapshot = state.scheduler.snapshot();
    let found = match kind {
        JobKind::Monitor => snapshot
            .monitor(&id)
            .map(|m| (m.id().clone(), m.logs.clone())),
        JobKind::Service => snapshot
            .service(&id)
            .map(|s| (s.id().clone(), s.logs.clone())),
        _ => snapshot
            .job(kind, &id)
            .map(|v| (v.id().clone(), v.logs.clone())),
    };
    let (job_id, logs) = found.ok_or_else(|| match kind {
        JobKind::Exec => ApiError::log_job_not_found(snapshot.unknown_job(kind, &id)),
        JobKind::Http => ApiError::invalid_job_id(snapshot.unknown_job(kind, &id)),
        JobKind::Monitor => ApiError::monitor_not_found(&id),
        JobKind::Service => ApiError::service_not_found(&id),
    })?;
    let counter: u64 = query
        .counter
        .parse()
        .map_err(|_| ApiError::log_not_found(&query.counter, false))?;
    if !logs.iter().any(|l| l.counter == counter) {
        return Err(ApiError::log_not_found(&query.counter, true));
    }
    let dir = state.layout.log_dir(kind, &job_id);
    let opened = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let Some(entry) = run_log::find(&dir, &job_id, counter)? else {
            return Ok(None);
        };
        let (file, entry) = run_log::open(&entry)?;
        let len = file.metadata()?.len();
        Ok(Some((file, entry.status, len)))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let Some((file, status, len)) = opened else {
        return Err(ApiError::log_not_found(&query.counter, true));
    };
    let (head, tail) = LogJson::envelope_parts(&id, LogSummary::new(counter, status));
    Ok(log_response(
        head,
        tokio::fs::File::from_std(file),
        len,
        tail,
    ))
}

/// Bytes of a log read, base64-encoded and sent at a time: a multiple of 3, so that
/// the pieces' encodings put together are the encoding of the whole (256 KiB of
/// base64 each).
const LOG_CHUNK: usize = 3 * 64 * 1024;

/// The log endpoints' answer, streamed: `head`, the first `len` bytes of `file` in
/// padded base64, then `tail`. A log that grows meanwhile is sent as it was when
/// opened; one that shrinks (never, for karajo's logs) ends the answer early with an
/// error. Memory stays at about two chunks per request, whatever the log's size.
fn log_response(head: String, file: tokio::fs::File, len: u64, tail: &'static str) -> Response {
    use base64::Engine as _;
    use tokio::io::AsyncReadExt as _;

    enum Part {
        Head(String, tokio::fs::File),
        Content(tokio::fs::File, u64),
        Tail,
        Done,
    }
    let encoded_len = len.div_ceil(3) * 4;
    let total = head.len() as u64 + encoded_len + tail.len() as u64;
    let parts = futures_util::stream::unfold(Part::Head(head, file), move |part| async move {
        match part {
            Part::Head(head, file) => Some((Ok(Bytes::from(head)), Part::Content(file, len))),
            Part::Content(_, 0) => Some((Ok(Bytes::from_static(tail.as_bytes())), Part::Done)),
            Part::Content(mut file, left) => {
                let want = usize::try_from(left.min(LOG_CHUNK as u64)).unwrap_or(LOG_CHUNK);
                let mut chunk = vec![0; want];
                if let Err(err) = file.read_exact(&mut chunk).await {
                    tracing::warn!(%err, "reading a log for the log API");
                    return Some((Err(err), Part::Done));
                }
                let encoded = base64::engine::general_purpose::STANDARD.encode(&chunk);
                let next = match left - want as u64 {
                    0 => Part::Tail,
                    rest => Part::Content(file, rest),
                };
                Some((Ok(Bytes::from(encoded)), next))
            }
            Part::Tail => Some((Ok(Bytes::from_static(tail.as_bytes())), Part::Done)),
            Part::Done => None,
        }
    });
    // Fused: a body may be polled again after its end (the gzip layer does).
    let parts = futures_util::StreamExt::fuse(parts);
    let mut res = Response::new(axum::body::Body::from_stream(parts));
    *res.status_mut() = StatusCode::OK;
    let headers = res.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        axum::http::header::CONTENT_LENGTH,
        axum::http::HeaderValue::from(total),
    );
    res
}
