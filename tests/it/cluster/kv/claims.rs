//! Claims (cluster spec 7.2): three connections race for 100 slots and each slot is
//! won exactly once; a claim whose reply was lost but which landed is recognised as
//! ours; one-off keys go through the same path.

use std::collections::BTreeMap;

use karajo::cluster::NodeName;
use karajo::cluster::nats::claims::{Claim, ClaimValue, Claims, Resolved, new_nonce, sweep_key};

use super::super::server::NatsServer;
use super::node;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_connections_claim_each_of_100_slots_exactly_once() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let mut tasks = Vec::new();
    let mut contenders = Vec::new();
    for name in ["n1", "n2", "n3"] {
        let (settings, link, buckets) = node(&server, name).await;
        contenders.push(Claims::new(
            buckets.claims,
            link,
            settings.node.clone(),
            settings.op_timeout,
        ));
    }
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(3));
    for claims in contenders {
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let mut results = Vec::new();
            for slot in 0..100 {
                let key = format!("job.race.{}", 1_795_413_600 + slot * 60);
                let claim = claims.claim(&key, &new_nonce()).await;
                results.push((key, claims.node().clone(), claim));
            }
            results
        }));
    }
    let mut by_key: BTreeMap<String, Vec<(NodeName, Claim)>> = BTreeMap::new();
    for task in tasks {
        for (key, node, claim) in task.await.unwrap() {
            by_key.entry(key).or_default().push((node, claim));
        }
    }
    assert_eq!(by_key.len(), 100);
    let mut wins: BTreeMap<NodeName, usize> = BTreeMap::new();
    for (key, outcomes) in &by_key {
        let winners: Vec<&NodeName> = outcomes
            .iter()
            .filter(|(_, claim)| *claim == Claim::Won)
            .map(|(node, _)| node)
            .collect();
        assert_eq!(winners.len(), 1, "{key}: {outcomes:?}");
        let winner = winners[0].clone();
        *wins.entry(winner.clone()).or_default() += 1;
        for (node, claim) in outcomes {
            if *node != winner {
                assert_eq!(
                    *claim,
                    Claim::Lost {
                        by: Some(winner.clone())
                    },
                    "{key}"
                );
            }
        }
    }
    assert_eq!(wins.values().sum::<usize>(), 100, "{wins:?}");
}

#[tokio::test]
async fn a_claim_that_landed_without_its_reply_is_won_on_retry() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let (s1, l1, b1) = node(&server, "n1").await;
    let (s2, l2, b2) = node(&server, "n2").await;
    let n1 = Claims::new(b1.claims.clone(), l1, s1.node.clone(), s1.op_timeout);
    let n2 = Claims::new(b2.claims, l2, s2.node.clone(), s2.op_timeout);

    // The first attempt's write landed, its reply did not.
    let key = "job.nightly.1795413600";
    let nonce = new_nonce();
    let value = ClaimValue {
        node: s1.node.clone(),
        nonce: nonce.clone(),
        at: jiff::Timestamp::now(),
    };
    b1.claims
        .create(key, serde_json::to_vec(&value).unwrap().into())
        .await
        .unwrap();

    assert_eq!(n1.claim(key, &nonce).await, Claim::Won);
    assert_eq!(n1.resolve(key, &nonce).await.unwrap(), Resolved::Ours);
    let by = Some(s1.node.clone());
    assert_eq!(
        n2.claim(key, &new_nonce()).await,
        Claim::Lost { by: by.clone() }
    );
    // Same node, another nonce: a different claim, lost.
    assert_eq!(
        n1.claim(key, &new_nonce()).await,
        Claim::Lost { by: by.clone() }
    );
    assert_eq!(
        n2.resolve(key, &new_nonce()).await.unwrap(),
        Resolved::Theirs { by }
    );
    assert_eq!(
        n1.resolve("job.nightly.1", &nonce).await.unwrap(),
        Resolved::Absent
    );

    // One-off keys take the same path: one sweeper of n3's lease revision 7.
    let n3 = NodeName::parse("n3").unwrap();
    let sweep = sweep_key(&n3, 7);
    let (nonce_a, nonce_b) = (new_nonce(), new_nonce());
    let (a, b) = tokio::join!(n1.claim(&sweep, &nonce_a), n2.claim(&sweep, &nonce_b));
    assert!(
        matches!(
            (&a, &b),
            (Claim::Won, Claim::Lost { .. }) | (Claim::Lost { .. }, Claim::Won)
        ),
        "{a:?} {b:?}"
    );
}
