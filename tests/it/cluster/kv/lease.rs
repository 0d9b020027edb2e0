//! Leases (cluster spec 7.1): a name is held by one live process; without heartbeats
//! the key ages out after `lease_ttl` and observers count the node dead; the name can
//! then be taken again, the old holder learns it lost it, and leaving shows at once.

use std::time::Duration;

use karajo::cluster::NodeName;
use karajo::cluster::nats::error::NatsError;
use karajo::cluster::nats::lease::{Beat, Lease, LeaseRecord, Liveness, NodeTable, watch_nodes};
use tokio::sync::watch;

use super::super::server::NatsServer;
use super::{LEASE_TTL, OP_TIMEOUT, eventually, has_markers, node};

/// Waits until the observer's table satisfies `check`, at most `within`.
async fn until(
    table: &mut watch::Receiver<NodeTable>,
    within: Duration,
    check: impl Fn(&NodeTable) -> bool,
) -> bool {
    tokio::time::timeout(within, table.wait_for(|t| check(t)))
        .await
        .is_ok_and(|r| r.is_ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_is_held_by_one_live_node_expires_and_can_be_taken_again() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let (_s1, link_a, a) = node(&server, "n1").await;
    let (_s2, _link_b, b) = node(&server, "n1").await;
    let (_s9, _link_c, observer) = node(&server, "n9").await;
    let n1 = NodeName::parse("n1").unwrap();
    let mut table = watch_nodes(observer.nodes.clone(), LEASE_TTL, OP_TIMEOUT);

    let mut record = LeaseRecord::new(n1.clone(), jiff::Timestamp::now());
    record.nats_server = link_a.server_version().unwrap();
    let mut lease = Lease::join(&a.nodes, record.clone(), LEASE_TTL, OP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(lease.beat_every(), Duration::from_secs(1));

    // Heartbeats keep it; a second process with the same name is refused.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let beating = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stopped => return lease,
                () = tokio::time::sleep(lease.beat_every()) => {
                    assert_eq!(lease.beat(|r| r.running = vec!["job.x.1".into()]).await.unwrap(), Beat::Renewed);
                }
            }
        }
    });
    let mut other = LeaseRecord::new(n1.clone(), jiff::Timestamp::now());
    other.pid = 4242;
    other.host = "elsewhere".into();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let err = Lease::join(&b.nodes, other.clone(), LEASE_TTL, OP_TIMEOUT)
        .await
        .unwrap_err();
    let text = err.to_string();
    let holder = format!(
        "cluster: node name n1 is held by a live node (pid {} on host {}, last heartbeat ",
        record.pid, record.host
    );
    assert!(text.starts_with(&holder), "{text}");
    assert!(matches!(err, NatsError::NameHeld { .. }));
    assert!(until(&mut table, Duration::from_secs(2), |t| t.is_alive(&n1)).await);
    let seen = table.borrow().nodes[&n1].clone();
    let seen_record = seen.record.clone().unwrap();
    assert!(seen_record.beat >= 1, "{seen_record:?}");
    assert_eq!(seen_record.running, ["job.x.1"]);
    assert!(seen.clock_skew().abs() < jiff::SignedDuration::from_secs(2));
    // An observer that starts later sees the nodes already there.
    let mut late = watch_nodes(observer.nodes.clone(), LEASE_TTL, OP_TIMEOUT);
    assert!(until(&mut late, Duration::from_secs(1), |t| t.is_alive(&n1)).await);
    drop(late);

    // No more heartbeats: the key ages out after lease_ttl, the observer counts n1 dead.
    stop.send(()).unwrap();
    let mut lease = beating.await.unwrap();
    let last_beat = tokio::time::Instant::now();
    assert!(
        eventually(LEASE_TTL + Duration::from_secs(3), async || b
            .nodes
            .get("n1")
            .await
            .unwrap()
            .is_none())
        .await,
        "the lease expired"
    );
    let gone_after = last_beat.elapsed();
    assert!(
        gone_after >= LEASE_TTL - Duration::from_millis(500),
        "{gone_after:?}"
    );
    assert!(
        until(&mut table, Duration::from_secs(2), |t| !t.is_alive(&n1)).await,
        "the observer counts n1 dead"
    );
    let liveness = table.borrow().nodes[&n1].liveness;
    let expected = if has_markers(&server) {
        [Liveness::Expired, Liveness::Silent]
    } else {
        [Liveness::Silent, Liveness::Silent]
    };
    assert!(expected.contains(&liveness), "{liveness:?}");

    // The name is free: another process takes it; the old holder has lost it.
    let mut second = Lease::join(&b.nodes, other.clone(), LEASE_TTL, OP_TIMEOUT)
        .await
        .unwrap();
    assert!(
        until(&mut table, Duration::from_secs(2), |t| t.is_alive(&n1)
            && t.nodes[&n1].record.as_ref().is_some_and(|r| r.pid == 4242))
        .await
    );
    let lost = lease.beat(|_| {}).await.unwrap_err();
    assert!(matches!(lost, NatsError::LeaseLost { .. }), "{lost}");
    assert!(
        lost.to_string().contains("pid 4242 on host elsewhere"),
        "{lost}"
    );
    assert_eq!(second.beat(|_| {}).await.unwrap(), Beat::Renewed);

    // Leaving shows at once; the old lease may not delete the new holder's key.
    let revision = second.revision();
    lease.leave().await.unwrap();
    assert_eq!(
        a.nodes.entry("n1").await.unwrap().unwrap().revision,
        revision
    );
    let left_at = tokio::time::Instant::now();
    second.leave().await.unwrap();
    assert!(
        until(&mut table, Duration::from_secs(1), |t| t.nodes[&n1]
            .liveness
            == Liveness::Left)
        .await
    );
    assert!(left_at.elapsed() < Duration::from_secs(1));

    // A paused holder whose key is gone re-claims it on its next beat.
    let mut third = Lease::join(&a.nodes, record.clone(), LEASE_TTL, OP_TIMEOUT)
        .await
        .unwrap();
    a.nodes.delete("n1").await.unwrap();
    assert_eq!(third.beat(|_| {}).await.unwrap(), Beat::Rejoined);
    assert!(until(&mut table, Duration::from_secs(1), |t| t.is_alive(&n1)).await);
    third.leave().await.unwrap();
}
