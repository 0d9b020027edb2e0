//! A monitor's runtime state (monitors spec A.4, A.7): its status with what only that
//! status needs (a late notification sent, the outage, the pause), the due time, the
//! last check-in and the open runs. Plain serde data, persisted by the store as
//! `state/monitor/<id>.json`; the rules that change it live in the machine module.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::ping::{NextIn, RunId, Signal};

/// The most runs open at once; a start beyond it closes the oldest as canceled.
pub const MAX_OPEN_RUNS: usize = 16;

/// Everything a monitor remembers between pings and across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorState {
    /// The status, with what only that status needs.
    pub status: Status,
    /// When the status last changed (for `down`, when the outage began).
    pub since: Timestamp,
    /// When the next check-in is due; `None` before the first check-in and while
    /// paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<Timestamp>,
    /// When the last check-in (any signal but `log`) arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ping: Option<Timestamp>,
    /// What the last check-in said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ping_kind: Option<Signal>,
    /// The `next_in` the last check-in carried: it made [`MonitorState::due`], and a
    /// restart credit or a resume reuses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_next_in: Option<NextIn>,
    /// How long the last closed run took (nanoseconds in the file).
    #[serde(
        default,
        with = "optional_nanos",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_duration: Option<Duration>,
    /// The open runs, oldest first, at most [`MAX_OPEN_RUNS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<OpenRun>,
    /// The counter of the last log file; the next one takes `counter + 1`.
    #[serde(default)]
    pub counter: u64,
}

impl MonitorState {
    /// A monitor first seen at `at`: `new`, nothing due.
    pub fn new(at: Timestamp) -> Self {
        Self {
            status: Status::New,
            since: at,
            due: None,
            last_ping: None,
            last_ping_kind: None,
            last_next_in: None,
            last_duration: None,
            runs: Vec::new(),
            counter: 0,
        }
    }

    /// The due time to show (`next_due`): none while a run is open or while paused.
    pub fn next_due(&self) -> Option<Timestamp> {
        match self.status {
            Status::Paused(_) => None,
            _ if !self.runs.is_empty() => None,
            _ => self.due,
        }
    }
}

/// A monitor's status (monitors spec §0 row 4). An open run is an attribute
/// ([`MonitorState::runs`]), not a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No check-in yet (or resumed before one): never late or down by time.
    New,
    /// Checked in on time.
    Up,
    /// Past its due time, within `grace`.
    Late {
        /// Whether entering `late` was notified (`notif_on_late` named someone); the
        /// recovery is notified only then.
        notified: bool,
    },
    /// Timed out, failed, or a run overran `max_runtime`.
    Down(Outage),
    /// Paused through the API.
    Paused(PauseUntil),
}

impl Status {
    /// The JSON word: `new`, `up`, `late`, `down` or `paused`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Up => "up",
            Self::Late { .. } => "late",
            Self::Down(_) => "down",
            Self::Paused(_) => "paused",
        }
    }

    /// Whether the monitor is paused.
    pub fn is_paused(self) -> bool {
        matches!(self, Self::Paused(_))
    }
}

/// What a `down` monitor remembers about its outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outage {
    /// Why it went down.
    pub reason: DownReason,
    /// The exit status of an `/<n>` failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<u8>,
    /// When the down notification was last due (the transition or the last
    /// `notif_repeat` reminder); the next reminder is one `notif_repeat` later.
    pub last_notice: Timestamp,
}

/// Why a monitor went down (`down_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DownReason {
    /// No check-in by `due + grace`.
    Timeout,
    /// A `/fail` or `/1..255` check-in.
    Fail,
    /// A run got no end signal within `max_runtime`.
    RunTimeout,
}

impl DownReason {
    /// `timeout`, `fail` or `run_timeout`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Fail => "fail",
            Self::RunTimeout => "run_timeout",
        }
    }
}

/// How long a pause lasts (`until`; monitors spec A.4.4). In JSON: `"ping"`,
/// `"resume"` or an RFC 3339 time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PauseUntil {
    /// The next success check-in resumes the monitor; other pings are recorded but
    /// change no status.
    Ping,
    /// Pings are ignored until the resume API is called.
    Resume,
    /// A maintenance window: pings are ignored until then, and then the monitor
    /// resumes by itself.
    Time(Timestamp),
}

impl PauseUntil {
    /// The default `until`: `resume` for a monitor with `manual_resume`, else `ping`.
    pub fn default_for(manual_resume: bool) -> Self {
        if manual_resume {
            Self::Resume
        } else {
            Self::Ping
        }
    }

    /// Reads `ping`, `resume` or an RFC 3339 time; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ping" => Some(Self::Ping),
            "resume" => Some(Self::Resume),
            time => time.parse().ok().map(Self::Time),
        }
    }
}

impl TryFrom<String> for PauseUntil {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text).ok_or_else(|| format!("invalid pause until {text:?}"))
    }
}

impl From<PauseUntil> for String {
    fn from(until: PauseUntil) -> Self {
        match until {
            PauseUntil::Ping => "ping".to_string(),
            PauseUntil::Resume => "resume".to_string(),
            PauseUntil::Time(at) => at.to_string(),
        }
    }
}

/// A run that a `start` opened and no end check-in has closed yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenRun {
    /// The `rid` of the start, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<RunId>,
    /// When the start arrived.
    pub started: Timestamp,
    /// The counter of its `<id>.<n>.running` log.
    pub counter: u64,
}

/// `Option<Duration>` as integer nanoseconds, the house unit for durations in JSON.
mod optional_nanos {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_nanos))
    }
}
