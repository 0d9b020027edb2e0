//! The text of a run log (spec 6.5), in one place: the line prefix
//! `YYYY-MM-DD hh:mm:ss UTC <kind>: <id>: ` with its formatting and parsing
//! ([`LinePrefix`]), the framing lines karajo writes around a run's output
//! (`=== BEGIN`, `=== TRIGGER: …`, `--- Execute NN: …`, `=== DONE`, `!!! …`,
//! `??? CANCELED`) and their parsing back ([`parse_trigger`], [`parse_execute`],
//! [`parse_closing`]). Writers and readers of logs call these; nobody else spells a
//! framing line or slices a prefix by offsets.

use std::fmt::Display;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::job::{JobId, JobKind, Trigger};

/// The length of the time part of a prefix, `YYYY-MM-DD hh:mm:ss UTC `.
const TIME_LEN: usize = 24;

/// The first framing line of every run.
const BEGIN: &str = "=== BEGIN";
/// The start of the second line, which names what started the run.
const TRIGGER: &str = "=== TRIGGER: ";
/// The start of the third line of a run in cluster mode, which names the node it ran on.
const NODE: &str = "=== NODE: ";
/// The start of the line before each command of a shell run.
const EXECUTE: &str = "--- Execute ";
/// The line that ends a successful run, before the `finished.` line.
const DONE: &str = "=== DONE";
/// The line that ends a canceled run.
const CANCELED: &str = "??? CANCELED";
/// What a failed shell command's reason starts with (`exit status 3`).
const EXIT_STATUS: &str = "exit status ";

/// The prefix of one log line: when its first byte was written (rounded to the second)
/// and which job wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinePrefix {
    /// The line's time (whole seconds once parsed back).
    pub at: Timestamp,
    /// The job's kind, `job` or `job_http` in the text.
    pub kind: JobKind,
    /// The job's id.
    pub id: JobId,
}

impl LinePrefix {
    /// The prefix text, `at` rounded to the nearest second (the original rounds, it does
    /// not truncate).
    pub fn format(&self) -> String {
        let mut prefix = Vec::new();
        write_prefix(&mut prefix, rounded_second(self.at), self.kind, &self.id);
        String::from_utf8(prefix).unwrap_or_default()
    }

    /// Parses the prefix at the start of `line`; returns it and the rest of the line.
    /// `None` when the line does not start with a whole prefix.
    pub fn parse(line: &[u8]) -> Option<(Self, &[u8])> {
        let at = prefix_time(line)?;
        let rest = &line[TIME_LEN..];
        let (kind, rest) = [JobKind::Http, JobKind::Exec, JobKind::Monitor]
            .into_iter()
            .find_map(|kind| {
                let rest = rest.strip_prefix(kind.as_str().as_bytes())?;
                Some((kind, rest.strip_prefix(b": ")?))
            })?;
        let end = rest.windows(2).position(|w| w == b": ")?;
        let id = std::str::from_utf8(&rest[..end]).ok()?;
        let prefix = Self {
            at,
            kind,
            id: JobId::from_raw(id),
        };
        Some((prefix, &rest[end + 2..]))
    }
}

/// The prefix text for job `id` of `kind` at `at`; see [`LinePrefix::format`].
pub fn line_prefix(kind: JobKind, id: &JobId, at: Timestamp) -> String {
    LinePrefix {
        at,
        kind,
        id: id.clone(),
    }
    .format()
}

/// Appends the prefix for the (already rounded) Unix second `second` to `out`.
pub(crate) fn write_prefix(out: &mut Vec<u8>, second: i64, kind: JobKind, id: &JobId) {
    out.extend_from_slice(format_second(second).as_bytes());
    out.extend_from_slice(b" UTC ");
    out.extend_from_slice(kind.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(id.as_str().as_bytes());
    out.extend_from_slice(b": ");
}

/// The time of the prefix `YYYY-MM-DD hh:mm:ss UTC ` at the start of `line`, whatever
/// follows it.
pub fn prefix_time(line: &[u8]) -> Option<Timestamp> {
    let head = std::str::from_utf8(line.get(..TIME_LEN)?).ok()?;
    let (date, rest) = head.split_at_checked(10)?;
    let (time, utc) = rest.strip_prefix(' ')?.split_at_checked(8)?;
    if utc != " UTC " {
        return None;
    }
    format!("{date}T{time}Z").parse().ok()
}

/// The text of `line` after its prefix; the whole line when it has none.
pub fn text_of(line: &[u8]) -> &[u8] {
    LinePrefix::parse(line).map_or(line, |(_, rest)| rest)
}

/// `at` in whole seconds since the Unix epoch, halves rounded away from zero.
pub(crate) fn rounded_second(at: Timestamp) -> i64 {
    let (second, nanos) = (at.as_second(), at.subsec_nanosecond());
    if nanos >= 500_000_000 {
        second + 1
    } else if nanos <= -500_000_000 {
        second - 1
    } else {
        second
    }
}

/// `YYYY-MM-DD hh:mm:ss` in UTC.
fn format_second(second: i64) -> String {
    let Ok(at) = Timestamp::from_second(second) else {
        return String::from("0000-00-00 00:00:00");
    };
    let dt = at.to_zoned(TimeZone::UTC).datetime();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// `=== BEGIN`, the first line of a run.
pub fn begin() -> &'static str {
    BEGIN
}

/// `=== TRIGGER: <trigger>`, the second line of a run.
pub fn trigger(trigger: Trigger) -> String {
    format!("{TRIGGER}{}", trigger.as_str())
}

/// `=== NODE: <node>`, the third line of a run in cluster mode: where it ran.
pub fn node(node: &str) -> String {
    format!("{NODE}{node}")
}

/// The node a run ran on, from the `=== NODE:` line among the first lines of its log
/// (`head`, whole lines with their prefixes); `None` outside cluster mode.
pub fn node_of(head: &[u8]) -> Option<String> {
    head.split(|&b| b == b'\n').take(4).find_map(|line| {
        let text = text_of(line).strip_prefix(NODE.as_bytes())?;
        let name = std::str::from_utf8(text).ok()?.trim();
        (!name.is_empty()).then(|| name.to_string())
    })
}

/// `--- Execute NN: <command>`, before command `index` (from 0) of a shell run.
pub fn execute(index: usize, command: &str) -> String {
    format!("{EXECUTE}{index:2}: {command}")
}

/// `--- HTTP request:`, before the request an HTTP run sends.
pub fn http_request() -> &'static str {
    "--- HTTP request:"
}

/// `--- HTTP response:`, before the response an HTTP run got.
pub fn http_response() -> &'static str {
    "--- HTTP response:"
}

/// The two lines that end a successful run: `=== DONE` and
/// `=== <kind>: <id>: finished.`.
pub fn done(kind: JobKind, id: &JobId) -> String {
    format!("{DONE}\n=== {}: {id}: finished.", kind.as_str())
}

/// `!!! <kind>: <id>: <why>`, the line that ends a failed run.
pub fn failed(kind: JobKind, id: &JobId, why: impl Display) -> String {
    format!("!!! {}: {id}: {why}", kind.as_str())
}

/// `??? CANCELED`, the line that ends a canceled run.
pub fn canceled() -> &'static str {
    CANCELED
}

/// The line the start-up scan appends to a run karajo did not see finish.
pub fn interrupted(kind: JobKind, id: &JobId) -> String {
    failed(
        kind,
        id,
        "interrupted: karajo stopped before the run finished",
    )
}

/// What started the run, from its `=== TRIGGER:` line (the text after the prefix).
pub fn parse_trigger(text: &[u8]) -> Option<Trigger> {
    let word = std::str::from_utf8(text.strip_prefix(TRIGGER.as_bytes())?).ok()?;
    let word = word.trim();
    Trigger::ALL.into_iter().find(|t| t.as_str() == word)
}

/// The index and command of a `--- Execute NN: <command>` line (the text after the
/// prefix).
pub fn parse_execute(text: &[u8]) -> Option<(usize, &str)> {
    let text = std::str::from_utf8(text.strip_prefix(EXECUTE.as_bytes())?).ok()?;
    let (index, command) = text.split_once(": ")?;
    Some((index.trim_start().parse().ok()?, command))
}

/// How a run's log says it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closing {
    /// `=== DONE` or `=== <kind>: <id>: finished.`.
    Done,
    /// `!!! <kind>: <id>: <why>`; the reason.
    Failed(String),
    /// `??? CANCELED`.
    Canceled,
}

impl Closing {
    /// The exit code of the command that failed the run (`exit status N`).
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Self::Failed(why) => why.strip_prefix(EXIT_STATUS)?.parse().ok(),
            Self::Done | Self::Canceled => None,
        }
    }
}

/// Parses a closing line (the text after the prefix); `None` for any other line.
pub fn parse_closing(text: &[u8]) -> Option<Closing> {
    let text = std::str::from_utf8(text).ok()?.trim_end();
    if text == DONE || (text.starts_with("=== ") && text.ends_with(": finished.")) {
        return Some(Closing::Done);
    }
    if text == CANCELED {
        return Some(Closing::Canceled);
    }
    let rest = text.strip_prefix("!!! ")?;
    let (_, rest) = rest.split_once(": ")?;
    let (_, why) = rest.split_once(": ")?;
    Some(Closing::Failed(why.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes_round_and_parse_back() {
        let id = JobId::from_raw("srht");
        let p = line_prefix(JobKind::Exec, &id, ts("2023-01-09T00:00:00.499Z"));
        assert_eq!(p, "2023-01-09 00:00:00 UTC job: srht: ");
        let p = line_prefix(JobKind::Http, &id, ts("2023-01-09T23:59:59.5Z"));
        assert_eq!(p, "2023-01-10 00:00:00 UTC job_http: srht: ");
        let line = format!("{p}=== BEGIN");
        let (parsed, rest) = LinePrefix::parse(line.as_bytes()).unwrap();
        assert_eq!(parsed.at, ts("2023-01-10T00:00:00Z"));
        assert_eq!(parsed.kind, JobKind::Http);
        assert_eq!(parsed.id, id);
        assert_eq!(rest, b"=== BEGIN");
        assert_eq!(text_of(line.as_bytes()), b"=== BEGIN");
        assert_eq!(text_of(b"no prefix"), b"no prefix");
        let t = prefix_time(b"2026-11-22 21:08:11 UTC job: hello: === BEGIN").unwrap();
        assert_eq!(t.to_string(), "2026-11-22T21:08:11Z");
        assert!(prefix_time(b"2026-11-22T21:08:11 UTC job").is_none());
        assert!(prefix_time(b"short").is_none());
    }

    #[test]
    fn the_node_line_names_where_a_cluster_run_ran() {
        let p = "2026-11-30 21:00:00 UTC job: pin: ";
        let head = format!(
            "{p}=== BEGIN\n{p}=== TRIGGER: webhook\n{p}{}\n{p}1\n",
            node("n2")
        );
        assert_eq!(node_of(head.as_bytes()).as_deref(), Some("n2"));
        let single = format!("{p}=== BEGIN\n{p}=== TRIGGER: webhook\n{p}--- Execute  0: x\n");
        assert_eq!(node_of(single.as_bytes()), None);
        let late = format!("{p}a\n{p}b\n{p}c\n{p}d\n{p}{}\n", node("n9"));
        assert_eq!(node_of(late.as_bytes()), None, "only the run's first lines");
    }

    #[test]
    fn framing_lines_parse_back() {
        let id = JobId::from_raw("j");
        assert_eq!(begin(), "=== BEGIN");
        assert_eq!(trigger(Trigger::Webhook), "=== TRIGGER: webhook");
        assert_eq!(
            parse_trigger(trigger(Trigger::Api).as_bytes()),
            Some(Trigger::Api)
        );
        assert_eq!(parse_trigger(b"=== TRIGGER: nope"), None);
        assert_eq!(execute(3, "echo hi"), "--- Execute  3: echo hi");
        assert_eq!(
            parse_execute(execute(12, "a: b").as_bytes()),
            Some((12, "a: b"))
        );
        assert_eq!(done(JobKind::Exec, &id), "=== DONE\n=== job: j: finished.");
        assert_eq!(parse_closing(b"=== DONE"), Some(Closing::Done));
        assert_eq!(parse_closing(b"=== job: j: finished."), Some(Closing::Done));
        let f = failed(JobKind::Http, &id, "exit status 3");
        assert_eq!(f, "!!! job_http: j: exit status 3");
        let closing = parse_closing(f.as_bytes()).unwrap();
        assert_eq!(closing, Closing::Failed("exit status 3".into()));
        assert_eq!(closing.exit_code(), Some(3));
        assert_eq!(
            interrupted(JobKind::Exec, &id),
            "!!! job: j: interrupted: karajo stopped before the run finished"
        );
        assert_eq!(parse_closing(b"??? CANCELED"), Some(Closing::Canceled));
        assert_eq!(parse_closing(b"output"), None);
    }
}
