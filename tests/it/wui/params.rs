//! Run now with parameters (issue 15): the job page's parameter fields, filled in
//! headless Chromium and posted, reach the command as `KARAJO_PARAM_*`; a post that
//! leaves a required one out or names an undeclared one is refused naming it. The
//! job page also shows the job's web hook rules and parameters.

use super::cdp::Browser;
use super::{location, no_redirects};
use crate::helpers::*;

const DEPLOY: &str = r#"
[job "deploy"]
path = /deploy
auth_kind = github
github_events = push
github_refs = refs/heads/main
param = ENV
param = TAG=latest
command = "printf '%s|%s\n' \"$KARAJO_PARAM_ENV\" \"$KARAJO_PARAM_TAG\" > out.$KARAJO_JOB_COUNTER"
"#;

fn out_of(dir: &TestDir, n: u64) -> String {
    std::fs::read_to_string(
        dir.base()
            .join(format!("var/lib/karajo/job/deploy/out.{n}")),
    )
    .unwrap()
}

#[tokio::test]
async fn the_control_form_passes_params_and_refuses_bad_ones() {
    let dir = TestDir::new(DEPLOY);
    let d = TestDaemon::start(&dir).await;
    let http = no_redirects();
    let page = http
        .get(d.url("/karajo/app/job/deploy"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"run-params\""), "{page}");
    assert!(
        page.contains("name=\"param.ENV\" value=\"\""),
        "the required one starts empty: {page}"
    );
    assert!(
        page.contains("name=\"param.TAG\" value=\"latest\""),
        "{page}"
    );
    assert!(
        page.contains(
            "<dt>Web hook rules</dt><dd>runs on github events push, refs refs/heads/main; \
             other deliveries get 202</dd>"
        ),
        "{page}"
    );
    assert!(
        page.contains("<dt>Parameters</dt><dd>ENV (required), TAG=latest</dd>"),
        "{page}"
    );
    let control = d.url("/karajo/app/job/deploy/control");
    for (form, says) in [
        (
            vec![("param.ENV", ""), ("param.HOST", "h")],
            "undeclared parameter: HOST",
        ),
        (vec![("param.TAG", "x")], "missing parameter: ENV"),
    ] {
        let mut form = form;
        form.extend([("action", "run"), ("secret", SECRET)]);
        let res = http.post(&control).form(&form).send().await.unwrap();
        assert_eq!(res.status(), 400);
        let body = res.text().await.unwrap();
        assert!(body.contains(says), "{body}");
    }
    // Pause needs no parameters.
    let res = http
        .post(&control)
        .form(&[("action", "pause"), ("secret", SECRET)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let res = http
        .post(&control)
        .form(&[("action", "resume"), ("secret", SECRET)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let res = http
        .post(&control)
        .form(&[
            ("action", "run"),
            ("secret", SECRET),
            ("param.ENV", "form"),
            ("param.TAG", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/karajo/app/job/deploy/log/1");
    dir.wait_log("deploy", 1, "success").await;
    assert_eq!(out_of(&dir, 1), "form|\n");
    d.stop().await;
}

#[tokio::test]
async fn browser_run_now_with_parameters() {
    let dir = TestDir::new(DEPLOY);
    let d = TestDaemon::start(&dir).await;
    let browser = Browser::launch().await;
    let page = browser.page().await;
    page.goto(&d.url("/karajo/app/job/deploy")).await;
    page.wait(
        "the parameter fields",
        "document.getElementById('run-params')",
    )
    .await;
    assert_eq!(
        page.eval("document.getElementById('param-TAG').value")
            .await,
        "latest"
    );
    assert!(
        page.text("#run-params").await.contains("ENV (required)"),
        "the required one is marked"
    );
    page.fill("#secret", SECRET).await;
    page.fill("#param-ENV", "from the browser; $(id)").await;
    page.screenshot("15-run-now-with-parameters").await;
    page.click("#btn-run").await;
    page.wait(
        "the log page",
        "location.pathname === '/karajo/app/job/deploy/log/1'",
    )
    .await;
    page.wait(
        "the final status",
        "document.getElementById('run-status').textContent === 'success'",
    )
    .await;
    assert_eq!(out_of(&dir, 1), "from the browser; $(id)|latest\n");
    d.stop().await;
}
