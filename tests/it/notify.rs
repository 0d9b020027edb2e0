//! Notifications delivered for real on 127.0.0.1: mail to a Python SMTP server
//! (tests/smtp_server.py, aiosmtpd) in plain, STARTTLS and implicit TLS modes with
//! a self-signed certificate made here by rcgen, with and without AUTH PLAIN; a
//! server that is down and comes back; the spool across a restart; signed webhooks
//! to an axum server; and a real daemon whose failing job sends a mail.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use jiff::Timestamp;
use karajo::config::{EmailNotif, NotifConfig, NotifKind, SmtpSecurity, SmtpServer, WebhookNotif};
use karajo::job::{JobId, JobKind, RunStatus, Trigger};
use karajo::notify::{Notifier, NotifierOptions, NotifyOn, RetryPolicy, RunRecord};
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, mpsc};

use crate::helpers::*;

/// The Python with aiosmtpd: Debian's, when pyenv or another one shadows it.
pub(crate) fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost, as PEM files.
pub(crate) struct Cert {
    cert: PathBuf,
    key: PathBuf,
}

impl Cert {
    fn new(dir: &Path) -> Self {
        let made = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .expect("certificate");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, made.cert.pem()).expect("write cert");
        std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key");
        Self { cert, key }
    }
}

/// tests/smtp_server.py running as a child process.
pub(crate) struct Smtp {
    pub(crate) port: u16,
    out: TempDir,
    _child: Child,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Plain,
    StartTls,
    Tls,
}

impl Smtp {
    pub(crate) async fn start(port: u16, mode: Mode, auth: bool, cert: Option<&Cert>) -> Self {
        let out = tempfile::tempdir().expect("tempdir");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_server.py");
        let mut cmd = Command::new(python());
        cmd.arg(script)
            .arg("--out")
            .arg(out.path())
            .arg("--port")
            .arg(port.to_string())
            .arg("--mode")
            .arg(match mode {
                Mode::Plain => "plain",
                Mode::StartTls => "starttls",
                Mode::Tls => "tls",
            });
        if let Some(cert) = cert {
            cmd.arg("--cert")
                .arg(&cert.cert)
                .arg("--key")
                .arg(&cert.key);
        }
        if auth {
            cmd.arg("--auth");
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start tests/smtp_server.py (needs python3-aiosmtpd)");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(TIMEOUT, lines.next_line())
            .await
            .expect("SMTP server ready in time")
            .expect("read stdout")
            .expect("the SMTP server printed READY (is python3-aiosmtpd installed?)");
        let port = line
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        Self {
            port,
            out,
            _child: child,
        }
    }

    /// Every message received so far, in order.
    pub(crate) fn messages(&self) -> Vec<Value> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(self.out.path())
            .expect("read out dir")
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let n = name.strip_suffix(".json")?.parse().ok()?;
                Some((n, e.path()))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, p)| serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json"))
            .collect()
    }

    pub(crate) async fn wait_messages(&self, n: usize) -> Vec<Value> {
        wait_for(&format!("{n} mail(s)"), || async {
            let m = self.messages();
            (m.len() >= n).then_some(m)
        })
        .await
    }
}

/// A port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

pub(crate) fn email_notif(
    name: &str,
    security: SmtpSecurity,
    port: u16,
    user: &str,
    insecure: bool,
) -> NotifConfig {
    NotifConfig {
        name: name.to_string(),
        file: PathBuf::from("karajo.conf"),
        line: 1,
        kind: NotifKind::Email(EmailNotif {
            server: SmtpServer {
                security,
                host: "127.0.0.1".to_string(),
                port,
            },
            user: user.to_string(),
            password: if user.is_empty() {
                String::new()
            } else {
                "pa55 word".to_string()
            },
            insecure,
            from: "Karajo <karajo@example.org>".to_string(),
            to: vec!["ops@example.org".to_string(), "dev@example.org".to_string()],
        }),
        allow_target: false,
    }
}

pub(crate) fn webhook_notif(name: &str, url: String, secret: Option<&str>) -> NotifConfig {
    NotifConfig {
        name: name.to_string(),
        file: PathBuf::from("karajo.conf"),
        line: 1,
        kind: NotifKind::Webhook(WebhookNotif {
            url,
            secret: secret.map(str::to_string),
        }),
        allow_target: false,
    }
}

/// A notifier on a temporary spool with fast retries.
pub(crate) struct Bench {
    pub(crate) dir: TempDir,
}

impl Bench {
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub(crate) fn spool(&self) -> PathBuf {
        self.dir.path().join("notify")
    }

    pub(crate) fn notifier(&self, notifs: Vec<NotifConfig>) -> Notifier {
        let mut opts = NotifierOptions::new(self.spool(), notifs, "http://karajo.test:31937");
        opts.retry = RetryPolicy {
            first: Duration::from_millis(100),
            max: Duration::from_millis(400),
            give_up_after: Duration::from_secs(3600),
        };
        opts.smtp_timeout = Duration::from_secs(5);
        Notifier::start(opts)
    }

    /// A failed run of job `hello` #3 whose log is `log`.
    pub(crate) fn run(&self, log: &str) -> RunRecord {
        let path = self.dir.path().join("hello.3.failed");
        std::fs::write(&path, log).expect("write log");
        let ended = Timestamp::now();
        RunRecord {
            kind: JobKind::Exec,
            id: JobId::from_raw("hello"),
            name: "Hello".to_string(),
            counter: 3,
            status: RunStatus::Failed,
            trigger: Trigger::Webhook,
            started: ended - jiff::SignedDuration::from_secs(2),
            ended,
            log_path: path,
            previous: None,
        }
    }

    pub(crate) fn spooled(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.spool())
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

pub(crate) fn failed_to(names: &[String]) -> NotifyOn<'_> {
    NotifyOn {
        failed: names,
        ..NotifyOn::default()
    }
}

pub(crate) async fn wait_stat(
    notifier: &Notifier,
    what: &str,
    check: impl Fn(karajo::notify::StatsSnapshot) -> bool,
) {
    wait_for(what, || async { check(notifier.stats()).then_some(()) }).await;
}

#[tokio::test]
async fn a_mail_has_the_original_headers_and_the_log_as_body() {
    let smtp = Smtp::start(0, Mode::Plain, false, None).await;
    let bench = Bench::new();
    let notifier = bench.notifier(vec![email_notif(
        "ops",
        SmtpSecurity::Plain,
        smtp.port,
        "",
        false,
    )]);
    let names = vec!["ops".to_string()];
    let log = "2026-01-01 00:00:00 UTC job: hello: === BEGIN\nÜnïcode = ok, a long line "
        .to_string()
        + &"x".repeat(200)
        + "\n";
    let queued = notifier.submit(bench.run(&log), failed_to(&names)).await;
    assert_eq!(queued, 1);
    assert_eq!(bench.spooled().len(), 1, "spooled before submit returns");

    let mail = &smtp.wait_messages(1).await[0];
    let headers = &mail["headers"];
    assert_eq!(headers["Subject"], "job: hello: #3: failed");
    assert_eq!(headers["From"], "Karajo <karajo@example.org>");
    assert_eq!(headers["To"], "ops@example.org, dev@example.org");
    assert_eq!(headers["MIME-Version"], "1.0");
    assert_eq!(headers["Content-Type"], "text/plain; charset=\"utf-8\"");
    assert_eq!(headers["Content-Transfer-Encoding"], "quoted-printable");
    assert!(
        headers["Date"]
            .as_str()
            .is_some_and(|d| d.ends_with("+0000")),
        "{headers}"
    );
    let id = headers["Message-ID"].as_str().expect("Message-ID");
    assert!(
        id.starts_with('<') && id.contains('.') && id.contains('@'),
        "{id}"
    );
    assert_eq!(mail["mail_from"], "karajo@example.org");
    assert_eq!(
        mail["rcpt_tos"],
        serde_json::json!(["ops@example.org", "dev@example.org"])
    );
    assert_eq!(mail["auth"], Value::Null, "no AUTH without credentials");
    let raw = mail["data"].as_str().expect("raw message");
    assert!(
        raw.contains("\r\nContent-Type: text/plain; charset=utf-8\r\n"),
        "{raw}"
    );
    assert!(
        raw.ends_with("xxxx\r\n\r\n"),
        "the log and one CRLF: {raw:?}"
    );
    assert_eq!(
        mail["body"].as_str().map(|b| b.replace("\r\n", "\n")),
        Some(log + "\n")
    );

    wait_stat(&notifier, "sent = 1", |s| s.sent == 1 && s.pending == 0).await;
    assert!(
        bench.spooled().is_empty(),
        "delivered notifications leave the spool"
    );
    let stats = notifier.stats();
    assert_eq!((stats.queued, stats.retried, stats.failed), (1, 0, 0));
    notifier.shutdown().await;
}

#[tokio::test]
async fn a_long_log_is_cut_to_its_end_with_a_link_to_the_whole_log() {
    let smtp = Smtp::start(0, Mode::Plain, false, None).await;
    let bench = Bench::new();
    let notifier = bench.notifier(vec![email_notif(
        "ops",
        SmtpSecurity::Plain,
        smtp.port,
        "",
        false,
    )]);
    let names = vec!["ops".to_string()];
    let log: String = (0..10_000).map(|n| format!("line {n}\n")).collect();
    notifier.submit(bench.run(&log), failed_to(&names)).await;
    let mail = &smtp.wait_messages(1).await[0];
    let body = mail["body"].as_str().expect("body").replace("\r\n", "\n");
    let first = body.lines().next().expect("a first line");
    assert!(
        first.contains(&format!("the log has {} bytes", log.len())),
        "{first}"
    );
    assert!(
        first.contains("http://karajo.test:31937/karajo/job_exec/log?id=hello&counter=3"),
        "{first}"
    );
    assert!(
        body.trim_end().ends_with("\nline 9999"),
        "{:?}",
        &body[body.len() - 30..]
    );
    assert!(!body.contains("line 0\n"));
    assert!(body.len() < 64 * 1024 + 300, "{}", body.len());
    notifier.shutdown().await;
}

#[tokio::test]
async fn auth_plain_sends_the_credentials() {
    let smtp = Smtp::start(0, Mode::Plain, true, None).await;
    let bench = Bench::new();
    let notifier = bench.notifier(vec![email_notif(
        "ops",
        SmtpSecurity::Plain,
        smtp.port,
        "bot",
        false,
    )]);
    let names = vec!["ops".to_string()];
    notifier.submit(bench.run("x\n"), failed_to(&names)).await;
    let mail = &smtp.wait_messages(1).await[0];
    assert_eq!(
        mail["auth"],
        serde_json::json!({"mechanism": "PLAIN", "login": "bot", "password": "pa55 word"})
    );
    assert_eq!(mail["tls"], false);
    notifier.shutdown().await;
}

#[tokio::test]
async fn starttls_and_implicit_tls_work_with_smtp_insecure() {
    let certs = tempfile::tempdir().expect("tempdir");
    let cert = Cert::new(certs.path());
    for (mode, security) in [
        (Mode::StartTls, SmtpSecurity::StartTls),
        (Mode::Tls, SmtpSecurity::Tls),
    ] {
        let smtp = Smtp::start(0, mode, true, Some(&cert)).await;
        let bench = Bench::new();
        let notifier = bench.notifier(vec![email_notif("ops", security, smtp.port, "bot", true)]);
        let names = vec!["ops".to_string()];
        notifier
            .submit(bench.run("secret log\n"), failed_to(&names))
            .await;
        let mail = &smtp.wait_messages(1).await[0];
        assert_eq!(mail["tls"], true, "{:?}", security);
        assert_eq!(mail["auth"]["login"], "bot");
        assert_eq!(mail["headers"]["Subject"], "job: hello: #3: failed");
        notifier.shutdown().await;
    }
}

#[tokio::test]
async fn a_self_signed_certificate_is_refused_without_smtp_insecure() {
    let certs = tempfile::tempdir().expect("tempdir");
    let cert = Cert::new(certs.path());
    let smtp = Smtp::start(0, Mode::Tls, false, Some(&cert)).await;
    let bench = Bench::new();
    let notifier = bench.notifier(vec![email_notif(
        "ops",
        SmtpSecurity::Tls,
        smtp.port,
        "",
        false,
    )]);
    let names = vec!["ops".to_string()];
    notifier.submit(bench.run("x\n"), failed_to(&names)).await;
    wait_stat(&notifier, "a retried attempt", |s| s.retried >= 1).await;
    let stats = notifier.stats();
    assert_eq!((stats.sent, stats.failed, stats.pending), (0, 0, 1));
    assert!(smtp.messages().is_empty());
    assert_eq!(bench.spooled().len(), 1);
    notifier.shutdown().await;
}

#[tokio::test]
async fn mail_waits_for_a_server_that_is_down_and_arrives_when_it_is_back() {
    let port = free_port();
    let bench = Bench::new();
    let notifier = bench.notifier(vec![email_notif(
        "ops",
        SmtpSecurity::Plain,
        port,
        "",
        false,
    )]);
    let names = vec!["ops".to_string()];
    assert_eq!(
        notifier
            .submit(bench.run("late\n"), failed_to(&names))
            .await,
        1
    );
    wait_stat(&notifier, "two failed attempts", |s| s.retried >= 2).await;
    assert_eq!(bench.spooled().len(), 1);
    let smtp = Smtp::start(port, Mode::Plain, false, None).await;
    let mail = &smtp.wait_messages(1).await[0];
    assert_eq!(mail["headers"]["Subject"], "job: hello: #3: failed");
    wait_stat(&notifier, "sent = 1", |s| s.sent == 1 && s.pending == 0).await;
    assert!(bench.spooled().is_empty());
    notifier.shutdown().await;
}

#[tokio::test]
async fn spooled_notifications_are_delivered_after_a_restart() {
    let port = free_port();
    let bench = Bench::new();
    let notifs = vec![email_notif("ops", SmtpSecurity::Plain, port, "", false)];
    let names = vec!["ops".to_string()];
    let first = bench.notifier(notifs.clone());
    first
        .submit(bench.run("before the restart\n"), failed_to(&names))
        .await;
    wait_stat(&first, "a failed attempt", |s| s.retried >= 1).await;
    first.shutdown().await;
    assert_eq!(bench.spooled().len(), 1, "kept in the spool over the stop");

    let smtp = Smtp::start(port, Mode::Plain, false, None).await;
    let second = bench.notifier(notifs);
    let mail = &smtp.wait_messages(1).await[0];
    assert!(
        mail["body"]
            .as_str()
            .is_some_and(|b| b.contains("before the restart"))
    );
    wait_stat(&second, "sent = 1", |s| s.sent == 1 && s.queued == 1).await;
    assert!(bench.spooled().is_empty());
    second.shutdown().await;
}

/// What the webhook server received.
#[derive(Debug)]
pub(crate) struct Hit {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

/// An axum server on 127.0.0.1 that records each POST and answers the statuses in
/// `answers` in turn (then 200).
pub(crate) async fn webhook_server(
    answers: Vec<StatusCode>,
) -> (String, mpsc::UnboundedReceiver<Hit>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let answers = Arc::new(Mutex::new(answers.into_iter()));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let tx = tx.clone();
            let answers = answers.clone();
            async move {
                let _ = tx.send(Hit {
                    headers,
                    body: body.to_vec(),
                });
                answers.lock().await.next().unwrap_or(StatusCode::OK)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, rx)
}

pub(crate) async fn next_hit(rx: &mut mpsc::UnboundedReceiver<Hit>) -> Hit {
    tokio::time::timeout(TIMEOUT, rx.recv())
        .await
        .expect("a webhook request in time")
        .expect("server alive")
}

#[tokio::test]
async fn webhooks_are_signed_json_and_retried_after_a_server_error() {
    let (url, mut hits) = webhook_server(vec![StatusCode::SERVICE_UNAVAILABLE]).await;
    let bench = Bench::new();
    let notifier = bench.notifier(vec![webhook_notif("hook", url, Some("hook-secret"))]);
    let names = vec!["hook".to_string()];
    let log: String = (0..80).map(|n| format!("line {n}\n")).collect();
    notifier.submit(bench.run(&log), failed_to(&names)).await;

    let refused = next_hit(&mut hits).await;
    let hit = next_hit(&mut hits).await;
    // Each attempt is stamped and signed afresh (its `_karajo_epoch` is the time it
    // was sent), so a receiver that refuses replays accepts the retry.
    let refused_sign = refused.headers["x-karajo-sign"].to_str().expect("ascii");
    assert_eq!(
        refused_sign,
        karajo::auth::sign_hmac_sha256(b"hook-secret", &refused.body)
    );
    let sign = hit.headers["x-karajo-sign"].to_str().expect("ascii");
    assert_eq!(
        sign,
        karajo::auth::sign_hmac_sha256(b"hook-secret", &hit.body)
    );
    assert_eq!(hit.headers["content-type"], "application/json");
    let doc: Value = serde_json::from_slice(&hit.body).expect("json");
    assert_eq!(doc["job_id"], "hello");
    assert_eq!(doc["job_name"], "Hello");
    assert_eq!(doc["job_kind"], "job");
    assert_eq!(doc["counter"], 3);
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["event"], "failed");
    assert_eq!(doc["trigger"], "webhook");
    assert_eq!(doc["duration_ms"], 2000);
    assert_eq!(doc["notif"], "hook");
    assert_eq!(
        doc["log_url"],
        "http://karajo.test:31937/karajo/job_exec/log?id=hello&counter=3"
    );
    let tail = doc["log_tail"].as_str().expect("log_tail");
    assert_eq!(tail.lines().count(), 50);
    assert!(tail.starts_with("line 30\n") && tail.ends_with("line 79\n"));
    assert_eq!(doc["log_truncated"], true);
    let epoch = doc["_karajo_epoch"].as_i64().expect("epoch");
    assert!((epoch - epoch_now()).abs() < 60);
    assert!(
        doc["started_at"]
            .as_str()
            .is_some_and(|t| t.parse::<Timestamp>().is_ok())
    );
    assert!(
        doc["ended_at"]
            .as_str()
            .is_some_and(|t| t.parse::<Timestamp>().is_ok())
    );

    wait_stat(&notifier, "sent after one retry", |s| {
        s.sent == 1 && s.retried == 1
    })
    .await;
    assert!(bench.spooled().is_empty());
    notifier.shutdown().await;
}

#[tokio::test]
async fn a_webhook_refused_with_4xx_is_given_up_and_set_aside() {
    let (url, mut hits) = webhook_server(vec![StatusCode::BAD_REQUEST]).await;
    let bench = Bench::new();
    let notifier = bench.notifier(vec![webhook_notif("hook", url, None)]);
    let names = vec!["hook".to_string()];
    notifier.submit(bench.run("x\n"), failed_to(&names)).await;
    let hit = next_hit(&mut hits).await;
    assert!(
        hit.headers.get("x-karajo-sign").is_none(),
        "no secret, no signature"
    );
    wait_stat(&notifier, "failed = 1", |s| s.failed == 1 && s.pending == 0).await;
    assert!(bench.spooled().is_empty());
    let failed: Vec<_> = std::fs::read_dir(bench.spool().join("failed"))
        .expect("failed/")
        .collect();
    assert_eq!(failed.len(), 1);
    notifier.shutdown().await;
}

#[tokio::test]
async fn a_daemon_mails_a_failed_run_and_its_recovery() {
    let smtp = Smtp::start(0, Mode::Plain, true, None).await;
    let dir = TestDir::new(&format!(
        r#"
[job "flaky"]
path = /flaky
command = echo about to run
command = "test -f flag || {{ touch flag; echo failing; exit 1; }}"
notif_on_failed = mail
notif_on_recover = mail

[notif "mail"]
kind = email
smtp_server = smtp://127.0.0.1:{port}
smtp_user = karajo
smtp_password = $KARAJO_TEST_NOTIFY_UNSET
from = karajo@example.org
to = ops@example.org
"#,
        port = smtp.port
    ));
    let d = TestDaemon::start(&dir).await;
    assert_eq!(d.run_hook("/flaky", &epoch_body()).await.status(), 200);
    let mail = &smtp.wait_messages(1).await[0];
    assert_eq!(mail["headers"]["Subject"], "job: flaky: #1: failed");
    let body = mail["body"].as_str().expect("body");
    assert!(body.contains("job: flaky: about to run"), "{body}");
    assert!(body.contains("job: flaky: failing"), "{body}");
    assert_eq!(
        mail["auth"],
        Value::Null,
        "an unset $VARIABLE means no AUTH"
    );

    d.wait_status("flaky", "failed").await;
    assert_eq!(d.run_hook("/flaky", &epoch_body()).await.status(), 200);
    let mails = smtp.wait_messages(2).await;
    assert_eq!(mails[1]["headers"]["Subject"], "job: flaky: #2: success");
    let daemon = d.daemon.as_ref().expect("running");
    wait_stat(daemon.notifier(), "two sent", |s| s.sent == 2).await;
    let spool = dir.base().join("var/lib/karajo/notify");
    let left: Vec<_> = std::fs::read_dir(&spool)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().is_file())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    d.stop().await;
}

#[tokio::test]
async fn an_http_job_sends_its_notifications_too() {
    let (url, mut hits) = webhook_server(Vec::new()).await;
    // The upstream of the HTTP job is the webhook server itself, on a path it does not
    // serve, so the job fails with a 404 and notifies the webhook.
    let upstream = url.replace("/hook", "/missing");
    let dir = TestDir::new(&format!(
        r#"
[job.http "ping"]
interval = 1h
http_url = {upstream}
notif_on_failed = chat

[notif "chat"]
kind = webhook
url = {url}
secret = hush
"#
    ));
    let d = TestDaemon::start(&dir).await;
    let hit = next_hit(&mut hits).await;
    let doc: Value = serde_json::from_slice(&hit.body).expect("json");
    assert_eq!(doc["job_kind"], "job_http", "{doc}");
    assert_eq!(doc["job_id"], "ping");
    assert_eq!(doc["status"], "failed");
    let sign = karajo::auth::sign_hmac_sha256(b"hush", &hit.body);
    assert_eq!(hit.headers["x-karajo-sign"], sign.as_str());
    d.stop().await;
}
