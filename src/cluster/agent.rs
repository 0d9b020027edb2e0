//! The cluster agent: the one task per node that joins the scheduler to the cluster
//! (cluster spec 7). The scheduler keeps running every job; for a cluster job (`run_on`
//! other than `local`) it hands the agent each due timer slot and the end of each run it
//! executed for an order ([`ClusterNotice`]), and the scheduler's handle routes web
//! hooks, API runs, pauses, resumes and cancels of cluster jobs here ([`ClusterRoute`]).
//! The agent turns them into claims and transitions of the job's shared record through
//! the [`Coordinator`], carries out what the winning decision asks (dispatch orders,
//! write paused and failed logs), takes orders for this node while it has free
//! `max_job_running` slots and starts them with the cluster's counter, feeds every
//! record back to the scheduler so that each node's pages show the cluster's state, and
//! keeps the cluster clean: orders nobody accepted in time and runs of nodes that
//! stopped answering are ended by one node. Logs travel through a [`LogReplica`] (the
//! NATS log stream), so every node holds every run's log.
//!
//! While this node cannot reach the cluster, cluster jobs pause here (spec 9.3): due
//! slots are remembered as missed ([`PendingSlots`], kept across restarts) and triggers
//! answer 503; once connected again, claims whose answer was lost are read back and the
//! newest missed slot of each job is claimed once if it is still within
//! `misfire_grace`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::coordinator::{AckKind, Claim, ClusterError, Coordinator, Delivery, JobCtx, Resolved};
use super::decide::{Action, ActiveState, JobEvent, JobRecord, Refusal, TriggerReply};
use super::pending::{PendingSlots, UncertainClaim};
use super::status::ClusterStats;
use super::{NodeName, OrderTrigger, RunOrder, Slot, parse_state_key, state_key};
use crate::clock::SharedClock;
use crate::job::{JobId, JobKey, JobKind, RunStatus, Trigger};
use crate::scheduler::{
    ClusterNotice, ClusterRoute, JobControl, JobDef, JobDefKind, JobView, RouteFuture,
    SchedulerHandle, TriggerError,
};
use crate::store::{Layout, run_log};

/// How often the agent looks for orders nobody accepted in time and for runs of nodes
/// that stopped answering, at most.
const SWEEP_EVERY_MAX: Duration = Duration::from_secs(5);
/// How long an order this node cannot take now waits before it is delivered again.
const TAKE_LATER: Duration = Duration::from_secs(1);
/// The chunk number a log closed by another node than its runner continues at, far
/// past any chunk the runner sent.
const CLOSING_CHUNK: u64 = 1 << 40;

/// The run whose log a [`LogReplica`] ships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipRun {
    /// The job's kind.
    pub kind: JobKind,
    /// The job.
    pub job: JobId,
    /// The run's counter.
    pub counter: u64,
    /// The run's id.
    pub run: String,
    /// The job's log directory on this node.
    pub log_dir: PathBuf,
    /// Where in the log this node's shipping starts (0, or the end of a lost run's
    /// log as collected here).
    pub from_offset: u64,
    /// The first chunk number this node uses.
    pub first_chunk: u64,
}

/// How a run ended, for the end of its shipping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEnd {
    /// The closed log.
    pub path: PathBuf,
    /// The final status.
    pub status: RunStatus,
    /// When.
    pub at: Timestamp,
}

/// A final log collected from another node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectedLog {
    /// The job.
    pub job: JobKey,
    /// The run's counter.
    pub counter: u64,
    /// Its status.
    pub status: RunStatus,
    /// The file.
    pub path: PathBuf,
}

/// Where a job's logs go on this node: its log directory, or `None` when the job is
/// not defined here.
pub type LogDirs = Arc<dyn Fn(JobKind, &JobId) -> Option<PathBuf> + Send + Sync>;

/// Copies run logs between nodes: what this node writes goes out, what the others
/// write comes in (cluster spec 7.6).
pub trait LogReplica: Send + Sync + 'static {
    /// Ships the log of a run this node executes while it runs, then, once `ended`
    /// says how it ended, the rest of the closed file and the final status message.
    /// Resolves when all of it is in the log stream (retrying while the cluster is
    /// unreachable), or when `ended` is dropped.
    fn ship_run(&self, run: ShipRun, ended: oneshot::Receiver<RunEnd>) -> RouteFuture<()>;

    /// The final status of a run's log in the log stream, when its runner sent one.
    fn final_status(
        &self,
        kind: JobKind,
        job: JobId,
        counter: u64,
    ) -> RouteFuture<Option<RunStatus>>;

    /// Collects the other nodes' logs into `log_dirs` until `stop`, telling `done`
    /// about each final log.
    fn collect(
        &self,
        log_dirs: LogDirs,
        done: mpsc::UnboundedSender<CollectedLog>,
        stop: CancellationToken,
    ) -> RouteFuture<()>;
}

/// What the agent needs besides the coordinator and the scheduler.
pub struct AgentOptions {
    /// The cluster.
    pub coordinator: Arc<dyn Coordinator>,
    /// This node's scheduler.
    pub scheduler: SchedulerHandle,
    /// The scheduler's slots and run ends of cluster jobs.
    pub notices: mpsc::UnboundedReceiver<ClusterNotice>,
    /// Where logs travel; `None` keeps them on the node that wrote them.
    pub logs: Option<Arc<dyn LogReplica>>,
    /// Paths under `dir_base`.
    pub layout: Layout,
    /// The source of "now".
    pub clock: SharedClock,
    /// `[cluster] misfire_grace`.
    pub misfire_grace: Duration,
    /// `[cluster] lease_ttl`: a node not seen for this long is lost.
    pub lease_ttl: Duration,
    /// Where the agent counts what it does.
    pub stats: Arc<ClusterStats>,
    /// The slots left unsettled by the last process (and where to keep this one's).
    pub pending: PendingSlots,
}

/// The running agent: the route of cluster jobs' triggers, and the switch that stops
/// its tasks.
pub struct ClusterAgent {
    shared: Arc<Shared>,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for ClusterAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterAgent")
            .field("node", self.shared.coordinator.node())
            .finish_non_exhaustive()
    }
}

/// What the agent's tasks share.
struct Shared {
    coordinator: Arc<dyn Coordinator>,
    scheduler: SchedulerHandle,
    logs: Option<Arc<dyn LogReplica>>,
    layout: Layout,
    clock: SharedClock,
    misfire_grace: Duration,
    lease_ttl: Duration,
    stats: Arc<ClusterStats>,
    started: Timestamp,
    /// The slots missed while disconnected and the claims whose answer was lost, kept
    /// across restarts.
    pending: PendingSlots,
    /// Held while the pending slots are being settled, so that two settlements (a
    /// reconnection and a sweep) never race.
    settling: tokio::sync::Mutex<()>,
    /// The runs this node executes for the cluster, by job and counter: their run id
    /// and where their shipping hears of their end.
    running: Mutex<HashMap<(JobKey, u64), RunHere>>,
    /// The tasks recording runs' ends, waited for when the node leaves.
    ending: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// A run this node executes for the cluster.
struct RunHere {
    run: String,
    ended: Option<oneshot::Sender<RunEnd>>,
    shipped: Option<tokio::task::JoinHandle<()>>,
}

impl ClusterAgent {
    /// Starts the agent's tasks and routes the scheduler's cluster jobs to it.
    pub fn start(opts: AgentOptions) -> Self {
        let shared = Arc::new(Shared {
            coordinator: opts.coordinator,
            scheduler: opts.scheduler,
            logs: opts.logs,
            layout: opts.layout,
            started: opts.clock.now(),
            clock: opts.clock,
            misfire_grace: opts.misfire_grace,
            lease_ttl: opts.lease_ttl,
            stats: opts.stats,
            pending: opts.pending,
            settling: tokio::sync::Mutex::new(()),
            running: Mutex::default(),
            ending: Mutex::default(),
        });
        let stop = CancellationToken::new();
        let mut tasks = vec![
            tokio::spawn(notices(shared.clone(), opts.notices, stop.clone())),
            tokio::spawn(take_orders(shared.clone(), stop.clone())),
            tokio::spawn(follow_records(shared.clone(), stop.clone())),
            tokio::spawn(keep_clean(shared.clone(), stop.clone())),
            tokio::spawn(follow_health(shared.clone(), stop.clone())),
        ];
        if let Some(logs) = shared.logs.clone() {
            tasks.push(tokio::spawn(collect_logs(
                shared.clone(),
                logs,
                stop.clone(),
            )));
        }
        shared
            .scheduler
            .set_cluster_route(Arc::new(Route(shared.clone())));
        Self {
            shared,
            stop,
            tasks,
        }
    }

    /// Stops taking orders and slots, waits for the logs of runs that ended to be
    /// shipped and their ends recorded (at most `within`), and stops the tasks. Call it
    /// after the scheduler has stopped, so every run has ended.
    pub async fn stop(self, within: Duration) {
        let shipping: Vec<_> = {
            let mut running = lock(&self.shared.running);
            running
                .values_mut()
                .filter_map(|r| r.shipped.take())
                .collect()
        };
        let _ = tokio::time::timeout(within, async {
            for task in shipping {
                let _ = task.await;
            }
        })
        .await;
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `hmac-sha256:<hex>` of what makes a job's runs what they are, the same on every
/// node whose configuration defines the job alike: its name, timer, `run_on`, secret and
/// its kind's keys. Paths under `dir_base`, notifications and retention may differ
/// between nodes. It is keyed with `key`, the cluster's shared `[karajo] secret`, so
/// that whoever reads a lease without that secret cannot test guesses of a job's secret
/// against it (a plain hash of a definition holding a weak secret could be brute-forced).
pub fn job_digest(def: &JobDef, key: &[u8]) -> String {
    let common = &def.common;
    let kind = match &def.kind {
        JobDefKind::Exec { spec, function } => {
            format!("{spec:?} fn={}", function.is_some())
        }
        JobDefKind::Http { spec, .. } => format!("{spec:?}"),
    };
    let text = format!(
        "{}\n{:?}\n{:?}\n{:?}\n{:?}\n{}\n{}\n{}",
        common.name,
        common.schedule,
        common.interval,
        common.timezone,
        common.run_on,
        common.secret,
        common.header_sign,
        kind
    );
    let mac = crate::auth::signature::sign_hmac_sha256(key, text.as_bytes());
    format!("hmac-sha256:{mac}")
}

/// The job key of a state-bucket key `<kind>.<id>`.
fn order_key(order: &RunOrder) -> Option<JobKey> {
    parse_state_key(&format!("{}.{}", order.kind, order.job))
}

fn local_trigger(trigger: OrderTrigger) -> Trigger {
    match trigger {
        OrderTrigger::Timer | OrderTrigger::CatchUp => Trigger::Timer,
        OrderTrigger::Webhook => Trigger::Webhook,
        OrderTrigger::Api => Trigger::Api,
    }
}

fn unavailable(key: &JobKey) -> TriggerError {
    TriggerError::ClusterUnavailable(format!(
        "cluster unavailable: job {} is a cluster job",
        key.id
    ))
}

impl Shared {
    fn node(&self) -> &NodeName {
        self.coordinator.node()
    }

    fn connected(&self) -> bool {
        self.coordinator.health().borrow().is_connected()
    }

    fn view(&self, key: &JobKey) -> Option<Arc<JobView>> {
        self.scheduler
            .snapshot()
            .job(key.kind, key.id.as_str())
            .filter(|view| view.def.common.run_on.is_cluster())
            .cloned()
    }

    /// What a transition of `view`'s job brings: its `run_on`, digest, and its local
    /// state as the seed of a record the cluster does not have yet.
    fn job_ctx(&self, view: &JobView) -> JobCtx {
        let status = Some(view.status).filter(|s| s.is_final() && *s != RunStatus::Paused);
        let key = self.scheduler.snapshot().config.secret.clone();
        JobCtx {
            job: view.def.key(),
            run_on: view.def.common.run_on.clone(),
            job_digest: job_digest(&view.def, key.as_bytes()),
            seed: JobRecord::seed(view.counter, status, view.last_run, view.paused),
        }
    }

    /// Applies `event` to `job`'s record, shows the new record to the scheduler and
    /// carries out what the decision asks. Returns the decision's reply, if any.
    async fn apply(
        self: &Arc<Self>,
        job: &JobCtx,
        event: JobEvent,
    ) -> Result<Option<TriggerReply>, ClusterError> {
        let transition = self.coordinator.transition(job, event).await?;
        if let Some(revision) = transition.revision {
            self.scheduler
                .cluster_record(job.job.clone(), transition.record.clone(), revision)
                .await;
        }
        let mut reply = None;
        for action in transition.actions {
            match action {
                Action::Reply(r) => reply = Some(r),
                action => self.carry_out(job, action).await,
            }
        }
        Ok(reply)
    }

    /// Carries out one action of a won decision.
    async fn carry_out(self: &Arc<Self>, job: &JobCtx, action: Action) {
        match action {
            Action::Dispatch { order, target } => {
                let stats = &self.stats;
                ClusterStats::count(match (&job.run_on, &target) {
                    (super::RunOn::All, _) => &stats.dispatched_all,
                    (_, super::RunOn::Node(_)) => &stats.dispatched_node,
                    (_, super::RunOn::Tag(_)) => &stats.dispatched_tag,
                    _ => &stats.dispatched_any,
                });
                match self.coordinator.dispatch(&order, &target).await {
                    Ok(seq) => {
                        let event = JobEvent::Dispatched {
                            run: order.run.clone(),
                            seq,
                        };
                        if let Err(err) = Box::pin(self.apply(job, event)).await {
                            tracing::debug!(job = %job.job, run = %order.run, %err, "order sequence not recorded");
                        }
                    }
                    Err(err) => {
                        // The record keeps it dispatched; its deadline ends it.
                        tracing::error!(job = %job.job, run = %order.run, %err, "cluster: cannot dispatch an order");
                    }
                }
            }
            Action::WritePausedLog { counter } => {
                let run = format!("paused-{}-{counter}", job.job.id);
                self.close_log(&job.job, counter, &run, RunStatus::Paused, None)
                    .await;
            }
            Action::FailRun {
                run,
                counter,
                node,
                status,
                reason,
                order_seq,
            } => {
                if let Some(seq) = order_seq
                    && let Err(err) = self.coordinator.delete_order(seq).await
                {
                    tracing::warn!(job = %job.job, run, %err, "cluster: cannot delete a given-up order");
                }
                tracing::warn!(job = %job.job, counter, run, node = ?node, %reason, "cluster: run ended without its node");
                let kind = if node.is_some() {
                    "run_lost"
                } else {
                    "not_accepted"
                };
                let job_key = super::state_key(&job.job);
                self.coordinator
                    .report(kind, Some(&job_key), Some(&run), &reason);
                ClusterStats::count(if node.is_some() {
                    &self.stats.failed_node_lost
                } else {
                    &self.stats.failed_not_accepted
                });
                let line = format!("!!! karajo: {reason}\n");
                self.close_log(&job.job, counter, &run, status, Some(&line))
                    .await;
            }
            // The record carries the request; the node running it follows the record.
            Action::RequestCancel { .. } => {}
            // The node that ran the run notified; a run that never ran is in the log.
            Action::Notify { .. } | Action::Reply(_) => {}
        }
    }

    /// Writes the final log of run `counter` that did not end on this node as a run
    /// of its own (a paused execution, a lost or unaccepted run): what was collected
    /// of it, then `line`; ships what this node added and tells the scheduler.
    async fn close_log(
        &self,
        key: &JobKey,
        counter: u64,
        run: &str,
        status: RunStatus,
        line: Option<&str>,
    ) {
        let dir = self.layout.log_dir(key.kind, &key.id);
        let id = key.id.clone();
        let line = line.unwrap_or_default().to_string();
        let written = tokio::task::spawn_blocking(move || {
            write_closing_log(&dir, &id, counter, status, &line)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        let (path, from_offset) = match written {
            Ok(Some(done)) => done,
            Ok(None) => return,
            Err(err) => {
                tracing::error!(job = %key, counter, %err, "cannot write a cluster run's final log");
                return;
            }
        };
        self.scheduler
            .cluster_log(key.clone(), counter, status, path.clone())
            .await;
        if let Some(logs) = &self.logs {
            let (tx, rx) = oneshot::channel();
            let _ = tx.send(RunEnd {
                path,
                status,
                at: self.clock.now(),
            });
            let ship = ShipRun {
                kind: key.kind,
                job: key.id.clone(),
                counter,
                run: run.to_string(),
                log_dir: self.layout.log_dir(key.kind, &key.id),
                from_offset,
                first_chunk: CLOSING_CHUNK,
            };
            tokio::spawn(logs.ship_run(ship, rx));
        }
    }

    /// A due slot of cluster job `key` (spec 7.2).
    async fn slot(self: &Arc<Self>, key: JobKey, at: Timestamp) {
        let Some(view) = self.view(&key) else { return };
        let slot = slot_of(&view, &self.coordinator.records().borrow(), at);
        tracing::debug!(job = %key, %at, ?slot, "cluster: timer due");
        let slot = match slot {
            // An interval slot comes due from the shared `last_run`: this node's timer
            // ran on an older one (it just started, or the record is ahead of it).
            Some(slot) if slot > self.clock.now().as_second() => {
                return self.refresh(&key).await;
            }
            Some(slot) => slot,
            // An interval job whose run goes on somewhere: no slot is due.
            None => return self.refresh(&key).await,
        };
        if !self.connected() {
            ClusterStats::count(&self.stats.claims_unavailable);
            tracing::warn!(job = %key, slot, "cluster unreachable: slot missed here");
            self.pending.miss(&key, slot);
            return;
        }
        self.claim_and_fire(&view, slot, false).await;
    }

    /// Claims `slot` of the job and fires it if the claim is won. Returns `false` when
    /// nothing was sent (this node is not connected): the slot is then missed.
    async fn claim_and_fire(self: &Arc<Self>, view: &JobView, slot: i64, catchup: bool) -> bool {
        let key = view.def.key();
        let claim = self
            .coordinator
            .claim(&Slot {
                job: key.clone(),
                at: slot,
            })
            .await;
        tracing::debug!(job = %key, slot, ?claim, "cluster: slot claimed");
        let stats = &self.stats;
        ClusterStats::count(match claim {
            Claim::Won => &stats.claims_won,
            Claim::Lost { .. } => &stats.claims_lost,
            Claim::Unavailable => &stats.claims_unavailable,
            Claim::Uncertain { .. } => &stats.claims_uncertain,
        });
        match claim {
            Claim::Won => self.fire(view, slot, catchup).await,
            // The winner's transition changes the record; the watch brings it.
            Claim::Lost { .. } => {}
            Claim::Unavailable => {
                self.pending.miss(&key, slot);
                return false;
            }
            Claim::Uncertain { key: claim, nonce } => {
                tracing::warn!(job = %key, slot, "cluster: no answer to a slot claim; it is read back later");
                let why = format!("no answer to the claim of slot {slot}; read back later");
                self.coordinator
                    .report("claim_uncertain", Some(&state_key(&key)), None, &why);
                self.pending.uncertain(UncertainClaim {
                    job: key,
                    slot,
                    key: claim,
                    nonce,
                });
            }
        }
        true
    }

    async fn fire(self: &Arc<Self>, view: &JobView, slot: i64, catchup: bool) {
        let job = self.job_ctx(view);
        match self.apply(&job, JobEvent::Timer { slot, catchup }).await {
            Ok(_) | Err(ClusterError::Refused(Refusal::Unchanged)) => {}
            Err(err) => {
                tracing::error!(job = %job.job, slot, %err, "cluster: a won slot was not applied")
            }
        }
        self.refresh(&job.job).await;
    }

    /// Shows the scheduler job `key`'s record as it is (re-arming its timer).
    async fn refresh(&self, key: &JobKey) {
        let record = self
            .coordinator
            .records()
            .borrow()
            .get(&state_key(key))
            .cloned();
        if let Some((record, revision)) = record {
            self.scheduler
                .cluster_record(key.clone(), record, revision)
                .await;
        }
    }

    /// Settles the pending slots while connected (after a reconnection, at start, and
    /// at each sweep): reads back the uncertain claims, then claims the newest missed
    /// slot of each job once if it is within `misfire_grace` (spec 7.2.4–5). An entry
    /// leaves the pending list only once it is settled.
    async fn recover(self: &Arc<Self>) {
        let _settling = self.settling.lock().await;
        if self.pending.is_empty() || !self.connected() {
            return;
        }
        let now = self.clock.now().as_second();
        let grace = i64::try_from(self.misfire_grace.as_secs()).unwrap_or(i64::MAX);
        for claim in self.pending.snapshot().uncertain {
            let Some(view) = self.view(&claim.job) else {
                self.pending.settle_uncertain(&claim);
                continue;
            };
            match self.coordinator.resolve(&claim.key, &claim.nonce).await {
                Ok(Resolved::Ours) if now - claim.slot <= grace => {
                    self.fire(&view, claim.slot, true).await;
                }
                Ok(Resolved::Ours | Resolved::Theirs { .. }) => self.refresh(&claim.job).await,
                // Nobody's: the missed-slot rule fires it at most once.
                Ok(Resolved::Absent) => self.pending.miss(&claim.job, claim.slot),
                // Still no answer: read back at the next sweep.
                Err(_) => continue,
            }
            self.pending.settle_uncertain(&claim);
        }
        for (key, slot) in self.pending.snapshot().missed {
            let Some(view) = self.view(&key) else {
                self.pending.settle_missed(&key, slot);
                continue;
            };
            if now - slot <= grace {
                tracing::info!(job = %key, slot, "cluster: catching up a slot missed while unreachable");
                let why = format!("slot {slot} missed while unreachable; run late");
                self.coordinator
                    .report("catchup", Some(&state_key(&key)), None, &why);
                ClusterStats::count(&self.stats.catchups);
                if !self.claim_and_fire(&view, slot, true).await {
                    // Cut off again: the slot stays missed.
                    continue;
                }
            } else {
                tracing::warn!(job = %key, slot, "cluster: a slot missed while unreachable is past misfire_grace; skipped");
                let why = format!("slot {slot} missed while unreachable, past misfire_grace");
                self.coordinator
                    .report("missed", Some(&state_key(&key)), None, &why);
                ClusterStats::count(&self.stats.missed_slots);
                self.refresh(&key).await;
            }
            self.pending.settle_missed(&key, slot);
        }
    }

    /// One order delivered to this node (spec 7.5 "Accepting").
    async fn accept(self: &Arc<Self>, delivery: Delivery) {
        let order = delivery.order.clone();
        tracing::debug!(job = %order.job, run = %order.run, counter = order.counter, "cluster: order delivered");
        let answer = |kind| async move {
            if let Err(err) = delivery.answer(kind).await {
                tracing::warn!(%err, "cluster: cannot answer an order");
            }
        };
        let Some(key) = order_key(&order) else {
            return answer(AckKind::Reject).await;
        };
        let Some(view) = self.view(&key) else {
            let why = format!("job {} is not defined on node {}", key.id, self.node());
            tracing::warn!(job = %key, run = %order.run, "cluster: {why}; order refused");
            self.coordinator.report(
                "order_rejected",
                Some(&state_key(&key)),
                Some(&order.run),
                &why,
            );
            ClusterStats::count(&self.stats.failed_rejected);
            return answer(AckKind::Reject).await;
        };
        let job = self.job_ctx(&view);
        let accepted = JobEvent::Accepted {
            run: order.run.clone(),
            node: self.node().clone(),
        };
        match self.apply(&job, accepted).await {
            Ok(_) => {}
            Err(ClusterError::Refused(Refusal::Stale)) if !self.accepted_here(&key, &order) => {
                return answer(AckKind::Reject).await;
            }
            Err(ClusterError::Refused(Refusal::Stale)) => {}
            Err(err) => {
                tracing::warn!(job = %key, run = %order.run, %err, "cluster: cannot accept an order now");
                return answer(AckKind::Later(TAKE_LATER)).await;
            }
        }
        answer(AckKind::Accept).await;
        if order.job_digest != job.job_digest {
            ClusterStats::count(&self.stats.failed_rejected);
            let why = format!(
                "definition of job {} differs on node {}; run not started",
                key.id,
                self.node()
            );
            return self.end_unstarted(&job, &order, &why).await;
        }
        self.start_shipping(&key, &order);
        let started = self
            .scheduler
            .cluster_start(
                key.clone(),
                order.counter,
                local_trigger(order.trigger),
                order.run.clone(),
            )
            .await;
        if let Err(err) = started {
            lock(&self.running).remove(&(key.clone(), order.counter));
            let why = format!("node {} could not start the run: {err}", self.node());
            self.end_unstarted(&job, &order, &why).await;
        }
    }

    /// Whether the record shows `order`'s run accepted by this node while this node
    /// does not run it: an accept whose answer was lost.
    fn accepted_here(&self, key: &JobKey, order: &RunOrder) -> bool {
        let records = self.coordinator.records();
        let records = records.borrow();
        let Some((record, _)) = records.get(&state_key(key)) else {
            return false;
        };
        let mine = record
            .active
            .as_ref()
            .is_some_and(|active| match &active.group {
                None => active.run == order.run && active.node.as_ref() == Some(self.node()),
                Some(group) => group.get(self.node()).is_some_and(|m| {
                    m.run == order.run && m.state == ActiveState::Running && m.status.is_none()
                }),
            });
        mine && !lock(&self.running).contains_key(&(key.clone(), order.counter))
    }

    /// Ends an accepted run that this node did not start: its log says why.
    async fn end_unstarted(self: &Arc<Self>, job: &JobCtx, order: &RunOrder, why: &str) {
        tracing::error!(job = %job.job, run = %order.run, "{why}");
        let job_key = state_key(&job.job);
        self.coordinator
            .report("order_rejected", Some(&job_key), Some(&order.run), why);
        let line = format!("!!! karajo: {why}\n");
        self.close_log(
            &job.job,
            order.counter,
            &order.run,
            RunStatus::Failed,
            Some(&line),
        )
        .await;
        let finished = JobEvent::Finished {
            run: order.run.clone(),
            node: self.node().clone(),
            status: RunStatus::Failed,
            at: self.clock.now(),
        };
        if let Err(err) = self.apply(job, finished).await {
            tracing::error!(job = %job.job, run = %order.run, %err, "cluster: cannot record a run's end");
        }
    }

    fn start_shipping(&self, key: &JobKey, order: &RunOrder) {
        let (ended, shipped) = match &self.logs {
            Some(logs) => {
                let (tx, rx) = oneshot::channel();
                let ship = ShipRun {
                    kind: key.kind,
                    job: key.id.clone(),
                    counter: order.counter,
                    run: order.run.clone(),
                    log_dir: self.layout.log_dir(key.kind, &key.id),
                    from_offset: 0,
                    first_chunk: 0,
                };
                (Some(tx), Some(tokio::spawn(logs.ship_run(ship, rx))))
            }
            None => (None, None),
        };
        lock(&self.running).insert(
            (key.clone(), order.counter),
            RunHere {
                run: order.run.clone(),
                ended,
                shipped,
            },
        );
    }

    /// A run this node executed for the cluster ended: its log goes out, then its end
    /// is recorded (spec 7.6 "End of run").
    async fn ended(self: &Arc<Self>, key: JobKey, counter: u64, status: RunStatus, at: Timestamp) {
        let Some(mut here) = lock(&self.running).remove(&(key.clone(), counter)) else {
            tracing::warn!(job = %key, counter, "the end of a cluster run this node did not take");
            return;
        };
        if let Some(ended) = here.ended.take() {
            let dir = self.layout.log_dir(key.kind, &key.id);
            let path = dir.join(run_log::file_name(&key.id, counter, status));
            let _ = ended.send(RunEnd { path, status, at });
        }
        if let Some(shipped) = here.shipped.take() {
            let _ = shipped.await;
        }
        let Some(view) = self.view(&key) else { return };
        let job = self.job_ctx(&view);
        let finished = JobEvent::Finished {
            run: here.run.clone(),
            node: self.node().clone(),
            status,
            at,
        };
        let mut pause = Duration::from_millis(200);
        loop {
            match self.apply(&job, finished.clone()).await {
                Ok(_) | Err(ClusterError::Refused(_)) => return,
                Err(err) => {
                    tracing::warn!(job = %key, counter, %err, "cluster: a run's end is not recorded yet; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Ends orders nobody accepted before their deadline, and the runs of nodes that
    /// stopped answering (spec 7.5, 7.8). One node does each, by claim.
    async fn sweep(self: &Arc<Self>) {
        if !self.connected() {
            return;
        }
        let now = self.clock.now();
        let nodes = self.coordinator.nodes().borrow().clone();
        // Until this node has seen the others' heartbeats for a lease, it cannot tell
        // a lost node from one it has not heard yet.
        let settled = now.duration_since(self.started).as_secs_f64() > self.lease_ttl.as_secs_f64();
        let alive = |node: &NodeName| nodes.get(node).is_some_and(|n| n.alive);
        let records = self.coordinator.records().borrow().clone();
        let dead = self.coordinator.dead_orders();
        for (state, (record, _)) in &records {
            let Some(key) = parse_state_key(state) else {
                continue;
            };
            let Some(active) = &record.active else {
                continue;
            };
            let mut work: Vec<(String, JobEvent)> = Vec::new();
            type Member = (Option<NodeName>, String, ActiveState, Option<u64>);
            let members: Vec<Member> = match &active.group {
                None => vec![(
                    active.node.clone(),
                    active.run.clone(),
                    active.state,
                    active.seq,
                )],
                Some(group) => group
                    .iter()
                    .filter(|(_, m)| m.status.is_none())
                    .map(|(node, m)| (Some(node.clone()), m.run.clone(), m.state, m.seq))
                    .collect(),
            };
            for (node, run, state, seq) in members {
                match (state, node) {
                    // The server gave up delivering it: no node will accept it.
                    (ActiveState::Dispatched, _)
                        if let Some(seq) = seq.filter(|seq| dead.contains(seq)) =>
                    {
                        work.push((format!("dead.{seq}"), JobEvent::OrderDead { run }));
                    }
                    (ActiveState::Dispatched, _) if active.deadline <= now => {
                        work.push((format!("expire.{run}"), JobEvent::DispatchExpired { run }));
                    }
                    (ActiveState::Running, Some(node))
                        if settled && !alive(&node) && node != *self.node() =>
                    {
                        work.push((format!("sweep.{node}.{run}"), JobEvent::NodeLost { node }));
                    }
                    // A run this node accepted before it restarted: nobody runs it.
                    (ActiveState::Running, Some(node))
                        if node == *self.node()
                            && active.since < self.started
                            && !self.runs_here(&run) =>
                    {
                        work.push((format!("sweep.{node}.{run}"), JobEvent::NodeLost { node }));
                    }
                    _ => {}
                }
            }
            for (claim, event) in work {
                let Some(view) = self.view(&key) else { break };
                if self.coordinator.claim_key(&claim).await != Claim::Won {
                    continue;
                }
                let event = match event {
                    JobEvent::NodeLost { node } => {
                        let why = format!("node {node} stopped answering");
                        self.coordinator
                            .report("node_lost", Some(state), None, &why);
                        self.lost_end(&key, record, node).await
                    }
                    event => event,
                };
                let job = self.job_ctx(&view);
                if let Err(err) = self.apply(&job, event).await {
                    tracing::warn!(job = %key, %err, "cluster: sweep not applied");
                }
            }
        }
        // Dead orders of no active run (settled meanwhile) need nothing more.
        for seq in dead {
            self.coordinator.forget_dead_order(seq);
        }
    }

    /// Whether this process runs `run`.
    fn runs_here(&self, run: &str) -> bool {
        lock(&self.running).values().any(|here| here.run == run)
    }

    /// How to end the run of a lost node: as its log's final message says, when the
    /// node sent one before it stopped; otherwise as lost.
    async fn lost_end(&self, key: &JobKey, record: &JobRecord, node: NodeName) -> JobEvent {
        let Some(active) = &record.active else {
            return JobEvent::NodeLost { node };
        };
        let (run, counter) = match &active.group {
            None => (active.run.clone(), active.counter),
            Some(group) => match group.get(&node) {
                Some(member) => (member.run.clone(), member.counter),
                None => return JobEvent::NodeLost { node },
            },
        };
        let status = match &self.logs {
            Some(logs) => logs.final_status(key.kind, key.id.clone(), counter).await,
            None => None,
        };
        match status {
            Some(status) => JobEvent::Finished {
                run,
                node,
                status,
                at: self.clock.now(),
            },
            None => JobEvent::NodeLost { node },
        }
    }
}

/// The slot a due timer of `view`'s job stands for: the scheduled instant for a
/// schedule; for an interval, the shared record's `last_run` plus the interval (`0`
/// when the job never ran), or `None` while a run is active (spec 7.2).
fn slot_of(
    view: &JobView,
    records: &super::coordinator::RecordTable,
    at: Timestamp,
) -> Option<i64> {
    let Some(interval) = view
        .def
        .common
        .interval
        .filter(|_| view.def.common.schedule.is_none())
    else {
        return Some(at.as_second());
    };
    let key = view.def.key();
    let (last_run, active) = match records.get(&state_key(&key)) {
        Some((record, _)) => (record.last_run, record.active.is_some()),
        None => (view.last_run, false),
    };
    if active {
        return None;
    }
    let interval = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX);
    Some(last_run.map_or(0, |last| last.as_second().saturating_add(interval)))
}

/// Writes run `counter`'s final log in `dir`: the `.running` file collected from its
/// node (if any) with `line` appended, renamed to `status`; or a new file with `line`.
/// Returns the file and the offset where this node's bytes start; `None` when the log
/// is already final here.
fn write_closing_log(
    dir: &Path,
    id: &JobId,
    counter: u64,
    status: RunStatus,
    line: &str,
) -> std::io::Result<Option<(PathBuf, u64)>> {
    use std::io::Write as _;
    crate::store::create_private_dir(dir)?;
    let running = dir.join(run_log::file_name(id, counter, RunStatus::Running));
    let done = dir.join(run_log::file_name(id, counter, status));
    if let Some(found) = run_log::find(dir, id, counter)?
        && found.status != RunStatus::Running
    {
        return Ok(None);
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&running)?;
    let offset = file.metadata()?.len();
    file.write_all(line.as_bytes())?;
    file.sync_all()?;
    crate::store::rename_no_replace(&running, &done)?;
    crate::store::sync_dir(dir)?;
    Ok(Some((done, offset)))
}

/// The route of cluster jobs' triggers and controls.
struct Route(Arc<Shared>);

impl ClusterRoute for Route {
    fn trigger(
        &self,
        key: JobKey,
        trigger: Trigger,
    ) -> RouteFuture<Result<Arc<JobView>, TriggerError>> {
        let shared = self.0.clone();
        Box::pin(async move {
            let view = shared
                .view(&key)
                .ok_or_else(|| TriggerError::NotFound(key.to_string()))?;
            if !shared.connected() {
                return Err(unavailable(&key));
            }
            let event = match trigger {
                Trigger::Webhook => JobEvent::Webhook,
                Trigger::Api
                | Trigger::Timer
                | Trigger::Retry
                | Trigger::Chain
                | Trigger::CatchUp => JobEvent::ApiRun,
            };
            let job = shared.job_ctx(&view);
            match shared.apply(&job, event).await {
                Ok(Some(TriggerReply::Paused)) => Err(TriggerError::Paused),
                Ok(Some(TriggerReply::Busy)) => Err(TriggerError::Busy),
                Ok(_) => shared
                    .view(&key)
                    .ok_or_else(|| TriggerError::NotFound(key.to_string())),
                Err(ClusterError::Refused(Refusal::NoLiveNode)) => {
                    Err(TriggerError::ClusterUnavailable(format!(
                        "cluster: no live node can run job {}",
                        key.id
                    )))
                }
                Err(err) => {
                    tracing::warn!(job = %key, %err, "cluster: trigger not applied");
                    Err(unavailable(&key))
                }
            }
        })
    }

    fn control(
        &self,
        key: JobKey,
        control: JobControl,
    ) -> RouteFuture<Result<Option<Arc<JobView>>, TriggerError>> {
        let shared = self.0.clone();
        Box::pin(async move {
            let Some(view) = shared.view(&key) else {
                return Ok(None);
            };
            if !shared.connected() {
                return Err(unavailable(&key));
            }
            let event = match control {
                JobControl::Pause => JobEvent::Pause,
                JobControl::Resume => JobEvent::Resume,
                JobControl::Cancel => JobEvent::Cancel,
            };
            let job = shared.job_ctx(&view);
            match shared.apply(&job, event).await {
                Ok(_) | Err(ClusterError::Refused(_)) => Ok(shared.view(&key)),
                Err(err) => {
                    tracing::warn!(job = %key, %err, "cluster: control not applied");
                    Err(unavailable(&key))
                }
            }
        })
    }
}

/// Takes the scheduler's slots and run ends.
async fn notices(
    shared: Arc<Shared>,
    mut notices: mpsc::UnboundedReceiver<ClusterNotice>,
    stop: CancellationToken,
) {
    loop {
        let notice = tokio::select! {
            () = stop.cancelled() => return,
            notice = notices.recv() => match notice {
                Some(notice) => notice,
                None => return,
            },
        };
        let shared = shared.clone();
        match notice {
            ClusterNotice::Slot { key, at } => {
                tokio::spawn(async move { shared.slot(key, at).await });
            }
            ClusterNotice::Ended {
                key,
                counter,
                status,
                at,
            } => {
                let task = tokio::spawn({
                    let shared = shared.clone();
                    async move { shared.ended(key, counter, status, at).await }
                });
                let mut ending = lock(&shared.ending);
                ending.retain(|task| !task.is_finished());
                ending.push(task);
            }
        }
    }
}

/// Pulls orders while this node has free `max_job_running` slots.
async fn take_orders(shared: Arc<Shared>, stop: CancellationToken) {
    let mut health = shared.coordinator.health();
    let mut snapshots = shared.scheduler.subscribe();
    while !stop.is_cancelled() {
        if !health.borrow_and_update().is_connected() {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = health.changed() => continue,
            }
        }
        let free = {
            let snapshot = snapshots.borrow_and_update();
            let busy = snapshot.running + snapshot.waiting;
            snapshot.config.max_job_running.saturating_sub(busy)
        };
        if free == 0 {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = snapshots.changed() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            continue;
        }
        let taken = tokio::select! {
            () = stop.cancelled() => return,
            taken = shared.coordinator.take_orders(free) => taken,
        };
        match taken {
            Ok(deliveries) => {
                for delivery in deliveries {
                    shared.accept(delivery).await;
                }
            }
            Err(err) => {
                tracing::debug!(%err, "cluster: cannot take orders now");
                tokio::time::sleep(TAKE_LATER).await;
            }
        }
    }
}

/// Shows the scheduler every record that changes.
async fn follow_records(shared: Arc<Shared>, stop: CancellationToken) {
    let mut records = shared.coordinator.records();
    let mut shown: HashMap<String, u64> = HashMap::new();
    loop {
        let mut changed: Vec<(JobKey, JobRecord, u64)> = Vec::new();
        for (key, (record, revision)) in records.borrow_and_update().iter() {
            if shown.insert(key.clone(), *revision) != Some(*revision)
                && let Some(job) = parse_state_key(key)
            {
                changed.push((job, record.clone(), *revision));
            }
        }
        for (key, record, revision) in changed {
            shared.scheduler.cluster_record(key, record, revision).await;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            changed = records.changed() => if changed.is_err() { return },
        }
    }
}

/// Sweeps every third of `lease_ttl` (at most every 5 s).
async fn keep_clean(shared: Arc<Shared>, stop: CancellationToken) {
    let every = (shared.lease_ttl / 3).clamp(Duration::from_millis(200), SWEEP_EVERY_MAX);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        shared.sweep().await;
        // Claims whose answer was lost while connected are read back here (spec
        // 7.2.4), as are the slots a restart brought back.
        shared.recover().await;
    }
}

/// Recovers missed and uncertain slots whenever the link comes back.
async fn follow_health(shared: Arc<Shared>, stop: CancellationToken) {
    let mut health = shared.coordinator.health();
    let mut was_connected = health.borrow_and_update().is_connected();
    if was_connected {
        // The slots the last process left unsettled.
        shared.recover().await;
    }
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            changed = health.changed() => if changed.is_err() { return },
        }
        let connected = health.borrow_and_update().is_connected();
        if connected && !was_connected {
            tracing::info!("cluster: connected again");
            shared.recover().await;
        } else if !connected && was_connected {
            tracing::warn!("cluster: unreachable; cluster jobs pause on this node");
        }
        was_connected = connected;
    }
}

/// Collects the other nodes' logs and tells the scheduler of each final one.
async fn collect_logs(shared: Arc<Shared>, logs: Arc<dyn LogReplica>, stop: CancellationToken) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let layout = shared.layout.clone();
    let snapshots = shared.scheduler.subscribe();
    let log_dirs: LogDirs = Arc::new(move |kind, id: &JobId| {
        snapshots
            .borrow()
            .job(kind, id.as_str())
            .map(|_| layout.log_dir(kind, id))
    });
    let collector = tokio::spawn(logs.collect(log_dirs, tx, stop.clone()));
    while let Some(log) = rx.recv().await {
        shared
            .scheduler
            .cluster_log(log.job, log.counter, log.status, log.path)
            .await;
    }
    let _ = collector.await;
}
