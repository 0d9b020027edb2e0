//! A server restart and an outage (cluster spec 9.2, 9.4): records and claims survive
//! a restart and the clients reconnect by themselves; while the server is frozen or
//! gone every operation ends within `op_timeout`, a claim is `Unavailable` (link down)
//! or `Uncertain` (no answer), a write that got no answer is "maybe", and after the
//! server is back `resolve` tells the truth.

use std::time::Duration;

use karajo::cluster::nats::claims::{Claim, Claims, Resolved, new_nonce};
use karajo::cluster::nats::connect::Health;
use karajo::cluster::nats::state::{TransitionError, read, transition};
use serde::{Deserialize, Serialize};

use super::super::server::NatsServer;
use super::{OP_TIMEOUT, eventually, node};

/// A record: a counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Counter {
    n: u64,
}

/// Adds one to the counter.
fn add_one(current: Option<Counter>) -> Result<(Counter, u64), String> {
    let n = current.map_or(0, |c| c.n) + 1;
    Ok((Counter { n }, n))
}

/// Sends `signal` to the test's own server process.
fn signal(server: &NatsServer, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(server.pid().unwrap() as i32).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

/// Freezes the server (SIGSTOP) and waits until every one of its threads has stopped:
/// `kill` returns before they do, and a request sent at once may still be served.
fn freeze(server: &NatsServer) {
    signal(server, rustix::process::Signal::STOP);
    let tasks = format!("/proc/{}/task", server.pid().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        let all_stopped = std::fs::read_dir(&tasks).unwrap().all(|task| {
            let stat =
                std::fs::read_to_string(task.unwrap().path().join("stat")).unwrap_or_default();
            // The state follows the command name in parentheses: `pid (comm) T …`.
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['T', 't']))
        });
        if all_stopped {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("nats-server did not stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_and_claims_survive_a_restart_and_the_clients_reconnect() {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let (s1, l1, b1) = node(&server, "n1").await;
    let (s2, l2, b2) = node(&server, "n2").await;
    let c1 = Claims::new(b1.claims.clone(), l1.clone(), s1.node.clone(), OP_TIMEOUT);
    let c2 = Claims::new(b2.claims.clone(), l2.clone(), s2.node.clone(), OP_TIMEOUT);
    for _ in 0..5 {
        transition(&b1.state, "job.x", OP_TIMEOUT, add_one)
            .await
            .unwrap();
    }
    assert_eq!(c1.claim("job.x.100", &new_nonce()).await, Claim::Won);
    let mut health = l1.health_watch();
    let before = l1.health();
    assert!(before.is_connected());

    tokio::task::block_in_place(|| server.stop());
    let down = tokio::time::timeout(
        Duration::from_secs(5),
        health.wait_for(|h| !h.is_connected()),
    )
    .await
    .expect("the client notices the server is gone")
    .unwrap()
    .to_owned();
    assert!(matches!(down, Health::Disconnected { since } if since >= before.since()));
    assert!(!l1.is_connected());
    tokio::task::block_in_place(|| server.restart());
    let up = tokio::time::timeout(
        Duration::from_secs(10),
        health.wait_for(Health::is_connected),
    )
    .await
    .expect("the client reconnects by itself")
    .unwrap()
    .to_owned();
    assert!(up.since() >= down.since());
    assert!(l2.wait_connected(Duration::from_secs(10)).await);

    let (record, _) = read::<Counter>(&b2.state, "job.x", OP_TIMEOUT)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record, Counter { n: 5 });
    assert_eq!(
        c2.claim("job.x.100", &new_nonce()).await,
        Claim::Lost {
            by: Some(s1.node.clone())
        }
    );
    assert_eq!(c2.claim("job.x.160", &new_nonce()).await, Claim::Won);
    let next = transition(&b2.state, "job.x", OP_TIMEOUT, add_one)
        .await
        .unwrap();
    assert_eq!(next.out, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_unavailable_or_uncertain_and_resolves_afterwards() {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let (s1, l1, b1) = node(&server, "n1").await;
    let claims = Claims::new(b1.claims.clone(), l1.clone(), s1.node.clone(), OP_TIMEOUT);
    let store = &b1.state;
    transition(store, "job.x", OP_TIMEOUT, add_one)
        .await
        .unwrap();
    let margin = Duration::from_millis(500);

    // The server freezes between the read and the write: the write gets no answer
    // within op_timeout, and is reported as maybe written.
    let started = tokio::time::Instant::now();
    let frozen = transition(store, "job.x", OP_TIMEOUT, |current: Option<Counter>| {
        freeze(&server);
        add_one(current)
    })
    .await;
    assert!(
        matches!(frozen, Err(TransitionError::Uncertain { ref key, .. }) if key == "job.x"),
        "{frozen:?}"
    );
    assert!(
        started.elapsed() < OP_TIMEOUT + margin,
        "{:?}",
        started.elapsed()
    );

    // Still frozen, the link looks up: a claim is issued and gets no answer.
    assert!(l1.is_connected());
    let nonce = new_nonce();
    let started = tokio::time::Instant::now();
    let claim = claims.claim("job.x.200", &nonce).await;
    assert_eq!(
        claim,
        Claim::Uncertain {
            key: "job.x.200".into(),
            nonce: nonce.clone()
        }
    );
    assert!(started.elapsed() < OP_TIMEOUT + margin);
    // A transition cannot even read: nothing written, said so.
    let started = tokio::time::Instant::now();
    let unread = transition(store, "job.x", OP_TIMEOUT, add_one).await;
    assert!(
        matches!(unread, Err(TransitionError::Unavailable { .. })),
        "{unread:?}"
    );
    assert!(started.elapsed() < OP_TIMEOUT + margin);

    // The server thaws: both abandoned writes land, and resolve says the slot is ours.
    signal(&server, rustix::process::Signal::CONT);
    assert!(
        eventually(Duration::from_secs(3), async || claims
            .resolve("job.x.200", &nonce)
            .await
            .is_ok_and(|r| r == Resolved::Ours))
        .await,
        "the uncertain claim landed"
    );
    let (record, _) = read::<Counter>(store, "job.x", OP_TIMEOUT)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record, Counter { n: 2 }, "the uncertain write landed");

    // The server goes away: claims are not even issued; transitions end in time.
    tokio::task::block_in_place(|| server.stop());
    assert!(
        eventually(Duration::from_secs(5), async || !l1.is_connected()).await,
        "the client notices"
    );
    let nonce2 = new_nonce();
    assert_eq!(claims.claim("job.x.260", &nonce2).await, Claim::Unavailable);
    let started = tokio::time::Instant::now();
    let down = transition(store, "job.x", OP_TIMEOUT, add_one).await;
    assert!(
        matches!(down, Err(TransitionError::Unavailable { .. })),
        "{down:?}"
    );
    assert!(started.elapsed() < OP_TIMEOUT + margin);
    let err = claims.resolve("job.x.200", &nonce).await.unwrap_err();
    assert!(err.is_timeout(), "{err}");

    // Back: the truth is readable, and the slot never claimed can be claimed now.
    tokio::task::block_in_place(|| server.restart());
    assert!(l1.wait_connected(Duration::from_secs(10)).await);
    assert_eq!(
        claims.resolve("job.x.200", &nonce).await.unwrap(),
        Resolved::Ours
    );
    assert_eq!(
        claims.resolve("job.x.260", &nonce2).await.unwrap(),
        Resolved::Absent
    );
    assert_eq!(claims.claim("job.x.260", &nonce2).await, Claim::Won);
    let (record, _) = read::<Counter>(store, "job.x", OP_TIMEOUT)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record, Counter { n: 2 });
}
