//! The integration tests: a real daemon in-process on 127.0.0.1 with real child
//! processes, plus the `karajo` binary run as a process for signals and crashes.

// Test code: clippy.toml allows unwrap/expect inside #[test] functions, but the helpers
// these tests share are plain functions, where a failed setup should still panic with
// its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod api;
mod cli;
mod client;
mod cluster;
mod conformance_monitor;
mod container;
mod exec;
mod grafana;
mod hooks;
mod import;
mod job_http;
mod lock;
mod login;
mod logs;
mod monitor;
mod notify;
mod notify_monitor;
mod pid1;
mod policies;
mod process;
mod root;
mod schedule;
mod secrets;
mod security;
mod server;
mod service;
mod service_api;
mod store;
mod watchtower;
mod webhook;
mod wui;
