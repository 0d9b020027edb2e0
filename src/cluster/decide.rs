//! The pure per-job state machine of cluster mode (cluster spec 6.3, 7.4): the shared
//! job-state record ([`JobRecord`]) as it is stored under `<kind>.<id>` in the state
//! bucket, the events that change it ([`JobEvent`]), and [`decide`], which applies one
//! event to one record and says what the node whose compare-and-set wins must carry out
//! ([`Action`]). It owns the cluster-wide queue, pause, paused-execution, cancel and
//! order-lifecycle rules: one active run (or one `run_on = all` fan-out), one queued
//! webhook and one coalesced timer tick per job (spec 9.1). It does no IO, reads no
//! clock, spawns nothing and draws no random numbers: the time, the live nodes and the
//! fresh run ids come in through [`Ctx`]. It knows nothing of NATS; the coordinator reads
//! the record, calls [`decide`], writes [`Decision::record`] with a revision check and
//! performs [`Decision::actions`] only when its write won.
//!
//! Choices the spec leaves open, made here:
//!
//! * **Pause** never cancels: the active run goes on, and the queue is kept. A run that
//!   ends while the job is paused starts nothing; as in Go, where every trigger taken
//!   from the queue while paused becomes a paused execution, the queued webhook and then
//!   the queued tick each become a paused execution (a counter and an empty
//!   `<id>.<n>.paused` log). A timer that fires while paused is a paused execution even
//!   while a run is active (the "paused" column of spec 7.4 comes first).
//! * A **paused execution** sets `last_run` (Go does; an interval then counts from it)
//!   but not `status`, which stays the status of the last run that ran: the pause itself
//!   is the separate `paused` flag.
//! * **Cancel** of a running run sets `cancel_requested` and asks its node. A run still
//!   `dispatched` (no node accepted its order) ends at once as `canceled`, through
//!   [`Action::FailRun`] with that status, and the queue goes on as after any end ("a
//!   queued trigger still runs after a cancelled run", single-node spec 6.3). Cancel does
//!   not drop the queue. A second cancel, or one with nothing active, changes nothing.
//! * **`run_on = all`** allocates one counter and one run id per live node in the same
//!   decision. [`ActiveRun::run`] and [`ActiveRun::counter`] are then those of the first
//!   member (the lowest node name); [`ActiveRun::state`] turns `running` when any member
//!   is accepted. Each member's end sets the record's `status` and `last_run` and is
//!   notified on its own; the fan-out ends when every member has. With no live node, a
//!   trigger is refused ([`Refusal::NoLiveNode`]; the caller answers 503 or reports the
//!   slot missed) rather than consuming a counter.
//! * A queued API run is kept in the webhook slot and starts as a `webhook` order.
//! * `DispatchExpired` before the record's deadline is [`Refusal::Stale`]; an accept by
//!   another node than the one a `run_on = <node>` (or fan-out member) order names is
//!   [`Refusal::Stale`] too.
//! * A job with `run_on = local` is never coordinated: every event on it is
//!   [`Refusal::Unchanged`].
//! * If a queued run cannot start when the active one ends (too few run ids in [`Ctx`],
//!   or `run_on = all` with no live node: both caller errors), it stays queued and the
//!   end is still recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};

use super::{NodeName, OrderTrigger, RunOn, RunOrder, kind_word};
use crate::config::duration::format_short;
use crate::job::{JobKey, RunStatus};

/// The format version of [`JobRecord`].
pub const RECORD_VERSION: u32 = 1;

/// The format version of the orders [`decide`] builds.
const ORDER_VERSION: u32 = 1;

/// One job's shared runtime state, the value of key `<kind>.<id>` in the state bucket
/// (cluster spec 7.4). Serialised as JSON in exactly the spec's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The format version, [`RECORD_VERSION`].
    pub v: u32,
    /// The highest counter ever allocated: runs and paused executions.
    pub counter: u64,
    /// The status of the most recently finished run; `null` when none has finished.
    #[serde(default, deserialize_with = "status_word")]
    pub status: Option<RunStatus>,
    /// When the most recent run (or paused execution) ended.
    pub last_run: Option<Timestamp>,
    /// The job is paused: timers make paused executions, triggers are refused.
    pub paused: bool,
    /// The newest timer slot the record took (started, queued or paused), in Unix
    /// seconds; a coalesced tick leaves it.
    pub last_slot: Option<i64>,
    /// The run that is dispatched or running, if any.
    pub active: Option<ActiveRun>,
    /// What waits for the active run to end.
    #[serde(default)]
    pub queued: Queued,
}

/// The run a [`JobRecord`] has in progress: one order, or a `run_on = all` fan-out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveRun {
    /// The run's id (UUID v7); the first member's for a fan-out.
    pub run: String,
    /// The run's counter; the first member's for a fan-out.
    pub counter: u64,
    /// Where it was sent: the job's `run_on` when it was dispatched.
    pub target: RunOn,
    /// The node running it; `null` until a node accepts the order, and for a fan-out.
    pub node: Option<NodeName>,
    /// Dispatched or running (running once any member of a fan-out is).
    pub state: ActiveState,
    /// The `PubAck` sequence of the order, to delete it later.
    #[serde(default)]
    pub seq: Option<u64>,
    /// When it was dispatched.
    pub since: Timestamp,
    /// When an order not yet accepted is given up (`since + dispatch_timeout`).
    pub deadline: Timestamp,
    /// Cancel was asked for; the executing node watches this flag.
    #[serde(default)]
    pub cancel_requested: bool,
    /// The members of a `run_on = all` fan-out, by node; `null` otherwise.
    #[serde(default)]
    pub group: Option<BTreeMap<NodeName, GroupMember>>,
}

/// Where an active run or a fan-out member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActiveState {
    /// Its order is published; no node has accepted it yet.
    Dispatched,
    /// A node accepted the order and executes it.
    Running,
}

/// One node's run of a `run_on = all` fan-out. The member is finished once `status` is
/// set; `state` then keeps where it was when it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    /// The member's run id.
    pub run: String,
    /// The member's counter.
    pub counter: u64,
    /// Dispatched or running.
    pub state: ActiveState,
    /// The member's final status, once it has ended.
    #[serde(default, deserialize_with = "status_word")]
    pub status: Option<RunStatus>,
    /// The `PubAck` sequence of the member's order.
    #[serde(default)]
    pub seq: Option<u64>,
}

/// Go's two one-slot buffers: the trigger queue and the coalescing timer channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// One webhook (or API run) waits.
    pub webhook: bool,
    /// One timer tick waits: its slot.
    pub timer: Option<i64>,
}

impl JobRecord {
    /// The record the first node to see a job without one creates from its local state
    /// (state file, or the logs of a migrated Go install): nothing active, nothing
    /// queued.
    pub fn seed(
        counter: u64,
        status: Option<RunStatus>,
        last_run: Option<Timestamp>,
        paused: bool,
    ) -> Self {
        Self {
            v: RECORD_VERSION,
            counter,
            status,
            last_run,
            paused,
            last_slot: None,
            active: None,
            queued: Queued::default(),
        }
    }

    /// Raises the counter to at least `local_max`, the highest counter of this node's
    /// own log files, so a joining node never has them overwritten. Returns whether the
    /// record changed (and needs writing).
    pub fn raise_counter(&mut self, local_max: u64) -> bool {
        if local_max > self.counter {
            self.counter = local_max;
            true
        } else {
            false
        }
    }
}

/// Reads a status word (`"success"`); `null` and `""` (Go's resumed job) are none.
fn status_word<'de, D: Deserializer<'de>>(reader: D) -> Result<Option<RunStatus>, D::Error> {
    let word: Option<String> = Option::deserialize(reader)?;
    match word.as_deref() {
        None | Some("") => Ok(None),
        Some(word) => RunStatus::parse(word)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown run status {word:?}"))),
    }
}

/// Something that happened to one cluster job, for [`decide`] to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEvent {
    /// This node won the claim of a timer slot (Unix seconds); `catchup` when it is a
    /// missed slot fired after an outage.
    Timer {
        /// The slot.
        slot: i64,
        /// Fired late, within `misfire_grace`.
        catchup: bool,
    },
    /// A signed webhook.
    Webhook,
    /// A run asked for through the API or the web UI.
    ApiRun,
    /// Pause the job.
    Pause,
    /// Resume the job.
    Resume,
    /// Cancel the active run.
    Cancel,
    /// The order of `run` was stored by the server with `PubAck` sequence `seq`.
    Dispatched {
        /// The run.
        run: String,
        /// The order's stream sequence.
        seq: u64,
    },
    /// `node` took the order of `run` and is about to execute it.
    Accepted {
        /// The run.
        run: String,
        /// The accepting node.
        node: NodeName,
    },
    /// `node` finished `run` with `status` at `at`.
    Finished {
        /// The run.
        run: String,
        /// The executing node.
        node: NodeName,
        /// Its final status.
        status: RunStatus,
        /// When it ended.
        at: Timestamp,
    },
    /// `node`'s lease expired: it stopped answering.
    NodeLost {
        /// The lost node.
        node: NodeName,
    },
    /// Nobody accepted the order of `run` before its deadline.
    DispatchExpired {
        /// The run.
        run: String,
    },
    /// The order of `run` reached `MaxDeliver` deliveries without being accepted.
    OrderDead {
        /// The run.
        run: String,
    },
}

/// What [`decide`] knows besides the record and the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ctx {
    /// The time of the node applying the event.
    pub now: Timestamp,
    /// The node applying the event: the origin of the orders it builds.
    pub node: NodeName,
    /// The live nodes, sorted (this node included).
    pub live_nodes: Vec<NodeName>,
    /// The job's `run_on`.
    pub run_on: RunOn,
    /// Fresh run ids (UUID v7), used in order: one per order a start may need (one for
    /// `any`, a node or a tag; one per live node for `all`).
    pub new_runs: Vec<String>,
    /// How long an order may wait to be accepted (`[cluster] dispatch_timeout`).
    pub dispatch_timeout: Duration,
    /// The job.
    pub job: JobKey,
    /// `sha256:<hex>` of the job's definition on this node.
    pub job_digest: String,
}

/// The outcome of an event: the record to write and what to do once the write won.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The new record.
    pub record: JobRecord,
    /// What the winner carries out, in order.
    pub actions: Vec<Action>,
    /// Whether `record` differs from the record given: when not, the caller carries out
    /// `actions` (a reply) without writing.
    pub changed: bool,
}

/// Something the node whose write won must carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Sign and publish `order` to `target`'s subject: `any`, a tag, or one node (every
    /// member of a fan-out has its own order with `target` its node).
    Dispatch {
        /// The order.
        order: RunOrder,
        /// Where it goes.
        target: RunOn,
    },
    /// A paused execution consumed `counter`: write an empty `<id>.<counter>.paused` log
    /// on every node (single-node spec 6.1).
    WritePausedLog {
        /// The counter it took.
        counter: u64,
    },
    /// Answer the webhook or API call that asked for a run.
    Reply(TriggerReply),
    /// Tell `node` to cancel `run` (TERM, grace, KILL).
    RequestCancel {
        /// The run.
        run: String,
        /// The node executing it.
        node: Option<NodeName>,
    },
    /// End a run that its executor will never end: delete its order (`order_seq`) when
    /// one is still waiting, and write and ship the final log `<id>.<counter>.<status>`
    /// with `reason`. `status` is `failed`, or `canceled` for a canceled order.
    FailRun {
        /// The run.
        run: String,
        /// Its counter.
        counter: u64,
        /// The node it was running on, if any.
        node: Option<NodeName>,
        /// The final status.
        status: RunStatus,
        /// Why, for the log and the event stream.
        reason: String,
        /// The `PubAck` sequence of its order, when the order was never accepted.
        order_seq: Option<u64>,
    },
    /// A run ended with `status`: send the job's notifications for it.
    Notify {
        /// The run.
        run: String,
        /// Its counter.
        counter: u64,
        /// How it ended.
        status: RunStatus,
        /// The record's status before this end (for `notif_on_recover`).
        previous: Option<RunStatus>,
    },
}

/// The answer to a webhook or API run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerReply {
    /// A run with this counter was dispatched (200).
    Started(u64),
    /// The trigger waits for the active run (200).
    Queued,
    /// The job is paused (412).
    Paused,
    /// A run is active and one trigger already waits (429).
    Busy,
}

impl TriggerReply {
    /// The HTTP status code Go answers with.
    pub fn http_code(self) -> u16 {
        match self {
            Self::Started(_) | Self::Queued => 200,
            Self::Paused => 412,
            Self::Busy => 429,
        }
    }
}

/// Why [`decide`] wrote nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The event is about a run that is not the active one, or not in the state the
    /// event expects (a second accept, a second finish, an expiry of a running run).
    #[error("stale: the run is not the active one or not in the expected state")]
    Stale,
    /// Nothing to change and nothing to do (a coalesced tick, a second pause, a cancel
    /// with nothing active, a local job).
    #[error("nothing to change")]
    Unchanged,
    /// `run_on = all` and no node is live.
    #[error("run_on = all and no node is live")]
    NoLiveNode,
    /// [`Ctx::new_runs`] holds fewer run ids than the start needs.
    #[error("{needed} new run ids needed, {given} given")]
    MissingRunIds {
        /// How many the start needs.
        needed: usize,
        /// How many were given.
        given: usize,
    },
}

/// Applies `event` to `record`: the record to write and what the winner must do, or
/// why nothing is to be written. Pure: the same inputs give the same decision.
pub fn decide(record: &JobRecord, event: &JobEvent, ctx: &Ctx) -> Result<Decision, Refusal> {
    if !ctx.run_on.is_cluster() {
        return Err(Refusal::Unchanged);
    }
    let mut step = Step {
        record: record.clone(),
        actions: Vec::new(),
        ctx,
    };
    match event {
        JobEvent::Timer { slot, catchup } => step.timer(*slot, *catchup)?,
        JobEvent::Webhook => step.trigger(OrderTrigger::Webhook)?,
        JobEvent::ApiRun => step.trigger(OrderTrigger::Api)?,
        JobEvent::Pause => step.record.paused = true,
        JobEvent::Resume => step.resume(),
        JobEvent::Cancel => step.cancel(),
        JobEvent::Dispatched { run, seq } => step.dispatched(run, *seq)?,
        JobEvent::Accepted { run, node } => step.accepted(run, node)?,
        JobEvent::Finished {
            run,
            node,
            status,
            at,
        } => step.finished(run, node, *status, *at)?,
        JobEvent::NodeLost { node } => step.node_lost(node),
        JobEvent::DispatchExpired { run } => {
            step.not_accepted(run, Unaccepted::Expired)?;
        }
        JobEvent::OrderDead { run } => step.not_accepted(run, Unaccepted::Dead)?,
    }
    let changed = step.record != *record;
    if !changed && step.actions.is_empty() {
        return Err(Refusal::Unchanged);
    }
    Ok(Decision {
        record: step.record,
        actions: step.actions,
        changed,
    })
}

/// Why an order was given up before any node accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unaccepted {
    /// Its deadline passed.
    Expired,
    /// `MaxDeliver` was reached.
    Dead,
}

/// One decision under way: the record being changed and the actions so far.
struct Step<'a> {
    record: JobRecord,
    actions: Vec<Action>,
    ctx: &'a Ctx,
}

impl Step<'_> {
    fn timer(&mut self, slot: i64, catchup: bool) -> Result<(), Refusal> {
        if self.record.paused {
            self.paused_execution();
        } else if self.record.active.is_some() {
            if self.record.queued.timer.is_some() {
                // Go's timer channel holds one tick; this one is coalesced.
                return Err(Refusal::Unchanged);
            }
            self.record.queued.timer = Some(slot);
        } else {
            let trigger = if catchup {
                OrderTrigger::CatchUp
            } else {
                OrderTrigger::Timer
            };
            self.start(trigger, Some(slot))?;
        }
        self.record.last_slot = Some(self.record.last_slot.map_or(slot, |last| last.max(slot)));
        Ok(())
    }

    fn trigger(&mut self, trigger: OrderTrigger) -> Result<(), Refusal> {
        let reply = if self.record.paused {
            TriggerReply::Paused
        } else if self.record.active.is_none() {
            TriggerReply::Started(self.start(trigger, None)?)
        } else if !self.record.queued.webhook {
            self.record.queued.webhook = true;
            TriggerReply::Queued
        } else {
            TriggerReply::Busy
        };
        self.actions.push(Action::Reply(reply));
        Ok(())
    }

    fn resume(&mut self) {
        if !self.record.paused {
            return;
        }
        self.record.paused = false;
        // Go resets a resumed HTTP job's status to `started` (spec 6.4).
        if let Some(status) = self.ctx.job.kind.status_on_resume() {
            self.record.status = Some(status);
        }
    }

    fn cancel(&mut self) {
        let Some(active) = self.record.active.as_mut() else {
            return;
        };
        if active.cancel_requested {
            return;
        }
        let mut unaccepted = Vec::new();
        match &active.group {
            None if active.state == ActiveState::Dispatched => unaccepted.push(active.run.clone()),
            None => {
                active.cancel_requested = true;
                self.actions.push(Action::RequestCancel {
                    run: active.run.clone(),
                    node: active.node.clone(),
                });
            }
            Some(group) => {
                active.cancel_requested = true;
                for (node, member) in group.iter().filter(|(_, m)| m.status.is_none()) {
                    match member.state {
                        ActiveState::Dispatched => unaccepted.push(member.run.clone()),
                        ActiveState::Running => self.actions.push(Action::RequestCancel {
                            run: member.run.clone(),
                            node: Some(node.clone()),
                        }),
                    }
                }
            }
        }
        for run in unaccepted {
            let reason = "canceled before a node accepted it".to_string();
            self.end_run(&run, RunStatus::Canceled, self.ctx.now, Some(reason));
        }
    }

    fn dispatched(&mut self, run: &str, seq: u64) -> Result<(), Refusal> {
        let active = self.record.active.as_mut().ok_or(Refusal::Stale)?;
        match active.group.as_mut() {
            None if active.run == run => active.seq = Some(seq),
            None => return Err(Refusal::Stale),
            Some(group) => {
                let member = group
                    .values_mut()
                    .find(|m| m.run == run)
                    .ok_or(Refusal::Stale)?;
                member.seq = Some(seq);
            }
        }
        Ok(())
    }

    fn accepted(&mut self, run: &str, node: &NodeName) -> Result<(), Refusal> {
        let active = self.record.active.as_mut().ok_or(Refusal::Stale)?;
        match active.group.as_mut() {
            None => {
                let pinned_elsewhere =
                    matches!(&active.target, RunOn::Node(pinned) if pinned != node);
                if active.run != run || active.state != ActiveState::Dispatched || pinned_elsewhere
                {
                    return Err(Refusal::Stale);
                }
                active.node = Some(node.clone());
            }
            Some(group) => {
                let member = group
                    .get_mut(node)
                    .filter(|m| {
                        m.run == run && m.state == ActiveState::Dispatched && m.status.is_none()
                    })
                    .ok_or(Refusal::Stale)?;
                member.state = ActiveState::Running;
            }
        }
        active.state = ActiveState::Running;
        if active.cancel_requested {
            // Canceled while the order waited: the node cancels as soon as it starts.
            self.actions.push(Action::RequestCancel {
                run: run.to_string(),
                node: Some(node.clone()),
            });
        }
        Ok(())
    }

    fn finished(
        &mut self,
        run: &str,
        node: &NodeName,
        status: RunStatus,
        at: Timestamp,
    ) -> Result<(), Refusal> {
        let active = self.record.active.as_ref().ok_or(Refusal::Stale)?;
        let running_there = match &active.group {
            None => {
                active.run == run
                    && active.state == ActiveState::Running
                    && active.node.as_ref() == Some(node)
            }
            Some(group) => group.get(node).is_some_and(|m| {
                m.run == run && m.state == ActiveState::Running && m.status.is_none()
            }),
        };
        if !running_there {
            return Err(Refusal::Stale);
        }
        self.end_run(run, status, at, None);
        Ok(())
    }

    fn node_lost(&mut self, lost: &NodeName) {
        let Some(active) = self.record.active.as_ref() else {
            return;
        };
        let runs: Vec<String> = match &active.group {
            None if active.state == ActiveState::Running && active.node.as_ref() == Some(lost) => {
                vec![active.run.clone()]
            }
            None => Vec::new(),
            Some(group) => group
                .get(lost)
                .filter(|m| m.state == ActiveState::Running && m.status.is_none())
                .map(|m| vec![m.run.clone()])
                .unwrap_or_default(),
        };
        for run in runs {
            let reason = format!("node {lost} stopped answering");
            self.end_run(&run, RunStatus::Failed, self.ctx.now, Some(reason));
        }
    }

    fn not_accepted(&mut self, run: &str, why: Unaccepted) -> Result<(), Refusal> {
        let active = self.record.active.as_ref().ok_or(Refusal::Stale)?;
        let target = match &active.group {
            None if active.run == run && active.state == ActiveState::Dispatched => {
                active.target.to_string()
            }
            None => return Err(Refusal::Stale),
            Some(group) => group
                .iter()
                .find(|(_, m)| {
                    m.run == run && m.state == ActiveState::Dispatched && m.status.is_none()
                })
                .map(|(node, _)| node.to_string())
                .ok_or(Refusal::Stale)?,
        };
        let reason = match why {
            Unaccepted::Expired if self.ctx.now < active.deadline => return Err(Refusal::Stale),
            Unaccepted::Expired => format!(
                "not accepted by {target} within {}",
                format_short(self.ctx.dispatch_timeout)
            ),
            Unaccepted::Dead => "order dead after max deliveries".to_string(),
        };
        self.end_run(run, RunStatus::Failed, self.ctx.now, Some(reason));
        Ok(())
    }

    /// Ends `run` (the active run or an unfinished fan-out member) with `status` at
    /// `at`: a [`Action::FailRun`] first when `fail_reason` says the executor will not
    /// end it, then [`Action::Notify`]. When nothing of the active run is left, the
    /// queue goes on.
    fn end_run(
        &mut self,
        run: &str,
        status: RunStatus,
        at: Timestamp,
        fail_reason: Option<String>,
    ) {
        let previous = self.record.status;
        let Some(active) = self.record.active.as_mut() else {
            return;
        };
        let (counter, node, order_seq, all_ended) = match active.group.as_mut() {
            None if active.run == run => {
                let unaccepted = active.state == ActiveState::Dispatched;
                let order_seq = active.seq.filter(|_| unaccepted);
                (active.counter, active.node.clone(), order_seq, true)
            }
            None => return,
            Some(group) => {
                let Some((node, member)) = group
                    .iter_mut()
                    .find(|(_, m)| m.run == run && m.status.is_none())
                else {
                    return;
                };
                member.status = Some(status);
                let unaccepted = member.state == ActiveState::Dispatched;
                let node = (!unaccepted).then(|| node.clone());
                let order_seq = member.seq.filter(|_| unaccepted);
                let counter = member.counter;
                let all_ended = group.values().all(|m| m.status.is_some());
                (counter, node, order_seq, all_ended)
            }
        };
        if let Some(reason) = fail_reason {
            self.actions.push(Action::FailRun {
                run: run.to_string(),
                counter,
                node,
                status,
                reason,
                order_seq,
            });
        }
        self.actions.push(Action::Notify {
            run: run.to_string(),
            counter,
            status,
            previous,
        });
        self.record.status = Some(status);
        self.record.last_run = Some(at);
        if all_ended {
            self.record.active = None;
            self.start_queued();
        }
    }

    /// After the active run ended: the queued webhook first, else the queued tick.
    /// While paused each queued trigger becomes a paused execution instead.
    fn start_queued(&mut self) {
        if self.record.paused {
            if std::mem::take(&mut self.record.queued.webhook) {
                self.paused_execution();
            }
            if self.record.queued.timer.take().is_some() {
                self.paused_execution();
            }
            return;
        }
        if self.record.queued.webhook {
            if self.start(OrderTrigger::Webhook, None).is_ok() {
                self.record.queued.webhook = false;
            }
        } else if let Some(slot) = self.record.queued.timer
            && self.start(OrderTrigger::Timer, Some(slot)).is_ok()
        {
            self.record.queued.timer = None;
        }
    }

    /// A timer (or queued trigger) while paused: a counter and an empty paused log.
    fn paused_execution(&mut self) {
        self.record.counter += 1;
        self.record.last_run = Some(self.ctx.now);
        self.actions.push(Action::WritePausedLog {
            counter: self.record.counter,
        });
    }

    /// Allocates the counter(s) of a new active run and its order(s); returns the first
    /// counter. Changes nothing when it refuses.
    fn start(&mut self, trigger: OrderTrigger, slot: Option<i64>) -> Result<u64, Refusal> {
        let ctx = self.ctx;
        let deadline = ctx
            .now
            .checked_add(ctx.dispatch_timeout)
            .unwrap_or(Timestamp::MAX);
        let targets: Vec<RunOn> = match &ctx.run_on {
            RunOn::All => {
                let live: BTreeSet<&NodeName> = ctx.live_nodes.iter().collect();
                if live.is_empty() {
                    return Err(Refusal::NoLiveNode);
                }
                live.into_iter().cloned().map(RunOn::Node).collect()
            }
            target => vec![target.clone()],
        };
        let runs = ctx
            .new_runs
            .get(..targets.len())
            .ok_or(Refusal::MissingRunIds {
                needed: targets.len(),
                given: ctx.new_runs.len(),
            })?;
        let first = self.record.counter + 1;
        let mut group = BTreeMap::new();
        for (target, run) in targets.iter().zip(runs) {
            self.record.counter += 1;
            let counter = self.record.counter;
            self.actions.push(Action::Dispatch {
                order: self.order(run, counter, trigger, slot, deadline),
                target: target.clone(),
            });
            if let (RunOn::All, RunOn::Node(node)) = (&ctx.run_on, target) {
                group.insert(
                    node.clone(),
                    GroupMember {
                        run: run.clone(),
                        counter,
                        state: ActiveState::Dispatched,
                        status: None,
                        seq: None,
                    },
                );
            }
        }
        self.record.active = Some(ActiveRun {
            run: runs.first().cloned().unwrap_or_default(),
            counter: first,
            target: ctx.run_on.clone(),
            node: None,
            state: ActiveState::Dispatched,
            seq: None,
            since: ctx.now,
            deadline,
            cancel_requested: false,
            group: (ctx.run_on == RunOn::All).then_some(group),
        });
        Ok(first)
    }

    fn order(
        &self,
        run: &str,
        counter: u64,
        trigger: OrderTrigger,
        slot: Option<i64>,
        deadline: Timestamp,
    ) -> RunOrder {
        let ctx = self.ctx;
        RunOrder {
            v: ORDER_VERSION,
            run: run.to_string(),
            kind: kind_word(ctx.job.kind).to_string(),
            job: ctx.job.id.as_str().to_string(),
            counter,
            trigger,
            slot,
            origin: ctx.node.clone(),
            enqueued_at: ctx.now,
            deadline,
            job_digest: ctx.job_digest.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
