//! The scheduling policies of issue 15 as table tests of [`decide`]: retries with
//! their waits, notifications and stops; overlap `skip` and `replace` for triggers
//! and timer ticks; chains on success and failure; catch-up at start; jitter.

use super::*;
use crate::config::policies::{CatchUp, Chain, Overlap};

fn retrying(def: JobDef, retry: u32) -> JobDef {
    with(def, |c| {
        c.policies.retry = retry;
        c.policies.retry_delay = Duration::from_secs(10);
        c.policies.retry_delay_max = Duration::from_secs(60);
        c.notif_on_failed = vec!["ops".into()];
        c.policies.notif_on_retry = vec!["dev".into()];
    })
}

fn chain(names: &[&str]) -> Vec<Chain> {
    names
        .iter()
        .map(|n| Chain {
            job: n.to_string(),
            line: 1,
        })
        .collect()
}

/// The raw effects of one event.
fn effects(w: &mut World, event: Event) -> Vec<Effect> {
    decide(&mut w.state, event, w.now)
}

/// The raw effects of run `counter` of `key` ending now with `status`.
fn end(w: &mut World, key: JobKey, counter: u64, status: RunStatus) -> Vec<Effect> {
    let event = Event::RunFinished(Finished {
        key,
        counter,
        status,
        at: w.now,
        exit_code: None,
        log: Some(PathBuf::from(format!("/log/{counter}.{status}"))),
    });
    effects(w, event)
}

fn notices(effects: &[Effect]) -> Vec<(u64, bool)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Notify(n) => Some((n.counter, n.retrying)),
            _ => None,
        })
        .collect()
}

fn spawned(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::SpawnRun(order) => Some(format!(
                "{}#{} {} {}",
                order.def.key(),
                order.counter,
                order.request.trigger.as_str(),
                order
                    .request
                    .origin
                    .as_ref()
                    .map_or(String::new(), RunOrigin::log_line)
            )),
            _ => None,
        })
        .collect()
}

/// Moves the clock to the job's waiting retry and fires it.
fn fire_retry(w: &mut World, key: &JobKey) -> Vec<Effect> {
    let due = w.view(key).retry.expect("a retry waits").due;
    assert!(due > w.now, "a retry waits: {due} after {}", w.now);
    w.now = due;
    effects(w, Event::TimerDue)
}

#[test]
fn a_failed_run_is_retried_with_growing_waits_and_only_the_last_failure_notifies_failed() {
    let mut w = World::new(4, vec![fresh(retrying(exec("a"), 2))]);
    assert_eq!(
        only_runs(w.trigger(job("a"))),
        ["spawn job/a#1 api", "answer job/a"]
    );
    let first = end(&mut w, job("a"), 1, RunStatus::Failed);
    assert_eq!(notices(&first), [(1, true)], "to notif_on_retry only");
    let wait = w.view(&job("a")).retry.unwrap();
    assert_eq!((wait.attempt, wait.first), (2, 1));
    assert!(wait.due <= w.now.checked_add(secs(10)).unwrap());
    // Nothing runs before its time.
    w.later(0);
    assert!(spawned(&effects(&mut w, Event::TimerDue)).is_empty());
    assert_eq!(
        spawned(&fire_retry(&mut w, &job("a"))),
        ["job/a#2 retry === RETRY 2/3 of #1"]
    );
    let second = end(&mut w, job("a"), 2, RunStatus::Failed);
    assert_eq!(notices(&second), [(2, true)]);
    assert!(w.view(&job("a")).retry.unwrap().due <= w.now.checked_add(secs(20)).unwrap());
    assert_eq!(
        spawned(&fire_retry(&mut w, &job("a"))),
        ["job/a#3 retry === RETRY 3/3 of #1"]
    );
    let last = end(&mut w, job("a"), 3, RunStatus::Failed);
    assert_eq!(
        notices(&last),
        [(3, false)],
        "the last attempt notifies failed"
    );
    assert!(w.view(&job("a")).retry.is_none());
}

#[test]
fn a_retry_that_succeeds_ends_the_retries_and_a_success_is_never_retried() {
    let mut w = World::new(4, vec![fresh(retrying(exec("a"), 3))]);
    w.trigger(job("a"));
    w.finish(job("a"), 1, RunStatus::Failed);
    fire_retry(&mut w, &job("a"));
    let ok = end(&mut w, job("a"), 2, RunStatus::Success);
    assert_eq!(notices(&ok), [(2, false)]);
    assert!(w.view(&job("a")).retry.is_none());
    // A canceled run is not retried either.
    w.trigger(job("a"));
    w.finish(job("a"), 3, RunStatus::Canceled);
    assert!(w.view(&job("a")).retry.is_none());
}

#[test]
fn a_pause_a_cancel_or_a_new_run_stops_the_waiting_retry() {
    let mut w = World::new(4, vec![fresh(retrying(exec("a"), 3))]);
    w.trigger(job("a"));
    w.finish(job("a"), 1, RunStatus::Failed);
    w.on(Event::Pause(job("a")));
    assert!(w.view(&job("a")).retry.is_none());
    w.later(3600);
    assert!(spawned(&effects(&mut w, Event::TimerDue)).is_empty());
    w.on(Event::Resume(job("a")));

    w.trigger(job("a"));
    w.finish(job("a"), 2, RunStatus::Failed);
    assert_eq!(
        w.on(Event::Cancel(job("a"))),
        ["save", "publish", "answer job/a"]
    );
    assert!(w.view(&job("a")).retry.is_none());

    w.trigger(job("a"));
    w.finish(job("a"), 3, RunStatus::Failed);
    assert_eq!(
        only_runs(w.trigger(job("a"))),
        ["spawn job/a#4 api", "answer job/a"]
    );
    assert!(
        w.view(&job("a")).retry.is_none(),
        "the new run supersedes it"
    );
    w.later(3600);
    assert!(spawned(&effects(&mut w, Event::TimerDue)).is_empty());
}

#[test]
fn a_waiting_retry_survives_a_restart_and_runs_when_due() {
    let mut restored = fresh(retrying(exec("a"), 2));
    restored.counter = 7;
    restored.retry = Some(RetryState {
        attempt: 2,
        first: 7,
        due: at(T0).checked_add(secs(5)).unwrap(),
    });
    let mut w = World::new(4, vec![restored]);
    assert_eq!(w.view(&job("a")).retry.unwrap().attempt, 2);
    w.later(5);
    assert_eq!(
        spawned(&effects(&mut w, Event::TimerDue)),
        ["job/a#8 retry === RETRY 2/3 of #7"]
    );
}

#[test]
fn overlap_skip_refuses_and_records_replace_cancels_the_running_run() {
    let skip = with(exec("s"), |c| c.policies.overlap = Overlap::Skip);
    let replace = with(exec("r"), |c| c.policies.overlap = Overlap::Replace);
    let mut w = World::new(4, vec![fresh(skip), fresh(replace)]);
    w.trigger(job("s"));
    let refused = w.trigger(job("s"));
    assert!(refused.contains(&"event".to_string()), "{refused:?}");
    assert!(
        refused.iter().any(|e| e.starts_with("refused")),
        "{refused:?}"
    );
    let view = w.view(&job("s"));
    assert!(!view.queued, "nothing waits");
    assert_eq!(view.skipped, [(w.now, Trigger::Api)]);
    assert!(only_runs(w.finish(job("s"), 1, RunStatus::Success)).is_empty());

    w.trigger(job("r"));
    assert_eq!(
        only_runs(w.trigger(job("r"))),
        ["cancel job/r#1", "answer job/r"]
    );
    assert_eq!(
        only_runs(w.trigger(job("r"))),
        ["cancel job/r#1", "answer job/r"],
        "the newest trigger replaces the one waiting"
    );
    assert_eq!(
        only_runs(w.finish(job("r"), 1, RunStatus::Canceled)),
        ["spawn job/r#2 api"]
    );
}

#[test]
fn timer_ticks_follow_the_overlap_policy() {
    let skip = with(every(exec("s"), 60), |c| c.policies.overlap = Overlap::Skip);
    let skip = with(skip, |c| {
        c.interval = None;
        c.schedule = Some(Schedule::parse("minutely", TimeZone::UTC).unwrap());
    });
    let mut w = World::new(4, vec![fresh(skip)]);
    w.later(60);
    assert_eq!(
        spawned(&effects(&mut w, Event::TimerDue)),
        ["job/s#1 timer "]
    );
    w.later(60);
    let tick = effects(&mut w, Event::TimerDue);
    assert!(spawned(&tick).is_empty());
    assert!(
        !w.view(&job("s")).queued,
        "the tick was skipped, not queued"
    );
    assert_eq!(w.view(&job("s")).skipped.len(), 1);
}

#[test]
fn chains_start_their_targets_on_success_or_failure_after_the_last_attempt() {
    let a = with(retrying(exec("a"), 1), |c| {
        c.policies.on_success = chain(&["B"]);
        c.policies.on_failure = chain(&["c"]);
    });
    let mut w = World::new(4, vec![fresh(a), fresh(exec("b")), fresh(http("c"))]);
    w.trigger(job("a"));
    assert_eq!(
        spawned(&end(&mut w, job("a"), 1, RunStatus::Success)),
        ["job/b#1 chain === CHAIN: after a #1 (success)"]
    );
    w.trigger(job("a"));
    // The first failure is retried: no chain yet.
    assert!(spawned(&end(&mut w, job("a"), 2, RunStatus::Failed)).is_empty());
    fire_retry(&mut w, &job("a"));
    assert_eq!(
        spawned(&end(&mut w, job("a"), 3, RunStatus::Failed)),
        ["job_http/c#1 chain === CHAIN: after a #3 (failed)"]
    );
    // A chained run obeys its target's rules: paused, it is refused.
    w.on(Event::Pause(job("b")));
    w.trigger(job("a"));
    let ended = end(&mut w, job("a"), 4, RunStatus::Success);
    assert!(spawned(&ended).is_empty());
}

#[test]
fn catch_up_runs_the_slots_missed_while_down_as_the_policy_says() {
    let missed = |policy: CatchUp| {
        let def = with(minutely(exec("m")), |c| c.policies.catch_up = policy);
        let mut restored = fresh(def);
        // Due at 23:55 the day before; karajo starts at midnight.
        restored.next_run = Some(at(T0).checked_sub(secs(300)).unwrap());
        World::new(4, vec![restored])
    };
    let mut none = missed(CatchUp::None);
    assert!(none.view(&job("m")).logs.is_empty(), "nothing runs");

    let mut once = missed(CatchUp::Once);
    let logs = &once.view(&job("m")).logs;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].trigger, Some(Trigger::CatchUp));
    assert!(only_runs(once.finish(job("m"), 1, RunStatus::Success)).is_empty());

    let mut all = missed(CatchUp::All);
    let mut slots = Vec::new();
    for counter in 1..=6 {
        let run = all.finish(job("m"), counter, RunStatus::Success);
        slots.push(only_runs(run));
    }
    // 23:55 through 00:00: six slots, one after another.
    assert_eq!(slots[0], ["spawn job/m#2 catch-up"]);
    assert_eq!(slots[4], ["spawn job/m#6 catch-up"]);
    assert!(slots[5].is_empty(), "{slots:?}");
    // The regular timer goes on from the next slot.
    assert_eq!(
        all.view(&job("m")).next_run,
        Some(at("2026-01-01T00:01:00Z"))
    );
}

#[test]
fn jitter_delays_every_start_by_the_jobs_own_stable_offset() {
    let def = with(minutely(exec("j")), |c| {
        c.policies.jitter = Duration::from_secs(30)
    });
    let offset = def.common.policies.jitter_offset(&job("j"));
    let mut w = World::new(4, vec![fresh(def)]);
    assert!(offset > Duration::ZERO);
    // The midnight slot, due at T0 itself, starts `offset` later.
    let first = at(T0).checked_add(offset).unwrap();
    assert_eq!(w.view(&job("j")).next_run, Some(first));
    w.now = first;
    assert_eq!(
        spawned(&effects(&mut w, Event::TimerDue)),
        ["job/j#1 timer "]
    );
    let second = at("2026-01-01T00:01:00Z").checked_add(offset).unwrap();
    assert_eq!(w.view(&job("j")).next_run, Some(second));
}

#[test]
fn overlap_allow_runs_side_by_side_up_to_max_parallel_each_with_its_counter() {
    let allow = with(exec("p"), |c| {
        c.policies.overlap = Overlap::Allow {
            max_parallel: Some(2),
        }
    });
    let mut w = World::new(8, vec![fresh(allow)]);
    assert_eq!(
        only_runs(w.trigger(job("p"))),
        ["spawn job/p#1 api", "answer job/p"]
    );
    assert_eq!(
        only_runs(w.trigger(job("p"))),
        ["spawn job/p#2 api", "answer job/p"]
    );
    assert_eq!(w.view(&job("p")).status, RunStatus::Running);
    assert_eq!(only_runs(w.trigger(job("p"))), ["answer job/p"], "queued");
    assert!(w.view(&job("p")).queued);
    assert!(w.trigger(job("p")).iter().any(|e| e.starts_with("refused")));
    assert_eq!(w.snapshot().running, 2);
    // The first ends: the queued one starts beside the second.
    assert_eq!(
        only_runs(w.finish(job("p"), 1, RunStatus::Success)),
        ["spawn job/p#3 api"]
    );
    assert_eq!(
        only_runs(w.on(Event::Cancel(job("p")))),
        ["cancel job/p#2", "cancel job/p#3", "answer job/p"]
    );
    w.finish(job("p"), 3, RunStatus::Canceled);
    assert_eq!(w.view(&job("p")).status, RunStatus::Running);
    w.finish(job("p"), 2, RunStatus::Canceled);
    assert_eq!(w.view(&job("p")).status, RunStatus::Canceled);
    assert_eq!(w.snapshot().running, 0);
}

#[test]
fn overlap_allow_still_respects_max_job_running() {
    let allow = with(exec("p"), |c| {
        c.policies.overlap = Overlap::Allow { max_parallel: None }
    });
    let mut w = World::new(2, vec![fresh(allow)]);
    w.trigger(job("p"));
    w.trigger(job("p"));
    assert_eq!(
        only_runs(w.trigger(job("p"))),
        ["answer job/p"],
        "no slot: it waits"
    );
    assert_eq!(w.snapshot().running, 2);
}

#[test]
fn a_retry_gets_the_parameters_of_the_run_it_repeats() {
    let mut w = World::new(4, vec![fresh(retrying(exec("a"), 1))]);
    let mut request = Request::from(Trigger::Api, None);
    request.env = vec![("KARAJO_PARAM_TARGET".into(), "blue".into())];
    w.on(Event::Trigger {
        key: job("a"),
        request,
    });
    end(&mut w, job("a"), 1, RunStatus::Failed);
    let retried = fire_retry(&mut w, &job("a"));
    let env: Vec<_> = retried
        .iter()
        .filter_map(|e| match e {
            Effect::SpawnRun(order) => Some(order.request.env.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        env,
        [vec![(
            "KARAJO_PARAM_TARGET".to_string(),
            "blue".to_string()
        )]]
    );
}
