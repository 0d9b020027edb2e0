//! `karajo check`: loads the configuration exactly as the daemon would at start-up
//! (through [`Daemon::load_config`]), prints every error and warning with its file and
//! line, then when each job will run (the next five times of a schedule, the interval
//! rule, or the web hook), when each monitor expects its check-ins, each service in one
//! line, and the longest a clean shutdown can take (monitors spec B.6), so an operator
//! can size systemd's `TimeoutStopSec=`. It reads files only; it starts nothing. When a
//! daemon holds the lock on the configuration's `dir_base` it says so, as information:
//! the probe takes a shared lock for an instant and creates nothing.
//!
//! With `--format json` ([`run_json`]) the same report is one JSON object on standard
//! output, for CI pipelines and editors: `ok`, `errors` and `warnings` (each with
//! `file`, `line` and `message`), then `jobs`, `monitors` and `services` with their
//! timing, and `daemon_pid` when a daemon holds the lock. The exit code is the same.

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::config::{Cadence, Config, Diagnostic, MonitorSpec, ServiceSpec, ShutdownBudget};
use crate::job::JobKind;
use crate::schedule::Schedule;
use crate::store::Layout;
use crate::{Daemon, DaemonError};

/// How many upcoming runs of a schedule are shown.
pub const UPCOMING: usize = 5;

/// How many characters of a service's command its line shows.
const COMMAND_SHOWN: usize = 40;

/// How `karajo check` writes its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CheckFormat {
    /// Lines for a human.
    #[default]
    Text,
    /// One JSON object.
    Json,
}

/// The arguments of `karajo check`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CheckArgs {
    /// The format of the report.
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
}

/// Checks `config_file` as of `now` and writes the report to `out`. Returns whether the
/// configuration has no error (warnings allowed).
pub fn run(config_file: &Path, now: Timestamp, out: &mut dyn Write) -> io::Result<bool> {
    match Daemon::new(config_file).load_config() {
        Ok((config, _)) => {
            print_diagnostics(out, &[], &config.warnings)?;
            print_cluster(out, &config)?;
            print_jobs(out, &config, now)?;
            print_monitors(out, &config, now)?;
            print_services(out, &config)?;
            print_running_daemon(out, &config)?;
            writeln!(
                out,
                "{}: {}, {}{}{}: OK{}",
                config_file.display(),
                plural(config.jobs_of(JobKind::Exec).count(), "job"),
                plural(config.jobs_of(JobKind::Http).count(), "HTTP job"),
                match config.monitors.len() {
                    0 => String::new(),
                    n => format!(", {}", plural(n, "monitor")),
                },
                match config.services.len() {
                    0 => String::new(),
                    n => format!(", {}", plural(n, "service")),
                },
                match config.warnings.len() {
                    0 => String::new(),
                    n => format!(" ({})", plural(n, "warning")),
                }
            )?;
            Ok(true)
        }
        Err(DaemonError::Config(problems)) => {
            print_diagnostics(out, &problems.errors, &problems.warnings)?;
            writeln!(
                out,
                "{}: {}, {}",
                config_file.display(),
                plural(problems.errors.len(), "error"),
                plural(problems.warnings.len(), "warning"),
            )?;
            Ok(false)
        }
        Err(other) => {
            writeln!(out, "error: {other}")?;
            Ok(false)
        }
    }
}

/// Checks `config_file` as of `now` and writes the report to `out` as one JSON
/// object (and a newline). Returns whether the configuration has no error.
pub fn run_json(config_file: &Path, now: Timestamp, out: &mut dyn Write) -> io::Result<bool> {
    use serde_json::{Value, json};
    let mut report = serde_json::Map::new();
    report.insert("config".into(), json!(config_file.display().to_string()));
    let ok = match Daemon::new(config_file).load_config() {
        Ok((config, _)) => {
            report.insert("ok".into(), json!(true));
            report.insert("errors".into(), json!([]));
            report.insert("warnings".into(), diagnostics_json(&config.warnings));
            report.insert("jobs".into(), jobs_json(&config, now));
            report.insert(
                "monitors".into(),
                Value::Array(
                    config
                        .monitors
                        .iter()
                        .map(|m| monitor_json(m, now))
                        .collect(),
                ),
            );
            report.insert(
                "services".into(),
                Value::Array(config.services.iter().map(service_json).collect()),
            );
            let pid = match crate::daemon::lock::holder(&Layout::new(&config.dir_base)) {
                Ok(Some(Some(pid))) => json!(pid),
                _ => Value::Null,
            };
            report.insert("daemon_pid".into(), pid);
            true
        }
        Err(DaemonError::Config(problems)) => {
            report.insert("ok".into(), json!(false));
            report.insert("errors".into(), diagnostics_json(&problems.errors));
            report.insert("warnings".into(), diagnostics_json(&problems.warnings));
            false
        }
        Err(other) => {
            report.insert("ok".into(), json!(false));
            report.insert(
                "errors".into(),
                json!([{
                    "file": config_file.display().to_string(),
                    "line": 0,
                    "message": other.to_string(),
                }]),
            );
            report.insert("warnings".into(), json!([]));
            false
        }
    };
    serde_json::to_writer_pretty(&mut *out, &Value::Object(report))?;
    writeln!(out)?;
    Ok(ok)
}

fn diagnostics_json(list: &[Diagnostic]) -> serde_json::Value {
    serde_json::Value::Array(
        list.iter()
            .map(|d| {
                serde_json::json!({
                    "file": d.file.display().to_string(),
                    "line": d.line,
                    "message": d.message,
                })
            })
            .collect(),
    )
}

fn schedule_json(schedule: &Schedule, now: Timestamp) -> serde_json::Value {
    let tz = schedule.timezone();
    let next: Vec<String> = schedule
        .upcoming(now, UPCOMING)
        .into_iter()
        .map(|at| at.to_zoned(tz.clone()).to_string())
        .collect();
    serde_json::json!({
        "expr": schedule.as_str(),
        "description": schedule.describe(),
        "timezone": tz.iana_name(),
        "next": next,
    })
}

fn jobs_json(config: &Config, now: Timestamp) -> serde_json::Value {
    let jobs = config.jobs.iter().map(|spec| {
        let job = &spec.common;
        let mut o = serde_json::Map::new();
        o.insert("kind".into(), spec.kind().as_str().into());
        o.insert("name".into(), job.name.clone().into());
        o.insert("id".into(), job.id.as_str().into());
        o.insert("file".into(), job.file.display().to_string().into());
        o.insert("line".into(), job.line.into());
        o.insert(
            "schedule".into(),
            job.schedule
                .as_ref()
                .map_or(serde_json::Value::Null, |s| schedule_json(s, now)),
        );
        let interval = match (&job.schedule, job.interval) {
            (None, Some(interval)) => super::short_duration(interval).into(),
            _ => serde_json::Value::Null,
        };
        o.insert("interval".into(), interval);
        o.insert(
            "path".into(),
            spec.kind
                .webhook_path()
                .map_or(serde_json::Value::Null, Into::into),
        );
        if config.cluster.enabled {
            o.insert("run_on".into(), run_on_words(&job.run_on).into());
        }
        serde_json::Value::Object(o)
    });
    serde_json::Value::Array(jobs.collect())
}

fn monitor_json(monitor: &MonitorSpec, now: Timestamp) -> serde_json::Value {
    let rules = &monitor.rules;
    let (period, schedule) = match &rules.cadence {
        Cadence::Period(period) => (
            serde_json::Value::from(super::short_duration(*period)),
            serde_json::Value::Null,
        ),
        Cadence::Schedule { schedule, .. } => {
            (serde_json::Value::Null, schedule_json(schedule, now))
        }
    };
    serde_json::json!({
        "name": monitor.name,
        "id": monitor.id.as_str(),
        "file": monitor.file.display().to_string(),
        "line": monitor.line,
        "period": period,
        "schedule": schedule,
        "grace": super::short_duration(rules.grace),
        "ping_path": format!("{}{}", crate::config::model::MONITOR_PING_ROUTE, monitor.path),
        "auth_kind": monitor.auth.as_str(),
    })
}

fn service_json(service: &ServiceSpec) -> serde_json::Value {
    serde_json::json!({
        "name": service.name,
        "id": service.id.as_str(),
        "priority": service.priority,
        "restart": service.policy.restart.as_str(),
        "command": shorten_command(&service.command),
    })
}

fn print_diagnostics(
    out: &mut dyn Write,
    errors: &[Diagnostic],
    warnings: &[Diagnostic],
) -> io::Result<()> {
    for error in errors {
        writeln!(out, "error: {error}")?;
    }
    for warning in warnings {
        writeln!(out, "warning: {warning}")?;
    }
    Ok(())
}

/// Says whether a daemon is running on the configuration's `dir_base`.
fn print_running_daemon(out: &mut dyn Write, config: &Config) -> io::Result<()> {
    let layout = Layout::new(&config.dir_base);
    match crate::daemon::lock::holder(&layout) {
        Ok(None) => Ok(()),
        Ok(Some(Some(pid))) => writeln!(
            out,
            "info: a karajo daemon (pid {pid}) is running on this dir_base"
        ),
        Ok(Some(None)) => writeln!(
            out,
            "info: a karajo daemon (pid unknown) is running on this dir_base"
        ),
        Err(err) => writeln!(
            out,
            "info: cannot tell whether a karajo daemon is running on this dir_base: {}: {err}",
            layout.lock_file().display()
        ),
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// When one job runs.
struct Timing<'a> {
    schedule: Option<&'a Schedule>,
    interval: Option<Duration>,
    path: Option<&'a str>,
    /// `jitter`: how late every start is after its slot.
    offset: Duration,
}

fn print_jobs(out: &mut dyn Write, config: &Config, now: Timestamp) -> io::Result<()> {
    for spec in &config.jobs {
        let job = &spec.common;
        writeln!(
            out,
            "{} {:?} ({}):",
            spec.kind().section(),
            job.name,
            job.id
        )?;
        let timing = Timing {
            schedule: job.schedule.as_ref(),
            interval: job.interval,
            path: spec.kind.webhook_path(),
            offset: job.policies.jitter_offset(&spec.key()),
        };
        print_timing(out, &timing, now)?;
        print_hooks(out, spec)?;
        if config.cluster.enabled {
            writeln!(out, "  runs on {}", run_on_words(&job.run_on))?;
        }
        for (label, text) in job.policies.describe(&spec.key()) {
            writeln!(out, "  {}: {text}", label.to_ascii_lowercase())?;
        }
        for (label, chain) in [
            ("on success", &job.policies.on_success),
            ("on failure", &job.policies.on_failure),
        ] {
            if !chain.is_empty() {
                let names: Vec<&str> = chain.iter().map(|c| c.job.as_str()).collect();
                writeln!(out, "  {label}: starts {}", names.join(", "))?;
            }
        }
    }
    Ok(())
}

/// A command job's web hook rules and run parameters (issue 15), a line each.
fn print_hooks(out: &mut dyn Write, spec: &crate::config::JobSpec) -> io::Result<()> {
    let crate::config::JobKindSpec::Exec(exec) = &spec.kind else {
        return Ok(());
    };
    if let Some(rules) = exec.hook_rules.describe(exec.auth_kind.as_str()) {
        writeln!(out, "  {rules}")?;
    }
    if let Some(params) = exec.params.describe() {
        writeln!(out, "  {params}")?;
    }
    Ok(())
}

/// Cluster mode, when it is on: this node, its tags, where NATS is and how it
/// authenticates (never the credentials themselves).
fn print_cluster(out: &mut dyn Write, config: &Config) -> io::Result<()> {
    let cluster = &config.cluster;
    if !cluster.enabled {
        return Ok(());
    }
    let tags = match cluster.tags.as_slice() {
        [] => String::new(),
        tags => format!(", tags {}", tags.join(", ")),
    };
    let auth = match &cluster.auth {
        crate::cluster::NatsAuth::None => "no credentials".to_string(),
        crate::cluster::NatsAuth::Creds(path) => format!("creds file {}", path.display()),
        crate::cluster::NatsAuth::NkeySeed(path) => format!("nkey seed file {}", path.display()),
        crate::cluster::NatsAuth::UserPassword { user, .. } => {
            format!("user {user} and a password")
        }
        crate::cluster::NatsAuth::Token(_) => "a token".to_string(),
    };
    writeln!(
        out,
        "cluster: node {}{tags}; NATS at {} with {auth}; prefix {}",
        cluster.node,
        cluster.nats_urls.join(", "),
        cluster.prefix
    )
}

/// Where a job's runs go, in words.
fn run_on_words(run_on: &crate::cluster::RunOn) -> String {
    use crate::cluster::RunOn;
    match run_on {
        RunOn::Local => "every node, each on its own timer (run_on = local)".to_string(),
        RunOn::Any => "one free node per run (run_on = any)".to_string(),
        RunOn::All => "every live node per run (run_on = all)".to_string(),
        RunOn::Node(node) => format!("node {node} only"),
        RunOn::Tag(tag) => format!("one free node tagged {tag} per run"),
    }
}

/// The monitors, when they expect check-ins and where they are pinged. The count
/// joins the summary line only when there are monitors, so the report of a
/// configuration without any reads as before.
fn print_monitors(out: &mut dyn Write, config: &Config, now: Timestamp) -> io::Result<()> {
    for monitor in &config.monitors {
        print_monitor(out, monitor, now)?;
    }
    Ok(())
}

fn print_monitor(out: &mut dyn Write, monitor: &MonitorSpec, now: Timestamp) -> io::Result<()> {
    writeln!(out, "monitor {:?} ({}):", monitor.name, monitor.id)?;
    let rules = &monitor.rules;
    let overdue = match &rules.cadence {
        Cadence::Period(period) => {
            let period = super::short_duration(*period);
            writeln!(out, "  expects a check-in at least every {period}")?;
            "overdue"
        }
        Cadence::Schedule { schedule, .. } => {
            print_schedule(out, schedule, now, Duration::ZERO)?;
            "a slot passes without a check-in"
        }
    };
    match rules.grace {
        grace if grace.is_zero() => writeln!(out, "  down when {overdue}")?,
        grace => writeln!(
            out,
            "  late when {overdue}, down {} later",
            super::short_duration(grace)
        )?,
    }
    writeln!(
        out,
        "  pinged at {}{} (auth_kind {})",
        crate::config::model::MONITOR_PING_ROUTE,
        monitor.path,
        monitor.auth.as_str()
    )
}

/// The services, one line each, then the worst-case time of a clean shutdown. Like
/// the monitor count, both appear only when there are services.
fn print_services(out: &mut dyn Write, config: &Config) -> io::Result<()> {
    if config.services.is_empty() {
        return Ok(());
    }
    for service in &config.services {
        print_service(out, service)?;
    }
    print_shutdown_budget(out, &ShutdownBudget::of(config))
}

/// `service "web" (web): priority 100, restart on-failure, command exec ./server`.
fn print_service(out: &mut dyn Write, service: &ServiceSpec) -> io::Result<()> {
    writeln!(
        out,
        "service {:?} ({}): priority {}, restart {}, command {}",
        service.name,
        service.id,
        service.priority,
        service.policy.restart.as_str(),
        shorten_command(&service.command)
    )
}

/// The command on one line (whitespace runs become one space), cut after
/// [`COMMAND_SHOWN`] characters with `…`.
fn shorten_command(command: &str) -> String {
    let one_line = command.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(COMMAND_SHOWN) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// `shutdown: at most 1m5s (jobs 5s + priority 100: 10s + ... + notifications 5s)`.
fn print_shutdown_budget(out: &mut dyn Write, budget: &ShutdownBudget) -> io::Result<()> {
    let short = super::short_duration;
    let mut parts = vec![format!("jobs {}", short(budget.job_grace))];
    for (priority, stop_timeout) in &budget.service_groups {
        parts.push(format!("priority {priority}: {}", short(*stop_timeout)));
    }
    parts.push(format!("notifications {}", short(budget.notification_wait)));
    writeln!(
        out,
        "shutdown: at most {} ({}); set TimeoutStopSec= of karajo's unit above it",
        short(budget.total()),
        parts.join(" + ")
    )
}

/// A schedule and its next due times, each `offset` (the job's jitter) after its slot.
fn print_schedule(
    out: &mut dyn Write,
    schedule: &Schedule,
    now: Timestamp,
    offset: Duration,
) -> io::Result<()> {
    writeln!(
        out,
        "  schedule {:?}: {}",
        schedule.as_str(),
        schedule.describe()
    )?;
    let tz = schedule.timezone();
    let from = now.checked_sub(offset).unwrap_or(now);
    let upcoming: Vec<Timestamp> = schedule
        .upcoming(from, UPCOMING)
        .into_iter()
        .filter_map(|at| at.checked_add(offset).ok())
        .collect();
    if upcoming.is_empty() {
        writeln!(out, "    never due")?;
    }
    for at in upcoming {
        writeln!(out, "    {}", show_time(at, tz))?;
    }
    Ok(())
}

fn print_timing(out: &mut dyn Write, timing: &Timing<'_>, now: Timestamp) -> io::Result<()> {
    let mut said = false;
    if let Some(schedule) = timing.schedule {
        print_schedule(out, schedule, now, timing.offset)?;
        said = true;
    } else if let Some(interval) = timing.interval {
        writeln!(
            out,
            "  every {} after the previous run ends",
            super::short_duration(interval)
        )?;
        said = true;
    }
    if let Some(path) = timing.path {
        writeln!(out, "  on web hook {path}")?;
        said = true;
    }
    if !said {
        writeln!(out, "  never: no schedule, interval or web hook path")?;
    }
    Ok(())
}

/// `2026-01-02 03:00:00 CET`: a due time in the schedule's zone.
fn show_time(at: Timestamp, tz: &TimeZone) -> String {
    at.to_zoned(tz.clone())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `check` (`run` or `run_json`) says of a file holding `conf`, with the
    /// temporary directory written as `DIR`.
    fn checked(
        conf: &str,
        check: fn(&Path, Timestamp, &mut dyn Write) -> io::Result<bool>,
    ) -> (bool, String) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("karajo.conf");
        let text = format!("[karajo]\ndir_base = {}\n{conf}", dir.path().display());
        std::fs::write(&file, text).unwrap();
        let mut out = Vec::new();
        let now: Timestamp = "2023-01-09T00:00:30Z".parse().unwrap();
        let ok = check(&file, now, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        (ok, text.replace(&dir.path().display().to_string(), "DIR"))
    }

    fn check(conf: &str) -> (bool, String) {
        checked(conf, run)
    }

    #[test]
    fn web_hook_rules_and_params_are_shown_a_line_each() {
        let (ok, text) = check(
            "secret = s\n\
             [job \"deploy\"]\npath = /gh\nauth_kind = github\ngithub_events = push\n\
             github_refs = refs/heads/main, refs/tags/v*\nparam = ENV\nparam = TAG=latest\n\
             command = true\n",
        );
        assert!(ok, "{text}");
        assert!(
            text.contains(
                "job \"deploy\" (deploy):\n  on web hook /gh\n  runs on github events push, \
                 refs refs/heads/main, refs/tags/v*; other deliveries get 202\n  \
                 params: ENV (required), TAG=latest\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_good_configuration_shows_when_each_job_runs() {
        let (ok, text) = check(
            "secret = s\n\
             [job \"hello\"]\ninterval = 5m\npath = /hello\ncommand = echo hi\n\
             [job \"nightly\"]\nschedule = daily@03:00\ncommand = true\n\
             [job \"hook\"]\npath = /hook\ncommand = true\n\
             [job \"idle\"]\ncommand = true\n\
             [job.http \"ping\"]\nhttp_url = /x\ninterval = 1h30m\n",
        );
        assert!(ok, "{text}");
        let expected = "\
job \"hello\" (hello):
  every 5m after the previous run ends
  on web hook /hello
job \"hook\" (hook):
  on web hook /hook
job \"idle\" (idle):
  never: no schedule, interval or web hook path
job \"nightly\" (nightly):
  schedule \"daily@03:00\": every day at 03:00 (UTC)
    2023-01-09 03:00:00 UTC
    2023-01-10 03:00:00 UTC
    2023-01-11 03:00:00 UTC
    2023-01-12 03:00:00 UTC
    2023-01-13 03:00:00 UTC
job.http \"ping\" (ping):
  every 1h30m after the previous run ends
DIR/karajo.conf: 4 jobs, 1 HTTP job: OK
";
        assert_eq!(text, expected);
    }

    #[test]
    fn monitors_are_listed_and_counted() {
        let (ok, text) = check(
            "secret = s\n\
             [job \"hook\"]\npath = /hook\ncommand = true\n\
             [monitor \"Backup DB\"]\nperiod = 1h\ntoken = 0123456789abcdef\n\
             [monitor \"nightly\"]\nschedule = daily@03:00\ngrace = 0s\npath = /n/x/\n\
             auth_kind = none\n",
        );
        assert!(ok, "{text}");
        let expected = "\
job \"hook\" (hook):
  on web hook /hook
monitor \"Backup DB\" (backup_db):
  expects a check-in at least every 1h
  late when overdue, down 5m later
  pinged at /karajo/api/monitor/ping/backup_db (auth_kind token)
monitor \"nightly\" (nightly):
  schedule \"daily@03:00\": every day at 03:00 (UTC)
    2023-01-09 03:00:00 UTC
    2023-01-10 03:00:00 UTC
    2023-01-11 03:00:00 UTC
    2023-01-12 03:00:00 UTC
    2023-01-13 03:00:00 UTC
  down when a slot passes without a check-in
  pinged at /karajo/api/monitor/ping/n/x (auth_kind none)
DIR/karajo.conf: 1 job, 0 HTTP jobs, 2 monitors: OK
";
        assert_eq!(text, expected);
    }

    #[test]
    fn cluster_mode_shows_the_node_and_where_each_job_runs() {
        let (ok, text) = check(
            "[karajo]\nsecret = s\n[cluster]\nenabled = true\nnode = n1\ntag = gpu\nnats_url = nats://127.0.0.1:14222\n\
             nats_user = k\nnats_password = hunter2\n[job \"a\"]\npath = /a\ncommand = true\nrun_on = tag:gpu\n",
        );
        assert_eq!(ok, crate::cluster::BUILT_WITH_NATS, "{text}");
        if ok {
            assert!(
                text.contains("cluster: node n1, tags gpu; NATS at nats://127.0.0.1:14222 with user k and a password; prefix karajo"),
                "{text}"
            );
            assert!(
                text.contains("  runs on one free node tagged gpu per run"),
                "{text}"
            );
        } else {
            assert!(text.contains(crate::cluster::NOT_BUILT_MESSAGE), "{text}");
        }
        assert!(!text.contains("hunter2"), "{text}");
        let (ok, text) =
            check("[cluster]\nenabled = false\n[job \"a\"]\ncommand = true\nrun_on = n2\n");
        assert!(ok, "{text}");
        assert!(
            text.contains("run_on = n2 ignored: cluster mode is off"),
            "{text}"
        );
        assert!(!text.contains("cluster: node"), "{text}");
    }

    #[test]
    fn services_are_listed_and_counted_with_the_shutdown_worst_case() {
        let (ok, text) = check(
            "secret = s\n\
             [job \"hook\"]\npath = /hook\ncommand = true\nkill_grace = 3s\n\
             [service \"Web App\"]\n\
             command = \"exec ./server --listen 127.0.0.1:8080   --workers 4 --verbose\"\n\
             stop_timeout = 20s\n\
             [service \"db\"]\ncommand = exec postgres\npriority = 10\nrestart = always\n\
             stop_timeout = 1m\n\
             [service \"cache\"]\ncommand = exec redis\npriority = 10\n\
             [service \"daemon\"]\ncommand = ./start\npid_file = d.pid\non_exit = leave\n\
             priority = 1\nstop_timeout = 1h\nrestart = never\n",
        );
        assert!(ok, "{text}");
        let expected = "\
job \"hook\" (hook):
  on web hook /hook
service \"Web App\" (web_app): priority 100, restart on-failure, command exec ./server --listen 127.0.0.1:8080 --…
service \"cache\" (cache): priority 10, restart on-failure, command exec redis
service \"daemon\" (daemon): priority 1, restart never, command ./start
service \"db\" (db): priority 10, restart always, command exec postgres
shutdown: at most 1m28s (jobs 3s + priority 100: 20s + priority 10: 1m + notifications 5s); set TimeoutStopSec= of karajo's unit above it
DIR/karajo.conf: 1 job, 0 HTTP jobs, 4 services: OK
";
        assert_eq!(text, expected);
    }

    #[test]
    fn service_errors_are_reported_with_the_others() {
        let (ok, text) = check(
            "secret = s\n[service \"s\"]\ncommand = exec a\ncommand = exec b\n\
             restart = sometimes\n",
        );
        assert!(!ok, "{text}");
        assert!(
            text.contains(
                "error: DIR/karajo.conf:6: service \"s\" has a second command (lines 5 and 6)"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "error: DIR/karajo.conf:7: restart = \"sometimes\" is invalid: expected \
                 always, on-failure or never\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("2 errors, 0 warnings\n"), "{text}");
    }

    #[test]
    fn monitor_errors_are_reported_with_the_others() {
        let (ok, text) = check(
            "secret = s\n[job \"bad\"]\ninterval = 60\ncommand = true\n\
             [monitor \"m\"]\nperiod = 1h\nschedule = hourly\ntoken = 0123456789abcdef\n",
        );
        assert!(!ok, "{text}");
        assert!(text.contains("error: DIR/karajo.conf:5:"), "{text}");
        assert!(
            text.contains(
                "error: DIR/karajo.conf:9: monitor \"m\" has both period (line 8) and \
                 schedule (line 9); keep one\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("2 errors, 0 warnings\n"), "{text}");
    }

    #[test]
    fn errors_and_warnings_name_file_and_line() {
        let (ok, text) = check(
            "secret = s\nbogus_key = 1\n\
             [job \"bad\"]\ninterval = 60\ncommand = true\n",
        );
        assert!(!ok, "{text}");
        assert!(text.contains("error: DIR/karajo.conf:6:"), "{text}");
        assert!(text.contains("warning: DIR/karajo.conf:4:"), "{text}");
        assert!(text.ends_with("1 error, 1 warning\n"), "{text}");
    }

    #[test]
    fn a_job_without_commands_is_an_error_as_for_the_daemon() {
        let (ok, text) = check("secret = s\n[job \"empty\"]\ninterval = 5m\n");
        assert!(!ok, "{text}");
        assert!(text.contains(
            "error: DIR/karajo.conf:4: job \"empty\" has no command: \
             add a line such as command = echo hello\n"
        ));
    }

    #[test]
    fn a_running_daemon_is_reported_as_information() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("karajo.conf");
        let text = format!(
            "[karajo]\ndir_base = {}\nsecret = s\n",
            dir.path().display()
        );
        std::fs::write(&file, text).unwrap();
        let now = Timestamp::now();
        let lock = crate::daemon::lock::acquire(&Layout::new(dir.path())).unwrap();
        let mut out = Vec::new();
        assert!(run(&file, now, &mut out).unwrap());
        let text = String::from_utf8(out).unwrap();
        let pid = std::process::id();
        assert!(
            text.contains(&format!(
                "info: a karajo daemon (pid {pid}) is running on this dir_base\n"
            )),
            "{text}"
        );
        drop(lock);
        let mut out = Vec::new();
        assert!(run(&file, now, &mut out).unwrap());
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("info:"), "{text}");
    }

    fn check_json(conf: &str) -> (bool, serde_json::Value) {
        let (ok, text) = checked(conf, run_json);
        (ok, serde_json::from_str(&text).unwrap())
    }

    #[test]
    fn json_reports_jobs_with_their_timing() {
        let (ok, report) = check_json(
            "secret = s\nbogus = 1\n\
             [job \"nightly\"]\nschedule = daily@03:00\ntimezone = Europe/Paris\ncommand = true\n\
             [job \"hello\"]\ninterval = 5m\npath = /hello\ncommand = echo hi\n\
             [monitor \"m\"]\nperiod = 1h\ntoken = 0123456789abcdef\n\
             [service \"web\"]\ncommand = exec ./server\n",
        );
        assert!(ok);
        assert_eq!(report["ok"], true);
        assert_eq!(report["config"], "DIR/karajo.conf");
        assert_eq!(report["errors"], serde_json::json!([]));
        assert_eq!(report["warnings"][0]["file"], "DIR/karajo.conf");
        assert_eq!(report["warnings"][0]["line"], 4);
        let jobs = report["jobs"].as_array().unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0]["name"], "hello");
        assert_eq!(jobs[0]["interval"], "5m");
        assert_eq!(jobs[0]["path"], "/hello");
        assert_eq!(jobs[0]["schedule"], serde_json::Value::Null);
        assert_eq!(jobs[1]["kind"], "job");
        assert_eq!(jobs[1]["schedule"]["expr"], "daily@03:00");
        assert_eq!(jobs[1]["schedule"]["timezone"], "Europe/Paris");
        assert_eq!(
            jobs[1]["schedule"]["next"][0],
            "2023-01-09T03:00:00+01:00[Europe/Paris]"
        );
        assert_eq!(report["monitors"][0]["period"], "1h");
        assert_eq!(report["services"][0]["restart"], "on-failure");
        assert_eq!(report["daemon_pid"], serde_json::Value::Null);
    }

    #[test]
    fn json_reports_errors_with_file_and_line() {
        let (ok, report) = check_json("secret = s\n[job \"bad\"]\ninterval = 60\ncommand = true\n");
        assert!(!ok);
        assert_eq!(report["ok"], false);
        assert_eq!(report["errors"][0]["line"], 5);
        assert!(
            report["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("interval"),
            "{report}"
        );
        assert!(report.get("jobs").is_none());
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let mut out = Vec::new();
        let ok = run(
            Path::new("/nonexistent/karajo.conf"),
            Timestamp::now(),
            &mut out,
        )
        .unwrap();
        assert!(!ok);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("error: /nonexistent/karajo.conf"),
            "{text}"
        );
    }
}
