//! What the state machine asks the rest of karajo to do (monitors spec A.4.5, A.5):
//! write or close a log file, record an event, queue a notification, answer a ping as
//! ignored. Effects are data; the scheduler performs them, in order, after persisting
//! the state whenever one of them is a transition.

use std::time::Duration;

use crate::job::RunStatus;

use super::state::{DownReason, Status};

/// One thing to do because of a ping, a pause, a resume or the passing of time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorEffect {
    /// A `start` check-in: create `<id>.<counter>.running` with the ping's block.
    OpenRunLog {
        /// The new log's counter.
        counter: u64,
    },
    /// A `log` ping: append its block to the open run's log.
    AppendRunLog {
        /// The open run's counter.
        counter: u64,
    },
    /// Close an open run's log: append the closing text and rename it to `status`.
    CloseRunLog {
        /// The run's counter.
        counter: u64,
        /// `success`, `failed` or `canceled`.
        status: RunStatus,
        /// What closes it: the ping's own block, or a note of karajo's.
        closed_by: ClosedBy,
        /// From the run's start to its close.
        took: Duration,
    },
    /// A check-in that closes no run: one log file, written and named in one step.
    WriteCheckInLog {
        /// The new log's counter.
        counter: u64,
        /// `success` or `failed`.
        status: RunStatus,
    },
    /// A `log` ping with no open run to take it: its body goes to the event log (level
    /// `info`, first KiB).
    StrayLog,
    /// The ping was ignored because the monitor is paused: answer `"ignored":true` and
    /// write no log (an [`EventKind::Ignored`] event follows).
    Ignored,
    /// Append to the event log.
    Event(MonitorEvent),
    /// Queue a notification.
    Notify(MonitorNotice),
}

impl MonitorEffect {
    /// Whether this is a status transition, which must be persisted before anything
    /// observable happens (monitors spec A.4.5).
    pub fn is_transition(&self) -> bool {
        matches!(self, Self::Event(event) if event.kind.is_transition())
    }
}

/// The log counter a ping was written to, for its answer: the log its own block went
/// into, if any.
pub fn ping_counter(effects: &[MonitorEffect]) -> Option<u64> {
    effects.iter().find_map(|effect| match effect {
        MonitorEffect::OpenRunLog { counter }
        | MonitorEffect::AppendRunLog { counter }
        | MonitorEffect::WriteCheckInLog { counter, .. }
        | MonitorEffect::CloseRunLog {
            counter,
            closed_by: ClosedBy::Ping,
            ..
        } => Some(*counter),
        _ => None,
    })
}

/// What closes a run's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClosedBy {
    /// The end check-in being handled: its block is appended.
    Ping,
    /// A line karajo writes itself (a run timeout, a run canceled at the open-run cap,
    /// an outcome karajo could not observe).
    Note(String),
}

/// An entry for the event log (monitors spec §1.4); its `service` is the monitor's id
/// and its `source` is `monitor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorEvent {
    /// `monitor.down`, `monitor.up`, ...
    pub kind: EventKind,
    /// Why the monitor went down, on `monitor.down`.
    pub reason: Option<DownReason>,
    /// One line for people.
    pub message: String,
}

impl MonitorEvent {
    /// The event's level, fixed by its kind.
    pub fn level(&self) -> EventLevel {
        self.kind.level()
    }
}

/// The kinds of monitor event (monitors spec A.4.5 and A.4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `new` → `up`.
    First,
    /// `up` → `late`.
    Late,
    /// → `down`.
    Down,
    /// `late` or `down` → `up`.
    Up,
    /// → `paused`, or a pause's `until` changed.
    Paused,
    /// `paused` → `up` or `new`.
    Resumed,
    /// A deadline that fell while karajo was not running was moved (monitors spec A.7).
    Credit,
    /// A ping was ignored because the monitor is paused.
    Ignored,
}

impl EventKind {
    /// The dotted name: `monitor.first`, `monitor.late`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::First => "monitor.first",
            Self::Late => "monitor.late",
            Self::Down => "monitor.down",
            Self::Up => "monitor.up",
            Self::Paused => "monitor.paused",
            Self::Resumed => "monitor.resumed",
            Self::Credit => "monitor.credit",
            Self::Ignored => "monitor.ignored",
        }
    }

    /// The level of monitors spec A.4.5.
    pub fn level(self) -> EventLevel {
        match self {
            Self::First | Self::Up | Self::Ignored => EventLevel::Info,
            Self::Paused | Self::Resumed => EventLevel::Notice,
            Self::Late | Self::Credit => EventLevel::Warning,
            Self::Down => EventLevel::Error,
        }
    }

    /// Whether the event records a status change.
    pub fn is_transition(self) -> bool {
        !matches!(self, Self::Credit | Self::Ignored)
    }
}

/// The event log's levels (monitors spec §1.4): monitor events use `info`, `notice`,
/// `warning` and `error`.
pub use crate::store::event_log::Level as EventLevel;

/// A notification to queue (monitors spec §1.5): subject
/// `monitor: <id>: <summary>`; the webhook document's `event`, `previous_status` and
/// `reason` come from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorNotice {
    /// `down`, `up` or `late`.
    pub event: NoticeEvent,
    /// The `[notif]` sections to send it through (never empty).
    pub notifs: Vec<String>,
    /// The status before the transition (for a reminder, `down` itself).
    pub previous_status: Status,
    /// Why the monitor is down, on `down`.
    pub reason: Option<DownReason>,
    /// The exit status of an `/<n>` failure, on `down`.
    pub exit_code: Option<u8>,
    /// The subject after `monitor: <id>: `, e.g. `DOWN (no check-in since 02:00:01Z)`
    /// or `UP after 1h5m`.
    pub summary: String,
    /// A `notif_repeat` reminder rather than the transition itself.
    pub reminder: bool,
}

/// Which transition a notification tells about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeEvent {
    /// Entered `down` (or still down: a reminder).
    Down,
    /// Recovered.
    Up,
    /// Entered `late`.
    Late,
}

impl NoticeEvent {
    /// `down`, `up` or `late`: the webhook document's `event`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Down => "down",
            Self::Up => "up",
            Self::Late => "late",
        }
    }
}
