//! Table tests of the monitor room: ping routes and parameters, the due-time rule of
//! monitors spec A.4.1, every row of A.4.2 to A.4.5 and the restart rule of A.7. No
//! sleeping, no processes, no files: every time is written out.

use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::*;
use crate::config::{Cadence, MonitorRules};
use crate::schedule::Schedule;

// ---- helpers ----

/// `10:00:45` → 2026-11-22T10:00:45Z; a full RFC 3339 text is taken as it is.
fn t(text: &str) -> Timestamp {
    let full = if text.contains('T') {
        text.to_string()
    } else {
        format!("2026-11-22T{text}Z")
    };
    full.parse().unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A period monitor with `grace`; max_runtime follows grace as in the configuration;
/// every notification list names someone (down and up `ops`, late `pager`).
fn period_rules(period: u64, grace: u64) -> MonitorRules {
    MonitorRules {
        cadence: Cadence::Period(secs(period)),
        grace: secs(grace),
        max_runtime: Some(secs(grace)).filter(|d| !d.is_zero()),
        log_success: true,
        notif_on_down: vec!["ops".into()],
        notif_on_up: vec!["ops".into()],
        notif_on_late: vec!["pager".into()],
        notif_repeat: None,
    }
}

fn schedule_rules(expr: &str, early_tolerance: u64) -> MonitorRules {
    MonitorRules {
        cadence: Cadence::Schedule {
            schedule: Schedule::parse(expr, TimeZone::UTC).unwrap(),
            early_tolerance: secs(early_tolerance),
        },
        ..period_rules(60, 10)
    }
}

/// A monitor that checked in (success) at `last` and is `up`, due at `due`.
fn up_at(last: &str, due: &str) -> MonitorState {
    MonitorState {
        status: Status::Up,
        since: t(last),
        due: Some(t(due)),
        last_ping: Some(t(last)),
        last_ping_kind: Some(Signal::Success),
        ..MonitorState::new(t("00:00:00"))
    }
}

fn ping(signal: Signal) -> Ping {
    Ping::plain(signal)
}

fn with_rid(signal: Signal, rid: &str) -> Ping {
    Ping {
        rid: Some(RunId::parse(rid).unwrap()),
        ..Ping::plain(signal)
    }
}

/// Effects as short words, so tables read like the spec.
fn describe(effects: &[MonitorEffect]) -> Vec<String> {
    effects
        .iter()
        .map(|effect| match effect {
            MonitorEffect::OpenRunLog { counter } => format!("open {counter}"),
            MonitorEffect::AppendRunLog { counter } => format!("append {counter}"),
            MonitorEffect::CloseRunLog {
                counter,
                status,
                closed_by: ClosedBy::Ping,
                ..
            } => format!("close {counter} {status}"),
            MonitorEffect::CloseRunLog {
                counter,
                status,
                closed_by: ClosedBy::Note(_),
                ..
            } => format!("close {counter} {status} with note"),
            MonitorEffect::WriteCheckInLog { counter, status } => {
                format!("write {counter} {status}")
            }
            MonitorEffect::StrayLog => "stray log".to_string(),
            MonitorEffect::Ignored => "ignored".to_string(),
            MonitorEffect::Event(event) => event.kind.as_str().to_string(),
            MonitorEffect::Notify(notice) if notice.reminder => {
                format!("notify {} reminder", notice.event.as_str())
            }
            MonitorEffect::Notify(notice) => format!("notify {}", notice.event.as_str()),
        })
        .collect()
}

fn events(effects: &[MonitorEffect]) -> Vec<&MonitorEvent> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            MonitorEffect::Event(event) => Some(event),
            _ => None,
        })
        .collect()
}

fn notices(effects: &[MonitorEffect]) -> Vec<&MonitorNotice> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            MonitorEffect::Notify(notice) => Some(notice),
            _ => None,
        })
        .collect()
}

fn notes(effects: &[MonitorEffect]) -> Vec<&str> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            MonitorEffect::CloseRunLog {
                closed_by: ClosedBy::Note(note),
                ..
            } => Some(note.as_str()),
            _ => None,
        })
        .collect()
}

fn down_reason(state: &MonitorState) -> Option<DownReason> {
    match state.status {
        Status::Down(outage) => Some(outage.reason),
        _ => None,
    }
}

// ---- A.3.1: ping routes and parameters ----

#[test]
fn ping_paths_resolve_to_a_monitor_and_a_signal() {
    let routes = PingRoutes::new([
        ("/backup", "backup"),
        ("/a/b", "ab"),
        ("/Mixed/Case", "mixed"),
    ]);
    let ok = |rest: &str| routes.resolve(rest).map(|(key, signal)| (*key, signal));
    let not_found = |path: &str| Err(PingRouteError::NotFound(path.to_string()));
    let cases = [
        ("backup", Ok(("backup", Signal::Success))),
        ("/backup/", Ok(("backup", Signal::Success))),
        ("backup/start", Ok(("backup", Signal::Start))),
        ("backup/fail", Ok(("backup", Signal::Fail))),
        ("backup/log", Ok(("backup", Signal::Log))),
        ("backup/0", Ok(("backup", Signal::Exit(0)))),
        ("backup/255", Ok(("backup", Signal::Exit(255)))),
        ("backup/007", Ok(("backup", Signal::Exit(7)))),
        ("BACKUP/Start", Ok(("backup", Signal::Start))),
        ("a/b", Ok(("ab", Signal::Success))),
        ("a/b/fail/", Ok(("ab", Signal::Fail))),
        ("mixed/case/3", Ok(("mixed", Signal::Exit(3)))),
        (
            "backup/256",
            Err(PingRouteError::BadPing(BadPing::ExitStatus("256".into()))),
        ),
        (
            "backup/99999999999999999999",
            Err(PingRouteError::BadPing(BadPing::ExitStatus(
                "99999999999999999999".into(),
            ))),
        ),
        ("backup/stop", not_found("/backup/stop")),
        ("nope", not_found("/nope")),
        ("nope/256", not_found("/nope/256")),
        ("a", not_found("/a")),
        ("a/start", not_found("/a/start")),
        ("", not_found("/")),
        ("start", not_found("/start")),
    ];
    for (rest, want) in cases {
        assert_eq!(ok(rest), want, "{rest:?}");
    }
    let err = routes.resolve("backup/300").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid ping: exit status 300 is invalid: expected 0 to 255"
    );
}

#[test]
fn rid_and_next_in_are_checked_and_errors_name_the_field() {
    for good in ["1", "a.b_c-D", &"x".repeat(64), "42"] {
        assert_eq!(RunId::parse(good).unwrap().as_str(), good);
    }
    for bad in ["", "a b", "ä", "a/b", &"x".repeat(65), "id?"] {
        let err = RunId::parse(bad).unwrap_err();
        assert_eq!(err.field(), "rid", "{bad:?}");
        assert!(err.to_string().starts_with("rid "), "{err}");
    }
    let long = "y".repeat(500);
    let message = RunId::parse(&long).unwrap_err().to_string();
    assert!(
        message.contains(&format!("\"{}…\"", "y".repeat(64))),
        "{message}"
    );
    assert!(message.len() < 200, "{message}");

    for (text, seconds) in [("1", 1), ("60", 60), ("31622400", 31_622_400), ("007", 7)] {
        assert_eq!(NextIn::parse(text).unwrap().seconds(), seconds, "{text}");
    }
    for bad in ["0", "31622401", "", "-5", "+5", "1.5", "60s", "99999999999"] {
        let err = NextIn::parse(bad).unwrap_err();
        assert_eq!(err.field(), "next_in", "{bad:?}");
        assert_eq!(
            err.to_string(),
            format!("next_in {bad:?} is invalid: expected whole seconds from 1 to 31622400")
        );
    }
    assert_eq!(NextIn::parse("90").unwrap().duration(), secs(90));
}

#[test]
fn signals_sort_into_success_failure_and_log() {
    let cases = [
        (Signal::Start, true, false, false, "START"),
        (Signal::Success, true, true, false, "SUCCESS"),
        (Signal::Exit(0), true, true, false, "EXIT 0"),
        (Signal::Exit(3), true, false, true, "EXIT 3"),
        (Signal::Fail, true, false, true, "FAIL"),
        (Signal::Log, false, false, false, "LOG"),
        (Signal::Pulse, true, true, false, "PULSE"),
    ];
    for (signal, check_in, success, failure, header) in cases {
        assert_eq!(signal.is_check_in(), check_in, "{signal:?}");
        assert_eq!(signal.is_success(), success, "{signal:?}");
        assert_eq!(signal.is_failure(), failure, "{signal:?}");
        assert_eq!(signal.to_string(), header);
    }
}

// ---- A.4.1: due time ----

#[test]
fn due_time_minutely_example_verbatim() {
    // `minutely`: gap = 60s, e = 30s. A ping at 10:00:45 counts for 10:01, so due is
    // 10:02:00. A ping at 10:00:20 gives due 10:01:00.
    let rules = schedule_rules("minutely", 60);
    let Cadence::Schedule { schedule, .. } = &rules.cadence else {
        unreachable!()
    };
    assert_eq!(
        early_tolerance_at(schedule, secs(60), t("10:00:45")),
        secs(30)
    );
    assert_eq!(due_after(&rules, t("10:00:45"), None), t("10:02:00"));
    assert_eq!(due_after(&rules, t("10:00:20"), None), t("10:01:00"));
}

#[test]
fn due_time_for_periods_schedules_and_next_in() {
    let period = period_rules(3600, 300);
    let minutely = schedule_rules("minutely", 60);
    let daily = schedule_rules("daily@03:00", 60);
    let uneven = schedule_rules("hourly@0,10", 600);
    let next_in = NextIn::from_seconds(90);
    let cases = [
        (&period, "10:00:00", None, "11:00:00"),
        (&period, "10:00:00", next_in, "10:01:30"),
        (&minutely, "10:01:00", None, "10:02:00"),
        (&minutely, "10:00:30", None, "10:02:00"),
        (&minutely, "10:00:29", None, "10:01:00"),
        (&minutely, "10:00:45", next_in, "10:02:15"),
        // a client a little early still counts for today's slot
        (&daily, "02:59:30", None, "2026-11-23T03:00:00Z"),
        (&daily, "02:58:00", None, "03:00:00"),
        (&daily, "03:00:50", None, "2026-11-23T03:00:00Z"),
        // slots 10m then 50m apart: the tolerance of 10m is capped at half the gap
        (&uneven, "00:06:00", None, "01:00:00"),
        (&uneven, "00:58:00", None, "01:10:00"),
        (&uneven, "00:54:00", None, "01:00:00"),
    ];
    for (rules, at, next_in, want) in cases {
        assert_eq!(
            due_after(rules, t(at), next_in),
            t(want),
            "{at} next_in {next_in:?}"
        );
    }
}

// ---- A.4.2: status over time ----

#[test]
fn a_new_monitor_never_goes_late_or_down_by_time() {
    let rules = period_rules(60, 10);
    let mut state = MonitorState::new(t("10:00:00"));
    assert_eq!(next_deadline(&state, &rules), None);
    for at in ["10:01:00", "12:00:00", "2027-01-01T00:00:00Z"] {
        assert!(advance(&mut state, &rules, t(at)).is_empty(), "{at}");
    }
    assert_eq!(state.status, Status::New);
}

#[test]
fn up_turns_late_at_due_and_down_after_grace() {
    let rules = period_rules(60, 10);
    let mut state = up_at("10:00:00", "10:01:00");
    let steps: [(&str, &[&str], &str, Option<&str>); 5] = [
        ("10:00:59", &[], "up", Some("10:01:00")),
        (
            "10:01:00",
            &["monitor.late", "notify late"],
            "late",
            Some("10:01:10"),
        ),
        ("10:01:09", &[], "late", Some("10:01:10")),
        ("10:01:10", &["monitor.down", "notify down"], "down", None),
        ("11:00:00", &[], "down", None),
    ];
    for (at, effects, status, deadline) in steps {
        let got = advance(&mut state, &rules, t(at));
        assert_eq!(describe(&got), effects, "at {at}");
        assert_eq!(state.status.as_str(), status, "at {at}");
        assert_eq!(next_deadline(&state, &rules), deadline.map(t), "at {at}");
    }
    assert_eq!(state.since, t("10:01:10"), "dated at the deadline");
    assert_eq!(down_reason(&state), Some(DownReason::Timeout));
}

#[test]
fn down_timeout_words_follow_the_spec() {
    let rules = period_rules(3599, 300);
    let mut state = up_at("02:00:01", "03:00:00");
    let got = advance(&mut state, &rules, t("03:05:00"));
    let event = events(&got)[0];
    assert_eq!(
        event.message,
        "down: no check-in since 2026-11-22T02:00:01Z (due 03:00:00Z, grace 5m)"
    );
    assert_eq!(
        (event.level(), event.reason),
        (EventLevel::Error, Some(DownReason::Timeout))
    );
    let notice = notices(&got)[0];
    assert_eq!(notice.summary, "DOWN (no check-in since 02:00:01Z)");
    assert_eq!(notice.notifs, ["ops"]);
    assert_eq!(notice.previous_status, Status::Up);
}

#[test]
fn subject_times_round_to_the_second_as_the_log_prefix_does() {
    let rules = period_rules(60, 0);
    // Checked in at 10:00:00.6: its log line says 10:00:01, and so does the subject.
    let mut state = up_at("10:00:00.6", "10:01:00.6");
    let got = advance(&mut state, &rules, t("10:01:00.6"));
    assert_eq!(
        notices(&got)[0].summary,
        "DOWN (no check-in since 10:00:01Z)"
    );
    let mut state = up_at("10:00:00.4", "10:01:00.4");
    let got = advance(&mut state, &rules, t("10:01:00.4"));
    assert_eq!(
        notices(&got)[0].summary,
        "DOWN (no check-in since 10:00:00Z)"
    );
}

#[test]
fn grace_zero_goes_straight_to_down() {
    let rules = period_rules(60, 0);
    let mut state = up_at("10:00:00", "10:01:00");
    assert_eq!(next_deadline(&state, &rules), Some(t("10:01:00")));
    assert!(advance(&mut state, &rules, t("10:00:59")).is_empty());
    let got = advance(&mut state, &rules, t("10:01:00"));
    assert_eq!(describe(&got), ["monitor.down", "notify down"]);
    assert_eq!(state.since, t("10:01:00"));
}

#[test]
fn both_deadlines_passed_at_once_is_down_without_late() {
    let rules = period_rules(60, 10);
    let mut state = up_at("10:00:00", "10:01:00");
    let got = advance(&mut state, &rules, t("10:30:00"));
    assert_eq!(describe(&got), ["monitor.down", "notify down"]);
    assert_eq!(state.since, t("10:01:10"));
}

#[test]
fn down_stays_down_until_a_success() {
    let rules = MonitorRules {
        max_runtime: Some(secs(600)),
        ..period_rules(60, 10)
    };
    let mut state = up_at("10:00:00", "10:01:00");
    advance(&mut state, &rules, t("10:05:00"));
    for at in ["10:06:00", "12:00:00"] {
        assert!(advance(&mut state, &rules, t(at)).is_empty());
    }
    let got = check_in(&mut state, &rules, &ping(Signal::Start), t("12:00:00"));
    assert_eq!(describe(&got), ["open 1"], "a start does not end down");
    assert_eq!(state.status.as_str(), "down");
    let got = check_in(&mut state, &rules, &ping(Signal::Success), t("12:01:00"));
    assert_eq!(
        describe(&got),
        ["monitor.up", "notify up", "close 1 success"]
    );
    assert_eq!(state.status, Status::Up);
}

#[test]
fn an_open_run_holds_off_late() {
    let rules = period_rules(60, 600);
    let mut state = up_at("10:00:00", "10:01:00");
    check_in(&mut state, &rules, &ping(Signal::Start), t("10:00:30"));
    assert_eq!(state.next_due(), None, "no next_due while a run is open");
    assert_eq!(next_deadline(&state, &rules), Some(t("10:10:30")));
    assert!(advance(&mut state, &rules, t("10:05:00")).is_empty());
    assert_eq!(state.status, Status::Up);
    let got = check_in(&mut state, &rules, &ping(Signal::Success), t("10:06:00"));
    assert_eq!(describe(&got), ["close 1 success"]);
    assert_eq!(state.last_duration, Some(secs(330)));
    assert_eq!(state.due, Some(t("10:07:00")));
}

#[test]
fn a_run_past_max_runtime_takes_any_status_down() {
    for (name, before) in [
        ("new", MonitorState::new(t("09:00:00"))),
        ("up", up_at("09:59:00", "11:00:00")),
    ] {
        let rules = MonitorRules {
            max_runtime: Some(secs(300)),
            ..period_rules(3600, 60)
        };
        let mut state = before;
        check_in(
            &mut state,
            &rules,
            &with_rid(Signal::Start, "r7"),
            t("10:00:00"),
        );
        assert_eq!(next_deadline(&state, &rules), Some(t("10:05:00")), "{name}");
        let got = advance(&mut state, &rules, t("10:05:00"));
        assert_eq!(
            describe(&got),
            ["close 1 failed with note", "monitor.down", "notify down"],
            "{name}"
        );
        assert_eq!(notes(&got), ["!!! no end signal within max_runtime 5m"]);
        assert_eq!(down_reason(&state), Some(DownReason::RunTimeout), "{name}");
        assert_eq!(
            events(&got)[0].message,
            "down: the run started at 2026-11-22T10:00:00Z (rid r7) got no end signal \
             within max_runtime 5m"
        );
        assert_eq!(
            notices(&got)[0].summary,
            "DOWN (no end signal within max_runtime 5m)"
        );
        assert!(state.runs.is_empty());
    }
}

#[test]
fn max_runtime_zero_means_no_limit() {
    // The configuration turns `max_runtime = 0s` into `None`; a zero that reaches the
    // machine some other way (a dynamic monitor) means the same.
    for max_runtime in [None, Some(Duration::ZERO)] {
        let rules = MonitorRules {
            max_runtime,
            ..period_rules(60, 10)
        };
        let mut state = MonitorState::new(t("10:00:00"));
        check_in(&mut state, &rules, &ping(Signal::Start), t("10:00:00"));
        assert_eq!(next_deadline(&state, &rules), None, "{max_runtime:?}");
        assert!(advance(&mut state, &rules, t("2027-01-01T00:00:00Z")).is_empty());
        assert_eq!((state.status, state.runs.len()), (Status::New, 1));
    }
}

#[test]
fn time_changes_nothing_while_paused_except_a_window_end() {
    let rules = period_rules(60, 10);
    let mut state = up_at("10:00:00", "10:01:00");
    pause(&mut state, &rules, PauseUntil::Ping, t("10:00:10"));
    assert_eq!(next_deadline(&state, &rules), None);
    assert!(advance(&mut state, &rules, t("23:00:00")).is_empty());
    assert_eq!(state.status, Status::Paused(PauseUntil::Ping));

    let mut state = up_at("10:00:00", "10:01:00");
    let until = PauseUntil::Time(t("12:00:00"));
    pause(&mut state, &rules, until, t("10:00:10"));
    assert_eq!(next_deadline(&state, &rules), Some(t("12:00:00")));
    assert!(advance(&mut state, &rules, t("11:59:59")).is_empty());
    let got = advance(&mut state, &rules, t("12:00:00"));
    assert_eq!(describe(&got), ["monitor.resumed"]);
    assert_eq!(
        events(&got)[0].message,
        "resumed at the end of the pause window; next check-in due at 2026-11-22T12:01:00Z"
    );
    assert_eq!((state.status, state.due), (Status::Up, Some(t("12:01:00"))));
}

// ---- A.4.3: check-ins ----

#[test]
fn a_start_opens_a_run_and_its_log() {
    let rules = period_rules(3600, 300);
    let mut state = MonitorState::new(t("09:00:00"));
    let got = check_in(
        &mut state,
        &rules,
        &with_rid(Signal::Start, "42"),
        t("10:00:00"),
    );
    assert_eq!(describe(&got), ["open 1"]);
    assert_eq!(ping_counter(&got), Some(1));
    assert_eq!(state.status, Status::New, "a new monitor stays new");
    assert_eq!(state.counter, 1);
    assert_eq!(
        state.runs,
        [OpenRun {
            rid: Some(RunId::parse("42").unwrap()),
            started: t("10:00:00"),
            counter: 1
        }]
    );
    assert_eq!(state.last_ping_kind, Some(Signal::Start));
    assert_eq!(state.due, Some(t("11:00:00")), "every check-in sets due");
}

#[test]
fn a_start_ends_late_and_notifies_only_if_late_was_notified() {
    for (notif_on_late, want) in [
        (
            vec!["pager".to_string()],
            vec!["monitor.up", "notify up", "open 1"],
        ),
        (vec![], vec!["monitor.up", "open 1"]),
    ] {
        let rules = MonitorRules {
            notif_on_late,
            ..period_rules(60, 30)
        };
        let mut state = up_at("10:00:00", "10:01:00");
        advance(&mut state, &rules, t("10:01:05"));
        let got = check_in(&mut state, &rules, &ping(Signal::Start), t("10:01:20"));
        assert_eq!(describe(&got), want);
        assert_eq!(
            events(&got)[0].message,
            "up: start check-in 20s after the due time 10:01:00Z"
        );
        assert_eq!(state.status, Status::Up);
    }
}

#[test]
fn a_success_closes_the_run_its_rid_names() {
    let rules = period_rules(3600, 3600);
    let mut state = MonitorState::new(t("09:00:00"));
    check_in(
        &mut state,
        &rules,
        &with_rid(Signal::Start, "a"),
        t("10:00:00"),
    );
    check_in(
        &mut state,
        &rules,
        &with_rid(Signal::Start, "b"),
        t("10:01:00"),
    );
    check_in(&mut state, &rules, &ping(Signal::Start), t("10:02:00"));
    let cases = [
        (
            with_rid(Signal::Success, "a"),
            "10:10:00",
            "close 1 success",
            600,
        ),
        (ping(Signal::Success), "10:12:00", "close 3 success", 600),
        (ping(Signal::Exit(0)), "10:21:00", "close 2 success", 1200),
    ];
    for (ping, at, want, took) in cases {
        let got = check_in(&mut state, &rules, &ping, t(at));
        assert!(
            describe(&got).contains(&want.to_string()),
            "{ping:?}: {got:?}"
        );
        assert_eq!(state.last_duration, Some(secs(took)));
    }
    assert!(state.runs.is_empty());
}

#[test]
fn without_rid_the_newest_run_without_rid_closes_else_the_newest() {
    let rules = period_rules(3600, 3600);
    let mut state = MonitorState::new(t("09:00:00"));
    check_in(&mut state, &rules, &ping(Signal::Start), t("10:00:00"));
    check_in(
        &mut state,
        &rules,
        &with_rid(Signal::Start, "x"),
        t("10:01:00"),
    );
    check_in(
        &mut state,
        &rules,
        &with_rid(Signal::Start, "y"),
        t("10:02:00"),
    );
    let got = check_in(&mut state, &rules, &ping(Signal::Fail), t("10:03:00"));
    assert_eq!(
        describe(&got),
        ["monitor.down", "notify down", "close 1 failed"]
    );
    let got = check_in(&mut state, &rules, &ping(Signal::Success), t("10:04:00"));
    assert_eq!(
        describe(&got),
        ["monitor.up", "notify up", "close 3 success"]
    );
    assert_eq!(state.runs.len(), 1);
    assert_eq!(state.runs[0].rid.as_ref().map(RunId::as_str), Some("x"));
}

#[test]
fn a_rid_that_is_not_open_closes_nothing_and_logs_alone() {
    let rules = period_rules(3600, 3600);
    let mut state = up_at("09:00:00", "10:00:00");
    check_in(
        &mut state,
        &rules,
        &with_rid(Signal::Start, "a"),
        t("09:30:00"),
    );
    let got = check_in(
        &mut state,
        &rules,
        &with_rid(Signal::Success, "zz"),
        t("09:40:00"),
    );
    assert_eq!(describe(&got), ["write 2 success"]);
    assert_eq!(ping_counter(&got), Some(2));
    assert_eq!(state.runs.len(), 1, "run a stays open");
}

#[test]
fn a_success_is_up_from_new_late_and_down() {
    let rules = period_rules(60, 30);
    let late = {
        let mut state = up_at("10:00:00", "10:01:00");
        advance(&mut state, &rules, t("10:01:10"));
        state
    };
    let down = {
        let mut state = up_at("09:00:00", "09:01:00");
        advance(&mut state, &rules, t("09:01:30"));
        state
    };
    let cases: [(&str, MonitorState, &[&str], &str); 4] = [
        (
            "new",
            MonitorState::new(t("09:00:00")),
            &["monitor.first", "write 1 success"],
            "up: first check-in (success)",
        ),
        (
            "up",
            up_at("10:00:00", "10:01:00"),
            &["write 1 success"],
            "",
        ),
        (
            "late",
            late,
            &["monitor.up", "notify up", "write 1 success"],
            "up: success check-in 20s after the due time 10:01:00Z",
        ),
        (
            "down",
            down,
            &["monitor.up", "notify up", "write 1 success"],
            "up after 1h5m down (success check-in)",
        ),
    ];
    for (name, mut state, want, message) in cases {
        let now = if name == "down" {
            "10:06:30"
        } else if name == "new" || name == "up" {
            "10:00:50"
        } else {
            "10:01:20"
        };
        let got = check_in(&mut state, &rules, &ping(Signal::Success), t(now));
        assert_eq!(describe(&got), want, "{name}");
        assert_eq!(state.status, Status::Up, "{name}");
        assert_eq!(state.due, Some(t(now) + secs(60)), "{name}");
        if !message.is_empty() {
            assert_eq!(events(&got)[0].message, message, "{name}");
        }
    }
}

#[test]
fn down_to_up_tells_the_outage_length() {
    let rules = period_rules(3600, 300);
    let mut state = up_at("01:00:00", "02:00:00");
    advance(&mut state, &rules, t("02:05:00"));
    let got = check_in(&mut state, &rules, &ping(Signal::Success), t("03:10:00"));
    let notice = notices(&got)[0];
    assert_eq!(notice.summary, "UP after 1h5m");
    assert_eq!(notice.event, NoticeEvent::Up);
    assert!(matches!(notice.previous_status, Status::Down(_)));
    assert_eq!(events(&got)[0].level(), EventLevel::Info);
}

#[test]
fn a_failure_is_down_at_once_and_logged_again_when_down() {
    let rules = period_rules(3600, 300);
    let mut state = up_at("09:00:00", "10:00:00");
    let got = check_in(&mut state, &rules, &ping(Signal::Exit(3)), t("09:30:00"));
    assert_eq!(
        describe(&got),
        ["monitor.down", "notify down", "write 1 failed"]
    );
    assert_eq!(events(&got)[0].message, "down: exit status 3");
    assert_eq!(notices(&got)[0].summary, "DOWN (exit status 3)");
    assert_eq!(notices(&got)[0].exit_code, Some(3));
    let Status::Down(outage) = state.status else {
        panic!("not down: {:?}", state.status)
    };
    assert_eq!(
        (outage.reason, outage.exit_code),
        (DownReason::Fail, Some(3))
    );
    let got = check_in(&mut state, &rules, &ping(Signal::Fail), t("09:40:00"));
    assert_eq!(describe(&got), ["write 2 failed"], "no second transition");
    assert_eq!(state.since, t("09:30:00"));
    assert_eq!(state.due, Some(t("10:40:00")), "a failure sets due too");
}

#[test]
fn a_fail_ping_reads_fail() {
    let rules = period_rules(3600, 300);
    let mut state = MonitorState::new(t("09:00:00"));
    let got = check_in(&mut state, &rules, &ping(Signal::Fail), t("09:30:00"));
    assert_eq!(events(&got)[0].message, "down: fail check-in");
    assert_eq!(notices(&got)[0].summary, "DOWN (fail)");
    assert_eq!(notices(&got)[0].previous_status, Status::New);
}

#[test]
fn a_log_ping_appends_to_its_run_or_goes_to_the_event_log() {
    let rules = period_rules(3600, 3600);
    let mut state = up_at("09:00:00", "10:00:00");
    let got = check_in(&mut state, &rules, &ping(Signal::Log), t("09:10:00"));
    assert_eq!(describe(&got), ["stray log"]);
    assert_eq!(ping_counter(&got), None);
    check_in(
        &mut state,
        &rules,
        &with_rid(Signal::Start, "r1"),
        t("09:20:00"),
    );
    check_in(&mut state, &rules, &ping(Signal::Start), t("09:21:00"));
    let cases = [
        (with_rid(Signal::Log, "r1"), "append 1"),
        (ping(Signal::Log), "append 2"),
        (with_rid(Signal::Log, "other"), "stray log"),
    ];
    for (ping, want) in cases {
        let got = check_in(&mut state, &rules, &ping, t("09:30:00"));
        assert_eq!(describe(&got), [want], "{ping:?}");
    }
    assert_eq!(
        state.last_ping,
        Some(t("09:21:00")),
        "log is not a check-in"
    );
    assert_eq!(state.due, Some(t("10:21:00")));
}

#[test]
fn at_most_sixteen_runs_stay_open() {
    let rules = period_rules(3600, 3600);
    let mut state = MonitorState::new(t("09:00:00"));
    for minute in 0..MAX_OPEN_RUNS {
        let got = check_in(
            &mut state,
            &rules,
            &ping(Signal::Start),
            t(&format!("10:{minute:02}:00")),
        );
        assert_eq!(describe(&got), [format!("open {}", minute + 1)]);
    }
    let got = check_in(&mut state, &rules, &ping(Signal::Start), t("10:30:00"));
    assert_eq!(describe(&got), ["open 17", "close 1 canceled with note"]);
    assert_eq!(
        notes(&got),
        ["??? canceled: more than 16 runs were open, so the oldest is no longer followed"]
    );
    assert_eq!(state.runs.len(), MAX_OPEN_RUNS);
    assert_eq!(state.runs[0].counter, 2);
}

#[test]
fn a_start_with_an_open_rid_cancels_the_older_run() {
    let rules = period_rules(3600, 3600);
    let mut state = MonitorState::new(t("09:00:00"));
    check_in(
        &mut state,
        &rules,
        &with_rid(Signal::Start, "r"),
        t("10:00:00"),
    );
    let got = check_in(
        &mut state,
        &rules,
        &with_rid(Signal::Start, "r"),
        t("10:05:00"),
    );
    assert_eq!(describe(&got), ["close 1 canceled with note", "open 2"]);
    assert_eq!(
        notes(&got),
        ["??? canceled: a new start came with the same rid r"]
    );
    assert_eq!(state.runs.len(), 1);
}

#[test]
fn log_success_off_writes_no_lone_success_but_keeps_runs_and_failures() {
    let rules = MonitorRules {
        log_success: false,
        ..period_rules(3600, 600)
    };
    let mut state = MonitorState::new(t("09:00:00"));
    let cases = [
        (ping(Signal::Success), "10:00:00", vec!["monitor.first"]),
        (ping(Signal::Pulse), "10:01:00", vec![]),
        (ping(Signal::Start), "10:02:00", vec!["open 1"]),
        (ping(Signal::Success), "10:02:05", vec!["close 1 success"]),
        (
            ping(Signal::Fail),
            "10:03:00",
            vec!["monitor.down", "notify down", "write 2 failed"],
        ),
    ];
    for (ping, at, want) in cases {
        let got = check_in(&mut state, &rules, &ping, t(at));
        assert_eq!(describe(&got), want, "{ping:?}");
    }
    assert_eq!(state.counter, 2);
}

#[test]
fn next_in_sets_the_next_due_time_only() {
    let rules = period_rules(3600, 0);
    let mut state = MonitorState::new(t("09:00:00"));
    let pulse = Ping {
        next_in: NextIn::from_seconds(60),
        ..Ping::plain(Signal::Pulse)
    };
    check_in(&mut state, &rules, &pulse, t("10:00:00"));
    assert_eq!(state.due, Some(t("10:01:00")));
    assert_eq!(state.last_next_in, NextIn::from_seconds(60));
    check_in(&mut state, &rules, &ping(Signal::Success), t("10:00:30"));
    assert_eq!(state.due, Some(t("11:00:30")));
    assert_eq!(state.last_next_in, None);
}

#[test]
fn a_ping_after_a_missed_deadline_sees_the_transition_first() {
    let rules = period_rules(60, 10);
    let mut state = up_at("10:00:00", "10:01:00");
    let got = check_in(&mut state, &rules, &ping(Signal::Success), t("10:01:10.5"));
    assert_eq!(
        describe(&got),
        [
            "monitor.down",
            "notify down",
            "monitor.up",
            "notify up",
            "write 1 success"
        ]
    );
    assert_eq!(state.status, Status::Up);
}

// ---- A.4.4: pause and resume ----

#[test]
fn paused_until_ping_resumes_on_a_success_and_records_the_rest() {
    let rules = period_rules(60, 10);
    let mut state = up_at("10:00:00", "10:01:00");
    let got = pause(&mut state, &rules, PauseUntil::Ping, t("10:00:30"));
    assert_eq!(describe(&got), ["monitor.paused"]);
    assert_eq!(
        events(&got)[0].message,
        "paused until the next success check-in"
    );
    assert_eq!(state.next_due(), None);
    let cases: [(Ping, &str, &[&str], &str); 4] = [
        (ping(Signal::Start), "10:05:00", &["open 1"], "paused"),
        (ping(Signal::Log), "10:05:30", &["append 1"], "paused"),
        (
            ping(Signal::Fail),
            "10:06:00",
            &["close 1 failed"],
            "paused",
        ),
        (
            ping(Signal::Success),
            "10:07:00",
            &["monitor.resumed", "write 2 success"],
            "up",
        ),
    ];
    for (ping, at, want, status) in cases {
        let got = check_in(&mut state, &rules, &ping, t(at));
        assert_eq!(describe(&got), want, "{ping:?}");
        assert_eq!(state.status.as_str(), status, "{ping:?}");
    }
    assert_eq!(state.due, Some(t("10:08:00")), "due from the resuming ping");
}

#[test]
fn paused_until_resume_ignores_pings_until_the_api_resumes() {
    let rules = period_rules(60, 10);
    let mut state = up_at("10:00:00", "10:01:00");
    pause(
        &mut state,
        &rules,
        PauseUntil::default_for(true),
        t("10:00:30"),
    );
    for signal in [Signal::Success, Signal::Start, Signal::Fail, Signal::Log] {
        let got = check_in(&mut state, &rules, &ping(signal), t("10:05:00"));
        assert_eq!(describe(&got), ["ignored", "monitor.ignored"], "{signal:?}");
        assert_eq!(ping_counter(&got), None);
        assert_eq!(events(&got)[0].level(), EventLevel::Info);
    }
    assert_eq!(
        (state.counter, state.last_ping),
        (0, Some(t("10:00:00"))),
        "ignored pings leave no trace"
    );
    let got = resume(&mut state, &rules, t("11:00:00"));
    assert_eq!(describe(&got), ["monitor.resumed"]);
    assert_eq!(
        events(&got)[0].message,
        "resumed through the API; next check-in due at 2026-11-22T11:01:00Z"
    );
    assert_eq!((state.status, state.due), (Status::Up, Some(t("11:01:00"))));
    assert_eq!(state.since, t("11:00:00"));
}

#[test]
fn resuming_a_monitor_that_never_checked_in_makes_it_new() {
    let rules = period_rules(60, 10);
    let mut state = MonitorState::new(t("09:00:00"));
    pause(&mut state, &rules, PauseUntil::Resume, t("09:10:00"));
    let got = resume(&mut state, &rules, t("09:20:00"));
    assert_eq!(
        events(&got)[0].message,
        "resumed through the API; no check-in yet, so it is new"
    );
    assert_eq!((state.status, state.due), (Status::New, None));
}

#[test]
fn a_maintenance_window_ignores_pings_and_ends_by_itself() {
    let rules = period_rules(60, 10);
    let mut state = up_at("10:00:00", "10:01:00");
    pause(
        &mut state,
        &rules,
        PauseUntil::Time(t("11:00:00")),
        t("10:00:30"),
    );
    let got = check_in(&mut state, &rules, &ping(Signal::Success), t("10:59:59"));
    assert_eq!(describe(&got), ["ignored", "monitor.ignored"]);
    assert_eq!(
        events(&got)[0].message,
        "success ping ignored: paused until 2026-11-22T11:00:00Z"
    );
    let got = check_in(&mut state, &rules, &ping(Signal::Success), t("11:00:20"));
    assert_eq!(describe(&got), ["monitor.resumed", "write 1 success"]);
    assert_eq!(state.due, Some(t("11:01:20")));
}

#[test]
fn pausing_ends_an_outage_and_resuming_tells_no_one() {
    let rules = period_rules(60, 10);
    let mut state = up_at("10:00:00", "10:01:00");
    advance(&mut state, &rules, t("10:02:00"));
    assert_eq!(state.status.as_str(), "down");
    let got = pause(&mut state, &rules, PauseUntil::Resume, t("10:03:00"));
    assert_eq!(describe(&got), ["monitor.paused"]);
    assert_eq!(events(&got)[0].level(), EventLevel::Notice);
    let got = resume(&mut state, &rules, t("10:04:00"));
    assert_eq!(describe(&got), ["monitor.resumed"]);
    assert_eq!(state.status, Status::Up);
}

#[test]
fn pausing_a_paused_monitor_changes_until_and_resuming_an_active_one_is_a_no_op() {
    let rules = period_rules(60, 10);
    let mut state = up_at("10:00:00", "10:01:00");
    pause(&mut state, &rules, PauseUntil::Ping, t("10:00:10"));
    let got = pause(&mut state, &rules, PauseUntil::Resume, t("10:00:20"));
    assert_eq!(
        events(&got)[0].message,
        "pause changed: paused until resumed"
    );
    assert_eq!(state.status, Status::Paused(PauseUntil::Resume));
    assert_eq!(
        state.since,
        t("10:00:10"),
        "still paused since the first pause"
    );

    let mut active = up_at("10:00:00", "10:01:00");
    let before = active.clone();
    assert!(resume(&mut active, &rules, t("10:00:30")).is_empty());
    assert_eq!(active, before);
}

#[test]
fn runs_survive_a_pause_and_do_not_time_out_during_it() {
    let rules = period_rules(3600, 300);
    let mut state = up_at("10:00:00", "11:00:00");
    check_in(&mut state, &rules, &ping(Signal::Start), t("10:00:00"));
    check_in(
        &mut state,
        &rules,
        &with_rid(Signal::Start, "late"),
        t("10:03:00"),
    );
    pause(&mut state, &rules, PauseUntil::Resume, t("10:04:00"));
    assert_eq!(next_deadline(&state, &rules), None);
    assert!(advance(&mut state, &rules, t("10:06:00")).is_empty());
    assert_eq!(state.runs.len(), 2);
    let got = resume(&mut state, &rules, t("10:07:00"));
    assert_eq!(
        describe(&got),
        ["close 1 canceled with note", "monitor.resumed"]
    );
    assert_eq!(
        notes(&got),
        ["??? outcome unknown: the monitor was paused at the run's deadline"]
    );
    assert_eq!(
        state.runs.len(),
        1,
        "the run still within max_runtime stays open"
    );
    assert_eq!(next_deadline(&state, &rules), Some(t("10:08:00")));
}

#[test]
fn pause_until_words_round_trip() {
    assert_eq!(PauseUntil::default_for(false), PauseUntil::Ping);
    assert_eq!(PauseUntil::default_for(true), PauseUntil::Resume);
    for (text, until) in [
        ("ping", PauseUntil::Ping),
        ("resume", PauseUntil::Resume),
        ("2026-11-22T11:00:00Z", PauseUntil::Time(t("11:00:00"))),
    ] {
        assert_eq!(PauseUntil::parse(text), Some(until));
        assert_eq!(String::from(until), text);
    }
    assert_eq!(PauseUntil::parse("tomorrow"), None);
}

// ---- A.4.5: events and notifications ----

#[test]
fn event_kinds_and_levels_follow_the_spec_table() {
    let cases = [
        (EventKind::First, "monitor.first", EventLevel::Info, true),
        (EventKind::Late, "monitor.late", EventLevel::Warning, true),
        (EventKind::Down, "monitor.down", EventLevel::Error, true),
        (EventKind::Up, "monitor.up", EventLevel::Info, true),
        (
            EventKind::Paused,
            "monitor.paused",
            EventLevel::Notice,
            true,
        ),
        (
            EventKind::Resumed,
            "monitor.resumed",
            EventLevel::Notice,
            true,
        ),
        (
            EventKind::Credit,
            "monitor.credit",
            EventLevel::Warning,
            false,
        ),
        (
            EventKind::Ignored,
            "monitor.ignored",
            EventLevel::Info,
            false,
        ),
    ];
    for (kind, name, level, transition) in cases {
        assert_eq!(
            (kind.as_str(), kind.level(), kind.is_transition()),
            (name, level, transition)
        );
    }
    let severities: Vec<u8> = [
        EventLevel::Info,
        EventLevel::Notice,
        EventLevel::Warning,
        EventLevel::Error,
    ]
    .iter()
    .map(|level| level.severity())
    .collect();
    assert_eq!(severities, [20, 25, 30, 40]);
}

#[test]
fn late_to_up_notifies_only_if_a_late_notification_was_sent() {
    for (notif_on_late, want_up_notice) in [(vec!["pager".to_string()], true), (vec![], false)] {
        let rules = MonitorRules {
            notif_on_late: notif_on_late.clone(),
            ..period_rules(60, 30)
        };
        let mut state = up_at("10:00:00", "10:01:00");
        let got = advance(&mut state, &rules, t("10:01:00"));
        assert_eq!(notices(&got).len(), usize::from(want_up_notice));
        assert_eq!(
            state.status,
            Status::Late {
                notified: want_up_notice
            }
        );
        let got = check_in(&mut state, &rules, &ping(Signal::Success), t("10:01:05"));
        let ups = notices(&got);
        assert_eq!(ups.len(), usize::from(want_up_notice), "{notif_on_late:?}");
        if let Some(up) = ups.first() {
            assert_eq!(up.summary, "UP (5s late)");
            assert_eq!(up.notifs, ["ops"]);
        }
    }
}

#[test]
fn nobody_named_means_no_notification_but_the_event_stays() {
    let rules = MonitorRules {
        notif_on_down: Vec::new(),
        notif_on_up: Vec::new(),
        notif_on_late: Vec::new(),
        ..period_rules(60, 10)
    };
    let mut state = up_at("10:00:00", "10:01:00");
    let got = advance(&mut state, &rules, t("10:01:00"));
    assert_eq!(describe(&got), ["monitor.late"]);
    let got = advance(&mut state, &rules, t("10:01:10"));
    assert_eq!(describe(&got), ["monitor.down"]);
    let got = check_in(&mut state, &rules, &ping(Signal::Success), t("10:02:00"));
    assert_eq!(describe(&got), ["monitor.up", "write 1 success"]);
}

#[test]
fn notif_repeat_reminds_while_down_on_a_steady_rhythm() {
    let rules = MonitorRules {
        notif_repeat: Some(secs(3600)),
        ..period_rules(60, 0)
    };
    let mut state = up_at("10:00:00", "10:01:00");
    advance(&mut state, &rules, t("10:01:00"));
    assert_eq!(next_deadline(&state, &rules), Some(t("11:01:00")));
    let steps: [(&str, &[&str], &str); 4] = [
        ("11:00:59", &[], "11:01:00"),
        ("11:01:00", &["notify down reminder"], "12:01:00"),
        // three reminders fell due while nobody looked: one is sent
        ("15:30:00", &["notify down reminder"], "16:01:00"),
        ("15:45:00", &[], "16:01:00"),
    ];
    for (at, want, next) in steps {
        let got = advance(&mut state, &rules, t(at));
        assert_eq!(describe(&got), want, "at {at}");
        assert_eq!(next_deadline(&state, &rules), Some(t(next)), "at {at}");
    }
    let got = advance(&mut state, &rules, t("16:01:00"));
    let reminder = notices(&got)[0];
    assert_eq!(
        reminder.summary,
        "STILL DOWN after 6h (no check-in since 10:00:00Z)"
    );
    assert_eq!(
        (reminder.event, reminder.reminder),
        (NoticeEvent::Down, true)
    );
    assert_eq!(reminder.notifs, ["ops"]);
    check_in(&mut state, &rules, &ping(Signal::Success), t("16:30:00"));
    assert_eq!(next_deadline(&state, &rules), Some(t("16:31:00")));

    let no_repeat = period_rules(60, 0);
    let mut state = up_at("10:00:00", "10:01:00");
    advance(&mut state, &no_repeat, t("10:01:00"));
    assert_eq!(next_deadline(&state, &no_repeat), None);
    assert!(advance(&mut state, &no_repeat, t("20:00:00")).is_empty());
}

// ---- A.7: the restart rule ----

#[test]
fn restart_worked_example_verbatim() {
    // period = 60s, grace = 10s. Last ping 10:00:00, so due 10:01:00. karajo is stopped
    // at 10:00:30 (L) and is back at 10:02:00 (S). Credit: the new due is 10:03:00, and
    // down comes at 10:03:10 if nothing arrives.
    let rules = period_rules(60, 10);
    let mut state = up_at("10:00:00", "10:01:00");
    let got = restart(&mut state, &rules, Some(t("10:00:30")), t("10:02:00"));
    assert_eq!(describe(&got), ["monitor.credit"]);
    let credit = events(&got)[0];
    assert_eq!(credit.level(), EventLevel::Warning);
    assert_eq!(
        credit.message,
        "credit: the check-in due at 2026-11-22T10:01:00Z fell while karajo was not running \
         (from 2026-11-22T10:00:30Z to 2026-11-22T10:02:00Z); now due at 2026-11-22T10:03:00Z"
    );
    assert_eq!((state.status, state.due), (Status::Up, Some(t("10:03:00"))));
    assert!(advance(&mut state, &rules, t("10:02:59")).is_empty());
    assert_eq!(
        describe(&advance(&mut state, &rules, t("10:03:00")))[0],
        "monitor.late"
    );
    assert_eq!(
        describe(&advance(&mut state, &rules, t("10:03:10")))[0],
        "monitor.down"
    );

    // The client pinged at 10:01:00 into a closed port; its next ping at 10:02:00
    // makes the monitor up with due 10:03:00.
    let mut state = up_at("10:00:00", "10:01:00");
    restart(&mut state, &rules, Some(t("10:00:30")), t("10:02:00"));
    check_in(&mut state, &rules, &ping(Signal::Success), t("10:02:00"));
    assert_eq!((state.status, state.due), (Status::Up, Some(t("10:03:00"))));
}

#[test]
fn restart_evaluates_what_fell_due_while_karajo_was_alive() {
    let rules = period_rules(60, 30);
    // up, due ≤ L: late at L (lost in a crash), and its down deadline fell in the gap,
    // so it stays late until S + grace
    let mut state = up_at("10:00:00", "10:01:00");
    let got = restart(&mut state, &rules, Some(t("10:01:20")), t("10:05:00"));
    assert_eq!(
        describe(&got),
        ["monitor.late", "notify late", "monitor.credit"]
    );
    assert_eq!(state.status.as_str(), "late");
    assert_eq!(next_deadline(&state, &rules), Some(t("10:05:30")));
    // up, due + grace ≤ L: down, with its notification
    let mut state = up_at("10:00:00", "10:01:00");
    let got = restart(&mut state, &rules, Some(t("10:02:00")), t("10:05:00"));
    assert_eq!(describe(&got), ["monitor.down", "notify down"]);
    assert_eq!(state.since, t("10:01:30"));
}

#[test]
fn restart_keeps_a_late_monitor_late_when_its_down_deadline_fell_in_the_gap() {
    let rules = period_rules(60, 30);
    let late = || {
        let mut state = up_at("10:00:00", "10:01:00");
        advance(&mut state, &rules, t("10:01:05"));
        state
    };
    let mut state = late();
    let got = restart(&mut state, &rules, Some(t("10:01:10")), t("10:04:00"));
    assert_eq!(describe(&got), ["monitor.credit"]);
    assert_eq!(
        events(&got)[0].message,
        "credit: the down deadline 2026-11-22T10:01:30Z fell while karajo was not running \
         (from 2026-11-22T10:01:10Z to 2026-11-22T10:04:00Z); down at 2026-11-22T10:04:30Z \
         without a check-in"
    );
    assert_eq!(next_deadline(&state, &rules), Some(t("10:04:30")));
    assert_eq!(
        describe(&advance(&mut state, &rules, t("10:04:30")))[0],
        "monitor.down"
    );

    let mut state = late();
    let got = restart(&mut state, &rules, Some(t("10:01:40")), t("10:04:00"));
    assert_eq!(describe(&got), ["monitor.down", "notify down"]);
}

#[test]
fn restart_cancels_runs_whose_deadline_fell_in_the_gap() {
    let rules = MonitorRules {
        max_runtime: Some(secs(600)),
        ..period_rules(3600, 300)
    };
    let open = || {
        let mut state = up_at("09:00:00", "10:00:00");
        check_in(&mut state, &rules, &ping(Signal::Start), t("09:30:00"));
        state
    };
    // deadline 09:40 ≤ L: evaluated normally
    let mut state = open();
    let got = restart(&mut state, &rules, Some(t("09:45:00")), t("11:00:00"));
    assert_eq!(
        describe(&got),
        ["close 1 failed with note", "monitor.down", "notify down"]
    );
    assert_eq!(down_reason(&state), Some(DownReason::RunTimeout));
    // deadline 09:40 in (L, S]: outcome unknown, no status change, due credited
    let mut state = open();
    let got = restart(&mut state, &rules, Some(t("09:35:00")), t("11:00:00"));
    assert_eq!(
        describe(&got),
        ["close 1 canceled with note", "monitor.credit"]
    );
    assert_eq!(
        notes(&got),
        ["??? outcome unknown: karajo was not running at the run's deadline"]
    );
    assert_eq!((state.status, state.due), (Status::Up, Some(t("12:00:00"))));
}

#[test]
fn restart_resumes_a_pause_window_that_ended_in_the_gap_at_s() {
    let rules = period_rules(60, 10);
    let paused = |end: &str| {
        let mut state = up_at("10:00:00", "10:01:00");
        pause(&mut state, &rules, PauseUntil::Time(t(end)), t("10:00:10"));
        state
    };
    let mut state = paused("10:30:00");
    let got = restart(&mut state, &rules, Some(t("10:20:00")), t("10:40:00"));
    assert_eq!(describe(&got), ["monitor.resumed"]);
    assert_eq!(
        (state.since, state.due),
        (t("10:40:00"), Some(t("10:41:00")))
    );
    // a window that ended while karajo was alive resumed then, and went down since
    let mut state = paused("10:10:00");
    let got = restart(&mut state, &rules, Some(t("10:20:00")), t("10:40:00"));
    assert_eq!(
        describe(&got),
        ["monitor.resumed", "monitor.down", "notify down"]
    );
    // a window still running at S is left alone
    let mut state = paused("11:00:00");
    assert!(restart(&mut state, &rules, Some(t("10:20:00")), t("10:40:00")).is_empty());
}

#[test]
fn restart_leaves_down_new_and_other_pauses_alone() {
    let rules = MonitorRules {
        notif_repeat: Some(secs(3600)),
        ..period_rules(60, 10)
    };
    let mut down = up_at("10:00:00", "10:01:00");
    advance(&mut down, &rules, t("10:01:10"));
    let before = down.clone();
    assert!(restart(&mut down, &rules, Some(t("10:30:00")), t("10:40:00")).is_empty());
    assert_eq!(down, before, "down stays down and is not notified again");
    // the reminder due in the gap goes out at S, and the rhythm goes on
    let got = restart(&mut down, &rules, Some(t("10:50:00")), t("11:20:00"));
    assert_eq!(describe(&got), ["notify down reminder"]);
    assert_eq!(next_deadline(&down, &rules), Some(t("12:01:10")));

    let mut new = MonitorState::new(t("09:00:00"));
    assert!(restart(&mut new, &rules, Some(t("10:00:00")), t("12:00:00")).is_empty());
    let mut paused = up_at("10:00:00", "10:01:00");
    pause(&mut paused, &rules, PauseUntil::Ping, t("10:00:10"));
    assert!(restart(&mut paused, &rules, Some(t("10:00:30")), t("12:00:00")).is_empty());
}

#[test]
fn restart_without_a_liveness_mark_takes_the_state_s_newest_time_as_l() {
    // karajo died before its first mark: the check-in at 10:00:00 is the last moment
    // it is known to have been alive, so the due time 10:01:00 fell in the gap.
    let rules = period_rules(60, 10);
    let mut state = up_at("10:00:00", "10:01:00");
    let got = restart(&mut state, &rules, None, t("10:02:00"));
    assert_eq!(describe(&got), ["monitor.credit"]);
    assert_eq!(state.status, Status::Up);
    assert_eq!(state.due, Some(t("10:03:00")), "S + period");

    // A run's start is newer: its timeout that fell in the gap cancels the run.
    let rules = MonitorRules {
        max_runtime: Some(secs(30)),
        ..period_rules(600, 10)
    };
    let mut state = up_at("10:00:00", "10:10:00");
    check_in(&mut state, &rules, &ping(Signal::Start), t("10:05:00"));
    let got = restart(&mut state, &rules, None, t("10:06:00"));
    assert_eq!(state.status, Status::Up, "{got:?}");
    assert!(state.runs.is_empty());

    // Late when karajo died: down at S + grace, not at once.
    let rules = period_rules(60, 10);
    let mut state = up_at("10:00:00", "10:01:00");
    advance(&mut state, &rules, t("10:01:00"));
    let got = restart(&mut state, &rules, None, t("10:05:00"));
    assert_eq!(describe(&got), ["monitor.credit"]);
    assert_eq!(state.status.as_str(), "late");
    assert_eq!(
        next_deadline(&state, &rules),
        Some(t("10:05:10")),
        "S + grace"
    );

    // Without a state there is no history: a new monitor stays new.
    let mut new = MonitorState::new(t("10:04:00"));
    assert!(restart(&mut new, &rules, None, t("10:05:00")).is_empty());
}

#[test]
fn restart_credit_follows_next_in_and_schedules() {
    let mut state = MonitorState::new(t("09:00:00"));
    let rules = period_rules(3600, 0);
    let pulse = Ping {
        next_in: NextIn::from_seconds(120),
        ..Ping::plain(Signal::Pulse)
    };
    check_in(&mut state, &rules, &pulse, t("10:00:00"));
    restart(&mut state, &rules, Some(t("10:01:00")), t("10:05:00"));
    assert_eq!(state.due, Some(t("10:07:00")), "S + last next_in");

    let rules = schedule_rules("hourly", 60);
    let mut state = up_at("10:00:00", "11:00:00");
    restart(&mut state, &rules, Some(t("10:30:00")), t("11:20:00"));
    assert_eq!(state.due, Some(t("12:00:00")), "the first slot after S");
}

// ---- deadlines, reload and persistence ----

#[test]
fn next_deadline_is_the_earliest_that_applies() {
    let rules = MonitorRules {
        max_runtime: Some(secs(120)),
        ..period_rules(600, 60)
    };
    let mut with_run = up_at("10:00:00", "10:10:00");
    check_in(&mut with_run, &rules, &ping(Signal::Start), t("10:01:00"));
    let mut late = up_at("10:00:00", "10:10:00");
    advance(&mut late, &rules, t("10:10:30"));
    let cases = [
        ("new", MonitorState::new(t("10:00:00")), None),
        ("up", up_at("10:00:00", "10:10:00"), Some("10:10:00")),
        ("up with a run", with_run, Some("10:03:00")),
        ("late", late, Some("10:11:00")),
    ];
    for (name, state, want) in cases {
        assert_eq!(next_deadline(&state, &rules), want.map(t), "{name}");
    }
}

#[test]
fn a_reload_recomputes_due_from_the_last_check_in() {
    let old = period_rules(60, 30);
    let new = period_rules(3600, 30);
    let mut state = up_at("10:00:00", "10:01:00");
    advance(&mut state, &old, t("10:01:05"));
    let got = reconfigure(&mut state, &new, t("10:02:00"));
    assert_eq!(describe(&got), ["monitor.up", "notify up"]);
    assert_eq!((state.status, state.due), (Status::Up, Some(t("11:00:00"))));

    let shorter = period_rules(90, 60);
    let got = reconfigure(&mut state, &shorter, t("10:02:00"));
    assert_eq!(describe(&got), ["monitor.late", "notify late"]);
    assert_eq!(state.due, Some(t("10:01:30")));

    let mut pulsed = MonitorState::new(t("09:00:00"));
    let pulse = Ping {
        next_in: NextIn::from_seconds(600),
        ..Ping::plain(Signal::Pulse)
    };
    check_in(&mut pulsed, &old, &pulse, t("10:00:00"));
    reconfigure(&mut pulsed, &new, t("10:01:00"));
    assert_eq!(pulsed.due, Some(t("10:10:00")), "a next_in due time stays");
}

#[test]
fn state_survives_a_json_round_trip() {
    let rules = MonitorRules {
        max_runtime: None,
        ..period_rules(60, 10)
    };
    let mut state = MonitorState::new(t("09:00:00"));
    check_in(
        &mut state,
        &rules,
        &with_rid(Signal::Start, "r-1"),
        t("10:00:00"),
    );
    check_in(&mut state, &rules, &ping(Signal::Start), t("10:00:01"));
    check_in(&mut state, &rules, &ping(Signal::Exit(4)), t("10:00:03.5"));
    let json = serde_json::to_value(&state).unwrap();
    assert_eq!(json["status"]["down"]["reason"], "fail");
    assert_eq!(json["status"]["down"]["exit_code"], 4);
    assert_eq!(json["since"], "2026-11-22T10:00:03.5Z");
    assert_eq!(json["last_ping_kind"]["exit"], 4);
    assert_eq!(json["last_duration"], 2_500_000_000u64);
    assert_eq!(json["runs"][0]["rid"], "r-1");
    assert_eq!(json["counter"], 2);
    let back: MonitorState = serde_json::from_value(json).unwrap();
    assert_eq!(back, state);

    pause(
        &mut state,
        &rules,
        PauseUntil::Time(t("12:00:00")),
        t("10:01:00"),
    );
    let json = serde_json::to_string(&state).unwrap();
    assert!(
        json.contains(r#""status":{"paused":"2026-11-22T12:00:00Z"}"#),
        "{json}"
    );
    assert!(!json.contains("\"due\""), "{json}");
    let back: MonitorState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, state);

    let new = serde_json::to_string(&MonitorState::new(t("09:00:00"))).unwrap();
    assert_eq!(
        new,
        r#"{"status":"new","since":"2026-11-22T09:00:00Z","counter":0}"#
    );
    let bad = r#"{"status":"new","since":"2026-11-22T09:00:00Z","runs":[{"rid":"a b","started":"2026-11-22T09:00:00Z","counter":1}]}"#;
    assert!(
        serde_json::from_str::<MonitorState>(bad).is_err(),
        "a bad rid is refused"
    );
}
