//! Scheduling policies with a real daemon and real commands (issue 15): a failing
//! command retried with its attempt in the log and the environment, mailing only the
//! last failure; a retry kept across a kill -9; chains passing the parent's run; a
//! skipped trigger; runs side by side; a missed slot caught up after a restart.

use std::path::Path;
use std::time::Duration;

use rustix::process::Signal;

use crate::helpers::*;
use crate::notify::{next_hit, webhook_server};
use crate::process::{Proc, conf_with_port, free_port};

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_failing_command_is_retried_and_only_its_last_failure_is_notified_as_failed() {
    let (url, mut hits) = webhook_server(Vec::new()).await;
    let out = tempfile::tempdir().unwrap();
    let record = out.path().join("attempts");
    let dir = TestDir::new(&format!(
        r#"
[notif "ops"]
kind = webhook
url = {url}

[notif "dev"]
kind = webhook
url = {url}

[job "flaky"]
path = /flaky
retry = 2
retry_delay = 1s
retry_delay_max = 1s
notif_on_failed = ops
notif_on_retry = dev
on_failure = cleanup
command = "echo $KARAJO_JOB_COUNTER $KARAJO_TRIGGER $KARAJO_RETRY_ATTEMPT/$KARAJO_RETRY_ATTEMPTS of $KARAJO_RETRY_OF >> {record}; exit 1"

[job "cleanup"]
command = "echo $KARAJO_PARENT_JOB $KARAJO_PARENT_COUNTER $KARAJO_PARENT_STATUS $KARAJO_TRIGGER >> {record}.chain"
"#,
        record = record.display()
    ));
    let d = TestDaemon::start(&dir).await;
    assert_eq!(d.run_hook("/flaky", &epoch_body()).await.status(), 200);
    let third = dir.wait_log("flaky", 3, "failed").await;
    assert!(third.contains("=== RETRY 3/3 of #1\n"), "{third}");
    assert!(third.contains("=== TRIGGER: retry\n"), "{third}");
    assert_eq!(
        lines(&record),
        ["1 webhook / of", "2 retry 2/3 of 1", "3 retry 3/3 of 1"]
    );
    // The chain runs once, after the last attempt, and sees its parent.
    dir.wait_log("cleanup", 1, "success").await;
    assert_eq!(
        lines(&out.path().join("attempts.chain")),
        ["flaky 3 failed chain"]
    );
    // Two failures went to `notif_on_retry`, the last one to `notif_on_failed`.
    let mut sent = Vec::new();
    for _ in 0..3 {
        let hit = next_hit(&mut hits).await;
        let doc: serde_json::Value = serde_json::from_slice(&hit.body).unwrap();
        sent.push(format!(
            "{} {} {}",
            doc["counter"], doc["notif"], doc["event"]
        ));
    }
    sent.sort_unstable();
    assert_eq!(
        sent,
        [
            r#"1 "dev" "failed""#,
            r#"2 "dev" "failed""#,
            r#"3 "ops" "failed""#
        ]
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(hits.try_recv().is_err(), "one message per attempt");
    d.stop().await;
}

#[tokio::test]
async fn a_waiting_retry_survives_a_kill_and_runs_after_the_restart() {
    let out = tempfile::tempdir().unwrap();
    let flag = out.path().join("failed-once");
    let port = free_port();
    let dir = TestDir::new(&conf_with_port(
        port,
        &format!(
            r#"
[job "once"]
path = /once
retry = 1
retry_delay = 4s
retry_delay_max = 4s
command = "if [ -e {flag} ]; then echo second; else touch {flag}; exit 1; fi"
"#,
            flag = flag.display()
        ),
    ));
    let proc = Proc::start(&dir, port).await;
    let body = epoch_body();
    let sign = karajo::auth::sign_hmac_sha256(SECRET.as_bytes(), body.as_bytes());
    let res = proc
        .http
        .post(format!("{}/karajo/api/job_exec/run/once", proc.base_url))
        .header("X-Karajo-Sign", sign)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    dir.wait_log("once", 1, "failed").await;
    let state = dir.base().join("var/lib/karajo/state.json");
    wait_for("the retry in the state file", || async {
        let text = std::fs::read_to_string(&state).ok()?;
        text.contains("\"retry\"").then_some(())
    })
    .await;
    proc.signal(Signal::KILL);
    drop(proc);
    let proc = Proc::start(&dir, port).await;
    let log = dir.wait_log("once", 2, "success").await;
    assert!(log.contains("=== RETRY 2/2 of #1\n"), "{log}");
    proc.signal(Signal::TERM);
}

#[tokio::test]
async fn overlap_skip_refuses_a_trigger_while_running_and_allow_runs_side_by_side() {
    let dir = TestDir::new(
        r#"
[job "skip"]
path = /skip
overlap = skip
command = sleep 3

[job "wide"]
path = /wide
overlap = allow
max_parallel = 2
command = "sleep 2; echo $KARAJO_JOB_COUNTER"
"#,
    );
    let d = TestDaemon::start(&dir).await;
    assert_eq!(d.run_hook("/skip", &epoch_body()).await.status(), 200);
    d.wait_status("skip", "running").await;
    assert_eq!(d.run_hook("/skip", &epoch_body()).await.status(), 429);

    for _ in 0..2 {
        assert_eq!(d.run_hook("/wide", &epoch_body()).await.status(), 200);
    }
    // Both run at once, each with its own counter and log.
    wait_for("two runs side by side", || async {
        let names = dir.log_names("wide");
        (names.iter().filter(|n| n.ends_with(".running")).count() == 2).then_some(())
    })
    .await;
    dir.wait_log("wide", 1, "success").await;
    dir.wait_log("wide", 2, "success").await;
    dir.wait_log("skip", 1, "success").await;
    assert_eq!(
        dir.log_names("skip").len(),
        1,
        "the skipped trigger ran nothing"
    );
    d.stop().await;
}

#[tokio::test]
async fn a_slot_missed_while_karajo_was_down_is_caught_up_once_at_the_next_start() {
    let port = free_port();
    let dir = TestDir::new(&conf_with_port(
        port,
        r#"
[job "tick"]
schedule = "*/2 * * * * *"
catch_up = once
command = echo $KARAJO_TRIGGER $KARAJO_CATCH_UP_SLOT
"#,
    ));
    let mut proc = Proc::start(&dir, port).await;
    dir.wait_log("tick", 1, "success").await;
    proc.signal(Signal::TERM);
    proc.wait_exit().await;
    let before = dir.log_names("tick").len() as u64;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let proc = Proc::start(&dir, port).await;
    let log = dir.wait_log("tick", before + 1, "success").await;
    assert!(log.contains("=== TRIGGER: catch-up\n"), "{log}");
    assert!(log.contains("=== CATCH-UP: slot "), "{log}");
    proc.signal(Signal::TERM);
}

const DESCRIBED: &str = r#"
[job "a"]
path = /a
schedule = hourly
jitter = 30s
retry = 2
overlap = skip
on_success = b
command = true

[job "b"]
command = true
"#;

#[tokio::test]
async fn the_job_page_and_karajo_check_say_the_policies_in_words_with_chains_as_links() {
    let dir = TestDir::new(DESCRIBED);
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin!("karajo"))
        .args(["check", "-config"])
        .arg(dir.config_file())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for line in [
        "  retry: a failed run is tried 2 more times, waiting up to 30s",
        "  overlap: skip: a trigger while a run goes on is refused (429)",
        "  jitter: every start is ",
        "  on success: starts b\n",
    ] {
        assert!(stdout.contains(line), "{line:?} in {stdout}");
    }
    // The next starts are the hour plus the job's offset, the same in every run.
    let late = stdout
        .lines()
        .find_map(|l| l.strip_prefix("  jitter: every start is "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let whole: u64 = late
        .trim_end_matches('s')
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap_or(0);
    assert!(
        stdout.contains(&format!(":00:{whole:02} UTC\n")),
        "the hour plus {late}: {stdout}"
    );

    let d = TestDaemon::start(&dir).await;
    let page = reqwest::get(d.url("/karajo/app/job/a"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for text in [
        "<dt>Retry</dt>",
        "<dt>Overlap</dt>",
        "<dt>Jitter</dt>",
        "<dt>On success</dt><dd class=\"chain\">starts <a href=\"/karajo/app/job/b\">b</a>",
    ] {
        assert!(page.contains(text), "{text:?} in {page}");
    }
    d.stop().await;
}
