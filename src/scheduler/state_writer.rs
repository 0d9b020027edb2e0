//! The one writer of the state file `var/lib/karajo/state.json`. It runs as its own
//! task, so a slow disk never delays the scheduler's timers: the executor asks for a
//! save, soon (a burst of runs costs one write per [`SAVE_INTERVAL`]) or now (a pause
//! is written and synced before it is answered), and the writer writes what the latest
//! published snapshot says. Jobs that left the configuration keep their entries, so a
//! job removed and added back is still paused.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Snapshot;
use crate::store::{JobState, StateFile};

/// The least time between two writes that nobody waits for. What the file holds
/// besides the paused flags (last and next runs, counters) is also recoverable from the
/// run logs, and pauses are written at once.
pub(crate) const SAVE_INTERVAL: Duration = Duration::from_millis(250);

enum Save {
    Soon,
    Now(oneshot::Sender<()>),
}

/// The handle on the writer task; the task ends when the handle is dropped, after the
/// saves asked for so far.
#[derive(Debug)]
pub(crate) struct StateWriter {
    tx: mpsc::UnboundedSender<Save>,
    remembered: Arc<Mutex<StateFile>>,
}

impl std::fmt::Debug for Save {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Soon => "Soon",
            Self::Now(_) => "Now",
        })
    }
}

impl StateWriter {
    /// Starts the writer of `path`, which starts from `state` (the file as loaded) and
    /// writes what `snapshots` last published.
    pub(crate) fn spawn(
        path: PathBuf,
        state: StateFile,
        snapshots: watch::Receiver<Arc<Snapshot>>,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let remembered = Arc::new(Mutex::new(state));
        let task = tokio::spawn(write_loop(path, remembered.clone(), rx, snapshots));
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

    /// The state as last written (or loaded), for jobs that a reload adds.
    pub(crate) fn remembered(&self) -> StateFile {
        self.remembered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

async fn write_loop(
    path: PathBuf,
    remembered: Arc<Mutex<StateFile>>,
    mut rx: mpsc::UnboundedReceiver<Save>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
) {
    let mut last_write: Option<Instant> = None;
    while let Some(first) = rx.recv().await {
        let mut acks = Vec::new();
        take(first, &mut acks);
        // Nobody waits: let a burst of changes gather, unless someone starts waiting.
        if let (true, Some(last)) = (acks.is_empty(), last_write) {
            let until = last + SAVE_INTERVAL;
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => break,
                    next = rx.recv() => match next {
                        Some(save) => {
                            take(save, &mut acks);
                            if !acks.is_empty() {
                                break;
                            }
                        }
                        None => break,
                    },
                }
            }
        }
        while let Ok(save) = rx.try_recv() {
            take(save, &mut acks);
        }
        let state = {
            let mut file = remembered.lock().unwrap_or_else(|e| e.into_inner());
            record(&mut file, &snapshots.borrow());
            file.clone()
        };
        let target = path.clone();
        match tokio::task::spawn_blocking(move || state.save(&target)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(%err, "cannot save the state file"),
            Err(err) => tracing::error!(%err, "saving the state file panicked"),
        }
        last_write = Some(Instant::now());
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

fn take(save: Save, acks: &mut Vec<oneshot::Sender<()>>) {
    if let Save::Now(ack) = save {
        acks.push(ack);
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
        };
    }
}
