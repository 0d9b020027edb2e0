//! What can happen to a service (monitors spec B.5.4 "events"): karajo's start-up, the
//! controls of the API, what the supervisor reports about the instance, pings, a
//! reload, karajo's shutdown, and time passing. Plain data that the scheduler hands to
//! [`super::step`] together with the time it happened.

use crate::config::model::ServiceSignal;

use super::state::{InstanceToken, KeyValue, Watch};

/// One thing that happened to a service.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// karajo started (monitors spec B.7), on a state built by
    /// [`super::ServiceState::restored`]; `found` is what became of the instance the
    /// saved state records. An enabled service (or one with a run-once still owed)
    /// starts unless an instance was adopted or an orphan must be stopped first.
    Boot {
        /// The recorded instance, as checked in `/proc`.
        found: Leftover,
    },
    /// A control request (monitors spec B.10).
    Control {
        /// What is asked.
        control: Control,
        /// The request's `cas=` precondition, if any.
        cas: Option<u64>,
        /// Who asked (the request's peer), for the event log.
        by: String,
    },
    /// The supervisor spawned the instance (after its `pre_start`s).
    Spawned(SpawnedInstance),
    /// A `pre_start` failed, or the spawn itself (missing binary, bad user); also the
    /// answer to a `Stop` that came before the spawn.
    SpawnFailed {
        /// What went wrong, for the log and the notification.
        why: String,
    },
    /// Pid-file mode: the pid file names a verified process (first found, or changed).
    Tracked {
        /// The process.
        pid: u32,
        /// Its process group.
        pgid: u32,
        /// Field 22 of its `/proc/<pid>/stat`.
        starttime: u64,
    },
    /// `READY=1` on the notify socket, from the current instance's process group.
    ReadyNotify,
    /// A service ping (HTTP with a token that [`super::ServiceState::token_owner`]
    /// resolved, or `WATCHDOG=1` on the notify socket). Pings never change the CAS.
    Ping {
        /// The instance the token belongs to.
        instance: String,
        /// What the ping's body says.
        update: PingUpdate,
    },
    /// `STATUS=<text>` on the notify socket.
    StatusText(String),
    /// The tracked process ended.
    Exited {
        /// Its exit code; `None` when a signal ended it, or in pid-file mode.
        exit_code: Option<i32>,
        /// The signal that ended it, without `SIG` (`KILL`, `SEGV`).
        signal: Option<String>,
        /// Whether it dumped core.
        core_dumped: bool,
    },
    /// The instance's log reached `log_max_size` and continues in segment `segment`.
    LogRotated {
        /// The new segment's counter.
        segment: u64,
    },
    /// Time passed: whatever deadline [`super::next_deadline`] named is due.
    Tick,
    /// karajo shuts down (monitors spec B.6), or the service left the configuration.
    Shutdown {
        /// `on_exit = leave` with a pid file: the instance keeps running and its
        /// segment closes as `rotated`.
        leave_running: bool,
    },
    /// A reload kept the service; the new policy is the one passed to
    /// [`super::step`] from now on (monitors spec B.7).
    Reconfigure {
        /// [`crate::config::model::ServiceSpec::respawn_needed`]: a process-defining key
        /// changed, so a live instance is stopped and started again, without back-off.
        respawn: bool,
        /// The configuration's `disabled` key changed: the new `enabled`.
        enabled: Option<bool>,
    },
}

/// What the start-up check found of the instance a saved state records (monitors spec
/// B.7 step 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    /// No instance is recorded.
    Nothing,
    /// It is dead, or its pid now belongs to another process (start time or boot id
    /// differ).
    Gone,
    /// A child-mode instance still alive: an orphan of a crash, to be stopped before a
    /// new one starts.
    Orphan,
    /// A verified pid-file daemon: adopted as `running`. The caller opened log segment
    /// `segment` for it (and closed the old one as `rotated` if it was still open).
    Adopted {
        /// The new segment's counter.
        segment: u64,
    },
}

/// A control request's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// `enable`.
    Enable,
    /// `disable`.
    Disable,
    /// `restart`.
    Restart,
    /// `run_once on=1` / `on=0`.
    RunOnce(bool),
    /// `signal=…` to the live instance.
    Signal(ServiceSignal),
}

impl Control {
    /// The API word, for events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enable => "enable",
            Self::Disable => "disable",
            Self::Restart => "restart",
            Self::RunOnce(true) => "run_once on",
            Self::RunOnce(false) => "run_once off",
            Self::Signal(_) => "signal",
        }
    }
}

/// A freshly spawned instance, as the supervisor reports it. The caller generated the
/// UUID and the token before spawning (they are in the instance's environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnedInstance {
    /// Its UUID v7.
    pub instance: String,
    /// Its ping token; only its hash is kept.
    pub token: InstanceToken,
    /// The spawned process.
    pub pid: u32,
    /// Its process group (equal to `pid`: a new session).
    pub pgid: u32,
    /// Field 22 of `/proc/<pid>/stat`.
    pub starttime: u64,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// The counter of its first log segment.
    pub counter: u64,
    /// How it is watched (a pid file or not).
    pub watch: Watch,
    /// The service's `keyvalue_clear`: start with an empty key/value map.
    pub keyvalue_clear: bool,
}

/// What a ping's JSON body says (monitors spec B.4.4), already parsed and checked for
/// its own size by the HTTP layer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PingUpdate {
    /// A new `status_text`.
    pub status_text: Option<String>,
    /// Keys to merge into (or, with `keyvalue_replace`, replace) the map.
    pub keyvalue: Option<KeyValue>,
    /// Replace the map instead of merging.
    pub keyvalue_replace: bool,
}
