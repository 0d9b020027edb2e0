//! Cron expressions: 5 fields (minute precision), 6 fields (with seconds first) and the
//! macros `@yearly @annually @monthly @weekly @daily @midnight @hourly`. This module owns
//! parsing (through croner, after checking each field's numbers itself so errors name
//! the field and its range) and matching on the local wall clock; it hands croner only
//! civil date-times, so the daylight-saving rules stay in `wall_clock` and are the same
//! as for calendar schedules.

use std::str::FromStr;

use croner::Cron;
use jiff::civil::DateTime;

use super::ScheduleError;
use super::wall_clock::WallClockPattern;

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub(crate) struct CronPattern {
    cron: Cron,
    clock_hand: bool,
}

impl CronPattern {
    /// Parses `expr` (already trimmed): a macro, or 5 or 6 fields. Errors name the
    /// field and what it accepts; the caller quotes the whole value.
    pub(crate) fn parse(expr: &str) -> Result<Self, ScheduleError> {
        let fields = expand_macro(expr)?;
        let fields: Vec<&str> = fields.split_whitespace().collect();
        let (specs, minute, hour) = match fields.as_slice() {
            [minute, hour, _, _, _] => (&FIELDS[1..], *minute, *hour),
            [_, minute, hour, _, _, _] => (&FIELDS[..], *minute, *hour),
            _ => {
                return Err(ScheduleError::CronFieldCount(fields.len()));
            }
        };
        for (spec, field) in specs.iter().zip(&fields) {
            spec.check(field)?;
        }
        let cron = Cron::from_str(&fields.join(" ")).map_err(|e| explain(specs, &fields, &e))?;
        let pattern = CronPattern {
            cron,
            clock_hand: minute.starts_with('*') || hour.starts_with('*'),
        };
        pattern.check_it_ever_matches(&fields)?;
        Ok(pattern)
    }

    /// Whether the minute or hour field starts with `*`; see `wall_clock::DstRule`.
    pub(crate) fn follows_clock_hand(&self) -> bool {
        self.clock_hand
    }

    /// croner's English description, e.g. "At 09:00, on Monday through Friday".
    pub(crate) fn describe(&self) -> String {
        self.cron.describe().trim_end_matches('.').to_string()
    }

    /// Refuses expressions such as `0 0 30 2 *` that name no real day, so they fail at
    /// start-up rather than leaving the job without a next run. Any date works as the
    /// start: the calendar repeats every 400 years and croner searches far enough.
    fn check_it_ever_matches(&self, fields: &[&str]) -> Result<(), ScheduleError> {
        let start = DateTime::constant(2000, 1, 1, 0, 0, 0, 0);
        match self.cron.find_next_occurrence(&start, true) {
            Ok(_) => Ok(()),
            Err(_) => {
                let [.., day, month, _] = fields else {
                    return Err(ScheduleError::NeverDue);
                };
                Err(ScheduleError::NoSuchDay {
                    month: (*month).to_string(),
                    day: (*day).to_string(),
                })
            }
        }
    }
}

impl WallClockPattern for CronPattern {
    fn next_match(&self, from: DateTime, inclusive: bool) -> Option<DateTime> {
        // croner works in whole seconds; a fraction means the second has started.
        let whole_second = from.with().subsec_nanosecond(0).build().ok()?;
        let inclusive = inclusive && whole_second == from;
        self.cron
            .find_next_occurrence(&whole_second, inclusive)
            .ok()
    }
}

/// One field of a cron line: its name and the numbers it takes.
struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    /// What else the field accepts, for messages.
    also: &'static str,
}

/// The six fields, seconds first; a 5-field line uses the last five.
const FIELDS: [FieldSpec; 6] = [
    FieldSpec {
        name: "second",
        min: 0,
        max: 59,
        also: "",
    },
    FieldSpec {
        name: "minute",
        min: 0,
        max: 59,
        also: "",
    },
    FieldSpec {
        name: "hour",
        min: 0,
        max: 23,
        also: "",
    },
    FieldSpec {
        name: "day of month",
        min: 1,
        max: 31,
        also: ", L (the last day), 15W (the weekday nearest the 15th)",
    },
    FieldSpec {
        name: "month",
        min: 1,
        max: 12,
        also: ", JAN-DEC",
    },
    FieldSpec {
        name: "day of week",
        min: 0,
        max: 7,
        also: " (0 and 7 = Sunday), SUN-SAT, 5L (the last Friday), 1#2 (the second Monday)",
    },
];

impl FieldSpec {
    /// `0-23`, with the Sunday note for the day of week.
    fn range(&self) -> String {
        let note = if self.max == 7 {
            " (0 and 7 = Sunday)"
        } else {
            ""
        };
        format!("{}-{}{note}", self.min, self.max)
    }

    /// Refuses a number outside the field's range: `hour 25 is out of range 0-23`.
    /// Everything else is left to croner.
    fn check(&self, field: &str) -> Result<(), ScheduleError> {
        // A field of commas only is an empty set to croner, which then searches
        // thousands of years for a match before giving up (8 s for `, * * * * *`).
        if field.split(',').all(str::is_empty) {
            return Err(ScheduleError::EmptyCronField {
                field: self.name,
                value: field.to_string(),
            });
        }
        for item in field.split(',') {
            let values = item.split('/').next().unwrap_or_default();
            for value in values.split('-') {
                let number = value.split('#').next().unwrap_or_default();
                let number = number.trim_end_matches(['L', 'l', 'W', 'w']);
                if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
                    continue;
                }
                let in_range = number
                    .parse::<u32>()
                    .is_ok_and(|n| (self.min..=self.max).contains(&n));
                if !in_range {
                    return Err(ScheduleError::CronOutOfRange {
                        field: self.name,
                        number: number.to_string(),
                        range: self.range(),
                    });
                }
            }
        }
        Ok(())
    }

    /// What the field accepts, for a field croner refused.
    fn accepts(&self) -> String {
        format!(
            "use numbers {}{}, * (any), ranges such as 1-5, lists such as 1,15 \
             and steps such as */10",
            self.range(),
            self.also
        )
    }
}

/// Turns croner's refusal into a message naming the field: each field is tried alone
/// (the others `*`) to find the one croner refuses.
fn explain(specs: &[FieldSpec], fields: &[&str], err: &croner::errors::CronError) -> ScheduleError {
    for (index, (spec, field)) in specs.iter().zip(fields).enumerate() {
        let alone: Vec<&str> = (0..fields.len())
            .map(|i| if i == index { *field } else { "*" })
            .collect();
        if Cron::from_str(&alone.join(" ")).is_err() {
            return ScheduleError::InvalidCronField {
                field: spec.name,
                value: (*field).to_string(),
                accepts: spec.accepts(),
            };
        }
    }
    let detail = err.to_string();
    let detail = [
        "Component error: ",
        "Invalid pattern: ",
        "Pattern contains ",
    ]
    .iter()
    .fold(detail.as_str(), |d, prefix| {
        d.strip_prefix(prefix).unwrap_or(d)
    })
    .trim_end_matches('.')
    .to_string();
    ScheduleError::InvalidCron(detail)
}

/// Replaces a macro by its five fields; other expressions are returned as they are.
fn expand_macro(expr: &str) -> Result<String, ScheduleError> {
    if !expr.starts_with('@') {
        return Ok(expr.to_string());
    }
    let fields = match expr.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => {
            return Err(ScheduleError::UnknownCronMacro(expr.to_string()));
        }
    };
    Ok(fields.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn a_field_of_commas_only_is_refused_at_once() {
        for expr in [", * 1-5 * * 1", "0 , * * *", ",, * * * *"] {
            let started = std::time::Instant::now();
            let err = CronPattern::parse(expr).unwrap_err();
            assert!(
                err.to_string().contains("field \",\" lists no value")
                    || err.to_string().contains("field \",,\" lists no value"),
                "{expr}: {err}"
            );
            assert!(
                started.elapsed() < std::time::Duration::from_secs(1),
                "{expr}"
            );
        }
        // A stray comma next to a value is still read as croner reads it.
        assert!(CronPattern::parse("5, * * * *").is_ok());
    }

    fn parsed(expr: &str) -> CronPattern {
        CronPattern::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    #[test]
    fn classifies_the_dst_rule_like_vixie_cron() {
        let clock_hand = [
            "*/15 * * * *",
            "0 * * * *",
            "@hourly",
            "30 */2 * * *",
            "0 * 9 * * *",
        ];
        for expr in clock_hand {
            assert!(parsed(expr).follows_clock_hand(), "{expr}");
        }
        let time_of_day = [
            "0 9 * * 1-5",
            "@daily",
            "@weekly",
            "0 1,13 * * *",
            "*/10 30 2 * * *",
        ];
        for expr in time_of_day {
            assert!(!parsed(expr).follows_clock_hand(), "{expr}");
        }
    }

    #[test]
    fn rejects_invalid_expressions_with_a_message() {
        let cases = [
            (
                "* * * *",
                "5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), this one has 4",
            ),
            ("0 0 0 1 1 * 2030", "this one has 7"),
            ("* * * * * * *", "this one has 7"),
            (
                "0 0 30 2 *",
                "it is never due: no month \"2\" has a day \"30\"",
            ),
            ("@reboot", "unknown cron macro \"@reboot\": use @yearly"),
        ];
        for (expr, wanted) in cases {
            match CronPattern::parse(expr) {
                Ok(p) => panic!("{expr} parsed as {p:?}"),
                Err(e) => assert!(
                    e.to_string().contains(wanted),
                    "{expr}: {:?} lacks {wanted:?}",
                    e.to_string()
                ),
            }
        }
    }

    fn error(expr: &str) -> String {
        match CronPattern::parse(expr) {
            Ok(p) => panic!("{expr} parsed as {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn numbers_out_of_range_name_the_field_and_its_range() {
        let cases = [
            ("60 * * * *", "minute 60 is out of range 0-59"),
            ("0 25 * * *", "hour 25 is out of range 0-23"),
            ("0 0 0 * *", "day of month 0 is out of range 1-31"),
            ("0 0 32 * *", "day of month 32 is out of range 1-31"),
            ("0 0 1 13 *", "month 13 is out of range 1-12"),
            ("0 0 * 0 *", "month 0 is out of range 1-12"),
            (
                "0 0 * * 8",
                "day of week 8 is out of range 0-7 (0 and 7 = Sunday)",
            ),
            ("60 0 0 * * *", "second 60 is out of range 0-59"),
            ("0 60 0 * * *", "minute 60 is out of range 0-59"),
            ("0 9-24 * * *", "hour 24 is out of range 0-23"),
            ("0 1,2,99 * * *", "hour 99 is out of range 0-23"),
            (
                "0 0 * * 9#2",
                "day of week 9 is out of range 0-7 (0 and 7 = Sunday)",
            ),
            ("0 0 40W * *", "day of month 40 is out of range 1-31"),
            (
                "*/5 99999999999 * * *",
                "hour 99999999999 is out of range 0-23",
            ),
        ];
        for (expr, wanted) in cases {
            assert_eq!(error(expr), wanted, "{expr}");
        }
        // Both ends and Sunday as 7 are fine.
        for expr in [
            "59 23 31 12 7",
            "0 0 1 1 0",
            "0 0 * * 0-7",
            "0 0 L * *",
            "0 0 * * 5#2",
        ] {
            assert!(CronPattern::parse(expr).is_ok(), "{expr}: {}", error(expr));
        }
    }

    #[test]
    fn other_bad_fields_are_named_with_what_they_accept() {
        let cases = [
            (
                "a b c d e",
                "minute field \"a\" is not valid: use numbers 0-59, * (any)",
            ),
            (
                "0 x * * *",
                "hour field \"x\" is not valid: use numbers 0-23",
            ),
            (
                "0 0 * FOO *",
                "month field \"FOO\" is not valid: use numbers 1-12, JAN-DEC",
            ),
            (
                "0 0 * * MON-FUN",
                "day of week field \"MON-FUN\" is not valid",
            ),
            (
                "every day at noon ok",
                "minute field \"every\" is not valid",
            ),
        ];
        for (expr, wanted) in cases {
            let message = error(expr);
            assert!(
                message.starts_with(wanted),
                "{expr}: {message:?} lacks {wanted:?}"
            );
            assert!(!message.contains("rror:"), "{expr}: {message:?}");
        }
    }

    #[test]
    fn next_match_is_on_the_wall_clock() {
        let every_quarter = parsed("*/15 * * * *");
        let from = date(2024, 1, 10).at(10, 14, 59, 500_000_000);
        assert_eq!(
            every_quarter.next_match(from, true),
            Some(date(2024, 1, 10).at(10, 15, 0, 0))
        );
        let exact = date(2024, 1, 10).at(10, 15, 0, 0);
        assert_eq!(every_quarter.next_match(exact, true), Some(exact));
        assert_eq!(
            every_quarter.next_match(exact, false),
            Some(date(2024, 1, 10).at(10, 30, 0, 0))
        );
    }

    #[test]
    fn describes_through_croner() {
        let text = parsed("0 9 * * 1-5").describe();
        assert!(text.contains("09:00"), "{text}");
        assert!(!text.ends_with('.'), "{text}");
    }
}
