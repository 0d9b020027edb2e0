//! Turning `[job "..."]` and `[job.http "..."]` definitions into typed job configs
//! (spec 2.3, 2.4 and the new keys), and the checks across jobs: ids that collide
//! after normalisation, command jobs sharing a webhook path, unknown notif names.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jiff::tz::TimeZone;

use super::fields::{Fields, Problems, positive};
use super::model::{
    DEFAULT_KILL_GRACE, DEFAULT_LOG_RETENTION, ExecSpec, HttpMethod, HttpRequestType, HttpSpec,
    JobCommon, JobKindSpec, JobSpec,
};
use super::settings::{Settings, report_not_positive};
use crate::auth::HEADER_KARAJO_SIGN;
use crate::job::{AuthKind, JobId};
use crate::schedule::Schedule;

/// The keys a `[job "..."]` section may hold.
pub(crate) const JOB_EXEC_KEYS: &[&str] = &[
    "description",
    "schedule",
    "interval",
    "timezone",
    "path",
    "auth_kind",
    "header_sign",
    "secret",
    "sourcehut_public_key",
    "log_retention",
    "command",
    "notif_on_success",
    "notif_on_failed",
    "notif_on_recover",
    "timeout",
    "kill_grace",
    "run_on",
];

/// The keys a `[job.http "..."]` section may hold.
pub(crate) const JOB_HTTP_KEYS: &[&str] = &[
    "description",
    "schedule",
    "interval",
    "timezone",
    "log_retention",
    "notif_on_success",
    "notif_on_failed",
    "notif_on_recover",
    "secret",
    "header_sign",
    "http_method",
    "http_url",
    "http_request_type",
    "http_header",
    "http_header_secret",
    "http_timeout",
    "http_insecure",
    "run_on",
];

/// A job kind's own keys and the policy keys every job takes.
fn job_keys(own: &[&'static str]) -> Vec<&'static str> {
    own.iter()
        .chain(super::policies::POLICY_KEYS)
        .copied()
        .collect()
}

/// One job section: its name and its variables (the last definition of a name).
#[derive(Debug, Clone)]
pub(crate) struct Definition {
    pub(crate) name: String,
    pub(crate) fields: Fields,
}

/// The timer settings both job kinds share.
struct Timer {
    timezone: TimeZone,
    schedule: Option<Schedule>,
    interval: Option<Duration>,
}

/// Builds a command job; problems go to `problems`.
pub(crate) fn build_exec_job(
    def: &Definition,
    global: &Settings,
    cluster_enabled: bool,
    problems: &mut Problems,
) -> JobSpec {
    let f = &def.fields;
    let mut keys = job_keys(JOB_EXEC_KEYS);
    keys.extend(super::hook_rules::HOOK_RULE_KEYS);
    keys.extend(super::params::PARAM_KEYS);
    f.check_keys("[job]", &keys, problems);
    let common = read_common(def, global, cluster_enabled, problems);
    let commands = f.list("command");
    let path = clean_path(&f.text("path"));
    let auth_kind = read_auth_kind(f, problems);
    let timer = common.schedule.is_some() || common.interval.is_some();
    for var in f.all("command").filter(|v| v.value.is_empty()) {
        problems.warn(&f.file, var.line, "empty command");
    }
    let exec = ExecSpec {
        hook_rules: super::hook_rules::read_hook_rules(f, auth_kind, path.is_some(), problems),
        params: super::params::read_params(f, timer, problems),
        path,
        auth_kind,
        sourcehut_public_key: f
            .key32("sourcehut_public_key", problems)
            .unwrap_or(global.sourcehut_public_key),
        commands,
        timeout: f.duration("timeout", problems).and_then(positive),
        kill_grace: read_kill_grace(f, problems),
    };
    JobSpec {
        common,
        kind: JobKindSpec::Exec(exec),
    }
}

/// The error for a command job with neither commands nor a registered function.
pub fn no_command_message(name: &str) -> String {
    format!("job {name:?} has no command: add a line such as command = echo hello")
}

/// Builds an HTTP job; problems go to `problems`.
pub(crate) fn build_http_job(
    def: &Definition,
    global: &Settings,
    cluster_enabled: bool,
    problems: &mut Problems,
) -> JobSpec {
    let f = &def.fields;
    f.check_keys("[job.http]", &job_keys(JOB_HTTP_KEYS), problems);
    let common = read_common(def, global, cluster_enabled, problems);
    let (http_headers, http_header_lines) = read_headers(f, problems);
    let http_request_type_text = f.text("http_request_type");
    let http = HttpSpec {
        http_method_text: f.text_or("http_method", "GET"),
        http_method: read_http_method(f, problems),
        http_url: read_http_url(def, problems),
        http_request_type: read_request_type(f, problems),
        http_request_type_text,
        http_headers,
        http_header_lines,
        http_header_secret: read_header_secret(f, problems),
        http_timeout: read_job_http_timeout(f, global, problems),
        http_insecure: f.boolean("http_insecure", problems),
    };
    JobSpec {
        common,
        kind: JobKindSpec::Http(http),
    }
}

/// The keys every job kind reads the same way.
fn read_common(
    def: &Definition,
    global: &Settings,
    cluster_enabled: bool,
    problems: &mut Problems,
) -> JobCommon {
    let f = &def.fields;
    let timer = read_timer(f, global, problems);
    let run_on = super::cluster::read_run_on(f, cluster_enabled, problems);
    if cluster_enabled && run_on.is_cluster() {
        // The cluster's shared record decides these for a cluster job.
        let local_only = super::policies::POLICY_KEYS
            .iter()
            .filter(|key| **key != super::policies::CLUSTER_POLICY_KEY);
        for key in local_only {
            if let Some(var) = f.last(key) {
                let message = format!(
                    "{key} applies to jobs run on this node only; a cluster job (run_on = {}) ignores it (set run_on = local to use it)",
                    run_on
                );
                problems.warn(&f.file, var.line, message);
            }
        }
    }
    JobCommon {
        name: def.name.clone(),
        id: JobId::from_name(&def.name),
        file: f.file.clone(),
        line: f.line,
        description: f.text("description"),
        schedule: timer.schedule,
        interval: timer.interval,
        timezone: timer.timezone,
        log_retention: read_log_retention(f, problems),
        notif_on_success: f.list("notif_on_success"),
        notif_on_failed: f.list("notif_on_failed"),
        notif_on_recover: f.list("notif_on_recover"),
        secret: read_secret(f, global),
        header_sign: f.text_or("header_sign", HEADER_KARAJO_SIGN),
        run_on,
        policies: super::policies::read_policies(f, timer.interval, problems),
    }
}

/// `timezone`, `schedule` (parsed in that zone) and `interval`.
fn read_timer(f: &Fields, global: &Settings, problems: &mut Problems) -> Timer {
    let timezone = f
        .timezone("timezone", problems)
        .unwrap_or_else(|| global.timezone.clone());
    let schedule = read_schedule(f, &timezone, problems);
    let interval = read_interval(f, schedule.is_some(), global.min_interval, problems);
    Timer {
        timezone,
        schedule,
        interval,
    }
}

pub(crate) fn read_schedule(
    f: &Fields,
    timezone: &TimeZone,
    problems: &mut Problems,
) -> Option<Schedule> {
    let var = f.last("schedule").filter(|v| !v.value.is_empty())?;
    match Schedule::parse(&var.value, timezone.clone()) {
        Ok(schedule) => Some(schedule),
        Err(err) => {
            let message = format!("schedule = {:?}: {err}", var.value);
            problems.error(&f.file, var.line, message);
            None
        }
    }
}

/// `interval`: ignored (with a warning) when a schedule is set; ≤ 0 → none;
/// under `[karajo] min_interval` (one minute, as in Go, unless set lower) → that.
fn read_interval(
    f: &Fields,
    has_schedule: bool,
    min_interval: Duration,
    problems: &mut Problems,
) -> Option<Duration> {
    let interval = f.duration("interval", problems)?;
    if has_schedule {
        if let Some(var) = f.last("interval") {
            problems.warn(
                &f.file,
                var.line,
                "interval is ignored because a schedule is set",
            );
        }
        return None;
    }
    positive(interval).map(|d| d.max(min_interval))
}

fn read_auth_kind(f: &Fields, problems: &mut Problems) -> AuthKind {
    f.typed(
        "auth_kind",
        problems,
        "hmac-sha256, github or sourcehut",
        AuthKind::parse,
    )
    .unwrap_or_default()
}

/// `secret`, trimmed; empty → the global secret.
fn read_secret(f: &Fields, global: &Settings) -> String {
    match f.text("secret").trim() {
        "" => global.secret.clone(),
        secret => secret.to_string(),
    }
}

/// `log_retention`: ≤ 0 or absent → 5.
fn read_log_retention(f: &Fields, problems: &mut Problems) -> usize {
    f.integer("log_retention", problems)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_LOG_RETENTION)
}

/// `kill_grace`: default 5s; zero allowed (SIGKILL at once); negative refused.
fn read_kill_grace(f: &Fields, problems: &mut Problems) -> Duration {
    match f.duration("kill_grace", problems) {
        None => DEFAULT_KILL_GRACE,
        Some(d) if d.is_zero() => Duration::ZERO,
        Some(d) => positive(d).unwrap_or_else(|| {
            report_not_positive(f, "kill_grace", problems);
            DEFAULT_KILL_GRACE
        }),
    }
}

fn read_http_method(f: &Fields, problems: &mut Problems) -> HttpMethod {
    f.typed(
        "http_method",
        problems,
        "GET, POST, PUT or DELETE",
        HttpMethod::parse,
    )
    .unwrap_or_default()
}

fn read_request_type(f: &Fields, problems: &mut Problems) -> HttpRequestType {
    f.typed(
        "http_request_type",
        problems,
        "query, form or json",
        HttpRequestType::parse,
    )
    .unwrap_or_default()
}

/// `http_url`: required.
fn read_http_url(def: &Definition, problems: &mut Problems) -> String {
    let url = def.fields.text("http_url");
    if url.is_empty() {
        let message = format!("job.http {:?} has no http_url", def.name);
        problems.error(&def.fields.file, def.fields.line, message);
    }
    url
}

/// `http_header` lines split at the first `:`; lines without `:` are errors.
fn read_headers(f: &Fields, problems: &mut Problems) -> (Vec<(String, String)>, Vec<String>) {
    let mut headers = Vec::new();
    for var in f.all("http_header") {
        match var.value.split_once(':') {
            Some((name, value)) => {
                headers.push((name.trim().to_string(), value.trim().to_string()))
            }
            None => {
                let message = format!(
                    "http_header = {:?} is invalid: expected \"Name: value\"",
                    var.value
                );
                problems.error(&f.file, var.line, message);
            }
        }
    }
    (headers, f.list("http_header"))
}

/// `http_header_secret`: one header name per line; a value that is not a valid
/// header name is an error.
fn read_header_secret(f: &Fields, problems: &mut Problems) -> Vec<String> {
    let mut names = Vec::new();
    for var in f.all("http_header_secret") {
        let name = var.value.trim();
        if http::HeaderName::from_bytes(name.as_bytes()).is_ok() {
            names.push(name.to_string());
        } else {
            let message = format!(
                "http_header_secret = {:?} is not a valid header name",
                var.value
            );
            problems.error(&f.file, var.line, message);
        }
    }
    names
}

/// `http_timeout`: absent or 0 → the global one; negative → no timeout.
fn read_job_http_timeout(
    f: &Fields,
    global: &Settings,
    problems: &mut Problems,
) -> Option<Duration> {
    match f.duration("http_timeout", problems) {
        None => global.http_timeout,
        Some(d) if d.is_zero() => global.http_timeout,
        Some(d) => positive(d),
    }
}

/// Cleans a webhook path like Go `path.Join("/", p)`: a leading slash, no trailing
/// slash, no empty, `.` or `..` segments. Empty input gives `None`.
pub fn clean_path(path: &str) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    Some(format!("/{}", segments.join("/")))
}

/// Where a job came from, for messages: `job "NAME" (file:line)`.
fn origin(kind: &str, name: &str, fields: &Fields) -> String {
    format!(
        "{kind} {name:?} ({}:{})",
        fields.file.display(),
        fields.line
    )
}

/// Reports jobs of one kind whose different names normalise to the same id.
pub(crate) fn check_duplicate_ids(
    kind: &str,
    defs: &BTreeMap<String, Definition>,
    problems: &mut Problems,
) {
    let mut seen: HashMap<JobId, &Definition> = HashMap::new();
    for def in defs.values() {
        let id = JobId::from_name(&def.name);
        if let Some(first) = seen.get(&id) {
            let message = format!(
                "{kind} {:?} has the same id {:?} as {}; rename one of them",
                def.name,
                id.as_str(),
                origin(kind, &first.name, &first.fields)
            );
            problems.error(&def.fields.file, def.fields.line, message);
        } else {
            seen.insert(id, def);
        }
    }
}

/// Reports command jobs sharing a webhook path (compared case-insensitively).
pub(crate) fn check_duplicate_paths(
    jobs: &[JobSpec],
    defs: &BTreeMap<String, Definition>,
    problems: &mut Problems,
) {
    let mut seen: HashMap<String, &JobCommon> = HashMap::new();
    for spec in jobs {
        let Some(path) = spec.kind.webhook_path() else {
            continue;
        };
        let job = &spec.common;
        let key = path.to_lowercase();
        if let Some(first) = seen.get(&key) {
            let first_origin = match defs.get(&first.name) {
                Some(def) => origin("job", &first.name, &def.fields),
                None => format!("job {:?}", first.name),
            };
            let message = format!(
                "job {:?} has the same path {path:?} as {first_origin}",
                job.name
            );
            let line = path_line(defs.get(&job.name)).unwrap_or(job.line);
            problems.error(&job.file, line, message);
        } else {
            seen.insert(key, job);
        }
    }
}

fn path_line(def: Option<&Definition>) -> Option<usize> {
    def?.fields.last("path").map(|v| v.line)
}

/// The `notif_on_*` keys of a job.
pub(crate) const JOB_NOTIF_KEYS: &[&str] = &[
    "notif_on_success",
    "notif_on_failed",
    "notif_on_recover",
    "notif_on_retry",
];

/// Warns about names under `keys` (a section's `notif_on_*` keys) that no `[notif]`
/// section defines.
pub(crate) fn check_notif_names(
    fields: &Fields,
    keys: &[&str],
    known: &dyn Fn(&str) -> bool,
    problems: &mut Problems,
) {
    for &key in keys {
        for var in fields.all(key).filter(|v| !known(&v.value)) {
            let message = format!(
                "{key} = {:?}: no [notif {:?}] is defined",
                var.value, var.value
            );
            problems.warn(&fields.file, var.line, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_like_go_path_join() {
        let cases = [
            ("/hello", Some("/hello")),
            ("hello", Some("/hello")),
            ("/hello/", Some("/hello")),
            ("//a//b/./c/../d/", Some("/a/b/d")),
            ("../../x", Some("/x")),
            ("/", Some("/")),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(clean_path(input).as_deref(), want, "{input:?}");
        }
    }
}
