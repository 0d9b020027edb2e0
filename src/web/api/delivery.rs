//! What a verified GitHub or SourceHut web hook delivery says, for the job's web hook
//! rules ([`crate::config::hook_rules`]) and the run's environment: the event (from
//! `X-GitHub-Event` or `X-Webhook-Event`) and the refs with their commits (from the
//! payload, whose shape depends on the event), then the rules' verdict as the run's
//! `KARAJO_GIT_EVENT`, `KARAJO_GIT_REF` and `KARAJO_GIT_SHA`, or as the `202` answer of
//! a delivery that runs nothing. Pure: it reads bytes already verified and answers
//! values; the handler in `webhook.rs` does the rest.
//!
//! Payloads read (fields GitHub and sr.ht document; anything else gives no ref):
//!
//! | event | ref | commit |
//! |---|---|---|
//! | GitHub `push` | `ref` | `after` |
//! | GitHub `release` | `refs/tags/` + `release.tag_name` | `release.target_commitish` when it is a full hash |
//! | GitHub `create`, `delete` | `ref` under `refs/heads/` or `refs/tags/` by `ref_type` | none |
//! | GitHub `pull_request*` | `refs/heads/` + `pull_request.base.ref` (the branch it targets) | `pull_request.head.sha` |
//! | GitHub, any other | `ref` when it is a full ref | `after` |
//! | SourceHut legacy `repo:post-update` | each `refs[].name` | its `new.id` |
//! | SourceHut GraphQL | each `data.webhook.updates[].ref.name` | its `new.id` |

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::json;
use crate::config::hook_rules::{Delivery, GitRef, Verdict};
use crate::job::AuthKind;

/// GitHub's event header.
pub(super) const HEADER_GITHUB_EVENT: &str = "X-GitHub-Event";
/// sr.ht's event header.
pub(super) const HEADER_SOURCEHUT_EVENT: &str = "X-Webhook-Event";

/// The longest payload value put into a run's environment; longer ones are dropped.
const VALUE_MAX: usize = 1024;

/// Reads a delivery of a job whose web hooks are `kind`; `None` for `hmac-sha256`,
/// whose bodies are karajo's own.
pub(super) fn read(kind: AuthKind, headers: &HeaderMap, body: &[u8]) -> Option<Delivery> {
    let header = match kind {
        AuthKind::Github => HEADER_GITHUB_EVENT,
        AuthKind::Sourcehut => HEADER_SOURCEHUT_EVENT,
        AuthKind::HmacSha256 => return None,
    };
    let event = headers
        .get(header)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .and_then(clean)
        .map(str::to_string);
    let payload = payload(body);
    let refs = match (kind, &payload) {
        (_, None) => Vec::new(),
        (AuthKind::Github, Some(v)) => github_ref(event.as_deref(), v).into_iter().collect(),
        (_, Some(v)) => sourcehut_refs(v),
    };
    Some(Delivery { event, refs })
}

/// The body as JSON: as sent (`application/json`), or the `payload` field of a form
/// (GitHub's `application/x-www-form-urlencoded` content type).
fn payload(body: &[u8]) -> Option<Value> {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return Some(value);
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    let (_, json) = pairs.into_iter().find(|(k, _)| k == "payload")?;
    serde_json::from_str(&json).ok()
}

/// A payload string fit for an environment variable: no NUL, not huge.
fn clean(value: &str) -> Option<&str> {
    (!value.contains('\0') && value.len() <= VALUE_MAX).then_some(value)
}

fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut at = value;
    for key in path {
        at = at.get(key)?;
    }
    at.as_str().and_then(clean).filter(|s| !s.is_empty())
}

fn full_hash(sha: &str) -> bool {
    matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The ref of a GitHub delivery of `event` (table in the module's documentation).
fn github_ref(event: Option<&str>, v: &Value) -> Option<GitRef> {
    let event = event.unwrap_or_default().to_ascii_lowercase();
    let (name, sha) = match event.as_str() {
        "release" => (
            format!("refs/tags/{}", text(v, &["release", "tag_name"])?),
            text(v, &["release", "target_commitish"]).filter(|s| full_hash(s)),
        ),
        "create" | "delete" => {
            let short = text(v, &["ref"])?;
            let base = match text(v, &["ref_type"])? {
                "tag" => "refs/tags/",
                "branch" => "refs/heads/",
                _ => return None,
            };
            (format!("{base}{short}"), None)
        }
        e if e.starts_with("pull_request") => (
            format!("refs/heads/{}", text(v, &["pull_request", "base", "ref"])?),
            text(v, &["pull_request", "head", "sha"]),
        ),
        _ => (
            text(v, &["ref"])
                .filter(|r| r.starts_with("refs/"))?
                .to_string(),
            text(v, &["after"]),
        ),
    };
    Some(GitRef {
        name,
        sha: sha.map(str::to_string),
    })
}

/// The refs of a SourceHut delivery: the legacy `refs` list, or a GraphQL web hook's
/// `data.webhook.updates`.
fn sourcehut_refs(v: &Value) -> Vec<GitRef> {
    let legacy = v.get("refs").and_then(Value::as_array).map(|refs| {
        refs.iter()
            .filter_map(|r| {
                Some(GitRef {
                    name: text(r, &["name"])?.to_string(),
                    sha: text(r, &["new", "id"]).map(str::to_string),
                })
            })
            .collect::<Vec<_>>()
    });
    let graphql = || {
        v.pointer("/data/webhook/updates")
            .and_then(Value::as_array)
            .map(|updates| {
                updates
                    .iter()
                    .filter_map(|u| {
                        Some(GitRef {
                            name: text(u, &["ref", "name"])?.to_string(),
                            sha: text(u, &["new", "id"]).map(str::to_string),
                        })
                    })
                    .collect::<Vec<_>>()
            })
    };
    legacy.or_else(graphql).unwrap_or_default()
}

/// The run's `KARAJO_GIT_*` variables: the event, and the ref and commit the verdict
/// chose, each when known.
pub(super) fn git_env(delivery: &Delivery, chosen: Option<&GitRef>) -> Vec<(String, String)> {
    let mut env = Vec::new();
    if let Some(event) = &delivery.event {
        env.push(("KARAJO_GIT_EVENT".to_string(), event.clone()));
    }
    if let Some(r) = chosen {
        env.push(("KARAJO_GIT_REF".to_string(), r.name.clone()));
        if let Some(sha) = &r.sha {
            env.push(("KARAJO_GIT_SHA".to_string(), sha.clone()));
        }
    }
    env
}

/// The answer to a verified delivery the rules ignore: `202`,
/// `{"data":{"run":false,"event":..,"refs":[..]},"message":<reason>,"code":202}`, so
/// the sender's delivery log says why nothing ran.
pub(super) fn ignored(delivery: &Delivery, reason: &str) -> Response {
    #[derive(serde::Serialize)]
    struct Data<'a> {
        run: bool,
        event: Option<&'a str>,
        refs: Vec<&'a str>,
    }
    #[derive(serde::Serialize)]
    struct Envelope<'a> {
        data: Data<'a>,
        message: &'a str,
        code: u16,
    }
    let body = json::to_string(&Envelope {
        data: Data {
            run: false,
            event: delivery.event.as_deref(),
            refs: delivery.refs.iter().map(|r| r.name.as_str()).collect(),
        },
        message: reason,
        code: 202,
    });
    json::response(StatusCode::ACCEPTED, body)
}

/// The verdict's ref when it runs, for [`git_env`].
pub(super) fn chosen(verdict: &Verdict) -> Option<&GitRef> {
    match verdict {
        Verdict::Run(r) => r.as_ref(),
        Verdict::Ignore(_) => None,
    }
}

#[cfg(test)]
mod tests;
