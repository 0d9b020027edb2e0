//! The typed client of a karajo server: every call of the original's Go client
//! (spec 10) with exactly its request shapes and signatures, typed answers
//! ([`types`]) and errors that carry the server's message and code, plus karajo's own
//! calls for heartbeat monitors, supervised services and the cluster's status. The
//! command line's `karajo job ...`, `job-http ...`, `monitor ...`, `service ...` and
//! `cluster status` use it. It owns nothing on the server side
//! and must not reach into the daemon: it only speaks HTTP.
//!
//! ```no_run
//! # async fn demo() -> Result<(), karajo::client::ClientError> {
//! use karajo::client::{Client, ClientOptions};
//!
//! let client = Client::new(ClientOptions {
//!     secret: "s3cret".into(),
//!     ..ClientOptions::default()
//! })?;
//! let job = client.job_exec_run("/hello").await?;
//! let log = client.job_exec_log(&job.id, 1).await?;
//! print!("{}", String::from_utf8_lossy(&log.content));
//! # Ok(()) }
//! ```

pub mod types;

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub use self::types::{
    Env, JobBase, JobExec, JobHttp, JobLog, LogSummary, Monitor, ParamDecl, Service, ServiceExit,
    ServiceHistoryEntry,
};
pub use crate::cluster::status::{ClusterStatus, NodeStatus};

use crate::auth::replay::{EPOCH_FIELD, NONCE_FIELD};
use crate::auth::session::SESSION_COOKIE;
use crate::auth::{HEADER_KARAJO_SIGN, sign_hmac_sha256};
use crate::clock::{SharedClock, SystemClock};

/// The server a client talks to when none is given: the default `listen_address`.
pub const DEFAULT_SERVER_URL: &str = "http://127.0.0.1:31937";

/// The request timeout when none is given (the Go client's default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

const API_ENVIRONMENT: &str = "/karajo/api/environment";
const API_JOB_EXEC_RUN: &str = "/karajo/api/job_exec/run";
const API_JOB_EXEC_PAUSE: &str = "/karajo/api/job_exec/pause";
const API_JOB_EXEC_RESUME: &str = "/karajo/api/job_exec/resume";
const API_JOB_EXEC_CANCEL: &str = "/karajo/api/job_exec/cancel";
const API_JOB_EXEC_LOG: &str = "/karajo/api/job_exec/log";
const API_JOB_HTTP: &str = "/karajo/api/job_http";
const API_JOB_HTTP_LOG: &str = "/karajo/api/job_http/log";
const API_JOB_HTTP_PAUSE: &str = "/karajo/api/job_http/pause";
const API_JOB_HTTP_RESUME: &str = "/karajo/api/job_http/resume";
const API_AUTH_LOGIN: &str = "/karajo/api/auth/login";
const API_CLUSTER: &str = "/karajo/api/cluster";
const API_SERVICE: &str = "/karajo/api/service";
const API_SERVICE_LOG: &str = "/karajo/api/service/log";
const API_SERVICE_ENABLE: &str = "/karajo/api/service/enable";
const API_SERVICE_DISABLE: &str = "/karajo/api/service/disable";
const API_SERVICE_RESTART: &str = "/karajo/api/service/restart";
const API_SERVICE_RUN_ONCE: &str = "/karajo/api/service/run_once";
const API_SERVICE_SIGNAL: &str = "/karajo/api/service/signal";

/// How to reach the server: the Go client's `ClientOptions`.
#[derive(Clone)]
pub struct ClientOptions {
    /// The server's base URL, e.g. `http://127.0.0.1:31937`.
    pub server_url: String,
    /// The global `secret` of the server (and of the web hooks the client runs).
    pub secret: String,
    /// Longest time a request may take; `None` for no limit.
    pub timeout: Option<Duration>,
    /// Headers sent with every request, `(name, value)`.
    pub headers: Vec<(String, String)>,
    /// Accept any TLS certificate (self-signed servers).
    pub allow_insecure: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            server_url: DEFAULT_SERVER_URL.to_string(),
            secret: String::new(),
            timeout: Some(DEFAULT_TIMEOUT),
            headers: Vec::new(),
            allow_insecure: false,
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("server_url", &self.server_url)
            .field("secret", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("headers", &self.headers)
            .field("allow_insecure", &self.allow_insecure)
            .finish()
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// An option could not be used (a bad URL or header).
    #[error("invalid client option {what}: {message}")]
    Option {
        /// The option.
        what: String,
        /// What is wrong with it.
        message: String,
    },
    /// The request could not be sent or its answer not read.
    #[error("{method} {url}: {source}")]
    Http {
        /// The request's method.
        method: &'static str,
        /// The request's URL.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The server answered with an error object (`{"message","name","code"}`).
    #[error("{message} ({})", server_code(*.code, .name))]
    Server {
        /// The `code` field (the HTTP status, except for a missing log, where the
        /// original answers HTTP 200 with code 404).
        code: u16,
        /// The `name` field (`ERR_JOB_PAUSED`, ...); empty when the server gave none.
        name: String,
        /// The `message` field.
        message: String,
    },
    /// The server has no web hook at this path (HTTP 404 on run), as the Go client
    /// reports it.
    #[error("job not found: {path}")]
    NotFound {
        /// The web hook path asked for.
        path: String,
    },
    /// A service control's `cas` was not the service's current one (409
    /// `ERR_SERVICE_CAS`); nothing changed. The server sent the service as it is, so
    /// the call can be retried with its `cas`.
    #[error("{message} (code 409, ERR_SERVICE_CAS)")]
    CasMismatch {
        /// The server's message, `cas mismatch: current <n>`.
        message: String,
        /// The service now.
        current: Box<Service>,
    },
    /// The answer was not the JSON expected.
    #[error("{url}: cannot read the answer: {message}")]
    Decode {
        /// The request's URL.
        url: String,
        /// What was wrong.
        message: String,
    },
}

fn server_code(code: u16, name: &str) -> String {
    if name.is_empty() {
        format!("code {code}")
    } else {
        format!("code {code}, {name}")
    }
}

impl ClientError {
    /// The server's `code` for [`ClientError::Server`], 404 for
    /// [`ClientError::NotFound`], `None` otherwise.
    pub fn code(&self) -> Option<u16> {
        match self {
            Self::Server { code, .. } => Some(*code),
            Self::NotFound { .. } => Some(404),
            Self::CasMismatch { .. } => Some(409),
            _ => None,
        }
    }
}

/// A client of one karajo server. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    secret: Vec<u8>,
    clock: SharedClock,
    /// The `karajo` session cookie's value after [`Client::login`].
    session: Option<String>,
}

impl fmt::Debug for Client {
    /// The secret and the session never show.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("secret", &"<redacted>")
            .field("session", &self.session.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Client {
    /// A client with `options`; fails on an unusable URL or header.
    pub fn new(options: ClientOptions) -> Result<Self, ClientError> {
        let base = options.server_url.trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&base).map_err(|e| ClientError::Option {
            what: format!("server URL {:?}", options.server_url),
            message: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ClientError::Option {
                what: format!("server URL {:?}", options.server_url),
                message: "the scheme must be http or https".into(),
            });
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &options.headers {
            let bad = |message: String| ClientError::Option {
                what: format!("header {name:?}"),
                message,
            };
            let name = HeaderName::try_from(name.as_str()).map_err(|e| bad(e.to_string()))?;
            let value = HeaderValue::try_from(value.as_str()).map_err(|e| bad(e.to_string()))?;
            headers.append(name, value);
        }
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .tls_danger_accept_invalid_certs(options.allow_insecure);
        if let Some(timeout) = options.timeout {
            builder = builder.timeout(timeout);
        }
        let http = builder.build().map_err(|e| ClientError::Option {
            what: "TLS".into(),
            message: e.to_string(),
        })?;
        Ok(Self {
            http,
            base,
            secret: options.secret.into_bytes(),
            clock: std::sync::Arc::new(SystemClock),
            session: None,
        })
    }

    /// Uses `clock` for `_karajo_epoch` instead of the system clock (tests and
    /// reproducible signatures).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Logs in as web UI user `name` (`POST /karajo/api/auth/login`); the client then
    /// reads with the session instead of signing its reads. Signed calls (run, pause,
    /// resume, cancel) still need the secret.
    pub async fn login(mut self, name: &str, password: &str) -> Result<Self, ClientError> {
        let url = format!("{}{API_AUTH_LOGIN}", self.base);
        let request = self
            .http
            .post(&url)
            .form(&[("name", name), ("password", password)]);
        let transport = |source| ClientError::Http {
            method: "POST",
            url: url.clone(),
            source,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let session = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|cookie| {
                let pair = cookie.split(';').next()?.trim();
                let value = pair.strip_prefix(SESSION_COOKIE)?.strip_prefix('=')?;
                (!value.is_empty()).then(|| value.to_string())
            });
        let bytes = response.bytes().await.map_err(transport)?;
        match session {
            Some(session) if status.is_success() => {
                self.session = Some(session);
                Ok(self)
            }
            _ => {
                // The server's error object (wrong password, throttled), or a plain one.
                decode::<serde_json::Value>(&url, status, &bytes)?;
                Err(ClientError::Server {
                    code: status.as_u16(),
                    name: String::new(),
                    message: "the login gave no session".into(),
                })
            }
        }
    }

    /// The server's base URL, without a trailing slash.
    pub fn server_url(&self) -> &str {
        &self.base
    }

    /// `GET /karajo/api/environment`: the server's settings and every job.
    pub async fn env(&self) -> Result<Env, ClientError> {
        self.get(API_ENVIRONMENT, "").await
    }

    /// `POST /karajo/api/job_exec/run/<path>`: triggers the command job whose web hook
    /// path is `path`, with the body `{"id":"","_karajo_epoch":N}` signed in
    /// `X-Karajo-Sign` with the client's secret. The job must use `hmac-sha256` with
    /// that secret.
    pub async fn job_exec_run(&self, path: &str) -> Result<JobExec, ClientError> {
        self.post_hook(path, run_body(&self.stamp())).await
    }

    /// Posts `body` to the web hook `path`, signed in `X-Karajo-Sign`.
    async fn post_hook(&self, path: &str, body: String) -> Result<JobExec, ClientError> {
        let hook = format!("/{}", path.trim_start_matches('/'));
        let url = format!("{}{API_JOB_EXEC_RUN}{hook}", self.base);
        let sign = sign_hmac_sha256(&self.secret, body.as_bytes());
        let request = self
            .http
            .post(&url)
            .header(HEADER_KARAJO_SIGN, sign)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let (status, bytes) = self.send("POST", &url, request).await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(ClientError::NotFound { path: hook });
        }
        decode(&url, status, &bytes)
    }

    /// As [`Client::job_exec_run`], with the run's parameters in the signed JSON body's
    /// `params` object (the job declares them with `param = NAME`).
    pub async fn job_exec_run_with(
        &self,
        path: &str,
        params: &[(String, String)],
    ) -> Result<JobExec, ClientError> {
        if params.is_empty() {
            return self.job_exec_run(path).await;
        }
        let stamp = self.stamp();
        let mut body = serde_json::json!({ "id": "", EPOCH_FIELD: stamp.epoch });
        if !stamp.nonce.is_empty() {
            body[NONCE_FIELD] = stamp.nonce.clone().into();
        }
        body["params"] = params
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect::<serde_json::Map<_, _>>()
            .into();
        self.post_hook(path, body.to_string()).await
    }

    /// `POST /karajo/api/job_exec/run`: runs the command job `id` now (trigger `api`),
    /// with its parameters, signed with the global secret like a pause. Works for any
    /// command job, with or without a web hook.
    pub async fn job_exec_run_id(
        &self,
        id: &str,
        params: &[(String, String)],
    ) -> Result<JobExec, ClientError> {
        let extra: String = params
            .iter()
            .map(|(k, v)| format!("&param.{}={}", query_escape(k), query_escape(v)))
            .collect();
        self.post_form_with(API_JOB_EXEC_RUN, id, &extra).await
    }

    /// `POST /karajo/api/job_exec/pause`: pauses a command job.
    pub async fn job_exec_pause(&self, id: &str) -> Result<JobExec, ClientError> {
        self.post_form(API_JOB_EXEC_PAUSE, id).await
    }

    /// `POST /karajo/api/job_exec/resume`: resumes a paused command job.
    pub async fn job_exec_resume(&self, id: &str) -> Result<JobExec, ClientError> {
        self.post_form(API_JOB_EXEC_RESUME, id).await
    }

    /// `POST /karajo/api/job_exec/cancel`: cancels a command job's run.
    pub async fn job_exec_cancel(&self, id: &str) -> Result<JobExec, ClientError> {
        self.post_form(API_JOB_EXEC_CANCEL, id).await
    }

    /// `GET /karajo/api/job_exec/log?counter=N&id=ID`: a command job's log.
    pub async fn job_exec_log(&self, id: &str, counter: u64) -> Result<JobLog, ClientError> {
        self.get(API_JOB_EXEC_LOG, &log_query(id, counter)).await
    }

    /// `GET /karajo/api/job_http?id=ID`: an HTTP job.
    pub async fn job_http(&self, id: &str) -> Result<JobHttp, ClientError> {
        self.get(API_JOB_HTTP, &id_query(id)).await
    }

    /// `GET /karajo/api/job_http/log?counter=N&id=ID`: an HTTP job's log.
    pub async fn job_http_log(&self, id: &str, counter: u64) -> Result<JobLog, ClientError> {
        self.get(API_JOB_HTTP_LOG, &log_query(id, counter)).await
    }

    /// `POST /karajo/api/job_http/pause?id=ID`: pauses an HTTP job.
    pub async fn job_http_pause(&self, id: &str) -> Result<JobHttp, ClientError> {
        self.post_query(API_JOB_HTTP_PAUSE, id).await
    }

    /// `POST /karajo/api/job_http/resume?id=ID`: resumes an HTTP job.
    pub async fn job_http_resume(&self, id: &str) -> Result<JobHttp, ClientError> {
        self.post_query(API_JOB_HTTP_RESUME, id).await
    }

    /// `GET /karajo/api/monitor?id=ID`: a heartbeat monitor.
    pub async fn monitor(&self, id: &str) -> Result<Monitor, ClientError> {
        self.get("/karajo/api/monitor", &id_query(id)).await
    }

    /// `GET /karajo/api/monitor/log?counter=N&id=ID`: one of a monitor's check-in logs.
    pub async fn monitor_log(&self, id: &str, counter: u64) -> Result<JobLog, ClientError> {
        self.get("/karajo/api/monitor/log", &log_query(id, counter))
            .await
    }

    /// `POST /karajo/api/monitor/pause`: pauses a monitor until the next success
    /// (`until` `ping`), the resume call (`resume`) or an RFC 3339 time; `None` takes
    /// the monitor's default.
    pub async fn monitor_pause(
        &self,
        id: &str,
        until: Option<&str>,
    ) -> Result<Monitor, ClientError> {
        let extra = until.map(|u| format!("&until={}", query_escape(u)));
        self.post_form_with(
            "/karajo/api/monitor/pause",
            id,
            extra.as_deref().unwrap_or(""),
        )
        .await
    }

    /// `POST /karajo/api/monitor/resume`: resumes a paused monitor.
    pub async fn monitor_resume(&self, id: &str) -> Result<Monitor, ClientError> {
        self.post_form("/karajo/api/monitor/resume", id).await
    }

    /// `GET /karajo/api/service?id=ID`: a supervised service.
    pub async fn service(&self, id: &str) -> Result<Service, ClientError> {
        self.get(API_SERVICE, &id_query(id)).await
    }

    /// `GET /karajo/api/service?history=1&id=ID`: a supervised service with its
    /// instance history, newest first.
    pub async fn service_history(&self, id: &str) -> Result<Service, ClientError> {
        let query = format!("history=1&{}", id_query(id));
        self.get(API_SERVICE, &query).await
    }

    /// `GET /karajo/api/service/log?counter=N&id=ID`: one of a service's instance log
    /// segments.
    pub async fn service_log(&self, id: &str, counter: u64) -> Result<JobLog, ClientError> {
        self.get(API_SERVICE_LOG, &log_query(id, counter)).await
    }

    /// `POST /karajo/api/service/enable`: lets a service run; with `cas`, only if the
    /// service is still at that CAS ([`ClientError::CasMismatch`] otherwise).
    pub async fn service_enable(&self, id: &str, cas: Option<u64>) -> Result<Service, ClientError> {
        self.post_form_with(API_SERVICE_ENABLE, id, &cas_field(cas))
            .await
    }

    /// `POST /karajo/api/service/disable`: stops a service and keeps it stopped.
    pub async fn service_disable(
        &self,
        id: &str,
        cas: Option<u64>,
    ) -> Result<Service, ClientError> {
        self.post_form_with(API_SERVICE_DISABLE, id, &cas_field(cas))
            .await
    }

    /// `POST /karajo/api/service/restart`: a fresh instance now (from `fatal` too).
    pub async fn service_restart(
        &self,
        id: &str,
        cas: Option<u64>,
    ) -> Result<Service, ClientError> {
        self.post_form_with(API_SERVICE_RESTART, id, &cas_field(cas))
            .await
    }

    /// `POST /karajo/api/service/run_once` with `on=1` (one instance, not restarted)
    /// or `on=0` (clears the flag).
    pub async fn service_run_once(
        &self,
        id: &str,
        on: bool,
        cas: Option<u64>,
    ) -> Result<Service, ClientError> {
        let extra = format!("{}&on={}", cas_field(cas), u8::from(on));
        self.post_form_with(API_SERVICE_RUN_ONCE, id, &extra).await
    }

    /// `POST /karajo/api/service/signal`: sends `signal` (`HUP`, `USR1`, `USR2`,
    /// `INT`, `TERM`, `QUIT` or `KILL`) to the live instance.
    pub async fn service_signal(
        &self,
        id: &str,
        signal: &str,
        cas: Option<u64>,
    ) -> Result<Service, ClientError> {
        let extra = format!("{}&signal={}", cas_field(cas), query_escape(signal));
        self.post_form_with(API_SERVICE_SIGNAL, id, &extra).await
    }

    /// `GET /karajo/api/cluster`: the server's link to the cluster and every node it
    /// knows. A server not in cluster mode answers 404 (`ERR_CLUSTER_DISABLED`).
    pub async fn cluster(&self) -> Result<ClusterStatus, ClientError> {
        self.get(API_CLUSTER, "").await
    }

    /// A fresh stamp: now and a random nonce, so no two requests sign the same bytes.
    fn stamp(&self) -> Stamp {
        Stamp::new(self.clock.now().as_second())
    }

    /// A read. With a session (after [`Client::login`]) it carries the cookie; else
    /// with a secret the query is stamped and signed, as servers with users demand;
    /// without either it goes as the Go client sends it.
    async fn get<T: DeserializeOwned>(&self, path: &str, query: &str) -> Result<T, ClientError> {
        let mut request_query = query.to_string();
        let mut sign = None;
        if self.session.is_none() && !self.secret.is_empty() {
            request_query = stamped_query(&self.stamp(), query);
            sign = Some(sign_hmac_sha256(&self.secret, request_query.as_bytes()));
        }
        let url = with_query(format!("{}{path}", self.base), &request_query);
        let mut request = self.http.get(&url);
        if let Some(sign) = sign {
            request = request.header(HEADER_KARAJO_SIGN, sign);
        }
        if let Some(session) = &self.session {
            request = request.header(
                reqwest::header::COOKIE,
                format!("{SESSION_COOKIE}={session}"),
            );
        }
        let (status, bytes) = self.send("GET", &url, request).await?;
        decode(&url, status, &bytes)
    }

    /// A pause/resume/cancel call: form body `_karajo_epoch=N&_karajo_nonce=R&id=ID`
    /// signed with the secret.
    async fn post_form<T: DeserializeOwned>(&self, path: &str, id: &str) -> Result<T, ClientError> {
        self.post_form_with(path, id, "").await
    }

    /// As [`Client::post_form`], with `extra` (`&key=value...`) after the id.
    async fn post_form_with<T: DeserializeOwned>(
        &self,
        path: &str,
        id: &str,
        extra: &str,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let body = format!("{}{extra}", job_form_body(id, &self.stamp()));
        let sign = sign_hmac_sha256(&self.secret, body.as_bytes());
        let request = self
            .http
            .post(&url)
            .header(HEADER_KARAJO_SIGN, sign)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        let (status, bytes) = self.send("POST", &url, request).await?;
        decode(&url, status, &bytes)
    }

    /// A job_http pause/resume call: no body, the stamped query
    /// `_karajo_epoch=N&_karajo_nonce=R&id=ID` signed as sent. (The Go client signs
    /// `id=ID` alone, which karajo refuses unless `accept_unstamped_signatures` is on.)
    async fn post_query<T: DeserializeOwned>(
        &self,
        path: &str,
        id: &str,
    ) -> Result<T, ClientError> {
        let query = stamped_query(&self.stamp(), &id_query(id));
        let url = with_query(format!("{}{path}", self.base), &query);
        let sign = sign_hmac_sha256(&self.secret, query.as_bytes());
        let request = self.http.post(&url).header(HEADER_KARAJO_SIGN, sign);
        let (status, bytes) = self.send("POST", &url, request).await?;
        decode(&url, status, &bytes)
    }

    async fn send(
        &self,
        method: &'static str,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, bytes::Bytes), ClientError> {
        let transport = |source| ClientError::Http {
            method,
            url: url.to_string(),
            source,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        Ok((status, bytes))
    }
}

/// What makes a signed request unique: its time (`_karajo_epoch`, Unix seconds) and a
/// random `_karajo_nonce`, so two requests with the same content in the same second
/// are still two requests to the server's replay guard. The Go original ignores the
/// nonce; an empty nonce is left out (the Go client's shapes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// `_karajo_epoch`.
    pub epoch: i64,
    /// `_karajo_nonce`: 16 random hex digits, or empty for none.
    pub nonce: String,
}

impl Stamp {
    /// A stamp at `epoch` with a fresh random nonce.
    pub fn new(epoch: i64) -> Self {
        Self {
            epoch,
            nonce: format!("{:016x}", rand::random::<u64>()),
        }
    }

    /// A stamp at `epoch` without a nonce, as the Go client sends.
    pub fn without_nonce(epoch: i64) -> Self {
        Self {
            epoch,
            nonce: String::new(),
        }
    }
}

/// The body of a run call: `{"id":"","_karajo_epoch":N,"_karajo_nonce":"R"}`, as the Go
/// client marshals its `JobHTTPRequest`, plus the nonce.
pub fn run_body(stamp: &Stamp) -> String {
    if stamp.nonce.is_empty() {
        return format!("{{\"id\":\"\",\"{EPOCH_FIELD}\":{}}}", stamp.epoch);
    }
    format!(
        "{{\"id\":\"\",\"{EPOCH_FIELD}\":{},\"{NONCE_FIELD}\":\"{}\"}}",
        stamp.epoch, stamp.nonce
    )
}

/// The form body of a pause, resume or cancel call: `_karajo_epoch=N&_karajo_nonce=R&id=ID`,
/// keys sorted and values escaped as Go's `url.Values.Encode`.
pub fn job_form_body(id: &str, stamp: &Stamp) -> String {
    stamped_query(stamp, &id_query(id))
}

/// `query` behind the stamp's fields: `_karajo_epoch=N&_karajo_nonce=R&<query>` (the
/// order Go's `url.Values.Encode` gives for the API's keys).
pub fn stamped_query(stamp: &Stamp, query: &str) -> String {
    let mut out = format!("{EPOCH_FIELD}={}", stamp.epoch);
    if !stamp.nonce.is_empty() {
        out.push_str(&format!("&{}={}", NONCE_FIELD, query_escape(&stamp.nonce)));
    }
    if !query.is_empty() {
        out.push('&');
        out.push_str(query);
    }
    out
}

/// The query of the job_http calls: `id=ID`; the pause and resume calls sign it.
pub fn id_query(id: &str) -> String {
    format!("id={}", query_escape(id))
}

/// The `&cas=N` of a service control, or nothing.
fn cas_field(cas: Option<u64>) -> String {
    cas.map(|n| format!("&cas={n}")).unwrap_or_default()
}

/// The query of the log calls: `counter=N&id=ID`.
pub fn log_query(id: &str, counter: u64) -> String {
    format!("counter={counter}&id={}", query_escape(id))
}

fn with_query(url: String, query: &str) -> String {
    if query.is_empty() {
        url
    } else {
        format!("{url}?{query}")
    }
}

/// Go's `url.QueryEscape`: unreserved characters kept, space as `+`, every other byte
/// as `%XX` in upper-case hex.
pub fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The envelope of every answer: `{"data":..,"message":..,"name":..,"code":..}`.
#[derive(Deserialize)]
struct Envelope<T> {
    data: Option<T>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    name: String,
    code: Option<u16>,
}

/// Reads an answer: an error object (HTTP status or `code` other than 200) becomes
/// [`ClientError::Server`], anything else must carry `data`.
fn decode<T: DeserializeOwned>(
    url: &str,
    status: reqwest::StatusCode,
    bytes: &[u8],
) -> Result<T, ClientError> {
    let decode_error = |message: String| ClientError::Decode {
        url: url.to_string(),
        message,
    };
    let envelope: Envelope<serde_json::Value> = match serde_json::from_slice(bytes) {
        Ok(envelope) => envelope,
        Err(err) if status.is_success() => return Err(decode_error(err.to_string())),
        Err(_) => {
            let text = String::from_utf8_lossy(bytes).trim().to_string();
            let message = if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_string()
            } else {
                text
            };
            return Err(ClientError::Server {
                code: status.as_u16(),
                name: String::new(),
                message,
            });
        }
    };
    let code = envelope.code.unwrap_or(status.as_u16());
    if envelope.name == "ERR_SERVICE_CAS"
        && let Some(current) = envelope
            .data
            .as_ref()
            .and_then(|data| Service::deserialize(data).ok())
    {
        return Err(ClientError::CasMismatch {
            message: envelope.message,
            current: Box::new(current),
        });
    }
    if !status.is_success() || code != 200 {
        return Err(ClientError::Server {
            code: if status.is_success() {
                code
            } else {
                status.as_u16()
            },
            name: envelope.name,
            message: envelope.message,
        });
    }
    let data = envelope
        .data
        .ok_or_else(|| decode_error("no data in the answer".into()))?;
    serde_json::from_value(data).map_err(|e| decode_error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"s3cret";

    #[test]
    fn request_shapes_match_the_spec_vectors() {
        // Spec 5.2 vector 4: the run body at the tests' fixed time.
        let body = run_body(&Stamp::without_nonce(1_673_222_400));
        assert_eq!(body, r#"{"id":"","_karajo_epoch":1673222400}"#);
        assert_eq!(
            sign_hmac_sha256(SECRET, body.as_bytes()),
            "4fa8aa00f3141e6f6297ef5eb760ee3411d10daba4dc29d513654ae6cf823d39"
        );
        // Vector 5: the pause/resume/cancel form.
        let body = job_form_body("test_job_success", &Stamp::without_nonce(1_673_222_400));
        assert_eq!(body, "_karajo_epoch=1673222400&id=test_job_success");
        assert_eq!(
            sign_hmac_sha256(SECRET, body.as_bytes()),
            "2fcbdfa553c82d78b5240a5dec0cdd345fc95418161bd4c0f6aa4534e86fec8b"
        );
        // Vector 6: the job_http pause/resume query.
        let query = id_query("test_success");
        assert_eq!(query, "id=test_success");
        assert_eq!(
            sign_hmac_sha256(SECRET, query.as_bytes()),
            "92760216888d288b13641549b9f0a222f3507dba8af3f75da71d52125ae79e73"
        );
        assert_eq!(log_query("a b", 3), "counter=3&id=a+b");
    }

    #[test]
    fn karajos_own_requests_carry_a_nonce() {
        let a = Stamp::new(1_673_222_400);
        let b = Stamp::new(1_673_222_400);
        assert_ne!(a.nonce, b.nonce, "two requests in one second differ");
        assert_eq!(a.nonce.len(), 16);
        let stamp = Stamp {
            epoch: 1_673_222_400,
            nonce: "00ff".into(),
        };
        assert_eq!(
            run_body(&stamp),
            r#"{"id":"","_karajo_epoch":1673222400,"_karajo_nonce":"00ff"}"#
        );
        assert_eq!(
            job_form_body("a b", &stamp),
            "_karajo_epoch=1673222400&_karajo_nonce=00ff&id=a+b"
        );
        assert_eq!(
            stamped_query(&stamp, ""),
            "_karajo_epoch=1673222400&_karajo_nonce=00ff"
        );
    }

    #[test]
    fn query_escape_is_gos() {
        assert_eq!(query_escape("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(query_escape("a b&c=d/é*"), "a+b%26c%3Dd%2F%C3%A9%2A");
    }

    fn status(code: u16) -> reqwest::StatusCode {
        reqwest::StatusCode::from_u16(code).unwrap()
    }

    #[test]
    fn error_objects_become_server_errors() {
        let err = decode::<JobExec>(
            "u",
            status(412),
            br#"{"message":"job is paused","name":"ERR_JOB_PAUSED","code":412}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&err, ClientError::Server { code: 412, name, message }
                if name == "ERR_JOB_PAUSED" && message == "job is paused"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "job is paused (code 412, ERR_JOB_PAUSED)");
        // The original's missing log: HTTP 200 with code 404.
        let err = decode::<JobLog>(
            "u",
            status(200),
            br#"{"message":"log #99 not found","code":404}"#,
        )
        .unwrap_err();
        assert_eq!(err.code(), Some(404));
        assert_eq!(err.to_string(), "log #99 not found (code 404)");
        // A plain-text error page.
        let err = decode::<JobLog>("u", status(502), b"").unwrap_err();
        assert_eq!(err.to_string(), "Bad Gateway (code 502)");
    }

    #[test]
    fn a_cas_mismatch_carries_the_current_service() {
        let err = decode::<Service>(
            "u",
            status(409),
            br#"{"message":"cas mismatch: current 7","name":"ERR_SERVICE_CAS","data":{"id":"api","name":"API","kind":"service","status":"running","enabled":true,"cas":7},"code":409}"#,
        )
        .unwrap_err();
        let ClientError::CasMismatch { current, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!((current.id.as_str(), current.cas), ("api", 7));
        assert_eq!(err.code(), Some(409));
        assert_eq!(
            err.to_string(),
            "cas mismatch: current 7 (code 409, ERR_SERVICE_CAS)"
        );
        // Without the service (an older server), it is an ordinary error object.
        let err = decode::<Service>(
            "u",
            status(409),
            br#"{"message":"cas mismatch: current 7","name":"ERR_SERVICE_CAS","code":409}"#,
        )
        .unwrap_err();
        assert!(
            matches!(err, ClientError::Server { code: 409, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn service_controls_send_cas_and_their_fields() {
        assert_eq!(cas_field(None), "");
        assert_eq!(cas_field(Some(42)), "&cas=42");
    }

    #[test]
    fn answers_without_data_or_with_other_json_are_decode_errors() {
        let err = decode::<JobExec>("u", status(200), br#"{"code":200}"#).unwrap_err();
        assert!(matches!(err, ClientError::Decode { .. }), "{err:?}");
        let err = decode::<JobExec>("u", status(200), b"<html>").unwrap_err();
        assert!(matches!(err, ClientError::Decode { .. }), "{err:?}");
    }

    #[test]
    fn bad_options_are_refused() {
        let bad_url = ClientOptions {
            server_url: "not a url".into(),
            ..ClientOptions::default()
        };
        assert!(matches!(
            Client::new(bad_url),
            Err(ClientError::Option { .. })
        ));
        let bad_header = ClientOptions {
            headers: vec![("bad header".into(), "x".into())],
            ..ClientOptions::default()
        };
        assert!(matches!(
            Client::new(bad_header),
            Err(ClientError::Option { .. })
        ));
        let secret = ClientOptions {
            secret: "hidden".into(),
            ..ClientOptions::default()
        };
        assert!(!format!("{secret:?}").contains("hidden"));
    }
}
