//! Heartbeat monitors inside the scheduler's pure decisions: each monitor's state,
//! its logs and its deadline in the scheduler's timer set, and the translation of the
//! monitor machine's [`MonitorEffect`]s into the scheduler's [`Effect`]s (write a
//! check-in log, save the monitor's state, record an event, notify, answer the ping).
//! Also the dynamic monitors watchTower pulses create and cancel (monitors spec A.8),
//! which live beside the configured ones and survive reloads and restarts through
//! their record in `state/watchtower.json`. No IO here either: [`super::decide`] calls these functions, the executor performs
//! what they return.

use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;

use super::LogSummary;
use super::decide::{Answer, Effect, SchedulerState};
use crate::config::MonitorSpec;
use crate::job::{JobId, RunStatus};
use crate::monitor::{
    self, ClosedBy, MonitorEffect, MonitorNotice, MonitorState, PauseUntil, Ping,
};
use crate::monitor::{PingRoutes, Pulse, Signal, pulse_spec};
use crate::store::event_log::{Level, Source};
use crate::store::monitor_files::PingBlock;
use crate::store::{LogEntry, NewEvent, RunFacts, run_log};

/// A monitor as found on disk at start-up or when a reload adds it.
#[derive(Debug)]
pub struct RestoredMonitor {
    /// Its configuration.
    pub spec: Arc<MonitorSpec>,
    /// Its state file, if it had one.
    pub state: Option<MonitorState>,
    /// Its check-in logs, oldest first (open runs stay `.running`).
    pub logs: Vec<LogEntry>,
    /// Where its logs are.
    pub log_dir: PathBuf,
}

/// A read-only picture of one monitor, published after every change.
#[derive(Debug, Clone)]
pub struct MonitorView {
    /// Its configuration.
    pub spec: Arc<MonitorSpec>,
    /// Its state.
    pub state: MonitorState,
    /// When its status next changes by time, if nothing arrives.
    pub deadline: Option<Timestamp>,
    /// Its logs, oldest first.
    pub logs: Vec<LogSummary>,
}

impl MonitorView {
    /// The monitor's id.
    pub fn id(&self) -> &JobId {
        &self.spec.id
    }
}

/// The answer to a ping (monitors spec A.3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingAnswer {
    /// The monitor's status after the ping.
    pub status: &'static str,
    /// When the next check-in is due; none while a run is open or paused.
    pub next_due: Option<Timestamp>,
    /// The log the ping was written to.
    pub counter: Option<u64>,
    /// The monitor is paused and ignored the ping.
    pub ignored: bool,
}

/// How a check-in log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogAction {
    /// Create `<id>.<n>.running` (a `start`).
    Open,
    /// Append to the open run's log.
    Append,
    /// Append and rename to the final status.
    Close(RunStatus),
    /// One file, `<id>.<n>.<status>`, in one step.
    Lone(RunStatus),
}

/// One write of a monitor's check-in log.
#[derive(Debug)]
pub(crate) struct MonitorLogWrite {
    /// The monitor.
    pub(crate) id: JobId,
    /// Its log directory.
    pub(crate) log_dir: PathBuf,
    /// The log's counter.
    pub(crate) counter: u64,
    /// What to do.
    pub(crate) action: LogAction,
    /// The text to write.
    pub(crate) block: PingBlock,
    /// Old logs to delete (beyond `log_retention`).
    pub(crate) prune: Vec<PathBuf>,
}

/// A monitor notification to queue.
#[derive(Debug)]
pub(crate) struct MonitorAlert {
    /// The monitor.
    pub(crate) spec: Arc<MonitorSpec>,
    /// What to tell.
    pub(crate) notice: MonitorNotice,
    /// The relevant log, if any: its counter and path.
    pub(crate) log: Option<(u64, PathBuf)>,
    /// When.
    pub(crate) at: Timestamp,
}

/// One monitor's runtime state.
#[derive(Debug)]
pub(crate) struct MonitorEntry {
    spec: Arc<MonitorSpec>,
    state: MonitorState,
    log_dir: PathBuf,
    logs: Vec<LogEntry>,
    deadline: Option<Timestamp>,
    view: Arc<MonitorView>,
    stale: bool,
}

impl MonitorEntry {
    fn refresh_view(&mut self) {
        if !self.stale {
            return;
        }
        self.stale = false;
        self.view = Arc::new(MonitorView {
            spec: self.spec.clone(),
            state: self.state.clone(),
            deadline: self.deadline,
            logs: self.logs.iter().map(LogSummary::from).collect(),
        });
    }

    pub(crate) fn view(&mut self) -> Arc<MonitorView> {
        self.refresh_view();
        self.view.clone()
    }
}

/// Why a watchTower pulse or cancel was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PulseError {
    /// A configured monitor has the id, without `accept_pulse = true`: 409.
    #[error(
        "monitor {0:?} is configured in karajo's files without accept_pulse = true, \
         so pulses cannot check in to it"
    )]
    Conflict(String),
    /// `[watchtower] max_monitors` dynamic monitors exist: 429.
    #[error("there are already {0} watchTower monitors ([watchtower] max_monitors)")]
    Limit(usize),
    /// No monitor has the id (a cancel), or it could not be set up (a pulse).
    #[error("monitor not found: {0}")]
    NotFound(String),
}

/// The record of a dynamic monitor: the pulse that set it up last.
#[derive(Debug)]
struct PulseRecord {
    pulse: Pulse,
    /// A warning about its `alertTarget` was recorded (once per monitor).
    target_warned: bool,
}

/// The monitors part of [`SchedulerState`].
#[derive(Debug, Default)]
pub(crate) struct Monitors {
    entries: std::collections::BTreeMap<JobId, MonitorEntry>,
    /// `(deadline, monitor)` for every monitor with a deadline.
    timers: std::collections::BTreeSet<(Timestamp, JobId)>,
    /// The dynamic monitors' records, as `state/watchtower.json` keeps them.
    pulses: std::collections::BTreeMap<JobId, PulseRecord>,
    /// The ping routes of the configured monitors, rebuilt when the set changes.
    routes: Arc<PingRoutes<JobId>>,
    routes_stale: bool,
}

impl Monitors {
    pub(crate) fn next_due(&self) -> Option<Timestamp> {
        self.timers.first().map(|(due, _)| *due)
    }

    pub(crate) fn knows(&self, id: &JobId) -> bool {
        self.entries.contains_key(id)
    }

    pub(crate) fn view(&mut self, id: &JobId) -> Option<Arc<MonitorView>> {
        self.entries.get_mut(id).map(MonitorEntry::view)
    }

    /// Every monitor's view, by id.
    pub(crate) fn views(&mut self) -> Vec<Arc<MonitorView>> {
        self.entries.values_mut().map(MonitorEntry::view).collect()
    }

    /// The ping routes of the configured monitors (dynamic ones have none).
    pub(crate) fn routes(&mut self) -> Arc<PingRoutes<JobId>> {
        if std::mem::take(&mut self.routes_stale) {
            self.routes = Arc::new(PingRoutes::new(
                self.entries
                    .values()
                    .filter(|e| !e.spec.is_dynamic())
                    .map(|e| (e.spec.path.clone(), e.spec.id.clone())),
            ));
        }
        self.routes.clone()
    }

    /// How many monitors pulses created.
    pub(crate) fn dynamic_count(&self) -> usize {
        self.pulses.len()
    }

    fn pulse_list(&self) -> Vec<Pulse> {
        self.pulses.values().map(|r| r.pulse.clone()).collect()
    }
}

/// The dynamic monitors' records at start-up (their monitors come with the others).
pub(crate) fn restore_pulses(state: &mut SchedulerState, pulses: Vec<Pulse>) {
    for pulse in pulses {
        let record = PulseRecord {
            pulse,
            target_warned: false,
        };
        state.monitors.pulses.insert(record.pulse.id(), record);
    }
}

/// Adds a monitor found on disk, applying the restart rule when `restart` gives the
/// last moment the previous karajo was alive (monitors spec A.7).
pub(crate) fn insert(
    state: &mut SchedulerState,
    found: RestoredMonitor,
    restart: Option<Option<Timestamp>>,
    now: Timestamp,
    out: &mut Vec<Effect>,
) {
    let id = found.spec.id.clone();
    let had_state = found.state.is_some();
    let mut monitor_state = found.state.unwrap_or_else(|| MonitorState::new(now));
    // A counter only grows: logs may be newer than a state file lost in a crash.
    let newest = found.logs.iter().map(|l| l.counter).max().unwrap_or(0);
    monitor_state.counter = monitor_state.counter.max(newest);
    let effects = match restart {
        Some(last_alive) if had_state => {
            monitor::restart(&mut monitor_state, &found.spec.rules, last_alive, now)
        }
        _ => monitor::reconfigure(&mut monitor_state, &found.spec.rules, now),
    };
    let entry = MonitorEntry {
        view: Arc::new(MonitorView {
            spec: found.spec.clone(),
            state: monitor_state.clone(),
            deadline: None,
            logs: Vec::new(),
        }),
        spec: found.spec,
        state: monitor_state,
        log_dir: found.log_dir,
        logs: found.logs,
        deadline: None,
        stale: true,
    };
    state.monitors.entries.insert(id.clone(), entry);
    state.monitors.routes_stale = true;
    apply(state, &id, effects, None, now, out);
}

/// Replaces the monitor set on a reload: new monitors come restored from disk, kept
/// ones take their new configuration (the due time is recomputed from the last
/// check-in), removed ones are dropped with their timers.
pub(crate) fn reload(
    state: &mut SchedulerState,
    specs: Vec<Arc<MonitorSpec>>,
    restored: Vec<RestoredMonitor>,
    now: Timestamp,
    out: &mut Vec<Effect>,
) {
    let keep: std::collections::BTreeSet<JobId> = specs.iter().map(|s| s.id.clone()).collect();
    state.monitors.routes_stale = true;
    let gone: Vec<JobId> = state
        .monitors
        .entries
        .iter()
        .filter(|(id, entry)| !keep.contains(*id) && !entry.spec.is_dynamic())
        .map(|(id, _)| id.clone())
        .collect();
    for id in gone {
        disarm(state, &id);
        state.monitors.entries.remove(&id);
        tracing::info!(monitor = %id, "monitor removed by reload");
    }
    let mut restored: std::collections::BTreeMap<JobId, RestoredMonitor> = restored
        .into_iter()
        .map(|r| (r.spec.id.clone(), r))
        .collect();
    for spec in specs {
        let id = spec.id.clone();
        match state.monitors.entries.get_mut(&id) {
            Some(entry) => {
                if entry.spec.is_dynamic() {
                    tracing::info!(monitor = %id, "a configured monitor replaces the watchTower one");
                }
                entry.spec = spec;
                entry.stale = true;
                let effects = monitor::reconfigure(&mut entry.state, &entry.spec.rules, now);
                apply(state, &id, effects, None, now, out);
            }
            None => match restored.remove(&id) {
                Some(mut found) => {
                    found.spec = spec;
                    tracing::info!(monitor = %id, "monitor added by reload");
                    insert(state, found, None, now, out);
                }
                None => {
                    tracing::error!(monitor = %id, "monitor added by reload could not be restored")
                }
            },
        }
    }
    // Dynamic monitors take the new `[watchtower]` and notifs; a configured monitor
    // of the same id replaces one.
    let before = state.monitors.pulses.len();
    state.monitors.pulses.retain(|id, _| !keep.contains(id));
    let replaced = before != state.monitors.pulses.len();
    let config = state.config.clone();
    let pulses: Vec<Pulse> = state.monitors.pulse_list();
    for pulse in pulses {
        let id = pulse.id();
        let built = pulse_spec(&pulse, config.watchtower.as_ref(), &config.notifs);
        if let Some(entry) = state.monitors.entries.get_mut(&id) {
            entry.spec = Arc::new(built.spec);
            entry.stale = true;
            let effects = monitor::reconfigure(&mut entry.state, &entry.spec.rules, now);
            apply(state, &id, effects, None, now, out);
        }
    }
    if replaced {
        out.push(Effect::SavePulses(state.monitors.pulse_list()));
    }
}

/// The most dynamic monitors (`[watchtower] max_monitors`).
pub(crate) fn max_dynamic(config: &crate::config::Config) -> usize {
    config.watchtower.as_ref().map_or(
        crate::config::model::DEFAULT_WATCHTOWER_MAX_MONITORS,
        |wt| wt.max_monitors,
    )
}

/// A watchTower pulse (monitors spec A.8): a success check-in with `next_in`, into a
/// configured monitor that accepts pulses, or into a dynamic monitor, created from
/// `fresh` (what is on disk for its id) when it is new. Answers with the monitor, or
/// why not.
pub(crate) fn pulse(
    state: &mut SchedulerState,
    pulse: Pulse,
    block: PingBlock,
    fresh: Option<Box<RestoredMonitor>>,
    now: Timestamp,
    out: &mut Vec<Effect>,
) -> Answer {
    let id = pulse.id();
    let config = state.config.clone();
    let existing = state.monitors.entries.get(&id).map(|e| e.spec.is_dynamic());
    if existing == Some(false) {
        let spec = &state.monitors.entries[&id].spec;
        if !spec.accept_pulse {
            return Answer::PulseRefused(PulseError::Conflict(spec.name.clone()));
        }
    } else {
        let built = pulse_spec(&pulse, config.watchtower.as_ref(), &config.notifs);
        let changed = state
            .monitors
            .pulses
            .get(&id)
            .is_none_or(|r| r.pulse != pulse);
        match existing {
            Some(_) => {
                if let Some(entry) = state.monitors.entries.get_mut(&id) {
                    entry.spec = Arc::new(built.spec.clone());
                    entry.stale = true;
                }
            }
            None => {
                let limit = max_dynamic(&config);
                if state.monitors.pulses.len() >= limit {
                    return Answer::PulseRefused(PulseError::Limit(limit));
                }
                let Some(mut found) = fresh else {
                    return Answer::PulseRefused(PulseError::NotFound(id.to_string()));
                };
                found.spec = Arc::new(built.spec.clone());
                tracing::info!(monitor = %id, "monitor created by a watchTower pulse");
                out.extend(event(
                    &id,
                    Level::Info,
                    format!(
                        "created by a watchTower pulse, next in {}s",
                        pulse.next_in.seconds()
                    ),
                    Some("monitor.created"),
                ));
                insert(state, *found, None, now, out);
            }
        }
        let record = state
            .monitors
            .pulses
            .entry(id.clone())
            .or_insert_with(|| PulseRecord {
                pulse: pulse.clone(),
                target_warned: false,
            });
        if changed && built.unknown_alert_type {
            let message = format!(
                "alertType {:?} names no [notif] section; [watchtower] notif_on_down and \
                 notif_on_up are used",
                pulse.alert_type
            );
            out.extend(event(
                &id,
                Level::Warning,
                message,
                Some("watchtower.alert_type"),
            ));
        }
        if let Some(why) = &built.ignored_target
            && !record.target_warned
        {
            record.target_warned = true;
            let message = format!("alertTarget is ignored: {why}");
            out.extend(event(
                &id,
                Level::Warning,
                message,
                Some("watchtower.alert_target"),
            ));
        }
        if changed {
            record.pulse = pulse.clone();
            out.push(Effect::SavePulses(state.monitors.pulse_list()));
        }
    }
    let ping = Ping {
        signal: Signal::Success,
        rid: None,
        next_in: Some(pulse.next_in),
    };
    match self::ping(state, &id, &ping, block, now, out) {
        Answer::Ping(_) => Answer::Monitor(id),
        other => other,
    }
}

/// A watchTower cancel: a dynamic monitor is removed with its state and logs; a
/// configured one that accepts pulses is paused until its next check-in.
pub(crate) fn cancel_pulse(
    state: &mut SchedulerState,
    service: &str,
    now: Timestamp,
    out: &mut Vec<Effect>,
) -> Answer {
    let id = JobId::from_name(service);
    let Some(entry) = state.monitors.entries.get(&id) else {
        return Answer::PulseRefused(PulseError::NotFound(service.to_string()));
    };
    if !entry.spec.is_dynamic() {
        if !entry.spec.accept_pulse {
            return Answer::PulseRefused(PulseError::Conflict(entry.spec.name.clone()));
        }
        return self::pause(state, &id, Some(PauseUntil::Ping), now, out);
    }
    disarm(state, &id);
    if let Some(entry) = state.monitors.entries.remove(&id) {
        out.push(Effect::ForgetMonitor {
            id: id.clone(),
            log_dir: entry.log_dir,
        });
    }
    state.monitors.pulses.remove(&id);
    state.monitors.routes_stale = true;
    tracing::info!(monitor = %id, "monitor removed by a watchTower cancel");
    out.extend(event(
        &id,
        Level::Info,
        "removed by a watchTower cancel".to_string(),
        Some("monitor.removed"),
    ));
    out.push(Effect::SavePulses(state.monitors.pulse_list()));
    state.mark_changed();
    Answer::Removed(id)
}

/// A check-in: the machine decides, the ping is answered after what it changed is
/// saved.
pub(crate) fn ping(
    state: &mut SchedulerState,
    id: &JobId,
    ping: &Ping,
    block: PingBlock,
    now: Timestamp,
    out: &mut Vec<Effect>,
) -> Answer {
    let Some(entry) = state.monitors.entries.get_mut(id) else {
        return Answer::Unknown;
    };
    let effects = monitor::check_in(&mut entry.state, &entry.spec.rules, ping, now);
    let counter = monitor::ping_counter(&effects);
    let ignored = effects.iter().any(|e| matches!(e, MonitorEffect::Ignored));
    apply(state, id, effects, Some(block), now, out);
    let Some(entry) = state.monitors.entries.get(id) else {
        return Answer::Unknown;
    };
    Answer::Ping(PingAnswer {
        status: entry.state.status.as_str(),
        next_due: entry.state.next_due(),
        counter,
        ignored,
    })
}

/// Pauses a monitor (`until` defaults by `manual_resume`).
pub(crate) fn pause(
    state: &mut SchedulerState,
    id: &JobId,
    until: Option<PauseUntil>,
    now: Timestamp,
    out: &mut Vec<Effect>,
) -> Answer {
    let Some(entry) = state.monitors.entries.get_mut(id) else {
        return Answer::Unknown;
    };
    let until = until.unwrap_or(if entry.spec.manual_resume {
        PauseUntil::Resume
    } else {
        PauseUntil::Ping
    });
    let effects = monitor::pause(&mut entry.state, &entry.spec.rules, until, now);
    apply(state, id, effects, None, now, out);
    Answer::Monitor(id.clone())
}

/// Resumes a monitor (a no-op when it is not paused).
pub(crate) fn resume(
    state: &mut SchedulerState,
    id: &JobId,
    now: Timestamp,
    out: &mut Vec<Effect>,
) -> Answer {
    let Some(entry) = state.monitors.entries.get_mut(id) else {
        return Answer::Unknown;
    };
    let effects = monitor::resume(&mut entry.state, &entry.spec.rules, now);
    apply(state, id, effects, None, now, out);
    Answer::Monitor(id.clone())
}

/// Moves every monitor whose deadline has come.
pub(crate) fn fire_due(state: &mut SchedulerState, now: Timestamp, out: &mut Vec<Effect>) {
    while let Some((due, id)) = state.monitors.timers.first().cloned() {
        if due > now {
            break;
        }
        state.monitors.timers.pop_first();
        let Some(entry) = state.monitors.entries.get_mut(&id) else {
            continue;
        };
        entry.deadline = None;
        let effects = monitor::advance(&mut entry.state, &entry.spec.rules, now);
        apply(state, &id, effects, None, now, out);
    }
}

fn disarm(state: &mut SchedulerState, id: &JobId) {
    if let Some(entry) = state.monitors.entries.get_mut(id)
        && let Some(due) = entry.deadline.take()
    {
        state.monitors.timers.remove(&(due, id.clone()));
    }
}

/// Turns the machine's effects into the scheduler's, saves the state (before
/// anything observable when the status changed), and re-arms the deadline.
fn apply(
    state: &mut SchedulerState,
    id: &JobId,
    effects: Vec<MonitorEffect>,
    block: Option<PingBlock>,
    now: Timestamp,
    out: &mut Vec<Effect>,
) {
    let Some(entry) = state.monitors.entries.get_mut(id) else {
        return;
    };
    let durable = effects.iter().any(|e| {
        e.is_transition()
            || matches!(
                e,
                MonitorEffect::OpenRunLog { .. } | MonitorEffect::CloseRunLog { .. }
            )
    });
    let mut after = Vec::new();
    let mut notices = Vec::new();
    let mut last_log = None;
    for effect in effects {
        match effect {
            MonitorEffect::OpenRunLog { counter } => {
                let block = block.clone().unwrap_or_else(|| note(now, "=== START"));
                last_log = Some((
                    counter,
                    write(entry, counter, LogAction::Open, block, now, out),
                ));
            }
            MonitorEffect::AppendRunLog { counter } => {
                if let Some(block) = block.clone() {
                    write(entry, counter, LogAction::Append, block, now, out);
                }
            }
            MonitorEffect::CloseRunLog {
                counter,
                status,
                closed_by,
                took,
            } => {
                let block = match closed_by {
                    ClosedBy::Ping => {
                        let mut block = block.clone().unwrap_or_else(|| note(now, "==="));
                        if let Some(first) = block.lines.first_mut() {
                            first.push_str(&format!(
                                ", run took {}",
                                crate::config::duration::format_short(took)
                            ));
                        }
                        block
                    }
                    ClosedBy::Note(text) => note(now, &text),
                };
                let path = write(entry, counter, LogAction::Close(status), block, now, out);
                last_log = Some((counter, path));
            }
            MonitorEffect::WriteCheckInLog { counter, status } => {
                let block = block.clone().unwrap_or_else(|| note(now, "==="));
                let path = write(entry, counter, LogAction::Lone(status), block, now, out);
                last_log = Some((counter, path));
            }
            MonitorEffect::StrayLog => {
                let text = block
                    .as_ref()
                    .map(|b| {
                        b.lines
                            .iter()
                            .skip(1)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default();
                let text: String = text.chars().take(1024).collect();
                after.push(event(id, Level::Info, format!("log: {text}"), None));
            }
            MonitorEffect::Ignored => {}
            MonitorEffect::Event(ev) => {
                use crate::monitor::EventKind;
                let to = match ev.kind {
                    EventKind::First | EventKind::Up => Some("up"),
                    EventKind::Late => Some("late"),
                    EventKind::Down => Some("down"),
                    EventKind::Paused => Some("paused"),
                    EventKind::Resumed => Some(entry.state.status.as_str()),
                    EventKind::Credit | EventKind::Ignored => None,
                };
                if let Some(to) = to {
                    after.push(Some(Effect::CountTransition { id: id.clone(), to }));
                }
                let level = ev.level();
                after.push(event(id, level, ev.message, Some(ev.kind.as_str())));
            }
            MonitorEffect::Notify(notice) => notices.push(notice),
        }
    }
    // The log that goes with a notification: the one this event wrote, else the
    // newest.
    let log = last_log.or_else(|| entry.logs.last().map(|l| (l.counter, l.path.clone())));
    for notice in notices {
        after.push(Some(Effect::NotifyMonitor(MonitorAlert {
            spec: entry.spec.clone(),
            notice,
            log: log.clone(),
            at: now,
        })));
    }
    entry.stale = true;
    out.push(Effect::SaveMonitor {
        id: id.clone(),
        state: entry.state.clone(),
        durable,
    });
    out.extend(after.into_iter().flatten());
    // Re-arm.
    if let Some(due) = entry.deadline.take() {
        state.monitors.timers.remove(&(due, id.clone()));
    }
    let next = monitor::next_deadline(&entry.state, &entry.spec.rules);
    entry.deadline = next;
    if let Some(due) = next {
        state.monitors.timers.insert((due, id.clone()));
    }
    state.mark_changed();
}

/// Records a log write and returns the log's final path.
fn write(
    entry: &mut MonitorEntry,
    counter: u64,
    action: LogAction,
    block: PingBlock,
    now: Timestamp,
    out: &mut Vec<Effect>,
) -> PathBuf {
    let status = match action {
        LogAction::Open | LogAction::Append => RunStatus::Running,
        LogAction::Close(status) | LogAction::Lone(status) => status,
    };
    let path = entry
        .log_dir
        .join(run_log::file_name(&entry.spec.id, counter, status));
    let mut prune = Vec::new();
    match entry.logs.iter_mut().find(|l| l.counter == counter) {
        Some(log) => {
            log.status = status;
            log.path = path.clone();
            log.modified = now;
            if status != RunStatus::Running {
                log.facts.ended = Some(now);
            }
        }
        None => {
            let keep = entry.spec.log_retention.saturating_sub(1);
            prune = run_log::beyond_retention(&mut entry.logs, keep);
            entry.logs.push(LogEntry {
                counter,
                status,
                path: path.clone(),
                modified: now,
                facts: RunFacts {
                    trigger: None,
                    started: Some(now),
                    ended: (status != RunStatus::Running).then_some(now),
                    exit_code: None,
                },
            });
        }
    }
    out.push(Effect::MonitorLog(MonitorLogWrite {
        id: entry.spec.id.clone(),
        log_dir: entry.log_dir.clone(),
        counter,
        action,
        block,
        prune,
    }));
    path
}

fn note(at: Timestamp, text: &str) -> PingBlock {
    PingBlock {
        at,
        lines: vec![text.to_string()],
    }
}

fn event(id: &JobId, level: Level, message: String, kind: Option<&str>) -> Option<Effect> {
    let event = NewEvent::new(id.as_str(), level, message, Source::Monitor).ok()?;
    let event = match kind {
        Some(kind) => event.with_kind(kind).ok()?,
        None => event,
    };
    Some(Effect::RecordEvent(event))
}
