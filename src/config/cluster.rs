//! The `[cluster]` section of `karajo.conf` (cluster spec 4.1) into
//! [`ClusterSettings`], and each job's `run_on` (4.2). Every key is checked even while
//! cluster mode is off, so a mistake shows before the day it is turned on; errors name
//! the file and line. Values of the NATS credentials and URLs that start with `$` are read
//! from the environment, as `smtp_user` is. Cluster mode on needs an explicit `[karajo]
//! secret` (orders are signed with it, so every node must have the same one) and a
//! binary built with the `cluster-nats` feature.

use std::path::PathBuf;
use std::time::Duration;

use super::fields::{Fields, Problems};
use crate::cluster::{ClusterSettings, NOT_BUILT_MESSAGE, NatsAuth, NodeName, RunOn, check_tag};

/// The keys a `[cluster]` section may hold.
pub(crate) const CLUSTER_KEYS: &[&str] = &[
    "enabled",
    "node",
    "tag",
    "nats_url",
    "nats_creds",
    "nats_nkey_seed",
    "nats_user",
    "nats_password",
    "nats_token",
    "nats_tls_ca",
    "nats_tls_cert",
    "nats_tls_key",
    "nats_tls_first",
    "prefix",
    "provision",
    "replicas",
    "lease_ttl",
    "op_timeout",
    "ping_interval",
    "dispatch_ack_wait",
    "dispatch_max_deliver",
    "dispatch_timeout",
    "misfire_grace",
    "claim_retention",
    "log_max_age",
    "log_max_bytes",
];

/// Reads `[cluster]` (`None`: no such section, every default), with the environment as
/// `env` and this machine's host name as `host` (the default node name).
pub(crate) fn build_cluster(
    fields: Option<&Fields>,
    built_with_nats: bool,
    secret_generated: bool,
    host: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> ClusterSettings {
    let host_node = NodeName::from_host(host);
    let fallback = host_node.clone().unwrap_or_else(NodeName::fallback);
    let Some(f) = fields else {
        return ClusterSettings::defaults(fallback);
    };
    f.check_keys("[cluster]", CLUSTER_KEYS, problems);
    let enabled = f.boolean("enabled", problems);
    let mut settings = ClusterSettings::defaults(fallback);
    settings.enabled = enabled;
    settings.node = read_node(f, enabled, host, host_node, env, problems)
        .unwrap_or_else(|| settings.node.clone());
    settings.tags = read_tags(f, problems);
    let urls: Vec<String> = f
        .all("nats_url")
        .filter_map(|var| expand(f, "nats_url", &var.value, var.line, env, problems))
        .filter(|url| !url.is_empty())
        .collect();
    for url in &urls {
        if !["nats://", "tls://", "ws://", "wss://"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
            && url.contains("://")
        {
            report(
                f,
                "nats_url",
                format!("nats_url = {url:?} is not a nats:// or tls:// URL"),
                problems,
            );
        }
    }
    if !urls.is_empty() {
        settings.nats_urls = urls;
    }
    settings.auth = read_auth(f, env, problems);
    settings.tls_ca = path(f, "nats_tls_ca");
    settings.tls_client = match (path(f, "nats_tls_cert"), path(f, "nats_tls_key")) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => {
            let message = "nats_tls_cert and nats_tls_key go together: set both or neither";
            report(f, "nats_tls_cert", message.to_string(), problems);
            None
        }
    };
    settings.tls_first = f.boolean("nats_tls_first", problems);
    settings.prefix = read_prefix(f, problems);
    settings.provision = f.boolean_or("provision", true, problems);
    settings.replicas = read_replicas(f, problems);
    let positive = |key: &str, default: Duration, problems: &mut Problems| {
        read_positive(f, key, problems).unwrap_or(default)
    };
    settings.lease_ttl = positive("lease_ttl", settings.lease_ttl, problems);
    settings.op_timeout = positive("op_timeout", settings.op_timeout, problems);
    settings.ping_interval = positive("ping_interval", settings.ping_interval, problems);
    settings.dispatch_ack_wait =
        positive("dispatch_ack_wait", settings.dispatch_ack_wait, problems);
    settings.dispatch_timeout = positive("dispatch_timeout", settings.dispatch_timeout, problems);
    settings.claim_retention = positive("claim_retention", settings.claim_retention, problems);
    settings.log_max_age = positive("log_max_age", settings.log_max_age, problems);
    settings.misfire_grace = f
        .non_negative_duration("misfire_grace", problems)
        .unwrap_or(settings.misfire_grace);
    if let Some(count) = f.integer("dispatch_max_deliver", problems) {
        if count >= 1 {
            settings.dispatch_max_deliver = count;
        } else {
            report(
                f,
                "dispatch_max_deliver",
                format!("dispatch_max_deliver = {count} is invalid: it must be at least 1"),
                problems,
            );
        }
    }
    if let Some(bytes) = f.typed(
        "log_max_bytes",
        problems,
        "a size such as 1GiB, 500MiB or 1048576",
        parse_size,
    ) {
        settings.log_max_bytes = bytes;
    }
    if settings.claim_retention <= settings.misfire_grace {
        let message = format!(
            "claim_retention ({}) must be longer than misfire_grace ({}), or a caught-up slot could fire twice",
            super::duration::format_short(settings.claim_retention),
            super::duration::format_short(settings.misfire_grace),
        );
        report(f, "claim_retention", message, problems);
    }
    if enabled {
        if !built_with_nats {
            problems.error(&f.file, line_of(f, "enabled"), NOT_BUILT_MESSAGE);
        }
        if secret_generated {
            let message = "cluster mode needs [karajo] secret set to the same value on every node: \
                           orders between nodes are signed with it";
            problems.error(&f.file, line_of(f, "enabled"), message);
        }
    }
    settings
}

/// Reads `[cluster]` for an operator command that works on the cluster's NATS objects
/// and runs no node (`karajo cluster init`): every key is read and checked as by
/// [`build_cluster`], but a generated `[karajo] secret`, which only signs orders, is
/// not refused. The daemon's own load refuses it.
pub(crate) fn build_cluster_for_admin(
    fields: Option<&Fields>,
    host: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> ClusterSettings {
    let mut own = Problems::default();
    let settings = build_cluster(
        fields,
        crate::cluster::BUILT_WITH_NATS,
        false,
        host,
        env,
        &mut own,
    );
    problems.errors.append(&mut own.errors);
    problems.warnings.append(&mut own.warnings);
    settings
}

/// Reads one job's `run_on`: a bad value is an error at its line; a value other than
/// `local` or `any` while cluster mode is off is a warning (the job runs here).
pub(crate) fn read_run_on(f: &Fields, cluster_enabled: bool, problems: &mut Problems) -> RunOn {
    let Some(var) = f.last("run_on").filter(|v| !v.value.trim().is_empty()) else {
        return RunOn::default();
    };
    match RunOn::parse(&var.value) {
        Ok(run_on) => {
            if !cluster_enabled && !matches!(run_on, RunOn::Local | RunOn::Any) {
                let message = format!("run_on = {run_on} ignored: cluster mode is off");
                problems.warn(&f.file, var.line, message);
            }
            run_on
        }
        Err(why) => {
            problems.error(&f.file, var.line, why);
            RunOn::default()
        }
    }
}

/// `node`, or the host name made into a node name.
fn read_node(
    f: &Fields,
    enabled: bool,
    host: &str,
    host_node: Option<NodeName>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> Option<NodeName> {
    match f.last("node").filter(|v| !v.value.is_empty()) {
        Some(var) => {
            let value = expand(f, "node", &var.value, var.line, env, problems)?;
            match NodeName::parse(&value) {
                Ok(node) => Some(node),
                Err(why) => {
                    problems.error(&f.file, var.line, format!("node = {value:?}: {why}"));
                    None
                }
            }
        }
        None if host_node.is_none() && enabled => {
            let message = format!(
                "the host name {host:?} does not make a valid node name; set node = <name> in [cluster]"
            );
            problems.error(&f.file, f.line, message);
            None
        }
        None => host_node,
    }
}

fn read_tags(f: &Fields, problems: &mut Problems) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for var in f.all("tag") {
        let tag = var.value.trim();
        match check_tag(tag) {
            Ok(()) if !tags.iter().any(|t| t == tag) => tags.push(tag.to_string()),
            Ok(()) => {}
            Err(why) => problems.error(&f.file, var.line, why),
        }
    }
    tags
}

/// At most one of `nats_creds`, `nats_nkey_seed`, `nats_user` (with `nats_password`)
/// and `nats_token`.
fn read_auth(
    f: &Fields,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> NatsAuth {
    let value = |key: &str, problems: &mut Problems| -> Option<String> {
        let var = f.last(key).filter(|v| !v.value.is_empty())?;
        expand(f, key, &var.value, var.line, env, problems).filter(|v| !v.is_empty())
    };
    let creds = value("nats_creds", problems);
    let seed = value("nats_nkey_seed", problems);
    let user = value("nats_user", problems);
    let password = value("nats_password", problems);
    let token = value("nats_token", problems);
    let kinds = [
        creds.is_some(),
        seed.is_some(),
        user.is_some() || password.is_some(),
        token.is_some(),
    ];
    if kinds.iter().filter(|set| **set).count() > 1 {
        let message = "set at most one of nats_creds, nats_nkey_seed, nats_user (with nats_password) and nats_token";
        problems.error(&f.file, f.line, message);
        return NatsAuth::None;
    }
    match (creds, seed, user, password, token) {
        (Some(creds), ..) => NatsAuth::Creds(PathBuf::from(creds)),
        (_, Some(seed), ..) => NatsAuth::NkeySeed(PathBuf::from(seed)),
        (_, _, Some(user), Some(password), _) => NatsAuth::UserPassword { user, password },
        (_, _, Some(_), None, _) | (_, _, None, Some(_), _) => {
            let message = "nats_user and nats_password go together: set both or neither";
            problems.error(
                &f.file,
                line_of(f, "nats_user").max(line_of(f, "nats_password")),
                message,
            );
            NatsAuth::None
        }
        (_, _, _, _, Some(token)) => NatsAuth::Token(token),
        _ => NatsAuth::None,
    }
}

fn read_prefix(f: &Fields, problems: &mut Problems) -> String {
    let Some(var) = f.last("prefix").filter(|v| !v.value.is_empty()) else {
        return crate::cluster::DEFAULT_PREFIX.to_string();
    };
    let prefix = var.value.trim();
    let valid = prefix.len() <= 32
        && prefix
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !valid {
        let message = format!(
            "prefix = {prefix:?} is invalid: use 1 to 32 of a-z, 0-9, _ and -, starting with a letter"
        );
        problems.error(&f.file, var.line, message);
        return crate::cluster::DEFAULT_PREFIX.to_string();
    }
    prefix.to_string()
}

fn read_replicas(f: &Fields, problems: &mut Problems) -> usize {
    match f.integer("replicas", problems) {
        None => 1,
        Some(n @ 1..=5) => n as usize,
        Some(n) => {
            let message = format!("replicas = {n} is invalid: JetStream keeps 1 to 5 replicas");
            report(f, "replicas", message, problems);
            1
        }
    }
}

fn read_positive(f: &Fields, key: &str, problems: &mut Problems) -> Option<Duration> {
    let value = f.non_negative_duration(key, problems)?;
    if value.is_zero() {
        report(f, key, format!("{key} must be longer than 0"), problems);
        return None;
    }
    Some(value)
}

/// A size in bytes: `1048576`, `500MiB`, `1GiB`, `64KiB` (also `KB`, `MB`, `GB` as
/// powers of 1024, and `B`).
fn parse_size(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().ok()?;
    let factor: i64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(factor).filter(|n| *n > 0)
}

fn path(f: &Fields, key: &str) -> Option<PathBuf> {
    f.last(key)
        .map(|v| v.value.trim())
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `value`, or the environment variable it names when it starts with `$` (a warning and
/// `None` when that is unset).
fn expand(
    f: &Fields,
    key: &str,
    value: &str,
    line: usize,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> Option<String> {
    let Some(name) = value.strip_prefix('$') else {
        return Some(value.trim().to_string());
    };
    match env(name) {
        Some(value) if !value.is_empty() => Some(value),
        _ => {
            let message =
                format!("{key} = {value:?}: the environment variable {name} is not set or empty");
            problems.error(&f.file, line, message);
            None
        }
    }
}

fn line_of(f: &Fields, key: &str) -> usize {
    f.last(key).map_or(f.line, |v| v.line)
}

fn report(f: &Fields, key: &str, message: String, problems: &mut Problems) {
    problems.error(&f.file, line_of(f, key), message);
}

/// This machine's host name (`/proc/sys/kernel/hostname`), or `""`.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ini;

    fn read(text: &str, env: &[(&str, &str)]) -> (ClusterSettings, Problems) {
        let doc = ini::parse(&format!("[cluster]\n{text}")).unwrap();
        let fields = Fields::new(std::path::Path::new("karajo.conf"), &doc.sections[0]);
        let mut problems = Problems::default();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let settings = build_cluster(
            Some(&fields),
            true,
            false,
            "Web-1.example",
            &lookup,
            &mut problems,
        );
        (settings, problems)
    }

    fn errors(problems: &Problems) -> Vec<String> {
        problems
            .errors
            .iter()
            .map(|d| format!("{}: {}", d.line, d.message))
            .collect()
    }

    #[test]
    fn every_key_is_read_with_the_spec_defaults() {
        let (s, _) = read("enabled = true\n", &[]);
        assert!(s.enabled);
        assert_eq!(s.node.as_str(), "web-1_example");
        assert_eq!(s.nats_urls, ["nats://127.0.0.1:4222"]);
        assert_eq!(s.prefix, "karajo");
        assert_eq!(s.lease_ttl, Duration::from_secs(15));
        assert_eq!(s.op_timeout, Duration::from_secs(2));
        assert_eq!(s.dispatch_max_deliver, 5);
        assert_eq!(s.log_max_bytes, 1 << 30);
        let (s, problems) = read(
            "node = n2\ntag = gpu\ntag = ssd\nnats_url = nats://127.0.0.1:14222\nnats_url = tls://b:4222\n\
             nats_password = $NATS_PW\nnats_user = karajo\nprefix = ops\nreplicas = 3\nlease_ttl = 3s\n\
             op_timeout = 1s\nping_interval = 1s\ndispatch_ack_wait = 2s\ndispatch_max_deliver = 3\n\
             dispatch_timeout = 20s\nmisfire_grace = 30s\nclaim_retention = 1h\nlog_max_age = 24h\n\
             log_max_bytes = 500MiB\nprovision = false\nnats_tls_first = yes\n",
            &[("NATS_PW", "hunter2")],
        );
        assert!(errors(&problems).is_empty(), "{:?}", errors(&problems));
        assert_eq!(s.node.as_str(), "n2");
        assert_eq!(s.tags, ["gpu", "ssd"]);
        assert_eq!(s.nats_urls.len(), 2);
        assert_eq!(
            s.auth,
            NatsAuth::UserPassword {
                user: "karajo".into(),
                password: "hunter2".into()
            }
        );
        assert_eq!(s.prefix, "ops");
        assert_eq!(s.replicas, 3);
        assert_eq!(s.dispatch_timeout, Duration::from_secs(20));
        assert_eq!(s.misfire_grace, Duration::from_secs(30));
        assert_eq!(s.log_max_bytes, 500 << 20);
        assert!(!s.provision && s.tls_first && !s.enabled);
    }

    #[test]
    fn bad_values_are_errors_at_their_lines() {
        let (_, problems) = read(
            "node = any\ntag = GPU\nprefix = 9x\nreplicas = 7\nlease_ttl = 0s\n\
             dispatch_max_deliver = 0\nlog_max_bytes = lots\nnats_token = t\nnats_creds = /x.creds\n\
             nats_tls_cert = c.pem\nnats_password = $UNSET\n",
            &[],
        );
        let all = errors(&problems).join("\n");
        for expected in [
            "2: node = \"any\": node name \"any\" is reserved",
            "3: tag \"GPU\" is not valid",
            "4: prefix = \"9x\" is invalid",
            "5: replicas = 7 is invalid",
            "6: lease_ttl must be longer than 0",
            "7: dispatch_max_deliver = 0 is invalid",
            "8: log_max_bytes = \"lots\" is invalid",
            "11: nats_tls_cert and nats_tls_key go together",
            "12: nats_password = \"$UNSET\": the environment variable UNSET is not set",
            "set at most one of nats_creds, nats_nkey_seed",
        ] {
            assert!(all.contains(expected), "{expected:?} in\n{all}");
        }
        let (_, problems) = read("misfire_grace = 2h\nclaim_retention = 1h\n", &[]);
        assert!(
            errors(&problems)[0]
                .contains("claim_retention (1h) must be longer than misfire_grace (2h)")
        );
    }

    #[test]
    fn cluster_mode_needs_an_explicit_secret() {
        let doc = ini::parse("[cluster]\nenabled = true\nnode = n1\n").unwrap();
        let fields = Fields::new(std::path::Path::new("karajo.conf"), &doc.sections[0]);
        let mut problems = Problems::default();
        build_cluster(Some(&fields), true, true, "h", &|_| None, &mut problems);
        assert!(
            errors(&problems)
                .iter()
                .any(|e| e.starts_with("2: cluster mode needs [karajo] secret")),
            "{:?}",
            errors(&problems)
        );
    }

    #[test]
    fn a_binary_without_the_nats_backend_refuses_cluster_mode() {
        let doc = ini::parse("[cluster]\nenabled = true\nnode = n1\n").unwrap();
        let fields = Fields::new(std::path::Path::new("karajo.conf"), &doc.sections[0]);
        let mut problems = Problems::default();
        build_cluster(Some(&fields), false, false, "h", &|_| None, &mut problems);
        assert_eq!(
            errors(&problems),
            [format!("2: {NOT_BUILT_MESSAGE}")],
            "the spec's message, at the line of enabled"
        );
        let doc = ini::parse("[cluster]\nenabled = false\nnode = n1\n").unwrap();
        let fields = Fields::new(std::path::Path::new("karajo.conf"), &doc.sections[0]);
        let mut problems = Problems::default();
        build_cluster(Some(&fields), false, false, "h", &|_| None, &mut problems);
        assert!(errors(&problems).is_empty(), "off: nothing to refuse");
    }

    #[test]
    fn an_admin_read_does_not_refuse_enabled_but_checks_every_key() {
        let doc = ini::parse("[cluster]\nenabled = true\nnode = n1\nreplicas = 9\n").unwrap();
        let fields = Fields::new(std::path::Path::new("karajo.conf"), &doc.sections[0]);
        let mut problems = Problems::default();
        let s = build_cluster_for_admin(Some(&fields), "h", &|_| None, &mut problems);
        assert!(s.enabled);
        assert_eq!(s.node.as_str(), "n1");
        assert_eq!(
            errors(&problems),
            ["4: replicas = 9 is invalid: JetStream keeps 1 to 5 replicas"]
        );
    }

    #[test]
    fn run_on_is_checked_and_ignored_with_a_warning_while_cluster_mode_is_off() {
        let doc = ini::parse("[job \"x\"]\nrun_on = n2\n[job \"y\"]\nrun_on = Web 2\n").unwrap();
        let mut problems = Problems::default();
        let x = Fields::new(std::path::Path::new("job.conf"), &doc.sections[0]);
        assert_eq!(
            read_run_on(&x, false, &mut problems),
            RunOn::Node(NodeName::parse("n2").unwrap())
        );
        assert_eq!(
            problems.warnings[0].message,
            "run_on = n2 ignored: cluster mode is off"
        );
        assert_eq!(problems.warnings[0].line, 2);
        let y = Fields::new(std::path::Path::new("job.conf"), &doc.sections[1]);
        assert_eq!(read_run_on(&y, true, &mut problems), RunOn::Any);
        assert_eq!(problems.errors[0].line, 4);
        assert!(problems.errors[0].message.starts_with("run_on = \"Web 2\""));
    }

    #[test]
    fn sizes_read_with_binary_units() {
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("64KiB"), Some(64 << 10));
        assert_eq!(parse_size("1 GiB"), Some(1 << 30));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("1PB"), None);
    }
}
