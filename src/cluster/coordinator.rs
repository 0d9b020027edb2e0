//! The seam between a node's scheduler and whatever coordinates the nodes (cluster spec
//! 6.2): the [`Coordinator`] trait (claim a timer slot, apply one event to a job's
//! shared record through [`decide`](super::decide), dispatch an order, take
//! orders, watch the records, the nodes and this node's connection), the values it
//! speaks in, and [`decide_with`], the one place that turns a node's view and a job's
//! facts into the [`Ctx`] of a decision, so that every coordinator decides alike. The
//! local coordinator ([`super::local`]), the in-memory one ([`super::memory`]) and the
//! NATS one implement it.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use super::decide::{Action, Ctx, Decision, JobEvent, JobRecord, Refusal, decide};
use super::{NodeName, RunOn, RunOrder, Slot};
use crate::job::JobKey;

/// A boxed future, so that the trait stays object-safe without another crate.
pub type CoordFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who handles a timer slot (cluster spec 7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This node: it goes on with the `Timer` transition.
    Won,
    /// Another node (`None` when its claim cannot be read).
    Lost {
        /// The node that won.
        by: Option<NodeName>,
    },
    /// Not connected: nothing was sent; the slot is missed here.
    Unavailable,
    /// Sent, but no answer in time: maybe ours. Resolve it later with
    /// [`Coordinator::resolve`].
    Uncertain {
        /// The claim key.
        key: String,
        /// The nonce written with it.
        nonce: String,
    },
}

/// What reading back an uncertain claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Our write landed: the slot is ours.
    Ours,
    /// Another node's (`None` when its claim cannot be read).
    Theirs {
        /// The owner.
        by: Option<NodeName>,
    },
    /// Nobody's.
    Absent,
}

/// This node's link to the cluster, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Connected since then.
    Connected {
        /// When the (re)connection happened.
        since: Timestamp,
    },
    /// Not connected (yet, or any more) since then: cluster jobs pause on this node.
    Disconnected {
        /// When the link went down (or the client started).
        since: Timestamp,
    },
}

impl Health {
    /// Whether cluster work may go on.
    pub fn is_connected(&self) -> bool {
        matches!(self, Self::Connected { .. })
    }

    /// When the current state began.
    pub fn since(&self) -> Timestamp {
        match self {
            Self::Connected { since } | Self::Disconnected { since } => *since,
        }
    }
}

/// Why a coordinator could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// This node is not connected; nothing was sent.
    #[error("cluster unavailable: this node is not connected")]
    Unavailable,
    /// Sent, and no answer within `op_timeout`: it may have happened.
    #[error("cluster: no answer in time for {0}; it may have happened")]
    Uncertain(String),
    /// The state machine refused the event; nothing was written.
    #[error("cluster: refused ({0:?})")]
    Refused(Refusal),
    /// Anything else, in words naming what failed.
    #[error("cluster: {0}")]
    Failed(String),
}

/// What a job brings to a transition: its key, `run_on`, the digest of its definition
/// here, and the record to start from when the cluster has none yet (its local state).
#[derive(Debug, Clone)]
pub struct JobCtx {
    /// The job.
    pub job: JobKey,
    /// Where its runs go.
    pub run_on: RunOn,
    /// `sha256:<hex>` of its definition on this node.
    pub job_digest: String,
    /// The record a first transition starts from (seeded from local state).
    pub seed: JobRecord,
}

/// What a node knows of the cluster when it decides.
#[derive(Debug, Clone)]
pub struct NodeView {
    /// Now, by this node's clock.
    pub now: Timestamp,
    /// This node.
    pub node: NodeName,
    /// The live nodes, sorted, this one included.
    pub live_nodes: Vec<NodeName>,
    /// `[cluster] dispatch_timeout`.
    pub dispatch_timeout: Duration,
}

/// Applies `event` to `record` (or to `job.seed` when there is none) as `view` sees the
/// cluster, with fresh run ids made by `new_run`: one per live node, enough for any
/// start.
pub fn decide_with(
    record: Option<&JobRecord>,
    event: &JobEvent,
    job: &JobCtx,
    view: &NodeView,
    new_run: &mut dyn FnMut() -> String,
) -> Result<Decision, Refusal> {
    let runs = view.live_nodes.len().max(1);
    let ctx = Ctx {
        now: view.now,
        node: view.node.clone(),
        live_nodes: view.live_nodes.clone(),
        run_on: job.run_on.clone(),
        new_runs: (0..runs).map(|_| new_run()).collect(),
        dispatch_timeout: view.dispatch_timeout,
        job: job.job.clone(),
        job_digest: job.job_digest.clone(),
    };
    decide(record.unwrap_or(&job.seed), event, &ctx)
}

/// A won transition: the record as written, its revision, and what this node must now
/// carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The record written (or as it is, when nothing needed writing).
    pub record: JobRecord,
    /// Its revision after the write; `None` when nothing needed writing (a 412 or 429
    /// answer, a coalesced tick).
    pub revision: Option<u64>,
    /// What to carry out, in order.
    pub actions: Vec<Action>,
}

/// How an order delivery is answered (cluster spec 6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckKind {
    /// Taken: remove it from the queue (a double ack).
    Accept,
    /// Refused for good (`Term`): never delivered again.
    Reject,
    /// Not now: deliver it again after this long (`Nak` with a delay).
    Later(Duration),
}

/// Answers one delivery.
pub trait Acker: Send {
    /// Sends the answer.
    fn ack(self: Box<Self>, kind: AckKind) -> CoordFuture<'static, Result<(), ClusterError>>;
}

/// One order delivered to this node, checked (signature, deadline) by the coordinator.
pub struct Delivery {
    /// The order.
    pub order: RunOrder,
    /// How many times it has been delivered, this time included.
    pub delivered: u64,
    /// Its answer.
    pub acker: Box<dyn Acker>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("order", &self.order)
            .field("delivered", &self.delivered)
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// Answers it.
    pub async fn answer(self, kind: AckKind) -> Result<(), ClusterError> {
        self.acker.ack(kind).await
    }
}

/// Every job record in the cluster by its key, with its revision.
pub type RecordTable = BTreeMap<String, (JobRecord, u64)>;

/// What a node knows of another (or of itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its tags.
    pub tags: Vec<String>,
    /// Whether its heartbeat was seen within `lease_ttl`.
    pub alive: bool,
    /// When it was last seen.
    pub last_seen: Option<Timestamp>,
    /// Its karajo version (empty when unknown).
    pub version: String,
    /// The version of the NATS server it is connected to (empty when unknown).
    pub nats_server: String,
    /// `sha256:<hex>` of its job definitions (empty when unknown).
    pub config_digest: String,
    /// Its `max_job_running` (0 when unknown).
    pub max_job_running: u32,
    /// Its public URL or listen address (empty when unknown).
    pub http: String,
    /// How far its clock was from the server's at its last heartbeat, in ms.
    pub clock_offset_ms: Option<i64>,
}

/// Every node known, by name.
pub type NodeTable = BTreeMap<NodeName, NodeInfo>;

/// The live nodes of `table`, sorted.
pub fn live_nodes(table: &NodeTable) -> Vec<NodeName> {
    table
        .iter()
        .filter(|(_, info)| info.alive)
        .map(|(name, _)| name.clone())
        .collect()
}

/// What coordinates this node with the others. Implementations: [`super::local`] (a
/// cluster of one: always yes), [`super::memory`] for tests, and the NATS one.
pub trait Coordinator: Send + Sync + 'static {
    /// This node.
    fn node(&self) -> &NodeName;

    /// Whether this node handles `slot`.
    fn claim<'a>(&'a self, slot: &'a Slot) -> CoordFuture<'a, Claim> {
        Box::pin(async move { self.claim_key(&slot.claim_key()).await })
    }

    /// Whether this node does the one-off work named by `key` in the claims bucket (a
    /// timer slot, `sweep.<node>.<run>`, `expire.<run>`): the first node to ask wins.
    fn claim_key<'a>(&'a self, key: &'a str) -> CoordFuture<'a, Claim>;

    /// Deletes order `seq` from the order queue (an order given up); deleting one that
    /// is gone is not an error.
    fn delete_order(&self, seq: u64) -> CoordFuture<'_, Result<(), ClusterError>>;

    /// Reads back a claim whose answer was lost.
    fn resolve<'a>(
        &'a self,
        key: &'a str,
        nonce: &'a str,
    ) -> CoordFuture<'a, Result<Resolved, ClusterError>>;

    /// Applies `event` to `job`'s shared record with a revision check, deciding again
    /// on a conflict; returns what the winner must carry out.
    fn transition<'a>(
        &'a self,
        job: &'a JobCtx,
        event: JobEvent,
    ) -> CoordFuture<'a, Result<Transition, ClusterError>>;

    /// Hands `order` to `target`; returns its queue sequence.
    fn dispatch<'a>(
        &'a self,
        order: &'a RunOrder,
        target: &'a RunOn,
    ) -> CoordFuture<'a, Result<u64, ClusterError>>;

    /// At most `free` orders for this node (its own, `any`, its tags).
    fn take_orders(&self, free: usize) -> CoordFuture<'_, Result<Vec<Delivery>, ClusterError>>;

    /// Every job record, kept current.
    fn records(&self) -> watch::Receiver<RecordTable>;

    /// The nodes, kept current.
    fn nodes(&self) -> watch::Receiver<NodeTable>;

    /// This node's link.
    fn health(&self) -> watch::Receiver<Health>;

    /// The stream sequences of orders the server gave up delivering (MaxDeliver
    /// reached, spec 7.5): the sweep fails their runs at once instead of at
    /// `dispatch_timeout`. Without that signal, none.
    fn dead_orders(&self) -> Vec<u64> {
        Vec::new()
    }

    /// The dead order `seq` was dealt with (its run failed, the order deleted).
    fn forget_dead_order(&self, seq: u64) {
        let _ = seq;
    }

    /// Records that `kind` (a cluster spec 11.3 event type: `order_rejected`,
    /// `node_lost`, …) happened, about `job` and `run` when given, in the cluster's
    /// event stream. Never waits. Without a stream, only this node's log has it.
    fn report(&self, kind: &'static str, job: Option<&str>, run: Option<&str>, message: &str) {
        tracing::info!(kind, job, run, "cluster event: {message}");
    }

    /// The newest `limit` events of the last day, oldest first, as their JSON bodies
    /// (`{"at","node","type","job"?,"run"?,"message"}`).
    fn recent_events(
        &self,
        limit: usize,
    ) -> CoordFuture<'_, Result<Vec<serde_json::Value>, ClusterError>> {
        let _ = limit;
        Box::pin(async { Ok(Vec::new()) })
    }
}
