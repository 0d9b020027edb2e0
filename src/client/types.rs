//! The answers of the karajo API as typed values (spec 4.3): the environment, command
//! jobs, HTTP jobs, logs, heartbeat monitors and supervised services. They read the original's JSON (Go's zero time for "never",
//! durations in integer nanoseconds, log content in base64) and write it back the same
//! way, so `karajo job ... --json` prints what the server sent.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// `GET /karajo/api/environment`: the server's settings and every job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Env {
    /// Command jobs by name.
    #[serde(default)]
    pub jobs: BTreeMap<String, JobExec>,
    /// HTTP jobs by name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub http_jobs: BTreeMap<String, JobHttp>,
    /// `[karajo] name`.
    #[serde(default)]
    pub name: String,
    /// `[karajo] listen_address`.
    #[serde(default)]
    pub listen_address: String,
    /// `[karajo] dir_base`.
    #[serde(default)]
    pub dir_base: String,
    /// `[karajo] dir_public`.
    #[serde(default)]
    pub dir_public: String,
    /// The server's version.
    #[serde(default)]
    pub version: String,
    /// Default timeout of HTTP jobs.
    #[serde(default, with = "nanos")]
    pub http_timeout: Duration,
    /// How many command job runs execute at once.
    #[serde(default)]
    pub max_job_running: u64,
    /// `[karajo] is_development`.
    #[serde(default)]
    pub is_development: bool,
    /// Heartbeat monitors by name (karajo only; absent from the original's answer).
    #[serde(default)]
    pub monitors: BTreeMap<String, Monitor>,
    /// Supervised services by name (karajo only; absent when there are none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub services: BTreeMap<String, Service>,
}

/// A heartbeat monitor as the monitor API and the environment show it (monitors spec
/// A.6); empty fields are absent on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Monitor {
    /// The id.
    pub id: String,
    /// The name, as configured.
    pub name: String,
    /// `new`, `up`, `late`, `down` or `paused`.
    pub status: String,
    /// When the status last changed.
    #[serde(default, with = "go_time")]
    pub since: Option<Timestamp>,
    /// The ping path (`/backup`).
    #[serde(default)]
    pub path: String,
    /// The last check-in.
    #[serde(default, with = "go_time")]
    pub last_ping: Option<Timestamp>,
    /// What it said (`success`, `fail`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ping_kind: Option<String>,
    /// When the next check-in is due.
    #[serde(default, with = "go_time")]
    pub next_due: Option<Timestamp>,
    /// When the monitor goes down if nothing arrives.
    #[serde(default, with = "go_time")]
    pub down_at: Option<Timestamp>,
    /// Why it is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_reason: Option<String>,
    /// `ping`, `resume` or a time, while paused.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub paused_until: String,
    /// The counter of its last log.
    #[serde(default)]
    pub counter: u64,
    /// Its logs, oldest first.
    #[serde(default)]
    pub logs: Vec<LogSummary>,
}

/// A supervised service as the service API and the environment show it (monitors
/// spec B.10); empty, zero and false fields are absent on the wire. Durations are
/// read from nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// The id.
    pub id: String,
    /// The name, as configured.
    pub name: String,
    /// Always `service`.
    #[serde(default)]
    pub kind: String,
    /// The description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// `disabled`, `stopped`, `starting`, `running`, `backoff`, `stopping` or `fatal`.
    pub status: String,
    /// Whether it should run (the `enable` / `disable` controls).
    #[serde(default)]
    pub enabled: bool,
    /// The current or next instance is not restarted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub run_once: bool,
    /// The CAS counter, for a control's `cas=` precondition.
    #[serde(default)]
    pub cas: u64,
    /// The command.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub command: String,
    /// Lower starts first and stops last.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub priority: i64,
    /// `always`, `on-failure` or `never`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub restart: String,
    /// The first back-off delay.
    #[serde(default, with = "nanos", skip_serializing_if = "Duration::is_zero")]
    pub restart_delay: Duration,
    /// The back-off cap.
    #[serde(default, with = "nanos", skip_serializing_if = "Duration::is_zero")]
    pub restart_delay_max: Duration,
    /// Failed starts in a row allowed before `fatal`.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub start_retries: u32,
    /// `delay`, `notify` or `ping`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ready: String,
    /// The signal that stops it (`TERM`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    /// How long a stop may take before SIGKILL.
    #[serde(default, with = "nanos", skip_serializing_if = "Duration::is_zero")]
    pub stop_timeout: Duration,
    /// How often a ready instance must ping; zero when off.
    #[serde(default, with = "nanos", skip_serializing_if = "Duration::is_zero")]
    pub ping_timeout: Duration,
    /// The pid file, in pid-file mode.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pid_file: String,
    /// The current instance's UUID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instance: String,
    /// The tracked process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// When the current instance was spawned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<Timestamp>,
    /// When it became ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<Timestamp>,
    /// Its last ping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    /// Instances in a row that ended before ready.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub failures: u32,
    /// When the next instance starts, in `backoff`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_start: Option<Timestamp>,
    /// What comes after the stop in progress.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stop_target: String,
    /// How the last instance ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<ServiceExit>,
    /// What the instance says about itself.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status_text: String,
    /// The instance's key/value map.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keyvalue: BTreeMap<String, serde_json::Value>,
    /// The counter of the newest log segment.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub counter: u64,
    /// Its log segments, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogSummary>,
    /// Ended instances, newest first (only when asked for with `history=1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<ServiceHistoryEntry>>,
}

/// How a service's last instance ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceExit {
    /// The exit code; `None` when unknown or when a signal ended it.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The signal name without `SIG`, if a signal ended it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signal: String,
    /// `exited`, `stopped`, `liveness`, `max_runtime`, `start_timeout`,
    /// `start_failed`, `orphaned` or `lost`.
    pub reason: String,
    /// When it ended.
    pub at: Timestamp,
}

/// One ended instance of a service (monitors spec B.9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceHistoryEntry {
    /// The instance's UUID; empty when the spawn itself failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instance: String,
    /// The tracked pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// When it was spawned.
    pub started: Timestamp,
    /// When it became ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<Timestamp>,
    /// Its last ping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    /// When it ended.
    pub stopped: Timestamp,
    /// The exit code; `None` when unknown or when a signal ended it.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The signal name without `SIG`, or empty.
    #[serde(default)]
    pub signal: String,
    /// Why it ended.
    pub reason: String,
    /// Whether the ending was clean.
    #[serde(default)]
    pub clean: bool,
    /// Its log segments.
    #[serde(default)]
    pub counters: Vec<u64>,
    /// From start to end.
    #[serde(default, with = "nanos")]
    pub duration: Duration,
    /// Its key/value map when it ended.
    #[serde(default)]
    pub keyvalue: BTreeMap<String, serde_json::Value>,
}

impl Env {
    /// The service whose id is `id`.
    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.values().find(|s| s.id == id)
    }

    /// The monitor whose id is `id`.
    pub fn monitor(&self, id: &str) -> Option<&Monitor> {
        self.monitors.values().find(|m| m.id == id)
    }

    /// The command job whose id is `id`.
    pub fn job_exec(&self, id: &str) -> Option<&JobExec> {
        self.jobs.values().find(|job| job.id == id)
    }
}

/// A log in a job's `logs` list (no content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSummary {
    /// The job's id.
    pub job_id: String,
    /// The log's name: `<id>.<counter>.<status>`, or `<id>.<counter>` while it runs.
    pub name: String,
    /// `running`, `success`, `failed`, `canceled` or `paused`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// The run's counter.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub counter: u64,
}

/// A whole log, from the log endpoints; `content` is decoded from base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLog {
    /// The job's id.
    pub job_id: String,
    /// The log's name.
    pub name: String,
    /// The run's status.
    pub status: String,
    /// The run's counter.
    pub counter: u64,
    /// The log's bytes.
    #[serde(with = "base64_bytes")]
    pub content: Vec<u8>,
}

/// The fields both job kinds have (the original's `JobBase`), in its order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobBase {
    /// When the last run ended (as the original); `None` for never.
    #[serde(default, with = "go_time")]
    pub last_run: Option<Timestamp>,
    /// When the next run is due; `None` when unknown.
    #[serde(default, with = "go_time")]
    pub next_run: Option<Timestamp>,
    /// The id.
    pub id: String,
    /// The name, as configured.
    pub name: String,
    /// The description (HTML).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The status; empty after a resume of a command job on the original.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// The schedule as written.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schedule: String,
    /// `[notif]` names told about a success.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notif_on_success: Vec<String>,
    /// `[notif]` names told about a failure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notif_on_failed: Vec<String>,
    /// The logs kept, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogSummary>,
    /// The interval; zero when the job has none.
    #[serde(default, with = "nanos", skip_serializing_if = "Duration::is_zero")]
    pub interval: Duration,
    /// How many logs are kept.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub log_retention: u64,
    /// The schedule's time zone when not UTC (karajo-rs only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub timezone: String,
}

/// A command job (`[job "..."]`, the original's `JobExec`). Its [`JobBase`] fields are
/// reachable directly (`job.status`) through `Deref`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobExec {
    /// Web hook path (`/hello`); empty when the job has none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// `hmac-sha256`, `github` or `sourcehut`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth_kind: String,
    /// The header of `hmac-sha256` web hook signatures.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub header_sign: String,
    /// The shell commands.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// What every job kind has.
    #[serde(flatten)]
    pub base: JobBase,
    /// The run time limit; zero when unset (karajo-rs only).
    #[serde(default, with = "nanos", skip_serializing_if = "Duration::is_zero")]
    pub timeout: Duration,
    /// The events a GitHub or SourceHut delivery must have to run the job (karajo-rs
    /// only); empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hook_events: Vec<String>,
    /// The ref globs a delivery's ref must match (karajo-rs only); empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hook_refs: Vec<String>,
    /// The run parameters the job declares (karajo-rs only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<ParamDecl>,
}

/// A run parameter a command job declares (`param = NAME` or `NAME=default`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamDecl {
    /// The name, upper-case.
    pub name: String,
    /// The default; `None` when the parameter is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// An HTTP job (`[job.http "..."]`, the original's `JobHTTP`). Its [`JobBase`] fields
/// are reachable directly through `Deref`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobHttp {
    /// The header that receives the request's signature.
    #[serde(default)]
    pub header_sign: String,
    /// `GET`, `POST`, `PUT` or `DELETE`.
    #[serde(default)]
    pub http_method: String,
    /// The URL requested.
    #[serde(default)]
    pub http_url: String,
    /// `query`, `form` or `json`.
    #[serde(default)]
    pub http_request_type: String,
    /// Extra request headers, `Name: value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_headers: Vec<String>,
    /// What every job kind has.
    #[serde(flatten)]
    pub base: JobBase,
    /// The request timeout.
    #[serde(default, with = "nanos")]
    pub http_timeout: Duration,
    /// TLS certificates are not checked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub http_insecure: bool,
}

impl std::ops::Deref for JobExec {
    type Target = JobBase;

    fn deref(&self) -> &JobBase {
        &self.base
    }
}

impl std::ops::Deref for JobHttp {
    type Target = JobBase;

    fn deref(&self) -> &JobBase {
        &self.base
    }
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

/// `null` reads as the default value (the original writes `null` for an empty map).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Go's `time.Time` in JSON: RFC 3339, with the zero time `0001-01-01T00:00:00Z` for
/// "never".
mod go_time {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    const ZERO: &str = "0001-01-01T00:00:00Z";

    pub(super) fn serialize<S: Serializer>(
        at: &Option<Timestamp>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(t) => s.serialize_str(&t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
            None => s.serialize_str(ZERO),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        let text = Option::<String>::deserialize(d)?.unwrap_or_default();
        if text.is_empty() || text.starts_with("0001-01-01T") {
            return Ok(None);
        }
        text.parse::<Timestamp>()
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("time {text:?}: {e}")))
    }
}

/// Go's `time.Duration` in JSON: integer nanoseconds. Negative values read as zero.
mod nanos {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let n = Option::<i64>::deserialize(d)?.unwrap_or(0);
        Ok(Duration::from_nanos(u64::try_from(n).unwrap_or(0)))
    }
}

/// Bytes as standard, padded base64 (the log endpoints' `content`).
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = Option::<String>::deserialize(d)?.unwrap_or_default();
        STANDARD
            .decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("content is not base64: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_reads_and_writes_the_original_json() {
        let text = r#"{"path":"/test-job-success","auth_kind":"hmac-sha256","header_sign":"X-Karajo-Sign","commands":["echo ok"],"last_run":"2023-01-09T00:00:00Z","next_run":"0001-01-01T00:00:00Z","id":"test_job_success","name":"Test job success","status":"success","logs":[{"job_id":"test_job_success","name":"test_job_success.1.success","status":"success","counter":1}],"interval":60000000000,"log_retention":5}"#;
        let job: JobExec = serde_json::from_str(text).unwrap();
        assert_eq!(job.id, "test_job_success");
        assert_eq!(job.last_run, Some("2023-01-09T00:00:00Z".parse().unwrap()));
        assert_eq!(job.next_run, None);
        assert_eq!(job.interval, Duration::from_secs(60));
        assert_eq!(job.logs[0].counter, 1);
        assert_eq!(serde_json::to_string(&job).unwrap(), text);
    }

    #[test]
    fn a_log_content_is_decoded_from_base64() {
        let text = r#"{"job_id":"x","name":"x.1.success","status":"success","counter":1,"content":"aGVsbG8K"}"#;
        let log: JobLog = serde_json::from_str(text).unwrap();
        assert_eq!(log.content, b"hello\n");
        assert_eq!(serde_json::to_string(&log).unwrap(), text);
        let bad = text.replace("aGVsbG8K", "not base64!");
        assert!(serde_json::from_str::<JobLog>(&bad).is_err());
    }

    #[test]
    fn an_http_job_reads_the_spec_shape() {
        let text = r#"{"header_sign":"X-Karajo-Sign","http_method":"POST","http_url":"/x","http_request_type":"json","http_headers":["X: Y"],"last_run":"2023-01-09T00:00:00Z","next_run":"2023-01-09T00:01:00Z","id":"test_success","name":"Test success","interval":60000000000,"log_retention":5,"http_timeout":300000000000}"#;
        let job: JobHttp = serde_json::from_str(text).unwrap();
        assert_eq!(job.http_headers, ["X: Y"]);
        assert_eq!(job.http_timeout, Duration::from_secs(300));
        assert!(!job.http_insecure);
        assert_eq!(serde_json::to_string(&job).unwrap(), text);
    }

    #[test]
    fn a_service_reads_the_spec_shape_and_writes_it_back() {
        let text = r#"{"id":"api","name":"API","kind":"service","status":"running","enabled":true,"cas":42,"command":"exec ./api","priority":100,"restart":"on-failure","restart_delay":1000000000,"restart_delay_max":60000000000,"start_retries":3,"ready":"delay","stop_signal":"TERM","stop_timeout":10000000000,"instance":"0193","pid":4242,"started":"2026-11-22T10:00:00Z","ready_at":"2026-11-22T10:00:01.25Z","last_exit":{"exit_code":null,"signal":"KILL","reason":"exited","at":"2026-11-22T09:59:59Z"},"keyvalue":{"port":8080},"counter":18,"logs":[{"job_id":"api","name":"api.18","status":"running","counter":18}],"history":[{"instance":"0192","pid":4000,"started":"2026-11-22T09:00:00Z","stopped":"2026-11-22T09:59:59Z","exit_code":null,"signal":"KILL","reason":"exited","clean":false,"counters":[17],"duration":3599000000000,"keyvalue":{}}]}"#;
        let service: Service = serde_json::from_str(text).unwrap();
        assert_eq!(service.cas, 42);
        assert_eq!(service.restart_delay, Duration::from_secs(1));
        assert_eq!(service.ready_at.unwrap().subsec_millisecond(), 250);
        let history = service.history.as_ref().unwrap();
        assert_eq!(history[0].duration, Duration::from_secs(3599));
        assert_eq!(history[0].exit_code, None);
        assert_eq!(serde_json::to_string(&service).unwrap(), text);
        // The always-present fields alone.
        let bare: Service = serde_json::from_str(
            r#"{"id":"a","name":"a","kind":"service","status":"disabled","enabled":false,"cas":0}"#,
        )
        .unwrap();
        assert!(bare.history.is_none() && bare.logs.is_empty());
    }

    #[test]
    fn an_environment_accepts_null_http_jobs() {
        let env: Env =
            serde_json::from_str(r#"{"jobs":{},"http_jobs":null,"name":"k","version":"1"}"#)
                .unwrap();
        assert!(env.http_jobs.is_empty());
        assert_eq!(env.name, "k");
    }
}
