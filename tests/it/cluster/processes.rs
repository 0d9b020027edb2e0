//! Cluster nodes as separate `karajo` processes on one real nats-server (cluster spec
//! 15, the acceptance cases that kill or restart a node): a node killed with SIGKILL
//! while it runs a job has that run failed by the others within seconds; a second
//! process with a live node's name refuses to start; an order pinned to a stopped node
//! runs once when it comes back; and after every node restarts, counters go on.

use std::path::Path;
use std::time::Duration;

use rustix::process::Signal;
use serde_json::Value;

use super::server::NatsServer;
use crate::helpers::*;
use crate::process::{Proc, free_port};

/// A node's directory, port and (while it runs) process.
struct NodeProc {
    name: &'static str,
    dir: TestDir,
    port: u16,
    proc: Option<Proc>,
}

fn node_conf(
    server: &NatsServer,
    name: &str,
    port: u16,
    dispatch_timeout: &str,
    jobs: &str,
) -> String {
    format!(
        "listen_address = 127.0.0.1:{port}\nmin_interval = 1s\n\n[cluster]\nenabled = true\nnode = {name}\n\
         nats_url = {}\nlease_ttl = 3s\ndispatch_ack_wait = 2s\ndispatch_max_deliver = 3\n\
         dispatch_timeout = {dispatch_timeout}\nmisfire_grace = 30s\nop_timeout = 1s\nping_interval = 1s\n\n{jobs}",
        server.url()
    )
}

impl NodeProc {
    fn new(server: &NatsServer, name: &'static str, jobs: &str) -> Self {
        Self::with_timeout(server, name, "20s", jobs)
    }

    /// A node whose orders wait `dispatch_timeout` to be accepted.
    fn with_timeout(
        server: &NatsServer,
        name: &'static str,
        dispatch_timeout: &str,
        jobs: &str,
    ) -> Self {
        let port = free_port();
        let dir = TestDir::new(&node_conf(server, name, port, dispatch_timeout, jobs));
        Self {
            name,
            dir,
            port,
            proc: None,
        }
    }

    async fn start(&mut self) {
        self.proc = Some(Proc::start(&self.dir, self.port).await);
    }

    fn proc(&self) -> &Proc {
        self.proc.as_ref().expect("the node runs")
    }

    async fn get(&self, path: &str) -> Value {
        let p = self.proc();
        p.http
            .get(format!("{}{path}", p.base_url))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json")
    }

    async fn hook(&self, path: &str) -> u16 {
        let p = self.proc();
        let body = epoch_body();
        let sign = karajo::auth::sign_hmac_sha256(SECRET.as_bytes(), body.as_bytes());
        p.http
            .post(format!("{}/karajo/api/job_exec/run{path}", p.base_url))
            .header("X-Karajo-Sign", sign)
            .body(body)
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
    }

    async fn job(&self, id: &str) -> Value {
        self.get("/karajo/api/environment").await["data"]["jobs"][id].clone()
    }

    async fn wait_alive(&self, count: usize) {
        wait_for(
            &format!("{} to see {count} live nodes", self.name),
            || async {
                let view = self.get("/karajo/api/cluster").await;
                let alive = view["data"]["nodes"]
                    .as_array()?
                    .iter()
                    .filter(|n| n["alive"] == true)
                    .count();
                (alive == count).then_some(())
            },
        )
        .await;
    }

    /// The node running `run` (`job.<id>.<counter>`), as this node sees it.
    async fn runner_of(&self, run: &str) -> String {
        wait_for(&format!("{run} to run somewhere"), || async {
            let view = self.get("/karajo/api/cluster").await;
            view["data"]["nodes"].as_array()?.iter().find_map(|n| {
                let running = n["running"].as_array()?;
                running
                    .iter()
                    .any(|r| r == run)
                    .then(|| n["name"].as_str().unwrap_or_default().to_string())
            })
        })
        .await
    }
}

/// Starts `names` as nodes with `jobs` (orders waiting `dispatch_timeout` at most),
/// once every one of them sees all of them alive.
async fn start_nodes(
    server: &NatsServer,
    names: &[&'static str],
    dispatch_timeout: &str,
    jobs: &str,
) -> Vec<NodeProc> {
    let mut nodes: Vec<NodeProc> = names
        .iter()
        .map(|name| NodeProc::with_timeout(server, name, dispatch_timeout, jobs))
        .collect();
    for node in &mut nodes {
        node.start().await;
    }
    for node in &nodes {
        node.wait_alive(names.len()).await;
    }
    nodes
}

fn ran_lines(ran: &Path, job: &str) -> Vec<String> {
    std::fs::read_to_string(ran.join(format!("ran.{job}")))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn jobs(ran: &Path) -> String {
    let rec = |job: &str, before: &str| {
        format!(
            "command = \"{before}echo $KARAJO_NODE $KARAJO_JOB_COUNTER >> {}\"\n",
            ran.join(format!("ran.{job}")).display()
        )
    };
    format!(
        "[job \"long\"]\npath = /long\nkill_grace = 1s\n{}\n[job \"pin3\"]\npath = /pin3\nrun_on = n3\n{}\n[job \"count\"]\npath = /count\n{}\n",
        rec("long", "sleep 30; "),
        rec("pin3", ""),
        rec("count", ""),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_has_its_run_failed_by_the_others_and_a_live_name_cannot_be_taken_twice() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let ran = tempfile::tempdir().unwrap();
    let mut nodes = start_nodes(&server, &["n1", "n2", "n3"], "20s", &jobs(ran.path())).await;
    // C17: a fourth process named n1 exits non-zero, naming the live holder.
    let twin = NodeProc::new(&server, "n1", &jobs(ran.path()));
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin!("karajo"))
        .arg("-config")
        .arg(twin.dir.config_file())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("n1"), "{stderr}");
    assert!(stderr.contains("held by a live node"), "{stderr}");
    // C07: kill -9 the node running `long`; the others fail the run within seconds.
    assert_eq!(nodes[0].hook("/long").await, 200);
    let runner = nodes[0].runner_of("job.long.1").await;
    // Cluster spec 12.2: a job object names its run_on and its run in progress.
    let long = nodes[0].job("long").await;
    assert_eq!(long["run_on"], "any", "{long}");
    assert_eq!(long["active"]["node"], runner.as_str(), "{long}");
    assert_eq!(long["active"]["state"], "running", "{long}");
    assert_eq!(nodes[0].job("pin3").await["run_on"], "n3");
    let at = nodes.iter().position(|n| n.name == runner).unwrap();
    nodes[at].proc().signal(Signal::KILL);
    let _ = nodes[at].proc.take();
    let started = std::time::Instant::now();
    for node in nodes.iter().filter(|n| n.proc.is_some()) {
        wait_for("the lost run to fail", || async {
            (node.job("long").await["status"] == "failed").then_some(())
        })
        .await;
        let log = node.dir.wait_log("long", 1, "failed").await;
        assert!(
            log.contains(&format!("node {runner} stopped answering")),
            "{log}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "failed after {:?}",
        started.elapsed()
    );
    // A new trigger runs on a survivor.
    let survivor = nodes.iter().find(|n| n.proc.is_some()).unwrap();
    assert_eq!(survivor.hook("/count").await, 200);
    survivor.dir.wait_log("count", 1, "success").await;
    assert!(ran_lines(ran.path(), "count")[0] != format!("{runner} 1"));
    for node in &mut nodes {
        if let Some(proc) = node.proc.as_ref() {
            proc.signal(Signal::TERM);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_order_waits_for_its_node_and_counters_go_on_after_every_node_restarts() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let ran = tempfile::tempdir().unwrap();
    let mut nodes = start_nodes(&server, &["n1", "n2", "n3"], "20s", &jobs(ran.path())).await;
    assert_eq!(nodes[0].hook("/count").await, 200);
    nodes[0].dir.wait_log("count", 1, "success").await;
    // C08: n3 stops; an order pinned to it waits and runs once when it is back.
    nodes[2].proc().signal(Signal::TERM);
    let mut n3 = nodes[2].proc.take().unwrap();
    n3.wait_exit().await;
    assert_eq!(nodes[0].hook("/pin3").await, 200);
    for counter in 2..=3 {
        assert_eq!(nodes[1].hook("/count").await, 200);
        nodes[1].dir.wait_log("count", counter, "success").await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(ran_lines(ran.path(), "pin3").is_empty());
    nodes[2].start().await;
    // C16: the node that was away collects the logs of the runs it missed.
    nodes[2].dir.wait_log("count", 2, "success").await;
    nodes[2].dir.wait_log("count", 3, "success").await;
    nodes[0].dir.wait_log("pin3", 1, "success").await;
    nodes[2].dir.wait_log("pin3", 1, "success").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ran_lines(ran.path(), "pin3"), ["n3 1"]);
    // C19: every node stops and starts again; counters go on from the highest.
    for node in &mut nodes {
        node.proc().signal(Signal::TERM);
        let mut proc = node.proc.take().unwrap();
        proc.wait_exit().await;
    }
    for node in &mut nodes {
        node.start().await;
    }
    for node in &nodes {
        node.wait_alive(3).await;
    }
    assert_eq!(nodes[1].hook("/count").await, 200);
    for node in &nodes {
        node.dir.wait_log("count", 4, "success").await;
    }
    let lines = ran_lines(ran.path(), "count");
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines[3].ends_with(" 4"), "{lines:?}");
    for node in &nodes {
        node.proc().signal(Signal::TERM);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_for_a_node_that_stays_down_fails_as_not_accepted_and_never_runs_later() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let ran = tempfile::tempdir().unwrap();
    let mut nodes = start_nodes(&server, &["n1", "n3"], "4s", &jobs(ran.path())).await;
    // C09: n3 stops; its order is given up after dispatch_timeout, and n3, back
    // later, does not run it.
    nodes[1].proc().signal(Signal::TERM);
    let mut n3 = nodes[1].proc.take().unwrap();
    n3.wait_exit().await;
    assert_eq!(nodes[0].hook("/pin3").await, 200);
    let log = nodes[0].dir.wait_log("pin3", 1, "failed").await;
    assert!(log.contains("not accepted by n3 within 4s"), "{log}");
    assert_eq!(nodes[0].job("pin3").await["status"], "failed");
    nodes[1].start().await;
    nodes[1].dir.wait_log("pin3", 1, "failed").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(ran_lines(ran.path(), "pin3").is_empty());
    for node in &nodes {
        node.proc().signal(Signal::TERM);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_completes_the_logs_it_was_copying_and_ends_its_own_lost_runs() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let ran = tempfile::tempdir().unwrap();
    let jobs = |ran: &Path| {
        format!(
            "{}[job \"slow1\"]\npath = /slow1\nrun_on = n1\ncommand = \"echo before; sleep 4; echo after\"\n",
            jobs(ran)
        )
    };
    let mut nodes = start_nodes(&server, &["n1", "n2"], "20s", &jobs(ran.path())).await;
    // n2 restarts while it holds a copy of n1's run in progress: the copy is completed,
    // not closed as failed.
    assert_eq!(nodes[1].hook("/slow1").await, 200);
    nodes[1].dir.wait_log("slow1", 1, "running").await;
    nodes[1].proc().signal(Signal::TERM);
    let mut n2 = nodes[1].proc.take().unwrap();
    n2.wait_exit().await;
    nodes[1].start().await;
    let theirs = nodes[1].dir.wait_log("slow1", 1, "success").await;
    let mine = nodes[0].dir.wait_log("slow1", 1, "success").await;
    assert_eq!(theirs, mine);
    assert!(mine.contains("slow1: after\n"), "{mine}");
    // n1 alone: killed while it runs `long`, started again once its lease is gone; it
    // ends the run it lost itself.
    nodes[1].proc().signal(Signal::TERM);
    let mut n2 = nodes[1].proc.take().unwrap();
    n2.wait_exit().await;
    assert_eq!(nodes[0].hook("/long").await, 200);
    nodes[0].runner_of("job.long.1").await;
    nodes[0].proc().signal(Signal::KILL);
    let _ = nodes[0].proc.take();
    tokio::time::sleep(Duration::from_secs(4)).await;
    nodes[0].start().await;
    let log = nodes[0].dir.wait_log("long", 1, "failed").await;
    assert!(log.contains("node n1 stopped answering"), "{log}");
    wait_for("long to be failed", || async {
        (nodes[0].job("long").await["status"] == "failed").then_some(())
    })
    .await;
    nodes[0].proc().signal(Signal::TERM);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_missed_while_unreachable_is_caught_up_once_after_a_kill_and_restart() {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let ran = tempfile::tempdir().unwrap();
    // One slot a minute, about 20 s from now: missed while the server is down.
    let slot = jiff::Timestamp::now().as_second() + 20;
    let second = slot.rem_euclid(60);
    let jobs = format!(
        "[job \"minute\"]\nschedule = \"{second} * * * * *\"\ncommand = \"echo $KARAJO_NODE $KARAJO_JOB_COUNTER >> {}\"\n",
        ran.path().join("ran.minute").display()
    );
    let mut nodes = start_nodes(&server, &["n1"], "20s", &jobs).await;
    server.stop();
    wait_for("n1 to see the cluster unreachable", || async {
        (nodes[0].get("/karajo/api/cluster").await["data"]["connected"] == false).then_some(())
    })
    .await;
    let until_slot = slot - jiff::Timestamp::now().as_second();
    assert!(
        until_slot > 0,
        "the node started and was cut off before the slot"
    );
    tokio::time::sleep(Duration::from_secs(until_slot.unsigned_abs())).await;
    // Spec 7.2.1 and 9.3: the missed slot is in the state directory, not only in memory.
    let pending = nodes[0]
        .dir
        .base()
        .join("var/lib/karajo/cluster-pending.json");
    let text = wait_for("the missed slot to be kept on disk", || async {
        std::fs::read_to_string(&pending).ok()
    })
    .await;
    assert!(text.contains("\"job.minute\""), "{text}");
    nodes[0].proc().signal(Signal::KILL);
    let _ = nodes[0].proc.take();
    server.start_again();
    nodes[0].start().await;
    // The restarted node catches the slot up once, long before the next one is due.
    nodes[0].dir.wait_log("minute", 1, "success").await;
    wait_for("the pending slot to be settled", || async {
        (!pending.exists()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ran_lines(ran.path(), "minute"), ["n1 1"]);
    let events = nodes[0].get("/karajo/api/cluster/events?limit=50").await;
    assert!(
        events.to_string().contains("catchup"),
        "a catch-up event: {events}"
    );
    nodes[0].proc().signal(Signal::TERM);
}
