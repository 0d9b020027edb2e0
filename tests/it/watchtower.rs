//! watchTower compatibility against the real daemon on 127.0.0.1 (monitors spec A.8,
//! acceptance rows WT-01 to WT-09): the five routes behind the `password` header,
//! pulses creating dynamic monitors that go down on time and notify, cancels, a restart
//! that keeps them, the event routes, the `alertTarget` rule, a configured monitor
//! that does not accept pulses, the root mount, and a session as a watchTower client
//! sends it (the JSON bodies and the `password` header of its README).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;
use crate::notify::{next_hit, webhook_server};

const PASSWORD: &str = "wt-pass-0123456789";

fn watchtower(extra: &str) -> String {
    format!("[watchtower]\npassword = {PASSWORD}\n{extra}\n")
}

/// Sends `method` to `path` with the password header (`None`: without it) and a JSON
/// body; answers the status and the JSON.
async fn call(
    d: &TestDaemon,
    method: reqwest::Method,
    path: &str,
    password: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = d.http.request(method, d.url(path));
    if let Some(password) = password {
        request = request.header("password", password);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn pulse(d: &TestDaemon, service: &str, alert_type: &str, next_in: u64) -> (u16, Value) {
    let body =
        json!({"service": service, "alertType": alert_type, "alertTarget": "", "nextIn": next_in});
    call(
        d,
        reqwest::Method::POST,
        "/karajo/api/watchtower/",
        Some(PASSWORD),
        Some(body),
    )
    .await
}

async fn list(d: &TestDaemon) -> Vec<Value> {
    let (status, body) = call(
        d,
        reqwest::Method::GET,
        "/karajo/api/watchtower/",
        Some(PASSWORD),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

async fn monitor_status(d: &TestDaemon, id: &str) -> String {
    let answer: Value = d
        .http
        .get(d.url(&format!("/karajo/api/monitor?id={id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["data"]["status"].as_str().unwrap_or("").to_string()
}

async fn events(d: &TestDaemon, query: &str) -> Vec<Value> {
    let answer: Value = d
        .http
        .get(d.url(&format!("/karajo/api/event?{query}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["data"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn wt01_without_a_watchtower_section_the_routes_do_not_exist() {
    let dir = TestDir::new("");
    let d = TestDaemon::start(&dir).await;
    let body = json!({"service": "a", "nextIn": 5});
    let (status, _) = call(
        &d,
        reqwest::Method::POST,
        "/karajo/api/watchtower/",
        Some("x"),
        Some(body),
    )
    .await;
    assert_eq!(status, 404);
    d.stop().await;
}

#[tokio::test]
async fn wt02_a_missing_or_wrong_password_is_401_and_creates_nothing() {
    let dir = TestDir::new(&watchtower(""));
    let d = TestDaemon::start(&dir).await;
    let body = json!({"service": "svc A", "alertType": "", "alertTarget": "", "nextIn": 5});
    for password in [None, Some("wrong"), Some("")] {
        let (status, answer) = call(
            &d,
            reqwest::Method::POST,
            "/karajo/api/watchtower/",
            password,
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 401, "{password:?}: {answer}");
        assert_eq!(answer["name"], "ERR_WATCHTOWER_PASSWORD", "{answer}");
    }
    for path in [
        "/karajo/api/watchtower/",
        "/karajo/api/watchtower/list-events",
    ] {
        let (status, _) = call(&d, reqwest::Method::GET, path, Some("wrong"), None).await;
        assert_eq!(status, 401, "{path}");
    }
    assert!(list(&d).await.is_empty());
    assert!(
        !dir.base()
            .join("var/lib/karajo/state/watchtower.json")
            .exists()
    );
    d.stop().await;
}

#[tokio::test]
async fn wt03_a_pulse_creates_a_monitor_that_goes_down_on_time_and_notifies_once() {
    let (url, mut hits) = webhook_server(Vec::new()).await;
    let dir = TestDir::new(&format!(
        "{}\n[notif \"hook\"]\nkind = webhook\nurl = {url}\n",
        watchtower("")
    ));
    let d = TestDaemon::start(&dir).await;
    let sent = Instant::now();
    let (status, answer) = pulse(&d, "svc A", "hook", 2).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["code"], 200);
    assert_eq!(answer["data"]["id"], "svc_a");
    assert_eq!(answer["data"]["name"], "svc A");
    assert_eq!(answer["data"]["status"], "up");
    assert_eq!(answer["data"]["dynamic"], true);
    assert_eq!(answer["data"]["period"], 2_000_000_000u64);
    let listed = list(&d).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], "svc_a");
    assert_eq!(listed[0]["status"], "up");
    // Grace 0: down when the pulse is 2 s old, not before.
    let down_at = wait_for("svc_a down", || async {
        (monitor_status(&d, "svc_a").await == "down").then(Instant::now)
    })
    .await;
    let took = down_at - sent;
    assert!(took >= Duration::from_millis(1950), "down after {took:?}");
    assert!(took <= Duration::from_millis(3500), "down after {took:?}");
    let hit = next_hit(&mut hits).await;
    let body: Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(body["event"], "down", "{body}");
    assert_eq!(body["id"], "svc_a", "{body}");
    // The pulse has its check-in log.
    let names: Vec<String> = std::fs::read_dir(dir.base().join("var/log/karajo/monitor/svc_a"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["svc_a.1.success"], "{names:?}");
    let log = std::fs::read_to_string(
        dir.base()
            .join("var/log/karajo/monitor/svc_a/svc_a.1.success"),
    )
    .unwrap();
    assert!(log.contains("=== PULSE next_in=2s via POST"), "{log}");
    assert!(!log.contains(PASSWORD));
    // Exactly one webhook.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(hits.try_recv().is_err(), "a second webhook");
    d.stop().await;
}

#[tokio::test]
async fn wt04_a_cancel_removes_the_monitor_its_state_and_logs_without_alerting() {
    let (url, mut hits) = webhook_server(Vec::new()).await;
    let dir = TestDir::new(&format!(
        "{}\n[notif \"hook\"]\nkind = webhook\nurl = {url}\n",
        watchtower("")
    ));
    let d = TestDaemon::start(&dir).await;
    assert_eq!(pulse(&d, "svc A", "hook", 2).await.0, 200);
    let (status, answer) = call(
        &d,
        reqwest::Method::DELETE,
        "/karajo/api/watchtower/",
        Some(PASSWORD),
        Some(json!({"service": "svc A"})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["id"], "svc_a");
    assert!(list(&d).await.is_empty());
    let state_file = dir.base().join("var/lib/karajo/state/monitor/svc_a.json");
    assert!(!state_file.exists());
    assert!(!dir.base().join("var/log/karajo/monitor/svc_a").exists());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(hits.try_recv().is_err(), "no webhook after a cancel");
    assert!(list(&d).await.is_empty());
    let removed = events(&d, "service=svc_a").await;
    assert!(
        removed.iter().any(|e| e["kind"] == "monitor.removed"),
        "{removed:?}"
    );
    // Unknown: 404.
    let (status, answer) = call(
        &d,
        reqwest::Method::DELETE,
        "/karajo/api/watchtower/",
        Some(PASSWORD),
        Some(json!({"service": "svc A"})),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    d.stop().await;
}

#[tokio::test]
async fn wt05_a_dynamic_monitor_survives_a_restart_with_its_due_time() {
    let dir = TestDir::new(&watchtower(""));
    let d = TestDaemon::start(&dir).await;
    let (status, answer) = pulse(&d, "svc A", "", 30).await;
    assert_eq!(status, 200);
    let due = answer["data"]["next_due"].clone();
    d.stop().await;
    let saved =
        std::fs::read_to_string(dir.base().join("var/lib/karajo/state/watchtower.json")).unwrap();
    assert!(saved.contains("\"service\": \"svc A\""), "{saved}");
    let d = TestDaemon::start(&dir).await;
    let listed = list(&d).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["status"], "up");
    assert_eq!(listed[0]["next_due"], due);
    // A second pulse takes the same monitor (counter 2), not a new one.
    let (_, answer) = pulse(&d, "svc A", "", 30).await;
    assert_eq!(answer["data"]["counter"], 2, "{answer}");
    d.stop().await;
}

#[tokio::test]
async fn wt06_events_are_added_and_listed_as_a_plain_array() {
    let dir = TestDir::new(&watchtower(""));
    let d = TestDaemon::start(&dir).await;
    for (level, message) in [("info", "disk ok"), ("warning", "disk 91%")] {
        let body = json!({"service": "box", "level": level, "message": message});
        let (status, answer) = call(
            &d,
            reqwest::Method::POST,
            "/karajo/api/watchtower/add-event",
            Some(PASSWORD),
            Some(body),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["data"]["source"], "watchtower", "{answer}");
        assert_eq!(answer["data"]["service"], "box");
    }
    let (status, answer) = call(
        &d,
        reqwest::Method::GET,
        "/karajo/api/watchtower/list-events?level=warning",
        Some(PASSWORD),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let listed = answer["data"].as_array().expect("a plain array");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["message"], "disk 91%");
    let (status, answer) = call(
        &d,
        reqwest::Method::GET,
        "/karajo/api/watchtower/list-events?service=box",
        Some(PASSWORD),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["data"].as_array().unwrap().len(), 2, "{answer}");
    // A bad level is the event log's 400.
    let body = json!({"service": "box", "level": "loud", "message": "x"});
    let (status, answer) = call(
        &d,
        reqwest::Method::POST,
        "/karajo/api/watchtower/add-event",
        Some(PASSWORD),
        Some(body),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["name"], "ERR_EVENT_INVALID");
    d.stop().await;
}

#[tokio::test]
async fn wt07_an_alert_target_is_ignored_without_allow_target_and_a_warning_says_so() {
    use crate::notify::{Mode, Smtp};
    let smtp = Smtp::start(0, Mode::Plain, false, None).await;
    let dir = TestDir::new(&format!(
        "{}\n[notif \"mail\"]\nkind = email\nsmtp_server = smtp://127.0.0.1:{}\n\
         from = karajo@example.org\nto = ops@example.org\n",
        watchtower(""),
        smtp.port
    ));
    let d = TestDaemon::start(&dir).await;
    let body =
        json!({"service": "svc", "alertType": "MAIL", "alertTarget": "x@evil.test", "nextIn": 1});
    let (status, answer) = call(
        &d,
        reqwest::Method::POST,
        "/karajo/api/watchtower/",
        Some(PASSWORD),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["data"]["notif_on_down"],
        json!(["mail"]),
        "alertType matches without case"
    );
    let mail = &smtp.wait_messages(1).await[0];
    assert_eq!(mail["rcpt_tos"], json!(["ops@example.org"]), "{mail}");
    let subject = mail["headers"]["Subject"].as_str().unwrap();
    assert!(subject.starts_with("monitor: svc: DOWN"), "{subject}");
    let warnings = events(&d, "service=svc&level=warning").await;
    assert!(
        warnings.iter().any(|e| e["message"]
            .as_str()
            .unwrap()
            .contains("alertTarget is ignored")),
        "{warnings:?}"
    );
    d.stop().await;
}

#[tokio::test]
async fn wt07b_an_allowed_target_replaces_the_recipient() {
    use crate::notify::{Mode, Smtp};
    let smtp = Smtp::start(0, Mode::Plain, false, None).await;
    let dir = TestDir::new(&format!(
        "{}\n[notif \"mail\"]\nkind = email\nsmtp_server = smtp://127.0.0.1:{}\n\
         from = karajo@example.org\nto = ops@example.org\nallow_target = true\n",
        watchtower(""),
        smtp.port
    ));
    let d = TestDaemon::start(&dir).await;
    let body = json!({"service": "svc", "alertType": "mail", "alertTarget": "dev@example.org", "nextIn": 1});
    let (status, _) = call(
        &d,
        reqwest::Method::POST,
        "/karajo/api/watchtower/",
        Some(PASSWORD),
        Some(body),
    )
    .await;
    assert_eq!(status, 200);
    let mail = &smtp.wait_messages(1).await[0];
    assert_eq!(mail["rcpt_tos"], json!(["dev@example.org"]), "{mail}");
    d.stop().await;
}

#[tokio::test]
async fn wt08_a_configured_monitor_without_accept_pulse_refuses_pulses() {
    let dir = TestDir::new(&format!(
        "{}\n[monitor \"svc\"]\nperiod = 1h\nauth_kind = none\n\n\
         [monitor \"open\"]\nperiod = 1h\nauth_kind = none\naccept_pulse = true\n",
        watchtower("")
    ));
    let d = TestDaemon::start(&dir).await;
    let (status, answer) = pulse(&d, "svc", "", 5).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["name"], "ERR_MONITOR_CONFLICT");
    assert_eq!(monitor_status(&d, "svc").await, "new");
    // With accept_pulse the pulse checks in to the configured monitor, with its nextIn.
    let (status, answer) = pulse(&d, "open", "", 5).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["dynamic"], false);
    assert_eq!(answer["data"]["status"], "up");
    let listed = list(&d).await;
    assert_eq!(
        listed.len(),
        1,
        "only the one that accepts pulses: {listed:?}"
    );
    // A cancel pauses it until its next check-in.
    let (status, answer) = call(
        &d,
        reqwest::Method::DELETE,
        "/karajo/api/watchtower/",
        Some(PASSWORD),
        Some(json!({"service": "open"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["data"]["status"], "paused", "{answer}");
    d.stop().await;
}

#[tokio::test]
async fn wt09_mounted_at_the_root_get_slash_needs_the_password_header_to_list() {
    let dir = TestDir::new(&watchtower("path = /"));
    let d = TestDaemon::start(&dir).await;
    let body = json!({"service": "root svc", "alertType": "", "alertTarget": "", "nextIn": 60});
    let (status, answer) = call(&d, reqwest::Method::POST, "/", Some(PASSWORD), Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = call(&d, reqwest::Method::GET, "/", Some(PASSWORD), None).await;
    assert_eq!(status, 200);
    assert_eq!(answer["data"][0]["id"], "root_svc", "{answer}");
    // Without the header, GET / is what it always was (the web UI), not the list.
    let plain = d.http.get(d.url("/")).send().await.unwrap();
    let text = plain.text().await.unwrap();
    assert!(text.starts_with("<!doctype html>"), "{text}");
    let (status, _) = call(
        &d,
        reqwest::Method::GET,
        "/list-events",
        Some(PASSWORD),
        None,
    )
    .await;
    assert_eq!(status, 200);
    // The fixed path is not served when the routes are mounted elsewhere.
    let (status, _) = call(
        &d,
        reqwest::Method::GET,
        "/karajo/api/watchtower/",
        Some(PASSWORD),
        None,
    )
    .await;
    assert_eq!(status, 404);
    d.stop().await;
}

#[tokio::test]
async fn bad_pulses_are_400_naming_the_field_and_the_limit_is_429() {
    let dir = TestDir::new(&watchtower("max_monitors = 2"));
    let d = TestDaemon::start(&dir).await;
    let post = |body: Value| {
        call(
            &d,
            reqwest::Method::POST,
            "/karajo/api/watchtower/",
            Some(PASSWORD),
            Some(body),
        )
    };
    for (body, field) in [
        (json!({"service": "a", "nextIn": 0}), "nextIn"),
        (json!({"service": "a", "nextIn": 31622401}), "nextIn"),
        (json!({"service": "a", "nextIn": "5"}), "nextIn"),
        (json!({"service": "a", "nextIn": 1.5}), "nextIn"),
        (json!({"service": "", "nextIn": 5}), "service"),
        (json!({"service": "a\nb", "nextIn": 5}), "service"),
    ] {
        let (status, answer) = post(body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(field),
            "{body}: {answer}"
        );
    }
    let (status, _) = d
        .http
        .post(d.url("/karajo/api/watchtower/"))
        .header("password", PASSWORD)
        .body("not json")
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 400);
    assert_eq!(post(json!({"service": "a", "nextIn": 60})).await.0, 200);
    assert_eq!(post(json!({"service": "b", "nextIn": 60})).await.0, 200);
    let (status, answer) = post(json!({"service": "c", "nextIn": 60})).await;
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["name"], "ERR_WATCHTOWER_LIMIT");
    // An existing one still takes pulses.
    assert_eq!(post(json!({"service": "a", "nextIn": 60})).await.0, 200);
    assert!(!dir.base().join("var/log/karajo/monitor/c").exists());
    d.stop().await;
}

/// A session as watchTower's README documents its client: JSON bodies with
/// `service`, `alertType`, `alertTarget`, `nextIn` (pulse), `service` (cancel),
/// `service`, `level`, `message` (add-event), every request with the `password`
/// header, only the base URL changed. The client checks status codes.
#[tokio::test]
async fn a_watchtower_client_session_works_against_karajo_with_only_the_base_url_changed() {
    let dir = TestDir::new(&watchtower("path = /watchtower"));
    let d = TestDaemon::start(&dir).await;
    let base = d.url("/watchtower");
    let client = reqwest::Client::new();
    let send = |method: reqwest::Method, path: &str, body: Option<&str>| {
        let mut request = client
            .request(method, format!("{base}{path}"))
            .header("password", PASSWORD)
            .header("Content-Type", "application/json");
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        request.send()
    };
    let r = send(
        reqwest::Method::POST,
        "/",
        Some(r#"{"service":"nightly-backup","alertType":"email","alertTarget":"me@example.org","nextIn":86400}"#),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = send(
        reqwest::Method::POST,
        "/add-event",
        Some(r#"{"service":"nightly-backup","level":"info","message":"backup started"}"#),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = send(
        reqwest::Method::GET,
        "/list-events?service=nightly-backup&message=STARTED",
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let listed: Value = r.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    let r = send(reqwest::Method::GET, "/", None).await.unwrap();
    assert_eq!(r.status(), 200);
    let listed: Value = r.json().await.unwrap();
    assert_eq!(listed["data"][0]["name"], "nightly-backup", "{listed}");
    let r = send(
        reqwest::Method::DELETE,
        "/",
        Some(r#"{"service":"nightly-backup"}"#),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = send(reqwest::Method::GET, "/", None).await.unwrap();
    let listed: Value = r.json().await.unwrap();
    assert_eq!(listed["data"], json!([]), "{listed}");
    d.stop().await;
}
