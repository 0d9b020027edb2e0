//! Web hook triggers: the three auth kinds, replay protection, queueing and pausing,
//! over real HTTP on 127.0.0.1.

use ed25519_dalek::{Signer, SigningKey};
use karajo::auth::{sign_github_sha1, sign_hmac_sha256};

use crate::helpers::*;

const HELLO: &str = r#"
[job "hello"]
path = /hello
command = echo hello
"#;

#[tokio::test]
async fn a_signed_hook_runs_the_job_and_answers_with_the_job() {
    let dir = TestDir::new(HELLO);
    let d = TestDaemon::start(&dir).await;
    let res = d.run_hook("/hello", &epoch_body()).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["message"], "OK");
    assert_eq!(body["code"], 200);
    assert_eq!(body["data"]["id"], "hello");
    assert_eq!(body["data"]["path"], "/hello");
    let log = dir.wait_log("hello", 1, "success").await;
    assert!(log.contains("job: hello: hello\n"), "{log}");
    d.stop().await;
}

#[tokio::test]
async fn paths_match_case_insensitively_and_unknown_paths_are_404() {
    let dir = TestDir::new(HELLO);
    let d = TestDaemon::start(&dir).await;
    assert_eq!(d.run_hook("/HELLO/", &epoch_body()).await.status(), 200);
    let res = d.run_hook("/nowhere", &epoch_body()).await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.text().await.unwrap(), "");
    d.stop().await;
}

#[tokio::test]
async fn a_bad_or_missing_signature_is_refused_and_runs_nothing() {
    let dir = TestDir::new(HELLO);
    let d = TestDaemon::start(&dir).await;
    let body = epoch_body();
    for sign in [
        None,
        Some("00".repeat(32)),
        Some(sign_hmac_sha256(b"wrong", body.as_bytes())),
    ] {
        let mut req = d
            .http
            .post(d.url("/karajo/api/job_exec/run/hello"))
            .body(body.clone());
        if let Some(sign) = sign {
            req = req.header("X-Karajo-Sign", sign);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 403);
        assert_eq!(
            res.text().await.unwrap(),
            r#"{"message":"forbidden","name":"ERR_JOB_FORBIDDEN","code":403}"#
        );
    }
    assert!(dir.log_names("hello").is_empty());
    d.stop().await;
}

#[tokio::test]
async fn github_signatures_sha256_and_legacy_sha1_are_accepted() {
    let dir = TestDir::new(
        r#"
[job "gh"]
path = /gh
auth_kind = github
secret = ghsecret
command = echo delivered
"#,
    );
    let d = TestDaemon::start(&dir).await;
    let body = r#"{"zen":"Keep it logically awesome."}"#;
    let sha256 = format!("sha256={}", sign_hmac_sha256(b"ghsecret", body.as_bytes()));
    let res = d
        .http
        .post(d.url("/karajo/api/job_exec/run/gh"))
        .header("X-Hub-Signature-256", sha256)
        .header("X-GitHub-Delivery", "d-1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    dir.wait_log("gh", 1, "success").await;

    let send_sha1 = |body: &'static str, delivery: &'static str| {
        let sha1 = format!("sha1={}", sign_github_sha1(b"ghsecret", body.as_bytes()));
        d.http
            .post(d.url("/karajo/api/job_exec/run/gh"))
            .header("X-Hub-Signature", sha1)
            .header("X-GitHub-Delivery", delivery)
            .body(body)
            .send()
    };
    // The first body again under GitHub's other signature header and a new delivery
    // id: the same delivery, refused.
    assert_eq!(send_sha1(body, "d-9").await.unwrap().status(), 409);
    let second = r#"{"zen":"Design for failure."}"#;
    assert_eq!(send_sha1(second, "d-2").await.unwrap().status(), 200);
    dir.wait_log("gh", 2, "success").await;
    // The same delivery again is a replay.
    let res = send_sha1(second, "d-2").await.unwrap();
    assert_eq!(res.status(), 409);
    d.stop().await;
}

#[tokio::test]
async fn sourcehut_signatures_verify_against_the_configured_key_and_nonces_are_single_use() {
    let secret =
        hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
    let key = SigningKey::from_bytes(&secret.try_into().unwrap());
    let dir = TestDir::new(
        r#"
[job "srht"]
path = /srht
auth_kind = sourcehut
sourcehut_public_key = 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
command = echo built
"#,
    );
    let d = TestDaemon::start(&dir).await;
    let body = r#"{"a":1}"#;
    let sign = |nonce: &str| {
        use base64::Engine as _;
        let sig = key.sign(format!("{body}{nonce}").as_bytes());
        base64::engine::general_purpose::STANDARD.encode(sig.to_bytes())
    };
    let send = |nonce: &'static str, signature: String| {
        d.http
            .post(d.url("/karajo/api/job_exec/run/srht"))
            .header("X-Payload-Nonce", nonce)
            .header("X-Payload-Signature", signature)
            .body(body)
            .send()
    };
    assert_eq!(send("12345", sign("12345")).await.unwrap().status(), 200);
    dir.wait_log("srht", 1, "success").await;
    assert_eq!(send("12345", sign("12345")).await.unwrap().status(), 409);
    assert_eq!(send("777", sign("12345")).await.unwrap().status(), 403);
    assert_eq!(
        send("778", "not base64!".into()).await.unwrap().status(),
        403
    );
    d.stop().await;
}

#[tokio::test]
async fn an_epoch_outside_the_window_is_refused() {
    let dir = TestDir::new(HELLO);
    let d = TestDaemon::start(&dir).await;
    let old = format!("{{\"_karajo_epoch\":{}}}", epoch_now() - 3600);
    let res = d.run_hook("/hello", &old).await;
    assert_eq!(res.status(), 403);
    let text = res.text().await.unwrap();
    assert!(text.contains("ERR_JOB_FORBIDDEN"), "{text}");
    assert!(dir.log_names("hello").is_empty());
    d.stop().await;
}

#[tokio::test]
async fn idle_runs_now_one_more_is_queued_and_further_ones_get_429() {
    let dir = TestDir::new(
        r#"
[job "slow"]
path = /slow
command = sleep 1
"#,
    );
    let d = TestDaemon::start(&dir).await;
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(d.run_hook("/slow", &epoch_body()).await.status().as_u16());
    }
    assert_eq!(codes, [200, 200, 429]);
    dir.wait_log("slow", 2, "success").await;
    d.stop().await;
}

#[tokio::test]
async fn a_paused_job_answers_412_and_resumes() {
    let dir = TestDir::new(HELLO);
    let d = TestDaemon::start(&dir).await;
    let res = d.api_form("pause", "hello").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["data"]["status"], "paused");
    let res = d.run_hook("/hello", &epoch_body()).await;
    assert_eq!(res.status(), 412);
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"message":"job is paused","name":"ERR_JOB_PAUSED","code":412}"#
    );
    assert_eq!(d.api_form("resume", "hello").await.status(), 200);
    assert_eq!(d.run_hook("/hello", &epoch_body()).await.status(), 200);
    dir.wait_log("hello", 1, "success").await;
    d.stop().await;
}

#[tokio::test]
async fn max_job_running_limits_concurrent_runs() {
    let mut conf = String::from("[karajo]\nmax_job_running = 1\n");
    for i in 0..3 {
        conf.push_str(&format!(
            "[job \"j{i}\"]\npath = /j{i}\ncommand = echo start $(date +%s%N) >> ../../../../order\ncommand = sleep 0.3\ncommand = echo end $(date +%s%N) >> ../../../../order\n"
        ));
    }
    let dir = TestDir::new(&conf);
    let d = TestDaemon::start(&dir).await;
    for i in 0..3 {
        assert_eq!(
            d.run_hook(&format!("/j{i}"), &epoch_body()).await.status(),
            200
        );
    }
    for i in 0..3 {
        dir.wait_log(&format!("j{i}"), 1, "success").await;
    }
    // Runs never overlapped: the lines alternate start, end, start, end...
    let order = std::fs::read_to_string(dir.base().join("var/order")).unwrap();
    let kinds: Vec<&str> = order
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["start", "end", "start", "end", "start", "end"],
        "{order}"
    );
    d.stop().await;
}

#[tokio::test]
async fn a_body_past_the_limit_gets_413_and_runs_nothing() {
    let dir = TestDir::new(&format!("[karajo]\nmax_body_size = 1024\n{HELLO}"));
    let d = TestDaemon::start(&dir).await;
    let res = d.run_hook("/hello", &"x".repeat(4096)).await;
    assert_eq!(res.status(), 413);
    assert!(dir.log_names("hello").is_empty());
    d.stop().await;
}

#[tokio::test]
async fn a_declared_length_past_the_limit_gets_413_before_the_body_is_sent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = TestDir::new(&format!("[karajo]\nmax_body_size = 1024\n{HELLO}"));
    let d = TestDaemon::start(&dir).await;
    let addr = d.base_url.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = "POST /karajo/api/job_exec/run/hello HTTP/1.1\r\nHost: x\r\nX-Karajo-Sign: 00\r\nContent-Length: 104857600\r\n\r\n";
    s.write_all(head.as_bytes()).await.unwrap();
    // No body is sent: the answer must come from the header alone.
    let mut answer = vec![0u8; 12];
    tokio::time::timeout(TIMEOUT, s.read_exact(&mut answer))
        .await
        .expect("an answer without the body")
        .unwrap();
    assert_eq!(&answer, b"HTTP/1.1 413");
    assert!(dir.log_names("hello").is_empty());
    d.stop().await;
}
