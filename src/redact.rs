//! What karajo never shows: the values of secret HTTP headers and the user info of
//! URLs. This is the one redaction rule, used wherever an HTTP job's headers or URL
//! reach a person: its run logs (and so the notifications that quote them), the
//! environment JSON and the web UI. Only what is written *about* a request changes;
//! the request an HTTP job sends still carries the real values. Pure functions.
//!
//! A header is secret when its name, compared without regard to case:
//!
//! * is one of [`SECRET_NAMES`]: `Authorization`, `Proxy-Authorization`, `Cookie`,
//!   `Set-Cookie`, `X-Karajo-Sign`;
//! * is the job's own `header_sign`, or is listed by its `http_header_secret`;
//! * contains one of [`SECRET_PARTS`] (`auth`, `token`, `secret`, `password`, `passwd`,
//!   `apikey`, `signature`, `session`, `cookie`, `credential`) once `-`, `_` and `.`
//!   are removed from it, so `X-Api-Key`, `api_key` and `X-Auth-Token` all match;
//! * or has one of [`SECRET_WORDS`] (`key`, `sign`) as a whole `-`, `_` or
//!   `.`-separated word (`Ocp-Apim-Subscription-Key`, `X-Sign`).
//!
//! The rule prefers hiding too much: `WWW-Authenticate`, `Sec-WebSocket-Key` and
//! `Idempotency-Key` are hidden too. A secret header is shown as `Name: <redacted>`,
//! and a URL's user info as `<redacted>` (`https://<redacted>@host/x`).

use std::borrow::Cow;

/// What a secret value is shown as.
pub const REDACTED: &str = "<redacted>";

/// Header names that are always secret (lower case).
pub const SECRET_NAMES: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-karajo-sign",
];

/// A header name containing one of these (lower case, after removing `-`, `_` and
/// `.`) is secret.
pub const SECRET_PARTS: &[&str] = &[
    "auth",
    "token",
    "secret",
    "password",
    "passwd",
    "apikey",
    "signature",
    "session",
    "cookie",
    "credential",
];

/// A header name with one of these as a whole `-`, `_` or `.`-separated word is secret.
pub const SECRET_WORDS: &[&str] = &["key", "sign"];

/// Whether the header `name` is secret, by the rule in the module documentation;
/// `job_extra_names` are the job's own secret header names (its `header_sign` and its
/// `http_header_secret`).
pub fn is_secret_header<S: AsRef<str>>(name: &str, job_extra_names: &[S]) -> bool {
    let name = name.trim();
    let lower = name.to_ascii_lowercase();
    if SECRET_NAMES.contains(&lower.as_str())
        || job_extra_names
            .iter()
            .any(|extra| extra.as_ref().trim().eq_ignore_ascii_case(name))
    {
        return true;
    }
    let compact: String = lower
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .collect();
    SECRET_PARTS.iter().any(|part| compact.contains(part))
        || lower
            .split(['-', '_', '.'])
            .any(|word| SECRET_WORDS.contains(&word))
}

/// One job's secret header names on top of the fixed rule: its `header_sign` and its
/// `http_header_secret`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretHeaders {
    extra: Vec<String>,
}

impl SecretHeaders {
    /// The rule for a job that signs into `header_sign` and lists `http_header_secret`.
    pub fn new(header_sign: &str, http_header_secret: &[String]) -> Self {
        let mut extra = Vec::with_capacity(http_header_secret.len() + 1);
        if !header_sign.trim().is_empty() {
            extra.push(header_sign.trim().to_string());
        }
        extra.extend(http_header_secret.iter().map(|n| n.trim().to_string()));
        Self { extra }
    }

    /// Whether the header `name` is secret for this job.
    pub fn is_secret(&self, name: &str) -> bool {
        is_secret_header(name, &self.extra)
    }

    /// `name: value`, or `name: <redacted>` for a secret header.
    pub fn header(&self, name: &str, value: &str) -> String {
        if self.is_secret(name) {
            format!("{name}: {REDACTED}")
        } else {
            format!("{name}: {value}")
        }
    }

    /// An `http_header` line as written (`Name: value`), with the value replaced for a
    /// secret header (`Name: <redacted>`, the name trimmed). A line without `:`, which
    /// the configuration refuses anyway, is shown as `<redacted>`.
    pub fn header_line<'a>(&self, line: &'a str) -> Cow<'a, str> {
        match line.split_once(':') {
            Some((name, _)) if self.is_secret(name) => {
                Cow::Owned(format!("{}: {REDACTED}", name.trim()))
            }
            Some(_) => Cow::Borrowed(line),
            None => Cow::Borrowed(REDACTED),
        }
    }
}

/// `url` with its user info (`user:password@`) replaced by `<redacted>`; the rest as
/// written. A URL without user info, or that is not absolute (`/path`), is returned
/// unchanged. The authority ends at the first `/`, `?`, `#` or `\` after `//`, and
/// the user info at the last `@` in it, as browsers and reqwest read URLs.
pub fn url(url: &str) -> Cow<'_, str> {
    let start = match url.find("://") {
        Some(i) if is_scheme(&url[..i]) => i + 3,
        _ if url.starts_with("//") => 2,
        _ => return Cow::Borrowed(url),
    };
    let rest = &url[start..];
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => Cow::Owned(format!("{}{REDACTED}{}", &url[..start], &rest[at..])),
        None => Cow::Borrowed(url),
    }
}

/// A URL scheme: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: &[&str] = &[];

    #[test]
    fn fixed_names_and_parts_are_secret_in_any_case() {
        for name in [
            "Authorization",
            "authorization",
            "PROXY-AUTHORIZATION",
            "Cookie",
            "Set-Cookie",
            "X-Karajo-Sign",
            "x-karajo-sign",
            "X-Auth-Token",
            "X-Access-Token",
            "X-Api-Key",
            "x-apikey",
            "api_key",
            "X-Goog-Api-Key",
            "X-Client-Secret",
            "X-Password",
            "X-Passwd",
            "X-Hub-Signature-256",
            "X-Payload-Signature",
            "X-Session-Id",
            "X-Amz-Security-Token",
            "Access-Control-Allow-Credentials",
            "WWW-Authenticate",
            "Ocp-Apim-Subscription-Key",
            "X-Sign",
            "Sec-WebSocket-Key",
            " Authorization ",
        ] {
            assert!(is_secret_header(name, NONE), "{name}");
        }
    }

    #[test]
    fn ordinary_headers_are_shown() {
        for name in [
            "Host",
            "User-Agent",
            "Content-Type",
            "Content-Length",
            "Accept",
            "Accept-Encoding",
            "Date",
            "Server",
            "Keep-Alive",
            "Connection",
            "Cache-Control",
            "X-Request-Id",
            "X-Test",
            "X-Signer", // "signer" is not the word "sign"
            "Monkey",   // "key" only as a whole word
            "Design",
        ] {
            assert!(!is_secret_header(name, NONE), "{name}");
        }
    }

    #[test]
    fn a_jobs_own_names_are_secret() {
        assert!(is_secret_header("X-My-Sig", &["x-my-sig"]));
        assert!(is_secret_header("x-deploy", &["X-Deploy "]));
        assert!(!is_secret_header("X-Other", &["X-Deploy"]));
        let rule = SecretHeaders::new("X-Hook-Mac", &["X-Tenant".to_string()]);
        assert!(rule.is_secret("x-hook-mac"));
        assert!(rule.is_secret("X-TENANT"));
        assert!(rule.is_secret("Authorization"));
        assert!(!rule.is_secret("X-Test"));
        assert!(SecretHeaders::default().is_secret("X-Karajo-Sign"));
    }

    #[test]
    fn headers_and_lines_show_secret_values_as_redacted() {
        let rule = SecretHeaders::new("X-Karajo-Sign", &["X-Tenant".to_string()]);
        assert_eq!(
            rule.header("authorization", "Bearer xyz"),
            "authorization: <redacted>"
        );
        assert_eq!(rule.header("x-test", "one"), "x-test: one");
        assert_eq!(
            rule.header_line("Authorization: Bearer xyz"),
            "Authorization: <redacted>"
        );
        assert_eq!(
            rule.header_line("X-Api-Key : abc:def"),
            "X-Api-Key: <redacted>"
        );
        assert_eq!(rule.header_line("X-Tenant: t1"), "X-Tenant: <redacted>");
        assert_eq!(rule.header_line("X-Test: one"), "X-Test: one");
        assert!(matches!(rule.header_line("X: Y"), Cow::Borrowed("X: Y")));
        assert_eq!(rule.header_line("no colon xyz"), REDACTED);
    }

    #[test]
    fn urls_lose_their_user_info_and_keep_the_rest() {
        let cases = [
            ("https://user:pass@host/x", "https://<redacted>@host/x"),
            (
                "http://u:pw@127.0.0.1:8080/",
                "http://<redacted>@127.0.0.1:8080/",
            ),
            ("http://token@host", "http://<redacted>@host"),
            (
                "http://a@b:c@host/p?q=1#f",
                "http://<redacted>@host/p?q=1#f",
            ),
            ("HTTP://U:P@Host:1?x@y", "HTTP://<redacted>@Host:1?x@y"),
            ("//u:p@host/x", "//<redacted>@host/x"),
            (
                "http://host/path@not-user-info",
                "http://host/path@not-user-info",
            ),
            ("http://host?q=a@b", "http://host?q=a@b"),
            ("http://host#a@b", "http://host#a@b"),
            ("http://h\\@evil/", "http://h\\@evil/"),
            ("https://[::1]:8080/x/", "https://[::1]:8080/x/"),
            ("/karajo/api/job_exec/run/x", "/karajo/api/job_exec/run/x"),
            ("mailto:a@b", "mailto:a@b"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(url(input), want, "{input}");
        }
        assert!(matches!(url("http://host/x"), Cow::Borrowed(_)));
    }
}
