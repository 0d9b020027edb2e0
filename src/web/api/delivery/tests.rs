//! Tests of reading a delivery's event, refs and commit from real GitHub and SourceHut
//! payload shapes (JSON and form-encoded), and of the run parameters' refusals.

use axum::http::HeaderValue;

use super::*;

const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const OLD: &str = "0000000000000000000000000000000000000000";

fn headers(name: &'static str, event: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(name, HeaderValue::from_str(event).unwrap());
    h
}

/// A GitHub push as GitHub sends it (fields trimmed to a few of each object).
fn github_push(r: &str) -> String {
    format!(
        r#"{{"ref":"{r}","before":"{OLD}","after":"{SHA}","created":true,"deleted":false,"forced":false,
"base_ref":null,"compare":"https://github.com/o/r/compare/{r}",
"commits":[{{"id":"{SHA}","message":"x","author":{{"name":"A","email":"a@example.org"}}}}],
"head_commit":{{"id":"{SHA}","tree_id":"f9d2a07e9488b91af2641b26b9407fe22a451433"}},
"repository":{{"id":1,"name":"r","full_name":"o/r","default_branch":"main"}},
"pusher":{{"name":"o","email":"o@example.org"}},"sender":{{"login":"o","id":2}}}}"#
    )
}

fn github(event: &str, body: &str) -> Delivery {
    read(
        AuthKind::Github,
        &headers(HEADER_GITHUB_EVENT, event),
        body.as_bytes(),
    )
    .unwrap()
}

/// A delivery's event, first ref and its commit.
type Seen<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);

fn one(d: &Delivery) -> Seen<'_> {
    let r = d.refs.first();
    (
        d.event.as_deref(),
        r.map(|r| r.name.as_str()),
        r.and_then(|r| r.sha.as_deref()),
    )
}

#[test]
fn github_payloads() {
    let release =
        r#"{"action":"published","release":{"id":1,"tag_name":"v1.2.0","target_commitish":"main",
"name":"v1.2.0","draft":false,"prerelease":false},"repository":{"full_name":"o/r"}}"#
            .to_string();
    let release_at_sha = format!(
        r#"{{"action":"published","release":{{"tag_name":"v2","target_commitish":"{SHA}"}}}}"#
    );
    let create_tag =
        r#"{"ref":"v1.0","ref_type":"tag","master_branch":"main","pusher_type":"user"}"#;
    let delete_branch = r#"{"ref":"old","ref_type":"branch","pusher_type":"user"}"#;
    let pull = format!(
        r#"{{"action":"opened","number":7,"pull_request":{{"number":7,
"head":{{"label":"o:feature","ref":"feature","sha":"{SHA}"}},
"base":{{"label":"o:main","ref":"main","sha":"{OLD}"}}}}}}"#
    );
    let ping = r#"{"zen":"Keep it logically awesome.","hook_id":1,"hook":{"type":"Repository","events":["push"]}}"#;
    let issues = r#"{"action":"opened","issue":{"number":1,"title":"x"}}"#;
    // (event, body, (event, ref, sha))
    let table: Vec<(&str, String, Seen<'_>)> = vec![
        (
            "push",
            github_push("refs/heads/main"),
            (Some("push"), Some("refs/heads/main"), Some(SHA)),
        ),
        (
            "push",
            github_push("refs/tags/v1"),
            (Some("push"), Some("refs/tags/v1"), Some(SHA)),
        ),
        (
            "release",
            release,
            (Some("release"), Some("refs/tags/v1.2.0"), None),
        ),
        (
            "release",
            release_at_sha,
            (Some("release"), Some("refs/tags/v2"), Some(SHA)),
        ),
        (
            "create",
            create_tag.to_string(),
            (Some("create"), Some("refs/tags/v1.0"), None),
        ),
        (
            "delete",
            delete_branch.to_string(),
            (Some("delete"), Some("refs/heads/old"), None),
        ),
        (
            "pull_request",
            pull,
            (Some("pull_request"), Some("refs/heads/main"), Some(SHA)),
        ),
        ("ping", ping.to_string(), (Some("ping"), None, None)),
        ("issues", issues.to_string(), (Some("issues"), None, None)),
        ("push", "not json".to_string(), (Some("push"), None, None)),
        (
            "push",
            r#"{"ref":"main","after":"x"}"#.to_string(),
            (Some("push"), None, None),
        ),
    ];
    for (event, body, want) in table {
        let d = github(event, &body);
        assert_eq!(one(&d), want, "{event}: {body}");
    }
}

#[test]
fn a_github_form_delivery_is_read_from_its_payload_field() {
    let body = serde_urlencoded::to_string([("payload", github_push("refs/heads/dev"))]).unwrap();
    let d = github("push", &body);
    assert_eq!(one(&d), (Some("push"), Some("refs/heads/dev"), Some(SHA)));
}

#[test]
fn a_delivery_without_an_event_header_has_no_event() {
    let d = read(
        AuthKind::Github,
        &HeaderMap::new(),
        github_push("refs/heads/main").as_bytes(),
    )
    .unwrap();
    assert_eq!(d.event, None);
    assert_eq!(d.refs.len(), 1);
    assert!(read(AuthKind::HmacSha256, &HeaderMap::new(), b"{}").is_none());
}

#[test]
fn values_with_nul_or_too_long_are_dropped() {
    let body = format!(r#"{{"ref":"refs/heads/a\u0000b","after":"{SHA}"}}"#);
    assert!(github("push", &body).refs.is_empty());
    let long = format!("refs/heads/{}", "x".repeat(2000));
    let body = format!(r#"{{"ref":"{long}","after":"{SHA}"}}"#);
    assert!(github("push", &body).refs.is_empty());
}

#[test]
fn sourcehut_payloads() {
    // git.sr.ht's legacy repo:post-update (gitsrht-update-hook's WebhookPayload).
    let legacy = format!(
        r#"{{"push":"9f3e5cbd-2a8c-4c8c-9d3c-3b6a0b4b5a1e","pusher":{{"canonical_name":"~u","name":"u"}},
"refs":[{{"annotated_tag":null,"name":"refs/heads/dev","old":{{"id":"{OLD}"}},"new":{{"id":"{OLD}"}}}},
{{"annotated_tag":{{"name":"v3","message":"v3"}},"name":"refs/tags/v3","old":null,"new":{{"id":"{SHA}","message":"x"}}}}]}}"#
    );
    let d = read(
        AuthKind::Sourcehut,
        &headers(HEADER_SOURCEHUT_EVENT, "repo:post-update"),
        legacy.as_bytes(),
    )
    .unwrap();
    assert_eq!(d.event.as_deref(), Some("repo:post-update"));
    let refs: Vec<(&str, Option<&str>)> = d
        .refs
        .iter()
        .map(|r| (r.name.as_str(), r.sha.as_deref()))
        .collect();
    assert_eq!(
        refs,
        [("refs/heads/dev", Some(OLD)), ("refs/tags/v3", Some(SHA))]
    );
    // A GraphQL web hook whose query asks for the updates.
    let graphql = format!(
        r#"{{"data":{{"webhook":{{"uuid":"u","event":"GIT_POST_RECEIVE",
"updates":[{{"ref":{{"name":"refs/heads/main"}},"old":null,"new":{{"id":"{SHA}"}}}}]}}}}}}"#
    );
    let d = read(
        AuthKind::Sourcehut,
        &headers(HEADER_SOURCEHUT_EVENT, "GIT_POST_RECEIVE"),
        graphql.as_bytes(),
    )
    .unwrap();
    assert_eq!(
        one(&d),
        (Some("GIT_POST_RECEIVE"), Some("refs/heads/main"), Some(SHA))
    );
}

#[test]
fn the_runs_git_environment() {
    let d = github("push", &github_push("refs/heads/main"));
    let env = git_env(&d, d.refs.first());
    assert_eq!(
        env,
        [
            ("KARAJO_GIT_EVENT".to_string(), "push".to_string()),
            ("KARAJO_GIT_REF".to_string(), "refs/heads/main".to_string()),
            ("KARAJO_GIT_SHA".to_string(), SHA.to_string()),
        ]
    );
    let ping = github("ping", "{}");
    assert_eq!(
        git_env(&ping, None),
        [("KARAJO_GIT_EVENT".to_string(), "ping".to_string())]
    );
}
