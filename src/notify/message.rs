//! What a notification says: the notifier's input for runs ([`RunRecord`],
//! [`NotifyOn`]), the choice of notifs for a finished run (success, failed, recover),
//! the snapshot that is spooled ([`Pending`]: a run and its log tail, or a monitor's
//! transition from [`super::notice`]), and the texts built from it at send time: the
//! mail's subject and body (spec 8, with a long log cut to its last 64 KiB) and the
//! webhook's JSON document. A run's texts are byte for byte those of the version
//! before monitors, and so is its spool file (golden tests in `notify/tests.rs`). No
//! network and no spool IO here; reading the log tail is the only file access.

use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use rand::Rng as _;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};

use super::notice::{self, MonitorInfo, MonitorPayload};
use crate::job::{JobId, JobKind, RunStatus, Trigger};

/// The most of a log a mail carries: its last 64 KiB.
pub const MAIL_LOG_LIMIT: usize = 64 * 1024;
/// The most of a log a webhook document carries, in bytes…
pub const WEBHOOK_LOG_BYTES: usize = 16 * 1024;
/// …and in lines.
pub const WEBHOOK_LOG_LINES: usize = 50;

/// A finished run, as any job kind reports it to the notifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// Command job or HTTP job (the subject's `job` or `job_http`).
    pub kind: JobKind,
    /// The job id.
    pub id: JobId,
    /// The job name.
    pub name: String,
    /// The run's counter.
    pub counter: u64,
    /// How the run ended; only `success` and `failed` are notified.
    pub status: RunStatus,
    /// What started the run.
    pub trigger: Trigger,
    /// When the run started.
    pub started: Timestamp,
    /// When the run ended.
    pub ended: Timestamp,
    /// The closed log file (`<id>.<counter>.<status>`).
    pub log_path: PathBuf,
    /// The status of the job's previous run that ended `success` or `failed`
    /// (canceled runs skipped), for `notif_on_recover`.
    pub previous: Option<RunStatus>,
}

/// The `notif_on_*` lists of a job.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotifyOn<'a> {
    /// `notif_on_success`.
    pub success: &'a [String],
    /// `notif_on_failed`.
    pub failed: &'a [String],
    /// `notif_on_recover`.
    pub recover: &'a [String],
}

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// The run succeeded (`notif_on_success`).
    Success,
    /// The run failed (`notif_on_failed`).
    Failed,
    /// The run succeeded after one or more failures (`notif_on_recover`).
    Recover,
}

impl Event {
    /// `success`, `failed` or `recover`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Recover => "recover",
        }
    }
}

/// The notifs to tell about `run`, each once, with the reason: `failed` runs go to
/// `notif_on_failed`; `success` runs go to `notif_on_recover` when the previous
/// completed run failed, and to `notif_on_success` (a notif in both lists gets one
/// `recover` message). Nothing for other statuses (canceled runs are never notified).
pub fn targets(run: &RunRecord, on: NotifyOn<'_>) -> Vec<(String, Event)> {
    let mut out: Vec<(String, Event)> = Vec::new();
    let mut add = |names: &[String], event: Event| {
        for name in names {
            if !out.iter().any(|(n, _)| n == name) {
                out.push((name.clone(), event));
            }
        }
    };
    match run.status {
        RunStatus::Failed => add(on.failed, Event::Failed),
        RunStatus::Success => {
            if run.previous == Some(RunStatus::Failed) {
                add(on.recover, Event::Recover);
            }
            add(on.success, Event::Success);
        }
        _ => {}
    }
    out
}

/// A run as it is spooled and sent: plain data, independent of the log file (which
/// retention may delete before a retry succeeds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// `job` or `job_http`.
    pub job_kind: String,
    /// The job id.
    pub job_id: String,
    /// The job name.
    pub job_name: String,
    /// The run's counter.
    pub counter: u64,
    /// `success` or `failed`.
    pub status: String,
    /// `timer`, `webhook` or `api`.
    pub trigger: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub ended_at: String,
    /// Milliseconds from start to end.
    pub duration_ms: u64,
    /// The log in the web UI.
    pub log_url: String,
    /// The log file's size in bytes.
    pub log_size: u64,
    /// The log's last [`MAIL_LOG_LIMIT`] bytes, starting at a line, or a note saying
    /// why it could not be read.
    pub log_tail: String,
    /// The log is longer than [`RunInfo::log_tail`].
    pub log_truncated: bool,
}

/// One notification waiting to be delivered, as written in the spool.
///
/// The file of a run notification is the one the version before monitors wrote
/// (`notif`, `event`, `created_at`, `message_id`, `run`), so spools cross upgrades in
/// both directions; a monitor notification holds `monitor` instead of `event` and
/// `run`, and may hold a `target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PendingFile", into = "PendingFile")]
pub struct Pending {
    /// The `[notif]` name; its settings are looked up at each attempt.
    pub notif: String,
    /// When it was queued (RFC 3339); retries stop 24 hours after.
    pub created_at: String,
    /// The mail's `Message-ID`, the same on every attempt.
    pub message_id: String,
    /// A recipient in place of the notif's own (a watchTower pulse's `alertTarget`),
    /// applied at each attempt by [`crate::config::NotifConfig::with_target`].
    pub target: Option<String>,
    /// What it tells about.
    pub about: About,
}

/// What a notification tells about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum About {
    /// A finished run of a job.
    Run {
        /// Why it is sent.
        event: Event,
        /// The run.
        run: RunInfo,
    },
    /// A monitor's transition (or a reminder that it is still down).
    Monitor(MonitorInfo),
}

/// [`Pending`] as its JSON file holds it.
#[derive(Serialize, Deserialize)]
struct PendingFile {
    notif: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event: Option<Event>,
    created_at: String,
    message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run: Option<RunInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    monitor: Option<MonitorInfo>,
}

impl TryFrom<PendingFile> for Pending {
    type Error = &'static str;

    fn try_from(file: PendingFile) -> Result<Self, Self::Error> {
        let about = match (file.event, file.run, file.monitor) {
            (Some(event), Some(run), None) => About::Run { event, run },
            (None, None, Some(monitor)) => About::Monitor(monitor),
            _ => return Err("expected either \"event\" and \"run\", or \"monitor\""),
        };
        Ok(Self {
            notif: file.notif,
            created_at: file.created_at,
            message_id: file.message_id,
            target: file.target,
            about,
        })
    }
}

impl From<Pending> for PendingFile {
    fn from(p: Pending) -> Self {
        let (event, run, monitor) = match p.about {
            About::Run { event, run } => (Some(event), Some(run), None),
            About::Monitor(monitor) => (None, None, Some(monitor)),
        };
        Self {
            notif: p.notif,
            event,
            created_at: p.created_at,
            message_id: p.message_id,
            target: p.target,
            run,
            monitor,
        }
    }
}

impl Pending {
    /// When it was queued; now when the spooled text is unreadable.
    pub fn created(&self) -> Timestamp {
        self.created_at.parse().unwrap_or_else(|_| Timestamp::now())
    }

    /// The mail subject and Pushover title: `job: <id>: #<counter>: <status>` or
    /// `monitor: <id>: <summary>`.
    pub fn subject(&self) -> String {
        match &self.about {
            About::Run { run, .. } => subject(run),
            About::Monitor(m) => notice::subject(m),
        }
    }

    /// The mail body.
    pub fn mail_body(&self) -> String {
        match &self.about {
            About::Run { run, .. } => mail_body(run),
            About::Monitor(m) => notice::mail_body(m),
        }
    }

    /// When it happened (RFC 3339): the run's end or the monitor's transition.
    pub fn happened_at(&self) -> &str {
        match &self.about {
            About::Run { run, .. } => &run.ended_at,
            About::Monitor(m) => &m.time,
        }
    }

    /// The web UI address to link: the run's log, or the monitor's log or page.
    pub fn log_url(&self) -> &str {
        match &self.about {
            About::Run { run, .. } => &run.log_url,
            About::Monitor(m) => &m.log_url,
        }
    }

    /// The event word: `success`, `failed`, `recover`, `down`, `up` or `late`.
    pub fn event_str(&self) -> &str {
        match &self.about {
            About::Run { event, .. } => event.as_str(),
            About::Monitor(m) => &m.event,
        }
    }

    /// What it is about, for karajo's own log lines: `job/hello #3` or
    /// `monitor/backup_db`.
    pub fn what(&self) -> String {
        match &self.about {
            About::Run { run, .. } => format!("{}/{} #{}", run.job_kind, run.job_id, run.counter),
            About::Monitor(m) => format!("{}/{}", m.kind, m.id),
        }
    }
}

/// The web UI address of a run's log: `<base>/karajo/job_exec/log?id=..&counter=..`
/// (`job_http` for HTTP jobs).
pub fn log_url(base: &str, kind: JobKind, id: &JobId, counter: u64) -> String {
    let group = kind.route();
    let base = base.trim_end_matches('/');
    let id = serde_urlencoded::to_string([("id", id.as_str())]).unwrap_or_default();
    format!("{base}/karajo/{group}/log?{id}&counter={counter}")
}

/// The spooled description of `run`, with its log tail read now.
pub fn run_info(run: &RunRecord, public_url: &str) -> RunInfo {
    let (log_tail, log_size, log_truncated) = match read_tail(&run.log_path, MAIL_LOG_LIMIT) {
        Ok(tail) => tail,
        Err(err) => (
            format!(
                "(the log {} cannot be read: {err})\n",
                run.log_path.display()
            ),
            0,
            false,
        ),
    };
    let duration = run.ended.duration_since(run.started);
    RunInfo {
        job_kind: run.kind.as_str().to_string(),
        job_id: run.id.to_string(),
        job_name: run.name.clone(),
        counter: run.counter,
        status: run.status.as_str().to_string(),
        trigger: run.trigger.as_str().to_string(),
        started_at: run.started.to_string(),
        ended_at: run.ended.to_string(),
        duration_ms: u64::try_from(duration.as_millis()).unwrap_or(0),
        log_url: log_url(public_url, run.kind, &run.id, run.counter),
        log_size,
        log_tail,
        log_truncated,
    }
}

/// A new pending notification of a run for `notif`.
pub fn pending(notif: &str, event: Event, run: RunInfo, now: Timestamp) -> Pending {
    Pending {
        notif: notif.to_string(),
        created_at: now.to_string(),
        message_id: message_id(now),
        target: None,
        about: About::Run { event, run },
    }
}

/// A new pending notification of a monitor's transition for `notif`, sent to
/// `target` instead of the notif's recipient when given.
pub fn monitor_pending(
    notif: &str,
    monitor: MonitorInfo,
    target: Option<String>,
    now: Timestamp,
) -> Pending {
    Pending {
        notif: notif.to_string(),
        created_at: now.to_string(),
        message_id: message_id(now),
        target,
        about: About::Monitor(monitor),
    }
}

/// `<unix>.<8 random characters>@<hostname>`, as the original.
fn message_id(now: Timestamp) -> String {
    let random: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(8)
        .map(char::from)
        .collect();
    format!("<{}.{random}@{}>", now.as_second(), hostname())
}

/// The machine's host name, or `localhost`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        })
        .unwrap_or_else(|| "localhost".to_string())
}

/// The last `limit` bytes of the file at `path`, starting after a line break when the
/// file is longer; also the file's size and whether it was cut.
pub fn read_tail(path: &Path, limit: usize) -> io::Result<(String, u64, bool)> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let limit64 = u64::try_from(limit).unwrap_or(u64::MAX);
    let truncated = size > limit64;
    if truncated {
        file.seek(SeekFrom::Start(size - limit64))?;
    }
    let mut bytes = Vec::with_capacity(limit.min(usize::try_from(size).unwrap_or(limit)));
    file.take(limit64).read_to_end(&mut bytes)?;
    let start = if truncated {
        bytes.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1)
    } else {
        0
    };
    Ok((
        String::from_utf8_lossy(&bytes[start..]).into_owned(),
        size,
        truncated,
    ))
}

/// `job: <id>: #<counter>: <status>` (`job_http` for HTTP jobs), as the original.
pub fn subject(run: &RunInfo) -> String {
    format!(
        "{}: {}: #{}: {}",
        run.job_kind, run.job_id, run.counter, run.status
    )
}

/// The mail body: the log (without its last line break, which the message adds),
/// and when it was cut, a first line saying so with the address of the whole log.
pub fn mail_body(run: &RunInfo) -> String {
    let mut body = String::with_capacity(run.log_tail.len() + 256);
    if run.log_truncated {
        body.push_str(&format!(
            "[karajo: the log has {} bytes; below are its last lines (at most 64 KiB). The whole log: {}]\n\n",
            run.log_size, run.log_url
        ));
    }
    // The message ends with a line break of its own (spec 8: the log + CRLF).
    body.push_str(run.log_tail.strip_suffix('\n').unwrap_or(&run.log_tail));
    body
}

/// The last [`WEBHOOK_LOG_LINES`] lines of `tail`, at most [`WEBHOOK_LOG_BYTES`]
/// bytes, and whether anything was left out (of `tail` or before it).
pub fn webhook_tail(run: &RunInfo) -> (String, bool) {
    last_lines(&run.log_tail, run.log_truncated)
}

/// The last [`WEBHOOK_LOG_LINES`] lines of `tail`, at most [`WEBHOOK_LOG_BYTES`]
/// bytes, and whether anything was left out (of `tail`, or before it when
/// `cut_before`).
pub fn last_lines(tail: &str, cut_before: bool) -> (String, bool) {
    let body = tail.strip_suffix('\n').unwrap_or(tail);
    // The n-th line break from the end starts the n-th line from the end.
    let mut start = body
        .rmatch_indices('\n')
        .nth(WEBHOOK_LOG_LINES - 1)
        .map_or(0, |(i, _)| i + 1);
    if tail.len() - start > WEBHOOK_LOG_BYTES {
        let mut cut = tail.len() - WEBHOOK_LOG_BYTES;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        // The first whole line after the cut, or the end of one very long line.
        start = match tail[cut..].find('\n') {
            Some(p) if cut + p + 1 < tail.len() => cut + p + 1,
            _ => cut,
        };
    }
    (tail[start..].to_string(), start > 0 || cut_before)
}

/// The webhook document.
#[derive(Debug, Serialize)]
pub struct WebhookPayload<'a> {
    /// Seconds since the epoch when sent, so that another karajo accepts it as a
    /// signed web hook.
    pub _karajo_epoch: i64,
    /// The `[notif]` name.
    pub notif: &'a str,
    /// `success`, `failed` or `recover`.
    pub event: Event,
    /// `job` or `job_http`.
    pub job_kind: &'a str,
    /// The job id.
    pub job_id: &'a str,
    /// The job name.
    pub job_name: &'a str,
    /// The run's counter.
    pub counter: u64,
    /// `success` or `failed`.
    pub status: &'a str,
    /// `timer`, `webhook` or `api`.
    pub trigger: &'a str,
    /// RFC 3339.
    pub started_at: &'a str,
    /// RFC 3339.
    pub ended_at: &'a str,
    /// Milliseconds.
    pub duration_ms: u64,
    /// The log in the web UI.
    pub log_url: &'a str,
    /// The log's last lines.
    pub log_tail: String,
    /// Earlier lines were left out of `log_tail`.
    pub log_truncated: bool,
}

/// The webhook document of a run or of a monitor's transition.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum WebhookDocument<'a> {
    /// A run's, unchanged from the version before monitors.
    Run(WebhookPayload<'a>),
    /// A monitor's.
    Monitor(MonitorPayload<'a>),
}

/// The webhook document of `pending`, stamped with `now`.
pub fn webhook_payload(pending: &Pending, now: Timestamp) -> WebhookDocument<'_> {
    let (event, run) = match &pending.about {
        About::Run { event, run } => (*event, run),
        About::Monitor(m) => {
            return WebhookDocument::Monitor(notice::webhook_payload(&pending.notif, m, now));
        }
    };
    let (log_tail, log_truncated) = webhook_tail(run);
    WebhookDocument::Run(WebhookPayload {
        _karajo_epoch: now.as_second(),
        notif: &pending.notif,
        event,
        job_kind: &run.job_kind,
        job_id: &run.job_id,
        job_name: &run.job_name,
        counter: run.counter,
        status: &run.status,
        trigger: &run.trigger,
        started_at: &run.started_at,
        ended_at: &run.ended_at,
        duration_ms: run.duration_ms,
        log_url: &run.log_url,
        log_tail,
        log_truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: RunStatus, previous: Option<RunStatus>) -> RunRecord {
        RunRecord {
            kind: JobKind::Exec,
            id: JobId::from_raw("j"),
            name: "J".into(),
            counter: 3,
            status,
            trigger: Trigger::Timer,
            started: Timestamp::from_second(1_700_000_000).unwrap(),
            ended: Timestamp::from_second(1_700_000_002).unwrap(),
            log_path: PathBuf::from("/nonexistent/j.3.failed"),
            previous,
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn targets_follow_the_status_and_the_previous_run() {
        let (s, f, r) = (
            names(&["ok", "both"]),
            names(&["bad"]),
            names(&["both", "back"]),
        );
        let on = NotifyOn {
            success: &s,
            failed: &f,
            recover: &r,
        };
        let t = |status, previous| targets(&record(status, previous), on);
        assert_eq!(t(RunStatus::Failed, None), [("bad".into(), Event::Failed)]);
        assert_eq!(
            t(RunStatus::Success, Some(RunStatus::Success)),
            [
                ("ok".into(), Event::Success),
                ("both".into(), Event::Success)
            ]
        );
        assert_eq!(
            t(RunStatus::Success, Some(RunStatus::Failed)),
            [
                ("both".into(), Event::Recover),
                ("back".into(), Event::Recover),
                ("ok".into(), Event::Success)
            ]
        );
        assert!(t(RunStatus::Canceled, Some(RunStatus::Failed)).is_empty());
    }

    #[test]
    fn subjects_and_log_urls_name_the_kind() {
        let mut run = run_info(&record(RunStatus::Failed, None), "http://k:1/");
        assert_eq!(subject(&run), "job: j: #3: failed");
        assert_eq!(run.log_url, "http://k:1/karajo/job_exec/log?id=j&counter=3");
        assert_eq!(run.duration_ms, 2000);
        assert!(run.log_tail.contains("cannot be read"), "{}", run.log_tail);
        run.job_kind = "job_http".into();
        assert_eq!(subject(&run), "job_http: j: #3: failed");
        assert_eq!(
            log_url("http://h", JobKind::Http, &JobId::from_raw("a b"), 1),
            "http://h/karajo/job_http/log?id=a+b&counter=1"
        );
    }

    #[test]
    fn long_logs_are_cut_at_a_line_with_a_note_and_the_url() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.3.failed");
        let mut text = String::new();
        let mut n = 0;
        while text.len() <= MAIL_LOG_LIMIT + 100 {
            text.push_str(&format!("line {n}\n"));
            n += 1;
        }
        std::fs::write(&path, &text).unwrap();
        let mut rec = record(RunStatus::Failed, None);
        rec.log_path = path.clone();
        let run = run_info(&rec, "http://k");
        assert!(run.log_truncated);
        assert!(run.log_tail.len() <= MAIL_LOG_LIMIT);
        assert!(run.log_tail.starts_with("line "), "cut at a line");
        assert!(run.log_tail.ends_with(&format!("line {}\n", n - 1)));
        let body = mail_body(&run);
        let first = body.lines().next().unwrap();
        assert!(first.contains(&format!("the log has {} bytes", text.len())));
        assert!(first.contains("http://k/karajo/job_exec/log?id=j&counter=3"));
        let (tail, cut) = webhook_tail(&run);
        assert!(cut);
        assert_eq!(tail.lines().count(), WEBHOOK_LOG_LINES);
        assert!(tail.ends_with(&format!("line {}\n", n - 1)));

        std::fs::write(&path, "a\nb\n").unwrap();
        let run = run_info(&rec, "http://k");
        assert!(!run.log_truncated);
        assert_eq!(mail_body(&run), "a\nb");
        assert_eq!(webhook_tail(&run), ("a\nb\n".to_string(), false));
    }

    #[test]
    fn webhook_tails_keep_at_most_16_kib() {
        let mut run = run_info(&record(RunStatus::Failed, None), "http://k");
        run.log_tail = format!("{}\nshort\n", "é".repeat(20_000));
        let (tail, cut) = webhook_tail(&run);
        assert_eq!(tail, "short\n");
        assert!(cut);
        run.log_tail = "é".repeat(20_000);
        let (tail, cut) = webhook_tail(&run);
        assert!(tail.len() <= WEBHOOK_LOG_BYTES && tail.len() > WEBHOOK_LOG_BYTES - 4);
        assert!(cut);
    }
}
