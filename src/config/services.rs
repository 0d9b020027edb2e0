//! `[service "NAME"]` sections (monitors spec §1.1, B.2): typed and checked here into
//! [`ServiceSpec`], so that a service without `command` or with two of them, an
//! `on_exit = leave` without `pid_file`, an unknown `restart`, `ready`, `on_exit` or
//! `stop_signal` word, a negative duration, a malformed `env` line or a tiny
//! `log_max_size` stops start-up with an error naming the file and line. Keys that do
//! nothing in their context, and a `user` karajo cannot switch to, get warnings. Also
//! [`ShutdownBudget`], the worst-case time of a clean shutdown (§B.6) that `karajo
//! check` prints. Pure: it reads the variables [`super::load`] gathered, plus who
//! karajo runs as ([`KarajoUser`]); the values of `env` and `secret` never appear in a
//! message.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::fields::{Fields, Problems};
use super::jobs::Definition;
use super::model::{
    Config, OnExit, ReadyRule, RestartPolicy, ServicePolicy, ServiceSignal, ServiceSpec,
};
use super::settings::{read_count, read_positive_duration};
use crate::job::JobId;

/// The keys a `[service "..."]` section may hold (monitors spec B.2).
pub(crate) const SERVICE_KEYS: &[&str] = &[
    "description",
    "command",
    "pre_start",
    "working_dir",
    "user",
    "env",
    "env_inherit",
    "disabled",
    "priority",
    "restart",
    "success_exit_codes",
    "restart_delay",
    "restart_delay_max",
    "backoff_reset",
    "start_retries",
    "ready",
    "start_seconds",
    "start_timeout",
    "max_runtime",
    "stop_signal",
    "stop_timeout",
    "pid_file",
    "check_interval",
    "ping_timeout",
    "notify",
    "on_exit",
    "secret",
    "log_retention",
    "log_max_size",
    "history",
    "keyvalue_clear",
    "notif_on_failed",
    "notif_on_fatal",
    "notif_on_recover",
];

/// The `notif_on_*` keys of a service.
pub(crate) const SERVICE_NOTIF_KEYS: &[&str] =
    &["notif_on_failed", "notif_on_fatal", "notif_on_recover"];

/// The keys whose values no message may quote.
const HIDDEN_VALUE_KEYS: &[&str] = &["env", "secret"];

/// `priority` default.
pub(crate) const DEFAULT_SERVICE_PRIORITY: i64 = 100;
/// `restart_delay` default.
pub(crate) const DEFAULT_RESTART_DELAY: Duration = Duration::from_secs(1);
/// `restart_delay_max` default.
pub(crate) const DEFAULT_RESTART_DELAY_MAX: Duration = Duration::from_secs(60);
/// `backoff_reset` default.
pub(crate) const DEFAULT_BACKOFF_RESET: Duration = Duration::from_secs(60);
/// `start_retries` default.
pub(crate) const DEFAULT_START_RETRIES: u32 = 3;
/// `start_seconds` default.
pub(crate) const DEFAULT_START_SECONDS: Duration = Duration::from_secs(1);
/// `start_timeout` default.
pub(crate) const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30);
/// `stop_timeout` default.
pub(crate) const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// `check_interval` default.
pub(crate) const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// Service `log_retention` default.
pub(crate) const DEFAULT_SERVICE_LOG_RETENTION: usize = 10;
/// `log_max_size` default: 10 MiB.
pub(crate) const DEFAULT_LOG_MAX_SIZE: u64 = 10 * 1024 * 1024;
/// The smallest `log_max_size`: below it a segment would rotate every few lines.
pub(crate) const MIN_LOG_MAX_SIZE: u64 = 4096;
/// `history` default (Patrol's).
pub(crate) const DEFAULT_SERVICE_HISTORY: usize = 100;
/// The exit code that counts as clean when `success_exit_codes` is not set.
const DEFAULT_SUCCESS_EXIT_CODE: i32 = 0;
/// How long a clean shutdown waits for the notification queue (§B.6 step 5).
pub const SHUTDOWN_NOTIFICATION_WAIT: Duration = Duration::from_secs(5);

/// The accepted `restart` words, for the error message.
const RESTART_WORDS: &str = "always, on-failure or never";
/// The accepted `ready` words, for the error message.
const READY_WORDS: &str = "delay, notify or ping";
/// The accepted `on_exit` words, for the error message.
const ON_EXIT_WORDS: &str = "stop or leave";
/// The accepted `stop_signal` names, for the error message.
const SIGNAL_WORDS: &str = "TERM, INT, HUP, QUIT, USR1, USR2 or KILL (with or without SIG)";

/// Who the karajo process runs as, for the `user` check: a `user` other than this
/// one can only be switched to by root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KarajoUser {
    /// The effective user id.
    pub(crate) uid: u32,
    /// The name `/etc/passwd` gives that id, when it has one.
    pub(crate) name: Option<String>,
}

impl KarajoUser {
    /// The user of this process: its effective uid and that uid's name in
    /// `/etc/passwd` (users known only to NSS, such as LDAP, have no name here).
    pub(crate) fn current() -> Self {
        let uid = rustix::process::geteuid().as_raw();
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        Self {
            uid,
            name: name_in_passwd(&passwd, uid),
        }
    }

    fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// Whether `user` (a name, or a numeric uid) is this user.
    fn is(&self, user: &str) -> bool {
        self.name.as_deref() == Some(user) || user.parse::<u32>() == Ok(self.uid)
    }

    /// `uid 1000 (alice)`, for messages.
    fn describe(&self) -> String {
        match &self.name {
            Some(name) => format!("uid {} ({name})", self.uid),
            None => format!("uid {}", self.uid),
        }
    }
}

/// The name of `uid` in the text of an `/etc/passwd` file.
pub(crate) fn name_in_passwd(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let entry_uid = fields.nth(1)?.parse::<u32>().ok()?;
        (entry_uid == uid && !name.is_empty()).then(|| name.to_string())
    })
}

/// Types every service, sorted by name; the unusable ones are left out (their errors
/// are in `problems`). Who karajo runs as is only looked up when there are services.
pub(crate) fn build_services(
    defs: &BTreeMap<String, Definition>,
    problems: &mut Problems,
) -> Vec<ServiceSpec> {
    if defs.is_empty() {
        return Vec::new();
    }
    let karajo_user = KarajoUser::current();
    defs.values()
        .filter_map(|def| build_service(def, &karajo_user, problems))
        .collect()
}

/// Types one service; `None` (with errors in `problems`) when it is unusable.
pub(crate) fn build_service(
    def: &Definition,
    karajo_user: &KarajoUser,
    problems: &mut Problems,
) -> Option<ServiceSpec> {
    let f = &def.fields;
    f.check_keys_hiding("[service]", SERVICE_KEYS, HIDDEN_VALUE_KEYS, problems);
    let errors_before = problems.errors.len();
    let command = read_command(def, problems);
    let pre_start = read_pre_start(f, problems);
    let env = read_env(def, problems);
    let pid_file = path_value(f, "pid_file");
    let on_exit = read_on_exit(def, pid_file.is_some(), problems);
    let policy = read_policy(f, problems);
    check_user(def, karajo_user, problems);
    warn_unused_keys(f, &policy, pid_file.is_some(), problems);
    let priority = f
        .integer("priority", problems)
        .unwrap_or(DEFAULT_SERVICE_PRIORITY);
    let spec = ServiceSpec {
        name: def.name.clone(),
        id: JobId::from_name(&def.name),
        file: f.file.clone(),
        line: f.line,
        description: f.text("description"),
        command: command?,
        pre_start,
        working_dir: path_value(f, "working_dir"),
        user: f.text("user"),
        env,
        env_inherit: f.boolean("env_inherit", problems),
        disabled: f.boolean("disabled", problems),
        priority,
        check_interval: read_positive_duration(
            f,
            "check_interval",
            DEFAULT_CHECK_INTERVAL,
            problems,
        ),
        pid_file,
        notify: f.boolean("notify", problems),
        on_exit,
        secret: f.text("secret"),
        log_retention: read_count(f, "log_retention", problems)
            .unwrap_or(DEFAULT_SERVICE_LOG_RETENTION),
        log_max_size: read_log_max_size(f, problems),
        history: read_count(f, "history", problems).unwrap_or(DEFAULT_SERVICE_HISTORY),
        keyvalue_clear: f.boolean_or("keyvalue_clear", true, problems),
        policy,
    };
    (problems.errors.len() == errors_before).then_some(spec)
}

/// The one `command`. None, an empty one, or more than one is an error; each extra
/// `command` line is reported with the line of the first.
fn read_command(def: &Definition, problems: &mut Problems) -> Option<String> {
    let f = &def.fields;
    let mut commands = f.all("command");
    let Some(first) = commands.next() else {
        let message = format!(
            "service {:?} has no command: add a line such as \
             command = exec my-server --foreground",
            def.name
        );
        problems.error(&f.file, f.line, message);
        return None;
    };
    let mut usable = true;
    for extra in commands {
        let message = format!(
            "service {:?} has a second command (lines {} and {}): a service runs exactly \
             one command; put what must run before it in pre_start, or join the commands \
             with &&",
            def.name, first.line, extra.line
        );
        problems.error(&f.file, extra.line, message);
        usable = false;
    }
    if first.value.is_empty() {
        let message = format!("service {:?} has an empty command", def.name);
        problems.error(&f.file, first.line, message);
        usable = false;
    }
    usable.then(|| first.value.clone())
}

/// `pre_start`: every line in order; an empty one gets a warning and is dropped.
fn read_pre_start(f: &Fields, problems: &mut Problems) -> Vec<String> {
    for var in f.all("pre_start").filter(|v| v.value.is_empty()) {
        problems.warn(&f.file, var.line, "empty pre_start, ignored");
    }
    f.all("pre_start")
        .filter(|v| !v.value.is_empty())
        .map(|v| v.value.clone())
        .collect()
}

/// `env`: `KEY=VALUE` lines split at the first `=`, both sides trimmed (as
/// `http_header` lines are). A line without `=` or with an empty key is an error
/// that names the line but never shows the value.
fn read_env(def: &Definition, problems: &mut Problems) -> Vec<(String, String)> {
    let f = &def.fields;
    let mut env = Vec::new();
    for var in f.all("env") {
        match var.value.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                env.push((key.trim().to_string(), value.trim().to_string()));
            }
            Some(_) => {
                let message = format!(
                    "env of service {:?} has an empty name before \"=\": expected \
                     env = KEY=VALUE (the value is not shown)",
                    def.name
                );
                problems.error(&f.file, var.line, message);
            }
            None => {
                let message = format!(
                    "env of service {:?} has no \"=\": expected env = KEY=VALUE \
                     (the value is not shown)",
                    def.name
                );
                problems.error(&f.file, var.line, message);
            }
        }
    }
    env
}

/// A path kept as written; `None` when absent or empty.
fn path_value(f: &Fields, key: &str) -> Option<PathBuf> {
    Some(f.text(key))
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
}

/// `on_exit` (default `stop`); `leave` needs a `pid_file`.
fn read_on_exit(def: &Definition, has_pid_file: bool, problems: &mut Problems) -> OnExit {
    let f = &def.fields;
    let on_exit = f
        .typed("on_exit", problems, ON_EXIT_WORDS, on_exit_from_word)
        .unwrap_or(OnExit::Stop);
    if on_exit == OnExit::Leave
        && !has_pid_file
        && let Some(var) = f.last("on_exit")
    {
        let message = format!(
            "service {:?} has on_exit = leave but no pid_file: karajo can only leave \
             running, and adopt at its next start, a service it finds through a pid file",
            def.name
        );
        problems.error(&f.file, var.line, message);
    }
    on_exit
}

/// The keys the state machine reads, with their defaults.
fn read_policy(f: &Fields, problems: &mut Problems) -> ServicePolicy {
    let non_negative = |key: &str, default: Duration, problems: &mut Problems| {
        f.non_negative_duration(key, problems).unwrap_or(default)
    };
    let restart_delay = non_negative("restart_delay", DEFAULT_RESTART_DELAY, problems);
    let restart_delay_max = non_negative("restart_delay_max", DEFAULT_RESTART_DELAY_MAX, problems);
    ServicePolicy {
        restart: f
            .typed("restart", problems, RESTART_WORDS, restart_from_word)
            .unwrap_or(RestartPolicy::OnFailure),
        success_exit_codes: read_success_exit_codes(f, problems),
        restart_delay,
        restart_delay_max,
        backoff_reset: non_negative("backoff_reset", DEFAULT_BACKOFF_RESET, problems),
        start_retries: read_start_retries(f, problems),
        ready: f
            .typed("ready", problems, READY_WORDS, ready_from_word)
            .unwrap_or(ReadyRule::Delay),
        start_seconds: non_negative("start_seconds", DEFAULT_START_SECONDS, problems),
        start_timeout: read_positive_duration(f, "start_timeout", DEFAULT_START_TIMEOUT, problems),
        max_runtime: f
            .non_negative_duration("max_runtime", problems)
            .filter(|d| !d.is_zero()),
        stop_signal: f
            .typed("stop_signal", problems, SIGNAL_WORDS, ServiceSignal::parse)
            .unwrap_or(ServiceSignal::Term),
        stop_timeout: non_negative("stop_timeout", DEFAULT_STOP_TIMEOUT, problems),
        ping_timeout: f
            .non_negative_duration("ping_timeout", problems)
            .filter(|d| !d.is_zero()),
        notif_on_failed: f.list("notif_on_failed"),
        notif_on_fatal: f.list("notif_on_fatal"),
        notif_on_recover: f.list("notif_on_recover"),
    }
}

/// `restart` words, in any case.
fn restart_from_word(word: &str) -> Option<RestartPolicy> {
    [
        RestartPolicy::Always,
        RestartPolicy::OnFailure,
        RestartPolicy::Never,
    ]
    .into_iter()
    .find(|policy| word.eq_ignore_ascii_case(policy.as_str()))
}

/// `ready` words, in any case.
fn ready_from_word(word: &str) -> Option<ReadyRule> {
    [ReadyRule::Delay, ReadyRule::Notify, ReadyRule::Ping]
        .into_iter()
        .find(|rule| word.eq_ignore_ascii_case(rule.as_str()))
}

/// `on_exit` words, in any case.
fn on_exit_from_word(word: &str) -> Option<OnExit> {
    match word.to_ascii_lowercase().as_str() {
        "stop" => Some(OnExit::Stop),
        "leave" => Some(OnExit::Leave),
        _ => None,
    }
}

/// `success_exit_codes`: every line, each a comma-separated list of codes from 0 to
/// 255, in order and without repeats. When no line sets one, `0` alone; a list
/// replaces that default (write `0, 3` to keep 0).
fn read_success_exit_codes(f: &Fields, problems: &mut Problems) -> Vec<i32> {
    let mut codes = Vec::new();
    let mut any_written = false;
    for var in f.all("success_exit_codes") {
        let items = var
            .value
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty());
        for item in items {
            any_written = true;
            match item.parse::<u8>() {
                Ok(code) if !codes.contains(&i32::from(code)) => codes.push(i32::from(code)),
                Ok(_) => {}
                Err(_) => {
                    let message = format!(
                        "success_exit_codes = {:?} is invalid: {item:?} is not an exit code \
                         from 0 to 255",
                        var.value
                    );
                    problems.error(&f.file, var.line, message);
                }
            }
        }
    }
    if any_written {
        codes
    } else {
        vec![DEFAULT_SUCCESS_EXIT_CODE]
    }
}

/// `start_retries`: an integer ≥ 0 (default 3).
fn read_start_retries(f: &Fields, problems: &mut Problems) -> u32 {
    let Some(retries) = f.integer("start_retries", problems) else {
        return DEFAULT_START_RETRIES;
    };
    match u32::try_from(retries) {
        Ok(retries) => retries,
        Err(_) => {
            if let Some(var) = f.last("start_retries") {
                let why = if retries < 0 {
                    "it must not be negative"
                } else {
                    "it is too large"
                };
                let message = format!("start_retries = {:?} is invalid: {why}", var.value);
                problems.error(&f.file, var.line, message);
            }
            DEFAULT_START_RETRIES
        }
    }
}

/// `log_max_size`: bytes, at least [`MIN_LOG_MAX_SIZE`] (default 10485760).
fn read_log_max_size(f: &Fields, problems: &mut Problems) -> u64 {
    let Some(size) = f.integer("log_max_size", problems) else {
        return DEFAULT_LOG_MAX_SIZE;
    };
    match u64::try_from(size) {
        Ok(size) if size >= MIN_LOG_MAX_SIZE => size,
        _ => {
            if let Some(var) = f.last("log_max_size") {
                let message = format!(
                    "log_max_size = {:?} is invalid: it must be at least {MIN_LOG_MAX_SIZE} \
                     bytes",
                    var.value
                );
                problems.error(&f.file, var.line, message);
            }
            DEFAULT_LOG_MAX_SIZE
        }
    }
}

/// Warns when `user` names someone karajo cannot become: it is not root and `user` is
/// not its own user. A warning, because a configuration is often checked on another
/// machine or as another user than the daemon's; the service refuses to start then.
fn check_user(def: &Definition, karajo_user: &KarajoUser, problems: &mut Problems) {
    let f = &def.fields;
    let Some(var) = f.last("user").filter(|v| !v.value.is_empty()) else {
        return;
    };
    if karajo_user.is_root() || karajo_user.is(&var.value) {
        return;
    }
    let message = format!(
        "service {:?} has user = {:?}, but karajo runs as {}, not as root, so it cannot \
         switch to that user: the service will not start unless karajo runs as root or \
         as {:?}",
        def.name,
        var.value,
        karajo_user.describe(),
        var.value
    );
    problems.warn(&f.file, var.line, message);
}

/// The line of `key` when it is set to a non-empty value.
fn set_line(f: &Fields, key: &str) -> Option<usize> {
    f.last(key).filter(|v| !v.value.is_empty()).map(|v| v.line)
}

/// Warns about keys that are set but do nothing with the rest of the section.
fn warn_unused_keys(
    f: &Fields,
    policy: &ServicePolicy,
    has_pid_file: bool,
    problems: &mut Problems,
) {
    let mut unused = |key: &str, why: &str| {
        if let Some(line) = set_line(f, key) {
            problems.warn(&f.file, line, format!("{key} is ignored because {why}"));
        }
    };
    if policy.ready != ReadyRule::Delay {
        let why = format!(
            "ready = {} (it only applies to ready = delay)",
            policy.ready.as_str()
        );
        unused("start_seconds", &why);
    }
    if policy.ready == ReadyRule::Delay && !has_pid_file {
        unused(
            "start_timeout",
            "ready = delay and there is no pid_file (it applies to ready = notify or \
             ping, and to a pid_file)",
        );
    }
    if !has_pid_file {
        unused("check_interval", "the service has no pid_file");
    }
    if policy.restart == RestartPolicy::Never {
        for key in [
            "restart_delay",
            "restart_delay_max",
            "backoff_reset",
            "start_retries",
        ] {
            unused(key, "restart = never (karajo never restarts this service)");
        }
    } else if policy.restart_delay > policy.restart_delay_max {
        let line = set_line(f, "restart_delay").or_else(|| set_line(f, "restart_delay_max"));
        if let Some(line) = line {
            let message = format!(
                "restart_delay ({}) is longer than restart_delay_max ({}), so every \
                 back-off lasts restart_delay_max",
                super::duration::format_short(policy.restart_delay),
                super::duration::format_short(policy.restart_delay_max)
            );
            problems.warn(&f.file, line, message);
        }
    }
}

/// The longest a clean karajo shutdown can take (monitors spec B.6): running jobs get
/// their grace first, then the services stop by descending `priority`, one group after
/// the other (a group stops in parallel, so it takes its longest `stop_timeout`), then
/// the notification queue gets its bounded wait. Size systemd's `TimeoutStopSec=` of
/// the karajo unit above [`ShutdownBudget::total`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownBudget {
    /// The longest `kill_grace` of the command jobs (running jobs are cancelled all at
    /// once); zero without command jobs.
    pub job_grace: Duration,
    /// Per priority group, highest `priority` first (the order they stop in): the
    /// priority and the longest `stop_timeout` of its services. Services with
    /// `on_exit = leave` are left running, so they do not count.
    pub service_groups: Vec<(i64, Duration)>,
    /// The wait for the notification queue, [`SHUTDOWN_NOTIFICATION_WAIT`].
    pub notification_wait: Duration,
}

impl ShutdownBudget {
    /// The budget of `config`.
    pub fn of(config: &Config) -> Self {
        let job_grace = config
            .jobs
            .iter()
            .filter_map(|job| job.kind.as_exec())
            .map(|exec| exec.kill_grace)
            .max()
            .unwrap_or_default();
        let mut groups: BTreeMap<i64, Duration> = BTreeMap::new();
        let stopped = config.services.iter().filter(|s| s.on_exit == OnExit::Stop);
        for service in stopped {
            let longest = groups.entry(service.priority).or_default();
            *longest = (*longest).max(service.policy.stop_timeout);
        }
        Self {
            job_grace,
            service_groups: groups.into_iter().rev().collect(),
            notification_wait: SHUTDOWN_NOTIFICATION_WAIT,
        }
    }

    /// The whole worst case: job grace, plus each group's longest `stop_timeout`, plus
    /// the notification wait.
    pub fn total(&self) -> Duration {
        let services: Duration = self.service_groups.iter().map(|(_, d)| *d).sum();
        self.job_grace + services + self.notification_wait
    }
}
