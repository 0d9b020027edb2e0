//! Three nodes' [`NatsCoordinator`]s on one real server keep the coordinator contract
//! that the in-memory cluster keeps (cluster spec 14.1 layers 2 and 3): each slot won
//! once, one queue across nodes, orders by node and tag; they see each other live,
//! and a node that leaves is seen gone at once.

use std::sync::Arc;
use std::time::Duration;

use karajo::clock::SystemClock;
use karajo::cluster::contract;
use karajo::cluster::coordinator::{Coordinator, live_nodes};
use karajo::cluster::nats::coordinator::NatsCoordinator;

use super::kv::settings;
use super::server::NatsServer;

const SECRET: &[u8] = b"cluster-secret";

async fn start(server: &NatsServer, node: &str, tags: &[&str]) -> NatsCoordinator {
    let mut settings = settings(server, node);
    settings.tags = tags.iter().map(|t| t.to_string()).collect();
    NatsCoordinator::start(&settings, SECRET, Arc::new(SystemClock), |_| {})
        .await
        .unwrap_or_else(|e| panic!("{node} starts: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nats_nodes_keep_the_coordinator_contract() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let n1 = start(&server, "n1", &["gpu"]).await;
    let n2 = start(&server, "n2", &[]).await;
    let n3 = start(&server, "n3", &["gpu"]).await;
    for n in [&n1, &n2, &n3] {
        let mut nodes = n.nodes();
        tokio::time::timeout(
            Duration::from_secs(10),
            nodes.wait_for(|t| live_nodes(t).len() == 3),
        )
        .await
        .expect("three live nodes")
        .unwrap();
        let tags = nodes.borrow()[n1.node()].tags.clone();
        assert_eq!(tags, ["gpu"], "tags travel in the lease");
    }
    let nodes: [&dyn Coordinator; 3] = [&n1, &n2, &n3];
    contract::each_slot_is_won_once(&nodes, 50).await.unwrap();
    contract::one_queue_across_nodes(&nodes).await.unwrap();
    contract::orders_reach_their_node_or_tag(&nodes)
        .await
        .unwrap();
    // Every node's watch of the records caught up with the shared counter.
    for n in nodes {
        let mut records = n.records();
        tokio::time::timeout(
            Duration::from_secs(5),
            records.wait_for(|t| {
                t.get("job.contract_slow")
                    .is_some_and(|(r, _)| r.counter == 2)
            }),
        )
        .await
        .expect("the record reaches every node")
        .unwrap();
    }
    n3.leave().await;
    let mut seen = n1.nodes();
    tokio::time::timeout(
        Duration::from_secs(2),
        seen.wait_for(|t| live_nodes(t).len() == 2),
    )
    .await
    .expect("a node that leaves is gone at once")
    .unwrap();
}
