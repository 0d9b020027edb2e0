//! HTTP jobs against a real HTTP server on 127.0.0.1 started by the test, and the
//! original's HTTP job API.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::routing::any;

use crate::helpers::*;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    headers: axum::http::HeaderMap,
    body: String,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// An upstream on 127.0.0.1: `/ok` answers 201, `/missing` 404, `/big` 2 MiB,
/// `/slow` after 5 s; every request is recorded.
async fn upstream() -> (String, Log) {
    async fn handle(State(log): State<Log>, req: Request) -> (StatusCode, Bytes) {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        log.lock().unwrap().push(Seen {
            method: parts.method.to_string(),
            uri: parts.uri.to_string(),
            headers: parts.headers.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        match parts.uri.path() {
            "/missing" => (StatusCode::NOT_FOUND, Bytes::from_static(b"no such thing")),
            "/big" => (StatusCode::OK, Bytes::from(vec![b'x'; 2 * 1024 * 1024])),
            "/slow" => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                (StatusCode::OK, Bytes::new())
            }
            _ => (StatusCode::CREATED, Bytes::from_static(b"{\"ok\":true}")),
        }
    }
    let log: Log = Arc::default();
    let app = Router::new().fallback(any(handle)).with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, log)
}

async fn seen(log: &Log, n: usize) -> Vec<Seen> {
    wait_for(&format!("{n} upstream requests"), || async {
        let seen = log.lock().unwrap().clone();
        (seen.len() >= n).then_some(seen)
    })
    .await
}

#[tokio::test]
async fn a_json_request_is_signed_sent_and_logged_and_any_2xx_succeeds() {
    let (base, log) = upstream().await;
    let dir = TestDir::new(&format!(
        r#"
[job.http "notify upstream"]
interval = 1m
http_method = post
http_url = {base}/ok/
http_request_type = json
http_header = X-Test: one
http_header = X-Test: two
"#
    ));
    let d = TestDaemon::start(&dir).await;
    let req = seen(&log, 1).await.remove(0);
    assert_eq!(req.method, "POST");
    // The trailing slash survives.
    assert_eq!(req.uri, "/ok/");
    let epoch: serde_json::Value = serde_json::from_str(&req.body).unwrap();
    let epoch = epoch["_karajo_epoch"].as_i64().unwrap();
    assert!((epoch - epoch_now()).abs() < 60);
    // The secret falls back to the global one.
    let sign = karajo::auth::sign_hmac_sha256(SECRET.as_bytes(), req.body.as_bytes());
    assert_eq!(req.headers["x-karajo-sign"], sign.as_str());
    assert_eq!(req.headers["x-test"], "two");
    assert_eq!(req.headers["content-type"], "application/json");
    assert!(
        req.headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("karajo/")
    );

    let text = dir_log(&dir, "notify_upstream", 1, "success").await;
    for line in [
        "job_http: notify_upstream: === BEGIN",
        "job_http: notify_upstream: --- HTTP request:",
        "job_http: notify_upstream: POST /ok/ HTTP/1.1",
        "job_http: notify_upstream: x-test: two",
        "job_http: notify_upstream: --- HTTP response:",
        "job_http: notify_upstream: HTTP/1.1 201 Created",
        "job_http: notify_upstream: {\"ok\":true}",
        "job_http: notify_upstream: === job_http: notify_upstream: finished.",
    ] {
        assert!(text.contains(line), "missing {line:?} in {text}");
    }
    d.stop().await;
}

async fn dir_log(dir: &TestDir, id: &str, counter: u64, status: &str) -> String {
    let path = dir
        .base()
        .join("var/log/karajo/job_http")
        .join(id)
        .join(format!("{id}.{counter}.{status}"));
    wait_for(&format!("{}", path.display()), || {
        let path = path.clone();
        async move { std::fs::read_to_string(path).ok() }
    })
    .await
}

#[tokio::test]
async fn query_requests_join_an_existing_query_with_an_ampersand() {
    let (base, log) = upstream().await;
    let dir = TestDir::new(&format!(
        "[job.http \"q\"]\ninterval = 1m\nhttp_url = {base}/ok?foo=bar\nsecret = other\n"
    ));
    let d = TestDaemon::start(&dir).await;
    let req = seen(&log, 1).await.remove(0);
    assert_eq!(req.method, "GET");
    let (path, query) = req.uri.split_once('?').unwrap();
    assert_eq!(path, "/ok");
    let epoch: i64 = query
        .strip_prefix("foo=bar&_karajo_epoch=")
        .unwrap()
        .parse()
        .unwrap();
    assert!((epoch - epoch_now()).abs() < 60);
    let signed = format!("_karajo_epoch={epoch}");
    let sign = karajo::auth::sign_hmac_sha256(b"other", signed.as_bytes());
    assert_eq!(req.headers["x-karajo-sign"], sign.as_str());
    dir_log(&dir, "q", 1, "success").await;
    d.stop().await;
}

#[tokio::test]
async fn a_non_2xx_answer_fails_and_a_big_body_is_cut() {
    let (base, _log) = upstream().await;
    let dir = TestDir::new(&format!(
        "[job.http \"missing\"]\ninterval = 1m\nhttp_url = {base}/missing\n\n\
         [job.http \"big\"]\ninterval = 1m\nhttp_url = {base}/big\n\n\
         [job.http \"slow\"]\ninterval = 1m\nhttp_timeout = 300ms\nhttp_url = {base}/slow\n"
    ));
    let d = TestDaemon::start(&dir).await;
    let text = dir_log(&dir, "missing", 1, "failed").await;
    assert!(
        text.contains("!!! job_http: missing: execute: 404 Not Found"),
        "{text}"
    );
    assert!(text.contains(": no such thing\n"), "{text}");
    let text = dir_log(&dir, "big", 1, "success").await;
    assert!(text.contains("response body cut at 1048576 bytes"));
    assert!(text.len() < 1024 * 1024 + 4096, "{}", text.len());
    let text = dir_log(&dir, "slow", 1, "failed").await;
    assert!(text.contains("!!! job_http: slow: execute:"), "{text}");
    d.stop().await;
}

#[tokio::test]
async fn a_url_starting_with_a_slash_calls_karajo_itself_once_it_listens() {
    // The original's own test configuration (spec 2.8): an HTTP job triggering a
    // command job's web hook on the same server, at start-up.
    let dir = TestDir::new(
        r#"
[job "test success"]
path = /test-success
command = echo Test job success

[job.http "Test success"]
interval = 20s
http_method = POST
http_url = /karajo/api/job_exec/run/test-success
http_request_type = json
"#,
    );
    let d = TestDaemon::start(&dir).await;
    dir_log(&dir, "test_success", 1, "success").await;
    dir.wait_log("test_success", 1, "success").await;
    d.stop().await;
}

#[tokio::test]
async fn the_http_job_api_answers_as_the_original() {
    let (base, _log) = upstream().await;
    let dir = TestDir::new(&format!(
        "[job.http \"Test success\"]\ndescription = <i>d</i>\ninterval = 1m\nhttp_url = {base}/ok\nhttp_header = X: Y\n"
    ));
    let d = TestDaemon::start(&dir).await;
    dir_log(&dir, "test_success", 1, "success").await;
    d.wait_http_status("test_success", "success").await;

    let res = d
        .http
        .get(d.url("/karajo/api/job_http?id=test_success"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(
        text.starts_with(
            r#"{"data":{"header_sign":"X-Karajo-Sign","http_method":"GET","http_url":""#
        ),
        "{text}"
    );
    assert!(text.contains(r#""http_headers":["X: Y"]"#), "{text}");
    assert!(
        text.contains(r#""description":"\u003ci\u003ed\u003c/i\u003e""#),
        "{text}"
    );
    assert!(text.contains(r#""interval":60000000000"#), "{text}");
    assert!(text.contains(r#""http_timeout":300000000000}"#), "{text}");

    let res = d
        .http
        .get(d.url("/karajo/api/job_http?id=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"message":"no HTTP job has the id \"nope\"","name":"ERR_INVALID_JOB_ID","code":400}"#
    );
    let res = d
        .http
        .get(d.url("/karajo/api/job_http/log?id=nope&counter=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res: serde_json::Value = d
        .http
        .get(d.url("/karajo/api/job_http/log?id=Test_Success&counter=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(res["data"]["name"], "test_success.1.success");

    let signed_post = |action: &str, query: String, sign: String| {
        d.http
            .post(d.url(&format!("/karajo/api/job_http/{action}?{query}")))
            .header("X-Karajo-Sign", sign)
            .send()
    };
    let query = "id=test_success".to_string();
    // Spec 5.2 vector 6: the Go client's pause query.
    let sign = karajo::auth::sign_hmac_sha256(SECRET.as_bytes(), query.as_bytes());
    assert_eq!(
        sign,
        "92760216888d288b13641549b9f0a222f3507dba8af3f75da71d52125ae79e73"
    );
    let res = signed_post("pause", query.clone(), "bad".into())
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // The Go client's unstamped query is refused by default, naming the setting.
    let res = signed_post("pause", query.clone(), sign.clone())
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let text = res.text().await.unwrap();
    assert!(text.contains("accept_unstamped_signatures"), "{text}");
    let query = format!("_karajo_epoch={}&id=test_success", epoch_now());
    let sign = karajo::auth::sign_hmac_sha256(SECRET.as_bytes(), query.as_bytes());
    let res: serde_json::Value = signed_post("pause", query, sign)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(res["data"]["status"], "paused");
    // The same stamped bytes in the same second are the same request: a nonce makes
    // the resume another one.
    let query = format!(
        "_karajo_epoch={}&_karajo_nonce=2&id=test_success",
        epoch_now()
    );
    let sign = karajo::auth::sign_hmac_sha256(SECRET.as_bytes(), query.as_bytes());
    let res: serde_json::Value = signed_post("resume", query, sign)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // As the original: a resumed HTTP job is `started` again (spec 6.4).
    assert_eq!(res["data"]["status"], "started");
    let env: serde_json::Value = d
        .http
        .get(d.url("/karajo/api/environment"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        env["data"]["http_jobs"]["Test success"]["id"],
        "test_success"
    );
    d.stop().await;
}
