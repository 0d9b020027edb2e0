//! Heartbeat monitors (monitors spec Part A), the pure part: work that runs elsewhere
//! pings karajo, and a monitor turns `late` or `down` when a ping is missing or says
//! the work failed. This room owns the meaning of a ping's URL ([`PingRoutes`],
//! [`RunId`], [`NextIn`]), the due-time rule ([`due_after`]), a monitor's runtime
//! state ([`MonitorState`]) and the state machine that changes it ([`check_in`],
//! [`advance`], [`pause`], [`resume`], [`restart`], [`reconfigure`],
//! [`next_deadline`]), which answers with [`MonitorEffect`]s, and the monitors
//! watchTower pulses create ([`Pulse`], [`pulse_spec`]). It reads no clock,
//! touches no file and sleeps nowhere: time is an argument, and the scheduler, the
//! store, the event log and the notifier perform the effects. The configuration of a
//! monitor is [`crate::config::MonitorSpec`], and what the machine reads of it is
//! [`crate::config::MonitorRules`].

mod due;
mod effect;
mod machine;
mod ping;
mod pulse;
mod state;

#[cfg(test)]
mod tests;

pub use self::due::{due_after, early_tolerance_at};
pub use self::effect::{
    ClosedBy, EventKind, EventLevel, MonitorEffect, MonitorEvent, MonitorNotice, NoticeEvent,
    ping_counter,
};
pub use self::machine::{
    Ping, advance, check_in, next_deadline, pause, reconfigure, restart, resume,
};
pub use self::ping::{
    BadPing, NEXT_IN_MAX_SECONDS, NextIn, PingRouteError, PingRoutes, RID_MAX_LEN, RunId, Signal,
};
pub use self::pulse::{Pulse, PulseSpec, pulse_spec};
pub use self::state::{
    DownReason, MAX_OPEN_RUNS, MonitorState, OpenRun, Outage, PauseUntil, Status,
};
