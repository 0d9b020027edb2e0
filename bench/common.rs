//! Helpers shared by the benchmark harness (`bench/bench.rs`) and the reliability
//! suite (`bench/reliability.rs`): a karajo (or peer) daemon run as a real process on
//! 127.0.0.1 with its own `dir_base`, readings from `/proc/<pid>`, signing, and
//! percentiles. Harness code: it panics with a message on setup errors.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The secret every generated configuration uses.
pub(crate) const SECRET: &str = "bench-secret";

/// Linux's `USER_HZ`: the unit of the CPU times in `/proc/<pid>/stat`.
pub(crate) const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// The repository root (the harness runs from anywhere).
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A free TCP port on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// Nanoseconds since the Unix epoch, from the wall clock (the clock `date +%s%N` reads).
pub(crate) fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The lower-case hex HMAC-SHA256 of `body` with [`SECRET`].
pub(crate) fn sign(body: &[u8]) -> String {
    karajo::auth::sign_hmac_sha256(SECRET.as_bytes(), body)
}

/// A web hook body with the current `_karajo_epoch`, a random `_karajo_nonce` (each
/// signature is accepted once) and a sequence number.
pub(crate) fn hook_body(seq: u64) -> String {
    format!(
        "{{\"_karajo_epoch\":{},\"_karajo_nonce\":\"{:016x}\",\"seq\":{seq}}}",
        now_secs(),
        rand::random::<u64>()
    )
}

/// A form body for pause, resume and cancel, with a random `_karajo_nonce` so that
/// each is a new request to the replay guard.
pub(crate) fn form_body(id: &str) -> String {
    format!(
        "_karajo_epoch={}&_karajo_nonce={:016x}&id={id}",
        now_secs(),
        rand::random::<u64>()
    )
}

/// The value at quantile `q` (0..=1) of `sorted` (nearest rank); 0 when empty.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of `values` (mean of the two middle ones for an even count).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Sorts in place and returns the slice (for [`quantile`]).
pub(crate) fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`); `None` once the process
/// is gone.
pub(crate) fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// The state letter and the user+system CPU time (clock ticks) from `/proc/<pid>/stat`.
pub(crate) fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: split after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // After the name: state(0) ppid(1) pgrp(2) session(3) tty(4) tpgid(5) flags(6)
    // minflt(7) cminflt(8) majflt(9) cmajflt(10) utime(11) stime(12).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((state, utime + stime))
}

/// User plus system CPU ticks of process `pid` itself and of its reaped children
/// (`utime+stime`, `cutime+cstime` of `/proc/<pid>/stat`).
pub(crate) fn proc_cpu_ticks(pid: u32) -> Option<(u64, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    (f.len() == 4).then(|| (f[0] + f[1], f[2] + f[3]))
}

/// Whether process `pid` is gone or a zombie (this sandbox's PID 1 does not reap).
pub(crate) fn is_dead(pid: u32) -> bool {
    match proc_stat(pid) {
        None => true,
        Some((state, _)) => state == 'Z' || state == 'X',
    }
}

/// Live (not zombie) processes whose working directory is below `dir`.
pub(crate) fn processes_below(dir: &Path) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(cwd) = fs::read_link(format!("/proc/{pid}/cwd"))
            && cwd.starts_with(dir)
            && !is_dead(pid)
        {
            found.push(pid);
        }
    }
    found
}

/// Sends `signal` to `pid` (best effort).
pub(crate) fn signal(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Sends SIGKILL to `pid` (best effort).
pub(crate) fn kill9(pid: u32) {
    signal(pid, rustix::process::Signal::KILL);
}

/// A `dir_base` for one daemon: `etc/karajo/karajo.conf` and helpers around it.
pub(crate) struct Base {
    /// The directory.
    pub dir: PathBuf,
    /// Where the daemon listens.
    pub port: u16,
}

impl Base {
    /// A fresh (emptied) directory `dir` with a port picked for it.
    pub(crate) fn new(dir: PathBuf) -> Self {
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("etc/karajo/job.d"))
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        Self {
            dir,
            port: free_port(),
        }
    }

    /// The `[karajo]` section followed by `jobs`, written as `karajo.conf`.
    pub(crate) fn write_config(&self, extra_settings: &str, jobs: &str) {
        let conf = format!(
            "[karajo]\nname = bench\nlisten_address = 127.0.0.1:{}\ndir_base = {}\nsecret = {SECRET}\n{extra_settings}\n{jobs}",
            self.port,
            self.dir.display()
        );
        self.write("etc/karajo/karajo.conf", &conf);
    }

    /// Writes a file below the directory.
    pub(crate) fn write(&self, relative: &str, text: &str) {
        let path = self.dir.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent directory");
        }
        fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    pub(crate) fn config_file(&self) -> PathBuf {
        self.dir.join("etc/karajo/karajo.conf")
    }

    pub(crate) fn log_dir(&self, id: &str) -> PathBuf {
        self.dir.join("var/log/karajo/job").join(id)
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// File names in a job's log directory, sorted.
    pub(crate) fn log_names(&self, id: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.log_dir(id))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// `count` jobs `<prefix>NNN` with `path = /<prefix>NNN`, each with `body` lines
/// (which may use `{id}`).
pub(crate) fn jobs_text(prefix: &str, count: usize, body: &str) -> String {
    let mut text = String::new();
    for i in 0..count {
        let id = format!("{prefix}{i:04}");
        let _ = writeln!(
            text,
            "[job \"{id}\"]\npath = /{id}\n{}\n",
            body.replace("{id}", &id)
        );
    }
    text
}

/// A daemon process with its standard error going to a file.
pub(crate) struct Proc {
    pub child: Child,
    pub started: Instant,
}

impl Proc {
    /// Starts `program args` with stdout and stderr appended to `log`.
    pub(crate) fn spawn(program: &Path, args: &[&str], log: &Path, env: &[(&str, &str)]) -> Self {
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        let err = out.try_clone().expect("clone log handle");
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Self { child, started }
    }

    /// Starts karajo on `base`.
    pub(crate) fn karajo(bin: &Path, base: &Base) -> Self {
        let config = base.config_file();
        let config = config.to_str().expect("UTF-8 path");
        Self::spawn(
            bin,
            &["-config", config],
            &base.dir.join("daemon.log"),
            &[("RUST_LOG", "karajo=info")],
        )
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// VmRSS in MiB.
    pub(crate) fn rss_mib(&self) -> f64 {
        proc_status_kib(self.pid(), "VmRSS").unwrap_or(0) as f64 / 1024.0
    }

    /// VmHWM (peak resident size) in MiB.
    pub(crate) fn hwm_mib(&self) -> f64 {
        proc_status_kib(self.pid(), "VmHWM").unwrap_or(0) as f64 / 1024.0
    }

    /// User plus system CPU time in seconds.
    pub(crate) fn cpu_secs(&self) -> f64 {
        proc_stat(self.pid()).map_or(0.0, |(_, t)| t as f64 / CLOCK_TICKS_PER_SECOND)
    }

    /// CPU seconds of the process itself and of its reaped children.
    pub(crate) fn cpu_split(&self) -> (f64, f64) {
        proc_cpu_ticks(self.pid()).map_or((0.0, 0.0), |(own, children)| {
            (
                own as f64 / CLOCK_TICKS_PER_SECOND,
                children as f64 / CLOCK_TICKS_PER_SECOND,
            )
        })
    }

    /// Whether the process still runs.
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL and reap.
    pub(crate) fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait up to `grace` before SIGKILL.
    pub(crate) fn stop(&mut self, grace: Duration) {
        signal(self.pid(), rustix::process::Signal::TERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.alive() {
            self.kill9();
        }
    }
}

/// An HTTP client without a connection limit and with no proxy. It does not decode
/// gzip answers, so a gzip request measures the bytes on the wire.
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .no_gzip()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("HTTP client")
}

/// Polls `GET url` until it answers 200; returns how long that took from `since`.
pub(crate) async fn wait_http_ok(
    client: &reqwest::Client,
    url: &str,
    since: Instant,
    limit: Duration,
) -> Duration {
    loop {
        if let Ok(res) = client.get(url).send().await
            && res.status() == 200
            && res.bytes().await.is_ok()
        {
            return since.elapsed();
        }
        if since.elapsed() > limit {
            panic!("{url} did not answer 200 within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The environment JSON of a karajo daemon.
pub(crate) async fn environment(client: &reqwest::Client, base: &Base) -> serde_json::Value {
    let res = client
        .get(base.url("/karajo/api/environment"))
        .send()
        .await
        .expect("GET environment");
    res.json().await.expect("environment JSON")
}

/// POSTs `body` signed in `X-Karajo-Sign`; returns the status code (0 when the
/// request failed), having read the answer to its end.
pub(crate) async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: String,
) -> u16 {
    let res = client
        .post(url)
        .header("X-Karajo-Sign", sign(body.as_bytes()))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await;
    match res {
        Ok(res) => {
            let status = res.status().as_u16();
            let _ = res.bytes().await;
            status
        }
        Err(_) => 0,
    }
}

/// Sends a signed web hook for job path `/<id>`; returns the status code.
pub(crate) async fn trigger(client: &reqwest::Client, base: &Base, id: &str, seq: u64) -> u16 {
    let url = base.url(&format!("/karajo/api/job_exec/run/{id}"));
    post_signed(client, &url, "application/json", hook_body(seq)).await
}

/// Sends a signed pause/resume/cancel for job `id`; returns the status code.
pub(crate) async fn job_action(
    client: &reqwest::Client,
    base: &Base,
    action: &str,
    id: &str,
) -> u16 {
    let url = base.url(&format!("/karajo/api/job_exec/{action}"));
    post_signed(
        client,
        &url,
        "application/x-www-form-urlencoded",
        form_body(id),
    )
    .await
}

/// Total size in bytes and number of regular files below `dir`.
pub(crate) fn tree_size(dir: &Path) -> (u64, u64) {
    let mut bytes = 0;
    let mut files = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                bytes += meta.len();
                files += 1;
            }
        }
    }
    (bytes, files)
}
