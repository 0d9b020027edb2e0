//! The nodes page's rows and the cluster banners, from an in-memory cluster of three
//! nodes seen from `n1`: runs read from `job.<id>.<counter>` keys and linked to their
//! logs, dead nodes, heartbeat ages, digest marks, and the banners for a lost link and
//! for a live node with other job definitions (not for a dead or a silent one).

use std::sync::Arc;
use std::time::Duration;

use askama::Template as _;
use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::clock::{Clock as _, ManualClock};
use crate::cluster::coordinator::{Coordinator, JobCtx};
use crate::cluster::decide::{JobEvent, JobRecord};
use crate::cluster::memory::{MemoryCluster, MemoryCoordinator};
use crate::cluster::{NodeName, RunOn};
use crate::job::{JobId, JobKey};

const T0: &str = "2026-11-30T12:00:00Z";
const OURS: &str = "sha256:aaaa";

/// Three nodes (`n2` tagged `gpu` and `eu`) on one cluster, each with a version, OURS
/// as its digest and 4 as its `max_job_running`; `n1`'s coordinator and its view.
fn cluster() -> (
    Arc<ManualClock>,
    Arc<MemoryCluster>,
    MemoryCoordinator,
    ClusterInfo,
) {
    let clock = Arc::new(ManualClock::new(T0.parse().unwrap()));
    let cluster = MemoryCluster::new(
        clock.clone(),
        Duration::from_secs(20),
        Duration::from_secs(2),
        3,
    );
    let n1 = cluster.join("n1", &[]);
    cluster.join("n2", &["gpu", "eu"]);
    cluster.join("n3", &[]);
    for name in ["n1", "n2", "n3"] {
        cluster.update_node(&node(name), |info| {
            info.version = "0.1.0".into();
            info.config_digest = OURS.into();
            info.max_job_running = 4;
        });
    }
    let info = ClusterInfo {
        coordinator: Arc::new(n1.clone()),
        config_digest: OURS.into(),
        nats_server: "2.9.10".into(),
        stats: Arc::default(),
    };
    (clock, cluster, n1, info)
}

fn node(name: &str) -> NodeName {
    NodeName::parse(name).unwrap()
}

/// Starts a run of `job` through `by` and has `runner` accept it: the record shows it
/// running on `runner`.
async fn run_on(by: &MemoryCoordinator, job: JobKey, runner: &NodeName) {
    let ctx = JobCtx {
        job,
        run_on: RunOn::Any,
        job_digest: "sha256:00".into(),
        seed: JobRecord::seed(0, None, None, false),
    };
    let started = by.transition(&ctx, JobEvent::ApiRun).await.unwrap();
    let run = started.record.active.unwrap().run;
    by.transition(
        &ctx,
        JobEvent::Accepted {
            run,
            node: runner.clone(),
        },
    )
    .await
    .unwrap();
}

/// This node has `hello` (a command job) and `ping` (an HTTP job).
fn known(kind: JobKind, id: &str) -> Option<String> {
    match (kind, id) {
        (JobKind::Exec, "hello") => Some("Hello".into()),
        (JobKind::Http, "ping") => Some("Ping".into()),
        _ => None,
    }
}

#[test]
fn runs_link_to_their_logs_when_this_node_has_the_job() {
    let link = |key: &str| run_link(key, &known);
    assert_eq!(
        link("job.hello.12"),
        RunLink {
            text: "Hello #12".into(),
            href: Some("/karajo/app/job/hello/log/12".into()),
        }
    );
    assert_eq!(
        link("job_http.ping.7").href.as_deref(),
        Some("/karajo/app/job_http/ping/log/7")
    );
    // A job this node does not have: named by its id, not linked.
    assert_eq!(
        link("job.gone.3"),
        RunLink {
            text: "gone #3".into(),
            href: None,
        }
    );
    // Keys that do not read as a job's run are shown as they are.
    for odd in [
        "job.hello.x",
        "job.hello",
        "monitor.hello.1",
        "nonsense",
        "",
    ] {
        assert_eq!(
            link(odd),
            RunLink {
                text: odd.into(),
                href: None,
            },
            "{odd}"
        );
    }
}

#[tokio::test]
async fn rows_show_every_node_alive_or_dead_with_its_runs() {
    let (clock, cluster, n1, info) = cluster();
    run_on(&n1, JobKey::exec(JobId::from_raw("hello")), &node("n2")).await;
    run_on(&n1, JobKey::exec(JobId::from_raw("gone")), &node("n2")).await;
    cluster.update_node(&node("n3"), |info| {
        info.config_digest = "sha256:bbbb".into();
        info.clock_offset_ms = Some(-12);
    });
    cluster.update_node(&node("n2"), |info| info.clock_offset_ms = Some(3));
    clock.set(clock.now() + SignedDuration::from_secs(40));
    cluster.set_alive(&node("n3"), false);
    clock.set(clock.now() + SignedDuration::from_secs(2));

    let rows = node_rows(&info.status(), clock.now(), OURS, &known);
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["n1", "n2", "n3"]);
    let [n1, n2, n3] = [&rows[0], &rows[1], &rows[2]];

    assert!(n1.this_node && !n2.this_node && !n3.this_node);
    assert_eq!(n1.tags, "—");
    assert_eq!(n2.tags, "gpu, eu");
    assert!(n1.alive && n2.alive && !n3.alive);
    assert_eq!(n2.seen.as_ref().unwrap().ago, "42 s ago");
    assert_eq!(
        n2.seen.as_ref().unwrap().at.iso,
        "2026-11-30T12:00:00Z",
        "the heartbeat's time"
    );
    assert_eq!(
        n3.seen.as_ref().unwrap().ago,
        "42 s ago",
        "dead: its last one"
    );
    assert_eq!(n1.version, "0.1.0");
    assert_eq!(n1.definitions, Definitions::Same);
    assert_eq!(n3.definitions, Definitions::Different);
    assert_eq!(n3.definitions.mark(), "✗");
    assert_eq!(n1.max_job_running, "4");
    assert_eq!(n1.clock_offset, "—");
    assert_eq!(n2.clock_offset, "+3 ms");
    assert_eq!(n3.clock_offset, "-12 ms");
    assert!(n1.runs.is_empty());
    assert_eq!(
        n2.runs,
        [
            RunLink {
                text: "gone #1".into(),
                href: None,
            },
            RunLink {
                text: "Hello #1".into(),
                href: Some("/karajo/app/job/hello/log/1".into()),
            },
        ]
    );
}

#[test]
fn a_node_that_said_little_shows_dashes_and_an_unknown_digest() {
    let (clock, cluster, _, info) = cluster();
    cluster.update_node(&node("n2"), |info| {
        info.version.clear();
        info.config_digest.clear();
        info.max_job_running = 0;
        info.last_seen = None;
    });
    let rows = node_rows(&info.status(), clock.now(), OURS, &known);
    let n2 = &rows[1];
    assert_eq!(n2.version, "—");
    assert_eq!(n2.max_job_running, "—");
    assert_eq!(n2.seen, None);
    assert_eq!(n2.definitions, Definitions::Unknown);
    assert_eq!(n2.definitions.mark(), "?");
}

#[test]
fn no_banner_while_connected_with_the_same_definitions() {
    let (_, _, _, info) = cluster();
    assert_eq!(ClusterChrome::of(&info), ClusterChrome::default());
}

#[test]
fn a_lost_link_gives_a_banner_with_its_time_of_day() {
    let (clock, cluster, _, info) = cluster();
    clock.set(clock.now() + SignedDuration::from_secs(3 * 3600 + 7));
    cluster.set_connected(&node("n1"), false);
    let chrome = ClusterChrome::of(&info);
    let since = chrome.unreachable_since.clone().unwrap();
    assert_eq!(since.text, "15:00:07 UTC");
    assert_eq!(since.iso, "2026-11-30T15:00:07Z");
    assert!(chrome.drifted.is_empty());
    // Back again: no banner.
    cluster.set_connected(&node("n1"), true);
    assert_eq!(ClusterChrome::of(&info), ClusterChrome::default());
    // Another node's link is not this node's.
    cluster.set_connected(&node("n2"), false);
    assert_eq!(ClusterChrome::of(&info), ClusterChrome::default());
}

#[test]
fn a_live_node_with_other_definitions_gives_a_banner() {
    let (_, cluster, _, info) = cluster();
    let differ = |name: &str| {
        cluster.update_node(&node(name), |info| {
            info.config_digest = "sha256:bbbb".into();
        })
    };
    differ("n3");
    let chrome = ClusterChrome::of(&info);
    assert_eq!(chrome.drifted, ["n3"]);
    assert_eq!(
        chrome.drift_text(),
        "node n3 runs different job definitions"
    );
    assert_eq!(chrome.unreachable_since, None);
    differ("n2");
    assert_eq!(
        ClusterChrome::of(&info).drift_text(),
        "nodes n2, n3 run different job definitions"
    );
    // A dead node's definitions do not count, nor a digest not known.
    cluster.set_alive(&node("n3"), false);
    cluster.update_node(&node("n2"), |info| info.config_digest.clear());
    assert_eq!(ClusterChrome::of(&info), ClusterChrome::default());
}

/// A frame for the templates, with `cluster`.
fn chrome(cluster: Option<ClusterChrome>) -> Chrome {
    Chrome {
        site: "site".into(),
        user: None,
        csrf: String::new(),
        version: "0",
        assets: "0",
        cluster,
    }
}

#[tokio::test]
async fn the_page_greys_dead_nodes_and_links_runs() {
    let (clock, cluster, n1, info) = cluster();
    run_on(&n1, JobKey::http(JobId::from_raw("ping")), &node("n1")).await;
    cluster.set_alive(&node("n3"), false);
    let status = info.status();
    let page = NodesPage {
        chrome: chrome(Some(ClusterChrome::link_only())),
        node: status.node.to_string(),
        connected: status.connected,
        since: TimeView::new(status.since),
        nats_server: status.nats_server.clone(),
        nodes: node_rows(&status, clock.now(), OURS, &known),
    }
    .render()
    .unwrap();
    assert!(page.contains(r#"<a href="/karajo/app/cluster" id="nav-cluster">Cluster</a>"#));
    assert!(page.contains("NATS server 2.9.10"), "{page}");
    assert!(
        page.contains("<strong>n1</strong>, has been connected to the cluster since <time datetime=\"2026-11-30T12:00:00Z\">"),
        "{page}"
    );
    assert!(
        page.contains(r#"<tr data-node="n1" class="alive"><th scope="row">n1 <span class="this-node">(this node)</span></th>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<tr data-node="n3" class="dead">"#),
        "{page}"
    );
    assert!(page.contains(r#"<span class="badge st-paused">dead</span> seen <time datetime="2026-11-30T12:00:00Z" data-ago>&#60; 1 s ago</time>"#), "{page}");
    assert!(
        page.contains(
            r#"<td class="running"><a href="/karajo/app/job_http/ping/log/1">Ping #1</a></td>"#
        ),
        "{page}"
    );
    assert!(page.contains(r#"<td class="tags">gpu, eu</td>"#), "{page}");
    assert!(!page.contains("cluster-unreachable") && !page.contains("cluster-drift"));
}

#[test]
fn the_frame_shows_the_banners_and_nothing_on_a_single_node() {
    let banners = ClusterChrome {
        unreachable_since: ClockTime::new("2026-11-30T15:00:07Z".parse::<Timestamp>().unwrap()),
        drifted: vec!["n<2>".into()],
    };
    let page = |cluster| {
        super::super::ErrorPage {
            chrome: chrome(cluster),
            title: "Not Found",
            message: "m".into(),
            back: "/karajo/app/",
        }
        .render()
        .unwrap()
    };
    let html = page(Some(banners));
    assert!(
        html.contains("</header>\n<p class=\"error banner\" role=\"alert\" id=\"cluster-unreachable\">cluster unreachable since <time datetime=\"2026-11-30T15:00:07Z\" data-clock>15:00:07 UTC</time>; cluster jobs are paused on this node</p>\n"),
        "{html}"
    );
    assert!(
        html.contains("<p class=\"error banner\" role=\"alert\" id=\"cluster-drift\">node n&#60;2&#62; runs different job definitions</p>\n<main id=\"main\">"),
        "{html}"
    );
    let single = page(None);
    assert!(single.contains(
        "<nav aria-label=\"Main\"><a href=\"/karajo/app/\">Jobs</a> <a href=\"/karajo/app/events\" id=\"nav-events\">Events</a></nav>"
    ));
    assert!(single.contains("</header>\n<main id=\"main\">"), "{single}");
    assert!(!single.contains("cluster"), "{single}");
}
