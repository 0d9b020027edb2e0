//! Provisioning and binding (cluster spec 5.3): create the three KV buckets **as their
//! backing streams** (async-nats 0.51's `create_key_value` fails on nats-server 2.9:
//! spec 13 trap 1), the order, log and event streams, and this node's order consumers,
//! each only when missing; then bind the buckets with `get_key_value`, which needs only
//! `STREAM.INFO` and works on 2.9. An existing object whose settings differ from
//! [`layout`] is never changed by [`provision`]: the differences are
//! logged and returned ([`Drift`]). `karajo cluster init --update` applies them through
//! [`ensure_stream`] and [`ensure_consumer`], which change only the settings that
//! differ. The names and settings themselves belong to `layout`; this module only
//! compares, creates and updates.

use std::fmt;
use std::time::Duration;

use async_nats::jetstream::consumer::{self, pull};
use async_nats::jetstream::context::{
    ConsumerInfoErrorKind, CreateStreamErrorKind, GetStreamError, GetStreamErrorKind,
};
use async_nats::jetstream::stream;
use async_nats::jetstream::{self, ErrorCode, kv};

use crate::cluster::ClusterSettings;
use crate::cluster::nats::error::{NatsError, bounded};
use crate::cluster::nats::layout::{self, Names};

/// The three KV buckets, bound.
#[derive(Debug, Clone)]
pub struct Buckets {
    /// Timer-slot and one-off claims (`<prefix>_claims`).
    pub claims: kv::Store,
    /// Node leases (`<prefix>_nodes`).
    pub nodes: kv::Store,
    /// Job-state records (`<prefix>_state`).
    pub state: kv::Store,
    /// Whether the nodes bucket has subject delete markers (servers 2.11+): an expired
    /// lease then shows as a `Purge` watch event. Older servers drop the setting
    /// silently, and liveness rests on heartbeats seen (spec 5.2, 7.1.6).
    pub markers: bool,
}

/// What [`provision`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provisioned {
    /// The streams and consumers it created (stream names; consumers as
    /// `<stream>/<consumer>`).
    pub created: Vec<String>,
    /// Settings of existing objects that differ from what karajo wants (left as they
    /// are, and logged as a warning).
    pub drift: Vec<Drift>,
    /// Whether the nodes bucket has subject delete markers (read back from the server).
    pub markers: bool,
}

/// One setting of an existing stream or consumer that differs from what karajo wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// The object: `stream KV_karajo_nodes` or `consumer KARAJO_RUNS/run-any`.
    pub object: String,
    /// The setting, as the server names it (`max_age`).
    pub setting: &'static str,
    /// What the server has.
    pub have: String,
    /// What karajo wants.
    pub want: String,
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} has {} = {}, karajo wants {}",
            self.object, self.setting, self.have, self.want
        )
    }
}

/// What [`ensure_stream`] or [`ensure_consumer`] found and did to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    /// It was missing and was created with karajo's settings.
    Created,
    /// It exists.
    Exists {
        /// Its settings that differ from karajo's (none: it matches).
        drift: Vec<Drift>,
        /// Whether those settings were applied (asked for, and there were some).
        updated: bool,
    },
}

/// The six streams karajo keeps, in the order they are provisioned: the claims, nodes
/// and state buckets' backing streams, then the order, log and event streams.
pub fn wanted_streams(names: &Names, settings: &ClusterSettings) -> [stream::Config; 6] {
    let [claims, nodes, state] = layout::bucket_streams(names, settings);
    [
        claims,
        nodes,
        state,
        layout::runs_stream(names, settings),
        layout::logs_stream(names, settings),
        layout::events_stream(names, settings),
    ]
}

/// Creates what is missing (cluster spec 5.3): the three buckets as streams, the
/// order, log and event streams, and node `settings.node`'s order consumers (its own,
/// `run-any`, one per tag). Existing objects are kept as they are; their differences
/// are logged and returned. Every call is bounded by `op_timeout`. Run it again and it
/// creates nothing.
pub async fn provision(
    js: &jetstream::Context,
    names: &Names,
    settings: &ClusterSettings,
) -> Result<Provisioned, NatsError> {
    let op_timeout = settings.op_timeout;
    let mut done = Provisioned::default();
    let nodes_stream = format!("KV_{}", names.nodes_bucket());
    let mut runs = None;
    for want in wanted_streams(names, settings) {
        let (stream, ensured) = ensure_stream(js, &want, op_timeout, false).await?;
        match ensured {
            Ensured::Created => {
                tracing::info!(stream = %want.name, "cluster: created stream");
                done.created.push(want.name.clone());
            }
            Ensured::Exists { drift, .. } => done.drift.extend(drift),
        }
        if want.name == nodes_stream {
            done.markers = has_markers(&stream.cached_info().config);
        }
        if want.name == names.runs_stream() {
            runs = Some(stream);
        }
    }
    if let Some(runs) = runs {
        for want in layout::node_consumers(names, settings) {
            let object = format!("{}/{}", runs.cached_info().config.name, name_of(&want));
            match ensure_consumer(&runs, &want, op_timeout, false).await? {
                Ensured::Created => {
                    tracing::info!(consumer = %object, "cluster: created consumer");
                    done.created.push(object);
                }
                Ensured::Exists { drift, .. } => done.drift.extend(drift),
            }
        }
    }
    if !done.drift.is_empty() {
        let list: Vec<String> = done.drift.iter().map(Drift::to_string).collect();
        tracing::warn!(
            differences = %list.join("; "),
            "cluster: existing NATS objects differ from the configuration and were left unchanged (karajo cluster init --update applies them)"
        );
    }
    Ok(done)
}

/// Creates stream `want` when it is missing. An existing one is compared with `want`;
/// with `update`, the settings that differ are applied with `update_stream`, and only
/// those (what karajo does not set, e.g. a description or placement, is kept). Returns
/// the stream as the server has it afterwards. Every call is bounded by `op_timeout`.
pub async fn ensure_stream(
    js: &jetstream::Context,
    want: &stream::Config,
    op_timeout: Duration,
    update: bool,
) -> Result<(stream::Stream, Ensured), NatsError> {
    let (stream, created) = stream_get_or_create(js, want, op_timeout).await?;
    if created {
        return Ok((stream, Ensured::Created));
    }
    let have = &stream.cached_info().config;
    let drift = stream_drift(want, have);
    if !update || drift.is_empty() {
        let ensured = Ensured::Exists {
            drift,
            updated: false,
        };
        return Ok((stream, ensured));
    }
    let next = apply_stream_drift(have, want, &drift);
    let what = || format!("update stream {}", want.name);
    bounded(op_timeout, what, js.update_stream(&next)).await?;
    let read = || format!("read stream {}", want.name);
    let stream = bounded(op_timeout, read, js.get_stream(&want.name)).await?;
    let ensured = Ensured::Exists {
        drift,
        updated: true,
    };
    Ok((stream, ensured))
}

/// Creates the order consumer `want` on `stream` when it is missing. An existing one is
/// compared with `want`; with `update`, the settings that differ are applied (a
/// create-or-update call with the consumer's own configuration, those settings
/// changed). The server refuses changes it cannot make (e.g. a filter on a 2.9 server),
/// and that refusal is the error. Every call is bounded by `op_timeout`.
pub async fn ensure_consumer(
    stream: &stream::Stream,
    want: &pull::Config,
    op_timeout: Duration,
    update: bool,
) -> Result<Ensured, NatsError> {
    let (have, created) = consumer_get_or_create(stream, want, op_timeout).await?;
    if created {
        return Ok(Ensured::Created);
    }
    let object = format!("{}/{}", stream.cached_info().config.name, name_of(want));
    let drift = consumer_drift(&object, want, &have);
    if !update || drift.is_empty() {
        return Ok(Ensured::Exists {
            drift,
            updated: false,
        });
    }
    let next = apply_consumer_drift(&have, want, &drift);
    let what = || format!("update consumer {object}");
    bounded(op_timeout, what, stream.create_consumer(next)).await?;
    Ok(Ensured::Exists {
        drift,
        updated: true,
    })
}

/// Binds the three buckets with `get_key_value`, and checks that the order, log and
/// event streams exist. Fails naming the first missing object (with `provision = false`
/// they come from `karajo cluster init`).
pub async fn bind(
    js: &jetstream::Context,
    names: &Names,
    op_timeout: Duration,
) -> Result<Buckets, NatsError> {
    let claims = bind_bucket(js, &names.claims_bucket(), op_timeout).await?;
    let nodes = bind_bucket(js, &names.nodes_bucket(), op_timeout).await?;
    let state = bind_bucket(js, &names.state_bucket(), op_timeout).await?;
    for stream in [
        names.runs_stream(),
        names.logs_stream(),
        names.events_stream(),
    ] {
        match tokio::time::timeout(op_timeout, js.get_stream(&stream)).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) if stream_not_found(&err) => {
                return Err(NatsError::Missing {
                    what: format!("stream {stream}"),
                });
            }
            Ok(Err(err)) => {
                return Err(NatsError::nats(format!("read stream {stream}"), err));
            }
            Err(_) => {
                return Err(NatsError::TimedOut {
                    what: format!("read stream {stream}"),
                    after: op_timeout,
                });
            }
        }
    }
    let markers = has_markers(&nodes.stream.cached_info().config);
    Ok(Buckets {
        claims,
        nodes,
        state,
        markers,
    })
}

/// Provisions when `settings.provision` is on, then binds: what a node does at
/// start-up (spec 7.1.2).
pub async fn open(
    js: &jetstream::Context,
    names: &Names,
    settings: &ClusterSettings,
) -> Result<Buckets, NatsError> {
    if settings.provision {
        provision(js, names, settings).await?;
    }
    bind(js, names, settings.op_timeout).await
}

/// Whether a stream's configuration, as the server reports it, has subject delete
/// markers (2.11+; older servers drop the setting).
fn has_markers(config: &stream::Config) -> bool {
    config
        .subject_delete_marker_ttl
        .is_some_and(|ttl| !ttl.is_zero())
}

/// Binds one bucket, naming it (and its stream) when it is missing.
async fn bind_bucket(
    js: &jetstream::Context,
    bucket: &str,
    op_timeout: Duration,
) -> Result<kv::Store, NatsError> {
    match tokio::time::timeout(op_timeout, js.get_key_value(bucket)).await {
        Ok(Ok(store)) => Ok(store),
        Ok(Err(err)) => {
            let missing = std::error::Error::source(&err)
                .and_then(|source| source.downcast_ref::<GetStreamError>())
                .is_some_and(stream_not_found);
            if missing {
                Err(NatsError::Missing {
                    what: format!("bucket {bucket} (stream KV_{bucket})"),
                })
            } else {
                Err(NatsError::nats(format!("bind bucket {bucket}"), err))
            }
        }
        Err(_) => Err(NatsError::TimedOut {
            what: format!("bind bucket {bucket}"),
            after: op_timeout,
        }),
    }
}

/// Whether a stream lookup failed because the stream does not exist.
fn stream_not_found(err: &GetStreamError) -> bool {
    match err.kind() {
        GetStreamErrorKind::JetStream(js) => {
            js.error_code() == ErrorCode::STREAM_NOT_FOUND || js.code() == 404
        }
        _ => false,
    }
}

/// The stream named in `want`, created with `want` when missing; and whether it was
/// created here. Two nodes provisioning at once is fine: the loser of the create reads
/// the winner's stream.
async fn stream_get_or_create(
    js: &jetstream::Context,
    want: &stream::Config,
    op_timeout: Duration,
) -> Result<(stream::Stream, bool), NatsError> {
    let what = || format!("read stream {}", want.name);
    match tokio::time::timeout(op_timeout, js.get_stream(&want.name)).await {
        Ok(Ok(stream)) => return Ok((stream, false)),
        Ok(Err(err)) if stream_not_found(&err) => {}
        Ok(Err(err)) => return Err(NatsError::nats(what(), err)),
        Err(_) => {
            return Err(NatsError::TimedOut {
                what: what(),
                after: op_timeout,
            });
        }
    }
    let create = || format!("create stream {}", want.name);
    match tokio::time::timeout(op_timeout, js.create_stream(want.clone())).await {
        Ok(Ok(stream)) => Ok((stream, true)),
        Ok(Err(err)) => {
            let raced = matches!(err.kind(), CreateStreamErrorKind::JetStream(js)
                if js.error_code() == ErrorCode::STREAM_NAME_EXIST);
            if raced {
                let stream = bounded(op_timeout, what, js.get_stream(&want.name)).await?;
                Ok((stream, false))
            } else {
                Err(NatsError::nats(create(), err))
            }
        }
        Err(_) => Err(NatsError::TimedOut {
            what: create(),
            after: op_timeout,
        }),
    }
}

/// The durable name of an order consumer.
fn name_of(want: &pull::Config) -> String {
    want.durable_name.clone().unwrap_or_default()
}

/// The consumer `want` on `stream`, created when missing; its configuration as the
/// server reports it, and whether it was created here.
async fn consumer_get_or_create(
    stream: &stream::Stream,
    want: &pull::Config,
    op_timeout: Duration,
) -> Result<(consumer::Config, bool), NatsError> {
    let name = name_of(want);
    let stream_name = stream.cached_info().config.name.clone();
    let what = || format!("read consumer {name} of stream {stream_name}");
    match tokio::time::timeout(op_timeout, stream.consumer_info(&name)).await {
        Ok(Ok(info)) => return Ok((info.config, false)),
        Ok(Err(err)) if consumer_missing(err.kind()) => {}
        Ok(Err(err)) => return Err(NatsError::nats(what(), err)),
        Err(_) => {
            return Err(NatsError::TimedOut {
                what: what(),
                after: op_timeout,
            });
        }
    }
    let create = || format!("create consumer {name} of stream {stream_name}");
    match tokio::time::timeout(op_timeout, stream.create_consumer(want.clone())).await {
        Ok(Ok(created)) => Ok((created.cached_info().config.clone(), true)),
        Ok(Err(err)) => {
            // Another node created it in between: read it.
            match tokio::time::timeout(op_timeout, stream.consumer_info(&name)).await {
                Ok(Ok(info)) => Ok((info.config, false)),
                _ => Err(NatsError::nats(create(), err)),
            }
        }
        Err(_) => Err(NatsError::TimedOut {
            what: create(),
            after: op_timeout,
        }),
    }
}

/// Whether a consumer lookup failed because the consumer does not exist.
fn consumer_missing(kind: ConsumerInfoErrorKind) -> bool {
    match kind {
        ConsumerInfoErrorKind::NotFound => true,
        ConsumerInfoErrorKind::JetStream(js) => js.code() == 404,
        _ => false,
    }
}

/// A count limit as the server shows it: zero or negative is no limit.
fn limit(value: i64) -> String {
    if value <= 0 {
        "unlimited".into()
    } else {
        value.to_string()
    }
}

/// A duration in whole seconds, or `none` for zero.
fn age(value: Duration) -> String {
    if value.is_zero() {
        "none".into()
    } else {
        format!("{}s", value.as_secs_f64())
    }
}

/// The settings karajo sets on a stream, as comparable text.
fn stream_settings(config: &stream::Config) -> Vec<(&'static str, String)> {
    let mut settings = vec![
        ("subjects", format!("{:?}", config.subjects)),
        ("retention", format!("{:?}", config.retention)),
        ("storage", format!("{:?}", config.storage)),
        ("discard", format!("{:?}", config.discard)),
        ("num_replicas", config.num_replicas.max(1).to_string()),
        ("max_age", age(config.max_age)),
        ("max_bytes", limit(config.max_bytes)),
        (
            "max_msgs_per_subject",
            limit(config.max_messages_per_subject),
        ),
        ("allow_rollup_hdrs", config.allow_rollup.to_string()),
        ("deny_delete", config.deny_delete.to_string()),
        ("allow_direct", config.allow_direct.to_string()),
    ];
    if !config.duplicate_window.is_zero() {
        settings.push(("duplicate_window", age(config.duplicate_window)));
    }
    settings
}

/// The differences between the stream karajo wants and the one the server has. The
/// duplicate window is compared only when karajo sets one (the server picks it
/// otherwise); subject delete markers are not compared (older servers drop them).
fn stream_drift(want: &stream::Config, have: &stream::Config) -> Vec<Drift> {
    let have = stream_settings(have);
    stream_settings(want)
        .into_iter()
        .filter_map(|(setting, want_value)| {
            let have_value = have
                .iter()
                .find(|(name, _)| *name == setting)
                .map_or_else(|| "unset".to_string(), |(_, value)| value.clone());
            (have_value != want_value).then(|| Drift {
                object: format!("stream {}", want.name),
                setting,
                have: have_value,
                want: want_value,
            })
        })
        .collect()
}

/// `have` with the settings named in `drift` taken from `want`: what `--update` sends.
fn apply_stream_drift(
    have: &stream::Config,
    want: &stream::Config,
    drift: &[Drift],
) -> stream::Config {
    let mut next = have.clone();
    for setting in drift.iter().map(|d| d.setting) {
        match setting {
            "subjects" => next.subjects = want.subjects.clone(),
            "retention" => next.retention = want.retention,
            "storage" => next.storage = want.storage,
            "discard" => next.discard = want.discard,
            "num_replicas" => next.num_replicas = want.num_replicas,
            "max_age" => {
                next.max_age = want.max_age;
                // The server chose the duplicate window from the old max_age (at most
                // it), and refuses one longer than the new: let it choose again.
                if want.duplicate_window.is_zero() {
                    next.duplicate_window = Duration::ZERO;
                }
            }
            "max_bytes" => next.max_bytes = want.max_bytes,
            "max_msgs_per_subject" => {
                next.max_messages_per_subject = want.max_messages_per_subject;
            }
            "allow_rollup_hdrs" => next.allow_rollup = want.allow_rollup,
            "deny_delete" => next.deny_delete = want.deny_delete,
            "allow_direct" => next.allow_direct = want.allow_direct,
            "duplicate_window" => next.duplicate_window = want.duplicate_window,
            _ => {}
        }
    }
    next
}

/// `have` with the settings named in `drift` taken from `want`: what `--update` sends.
fn apply_consumer_drift(
    have: &consumer::Config,
    want: &pull::Config,
    drift: &[Drift],
) -> consumer::Config {
    let mut next = have.clone();
    for setting in drift.iter().map(|d| d.setting) {
        match setting {
            "filter_subject" => next.filter_subject = want.filter_subject.clone(),
            "ack_policy" => next.ack_policy = want.ack_policy,
            "ack_wait" => next.ack_wait = want.ack_wait,
            "max_deliver" => next.max_deliver = want.max_deliver,
            "max_ack_pending" => next.max_ack_pending = want.max_ack_pending,
            _ => {}
        }
    }
    next
}

/// The differences between the order consumer karajo wants and the one the server has.
fn consumer_drift(object: &str, want: &pull::Config, have: &consumer::Config) -> Vec<Drift> {
    let pairs = [
        (
            "filter_subject",
            want.filter_subject.clone(),
            have.filter_subject.clone(),
        ),
        (
            "ack_policy",
            format!("{:?}", want.ack_policy),
            format!("{:?}", have.ack_policy),
        ),
        ("ack_wait", age(want.ack_wait), age(have.ack_wait)),
        (
            "max_deliver",
            limit(want.max_deliver),
            limit(have.max_deliver),
        ),
        (
            "max_ack_pending",
            limit(want.max_ack_pending),
            limit(have.max_ack_pending),
        ),
    ];
    pairs
        .into_iter()
        .filter(|(_, want, have)| want != have)
        .map(|(setting, want, have)| Drift {
            object: format!("consumer {object}"),
            setting,
            have,
            want,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::NodeName;
    use async_nats::jetstream::consumer::IntoConsumerConfig;

    fn settings() -> ClusterSettings {
        ClusterSettings::defaults(NodeName::parse("n1").unwrap())
    }

    #[test]
    fn a_stream_as_the_server_echoes_it_has_no_drift() {
        let names = Names::new("karajo");
        let want = layout::logs_stream(&names, &settings());
        let mut have = want.clone();
        // What a server fills in by itself is not a difference.
        have.max_messages_per_subject = -1;
        have.duplicate_window = Duration::from_secs(120);
        assert_eq!(stream_drift(&want, &have), []);
    }

    #[test]
    fn drift_names_the_stream_the_setting_and_both_values() {
        let names = Names::new("karajo");
        let mut s = settings();
        s.lease_ttl = Duration::from_secs(3);
        let [_, want, _] = layout::bucket_streams(&names, &s);
        let mut have = want.clone();
        have.max_age = Duration::from_secs(15);
        have.subject_delete_marker_ttl = None;
        let drift = stream_drift(&want, &have);
        assert_eq!(drift.len(), 1, "{drift:?}");
        assert_eq!(
            drift[0].to_string(),
            "stream KV_karajo_nodes has max_age = 15s, karajo wants 3s"
        );
    }

    #[test]
    fn applying_drift_changes_only_the_differing_settings() {
        let names = Names::new("karajo");
        let mut s = settings();
        s.lease_ttl = Duration::from_secs(3);
        let [_, want, _] = layout::bucket_streams(&names, &s);
        let mut have = want.clone();
        have.max_age = Duration::from_secs(15);
        have.description = Some("kept".into());
        have.allow_message_ttl = false;
        let next = apply_stream_drift(&have, &want, &stream_drift(&want, &have));
        assert_eq!(next.max_age, Duration::from_secs(3));
        assert_eq!(next.description.as_deref(), Some("kept"));
        assert!(!next.allow_message_ttl, "not compared, so not changed");
        assert_eq!(stream_drift(&want, &next), []);

        let want = layout::order_consumer("run-any", "karajo.run.any", &s);
        let mut have = want.clone().into_consumer_config();
        have.max_deliver = 9;
        have.description = Some("kept".into());
        let drift = consumer_drift("KARAJO_RUNS/run-any", &want, &have);
        let next = apply_consumer_drift(&have, &want, &drift);
        assert_eq!(next.max_deliver, s.dispatch_max_deliver);
        assert_eq!(next.description.as_deref(), Some("kept"));
        assert_eq!(consumer_drift("KARAJO_RUNS/run-any", &want, &next), []);
    }

    #[test]
    fn consumer_drift_compares_the_order_settings() {
        let s = settings();
        let want = layout::order_consumer("run-any", "karajo.run.any", &s);
        let mut have = want.clone().into_consumer_config();
        assert_eq!(consumer_drift("KARAJO_RUNS/run-any", &want, &have), []);
        have.max_deliver = 9;
        let drift = consumer_drift("KARAJO_RUNS/run-any", &want, &have);
        assert_eq!(drift.len(), 1);
        assert_eq!(drift[0].setting, "max_deliver");
        assert_eq!(drift[0].object, "consumer KARAJO_RUNS/run-any");
    }
}
