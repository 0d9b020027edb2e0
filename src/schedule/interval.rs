//! karajo's `interval` rule (spec 3.4): the next run is one interval after the last
//! run finished, or right away when that moment has passed or the job never ran. This
//! module owns that arithmetic only; the one-minute minimum is the configuration's job.

use std::time::Duration;

use jiff::{RoundMode, SignedDuration, Timestamp, TimestampRound, Unit};

/// The next run of an interval job: `last_run + interval`, or `now` when that is not
/// later than `now` or there is no last run. `now` and `last_run` are rounded to the
/// whole second (half a second rounds up) and the wait to the whole second, as the
/// original does. A result past what jiff represents (year 9999) saturates to
/// `Timestamp::MAX`.
pub fn interval_next(
    last_run: Option<jiff::Timestamp>,
    interval: Duration,
    now: jiff::Timestamp,
) -> jiff::Timestamp {
    let now = round_to_second(now);
    let Some(last_run) = last_run else {
        return now;
    };
    let Ok(interval) = SignedDuration::try_from(interval) else {
        return Timestamp::MAX;
    };
    let Ok(due) = round_to_second(last_run).checked_add(interval) else {
        return Timestamp::MAX;
    };
    let wait = due.duration_since(now);
    if wait <= SignedDuration::ZERO {
        return now;
    }
    now.checked_add(round_duration_to_second(wait))
        .unwrap_or(Timestamp::MAX)
}

/// Go's `Time.Round(time.Second)`: to the nearest second, halves towards the future.
fn round_to_second(at: Timestamp) -> Timestamp {
    let rounding = TimestampRound::new()
        .smallest(Unit::Second)
        .mode(RoundMode::HalfCeil);
    // Rounding fails only at the very ends of jiff's range; keep the instant then.
    at.round(rounding).unwrap_or(at)
}

/// Go's `Duration.Round(time.Second)` for a positive duration: halves round up.
fn round_duration_to_second(wait: SignedDuration) -> SignedDuration {
    let whole = wait.as_secs();
    let round_up = wait.subsec_nanos() >= 500_000_000;
    SignedDuration::from_secs(whole.saturating_add(i64::from(round_up)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// TestJobBase_computeNextInterval (spec 12): now 2021-03-06 14:00, interval 30s,
    /// expressed as the next run instead of the wait.
    #[test]
    fn upstream_compute_next_interval_cases() {
        let now = ts("2021-03-06T14:00:00Z");
        let interval = Duration::from_secs(30);
        let cases = [
            (
                "last run now-60s: wait 0",
                Some(ts("2021-03-06T13:59:00Z")),
                now,
            ),
            (
                "last run now: wait 30s",
                Some(now),
                ts("2021-03-06T14:00:30Z"),
            ),
            (
                "last run now-15s: wait 15s",
                Some(ts("2021-03-06T13:59:45Z")),
                ts("2021-03-06T14:00:15Z"),
            ),
            (
                "last run now+30s: wait 60s",
                Some(ts("2021-03-06T14:00:30Z")),
                ts("2021-03-06T14:01:00Z"),
            ),
            ("never ran: right away", None, now),
        ];
        for (name, last_run, wanted) in cases {
            assert_eq!(interval_next(last_run, interval, now), wanted, "{name}");
        }
    }

    /// Spec 3.4: restart at 10:00:30 with the newest log from 10:00:02, interval 1m.
    #[test]
    fn spec_restart_examples() {
        let minute = Duration::from_secs(60);
        let last_run = Some(ts("2024-01-10T10:00:02Z"));
        assert_eq!(
            interval_next(last_run, minute, ts("2024-01-10T10:00:30Z")),
            ts("2024-01-10T10:01:02Z")
        );
        let late = ts("2024-01-10T10:05:00Z");
        assert_eq!(interval_next(last_run, minute, late), late);
    }

    #[test]
    fn rounds_now_and_last_run_to_the_second() {
        let minute = Duration::from_secs(60);
        let now = ts("2024-01-10T10:00:30.5Z");
        assert_eq!(interval_next(None, minute, now), ts("2024-01-10T10:00:31Z"));
        assert_eq!(
            interval_next(None, minute, ts("2024-01-10T10:00:30.499Z")),
            ts("2024-01-10T10:00:30Z")
        );
        let last_run = Some(ts("2024-01-10T10:00:02.6Z"));
        assert_eq!(
            interval_next(last_run, minute, now),
            ts("2024-01-10T10:01:03Z")
        );
        let due_now = Some(ts("2024-01-10T09:59:31Z"));
        assert_eq!(
            interval_next(due_now, minute, now),
            ts("2024-01-10T10:00:31Z")
        );
    }

    #[test]
    fn sub_second_intervals_round_the_wait() {
        let now = ts("2024-01-10T10:00:00Z");
        let last_run = Some(now);
        assert_eq!(
            interval_next(last_run, Duration::from_millis(1500), now),
            ts("2024-01-10T10:00:02Z")
        );
        assert_eq!(
            interval_next(last_run, Duration::from_millis(1499), now),
            ts("2024-01-10T10:00:01Z")
        );
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        let now = ts("2024-01-10T10:00:00Z");
        assert_eq!(interval_next(Some(now), Duration::MAX, now), Timestamp::MAX);
        let years = Duration::from_secs(10_000 * 366 * 86_400);
        assert_eq!(interval_next(Some(now), years, now), Timestamp::MAX);
    }
}
