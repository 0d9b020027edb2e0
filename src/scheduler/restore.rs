//! Start-up recovery of each job's runtime state from what is on disk: the run logs
//! (counter, last status, last run; interrupted runs closed as `failed`) and the state
//! file (paused flag, exact last run, counter). The state file wins where both speak,
//! except that a counter only ever grows. Monitors likewise, from their check-in logs
//! and state files, and the dynamic ones from `state/watchtower.json`.

use std::io;
use std::path::PathBuf;

use jiff::Timestamp;

use super::JobDef;
use super::monitors::RestoredMonitor;
use crate::job::{JobKind, RunStatus};
use crate::store::{Layout, LogEntry, StateFile, run_log};

/// A job's state as found on disk.
#[derive(Debug)]
pub struct RestoredJob {
    /// The job.
    pub def: JobDef,
    /// The newest run's status, `started` when it never ran.
    pub status: RunStatus,
    /// Paused by the API (state file), or by a newest `.paused` log of karajo (Go).
    pub paused: bool,
    /// The highest counter used so far.
    pub counter: u64,
    /// When the last run finished.
    pub last_run: Option<Timestamp>,
    /// The log files, oldest first.
    pub logs: Vec<LogEntry>,
    /// Where its logs are.
    pub log_dir: PathBuf,
    /// When its timer was to fire next, as the state file says (the start-up compares
    /// it with now for `catch_up`).
    pub next_run: Option<Timestamp>,
    /// A failed run's next attempt, as the state file says.
    pub retry: Option<crate::store::RetryState>,
}

/// Creates each job's directories and restores its state. Fails on the first job whose
/// directories cannot be created or read, naming the path. In `cluster_mode`, a cluster
/// job's `.running` logs stay open (see [`run_log::scan_with`]).
pub fn restore_jobs(
    layout: &Layout,
    defs: Vec<JobDef>,
    state: &StateFile,
    now: Timestamp,
    cluster_mode: bool,
) -> io::Result<Vec<RestoredJob>> {
    defs.into_iter()
        .map(|def| restore_job(layout, def, state, now, cluster_mode))
        .collect()
}

/// Restores one job (see [`restore_jobs`]).
pub(super) fn restore_job(
    layout: &Layout,
    def: JobDef,
    state: &StateFile,
    now: Timestamp,
    cluster_mode: bool,
) -> io::Result<RestoredJob> {
    let (kind, id) = (def.kind(), def.id().clone());
    let id = &id;
    let key = def.key();
    layout.ensure_job_dirs(kind, id)?;
    let log_dir = layout.log_dir(kind, id);
    let clustered = cluster_mode && def.common.run_on.is_cluster();
    let close = kind.closes_interrupted_runs() && !clustered;
    let mut scan = run_log::scan_with(&log_dir, kind, id, now, close)?;
    for entry in &scan.recovered {
        tracing::warn!(job = %key, counter = entry.counter, "run was interrupted by a stop of karajo; recorded as failed");
    }
    for path in &scan.ignored {
        tracing::warn!(job = %key, file = %path.display(), "ignoring a file in the log directory that is not a run log of this job");
    }
    let retention = def.common.log_retention;
    if let Err(err) = run_log::prune(&mut scan.entries, retention) {
        tracing::warn!(job = %key, %err, "cannot delete old run logs");
    }
    let saved = state.get(kind, id);
    let newest = scan.newest_status.unwrap_or(RunStatus::Started);
    let paused = match saved {
        Some(saved) => saved.paused,
        None => newest == RunStatus::Paused,
    };
    let status = if newest == RunStatus::Paused {
        scan.entries
            .iter()
            .rev()
            .map(|e| e.status)
            .find(|s| *s != RunStatus::Paused)
            .unwrap_or(RunStatus::Started)
    } else {
        newest
    };
    let counter = scan.max_counter.max(saved.map_or(0, |s| s.counter));
    let last_run = scan.last_run.max(saved.and_then(|s| s.last_run));
    Ok(RestoredJob {
        def,
        status,
        paused,
        counter,
        last_run,
        logs: scan.entries,
        log_dir,
        next_run: saved.and_then(|s| s.next_run),
        retry: saved.and_then(|s| s.retry),
    })
}

/// Restores every monitor of `specs`: its logs (open runs stay open) and its state
/// file. Fails on the first monitor whose log directory cannot be created or read.
pub fn restore_monitors(
    layout: &Layout,
    specs: &[crate::config::MonitorSpec],
    now: Timestamp,
) -> io::Result<Vec<RestoredMonitor>> {
    specs
        .iter()
        .map(|spec| restore_monitor(layout, std::sync::Arc::new(spec.clone()), now))
        .collect()
}

/// Restores one monitor (see [`restore_monitors`]).
pub(super) fn restore_monitor(
    layout: &Layout,
    spec: std::sync::Arc<crate::config::MonitorSpec>,
    now: Timestamp,
) -> io::Result<RestoredMonitor> {
    let id = &spec.id;
    let log_dir = layout.log_dir(JobKind::Monitor, id);
    crate::store::create_private_dir(&log_dir)?;
    let mut scan = run_log::scan(&log_dir, JobKind::Monitor, id, now)?;
    for path in &scan.ignored {
        tracing::warn!(monitor = %id, file = %path.display(), "ignoring a file in the log directory that is not a check-in log of this monitor");
    }
    if let Err(err) = run_log::prune(&mut scan.entries, spec.log_retention) {
        tracing::warn!(monitor = %id, %err, "cannot delete old check-in logs");
    }
    let (state, problem) =
        crate::store::monitor_files::load_state(&layout.monitor_state_file(id), now);
    if let Some(problem) = problem {
        tracing::warn!(monitor = %id, "monitor state file unusable: {problem}");
    }
    Ok(RestoredMonitor {
        spec,
        state,
        logs: scan.entries,
        log_dir,
    })
}

/// Restores the dynamic monitors watchTower pulses created (`state/watchtower.json`),
/// with what is on disk for each. A record whose id a configured monitor now has is
/// dropped (the configured monitor takes its state and logs), as is a second record of
/// one id. Fails on the first monitor whose log directory cannot be created or read.
pub fn restore_pulses(
    layout: &Layout,
    config: &crate::config::Config,
    now: Timestamp,
) -> io::Result<(Vec<crate::monitor::Pulse>, Vec<RestoredMonitor>)> {
    let (pulses, problem) =
        crate::store::monitor_files::load_pulses(&layout.watchtower_file(), now);
    if let Some(problem) = problem {
        tracing::warn!("watchTower monitors file unusable: {problem}");
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut kept = Vec::new();
    let mut monitors = Vec::new();
    for pulse in pulses {
        let id = pulse.id();
        if config.monitor(&id).is_some() || !seen.insert(id.clone()) {
            tracing::info!(monitor = %id, "a configured monitor replaces the watchTower one");
            continue;
        }
        let built = crate::monitor::pulse_spec(&pulse, config.watchtower.as_ref(), &config.notifs);
        monitors.push(restore_monitor(
            layout,
            std::sync::Arc::new(built.spec),
            now,
        )?);
        kept.push(pulse);
    }
    Ok((kept, monitors))
}

/// Restores every service of `specs`: its log segments (a running one stays open for
/// the machine to close or continue), its state file, and what became of the instance
/// that file records (monitors spec B.7 step 2). Fails on the first service whose log
/// directory cannot be created or read.
pub fn restore_services(
    layout: &Layout,
    specs: &[crate::config::ServiceSpec],
    now: Timestamp,
) -> io::Result<Vec<super::RestoredService>> {
    specs
        .iter()
        .map(|spec| restore_service(layout, std::sync::Arc::new(spec.clone()), now))
        .collect()
}

/// Restores one service (see [`restore_services`]).
pub(super) fn restore_service(
    layout: &Layout,
    spec: std::sync::Arc<crate::config::ServiceSpec>,
    now: Timestamp,
) -> io::Result<super::RestoredService> {
    use crate::service::{Leftover, SavedService};
    let id = &spec.id;
    let log_dir = layout.log_dir(JobKind::Service, id);
    crate::store::create_private_dir(&log_dir)?;
    let mut scan = run_log::scan(&log_dir, JobKind::Service, id, now)?;
    if let Err(err) = run_log::prune(&mut scan.entries, spec.log_retention) {
        tracing::warn!(service = %id, %err, "cannot delete old instance logs");
    }
    let (saved, problem) =
        crate::store::json_file::load::<SavedService>(&layout.service_state_file(id), now);
    if let Some(problem) = problem {
        tracing::warn!(service = %id, "service state file unusable: {problem}");
    }
    let found = match saved.as_ref().and_then(|s| s.instance.as_ref()) {
        None => Leftover::Nothing,
        Some(record)
            if crate::exec::service::recorded_alive(
                record.pid,
                record.starttime,
                &record.boot_id,
            ) =>
        {
            if record.watch == crate::service::Watch::PidFile && spec.pid_file.is_some() {
                // A daemon is adopted: its log goes on in a new segment, and the one
                // the previous karajo left open is closed as rotated.
                let segment = scan.max_counter + 1;
                for entry in scan
                    .entries
                    .iter_mut()
                    .filter(|e| e.status == RunStatus::Running)
                {
                    let line = format!("=== karajo stopped; continued in #{segment}");
                    match run_log::close_leftover(
                        &log_dir,
                        JobKind::Service,
                        id,
                        entry.counter,
                        RunStatus::Rotated,
                        &line,
                        now,
                    ) {
                        Ok(Some(path)) => {
                            entry.status = RunStatus::Rotated;
                            entry.path = path;
                        }
                        Ok(None) => {}
                        Err(err) => {
                            tracing::warn!(service = %id, %err, "cannot close the old segment")
                        }
                    }
                }
                Leftover::Adopted { segment }
            } else {
                Leftover::Orphan
            }
        }
        Some(_) => Leftover::Gone,
    };
    Ok(super::RestoredService {
        spec,
        saved,
        found,
        logs: scan.entries,
        log_dir,
    })
}

/// How long the state of a service that left the configuration is kept (monitors spec
/// B.7), so that putting it back within a week finds its choices and counters.
pub(super) const REMOVED_SERVICE_KEPT: std::time::Duration =
    std::time::Duration::from_secs(7 * 24 * 3600);

/// Deletes the state files (and histories) of services no longer configured whose
/// state was last written more than 7 days ago. Returns how many
/// services it forgot.
pub fn sweep_removed_services(layout: &Layout, config: &crate::config::Config) -> usize {
    let dir = layout.lib_dir().join("state/service");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let configured: std::collections::BTreeSet<String> = config
        .services
        .iter()
        .map(|s| s.id.as_str().to_string())
        .collect();
    let mut forgotten = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".json") else {
            continue;
        };
        if configured.contains(id) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > REMOVED_SERVICE_KEPT);
        if !old {
            continue;
        }
        let _ = std::fs::remove_file(entry.path());
        let _ = std::fs::remove_file(dir.join(format!("{id}.history.jsonl")));
        tracing::info!(service = %id, "forgot the state of a service removed more than 7 days ago");
        forgotten += 1;
    }
    forgotten
}

#[cfg(test)]
mod sweep_tests {
    use super::*;

    #[test]
    fn a_removed_service_is_forgotten_after_seven_days_and_not_before() {
        let base = tempfile::tempdir().unwrap();
        let layout = Layout::new(base.path());
        let dir = layout.lib_dir().join("state/service");
        std::fs::create_dir_all(&dir).unwrap();
        for id in ["old", "recent", "kept"] {
            std::fs::write(dir.join(format!("{id}.json")), "{}").unwrap();
            std::fs::write(dir.join(format!("{id}.history.jsonl")), "").unwrap();
        }
        let eight_days =
            std::time::SystemTime::now() - std::time::Duration::from_secs(8 * 24 * 3600);
        for id in ["old", "kept"] {
            let file = std::fs::File::options()
                .write(true)
                .open(dir.join(format!("{id}.json")))
                .unwrap();
            file.set_modified(eight_days).unwrap();
        }
        let text = "[service \"kept\"]\ncommand = true\n";
        let config_dir = tempfile::tempdir().unwrap();
        let file = config_dir.path().join("karajo.conf");
        std::fs::write(
            &file,
            format!("[karajo]\ndir_base = {}\n{text}", base.path().display()),
        )
        .unwrap();
        let config = crate::config::load(&file).unwrap();
        assert_eq!(sweep_removed_services(&layout, &config), 1);
        assert!(!dir.join("old.json").exists() && !dir.join("old.history.jsonl").exists());
        assert!(
            dir.join("recent.json").exists(),
            "removed less than 7 days ago"
        );
        assert!(dir.join("kept.json").exists(), "still configured");
    }
}
