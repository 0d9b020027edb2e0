//! Three karajo daemons on one real nats-server (cluster spec 15, the acceptance
//! cases C01–C14 that run in one process): they see each other, a timer fires once in
//! the cluster with counters without gaps, runs go to the node, tag or every node that
//! `run_on` names, triggers on any node share one queue, pause and cancel reach every
//! node, every log is on every node, the metrics and `karajo cluster status` show the
//! nodes, and while NATS is down cluster jobs pause (503) and local jobs go on.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::server::NatsServer;
use crate::helpers::*;

/// One node: its directory and its daemon.
struct Node {
    dir: TestDir,
    daemon: TestDaemon,
}

/// A cluster of nodes on one server, and the files the jobs write where they ran.
struct Cluster {
    server: NatsServer,
    ran: tempfile::TempDir,
    nodes: Vec<Node>,
}

/// `echo "$KARAJO_NODE $KARAJO_JOB_COUNTER" >> <ran>/ran.<job>` after `then`.
fn recording(ran: &Path, job: &str, then: &str) -> String {
    let file = ran.join(format!("ran.{job}"));
    format!(
        "command = \"{then}echo $KARAJO_NODE $KARAJO_JOB_COUNTER >> {}\"\n",
        file.display()
    )
}

impl Cluster {
    /// `names` as nodes, each `(name, tags)`, with the same `jobs` (in which `RAN` is
    /// replaced by the directory of the `ran.<job>` files).
    async fn start(names: &[(&str, &str)], jobs: &dyn Fn(&Path) -> String) -> Option<Self> {
        Self::start_each(names, &|ran, _| jobs(ran)).await
    }

    /// As [`Cluster::start`], with each node's jobs from `jobs(ran, node)`.
    async fn start_each(
        names: &[(&str, &str)],
        jobs: &dyn Fn(&Path, &str) -> String,
    ) -> Option<Self> {
        let server = NatsServer::start()?;
        Some(Self::start_on(server, names, jobs, &|_| String::new()).await)
    }

    /// As [`Cluster::start_each`] on `server`, with `cluster_keys(node)` added to each
    /// node's `[cluster]` section.
    async fn start_on(
        server: NatsServer,
        names: &[(&str, &str)],
        jobs: &dyn Fn(&Path, &str) -> String,
        cluster_keys: &dyn Fn(&str) -> String,
    ) -> Self {
        let ran = tempfile::tempdir().unwrap();
        let mut cluster = Self {
            server,
            ran,
            nodes: Vec::new(),
        };
        for (name, tags) in names {
            let keys = format!("{}{}", cluster_keys(name), jobs(cluster.ran.path(), name));
            let node = cluster.start_node(name, tags, &keys).await;
            cluster.nodes.push(node);
        }
        for node in &cluster.nodes {
            node.wait_cluster(|c| alive(c).len() == names.len()).await;
        }
        cluster
    }

    /// Starts node `name`; `jobs` follows its `[cluster]` keys (and may add to them).
    async fn start_node(&self, name: &str, tags: &str, jobs: &str) -> Node {
        let tag_line = if tags.is_empty() {
            String::new()
        } else {
            format!("tag = {tags}\n")
        };
        let conf = format!(
            "min_interval = 1s\n\n[cluster]\nenabled = true\nnode = {name}\n{tag_line}nats_url = {}\n\
             lease_ttl = 3s\ndispatch_ack_wait = 2s\ndispatch_max_deliver = 3\ndispatch_timeout = 20s\n\
             misfire_grace = 30s\nop_timeout = 1s\nping_interval = 1s\n{jobs}",
            self.server.url()
        );
        let dir = TestDir::new(&conf);
        let daemon = TestDaemon::start(&dir).await;
        Node { dir, daemon }
    }

    fn ran(&self, job: &str) -> Vec<(String, u64)> {
        std::fs::read_to_string(self.ran.path().join(format!("ran.{job}")))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let (node, counter) = line.split_once(' ')?;
                Some((node.to_string(), counter.parse().ok()?))
            })
            .collect()
    }

    async fn wait_ran(&self, job: &str, lines: usize) -> Vec<(String, u64)> {
        wait_for(&format!("{lines} runs of {job}"), || async {
            let ran = self.ran(job);
            (ran.len() >= lines).then_some(ran)
        })
        .await
    }

    /// Waits until every node holds `<job>.<counter>.<status>`; returns the contents.
    async fn wait_log_everywhere(&self, job: &str, counter: u64, status: &str) -> Vec<String> {
        let mut contents = Vec::new();
        for node in &self.nodes {
            contents.push(node.dir.wait_log(job, counter, status).await);
        }
        contents
    }

    async fn stop(self) {
        for node in self.nodes {
            node.daemon.stop().await;
        }
    }
}

impl Node {
    async fn cluster(&self) -> Value {
        let res = self
            .daemon
            .http
            .get(self.daemon.url("/karajo/api/cluster"))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.expect("json")["data"].clone()
    }

    async fn wait_cluster(&self, done: impl Fn(&Value) -> bool) -> Value {
        wait_for("the cluster view", || async {
            let view = self.cluster().await;
            done(&view).then_some(view)
        })
        .await
    }
}

fn alive(cluster: &Value) -> Vec<String> {
    cluster["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["alive"] == true)
        .filter_map(|n| n["name"].as_str().map(str::to_string))
        .collect()
}

fn three() -> [(&'static str, &'static str); 3] {
    [("n1", "gpu"), ("n2", ""), ("n3", "gpu")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_see_each_other_and_runs_go_where_run_on_says_with_every_log_on_every_node() {
    let jobs = |ran: &Path| {
        format!(
            "[job \"pin\"]\npath = /pin\nrun_on = n2\n{}\n\
             [job \"fan\"]\npath = /fan\nrun_on = all\n{}\n\
             [job \"gpu\"]\npath = /gpu\nrun_on = tag:gpu\n{}\n\
             [job \"big\"]\npath = /big\nrun_on = n3\ncommand = seq 10000\n",
            recording(ran, "pin", "seq 3; "),
            recording(ran, "fan", ""),
            recording(ran, "gpu", ""),
        )
    };
    let Some(cluster) = Cluster::start(&three(), &jobs).await else {
        return;
    };
    // C01: every node sees all three alive, connected, with the same definitions.
    for node in &cluster.nodes {
        let view = node.cluster().await;
        assert_eq!(view["connected"], true, "{view}");
        assert_eq!(alive(&view), ["n1", "n2", "n3"], "{view}");
        for n in view["nodes"].as_array().unwrap() {
            assert_eq!(n["digest_matches"], true, "{view}");
        }
    }
    // C04: a webhook to n1 for a job pinned to n2 runs on n2; its log is everywhere.
    let n1 = &cluster.nodes[0].daemon;
    let res = n1.run_hook("/pin", &epoch_body()).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let logs = cluster.wait_log_everywhere("pin", 1, "success").await;
    assert_eq!(cluster.ran("pin"), [("n2".to_string(), 1)]);
    assert!(logs[0].contains("job: pin: 3\n"), "{}", logs[0]);
    assert!(logs[0].contains("job: pin: === NODE: n2\n"), "{}", logs[0]);
    assert!(
        logs.iter().all(|l| *l == logs[0]),
        "identical logs: {logs:?}"
    );
    let n3 = &cluster.nodes[2].daemon;
    let log: Value = n3
        .http
        .get(n3.url("/karajo/api/job_exec/log?id=pin&counter=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log["data"]["status"], "success", "{log}");
    let page = n3
        .http
        .get(n3.url("/karajo/app/job/pin/log/1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<dt>Ran on</dt><dd id=\"run-node\">n2</dd>"),
        "{page}"
    );
    // C05: one webhook to n3 for run_on = all runs once on every node.
    let res = n3.run_hook("/fan", &epoch_body()).await;
    assert_eq!(res.status(), 200);
    let mut fan = cluster.wait_ran("fan", 3).await;
    fan.sort();
    let nodes: Vec<&str> = fan.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(nodes, ["n1", "n2", "n3"], "{fan:?}");
    let mut counters: Vec<u64> = fan.iter().map(|(_, c)| *c).collect();
    counters.sort();
    assert_eq!(counters, [1, 2, 3]);
    for counter in 1..=3 {
        cluster.wait_log_everywhere("fan", counter, "success").await;
    }
    // C06: tag:gpu runs only on n1 and n3.
    for i in 1..=6 {
        let res = cluster.nodes[i % 3]
            .daemon
            .run_hook("/gpu", &epoch_body())
            .await;
        assert_eq!(res.status(), 200);
        cluster.wait_ran("gpu", i).await;
        cluster
            .wait_log_everywhere("gpu", i as u64, "success")
            .await;
    }
    for (node, _) in cluster.ran("gpu") {
        assert!(node == "n1" || node == "n3", "{node} is not tagged gpu");
    }
    // C15: 10,000 lines of output arrive byte for byte on every node.
    let res = n1.run_hook("/big", &epoch_body()).await;
    assert_eq!(res.status(), 200);
    let logs = cluster.wait_log_everywhere("big", 1, "success").await;
    assert!(
        logs[0].contains("job: big: 10000\n"),
        "{}",
        &logs[0][logs[0].len().saturating_sub(300)..]
    );
    assert!(logs.iter().all(|l| *l == logs[0]), "identical logs");
    // Spec 11.1 and 12.3: the metrics and `karajo cluster status` show the three nodes.
    let metrics = n1
        .http
        .get(n1.url("/karajo/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "\nkarajo_cluster_connected 1\n".to_string(),
        "\nkarajo_cluster_nodes_alive 3\n".to_string(),
        "\nkarajo_cluster_claims_total{result=\"won\"} ".to_string(),
    ]
    .into_iter()
    .chain(["n1", "n2", "n3"].map(|node| {
        format!(
            "\nkarajo_cluster_node_info{{node=\"{node}\",version=\"{}\",nats_server=\"",
            env!("CARGO_PKG_VERSION")
        )
    })) {
        assert!(metrics.contains(&line), "missing {line}\n{metrics}");
    }
    let server = n1.url("");
    let status = tokio::task::spawn_blocking(move || {
        assert_cmd::cargo::cargo_bin_cmd!("karajo")
            .env_remove("KARAJO_SECRET")
            .args(["cluster", "status", "--server", &server])
            .output()
            .expect("karajo runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        stdout.starts_with("node:     n1\ncluster:  connected since "),
        "{stdout}"
    );
    for node in ["n1", "n2", "n3"] {
        assert!(
            stdout
                .lines()
                .any(|line| line.starts_with(&format!("{node} "))
                    && line.contains(" alive (")
                    && line.contains(" ✓ ")),
            "{node}: {stdout}"
        );
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_fires_once_in_the_cluster_with_counters_one_to_n_on_several_nodes() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("karajo=debug")
        .with_test_writer()
        .try_init();
    let jobs = |ran: &Path| {
        format!(
            "[job \"tick\"]\ninterval = 1s\n{}\n",
            recording(ran, "tick", "")
        )
    };
    let Some(cluster) = Cluster::start(&three(), &jobs).await else {
        return;
    };
    tokio::time::sleep(Duration::from_secs(12)).await;
    let ran = cluster.ran("tick");
    assert!(
        ran.len() >= 5,
        "a 1 s interval ran {} times in 12 s: {ran:?}",
        ran.len()
    );
    let counters: Vec<u64> = ran.iter().map(|(_, c)| *c).collect();
    let expected: Vec<u64> = (1..=ran.len() as u64).collect();
    assert_eq!(
        counters, expected,
        "one run per slot, no gaps or duplicates: {ran:?}"
    );
    let mut nodes: Vec<&str> = ran.iter().map(|(n, _)| n.as_str()).collect();
    nodes.sort();
    nodes.dedup();
    assert!(nodes.len() >= 2, "runs spread over nodes: {ran:?}");
    let last = counters.len() as u64;
    cluster.wait_log_everywhere("tick", last, "success").await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_on_three_nodes_share_one_queue_and_pause_and_cancel_reach_every_node() {
    let jobs = |ran: &Path| {
        format!(
            "[job \"slow\"]\npath = /slow\n{}\n[job \"long\"]\npath = /long\nkill_grace = 1s\n{}\n\
             [job \"tick\"]\ninterval = 1s\n{}\n",
            recording(ran, "slow", "sleep 2; "),
            recording(ran, "long", "sleep 60; "),
            recording(ran, "tick", ""),
        )
    };
    let Some(cluster) = Cluster::start(&three(), &jobs).await else {
        return;
    };
    // C10: three quick triggers through three nodes: 200, 200, 429, and two runs.
    let mut codes = Vec::new();
    for node in &cluster.nodes {
        codes.push(
            node.daemon
                .run_hook("/slow", &epoch_body())
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(codes, [200, 200, 429]);
    cluster.wait_ran("slow", 2).await;
    cluster.wait_log_everywhere("slow", 2, "success").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(cluster.ran("slow").len(), 2);
    // C11: a pause through n1 answers 412 to a web hook through n2, on every node.
    let res = cluster.nodes[0].daemon.api_form("pause", "slow").await;
    assert_eq!(res.status(), 200);
    for node in &cluster.nodes {
        node.daemon.wait_status("slow", "paused").await;
    }
    let res = cluster.nodes[1]
        .daemon
        .run_hook("/slow", &epoch_body())
        .await;
    assert_eq!(res.status(), 412);
    let res = cluster.nodes[2].daemon.api_form("resume", "slow").await;
    assert_eq!(res.status(), 200);
    let res = cluster.nodes[1]
        .daemon
        .run_hook("/slow", &epoch_body())
        .await;
    assert_eq!(res.status(), 200);
    cluster.wait_log_everywhere("slow", 3, "success").await;
    // C11 for a timer: paused through n1, its ticks become paused executions, with an
    // empty `tick.<k>.paused` on every node; resumed through n3, it runs again.
    cluster.wait_ran("tick", 1).await;
    let res = cluster.nodes[0].daemon.api_form("pause", "tick").await;
    assert_eq!(res.status(), 200);
    let paused = wait_for("a paused tick", || async {
        let names = cluster.nodes[0].dir.log_names("tick");
        names
            .iter()
            .find(|n| n.ends_with(".paused"))
            .and_then(|n| n.split('.').nth(1)?.parse::<u64>().ok())
    })
    .await;
    let logs = cluster.wait_log_everywhere("tick", paused, "paused").await;
    assert!(logs.iter().all(String::is_empty), "{logs:?}");
    let ran_before = cluster.ran("tick").len();
    let res = cluster.nodes[2].daemon.api_form("resume", "tick").await;
    assert_eq!(res.status(), 200);
    cluster.wait_ran("tick", ran_before + 1).await;
    let counters: Vec<u64> = cluster.ran("tick").iter().map(|(_, c)| *c).collect();
    assert!(
        !counters.contains(&paused),
        "a paused execution runs nothing: {counters:?}"
    );
    // C12: a cancel through another node than the one running it.
    let res = cluster.nodes[0]
        .daemon
        .run_hook("/long", &epoch_body())
        .await;
    assert_eq!(res.status(), 200);
    let runner = wait_for("long to run somewhere", || async {
        let view = cluster.nodes[0].cluster().await;
        let nodes = view["nodes"].as_array()?.clone();
        nodes.iter().position(|n| {
            n["running"]
                .as_array()
                .is_some_and(|r| r.iter().any(|run| run == "job.long.1"))
        })
    })
    .await;
    let other = &cluster.nodes[(runner + 1) % 3].daemon;
    let res = other.api_form("cancel", "long").await;
    assert_eq!(res.status(), 200);
    let logs = cluster.wait_log_everywhere("long", 1, "canceled").await;
    assert!(logs.iter().all(|l| *l == logs[0]), "{logs:?}");
    for node in &cluster.nodes {
        node.daemon.wait_status("long", "canceled").await;
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nats_cluster_jobs_pause_with_503_local_jobs_go_on_and_counters_stay_unique() {
    let jobs = |ran: &Path| {
        format!(
            "[job \"tick\"]\npath = /tick\ninterval = 1s\n{}\n[job \"loc\"]\ninterval = 1s\nrun_on = local\ncommand = true\n",
            recording(ran, "tick", ""),
        )
    };
    let names = [("n1", ""), ("n2", "")];
    let Some(mut cluster) = Cluster::start(&names, &jobs).await else {
        return;
    };
    cluster.wait_ran("tick", 2).await;
    cluster.server.stop();
    for node in &cluster.nodes {
        node.wait_cluster(|c| c["connected"] == false).await;
    }
    let before = cluster.ran("tick").len();
    let loc_before: Vec<usize> = cluster
        .nodes
        .iter()
        .map(|n| n.dir.log_names("loc").len())
        .collect();
    let res = cluster.nodes[0]
        .daemon
        .run_hook("/tick", &epoch_body())
        .await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "5");
    tokio::time::sleep(Duration::from_secs(4)).await;
    // A run going at the cut may still end; nothing new starts.
    assert!(
        cluster.ran("tick").len() <= before + 1,
        "{:?}",
        cluster.ran("tick")
    );
    for (node, before) in cluster.nodes.iter().zip(loc_before) {
        assert!(node.dir.log_names("loc").len() > before, "local jobs go on");
    }
    cluster.server.start_again();
    for node in &cluster.nodes {
        node.wait_cluster(|c| c["connected"] == true).await;
    }
    let after = cluster.ran("tick").len();
    cluster.wait_ran("tick", after + 3).await;
    let counters: Vec<u64> = cluster.ran("tick").iter().map(|(_, c)| *c).collect();
    let mut unique = counters.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        counters.len(),
        "no counter twice: {counters:?}"
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_definition_is_flagged_and_refuses_to_run_it() {
    let jobs = |_: &Path, node: &str| {
        let command = if node == "n2" {
            "echo changed"
        } else {
            "echo same"
        };
        format!("[job \"pin2\"]\npath = /pin2\nrun_on = n2\ncommand = {command}\n")
    };
    let Some(cluster) = Cluster::start_each(&[("n1", ""), ("n2", "")], &jobs).await else {
        return;
    };
    // C18: every node sees that n2's definitions differ from its own.
    let view = cluster.nodes[0].cluster().await;
    let matches: Vec<(String, bool)> = view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_string(),
                n["digest_matches"] == true,
            )
        })
        .collect();
    assert_eq!(
        matches,
        [("n1".to_string(), true), ("n2".to_string(), false)]
    );
    // A run that reaches n2 fails there, saying why, and runs nothing.
    let res = cluster.nodes[0]
        .daemon
        .run_hook("/pin2", &epoch_body())
        .await;
    assert_eq!(res.status(), 200);
    let logs = cluster.wait_log_everywhere("pin2", 1, "failed").await;
    assert!(
        logs[0].contains("definition of job pin2 differs on node n2"),
        "{}",
        logs[0]
    );
    assert!(
        !logs[1].contains("changed") && !logs[1].contains("same\n"),
        "{}",
        logs[1]
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_their_own_nkeys_and_the_permission_template_run_timers_and_pinned_hooks() {
    use karajo::cluster::NodeName;
    use karajo::cluster::nats::layout::Names;
    use karajo::cluster::nats::permissions::user_entry;
    let dir = tempfile::tempdir().unwrap();
    let names = Names::new("karajo");
    let admin = nkeys::KeyPair::new_user();
    let nodes = [("n1", "gpu"), ("n2", ""), ("n3", "gpu")];
    let mut users = format!("{{ nkey: {} }}\n", admin.public_key());
    let mut seeds = std::collections::BTreeMap::new();
    for (node, tags) in nodes {
        let key = nkeys::KeyPair::new_user();
        let tags: Vec<String> = tags.split_whitespace().map(str::to_string).collect();
        let name = NodeName::parse(node).unwrap();
        users.push_str(&user_entry(&names, &name, &tags, Some(&key.public_key())));
        let seed = dir.path().join(format!("{node}.seed"));
        std::fs::write(&seed, format!("{}\n", key.seed().unwrap())).unwrap();
        seeds.insert(node.to_string(), seed);
    }
    let conf = dir.path().join("auth.conf");
    std::fs::write(
        &conf,
        format!("authorization {{\n  users = [\n{users}  ]\n}}\n"),
    )
    .unwrap();
    let Some(server) = NatsServer::start_with_config(Some(&conf)) else {
        return;
    };
    // The administrator prepares the buckets, streams and consumers (cluster init).
    let mut settings = super::kv::settings(&server, "n1");
    let admin_seed = dir.path().join("admin.seed");
    std::fs::write(&admin_seed, format!("{}\n", admin.seed().unwrap())).unwrap();
    settings.auth = karajo::cluster::NatsAuth::NkeySeed(admin_seed);
    let admin_link = super::kv::link(&settings).await;
    for (node, tags) in nodes {
        settings.node = NodeName::parse(node).unwrap();
        settings.tags = tags.split_whitespace().map(str::to_string).collect();
        karajo::cluster::nats::provision::provision(admin_link.jetstream(), &names, &settings)
            .await
            .unwrap();
    }
    let jobs = |ran: &Path, _: &str| {
        format!(
            "\n[job \"tick\"]\ninterval = 1s\n{}\n[job \"pin\"]\npath = /pin\nrun_on = n2\n{}\n",
            recording(ran, "tick", ""),
            recording(ran, "pin", ""),
        )
    };
    let keys = |node: &str| {
        format!(
            "provision = false\nnats_nkey_seed = {}\n",
            seeds[node].display()
        )
    };
    let cluster = Cluster::start_on(server, &nodes, &jobs, &keys).await;
    // C22: C02 and C04 pass unchanged.
    let res = cluster.nodes[0]
        .daemon
        .run_hook("/pin", &epoch_body())
        .await;
    assert_eq!(res.status(), 200);
    cluster.wait_log_everywhere("pin", 1, "success").await;
    assert_eq!(cluster.ran("pin"), [("n2".to_string(), 1)]);
    let ticks = cluster.wait_ran("tick", 4).await;
    let counters: Vec<u64> = ticks.iter().map(|(_, c)| *c).collect();
    assert_eq!(counters, (1..=ticks.len() as u64).collect::<Vec<_>>());
    cluster.wait_log_everywhere("tick", 3, "success").await;
    // Each node may publish its own events, and read everyone's.
    let n3 = &cluster.nodes[2].daemon;
    wait_for("every node's join event", || async {
        let res: Value = n3
            .http
            .get(n3.url("/karajo/api/cluster/events"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let joined: Vec<&str> = res["data"]
            .as_array()?
            .iter()
            .filter(|e| e["type"] == "join")
            .filter_map(|e| e["node"].as_str())
            .collect();
        (joined.len() == 3).then_some(())
    })
    .await;
    cluster.stop().await;
}
