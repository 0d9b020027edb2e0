//! What the service machine asks the rest of karajo to do (monitors spec B.6, B.8,
//! B.9, B.11): save the state, spawn, stop, kill or signal the instance, write and
//! close its log, append to its history, record an event, queue a notification, and
//! answer the request that came in. Effects are data; the scheduler performs them in
//! order (the supervisor the process ones, the store the files).

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::state::{KeyValue, Status};
use crate::config::model::ServiceSignal;
pub use crate::monitor::EventLevel;

/// One thing to do because of an input.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceEffect {
    /// Write [`super::SavedService`] (always first in the list, so the record is on
    /// disk before anything observable happens). `durable`: sync it now (`enabled`,
    /// `run_once`, `cas` or the instance's identity changed); else within a second
    /// (only the instance's log segment moved on, which the log directory also shows).
    SaveState {
        /// Whether the write must be synced before the next effect.
        durable: bool,
    },
    /// Spawn a new instance (run `pre_start`, then the command; monitors spec B.3) and
    /// report `Spawned` or `SpawnFailed`.
    Spawn {
        /// The attempt, counted from 1 since the last fresh start.
        attempt: u32,
        /// The back-off that preceded it, if the policy restarted it.
        after_backoff: Option<Duration>,
    },
    /// Stop what the supervisor holds (a `pre_start`, a spawn in flight, the instance,
    /// or after a crash the orphan the state records): send `signal` to the process
    /// group, then report `Exited` (or `SpawnFailed` for a spawn that never happened).
    /// Idempotent for the supervisor. SIGKILL comes as [`ServiceEffect::Kill`] when
    /// `timeout` has passed.
    Stop {
        /// The service's `stop_signal`.
        signal: ServiceSignal,
        /// The service's `stop_timeout`, for messages: the machine sends `Kill`.
        timeout: Duration,
        /// Why.
        reason: StopReason,
    },
    /// `stop_timeout` passed: SIGKILL to the process group.
    Kill,
    /// The `signal` control: send this signal to the live instance's group.
    SendSignal(ServiceSignal),
    /// A lifecycle line (`=== START …`, monitors spec B.8) for the current instance's
    /// log segment.
    LogLine(String),
    /// Close the current instance's log segment with this status.
    CloseLog(SegmentStatus),
    /// Close a segment left `.running` by a karajo that crashed: append `line`, then
    /// rename it to `status` (a no-op if it is closed already).
    CloseLeftoverLog {
        /// The segment's counter.
        counter: u64,
        /// Its final status.
        status: SegmentStatus,
        /// The last line to append.
        line: String,
    },
    /// Append to `state/service/<id>.history.jsonl`.
    History(HistoryEntry),
    /// Append to the event log.
    Event(ServiceEvent),
    /// Queue a notification.
    Notify(ServiceNotice),
    /// The answer to a control or a ping.
    Reply(Reply),
}

/// Why karajo stops an instance. The first four are requests (the ending is clean and
/// never triggers the policy); the next three are failures; an orphan is neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// The `disable` control (or the configuration's `disabled`).
    Disable,
    /// The `restart` control.
    Restart,
    /// A reload changed a process-defining key.
    Reload,
    /// karajo shuts down (or the service left the configuration).
    Shutdown,
    /// No ping within `ping_timeout` once ready.
    Liveness,
    /// The instance ran for `max_runtime`.
    MaxRuntime,
    /// Not ready within `start_timeout`.
    StartTimeout,
    /// A child-mode instance left alive by a karajo that crashed (monitors spec B.7).
    Orphaned,
}

impl StopReason {
    /// `disable`, `restart`, `reload`, `shutdown`, `liveness`, `max_runtime`,
    /// `start_timeout` or `orphaned`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Restart => "restart",
            Self::Reload => "reload",
            Self::Shutdown => "shutdown",
            Self::Liveness => "liveness",
            Self::MaxRuntime => "max_runtime",
            Self::StartTimeout => "start_timeout",
            Self::Orphaned => "orphaned",
        }
    }

    /// Whether someone asked for the stop: its ending is recorded as `stopped`, its log
    /// closes as `canceled`, and the restart policy stays out of it.
    pub fn is_request(self) -> bool {
        matches!(
            self,
            Self::Disable | Self::Restart | Self::Reload | Self::Shutdown
        )
    }

    /// The history reason of an ending this stop caused.
    pub fn history_reason(self) -> HistoryReason {
        match self {
            Self::Disable | Self::Restart | Self::Reload | Self::Shutdown => HistoryReason::Stopped,
            Self::Liveness => HistoryReason::Liveness,
            Self::MaxRuntime => HistoryReason::MaxRuntime,
            Self::StartTimeout => HistoryReason::StartTimeout,
            Self::Orphaned => HistoryReason::Orphaned,
        }
    }
}

/// How a log segment ends (monitors spec B.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentStatus {
    /// A clean ending on its own.
    Success,
    /// karajo stopped it on request.
    Canceled,
    /// Any failure (including liveness, `max_runtime`, `start_timeout`).
    Failed,
    /// Continued elsewhere: the instance was left running at shutdown.
    Rotated,
}

impl SegmentStatus {
    /// The file-name status word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Canceled => "canceled",
            Self::Failed => "failed",
            Self::Rotated => "rotated",
        }
    }
}

/// One line of the instance history (monitors spec B.9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The instance's UUID; absent when the spawn itself failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The tracked pid; absent when the spawn itself failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// When it was spawned (or the spawn was attempted).
    pub started: Timestamp,
    /// When it became ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<Timestamp>,
    /// Its last ping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    /// When it ended.
    pub stopped: Timestamp,
    /// The exit code; `null` when unknown or ended by a signal.
    pub exit_code: Option<i32>,
    /// The signal name without `SIG`, or empty.
    #[serde(default)]
    pub signal: String,
    /// Why it ended.
    pub reason: HistoryReason,
    /// Whether the ending was clean (monitors spec B.5.2).
    pub clean: bool,
    /// Its log segments.
    #[serde(default)]
    pub counters: Vec<u64>,
    /// From `started` to `stopped`, in nanoseconds.
    #[serde(with = "nanos")]
    pub duration: Duration,
    /// Its key/value map when it ended.
    #[serde(default)]
    pub keyvalue: KeyValue,
}

/// Why an instance ended (monitors spec B.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryReason {
    /// On its own.
    Exited,
    /// By request.
    Stopped,
    /// No ping within `ping_timeout`.
    Liveness,
    /// Ran for `max_runtime`.
    MaxRuntime,
    /// Not ready within `start_timeout`.
    StartTimeout,
    /// A spawn or `pre_start` error.
    StartFailed,
    /// Left by a karajo that crashed, and stopped at start-up.
    Orphaned,
    /// Gone without karajo seeing how: a pid-file process vanished, or the instance
    /// ended while karajo was not running.
    Lost,
}

impl HistoryReason {
    /// The JSON word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exited => "exited",
            Self::Stopped => "stopped",
            Self::Liveness => "liveness",
            Self::MaxRuntime => "max_runtime",
            Self::StartTimeout => "start_timeout",
            Self::StartFailed => "start_failed",
            Self::Orphaned => "orphaned",
            Self::Lost => "lost",
        }
    }
}

/// An entry for the event log (monitors spec §1.4); its `service` is the service's
/// id and its `source` is `service`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEvent {
    /// `service.start`, `service.failed`, ...
    pub kind: EventKind,
    /// One line for people.
    pub message: String,
}

impl ServiceEvent {
    /// The event's level, fixed by its kind.
    pub fn level(&self) -> EventLevel {
        self.kind.level()
    }
}

/// The kinds of service event (monitors spec B.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// An instance was spawned.
    Start,
    /// It became ready.
    Ready,
    /// It has been running for `backoff_reset` after a failure streak.
    Recover,
    /// It ended cleanly on its own.
    Exit,
    /// It ended because karajo was asked to stop it.
    Stopped,
    /// It failed (exit, signal, liveness, a timeout, a spawn error).
    Failed,
    /// A restart is scheduled after a delay.
    Backoff,
    /// karajo gave up.
    Fatal,
    /// A control request (with the request's peer).
    Control,
    /// A crash's orphan was found and stopped.
    Orphan,
    /// A pid-file daemon was adopted after a karajo restart.
    Adopt,
    /// A recorded instance was gone at start-up.
    Lost,
}

impl EventKind {
    /// The dotted name: `service.start`, `service.ready`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "service.start",
            Self::Ready => "service.ready",
            Self::Recover => "service.recover",
            Self::Exit => "service.exit",
            Self::Stopped => "service.stopped",
            Self::Failed => "service.failed",
            Self::Backoff => "service.backoff",
            Self::Fatal => "service.fatal",
            Self::Control => "service.control",
            Self::Orphan => "service.orphan",
            Self::Adopt => "service.adopt",
            Self::Lost => "service.lost",
        }
    }

    /// The level of monitors spec B.11.
    pub fn level(self) -> EventLevel {
        match self {
            Self::Start | Self::Ready | Self::Recover | Self::Exit | Self::Stopped => {
                EventLevel::Info
            }
            Self::Backoff | Self::Control | Self::Adopt => EventLevel::Notice,
            Self::Failed | Self::Orphan | Self::Lost => EventLevel::Warning,
            Self::Fatal => EventLevel::Error,
        }
    }
}

/// A notification to queue (monitors spec §1.5, B.11): subject
/// `service: <id>: <summary>`; the body holds the tail of log segment `counter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNotice {
    /// `failed`, `fatal` or `recover`.
    pub event: NoticeEvent,
    /// The `[notif]` sections to send it through (never empty).
    pub notifs: Vec<String>,
    /// The status before the transition.
    pub previous_status: Status,
    /// Why the instance ended, on `failed` and `fatal`.
    pub reason: Option<HistoryReason>,
    /// The subject after `service: <id>: `, e.g. `#17: failed (exit status 1)` or
    /// `FATAL after 4 failed starts`.
    pub summary: String,
    /// The log segment whose tail goes into the body.
    pub counter: Option<u64>,
}

/// Which moment a notification tells about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeEvent {
    /// The first failure of a streak (`notif_on_failed`).
    Failed,
    /// Entered `fatal` (`notif_on_fatal`).
    Fatal,
    /// A failure streak ended: an instance has been running for `backoff_reset`
    /// (`notif_on_recover`).
    Recover,
}

impl NoticeEvent {
    /// `failed`, `fatal` or `recover`: the webhook document's `event`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::Fatal => "fatal",
            Self::Recover => "recover",
        }
    }
}

/// The answer to a control request or a ping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Done (or started); the CAS after the action.
    Done {
        /// The new CAS.
        cas: u64,
    },
    /// The request's `cas` was not the current one; nothing changed (409
    /// `ERR_SERVICE_CAS`).
    CasMismatch {
        /// The current CAS.
        current: u64,
    },
    /// `signal` with no live process (409 `ERR_SERVICE_NOT_RUNNING`).
    NotRunning,
    /// A ping for an instance that is not the current one; no deadline moved (409
    /// `ERR_SERVICE_STALE`).
    Stale {
        /// The instance the ping named.
        instance: String,
    },
    /// The ping's key/value update would exceed the limits; nothing changed (400
    /// `ERR_SERVICE_BAD_REQUEST`).
    BadRequest(String),
}

/// The answer among `effects`, if the input was a control or a ping.
pub fn reply(effects: &[ServiceEffect]) -> Option<&Reply> {
    effects.iter().find_map(|effect| match effect {
        ServiceEffect::Reply(reply) => Some(reply),
        _ => None,
    })
}

/// `Duration` as integer nanoseconds, the house unit for durations in JSON.
mod nanos {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(value.as_nanos()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_nanos(u64::deserialize(d)?))
    }
}
