//! When jobs are due. This room owns the `schedule` value (karajo's calendar grammar or a
//! cron expression, in a time zone) and the `interval` rule, and answers "when next?"
//! for a `now` it is given. It is pure: no clock, no IO, no tokio; the scheduler room
//! reads the clock and sleeps.
//!
//! Differences from karajo (Go), on purpose:
//! * schedules are read in a time zone (UTC unless configured), with explicit
//!   daylight-saving rules (see the `wall_clock` module); the original only knew UTC;
//! * a day a month lacks is skipped (`monthly@31` runs on the 31st only), where the
//!   original rolled into the next month;
//! * invalid items are errors instead of being dropped silently, while white space
//!   around items is trimmed (`hourly@ 5, 10` means minutes 5 and 10; the original
//!   fell back to minute 0), see the `calendar` module;
//! * cron expressions and `@` macros are accepted.

mod calendar;
mod cron;
mod interval;
mod wall_clock;

pub use self::interval::interval_next;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use self::calendar::Calendar;
use self::cron::CronPattern;
use self::wall_clock::DstRule;

/// A parsed `schedule` value and the time zone it is read in.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    tz: TimeZone,
    pattern: Pattern,
}

/// Why a `schedule` value was refused; the message names the bad item or field and
/// what is accepted instead. It does not quote the whole value: the caller does
/// (`schedule = "0 25 * * *": hour 25 is out of range 0-23`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// A calendar schedule with nothing before its first `@`.
    #[error("the schedule kind is missing; {}", calendar::ACCEPTED)]
    MissingKind,
    /// A calendar schedule whose kind is not one of the five; `hint` is a suggestion
    /// appended to the message, possibly empty.
    #[error("unknown schedule kind {kind:?}{hint}; {}", calendar::ACCEPTED)]
    UnknownKind {
        /// The kind as written (lower case).
        kind: String,
        /// The did-you-mean suffix, possibly empty.
        hint: String,
    },
    /// A calendar schedule's `@` parameter or list item was refused; the text names it.
    #[error("{0}")]
    CalendarItem(String),
    /// A cron expression with neither 5 nor 6 fields.
    #[error(
        "a cron expression has 5 fields (minute hour day-of-month month \
         day-of-week) or 6 (with seconds first), this one has {0}"
    )]
    CronFieldCount(usize),
    /// An `@` macro that is not one of cron's.
    #[error(
        "unknown cron macro {0:?}: use @yearly, @annually, @monthly, @weekly, \
         @daily, @midnight or @hourly"
    )]
    UnknownCronMacro(String),
    /// A cron field made of commas only.
    #[error("{field} field {value:?} lists no value")]
    EmptyCronField {
        /// The field's name (`minute`, `hour`, ...).
        field: &'static str,
        /// The field as written.
        value: String,
    },
    /// A number outside its cron field's range.
    #[error("{field} {number} is out of range {range}")]
    CronOutOfRange {
        /// The field's name.
        field: &'static str,
        /// The number as written.
        number: String,
        /// The accepted range, e.g. `0-23`.
        range: String,
    },
    /// A cron field croner refused; `accepts` says what the field takes.
    #[error("{field} field {value:?} is not valid: {accepts}")]
    InvalidCronField {
        /// The field's name.
        field: &'static str,
        /// The field as written.
        value: String,
        /// What the field accepts.
        accepts: String,
    },
    /// A cron expression croner refused as a whole; the detail is croner's.
    #[error("not a valid cron expression: {0}")]
    InvalidCron(String),
    /// A cron expression that matches no instant at all.
    #[error("it is never due")]
    NeverDue,
    /// A cron expression naming a day no named month has (`0 0 30 2 *`).
    #[error("it is never due: no month {month:?} has a day {day:?}")]
    NoSuchDay {
        /// The month field as written.
        month: String,
        /// The day-of-month field as written.
        day: String,
    },
}

/// The two grammars. croner's pattern is large, so it is boxed.
#[derive(Debug, Clone)]
enum Pattern {
    Calendar(Calendar),
    Cron(Box<CronPattern>),
}

impl Schedule {
    /// Parses a `schedule` value interpreted in `tz`. The value is a cron expression when
    /// it starts with `@` (a macro such as `@hourly`), or when it contains white space
    /// and does not begin with one of the calendar kinds; otherwise it is karajo's
    /// calendar grammar (so `hourly@ 5, 10` is a calendar schedule).
    pub fn parse(expr: &str, tz: jiff::tz::TimeZone) -> Result<Self, ScheduleError> {
        let trimmed = expr.trim();
        let pattern = if is_cron(trimmed) {
            Pattern::Cron(Box::new(CronPattern::parse(trimmed)?))
        } else {
            Pattern::Calendar(Calendar::parse(expr)?)
        };
        Ok(Schedule {
            text: expr.to_string(),
            tz,
            pattern,
        })
    }

    /// The value as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The time zone the schedule is read in.
    pub fn timezone(&self) -> &jiff::tz::TimeZone {
        &self.tz
    }

    /// The first due instant strictly after `now`. A schedule with no due instant that
    /// jiff can represent (past the year 9999) gives `Timestamp::MAX`.
    pub fn next_after(&self, now: jiff::Timestamp) -> jiff::Timestamp {
        let next = match &self.pattern {
            Pattern::Calendar(calendar) => wall_clock::next_due(
                calendar,
                dst_rule(calendar.follows_clock_hand()),
                &self.tz,
                now,
            ),
            Pattern::Cron(cron) => wall_clock::next_due(
                cron.as_ref(),
                dst_rule(cron.follows_clock_hand()),
                &self.tz,
                now,
            ),
        };
        next.unwrap_or(Timestamp::MAX)
    }

    /// The next `n` due instants after `now` (for `karajo check` and the UI), stopping
    /// early at `Timestamp::MAX`.
    pub fn upcoming(&self, now: jiff::Timestamp, n: usize) -> Vec<jiff::Timestamp> {
        let mut instants = Vec::with_capacity(n.min(1024));
        let mut cursor = now;
        while instants.len() < n {
            cursor = self.next_after(cursor);
            if cursor == Timestamp::MAX {
                break;
            }
            instants.push(cursor);
        }
        instants
    }

    /// A short English description, e.g. "every day at 06:00 and 18:00 (UTC)".
    pub fn describe(&self) -> String {
        let what = match &self.pattern {
            Pattern::Calendar(calendar) => calendar.describe(),
            Pattern::Cron(cron) => cron.describe(),
        };
        format!("{what} ({})", zone_name(&self.tz))
    }
}

/// Whether a trimmed `schedule` value is a cron expression; see [`Schedule::parse`].
fn is_cron(trimmed: &str) -> bool {
    if trimmed.starts_with('@') {
        return true;
    }
    let kind = trimmed
        .split('@')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    trimmed.contains(char::is_whitespace) && !calendar::KINDS.contains(&kind.as_str())
}

fn dst_rule(follows_clock_hand: bool) -> DstRule {
    if follows_clock_hand {
        DstRule::ClockHand
    } else {
        DstRule::TimeOfDay
    }
}

/// The IANA name, or the fixed offset (e.g. "+05:30") for a zone without one.
fn zone_name(tz: &TimeZone) -> String {
    match tz.iana_name() {
        Some(name) => name.to_string(),
        None => tz.to_offset(Timestamp::UNIX_EPOCH).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{Date, DateTime, Weekday};
    use jiff::tz::AmbiguousOffset;
    use jiff::{SignedDuration, ToSpan};
    use proptest::prelude::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn schedule(expr: &str, tz: &str) -> Schedule {
        Schedule::parse(expr, zone(tz)).unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    fn parse_error(expr: &str) -> String {
        match Schedule::parse(expr, TimeZone::UTC) {
            Ok(s) => panic!("{expr} parsed as {s:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// Checks `upcoming(now, wanted.len())` for each row.
    fn check_upcoming(rows: &[(&str, &str, &str, &[&str])]) {
        for (expr, tz, now, wanted) in rows {
            let got = schedule(expr, tz).upcoming(ts(now), wanted.len());
            let wanted: Vec<Timestamp> = wanted.iter().map(|w| ts(w)).collect();
            assert_eq!(got, wanted, "{expr} in {tz} after {now}");
        }
    }

    /// Every row of spec 3.2's verified table (UTC; 2024-01-10 is a Wednesday), with the
    /// deliberate differences: `monthly@31`/`monthly@30` skip short months instead of
    /// rolling over, `hourly@ 5, 10` is trimmed, and garbage is an error.
    #[test]
    fn spec_verified_examples() {
        #[rustfmt::skip]
        let rows: [(&str, &str, Result<&str, &str>); 27] = [
            ("minutely", "2024-01-10T10:00:00Z", Ok("2024-01-10T10:01:00Z")),
            ("minutely", "2024-01-10T10:00:59Z", Ok("2024-01-10T10:01:00Z")),
            ("hourly", "2024-01-10T10:30:00Z", Ok("2024-01-10T11:00:00Z")),
            ("hourly@0,15,30,45", "2024-01-10T10:14:59Z", Ok("2024-01-10T10:15:00Z")),
            ("hourly@0,15,30,45", "2024-01-10T10:15:00Z", Ok("2024-01-10T10:30:00Z")),
            ("hourly@45,15", "2024-01-10T23:50:00Z", Ok("2024-01-11T00:15:00Z")),
            ("hourly@ 5, 10", "2024-01-10T10:00:00Z", Ok("2024-01-10T10:05:00Z")),
            ("HOURLY@30", "2024-01-10T10:00:00Z", Ok("2024-01-10T10:30:00Z")),
            ("daily", "2024-01-10T00:00:00Z", Ok("2024-01-11T00:00:00Z")),
            ("daily@00:00,06:00,12:00,18:00", "2024-01-10T06:00:00Z", Ok("2024-01-10T12:00:00Z")),
            ("daily@18:00,06:00", "2024-01-10T19:00:00Z", Ok("2024-01-11T06:00:00Z")),
            ("daily@6", "2024-01-10T01:00:00Z", Ok("2024-01-10T06:00:00Z")),
            ("daily@10:30:45", "2024-01-10T10:30:00Z", Ok("2024-01-11T10:30:00Z")),
            ("daily@25:00", "2024-01-10T10:00:00Z", Err("hour \"25\" is not a number from 0 to 23")),
            ("weekly", "2024-01-10T10:00:00Z", Ok("2024-01-14T00:00:00Z")),
            ("weekly@Sunday,Tuesday,Friday@15:00", "2024-01-10T10:00:00Z", Ok("2024-01-12T15:00:00Z")),
            ("weekly@wed@10:00", "2024-01-10T10:00:00Z", Ok("2024-01-17T10:00:00Z")),
            ("weekly@wed@10:00,11:00", "2024-01-10T10:00:00Z", Ok("2024-01-10T11:00:00Z")),
            ("weekly@foo@10:00", "2024-01-10T10:00:00Z", Err("unknown day name \"foo\"")),
            ("monthly", "2024-01-10T00:00:00Z", Ok("2024-02-01T00:00:00Z")),
            ("monthly@1,15@18:00", "2024-01-15T18:00:00Z", Ok("2024-02-01T18:00:00Z")),
            ("monthly@31", "2024-02-10T00:00:00Z", Ok("2024-03-31T00:00:00Z")),
            ("monthly@31", "2024-03-31T10:00:00Z", Ok("2024-05-31T00:00:00Z")),
            ("monthly@30", "2024-01-30T10:00:00Z", Ok("2024-03-30T00:00:00Z")),
            ("monthly@15@", "2024-01-20T00:00:00Z", Ok("2024-02-15T00:00:00Z")),
            ("daily@23:59", "2024-12-31T23:59:00Z", Ok("2025-01-01T23:59:00Z")),
            ("yearly", "2024-01-10T10:00:00Z", Err("unknown schedule kind \"yearly\"")),
        ];
        for (expr, now, wanted) in rows {
            match (Schedule::parse(expr, TimeZone::UTC), wanted) {
                (Ok(s), Ok(next)) => {
                    assert_eq!(s.next_after(ts(now)), ts(next), "{expr} after {now}")
                }
                (Err(e), Err(message)) => assert!(e.to_string().contains(message), "{expr}: {e}"),
                (got, wanted) => panic!("{expr}: got {got:?}, wanted {wanted:?}"),
            }
        }
    }

    /// The examples from pakakeh's scheduler_test.go; the dom lists with -1, 0xA and 44
    /// are errors now, so their valid remainder `15,31` is checked separately.
    #[test]
    fn upstream_examples() {
        #[rustfmt::skip]
        let rows = [
            ("weekly@Fri,Sat@00:15,06:16", "2013-01-26T21:00:00Z", "2013-02-01T00:15:00Z"),
            ("monthly@15,31@00:15,6:15", "2013-02-15T06:14:00Z", "2013-02-15T06:15:00Z"),
            ("monthly@15,31@00:15,6:15", "2013-02-15T06:16:00Z", "2013-03-15T00:15:00Z"),
        ];
        for (expr, now, next) in rows {
            assert_eq!(
                schedule(expr, "UTC").next_after(ts(now)),
                ts(next),
                "{expr} after {now}"
            );
        }
        assert!(parse_error("monthly@-1,15,31,44@00:15,6:15").contains("day of month \"-1\""));
        assert!(parse_error("monthly@0xA,15,31,44@00:15,6:15").contains("day of month \"0xa\""));
        assert!(parse_error("monthly@15,31,44@00:15").contains("day of month \"44\""));
        assert!(parse_error("monthly@0").contains("day of month \"0\""));
        assert!(parse_error("minutaly").contains("unknown schedule kind \"minutaly\""));
    }

    #[test]
    fn cron_examples() {
        #[rustfmt::skip]
        let rows: &[(&str, &str, &str, &[&str])] = &[
            ("*/15 * * * *", "UTC", "2024-01-10T10:07:30Z", &["2024-01-10T10:15:00Z", "2024-01-10T10:30:00Z"]),
            ("0 9 * * 1-5", "UTC", "2024-01-12T10:00:00Z", &["2024-01-15T09:00:00Z", "2024-01-16T09:00:00Z"]),
            ("0 9 * * MON-FRI", "UTC", "2024-01-10T08:59:59.9Z", &["2024-01-10T09:00:00Z"]),
            ("@hourly", "UTC", "2024-01-10T10:00:00Z", &["2024-01-10T11:00:00Z", "2024-01-10T12:00:00Z"]),
            ("@HOURLY", "UTC", "2024-01-10T10:59:59Z", &["2024-01-10T11:00:00Z"]),
            ("@daily", "UTC", "2024-01-10T10:00:00Z", &["2024-01-11T00:00:00Z"]),
            ("@midnight", "UTC", "2024-01-10T10:00:00Z", &["2024-01-11T00:00:00Z"]),
            ("@weekly", "UTC", "2024-01-10T10:00:00Z", &["2024-01-14T00:00:00Z"]),
            ("@monthly", "UTC", "2024-01-10T10:00:00Z", &["2024-02-01T00:00:00Z"]),
            ("@yearly", "UTC", "2024-01-10T10:00:00Z", &["2025-01-01T00:00:00Z"]),
            ("@annually", "UTC", "2024-01-10T10:00:00Z", &["2025-01-01T00:00:00Z"]),
            ("*/20 * * * * *", "UTC", "2024-01-10T10:07:30Z", &["2024-01-10T10:07:40Z", "2024-01-10T10:08:00Z"]),
            ("30 0 12 * * *", "UTC", "2024-01-10T10:07:30Z", &["2024-01-10T12:00:30Z", "2024-01-11T12:00:30Z"]),
            ("0 9 * * *", "Asia/Kolkata", "2024-01-10T00:00:00Z", &["2024-01-10T03:30:00Z"]),
        ];
        check_upcoming(rows);
        let errors = [
            ("61 * * * *", "minute 61 is out of range 0-59"),
            ("0 25 * * *", "hour 25 is out of range 0-23"),
            ("* * * *", "this one has 4"),
            ("0 0 1 1 * 2030 x", "this one has 7"),
            ("@reboot", "unknown cron macro"),
            ("0 0 30 2 *", "never due"),
            (
                "every day at noon ok",
                "minute field \"every\" is not valid",
            ),
        ];
        for (expr, wanted) in errors {
            let message = parse_error(expr);
            assert!(
                message.contains(wanted),
                "{expr}: {message:?} lacks {wanted:?}"
            );
        }
    }

    #[test]
    fn dispatches_between_the_grammars() {
        assert!(matches!(
            schedule("hourly@ 5, 10", "UTC").pattern,
            Pattern::Calendar(_)
        ));
        assert!(matches!(
            schedule(" daily@06:00 ", "UTC").pattern,
            Pattern::Calendar(_)
        ));
        assert!(matches!(
            schedule("@daily", "UTC").pattern,
            Pattern::Cron(_)
        ));
        assert!(matches!(
            schedule("5 4 * * *", "UTC").pattern,
            Pattern::Cron(_)
        ));
        assert_eq!(schedule(" daily@06:00 ", "UTC").as_str(), " daily@06:00 ");
        assert_eq!(
            schedule("daily", "Europe/Berlin").timezone(),
            &zone("Europe/Berlin")
        );
    }

    /// Berlin: 2026-03-29 02:00 CET → 03:00 CEST (01:00Z); 2026-10-25 03:00 CEST →
    /// 02:00 CET (01:00Z). New York: 2026-03-08 02:00 EST → 03:00 EDT (07:00Z);
    /// 2026-11-01 02:00 EDT → 01:00 EST (06:00Z).
    #[test]
    fn daylight_saving_time() {
        #[rustfmt::skip]
        let rows: &[(&str, &str, &str, &[&str])] = &[
            // Time of day, spring forward: a missing time runs at the jump, once.
            ("daily@02:30", "Europe/Berlin", "2026-03-28T12:00:00Z", &["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]),
            ("daily@02:15,02:45", "Europe/Berlin", "2026-03-28T12:00:00Z", &["2026-03-29T01:00:00Z", "2026-03-30T00:15:00Z"]),
            ("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", &["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]),
            ("weekly@sun@02:30", "Europe/Berlin", "2026-03-28T12:00:00Z", &["2026-03-29T01:00:00Z", "2026-04-05T00:30:00Z"]),
            ("daily@02:30", "America/New_York", "2026-03-07T12:00:00Z", &["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]),
            ("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", &["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]),
            // Time of day, fall back: a repeated time runs once, at its first occurrence.
            ("daily@02:30", "Europe/Berlin", "2026-10-24T12:00:00Z", &["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
            ("daily@02:30", "Europe/Berlin", "2026-10-25T01:10:00Z", &["2026-10-26T01:30:00Z"]),
            ("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", &["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
            ("30 2 * * *", "Europe/Berlin", "2026-10-25T01:10:00Z", &["2026-10-26T01:30:00Z"]),
            ("daily@01:30", "America/New_York", "2026-10-31T12:00:00Z", &["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]),
            ("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", &["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]),
            ("monthly@1@01:30", "America/New_York", "2026-10-31T12:00:00Z", &["2026-11-01T05:30:00Z", "2026-12-01T06:30:00Z"]),
            // croner alone runs a listed hour twice in a fold (see the croner test below).
            ("0 1,13 * * *", "America/New_York", "2026-10-31T12:00:00Z", &["2026-10-31T17:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T18:00:00Z"]),
            ("0 2,14 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", &["2026-10-25T00:00:00Z", "2026-10-25T13:00:00Z"]),
            // Clock hand: the rhythm follows elapsed time through both changes.
            ("hourly@30", "Europe/Berlin", "2026-03-28T23:00:00Z", &["2026-03-28T23:30:00Z", "2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z", "2026-03-29T02:30:00Z"]),
            ("hourly@30", "Europe/Berlin", "2026-10-24T23:00:00Z", &["2026-10-24T23:30:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", "2026-10-25T02:30:00Z"]),
            ("hourly@30", "America/New_York", "2026-03-08T05:00:00Z", &["2026-03-08T05:30:00Z", "2026-03-08T06:30:00Z", "2026-03-08T07:30:00Z"]),
            ("hourly@30", "America/New_York", "2026-11-01T04:00:00Z", &["2026-11-01T04:30:00Z", "2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z", "2026-11-01T07:30:00Z"]),
            ("minutely", "Europe/Berlin", "2026-10-25T00:59:00Z", &["2026-10-25T01:00:00Z", "2026-10-25T01:01:00Z"]),
            ("minutely", "Europe/Berlin", "2026-03-29T00:59:00Z", &["2026-03-29T01:00:00Z", "2026-03-29T01:01:00Z"]),
            ("*/30 * * * *", "Europe/Berlin", "2026-03-29T00:10:00Z", &["2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"]),
            ("*/30 * * * *", "America/New_York", "2026-11-01T05:10:00Z", &["2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z", "2026-11-01T06:30:00Z"]),
            ("@hourly", "America/New_York", "2026-11-01T04:30:00Z", &["2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"]),
            ("@hourly", "America/New_York", "2026-03-08T05:30:00Z", &["2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"]),
        ];
        check_upcoming(rows);
    }

    /// What croner does by itself with a zoned search, which `wall_clock` replaces: it
    /// agrees on single fixed times (jump instant, first pass), but treats a listed
    /// hour (`1,13`) as an interval job and runs it in both passes of a fold.
    #[test]
    fn croner_alone_on_daylight_saving_time() {
        let next = |expr: &str, tz: &str, now: &str| {
            let cron: croner::Cron = expr.parse().unwrap_or_else(|e| panic!("{expr}: {e}"));
            let start = ts(now).to_zoned(zone(tz));
            let found = cron
                .find_next_occurrence(&start, false)
                .unwrap_or_else(|e| panic!("{expr}: {e}"));
            found.timestamp()
        };
        assert_eq!(
            next("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z"),
            ts("2026-03-29T01:00:00Z")
        );
        assert_eq!(
            next("30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z"),
            ts("2026-10-26T01:30:00Z")
        );
        assert_eq!(
            next("0 1,13 * * *", "America/New_York", "2026-11-01T05:00:00Z"),
            ts("2026-11-01T06:00:00Z")
        );
        assert_eq!(
            schedule("0 1,13 * * *", "America/New_York").next_after(ts("2026-11-01T05:00:00Z")),
            ts("2026-11-01T18:00:00Z")
        );
    }

    #[test]
    fn describes_schedules() {
        assert_eq!(
            schedule("daily@06:00,18:00", "UTC").describe(),
            "every day at 06:00 and 18:00 (UTC)"
        );
        assert_eq!(
            schedule("hourly@15", "Europe/Berlin").describe(),
            "every hour at :15 (Europe/Berlin)"
        );
        assert_eq!(
            Schedule::parse("minutely", TimeZone::fixed(jiff::tz::offset(5)))
                .map(|s| s.describe())
                .ok(),
            Some("every minute (+05)".to_string())
        );
        let cron = schedule("0 9 * * 1-5", "UTC").describe();
        assert!(cron.ends_with(" (UTC)") && cron.contains("09:00"), "{cron}");
    }

    #[test]
    fn upcoming_counts_and_saturates() {
        let s = schedule("daily", "UTC");
        assert!(s.upcoming(ts("2024-01-10T00:00:00Z"), 0).is_empty());
        assert_eq!(s.upcoming(ts("2024-01-10T00:00:00Z"), 3).len(), 3);
        assert_eq!(s.next_after(ts("9999-12-30T12:00:00Z")), Timestamp::MAX);
        assert_eq!(
            s.upcoming(ts("9999-12-29T12:00:00Z"), 5),
            vec![ts("9999-12-30T00:00:00Z")]
        );
        assert_eq!(
            schedule("minutely", "UTC").next_after(Timestamp::MAX),
            Timestamp::MAX
        );
        assert_eq!(
            schedule("*/5 * * * *", "UTC").next_after(Timestamp::MAX),
            Timestamp::MAX
        );
    }

    // ---- property test --------------------------------------------------------------

    /// A generated calendar schedule: its text and what it means, kept apart from the
    /// parser so the checks below are independent of it.
    #[derive(Debug, Clone)]
    enum Spec {
        Minutely,
        Hourly(Vec<i8>),
        Daily(Vec<(i8, i8)>),
        Weekly(Vec<Weekday>, Vec<(i8, i8)>),
        Monthly(Vec<i8>, Vec<(i8, i8)>),
    }

    const DAY_NAMES: [(&str, Weekday); 7] = [
        ("Sun", Weekday::Sunday),
        ("monday", Weekday::Monday),
        ("TUE", Weekday::Tuesday),
        ("wednesday", Weekday::Wednesday),
        ("thu", Weekday::Thursday),
        ("Friday", Weekday::Friday),
        ("sat", Weekday::Saturday),
    ];

    impl Spec {
        fn text(&self) -> String {
            let list = |items: Vec<String>| items.join(",");
            let times =
                |t: &[(i8, i8)]| list(t.iter().map(|(h, m)| format!("{h:02}:{m:02}")).collect());
            match self {
                Spec::Minutely => "minutely".to_string(),
                Spec::Hourly(m) => {
                    format!("hourly@{}", list(m.iter().map(i8::to_string).collect()))
                }
                Spec::Daily(t) => format!("daily@{}", times(t)),
                Spec::Weekly(d, t) => {
                    let names = d
                        .iter()
                        .filter_map(|d| DAY_NAMES.iter().find(|n| n.1 == *d))
                        .map(|n| n.0.to_string());
                    format!("weekly@{}@{}", list(names.collect()), times(t))
                }
                Spec::Monthly(d, t) => format!(
                    "monthly@{}@{}",
                    list(d.iter().map(i8::to_string).collect()),
                    times(t)
                ),
            }
        }

        fn minutes(&self) -> Option<Vec<i8>> {
            match self {
                Spec::Minutely => Some((0..60).collect()),
                Spec::Hourly(m) => Some(m.clone()),
                _ => None,
            }
        }

        fn times(&self) -> &[(i8, i8)] {
            match self {
                Spec::Daily(t) | Spec::Weekly(_, t) | Spec::Monthly(_, t) => t,
                _ => &[],
            }
        }

        fn runs_on(&self, date: Date) -> bool {
            match self {
                Spec::Weekly(days, _) => days.contains(&date.weekday()),
                Spec::Monthly(days, _) => days.contains(&date.day()),
                _ => true,
            }
        }
    }

    fn spec_strategy() -> impl Strategy<Value = Spec> {
        let times = prop::collection::vec((0i8..24, 0i8..60), 1..4);
        let days =
            prop::collection::vec(prop::sample::select(DAY_NAMES.map(|d| d.1).to_vec()), 1..4);
        prop_oneof![
            Just(Spec::Minutely),
            prop::collection::vec(0i8..60, 1..5).prop_map(Spec::Hourly),
            times.clone().prop_map(Spec::Daily),
            (days, times.clone()).prop_map(|(d, t)| Spec::Weekly(d, t)),
            (prop::collection::vec(1i8..32, 1..4), times).prop_map(|(d, t)| Spec::Monthly(d, t)),
        ]
    }

    const ZONES: [&str; 7] = [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
        "America/Santiago",
        "Pacific/Apia",
    ];

    /// The instant a time-of-day schedule runs for `local`, found differently from
    /// `wall_clock`: in a gap, the transition that precedes the later-offset reading.
    fn oracle_instant(tz: &TimeZone, local: DateTime) -> Option<Timestamp> {
        let ambiguous = tz.to_ambiguous_timestamp(local);
        match ambiguous.offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(local).ok(),
            AmbiguousOffset::Fold { before, after } => {
                let a = before.to_timestamp(local).ok()?;
                let b = after.to_timestamp(local).ok()?;
                Some(a.min(b))
            }
            AmbiguousOffset::Gap { before, .. } => {
                let past_jump = before.to_timestamp(local).ok()?;
                let jump = tz
                    .preceding(past_jump + SignedDuration::from_nanos(1))
                    .next()?
                    .timestamp();
                // The gap is the stretch of wall clock the jump skipped.
                let skipped_from = tz.to_datetime(jump - SignedDuration::from_nanos(1));
                (skipped_from < local && local < tz.to_datetime(jump)).then_some(jump)
            }
        }
    }

    /// All instants a time-of-day spec runs at on local dates `from..=to`.
    fn oracle_instants(spec: &Spec, tz: &TimeZone, from: Date, to: Date) -> Vec<Timestamp> {
        let mut instants = Vec::new();
        let mut date = from;
        while date <= to {
            if spec.runs_on(date) {
                for &(h, m) in spec.times() {
                    instants.extend(oracle_instant(tz, date.at(h, m, 0, 0)));
                }
            }
            match date.tomorrow() {
                Ok(tomorrow) => date = tomorrow,
                Err(_) => break,
            }
        }
        instants
    }

    fn is_clock_hand_due(minutes: &[i8], tz: &TimeZone, at: Timestamp) -> bool {
        let local = tz.to_datetime(at);
        local.second() == 0 && local.subsec_nanosecond() == 0 && minutes.contains(&local.minute())
    }

    proptest! {
        #[test]
        fn next_after_is_the_first_due_instant(
            spec in spec_strategy(),
            zone_name in prop::sample::select(ZONES.to_vec()),
            seconds in 946_684_800i64..4_102_444_800,
            nanos in prop_oneof![Just(0i32), 0i32..1_000_000_000],
        ) {
            let tz = zone(zone_name);
            let now = Timestamp::new(seconds, nanos).unwrap_or_else(|e| panic!("{e}"));
            let s = Schedule::parse(&spec.text(), tz.clone()).unwrap_or_else(|e| panic!("{e}"));
            let next = s.next_after(now);
            prop_assert!(next > now, "{} after {now}: {next}", spec.text());

            match spec.minutes() {
                Some(minutes) => {
                    prop_assert!(is_clock_hand_due(&minutes, &tz, next), "{} got {next}", spec.text());
                    let mut at = now.round(jiff::TimestampRound::new().smallest(jiff::Unit::Minute).mode(jiff::RoundMode::Floor)).unwrap_or(now);
                    loop {
                        at = at.checked_add(1.minute()).unwrap_or(Timestamp::MAX);
                        if at >= next { break; }
                        prop_assert!(!is_clock_hand_due(&minutes, &tz, at), "{} skipped {at} before {next}", spec.text());
                    }
                }
                None => {
                    let first = tz.to_datetime(now).date().yesterday().unwrap_or(Date::MIN);
                    let last = tz.to_datetime(next).date().tomorrow().unwrap_or(Date::MAX);
                    let due = oracle_instants(&spec, &tz, first, last);
                    prop_assert!(due.contains(&next), "{} got {next}, not due", spec.text());
                    let missed = due.iter().find(|&&t| now < t && t < next);
                    prop_assert!(missed.is_none(), "{} skipped {missed:?} before {next}", spec.text());
                }
            }

            let upcoming = s.upcoming(now, 6);
            prop_assert_eq!(upcoming.first().copied(), Some(next));
            prop_assert!(upcoming.windows(2).all(|w| w[0] < w[1]), "{} not increasing: {upcoming:?}", spec.text());
        }

        /// A cron expression and its calendar twin are due at the same instants, in
        /// every zone, across daylight-saving changes.
        #[test]
        fn cron_agrees_with_the_calendar(
            hour in 0i8..24,
            minute in 0i8..60,
            weekly in any::<bool>(),
            zone_name in prop::sample::select(ZONES.to_vec()),
            seconds in 946_684_800i64..4_102_444_800,
        ) {
            let tz = zone(zone_name);
            let now = Timestamp::new(seconds, 0).unwrap_or_else(|e| panic!("{e}"));
            let twins = if weekly {
                [(format!("{minute} {hour} * * 2"), format!("weekly@tue@{hour}:{minute}")),
                 (format!("{minute} * * * *"), format!("hourly@{minute}"))]
            } else {
                [(format!("{minute} {hour} * * *"), format!("daily@{hour}:{minute}")),
                 (format!("{minute} {hour} 31 * *"), format!("monthly@31@{hour}:{minute}"))]
            };
            for (cron, calendar) in twins {
                let cron_runs = Schedule::parse(&cron, tz.clone()).map(|s| s.upcoming(now, 4));
                let calendar_runs = Schedule::parse(&calendar, tz.clone()).map(|s| s.upcoming(now, 4));
                prop_assert_eq!(cron_runs.ok(), calendar_runs.ok(), "{} vs {}", cron, calendar);
            }
        }
    }
}
