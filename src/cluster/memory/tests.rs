//! Three nodes on one in-memory cluster (cluster spec 14.1 layer 2): slots fire once,
//! triggers from any node share one queue, orders reach the right node, are delivered
//! again until answered, and a cut-off node does nothing.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::*;
use crate::clock::ManualClock;
use crate::cluster::Slot;
use crate::cluster::decide::{Action, JobRecord, Refusal};
use crate::job::{JobId, JobKey, RunStatus};

const T0: &str = "2026-11-30T12:00:00Z";

fn cluster() -> (Arc<ManualClock>, Arc<MemoryCluster>, [MemoryCoordinator; 3]) {
    let clock = Arc::new(ManualClock::new(T0.parse().unwrap()));
    let cluster = MemoryCluster::new(
        clock.clone(),
        Duration::from_secs(20),
        Duration::from_secs(2),
        3,
    );
    let nodes = [
        cluster.join("n1", &["gpu"]),
        cluster.join("n2", &[]),
        cluster.join("n3", &["gpu"]),
    ];
    (clock, cluster, nodes)
}

fn job(id: &str, run_on: RunOn) -> JobCtx {
    JobCtx {
        job: JobKey::exec(JobId::from_raw(id)),
        run_on,
        job_digest: "sha256:00".into(),
        seed: JobRecord::seed(0, None, None, false),
    }
}

#[tokio::test]
async fn the_memory_cluster_keeps_the_coordinator_contract() {
    let (_, _, [n1, n2, n3]) = cluster();
    let nodes: [&dyn Coordinator; 3] = [&n1, &n2, &n3];
    crate::cluster::contract::each_slot_is_won_once(&nodes, 100)
        .await
        .unwrap();
    crate::cluster::contract::one_queue_across_nodes(&nodes)
        .await
        .unwrap();
    crate::cluster::contract::orders_reach_their_node_or_tag(&nodes)
        .await
        .unwrap();
    for n in nodes {
        let records = n.records().borrow().clone();
        assert_eq!(
            records["job.contract_slow"].0.counter, 2,
            "every node sees it"
        );
    }
}

#[tokio::test]
async fn orders_reach_their_node_or_tag_and_a_pinned_order_waits_for_its_node() {
    let (_, _, [n1, n2, n3]) = cluster();
    let pinned = job("pin", RunOn::Node(NodeName::parse("n2").unwrap()));
    let t = n1.transition(&pinned, JobEvent::ApiRun).await.unwrap();
    crate::cluster::contract::carry_out(&n1, &pinned, &t)
        .await
        .unwrap();
    assert!(n1.take_orders(8).await.unwrap().is_empty());
    assert!(n3.take_orders(8).await.unwrap().is_empty());
    let taken = n2.take_orders(8).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].order.job, "pin");

    let gpu = job("gpu", RunOn::Tag("gpu".into()));
    let t = n2.transition(&gpu, JobEvent::ApiRun).await.unwrap();
    crate::cluster::contract::carry_out(&n2, &gpu, &t)
        .await
        .unwrap();
    assert!(
        n2.take_orders(8).await.unwrap().is_empty(),
        "n2 has no gpu tag"
    );
    assert_eq!(n3.take_orders(8).await.unwrap().len(), 1);

    let fan = job("fan", RunOn::All);
    let t = n3.transition(&fan, JobEvent::Webhook).await.unwrap();
    let orders = crate::cluster::contract::dispatches(&t);
    let mut counters: Vec<u64> = orders.iter().map(|(o, _)| o.counter).collect();
    counters.sort_unstable();
    assert_eq!(
        counters,
        [1, 2, 3],
        "one run per live node, each its own counter"
    );
    crate::cluster::contract::carry_out(&n3, &fan, &t)
        .await
        .unwrap();
    for n in [&n1, &n2, &n3] {
        let taken = n.take_orders(8).await.unwrap();
        assert_eq!(taken.len(), 1, "{}", n.node());
        assert_eq!(taken[0].order.job, "fan");
    }
}

#[tokio::test]
async fn an_unanswered_order_is_delivered_again_after_the_ack_wait_at_most_max_deliver_times() {
    let (clock, cluster, [n1, n2, _]) = cluster();
    let any = job("any", RunOn::Any);
    let t = n1.transition(&any, JobEvent::ApiRun).await.unwrap();
    crate::cluster::contract::carry_out(&n1, &any, &t)
        .await
        .unwrap();
    let first = n1.take_orders(1).await.unwrap();
    assert_eq!(first[0].delivered, 1);
    drop(first); // n1 dies before it answers
    assert!(n2.take_orders(1).await.unwrap().is_empty());
    let mut at: Timestamp = T0.parse().unwrap();
    for delivered in [2, 3] {
        at = at.checked_add(Duration::from_secs(2)).unwrap();
        clock.set(at);
        let again = n2.take_orders(1).await.unwrap();
        assert_eq!(again[0].delivered, delivered);
    }
    clock.set(at.checked_add(Duration::from_secs(10)).unwrap());
    assert!(
        n2.take_orders(1).await.unwrap().is_empty(),
        "max_deliver = 3"
    );
    let dead = cluster.queued()[0].0;
    assert_eq!(
        n1.dead_orders(),
        [dead],
        "reported as the server's advisory does"
    );
    assert_eq!(
        cluster.queued().len(),
        1,
        "a dead order stays until deleted"
    );
    let seq = cluster.queued()[0].0;
    cluster.delete_order(seq);
    assert!(cluster.queued().is_empty());
}

#[tokio::test]
async fn a_cut_off_node_claims_nothing_and_a_lost_claim_answer_resolves_as_ours() {
    let (_, cluster, [n1, n2, _]) = cluster();
    let key = JobKey::exec(JobId::from_raw("tick"));
    let slot = Slot {
        job: key.clone(),
        at: 1_795_413_600,
    };
    cluster.set_connected(n1.node(), false);
    assert!(!n1.health().borrow().is_connected());
    assert_eq!(n1.claim(&slot).await, Claim::Unavailable);
    assert_eq!(
        n1.transition(&job("tick", RunOn::Any), JobEvent::Webhook)
            .await
            .unwrap_err(),
        ClusterError::Unavailable
    );
    cluster.set_connected(n1.node(), true);
    cluster.lose_next_claim_reply(n1.node());
    let Claim::Uncertain { key, nonce } = n1.claim(&slot).await else {
        panic!("the answer was lost");
    };
    assert_eq!(
        n2.claim(&slot).await,
        Claim::Lost {
            by: Some(n1.node().clone())
        },
        "the write landed"
    );
    assert_eq!(n1.resolve(&key, &nonce).await, Ok(Resolved::Ours));
    assert_eq!(
        n2.resolve(&key, "other").await,
        Ok(Resolved::Theirs {
            by: Some(n1.node().clone())
        })
    );
    assert_eq!(n1.resolve("job.tick.1", &nonce).await, Ok(Resolved::Absent));
}

#[tokio::test]
async fn a_dead_node_is_not_live_and_its_running_run_fails_once() {
    let (_, cluster, [n1, n2, n3]) = cluster();
    let long = job("long", RunOn::Any);
    let t = n1.transition(&long, JobEvent::Webhook).await.unwrap();
    crate::cluster::contract::carry_out(&n1, &long, &t)
        .await
        .unwrap();
    let taken = n3.take_orders(1).await.unwrap();
    let run = taken[0].order.run.clone();
    n3.transition(
        &long,
        JobEvent::Accepted {
            run: run.clone(),
            node: n3.node().clone(),
        },
    )
    .await
    .unwrap();
    cluster.set_alive(n3.node(), false);
    assert_eq!(
        live_nodes(&n1.nodes().borrow()),
        [n1.node().clone(), n2.node().clone()]
    );
    let lost = n2
        .transition(
            &long,
            JobEvent::NodeLost {
                node: n3.node().clone(),
            },
        )
        .await
        .unwrap();
    assert!(
        lost.actions.iter().any(
            |a| matches!(a, Action::FailRun { reason, .. } if reason.contains("stopped answering"))
        ),
        "{:?}",
        lost.actions
    );
    assert_eq!(lost.record.status, Some(RunStatus::Failed));
    assert!(lost.record.active.is_none());
    // The same loss seen by another survivor changes nothing more.
    let again = n1
        .transition(
            &long,
            JobEvent::NodeLost {
                node: n3.node().clone(),
            },
        )
        .await;
    assert_eq!(
        again.unwrap_err(),
        ClusterError::Refused(Refusal::Unchanged)
    );
}
