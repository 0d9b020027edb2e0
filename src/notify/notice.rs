//! What a monitor notification says (monitors spec §1.5 and A.4.5): the notifier's
//! input ([`MonitorRecord`]: the monitor, the state machine's
//! [`MonitorNotice`], the time and the relevant log), the snapshot of it that is
//! spooled ([`MonitorInfo`], plain data like a run's, with the log's last 64 KiB read
//! at queue time), and the texts built from it at send time: the subject
//! `monitor: <id>: <summary>`, the mail body with the transition's details and the
//! log tail, and the webhook document with `kind`, `event`, `previous_status`,
//! `reason` and `log_url`. Which transitions notify, and whom, is the monitor room's
//! decision; this module only words it. Reading the log tail is its only IO.

use std::path::PathBuf;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::message::{MAIL_LOG_LIMIT, last_lines, read_tail};
use crate::job::JobId;
use crate::monitor::MonitorNotice;

/// A monitor's transition, as the scheduler reports it to the notifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorRecord {
    /// The monitor's id.
    pub id: JobId,
    /// The monitor's name (as written in its section, or a pulse's `service`).
    pub name: String,
    /// What the state machine asked to tell, and whom (`notice.notifs`).
    pub notice: MonitorNotice,
    /// When the transition (or the reminder) happened.
    pub at: Timestamp,
    /// The log that goes with it (the failed check-in's, the overrun run's, the
    /// check-in that ended the outage), if any; its last 64 KiB go in the mail.
    pub log: Option<MonitorLog>,
    /// A watchTower pulse's `alertTarget`, used in place of each notif's recipient
    /// where its `allow_target` rule accepts it (and ignored, with a warning,
    /// elsewhere). `None` or blank for no target.
    pub target: Option<String>,
}

/// One of a monitor's log files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorLog {
    /// Its counter (`<id>.<counter>.<status>`).
    pub counter: u64,
    /// Where it is now.
    pub path: PathBuf,
}

/// A monitor's transition as it is spooled and sent: plain data, independent of the
/// log file (which retention may delete before a retry succeeds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorInfo {
    /// `monitor` or `service` (spools written before services had none: `monitor`).
    #[serde(default = "monitor_word", skip_serializing_if = "is_monitor")]
    pub kind: String,
    /// `down`, `up` or `late` (a service: `failed`, `fatal` or `recover`); for a
    /// monitor also the status it is in now.
    pub event: String,
    /// The monitor's id.
    pub id: String,
    /// The monitor's name.
    pub name: String,
    /// The status before (`down` itself for a reminder).
    pub previous_status: String,
    /// Why it is down: `timeout`, `fail` or `run_timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The exit status of an `/<n>` failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<u8>,
    /// The subject after `monitor: <id>: `, e.g. `DOWN (no check-in since 02:00:01Z)`.
    pub summary: String,
    /// A `notif_repeat` reminder rather than the transition itself.
    #[serde(default, skip_serializing_if = "is_false")]
    pub reminder: bool,
    /// When it happened (RFC 3339).
    pub time: String,
    /// The monitor's page in the web UI.
    pub page_url: String,
    /// The log's page in the web UI, or the monitor's page when there is no log.
    pub log_url: String,
    /// The end of the log, when one goes with the transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogExcerpt>,
}

fn monitor_word() -> String {
    "monitor".to_string()
}

fn is_monitor(kind: &str) -> bool {
    kind == "monitor"
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The end of a log file, read when the notification was queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogExcerpt {
    /// The log's counter.
    pub counter: u64,
    /// The file's size in bytes.
    pub size: u64,
    /// Its last [`MAIL_LOG_LIMIT`] bytes, starting at a line, or a note saying why
    /// it could not be read.
    pub tail: String,
    /// The log is longer than [`LogExcerpt::tail`].
    pub truncated: bool,
}

/// The web UI page of monitor (or service) `id`: `<base>/karajo/app/<kind>/<id>`.
pub fn page_url(base: &str, kind: &str, id: &str) -> String {
    format!(
        "{}/karajo/app/{kind}/{}",
        base.trim_end_matches('/'),
        path_segment(id)
    )
}

/// The web UI page of a log: `<base>/karajo/app/<kind>/<id>/log/<counter>`.
pub fn log_url(base: &str, kind: &str, id: &str, counter: u64) -> String {
    format!("{}/log/{counter}", page_url(base, kind, id))
}

/// `text` percent-encoded for one URL path segment (ids are normalised, so this
/// rarely changes anything).
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The spooled description of `record`, with its log tail read now.
pub fn monitor_info(record: &MonitorRecord, public_url: &str) -> MonitorInfo {
    let id = record.id.as_str();
    let notice = &record.notice;
    let log = record.log.as_ref().map(excerpt);
    let page = page_url(public_url, "monitor", id);
    MonitorInfo {
        kind: monitor_word(),
        event: notice.event.as_str().to_string(),
        id: id.to_string(),
        name: record.name.clone(),
        previous_status: notice.previous_status.as_str().to_string(),
        reason: notice.reason.map(|r| r.as_str().to_string()),
        exit_code: notice.exit_code,
        summary: notice.summary.clone(),
        reminder: notice.reminder,
        time: record.at.to_string(),
        log_url: log.as_ref().map_or_else(
            || page.clone(),
            |l| log_url(public_url, "monitor", id, l.counter),
        ),
        page_url: page,
        log,
    }
}

/// `monitor: <id>: <summary>` or `service: <id>: <summary>` (monitors spec §1.5).
pub fn subject(m: &MonitorInfo) -> String {
    format!("{}: {}: {}", m.kind, m.id, m.summary)
}

/// The transition's details, one `Label: value` line each.
pub fn details(m: &MonitorInfo) -> String {
    let title = if m.kind == "service" {
        "Service"
    } else {
        "Monitor"
    };
    let mut lines = vec![
        format!(
            "{title}:{:width$}{} ({})",
            "",
            m.name,
            m.id,
            width = 16 - title.len()
        ),
        format!(
            "Event:           {}{}",
            m.event,
            if m.reminder {
                " (a reminder: still down)"
            } else {
                ""
            }
        ),
        format!("Previous status: {}", m.previous_status),
    ];
    if let Some(reason) = &m.reason {
        lines.push(format!("Reason:          {reason}"));
    }
    if let Some(code) = m.exit_code {
        lines.push(format!("Exit status:     {code}"));
    }
    lines.push(format!("Time:            {}", m.time));
    lines.push(format!(
        "{title} page:{:width$}{}",
        "",
        m.page_url,
        width = 11 - title.len()
    ));
    if m.log.is_some() {
        lines.push(format!("Log:             {}", m.log_url));
    }
    lines.join("\n")
}

/// The mail body: the subject again, the details, and the log's last 64 KiB when
/// a log goes with the transition.
pub fn mail_body(m: &MonitorInfo) -> String {
    let mut body = String::with_capacity(512 + m.log.as_ref().map_or(0, |l| l.tail.len()));
    body.push_str(&subject(m));
    body.push_str("\n\n");
    body.push_str(&details(m));
    body.push('\n');
    if let Some(log) = &m.log {
        let name = format!("{}.{}", m.id, log.counter);
        if log.truncated {
            body.push_str(&format!(
                "\n--- the log {name} has {} bytes; below are its last lines (at most 64 KiB) ---\n",
                log.size
            ));
        } else {
            body.push_str(&format!("\n--- the log {name} ({} bytes) ---\n", log.size));
        }
        body.push_str(log.tail.strip_suffix('\n').unwrap_or(&log.tail));
    }
    body.strip_suffix('\n').unwrap_or(&body).to_string()
}

/// The webhook document of a monitor's transition.
#[derive(Debug, Serialize)]
pub struct MonitorPayload<'a> {
    /// Seconds since the epoch when sent (so another karajo accepts it as a signed
    /// web hook).
    pub _karajo_epoch: i64,
    /// The `[notif]` name.
    pub notif: &'a str,
    /// `monitor` or `service`.
    pub kind: &'a str,
    /// `down`, `up` or `late`.
    pub event: &'a str,
    /// The monitor's id.
    pub id: &'a str,
    /// The monitor's name.
    pub name: &'a str,
    /// The status now: `down`, `up` or `late`.
    pub status: &'a str,
    /// The status before.
    pub previous_status: &'a str,
    /// `timeout`, `fail` or `run_timeout`, on `down`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    /// The exit status of an `/<n>` failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<u8>,
    /// The subject's last part, e.g. `DOWN (no check-in since 02:00:01Z)`.
    pub summary: &'a str,
    /// True for a `notif_repeat` reminder.
    #[serde(skip_serializing_if = "is_false")]
    pub reminder: bool,
    /// When it happened (RFC 3339).
    pub time: &'a str,
    /// The log in the web UI, or the monitor's page when no log goes with it.
    pub log_url: &'a str,
    /// The log's counter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counter: Option<u64>,
    /// The log's last lines (50 at most, 16 KiB at most).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
    /// Earlier lines were left out of `log_tail`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_truncated: Option<bool>,
}

/// The webhook document of `m` for `notif`, stamped with `now`.
pub fn webhook_payload<'a>(
    notif: &'a str,
    m: &'a MonitorInfo,
    now: Timestamp,
) -> MonitorPayload<'a> {
    let tail = m.log.as_ref().map(|l| last_lines(&l.tail, l.truncated));
    let (log_tail, log_truncated) = match tail {
        Some((tail, cut)) => (Some(tail), Some(cut)),
        None => (None, None),
    };
    MonitorPayload {
        _karajo_epoch: now.as_second(),
        notif,
        kind: &m.kind,
        event: &m.event,
        id: &m.id,
        name: &m.name,
        status: &m.event,
        previous_status: &m.previous_status,
        reason: m.reason.as_deref(),
        exit_code: m.exit_code,
        summary: &m.summary,
        reminder: m.reminder,
        time: &m.time,
        log_url: &m.log_url,
        counter: m.log.as_ref().map(|l| l.counter),
        log_tail,
        log_truncated,
    }
}

/// A service's notice (monitors spec B.11), as the scheduler reports it to the
/// notifier: sent like a monitor's, with the kind `service`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRecord {
    /// The service's id.
    pub id: JobId,
    /// The service's name.
    pub name: String,
    /// `failed`, `fatal` or `recover`.
    pub event: String,
    /// The status before.
    pub previous_status: String,
    /// Why the instance ended, on `failed` and `fatal`.
    pub reason: Option<String>,
    /// The subject after `service: <id>: `.
    pub summary: String,
    /// The `[notif]` names to send it through.
    pub notifs: Vec<String>,
    /// When.
    pub at: Timestamp,
    /// The instance log segment whose tail goes in the body.
    pub log: Option<MonitorLog>,
}

/// The spooled description of a service's notice, with its log tail read now.
pub fn service_info(record: &ServiceRecord, public_url: &str) -> MonitorInfo {
    let id = record.id.as_str();
    let log = record.log.as_ref().map(excerpt);
    let page = page_url(public_url, "service", id);
    MonitorInfo {
        kind: "service".to_string(),
        event: record.event.clone(),
        id: id.to_string(),
        name: record.name.clone(),
        previous_status: record.previous_status.clone(),
        reason: record.reason.clone(),
        exit_code: None,
        summary: record.summary.clone(),
        reminder: false,
        time: record.at.to_string(),
        log_url: log.as_ref().map_or_else(
            || page.clone(),
            |l| log_url(public_url, "service", id, l.counter),
        ),
        page_url: page,
        log,
    }
}

/// The end of `log`, or a note saying why it could not be read.
fn excerpt(log: &MonitorLog) -> LogExcerpt {
    let (tail, size, truncated) = match read_tail(&log.path, MAIL_LOG_LIMIT) {
        Ok(tail) => tail,
        Err(err) => (
            format!("(the log {} cannot be read: {err})\n", log.path.display()),
            0,
            false,
        ),
    };
    LogExcerpt {
        counter: log.counter,
        size,
        tail,
        truncated,
    }
}
