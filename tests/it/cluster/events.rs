//! The cluster event stream against a real nats-server (cluster spec 11.3): events
//! from two nodes read back newest first on their own subjects; `limit` keeps the
//! newest, also across gaps; `since` leaves older ones out; the publisher drops and
//! counts while the server is away without holding up its caller, and publishes again
//! once it is back; the stream keeps at most 1,000 events per node and type.

use std::time::{Duration, Instant};

use async_nats::jetstream::Context;
use jiff::Timestamp;
use karajo::cluster::NodeName;
use karajo::cluster::nats::events::{
    ClusterEvent, ClusterEventKind, EventPublisher, publish_event, recent_events,
};
use karajo::cluster::nats::layout::{self, Names};

use super::kv::{OP_TIMEOUT, eventually, link, settings};
use super::server::NatsServer;

/// A day back: everything these tests publish.
fn a_day_ago() -> Timestamp {
    karajo::cluster::nats::events::recent_since(Timestamp::now())
}

fn node(name: &str) -> NodeName {
    NodeName::parse(name).unwrap()
}

/// A connected JetStream context on `server` with the events stream provisioned.
async fn events_stream(server: &NatsServer) -> (Context, Names) {
    let settings = settings(server, "n1");
    let names = Names::new(&settings.prefix);
    let link = link(&settings).await;
    let js = link.jetstream().clone();
    js.get_or_create_stream(layout::events_stream(&names, &settings))
        .await
        .unwrap();
    (js, names)
}

async fn publish(js: &Context, names: &Names, event: &ClusterEvent) -> u64 {
    publish_event(js, names, event, OP_TIMEOUT).await.unwrap()
}

/// Publishes `count` events of `kind` from n1 saying `<tag> <i>`.
async fn publish_many(js: &Context, names: &Names, kind: ClusterEventKind, tag: &str, count: u32) {
    for i in 0..count {
        let event = ClusterEvent::new(node("n1"), kind, format!("{tag} {i}"));
        publish(js, names, &event).await;
    }
}

fn messages(events: &[ClusterEvent]) -> Vec<&str> {
    events.iter().map(|e| e.message.as_str()).collect()
}

#[tokio::test]
async fn events_of_two_nodes_come_back_newest_first_on_their_subjects() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let (js, names) = events_stream(&server).await;
    let joined = ClusterEvent::new(node("n1"), ClusterEventKind::Join, "n1 joined");
    let missed = ClusterEvent::new(node("n2"), ClusterEventKind::Missed, "slot 12:00 missed")
        .with_job("job.nightly")
        .with_run("0190-run");
    let first = publish(&js, &names, &joined).await;
    let second = publish(&js, &names, &missed).await;
    assert!(second > first);

    let events = recent_events(&js, &names, 100, a_day_ago(), OP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(events, [missed.clone(), joined.clone()]);

    let stream = js.get_stream(names.events_stream()).await.unwrap();
    let stored = stream
        .get_last_raw_message_by_subject("karajo.event.n2.missed")
        .await
        .unwrap();
    assert_eq!(stored.sequence, second);
    let body: serde_json::Value = serde_json::from_slice(&stored.payload).unwrap();
    assert_eq!(body["node"], "n2");
    assert_eq!(body["type"], "missed");
    assert_eq!(body["job"], "job.nightly");
    assert_eq!(body["run"], "0190-run");
    let stored = stream
        .get_last_raw_message_by_subject("karajo.event.n1.join")
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&stored.payload).unwrap();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
    for key in ["at", "node", "type", "message"] {
        assert!(keys.contains(&key), "{keys:?}");
    }
    assert!(
        stream
            .get_last_raw_message_by_subject("karajo.event.n1.missed")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn limit_keeps_the_newest_also_across_gaps() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let (js, names) = events_stream(&server).await;
    publish_many(&js, &names, ClusterEventKind::Missed, "event", 20).await;

    let newest = recent_events(&js, &names, 5, a_day_ago(), OP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        messages(&newest),
        ["event 19", "event 18", "event 17", "event 16", "event 15"]
    );
    // A gap among the last five sequences: the sixth newest fills the place.
    let stream = js.get_stream(names.events_stream()).await.unwrap();
    assert!(stream.delete_message(18).await.unwrap());
    let newest = recent_events(&js, &names, 5, a_day_ago(), OP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        messages(&newest),
        ["event 19", "event 18", "event 16", "event 15", "event 14"]
    );
    let all = recent_events(&js, &names, 1000, a_day_ago(), OP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(all.len(), 19);
    // Zero is one.
    let one = recent_events(&js, &names, 0, a_day_ago(), OP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(messages(&one), ["event 19"]);
}

#[tokio::test]
async fn since_leaves_older_events_out_and_an_empty_read_is_prompt() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let (js, names) = events_stream(&server).await;
    let started = Instant::now();
    let none = recent_events(&js, &names, 100, a_day_ago(), OP_TIMEOUT)
        .await
        .unwrap();
    assert!(none.is_empty());
    publish_many(&js, &names, ClusterEventKind::Catchup, "before", 3).await;
    tokio::time::sleep(Duration::from_millis(550)).await;
    let middle = Timestamp::now();
    tokio::time::sleep(Duration::from_millis(550)).await;
    publish_many(&js, &names, ClusterEventKind::Catchup, "after", 3).await;

    let after = recent_events(&js, &names, 100, middle, OP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(messages(&after), ["after 2", "after 1", "after 0"]);
    // The last four sequences reach back past `since`: the older one is left out.
    let four = recent_events(&js, &names, 4, middle, OP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(messages(&four), ["after 2", "after 1", "after 0"]);
    let two = recent_events(&js, &names, 2, middle, OP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(messages(&two), ["after 2", "after 1"]);
    let all = recent_events(&js, &names, 100, a_day_ago(), OP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(all.len(), 6);
    let later = recent_events(
        &js,
        &names,
        100,
        Timestamp::now() + jiff::SignedDuration::from_secs(60),
        OP_TIMEOUT,
    )
    .await
    .unwrap();
    assert!(later.is_empty());
    // Six reads and six publishes: no read waited for a timeout.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publisher_drops_and_counts_while_the_server_is_away() {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let settings = settings(&server, "n1");
    let names = Names::new(&settings.prefix);
    let link = link(&settings).await;
    let js = link.jetstream().clone();
    js.get_or_create_stream(layout::events_stream(&names, &settings))
        .await
        .unwrap();
    let publisher = EventPublisher::spawn(link.clone(), names.clone(), OP_TIMEOUT);
    let event = |message: &str| ClusterEvent::new(node("n1"), ClusterEventKind::NatsError, message);

    publisher.emit(event("before"));
    assert!(eventually(Duration::from_secs(5), async || publisher.published() == 1).await);

    tokio::task::block_in_place(|| server.stop());
    let mut health = link.health_watch();
    tokio::time::timeout(
        Duration::from_secs(5),
        health.wait_for(|h| !h.is_connected()),
    )
    .await
    .expect("the link notices")
    .unwrap();
    let started = Instant::now();
    let clone = publisher.clone();
    for i in 0..1000 {
        clone.emit(event(&format!("away {i}")));
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(250),
        "1,000 emits took {took:?}"
    );
    assert!(eventually(Duration::from_secs(5), async || publisher.dropped() == 1000).await);
    assert_eq!(publisher.published(), 1);

    tokio::task::block_in_place(|| server.restart());
    assert!(link.wait_connected(Duration::from_secs(10)).await);
    publisher.emit(event("after"));
    assert!(eventually(Duration::from_secs(5), async || publisher.published() == 2).await);
    assert_eq!(publisher.dropped(), 1000);
    let events = recent_events(&js, &names, 1000, a_day_ago(), OP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(messages(&events), ["after", "before"]);
}

#[tokio::test]
async fn the_stream_keeps_a_thousand_per_node_and_type() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let (js, names) = events_stream(&server).await;
    publish_many(&js, &names, ClusterEventKind::ClockSkew, "skew", 1010).await;
    let other = ClusterEvent::new(node("n2"), ClusterEventKind::ClockSkew, "n2 skew");
    publish(&js, &names, &other).await;

    let mut stream = js.get_stream(names.events_stream()).await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    assert_eq!(state.messages, 1001);
    assert_eq!(state.first_sequence, 11);
    let events = recent_events(&js, &names, 1000, a_day_ago(), OP_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(events.len(), 1000);
    assert_eq!(events[0].message, "n2 skew");
    assert_eq!(events[1].message, "skew 1009");
    assert_eq!(events[999].message, "skew 11");
}
