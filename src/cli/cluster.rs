//! `karajo cluster ...`: cluster mode's operator commands. `permissions --node N` prints
//! the `nats-server.conf` user entry that node N needs and no more (cluster spec 10.2).
//! `init` (cluster spec 5.3, 12.3) connects with the `[cluster]` settings of the
//! configuration, usually as a separate admin identity, creates the buckets, streams
//! and order consumers that are missing, reports those whose settings differ, and with
//! `--update` applies the differences; one line per object. `status` (cluster spec
//! 12.3) reads `GET /karajo/api/cluster` of the local daemon with the same client and
//! options as `karajo job ...` and prints this node's link and a table of the nodes it
//! knows. The NATS work itself is in [`crate::cluster::nats`]; this module reads the
//! arguments and writes the lines.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, Subcommand};
use jiff::Timestamp;

use super::CliError;
use super::jobs::{ServerArgs, field, or_dash, print_json, show_time, write_all};
use crate::client::{ClientError, ClusterStatus, NodeStatus};
use crate::cluster::nats::connect::{ConnEvent, connect};
use crate::cluster::nats::layout::{self, Names};
use crate::cluster::nats::permissions::user_entry;
use crate::cluster::nats::provision::{Ensured, ensure_consumer, ensure_stream, wanted_streams};
use crate::cluster::{ClusterSettings, NatsAuth, NodeName};

/// How long `init` waits for a NATS server to answer before it gives up.
pub const CONNECT_WITHIN: Duration = Duration::from_secs(10);

/// `karajo cluster ...`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Print the NATS permissions of one node, as a nats-server.conf user entry.
    Permissions {
        /// The node's name (`[cluster] node`).
        #[arg(long)]
        node: String,
        /// A tag of the node (`[cluster] tag`); repeat for more.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// `[cluster] prefix`.
        #[arg(long, default_value = crate::cluster::DEFAULT_PREFIX)]
        prefix: String,
        /// The node's public nkey (`U…`); a placeholder when absent.
        #[arg(long)]
        nkey: Option<String>,
    },
    /// Create the cluster's buckets, streams and order consumers that are missing, and
    /// report (with --update: apply) settings that differ from the configuration.
    Init(InitArgs),
    /// Print the local daemon's link to the cluster and every node it knows (from its
    /// API, so the daemon must run in cluster mode).
    Status {
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// `karajo cluster init`: what to create, and as whom.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The configuration whose `[cluster]` section is used (the global `--config`).
    #[arg(from_global)]
    pub config: PathBuf,
    /// Apply the settings that differ from the configuration to existing objects.
    #[arg(long)]
    pub update: bool,
    /// Connect with this `.creds` file instead of the node's credentials.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["admin_nkey_seed", "admin_user"])]
    pub admin_creds: Option<PathBuf>,
    /// Connect with the nkey user seed in this file instead of the node's credentials.
    #[arg(long, value_name = "FILE", conflicts_with = "admin_user")]
    pub admin_nkey_seed: Option<PathBuf>,
    /// Connect as this user instead of with the node's credentials (the password comes
    /// from --admin-password-env).
    #[arg(long, value_name = "USER", requires = "admin_password_env")]
    pub admin_user: Option<String>,
    /// The environment variable that holds the password of --admin-user.
    #[arg(long, value_name = "VAR", requires = "admin_user")]
    pub admin_password_env: Option<String>,
    /// Also create the order consumer of this node (`run-node-<N>`); repeat for more.
    /// The configuration's own node is always included.
    #[arg(
        long = "node",
        alias = "nodes",
        value_name = "N",
        value_delimiter = ','
    )]
    pub nodes: Vec<String>,
    /// Also create the order consumer of this tag (`run-tag-<T>`); repeat for more. The
    /// configuration's own tags are always included.
    #[arg(long = "tag", value_name = "T", value_delimiter = ',')]
    pub tags: Vec<String>,
}

/// Runs a `karajo cluster` subcommand.
pub fn run_cluster(command: &ClusterCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        ClusterCommand::Permissions {
            node,
            tags,
            prefix,
            nkey,
        } => {
            let node = NodeName::parse(node).map_err(CliError::Usage)?;
            for tag in tags {
                crate::cluster::check_tag(tag).map_err(CliError::Usage)?;
            }
            let entry = user_entry(&Names::new(prefix), &node, tags, nkey.as_deref());
            out.write_all(entry.as_bytes()).map_err(CliError::output)
        }
        ClusterCommand::Init(args) => {
            let settings = init_settings(args, &|name| std::env::var(name).ok())?;
            super::block_on(init(&settings, args.update, out)).map(drop)
        }
        ClusterCommand::Status { server } => super::block_on(status(server, out)).map(drop),
    }
}

/// Reads the daemon's cluster status and prints it (as JSON with `--json`). A daemon
/// that cannot be reached, or that is not in cluster mode, is an error that says so.
async fn status(server: &ServerArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let daemon = crate::redact::url(&server.server).into_owned();
    let unreachable = |err: CliError| match err {
        CliError::Client(ClientError::Http { source, .. }) => failed(format!(
            "cannot reach the karajo daemon at {daemon}: {}",
            crate::exec::http::error_chain(&source.without_url())
        )),
        other => other,
    };
    let client = server.reader().await.map_err(unreachable)?;
    let status = client.cluster().await.map_err(|err| {
        if err.code() == Some(404) {
            failed(format!(
                "cluster mode is off on the karajo daemon at {daemon} ([cluster] enabled = false)"
            ))
        } else {
            unreachable(err.into())
        }
    })?;
    if server.json {
        print_json(out, &status)
    } else {
        write_all(out, format_status(&status, Timestamp::now()).as_bytes())
    }
}

/// The cluster as `karajo cluster status` prints it at `now`: this node and its link,
/// then one row per node (name, tags, alive or dead with the age of its last
/// heartbeat, version, ✓ or ✗ for its job definitions against this node's, its runs).
pub fn format_status(status: &ClusterStatus, now: Timestamp) -> String {
    let link = if status.connected {
        "connected"
    } else {
        "disconnected"
    };
    let mut text = [
        field("node", status.node.as_str()),
        field(
            "cluster",
            &format!(
                "{link} since {} ({})",
                show_time(Some(status.since)),
                age(status.since, now)
            ),
        ),
        field("nats", or_dash(&status.nats_server)),
        "\n".to_string(),
    ]
    .concat();
    let header = ["NODE", "TAGS", "STATE", "VERSION", "DIGEST", "RUNNING"].map(String::from);
    let rows: Vec<[String; 6]> = std::iter::once(header)
        .chain(status.nodes.iter().map(|node| node_row(node, now)))
        .collect();
    let mut widths = [0; 6];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (width, cell) in widths.iter().zip(row) {
            line.push_str(&format!("{cell:<width$}  "));
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// One node's cells in the `status` table.
fn node_row(node: &NodeStatus, now: Timestamp) -> [String; 6] {
    let state = match (node.alive, node.last_seen) {
        (true, Some(seen)) => format!("alive ({})", age(seen, now)),
        (false, Some(seen)) => format!("dead ({})", age(seen, now)),
        (true, None) => "alive".to_string(),
        (false, None) => "dead (never seen)".to_string(),
    };
    let digest = if node.config_digest.is_empty() {
        "?"
    } else if node.digest_matches {
        "✓"
    } else {
        "✗"
    };
    let list = |items: &[String], separator: &str| {
        if items.is_empty() {
            "-".to_string()
        } else {
            items.join(separator)
        }
    };
    [
        node.name.as_str().to_string(),
        list(&node.tags, ","),
        state,
        or_dash(&node.version).to_string(),
        digest.to_string(),
        list(&node.running, " "),
    ]
}

/// How long before `now` `at` was, in whole seconds: `12s ago`, `1h5m ago` (`0s ago`
/// for a time ahead of `now`, another node's clock being ahead).
fn age(at: Timestamp, now: Timestamp) -> String {
    let seconds = u64::try_from(now.duration_since(at).as_secs()).unwrap_or(0);
    format!(
        "{} ago",
        super::short_duration(Duration::from_secs(seconds))
    )
}

/// A failure of the NATS work or of the call to the daemon, as the command line
/// reports it (`karajo: <message>`).
/// The messages name objects and URLs without their user info, never a credential.
fn failed(message: impl std::fmt::Display) -> CliError {
    CliError::Usage(message.to_string())
}

/// The `[cluster]` settings of `args.config`, with the admin credentials of `args` in
/// place of the node's, and the extra `--node` and `--tag` names checked. `env` reads
/// the environment (the password of `--admin-user`).
fn init_settings(
    args: &InitArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<InitSettings, CliError> {
    let mut cluster = crate::config::load_cluster(&args.config).map_err(failed)?;
    if let Some(creds) = &args.admin_creds {
        cluster.auth = NatsAuth::Creds(creds.clone());
    } else if let Some(seed) = &args.admin_nkey_seed {
        cluster.auth = NatsAuth::NkeySeed(seed.clone());
    } else if let (Some(user), Some(var)) = (&args.admin_user, &args.admin_password_env) {
        let password = env(var).filter(|p| !p.is_empty()).ok_or_else(|| {
            failed(format!(
                "the environment variable {var} (--admin-password-env) is not set or empty"
            ))
        })?;
        cluster.auth = NatsAuth::UserPassword {
            user: user.clone(),
            password,
        };
    }
    let mut nodes = vec![cluster.node.clone()];
    for node in &args.nodes {
        let node = NodeName::parse(node).map_err(CliError::Usage)?;
        if !nodes.contains(&node) {
            nodes.push(node);
        }
    }
    let mut tags = cluster.tags.clone();
    for tag in &args.tags {
        crate::cluster::check_tag(tag).map_err(CliError::Usage)?;
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    Ok(InitSettings {
        cluster,
        nodes,
        tags,
    })
}

/// What `init` works with: the cluster settings (with the identity to connect as) and
/// every node and tag whose order consumer it creates.
#[derive(Debug, Clone)]
struct InitSettings {
    /// `[cluster]`, with the admin credentials in place of the node's when given.
    pub cluster: ClusterSettings,
    /// The nodes: the configuration's own first, then each `--node`.
    pub nodes: Vec<NodeName>,
    /// The tags: the configuration's own, then each `--tag`.
    pub tags: Vec<String>,
}

/// The order consumers `init` creates: `run-any`, one per tag, one per node.
fn wanted_consumers(
    names: &Names,
    init: &InitSettings,
) -> Vec<async_nats::jetstream::consumer::pull::Config> {
    let settings = &init.cluster;
    let mut consumers = vec![layout::order_consumer(
        Names::ANY_CONSUMER,
        &names.any_orders(),
        settings,
    )];
    consumers.extend(init.tags.iter().map(|tag| {
        layout::order_consumer(&Names::tag_consumer(tag), &names.tag_orders(tag), settings)
    }));
    consumers.extend(init.nodes.iter().map(|node| {
        layout::order_consumer(
            &Names::node_consumer(node),
            &names.node_orders(node),
            settings,
        )
    }));
    consumers
}

/// Connects, waiting at most [`CONNECT_WITHIN`] for a server, then creates, reports and
/// (with `update`) updates every object, writing one line per object to `out`.
async fn init(init: &InitSettings, update: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let settings = &init.cluster;
    let last_error: Arc<Mutex<Option<String>>> = Arc::default();
    let heard = Arc::clone(&last_error);
    let link = connect(settings, move |event| {
        if let ConnEvent::ClientError(text) | ConnEvent::ServerError(text) = event
            && let Ok(mut last) = heard.lock()
        {
            *last = Some(text);
        }
    })
    .await
    .map_err(failed)?;
    if !link.wait_connected(CONNECT_WITHIN).await {
        let urls: Vec<String> = settings
            .nats_urls
            .iter()
            .map(|url| crate::redact::url(url).into_owned())
            .collect();
        let last = last_error
            .lock()
            .ok()
            .and_then(|last| last.clone())
            .map(|text| format!(" (last error: {text})"))
            .unwrap_or_default();
        return Err(failed(format!(
            "cluster: no connection to NATS at {} within {}s{last}",
            urls.join(", "),
            CONNECT_WITHIN.as_secs()
        )));
    }
    let js = link.jetstream();
    let names = Names::new(&settings.prefix);
    let op_timeout = settings.op_timeout;
    let mut drifted = false;
    let mut runs = None;
    for want in wanted_streams(&names, settings) {
        let (stream, ensured) = ensure_stream(js, &want, op_timeout, update)
            .await
            .map_err(failed)?;
        drifted |= report(out, &format!("stream {}", want.name), &ensured)?;
        if want.name == names.runs_stream() {
            runs = Some(stream);
        }
    }
    let Some(runs) = runs else {
        return Err(failed("cluster: the order stream was not provisioned"));
    };
    let runs_name = names.runs_stream();
    for want in wanted_consumers(&names, init) {
        let ensured = ensure_consumer(&runs, &want, op_timeout, update)
            .await
            .map_err(failed)?;
        let name = want.durable_name.clone().unwrap_or_default();
        drifted |= report(out, &format!("consumer {name} on {runs_name}"), &ensured)?;
    }
    if drifted {
        writeln!(out, "run with --update to apply").map_err(CliError::output)?;
    }
    out.flush().map_err(CliError::output)
}

/// Writes the lines of one object (`created …`, `exists …`, its differences, `updated
/// …`); whether it has differences left unapplied.
fn report(out: &mut dyn Write, object: &str, ensured: &Ensured) -> Result<bool, CliError> {
    let unapplied = match ensured {
        Ensured::Created => {
            writeln!(out, "created {object}").map_err(CliError::output)?;
            false
        }
        Ensured::Exists { drift, updated } => {
            writeln!(out, "exists {object}").map_err(CliError::output)?;
            for difference in drift {
                writeln!(out, "{difference}").map_err(CliError::output)?;
            }
            if *updated {
                writeln!(out, "updated {object}").map_err(CliError::output)?;
            }
            !updated && !drift.is_empty()
        }
    };
    Ok(unapplied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command, go_style_args};
    use clap::Parser as _;

    fn parse(args: &[&str]) -> Result<InitArgs, clap::Error> {
        let cli = Cli::try_parse_from(go_style_args(args.iter().map(std::ffi::OsString::from)))?;
        match cli.command {
            Some(Command::Cluster(ClusterCommand::Init(args))) => Ok(args),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn init_reads_the_global_config_and_repeated_names() {
        let args = parse(&[
            "karajo", "cluster", "init", "-config", "k.conf", "--node", "n2", "--nodes", "n3,n4",
            "--tag", "gpu", "--update",
        ])
        .unwrap();
        assert_eq!(args.config, PathBuf::from("k.conf"));
        assert_eq!(args.nodes, ["n2", "n3", "n4"]);
        assert_eq!(args.tags, ["gpu"]);
        assert!(args.update);
        let args = parse(&["karajo", "--config", "a.conf", "cluster", "init"]).unwrap();
        assert_eq!(args.config, PathBuf::from("a.conf"));
        assert!(!args.update && args.nodes.is_empty());
    }

    #[test]
    fn one_admin_identity_at_most_and_a_user_needs_its_password_variable() {
        for bad in [
            &[
                "karajo",
                "cluster",
                "init",
                "--admin-creds",
                "a",
                "--admin-nkey-seed",
                "b",
            ][..],
            &[
                "karajo",
                "cluster",
                "init",
                "--admin-creds",
                "a",
                "--admin-user",
                "u",
                "--admin-password-env",
                "V",
            ],
            &["karajo", "cluster", "init", "--admin-user", "u"],
            &["karajo", "cluster", "init", "--admin-password-env", "V"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    fn conf(dir: &std::path::Path, text: &str) -> PathBuf {
        let path = dir.join("karajo.conf");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn init_settings_take_the_admin_identity_and_every_node_and_tag() {
        let dir = tempfile::tempdir().unwrap();
        let config = conf(
            dir.path(),
            "[cluster]\nenabled = true\nnode = n1\ntag = gpu\nnats_token = node-token\n",
        );
        let mut args = parse(&[
            "karajo",
            "cluster",
            "init",
            "--node",
            "n2,n1",
            "--tag",
            "gpu",
            "--tag",
            "ssd",
            "--admin-user",
            "admin",
            "--admin-password-env",
            "ADMIN_PW",
        ])
        .unwrap();
        args.config = config;
        let env = |name: &str| (name == "ADMIN_PW").then(|| "pw".to_string());
        let init = init_settings(&args, &env).unwrap();
        assert_eq!(
            init.cluster.auth,
            NatsAuth::UserPassword {
                user: "admin".into(),
                password: "pw".into()
            }
        );
        let nodes: Vec<&str> = init.nodes.iter().map(NodeName::as_str).collect();
        assert_eq!(nodes, ["n1", "n2"]);
        assert_eq!(init.tags, ["gpu", "ssd"]);
        let names: Vec<String> = wanted_consumers(&Names::new("karajo"), &init)
            .into_iter()
            .filter_map(|c| c.durable_name)
            .collect();
        assert_eq!(
            names,
            [
                "run-any",
                "run-tag-gpu",
                "run-tag-ssd",
                "run-node-n1",
                "run-node-n2"
            ]
        );

        let err = init_settings(&args, &|_| None).unwrap_err().to_string();
        assert!(err.contains("ADMIN_PW"), "{err}");
        args.admin_user = None;
        args.admin_password_env = None;
        let init = init_settings(&args, &|_| None).unwrap();
        assert_eq!(init.cluster.auth, NatsAuth::Token("node-token".into()));
        args.nodes = vec!["any".into()];
        let err = init_settings(&args, &|_| None).unwrap_err().to_string();
        assert!(err.contains("reserved"), "{err}");
    }

    #[test]
    fn init_settings_report_config_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut args = parse(&["karajo", "cluster", "init"]).unwrap();
        args.config = conf(
            dir.path(),
            "[cluster]\nenabled = true\nnode = n1\nprefix = 9\n",
        );
        let err = init_settings(&args, &|_| None).unwrap_err().to_string();
        assert!(err.contains("prefix = \"9\" is invalid"), "{err}");
        args.config = dir.path().join("missing.conf");
        assert!(init_settings(&args, &|_| None).is_err());
    }

    fn node(name: &str, alive: bool, last_seen: Option<&str>) -> NodeStatus {
        NodeStatus {
            name: NodeName::parse(name).unwrap(),
            tags: Vec::new(),
            alive,
            last_seen: last_seen.map(|at| at.parse().unwrap()),
            version: "1.2.0".into(),
            config_digest: "sha256:aa".into(),
            digest_matches: true,
            running: Vec::new(),
            max_job_running: 4,
            clock_offset_ms: None,
        }
    }

    #[test]
    fn status_prints_the_link_and_one_row_per_node() {
        let mut web1 = node("web-1", true, Some("2024-05-01T11:59:58Z"));
        web1.tags = vec!["gpu".into(), "ssd".into()];
        web1.running = vec!["job.deploy.3".into(), "job_http.ping.12".into()];
        let mut web2 = node("web-2", false, Some("2024-05-01T10:54:30Z"));
        web2.version = "1.1.0".into();
        web2.config_digest = "sha256:bb".into();
        web2.digest_matches = false;
        let mut web3 = node("web-3", false, None);
        web3.version = String::new();
        web3.config_digest = String::new();
        web3.digest_matches = false;
        let status = ClusterStatus {
            enabled: true,
            node: NodeName::parse("web-1").unwrap(),
            connected: true,
            since: "2024-05-01T11:55:00Z".parse().unwrap(),
            nats_server: "2.9.10".into(),
            nodes: vec![web1, web2, web3],
        };
        let now: Timestamp = "2024-05-01T12:00:00Z".parse().unwrap();
        assert_eq!(
            format_status(&status, now),
            "\
node:     web-1
cluster:  connected since 2024-05-01 11:55:00 UTC (5m ago)
nats:     2.9.10

NODE   TAGS     STATE               VERSION  DIGEST  RUNNING
web-1  gpu,ssd  alive (2s ago)      1.2.0    ✓       job.deploy.3 job_http.ping.12
web-2  -        dead (1h5m30s ago)  1.1.0    ✗       -
web-3  -        dead (never seen)   -        ?       -
"
        );
        let lost = ClusterStatus {
            connected: false,
            since: "2024-05-01T12:00:03Z".parse().unwrap(),
            nats_server: String::new(),
            nodes: Vec::new(),
            ..status
        };
        assert_eq!(
            format_status(&lost, now),
            "\
node:     web-1
cluster:  disconnected since 2024-05-01 12:00:03 UTC (0s ago)
nats:     -

NODE  TAGS  STATE  VERSION  DIGEST  RUNNING
"
        );
    }

    #[test]
    fn status_takes_the_options_of_the_other_client_commands() {
        let cli = Cli::try_parse_from([
            "karajo",
            "cluster",
            "status",
            "--server",
            "http://h:1",
            "--json",
        ])
        .unwrap();
        let Some(Command::Cluster(ClusterCommand::Status { server })) = cli.command else {
            panic!("{:?}", cli.command);
        };
        assert_eq!(server.server, "http://h:1");
        assert!(server.json);
    }

    #[test]
    fn each_object_gets_its_lines() {
        let mut out = Vec::new();
        let drift = crate::cluster::nats::provision::Drift {
            object: "stream KV_karajo_nodes".into(),
            setting: "max_age",
            have: "15s".into(),
            want: "3s".into(),
        };
        assert!(!report(&mut out, "stream A", &Ensured::Created).unwrap());
        let exists = Ensured::Exists {
            drift: vec![drift.clone()],
            updated: false,
        };
        assert!(report(&mut out, "stream KV_karajo_nodes", &exists).unwrap());
        let updated = Ensured::Exists {
            drift: vec![drift],
            updated: true,
        };
        assert!(!report(&mut out, "stream KV_karajo_nodes", &updated).unwrap());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "created stream A\n\
             exists stream KV_karajo_nodes\n\
             stream KV_karajo_nodes has max_age = 15s, karajo wants 3s\n\
             exists stream KV_karajo_nodes\n\
             stream KV_karajo_nodes has max_age = 15s, karajo wants 3s\n\
             updated stream KV_karajo_nodes\n"
        );
    }
}
