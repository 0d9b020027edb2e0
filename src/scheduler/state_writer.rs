//! The one writer of the scheduler's state files: `var/lib/karajo/state.json` (jobs),
//! `var/lib/karajo/state/monitor/<id>.json` (monitors), the dynamic monitors'
//! records `var/lib/karajo/state/watchtower.json`, and the liveness mark
//! `var/lib/karajo/state/alive`. It runs as its own task, so a slow disk never delays
//! the scheduler's timers: the executor asks for a save, soon (a burst of runs costs one
//! write per [`SAVE_INTERVAL`]) or now (a pause or a monitor's transition is written
//! and synced before it is answered), and the writer writes what the latest published
//! snapshot says. Jobs that left the configuration keep their entries, so a job removed
//! and added back is still paused. The liveness mark is rewritten every
//! [`ALIVE_INTERVAL`] while there are monitors (they read it back after a restart),
//! and marked clean when the writer ends.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Snapshot;
use crate::clock::SharedClock;
use crate::job::JobId;
use crate::monitor::{MonitorState, Pulse};
use crate::store::monitor_files::{self, AliveMark};
use crate::store::{JobState, Layout, StateFile, create_private_dir};

/// The least time between two writes that nobody waits for. What the file holds
/// besides the paused flags (last and next runs, counters) is also recoverable from the
/// run logs, and pauses are written at once.
pub(crate) const SAVE_INTERVAL: Duration = Duration::from_millis(250);

/// How often the liveness mark is rewritten (monitors spec A.7).
pub(crate) const ALIVE_INTERVAL: Duration = Duration::from_secs(10);

enum Save {
    Soon,
    Now(oneshot::Sender<()>),
    Monitor {
        id: JobId,
        state: MonitorState,
        ack: Option<oneshot::Sender<()>>,
    },
    Pulses {
        pulses: Vec<Pulse>,
        ack: oneshot::Sender<()>,
    },
    Forget {
        id: JobId,
        ack: oneshot::Sender<()>,
    },
    Service {
        id: JobId,
        saved: crate::service::SavedService,
        ack: Option<oneshot::Sender<()>>,
    },
}

/// The handle on the writer task; the task ends when the handle is dropped, after the
/// saves asked for so far.
pub(crate) struct StateWriter {
    tx: mpsc::UnboundedSender<Save>,
    remembered: Arc<Mutex<StateFile>>,
}

impl std::fmt::Debug for StateWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateWriter").finish_non_exhaustive()
    }
}

impl StateWriter {
    /// Starts the writer of `layout`'s state files, which starts from `state` (the job
    /// state file as loaded) and writes what `snapshots` last published.
    pub(crate) fn spawn(
        layout: Layout,
        state: StateFile,
        snapshots: watch::Receiver<Arc<Snapshot>>,
        clock: SharedClock,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let remembered = Arc::new(Mutex::new(state));
        let writer = Writer {
            layout,
            remembered: remembered.clone(),
            snapshots,
            clock,
            last_write: None,
        };
        let task = tokio::spawn(writer.run(rx));
        (Self { tx, remembered }, task)
    }

    /// Asks for a write within [`SAVE_INTERVAL`].
    pub(crate) fn soon(&self) {
        let _ = self.tx.send(Save::Soon);
    }

    /// Asks for a write now; the receiver fires once it is on disk (or failed, which
    /// is logged).
    pub(crate) fn now(&self) -> oneshot::Receiver<()> {
        let (ack, done) = oneshot::channel();
        let _ = self.tx.send(Save::Now(ack));
        done
    }

    /// Asks for a monitor's state to be written: now when `durable` (the receiver fires
    /// once it is on disk), else within [`SAVE_INTERVAL`].
    pub(crate) fn monitor(
        &self,
        id: JobId,
        state: MonitorState,
        durable: bool,
    ) -> Option<oneshot::Receiver<()>> {
        let (ack, done) = if durable {
            let (ack, done) = oneshot::channel();
            (Some(ack), Some(done))
        } else {
            (None, None)
        };
        let _ = self.tx.send(Save::Monitor { id, state, ack });
        done
    }

    /// Asks for the dynamic monitors' records to be written now; the receiver fires
    /// once they are on disk.
    pub(crate) fn pulses(&self, pulses: Vec<Pulse>) -> oneshot::Receiver<()> {
        let (ack, done) = oneshot::channel();
        let _ = self.tx.send(Save::Pulses { pulses, ack });
        done
    }

    /// Asks for a removed monitor's state file to be deleted now (a save of it asked
    /// for earlier is dropped); the receiver fires once it is gone.
    pub(crate) fn forget(&self, id: JobId) -> oneshot::Receiver<()> {
        let (ack, done) = oneshot::channel();
        let _ = self.tx.send(Save::Forget { id, ack });
        done
    }

    /// Asks for a service's state to be written: now when `durable` (the receiver
    /// fires once it is on disk), else within [`SAVE_INTERVAL`].
    pub(crate) fn service(
        &self,
        id: JobId,
        saved: crate::service::SavedService,
        durable: bool,
    ) -> Option<oneshot::Receiver<()>> {
        let (ack, done) = if durable {
            let (ack, done) = oneshot::channel();
            (Some(ack), Some(done))
        } else {
            (None, None)
        };
        let _ = self.tx.send(Save::Service { id, saved, ack });
        done
    }

    /// The state as last written (or loaded), for jobs that a reload adds.
    pub(crate) fn remembered(&self) -> StateFile {
        self.remembered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

struct Writer {
    layout: Layout,
    remembered: Arc<Mutex<StateFile>>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    clock: SharedClock,
    last_write: Option<Instant>,
}

/// What a batch of requests asks for.
#[derive(Default)]
struct Batch {
    jobs: bool,
    monitors: BTreeMap<JobId, MonitorState>,
    /// Monitors whose state files are deleted before `monitors` are written.
    forget: Vec<JobId>,
    pulses: Option<Vec<Pulse>>,
    services: BTreeMap<JobId, crate::service::SavedService>,
    acks: Vec<oneshot::Sender<()>>,
}

impl Batch {
    fn take(&mut self, save: Save) {
        match save {
            Save::Soon => self.jobs = true,
            Save::Now(ack) => {
                self.jobs = true;
                self.acks.push(ack);
            }
            Save::Monitor { id, state, ack } => {
                self.monitors.insert(id, state);
                self.acks.extend(ack);
            }
            Save::Pulses { pulses, ack } => {
                self.pulses = Some(pulses);
                self.acks.push(ack);
            }
            Save::Forget { id, ack } => {
                self.monitors.remove(&id);
                self.forget.push(id);
                self.acks.push(ack);
            }
            Save::Service { id, saved, ack } => {
                self.services.insert(id, saved);
                self.acks.extend(ack);
            }
        }
    }
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Save>) {
        let mut alive = tokio::time::interval(ALIVE_INTERVAL);
        loop {
            // Only monitors read the mark back: with none, karajo does not wake to
            // write it (a daemon of jobs alone is idle until a job is due). A monitor
            // added later comes with a save, which brings the loop back here.
            let watching = !self.snapshots.borrow().monitors.is_empty();
            let first = tokio::select! {
                save = rx.recv() => match save {
                    Some(save) => save,
                    None => break,
                },
                _ = alive.tick(), if watching => {
                    self.mark_alive(false).await;
                    continue;
                }
            };
            let mut batch = Batch::default();
            batch.take(first);
            // Nobody waits: let a burst of changes gather, unless someone starts waiting.
            if let (true, Some(last)) = (batch.acks.is_empty(), self.last_write) {
                let until = last + SAVE_INTERVAL;
                loop {
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => break,
                        next = rx.recv() => match next {
                            Some(save) => {
                                batch.take(save);
                                if !batch.acks.is_empty() {
                                    break;
                                }
                            }
                            None => break,
                        },
                    }
                }
            }
            while let Ok(save) = rx.try_recv() {
                batch.take(save);
            }
            self.write(batch).await;
        }
        self.mark_alive(true).await;
    }

    async fn write(&mut self, batch: Batch) {
        let jobs = batch.jobs.then(|| {
            let mut file = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
            record(&mut file, &self.snapshots.borrow());
            file.clone()
        });
        let layout = self.layout.clone();
        let (monitors, forget, pulses) = (batch.monitors, batch.forget, batch.pulses);
        let services = batch.services;
        let written = tokio::task::spawn_blocking(move || {
            for id in &forget {
                let path = layout.monitor_state_file(id);
                if let Err(err) = monitor_files::remove_file(&path) {
                    tracing::error!(monitor = %id, %err, "cannot delete the monitor's state");
                }
            }
            for (id, saved) in &services {
                let path = layout.service_state_file(id);
                let written = path
                    .parent()
                    .map_or(Ok(()), create_private_dir)
                    .and_then(|()| crate::store::json_file::save(&path, saved, false));
                if let Err(err) = written {
                    tracing::error!(service = %id, %err, "cannot save the service's state");
                }
            }
            let watchtower = layout.watchtower_file();
            if let Some(pulses) = &pulses
                && let Err(err) = watchtower
                    .parent()
                    .map_or(Ok(()), create_private_dir)
                    .and_then(|()| monitor_files::save_pulses(&watchtower, pulses))
            {
                tracing::error!(%err, "cannot save the watchTower monitors");
            }
            if let Some(state) = jobs
                && let Err(err) = state.save(&layout.state_file())
            {
                tracing::error!(%err, "cannot save the state file");
            }
            if !monitors.is_empty()
                && let Err(err) = create_private_dir(&layout.monitor_state_dir())
            {
                tracing::error!(%err, "cannot create the monitors' state directory");
            }
            for (id, state) in &monitors {
                if let Err(err) = monitor_files::save_state(&layout.monitor_state_file(id), state) {
                    tracing::error!(monitor = %id, %err, "cannot save the monitor's state");
                }
            }
        })
        .await;
        if let Err(err) = written {
            tracing::error!(%err, "saving the state panicked");
        }
        self.last_write = Some(Instant::now());
        for ack in batch.acks {
            let _ = ack.send(());
        }
    }

    async fn mark_alive(&self, clean: bool) {
        let mark = AliveMark {
            alive_at: self.clock.now(),
            pid: std::process::id(),
            clean,
        };
        let path = self.layout.alive_file();
        let written = tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent() {
                create_private_dir(dir)?;
            }
            mark.save(&path)
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(%err, "cannot write the liveness mark"),
            Err(err) => tracing::error!(%err, "writing the liveness mark panicked"),
        }
    }
}

/// Writes every job of `snapshot` into `file`.
fn record(file: &mut StateFile, snapshot: &Snapshot) {
    for view in &snapshot.jobs {
        *file.entry(view.def.kind(), view.id()) = JobState {
            paused: view.paused,
            last_run: view.last_run,
            next_run: view.next_run,
            counter: view.counter,
            retry: view.retry,
        };
    }
}
