//! Reading the event log back (spec 1.4, A.8, A.9): the filters of a query and how
//! they are read from URL parameters ([`EventQuery`], [`parse_time`]), and the scan
//! over the day files ([`query_dir`]). Synchronous: async callers use
//! [`super::EventLog::query`], which runs it on a blocking thread.
//!
//! How a query reads: see [`query_dir`]. It relies on the writer's order: day files
//! hold their lines in id order, and an event's day file follows from its time and
//! its time from its id (see [`super::record::IdGen`]). Lines that are not an event
//! are skipped and counted, never fatal.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;

use super::record::{EventId, EventRecord, InvalidEvent, parse_level, quoted};
use super::{day_end, day_files, day_of, day_start};
use crate::store::io_context;

/// `limit` when a query does not say.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit`; larger values are lowered to it.
pub const MAX_LIMIT: usize = 1000;
/// Lines longer than this are not events (the longest event, with every character of
/// its message escaped, is about 26 KiB); they are skipped without being kept whole.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// Which events a query wants. Every filter is optional; all given ones must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// `service` equals this exactly.
    pub service: Option<String>,
    /// `time >= from`.
    pub from: Option<Timestamp>,
    /// `time < to`.
    pub to: Option<Timestamp>,
    /// `severity >= min_severity` (from `level=`: a name's severity, or the number as
    /// given, so `level=35` keeps 35 and up).
    pub min_severity: Option<u8>,
    /// `message` contains this, ignoring case (Unicode lower case of both).
    pub message: Option<String>,
    /// The most events returned, 1–[`MAX_LIMIT`]; values outside are brought inside.
    pub limit: usize,
    /// Only events older than this id: the `next_before` of the previous page.
    pub before: Option<EventId>,
}

impl Default for EventQuery {
    fn default() -> Self {
        Self {
            service: None,
            from: None,
            to: None,
            min_severity: None,
            message: None,
            limit: DEFAULT_LIMIT,
            before: None,
        }
    }
}

impl EventQuery {
    /// Reads URL query parameters (already percent-decoded): `service`, `from`, `to`,
    /// `level`, `message`, `limit` and `before`. An empty value means the filter is
    /// not set (watchTower clients send `?service=&from=&to=`). A repeated name keeps
    /// its last value; other names are ignored (a `token`, a cache buster). Errors name
    /// the parameter.
    pub fn parse<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, InvalidEvent> {
        let mut query = Self::default();
        for (name, value) in params {
            if value.is_empty() {
                match name {
                    "service" => query.service = None,
                    "from" => query.from = None,
                    "to" => query.to = None,
                    "level" => query.min_severity = None,
                    "message" => query.message = None,
                    "limit" => query.limit = DEFAULT_LIMIT,
                    "before" => query.before = None,
                    _ => {}
                }
                continue;
            }
            match name {
                "service" => query.service = Some(value.to_owned()),
                "from" => query.from = Some(parse_time("from", value)?),
                "to" => query.to = Some(parse_time("to", value)?),
                "level" => query.min_severity = Some(parse_level(value)?.1),
                "message" => query.message = Some(value.to_owned()),
                "limit" => query.limit = parse_limit(value)?,
                "before" => {
                    let id = value
                        .trim()
                        .parse::<EventId>()
                        .map_err(|e| InvalidEvent::new("before", e.reason().to_owned()))?;
                    query.before = Some(id);
                }
                _ => {}
            }
        }
        Ok(query)
    }

    /// Whether `record` passes every filter (the limit aside). Also usable on live
    /// events, to filter a stream the same way as the log.
    pub fn matches(&self, record: &EventRecord) -> bool {
        self.matches_with(
            record,
            self.message.as_deref().map(str::to_lowercase).as_deref(),
        )
    }

    fn matches_with(&self, record: &EventRecord, needle: Option<&str>) -> bool {
        self.service.as_ref().is_none_or(|s| *s == record.service)
            && self.from.is_none_or(|from| record.time >= from)
            && self.to.is_none_or(|to| record.time < to)
            && self.min_severity.is_none_or(|min| record.severity >= min)
            && self.before.is_none_or(|before| record.id < before)
            && needle.is_none_or(|n| record.message.to_lowercase().contains(n))
    }

    fn overlaps(&self, date: Date) -> bool {
        let (Some(start), end) = (day_start(date), day_end(date)) else {
            return true;
        };
        self.to.is_none_or(|to| start < to)
            && self
                .from
                .is_none_or(|from| end.is_none_or(|end| end > from))
    }
}

/// Reads a `limit`: a positive integer; values over [`MAX_LIMIT`] are lowered to it.
pub fn parse_limit(text: &str) -> Result<usize, InvalidEvent> {
    let text = text.trim();
    let bad = || {
        InvalidEvent::new(
            "limit",
            format!("must be a whole number 1–{MAX_LIMIT}, got {}", quoted(text)),
        )
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match text.parse::<u64>() {
        Ok(0) => Err(bad()),
        Ok(n) => Ok(usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT)),
        // All digits but too long for u64: far above the maximum.
        Err(_) => Ok(MAX_LIMIT),
    }
}

/// Reads a `from` or `to` value; `field` names it in the error. Accepted:
///
/// * RFC 3339 with any offset: `2026-11-22T03:00:00Z`, `2026-11-22T10:00:00.5+07:00`
///   (also with a space for the `T`). A `+` in an offset that arrives as a space,
///   because it was not percent-encoded in the URL, is read as `+`;
/// * Unix seconds, possibly negative or with a fraction: `1795316400`,
///   `1795316400.25`;
/// * a bare date `2026-11-22`, meaning its midnight in UTC.
pub fn parse_time(field: &'static str, text: &str) -> Result<Timestamp, InvalidEvent> {
    let text = text.trim();
    let bad = || {
        InvalidEvent::new(
            field,
            format!(
                "want RFC 3339 (2026-11-22T03:00:00Z) or Unix seconds, got {}",
                quoted(text)
            ),
        )
    };
    if let Some(at) = parse_unix(text) {
        return at.ok_or_else(bad);
    }
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    // "…T10:00:00 07:00": a '+' decoded as a space.
    if let Some(split) = text.len().checked_sub(6)
        && text.is_char_boundary(split)
        && text[split..].starts_with(' ')
        && let Ok(at) = format!("{}+{}", &text[..split], &text[split + 1..]).parse::<Timestamp>()
    {
        return Ok(at);
    }
    if text.len() == 10
        && let Ok(date) = text.parse::<Date>()
        && let Some(at) = day_start(date)
    {
        return Ok(at);
    }
    Err(bad())
}

/// `None` when `text` does not look like Unix seconds; `Some(None)` when it does but
/// is out of range.
fn parse_unix(text: &str) -> Option<Option<Timestamp>> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    if digits.contains('.') && fraction.is_empty() {
        return None;
    }
    let Ok(secs) = whole.parse::<i64>() else {
        return Some(None);
    };
    let mut nanos: i32 = 0;
    for (i, b) in fraction.bytes().take(9).enumerate() {
        let place = 10i32.pow(8 - u32::try_from(i).unwrap_or(8));
        nanos += i32::from(b - b'0') * place;
    }
    let (secs, nanos) = if negative {
        (-secs, -nanos)
    } else {
        (secs, nanos)
    };
    Some(Timestamp::new(secs, nanos).ok())
}

/// One page of events, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventPage {
    /// At most `limit` events, newest (largest id) first.
    pub events: Vec<EventRecord>,
    /// The id to pass as `before` for the next page; absent when there are no older
    /// matching events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<EventId>,
    /// Lines of the files read that were not events (corrupt, cut short by a crash,
    /// too long); they were skipped.
    #[serde(skip)]
    pub skipped_lines: u64,
}

/// A record ordered by its id alone.
struct ById(EventRecord);

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}
impl Eq for ById {}
impl PartialOrd for ById {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ById {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.id.cmp(&other.0.id)
    }
}

/// Runs `query` over the day files in `dir`, newest event first.
///
/// Only the day files that overlap `[from, to)` and are not newer than the day of
/// `before` are opened, newest first. Each is streamed line by line from its end in
/// 64 KiB chunks (a line longer than 64 KiB is never held whole), and only the best
/// `limit + 1` matches are kept, the extra one telling whether there is a next page.
/// Reading stops as soon as there are that many: the writer keeps every day file in id
/// order, and every event of an older day file has a smaller id than those of newer
/// ones. So asking for the newest 100 events reads about 100 lines, however big the
/// day. (A file written by hand out of order, or by a karajo whose clock was set back
/// by more than a minute, can make a page miss events that are out of place.) Lines
/// that are not events are skipped and counted in [`EventPage::skipped_lines`].
/// `from >= to` matches nothing.
///
/// A missing directory has no events, and a day file deleted by retention meanwhile
/// is skipped. Fails only when a day file that had to be read cannot be read.
pub fn query_dir(dir: &Path, query: &EventQuery) -> io::Result<EventPage> {
    let limit = query.limit.clamp(1, MAX_LIMIT);
    let mut page = EventPage::default();
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from >= to
    {
        return Ok(page);
    }
    let newest_day = query.before.map(|id| day_of(id.timestamp()));
    let needle = query.message.as_deref().map(str::to_lowercase);
    // A min-heap of the best `limit + 1` so far: its top is the smallest id.
    let mut best: BinaryHeap<Reverse<ById>> = BinaryHeap::with_capacity(limit + 1);
    let mut files = day_files(dir)?;
    files.sort_by_key(|(date, _)| Reverse(*date));
    for (date, path) in files {
        if newest_day.is_some_and(|newest| date > newest) {
            continue;
        }
        if !query.overlaps(date) {
            if query
                .from
                .is_some_and(|from| day_end(date).is_some_and(|end| end <= from))
            {
                break; // this day and all older ones end before `from`
            }
            continue;
        }
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_context(e, "open event log", &path)),
        };
        for_each_line_rev(&file, &path, |line| {
            let Some(line) = line else {
                page.skipped_lines += 1;
                return ControlFlow::Continue(());
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                return ControlFlow::Continue(());
            }
            // Paging back through a big day: skip the newer lines unparsed.
            if let (Some(before), Some(id)) = (query.before, leading_id(line))
                && id >= before
            {
                return ControlFlow::Continue(());
            }
            let Ok(record) = serde_json::from_slice::<EventRecord>(line) else {
                page.skipped_lines += 1;
                return ControlFlow::Continue(());
            };
            if query.matches_with(&record, needle.as_deref()) {
                if best.len() <= limit {
                    best.push(Reverse(ById(record)));
                } else if best.peek().is_some_and(|Reverse(low)| low.0.id < record.id) {
                    best.pop();
                    best.push(Reverse(ById(record)));
                }
            }
            // The file is in id order, so what is above this line is older.
            if best.len() > limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        if best.len() > limit {
            break;
        }
    }
    let mut events: Vec<EventRecord> = best.into_iter().map(|Reverse(ById(r))| r).collect();
    events.sort_by_key(|r| Reverse(r.id));
    if events.len() > limit {
        events.truncate(limit);
        page.next_before = events.last().map(|r| r.id);
    }
    page.events = events;
    Ok(page)
}

/// How much of a file is read at a time, from its end backwards.
const CHUNK: usize = 64 * 1024;

/// Streams the lines of `file` to `each`, last line first: `Some(line)` without its
/// newline, `None` for a line longer than [`MAX_LINE`] (never held whole). The text
/// after the last newline is passed first (empty when the file ends with one), and
/// the text before the first newline last. `each` stops the scan by returning
/// [`ControlFlow::Break`]. Memory: one chunk and at most one line.
pub(crate) fn for_each_line_rev(
    file: &File,
    path: &Path,
    mut each: impl FnMut(Option<&[u8]>) -> ControlFlow<()>,
) -> io::Result<()> {
    let context = |e| io_context(e, "read event log", path);
    let mut pos = file.metadata().map_err(context)?.len();
    let mut buf = vec![0u8; CHUNK];
    // The end of a line whose start lies in the part not read yet.
    let mut carry: Vec<u8> = Vec::new();
    let mut too_long = false;
    while pos > 0 {
        let n = usize::try_from(pos).unwrap_or(CHUNK).min(CHUNK);
        pos -= n as u64;
        let chunk = &mut buf[..n];
        file.read_exact_at(chunk, pos).map_err(context)?;
        let mut end = n;
        while let Some(newline) = chunk[..end].iter().rposition(|&b| b == b'\n') {
            let head = &chunk[newline + 1..end];
            let flow = if too_long || head.len() + carry.len() > MAX_LINE {
                each(None)
            } else if carry.is_empty() {
                each(Some(head))
            } else {
                carry.splice(0..0, head.iter().copied());
                each(Some(&carry))
            };
            if flow.is_break() {
                return Ok(());
            }
            carry.clear();
            too_long = false;
            end = newline;
        }
        if !too_long {
            if carry.len() + end > MAX_LINE {
                too_long = true;
                carry = Vec::new();
            } else {
                carry.splice(0..0, chunk[..end].iter().copied());
            }
        }
    }
    let _ = each(if too_long { None } else { Some(&carry) });
    Ok(())
}

/// The id of a line as this writer writes it (`{"id":"<uuid>",…`), without parsing the
/// rest; `None` for any other shape.
fn leading_id(line: &[u8]) -> Option<EventId> {
    let rest = line.strip_prefix(br#"{"id":""#)?;
    let text = std::str::from_utf8(rest.get(..36)?).ok()?;
    (rest.get(36) == Some(&b'"')).then_some(())?;
    text.parse().ok()
}
