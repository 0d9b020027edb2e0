//! watchTower's five routes (monitors spec A.8), so that its clients only change their
//! base URL: pulse `POST {wt}/`, cancel `DELETE {wt}/`, list `GET {wt}/`, and the
//! event log's `POST {wt}/add-event` and `GET {wt}/list-events`. `{wt}` is `[watchtower]
//! path`, read from the configuration in force at each request ([`mount`] turns a
//! request under it into one of the fixed routes here); every route needs the
//! `password` header (401 `ERR_WATCHTOWER_PASSWORD`), and none exists without a
//! `[watchtower] password` (404). Pulses check in to dynamic monitors, which the
//! scheduler creates, keeps across restarts and removes on a cancel.

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq as _;

use super::error::ApiError;
use super::event::{PostedEvent, query_events, record_posted};
use super::json;
use super::monitor::{MonitorJson, sender_note};
use crate::config::WatchtowerConfig;
use crate::monitor::{NEXT_IN_MAX_SECONDS, NextIn, Pulse};
use crate::scheduler::PulseError;
use crate::store::event_log::Source;
use crate::store::monitor_files::PingBlock;
use crate::web::AppState;
use crate::web::body::{SMALL_BODY_LIMIT, read, refuse};

/// Where the routes are registered; [`mount`] rewrites a request under another
/// `[watchtower] path` to here.
pub(crate) const ROUTE_BASE: &str = "/karajo/api/watchtower";

/// The header every watchTower request carries its password in.
const PASSWORD_HEADER: &str = "password";

/// Marks a request [`mount`] rewrote from the configured path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mounted;

impl ApiError {
    fn watchtower_password() -> Self {
        Self::with(
            StatusCode::UNAUTHORIZED,
            "ERR_WATCHTOWER_PASSWORD",
            "missing or wrong password header",
        )
    }

    fn watchtower_bad_request(detail: impl std::fmt::Display) -> Self {
        Self::with(
            StatusCode::BAD_REQUEST,
            "ERR_WATCHTOWER_BAD_REQUEST",
            format!("invalid request: {detail}"),
        )
    }

    fn watchtower_not_served() -> Self {
        Self::with(
            StatusCode::NOT_FOUND,
            "ERR_NOT_FOUND",
            "not found: watchTower routes need [watchtower] password",
        )
    }

    fn pulse_refused(err: &PulseError) -> Self {
        let (status, name) = match err {
            PulseError::Conflict(_) => (StatusCode::CONFLICT, "ERR_MONITOR_CONFLICT"),
            PulseError::Limit(_) => (StatusCode::TOO_MANY_REQUESTS, "ERR_WATCHTOWER_LIMIT"),
            PulseError::NotFound(_) => (StatusCode::NOT_FOUND, "ERR_MONITOR_NOT_FOUND"),
        };
        Self::with(status, name, err.to_string())
    }
}

/// Rewrites a request under the configured `[watchtower] path` (other than
/// [`ROUTE_BASE`]) to the fixed routes, marking it [`Mounted`]. Mounted at `/`, `GET /`
/// is the list only with a `password` header: without one it stays the public index.
pub(crate) fn mount(state: &AppState, mut req: Request) -> Request {
    let config = state.config();
    let Some(wt) = &config.watchtower else {
        return req;
    };
    if wt.path.eq_ignore_ascii_case(ROUTE_BASE) {
        return req;
    }
    let path = req.uri().path();
    let base = wt.path.trim_end_matches('/');
    let Some(rest) = path
        .get(..base.len())
        .filter(|head| head.eq_ignore_ascii_case(base))
        .map(|_| &path[base.len()..])
    else {
        return req;
    };
    let route = match rest.trim_end_matches('/').to_ascii_lowercase().as_str() {
        "" => "",
        "/add-event" => "/add-event",
        "/list-events" => "/list-events",
        _ => return req,
    };
    let is_root_list = base.is_empty()
        && route.is_empty()
        && matches!(*req.method(), Method::GET | Method::HEAD)
        && !req.headers().contains_key(PASSWORD_HEADER);
    if is_root_list {
        return req;
    }
    let target = match req.uri().query() {
        Some(q) => format!("{ROUTE_BASE}{route}?{q}"),
        None => format!("{ROUTE_BASE}{route}"),
    };
    if let Ok(uri) = target.parse() {
        *req.uri_mut() = uri;
        req.extensions_mut().insert(Mounted);
    }
    req
}

/// The `[watchtower]` in force when the request reached its route and carries the
/// right password; else the refusal (404 without the section, or when the request
/// came by the fixed path while the section mounts the routes elsewhere; 401 for the
/// password).
fn admit(state: &AppState, req: &Request) -> Result<WatchtowerConfig, ApiError> {
    let config = state.config();
    let wt = config
        .watchtower
        .clone()
        .ok_or_else(ApiError::watchtower_not_served)?;
    let mounted = req.extensions().get::<Mounted>().is_some();
    if !mounted && !wt.path.eq_ignore_ascii_case(ROUTE_BASE) {
        return Err(ApiError::watchtower_not_served());
    }
    let given = req
        .headers()
        .get(PASSWORD_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if bool::from(given.ct_eq(wt.password.as_bytes())) {
        Ok(wt)
    } else {
        Err(ApiError::watchtower_password())
    }
}

/// Reads a JSON body within the small body limit, after the password is checked.
async fn json_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    req: Request,
) -> Result<(T, HeaderMap, Method), Response> {
    if let Err(err) = admit(state, &req) {
        let (parts, body) = req.into_parts();
        return Err(refuse(&state.bodies, &parts.headers, body, err).await);
    }
    let (parts, body) = req.into_parts();
    let body = read(&state.bodies, &parts.headers, body, SMALL_BODY_LIMIT)
        .await
        .map_err(IntoResponse::into_response)?;
    let value = serde_json::from_slice(&body.bytes).map_err(|e| {
        ApiError::watchtower_bad_request(format!("body is not the expected JSON: {e}"))
            .into_response()
    })?;
    Ok((value, parts.headers, parts.method))
}

/// A pulse's body, as watchTower clients send it.
#[derive(Debug, serde::Deserialize)]
struct PulseBody {
    #[serde(default)]
    service: String,
    #[serde(default, rename = "alertType")]
    alert_type: String,
    #[serde(default, rename = "alertTarget")]
    alert_target: String,
    #[serde(default, rename = "nextIn")]
    next_in: serde_json::Value,
}

/// A cancel's body.
#[derive(Debug, serde::Deserialize)]
struct CancelBody {
    #[serde(default)]
    service: String,
}

/// `service`: 1–128 bytes without control characters (the event log's rule).
fn check_service(service: &str) -> Result<(), ApiError> {
    let bad = |why: &str| Err(ApiError::watchtower_bad_request(format!("service {why}")));
    if service.is_empty() || service.len() > 128 {
        return bad("must be 1 to 128 bytes");
    }
    if service.chars().any(char::is_control) {
        return bad("must not hold control characters");
    }
    Ok(())
}

/// `nextIn`: a whole number of seconds, 1 to [`NEXT_IN_MAX_SECONDS`].
fn check_next_in(value: &serde_json::Value) -> Result<NextIn, ApiError> {
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .and_then(NextIn::from_seconds)
        .ok_or_else(|| {
            ApiError::watchtower_bad_request(format!(
                "nextIn must be a whole number of seconds from 1 to {NEXT_IN_MAX_SECONDS}, got {value}"
            ))
        })
}

/// `POST {wt}/`: a pulse.
pub(super) async fn pulse(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    req: Request,
) -> Response {
    let peer = connect.map(|Extension(ConnectInfo(addr))| addr);
    let (body, headers, method) = match json_body::<PulseBody>(&state, req).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let next_in = match check_service(&body.service).and_then(|()| check_next_in(&body.next_in)) {
        Ok(next_in) => next_in,
        Err(err) => return err.into_response(),
    };
    let at = state.clock.now();
    let header = format!(
        "=== PULSE next_in={}s{}",
        next_in.seconds(),
        sender_note(&method, peer, &headers)
    );
    let block = PingBlock {
        at,
        lines: vec![header],
    };
    let pulse = Pulse {
        service: body.service,
        alert_type: body.alert_type,
        alert_target: body.alert_target,
        next_in,
    };
    match state.scheduler.pulse(pulse, block).await {
        Ok(Some(view)) => {
            state.metrics.monitor_checkin(view.id().as_str(), "pulse");
            json::data(&MonitorJson::new(&view))
        }
        Ok(None) => ApiError::internal("the monitor is gone").into_response(),
        Err(err) => ApiError::pulse_refused(&err).into_response(),
    }
}

/// `DELETE {wt}/`: a cancel.
pub(super) async fn cancel(State(state): State<AppState>, req: Request) -> Response {
    let (body, ..) = match json_body::<CancelBody>(&state, req).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    if let Err(err) = check_service(&body.service) {
        return err.into_response();
    }
    let id = crate::job::JobId::from_name(&body.service);
    let before = state.scheduler.snapshot().monitor(id.as_str()).cloned();
    match state.scheduler.cancel_pulse(body.service).await {
        Ok(Some(view)) => json::data(&MonitorJson::new(&view)),
        Ok(None) => match before {
            Some(view) => json::data(&MonitorJson::new(&view)),
            None => json::data(&serde_json::json!({ "id": id.as_str() })),
        },
        Err(err) => ApiError::pulse_refused(&err).into_response(),
    }
}

/// `GET {wt}/`: every dynamic monitor and every configured one that accepts pulses,
/// by id.
pub(super) async fn list(State(state): State<AppState>, req: Request) -> Response {
    if let Err(err) = admit(&state, &req) {
        return err.into_response();
    }
    let snapshot = state.scheduler.snapshot();
    let monitors: Vec<MonitorJson<'_>> = snapshot
        .monitors
        .iter()
        .filter(|m| m.spec.is_dynamic() || m.spec.accept_pulse)
        .map(|m| MonitorJson::new(m))
        .collect();
    json::data(&monitors)
}

/// `POST {wt}/add-event`: `{"service","level","message"}` into the event log.
pub(super) async fn add_event(State(state): State<AppState>, req: Request) -> Response {
    let (posted, ..) = match json_body::<PostedEvent>(&state, req).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    match record_posted(&state, posted, Source::Watchtower) {
        Ok(record) => json::data(&record),
        Err(err) => err.into_response(),
    }
}

/// `GET {wt}/list-events?service=&from=&to=&level=&message=`: the events, newest
/// first, as a plain array (`limit` and `before` page as in the native route).
pub(super) async fn list_events(State(state): State<AppState>, req: Request) -> Response {
    if let Err(err) = admit(&state, &req) {
        return err.into_response();
    }
    match query_events(&state, req.uri().query().unwrap_or("")).await {
        Ok(page) => json::data(&page.events),
        Err(err) => err.into_response(),
    }
}
