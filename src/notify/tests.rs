//! Golden tests of the `notify` room: the exact bytes of a run's mail, webhook
//! document and spool file, compared with files checked in under
//! `tests/data/notify/`. The `run*` files were written by the version before monitor
//! notifications, so a change that alters what runs send, or a spool that an older
//! version wrote no longer loading, fails here. The `monitor*` files pin the texts of
//! monitor notifications (monitors spec §1.5), checked field by field as well. `KARAJO_BLESS=1 cargo nextest run
//! notify::tests` rewrites the files (only do that for an intended change).

use std::path::PathBuf;

use jiff::Timestamp;

use super::email::build_message;
use super::message::{self, About, Event, Pending, RunInfo, webhook_payload};
use super::notice::{MonitorInfo, MonitorLog, MonitorRecord, monitor_info};
use super::spool::Spool;
use crate::config::{EmailNotif, SmtpSecurity, SmtpServer};
use crate::job::JobId;
use crate::monitor::{DownReason, MonitorNotice, NoticeEvent, Outage, Status};

/// `tests/data/notify/<name>`.
fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/notify")
        .join(name)
}

/// Compares `actual` with the fixture `name`, or rewrites it under `KARAJO_BLESS`.
fn golden(name: &str, actual: &[u8]) {
    let path = fixture_path(name);
    if std::env::var_os("KARAJO_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        expected == actual,
        "{name} differs from the checked-in bytes:\n--- expected\n{}\n--- actual\n{}",
        String::from_utf8_lossy(&expected),
        String::from_utf8_lossy(actual)
    );
}

/// A failed run of `hello` #3 with a log that needs quoted-printable encoding.
pub(super) fn run_pending(truncated: bool) -> Pending {
    let log_tail = format!(
        "2026-11-22 03:00:00 UTC job: hello: === BEGIN\n\
         2026-11-22 03:00:01 UTC job: hello: Ünïcode = ok, tab\there, a long line {}\n\
         2026-11-22 03:00:02 UTC job: hello: !!! exit status 1\n",
        "x".repeat(90)
    );
    Pending {
        notif: "ops".into(),
        created_at: "2026-11-22T03:00:02.5Z".into(),
        message_id: "<1795316402.Ab3dE6gH@karajo.test>".into(),
        target: None,
        about: About::Run {
            event: Event::Failed,
            run: RunInfo {
                job_kind: "job".into(),
                job_id: "hello".into(),
                job_name: "Hello".into(),
                counter: 3,
                status: "failed".into(),
                trigger: "webhook".into(),
                started_at: "2026-11-22T03:00:00Z".into(),
                ended_at: "2026-11-22T03:00:02.5Z".into(),
                duration_ms: 2500,
                log_url: "http://karajo.test:31937/karajo/job_exec/log?id=hello&counter=3".into(),
                log_size: if truncated {
                    70_000
                } else {
                    log_tail.len() as u64
                },
                log_tail,
                log_truncated: truncated,
            },
        },
    }
}

pub(super) fn email_config() -> EmailNotif {
    EmailNotif {
        server: SmtpServer {
            security: SmtpSecurity::Plain,
            host: "127.0.0.1".into(),
            port: 2525,
        },
        user: String::new(),
        password: String::new(),
        insecure: false,
        from: "Karajo <karajo@example.org>".into(),
        to: vec!["ops@example.org".into(), "dev@example.org".into()],
    }
}

#[test]
fn a_run_mail_keeps_its_bytes() {
    for (truncated, name) in [(false, "run.eml"), (true, "run-truncated.eml")] {
        let message = build_message(&email_config(), &run_pending(truncated)).unwrap();
        golden(name, &message.formatted());
    }
}

#[test]
fn a_run_webhook_document_keeps_its_bytes() {
    let now = Timestamp::from_second(1_795_316_410).unwrap();
    for (truncated, name) in [
        (false, "run.webhook.json"),
        (true, "run-truncated.webhook.json"),
    ] {
        let pending = run_pending(truncated);
        let body = serde_json::to_vec(&webhook_payload(&pending, now)).unwrap();
        golden(name, &body);
    }
}

#[test]
fn a_run_spool_file_keeps_its_bytes_and_old_files_load() {
    let pending = run_pending(false);
    golden(
        "run.spool.json",
        &serde_json::to_vec_pretty(&pending).unwrap(),
    );
    // A spool directory holding the file as the previous version wrote it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture_path("run.spool.json"),
        dir.path().join("1795316402500-0badf00d.json"),
    )
    .unwrap();
    let loaded = Spool::new(dir.path()).load().unwrap();
    assert!(loaded.bad.is_empty(), "{:?}", loaded.bad);
    assert_eq!(
        loaded.pending,
        [("1795316402500-0badf00d.json".to_string(), pending)]
    );
}

/// `backup_db` went down at 03:05 (a timeout), with the log of its last check-in.
fn monitor_record(log: Option<MonitorLog>) -> MonitorRecord {
    MonitorRecord {
        id: JobId::from_raw("backup_db"),
        name: "Backup DB".into(),
        notice: MonitorNotice {
            event: NoticeEvent::Down,
            notifs: vec!["ops".into()],
            previous_status: Status::Late { notified: true },
            reason: Some(DownReason::Timeout),
            exit_code: None,
            summary: "DOWN (no check-in since 02:00:01Z)".into(),
            reminder: false,
        },
        at: "2026-11-22T03:05:00.004Z".parse().unwrap(),
        log,
        target: None,
    }
}

fn monitor_pending(info: MonitorInfo) -> Pending {
    let mut p = message::monitor_pending(
        "ops",
        info,
        None,
        "2026-11-22T03:05:00.01Z".parse().unwrap(),
    );
    p.message_id = "<1795316700.Zz9yX8wV@karajo.test>".into();
    p
}

#[test]
fn a_monitor_mail_has_the_subject_the_details_and_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup_db.41.success");
    std::fs::write(
        &path,
        "2026-11-22 02:00:01 UTC monitor: backup_db: === SUCCESS via GET from 10.0.0.7 \"curl/8.5.0\"\n",
    )
    .unwrap();
    let log = MonitorLog { counter: 41, path };
    let info = monitor_info(&monitor_record(Some(log)), "http://karajo.test:31937/");
    assert_eq!(
        info.log_url,
        "http://karajo.test:31937/karajo/app/monitor/backup_db/log/41"
    );
    assert_eq!(
        info.page_url,
        "http://karajo.test:31937/karajo/app/monitor/backup_db"
    );
    let pending = monitor_pending(info);
    assert_eq!(
        pending.subject(),
        "monitor: backup_db: DOWN (no check-in since 02:00:01Z)"
    );
    let message = build_message(&email_config(), &pending).unwrap();
    golden("monitor-down.eml", &message.formatted());
    let body = pending.mail_body();
    for line in [
        "monitor: backup_db: DOWN (no check-in since 02:00:01Z)\n\n",
        "Monitor:         Backup DB (backup_db)\n",
        "Event:           down\n",
        "Previous status: late\n",
        "Reason:          timeout\n",
        "Time:            2026-11-22T03:05:00.004Z\n",
        "Log:             http://karajo.test:31937/karajo/app/monitor/backup_db/log/41\n",
        "\n--- the log backup_db.41 (91 bytes) ---\n2026-11-22 02:00:01 UTC monitor: backup_db: === SUCCESS",
    ] {
        assert!(body.contains(line), "{line:?} in\n{body}");
    }
    assert!(!body.contains("Exit status"), "{body}");
}

#[test]
fn a_monitor_mail_without_a_log_links_the_monitor_and_names_an_exit_status() {
    let mut record = monitor_record(None);
    record.notice.reason = Some(DownReason::Fail);
    record.notice.exit_code = Some(3);
    record.notice.previous_status = Status::Down(Outage {
        reason: DownReason::Fail,
        exit_code: Some(3),
        last_notice: record.at,
    });
    record.notice.reminder = true;
    record.notice.summary = "STILL DOWN after 1h (exit status 3)".into();
    let info = monitor_info(&record, "http://k");
    assert_eq!(info.log_url, "http://k/karajo/app/monitor/backup_db");
    let body = monitor_pending(info).mail_body();
    assert_eq!(
        body,
        "monitor: backup_db: STILL DOWN after 1h (exit status 3)\n\n\
         Monitor:         Backup DB (backup_db)\n\
         Event:           down (a reminder: still down)\n\
         Previous status: down\n\
         Reason:          fail\n\
         Exit status:     3\n\
         Time:            2026-11-22T03:05:00.004Z\n\
         Monitor page:    http://k/karajo/app/monitor/backup_db"
    );
}

#[test]
fn a_monitor_mail_carries_the_last_64_kib_of_a_long_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup_db.7.failed");
    let log: String = (0..20_000).map(|n| format!("line {n}\n")).collect();
    std::fs::write(&path, &log).unwrap();
    let info = monitor_info(
        &monitor_record(Some(MonitorLog { counter: 7, path })),
        "http://k",
    );
    let excerpt = info.log.as_ref().unwrap();
    assert!(excerpt.truncated);
    assert_eq!(excerpt.size, log.len() as u64);
    assert!(excerpt.tail.len() <= message::MAIL_LOG_LIMIT);
    assert!(excerpt.tail.starts_with("line "), "cut at a line");
    let body = monitor_pending(info).mail_body();
    assert!(
        body.contains(&format!(
            "\n--- the log backup_db.7 has {} bytes; below are its last lines (at most 64 KiB) ---\nline ",
            log.len()
        )),
        "{}",
        &body[..600]
    );
    assert!(body.ends_with("\nline 19999"));
    assert!(!body.contains("\nline 0\n"));
    let log_part = &body[body.find("\n---").unwrap()..];
    assert!(
        log_part.len() < message::MAIL_LOG_LIMIT + 200,
        "{}",
        log_part.len()
    );
}

#[test]
fn a_monitor_webhook_document_has_kind_event_previous_status_reason_and_log_url() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup_db.41.failed");
    let log: String = (0..80).map(|n| format!("line {n}\n")).collect();
    std::fs::write(&path, &log).unwrap();
    let mut record = monitor_record(Some(MonitorLog { counter: 41, path }));
    record.notice.exit_code = Some(3);
    record.notice.reason = Some(DownReason::Fail);
    let pending = monitor_pending(monitor_info(&record, "http://karajo.test:31937"));
    let now = Timestamp::from_second(1_795_316_710).unwrap();
    let body = serde_json::to_vec(&webhook_payload(&pending, now)).unwrap();
    golden("monitor-down.webhook.json", &body);
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["kind"], "monitor");
    assert_eq!(doc["event"], "down");
    assert_eq!(doc["status"], "down");
    assert_eq!(doc["previous_status"], "late");
    assert_eq!(doc["reason"], "fail");
    assert_eq!(doc["exit_code"], 3);
    assert_eq!(doc["id"], "backup_db");
    assert_eq!(doc["name"], "Backup DB");
    assert_eq!(doc["counter"], 41);
    assert_eq!(
        doc["log_url"],
        "http://karajo.test:31937/karajo/app/monitor/backup_db/log/41"
    );
    let tail = doc["log_tail"].as_str().unwrap();
    assert!(tail.starts_with("line 30\n") && tail.ends_with("line 79\n"));
    assert_eq!(doc["log_truncated"], true);
    assert!(doc.get("reminder").is_none(), "false is left out");

    // An up notice without a log: no reason, no log fields, the page as log_url.
    let mut record = monitor_record(None);
    record.notice.event = NoticeEvent::Up;
    record.notice.reason = None;
    record.notice.previous_status = Status::Down(Outage {
        reason: DownReason::Timeout,
        exit_code: None,
        last_notice: record.at,
    });
    record.notice.summary = "UP after 1h5m".into();
    let pending = monitor_pending(monitor_info(&record, "http://k"));
    let doc = serde_json::to_value(webhook_payload(&pending, now)).unwrap();
    // (serde_json's map is sorted by key.)
    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "_karajo_epoch",
            "event",
            "id",
            "kind",
            "log_url",
            "name",
            "notif",
            "previous_status",
            "status",
            "summary",
            "time"
        ]
    );
    assert_eq!(doc["event"], "up");
    assert_eq!(doc["previous_status"], "down");
    assert_eq!(doc["log_url"], "http://k/karajo/app/monitor/backup_db");
    assert_eq!(pending.subject(), "monitor: backup_db: UP after 1h5m");
}

#[test]
fn a_monitor_spool_file_round_trips_and_keeps_its_target() {
    let mut pending = monitor_pending(monitor_info(&monitor_record(None), "http://k"));
    pending.target = Some("oncall@example.org".into());
    let bytes = serde_json::to_vec_pretty(&pending).unwrap();
    golden("monitor.spool.json", &bytes);
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert!(
        doc.get("event").is_none() && doc.get("run").is_none(),
        "{doc}"
    );
    assert_eq!(doc["monitor"]["event"], "down");
    assert_eq!(serde_json::from_slice::<Pending>(&bytes).unwrap(), pending);

    // Neither or both of a run and a monitor: unreadable, so set aside as *.bad.
    let run = serde_json::to_value(run_pending(false)).unwrap();
    let mut both = run.clone();
    both["monitor"] = doc["monitor"].clone();
    let mut neither = run.clone();
    neither.as_object_mut().unwrap().remove("run");
    let mut no_event = run;
    no_event.as_object_mut().unwrap().remove("event");
    for bad in [both, neither, no_event] {
        let err = serde_json::from_value::<Pending>(bad).unwrap_err();
        assert!(err.to_string().contains("expected either"), "{err}");
    }
}
