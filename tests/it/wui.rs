//! The web UI: the access rules over plain HTTP (redirects and 401 without a session
//! when users exist, the original's login API and its cookie, CSRF, the SSE stream,
//! caching headers, dir_public's path checks), and the pages in headless Chromium
//! (login and logout, the live dashboard, run now with the live log, pause and resume,
//! a description with HTML); the dashboard's list, search, filters and counts, and
//! the dashboard with 1,000 jobs, are in [`dashboard`]; heartbeat monitors' pages and
//! the event log's page are in [`monitor`]; supervised services' pages, cards and rows
//! are in [`service`]; Run now with parameters is in [`params`]. Screenshots go to
//! `target/screenshots/`.

mod cdp;
mod dashboard;
mod monitor;
mod params;
mod service;

use karajo::job::{JobId, JobKey, JobKind, Trigger};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::*;
use cdp::Browser;

const PASSWORD: &str = "p&ss+w=rd %20";

const JOBS: &str = r#"
[job "hello"]
description = Says hello.
command = echo hello from $KARAJO_TRIGGER

[job "slow"]
description = Prints a line, waits for the file "go", prints another.
command = echo first line
command = "printf '\\033[32mgreen line\\033[0m\\n'"
command = "while [ ! -f go ]; do sleep 0.05; done"
command = echo second line

[job "nightly"]
schedule = daily@03:00
command = echo nightly

[job.http "ping"]
description = Pings the environment.
http_url = /karajo/api/environment
"#;

/// A test directory with `JOBS` and a user `admin` whose password has `&`, `+`, `=`
/// and `%` in it (the original's page broke on those).
fn with_users() -> TestDir {
    let dir = TestDir::new(JOBS);
    let hash = bcrypt::hash(PASSWORD, 4).expect("hash");
    dir.write(
        "etc/karajo/user.conf",
        &format!("[user \"admin\"]\npassword = {hash}\n"),
    );
    dir
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Logs in through the original's API; the cookie header value `karajo=<key>`.
async fn api_login(d: &TestDaemon, http: &reqwest::Client) -> String {
    let res = http
        .post(d.url("/karajo/api/auth/login"))
        .form(&[("name", "admin"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert_eq!(res.text().await.unwrap(), r#"{"code":200}"#);
    cookie.split(';').next().unwrap().to_string()
}

/// A command job's status, from the scheduler (the API needs a login here).
fn status_of(d: &TestDaemon, id: &str) -> &'static str {
    let snapshot = d.daemon.as_ref().unwrap().scheduler().snapshot();
    snapshot
        .job(JobKind::Exec, id)
        .expect("job")
        .status
        .as_str()
}

/// The CSRF token in a page.
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    page[at..at + 43].to_string()
}

#[tokio::test]
async fn without_a_session_pages_redirect_and_reads_need_a_session_or_signature() {
    let dir = with_users();
    let d = TestDaemon::start(&dir).await;
    let http = no_redirects();
    for (path, to) in [
        ("/karajo/", "/karajo/login"),
        ("/karajo", "/karajo/login"),
        ("/karajo/app/", "/karajo/login?next=%2Fkarajo%2Fapp%2F"),
        (
            "/karajo/app/job/hello",
            "/karajo/login?next=%2Fkarajo%2Fapp%2Fjob%2Fhello",
        ),
    ] {
        let res = http.get(d.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 303, "{path}");
        assert_eq!(location(&res), to, "{path}");
    }
    for path in [
        "/karajo/api/environment",
        "/karajo/api/job_exec/log?id=hello&counter=1",
        "/karajo/api/job_http?id=ping",
        "/karajo/api/job_http/log?id=ping&counter=1",
        "/karajo/metrics",
        "/KARAJO/API/ENVIRONMENT/",
        "/karajo/events",
        "/karajo/app/job/hello/log/1/raw",
    ] {
        let res = http.get(d.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path}");
    }
    // A signature over the raw query string (with a fresh epoch) is enough for reads.
    let query = format!("id=ping&_karajo_epoch={}", epoch_now());
    let sign = karajo::auth::sign_hmac_sha256(SECRET.as_bytes(), query.as_bytes());
    let res = http
        .get(d.url(&format!("/karajo/api/job_http?{query}")))
        .header("X-Karajo-Sign", &sign)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // ... once: the same signed read again is refused.
    let res = http
        .get(d.url(&format!("/karajo/api/job_http?{query}")))
        .header("X-Karajo-Sign", &sign)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    for path in ["/karajo/api/environment", "/karajo/metrics"] {
        let (query, sign) = signed_query("");
        let res = http
            .get(d.url(&format!("{path}?{query}")))
            .header("X-Karajo-Sign", &sign)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }
    let stale = format!("id=ping&_karajo_epoch={}", epoch_now() - 3600);
    let sign = karajo::auth::sign_hmac_sha256(SECRET.as_bytes(), stale.as_bytes());
    let res = http
        .get(d.url(&format!("/karajo/api/job_http?{stale}")))
        .header("X-Karajo-Sign", &sign)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // The login page and the assets are open.
    let res = http.get(d.url("/karajo/login")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let login = res.text().await.unwrap();
    assert!(
        login.contains("<h1 id=\"login-title\">Welcome to test</h1>"),
        "{login}"
    );
    let res = http
        .get(d.url("/karajo/static/karajo.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    d.stop().await;
}

#[tokio::test]
async fn the_login_api_sets_a_strict_cookie_and_refuses_bad_passwords() {
    let dir = with_users();
    let d = TestDaemon::start(&dir).await;
    let http = no_redirects();
    for (name, password) in [("admin", "nope"), ("nobody", PASSWORD), ("", "")] {
        let res = http
            .post(d.url("/karajo/api/auth/login"))
            .form(&[("name", name), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        assert!(res.headers().get("set-cookie").is_none());
        assert_eq!(
            res.text().await.unwrap(),
            r#"{"message":"invalid user name and/or password","name":"ERR_AUTH_LOGIN","code":400}"#
        );
    }
    let res = http
        .post(d.url("/karajo/api/auth/login"))
        .form(&[("name", " admin "), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("karajo="), "{cookie}");
    let key = cookie["karajo=".len()..].split(';').next().unwrap();
    assert!(key.len() >= 32 && key.chars().all(|c| c.is_ascii_alphanumeric()));
    for attr in ["Path=/", "Max-Age=86400", "HttpOnly", "SameSite=Lax"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "{cookie}");
    // A client's own X-Forwarded-Proto is ignored (no trusted_proxy here; see
    // login.rs for a trusted one).
    let res = http
        .post(d.url("/karajo/api/auth/login"))
        .header("X-Forwarded-Proto", "https")
        .form(&[("name", "admin"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(!cookie.contains("Secure"), "{cookie}");
    // The session opens the API and the pages.
    let session = api_login(&d, &http).await;
    let res = http
        .get(d.url("/karajo/api/environment"))
        .header("Cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http
        .get(d.url("/karajo/app/"))
        .header("Cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(
        res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let page = res.text().await.unwrap();
    assert!(page.contains("hello") && page.contains("ping"));
    // Logout ends it.
    let token = csrf_of(&page);
    let res = http
        .post(d.url("/karajo/logout"))
        .header("Cookie", &session)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let res = http
        .get(d.url("/karajo/api/environment"))
        .header("Cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    d.stop().await;
}

#[tokio::test]
async fn controls_need_the_sessions_csrf_token() {
    let dir = with_users();
    let d = TestDaemon::start(&dir).await;
    let http = no_redirects();
    let session = api_login(&d, &http).await;
    let page = http
        .get(d.url("/karajo/app/job/hello"))
        .header("Cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = csrf_of(&page);
    let control = d.url("/karajo/app/job/hello/control");
    for form in [
        vec![("action", "pause")],
        vec![("action", "pause"), ("csrf", "x")],
        vec![("action", "pause"), ("secret", SECRET)],
    ] {
        let res = http
            .post(&control)
            .header("Cookie", &session)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{form:?}");
    }
    // No session at all.
    let res = http
        .post(&control)
        .form(&[("action", "pause"), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(status_of(&d, "hello"), "started");
    // With the token: pause, then run now is refused while paused, then resume and run.
    let post = |action: &'static str| {
        http.post(&control)
            .header("Cookie", &session)
            .form(&[("action", action), ("csrf", token.as_str())])
            .send()
    };
    let res = post("pause").await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/karajo/app/job/hello?notice=paused");
    assert_eq!(status_of(&d, "hello"), "paused");
    let res = post("run").await.unwrap();
    assert_eq!(
        location(&res),
        "/karajo/app/job/hello?notice=paused-refused"
    );
    let res = post("resume").await.unwrap();
    assert_eq!(location(&res), "/karajo/app/job/hello?notice=resumed");
    let res = post("run").await.unwrap();
    assert_eq!(location(&res), "/karajo/app/job/hello/log/1");
    let log = dir.wait_log("hello", 1, "success").await;
    assert!(log.contains("hello from api"), "{log}");
    // The raw log is a download.
    let res = http
        .get(d.url("/karajo/app/job/hello/log/1/raw"))
        .header("Cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"hello.1.success.log\""
    );
    assert_eq!(res.text().await.unwrap(), log);
    // The job page lists the run with what started it.
    let page = wait_for("the run listed as finished", || async {
        let res = http
            .get(d.url("/karajo/app/job/hello"))
            .header("Cookie", &session)
            .send()
            .await
            .ok()?;
        let page = res.text().await.ok()?;
        page.contains("st-success").then_some(page)
    })
    .await;
    assert!(page.contains("<td>api</td>"), "{page}");
    d.stop().await;
}

#[tokio::test]
async fn without_users_pages_are_open_and_controls_take_the_secret() {
    let dir = TestDir::new(JOBS);
    let d = TestDaemon::start(&dir).await;
    let http = no_redirects();
    let res = http.get(d.url("/karajo/")).send().await.unwrap();
    assert_eq!(location(&res), "/karajo/app/");
    let res = http.get(d.url("/karajo/login")).send().await.unwrap();
    assert_eq!(location(&res), "/karajo/app/");
    let page = http
        .get(d.url("/karajo/app/job_http/ping"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("name=\"secret\""));
    let control = d.url("/karajo/app/job_http/ping/control");
    let res = http
        .post(&control)
        .form(&[("action", "run"), ("secret", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // The error page is titled with the configured name (`test`), not "karajo".
    let body = res.text().await.unwrap();
    assert!(body.contains("<title>Forbidden · test</title>"), "{body}");
    assert!(
        body.contains("class=\"brand\" href=\"/karajo/app/\">test</a>"),
        "{body}"
    );
    // So is a page of a job that does not exist.
    let res = http
        .get(d.url("/karajo/app/job/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("<title>Not Found · test</title>")
    );
    let res = http
        .post(&control)
        .form(&[("action", "run"), ("secret", SECRET)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/karajo/app/job_http/ping/log/1");
    d.wait_http_status("ping", "success").await;
    // The original's log page URL leads to the new one.
    let res = http
        .get(d.url("/karajo/job_exec/log/?id=hello&counter=3"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/karajo/app/job/hello/log/3");
    d.stop().await;
}

#[tokio::test]
async fn the_event_stream_sends_the_dashboard_and_then_changes() {
    let dir = with_users();
    let d = TestDaemon::start(&dir).await;
    let http = no_redirects();
    let session = api_login(&d, &http).await;
    let mut res = http
        .get(d.url("/karajo/events"))
        .header("Cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    let mut read_until = async |needle: &str, seen: &mut String| {
        tokio::time::timeout(TIMEOUT, async {
            while !seen.contains(needle) {
                let chunk = res.chunk().await.unwrap().expect("stream goes on");
                seen.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {needle:?} in the stream: {seen}"));
    };
    read_until("event: update", &mut seen).await;
    assert!(seen.contains("data-key=\"job/hello\""), "{seen}");
    seen.clear();
    let scheduler = d.daemon.as_ref().unwrap().scheduler().clone();
    scheduler
        .trigger(JobKey::exec(JobId::from_raw("hello")), Trigger::Api, None)
        .await
        .unwrap();
    read_until("/karajo/app/job/hello/log/1", &mut seen).await;
    d.stop().await;
}

#[tokio::test]
async fn assets_are_cached_and_revalidated() {
    let dir = TestDir::new(JOBS);
    let d = TestDaemon::start(&dir).await;
    let http = no_redirects();
    let res = http
        .get(d.url("/karajo/static/karajo.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "public, max-age=86400");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    let res = http
        .get(d.url("/karajo/static/karajo.js"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    let res = http
        .get(d.url("/karajo/static/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    d.stop().await;
}

/// Sends a raw request line (so the path is not normalised by a client) and returns
/// the status code.
async fn raw_status(d: &TestDaemon, path: &str) -> u16 {
    let addr = d.daemon.as_ref().unwrap().local_addr();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0)
}

#[tokio::test]
async fn dir_public_is_served_without_traversal_or_shadowing_karajo() {
    let dir = TestDir::new(JOBS);
    let public = dir.base().join("public");
    std::fs::create_dir_all(public.join("docs")).unwrap();
    std::fs::create_dir_all(public.join("karajo/app")).unwrap();
    std::fs::write(public.join("index.html"), "<h1>home</h1>").unwrap();
    std::fs::write(public.join("docs/a.txt"), "text").unwrap();
    std::fs::write(public.join("karajo/app/index.html"), "shadow").unwrap();
    std::os::unix::fs::symlink(dir.config_file(), public.join("conf.txt")).unwrap();
    let conf = std::fs::read_to_string(dir.config_file())
        .unwrap()
        .replacen(
            "[karajo]\n",
            &format!("[karajo]\ndir_public = {}\n", public.display()),
            1,
        );
    dir.write("etc/karajo/karajo.conf", &conf);
    let d = TestDaemon::start(&dir).await;
    let http = no_redirects();
    let res = http.get(d.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "<h1>home</h1>");
    let res = http.get(d.url("/docs/a.txt")).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(res.text().await.unwrap(), "text");
    let res = http.get(d.url("/docs")).send().await.unwrap();
    assert_eq!(location(&res), "/docs/");
    // /karajo is never served from dir_public.
    let res = http.get(d.url("/karajo/app/")).send().await.unwrap();
    assert!(res.text().await.unwrap().contains("<h1>Jobs</h1>"));
    assert_eq!(raw_status(&d, "/karajo/app/index.html").await, 404);
    for path in [
        "/../etc/karajo/karajo.conf",
        "/%2e%2e/etc/karajo/karajo.conf",
        "/docs/..%2f..%2fetc/karajo/karajo.conf",
        "/docs/%2E%2E/%2E%2E/etc/karajo/karajo.conf",
        "/conf.txt",
        "/docs/a.txt%00",
        "/..%5c..%5cetc",
    ] {
        assert_eq!(raw_status(&d, path).await, 404, "{path}");
    }
    assert_eq!(raw_status(&d, "/docs/a.txt").await, 200);
    d.stop().await;
}

// ---------------------------------------------------------------------------
// In a real browser.

#[tokio::test]
async fn browser_login_dashboard_run_now_live_log_pause_resume_and_logout() {
    let dir = with_users();
    let d = TestDaemon::start(&dir).await;
    let browser = Browser::launch().await;
    let page = browser.page().await;
    page.timezone("Asia/Jakarta").await;

    // Login: the entry leads to the login page; a wrong password is refused.
    page.goto(&d.url("/karajo/")).await;
    page.wait("the login page", "location.pathname === '/karajo/login'")
        .await;
    page.screenshot("01-login").await;
    page.fill("#name", "admin").await;
    page.fill("#password", "wrong").await;
    page.eval("document.querySelector('form.stack').requestSubmit()")
        .await;
    page.wait("the login error", "document.getElementById('login-error')")
        .await;
    page.fill("#password", PASSWORD).await;
    page.eval("document.querySelector('form.stack').requestSubmit()")
        .await;
    page.wait("the dashboard", "location.pathname === '/karajo/app/'")
        .await;
    page.wait_loaded().await;

    // The dashboard lists every job, with local times.
    for name in ["hello", "slow", "nightly", "ping"] {
        page.wait(
            &format!("job {name} on the dashboard"),
            &format!(
                "[...document.querySelectorAll('.job-name')].some(a => a.textContent === '{name}')"
            ),
        )
        .await;
    }
    assert_eq!(page.text(".who").await, "admin");
    let next = page.text("[data-key='job/nightly'] time").await;
    assert!(
        !next.contains("UTC") && next.contains('(') && next.contains("GMT+7"),
        "localised, with the zone: {next}"
    );
    assert!(
        page.text("#zone-note").await.contains("Asia/Jakarta"),
        "the footer names the reader's zone"
    );
    // A job that never ran is `new` (grey), not `started`.
    assert_eq!(page.text("[data-key='job/hello'] .badge").await, "new");
    assert_eq!(
        page.eval("document.querySelector('[data-key=\"job/hello\"] .badge').className")
            .await,
        "badge st-new"
    );
    assert_eq!(
        page.eval(
            "getComputedStyle(document.querySelector('[data-key=\"job/hello\"] .badge')).color"
        )
        .await,
        "rgb(95, 99, 104)",
        "a neutral grey"
    );
    assert_eq!(
        page.eval("document.querySelectorAll('.badge.st-started').length")
            .await,
        0
    );

    // Live: a run started elsewhere shows up without a reload.
    page.eval("window.__stay = 1").await;
    d.daemon
        .as_ref()
        .unwrap()
        .scheduler()
        .trigger(JobKey::exec(JobId::from_raw("hello")), Trigger::Api, None)
        .await
        .unwrap();
    page.wait(
        "the new run on the dashboard",
        "document.querySelector('[data-key=\"job/hello\"] a[href=\"/karajo/app/job/hello/log/1\"]') && document.querySelector('[data-key=\"job/hello\"]').classList.contains('st-success')",
    )
    .await;
    assert_eq!(
        page.eval("window.__stay").await,
        1,
        "the page did not reload"
    );
    page.screenshot("02-dashboard").await;
    page.color_scheme("dark").await;
    page.screenshot("03-dashboard-dark").await;
    page.color_scheme("light").await;
    page.viewport(360, 740).await;
    let overflow = page
        .eval("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        .await;
    assert!(
        overflow.as_i64().unwrap_or(99) <= 0,
        "no sideways scrolling at 360 px: {overflow}"
    );
    page.screenshot("04-dashboard-360px").await;
    page.viewport(1100, 900).await;

    // Run now, by keyboard, on the job page: the live log follows the run.
    page.goto(&d.url("/karajo/app/job/slow")).await;
    page.screenshot("05-job-page").await;
    page.press_enter_on("#btn-run").await;
    page.wait(
        "the log page",
        "location.pathname === '/karajo/app/job/slow/log/1'",
    )
    .await;
    page.wait_loaded().await;
    page.wait(
        "the first line",
        "document.getElementById('log').textContent.includes('first line')",
    )
    .await;
    page.wait(
        "the green line",
        "document.querySelector('#log span.f2') && document.querySelector('#log span.f2').textContent === 'green line'",
    )
    .await;
    assert_eq!(page.text("#run-status").await, "running");
    assert!(!page.text("#log").await.contains("second line"));
    page.eval("window.__stay = 2").await;
    page.screenshot("06-log-running").await;
    std::fs::write(dir.base().join("var/lib/karajo/job/slow/go"), "").unwrap();
    page.wait(
        "the second line",
        "document.getElementById('log').textContent.includes('second line')",
    )
    .await;
    page.wait(
        "the final status",
        "document.getElementById('run-status').textContent === 'success'",
    )
    .await;
    assert_eq!(
        page.eval("window.__stay").await,
        2,
        "the log page did not reload"
    );
    assert!(page.text("#log").await.contains("=== DONE"));
    page.screenshot("07-log-done").await;

    // Pause and resume.
    page.goto(&d.url("/karajo/app/job/hello")).await;
    page.click("#btn-pause").await;
    page.wait("paused", "document.getElementById('job-status') && document.getElementById('job-status').textContent === 'paused' && location.search === '?notice=paused'").await;
    page.screenshot("08-job-paused").await;
    assert_eq!(status_of(&d, "hello"), "paused");
    page.click("#btn-resume").await;
    page.wait("resumed", "location.search === '?notice=resumed' && document.getElementById('job-status').textContent !== 'paused'").await;
    assert_ne!(status_of(&d, "hello"), "paused");

    // Logout: back to the login page, and the pages are closed again.
    page.click(".logout button").await;
    page.wait("the login page", "location.pathname === '/karajo/login'")
        .await;
    page.goto(&d.url("/karajo/app/")).await;
    page.wait(
        "redirected to login",
        "location.pathname === '/karajo/login'",
    )
    .await;
    drop(page);
    drop(browser);
    d.stop().await;
}

#[tokio::test]
async fn browser_shows_a_job_description_with_html_as_text() {
    let dir = TestDir::new(
        r#"
[job "evil"]
description = "<img src=x onerror=window.__xss=1><script>window.__xss=2</script><b>bold?</b>"
command = echo fine

[job.http "evil http"]
description = "<script>window.__xss=3</script>"
http_url = /karajo/api/environment
"#,
    );
    let d = TestDaemon::start(&dir).await;
    let browser = Browser::launch().await;
    let page = browser.page().await;
    page.goto(&d.url("/karajo/app/job/evil")).await;
    page.wait("the job page", "document.querySelector('.description')")
        .await;
    page.wait(
        "a live update",
        "document.body.getAttribute('data-updates') !== null",
    )
    .await;
    assert_eq!(page.eval("typeof window.__xss").await, "undefined");
    let text = page.text(".description").await;
    assert!(
        text.contains("<img src=x onerror=window.__xss=1><script>"),
        "{text}"
    );
    assert_eq!(
        page.eval("document.querySelectorAll('.description *').length")
            .await,
        0
    );
    // No users: the controls ask for the secret; run now works with it.
    page.fill("#secret", SECRET).await;
    page.click("#btn-run").await;
    page.wait(
        "the log page",
        "location.pathname === '/karajo/app/job/evil/log/1'",
    )
    .await;
    page.wait(
        "the final status",
        "document.getElementById('run-status').textContent === 'success'",
    )
    .await;
    page.goto(&d.url("/karajo/app/job/evil")).await;
    page.wait(
        "the run in the list",
        "document.querySelector('.runs a[href$=\"/log/1\"]')",
    )
    .await;
    page.screenshot("09-job-description-escaped").await;
    page.goto(&d.url("/karajo/app/job_http/evil_http")).await;
    page.wait(
        "the HTTP job page",
        "document.querySelector('.description')",
    )
    .await;
    assert!(page.text(".description").await.contains("<script>"));
    page.goto(&d.url("/karajo/app/")).await;
    page.wait("the dashboard", "document.querySelector('.job-name')")
        .await;
    // The page's own script has run (the live stream delivered an update), so any
    // injected one would have too.
    page.wait(
        "a live update",
        "document.body.getAttribute('data-updates') !== null",
    )
    .await;
    assert_eq!(page.eval("typeof window.__xss").await, "undefined");
    drop(page);
    drop(browser);
    d.stop().await;
}

/// The first hour with karajo: a configured name, an interval job in its first run, a
/// job that never ran, short runs, a schedule in another zone than the reader's.
const FIRST_HOUR: &str = r#"
[job "tick"]
description = An interval job whose first run prints a long log in three parts.
interval = 1h
command = "for i in $(seq 1 80); do echo line $i; done"
command = "while [ ! -f go1 ]; do sleep 0.05; done"
command = "for i in $(seq 81 120); do echo line $i; done"
command = "while [ ! -f go2 ]; do sleep 0.05; done"
command = echo last line

[job "fresh"]
command = echo never run

[job "quick"]
command = true

[job "nightly"]
schedule = daily@03:00
timezone = Europe/Berlin
command = echo nightly

[job "local"]
schedule = daily@03:00
timezone = Asia/Jakarta
command = echo local
"#;

#[tokio::test]
async fn browser_the_first_hour_reads_well() {
    let dir = TestDir::new(FIRST_HOUR);
    let conf = std::fs::read_to_string(dir.config_file())
        .unwrap()
        .replacen("name = test\n", "name = Ops Runner\n", 1);
    dir.write("etc/karajo/karajo.conf", &conf);
    let d = TestDaemon::start(&dir).await;
    let scheduler = d.daemon.as_ref().unwrap().scheduler().clone();
    for n in 1..=3 {
        scheduler
            .trigger(JobKey::exec(JobId::from_raw("quick")), Trigger::Api, None)
            .await
            .unwrap();
        dir.wait_log("quick", n, "success").await;
    }
    let browser = Browser::launch().await;
    let page = browser.page().await;
    page.timezone("Asia/Jakarta").await;

    // The dashboard: tick's first run shows as running, with a ticking elapsed time
    // and no "on request"; fresh is `new`; quick's sub-second runs have visible bars.
    page.goto(&d.url("/karajo/app/")).await;
    let tick = "[data-key=\"job/tick\"]";
    page.wait(
        "tick running on its card",
        &format!("document.querySelector('{tick} .running-line time')"),
    )
    .await;
    assert_eq!(page.text(&format!("{tick} .badge")).await, "running");
    let line = page.text(&format!("{tick} .running-line")).await;
    assert!(
        line.starts_with("Running since ") && line.contains("GMT+7") && line.contains("so far"),
        "{line}"
    );
    assert_eq!(
        page.text(&format!("{tick} .next-run")).await,
        "after this run"
    );
    assert_eq!(page.eval("document.title").await, "Jobs · Ops Runner");
    assert_eq!(page.text(".brand").await, "Ops Runner");
    let fresh = "[data-key=\"job/fresh\"]";
    assert_eq!(page.text(&format!("{fresh} .badge")).await, "new");
    assert_eq!(
        page.eval(&format!(
            "document.querySelector('{fresh} .badge').classList.contains('st-new')"
        ))
        .await,
        true
    );
    assert_eq!(page.text(&format!("{fresh} .next-run")).await, "on request");
    let quick = "[data-key=\"job/quick\"]";
    page.wait(
        "quick's three bars",
        &format!("document.querySelectorAll('{quick} rect.bar').length === 3"),
    )
    .await;
    let heights = page
        .eval(&format!(
            "[...document.querySelectorAll('{quick} rect.bar')].map(r => r.getBoundingClientRect().height)"
        ))
        .await;
    for h in heights.as_array().unwrap() {
        assert!(h.as_f64().unwrap() >= 7.5, "a visible bar: {heights}");
    }
    let scale = page.text(&format!("{quick} .chart-scale")).await;
    assert!(
        scale == "all under 1 s" || scale == "longest 1 s",
        "the scale in words: {scale}"
    );
    let elapsed = format!("{tick} [data-elapsed]");
    let before = page.text(&elapsed).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let after = page.text(&elapsed).await;
    assert_ne!(before, after, "the elapsed time ticks");
    page.screenshot("10-first-hour-dashboard").await;

    // The job pages: a running job's state; a schedule's next runs in the job's zone
    // and the reader's, each labelled.
    page.goto(&d.url("/karajo/app/job/tick")).await;
    page.wait(
        "tick's state",
        "document.querySelector('.facts .running-line')",
    )
    .await;
    assert_eq!(page.text("#job-status").await, "running");
    assert_eq!(page.text("#live .next-run").await, "after this run");
    page.color_scheme("dark").await;
    page.screenshot("14-job-running-dark").await;
    page.color_scheme("light").await;
    page.goto(&d.url("/karajo/app/job/fresh")).await;
    assert_eq!(page.text("#job-status").await, "new");
    page.goto(&d.url("/karajo/app/job/nightly")).await;
    let first = page.text(".upcoming li").await;
    assert!(
        first.contains(" 03:00 CET") || first.contains(" 03:00 CEST"),
        "{first}"
    );
    assert!(
        first.contains("(the job's zone, Europe/Berlin)")
            && first.contains("GMT+7 (your time, Asia/Jakarta)"),
        "{first}"
    );
    page.screenshot("11-schedule-zones").await;
    page.goto(&d.url("/karajo/app/job/local")).await;
    let first = page.text(".upcoming li").await;
    assert!(
        first.contains("(the job's zone and yours, Asia/Jakarta)"),
        "{first}"
    );
    assert_eq!(
        page.eval("document.querySelector('.upcoming .your-zone').hidden")
            .await,
        true
    );

    // The running log opens at its tail and follows it, until the reader scrolls up.
    page.goto(&d.url("/karajo/app/job/tick/log/1")).await;
    let at_bottom =
        "(p => p.scrollHeight - p.scrollTop - p.clientHeight < 2)(document.getElementById('log'))";
    page.wait(
        "line 80",
        "document.getElementById('log').textContent.includes('line 80\\n')",
    )
    .await;
    assert_eq!(
        page.eval("(p => p.scrollHeight > p.clientHeight + 100)(document.getElementById('log'))")
            .await,
        true,
        "the log is taller than its box"
    );
    page.wait("the log at its tail on load", at_bottom).await;
    let before = page.text("#run-duration").await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let after = page.text("#run-duration").await;
    assert!(after.ends_with(" so far"), "{after}");
    assert_ne!(before, after, "the elapsed time ticks");
    page.screenshot("12-log-following").await;
    std::fs::write(dir.base().join("var/lib/karajo/job/tick/go1"), "").unwrap();
    page.wait(
        "line 120",
        "document.getElementById('log').textContent.includes('line 120')",
    )
    .await;
    page.wait("the log still at its tail after an append", at_bottom)
        .await;
    // The reader scrolls up: new lines no longer move the log.
    page.eval("document.getElementById('log').scrollTop = 0")
        .await;
    page.wait(
        "following stopped",
        "document.getElementById('log').getAttribute('data-following') === 'false'",
    )
    .await;
    std::fs::write(dir.base().join("var/lib/karajo/job/tick/go2"), "").unwrap();
    page.wait(
        "the last line",
        "document.getElementById('log').textContent.includes('last line')",
    )
    .await;
    assert_eq!(
        page.eval("document.getElementById('log').scrollTop").await,
        0
    );
    page.wait(
        "the final status",
        "document.getElementById('run-status').textContent === 'success'",
    )
    .await;
    let done = page.text("#run-duration").await;
    assert!(!done.contains("so far"), "{done}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(page.text("#run-duration").await, done, "stopped ticking");

    // The wrong secret page carries the configured name.
    page.goto(&d.url("/karajo/app/job/fresh")).await;
    page.fill("#secret", "wrong").await;
    page.click("#btn-run").await;
    page.wait(
        "the error page",
        "document.querySelector('p.error') && location.pathname.endsWith('/control')",
    )
    .await;
    assert_eq!(page.eval("document.title").await, "Forbidden · Ops Runner");
    assert_eq!(page.text(".brand").await, "Ops Runner");
    assert_eq!(page.text("p.error").await, "Wrong secret.");
    assert!(
        !page
            .eval("document.title")
            .await
            .as_str()
            .unwrap()
            .contains("karajo")
    );
    page.screenshot("13-wrong-secret").await;
    drop(page);
    drop(browser);
    d.stop().await;
}
