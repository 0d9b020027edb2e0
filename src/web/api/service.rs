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
    (!d.is_zero()).then_some(d.as_nanos())
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::header;
    use serde_json::{Value, json};

    use super::*;
    use crate::config::ServiceSpec;
    use crate::job::RunStatus;
    use crate::scheduler::LogSummary;
    use crate::service::{
        HistoryReason, InstanceRecord, LastExit, SavedService, ServiceState, Status, Stop,
        StopReason, StopTarget, Watch,
    };

    const SECRET_ENV_VALUE: &str = "hunter2-env-value";
    const SERVICE_SECRET: &str = "delegated-s3cret";

    /// The service of every test, loaded as the daemon loads it: `env` and `secret`
    /// set, so the JSON can be checked for leaving them out.
    fn spec(extra: &str) -> Arc<ServiceSpec> {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("karajo.conf");
        std::fs::write(
            &conf,
            format!(
                "[karajo]\ndir_base = {}\nsecret = s3cret\n\n[service \"API\"]\n\
                 command = exec ./api --port 8080\nenv = DB_PASSWORD={SECRET_ENV_VALUE}\n\
                 secret = {SERVICE_SECRET}\n{extra}",
                dir.path().display()
            ),
        )
        .unwrap();
        let mut config = crate::config::load_with(&conf, &|_| false).unwrap();
        Arc::new(config.services.remove(0))
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// A running instance with everything a service can show: a ping, a status text,
    /// key/values, a previous failed instance, two log segments.
    fn running_view() -> ServiceView {
        let saved = SavedService {
            enabled: true,
            run_once: false,
            cas: 42,
            instance: Some(InstanceRecord {
                instance: "0193aaaa-0000-7000-8000-000000000001".into(),
                pid: 4242,
                pgid: 4242,
                starttime: 123,
                boot_id: "boot".into(),
                spawned: at("2026-11-22T10:00:00Z"),
                counter: 17,
                segment: 18,
                token_sha256: "aa".repeat(32),
                watch: Watch::Child,
            }),
        };
        let mut state = ServiceState::restored(Some(saved), true);
        state.status = Status::Running;
        state.ready_at = Some(at("2026-11-22T10:00:01.25Z"));
        state.last_ping = Some(at("2026-11-22T10:05:00Z"));
        state.start_failures = 1;
        state.status_text = "serving".into();
        state.keyvalue.insert("port".into(), json!(8080));
        state.last_exit = Some(LastExit {
            exit_code: Some(1),
            signal: None,
            reason: HistoryReason::Exited,
            at: at("2026-11-22T09:59:59Z"),
        });
        ServiceView {
            spec: spec("ping_timeout = 5s\n"),
            state,
            deadline: None,
            logs: vec![
                LogSummary::new(17, RunStatus::Rotated),
                LogSummary::new(18, RunStatus::Running),
            ],
        }
    }

    fn to_json(json: &ServiceJson<'_>) -> Value {
        serde_json::from_str(&json::to_string(json)).unwrap()
    }

    #[test]
    fn a_running_service_shows_its_instance_in_nanoseconds_and_rfc3339() {
        let view = running_view();
        let got = to_json(&ServiceJson::new(&view, None));
        assert_eq!(got["id"], "api");
        assert_eq!(got["name"], "API");
        assert_eq!(got["kind"], "service");
        assert_eq!(got["status"], "running");
        assert_eq!(got["enabled"], true);
        assert_eq!(got["cas"], 42);
        assert_eq!(got["command"], "exec ./api --port 8080");
        assert_eq!(got["priority"], 100);
        assert_eq!(got["restart"], "on-failure");
        assert_eq!(got["restart_delay"], 1_000_000_000_u64);
        assert_eq!(got["restart_delay_max"], 60_000_000_000_u64);
        assert_eq!(got["stop_timeout"], 10_000_000_000_u64);
        assert_eq!(got["ping_timeout"], 5_000_000_000_u64);
        assert_eq!(got["start_retries"], 3);
        assert_eq!(got["ready"], "delay");
        assert_eq!(got["stop_signal"], "TERM");
        assert_eq!(got["instance"], "0193aaaa-0000-7000-8000-000000000001");
        assert_eq!(got["pid"], 4242);
        assert_eq!(got["started"], "2026-11-22T10:00:00Z");
        assert_eq!(got["ready_at"], "2026-11-22T10:00:01.25Z");
        assert_eq!(got["last_seen"], "2026-11-22T10:05:00Z");
        assert_eq!(got["failures"], 1);
        assert_eq!(
            got["last_exit"],
            json!({"exit_code":1,"reason":"exited","at":"2026-11-22T09:59:59Z"})
        );
        assert_eq!(got["status_text"], "serving");
        assert_eq!(got["keyvalue"], json!({"port":8080}));
        assert_eq!(got["counter"], 18);
        assert_eq!(got["logs"][0]["name"], "api.17.rotated");
        assert_eq!(got["logs"][1]["status"], "running");
        for absent in [
            "run_once",
            "next_start",
            "stop_target",
            "pid_file",
            "history",
        ] {
            assert!(got.get(absent).is_none(), "{absent} in {got}");
        }
    }

    #[test]
    fn no_secret_env_value_or_token_hash_is_ever_shown() {
        let view = running_view();
        let text = json::to_string(&ServiceJson::new(&view, Some(&[])));
        for hidden in [
            SECRET_ENV_VALUE,
            "DB_PASSWORD",
            SERVICE_SECRET,
            "\"secret\"",
            "\"env\"",
            "token",
            &"aa".repeat(32),
        ] {
            assert!(!text.contains(hidden), "{hidden} in {text}");
        }
    }

    #[test]
    fn a_fresh_disabled_service_keeps_only_the_always_fields_and_its_settings() {
        let view = ServiceView {
            spec: spec("restart_delay = 0s\nstart_retries = 0\npriority = 0\n"),
            state: ServiceState::restored(None, false),
            deadline: None,
            logs: Vec::new(),
        };
        let text = json::to_string(&ServiceJson::new(&view, None));
        assert!(
            text.starts_with(
                r#"{"id":"api","name":"API","kind":"service","status":"disabled","enabled":false,"cas":0,"#
            ),
            "{text}"
        );
        let got: Value = serde_json::from_str(&text).unwrap();
        let mut keys: Vec<&str> = got
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "cas",
                "command",
                "enabled",
                "id",
                "kind",
                "name",
                "ready",
                "restart",
                "restart_delay_max",
                "status",
                "stop_signal",
                "stop_timeout"
            ],
            "{got}"
        );
        assert_eq!(got["status"], "disabled");
        assert_eq!(got["enabled"], false);
        assert_eq!(got["cas"], 0);
    }

    #[test]
    fn a_stopping_or_backing_off_service_says_what_comes_next() {
        let mut view = running_view();
        view.state.saved.run_once = true;
        view.state.status = Status::Stopping(Stop {
            reason: StopReason::Disable,
            target: StopTarget::Disabled,
            since: at("2026-11-22T10:07:13Z"),
            killed: false,
        });
        let got = to_json(&ServiceJson::new(&view, None));
        assert_eq!(got["status"], "stopping");
        assert_eq!(got["stop_target"], "disabled");
        assert_eq!(got["run_once"], true);
        view.state.status = Status::Backoff {
            until: at("2026-11-22T10:08:00Z"),
            delay: Duration::from_secs(2),
        };
        let got = to_json(&ServiceJson::new(&view, None));
        assert_eq!(got["status"], "backoff");
        assert_eq!(got["next_start"], "2026-11-22T10:08:00Z");
        assert!(got.get("stop_target").is_none());
    }

    #[test]
    fn the_history_is_there_only_when_asked_with_durations_in_nanoseconds() {
        let view = running_view();
        let entry = HistoryEntry {
            instance: Some("0193".into()),
            pid: Some(4242),
            started: at("2026-11-22T10:00:00Z"),
            ready: None,
            last_seen: None,
            stopped: at("2026-11-22T10:07:13Z"),
            exit_code: None,
            signal: "KILL".into(),
            reason: HistoryReason::Exited,
            clean: false,
            counters: vec![17, 18],
            duration: Duration::from_secs(433),
            keyvalue: KeyValue::new(),
        };
        let entries = [entry];
        let got = to_json(&ServiceJson::new(&view, Some(&entries)));
        let first = &got["history"][0];
        assert_eq!(first["duration"], 433_000_000_000_u64);
        assert_eq!(first["exit_code"], Value::Null);
        assert_eq!(first["signal"], "KILL");
        assert_eq!(first["counters"], json!([17, 18]));
        // Asked for and empty: an empty list, so "none yet" differs from "not asked".
        let got = to_json(&ServiceJson::new(&view, Some(&[])));
        assert_eq!(got["history"], json!([]));
    }

    fn read(action: Action, form: &str) -> Result<ControlForm, ApiError> {
        action.read(form.as_bytes())
    }

    #[test]
    fn control_forms_read_id_cas_and_the_action_fields() {
        let form = read(Action::Disable, "_karajo_epoch=1&id=API&cas=42").unwrap();
        assert_eq!(
            form,
            ControlForm {
                id: "api".into(),
                cas: Some(42),
                control: Control::Disable
            }
        );
        assert_eq!(read(Action::Enable, "id=a&cas=").unwrap().cas, None);
        assert_eq!(read(Action::Restart, "id=a").unwrap().cas, None);
        assert_eq!(
            read(Action::RunOnce, "id=a&on=1").unwrap().control,
            Control::RunOnce(true)
        );
        assert_eq!(
            read(Action::RunOnce, "id=a&on=0").unwrap().control,
            Control::RunOnce(false)
        );
        assert_eq!(
            read(Action::Signal, "id=a&signal=hup").unwrap().control,
            Control::Signal(ServiceSignal::Hup)
        );
        assert_eq!(
            read(Action::Signal, "id=a&signal=SIGUSR2").unwrap().control,
            Control::Signal(ServiceSignal::Usr2)
        );
    }

    #[test]
    fn bad_control_fields_are_400s_that_name_the_field() {
        for (action, form, field) in [
            (Action::Disable, "id=a&cas=x", "cas"),
            (Action::Disable, "id=a&cas=-1", "cas"),
            (Action::Enable, "id=a&cas=1.5", "cas"),
            (Action::RunOnce, "id=a", "on"),
            (Action::RunOnce, "id=a&on=yes", "on"),
            (Action::RunOnce, "id=a&on=true", "on"),
            (Action::Signal, "id=a&signal=FOO", "signal"),
            (Action::Signal, "id=a", "signal"),
            (Action::Signal, "id=a&signal=SEGV", "signal"),
        ] {
            let err = read(action, form).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{form}");
            assert_eq!(err.name, "ERR_SERVICE_BAD_REQUEST", "{form}");
            assert!(
                err.message
                    .starts_with(&format!("invalid request: {field} ")),
                "{form}: {}",
                err.message
            );
        }
        let err = read(Action::Signal, "id=a&signal=FOO").unwrap_err();
        assert!(err.message.contains("\"FOO\""), "{}", err.message);
        assert!(err.message.contains("HUP"), "{}", err.message);
    }

    async fn body_of(response: Response) -> (StatusCode, Value) {
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn scheduler_answers_to_a_control_become_the_spec_answers() {
        let view = Arc::new(running_view());
        let (status, body) = body_of(control_reply(
            Some(ServiceAnswer::Done(view.clone())),
            "api",
        ))
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["code"], 200);
        assert_eq!(body["data"]["cas"], 42);

        // A CAS mismatch carries the current service, so a client can retry.
        let (status, body) = body_of(control_reply(
            Some(ServiceAnswer::CasMismatch(view.clone())),
            "api",
        ))
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["name"], "ERR_SERVICE_CAS");
        assert_eq!(body["message"], "cas mismatch: current 42");
        assert_eq!(body["code"], 409);
        assert_eq!(body["data"]["cas"], 42);
        assert_eq!(body["data"]["id"], "api");

        let cases = [
            (
                Some(ServiceAnswer::NotRunning(view.clone())),
                409,
                "ERR_SERVICE_NOT_RUNNING",
                "no running instance",
            ),
            (
                Some(ServiceAnswer::BadRequest(
                    "signal needs a live instance".into(),
                )),
                400,
                "ERR_SERVICE_BAD_REQUEST",
                "invalid request: signal needs a live instance",
            ),
            (None, 404, "ERR_SERVICE_NOT_FOUND", "service not found: api"),
        ];
        for (answer, code, name, message) in cases {
            let (status, body) = body_of(control_reply(answer, "api")).await;
            assert_eq!(status.as_u16(), code, "{body}");
            assert_eq!(
                body,
                json!({"message": message, "name": name, "code": code})
            );
        }
    }

    #[tokio::test]
    async fn scheduler_answers_to_a_ping_become_the_spec_answers() {
        let taken = ServicePingAnswer::Taken {
            instance: "0193".into(),
            status: "running",
        };
        let (status, body) = body_of(ping_reply(Some(taken), "api")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"data":{"id":"api","instance":"0193","status":"running"},"code":200})
        );
        let cases = [
            (
                Some(ServicePingAnswer::Forbidden),
                403,
                "ERR_SERVICE_FORBIDDEN",
                "forbidden".to_string(),
            ),
            (
                Some(ServicePingAnswer::Stale("0192".into())),
                409,
                "ERR_SERVICE_STALE",
                "instance is not current: 0192".to_string(),
            ),
            (
                Some(ServicePingAnswer::BadRequest("keyvalue too big".into())),
                400,
                "ERR_SERVICE_BAD_REQUEST",
                "invalid request: keyvalue too big".to_string(),
            ),
            (
                None,
                404,
                "ERR_SERVICE_NOT_FOUND",
                "service not found: api".to_string(),
            ),
        ];
        for (answer, code, name, message) in cases {
            let (status, body) = body_of(ping_reply(answer, "api")).await;
            assert_eq!(status.as_u16(), code, "{body}");
            assert_eq!(
                body,
                json!({"message": message, "name": name, "code": code})
            );
        }
    }

    #[test]
    fn a_ping_token_comes_from_the_query_or_the_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(ping_token(None, &headers), None);
        assert_eq!(ping_token(Some("token="), &headers), None);
        assert_eq!(
            ping_token(Some("a=1&token=t%2B1"), &headers).unwrap(),
            "t+1"
        );
        headers.insert(TOKEN_HEADER, "from-header".parse().unwrap());
        assert_eq!(ping_token(None, &headers).unwrap(), "from-header");
        assert_eq!(ping_token(Some("token=q"), &headers).unwrap(), "q");
    }

    #[test]
    fn a_ping_body_is_checked_for_the_spec_limits() {
        assert_eq!(ping_update(b"").unwrap(), PingUpdate::default());
        assert_eq!(ping_update(b" \n").unwrap(), PingUpdate::default());
        let update = ping_update(
            br#"{"status_text":"ok","keyvalue":{"a":1},"keyvalue_replace":true,"other":0}"#,
        )
        .unwrap();
        assert_eq!(update.status_text.as_deref(), Some("ok"));
        assert_eq!(update.keyvalue.unwrap()["a"], json!(1));
        assert!(update.keyvalue_replace);

        let longest = "é".repeat(STATUS_TEXT_MAX_CHARS);
        let body = json!({ "status_text": longest }).to_string();
        assert!(ping_update(body.as_bytes()).is_ok());
        let too_long = json!({ "status_text": format!("{longest}x") }).to_string();
        let too_many: KeyValue = (0..=KEYVALUE_MAX_KEYS)
            .map(|n| (format!("k{n}"), json!(n)))
            .collect();
        let too_many = json!({ "keyvalue": too_many }).to_string();
        let too_big = json!({ "keyvalue": {"a": "x".repeat(KEYVALUE_MAX_BYTES)} }).to_string();
        for (body, field) in [
            (too_long.as_str(), "status_text"),
            (too_many.as_str(), "keyvalue"),
            (too_big.as_str(), "keyvalue"),
            ("[1]", "the ping body"),
            ("{\"keyvalue\":3}", "the ping body"),
            ("not json", "the ping body"),
        ] {
            let err = ping_update(body.as_bytes()).unwrap_err();
            assert_eq!(err.name, "ERR_SERVICE_BAD_REQUEST", "{body}");
            assert!(
                err.message
                    .starts_with(&format!("invalid request: {field} ")),
                "{body}: {}",
                err.message
            );
        }
    }

    /// A signed control form to `/karajo/api/service/disable` for `id`, signed with
    /// `secret` and stamped `epoch`.
    fn signed_request(secret: &str, id: &str, epoch: i64, nonce: &str) -> Request {
        let body = format!("_karajo_epoch={epoch}&_karajo_nonce={nonce}&id={id}");
        let sign = crate::auth::sign_hmac_sha256(secret.as_bytes(), body.as_bytes());
        Request::builder()
            .method(Method::POST)
            .uri("/karajo/api/service/disable")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("x-karajo-sign", sign)
            .body(Body::from(body))
            .unwrap()
    }

    #[tokio::test]
    async fn a_control_may_be_signed_with_the_service_secret_under_the_same_stamp_rules() {
        let dir = tempfile::tempdir().unwrap();
        let (state, _scheduler) = crate::web::tests::build(dir.path(), false);
        let now = jiff::Timestamp::now().as_second();
        // What the service room's lookup would give for `api`, and nothing for others.
        let delegate = |form: &[u8]| {
            (form_value(form, "id").as_deref() == Some("api")).then(|| SERVICE_SECRET.to_string())
        };
        let status = |result: Result<bytes::Bytes, Response>| match result {
            Ok(_) => StatusCode::OK,
            Err(response) => response.status(),
        };
        // The global secret, and the service's own.
        let global = signed_request("s3cret", "api", now, "n1");
        assert_eq!(
            status(signed_form_or_delegate(&state, global, delegate).await),
            StatusCode::OK
        );
        let own = signed_request(SERVICE_SECRET, "api", now, "n2");
        assert_eq!(
            status(signed_form_or_delegate(&state, own, delegate).await),
            StatusCode::OK
        );
        // Spent: the same signature again is a replay.
        let again = signed_request(SERVICE_SECRET, "api", now, "n2");
        assert_eq!(
            status(signed_form_or_delegate(&state, again, delegate).await),
            StatusCode::CONFLICT
        );
        // Stale stamps are refused as with the global secret.
        let stale = signed_request(SERVICE_SECRET, "api", now - 3600, "n3");
        assert_eq!(
            status(signed_form_or_delegate(&state, stale, delegate).await),
            StatusCode::UNAUTHORIZED
        );
        // A service's secret does not open another service, nor the plain signed forms.
        let other = signed_request(SERVICE_SECRET, "web", now, "n4");
        assert_eq!(
            status(signed_form_or_delegate(&state, other, delegate).await),
            StatusCode::UNAUTHORIZED
        );
        let plain = signed_request(SERVICE_SECRET, "api", now, "n5");
        assert_eq!(
            status(crate::web::api::job_exec::signed_form(&state, plain).await),
            StatusCode::UNAUTHORIZED
        );
        let wrong = signed_request("wrong", "api", now, "n6");
        assert_eq!(
            status(signed_form_or_delegate(&state, wrong, delegate).await),
            StatusCode::UNAUTHORIZED
        );
    }
}
