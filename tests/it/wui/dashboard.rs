//! The dashboard with many jobs: 1,000 jobs with five finished runs each, a few dozen of
//! them on a schedule. Prints how long the page takes to render and how big the live
//! stream's updates are (times are printed, never asserted: the machines are shared).

use std::time::{Duration, Instant};

use karajo::job::{JobId, JobKey, JobKind, Trigger};

use super::cdp::Browser;
use crate::helpers::*;

/// Jobs in the big dashboard.
const MANY: usize = 1000;

/// `MANY` command jobs `j0000`…, every 25th on a schedule, with `logs` finished runs
/// each (the last one of every 10th failed).
fn many_jobs(logs: usize) -> TestDir {
    let mut conf = String::new();
    for i in 0..MANY {
        conf.push_str(&format!("[job \"j{i:04}\"]\ncommand = true\n"));
        if i % 25 == 0 {
            conf.push_str("schedule = daily@03:00\n");
        }
        conf.push('\n');
    }
    let dir = TestDir::new(&conf);
    for i in 0..MANY {
        let id = format!("j{i:04}");
        let log_dir = dir.log_dir(&id);
        std::fs::create_dir_all(&log_dir).unwrap();
        for n in 1..=logs {
            let status = if i % 10 == 0 && n == logs {
                "failed"
            } else {
                "success"
            };
            let end = (i + n) % 50;
            let text = format!(
                "2026-01-01 00:00:00 UTC job: {id}: === BEGIN\n2026-01-01 00:00:00 UTC job: {id}: trigger: timer\n2026-01-01 00:00:00 UTC job: {id}: --- Execute  0: true\n2026-01-01 00:00:{end:02} UTC job: {id}: === DONE\n"
            );
            std::fs::write(log_dir.join(format!("{id}.{n}.{status}")), text).unwrap();
        }
    }
    dir
}

/// The `data:` of SSE events as they arrive on `res`.
struct Events {
    res: reqwest::Response,
    buf: String,
}

impl Events {
    /// The next event's name and data, and the bytes it took on the wire.
    async fn next(&mut self) -> (String, String, usize) {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                if let Some(end) = self.buf.find("\n\n") {
                    let raw: String = self.buf.drain(..end + 2).collect();
                    if raw.starts_with(':') {
                        continue;
                    }
                    let mut name = String::new();
                    let mut data = Vec::new();
                    for line in raw.lines() {
                        if let Some(v) = line.strip_prefix("event:") {
                            name = v.trim().to_string();
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push(v.strip_prefix(' ').unwrap_or(v));
                        }
                    }
                    return (name, data.join("\n"), raw.len());
                }
                let chunk = self.res.chunk().await.unwrap().expect("stream goes on");
                self.buf.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .expect("an event")
    }
}

async fn open_events(d: &TestDaemon, query: &str) -> Events {
    let res = d
        .http
        .get(d.url(&format!("/karajo/events{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    Events {
        res,
        buf: String::new(),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// `data-have="<token>"` of a dashboard page.
fn token_of(page: &str) -> String {
    let at = page.find("data-have=\"").expect("a token") + 11;
    page[at..at + 16].to_string()
}

#[tokio::test]
async fn a_dashboard_of_1000_jobs_renders_and_its_updates_stay_small() {
    let dir = many_jobs(5);
    let d = TestDaemon::start(&dir).await;
    // More than 50 jobs: the list unless the reader asks for cards.
    let page = d
        .http
        .get(d.url("/karajo/app/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("data-view=\"list\""));
    assert_eq!(page.matches("<tr data-key=").count(), MANY);
    assert!(
        page.contains("<strong>1000 jobs</strong> · <span class=\"c st-failed\">100 failed</span> · <span class=\"c st-success\">900 ok</span></p>"),
        "the counts line"
    );
    let cards = d
        .http
        .get(d.url("/karajo/app/?view=cards"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(cards.contains("data-view=\"cards\""));
    assert_eq!(cards.matches("<li class=\"job ").count(), MANY);
    for (label, query) in [("list (default)", ""), ("cards", "?view=cards")] {
        let url = d.url(&format!("/karajo/app/{query}"));
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let page = d.http.get(&url).send().await.unwrap().text().await.unwrap();
            times.push(t.elapsed());
            size = page.len();
            assert!(page.contains("j0999"), "every job is on the page");
        }
        let gzip = d
            .http
            .get(&url)
            .header("Accept-Encoding", "gzip")
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .len();
        println!(
            "dashboard of {MANY} jobs, {label} view: median {:.1} ms over 5 GETs, {size} bytes ({gzip} gzipped)",
            median(times).as_secs_f64() * 1e3
        );
    }

    // A page's stream starts from what the page shows: a small first event.
    for view in ["list", "cards"] {
        let page = d
            .http
            .get(d.url(&format!("/karajo/app/?view={view}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut events = open_events(&d, &format!("?view={view}&have={}", token_of(&page))).await;
        let (name, data, wire) = events.next().await;
        assert_eq!(name, "patch", "{data}");
        assert!(wire < 10_000, "{wire} bytes: {data}");
        println!("live stream, {view} view from its page: first event {name} {wire} bytes");
    }

    let mut counter = 5;
    for view in ["list", "cards"] {
        let mut events = open_events(&d, &format!("?view={view}")).await;
        let (name, data, wire) = events.next().await;
        assert_eq!(name, "update");
        assert!(data.contains("j0999"));
        println!("live stream, {view} view without its page: first update {wire} bytes");
        // One run of one job: the events until it shows as finished, each a patch of
        // the counts line and that job's entry.
        counter = d
            .daemon
            .as_ref()
            .unwrap()
            .scheduler()
            .trigger(JobKey::exec(JobId::from_raw("j0001")), Trigger::Api, None)
            .await
            .unwrap()
            .counter;
        dir.wait_log("j0001", counter, "success").await;
        let needle = format!("/karajo/app/job/j0001/log/{counter}");
        let mut sizes = Vec::new();
        loop {
            let (name, data, wire) = events.next().await;
            assert_eq!(name, "patch", "{data}");
            let patch: serde_json::Value = serde_json::from_str(&data).unwrap();
            for item in patch["items"].as_array().unwrap() {
                assert_eq!(item[0], "job/j0001", "only the job that ran: {data}");
            }
            sizes.push(format!("{name} {wire} bytes"));
            if data.contains(&needle) && !data.contains("st-running") {
                break;
            }
        }
        println!(
            "live stream, {view} view: one run of one job → {}",
            sizes.join(", ")
        );
    }
    assert_eq!(counter, 7);
    d.stop().await;
}

/// Jobs in every state the dashboard groups: after the setup in
/// [`browser_the_dashboard_list_searches_filters_and_stays_live`], `hello` succeeded,
/// `broken` failed, `slow` runs until the file `go` exists, `sleepy` is paused, and the
/// rest never ran.
const STATES: &str = r#"
[job "hello"]
command = echo hello

[job "broken"]
command = false

[job "slow"]
command = "while [ ! -f go ]; do sleep 0.05; done"

[job "sleepy"]
command = true

[job "nightly"]
schedule = daily@03:00
command = echo nightly

[job "deploy <b>web</b>"]
command = echo deploy

[job.http "ping"]
http_url = /karajo/api/environment
"#;

/// The group the dashboard puts a job with this API status word in, and whether it ran.
fn group_of(status: &str, ran: bool) -> &'static str {
    match status {
        "running" => "running",
        "paused" => "paused",
        "failed" => "failed",
        "canceled" => "canceled",
        "success" => "ok",
        _ if ran => "ok",
        _ => "new",
    }
}

/// The keys of the rows shown (not hidden by the search or a filter), in page order.
const SHOWN_ROWS: &str = "[...document.querySelectorAll('#jobs tr[data-key]')].filter(r => !r.hidden).map(r => r.getAttribute('data-key')).join(' ')";

#[tokio::test]
async fn browser_the_dashboard_list_searches_filters_and_stays_live() {
    let dir = TestDir::new(STATES);
    let d = TestDaemon::start(&dir).await;
    let scheduler = d.daemon.as_ref().unwrap().scheduler().clone();
    let job = |id: &str| JobKey::exec(JobId::from_raw(id));
    scheduler
        .trigger(job("hello"), Trigger::Api, None)
        .await
        .unwrap();
    scheduler
        .trigger(job("broken"), Trigger::Api, None)
        .await
        .unwrap();
    dir.wait_log("hello", 1, "success").await;
    dir.wait_log("broken", 1, "failed").await;
    scheduler.pause(job("sleepy")).await.unwrap();
    scheduler
        .trigger(job("slow"), Trigger::Api, None)
        .await
        .unwrap();
    wait_for("hello and broken finished, slow running", || async {
        let s = scheduler.snapshot();
        let status = |id: &str| s.job(JobKind::Exec, id).map(|j| j.status.as_str());
        (status("hello") == Some("success")
            && status("broken") == Some("failed")
            && status("slow") == Some("running"))
        .then_some(())
    })
    .await;

    // The counts the dashboard should show, from the scheduler's own view of the jobs.
    let expected_counts = || {
        let s = scheduler.snapshot();
        let mut counts = std::collections::BTreeMap::new();
        for j in &s.jobs {
            let ran = j.counter > 0 || !j.logs.is_empty();
            *counts.entry(group_of(j.status.as_str(), ran)).or_insert(0) += 1;
        }
        counts.insert("all", s.jobs.len());
        counts
    };

    let browser = Browser::launch().await;
    let page = browser.page().await;
    page.goto(&d.url("/karajo/app/")).await;
    // Seven jobs: cards by default, with the tools the script shows.
    page.wait(
        "the dashboard's tools",
        "!document.getElementById('dash-tools').hidden && document.body.getAttribute('data-updates') !== null",
    )
    .await;
    assert_eq!(
        page.eval("document.getElementById('jobs').getAttribute('data-view')")
            .await,
        "cards"
    );
    assert_eq!(
        page.eval("document.querySelector('[data-show=cards]').getAttribute('aria-pressed')")
            .await,
        "true"
    );
    assert_eq!(
        page.text(".counts").await,
        "7 jobs · 1 failed · 1 running · 1 paused · 1 ok · 3 never run"
    );
    // The filter buttons count the same, and match the scheduler.
    let shown_counts = page
        .eval("Object.fromEntries([...document.querySelectorAll('[data-filter]')].map(b => [b.getAttribute('data-filter'), Number(b.querySelector('.n').textContent)]))")
        .await;
    for (group, n) in expected_counts() {
        assert_eq!(shown_counts[group], n, "{group}: {shown_counts}");
    }
    assert_eq!(shown_counts["canceled"], 0);
    assert_eq!(
        page.eval("document.querySelector('[data-filter=canceled]').hidden")
            .await,
        true,
        "no canceled job: no such button"
    );
    page.screenshot("20-dashboard-cards-tools").await;

    // To the list and back, each remembered across a reload.
    page.click("[data-show=list]").await;
    page.wait(
        "the list",
        "document.getElementById('jobs').getAttribute('data-view') === 'list' && document.querySelectorAll('#jobs tr[data-key]').length === 7",
    )
    .await;
    assert_eq!(
        page.eval("document.querySelector('[data-show=list]').getAttribute('aria-pressed') + document.querySelector('[data-show=cards]').getAttribute('aria-pressed')").await,
        "truefalse"
    );
    assert_eq!(
        page.eval("localStorage.getItem('karajo.dashboard.view')")
            .await,
        "list"
    );
    let reload = async || {
        page.eval("window.__old = 1").await;
        page.call("Page.reload", serde_json::json!({})).await;
        page.wait(
            "the page again",
            "window.__old === undefined && document.readyState === 'complete'",
        )
        .await;
    };
    reload().await;
    page.wait(
        "the list after a reload",
        "document.getElementById('jobs').getAttribute('data-view') === 'list' && document.querySelectorAll('#jobs tr[data-key]').length === 7 && document.querySelector('[data-show=list]').getAttribute('aria-pressed') === 'true'",
    )
    .await;
    // The list: a header row, and per job its name (a link, as text), kind, status in
    // words, last and next run and duration.
    let headers = page
        .eval("[...document.querySelectorAll('#jobs thead th')].map(t => t.getAttribute('scope') + ':' + t.textContent).join('|')")
        .await;
    assert_eq!(
        headers,
        "col:Name|col:Kind|col:Status|col:Last run|col:Next run|col:Duration"
    );
    let broken = "#jobs tr[data-key='job/broken']";
    assert_eq!(page.text(&format!("{broken} .badge")).await, "failed");
    assert_eq!(page.text(&format!("{broken} .kind")).await, "command");
    assert_eq!(
        page.eval(&format!(
            "document.querySelector(\"{broken} th a\").getAttribute('href')"
        ))
        .await,
        "/karajo/app/job/broken"
    );
    assert_eq!(
        page.eval(&format!(
            "document.querySelector(\"{broken} .last-run a\").getAttribute('href')"
        ))
        .await,
        "/karajo/app/job/broken/log/1"
    );
    // "now" while the run ended less than half a second ago, then "1 sec. ago".
    let last_run = page.text(&format!("{broken} .last-run")).await;
    assert!(
        last_run.contains("ago") || last_run.contains("now"),
        "{last_run}"
    );
    assert_eq!(
        page.text(&format!("{broken} .next-run")).await,
        "on request"
    );
    assert_eq!(
        page.text("#jobs tr[data-key='job/sleepy'] .next-run").await,
        "paused"
    );
    assert_eq!(
        page.text("#jobs tr[data-key='job/nightly'] .last-run")
            .await,
        "never"
    );
    assert!(
        page.text("#jobs tr[data-key='job/nightly'] .next-run")
            .await
            .starts_with("in ")
    );
    assert_eq!(
        page.text("#jobs tr[data-key='job_http/ping'] .kind").await,
        "HTTP"
    );
    assert!(
        page.text("#jobs tr[data-key='job/slow'] .duration")
            .await
            .ends_with(" so far")
    );
    // A name with HTML in it is text.
    let fancy = page
        .eval("[...document.querySelectorAll('#jobs tbody th a')].find(a => a.textContent.includes('deploy')).textContent")
        .await;
    assert_eq!(fancy, "deploy <b>web</b>");
    assert_eq!(
        page.eval("document.querySelectorAll('#jobs tbody th b').length")
            .await,
        0
    );
    page.screenshot("21-dashboard-list").await;
    page.color_scheme("dark").await;
    page.screenshot("22-dashboard-list-dark").await;
    page.color_scheme("light").await;

    // The search narrows the rows as one types, by name or id.
    page.type_text("#dash-search", "sl").await;
    page.wait(
        "two rows",
        &format!("{SHOWN_ROWS} === 'job/sleepy job/slow'"),
    )
    .await;
    assert_eq!(page.text("#dash-shown").await, "2 of 7 shown");
    page.type_text("#dash-search", "e").await;
    page.wait("one row", &format!("{SHOWN_ROWS} === 'job/sleepy'"))
        .await;
    page.clear_input("#dash-search").await;
    page.wait(
        "every row",
        &format!("{SHOWN_ROWS}.split(' ').length === 7"),
    )
    .await;
    assert_eq!(page.text("#dash-shown").await, "");
    page.type_text("#dash-search", "job_http").await;
    page.wait(
        "the HTTP job by its key",
        &format!("{SHOWN_ROWS} === 'job_http/ping'"),
    )
    .await;
    page.clear_input("#dash-search").await;

    // A status filter, by keyboard: only the failed job; All again shows every row.
    page.press_enter_on("[data-filter=failed]").await;
    page.wait("the failed job", &format!("{SHOWN_ROWS} === 'job/broken'"))
        .await;
    assert_eq!(
        page.eval("[...document.querySelectorAll('[data-filter]')].filter(b => b.getAttribute('aria-pressed') === 'true').map(b => b.getAttribute('data-filter')).join()").await,
        "failed"
    );
    assert_eq!(page.text("#dash-shown").await, "1 of 7 shown");
    page.screenshot("23-dashboard-list-failed").await;
    page.click("[data-filter=new]").await;
    page.wait(
        "the jobs that never ran",
        &format!("{SHOWN_ROWS} === 'job/deploy__b_web__b_ job/nightly job_http/ping' || {SHOWN_ROWS}.split(' ').length === 3"),
    )
    .await;
    page.click("[data-filter=all]").await;
    page.wait(
        "every row",
        &format!("{SHOWN_ROWS}.split(' ').length === 7"),
    )
    .await;

    // A live update while a search is on: the run ends, its row says so, and the
    // search box keeps its text and the focus.
    page.eval("window.__stay = 1").await;
    page.type_text("#dash-search", "slo").await;
    page.wait("slow alone", &format!("{SHOWN_ROWS} === 'job/slow'"))
        .await;
    assert_eq!(
        page.text("#jobs tr[data-key='job/slow'] .badge").await,
        "running"
    );
    let updates = page
        .eval("Number(document.body.getAttribute('data-updates'))")
        .await;
    std::fs::write(dir.base().join("var/lib/karajo/job/slow/go"), "").unwrap();
    page.wait(
        "slow's row says success",
        "document.querySelector(\"#jobs tr[data-key='job/slow'] .badge\").textContent === 'success'",
    )
    .await;
    assert!(
        page.eval("Number(document.body.getAttribute('data-updates'))")
            .await
            .as_u64()
            > updates.as_u64(),
        "a live update"
    );
    assert_eq!(
        page.eval("document.getElementById('dash-search').value")
            .await,
        "slo"
    );
    assert_eq!(page.eval("document.activeElement.id").await, "dash-search");
    assert_eq!(page.eval(SHOWN_ROWS).await, "job/slow");
    assert_eq!(
        page.eval("window.__stay").await,
        1,
        "the page did not reload"
    );
    assert!(
        !page
            .text("#jobs tr[data-key='job/slow'] .duration")
            .await
            .contains("so far")
    );
    page.wait(
        "the counts updated",
        "document.querySelector('.counts').textContent === '7 jobs · 1 failed · 1 paused · 2 ok · 3 never run'",
    )
    .await;
    let shown_counts = page
        .eval("Object.fromEntries([...document.querySelectorAll('[data-filter]')].map(b => [b.getAttribute('data-filter'), Number(b.querySelector('.n').textContent)]))")
        .await;
    for (group, n) in expected_counts() {
        assert_eq!(shown_counts[group], n, "{group}: {shown_counts}");
    }
    assert_eq!(shown_counts["running"], 0);
    page.screenshot("24-dashboard-list-search-live").await;

    // Narrow screens: no sideways scrolling of the page.
    page.clear_input("#dash-search").await;
    page.viewport(360, 740).await;
    let overflow = page
        .eval("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        .await;
    assert!(
        overflow.as_i64().unwrap_or(99) <= 0,
        "no sideways scrolling at 360 px: {overflow}"
    );
    page.screenshot("25-dashboard-list-360px").await;
    page.viewport(1100, 900).await;

    // Back to cards, remembered too; the search applies to cards as well.
    page.click("[data-show=cards]").await;
    page.wait(
        "the cards",
        "document.getElementById('jobs').getAttribute('data-view') === 'cards' && document.querySelectorAll('#jobs li[data-key]').length === 7",
    )
    .await;
    assert_eq!(
        page.eval("localStorage.getItem('karajo.dashboard.view')")
            .await,
        "cards"
    );
    reload().await;
    page.wait(
        "the cards after a reload",
        "document.getElementById('jobs').getAttribute('data-view') === 'cards' && document.querySelectorAll('#jobs li[data-key]').length === 7 && document.body.getAttribute('data-updates') !== null",
    )
    .await;
    page.type_text("#dash-search", "hello").await;
    page.wait(
        "one card",
        "[...document.querySelectorAll('#jobs li[data-key]')].filter(r => !r.hidden).map(r => r.getAttribute('data-key')).join() === 'job/hello'",
    )
    .await;
    drop(page);
    drop(browser);
    d.stop().await;
}

/// Milliseconds until `done` holds after `action` runs in the page (both JavaScript),
/// measured by the page's clock up to the next frame.
async fn page_ms(page: &super::cdp::Page<'_>, action: &str, done: &str) -> f64 {
    let expr = format!(
        "new Promise(r => {{ const t = performance.now(); {action}; (function poll() {{ if ({done}) requestAnimationFrame(() => r(performance.now() - t)); else setTimeout(poll, 2); }})(); }})"
    );
    page.eval(&expr).await.as_f64().expect("milliseconds")
}

#[tokio::test]
async fn browser_a_list_of_1000_jobs_searches_and_updates_quickly() {
    let dir = many_jobs(5);
    let d = TestDaemon::start(&dir).await;
    let browser = Browser::launch().await;
    let page = browser.page().await;
    // The cards first (as every dashboard was before the list), for comparison.
    let t = Instant::now();
    page.goto(&d.url("/karajo/app/?view=cards")).await;
    page.wait(
        "the cards, live",
        "document.getElementById('jobs').getAttribute('data-view') === 'cards' && document.body.getAttribute('data-updates') !== null",
    )
    .await;
    let timing = page
        .eval("(n => [n.responseEnd, n.domContentLoadedEventEnd, n.loadEventEnd].map(Math.round).join(' / '))(performance.getEntriesByType('navigation')[0])")
        .await;
    println!(
        "browser, {MANY} jobs: the cards loaded and live in {:.0} ms (response end / DOMContentLoaded end / load end: {} ms)",
        t.elapsed().as_secs_f64() * 1e3,
        timing.as_str().unwrap_or_default()
    );
    let t = Instant::now();
    page.goto(&d.url("/karajo/app/")).await;
    page.wait(
        "the list, live",
        "document.getElementById('jobs').getAttribute('data-view') === 'list' && document.body.getAttribute('data-updates') !== null",
    )
    .await;
    let timing = page
        .eval("(n => [n.responseEnd, n.domContentLoadedEventEnd, n.loadEventEnd].map(Math.round).join(' / '))(performance.getEntriesByType('navigation')[0])")
        .await;
    println!(
        "browser, {MANY} jobs: the list loaded and live in {:.0} ms (response end / DOMContentLoaded end / load end: {} ms)",
        t.elapsed().as_secs_f64() * 1e3,
        timing.as_str().unwrap_or_default()
    );
    assert_eq!(
        page.eval("document.querySelectorAll('#jobs tr[data-key]').length")
            .await,
        MANY
    );
    assert_eq!(
        page.eval("document.querySelector('[data-filter=failed] .n').textContent")
            .await,
        "100"
    );
    // The page's own work while nothing changes: relative times and elapsed times
    // refreshed every second for 2,000 times.
    let script_secs = async || {
        let metrics = page
            .call("Performance.getMetrics", serde_json::json!({}))
            .await;
        metrics["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "ScriptDuration")
            .and_then(|m| m["value"].as_f64())
            .unwrap()
    };
    page.call("Performance.enable", serde_json::json!({})).await;
    let before = script_secs().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = (script_secs().await - before) / 3.0;
    println!(
        "browser, {MANY} jobs: the page's script runs {:.1} ms per second while idle",
        idle * 1e3
    );
    // Typing filters at once.
    let search = "(s => { s.value = 'j099'; s.dispatchEvent(new Event('input')); })(document.getElementById('dash-search'))";
    let ms = page_ms(
        &page,
        search,
        &format!("{SHOWN_ROWS}.split(' ').length === 10"),
    )
    .await;
    println!("browser, {MANY} jobs: a search applied in {ms:.1} ms");
    page.click("[data-filter=failed]").await;
    page.wait("j0990 alone", &format!("{SHOWN_ROWS} === 'job/j0990'"))
        .await;
    page.screenshot("26-dashboard-1000-searched").await;
    // A run shows up live in its row, the search and filter untouched.
    let scheduler = d.daemon.as_ref().unwrap().scheduler().clone();
    let t = Instant::now();
    scheduler
        .trigger(JobKey::exec(JobId::from_raw("j0990")), Trigger::Api, None)
        .await
        .unwrap();
    page.wait(
        "j0990 ran",
        "document.querySelector(\"#jobs tr[data-key='job/j0990'] .last-run a\").getAttribute('href').endsWith('/log/6') && document.querySelector(\"#jobs tr[data-key='job/j0990'] .badge\").textContent === 'success'",
    )
    .await;
    println!(
        "browser, {MANY} jobs: a run seen in its row {:.0} ms after it was asked for",
        t.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(
        page.eval(SHOWN_ROWS).await,
        "",
        "j0990 succeeded, so the failed filter hides it now"
    );
    assert_eq!(
        page.eval("document.getElementById('dash-search').value")
            .await,
        "j099"
    );
    assert_eq!(
        page.eval("document.querySelector('[data-filter=failed] .n').textContent")
            .await,
        "99"
    );
    assert!(
        !page
            .eval("document.getElementById('dash-none').hidden")
            .await
            .as_bool()
            .unwrap()
    );
    // Whole updates: to the cards and back.
    for (view, selector) in [("cards", "li"), ("list", "tr")] {
        let ms = page_ms(
            &page,
            &format!("document.querySelector('[data-show={view}]').click()"),
            &format!(
                "document.getElementById('jobs').getAttribute('data-view') === '{view}' && document.querySelectorAll('#jobs {selector}[data-key]').length === {MANY}"
            ),
        )
        .await;
        println!("browser, {MANY} jobs: switched to the {view} in {ms:.0} ms (a whole update)");
    }
    drop(page);
    drop(browser);
    d.stop().await;
}
