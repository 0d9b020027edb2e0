//! `[notif "NAME"]` sections (spec 2.5 plus the new `webhook` and `pushover` kinds):
//! typed and checked here, so that a bad `kind`, `smtp_server` URL, address,
//! Pushover key or priority stops start-up with an error naming the file and line,
//! and the notifier only ever sees usable settings. Credentials written as `$NAME`
//! are read from the environment once, at load time. Also the `allow_target` rule of
//! monitors spec §1.5 ([`NotifConfig::with_target`]): which recipient a watchTower
//! pulse's `alertTarget` may put in place of the configured one. Pure apart from that
//! environment lookup; sending lives in [`crate::notify`].

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr as _;

use lettre::message::Mailbox;

use super::fields::Problems;
use super::jobs::Definition;

/// The keys a `[notif]` section may hold, whatever its kind.
const COMMON_KEYS: &[&str] = &["kind", "allow_target"];
/// The keys of `kind = email`.
const EMAIL_KEYS: &[&str] = &[
    "smtp_server",
    "smtp_user",
    "smtp_password",
    "smtp_insecure",
    "from",
    "to",
];
/// The keys of `kind = webhook`.
const WEBHOOK_KEYS: &[&str] = &["url", "secret"];
/// The keys of `kind = pushover`.
const PUSHOVER_KEYS: &[&str] = &["token", "user", "priority", "sound", "api_url"];

/// Pushover's API, where `kind = pushover` posts unless `api_url` says otherwise.
pub const PUSHOVER_API_URL: &str = "https://api.pushover.net";

/// The priority words `kind = pushover` accepts beside the numbers -2 to 2.
const PUSHOVER_PRIORITIES: &[(&str, i8)] = &[
    ("lowest", -2),
    ("low", -1),
    ("normal", 0),
    ("high", 1),
    ("emergency", 2),
];

/// A `[notif "NAME"]` section, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifConfig {
    /// The subsection name, as `notif_on_*` refer to it.
    pub name: String,
    /// The defining file.
    pub file: PathBuf,
    /// The line of the section header.
    pub line: usize,
    /// What to send and where.
    pub kind: NotifKind,
    /// `allow_target` (new, default false): whether a watchTower pulse's
    /// `alertTarget` may replace the recipient (see [`NotifConfig::with_target`]).
    pub allow_target: bool,
}

impl NotifConfig {
    /// This notif with `target` (a watchTower pulse's `alertTarget`) as its
    /// recipient, under the rules of monitors spec §1.5:
    ///
    /// * a blank target is no target: the notif is returned as configured;
    /// * a `webhook` is never retargeted ([`TargetError::Webhook`]), so that a
    ///   pulse cannot make karajo post to an address of its choosing;
    /// * otherwise `allow_target` must be true ([`TargetError::NotAllowed`]);
    /// * `email`: the target replaces `to` and must be one bare mail address such as
    ///   `ops@example.org` ([`TargetError::BadAddress`]);
    /// * `pushover`: the target replaces `user` and must be a Pushover user or group
    ///   key, 30 ASCII letters and digits ([`TargetError::BadUserKey`]).
    pub fn with_target(&self, target: &str) -> Result<Self, TargetError> {
        let target = target.trim();
        if target.is_empty() {
            return Ok(self.clone());
        }
        let notif = || self.name.clone();
        let mut out = self.clone();
        match &mut out.kind {
            NotifKind::Webhook(_) => return Err(TargetError::Webhook { notif: notif() }),
            _ if !self.allow_target => return Err(TargetError::NotAllowed { notif: notif() }),
            NotifKind::Email(email) => {
                if !is_one_address(target) {
                    return Err(TargetError::BadAddress {
                        notif: notif(),
                        target: target.to_string(),
                    });
                }
                email.to = vec![target.to_string()];
            }
            NotifKind::Pushover(pushover) => {
                if !is_pushover_key(target) {
                    return Err(TargetError::BadUserKey { notif: notif() });
                }
                pushover.user = target.to_string();
            }
        }
        Ok(out)
    }
}

/// Why a pulse's `alertTarget` cannot be used with a notif. The messages name the
/// notif and the problem; a Pushover key is never repeated in them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The notif does not set `allow_target = true`.
    #[error("notif {notif:?} does not accept a target (allow_target is not set)")]
    NotAllowed {
        /// The notif's name.
        notif: String,
    },
    /// Webhook URLs are never replaced.
    #[error("notif {notif:?} is a webhook, whose url a target never replaces")]
    Webhook {
        /// The notif's name.
        notif: String,
    },
    /// An email target that is not exactly one mail address.
    #[error(
        "target {target:?} for notif {notif:?} is not one mail address such as ops@example.org"
    )]
    BadAddress {
        /// The notif's name.
        notif: String,
        /// The target as given (trimmed).
        target: String,
    },
    /// A pushover target that is not a user or group key.
    #[error(
        "the target for notif {notif:?} is not a Pushover user or group key (30 letters and digits)"
    )]
    BadUserKey {
        /// The notif's name.
        notif: String,
    },
}

/// Whether `text` is exactly one bare mail address (`local@domain`, no display name,
/// no list), as lettre parses one.
fn is_one_address(text: &str) -> bool {
    text.len() <= 254
        && !text.contains([',', ';', '<', '>', ' ', '"'])
        && lettre::Address::from_str(text).is_ok()
}

/// Whether `text` has the shape of a Pushover token or user key: `[A-Za-z0-9]{30}`.
pub fn is_pushover_key(text: &str) -> bool {
    text.len() == 30 && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The kinds of notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifKind {
    /// `kind = email`: a mail through an SMTP server.
    Email(EmailNotif),
    /// `kind = webhook` (new): a signed JSON `POST`.
    Webhook(WebhookNotif),
    /// `kind = pushover` (new): a message through Pushover's API.
    Pushover(PushoverNotif),
}

impl NotifKind {
    /// `email`, `webhook` or `pushover`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Email(_) => "email",
            Self::Webhook(_) => "webhook",
            Self::Pushover(_) => "pushover",
        }
    }
}

/// How the connection to the SMTP server is secured, from the `smtp_server` scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtps://`: TLS from the first byte (default port 465).
    Tls,
    /// `smtp+starttls://`: plain, then `STARTTLS`, required (default port 587).
    StartTls,
    /// `smtp://`: no TLS at all (default port 25).
    Plain,
}

impl SmtpSecurity {
    /// The URL scheme.
    pub fn scheme(self) -> &'static str {
        match self {
            Self::Tls => "smtps",
            Self::StartTls => "smtp+starttls",
            Self::Plain => "smtp",
        }
    }

    /// The port used when the URL has none.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Tls => 465,
            Self::StartTls => 587,
            Self::Plain => 25,
        }
    }
}

/// `smtp_server`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    /// TLS mode.
    pub security: SmtpSecurity,
    /// Host name or IP address (without IPv6 brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "{}://{host}:{}", self.security.scheme(), self.port)
    }
}

/// `kind = email`.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailNotif {
    /// `smtp_server`.
    pub server: SmtpServer,
    /// `smtp_user` (a `$NAME` value read from the environment); no AUTH when empty.
    pub user: String,
    /// `smtp_password` (a `$NAME` value read from the environment); no AUTH when empty.
    pub password: String,
    /// `smtp_insecure`: accept any certificate and host name.
    pub insecure: bool,
    /// `from`: the sender, `addr@host` or `Name <addr@host>`.
    pub from: String,
    /// `to`: the recipients, at least one.
    pub to: Vec<String>,
}

impl EmailNotif {
    /// Whether to authenticate: both user and password are set.
    pub fn has_credentials(&self) -> bool {
        !self.user.is_empty() && !self.password.is_empty()
    }
}

impl fmt::Debug for EmailNotif {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailNotif")
            .field("server", &self.server)
            .field("user", &self.user)
            .field("password", &redacted(&self.password))
            .field("insecure", &self.insecure)
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

/// `kind = webhook`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookNotif {
    /// `url`: where the JSON document is posted (`http://` or `https://`).
    pub url: String,
    /// `secret`: when set, the body's HMAC-SHA256 goes in `X-Karajo-Sign`.
    pub secret: Option<String>,
}

impl fmt::Debug for WebhookNotif {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookNotif")
            .field("url", &self.url)
            .field("secret", &self.secret.as_deref().map(redacted))
            .finish()
    }
}

/// `kind = pushover`. The token and the user key are secrets: [`fmt::Debug`] hides
/// them, and the sender keeps them out of its errors and logs.
#[derive(Clone, PartialEq, Eq)]
pub struct PushoverNotif {
    /// `token`: the application's API token (a `$NAME` value read from the
    /// environment).
    pub token: String,
    /// `user`: the user or group key (a `$NAME` value read from the environment).
    pub user: String,
    /// `priority`: -2 (lowest) to 2 (emergency); Pushover's default (0) when unset.
    pub priority: Option<i8>,
    /// `sound`: the name of a Pushover sound (built in or uploaded); the user's
    /// default when unset.
    pub sound: Option<String>,
    /// `api_url`: the base URL of the API, [`PUSHOVER_API_URL`] unless set (tests
    /// and Pushover-compatible servers); messages go to `<api_url>/1/messages.json`.
    pub api_url: String,
}

impl fmt::Debug for PushoverNotif {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushoverNotif")
            .field("token", &redacted(&self.token))
            .field("user", &redacted(&self.user))
            .field("priority", &self.priority)
            .field("sound", &self.sound)
            .field("api_url", &crate::redact::url(&self.api_url))
            .finish()
    }
}

fn redacted(value: &str) -> &'static str {
    if value.is_empty() { "" } else { "<redacted>" }
}

/// Types one `[notif]` definition, reading `$NAME` credentials from the process
/// environment. `None` (with errors in `problems`) when it is unusable.
pub(crate) fn build_notif(def: &Definition, problems: &mut Problems) -> Option<NotifConfig> {
    build_notif_with_env(def, &|name| std::env::var(name).ok(), problems)
}

/// [`build_notif`] with the environment given as a lookup function (tests).
pub(crate) fn build_notif_with_env(
    def: &Definition,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> Option<NotifConfig> {
    let f = &def.fields;
    let kind_word = f.text("kind");
    let line = f.last("kind").map_or(f.line, |v| v.line);
    let kind = match kind_word.to_ascii_lowercase().as_str() {
        "email" => {
            f.check_keys("[notif] of kind email", &keys(EMAIL_KEYS), problems);
            read_email(def, env, problems).map(NotifKind::Email)
        }
        "webhook" => {
            f.check_keys("[notif] of kind webhook", &keys(WEBHOOK_KEYS), problems);
            read_webhook(def, problems).map(NotifKind::Webhook)
        }
        "pushover" => {
            f.check_keys("[notif] of kind pushover", &keys(PUSHOVER_KEYS), problems);
            read_pushover(def, env, problems).map(NotifKind::Pushover)
        }
        _ => {
            f.check_cut_values(problems);
            let message = format!(
                "notif {:?}: unknown kind {kind_word:?} (use email, webhook or pushover)",
                def.name
            );
            problems.error(&f.file, line, message);
            None
        }
    }?;
    let allow_target = f.boolean("allow_target", problems);
    if allow_target && let NotifKind::Webhook(_) = kind {
        let line = f.last("allow_target").map_or(f.line, |v| v.line);
        let message = format!(
            "notif {:?}: allow_target has no effect on a webhook (its url is never replaced)",
            def.name
        );
        problems.warn(&f.file, line, message);
    }
    Some(NotifConfig {
        name: def.name.clone(),
        file: f.file.clone(),
        line: f.line,
        kind,
        allow_target,
    })
}

fn keys(specific: &[&'static str]) -> Vec<&'static str> {
    COMMON_KEYS.iter().chain(specific).copied().collect()
}

fn read_email(
    def: &Definition,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> Option<EmailNotif> {
    let f = &def.fields;
    let errors_before = problems.errors.len();
    let server = match f.last("smtp_server") {
        Some(var) => match parse_smtp_server(&var.value) {
            Ok(server) => Some(server),
            Err(why) => {
                let message = format!("smtp_server = {:?} is invalid: {why}", var.value);
                problems.error(&f.file, var.line, message);
                None
            }
        },
        None => {
            let message = format!("notif {:?}: smtp_server is required", def.name);
            problems.error(&f.file, f.line, message);
            None
        }
    };
    let from = f.text("from");
    match f.last("from") {
        None => {
            let message = format!("notif {:?}: from is required", def.name);
            problems.error(&f.file, f.line, message);
        }
        Some(var) => check_address("from", var.value.as_str(), var.line, def, problems),
    }
    let to = f.list("to");
    if to.is_empty() {
        let message = format!("notif {:?}: at least one to is required", def.name);
        problems.error(&f.file, f.line, message);
    }
    for var in f.all("to") {
        check_address("to", &var.value, var.line, def, problems);
    }
    let user = credential(def, "smtp_user", env, problems);
    let password = credential(def, "smtp_password", env, problems);
    if user.is_empty() != password.is_empty() {
        let message = format!(
            "notif {:?}: only one of smtp_user and smtp_password is set; mail is sent without AUTH",
            def.name
        );
        problems.warn(&f.file, f.line, message);
    }
    let insecure = f.boolean("smtp_insecure", problems);
    if problems.errors.len() > errors_before {
        return None;
    }
    Some(EmailNotif {
        server: server?,
        user,
        password,
        insecure,
        from,
        to,
    })
}

fn check_address(key: &str, value: &str, line: usize, def: &Definition, problems: &mut Problems) {
    if let Err(err) = Mailbox::from_str(value) {
        let detail = err.to_string().to_lowercase();
        let message = format!(
            "{key} = {value:?} is not a mail address such as karajo@example.org ({detail})"
        );
        problems.error(&def.fields.file, line, message);
    }
}

/// The value of a credential key; `$NAME` is read from the environment variable
/// `NAME` (a warning when it is not set).
fn credential(
    def: &Definition,
    key: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> String {
    let Some(var) = def.fields.last(key) else {
        return String::new();
    };
    let Some(name) = var.value.strip_prefix('$') else {
        return var.value.clone();
    };
    match env(name) {
        Some(value) if !value.is_empty() => value,
        _ => {
            let message = format!(
                "{key} = {:?}: the environment variable {name} is not set or empty",
                var.value
            );
            problems.warn(&def.fields.file, var.line, message);
            String::new()
        }
    }
}

fn read_webhook(def: &Definition, problems: &mut Problems) -> Option<WebhookNotif> {
    let f = &def.fields;
    let Some(var) = f.last("url") else {
        let message = format!("notif {:?}: url is required", def.name);
        problems.error(&f.file, f.line, message);
        return None;
    };
    let url = var.value.trim();
    if !is_http_url(url) {
        let message = format!(
            "url = {:?} is invalid: it must be http://HOST/... or https://HOST/...",
            var.value
        );
        problems.error(&f.file, var.line, message);
        return None;
    }
    let secret = Some(f.text("secret")).filter(|s| !s.is_empty());
    Some(WebhookNotif {
        url: url.to_string(),
        secret,
    })
}

fn read_pushover(
    def: &Definition,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> Option<PushoverNotif> {
    let f = &def.fields;
    let errors_before = problems.errors.len();
    let api_url = match f.last("api_url").filter(|v| !v.value.trim().is_empty()) {
        None => PUSHOVER_API_URL.to_string(),
        Some(var) => {
            let url = var.value.trim().trim_end_matches('/');
            if !is_http_url(url) || url.contains(['?', '#']) {
                let message = format!(
                    "api_url = {:?} is invalid: it must be http://HOST[/PATH] or \
                     https://HOST[/PATH], without a query",
                    crate::redact::url(&var.value)
                );
                problems.error(&f.file, var.line, message);
            }
            url.to_string()
        }
    };
    // Pushover's own keys have one shape; a stand-in server at api_url may differ.
    let custom_api = api_url != PUSHOVER_API_URL;
    let token = pushover_key(def, "token", "application token", custom_api, env, problems);
    let user = pushover_key(def, "user", "user or group key", custom_api, env, problems);
    let priority = f.last("priority").filter(|v| !v.value.trim().is_empty());
    let priority = priority.and_then(|var| match parse_priority(&var.value) {
        Some(p) => Some(p),
        None => {
            let message = format!(
                "priority = {:?} is invalid: use -2, -1, 0, 1 or 2 (or lowest, low, normal, \
                 high, emergency)",
                var.value
            );
            problems.error(&f.file, var.line, message);
            None
        }
    });
    let sound = f.last("sound").filter(|v| !v.value.trim().is_empty());
    let sound = sound.and_then(|var| {
        let name = var.value.trim();
        let good = name.len() <= 20
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if good {
            Some(name.to_string())
        } else {
            let message = format!(
                "sound = {:?} is invalid: a Pushover sound name has at most 20 letters, \
                 digits, _ and -",
                var.value
            );
            problems.error(&f.file, var.line, message);
            None
        }
    });
    if problems.errors.len() > errors_before {
        return None;
    }
    Some(PushoverNotif {
        token,
        user,
        priority,
        sound,
        api_url,
    })
}

/// A required Pushover credential (`token` or `user`), `$NAME` read from the
/// environment. Missing or empty is an error; a value not shaped like Pushover's
/// keys is an error too, or only a warning when `api_url` points elsewhere. The
/// messages never repeat the value.
fn pushover_key(
    def: &Definition,
    key: &str,
    what: &str,
    custom_api: bool,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> String {
    let f = &def.fields;
    let line = f.last(key).map_or(f.line, |v| v.line);
    let value = credential(def, key, env, problems);
    if value.is_empty() {
        let message = format!(
            "notif {:?}: {key} (the Pushover {what}) is required",
            def.name
        );
        problems.error(&f.file, line, message);
    } else if !is_pushover_key(&value) {
        let message = format!(
            "notif {:?}: {key} is not a Pushover {what} (30 letters and digits)",
            def.name
        );
        if custom_api {
            problems.warn(&f.file, line, message);
        } else {
            problems.error(&f.file, line, message);
        }
    }
    value
}

/// `-2` to `2`, or a word of [`PUSHOVER_PRIORITIES`] (any case).
fn parse_priority(text: &str) -> Option<i8> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i8>() {
        return (-2..=2).contains(&n).then_some(n);
    }
    PUSHOVER_PRIORITIES
        .iter()
        .find(|(word, _)| word.eq_ignore_ascii_case(text))
        .map(|(_, n)| *n)
}

/// `http://HOST...` or `https://HOST...` with a non-empty host.
fn is_http_url(url: &str) -> bool {
    url.strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
}

/// Parses `scheme://host[:port]` with the schemes `smtps`, `smtp+starttls` and
/// `smtp`. IPv6 hosts go in brackets. Credentials and paths are refused.
pub fn parse_smtp_server(text: &str) -> Result<SmtpServer, String> {
    let text = text.trim();
    let (scheme, rest) = text
        .split_once("://")
        .ok_or("expected scheme://host[:port]")?;
    let security = match scheme.to_ascii_lowercase().as_str() {
        "smtps" => SmtpSecurity::Tls,
        "smtp+starttls" => SmtpSecurity::StartTls,
        "smtp" => SmtpSecurity::Plain,
        other => {
            return Err(format!(
                "unknown scheme {other:?} (use smtps, smtp+starttls or smtp)"
            ));
        }
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('/') || authority.contains('?') || authority.contains('#') {
        return Err("only scheme://host[:port] is allowed, without a path".into());
    }
    if authority.contains('@') {
        return Err("put the credentials in smtp_user and smtp_password, not in the URL".into());
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or("an IPv6 address lacks its closing ]")?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("expected :port after ]")?),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("the host is missing".into());
    }
    let port = match port {
        None => security.default_port(),
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(format!("bad port {p:?}")),
        },
    };
    Ok(SmtpServer {
        security,
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::fields::Fields;
    use crate::config::ini;

    fn definition(body: &str) -> Definition {
        let doc = ini::parse(&format!("[notif \"n\"]\n{body}")).unwrap();
        Definition {
            name: "n".into(),
            fields: Fields::new(Path::new("k.conf"), &doc.sections[0]),
        }
    }

    fn build(body: &str) -> (Option<NotifConfig>, Problems) {
        let env = |name: &str| match name {
            "SMTP_PASS" => Some("from-env".to_string()),
            "PO_TOKEN" => Some(TOKEN.to_string()),
            _ => None,
        };
        let mut problems = Problems::default();
        let notif = build_notif_with_env(&definition(body), &env, &mut problems);
        (notif, problems)
    }

    fn errors(problems: &Problems) -> Vec<String> {
        problems.errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn smtp_server_urls_get_default_ports() {
        let cases = [
            (
                "smtps://mail.example",
                SmtpSecurity::Tls,
                "mail.example",
                465,
            ),
            ("smtp+starttls://m:2587", SmtpSecurity::StartTls, "m", 2587),
            ("SMTP://127.0.0.1/", SmtpSecurity::Plain, "127.0.0.1", 25),
            ("smtps://[::1]:1465", SmtpSecurity::Tls, "::1", 1465),
            ("smtps://[::1]", SmtpSecurity::Tls, "::1", 465),
        ];
        for (url, security, host, port) in cases {
            let server = parse_smtp_server(url).unwrap();
            assert_eq!(
                server,
                SmtpServer {
                    security,
                    host: host.into(),
                    port
                },
                "{url}"
            );
        }
        assert_eq!(
            parse_smtp_server("smtps://[::1]:1465").unwrap().to_string(),
            "smtps://[::1]:1465"
        );
    }

    #[test]
    fn bad_smtp_server_urls_are_refused() {
        for url in [
            "mail.example",
            "imap://mail.example",
            "smtps://",
            "smtps://host:0",
            "smtps://host:x",
            "smtps://host:70000",
            "smtps://u:p@host",
            "smtps://host/path",
            "smtps://[::1",
        ] {
            assert!(parse_smtp_server(url).is_err(), "{url}");
        }
    }

    #[test]
    fn an_email_notif_is_typed_and_reads_dollar_values_from_the_environment() {
        let (notif, problems) = build(
            "kind = email\nsmtp_server = smtps://mail.example\nsmtp_user = bot\n\
             smtp_password = $SMTP_PASS\nsmtp_insecure = true\nfrom = Karajo <k@example.org>\n\
             to = a@example.org\nto = b@example.org\n",
        );
        assert!(problems.errors.is_empty(), "{:?}", errors(&problems));
        assert!(problems.warnings.is_empty());
        let notif = notif.unwrap();
        let NotifKind::Email(email) = notif.kind else {
            panic!("not email")
        };
        assert_eq!(email.server.port, 465);
        assert_eq!(email.user, "bot");
        assert_eq!(email.password, "from-env");
        assert!(email.insecure && email.has_credentials());
        assert_eq!(email.to, ["a@example.org", "b@example.org"]);
        assert!(!format!("{email:?}").contains("from-env"));
    }

    #[test]
    fn empty_or_unset_credentials_mean_no_auth() {
        let (notif, problems) = build(
            "kind = email\nsmtp_server = smtp://h\nsmtp_password = $NOPE\nfrom = k@h\nto = a@h\n",
        );
        let NotifKind::Email(email) = notif.unwrap().kind else {
            panic!("not email")
        };
        assert!(!email.has_credentials());
        let warnings: Vec<String> = problems.warnings.iter().map(ToString::to_string).collect();
        assert!(
            warnings[0].contains(":4: smtp_password = \"$NOPE\": the environment variable NOPE"),
            "{warnings:?}"
        );
    }

    #[test]
    fn email_mistakes_are_errors_with_their_lines() {
        let (notif, problems) =
            build("kind = email\nsmtp_server = pop3://h\nfrom = not an address\nto = x@y\n");
        assert!(notif.is_none());
        let found = errors(&problems);
        assert!(found[0].starts_with("k.conf:3: smtp_server"), "{found:?}");
        assert!(found[1].starts_with("k.conf:4: from"), "{found:?}");
        let (_, problems) = build("kind = email\n");
        assert_eq!(errors(&problems).len(), 3, "{:?}", errors(&problems));
    }

    #[test]
    fn unknown_kinds_are_errors() {
        let (notif, problems) = build("kind = sms\n");
        assert!(notif.is_none());
        assert_eq!(
            errors(&problems),
            ["k.conf:2: notif \"n\": unknown kind \"sms\" (use email, webhook or pushover)"]
        );
        let (_, problems) = build("to = a@b\n");
        assert!(errors(&problems)[0].starts_with("k.conf:1: notif \"n\": unknown kind \"\""));
    }

    #[test]
    fn webhook_notifs_need_an_http_url() {
        let (notif, problems) = build("kind = webhook\nurl = https://h/x\nsecret = s\nto = a@b\n");
        assert_eq!(
            notif.unwrap().kind,
            NotifKind::Webhook(WebhookNotif {
                url: "https://h/x".into(),
                secret: Some("s".into())
            })
        );
        assert_eq!(problems.warnings.len(), 1, "to is not a webhook key");
        for body in [
            "kind = webhook\n",
            "kind = webhook\nurl = ftp://h\n",
            "kind = webhook\nurl = http://\n",
        ] {
            let (notif, problems) = build(body);
            assert!(notif.is_none() && problems.errors.len() == 1, "{body}");
        }
    }

    const TOKEN: &str = "azGDORePK8gMaC0QOYAMyEEuzJnyUi";
    const USER: &str = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG";
    const OTHER_USER: &str = "gznej3rKEVAvPUxu9vvNnqpmZpokzF";

    fn warnings(problems: &Problems) -> Vec<String> {
        problems.warnings.iter().map(ToString::to_string).collect()
    }

    fn pushover(body: &str) -> (Option<PushoverNotif>, Problems) {
        let (notif, problems) = build(&format!("kind = pushover\n{body}"));
        let kind = notif.map(|n| match n.kind {
            NotifKind::Pushover(p) => p,
            other => panic!("not pushover: {other:?}"),
        });
        (kind, problems)
    }

    #[test]
    fn a_pushover_notif_is_typed_and_its_keys_stay_secret() {
        let (p, problems) = pushover(&format!(
            "token = $PO_TOKEN\nuser = {USER}\npriority = 1\nsound = cosmic\n"
        ));
        assert!(problems.errors.is_empty(), "{:?}", errors(&problems));
        assert!(problems.warnings.is_empty(), "{:?}", warnings(&problems));
        let p = p.unwrap();
        assert_eq!(p.token, TOKEN);
        assert_eq!(p.user, USER);
        assert_eq!(p.priority, Some(1));
        assert_eq!(p.sound.as_deref(), Some("cosmic"));
        assert_eq!(p.api_url, PUSHOVER_API_URL);
        let debug = format!("{p:?}");
        assert!(!debug.contains(TOKEN) && !debug.contains(USER), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");

        let (p, _) = pushover(&format!(
            "token = {TOKEN}\nuser = {USER}\npriority = Emergency\napi_url = http://127.0.0.1:8/po/\n"
        ));
        let p = p.unwrap();
        assert_eq!(p.priority, Some(2));
        assert_eq!(p.sound, None);
        assert_eq!(p.api_url, "http://127.0.0.1:8/po", "without its last /");
        for (word, n) in [
            ("-2", -2),
            ("lowest", -2),
            ("low", -1),
            ("0", 0),
            ("HIGH", 1),
        ] {
            let (p, _) = pushover(&format!(
                "token = {TOKEN}\nuser = {USER}\npriority = {word}\n"
            ));
            assert_eq!(p.unwrap().priority, Some(n), "{word}");
        }
    }

    #[test]
    fn pushover_mistakes_are_errors_with_their_lines() {
        let cases: &[(&str, &[&str])] = &[
            (
                "",
                &[
                    "k.conf:1: notif \"n\": token (the Pushover application token) is required",
                    "k.conf:1: notif \"n\": user (the Pushover user or group key) is required",
                ],
            ),
            (
                "token = $UNSET\nuser = short\n",
                &[
                    "k.conf:3: notif \"n\": token (the Pushover application token) is required",
                    "k.conf:4: notif \"n\": user is not a Pushover user or group key (30 letters and digits)",
                ],
            ),
            (
                &format!("token = {TOKEN}\nuser = {USER}\npriority = 3\n"),
                &[
                    "k.conf:5: priority = \"3\" is invalid: use -2, -1, 0, 1 or 2 (or lowest, low, normal, high, emergency)",
                ],
            ),
            (
                &format!("token = {TOKEN}\nuser = {USER}\npriority = urgent\n"),
                &[
                    "k.conf:5: priority = \"urgent\" is invalid: use -2, -1, 0, 1 or 2 (or lowest, low, normal, high, emergency)",
                ],
            ),
            (
                &format!("token = {TOKEN}\nuser = {USER}\nsound = \"two words\"\n"),
                &[
                    "k.conf:5: sound = \"two words\" is invalid: a Pushover sound name has at most 20 letters, digits, _ and -",
                ],
            ),
            (
                &format!("token = {TOKEN}\nuser = {USER}\napi_url = ftp://u:pw@h\n"),
                &[
                    "k.conf:5: api_url = \"ftp://<redacted>@h\" is invalid: it must be http://HOST[/PATH] or https://HOST[/PATH], without a query",
                ],
            ),
        ];
        for (body, want) in cases {
            let (p, problems) = pushover(body);
            assert!(p.is_none(), "{body}");
            assert_eq!(errors(&problems), *want, "{body}");
            for e in errors(&problems) {
                assert!(!e.contains(TOKEN) && !e.contains("short"), "{e}");
            }
        }
    }

    #[test]
    fn pushover_keys_of_another_shape_only_warn_with_a_custom_api_url() {
        let (p, problems) = pushover("token = tok-1\nuser = usr-1\napi_url = http://127.0.0.1:9\n");
        assert!(problems.errors.is_empty(), "{:?}", errors(&problems));
        assert_eq!(
            warnings(&problems),
            [
                "k.conf:3: notif \"n\": token is not a Pushover application token (30 letters and digits)",
                "k.conf:4: notif \"n\": user is not a Pushover user or group key (30 letters and digits)",
            ]
        );
        assert_eq!(p.unwrap().token, "tok-1");
    }

    #[test]
    fn unknown_pushover_keys_warn_with_a_suggestion() {
        let (p, problems) = pushover(&format!(
            "token = {TOKEN}\nuser = {USER}\nprioirty = 1\nallow_targt = yes\nto = a@b\n"
        ));
        assert!(p.is_some());
        assert_eq!(
            warnings(&problems),
            [
                "k.conf:5: unknown key \"prioirty\" in [notif] of kind pushover, ignored; did you mean \"priority\"?",
                "k.conf:6: unknown key \"allow_targt\" in [notif] of kind pushover, ignored; did you mean \"allow_target\"?",
                "k.conf:7: unknown key \"to\" in [notif] of kind pushover, ignored",
            ]
        );
    }

    #[test]
    fn allow_target_is_read_for_every_kind_and_warns_on_webhooks() {
        let (notif, problems) = build(
            "kind = email\nsmtp_server = smtp://h\nfrom = k@h\nto = a@h\nallow_target = true\n",
        );
        assert!(notif.unwrap().allow_target);
        assert!(problems.warnings.is_empty());
        let (notif, _) = build("kind = email\nsmtp_server = smtp://h\nfrom = k@h\nto = a@h\n");
        assert!(!notif.unwrap().allow_target, "false by default");
        let (notif, problems) = build("kind = webhook\nurl = http://h/x\nallow_target = yes\n");
        assert!(notif.unwrap().allow_target);
        assert_eq!(
            warnings(&problems),
            [
                "k.conf:4: notif \"n\": allow_target has no effect on a webhook (its url is never replaced)"
            ]
        );
    }

    fn notif_of(body: &str) -> NotifConfig {
        let (notif, problems) = build(body);
        assert!(problems.errors.is_empty(), "{:?}", errors(&problems));
        notif.unwrap()
    }

    #[test]
    fn a_target_replaces_the_mail_recipients_only_when_allowed() {
        let body = "kind = email\nsmtp_server = smtp://h\nfrom = k@h\nto = a@h\nto = b@h\n";
        let closed = notif_of(body);
        let open = notif_of(&format!("{body}allow_target = true\n"));
        assert_eq!(
            closed.with_target("x@evil.test"),
            Err(TargetError::NotAllowed { notif: "n".into() })
        );
        let NotifKind::Email(email) = open.with_target(" ops@example.org ").unwrap().kind else {
            panic!("not email")
        };
        assert_eq!(email.to, ["ops@example.org"]);
        for bad in [
            "not an address",
            "a@b, c@d",
            "a@b c@d",
            "Ops <ops@example.org>",
            "@example.org",
            "ops@",
            "ops",
            "a@b;c@d",
        ] {
            let err = open.with_target(bad).unwrap_err();
            assert_eq!(
                err,
                TargetError::BadAddress {
                    notif: "n".into(),
                    target: bad.trim().into()
                },
                "{bad}"
            );
            assert!(err.to_string().contains("is not one mail address"), "{err}");
        }
        // No target: the notif as configured, allowed or not.
        assert_eq!(closed.with_target("").unwrap(), closed);
        assert_eq!(open.with_target("  ").unwrap(), open);
    }

    #[test]
    fn a_target_replaces_the_pushover_user_only_when_allowed_and_well_formed() {
        let body = format!("kind = pushover\ntoken = {TOKEN}\nuser = {USER}\n");
        let closed = notif_of(&body);
        let open = notif_of(&format!("{body}allow_target = 1\n"));
        assert_eq!(
            closed.with_target(OTHER_USER),
            Err(TargetError::NotAllowed { notif: "n".into() })
        );
        let NotifKind::Pushover(p) = open.with_target(OTHER_USER).unwrap().kind else {
            panic!("not pushover")
        };
        assert_eq!((p.user.as_str(), p.token.as_str()), (OTHER_USER, TOKEN));
        let too_long = format!("{OTHER_USER}x");
        let with_dash = format!("{}-", &OTHER_USER[..29]);
        for bad in [
            "short",
            too_long.as_str(),
            with_dash.as_str(),
            "ops@example.org",
        ] {
            let err = open.with_target(bad).unwrap_err();
            assert_eq!(err, TargetError::BadUserKey { notif: "n".into() }, "{bad}");
            assert!(
                !err.to_string().contains(bad),
                "the key is not repeated: {err}"
            );
        }
    }

    #[test]
    fn a_webhook_is_never_retargeted() {
        for body in [
            "kind = webhook\nurl = http://h/x\n",
            "kind = webhook\nurl = http://h/x\nallow_target = true\n",
        ] {
            let notif = notif_of(body);
            for target in ["http://169.254.169.254/latest", "ops@example.org"] {
                assert_eq!(
                    notif.with_target(target),
                    Err(TargetError::Webhook { notif: "n".into() })
                );
            }
            assert_eq!(notif.with_target("").unwrap(), notif);
        }
    }
}
