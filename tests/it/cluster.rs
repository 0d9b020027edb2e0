//! Cluster mode against a real `nats-server` (Debian's package, which the test script
//! installs), started per test on a free port of 127.0.0.1 with its own store
//! directory ([`server`]); never port 4222.

#![cfg(feature = "cluster-nats")]

mod coordinator;
mod events;
mod init;
mod kv;
mod logship;
mod nodes;
mod orders;
mod processes;
mod server;
