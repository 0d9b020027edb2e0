//! What every [`Coordinator`] must do, as scenarios on three nodes that the tests of
//! each implementation run: the in-memory one in every build, the NATS one against a
//! real server. Each scenario returns what went wrong instead of panicking, so it is
//! plain library code; a test asserts it is `Ok`.

use super::coordinator::{AckKind, Claim, Coordinator, JobCtx, Transition};
use super::decide::{Action, JobEvent, JobRecord, TriggerReply};
use super::{NodeName, RunOn, RunOrder, Slot};
use crate::job::{JobId, JobKey, RunStatus};

/// A job `id` placed by `run_on`, never seen by the cluster before.
pub fn job(id: &str, run_on: RunOn) -> JobCtx {
    JobCtx {
        job: JobKey::exec(JobId::from_raw(id)),
        run_on,
        job_digest: "sha256:contract".into(),
        seed: JobRecord::seed(0, None, None, false),
    }
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

/// The orders a transition dispatches, with their targets.
pub fn dispatches(t: &Transition) -> Vec<(RunOrder, RunOn)> {
    t.actions
        .iter()
        .filter_map(|a| match a {
            Action::Dispatch { order, target } => Some((order.clone(), target.clone())),
            _ => None,
        })
        .collect()
}

fn reply(t: &Transition) -> Option<TriggerReply> {
    t.actions.iter().find_map(|a| match a {
        Action::Reply(r) => Some(*r),
        _ => None,
    })
}

/// Carries out a transition's dispatches as its winner would: each order is queued and
/// its sequence recorded.
pub async fn carry_out(node: &dyn Coordinator, job: &JobCtx, t: &Transition) -> Result<(), String> {
    for (order, target) in dispatches(t) {
        let seq = node
            .dispatch(&order, &target)
            .await
            .map_err(|e| format!("dispatch: {e}"))?;
        node.transition(
            job,
            JobEvent::Dispatched {
                run: order.run.clone(),
                seq,
            },
        )
        .await
        .map_err(|e| format!("dispatched: {e}"))?;
    }
    Ok(())
}

/// Each of `slots` slots of one job, claimed by every node at once, is won by exactly
/// one, and the others learn which.
pub async fn each_slot_is_won_once(nodes: &[&dyn Coordinator], slots: i64) -> Result<(), String> {
    let key = JobKey::exec(JobId::from_raw("contract_tick"));
    for at in 0..slots {
        let slot = Slot {
            job: key.clone(),
            at: 1_795_413_600 + at,
        };
        let claims = futures_util::future::join_all(nodes.iter().map(|n| n.claim(&slot))).await;
        let winners: Vec<&NodeName> = nodes
            .iter()
            .zip(&claims)
            .filter(|(_, c)| **c == Claim::Won)
            .map(|(n, _)| n.node())
            .collect();
        check(winners.len() == 1, || format!("slot {at}: {claims:?}"))?;
        for claim in &claims {
            check(
                *claim == Claim::Won
                    || *claim
                        == Claim::Lost {
                            by: Some(winners[0].clone()),
                        },
                || format!("slot {at}: {claims:?}"),
            )?;
        }
    }
    Ok(())
}

/// Three web hooks for one job on three nodes answer 200 (started), 200 (queued) and
/// 429, as Go's one-run-one-queued rule; any node then takes the order, once, and the
/// queued one starts with the next counter when the first finishes.
pub async fn one_queue_across_nodes(nodes: &[&dyn Coordinator]) -> Result<(), String> {
    let [n1, n2, n3] = nodes else {
        return Err("three nodes".into());
    };
    let slow = job("contract_slow", RunOn::Any);
    let err =
        |what: &'static str| move |e: super::coordinator::ClusterError| format!("{what}: {e}");
    let first = n1
        .transition(&slow, JobEvent::Webhook)
        .await
        .map_err(err("first"))?;
    carry_out(*n1, &slow, &first).await?;
    let second = n2
        .transition(&slow, JobEvent::Webhook)
        .await
        .map_err(err("second"))?;
    let third = n3
        .transition(&slow, JobEvent::Webhook)
        .await
        .map_err(err("third"))?;
    let replies = [reply(&first), reply(&second), reply(&third)];
    check(
        replies
            == [
                Some(TriggerReply::Started(1)),
                Some(TriggerReply::Queued),
                Some(TriggerReply::Busy),
            ],
        || format!("replies {replies:?}"),
    )?;
    let mut taken = Vec::new();
    for _ in 0..50 {
        taken = n2.take_orders(4).await.map_err(err("take"))?;
        if !taken.is_empty() {
            break;
        }
    }
    check(taken.len() == 1, || format!("n2 took {taken:?}"))?;
    let others = n3.take_orders(4).await.map_err(err("take by n3"))?;
    check(others.is_empty(), || {
        format!("n3 took {others:?} while n2 holds it")
    })?;
    let delivery = taken.remove(0);
    let run = delivery.order.run.clone();
    n2.transition(
        &slow,
        JobEvent::Accepted {
            run: run.clone(),
            node: n2.node().clone(),
        },
    )
    .await
    .map_err(err("accept"))?;
    delivery.answer(AckKind::Accept).await.map_err(err("ack"))?;
    let finished = n2
        .transition(
            &slow,
            JobEvent::Finished {
                run,
                node: n2.node().clone(),
                status: RunStatus::Success,
                at: jiff::Timestamp::now(),
            },
        )
        .await
        .map_err(err("finish"))?;
    let next = dispatches(&finished);
    check(next.len() == 1 && next[0].0.counter == 2, || {
        format!("after the finish: {next:?}")
    })?;
    Ok(())
}

/// Orders for a node reach only that node, and orders for a tag only nodes with it.
/// `nodes` are n1 (tag gpu), n2 (no tag), n3 (tag gpu).
pub async fn orders_reach_their_node_or_tag(nodes: &[&dyn Coordinator]) -> Result<(), String> {
    let [n1, n2, n3] = nodes else {
        return Err("three nodes".into());
    };
    let err =
        |what: &'static str| move |e: super::coordinator::ClusterError| format!("{what}: {e}");
    let n2_name = n2.node().clone();
    let pinned = job("contract_pin", RunOn::Node(n2_name));
    let t = n1
        .transition(&pinned, JobEvent::ApiRun)
        .await
        .map_err(err("pin"))?;
    carry_out(*n1, &pinned, &t).await?;
    check(
        n1.take_orders(8).await.map_err(err("n1"))?.is_empty(),
        || "n1 took n2's order".into(),
    )?;
    check(
        n3.take_orders(8).await.map_err(err("n3"))?.is_empty(),
        || "n3 took n2's order".into(),
    )?;
    let mine = n2.take_orders(8).await.map_err(err("n2"))?;
    check(
        mine.len() == 1 && mine[0].order.job == "contract_pin",
        || format!("n2 took {mine:?}"),
    )?;
    for delivery in mine {
        delivery.answer(AckKind::Accept).await.map_err(err("ack"))?;
    }
    let gpu = job("contract_gpu", RunOn::Tag("gpu".into()));
    let t = n2
        .transition(&gpu, JobEvent::ApiRun)
        .await
        .map_err(err("gpu"))?;
    carry_out(*n2, &gpu, &t).await?;
    check(
        n2.take_orders(8).await.map_err(err("n2 gpu"))?.is_empty(),
        || "n2 has no gpu tag".into(),
    )?;
    let gpu_taken = n3.take_orders(8).await.map_err(err("n3 gpu"))?;
    check(gpu_taken.len() == 1, || format!("n3 took {gpu_taken:?}"))?;
    for delivery in gpu_taken {
        delivery.answer(AckKind::Accept).await.map_err(err("ack"))?;
    }
    Ok(())
}
