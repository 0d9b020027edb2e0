//! The coordinator of a cluster of one (cluster spec 6.1, DESIGN §3): it always says
//! yes. Every claim is won (and nothing is kept for it, so a node that runs for years
//! holds no growing claim table), every order goes to this node's own queue, and the
//! link never goes down. Job records and orders live in one [`MemoryCluster`] of this
//! single node, so that the decisions are the same [`decide`](super::decide) the other
//! coordinators apply. The daemon's single-node mode does not route its jobs through a
//! coordinator (its scheduler applies the same rules directly, without an extra task
//! hop per trigger); this one lets the cluster agent run where no cluster exists.

use std::time::Duration;

use tokio::sync::watch;

use super::coordinator::{
    Claim, ClusterError, CoordFuture, Coordinator, Delivery, Health, JobCtx, NodeTable,
    RecordTable, Resolved, Transition,
};
use super::decide::JobEvent;
use super::memory::{MemoryCluster, MemoryCoordinator};
use super::{NodeName, RunOn, RunOrder};
use crate::clock::SharedClock;

/// A cluster of one node, where every answer is yes.
#[derive(Debug, Clone)]
pub struct LocalCoordinator {
    inner: MemoryCoordinator,
}

impl LocalCoordinator {
    /// The node `node`, whose orders wait `dispatch_timeout` for itself to accept them.
    pub fn new(node: &str, clock: SharedClock, dispatch_timeout: Duration) -> Self {
        // Orders are taken by this very node: delivering one again is only needed if
        // it was dropped unanswered, which the agent never does.
        let cluster = MemoryCluster::new(clock, dispatch_timeout, dispatch_timeout, 1);
        Self {
            inner: cluster.join(node, &[]),
        }
    }
}

impl Coordinator for LocalCoordinator {
    fn node(&self) -> &NodeName {
        self.inner.node()
    }

    /// Always won: no other node could want it.
    fn claim_key<'a>(&'a self, _key: &'a str) -> CoordFuture<'a, Claim> {
        Box::pin(async { Claim::Won })
    }

    fn delete_order(&self, seq: u64) -> CoordFuture<'_, Result<(), ClusterError>> {
        self.inner.delete_order(seq)
    }

    /// Always ours (a local claim is never uncertain; this answers a question nobody
    /// asks here).
    fn resolve<'a>(
        &'a self,
        _key: &'a str,
        _nonce: &'a str,
    ) -> CoordFuture<'a, Result<Resolved, ClusterError>> {
        Box::pin(async { Ok(Resolved::Ours) })
    }

    fn transition<'a>(
        &'a self,
        job: &'a JobCtx,
        event: JobEvent,
    ) -> CoordFuture<'a, Result<Transition, ClusterError>> {
        self.inner.transition(job, event)
    }

    fn dispatch<'a>(
        &'a self,
        order: &'a RunOrder,
        target: &'a RunOn,
    ) -> CoordFuture<'a, Result<u64, ClusterError>> {
        self.inner.dispatch(order, target)
    }

    fn take_orders(&self, free: usize) -> CoordFuture<'_, Result<Vec<Delivery>, ClusterError>> {
        self.inner.take_orders(free)
    }

    fn records(&self) -> watch::Receiver<RecordTable> {
        self.inner.records()
    }

    fn nodes(&self) -> watch::Receiver<NodeTable> {
        self.inner.nodes()
    }

    /// Always connected.
    fn health(&self) -> watch::Receiver<Health> {
        self.inner.health()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::cluster::Slot;
    use crate::cluster::coordinator::AckKind;
    use crate::cluster::decide::{JobRecord, TriggerReply};
    use crate::job::{JobId, JobKey, RunStatus};

    fn job(id: &str) -> JobCtx {
        JobCtx {
            job: JobKey::exec(JobId::from_raw(id)),
            run_on: RunOn::Any,
            job_digest: "sha256:00".into(),
            seed: JobRecord::seed(0, None, None, false),
        }
    }

    #[tokio::test]
    async fn every_claim_is_won_and_a_run_goes_to_this_node_through_one_queue() {
        let clock = Arc::new(ManualClock::new("2026-11-30T12:00:00Z".parse().unwrap()));
        let local = LocalCoordinator::new("solo", clock, Duration::from_secs(20));
        let key = JobKey::exec(JobId::from_raw("tick"));
        let slot = Slot { job: key, at: 60 };
        assert_eq!(local.claim(&slot).await, Claim::Won);
        assert_eq!(local.claim(&slot).await, Claim::Won, "always yes");
        assert!(local.health().borrow().is_connected());

        let tick = job("tick");
        let first = local.transition(&tick, JobEvent::Webhook).await.unwrap();
        crate::cluster::contract::carry_out(&local, &tick, &first)
            .await
            .unwrap();
        let taken = local.take_orders(4).await.unwrap();
        assert_eq!(taken.len(), 1);
        let order = taken[0].order.clone();
        assert_eq!(order.counter, 1);
        // The queue rule of the pure decision: one queued behind the running one, the
        // next refused (spec 6.1).
        let accepted = JobEvent::Accepted {
            run: order.run.clone(),
            node: local.node().clone(),
        };
        local.transition(&tick, accepted).await.unwrap();
        for delivery in taken {
            delivery.answer(AckKind::Accept).await.unwrap();
        }
        let queued = local.transition(&tick, JobEvent::Webhook).await.unwrap();
        let refused = local.transition(&tick, JobEvent::Webhook).await.unwrap();
        let reply = |t: &Transition| {
            t.actions.iter().find_map(|a| match a {
                crate::cluster::decide::Action::Reply(r) => Some(*r),
                _ => None,
            })
        };
        assert_eq!(reply(&queued), Some(TriggerReply::Queued));
        assert_eq!(reply(&refused), Some(TriggerReply::Busy));
        let finished = JobEvent::Finished {
            run: order.run,
            node: local.node().clone(),
            status: RunStatus::Success,
            at: "2026-11-30T12:00:01Z".parse().unwrap(),
        };
        let done = local.transition(&tick, finished).await.unwrap();
        assert_eq!(done.record.status, Some(RunStatus::Success));
        crate::cluster::contract::carry_out(&local, &tick, &done)
            .await
            .unwrap();
        let next = local.take_orders(4).await.unwrap();
        assert_eq!(next.len(), 1, "the queued trigger runs next");
        assert_eq!(next[0].order.counter, 2);
    }
}
