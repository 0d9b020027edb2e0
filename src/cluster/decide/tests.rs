//! Tests of [`decide`]: a table test for every row of cluster spec 7.4 and every queue,
//! pause and cancel rule, with actions compared as short words (`dispatch r1 #1 any
//! timer`, `reply 429`) so each test reads as the rule it checks; and a proptest that
//! plays random interleavings of three nodes against one shared record, with a small
//! executor that holds orders, accepts them late, runs them and loses nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::*;
use crate::job::{JobId, JobKind};

const T0: &str = "2026-11-22T03:00:00Z";

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn node(name: &str) -> NodeName {
    NodeName::parse(name).unwrap()
}

fn later(seconds: i64) -> Timestamp {
    at(T0)
        .checked_add(SignedDuration::from_secs(seconds))
        .unwrap()
}

/// The context of node `n1` at `T0`, three live nodes, `run_on = any`.
fn ctx() -> Ctx {
    Ctx {
        now: at(T0),
        node: node("n1"),
        live_nodes: vec![node("n1"), node("n2"), node("n3")],
        run_on: RunOn::Any,
        new_runs: vec!["r1".into(), "r2".into(), "r3".into()],
        dispatch_timeout: Duration::from_secs(600),
        job: JobKey::exec(JobId::from_raw("render")),
        job_digest: "sha256:00".into(),
    }
}

fn ctx_on(run_on: RunOn) -> Ctx {
    Ctx { run_on, ..ctx() }
}

/// The same context with fresh run ids `<prefix>1..3`, at `now`.
fn ctx_ids(base: &Ctx, prefix: &str, now: Timestamp) -> Ctx {
    Ctx {
        now,
        new_runs: (1..=3).map(|i| format!("{prefix}{i}")).collect(),
        ..base.clone()
    }
}

fn idle() -> JobRecord {
    JobRecord::seed(0, None, None, false)
}

fn paused() -> JobRecord {
    JobRecord::seed(0, None, None, true)
}

fn accepted(run: &str, by: &str) -> JobEvent {
    JobEvent::Accepted {
        run: run.into(),
        node: node(by),
    }
}

fn finished(run: &str, by: &str, status: RunStatus) -> JobEvent {
    JobEvent::Finished {
        run: run.into(),
        node: node(by),
        status,
        at: later(30),
    }
}

fn timer(slot: i64) -> JobEvent {
    JobEvent::Timer {
        slot,
        catchup: false,
    }
}

/// Applies `event` and returns the decision; panics on a refusal.
fn apply(record: &JobRecord, event: JobEvent, ctx: &Ctx) -> Decision {
    decide(record, &event, ctx).unwrap_or_else(|why| panic!("{event:?} refused: {why}"))
}

/// Applies `event` and returns the new record and the actions as words.
fn step(record: &JobRecord, event: JobEvent, ctx: &Ctx) -> (JobRecord, Vec<String>) {
    let decision = apply(record, event, ctx);
    (decision.record, words(&decision.actions))
}

/// A record whose active run `r1` (counter 1) runs on `n2`.
fn running_on_n2() -> JobRecord {
    let (record, _) = step(&idle(), JobEvent::ApiRun, &ctx());
    step(&record, accepted("r1", "n2"), &ctx()).0
}

fn words(actions: &[Action]) -> Vec<String> {
    actions.iter().map(word).collect()
}

fn word(action: &Action) -> String {
    match action {
        Action::Dispatch { order, target } => {
            let trigger = match order.trigger {
                OrderTrigger::Timer => "timer",
                OrderTrigger::CatchUp => "catchup",
                OrderTrigger::Webhook => "webhook",
                OrderTrigger::Api => "api",
            };
            let slot = order.slot.map(|s| format!(" slot {s}")).unwrap_or_default();
            format!(
                "dispatch {} #{} {target} {trigger}{slot}",
                order.run, order.counter
            )
        }
        Action::WritePausedLog { counter } => format!("paused log #{counter}"),
        Action::Reply(TriggerReply::Started(counter)) => format!("reply 200 started #{counter}"),
        Action::Reply(reply) => format!("reply {}", reply.http_code()),
        Action::RequestCancel { run, node } => match node {
            Some(node) => format!("cancel {run} on {node}"),
            None => format!("cancel {run}"),
        },
        Action::FailRun {
            run,
            counter,
            node,
            status,
            reason,
            order_seq,
        } => {
            let on = node
                .as_ref()
                .map(|n| format!(" on {n}"))
                .unwrap_or_default();
            let seq = order_seq
                .map(|s| format!(" delete {s}"))
                .unwrap_or_default();
            format!("fail {run} #{counter}{on} {status}: {reason}{seq}")
        }
        Action::Notify {
            run,
            counter,
            status,
            ..
        } => format!("notify {run} #{counter} {status}"),
    }
}

// ---- timers -------------------------------------------------------------------------

#[test]
fn a_timer_on_an_idle_job_dispatches_one_order_with_a_new_counter() {
    let record = JobRecord::seed(42, Some(RunStatus::Success), None, false);
    let decision = apply(&record, timer(1_795_413_600), &ctx());
    assert_eq!(
        words(&decision.actions),
        ["dispatch r1 #43 any timer slot 1795413600"]
    );
    let next = decision.record;
    assert!(decision.changed);
    assert_eq!(next.counter, 43);
    assert_eq!(next.last_slot, Some(1_795_413_600));
    let active = next.active.unwrap();
    assert_eq!(
        (active.run.as_str(), active.counter, active.state),
        ("r1", 43, ActiveState::Dispatched)
    );
    assert_eq!(active.target, RunOn::Any);
    assert_eq!(active.node, None);
    assert_eq!(active.since, at(T0));
    assert_eq!(active.deadline, later(600));
    assert!(!active.cancel_requested && active.group.is_none());
}

#[test]
fn a_catch_up_timer_is_dispatched_as_catch_up() {
    let event = JobEvent::Timer {
        slot: 100,
        catchup: true,
    };
    let (_, actions) = step(&idle(), event, &ctx());
    assert_eq!(actions, ["dispatch r1 #1 any catchup slot 100"]);
}

#[test]
fn a_timer_while_paused_is_a_paused_execution_that_consumes_a_counter() {
    let mut record = JobRecord::seed(7, Some(RunStatus::Failed), None, true);
    for (slot, counter) in [(100, 8), (160, 9)] {
        let actions;
        (record, actions) = step(&record, timer(slot), &ctx());
        assert_eq!(actions, [format!("paused log #{counter}")]);
        assert_eq!(record.last_slot, Some(slot));
    }
    assert_eq!(record.counter, 9);
    assert_eq!(record.last_run, Some(at(T0)), "Go sets last_run");
    assert_eq!(
        record.status,
        Some(RunStatus::Failed),
        "status is the last run's"
    );
    assert!(record.active.is_none() && record.paused);
}

#[test]
fn a_timer_while_paused_and_running_is_still_a_paused_execution() {
    let (record, _) = step(&running_on_n2(), JobEvent::Pause, &ctx());
    let (record, actions) = step(&record, timer(100), &ctx());
    assert_eq!(actions, ["paused log #2"]);
    assert_eq!(record.queued, Queued::default());
    assert_eq!(record.active.unwrap().run, "r1");
}

#[test]
fn a_timer_while_running_queues_one_tick_and_further_ticks_coalesce() {
    let (record, actions) = step(&running_on_n2(), timer(100), &ctx());
    assert!(actions.is_empty());
    assert_eq!(record.queued.timer, Some(100));
    assert_eq!(record.last_slot, Some(100));
    assert_eq!(
        decide(&record, &timer(160), &ctx()),
        Err(Refusal::Unchanged)
    );
}

#[test]
fn a_queued_tick_starts_with_its_slot_when_the_run_finishes() {
    let (record, _) = step(&running_on_n2(), timer(100), &ctx());
    let next = ctx_ids(&ctx(), "t", later(40));
    let (record, actions) = step(&record, finished("r1", "n2", RunStatus::Success), &next);
    assert_eq!(
        actions,
        ["notify r1 #1 success", "dispatch t1 #2 any timer slot 100"]
    );
    assert_eq!(record.queued, Queued::default());
    assert_eq!(record.status, Some(RunStatus::Success));
    assert_eq!(record.last_run, Some(later(30)));
}

// ---- webhooks and API runs ----------------------------------------------------------

#[test]
fn three_quick_webhooks_answer_200_200_429_as_go_does() {
    let record = idle();
    let (record, first) = step(&record, JobEvent::Webhook, &ctx());
    let (record, second) = step(&record, JobEvent::Webhook, &ctx());
    let third = apply(&record, JobEvent::Webhook, &ctx());
    assert_eq!(
        first,
        ["dispatch r1 #1 any webhook", "reply 200 started #1"]
    );
    assert_eq!(second, ["reply 200"]);
    assert_eq!(words(&third.actions), ["reply 429"]);
    assert!(!third.changed, "a busy answer writes nothing");
    assert!(record.queued.webhook);
    let codes: Vec<u16> = [
        TriggerReply::Started(1),
        TriggerReply::Queued,
        TriggerReply::Busy,
    ]
    .map(TriggerReply::http_code)
    .to_vec();
    assert_eq!(codes, [200, 200, 429]);
    assert_eq!(TriggerReply::Paused.http_code(), 412);
}

#[test]
fn a_webhook_while_running_queues_one_and_a_third_is_busy() {
    let (record, actions) = step(&running_on_n2(), JobEvent::Webhook, &ctx());
    assert_eq!(actions, ["reply 200"]);
    assert!(record.queued.webhook);
    let (unchanged, actions) = step(&record, JobEvent::ApiRun, &ctx());
    assert_eq!(actions, ["reply 429"]);
    assert_eq!(unchanged, record);
}

#[test]
fn a_webhook_while_paused_is_refused_with_412_and_changes_nothing() {
    for event in [JobEvent::Webhook, JobEvent::ApiRun] {
        let decision = apply(&paused(), event, &ctx());
        assert_eq!(words(&decision.actions), ["reply 412"]);
        assert_eq!(decision.record, paused());
        assert!(!decision.changed);
    }
}

#[test]
fn an_api_run_starts_an_api_order_and_queues_as_a_webhook() {
    let (record, actions) = step(&idle(), JobEvent::ApiRun, &ctx());
    assert_eq!(actions, ["dispatch r1 #1 any api", "reply 200 started #1"]);
    let (record, _) = step(&record, accepted("r1", "n1"), &ctx());
    let (record, _) = step(&record, JobEvent::ApiRun, &ctx());
    let next = ctx_ids(&ctx(), "q", later(40));
    let (_, actions) = step(&record, finished("r1", "n1", RunStatus::Failed), &next);
    assert_eq!(
        actions,
        ["notify r1 #1 failed", "dispatch q1 #2 any webhook"]
    );
}

#[test]
fn the_queued_webhook_starts_before_the_queued_tick_and_the_tick_after_it() {
    let (record, _) = step(&running_on_n2(), timer(100), &ctx());
    let (record, _) = step(&record, JobEvent::Webhook, &ctx());
    let second = ctx_ids(&ctx(), "w", later(40));
    let (record, actions) = step(&record, finished("r1", "n2", RunStatus::Success), &second);
    assert_eq!(
        actions,
        ["notify r1 #1 success", "dispatch w1 #2 any webhook"]
    );
    assert_eq!(record.queued.timer, Some(100));
    assert!(!record.queued.webhook);
    let (record, _) = step(&record, accepted("w1", "n3"), &second);
    let third = ctx_ids(&ctx(), "t", later(50));
    let (record, actions) = step(&record, finished("w1", "n3", RunStatus::Success), &third);
    assert_eq!(
        actions,
        ["notify w1 #2 success", "dispatch t1 #3 any timer slot 100"]
    );
    assert_eq!(record.queued, Queued::default());
}

// ---- pause and resume ---------------------------------------------------------------

#[test]
fn pause_keeps_the_active_run_and_its_queue_and_resume_lets_them_go_on() {
    let (record, _) = step(&running_on_n2(), JobEvent::Webhook, &ctx());
    let (record, actions) = step(&record, JobEvent::Pause, &ctx());
    assert!(actions.is_empty(), "a pause cancels nothing");
    assert!(record.paused && record.queued.webhook);
    assert_eq!(record.active.as_ref().unwrap().state, ActiveState::Running);
    let (record, _) = step(&record, JobEvent::Resume, &ctx());
    assert!(!record.paused);
    let next = ctx_ids(&ctx(), "w", later(40));
    let (_, actions) = step(&record, finished("r1", "n2", RunStatus::Success), &next);
    assert_eq!(
        actions,
        ["notify r1 #1 success", "dispatch w1 #2 any webhook"]
    );
}

#[test]
fn a_finish_while_paused_starts_nothing_and_the_queue_becomes_paused_executions() {
    let (record, _) = step(&running_on_n2(), timer(100), &ctx());
    let (record, _) = step(&record, JobEvent::Webhook, &ctx());
    let (record, _) = step(&record, JobEvent::Pause, &ctx());
    let (record, actions) = step(&record, finished("r1", "n2", RunStatus::Success), &ctx());
    assert_eq!(
        actions,
        ["notify r1 #1 success", "paused log #2", "paused log #3"]
    );
    assert!(
        record.paused,
        "the pause outlives the run (improves on spec 6.4)"
    );
    assert!(record.active.is_none());
    assert_eq!(record.queued, Queued::default());
    assert_eq!(record.counter, 3);
    assert_eq!(record.status, Some(RunStatus::Success));
}

#[test]
fn a_second_pause_or_resume_changes_nothing() {
    assert_eq!(
        decide(&paused(), &JobEvent::Pause, &ctx()),
        Err(Refusal::Unchanged)
    );
    assert_eq!(
        decide(&idle(), &JobEvent::Resume, &ctx()),
        Err(Refusal::Unchanged)
    );
    let (record, actions) = step(&paused(), JobEvent::Resume, &ctx());
    assert!(actions.is_empty() && !record.paused);
    assert_eq!(record.status, None, "a command job keeps its status");
}

#[test]
fn resuming_an_http_job_resets_its_status_to_started() {
    let http = Ctx {
        job: JobKey::http(JobId::from_raw("ping")),
        ..ctx()
    };
    let record = JobRecord::seed(3, Some(RunStatus::Failed), None, true);
    let (record, _) = step(&record, JobEvent::Resume, &http);
    assert_eq!(record.status, Some(RunStatus::Started));
}

// ---- dispatch, accept, finish -------------------------------------------------------

#[test]
fn dispatched_saves_the_order_sequence_and_a_stranger_is_stale() {
    let (record, _) = step(&idle(), JobEvent::Webhook, &ctx());
    let seq = |run: &str, seq| JobEvent::Dispatched {
        run: run.into(),
        seq,
    };
    let (record, actions) = step(&record, seq("r1", 1288), &ctx());
    assert!(actions.is_empty());
    assert_eq!(record.active.as_ref().unwrap().seq, Some(1288));
    assert_eq!(
        decide(&record, &seq("r1", 1288), &ctx()),
        Err(Refusal::Unchanged)
    );
    assert_eq!(decide(&record, &seq("r9", 5), &ctx()), Err(Refusal::Stale));
    assert_eq!(decide(&idle(), &seq("r1", 5), &ctx()), Err(Refusal::Stale));
}

#[test]
fn an_accept_turns_the_dispatched_run_running_once_and_a_second_accept_is_stale() {
    let (record, _) = step(&idle(), JobEvent::Webhook, &ctx());
    let (record, actions) = step(&record, accepted("r1", "n3"), &ctx());
    assert!(actions.is_empty());
    let active = record.active.as_ref().unwrap();
    assert_eq!(active.state, ActiveState::Running);
    assert_eq!(active.node, Some(node("n3")));
    for event in [
        accepted("r1", "n3"),
        accepted("r1", "n1"),
        accepted("r9", "n1"),
    ] {
        assert_eq!(
            decide(&record, &event, &ctx()),
            Err(Refusal::Stale),
            "{event:?}"
        );
    }
    assert_eq!(
        decide(&idle(), &accepted("r1", "n1"), &ctx()),
        Err(Refusal::Stale)
    );
}

#[test]
fn an_order_pinned_to_a_node_is_accepted_only_by_that_node() {
    let pinned = ctx_on(RunOn::Node(node("n2")));
    let (record, actions) = step(&idle(), timer(100), &pinned);
    assert_eq!(actions, ["dispatch r1 #1 n2 timer slot 100"]);
    assert_eq!(
        decide(&record, &accepted("r1", "n1"), &pinned),
        Err(Refusal::Stale)
    );
    let (record, _) = step(&record, accepted("r1", "n2"), &pinned);
    assert_eq!(record.active.unwrap().node, Some(node("n2")));
}

#[test]
fn a_finish_closes_the_active_run_and_notifies_once() {
    let before = JobRecord {
        status: Some(RunStatus::Failed),
        ..running_on_n2()
    };
    let decision = apply(&before, finished("r1", "n2", RunStatus::Success), &ctx());
    assert_eq!(
        decision.actions,
        [Action::Notify {
            run: "r1".into(),
            counter: 1,
            status: RunStatus::Success,
            previous: Some(RunStatus::Failed),
        }]
    );
    let record = decision.record;
    assert_eq!(record.status, Some(RunStatus::Success));
    assert_eq!(record.last_run, Some(later(30)));
    assert!(record.active.is_none());
    assert_eq!(
        decide(&record, &finished("r1", "n2", RunStatus::Success), &ctx()),
        Err(Refusal::Stale),
        "at most one final status per run"
    );
}

#[test]
fn a_finish_of_a_run_that_is_not_active_or_not_running_there_is_stale() {
    let (dispatched, _) = step(&idle(), JobEvent::Webhook, &ctx());
    let running = running_on_n2();
    let cases = [
        (&dispatched, finished("r1", "n2", RunStatus::Success)),
        (&running, finished("r1", "n1", RunStatus::Success)),
        (&running, finished("r0", "n2", RunStatus::Success)),
    ];
    for (record, event) in cases {
        assert_eq!(
            decide(record, &event, &ctx()),
            Err(Refusal::Stale),
            "{event:?}"
        );
    }
}

// ---- cancel -------------------------------------------------------------------------

#[test]
fn cancel_of_a_running_run_asks_its_node_and_the_run_ends_as_canceled() {
    let (record, _) = step(&running_on_n2(), JobEvent::Webhook, &ctx());
    let (record, actions) = step(&record, JobEvent::Cancel, &ctx());
    assert_eq!(actions, ["cancel r1 on n2"]);
    assert!(record.active.as_ref().unwrap().cancel_requested);
    assert_eq!(
        decide(&record, &JobEvent::Cancel, &ctx()),
        Err(Refusal::Unchanged)
    );
    let next = ctx_ids(&ctx(), "w", later(40));
    let (record, actions) = step(&record, finished("r1", "n2", RunStatus::Canceled), &next);
    assert_eq!(
        actions,
        ["notify r1 #1 canceled", "dispatch w1 #2 any webhook"],
        "a queued trigger still runs after a canceled run"
    );
    assert!(!record.active.unwrap().cancel_requested);
}

#[test]
fn cancel_of_a_dispatched_run_ends_it_at_once_and_the_queue_goes_on() {
    let (record, _) = step(&idle(), JobEvent::Webhook, &ctx());
    let (record, _) = step(
        &record,
        JobEvent::Dispatched {
            run: "r1".into(),
            seq: 7,
        },
        &ctx(),
    );
    let (record, _) = step(&record, timer(100), &ctx());
    let next = ctx_ids(&ctx(), "t", later(5));
    let (record, actions) = step(&record, JobEvent::Cancel, &next);
    assert_eq!(
        actions,
        [
            "fail r1 #1 canceled: canceled before a node accepted it delete 7",
            "notify r1 #1 canceled",
            "dispatch t1 #2 any timer slot 100",
        ]
    );
    assert_eq!(record.status, Some(RunStatus::Canceled));
    assert_eq!(record.last_run, Some(later(5)));
    assert_eq!(
        decide(&record, &accepted("r1", "n1"), &next),
        Err(Refusal::Stale),
        "a late delivery of the canceled order is refused"
    );
}

#[test]
fn cancel_without_an_active_run_changes_nothing() {
    for record in [idle(), paused()] {
        assert_eq!(
            decide(&record, &JobEvent::Cancel, &ctx()),
            Err(Refusal::Unchanged)
        );
    }
}

#[test]
fn an_accept_after_a_cancel_request_asks_the_node_to_cancel_at_once() {
    let (mut record, _) = step(&idle(), JobEvent::Webhook, &ctx());
    if let Some(active) = record.active.as_mut() {
        active.cancel_requested = true;
    }
    let (record, actions) = step(&record, accepted("r1", "n2"), &ctx());
    assert_eq!(actions, ["cancel r1 on n2"]);
    assert_eq!(record.active.unwrap().state, ActiveState::Running);
}

// ---- node loss, expiry, dead orders -------------------------------------------------

#[test]
fn a_lost_node_fails_the_run_it_was_running_and_the_queue_goes_on() {
    let (record, _) = step(&running_on_n2(), JobEvent::Webhook, &ctx());
    let next = ctx_ids(&ctx(), "w", later(20));
    let event = JobEvent::NodeLost { node: node("n2") };
    let (record, actions) = step(&record, event, &next);
    assert_eq!(
        actions,
        [
            "fail r1 #1 on n2 failed: node n2 stopped answering",
            "notify r1 #1 failed",
            "dispatch w1 #2 any webhook",
        ]
    );
    assert_eq!(record.status, Some(RunStatus::Failed));
    assert_eq!(
        decide(&record, &finished("r1", "n2", RunStatus::Success), &next),
        Err(Refusal::Stale),
        "the lost node's late finish is not a second final status"
    );
}

#[test]
fn a_lost_node_leaves_a_dispatched_run_and_other_nodes_runs_alone() {
    let lost = |name: &str| JobEvent::NodeLost { node: node(name) };
    let pinned = ctx_on(RunOn::Node(node("n2")));
    let (dispatched, _) = step(&idle(), JobEvent::Webhook, &pinned);
    assert_eq!(
        decide(&dispatched, &lost("n2"), &pinned),
        Err(Refusal::Unchanged),
        "a pinned order waits for its node until dispatch_timeout"
    );
    assert_eq!(
        decide(&running_on_n2(), &lost("n3"), &ctx()),
        Err(Refusal::Unchanged)
    );
    assert_eq!(
        decide(&idle(), &lost("n2"), &ctx()),
        Err(Refusal::Unchanged)
    );
}

#[test]
fn an_expired_dispatch_fails_the_run_naming_the_target_and_the_timeout() {
    let pinned = ctx_on(RunOn::Node(node("web-2")));
    let (record, _) = step(&idle(), timer(100), &pinned);
    let expired = JobEvent::DispatchExpired { run: "r1".into() };
    let late = Ctx {
        now: later(600),
        ..pinned.clone()
    };
    let (record, actions) = step(&record, expired, &late);
    assert_eq!(
        actions,
        [
            "fail r1 #1 failed: not accepted by web-2 within 10m",
            "notify r1 #1 failed",
        ]
    );
    assert!(record.active.is_none());
    assert_eq!(record.status, Some(RunStatus::Failed));
}

#[test]
fn an_expiry_before_the_deadline_or_of_an_accepted_run_is_stale() {
    let expired = JobEvent::DispatchExpired { run: "r1".into() };
    let (dispatched, _) = step(&idle(), JobEvent::Webhook, &ctx());
    let early = Ctx {
        now: later(599),
        ..ctx()
    };
    assert_eq!(decide(&dispatched, &expired, &early), Err(Refusal::Stale));
    let late = Ctx {
        now: later(700),
        ..ctx()
    };
    assert_eq!(
        decide(&running_on_n2(), &expired, &late),
        Err(Refusal::Stale)
    );
    assert_eq!(decide(&idle(), &expired, &late), Err(Refusal::Stale));
}

#[test]
fn a_dead_order_fails_the_still_dispatched_run_and_only_that() {
    let dead = JobEvent::OrderDead { run: "r1".into() };
    let (record, _) = step(&idle(), JobEvent::Webhook, &ctx());
    let (record, actions) = step(&record, dead.clone(), &ctx());
    assert_eq!(
        actions,
        [
            "fail r1 #1 failed: order dead after max deliveries",
            "notify r1 #1 failed",
        ]
    );
    assert!(record.active.is_none());
    assert_eq!(decide(&running_on_n2(), &dead, &ctx()), Err(Refusal::Stale));
}

// ---- run_on = all -------------------------------------------------------------------

#[test]
fn run_on_all_fans_out_one_order_per_live_node_with_distinct_counters() {
    let all = ctx_on(RunOn::All);
    let record = JobRecord::seed(10, None, None, false);
    let (record, actions) = step(&record, JobEvent::Webhook, &all);
    assert_eq!(
        actions,
        [
            "dispatch r1 #11 n1 webhook",
            "dispatch r2 #12 n2 webhook",
            "dispatch r3 #13 n3 webhook",
            "reply 200 started #11",
        ]
    );
    assert_eq!(record.counter, 13);
    let active = record.active.unwrap();
    assert_eq!((active.run.as_str(), active.counter), ("r1", 11));
    assert_eq!(active.target, RunOn::All);
    let group = active.group.unwrap();
    let members: Vec<(&str, &str, u64)> = group
        .iter()
        .map(|(n, m)| (n.as_str(), m.run.as_str(), m.counter))
        .collect();
    assert_eq!(
        members,
        [("n1", "r1", 11), ("n2", "r2", 12), ("n3", "r3", 13)]
    );
}

/// A fan-out over n1..n3 (runs r1..r3, counters 1..3) with n1 and n2 running.
fn fan_out_running() -> (JobRecord, Ctx) {
    let all = ctx_on(RunOn::All);
    let (record, _) = step(&idle(), timer(100), &all);
    let (record, _) = step(&record, accepted("r1", "n1"), &all);
    let (record, _) = step(&record, accepted("r2", "n2"), &all);
    (record, all)
}

#[test]
fn a_fan_out_member_is_accepted_only_by_its_node_and_ends_only_with_every_member() {
    let (record, all) = fan_out_running();
    assert_eq!(record.active.as_ref().unwrap().state, ActiveState::Running);
    assert_eq!(
        decide(&record, &accepted("r3", "n1"), &all),
        Err(Refusal::Stale)
    );
    let (record, _) = step(&record, timer(160), &all);
    let (record, _) = step(&record, accepted("r3", "n3"), &all);
    let (record, actions) = step(&record, finished("r2", "n2", RunStatus::Failed), &all);
    assert_eq!(actions, ["notify r2 #2 failed"]);
    assert_eq!(record.status, Some(RunStatus::Failed));
    let (record, actions) = step(&record, finished("r1", "n1", RunStatus::Success), &all);
    assert_eq!(actions, ["notify r1 #1 success"]);
    assert!(record.active.is_some());
    assert_eq!(
        decide(&record, &finished("r1", "n1", RunStatus::Success), &all),
        Err(Refusal::Stale)
    );
    let next = ctx_ids(&all, "t", later(60));
    let (record, actions) = step(&record, finished("r3", "n3", RunStatus::Success), &next);
    assert_eq!(
        actions,
        [
            "notify r3 #3 success",
            "dispatch t1 #4 n1 timer slot 160",
            "dispatch t2 #5 n2 timer slot 160",
            "dispatch t3 #6 n3 timer slot 160",
        ]
    );
    assert_eq!(record.counter, 6);
}

#[test]
fn a_lost_node_fails_only_its_member_of_a_fan_out() {
    let (record, all) = fan_out_running();
    let (record, actions) = step(&record, JobEvent::NodeLost { node: node("n2") }, &all);
    assert_eq!(
        actions,
        [
            "fail r2 #2 on n2 failed: node n2 stopped answering",
            "notify r2 #2 failed",
        ]
    );
    let group = record.active.unwrap().group.unwrap();
    assert_eq!(group[&node("n2")].status, Some(RunStatus::Failed));
    assert_eq!(group[&node("n1")].status, None);
}

#[test]
fn an_unaccepted_fan_out_member_expires_on_its_own() {
    let (record, all) = fan_out_running();
    let late = Ctx {
        now: later(600),
        ..all
    };
    let expired = JobEvent::DispatchExpired { run: "r3".into() };
    let (_, actions) = step(&record, expired, &late);
    assert_eq!(
        actions,
        [
            "fail r3 #3 failed: not accepted by n3 within 10m",
            "notify r3 #3 failed",
        ]
    );
}

#[test]
fn cancel_of_a_fan_out_cancels_dispatched_members_at_once_and_asks_running_ones() {
    let (record, all) = fan_out_running();
    let (record, actions) = step(&record, JobEvent::Cancel, &all);
    assert_eq!(
        actions,
        [
            "cancel r1 on n1",
            "cancel r2 on n2",
            "fail r3 #3 canceled: canceled before a node accepted it",
            "notify r3 #3 canceled",
        ]
    );
    let active = record.active.as_ref().unwrap();
    assert!(active.cancel_requested);
    let (record, _) = step(&record, finished("r1", "n1", RunStatus::Canceled), &all);
    let (record, _) = step(&record, finished("r2", "n2", RunStatus::Canceled), &all);
    assert!(record.active.is_none());
}

#[test]
fn run_on_all_without_a_live_node_is_refused() {
    let nobody = Ctx {
        live_nodes: Vec::new(),
        ..ctx_on(RunOn::All)
    };
    for event in [timer(100), JobEvent::Webhook] {
        assert_eq!(decide(&idle(), &event, &nobody), Err(Refusal::NoLiveNode));
    }
}

#[test]
fn too_few_run_ids_are_refused_before_anything_changes() {
    let short = Ctx {
        new_runs: vec!["r1".into()],
        ..ctx_on(RunOn::All)
    };
    assert_eq!(
        decide(&idle(), &JobEvent::Webhook, &short),
        Err(Refusal::MissingRunIds {
            needed: 3,
            given: 1
        })
    );
    let none = Ctx {
        new_runs: Vec::new(),
        ..ctx()
    };
    assert_eq!(
        decide(&idle(), &timer(5), &none),
        Err(Refusal::MissingRunIds {
            needed: 1,
            given: 0
        })
    );
}

#[test]
fn a_local_job_is_never_decided() {
    let local = ctx_on(RunOn::Local);
    for event in [timer(5), JobEvent::Webhook, JobEvent::Pause] {
        assert_eq!(decide(&idle(), &event, &local), Err(Refusal::Unchanged));
    }
}

#[test]
fn orders_carry_the_job_the_trigger_the_origin_and_the_deadline() {
    let http = Ctx {
        node: node("web-1"),
        job: JobKey::http(JobId::from_raw("ping")),
        job_digest: "sha256:ab".into(),
        ..ctx_on(RunOn::Tag("gpu".into()))
    };
    let decision = apply(&idle(), timer(1_795_413_600), &http);
    let Action::Dispatch { order, target } = &decision.actions[0] else {
        panic!("{:?}", decision.actions);
    };
    assert_eq!(*target, RunOn::Tag("gpu".into()));
    assert_eq!(
        *order,
        RunOrder {
            v: 1,
            run: "r1".into(),
            kind: "job_http".into(),
            job: "ping".into(),
            counter: 1,
            trigger: OrderTrigger::Timer,
            slot: Some(1_795_413_600),
            origin: node("web-1"),
            enqueued_at: at(T0),
            deadline: later(600),
            job_digest: "sha256:ab".into(),
        }
    );
}

// ---- seeding and the JSON shape -----------------------------------------------------

#[test]
fn seeding_takes_the_local_state_and_raising_the_counter_only_goes_up() {
    let mut record = JobRecord::seed(
        41,
        Some(RunStatus::Success),
        Some(at("2026-11-22T02:00:07Z")),
        true,
    );
    assert_eq!(record.v, RECORD_VERSION);
    assert!(record.paused && record.active.is_none() && record.last_slot.is_none());
    assert_eq!(record.queued, Queued::default());
    assert!(!record.raise_counter(40));
    assert!(!record.raise_counter(41));
    assert_eq!(record.counter, 41);
    assert!(record.raise_counter(57));
    assert_eq!(record.counter, 57);
    record.paused = false;
    let (_, actions) = step(&record, timer(5), &ctx());
    assert_eq!(actions, ["dispatch r1 #58 any timer slot 5"]);
}

/// The example of cluster spec 7.4, with its elisions filled in.
const SPEC_EXAMPLE: &str = r#"{"v":1,
 "counter":42, "status":"success", "last_run":"2026-11-22T02:00:07Z", "paused":false,
 "last_slot":1795413600,
 "active":{"run":"0193f0c2-0000-7000-8000-000000000000","counter":43,"target":"any","node":null,"state":"dispatched",
           "seq":1288,"since":"2026-11-22T03:00:00Z","deadline":"2026-11-22T03:10:00Z",
           "cancel_requested":false,"group":null},
 "queued":{"webhook":false,"timer":null}}"#;

fn keys(value: &serde_json::Value) -> Vec<String> {
    value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn the_record_serialises_in_the_shape_of_spec_7_4() {
    let record: JobRecord = serde_json::from_str(SPEC_EXAMPLE).unwrap();
    assert_eq!(record.counter, 42);
    assert_eq!(record.status, Some(RunStatus::Success));
    let active = record.active.as_ref().unwrap();
    assert_eq!(active.state, ActiveState::Dispatched);
    assert_eq!(active.deadline, later(600));
    let ours = serde_json::to_value(&record).unwrap();
    let spec: serde_json::Value = serde_json::from_str(SPEC_EXAMPLE).unwrap();
    assert_eq!(ours, spec, "the same keys and the same values");
    let mut sorted_spec = keys(&spec);
    sorted_spec.sort();
    assert_eq!(
        sorted_spec,
        [
            "active",
            "counter",
            "last_run",
            "last_slot",
            "paused",
            "queued",
            "status",
            "v"
        ]
    );
    assert_eq!(keys(&ours["active"]).len(), 10);
    let text = serde_json::to_string(&idle()).unwrap();
    assert_eq!(
        text,
        r#"{"v":1,"counter":0,"status":null,"last_run":null,"paused":false,"last_slot":null,"active":null,"queued":{"webhook":false,"timer":null}}"#
    );
}

#[test]
fn a_fan_out_round_trips_through_json_keyed_by_node() {
    let (record, _) = fan_out_running();
    let (record, _) = step(&record, finished("r1", "n1", RunStatus::Success), &ctx());
    let value = serde_json::to_value(&record).unwrap();
    let member = &value["active"]["group"]["n1"];
    assert_eq!(member["run"], "r1");
    assert_eq!(member["counter"], 1);
    assert_eq!(member["state"], "running");
    assert_eq!(member["status"], "success");
    assert_eq!(value["active"]["target"], "all");
    let back: JobRecord = serde_json::from_value(value).unwrap();
    assert_eq!(back, record);
}

#[test]
fn an_empty_or_unknown_status_word_reads_as_none_or_fails() {
    let go_resumed = SPEC_EXAMPLE.replace(r#""status":"success""#, r#""status":"""#);
    let record: JobRecord = serde_json::from_str(&go_resumed).unwrap();
    assert_eq!(record.status, None);
    let bad = SPEC_EXAMPLE.replace(r#""status":"success""#, r#""status":"fine""#);
    let error = serde_json::from_str::<JobRecord>(&bad).unwrap_err();
    assert!(error.to_string().contains("unknown run status"), "{error}");
}

// ---- random interleavings of three nodes --------------------------------------------

/// The three simulated nodes.
const NODES: [&str; 3] = ["n1", "n2", "n3"];

/// One thing that happens in the simulated cluster.
#[derive(Debug, Clone)]
enum Op {
    /// Node `by` wins a timer slot.
    Timer { by: usize, catchup: bool },
    /// A webhook arrives at node `by`.
    Webhook { by: usize },
    /// An API run arrives at node `by`.
    ApiRun { by: usize },
    /// Pause through node `by`.
    Pause { by: usize },
    /// Resume through node `by`.
    Resume { by: usize },
    /// Cancel through node `by`.
    Cancel { by: usize },
    /// The `PubAck` of a waiting order comes back.
    PubAck { pick: usize },
    /// Node `by` pulls a waiting order it may take; with `lose_ack` it crashes before
    /// acking, so the order is delivered again.
    Accept {
        pick: usize,
        by: usize,
        lose_ack: bool,
    },
    /// An executing run ends.
    Finish { pick: usize, success: bool },
    /// A node's lease expires; its runs go on unseen (a partition) and report later.
    NodeLost { by: usize },
    /// Time passes beyond a waiting order's deadline and the sweep expires it.
    Expire { pick: usize },
    /// A waiting order reaches `MaxDeliver`.
    OrderDead { pick: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let by = 0..NODES.len();
    let pick = 0..8usize;
    prop_oneof![
        4 => (by.clone(), any::<bool>()).prop_map(|(by, catchup)| Op::Timer { by, catchup }),
        4 => by.clone().prop_map(|by| Op::Webhook { by }),
        2 => by.clone().prop_map(|by| Op::ApiRun { by }),
        1 => by.clone().prop_map(|by| Op::Pause { by }),
        2 => by.clone().prop_map(|by| Op::Resume { by }),
        1 => by.clone().prop_map(|by| Op::Cancel { by }),
        2 => pick.clone().prop_map(|pick| Op::PubAck { pick }),
        6 => (pick.clone(), by.clone(), prop::bool::weighted(0.2))
            .prop_map(|(pick, by, lose_ack)| Op::Accept { pick, by, lose_ack }),
        6 => (pick.clone(), any::<bool>()).prop_map(|(pick, success)| Op::Finish { pick, success }),
        1 => by.prop_map(|by| Op::NodeLost { by }),
        1 => pick.clone().prop_map(|pick| Op::Expire { pick }),
        1 => pick.prop_map(|pick| Op::OrderDead { pick }),
    ]
}

fn run_on() -> impl Strategy<Value = RunOn> {
    prop_oneof![
        Just(RunOn::Any),
        Just(RunOn::All),
        Just(RunOn::Node(node("n2"))),
        Just(RunOn::Tag("gpu".into())),
    ]
}

/// An order in the work queue.
#[derive(Debug, Clone)]
struct Waiting {
    run: String,
    target: RunOn,
    deadline: Timestamp,
    /// Already accepted once by a node that crashed before acking: this delivery must
    /// be refused.
    redelivery: bool,
}

/// The cluster around the one shared record: the work queue, the executors, and what
/// every run ever got.
struct World {
    record: JobRecord,
    run_on: RunOn,
    now: Timestamp,
    next_id: u64,
    slot: i64,
    queue: Vec<Waiting>,
    /// Runs executing, with their node and whether a cancel reached them.
    executing: Vec<(String, NodeName, bool)>,
    /// Runs of lost nodes that still execute and will report a finish.
    zombies: Vec<(String, NodeName)>,
    /// Every counter ever allocated, in order.
    counters: Vec<u64>,
    /// Every run ever dispatched.
    dispatched: BTreeSet<String>,
    /// The final statuses each run got (from `Notify`).
    finals: BTreeMap<String, Vec<RunStatus>>,
}

impl World {
    fn new(run_on: RunOn) -> Self {
        Self {
            record: JobRecord::seed(5, None, None, false),
            run_on,
            now: at(T0),
            next_id: 0,
            slot: 0,
            queue: Vec::new(),
            executing: Vec::new(),
            zombies: Vec::new(),
            counters: vec![5],
            dispatched: BTreeSet::new(),
            finals: BTreeMap::new(),
        }
    }

    fn ctx(&mut self, by: usize) -> Ctx {
        let new_runs = (0..NODES.len())
            .map(|_| {
                self.next_id += 1;
                format!("run-{}", self.next_id)
            })
            .collect();
        Ctx {
            now: self.now,
            node: node(NODES[by]),
            live_nodes: NODES.iter().map(|n| node(n)).collect(),
            run_on: self.run_on.clone(),
            new_runs,
            dispatch_timeout: Duration::from_secs(600),
            job: JobKey {
                kind: JobKind::Exec,
                id: JobId::from_raw("render"),
            },
            job_digest: "sha256:00".into(),
        }
    }

    /// Applies `event` as node `by`. A refusal writes nothing and is returned; otherwise
    /// the new record is installed as the CAS winner would and its actions carried out.
    fn offer(&mut self, by: usize, event: &JobEvent) -> Result<Option<Refusal>, TestCaseError> {
        let ctx = self.ctx(by);
        let decision = match decide(&self.record, event, &ctx) {
            Ok(decision) => decision,
            Err(refusal) => return Ok(Some(refusal)),
        };
        prop_assert_eq!(decision.changed, decision.record != self.record);
        self.record = decision.record;
        let mut failed = BTreeSet::new();
        for action in decision.actions {
            match action {
                Action::Dispatch { order, target } => {
                    self.allocated(order.counter)?;
                    prop_assert!(self.dispatched.insert(order.run.clone()));
                    self.queue.push(Waiting {
                        run: order.run,
                        target,
                        deadline: order.deadline,
                        redelivery: false,
                    });
                }
                Action::WritePausedLog { counter } => self.allocated(counter)?,
                Action::Reply(_) => {}
                Action::RequestCancel { run, node } => {
                    for running in self.executing.iter_mut().filter(|e| e.0 == run) {
                        prop_assert_eq!(Some(&running.1), node.as_ref());
                        running.2 = true;
                    }
                }
                Action::FailRun { run, .. } => {
                    // A waiting order is deleted; a copy already accepted once stays
                    // in the stream and is refused when delivered again.
                    self.queue.retain(|w| w.run != run || w.redelivery);
                    prop_assert!(!self.executing.iter().any(|e| e.0 == run));
                    failed.insert(run);
                }
                Action::Notify { run, status, .. } => {
                    prop_assert!(self.dispatched.contains(&run));
                    self.finals.entry(run).or_default().push(status);
                }
            }
        }
        for run in failed {
            prop_assert!(self.finals.contains_key(&run), "FailRun without Notify");
        }
        Ok(None)
    }

    fn allocated(&mut self, counter: u64) -> Result<(), TestCaseError> {
        let last = self.counters.last().copied().unwrap_or(0);
        prop_assert!(counter > last, "counter {} after {}", counter, last);
        self.counters.push(counter);
        Ok(())
    }

    fn play(&mut self, op: &Op) -> Result<(), TestCaseError> {
        self.now = self
            .now
            .checked_add(SignedDuration::from_secs(1))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        match *op {
            Op::Timer { by, catchup } => {
                self.slot += 60;
                let slot = self.slot;
                self.offer(by, &JobEvent::Timer { slot, catchup })?;
            }
            Op::Webhook { by } => {
                self.offer(by, &JobEvent::Webhook)?;
            }
            Op::ApiRun { by } => {
                self.offer(by, &JobEvent::ApiRun)?;
            }
            Op::Pause { by } => {
                self.offer(by, &JobEvent::Pause)?;
            }
            Op::Resume { by } => {
                self.offer(by, &JobEvent::Resume)?;
            }
            Op::Cancel { by } => {
                self.offer(by, &JobEvent::Cancel)?;
            }
            Op::PubAck { pick } => {
                if let Some(waiting) = pick_from(&self.queue, pick).cloned() {
                    let event = JobEvent::Dispatched {
                        run: waiting.run.clone(),
                        seq: pick as u64 + 1,
                    };
                    let refused = self.offer(0, &event)?;
                    if !waiting.redelivery {
                        prop_assert!(
                            matches!(refused, None | Some(Refusal::Unchanged)),
                            "PubAck of a waiting order refused: {:?}",
                            refused
                        );
                    }
                }
            }
            Op::Accept { pick, by, lose_ack } => self.accept(pick, by, lose_ack)?,
            Op::Finish { pick, success } => self.finish(pick, success)?,
            Op::NodeLost { by } => {
                let lost = node(NODES[by]);
                let (gone, kept): (Vec<_>, Vec<_>) =
                    self.executing.drain(..).partition(|e| e.1 == lost);
                self.executing = kept;
                self.offer((by + 1) % NODES.len(), &JobEvent::NodeLost { node: lost })?;
                for (run, node, _) in gone {
                    prop_assert!(
                        self.finals.contains_key(&run),
                        "lost run {} not failed",
                        run
                    );
                    self.zombies.push((run, node));
                }
            }
            Op::Expire { pick } => {
                if let Some(waiting) = pick_from(&self.queue, pick).cloned() {
                    self.now = self.now.max(waiting.deadline);
                    let event = JobEvent::DispatchExpired {
                        run: waiting.run.clone(),
                    };
                    self.expire(&waiting, &event)?;
                }
            }
            Op::OrderDead { pick } => {
                if let Some(waiting) = pick_from(&self.queue, pick).cloned() {
                    let event = JobEvent::OrderDead {
                        run: waiting.run.clone(),
                    };
                    self.expire(&waiting, &event)?;
                }
            }
        }
        self.check()
    }

    fn accept(&mut self, pick: usize, by: usize, lose_ack: bool) -> Result<(), TestCaseError> {
        let taker = node(NODES[by]);
        let eligible: Vec<usize> = (0..self.queue.len())
            .filter(|&i| match &self.queue[i].target {
                RunOn::Node(pinned) => *pinned == taker,
                _ => true,
            })
            .collect();
        let Some(&index) = pick_from(&eligible, pick) else {
            return Ok(());
        };
        let waiting = self.queue[index].clone();
        let event = JobEvent::Accepted {
            run: waiting.run.clone(),
            node: taker.clone(),
        };
        let refused = self.offer(by, &event)?;
        match refused {
            None => {
                prop_assert!(!waiting.redelivery, "{} started twice", waiting.run);
                prop_assert!(
                    !self.executing.iter().any(|e| e.0 == waiting.run),
                    "{} running on two nodes",
                    waiting.run
                );
                let canceled = self
                    .record
                    .active
                    .as_ref()
                    .is_some_and(|a| a.cancel_requested);
                self.executing.push((waiting.run.clone(), taker, canceled));
                if lose_ack {
                    self.queue[index].redelivery = true;
                } else {
                    self.queue.remove(index);
                }
            }
            Some(why) => {
                prop_assert!(
                    waiting.redelivery,
                    "first delivery of {:?} refused: {}",
                    waiting,
                    why
                );
                prop_assert_eq!(why, Refusal::Stale);
                // Term: the order is gone.
                self.queue.remove(index);
            }
        }
        Ok(())
    }

    fn finish(&mut self, pick: usize, success: bool) -> Result<(), TestCaseError> {
        let zombies = self.zombies.len();
        let total = self.executing.len() + zombies;
        if total == 0 {
            return Ok(());
        }
        let index = pick % total;
        if index < zombies {
            let (run, by) = self.zombies.remove(index);
            let event = JobEvent::Finished {
                run,
                node: by,
                status: RunStatus::Success,
                at: self.now,
            };
            let refused = self.offer(0, &event)?;
            prop_assert_eq!(refused, Some(Refusal::Stale));
            return Ok(());
        }
        let (run, by, canceled) = self.executing.remove(index - zombies);
        let status = match (canceled, success) {
            (true, _) => RunStatus::Canceled,
            (false, true) => RunStatus::Success,
            (false, false) => RunStatus::Failed,
        };
        let event = JobEvent::Finished {
            run: run.clone(),
            node: by.clone(),
            status,
            at: self.now,
        };
        let index = NODES.iter().position(|n| *n == by.as_str()).unwrap_or(0);
        let refused = self.offer(index, &event)?;
        prop_assert!(
            refused.is_none(),
            "finish of executing {} refused: {:?}",
            run,
            refused
        );
        Ok(())
    }

    fn expire(&mut self, waiting: &Waiting, event: &JobEvent) -> Result<(), TestCaseError> {
        let refused = self.offer(1, event)?;
        if waiting.redelivery {
            // Accepted already: the order is acked late or refused; either way it goes.
            prop_assert!(
                refused.is_some(),
                "expiry of an accepted run {}",
                waiting.run
            );
            self.queue.retain(|w| w.run != waiting.run);
        } else {
            prop_assert!(
                refused.is_none(),
                "expiry of waiting {} refused",
                waiting.run
            );
        }
        Ok(())
    }

    /// The invariants after every step.
    fn check(&self) -> Result<(), TestCaseError> {
        let record = &self.record;
        prop_assert_eq!(Some(&record.counter), self.counters.last());
        for (run, statuses) in &self.finals {
            prop_assert_eq!(statuses.len(), 1, "{} got {:?}", run, statuses);
        }
        // The live runs of the world are exactly the unfinished runs of the one active
        // run (or fan-out) of the record.
        let mut recorded: BTreeMap<String, (ActiveState, Option<NodeName>)> = BTreeMap::new();
        if let Some(active) = &record.active {
            match &active.group {
                None => {
                    recorded.insert(active.run.clone(), (active.state, active.node.clone()));
                }
                Some(group) => {
                    prop_assert_eq!(group.len(), NODES.len());
                    for (node, member) in group.iter().filter(|(_, m)| m.status.is_none()) {
                        let on = (member.state == ActiveState::Running).then(|| node.clone());
                        recorded.insert(member.run.clone(), (member.state, on));
                    }
                    prop_assert!(!recorded.is_empty(), "a finished fan-out still active");
                }
            }
        } else {
            prop_assert_eq!(&record.queued, &Queued::default(), "a queue without a run");
        }
        let mut world: BTreeMap<String, (ActiveState, Option<NodeName>)> = BTreeMap::new();
        for waiting in self.queue.iter().filter(|w| !w.redelivery) {
            world.insert(waiting.run.clone(), (ActiveState::Dispatched, None));
        }
        for (run, by, _) in &self.executing {
            let before = world.insert(run.clone(), (ActiveState::Running, Some(by.clone())));
            prop_assert!(before.is_none(), "{} both waiting and running", run);
        }
        prop_assert_eq!(recorded, world);
        Ok(())
    }

    /// Ends everything outstanding: resumes, finishes every run, expires every order,
    /// until the record is idle.
    fn drain(&mut self) -> Result<(), TestCaseError> {
        self.offer(0, &JobEvent::Resume)?;
        for _ in 0..20 {
            if self.record.active.is_none() && self.queue.is_empty() && self.executing.is_empty() {
                break;
            }
            while !self.executing.is_empty() {
                self.finish(self.zombies.len(), true)?;
                self.check()?;
            }
            while let Some(waiting) = self.queue.first().cloned() {
                self.now = self.now.max(waiting.deadline);
                let event = JobEvent::DispatchExpired {
                    run: waiting.run.clone(),
                };
                self.expire(&waiting, &event)?;
                self.check()?;
            }
        }
        prop_assert!(
            self.record.active.is_none(),
            "still active: {:?}",
            self.record
        );
        for run in &self.dispatched {
            let statuses = self.finals.get(run).map_or(0, Vec::len);
            prop_assert_eq!(statuses, 1, "run {} ended {} times", run, statuses);
        }
        Ok(())
    }
}

fn pick_from<T>(items: &[T], pick: usize) -> Option<&T> {
    (!items.is_empty()).then(|| &items[pick % items.len()])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_interleavings_of_three_nodes_keep_every_invariant(
        run_on in run_on(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut world = World::new(run_on);
        for op in &ops {
            world.play(op)?;
        }
        world.drain()?;
    }
}
