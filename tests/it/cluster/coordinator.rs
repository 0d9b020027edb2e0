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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_never_answered_is_reported_dead_by_the_servers_advisory() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let mut settings = settings(&server, "n1");
    settings.dispatch_max_deliver = 2;
    settings.dispatch_ack_wait = Duration::from_secs(1);
    let n1 = NatsCoordinator::start(&settings, SECRET, Arc::new(SystemClock), |_| {})
        .await
        .unwrap();
    let job = contract::job("never_acked", karajo::cluster::RunOn::Any);
    let t = n1
        .transition(&job, karajo::cluster::decide::JobEvent::ApiRun)
        .await
        .unwrap();
    contract::carry_out(&n1, &job, &t).await.unwrap();
    let mut records = n1.records();
    let seq = tokio::time::timeout(
        Duration::from_secs(5),
        records.wait_for(|t| {
            t.get("job.never_acked")
                .and_then(|(r, _)| r.active.as_ref()?.seq)
                .is_some()
        }),
    )
    .await
    .expect("the record keeps the order's sequence")
    .unwrap()["job.never_acked"]
        .0
        .active
        .as_ref()
        .and_then(|a| a.seq)
        .unwrap();
    // Taken and never answered, as by a node that dies each time it pulls.
    let mut deliveries = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while deliveries < 2 && tokio::time::Instant::now() < deadline {
        let taken = n1.take_orders(1).await.unwrap();
        deliveries += taken.len();
        drop(taken);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(deliveries, 2, "delivered up to dispatch_max_deliver");
    // The server reports it when a pull would deliver it once more.
    let reported = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if n1.dead_orders().contains(&seq) {
                return;
            }
            // A pull may go unanswered while the only order waits at its last
            // delivery (the server holds the pull to its expiry): no answer is fine,
            // a third delivery is not.
            match n1.take_orders(1).await {
                Ok(taken) => assert!(taken.is_empty(), "no third delivery"),
                Err(karajo::cluster::coordinator::ClusterError::Uncertain(_)) => {}
                Err(err) => panic!("pull failed: {err}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(reported.is_ok(), "order {seq} reported dead");
    n1.forget_dead_order(seq);
    assert!(n1.dead_orders().is_empty());
    n1.leave().await;
}
