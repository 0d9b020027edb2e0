//! Supervised services (monitors spec Part B), the pure part: karajo spawns a
//! long-running command, watches it and restarts it by policy. This room owns a
//! service's state ([`ServiceState`], whose persisted part is [`SavedService`]) and the
//! state machine that changes it ([`step`], [`next_deadline`]): start-up after a crash
//! or a clean stop, the controls with their CAS, readiness and liveness, clean and
//! failed endings, back-off, `fatal`, run-once and shutdown. It answers every
//! [`Input`] with [`ServiceEffect`]s: what to save, spawn, stop, kill or signal, the
//! lifecycle lines of the instance log, history entries, events, notifications and the
//! reply to the request. It reads no clock, spawns no process, touches no file and
//! sleeps nowhere: time is an argument, ids and tokens are the caller's, and the
//! scheduler, the supervisor (`exec`) and the store perform the effects. The
//! configuration is [`crate::config::model::ServiceSpec`]; what the machine reads of it is
//! [`crate::config::model::ServicePolicy`].

mod effect;
mod input;
mod machine;
mod state;

#[cfg(test)]
mod tests;

pub use self::effect::{
    EventKind, EventLevel, HistoryEntry, HistoryReason, NoticeEvent, Reply, SegmentStatus,
    ServiceEffect, ServiceEvent, ServiceNotice, StopReason, reply,
};
pub use self::input::{Control, Input, Leftover, PingUpdate, SpawnedInstance};
pub use self::machine::{
    CLEAN_SIGNALS, KEYVALUE_MAX_BYTES, KEYVALUE_MAX_KEYS, STATUS_TEXT_MAX_CHARS, backoff_delay,
    is_clean_exit, next_deadline, step,
};
pub use self::state::{
    InstanceRecord, InstanceToken, KeyValue, LastExit, RETIRED_TOKENS, SavedService, ServiceState,
    Status, Stop, StopTarget, Watch,
};
