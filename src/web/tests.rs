//! The web room's access rules as one table: [`super::app`] built over a real scheduler
//! on a temporary `dir_base`, every read and control route driven with
//! `tower::ServiceExt::oneshot`, once without users and once with users (and no
//! session, no signature); signed controls, which pass in both; web hooks, which
//! find their job in the scheduler's job set; and the service routes' answers for a
//! service the scheduler does not have; and the cluster's page, banners and link, on an
//! in-memory cluster and on a single node.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{Method, StatusCode, header};
use tower::ServiceExt as _;

use super::{AppState, app, body, pages};
use crate::auth::ReplayGuard;
use crate::clock::{SharedClock, SystemClock};
use crate::metrics::Metrics;
use crate::scheduler::{self, SchedulerOptions};
use crate::store::{Layout, StateFile};

/// The jobs every table row reads or controls: a command job with a web hook and an
/// HTTP job.
const JOBS: &str = r#"
[job "hello"]
path = /hello
command = echo hello

[job.http "ping"]
http_url = http://127.0.0.1:9/never
interval = 1h
"#;

/// Writes `karajo.conf` (and `user.conf` with one user when `users`) under `base` and
/// builds the app over a scheduler of its jobs, as the daemon does.
pub(super) fn build(base: &Path, users: bool) -> (AppState, scheduler::SchedulerHandle) {
    let etc = base.join("etc/karajo");
    std::fs::create_dir_all(&etc).unwrap();
    let conf = format!(
        "[karajo]\nname = table\ndir_base = {}\nsecret = s3cret\n{JOBS}",
        base.display()
    );
    std::fs::write(etc.join("karajo.conf"), conf).unwrap();
    if users {
        let hash = bcrypt::hash("password", 4).unwrap();
        std::fs::write(
            etc.join("user.conf"),
            format!("[user \"admin\"]\npassword = {hash}\n"),
        )
        .unwrap();
    }
    let config = crate::config::load_with(&etc.join("karajo.conf"), &|_| false).unwrap();
    assert_eq!(config.users.is_empty(), !users);
    let layout = Layout::new(&config.dir_base);
    layout.ensure_dirs().unwrap();
    let replay = Arc::new(ReplayGuard::new(
        crate::auth::replay::DEFAULT_REPLAY_CAPACITY,
        crate::auth::replay::DEFAULT_DELIVERY_TTL,
    ));
    let defs =
        crate::daemon::job_defs(&config, &Default::default(), "127.0.0.1:1", &replay).unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    let restored =
        scheduler::restore_jobs(&layout, defs, &StateFile::default(), clock.now(), false).unwrap();
    let metrics = Arc::new(Metrics::new(None));
    let (scheduler, _task) = scheduler::spawn(SchedulerOptions {
        layout: layout.clone(),
        clock: clock.clone(),
        config: Arc::new(config.clone()),
        jobs: restored,
        state: StateFile::default(),
        monitors: Vec::new(),
        last_alive: None,
        pulses: Vec::new(),
        services: Vec::new(),
        service_url: "http://127.0.0.1:1".to_string(),
        events: None,
        metrics: metrics.clone(),
        notifier: None,
        cluster: None,
    });
    let state = AppState {
        scheduler: scheduler.clone(),
        layout,
        clock,
        replay,
        bodies: body::BodyBudget::for_max_body(config.max_body_size),
        metrics,
        sessions: Arc::default(),
        wui: pages::WuiState::new(config.max_sse_streams),
        env_cache: Arc::default(),
        events: None,
        usage: Arc::default(),
        cluster: None,
    };
    (state, scheduler)
}

/// One route: its method and URI, and the status without users and with users.
struct Row {
    method: Method,
    uri: &'static str,
    without_users: StatusCode,
    with_users: StatusCode,
}

fn row(method: Method, uri: &'static str, without: u16, with: u16) -> Row {
    let code = |n: u16| StatusCode::from_u16(n).unwrap();
    Row {
        method,
        uri,
        without_users: code(without),
        with_users: code(with),
    }
}

/// Every read and control route, with neither a session nor a signature.
fn table() -> Vec<Row> {
    vec![
        // API reads: open without users, 401 with users.
        row(Method::GET, "/karajo/api/environment", 200, 401),
        row(
            Method::GET,
            "/karajo/api/job_exec/log?id=hello&counter=1",
            200,
            401,
        ),
        row(Method::GET, "/karajo/api/job_http?id=ping", 200, 401),
        row(
            Method::GET,
            "/karajo/api/job_http/log?id=ping&counter=1",
            200,
            401,
        ),
        row(Method::GET, "/karajo/metrics", 200, 401),
        // Service reads: the access rule first, then the unknown service's 404.
        row(Method::GET, "/karajo/api/service?id=nope", 404, 401),
        row(
            Method::GET,
            "/karajo/api/service?id=nope&history=1",
            404,
            401,
        ),
        row(
            Method::GET,
            "/karajo/api/service/log?id=nope&counter=1",
            404,
            401,
        ),
        // API controls: a signature, with or without users (a web hook without its
        // signature header is 403, the others 401).
        row(Method::POST, "/karajo/api/job_exec/run/hello", 403, 403),
        // The web hook's job comes from the scheduler's snapshot: by path, any case.
        row(Method::POST, "/karajo/api/job_exec/run/HELLO/", 403, 403),
        row(Method::POST, "/karajo/api/job_exec/run/nope", 404, 404),
        row(Method::POST, "/karajo/api/job_exec/pause", 401, 401),
        row(Method::POST, "/karajo/api/job_exec/resume", 401, 401),
        row(Method::POST, "/karajo/api/job_exec/cancel", 401, 401),
        row(Method::POST, "/karajo/api/job_http/pause", 401, 401),
        row(Method::POST, "/karajo/api/job_http/resume", 401, 401),
        // Service controls are signed forms; pings carry an instance token and are
        // not behind the read rule (an unknown service is 404 before the token).
        row(Method::POST, "/karajo/api/service/enable", 401, 401),
        row(Method::POST, "/karajo/api/service/disable", 401, 401),
        row(Method::POST, "/karajo/api/service/restart", 401, 401),
        row(Method::POST, "/karajo/api/service/run_once", 401, 401),
        row(Method::POST, "/karajo/api/service/signal", 401, 401),
        row(Method::GET, "/karajo/api/service/ping/nope", 404, 404),
        row(
            Method::POST,
            "/karajo/api/service/ping/nope?token=t",
            404,
            404,
        ),
        row(Method::GET, "/karajo/api/service/ping/NOPE/", 404, 404),
        // Pages: open without users (a run that does not exist is 404), to the login
        // page with users.
        row(Method::GET, "/karajo", 303, 303),
        row(Method::GET, "/karajo/app", 200, 303),
        row(Method::GET, "/karajo/app/job/hello", 200, 303),
        row(Method::GET, "/karajo/app/job_http/ping", 200, 303),
        row(Method::GET, "/karajo/app/job/hello/log/1", 404, 303),
        // The nodes page: cluster mode is off here (404), behind the page rule.
        row(Method::GET, "/karajo/app/cluster", 404, 303),
        row(
            Method::GET,
            "/karajo/job_exec/log?id=hello&counter=1",
            303,
            303,
        ),
        // Live streams and raw logs: open without users (no run 1: 404), 401 with users.
        row(Method::GET, "/karajo/events", 200, 401),
        row(Method::GET, "/karajo/app/job/hello/log/1/events", 404, 401),
        row(Method::GET, "/karajo/app/job/hello/log/1/raw", 404, 401),
        // Page controls: the global secret without users, a session's token with users.
        row(Method::POST, "/karajo/app/job/hello/control", 403, 403),
        row(Method::POST, "/karajo/app/job_http/ping/control", 403, 403),
        // Always open (the login page sends to the dashboard when there are no users).
        row(Method::GET, "/karajo/login", 303, 200),
        row(Method::GET, "/karajo/static/karajo.css", 200, 200),
    ]
}

#[tokio::test]
async fn every_read_and_control_route_answers_by_the_access_rules() {
    let mut wrong = Vec::new();
    for users in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (state, _scheduler) = build(dir.path(), users);
        let service = app(state);
        for row in table() {
            let mut req = Request::builder()
                .method(row.method.clone())
                .uri(row.uri)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("action=pause"))
                .unwrap();
            let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
            req.extensions_mut().insert(ConnectInfo(peer));
            let res = service.clone().oneshot(req).await.unwrap();
            let want = if users {
                row.with_users
            } else {
                row.without_users
            };
            if res.status() != want {
                wrong.push(format!(
                    "{} {} users={users}: {} (want {want})",
                    row.method,
                    row.uri,
                    res.status()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A signed web hook to `path`, as karajo's own client sends it.
fn signed_hook(path: &str) -> Request {
    let epoch = jiff::Timestamp::now().as_second();
    let body = format!("{{\"_karajo_epoch\":{epoch},\"_karajo_nonce\":\"{path}\"}}");
    let sign = crate::auth::sign_hmac_sha256(b"s3cret", body.as_bytes());
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(format!("/karajo/api/job_exec/run{path}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-karajo-sign", sign)
        .body(Body::from(body))
        .unwrap();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    req
}

#[tokio::test]
async fn a_web_hook_finds_its_job_in_the_scheduler_job_set() {
    let dir = tempfile::tempdir().unwrap();
    let (state, scheduler) = build(dir.path(), false);
    let service = app(state);
    // The scheduler reloads a job set where `/hello` is gone and `/other` is new,
    // published with its configuration.
    let other = dir.path().join("etc/karajo/other.conf");
    std::fs::write(
        &other,
        format!(
            "[karajo]\nname = table\ndir_base = {}\nsecret = s3cret\n\n[job \"other\"]\npath = /other\ncommand = true\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let config = crate::config::load_with(&other, &|_| false).unwrap();
    let replay = Arc::new(ReplayGuard::new(
        crate::auth::replay::DEFAULT_REPLAY_CAPACITY,
        crate::auth::replay::DEFAULT_DELIVERY_TTL,
    ));
    let defs =
        crate::daemon::job_defs(&config, &Default::default(), "127.0.0.1:1", &replay).unwrap();
    let before = service
        .clone()
        .oneshot(signed_hook("/other"))
        .await
        .unwrap();
    assert_eq!(before.status(), StatusCode::NOT_FOUND);
    scheduler.reload(defs, Arc::new(config)).await;
    let other = service
        .clone()
        .oneshot(signed_hook("/other"))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    let hello = service
        .clone()
        .oneshot(signed_hook("/hello"))
        .await
        .unwrap();
    assert_eq!(hello.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn signed_controls_pass_with_and_without_users() {
    for users in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (state, _scheduler) = build(dir.path(), users);
        let service = app(state);
        let epoch = jiff::Timestamp::now().as_second();
        // A command job's control signs its form body, an HTTP job's its query string.
        let exec = format!("_karajo_epoch={epoch}&_karajo_nonce=exec{users}&id=hello");
        let http = format!("_karajo_epoch={epoch}&_karajo_nonce=http{users}&id=ping");
        let calls = [
            ("/karajo/api/job_exec/pause".to_owned(), exec.clone(), exec),
            (
                format!("/karajo/api/job_http/pause?{http}"),
                String::new(),
                http,
            ),
        ];
        for (uri, body, signed) in calls {
            let sign = crate::auth::sign_hmac_sha256(b"s3cret", signed.as_bytes());
            let mut req = Request::builder()
                .method(Method::POST)
                .uri(&uri)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header("x-karajo-sign", sign)
                .body(Body::from(body))
                .unwrap();
            let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
            req.extensions_mut().insert(ConnectInfo(peer));
            let res = service.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{uri} users={users}");
        }
    }
}

/// A request to `uri` from 127.0.0.1 with `body`, signed with `secret` when given.
fn from_localhost(method: Method, uri: &str, body: String, secret: Option<&str>) -> Request {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(secret) = secret {
        req = req.header(
            "x-karajo-sign",
            crate::auth::sign_hmac_sha256(secret.as_bytes(), body.as_bytes()),
        );
    }
    let mut req = req.body(Body::from(body)).unwrap();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    req
}

async fn error_name(res: axum::response::Response) -> (StatusCode, String) {
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["code"], status.as_u16(), "{body}");
    (status, body["name"].as_str().unwrap_or("").to_string())
}

#[tokio::test]
async fn service_routes_check_the_signature_then_answer_404_for_an_unknown_service() {
    let dir = tempfile::tempdir().unwrap();
    let (state, _scheduler) = build(dir.path(), true);
    let service = app(state);
    let epoch = jiff::Timestamp::now().as_second();
    let mut wrong = Vec::new();
    for (n, action) in ["enable", "disable", "restart", "run_once", "signal"]
        .into_iter()
        .enumerate()
    {
        let uri = format!("/karajo/api/service/{action}");
        let form = |nonce: String, epoch: i64| {
            format!("_karajo_epoch={epoch}&_karajo_nonce={nonce}&id=nope&on=1&signal=HUP")
        };
        let cases = [
            // Signed with the global secret: the service is looked up, 404.
            (
                form(format!("a{n}"), epoch),
                Some("s3cret"),
                404,
                "ERR_SERVICE_NOT_FOUND",
            ),
            // A wrong signature, and a stale stamp: 401 before anything else.
            (form(format!("b{n}"), epoch), Some("wrong"), 401, ""),
            (form(format!("c{n}"), epoch - 3600), Some("s3cret"), 401, ""),
            (form(format!("d{n}"), epoch), None, 401, ""),
        ];
        for (body, secret, code, name) in cases {
            let req = from_localhost(Method::POST, &uri, body.clone(), secret);
            let got = error_name(service.clone().oneshot(req).await.unwrap()).await;
            if got != (StatusCode::from_u16(code).unwrap(), name.to_string()) {
                wrong.push(format!(
                    "{uri} {body} {secret:?}: {got:?}, want {code} {name}"
                ));
            }
        }
    }
    // Pings: the service first (404 with or without a token), never the read rule.
    for uri in [
        "/karajo/api/service/ping/nope",
        "/karajo/api/service/ping/nope?token=t",
    ] {
        for method in [Method::GET, Method::POST] {
            let req = from_localhost(method.clone(), uri, "{}".into(), None);
            let got = error_name(service.clone().oneshot(req).await.unwrap()).await;
            if got != (StatusCode::NOT_FOUND, "ERR_SERVICE_NOT_FOUND".to_string()) {
                wrong.push(format!("{method} {uri}: {got:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A page's status and body, from 127.0.0.1.
async fn page(
    service: &(
         impl tower::Service<
        Request,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
    > + Clone
     ),
    uri: &str,
) -> (StatusCode, String) {
    let req = from_localhost(Method::GET, uri, String::new(), None);
    let res = service.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

/// The navigation of a single node's pages, as it has always been.
const SINGLE_NODE_NAV: &str = r#"<nav aria-label="Main"><a href="/karajo/app/">Jobs</a> <a href="/karajo/app/events" id="nav-events">Events</a></nav>"#;

#[tokio::test]
async fn a_single_node_has_no_cluster_page_banner_or_link() {
    let dir = tempfile::tempdir().unwrap();
    let (state, _scheduler) = build(dir.path(), false);
    let service = app(state);
    let (status, body) = page(&service, "/karajo/app/cluster").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("Cluster mode is off"), "{body}");
    assert!(body.contains("<title>Not Found · table</title>"), "{body}");
    for uri in [
        "/karajo/app/",
        "/karajo/app/job/hello",
        "/karajo/app/events",
        "/karajo/app/cluster",
    ] {
        let (_, body) = page(&service, uri).await;
        assert!(body.contains(SINGLE_NODE_NAV), "{uri}: {body}");
        assert!(
            body.contains("</header>\n<main id=\"main\">"),
            "{uri}: {body}"
        );
        assert!(
            !body.contains("nav-cluster") && !body.contains("banner"),
            "{uri}"
        );
    }
}

/// Puts `state` in cluster mode on an in-memory cluster of `web-1` (this node) and
/// `web-2` (tagged `gpu`), both alive with the same job definitions, `hello` running on
/// `web-2`.
async fn join_cluster(
    state: &mut AppState,
) -> (
    Arc<crate::cluster::memory::MemoryCluster>,
    crate::cluster::memory::MemoryCoordinator,
) {
    use crate::cluster::coordinator::{Coordinator as _, JobCtx};
    use crate::cluster::decide::{JobEvent, JobRecord};
    use crate::cluster::memory::MemoryCluster;
    use crate::cluster::{NodeName, RunOn};
    use crate::job::{JobId, JobKey};

    let cluster = MemoryCluster::new(
        state.clock.clone(),
        std::time::Duration::from_secs(20),
        std::time::Duration::from_secs(2),
        3,
    );
    let this = cluster.join("web-1", &[]);
    cluster.join("web-2", &["gpu"]);
    for name in ["web-1", "web-2"] {
        cluster.update_node(&NodeName::parse(name).unwrap(), |info| {
            info.version = "0.1.0".into();
            info.config_digest = CLUSTER_DIGEST.into();
            info.max_job_running = 2;
        });
    }
    let hello = JobCtx {
        job: JobKey::exec(JobId::from_raw("hello")),
        run_on: RunOn::Any,
        job_digest: "sha256:00".into(),
        seed: JobRecord::seed(0, None, None, false),
    };
    let started = this.transition(&hello, JobEvent::ApiRun).await.unwrap();
    let run = started.record.active.unwrap().run;
    let node = NodeName::parse("web-2").unwrap();
    this.transition(&hello, JobEvent::Accepted { run, node })
        .await
        .unwrap();
    state.cluster = Some(crate::cluster::status::ClusterInfo {
        coordinator: Arc::new(this.clone()),
        config_digest: CLUSTER_DIGEST.into(),
        nats_server: "2.9.10".into(),
        stats: Arc::default(),
    });
    (cluster, this)
}

/// The job definitions' digest of the nodes of [`join_cluster`].
const CLUSTER_DIGEST: &str = "sha256:1234";

#[tokio::test]
async fn in_cluster_mode_the_nodes_page_the_banners_and_the_link_show() {
    use crate::cluster::NodeName;
    use crate::cluster::coordinator::Coordinator as _;

    let dir = tempfile::tempdir().unwrap();
    let (mut state, _scheduler) = build(dir.path(), false);
    let (cluster, this) = join_cluster(&mut state).await;
    let web2 = NodeName::parse("web-2").unwrap();
    let service = app(state);

    let (status, body) = page(&service, "/karajo/app/cluster").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("<title>Cluster · table</title>"), "{body}");
    assert!(
        body.contains(r#"id="nav-cluster">Cluster</a></nav>"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<tr data-node="web-1" class="alive">"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<tr data-node="web-2" class="alive">"#),
        "{body}"
    );
    assert!(
        body.contains(
            r#"<td class="running"><a href="/karajo/app/job/hello/log/1">hello #1</a></td>"#
        ),
        "{body}"
    );
    assert!(!body.contains(CLUSTER_DIGEST), "digests stay off the page");
    assert!(
        !body.contains("banner"),
        "connected, same definitions: {body}"
    );

    // web-2 changes its job definitions, then dies; this node loses its link.
    cluster.update_node(&web2, |info| info.config_digest = "sha256:5678".into());
    let (_, body) = page(&service, "/karajo/app/").await;
    assert!(
        body.contains(r#"id="cluster-drift">node web-2 runs different job definitions</p>"#),
        "{body}"
    );
    cluster.set_alive(&web2, false);
    cluster.set_connected(this.node(), false);
    for uri in [
        "/karajo/app/",
        "/karajo/app/job/hello",
        "/karajo/app/events",
        "/karajo/app/cluster",
    ] {
        let (status, body) = page(&service, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(
            body.contains("id=\"cluster-unreachable\">cluster unreachable since <time datetime=\""),
            "{uri}: {body}"
        );
        assert!(
            body.contains("; cluster jobs are paused on this node</p>"),
            "{uri}"
        );
        assert!(
            !body.contains("cluster-drift"),
            "a dead node does not count: {uri}"
        );
        assert!(body.contains(r#"id="nav-cluster""#), "{uri}");
    }
    let (_, body) = page(&service, "/karajo/app/cluster").await;
    assert!(
        body.contains(r#"<tr data-node="web-2" class="dead">"#),
        "{body}"
    );
    assert!(
        body.contains("has been cut off from the cluster since"),
        "{body}"
    );
    // An error page links the nodes page too.
    let (status, body) = page(&service, "/karajo/app/job/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains(r#"id="nav-cluster""#), "{body}");
}

#[tokio::test]
async fn with_users_the_nodes_page_needs_a_session_and_the_login_page_has_no_banner() {
    use crate::cluster::coordinator::Coordinator as _;

    let dir = tempfile::tempdir().unwrap();
    let (mut state, _scheduler) = build(dir.path(), true);
    let (cluster, this) = join_cluster(&mut state).await;
    cluster.set_connected(this.node(), false);
    let service = app(state);
    let (status, _) = page(&service, "/karajo/app/cluster").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, body) = page(&service, "/karajo/login").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"id="nav-cluster""#), "{body}");
    assert!(!body.contains("banner"), "{body}");
}

/// The JSON of a GET from 127.0.0.1, and its text.
async fn api_json(
    service: &(
         impl tower::Service<
        Request,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
    > + Clone
     ),
    uri: &str,
) -> (serde_json::Value, String) {
    let (status, body) = page(service, uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    (serde_json::from_str(&body).unwrap(), body)
}

#[tokio::test]
async fn in_cluster_mode_job_pages_and_job_objects_show_run_on_and_the_active_run() {
    use crate::cluster::coordinator::{Coordinator as _, JobCtx};
    use crate::cluster::decide::{JobEvent, JobRecord};
    use crate::cluster::{RunOn, contract};
    use crate::job::{JobId, JobKey};

    let dir = tempfile::tempdir().unwrap();
    let (mut state, _scheduler) = build(dir.path(), false);
    let (_cluster, this) = join_cluster(&mut state).await;
    let service = app(state);

    // `hello` runs on web-2; `ping` has no run in progress.
    let (status, body) = page(&service, "/karajo/app/job/hello").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains(r#"<dt>Runs on</dt><dd id="runs-on">any</dd>"#),
        "{body}"
    );
    assert!(
        body.contains(
            r#"<p class="cluster-active" id="cluster-active">Run #1 running on web-2</p>"#
        ),
        "{body}"
    );
    let (_, body) = page(&service, "/karajo/app/job_http/ping").await;
    assert!(body.contains(r#"id="runs-on">any</dd>"#), "{body}");
    assert!(!body.contains("cluster-active"), "{body}");

    let (env, text) = api_json(&service, "/karajo/api/environment").await;
    let hello = &env["data"]["jobs"]["hello"];
    assert_eq!(hello["run_on"], "any", "{text}");
    assert_eq!(hello["active"]["node"], "web-2", "{text}");
    assert_eq!(hello["active"]["state"], "running", "{text}");
    assert!(
        hello["active"]["run"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    assert!(
        hello["active"]["since"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z'))
    );
    // The new fields come after the original's.
    assert!(
        text.contains(r#""run_on":"any","active":{"run":""#),
        "{text}"
    );
    let ping = &env["data"]["http_jobs"]["ping"];
    assert_eq!(ping["run_on"], "any", "{text}");
    assert!(ping.get("active").is_none(), "{text}");

    // A web hook dispatches `ping`: no node has it yet.
    let ctx = JobCtx {
        job: JobKey::http(JobId::from_raw("ping")),
        run_on: RunOn::Any,
        job_digest: "sha256:00".into(),
        seed: JobRecord::seed(0, None, None, false),
    };
    let t = this.transition(&ctx, JobEvent::Webhook).await.unwrap();
    contract::carry_out(&this, &ctx, &t).await.unwrap();
    let (_, body) = page(&service, "/karajo/app/job_http/ping").await;
    assert!(
        body.contains(r#"id="cluster-active">Run #1 dispatched to any "#),
        "{body}"
    );
    assert!(body.contains(" s ago</p>"), "{body}");
    // The environment's cached answer follows the records.
    let (env, text) = api_json(&service, "/karajo/api/environment").await;
    let ping = &env["data"]["http_jobs"]["ping"];
    assert_eq!(ping["active"]["state"], "dispatched", "{text}");
    assert!(ping["active"]["node"].is_null(), "{text}");
    let (one, text) = api_json(&service, "/karajo/api/job_http?id=ping").await;
    assert_eq!(one["data"]["run_on"], "any", "{text}");
    assert_eq!(one["data"]["active"]["state"], "dispatched", "{text}");
    assert_eq!(one["data"]["active"], ping["active"], "{text}");
}

#[tokio::test]
async fn a_single_node_shows_no_run_on_or_active_run() {
    let dir = tempfile::tempdir().unwrap();
    let (state, _scheduler) = build(dir.path(), false);
    let service = app(state);
    for uri in ["/karajo/app/job/hello", "/karajo/app/job_http/ping"] {
        let (status, body) = page(&service, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(
            !body.contains("Runs on") && !body.contains("cluster-active"),
            "{uri}: {body}"
        );
    }
    for uri in ["/karajo/api/environment", "/karajo/api/job_http?id=ping"] {
        let (_, text) = api_json(&service, uri).await;
        assert!(
            !text.contains("run_on") && !text.contains(r#""active""#),
            "{uri}: {text}"
        );
    }
}
