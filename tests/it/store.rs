//! Run logs and state across restarts: retention, counters never reused, pause kept in
//! the state file, a Go `.paused` log honoured, and runs interrupted by a crash closed
//! as failed.

use crate::helpers::*;

const HOOK: &str = r#"
[job "hook"]
path = /hook
log_retention = 2
command = echo run $KARAJO_JOB_COUNTER
"#;

#[tokio::test]
async fn retention_keeps_the_newest_logs_and_counters_continue_after_a_restart() {
    let dir = TestDir::new(HOOK);
    let d = TestDaemon::start(&dir).await;
    for n in 1..=3 {
        assert_eq!(d.run_hook("/hook", &epoch_body()).await.status(), 200);
        dir.wait_log("hook", n, "success").await;
        d.wait_status("hook", "success").await;
    }
    assert_eq!(dir.log_names("hook"), ["hook.2.success", "hook.3.success"]);
    d.stop().await;

    let d = TestDaemon::start(&dir).await;
    let job = d.job("hook").await;
    assert_eq!(job["status"], "success");
    assert_ne!(job["last_run"], "0001-01-01T00:00:00Z");
    assert_eq!(d.run_hook("/hook", &epoch_body()).await.status(), 200);
    let log = dir.wait_log("hook", 4, "success").await;
    assert!(log.contains(": run 4\n"), "{log}");
    d.stop().await;
}

#[tokio::test]
async fn a_pause_survives_a_restart_through_the_state_file() {
    let dir = TestDir::new(HOOK);
    let d = TestDaemon::start(&dir).await;
    assert_eq!(d.api_form("pause", "hook").await.status(), 200);
    d.stop().await;
    // No empty `.paused` logs burn counters.
    assert!(dir.log_names("hook").is_empty());
    let state = std::fs::read_to_string(dir.base().join("var/lib/karajo/state.json")).unwrap();
    assert!(
        state.contains("\"paused\":true") || state.contains("\"paused\": true"),
        "{state}"
    );

    let d = TestDaemon::start(&dir).await;
    assert_eq!(d.job("hook").await["status"], "paused");
    assert_eq!(d.run_hook("/hook", &epoch_body()).await.status(), 412);
    d.stop().await;
}

#[tokio::test]
async fn logs_written_by_karajo_go_are_read_and_a_newest_paused_log_is_honoured() {
    let dir = TestDir::new(HOOK);
    dir.write(
        "var/log/karajo/job/hook/hook.7.success",
        "2023-01-09 00:00:00 UTC job: hook: ok\n",
    );
    dir.write("var/log/karajo/job/hook/hook.8.paused", "");
    let d = TestDaemon::start(&dir).await;
    let job = d.job("hook").await;
    assert_eq!(job["status"], "paused");
    let res = d
        .http
        .get(d.url("/karajo/api/job_exec/log?id=hook&counter=7"))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["data"]["name"], "hook.7.success");
    assert_eq!(d.api_form("resume", "hook").await.status(), 200);
    assert_eq!(d.run_hook("/hook", &epoch_body()).await.status(), 200);
    dir.wait_log("hook", 9, "success").await;
    d.stop().await;
}

#[tokio::test]
async fn a_log_left_running_by_a_crash_is_closed_as_failed_and_its_counter_kept() {
    let dir = TestDir::new(HOOK);
    dir.write(
        "var/log/karajo/job/hook/hook.3.running",
        "2023-01-09 00:00:00 UTC job: hook: === BEGIN\n2023-01-09 00:00:00 UTC job: hook: half a li",
    );
    let d = TestDaemon::start(&dir).await;
    let log = dir.wait_log("hook", 3, "failed").await;
    assert!(log.contains("half a li\n"), "{log}");
    assert!(log.contains("interrupted"), "{log}");
    assert_eq!(d.job("hook").await["status"], "failed");
    assert_eq!(d.run_hook("/hook", &epoch_body()).await.status(), 200);
    dir.wait_log("hook", 4, "success").await;
    d.stop().await;
}
