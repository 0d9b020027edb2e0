//! The heartbeat monitors' API (monitors spec A.3, A.6, A.9): the ping routes
//! `/karajo/api/monitor/ping/<path>[/start|/fail|/log|/<0-255>]` for HEAD, GET and
//! POST, the monitor read `GET /karajo/api/monitor?id=`, and the signed form controls
//! `pause` and `resume`. A ping is resolved by path (404 before auth), authenticated
//! (403, nothing recorded), checked (405 for `post_only`, 400 for a bad `rid`,
//! `next_in` or exit status, 413 past the house body limit), turned into a log block
//! and handed to the scheduler, which answers once what it changed is on disk.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Serialize;
use subtle::ConstantTimeEq as _;

use super::error::ApiError;
use super::job_exec::{form_value, signed_form};
use super::json::{self, LogSummaryJson};
use crate::config::{Cadence, MonitorAuth};
use crate::monitor::{NextIn, PauseUntil, Ping, PingRouteError, RunId, Signal};
use crate::scheduler::MonitorView;
use crate::store::monitor_files::PingBlock;
use crate::web::AppState;
use crate::web::body::{read, refuse};

/// The header a ping may carry its token in.
const TOKEN_HEADER: &str = "x-karajo-token";

/// The header every ping answer carries.
const PING_BODY_LIMIT: &str = "ping-body-limit";

impl ApiError {
    pub(super) fn monitor_not_found(what: &str) -> Self {
        Self::with(
            StatusCode::NOT_FOUND,
            "ERR_MONITOR_NOT_FOUND",
            format!("monitor not found: {what}"),
        )
    }

    pub(super) fn monitor_forbidden() -> Self {
        Self::with(StatusCode::FORBIDDEN, "ERR_MONITOR_FORBIDDEN", "forbidden")
    }

    /// A signed ping whose stamp is refused (missing, stale, empty body): the
    /// monitor's 403, with the reason after `forbidden: `.
    fn monitor_forbidden_because(why: &dyn std::fmt::Display) -> Self {
        Self::with(
            StatusCode::FORBIDDEN,
            "ERR_MONITOR_FORBIDDEN",
            format!("forbidden: {why}"),
        )
    }

    fn bad_ping(detail: impl std::fmt::Display) -> Self {
        Self::with(
            StatusCode::BAD_REQUEST,
            "ERR_MONITOR_BAD_PING",
            format!("invalid ping: {detail}"),
        )
    }

    fn method_not_allowed() -> Self {
        Self::with(
            StatusCode::METHOD_NOT_ALLOWED,
            "ERR_METHOD_NOT_ALLOWED",
            "method not allowed",
        )
    }
}

/// `HEAD|GET|POST /karajo/api/monitor/ping/<rest>`.
pub(super) async fn ping(
    State(state): State<AppState>,
    Path(rest): Path<String>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: Request,
) -> Response {
    let peer = connect.map(|Extension(ConnectInfo(addr))| addr);
    match take_ping(&state, &rest, peer, request).await {
        Ok(response) => response,
        Err(response) => response,
    }
}

async fn take_ping(
    state: &AppState,
    rest: &str,
    peer: Option<SocketAddr>,
    request: Request,
) -> Result<Response, Response> {
    let snapshot = state.scheduler.snapshot();
    let (parts, body) = request.into_parts();
    let resolved = snapshot
        .ping_routes
        .resolve(rest)
        .map(|(id, signal)| (snapshot.monitor(id.as_str()).cloned(), signal));
    let (monitor, signal) = match resolved {
        Ok((Some(monitor), signal)) => (monitor, signal),
        Ok((None, _)) => {
            let err = ApiError::monitor_not_found(&format!("/{}", rest.trim_matches('/')));
            return Err(refuse(&state.bodies, &parts.headers, body, err).await);
        }
        Err(PingRouteError::NotFound(_)) => {
            let err = ApiError::monitor_not_found(&format!("/{}", rest.trim_matches('/')));
            return Err(refuse(&state.bodies, &parts.headers, body, err).await);
        }
        Err(PingRouteError::BadPing(bad)) => {
            return Err(refuse(&state.bodies, &parts.headers, body, ApiError::bad_ping(bad)).await);
        }
    };
    let spec = &monitor.spec;
    let query = parts.uri.query().unwrap_or("");
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    // Auth first, before `post_only` and before reading the body.
    if let MonitorAuth::Token(token) = &spec.auth {
        let given = param("token").or_else(|| {
            parts
                .headers
                .get(TOKEN_HEADER)
                .and_then(|v| v.to_str().ok())
        });
        let good = given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(token.as_bytes())));
        if !good {
            let err = ApiError::monitor_forbidden();
            return Err(refuse(&state.bodies, &parts.headers, body, err).await);
        }
    }
    let is_post = parts.method == Method::POST;
    if matches!(spec.auth, MonitorAuth::HmacSha256 { .. }) && !is_post {
        let err = ApiError::monitor_forbidden();
        return Err(refuse(&state.bodies, &parts.headers, body, err).await);
    }
    if spec.post_only && !is_post {
        let err = ApiError::method_not_allowed();
        return Err(refuse(&state.bodies, &parts.headers, body, err).await);
    }
    let rid = param("rid")
        .filter(|v| !v.is_empty())
        .map(RunId::parse)
        .transpose()
        .map_err(|e| ApiError::bad_ping(e).into_response())?;
    let next_in = param("next_in")
        .filter(|v| !v.is_empty())
        .map(NextIn::parse)
        .transpose()
        .map_err(|e| ApiError::bad_ping(e).into_response())?;
    let bytes = if is_post {
        read(
            &state.bodies,
            &parts.headers,
            body,
            snapshot.config.max_body_size,
        )
        .await
        .map_err(IntoResponse::into_response)?
        .bytes
    } else {
        bytes::Bytes::new()
    };
    if let MonitorAuth::HmacSha256 {
        secret,
        header_sign,
    } = &spec.auth
    {
        let signature = parts.headers.get(header_sign).and_then(|v| v.to_str().ok());
        let id = crate::auth::verify_global(secret.as_bytes(), signature, &bytes)
            .map_err(|_| ApiError::monitor_forbidden().into_response())?;
        state
            .replay
            .accept_signed(
                id,
                &bytes,
                &snapshot.config.stamp_rules(),
                state.clock.now(),
            )
            .map_err(|err| {
                if err.is_reuse() {
                    ApiError::replayed(err.to_string()).into_response()
                } else {
                    ApiError::monitor_forbidden_because(&err).into_response()
                }
            })?;
    }
    let now = state.clock.now();
    let block = ping_block(
        now,
        signal,
        rid.as_ref(),
        next_in,
        &parts.method,
        peer,
        &parts.headers,
        &bytes,
        spec.ping_body_limit,
    );
    let ping = Ping {
        signal,
        rid,
        next_in,
    };
    let Some(answer) = state.scheduler.ping(spec.id.clone(), ping, block).await else {
        return Err(ApiError::monitor_not_found(spec.id.as_str()).into_response());
    };
    if !answer.ignored {
        state
            .metrics
            .monitor_checkin(spec.id.as_str(), signal.as_str());
    }
    #[derive(Serialize)]
    struct PingJson<'a> {
        id: &'a str,
        status: &'a str,
        #[serde(skip_serializing_if = "Option::is_none", with = "opt_time")]
        next_due: Option<Timestamp>,
        #[serde(skip_serializing_if = "Option::is_none")]
        counter: Option<u64>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        ignored: bool,
    }
    let mut response = json::data(&PingJson {
        id: spec.id.as_str(),
        status: answer.status,
        next_due: answer.next_due,
        counter: answer.counter,
        ignored: answer.ignored,
    });
    response.headers_mut().insert(
        PING_BODY_LIMIT,
        HeaderValue::from(spec.ping_body_limit as u64),
    );
    Ok(response)
}

/// The lines a ping adds to its log: the header (`=== SUCCESS rid=42 via GET from
/// 10.0.0.7 "curl/8.5.0"`) and what its body holds, within `limit` bytes. The token and
/// the query string are never written; what the client sends in headers is cleaned of
/// control characters so it cannot forge log lines.
#[allow(clippy::too_many_arguments)]
fn ping_block(
    at: Timestamp,
    signal: Signal,
    rid: Option<&RunId>,
    next_in: Option<NextIn>,
    method: &Method,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    body: &[u8],
    limit: usize,
) -> PingBlock {
    let mut header = match signal {
        Signal::Log => "--- LOG".to_string(),
        Signal::Exit(code) => format!("=== EXIT {code}"),
        other => format!("=== {}", other.as_str().to_ascii_uppercase()),
    };
    if let Some(rid) = rid {
        header.push_str(&format!(" rid={rid}"));
    }
    if let Some(next_in) = next_in {
        header.push_str(&format!(" next_in={}s", next_in.seconds()));
    }
    header.push_str(&sender_note(method, peer, headers));
    if !body.is_empty() {
        header.push_str(&format!(" ({} bytes)", body.len()));
    }
    let mut lines = vec![header];
    let kept = &body[..body.len().min(limit)];
    match std::str::from_utf8(kept) {
        Err(e) if e.valid_up_to() + 4 < kept.len() || e.error_len().is_some() => {
            lines.push(format!("(binary body, {} bytes, not stored)", body.len()));
        }
        result => {
            let text = match result {
                Ok(text) => text,
                // Cut inside a character at the limit: keep what is whole.
                Err(e) => std::str::from_utf8(&kept[..e.valid_up_to()]).unwrap_or(""),
            };
            lines.extend(
                text.trim_end_matches('\n')
                    .split('\n')
                    .filter(|_| !text.is_empty())
                    .map(|l| l.trim_end_matches('\r').to_string()),
            );
            if body.len() > kept.len() {
                lines.push(format!(
                    "… {} more bytes not stored",
                    body.len() - kept.len()
                ));
            }
        }
    }
    PingBlock { at, lines }
}

/// Who sent a check-in, for its log's header line: ` via GET from 10.0.0.7
/// (X-Forwarded-For …) "curl/8.5.0"`, with what the client sent cleaned of control
/// characters so it cannot forge log lines.
pub(super) fn sender_note(
    method: &Method,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> String {
    let mut note = format!(" via {method}");
    if let Some(peer) = peer {
        note.push_str(&format!(" from {}", peer.ip().to_canonical()));
    }
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(clean_header)
    };
    if let Some(forwarded) = text("x-forwarded-for") {
        note.push_str(&format!(" (X-Forwarded-For {forwarded})"));
    }
    if let Some(agent) = text("user-agent") {
        note.push_str(&format!(" \"{agent}\""));
    }
    note
}

fn clean_header(value: &str) -> String {
    value
        .chars()
        .take(256)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The query of `GET /karajo/api/monitor`.
#[derive(Debug, serde::Deserialize)]
pub(super) struct MonitorQuery {
    #[serde(default)]
    id: String,
}

/// `GET /karajo/api/monitor?id=ID`.
pub(super) async fn get(
    State(state): State<AppState>,
    Query(query): Query<MonitorQuery>,
) -> Result<Response, ApiError> {
    let snapshot = state.scheduler.snapshot();
    let id = query.id.to_ascii_lowercase();
    let view = snapshot
        .monitor(&id)
        .ok_or_else(|| ApiError::monitor_not_found(&query.id))?;
    Ok(json::data(&MonitorJson::new(view)))
}

/// `GET /karajo/api/monitor/log?id=ID&counter=N`: one check-in log, in the shape of a
/// job's log.
pub(super) async fn log(
    State(state): State<AppState>,
    Query(query): Query<super::job_exec::LogQuery>,
) -> Result<Response, ApiError> {
    super::job_exec::serve_log(&state, crate::job::JobKind::Monitor, query).await
}

/// `POST /karajo/api/monitor/pause`: a signed form with `id` and an optional `until`
/// (`ping`, `resume` or an RFC 3339 time).
pub(super) async fn pause(State(state): State<AppState>, request: Request) -> Response {
    let form = match signed_form(&state, request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let id = form_value(&form, "id")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let until = match form_value(&form, "until").filter(|u| !u.is_empty()) {
        None => None,
        Some(text) => {
            match parse_until(&text) {
                Some(until) => Some(until),
                None => {
                    return ApiError::with(
                    StatusCode::BAD_REQUEST,
                    "ERR_MONITOR_BAD_REQUEST",
                    format!("invalid request: until {text:?} is not ping, resume or an RFC 3339 time"),
                )
                .into_response();
                }
            }
        }
    };
    let view = state
        .scheduler
        .pause_monitor(crate::job::JobId::from_raw(id.clone()), until)
        .await;
    monitor_reply(view, &id)
}

/// `POST /karajo/api/monitor/resume`: a signed form with `id`.
pub(super) async fn resume(State(state): State<AppState>, request: Request) -> Response {
    let form = match signed_form(&state, request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let id = form_value(&form, "id")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let view = state
        .scheduler
        .resume_monitor(crate::job::JobId::from_raw(id.clone()))
        .await;
    monitor_reply(view, &id)
}

fn monitor_reply(view: Option<Arc<MonitorView>>, id: &str) -> Response {
    match view {
        Some(view) => json::data(&MonitorJson::new(&view)),
        None => ApiError::monitor_not_found(id).into_response(),
    }
}

fn parse_until(text: &str) -> Option<PauseUntil> {
    match text {
        "ping" => Some(PauseUntil::Ping),
        "resume" => Some(PauseUntil::Resume),
        time => time.parse().ok().map(PauseUntil::Time),
    }
}

/// A monitor in JSON (monitors spec A.6). Empty values are left out; secrets never
/// appear.
#[derive(Debug, Serialize)]
pub struct MonitorJson<'a> {
    id: &'a str,
    name: &'a str,
    kind: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    status: &'static str,
    #[serde(with = "opt_time")]
    since: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<String>,
    grace: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_runtime: Option<u128>,
    #[serde(skip_serializing_if = "str::is_empty")]
    path: &'a str,
    auth_kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_time")]
    last_ping: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_ping_kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_duration: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_time")]
    next_due: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_time")]
    down_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    down_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<u8>,
    runs: Vec<RunJson>,
    #[serde(skip_serializing_if = "String::is_empty")]
    paused_until: String,
    counter: u64,
    logs: Vec<LogSummaryJson>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    notif_on_down: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    notif_on_up: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    notif_on_late: &'a [String],
    log_retention: usize,
    dynamic: bool,
}

/// An open run in a monitor's JSON.
#[derive(Debug, Serialize)]
struct RunJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    rid: Option<String>,
    #[serde(with = "opt_time")]
    started: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_time")]
    deadline: Option<Timestamp>,
    counter: u64,
}

impl<'a> MonitorJson<'a> {
    /// The JSON of `view`.
    pub fn new(view: &'a MonitorView) -> Self {
        use crate::monitor::Status;
        let spec = &view.spec;
        let rules = &spec.rules;
        let state = &view.state;
        let (period, schedule, timezone) = match &rules.cadence {
            Cadence::Period(p) => (Some(p.as_nanos()), None, None),
            Cadence::Schedule { schedule, .. } => (
                None,
                Some(schedule.as_str().to_string()),
                schedule.timezone().iana_name().map(str::to_string),
            ),
        };
        let (down_reason, exit_code) = match state.status {
            Status::Down(outage) => (Some(outage.reason.as_str()), outage.exit_code),
            _ => (None, None),
        };
        let paused_until = match state.status {
            Status::Paused(PauseUntil::Ping) => "ping".to_string(),
            Status::Paused(PauseUntil::Resume) => "resume".to_string(),
            Status::Paused(PauseUntil::Time(t)) => t.to_string(),
            _ => String::new(),
        };
        let down_at = match state.status {
            Status::Up | Status::Late { .. } if state.runs.is_empty() => view.deadline,
            _ => None,
        };
        Self {
            id: spec.id.as_str(),
            name: &spec.name,
            kind: "monitor",
            description: &spec.description,
            status: state.status.as_str(),
            since: Some(state.since),
            period,
            schedule,
            timezone,
            grace: rules.grace.as_nanos(),
            max_runtime: rules.max_runtime.map(|d| d.as_nanos()),
            path: &spec.path,
            auth_kind: if spec.is_dynamic() {
                "watchtower"
            } else {
                spec.auth.as_str()
            },
            last_ping: state.last_ping,
            last_ping_kind: state.last_ping_kind.map(Signal::as_str),
            last_duration: state.last_duration.map(|d| d.as_nanos()),
            next_due: state.next_due(),
            down_at: down_at.filter(|d| Some(*d) != state.next_due()),
            down_reason,
            exit_code,
            runs: state
                .runs
                .iter()
                .map(|run| RunJson {
                    rid: run.rid.as_ref().map(ToString::to_string),
                    started: Some(run.started),
                    deadline: rules.max_runtime.and_then(|max| {
                        jiff::SignedDuration::try_from(max)
                            .ok()
                            .and_then(|max| run.started.checked_add(max).ok())
                    }),
                    counter: run.counter,
                })
                .collect(),
            paused_until,
            counter: state.counter,
            logs: view
                .logs
                .iter()
                .map(|l| LogSummaryJson::new(spec.id.as_str(), *l))
                .collect(),
            notif_on_down: &rules.notif_on_down,
            notif_on_up: &rules.notif_on_up,
            notif_on_late: &rules.notif_on_late,
            log_retention: spec.log_retention,
            dynamic: spec.is_dynamic(),
        }
    }
}

/// `Option<Timestamp>` as RFC 3339 (sub-second digits only when not zero).
mod opt_time {
    use jiff::Timestamp;
    use serde::Serializer;

    pub(super) fn serialize<S: Serializer>(
        at: &Option<Timestamp>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => s.serialize_str(&at.to_string()),
            None => s.serialize_none(),
        }
    }
}
