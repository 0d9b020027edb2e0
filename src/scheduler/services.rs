//! Supervised services inside the scheduler: each service's state and logs, its
//! deadline in the scheduler's timer set, the translation of the service machine's
//! [`ServiceEffect`]s into the scheduler's [`Effect`]s (save the state, spawn, signal
//! or close an instance, append to the history, record an event, notify, answer), and
//! the shutdown order by priority (monitors spec B.6). No IO here either:
//! [`super::decide`] calls these functions, the executor performs what they return.

use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;

use super::LogSummary;
use crate::config::ServiceSpec;
use crate::job::JobId;
use crate::service::ServiceState;
use crate::store::LogEntry;

/// A service as found on disk at start-up or when a reload adds it.
#[derive(Debug)]
pub struct RestoredService {
    /// Its configuration.
    pub spec: Arc<ServiceSpec>,
    /// Its state file, if it had one.
    pub saved: Option<crate::service::SavedService>,
    /// What became of the instance the state file records.
    pub found: crate::service::Leftover,
    /// Its log segments, oldest first.
    pub logs: Vec<LogEntry>,
    /// Where its logs are.
    pub log_dir: PathBuf,
}

/// A read-only picture of one service, published after every change.
#[derive(Debug, Clone)]
pub struct ServiceView {
    /// Its configuration.
    pub spec: Arc<ServiceSpec>,
    /// Its state.
    pub state: ServiceState,
    /// When time alone next changes it.
    pub deadline: Option<Timestamp>,
    /// Its log segments, oldest first.
    pub logs: Vec<LogSummary>,
}

impl ServiceView {
    /// The service's id.
    pub fn id(&self) -> &JobId {
        &self.spec.id
    }
}

/// The answer to a service control.
#[derive(Debug, Clone)]
pub enum ServiceAnswer {
    /// Done (or started): the service after the action started.
    Done(Arc<ServiceView>),
    /// The request's `cas` was not the current one; nothing changed (409
    /// `ERR_SERVICE_CAS`, with the service).
    CasMismatch(Arc<ServiceView>),
    /// `signal` with no live instance (409 `ERR_SERVICE_NOT_RUNNING`).
    NotRunning(Arc<ServiceView>),
    /// Refused (400 `ERR_SERVICE_BAD_REQUEST`), with why.
    BadRequest(String),
}

/// The answer to a service ping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServicePingAnswer {
    /// Taken: the instance and the service's status.
    Taken {
        /// The current instance.
        instance: String,
        /// The service's status word.
        status: &'static str,
    },
    /// The token is no instance's (403 `ERR_SERVICE_FORBIDDEN`).
    Forbidden,
    /// The token is an earlier instance's (409 `ERR_SERVICE_STALE`).
    Stale(String),
    /// The update is too large (400 `ERR_SERVICE_BAD_REQUEST`), with why.
    BadRequest(String),
}
