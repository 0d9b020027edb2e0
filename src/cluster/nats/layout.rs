//! The names and settings of everything cluster mode keeps in JetStream (cluster spec
//! 5.1, 5.3): the three KV buckets (provisioned as their backing streams, because
//! async-nats 0.51's `create_key_value` fails on nats-server 2.9), the order, log and
//! event streams, the order consumers, and the subjects. One place, so that
//! provisioning, the protocols, `karajo cluster init` and the permission template agree.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};

use crate::cluster::{ClusterSettings, NodeName};

/// The names of one cluster's objects, from its `prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The prefix as configured (`karajo`): subjects and bucket names.
    pub prefix: String,
}

impl Names {
    /// The names under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    fn upper(&self) -> String {
        self.prefix.to_ascii_uppercase().replace('-', "_")
    }

    /// The claims bucket: `<prefix>_claims`.
    pub fn claims_bucket(&self) -> String {
        format!("{}_claims", self.prefix)
    }

    /// The node leases bucket: `<prefix>_nodes`.
    pub fn nodes_bucket(&self) -> String {
        format!("{}_nodes", self.prefix)
    }

    /// The job-state bucket: `<prefix>_state`.
    pub fn state_bucket(&self) -> String {
        format!("{}_state", self.prefix)
    }

    /// The order stream: `<PREFIX>_RUNS`.
    pub fn runs_stream(&self) -> String {
        format!("{}_RUNS", self.upper())
    }

    /// The log stream: `<PREFIX>_LOGS`.
    pub fn logs_stream(&self) -> String {
        format!("{}_LOGS", self.upper())
    }

    /// The event stream: `<PREFIX>_EVENTS`.
    pub fn events_stream(&self) -> String {
        format!("{}_EVENTS", self.upper())
    }

    /// Orders for one node: `<prefix>.run.node.<node>`.
    pub fn node_orders(&self, node: &NodeName) -> String {
        format!("{}.run.node.{node}", self.prefix)
    }

    /// Orders for any node: `<prefix>.run.any`.
    pub fn any_orders(&self) -> String {
        format!("{}.run.any", self.prefix)
    }

    /// Orders for the nodes with a tag: `<prefix>.run.tag.<tag>`.
    pub fn tag_orders(&self, tag: &str) -> String {
        format!("{}.run.tag.{tag}", self.prefix)
    }

    /// The consumer of one node's orders: `run-node-<node>`.
    pub fn node_consumer(node: &NodeName) -> String {
        format!("run-node-{node}")
    }

    /// The shared consumer of `any` orders.
    pub const ANY_CONSUMER: &'static str = "run-any";

    /// The shared consumer of one tag's orders: `run-tag-<tag>`.
    pub fn tag_consumer(tag: &str) -> String {
        format!("run-tag-{tag}")
    }

    /// The log subject of one run: `<prefix>.log.<kind>.<id>.<counter>`.
    pub fn log_subject(&self, kind: &str, job: &str, counter: u64) -> String {
        format!("{}.log.{kind}.{job}.{counter}", self.prefix)
    }

    /// Every log subject: `<prefix>.log.>`.
    pub fn all_logs(&self) -> String {
        format!("{}.log.>", self.prefix)
    }

    /// An event's subject: `<prefix>.event.<node>.<type>`.
    pub fn event_subject(&self, node: &NodeName, kind: &str) -> String {
        format!("{}.event.{node}.{kind}", self.prefix)
    }

    /// The inbox prefix of a node's replies (required by the permission template).
    pub fn inbox_prefix(node: &NodeName) -> String {
        format!("_INBOX_{node}")
    }
}

/// The backing stream of KV bucket `bucket`, with the settings async-nats itself gives
/// one (`kv_to_stream_config`): history 1, `max_age` (zero: none), file storage.
pub fn kv_stream(bucket: &str, max_age: Duration, replicas: usize) -> stream::Config {
    stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age,
        storage: StorageType::File,
        num_replicas: replicas.max(1),
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: DiscardPolicy::New,
        ..Default::default()
    }
}

/// The three buckets' backing streams: claims, nodes, state. The nodes bucket also asks
/// for subject delete markers, which servers before 2.11 drop without a word.
pub fn bucket_streams(names: &Names, settings: &ClusterSettings) -> [stream::Config; 3] {
    let claims = kv_stream(
        &names.claims_bucket(),
        settings.claim_retention,
        settings.replicas,
    );
    let mut nodes = kv_stream(&names.nodes_bucket(), settings.lease_ttl, settings.replicas);
    nodes.allow_message_ttl = true;
    nodes.subject_delete_marker_ttl = Some(settings.lease_ttl);
    let state = kv_stream(&names.state_bucket(), Duration::ZERO, settings.replicas);
    [claims, nodes, state]
}

/// The order stream: a work queue over `<prefix>.run.>`.
pub fn runs_stream(names: &Names, settings: &ClusterSettings) -> stream::Config {
    stream::Config {
        name: names.runs_stream(),
        subjects: vec![format!("{}.run.>", names.prefix)],
        retention: RetentionPolicy::WorkQueue,
        storage: StorageType::File,
        num_replicas: settings.replicas.max(1),
        max_age: (settings.dispatch_timeout * 2).max(Duration::from_secs(24 * 3600)),
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    }
}

/// The log stream: every run's chunks and final status, kept `log_max_age` and at most
/// `log_max_bytes` (oldest dropped).
pub fn logs_stream(names: &Names, settings: &ClusterSettings) -> stream::Config {
    stream::Config {
        name: names.logs_stream(),
        subjects: vec![names.all_logs()],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        num_replicas: settings.replicas.max(1),
        max_age: settings.log_max_age,
        max_bytes: settings.log_max_bytes,
        discard: DiscardPolicy::Old,
        allow_direct: true,
        ..Default::default()
    }
}

/// The event stream: a week, at most 1,000 per subject.
pub fn events_stream(names: &Names, settings: &ClusterSettings) -> stream::Config {
    stream::Config {
        name: names.events_stream(),
        subjects: vec![format!("{}.event.>", names.prefix)],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        num_replicas: settings.replicas.max(1),
        max_age: Duration::from_secs(7 * 24 * 3600),
        max_messages_per_subject: 1000,
        ..Default::default()
    }
}

/// A durable pull consumer of orders named `name` over `subject`.
pub fn order_consumer(name: &str, subject: &str, settings: &ClusterSettings) -> pull::Config {
    pull::Config {
        durable_name: Some(name.to_string()),
        filter_subject: subject.to_string(),
        ack_policy: AckPolicy::Explicit,
        ack_wait: settings.dispatch_ack_wait,
        max_deliver: settings.dispatch_max_deliver,
        max_ack_pending: 64,
        ..Default::default()
    }
}

/// The order consumers node `settings.node` pulls from: its own, `run-any`, and one per
/// tag it carries, each with its filter subject.
pub fn node_consumers(names: &Names, settings: &ClusterSettings) -> Vec<pull::Config> {
    let mut consumers = vec![
        order_consumer(
            &Names::node_consumer(&settings.node),
            &names.node_orders(&settings.node),
            settings,
        ),
        order_consumer(Names::ANY_CONSUMER, &names.any_orders(), settings),
    ];
    consumers.extend(
        settings
            .tags
            .iter()
            .map(|tag| order_consumer(&Names::tag_consumer(tag), &names.tag_orders(tag), settings)),
    );
    consumers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_table() {
        let names = Names::new("karajo");
        let n1 = NodeName::parse("n1").unwrap();
        assert_eq!(names.claims_bucket(), "karajo_claims");
        assert_eq!(names.runs_stream(), "KARAJO_RUNS");
        assert_eq!(names.node_orders(&n1), "karajo.run.node.n1");
        assert_eq!(names.tag_orders("gpu"), "karajo.run.tag.gpu");
        assert_eq!(names.log_subject("job", "tick", 7), "karajo.log.job.tick.7");
        assert_eq!(Names::node_consumer(&n1), "run-node-n1");
        assert_eq!(Names::inbox_prefix(&n1), "_INBOX_n1");
        let mut settings = ClusterSettings::defaults(n1);
        settings.tags = vec!["gpu".into()];
        let filters: Vec<String> = node_consumers(&names, &settings)
            .into_iter()
            .map(|c| c.filter_subject)
            .collect();
        assert_eq!(
            filters,
            ["karajo.run.node.n1", "karajo.run.any", "karajo.run.tag.gpu"]
        );
        let [claims, nodes, state] = bucket_streams(&names, &settings);
        assert_eq!(claims.name, "KV_karajo_claims");
        assert_eq!(nodes.max_age, settings.lease_ttl);
        assert_eq!(state.max_age, Duration::ZERO);
    }
}
