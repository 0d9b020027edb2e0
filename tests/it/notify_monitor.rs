//! Monitor notifications and the `pushover` kind, delivered for real on 127.0.0.1:
//! down and up mails to the Python SMTP server (tests/smtp_server.py) with the log's
//! last 64 KiB, the monitor webhook document to an axum server, a monitor
//! notification spooled across a restart of the notifier, Pushover's message API
//! played by an axum server reached through `api_url` (the form fields, permanent
//! 4xx and retried 5xx answers, and the token and user key kept out of every log
//! line), and a watchTower-style target applied only under `allow_target`.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use jiff::Timestamp;
use karajo::config::{NotifConfig, NotifKind, PushoverNotif, SmtpSecurity};
use karajo::job::JobId;
use karajo::monitor::{DownReason, MonitorNotice, NoticeEvent, Outage, Status};
use karajo::notify::{MonitorLog, MonitorRecord, Notifier};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::helpers::*;
use crate::notify::{
    Bench, Mode, Smtp, email_notif, failed_to, free_port, next_hit, wait_stat, webhook_notif,
    webhook_server,
};

const TOKEN: &str = "azGDORePK8gMaC0QOYAMyEEuzJnyUi";
const USER: &str = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG";
const OTHER_USER: &str = "gznej3rKEVAvPUxu9vvNnqpmZpokzF";

/// `backup_db` went down (no check-in since 02:00:01Z), told to `notifs`.
fn down(notifs: &[&str], log: Option<MonitorLog>) -> MonitorRecord {
    MonitorRecord {
        id: JobId::from_name("Backup DB"),
        name: "Backup DB".to_string(),
        notice: MonitorNotice {
            event: NoticeEvent::Down,
            notifs: notifs.iter().map(|n| n.to_string()).collect(),
            previous_status: Status::Up,
            reason: Some(DownReason::Timeout),
            exit_code: None,
            summary: "DOWN (no check-in since 02:00:01Z)".to_string(),
            reminder: false,
        },
        at: Timestamp::now(),
        log,
        target: None,
    }
}

/// `backup_db` is back up after 1h5m, told to `notifs`.
fn up(notifs: &[&str], log: Option<MonitorLog>) -> MonitorRecord {
    let mut record = down(notifs, log);
    record.notice.event = NoticeEvent::Up;
    record.notice.previous_status = Status::Down(Outage {
        reason: DownReason::Timeout,
        exit_code: None,
        last_notice: record.at,
    });
    record.notice.reason = None;
    record.notice.summary = "UP after 1h5m".to_string();
    record
}

/// Writes a monitor log `backup_db.<counter>.<status>` in the bench's directory.
fn monitor_log(bench: &Bench, counter: u64, status: &str, text: &str) -> MonitorLog {
    let path = bench
        .dir
        .path()
        .join(format!("backup_db.{counter}.{status}"));
    std::fs::write(&path, text).expect("write log");
    MonitorLog { counter, path }
}

#[tokio::test]
async fn a_down_mail_has_the_monitor_subject_the_details_and_the_last_64_kib_of_the_log() {
    let smtp = Smtp::start(0, Mode::Plain, false, None).await;
    let bench = Bench::new();
    let notifier = bench.notifier(vec![email_notif(
        "ops",
        SmtpSecurity::Plain,
        smtp.port,
        "",
        false,
    )]);
    let log: String = (0..12_000)
        .map(|n| format!("check-in line {n}\n"))
        .collect();
    assert!(log.len() > 128 * 1024);
    let record = down(
        &["ops", "ops"],
        Some(monitor_log(&bench, 42, "failed", &log)),
    );
    let at = record.at;
    assert_eq!(notifier.submit_monitor(record).await, 1, "each notif once");
    assert_eq!(bench.spooled().len(), 1, "spooled before submit returns");

    let mail = &smtp.wait_messages(1).await[0];
    assert_eq!(
        mail["headers"]["Subject"],
        "monitor: backup_db: DOWN (no check-in since 02:00:01Z)"
    );
    assert_eq!(
        mail["rcpt_tos"],
        serde_json::json!(["ops@example.org", "dev@example.org"])
    );
    let body = mail["body"].as_str().expect("body").replace("\r\n", "\n");
    for line in [
        "monitor: backup_db: DOWN (no check-in since 02:00:01Z)\n",
        "Monitor:         Backup DB (backup_db)\n",
        "Event:           down\n",
        "Previous status: up\n",
        "Reason:          timeout\n",
        &format!("Time:            {at}\n"),
        "Monitor page:    http://karajo.test:31937/karajo/app/monitor/backup_db\n",
        "Log:             http://karajo.test:31937/karajo/app/monitor/backup_db/log/42\n",
        &format!(
            "--- the log backup_db.42 has {} bytes; below are its last lines (at most 64 KiB) ---\ncheck-in line ",
            log.len()
        ),
    ] {
        assert!(body.contains(line), "{line:?} not in {}", &body[..700]);
    }
    assert!(body.trim_end().ends_with("\ncheck-in line 11999"));
    assert!(!body.contains("\ncheck-in line 0\n"));
    let log_part = &body[body.find("\n--- the log").expect("log part")..];
    assert!(
        log_part.len() <= 64 * 1024 + 120,
        "at most 64 KiB of log: {}",
        log_part.len()
    );
    wait_stat(&notifier, "sent = 1", |s| s.sent == 1 && s.pending == 0).await;
    assert!(bench.spooled().is_empty());

    // The recovery, without a log.
    notifier.submit_monitor(up(&["ops"], None)).await;
    let mails = smtp.wait_messages(2).await;
    assert_eq!(
        mails[1]["headers"]["Subject"],
        "monitor: backup_db: UP after 1h5m"
    );
    let body = mails[1]["body"].as_str().expect("body");
    assert!(body.contains("Previous status: down"), "{body}");
    assert!(!body.contains("--- the log"), "{body}");
    notifier.shutdown().await;
}

#[tokio::test]
async fn a_monitor_webhook_has_kind_event_previous_status_reason_and_log_url() {
    let (url, mut hits) = webhook_server(Vec::new()).await;
    let bench = Bench::new();
    let notifier = bench.notifier(vec![webhook_notif("hook", url, Some("hook-secret"))]);
    let log = monitor_log(&bench, 7, "failed", "=== EXIT 3\ndump failed\n");
    let mut record = down(&["hook", "nope"], Some(log));
    record.notice.reason = Some(DownReason::Fail);
    record.notice.exit_code = Some(3);
    record.notice.summary = "DOWN (exit status 3)".to_string();
    assert_eq!(
        notifier.submit_monitor(record).await,
        1,
        "an unknown notif is skipped"
    );
    let hit = next_hit(&mut hits).await;
    assert_eq!(
        hit.headers["x-karajo-sign"].to_str().expect("ascii"),
        karajo::auth::sign_hmac_sha256(b"hook-secret", &hit.body)
    );
    let doc: Value = serde_json::from_slice(&hit.body).expect("json");
    assert_eq!(doc["kind"], "monitor");
    assert_eq!(doc["event"], "down");
    assert_eq!(doc["status"], "down");
    assert_eq!(doc["previous_status"], "up");
    assert_eq!(doc["reason"], "fail");
    assert_eq!(doc["exit_code"], 3);
    assert_eq!(doc["id"], "backup_db");
    assert_eq!(doc["name"], "Backup DB");
    assert_eq!(doc["notif"], "hook");
    assert_eq!(doc["summary"], "DOWN (exit status 3)");
    assert_eq!(doc["counter"], 7);
    assert_eq!(
        doc["log_url"],
        "http://karajo.test:31937/karajo/app/monitor/backup_db/log/7"
    );
    assert_eq!(doc["log_tail"], "=== EXIT 3\ndump failed\n");
    assert_eq!(doc["log_truncated"], false);
    assert!((doc["_karajo_epoch"].as_i64().expect("epoch") - epoch_now()).abs() < 60);
    assert!(
        doc["time"]
            .as_str()
            .is_some_and(|t| t.parse::<Timestamp>().is_ok())
    );
    assert!(doc.get("job_id").is_none(), "{doc}");

    // A late notice: no reason.
    let mut late = down(&["hook"], None);
    late.notice.event = NoticeEvent::Late;
    late.notice.reason = None;
    late.notice.summary = "LATE (no check-in since 02:00:01Z)".to_string();
    notifier.submit_monitor(late).await;
    let doc: Value = serde_json::from_slice(&next_hit(&mut hits).await.body).expect("json");
    assert_eq!(doc["event"], "late");
    assert!(doc.get("reason").is_none(), "{doc}");
    assert_eq!(
        doc["log_url"],
        "http://karajo.test:31937/karajo/app/monitor/backup_db"
    );
    notifier.shutdown().await;
}

#[tokio::test]
async fn a_spooled_monitor_notification_is_delivered_after_a_restart() {
    let port = free_port();
    let bench = Bench::new();
    let notifs = vec![email_notif("ops", SmtpSecurity::Plain, port, "", false)];
    let first = bench.notifier(notifs.clone());
    let log = monitor_log(&bench, 3, "failed", "the failed check-in's body\n");
    first
        .submit_monitor(down(&["ops"], Some(log.clone())))
        .await;
    wait_stat(&first, "a failed attempt", |s| s.retried >= 1).await;
    first.shutdown().await;
    assert_eq!(bench.spooled().len(), 1, "kept in the spool over the stop");
    // Retention may delete the log meanwhile: the spool holds its tail already.
    std::fs::remove_file(&log.path).expect("remove log");

    let smtp = Smtp::start(port, Mode::Plain, false, None).await;
    let second = bench.notifier(notifs);
    let mail = &smtp.wait_messages(1).await[0];
    assert_eq!(
        mail["headers"]["Subject"],
        "monitor: backup_db: DOWN (no check-in since 02:00:01Z)"
    );
    let body = mail["body"].as_str().expect("body");
    assert!(body.contains("the failed check-in's body"), "{body}");
    wait_stat(&second, "sent = 1", |s| s.sent == 1 && s.queued == 1).await;
    assert!(bench.spooled().is_empty());
    second.shutdown().await;
}

/// One request the Pushover stand-in received: its form fields in order.
type Form = Vec<(String, String)>;

/// An axum server on 127.0.0.1 standing in for Pushover: it records each
/// `POST /1/messages.json` and answers the given statuses and bodies in turn, then
/// `200 {"status":1}`. Returns the base URL for `api_url`.
async fn pushover_server(
    answers: Vec<(StatusCode, String)>,
) -> (String, mpsc::UnboundedReceiver<Form>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let answers = Arc::new(tokio::sync::Mutex::new(answers.into_iter()));
    let app = axum::Router::new().route(
        "/1/messages.json",
        axum::routing::post(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            let answers = answers.clone();
            async move {
                let form: Form = serde_urlencoded::from_bytes(&body).expect("a form body");
                let _ = tx.send(form);
                let (status, body) = answers.lock().await.next().unwrap_or((
                    StatusCode::OK,
                    r#"{"status":1,"request":"5042853c-402d-4a18-abcb-168734a801de"}"#.into(),
                ));
                (status, [("content-type", "application/json")], body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, rx)
}

async fn next_form(rx: &mut mpsc::UnboundedReceiver<Form>) -> Form {
    tokio::time::timeout(TIMEOUT, rx.recv())
        .await
        .expect("a Pushover request in time")
        .expect("server alive")
}

fn field<'a>(form: &'a Form, key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn pushover_notif(
    name: &str,
    api_url: &str,
    priority: Option<i8>,
    sound: Option<&str>,
) -> NotifConfig {
    NotifConfig {
        name: name.to_string(),
        file: PathBuf::from("karajo.conf"),
        line: 1,
        kind: NotifKind::Pushover(PushoverNotif {
            token: TOKEN.to_string(),
            user: USER.to_string(),
            priority,
            sound: sound.map(str::to_string),
            api_url: api_url.to_string(),
        }),
        allow_target: false,
    }
}

/// Everything written through `tracing` while it is the default subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Self;

    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

/// Captures every log line of every level on this thread (the test's runtime is
/// single-threaded, so the notifier's task logs here too).
fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (captured, guard)
}

#[tokio::test]
async fn pushover_gets_the_form_fields_and_its_keys_stay_out_of_every_log() {
    let (captured, _guard) = capture_logs();
    let (base, mut forms) = pushover_server(Vec::new()).await;
    let bench = Bench::new();
    let notifier = bench.notifier(vec![
        pushover_notif("phone", &format!("{base}/"), Some(1), Some("siren")),
        pushover_notif("pager", &base, Some(2), None),
    ]);
    let log: String = (0..400).map(|n| format!("ping body line {n}\n")).collect();
    let record = down(
        &["phone", "pager"],
        Some(monitor_log(&bench, 9, "failed", &log)),
    );
    let at = record.at;
    assert_eq!(notifier.submit_monitor(record).await, 2);

    // One request per notif. Delivery is at least once: a request the stand-in took
    // but answered after the client's timeout (seen once on a loaded machine) is sent
    // again, so a repeat of the same notif is skipped here.
    let mut got: Vec<Form> = Vec::new();
    while got.len() < 2 {
        let form = next_form(&mut forms).await;
        if !got
            .iter()
            .any(|f| field(f, "priority") == field(&form, "priority"))
        {
            got.push(form);
        }
    }
    got.sort_by_key(|f| field(f, "priority").map(str::to_string));
    let (phone, pager) = (&got[0], &got[1]);
    let keys: Vec<&str> = phone.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "token",
            "user",
            "title",
            "message",
            "priority",
            "sound",
            "url",
            "timestamp"
        ]
    );
    assert_eq!(field(phone, "token"), Some(TOKEN));
    assert_eq!(field(phone, "user"), Some(USER));
    assert_eq!(
        field(phone, "title"),
        Some("monitor: backup_db: DOWN (no check-in since 02:00:01Z)")
    );
    let message = field(phone, "message").expect("message");
    assert!(
        message.starts_with(&format!(
            "Backup DB (backup_db): down, was up\nreason: timeout\nat {at}\n\n…"
        )),
        "{message}"
    );
    assert!(message.ends_with("ping body line 399"), "{message}");
    assert!(
        message.chars().count() <= 1024,
        "{}",
        message.chars().count()
    );
    assert_eq!(field(phone, "priority"), Some("1"));
    assert_eq!(field(phone, "sound"), Some("siren"));
    assert_eq!(
        field(phone, "url"),
        Some("http://karajo.test:31937/karajo/app/monitor/backup_db/log/9")
    );
    assert_eq!(
        field(phone, "timestamp"),
        Some(&*at.as_second().to_string())
    );
    // Emergency priority needs retry and expire; no sound unless set.
    assert_eq!(field(pager, "priority"), Some("2"));
    assert_eq!(field(pager, "retry"), Some("60"));
    assert_eq!(field(pager, "expire"), Some("3600"));
    assert_eq!(field(pager, "sound"), None);
    wait_stat(&notifier, "sent = 2", |s| s.sent == 2).await;

    // A run goes through pushover too.
    let names = vec!["phone".to_string()];
    notifier
        .submit(bench.run("step 1\nstep 2 failed\n"), failed_to(&names))
        .await;
    let form = next_form(&mut forms).await;
    assert_eq!(field(&form, "title"), Some("job: hello: #3: failed"));
    assert_eq!(
        field(&form, "message"),
        Some("Hello (hello): run #3 failed after 2s, started by webhook\n\nstep 1\nstep 2 failed")
    );
    assert_eq!(
        field(&form, "url"),
        Some("http://karajo.test:31937/karajo/job_exec/log?id=hello&counter=3")
    );
    wait_stat(&notifier, "sent = 3", |s| s.sent == 3).await;
    notifier.shutdown().await;

    let logs = captured.text();
    assert!(
        logs.contains("notification sent"),
        "the capture works: {logs}"
    );
    assert!(
        !logs.contains(TOKEN),
        "the token leaked into the logs:\n{logs}"
    );
    assert!(
        !logs.contains(USER),
        "the user key leaked into the logs:\n{logs}"
    );
}

#[tokio::test]
async fn pushover_refusals_are_given_up_and_server_errors_retried_without_leaking_keys() {
    let (captured, _guard) = capture_logs();
    // A 4xx that repeats the token, the way an echoing proxy might.
    let refusal = format!(
        r#"{{"token":"invalid","errors":["application token is invalid: {TOKEN}"],"status":0,"request":"r1"}}"#
    );
    let (base, mut forms) = pushover_server(vec![
        (StatusCode::BAD_REQUEST, refusal),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("oops for {USER}"),
        ),
    ])
    .await;
    let bench = Bench::new();
    let notifier = bench.notifier(vec![pushover_notif("phone", &base, None, None)]);

    notifier.submit_monitor(down(&["phone"], None)).await;
    let form = next_form(&mut forms).await;
    assert_eq!(field(&form, "priority"), None, "Pushover's default");
    wait_stat(&notifier, "given up", |s| s.failed == 1 && s.pending == 0).await;
    assert_eq!(
        notifier.stats().retried,
        0,
        "4xx with status 0 is permanent"
    );
    let failed: Vec<_> = std::fs::read_dir(bench.spool().join("failed"))
        .expect("failed/")
        .collect();
    assert_eq!(failed.len(), 1);

    notifier.submit_monitor(up(&["phone"], None)).await;
    next_form(&mut forms).await;
    let form = next_form(&mut forms).await;
    assert_eq!(
        field(&form, "title"),
        Some("monitor: backup_db: UP after 1h5m")
    );
    wait_stat(&notifier, "sent after a retry", |s| {
        s.sent == 1 && s.retried == 1
    })
    .await;
    assert!(bench.spooled().is_empty());

    // A network error is retried too.
    let port = free_port();
    let other = Bench::new();
    let down_server = other.notifier(vec![pushover_notif(
        "phone",
        &format!("http://127.0.0.1:{port}"),
        None,
        None,
    )]);
    down_server.submit_monitor(down(&["phone"], None)).await;
    wait_stat(&down_server, "retried", |s| s.retried >= 1 && s.failed == 0).await;
    down_server.shutdown().await;
    notifier.shutdown().await;

    let logs = captured.text();
    assert!(
        logs.contains("given up: retrying cannot help")
            && logs.contains("Pushover answered 400: application token is invalid: <redacted>"),
        "{logs}"
    );
    assert!(
        logs.contains("Pushover answered 500: oops for <redacted>"),
        "{logs}"
    );
    assert!(
        !logs.contains(TOKEN),
        "the token leaked into the logs:\n{logs}"
    );
    assert!(
        !logs.contains(USER),
        "the user key leaked into the logs:\n{logs}"
    );
}

#[tokio::test]
async fn a_target_replaces_the_recipient_only_where_allow_target_says_so() {
    let smtp = Smtp::start(0, Mode::Plain, false, None).await;
    let (base, mut forms) = pushover_server(Vec::new()).await;
    let (hook_url, mut hits) = webhook_server(Vec::new()).await;
    let bench = Bench::new();
    let mut open_mail = email_notif("open", SmtpSecurity::Plain, smtp.port, "", false);
    open_mail.allow_target = true;
    let closed_mail = email_notif("closed", SmtpSecurity::Plain, smtp.port, "", false);
    let mut open_phone = pushover_notif("phone", &base, None, None);
    open_phone.allow_target = true;
    let mut hook = webhook_notif("hook", hook_url, None);
    hook.allow_target = true;
    let notifier = bench.notifier(vec![open_mail, closed_mail, open_phone.clone(), hook]);

    let mut record = down(&["open", "closed", "hook"], None);
    record.target = Some("oncall@example.org".to_string());
    assert_eq!(notifier.submit_monitor(record).await, 3);
    let mails = smtp.wait_messages(2).await;
    let mut recipients: Vec<Value> = mails.iter().map(|m| m["rcpt_tos"].clone()).collect();
    recipients.sort_by_key(|r| r.to_string());
    assert_eq!(
        recipients,
        [
            serde_json::json!(["oncall@example.org"]),
            serde_json::json!(["ops@example.org", "dev@example.org"]),
        ]
    );
    // The webhook goes to its configured url all the same.
    let doc: Value = serde_json::from_slice(&next_hit(&mut hits).await.body).expect("json");
    assert_eq!(doc["notif"], "hook");

    // Pushover: a user key replaces `user`; anything else is ignored.
    let mut record = down(&["phone"], None);
    record.target = Some(OTHER_USER.to_string());
    notifier.submit_monitor(record).await;
    assert_eq!(
        field(&next_form(&mut forms).await, "user"),
        Some(OTHER_USER)
    );
    let mut record = down(&["phone"], None);
    record.target = Some("ops@example.org".to_string());
    notifier.submit_monitor(record).await;
    assert_eq!(field(&next_form(&mut forms).await, "user"), Some(USER));

    // A reload that withdraws allow_target also withdraws spooled targets.
    open_phone.allow_target = false;
    notifier.reload(vec![open_phone], "http://karajo.test:31937");
    let mut record = down(&["phone"], None);
    record.target = Some(OTHER_USER.to_string());
    notifier.submit_monitor(record).await;
    assert_eq!(field(&next_form(&mut forms).await, "user"), Some(USER));
    notifier.shutdown().await;
}

/// A notifier whose spool holds a notification a previous version wrote: it is
/// read and sent as it was.
#[tokio::test]
async fn a_run_spooled_by_the_previous_version_is_sent_unchanged() {
    let (url, mut hits) = webhook_server(Vec::new()).await;
    let bench = Bench::new();
    std::fs::create_dir_all(bench.spool()).expect("spool dir");
    let old = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/notify/run.spool.json"
    ))
    .expect("fixture")
    .replace("\"notif\": \"ops\"", "\"notif\": \"hook\"");
    std::fs::write(bench.spool().join("1795316402500-0badf00d.json"), old).expect("write");
    let notifier: Notifier = bench.notifier(vec![webhook_notif("hook", url, None)]);
    let hit = next_hit(&mut hits).await;
    let body = String::from_utf8(hit.body).expect("utf-8");
    let expected = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/notify/run.webhook.json"
    ))
    .expect("fixture")
    .replace("\"notif\":\"ops\"", "\"notif\":\"hook\"");
    // Byte for byte the document of the previous version, but for the send time.
    let after_epoch = |text: &str| text[text.find(',').expect("a comma")..].to_string();
    assert_eq!(after_epoch(&body), after_epoch(&expected));
    assert!(body.starts_with("{\"_karajo_epoch\":"), "{body}");
    wait_stat(&notifier, "sent", |s| s.sent == 1 && s.queued == 1).await;
    notifier.shutdown().await;
}
