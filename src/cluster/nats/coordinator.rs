//! The [`Coordinator`] on NATS JetStream: one node's connection, buckets, lease,
//! claims, job records, orders and their watches, put together (cluster spec 6, 7).
//! [`NatsCoordinator::start`] connects, provisions or binds, claims the node's name and
//! keeps its heartbeat, and follows the nodes and the job records; the trait's calls
//! are then the protocols of [`super::claims`], [`super::state`] and [`super::orders`],
//! each bounded by `op_timeout`. [`NatsCoordinator::leave`] deletes the lease, so the
//! other nodes see it go at once.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

use super::claims::{Claims, new_nonce};
use super::connect::{ConnEvent, Link, connect};
use super::error::NatsError;
use super::events::{ClusterEvent, ClusterEventKind, EventPublisher, recent_events, recent_since};
use super::layout::Names;
use super::lease::{Lease, LeaseRecord, watch_nodes};
use super::orders::{self, OrderSource};
use super::provision;
use super::state::{self, TransitionError};
use crate::clock::SharedClock;
use crate::cluster::coordinator::{
    AckKind, Acker, Claim, ClusterError, CoordFuture, Coordinator, Delivery, Health, JobCtx,
    NodeInfo, NodeTable, NodeView, RecordTable, Resolved, Transition, decide_with, live_nodes,
};
use crate::cluster::decide::{Decision, JobEvent, JobRecord, Refusal};
use crate::cluster::{ClusterSettings, NodeName, RunOn, RunOrder, state_key};

/// How long one [`Coordinator::take_orders`] waits for an order when none is queued.
const TAKE_WAIT: Duration = Duration::from_millis(500);

/// One node's coordinator on NATS.
pub struct NatsCoordinator {
    node: NodeName,
    settings: ClusterSettings,
    names: Names,
    secret: Vec<u8>,
    clock: SharedClock,
    link: Link,
    claims: Claims,
    state: kv::Store,
    orders: Mutex<OrderSource>,
    events: EventPublisher,
    records: watch::Receiver<RecordTable>,
    nodes: watch::Receiver<NodeTable>,
    /// Orders the server gave up delivering, from its max-deliveries advisory.
    dead: Arc<std::sync::Mutex<std::collections::BTreeSet<u64>>>,
    /// Stops the heartbeat (which then deletes the lease) and the watchers.
    stop: CancellationToken,
    heartbeat: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for NatsCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsCoordinator")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl NatsCoordinator {
    /// Connects node `settings.node`, provisions (with `provision = true`) and binds the
    /// buckets and streams, claims the node's name (refused while another live process
    /// holds it), and starts its heartbeat and the watches of the nodes and the job
    /// records. Orders are signed and checked with `secret`. `events` hears the
    /// client's connection events.
    pub async fn start(
        settings: &ClusterSettings,
        secret: &[u8],
        clock: SharedClock,
        events: impl Fn(ConnEvent) + Send + Sync + 'static,
    ) -> Result<Self, NatsError> {
        Self::start_as(settings, secret, clock, events, |_| {}).await
    }

    /// As [`Self::start`], with `describe` filling in what the lease tells the other
    /// nodes about this one (its address, digests, `max_job_running`).
    pub async fn start_as(
        settings: &ClusterSettings,
        secret: &[u8],
        clock: SharedClock,
        events: impl Fn(ConnEvent) + Send + Sync + 'static,
        describe: impl FnOnce(&mut LeaseRecord),
    ) -> Result<Self, NatsError> {
        let link = connect(settings, events).await?;
        let within = settings.op_timeout.max(Duration::from_secs(5));
        if !link.wait_connected(within).await {
            return Err(NatsError::TimedOut {
                what: format!("connect to NATS at {}", settings.nats_urls.join(", ")),
                after: within,
            });
        }
        let names = Names::new(&settings.prefix);
        let buckets = provision::open(link.jetstream(), &names, settings).await?;
        let mut record = LeaseRecord::new(settings.node.clone(), clock.now());
        record.tags = settings.tags.clone();
        record.nats_server = link.server_version().unwrap_or_default();
        describe(&mut record);
        let lease = Lease::join(
            &buckets.nodes,
            record,
            settings.lease_ttl,
            settings.op_timeout,
        )
        .await?;
        let stop = CancellationToken::new();
        let heartbeat = tokio::spawn(keep_lease(lease, stop.clone()));
        let nodes = follow_nodes(
            watch_nodes(
                buckets.nodes.clone(),
                settings.lease_ttl,
                settings.op_timeout,
            ),
            stop.clone(),
        );
        let records = follow_records(buckets.state.clone(), settings.op_timeout, stop.clone());
        let orders = OrderSource::open(
            link.jetstream(),
            &names,
            settings,
            secret,
            clock.clone(),
            settings.op_timeout,
        )
        .await
        .map_err(|e| NatsError::Config(e.to_string()))?;
        let dead = Arc::default();
        match orders::DeadOrders::subscribe(link.client(), &names, settings.op_timeout).await {
            Ok(advisories) => {
                tokio::spawn(follow_dead_orders(
                    advisories,
                    Arc::clone(&dead),
                    stop.clone(),
                ));
            }
            // The sweep still gives such an order up at its dispatch_timeout.
            Err(err) => {
                tracing::warn!(%err, "cluster: no max-deliveries advisories; dead orders end at dispatch_timeout")
            }
        }
        let events = EventPublisher::spawn(link.clone(), names.clone(), settings.op_timeout);
        events.emit(ClusterEvent::new(
            settings.node.clone(),
            ClusterEventKind::Join,
            format!("node {} joined", settings.node),
        ));
        Ok(Self {
            events,
            node: settings.node.clone(),
            settings: settings.clone(),
            claims: Claims::new(
                buckets.claims.clone(),
                link.clone(),
                settings.node.clone(),
                settings.op_timeout,
            ),
            names,
            secret: secret.to_vec(),
            clock,
            link,
            state: buckets.state,
            orders: Mutex::new(orders),
            records,
            nodes,
            dead,
            stop,
            heartbeat: Mutex::new(Some(heartbeat)),
        })
    }

    /// Leaves the cluster: stops the heartbeat and the watches, and deletes the lease
    /// (the other nodes see this node go at once).
    pub async fn leave(&self) {
        self.events.emit(ClusterEvent::new(
            self.node.clone(),
            ClusterEventKind::Leave,
            format!("node {} left", self.node),
        ));
        // The event goes out while the link is still up.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.stop.cancel();
        if let Some(heartbeat) = self.heartbeat.lock().await.take() {
            let _ = heartbeat.await;
        }
    }

    /// This node's log replication through the log stream, keeping the collector's
    /// cursor in `cursor_file`.
    pub fn log_replica(&self, cursor_file: std::path::PathBuf) -> super::replica::NatsLogReplica {
        super::replica::NatsLogReplica::new(
            self.link.jetstream().clone(),
            self.names.clone(),
            self.node.clone(),
            self.settings.op_timeout,
            cursor_file,
        )
    }

    /// The version of the NATS server this node is connected to.
    pub fn server_version(&self) -> Option<String> {
        self.link.server_version()
    }

    fn view(&self) -> NodeView {
        NodeView {
            now: self.clock.now(),
            node: self.node.clone(),
            live_nodes: live_nodes(&self.nodes.borrow()),
            dispatch_timeout: self.settings.dispatch_timeout,
        }
    }
}

impl Drop for NatsCoordinator {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Beats every third of `lease_ttl` until `stop`, then deletes the lease.
async fn keep_lease(mut lease: Lease, stop: CancellationToken) {
    let every = lease.beat_every();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(err) = lease.beat(|_| {}).await {
            tracing::error!(error = %err, "cluster: heartbeat failed");
        }
    }
    if let Err(err) = lease.leave().await {
        tracing::warn!(error = %err, "cluster: could not delete the lease; it expires by itself");
    }
}

/// The node table in the coordinator's terms, kept current from the lease watcher.
fn follow_nodes(
    mut seen: watch::Receiver<super::lease::NodeTable>,
    stop: CancellationToken,
) -> watch::Receiver<NodeTable> {
    let (tx, rx) = watch::channel(NodeTable::new());
    tokio::spawn(async move {
        loop {
            let table: NodeTable = seen
                .borrow_and_update()
                .nodes
                .iter()
                .map(|(name, node)| {
                    let record = node
                        .record
                        .clone()
                        .unwrap_or_else(|| LeaseRecord::new(name.clone(), node.created));
                    let known = node.record.is_some();
                    let info = NodeInfo {
                        tags: record.tags,
                        alive: node.is_alive(),
                        last_seen: Some(node.seen_at),
                        version: if known { record.version } else { String::new() },
                        nats_server: record.nats_server,
                        config_digest: record.config_digest,
                        max_job_running: record.max_job_running,
                        http: record.http,
                        clock_offset_ms: None,
                    };
                    (name.clone(), info)
                })
                .collect();
            tx.send_replace(table);
            tokio::select! {
                () = stop.cancelled() => return,
                changed = seen.changed() => if changed.is_err() { return },
            }
        }
    });
    rx
}

/// Every job record, kept current from the state bucket's watcher.
fn follow_records(
    store: kv::Store,
    op_timeout: Duration,
    stop: CancellationToken,
) -> watch::Receiver<RecordTable> {
    let (tx, rx) = watch::channel(RecordTable::new());
    let mut events = state::watch_all::<JobRecord>(store, op_timeout);
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => return,
                event = events.recv() => event,
            };
            let Some(event) = event else { return };
            tx.send_modify(|table| match event.record {
                Some(record) => {
                    table.insert(event.key, (record, event.revision));
                }
                None => {
                    table.remove(&event.key);
                }
            });
        }
    });
    rx
}

/// Why a decision was not written: refused, or nothing to write (carried back).
#[derive(Debug)]
enum NotWritten {
    Refused(Refusal),
    Unchanged(Box<Decision>),
}

impl std::fmt::Display for NotWritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(refusal) => write!(f, "{refusal:?}"),
            Self::Unchanged(_) => f.write_str("nothing to write"),
        }
    }
}

fn order_error(e: orders::OrderError) -> ClusterError {
    if e.is_uncertain() {
        ClusterError::Uncertain(e.to_string())
    } else {
        ClusterError::Failed(e.to_string())
    }
}

struct NatsAcker(orders::Delivery);

impl Acker for NatsAcker {
    fn ack(self: Box<Self>, kind: AckKind) -> CoordFuture<'static, Result<(), ClusterError>> {
        Box::pin(async move {
            let delivery = self.0;
            match kind {
                AckKind::Accept => delivery.accept().await,
                AckKind::Reject => delivery.reject().await,
                AckKind::Later(delay) => delivery.later(delay).await,
            }
            .map_err(order_error)
        })
    }
}

impl Coordinator for NatsCoordinator {
    fn node(&self) -> &NodeName {
        &self.node
    }

    fn claim_key<'a>(&'a self, key: &'a str) -> CoordFuture<'a, Claim> {
        Box::pin(async move { self.claims.claim(key, &new_nonce()).await })
    }

    fn delete_order(&self, seq: u64) -> CoordFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move {
            orders::delete_order(
                self.link.jetstream(),
                &self.names,
                seq,
                self.settings.op_timeout,
            )
            .await
            .map(drop)
            .map_err(order_error)
        })
    }

    fn resolve<'a>(
        &'a self,
        key: &'a str,
        nonce: &'a str,
    ) -> CoordFuture<'a, Result<Resolved, ClusterError>> {
        Box::pin(async move {
            if !self.link.is_connected() {
                return Err(ClusterError::Unavailable);
            }
            self.claims
                .resolve(key, nonce)
                .await
                .map_err(|e| ClusterError::Failed(e.to_string()))
        })
    }

    fn transition<'a>(
        &'a self,
        job: &'a JobCtx,
        event: JobEvent,
    ) -> CoordFuture<'a, Result<Transition, ClusterError>> {
        Box::pin(async move {
            if !self.link.is_connected() {
                return Err(ClusterError::Unavailable);
            }
            let view = self.view();
            let mut new_run = || crate::store::event_log::new_uuid_v7(view.now);
            let written = state::transition(
                &self.state,
                &state_key(&job.job),
                self.settings.op_timeout,
                |current: Option<JobRecord>| match decide_with(
                    current.as_ref(),
                    &event,
                    job,
                    &view,
                    &mut new_run,
                ) {
                    Ok(decision) if decision.changed => Ok((decision.record, decision.actions)),
                    Ok(decision) => Err(NotWritten::Unchanged(Box::new(decision))),
                    Err(refusal) => Err(NotWritten::Refused(refusal)),
                },
            )
            .await;
            match written {
                Ok(done) => Ok(Transition {
                    record: done.record,
                    revision: Some(done.revision),
                    actions: done.out,
                }),
                Err(TransitionError::Refused(NotWritten::Unchanged(decision))) => Ok(Transition {
                    record: decision.record,
                    revision: None,
                    actions: decision.actions,
                }),
                Err(TransitionError::Refused(NotWritten::Refused(refusal))) => {
                    Err(ClusterError::Refused(refusal))
                }
                Err(TransitionError::Unavailable { .. }) => Err(ClusterError::Unavailable),
                Err(err @ TransitionError::Uncertain { .. }) => {
                    Err(ClusterError::Uncertain(err.to_string()))
                }
                Err(err) => Err(ClusterError::Failed(err.to_string())),
            }
        })
    }

    fn dispatch<'a>(
        &'a self,
        order: &'a RunOrder,
        target: &'a RunOn,
    ) -> CoordFuture<'a, Result<u64, ClusterError>> {
        Box::pin(async move {
            if !self.link.is_connected() {
                return Err(ClusterError::Unavailable);
            }
            orders::dispatch(
                self.link.jetstream(),
                &self.names,
                order,
                target,
                &self.secret,
                self.settings.op_timeout,
            )
            .await
            .map_err(order_error)
        })
    }

    fn dead_orders(&self) -> Vec<u64> {
        lock_dead(&self.dead).iter().copied().collect()
    }

    fn forget_dead_order(&self, seq: u64) {
        lock_dead(&self.dead).remove(&seq);
    }

    fn take_orders(&self, free: usize) -> CoordFuture<'_, Result<Vec<Delivery>, ClusterError>> {
        Box::pin(async move {
            if !self.link.is_connected() {
                return Err(ClusterError::Unavailable);
            }
            let pulled = self
                .orders
                .lock()
                .await
                .pull(free, TAKE_WAIT)
                .await
                .map_err(order_error)?;
            for rejected in &pulled.rejected {
                self.events.emit(ClusterEvent::new(
                    self.node.clone(),
                    ClusterEventKind::OrderRejected,
                    format!(
                        "order {} on {} refused: {}",
                        rejected.stream_seq, rejected.consumer, rejected.reason
                    ),
                ));
            }
            Ok(pulled
                .orders
                .into_iter()
                .map(|delivery| Delivery {
                    order: delivery.order().clone(),
                    delivered: delivery.delivered(),
                    acker: Box::new(NatsAcker(delivery)),
                })
                .collect())
        })
    }

    fn records(&self) -> watch::Receiver<RecordTable> {
        self.records.clone()
    }

    fn nodes(&self) -> watch::Receiver<NodeTable> {
        self.nodes.clone()
    }

    fn health(&self) -> watch::Receiver<Health> {
        self.link.health_watch()
    }

    fn report(&self, kind: &'static str, job: Option<&str>, run: Option<&str>, message: &str) {
        let kind = ClusterEventKind::parse(kind).unwrap_or(ClusterEventKind::NatsError);
        let mut event = ClusterEvent::new(self.node.clone(), kind, message);
        if let Some(job) = job {
            event = event.with_job(job);
        }
        if let Some(run) = run {
            event = event.with_run(run);
        }
        self.events.emit(event);
    }

    fn recent_events(
        &self,
        limit: usize,
    ) -> CoordFuture<'_, Result<Vec<serde_json::Value>, ClusterError>> {
        Box::pin(async move {
            let since = recent_since(self.clock.now());
            let events = recent_events(
                self.link.jetstream(),
                &self.names,
                limit,
                since,
                self.settings.op_timeout,
            )
            .await
            .map_err(|e| ClusterError::Failed(e.to_string()))?;
            Ok(events
                .iter()
                .filter_map(|event| serde_json::to_value(event).ok())
                .collect())
        })
    }
}

/// A coordinator shared by the tasks of one node.
pub type SharedNatsCoordinator = Arc<NatsCoordinator>;

/// The most dead orders remembered between two sweeps; more are left to their
/// `dispatch_timeout`, so a flood of advisories cannot grow memory without bound.
const DEAD_ORDERS_KEPT: usize = 4096;

fn lock_dead(
    dead: &std::sync::Mutex<std::collections::BTreeSet<u64>>,
) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<u64>> {
    dead.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Remembers each order the server reports dead until the sweep deals with it.
async fn follow_dead_orders(
    mut advisories: orders::DeadOrders,
    dead: Arc<std::sync::Mutex<std::collections::BTreeSet<u64>>>,
    stop: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => return,
            next = advisories.next() => next,
        };
        let Some(order) = next else { return };
        tracing::warn!(seq = order.stream_seq, deliveries = order.deliveries, consumer = %order.consumer, "cluster: an order reached its delivery limit");
        let mut dead = lock_dead(&dead);
        if dead.len() < DEAD_ORDERS_KEPT {
            dead.insert(order.stream_seq);
        }
    }
}
