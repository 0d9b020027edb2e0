//! Timers driven by an injected clock: a calendar schedule and an interval fire when
//! the clock reaches their due time, without sleeping for real.

use std::sync::Arc;

use jiff::Timestamp;
use karajo::clock::ManualClock;

use crate::helpers::*;

#[tokio::test]
async fn a_schedule_fires_at_its_due_time_in_its_time_zone() {
    let dir = TestDir::new(
        r#"
[job "berlin"]
schedule = daily@02:30
timezone = Europe/Berlin
command = echo tick
"#,
    );
    let start: Timestamp = "2026-03-28T12:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let d = TestDaemon::start_with_clock(&dir, clock.clone()).await;
    // 02:30 in Berlin on 2026-03-29 does not exist (clocks jump 02:00 → 03:00): the run
    // is due at the jump, 01:00 UTC.
    let job = d.job("berlin").await;
    assert_eq!(job["next_run"], "2026-03-29T01:00:00Z");
    assert_eq!(job["timezone"], "Europe/Berlin");
    clock.set("2026-03-29T00:59:00Z".parse().unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(dir.log_names("berlin").is_empty());
    clock.set("2026-03-29T01:00:00Z".parse().unwrap());
    let log = dir.wait_log("berlin", 1, "success").await;
    assert!(
        log.contains("KARAJO_TRIGGER") || log.contains(": tick\n"),
        "{log}"
    );
    // The log is renamed just before the scheduler records the run's end.
    wait_for("next run and status", || async {
        let job = d.job("berlin").await;
        (job["next_run"] == "2026-03-30T00:30:00Z" && job["status"] == "success").then_some(job)
    })
    .await;
    d.stop().await;
}

#[tokio::test]
async fn a_cron_expression_fires_on_its_minutes() {
    let dir = TestDir::new(
        r#"
[job "cron"]
schedule = */15 * * * *
command = echo $KARAJO_TRIGGER
"#,
    );
    let start: Timestamp = "2026-01-10T10:07:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let d = TestDaemon::start_with_clock(&dir, clock.clone()).await;
    assert_eq!(d.job("cron").await["next_run"], "2026-01-10T10:15:00Z");
    clock.set("2026-01-10T10:15:00Z".parse().unwrap());
    let log = dir.wait_log("cron", 1, "success").await;
    assert!(log.contains(": timer\n"), "{log}");
    d.stop().await;
}

#[tokio::test]
async fn an_interval_job_runs_at_start_then_an_interval_after_each_finish() {
    let dir = TestDir::new(
        r#"
[job "every"]
interval = 5m
command = echo $KARAJO_JOB_COUNTER
"#,
    );
    let start: Timestamp = "2026-01-10T10:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let d = TestDaemon::start_with_clock(&dir, clock.clone()).await;
    dir.wait_log("every", 1, "success").await;
    wait_for("next run after the first", || async {
        (d.job("every").await["next_run"] == "2026-01-10T10:05:00Z").then_some(())
    })
    .await;
    clock.set("2026-01-10T10:05:00Z".parse().unwrap());
    dir.wait_log("every", 2, "success").await;
    d.stop().await;
}

#[tokio::test]
async fn a_paused_interval_job_skips_its_ticks_without_running() {
    let dir = TestDir::new(
        r#"
[karajo]
epoch_window = 1h

[job "every"]
path = /every
interval = 5m
command = echo $KARAJO_JOB_COUNTER
"#,
    );
    // Signed API calls carry the real time, so this clock starts at the real time and
    // the epoch window covers the minutes it moves.
    let start = Timestamp::from_second(Timestamp::now().as_second()).unwrap();
    let minutes = |m: i64| start + jiff::SignedDuration::from_mins(m);
    let clock = Arc::new(ManualClock::new(start));
    let d = TestDaemon::start_with_clock(&dir, clock.clone()).await;
    dir.wait_log("every", 1, "success").await;
    d.wait_status("every", "success").await;
    assert_eq!(d.api_form("pause", "every").await.status(), 200);
    clock.set(minutes(30));
    let expected = karajo::web::api::json::time(Some(minutes(35)));
    let job = wait_for("the skipped tick to move next_run", || async {
        let job = d.job("every").await;
        (job["next_run"] == expected.as_str()).then_some(job)
    })
    .await;
    assert_eq!(job["status"], "paused");
    assert_eq!(dir.log_names("every"), ["every.1.success"]);
    // Resumed, the overdue job runs at once.
    clock.set(minutes(31));
    assert_eq!(d.api_form("resume", "every").await.status(), 200);
    dir.wait_log("every", 2, "success").await;
    d.stop().await;
}
