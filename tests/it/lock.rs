//! The lock on `dir_base`: a second daemon on the same `dir_base` (on another port)
//! refuses to start, names the holder's pid and the lock file, and disturbs nothing of
//! the first one's running job; once the first stops, a new one starts.

use karajo::Daemon;

use crate::helpers::*;

const SLOW: &str = r#"
[job "slow"]
path = /slow
command = sleep 30
"#;

#[tokio::test]
async fn a_second_daemon_on_the_same_dir_base_refuses_and_touches_nothing() {
    let dir = TestDir::new(SLOW);
    let first = TestDaemon::start(&dir).await;
    assert_eq!(first.run_hook("/slow", &epoch_body()).await.status(), 200);
    dir.wait_log("slow", 1, "running").await;
    wait_for("the run's group record", || async {
        group_recorded(dir.base(), "slow.1").then_some(())
    })
    .await;
    // The first daemon writes its state soon after the run starts; then it rests.
    let state_file = dir.base().join("var/lib/karajo/state.json");
    wait_for("the state file to record run 1", || {
        let state_file = state_file.clone();
        async move {
            let text = std::fs::read(&state_file).ok()?;
            let state: serde_json::Value = serde_json::from_slice(&text).ok()?;
            (state["jobs"]["job/slow"]["counter"] == 1).then_some(())
        }
    })
    .await;
    let state_before = std::fs::read(&state_file).ok();

    // Another port: the refusal comes from the lock, not from the address.
    let err = Daemon::new(dir.config_file())
        .listen_address("127.0.0.1:0")
        .start()
        .await
        .expect_err("a second daemon on the same dir_base must not start");
    let lock_file = dir.base().join("var/run/karajo/karajo.lock");
    assert!(matches!(err, karajo::DaemonError::Lock(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "another karajo (pid {}) is running on {}: {} is locked",
            std::process::id(),
            dir.base().display(),
            lock_file.display()
        )
    );

    // The first daemon's run goes on: its group, its log and the state are untouched.
    assert!(
        group_recorded(dir.base(), "slow.1"),
        "the group record was removed"
    );
    assert_eq!(dir.log_names("slow"), ["slow.1.running"]);
    assert_eq!(first.job("slow").await["status"], "running");
    assert_eq!(std::fs::read(&state_file).ok(), state_before);

    first.stop().await;
    dir.wait_log("slow", 1, "canceled").await;
    let again = TestDaemon::start(&dir).await;
    assert_eq!(again.run_hook("/slow", &epoch_body()).await.status(), 200);
    dir.wait_log("slow", 2, "running").await;
    again.stop().await;
}

#[tokio::test]
async fn a_dropped_daemon_releases_the_lock() {
    let dir = TestDir::new(SLOW);
    let first = dir.daemon().start().await.expect("first starts");
    drop(first);
    let second = TestDaemon::start(&dir).await;
    second.stop().await;
}
