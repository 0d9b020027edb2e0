//! An in-memory cluster for tests (cluster spec 6.1, 14.1 layer 2): one
//! [`MemoryCluster`] holds what NATS would (claims, job records with revisions, the
//! order queues with their deliveries, the node table), and each node gets a
//! [`MemoryCoordinator`] on it. It keeps the NATS backend's semantics where they matter
//! (a claim key is created once; an order is delivered again when its answer does not
//! come within the ack wait, at most `max_deliver` times; a pinned order waits for its
//! node) and injects faults: a node disconnected, killed, or a claim whose answer is
//! lost after it was written. Every coordinator decides through
//! [`decide_with`], as the NATS one does.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use super::coordinator::{
    AckKind, Acker, Claim, ClusterError, CoordFuture, Coordinator, Delivery, Health, JobCtx,
    NodeInfo, NodeTable, NodeView, RecordTable, Resolved, Transition, decide_with, live_nodes,
};
use super::decide::JobEvent;
use super::{NodeName, RunOn, RunOrder, state_key};
use crate::clock::SharedClock;

/// Where an order waits.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Queue {
    Node(NodeName),
    Any,
    Tag(String),
}

/// One order in the queue.
#[derive(Debug, Clone)]
struct Queued {
    seq: u64,
    queue: Queue,
    order: RunOrder,
    delivered: u64,
    /// Delivered and not answered: visible again after this time.
    hidden_until: Option<Timestamp>,
}

#[derive(Debug, Default)]
struct Faults {
    /// Nodes whose next claim is written but answered as lost.
    lose_claim_reply: Vec<NodeName>,
}

#[derive(Debug)]
struct Hub {
    claims: BTreeMap<String, (NodeName, String)>,
    records: watch::Sender<RecordTable>,
    orders: Vec<Queued>,
    next_seq: u64,
    nodes: watch::Sender<NodeTable>,
    connected: BTreeMap<NodeName, watch::Sender<Health>>,
    faults: Faults,
    next_nonce: u64,
}

/// The shared state of an in-memory cluster.
#[derive(Debug)]
pub struct MemoryCluster {
    hub: Mutex<Hub>,
    clock: SharedClock,
    dispatch_timeout: Duration,
    ack_wait: Duration,
    max_deliver: u64,
}

impl MemoryCluster {
    /// An empty cluster whose orders wait `dispatch_timeout` to be accepted and are
    /// delivered again after `ack_wait`, at most `max_deliver` times.
    pub fn new(
        clock: SharedClock,
        dispatch_timeout: Duration,
        ack_wait: Duration,
        max_deliver: u64,
    ) -> Arc<Self> {
        Arc::new(Self {
            hub: Mutex::new(Hub {
                claims: BTreeMap::new(),
                records: watch::channel(RecordTable::new()).0,
                orders: Vec::new(),
                next_seq: 1,
                nodes: watch::channel(NodeTable::new()).0,
                connected: BTreeMap::new(),
                faults: Faults::default(),
                next_nonce: 0,
            }),
            clock,
            dispatch_timeout,
            ack_wait,
            max_deliver,
        })
    }

    fn hub(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Node `node` with `tags` joins, connected and alive.
    pub fn join(self: &Arc<Self>, node: &str, tags: &[&str]) -> MemoryCoordinator {
        let node = NodeName::parse(node).unwrap_or_else(|_| NodeName::fallback());
        let now = self.clock.now();
        let mut hub = self.hub();
        hub.nodes.send_modify(|table| {
            table.insert(
                node.clone(),
                NodeInfo {
                    tags: tags.iter().map(|t| t.to_string()).collect(),
                    alive: true,
                    last_seen: Some(now),
                    ..NodeInfo::default()
                },
            );
        });
        let health = watch::channel(Health::Connected { since: now }).0;
        hub.connected.insert(node.clone(), health.clone());
        MemoryCoordinator {
            cluster: self.clone(),
            node,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            health,
        }
    }

    /// Cuts `node` off (or lets it back): its calls answer `Unavailable`.
    pub fn set_connected(&self, node: &NodeName, connected: bool) {
        let now = self.clock.now();
        if let Some(health) = self.hub().connected.get(node) {
            health.send_replace(if connected {
                Health::Connected { since: now }
            } else {
                Health::Disconnected { since: now }
            });
        }
    }

    /// Marks `node` dead (its lease expired) or alive again.
    pub fn set_alive(&self, node: &NodeName, alive: bool) {
        let now = self.clock.now();
        self.hub().nodes.send_modify(|table| {
            if let Some(info) = table.get_mut(node) {
                info.alive = alive;
                if alive {
                    info.last_seen = Some(now);
                }
            }
        });
    }

    /// Changes what the node table says of `node` (its version, digest, NATS server…),
    /// as its heartbeat would.
    pub fn update_node(&self, node: &NodeName, update: impl FnOnce(&mut NodeInfo)) {
        self.hub().nodes.send_modify(|table| {
            if let Some(info) = table.get_mut(node) {
                update(info);
            }
        });
    }

    /// `node`'s next claim is written, but its answer is lost (it gets `Uncertain`).
    pub fn lose_next_claim_reply(&self, node: &NodeName) {
        self.hub().faults.lose_claim_reply.push(node.clone());
    }

    /// The orders still queued (answered or not), by sequence.
    pub fn queued(&self) -> Vec<(u64, RunOrder, u64)> {
        self.hub()
            .orders
            .iter()
            .map(|q| (q.seq, q.order.clone(), q.delivered))
            .collect()
    }

    /// Deletes the order with sequence `seq` (an expired or dead one).
    pub fn delete_order(&self, seq: u64) {
        self.hub().orders.retain(|q| q.seq != seq);
    }

    fn answer(&self, seq: u64, kind: AckKind) {
        let now = self.clock.now();
        let mut hub = self.hub();
        match kind {
            AckKind::Accept | AckKind::Reject => hub.orders.retain(|q| q.seq != seq),
            AckKind::Later(delay) => {
                if let Some(q) = hub.orders.iter_mut().find(|q| q.seq == seq) {
                    q.hidden_until = Some(add(now, delay));
                }
            }
        }
    }
}

fn add(at: Timestamp, d: Duration) -> Timestamp {
    at.checked_add(d).unwrap_or(at)
}

/// One node's coordinator on a [`MemoryCluster`].
#[derive(Debug, Clone)]
pub struct MemoryCoordinator {
    cluster: Arc<MemoryCluster>,
    node: NodeName,
    tags: Vec<String>,
    health: watch::Sender<Health>,
}

impl MemoryCoordinator {
    fn connected(&self) -> bool {
        self.health.borrow().is_connected()
    }

    fn view(&self) -> NodeView {
        let nodes = self.cluster.hub().nodes.borrow().clone();
        NodeView {
            now: self.cluster.clock.now(),
            node: self.node.clone(),
            live_nodes: live_nodes(&nodes),
            dispatch_timeout: self.cluster.dispatch_timeout,
        }
    }

    fn eligible(&self, queue: &Queue) -> bool {
        match queue {
            Queue::Node(node) => *node == self.node,
            Queue::Any => true,
            Queue::Tag(tag) => self.tags.contains(tag),
        }
    }
}

struct MemoryAcker {
    cluster: Arc<MemoryCluster>,
    seq: u64,
}

impl Acker for MemoryAcker {
    fn ack(self: Box<Self>, kind: AckKind) -> CoordFuture<'static, Result<(), ClusterError>> {
        Box::pin(async move {
            self.cluster.answer(self.seq, kind);
            Ok(())
        })
    }
}

impl Coordinator for MemoryCoordinator {
    fn node(&self) -> &NodeName {
        &self.node
    }

    fn delete_order(&self, seq: u64) -> CoordFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move {
            if !self.connected() {
                return Err(ClusterError::Unavailable);
            }
            self.cluster.delete_order(seq);
            Ok(())
        })
    }

    fn claim_key<'a>(&'a self, key: &'a str) -> CoordFuture<'a, Claim> {
        Box::pin(async move {
            if !self.connected() {
                return Claim::Unavailable;
            }
            let key = key.to_string();
            let mut hub = self.cluster.hub();
            hub.next_nonce += 1;
            let nonce = format!("{}-{}", self.node, hub.next_nonce);
            let lost = hub
                .faults
                .lose_claim_reply
                .iter()
                .position(|n| *n == self.node)
                .map(|i| hub.faults.lose_claim_reply.remove(i))
                .is_some();
            let claim = match hub.claims.get(&key) {
                Some((by, _)) => Claim::Lost {
                    by: Some(by.clone()),
                },
                None => {
                    hub.claims
                        .insert(key.clone(), (self.node.clone(), nonce.clone()));
                    Claim::Won
                }
            };
            if lost {
                Claim::Uncertain { key, nonce }
            } else {
                claim
            }
        })
    }

    fn resolve<'a>(
        &'a self,
        key: &'a str,
        nonce: &'a str,
    ) -> CoordFuture<'a, Result<Resolved, ClusterError>> {
        Box::pin(async move {
            if !self.connected() {
                return Err(ClusterError::Unavailable);
            }
            Ok(match self.cluster.hub().claims.get(key) {
                Some((node, n)) if *node == self.node && n == nonce => Resolved::Ours,
                Some((node, _)) => Resolved::Theirs {
                    by: Some(node.clone()),
                },
                None => Resolved::Absent,
            })
        })
    }

    fn transition<'a>(
        &'a self,
        job: &'a JobCtx,
        event: JobEvent,
    ) -> CoordFuture<'a, Result<Transition, ClusterError>> {
        Box::pin(async move {
            if !self.connected() {
                return Err(ClusterError::Unavailable);
            }
            let view = self.view();
            let key = state_key(&job.job);
            let hub = self.cluster.hub();
            let current = hub.records.borrow().get(&key).cloned();
            let (record, revision) = match &current {
                Some((record, revision)) => (Some(record), *revision),
                None => (None, 0),
            };
            let mut new_run = || crate::store::event_log::new_uuid_v7(view.now);
            let decision = decide_with(record, &event, job, &view, &mut new_run)
                .map_err(ClusterError::Refused)?;
            let revision = decision.changed.then(|| {
                let revision = revision + 1;
                hub.records.send_modify(|table| {
                    table.insert(key, (decision.record.clone(), revision));
                });
                revision
            });
            Ok(Transition {
                record: decision.record,
                revision,
                actions: decision.actions,
            })
        })
    }

    fn dispatch<'a>(
        &'a self,
        order: &'a RunOrder,
        target: &'a RunOn,
    ) -> CoordFuture<'a, Result<u64, ClusterError>> {
        Box::pin(async move {
            if !self.connected() {
                return Err(ClusterError::Unavailable);
            }
            let queue = match target {
                RunOn::Node(node) => Queue::Node(node.clone()),
                RunOn::Any => Queue::Any,
                RunOn::Tag(tag) => Queue::Tag(tag.clone()),
                RunOn::All | RunOn::Local => {
                    return Err(ClusterError::Failed(format!(
                        "an order for run_on = {target} names no queue"
                    )));
                }
            };
            let mut hub = self.cluster.hub();
            // The same run id is stored once (NATS: Nats-Msg-Id).
            if let Some(q) = hub.orders.iter().find(|q| q.order.run == order.run) {
                return Ok(q.seq);
            }
            let seq = hub.next_seq;
            hub.next_seq += 1;
            hub.orders.push(Queued {
                seq,
                queue,
                order: order.clone(),
                delivered: 0,
                hidden_until: None,
            });
            Ok(seq)
        })
    }

    fn take_orders(&self, free: usize) -> CoordFuture<'_, Result<Vec<Delivery>, ClusterError>> {
        Box::pin(async move {
            if !self.connected() {
                return Err(ClusterError::Unavailable);
            }
            let now = self.cluster.clock.now();
            let ack_wait = self.cluster.ack_wait;
            let max_deliver = self.cluster.max_deliver;
            let mut hub = self.cluster.hub();
            let mut taken = Vec::new();
            for q in hub.orders.iter_mut() {
                if taken.len() >= free {
                    break;
                }
                let visible = q.hidden_until.is_none_or(|until| until <= now);
                if !visible || q.delivered >= max_deliver || !self.eligible(&q.queue) {
                    continue;
                }
                q.delivered += 1;
                q.hidden_until = Some(add(now, ack_wait));
                taken.push(Delivery {
                    order: q.order.clone(),
                    delivered: q.delivered,
                    acker: Box::new(MemoryAcker {
                        cluster: self.cluster.clone(),
                        seq: q.seq,
                    }),
                });
            }
            Ok(taken)
        })
    }

    /// Orders delivered `max_deliver` times whose last delivery went unanswered for
    /// the ack wait, as the server's advisory reports them.
    fn dead_orders(&self) -> Vec<u64> {
        let now = self.cluster.clock.now();
        let max_deliver = self.cluster.max_deliver;
        self.cluster
            .hub()
            .orders
            .iter()
            .filter(|q| q.delivered >= max_deliver && q.hidden_until.is_none_or(|u| u <= now))
            .map(|q| q.seq)
            .collect()
    }

    fn records(&self) -> watch::Receiver<RecordTable> {
        self.cluster.hub().records.subscribe()
    }

    fn nodes(&self) -> watch::Receiver<NodeTable> {
        self.cluster.hub().nodes.subscribe()
    }

    fn health(&self) -> watch::Receiver<Health> {
        self.health.subscribe()
    }
}

#[cfg(test)]
mod tests;
