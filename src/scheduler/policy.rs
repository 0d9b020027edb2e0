//! The arithmetic of a job's scheduling policies (issue 15), as pure functions that
//! [`decide`](super::decide) calls: the wait before a retry (exponential, with full
//! jitter drawn from a seed so that a decision stays repeatable) and the timer slots
//! missed while karajo was down that `catch_up` runs (the stable `jitter` offset is
//! [`Policies::jitter_offset`]). No clock, no randomness, no IO.

use std::time::Duration;

use jiff::Timestamp;

use crate::config::policies::{CATCH_UP_ALL_MAX, CatchUp, Policies};
use crate::job::JobKey;
use crate::schedule::Schedule;

/// The shortest wait before a retry, whatever the draw.
pub(crate) const RETRY_DELAY_MIN: Duration = Duration::from_secs(1);

/// The most slots looked at when counting missed ones (a minutely schedule over a
/// year is half of it).
const MISSED_SLOTS_LOOKED_AT: usize = 1_000_000;

use crate::config::policies::stable_hash;

/// The wait after failed attempt `attempt` (from 1) of run `first`: a draw in
/// `[0, min(retry_delay_max, retry_delay × 2^(attempt-1))]` ("full jitter"), at
/// least [`RETRY_DELAY_MIN`]. The draw comes from the job, the run and the attempt,
/// so the same failure always waits the same.
pub(crate) fn retry_delay(policies: &Policies, key: &JobKey, first: u64, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(32);
    let ceiling = policies
        .retry_delay
        .checked_mul(1u32 << doublings.min(31))
        .unwrap_or(policies.retry_delay_max)
        .min(policies.retry_delay_max);
    let seed = stable_hash(format!("retry {key} {first} {attempt}").as_bytes());
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    let drawn = if millis == u64::MAX {
        seed
    } else {
        seed % (millis + 1)
    };
    Duration::from_millis(drawn).max(RETRY_DELAY_MIN)
}

/// `at + d`, saturating at the largest timestamp.
pub(crate) fn later(at: Timestamp, d: Duration) -> Timestamp {
    at.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// `at - d`, saturating at the smallest timestamp.
pub(crate) fn earlier(at: Timestamp, d: Duration) -> Timestamp {
    at.checked_sub(d).unwrap_or(Timestamp::MIN)
}

/// How a job's timer advances from one slot to the next.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cadence<'a> {
    /// A calendar or cron schedule.
    Schedule(&'a Schedule),
    /// Every interval.
    Interval(Duration),
}

/// The slots `catch_up` runs at a start: those from `first` (the slot that was due
/// next when karajo stopped, unjittered) up to `now`, no older than the window, in
/// order; `once` keeps the newest, `all` the newest [`CATCH_UP_ALL_MAX`]. Also
/// returns how many missed slots were left out.
pub(crate) fn missed_slots(
    policies: &Policies,
    cadence: Cadence<'_>,
    first: Timestamp,
    now: Timestamp,
) -> (Vec<Timestamp>, usize) {
    if policies.catch_up == CatchUp::None || first > now {
        return (Vec::new(), 0);
    }
    let oldest = earlier(now, policies.catch_up_window);
    let mut slots = Vec::new();
    let mut slot = first;
    let mut looked = 0;
    while slot <= now && looked < MISSED_SLOTS_LOOKED_AT {
        if slot >= oldest {
            slots.push(slot);
        }
        looked += 1;
        let next = match cadence {
            Cadence::Schedule(schedule) => schedule.next_after(slot),
            Cadence::Interval(interval) => later(slot, interval.max(Duration::from_secs(1))),
        };
        if next <= slot {
            break;
        }
        slot = next;
    }
    let keep = match policies.catch_up {
        CatchUp::None => 0,
        CatchUp::Once => 1,
        CatchUp::All => CATCH_UP_ALL_MAX,
    };
    let left_out = slots.len().saturating_sub(keep);
    (slots.split_off(left_out), left_out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobId;

    fn key(id: &str) -> JobKey {
        JobKey::exec(JobId::from_raw(id))
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn policies(f: impl FnOnce(&mut Policies)) -> Policies {
        let mut p = Policies::default();
        f(&mut p);
        p
    }

    #[test]
    fn retry_waits_grow_as_a_doubling_ceiling_are_drawn_below_it_and_repeat_for_the_same_run() {
        let p = policies(|p| {
            p.retry = 10;
            p.retry_delay = Duration::from_secs(10);
            p.retry_delay_max = Duration::from_secs(60);
        });
        // Ceilings: 10 s, 20 s, 40 s, then the 60 s maximum.
        for (attempt, ceiling) in [(1, 10), (2, 20), (3, 40), (4, 60), (9, 60), (40, 60)] {
            for first in 1..200 {
                let wait = retry_delay(&p, &key("a"), first, attempt);
                assert!(wait <= Duration::from_secs(ceiling), "{attempt}: {wait:?}");
                assert!(wait >= RETRY_DELAY_MIN);
                assert_eq!(wait, retry_delay(&p, &key("a"), first, attempt));
            }
        }
        // Full jitter: the draws spread over the range, not one value.
        let waits: std::collections::BTreeSet<_> = (1..200)
            .map(|first| retry_delay(&p, &key("a"), first, 4).as_secs() / 10)
            .collect();
        assert!(waits.len() >= 5, "{waits:?}");
    }

    fn jitter_offset(key: &JobKey, jitter: Duration) -> Duration {
        policies(|p| p.jitter = jitter).jitter_offset(key)
    }

    #[test]
    fn jitter_is_below_the_bound_stable_and_differs_between_jobs() {
        let bound = Duration::from_secs(300);
        let offsets: Vec<Duration> = (0..100)
            .map(|i| jitter_offset(&key(&format!("job{i}")), bound))
            .collect();
        assert!(offsets.iter().all(|o| *o < bound));
        assert_eq!(offsets[7], jitter_offset(&key("job7"), bound));
        let distinct: std::collections::BTreeSet<_> = offsets.iter().collect();
        assert!(distinct.len() > 90, "spread: {}", distinct.len());
        assert_eq!(jitter_offset(&key("x"), Duration::ZERO), Duration::ZERO);
        // The hash is fixed: the same job keeps its slot in every version.
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn missed_slots_follow_the_policy_window_and_cap() {
        let hourly = Schedule::parse("hourly", jiff::tz::TimeZone::UTC).unwrap();
        let now = at("2026-11-30T12:30:00Z");
        let from = at("2026-11-30T08:00:00Z");
        let none = policies(|_| {});
        assert_eq!(
            missed_slots(&none, Cadence::Schedule(&hourly), from, now),
            (vec![], 0)
        );
        let once = policies(|p| p.catch_up = CatchUp::Once);
        assert_eq!(
            missed_slots(&once, Cadence::Schedule(&hourly), from, now),
            (vec![at("2026-11-30T12:00:00Z")], 4)
        );
        let all = policies(|p| p.catch_up = CatchUp::All);
        let (slots, left_out) = missed_slots(&all, Cadence::Schedule(&hourly), from, now);
        assert_eq!(slots.len(), 5);
        assert_eq!(slots[0], from);
        assert_eq!(left_out, 0);
        // The window drops the old ones.
        let window = policies(|p| {
            p.catch_up = CatchUp::All;
            p.catch_up_window = Duration::from_secs(2 * 3600);
        });
        let (slots, _) = missed_slots(&window, Cadence::Schedule(&hourly), from, now);
        assert_eq!(
            slots,
            vec![at("2026-11-30T11:00:00Z"), at("2026-11-30T12:00:00Z")]
        );
        // Nothing missed: the next slot is still ahead.
        assert_eq!(
            missed_slots(
                &all,
                Cadence::Schedule(&hourly),
                at("2026-11-30T13:00:00Z"),
                now
            ),
            (vec![], 0)
        );
        // An interval counts whole intervals; the cap keeps the newest.
        let (slots, left_out) = missed_slots(
            &all,
            Cadence::Interval(Duration::from_secs(60)),
            at("2026-11-30T10:00:00Z"),
            now,
        );
        assert_eq!(slots.len(), CATCH_UP_ALL_MAX);
        assert_eq!(left_out, 151 - CATCH_UP_ALL_MAX);
        assert_eq!(slots.last(), Some(&at("2026-11-30T12:30:00Z")));
    }
}
