//! What `GET /karajo/api/cluster` and `karajo cluster status` show (cluster spec 12):
//! this node's link and every node it knows, with the runs each executes (from the
//! shared job records) and whether its job definitions match this node's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::NodeName;
use super::coordinator::Coordinator;
use super::decide::ActiveState;

/// This node's part of the cluster, for the status.
#[derive(Clone)]
pub struct ClusterInfo {
    /// The coordinator.
    pub coordinator: Arc<dyn Coordinator>,
    /// `sha256:<hex>` of this node's cluster job definitions.
    pub config_digest: String,
    /// The version of the NATS server at the start.
    pub nats_server: String,
    /// What this node's agent counted.
    pub stats: Arc<ClusterStats>,
}

/// What a node's cluster agent counts, for the `karajo_cluster_*` metrics (cluster
/// spec 11.1). Every counter only grows.
#[derive(Debug, Default)]
pub struct ClusterStats {
    /// Slot claims won.
    pub claims_won: AtomicU64,
    /// Slot claims another node won.
    pub claims_lost: AtomicU64,
    /// Slot claims whose answer was lost (read back later).
    pub claims_uncertain: AtomicU64,
    /// Slots due while this node could not reach the cluster.
    pub claims_unavailable: AtomicU64,
    /// Orders dispatched to one node.
    pub dispatched_node: AtomicU64,
    /// Orders dispatched to any node.
    pub dispatched_any: AtomicU64,
    /// Orders dispatched to the nodes of a tag.
    pub dispatched_tag: AtomicU64,
    /// Orders dispatched as members of a `run_on = all` fan-out.
    pub dispatched_all: AtomicU64,
    /// Runs ended because no node accepted their order in time.
    pub failed_not_accepted: AtomicU64,
    /// Orders this node refused (unknown job, different definition).
    pub failed_rejected: AtomicU64,
    /// Runs ended because their node stopped answering.
    pub failed_node_lost: AtomicU64,
    /// Missed slots caught up after a reconnection.
    pub catchups: AtomicU64,
    /// Missed slots past `misfire_grace`, skipped.
    pub missed_slots: AtomicU64,
}

impl ClusterStats {
    /// Adds one to `counter`.
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The value of `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for ClusterInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterInfo")
            .field("node", self.coordinator.node())
            .finish_non_exhaustive()
    }
}

/// The cluster as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// Always true (the endpoint exists in cluster mode only).
    pub enabled: bool,
    /// This node.
    pub node: NodeName,
    /// Whether this node reaches the cluster.
    pub connected: bool,
    /// Since when it is connected, or not.
    pub since: Timestamp,
    /// The NATS server's version.
    pub nats_server: String,
    /// Every node known, this one included, by name.
    pub nodes: Vec<NodeStatus>,
}

/// One node in [`ClusterStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Its name.
    pub name: NodeName,
    /// Its tags.
    pub tags: Vec<String>,
    /// Whether its heartbeat was seen within `lease_ttl`.
    pub alive: bool,
    /// When it was last seen.
    pub last_seen: Option<Timestamp>,
    /// Its karajo version.
    pub version: String,
    /// `sha256:<hex>` of its cluster job definitions.
    pub config_digest: String,
    /// Whether that is this node's.
    pub digest_matches: bool,
    /// The runs it executes, as `<kind>.<id>.<counter>`.
    pub running: Vec<String>,
    /// Its `max_job_running`.
    pub max_job_running: u32,
    /// Its clock's offset from the server's, when known.
    pub clock_offset_ms: Option<i64>,
}

impl ClusterInfo {
    /// The cluster as this node sees it now.
    pub fn status(&self) -> ClusterStatus {
        let health = *self.coordinator.health().borrow();
        let records = self.coordinator.records().borrow().clone();
        let mut running: std::collections::BTreeMap<NodeName, Vec<String>> = Default::default();
        for (key, (record, _)) in &records {
            let Some(active) = &record.active else {
                continue;
            };
            match &active.group {
                None => {
                    if let (Some(node), ActiveState::Running) = (&active.node, active.state) {
                        running
                            .entry(node.clone())
                            .or_default()
                            .push(format!("{key}.{}", active.counter));
                    }
                }
                Some(group) => {
                    for (node, member) in group {
                        if member.state == ActiveState::Running && member.status.is_none() {
                            running
                                .entry(node.clone())
                                .or_default()
                                .push(format!("{key}.{}", member.counter));
                        }
                    }
                }
            }
        }
        let nodes = self
            .coordinator
            .nodes()
            .borrow()
            .iter()
            .map(|(name, info)| NodeStatus {
                name: name.clone(),
                tags: info.tags.clone(),
                alive: info.alive,
                last_seen: info.last_seen,
                version: info.version.clone(),
                digest_matches: info.config_digest == self.config_digest,
                config_digest: info.config_digest.clone(),
                running: running.remove(name).unwrap_or_default(),
                max_job_running: info.max_job_running,
                clock_offset_ms: info.clock_offset_ms,
            })
            .collect();
        ClusterStatus {
            enabled: true,
            node: self.coordinator.node().clone(),
            connected: health.is_connected(),
            since: health.since(),
            nats_server: self.nats_server.clone(),
            nodes,
        }
    }
}
