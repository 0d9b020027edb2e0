//! Supervised services against the real daemon and real processes (monitors spec
//! Part B, acceptance rows SVC-01, 02, 04, 06, 08, 10, 13, 21, 23 and 25 through the
//! scheduler handle): an instance starts and becomes running, a crash is restarted
//! after its back-off, repeated failed starts end `fatal`, a disable stops the whole
//! process group with escalation, the choice survives a restart, a restart replaces
//! the instance, the environment is the fixed one, a clean shutdown stops services
//! by priority, and an orphan left by a killed karajo is stopped.

use std::time::{Duration, Instant};

use karajo::job::JobId;
use karajo::scheduler::{ServiceAnswer, ServiceView};
use karajo::service::Control;

use crate::helpers::*;

fn service_conf(name: &str, command: &str, extra: &str) -> String {
    format!("[service \"{name}\"]\ncommand = {command}\nrestart_delay = 500ms\n{extra}\n")
}

fn view(d: &TestDaemon, id: &str) -> std::sync::Arc<ServiceView> {
    d.daemon
        .as_ref()
        .unwrap()
        .scheduler()
        .snapshot()
        .service(id)
        .cloned()
        .unwrap_or_else(|| panic!("no service {id}"))
}

async fn wait_status(d: &TestDaemon, id: &str, status: &str) -> std::sync::Arc<ServiceView> {
    wait_for(&format!("service {id} {status}"), || async {
        let v = view(d, id);
        (v.state.status.as_str() == status).then_some(v)
    })
    .await
}

fn pid_of(v: &std::sync::Arc<ServiceView>) -> u32 {
    v.state.instance().map(|r| r.pid).expect("an instance")
}

async fn control(d: &TestDaemon, id: &str, control: Control) -> ServiceAnswer {
    d.daemon
        .as_ref()
        .unwrap()
        .scheduler()
        .service_control(JobId::from_raw(id), control, None, "test".into())
        .await
        .expect("the service exists")
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// The pids of live (not zombie) processes whose command line contains `marker`.
/// Waits until no live process runs `marker`: a group that was signalled is gone a
/// moment after the service says it stopped, not at the same instant.
async fn wait_gone(marker: &str) {
    wait_for(&format!("no process running {marker}"), || async {
        with_marker(marker).is_empty().then_some(())
    })
    .await;
}

fn with_marker(marker: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'));
        if !zombie && cmdline(pid).contains(marker) {
            pids.push(pid);
        }
    }
    pids
}

fn log_names(dir: &TestDir, id: &str) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir.base().join("var/log/karajo/service").join(id))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn svc01_an_instance_starts_and_is_running_after_start_seconds() {
    let dir = TestDir::new(&service_conf("web", "exec sleep 1001", ""));
    let started = Instant::now();
    let d = TestDaemon::start(&dir).await;
    let starting = view(&d, "web");
    assert_eq!(starting.state.status.as_str(), "starting");
    let running = wait_status(&d, "web", "running").await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "running after {took:?}");
    let pid = pid_of(&running);
    assert_eq!(cmdline(pid), "sleep 1001");
    assert_eq!(log_names(&dir, "web"), ["web.1.running"]);
    let path = dir.base().join("var/log/karajo/service/web/web.1.running");
    let log = wait_for("the READY line", || async {
        std::fs::read_to_string(&path)
            .ok()
            .filter(|log| log.contains("=== READY after 1.0s (delay)"))
    })
    .await;
    assert!(log.contains("service: web: === START instance "), "{log}");
    d.stop().await;
    // A clean shutdown stops it and closes its log as canceled.
    wait_gone("sleep 1001").await;
    assert_eq!(log_names(&dir, "web"), ["web.1.canceled"]);
}

#[tokio::test]
async fn svc02_a_killed_instance_is_restarted_after_its_back_off() {
    let dir = TestDir::new(&service_conf("web", "exec sleep 1011", ""));
    let d = TestDaemon::start(&dir).await;
    let first = pid_of(&wait_status(&d, "web", "running").await);
    let killed = Instant::now();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(first as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let again = wait_for("a new instance", || async {
        let v = view(&d, "web");
        v.state
            .instance()
            .filter(|r| r.pid != first && v.state.status.as_str() == "running")
            .map(|r| r.pid)
    })
    .await;
    let took = killed.elapsed();
    assert!(
        took >= Duration::from_millis(1400),
        "running again after {took:?}"
    );
    assert_eq!(cmdline(again), "sleep 1011");
    assert_eq!(log_names(&dir, "web"), ["web.1.failed", "web.2.running"]);
    let history = wait_for("the history", || async {
        let path = dir
            .base()
            .join("var/lib/karajo/state/service/web.history.jsonl");
        std::fs::read_to_string(path).ok().filter(|t| !t.is_empty())
    })
    .await;
    let entry: serde_json::Value = serde_json::from_str(history.lines().next().unwrap()).unwrap();
    assert_eq!(entry["signal"], "KILL", "{entry}");
    assert_eq!(entry["reason"], "exited", "{entry}");
    let metrics = d
        .http
        .get(d.url("/karajo/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "karajo_service_up{service=\"web\"} 1",
        "karajo_service_state{service=\"web\",state=\"running\"} 1",
        "karajo_service_restarts_total{service=\"web\",reason=\"exited\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    d.stop().await;
}

#[tokio::test]
async fn svc04_failed_starts_end_fatal_after_start_retries() {
    let dir = TestDir::new(&service_conf("bad", "exit 1", "start_retries = 3"));
    let started = Instant::now();
    let d = TestDaemon::start(&dir).await;
    wait_status(&d, "bad", "fatal").await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(3400), "fatal after {took:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let names = log_names(&dir, "bad");
    assert_eq!(
        names,
        [
            "bad.1.failed",
            "bad.2.failed",
            "bad.3.failed",
            "bad.4.failed"
        ],
        "{names:?}"
    );
    d.stop().await;
}

#[tokio::test]
async fn svc06_restart_never_and_on_failure_follow_the_policy_table() {
    let dir = TestDir::new(&format!(
        "{}{}{}",
        service_conf("clean", "\"sleep 2; exit 0\"", "restart = never"),
        service_conf("dirty", "\"sleep 2; exit 1\"", "restart = never"),
        service_conf(
            "three",
            "\"sleep 2; exit 3\"",
            "restart = on-failure\nsuccess_exit_codes = 0,3"
        ),
    ));
    let d = TestDaemon::start(&dir).await;
    wait_status(&d, "clean", "stopped").await;
    wait_status(&d, "dirty", "fatal").await;
    wait_status(&d, "three", "stopped").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(log_names(&dir, "clean"), ["clean.1.success"]);
    assert_eq!(log_names(&dir, "dirty"), ["dirty.1.failed"]);
    assert_eq!(log_names(&dir, "three"), ["three.1.success"]);
    d.stop().await;
}

#[tokio::test]
async fn svc08_a_disable_stops_the_whole_group_escalating_to_kill() {
    let dir = TestDir::new(&service_conf(
        "stubborn",
        "\"trap '' TERM; sleep 1002 & wait\"",
        "stop_timeout = 2s",
    ));
    let d = TestDaemon::start(&dir).await;
    wait_status(&d, "stubborn", "running").await;
    assert!(!with_marker("sleep 1002").is_empty());
    let asked = Instant::now();
    let ServiceAnswer::Done(after) = control(&d, "stubborn", Control::Disable).await else {
        panic!("refused");
    };
    assert_eq!(after.state.status.as_str(), "stopping");
    wait_status(&d, "stubborn", "disabled").await;
    let took = asked.elapsed();
    assert!(
        took <= Duration::from_millis(2600),
        "disabled after {took:?}"
    );
    assert!(
        with_marker("sleep 1002").is_empty(),
        "{:?}",
        with_marker("sleep 1002")
    );
    assert_eq!(log_names(&dir, "stubborn"), ["stubborn.1.canceled"]);
    d.stop().await;
}

#[tokio::test]
async fn svc10_a_disable_survives_a_restart_of_karajo() {
    let dir = TestDir::new(&service_conf("web", "exec sleep 1012", ""));
    let d = TestDaemon::start(&dir).await;
    wait_status(&d, "web", "running").await;
    control(&d, "web", Control::Disable).await;
    wait_status(&d, "web", "disabled").await;
    d.stop().await;
    let d = TestDaemon::start(&dir).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(view(&d, "web").state.status.as_str(), "disabled");
    wait_gone("sleep 1012").await;
    control(&d, "web", Control::Enable).await;
    wait_status(&d, "web", "running").await;
    d.stop().await;
}

#[tokio::test]
async fn svc13_a_restart_replaces_the_instance_and_cancels_the_old_log() {
    let dir = TestDir::new(&service_conf("web", "exec sleep 1013", ""));
    let d = TestDaemon::start(&dir).await;
    let old = pid_of(&wait_status(&d, "web", "running").await);
    let before = view(&d, "web").state.saved.cas;
    let ServiceAnswer::Done(after) = control(&d, "web", Control::Restart).await else {
        panic!("refused");
    };
    assert!(after.state.saved.cas > before);
    let new = wait_for("a new pid", || async {
        let v = view(&d, "web");
        v.state.instance().map(|r| r.pid).filter(|p| *p != old)
    })
    .await;
    assert_ne!(new, old);
    wait_for("the old pid gone", || async {
        (!std::path::Path::new(&format!("/proc/{old}")).exists() || cmdline(old).is_empty())
            .then_some(())
    })
    .await;
    wait_for("the old log canceled", || async {
        log_names(&dir, "web")
            .contains(&"web.1.canceled".to_string())
            .then_some(())
    })
    .await;
    d.stop().await;
}

#[tokio::test]
async fn svc21_the_environment_is_the_fixed_one_with_the_service_variables() {
    let dir = TestDir::new(&service_conf(
        "envy",
        "\"env > env.txt; exec sleep 1006\"",
        "env = A=1",
    ));
    let d = TestDaemon::start(&dir).await;
    wait_status(&d, "envy", "running").await;
    let env =
        std::fs::read_to_string(dir.base().join("var/lib/karajo/service/envy/env.txt")).unwrap();
    assert!(env.contains("KARAJO_SERVICE_ID=envy\n"), "{env}");
    assert!(env.contains("KARAJO_SERVICE_INSTANCE="), "{env}");
    assert!(
        env.contains("KARAJO_SERVICE_PING_URL=http://127.0.0.1:"),
        "{env}"
    );
    assert!(env.contains("A=1\n"), "{env}");
    assert!(env.contains("PATH=/usr/local/sbin:"), "{env}");
    assert!(
        !env.contains("CARGO"),
        "karajo's own environment leaked: {env}"
    );
    d.stop().await;
}

#[tokio::test]
async fn svc23_a_clean_shutdown_stops_services_by_descending_priority() {
    let dir = TestDir::new(&format!(
        "{}{}",
        service_conf("a", "exec sleep 1021", "priority = 10"),
        service_conf("b", "exec sleep 1022", "priority = 20"),
    ));
    let d = TestDaemon::start(&dir).await;
    wait_status(&d, "a", "running").await;
    wait_status(&d, "b", "running").await;
    d.stop().await;
    wait_gone("sleep 1021").await;
    wait_gone("sleep 1022").await;
    let a =
        std::fs::read_to_string(dir.base().join("var/log/karajo/service/a/a.1.canceled")).unwrap();
    let b =
        std::fs::read_to_string(dir.base().join("var/log/karajo/service/b/b.1.canceled")).unwrap();
    let stop_line = |log: &str| {
        log.lines()
            .find(|l| l.contains("=== STOP"))
            .map(|l| l[..23].to_string())
            .unwrap_or_default()
    };
    assert!(stop_line(&b) <= stop_line(&a), "b stops first:\n{b}\n{a}");
    let a_start = a
        .lines()
        .find(|l| l.contains("=== START"))
        .unwrap()
        .to_string();
    let b_start = b
        .lines()
        .find(|l| l.contains("=== START"))
        .unwrap()
        .to_string();
    assert!(a_start[..23] <= b_start[..23], "a starts first");
}

#[tokio::test]
async fn svc04_fatal_is_notified_once_with_the_service_webhook_document() {
    let (url, mut hits) = crate::notify::webhook_server(Vec::new()).await;
    let dir = TestDir::new(&format!(
        "{}\n[notif \"hook\"]\nkind = webhook\nurl = {url}\n",
        service_conf(
            "bad",
            "\"echo going down; exit 1\"",
            "start_retries = 1\nnotif_on_fatal = hook\nnotif_on_failed = hook"
        )
    ));
    let d = TestDaemon::start(&dir).await;
    wait_status(&d, "bad", "fatal").await;
    let mut events = Vec::new();
    for _ in 0..2 {
        let hit = crate::notify::next_hit(&mut hits).await;
        let doc: serde_json::Value = serde_json::from_slice(&hit.body).unwrap();
        assert_eq!(doc["kind"], "service", "{doc}");
        assert_eq!(doc["id"], "bad", "{doc}");
        events.push(doc["event"].as_str().unwrap().to_string());
        if doc["event"] == "fatal" {
            assert!(
                doc["log_tail"].as_str().unwrap().contains("going down"),
                "{doc}"
            );
            assert!(
                doc["log_url"]
                    .as_str()
                    .unwrap()
                    .contains("/karajo/app/service/bad/log/"),
                "{doc}"
            );
        }
    }
    events.sort();
    assert_eq!(
        events,
        ["failed", "fatal"],
        "one failed (the streak's first), one fatal"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(hits.try_recv().is_err(), "nothing more");
    d.stop().await;
}

/// The times of the `=== START` lines in every segment of `id`, oldest first.
fn start_times(dir: &TestDir, id: &str) -> Vec<jiff::Timestamp> {
    let mut starts = Vec::new();
    for name in log_names(dir, id) {
        let text = std::fs::read_to_string(
            dir.base()
                .join("var/log/karajo/service")
                .join(id)
                .join(&name),
        )
        .unwrap_or_default();
        for line in text.lines().filter(|l| l.contains("=== START instance")) {
            let stamp = format!("{}Z", line[..19].replace(' ', "T"));
            starts.push(stamp.parse().unwrap());
        }
    }
    starts.sort();
    starts
}

#[tokio::test]
async fn svc03_failures_after_ready_back_off_exponentially_and_never_go_fatal() {
    let dir = TestDir::new(&service_conf("flaky", "\"sleep 2; exit 1\"", ""));
    let d = TestDaemon::start(&dir).await;
    let starts = wait_for("three spawns", || async {
        let starts = start_times(&dir, "flaky");
        (starts.len() >= 3).then_some(starts)
    })
    .await;
    let gap = |a: jiff::Timestamp, b: jiff::Timestamp| b.duration_since(a).as_millis();
    // Second resolution in the log lines: 2.5 s and 3.0 s gaps, each ±1 s.
    let (first, second) = (gap(starts[0], starts[1]), gap(starts[1], starts[2]));
    assert!((2000..=3000).contains(&first), "{starts:?}");
    assert!(
        (2000..=4000).contains(&second) && second >= first,
        "{starts:?}"
    );
    assert_ne!(view(&d, "flaky").state.status.as_str(), "fatal");
    d.stop().await;
}

#[tokio::test]
async fn svc05_a_restart_from_fatal_starts_afresh_with_its_counters_reset() {
    let dir = TestDir::new(&service_conf(
        "bad",
        "exit 1",
        "start_retries = 1\nrestart_delay = 100ms",
    ));
    let d = TestDaemon::start(&dir).await;
    wait_status(&d, "bad", "fatal").await;
    assert_eq!(log_names(&dir, "bad").len(), 2);
    let ServiceAnswer::Done(after) = control(&d, "bad", Control::Restart).await else {
        panic!("refused");
    };
    assert_ne!(after.state.status.as_str(), "fatal");
    wait_for("fatal again after two more", || async {
        (view(&d, "bad").state.status.as_str() == "fatal" && log_names(&dir, "bad").len() == 4)
            .then_some(())
    })
    .await;
    d.stop().await;
}

#[tokio::test]
async fn svc07_restart_always_restarts_clean_endings_too() {
    let dir = TestDir::new(&service_conf(
        "loop",
        "\"sleep 2; exit 0\"",
        "restart = always",
    ));
    let d = TestDaemon::start(&dir).await;
    let names = wait_for("three instances", || async {
        let names = log_names(&dir, "loop");
        (names.len() >= 3).then_some(names)
    })
    .await;
    assert!(
        names[..2].iter().all(|n| n.ends_with(".success")),
        "{names:?}"
    );
    assert_ne!(view(&d, "loop").state.status.as_str(), "fatal");
    d.stop().await;
}

#[tokio::test]
async fn svc09_the_stop_signal_is_the_configured_one() {
    let dir = TestDir::new(&service_conf(
        "polite",
        "\"trap 'echo got-int; exit 0' INT; while :; do sleep 0.1; done\"",
        "stop_signal = INT",
    ));
    let d = TestDaemon::start(&dir).await;
    wait_status(&d, "polite", "running").await;
    let asked = Instant::now();
    control(&d, "polite", Control::Disable).await;
    wait_status(&d, "polite", "disabled").await;
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    let log = std::fs::read_to_string(
        dir.base()
            .join("var/log/karajo/service/polite/polite.1.canceled"),
    )
    .unwrap();
    assert!(log.contains("got-int"), "{log}");
    assert!(log.contains("=== STOP"), "{log}");
    d.stop().await;
}

#[tokio::test]
async fn svc12_run_once_runs_a_disabled_service_once() {
    let dir = TestDir::new(&service_conf(
        "once",
        "\"sleep 1; exit 1\"",
        "disabled = true",
    ));
    let d = TestDaemon::start(&dir).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(view(&d, "once").state.status.as_str(), "disabled");
    assert!(log_names(&dir, "once").is_empty());
    control(&d, "once", Control::RunOnce(true)).await;
    wait_for("the one run", || async {
        (log_names(&dir, "once") == ["once.1.failed"]).then_some(())
    })
    .await;
    let done = wait_status(&d, "once", "disabled").await;
    assert!(!done.state.saved.run_once);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(log_names(&dir, "once"), ["once.1.failed"], "no restart");
    d.stop().await;
}

#[tokio::test]
async fn svc22_a_chatty_instance_rotates_its_log_within_the_retention() {
    let dir = TestDir::new(&service_conf(
        "chatty",
        "\"head -c 1048576 /dev/zero | tr '\\\\0' x | fold -w 100; exec sleep 1051\"",
        "log_max_size = 65536\nlog_retention = 3",
    ));
    let d = TestDaemon::start(&dir).await;
    let names = wait_for("the rotations", || async {
        let names = log_names(&dir, "chatty");
        let counter = view(&d, "chatty").state.instance().map_or(0, |r| r.segment);
        (counter >= 16 && names.len() <= 3 && names.iter().any(|n| n.ends_with(".running")))
            .then_some(names)
    })
    .await;
    assert!(names.len() <= 3, "{names:?}");
    let running = names.iter().find(|n| n.ends_with(".running")).unwrap();
    assert!(
        names
            .iter()
            .filter(|n| *n != running)
            .all(|n| n.ends_with(".rotated")),
        "{names:?}"
    );
    let path = dir
        .base()
        .join("var/log/karajo/service/chatty")
        .join(running);
    let text = wait_for("the running segment's first line", || async {
        std::fs::read_to_string(&path)
            .ok()
            .filter(|t| !t.is_empty())
    })
    .await;
    let first = text.lines().next().unwrap();
    assert!(first.contains("continued from #"), "{first}");
    d.stop().await;
}

#[tokio::test]
async fn svc27_a_signal_reaches_the_instance_without_a_restart() {
    let dir = TestDir::new(&service_conf(
        "hup",
        "\"trap 'echo got-hup' HUP; while :; do sleep 0.1; done\"",
        "",
    ));
    let d = TestDaemon::start(&dir).await;
    let pid = pid_of(&wait_status(&d, "hup", "running").await);
    let ServiceAnswer::Done(_) = control(
        &d,
        "hup",
        Control::Signal(karajo::config::ServiceSignal::Hup),
    )
    .await
    else {
        panic!("refused");
    };
    let path = dir.base().join("var/log/karajo/service/hup/hup.1.running");
    wait_for("got-hup", || async {
        std::fs::read_to_string(&path)
            .ok()
            .filter(|t| t.contains("got-hup"))
    })
    .await;
    assert_eq!(pid_of(&view(&d, "hup")), pid);
    d.stop().await;
    // With no live instance, a signal is refused.
    let dir = TestDir::new(&service_conf("off", "exec sleep 1052", "disabled = true"));
    let d = TestDaemon::start(&dir).await;
    assert!(matches!(
        control(
            &d,
            "off",
            Control::Signal(karajo::config::ServiceSignal::Hup)
        )
        .await,
        ServiceAnswer::NotRunning(_)
    ));
    d.stop().await;
}

#[tokio::test]
async fn svc28_a_reload_keeps_changes_removes_and_adds_services() {
    let conf = |y: &str, third: &str| {
        format!(
            "{}{}{}",
            service_conf("x", "exec sleep 1061", ""),
            service_conf("y", y, ""),
            third
        )
    };
    let dir = TestDir::new(&conf(
        "exec sleep 1062",
        &service_conf("z", "exec sleep 1063", ""),
    ));
    let d = TestDaemon::start(&dir).await;
    let x = pid_of(&wait_status(&d, "x", "running").await);
    let y = pid_of(&wait_status(&d, "y", "running").await);
    wait_status(&d, "z", "running").await;
    let text = std::fs::read_to_string(dir.config_file()).unwrap();
    let changed = text.replace(
        &conf("exec sleep 1062", &service_conf("z", "exec sleep 1063", "")),
        &conf("exec sleep 1064", &service_conf("w", "exec sleep 1065", "")),
    );
    assert_ne!(text, changed);
    std::fs::write(dir.config_file(), changed).unwrap();
    d.daemon.as_ref().unwrap().reload().await.unwrap();
    let w = pid_of(&wait_status(&d, "w", "running").await);
    let y2 = wait_for("y restarted", || async {
        let v = view(&d, "y");
        v.state
            .instance()
            .map(|r| r.pid)
            .filter(|p| *p != y && v.state.status.as_str() == "running")
    })
    .await;
    assert_eq!(pid_of(&view(&d, "x")), x, "x untouched");
    assert_eq!(cmdline(y2), "sleep 1064");
    assert_eq!(cmdline(w), "sleep 1065");
    wait_for("z gone", || async {
        with_marker("sleep 1063").is_empty().then_some(())
    })
    .await;
    let snapshot = d.daemon.as_ref().unwrap().scheduler().snapshot();
    assert!(snapshot.service("z").is_none());
    d.stop().await;
}

#[tokio::test]
async fn svc18_ready_notify_comes_from_the_notify_socket() {
    // Debian's python3 (the tests install it), as a program written for sd_notify.
    let script = r#""sleep 1; /usr/bin/python3 -c 'import os, socket; a = os.environ[\"NOTIFY_SOCKET\"]; a = chr(0) + a[1:] if a.startswith(\"@\") else a; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b\"READY=1\", a)'; exec sleep 1004""#;
    let dir = TestDir::new(&service_conf("notified", script, "ready = notify"));
    let started = Instant::now();
    let d = TestDaemon::start(&dir).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(view(&d, "notified").state.status.as_str(), "starting");
    wait_status(&d, "notified", "running").await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(950), "ready after {took:?}");
    let log = std::fs::read_to_string(
        dir.base()
            .join("var/log/karajo/service/notified/notified.1.running"),
    )
    .unwrap_or_default();
    assert!(!log.contains("Traceback"), "{log}");
    d.stop().await;
}

/// A program written for systemd's `Type=notify` that uses the real `systemd-notify`
/// binary (Debian's `systemd` package; the test script installs it): `--ready` makes the
/// instance ready, `WATCHDOG=1` keeps it alive past `ping_timeout`, and when the
/// watchdog pings stop, the liveness deadline stops the instance and a new one starts.
#[tokio::test]
async fn svc18b_the_real_systemd_notify_binary_makes_an_instance_ready_and_alive() {
    let script = r#""sleep 1; systemd-notify --ready --status=warming; for i in 1 2 3 4 5 6; do sleep 0.5; systemd-notify WATCHDOG=1; done; exec sleep 1008""#;
    let dir = TestDir::new(&service_conf(
        "systemd",
        script,
        "ready = notify\nping_timeout = 2s",
    ));
    let started = Instant::now();
    let d = TestDaemon::start(&dir).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(view(&d, "systemd").state.status.as_str(), "starting");
    let running = wait_status(&d, "systemd", "running").await;
    let first = pid_of(&running);
    assert!(started.elapsed() >= Duration::from_millis(950));
    // The watchdog pings run until about 4 s; without them the 2 s deadline from ready
    // (about 1 s) would have passed at 3 s.
    while started.elapsed() < Duration::from_millis(3_800) {
        let v = view(&d, "systemd");
        assert_eq!(v.state.status.as_str(), "running", "{:?}", v.state);
        assert_eq!(pid_of(&v), first);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The last ping is at about 4 s: the instance is stopped for liveness about 2 s later.
    wait_for("a liveness restart", || async {
        let v = view(&d, "systemd");
        v.state.instance().map(|r| r.pid).filter(|p| *p != first)
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(5_500),
        "{:?}",
        started.elapsed()
    );
    let log = std::fs::read_to_string(
        dir.base()
            .join("var/log/karajo/service/systemd/systemd.1.failed"),
    )
    .unwrap();
    assert!(log.contains("no ping within ping_timeout 2s"), "{log}");
    assert!(
        !log.contains("systemd-notify:"),
        "no complaint from systemd-notify: {log}"
    );
    d.stop().await;
}

/// Issue 13 item 8: what a running instance's processes use (the whole process group,
/// read from /proc) is on the metrics and on the service page.
#[tokio::test]
async fn an_instances_cpu_and_memory_are_measured_over_its_whole_process_group() {
    // A child that burns CPU then sleeps, and the leader (Debian's python3) holding 48 MiB.
    let script = r#""(i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exec sleep 1012) & exec /usr/bin/python3 -c 'import time; b = b\"x\" * (48 << 20); time.sleep(1012)'""#;
    let dir = TestDir::new(&service_conf("busy", script, ""));
    let d = TestDaemon::start(&dir).await;
    wait_status(&d, "busy", "running").await;
    wait_for("the busy child done", || async {
        (!with_marker("sleep 1012").is_empty()).then_some(())
    })
    .await;
    let (memory, cpu, processes) = wait_for("the python leader's memory", || async {
        let metrics = d
            .http
            .get(d.url("/karajo/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let value = |name: &str| -> Option<f64> {
            let prefix = format!("{name}{{service=\"busy\"}} ");
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
        };
        let memory = value("karajo_service_resident_memory_bytes")?;
        (memory >= f64::from(48 << 20)).then_some((
            memory,
            value("karajo_service_cpu_seconds_total")?,
            value("karajo_service_processes")?,
        ))
    })
    .await;
    assert!(memory < f64::from(512 << 20), "{memory}");
    // The loop's CPU time is counted: it ran in the group's child, which exec'd sleep.
    assert!(cpu >= 0.05, "cpu {cpu}");
    assert_eq!(processes, 2.0, "python and the child's sleep");
    let page = d
        .http
        .get(d.url("/karajo/app/service/busy"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("resident in <span id=\"usage-processes\">2</span> processes"),
        "{page}"
    );
    assert!(page.contains("id=\"usage-cpu-percent\""), "{page}");
    d.stop().await;
    wait_gone("sleep 1012").await;
}

/// A command that cannot start (a missing binary, an unknown
/// `user`; a `working_dir` that cannot be created) is never a crash loop: each failed start waits its back-off, the service ends
/// `fatal` after `start_retries`, and the reason is in its log and in the event log.
#[tokio::test]
async fn a_service_that_cannot_start_backs_off_then_is_fatal_with_the_reason() {
    let extra = "start_retries = 2\nrestart_delay = 200ms";
    let dir = TestDir::new(&format!(
        "{}\n{}\n{}",
        service_conf("nobin", "exec /nonexistent/server --port 1", extra),
        service_conf(
            "nodir",
            "exec sleep 1013",
            &format!("{extra}\nworking_dir = /dev/null/dir")
        ),
        service_conf(
            "nouser",
            "exec sleep 1014",
            &format!("{extra}\nuser = no-such-user-here")
        ),
    ));
    let started = Instant::now();
    let d = TestDaemon::start(&dir).await;
    for id in ["nobin", "nodir", "nouser"] {
        let v = wait_status(&d, id, "fatal").await;
        assert_eq!(v.state.start_failures, 3, "{id}: {:?}", v.state);
    }
    // Three starts with 200 ms then 400 ms between them.
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    for id in ["nobin", "nodir", "nouser"] {
        assert_eq!(
            view(&d, id).state.status.as_str(),
            "fatal",
            "{id} stays fatal"
        );
    }
    let logs = |id: &str| -> String {
        let base = dir.base().join(format!("var/log/karajo/service/{id}"));
        log_names(&dir, id)
            .iter()
            .map(|n| std::fs::read_to_string(base.join(n)).unwrap())
            .collect()
    };
    let nobin = logs("nobin");
    assert!(nobin.contains("/nonexistent/server: not found"), "{nobin}");
    let nodir = logs("nodir");
    assert!(nodir.contains("/dev/null/dir"), "{nodir}");
    let nouser = logs("nouser");
    assert!(nouser.contains("no such user"), "{nouser}");
    let events: serde_json::Value = d
        .http
        .get(d.url("/karajo/api/event?level=error"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = events.to_string();
    for id in ["nobin", "nodir", "nouser"] {
        assert!(
            text.contains(&format!("\"service\":\"{id}\"")),
            "{id} in {text}"
        );
    }
    d.stop().await;
}

#[tokio::test]
async fn svc19_a_pid_file_names_the_process_to_watch_and_its_end_is_the_instance_end() {
    let dir = TestDir::new(&service_conf(
        "daemon",
        "\"sleep 1005 & echo $! > app.pid\"",
        "pid_file = app.pid\ncheck_interval = 200ms",
    ));
    let d = TestDaemon::start(&dir).await;
    let running = wait_status(&d, "daemon", "running").await;
    let pid = pid_of(&running);
    let written =
        std::fs::read_to_string(dir.base().join("var/lib/karajo/service/daemon/app.pid")).unwrap();
    assert_eq!(
        written.trim(),
        pid.to_string(),
        "the file's pid, not the launcher's"
    );
    assert_eq!(cmdline(pid), "sleep 1005");
    let killed = Instant::now();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let again = wait_for("a new daemon", || async {
        let v = view(&d, "daemon");
        v.state
            .instance()
            .map(|r| r.pid)
            .filter(|p| *p != pid && v.state.status.as_str() == "running")
    })
    .await;
    assert!(
        killed.elapsed() < Duration::from_millis(200 + 500 + 1000 + 1500),
        "{:?}",
        killed.elapsed()
    );
    assert_eq!(cmdline(again), "sleep 1005");
    d.stop().await;
    wait_gone("sleep 1005").await;
}

#[tokio::test]
async fn svc20_a_stale_pid_file_is_never_adopted() {
    let dir = TestDir::new(&service_conf(
        "daemon",
        "\"sleep 1007 & echo $! > app.pid\"",
        "pid_file = app.pid\ncheck_interval = 200ms",
    ));
    dir.write("var/lib/karajo/service/daemon/app.pid", "1\n");
    let d = TestDaemon::start(&dir).await;
    let running = wait_status(&d, "daemon", "running").await;
    let pid = pid_of(&running);
    assert_ne!(pid, 1);
    assert_eq!(cmdline(pid), "sleep 1007");
    d.stop().await;
}

#[tokio::test]
async fn svc14_a_ping_before_ready_does_not_keep_an_instance_alive_after_it() {
    let dir = TestDir::new(&service_conf(
        "pinger",
        "\"curl -fsS \\\"$KARAJO_SERVICE_PING_URL\\\" >/dev/null; exec sleep 1071\"",
        "ping_timeout = 2s",
    ));
    let started = Instant::now();
    let d = TestDaemon::start(&dir).await;
    wait_status(&d, "pinger", "running").await;
    let first = pid_of(&view(&d, "pinger"));
    // Ready at 1 s; the one ping came before, so the deadline is ready + 2 s.
    let restarted = wait_for("the liveness failure", || async {
        let v = view(&d, "pinger");
        v.state
            .last_exit
            .clone()
            .map(|exit| (exit, v.state.status.as_str()))
    })
    .await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(2900), "failed after {took:?}");
    assert_eq!(restarted.0.reason.as_str(), "liveness", "{:?}", restarted.0);
    wait_for("a new instance", || async {
        let v = view(&d, "pinger");
        v.state.instance().map(|r| r.pid).filter(|p| *p != first)
    })
    .await;
    d.stop().await;
}

#[tokio::test]
async fn svc15_an_instance_that_keeps_pinging_stays_up() {
    let dir = TestDir::new(&service_conf(
        "steady",
        "\"while :; do curl -fsS \\\"$KARAJO_SERVICE_PING_URL\\\" >/dev/null; sleep 0.5; done\"",
        "ping_timeout = 2s",
    ));
    let d = TestDaemon::start(&dir).await;
    let pid = pid_of(&wait_status(&d, "steady", "running").await);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let v = view(&d, "steady");
    assert_eq!(v.state.status.as_str(), "running");
    assert_eq!(pid_of(&v), pid, "one instance throughout");
    assert!(v.state.last_ping.is_some());
    d.stop().await;
}

#[tokio::test]
async fn svc17_ready_by_ping_times_out_into_a_failed_start() {
    let dir = TestDir::new(&service_conf(
        "silent",
        "exec sleep 1072",
        "ready = ping\nstart_timeout = 2s",
    ));
    let started = Instant::now();
    let d = TestDaemon::start(&dir).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(view(&d, "silent").state.status.as_str(), "starting");
    let exit = wait_for("the start timeout", || async {
        view(&d, "silent").state.last_exit.clone()
    })
    .await;
    assert!(started.elapsed() >= Duration::from_millis(1900));
    assert_eq!(exit.reason.as_str(), "start_timeout", "{exit:?}");
    wait_status(&d, "silent", "backoff").await;
    d.stop().await;
}

#[tokio::test]
async fn svc26_a_daemon_left_running_is_adopted_by_the_next_karajo() {
    let dir = TestDir::new(&service_conf(
        "kept",
        "\"sleep 1008 & echo $! > app.pid\"",
        "pid_file = app.pid\ncheck_interval = 200ms\non_exit = leave",
    ));
    let d = TestDaemon::start(&dir).await;
    let first = wait_status(&d, "kept", "running").await;
    let pid = pid_of(&first);
    let instance = first.state.instance().unwrap().instance.clone();
    d.stop().await;
    assert_eq!(cmdline(pid), "sleep 1008", "left running");
    let names = log_names(&dir, "kept");
    assert_eq!(names, ["kept.1.rotated"], "{names:?}");
    let d = TestDaemon::start(&dir).await;
    let adopted = wait_status(&d, "kept", "running").await;
    assert_eq!(pid_of(&adopted), pid, "the same process");
    assert_eq!(adopted.state.instance().unwrap().instance, instance);
    let path = dir
        .base()
        .join("var/log/karajo/service/kept/kept.2.running");
    wait_for("the adopted line", || async {
        std::fs::read_to_string(&path)
            .ok()
            .filter(|t| t.contains(&format!("=== adopted pid {pid} after karajo restart")))
    })
    .await;
    // Its end is seen and answered by the policy, as for any pid-file daemon.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    wait_for("a new daemon", || async {
        let v = view(&d, "kept");
        v.state.instance().map(|r| r.pid).filter(|p| *p != pid)
    })
    .await;
    d.stop().await;
    for pid in with_marker("sleep 1008") {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid as i32).unwrap(),
            rustix::process::Signal::KILL,
        );
    }
}

#[tokio::test]
async fn a_service_runs_as_its_user_when_karajo_is_root() {
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("skipped: switching users needs root");
        return;
    }
    let dir = TestDir::new(&service_conf(
        "low",
        "\"echo uid=$(id -u) gid=$(id -g); exec sleep 1081\"",
        "user = nobody\nworking_dir = /tmp",
    ));
    let d = TestDaemon::start(&dir).await;
    wait_status(&d, "low", "running").await;
    let path = dir.base().join("var/log/karajo/service/low/low.1.running");
    let log = wait_for("the ids", || async {
        std::fs::read_to_string(&path)
            .ok()
            .filter(|t| t.contains("uid="))
    })
    .await;
    assert!(log.contains("uid=65534 gid=65534"), "{log}");
    d.stop().await;
}

#[tokio::test]
async fn svc29_the_history_keeps_the_newest_entries() {
    let dir = TestDir::new(&service_conf(
        "short",
        "\"sleep 0.2; exit 1\"",
        "history = 3\nstart_retries = 10\nrestart_delay = 100ms\nrestart_delay_max = 200ms\nstart_seconds = 0s",
    ));
    let d = TestDaemon::start(&dir).await;
    let path = dir
        .base()
        .join("var/lib/karajo/state/service/short.history.jsonl");
    // Six instances ended: the file was compacted at six lines to the newest three.
    wait_for("six instances", || async {
        (log_names(&dir, "short")
            .iter()
            .filter(|n| n.ends_with(".failed"))
            .count()
            >= 6)
            .then_some(())
    })
    .await;
    control(&d, "short", Control::Disable).await;
    wait_status(&d, "short", "disabled").await;
    let answer: serde_json::Value = d
        .http
        .get(d.url("/karajo/api/service?id=short&history=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let history = answer["data"]["history"].as_array().unwrap();
    assert_eq!(history.len(), 3, "{answer}");
    let started: Vec<&str> = history
        .iter()
        .map(|h| h["started"].as_str().unwrap())
        .collect();
    assert!(
        started[0] > started[1] && started[1] > started[2],
        "newest first: {started:?}"
    );
    // The last instance's entry may be being appended (the file holds six lines
    // between that append and its compaction).
    wait_for("the history compacted below six lines", || async {
        let lines = std::fs::read_to_string(&path).ok()?.lines().count();
        (lines < 6).then_some(())
    })
    .await;
    d.stop().await;
}
