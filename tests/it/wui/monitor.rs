//! Heartbeat monitors and the event log in the web UI: over plain HTTP, that the
//! monitor page, its check-in log pages, its live stream, the dashboard and the event
//! log's page never carry a monitor's token, that unknown monitors and logs are 404,
//! and that the event page filters and pages; in headless Chromium, monitors as cards
//! and list rows on the dashboard, the monitor page (status in words, ping URL, recent
//! check-ins, a live status change after a ping, pause and resume when logged in),
//! a check-in's log page, and the event log's filter form.

use super::cdp::Browser;
use super::{PASSWORD, csrf_of, no_redirects};
use crate::helpers::*;

const TOKEN: &str = "a-token-of-24-characters";

const MONITORS: &str = r#"
[job "hello"]
command = echo hello

[monitor "Backup DB"]
description = "Nightly <b>dump</b> of the databases."
path = /backup
period = 1h
grace = 5m
max_runtime = 2h
token = a-token-of-24-characters

[monitor "Nightly report"]
schedule = daily@03:00
timezone = Europe/Berlin
auth_kind = none
"#;

/// `MONITORS`, with a user `admin` when `users`.
fn monitors_dir(users: bool) -> TestDir {
    let dir = TestDir::new(MONITORS);
    if users {
        let hash = bcrypt::hash(PASSWORD, 4).expect("hash");
        dir.write(
            "etc/karajo/user.conf",
            &format!("[user \"admin\"]\npassword = {hash}\n"),
        );
    }
    dir
}

/// Pings monitor path `rest` (`backup`, `backup/start?rid=7`) with the token; the
/// answer's status.
async fn ping(d: &TestDaemon, rest: &str) -> u16 {
    let sep = if rest.contains('?') { '&' } else { '?' };
    d.http
        .post(d.url(&format!(
            "/karajo/api/monitor/ping/{rest}{sep}token={TOKEN}"
        )))
        .body("pinged from the test\n")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Posts an event for the monitor `backup_db` with its token.
async fn post_event(d: &TestDaemon, level: &str, message: &str) {
    let body = serde_json::json!({"service": "backup_db", "level": level, "message": message});
    let res = d
        .http
        .post(d.url("/karajo/api/event"))
        .header("X-Karajo-Token", TOKEN)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// A monitor's status from the scheduler.
fn monitor_status(d: &TestDaemon, id: &str) -> &'static str {
    let snapshot = d.daemon.as_ref().unwrap().scheduler().snapshot();
    snapshot.monitor(id).expect("monitor").state.status.as_str()
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

#[tokio::test]
async fn monitor_and_event_pages_never_carry_the_token_and_unknown_ids_are_404() {
    let dir = monitors_dir(false);
    let d = TestDaemon::start(&dir).await;
    assert_eq!(ping(&d, "backup").await, 200);
    assert_eq!(ping(&d, "backup/start?rid=7").await, 200);
    // The open run's log page follows the log, like a running job's.
    let (status, running) = get(&d, "/karajo/app/monitor/backup_db/log/2").await;
    assert_eq!(status, 200);
    assert!(
        running.contains("id=\"run-status\" role=\"status\">running<"),
        "{running}"
    );
    let at = running.find("data-follow=\"").expect("followed") + 13;
    let follow = running[at..]
        .split('"')
        .next()
        .unwrap()
        .replace("&#38;", "&");
    assert!(
        follow.starts_with("/karajo/app/monitor/backup_db/log/2/events?offset="),
        "{follow}"
    );
    let mut tail = d.http.get(d.url(&follow)).send().await.unwrap();
    assert_eq!(tail.status(), 200);
    assert_eq!(ping(&d, "backup/3").await, 200);
    let mut text = String::new();
    tokio::time::timeout(TIMEOUT, async {
        while !text.contains("event: end") {
            let chunk = tail.chunk().await.unwrap().expect("the tail goes on");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("the end of the run");
    assert!(text.contains("=== EXIT 3 via POST"), "{text}");
    assert!(text.contains("\"status\":\"failed\""), "{text}");
    post_event(&d, "warning", "disk 91% full").await;

    let (status, page) = get(&d, "/karajo/app/monitor/backup_db").await;
    assert_eq!(status, 200);
    assert!(page.contains("<h1>Backup DB</h1>"), "{page}");
    // The ping URL from the request's host, with a placeholder for the token.
    let url = format!(
        "<code id=\"ping-url\">{}/karajo/api/monitor/ping/backup?token=…</code>",
        d.base_url
    );
    assert!(page.contains(&url), "{url} in {page}");
    // The status in words, the description as text, the recent check-ins.
    assert!(
        page.contains(": a check-in reported failure (exit status 3)."),
        "{page}"
    );
    assert!(
        page.contains("Nightly &#60;b&#62;dump&#60;/b&#62;"),
        "{page}"
    );
    assert!(page.contains("a check-in at least every 1 h"), "{page}");
    for n in 1..=2 {
        assert!(
            page.contains(&format!("href=\"/karajo/app/monitor/backup_db/log/{n}\"")),
            "check-in {n} in {page}"
        );
    }
    // The scheduled monitor's page: its zone and next slots.
    let (status, nightly) = get(&d, "/karajo/app/monitor/nightly_report").await;
    assert_eq!(status, 200);
    assert!(nightly.contains("daily@03:00"), "{nightly}");
    assert!(nightly.contains("Europe/Berlin"), "{nightly}");
    assert!(
        !nightly.contains("?token="),
        "auth_kind none: no token placeholder"
    );

    // Everything that shows the monitor, none with its token.
    let (status, log) = get(&d, "/karajo/app/monitor/backup_db/log/2").await;
    assert_eq!(status, 200);
    assert!(log.contains("=== EXIT 3 via POST"), "{log}");
    assert!(log.contains("<pre id=\"log\""), "an HTML log page: {log}");
    let (status, raw) = get(&d, "/karajo/app/monitor/backup_db/log/2/raw").await;
    assert_eq!(status, 200);
    let (status, events) = get(&d, "/karajo/app/events").await;
    assert_eq!(status, 200);
    assert!(events.contains("down: "), "the transition event: {events}");
    assert!(events.contains("disk 91% full"), "{events}");
    let (_, cards) = get(&d, "/karajo/app/?view=cards").await;
    let (_, list) = get(&d, "/karajo/app/?view=list").await;
    let live = first_event(&d, "/karajo/events?job=monitor/backup_db").await;
    assert!(live.contains("event: update"), "{live}");
    assert!(live.contains("exit status 3"), "{live}");
    for (what, text) in [
        ("monitor page", &page),
        ("log page", &log),
        ("running log page", &running),
        ("log tail", &text),
        ("raw log", &raw),
        ("cards", &cards),
        ("list", &list),
        ("live stream", &live),
        ("event page", &events),
    ] {
        assert!(!text.contains(TOKEN), "the token in the {what}: {text}");
    }

    // Unknown monitors and logs: 404.
    for path in [
        "/karajo/app/monitor/nothing",
        "/karajo/app/monitor/nothing/log/1",
        "/karajo/app/monitor/backup_db/log/99",
        "/karajo/app/monitor/nothing/log/1/raw",
        "/karajo/events?job=monitor/nothing",
    ] {
        let (status, body) = get(&d, path).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let res = no_redirects()
        .post(d.url("/karajo/app/monitor/nothing/control"))
        .form(&[("action", "pause"), ("secret", SECRET)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // Actions a monitor does not have.
    let res = no_redirects()
        .post(d.url("/karajo/app/monitor/backup_db/control"))
        .form(&[("action", "run"), ("secret", SECRET)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    d.stop().await;
}

#[tokio::test]
async fn the_event_page_filters_and_pages_back() {
    let dir = monitors_dir(false);
    let d = TestDaemon::start(&dir).await;
    for n in 1..=3 {
        post_event(&d, "info", &format!("note {n}")).await;
    }
    post_event(&d, "error", "disk full").await;

    // Filters: level at least error; a message part, any case.
    let (status, page) = get(&d, "/karajo/app/events?service=backup_db&level=error").await;
    assert_eq!(status, 200);
    assert!(page.contains("disk full"), "{page}");
    assert!(!page.contains("note 1"), "{page}");
    assert!(page.contains("<option value=\"error\" selected>"), "{page}");
    let (_, page) = get(&d, "/karajo/app/events?message=NOTE").await;
    assert_eq!(page.matches("<tr data-id=").count(), 3, "{page}");
    let (_, page) = get(&d, "/karajo/app/events?service=someone_else").await;
    assert!(page.contains("No events match the filters."), "{page}");

    // Pages of two, newest first; the older page's link keeps the filters.
    let (_, first) = get(&d, "/karajo/app/events?message=note&limit=2").await;
    assert!(
        first.contains("note 3") && first.contains("note 2"),
        "{first}"
    );
    assert!(!first.contains("note 1"), "{first}");
    let at = first.find("id=\"older\"").expect("an older page") - 2;
    let start = first[..at].rfind("href=\"").unwrap() + 6;
    let older = first[start..at].replace("&#38;", "&");
    assert!(
        older.starts_with("/karajo/app/events?message=note&limit=2&before="),
        "{older}"
    );
    let (_, second) = get(&d, &older).await;
    assert!(second.contains("note 1"), "{second}");
    assert!(!second.contains("note 2"), "{second}");
    assert!(!second.contains("id=\"older\""), "the last page: {second}");
    assert!(second.contains("id=\"newest\""), "{second}");

    // A filter that is not a time: 400, said on the page.
    let (status, page) = get(&d, "/karajo/app/events?from=yesterday").await;
    assert_eq!(status, 400);
    assert!(page.contains("id=\"filter-error\""), "{page}");
    assert!(page.contains("from"), "{page}");
    d.stop().await;
}

#[tokio::test]
async fn with_users_monitor_and_event_pages_need_a_session() {
    let dir = monitors_dir(true);
    let d = TestDaemon::start(&dir).await;
    for path in [
        "/karajo/app/monitor/backup_db",
        "/karajo/app/monitor/backup_db/log/1",
        "/karajo/app/events",
    ] {
        let res = no_redirects().get(d.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 303, "{path}");
    }
    let res = no_redirects()
        .get(d.url("/karajo/events?job=monitor/backup_db"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // A logged-in user gets the page, with the CSRF token for pause and resume.
    let cookie = super::api_login(&d, &no_redirects()).await;
    let res = no_redirects()
        .get(d.url("/karajo/app/monitor/backup_db"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("id=\"btn-pause\""), "{page}");
    assert!(!page.contains("id=\"secret\""), "{page}");
    let csrf = csrf_of(&page);
    let res = no_redirects()
        .post(d.url("/karajo/app/monitor/backup_db/control"))
        .header("Cookie", &cookie)
        .form(&[("action", "pause"), ("until", "resume"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        super::location(&res),
        "/karajo/app/monitor/backup_db?notice=monitor-paused"
    );
    assert_eq!(monitor_status(&d, "backup_db"), "paused");
    // Without the CSRF token: refused.
    let res = no_redirects()
        .post(d.url("/karajo/app/monitor/backup_db/control"))
        .header("Cookie", &cookie)
        .form(&[("action", "resume")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(monitor_status(&d, "backup_db"), "paused");
    d.stop().await;
}

// ---------------------------------------------------------------------------
// In a real browser.

#[tokio::test]
async fn browser_monitors_on_the_dashboard_their_page_live_and_their_controls() {
    let dir = monitors_dir(true);
    let d = TestDaemon::start(&dir).await;
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

    // Cards: the monitors have their own section, cards with their words and links.
    page.eval("localStorage.removeItem('karajo.dashboard.view')")
        .await;
    page.goto(&d.url("/karajo/app/?view=cards")).await;
    let card = "[data-key=\"monitor/backup_db\"]";
    page.wait(
        "the monitor's card",
        &format!("document.querySelector('li.job{card}')"),
    )
    .await;
    assert!(
        page.text("#h-monitors")
            .await
            .starts_with("Heartbeat monitors")
    );
    assert_eq!(page.text(&format!("{card} .badge")).await, "new");
    assert_eq!(
        page.eval(&format!(
            "document.querySelector('{card} a.job-name').getAttribute('href')"
        ))
        .await,
        "/karajo/app/monitor/backup_db"
    );
    let labels = page
        .eval(&format!(
            "[...document.querySelectorAll('{card} dt')].map(e => e.textContent).join('|')"
        ))
        .await;
    assert_eq!(labels, "Last check-in|Next due");
    assert_eq!(
        page.text(&format!("{card} .next-run")).await,
        "after the first check-in"
    );
    // Live on the dashboard too: a ping turns the card up.
    page.eval("window.__stay = 1").await;
    assert_eq!(ping(&d, "backup").await, 200);
    page.wait(
        "the card up",
        &format!(
            "document.querySelector('{card} .badge').textContent === 'up' && document.querySelector('{card}').classList.contains('st-up')"
        ),
    )
    .await;
    page.screenshot("20-dashboard-monitor-cards").await;

    // The list: the monitor's row links to its page and its last check-in's log.
    page.click("button[data-show='list']").await;
    let row = "tr[data-key=\"monitor/backup_db\"]";
    page.wait(
        "the monitor's row",
        &format!("document.querySelector('{row}')"),
    )
    .await;
    assert_eq!(page.text(&format!("{row} .kind")).await, "monitor");
    assert_eq!(page.text(&format!("{row} .badge")).await, "up");
    assert_eq!(
        page.eval(&format!(
            "document.querySelector('{row} a.name').getAttribute('href')"
        ))
        .await,
        "/karajo/app/monitor/backup_db"
    );
    assert_eq!(
        page.eval(&format!(
            "document.querySelector('{row} .last-run a').getAttribute('href')"
        ))
        .await,
        "/karajo/app/monitor/backup_db/log/1"
    );
    assert_eq!(page.eval("window.__stay").await, 1, "no reload");
    page.screenshot("21-dashboard-monitor-list").await;

    // The monitor's page: the status in words, the ping URL without the token.
    page.click(&format!("{row} a.name")).await;
    page.wait(
        "the monitor page",
        "location.pathname === '/karajo/app/monitor/backup_db' && document.getElementById('monitor-status')",
    )
    .await;
    page.wait_loaded().await;
    assert_eq!(page.text("#monitor-status").await, "up");
    let words = page.text("#status-words").await;
    assert!(
        words.starts_with("up Up since ") && words.ends_with(": checked in on time."),
        "{words}"
    );
    assert!(words.contains("GMT+7"), "localised: {words}");
    let url = page.text("#ping-url").await;
    assert_eq!(
        url,
        format!("{}/karajo/api/monitor/ping/backup?token=…", d.base_url)
    );
    let html = page.eval("document.documentElement.outerHTML").await;
    assert!(
        !html.as_str().unwrap().contains(TOKEN),
        "no token in the page"
    );
    assert_eq!(page.text("#grace").await, "5 min");
    assert_eq!(page.text("#max-runtime").await, "2 h");
    assert_eq!(
        page.eval("document.querySelectorAll('#checkins tbody tr').length")
            .await,
        1
    );
    assert!(page.text("#next-due").await.contains("GMT+7"));
    page.screenshot("22-monitor-page-up").await;

    // Live: a run starts and fails elsewhere; the page follows without a reload.
    page.eval("window.__stay = 2").await;
    assert_eq!(ping(&d, "backup/start?rid=42").await, 200);
    page.wait(
        "the open run",
        "document.querySelector('#open-runs code') && document.querySelector('#open-runs code').textContent === '42'",
    )
    .await;
    assert_eq!(page.text("#next-due").await, "when the open run ends");
    assert_eq!(ping(&d, "backup/3?rid=42").await, 200);
    page.wait(
        "down, live",
        "document.getElementById('monitor-status').textContent === 'down'",
    )
    .await;
    let words = page.text("#status-words").await;
    assert!(
        words.starts_with("down Down since ")
            && words.ends_with(": a check-in reported failure (exit status 3)."),
        "{words}"
    );
    assert_eq!(
        page.eval("getComputedStyle(document.getElementById('monitor-status')).color")
            .await,
        "rgb(198, 40, 40)",
        "down is red, and says so in words"
    );
    assert!(page.text("#last-ping").await.contains("exit status 3"));
    assert_eq!(
        page.eval("document.querySelectorAll('#checkins tbody tr').length")
            .await,
        2
    );
    assert_eq!(
        page.eval("document.querySelector('#checkins tbody tr .badge').textContent")
            .await,
        "failed"
    );
    assert_eq!(page.eval("window.__stay").await, 2, "no reload");
    page.screenshot("23-monitor-page-down").await;

    // The check-in's log page.
    page.click("#checkins tbody tr a").await;
    page.wait(
        "the log page",
        "location.pathname === '/karajo/app/monitor/backup_db/log/2'",
    )
    .await;
    page.wait(
        "the log",
        "document.getElementById('log') && document.getElementById('log').textContent.includes('=== EXIT 3 rid=42')",
    )
    .await;
    assert_eq!(page.text("#run-status").await, "failed");
    assert!(page.text("#log").await.contains("pinged from the test"));
    assert!(page.text(".crumbs").await.contains("Backup DB"));
    page.screenshot("24-monitor-log").await;

    // Pause until resumed, then resume.
    page.goto(&d.url("/karajo/app/monitor/backup_db")).await;
    page.wait("the controls", "document.getElementById('btn-pause')")
        .await;
    assert_eq!(
        page.eval("document.querySelectorAll('#secret').length")
            .await,
        0,
        "a session needs no secret"
    );
    page.eval("document.getElementById('until').value = 'resume'")
        .await;
    page.click("#btn-pause").await;
    page.wait(
        "paused",
        "location.search === '?notice=monitor-paused' && document.getElementById('monitor-status') && document.getElementById('monitor-status').textContent === 'paused'",
    )
    .await;
    assert!(
        page.text("#status-words")
            .await
            .ends_with(": pings are ignored until someone resumes it.")
    );
    assert_eq!(monitor_status(&d, "backup_db"), "paused");
    page.screenshot("25-monitor-paused").await;
    page.click("#btn-resume").await;
    page.wait(
        "resumed",
        "location.search === '?notice=resumed' && document.getElementById('monitor-status').textContent !== 'paused'",
    )
    .await;
    assert_ne!(monitor_status(&d, "backup_db"), "paused");
    drop(page);
    drop(browser);
    d.stop().await;
}

#[tokio::test]
async fn browser_the_event_log_page_filters() {
    let dir = monitors_dir(false);
    let d = TestDaemon::start(&dir).await;
    post_event(&d, "info", "backup started").await;
    post_event(&d, "error", "disk <b>full</b>").await;
    assert_eq!(ping(&d, "backup/fail").await, 200);
    let browser = Browser::launch().await;
    let page = browser.page().await;
    page.goto(&d.url("/karajo/app/")).await;
    page.wait("the dashboard", "document.getElementById('nav-events')")
        .await;
    page.click("#nav-events").await;
    page.wait(
        "the event page",
        "location.pathname === '/karajo/app/events' && document.getElementById('events')",
    )
    .await;
    let rows = "document.querySelectorAll('#events tbody tr').length";
    let all = page.eval(rows).await.as_i64().unwrap();
    assert!(all >= 3, "posted events and the down transition: {all}");
    // Newest first: the transition to down came last.
    let first = page.text("#events tbody tr .message").await;
    assert!(first.starts_with("down"), "{first}");
    assert_eq!(
        page.eval("document.querySelector('#events .service a').getAttribute('href')")
            .await,
        "/karajo/app/monitor/backup_db"
    );
    // The message is text.
    assert_eq!(
        page.eval("document.querySelectorAll('#events .message b').length")
            .await,
        0
    );
    page.screenshot("26-events").await;

    // Level at least error, for the service backup_db.
    page.fill("#f-service", "backup_db").await;
    page.eval("document.getElementById('f-level').value = 'error'")
        .await;
    page.click("#f-apply").await;
    page.wait(
        "the filtered page",
        "location.search.includes('level=error') && document.getElementById('f-level').value === 'error'",
    )
    .await;
    let levels = page
        .eval("[...document.querySelectorAll('#events .level')].map(e => e.textContent)")
        .await;
    let levels = levels.as_array().unwrap();
    assert!(!levels.is_empty());
    assert!(levels.iter().all(|l| l == "error"), "{levels:?}");
    let messages = page
        .eval(
            "[...document.querySelectorAll('#events .message')].map(e => e.textContent).join('|')",
        )
        .await;
    assert!(
        messages.as_str().unwrap().contains("disk <b>full</b>"),
        "{messages}"
    );
    assert!(
        !messages.as_str().unwrap().contains("backup started"),
        "{messages}"
    );
    assert_eq!(
        page.eval("document.getElementById('f-service').value")
            .await,
        "backup_db"
    );
    page.screenshot("27-events-filtered").await;
    page.click("#f-clear").await;
    page.wait(
        "the filters cleared",
        "location.search === '' && document.getElementById('events')",
    )
    .await;
    assert_eq!(page.eval(rows).await.as_i64().unwrap(), all);
    drop(page);
    drop(browser);
    d.stop().await;
}
