//! A job's scheduling policies (issue 15), read from its section and checked: retries
//! with back-off (`retry`, `retry_delay`, `retry_delay_max`, `notif_on_retry`), what a
//! trigger does while a run goes on (`overlap`, `max_parallel`), what a start does
//! about slots missed while karajo was down (`catch_up`, `catch_up_window`), a stable
//! delay that spreads jobs due at once (`jitter`), and the jobs a run's end starts
//! (`on_success`, `on_failure`), with the checks across jobs that chains need (unknown
//! targets, cycles). Every key is optional; without them a job behaves as the Go
//! original's. Bad values are errors naming the file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use super::fields::{Fields, Problems, positive};

/// The policy keys a job section may hold, besides its kind's own.
pub(crate) const POLICY_KEYS: &[&str] = &[
    "retry",
    "retry_delay",
    "retry_delay_max",
    "notif_on_retry",
    "overlap",
    "max_parallel",
    "catch_up",
    "catch_up_window",
    "jitter",
    "on_success",
    "on_failure",
];

/// `retry_delay` when not set: the first retry waits this long.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(30);
/// `retry_delay_max` when not set: no retry waits longer.
pub const DEFAULT_RETRY_DELAY_MAX: Duration = Duration::from_secs(600);
/// `catch_up_window` when not set: slots older than this are not caught up.
pub const DEFAULT_CATCH_UP_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// The most retries a job may ask for.
pub const RETRY_MAX: u32 = 100;
/// The most missed slots `catch_up = all` runs at one start.
pub const CATCH_UP_ALL_MAX: usize = 100;

/// What a trigger (web hook, API run, timer tick, chain) does while a run of the job
/// goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overlap {
    /// One trigger waits; further ones are refused with 429 (the original's rule).
    #[default]
    Queue,
    /// Refused with 429 and recorded as skipped.
    Skip,
    /// The running run is canceled and the new one starts.
    Replace,
    /// Runs side by side, at most `max_parallel` (`None`: only `max_job_running`
    /// bounds them).
    Allow {
        /// The most runs of the job at once.
        max_parallel: Option<u32>,
    },
}

/// What a start does about timer slots missed while karajo was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CatchUp {
    /// Nothing: a missed slot is skipped (the original's rule).
    #[default]
    None,
    /// One run, if any slot was missed within the window.
    Once,
    /// Every missed slot within the window, in order, at most [`CATCH_UP_ALL_MAX`].
    All,
}

/// A job's policies. The default is the Go original's behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policies {
    /// How many times a failed run is retried.
    pub retry: u32,
    /// The first retry's delay; each next one doubles, with full jitter.
    pub retry_delay: Duration,
    /// The longest delay between two attempts.
    pub retry_delay_max: Duration,
    /// The notifications sent when an attempt fails and another follows.
    pub notif_on_retry: Vec<String>,
    /// What a trigger does while a run goes on.
    pub overlap: Overlap,
    /// What a start does about missed slots.
    pub catch_up: CatchUp,
    /// How far back `catch_up` looks.
    pub catch_up_window: Duration,
    /// The upper bound of the job's stable start delay (`0`: none).
    pub jitter: Duration,
    /// Jobs started when a run succeeds, by name.
    pub on_success: Vec<Chain>,
    /// Jobs started when a run fails, by name.
    pub on_failure: Vec<Chain>,
}

impl Default for Policies {
    fn default() -> Self {
        Self {
            retry: 0,
            retry_delay: DEFAULT_RETRY_DELAY,
            retry_delay_max: DEFAULT_RETRY_DELAY_MAX,
            notif_on_retry: Vec::new(),
            overlap: Overlap::default(),
            catch_up: CatchUp::default(),
            catch_up_window: DEFAULT_CATCH_UP_WINDOW,
            jitter: Duration::ZERO,
            on_success: Vec::new(),
            on_failure: Vec::new(),
        }
    }
}

/// One job a chain starts: its name as written, and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The target job's name.
    pub job: String,
    /// The line of the `on_success` or `on_failure` that names it.
    pub line: usize,
}

/// Reads the policy keys of one job section; `interval` is the job's, for the jitter
/// check. Problems go to `problems` with the file and line.
pub(crate) fn read_policies(
    f: &Fields,
    interval: Option<Duration>,
    problems: &mut Problems,
) -> Policies {
    let mut policies = Policies {
        retry: read_retry(f, problems),
        notif_on_retry: f.list("notif_on_retry"),
        overlap: read_overlap(f, problems),
        catch_up: read_word(f, "catch_up", CATCH_UP_WORDS, problems).unwrap_or_default(),
        jitter: f
            .non_negative_duration("jitter", problems)
            .unwrap_or_default(),
        on_success: read_chain(f, "on_success"),
        on_failure: read_chain(f, "on_failure"),
        ..Policies::default()
    };
    if let Some(delay) = read_positive(f, "retry_delay", problems) {
        policies.retry_delay = delay;
    }
    if let Some(max) = read_positive(f, "retry_delay_max", problems) {
        policies.retry_delay_max = max;
    }
    if policies.retry_delay_max < policies.retry_delay
        && let Some(var) = f.last("retry_delay_max").or_else(|| f.last("retry_delay"))
    {
        let message = format!(
            "retry_delay_max ({}) is shorter than retry_delay ({}): the longest wait must be at least the first",
            crate::config::duration::format_short(policies.retry_delay_max),
            crate::config::duration::format_short(policies.retry_delay),
        );
        problems.error(&f.file, var.line, message);
    }
    if let Some(window) = read_positive(f, "catch_up_window", problems) {
        policies.catch_up_window = window;
    }
    if let (Some(interval), Some(var)) = (interval, f.last("jitter"))
        && !policies.jitter.is_zero()
        && policies.jitter >= interval
    {
        let message = format!(
            "jitter = {:?} is not shorter than the interval ({}): a delayed start would meet the next one",
            var.value,
            crate::config::duration::format_short(interval),
        );
        problems.error(&f.file, var.line, message);
    }
    policies
}

/// `retry`: 0 to [`RETRY_MAX`].
fn read_retry(f: &Fields, problems: &mut Problems) -> u32 {
    let Some(n) = f.integer("retry", problems) else {
        return 0;
    };
    match u32::try_from(n).ok().filter(|n| *n <= RETRY_MAX) {
        Some(n) => n,
        None => {
            if let Some(var) = f.last("retry") {
                let message = format!("retry = {n} is invalid: expected 0 to {RETRY_MAX} retries");
                problems.error(&f.file, var.line, message);
            }
            0
        }
    }
}

/// A duration that must be more than zero; zero or negative is an error.
fn read_positive(f: &Fields, key: &str, problems: &mut Problems) -> Option<Duration> {
    let value = f.duration(key, problems)?;
    let positive = positive(value);
    if positive.is_none()
        && let Some(var) = f.last(key)
    {
        let message = format!(
            "{key} = {:?} is invalid: it must be more than 0s",
            var.value
        );
        problems.error(&f.file, var.line, message);
    }
    positive
}

const OVERLAP_WORDS: &[(&str, Overlap)] = &[
    ("queue", Overlap::Queue),
    ("skip", Overlap::Skip),
    ("replace", Overlap::Replace),
    ("allow", Overlap::Allow { max_parallel: None }),
];

const CATCH_UP_WORDS: &[(&str, CatchUp)] = &[
    ("none", CatchUp::None),
    ("once", CatchUp::Once),
    ("all", CatchUp::All),
];

/// One of `words` (case-insensitive); `None` when absent or (with an error naming
/// the choices) unknown.
fn read_word<T: Copy>(
    f: &Fields,
    key: &str,
    words: &[(&str, T)],
    problems: &mut Problems,
) -> Option<T> {
    let var = f.last(key).filter(|v| !v.value.trim().is_empty())?;
    let word = var.value.trim().to_ascii_lowercase();
    let found = words.iter().find(|(w, _)| *w == word).map(|(_, v)| *v);
    if found.is_none() {
        let choices: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
        let message = format!(
            "{key} = {:?} is invalid: expected one of {}",
            var.value,
            choices.join(", ")
        );
        problems.error(&f.file, var.line, message);
    }
    found
}

/// `overlap` and `max_parallel`, which only `overlap = allow` takes.
fn read_overlap(f: &Fields, problems: &mut Problems) -> Overlap {
    let overlap = read_word(f, "overlap", OVERLAP_WORDS, problems).unwrap_or_default();
    let Some(var) = f.last("max_parallel").filter(|v| !v.value.is_empty()) else {
        return overlap;
    };
    let Some(n) = f.integer("max_parallel", problems) else {
        return overlap;
    };
    let Some(n) = u32::try_from(n).ok().filter(|n| *n >= 1) else {
        let message = format!("max_parallel = {n} is invalid: expected at least 1");
        problems.error(&f.file, var.line, message);
        return overlap;
    };
    match overlap {
        Overlap::Allow { .. } => Overlap::Allow {
            max_parallel: Some(n),
        },
        _ => {
            problems.error(
                &f.file,
                var.line,
                "max_parallel needs overlap = allow (runs of one job side by side)",
            );
            overlap
        }
    }
}

/// The job names of every `key` line (comma-separated), each with its line.
fn read_chain(f: &Fields, key: &str) -> Vec<Chain> {
    f.all(key)
        .flat_map(|var| {
            var.value
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(|name| Chain {
                    job: name.to_string(),
                    line: var.line,
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A job as the chain checks see it: its name, file and policies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChainedJob<'a> {
    /// The job's name.
    pub(crate) name: &'a str,
    /// Its file.
    pub(crate) file: &'a PathBuf,
    /// Its policies.
    pub(crate) policies: &'a Policies,
}

/// Checks every chain across `jobs`: a target must be a defined job (names are
/// compared as karajo compares them, case-insensitively), and no chain may lead back
/// to where it started; each problem names the file and line that make it.
pub(crate) fn check_chains(jobs: &[ChainedJob<'_>], problems: &mut Problems) {
    let key = |name: &str| name.trim().to_ascii_lowercase();
    let by_name: BTreeMap<String, &ChainedJob<'_>> =
        jobs.iter().map(|job| (key(job.name), job)).collect();
    let mut edges: BTreeMap<String, ChainPath> = BTreeMap::new();
    for job in jobs {
        for chain in job
            .policies
            .on_success
            .iter()
            .chain(&job.policies.on_failure)
        {
            if by_name.contains_key(&key(&chain.job)) {
                edges
                    .entry(key(job.name))
                    .or_default()
                    .push((key(&chain.job), chain.line));
            } else {
                let names: Vec<&str> = jobs.iter().map(|j| j.name).collect();
                let hint = crate::suggest::did_you_mean(&chain.job, &names);
                let message = format!(
                    "job {:?} chains to {:?}, which is not a job{hint}",
                    job.name, chain.job
                );
                problems.error(job.file, chain.line, message);
            }
        }
    }
    // A cycle is reported once, at the chain line that closes it.
    let mut reported: BTreeSet<Vec<String>> = BTreeSet::new();
    for start in edges.keys() {
        let mut path = vec![(start.clone(), 0usize)];
        find_cycles(start, &edges, &mut path, &mut |cycle| {
            let mut members: Vec<String> = cycle.iter().map(|(n, _)| n.clone()).collect();
            members.sort();
            if !reported.insert(members) {
                return;
            }
            let (closing, line) = (&cycle[cycle.len() - 1].0, cycle[0].1);
            let Some(job) = by_name.get(closing) else {
                return;
            };
            let mut places: Vec<String> = Vec::new();
            for (i, (name, _)) in cycle.iter().enumerate() {
                let next_line = cycle.get(i + 1).map_or(cycle[0].1, |(_, l)| *l);
                if let Some(j) = by_name.get(name) {
                    places.push(format!("{} ({}:{next_line})", j.name, j.file.display()));
                }
            }
            let message = format!(
                "the chains of jobs form a cycle: {} -> {}",
                places.join(" -> "),
                cycle[0].0
            );
            problems.error(job.file, line, message);
        });
    }
}

/// A chain of jobs: each job's key with the line of the chain that reaches it.
type ChainPath = Vec<(String, usize)>;

/// Walks the chains from the end of `path`, calling `found` with each cycle back to
/// its first job: the jobs in order, each with the line of the chain that reaches it.
fn find_cycles(
    start: &str,
    edges: &BTreeMap<String, ChainPath>,
    path: &mut ChainPath,
    found: &mut dyn FnMut(&ChainPath),
) {
    let Some((current, _)) = path.last().cloned() else {
        return;
    };
    for (next, line) in edges.get(&current).into_iter().flatten() {
        if next == start {
            let mut cycle = path.clone();
            cycle[0].1 = *line;
            found(&cycle);
        } else if !path.iter().any(|(n, _)| n == next) {
            path.push((next.clone(), *line));
            find_cycles(start, edges, path, found);
            path.pop();
        }
    }
}

#[cfg(test)]
mod tests;
