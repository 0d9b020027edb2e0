//! Cluster mode's part of the daemon: with `[cluster] enabled = true`, [`join`]
//! connects this node to NATS and claims its name before the scheduler starts (a
//! second process with a live node's name stops here), and [`Joined::start`] starts
//! the cluster agent once the scheduler runs. Without it nothing here opens a socket.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::DaemonError;
use crate::clock::SharedClock;
use crate::cluster::NodeName;
use crate::cluster::agent::{AgentOptions, ClusterAgent, LogReplica};
use crate::cluster::coordinator::Coordinator;
use crate::cluster::pending::PendingSlots;
use crate::cluster::status::{ClusterInfo, ClusterStats};
use crate::config::Config;
use crate::scheduler::{ClusterNotice, JobDef, SchedulerHandle};
use crate::store::Layout;

/// How long a stopping node waits for the logs and ends of its last runs to reach the
/// cluster.
const LEAVE_GRACE: Duration = Duration::from_secs(10);

/// A node that joined the cluster, before its agent starts.
pub(super) struct Joined {
    coordinator: Arc<dyn Coordinator>,
    logs: Option<Arc<dyn LogReplica>>,
    leave: Leave,
    pub(super) node: NodeName,
    pub(super) notices_tx: mpsc::UnboundedSender<ClusterNotice>,
    notices: mpsc::UnboundedReceiver<ClusterNotice>,
    pub(super) info: ClusterInfo,
    misfire_grace: Duration,
    lease_ttl: Duration,
    stats: Arc<ClusterStats>,
}

/// A running node of the cluster.
pub(super) struct Running {
    agent: ClusterAgent,
    leave: Leave,
}

/// How the node leaves: deletes its lease so the others see it go at once.
type Leave = Box<dyn FnOnce() -> crate::scheduler::RouteFuture<()> + Send>;

/// `sha256:<hex>` over every cluster job's digest: equal on nodes whose cluster jobs
/// are defined alike.
#[cfg(feature = "cluster-nats")]
fn config_digest(
    defs: &[JobDef],
    key: &[u8],
) -> (String, std::collections::BTreeMap<String, String>) {
    use sha2::Digest as _;
    let jobs: std::collections::BTreeMap<String, String> = defs
        .iter()
        .filter(|def| def.common.run_on.is_cluster())
        .map(|def| {
            let digest = crate::cluster::agent::job_digest(def, key);
            (crate::cluster::state_key(&def.key()), digest)
        })
        .collect();
    let mut hash = sha2::Sha256::new();
    for (key, digest) in &jobs {
        hash.update(format!("{key}={digest}\n").as_bytes());
    }
    (format!("sha256:{}", hex::encode(hash.finalize())), jobs)
}

/// Joins the cluster when `[cluster] enabled = true`; `None` otherwise.
#[cfg(feature = "cluster-nats")]
pub(super) async fn join(
    config: &Config,
    defs: &[JobDef],
    http: String,
    clock: SharedClock,
) -> Result<Option<Joined>, DaemonError> {
    use crate::cluster::nats::coordinator::NatsCoordinator;
    let settings = &config.cluster;
    if !settings.enabled {
        return Ok(None);
    }
    let (digest, job_digests) = config_digest(defs, config.secret.as_bytes());
    let max_job_running = u32::try_from(config.max_job_running).unwrap_or(u32::MAX);
    let lease_digest = digest.clone();
    let coordinator = NatsCoordinator::start_as(
        settings,
        config.secret.as_bytes(),
        clock,
        |event| tracing::info!(?event, "cluster: NATS connection"),
        move |record| {
            record.http = http;
            record.config_digest = lease_digest;
            record.job_digests = job_digests;
            record.max_job_running = max_job_running;
        },
    )
    .await
    .map_err(|err| DaemonError::Cluster(err.to_string()))?;
    let coordinator = Arc::new(coordinator);
    let layout = Layout::new(&config.dir_base);
    let logs: Arc<dyn LogReplica> =
        Arc::new(coordinator.log_replica(layout.lib_dir().join("cluster-log-cursor")));
    let nats_server = coordinator.server_version().unwrap_or_default();
    tracing::info!(node = %settings.node, nats_server, "joined the cluster");
    let leaving = coordinator.clone();
    let leave: Leave = Box::new(move || Box::pin(async move { leaving.leave().await }));
    let coordinator: Arc<dyn Coordinator> = coordinator;
    let (notices_tx, notices) = mpsc::unbounded_channel();
    let stats = Arc::new(ClusterStats::default());
    Ok(Some(Joined {
        info: ClusterInfo {
            coordinator: coordinator.clone(),
            config_digest: digest,
            nats_server,
            stats: stats.clone(),
        },
        stats,
        coordinator,
        logs: Some(logs),
        leave,
        node: settings.node.clone(),
        notices_tx,
        notices,
        misfire_grace: settings.misfire_grace,
        lease_ttl: settings.lease_ttl,
    }))
}

/// Without the NATS backend the configuration refuses `enabled = true`.
#[cfg(not(feature = "cluster-nats"))]
pub(super) async fn join(
    _config: &Config,
    _defs: &[JobDef],
    _http: String,
    _clock: SharedClock,
) -> Result<Option<Joined>, DaemonError> {
    Ok(None)
}

impl Joined {
    /// Starts the agent on this node's scheduler.
    pub(super) fn start(
        self,
        scheduler: SchedulerHandle,
        layout: Layout,
        clock: SharedClock,
    ) -> Running {
        let pending =
            PendingSlots::load(layout.lib_dir().join("cluster-pending.json"), clock.now());
        let agent = ClusterAgent::start(AgentOptions {
            pending,
            coordinator: self.coordinator,
            scheduler,
            notices: self.notices,
            logs: self.logs,
            layout,
            clock,
            misfire_grace: self.misfire_grace,
            lease_ttl: self.lease_ttl,
            stats: self.stats,
        });
        Running {
            agent,
            leave: self.leave,
        }
    }
}

impl Running {
    /// After the scheduler stopped: ships the last runs' logs and ends, then leaves.
    pub(super) async fn leave(self) {
        self.agent.stop(LEAVE_GRACE).await;
        (self.leave)().await;
        tracing::info!("left the cluster");
    }
}
