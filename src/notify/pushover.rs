//! Sending one notification through Pushover's message API with reqwest: a
//! form-encoded `POST` to `<api_url>/1/messages.json` (Pushover's own by default)
//! with `token`, `user`, `title` (the mail subject), `message` (the details and the
//! end of the log, cut to Pushover's 1024 characters), `url` (the log in the web UI),
//! `timestamp`, and `priority` and `sound` when the notif sets them. Any 2xx answer
//! is a delivery; Pushover answers an invalid request with 4xx and `"status":0`,
//! which is given up, while 5xx answers and network errors are retried (see
//! [`SendError::is_permanent`]). The token and the user key travel in the body
//! only: never in the URL, an error or a log line, and an answer that repeats them
//! has them blanked out.

use jiff::Timestamp;

use super::SendError;
use super::message::{About, Pending};
use crate::config::PushoverNotif;
use crate::redact::REDACTED;

/// The message API's path below `api_url`.
pub(crate) const MESSAGES_PATH: &str = "/1/messages.json";
/// Pushover's longest title, in characters.
const TITLE_MAX: usize = 250;
/// Pushover's longest message, in characters.
const MESSAGE_MAX: usize = 1024;
/// Pushover's longest supplementary URL, in characters; a longer one is left out.
const URL_MAX: usize = 512;
/// Emergency messages (priority 2) repeat every `retry` seconds until acknowledged,
/// for at most `expire` seconds; Pushover requires both.
const EMERGENCY_RETRY: &str = "60";
const EMERGENCY_EXPIRE: &str = "3600";
/// The most of an error answer quoted in an error.
const DETAIL_MAX: usize = 300;

/// Where the message goes: `<api_url>/1/messages.json`.
pub(crate) fn messages_url(cfg: &PushoverNotif) -> String {
    format!("{}{MESSAGES_PATH}", cfg.api_url.trim_end_matches('/'))
}

/// The form fields of the request for `pending`, in the order sent.
pub(crate) fn form(cfg: &PushoverNotif, pending: &Pending) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("token", cfg.token.clone()),
        ("user", cfg.user.clone()),
        ("title", cut_chars(&pending.subject(), TITLE_MAX)),
        ("message", message(pending)),
    ];
    if let Some(priority) = cfg.priority {
        fields.push(("priority", priority.to_string()));
        if priority == 2 {
            fields.push(("retry", EMERGENCY_RETRY.to_string()));
            fields.push(("expire", EMERGENCY_EXPIRE.to_string()));
        }
    }
    if let Some(sound) = &cfg.sound {
        fields.push(("sound", sound.clone()));
    }
    let url = pending.log_url();
    if !url.is_empty() && url.chars().count() <= URL_MAX {
        fields.push(("url", url.to_string()));
    }
    if let Ok(at) = pending.happened_at().parse::<Timestamp>() {
        fields.push(("timestamp", at.as_second().to_string()));
    }
    fields
}

/// The message: a few lines of details, then as much of the log's end as fits in
/// Pushover's 1024 characters.
pub(crate) fn message(pending: &Pending) -> String {
    match &pending.about {
        About::Run { run, .. } => {
            let head = format!(
                "{} ({}): run #{} {} after {}, started by {}",
                run.job_name,
                run.job_id,
                run.counter,
                run.status,
                seconds(run.duration_ms),
                run.trigger
            );
            fit(&head, &run.log_tail)
        }
        About::Monitor(m) => {
            let mut head = format!(
                "{} ({}): {}, was {}",
                m.name, m.id, m.event, m.previous_status
            );
            if m.reminder {
                head.push_str(" (still down)");
            }
            if let Some(reason) = &m.reason {
                head.push_str(&format!("\nreason: {reason}"));
            }
            if let Some(code) = m.exit_code {
                head.push_str(&format!("\nexit status: {code}"));
            }
            head.push_str(&format!("\nat {}", m.time));
            let tail = m.log.as_ref().map_or("", |l| l.tail.as_str());
            fit(&head, tail)
        }
    }
}

/// `2.5s`, `61s`.
fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
    }
}

/// `head`, a blank line and the end of `log`, at most [`MESSAGE_MAX`] characters;
/// a log cut at its start begins at a whole line after `…`.
fn fit(head: &str, log: &str) -> String {
    let head = cut_chars(head, MESSAGE_MAX);
    let log = log.trim_end();
    let room = MESSAGE_MAX.saturating_sub(head.chars().count() + 2);
    if log.is_empty() || room < 2 {
        return head;
    }
    let count = log.chars().count();
    let end = if count <= room {
        log.to_string()
    } else {
        // Keep the last room - 1 characters, then start at a line if one begins there.
        let skip = count - (room - 1);
        let start = log.char_indices().nth(skip).map_or(log.len(), |(i, _)| i);
        let kept = &log[start..];
        let kept = match kept.find('\n') {
            Some(p) if p + 1 < kept.len() => &kept[p + 1..],
            _ => kept,
        };
        format!("…{kept}")
    };
    format!("{head}\n\n{end}")
}

/// `text` cut to `max` characters, the last being `…` when it was longer.
fn cut_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Posts `pending` to the notif's API.
pub(crate) async fn send(
    client: &reqwest::Client,
    cfg: &PushoverNotif,
    pending: &Pending,
) -> Result<(), SendError> {
    let url = messages_url(cfg);
    let shown_url = crate::redact::url(&url).into_owned();
    let response = client
        .post(&url)
        .header(reqwest::header::USER_AGENT, crate::USER_AGENT)
        .form(&form(cfg, pending))
        .send()
        .await
        .map_err(|source| SendError::Http {
            url: shown_url.clone(),
            source: source.without_url(),
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.bytes().await.unwrap_or_default();
    Err(SendError::Pushover {
        url: shown_url,
        status: status.as_u16(),
        detail: detail(&body, &[&cfg.token, &cfg.user]),
    })
}

/// `: ` and the `errors` of a Pushover answer (`{"errors":[...],"status":0}`), or
/// the start of another text answer; empty when there is nothing to quote. Each of
/// `secrets` found in it is replaced with `<redacted>`.
fn detail(body: &[u8], secrets: &[&str]) -> String {
    let parsed: Option<Vec<String>> = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|doc| {
            doc.get("errors")?.as_array().map(|errors| {
                errors
                    .iter()
                    .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
                    .collect()
            })
        });
    let text = match parsed {
        Some(errors) => errors.join("; "),
        None => String::from_utf8_lossy(body).trim().to_string(),
    };
    let mut text = cut_chars(&text.replace(['\r', '\n'], " "), DETAIL_MAX);
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, REDACTED);
    }
    if text.is_empty() {
        text
    } else {
        format!(": {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_logs_keep_their_end_within_1024_characters() {
        let log: String = (0..500).map(|n| format!("lïne {n}\n")).collect();
        let text = fit("head", &log);
        assert_eq!(text.chars().count().min(MESSAGE_MAX), text.chars().count());
        assert!(text.starts_with("head\n\n…lïne "), "{text}");
        assert!(text.ends_with("lïne 499"), "{text}");
        assert_eq!(fit("head", "a\nb\n"), "head\n\na\nb");
        assert_eq!(fit("head", ""), "head");
        let long_head = "h".repeat(2000);
        assert_eq!(fit(&long_head, "log").chars().count(), MESSAGE_MAX);
    }

    #[test]
    fn error_answers_are_quoted_without_secrets() {
        let body =
            br#"{"token":"invalid","errors":["application token is invalid: tok123"],"status":0}"#;
        assert_eq!(
            detail(body, &["tok123", "usr456"]),
            ": application token is invalid: <redacted>"
        );
        assert_eq!(detail(b"", &["x"]), "");
        assert_eq!(
            detail(b"Bad Gateway usr456\n", &["usr456"]),
            ": Bad Gateway <redacted>"
        );
        assert_eq!(cut_chars("abcdef", 4), "abc…");
        assert_eq!(seconds(2500), "2.5s");
        assert_eq!(seconds(61_000), "61s");
    }
}
