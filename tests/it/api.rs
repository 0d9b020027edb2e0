//! The original's API for command jobs: environment, pause/resume/cancel signed with
//! the global secret, the log reader, and their error objects.

use crate::helpers::*;

const JOBS: &str = r#"
[job "Test job success"]
description = The <b>first</b> job && more.
path = /test-job-success
interval = 1h
command = echo ok
"#;

#[tokio::test]
async fn the_environment_has_the_original_shape_and_is_gzipped_only_when_accepted() {
    let dir = TestDir::new(JOBS);
    let d = TestDaemon::start(&dir).await;
    let res = d
        .http
        .get(d.url("/karajo/api/environment"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("content-encoding").is_none());
    let text = res.text().await.unwrap();
    assert!(
        text.contains(
            r#""description":"The \u003cb\u003efirst\u003c/b\u003e job \u0026\u0026 more.""#
        ),
        "{text}"
    );
    let env: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(env["code"], 200);
    let data = &env["data"];
    assert_eq!(data["name"], "test");
    assert_eq!(data["max_job_running"], 4);
    assert_eq!(data["http_timeout"], 300_000_000_000u64);
    let job = &data["jobs"]["Test job success"];
    assert_eq!(job["id"], "test_job_success");
    assert_eq!(job["auth_kind"], "hmac-sha256");
    assert_eq!(job["header_sign"], "X-Karajo-Sign");
    assert_eq!(job["interval"], 3_600_000_000_000u64);
    assert_eq!(job["log_retention"], 5);
    assert_eq!(job["commands"], serde_json::json!(["echo ok"]));
    assert!(job.get("secret").is_none());
    // Field order as the original's JobExec.
    let pos = |k: &str| {
        text.find(&format!(",\"{k}\":"))
            .unwrap_or_else(|| panic!("no {k}: {text}"))
    };
    assert!(
        text.contains(r#"{"path":"/test-job-success","auth_kind":"hmac-sha256""#),
        "{text}"
    );
    assert!(pos("auth_kind") < pos("header_sign"));
    assert!(
        pos("last_run") < pos("next_run") && pos("next_run") < pos("id") && pos("id") < pos("name")
    );
    assert!(pos("interval") < pos("log_retention"));

    let res = d
        .http
        .get(d.url("/karajo/api/environment"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers().get("content-encoding").unwrap(), "gzip");
    let packed = res.bytes().await.unwrap();
    let mut unpacked = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&packed[..]),
        &mut unpacked,
    )
    .unwrap();
    let again: serde_json::Value = serde_json::from_str(&unpacked).unwrap();
    assert_eq!(again["data"]["name"], "test");
    d.stop().await;
}

#[tokio::test]
async fn api_calls_need_the_global_signature_and_name_unknown_jobs() {
    let dir = TestDir::new(JOBS);
    let d = TestDaemon::start(&dir).await;
    let res = d
        .http
        .post(d.url("/karajo/api/job_exec/pause"))
        .body("_karajo_epoch=1&id=test_job_success")
        .header("X-Karajo-Sign", "bad")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"message":"empty or invalid signature","code":401}"#
    );
    let res = d.api_form("cancel", "nope").await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"message":"no command job has the id \"nope\"","name":"ERR_JOB_NOT_FOUND","code":404}"#
    );
    // A near miss names the closest id; the status and name stay the original's.
    let res = d.api_form("cancel", "test_job_sucess").await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"message":"no command job has the id \"test_job_sucess\"; did you mean \"test_job_success\"?","name":"ERR_JOB_NOT_FOUND","code":404}"#
    );
    // A correctly signed but stale request is refused.
    let body = format!("_karajo_epoch={}&id=test_job_success", epoch_now() - 3600);
    let sign = karajo::auth::sign_hmac_sha256(SECRET.as_bytes(), body.as_bytes());
    let res = d
        .http
        .post(d.url("/karajo/api/job_exec/pause"))
        .header("X-Karajo-Sign", sign)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    d.stop().await;
}

#[tokio::test]
async fn the_log_endpoint_answers_as_the_original() {
    let dir = TestDir::new(JOBS);
    let d = TestDaemon::start(&dir).await;
    // The interval job ran once at start-up (it never ran before).
    dir.wait_log("test_job_success", 1, "success").await;
    d.wait_status("Test job success", "success").await;
    let get = |q: &'static str| {
        d.http
            .get(d.url(&format!("/karajo/api/job_exec/log?{q}")))
            .send()
    };

    let res = get("id=TEST_JOB_SUCCESS&counter=1").await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["data"]["name"], "test_job_success.1.success");
    assert_eq!(body["data"]["status"], "success");
    assert_eq!(body["data"]["counter"], 1);

    let res = get("id=nope&counter=1").await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"message":"no command job has the id \"nope\"","code":404}"#
    );

    let res = get("id=test_job_success&counter=abc").await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"message":"log #abc not found","code":404}"#
    );

    // As the original: a numeric counter without a log is HTTP 200 with code 404.
    let res = get("id=test_job_success&counter=99").await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"message":"log #99 not found","code":404}"#
    );
    d.stop().await;
}

#[tokio::test]
async fn metrics_count_runs_and_web_hook_outcomes() {
    let dir = TestDir::new(
        "[karajo]\nmax_body_size = 1024\n[job \"hook\"]\npath = /hook\ncommand = true\n",
    );
    let d = TestDaemon::start(&dir).await;
    assert_eq!(d.run_hook("/hook", &epoch_body()).await.status(), 200);
    dir.wait_log("hook", 1, "success").await;
    let forbidden = d
        .http
        .post(d.url("/karajo/api/job_exec/run/hook"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    assert_eq!(d.run_hook("/hook", &"x".repeat(2048)).await.status(), 413);
    let text = wait_for("the run to be counted", || async {
        let res = d.http.get(d.url("/karajo/metrics")).send().await.ok()?;
        let text = res.text().await.ok()?;
        text.contains(r#"karajo_runs_total{kind="job",job="hook",status="success"} 1"#)
            .then_some(text)
    })
    .await;
    for line in [
        r#"karajo_webhook_requests_total{outcome="accepted"} 1"#,
        r#"karajo_webhook_requests_total{outcome="forbidden"} 1"#,
        r#"karajo_webhook_requests_total{outcome="too_large"} 1"#,
        r#"karajo_run_duration_seconds_count{kind="job",job="hook"} 1"#,
        "karajo_jobs_running 0",
        "karajo_queue_depth 0",
        r#"karajo_notifications_total{event="failed"} 0"#,
        "karajo_notifications_pending 0",
    ] {
        assert!(text.contains(line), "missing {line}\n{text}");
    }
    d.stop().await;
}

#[tokio::test]
async fn the_environment_is_rendered_again_after_every_change() {
    // No timer: nothing changes unless the test changes it.
    let dir = TestDir::new("[job \"quiet\"]\npath = /quiet\ncommand = echo ok\n");
    let d = TestDaemon::start(&dir).await;
    let get = || async {
        d.http
            .get(d.url("/karajo/api/environment"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let first = get().await;
    assert_eq!(get().await, first, "an unchanged daemon answers the same");
    assert!(!first.contains(r#""status":"paused""#), "{first}");
    assert_eq!(d.api_form("pause", "quiet").await.status(), 200);
    let paused = get().await;
    assert!(paused.contains(r#""status":"paused""#), "{paused}");
    assert_eq!(d.api_form("resume", "quiet").await.status(), 200);
    assert!(!get().await.contains(r#""status":"paused""#));
    d.stop().await;
}
