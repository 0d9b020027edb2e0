//! The supervised services' API against the real daemon (monitors spec B.4.4, B.9,
//! B.10 and the C.4 rows SVC-11, SVC-16 and SVC-30): the read and its JSON, the
//! environment's `services` map, signed controls with a CAS precondition and a
//! delegated secret, the instance ping with its token, and the typed client and the
//! `karajo service` command on top.

use karajo::client::{Client, ClientError, ClientOptions};
use serde_json::{Value, json};

use crate::helpers::*;

/// A service that writes its instance token where the test can read it, with a
/// delegated secret and an `env` value that must never be shown.
const SERVICES: &str = r#"
[service "Web App"]
command = "echo $KARAJO_SERVICE_TOKEN > token.txt; exec sleep 3101"
env = DB_PASSWORD=hunter2-env-value
secret = delegated-s3cret
start_seconds = 0s
restart_delay = 500ms
stop_timeout = 2s
ping_timeout = 30s

[service "Other"]
command = exec sleep 3102
start_seconds = 0s
stop_timeout = 2s
"#;

const DELEGATED: &str = "delegated-s3cret";

/// A signed control form `POST /karajo/api/service/<action>` with `fields` after the
/// stamp, signed with `secret` and stamped `epoch`.
async fn control_at(
    d: &TestDaemon,
    action: &str,
    fields: &str,
    secret: &str,
    epoch: i64,
) -> reqwest::Response {
    let body = format!("_karajo_epoch={epoch}&_karajo_nonce={}&{fields}", nonce());
    let sign = karajo::auth::sign_hmac_sha256(secret.as_bytes(), body.as_bytes());
    d.http
        .post(d.url(&format!("/karajo/api/service/{action}")))
        .header("X-Karajo-Sign", sign)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// [`control_at`] now, with the global secret.
async fn control(d: &TestDaemon, action: &str, fields: &str) -> reqwest::Response {
    control_at(d, action, fields, SECRET, epoch_now()).await
}

/// The status and the JSON body of an answer.
async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body)
}

/// Checks an error object: the status, `code` equal to it, and `name`.
fn assert_error(got: &(u16, Value), status: u16, name: &str) {
    let (code, body) = got;
    assert_eq!(*code, status, "{body}");
    assert_eq!(body["code"], status, "{body}");
    assert_eq!(body["name"].as_str().unwrap_or(""), name, "{body}");
}

async fn get(d: &TestDaemon, path: &str) -> (u16, Value) {
    answer(d.http.get(d.url(path)).send().await.unwrap()).await
}

/// `data` of `GET /karajo/api/service?id=ID`.
async fn service(d: &TestDaemon, id: &str) -> Value {
    let (status, body) = get(d, &format!("/karajo/api/service?id={id}")).await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

/// Waits until the service is `running` with an instance other than `not`.
async fn running_instance(d: &TestDaemon, id: &str, not: &str) -> Value {
    wait_for(&format!("service {id} running"), || async {
        let (status, body) = get(d, &format!("/karajo/api/service?id={id}")).await;
        let data = &body["data"];
        let fresh = data["instance"].as_str().is_some_and(|i| i != not);
        (status == 200 && data["status"] == "running" && fresh).then(|| data.clone())
    })
    .await
}

/// The token the current instance of `web_app` wrote, once it is there.
async fn token_of(dir: &TestDir, not: &str) -> String {
    let path = dir.base().join("var/lib/karajo/service/web_app/token.txt");
    wait_for("the instance token", || async {
        let text = std::fs::read_to_string(&path).ok()?;
        let token = text.trim().to_string();
        (!token.is_empty() && token != not).then_some(token)
    })
    .await
}

fn client(d: &TestDaemon) -> Client {
    Client::new(ClientOptions {
        server_url: d.base_url.clone(),
        secret: SECRET.into(),
        ..ClientOptions::default()
    })
    .unwrap()
}

/// `karajo service <args>` against the daemon, run off the async runtime.
async fn karajo_service(d: &TestDaemon, args: &[&str]) -> std::process::Output {
    let mut all: Vec<String> = vec!["service".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    all.extend(["--server".into(), d.base_url.clone()]);
    all.extend(["--secret".into(), SECRET.into()]);
    tokio::task::spawn_blocking(move || {
        let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("karajo");
        cmd.env_remove("KARAJO_SECRET")
            .env_remove("KARAJO_SERVER")
            .args(&all);
        cmd.output().unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn an_unknown_service_is_404_on_every_route() {
    let dir = TestDir::new(SERVICES);
    let d = TestDaemon::start(&dir).await;
    for path in [
        "/karajo/api/service?id=nope",
        "/karajo/api/service?id=nope&history=1",
        "/karajo/api/service/log?id=nope&counter=1",
        "/karajo/api/service/ping/nope",
        "/karajo/api/service/ping/nope?token=whatever",
    ] {
        assert_error(&get(&d, path).await, 404, "ERR_SERVICE_NOT_FOUND");
    }
    let ping = d
        .http
        .post(d.url("/karajo/api/service/ping/nope"))
        .body(r#"{"status_text":"hi"}"#)
        .send()
        .await
        .unwrap();
    assert_error(&answer(ping).await, 404, "ERR_SERVICE_NOT_FOUND");
    for (action, extra) in [
        ("enable", ""),
        ("disable", "&cas=1"),
        ("restart", ""),
        ("run_once", "&on=1"),
        ("signal", "&signal=FOO"),
    ] {
        let got = answer(control(&d, action, &format!("id=nope{extra}")).await).await;
        assert_error(&got, 404, "ERR_SERVICE_NOT_FOUND");
        assert_eq!(got.1["message"], "service not found: nope");
    }
    let err = client(&d).service("nope").await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Server { code: 404, name, .. } if name == "ERR_SERVICE_NOT_FOUND"),
        "{err:?}"
    );
    let out = karajo_service(&d, &["get", "nope"]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("service not found: nope"), "{stderr}");
    d.stop().await;
}

#[tokio::test]
async fn controls_refuse_a_bad_or_stale_signature_first() {
    // SVC-30: a bad signature and a stale `_karajo_epoch` are 401, whatever the id.
    let dir = TestDir::new(SERVICES);
    let d = TestDaemon::start(&dir).await;
    for id in ["web_app", "nope"] {
        let fields = format!("id={id}&signal=FOO");
        let bad = control_at(&d, "signal", &fields, "wrong", epoch_now()).await;
        assert_error(&answer(bad).await, 401, "");
        let stale = control_at(&d, "signal", &fields, SECRET, epoch_now() - 3600).await;
        assert_error(&answer(stale).await, 401, "");
        let unsigned = d
            .http
            .post(d.url("/karajo/api/service/disable"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("_karajo_epoch={}&id={id}", epoch_now()))
            .send()
            .await
            .unwrap();
        assert_error(&answer(unsigned).await, 401, "");
        // Another service's secret opens nothing else.
        let other = control_at(&d, "disable", "id=other", DELEGATED, epoch_now()).await;
        assert_error(&answer(other).await, 401, "");
    }
    d.stop().await;
}

#[tokio::test]
async fn a_service_reads_as_the_spec_json_and_in_the_environment() {
    let dir = TestDir::new(SERVICES);
    let d = TestDaemon::start(&dir).await;
    let s = running_instance(&d, "web_app", "").await;
    for always in ["id", "name", "kind", "status", "enabled", "cas"] {
        assert!(s.get(always).is_some(), "{always} missing: {s}");
    }
    assert_eq!(s["id"], "web_app");
    assert_eq!(s["name"], "Web App");
    assert_eq!(s["kind"], "service");
    assert_eq!(s["enabled"], true);
    assert_eq!(s["restart_delay"], 500_000_000);
    assert_eq!(s["stop_timeout"], 2_000_000_000_u64);
    assert_eq!(s["ping_timeout"], 30_000_000_000_u64);
    assert!(
        s["pid"].as_u64().is_some_and(|pid| is_alive(pid as u32)),
        "{s}"
    );
    assert!(s.get("history").is_none(), "{s}");
    let text = s.to_string();
    for hidden in ["hunter2-env-value", DELEGATED, "\"secret\"", "\"env\""] {
        assert!(!text.contains(hidden), "{hidden} in {text}");
    }

    let (status, env) = get(&d, "/karajo/api/environment").await;
    assert_eq!(status, 200);
    assert_eq!(env["data"]["services"]["Web App"]["id"], "web_app");
    assert_eq!(env["data"]["services"]["Other"]["id"], "other");
    assert!(!env.to_string().contains("hunter2-env-value"));

    // The log of the running segment reads like a job's.
    let counter = s["counter"].as_u64().unwrap();
    let log = client(&d).service_log("web_app", counter).await.unwrap();
    assert_eq!(log.status, "running");

    // A restart ends the first instance: the history shows it, newest first.
    let first = s["instance"].as_str().unwrap().to_string();
    let (status, body) = answer(control(&d, "restart", "id=web_app").await).await;
    assert_eq!(status, 200, "{body}");
    running_instance(&d, "web_app", &first).await;
    let (_, body) = get(&d, "/karajo/api/service?id=web_app&history=1").await;
    let history = body["data"]["history"].as_array().unwrap().clone();
    assert_eq!(history[0]["instance"], first.as_str(), "{body}");
    assert_eq!(history[0]["reason"], "stopped");
    assert!(history[0]["duration"].as_u64().unwrap() > 0);
    let with_history = client(&d).service_history("web_app").await.unwrap();
    assert_eq!(with_history.history.unwrap()[0].instance, first);
    d.stop().await;
}

#[tokio::test]
async fn a_cas_mismatch_is_409_with_the_current_service() {
    // SVC-11.
    let dir = TestDir::new(SERVICES);
    let d = TestDaemon::start(&dir).await;
    let s = running_instance(&d, "other", "").await;
    let cas = s["cas"].as_u64().unwrap();
    let stale = format!("id=other&cas={}", cas - 1);
    let got = answer(control(&d, "disable", &stale).await).await;
    assert_error(&got, 409, "ERR_SERVICE_CAS");
    assert_eq!(got.1["message"], format!("cas mismatch: current {cas}"));
    assert_eq!(got.1["data"]["cas"], cas);
    assert_eq!(service(&d, "other").await["status"], "running");

    // The client carries the current service; the command line prints its cas.
    let err = client(&d)
        .service_disable("other", Some(cas - 1))
        .await
        .unwrap_err();
    let ClientError::CasMismatch { current, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(current.cas, cas);
    let out = karajo_service(&d, &["disable", "other", "--cas", &(cas - 1).to_string()]).await;
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("current cas: {cas}")), "{stdout}");

    // With the current cas it happens, and the answer shows the new one.
    let got = answer(control(&d, "disable", &format!("id=other&cas={cas}")).await).await;
    assert_eq!(got.0, 200, "{}", got.1);
    assert!(got.1["data"]["cas"].as_u64().unwrap() > cas, "{}", got.1);
    d.stop().await;
}

#[tokio::test]
async fn bad_control_fields_are_400_and_a_signal_needs_a_live_instance() {
    // SVC-30's `signal=FOO`, and the other fields.
    let dir = TestDir::new(SERVICES);
    let d = TestDaemon::start(&dir).await;
    running_instance(&d, "other", "").await;
    for (action, fields, field) in [
        ("signal", "id=other&signal=FOO", "signal"),
        ("run_once", "id=other&on=2", "on"),
        ("disable", "id=other&cas=x", "cas"),
    ] {
        let got = answer(control(&d, action, fields).await).await;
        assert_error(&got, 400, "ERR_SERVICE_BAD_REQUEST");
        let message = got.1["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("invalid request: {field} ")),
            "{message}"
        );
    }
    let got = answer(control(&d, "signal", "id=other&signal=HUP").await).await;
    assert_eq!(got.0, 200, "{}", got.1);
    // `sleep` dies of SIGHUP, a clean ending; disabled, there is no instance left.
    let got = answer(control(&d, "disable", "id=other").await).await;
    assert_eq!(got.0, 200, "{}", got.1);
    wait_for("other disabled", || async {
        (service(&d, "other").await["status"] == "disabled").then_some(())
    })
    .await;
    let got = answer(control(&d, "signal", "id=other&signal=USR1").await).await;
    assert_error(&got, 409, "ERR_SERVICE_NOT_RUNNING");
    d.stop().await;
}

#[tokio::test]
async fn a_service_secret_signs_controls_of_that_service() {
    let dir = TestDir::new(SERVICES);
    let d = TestDaemon::start(&dir).await;
    running_instance(&d, "web_app", "").await;
    let own = control_at(&d, "run_once", "id=web_app&on=1", DELEGATED, epoch_now()).await;
    let (status, body) = answer(own).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["run_once"], true);
    let stale = control_at(
        &d,
        "run_once",
        "id=web_app&on=0",
        DELEGATED,
        epoch_now() - 3600,
    );
    assert_error(&answer(stale.await).await, 401, "");
    let other = control_at(&d, "disable", "id=other", DELEGATED, epoch_now()).await;
    assert_error(&answer(other).await, 401, "");
    d.stop().await;
}

#[tokio::test]
async fn a_ping_needs_the_current_instance_token() {
    // B.4.4 and SVC-16.
    let dir = TestDir::new(SERVICES);
    let d = TestDaemon::start(&dir).await;
    let s = running_instance(&d, "web_app", "").await;
    let first = s["instance"].as_str().unwrap().to_string();
    let token = token_of(&dir, "").await;
    let (_, env) = get(&d, "/karajo/api/environment").await;
    for shown in [s.to_string(), env.to_string()] {
        assert!(
            !shown.contains(&token),
            "the instance token is shown: {shown}"
        );
    }
    let ping = |query: String, body: Option<Value>| {
        let url = d.url(&format!("/karajo/api/service/ping/web_app{query}"));
        let request = match body {
            Some(body) => d.http.post(url).body(body.to_string()),
            None => d.http.get(url),
        };
        async move { answer(request.send().await.unwrap()).await }
    };

    let cas = s["cas"].clone();
    let (status, body) = ping(format!("?token={token}"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"data":{"id":"web_app","instance":first,"status":"running"},"code":200})
    );
    let by_header = d
        .http
        .post(d.url("/karajo/api/service/ping/web_app"))
        .header("X-Karajo-Token", &token)
        .body(r#"{"status_text":"warm","keyvalue":{"port":8080}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), 200);
    let s = service(&d, "web_app").await;
    assert_eq!(s["status_text"], "warm");
    assert_eq!(s["keyvalue"], json!({"port":8080}));
    assert_eq!(s["cas"], cas, "pings never change the CAS");
    assert!(s["last_seen"].is_string(), "{s}");

    assert_error(
        &ping(String::new(), None).await,
        403,
        "ERR_SERVICE_FORBIDDEN",
    );
    assert_error(
        &ping("?token=wrong".into(), None).await,
        403,
        "ERR_SERVICE_FORBIDDEN",
    );
    let long = json!({ "status_text": "x".repeat(257) });
    assert_error(
        &ping(format!("?token={token}"), Some(long)).await,
        400,
        "ERR_SERVICE_BAD_REQUEST",
    );
    let many: serde_json::Map<String, Value> =
        (0..65).map(|n| (format!("k{n}"), json!(n))).collect();
    assert_error(
        &ping(format!("?token={token}"), Some(json!({ "keyvalue": many }))).await,
        400,
        "ERR_SERVICE_BAD_REQUEST",
    );

    // A new instance: the old token is stale, the new one works.
    let (status, body) = answer(control(&d, "restart", "id=web_app").await).await;
    assert_eq!(status, 200, "{body}");
    let second = running_instance(&d, "web_app", &first).await;
    let new_token = token_of(&dir, &token).await;
    let got = ping(format!("?token={token}"), None).await;
    assert_error(&got, 409, "ERR_SERVICE_STALE");
    assert_eq!(
        got.1["message"],
        format!("instance is not current: {first}")
    );
    let (status, body) = ping(format!("?token={new_token}"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["instance"], second["instance"]);
    d.stop().await;
}
