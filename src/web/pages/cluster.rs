//! The cluster in the web UI (cluster spec 12.1), shown only in cluster mode: the nodes
//! page `/karajo/app/cluster` (one row per node: its tags, alive or dead with the age of
//! its last heartbeat, its karajo version, whether its job definitions match this
//! node's, its runs in progress linked to their logs, its `max_job_running` and its
//! clock offset; dead nodes greyed), and what every page's frame shows of the cluster
//! ([`ClusterChrome`]): the navigation's link to that page and the banners while this
//! node cannot reach the cluster or a live node runs different job definitions. The
//! banners read only what the coordinator keeps current (its link's health and its node
//! table), never the network; the page reads the whole status. On a single node the
//! frame shows none of this and the page is `404`.

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use jiff::Timestamp;

use super::view::{self, TimeView};
use super::{Chrome, Viewer, WuiError, html};
use crate::cluster::status::{ClusterInfo, ClusterStatus, NodeStatus};
use crate::job::JobKind;
use crate::web::AppState;

/// The nodes page's path.
pub(super) const PATH: &str = "/karajo/app/cluster";

/// What a page's frame shows in cluster mode: the navigation's link to the nodes page
/// always, and the banners for a viewer who may read the pages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ClusterChrome {
    /// Since when this node cannot reach the cluster; `None` while it can.
    pub unreachable_since: Option<ClockTime>,
    /// The live nodes that run different job definitions than this node, by name.
    pub drifted: Vec<String>,
}

/// A moment shown as a time of day (`14:03:07 UTC`), which the page's script turns into
/// the reader's time of day (`data-clock`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClockTime {
    /// `2026-11-22T14:03:07Z`.
    pub iso: String,
    /// `14:03:07 UTC`.
    pub text: String,
}

impl ClockTime {
    /// The time of day of `at`, in UTC to the second.
    fn new(at: Timestamp) -> Option<Self> {
        let at = at.round(jiff::Unit::Second).ok()?;
        Some(Self {
            iso: at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            text: at.strftime("%H:%M:%S UTC").to_string(),
        })
    }
}

impl ClusterChrome {
    /// The frame of a page anyone may see (the login page, error pages): the link only.
    pub(crate) fn link_only() -> Self {
        Self::default()
    }

    /// The frame with the banners that `info` calls for now. Reads the coordinator's
    /// health and node table as they are; no IO.
    pub(crate) fn of(info: &ClusterInfo) -> Self {
        let health = *info.coordinator.health().borrow();
        let unreachable_since = if health.is_connected() {
            None
        } else {
            ClockTime::new(health.since())
        };
        let nodes = info.coordinator.nodes();
        let drifted = nodes
            .borrow()
            .iter()
            .filter(|(_, node)| {
                node.alive && Definitions::of(&node.config_digest, &info.config_digest).differ()
            })
            .map(|(name, _)| name.to_string())
            .collect();
        Self {
            unreachable_since,
            drifted,
        }
    }

    /// The drift banner's words: `node web-2 runs different job definitions`, or for
    /// several `nodes web-2, web-3 run …`.
    pub(crate) fn drift_text(&self) -> String {
        match self.drifted.as_slice() {
            [one] => format!("node {one} runs different job definitions"),
            many => format!("nodes {} run different job definitions", many.join(", ")),
        }
    }
}

/// How a node's job definitions compare with this node's, by their digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Definitions {
    /// The same digest.
    Same,
    /// Another digest.
    Different,
    /// The node has not said (an empty digest).
    Unknown,
}

impl Definitions {
    /// How `theirs` compares with `ours`.
    pub(super) fn of(theirs: &str, ours: &str) -> Self {
        if theirs.is_empty() {
            Self::Unknown
        } else if theirs == ours {
            Self::Same
        } else {
            Self::Different
        }
    }

    /// Whether they are known to differ.
    pub(super) fn differ(self) -> bool {
        self == Self::Different
    }

    /// The mark in the table.
    pub(super) fn mark(self) -> &'static str {
        match self {
            Self::Same => "✓",
            Self::Different => "✗",
            Self::Unknown => "?",
        }
    }

    /// The mark in words, for its title and for screen readers.
    pub(super) fn words(self) -> &'static str {
        match self {
            Self::Same => "same job definitions as this node",
            Self::Different => "different job definitions from this node's",
            Self::Unknown => "job definitions not known",
        }
    }
}

/// When a node's heartbeat was last seen, and how long before the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Seen {
    /// The time (the page's script counts its age on).
    pub at: TimeView,
    /// `2 s ago`.
    pub ago: String,
}

/// A run in progress on a node: linked to its log page when this node has the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RunLink {
    /// `hello #12`: the job's name (its id when this node does not have it) and the
    /// run's counter; the run's key as the cluster wrote it when it cannot be read.
    pub text: String,
    /// The run's log page.
    pub href: Option<String>,
}

/// One node's row on the nodes page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NodeRow {
    /// Its name.
    pub name: String,
    /// It is the node serving the page.
    pub this_node: bool,
    /// Its tags, comma-separated; `—` without tags.
    pub tags: String,
    /// Its heartbeat was seen within `lease_ttl`.
    pub alive: bool,
    /// Its last heartbeat; `None` when never seen.
    pub seen: Option<Seen>,
    /// Its karajo version; `—` when unknown.
    pub version: String,
    /// How its job definitions compare with this node's.
    pub definitions: Definitions,
    /// Its runs in progress.
    pub runs: Vec<RunLink>,
    /// Its `max_job_running`; `—` when unknown.
    pub max_job_running: String,
    /// How far its clock is from the NATS server's (`+12 ms`); `—` when unknown.
    pub clock_offset: String,
}

/// The run `key` (`job.<id>.<counter>` or `job_http.<id>.<counter>`, as
/// [`NodeStatus::running`] has it), linked to its log when `job_name` knows its job.
pub(super) fn run_link(key: &str, job_name: &dyn Fn(JobKind, &str) -> Option<String>) -> RunLink {
    let parsed = key.split_once('.').and_then(|(kind, rest)| {
        let kind = JobKind::parse(kind).filter(|k| matches!(k, JobKind::Exec | JobKind::Http))?;
        let (id, counter) = rest.rsplit_once('.')?;
        Some((kind, id, counter.parse::<u64>().ok()?))
    });
    let Some((kind, id, counter)) = parsed else {
        return RunLink {
            text: key.to_string(),
            href: None,
        };
    };
    match job_name(kind, id) {
        Some(name) => RunLink {
            text: format!("{name} #{counter}"),
            href: Some(view::log_href(kind, id, counter)),
        },
        None => RunLink {
            text: format!("{id} #{counter}"),
            href: None,
        },
    }
}

/// The row of `node` at `now`, as `this` (the node serving the page) sees it;
/// `job_name` names the jobs this node has.
pub(super) fn node_row(
    node: &NodeStatus,
    this: &str,
    now: Timestamp,
    ours: &str,
    job_name: &dyn Fn(JobKind, &str) -> Option<String>,
) -> NodeRow {
    let dash = |s: String| if s.is_empty() { "—".to_string() } else { s };
    let seen = node.last_seen.and_then(|at| {
        let age = now.duration_since(at).max(jiff::SignedDuration::ZERO);
        Some(Seen {
            at: TimeView::new(at)?,
            ago: format!("{} ago", view::human_duration(age.unsigned_abs())),
        })
    });
    NodeRow {
        name: node.name.to_string(),
        this_node: node.name.as_str() == this,
        tags: dash(node.tags.join(", ")),
        alive: node.alive,
        seen,
        version: dash(node.version.clone()),
        definitions: Definitions::of(&node.config_digest, ours),
        runs: node.running.iter().map(|r| run_link(r, job_name)).collect(),
        max_job_running: match node.max_job_running {
            0 => "—".to_string(),
            n => n.to_string(),
        },
        clock_offset: node
            .clock_offset_ms
            .map_or_else(|| "—".to_string(), |ms| format!("{ms:+} ms")),
    }
}

/// The rows of every node of `status` at `now`, by name; `ours` is this node's digest.
pub(super) fn node_rows(
    status: &ClusterStatus,
    now: Timestamp,
    ours: &str,
    job_name: &dyn Fn(JobKind, &str) -> Option<String>,
) -> Vec<NodeRow> {
    status
        .nodes
        .iter()
        .map(|node| node_row(node, status.node.as_str(), now, ours, job_name))
        .collect()
}

#[derive(askama::Template)]
#[template(path = "cluster.html")]
struct NodesPage {
    chrome: Chrome,
    /// This node's name.
    node: String,
    /// Whether this node reaches the cluster.
    connected: bool,
    /// Since when it does, or does not.
    since: Option<TimeView>,
    /// The NATS server's version.
    nats_server: String,
    nodes: Vec<NodeRow>,
}

/// `GET /karajo/app/cluster`: every node of the cluster (404 on a single node).
pub(super) async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Response, WuiError> {
    let info = state.cluster.as_ref().ok_or(WuiError::ClusterOff)?;
    let status = info.status();
    let snapshot = state.scheduler.snapshot();
    let job_name = |kind: JobKind, id: &str| snapshot.job(kind, id).map(|j| j.name().to_string());
    let nodes = node_rows(&status, state.clock.now(), &info.config_digest, &job_name);
    html(&NodesPage {
        chrome: Chrome::new(&state, Some(&viewer)),
        node: status.node.to_string(),
        connected: status.connected,
        since: TimeView::new(status.since),
        nats_server: if status.nats_server.is_empty() {
            "unknown".to_string()
        } else {
            status.nats_server.clone()
        },
        nodes,
    })
}

pub(super) mod job;

#[cfg(test)]
mod tests;
