//! Supervised services in the web UI: over plain HTTP, that the service page, its
//! log pages, its live stream, the dashboard and the event page never carry an `env`
//! value or the service's `secret`, that unknown services and logs are 404, and that
//! the controls need the global secret (no users) or a session and its CSRF token
//! (users); in headless Chromium, a running service as a card and a list row on the
//! dashboard, its page (status in words with its pid, its live log), and Disable and
//! Enable changing it live without leaving the page.
//!
//! Every test's service runs `sleep 104x` with its own number, and a [`Reaper`] kills
//! whatever still runs with that marker when the test ends, so that a failing test
//! leaves no process behind.

use karajo::scheduler::ServiceView;

use super::cdp::Browser;
use super::{PASSWORD, csrf_of, location, no_redirects};
use crate::helpers::*;

const ENV_VALUE: &str = "env-value-never-shown";
const SERVICE_SECRET: &str = "service-secret-never-shown";

/// A service `Web API` (id `web_api`) running `exec sleep <marker>`, with an `env`
/// value and a secret that no page may show, and a command job beside it; with a user
/// `admin` when `users`.
fn service_dir(marker: &str, users: bool) -> TestDir {
    let dir = TestDir::new(&format!(
        r#"
[job "hello"]
command = echo hello

[service "Web API"]
description = "Serves <b>the</b> API."
command = "echo started; exec {marker}"
restart_delay = 500ms
stop_timeout = 2s
env = DB_PASSWORD={ENV_VALUE}
secret = {SERVICE_SECRET}
"#
    ));
    if users {
        let hash = bcrypt::hash(PASSWORD, 4).expect("hash");
        dir.write(
            "etc/karajo/user.conf",
            &format!("[user \"admin\"]\npassword = {hash}\n"),
        );
    }
    dir
}

/// Kills, when dropped, every live process whose command line contains its marker:
/// a test that panics before stopping its daemon leaves no service behind.
struct Reaper(&'static str);

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in with_marker(self.0) {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

/// The pids of live processes whose command line contains `marker`.
fn with_marker(marker: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if is_alive(pid) && cmdline.contains(marker) {
            pids.push(pid);
        }
    }
    pids
}

/// Waits until no live process runs `marker`: a group that was signalled is gone a
/// moment after the service says it stopped, not at the same instant.
async fn wait_gone(marker: &str, what: &str) {
    wait_for(what, || async {
        with_marker(marker).is_empty().then_some(())
    })
    .await;
}

fn view(d: &TestDaemon, id: &str) -> std::sync::Arc<ServiceView> {
    let snapshot = d.daemon.as_ref().unwrap().scheduler().snapshot();
    snapshot.service(id).cloned().expect("the service")
}

/// Waits until the service is `status`; its pid then, if it has an instance.
async fn wait_status(d: &TestDaemon, id: &str, status: &str) -> Option<u32> {
    wait_for(&format!("service {id} {status}"), || async {
        let v = view(d, id);
        (v.state.status.as_str() == status).then(|| v.state.instance().map(|i| i.pid))
    })
    .await
}

async fn get(d: &TestDaemon, path: &str) -> (u16, String) {
    let res = no_redirects().get(d.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

/// The first event of a live stream.
async fn first_event(d: &TestDaemon, path: &str) -> String {
    let mut res = d.http.get(d.url(path)).send().await.unwrap();
    assert_eq!(res.status(), 200, "{path}");
    let mut text = String::new();
    tokio::time::timeout(TIMEOUT, async {
        while !text.contains("\n\n") {
            let chunk = res.chunk().await.unwrap().expect("stream goes on");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("an event");
    text
}

/// Posts the service's control form with `fields`; the answer's status and location.
async fn control(d: &TestDaemon, cookie: Option<&str>, fields: &[(&str, &str)]) -> (u16, String) {
    let mut req = no_redirects()
        .post(d.url("/karajo/app/service/web_api/control"))
        .form(fields);
    if let Some(cookie) = cookie {
        req = req.header("Cookie", cookie);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), location(&res))
}

#[tokio::test]
async fn service_pages_never_carry_env_values_or_the_secret_and_unknown_ids_are_404() {
    let _reaper = Reaper("sleep 1042");
    let dir = service_dir("sleep 1042", false);
    let d = TestDaemon::start(&dir).await;
    let pid = wait_status(&d, "web_api", "running").await.expect("a pid");

    let (status, page) = get(&d, "/karajo/app/service/web_api").await;
    assert_eq!(status, 200);
    assert!(page.contains("<h1>Web API</h1>"), "{page}");
    assert!(
        page.contains("id=\"service-status\">running</span> Running since "),
        "{page}"
    );
    assert!(page.contains(&format!("(pid {pid}), up ")), "{page}");
    assert!(
        page.contains(&format!("<dd id=\"service-pid\">{pid}</dd>")),
        "{page}"
    );
    // The command and the description as text; the environment by its names only.
    assert!(
        page.contains(
            "<code id=\"command\" class=\"command\">echo started; exec sleep 1042</code>"
        ),
        "{page}"
    );
    assert!(
        page.contains("Serves &#60;b&#62;the&#60;/b&#62; API."),
        "{page}"
    );
    assert!(page.contains("DB_PASSWORD (values not shown)"), "{page}");
    assert!(
        page.contains("a service secret is set (not shown)"),
        "{page}"
    );
    assert!(page.contains("on-failure"), "{page}");
    assert!(page.contains("SIGTERM, then SIGKILL after 2s"), "{page}");
    assert!(
        page.contains("data-events=\"/karajo/events?job=service/web_api\""),
        "{page}"
    );
    assert!(page.contains("id=\"secret\""), "no users: the secret field");
    // The running segment, linked to its live log page.
    assert!(
        page.contains("href=\"/karajo/app/service/web_api/log/1\" id=\"live-log\""),
        "{page}"
    );
    let (status, log) = get(&d, "/karajo/app/service/web_api/log/1").await;
    assert_eq!(status, 200);
    assert!(
        log.contains("id=\"run-status\" role=\"status\">running<"),
        "{log}"
    );
    assert!(log.contains("=== START instance "), "{log}");
    assert!(
        log.contains("data-follow=\"/karajo/app/service/web_api/log/1/events?offset="),
        "{log}"
    );
    let (status, raw) = get(&d, "/karajo/app/service/web_api/log/1/raw").await;
    assert_eq!(status, 200);
    assert!(raw.contains("started"), "{raw}");

    // Disable with the global secret: back to the page with a notice; then disabled,
    // its ending in the history and its segment canceled.
    let (status, to) = control(&d, None, &[("action", "disable"), ("secret", SECRET)]).await;
    assert_eq!(status, 303);
    assert_eq!(to, "/karajo/app/service/web_api?notice=service-disabled");
    wait_status(&d, "web_api", "disabled").await;
    let (_, page) = get(&d, &to).await;
    assert!(page.contains("Disable requested"), "{page}");
    assert!(
        page.contains("id=\"service-status\">disabled</span> Disabled"),
        "{page}"
    );
    assert!(
        page.contains("<td class=\"reason\" data-reason=\"stopped\">stopped on request</td>"),
        "{page}"
    );
    assert!(
        page.contains(&format!("<td class=\"pid\">{pid}</td>")),
        "{page}"
    );
    assert!(page.contains("signal TERM"), "the exit: {page}");
    // A signal with no instance: said, not an error.
    let (status, to) = control(
        &d,
        None,
        &[("action", "signal"), ("signal", "HUP"), ("secret", SECRET)],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(to, "/karajo/app/service/web_api?notice=service-not-running");
    let (status, to) = control(&d, None, &[("action", "enable"), ("secret", SECRET)]).await;
    assert_eq!(
        (status, to.as_str()),
        (303, "/karajo/app/service/web_api?notice=service-enabled")
    );
    let again = wait_status(&d, "web_api", "running").await.expect("a pid");
    assert_ne!(again, pid);

    // Everything that shows the service: none with an env value or the secret.
    let (_, page) = get(&d, "/karajo/app/service/web_api").await;
    let (_, log) = get(&d, "/karajo/app/service/web_api/log/1").await;
    let (_, cards) = get(&d, "/karajo/app/?view=cards").await;
    let (_, list) = get(&d, "/karajo/app/?view=list").await;
    let (_, events) = get(&d, "/karajo/app/events").await;
    let live = first_event(&d, "/karajo/events?job=service/web_api").await;
    let dash_cards = first_event(&d, "/karajo/events?view=cards").await;
    assert!(live.contains("event: update"), "{live}");
    assert!(live.contains("id=\"history\""), "the history, live: {live}");
    assert!(cards.contains("<h2 id=\"h-services\">Services"), "{cards}");
    assert!(cards.contains("data-key=\"service/web_api\""), "{cards}");
    assert!(list.contains("<td class=\"kind\">service</td>"), "{list}");
    assert!(
        events.contains("href=\"/karajo/app/service/web_api\""),
        "service events link to the page: {events}"
    );
    for (what, text) in [
        ("service page", &page),
        ("log page", &log),
        ("raw log", &raw),
        ("cards", &cards),
        ("list", &list),
        ("event page", &events),
        ("live stream", &live),
        ("dashboard stream", &dash_cards),
    ] {
        assert!(
            !text.contains(ENV_VALUE),
            "the env value in the {what}: {text}"
        );
        assert!(
            !text.contains(SERVICE_SECRET),
            "the secret in the {what}: {text}"
        );
    }

    // Unknown services and logs: 404.
    for path in [
        "/karajo/app/service/nothing",
        "/karajo/app/service/nothing/log/1",
        "/karajo/app/service/web_api/log/99",
        "/karajo/app/service/nothing/log/1/raw",
        "/karajo/app/service/nothing/log/1/events",
        "/karajo/events?job=service/nothing",
    ] {
        let (status, body) = get(&d, path).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let res = no_redirects()
        .post(d.url("/karajo/app/service/nothing/control"))
        .form(&[("action", "disable"), ("secret", SECRET)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // Actions a service does not have, an unknown signal, a wrong or missing secret,
    // and the service's own secret (it signs API requests; the UI takes the global
    // one): refused, and it still runs.
    for (fields, want) in [
        (vec![("action", "run"), ("secret", SECRET)], 400),
        (
            vec![("action", "signal"), ("signal", "FOO"), ("secret", SECRET)],
            400,
        ),
        (vec![("action", "disable"), ("secret", "wrong")], 403),
        (vec![("action", "disable"), ("secret", SERVICE_SECRET)], 403),
        (vec![("action", "disable")], 403),
    ] {
        let (status, _) = control(&d, None, &fields).await;
        assert_eq!(status, want, "{fields:?}");
    }
    assert_eq!(view(&d, "web_api").state.status.as_str(), "running");
    d.stop().await;
    wait_gone("sleep 1042", "stopped with karajo").await;
}

#[tokio::test]
async fn with_users_service_pages_need_a_session_and_controls_its_csrf_token() {
    let _reaper = Reaper("sleep 1043");
    let dir = service_dir("sleep 1043", true);
    let d = TestDaemon::start(&dir).await;
    wait_status(&d, "web_api", "running").await;
    for path in [
        "/karajo/app/service/web_api",
        "/karajo/app/service/web_api/log/1",
    ] {
        let (status, _) = get(&d, path).await;
        assert_eq!(status, 303, "{path}");
    }
    for path in [
        "/karajo/events?job=service/web_api",
        "/karajo/app/service/web_api/log/1/raw",
        "/karajo/app/service/web_api/log/1/events",
    ] {
        let (status, _) = get(&d, path).await;
        assert_eq!(status, 401, "{path}");
    }
    // No session: refused, whatever secret comes with it.
    let (status, _) = control(&d, None, &[("action", "disable"), ("secret", SECRET)]).await;
    assert_eq!(status, 403);
    // A logged-in user gets the page, with the CSRF token and no secret field.
    let cookie = super::api_login(&d, &no_redirects()).await;
    let res = no_redirects()
        .get(d.url("/karajo/app/service/web_api"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("id=\"btn-disable\""), "{page}");
    assert!(!page.contains("id=\"secret\""), "{page}");
    assert!(!page.contains(ENV_VALUE) && !page.contains(SERVICE_SECRET));
    let csrf = csrf_of(&page);
    // Without the token, or with another: refused, and it still runs.
    for fields in [
        vec![("action", "disable")],
        vec![("action", "disable"), ("csrf", "x")],
        vec![("action", "disable"), ("secret", SECRET)],
    ] {
        let (status, _) = control(&d, Some(&cookie), &fields).await;
        assert_eq!(status, 403, "{fields:?}");
    }
    assert_eq!(view(&d, "web_api").state.status.as_str(), "running");
    // With it: done.
    let (status, to) = control(&d, Some(&cookie), &[("action", "restart"), ("csrf", &csrf)]).await;
    assert_eq!(
        (status, to.as_str()),
        (303, "/karajo/app/service/web_api?notice=service-restarted")
    );
    let (status, _) = control(&d, Some(&cookie), &[("action", "disable"), ("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    wait_status(&d, "web_api", "disabled").await;
    // The user is named in the service's log.
    let res = no_redirects()
        .get(d.url("/karajo/app/events?service=web_api"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    let events = res.text().await.unwrap();
    assert!(
        events.contains("disable by web UI, user admin from 127.0.0.1"),
        "{events}"
    );
    d.stop().await;
    wait_gone("sleep 1043", "stopped with karajo").await;
}

// ---------------------------------------------------------------------------
// In a real browser.

#[tokio::test]
async fn browser_a_running_service_on_the_dashboard_its_page_and_disable_enable_live() {
    let _reaper = Reaper("sleep 1041");
    let dir = service_dir("sleep 1041", true);
    let d = TestDaemon::start(&dir).await;
    let pid = wait_status(&d, "web_api", "running").await.expect("a pid");
    let browser = Browser::launch().await;
    let page = browser.page().await;
    page.timezone("Asia/Jakarta").await;
    page.goto(&d.url("/karajo/login")).await;
    page.fill("#name", "admin").await;
    page.fill("#password", PASSWORD).await;
    page.eval("document.querySelector('form.stack').requestSubmit()")
        .await;
    page.wait("the dashboard", "location.pathname === '/karajo/app/'")
        .await;

    // Cards: services have their own section; the card shows the pid and the uptime.
    page.eval("localStorage.removeItem('karajo.dashboard.view')")
        .await;
    page.goto(&d.url("/karajo/app/?view=cards")).await;
    let card = "li[data-key=\"service/web_api\"]";
    page.wait(
        "the service's card",
        &format!("document.querySelector('{card} .badge')"),
    )
    .await;
    assert!(page.text("#h-services").await.starts_with("Services"));
    assert_eq!(page.text(&format!("{card} .badge")).await, "running");
    assert_eq!(page.text(&format!("{card} .pid")).await, pid.to_string());
    let labels = page
        .eval(&format!(
            "[...document.querySelectorAll('{card} dt')].map(e => e.textContent).join('|')"
        ))
        .await;
    assert_eq!(labels, "PID|Up|Last exit");
    assert_eq!(
        page.eval(&format!(
            "document.querySelector('{card} a.job-name').getAttribute('href')"
        ))
        .await,
        "/karajo/app/service/web_api"
    );
    assert_eq!(
        page.eval(&format!(
            "getComputedStyle(document.querySelector('{card} .badge')).color"
        ))
        .await,
        "rgb(0, 131, 143)",
        "running is teal, and says so in words"
    );
    // Counted and filtered with the rest.
    let counts = page.text(".counts").await;
    assert!(counts.contains("1 running"), "{counts}");
    page.click("button[data-filter='running']").await;
    page.wait(
        "only the service",
        &format!(
            "!document.querySelector('{card}').hidden && document.querySelector('li[data-key=\"job/hello\"]').hidden"
        ),
    )
    .await;
    page.click("button[data-filter='all']").await;
    page.screenshot("30-dashboard-service-card").await;

    // The list: kind, status words, uptime; searchable.
    page.click("button[data-show='list']").await;
    let row = "tr[data-key=\"service/web_api\"]";
    page.wait(
        "the service's row",
        &format!("document.querySelector('{row}')"),
    )
    .await;
    let html = page
        .eval(&format!("document.querySelector('{row}').outerHTML"))
        .await;
    let status = view(&d, "web_api").state.status.as_str();
    assert_eq!(
        page.text(&format!("{row} .kind")).await,
        "service",
        "{html}"
    );
    assert_eq!(
        page.text(&format!("{row} .badge")).await,
        "running",
        "{status}: {html}"
    );
    let up = page.text(&format!("{row} .duration")).await;
    assert!(up.starts_with("up "), "{up}");
    page.type_text("#dash-search", "web api").await;
    page.wait(
        "the search",
        &format!(
            "!document.querySelector('{row}').hidden && document.querySelector('tr[data-key=\"job/hello\"]').hidden"
        ),
    )
    .await;
    page.screenshot("31-dashboard-service-list").await;

    // The service's page: running with its pid, in words.
    page.click(&format!("{row} a.name")).await;
    page.wait(
        "the service page",
        "location.pathname === '/karajo/app/service/web_api' && document.getElementById('service-status')",
    )
    .await;
    page.wait_loaded().await;
    assert_eq!(page.text("#service-status").await, "running");
    assert_eq!(page.text("#service-pid").await, pid.to_string());
    let words = page.text("#status-words").await;
    assert!(
        words.starts_with("running Running since ")
            && words.contains(&format!("(pid {pid}), up "))
            && words.contains("restarted if it fails"),
        "{words}"
    );
    assert!(words.contains("GMT+7"), "localised: {words}");
    // What the instance's processes use (issue 13 item 8): one `sleep`.
    let memory = page.text("#usage-memory").await;
    assert!(memory.ends_with("resident in 1 process"), "{memory}");
    let share = page.text("#usage-cpu-percent").await;
    assert!(share.ends_with(" %"), "{share}");
    assert_eq!(
        page.eval("document.querySelectorAll('#secret').length")
            .await,
        0
    );
    let html = page.eval("document.documentElement.outerHTML").await;
    let html = html.as_str().unwrap();
    assert!(!html.contains(ENV_VALUE) && !html.contains(SERVICE_SECRET));
    page.screenshot("32-service-page-running").await;

    // Disable: the page stays, and its live part turns disabled.
    page.eval("window.__stay = 1").await;
    page.click("#btn-disable").await;
    page.wait(
        "disabled, live",
        "document.getElementById('service-status').textContent === 'disabled'",
    )
    .await;
    page.wait(
        "the notice",
        "document.getElementById('notice').textContent.startsWith('Disable requested')",
    )
    .await;
    assert_eq!(view(&d, "web_api").state.status.as_str(), "disabled");
    wait_gone("sleep 1041", "the instance is gone").await;
    page.wait(
        "the ending in the history",
        "document.querySelector('#history .reason') && document.querySelector('#history .reason').dataset.reason === 'stopped'",
    )
    .await;
    page.wait(
        "the segment canceled",
        "document.querySelector('#segments tbody tr .badge').textContent === 'canceled'",
    )
    .await;
    assert_eq!(page.text("#service-pid").await, "— (no instance)");
    assert_eq!(page.eval("window.__stay").await, 1, "no reload");
    page.screenshot("33-service-page-disabled").await;

    // Enable: running again, with a new pid, still without a reload.
    page.click("#btn-enable").await;
    page.wait(
        "running again, live",
        "document.getElementById('service-status').textContent === 'running'",
    )
    .await;
    let again = view(&d, "web_api")
        .state
        .instance()
        .expect("an instance")
        .pid;
    assert_ne!(again, pid);
    page.wait(
        "the new pid",
        &format!("document.getElementById('service-pid').textContent === '{again}'"),
    )
    .await;
    assert_eq!(page.eval("window.__stay").await, 1, "no reload");

    // The running segment's log page follows the log live.
    page.click("#live-log").await;
    page.wait(
        "the log page",
        "location.pathname === '/karajo/app/service/web_api/log/2' && document.getElementById('log')",
    )
    .await;
    page.wait(
        "the log",
        "document.getElementById('log').textContent.includes('=== START instance')",
    )
    .await;
    assert_eq!(page.text("#run-status").await, "running");
    assert!(page.text(".crumbs").await.contains("Web API"));
    page.screenshot("34-service-log").await;
    drop(page);
    drop(browser);
    d.stop().await;
    wait_gone("sleep 1041", "stopped with karajo").await;
}
