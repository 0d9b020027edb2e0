//! Command jobs and Rust function jobs run for real: environment, working directory,
//! the request body file, timeouts, and cancelling a whole process tree.

use std::time::Duration;

use karajo::exec::job_fn;

use crate::helpers::*;

#[tokio::test]
async fn commands_see_the_original_environment_plus_the_new_variables() {
    let dir = TestDir::new(
        r#"
[job "env"]
path = /env
command = pwd
command = env
command = cat $KARAJO_REQUEST_BODY
"#,
    );
    let d = TestDaemon::start(&dir).await;
    let body = epoch_body();
    assert_eq!(d.run_hook("/env", &body).await.status(), 200);
    let log = dir.wait_log("env", 1, "success").await;
    let work_dir = dir.base().join("var/lib/karajo/job/env");
    assert!(
        log.contains(&format!(": {}\n", work_dir.display())),
        "{log}"
    );
    for line in [
        "KARAJO_JOB_COUNTER=1",
        "KARAJO_JOB_ID=env",
        "KARAJO_TRIGGER=webhook",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/bin/site_perl:/usr/bin/vendor_perl:/usr/bin/core_perl",
    ] {
        assert!(
            log.contains(&format!(": {line}\n")),
            "missing {line}: {log}"
        );
    }
    assert!(!log.contains("HOME="), "{log}");
    assert!(
        log.contains(&format!(": {body}\n")),
        "request body not readable: {log}"
    );
    // The body file is removed after the run.
    let left: Vec<_> = std::fs::read_dir(dir.base().join("var/lib/karajo/request"))
        .unwrap()
        .collect();
    assert!(left.is_empty());
    d.stop().await;
}

#[tokio::test]
async fn the_log_has_the_original_framing_with_a_prefix_on_every_line() {
    let dir = TestDir::new(
        r#"
[job "frame"]
path = /frame
command = printf 'a\\nb\\nc\\n'
command = exit 3
command = echo never
"#,
    );
    let d = TestDaemon::start(&dir).await;
    d.run_hook("/frame", &epoch_body()).await;
    let log = dir.wait_log("frame", 1, "failed").await;
    let lines: Vec<&str> = log.lines().collect();
    let bodies: Vec<&str> = lines
        .iter()
        .map(|l| {
            let (prefix, rest) = l.split_at(24);
            assert!(prefix.ends_with(" UTC "), "no prefix: {l:?}");
            rest.strip_prefix("job: frame: ").expect("kind and id")
        })
        .collect();
    assert_eq!(
        bodies,
        [
            "=== BEGIN",
            "=== TRIGGER: webhook",
            "",
            "--- Execute  0: printf 'a\\nb\\nc\\n'",
            "a",
            "b",
            "c",
            "",
            "--- Execute  1: exit 3",
            "!!! job: frame: exit status 3",
        ]
    );
    d.stop().await;
}

#[tokio::test]
async fn a_timeout_stops_the_run_as_failed() {
    let dir = TestDir::new(
        r#"
[job "slow"]
path = /slow
timeout = 500ms
kill_grace = 1s
command = sleep 30
"#,
    );
    let d = TestDaemon::start(&dir).await;
    let started = std::time::Instant::now();
    d.run_hook("/slow", &epoch_body()).await;
    let log = dir.wait_log("slow", 1, "failed").await;
    assert!(log.contains("timed out after 500ms"), "{log}");
    assert!(started.elapsed() < Duration::from_secs(10));
    d.stop().await;
}

#[tokio::test]
async fn cancel_kills_the_whole_process_tree_promptly() {
    let dir = TestDir::new(
        r#"
[job "tree"]
path = /tree
kill_grace = 1s
command = "sh -c 'sleep 300 & echo $! > grandchild.pid; wait' & echo $! > child.pid; wait"
command = echo never
"#,
    );
    let d = TestDaemon::start(&dir).await;
    d.run_hook("/tree", &epoch_body()).await;
    let work = dir.base().join("var/lib/karajo/job/tree");
    let read_pid = |name: &str| {
        let path = work.join(name);
        async move {
            std::fs::read_to_string(path)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
        }
    };
    let child = wait_for("child pid", || read_pid("child.pid")).await;
    let grandchild = wait_for("grandchild pid", || read_pid("grandchild.pid")).await;
    assert!(is_alive(child) && is_alive(grandchild));
    d.wait_status("tree", "running").await;

    let started = std::time::Instant::now();
    let res = d.api_form("cancel", "tree").await;
    assert_eq!(res.status(), 200);
    let log = dir.wait_log("tree", 1, "canceled").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cancel took {:?}",
        started.elapsed()
    );
    assert!(log.contains("??? CANCELED"), "{log}");
    assert!(!log.contains(": never\n"), "{log}");
    wait_for("the tree to die", || async {
        (!is_alive(child) && !is_alive(grandchild)).then_some(())
    })
    .await;
    d.wait_status("tree", "canceled").await;
    d.stop().await;
}

#[tokio::test]
async fn a_rust_function_job_gets_its_log_and_request() {
    let dir = TestDir::new(
        r#"
[job "native"]
path = /native
"#,
    );
    let job = job_fn(|mut ctx| async move {
        use std::io::Write;
        let body = ctx
            .run
            .request
            .as_ref()
            .map(|r| r.body.clone())
            .unwrap_or_default();
        writeln!(
            ctx.log,
            "counter {} trigger {}",
            ctx.run.counter,
            ctx.run.trigger.as_str()
        )?;
        writeln!(ctx.log, "body {}", String::from_utf8_lossy(&body))?;
        if body.is_empty() {
            return Err("no body".into());
        }
        Ok(())
    });
    let d = TestDaemon::start_with_fn(&dir, "native", job).await;
    let body = epoch_body();
    assert_eq!(d.run_hook("/native", &body).await.status(), 200);
    let log = dir.wait_log("native", 1, "success").await;
    assert!(log.contains("counter 1 trigger webhook"), "{log}");
    assert!(log.contains(&format!("body {body}")), "{log}");
    d.stop().await;
}

#[tokio::test]
async fn a_running_log_is_on_disk_and_readable_through_the_api_while_it_grows() {
    let dir = TestDir::new(
        r#"
[job "stream"]
path = /stream
command = echo first
command = sleep 30
"#,
    );
    let d = TestDaemon::start(&dir).await;
    d.run_hook("/stream", &epoch_body()).await;
    let running = dir.log_dir("stream").join("stream.1.running");
    wait_for("first line on disk", || {
        let running = running.clone();
        async move {
            std::fs::read_to_string(running)
                .ok()
                .filter(|s| s.contains(": first\n"))
        }
    })
    .await;
    let res: serde_json::Value = d
        .http
        .get(d.url("/karajo/api/job_exec/log?id=stream&counter=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(res["code"], 200);
    assert_eq!(res["data"]["status"], "running");
    assert_eq!(res["data"]["name"], "stream.1");
    use base64::Engine as _;
    let content = base64::engine::general_purpose::STANDARD
        .decode(res["data"]["content"].as_str().unwrap())
        .unwrap();
    assert!(String::from_utf8_lossy(&content).contains(": first\n"));
    d.api_form("cancel", "stream").await;
    dir.wait_log("stream", 1, "canceled").await;
    d.stop().await;
}
