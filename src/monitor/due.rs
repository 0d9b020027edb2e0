//! When the next check-in is due after one at time *t* (monitors spec A.4.1), and the
//! saturating time arithmetic the machine shares. A `next_in` wins; else a `period`
//! adds up; else a `schedule`'s next slot, with `early_tolerance` so that a client
//! whose clock runs a little fast does not make the very next slot overdue.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::ping::NextIn;
use crate::config::{Cadence, MonitorRules};
use crate::schedule::Schedule;

/// When the next check-in is due after one at `at` that carried `next_in`.
pub fn due_after(rules: &MonitorRules, at: Timestamp, next_in: Option<NextIn>) -> Timestamp {
    if let Some(next_in) = next_in {
        return later(at, next_in.duration());
    }
    match &rules.cadence {
        Cadence::Period(period) => later(at, *period),
        Cadence::Schedule {
            schedule,
            early_tolerance,
        } => {
            let tolerance = early_tolerance_at(schedule, *early_tolerance, at);
            schedule.next_after(later(at, tolerance))
        }
    }
}

/// The early tolerance that applies to a check-in at `at`: `early_tolerance`, capped at
/// half the gap between the slot at or after `at` and the slot after that.
pub fn early_tolerance_at(
    schedule: &Schedule,
    early_tolerance: Duration,
    at: Timestamp,
) -> Duration {
    let just_before = at
        .checked_sub(SignedDuration::from_nanos(1))
        .unwrap_or(Timestamp::MIN);
    let slot = schedule.next_after(just_before);
    if slot == Timestamp::MAX {
        return early_tolerance;
    }
    let gap = elapsed(slot, schedule.next_after(slot));
    early_tolerance.min(gap / 2)
}

/// `at + by`, or [`Timestamp::MAX`] past the end of time.
pub(crate) fn later(at: Timestamp, by: Duration) -> Timestamp {
    at.checked_add(by).unwrap_or(Timestamp::MAX)
}

/// The time from `from` to `to`; zero when `to` is not later.
pub(crate) fn elapsed(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}
