//! What one ping says, read from its URL (monitors spec A.3.1): which monitor, which
//! [`Signal`], and its `rid` and `next_in` parameters, each refused with a [`BadPing`]
//! that names the field. No HTTP here: the web room hands over the rest of the path and
//! the query values as text.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The most characters of a refused value quoted back in a [`BadPing`] message.
const QUOTED_MAX: usize = 64;

/// The longest `rid`.
pub const RID_MAX_LEN: usize = 64;

/// The largest `next_in`, in seconds: 366 days.
pub const NEXT_IN_MAX_SECONDS: u32 = 31_622_400;

/// What a ping reports. `Exit(0)` is a success; `Exit(1..=255)` a failure with that
/// exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// `/start`: a run began.
    Start,
    /// The bare path: success.
    Success,
    /// `/fail`: failure.
    Fail,
    /// `/<0-255>`: an exit status.
    Exit(u8),
    /// `/log`: text for the open run's log; not a check-in.
    Log,
    /// A watchTower pulse: a success that carries `next_in`.
    Pulse,
}

impl Signal {
    /// Whether the ping says something about the monitored work (all but `log`).
    pub fn is_check_in(self) -> bool {
        !matches!(self, Self::Log)
    }

    /// Whether the ping reports success: plain, `/0` or a pulse.
    pub fn is_success(self) -> bool {
        matches!(self, Self::Success | Self::Exit(0) | Self::Pulse)
    }

    /// Whether the ping reports failure: `/fail` or `/1` to `/255`.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Fail) || matches!(self, Self::Exit(code) if code > 0)
    }

    /// The exit status an `/<n>` ping carried.
    pub fn exit_code(self) -> Option<u8> {
        match self {
            Self::Exit(code) => Some(code),
            _ => None,
        }
    }

    /// The JSON word of `last_ping_kind`: `start`, `success`, `fail`, `exit`, `log` or
    /// `pulse`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Success => "success",
            Self::Fail => "fail",
            Self::Exit(_) => "exit",
            Self::Log => "log",
            Self::Pulse => "pulse",
        }
    }
}

impl fmt::Display for Signal {
    /// The word of a log block header (monitors spec A.5): `START`, `SUCCESS`, `FAIL`,
    /// `EXIT 3`, `LOG` or `PULSE`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Start => f.write_str("START"),
            Self::Success => f.write_str("SUCCESS"),
            Self::Fail => f.write_str("FAIL"),
            Self::Exit(code) => write!(f, "EXIT {code}"),
            Self::Log => f.write_str("LOG"),
            Self::Pulse => f.write_str("PULSE"),
        }
    }
}

/// A ping that names a monitor but cannot be taken: 400 `ERR_MONITOR_BAD_PING`, whose
/// message is `invalid ping: ` and this text. Refused values are quoted with escapes
/// and cut at 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadPing {
    /// `rid` is empty, too long or has a character outside `[A-Za-z0-9._-]`.
    #[error("rid {0:?} is invalid: expected 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-'")]
    Rid(String),
    /// `next_in` is not whole seconds from 1 to 31622400.
    #[error("next_in {0:?} is invalid: expected whole seconds from 1 to 31622400")]
    NextIn(String),
    /// An all-digits last segment above 255.
    #[error("exit status {0} is invalid: expected 0 to 255")]
    ExitStatus(String),
}

impl BadPing {
    /// The refused field: `rid`, `next_in` or `exit status`.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Rid(_) => "rid",
            Self::NextIn(_) => "next_in",
            Self::ExitStatus(_) => "exit status",
        }
    }
}

/// `text` cut to [`QUOTED_MAX`] characters, with `…` when cut.
fn quoted(text: &str) -> String {
    match text.char_indices().nth(QUOTED_MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// A run ID (`rid`): 1 to 64 characters of `[A-Za-z0-9._-]`, so any short ID works,
/// `$KARAJO_JOB_COUNTER` included (healthchecks insists on a UUID).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(String);

impl RunId {
    /// Checks a `rid` value.
    pub fn parse(text: &str) -> Result<Self, BadPing> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
        if (1..=RID_MAX_LEN).contains(&text.len()) && text.bytes().all(allowed) {
            Ok(Self(text.to_string()))
        } else {
            Err(BadPing::Rid(quoted(text)))
        }
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RunId {
    type Error = BadPing;

    fn try_from(text: String) -> Result<Self, BadPing> {
        Self::parse(&text)
    }
}

impl From<RunId> for String {
    fn from(rid: RunId) -> Self {
        rid.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `next_in`: whole seconds from 1 to 31622400 until the next check-in is due, for this
/// check-in only (watchTower's `nextIn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct NextIn(u32);

impl NextIn {
    /// Checks a `next_in` value: ASCII digits only (no sign, no unit).
    pub fn parse(text: &str) -> Result<Self, BadPing> {
        let refused = || BadPing::NextIn(quoted(text));
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refused());
        }
        let seconds = text.parse::<u32>().map_err(|_| refused())?;
        Self::from_seconds(seconds).ok_or_else(refused)
    }

    /// `seconds` when it is in range.
    pub fn from_seconds(seconds: u32) -> Option<Self> {
        (1..=NEXT_IN_MAX_SECONDS)
            .contains(&seconds)
            .then_some(Self(seconds))
    }

    /// The number of seconds.
    pub fn seconds(self) -> u32 {
        self.0
    }

    /// As a duration.
    pub fn duration(self) -> Duration {
        Duration::from_secs(u64::from(self.0))
    }
}

impl TryFrom<u32> for NextIn {
    type Error = BadPing;

    fn try_from(seconds: u32) -> Result<Self, BadPing> {
        Self::from_seconds(seconds).ok_or_else(|| BadPing::NextIn(seconds.to_string()))
    }
}

impl From<NextIn> for u32 {
    fn from(next_in: NextIn) -> Self {
        next_in.0
    }
}

/// Why a ping URL names no check-in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PingRouteError {
    /// No monitor has this path: 404 `ERR_MONITOR_NOT_FOUND`, answered before auth.
    #[error("monitor not found: {0}")]
    NotFound(String),
    /// A monitor's path followed by an exit status above 255: 400.
    #[error("invalid ping: {0}")]
    BadPing(BadPing),
}

/// The ping paths of a set of monitors, for resolving the rest of a ping URL (after
/// `/karajo/api/monitor/ping/`) to a monitor and a signal. Paths compare without regard
/// to ASCII case, as job web hook paths do. `K` is whatever the caller finds a monitor
/// by (an id, an index).
#[derive(Debug, Clone)]
pub struct PingRoutes<K> {
    by_path: HashMap<String, K>,
}

impl<K> Default for PingRoutes<K> {
    fn default() -> Self {
        Self {
            by_path: HashMap::new(),
        }
    }
}

impl<K> PingRoutes<K> {
    /// Routes for `(path, key)` pairs; paths are the cleaned form of the configuration
    /// (`/a/b`), which config validation keeps unique and free of signal endings.
    pub fn new<P: AsRef<str>>(routes: impl IntoIterator<Item = (P, K)>) -> Self {
        let by_path = routes
            .into_iter()
            .map(|(path, key)| (path.as_ref().to_ascii_lowercase(), key))
            .collect();
        Self { by_path }
    }

    /// Resolves the rest of a ping URL (monitors spec A.3.1), slashes at either end
    /// ignored: the whole of it is a monitor's path (success); or its last segment
    /// follows a monitor's path and is `start`, `fail`, `log` (any case) or an exit
    /// status of 0 to 255. An all-digits segment above 255 after a monitor's path is
    /// [`BadPing::ExitStatus`]; anything else is not found.
    pub fn resolve(&self, rest: &str) -> Result<(&K, Signal), PingRouteError> {
        let path = format!("/{}", rest.trim_matches('/')).to_ascii_lowercase();
        if let Some(key) = self.by_path.get(&path) {
            return Ok((key, Signal::Success));
        }
        let not_found = || PingRouteError::NotFound(path.clone());
        let (prefix, last) = path.rsplit_once('/').ok_or_else(not_found)?;
        let key = self.by_path.get(prefix).ok_or_else(not_found)?;
        let signal = match last {
            "start" => Signal::Start,
            "fail" => Signal::Fail,
            "log" => Signal::Log,
            digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                let code = digits
                    .parse::<u8>()
                    .map_err(|_| PingRouteError::BadPing(BadPing::ExitStatus(quoted(digits))))?;
                Signal::Exit(code)
            }
            _ => return Err(not_found()),
        };
        Ok((key, signal))
    }
}
