//! The NATS control plane against a real server (cluster spec 14.1 layer 3): the
//! probe's experiments turned into assertions. Provisioning on 2.9 ([`provision`]),
//! the claim race ([`claims`]), the compare-and-set loop ([`state`]), leases
//! ([`lease`]), a server restart and an outage ([`outage`]), and authentication with
//! the node permission template ([`auth`]). Fast settings: `lease_ttl` 3 s,
//! `op_timeout` 1 s.

mod auth;
mod claims;
mod lease;
mod outage;
mod provision;
mod state;

use std::time::Duration;

use karajo::cluster::nats::connect::{Link, connect};
use karajo::cluster::nats::layout::Names;
use karajo::cluster::nats::provision::{Buckets, open};
use karajo::cluster::{ClusterSettings, NodeName};

use super::server::NatsServer;

/// The lease TTL of these tests.
pub(crate) const LEASE_TTL: Duration = Duration::from_secs(3);

/// The operation bound of these tests.
pub(crate) const OP_TIMEOUT: Duration = Duration::from_secs(1);

/// Settings of node `node` against `server`, with the fast bounds.
pub(crate) fn settings(server: &NatsServer, node: &str) -> ClusterSettings {
    let mut settings = ClusterSettings::defaults(NodeName::parse(node).unwrap());
    settings.enabled = true;
    settings.nats_urls = vec![server.url()];
    settings.lease_ttl = LEASE_TTL;
    settings.op_timeout = OP_TIMEOUT;
    settings.dispatch_ack_wait = Duration::from_secs(2);
    settings
}

/// A connected link with these settings.
pub(crate) async fn link(settings: &ClusterSettings) -> Link {
    let link = connect(settings, |_| {}).await.unwrap();
    assert!(
        link.wait_connected(Duration::from_secs(10)).await,
        "connected to {:?}",
        settings.nats_urls
    );
    link
}

/// A connected link and the buckets, provisioned.
pub(crate) async fn node(server: &NatsServer, node: &str) -> (ClusterSettings, Link, Buckets) {
    let settings = settings(server, node);
    let link = link(&settings).await;
    let buckets = open(link.jetstream(), &Names::new(&settings.prefix), &settings)
        .await
        .unwrap();
    (settings, link, buckets)
}

/// Whether the server is 2.11 or newer (subject delete markers).
pub(crate) fn has_markers(server: &NatsServer) -> bool {
    let version = server.version();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (2, 11)
}

/// Polls `check` every 50 ms until it holds, at most `within`; whether it did.
pub(crate) async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
