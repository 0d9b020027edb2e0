//! Heartbeat monitors against the real daemon on 127.0.0.1: one-line pings as a
//! crontab sends them, their answers and logs, authentication before anything is
//! recorded, the monitor read and pause/resume controls, a deadline taking a monitor
//! down, and a restart that does not count karajo's own downtime against a client.

use std::time::Duration;

use crate::helpers::*;

const MONITORS: &str = r#"
[monitor "Backup DB"]
path = /backup
period = 1h
token = a-token-of-24-characters

[monitor "quick"]
period = 1s
grace = 0s
auth_kind = none
"#;

const TOKEN: &str = "a-token-of-24-characters";

async fn monitor(d: &TestDaemon, id: &str) -> serde_json::Value {
    let answer: serde_json::Value = d
        .http
        .get(d.url(&format!("/karajo/api/monitor?id={id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["data"].clone()
}

#[tokio::test]
async fn a_ping_checks_in_writes_its_log_and_answers_with_the_next_due_time() {
    let dir = TestDir::new(MONITORS);
    let d = TestDaemon::start(&dir).await;
    assert_eq!(monitor(&d, "backup_db").await["status"], "new");

    let url = d.url(&format!("/karajo/api/monitor/ping/backup?token={TOKEN}"));
    let answer = d
        .http
        .get(&url)
        .header("User-Agent", "curl/8.5.0")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["ping-body-limit"], "10000");
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["code"], 200);
    assert_eq!(body["data"]["id"], "backup_db");
    assert_eq!(body["data"]["status"], "up");
    assert_eq!(body["data"]["counter"], 1);
    assert!(body["data"]["next_due"].is_string(), "{body}");

    // The log exists once the answer is in, with the header and without the token.
    let log_dir = dir.base().join("var/log/karajo/monitor/backup_db");
    let log = std::fs::read_to_string(log_dir.join("backup_db.1.success")).unwrap();
    assert!(
        log.contains("UTC monitor: backup_db: === SUCCESS via GET from 127.0.0.1"),
        "{log}"
    );
    assert!(log.contains("\"curl/8.5.0\""), "{log}");
    assert!(!log.contains(TOKEN), "{log}");

    // A failure with an exit status and a body, posted.
    let answer = d
        .http
        .post(d.url(&format!("/karajo/api/monitor/ping/backup/3?token={TOKEN}")))
        .body("pg_dump: error\n")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let m = monitor(&d, "backup_db").await;
    assert_eq!(m["status"], "down");
    assert_eq!(m["down_reason"], "fail");
    assert_eq!(m["exit_code"], 3);
    let log = std::fs::read_to_string(log_dir.join("backup_db.2.failed")).unwrap();
    assert!(log.contains("=== EXIT 3 via POST"), "{log}");
    assert!(
        log.contains("monitor: backup_db: pg_dump: error\n"),
        "{log}"
    );
    // The state is on disk before the answer.
    let state = std::fs::read_to_string(
        dir.base()
            .join("var/lib/karajo/state/monitor/backup_db.json"),
    )
    .unwrap();
    assert!(state.contains("\"down\""), "{state}");
    d.stop().await;
}

#[tokio::test]
async fn bad_pings_are_refused_and_record_nothing() {
    let dir = TestDir::new(MONITORS);
    let d = TestDaemon::start(&dir).await;
    let status = |path: String| {
        let http = d.http.clone();
        let url = d.url(&path);
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    // An unknown path is 404 before auth; a wrong or missing token is 403.
    assert_eq!(status("/karajo/api/monitor/ping/nothing".into()).await, 404);
    assert_eq!(
        status("/karajo/api/monitor/ping/backup?token=wrong".into()).await,
        403
    );
    assert_eq!(status("/karajo/api/monitor/ping/backup".into()).await, 403);
    // Malformed rid, next_in and exit status: 400.
    assert_eq!(
        status(format!(
            "/karajo/api/monitor/ping/backup?token={TOKEN}&rid=a%20b"
        ))
        .await,
        400
    );
    assert_eq!(
        status(format!(
            "/karajo/api/monitor/ping/backup?token={TOKEN}&next_in=0"
        ))
        .await,
        400
    );
    assert_eq!(
        status(format!("/karajo/api/monitor/ping/backup/256?token={TOKEN}")).await,
        400
    );
    let m = monitor(&d, "backup_db").await;
    assert_eq!(m["status"], "new");
    assert_eq!(m["counter"], 0);
    assert!(
        dir.base()
            .join("var/log/karajo/monitor/backup_db")
            .read_dir()
            .unwrap()
            .next()
            .is_none()
    );
    // The token never appears in the monitor's JSON.
    assert!(!m.to_string().contains(TOKEN));
    d.stop().await;
}

#[tokio::test]
async fn a_missed_deadline_takes_a_monitor_down_without_polling() {
    let dir = TestDir::new(MONITORS);
    let d = TestDaemon::start(&dir).await;
    let ping = d
        .http
        .get(d.url("/karajo/api/monitor/ping/quick"))
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), 200);
    let due = std::time::Instant::now();
    let down = wait_for("the monitor to go down", || async {
        (monitor(&d, "quick").await["status"] == "down").then_some(())
    })
    .await;
    let _: () = down;
    // Period 1s, grace 0s: down one second after the ping, well within 2 s.
    assert!(
        due.elapsed() < Duration::from_secs(3),
        "{:?}",
        due.elapsed()
    );
    let events = std::fs::read_dir(dir.base().join("var/log/karajo/event")).unwrap();
    let mut text = String::new();
    for day in events {
        text.push_str(&std::fs::read_to_string(day.unwrap().path()).unwrap());
    }
    wait_for("the down event", || async {
        let mut text = String::new();
        for day in std::fs::read_dir(dir.base().join("var/log/karajo/event")).ok()? {
            text.push_str(&std::fs::read_to_string(day.ok()?.path()).ok()?);
        }
        text.contains("\"kind\":\"monitor.down\"").then_some(())
    })
    .await;
    d.stop().await;
}

#[tokio::test]
async fn pause_and_resume_are_signed_and_survive_a_restart() {
    let dir = TestDir::new(MONITORS);
    let d = TestDaemon::start(&dir).await;
    let form = |action: &'static str, extra: &'static str| {
        let body = format!(
            "_karajo_epoch={}&_karajo_nonce={}&id=backup_db{extra}",
            epoch_now(),
            nonce()
        );
        let sign = karajo::auth::sign_hmac_sha256(SECRET.as_bytes(), body.as_bytes());
        d.http
            .post(d.url(&format!("/karajo/api/monitor/{action}")))
            .header("X-Karajo-Sign", sign)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let unsigned = d
        .http
        .post(d.url("/karajo/api/monitor/pause"))
        .body("id=backup_db")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let paused = form("pause", "&until=resume").await.unwrap();
    assert_eq!(paused.status(), 200);
    let body: serde_json::Value = paused.json().await.unwrap();
    assert_eq!(body["data"]["status"], "paused");
    assert_eq!(body["data"]["paused_until"], "resume");
    // A ping to a monitor paused until resume is ignored.
    let ignored: serde_json::Value = d
        .http
        .get(d.url(&format!("/karajo/api/monitor/ping/backup?token={TOKEN}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ignored["data"]["ignored"], true);
    d.stop().await;

    let d = TestDaemon::start(&dir).await;
    assert_eq!(monitor(&d, "backup_db").await["status"], "paused");
    let resumed = {
        let body = format!(
            "_karajo_epoch={}&_karajo_nonce={}&id=backup_db",
            epoch_now(),
            nonce()
        );
        let sign = karajo::auth::sign_hmac_sha256(SECRET.as_bytes(), body.as_bytes());
        d.http
            .post(d.url("/karajo/api/monitor/resume"))
            .header("X-Karajo-Sign", sign)
            .body(body)
            .send()
            .await
            .unwrap()
    };
    assert_eq!(resumed.status(), 200);
    assert_eq!(monitor(&d, "backup_db").await["status"], "new");
    d.stop().await;
}

#[tokio::test]
async fn the_environment_lists_monitors_by_name() {
    let dir = TestDir::new(MONITORS);
    let d = TestDaemon::start(&dir).await;
    let env: serde_json::Value = d
        .http
        .get(d.url("/karajo/api/environment"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(env["data"]["monitors"]["Backup DB"]["id"], "backup_db");
    assert_eq!(env["data"]["monitors"]["quick"]["period"], 1_000_000_000u64);
    d.stop().await;
}

#[tokio::test]
async fn a_down_monitor_is_mailed_through_a_real_smtp_server_and_its_recovery_too() {
    use crate::notify::{Mode, Smtp};
    let smtp = Smtp::start(0, Mode::Plain, false, None).await;
    let dir = TestDir::new(&format!(
        r#"
[monitor "nightly"]
period = 1h
auth_kind = none
notif_on_down = mail
notif_on_up = mail

[notif "mail"]
kind = email
smtp_server = smtp://127.0.0.1:{port}
from = karajo@example.org
to = ops@example.org
"#,
        port = smtp.port
    ));
    let d = TestDaemon::start(&dir).await;
    let fail = d
        .http
        .post(d.url("/karajo/api/monitor/ping/nightly/fail"))
        .body("disk full\n")
        .send()
        .await
        .unwrap();
    assert_eq!(fail.status(), 200);
    let mail = &smtp.wait_messages(1).await[0];
    let subject = mail["headers"]["Subject"].as_str().unwrap();
    assert!(subject.starts_with("monitor: nightly: DOWN"), "{subject}");
    let body = mail["body"].as_str().unwrap();
    assert!(body.contains("monitor: nightly: disk full"), "{body}");
    let up = d
        .http
        .get(d.url("/karajo/api/monitor/ping/nightly"))
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 200);
    let mails = smtp.wait_messages(2).await;
    let subject = mails[1]["headers"]["Subject"].as_str().unwrap();
    assert!(subject.starts_with("monitor: nightly: UP"), "{subject}");
    d.stop().await;
}

#[tokio::test]
async fn events_are_posted_with_a_monitor_token_or_a_signature_and_read_back() {
    let dir = TestDir::new(MONITORS);
    let hash = bcrypt::hash("pw", 4).unwrap();
    dir.write(
        "etc/karajo/user.conf",
        &format!("[user \"admin\"]\npassword = {hash}\n"),
    );
    let d = TestDaemon::start(&dir).await;
    // With the monitor's token, for the service that is the monitor's id.
    let posted = d
        .http
        .post(d.url("/karajo/api/event"))
        .header("X-Karajo-Token", TOKEN)
        .body(r#"{"service":"backup_db","level":35,"message":"disk 91% full"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let posted: serde_json::Value = posted.json().await.unwrap();
    assert_eq!(posted["data"]["level"], "warning");
    assert_eq!(posted["data"]["severity"], 35);
    assert_eq!(posted["data"]["source"], "api");
    // A wrong token, an unknown level: refused.
    let wrong = d
        .http
        .post(d.url("/karajo/api/event"))
        .header("X-Karajo-Token", "nope")
        .body(r#"{"service":"backup_db","level":"info","message":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        wrong.status(),
        403,
        "a wrong token is forbidden, as for pings"
    );
    let body = format!(
        r#"{{"service":"anything","level":"loud","message":"x","_karajo_epoch":{}}}"#,
        epoch_now()
    );
    let sign = karajo::auth::sign_hmac_sha256(SECRET.as_bytes(), body.as_bytes());
    let bad_level = d
        .http
        .post(d.url("/karajo/api/event"))
        .header("X-Karajo-Sign", sign)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_level.status(), 400);
    let text = bad_level.text().await.unwrap();
    assert!(
        text.contains("ERR_EVENT_INVALID") && text.contains("level"),
        "{text}"
    );
    // Reading needs read access when users exist.
    let anonymous = d.http.get(d.url("/karajo/api/event")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let (query, sign) = signed_query("service=backup_db&level=warning");
    let page: serde_json::Value = d
        .http
        .get(d.url(&format!("/karajo/api/event?{query}")))
        .header("X-Karajo-Sign", sign)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = page["data"]["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{page}");
    assert_eq!(events[0]["message"], "disk 91% full");
    d.stop().await;
}

#[tokio::test]
async fn metrics_show_each_monitor_status() {
    let dir = TestDir::new(MONITORS);
    let d = TestDaemon::start(&dir).await;
    let url = d.url(&format!("/karajo/api/monitor/ping/backup?token={TOKEN}"));
    assert_eq!(d.http.get(url).send().await.unwrap().status(), 200);
    let text = d
        .http
        .get(d.url("/karajo/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("karajo_monitor_status{monitor=\"backup_db\",status=\"up\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("karajo_monitor_status{monitor=\"backup_db\",status=\"new\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("karajo_monitor_status{monitor=\"quick\",status=\"new\"} 1"),
        "{text}"
    );
    for line in [
        "karajo_monitor_checkins_total{monitor=\"backup_db\",kind=\"success\"} 1",
        "karajo_monitor_transitions_total{monitor=\"backup_db\",to=\"up\"} 1",
        "karajo_events_dropped_total 0",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    d.stop().await;
}

#[tokio::test]
async fn the_dashboard_list_shows_monitors_beside_jobs_in_words() {
    let dir = TestDir::new(MONITORS);
    let d = TestDaemon::start(&dir).await;
    let url = d.url(&format!("/karajo/api/monitor/ping/backup/1?token={TOKEN}"));
    assert_eq!(d.http.get(url).send().await.unwrap().status(), 200);
    let page = d
        .http
        .get(d.url("/karajo/app/?view=list"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"<tr data-key="monitor/backup_db" data-group="failed">"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<span class="badge st-down">down</span>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<tr data-key="monitor/quick" data-group="new">"#),
        "{page}"
    );
    d.stop().await;
}

#[tokio::test]
async fn a_check_in_log_is_read_through_the_api_like_a_job_log() {
    use base64::Engine as _;
    let dir = TestDir::new(MONITORS);
    let d = TestDaemon::start(&dir).await;
    let url = d.url(&format!("/karajo/api/monitor/ping/backup?token={TOKEN}"));
    assert_eq!(
        d.http
            .post(url)
            .body("all good\n")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let log: serde_json::Value = d
        .http
        .get(d.url("/karajo/api/monitor/log?id=backup_db&counter=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log["data"]["name"], "backup_db.1.success", "{log}");
    let content = base64::engine::general_purpose::STANDARD
        .decode(log["data"]["content"].as_str().unwrap())
        .unwrap();
    let content = String::from_utf8(content).unwrap();
    assert!(
        content.contains("monitor: backup_db: all good\n"),
        "{content}"
    );
    let missing = d
        .http
        .get(d.url("/karajo/api/monitor/log?id=nothing&counter=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    d.stop().await;
}

#[tokio::test]
async fn the_typed_client_reads_pauses_and_resumes_a_monitor() {
    use karajo::client::{Client, ClientOptions};
    let dir = TestDir::new(MONITORS);
    let d = TestDaemon::start(&dir).await;
    let client = Client::new(ClientOptions {
        server_url: d.base_url.clone(),
        secret: SECRET.to_string(),
        timeout: Some(Duration::from_secs(10)),
        headers: Vec::new(),
        allow_insecure: false,
    })
    .unwrap();
    assert_eq!(client.monitor("backup_db").await.unwrap().status, "new");
    let paused = client
        .monitor_pause("backup_db", Some("2030-01-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(paused.status, "paused");
    assert_eq!(paused.paused_until, "2030-01-01T00:00:00Z");
    let env = client.env().await.unwrap();
    assert_eq!(env.monitor("backup_db").unwrap().status, "paused");
    assert_eq!(
        client.monitor_resume("backup_db").await.unwrap().status,
        "new"
    );
    assert!(client.monitor("nothing").await.is_err());
    d.stop().await;
}

#[tokio::test]
async fn the_links_in_monitor_notifications_lead_somewhere() {
    let dir = TestDir::new(MONITORS);
    let d = TestDaemon::start(&dir).await;
    let url = d.url(&format!(
        "/karajo/api/monitor/ping/backup/fail?token={TOKEN}"
    ));
    assert_eq!(
        d.http
            .post(url)
            .body("it broke\n")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // The log link: the check-in's log page.
    let log = d
        .http
        .get(d.url("/karajo/app/monitor/backup_db/log/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(log.status(), 200);
    assert!(
        log.text()
            .await
            .unwrap()
            .contains("monitor: backup_db: it broke\n")
    );
    // The page link: the monitor's page.
    let page = d
        .http
        .get(d.url("/karajo/app/monitor/backup_db"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains(r#"<span class="badge st-down" id="monitor-status">down</span>"#),
        "{page}"
    );
    let missing = d
        .http
        .get(d.url("/karajo/app/monitor/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    d.stop().await;
}
