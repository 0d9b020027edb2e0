//! The typed configuration that the rest of karajo reads: the `[karajo]` settings,
//! every command job and HTTP job with defaults applied and values validated, the
//! heartbeat monitors and the `[watchtower]` section, the typed `[notif]` sections
//! ([`super::notif`]) and the WUI users. Also the [`Diagnostic`] type that names a
//! problem by file and line. Only data here; [`super::load`] builds it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use jiff::tz::TimeZone;

pub use super::net::IpNet;
pub use super::notif::NotifConfig;
use crate::job::{AuthKind, JobId, JobKey, JobKind};
use crate::schedule::Schedule;

/// `name` default.
pub const DEFAULT_NAME: &str = "karajo";
/// `listen_address` default.
pub const DEFAULT_LISTEN_ADDRESS: &str = "127.0.0.1:31937";
/// `http_timeout` default (also used for `0`).
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(300);
/// `epoch_window` default.
pub const DEFAULT_EPOCH_WINDOW: Duration = crate::auth::replay::DEFAULT_EPOCH_WINDOW;
/// `epoch_skew` default.
pub const DEFAULT_EPOCH_SKEW: Duration = crate::auth::replay::DEFAULT_EPOCH_SKEW;
/// `max_body_size` default: 25 MiB.
pub const DEFAULT_MAX_BODY_SIZE: usize = 25 * 1024 * 1024;
/// `header_read_timeout` default.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// `idle_timeout` default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// `body_read_timeout` default.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// `max_sse_streams` default.
pub const DEFAULT_MAX_SSE_STREAMS: usize = 256;
/// `log_retention` default (also used for values ≤ 0).
pub const DEFAULT_LOG_RETENTION: usize = 5;
/// `kill_grace` default.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(5);
/// The shortest `interval`; shorter positive values are raised to it.
pub const MIN_INTERVAL: Duration = Duration::from_secs(60);
/// `[karajo] ping_body_limit` default: bytes of a ping's body that are stored.
pub const DEFAULT_PING_BODY_LIMIT: usize = 10_000;
/// `[karajo] event_retention` default: 30 days.
pub const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(720 * 3600);
/// `[karajo] event_day_max` default: 64 MiB of events per UTC day.
pub const DEFAULT_EVENT_DAY_MAX: u64 = 64 * 1024 * 1024;
/// The shortest monitor `period`.
pub const MIN_MONITOR_PERIOD: Duration = Duration::from_secs(1);
/// Monitor `grace` default.
pub const DEFAULT_MONITOR_GRACE: Duration = Duration::from_secs(5 * 60);
/// Monitor `early_tolerance` default.
pub const DEFAULT_EARLY_TOLERANCE: Duration = Duration::from_secs(60);
/// Monitor `log_retention` default.
pub const DEFAULT_MONITOR_LOG_RETENTION: usize = 20;
/// A monitor `token` shorter than this gets a warning.
pub const MIN_TOKEN_LEN: usize = 16;
/// The route prefix of monitor pings; a monitor's `path` follows it.
pub const MONITOR_PING_ROUTE: &str = "/karajo/api/monitor/ping";
/// `[watchtower] path` default: the mount point of the watchTower routes.
pub const DEFAULT_WATCHTOWER_PATH: &str = "/karajo/api/watchtower";
/// `[watchtower] max_monitors` default.
pub const DEFAULT_WATCHTOWER_MAX_MONITORS: usize = 1000;

/// One problem or warning found while loading, tied to a file and (when known) a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in.
    pub file: PathBuf,
    /// The 1-based line, or 0 when the problem is not about one line.
    pub line: usize,
    /// What is wrong, for a human.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    /// `file:line: message`, or `file: message` when the line is 0.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

/// Everything that made the configuration unusable, plus the warnings seen on the
/// way, so `karajo check` can print all of them at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_errors(.errors))]
pub struct ConfigErrors {
    /// The errors, in the order found (at least one).
    pub errors: Vec<Diagnostic>,
    /// The warnings, in the order found.
    pub warnings: Vec<Diagnostic>,
}

fn render_errors(errors: &[Diagnostic]) -> String {
    let lines: Vec<String> = errors.iter().map(Diagnostic::to_string).collect();
    lines.join("\n")
}

/// The whole configuration: `[karajo]` settings, jobs, notifications and users.
#[derive(Debug, Clone)]
pub struct Config {
    /// The main configuration file, as given.
    pub file: PathBuf,
    /// `name`: title in the WUI and the console log prefix (default `karajo`).
    pub name: String,
    /// `listen_address`: `host:port` of the HTTP server (default `127.0.0.1:31937`).
    pub listen_address: String,
    /// `dir_base`: root of `etc/`, `var/lib/`, `var/log/`; absolute (a relative value
    /// is joined to the current directory); default `/`.
    pub dir_base: PathBuf,
    /// `dir_public`: directory served under `/`, as written; `None` when empty.
    pub dir_public: Option<PathBuf>,
    /// `secret`: the global HMAC secret; generated when empty.
    pub secret: String,
    /// The secret was empty and [`Config::secret`] was generated (32 `[0-9A-Za-z]`).
    pub secret_generated: bool,
    /// `http_timeout`: default HTTP job timeout (5m; `0` → 5m; negative → `None`, no
    /// timeout).
    pub http_timeout: Option<Duration>,
    /// `max_job_running`: how many command job runs may execute at once (≤ 0 → 1).
    pub max_job_running: usize,
    /// `is_development`: serve the WUI from disk.
    pub is_development: bool,
    /// `timezone` (new): zone for schedules without their own; default UTC.
    pub timezone: TimeZone,
    /// `epoch_window` (new): how far `_karajo_epoch` may be from now (default 5m).
    pub epoch_window: Duration,
    /// `epoch_skew` (new): how far ahead of the server's clock `_karajo_epoch` may be
    /// (default 5s).
    pub epoch_skew: Duration,
    /// `accept_unstamped_signatures` (new): accept signed requests without
    /// `_karajo_epoch`, reusable as in the original (default false).
    pub accept_unstamped_signatures: bool,
    /// `sourcehut_public_key` (new): Ed25519 key for SourceHut webhooks (base64).
    pub sourcehut_public_key: [u8; 32],
    /// `max_body_size` (new): largest accepted request body in bytes (default 25 MiB).
    pub max_body_size: usize,
    /// `max_connections` (new): how many HTTP connections are served at once; `None`
    /// (the default) means half the open-file limit, at most 4096.
    pub max_connections: Option<usize>,
    /// `header_read_timeout` (new): the longest a client may take to send a request's
    /// headers, and to start its next request on a kept-alive connection (default 10s).
    pub header_read_timeout: Duration,
    /// `idle_timeout` (new): a connection on which no byte moved either way for this
    /// long is closed (default 1m).
    pub idle_timeout: Duration,
    /// `body_read_timeout` (new): the longest a client may take to send a request's
    /// body, counted from the end of its headers (default 1m).
    pub body_read_timeout: Duration,
    /// `max_sse_streams` (new): how many live web UI streams may be open at once
    /// (default 256).
    pub max_sse_streams: usize,
    /// `public_url` (new): the base URL of the web UI in notifications, without a
    /// trailing `/`; `None` means `http://` + the address the server listens on.
    pub public_url: Option<String>,
    /// `trusted_proxy` (new): the reverse proxies whose `X-Forwarded-For`,
    /// `X-Forwarded-Proto` and `Forwarded: proto=` headers are believed; empty (the
    /// default) believes no one.
    pub trusted_proxy: Vec<IpNet>,
    /// `ping_body_limit` (new): bytes of a monitor ping's body that are stored, for
    /// monitors without their own (default 10000).
    pub ping_body_limit: usize,
    /// `event_retention` (new): whole event-log day files older than this are deleted
    /// (default 720h).
    pub event_retention: Duration,
    /// `event_day_max` (new): the most bytes the event log takes per UTC day; later
    /// events that day are dropped and counted (default 67108864).
    pub event_day_max: u64,
    /// `[job "..."]` sections sorted by name, then `[job.http "..."]` sections sorted
    /// by name.
    pub jobs: Vec<JobSpec>,
    /// `[monitor "..."]` sections, sorted by name. Their ids are unique among
    /// monitors; a job may share one.
    pub monitors: Vec<MonitorSpec>,
    /// `[watchtower]`, when it has a `password` (without one its routes do not exist).
    pub watchtower: Option<WatchtowerConfig>,
    /// `[cluster]`: cluster mode's settings (off unless `enabled = true`).
    pub cluster: crate::cluster::ClusterSettings,
    /// `[service "..."]` sections, sorted by name. Their ids are unique among
    /// services; a job or a monitor may share one.
    pub services: Vec<ServiceSpec>,
    /// `[notif "..."]` sections, sorted by name.
    pub notifs: Vec<NotifConfig>,
    /// `[user "..."]` sections of `user.conf`, sorted by name.
    pub users: Vec<UserConfig>,
    /// Everything suspicious that did not stop loading.
    pub warnings: Vec<Diagnostic>,
}

impl Config {
    /// How signed requests are stamped: `epoch_window`, `epoch_skew` and
    /// `accept_unstamped_signatures`.
    pub fn stamp_rules(&self) -> crate::auth::StampRules {
        crate::auth::StampRules {
            window: self.epoch_window,
            skew: self.epoch_skew,
            accept_unstamped: self.accept_unstamped_signatures,
        }
    }

    /// The jobs of one kind, sorted by name.
    pub fn jobs_of(&self, kind: JobKind) -> impl Iterator<Item = &JobSpec> {
        self.jobs.iter().filter(move |j| j.kind() == kind)
    }

    /// The monitor whose id is `id`.
    pub fn monitor(&self, id: &JobId) -> Option<&MonitorSpec> {
        self.monitors.iter().find(|m| &m.id == id)
    }
}

/// One job section of either kind: what every kind shares in [`JobSpec::common`] and
/// what only its kind has in [`JobSpec::kind`].
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The keys every job kind reads the same way.
    pub common: JobCommon,
    /// The keys of this job's kind.
    pub kind: JobKindSpec,
}

impl JobSpec {
    /// Command job or HTTP job.
    pub fn kind(&self) -> JobKind {
        self.kind.kind()
    }

    /// The job's key (kind and id).
    pub fn key(&self) -> JobKey {
        JobKey {
            kind: self.kind(),
            id: self.common.id.clone(),
        }
    }
}

/// The part of a job section every kind shares.
#[derive(Debug, Clone)]
pub struct JobCommon {
    /// The name as written in the header.
    pub name: String,
    /// [`JobId::from_name`] of the name.
    pub id: JobId,
    /// The file that defined the job (the last definition wins).
    pub file: PathBuf,
    /// The line of the section header.
    pub line: usize,
    /// `description`: HTML shown in the WUI.
    pub description: String,
    /// `schedule`, parsed in [`JobCommon::timezone`]; `None` when empty.
    pub schedule: Option<Schedule>,
    /// `interval`: `None` when a schedule is set or the value is ≤ 0; positive values
    /// under a minute are raised to one minute.
    pub interval: Option<Duration>,
    /// `timezone` (new): the zone of the schedule; default the global one.
    pub timezone: TimeZone,
    /// `log_retention`: log files kept (≤ 0 → 5).
    pub log_retention: usize,
    /// `notif_on_success`: `[notif]` names to tell about a success.
    pub notif_on_success: Vec<String>,
    /// `notif_on_failed`: `[notif]` names to tell about a failure.
    pub notif_on_failed: Vec<String>,
    /// `notif_on_recover` (new): `[notif]` names to tell when a success follows a failure.
    pub notif_on_recover: Vec<String>,
    /// `secret`, trimmed; default the global secret. A command job verifies webhooks
    /// with it, an HTTP job signs its request payload with it.
    pub secret: String,
    /// `header_sign`: the header of the HMAC signature (default `X-Karajo-Sign`): read
    /// from webhooks by a command job, sent by an HTTP job.
    pub header_sign: String,
    /// `run_on` (cluster mode): where its runs execute; `any` by default, ignored while
    /// cluster mode is off.
    pub run_on: crate::cluster::RunOn,
    /// Retries, overlap, catch-up, jitter and chains, as the scheduler applies them.
    pub policies: super::policies::Policies,
}

impl JobCommon {
    /// `notif_on_success`, `notif_on_failed` and `notif_on_recover`, in that order.
    pub fn notif_lists(&self) -> [&[String]; 3] {
        [
            &self.notif_on_success,
            &self.notif_on_failed,
            &self.notif_on_recover,
        ]
    }
}

/// What only one kind of job has. Every rule that differs by kind is a method here or
/// on [`JobKind`].
#[derive(Debug, Clone)]
pub enum JobKindSpec {
    /// A `[job "NAME"]` section.
    Exec(ExecSpec),
    /// A `[job.http "NAME"]` section.
    Http(HttpSpec),
}

impl JobKindSpec {
    /// Command job or HTTP job.
    pub fn kind(&self) -> JobKind {
        match self {
            Self::Exec(_) => JobKind::Exec,
            Self::Http(_) => JobKind::Http,
        }
    }

    /// The command job part, if this is one.
    pub fn as_exec(&self) -> Option<&ExecSpec> {
        match self {
            Self::Exec(spec) => Some(spec),
            Self::Http(_) => None,
        }
    }

    /// The HTTP job part, if this is one.
    pub fn as_http(&self) -> Option<&HttpSpec> {
        match self {
            Self::Http(spec) => Some(spec),
            Self::Exec(_) => None,
        }
    }

    /// The webhook path that triggers the job (`/hello`), if it has one.
    pub fn webhook_path(&self) -> Option<&str> {
        match self {
            Self::Exec(spec) => spec.path.as_deref(),
            Self::Http(_) => None,
        }
    }
}

/// The keys only a `[job "NAME"]` section has: shell commands (or a registered Rust
/// function) run on a timer, on a signed webhook, or on request.
#[derive(Debug, Clone)]
pub struct ExecSpec {
    /// `path`: the webhook path, cleaned like Go `path.Join("/", p)` (`/hello`);
    /// `None` when empty.
    pub path: Option<String>,
    /// `auth_kind`: how webhooks are verified (default `hmac-sha256`).
    pub auth_kind: AuthKind,
    /// `sourcehut_public_key` (new): per-job override of the global key.
    pub sourcehut_public_key: [u8; 32],
    /// `command`: shell commands in order; may be empty when a Rust function is
    /// registered for the job (the daemon checks that).
    pub commands: Vec<String>,
    /// `timeout` (new): the longest a run may take; `None` (empty or ≤ 0) = no limit.
    pub timeout: Option<Duration>,
    /// `kill_grace` (new): time between SIGTERM and SIGKILL (default 5s).
    pub kill_grace: Duration,
    /// `github_events`, `github_refs`, `sourcehut_events`, `sourcehut_refs` (issue 15):
    /// which web hook deliveries run the job.
    pub hook_rules: super::hook_rules::HookRules,
    /// `param` (issue 15): the parameters a manual run may give.
    pub params: super::params::Params,
}

/// The HTTP method of a `[job.http]` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HttpMethod {
    /// `GET` (default).
    #[default]
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
}

impl HttpMethod {
    /// Parses a method name case-insensitively; `None` for other methods.
    pub fn parse(word: &str) -> Option<Self> {
        match word.to_ascii_uppercase().as_str() {
            "GET" => Some(Self::Get),
            "POST" => Some(Self::Post),
            "PUT" => Some(Self::Put),
            "DELETE" => Some(Self::Delete),
            _ => None,
        }
    }

    /// The upper-case method name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
        }
    }
}

/// How a `[job.http]` request carries its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HttpRequestType {
    /// URL query string (default).
    #[default]
    Query,
    /// `application/x-www-form-urlencoded` body.
    Form,
    /// JSON body.
    Json,
}

impl HttpRequestType {
    /// Parses `query`, `form` or `json` case-insensitively; empty is `query`.
    pub fn parse(word: &str) -> Option<Self> {
        match word.to_ascii_lowercase().as_str() {
            "" | "query" => Some(Self::Query),
            "form" => Some(Self::Form),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// The keys only a `[job.http "NAME"]` section has: one HTTP request per run.
#[derive(Debug, Clone)]
pub struct HttpSpec {
    /// `http_method` as written, or `GET` when empty (echoed in JSON).
    pub http_method_text: String,
    /// `http_method`, parsed.
    pub http_method: HttpMethod,
    /// `http_url`: a URL, or a `/path` on this server's `listen_address`. Required.
    pub http_url: String,
    /// `http_request_type` as written (echoed in JSON).
    pub http_request_type_text: String,
    /// `http_request_type`, parsed (empty → query).
    pub http_request_type: HttpRequestType,
    /// `http_header` lines split at the first `:`, both sides trimmed, in file order.
    pub http_headers: Vec<(String, String)>,
    /// `http_header` lines as written.
    pub http_header_lines: Vec<String>,
    /// `http_header_secret` (new): header names, beyond the fixed rule of
    /// [`crate::redact`], whose values are never shown (logs, JSON, web UI).
    pub http_header_secret: Vec<String>,
    /// `http_timeout`: empty or `0` → the global one; negative → `None`, no timeout.
    pub http_timeout: Option<Duration>,
    /// `http_insecure`: skip TLS certificate verification.
    pub http_insecure: bool,
}

/// A `[user "NAME"]` section of `user.conf`: a WUI login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserConfig {
    /// The user name (case-sensitive).
    pub name: String,
    /// `password`: a bcrypt hash in modular-crypt format (`$2a$10$...`).
    pub password_hash: String,
}

/// A `[monitor "NAME"]` section (monitors spec A.2): a heartbeat monitor that waits for
/// pings from work that runs elsewhere. What the state machine of [`crate::monitor`]
/// reads is in [`MonitorSpec::rules`]; the rest is about the ping route, its
/// authentication and its logs.
#[derive(Debug, Clone)]
pub struct MonitorSpec {
    /// The name as written in the header.
    pub name: String,
    /// [`JobId::from_name`] of the name: monitors are normalised like jobs, and are
    /// unique among monitors only (a job may have the same id).
    pub id: JobId,
    /// The file that defined the monitor (the last definition wins).
    pub file: PathBuf,
    /// The line of the section header.
    pub line: usize,
    /// `description`: shown in the UI, escaped.
    pub description: String,
    /// `path`, cleaned (`/a/b`; `a/b` and `a/b/` are the same); default `/<id>`. Ping
    /// routes compare it without regard to ASCII case, as they do job paths.
    pub path: String,
    /// `auth_kind` with its `token`, or its `secret` and `header_sign`.
    pub auth: MonitorAuth,
    /// `post_only`: GET and HEAD pings are refused with 405.
    pub post_only: bool,
    /// `ping_body_limit`: bytes of a ping's body stored (default `[karajo]
    /// ping_body_limit`).
    pub ping_body_limit: usize,
    /// `log_retention`: run and ping log files kept (default 20).
    pub log_retention: usize,
    /// `manual_resume`: a pause without `until` waits for the resume API instead of
    /// the next success check-in.
    pub manual_resume: bool,
    /// `accept_pulse`: watchTower pulses for this id may check in here.
    pub accept_pulse: bool,
    /// The keys the state machine reads.
    pub rules: MonitorRules,
    /// A `[monitor]` section, or a monitor a watchTower pulse created.
    pub origin: MonitorOrigin,
}

impl MonitorSpec {
    /// Whether a watchTower pulse created the monitor (it has no section and no ping
    /// route of its own).
    pub fn is_dynamic(&self) -> bool {
        matches!(self.origin, MonitorOrigin::Pulse { .. })
    }

    /// The recipient its notifications go to instead of the notif's own, where the
    /// notif's `allow_target` rule accepts it.
    pub fn notif_target(&self) -> Option<&str> {
        match &self.origin {
            MonitorOrigin::Pulse { alert_target } => alert_target.as_deref(),
            MonitorOrigin::Section => None,
        }
    }
}

/// Where a monitor comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorOrigin {
    /// A `[monitor "NAME"]` section.
    Section,
    /// A watchTower pulse (monitors spec A.8), with its `alertTarget` when the notifs
    /// named by its `alertType` accept one.
    Pulse {
        /// `alertTarget`, when a notif's `allow_target` rule accepts it.
        alert_target: Option<String>,
    },
}

/// What decides a monitor's status over time: the cadence and limits, and whom to tell.
/// Configured monitors take it from their section; dynamic (watchTower) monitors build
/// one of their own.
#[derive(Debug, Clone)]
pub struct MonitorRules {
    /// `period` or `schedule` (with `timezone` and `early_tolerance`).
    pub cadence: Cadence,
    /// `grace`: how long a monitor is `late` before it is `down` (default 5m; zero goes
    /// straight to `down`).
    pub grace: Duration,
    /// `max_runtime`: the longest a run may stay open from its `start`; `None` is no
    /// limit. It defaults to `grace`, and a zero value (an explicit `0s`, or the
    /// default when `grace = 0s`) means no limit: a run cannot be expected to end in
    /// no time at all.
    pub max_runtime: Option<Duration>,
    /// `log_success`: when false, a success check-in that closes no run writes no log
    /// file and takes no counter.
    pub log_success: bool,
    /// `notif_on_down`: `[notif]` names told when the monitor goes down, and again
    /// every `notif_repeat` while it stays down.
    pub notif_on_down: Vec<String>,
    /// `notif_on_up`: `[notif]` names told when it recovers.
    pub notif_on_up: Vec<String>,
    /// `notif_on_late`: `[notif]` names told when it turns late.
    pub notif_on_late: Vec<String>,
    /// `notif_repeat`: how often the down notification is repeated while down; `None`
    /// (the default, or `0s`) is never.
    pub notif_repeat: Option<Duration>,
}

/// When check-ins are expected.
#[derive(Debug, Clone)]
pub enum Cadence {
    /// `period`: at most this long between check-ins.
    Period(Duration),
    /// `schedule`, read in its `timezone`.
    Schedule {
        /// The slots.
        schedule: Schedule,
        /// `early_tolerance` (default 1m): a check-in this long before a slot counts
        /// for that slot; capped at half the gap between neighbouring slots.
        early_tolerance: Duration,
    },
}

/// How a monitor's pings authenticate (`auth_kind` and its keys). Debug output never
/// shows the token or the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum MonitorAuth {
    /// `auth_kind = token` (default): `token=` in the query or `X-Karajo-Token`.
    Token(String),
    /// `auth_kind = hmac-sha256`: the house signature of the body, POST only.
    HmacSha256 {
        /// `secret`, trimmed; default the global secret.
        secret: String,
        /// `header_sign` (default `X-Karajo-Sign`).
        header_sign: String,
    },
    /// `auth_kind = none`: anyone who reaches the URL may check in.
    None,
}

impl MonitorAuth {
    /// The configuration and JSON word: `token`, `hmac-sha256` or `none`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Token(_) => "token",
            Self::HmacSha256 { .. } => "hmac-sha256",
            Self::None => "none",
        }
    }
}

impl fmt::Debug for MonitorAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f
                .debug_tuple("Token")
                .field(&crate::redact::REDACTED)
                .finish(),
            Self::HmacSha256 { header_sign, .. } => f
                .debug_struct("HmacSha256")
                .field("secret", &crate::redact::REDACTED)
                .field("header_sign", header_sign)
                .finish(),
            Self::None => f.write_str("None"),
        }
    }
}

/// The `[watchtower]` section of `karajo.conf` (monitors spec A.8), present only with a
/// `password`. Debug output never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct WatchtowerConfig {
    /// The main configuration file.
    pub file: PathBuf,
    /// The line of the (first) section header.
    pub line: usize,
    /// `password`: compared in constant time with the request header `password`.
    pub password: String,
    /// `path`, cleaned: the mount point of the five routes (default
    /// `/karajo/api/watchtower`; may be `/`).
    pub path: String,
    /// `grace` of dynamic monitors (default 0s).
    pub grace: Duration,
    /// `max_monitors`: the most dynamic monitors (default 1000).
    pub max_monitors: usize,
    /// `log_retention` of dynamic monitors (default 20).
    pub log_retention: usize,
    /// `notif_on_down`: used when a pulse's `alertType` names no `[notif]` section.
    pub notif_on_down: Vec<String>,
    /// `notif_on_up`: used when a pulse's `alertType` names no `[notif]` section.
    pub notif_on_up: Vec<String>,
}

impl fmt::Debug for WatchtowerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchtowerConfig")
            .field("file", &self.file)
            .field("line", &self.line)
            .field("password", &crate::redact::REDACTED)
            .field("path", &self.path)
            .field("grace", &self.grace)
            .field("max_monitors", &self.max_monitors)
            .field("log_retention", &self.log_retention)
            .field("notif_on_down", &self.notif_on_down)
            .field("notif_on_up", &self.notif_on_up)
            .finish()
    }
}

/// A `[service "NAME"]` section (monitors spec B.2): one long-running command that
/// karajo spawns, watches and restarts by policy. What the pure state machine of
/// [`crate::service`] reads is in [`ServiceSpec::policy`]; the rest is how an instance
/// is spawned, tracked and logged.
#[derive(Clone)]
pub struct ServiceSpec {
    /// The name as written in the header.
    pub name: String,
    /// [`JobId::from_name`] of the name; unique among services.
    pub id: JobId,
    /// The file that defined the service (the last definition wins).
    pub file: PathBuf,
    /// The line of the section header.
    pub line: usize,
    /// `description`.
    pub description: String,
    /// `command`: run as `/bin/sh -c <command>` in a new session.
    pub command: String,
    /// `pre_start`: run in order before every instance; the first failure is a failed
    /// start.
    pub pre_start: Vec<String>,
    /// `working_dir` as written (absolute, or relative to the default
    /// `var/lib/karajo/service/<id>`); `None` is the default.
    pub working_dir: Option<PathBuf>,
    /// `user`: the user to run as when karajo runs as root; empty is karajo's own.
    pub user: String,
    /// `env`: `KEY=VALUE` pairs added last, in order. Never shown by the API.
    pub env: Vec<(String, String)>,
    /// `env_inherit`: start from karajo's own environment instead of the job one.
    pub env_inherit: bool,
    /// `disabled`: the initial `enabled` state (inverted) when no state file exists.
    pub disabled: bool,
    /// `priority` (default 100): lower starts first and stops last.
    pub priority: i64,
    /// `pid_file`, relative to the working directory: the process to watch is the
    /// one this file names (pid-file mode).
    pub pid_file: Option<PathBuf>,
    /// `check_interval` (default 5s): how often a pid-file process is checked when
    /// pidfd is not available.
    pub check_interval: Duration,
    /// `notify`: provide `NOTIFY_SOCKET` (implied by `ready = notify`).
    pub notify: bool,
    /// `on_exit` (default `stop`): what a clean karajo shutdown does to the service.
    pub on_exit: OnExit,
    /// `secret`: control requests may be signed with it as well as with the global
    /// secret. Never shown.
    pub secret: String,
    /// `log_retention` (default 10): log segments kept.
    pub log_retention: usize,
    /// `log_max_size` (default 10485760): a segment's size before rotation.
    pub log_max_size: u64,
    /// `history` (default 100): instance history entries kept.
    pub history: usize,
    /// `keyvalue_clear` (default true): clear the key/value map when an instance
    /// starts.
    pub keyvalue_clear: bool,
    /// The keys the state machine reads.
    pub policy: ServicePolicy,
}

impl ServiceSpec {
    /// Whether a change from `old` to this definition needs a new instance (monitors
    /// spec B.7: the process-defining keys).
    pub fn respawn_needed(&self, old: &ServiceSpec) -> bool {
        self.command != old.command
            || self.pre_start != old.pre_start
            || self.working_dir != old.working_dir
            || self.user != old.user
            || self.env != old.env
            || self.env_inherit != old.env_inherit
            || self.pid_file != old.pid_file
            || self.policy.ready != old.policy.ready
            || self.notify != old.notify
    }

    /// Whether the instance gets `NOTIFY_SOCKET`.
    pub fn wants_notify_socket(&self) -> bool {
        self.notify || self.policy.ready == ReadyRule::Notify
    }
}

impl fmt::Debug for ServiceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceSpec")
            .field("name", &self.name)
            .field("id", &self.id)
            .field("file", &self.file)
            .field("line", &self.line)
            .field("command", &self.command)
            .field("pre_start", &self.pre_start)
            .field("working_dir", &self.working_dir)
            .field("user", &self.user)
            .field(
                "env",
                &self.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            )
            .field("env_inherit", &self.env_inherit)
            .field("disabled", &self.disabled)
            .field("priority", &self.priority)
            .field("pid_file", &self.pid_file)
            .field("notify", &self.notify)
            .field("on_exit", &self.on_exit)
            .field("secret", &crate::redact::REDACTED)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// What decides a service's state over time: restarts, back-off, readiness and
/// liveness limits, stopping, and whom to tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePolicy {
    /// `restart` (default `on-failure`).
    pub restart: RestartPolicy,
    /// `success_exit_codes` (default `0`): exit codes that count as clean.
    pub success_exit_codes: Vec<i32>,
    /// `restart_delay` (default 1s): the first back-off delay.
    pub restart_delay: Duration,
    /// `restart_delay_max` (default 1m): the back-off cap.
    pub restart_delay_max: Duration,
    /// `backoff_reset` (default 1m): running this long resets the back-off.
    pub backoff_reset: Duration,
    /// `start_retries` (default 3): failed starts in a row allowed before `fatal`.
    pub start_retries: u32,
    /// `ready` (default `delay`).
    pub ready: ReadyRule,
    /// `start_seconds` (default 1s): with `ready = delay`, how long an instance must
    /// live to be ready.
    pub start_seconds: Duration,
    /// `start_timeout` (default 30s): with `notify`, `ping` or a pid file, the most
    /// time to become ready.
    pub start_timeout: Duration,
    /// `max_runtime`: stop the instance after this long (a failure); `None` is no
    /// limit.
    pub max_runtime: Option<Duration>,
    /// `stop_signal` (default `TERM`).
    pub stop_signal: ServiceSignal,
    /// `stop_timeout` (default 10s): after the stop signal, this long before SIGKILL.
    pub stop_timeout: Duration,
    /// `ping_timeout`: once ready, the instance must ping at least this often; `None`
    /// is off.
    pub ping_timeout: Option<Duration>,
    /// `notif_on_failed`: told of the first failed instance of a streak.
    pub notif_on_failed: Vec<String>,
    /// `notif_on_fatal`: told when the service becomes `fatal`.
    pub notif_on_fatal: Vec<String>,
    /// `notif_on_recover`: told when an instance becomes ready after a failure streak.
    pub notif_on_recover: Vec<String>,
}

/// `restart`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// `always`: restart after any ending.
    Always,
    /// `on-failure`: restart after a failure; a clean ending is `stopped`.
    OnFailure,
    /// `never`: a clean ending is `stopped`, a failure `fatal`.
    Never,
}

impl RestartPolicy {
    /// The configuration and JSON word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::OnFailure => "on-failure",
            Self::Never => "never",
        }
    }
}

/// `ready`: when a starting instance counts as running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyRule {
    /// It has lived `start_seconds`.
    Delay,
    /// `READY=1` arrived on the notify socket.
    Notify,
    /// The first service ping with the instance's token arrived.
    Ping,
}

impl ReadyRule {
    /// The configuration and JSON word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delay => "delay",
            Self::Notify => "notify",
            Self::Ping => "ping",
        }
    }
}

/// `on_exit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExit {
    /// Stop the instance when karajo stops.
    Stop,
    /// Leave it running (pid-file mode only); the next karajo adopts it.
    Leave,
}

/// A signal a service may be stopped or signalled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceSignal {
    /// SIGTERM.
    Term,
    /// SIGINT.
    Int,
    /// SIGHUP.
    Hup,
    /// SIGQUIT.
    Quit,
    /// SIGUSR1.
    Usr1,
    /// SIGUSR2.
    Usr2,
    /// SIGKILL.
    Kill,
}

impl ServiceSignal {
    /// Every signal, in the order messages list them.
    pub const ALL: [Self; 7] = [
        Self::Term,
        Self::Int,
        Self::Hup,
        Self::Quit,
        Self::Usr1,
        Self::Usr2,
        Self::Kill,
    ];

    /// Reads a name with or without `SIG`, in any case (`TERM`, `sigterm`).
    pub fn parse(text: &str) -> Option<Self> {
        let upper = text.trim().to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The name without `SIG`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Term => "TERM",
            Self::Int => "INT",
            Self::Hup => "HUP",
            Self::Quit => "QUIT",
            Self::Usr1 => "USR1",
            Self::Usr2 => "USR2",
            Self::Kill => "KILL",
        }
    }
}
