//! The scheduler task: a thin executor around [`decide`]. It turns commands, timers
//! and finished runs into [`Event`]s, sleeps until the next due time (no polling), and
//! performs the [`Effect`]s: run logs are opened and pruned on the blocking pool and
//! runs are spawned as tasks, state saves go to the one [`StateWriter`], notifications
//! are queued by tasks it waits for at shutdown, and snapshots are published once per
//! batch of events. No file is touched on this task.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::decide::{
    self, Answer, Effect, Event, Finished, Notice, Request, RunOrder, SchedulerState,
};
use super::monitors::{
    LogAction, MonitorAlert, MonitorLogWrite, MonitorView, PingAnswer, RestoredMonitor,
};
use super::restore::{RestoredJob, restore_job, restore_monitor, restore_service};
use super::run::{self, RunPlan};
use super::services::{InstanceEvent, InstanceOrder, ServiceAlert};
use super::state_writer::StateWriter;
use super::{
    ClusterNotice, Command, JobDef, JobView, PulseError, PulseReply, SchedulerHandle, Snapshot,
    TriggerError,
};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::exec::RunContext;
use crate::job::JobKey;
use crate::metrics::Metrics;
use crate::monitor::{Pulse, pulse_spec};
use crate::notify::{Notifier, NotifyOn, RunRecord};
use crate::store::monitor_files::PingBlock;
use crate::store::{EventLog, Layout, RunLogWriter, StateFile, run_log};

/// How many commands may wait in the channel before senders wait.
const COMMAND_QUEUE: usize = 1024;

/// How many ready events are taken before one publish.
const BATCH: usize = 256;

/// What the scheduler starts from.
#[derive(Debug)]
pub struct SchedulerOptions {
    /// Paths under `dir_base`.
    pub layout: Layout,
    /// The source of "now" and of timer sleeps.
    pub clock: SharedClock,
    /// The configuration the jobs come from; published with every snapshot.
    pub config: Arc<Config>,
    /// The jobs, as restored from disk.
    pub jobs: Vec<RestoredJob>,
    /// The state file as loaded at start-up.
    pub state: StateFile,
    /// The monitors, as restored from disk.
    pub monitors: Vec<RestoredMonitor>,
    /// When the previous karajo was last known alive (its liveness mark).
    pub last_alive: Option<jiff::Timestamp>,
    /// The records of the dynamic (watchTower) monitors among `monitors`.
    pub pulses: Vec<crate::monitor::Pulse>,
    /// The services, as restored from disk.
    pub services: Vec<super::RestoredService>,
    /// How a service instance reaches karajo (`http://127.0.0.1:31937`), for its
    /// `KARAJO_SERVICE_PING_URL`.
    pub service_url: String,
    /// Where monitor transitions are recorded; `None` records none.
    pub events: Option<EventLog>,
    /// Where finished runs are counted.
    pub metrics: Arc<Metrics>,
    /// Where finished runs are reported for notifications; `None` sends none.
    pub notifier: Option<Notifier>,
    /// Cluster mode: this node's name, and where cluster jobs' due slots and run ends
    /// go (the cluster agent). `None`: single-node mode.
    pub cluster: Option<(
        crate::cluster::NodeName,
        mpsc::UnboundedSender<ClusterNotice>,
    )>,
}

/// Starts the scheduler task. The returned handle talks to it; the join handle ends
/// after [`SchedulerHandle::shutdown`], once the state file is written.
pub fn spawn(opts: SchedulerOptions) -> (SchedulerHandle, JoinHandle<()>) {
    let (tx, commands) = mpsc::channel(COMMAND_QUEUE);
    let (internal_tx, internal) = mpsc::unbounded_channel();
    let mut state = SchedulerState::new(opts.config.clone());
    let (cluster_node, cluster) = opts.cluster.unzip();
    state.cluster_node = cluster_node;
    let now = opts.clock.now();
    let restore = Event::Restore {
        jobs: opts.jobs,
        max_job_running: opts.config.max_job_running,
        config: opts.config,
        monitors: opts.monitors,
        last_alive: opts.last_alive,
        pulses: opts.pulses,
        services: opts.services,
    };
    let first = decide::decide(&mut state, restore, now);
    let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(state.snapshot()));
    let (writer, writer_task) = StateWriter::spawn(
        opts.layout.clone(),
        opts.state,
        snapshot_rx.clone(),
        opts.clock.clone(),
    );
    let (monitor_logs, monitor_log_task) = spawn_monitor_log_writer();
    let mut executor = Executor {
        state,
        layout: opts.layout,
        clock: opts.clock,
        metrics: opts.metrics,
        notifier: opts.notifier,
        snapshot_tx,
        writer: Some(writer),
        internal_tx,
        cancels: HashMap::new(),
        opening: HashMap::new(),
        notices: JoinSet::new(),
        events: opts.events,
        monitor_logs: Some(monitor_logs),
        instances: HashMap::new(),
        service_url: opts.service_url,
        waiters: Vec::new(),
        publish: false,
        save: false,
        stopped: false,
        final_save: None,
        cluster,
    };
    executor.perform(first, Reply::None);
    executor.flush();
    let handle = SchedulerHandle {
        tx,
        snapshot: snapshot_rx,
        cluster: Arc::default(),
    };
    let task = tokio::spawn(async move {
        executor.run(commands, internal).await;
        // Its channels close here; the writers end once what they were given is done.
        drop(executor);
        let _ = monitor_log_task.await;
        let _ = writer_task.await;
    });
    (handle, task)
}

/// What waits for this event's barriers.
enum Deferred {
    Answer(Box<dyn FnOnce() + Send>),
    Notify(MonitorAlert),
}

/// What run tasks and blocking work report back.
enum Internal {
    /// A run's work is done; its log is being closed.
    Executed(JobKey, u64),
    /// A run ended.
    Finished(Finished),
    /// The jobs new to a reload were restored from disk.
    Restored {
        jobs: Vec<JobDef>,
        restored: Vec<RestoredJob>,
        monitors: Vec<RestoredMonitor>,
        services: Vec<super::RestoredService>,
        max_job_running: usize,
        config: Arc<Config>,
        reply: oneshot::Sender<()>,
    },
    /// A service instance reported.
    Instance {
        id: crate::job::JobId,
        generation: u64,
        event: InstanceEvent,
    },
    /// The monitor a pulse creates was restored from disk.
    PulseRestored {
        pulse: Pulse,
        block: PingBlock,
        found: Option<Box<RestoredMonitor>>,
        reply: oneshot::Sender<PulseReply>,
    },
}

/// Who waits for the answer of the event being decided.
enum Reply {
    None,
    Trigger(oneshot::Sender<Result<Arc<JobView>, TriggerError>>),
    Job(oneshot::Sender<Option<Arc<JobView>>>),
    Done(oneshot::Sender<()>),
    Ping(oneshot::Sender<Option<PingAnswer>>),
    Monitor(oneshot::Sender<Option<Arc<MonitorView>>>),
    Pulse(oneshot::Sender<PulseReply>),
    Service(oneshot::Sender<Option<super::ServiceAnswer>>),
    ServicePing(oneshot::Sender<Option<super::ServicePingAnswer>>),
}

struct Executor {
    state: SchedulerState,
    layout: Layout,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    notifier: Option<Notifier>,
    snapshot_tx: watch::Sender<Arc<Snapshot>>,
    /// Dropped at the end, which ends the writer task.
    writer: Option<StateWriter>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    /// The cancel switch of every running run.
    cancels: HashMap<(JobKey, u64), CancellationToken>,
    /// Logs being opened for runs about to be spawned.
    opening: HashMap<(JobKey, u64), JoinHandle<io::Result<RunLogWriter>>>,
    /// Notifications being queued; waited for at shutdown.
    notices: JoinSet<()>,
    /// The event log.
    events: Option<EventLog>,
    /// The writer of monitors' check-in logs, in order; dropped at the end.
    monitor_logs: Option<mpsc::UnboundedSender<(MonitorLogJob, oneshot::Sender<()>)>>,
    /// Each service's current instance: its spawn number and handle, and the task
    /// listening on its notify socket.
    instances: HashMap<
        crate::job::JobId,
        (
            u64,
            crate::exec::service::InstanceHandle,
            Option<tokio::task::AbortHandle>,
        ),
    >,
    /// How instances reach karajo.
    service_url: String,
    /// Who to tell when the shutdown is complete.
    waiters: Vec<oneshot::Sender<()>>,
    /// A snapshot is due at the end of the batch.
    publish: bool,
    /// A state save is due at the end of the batch.
    save: bool,
    stopped: bool,
    /// The durable save that came with [`Effect::Stopped`].
    final_save: Option<oneshot::Receiver<()>>,
    /// Cluster mode: the cluster agent.
    cluster: Option<mpsc::UnboundedSender<ClusterNotice>>,
}

impl Executor {
    async fn run(
        &mut self,
        mut commands: mpsc::Receiver<Command>,
        mut internal: mpsc::UnboundedReceiver<Internal>,
    ) {
        // Once every handle is gone the channel stays closed: stop listening to it.
        let mut listening = true;
        while !self.stopped {
            let next_due = self.state.next_due();
            let clock = self.clock.clone();
            let sleep = async move {
                match next_due {
                    Some(due) => clock.sleep_until(due).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                Some(msg) = internal.recv() => self.internal(msg),
                cmd = commands.recv(), if listening => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => {
                        listening = false;
                        self.decide(Event::Shutdown, Reply::None);
                    }
                },
                () = sleep => self.decide(Event::TimerDue, Reply::None),
            }
            // Take whatever else is ready before publishing once.
            for _ in 0..BATCH {
                if self.stopped {
                    break;
                }
                match internal.try_recv() {
                    Ok(msg) => self.internal(msg),
                    Err(_) if !listening => break,
                    Err(_) => match commands.try_recv() {
                        Ok(cmd) => self.command(cmd),
                        Err(_) => break,
                    },
                }
            }
            self.flush();
            while self.notices.try_join_next().is_some() {}
        }
        self.finish().await;
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Trigger {
                key,
                trigger,
                request,
                env,
                reply,
            } => {
                let request = Request {
                    trigger,
                    request,
                    origin: None,
                    env,
                };
                self.decide(Event::Trigger { key, request }, Reply::Trigger(reply));
            }
            Command::Pause { key, reply } => self.decide(Event::Pause(key), Reply::Job(reply)),
            Command::Resume { key, reply } => self.decide(Event::Resume(key), Reply::Job(reply)),
            Command::Cancel { key, reply } => self.decide(Event::Cancel(key), Reply::Job(reply)),
            Command::ClusterStart {
                key,
                counter,
                trigger,
                run,
                reply,
            } => {
                let event = Event::ClusterStart {
                    key,
                    counter,
                    trigger,
                    run,
                };
                self.decide(event, Reply::Trigger(reply));
            }
            Command::ClusterRecord {
                key,
                record,
                revision,
                reply,
            } => {
                let event = Event::ClusterRecord {
                    key,
                    record,
                    revision,
                };
                self.decide(event, Reply::Job(reply));
            }
            Command::ClusterLog {
                key,
                counter,
                status,
                path,
            } => {
                let event = Event::ClusterLog {
                    key,
                    counter,
                    status,
                    path,
                };
                self.decide(event, Reply::None);
            }
            Command::Reload {
                jobs,
                config,
                reply,
            } => self.restore_new_jobs(jobs, config, reply),
            Command::Ping {
                id,
                ping,
                block,
                reply,
            } => self.decide(Event::Ping { id, ping, block }, Reply::Ping(reply)),
            Command::PauseMonitor { id, until, reply } => {
                self.decide(Event::PauseMonitor { id, until }, Reply::Monitor(reply));
            }
            Command::ResumeMonitor { id, reply } => {
                self.decide(Event::ResumeMonitor(id), Reply::Monitor(reply));
            }
            Command::Pulse {
                pulse,
                block,
                reply,
            } => self.pulse(pulse, block, reply),
            Command::CancelPulse { service, reply } => {
                self.decide(Event::CancelPulse(service), Reply::Pulse(reply));
            }
            Command::ServiceControl {
                id,
                control,
                cas,
                by,
                reply,
            } => {
                let event = Event::ServiceControl {
                    id,
                    control,
                    cas,
                    by,
                };
                self.decide(event, Reply::Service(reply));
            }
            Command::ServicePing {
                id,
                token,
                update,
                reply,
            } => {
                let event = Event::ServicePing { id, token, update };
                self.decide(event, Reply::ServicePing(reply));
            }
            Command::Shutdown { reply } => {
                self.waiters.push(reply);
                self.decide(Event::Shutdown, Reply::None);
            }
        }
    }

    fn internal(&mut self, msg: Internal) {
        match msg {
            Internal::Executed(key, counter) => {
                self.decide(Event::RunExecuted { key, counter }, Reply::None);
            }
            Internal::Finished(done) => {
                self.cancels.remove(&(done.key.clone(), done.counter));
                self.decide(Event::RunFinished(done), Reply::None);
            }
            Internal::Instance {
                id,
                generation,
                event,
            } => {
                let event = Event::Instance {
                    id,
                    generation,
                    event,
                };
                self.decide(event, Reply::None);
            }
            Internal::Restored {
                jobs,
                restored,
                monitors,
                services,
                max_job_running,
                config,
                reply,
            } => {
                let event = Event::Reload {
                    jobs,
                    restored,
                    max_job_running,
                    config,
                    monitors,
                    services,
                };
                self.decide(event, Reply::Done(reply));
            }
            Internal::PulseRestored {
                pulse,
                block,
                found,
                reply,
            } => {
                let event = Event::Pulse {
                    pulse,
                    block,
                    fresh: found,
                };
                self.decide(event, Reply::Pulse(reply));
            }
        }
    }

    /// A pulse for a monitor the scheduler knows is decided now; one that creates a
    /// monitor first restores what is on disk for it, on the blocking pool.
    fn pulse(&mut self, pulse: Pulse, block: PingBlock, reply: oneshot::Sender<PulseReply>) {
        let id = pulse.id();
        let config = self.state.config.clone();
        let full = self.state.monitors.dynamic_count() >= super::monitors::max_dynamic(&config);
        if self.state.monitors.knows(&id) || full {
            let event = Event::Pulse {
                pulse,
                block,
                fresh: None,
            };
            self.decide(event, Reply::Pulse(reply));
            return;
        }
        let spec = Arc::new(pulse_spec(&pulse, config.watchtower.as_ref(), &config.notifs).spec);
        let (layout, now, back) = (
            self.layout.clone(),
            self.clock.now(),
            self.internal_tx.clone(),
        );
        tokio::spawn(async move {
            let found = tokio::task::spawn_blocking(move || restore_monitor(&layout, spec, now))
                .await
                .map_err(|join| io::Error::other(join.to_string()))
                .and_then(|restored| restored.map(Box::new))
                .inspect_err(|err| tracing::error!(monitor = %id, %err, "cannot set up a watchTower monitor"))
                .ok();
            let _ = back.send(Internal::PulseRestored {
                pulse,
                block,
                found,
                reply,
            });
        });
    }

    /// Restores the jobs a reload adds on the blocking pool, then decides the reload.
    fn restore_new_jobs(
        &mut self,
        jobs: Vec<JobDef>,
        config: Arc<Config>,
        reply: oneshot::Sender<()>,
    ) {
        let new: Vec<JobDef> = jobs
            .iter()
            .filter(|def| !self.state.knows(&def.key()))
            .cloned()
            .collect();
        let saved = self
            .writer
            .as_ref()
            .map(StateWriter::remembered)
            .unwrap_or_default();
        let new_monitors: Vec<Arc<crate::config::MonitorSpec>> = config
            .monitors
            .iter()
            .filter(|spec| !self.state.monitors.knows(&spec.id))
            .map(|spec| Arc::new(spec.clone()))
            .collect();
        let new_services: Vec<Arc<crate::config::ServiceSpec>> = config
            .services
            .iter()
            .filter(|spec| !self.state.services.knows(&spec.id))
            .map(|spec| Arc::new(spec.clone()))
            .collect();
        let layout = self.layout.clone();
        let now = self.clock.now();
        let back = self.internal_tx.clone();
        let cluster_mode = self.state.cluster_node.is_some();
        tokio::spawn(async move {
            let restored = tokio::task::spawn_blocking(move || {
                let jobs = new
                    .into_iter()
                    .filter_map(|def| {
                        let key = def.key();
                        restore_job(
                            &layout,
                            def,
                            &saved,
                            now,
                            cluster_mode,
                            Default::default(),
                            &mut Default::default(),
                        )
                            .inspect_err(
                                |err| tracing::error!(job = %key, %err, "cannot add job on reload"),
                            )
                            .ok()
                    })
                    .collect();
                let monitors = new_monitors
                    .into_iter()
                    .filter_map(|spec| {
                        let id = spec.id.clone();
                        restore_monitor(&layout, spec, now)
                            .inspect_err(|err| {
                                tracing::error!(monitor = %id, %err, "cannot add monitor on reload");
                            })
                            .ok()
                    })
                    .collect();
                let services = new_services
                    .into_iter()
                    .filter_map(|spec| {
                        let id = spec.id.clone();
                        restore_service(&layout, spec, now)
                            .inspect_err(|err| {
                                tracing::error!(service = %id, %err, "cannot add service on reload");
                            })
                            .ok()
                    })
                    .collect();
                (jobs, monitors, services)
            })
            .await
            .unwrap_or_default();
            let (restored, monitors, services) = restored;
            let _ = back.send(Internal::Restored {
                jobs,
                restored,
                monitors,
                services,
                max_job_running: config.max_job_running,
                config,
                reply,
            });
        });
    }

    fn decide(&mut self, event: Event, reply: Reply) {
        let now = self.clock.now();
        let effects = decide::decide(&mut self.state, event, now);
        self.perform(effects, reply);
    }

    /// Hands a cluster job's due slot or run end to the cluster agent.
    fn tell_cluster(&self, notice: ClusterNotice) {
        let sent = self
            .cluster
            .as_ref()
            .is_some_and(|agent| agent.send(notice).is_ok());
        if !sent {
            tracing::error!("a cluster job's slot or run end with no cluster agent to take it");
        }
    }

    fn perform(&mut self, effects: Vec<Effect>, mut reply: Reply) {
        // What must be on disk before the rest of this event's effects are seen: a
        // durable save (a pause, a monitor's transition) and a ping's log.
        let mut barriers: Vec<oneshot::Receiver<()>> = Vec::new();
        let mut deferred: Vec<Deferred> = Vec::new();
        for effect in effects {
            match effect {
                Effect::OpenLog {
                    key,
                    counter,
                    log_dir,
                    prune,
                } => {
                    let (kind, id, clock) = (key.kind, key.id.clone(), self.clock.clone());
                    // The trigger is answered once the run's log exists: a 200 that a
                    // kill -9 follows still leaves the run on record.
                    let (created, exists) = oneshot::channel();
                    let opening = tokio::task::spawn_blocking(move || {
                        if let Err(err) = run_log::delete_logs(&prune) {
                            tracing::warn!(%err, "cannot delete old run logs");
                        }
                        let writer = RunLogWriter::create(&log_dir, kind, &id, counter, clock);
                        let _ = created.send(());
                        writer
                    });
                    self.opening.insert((key, counter), opening);
                    barriers.push(exists);
                }
                Effect::SpawnRun(order) => self.spawn_run(order),
                Effect::CancelRun { key, counter } => {
                    if let Some(cancel) = self.cancels.get(&(key, counter)) {
                        cancel.cancel();
                    }
                }
                Effect::CountRun { key, status, took } => {
                    self.metrics.run_finished(&key, status, took);
                }
                Effect::Notify(notice) => self.notify(notice),
                Effect::SaveState { durable: false } => self.save = true,
                Effect::SaveState { durable: true } => {
                    // The writer writes what the snapshot says: publish it first.
                    self.publish_now();
                    self.save = false;
                    if let Some(writer) = &self.writer {
                        barriers.push(writer.now());
                    }
                }
                Effect::MonitorLog(write) => {
                    if let Some(logs) = &self.monitor_logs {
                        let (ack, done) = oneshot::channel();
                        let _ = logs.send((MonitorLogJob::Write(write), ack));
                        barriers.push(done);
                    }
                }
                Effect::SaveMonitor { id, state, durable } => {
                    if let Some(done) = self
                        .writer
                        .as_ref()
                        .and_then(|w| w.monitor(id, state, durable))
                    {
                        barriers.push(done);
                    }
                }
                Effect::RecordEvent(event) => {
                    if let Some(events) = &self.events
                        && let Err(err) = events.record(event)
                    {
                        tracing::warn!(%err, "cannot record an event");
                    }
                }
                Effect::NotifyMonitor(alert) => deferred.push(Deferred::Notify(alert)),
                Effect::SavePulses(pulses) => {
                    if let Some(done) = self.writer.as_ref().map(|w| w.pulses(pulses)) {
                        barriers.push(done);
                    }
                }
                Effect::ForgetMonitor { id, log_dir } => {
                    if let Some(done) = self.writer.as_ref().map(|w| w.forget(id.clone())) {
                        barriers.push(done);
                    }
                    if let Some(logs) = &self.monitor_logs {
                        let (ack, done) = oneshot::channel();
                        let _ = logs.send((MonitorLogJob::Remove { id, log_dir }, ack));
                        barriers.push(done);
                    }
                }
                Effect::SaveService { id, saved, durable } => {
                    if let Some(done) = self
                        .writer
                        .as_ref()
                        .and_then(|w| w.service(id, saved, durable))
                    {
                        barriers.push(done);
                    }
                }
                Effect::SpawnInstance(order) => self.spawn_instance(order),
                Effect::AdoptInstance { order, record } => self.adopt_instance(order, &record),
                Effect::SignalService { id, signal, orphan } => match orphan {
                    Some(record) => {
                        crate::exec::service::signal_recorded(
                            record.pid,
                            record.pgid,
                            record.starttime,
                            &record.boot_id,
                            signal,
                        );
                    }
                    None => {
                        if let Some((_, handle, _)) = self.instances.get(&id) {
                            handle.send(crate::exec::service::InstanceControl::Signal(signal));
                        }
                    }
                },
                Effect::InstanceControl { id, control } => {
                    let closing =
                        matches!(control, crate::exec::service::InstanceControl::Close(_));
                    if let Some((_, handle, _)) = self.instances.get(&id) {
                        handle.send(control);
                    }
                    if closing && let Some((_, _, Some(listener))) = self.instances.remove(&id) {
                        listener.abort();
                    }
                }
                Effect::CloseLeftover {
                    id,
                    log_dir,
                    counter,
                    status,
                    line,
                } => {
                    let now = self.clock.now();
                    self.notices.spawn(async move {
                        let closed = tokio::task::spawn_blocking(move || {
                            run_log::close_leftover(
                                &log_dir,
                                crate::job::JobKind::Service,
                                &id,
                                counter,
                                status,
                                &line,
                                now,
                            )
                        })
                        .await;
                        if let Ok(Err(err)) = closed {
                            tracing::warn!(%err, "cannot close a leftover instance log");
                        }
                    });
                }
                Effect::ServiceHistory { id, entry, keep } => {
                    self.metrics
                        .service_ended(id.as_str(), entry.reason.as_str());
                    let path = self.layout.service_history_file(&id);
                    self.notices.spawn(async move {
                        let written = tokio::task::spawn_blocking(move || {
                            path.parent()
                                .map_or(Ok(()), crate::store::create_private_dir)
                                .and_then(|()| {
                                    crate::store::json_file::append_line(&path, &entry, keep)
                                })
                        })
                        .await;
                        if let Ok(Err(err)) = written {
                            tracing::error!(service = %id, %err, "cannot append to the instance history");
                        }
                    });
                }
                Effect::NotifyService(alert) => {
                    let notifier = self.notifier.clone();
                    self.notices.spawn(notify_service(notifier, alert));
                }
                Effect::WatchOrphan { id, record } => self.watch_orphan(id, record),
                Effect::DeleteLogs(paths) => {
                    if !paths.is_empty() {
                        tokio::task::spawn_blocking(move || {
                            if let Err(err) = run_log::delete_logs(&paths) {
                                tracing::warn!(%err, "cannot delete old logs");
                            }
                        });
                    }
                }
                Effect::CountTransition { id, to } => {
                    self.metrics.monitor_transition(id.as_str(), to);
                }
                Effect::Publish => self.publish = true,
                Effect::PruneLogs(prune) => {
                    tokio::task::spawn_blocking(move || {
                        if let Err(err) = run_log::delete_logs(&prune) {
                            tracing::warn!(%err, "cannot delete old run logs");
                        }
                    });
                }
                Effect::ClusterSlot { key, at } => {
                    self.tell_cluster(ClusterNotice::Slot { key, at });
                }
                Effect::ClusterEnded {
                    key,
                    counter,
                    status,
                    at,
                } => self.tell_cluster(ClusterNotice::Ended {
                    key,
                    counter,
                    status,
                    at,
                }),
                Effect::Answer(answer) => {
                    let send = self.answer(answer, std::mem::replace(&mut reply, Reply::None));
                    deferred.push(Deferred::Answer(send));
                }
                Effect::Stopped => {
                    self.stopped = true;
                    self.final_save = barriers.pop();
                }
            }
        }
        if deferred.is_empty() {
            return;
        }
        let notifier = self.notifier.clone();
        if barriers.is_empty() && !deferred.iter().any(|d| matches!(d, Deferred::Notify(_))) {
            for later in deferred {
                if let Deferred::Answer(send) = later {
                    send();
                }
            }
            return;
        }
        self.notices.spawn(async move {
            for barrier in barriers {
                let _ = barrier.await;
            }
            for later in deferred {
                match later {
                    Deferred::Answer(send) => send(),
                    Deferred::Notify(alert) => notify_monitor(notifier.as_ref(), alert).await,
                }
            }
        });
    }

    fn spawn_run(&mut self, order: RunOrder) {
        let RunOrder {
            def,
            counter,
            request,
            cluster_run,
        } = order;
        let key = def.key();
        let cancel = CancellationToken::new();
        self.cancels.insert((key.clone(), counter), cancel.clone());
        let Some(opening) = self.opening.remove(&(key.clone(), counter)) else {
            tracing::error!(job = %key, counter, "run spawned without its log; not started");
            return;
        };
        let plan = RunPlan {
            ctx: RunContext {
                job_id: key.id.clone(),
                counter,
                trigger: request.trigger,
                request: request.request,
                origin: request.origin,
                env: request.env,
                node: self
                    .state
                    .cluster_node
                    .as_ref()
                    .map(|n| n.as_str().to_string()),
                run_id: cluster_run,
            },
            work_dir: self.layout.work_dir(key.kind, &key.id),
            request_file: self.layout.request_body_file(&key.id, counter),
            group_dir: self.layout.group_dir(),
            def,
            cancel,
            clock: self.clock.clone(),
            executed: {
                let (back, key) = (self.internal_tx.clone(), key.clone());
                Box::new(move || {
                    let _ = back.send(Internal::Executed(key, counter));
                })
            },
        };
        let back = self.internal_tx.clone();
        let clock = self.clock.clone();
        tokio::spawn(async move {
            let writer = opening
                .await
                .unwrap_or_else(|join| Err(io::Error::other(join.to_string())));
            let done = match writer {
                Ok(writer) => run::execute(plan, writer).await,
                Err(err) => {
                    tracing::error!(job = %key, counter, %err, "cannot create the run log; run skipped");
                    Finished {
                        key,
                        counter,
                        status: crate::job::RunStatus::Failed,
                        at: clock.now(),
                        exit_code: None,
                        log: None,
                    }
                }
            };
            let _ = back.send(Internal::Finished(done));
        });
    }

    /// Spawns a service instance with a new id and token; its reports come back as
    /// [`Internal::Instance`].
    fn spawn_instance(&mut self, order: InstanceOrder) {
        let InstanceOrder {
            spec,
            generation,
            counter,
            log_dir,
        } = order;
        let id = spec.id.clone();
        let instance = crate::store::event_log::new_uuid_v7(self.clock.now());
        let token = random_token();
        let work_dir = service_work_dir(&self.layout, &spec);
        let mut env = service_env(&spec, &instance, &token, counter, &self.service_url);
        if let Some(file) = &spec.pid_file {
            let path = work_dir.join(file).to_string_lossy().into_owned();
            env.push(("KARAJO_SERVICE_PID_FILE".to_string(), path));
        }
        let notify = if spec.wants_notify_socket() {
            let path = self.layout.service_notify_socket(&id);
            match crate::exec::notify_socket::NotifySocket::bind(&path, &id) {
                Ok(socket) => {
                    env.push(("NOTIFY_SOCKET".to_string(), socket.address.clone()));
                    if let Some(timeout) = spec.policy.ping_timeout {
                        env.push(("WATCHDOG_USEC".to_string(), timeout.as_micros().to_string()));
                    }
                    Some(socket)
                }
                Err(err) => {
                    tracing::error!(service = %id, %err, "cannot open the notify socket");
                    None
                }
            }
        } else {
            None
        };
        let group = notify.as_ref().map(|socket| socket.pgid.clone());
        let listener = notify.map(|socket| {
            let back = self.internal_tx.clone();
            let id = id.clone();
            tokio::spawn(socket.listen(move |message| {
                let _ = back.send(Internal::Instance {
                    id: id.clone(),
                    generation,
                    event: InstanceEvent::Notify(message),
                });
            }))
            .abort_handle()
        });
        let plan = crate::exec::service::InstancePlan {
            id: id.clone(),
            instance: instance.clone(),
            command: spec.command.clone(),
            pre_start: spec.pre_start.clone(),
            work_dir: work_dir.clone(),
            env,
            user: spec.user.clone(),
            log_dir,
            counter,
            log_max_size: spec.log_max_size,
            pid_file: spec
                .pid_file
                .as_ref()
                .map(|file| (work_dir.join(file), spec.check_interval)),
            group_record: None,
            clock: self.clock.clone(),
        };
        let back = self.internal_tx.clone();
        let boot_id = crate::exec::service::boot_id();
        let keyvalue_clear = spec.keyvalue_clear;
        let pid_file_mode = spec.pid_file.is_some();
        let reporter_id = id.clone();
        let metrics = self.metrics.clone();
        let handle = crate::exec::service::spawn_instance(plan, move |report| {
            if let crate::exec::service::InstanceReport::Dropped(bytes) = report {
                metrics.service_log_dropped(reporter_id.as_str(), bytes);
                return;
            }
            let event = match report {
                crate::exec::service::InstanceReport::Spawned { pid, starttime } => {
                    if let Some(group) = &group {
                        group.store(pid, std::sync::atomic::Ordering::Relaxed);
                    }
                    let pid = u32::try_from(pid).unwrap_or(0);
                    InstanceEvent::Spawned(crate::service::SpawnedInstance {
                        instance: instance.clone(),
                        token: crate::service::InstanceToken::new(token.clone()),
                        pid,
                        pgid: pid,
                        starttime,
                        boot_id: boot_id.clone(),
                        counter,
                        watch: if pid_file_mode {
                            crate::service::Watch::PidFile
                        } else {
                            crate::service::Watch::Child
                        },
                        keyvalue_clear,
                    })
                }
                other => InstanceEvent::Report(other),
            };
            let _ = back.send(Internal::Instance {
                id: reporter_id.clone(),
                generation,
                event,
            });
        });
        if let Some((_, _, Some(old))) = self.instances.insert(id, (generation, handle, listener)) {
            old.abort();
        }
    }

    /// Takes over a pid-file daemon a previous karajo left running; its reports come
    /// back as [`Internal::Instance`].
    fn adopt_instance(&mut self, order: InstanceOrder, record: &crate::service::InstanceRecord) {
        let InstanceOrder {
            spec,
            generation,
            counter,
            log_dir,
        } = order;
        let id = spec.id.clone();
        let plan = crate::exec::service::InstancePlan {
            id: id.clone(),
            instance: record.instance.clone(),
            command: spec.command.clone(),
            pre_start: Vec::new(),
            work_dir: service_work_dir(&self.layout, &spec),
            env: Vec::new(),
            user: String::new(),
            log_dir,
            counter,
            log_max_size: spec.log_max_size,
            pid_file: None,
            group_record: None,
            clock: self.clock.clone(),
        };
        let back = self.internal_tx.clone();
        let reporter = id.clone();
        let handle = crate::exec::service::adopt_instance(
            plan,
            record.pid,
            record.starttime,
            spec.check_interval,
            move |report| {
                let _ = back.send(Internal::Instance {
                    id: reporter.clone(),
                    generation,
                    event: InstanceEvent::Report(report),
                });
            },
        );
        if let Some((_, _, Some(old))) = self.instances.insert(id, (generation, handle, None)) {
            old.abort();
        }
    }

    /// Watches an instance a previous karajo left running until it is gone.
    fn watch_orphan(&mut self, id: crate::job::JobId, record: crate::service::InstanceRecord) {
        let back = self.internal_tx.clone();
        tokio::spawn(async move {
            while crate::exec::service::recorded_alive(
                record.pid,
                record.starttime,
                &record.boot_id,
            ) {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            let _ = back.send(Internal::Instance {
                id,
                generation: 0,
                event: InstanceEvent::OrphanGone,
            });
        });
    }

    fn notify(&mut self, notice: Notice) {
        let Some(notifier) = self.notifier.clone() else {
            return;
        };
        self.notices.spawn(async move {
            let def = &notice.def;
            let record = RunRecord {
                kind: def.kind(),
                id: def.id().clone(),
                name: def.name().to_string(),
                counter: notice.counter,
                status: notice.status,
                trigger: notice.trigger,
                started: notice.started,
                ended: notice.ended,
                log_path: notice.log,
                previous: notice.previous,
            };
            let [success, failed, recover] = def.common.notif_lists();
            // A failed attempt that another follows goes to `notif_on_retry` only.
            let failed = if notice.retrying {
                &def.common.policies.notif_on_retry[..]
            } else {
                failed
            };
            let on = NotifyOn {
                success,
                failed,
                recover,
            };
            notifier.submit(record, on).await;
        });
    }

    /// What answers the caller: the job or monitor as it is now.
    fn answer(&mut self, answer: Answer, reply: Reply) -> Box<dyn FnOnce() + Send> {
        let view = match &answer {
            Answer::Job(key) => self.state.view(key),
            _ => None,
        };
        let monitor = match &answer {
            Answer::Monitor(id) => self.state.monitors.view(id),
            _ => None,
        };
        let service = match &answer {
            Answer::Service { id, .. } => self.state.services.view(id),
            _ => None,
        };
        Box::new(move || match reply {
            Reply::None => {}
            Reply::Trigger(tx) => {
                let result = match answer {
                    Answer::Refused(err) => Err(err),
                    _ => view.ok_or_else(|| TriggerError::NotFound(String::new())),
                };
                let _ = tx.send(result);
            }
            Reply::Job(tx) => {
                let _ = tx.send(view);
            }
            Reply::Done(tx) => {
                let _ = tx.send(());
            }
            Reply::Ping(tx) => {
                let _ = tx.send(match answer {
                    Answer::Ping(ping) => Some(ping),
                    _ => None,
                });
            }
            Reply::Monitor(tx) => {
                let _ = tx.send(monitor);
            }
            Reply::Service(tx) => {
                use super::ServiceAnswer;
                use crate::service::Reply as R;
                let answer = match (answer, service) {
                    (Answer::Service { reply, .. }, Some(view)) => Some(match reply {
                        None | Some(R::Done { .. }) | Some(R::Stale { .. }) => {
                            ServiceAnswer::Done(view)
                        }
                        Some(R::CasMismatch { .. }) => ServiceAnswer::CasMismatch(view),
                        Some(R::NotRunning) => ServiceAnswer::NotRunning(view),
                        Some(R::BadRequest(why)) => ServiceAnswer::BadRequest(why),
                    }),
                    _ => None,
                };
                let _ = tx.send(answer);
            }
            Reply::ServicePing(tx) => {
                let _ = tx.send(match answer {
                    Answer::ServicePing(ping) => Some(ping),
                    _ => None,
                });
            }
            Reply::Pulse(tx) => {
                let _ = tx.send(match answer {
                    Answer::PulseRefused(err) => Err(err),
                    Answer::Removed(_) => Ok(None),
                    Answer::Monitor(id) => monitor
                        .map(Some)
                        .ok_or_else(|| PulseError::NotFound(id.to_string())),
                    _ => Err(PulseError::NotFound(String::new())),
                });
            }
        })
    }

    fn publish_now(&mut self) {
        self.publish = false;
        self.snapshot_tx
            .send_replace(Arc::new(self.state.snapshot()));
    }

    /// Publishes and asks for a save once for the whole batch.
    fn flush(&mut self) {
        if self.publish {
            self.publish_now();
        }
        if std::mem::take(&mut self.save)
            && let Some(writer) = &self.writer
        {
            writer.soon();
        }
    }

    /// After [`Effect::Stopped`]: the final state is written (the durable save that
    /// came with it), notifications are queued, and the waiters are told.
    async fn finish(&mut self) {
        self.flush();
        let saved = match (self.final_save.take(), &self.writer) {
            (Some(saved), _) => Some(saved),
            (None, Some(writer)) => Some(writer.now()),
            (None, None) => None,
        };
        if let Some(saved) = saved {
            let _ = saved.await;
        }
        while self.notices.join_next().await.is_some() {}
        self.writer = None;
        self.monitor_logs = None;
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(());
        }
    }
}

/// Queues a service's notification. The log that goes with it is the segment the
/// notice names, read once its instance has closed it (the close runs on the
/// instance's task), or as it is after two seconds.
async fn notify_service(notifier: Option<Notifier>, alert: ServiceAlert) {
    let Some(notifier) = notifier else {
        return;
    };
    let notice = &alert.notice;
    let log = match notice.counter {
        Some(counter) => {
            closed_segment(alert.log_dir.clone(), alert.spec.id.clone(), counter).await
        }
        None => None,
    };
    let record = crate::notify::ServiceRecord {
        id: alert.spec.id.clone(),
        name: alert.spec.name.clone(),
        event: notice.event.as_str().to_string(),
        previous_status: notice.previous_status.as_str().to_string(),
        reason: notice.reason.map(|r| r.as_str().to_string()),
        summary: notice.summary.clone(),
        notifs: notice.notifs.clone(),
        at: alert.at,
        log,
    };
    notifier.submit_service(record).await;
}

/// Segment `counter` of a service's logs once it is closed (or as it is after two
/// seconds).
async fn closed_segment(
    dir: std::path::PathBuf,
    id: crate::job::JobId,
    counter: u64,
) -> Option<crate::notify::MonitorLog> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let (dir2, id2) = (dir.clone(), id.clone());
        let found = tokio::task::spawn_blocking(move || run_log::find(&dir2, &id2, counter))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        match found {
            Some(entry) if entry.status != crate::job::RunStatus::Running => {
                return Some(crate::notify::MonitorLog {
                    counter,
                    path: entry.path,
                });
            }
            found if tokio::time::Instant::now() >= deadline => {
                return found.map(|entry| crate::notify::MonitorLog {
                    counter,
                    path: entry.path,
                });
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

/// A random 32-character token (letters and digits).
fn random_token() -> String {
    use rand::Rng as _;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// A service's working directory: `working_dir` (absolute, or relative to the
/// default), or `var/lib/karajo/service/<id>`.
fn service_work_dir(layout: &Layout, spec: &crate::config::ServiceSpec) -> std::path::PathBuf {
    let default = layout.work_dir(crate::job::JobKind::Service, &spec.id);
    match &spec.working_dir {
        Some(dir) if dir.is_absolute() => dir.clone(),
        Some(dir) => default.join(dir),
        None => default,
    }
}

/// An instance's environment (monitors spec B.3): the job `PATH` (or karajo's own
/// environment with `env_inherit`), the `KARAJO_SERVICE_*` variables, then `env`.
fn service_env(
    spec: &crate::config::ServiceSpec,
    instance: &str,
    token: &str,
    counter: u64,
    service_url: &str,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = if spec.env_inherit {
        std::env::vars().collect()
    } else {
        vec![("PATH".to_string(), super::run::COMMAND_PATH.to_string())]
    };
    let ping_url = format!(
        "{service_url}/karajo/api/service/ping/{}?token={token}",
        spec.id
    );
    env.extend([
        ("KARAJO_SERVICE_ID".to_string(), spec.id.to_string()),
        ("KARAJO_SERVICE_INSTANCE".to_string(), instance.to_string()),
        ("KARAJO_SERVICE_COUNTER".to_string(), counter.to_string()),
        ("KARAJO_SERVICE_TOKEN".to_string(), token.to_string()),
        ("KARAJO_SERVICE_PING_URL".to_string(), ping_url),
    ]);
    for (key, value) in &spec.env {
        env.retain(|(k, _)| k != key);
        env.push((key.clone(), value.clone()));
    }
    env
}

/// Queues a monitor's notification (spooled before this returns).
async fn notify_monitor(notifier: Option<&Notifier>, alert: MonitorAlert) {
    let Some(notifier) = notifier else {
        return;
    };
    let log = alert
        .log
        .map(|(counter, path)| crate::notify::MonitorLog { counter, path });
    let record = crate::notify::MonitorRecord {
        id: alert.spec.id.clone(),
        name: alert.spec.name.clone(),
        notice: alert.notice,
        at: alert.at,
        log,
        target: alert.spec.notif_target().map(str::to_string),
    };
    notifier.submit_monitor(record).await;
}

/// What the monitor log writer does, in the order given.
enum MonitorLogJob {
    /// Write a check-in log.
    Write(MonitorLogWrite),
    /// Delete a removed monitor's logs.
    Remove {
        id: crate::job::JobId,
        log_dir: std::path::PathBuf,
    },
}

/// Starts the writer of monitors' check-in logs: one task, so the writes of one log
/// happen in the order they were decided. Each write is acknowledged once done (or
/// failed, which is logged).
fn spawn_monitor_log_writer() -> (
    mpsc::UnboundedSender<(MonitorLogJob, oneshot::Sender<()>)>,
    JoinHandle<()>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(MonitorLogJob, oneshot::Sender<()>)>();
    let task = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while let Ok(next) = rx.try_recv() {
                batch.push(next);
                if batch.len() >= BATCH {
                    break;
                }
            }
            let acks = tokio::task::spawn_blocking(move || {
                batch
                    .into_iter()
                    .map(|(job, ack)| {
                        match job {
                            MonitorLogJob::Write(write) => write_monitor_log(&write),
                            MonitorLogJob::Remove { id, log_dir } => {
                                if let Err(err) =
                                    crate::store::monitor_files::remove_logs(&log_dir)
                                {
                                    tracing::error!(monitor = %id, %err, "cannot delete the check-in logs");
                                }
                            }
                        }
                        ack
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            for ack in acks {
                let _ = ack.send(());
            }
        }
    });
    (tx, task)
}

fn write_monitor_log(write: &MonitorLogWrite) {
    use crate::store::monitor_files as files;
    if let Err(err) = run_log::delete_logs(&write.prune) {
        tracing::warn!(monitor = %write.id, %err, "cannot delete old check-in logs");
    }
    let (dir, id, counter, block) = (&write.log_dir, &write.id, write.counter, &write.block);
    let written = match write.action {
        LogAction::Open => files::open_run(dir, id, counter, block).map(drop),
        LogAction::Append => files::append(dir, id, counter, block),
        LogAction::Close(status) => files::close_run(dir, id, counter, status, block).map(drop),
        LogAction::Lone(status) => files::write_lone(dir, id, counter, status, block).map(drop),
    };
    if let Err(err) = written {
        tracing::error!(monitor = %id, counter, %err, "cannot write the check-in log");
    }
}
