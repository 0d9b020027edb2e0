//! The `[karajo]` section: global settings with their defaults (spec 2.2 plus the new
//! keys `timezone`, `epoch_window`, `epoch_skew`, `accept_unstamped_signatures`,
//! `sourcehut_public_key`, `max_body_size`, `public_url`, `trusted_proxy` and the HTTP
//! server's limits `max_connections`, `header_read_timeout`, `idle_timeout`,
//! `body_read_timeout`, `max_sse_streams`, and for monitors and the event log
//! `ping_body_limit`, `event_retention`, `event_day_max`), and the generated secret when
//! none is configured.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::tz::TimeZone;
use rand::Rng as _;
use rand::distr::Alphanumeric;

use super::fields::{Fields, Problems, positive};
use super::model::{
    DEFAULT_BODY_READ_TIMEOUT, DEFAULT_EPOCH_SKEW, DEFAULT_EPOCH_WINDOW, DEFAULT_EVENT_DAY_MAX,
    DEFAULT_EVENT_RETENTION, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_HTTP_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_LISTEN_ADDRESS, DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_SSE_STREAMS,
    DEFAULT_NAME, DEFAULT_PING_BODY_LIMIT,
};
use super::net::IpNet;

/// The keys a `[karajo]` section may hold.
pub(crate) const KARAJO_KEYS: &[&str] = &[
    "name",
    "listen_address",
    "dir_base",
    "dir_public",
    "secret",
    "http_timeout",
    "max_job_running",
    "is_development",
    "timezone",
    "epoch_window",
    "epoch_skew",
    "accept_unstamped_signatures",
    "sourcehut_public_key",
    "max_body_size",
    "public_url",
    "max_connections",
    "header_read_timeout",
    "idle_timeout",
    "body_read_timeout",
    "max_sse_streams",
    "trusted_proxy",
    "ping_body_limit",
    "event_retention",
    "event_day_max",
    "min_interval",
];

/// Length of a generated secret.
const GENERATED_SECRET_LEN: usize = 32;

/// The typed `[karajo]` settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) name: String,
    pub(crate) listen_address: String,
    pub(crate) dir_base: PathBuf,
    pub(crate) dir_public: Option<PathBuf>,
    pub(crate) secret: String,
    pub(crate) secret_generated: bool,
    pub(crate) http_timeout: Option<Duration>,
    pub(crate) max_job_running: usize,
    pub(crate) is_development: bool,
    pub(crate) timezone: TimeZone,
    pub(crate) epoch_window: Duration,
    pub(crate) epoch_skew: Duration,
    pub(crate) accept_unstamped_signatures: bool,
    pub(crate) sourcehut_public_key: [u8; 32],
    pub(crate) max_body_size: usize,
    pub(crate) public_url: Option<String>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) body_read_timeout: Duration,
    pub(crate) max_sse_streams: usize,
    pub(crate) trusted_proxy: Vec<IpNet>,
    pub(crate) ping_body_limit: usize,
    pub(crate) event_retention: Duration,
    pub(crate) event_day_max: u64,
    pub(crate) min_interval: Duration,
}

/// Reads the merged `[karajo]` variables; `cwd` anchors a relative `dir_base`.
pub(crate) fn read_settings(fields: &Fields, cwd: &Path, problems: &mut Problems) -> Settings {
    fields.check_keys("[karajo]", KARAJO_KEYS, problems);
    let (secret, secret_generated) = match fields.text("secret") {
        s if s.is_empty() => (generate_secret(), true),
        s => (s, false),
    };
    Settings {
        name: fields.text_or("name", DEFAULT_NAME),
        listen_address: fields.text_or("listen_address", DEFAULT_LISTEN_ADDRESS),
        dir_base: cwd.join(fields.text_or("dir_base", "/")),
        dir_public: Some(fields.text("dir_public"))
            .filter(|d| !d.is_empty())
            .map(PathBuf::from),
        secret,
        secret_generated,
        http_timeout: read_http_timeout(fields, problems),
        max_job_running: read_max_job_running(fields, problems),
        is_development: fields.boolean("is_development", problems),
        timezone: fields
            .timezone("timezone", problems)
            .unwrap_or(TimeZone::UTC),
        epoch_window: read_epoch_window(fields, problems),
        epoch_skew: read_epoch_skew(fields, problems),
        accept_unstamped_signatures: read_accept_unstamped(fields, problems),
        sourcehut_public_key: fields
            .key32("sourcehut_public_key", problems)
            .unwrap_or_else(default_sourcehut_key),
        max_body_size: read_max_body_size(fields, problems),
        public_url: read_public_url(fields, problems),
        max_connections: read_count(fields, "max_connections", problems),
        min_interval: read_positive_duration(
            fields,
            "min_interval",
            super::model::MIN_INTERVAL,
            problems,
        )
        .max(Duration::from_secs(1)),
        header_read_timeout: read_positive_duration(
            fields,
            "header_read_timeout",
            DEFAULT_HEADER_READ_TIMEOUT,
            problems,
        ),
        idle_timeout: read_positive_duration(
            fields,
            "idle_timeout",
            DEFAULT_IDLE_TIMEOUT,
            problems,
        ),
        body_read_timeout: read_positive_duration(
            fields,
            "body_read_timeout",
            DEFAULT_BODY_READ_TIMEOUT,
            problems,
        ),
        max_sse_streams: read_count(fields, "max_sse_streams", problems)
            .unwrap_or(DEFAULT_MAX_SSE_STREAMS),
        trusted_proxy: read_trusted_proxy(fields, problems),
        ping_body_limit: read_byte_count(fields, "ping_body_limit", problems)
            .unwrap_or(DEFAULT_PING_BODY_LIMIT),
        event_retention: read_positive_duration(
            fields,
            "event_retention",
            DEFAULT_EVENT_RETENTION,
            problems,
        ),
        event_day_max: read_count(fields, "event_day_max", problems)
            .map_or(DEFAULT_EVENT_DAY_MAX, |n| n as u64),
    }
}

/// `trusted_proxy` (new, repeatable): addresses or CIDR blocks, separated by commas or
/// spaces; empty by default (no proxy is trusted). Each bad entry is an error at its line.
fn read_trusted_proxy(fields: &Fields, problems: &mut Problems) -> Vec<IpNet> {
    let mut nets = Vec::new();
    for var in fields.all("trusted_proxy") {
        let entries = var
            .value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty());
        for entry in entries {
            match entry.parse::<IpNet>() {
                Ok(net) => nets.push(net),
                Err(err) => {
                    let message = format!("trusted_proxy = {entry:?} is invalid: {err}");
                    problems.error(&fields.file, var.line, message);
                }
            }
        }
    }
    nets
}

/// `public_url` (new): an `http://` or `https://` base URL; trailing `/` removed.
fn read_public_url(fields: &Fields, problems: &mut Problems) -> Option<String> {
    let var = fields.last("public_url").filter(|v| !v.value.is_empty())?;
    let url = var.value.trim().trim_end_matches('/');
    if url.starts_with("http://") || url.starts_with("https://") {
        return Some(url.to_string());
    }
    let message = format!(
        "public_url = {:?} is invalid: it must start with http:// or https://",
        var.value
    );
    problems.error(&fields.file, var.line, message);
    None
}

/// The built-in SourceHut key.
pub(crate) fn default_sourcehut_key() -> [u8; 32] {
    crate::auth::SOURCEHUT_PUBLIC_KEY
}

/// 32 random characters from `[0-9A-Za-z]`.
pub(crate) fn generate_secret() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(GENERATED_SECRET_LEN)
        .map(char::from)
        .collect()
}

/// `http_timeout`: absent or 0 → 5m; negative → no timeout.
fn read_http_timeout(fields: &Fields, problems: &mut Problems) -> Option<Duration> {
    match fields.duration("http_timeout", problems) {
        None => Some(DEFAULT_HTTP_TIMEOUT),
        Some(d) if d.is_zero() => Some(DEFAULT_HTTP_TIMEOUT),
        Some(d) => positive(d),
    }
}

/// `max_job_running`: ≤ 0 or absent → 1.
fn read_max_job_running(fields: &Fields, problems: &mut Problems) -> usize {
    fields
        .integer("max_job_running", problems)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

/// `epoch_window`: must be positive; default 5m.
fn read_epoch_window(fields: &Fields, problems: &mut Problems) -> Duration {
    read_positive_duration(fields, "epoch_window", DEFAULT_EPOCH_WINDOW, problems)
}

/// A duration that must be positive; `default` when absent or empty.
pub(crate) fn read_positive_duration(
    fields: &Fields,
    key: &str,
    default: Duration,
    problems: &mut Problems,
) -> Duration {
    let Some(value) = fields.duration(key, problems) else {
        return default;
    };
    positive(value).unwrap_or_else(|| {
        report_not_positive(fields, key, problems);
        default
    })
}

/// `accept_unstamped_signatures`: off by default; on, with a warning, because an
/// unstamped signature can be replayed forever.
fn read_accept_unstamped(fields: &Fields, problems: &mut Problems) -> bool {
    let on = fields.boolean("accept_unstamped_signatures", problems);
    if on && let Some(var) = fields.last("accept_unstamped_signatures") {
        problems.warn(
            &fields.file,
            var.line,
            "accept_unstamped_signatures is on: a signed request without _karajo_epoch \
             (the Go client's job_http pause and resume) is accepted again and again by \
             whoever captured it; turn it off once those clients stamp their requests",
        );
    }
    on
}

/// `epoch_skew`: how far ahead of the server a `_karajo_epoch` may be; zero or more;
/// default 5s.
fn read_epoch_skew(fields: &Fields, problems: &mut Problems) -> Duration {
    let Some(skew) = fields.duration("epoch_skew", problems) else {
        return DEFAULT_EPOCH_SKEW;
    };
    match Duration::try_from(skew) {
        Ok(skew) => skew,
        Err(_) => {
            if let Some(var) = fields.last("epoch_skew") {
                let message = format!(
                    "epoch_skew = {:?} is invalid: it must not be negative",
                    var.value
                );
                problems.error(&fields.file, var.line, message);
            }
            DEFAULT_EPOCH_SKEW
        }
    }
}

/// A count that must be positive; `None` when absent or empty (or, with an error,
/// invalid).
pub(crate) fn read_count(fields: &Fields, key: &str, problems: &mut Problems) -> Option<usize> {
    let count = fields.integer(key, problems)?;
    match usize::try_from(count) {
        Ok(count) if count > 0 => Some(count),
        _ => {
            report_not_positive(fields, key, problems);
            None
        }
    }
}

/// A number of bytes that may be zero; `None` when absent or empty (or, with an error,
/// negative or not a number).
pub(crate) fn read_byte_count(
    fields: &Fields,
    key: &str,
    problems: &mut Problems,
) -> Option<usize> {
    let count = fields.integer(key, problems)?;
    match usize::try_from(count) {
        Ok(count) => Some(count),
        Err(_) => {
            if let Some(var) = fields.last(key) {
                let message = format!(
                    "{key} = {:?} is invalid: it must not be negative",
                    var.value
                );
                problems.error(&fields.file, var.line, message);
            }
            None
        }
    }
}

/// `max_body_size`: a positive number of bytes; default 25 MiB.
fn read_max_body_size(fields: &Fields, problems: &mut Problems) -> usize {
    let Some(size) = fields.integer("max_body_size", problems) else {
        return DEFAULT_MAX_BODY_SIZE;
    };
    match usize::try_from(size) {
        Ok(size) if size > 0 => size,
        _ => {
            report_not_positive(fields, "max_body_size", problems);
            DEFAULT_MAX_BODY_SIZE
        }
    }
}

/// Reports that the last value of `key` must be greater than zero.
pub(crate) fn report_not_positive(fields: &Fields, key: &str, problems: &mut Problems) {
    if let Some(var) = fields.last(key) {
        let message = format!(
            "{key} = {:?} is invalid: it must be greater than zero",
            var.value
        );
        problems.error(&fields.file, var.line, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_32_alphanumerics() {
        let a = generate_secret();
        let b = generate_secret();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn default_sourcehut_key_decodes() {
        assert_ne!(default_sourcehut_key(), [0; 32]);
    }
}
