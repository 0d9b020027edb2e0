//! Issue 15's web hook rules and run parameters against the real daemon on 127.0.0.1:
//! signed GitHub and SourceHut deliveries that the rules ignore (`202`, nothing runs)
//! or run (the command sees `KARAJO_GIT_*`), and manual runs whose parameters reach
//! the command as `KARAJO_PARAM_*` only, through the API by id, the `hmac-sha256` web
//! hook and their refusals. Each command writes its environment to a file in its work
//! directory, which the test reads.

use ed25519_dalek::{Signer, SigningKey};
use karajo::auth::sign_hmac_sha256;

use crate::helpers::*;

const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

/// The `KARAJO_*` variables run `counter` of job `id` saw, sorted, one per line.
async fn env_of(dir: &TestDir, id: &str, counter: u64) -> String {
    dir.wait_log(id, counter, "success").await;
    let file = dir
        .base()
        .join(format!("var/lib/karajo/job/{id}/env.{counter}"));
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// A command that writes the run's `KARAJO_*` variables to `env.<counter>`.
const WRITE_ENV: &str = "command = \"env | grep '^KARAJO_' | grep -v '^KARAJO_REQUEST_BODY=' | sort > env.$KARAJO_JOB_COUNTER\"";

fn github_push(r: &str) -> String {
    format!(
        r#"{{"ref":"{r}","before":"0000000000000000000000000000000000000000","after":"{SHA}",
"repository":{{"full_name":"o/r"}},"pusher":{{"name":"o"}},"head_commit":{{"id":"{SHA}"}}}}"#
    )
}

async fn github(
    d: &TestDaemon,
    event: &str,
    delivery: &str,
    body: &str,
    signed: bool,
) -> reqwest::Response {
    let mut req = d
        .http
        .post(d.url("/karajo/api/job_exec/run/gh"))
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", delivery)
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if signed {
        let sign = format!("sha256={}", sign_hmac_sha256(b"ghsecret", body.as_bytes()));
        req = req.header("X-Hub-Signature-256", sign);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn a_github_push_to_dev_runs_nothing_and_one_to_main_runs_with_its_git_variables() {
    let dir = TestDir::new(&format!(
        "[job \"gh\"]\npath = /gh\nauth_kind = github\nsecret = ghsecret\n\
         github_events = push, release\ngithub_refs = refs/heads/main, refs/tags/v*\n{WRITE_ENV}\n"
    ));
    let d = TestDaemon::start(&dir).await;
    let job = d.job("gh").await;
    assert_eq!(job["hook_events"], serde_json::json!(["push", "release"]));
    assert_eq!(
        job["hook_refs"],
        serde_json::json!(["refs/heads/main", "refs/tags/v*"])
    );

    // Unsigned: refused before the rules, never a 202.
    let res = github(&d, "push", "d-0", &github_push("refs/heads/dev"), false).await;
    assert_eq!(res.status(), 403);

    // A push to dev: 202 with the reason, nothing runs.
    let res = github(&d, "push", "d-1", &github_push("refs/heads/dev"), true).await;
    assert_eq!(res.status(), 202);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], 202);
    assert_eq!(body["data"]["run"], false);
    assert_eq!(body["data"]["event"], "push");
    assert_eq!(body["data"]["refs"][0], "refs/heads/dev");
    assert_eq!(
        body["message"],
        "ref refs/heads/dev matches no github_refs = refs/heads/main, refs/tags/v*"
    );
    // The same delivery again is a replay: the replay check comes first.
    let res = github(&d, "push", "d-1", &github_push("refs/heads/dev"), true).await;
    assert_eq!(res.status(), 409);

    // GitHub's ping and an event not listed: 202.
    let res = github(
        &d,
        "ping",
        "d-2",
        r#"{"zen":"Speak like a human.","hook_id":1}"#,
        true,
    )
    .await;
    assert_eq!(res.status(), 202);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().starts_with("ping"),
        "{body}"
    );
    let res = github(&d, "issues", "d-3", r#"{"action":"opened"}"#, true).await;
    assert_eq!(res.status(), 202);
    assert!(dir.log_names("gh").is_empty(), "{:?}", dir.log_names("gh"));

    // A push to main runs, with the event, the ref and the commit.
    let res = github(&d, "push", "d-4", &github_push("refs/heads/main"), true).await;
    assert_eq!(res.status(), 200);
    let env = env_of(&dir, "gh", 1).await;
    assert!(env.contains("KARAJO_GIT_EVENT=push\n"), "{env}");
    assert!(env.contains("KARAJO_GIT_REF=refs/heads/main\n"), "{env}");
    assert!(env.contains(&format!("KARAJO_GIT_SHA={SHA}\n")), "{env}");
    assert!(env.contains("KARAJO_TRIGGER=webhook\n"), "{env}");

    // A release of a v tag runs with the tag's ref.
    let release =
        r#"{"action":"published","release":{"tag_name":"v1.0","target_commitish":"main"}}"#;
    let res = github(&d, "release", "d-5", release, true).await;
    assert_eq!(res.status(), 200);
    let env = env_of(&dir, "gh", 2).await;
    assert!(env.contains("KARAJO_GIT_EVENT=release\n"), "{env}");
    assert!(env.contains("KARAJO_GIT_REF=refs/tags/v1.0\n"), "{env}");
    assert!(!env.contains("KARAJO_GIT_SHA="), "{env}");
    d.stop().await;
}

#[tokio::test]
async fn a_sourcehut_push_runs_for_the_first_matching_ref() {
    let secret =
        hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
    let key = SigningKey::from_bytes(&secret.try_into().unwrap());
    let dir = TestDir::new(&format!(
        "[job \"srht\"]\npath = /srht\nauth_kind = sourcehut\n\
         sourcehut_public_key = 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n\
         sourcehut_events = repo:post-update\nsourcehut_refs = refs/heads/main\n{WRITE_ENV}\n"
    ));
    let d = TestDaemon::start(&dir).await;
    let send = |nonce: &'static str, body: String| {
        use base64::Engine as _;
        let sig = key.sign(format!("{body}{nonce}").as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(sig.to_bytes());
        d.http
            .post(d.url("/karajo/api/job_exec/run/srht"))
            .header("X-Webhook-Event", "repo:post-update")
            .header("X-Webhook-Delivery", nonce)
            .header("X-Payload-Nonce", nonce)
            .header("X-Payload-Signature", sig)
            .body(body)
            .send()
    };
    let push = |refs: &[&str]| {
        let refs: Vec<String> = refs
            .iter()
            .map(|r| {
                format!(
                    r#"{{"annotated_tag":null,"name":"{r}","old":null,"new":{{"id":"{SHA}"}}}}"#
                )
            })
            .collect();
        format!(
            r#"{{"push":"p","pusher":{{"canonical_name":"~u"}},"refs":[{}]}}"#,
            refs.join(",")
        )
    };
    let res = send("n1", push(&["refs/heads/dev"])).await.unwrap();
    assert_eq!(res.status(), 202);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body["message"],
        "ref refs/heads/dev matches no sourcehut_refs = refs/heads/main"
    );
    let res = send("n2", push(&["refs/heads/dev", "refs/heads/main"]))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let env = env_of(&dir, "srht", 1).await;
    assert!(env.contains("KARAJO_GIT_EVENT=repo:post-update\n"), "{env}");
    assert!(env.contains("KARAJO_GIT_REF=refs/heads/main\n"), "{env}");
    assert!(env.contains(&format!("KARAJO_GIT_SHA={SHA}\n")), "{env}");
    d.stop().await;
}

/// A job with a required and a defaulted parameter that writes both, and a file that
/// exists only if a value reached a shell.
fn deploy_dir() -> TestDir {
    TestDir::new(&format!(
        "[job \"deploy\"]\npath = /deploy\nparam = ENV\nparam = TAG=latest\n{WRITE_ENV}\n"
    ))
}

/// `POST /karajo/api/job_exec/run` with `body` signed with the global secret.
async fn api_run(d: &TestDaemon, body: &str, content_type: &str) -> reqwest::Response {
    let sign = sign_hmac_sha256(SECRET.as_bytes(), body.as_bytes());
    d.http
        .post(d.url("/karajo/api/job_exec/run"))
        .header("X-Karajo-Sign", sign)
        .header("Content-Type", content_type)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn params_reach_the_command_as_environment_only_through_the_api_and_the_web_hook() {
    let dir = deploy_dir();
    let d = TestDaemon::start(&dir).await;
    assert_eq!(
        d.job("deploy").await["params"],
        serde_json::json!([{"name": "ENV"}, {"name": "TAG", "default": "latest"}])
    );
    let hostile = "prod'; touch pwned; echo \"$(touch pwned2)";

    // By id, JSON: the value as given, the default for the other.
    let body = serde_json::json!({
        "_karajo_epoch": epoch_now(), "_karajo_nonce": nonce(),
        "id": "deploy", "params": { "ENV": hostile },
    })
    .to_string();
    let res = api_run(&d, &body, "application/json").await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let env = env_of(&dir, "deploy", 1).await;
    assert!(
        env.contains(&format!("KARAJO_PARAM_ENV={hostile}\n")),
        "{env}"
    );
    assert!(env.contains("KARAJO_PARAM_TAG=latest\n"), "{env}");
    assert!(env.contains("KARAJO_TRIGGER=api\n"), "{env}");
    let work = dir.base().join("var/lib/karajo/job/deploy");
    assert!(!work.join("pwned").exists() && !work.join("pwned2").exists());

    // By id, a form; names in any case.
    let body = format!(
        "_karajo_epoch={}&_karajo_nonce={}&id=deploy&param.env=staging&param.Tag=v2",
        epoch_now(),
        nonce()
    );
    let res = api_run(&d, &body, "application/x-www-form-urlencoded").await;
    assert_eq!(res.status(), 200);
    let env = env_of(&dir, "deploy", 2).await;
    assert!(
        env.contains("KARAJO_PARAM_ENV=staging\nKARAJO_PARAM_TAG=v2\n"),
        "{env}"
    );

    // Through the hmac-sha256 web hook, as a params object in the signed body.
    let body = serde_json::json!({
        "_karajo_epoch": epoch_now(), "_karajo_nonce": nonce(), "params": { "ENV": "hook" },
    })
    .to_string();
    let res = d.run_hook("/deploy", &body).await;
    assert_eq!(res.status(), 200);
    let env = env_of(&dir, "deploy", 3).await;
    assert!(env.contains("KARAJO_PARAM_ENV=hook\n"), "{env}");
    d.stop().await;
}

#[tokio::test]
async fn undeclared_missing_and_bad_params_are_refused_with_400_naming_them() {
    let dir = deploy_dir();
    let d = TestDaemon::start(&dir).await;
    let run = |params: serde_json::Value| {
        serde_json::json!({
            "_karajo_epoch": epoch_now(), "_karajo_nonce": nonce(),
            "id": "deploy", "params": params,
        })
        .to_string()
    };
    // (params, status, message)
    let table = [
        (
            serde_json::json!({"ENV": "x", "HOST": "h", "port": "1"}),
            "undeclared parameters: HOST, port; the job declares ENV, TAG",
        ),
        (
            serde_json::json!({"TAG": "x"}),
            "missing parameter: ENV (declared without a default)",
        ),
        (
            serde_json::json!({"ENV": "a\u{0}b"}),
            "the value of parameter ENV holds a NUL byte",
        ),
        (
            serde_json::json!({"ENV": "x".repeat(5000)}),
            "the value of parameter ENV is longer than 4096 bytes",
        ),
        (
            serde_json::json!({"ENV": 1}),
            "parameter ENV: the value must be a JSON string",
        ),
    ];
    for (params, message) in table {
        let res = api_run(&d, &run(params.clone()), "application/json").await;
        assert_eq!(res.status(), 400, "{params}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["message"], message, "{params}");
        assert_eq!(body["name"], "ERR_PARAMS");
    }
    // The web hook refuses the same way.
    let body = serde_json::json!({
        "_karajo_epoch": epoch_now(), "_karajo_nonce": nonce(), "params": { "NOPE": "1" },
    })
    .to_string();
    let res = d.run_hook("/deploy", &body).await;
    assert_eq!(res.status(), 400);
    // Unsigned, or signed with another secret: 401, before anything else.
    let body = run(serde_json::json!({"ENV": "x"}));
    let res = d
        .http
        .post(d.url("/karajo/api/job_exec/run"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // An unknown job: 404 naming it.
    let body = serde_json::json!({
        "_karajo_epoch": epoch_now(), "_karajo_nonce": nonce(), "id": "deplyo",
    })
    .to_string();
    let res = api_run(&d, &body, "application/json").await;
    assert_eq!(res.status(), 404);
    let text = res.text().await.unwrap();
    assert!(text.contains("deploy"), "{text}");
    assert!(dir.log_names("deploy").is_empty());
    d.stop().await;
}

/// A signed GitHub push of `r` (of a commit of its own: GitHub's replay guard also
/// knows bodies) to the `gh` job: the answer's status.
async fn push(d: &TestDaemon, delivery: &str, r: &str) -> u16 {
    let body = github_push(r).replace(SHA, &format!("{:040x}", rand::random::<u128>()));
    github(d, "push", delivery, &body, true)
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_reload_changes_the_rules_and_one_with_a_bad_glob_keeps_the_old_ones() {
    let conf = |refs: &str| {
        format!(
            "[job \"gh\"]\npath = /gh\nauth_kind = github\nsecret = ghsecret\n\
             github_refs = {refs}\n{WRITE_ENV}\n"
        )
    };
    let dir = TestDir::new(&conf("refs/heads/main"));
    let d = TestDaemon::start(&dir).await;
    let swap = |from: &str, to: &str| {
        let text = std::fs::read_to_string(dir.config_file()).unwrap();
        let changed = text.replace(&conf(from), &conf(to));
        assert_ne!(text, changed);
        std::fs::write(dir.config_file(), changed).unwrap();
    };
    assert_eq!(push(&d, "r-1", "refs/heads/dev").await, 202);

    swap("refs/heads/main", "refs/heads/dev");
    d.daemon.as_ref().unwrap().reload().await.unwrap();
    assert_eq!(push(&d, "r-2", "refs/heads/main").await, 202);
    assert_eq!(push(&d, "r-3", "refs/heads/dev").await, 200);
    let env = env_of(&dir, "gh", 1).await;
    assert!(env.contains("KARAJO_GIT_REF=refs/heads/dev\n"), "{env}");

    // A glob that cannot match: the reload fails, naming the file and line, and the
    // running rules stay.
    swap("refs/heads/dev", "heads/main");
    let err = d
        .daemon
        .as_ref()
        .unwrap()
        .reload()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("karajo.conf:"), "{err}");
    assert!(
        err.contains("github_refs = \"heads/main\" cannot match any ref"),
        "{err}"
    );
    assert_eq!(push(&d, "r-4", "refs/heads/main").await, 202);
    assert_eq!(push(&d, "r-5", "refs/heads/dev").await, 200);
    dir.wait_log("gh", 2, "success").await;
    d.stop().await;
}
