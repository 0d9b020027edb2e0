//! Tests of the event log: the pure rules in tables, the writer and the query over
//! real files in a temporary directory, with a hand-driven clock.

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;

use super::record::IdGen;
use super::*;
use crate::clock::{ManualClock, SharedClock};

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn clock_at(text: &str) -> (Arc<ManualClock>, SharedClock) {
    let clock = Arc::new(ManualClock::new(ts(text)));
    let shared: SharedClock = clock.clone();
    (clock, shared)
}

fn event(service: &str, level: Level, message: &str) -> NewEvent {
    NewEvent::new(service, level, message, Source::Api).unwrap()
}

fn limits() -> EventLimits {
    EventLimits::default()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn file_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn query(params: &[(&str, &str)]) -> EventQuery {
    EventQuery::parse(params.iter().copied()).unwrap()
}

fn messages(page: &EventPage) -> Vec<&str> {
    page.events.iter().map(|e| e.message.as_str()).collect()
}

// ---------------------------------------------------------------- pure rules

#[test]
fn level_names_aliases_and_numbers() {
    use Level::*;
    let table = [
        ("debug", Debug, 10),
        ("INFO", Info, 20),
        ("Notice", Notice, 25),
        ("warning", Warning, 30),
        ("WARN", Warning, 30),
        ("error", Error, 40),
        ("Err", Error, 40),
        ("critical", Critical, 50),
        ("crit", Critical, 50),
        ("FaTaL", Critical, 50),
        (" info ", Info, 20),
        ("0", Debug, 0),
        ("9", Debug, 9),
        ("007", Debug, 7),
        ("10", Debug, 10),
        ("19", Debug, 19),
        ("20", Info, 20),
        ("24", Info, 24),
        ("25", Notice, 25),
        ("29", Notice, 29),
        ("30", Warning, 30),
        ("35", Warning, 35),
        ("40", Error, 40),
        ("49", Error, 49),
        ("50", Critical, 50),
        ("100", Critical, 100),
    ];
    for (text, level, severity) in table {
        assert_eq!(parse_level(text), Ok((level, severity)), "{text:?}");
    }
    for level in Level::ALL {
        assert_eq!(Level::from_severity(level.severity()), level);
        assert_eq!(Level::from_name(level.as_str()), Some(level));
    }
    assert!(Level::Critical > Level::Error && Level::Notice > Level::Info);
}

#[test]
fn level_refuses_anything_else_naming_the_field() {
    for text in [
        "loud", "", " ", "101", "255", "256", "1000", "-1", "+5", "1.5", "1e2", "warning!",
        "warnings", "in fo", "0x10",
    ] {
        let err = parse_level(text).unwrap_err();
        assert_eq!(err.field(), "level", "{text:?}");
        assert!(err.to_string().starts_with("level: unknown level"), "{err}");
    }
    let err = parse_level("loud").unwrap_err();
    assert!(err.to_string().contains("\"loud\""), "{err}");
    // Posted events go through the same rule.
    let err = NewEvent::parse("a", "loud", "x", Source::Watchtower).unwrap_err();
    assert_eq!(err.field(), "level");
    let posted = NewEvent::parse("a", "35", "x", Source::Watchtower).unwrap();
    assert_eq!((posted.level(), posted.severity()), (Level::Warning, 35));
}

#[test]
fn service_is_1_to_128_bytes_without_control_characters() {
    let ok = [
        "a".to_owned(),
        "x".repeat(128),
        "é".repeat(64), // 128 bytes
        "backup db (nightly) — ✓".to_owned(),
    ];
    for service in ok {
        assert!(check_service(&service).is_ok(), "{service:?}");
        assert!(NewEvent::new(service, Level::Info, "m", Source::Api).is_ok());
    }
    let bad = [
        String::new(),
        "x".repeat(129),
        format!("{}x", "é".repeat(64)),
        "a\nb".to_owned(),
        "a\tb".to_owned(),
        "a\rb".to_owned(),
        "nul\0".to_owned(),
        "del\u{7f}".to_owned(),
        "c1\u{85}".to_owned(),
    ];
    for service in bad {
        let err = NewEvent::new(service.clone(), Level::Info, "m", Source::Api).unwrap_err();
        assert_eq!(err.field(), "service", "{service:?}");
        assert!(err.to_string().starts_with("service: "), "{err}");
    }
    assert!(
        check_service("")
            .unwrap_err()
            .to_string()
            .contains("1–128 bytes")
    );
}

#[test]
fn long_messages_are_cut_on_a_char_boundary() {
    assert_eq!(cut_message(String::new()), "");
    let exact = "m".repeat(MESSAGE_MAX);
    assert_eq!(cut_message(exact.clone()), exact);

    let over = "m".repeat(MESSAGE_MAX + 1);
    let cut = cut_message(over);
    assert_eq!(cut.len(), MESSAGE_MAX);
    assert!(cut.ends_with(CUT_MARK));
    assert_eq!(
        cut.trim_end_matches(CUT_MARK),
        "m".repeat(MESSAGE_MAX - CUT_MARK.len())
    );

    // 3-byte characters: the cut falls inside one and moves back to its start.
    for pad in 0..3 {
        let text = format!("{}{}", "a".repeat(pad), "€".repeat(2000));
        let cut = cut_message(text.clone());
        assert!(
            cut.len() <= MESSAGE_MAX && cut.len() > MESSAGE_MAX - 4,
            "{}",
            cut.len()
        );
        assert!(cut.ends_with(CUT_MARK));
        let kept = cut.strip_suffix(CUT_MARK).unwrap();
        assert!(text.starts_with(kept));
    }
    let event = NewEvent::new("a", Level::Info, "z".repeat(10_000), Source::Api).unwrap();
    assert_eq!(event.message().len(), MESSAGE_MAX);
    // Control characters are fine in a message (multi-line output).
    assert!(NewEvent::new("a", Level::Info, "line 1\nline 2\t", Source::Api).is_ok());
}

#[test]
fn kind_is_a_dotted_machine_name() {
    let down = event("a", Level::Error, "down")
        .with_kind("monitor.down")
        .unwrap();
    assert_eq!(down.kind(), Some("monitor.down"));
    for bad in [
        "",
        "Monitor.Down",
        "monitor down",
        "a/b",
        &"k".repeat(KIND_MAX + 1),
    ] {
        let err = event("a", Level::Info, "m").with_kind(bad).unwrap_err();
        assert_eq!(err.field(), "kind", "{bad:?}");
    }
}

#[test]
fn record_json_is_the_spec_line() {
    let record = EventRecord {
        id: "01937f0c-6b1e-7a52-9c1d-2f9e0b4a7c11".parse().unwrap(),
        time: ts("2026-11-22T03:05:00.004Z"),
        service: "backup_db".into(),
        level: Level::Error,
        severity: 40,
        message: "down: no check-in since 2026-11-22T02:00:01Z (due 03:00:00Z, grace 5m)".into(),
        source: Source::Monitor,
        kind: Some("monitor.down".into()),
    };
    let line = serde_json::to_string(&record).unwrap();
    assert_eq!(
        line,
        r#"{"id":"01937f0c-6b1e-7a52-9c1d-2f9e0b4a7c11","time":"2026-11-22T03:05:00.004Z","service":"backup_db","level":"error","severity":40,"message":"down: no check-in since 2026-11-22T02:00:01Z (due 03:00:00Z, grace 5m)","source":"monitor","kind":"monitor.down"}"#
    );
    assert_eq!(serde_json::from_str::<EventRecord>(&line).unwrap(), record);

    let posted = EventRecord {
        kind: None,
        source: Source::Watchtower,
        time: ts("2026-11-22T03:05:00Z"),
        ..record
    };
    let line = serde_json::to_string(&posted).unwrap();
    assert!(line.contains(r#""time":"2026-11-22T03:05:00Z""#), "{line}");
    assert!(line.ends_with(r#""source":"watchtower"}"#), "{line}");
    // Read back in any offset, kept in UTC.
    let other = line.replace("2026-11-22T03:05:00Z", "2026-11-22T10:05:00+07:00");
    assert_eq!(serde_json::from_str::<EventRecord>(&other).unwrap(), posted);
}

#[test]
fn event_ids_are_uuid_v7_text() {
    let id: EventId = "01937F0C-6B1E-7A52-9C1D-2F9E0B4A7C11".parse().unwrap();
    assert_eq!(id.to_string(), "01937f0c-6b1e-7a52-9c1d-2f9e0b4a7c11");
    assert_eq!(id.millis(), 0x0193_7f0c_6b1e);
    for bad in [
        "",
        "01937f0c6b1e7a529c1d2f9e0b4a7c11",
        "01937f0c-6b1e-7a52-9c1d-2f9e0b4a7c1",
        "01937f0c-6b1e-7a52-9c1d-2f9e0b4a7c111",
        "01937f0c_6b1e-7a52-9c1d-2f9e0b4a7c11",
        "g1937f0c-6b1e-7a52-9c1d-2f9e0b4a7c11",
        "{1937f0c-6b1e-7a52-9c1d-2f9e0b4a7c11",
    ] {
        assert!(bad.parse::<EventId>().is_err(), "{bad:?}");
    }
    let mut ids = IdGen::default();
    let now = ts("2026-11-22T03:05:00.004Z");
    let id = ids.next(now);
    let text = id.to_string();
    assert_eq!(text.len(), 36);
    assert_eq!(&text[14..15], "7", "version 7: {text}");
    assert!(
        matches!(&text[19..20], "8" | "9" | "a" | "b"),
        "variant: {text}"
    );
    assert_eq!(id.timestamp(), now);
    assert_eq!(text.parse::<EventId>().unwrap(), id);
}

#[test]
fn ids_increase_through_one_millisecond_and_small_clock_steps_back() {
    let mut ids = IdGen::default();
    let t = ts("2026-11-22T03:05:00.004Z");
    let mut last = ids.next(t);
    for _ in 0..1000 {
        let id = ids.next(t);
        assert!(id > last);
        assert_eq!(id.timestamp(), t);
        last = id;
    }
    // The clock steps back 30 s: ids and times stay put until it catches up.
    let back = ids.next(t - SignedDuration::from_secs(30));
    assert!(back > last);
    assert_eq!(back.timestamp(), t);
    let later = ids.next(t + SignedDuration::from_millis(1));
    assert!(later > back);
    assert_eq!(later.timestamp(), t + SignedDuration::from_millis(1));
    // A step back of more than a minute is believed.
    let far = t - SignedDuration::from_secs(3600);
    assert_eq!(ids.next(far).timestamp(), far);
    // A generator seeded with the log's newest id continues after it.
    let mut seeded = IdGen::new(Some(later));
    assert!(seeded.next(t) > later);
}

#[test]
fn from_and_to_accept_rfc3339_unix_seconds_and_dates() {
    let at = ts("2026-11-22T03:00:00Z");
    let table = [
        ("2026-11-22T03:00:00Z", at),
        ("2026-11-22T10:00:00+07:00", at),
        ("2026-11-22T10:00:00 07:00", at), // '+' lost to form decoding
        ("2026-11-22 03:00:00Z", at),
        (
            " 2026-11-22T03:00:00.25Z ",
            at + SignedDuration::from_millis(250),
        ),
        ("1795316400", at),
        ("1795316400.25", at + SignedDuration::from_millis(250)),
        ("-1", ts("1969-12-31T23:59:59Z")),
        ("0", ts("1970-01-01T00:00:00Z")),
        ("2026-11-22", ts("2026-11-22T00:00:00Z")),
    ];
    for (text, want) in table {
        assert_eq!(parse_time("from", text), Ok(want), "{text:?}");
    }
    for bad in [
        "",
        "yesterday",
        "2026-11-22T03:00:00",
        "1795316400.",
        "1e9",
        "99999999999999999999",
        "2026-13-01",
        "--1",
    ] {
        let err = parse_time("to", bad).unwrap_err();
        assert_eq!(err.field(), "to", "{bad:?}");
        assert!(err.to_string().starts_with("to: want RFC 3339"), "{err}");
    }
}

#[test]
fn query_parameters() {
    let q = query(&[]);
    assert_eq!(q, EventQuery::default());
    assert_eq!(q.limit, DEFAULT_LIMIT);

    // watchTower sends every name, empty: nothing is filtered.
    let q = query(&[
        ("service", ""),
        ("from", ""),
        ("to", ""),
        ("level", ""),
        ("message", ""),
        ("limit", ""),
        ("before", ""),
    ]);
    assert_eq!(q, EventQuery::default());

    let q = query(&[
        ("service", "backup_db"),
        ("from", "1795316400"),
        ("to", "2026-11-23T00:00:00Z"),
        ("level", "WARN"),
        ("message", "Disk"),
        ("limit", "5000"),
        ("before", "01937F0C-6B1E-7A52-9C1D-2F9E0B4A7C11"),
        ("token", "ignored"),
        ("_", "123"),
    ]);
    assert_eq!(q.service.as_deref(), Some("backup_db"));
    assert_eq!(q.from, Some(ts("2026-11-22T03:00:00Z")));
    assert_eq!(q.to, Some(ts("2026-11-23T00:00:00Z")));
    assert_eq!(q.min_severity, Some(30));
    assert_eq!(q.message.as_deref(), Some("Disk"));
    assert_eq!(q.limit, MAX_LIMIT);
    assert_eq!(
        q.before.map(|id| id.to_string()).as_deref(),
        Some("01937f0c-6b1e-7a52-9c1d-2f9e0b4a7c11")
    );
    assert_eq!(query(&[("level", "35")]).min_severity, Some(35));
    assert_eq!(query(&[("limit", "7"), ("limit", "8")]).limit, 8);
    assert_eq!(
        query(&[("limit", "99999999999999999999999")]).limit,
        MAX_LIMIT
    );

    for (name, value) in [
        ("limit", "0"),
        ("limit", "-1"),
        ("limit", "ten"),
        ("level", "loud"),
        ("from", "soon"),
        ("to", "later"),
        ("before", "42"),
    ] {
        let err = EventQuery::parse([(name, value)]).unwrap_err();
        assert_eq!(err.field(), name, "{name}={value}: {err}");
    }
}

// ---------------------------------------------------------------- writer and query

#[tokio::test]
async fn write_and_query_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (_clock, shared) = clock_at("2026-11-22T03:05:00.004Z");
    let log = EventLog::spawn(dir.path(), limits(), shared).await.unwrap();

    let a = log.record(event("a", Level::Info, "disk ok")).unwrap();
    let b = log.record(event("a", Level::Warning, "Disk 91%")).unwrap();
    let c = log
        .record(
            NewEvent::new("backup_db", Level::Error, "down", Source::Monitor)
                .unwrap()
                .with_kind("monitor.down")
                .unwrap(),
        )
        .unwrap();
    assert!(a.id < b.id && b.id < c.id);
    assert_eq!(a.time, ts("2026-11-22T03:05:00.004Z"));
    assert_eq!((b.level, b.severity), (Level::Warning, 30));

    // Read-your-writes without a flush.
    let page = log.query(EventQuery::default()).await.unwrap();
    assert_eq!(page.events, [c.clone(), b.clone(), a.clone()]);
    assert_eq!(page.next_before, None);
    assert_eq!(page.skipped_lines, 0);

    log.close().await.unwrap();
    let path = dir.path().join("2026-11-22.jsonl");
    let lines = file_lines(&path);
    let want: Vec<String> = [&a, &b, &c]
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    assert_eq!(lines, want);
    assert!(lines[2].ends_with(r#""source":"monitor","kind":"monitor.down"}"#));
    assert!(!lines[0].contains("kind"));

    let stats = log.stats();
    assert_eq!(stats.written_total(), 3);
    assert_eq!(stats.written_at(Level::Warning), 1);
    assert_eq!(stats.dropped(), 0);

    // The page serialises as the API's `data` (A.9).
    let json = serde_json::to_value(&page).unwrap();
    assert_eq!(json["events"].as_array().unwrap().len(), 3);
    assert!(json.get("next_before").is_none());
}

#[tokio::test]
async fn every_filter() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, shared) = clock_at("2026-11-22T03:00:00Z");
    let log = EventLog::spawn(dir.path(), limits(), shared).await.unwrap();
    let at = |s: &str| clock.set(ts(s));
    at("2026-11-22T03:00:00Z");
    log.record(event("a", Level::Info, "disk ok")).unwrap();
    at("2026-11-22T03:00:01Z");
    log.record(event("a", Level::Warning, "Disk 91%")).unwrap();
    at("2026-11-22T03:00:02Z");
    log.record(event("b", Level::Error, "boom")).unwrap();
    at("2026-11-22T03:00:03Z");
    log.record(NewEvent::parse("ab", "27", "DISK at 27", Source::Watchtower).unwrap())
        .unwrap();

    let run = |params: &'static [(&'static str, &'static str)]| {
        let log = log.clone();
        async move { log.query(query(params)).await.unwrap() }
    };
    assert_eq!(
        messages(&run(&[]).await),
        ["DISK at 27", "boom", "Disk 91%", "disk ok"]
    );
    assert_eq!(
        messages(&run(&[("service", "a")]).await),
        ["Disk 91%", "disk ok"]
    );
    assert_eq!(
        messages(&run(&[("service", "A")]).await),
        Vec::<&str>::new()
    );
    assert_eq!(
        messages(&run(&[("level", "warning")]).await),
        ["boom", "Disk 91%"]
    );
    assert_eq!(
        messages(&run(&[("level", "notice")]).await),
        ["DISK at 27", "boom", "Disk 91%"]
    );
    assert_eq!(
        messages(&run(&[("level", "28")]).await),
        ["boom", "Disk 91%"]
    );
    assert_eq!(
        messages(&run(&[("message", "dIsK")]).await),
        ["DISK at 27", "Disk 91%", "disk ok"]
    );
    // [from, to): from is kept, to is not.
    assert_eq!(
        messages(
            &run(&[
                ("from", "2026-11-22T03:00:01Z"),
                ("to", "2026-11-22T03:00:03Z")
            ])
            .await
        ),
        ["boom", "Disk 91%"]
    );
    assert_eq!(
        messages(&run(&[("from", "1795316402")]).await),
        ["DISK at 27", "boom"]
    );
    assert_eq!(
        messages(&run(&[("to", "2026-11-22T03:00:01Z")]).await),
        ["disk ok"]
    );
    assert!(
        run(&[
            ("from", "2026-11-22T03:00:03Z"),
            ("to", "2026-11-22T03:00:03Z")
        ])
        .await
        .events
        .is_empty()
    );
    // All at once.
    assert_eq!(
        messages(
            &run(&[
                ("service", "a"),
                ("level", "info"),
                ("message", "91"),
                ("from", "2026-11-22"),
                ("to", "2026-11-23")
            ])
            .await
        ),
        ["Disk 91%"]
    );
    let page = run(&[("limit", "1")]).await;
    assert_eq!(messages(&page), ["DISK at 27"]);
    // The live filter agrees with the log's.
    let q = query(&[("message", "DISK"), ("level", "warn")]);
    let all = run(&[]).await;
    let live: Vec<&str> = all
        .events
        .iter()
        .filter(|e| q.matches(e))
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(live, ["Disk 91%"]);
    log.close().await.unwrap();
}

#[tokio::test]
async fn paging_backwards_with_before_across_days() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, shared) = clock_at("2026-11-21T12:00:00Z");
    let log = EventLog::spawn(dir.path(), limits(), shared).await.unwrap();
    for n in 0..150 {
        if n == 60 {
            clock.set(ts("2026-11-22T12:00:00Z"));
        }
        log.record(event("p", Level::Info, &format!("event {n}")))
            .unwrap();
    }
    let first = log.query(query(&[("limit", "100")])).await.unwrap();
    assert_eq!(first.events.len(), 100);
    assert_eq!(first.events[0].message, "event 149");
    assert_eq!(first.events[99].message, "event 50");
    let next = first.next_before.unwrap();
    assert_eq!(next, first.events[99].id);

    let next_text = next.to_string();
    let second = log
        .query(query(&[("limit", "100"), ("before", next_text.as_str())]))
        .await
        .unwrap();
    assert_eq!(second.events.len(), 50);
    assert_eq!(second.events[0].message, "event 49");
    assert_eq!(second.events[49].message, "event 0");
    assert_eq!(second.next_before, None);
    let mut seen: Vec<EventId> = first
        .events
        .iter()
        .chain(&second.events)
        .map(|e| e.id)
        .collect();
    let total = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), total, "no overlap");
    assert!(first.events.windows(2).all(|w| w[0].id > w[1].id));

    // Exactly one page left: no next_before.
    let exact = log.query(query(&[("limit", "150")])).await.unwrap();
    assert_eq!(exact.events.len(), 150);
    assert_eq!(exact.next_before, None);
    // A `before` on the older day never reads the newer day's events.
    let old_id = second.events[10].id.to_string();
    let older = log
        .query(query(&[("before", old_id.as_str())]))
        .await
        .unwrap();
    assert_eq!(older.events.len(), 39);
    assert_eq!(older.events[0].message, "event 38");
    log.close().await.unwrap();
}

#[tokio::test]
async fn day_rolls_over_at_utc_midnight_and_queries_read_only_overlapping_days() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, shared) = clock_at("2026-11-21T23:59:59.999Z");
    let log = EventLog::spawn(dir.path(), limits(), shared).await.unwrap();
    let before = log
        .record(event("r", Level::Info, "before midnight"))
        .unwrap();
    clock.set(ts("2026-11-22T00:00:00Z"));
    let after = log
        .record(event("r", Level::Info, "after midnight"))
        .unwrap();
    log.flush().await.unwrap();
    assert_eq!(before.time.to_string(), "2026-11-21T23:59:59.999Z");
    assert_eq!(after.time.to_string(), "2026-11-22T00:00:00Z");

    let day1 = file_lines(&dir.path().join("2026-11-21.jsonl"));
    let day2 = file_lines(&dir.path().join("2026-11-22.jsonl"));
    assert_eq!(day1.len(), 1);
    assert_eq!(day2.len(), 1);
    assert!(day1[0].contains("before midnight") && day2[0].contains("after midnight"));

    // Unreadable "day files" around them: a query that had to read one fails, one
    // whose range excludes them never opens them.
    std::fs::create_dir(dir.path().join("2026-11-20.jsonl")).unwrap();
    std::fs::create_dir(dir.path().join("2026-11-23.jsonl")).unwrap();
    assert!(log.query(EventQuery::default()).await.is_err());
    let both = log
        .query(query(&[
            ("from", "2026-11-21T00:00:00Z"),
            ("to", "2026-11-23T00:00:00Z"),
        ]))
        .await
        .unwrap();
    assert_eq!(messages(&both), ["after midnight", "before midnight"]);
    let only_day2 = log
        .query(query(&[
            ("from", "2026-11-22"),
            ("to", "2026-11-22T12:00:00Z"),
        ]))
        .await
        .unwrap();
    assert_eq!(messages(&only_day2), ["after midnight"]);
    let only_day1 = log
        .query(query(&[
            ("from", "2026-11-21T00:00:00Z"),
            ("to", "2026-11-22T00:00:00Z"),
        ]))
        .await
        .unwrap();
    assert_eq!(messages(&only_day1), ["before midnight"]);
    log.close().await.unwrap();
}

#[tokio::test]
async fn day_cap_drops_counts_and_writes_one_marker() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, shared) = clock_at("2026-11-22T10:00:00Z");
    let cap = 1000;
    let capped = EventLimits {
        day_max: cap,
        ..limits()
    };
    let log = EventLog::spawn(dir.path(), capped, shared.clone())
        .await
        .unwrap();
    let mut records = Vec::new();
    for n in 0..20 {
        records.push(
            log.record(event("cap", Level::Info, &format!("event {n}")))
                .unwrap(),
        );
    }
    log.flush().await.unwrap();
    let path = dir.path().join("2026-11-22.jsonl");
    let lines = file_lines(&path);
    // Events are written while the file is below the cap.
    let mut size = 0;
    let kept = records
        .iter()
        .take_while(|r| {
            let fits = size < cap;
            size += serde_json::to_string(r).unwrap().len() as u64 + 1;
            fits
        })
        .count();
    assert!(kept > 1 && kept < 20, "{kept}");
    assert_eq!(
        lines.len(),
        kept + 1,
        "events up to the cap, then one marker"
    );
    let marker: EventRecord = serde_json::from_str(&lines[kept]).unwrap();
    assert_eq!(marker.kind.as_deref(), Some(DROPPED_KIND));
    assert_eq!(marker.source, Source::Karajo);
    assert_eq!(marker.service, "karajo");
    assert_eq!(marker.level, Level::Warning);
    assert!(
        marker.message.contains("event_day_max of 1000 bytes"),
        "{}",
        marker.message
    );
    assert_eq!(
        marker.id, records[kept].id,
        "the marker takes the first dropped event's place"
    );
    let dropped = (20 - kept) as u64;
    assert_eq!(log.stats().dropped_day_cap, dropped);
    assert_eq!(log.dropped(), dropped);
    assert_eq!(log.stats().written_total(), kept as u64 + 1);

    // More events that day: dropped and counted, no second marker.
    log.record(event("cap", Level::Critical, "still dropped"))
        .unwrap();
    log.flush().await.unwrap();
    assert_eq!(file_lines(&path).len(), kept + 1);
    assert_eq!(log.dropped(), dropped + 1);
    let page = log.query(query(&[("service", "karajo")])).await.unwrap();
    assert_eq!(page.events.len(), 1);

    // The next day starts a new file.
    clock.set(ts("2026-11-23T00:00:01Z"));
    log.record(event("cap", Level::Info, "new day")).unwrap();
    log.close().await.unwrap();
    assert_eq!(file_lines(&dir.path().join("2026-11-23.jsonl")).len(), 1);

    // After a restart on the capped day: still dropped, still no second marker.
    clock.set(ts("2026-11-22T23:00:00Z"));
    let again = EventLog::spawn(dir.path(), capped, shared).await.unwrap();
    again
        .record(event("cap", Level::Info, "after restart"))
        .unwrap();
    again.close().await.unwrap();
    assert_eq!(file_lines(&path).len(), kept + 1);
    assert_eq!(again.stats().dropped_day_cap, 1);
}

#[tokio::test]
async fn a_full_queue_refuses_counts_and_marks() {
    let dir = tempfile::tempdir().unwrap();
    let (_clock, shared) = clock_at("2026-11-22T10:00:00Z");
    let small = EventLimits {
        queue: 2,
        ..limits()
    };
    let log = EventLog::spawn(dir.path(), small, shared).await.unwrap();
    // No await in between: the writer cannot drain the queue meanwhile.
    let results: Vec<_> = (0..10)
        .map(|n| log.record(event("q", Level::Info, &format!("event {n}"))))
        .collect();
    assert!(results[..2].iter().all(Result::is_ok));
    assert!(
        results[2..]
            .iter()
            .all(|r| *r == Err(RecordError::QueueFull))
    );
    assert_eq!(log.stats().dropped_queue_full, 8);

    log.flush().await.unwrap();
    let page = log.query(EventQuery::default()).await.unwrap();
    assert_eq!(
        messages(&page),
        [
            "8 events dropped: the event log's queue was full",
            "event 1",
            "event 0"
        ]
    );
    assert_eq!(page.events[0].kind.as_deref(), Some(DROPPED_KIND));
    assert_eq!(log.dropped(), 8);
    assert_eq!(log.stats().written_at(Level::Warning), 1);
    // The queue has room again.
    log.record(event("q", Level::Info, "later")).unwrap();
    log.close().await.unwrap();
    let lines: Vec<EventRecord> = file_lines(&dir.path().join("2026-11-22.jsonl"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let in_file: Vec<&str> = lines.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(
        in_file,
        [
            "event 0",
            "event 1",
            "8 events dropped: the event log's queue was full",
            "later"
        ]
    );
    assert!(lines.windows(2).all(|w| w[0].id < w[1].id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_full_markers_keep_the_file_in_id_order() {
    let dir = tempfile::tempdir().unwrap();
    let (_clock, shared) = clock_at("2026-11-22T10:00:00Z");
    let tiny = EventLimits {
        queue: 3,
        ..limits()
    };
    let log = EventLog::spawn(dir.path(), tiny, shared).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..4 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut accepted = 0u64;
            for n in 0..300 {
                if log
                    .record(event("s", Level::Info, &format!("{t}/{n}")))
                    .is_ok()
                {
                    accepted += 1;
                }
                if n % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        accepted += task.await.unwrap();
    }
    log.close().await.unwrap();
    let refused = log.stats().dropped_queue_full;
    assert_eq!(accepted + refused, 1200);
    let lines: Vec<EventRecord> = file_lines(&dir.path().join("2026-11-22.jsonl"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.windows(2).all(|w| w[0].id < w[1].id),
        "file in id order"
    );
    let (markers, events): (Vec<&EventRecord>, Vec<&EventRecord>) = lines
        .iter()
        .partition(|r| r.kind.as_deref() == Some(DROPPED_KIND));
    assert_eq!(events.len() as u64, accepted);
    let named: u64 = markers
        .iter()
        .map(|m| m.message.split(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(named, refused, "the markers name every refused event");
    assert!(refused == 0 || !markers.is_empty());
}

#[tokio::test]
async fn retention_deletes_old_day_files_at_start_and_at_midnight() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("event");
    std::fs::create_dir(&events).unwrap();
    for name in [
        "2020-01-01.jsonl",
        "2026-11-18.jsonl",
        "2026-11-19.jsonl",
        "2026-11-20.jsonl",
        "notes.txt",
        "2020-01-01.jsonl.bak",
        "2020-1-1.jsonl",
    ] {
        std::fs::write(events.join(name), "").unwrap();
    }
    let (clock, shared) = clock_at("2026-11-21T23:59:00Z");
    let two_days = EventLimits {
        retention: Duration::from_secs(48 * 3600),
        ..limits()
    };
    let log = EventLog::spawn(&events, two_days, shared).await.unwrap();
    let names = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    // At start (23:59 on the 21st, cut-off 23:59 on the 19th): the 18th ended too long ago.
    assert_eq!(
        names(&events),
        [
            "2020-01-01.jsonl.bak",
            "2020-1-1.jsonl",
            "2026-11-19.jsonl",
            "2026-11-20.jsonl",
            "notes.txt"
        ]
    );
    // Midnight: the 19th's day ended 48 hours ago.
    clock.set(ts("2026-11-22T00:00:00.5Z"));
    log.flush().await.unwrap();
    assert_eq!(
        names(&events),
        [
            "2020-01-01.jsonl.bak",
            "2020-1-1.jsonl",
            "2026-11-20.jsonl",
            "notes.txt"
        ]
    );
    // Zero retention keeps everything.
    log.close().await.unwrap();
    clock.set(ts("2030-01-01T00:00:00Z"));
    let forever = EventLimits {
        retention: Duration::ZERO,
        ..limits()
    };
    let (_c, later) = clock_at("2030-01-01T00:00:00Z");
    EventLog::spawn(&events, forever, later)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    assert!(events.join("2026-11-20.jsonl").exists());
}

#[tokio::test]
async fn corrupt_lines_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (_clock, shared) = clock_at("2026-11-22T10:00:00Z");
    let log = EventLog::spawn(dir.path(), limits(), shared.clone())
        .await
        .unwrap();
    log.record(event("c", Level::Info, "first")).unwrap();
    log.close().await.unwrap();

    let path = dir.path().join("2026-11-22.jsonl");
    let mut junk = Vec::new();
    junk.extend_from_slice(b"garbage\n");
    junk.extend_from_slice(b"{\"id\":\"01937f0c-6b1e-7a52-9c1d-2f9e0b4a7c11\",\"time\n");
    junk.extend_from_slice(b"\n");
    junk.extend_from_slice(b"{\"a\":1}\n");
    junk.extend_from_slice(&vec![b'x'; 70 * 1024]);
    junk.extend_from_slice(b"\n");
    junk.extend_from_slice(b"{\"id\":\"0193"); // cut short by a crash
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, &junk).unwrap();
    drop(file);

    let page = query_dir(dir.path(), &EventQuery::default()).unwrap();
    assert_eq!(messages(&page), ["first"]);
    assert_eq!(page.skipped_lines, 5);

    // The writer ends the cut-short line before appending.
    let log = EventLog::spawn(dir.path(), limits(), shared).await.unwrap();
    log.record(event("c", Level::Info, "second")).unwrap();
    let page = log.query(EventQuery::default()).await.unwrap();
    assert_eq!(messages(&page), ["second", "first"]);
    assert_eq!(page.skipped_lines, 5);
    assert_eq!(log.stats().corrupt_lines, 5);
    log.close().await.unwrap();
    assert!(file_lines(&path).last().unwrap().contains("\"second\""));
}

#[tokio::test]
async fn a_query_reads_back_only_as_far_as_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("2026-11-22.jsonl"), "garbage at the top\n").unwrap();
    let (_clock, shared) = clock_at("2026-11-22T10:00:00Z");
    let log = EventLog::spawn(dir.path(), limits(), shared).await.unwrap();
    for n in 0..10 {
        log.record(event("r", Level::Info, &format!("event {n}")))
            .unwrap();
    }
    let newest = log.query(query(&[("limit", "5")])).await.unwrap();
    assert_eq!(newest.events.len(), 5);
    assert_eq!(
        newest.skipped_lines, 0,
        "the top of the file was never read"
    );
    let all = log.query(query(&[("limit", "100")])).await.unwrap();
    assert_eq!(all.events.len(), 10);
    assert_eq!(all.skipped_lines, 1);
    log.close().await.unwrap();
}

#[tokio::test]
async fn files_are_0600_and_the_directory_0700() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("var/log/karajo/event");
    let (clock, shared) = clock_at("2026-11-22T10:00:00Z");
    let log = EventLog::spawn(&events, limits(), shared.clone())
        .await
        .unwrap();
    assert_eq!(mode(&events), 0o700);
    log.record(event("m", Level::Info, "x")).unwrap();
    log.close().await.unwrap();
    assert_eq!(mode(&events.join("2026-11-22.jsonl")), 0o600);

    // Looser modes left by someone else are tightened.
    std::fs::set_permissions(&events, std::fs::Permissions::from_mode(0o755)).unwrap();
    let old_file = events.join("2026-11-23.jsonl");
    std::fs::write(&old_file, "").unwrap();
    std::fs::set_permissions(&old_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    clock.set(ts("2026-11-23T10:00:00Z"));
    let log = EventLog::spawn(&events, limits(), shared).await.unwrap();
    assert_eq!(mode(&events), 0o700);
    log.record(event("m", Level::Info, "y")).unwrap();
    log.close().await.unwrap();
    assert_eq!(mode(&old_file), 0o600);
}

#[tokio::test]
async fn flush_and_close_make_events_durable_and_close_refuses_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (_clock, shared) = clock_at("2026-11-22T10:00:00Z");
    let log = EventLog::spawn(dir.path(), limits(), shared).await.unwrap();
    let path = dir.path().join("2026-11-22.jsonl");
    log.record(event("d", Level::Info, "one")).unwrap();
    log.flush().await.unwrap();
    assert_eq!(file_lines(&path).len(), 1);

    let clone = log.clone();
    for n in 0..50 {
        clone
            .record(event("d", Level::Info, &format!("n{n}")))
            .unwrap();
    }
    // Close from another handle: everything accepted before is on disk after it.
    log.close().await.unwrap();
    assert_eq!(file_lines(&path).len(), 51);

    assert_eq!(
        clone.record(event("d", Level::Info, "late")),
        Err(RecordError::Closed)
    );
    assert_eq!(log.stats().dropped_closed, 1);
    assert!(clone.flush().await.is_err());
    clone.close().await.unwrap(); // closing twice is fine
    // Reading still works once closed.
    assert_eq!(
        log.query(EventQuery::default()).await.unwrap().events.len(),
        51
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_through_clones() {
    let dir = tempfile::tempdir().unwrap();
    let (_clock, shared) = clock_at("2026-11-22T10:00:00Z");
    let log = EventLog::spawn(dir.path(), limits(), shared).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..50 {
                let record = log
                    .record(event(&format!("w{t}"), Level::Info, &format!("{t}/{n}")))
                    .unwrap();
                ids.push(record.id);
                if n % 10 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            ids
        }));
    }
    for task in tasks {
        let ids = task.await.unwrap();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
    log.flush().await.unwrap();
    let page = log.query(query(&[("limit", "1000")])).await.unwrap();
    assert_eq!(page.events.len(), 400);
    let mut ids: Vec<EventId> = page.events.iter().map(|e| e.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 400);
    assert_eq!(
        log.query(query(&[("service", "w3")]))
            .await
            .unwrap()
            .events
            .len(),
        50
    );
    log.close().await.unwrap();
    // The file holds the lines in id order: ids are made and queued under one lock.
    let file_ids: Vec<EventId> = file_lines(&dir.path().join("2026-11-22.jsonl"))
        .iter()
        .map(|l| serde_json::from_str::<EventRecord>(l).unwrap().id)
        .collect();
    assert_eq!(file_ids.len(), 400);
    assert!(file_ids.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn ids_after_a_restart_sort_after_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, shared) = clock_at("2026-11-22T10:00:00Z");
    let log = EventLog::spawn(dir.path(), limits(), shared.clone())
        .await
        .unwrap();
    let old = log.record(event("s", Level::Info, "old")).unwrap();
    log.close().await.unwrap();
    // The clock stepped back 30 s while karajo was down.
    clock.set(ts("2026-11-22T09:59:30Z"));
    let log = EventLog::spawn(dir.path(), limits(), shared).await.unwrap();
    let new = log.record(event("s", Level::Info, "new")).unwrap();
    assert!(new.id > old.id);
    assert_eq!(new.time, old.time);
    let page = log.query(EventQuery::default()).await.unwrap();
    assert_eq!(messages(&page), ["new", "old"]);
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_failed_write_is_counted_and_the_writer_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, shared) = clock_at("2026-11-22T10:00:00Z");
    // Today's "file" is a directory: it cannot be opened for appending.
    std::fs::create_dir(dir.path().join("2026-11-22.jsonl")).unwrap();
    let log = EventLog::spawn(dir.path(), limits(), shared).await.unwrap();
    log.record(event("e", Level::Info, "lost")).unwrap();
    log.flush().await.unwrap();
    assert_eq!(log.stats().dropped_write_error, 1);
    assert_eq!(log.dropped(), 1);
    clock.set(ts("2026-11-23T00:00:00Z"));
    log.record(event("e", Level::Info, "kept")).unwrap();
    log.close().await.unwrap();
    assert_eq!(file_lines(&dir.path().join("2026-11-23.jsonl")).len(), 1);
    assert_eq!(log.stats().written_total(), 1);
}

#[test]
fn level_and_source_names_on_the_wire() {
    for level in Level::ALL {
        let json = serde_json::to_string(&level).unwrap();
        assert_eq!(json, format!("\"{level}\""));
        assert_eq!(serde_json::from_str::<Level>(&json).unwrap(), level);
    }
    for (source, name) in [
        (Source::Api, "api"),
        (Source::Watchtower, "watchtower"),
        (Source::Monitor, "monitor"),
        (Source::Service, "service"),
        (Source::Karajo, "karajo"),
    ] {
        assert_eq!(
            serde_json::to_string(&source).unwrap(),
            format!("\"{name}\"")
        );
        assert_eq!(source.to_string(), name);
    }
}

#[test]
fn a_missing_directory_has_no_events() {
    let dir = tempfile::tempdir().unwrap();
    let page = query_dir(&dir.path().join("nope"), &EventQuery::default()).unwrap();
    assert_eq!(page, EventPage::default());
}

#[test]
fn lines_are_read_backwards_and_long_ones_never_held_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let read = |text: &[u8]| {
        std::fs::write(&path, text).unwrap();
        let mut seen: Vec<Option<Vec<u8>>> = Vec::new();
        query::for_each_line_rev(&File::open(&path).unwrap(), &path, |line| {
            seen.push(line.map(<[u8]>::to_vec));
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
        seen
    };
    let some = |s: &str| Some(s.as_bytes().to_vec());
    assert_eq!(read(b""), [some("")]);
    assert_eq!(read(b"a\nbb\n"), [some(""), some("bb"), some("a")]);
    assert_eq!(read(b"a\n\nbb"), [some("bb"), some(""), some("a")]);

    // Lines across chunk edges, and lines over the limit, at both ends of the file.
    let long = |c: u8, n: usize| vec![c; n];
    let mut text = long(b'a', query::MAX_LINE + 1);
    text.extend_from_slice(b"\nshort\n");
    text.extend_from_slice(&long(b'b', query::MAX_LINE));
    text.push(b'\n');
    text.extend_from_slice(&long(b'c', 100_000));
    text.push(b'\n');
    text.extend_from_slice(&long(b'd', 70_000));
    let seen = read(&text);
    let lens: Vec<Option<usize>> = seen.iter().map(|l| l.as_ref().map(Vec::len)).collect();
    assert_eq!(
        lens,
        [None, None, Some(query::MAX_LINE), Some(5), None],
        "d, c, b, short, a"
    );
    assert!(seen[2].as_ref().unwrap().iter().all(|&b| b == b'b'));

    // Many short lines over several chunks come back whole, in reverse.
    let lines: Vec<String> = (0..20_000).map(|n| format!("line {n}")).collect();
    let seen = read(format!("{}\n", lines.join("\n")).as_bytes());
    let mut want: Vec<Option<Vec<u8>>> = vec![some("")];
    want.extend(lines.iter().rev().map(|l| some(l)));
    assert_eq!(seen, want);
}
