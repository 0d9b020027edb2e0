//! One event of the log and the rules for what it may hold (spec 1.4): the record as
//! written on one line ([`EventRecord`]), its time-ordered UUID v7 id ([`EventId`] and
//! the generator that hands them out), the level names and severities ([`Level`],
//! [`parse_level`]), where an event came from ([`Source`]), and a validated event that
//! has no id yet ([`NewEvent`]). Pure: no IO, no clock of its own.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use rand::Rng as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest `service`, in bytes of UTF-8.
pub const SERVICE_MAX: usize = 128;
/// The longest `message`, in bytes of UTF-8, cut mark included.
pub const MESSAGE_MAX: usize = 4096;
/// What a message longer than [`MESSAGE_MAX`] ends with after it is cut.
pub const CUT_MARK: &str = " …(cut)";
/// The longest `kind`, in bytes.
pub const KIND_MAX: usize = 64;

/// Why an event, or a query of events, was refused: the field and what is wrong with
/// it. The API answers it with 400 `ERR_EVENT_INVALID` and the message
/// `invalid event: <this error>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidEvent {
    field: &'static str,
    reason: String,
}

impl InvalidEvent {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }

    /// The field at fault: `service`, `level`, `kind`, `from`, `to`, `limit` or
    /// `before`.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// What is wrong with it, without the field name.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Shows user input in an error message: quoted, and cut after 64 characters so a
/// huge value is not echoed back whole.
pub(crate) fn quoted(text: &str) -> String {
    const SHOWN: usize = 64;
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{:?}…", &text[..end]),
        None => format!("{text:?}"),
    }
}

/// An event's level name. The order is the order of severity, so `Level::Error >
/// Level::Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Severity 10 (and every severity below it).
    Debug,
    /// Severity 20.
    Info,
    /// Severity 25.
    Notice,
    /// Severity 30; alias `warn`.
    Warning,
    /// Severity 40; alias `err`.
    Error,
    /// Severity 50; aliases `crit` and `fatal`.
    Critical,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Self; 6] = [
        Self::Debug,
        Self::Info,
        Self::Notice,
        Self::Warning,
        Self::Error,
        Self::Critical,
    ];

    /// The severity the name stands for.
    pub const fn severity(self) -> u8 {
        match self {
            Self::Debug => 10,
            Self::Info => 20,
            Self::Notice => 25,
            Self::Warning => 30,
            Self::Error => 40,
            Self::Critical => 50,
        }
    }

    /// The name as written in the log.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Notice => "notice",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
        }
    }

    /// The nearest name at or below `severity`; `Debug` below 10.
    pub fn from_severity(severity: u8) -> Self {
        Self::ALL
            .into_iter()
            .rev()
            .find(|level| level.severity() <= severity)
            .unwrap_or(Self::Debug)
    }

    /// A name or alias, case-insensitive: `debug`, `info`, `notice`, `warning`
    /// (`warn`), `error` (`err`), `critical` (`crit`, `fatal`).
    pub fn from_name(name: &str) -> Option<Self> {
        const NAMES: [(&str, Level); 10] = [
            ("debug", Level::Debug),
            ("info", Level::Info),
            ("notice", Level::Notice),
            ("warning", Level::Warning),
            ("warn", Level::Warning),
            ("error", Level::Error),
            ("err", Level::Error),
            ("critical", Level::Critical),
            ("crit", Level::Critical),
            ("fatal", Level::Critical),
        ];
        NAMES
            .into_iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, level)| level)
    }

    /// The index of the level in [`Level::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads a posted `level`: a name or alias (see [`Level::from_name`]), or a bare
/// integer 0–100 taken as the severity and named by the nearest level at or below it.
/// Surrounding ASCII spaces are ignored. Anything else is refused, because filtering
/// by "level above" needs an order.
pub fn parse_level(text: &str) -> Result<(Level, u8), InvalidEvent> {
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if let Some(level) = Level::from_name(text) {
        return Ok((level, level.severity()));
    }
    if !text.is_empty()
        && text.len() <= 3
        && text.bytes().all(|b| b.is_ascii_digit())
        && let Ok(severity) = text.parse::<u8>()
        && severity <= 100
    {
        return Ok((Level::from_severity(severity), severity));
    }
    Err(InvalidEvent::new(
        "level",
        format!(
            "unknown level {}: use debug, info, notice, warning, error, critical or a severity 0–100",
            quoted(text)
        ),
    ))
}

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Posted to `POST /karajo/api/event`.
    Api,
    /// Posted by a watchTower client to `add-event`.
    Watchtower,
    /// A monitor's transition or note.
    Monitor,
    /// A service's lifecycle step.
    Service,
    /// karajo's own notes (restart credits, dropped events).
    Karajo,
}

impl Source {
    /// The name as written in the log.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Watchtower => "watchtower",
            Self::Monitor => "monitor",
            Self::Service => "service",
            Self::Karajo => "karajo",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A UUID v7: 48 bits of Unix milliseconds, then version, counter and random bits.
/// Ids compare in the order they were handed out, which is the order of paging.
/// Written in the usual lowercase hyphenated form; read in either case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(u128);

/// The 74 bits below the timestamp that are not version or variant.
const COUNTER_BITS: u32 = 74;
const RAND_B_MASK: u128 = (1 << 62) - 1;
const MAX_MILLIS: u128 = (1 << 48) - 1;

impl EventId {
    /// The id with these 128 bits.
    pub const fn from_u128(bits: u128) -> Self {
        Self(bits)
    }

    /// The 128 bits.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// The Unix milliseconds in the id's first 48 bits.
    pub fn millis(self) -> i64 {
        // 48 bits always fit.
        i64::try_from(self.0 >> 80).unwrap_or(i64::MAX)
    }

    /// The instant of [`EventId::millis`] (the latest instant jiff knows for ids from
    /// past the year 9999).
    pub fn timestamp(self) -> Timestamp {
        Timestamp::from_millisecond(self.millis()).unwrap_or(Timestamp::MAX)
    }

    fn build(millis: u128, counter: u128) -> Self {
        let rand_a = (counter >> 62) & 0xfff;
        let rand_b = counter & RAND_B_MASK;
        Self((millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b)
    }

    fn counter(self) -> u128 {
        (((self.0 >> 64) & 0xfff) << 62) | (self.0 & RAND_B_MASK)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            v >> 96,
            (v >> 80) & 0xffff,
            (v >> 64) & 0xffff,
            (v >> 48) & 0xffff,
            v & 0xffff_ffff_ffff
        )
    }
}

impl FromStr for EventId {
    type Err = InvalidEvent;

    /// A hyphenated UUID (`8-4-4-4-12` hex digits, either case). Any version is
    /// accepted, so an id from elsewhere can still be used as a paging bound.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidEvent::new("id", format!("not a UUID: {}", quoted(text)));
        let bytes = text.as_bytes();
        if bytes.len() != 36 {
            return Err(bad());
        }
        let mut bits: u128 = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if b != b'-' {
                    return Err(bad());
                }
                continue;
            }
            let digit = char::from(b).to_digit(16).ok_or_else(bad)?;
            bits = (bits << 4) | u128::from(digit);
        }
        Ok(Self(bits))
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Hands out strictly increasing UUID v7 ids (RFC 9562 §6.2, method 2: a counter
/// seeded at random each new millisecond, stepped by a random amount within one).
///
/// The event's `time` is the id's millisecond, so id order and time order agree and
/// the day file an event lands in follows from its id. A wall clock that steps back
/// by at most [`IdGen::MAX_BACKSTEP_MS`] does not move ids or times back: they stay at
/// the last millisecond handed out until the clock catches up. A larger step back
/// (someone set the clock right after it ran far ahead) is believed, and ids start
/// again from the clock.
#[derive(Debug, Default)]
pub(crate) struct IdGen {
    last: Option<EventId>,
}

impl IdGen {
    /// The largest step back of the wall clock, in milliseconds, that ids ride out.
    pub(crate) const MAX_BACKSTEP_MS: u128 = 60_000;

    /// A generator whose ids are all greater than `seed` (the newest id already in the
    /// log), as long as the clock is not more than a minute behind it.
    pub(crate) fn new(seed: Option<EventId>) -> Self {
        Self { last: seed }
    }

    /// The next id for an event at `now`.
    pub(crate) fn next(&mut self, now: Timestamp) -> EventId {
        let now_ms = u128::try_from(now.as_millisecond().max(0))
            .unwrap_or(0)
            .min(MAX_MILLIS);
        let mut rng = rand::rng();
        let fresh = |millis: u128, rng: &mut rand::rngs::ThreadRng| {
            // The top counter bit stays clear, so counting up within a millisecond
            // has room for about 2^41 more ids before it spills into the next one.
            let counter = rng.random::<u128>() & ((1 << (COUNTER_BITS - 1)) - 1);
            EventId::build(millis, counter)
        };
        let id = match self.last {
            Some(last)
                if (last.0 >> 80) >= now_ms && (last.0 >> 80) - now_ms <= Self::MAX_BACKSTEP_MS =>
            {
                let last_ms = last.0 >> 80;
                let counter = last.counter() + rng.random_range(1..=(1u128 << 32));
                if counter >> COUNTER_BITS != 0 {
                    fresh((last_ms + 1).min(MAX_MILLIS), &mut rng)
                } else {
                    EventId::build(last_ms, counter)
                }
            }
            _ => fresh(now_ms, &mut rng),
        };
        self.last = Some(id);
        id
    }
}

/// One line of the event log. Serialised in this field order, `kind` left out when
/// absent:
///
/// ```json
/// {"id":"01937f0c-6b1e-7a52-9c1d-2f9e0b4a7c11","time":"2026-11-22T03:05:00.004Z","service":"backup_db","level":"error","severity":40,"message":"down: …","source":"monitor","kind":"monitor.down"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// The UUID v7 of the event, used for paging.
    pub id: EventId,
    /// When it was recorded: RFC 3339 in UTC, with sub-second digits when non-zero.
    /// For events written by this version it is the id's millisecond.
    #[serde(with = "rfc3339")]
    pub time: Timestamp,
    /// Free text, 1–128 bytes without control characters; a monitor's or service's ID
    /// for their events.
    pub service: String,
    /// The level name.
    pub level: Level,
    /// 0–100; the level's severity unless a number was posted.
    pub severity: u8,
    /// At most 4 KiB.
    pub message: String,
    /// Where the event came from.
    pub source: Source,
    /// A dotted machine name for events karajo writes itself (`monitor.down`); absent
    /// for posted events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A validated event without id and time, ready for [`super::EventLog::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    service: String,
    level: Level,
    severity: u8,
    message: String,
    source: Source,
    kind: Option<String>,
}

impl NewEvent {
    /// An event at a level name. Fails when `service` is empty, longer than 128 bytes
    /// or holds a control character; a message over 4 KiB is cut (see
    /// [`cut_message`]).
    pub fn new(
        service: impl Into<String>,
        level: Level,
        message: impl Into<String>,
        source: Source,
    ) -> Result<Self, InvalidEvent> {
        let service = service.into();
        check_service(&service)?;
        Ok(Self {
            service,
            level,
            severity: level.severity(),
            message: cut_message(message.into()),
            source,
            kind: None,
        })
    }

    /// An event as posted to the API or by a watchTower client: `level` is read by
    /// [`parse_level`], so it may be a name, an alias or a severity 0–100.
    pub fn parse(
        service: impl Into<String>,
        level: &str,
        message: impl Into<String>,
        source: Source,
    ) -> Result<Self, InvalidEvent> {
        let (level, severity) = parse_level(level)?;
        let mut event = Self::new(service, level, message, source)?;
        event.severity = severity;
        Ok(event)
    }

    /// Sets the machine name of an event karajo writes itself: 1–64 bytes of `a-z`,
    /// `0-9`, `_`, `-` and `.`, such as `monitor.down`.
    pub fn with_kind(mut self, kind: impl Into<String>) -> Result<Self, InvalidEvent> {
        let kind = kind.into();
        let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b);
        if kind.is_empty() || kind.len() > KIND_MAX || !kind.bytes().all(allowed) {
            return Err(InvalidEvent::new(
                "kind",
                format!(
                    "must be 1–{KIND_MAX} bytes of a-z, 0-9, '_', '-' and '.', got {}",
                    quoted(&kind)
                ),
            ));
        }
        self.kind = Some(kind);
        Ok(self)
    }

    /// The service.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The level name.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The severity.
    pub fn severity(&self) -> u8 {
        self.severity
    }

    /// The message, already cut to 4 KiB.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where it came from.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The machine name, if any.
    pub fn kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }

    /// The record with this id; its time is the id's millisecond.
    pub(crate) fn into_record(self, id: EventId) -> EventRecord {
        EventRecord {
            id,
            time: id.timestamp(),
            service: self.service,
            level: self.level,
            severity: self.severity,
            message: self.message,
            source: self.source,
            kind: self.kind,
        }
    }
}

/// Checks a `service`: 1–128 bytes of UTF-8 without control characters (C0, DEL and
/// C1, as [`char::is_control`] has them). It is compared exactly, so no trimming.
pub fn check_service(service: &str) -> Result<(), InvalidEvent> {
    if service.is_empty() || service.len() > SERVICE_MAX {
        return Err(InvalidEvent::new(
            "service",
            format!("must be 1–{SERVICE_MAX} bytes, got {} bytes", service.len()),
        ));
    }
    if let Some(c) = service.chars().find(|c| c.is_control()) {
        return Err(InvalidEvent::new(
            "service",
            format!(
                "must not hold control characters, found U+{:04X}",
                u32::from(c)
            ),
        ));
    }
    Ok(())
}

/// Cuts a message longer than [`MESSAGE_MAX`] bytes on a character boundary and
/// appends [`CUT_MARK`], so the result is at most [`MESSAGE_MAX`] bytes. Shorter
/// messages come back as they are (empty ones too).
pub fn cut_message(mut message: String) -> String {
    if message.len() <= MESSAGE_MAX {
        return message;
    }
    let mut end = MESSAGE_MAX - CUT_MARK.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    message.push_str(CUT_MARK);
    message
}

/// A [`Timestamp`] as an RFC 3339 string in UTC (jiff's own form: `Z`, sub-second
/// digits only when non-zero); read in any offset.
mod rfc3339 {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(at: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(at)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse::<Timestamp>().map_err(D::Error::custom)
    }
}
