//! The `karajo` binary as a process: the command line, SIGTERM with a job running,
//! SIGHUP reloading the configuration, a restart after kill -9, and a second karajo on
//! the same `dir_base` refused while the first runs.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};

use crate::helpers::*;

fn karajo() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("karajo"))
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A daemon process on a free port, killed when dropped (also used by the monitor
/// conformance tests for a kill -9).
pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) base_url: String,
    pub(crate) http: reqwest::Client,
}

impl Proc {
    pub(crate) async fn start(dir: &TestDir, port: u16) -> Self {
        Self::start_with_log(dir, port, Stdio::null()).await
    }

    /// As [`Proc::start`], with the daemon's own log (its stderr) going to `log`.
    async fn start_with_log(dir: &TestDir, port: u16, log: Stdio) -> Self {
        let child = karajo()
            .arg("-config")
            .arg(dir.config_file())
            .env_remove("NO_COLOR")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let base_url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let url = format!("{base_url}/karajo/api/environment");
        wait_for("the daemon to listen", || {
            let req = http.get(&url).send();
            async move { req.await.ok().filter(|r| r.status() == 200).map(|_| ()) }
        })
        .await;
        Self {
            child,
            base_url,
            http,
        }
    }

    pub(crate) fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(self.child.id() as i32).unwrap();
        kill_process(pid, signal).unwrap();
    }

    async fn hook(&self, path: &str) -> u16 {
        let body = epoch_body();
        let sign = karajo::auth::sign_hmac_sha256(SECRET.as_bytes(), body.as_bytes());
        self.http
            .post(format!("{}/karajo/api/job_exec/run{path}", self.base_url))
            .header("X-Karajo-Sign", sign)
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub(crate) async fn wait_exit(&mut self) -> std::process::ExitStatus {
        wait_for("the daemon to exit", || {
            let status = self.child.try_wait().unwrap();
            async move { status }
        })
        .await
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn conf_with_port(port: u16, jobs: &str) -> String {
    format!("[karajo]\nlisten_address = 127.0.0.1:{port}\n{jobs}")
}

const LONG: &str = r#"
[job "long"]
path = /long
kill_grace = 1s
command = "sleep 300 & echo $! > sleeper.pid; wait"
"#;

#[tokio::test]
async fn the_daemon_log_in_a_file_is_plain_text_with_one_job_field_and_outcomes_in_words() {
    let port = free_port();
    let dir = TestDir::new(&conf_with_port(
        port,
        "[job \"fail\"]\npath = /fail\ncommand = exit 2\n",
    ));
    let log_path = dir.base().join("karajo.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut p = Proc::start_with_log(&dir, port, Stdio::from(log_file)).await;
    assert_eq!(p.hook("/fail").await, 200);
    dir.wait_log("fail", 1, "failed").await;
    p.signal(Signal::TERM);
    assert_eq!(p.wait_exit().await.code(), Some(0));
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(!log.contains('\x1b'), "no colour codes in a file:\n{log}");
    let line = |what: &str| {
        log.lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} line in\n{log}"))
            .to_string()
    };
    let started = line("run started");
    let ended = line("run did not succeed");
    assert!(started.contains("job=job/fail"), "{started}");
    assert!(ended.contains("job=job/fail"), "{ended}");
    assert!(ended.contains("outcome=failed: exit status 2"), "{ended}");
}

#[test]
fn version_prints_the_version() {
    let out = karajo().arg("version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.trim(),
        format!("karajo version {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_bad_configuration_exits_1_naming_file_and_line() {
    let dir = TestDir::new("[job \"x\"]\ninterval = 60\ncommand = true\n");
    let out = karajo()
        .arg("--config")
        .arg(dir.config_file())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    let expected = format!("{}:8:", dir.config_file().display());
    assert!(err.contains(&expected), "{err}");
    assert!(err.contains("interval"), "{err}");
}

#[tokio::test]
async fn sigterm_cancels_running_jobs_kills_their_trees_and_exits_0() {
    let port = free_port();
    let dir = TestDir::new(&conf_with_port(port, LONG));
    let mut p = Proc::start(&dir, port).await;
    assert_eq!(p.hook("/long").await, 200);
    let pid_file = dir.base().join("var/lib/karajo/job/long/sleeper.pid");
    let sleeper = wait_for("sleeper pid", || {
        let f = pid_file.clone();
        async move {
            std::fs::read_to_string(f)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
        }
    })
    .await;
    p.signal(Signal::TERM);
    let status = p.wait_exit().await;
    assert_eq!(status.code(), Some(0));
    let log = dir.wait_log("long", 1, "canceled").await;
    assert!(log.contains("??? CANCELED"), "{log}");
    wait_for("the sleeper to die", || async {
        (!is_alive(sleeper)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn sighup_reloads_jobs_without_disturbing_a_running_one() {
    let port = free_port();
    let dir = TestDir::new(&conf_with_port(port, LONG));
    let mut p = Proc::start(&dir, port).await;
    assert_eq!(p.hook("/long").await, 200);
    dir.wait_log("long", 1, "running").await;
    dir.write(
        "etc/karajo/job.d/added.conf",
        "[job \"added\"]\npath = /added\ncommand = echo added\n",
    );
    p.signal(Signal::HUP);
    wait_for("the added job", || async {
        (p.hook("/added").await == 200).then_some(())
    })
    .await;
    dir.wait_log("added", 1, "success").await;
    // The long run was not disturbed.
    assert!(
        dir.log_names("long")
            .contains(&"long.1.running".to_string())
    );
    p.signal(Signal::TERM);
    assert_eq!(p.wait_exit().await.code(), Some(0));
}

#[tokio::test]
async fn after_kill_9_interrupted_runs_are_recorded_and_counters_never_reused() {
    let port = free_port();
    let dir = TestDir::new(&conf_with_port(port, LONG));
    let pid_file = dir.base().join("var/lib/karajo/job/long/sleeper.pid");
    let mut sleepers: Vec<u32> = Vec::new();
    for round in 1..=3u64 {
        let p = Proc::start(&dir, port).await;
        // What a killed karajo left running is stopped when it starts again.
        for pid in &sleepers {
            assert!(
                !is_alive(*pid),
                "sleeper {pid} of a killed daemon still runs"
            );
        }
        assert_eq!(p.hook("/long").await, 200);
        dir.wait_log("long", round, "running").await;
        let sleeper = wait_for("this round's sleeper pid", || {
            let f = pid_file.clone();
            let known = sleepers.clone();
            async move {
                std::fs::read_to_string(f)
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok())
                    .filter(|pid| !known.contains(pid))
            }
        })
        .await;
        sleepers.push(sleeper);
        // karajo records the command's group just after spawning it; a kill -9 in
        // between (a few microseconds) would leave it unrecorded.
        let record = format!("long.{round}");
        wait_for("the run's group record", || async {
            group_recorded(dir.base(), &record).then_some(())
        })
        .await;
        drop(p); // SIGKILL
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(is_alive(sleeper), "the kill -9 left the run's processes");
    }
    let p = Proc::start(&dir, port).await;
    for pid in &sleepers {
        assert!(
            !is_alive(*pid),
            "sleeper {pid} of a killed daemon still runs"
        );
    }
    let names = dir.log_names("long");
    assert_eq!(names, ["long.1.failed", "long.2.failed", "long.3.failed"]);
    for n in 1..=3 {
        let log = dir.wait_log("long", n, "failed").await;
        assert!(log.contains("interrupted"), "{log}");
    }
    let state = std::fs::read_to_string(dir.base().join("var/lib/karajo/state.json")).unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&state).is_ok(),
        "{state}"
    );
    drop(p);
}

#[tokio::test]
async fn a_second_karajo_process_refuses_and_a_kill_9_releases_the_lock() {
    let port = free_port();
    let dir = TestDir::new(&conf_with_port(port, LONG));
    let p = Proc::start(&dir, port).await;
    assert_eq!(p.hook("/long").await, 200);
    dir.wait_log("long", 1, "running").await;
    let pid_file = dir.base().join("var/lib/karajo/job/long/sleeper.pid");
    let sleeper = wait_for("sleeper pid", || {
        let f = pid_file.clone();
        async move {
            std::fs::read_to_string(f)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
        }
    })
    .await;
    wait_for("the run's group record", || async {
        group_recorded(dir.base(), "long.1").then_some(())
    })
    .await;

    // The same dir_base on another port, from another configuration file.
    let other = tempfile::tempdir().unwrap();
    let other_conf = other.path().join("karajo.conf");
    std::fs::write(
        &other_conf,
        format!(
            "[karajo]\ndir_base = {}\nsecret = {SECRET}\nlisten_address = 127.0.0.1:{}\n{LONG}",
            dir.base().display(),
            free_port()
        ),
    )
    .unwrap();
    let out = karajo().arg("-config").arg(&other_conf).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    let expected = format!(
        "another karajo (pid {}) is running on {}: {} is locked",
        p.child.id(),
        dir.base().display(),
        dir.base().join("var/run/karajo/karajo.lock").display()
    );
    assert!(err.contains(&expected), "{err}");
    assert!(
        is_alive(sleeper),
        "the second karajo stopped the first one's job"
    );
    assert!(
        group_recorded(dir.base(), "long.1"),
        "the second karajo removed the group record"
    );
    assert_eq!(dir.log_names("long"), ["long.1.running"]);

    // `check` says a daemon is running, as information.
    let out = karajo()
        .arg("check")
        .arg("-config")
        .arg(&other_conf)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "info: a karajo daemon (pid {}) is running on this dir_base",
            p.child.id()
        )),
        "{text}"
    );

    drop(p); // SIGKILL: the kernel releases the lock.
    let p = Proc::start(&dir, port).await;
    assert!(!is_alive(sleeper), "the left-over run was not stopped");
    dir.wait_log("long", 1, "failed").await;
    drop(p);
}

#[tokio::test]
async fn after_kill_9_a_monitor_due_while_karajo_was_down_is_credited_not_down() {
    let port = free_port();
    let monitor = "\n[monitor \"hb\"]\nperiod = 3s\ngrace = 0s\nauth_kind = none\n";
    let dir = TestDir::new(&conf_with_port(port, monitor));
    let mut p = Proc::start(&dir, port).await;
    let ping = format!("{}/karajo/api/monitor/ping/hb", p.base_url);
    assert_eq!(p.http.get(&ping).send().await.unwrap().status(), 200);
    p.signal(Signal::KILL);
    p.wait_exit().await;
    drop(p);
    // The monitor's deadline (3 s after the ping) falls while karajo is down.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let p = Proc::start(&dir, port).await;
    let url = format!("{}/karajo/api/monitor?id=hb", p.base_url);
    let status = || async {
        let m: serde_json::Value = p.http.get(&url).send().await.unwrap().json().await.unwrap();
        m["data"]["status"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(status().await, "up", "no false down after a restart");
    let events = || {
        let mut text = String::new();
        for day in std::fs::read_dir(dir.base().join("var/log/karajo/event")).unwrap() {
            text.push_str(&std::fs::read_to_string(day.unwrap().path()).unwrap_or_default());
        }
        text
    };
    wait_for("the credit event", || {
        let text = events();
        async move { text.contains("\"kind\":\"monitor.credit\"").then_some(()) }
    })
    .await;
    assert!(!events().contains("monitor.down"));
    // A dead client is still caught, one period after the restart.
    wait_for("the monitor to go down", || async {
        (status().await == "down").then_some(())
    })
    .await;
}

/// SVC-25: after a kill -9 of karajo (not of its services), the next karajo stops the
/// orphaned instance before it starts a new one, records it as `orphaned` and closes
/// its log as failed: exactly one instance runs.
#[tokio::test]
async fn an_orphaned_service_instance_is_stopped_after_kill_9_and_replaced() {
    let port = free_port();
    let dir = TestDir::new(&conf_with_port(
        port,
        "[service \"web\"]\ncommand = exec sleep 1031\nstop_timeout = 2s\n",
    ));
    let marker = |pid: u32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .replace('\0', " ")
                    .contains("sleep 1031")
            })
            .unwrap_or(false)
    };
    let mut first = Proc::start(&dir, port).await;
    let state = dir.base().join("var/lib/karajo/state/service/web.json");
    let old_pid = wait_for("the instance on record", || async {
        let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).ok()?).ok()?;
        saved["instance"]["pid"]
            .as_u64()
            .map(|p| p as u32)
            .filter(|p| marker(*p))
    })
    .await;
    first.signal(Signal::KILL);
    first.wait_exit().await;
    assert!(marker(old_pid), "the instance outlives karajo");
    let mut second = Proc::start(&dir, port).await;
    wait_for("the orphan gone", || async {
        (!marker(old_pid)).then_some(())
    })
    .await;
    let new_pid = wait_for("a new instance", || async {
        let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).ok()?).ok()?;
        saved["instance"]["pid"]
            .as_u64()
            .map(|p| p as u32)
            .filter(|p| *p != old_pid && marker(*p))
    })
    .await;
    assert!(marker(new_pid));
    let history = wait_for("the orphan in the history", || async {
        let path = dir
            .base()
            .join("var/lib/karajo/state/service/web.history.jsonl");
        std::fs::read_to_string(path)
            .ok()
            .filter(|t| t.contains("\"orphaned\""))
    })
    .await;
    assert!(history.contains(&format!("\"pid\":{old_pid}")), "{history}");
    let logs = dir.base().join("var/log/karajo/service/web");
    let names = || {
        let mut names: Vec<String> = std::fs::read_dir(&logs)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    wait_for("the orphan's log closed", || async {
        (names() == ["web.1.failed", "web.2.running"]).then_some(())
    })
    .await;
    let first_log = std::fs::read_to_string(logs.join("web.1.failed")).unwrap();
    assert!(
        first_log.contains("=== orphaned by a karajo restart; stopped"),
        "{first_log}"
    );
    second.signal(Signal::TERM);
    assert!(second.wait_exit().await.success());
    assert!(!marker(new_pid), "a clean stop stops the instance");
}
