//! Loading the configuration from disk in the original's order (spec 1.3): the main
//! file, `$dir_base/etc/karajo/user.conf`, then `job.d/*.conf` and `job_http.d/*.conf`
//! sorted by name. A later definition of a job, monitor or service name replaces the
//! earlier one of its kind. Every problem is collected, so one run reports them all.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::fields::{Fields, Problems};
use super::ini::{self, Document, Section};
use super::jobs::{
    Definition, JOB_NOTIF_KEYS, build_exec_job, build_http_job, check_duplicate_ids,
    check_duplicate_paths, check_notif_names, no_command_message,
};
use super::model::{Config, ConfigErrors, UserConfig};
use super::monitors::{
    MONITOR_NOTIF_KEYS, WATCHTOWER_NOTIF_KEYS, build_monitor, build_watchtower,
    check_duplicate_monitor_paths,
};
use super::notif::build_notif;
use super::services::{SERVICE_NOTIF_KEYS, build_services};
use super::settings::{Settings, read_settings};
use crate::cluster::ClusterSettings;

/// Section names.
const KARAJO: &str = "karajo";
const JOB: &str = "job";
const JOB_HTTP: &str = "job.http";
const NOTIF: &str = "notif";
const USER: &str = "user";
const MONITOR: &str = "monitor";
const WATCHTOWER: &str = "watchtower";
const SERVICE: &str = "service";
const CLUSTER: &str = "cluster";

/// Job, monitor, service and notif definitions gathered from all files, keyed by name (so
/// sorted, and a later definition replaces an earlier one).
#[derive(Debug, Default)]
struct Definitions {
    karajo: Vec<ini::Var>,
    karajo_line: usize,
    /// The merged `[watchtower]` sections and the line of the first, if any.
    watchtower: Option<(usize, Vec<ini::Var>)>,
    /// The merged `[cluster]` sections and the line of the first, if any.
    cluster: Option<(usize, Vec<ini::Var>)>,
    jobs: BTreeMap<String, Definition>,
    http_jobs: BTreeMap<String, Definition>,
    monitors: BTreeMap<String, Definition>,
    services: BTreeMap<String, Definition>,
    notifs: BTreeMap<String, Definition>,
}

/// Loads `config_file` and the files under its `dir_base`. Returns every error (and
/// the warnings seen so far) when anything is wrong; a missing main file is an error.
/// A command job without commands is left for the caller to judge (it may have a
/// registered function); see [`load_with`].
pub fn load(config_file: &Path) -> Result<Config, ConfigErrors> {
    load_with(config_file, &|_| true)
}

/// As [`load`], and a command job without commands is an error too unless
/// `has_function` says a function is registered for its name, so that this mistake is
/// reported in the same run as all the others.
pub fn load_with(
    config_file: &Path,
    has_function: &dyn Fn(&str) -> bool,
) -> Result<Config, ConfigErrors> {
    let mut problems = Problems::default();
    let cwd = current_dir(config_file, &mut problems);
    let doc = read_document(config_file, &mut problems).ok_or_else(|| fail(&mut problems))?;
    let mut defs = Definitions::default();
    collect_main(config_file, &doc, &mut defs, &mut problems);
    let karajo_fields = Fields {
        file: config_file.to_path_buf(),
        line: defs.karajo_line,
        vars: std::mem::take(&mut defs.karajo),
    };
    let settings = read_settings(&karajo_fields, &cwd, &mut problems);
    let etc = settings.dir_base.join("etc").join("karajo");
    let users = read_users(&etc.join("user.conf"), &mut problems);
    collect_dir(
        &etc.join("job.d"),
        &mut [
            (JOB, &mut defs.jobs),
            (MONITOR, &mut defs.monitors),
            (SERVICE, &mut defs.services),
        ],
        &mut problems,
    );
    collect_dir(
        &etc.join("job_http.d"),
        &mut [(JOB_HTTP, &mut defs.http_jobs)],
        &mut problems,
    );
    let config = assemble(config_file, settings, defs, users, &mut problems);
    let without_command = config
        .jobs
        .iter()
        .filter(|j| j.kind.as_exec().is_some_and(|e| e.commands.is_empty()));
    for job in without_command.map(|j| &j.common) {
        if !has_function(&job.name) {
            problems.error(&job.file, job.line, no_command_message(&job.name));
        }
    }
    in_reading_order(&mut problems);
    if problems.errors.is_empty() {
        Ok(Config {
            warnings: problems.warnings,
            ..config
        })
    } else {
        Err(fail(&mut problems))
    }
}

/// The `[cluster]` settings of `config_file`, for `karajo cluster init`, which works on
/// the cluster's NATS objects and runs no node. Reads the main file only (where
/// `[cluster]` is written), reports its syntax and section errors and every `[cluster]`
/// error as [`load`] does, except the refusals that concern running this node in
/// cluster mode (see `build_cluster_for_admin`). The daemon's [`load`] is unchanged.
pub fn load_cluster(config_file: &Path) -> Result<ClusterSettings, ConfigErrors> {
    let mut problems = Problems::default();
    let doc = read_document(config_file, &mut problems).ok_or_else(|| fail(&mut problems))?;
    let mut defs = Definitions::default();
    collect_main(config_file, &doc, &mut defs, &mut problems);
    let fields = defs.cluster.map(|(line, vars)| Fields {
        file: config_file.to_path_buf(),
        line,
        vars,
    });
    let settings = super::cluster::build_cluster_for_admin(
        fields.as_ref(),
        &super::cluster::host_name(),
        &|name| std::env::var(name).ok(),
        &mut problems,
    );
    in_reading_order(&mut problems);
    if problems.errors.is_empty() {
        Ok(settings)
    } else {
        Err(fail(&mut problems))
    }
}

/// Puts the diagnostics of each list in reading order: by file (in the order the
/// files were first named) then by line, so a report reads top to bottom even though
/// checks across jobs run last.
fn in_reading_order(problems: &mut Problems) {
    let mut files: Vec<PathBuf> = Vec::new();
    for d in problems.errors.iter().chain(&problems.warnings) {
        if !files.contains(&d.file) {
            files.push(d.file.clone());
        }
    }
    let rank = |file: &Path| files.iter().position(|f| f == file).unwrap_or(usize::MAX);
    problems.errors.sort_by_key(|d| (rank(&d.file), d.line));
    problems.warnings.sort_by_key(|d| (rank(&d.file), d.line));
}

fn fail(problems: &mut Problems) -> ConfigErrors {
    ConfigErrors {
        errors: std::mem::take(&mut problems.errors),
        warnings: std::mem::take(&mut problems.warnings),
    }
}

fn current_dir(config_file: &Path, problems: &mut Problems) -> PathBuf {
    std::env::current_dir().unwrap_or_else(|err| {
        let message = format!("cannot read the current directory (for dir_base): {err}");
        problems.error(config_file, 0, message);
        PathBuf::from("/")
    })
}

/// Reads and parses one file; `None` (with an error) when unreadable. Every syntax
/// error is reported, and what could be read past them is returned, so the checks
/// that follow report the file's other problems in the same run.
fn read_document(file: &Path, problems: &mut Problems) -> Option<Document> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(err) => {
            problems.error(file, 0, format!("cannot read: {err}"));
            return None;
        }
    };
    let parsed = ini::parse_all(&text);
    for err in parsed.errors {
        problems.error(file, err.line, err.kind.to_string());
    }
    Some(parsed.document)
}

/// The name of a section that needs one (`[job "NAME"]`); warns when it has none.
fn section_name<'a>(file: &Path, section: &'a Section, problems: &mut Problems) -> Option<&'a str> {
    let name = section.sub.as_deref();
    if name.is_none() {
        let message = format!(
            "section [{}] needs a name: [{} \"NAME\"]; ignored",
            section.name, section.name
        );
        problems.warn(file, section.line, message);
    }
    name
}

/// Every section name karajo knows, whatever the file.
const KNOWN_SECTIONS: [&str; 9] = [
    KARAJO, JOB, JOB_HTTP, MONITOR, SERVICE, NOTIF, USER, WATCHTOWER, CLUSTER,
];

/// The sections of the main file.
const MAIN_SECTIONS: [&str; 8] = [
    KARAJO, JOB, JOB_HTTP, MONITOR, SERVICE, NOTIF, WATCHTOWER, CLUSTER,
];

/// Where each section may be written, for the unknown-section error.
const WHERE_SECTIONS_GO: &str = "karajo reads [karajo], [job \"NAME\"], [job.http \"NAME\"], \
     [monitor \"NAME\"], [service \"NAME\"], [notif \"NAME\"], [watchtower] and [cluster] from the main \
     file, [job \"NAME\"], [monitor \"NAME\"] and [service \"NAME\"] from job.d/*.conf, \
     [job.http \"NAME\"] from job_http.d/*.conf and [user \"NAME\"] from user.conf";

/// A header as written in a file: `[name]` or `[name "sub"]`.
fn header(name: &str, sub: Option<&str>) -> String {
    match sub {
        Some(sub) => {
            let escaped = sub.replace('\\', "\\\\").replace('"', "\\\"");
            format!("[{name} \"{escaped}\"]")
        }
        None => format!("[{name}]"),
    }
}

fn warn_section_ignored(file: &Path, section: &Section, why: &str, problems: &mut Problems) {
    let header = header(&section.name, section.sub.as_deref());
    problems.warn(
        file,
        section.line,
        format!("section {header} {why}; ignored"),
    );
}

/// A section karajo does not know at all is an error: its job or settings would
/// silently not exist. Offers the closest of `allowed` (the sections this file may
/// hold), then says where each section goes.
fn unknown_section(file: &Path, section: &Section, allowed: &[&str], problems: &mut Problems) {
    let written = header(&section.name, section.sub.as_deref());
    let hint = match crate::suggest::closest(&section.name, allowed) {
        Some(KARAJO) => " (did you mean [karajo]?)".to_string(),
        Some(name) => {
            let sub = section.sub.as_deref().unwrap_or("NAME");
            format!(" (did you mean {}?)", header(name, Some(sub)))
        }
        None => String::new(),
    };
    let message = format!("unknown section {written}{hint}; {WHERE_SECTIONS_GO}");
    problems.error(file, section.line, message);
}

/// A section that is not `allowed` here: an error when karajo knows no such section,
/// a warning (`why`) when it belongs in another file.
fn misplaced_section(
    file: &Path,
    section: &Section,
    allowed: &[&str],
    why: &str,
    problems: &mut Problems,
) {
    if KNOWN_SECTIONS.contains(&section.name.as_str()) {
        warn_section_ignored(file, section, why, problems);
    } else {
        unknown_section(file, section, allowed, problems);
    }
}

/// Sorts the main file's sections into `defs`.
fn collect_main(file: &Path, doc: &Document, defs: &mut Definitions, problems: &mut Problems) {
    for section in &doc.sections {
        match (section.name.as_str(), &section.sub) {
            (KARAJO, None) => {
                defs.karajo_line = section.line;
                defs.karajo.extend(section.vars.iter().cloned());
            }
            (JOB, _) => add_definition(file, section, &mut defs.jobs, problems),
            (JOB_HTTP, _) => add_definition(file, section, &mut defs.http_jobs, problems),
            (MONITOR, _) => add_definition(file, section, &mut defs.monitors, problems),
            (SERVICE, _) => add_definition(file, section, &mut defs.services, problems),
            (NOTIF, _) => add_notif(file, section, &mut defs.notifs, problems),
            (WATCHTOWER, None) => {
                let (_, vars) = defs
                    .watchtower
                    .get_or_insert_with(|| (section.line, Vec::new()));
                vars.extend(section.vars.iter().cloned());
            }
            (CLUSTER, None) => {
                let (_, vars) = defs
                    .cluster
                    .get_or_insert_with(|| (section.line, Vec::new()));
                vars.extend(section.vars.iter().cloned());
            }
            (CLUSTER, Some(_)) => {
                warn_section_ignored(file, section, "takes no name (write [cluster])", problems)
            }
            (KARAJO, Some(_)) => {
                warn_section_ignored(file, section, "takes no name (write [karajo])", problems)
            }
            (WATCHTOWER, Some(_)) => warn_section_ignored(
                file,
                section,
                "takes no name (write [watchtower])",
                problems,
            ),
            (USER, _) => {
                warn_section_ignored(file, section, "is only read from user.conf", problems)
            }
            _ => unknown_section(file, section, &MAIN_SECTIONS, problems),
        }
    }
}

fn add_definition(
    file: &Path,
    section: &Section,
    into: &mut BTreeMap<String, Definition>,
    problems: &mut Problems,
) {
    let Some(name) = section_name(file, section, problems) else {
        return;
    };
    let def = Definition {
        name: name.to_string(),
        fields: Fields::new(file, section),
    };
    into.insert(name.to_string(), def);
}

fn add_notif(
    file: &Path,
    section: &Section,
    into: &mut BTreeMap<String, Definition>,
    problems: &mut Problems,
) {
    add_definition(file, section, into, problems);
}

/// Reads `user.conf`; a missing file means no users.
fn read_users(file: &Path, problems: &mut Problems) -> Vec<UserConfig> {
    if !file.exists() {
        return Vec::new();
    }
    let Some(doc) = read_document(file, problems) else {
        return Vec::new();
    };
    let mut users: BTreeMap<String, UserConfig> = BTreeMap::new();
    for section in &doc.sections {
        if section.name != USER {
            let why = "is not read from user.conf (only [user \"NAME\"])";
            misplaced_section(file, section, &[USER], why, problems);
            continue;
        }
        let Some(name) = section_name(file, section, problems) else {
            continue;
        };
        let fields = Fields::new(file, section);
        fields.check_keys("[user]", &["password"], problems);
        let password_hash = fields.text("password");
        if password_hash.is_empty() {
            let message = format!("user {name:?} has no password and cannot log in");
            problems.warn(file, section.line, message);
        } else if !is_bcrypt_hash(&password_hash)
            && let Some(var) = fields.last("password")
        {
            // The value is never shown: it may be the password itself.
            let message = format!(
                "the password of user {name:?} is not a bcrypt hash ($2a$, $2b$ or $2y$, \
                 a cost and 53 characters), so nobody can log in as {name:?}; user.conf \
                 keeps hashes, not passwords: run karajo hash-password and put its output \
                 here as password = $2..."
            );
            problems.error(file, var.line, message);
        }
        let user = UserConfig {
            name: name.to_string(),
            password_hash,
        };
        users.insert(name.to_string(), user);
    }
    users.into_values().collect()
}

/// Whether `text` has the form of a bcrypt hash: `$2a$`, `$2b$` or `$2y$`, a two-digit
/// cost from 04 to 31, `$`, then 53 characters of bcrypt's base64 (salt and hash).
pub(crate) fn is_bcrypt_hash(text: &str) -> bool {
    let Some(rest) = ["$2a$", "$2b$", "$2y$"]
        .iter()
        .find_map(|prefix| text.strip_prefix(prefix))
    else {
        return false;
    };
    let Some((cost, tail)) = rest.split_once('$') else {
        return false;
    };
    let cost_ok = cost.len() == 2
        && cost.bytes().all(|b| b.is_ascii_digit())
        && cost.parse::<u32>().is_ok_and(|c| (4..=31).contains(&c));
    let tail_ok = tail.len() == 53
        && tail
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/');
    cost_ok && tail_ok
}

/// The `*.conf` files of a job directory that the original reads: regular files (not
/// symlinks, not directories), not hidden, sorted by name. A missing directory is fine.
fn conf_files(dir: &Path, problems: &mut Problems) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(err) => {
            problems.error(dir, 0, format!("cannot read the directory: {err}"));
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| is_conf_name(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

fn is_conf_name(name: &str) -> bool {
    !name.starts_with('.') && name.ends_with(".conf")
}

/// `a`, `a and b`, `a, b and c`.
fn join_as_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Reads the sections of every file of `dir` into the map of their kind in `kinds`
/// (section name, definitions); other sections are misplaced.
fn collect_dir(
    dir: &Path,
    kinds: &mut [(&str, &mut BTreeMap<String, Definition>)],
    problems: &mut Problems,
) {
    let names: Vec<&str> = kinds.iter().map(|(name, _)| *name).collect();
    let only: Vec<String> = names.iter().map(|n| format!("[{n} \"NAME\"]")).collect();
    let why = format!(
        "is not read from this directory (only {})",
        join_as_list(&only)
    );
    for file in conf_files(dir, problems) {
        let Some(doc) = read_document(&file, problems) else {
            continue;
        };
        for section in &doc.sections {
            match kinds.iter_mut().find(|(name, _)| *name == section.name) {
                Some((_, into)) => add_definition(&file, section, into, problems),
                None => misplaced_section(&file, section, &names, &why, problems),
            }
        }
    }
}

/// Types every definition and runs the checks across jobs, monitors and services.
fn assemble(
    file: &Path,
    settings: Settings,
    defs: Definitions,
    users: Vec<UserConfig>,
    problems: &mut Problems,
) -> Config {
    let cluster_fields = defs.cluster.as_ref().map(|(line, vars)| Fields {
        file: file.to_path_buf(),
        line: *line,
        vars: vars.clone(),
    });
    let cluster = super::cluster::build_cluster(
        cluster_fields.as_ref(),
        crate::cluster::BUILT_WITH_NATS,
        settings.secret_generated,
        &super::cluster::host_name(),
        &|name| std::env::var(name).ok(),
        problems,
    );
    let exec_jobs = defs
        .jobs
        .values()
        .map(|def| build_exec_job(def, &settings, cluster.enabled, problems));
    let mut jobs: Vec<_> = exec_jobs.collect();
    let http_jobs = defs
        .http_jobs
        .values()
        .map(|def| build_http_job(def, &settings, cluster.enabled, problems));
    jobs.extend(http_jobs);
    check_duplicate_ids("job", &defs.jobs, problems);
    check_duplicate_ids("job.http", &defs.http_jobs, problems);
    check_duplicate_paths(&jobs, &defs.jobs, problems);
    let chained: Vec<_> = jobs
        .iter()
        .map(|job| super::policies::ChainedJob {
            name: &job.common.name,
            file: &job.common.file,
            policies: &job.common.policies,
        })
        .collect();
    super::policies::check_chains(&chained, problems);
    let monitors = defs
        .monitors
        .values()
        .filter_map(|def| build_monitor(def, &settings, problems))
        .collect();
    check_duplicate_ids("monitor", &defs.monitors, problems);
    check_duplicate_monitor_paths(&defs.monitors, problems);
    let services = build_services(&defs.services, problems);
    check_duplicate_ids("service", &defs.services, problems);
    let watchtower_fields = defs.watchtower.map(|(line, vars)| Fields {
        file: file.to_path_buf(),
        line,
        vars,
    });
    let watchtower = watchtower_fields
        .as_ref()
        .and_then(|fields| build_watchtower(fields, problems));
    let notifs = defs
        .notifs
        .values()
        .filter_map(|def| build_notif(def, problems))
        .collect();
    let known_notif = |name: &str| defs.notifs.contains_key(name);
    for def in defs.jobs.values().chain(defs.http_jobs.values()) {
        check_notif_names(&def.fields, JOB_NOTIF_KEYS, &known_notif, problems);
    }
    for def in defs.monitors.values() {
        check_notif_names(&def.fields, MONITOR_NOTIF_KEYS, &known_notif, problems);
    }
    for def in defs.services.values() {
        check_notif_names(&def.fields, SERVICE_NOTIF_KEYS, &known_notif, problems);
    }
    if let Some(fields) = &watchtower_fields {
        check_notif_names(fields, WATCHTOWER_NOTIF_KEYS, &known_notif, problems);
    }
    Config {
        file: file.to_path_buf(),
        name: settings.name,
        listen_address: settings.listen_address,
        dir_base: settings.dir_base,
        dir_public: settings.dir_public,
        secret: settings.secret,
        secret_generated: settings.secret_generated,
        http_timeout: settings.http_timeout,
        max_job_running: settings.max_job_running,
        is_development: settings.is_development,
        timezone: settings.timezone,
        epoch_window: settings.epoch_window,
        epoch_skew: settings.epoch_skew,
        accept_unstamped_signatures: settings.accept_unstamped_signatures,
        sourcehut_public_key: settings.sourcehut_public_key,
        max_body_size: settings.max_body_size,
        max_connections: settings.max_connections,
        header_read_timeout: settings.header_read_timeout,
        idle_timeout: settings.idle_timeout,
        body_read_timeout: settings.body_read_timeout,
        max_sse_streams: settings.max_sse_streams,
        jobs,
        public_url: settings.public_url,
        trusted_proxy: settings.trusted_proxy,
        ping_body_limit: settings.ping_body_limit,
        event_retention: settings.event_retention,
        event_day_max: settings.event_day_max,
        monitors,
        watchtower,
        services,
        notifs,
        users,
        cluster,
        warnings: Vec::new(),
    }
}

/// The configuration of a `karajo.conf` holding only `[karajo] dir_base = <dir_base>`:
/// every default, no job, no user. For embedders that build their jobs themselves and
/// for tests. Reads no file.
pub fn defaults(dir_base: &Path) -> Config {
    let mut problems = Problems::default();
    let file = dir_base.join("etc/karajo/karajo.conf");
    let fields = Fields {
        file: file.clone(),
        line: 0,
        vars: Vec::new(),
    };
    let mut settings = read_settings(&fields, dir_base, &mut problems);
    settings.dir_base = dir_base.to_path_buf();
    assemble(
        &file,
        settings,
        Definitions::default(),
        Vec::new(),
        &mut problems,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_hashes_are_recognised_by_their_form() {
        let salt_and_hash = "9XMRfqpnzY2421fwYm5dd.CidJf7dHHWIESeeNGXuajHRf.Lqzy7a";
        for prefix in ["$2a$10$", "$2b$04$", "$2y$31$"] {
            let hash = format!("{prefix}{salt_and_hash}");
            assert!(is_bcrypt_hash(&hash), "{hash}");
        }
        let not_hashes = [
            "s3cret".to_string(),
            String::new(),
            format!("$2x$10${salt_and_hash}"),
            format!("$2a$1${salt_and_hash}"),
            format!("$2a$03${salt_and_hash}"),
            format!("$2a$32${salt_and_hash}"),
            format!("$2a$10${salt_and_hash}x"),
            format!("$2a$10${}", &salt_and_hash[1..]),
            format!("$2a$10${}!", &salt_and_hash[1..]),
            format!("$2a$10{salt_and_hash}"),
        ];
        for text in not_hashes {
            assert!(!is_bcrypt_hash(&text), "{text}");
        }
    }
}
