//! Revision-checked records (cluster spec 7.4): three connections increment one
//! counter 300 times and get 300 distinct values; a refusal writes nothing; the
//! watcher sees current values, changes and deletions.

use std::collections::BTreeSet;
use std::time::Duration;

use karajo::cluster::nats::state::{RecordEvent, TransitionError, read, transition, watch_all};
use serde::{Deserialize, Serialize};

use super::super::server::NatsServer;
use super::{OP_TIMEOUT, node};

/// A record: a counter, like a job's run counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Counter {
    n: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_connections_increment_one_counter_300_times_without_loss() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let mut tasks = Vec::new();
    for name in ["n1", "n2", "n3"] {
        let (settings, _link, buckets) = node(&server, name).await;
        tasks.push(tokio::spawn(async move {
            let _link = _link;
            let mut got = Vec::new();
            let mut conflicts = 0;
            for _ in 0..100 {
                let done = transition(
                    &buckets.state,
                    "job.counter",
                    settings.op_timeout,
                    |current: Option<Counter>| {
                        let n = current.map_or(0, |c| c.n) + 1;
                        Ok::<_, String>((Counter { n }, n))
                    },
                )
                .await
                .unwrap();
                conflicts += done.attempts - 1;
                got.push(done.out);
            }
            (got, conflicts)
        }));
    }
    let mut all = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        let (got, c) = task.await.unwrap();
        all.extend(got);
        conflicts += c;
    }
    let distinct: BTreeSet<u64> = all.iter().copied().collect();
    assert_eq!(all.len(), 300);
    assert_eq!(distinct, (1..=300).collect(), "conflicts: {conflicts}");
    eprintln!("300 increments, {conflicts} conflicts");
}

#[tokio::test]
async fn a_refusal_writes_nothing_and_the_watcher_sees_every_change() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let (_settings, _link, buckets) = node(&server, "n1").await;
    let store = &buckets.state;
    let first = transition(store, "job.a", OP_TIMEOUT, |current: Option<Counter>| {
        assert_eq!(current, None);
        Ok::<_, String>((Counter { n: 1 }, ()))
    })
    .await
    .unwrap();
    assert_eq!(first.attempts, 1);

    let refused = transition(store, "job.a", OP_TIMEOUT, |_: Option<Counter>| {
        Err::<(Counter, ()), _>("paused".to_string())
    })
    .await;
    assert!(matches!(refused, Err(TransitionError::Refused(ref why)) if why == "paused"));
    assert_eq!(
        read::<Counter>(store, "job.a", OP_TIMEOUT).await.unwrap(),
        Some((Counter { n: 1 }, first.revision))
    );

    // A value that is not a record is refused by name, and nothing is written.
    store.put("job.bad", "{".into()).await.unwrap();
    let corrupt = transition(store, "job.bad", OP_TIMEOUT, |_: Option<Counter>| {
        Ok::<_, String>((Counter { n: 9 }, ()))
    })
    .await;
    let err = corrupt.unwrap_err().to_string();
    assert!(
        err.contains("job.bad") && err.contains("karajo_state"),
        "{err}"
    );

    let mut events = watch_all::<Counter>(store.clone(), OP_TIMEOUT);
    let next = async |events: &mut tokio::sync::mpsc::Receiver<RecordEvent<Counter>>| {
        tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap()
    };
    // The current value first (the unreadable one is skipped).
    let current = next(&mut events).await;
    assert_eq!(
        (current.key.as_str(), current.record, current.revision),
        ("job.a", Some(Counter { n: 1 }), first.revision)
    );
    let second = transition(store, "job.a", OP_TIMEOUT, |c: Option<Counter>| {
        Ok::<_, String>((
            Counter {
                n: c.unwrap().n + 1,
            },
            (),
        ))
    })
    .await
    .unwrap();
    let changed = next(&mut events).await;
    assert_eq!(changed.record, Some(Counter { n: 2 }));
    assert_eq!(changed.revision, second.revision);
    assert!(changed.current);
    store.delete("job.a").await.unwrap();
    let deleted = next(&mut events).await;
    assert_eq!((deleted.key.as_str(), deleted.record), ("job.a", None));

    // A deleted record is absent to readers and to the next transition.
    assert_eq!(
        read::<Counter>(store, "job.a", OP_TIMEOUT).await.unwrap(),
        None
    );
    let again = transition(store, "job.a", OP_TIMEOUT, |current: Option<Counter>| {
        assert_eq!(current, None);
        Ok::<_, String>((Counter { n: 7 }, ()))
    })
    .await
    .unwrap();
    assert_eq!(next(&mut events).await.revision, again.revision);
}
