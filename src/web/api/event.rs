//! The event log's API (monitors spec 1.4, A.9): `GET /karajo/api/event` lists events
//! newest first with the filters `service`, `from`, `to`, `level`, `message`, `limit`
//! and `before` (behind the read access of the other reads); `POST /karajo/api/event`
//! appends one, `{"service","level","message","_karajo_epoch"}`, signed with the global
//! secret (stamped and spent once) or carrying the token of the monitor whose id is
//! the service's: without either it is `401`, with a token that is not that
//! monitor's `403 ERR_MONITOR_FORBIDDEN`. A bad field is `400 ERR_EVENT_INVALID`
//! naming it; a full queue is `503`, so the client tries again.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq as _;

use super::error::ApiError;
use super::json;
use crate::config::MonitorAuth;
use crate::job::JobId;
use crate::store::event_log::{EventPage, EventQuery, EventRecord, RecordError, Source};
use crate::store::{EventLog, NewEvent};
use crate::web::body::{SMALL_BODY_LIMIT, read, refuse};
use crate::web::{AppState, access};

impl ApiError {
    fn event_invalid(detail: impl std::fmt::Display) -> Self {
        Self::with(
            StatusCode::BAD_REQUEST,
            "ERR_EVENT_INVALID",
            format!("invalid event: {detail}"),
        )
    }

    fn events_busy(err: &RecordError) -> Self {
        Self::with(
            StatusCode::SERVICE_UNAVAILABLE,
            "ERR_EVENT_BUSY",
            err.to_string(),
        )
    }
}

fn event_log(state: &AppState) -> Result<&EventLog, ApiError> {
    state
        .events
        .as_ref()
        .ok_or_else(|| ApiError::internal("no event log"))
}

/// `GET /karajo/api/event?service=&from=&to=&level=&message=&limit=&before=`.
pub(super) async fn list(State(state): State<AppState>, request: Request) -> Response {
    match query_events(&state, request.uri().query().unwrap_or("")).await {
        Ok(page) => json::data(&page),
        Err(err) => err.into_response(),
    }
}

/// The events a query string asks for (`service`, `from`, `to`, `level`, `message`,
/// `limit`, `before`).
pub(super) async fn query_events(state: &AppState, query: &str) -> Result<EventPage, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let query = EventQuery::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(ApiError::event_invalid)?;
    event_log(state)?
        .query(query)
        .await
        .map_err(ApiError::internal)
}

/// The JSON body of `POST /karajo/api/event`.
#[derive(Debug, serde::Deserialize)]
pub(super) struct PostedEvent {
    #[serde(default)]
    service: String,
    #[serde(default)]
    level: serde_json::Value,
    #[serde(default)]
    message: String,
}

/// `POST /karajo/api/event`.
pub(super) async fn post(State(state): State<AppState>, request: Request) -> Response {
    match append(&state, request).await {
        Ok(response) | Err(response) => response,
    }
}

async fn append(state: &AppState, request: Request) -> Result<Response, Response> {
    let (parts, body) = request.into_parts();
    let signed = access::has_signature(&parts.headers);
    let token = parts
        .headers
        .get("x-karajo-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if !signed && token.is_none() {
        let refusal = ApiError::bad_signature();
        return Err(refuse(&state.bodies, &parts.headers, body, refusal).await);
    }
    let body = read(&state.bodies, &parts.headers, body, SMALL_BODY_LIMIT)
        .await
        .map_err(IntoResponse::into_response)?;
    let posted: PostedEvent = serde_json::from_slice(&body.bytes)
        .map_err(|e| ApiError::event_invalid(format!("body: {e}")).into_response())?;
    if signed {
        access::accept_global_signature(state, &parts.headers, &body.bytes)
            .map_err(|refusal| ApiError::refused_signature(&refusal).into_response())?;
    } else {
        // The token of the monitor whose id is the service's.
        let id = JobId::from_name(&posted.service);
        let snapshot = state.scheduler.snapshot();
        let good = snapshot
            .monitor(id.as_str())
            .is_some_and(|m| match &m.spec.auth {
                MonitorAuth::Token(expected) => token
                    .as_deref()
                    .is_some_and(|t| bool::from(t.as_bytes().ct_eq(expected.as_bytes()))),
                _ => false,
            });
        // A token was given: a wrong one, or one for another service, is refused
        // as a wrong ping token is (monitors spec A.3.3, C.4 EVT-03).
        if !good {
            return Err(ApiError::monitor_forbidden().into_response());
        }
    }
    let record = record_posted(state, posted, Source::Api).map_err(IntoResponse::into_response)?;
    Ok(json::data(&record))
}

/// Appends a posted event from `source`: 400 for a bad field, 503 when the writer's
/// queue is full.
pub(super) fn record_posted(
    state: &AppState,
    posted: PostedEvent,
    source: Source,
) -> Result<EventRecord, ApiError> {
    let level = match &posted.level {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::Null => "info".to_string(),
        other => other.to_string(),
    };
    let event = NewEvent::parse(posted.service, &level, posted.message, source)
        .map_err(ApiError::event_invalid)?;
    event_log(state)?
        .record(event)
        .map_err(|e| ApiError::events_busy(&e))
}
