//! `karajo cluster init` run as a process (cluster spec 5.3, 12.3) against a real
//! server: it creates every bucket, stream and order consumer (with `--node` and
//! `--tag`), says `exists` for each on a second run and changes nothing, reports a
//! bucket with a different `max_age` and leaves it alone until `--update`, fails within
//! its bound naming the URL when no server answers, and authenticates with a token from
//! the environment or an admin user in place of the node's credentials without ever
//! printing them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use futures_util::StreamExt as _;
use karajo::cluster::nats::layout;

use super::server::NatsServer;

/// The streams every init creates with the default prefix.
const STREAMS: [&str; 6] = [
    "KARAJO_EVENTS",
    "KARAJO_LOGS",
    "KARAJO_RUNS",
    "KV_karajo_claims",
    "KV_karajo_nodes",
    "KV_karajo_state",
];

/// `karajo` with `args` and the environment `env`, run off the async runtime.
async fn karajo(args: &[&str], env: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("karajo");
        cmd.env("NO_COLOR", "1").args(&args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("karajo runs")
    })
    .await
    .expect("join")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A `karajo.conf` in `dir` holding `[cluster]` with `lines`; its path as text.
fn conf(dir: &Path, lines: &str) -> String {
    let path: PathBuf = dir.join("karajo.conf");
    let body = format!("[karajo]\nsecret = s3cret\n\n[cluster]\nenabled = true\n{lines}");
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

/// An unauthenticated JetStream context on `server`.
async fn jetstream(server: &NatsServer) -> jetstream::Context {
    jetstream::new(async_nats::connect(server.url()).await.unwrap())
}

async fn stream_names(js: &jetstream::Context) -> BTreeSet<String> {
    js.stream_names().map(Result::unwrap).collect().await
}

async fn consumer_names(js: &jetstream::Context, stream: &str) -> BTreeSet<String> {
    let stream = js.get_stream(stream).await.unwrap();
    stream.consumer_names().map(Result::unwrap).collect().await
}

async fn stream_config(js: &jetstream::Context, name: &str) -> stream::Config {
    js.get_stream(name)
        .await
        .unwrap()
        .cached_info()
        .config
        .clone()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn init_creates_every_object_and_a_second_run_finds_them() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = conf(
        dir.path(),
        &format!("node = n1\ntag = gpu\nnats_url = {}\n", server.url()),
    );
    let out = karajo(
        &[
            "cluster", "init", "-config", &config, "--node", "n2", "--tag", "ssd",
        ],
        &[],
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let consumers = [
        "run-any",
        "run-tag-gpu",
        "run-tag-ssd",
        "run-node-n1",
        "run-node-n2",
    ];
    let mut expected: Vec<String> = STREAMS
        .iter()
        .map(|s| format!("created stream {s}"))
        .collect();
    expected.extend(
        consumers
            .iter()
            .map(|c| format!("created consumer {c} on KARAJO_RUNS")),
    );
    let mut got: Vec<String> = stdout.lines().map(str::to_string).collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "{stdout}");

    let js = jetstream(&server).await;
    assert_eq!(stream_names(&js).await, set(&STREAMS));
    assert_eq!(consumer_names(&js, "KARAJO_RUNS").await, set(&consumers));
    let mut before = Vec::new();
    for name in STREAMS {
        let info = js.get_stream(name).await.unwrap().cached_info().clone();
        before.push((info.config, info.created));
    }

    let again = karajo(
        &[
            "cluster", "init", "--node", "n2", "--tag", "ssd", "--config", &config,
        ],
        &[],
    )
    .await;
    let stdout = text(&again.stdout);
    assert!(again.status.success(), "{stdout}{}", text(&again.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), STREAMS.len() + consumers.len(), "{stdout}");
    assert!(lines.iter().all(|l| l.starts_with("exists ")), "{stdout}");
    assert!(
        stdout.contains("exists stream KV_karajo_claims\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("exists consumer run-node-n2 on KARAJO_RUNS\n"),
        "{stdout}"
    );
    assert_eq!(stream_names(&js).await, set(&STREAMS));
    assert_eq!(consumer_names(&js, "KARAJO_RUNS").await, set(&consumers));
    for (name, (config, created)) in STREAMS.iter().zip(before) {
        let info = js.get_stream(*name).await.unwrap().cached_info().clone();
        assert_eq!(info.config, config, "{name} unchanged");
        assert_eq!(info.created, created, "{name} not re-created");
    }
}

#[tokio::test]
async fn a_different_max_age_is_reported_and_applied_only_with_update() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let js = jetstream(&server).await;
    let fifteen = Duration::from_secs(15);
    js.create_stream(layout::kv_stream("karajo_nodes", fifteen, 1))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = conf(
        dir.path(),
        &format!("node = n1\nlease_ttl = 3s\nnats_url = {}\n", server.url()),
    );

    let out = karajo(&["-config", &config, "cluster", "init"], &[]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(
            "exists stream KV_karajo_nodes\nstream KV_karajo_nodes has max_age = 15s, karajo wants 3s\n"
        ),
        "{stdout}"
    );
    assert!(stdout.ends_with("run with --update to apply\n"), "{stdout}");
    assert!(!stdout.contains("updated"), "{stdout}");
    assert_eq!(stream_config(&js, "KV_karajo_nodes").await.max_age, fifteen);

    let out = karajo(&["-config", &config, "cluster", "init", "--update"], &[]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(
            "stream KV_karajo_nodes has max_age = 15s, karajo wants 3s\nupdated stream KV_karajo_nodes\n"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("run with --update"), "{stdout}");
    let nodes = stream_config(&js, "KV_karajo_nodes").await;
    assert_eq!(nodes.max_age, Duration::from_secs(3));
    assert!(nodes.duplicate_window <= nodes.max_age, "{nodes:?}");

    let out = karajo(&["-config", &config, "cluster", "init"], &[]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.lines().all(|l| l.starts_with("exists ")),
        "no difference left: {stdout}"
    );
}

#[tokio::test]
async fn no_server_is_a_failure_within_the_bound_naming_the_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let config = conf(dir.path(), &format!("node = n1\nnats_url = {url}\n"));
    let started = Instant::now();
    let out = karajo(&["cluster", "init", "-config", &config], &[]).await;
    let took = started.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(stderr.starts_with("karajo: "), "{stderr}");
    assert!(stderr.contains(&url), "{stderr}");
    assert!(text(&out.stdout).is_empty());
}

#[tokio::test]
async fn a_token_from_the_environment_connects_and_is_never_printed() {
    const TOKEN: &str = "t0ken-init-9f3a1c";
    let dir = tempfile::tempdir().unwrap();
    let server_conf = dir.path().join("server.conf");
    std::fs::write(
        &server_conf,
        format!("authorization {{ token: \"{TOKEN}\" }}\n"),
    )
    .unwrap();
    let Some(server) = NatsServer::start_with_config(Some(&server_conf)) else {
        return;
    };
    let config = conf(
        dir.path(),
        &format!(
            "node = n1\nnats_token = $KARAJO_TEST_NATS_TOKEN\nnats_url = {}\n",
            server.url()
        ),
    );
    let out = karajo(
        &["cluster", "init", "-config", &config],
        &[("KARAJO_TEST_NATS_TOKEN", TOKEN)],
    )
    .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("created stream KARAJO_RUNS\n"), "{stdout}");
    assert!(
        stdout.contains("created consumer run-node-n1 on KARAJO_RUNS\n"),
        "{stdout}"
    );
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN));
}

#[tokio::test]
async fn admin_user_flags_replace_the_node_credentials_and_are_never_printed() {
    const PASSWORD: &str = "adm1n-pw-77c0";
    let dir = tempfile::tempdir().unwrap();
    let server_conf = dir.path().join("server.conf");
    std::fs::write(
        &server_conf,
        format!(
            "authorization {{ users = [ {{ user: \"admin\", password: \"{PASSWORD}\" }} ] }}\n"
        ),
    )
    .unwrap();
    let Some(server) = NatsServer::start_with_config(Some(&server_conf)) else {
        return;
    };
    // The node's own credentials would be refused.
    let config = conf(
        dir.path(),
        &format!(
            "node = n1\nnats_user = n1\nnats_password = wrong\nnats_url = {}\n",
            server.url()
        ),
    );
    let out = karajo(
        &[
            "cluster",
            "init",
            "-config",
            &config,
            "--admin-user",
            "admin",
            "--admin-password-env",
            "KARAJO_TEST_ADMIN_PW",
        ],
        &[("KARAJO_TEST_ADMIN_PW", PASSWORD)],
    )
    .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("created stream KV_karajo_state\n"),
        "{stdout}"
    );
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));

    let out = karajo(
        &[
            "cluster",
            "init",
            "-config",
            &config,
            "--admin-user",
            "admin",
            "--admin-password-env",
            "KARAJO_TEST_UNSET_PW",
        ],
        &[],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("KARAJO_TEST_UNSET_PW"), "{stderr}");
}
