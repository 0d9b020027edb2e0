//! A job's place in the cluster on its page (cluster spec 12.1), shown in cluster mode
//! only: where its `run_on` sends it (`any`, `all nodes`, `node n2`, `nodes tagged gpu`,
//! `this node only (local)`), and the run its shared record has in progress: dispatched
//! to its target so long ago, running on a node, or, for a `run_on = all` fan-out, each
//! member's node and state. It is read from the coordinator's copy of the records, a
//! borrow of a watch, never from the network.

use jiff::Timestamp;

use super::view;
use crate::cluster::RunOn;
use crate::cluster::decide::{ActiveRun, ActiveState};
use crate::cluster::status::ClusterInfo;
use crate::scheduler::JobView;

/// What a job's page shows of its place in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobPlace {
    /// Where the job runs, for people: `any`, `all nodes`, `node n2`, …
    pub runs_on: String,
    /// The run in progress: `Run #3 dispatched to any 12 s ago`, `Run #3 running on
    /// n2`; `None` while the record has none.
    pub active: Option<String>,
    /// The members of a `run_on = all` fan-out in progress, by node.
    pub members: Vec<Member>,
}

/// One node's run of a fan-out in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    /// The node.
    pub node: String,
    /// `dispatched`, `running`, or the status it ended with.
    pub state: String,
}

impl JobPlace {
    /// The place of `view` in `cluster` at `now`; `None` on a single node.
    pub(crate) fn of(
        cluster: Option<&ClusterInfo>,
        view: &JobView,
        now: Timestamp,
    ) -> Option<Self> {
        let records = cluster?.coordinator.records();
        let active = records
            .borrow()
            .get(&crate::cluster::state_key(&view.def.key()))
            .and_then(|(record, _)| record.active.clone());
        Some(Self::new(&view.def.common.run_on, active.as_ref(), now))
    }

    /// The place of a job whose `run_on` is `run_on` and whose record has `active` in
    /// progress, at `now`.
    pub(crate) fn new(run_on: &RunOn, active: Option<&ActiveRun>, now: Timestamp) -> Self {
        let members = active
            .and_then(|a| a.group.as_ref())
            .map(|group| {
                group
                    .iter()
                    .map(|(node, member)| Member {
                        node: node.as_str().to_string(),
                        state: match member.status {
                            Some(status) => status.as_str().to_string(),
                            None => state_word(member.state).to_string(),
                        },
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            runs_on: runs_on_text(run_on),
            active: active.map(|a| active_text(a, now)),
            members,
        }
    }
}

/// `run_on` for people.
pub(crate) fn runs_on_text(run_on: &RunOn) -> String {
    match run_on {
        RunOn::Local => "this node only (local)".into(),
        RunOn::Any => "any".into(),
        RunOn::All => "all nodes".into(),
        RunOn::Node(node) => format!("node {node}"),
        RunOn::Tag(tag) => format!("nodes tagged {tag}"),
    }
}

fn state_word(state: ActiveState) -> &'static str {
    match state {
        ActiveState::Dispatched => "dispatched",
        ActiveState::Running => "running",
    }
}

/// `Run #3 dispatched to any 12 s ago`, `Run #3 running on n2`, `Run #3 running on all
/// nodes`.
fn active_text(active: &ActiveRun, now: Timestamp) -> String {
    let counter = active.counter;
    match (active.state, &active.node) {
        (ActiveState::Running, Some(node)) => format!("Run #{counter} running on {node}"),
        (ActiveState::Running, None) => {
            format!("Run #{counter} running on {}", target_text(&active.target))
        }
        (ActiveState::Dispatched, _) => {
            let age = now.duration_since(active.since).unsigned_abs();
            format!(
                "Run #{counter} dispatched to {} {} ago",
                target_text(&active.target),
                view::human_duration(age)
            )
        }
    }
}

/// Where an order went: `any`, `all nodes`, `n2`, `tag:gpu`.
fn target_text(target: &RunOn) -> String {
    match target {
        RunOn::All => "all nodes".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cluster::NodeName;
    use crate::cluster::decide::GroupMember;
    use crate::job::RunStatus;

    const T0: &str = "2026-11-30T12:00:00Z";

    fn active(target: RunOn, node: Option<&str>, state: ActiveState) -> ActiveRun {
        let since: Timestamp = T0.parse().unwrap();
        ActiveRun {
            run: "0190".into(),
            counter: 3,
            target,
            node: node.map(|n| NodeName::parse(n).unwrap()),
            state,
            seq: None,
            since,
            deadline: since,
            cancel_requested: false,
            group: None,
        }
    }

    #[test]
    fn run_on_reads_for_people() {
        let n2 = RunOn::Node(NodeName::parse("n2").unwrap());
        assert_eq!(runs_on_text(&RunOn::Any), "any");
        assert_eq!(runs_on_text(&RunOn::All), "all nodes");
        assert_eq!(runs_on_text(&n2), "node n2");
        assert_eq!(runs_on_text(&RunOn::Tag("gpu".into())), "nodes tagged gpu");
        assert_eq!(runs_on_text(&RunOn::Local), "this node only (local)");
    }

    #[test]
    fn the_active_run_is_dispatched_with_its_age_or_running_on_its_node() {
        let now: Timestamp = "2026-11-30T12:00:12Z".parse().unwrap();
        let dispatched = active(RunOn::Tag("gpu".into()), None, ActiveState::Dispatched);
        let place = JobPlace::new(&RunOn::Any, Some(&dispatched), now);
        assert_eq!(
            place.active.as_deref(),
            Some("Run #3 dispatched to tag:gpu 12 s ago")
        );
        assert!(place.members.is_empty());
        let running = active(RunOn::Any, Some("n2"), ActiveState::Running);
        let place = JobPlace::new(&RunOn::Any, Some(&running), now);
        assert_eq!(place.active.as_deref(), Some("Run #3 running on n2"));
        assert_eq!(JobPlace::new(&RunOn::Any, None, now).active, None);
    }

    #[test]
    fn a_fan_out_lists_its_members() {
        let now: Timestamp = T0.parse().unwrap();
        let mut fan_out = active(RunOn::All, None, ActiveState::Running);
        let member = |state, status| GroupMember {
            run: "r".into(),
            counter: 3,
            state,
            status,
            seq: None,
        };
        fan_out.group = Some(BTreeMap::from([
            (
                NodeName::parse("n1").unwrap(),
                member(ActiveState::Running, None),
            ),
            (
                NodeName::parse("n2").unwrap(),
                member(ActiveState::Dispatched, None),
            ),
            (
                NodeName::parse("n3").unwrap(),
                member(ActiveState::Running, Some(RunStatus::Success)),
            ),
        ]));
        let place = JobPlace::new(&RunOn::All, Some(&fan_out), now);
        assert_eq!(place.runs_on, "all nodes");
        assert_eq!(place.active.as_deref(), Some("Run #3 running on all nodes"));
        let members: Vec<_> = place
            .members
            .iter()
            .map(|m| format!("{}: {}", m.node, m.state))
            .collect();
        assert_eq!(members, ["n1: running", "n2: dispatched", "n3: success"]);
    }
}
