//! karajo's calendar grammar (spec 3.1): `minutely`, `hourly[@m,..]`, `daily[@H:M,..]`,
//! `weekly[@days][@times]` and `monthly[@doms][@times]`. This module owns parsing that
//! grammar into a [`Calendar`] and finding the next matching *wall-clock* time; turning
//! wall-clock times into instants (time zones, DST) is `wall_clock`'s job.
//!
//! Parsing is stricter than the original, which silently dropped invalid items: an
//! unknown kind, day name or stray parameter, and a number out of range are errors
//! naming the bad item. Harmless leniency is kept: the value is case-insensitive,
//! white space around items is trimmed (so `hourly@ 5, 10` means minutes 5 and 10,
//! where the original fell back to minute 0), seconds in `H:M:S` are checked and
//! dropped, duplicates are removed, items are sorted, and an absent or empty part takes
//! its default (`monthly@15@` runs at 00:00).

use jiff::ToSpan;
use jiff::civil::{Date, DateTime, Time, Weekday};

use super::ScheduleError;
use super::wall_clock::WallClockPattern;

/// The kinds the grammar knows, as written (lower case).
pub(super) const KINDS: [&str; 5] = ["minutely", "hourly", "daily", "weekly", "monthly"];

/// What a `schedule` value may be, for messages.
pub(super) const ACCEPTED: &str = "use minutely, hourly, daily, weekly or monthly (see the README) \
                        or a cron expression such as \"0 10 * * *\"";

/// ` (did you mean "daily"?)` for a kind close to a known one.
fn kind_hint(kind: &str) -> String {
    if matches!(kind, "yearly" | "annually") {
        return " (once a year is the cron macro @yearly)".to_string();
    }
    match crate::suggest::closest(kind, &KINDS) {
        Some(known) => format!(" (did you mean {known:?}?)"),
        None => String::new(),
    }
}

/// How far ahead (in days) a day search looks before giving up. Every valid day rule
/// matches within about two months, so this is only a guard against looping forever.
const MAX_DAYS_SEARCHED: usize = 400;

/// A parsed calendar schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Calendar {
    /// `minutely`: at the start of every minute.
    Minutely,
    /// `hourly@m,..`: at these minutes (sorted, unique) of every hour.
    Hourly(Vec<i8>),
    /// `daily`, `weekly` and `monthly`: at these times (sorted, unique) of the days the
    /// rule selects.
    Days { days: DayRule, times: Vec<Time> },
}

/// Which days a `daily`, `weekly` or `monthly` schedule runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DayRule {
    /// Every day.
    Every,
    /// These days of the week, sorted Sunday first, unique.
    Weekdays(Vec<Weekday>),
    /// These days of the month (1..=31), sorted, unique. A month that lacks a day is
    /// skipped for that day.
    MonthDays(Vec<i8>),
}

impl Calendar {
    /// Parses a calendar schedule. `expr` is the whole value as written; the error
    /// messages quote it.
    pub(crate) fn parse(expr: &str) -> Result<Self, ScheduleError> {
        let lowered = expr.trim().to_ascii_lowercase();
        let mut parts = lowered.split('@');
        let kind = parts.next().unwrap_or_default().trim();
        let params: Vec<&str> = parts.collect();
        let fail = ScheduleError::CalendarItem;
        match kind {
            "minutely" => {
                expect_at_most(&params, 0, kind).map_err(fail)?;
                Ok(Calendar::Minutely)
            }
            "hourly" => {
                expect_at_most(&params, 1, kind).map_err(fail)?;
                let minutes = parse_minutes(part(&params, 0)).map_err(fail)?;
                Ok(Calendar::Hourly(minutes))
            }
            "daily" => {
                expect_at_most(&params, 1, kind).map_err(fail)?;
                let times = parse_times(part(&params, 0)).map_err(fail)?;
                Ok(Calendar::Days {
                    days: DayRule::Every,
                    times,
                })
            }
            "weekly" => {
                expect_at_most(&params, 2, kind).map_err(fail)?;
                let days = parse_weekdays(part(&params, 0)).map_err(fail)?;
                let times = parse_times(part(&params, 1)).map_err(fail)?;
                Ok(Calendar::Days {
                    days: DayRule::Weekdays(days),
                    times,
                })
            }
            "monthly" => {
                expect_at_most(&params, 2, kind).map_err(fail)?;
                let days = parse_month_days(part(&params, 0)).map_err(fail)?;
                let times = parse_times(part(&params, 1)).map_err(fail)?;
                Ok(Calendar::Days {
                    days: DayRule::MonthDays(days),
                    times,
                })
            }
            "" => Err(ScheduleError::MissingKind),
            other => Err(ScheduleError::UnknownKind {
                kind: other.to_string(),
                hint: kind_hint(other),
            }),
        }
    }

    /// Whether the schedule repeats through the hours (minutely, hourly) rather than at
    /// named times of day; see `wall_clock::DstRule`.
    pub(crate) fn follows_clock_hand(&self) -> bool {
        matches!(self, Calendar::Minutely | Calendar::Hourly(_))
    }

    /// A short English description without the time zone, e.g. "every day at 06:00".
    pub(crate) fn describe(&self) -> String {
        match self {
            Calendar::Minutely => "every minute".to_string(),
            Calendar::Hourly(minutes) => {
                let minutes: Vec<String> = minutes.iter().map(|m| format!(":{m:02}")).collect();
                format!("every hour at {}", join_english(&minutes))
            }
            Calendar::Days { days, times } => {
                let times: Vec<String> = times.iter().map(|t| format_hm(*t)).collect();
                format!("{} at {}", days.describe(), join_english(&times))
            }
        }
    }
}

impl DayRule {
    /// Whether the schedule runs on `date`.
    fn matches(&self, date: Date) -> bool {
        match self {
            DayRule::Every => true,
            DayRule::Weekdays(days) => days.contains(&date.weekday()),
            DayRule::MonthDays(days) => days.contains(&date.day()),
        }
    }

    /// "every day", "every Monday and Friday", "on day 1 and 15 of every month".
    fn describe(&self) -> String {
        match self {
            DayRule::Every => "every day".to_string(),
            DayRule::Weekdays(days) => {
                let names: Vec<String> =
                    days.iter().map(|d| weekday_name(*d).to_string()).collect();
                format!("every {}", join_english(&names))
            }
            DayRule::MonthDays(days) => {
                let days: Vec<String> = days.iter().map(i8::to_string).collect();
                let noun = if days.len() == 1 { "day" } else { "days" };
                format!("on {noun} {} of every month", join_english(&days))
            }
        }
    }
}

impl WallClockPattern for Calendar {
    fn next_match(&self, from: DateTime, inclusive: bool) -> Option<DateTime> {
        let start = first_candidate_minute(from, inclusive)?;
        match self {
            Calendar::Minutely => Some(start),
            Calendar::Hourly(minutes) => next_listed_minute(minutes, start),
            Calendar::Days { days, times } => next_listed_day_time(days, times, start),
        }
    }
}

/// The first whole minute at or after `from` (`inclusive`) or after it.
fn first_candidate_minute(from: DateTime, inclusive: bool) -> Option<DateTime> {
    let floor = from.with().second(0).subsec_nanosecond(0).build().ok()?;
    if inclusive && floor == from {
        Some(floor)
    } else {
        floor.checked_add(1.minute()).ok()
    }
}

/// The first time at or after `start` (a whole minute) whose minute is listed.
fn next_listed_minute(minutes: &[i8], start: DateTime) -> Option<DateTime> {
    if let Some(&minute) = minutes.iter().find(|&&m| m >= start.minute()) {
        return start.with().minute(minute).build().ok();
    }
    let first = *minutes.first()?;
    let next_hour = start
        .with()
        .minute(0)
        .build()
        .ok()?
        .checked_add(1.hour())
        .ok()?;
    next_hour.with().minute(first).build().ok()
}

/// The first listed time on a selected day at or after `start`.
fn next_listed_day_time(days: &DayRule, times: &[Time], start: DateTime) -> Option<DateTime> {
    let today = start.date();
    if days.matches(today)
        && let Some(&time) = times.iter().find(|&&t| t >= start.time())
    {
        return Some(today.to_datetime(time));
    }
    let first_time = *times.first()?;
    let mut date = today;
    for _ in 0..MAX_DAYS_SEARCHED {
        date = date.tomorrow().ok()?;
        if days.matches(date) {
            return Some(date.to_datetime(first_time));
        }
    }
    None
}

/// The `index`th `@` parameter, or "" when absent.
fn part<'a>(params: &[&'a str], index: usize) -> &'a str {
    params.get(index).copied().unwrap_or_default()
}

/// Refuses more `@` parameters than `kind` takes; empty extra parts are tolerated.
fn expect_at_most(params: &[&str], max: usize, kind: &str) -> Result<(), String> {
    let Some(extra) = params.iter().skip(max).find(|p| !p.trim().is_empty()) else {
        return Ok(());
    };
    let takes = match max {
        0 => "no parameters",
        1 => "one '@' part",
        _ => "at most two '@' parts",
    };
    Err(format!(
        "unexpected parameter {:?}: {kind} takes {takes}",
        extra.trim()
    ))
}

/// Splits a comma-separated list into trimmed items; an empty list is `None`, an empty
/// item in a non-empty list is an error.
fn list_items<'a>(list: &'a str, what: &str) -> Result<Option<Vec<&'a str>>, String> {
    let list = list.trim();
    if list.is_empty() {
        return Ok(None);
    }
    let items: Vec<&str> = list.split(',').map(str::trim).collect();
    if items.iter().any(|item| item.is_empty()) {
        return Err(format!("empty item in the {what} list {list:?}"));
    }
    Ok(Some(items))
}

/// Parses a decimal number made of ASCII digits only, within `min..=max`.
fn parse_number(item: &str, min: i8, max: i8, what: &str) -> Result<i8, String> {
    let value = if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
        None
    } else {
        item.parse::<i8>().ok().filter(|v| (min..=max).contains(v))
    };
    value.ok_or_else(|| format!("{what} {item:?} is not a number from {min} to {max}"))
}

/// `hourly` minutes; default `[0]`.
fn parse_minutes(list: &str) -> Result<Vec<i8>, String> {
    let Some(items) = list_items(list, "minute")? else {
        return Ok(vec![0]);
    };
    let mut minutes = items
        .into_iter()
        .map(|item| parse_number(item, 0, 59, "minute"))
        .collect::<Result<Vec<_>, _>>()?;
    minutes.sort_unstable();
    minutes.dedup();
    Ok(minutes)
}

/// Times of day `H[:M[:S]]`; seconds are checked and dropped; default `[00:00]`.
fn parse_times(list: &str) -> Result<Vec<Time>, String> {
    let Some(items) = list_items(list, "time")? else {
        return Ok(vec![Time::midnight()]);
    };
    let mut times = items
        .into_iter()
        .map(parse_time)
        .collect::<Result<Vec<_>, _>>()?;
    times.sort_unstable();
    times.dedup();
    Ok(times)
}

/// One `H[:M[:S]]` item, to minute precision.
fn parse_time(item: &str) -> Result<Time, String> {
    let fields: Vec<&str> = item.split(':').collect();
    if fields.len() > 3 {
        return Err(format!("time {item:?} is not H, H:M or H:M:S"));
    }
    let in_time = |e: String| format!("{e} in time {item:?}");
    let hour = parse_number(fields[0], 0, 23, "hour").map_err(in_time)?;
    let minute = match fields.get(1) {
        Some(field) => parse_number(field, 0, 59, "minute").map_err(in_time)?,
        None => 0,
    };
    if let Some(field) = fields.get(2) {
        parse_number(field, 0, 59, "second").map_err(in_time)?;
    }
    Time::new(hour, minute, 0, 0).map_err(|e| format!("time {item:?}: {e}"))
}

/// `weekly` day names (full or three letters); default Sunday; sorted Sunday first.
fn parse_weekdays(list: &str) -> Result<Vec<Weekday>, String> {
    let Some(items) = list_items(list, "day")? else {
        return Ok(vec![Weekday::Sunday]);
    };
    let mut days = items
        .into_iter()
        .map(parse_weekday)
        .collect::<Result<Vec<_>, _>>()?;
    days.sort_unstable_by_key(|d| d.to_sunday_zero_offset());
    days.dedup();
    Ok(days)
}

/// One day name, already lower case.
fn parse_weekday(item: &str) -> Result<Weekday, String> {
    let day = match item {
        "sunday" | "sun" => Weekday::Sunday,
        "monday" | "mon" => Weekday::Monday,
        "tuesday" | "tue" => Weekday::Tuesday,
        "wednesday" | "wed" => Weekday::Wednesday,
        "thursday" | "thu" => Weekday::Thursday,
        "friday" | "fri" => Weekday::Friday,
        "saturday" | "sat" => Weekday::Saturday,
        _ => return Err(format!("unknown day name {item:?}")),
    };
    Ok(day)
}

/// `monthly` days of the month, 1..=31; default `[1]`.
fn parse_month_days(list: &str) -> Result<Vec<i8>, String> {
    let Some(items) = list_items(list, "day of month")? else {
        return Ok(vec![1]);
    };
    let mut days = items
        .into_iter()
        .map(|item| parse_number(item, 1, 31, "day of month"))
        .collect::<Result<Vec<_>, _>>()?;
    days.sort_unstable();
    days.dedup();
    Ok(days)
}

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Sunday => "Sunday",
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
    }
}

fn format_hm(time: Time) -> String {
    format!("{:02}:{:02}", time.hour(), time.minute())
}

/// "a", "a and b", "a, b and c".
fn join_english(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};

    fn parsed(expr: &str) -> Calendar {
        Calendar::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    fn error(expr: &str) -> String {
        match Calendar::parse(expr) {
            Ok(c) => panic!("{expr} parsed as {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_each_kind_with_defaults() {
        assert_eq!(parsed("minutely"), Calendar::Minutely);
        assert_eq!(parsed("MINUTELY@"), Calendar::Minutely);
        assert_eq!(parsed("hourly"), Calendar::Hourly(vec![0]));
        assert_eq!(parsed("hourly@"), Calendar::Hourly(vec![0]));
        assert_eq!(parsed("hourly@45,15,15"), Calendar::Hourly(vec![15, 45]));
        assert_eq!(parsed("hourly@ 5, 10"), Calendar::Hourly(vec![5, 10]));
        assert_eq!(
            parsed("daily@18:00,6,06:00:30"),
            Calendar::Days {
                days: DayRule::Every,
                times: vec![time(6, 0, 0, 0), time(18, 0, 0, 0)]
            }
        );
        assert_eq!(
            parsed("weekly"),
            Calendar::Days {
                days: DayRule::Weekdays(vec![Weekday::Sunday]),
                times: vec![Time::midnight()]
            }
        );
        assert_eq!(
            parsed("Weekly@Sat,friday,FRI@"),
            Calendar::Days {
                days: DayRule::Weekdays(vec![Weekday::Friday, Weekday::Saturday]),
                times: vec![Time::midnight()]
            }
        );
        assert_eq!(
            parsed("monthly@@12:30"),
            Calendar::Days {
                days: DayRule::MonthDays(vec![1]),
                times: vec![time(12, 30, 0, 0)]
            }
        );
        assert_eq!(
            parsed("monthly@31,1,15@"),
            Calendar::Days {
                days: DayRule::MonthDays(vec![1, 15, 31]),
                times: vec![Time::midnight()]
            }
        );
    }

    #[test]
    fn errors_name_the_bad_item() {
        let cases = [
            (
                "yearly",
                "unknown schedule kind \"yearly\" (once a year is the cron macro @yearly); use minutely",
            ),
            (
                "dayly@10:00",
                "unknown schedule kind \"dayly\" (did you mean \"daily\"?); use minutely, hourly, daily, weekly or monthly (see the README) or a cron expression such as \"0 10 * * *\"",
            ),
            (
                "wekly",
                "unknown schedule kind \"wekly\" (did you mean \"weekly\"?)",
            ),
            ("every", "unknown schedule kind \"every\"; use minutely"),
            ("minutaly", "unknown schedule kind \"minutaly\""),
            ("", "kind is missing"),
            ("@daily", "kind is missing"),
            ("minutely@5", "unexpected parameter \"5\""),
            ("hourly@60", "minute \"60\" is not a number from 0 to 59"),
            ("hourly@-1", "minute \"-1\""),
            ("hourly@5,,10", "empty item"),
            ("hourly@1@2", "unexpected parameter \"2\""),
            (
                "daily@25:00",
                "hour \"25\" is not a number from 0 to 23 in time \"25:00\"",
            ),
            ("daily@12:99", "minute \"99\""),
            ("daily@12:00:60", "second \"60\""),
            ("daily@abc", "hour \"abc\""),
            ("daily@1:2:3:4", "time \"1:2:3:4\" is not H, H:M or H:M:S"),
            ("daily@06:00,", "empty item"),
            ("weekly@foo@10:00", "unknown day name \"foo\""),
            ("weekly@10:00", "unknown day name \"10:00\""),
            (
                "monthly@0",
                "day of month \"0\" is not a number from 1 to 31",
            ),
            ("monthly@32", "day of month \"32\""),
            ("monthly@-1,15,31,44@00:15,6:15", "day of month \"-1\""),
            ("monthly@0xA,15,31,44@00:15,6:15", "day of month \"0xa\""),
            ("monthly@15,31,44", "day of month \"44\""),
            ("monthly@1@2@3", "unexpected parameter \"3\""),
        ];
        for (expr, wanted) in cases {
            let message = error(expr);
            assert!(
                message.contains(wanted),
                "{expr}: {message:?} lacks {wanted:?}"
            );
            // The caller quotes the value: `schedule = "...": <message>`.
            assert!(!message.starts_with("schedule"), "{message}");
        }
    }

    #[test]
    fn next_match_skips_days_a_month_lacks() {
        let monthly31 = parsed("monthly@31");
        let from = date(2024, 3, 31).at(10, 0, 0, 0);
        assert_eq!(
            monthly31.next_match(from, false),
            Some(date(2024, 5, 31).at(0, 0, 0, 0))
        );
        let monthly30 = parsed("monthly@30");
        let from = date(2024, 1, 30).at(10, 0, 0, 0);
        assert_eq!(
            monthly30.next_match(from, false),
            Some(date(2024, 3, 30).at(0, 0, 0, 0))
        );
    }

    #[test]
    fn next_match_inclusive_takes_an_exact_match() {
        let hourly = parsed("hourly@15");
        let at = date(2024, 1, 1).at(10, 15, 0, 0);
        assert_eq!(hourly.next_match(at, true), Some(at));
        assert_eq!(
            hourly.next_match(at, false),
            Some(date(2024, 1, 1).at(11, 15, 0, 0))
        );
        let just_after = date(2024, 1, 1).at(10, 15, 0, 1);
        assert_eq!(
            hourly.next_match(just_after, true),
            Some(date(2024, 1, 1).at(11, 15, 0, 0))
        );
    }

    #[test]
    fn describes_in_english() {
        assert_eq!(parsed("minutely").describe(), "every minute");
        assert_eq!(
            parsed("hourly@0,15,30,45").describe(),
            "every hour at :00, :15, :30 and :45"
        );
        assert_eq!(
            parsed("daily@18:00,06:00").describe(),
            "every day at 06:00 and 18:00"
        );
        assert_eq!(
            parsed("weekly@fri,sat@00:15").describe(),
            "every Friday and Saturday at 00:15"
        );
        assert_eq!(
            parsed("monthly@15@").describe(),
            "on day 15 of every month at 00:00"
        );
        assert_eq!(
            parsed("monthly@1,15@18:00").describe(),
            "on days 1 and 15 of every month at 18:00"
        );
    }
}
