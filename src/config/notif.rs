//! `[notif "NAME"]` sections (spec 2.5 plus the new `webhook` kind): typed and checked
//! here, so that a bad `kind`, `smtp_server` URL or address stops start-up with an
//! error naming the file and line, and the notifier only ever sees usable settings.
//! Credentials written as `$NAME` are read from the environment once, at load time.
//! Pure apart from that environment lookup; sending lives in [`crate::notify`].

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr as _;

use lettre::message::Mailbox;

use super::fields::Problems;
use super::jobs::Definition;

/// The keys a `[notif]` section may hold, whatever its kind.
const COMMON_KEYS: &[&str] = &["kind"];
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
}

/// The kinds of notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifKind {
    /// `kind = email`: a mail through an SMTP server.
    Email(EmailNotif),
    /// `kind = webhook` (new): a signed JSON `POST`.
    Webhook(WebhookNotif),
}

impl NotifKind {
    /// `email` or `webhook`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Email(_) => "email",
            Self::Webhook(_) => "webhook",
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
        _ => {
            f.check_cut_values(problems);
            let message = format!(
                "notif {:?}: unknown kind {kind_word:?} (use email or webhook)",
                def.name
            );
            problems.error(&f.file, line, message);
            None
        }
    }?;
    Some(NotifConfig {
        name: def.name.clone(),
        file: f.file.clone(),
        line: f.line,
        kind,
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
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
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
        let env = |name: &str| (name == "SMTP_PASS").then(|| "from-env".to_string());
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
            ["k.conf:2: notif \"n\": unknown kind \"sms\" (use email or webhook)"]
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
}
