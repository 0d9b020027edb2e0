//! karajo runs jobs for servers: shell commands (or Rust functions) on an interval or a
//! calendar schedule, and on signed web hooks from GitHub, SourceHut or any client
//! that signs with HMAC-SHA256. Every run has a log file. It is a drop-in replacement
//! for karajo (Go): same configuration files, directory layout, API and log files.
//!
//! The rooms: [`config`] (pure: INI dialect and typed model), [`schedule`] (pure: next
//! run times), [`job`] (shared domain types), [`auth`] (pure: signatures and replay
//! rules), [`store`] (files under `dir_base/var`), [`exec`] (runs one job),
//! [`scheduler`] (the one owner of runtime state), [`notify`] (mail and web hook
//! notifications), [`metrics`] (Prometheus counters), [`redact`] (pure: which header
//! values and URL parts are never shown), [`suggest`] (pure: "did you mean" for
//! configuration messages and job ids), [`percent`] (pure: percent-decoding),
//! [`monitor`] (pure: heartbeat monitors' ping routes, state and state machine), [`web`]
//! (the original's API and the web UI's pages in one router), [`daemon`] (the
//! composition root), [`init`] (karajo as PID 1: reaps orphans, passes signals on),
//! [`client`] (the typed client of a server), [`cli`] (the
//! `karajo` command line) and [`cluster`] (cluster mode on NATS JetStream: the pure
//! per-job state machine, the coordinator seam, the NATS protocols; not yet run by the
//! daemon).

pub mod auth;
pub mod cli;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod exec;
pub mod init;
pub mod job;
pub mod metrics;
pub mod monitor;
pub mod notify;
pub mod percent;
pub mod redact;
pub mod schedule;
pub mod scheduler;
pub mod service;
pub mod store;
pub mod suggest;
pub mod web;

pub use daemon::{Daemon, DaemonError, RunningDaemon};

/// The version reported by `karajo version`, the API and the web UI.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `User-Agent` of karajo's own requests (HTTP jobs, web hook notifications).
pub const USER_AGENT: &str = concat!("karajo/", env!("CARGO_PKG_VERSION"));
