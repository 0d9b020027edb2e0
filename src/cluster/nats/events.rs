//! The cluster event stream (cluster spec 11.3): Steward's central error log, readable
//! from every node. A [`ClusterEvent`] says what happened to the cluster (a node joined
//! or was lost, a slot was missed, an order was refused, NATS refused a permission, …);
//! it is published to `<prefix>.event.<node>.<type>` in the events stream, which keeps a
//! week of them and at most 1,000 per node and type.
//!
//! [`publish_event`] publishes one and waits for the server's acknowledgement.
//! [`EventPublisher`] is what the daemon holds: [`EventPublisher::emit`] never waits and
//! never fails. It writes the event to the local log at once, then hands it to one
//! task that publishes in order. When its queue is full or NATS is away, the event
//! is dropped from the stream and counted ([`EventPublisher::dropped`]), but it is still
//! in the local log. [`recent_events`] reads the newest events back, newest first, for the
//! "Cluster events" page and `GET /karajo/api/cluster/events`.
//!
//! Events must never carry secrets. Callers pass no secret, command text, environment
//! or credential in `message`, `job` or `run`: they name jobs, runs and nodes and say what
//! happened. This module adds only the node, the time and the type, and it cuts texts
//! at [`MESSAGE_MAX`] bytes so one event stays small.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::Context;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::stream::Stream;
use futures_util::StreamExt as _;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::cluster::NodeName;
use crate::cluster::nats::connect::Link;
use crate::cluster::nats::error::{NatsError, bounded};
use crate::cluster::nats::layout::Names;

/// The most bytes of an event's `message`; a longer one is cut on a character
/// boundary and ends in `…`.
pub const MESSAGE_MAX: usize = 1000;

/// The most bytes of an event's `job` or `run`.
const ID_MAX: usize = 256;

/// How many events an [`EventPublisher`] holds while its task publishes.
pub const QUEUE_CAPACITY: usize = 256;

/// How many events `GET /karajo/api/cluster/events` returns without `limit` (spec 12.2).
pub const DEFAULT_LIMIT: usize = 100;

/// The most events [`recent_events`] returns (spec 12.2).
pub const MAX_LIMIT: usize = 1000;

/// How far back the events page and the API look (spec 11.3): a day.
pub const RECENT_WINDOW: SignedDuration = SignedDuration::from_hours(24);

/// The `limit` of [`recent_events`] for a request that asked for `requested`:
/// [`DEFAULT_LIMIT`] when it did not ask, else between 1 and [`MAX_LIMIT`].
pub fn request_limit(requested: Option<usize>) -> usize {
    requested.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

/// The `since` of [`recent_events`] for the page and the API: [`RECENT_WINDOW`]
/// before `now`.
pub fn recent_since(now: Timestamp) -> Timestamp {
    now.checked_sub(RECENT_WINDOW).unwrap_or(Timestamp::MIN)
}

/// What happened: the event types of cluster spec 11.3. The name is the last token of
/// the subject and the `type` of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterEventKind {
    /// This node joined the cluster (its lease was created).
    Join,
    /// This node left the cluster cleanly (its lease was deleted).
    Leave,
    /// This node's lease was written by someone else or expired; it stops taking orders.
    LeaseLost,
    /// A node stopped sending heartbeats and was swept.
    NodeLost,
    /// A claim got no answer in time; the slot may or may not have been taken.
    ClaimUncertain,
    /// A timer slot passed without a run.
    Missed,
    /// A missed slot was run late.
    Catchup,
    /// A node refused an order (bad signature, unknown job, deadline passed).
    OrderRejected,
    /// An order reached its delivery limit without being accepted.
    OrderDead,
    /// No node accepted an order within `dispatch_timeout`.
    NotAccepted,
    /// A run's node was lost before the run finished.
    RunLost,
    /// Nodes' configurations differ (config digest or secret).
    ConfigMismatch,
    /// A node's clock is off from the server's.
    ClockSkew,
    /// Run logs were gone from the log stream before this node collected them.
    LogGap,
    /// The server refused this node a subject (a permission violation).
    NatsPermission,
    /// Another error reported by the server or the client.
    NatsError,
}

impl ClusterEventKind {
    /// Every kind, in the order of the spec.
    pub const ALL: [Self; 16] = [
        Self::Join,
        Self::Leave,
        Self::LeaseLost,
        Self::NodeLost,
        Self::ClaimUncertain,
        Self::Missed,
        Self::Catchup,
        Self::OrderRejected,
        Self::OrderDead,
        Self::NotAccepted,
        Self::RunLost,
        Self::ConfigMismatch,
        Self::ClockSkew,
        Self::LogGap,
        Self::NatsPermission,
        Self::NatsError,
    ];

    /// The name in the subject and the body: `lease_lost`, `nats_error`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Join => "join",
            Self::Leave => "leave",
            Self::LeaseLost => "lease_lost",
            Self::NodeLost => "node_lost",
            Self::ClaimUncertain => "claim_uncertain",
            Self::Missed => "missed",
            Self::Catchup => "catchup",
            Self::OrderRejected => "order_rejected",
            Self::OrderDead => "order_dead",
            Self::NotAccepted => "not_accepted",
            Self::RunLost => "run_lost",
            Self::ConfigMismatch => "config_mismatch",
            Self::ClockSkew => "clock_skew",
            Self::LogGap => "log_gap",
            Self::NatsPermission => "nats_permission",
            Self::NatsError => "nats_error",
        }
    }

    /// The kind named `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// How loud the local log line is: join, leave and catch-up are news, NATS refusing
    /// a permission or failing is an error (spec 10.2), the rest are warnings.
    fn severity(self) -> Severity {
        match self {
            Self::Join | Self::Leave | Self::Catchup => Severity::Info,
            Self::NatsPermission | Self::NatsError => Severity::Error,
            _ => Severity::Warn,
        }
    }
}

impl fmt::Display for ClusterEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The level of an event's local log line.
enum Severity {
    Info,
    Warn,
    Error,
}

/// One cluster event. Its JSON body is `{"at","node","type","job"?,"run"?,"message"}`;
/// `job` and `run` are left out when `None`. No field may carry a secret (see the
/// module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterEvent {
    /// When it happened, by the publishing node's clock.
    pub at: Timestamp,
    /// The node it happened on (the one that publishes it).
    pub node: NodeName,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: ClusterEventKind,
    /// The job it is about (`<kind>.<id>` or the job id), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The run it is about (its run id), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// What an operator should know, at most [`MESSAGE_MAX`] bytes. No secrets.
    pub message: String,
}

impl ClusterEvent {
    /// An event of `kind` on `node` now, saying `message` (cut at [`MESSAGE_MAX`]).
    pub fn new(node: NodeName, kind: ClusterEventKind, message: impl Into<String>) -> Self {
        Self {
            at: Timestamp::now(),
            node,
            kind,
            job: None,
            run: None,
            message: cut(message.into(), MESSAGE_MAX),
        }
    }

    /// The same event about job `job`.
    pub fn with_job(mut self, job: impl Into<String>) -> Self {
        self.job = Some(cut(job.into(), ID_MAX));
        self
    }

    /// The same event about run `run`.
    pub fn with_run(mut self, run: impl Into<String>) -> Self {
        self.run = Some(cut(run.into(), ID_MAX));
        self
    }

    /// The same event with every text within its bound (the fields are public, so an
    /// event may have been built without [`ClusterEvent::new`]).
    fn bounded_texts(mut self) -> Self {
        self.message = cut(self.message, MESSAGE_MAX);
        self.job = self.job.map(|job| cut(job, ID_MAX));
        self.run = self.run.map(|run| cut(run, ID_MAX));
        self
    }

    /// Writes the event to the local log, at the level its kind calls for.
    fn log_locally(&self) {
        let (node, kind) = (self.node.as_str(), self.kind.as_str());
        let (job, run_id, message) = (self.job.as_deref(), self.run.as_deref(), &self.message);
        match self.kind.severity() {
            Severity::Info => {
                tracing::info!(node, event = kind, job, run_id, "cluster event: {message}");
            }
            Severity::Warn => {
                tracing::warn!(node, event = kind, job, run_id, "cluster event: {message}");
            }
            Severity::Error => {
                tracing::error!(node, event = kind, job, run_id, "cluster event: {message}");
            }
        }
    }
}

/// `text` cut to at most `max` bytes on a character boundary, ending in `…` when cut.
fn cut(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mark = '…';
    let mut end = max.saturating_sub(mark.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push(mark);
    text
}

/// Publishes `event` on `<prefix>.event.<node>.<type>` and returns the stream sequence
/// it was stored at. The publish and its acknowledgement are bounded by `op_timeout`;
/// a timeout means the event may still be stored (spec 9.4). Texts longer than their
/// bound are cut.
pub async fn publish_event(
    js: &Context,
    names: &Names,
    event: &ClusterEvent,
    op_timeout: Duration,
) -> Result<u64, NatsError> {
    let subject = names.event_subject(&event.node, event.kind.as_str());
    let what = || format!("publish event {} on {subject}", event.kind);
    let body = serde_json::to_vec(&event.clone().bounded_texts())
        .map_err(|err| NatsError::nats(what(), err))?;
    let publish = async {
        let ack = js.publish(subject.clone(), body.into()).await?;
        ack.await
    };
    let ack = bounded(op_timeout, what, publish).await?;
    Ok(ack.sequence)
}

/// The counts an [`EventPublisher`] and its task share.
#[derive(Debug, Default)]
struct Counts {
    published: AtomicU64,
    dropped: AtomicU64,
}

/// The daemon's handle on the event stream: [`EventPublisher::emit`] logs an event
/// locally and queues it for one task that publishes the queue in order.
///
/// Cheap to clone; every clone feeds the same queue of [`QUEUE_CAPACITY`] events. The
/// task stops once every handle is dropped, after publishing what is queued. An event is
/// dropped, and counted in [`EventPublisher::dropped`], when the queue is full, when
/// the link is down as the task takes it (it is not buffered for later), or when its
/// publish fails or times out (such a one may still land: spec 9.4).
#[derive(Debug, Clone)]
pub struct EventPublisher {
    queue: mpsc::Sender<ClusterEvent>,
    counts: Arc<Counts>,
}

impl EventPublisher {
    /// Starts the publishing task on `link`, under `names`, each publish bounded by
    /// `op_timeout`. Call it within a Tokio runtime.
    pub fn spawn(link: Link, names: Names, op_timeout: Duration) -> Self {
        Self::start(link, names, op_timeout, QUEUE_CAPACITY).0
    }

    fn start(
        link: Link,
        names: Names,
        op_timeout: Duration,
        capacity: usize,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (queue, rx) = mpsc::channel(capacity.max(1));
        let counts = Arc::new(Counts::default());
        let task = tokio::spawn(drain_queue(
            link,
            names,
            op_timeout,
            rx,
            Arc::clone(&counts),
        ));
        (Self { queue, counts }, task)
    }

    /// Writes `event` to the local log and queues it for the stream. Never waits and
    /// never fails: when the queue is full the event is dropped and counted.
    pub fn emit(&self, event: ClusterEvent) {
        let event = event.bounded_texts();
        event.log_locally();
        if self.queue.try_send(event).is_err() {
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many events did not reach the stream (they are in the local log).
    pub fn dropped(&self) -> u64 {
        self.counts.dropped.load(Ordering::Relaxed)
    }

    /// How many events the server acknowledged.
    pub fn published(&self) -> u64 {
        self.counts.published.load(Ordering::Relaxed)
    }
}

/// The task behind an [`EventPublisher`]: publishes the queue in order until every
/// handle is gone. Says once when events start being dropped and once when they get
/// through again, not for every event (each one is in the local log already).
async fn drain_queue(
    link: Link,
    names: Names,
    op_timeout: Duration,
    mut queue: mpsc::Receiver<ClusterEvent>,
    counts: Arc<Counts>,
) {
    let mut dropped_in_a_row: u64 = 0;
    while let Some(event) = queue.recv().await {
        let result = if link.is_connected() {
            publish_event(link.jetstream(), &names, &event, op_timeout)
                .await
                .map_err(|err| err.to_string())
        } else {
            Err("the link to NATS is down".to_string())
        };
        match result {
            Ok(_) => {
                counts.published.fetch_add(1, Ordering::Relaxed);
                if dropped_in_a_row > 0 {
                    tracing::info!(
                        dropped = dropped_in_a_row,
                        "cluster events reach the event stream again"
                    );
                    dropped_in_a_row = 0;
                }
            }
            Err(err) => {
                counts.dropped.fetch_add(1, Ordering::Relaxed);
                if dropped_in_a_row == 0 {
                    tracing::warn!(%err, "cluster events are not reaching the event stream; they are dropped there and kept in this log");
                }
                dropped_in_a_row += 1;
            }
        }
    }
}

/// The newest events at or after `since` (by the server's time stamps), at most
/// `limit` of them (clamped to 1..=[`MAX_LIMIT`]), **newest first**: what the events
/// page and `GET /karajo/api/cluster/events` show, in their order. Use
/// [`request_limit`] and [`recent_since`] for their parameters.
///
/// Reads with ordered consumers: first the last `limit` stream sequences, then, only
/// when those hold fewer than `limit` events and may not reach back to `since` (the
/// per-subject limit left gaps), the events from `since` up to them. It stops at the
/// stream's last sequence as it was when called, so it returns as soon as what is
/// there is read; each call to the server is bounded by `op_timeout`. The node and type
/// are taken from the subject, which the permission template ties to the publisher;
/// bodies that are not an event are skipped.
pub async fn recent_events(
    js: &Context,
    names: &Names,
    limit: usize,
    since: Timestamp,
    op_timeout: Duration,
) -> Result<Vec<ClusterEvent>, NatsError> {
    let limit = limit.clamp(1, MAX_LIMIT);
    let stream_name = names.events_stream();
    let what = || format!("read events from stream {stream_name}");
    let stream = bounded(op_timeout, what, js.get_stream(&stream_name)).await?;
    let state = &stream.cached_info().state;
    let last_at = Timestamp::from_nanosecond(state.last_timestamp.unix_timestamp_nanos())
        .unwrap_or(Timestamp::MAX);
    if state.messages == 0 || last_at < since {
        return Ok(Vec::new());
    }
    let (first, last) = (state.first_sequence, state.last_sequence);
    let reader = Reader {
        stream: &stream,
        names,
        since,
        op_timeout,
        stream_name: &stream_name,
    };

    let window_start = last.saturating_sub(limit as u64 - 1).max(first);
    let newest = reader
        .read(
            DeliverPolicy::ByStartSequence {
                start_sequence: window_start,
            },
            last,
            limit,
        )
        .await?;
    let complete =
        newest.events.len() >= limit || newest.reached_before_since || window_start <= first;
    if complete {
        return Ok(newest.events.into_iter().rev().collect());
    }
    let start_time = async_nats::datetime::from_nanos(since.as_nanosecond())
        .map_err(|err| NatsError::nats(what(), err))?;
    let older = reader
        .read(
            DeliverPolicy::ByStartTime { start_time },
            window_start - 1,
            limit - newest.events.len(),
        )
        .await?;
    let oldest_first = older.events.into_iter().chain(newest.events);
    Ok(oldest_first.rev().collect())
}

/// What one ordered consumer read.
struct Read {
    /// The newest `keep` events read, oldest first.
    events: VecDeque<ClusterEvent>,
    /// Whether a message older than `since` was seen: nothing before it is wanted.
    reached_before_since: bool,
}

/// Reads a range of the events stream with one ordered consumer.
struct Reader<'a> {
    stream: &'a Stream,
    names: &'a Names,
    since: Timestamp,
    op_timeout: Duration,
    stream_name: &'a str,
}

impl Reader<'_> {
    /// Reads from `start` up to stream sequence `end`, and keeps the newest `keep`
    /// events at or after `since`.
    async fn read(&self, start: DeliverPolicy, end: u64, keep: usize) -> Result<Read, NatsError> {
        let what = || format!("read events from stream {}", self.stream_name);
        let mut read = Read {
            events: VecDeque::with_capacity(keep),
            reached_before_since: false,
        };
        let consumer = bounded(
            self.op_timeout,
            what,
            self.stream.create_consumer(OrderedConfig {
                filter_subject: format!("{}.event.>", self.names.prefix),
                deliver_policy: start,
                ..Default::default()
            }),
        )
        .await?;
        let expected = consumer.cached_info().num_pending;
        if expected == 0 {
            return Ok(read);
        }
        let mut messages = bounded(self.op_timeout, what, consumer.messages()).await?;
        let mut delivered = 0u64;
        let mut last_seq = 0u64;
        while delivered < expected {
            let message = match tokio::time::timeout(self.op_timeout, messages.next()).await {
                Err(_) => {
                    return Err(NatsError::TimedOut {
                        what: what(),
                        after: self.op_timeout,
                    });
                }
                Ok(None) => break,
                Ok(Some(Err(err))) => return Err(NatsError::nats(what(), err)),
                Ok(Some(Ok(message))) => message,
            };
            let info = message.info().map_err(|err| NatsError::Nats {
                what: what(),
                source: err,
            })?;
            let (seq, pending) = (info.stream_sequence, info.pending);
            let published = Timestamp::from_nanosecond(info.published.unix_timestamp_nanos())
                .unwrap_or(Timestamp::MIN);
            // A recreated ordered consumer may go back; what is behind is read.
            if seq <= last_seq {
                continue;
            }
            last_seq = seq;
            delivered += 1;
            if seq > end {
                break;
            }
            if published < self.since {
                read.reached_before_since = true;
            } else if let Some(event) =
                parse_event(self.names, message.subject.as_str(), &message.payload)
            {
                if read.events.len() == keep {
                    read.events.pop_front();
                }
                read.events.push_back(event);
            }
            if seq >= end || pending == 0 {
                break;
            }
        }
        Ok(read)
    }
}

/// The event in a message on `subject` with body `payload`, or `None` when it is not
/// one. The node and type of the subject win over the body's.
fn parse_event(names: &Names, subject: &str, payload: &[u8]) -> Option<ClusterEvent> {
    let mut event = match serde_json::from_slice::<ClusterEvent>(payload) {
        Ok(event) => event.bounded_texts(),
        Err(err) => {
            tracing::debug!(%subject, %err, "skipping a message of the event stream that is not an event");
            return None;
        }
    };
    let (node, kind) = subject
        .strip_prefix(&format!("{}.event.", names.prefix))?
        .split_once('.')?;
    event.node = NodeName::parse(node).ok()?;
    event.kind = ClusterEventKind::parse(kind)?;
    Some(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterSettings;

    fn n1() -> NodeName {
        NodeName::parse("n1").unwrap()
    }

    #[test]
    fn every_kind_is_named_as_serde_names_it() {
        for kind in ClusterEventKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(ClusterEventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ClusterEventKind::parse("nope"), None);
    }

    #[test]
    fn the_body_has_the_spec_fields_and_leaves_out_what_is_absent() {
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let bare = ClusterEvent {
            at,
            ..ClusterEvent::new(n1(), ClusterEventKind::LeaseLost, "lease taken")
        };
        assert_eq!(
            serde_json::to_string(&bare).unwrap(),
            r#"{"at":"2027-01-15T08:00:00Z","node":"n1","type":"lease_lost","message":"lease taken"}"#
        );
        let full = bare.clone().with_job("job.nightly").with_run("r-1");
        let value: serde_json::Value = serde_json::to_value(&full).unwrap();
        assert_eq!(value["job"], "job.nightly");
        assert_eq!(value["run"], "r-1");
        let back: ClusterEvent = serde_json::from_value(value).unwrap();
        assert_eq!(back, full);
    }

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MESSAGE_MAX);
        let event = ClusterEvent::new(n1(), ClusterEventKind::NatsError, long);
        assert!(event.message.len() <= MESSAGE_MAX);
        assert!(event.message.ends_with('…'));
        assert_eq!(cut("short".into(), 10), "short");
        assert_eq!(cut("abcdef".into(), 5), "ab…");
    }

    #[test]
    fn the_subject_names_the_node_and_type() {
        let names = Names::new("karajo");
        let body = serde_json::to_vec(&ClusterEvent::new(
            NodeName::parse("liar").unwrap(),
            ClusterEventKind::Join,
            "hi",
        ))
        .unwrap();
        let event = parse_event(&names, "karajo.event.n1.missed", &body).unwrap();
        assert_eq!(event.node, n1());
        assert_eq!(event.kind, ClusterEventKind::Missed);
        assert!(parse_event(&names, "karajo.event.n1.bogus", &body).is_none());
        assert!(parse_event(&names, "karajo.event.n1.join", b"not json").is_none());
    }

    #[test]
    fn request_parameters_follow_the_api() {
        assert_eq!(request_limit(None), 100);
        assert_eq!(request_limit(Some(0)), 1);
        assert_eq!(request_limit(Some(5000)), 1000);
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        assert_eq!(recent_since(now).as_second(), 1_800_000_000 - 86_400);
    }

    #[tokio::test]
    async fn emit_never_waits_and_the_task_ends_with_the_last_handle() {
        let mut settings = ClusterSettings::defaults(n1());
        // Nothing listens on port 1: the link stays down.
        settings.nats_urls = vec!["nats://127.0.0.1:1".into()];
        let link = crate::cluster::nats::connect::connect(&settings, |_| {})
            .await
            .unwrap();
        let (publisher, task) =
            EventPublisher::start(link, Names::new("karajo"), Duration::from_secs(1), 4);
        let other = publisher.clone();
        for i in 0..100 {
            other.emit(ClusterEvent::new(
                n1(),
                ClusterEventKind::Missed,
                format!("{i}"),
            ));
        }
        drop(other);
        drop(publisher.clone());
        let counts = Arc::clone(&publisher.counts);
        drop(publisher);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the task ends")
            .unwrap();
        assert_eq!(counts.dropped.load(Ordering::Relaxed), 100);
        assert_eq!(counts.published.load(Ordering::Relaxed), 0);
    }
}
