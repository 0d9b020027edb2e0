//! The NATS permissions one node needs and no more (cluster spec 10.2, Appendix B):
//! the `nats-server.conf` user entry that `karajo cluster permissions --node N` prints.
//! A node may bind the buckets and streams, claim slots, write job records, write only
//! its own lease, dispatch orders to any node, pull only its own and the shared
//! consumers, ship and read logs, and publish its events; it may not create or delete a
//! stream, touch another node's lease or consumer, or read another node's replies
//! (its inbox prefix is `_INBOX_<node>`).

use super::layout::Names;
use crate::cluster::NodeName;

/// The subjects node `node` (with `tags`) may publish to, in the template's order.
pub fn publish_subjects(names: &Names, node: &NodeName, tags: &[String]) -> Vec<String> {
    let claims = names.claims_bucket();
    let nodes = names.nodes_bucket();
    let state = names.state_bucket();
    let runs = names.runs_stream();
    let logs = names.logs_stream();
    let events = names.events_stream();
    let prefix = &names.prefix;
    let own = Names::node_consumer(node);
    let any = Names::ANY_CONSUMER;
    let mut subjects = vec!["$JS.API.INFO".to_string()];
    for bucket in [&claims, &nodes, &state] {
        subjects.push(format!("$JS.API.STREAM.INFO.KV_{bucket}"));
    }
    for stream in [&runs, &logs, &events] {
        subjects.push(format!("$JS.API.STREAM.INFO.{stream}"));
    }
    for bucket in [&claims, &nodes, &state] {
        subjects.push(format!("$JS.API.DIRECT.GET.KV_{bucket}.>"));
    }
    subjects.push(format!("$JS.API.DIRECT.GET.{logs}.>"));
    subjects.push(format!("$KV.{claims}.>"));
    subjects.push(format!("$KV.{state}.>"));
    subjects.push(format!("$KV.{nodes}.{node}"));
    // Watchers and ordered consumers: the nodes and state buckets, logs and events.
    for stream in [
        format!("KV_{nodes}"),
        format!("KV_{state}"),
        logs.clone(),
        events.clone(),
    ] {
        subjects.push(format!("$JS.API.CONSUMER.CREATE.{stream}"));
        subjects.push(format!("$JS.API.CONSUMER.CREATE.{stream}.>"));
        subjects.push(format!("$JS.API.CONSUMER.DELETE.{stream}.*"));
        subjects.push(format!("$JS.API.CONSUMER.INFO.{stream}.*"));
        subjects.push(format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.*"));
    }
    // Orders: its own durable consumer (which it may create), the shared ones.
    subjects.push(format!("$JS.API.CONSUMER.CREATE.{runs}.{own}.>"));
    let mut pulled = vec![own.clone(), any.to_string()];
    pulled.extend(tags.iter().map(|t| Names::tag_consumer(t)));
    for consumer in &pulled {
        subjects.push(format!("$JS.API.CONSUMER.INFO.{runs}.{consumer}"));
        subjects.push(format!("$JS.API.CONSUMER.MSG.NEXT.{runs}.{consumer}"));
        subjects.push(format!("$JS.ACK.{runs}.{consumer}.>"));
    }
    subjects.push(format!("$JS.API.STREAM.MSG.DELETE.{runs}"));
    subjects.push("$JS.FC.>".to_string());
    subjects.push(format!("{prefix}.run.>"));
    subjects.push(format!("{prefix}.log.>"));
    subjects.push(format!("{prefix}.event.{node}.>"));
    subjects
}

/// The subjects node `node` may subscribe to: its own inbox, and the advisory of
/// orders that reached `max_deliver`.
pub fn subscribe_subjects(names: &Names, node: &NodeName) -> Vec<String> {
    vec![
        format!("{}.>", Names::inbox_prefix(node)),
        format!(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.*",
            names.runs_stream()
        ),
    ]
}

/// The `nats-server.conf` user entry of node `node`, authenticated by the nkey
/// `public_key` (`U…`), or a placeholder to replace when `None`.
pub fn user_entry(
    names: &Names,
    node: &NodeName,
    tags: &[String],
    public_key: Option<&str>,
) -> String {
    let quote = |list: Vec<String>| {
        list.iter()
            .map(|s| format!("          \"{s}\""))
            .collect::<Vec<_>>()
            .join(",\n")
    };
    format!(
        "# karajo node {node} (prefix {prefix}): put inside authorization {{ users = [ ... ] }}\n\
         {{ nkey: {key}, permissions: {{\n\
         \x20   publish: {{ allow: [\n{publish}\n        ] }}\n\
         \x20   subscribe: {{ allow: [\n{subscribe}\n        ] }}\n\
         }} }}\n",
        prefix = names.prefix,
        key = public_key.unwrap_or("U_REPLACE_WITH_THE_NODE_PUBLIC_NKEY"),
        publish = quote(publish_subjects(names, node, tags)),
        subscribe = quote(subscribe_subjects(names, node)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_may_write_only_its_own_lease_and_pull_only_its_own_and_shared_consumers() {
        let names = Names::new("karajo");
        let n1 = NodeName::parse("n1").unwrap();
        let publish = publish_subjects(&names, &n1, &["gpu".to_string()]);
        for allowed in [
            "$KV.karajo_nodes.n1",
            "$KV.karajo_claims.>",
            "$JS.API.CONSUMER.CREATE.KARAJO_RUNS.run-node-n1.>",
            "$JS.API.CONSUMER.MSG.NEXT.KARAJO_RUNS.run-any",
            "$JS.ACK.KARAJO_RUNS.run-tag-gpu.>",
            "karajo.run.>",
            "karajo.event.n1.>",
        ] {
            assert!(publish.iter().any(|s| s == allowed), "{allowed}");
        }
        for refused in [
            "$KV.karajo_nodes.>",
            "$KV.karajo_nodes.n2",
            "karajo.event.>",
        ] {
            assert!(!publish.iter().any(|s| s == refused), "{refused}");
        }
        assert!(!publish.iter().any(|s| s.contains("run-node-n2")));
        assert!(!publish.iter().any(|s| s.contains("STREAM.CREATE")));
        assert_eq!(subscribe_subjects(&names, &n1)[0], "_INBOX_n1.>");
        let entry = user_entry(&names, &n1, &[], Some("UABC"));
        assert!(entry.contains("{ nkey: UABC, permissions: {"), "{entry}");
        assert!(entry.contains("\"_INBOX_n1.>\""), "{entry}");
    }
}
