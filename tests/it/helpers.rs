//! Test helpers: a real daemon started in-process on a temporary `dir_base` and
//! `127.0.0.1:0`, signing helpers, and polling with a timeout instead of sleeping.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use karajo::clock::SharedClock;
use karajo::exec::JobFn;
use karajo::{Daemon, RunningDaemon};
use tempfile::TempDir;

/// How long any condition may take before a test fails.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(20);

/// The secret used by test configurations.
pub(crate) const SECRET: &str = "s3cret";

/// Polls `check` until it returns `Some`, failing the test after [`TIMEOUT`].
pub(crate) async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A temporary `dir_base` with `etc/karajo/karajo.conf` in it.
pub(crate) struct TestDir {
    pub dir: TempDir,
}

impl TestDir {
    /// Writes `karajo.conf` with a `[karajo]` section (dir_base, secret) followed by
    /// `rest`.
    pub(crate) fn new(rest: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let this = Self { dir };
        let conf = format!(
            "[karajo]\nname = test\ndir_base = {}\nsecret = {SECRET}\nmax_job_running = 4\n\n{rest}",
            this.base().display()
        );
        this.write("etc/karajo/karajo.conf", &conf);
        this
    }

    pub(crate) fn base(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn config_file(&self) -> PathBuf {
        self.base().join("etc/karajo/karajo.conf")
    }

    /// Writes a file below `dir_base`, creating its directories.
    pub(crate) fn write(&self, relative: &str, text: &str) {
        let path = self.base().join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    pub(crate) fn log_dir(&self, id: &str) -> PathBuf {
        self.base().join("var/log/karajo/job").join(id)
    }

    /// Names of the files in a job's log directory, sorted.
    pub(crate) fn log_names(&self, id: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.log_dir(id))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The content of `<id>.<counter>.<status>`, once it exists.
    pub(crate) async fn wait_log(&self, id: &str, counter: u64, status: &str) -> String {
        let path = self.log_dir(id).join(format!("{id}.{counter}.{status}"));
        wait_for(&format!("log {}", path.display()), || {
            let path = path.clone();
            async move { std::fs::read_to_string(path).ok() }
        })
        .await
    }

    pub(crate) fn daemon(&self) -> Daemon {
        Daemon::new(self.config_file()).listen_address("127.0.0.1:0")
    }
}

/// A started daemon and an HTTP client for it.
pub(crate) struct TestDaemon {
    pub daemon: Option<RunningDaemon>,
    pub base_url: String,
    pub http: reqwest::Client,
}

impl TestDaemon {
    pub(crate) async fn start(dir: &TestDir) -> Self {
        Self::start_with(dir.daemon()).await
    }

    pub(crate) async fn start_with_clock(dir: &TestDir, clock: SharedClock) -> Self {
        Self::start_with(dir.daemon().clock(clock)).await
    }

    pub(crate) async fn start_with_fn(dir: &TestDir, name: &str, f: JobFn) -> Self {
        Self::start_with(dir.daemon().job_fn(name, f)).await
    }

    pub(crate) async fn start_with(daemon: Daemon) -> Self {
        let daemon = daemon.start().await.expect("daemon starts");
        let base_url = format!("http://{}", daemon.local_addr());
        let http = reqwest::Client::builder()
            .no_gzip()
            .build()
            .expect("client");
        Self {
            daemon: Some(daemon),
            base_url,
            http,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `POST /karajo/api/job_exec/run/<path>` signed with hmac-sha256 in X-Karajo-Sign.
    pub(crate) async fn run_hook(&self, path: &str, body: &str) -> reqwest::Response {
        let sign = karajo::auth::sign_hmac_sha256(SECRET.as_bytes(), body.as_bytes());
        self.http
            .post(self.url(&format!("/karajo/api/job_exec/run{path}")))
            .header("X-Karajo-Sign", sign)
            .body(body.to_string())
            .send()
            .await
            .expect("request")
    }

    /// A signed API form call (`pause`, `resume`, `cancel`).
    pub(crate) async fn api_form(&self, action: &str, id: &str) -> reqwest::Response {
        let body = format!(
            "_karajo_epoch={}&_karajo_nonce={}&id={id}",
            epoch_now(),
            nonce()
        );
        let sign = karajo::auth::sign_hmac_sha256(SECRET.as_bytes(), body.as_bytes());
        self.http
            .post(self.url(&format!("/karajo/api/job_exec/{action}")))
            .header("X-Karajo-Sign", sign)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// The job's JSON from the environment endpoint, by job name.
    pub(crate) async fn job(&self, name: &str) -> serde_json::Value {
        let env: serde_json::Value = self
            .http
            .get(self.url("/karajo/api/environment"))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        env["data"]["jobs"][name].clone()
    }

    /// As [`TestDaemon::job`], with the read signed (for daemons with users).
    pub(crate) async fn job_signed(&self, name: &str) -> serde_json::Value {
        let (query, sign) = signed_query("");
        let env: serde_json::Value = self
            .http
            .get(self.url(&format!("/karajo/api/environment?{query}")))
            .header("X-Karajo-Sign", sign)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        env["data"]["jobs"][name].clone()
    }

    /// Waits until the job's status is `status`.
    pub(crate) async fn wait_status(&self, name: &str, status: &str) -> serde_json::Value {
        wait_for(&format!("job {name} to be {status}"), || async {
            let job = self.job(name).await;
            (job["status"] == status).then_some(job)
        })
        .await
    }

    /// Waits until the HTTP job with this id has `status` (through its API).
    pub(crate) async fn wait_http_status(&self, id: &str, status: &str) -> serde_json::Value {
        wait_for(&format!("http job {id} to be {status}"), || async {
            let res: serde_json::Value = self
                .http
                .get(self.url(&format!("/karajo/api/job_http?id={id}")))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (res["data"]["status"] == status).then(|| res["data"].clone())
        })
        .await
    }

    pub(crate) async fn stop(mut self) {
        if let Some(d) = self.daemon.take() {
            d.shutdown().await;
        }
    }
}

/// `{"_karajo_epoch":<now>,"_karajo_nonce":"<random>"}`: a body whose signature is
/// new every time, as karajo's own client makes them.
pub(crate) fn epoch_body() -> String {
    format!(
        "{{\"_karajo_epoch\":{},\"_karajo_nonce\":\"{}\"}}",
        epoch_now(),
        nonce()
    )
}

/// Random hex, for `_karajo_nonce`.
pub(crate) fn nonce() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// `query` stamped (`_karajo_epoch`, `_karajo_nonce`) and its `X-Karajo-Sign` with the
/// global secret: a signed read.
pub(crate) fn signed_query(query: &str) -> (String, String) {
    let stamped = if query.is_empty() {
        format!("_karajo_epoch={}&_karajo_nonce={}", epoch_now(), nonce())
    } else {
        format!(
            "_karajo_epoch={}&_karajo_nonce={}&{query}",
            epoch_now(),
            nonce()
        )
    };
    let sign = karajo::auth::sign_hmac_sha256(SECRET.as_bytes(), stamped.as_bytes());
    (stamped, sign)
}

pub(crate) fn epoch_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Whether a process exists and is not a zombie (this sandbox's PID 1 does not reap
/// orphans, so killed grandchildren may linger as zombies).
pub(crate) fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Whether the process-group journal of `base` (`var/run/karajo/groups/journal`)
/// holds a record named `name` (`<job>.<counter>`) that was never ended.
pub(crate) fn group_recorded(base: &Path, name: &str) -> bool {
    let text =
        std::fs::read_to_string(base.join("var/run/karajo/groups/journal")).unwrap_or_default();
    let mut live: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            ["+", number, .., last] => live.push((number.to_string(), last.to_string())),
            ["-", number] => live.retain(|(n, _)| n != number),
            _ => {}
        }
    }
    live.iter().any(|(_, n)| n == name)
}
