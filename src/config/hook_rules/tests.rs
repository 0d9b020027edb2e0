//! Table tests of the web hook rules: the ref glob matcher (including hostile refs),
//! globs that cannot match, the rule matcher, and the keys read with file and line.

use std::path::Path;

use super::*;
use crate::config::ini;

/// The rules of a one-section file whose body is `body` (line 1 is the header), with
/// the errors and warnings as `file:line: message`.
fn read(body: &str, kind: AuthKind) -> (HookRules, Vec<String>, Vec<String>) {
    let doc = ini::parse(&format!("[job \"a\"]\n{body}")).unwrap();
    let fields = Fields::new(Path::new("job.d/a.conf"), &doc.sections[0]);
    let mut problems = Problems::default();
    let rules = read_hook_rules(&fields, kind, true, &mut problems);
    let show = |list: &[crate::config::Diagnostic]| -> Vec<String> {
        list.iter()
            .map(|d| format!("{}:{}: {}", d.file.display(), d.line, d.message))
            .collect()
    };
    (rules, show(&problems.errors), show(&problems.warnings))
}

#[test]
fn the_glob_matcher() {
    // (glob, ref, matches)
    let table = [
        ("refs/heads/main", "refs/heads/main", true),
        ("refs/heads/main", "refs/heads/main2", false),
        ("refs/heads/main", "refs/heads/mai", false),
        ("refs/tags/v*", "refs/tags/v1.2.3", true),
        ("refs/tags/v*", "refs/tags/v", true),
        ("refs/tags/v*", "refs/tags/x1", false),
        ("refs/tags/v*", "refs/tags/v1/extra", false),
        ("refs/heads/*", "refs/heads/feature/x", false),
        ("refs/heads/**", "refs/heads/feature/x", true),
        ("refs/heads/**", "refs/heads/", true),
        ("refs/**/v*", "refs/x/v/y/v2", true),
        ("refs/**/v*", "refs/a/b/v1/x", false),
        ("refs/heads/release-?", "refs/heads/release-1", true),
        ("refs/heads/release-?", "refs/heads/release-12", false),
        ("refs/heads/release-?", "refs/heads/release-/", false),
        ("refs/heads/*-rc", "refs/heads/1.0-rc", true),
        ("refs/heads/*-rc", "refs/heads/1.0-rc2", false),
        ("refs/*/main", "refs/heads/main", true),
        ("refs/*/main", "refs/remotes/origin/main", false),
        ("refs/**main", "refs/remotes/origin/main", true),
        ("refs/heads/a*b*c", "refs/heads/aXbYc", true),
        ("refs/heads/a*b*c", "refs/heads/aXbY", false),
        ("refs/heads/***", "refs/heads/x/y", true),
    ];
    for (glob, name, want) in table {
        let parsed = RefGlob::parse(glob).unwrap();
        assert_eq!(parsed.matches(name), want, "{glob} vs {name}");
    }
}

#[test]
fn a_hostile_ref_does_not_make_the_matcher_backtrack() {
    let glob = RefGlob::parse("refs/heads/*a*a*a*a*a*a*a*a*b").unwrap();
    let name = format!("refs/heads/{}", "a".repeat(100_000));
    let started = std::time::Instant::now();
    assert!(!glob.matches(&name));
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn globs_that_cannot_match_are_refused() {
    // (glob, part of the reason)
    let table = [
        ("", "empty"),
        ("main", "full ref name"),
        ("heads/main", "full ref name"),
        ("refs/", "full ref name"),
        ("refs/heads/ma in", "' '"),
        ("refs/heads/a~1", "'~'"),
        ("refs/heads/a^", "'^'"),
        ("refs/heads/a:b", "':'"),
        ("refs/heads/[ab]", "'['"),
        ("refs/heads/a\\b", "'\\\\'"),
        ("refs/heads/a..b", "\"..\""),
        ("refs//heads", "\"//\""),
        ("refs/heads/a@{1}", "\"@{\""),
        ("refs/heads/", "end with"),
        ("refs/heads/x.", "end with"),
        ("refs/heads/x.lock", "end with"),
    ];
    for (glob, why) in table {
        let err = RefGlob::parse(glob).unwrap_err();
        assert!(err.contains("cannot match any ref"), "{glob}: {err}");
        assert!(err.contains(why), "{glob}: {err} should say {why}");
    }
    for good in [
        "refs/heads/main",
        "refs/tags/v*",
        "refs/**",
        "refs/heads/feat-?/x",
    ] {
        RefGlob::parse(good).unwrap();
    }
}

fn delivery(event: Option<&str>, refs: &[&str]) -> Delivery {
    Delivery {
        event: event.map(str::to_string),
        refs: refs
            .iter()
            .map(|name| GitRef {
                name: (*name).to_string(),
                sha: Some("abc".to_string()),
            })
            .collect(),
    }
}

fn rules(events: &[&str], refs: &[&str]) -> HookRules {
    HookRules {
        events: events.iter().map(|e| (*e).to_string()).collect(),
        refs: refs.iter().map(|r| RefGlob::parse(r).unwrap()).collect(),
    }
}

/// (events, refs, delivery event, delivery refs, runs with ref / reason part)
type RuleRow<'a> = (
    &'a [&'a str],
    &'a [&'a str],
    Option<&'a str>,
    &'a [&'a str],
    Result<Option<&'a str>, &'a str>,
);

#[test]
fn the_rule_matcher() {
    let main_and_tags = ["refs/heads/main", "refs/tags/v*"];
    // (events, refs, delivery event, delivery refs, runs with ref / reason part)
    let table: Vec<RuleRow> = vec![
        // No rules: everything runs, pings included, as in the original.
        (&[], &[], Some("ping"), &[], Ok(None)),
        (&[], &[], Some("issues"), &[], Ok(None)),
        (
            &[],
            &[],
            Some("push"),
            &["refs/heads/dev"],
            Ok(Some("refs/heads/dev")),
        ),
        // Events only.
        (
            &["push", "release"],
            &[],
            Some("push"),
            &["refs/heads/dev"],
            Ok(Some("refs/heads/dev")),
        ),
        (&["push", "release"], &[], Some("Push"), &[], Ok(None)),
        (
            &["push", "release"],
            &[],
            Some("issues"),
            &[],
            Err("event \"issues\" is not in github_events = push, release"),
        ),
        (&["push"], &[], None, &[], Err("names no event")),
        (&["push"], &[], Some("ping"), &[], Err("ping")),
        (&["push", "ping"], &[], Some("ping"), &[], Ok(None)),
        // Refs only: any event with a matching ref.
        (
            &[],
            &main_and_tags,
            Some("push"),
            &["refs/heads/main"],
            Ok(Some("refs/heads/main")),
        ),
        (
            &[],
            &main_and_tags,
            Some("push"),
            &["refs/heads/dev"],
            Err("ref refs/heads/dev matches no github_refs = refs/heads/main, refs/tags/v*"),
        ),
        (
            &[],
            &main_and_tags,
            Some("release"),
            &["refs/tags/v1.0"],
            Ok(Some("refs/tags/v1.0")),
        ),
        (
            &[],
            &main_and_tags,
            Some("issues"),
            &[],
            Err("names no ref"),
        ),
        (&[], &main_and_tags, Some("ping"), &[], Err("ping")),
        // Both.
        (
            &["push"],
            &main_and_tags,
            Some("push"),
            &["refs/heads/main"],
            Ok(Some("refs/heads/main")),
        ),
        (
            &["push"],
            &main_and_tags,
            Some("release"),
            &["refs/tags/v1"],
            Err("event \"release\""),
        ),
        // Several refs (a SourceHut push): the first that matches is the run's.
        (
            &[],
            &main_and_tags,
            Some("repo:post-update"),
            &["refs/heads/dev", "refs/tags/v2", "refs/heads/main"],
            Ok(Some("refs/tags/v2")),
        ),
        (
            &[],
            &main_and_tags,
            Some("repo:post-update"),
            &["refs/heads/dev", "refs/heads/x"],
            Err("ref refs/heads/dev, refs/heads/x matches no"),
        ),
    ];
    for (events, refs, event, names, want) in table {
        let verdict = rules(events, refs).judge("github", &delivery(event, names));
        match (want, &verdict) {
            (Ok(want), Verdict::Run(got)) => {
                assert_eq!(
                    got.as_ref().map(|r| r.name.as_str()),
                    want,
                    "{events:?} {refs:?} {event:?} {names:?}"
                );
            }
            (Err(part), Verdict::Ignore(why)) => {
                assert!(why.contains(part), "{why:?} should contain {part:?}");
            }
            _ => panic!("{events:?} {refs:?} {event:?} {names:?}: got {verdict:?}, want {want:?}"),
        }
    }
}

#[test]
fn keys_are_read_for_their_auth_kind() {
    let (r, errors, warnings) = read(
        "auth_kind = github\ngithub_events = push, Release\ngithub_events = push\n\
         github_refs = refs/heads/main, refs/tags/v*\n",
        AuthKind::Github,
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(r.events, ["push", "release"]);
    assert_eq!(
        r.refs.iter().map(RefGlob::as_str).collect::<Vec<_>>(),
        ["refs/heads/main", "refs/tags/v*"]
    );
    assert_eq!(
        r.describe("github").unwrap(),
        "runs on github events push, release, refs refs/heads/main, refs/tags/v*; other deliveries get 202"
    );
    let (r, errors, _) = read(
        "sourcehut_events = repo:post-update\nsourcehut_refs = refs/heads/**\n",
        AuthKind::Sourcehut,
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(r.events, ["repo:post-update"]);
    assert!(read("command = true\n", AuthKind::Github).0.is_empty());
}

#[test]
fn bad_rules_are_errors_with_file_and_line() {
    let (_, errors, _) = read(
        "github_refs = refs/heads/main, main\ngithub_events =\nsourcehut_refs = refs/heads/main\n",
        AuthKind::Github,
    );
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].starts_with("job.d/a.conf:4: sourcehut_refs is a rule of auth_kind = sourcehut web hooks; this job's auth_kind is github"), "{errors:?}");
    assert!(
        errors[1].starts_with("job.d/a.conf:2: github_refs = \"main\" cannot match any ref"),
        "{errors:?}"
    );
    assert!(
        errors[2].starts_with("job.d/a.conf:3: github_events is empty"),
        "{errors:?}"
    );
    let (_, errors, _) = read(
        "github_events = push\nsourcehut_events = repo:post-update\n",
        AuthKind::HmacSha256,
    );
    assert_eq!(
        errors,
        [
            "job.d/a.conf:2: github_events is a rule of auth_kind = github web hooks; this job's auth_kind is hmac-sha256",
            "job.d/a.conf:3: sourcehut_events is a rule of auth_kind = sourcehut web hooks; this job's auth_kind is hmac-sha256",
        ]
    );
}

#[test]
fn unknown_event_names_are_warned_about() {
    let (r, errors, warnings) = read("github_events = pusj, push\n", AuthKind::Github);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(r.events, ["pusj", "push"]);
    assert_eq!(
        warnings,
        [
            "job.d/a.conf:2: github_events: github sends no event \"pusj\" (did you mean \"push\"?); no delivery will match it"
        ]
    );
}

#[test]
fn rules_without_a_path_are_warned_about() {
    let doc = ini::parse("[job \"a\"]\ngithub_refs = refs/heads/main\n").unwrap();
    let fields = Fields::new(Path::new("a.conf"), &doc.sections[0]);
    let mut problems = Problems::default();
    read_hook_rules(&fields, AuthKind::Github, false, &mut problems);
    assert_eq!(problems.warnings.len(), 1);
    assert!(problems.warnings[0].message.contains("the job has no path"));
}
