//! Cron expressions: 5 fields (minute precision), 6 fields (with seconds first) and the
//! macros `@yearly @annually @monthly @weekly @daily @midnight @hourly`. This module owns
//! parsing (through croner) and matching on the local wall clock; it hands croner only
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
    /// Parses `expr` (already trimmed): a macro, or 5 or 6 fields. Errors carry
    /// croner's message.
    pub(crate) fn parse(expr: &str) -> Result<Self, ScheduleError> {
        let fields = expand_macro(expr)?;
        let fields: Vec<&str> = fields.split_whitespace().collect();
        let (minute, hour) = match fields.as_slice() {
            [minute, hour, _, _, _] | [_, minute, hour, _, _, _] => (*minute, *hour),
            _ => {
                return Err(ScheduleError(format!(
                    "cron expression {expr:?}: {} fields, expected 5 (minute hour day month \
                     weekday) or 6 (with seconds first)",
                    fields.len()
                )));
            }
        };
        // A field of commas only is an empty set to croner, which then searches
        // thousands of years for a match before giving up (8 s for `, * * * * *`).
        if let Some(field) = fields.iter().find(|f| f.split(',').all(str::is_empty)) {
            return Err(ScheduleError(format!(
                "cron expression {expr:?}: field {field:?} lists no value"
            )));
        }
        let cron = Cron::from_str(&fields.join(" "))
            .map_err(|e| ScheduleError(format!("cron expression {expr:?}: {e}")))?;
        let pattern = CronPattern {
            cron,
            clock_hand: minute.starts_with('*') || hour.starts_with('*'),
        };
        pattern.check_it_ever_matches(expr)?;
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
    fn check_it_ever_matches(&self, expr: &str) -> Result<(), ScheduleError> {
        let start = DateTime::constant(2000, 1, 1, 0, 0, 0, 0);
        match self.cron.find_next_occurrence(&start, true) {
            Ok(_) => Ok(()),
            Err(e) => Err(ScheduleError(format!(
                "cron expression {expr:?} is never due: {e}"
            ))),
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
            return Err(ScheduleError(format!(
                "unknown cron macro {expr:?} (expected @yearly, @annually, @monthly, @weekly, \
                 @daily, @midnight or @hourly)"
            )));
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
            assert!(err.0.contains("lists no value"), "{expr}: {err}");
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
            ("* * * *", "4 fields"),
            ("0 0 0 1 1 * 2030", "7 fields"),
            ("60 * * * *", "cron expression \"60 * * * *\": "),
            ("* * * * * * *", "7 fields"),
            ("0 0 30 2 *", "never due"),
            ("@reboot", "unknown cron macro \"@reboot\""),
            ("a b c d e", "illegal character"),
        ];
        for (expr, wanted) in cases {
            match CronPattern::parse(expr) {
                Ok(p) => panic!("{expr} parsed as {p:?}"),
                Err(e) => assert!(e.0.contains(wanted), "{expr}: {:?} lacks {wanted:?}", e.0),
            }
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
