//! The findings of the security probe (issue 9), each as the request an attacker on
//! 127.0.0.1 sent and the refusal it now gets: signatures good for one request only,
//! parameters only from signed bytes, web hook deliveries that must name themselves,
//! bodies refused before they are read, and karajo's own outgoing signatures spent.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer as _, SigningKey};
use karajo::auth::sign_hmac_sha256;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::*;

const JOBS: &str = r#"
[job "hello"]
path = /hello
command = echo hello

[job "deploy"]
path = /deploy
command = echo deployed

[job "gh"]
path = /gh
auth_kind = github
command = echo gh

[job "srht"]
path = /srht
auth_kind = sourcehut
sourcehut_public_key = 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
command = echo srht
"#;

fn with_user(dir: &TestDir) {
    let hash = bcrypt::hash("pw", 4).expect("hash");
    dir.write(
        "etc/karajo/user.conf",
        &format!("[user \"admin\"]\npassword = {hash}\n"),
    );
}

fn sign(bytes: &[u8]) -> String {
    sign_hmac_sha256(SECRET.as_bytes(), bytes)
}

async fn post(d: &TestDaemon, path: &str, body: &str, signature: &str) -> reqwest::Response {
    d.http
        .post(d.url(path))
        .header("X-Karajo-Sign", signature)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .expect("request")
}

async fn get(d: &TestDaemon, path_and_query: &str, signature: &str) -> reqwest::Response {
    d.http
        .get(d.url(path_and_query))
        .header("X-Karajo-Sign", signature)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn the_signature_of_an_empty_string_is_no_token() {
    let dir = TestDir::new(JOBS);
    with_user(&dir);
    let d = TestDaemon::start(&dir).await;
    let empty = sign(b"");
    for path in ["/karajo/api/environment", "/karajo/metrics"] {
        assert_eq!(get(&d, path, &empty).await.status(), 401, "{path}");
    }
    for action in ["pause", "resume", "cancel"] {
        let res = post(&d, &format!("/karajo/api/job_exec/{action}"), "", &empty).await;
        assert_eq!(res.status(), 401, "{action}");
        let text = res.text().await.unwrap();
        assert!(text.contains("empty"), "{text}");
    }
    let res = post(&d, "/karajo/api/job_exec/run/deploy", "", &empty).await;
    assert_eq!(res.status(), 403);
    assert!(d.job("hello").await["status"] != "paused");
    assert_eq!(dir.log_names("deploy"), Vec::<String>::new());
    d.stop().await;
}

#[tokio::test]
async fn a_captured_signed_body_is_spent_on_every_route() {
    let dir = TestDir::new(JOBS);
    with_user(&dir);
    let d = TestDaemon::start(&dir).await;
    let captured = format!("_karajo_epoch={}&id=hello", epoch_now());
    let signature = sign(captured.as_bytes());
    let res = post(&d, "/karajo/api/job_exec/pause", &captured, &signature).await;
    assert_eq!(res.status(), 200);
    // Replayed as a pause, a resume, a cancel, a signed read and a web hook.
    for path in [
        "/karajo/api/job_exec/pause",
        "/karajo/api/job_exec/resume",
        "/karajo/api/job_exec/cancel",
        "/karajo/api/job_exec/run/deploy",
    ] {
        let res = post(&d, path, &captured, &signature).await;
        assert_eq!(res.status(), 409, "{path}");
        let text = res.text().await.unwrap();
        assert!(text.contains("sign a fresh request"), "{path}: {text}");
    }
    let res = get(
        &d,
        &format!("/karajo/api/environment?{captured}"),
        &signature,
    )
    .await;
    assert_eq!(res.status(), 409);
    assert_eq!(d.job_signed("hello").await["status"], "paused");
    assert_eq!(dir.log_names("deploy"), Vec::<String>::new());
    d.stop().await;
}

#[tokio::test]
async fn stamps_are_required_and_must_be_fresh() {
    let dir = TestDir::new(JOBS);
    let d = TestDaemon::start(&dir).await;
    let now = epoch_now();
    for (body, why) in [
        ("id=hello".to_string(), "accept_unstamped_signatures"),
        (format!("_karajo_epoch={}&id=hello", now + 60), "ahead of"),
        (format!("_karajo_epoch={}&id=hello", now - 301), "behind"),
    ] {
        let res = post(
            &d,
            "/karajo/api/job_exec/pause",
            &body,
            &sign(body.as_bytes()),
        )
        .await;
        assert_eq!(res.status(), 401, "{body}");
        let text = res.text().await.unwrap();
        assert!(text.contains(why), "{body}: {text}");
        let res = post(
            &d,
            "/karajo/api/job_exec/run/deploy",
            &body,
            &sign(body.as_bytes()),
        )
        .await;
        assert_eq!(res.status(), 403, "{body}");
    }
    // A few seconds of clock skew are fine.
    let body = format!("_karajo_epoch={}&id=hello", now + 2);
    let res = post(
        &d,
        "/karajo/api/job_exec/pause",
        &body,
        &sign(body.as_bytes()),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(d.job("hello").await["status"], "paused");
    d.stop().await;
}

#[tokio::test]
async fn the_job_id_comes_only_from_the_signed_body() {
    let dir = TestDir::new(JOBS);
    let d = TestDaemon::start(&dir).await;
    // Signed bytes without an id, and the id in the unsigned query string.
    let body = format!("_karajo_epoch={}&_karajo_nonce={}", epoch_now(), nonce());
    let res = post(
        &d,
        "/karajo/api/job_exec/pause?id=hello",
        &body,
        &sign(body.as_bytes()),
    )
    .await;
    assert_eq!(res.status(), 404);
    assert_ne!(d.job("hello").await["status"], "paused");
    d.stop().await;
}

#[tokio::test]
async fn unstamped_signatures_are_accepted_only_when_allowed_and_then_as_the_original() {
    let dir = TestDir::new(&format!(
        "{JOBS}\n[job.http \"ping\"]\nhttp_url = /karajo/api/environment\nhttp_method = get\ninterval = 1m\n"
    ));
    // The setting goes into [karajo], which TestDir writes first.
    let conf = std::fs::read_to_string(dir.config_file()).unwrap();
    let conf = conf.replacen(
        "[karajo]\n",
        "[karajo]\naccept_unstamped_signatures = true\n",
        1,
    );
    dir.write("etc/karajo/karajo.conf", &conf);
    let d = TestDaemon::start(&dir).await;
    // The Go client's job_http pause and resume: `id=<id>` signed without an epoch.
    let query = "id=ping";
    for action in ["pause", "resume", "pause"] {
        let res = d
            .http
            .post(d.url(&format!("/karajo/api/job_http/{action}?{query}")))
            .header("X-Karajo-Sign", sign(query.as_bytes()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{action}");
    }
    // Still never the empty payload.
    let res = post(&d, "/karajo/api/job_exec/pause", "", &sign(b"")).await;
    assert_eq!(res.status(), 401);
    // `karajo check` warns about the setting.
    let out = assert_cmd::Command::cargo_bin("karajo")
        .unwrap()
        .args(["check", "--config"])
        .arg(dir.config_file())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("accept_unstamped_signatures is on"), "{text}");
    d.stop().await;
}

#[tokio::test]
async fn deliveries_must_name_themselves_and_sourcehut_nonces_cannot_move() {
    let dir = TestDir::new(JOBS);
    let d = TestDaemon::start(&dir).await;
    // GitHub without X-GitHub-Delivery.
    let body = r#"{"zen":"Half measures are as bad as nothing at all."}"#;
    let res = d
        .http
        .post(d.url("/karajo/api/job_exec/run/gh"))
        .header(
            "X-Hub-Signature-256",
            format!("sha256={}", sign(body.as_bytes())),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // SourceHut without its nonce, and with nonce bytes moved into the body.
    let secret =
        hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
    let key = SigningKey::from_bytes(&secret.try_into().unwrap());
    use base64::Engine as _;
    let signature =
        base64::engine::general_purpose::STANDARD.encode(key.sign(br#"{"a":1}12345"#).to_bytes());
    let send = |body: &'static str, nonce: Option<&'static str>| {
        let mut req = d
            .http
            .post(d.url("/karajo/api/job_exec/run/srht"))
            .header("X-Payload-Signature", signature.clone())
            .body(body);
        if let Some(nonce) = nonce {
            req = req.header("X-Payload-Nonce", nonce);
        }
        req.send()
    };
    assert_eq!(send(r#"{"a":1}12345"#, None).await.unwrap().status(), 403);
    assert_eq!(
        send(r#"{"a":1}"#, Some("12345")).await.unwrap().status(),
        200
    );
    assert_eq!(
        send(r#"{"a":1}1"#, Some("2345")).await.unwrap().status(),
        409
    );
    assert_eq!(
        send(r#"{"a":1}123"#, Some("45")).await.unwrap().status(),
        409
    );
    d.stop().await;
}

/// An upstream that records the signature and body of every request.
async fn capturing_upstream() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let record = record.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20)
                .await
                .unwrap_or_default();
            let sign = parts
                .headers
                .get("x-karajo-sign")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            record
                .lock()
                .unwrap()
                .push((sign, String::from_utf8_lossy(&body).into_owned()));
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

#[tokio::test]
async fn the_server_an_http_job_calls_cannot_replay_its_signature_to_karajo() {
    let (base, seen) = capturing_upstream().await;
    let dir = TestDir::new(&format!(
        "{JOBS}\n[job.http \"notify\"]\nhttp_method = post\nhttp_url = {base}/hook\nhttp_request_type = json\ninterval = 1m\n"
    ));
    let d = TestDaemon::start(&dir).await;
    let (signature, body) = wait_for("the upstream to be called", || async {
        seen.lock().unwrap().first().cloned()
    })
    .await;
    assert!(!signature.is_empty());
    assert!(body.contains("_karajo_epoch"), "{body}");
    let res = d
        .http
        .post(d.url("/karajo/api/job_exec/run/deploy"))
        .header("X-Karajo-Sign", &signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    assert_eq!(dir.log_names("deploy"), Vec::<String>::new());
    d.stop().await;
}

#[tokio::test]
async fn an_http_job_calling_karajo_itself_is_not_refused_as_a_replay() {
    let dir = TestDir::new(&format!(
        "{JOBS}\n[job.http \"self\"]\nhttp_method = post\nhttp_url = /karajo/api/job_exec/run/deploy\nhttp_request_type = json\ninterval = 1m\n"
    ));
    let d = TestDaemon::start(&dir).await;
    dir.wait_log("deploy", 1, "success").await;
    d.stop().await;
}

#[tokio::test]
async fn an_unsigned_upload_is_refused_before_its_body_is_sent() {
    let dir = TestDir::new(JOBS);
    let d = TestDaemon::start(&dir).await;
    let addr = d.url("").trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // Headers of a 20 MiB upload, and not one byte of the body.
    let head = format!(
        "POST /karajo/api/job_exec/run/deploy HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n",
        20 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = vec![0; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("an answer without the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // The same for the signed API forms.
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /karajo/api/job_exec/pause HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 1000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("an answer without the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    d.stop().await;
}

#[tokio::test]
async fn refusals_before_the_body_keep_a_kept_alive_connection_usable() {
    let dir = TestDir::new(JOBS);
    let d = TestDaemon::start(&dir).await;
    // One client, so its requests share a kept-alive connection: a small body left
    // unread must not make the next request meet a reset connection.
    for round in 0..20 {
        let res = d
            .http
            .post(d.url("/karajo/api/job_exec/run/nope"))
            .body("{\"a\":1}")
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(res.status(), 404);
        let res = d
            .http
            .post(d.url("/karajo/api/job_exec/run/deploy"))
            .body("{\"a\":1}")
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(res.status(), 403);
        let res = d
            .http
            .post(d.url("/karajo/api/job_exec/pause"))
            .body("id=hello")
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(res.status(), 401);
        assert!(res.headers().get("connection").is_none(), "drained, kept");
    }
    // A large body is not read: the answer closes the connection.
    let res = d
        .http
        .post(d.url("/karajo/api/job_exec/run/deploy"))
        .body(vec![b'x'; 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(res.headers()["connection"], "close");
    d.stop().await;
}
