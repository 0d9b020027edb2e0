//! Orders against a real nats-server (cluster spec 7.5, 14.1 layer 3): dispatch, pull
//! only up to the free capacity, accept, refusal of forged and expired orders,
//! redelivery after a crash, MaxDeliver with its advisory and the delete, `any`
//! shared by three nodes, and `Nats-Msg-Id` de-duplication. AckWait is 1 s here.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, Context};
use async_nats::{Client, HeaderMap};
use jiff::{SignedDuration, Timestamp};
use karajo::clock::{SharedClock, SystemClock};
use karajo::cluster::nats::layout::{self, Names};
use karajo::cluster::nats::orders::{
    self, DeadOrders, OrderError, OrderSource, Rejection, SIGN_HEADER,
};
use karajo::cluster::{ClusterSettings, NodeName, OrderRefused, OrderTrigger, RunOn, RunOrder};

use super::server::NatsServer;

const SECRET: &[u8] = b"cluster-secret";
const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// Connects as `node`, with the node's inbox prefix (the permission template needs it).
pub(super) async fn connect(server: &NatsServer, node: &str) -> (Client, Context) {
    let node = NodeName::parse(node).unwrap();
    let client = async_nats::ConnectOptions::new()
        .custom_inbox_prefix(Names::inbox_prefix(&node))
        .connect(server.url())
        .await
        .unwrap();
    let js = jetstream::new(client.clone());
    (client, js)
}

/// Settings of node `node` with test timings: AckWait 1 s, MaxDeliver `max_deliver`.
pub(super) fn settings(node: &str, max_deliver: i64) -> ClusterSettings {
    let mut settings = ClusterSettings::defaults(NodeName::parse(node).unwrap());
    settings.dispatch_ack_wait = Duration::from_secs(1);
    settings.dispatch_max_deliver = max_deliver;
    settings.op_timeout = OP_TIMEOUT;
    settings
}

/// The order stream and `settings.node`'s consumers (what provisioning makes).
async fn provision(js: &Context, names: &Names, settings: &ClusterSettings) {
    let stream = js
        .get_or_create_stream(layout::runs_stream(names, settings))
        .await
        .unwrap();
    for config in layout::node_consumers(names, settings) {
        let name = config.durable_name.clone().unwrap();
        stream.get_or_create_consumer(&name, config).await.unwrap();
    }
}

fn clock() -> SharedClock {
    Arc::new(SystemClock)
}

fn order(counter: u64) -> RunOrder {
    let now = Timestamp::now();
    RunOrder {
        v: 1,
        run: format!("0193f0c2-0000-7000-8000-{counter:012}"),
        kind: "job".into(),
        job: "render".into(),
        counter,
        trigger: OrderTrigger::Webhook,
        slot: None,
        origin: NodeName::parse("n9").unwrap(),
        enqueued_at: now,
        deadline: now + SignedDuration::from_secs(60),
        job_digest: "sha256:00".into(),
    }
}

async fn stream_messages(js: &Context, names: &Names) -> u64 {
    let mut stream = js.get_stream(names.runs_stream()).await.unwrap();
    stream.info().await.unwrap().state.messages
}

/// Waits (at most 3 s) until the order stream holds `want` messages.
async fn await_stream_messages(js: &Context, names: &Names, want: u64) {
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let have = stream_messages(js, names).await;
        if have == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "the order stream holds {have} messages, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn orders_for_a_node_any_and_a_tag_arrive_verified_and_accept_empties_the_queue() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let (_client, js) = connect(&server, "n1").await;
    let names = Names::new("karajo");
    let mut settings = settings("n1", 5);
    settings.tags = vec!["gpu".into()];
    provision(&js, &names, &settings).await;

    let targets = [
        RunOn::Node(settings.node.clone()),
        RunOn::Any,
        RunOn::Tag("gpu".into()),
    ];
    let mut sent = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        let order = order(i as u64 + 1);
        let seq = orders::dispatch(&js, &names, &order, target, SECRET, OP_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(seq, i as u64 + 1);
        sent.push(order);
    }
    let all = orders::dispatch(&js, &names, &order(9), &RunOn::All, SECRET, OP_TIMEOUT).await;
    assert!(
        matches!(all, Err(OrderError::Invalid { .. })),
        "all is expanded by the caller: {all:?}"
    );
    assert_eq!(stream_messages(&js, &names).await, 3);

    let mut source = OrderSource::open(&js, &names, &settings, SECRET, clock(), OP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        source.consumer_names().collect::<Vec<_>>(),
        ["run-node-n1", "run-any", "run-tag-gpu"]
    );
    let pulled = source.pull(8, Duration::ZERO).await.unwrap();
    assert!(pulled.rejected.is_empty(), "{:?}", pulled.rejected);
    let mut got: Vec<RunOrder> = pulled.orders.iter().map(|d| d.order().clone()).collect();
    got.sort_by_key(|o| o.counter);
    assert_eq!(got, sent);
    for delivery in &pulled.orders {
        assert_eq!(delivery.delivered(), 1);
        delivery.accept().await.unwrap();
    }
    await_stream_messages(&js, &names, 0).await;

    // A long poll returns as soon as an order comes, not at the end of its wait.
    let late = order(4);
    let dispatcher = {
        let (js, names, late) = (js.clone(), names.clone(), late.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            orders::dispatch(&js, &names, &late, &RunOn::Any, SECRET, OP_TIMEOUT)
                .await
                .unwrap()
        })
    };
    let started = tokio::time::Instant::now();
    let pulled = source.pull(1, Duration::from_secs(5)).await.unwrap();
    let took = started.elapsed();
    assert_eq!(pulled.orders.len(), 1, "{pulled:?}");
    assert_eq!(pulled.orders[0].order(), &late);
    assert!(took < Duration::from_secs(3), "the long poll took {took:?}");
    assert_eq!(pulled.orders[0].stream_seq(), dispatcher.await.unwrap());
    pulled.orders[0].accept().await.unwrap();

    // Nothing there: an empty pull after its wait.
    let started = tokio::time::Instant::now();
    let pulled = source.pull(1, Duration::from_millis(600)).await.unwrap();
    assert!(pulled.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(550));
}

#[tokio::test]
async fn forged_unsigned_and_expired_orders_are_terminated_and_never_returned() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let (_client, js) = connect(&server, "n1").await;
    let names = Names::new("karajo");
    let settings = settings("n1", 5);
    provision(&js, &names, &settings).await;

    // A forged order: a valid body, signed with another secret.
    let forged = order(1);
    let (body, wrong_sign) = forged.signed(b"not-the-secret");
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", forged.run.as_str());
    headers.insert(SIGN_HEADER, wrong_sign.as_str());
    js.publish_with_headers(names.any_orders(), headers, body.into())
        .await
        .unwrap()
        .await
        .unwrap();
    // No signature at all, and not even an order.
    js.publish(names.node_orders(&settings.node), "run rm -rf /".into())
        .await
        .unwrap()
        .await
        .unwrap();
    // Signed, but its deadline has passed.
    let mut expired = order(3);
    expired.deadline = Timestamp::now() - SignedDuration::from_secs(1);
    orders::dispatch(&js, &names, &expired, &RunOn::Any, SECRET, OP_TIMEOUT)
        .await
        .unwrap();

    let mut source = OrderSource::open(&js, &names, &settings, SECRET, clock(), OP_TIMEOUT)
        .await
        .unwrap();
    let pulled = source.pull(8, Duration::ZERO).await.unwrap();
    assert!(pulled.orders.is_empty(), "{:?}", pulled.orders);
    assert_eq!(pulled.rejected.len(), 3);
    let mut reasons: Vec<(u64, Rejection)> = pulled
        .rejected
        .iter()
        .map(|r| {
            assert_eq!(r.term_error, None);
            (r.stream_seq, r.reason.clone())
        })
        .collect();
    reasons.sort_by_key(|(seq, _)| *seq);
    assert_eq!(reasons[0].1, Rejection::Refused(OrderRefused::BadSignature));
    assert_eq!(reasons[1].1, Rejection::Refused(OrderRefused::BadSignature));
    assert_eq!(
        reasons[2].1,
        Rejection::DeadlinePassed {
            deadline: expired.deadline
        }
    );
    let expired_rejection = pulled.rejected.iter().find(|r| r.stream_seq == 3).unwrap();
    assert_eq!(expired_rejection.order.as_ref(), Some(&expired));
    assert_eq!(
        pulled
            .rejected
            .iter()
            .find(|r| r.stream_seq == 1)
            .unwrap()
            .msg_id
            .as_deref(),
        Some(forged.run.as_str())
    );

    // Terminated: gone from the work queue, and not delivered again after AckWait.
    await_stream_messages(&js, &names, 0).await;
    let again = source.pull(8, Duration::from_millis(1500)).await.unwrap();
    assert!(again.is_empty(), "{again:?}");
}

#[tokio::test]
async fn an_order_pulled_and_never_acked_comes_back_after_ack_wait() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let (_client, js) = connect(&server, "n1").await;
    let names = Names::new("karajo");
    let settings = settings("n1", 5);
    provision(&js, &names, &settings).await;
    let sent = order(1);
    orders::dispatch(&js, &names, &sent, &RunOn::Any, SECRET, OP_TIMEOUT)
        .await
        .unwrap();

    // The "crash": the first node pulls and drops the delivery without an ack.
    {
        let mut first = OrderSource::open(&js, &names, &settings, SECRET, clock(), OP_TIMEOUT)
            .await
            .unwrap();
        let pulled = first.pull(1, Duration::ZERO).await.unwrap();
        assert_eq!(pulled.orders.len(), 1);
        assert_eq!(pulled.orders[0].delivered(), 1);
    }
    let (_other_client, other_js) = connect(&server, "n2").await;
    let mut second = OrderSource::open(&other_js, &names, &settings, SECRET, clock(), OP_TIMEOUT)
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let pulled = second.pull(1, Duration::from_secs(4)).await.unwrap();
    assert_eq!(pulled.orders.len(), 1, "{pulled:?}");
    assert_eq!(pulled.orders[0].order(), &sent);
    assert_eq!(pulled.orders[0].delivered(), 2);
    assert!(started.elapsed() < Duration::from_secs(3));
    pulled.orders[0].accept().await.unwrap();
    await_stream_messages(&js, &names, 0).await;
}

#[tokio::test]
async fn max_deliver_stops_deliveries_keeps_the_order_and_the_advisory_names_it() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let (client, js) = connect(&server, "n1").await;
    let names = Names::new("karajo");
    let settings = settings("n1", 3);
    provision(&js, &names, &settings).await;
    let mut advisories = DeadOrders::subscribe(&client, &names, OP_TIMEOUT)
        .await
        .unwrap();
    let seq = orders::dispatch(&js, &names, &order(1), &RunOn::Any, SECRET, OP_TIMEOUT)
        .await
        .unwrap();

    let mut source = OrderSource::open(&js, &names, &settings, SECRET, clock(), OP_TIMEOUT)
        .await
        .unwrap()
        .with_poll_slice(Duration::from_millis(200));
    let mut deliveries = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(6);
    while deliveries.len() < 3 && tokio::time::Instant::now() < until {
        let pulled = source.pull(1, Duration::from_millis(1500)).await.unwrap();
        deliveries.extend(pulled.orders.iter().map(|d| d.delivered()));
        // Never acked.
    }
    assert_eq!(deliveries, [1, 2, 3]);
    let after = source.pull(1, Duration::from_millis(1500)).await.unwrap();
    assert!(after.is_empty(), "no fourth delivery: {after:?}");
    assert_eq!(stream_messages(&js, &names).await, 1, "MaxDeliver keeps it");

    let dead = tokio::time::timeout(Duration::from_secs(3), advisories.next())
        .await
        .expect("a max-deliveries advisory")
        .unwrap();
    assert_eq!(dead.stream_seq, seq);
    assert_eq!(dead.deliveries, 3);
    assert_eq!(dead.consumer, "run-any");

    assert!(
        orders::delete_order(&js, &names, seq, OP_TIMEOUT)
            .await
            .unwrap()
    );
    assert_eq!(stream_messages(&js, &names).await, 0);
    assert!(
        !orders::delete_order(&js, &names, seq, OP_TIMEOUT)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn three_nodes_pulling_any_one_at_a_time_get_disjoint_orders() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let names = Names::new("karajo");
    let (_client, js) = connect(&server, "n1").await;
    for node in ["n1", "n2", "n3"] {
        provision(&js, &names, &settings(node, 5)).await;
    }
    let total = 60;
    for counter in 1..=total {
        orders::dispatch(
            &js,
            &names,
            &order(counter),
            &RunOn::Any,
            SECRET,
            OP_TIMEOUT,
        )
        .await
        .unwrap();
    }
    let taken = Arc::new(Mutex::new(0u64));
    let mut pullers = Vec::new();
    for node in ["n1", "n2", "n3"] {
        let (names, taken) = (names.clone(), Arc::clone(&taken));
        let (client, js) = connect(&server, node).await;
        let settings = settings(node, 5);
        pullers.push(tokio::spawn(async move {
            let _client = client;
            let mut source = OrderSource::open(&js, &names, &settings, SECRET, clock(), OP_TIMEOUT)
                .await
                .unwrap()
                .with_poll_slice(Duration::from_millis(100));
            let mut mine = Vec::new();
            while *taken.lock().unwrap() < total {
                let pulled = source.pull(1, Duration::from_millis(300)).await.unwrap();
                assert!(pulled.len() <= 1);
                for delivery in pulled.orders {
                    delivery.accept().await.unwrap();
                    mine.push(delivery.order().counter);
                    *taken.lock().unwrap() += 1;
                    // A little work, as a node would do before its next pull.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    for puller in pullers {
        let mine = tokio::time::timeout(Duration::from_secs(20), puller)
            .await
            .unwrap()
            .unwrap();
        assert!(!mine.is_empty(), "every puller gets some orders");
        for counter in mine {
            assert!(seen.insert(counter), "order {counter} was delivered twice");
        }
    }
    assert_eq!(seen, (1..=total).collect::<HashSet<_>>());
    await_stream_messages(&js, &names, 0).await;
}

#[tokio::test]
async fn dispatching_the_same_order_twice_stores_it_once() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let (_client, js) = connect(&server, "n1").await;
    let names = Names::new("karajo");
    let settings = settings("n1", 5);
    provision(&js, &names, &settings).await;
    let sent = order(1);
    let target = RunOn::Node(settings.node.clone());
    let first = orders::dispatch(&js, &names, &sent, &target, SECRET, OP_TIMEOUT)
        .await
        .unwrap();
    let second = orders::dispatch(&js, &names, &sent, &target, SECRET, OP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        first, second,
        "the duplicate's ack names the stored message"
    );
    assert_eq!(stream_messages(&js, &names).await, 1);
}

#[tokio::test]
async fn a_pull_takes_no_more_than_the_free_capacity() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let (_client, js) = connect(&server, "n1").await;
    let names = Names::new("karajo");
    let settings = settings("n1", 5);
    provision(&js, &names, &settings).await;
    for counter in 1..=5 {
        orders::dispatch(
            &js,
            &names,
            &order(counter),
            &RunOn::Node(settings.node.clone()),
            SECRET,
            OP_TIMEOUT,
        )
        .await
        .unwrap();
    }
    let mut source = OrderSource::open(&js, &names, &settings, SECRET, clock(), OP_TIMEOUT)
        .await
        .unwrap();
    assert!(source.pull(0, Duration::ZERO).await.unwrap().is_empty());
    let pulled = source.pull(2, Duration::from_secs(1)).await.unwrap();
    assert_eq!(pulled.orders.len(), 2);
    let mut consumer: jetstream::consumer::PullConsumer = js
        .get_consumer_from_stream(Names::node_consumer(&settings.node), names.runs_stream())
        .await
        .unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(info.num_ack_pending, 2, "only the two taken are held");
    assert_eq!(info.num_pending, 3, "the other three wait in the queue");
    for delivery in &pulled.orders {
        delivery.later(Duration::ZERO).await.unwrap();
    }
}

/// Sends `signal` to the test server's own pid, and waits until the process shows
/// it (stopped for STOP, running again for CONT): delivery is not immediate.
fn signal(server: &NatsServer, signal: rustix::process::Signal) {
    let raw = server.pid().unwrap();
    let pid = rustix::process::Pid::from_raw(raw as i32).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
    let want_stopped = signal == rustix::process::Signal::STOP;
    let until = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{raw}/stat")).unwrap();
        // The state follows the command's closing parenthesis.
        let state = stat.rsplit_once(") ").unwrap().1.chars().next().unwrap();
        if (state == 'T') == want_stopped {
            return;
        }
        assert!(
            std::time::Instant::now() < until,
            "state {state} after {signal:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test]
async fn a_dispatch_without_an_ack_publishes_again_and_is_stored_once() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let (_client, js) = connect(&server, "n1").await;
    let names = Names::new("karajo");
    let settings = settings("n1", 5);
    provision(&js, &names, &settings).await;

    // Frozen (SIGSTOP) through the first attempt, back during the second: the second
    // ack names the one stored message.
    signal(&server, rustix::process::Signal::STOP);
    let first = order(1);
    let dispatch = {
        let (js, names, first) = (js.clone(), names.clone(), first.clone());
        tokio::spawn(async move {
            let op_timeout = Duration::from_millis(500);
            let started = tokio::time::Instant::now();
            let result =
                orders::dispatch(&js, &names, &first, &RunOn::Any, SECRET, op_timeout).await;
            (result, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    signal(&server, rustix::process::Signal::CONT);
    let (result, took) = dispatch.await.unwrap();
    assert_eq!(result.unwrap(), 1);
    assert!(
        took > Duration::from_millis(500),
        "the first attempt timed out: {took:?}"
    );
    assert_eq!(stream_messages(&js, &names).await, 1);

    // Frozen through both attempts: "may have happened", and it did, once.
    signal(&server, rustix::process::Signal::STOP);
    let second = order(2);
    let op_timeout = Duration::from_millis(200);
    let result = orders::dispatch(&js, &names, &second, &RunOn::Any, SECRET, op_timeout).await;
    signal(&server, rustix::process::Signal::CONT);
    let err = result.unwrap_err();
    assert!(err.is_uncertain(), "{err}");
    assert!(err.to_string().contains("may still have happened"), "{err}");
    await_stream_messages(&js, &names, 2).await;
}
