//! The typed client (`karajo::client`): the exact request shapes on the wire (spec 5.2
//! vectors 4, 5 and 6) against a recording server, and every command job call against a
//! real daemon started in-process.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use karajo::client::{Client, ClientError, ClientOptions};
use karajo::clock::ManualClock;

use crate::helpers::*;

const JOBS: &str = r#"
[job "Test job success"]
path = /test-job-success
command = echo "Counter is $KARAJO_JOB_COUNTER"

[job "Slow"]
path = /slow
command = sleep 60
kill_grace = 1s
"#;

fn client(d: &TestDaemon, secret: &str) -> Client {
    Client::new(ClientOptions {
        server_url: d.base_url.clone(),
        secret: secret.into(),
        ..ClientOptions::default()
    })
    .expect("client")
}

/// One request as the recording server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: Option<String>,
    sign: Option<String>,
    content_type: Option<String>,
    body: Bytes,
}

/// A server that records every request and answers a minimal job.
async fn recording_server() -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let record = record.clone();
            async move {
                let header =
                    |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string());
                record.lock().unwrap().push(Seen {
                    method,
                    path: uri.path().to_string(),
                    query: uri.query().map(str::to_string),
                    sign: header("x-karajo-sign"),
                    content_type: header("content-type"),
                    body,
                });
                r#"{"data":{"id":"x","name":"x"},"code":200}"#
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test]
async fn requests_on_the_wire_are_the_go_clients() {
    let (url, seen) = recording_server().await;
    let clock = Arc::new(ManualClock::new("2023-01-09T00:00:00Z".parse().unwrap()));
    let client = Client::new(ClientOptions {
        server_url: format!("{url}/"),
        secret: SECRET.into(),
        headers: vec![("X-Extra".into(), "1".into())],
        ..ClientOptions::default()
    })
    .unwrap()
    .with_clock(clock);

    client.job_exec_run("/test-job-success").await.unwrap();
    client.job_exec_pause("test_job_success").await.unwrap();
    client.job_exec_resume("test_job_success").await.unwrap();
    client.job_exec_cancel("test_job_success").await.unwrap();
    client.job_http_pause("test_success").await.unwrap();
    client.job_http_resume("test_success").await.unwrap();
    client.job_http("test_success").await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 7);

    // The Go client's shapes (spec 5.2 vectors 4 to 6), each with a random
    // `_karajo_nonce` so no two requests sign the same bytes, and signed over exactly
    // what went on the wire.
    let signed_by_secret = |request: &Seen, signed: &[u8]| {
        assert_eq!(
            request.sign.as_deref(),
            Some(karajo::auth::sign_hmac_sha256(SECRET.as_bytes(), signed).as_str())
        );
    };
    let nonce_of = |text: &str| -> String {
        let start = text.find("_karajo_nonce=").expect("a nonce") + "_karajo_nonce=".len();
        text[start..].split('&').next().unwrap().to_string()
    };
    // Vector 4: the run body.
    let run = &seen[0];
    assert_eq!(run.method, Method::POST);
    assert_eq!(run.path, "/karajo/api/job_exec/run/test-job-success");
    let body: serde_json::Value = serde_json::from_slice(&run.body).unwrap();
    assert_eq!(body["id"], "");
    assert_eq!(body["_karajo_epoch"], 1_673_222_400);
    let nonce = body["_karajo_nonce"].as_str().unwrap();
    assert_eq!(nonce.len(), 16);
    assert!(
        run.body
            .starts_with(br#"{"id":"","_karajo_epoch":1673222400,"#)
    );
    signed_by_secret(run, &run.body);
    // Vector 5: the pause/resume/cancel form.
    let mut nonces = std::collections::HashSet::new();
    for (request, action) in seen[1..4].iter().zip(["pause", "resume", "cancel"]) {
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.path, format!("/karajo/api/job_exec/{action}"));
        assert_eq!(request.query, None);
        let body = std::str::from_utf8(&request.body).unwrap();
        assert!(
            body.starts_with("_karajo_epoch=1673222400&_karajo_nonce="),
            "{body}"
        );
        assert!(body.ends_with("&id=test_job_success"), "{body}");
        assert!(nonces.insert(nonce_of(body)), "nonces differ");
        assert_eq!(
            request.content_type.as_deref(),
            Some("application/x-www-form-urlencoded")
        );
        signed_by_secret(request, &request.body);
    }
    // Vector 6: job_http pause/resume sign the raw query (stamped) and send no body.
    for (request, action) in seen[4..6].iter().zip(["pause", "resume"]) {
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.path, format!("/karajo/api/job_http/{action}"));
        let query = request.query.as_deref().unwrap();
        assert!(
            query.starts_with("_karajo_epoch=1673222400&_karajo_nonce="),
            "{query}"
        );
        assert!(query.ends_with("&id=test_success"), "{query}");
        assert!(request.body.is_empty());
        signed_by_secret(request, query.as_bytes());
    }
    // Reads are signed too when the client has a secret.
    assert_eq!(seen[6].method, Method::GET);
    assert_eq!(seen[6].path, "/karajo/api/job_http");
    let query = seen[6].query.as_deref().unwrap();
    assert!(query.ends_with("&id=test_success"), "{query}");
    signed_by_secret(&seen[6], query.as_bytes());
}

#[tokio::test]
async fn run_and_read_the_log_through_the_client() {
    let dir = TestDir::new(JOBS);
    let d = TestDaemon::start(&dir).await;
    let client = client(&d, SECRET);

    let env = client.env().await.unwrap();
    assert_eq!(env.name, "test");
    assert_eq!(env.max_job_running, 4);
    let job = env.job_exec("test_job_success").unwrap();
    assert_eq!(job.name, "Test job success");
    assert_eq!(job.path, "/test-job-success");
    assert_eq!(job.last_run, None);

    let job = client.job_exec_run("/test-job-success").await.unwrap();
    assert_eq!(job.id, "test_job_success");
    let log = wait_for("log 1 to succeed", || async {
        client
            .job_exec_log("test_job_success", 1)
            .await
            .ok()
            .filter(|log| log.status == "success")
    })
    .await;
    assert_eq!(log.name, "test_job_success.1.success");
    assert_eq!(log.counter, 1);
    let text = String::from_utf8(log.content).unwrap();
    assert!(text.contains("Counter is 1"), "{text}");
    assert_eq!(
        text,
        std::fs::read_to_string(
            dir.log_dir("test_job_success")
                .join("test_job_success.1.success")
        )
        .unwrap()
    );
    let env = client.env().await.unwrap();
    let job = env.job_exec("test_job_success").unwrap();
    assert!(job.last_run.is_some());
    assert_eq!(job.logs.len(), 1);
    assert_eq!(job.logs[0].status, "success");
    d.stop().await;
}

#[tokio::test]
async fn pause_resume_and_cancel_through_the_client() {
    let dir = TestDir::new(JOBS);
    let d = TestDaemon::start(&dir).await;
    let client = client(&d, SECRET);

    let job = client.job_exec_pause("test_job_success").await.unwrap();
    assert_eq!(job.status, "paused");
    let err = client.job_exec_run("/test-job-success").await.unwrap_err();
    match &err {
        ClientError::Server {
            code,
            name,
            message,
        } => {
            assert_eq!((*code, name.as_str()), (412, "ERR_JOB_PAUSED"));
            assert_eq!(message, "job is paused");
        }
        other => panic!("{other:?}"),
    }
    let job = client.job_exec_resume("test_job_success").await.unwrap();
    assert_ne!(job.status, "paused");
    client.job_exec_run("/test-job-success").await.unwrap();

    client.job_exec_run("/slow").await.unwrap();
    wait_for("slow to run", || async {
        let env = client.env().await.ok()?;
        (env.job_exec("slow")?.status == "running").then_some(())
    })
    .await;
    let job = client.job_exec_cancel("slow").await.unwrap();
    assert_eq!(job.id, "slow");
    let log = wait_for("slow's log to be canceled", || async {
        client
            .job_exec_log("slow", 1)
            .await
            .ok()
            .filter(|log| log.status == "canceled")
    })
    .await;
    assert_eq!(log.name, "slow.1.canceled");
    d.stop().await;
}

#[tokio::test]
async fn errors_carry_the_servers_message_and_code() {
    let dir = TestDir::new(JOBS);
    let d = TestDaemon::start(&dir).await;
    let good = client(&d, SECRET);

    let err = good.job_exec_run("/test-job-notfound").await.unwrap_err();
    assert!(matches!(&err, ClientError::NotFound { path } if path == "/test-job-notfound"));
    assert_eq!(err.to_string(), "job not found: /test-job-notfound");

    let err = good.job_exec_pause("nope").await.unwrap_err();
    assert_eq!(err.code(), Some(404));
    assert_eq!(
        err.to_string(),
        "no command job has the id \"nope\" (code 404, ERR_JOB_NOT_FOUND)"
    );

    let err = good.job_exec_log("test-job-success", 1).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "no command job has the id \"test-job-success\"; did you mean \"test_job_success\"? (code 404)"
    );
    // The original answers HTTP 200 with code 404 here; it is still an error.
    let err = good.job_exec_log("test_job_success", 99).await.unwrap_err();
    assert_eq!(err.to_string(), "log #99 not found (code 404)");

    let bad = client(&d, "wrong");
    let err = bad.job_exec_pause("test_job_success").await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Server { code: 401, message, .. } if message == "empty or invalid signature"),
        "{err:?}"
    );
    let err = bad.job_exec_run("/test-job-success").await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Server { code: 403, name, .. } if name == "ERR_JOB_FORBIDDEN"),
        "{err:?}"
    );
    d.stop().await;

    // Nobody listens any more: a transport error naming the request.
    let err = good.env().await.unwrap_err();
    assert!(matches!(err, ClientError::Http { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("GET http://127.0.0.1:"),
        "{err}"
    );
}

const HTTP_JOBS: &str = r#"
[job "Test job success"]
path = /test-job-success
command = echo ok

[job.http "Test success"]
http_method = POST
http_url = /karajo/api/job_exec/run/test-job-success
http_request_type = json
interval = 1h
"#;

#[tokio::test]
async fn job_http_calls_through_the_client() {
    let dir = TestDir::new(HTTP_JOBS);
    let d = TestDaemon::start(&dir).await;
    let client = client(&d, SECRET);

    let job = client.job_http("test_success").await.unwrap();
    assert_eq!(job.name, "Test success");
    assert_eq!(job.http_method, "POST");
    let log = wait_for("the HTTP job's first log", || async {
        client
            .job_http_log("test_success", 1)
            .await
            .ok()
            .filter(|log| log.status != "running")
    })
    .await;
    assert_eq!(log.job_id, "test_success");
    assert!(!log.content.is_empty());
    // The log is closed on disk a moment before the scheduler hears the run ended.
    wait_for("the HTTP job's run to end", || async {
        let job = client.job_http("test_success").await.ok()?;
        (job.status != "running").then_some(())
    })
    .await;

    let job = client.job_http_pause("test_success").await.unwrap();
    assert_eq!(job.status, "paused");
    // A resumed HTTP job is `started` again, as in the original.
    let job = client.job_http_resume("test_success").await.unwrap();
    assert_eq!(job.status, "started");

    let err = client.job_http("test_notfound").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "no HTTP job has the id \"test_notfound\" (code 400, ERR_INVALID_JOB_ID)"
    );
    let bad = self::client(&d, "wrong");
    let err = bad.job_http_pause("test_success").await.unwrap_err();
    assert_eq!(err.code(), Some(401));
    d.stop().await;
}
