//! Supervised services inside the scheduler: each service's state and logs, its
//! deadline in the scheduler's timer set, the translation of the service machine's
//! [`ServiceEffect`]s into the scheduler's [`Effect`]s (save the state, spawn, signal
//! or close an instance, append to the history, record an event, notify, answer), and
//! the shutdown order by priority (monitors spec B.6). No IO here either:
//! [`super::decide`] calls these functions, the executor performs what they return.

use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;

use super::LogSummary;
use crate::config::ServiceSpec;
use crate::job::JobId;
use crate::service::ServiceState;
use crate::store::LogEntry;

/// A service as found on disk at start-up or when a reload adds it.
#[derive(Debug)]
pub struct RestoredService {
    /// Its configuration.
    pub spec: Arc<ServiceSpec>,
    /// Its state file, if it had one.
    pub saved: Option<crate::service::SavedService>,
    /// What became of the instance the state file records.
    pub found: crate::service::Leftover,
    /// Its log segments, oldest first.
    pub logs: Vec<LogEntry>,
    /// Where its logs are.
    pub log_dir: PathBuf,
}

/// A read-only picture of one service, published after every change.
#[derive(Debug, Clone)]
pub struct ServiceView {
    /// Its configuration.
    pub spec: Arc<ServiceSpec>,
    /// Its state.
    pub state: ServiceState,
    /// When time alone next changes it.
    pub deadline: Option<Timestamp>,
    /// Its log segments, oldest first.
    pub logs: Vec<LogSummary>,
}

impl ServiceView {
    /// The service's id.
    pub fn id(&self) -> &JobId {
        &self.spec.id
    }

    /// What to measure of its live instance at `now`, if it has one.
    pub fn usage_target(&self, now: Timestamp) -> Option<crate::exec::group_usage::Target<'_>> {
        let record = self
            .state
            .instance()
            .filter(|_| self.state.status.is_live())?;
        Some(crate::exec::group_usage::Target {
            service: self.id().as_str(),
            instance: &record.instance,
            pid: record.pid,
            pgid: record.pgid,
            up: std::time::Duration::try_from(now.duration_since(record.spawned))
                .unwrap_or_default(),
        })
    }
}

/// The answer to a service control.
#[derive(Debug, Clone)]
pub enum ServiceAnswer {
    /// Done (or started): the service after the action started.
    Done(Arc<ServiceView>),
    /// The request's `cas` was not the current one; nothing changed (409
    /// `ERR_SERVICE_CAS`, with the service).
    CasMismatch(Arc<ServiceView>),
    /// `signal` with no live instance (409 `ERR_SERVICE_NOT_RUNNING`).
    NotRunning(Arc<ServiceView>),
    /// Refused (400 `ERR_SERVICE_BAD_REQUEST`), with why.
    BadRequest(String),
}

/// The answer to a service ping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServicePingAnswer {
    /// Taken: the instance and the service's status.
    Taken {
        /// The current instance.
        instance: String,
        /// The service's status word.
        status: &'static str,
    },
    /// The token is no instance's (403 `ERR_SERVICE_FORBIDDEN`).
    Forbidden,
    /// The token is an earlier instance's (409 `ERR_SERVICE_STALE`).
    Stale(String),
    /// The update is too large (400 `ERR_SERVICE_BAD_REQUEST`), with why.
    BadRequest(String),
}

/// What the executor needs to spawn an instance.
#[derive(Debug)]
pub(crate) struct InstanceOrder {
    /// The service as it is now.
    pub(crate) spec: Arc<ServiceSpec>,
    /// The spawn's number, to tell its reports from an earlier instance's.
    pub(crate) generation: u64,
    /// The counter of its first log segment.
    pub(crate) counter: u64,
    /// Where its logs go.
    pub(crate) log_dir: PathBuf,
}

/// A service notification to queue.
#[derive(Debug)]
pub(crate) struct ServiceAlert {
    /// The service.
    pub(crate) spec: Arc<ServiceSpec>,
    /// What to tell.
    pub(crate) notice: crate::service::ServiceNotice,
    /// The service's log directory (the notice names its segment).
    pub(crate) log_dir: PathBuf,
    /// When.
    pub(crate) at: Timestamp,
}

/// What an instance's supervisor reported, as the scheduler hears it.
#[derive(Debug)]
pub(crate) enum InstanceEvent {
    /// Spawned, with the id and token the executor gave it.
    Spawned(crate::service::SpawnedInstance),
    /// Anything else it reports.
    Report(crate::exec::service::InstanceReport),
    /// The recorded instance of a previous karajo is gone.
    OrphanGone,
    /// The instance said something on its notify socket.
    Notify(crate::exec::notify_socket::NotifyMessage),
}

/// One service's runtime state.
#[derive(Debug)]
pub(crate) struct ServiceEntry {
    spec: Arc<ServiceSpec>,
    state: ServiceState,
    log_dir: PathBuf,
    logs: Vec<LogEntry>,
    /// The highest log counter used.
    counter: u64,
    deadline: Option<Timestamp>,
    /// The latest spawn's number.
    generation: u64,
    /// An instance a previous karajo left running, being stopped.
    orphan: Option<crate::service::InstanceRecord>,
    /// Left the configuration: dropped once no process is left.
    removed: bool,
    /// karajo is stopping and left this daemon running (`on_exit = leave`).
    left_running: bool,
    view: Arc<ServiceView>,
    stale: bool,
}

impl ServiceEntry {
    fn view(&mut self) -> Arc<ServiceView> {
        if std::mem::take(&mut self.stale) {
            self.view = Arc::new(ServiceView {
                spec: self.spec.clone(),
                state: self.state.clone(),
                deadline: self.deadline,
                logs: self.logs.iter().map(LogSummary::from).collect(),
            });
        }
        self.view.clone()
    }
}

/// The services part of [`SchedulerState`](super::decide::SchedulerState).
#[derive(Debug, Default)]
pub(crate) struct Services {
    entries: std::collections::BTreeMap<JobId, ServiceEntry>,
    timers: std::collections::BTreeSet<(Timestamp, JobId)>,
    /// karajo is stopping: services stop by descending priority once the jobs are done.
    stopping: bool,
}

impl Services {
    pub(crate) fn next_due(&self) -> Option<Timestamp> {
        self.timers.first().map(|(due, _)| *due)
    }

    pub(crate) fn knows(&self, id: &JobId) -> bool {
        self.entries.contains_key(id)
    }

    pub(crate) fn view(&mut self, id: &JobId) -> Option<Arc<ServiceView>> {
        self.entries.get_mut(id).map(ServiceEntry::view)
    }

    /// Every service's view, by id.
    pub(crate) fn views(&mut self) -> Vec<Arc<ServiceView>> {
        self.entries.values_mut().map(ServiceEntry::view).collect()
    }

    /// Whether a service still has a process (or a stop in progress).
    fn any_live(&self) -> bool {
        self.entries.values().any(is_live)
    }
}

fn is_live(entry: &ServiceEntry) -> bool {
    !entry.left_running && (entry.orphan.is_some() || entry.state.status.is_live())
}

use super::decide::{Answer, Effect, SchedulerState};
use crate::exec::service::{InstanceControl, InstanceReport};
use crate::job::RunStatus;
use crate::service::{
    Control, Input, Leftover, PingUpdate, SegmentStatus, ServiceEffect, Status, step,
};
use crate::store::event_log::Source;
use crate::store::{NewEvent, RunFacts, run_log};

/// Adds a service found on disk: at start-up it boots (an enabled one starts, an
/// orphan is stopped first); on a reload a new one starts if enabled.
pub(crate) fn insert(
    state: &mut SchedulerState,
    found: RestoredService,
    now: Timestamp,
    out: &mut Vec<Effect>,
) {
    let id = found.spec.id.clone();
    let service_state = ServiceState::restored(found.saved, !found.spec.disabled);
    let counter = found.logs.iter().map(|l| l.counter).max().unwrap_or(0);
    let orphan = match found.found {
        Leftover::Orphan => service_state.instance().cloned(),
        _ => None,
    };
    let adopted = match found.found {
        Leftover::Adopted { segment } => service_state.instance().cloned().map(|r| (segment, r)),
        _ => None,
    };
    let entry = ServiceEntry {
        view: Arc::new(ServiceView {
            spec: found.spec.clone(),
            state: service_state.clone(),
            deadline: None,
            logs: Vec::new(),
        }),
        spec: found.spec,
        state: service_state,
        log_dir: found.log_dir,
        logs: found.logs,
        counter,
        deadline: None,
        generation: 0,
        orphan: orphan.clone(),
        removed: false,
        left_running: false,
        stale: true,
    };
    state.services.entries.insert(id.clone(), entry);
    if let Some((segment, record)) = adopted
        && let Some(entry) = state.services.entries.get_mut(&id)
    {
        entry.generation += 1;
        entry.counter = entry.counter.max(segment);
        let prune = open_log(entry, segment, now);
        if !prune.is_empty() {
            out.push(Effect::DeleteLogs(prune));
        }
        out.push(Effect::AdoptInstance {
            order: InstanceOrder {
                spec: entry.spec.clone(),
                generation: entry.generation,
                counter: segment,
                log_dir: entry.log_dir.clone(),
            },
            record,
        });
    }
    if let Some(record) = orphan {
        out.push(Effect::WatchOrphan {
            id: id.clone(),
            record,
        });
    }
    let input = Input::Boot { found: found.found };
    let _ = apply(state, &id, input, now, out);
}

/// A control request; `None` for an unknown service.
pub(crate) fn control(
    state: &mut SchedulerState,
    id: &JobId,
    control: Control,
    cas: Option<u64>,
    by: String,
    now: Timestamp,
    out: &mut Vec<Effect>,
) -> Answer {
    if state.services.entries.get(id).is_none_or(|e| e.removed) {
        return Answer::Unknown;
    }
    if state.stopping {
        return Answer::Service {
            id: id.clone(),
            reply: Some(crate::service::Reply::BadRequest(
                "karajo is shutting down".to_string(),
            )),
        };
    }
    let input = Input::Control { control, cas, by };
    let reply = apply(state, id, input, now, out);
    Answer::Service {
        id: id.clone(),
        reply,
    }
}

/// A ping with an instance token.
pub(crate) fn ping(
    state: &mut SchedulerState,
    id: &JobId,
    token: &str,
    update: PingUpdate,
    now: Timestamp,
    out: &mut Vec<Effect>,
) -> Answer {
    let Some(entry) = state.services.entries.get(id) else {
        return Answer::Unknown;
    };
    let Some(instance) = entry.state.token_owner(token).map(str::to_string) else {
        return Answer::ServicePing(ServicePingAnswer::Forbidden);
    };
    let reply = apply(state, id, Input::Ping { instance, update }, now, out);
    let answer = match reply {
        Some(crate::service::Reply::Stale { instance }) => ServicePingAnswer::Stale(instance),
        Some(crate::service::Reply::BadRequest(why)) => ServicePingAnswer::BadRequest(why),
        _ => {
            let entry = state.services.entries.get(id);
            ServicePingAnswer::Taken {
                instance: entry
                    .and_then(|e| e.state.instance())
                    .map(|r| r.instance.clone())
                    .unwrap_or_default(),
                status: entry.map_or("stopped", |e| e.state.status.as_str()),
            }
        }
    };
    Answer::ServicePing(answer)
}

/// What an instance's supervisor (or the orphan watch) reported.
pub(crate) fn instance_event(
    state: &mut SchedulerState,
    id: &JobId,
    generation: u64,
    event: InstanceEvent,
    now: Timestamp,
    out: &mut Vec<Effect>,
) {
    let Some(entry) = state.services.entries.get_mut(id) else {
        return;
    };
    let current = generation == entry.generation;
    let input = match event {
        InstanceEvent::OrphanGone => {
            entry.orphan = None;
            entry.stale = true;
            Some(Input::Exited {
                exit_code: None,
                signal: None,
                core_dumped: false,
            })
        }
        InstanceEvent::Spawned(spawned) if current => {
            entry.counter = entry.counter.max(spawned.counter);
            Some(Input::Spawned(spawned))
        }
        InstanceEvent::Spawned(_) => None,
        InstanceEvent::Notify(_) if !current => None,
        InstanceEvent::Notify(message) => {
            use crate::exec::notify_socket::NotifyMessage;
            match message {
                NotifyMessage::Ready => Some(Input::ReadyNotify),
                NotifyMessage::Watchdog => entry.state.instance().map(|r| Input::Ping {
                    instance: r.instance.clone(),
                    update: PingUpdate::default(),
                }),
                NotifyMessage::Status(text) => Some(Input::StatusText(text)),
                NotifyMessage::Stopping => {
                    out.push(Effect::InstanceControl {
                        id: id.clone(),
                        control: InstanceControl::Line("=== STOPPING (notify)".to_string()),
                    });
                    None
                }
            }
        }
        InstanceEvent::Report(report) => match report {
            InstanceReport::Spawned { .. } | InstanceReport::Dropped(_) => None,
            InstanceReport::Tracked {
                pid,
                pgid,
                starttime,
            } if current => Some(Input::Tracked {
                pid: u32::try_from(pid).unwrap_or(0),
                pgid: u32::try_from(pgid).unwrap_or(0),
                starttime,
            }),
            InstanceReport::Tracked { .. } => None,
            InstanceReport::NotStarted { why } if current => Some(Input::SpawnFailed { why }),
            InstanceReport::NotStarted { .. } => None,
            InstanceReport::Rotated { closed, next } => {
                let prune = rotated(entry, closed, next, now);
                if !prune.is_empty() {
                    out.push(Effect::DeleteLogs(prune));
                }
                current.then_some(Input::LogRotated { segment: next })
            }
            InstanceReport::Exited(info) if current => Some(Input::Exited {
                exit_code: info.code,
                signal: info.signal.map(crate::exec::service::signal_name),
                core_dumped: info.core_dumped,
            }),
            InstanceReport::Exited(_) => None,
            InstanceReport::Closed { counter, path } => {
                closed(entry, counter, path, now);
                state.mark_changed();
                None
            }
        },
    };
    if let Some(input) = input {
        let _ = apply(state, id, input, now, out);
    }
    drop_if_gone(state, id);
}

/// Fires every service deadline that has come.
pub(crate) fn fire_due(state: &mut SchedulerState, now: Timestamp, out: &mut Vec<Effect>) {
    while let Some((due, id)) = state.services.timers.first().cloned() {
        if due > now {
            break;
        }
        state.services.timers.pop_first();
        if let Some(entry) = state.services.entries.get_mut(&id) {
            entry.deadline = None;
        }
        let _ = apply(state, &id, Input::Tick, now, out);
    }
}

/// A reload: new services start (if enabled), removed ones are stopped and dropped
/// once down, kept ones take their new configuration (a changed process-defining key
/// restarts the instance).
pub(crate) fn reload(
    state: &mut SchedulerState,
    specs: Vec<Arc<ServiceSpec>>,
    restored: Vec<RestoredService>,
    now: Timestamp,
    out: &mut Vec<Effect>,
) {
    let keep: std::collections::BTreeSet<JobId> = specs.iter().map(|s| s.id.clone()).collect();
    let gone: Vec<JobId> = state
        .services
        .entries
        .keys()
        .filter(|id| !keep.contains(*id))
        .cloned()
        .collect();
    for id in gone {
        if let Some(entry) = state.services.entries.get_mut(&id) {
            entry.removed = true;
        }
        tracing::info!(service = %id, "service removed by reload");
        let _ = apply(
            state,
            &id,
            Input::Shutdown {
                leave_running: false,
            },
            now,
            out,
        );
        drop_if_gone(state, &id);
    }
    let mut restored: std::collections::BTreeMap<JobId, RestoredService> = restored
        .into_iter()
        .map(|r| (r.spec.id.clone(), r))
        .collect();
    for spec in specs {
        let id = spec.id.clone();
        match state.services.entries.get_mut(&id) {
            Some(entry) => {
                let respawn = spec.respawn_needed(&entry.spec);
                let enabled = (spec.disabled != entry.spec.disabled).then_some(!spec.disabled);
                entry.removed = false;
                entry.spec = spec;
                entry.stale = true;
                let _ = apply(
                    state,
                    &id,
                    Input::Reconfigure { respawn, enabled },
                    now,
                    out,
                );
            }
            None => match restored.remove(&id) {
                Some(mut found) => {
                    found.spec = spec;
                    tracing::info!(service = %id, "service added by reload");
                    insert(state, found, now, out);
                }
                None => {
                    tracing::error!(service = %id, "service added by reload could not be restored")
                }
            },
        }
    }
}

/// karajo is stopping and its jobs are done: stops the services of the highest
/// priority that still have a process, in parallel; the next group waits for them.
/// Returns whether every service is down.
pub(crate) fn shutdown_step(
    state: &mut SchedulerState,
    now: Timestamp,
    out: &mut Vec<Effect>,
) -> bool {
    if !state.services.stopping {
        state.services.stopping = true;
        // Nothing starts any more: back-offs and pending starts end here.
        let idle: Vec<JobId> = state
            .services
            .entries
            .iter()
            .filter(|(_, e)| !is_live(e))
            .map(|(id, _)| id.clone())
            .collect();
        for id in idle {
            let _ = apply(
                state,
                &id,
                Input::Shutdown {
                    leave_running: false,
                },
                now,
                out,
            );
        }
    }
    let live: Vec<(i64, JobId, bool)> = state
        .services
        .entries
        .iter()
        .filter(|(_, e)| is_live(e))
        .map(|(id, e)| {
            let stopping = matches!(e.state.status, Status::Stopping(_));
            (e.spec.priority, id.clone(), stopping)
        })
        .collect();
    let Some(top) = live.iter().map(|(p, _, _)| *p).max() else {
        return true;
    };
    for (priority, id, stopping) in live {
        if priority == top && !stopping {
            let leave = state.services.entries.get(&id).is_some_and(|e| {
                e.spec.on_exit == crate::config::OnExit::Leave
                    && e.spec.pid_file.is_some()
                    && e.state.instance().is_some()
                    && matches!(e.state.status, Status::Starting | Status::Running)
            });
            let input = Input::Shutdown {
                leave_running: leave,
            };
            let _ = apply(state, &id, input, now, out);
            if leave && let Some(entry) = state.services.entries.get_mut(&id) {
                entry.left_running = true;
            }
        }
    }
    !state.services.any_live()
}

fn drop_if_gone(state: &mut SchedulerState, id: &JobId) {
    let gone = state
        .services
        .entries
        .get(id)
        .is_some_and(|e| e.removed && !is_live(e));
    if gone {
        disarm(state, id);
        state.services.entries.remove(id);
        state.mark_changed();
    }
}

fn disarm(state: &mut SchedulerState, id: &JobId) {
    if let Some(entry) = state.services.entries.get_mut(id)
        && let Some(due) = entry.deadline.take()
    {
        state.services.timers.remove(&(due, id.clone()));
    }
}

/// Runs the machine on `input` and turns its effects into the scheduler's; re-arms
/// the deadline. Returns the machine's reply, if any.
fn apply(
    state: &mut SchedulerState,
    id: &JobId,
    input: Input,
    now: Timestamp,
    out: &mut Vec<Effect>,
) -> Option<crate::service::Reply> {
    let entry = state.services.entries.get_mut(id)?;
    let effects = step(&mut entry.state, &entry.spec.policy, input, now);
    let mut reply = None;
    for effect in effects {
        match effect {
            ServiceEffect::SaveState { durable } => out.push(Effect::SaveService {
                id: id.clone(),
                saved: entry.state.saved.clone(),
                durable,
            }),
            ServiceEffect::Spawn { .. } => {
                entry.generation += 1;
                entry.counter += 1;
                let counter = entry.counter;
                let prune = open_log(entry, counter, now);
                if !prune.is_empty() {
                    out.push(Effect::DeleteLogs(prune));
                }
                out.push(Effect::SpawnInstance(InstanceOrder {
                    spec: entry.spec.clone(),
                    generation: entry.generation,
                    counter,
                    log_dir: entry.log_dir.clone(),
                }));
            }
            ServiceEffect::Stop { signal, .. } => out.push(signal_effect(entry, signal)),
            ServiceEffect::Kill => {
                out.push(signal_effect(entry, crate::config::ServiceSignal::Kill));
            }
            ServiceEffect::SendSignal(signal) => out.push(signal_effect(entry, signal)),
            ServiceEffect::LogLine(text) => out.push(Effect::InstanceControl {
                id: id.clone(),
                control: InstanceControl::Line(text),
            }),
            ServiceEffect::CloseLog(status) => out.push(Effect::InstanceControl {
                id: id.clone(),
                control: InstanceControl::Close(run_status(status)),
            }),
            ServiceEffect::CloseLeftoverLog {
                counter,
                status,
                line,
            } => {
                let status = run_status(status);
                if let Some(log) = entry.logs.iter_mut().find(|l| l.counter == counter) {
                    log.status = status;
                    log.path = entry.log_dir.join(run_log::file_name(id, counter, status));
                }
                out.push(Effect::CloseLeftover {
                    id: id.clone(),
                    log_dir: entry.log_dir.clone(),
                    counter,
                    status,
                    line,
                });
            }
            ServiceEffect::History(history) => out.push(Effect::ServiceHistory {
                id: id.clone(),
                entry: history,
                keep: entry.spec.history,
            }),
            ServiceEffect::Event(event) => {
                let recorded =
                    NewEvent::new(id.as_str(), event.level(), event.message, Source::Service)
                        .and_then(|e| e.with_kind(event.kind.as_str()));
                if let Ok(recorded) = recorded {
                    out.push(Effect::RecordEvent(recorded));
                }
            }
            ServiceEffect::Notify(notice) => out.push(Effect::NotifyService(ServiceAlert {
                spec: entry.spec.clone(),
                notice,
                log_dir: entry.log_dir.clone(),
                at: now,
            })),
            ServiceEffect::Reply(r) => reply = Some(r),
        }
    }
    entry.stale = true;
    if let Some(due) = entry.deadline.take() {
        state.services.timers.remove(&(due, id.clone()));
    }
    let next = crate::service::next_deadline(&entry.state, &entry.spec.policy);
    entry.deadline = next;
    if let Some(due) = next {
        state.services.timers.insert((due, id.clone()));
    }
    state.mark_changed();
    reply
}

/// The signal effect: to the live instance, or to the orphan a previous karajo left.
fn signal_effect(entry: &ServiceEntry, signal: crate::config::ServiceSignal) -> Effect {
    Effect::SignalService {
        id: entry.spec.id.clone(),
        signal,
        orphan: entry.orphan.clone(),
    }
}

fn run_status(status: SegmentStatus) -> RunStatus {
    match status {
        SegmentStatus::Success => RunStatus::Success,
        SegmentStatus::Canceled => RunStatus::Canceled,
        SegmentStatus::Failed => RunStatus::Failed,
        SegmentStatus::Rotated => RunStatus::Rotated,
    }
}

/// Lists a new running segment `counter`; returns the old segments beyond retention.
fn open_log(entry: &mut ServiceEntry, counter: u64, now: Timestamp) -> Vec<PathBuf> {
    let keep = entry.spec.log_retention.saturating_sub(1);
    let prune = run_log::beyond_retention(&mut entry.logs, keep);
    entry.logs.push(LogEntry {
        counter,
        status: RunStatus::Running,
        path: entry.log_dir.join(run_log::file_name(
            &entry.spec.id,
            counter,
            RunStatus::Running,
        )),
        modified: now,
        facts: RunFacts {
            trigger: None,
            started: Some(now),
            ended: None,
            exit_code: None,
        },
    });
    entry.stale = true;
    prune
}

/// Segment `closed` was rotated and `next` opened.
fn rotated(entry: &mut ServiceEntry, closed: u64, next: u64, now: Timestamp) -> Vec<PathBuf> {
    if let Some(log) = entry.logs.iter_mut().find(|l| l.counter == closed) {
        log.status = RunStatus::Rotated;
        log.path = entry.log_dir.join(run_log::file_name(
            &entry.spec.id,
            closed,
            RunStatus::Rotated,
        ));
        log.facts.ended = Some(now);
    }
    entry.counter = entry.counter.max(next);
    open_log(entry, next, now)
}

/// The instance's last segment was closed.
fn closed(entry: &mut ServiceEntry, counter: u64, path: Option<PathBuf>, now: Timestamp) {
    let status = path
        .as_deref()
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str())
        .and_then(RunStatus::parse)
        .unwrap_or(RunStatus::Failed);
    if let Some(log) = entry.logs.iter_mut().find(|l| l.counter == counter) {
        log.status = status;
        if let Some(path) = path {
            log.path = path;
        }
        log.modified = now;
        log.facts.ended = Some(now);
    }
    entry.stale = true;
}
