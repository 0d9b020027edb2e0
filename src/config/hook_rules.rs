//! A command job's web hook rules (issue 15, item 6): which deliveries of a GitHub or
//! SourceHut web hook start a run. It owns the keys `github_events`, `github_refs`,
//! `sourcehut_events` and `sourcehut_refs` (read, checked, errors by file and line),
//! the ref glob matcher, and the rule itself: [`HookRules::judge`] takes what a
//! delivery says (its event and the refs it updates, see [`Delivery`]) and answers run
//! or ignore with a reason. Pure: reading a delivery's headers and body is
//! [`crate::web::api`]'s, running the job the scheduler's.
//!
//! A ref glob is a full ref name (`refs/heads/main`) where `*` stands for any run of
//! characters without `/`, `**` for any run of characters, `/` included, and `?` for
//! one character other than `/`; everything else is literal. A glob that cannot match
//! any ref git allows (empty, not starting with `refs/`, with a space, a control
//! character, `~ ^ : \ [`, `..`, `//` or `@{`, or ending with `/`, `.` or `.lock`) is
//! a config error.

use super::fields::{Fields, Problems};
use crate::job::AuthKind;

/// The keys a command job section may hold for its web hook rules.
pub(crate) const HOOK_RULE_KEYS: &[&str] = &[
    "github_events",
    "github_refs",
    "sourcehut_events",
    "sourcehut_refs",
];

/// The events GitHub sends (its web hook documentation's list); another name in
/// `github_events` is warned about, since a delivery can never carry it.
pub const GITHUB_EVENTS: &[&str] = &[
    "branch_protection_configuration",
    "branch_protection_rule",
    "check_run",
    "check_suite",
    "code_scanning_alert",
    "commit_comment",
    "create",
    "custom_property",
    "custom_property_values",
    "delete",
    "dependabot_alert",
    "deploy_key",
    "deployment",
    "deployment_protection_rule",
    "deployment_review",
    "deployment_status",
    "discussion",
    "discussion_comment",
    "fork",
    "github_app_authorization",
    "gollum",
    "installation",
    "installation_repositories",
    "installation_target",
    "issue_comment",
    "issues",
    "label",
    "marketplace_purchase",
    "member",
    "membership",
    "merge_group",
    "meta",
    "milestone",
    "org_block",
    "organization",
    "package",
    "page_build",
    "personal_access_token_request",
    "ping",
    "project",
    "project_card",
    "project_column",
    "projects_v2",
    "projects_v2_item",
    "public",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "pull_request_review_thread",
    "push",
    "registry_package",
    "release",
    "repository",
    "repository_advisory",
    "repository_dispatch",
    "repository_import",
    "repository_ruleset",
    "repository_vulnerability_alert",
    "secret_scanning_alert",
    "secret_scanning_alert_location",
    "security_advisory",
    "security_and_analysis",
    "sponsorship",
    "star",
    "status",
    "sub_issues",
    "team",
    "team_add",
    "watch",
    "workflow_dispatch",
    "workflow_job",
    "workflow_run",
];

/// The events of git.sr.ht's web hooks: the legacy ones (`X-Webhook-Event:
/// repo:post-update` for a push) and the GraphQL ones (`GIT_POST_RECEIVE`).
pub const SOURCEHUT_EVENTS: &[&str] = &[
    "repo:post-update",
    "repo:create",
    "repo:update",
    "repo:delete",
    "git_pre_receive",
    "git_post_receive",
    "repo_created",
    "repo_update",
    "repo_deleted",
];

/// Which deliveries of a job's GitHub or SourceHut web hook start a run. Empty lists
/// let everything through, as without rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookRules {
    /// The events that run, lower-cased; empty: any event.
    pub events: Vec<String>,
    /// The refs that run; empty: any delivery, with or without a ref.
    pub refs: Vec<RefGlob>,
}

/// A validated ref glob (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefGlob(String);

/// What a delivery says, as far as the rules look: its event and the refs it updates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// `X-GitHub-Event` or `X-Webhook-Event`; `None` when the header is missing.
    pub event: Option<String>,
    /// The refs the delivery is about, in payload order (GitHub: at most one).
    pub refs: Vec<GitRef>,
}

/// One ref of a delivery, with the commit it now points at when the payload says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRef {
    /// The full ref name (`refs/heads/main`, `refs/tags/v1.0`).
    pub name: String,
    /// The commit, when the payload names one.
    pub sha: Option<String>,
}

/// The rules' answer about one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Run; the ref the run is about (the first that matched, else the first one).
    Run(Option<GitRef>),
    /// Run nothing, for this reason (said in the 202 answer).
    Ignore(String),
}

impl HookRules {
    /// No rule: every verified delivery runs, as in the original.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.refs.is_empty()
    }

    /// Whether `delivery` runs the job. `keys` names the rules' keys in the reasons
    /// (`github` or `sourcehut`). Without rules everything runs; with any rule, a
    /// GitHub `ping` runs only when `ping` is listed in the events.
    pub fn judge(&self, keys: &str, delivery: &Delivery) -> Verdict {
        let first = delivery.refs.first().cloned();
        if self.is_empty() {
            return Verdict::Run(first);
        }
        let event = delivery.event.as_deref().map(str::to_ascii_lowercase);
        if event.as_deref() == Some("ping") && !self.events.iter().any(|e| e == "ping") {
            return Verdict::Ignore("ping: nothing runs for GitHub's test delivery".into());
        }
        if !self.events.is_empty() {
            match &event {
                None => {
                    return Verdict::Ignore(format!(
                        "the delivery names no event; {keys}_events = {}",
                        self.events.join(", ")
                    ));
                }
                Some(e) if !self.events.contains(e) => {
                    return Verdict::Ignore(format!(
                        "event {e:?} is not in {keys}_events = {}",
                        self.events.join(", ")
                    ));
                }
                Some(_) => {}
            }
        }
        if self.refs.is_empty() {
            return Verdict::Run(first);
        }
        let globs = self
            .refs
            .iter()
            .map(RefGlob::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        if delivery.refs.is_empty() {
            return Verdict::Ignore(format!("the delivery names no ref; {keys}_refs = {globs}"));
        }
        match delivery
            .refs
            .iter()
            .find(|r| self.refs.iter().any(|g| g.matches(&r.name)))
        {
            Some(found) => Verdict::Run(Some(found.clone())),
            None => {
                let names: Vec<&str> = delivery.refs.iter().map(|r| r.name.as_str()).collect();
                Verdict::Ignore(format!(
                    "ref {} matches no {keys}_refs = {globs}",
                    names.join(", ")
                ))
            }
        }
    }

    /// The rules in words for `karajo check` and the job page (`None` without rules).
    pub fn describe(&self, keys: &str) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let events = match self.events.as_slice() {
            [] => "any event".to_string(),
            list => format!("events {}", list.join(", ")),
        };
        let refs = match self.refs.as_slice() {
            [] => "any ref".to_string(),
            list => format!(
                "refs {}",
                list.iter()
                    .map(RefGlob::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        Some(format!(
            "runs on {keys} {events}, {refs}; other deliveries get 202"
        ))
    }
}

impl RefGlob {
    /// The glob, or why it cannot match any ref.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| Err(format!("{text:?} cannot match any ref: {why}"));
        if text.is_empty() {
            return bad("it is empty");
        }
        if !text.starts_with("refs/") || text == "refs/" {
            return bad("a ref glob is a full ref name such as refs/heads/main or refs/tags/v*");
        }
        if let Some(c) = text
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || "~^:\\[".contains(*c))
        {
            return bad(&format!("git refs have no {c:?}"));
        }
        for (part, why) in [
            ("..", "git refs have no \"..\""),
            ("//", "git refs have no \"//\""),
            ("@{", "git refs have no \"@{\""),
        ] {
            if text.contains(part) {
                return bad(why);
            }
        }
        if text.ends_with('/') || text.ends_with('.') || text.ends_with(".lock") {
            return bad("git refs do not end with \"/\", \".\" or \".lock\"");
        }
        Ok(Self(text.to_string()))
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the full ref name `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        glob_match(self.0.as_bytes(), name.as_bytes())
    }
}

/// Glob matching on bytes: `**` any run, `*` any run without `/`, `?` one byte other
/// than `/`; the rest literal. It walks the pattern once, keeping the set of text
/// positions reached so far, so its time is the pattern's length times the text's
/// whatever the stars (a hostile ref cannot make it backtrack).
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let n = text.len();
    let mut reached = vec![false; n + 1];
    reached[0] = true;
    let mut p = 0;
    while p < pattern.len() {
        let mut next = vec![false; n + 1];
        match pattern[p] {
            b'*' if pattern.get(p + 1) == Some(&b'*') => {
                p += 1;
                if let Some(from) = reached.iter().position(|&r| r) {
                    next[from..].fill(true);
                }
            }
            b'*' => {
                let mut open = false;
                for j in 0..=n {
                    // A run without `/` continues from a reached position.
                    open = reached[j] || (open && text[j - 1] != b'/');
                    next[j] = open;
                }
            }
            c => {
                for j in 0..n {
                    let fits = if c == b'?' {
                        text[j] != b'/'
                    } else {
                        text[j] == c
                    };
                    next[j + 1] = reached[j] && fits;
                }
            }
        }
        reached = next;
        p += 1;
    }
    reached[n]
}

/// Reads the rules of a command job whose web hooks are `auth_kind`; rules for
/// another kind are errors, unknown event names warnings.
pub(crate) fn read_hook_rules(
    f: &Fields,
    auth_kind: AuthKind,
    has_path: bool,
    problems: &mut Problems,
) -> HookRules {
    let (own, known) = match auth_kind {
        AuthKind::Github => ("github", GITHUB_EVENTS),
        AuthKind::Sourcehut => ("sourcehut", SOURCEHUT_EVENTS),
        AuthKind::HmacSha256 => ("", &[][..]),
    };
    for key in HOOK_RULE_KEYS {
        if key.starts_with(own) && !own.is_empty() {
            continue;
        }
        let kind = if key.starts_with("github") {
            "github"
        } else {
            "sourcehut"
        };
        for var in f.all(key) {
            problems.error(
                &f.file,
                var.line,
                format!(
                    "{key} is a rule of auth_kind = {kind} web hooks; this job's auth_kind is {}",
                    auth_kind.as_str()
                ),
            );
        }
    }
    if own.is_empty() {
        return HookRules::default();
    }
    let events_key = format!("{own}_events");
    let refs_key = format!("{own}_refs");
    let mut rules = HookRules::default();
    for (line, event) in items(f, &events_key) {
        let event = event.to_ascii_lowercase();
        if !known.contains(&event.as_str()) {
            let hint = match crate::suggest::closest(&event, known) {
                Some(close) => format!(" (did you mean {close:?}?)"),
                None => String::new(),
            };
            problems.warn(
                &f.file,
                line,
                format!(
                    "{events_key}: {own} sends no event {event:?}{hint}; no delivery will match it"
                ),
            );
        }
        if !rules.events.contains(&event) {
            rules.events.push(event);
        }
    }
    for (line, glob) in items(f, &refs_key) {
        match RefGlob::parse(&glob) {
            Ok(glob) => rules.refs.push(glob),
            Err(why) => problems.error(&f.file, line, format!("{refs_key} = {why}")),
        }
    }
    for key in [&events_key, &refs_key] {
        for var in f.all(key) {
            if var.value.trim().is_empty() {
                problems.error(
                    &f.file,
                    var.line,
                    format!("{key} is empty: remove the line to run on every delivery"),
                );
            }
        }
    }
    if !rules.is_empty() && !has_path {
        let line = f
            .all(&events_key)
            .chain(f.all(&refs_key))
            .map(|v| v.line)
            .next()
            .unwrap_or(f.line);
        problems.warn(
            &f.file,
            line,
            format!("{own} web hook rules have no effect: the job has no path"),
        );
    }
    rules
}

/// The comma-separated items of every `key` line, each with its line.
fn items(f: &Fields, key: &str) -> Vec<(usize, String)> {
    f.all(key)
        .flat_map(|var| {
            var.value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| (var.line, item.to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests;
