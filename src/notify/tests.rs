//! Golden tests of the `notify` room: the exact bytes of a run's mail, webhook
//! document and spool file, compared with files checked in under
//! `tests/data/notify/`. They were written by the version before monitor
//! notifications, so a change that alters what runs send, or a spool that an older
//! version wrote no longer loading, fails here. `KARAJO_BLESS=1 cargo nextest run
//! notify::tests` rewrites the files (only do that for an intended change).

use std::path::PathBuf;

use jiff::Timestamp;

use super::email::build_message;
use super::message::{Event, Pending, RunInfo, webhook_payload};
use super::spool::Spool;
use crate::config::{EmailNotif, SmtpSecurity, SmtpServer};

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
        event: Event::Failed,
        created_at: "2026-11-22T03:00:02.5Z".into(),
        message_id: "<1795316402.Ab3dE6gH@karajo.test>".into(),
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
            log_size: if truncated { 70_000 } else { log_tail.len() as u64 },
            log_tail,
            log_truncated: truncated,
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
    for (truncated, name) in [(false, "run.webhook.json"), (true, "run-truncated.webhook.json")] {
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
