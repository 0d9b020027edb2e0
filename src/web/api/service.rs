//! The supervised services' API (monitors spec B.4.4, B.9, B.10): the read
//! `GET /karajo/api/service?id=[&history=1]` and its log reader, the signed form
//! controls `enable`, `disable`, `restart`, `run_once` and `signal`, and the instance
//! ping `GET|POST /karajo/api/service/ping/<id>`. Thin adapters: they find the
//! service in the scheduler's snapshot (404 first), check what the request says (the
//! signature, then the form's fields; the token's presence, then the ping body's
//! size), hand it to [`SchedulerHandle`](crate::scheduler::SchedulerHandle) and
//! translate its answer. The state machine decides; nothing here changes a service.
//!
//! A service's JSON ([`ServiceJson`]) never shows its `secret`, its `env` values or an
//! instance token, and leaves out empty, zero and false fields except the six the spec
//! keeps always (`id`, `name`, `kind`, `status`, `enabled`, `cas`).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Extension;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::job_exec::{LogQuery, form_value, serve_log, signed_form_or_delegate};
use super::json::{self, LogSummaryJson};
use crate::config::model::ServiceSignal;
use crate::job::{JobId, JobKind};
use crate::scheduler::{ServiceAnswer, ServicePingAnswer, ServiceView, Snapshot};
use crate::service::{
    Control, HistoryEntry, KEYVALUE_MAX_BYTES, KEYVALUE_MAX_KEYS, KeyValue, PingUpdate,
    STATUS_TEXT_MAX_CHARS,
};
use crate::web::AppState;
use crate::web::body::{read, refuse};

/// The header a service ping may carry its instance token in.
const TOKEN_HEADER: &str = "x-karajo-token";

/// The largest ping body: room for a full key/value map and a `status_text` written
/// with JSON escapes; the spec's limits are checked on what it holds.
const PING_BODY_LIMIT: usize = 8 * 1024;

impl ApiError {
    /// 403 `ERR_SERVICE_FORBIDDEN`: a ping without a token, or with one that belongs
    /// to no instance.
    pub(super) fn service_forbidden() -> Self {
        Self::with(StatusCode::FORBIDDEN, "ERR_SERVICE_FORBIDDEN", "forbidden")
    }

    /// 409 `ERR_SERVICE_STALE`: a ping with the token of an instance that has ended.
    pub(super) fn service_stale(instance: &str) -> Self {
        Self::with(
            StatusCode::CONFLICT,
            "ERR_SERVICE_STALE",
            format!("instance is not current: {instance}"),
        )
    }

    /// 409 `ERR_SERVICE_CAS`; the answer also carries the current service
    /// ([`ApiError::with_data`]).
    pub(super) fn service_cas(current: u64) -> Self {
        Self::with(
            StatusCode::CONFLICT,
            "ERR_SERVICE_CAS",
            format!("cas mismatch: current {current}"),
        )
    }

    /// 400 `ERR_SERVICE_BAD_REQUEST`, `detail` naming the field at fault.
    pub(super) fn service_bad_request(detail: impl std::fmt::Display) -> Self {
        Self::with(
            StatusCode::BAD_REQUEST,
            "ERR_SERVICE_BAD_REQUEST",
            format!("invalid request: {detail}"),
        )
    }

    /// 409 `ERR_SERVICE_NOT_RUNNING`: `signal` with no live instance.
    pub(super) fn service_not_running() -> Self {
        Self::with(
            StatusCode::CONFLICT,
            "ERR_SERVICE_NOT_RUNNING",
            "no running instance",
        )
    }
}

/// The query of `GET /karajo/api/service`.
#[derive(Debug, Deserialize)]
pub(super) struct ServiceQuery {
    #[serde(default)]
    id: String,
    #[serde(default)]
    history: String,
}

impl ServiceQuery {
    /// `history=1` (or `true`) asks for the instance history.
    fn wants_history(&self) -> bool {
        matches!(self.history.as_str(), "1" | "true")
    }
}

/// `GET /karajo/api/service?id=ID[&history=1]`.
pub(super) async fn get(
    State(state): State<AppState>,
    Query(query): Query<ServiceQuery>,
) -> Result<Response, ApiError> {
    let snapshot = state.scheduler.snapshot();
    let view = snapshot
        .service(&query.id.to_ascii_lowercase())
        .cloned()
        .ok_or_else(|| ApiError::service_not_found(&query.id))?;
    let history = if query.wants_history() {
        Some(read_history(&state, &view).await?)
    } else {
        None
    };
    Ok(json::data(&ServiceJson::new(&view, history.as_deref())))
}

/// The newest `history` entries of the service's instance history, newest first, read
/// on the blocking pool.
async fn read_history(state: &AppState, view: &ServiceView) -> Result<Vec<HistoryEntry>, ApiError> {
    let path = state.layout.service_history_file(view.id());
    let limit = view.spec.history;
    tokio::task::spawn_blocking(move || {
        crate::store::json_file::read_lines::<HistoryEntry>(&path, limit)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)
}

/// `GET /karajo/api/service/log?id=ID&counter=N`: one instance log segment, in the
/// shape of a job's log.
pub(super) async fn log(
    State(state): State<AppState>,
    Query(query): Query<LogQuery>,
) -> Result<Response, ApiError> {
    serve_log(&state, JobKind::Service, query).await
}

/// Which control a route is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Enable,
    Disable,
    Restart,
    RunOnce,
    Signal,
}

/// A control form as read from its signed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ControlForm {
    /// The service id, lower-cased.
    id: String,
    /// The `cas=` precondition.
    cas: Option<u64>,
    /// What is asked.
    control: Control,
}

impl Action {
    /// Reads `form`: `id`, an optional decimal `cas`, and `on=1|0` for `run_once` or
    /// `signal=NAME` for `signal`. A bad field is a 400 that names it.
    fn read(self, form: &[u8]) -> Result<ControlForm, ApiError> {
        let id = form_value(form, "id")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let cas = match form_value(form, "cas").filter(|c| !c.is_empty()) {
            None => None,
            Some(text) => Some(text.parse::<u64>().map_err(|_| {
                ApiError::service_bad_request(format_args!(
                    "cas must be a whole decimal number, not {text:?}"
                ))
            })?),
        };
        let control = match self {
            Self::Enable => Control::Enable,
            Self::Disable => Control::Disable,
            Self::Restart => Control::Restart,
            Self::RunOnce => match form_value(form, "on").as_deref() {
                Some("1") => Control::RunOnce(true),
                Some("0") => Control::RunOnce(false),
                other => {
                    return Err(ApiError::service_bad_request(format_args!(
                        "on must be 1 or 0, not {:?}",
                        other.unwrap_or("")
                    )));
                }
            },
            Self::Signal => {
                let text = form_value(form, "signal").unwrap_or_default();
                let signal = ServiceSignal::parse(&text).ok_or_else(|| {
                    let known: Vec<&str> = ServiceSignal::ALL.iter().map(|s| s.as_str()).collect();
                    ApiError::service_bad_request(format_args!(
                        "signal {text:?} is not one of {}",
                        known.join(", ")
                    ))
                })?;
                Control::Signal(signal)
            }
        };
        Ok(ControlForm { id, cas, control })
    }
}

/// `POST /karajo/api/service/enable`.
pub(super) async fn enable(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: Request,
) -> Response {
    control(&state, connect, request, Action::Enable).await
}

/// `POST /karajo/api/service/disable`.
pub(super) async fn disable(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: Request,
) -> Response {
    control(&state, connect, request, Action::Disable).await
}

/// `POST /karajo/api/service/restart`.
pub(super) async fn restart(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: Request,
) -> Response {
    control(&state, connect, request, Action::Restart).await
}

/// `POST /karajo/api/service/run_once` (`on=1|0`).
pub(super) async fn run_once(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: Request,
) -> Response {
    control(&state, connect, request, Action::RunOnce).await
}

/// `POST /karajo/api/service/signal` (`signal=HUP|USR1|USR2|INT|TERM|QUIT|KILL`).
pub(super) async fn signal(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: Request,
) -> Response {
    control(&state, connect, request, Action::Signal).await
}

/// Every control: the form signed with the global secret or the service's own
/// `secret` (401 otherwise), the service known (404), the fields good (400), then the
/// scheduler's answer. The event log records the request's peer address as `by`.
async fn control(
    state: &AppState,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: Request,
    action: Action,
) -> Response {
    let snapshot = state.scheduler.snapshot();
    let peer = crate::web::peer::peer(
        &snapshot.config.trusted_proxy,
        connect.map(|Extension(ConnectInfo(addr))| addr),
        request.headers(),
    );
    let delegate = |form: &[u8]| service_secret(&snapshot, form);
    let form = match signed_form_or_delegate(state, request, delegate).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let asked = form_value(&form, "id").unwrap_or_default();
    if snapshot.service(&asked.to_ascii_lowercase()).is_none() {
        return ApiError::service_not_found(&asked).into_response();
    }
    let form = match action.read(&form) {
        Ok(form) => form,
        Err(err) => return err.into_response(),
    };
    let by = peer
        .client
        .map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    let answer = state
        .scheduler
        .service_control(JobId::from_raw(form.id.clone()), form.control, form.cas, by)
        .await;
    control_reply(answer, &form.id)
}

/// The `secret` of the service a control form names, when it has one: a signature
/// made with it is accepted as well as the global secret's (monitors spec B.2).
fn service_secret(snapshot: &Snapshot, form: &[u8]) -> Option<String> {
    let id = form_value(form, "id")?.to_ascii_lowercase();
    let secret = &snapshot.service(&id)?.spec.secret;
    (!secret.is_empty()).then(|| secret.clone())
}

/// The answer to a control: the service after the action started, or the error the
/// scheduler's answer stands for (a CAS mismatch with the current service).
fn control_reply(answer: Option<ServiceAnswer>, id: &str) -> Response {
    match answer {
        Some(ServiceAnswer::Done(view)) => json::data(&ServiceJson::new(&view, None)),
        Some(ServiceAnswer::CasMismatch(view)) => {
            ApiError::service_cas(view.state.cas()).with_data(&ServiceJson::new(&view, None))
        }
        Some(ServiceAnswer::NotRunning(_)) => ApiError::service_not_running().into_response(),
        Some(ServiceAnswer::BadRequest(why)) => ApiError::service_bad_request(why).into_response(),
        None => ApiError::service_not_found(id).into_response(),
    }
}

/// `GET|POST /karajo/api/service/ping/<id>` with the instance token.
pub(super) async fn ping(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    match take_ping(&state, &id, request).await {
        Ok(response) | Err(response) => response,
    }
}

async fn take_ping(state: &AppState, asked: &str, request: Request) -> Result<Response, Response> {
    let snapshot = state.scheduler.snapshot();
    let (parts, body) = request.into_parts();
    let Some(view) = snapshot.service(&asked.to_ascii_lowercase()) else {
        let err = ApiError::service_not_found(asked);
        return Err(refuse(&state.bodies, &parts.headers, body, err).await);
    };
    let Some(token) = ping_token(parts.uri.query(), &parts.headers) else {
        let err = ApiError::service_forbidden();
        return Err(refuse(&state.bodies, &parts.headers, body, err).await);
    };
    let update = if parts.method == Method::POST {
        let body = read(&state.bodies, &parts.headers, body, PING_BODY_LIMIT)
            .await
            .map_err(IntoResponse::into_response)?;
        ping_update(&body.bytes).map_err(IntoResponse::into_response)?
    } else {
        PingUpdate::default()
    };
    let id = view.id().clone();
    let answer = state
        .scheduler
        .service_ping(id.clone(), token, update)
        .await;
    Ok(ping_reply(answer, id.as_str()))
}

/// The instance token of a ping: `token=` in the query, else `X-Karajo-Token`.
fn ping_token(query: Option<&str>, headers: &HeaderMap) -> Option<String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default();
    pairs
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
        .or_else(|| {
            headers
                .get(TOKEN_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .filter(|t| !t.is_empty())
}

/// A ping's JSON body (monitors spec B.4.4); unknown fields are ignored.
#[derive(Debug, Deserialize)]
struct PingBody {
    #[serde(default)]
    status_text: Option<String>,
    #[serde(default)]
    keyvalue: Option<KeyValue>,
    #[serde(default)]
    keyvalue_replace: bool,
}

/// Reads a ping body: empty is no update; otherwise the JSON object of
/// [`PingBody`], its `status_text` within [`STATUS_TEXT_MAX_CHARS`] and its
/// `keyvalue` within [`KEYVALUE_MAX_KEYS`] keys and [`KEYVALUE_MAX_BYTES`] of JSON
/// (400 otherwise, naming the field).
fn ping_update(body: &[u8]) -> Result<PingUpdate, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(PingUpdate::default());
    }
    let parsed: PingBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::service_bad_request(format_args!("the ping body is not the JSON expected: {e}"))
    })?;
    if let Some(text) = &parsed.status_text {
        let chars = text.chars().count();
        if chars > STATUS_TEXT_MAX_CHARS {
            return Err(ApiError::service_bad_request(format_args!(
                "status_text has {chars} characters; at most {STATUS_TEXT_MAX_CHARS}"
            )));
        }
    }
    if let Some(map) = &parsed.keyvalue {
        if map.len() > KEYVALUE_MAX_KEYS {
            return Err(ApiError::service_bad_request(format_args!(
                "keyvalue has {} keys; at most {KEYVALUE_MAX_KEYS}",
                map.len()
            )));
        }
        let bytes = serde_json::to_string(map).map_or(usize::MAX, |json| json.len());
        if bytes > KEYVALUE_MAX_BYTES {
            return Err(ApiError::service_bad_request(format_args!(
                "keyvalue takes {bytes} bytes of JSON; at most {KEYVALUE_MAX_BYTES}"
            )));
        }
    }
    Ok(PingUpdate {
        status_text: parsed.status_text,
        keyvalue: parsed.keyvalue,
        keyvalue_replace: parsed.keyvalue_replace,
    })
}

/// The answer to a ping: `{"data":{"id","instance","status"},"code":200}`, or the
/// error the scheduler's answer stands for.
fn ping_reply(answer: Option<ServicePingAnswer>, id: &str) -> Response {
    #[derive(Serialize)]
    struct PingJson<'a> {
        id: &'a str,
        instance: &'a str,
        status: &'a str,
    }
    match answer {
        Some(ServicePingAnswer::Taken { instance, status }) => json::data(&PingJson {
            id,
            instance: &instance,
            status,
        }),
        Some(ServicePingAnswer::Forbidden) => ApiError::service_forbidden().into_response(),
        Some(ServicePingAnswer::Stale(instance)) => {
            ApiError::service_stale(&instance).into_response()
        }
        Some(ServicePingAnswer::BadRequest(why)) => {
            ApiError::service_bad_request(why).into_response()
        }
        None => ApiError::service_not_found(id).into_response(),
    }
}

/// A service in JSON (monitors spec B.10), in the spec's field order. Durations are
/// nanoseconds, times RFC 3339; empty, zero and false fields are left out except
/// `id`, `name`, `kind`, `status`, `enabled` and `cas`. The `secret`, the `env` values
/// and instance tokens are not fields at all.
#[derive(Debug, Serialize)]
pub struct ServiceJson<'a> {
    id: &'a str,
    name: &'a str,
    kind: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    status: &'static str,
    enabled: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    run_once: bool,
    cas: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    command: &'a str,
    #[serde(skip_serializing_if = "is_zero_i64")]
    priority: i64,
    restart: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    restart_delay: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restart_delay_max: Option<u128>,
    #[serde(skip_serializing_if = "is_zero_u32")]
    start_retries: u32,
    ready: &'static str,
    stop_signal: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_timeout: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ping_timeout: Option<u128>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pid_file: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    instance: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ready_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_seen: Option<Timestamp>,
    #[serde(skip_serializing_if = "is_zero_u32")]
    failures: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_start: Option<Timestamp>,
    #[serde(skip_serializing_if = "str::is_empty")]
    stop_target: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_exit: Option<LastExitJson<'a>>,
    #[serde(skip_serializing_if = "str::is_empty")]
    status_text: &'a str,
    #[serde(skip_serializing_if = "KeyValue::is_empty")]
    keyvalue: &'a KeyValue,
    #[serde(skip_serializing_if = "is_zero_u64")]
    counter: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    logs: Vec<LogSummaryJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<&'a [HistoryEntry]>,
}

/// How the last instance ended, in a service's JSON. `exit_code` is always there
/// (`null` when unknown or when a signal ended it), as in the history.
#[derive(Debug, Serialize)]
struct LastExitJson<'a> {
    exit_code: Option<i32>,
    #[serde(skip_serializing_if = "str::is_empty")]
    signal: &'a str,
    reason: &'static str,
    at: Timestamp,
}

impl<'a> ServiceJson<'a> {
    /// The JSON of `view`; `history` (newest first) only when it was asked for.
    pub fn new(view: &'a ServiceView, history: Option<&'a [HistoryEntry]>) -> Self {
        let spec = &*view.spec;
        let policy = &spec.policy;
        let state = &view.state;
        let instance = state.instance();
        let newest_log = view.logs.iter().map(|l| l.counter).max().unwrap_or(0);
        let segment = instance.map_or(0, |i| i.segment.max(i.counter));
        Self {
            id: spec.id.as_str(),
            name: &spec.name,
            kind: "service",
            description: &spec.description,
            status: state.status.as_str(),
            enabled: state.saved.enabled,
            run_once: state.saved.run_once,
            cas: state.cas(),
            command: &spec.command,
            priority: spec.priority,
            restart: policy.restart.as_str(),
            restart_delay: nanos(policy.restart_delay),
            restart_delay_max: nanos(policy.restart_delay_max),
            start_retries: policy.start_retries,
            ready: policy.ready.as_str(),
            stop_signal: policy.stop_signal.as_str(),
            stop_timeout: nanos(policy.stop_timeout),
            ping_timeout: policy.ping_timeout.and_then(nanos),
            pid_file: spec
                .pid_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            instance: instance.map_or("", |i| i.instance.as_str()),
            pid: instance.map(|i| i.pid),
            started: instance.map(|i| i.spawned),
            ready_at: state.ready_at,
            last_seen: state.last_ping,
            failures: state.start_failures,
            next_start: state.next_start(),
            stop_target: state.stop_target().map_or("", |t| t.as_str()),
            last_exit: state.last_exit.as_ref().map(|exit| LastExitJson {
                exit_code: exit.exit_code,
                signal: exit.signal.as_deref().unwrap_or(""),
                reason: exit.reason.as_str(),
                at: exit.at,
            }),
            status_text: &state.status_text,
            keyvalue: &state.keyvalue,
            counter: newest_log.max(segment),
            logs: view
                .logs
                .iter()
                .map(|l| LogSummaryJson::new(spec.id.as_str(), *l))
                .collect(),
            history,
        }
    }
}

/// A duration in nanoseconds, `None` (left out) when zero.
fn nanos(d: Duration) -> Option<u128> {
    (!d.is_zero()).then(|| d.as_nanos())
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}
