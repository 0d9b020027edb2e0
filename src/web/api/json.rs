//! JSON the way the original writes it (spec 4.2, 4.3): Go's `encoding/json` escapes
//! `<`, `>` and `&`, times are RFC 3339 in UTC (the zero time when unset), durations are
//! integer nanoseconds, and struct fields come in the original's order with its
//! omit-when-empty rules.

use std::borrow::Cow;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use jiff::Timestamp;
use serde::Serialize;

use crate::cluster::coordinator::RecordTable;
use crate::cluster::decide::ActiveState;
use crate::cluster::status::ClusterInfo;
use crate::redact::{self, SecretHeaders};
use crate::scheduler::{JobDefKind, JobView, LogSummary};

/// Go's zero `time.Time` in JSON.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Serializes `value` as Go would: HTML-sensitive characters escaped.
pub fn to_string<T: Serialize>(value: &T) -> String {
    let plain = serde_json::to_string(value).unwrap_or_else(|_| "null".to_string());
    escape_like_go(&plain)
}

/// Escapes `<`, `>`, `&`, U+2028 and U+2029 as Go does. These characters can only
/// occur inside JSON strings, so replacing them in the serialized text is exact.
fn escape_like_go(json: &str) -> String {
    if !json.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return json.to_string();
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// A time as the original writes it: RFC 3339, UTC, whole seconds; the zero time for
/// "never".
pub fn time(at: Option<Timestamp>) -> String {
    match at.and_then(|t| t.round(jiff::Unit::Second).ok()) {
        Some(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => ZERO_TIME.to_string(),
    }
}

/// A JSON response with the given status and already-serialized body.
pub fn response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `{"data":<data>,"code":200}`.
pub fn data<T: Serialize>(data: &T) -> Response {
    #[derive(Serialize)]
    struct Envelope<'a, T> {
        data: &'a T,
        code: u16,
    }
    response(StatusCode::OK, to_string(&Envelope { data, code: 200 }))
}

/// `{"data":<data>,"message":"OK","code":200}` (the run endpoint).
pub fn data_ok<T: Serialize>(data: &T) -> Response {
    #[derive(Serialize)]
    struct Envelope<'a, T> {
        data: &'a T,
        message: &'static str,
        code: u16,
    }
    let envelope = Envelope {
        data,
        message: "OK",
        code: 200,
    };
    response(StatusCode::OK, to_string(&envelope))
}

/// `{"message":..,"name":..,"code":..}`, `name` omitted when empty.
pub fn error_object(message: &str, name: &str, code: u16) -> String {
    #[derive(Serialize)]
    struct ErrorObject<'a> {
        message: &'a str,
        #[serde(skip_serializing_if = "str::is_empty")]
        name: &'a str,
        code: u16,
    }
    to_string(&ErrorObject {
        message,
        name,
        code,
    })
}

/// A log in a job's `logs` list: `{"job_id","name","status","counter"}`.
#[derive(Debug, Serialize)]
pub struct LogSummaryJson {
    job_id: String,
    name: String,
    status: &'static str,
    counter: u64,
}

impl LogSummaryJson {
    /// The summary of log `log` of job `job_id`; a running log is named `<id>.<n>` as
    /// in the original.
    pub fn new(job_id: &str, log: LogSummary) -> Self {
        let name = match log.status {
            crate::job::RunStatus::Running => format!("{job_id}.{}", log.counter),
            status => format!("{job_id}.{}.{}", log.counter, status.as_str()),
        };
        Self {
            job_id: job_id.to_string(),
            name,
            status: log.status.as_str(),
            counter: log.counter,
        }
    }
}

/// The fields every job kind shares (`JobBase`, spec 4.3), in the original's order.
#[derive(Debug, Serialize)]
pub struct JobBaseJson<'a> {
    last_run: String,
    next_run: String,
    id: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    status: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    schedule: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    notif_on_success: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    notif_on_failed: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    logs: Vec<LogSummaryJson>,
    #[serde(skip_serializing_if = "is_zero")]
    interval: u128,
    #[serde(skip_serializing_if = "is_zero_usize")]
    log_retention: usize,
    /// New: the schedule's time zone; omitted for UTC.
    #[serde(skip_serializing_if = "str::is_empty")]
    timezone: &'a str,
}

impl<'a> JobBaseJson<'a> {
    fn new(view: &'a JobView) -> Self {
        let def = &view.def;
        let id = view.id().as_str();
        let common = &*def.common;
        let schedule = common.schedule.as_ref();
        let timezone = schedule
            .and_then(|s| s.timezone().iana_name())
            .filter(|name| *name != "UTC")
            .unwrap_or("");
        let [notif_on_success, notif_on_failed, _] = common.notif_lists();
        Self {
            last_run: time(view.last_run),
            next_run: time(view.next_run),
            id,
            name: view.name(),
            description: &common.description,
            status: view.status.as_str(),
            schedule: schedule.map_or("", |s| s.as_str()),
            notif_on_success,
            notif_on_failed,
            logs: view
                .logs
                .iter()
                .map(|l| LogSummaryJson::new(id, *l))
                .collect(),
            interval: common.interval.map_or(0, |d| d.as_nanos()),
            log_retention: common.log_retention,
            timezone,
        }
    }
}

fn is_zero(n: &u128) -> bool {
    *n == 0
}

fn is_zero_usize(n: &usize) -> bool {
    *n == 0
}

/// A command job (`JobExec`, spec 4.3) in the original's field order.
#[derive(Debug, Serialize)]
pub struct JobExecJson<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    path: &'a str,
    auth_kind: &'static str,
    header_sign: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    commands: &'a [String],
    #[serde(flatten)]
    base: JobBaseJson<'a>,
    /// New: the run time limit in nanoseconds; omitted when unset.
    #[serde(skip_serializing_if = "is_zero")]
    timeout: u128,
    /// New: `github_events` or `sourcehut_events`; omitted when empty.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    hook_events: &'a [String],
    /// New: `github_refs` or `sourcehut_refs`; omitted when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hook_refs: Vec<&'a str>,
    /// New: the declared run parameters; omitted when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    params: Vec<ParamJson<'a>>,
    /// Cluster mode only: the job's `run_on`, and its run in progress.
    #[serde(flatten)]
    cluster: Option<ClusterPlace>,
}

impl<'a> JobExecJson<'a> {
    /// The JSON of a command job's view; `None` for another kind.
    pub fn new(view: &'a JobView) -> Option<Self> {
        let JobDefKind::Exec { spec: cfg, .. } = &view.def.kind else {
            return None;
        };
        let common = &view.def.common;
        Some(Self {
            path: cfg.path.as_deref().unwrap_or(""),
            auth_kind: cfg.auth_kind.as_str(),
            header_sign: &common.header_sign,
            commands: &cfg.commands,
            base: JobBaseJson::new(view),
            timeout: cfg.timeout.map_or(0, |d| d.as_nanos()),
            hook_events: &cfg.hook_rules.events,
            hook_refs: cfg.hook_rules.refs.iter().map(|g| g.as_str()).collect(),
            params: cfg
                .params
                .list
                .iter()
                .map(|p| ParamJson {
                    name: &p.name,
                    default: p.default.as_deref(),
                })
                .collect(),
            cluster: None,
        })
    }

    /// The job with its place in the cluster (cluster mode); unchanged for `None`.
    pub fn placed(mut self, place: Option<ClusterPlace>) -> Self {
        if place.is_some() {
            self.cluster = place;
        }
        self
    }
}

/// A declared run parameter: its name and, unless required, its default.
#[derive(Debug, Serialize)]
struct ParamJson<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    default: Option<&'a str>,
}

/// An HTTP job (`JobHTTP`, spec 4.3) in the original's field order. The values of
/// secret headers are `<redacted>` and so is the user info of the URL
/// ([`crate::redact`]).
#[derive(Debug, Serialize)]
pub struct JobHttpJson<'a> {
    header_sign: &'a str,
    http_method: &'a str,
    http_url: Cow<'a, str>,
    http_request_type: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    http_headers: Vec<Cow<'a, str>>,
    #[serde(flatten)]
    base: JobBaseJson<'a>,
    http_timeout: u128,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    http_insecure: bool,
    /// Cluster mode only: the job's `run_on`, and its run in progress.
    #[serde(flatten)]
    cluster: Option<ClusterPlace>,
}

impl<'a> JobHttpJson<'a> {
    /// The JSON of an HTTP job's view; `None` for another kind.
    pub fn new(view: &'a JobView) -> Option<Self> {
        let JobDefKind::Http { spec: cfg, .. } = &view.def.kind else {
            return None;
        };
        let common = &view.def.common;
        let secret = SecretHeaders::new(&common.header_sign, &cfg.http_header_secret);
        Some(Self {
            header_sign: &common.header_sign,
            http_method: &cfg.http_method_text,
            http_url: redact::url(&cfg.http_url),
            http_request_type: &cfg.http_request_type_text,
            http_headers: cfg
                .http_header_lines
                .iter()
                .map(|line| secret.header_line(line))
                .collect(),
            base: JobBaseJson::new(view),
            http_timeout: cfg.http_timeout.map_or(0, |d| d.as_nanos()),
            http_insecure: cfg.http_insecure,
            cluster: None,
        })
    }

    /// The job with its place in the cluster (cluster mode); unchanged for `None`.
    pub fn placed(mut self, place: Option<ClusterPlace>) -> Self {
        if place.is_some() {
            self.cluster = place;
        }
        self
    }
}

/// Cluster mode: what a job object adds (cluster spec 12.2), its `run_on` and the run
/// its shared record has in progress, read from the coordinator's copy of the records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterPlace {
    run_on: String,
    /// While the job's record has a run in progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    active: Option<ActiveJson>,
}

/// `"active":{"run","node","state","since"}`: the run id, the node executing it (`null`
/// until a node accepts the order, and for a `run_on = all` fan-out), `dispatched` or
/// `running`, and when it was dispatched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveJson {
    run: String,
    node: Option<String>,
    state: &'static str,
    since: String,
}

impl ClusterPlace {
    /// The place of `view` in `cluster`; `None` on a single node. Borrows the records
    /// for the moment of the read.
    pub fn of(cluster: Option<&ClusterInfo>, view: &JobView) -> Option<Self> {
        let records = cluster?.coordinator.records();
        let table = records.borrow();
        Some(Self::in_table(&table, view))
    }

    /// The place of `view` with the records `table`.
    pub fn in_table(table: &RecordTable, view: &JobView) -> Self {
        let key = crate::cluster::state_key(&view.def.key());
        let active = table
            .get(&key)
            .and_then(|(record, _)| record.active.as_ref())
            .map(|active| ActiveJson {
                run: active.run.clone(),
                node: active.node.as_ref().map(|n| n.as_str().to_string()),
                state: match active.state {
                    ActiveState::Dispatched => "dispatched",
                    ActiveState::Running => "running",
                },
                since: time(Some(active.since)),
            });
        Self {
            run_on: view.def.common.run_on.to_string(),
            active,
        }
    }
}

/// A whole log (log endpoints): every field present, content in padded base64.
#[derive(Debug, Serialize)]
pub struct LogJson {
    job_id: String,
    name: String,
    status: &'static str,
    counter: u64,
    content: String,
}

/// The log endpoints' answer: `{"code":200,"data":<LogJson>}`.
#[derive(Debug, Serialize)]
struct LogEnvelope {
    code: u16,
    data: LogJson,
}

/// What ends the log endpoints' answer, after the base64 content.
const LOG_ENVELOPE_TAIL: &str = "\"}}";

impl LogJson {
    /// The JSON of log `log` of job `job_id` with its `content`.
    pub fn new(job_id: &str, log: LogSummary, content: &[u8]) -> Self {
        let summary = LogSummaryJson::new(job_id, log);
        Self {
            job_id: summary.job_id,
            name: summary.name,
            status: summary.status,
            counter: summary.counter,
            content: base64::engine::general_purpose::STANDARD.encode(content),
        }
    }

    /// The log endpoints' answer `{"code":200,"data":{..,"content":"<base64>"}}` of
    /// log `log` of job `job_id`, cut around the base64 so that the content can be
    /// streamed between: the text up to `"content":"`, and `"}}`. The three parts
    /// together are exactly [`LogJson::envelope`] of the content.
    pub fn envelope_parts(job_id: &str, log: LogSummary) -> (String, &'static str) {
        let empty = to_string(&LogEnvelope {
            code: 200,
            data: Self::new(job_id, log, b""),
        });
        let head = empty
            .strip_suffix(LOG_ENVELOPE_TAIL)
            .map(str::to_string)
            .unwrap_or(empty);
        (head, LOG_ENVELOPE_TAIL)
    }

    /// The whole answer of the log endpoints for a log whose content is in memory.
    pub fn envelope(job_id: &str, log: LogSummary, content: &[u8]) -> String {
        to_string(&LogEnvelope {
            code: 200,
            data: Self::new(job_id, log, content),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_characters_are_escaped_as_go_does() {
        assert_eq!(
            to_string(&"a && <i>b</i>"),
            r#""a \u0026\u0026 \u003ci\u003eb\u003c/i\u003e""#
        );
    }

    #[test]
    fn times_are_rfc3339_seconds_or_the_zero_time() {
        assert_eq!(time(None), ZERO_TIME);
        let t: Timestamp = "2023-01-09T00:00:00.6Z".parse().unwrap();
        assert_eq!(time(Some(t)), "2023-01-09T00:00:01Z");
    }

    #[test]
    fn the_log_envelope_in_parts_is_the_whole_envelope() {
        use crate::job::RunStatus;
        for (status, content) in [
            (RunStatus::Success, &b""[..]),
            (RunStatus::Running, b"a"),
            (RunStatus::Failed, b"<b>&\n\xff\x00 two\n"),
        ] {
            let log = LogSummary::new(7, status);
            let (head, tail) = LogJson::envelope_parts("a_job", log);
            let streamed = format!(
                "{head}{}{tail}",
                base64::engine::general_purpose::STANDARD.encode(content)
            );
            assert_eq!(streamed, LogJson::envelope("a_job", log, content));
        }
        let (head, tail) = LogJson::envelope_parts("x", LogSummary::new(2, RunStatus::Success));
        assert_eq!(
            head,
            r#"{"code":200,"data":{"job_id":"x","name":"x.2.success","status":"success","counter":2,"content":""#
        );
        assert_eq!(tail, r#""}}"#);
    }

    #[test]
    fn error_objects_omit_an_empty_name() {
        assert_eq!(
            error_object("empty or invalid signature", "", 401),
            r#"{"message":"empty or invalid signature","code":401}"#
        );
        assert_eq!(
            error_object("job is paused", "ERR_JOB_PAUSED", 412),
            r#"{"message":"job is paused","name":"ERR_JOB_PAUSED","code":412}"#
        );
    }
}
