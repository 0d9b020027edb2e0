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
use crate::job::{JobId, JobKind, RunStatus};
use crate::store::facts_cache::DirFacts;
use crate::store::{FactsCache, Layout, LogEntry, StateFile, run_log};

/// At most this many threads read the jobs' log directories at start-up.
const RESTORE_THREADS: usize = 4;

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
///
/// The logs' facts come from the log facts cache where it knows them (see
/// [`facts_cache`](crate::store::facts_cache)); when the scan had to read logs the
/// cache did not know, or the cache knew logs that are gone, the cache is written anew
/// on a thread of its own, so the start does not wait for it.
pub fn restore_jobs(
    layout: &Layout,
    defs: Vec<JobDef>,
    state: &StateFile,
    now: Timestamp,
    cluster_mode: bool,
) -> io::Result<Vec<RestoredJob>> {
    let path = layout.log_facts_file();
    let mut old = FactsCache::load(&path);
    let mut work: Vec<(JobDef, DirFacts)> = defs
        .into_iter()
        .map(|def| {
            let cached = old.take(def.kind(), def.id());
            (def, cached)
        })
        .collect();
    // The directories are independent: they are read by a few threads at once, each
    // taking a run of consecutive jobs, so the order stays the configuration's.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, RESTORE_THREADS);
    let per_thread = work.len().div_ceil(threads).max(1);
    let mut fresh = FactsCache::default();
    let mut jobs = Vec::with_capacity(work.len());
    std::thread::scope(|scope| {
        let mut chunks = Vec::new();
        while !work.is_empty() {
            let rest = work.split_off(per_thread.min(work.len()));
            let chunk = std::mem::replace(&mut work, rest);
            chunks.push(scope.spawn(move || {
                let mut fresh = FactsCache::default();
                let jobs = chunk
                    .into_iter()
                    .map(|(def, cached)| {
                        restore_job(layout, def, state, now, cluster_mode, cached, &mut fresh)
                    })
                    .collect::<io::Result<Vec<_>>>();
                (jobs, fresh)
            }));
        }
        for chunk in chunks {
            let (restored, part) = chunk
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            jobs.extend(restored?);
            fresh.absorb(part);
        }
        Ok::<_, io::Error>(())
    })?;
    if fresh.changed() || !old.is_empty() {
        std::thread::spawn(move || {
            if let Err(err) = fresh.save(&path) {
                tracing::warn!(%err, "cannot write the log facts cache");
            }
        });
    }
    Ok(jobs)
}

/// Brings the log facts cache up to date with the log directories of `jobs` (reading
/// only the logs it does not know), and writes it when that changed it: at shutdown,
/// so that the next start reads no log.
pub fn refresh_facts_cache(layout: &Layout, jobs: &[(JobKind, JobId)]) -> io::Result<()> {
    let path = layout.log_facts_file();
    let mut old = FactsCache::load(&path);
    let mut fresh = FactsCache::default();
    let now = Timestamp::now();
    for (kind, id) in jobs {
        let cached = old.take(*kind, id);
        let scan = run_log::scan_with(&layout.log_dir(*kind, id), *kind, id, now, false, cached)?;
        fresh.insert(*kind, id, scan.cache, scan.cache_changed);
    }
    if fresh.changed() || !old.is_empty() {
        fresh.save(&path)?;
    }
    Ok(())
}

/// Restores one job (see [`restore_jobs`]), with the log facts the cache holds for its
/// directory; puts what the cache is to hold for it now in `fresh`.
pub(super) fn restore_job(
    layout: &Layout,
    def: JobDef,
    state: &StateFile,
    now: Timestamp,
    cluster_mode: bool,
    cached: DirFacts,
    fresh: &mut FactsCache,
) -> io::Result<RestoredJob> {
    let (kind, id) = (def.kind(), def.id().clone());
    let id = &id;
    let key = def.key();
    layout.ensure_job_dirs(kind, id)?;
    let log_dir = layout.log_dir(kind, id);
    let clustered = cluster_mode && def.common.run_on.is_cluster();
    let close = kind.closes_interrupted_runs() && !clustered;
    let mut scan = run_log::scan_with(&log_dir, kind, id, now, close, cached)?;
    for entry in &scan.recovered {
        tracing::warn!(job = %key, counter = entry.counter, "run was interrupted by a stop of karajo; recorded as failed");
    }
    for path in &scan.ignored {
        tracing::warn!(job = %key, file = %path.display(), "ignoring a file in the log directory that is not a run log of this job");
    }
    let retention = def.common.log_retention;
    match run_log::prune(&mut scan.entries, retention) {
        Ok(pruned) => {
            for path in pruned {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let pruned = run_log::parse_name(name, id.as_str());
                scan.cache_changed |= pruned.and_then(|k| scan.cache.logs.remove(&k)).is_some();
            }
        }
        Err(err) => tracing::warn!(job = %key, %err, "cannot delete old run logs"),
    }
    fresh.insert(
        kind,
        id,
        std::mem::take(&mut scan.cache),
        scan.cache_changed,
    );
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

#[cfg(test)]
mod facts_cache_tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::job::Trigger;
    use crate::store::framing;

    fn defs(base: &Path) -> Vec<JobDef> {
        let etc = base.join("etc/karajo");
        std::fs::create_dir_all(&etc).unwrap();
        let conf = format!(
            "[karajo]\ndir_base = {}\n[job \"a\"]\ncommand = true\n[job \"b\"]\ncommand = true\nlog_retention = 2\n",
            base.display()
        );
        std::fs::write(etc.join("karajo.conf"), conf).unwrap();
        let config = crate::config::load_with(&etc.join("karajo.conf"), &|_| false).unwrap();
        let replay = Arc::new(crate::auth::replay::ReplayGuard::new(
            16,
            Default::default(),
        ));
        crate::daemon::job_defs(&config, &Default::default(), "127.0.0.1:1", &replay).unwrap()
    }

    /// Writes run `counter` of command job `id`: started by `trigger` at second
    /// `start`, its one command exiting `code` a second later.
    fn write_log(layout: &Layout, id: &str, counter: u64, trigger: Trigger, start: i64, code: i32) {
        let id = JobId::from_raw(id);
        let at =
            |s: i64| framing::line_prefix(JobKind::Exec, &id, Timestamp::from_second(s).unwrap());
        let (status, closing) = match code {
            0 => (RunStatus::Success, framing::done(JobKind::Exec, &id)),
            code => (
                RunStatus::Failed,
                framing::failed(JobKind::Exec, &id, format!("exit status {code}")),
            ),
        };
        let text = format!(
            "{}{}\n{}{}\n{}{}\n{}{}\n",
            at(start),
            framing::begin(),
            at(start),
            framing::trigger(trigger),
            at(start),
            framing::execute(0, "true"),
            at(start + 1),
            closing
        );
        let dir = layout.log_dir(JobKind::Exec, &id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(run_log::file_name(&id, counter, status)), text).unwrap();
    }

    fn restore(layout: &Layout, base: &Path) -> Vec<RestoredJob> {
        restore_jobs(
            layout,
            defs(base),
            &StateFile::default(),
            Timestamp::now(),
            false,
        )
        .unwrap()
    }

    fn logs(jobs: &[RestoredJob]) -> Vec<Vec<LogEntry>> {
        jobs.iter().map(|j| j.logs.clone()).collect()
    }

    #[test]
    fn facts_from_the_cache_are_those_of_the_logs_and_a_replaced_log_is_read_again() {
        let base = tempfile::tempdir().unwrap();
        let layout = Layout::new(base.path());
        write_log(&layout, "a", 1, Trigger::Timer, 1_700_000_000, 0);
        write_log(&layout, "a", 2, Trigger::Webhook, 1_700_000_100, 3);
        write_log(&layout, "b", 7, Trigger::CatchUp, 1_700_000_200, 0);
        let read = logs(&restore(&layout, base.path()));
        assert_eq!(read[0][1].facts.exit_code, Some(3));
        assert_eq!(read[0][1].facts.trigger, Some(Trigger::Webhook));

        let jobs = [
            (JobKind::Exec, JobId::from_raw("a")),
            (JobKind::Exec, JobId::from_raw("b")),
        ];
        refresh_facts_cache(&layout, &jobs).unwrap();
        let cache = FactsCache::load(&layout.log_facts_file());
        assert_eq!(cache.len(), 3);
        // The logs' contents no longer matter to a start: only the cache is read...
        let dir = layout.log_dir(JobKind::Exec, &JobId::from_raw("a"));
        let first = dir.join("a.1.success");
        let modified = std::fs::metadata(&first).unwrap().modified().unwrap();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&first)
            .unwrap();
        file.set_len(0).unwrap();
        file.set_modified(modified).unwrap();
        drop(file);
        assert_eq!(logs(&restore(&layout, base.path())), read);

        // ...until a log is another file under the same name (a new inode): it is read.
        std::fs::remove_file(dir.join("a.2.failed")).unwrap();
        write_log(&layout, "a", 2, Trigger::Api, 1_700_000_300, 4);
        let again = logs(&restore(&layout, base.path()));
        assert_eq!(again[0][1].facts.trigger, Some(Trigger::Api));
        assert_eq!(again[0][1].facts.exit_code, Some(4));
        assert_eq!(again[1], read[1]);

        // A damaged cache is not used: every log is read.
        std::fs::write(layout.log_facts_file(), "karajo log facts 1\njob/a\t1\n").unwrap();
        let unread = logs(&restore(&layout, base.path()));
        assert_eq!(unread[0][0].facts.trigger, None, "a.1 is empty now");
        assert_eq!(unread[0][1], again[0][1]);
    }

    #[test]
    fn the_cache_forgets_pruned_and_deleted_logs() {
        let base = tempfile::tempdir().unwrap();
        let layout = Layout::new(base.path());
        for counter in 1..=3 {
            write_log(
                &layout,
                "b",
                counter,
                Trigger::Timer,
                1_700_000_000 + counter as i64,
                0,
            );
        }
        write_log(&layout, "a", 1, Trigger::Timer, 1_700_000_000, 0);
        let jobs = [
            (JobKind::Exec, JobId::from_raw("a")),
            (JobKind::Exec, JobId::from_raw("b")),
        ];
        refresh_facts_cache(&layout, &jobs).unwrap();
        assert_eq!(FactsCache::load(&layout.log_facts_file()).len(), 4);
        // b keeps 2 logs: the start prunes #1, and the cache written after it forgets it.
        let restored = restore(&layout, base.path());
        assert_eq!(restored[1].logs.len(), 2);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while FactsCache::load(&layout.log_facts_file()).len() != 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "the cache was not rewritten"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        std::fs::remove_file(
            layout
                .log_dir(JobKind::Exec, &JobId::from_raw("a"))
                .join("a.1.success"),
        )
        .unwrap();
        refresh_facts_cache(&layout, &jobs).unwrap();
        let mut cache = FactsCache::load(&layout.log_facts_file());
        assert!(
            cache
                .take(JobKind::Exec, &JobId::from_raw("a"))
                .logs
                .is_empty()
        );
        assert_eq!(cache.len(), 2);
    }
}
