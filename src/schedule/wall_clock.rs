//! Turns a pattern on the local wall clock into due instants in a time zone. This module
//! owns the daylight-saving rules, shared by calendar and cron schedules; it knows
//! nothing about either grammar, only the [`WallClockPattern`] trait.
//!
//! Two rules, chosen per schedule ([`DstRule`]):
//!
//! * **Time of day** (schedules that name hours: `daily`, `weekly`, `monthly`, and cron
//!   expressions whose minute and hour fields do not start with `*`): a wall-clock time
//!   that does not exist (spring-forward gap) runs once, at the instant of the jump; a
//!   wall-clock time that happens twice (fall back) runs once, at its first occurrence.
//! * **Clock hand** (`minutely`, `hourly`, cron expressions whose minute or hour field
//!   starts with `*`): due at every real instant whose local reading matches, so
//!   skipped times are not run and repeated times run in both passes. These schedules
//!   keep their rhythm in elapsed time (an `hourly` job still runs every 60 minutes
//!   across a change), as in Vixie cron.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};

/// A set of wall-clock times, searched forward.
pub(crate) trait WallClockPattern {
    /// The first matching wall-clock time after `from`, or at `from` when `inclusive`.
    /// `None` when there is none within the search range.
    fn next_match(&self, from: DateTime, inclusive: bool) -> Option<DateTime>;
}

/// How wall-clock matches in a gap or a fold become instants; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DstRule {
    TimeOfDay,
    ClockHand,
}

/// Candidates examined before giving up. Only wall-clock times already passed in the
/// second pass of a fold are skipped one by one, so real searches use a handful.
const MAX_CANDIDATES: usize = 100_000;

/// Offset segments (stretches between two transitions) crossed before giving up.
const MAX_SEGMENTS: usize = 1_000;

/// The first due instant strictly after `now`, or `None` when the pattern has none
/// that jiff can represent.
pub(crate) fn next_due(
    pattern: &impl WallClockPattern,
    rule: DstRule,
    tz: &TimeZone,
    now: Timestamp,
) -> Option<Timestamp> {
    match rule {
        DstRule::TimeOfDay => next_time_of_day(pattern, tz, now),
        DstRule::ClockHand => next_clock_hand(pattern, tz, now),
    }
}

/// Time-of-day rule. [`first_instant`] never goes backwards as the wall clock moves
/// forward, so the first candidate after `now` in wall-clock order is the earliest.
fn next_time_of_day(
    pattern: &impl WallClockPattern,
    tz: &TimeZone,
    now: Timestamp,
) -> Option<Timestamp> {
    let mut cursor = last_wall_clock_reached(tz, now);
    for _ in 0..MAX_CANDIDATES {
        let candidate = pattern.next_match(cursor, false)?;
        let instant = first_instant(tz, candidate)?;
        if instant > now {
            return Some(instant);
        }
        cursor = candidate;
    }
    None
}

/// The latest wall-clock reading `now` has reached: the local time, except in the
/// second pass of a fold, where the first pass already went further (to the local time
/// read with the offset before the change).
fn last_wall_clock_reached(tz: &TimeZone, now: Timestamp) -> DateTime {
    let local = tz.to_datetime(now);
    match tz.to_ambiguous_timestamp(local).offset() {
        AmbiguousOffset::Fold { before, after } if tz.to_offset(now) == after => {
            before.to_datetime(now)
        }
        _ => local,
    }
}

/// The one instant a time-of-day schedule runs for `local`: the instant itself, the
/// first of two in a fold, the instant of the jump in a gap.
pub(crate) fn first_instant(tz: &TimeZone, local: DateTime) -> Option<Timestamp> {
    let ambiguous = tz.to_ambiguous_timestamp(local);
    match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(local).ok(),
        AmbiguousOffset::Fold { .. } => ambiguous.earlier().ok(),
        AmbiguousOffset::Gap { after, .. } => {
            // Read with the later offset, a time in the gap lies before the jump.
            let before_jump = after.to_timestamp(local).ok()?;
            next_transition(tz, before_jump)
        }
    }
}

/// Clock-hand rule: walk the stretches of constant offset; within one, the wall clock
/// is a plain shift of the instant.
fn next_clock_hand(
    pattern: &impl WallClockPattern,
    tz: &TimeZone,
    now: Timestamp,
) -> Option<Timestamp> {
    let mut lower = now;
    let mut inclusive = false;
    for _ in 0..MAX_SEGMENTS {
        let offset = tz.to_offset(lower);
        let local = pattern.next_match(offset.to_datetime(lower), inclusive)?;
        let instant = offset.to_timestamp(local).ok()?;
        match next_transition(tz, lower) {
            Some(boundary) if instant >= boundary => {
                lower = boundary;
                inclusive = true;
            }
            _ => return Some(instant),
        }
    }
    None
}

/// The first offset change strictly after `after`.
fn next_transition(tz: &TimeZone, after: Timestamp) -> Option<Timestamp> {
    tz.following(after)
        .map(|t| t.timestamp())
        .find(|&t| t > after)
}
