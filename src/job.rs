//! Domain types that every room shares: job identifiers, job kinds, run statuses and
//! triggers. Pure data with no IO; the scheduler, store, exec and http rooms all speak
//! in these types, so they live apart from any one of them.

use std::fmt;

/// A job's identifier, derived from its configured name by [`JobId::from_name`]
/// (spec 2.7). It names the job's directories, its log files and its API entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// Normalises a job name the way karajo (Go) does: ASCII letters are lower-cased,
    /// ASCII digits, `-` and `_` are kept, every other byte (each byte of a multi-byte
    /// character too) becomes `_`; an empty result is `_`, and a result that starts with
    /// a digit or `-` gets a `_` in front.
    pub fn from_name(name: &str) -> Self {
        let mut id = String::with_capacity(name.len() + 1);
        for byte in name.bytes() {
            let c = match byte {
                b'A'..=b'Z' => (byte + 32) as char,
                b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => byte as char,
                _ => '_',
            };
            id.push(c);
        }
        match id.bytes().next() {
            None => id.push('_'),
            Some(b'0'..=b'9' | b'-') => id.insert(0, '_'),
            Some(_) => {}
        }
        Self(id)
    }

    /// Wraps an already-normalised identifier, as read back from a URL or a log file
    /// name. No normalisation happens here.
    pub fn from_raw(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The two kinds of job the original knows. The kind names the directories under
/// `var/lib/karajo/` and `var/log/karajo/` and the word in every log line prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobKind {
    /// `[job "..."]`: shell commands or a registered Rust function.
    Exec,
    /// `[job.http "..."]`: one HTTP request per run.
    Http,
    /// `[monitor "..."]`: a heartbeat monitor. Its "runs" are check-ins that work
    /// running elsewhere sends; karajo starts nothing for it.
    Monitor,
    /// `[service "..."]`: a supervised long-running command. Its "runs" are the log
    /// segments of its instances.
    Service,
}

impl JobKind {
    /// Every kind, in the order they are listed (command jobs first).
    pub const ALL: [JobKind; 4] = [Self::Exec, Self::Http, Self::Monitor, Self::Service];

    /// The kind whose [`JobKind::as_str`] is `word` (`job`, `job_http`).
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == word)
    }

    /// `job_exec` or `job_http`: the path segment of the kind's API and web UI routes.
    pub fn route(self) -> &'static str {
        match self {
            Self::Exec => "job_exec",
            Self::Http => "job_http",
            Self::Monitor => "monitor",
            Self::Service => "service",
        }
    }

    /// Whether karajo before 0.8 kept this kind's log in one file where the log
    /// directory now is (HTTP jobs did).
    pub fn had_log_file(self) -> bool {
        match self {
            Self::Exec => false,
            Self::Http => true,
            Self::Monitor | Self::Service => false,
        }
    }

    /// `job` or `job_http`: the directory name and the log line word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exec => "job",
            Self::Http => "job_http",
            Self::Monitor => "monitor",
            Self::Service => "service",
        }
    }

    /// `job` or `job.http`: the word of the configuration section header.
    pub fn section(self) -> &'static str {
        match self {
            Self::Exec => "job",
            Self::Http => "job.http",
            Self::Monitor => "monitor",
            Self::Service => "service",
        }
    }

    /// `command job` or `HTTP job`, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Exec => "command job",
            Self::Http => "HTTP job",
            Self::Monitor => "monitor",
            Self::Service => "service",
        }
    }

    /// `Command job` or `HTTP job`, for headings.
    pub fn title(self) -> &'static str {
        match self {
            Self::Exec => "Command job",
            Self::Http => "HTTP job",
            Self::Monitor => "Monitor",
            Self::Service => "Service",
        }
    }

    /// Whether runs of this kind take a `max_job_running` slot (command jobs only, as
    /// in the original).
    pub fn needs_slot(self) -> bool {
        match self {
            Self::Exec => true,
            Self::Http | Self::Monitor | Self::Service => false,
        }
    }

    /// Whether a `.running` log found at start-up is a run that ended with the karajo
    /// that started it, to be closed as `failed`. A monitor's open run outlives a
    /// restart: the work runs elsewhere, and the restart rule decides (monitors spec
    /// A.7). A service's running segment is closed by its supervisor, which first
    /// decides whether the instance is an orphan to stop or a daemon to adopt (B.7).
    pub fn closes_interrupted_runs(self) -> bool {
        match self {
            Self::Exec | Self::Http => true,
            Self::Monitor | Self::Service => false,
        }
    }

    /// The status a job of this kind takes when resumed, if resuming resets it: the
    /// original resets a resumed HTTP job to `started` (spec 6.4).
    pub fn status_on_resume(self) -> Option<RunStatus> {
        match self {
            Self::Exec => None,
            Self::Http => Some(RunStatus::Started),
            Self::Monitor | Self::Service => None,
        }
    }
}

/// A job's identity across kinds: a command job and an HTTP job may share an id (they
/// live in different directories).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey {
    /// Command job or HTTP job.
    pub kind: JobKind,
    /// The job's id.
    pub id: JobId,
}

impl JobKey {
    /// The key of command job `id`.
    pub fn exec(id: JobId) -> Self {
        Self {
            kind: JobKind::Exec,
            id,
        }
    }

    /// The key of HTTP job `id`.
    pub fn http(id: JobId) -> Self {
        Self {
            kind: JobKind::Http,
            id,
        }
    }
}

impl fmt::Display for JobKey {
    /// `job/<id>` or `job_http/<id>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.as_str(), self.id)
    }
}

/// The status of a job or of one run (spec 6.4). Only `success`, `failed`,
/// `canceled` and `paused` end a log file name written by the original; `running` is
/// also on disk here while a run streams its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Never ran, or an HTTP job just resumed.
    Started,
    /// A run is in progress.
    Running,
    /// Every command exited 0 (or the request got a 2xx).
    Success,
    /// A command failed, timed out, or the run was interrupted by a crash.
    Failed,
    /// Cancelled through the API or stopped at shutdown.
    Canceled,
    /// The job is paused.
    Paused,
    /// A service's log segment that reached `log_max_size`; its instance goes on in
    /// the next counter.
    Rotated,
}

impl RunStatus {
    /// The status word used in JSON and in log file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Running => "running",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Paused => "paused",
            Self::Rotated => "rotated",
        }
    }

    /// Parses a status word; `None` for anything else.
    pub fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "started" => Self::Started,
            "running" => Self::Running,
            "success" => Self::Success,
            "failed" => Self::Failed,
            "canceled" => Self::Canceled,
            "paused" => Self::Paused,
            "rotated" => Self::Rotated,
            _ => return None,
        })
    }

    /// Whether a run that ended with this status is over (not `running`/`started`).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Success | Self::Failed | Self::Canceled | Self::Paused | Self::Rotated
        )
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What started a run; commands see it as `KARAJO_TRIGGER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// The job's interval or schedule came due.
    Timer,
    /// A signed `POST /karajo/api/job_exec/run/<path>`.
    Webhook,
    /// The library API or a future UI/CLI "run now".
    Api,
    /// Another attempt of a failed run (`retry`).
    Retry,
    /// The end of another job's run (`on_success`, `on_failure`).
    Chain,
    /// A timer slot missed while karajo was down (`catch_up`).
    CatchUp,
}

impl Trigger {
    /// Every trigger, in the order the web UI lists them.
    pub const ALL: [Self; 6] = [
        Self::Timer,
        Self::Webhook,
        Self::Api,
        Self::Retry,
        Self::Chain,
        Self::CatchUp,
    ];

    /// `timer`, `webhook`, `api`, `retry`, `chain` or `catch-up`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timer => "timer",
            Self::Webhook => "webhook",
            Self::Api => "api",
            Self::Retry => "retry",
            Self::Chain => "chain",
            Self::CatchUp => "catch-up",
        }
    }
}

/// Why a run started, beyond its [`Trigger`]: which attempt of which run it retries,
/// which run it follows in a chain, which missed slot it catches up. The run's log
/// says it in its first lines, and its commands see it in their environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOrigin {
    /// Attempt `attempt` of `attempts` of run `first` (the first attempt's counter).
    Retry {
        /// This attempt's number, from 2.
        attempt: u32,
        /// Every attempt allowed: `retry + 1`.
        attempts: u32,
        /// The counter of the first attempt.
        first: u64,
    },
    /// Started by the end of run `counter` of job `job`.
    Chain {
        /// The parent job's id.
        job: JobId,
        /// The parent run's counter.
        counter: u64,
        /// How the parent run ended.
        status: RunStatus,
    },
    /// Catches up the timer slot `slot`, missed while karajo was down.
    CatchUp {
        /// The missed slot.
        slot: jiff::Timestamp,
    },
}

impl RunOrigin {
    /// The log line that says it: `=== RETRY 2/3 of #41`, `=== CHAIN: after build #12
    /// (success)`, `=== CATCH-UP: slot 2026-11-30T03:00:00Z`.
    pub fn log_line(&self) -> String {
        match self {
            Self::Retry {
                attempt,
                attempts,
                first,
            } => format!("=== RETRY {attempt}/{attempts} of #{first}"),
            Self::Chain {
                job,
                counter,
                status,
            } => format!("=== CHAIN: after {job} #{counter} ({})", status.as_str()),
            Self::CatchUp { slot } => format!("=== CATCH-UP: slot {slot}"),
        }
    }

    /// The environment it gives the run's commands.
    pub fn env(&self) -> Vec<(String, String)> {
        match self {
            Self::Retry {
                attempt,
                attempts,
                first,
            } => vec![
                ("KARAJO_RETRY_ATTEMPT".into(), attempt.to_string()),
                ("KARAJO_RETRY_ATTEMPTS".into(), attempts.to_string()),
                ("KARAJO_RETRY_OF".into(), first.to_string()),
            ],
            Self::Chain {
                job,
                counter,
                status,
            } => vec![
                ("KARAJO_PARENT_JOB".into(), job.to_string()),
                ("KARAJO_PARENT_COUNTER".into(), counter.to_string()),
                ("KARAJO_PARENT_STATUS".into(), status.as_str().into()),
            ],
            Self::CatchUp { slot } => vec![("KARAJO_CATCH_UP_SLOT".into(), slot.to_string())],
        }
    }
}

/// How a command job's webhook proves who sent it (spec 5.1, `auth_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AuthKind {
    /// Lower-case hex HMAC-SHA256 of the raw body in the job's `header_sign` header.
    #[default]
    HmacSha256,
    /// GitHub's `X-Hub-Signature-256: sha256=<hex>` (or legacy `X-Hub-Signature: sha1=<hex>`).
    Github,
    /// SourceHut's Ed25519 `X-Payload-Signature` over the body followed by `X-Payload-Nonce`.
    Sourcehut,
}

impl AuthKind {
    /// The configuration and JSON word: `hmac-sha256`, `github` or `sourcehut`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha256 => "hmac-sha256",
            Self::Github => "github",
            Self::Sourcehut => "sourcehut",
        }
    }

    /// Parses the configuration word, case-insensitively; `None` for anything else.
    pub fn parse(word: &str) -> Option<Self> {
        match word.to_ascii_lowercase().as_str() {
            "hmac-sha256" => Some(Self::HmacSha256),
            "github" => Some(Self::Github),
            "sourcehut" => Some(Self::Sourcehut),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_normalise_as_the_original() {
        let cases = [
            ("Test job success", "test_job_success"),
            ("Hello World", "hello_world"),
            ("interval-1m", "interval-1m"),
            ("1-d", "_1-d"),
            ("-x", "_-x"),
            ("_id.1", "_id_1"),
            (".123 ABC def", "_123_abc_def"),
            ("⌘", "___"),
            ("", "_"),
        ];
        for (name, id) in cases {
            assert_eq!(JobId::from_name(name).as_str(), id, "name {name:?}");
        }
    }

    #[test]
    fn kind_words_round_trip() {
        for kind in JobKind::ALL {
            assert_eq!(JobKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(JobKind::parse("job.http"), None);
        assert!(JobKind::Exec.needs_slot() && !JobKind::Http.needs_slot());
    }

    #[test]
    fn status_words_round_trip() {
        for s in [
            RunStatus::Started,
            RunStatus::Running,
            RunStatus::Success,
            RunStatus::Failed,
            RunStatus::Canceled,
            RunStatus::Paused,
        ] {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(RunStatus::parse("fail"), None);
    }
}
