//! Provisioning (cluster spec 5.3, trap 1): buckets created as streams work on 2.9,
//! a second run creates and changes nothing, binding without provisioning names what
//! is missing, and drift is reported, not applied.

use std::time::Duration;

use karajo::cluster::nats::layout::Names;
use karajo::cluster::nats::provision::{bind, open, provision};

use super::super::server::NatsServer;
use super::{has_markers, link, settings};

#[tokio::test]
async fn provisioning_twice_creates_everything_once_and_binds() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let mut settings = settings(&server, "n1");
    settings.tags = vec!["gpu".into()];
    let link = link(&settings).await;
    let names = Names::new("karajo");

    let first = provision(link.jetstream(), &names, &settings)
        .await
        .unwrap();
    for object in [
        "KV_karajo_claims",
        "KV_karajo_nodes",
        "KV_karajo_state",
        "KARAJO_RUNS",
        "KARAJO_LOGS",
        "KARAJO_EVENTS",
        "KARAJO_RUNS/run-node-n1",
        "KARAJO_RUNS/run-any",
        "KARAJO_RUNS/run-tag-gpu",
    ] {
        assert!(
            first.created.iter().any(|c| c == object),
            "{object} in {:?}",
            first.created
        );
    }
    assert_eq!(first.drift, [], "a fresh provisioning has no drift");
    assert_eq!(
        first.markers,
        has_markers(&server),
        "version {}",
        server.version()
    );

    let second = provision(link.jetstream(), &names, &settings)
        .await
        .unwrap();
    assert_eq!(second.created, Vec::<String>::new());
    assert_eq!(second.drift, []);
    assert_eq!(second.markers, first.markers);

    // The buckets work on this server (2.9.10: create_key_value would have failed).
    let buckets = bind(link.jetstream(), &names, settings.op_timeout)
        .await
        .unwrap();
    assert_eq!(buckets.markers, first.markers);
    buckets.state.create("job.x", "{}".into()).await.unwrap();
    assert!(buckets.state.create("job.x", "{}".into()).await.is_err());
    let status = buckets.nodes.stream.cached_info();
    assert_eq!(status.config.max_age, settings.lease_ttl);

    // Another node provisions only its own consumer on top.
    let mut n2 = super::settings(&server, "n2");
    n2.tags.clear();
    let other = provision(link.jetstream(), &names, &n2).await.unwrap();
    assert_eq!(other.created, ["KARAJO_RUNS/run-node-n2"]);
}

#[tokio::test]
async fn binding_without_provisioning_names_the_missing_bucket() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let mut settings = settings(&server, "n1");
    settings.provision = false;
    let link = link(&settings).await;
    let names = Names::new("karajo");

    let err = bind(link.jetstream(), &names, settings.op_timeout)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bucket karajo_claims (stream KV_karajo_claims) does not exist"),
        "{err}"
    );
    assert!(err.contains("karajo cluster init"), "{err}");
    let err = open(link.jetstream(), &names, &settings)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("karajo_claims"), "{err}");

    // With the buckets but without the streams, the missing stream is named.
    let mut admin = settings.clone();
    admin.provision = true;
    provision(link.jetstream(), &names, &admin).await.unwrap();
    link.jetstream().delete_stream("KARAJO_LOGS").await.unwrap();
    let err = bind(link.jetstream(), &names, settings.op_timeout)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("stream KARAJO_LOGS does not exist"), "{err}");
}

#[tokio::test]
async fn different_settings_are_reported_and_left_unchanged() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let settings = settings(&server, "n1");
    let link = link(&settings).await;
    let names = Names::new("karajo");
    provision(link.jetstream(), &names, &settings)
        .await
        .unwrap();

    let mut changed = settings.clone();
    changed.lease_ttl = Duration::from_secs(5);
    changed.dispatch_max_deliver = 9;
    let again = provision(link.jetstream(), &names, &changed).await.unwrap();
    let drift: Vec<String> = again.drift.iter().map(ToString::to_string).collect();
    assert!(
        drift.contains(&"stream KV_karajo_nodes has max_age = 3s, karajo wants 5s".to_string()),
        "{drift:?}"
    );
    assert!(
        drift.contains(
            &"consumer KARAJO_RUNS/run-node-n1 has max_deliver = 5, karajo wants 9".to_string()
        ),
        "{drift:?}"
    );
    assert_eq!(
        drift.len(),
        3,
        "nodes max_age, and two consumers: {drift:?}"
    );
    let nodes = link
        .jetstream()
        .get_stream("KV_karajo_nodes")
        .await
        .unwrap();
    assert_eq!(nodes.cached_info().config.max_age, Duration::from_secs(3));
}
