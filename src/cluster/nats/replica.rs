//! The cluster agent's [`LogReplica`] on NATS: a run this node executes is shipped from
//! its log file to the log stream every 250 ms while it runs and completely once it
//! has ended ([`super::logship`]); the other nodes' runs are collected into this node's
//! log directories ([`super::logcollect`]) from a cursor kept in
//! `var/lib/karajo/cluster-log-cursor`, so a restarted node resumes where it stopped.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::Context;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::layout::Names;
use super::logcollect::{Collected, Collector};
use super::logship::{LogShipper, RunLogRef, last_log_message};
use crate::cluster::NodeName;
use crate::cluster::agent::{CollectedLog, LogDirs, LogReplica, RunEnd, ShipRun};
use crate::job::{JobId, JobKey, JobKind, RunStatus};
use crate::scheduler::RouteFuture;
use crate::store::run_log;

/// How often a running run's log is shipped from its file.
const SHIP_EVERY: Duration = Duration::from_millis(250);
/// The longest pause between two attempts to ship an ended run's log.
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How many collected messages may pass between two saves of the cursor.
const CURSOR_EVERY: u64 = 100;

/// Log replication through the log stream.
#[derive(Debug, Clone)]
pub struct NatsLogReplica {
    js: Context,
    names: Names,
    node: NodeName,
    op_timeout: Duration,
    cursor_file: PathBuf,
}

impl NatsLogReplica {
    /// Replication for `node`, keeping its collector's cursor in `cursor_file`.
    pub fn new(
        js: Context,
        names: Names,
        node: NodeName,
        op_timeout: Duration,
        cursor_file: PathBuf,
    ) -> Self {
        Self {
            js,
            names,
            node,
            op_timeout,
            cursor_file,
        }
    }
}

fn read_cursor(path: &std::path::Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

fn save_cursor(path: &std::path::Path, cursor: u64) {
    let tmp = path.with_extension("tmp");
    let saved =
        std::fs::write(&tmp, format!("{cursor}\n")).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(err) = saved {
        tracing::warn!(path = %path.display(), %err, "cannot save the log collector's cursor");
    }
}

impl LogReplica for NatsLogReplica {
    fn ship_run(&self, run: ShipRun, ended: oneshot::Receiver<RunEnd>) -> RouteFuture<()> {
        let this = self.clone();
        Box::pin(async move {
            let log = RunLogRef {
                kind: run.kind,
                job: run.job.clone(),
                counter: run.counter,
                run: run.run.clone(),
                node: this.node.clone(),
            };
            let mut shipper =
                match LogShipper::new(this.js.clone(), &this.names, &log, this.op_timeout) {
                    Ok(shipper) => shipper.continuing(run.first_chunk, run.from_offset),
                    Err(err) => {
                        tracing::error!(%err, "cannot ship a run's log");
                        return;
                    }
                };
            let running = run.log_dir.join(run_log::file_name(
                &run.job,
                run.counter,
                RunStatus::Running,
            ));
            let mut ended = ended;
            let end = loop {
                tokio::select! {
                    end = &mut ended => match end {
                        Ok(end) => break end,
                        Err(_) => return,
                    },
                    () = tokio::time::sleep(SHIP_EVERY) => {
                        if running.exists() {
                            // Behind or disconnected: the next round goes on from the file.
                            let _ = shipper.resume_from_file(&running).await;
                        }
                    }
                }
            };
            let mut pause = Duration::from_millis(200);
            loop {
                let shipped = match shipper.resume_from_file(&end.path).await {
                    Ok(_) => shipper.finish(end.status, end.at).await.map(drop),
                    Err(err) => Err(err),
                };
                match shipped {
                    Ok(()) => return,
                    Err(err) => {
                        tracing::warn!(path = %end.path.display(), %err, "a run's log is not shipped yet; trying again");
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(RETRY_MAX);
                    }
                }
            }
        })
    }

    fn final_status(
        &self,
        kind: JobKind,
        job: JobId,
        counter: u64,
    ) -> RouteFuture<Option<RunStatus>> {
        let this = self.clone();
        Box::pin(async move {
            match last_log_message(&this.js, &this.names, kind, &job, counter, this.op_timeout)
                .await
            {
                Ok(last) => last.and_then(|m| m.status),
                Err(err) => {
                    tracing::warn!(%err, "cannot read a lost run's log");
                    None
                }
            }
        })
    }

    fn collect(
        &self,
        log_dirs: LogDirs,
        done: mpsc::UnboundedSender<CollectedLog>,
        stop: CancellationToken,
    ) -> RouteFuture<()> {
        let this = self.clone();
        Box::pin(async move {
            while !stop.is_cancelled() {
                let cursor = read_cursor(&this.cursor_file);
                let dirs = log_dirs.clone();
                let started = Collector::start(
                    &this.js,
                    &this.names,
                    &this.node,
                    cursor,
                    Box::new(move |kind, id| dirs(kind, id)),
                    this.op_timeout,
                )
                .await;
                let mut collector = match started {
                    Ok((collector, gap)) => {
                        if let Some(gap) = gap {
                            tracing::warn!(
                                wanted = gap.wanted,
                                first = gap.first,
                                "some run logs are no longer in the log stream"
                            );
                        }
                        collector
                    }
                    Err(err) => {
                        tracing::debug!(%err, "cannot collect logs now");
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        }
                    }
                };
                let mut unsaved = 0;
                loop {
                    let next = tokio::select! {
                        () = stop.cancelled() => break,
                        next = collector.next() => next,
                    };
                    match next {
                        Ok(Some(Collected::Finished {
                            kind,
                            job,
                            counter,
                            status,
                            path,
                            ..
                        })) => {
                            save_cursor(&this.cursor_file, collector.cursor());
                            unsaved = 0;
                            let log = CollectedLog {
                                job: JobKey { kind, id: job },
                                counter,
                                status,
                                path,
                            };
                            if done.send(log).is_err() {
                                return;
                            }
                        }
                        Ok(Some(_)) => {
                            unsaved += 1;
                            if unsaved >= CURSOR_EVERY {
                                save_cursor(&this.cursor_file, collector.cursor());
                                unsaved = 0;
                            }
                        }
                        Ok(None) => break,
                        Err(err) => {
                            tracing::warn!(%err, "log collection stopped; starting again from the cursor");
                            break;
                        }
                    }
                }
                save_cursor(&this.cursor_file, collector.cursor());
            }
        })
    }
}
