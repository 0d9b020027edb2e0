//! `[monitor "NAME"]` and `[watchtower]` sections (monitors spec §1.1, A.2, A.8): typed
//! and checked here, so that a monitor with both or neither of `period` and `schedule`,
//! a `path` a ping route could misread, an unknown `auth_kind` or a missing `token`
//! stops start-up with an error naming the file and line. Also the checks across
//! monitors: ids and paths that collide after normalisation. Pure: it reads the
//! variables [`super::load`] gathered and nothing else.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use super::fields::{Fields, Problems};
use super::jobs::{Definition, clean_path, read_schedule};
use super::model::{
    Cadence, DEFAULT_EARLY_TOLERANCE, DEFAULT_MONITOR_GRACE, DEFAULT_MONITOR_LOG_RETENTION,
    DEFAULT_WATCHTOWER_MAX_MONITORS, DEFAULT_WATCHTOWER_PATH, MIN_MONITOR_PERIOD, MIN_TOKEN_LEN,
    MonitorAuth, MonitorOrigin, MonitorRules, MonitorSpec, WatchtowerConfig,
};
use super::settings::{Settings, read_byte_count, read_count};
use crate::auth::HEADER_KARAJO_SIGN;
use crate::job::JobId;

/// The keys a `[monitor "..."]` section may hold (monitors spec A.2).
pub(crate) const MONITOR_KEYS: &[&str] = &[
    "description",
    "period",
    "schedule",
    "timezone",
    "grace",
    "max_runtime",
    "early_tolerance",
    "path",
    "auth_kind",
    "token",
    "secret",
    "header_sign",
    "post_only",
    "ping_body_limit",
    "log_success",
    "log_retention",
    "manual_resume",
    "accept_pulse",
    "notif_on_down",
    "notif_on_up",
    "notif_on_late",
    "notif_repeat",
];

/// The `notif_on_*` keys of a monitor.
pub(crate) const MONITOR_NOTIF_KEYS: &[&str] = &["notif_on_down", "notif_on_up", "notif_on_late"];

/// The keys a `[watchtower]` section may hold (monitors spec A.8).
pub(crate) const WATCHTOWER_KEYS: &[&str] = &[
    "password",
    "path",
    "grace",
    "max_monitors",
    "log_retention",
    "notif_on_down",
    "notif_on_up",
];

/// The `notif_on_*` keys of `[watchtower]`.
pub(crate) const WATCHTOWER_NOTIF_KEYS: &[&str] = &["notif_on_down", "notif_on_up"];

/// The last path segments a ping route reads as a signal, so a monitor path may not
/// end with them (an all-digits segment is an exit status and is refused too).
const SIGNAL_SEGMENTS: [&str; 3] = ["start", "fail", "log"];

/// `auth_kind` words.
enum AuthKindWord {
    Token,
    HmacSha256,
    None,
}

impl AuthKindWord {
    fn parse(word: &str) -> Option<Self> {
        match word.to_ascii_lowercase().as_str() {
            "token" => Some(Self::Token),
            "hmac-sha256" => Some(Self::HmacSha256),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// Types one monitor; `None` (with errors in `problems`) when it is unusable.
pub(crate) fn build_monitor(
    def: &Definition,
    global: &Settings,
    problems: &mut Problems,
) -> Option<MonitorSpec> {
    let f = &def.fields;
    f.check_keys("[monitor]", MONITOR_KEYS, problems);
    let errors_before = problems.errors.len();
    let path = monitor_path(def);
    match &path {
        Some(path) => check_path_end(def, path, problems),
        None => report_root_path(def, problems),
    }
    let cadence = read_cadence(def, global, problems);
    let auth = read_auth(def, global, problems);
    let grace = read_non_negative(f, "grace", problems).unwrap_or(DEFAULT_MONITOR_GRACE);
    let max_runtime = read_non_negative(f, "max_runtime", problems).unwrap_or(grace);
    let notif_repeat = read_non_negative(f, "notif_repeat", problems);
    let log_success = f.boolean_or("log_success", true, problems);
    let post_only = f.boolean("post_only", problems);
    let manual_resume = f.boolean("manual_resume", problems);
    let accept_pulse = f.boolean("accept_pulse", problems);
    let ping_body_limit = read_byte_count(f, "ping_body_limit", problems);
    let log_retention = read_count(f, "log_retention", problems);
    let (Some(path), Some(cadence), Some(auth)) = (path, cadence, auth) else {
        return None;
    };
    if problems.errors.len() != errors_before {
        return None;
    }
    Some(MonitorSpec {
        name: def.name.clone(),
        id: JobId::from_name(&def.name),
        file: f.file.clone(),
        line: f.line,
        description: f.text("description"),
        path,
        auth,
        post_only,
        ping_body_limit: ping_body_limit.unwrap_or(global.ping_body_limit),
        log_retention: log_retention.unwrap_or(DEFAULT_MONITOR_LOG_RETENTION),
        manual_resume,
        accept_pulse,
        rules: MonitorRules {
            cadence,
            grace,
            max_runtime: Some(max_runtime).filter(|d| !d.is_zero()),
            log_success,
            notif_on_down: f.list("notif_on_down"),
            // Recoveries go where outages went, unless the section says otherwise
            // (an empty `notif_on_up =` turns them off).
            notif_on_up: if f.last("notif_on_up").is_some() {
                let names = f.list("notif_on_up").into_iter();
                names.filter(|name| !name.is_empty()).collect()
            } else {
                f.list("notif_on_down")
            },
            notif_on_late: f.list("notif_on_late"),
            notif_repeat: notif_repeat.filter(|d| !d.is_zero()),
        },
        origin: MonitorOrigin::Section,
    })
}

/// The monitor's ping path: `path` cleaned, or `/<id>` when it is empty; `None` for a
/// `path` that cleans to `/` (it would take every ping).
fn monitor_path(def: &Definition) -> Option<String> {
    let written = def.fields.text("path");
    let path = match clean_path(&written) {
        Some(path) => path,
        None => format!("/{}", JobId::from_name(&def.name)),
    };
    (path != "/").then_some(path)
}

/// The line that set the monitor's path: its `path` key, or the section header for
/// the default.
fn path_line(def: &Definition) -> usize {
    let f = &def.fields;
    f.last("path")
        .filter(|v| !v.value.is_empty())
        .map_or(f.line, |v| v.line)
}

/// Refuses a path that cleans to `/`, or whose last segment a ping route would read
/// as a signal (`start`, `fail`, `log`, any case) or an exit status (all digits).
fn check_path_end(def: &Definition, path: &str, problems: &mut Problems) {
    let last = path.rsplit('/').next().unwrap_or_default();
    let is_signal = SIGNAL_SEGMENTS
        .iter()
        .any(|word| last.eq_ignore_ascii_case(word));
    let is_exit_status = last.bytes().all(|b| b.is_ascii_digit());
    if !is_signal && !is_exit_status {
        return;
    }
    let what = if is_signal {
        format!("{last:?} is read as a ping signal")
    } else {
        format!("{last:?} is read as an exit status")
    };
    let message = format!(
        "monitor {:?} has path {path:?}, whose last segment {what} \
         (/start, /fail, /log, /0 to /255); choose another path",
        def.name
    );
    problems.error(&def.fields.file, path_line(def), message);
}

/// Reports a `path` that cleans to `/`.
fn report_root_path(def: &Definition, problems: &mut Problems) {
    let message = format!(
        "monitor {:?}: path = {:?} is invalid: it needs at least one segment, such as /backup",
        def.name,
        def.fields.text("path")
    );
    problems.error(&def.fields.file, path_line(def), message);
}

/// `period` or `schedule` (exactly one), with `timezone` and `early_tolerance`. Both
/// of those are checked even when a period makes them unused.
fn read_cadence(def: &Definition, global: &Settings, problems: &mut Problems) -> Option<Cadence> {
    let f = &def.fields;
    let set = |key: &str| f.last(key).filter(|v| !v.value.is_empty());
    let timezone = f
        .timezone("timezone", problems)
        .unwrap_or_else(|| global.timezone.clone());
    let early_tolerance = read_non_negative(f, "early_tolerance", problems);
    match (set("period"), set("schedule")) {
        (Some(period), Some(schedule)) => {
            let message = format!(
                "monitor {:?} has both period (line {}) and schedule (line {}); keep one",
                def.name, period.line, schedule.line
            );
            problems.error(&f.file, period.line.max(schedule.line), message);
            None
        }
        (None, None) => {
            let message = format!(
                "monitor {:?} has neither period nor schedule: add a line such as \
                 period = 1h or schedule = daily@03:00",
                def.name
            );
            problems.error(&f.file, f.line, message);
            None
        }
        (Some(_), None) => {
            if early_tolerance.is_some()
                && let Some(var) = f.last("early_tolerance")
            {
                let message = "early_tolerance is ignored because the monitor has a period \
                               (it only applies to a schedule)";
                problems.warn(&f.file, var.line, message);
            }
            read_period(f, problems).map(Cadence::Period)
        }
        (None, Some(_)) => Some(Cadence::Schedule {
            schedule: read_schedule(f, &timezone, problems)?,
            early_tolerance: early_tolerance.unwrap_or(DEFAULT_EARLY_TOLERANCE),
        }),
    }
}

/// `period`: at least one second.
fn read_period(f: &Fields, problems: &mut Problems) -> Option<Duration> {
    let period = f.duration("period", problems)?;
    match Duration::try_from(period) {
        Ok(period) if period >= MIN_MONITOR_PERIOD => Some(period),
        _ => {
            if let Some(var) = f.last("period") {
                let message = format!(
                    "period = {:?} is invalid: it must be at least 1s",
                    var.value
                );
                problems.error(&f.file, var.line, message);
            }
            None
        }
    }
}

/// A duration that may be zero; `None` when absent or empty, or (with an error)
/// negative or invalid.
fn read_non_negative(f: &Fields, key: &str, problems: &mut Problems) -> Option<Duration> {
    let value = f.duration(key, problems)?;
    match Duration::try_from(value) {
        Ok(value) => Some(value),
        Err(_) => {
            if let Some(var) = f.last(key) {
                let message = format!(
                    "{key} = {:?} is invalid: it must not be negative",
                    var.value
                );
                problems.error(&f.file, var.line, message);
            }
            None
        }
    }
}

/// `auth_kind` and the keys it needs: a `token` (at least [`MIN_TOKEN_LEN`]
/// characters, else a warning), or a `secret` (default the global one) and
/// `header_sign`. Neither value is ever quoted in a message.
fn read_auth(def: &Definition, global: &Settings, problems: &mut Problems) -> Option<MonitorAuth> {
    let f = &def.fields;
    let written = f.last("auth_kind").filter(|v| !v.value.is_empty());
    let kind_line = written.map_or(f.line, |v| v.line);
    let kind = match written {
        None => AuthKindWord::Token,
        Some(_) => f.typed(
            "auth_kind",
            problems,
            "token, hmac-sha256 or none",
            AuthKindWord::parse,
        )?,
    };
    if !matches!(kind, AuthKindWord::Token)
        && let Some(var) = f.last("token").filter(|v| !v.value.is_empty())
    {
        let message = "token is ignored because auth_kind is not token";
        problems.warn(&f.file, var.line, message);
    }
    match kind {
        AuthKindWord::Token => {
            let Some(var) = f.last("token").filter(|v| !v.value.is_empty()) else {
                let message = format!(
                    "monitor {:?} has no token: add token = <at least {MIN_TOKEN_LEN} random \
                     characters>, or set auth_kind = hmac-sha256 or none",
                    def.name
                );
                problems.error(&f.file, kind_line, message);
                return None;
            };
            if var.value.chars().count() < MIN_TOKEN_LEN {
                let message = format!(
                    "the token of monitor {:?} is shorter than {MIN_TOKEN_LEN} characters, \
                     so it is easy to guess",
                    def.name
                );
                problems.warn(&f.file, var.line, message);
            }
            Some(MonitorAuth::Token(var.value.clone()))
        }
        AuthKindWord::HmacSha256 => {
            let secret = match f.text("secret").trim() {
                "" => global.secret.clone(),
                secret => secret.to_string(),
            };
            Some(MonitorAuth::HmacSha256 {
                secret,
                header_sign: f.text_or("header_sign", HEADER_KARAJO_SIGN),
            })
        }
        AuthKindWord::None => {
            if !is_loopback_address(&global.listen_address) {
                let message = format!(
                    "monitor {:?} has auth_kind = none and karajo listens on {:?}: anyone \
                     who reaches that address can check in",
                    def.name, global.listen_address
                );
                problems.warn(&f.file, kind_line, message);
            }
            Some(MonitorAuth::None)
        }
    }
}

/// Whether a `listen_address` (`host:port`) only takes connections from this machine.
fn is_loopback_address(listen_address: &str) -> bool {
    let host = listen_address
        .rsplit_once(':')
        .map_or(listen_address, |(host, _port)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Reports monitors whose paths are the same after cleaning, compared without regard
/// to ASCII case as ping routes compare them (`/a/b`, `a/b` and `A/b/` are one path).
pub(crate) fn check_duplicate_monitor_paths(
    defs: &BTreeMap<String, Definition>,
    problems: &mut Problems,
) {
    let mut seen: HashMap<String, &Definition> = HashMap::new();
    for def in defs.values() {
        let Some(path) = monitor_path(def) else {
            continue;
        };
        match seen.get(&path.to_ascii_lowercase()) {
            Some(first) => {
                let message = format!(
                    "monitor {:?} has the same path {path:?} as monitor {:?} ({}:{})",
                    def.name,
                    first.name,
                    first.fields.file.display(),
                    path_line(first)
                );
                problems.error(&def.fields.file, path_line(def), message);
            }
            None => {
                seen.insert(path.to_ascii_lowercase(), def);
            }
        }
    }
}

/// Types the merged `[watchtower]` variables; `None` when it has no `password` (then
/// its routes do not exist, which gets a warning).
pub(crate) fn build_watchtower(
    fields: &Fields,
    problems: &mut Problems,
) -> Option<WatchtowerConfig> {
    fields.check_keys("[watchtower]", WATCHTOWER_KEYS, problems);
    let path_text = fields.text("path");
    let config = WatchtowerConfig {
        file: fields.file.clone(),
        line: fields.line,
        password: fields.text("password"),
        path: clean_path(&path_text).unwrap_or_else(|| DEFAULT_WATCHTOWER_PATH.to_string()),
        grace: read_non_negative(fields, "grace", problems).unwrap_or(Duration::ZERO),
        max_monitors: read_count(fields, "max_monitors", problems)
            .unwrap_or(DEFAULT_WATCHTOWER_MAX_MONITORS),
        log_retention: read_count(fields, "log_retention", problems)
            .unwrap_or(DEFAULT_MONITOR_LOG_RETENTION),
        notif_on_down: fields.list("notif_on_down"),
        notif_on_up: fields.list("notif_on_up"),
    };
    if config.password.is_empty() {
        let message = "[watchtower] has no password, so its routes are not served; \
                       add password = <a long random text>";
        problems.warn(&fields.file, fields.line, message);
        return None;
    }
    Some(config)
}
